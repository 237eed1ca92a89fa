#!/usr/bin/python3
"""robustness_report.py - bench/robustness's tables and plots from its CSV.

  robustness_report.py CSV OUT_DIR COMMAND STEPS ELAPSED_S

CSV: rule,nnm,data,attack,test_acc (test_acc a fraction, or nan / failed / invalid). Writes
OUT_DIR/robustness.md (the worst case per rule and data, then every cell), worst_case.png and
grid_<data>.png. A run that ended in NaN or failed counts as accuracy 0 in the worst case (the
attack won); a config the rule refuses (invalid) is not counted.
"""
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CSV, OUT, CMD, STEPS, ELAPSED = sys.argv[1:6]
ADAPTIVE = ["optimal_ipm", "optimal_alie", "min_max", "min_sum", "mimic_farthest"]
DATA_NAMES = {"iid": "IID", "dir1": "Dirichlet 1", "dir0.1": "Dirichlet 0.1"}

rows = list(csv.DictReader(open(CSV)))
acc = {}
order = {"rule": [], "data": [], "attack": [], "nnm": []}
for r in rows:
    key = (r["rule"], r["nnm"], r["data"], r["attack"])
    v = r["test_acc"]
    acc[key] = None if v == "invalid" else (0.0 if v in ("nan", "failed", "") else 100 * float(v))
    for k in order:
        if r[k] not in order[k]:
            order[k].append(r[k])
rule_order = ["mean", "median", "trimmed_mean", "meamed", "geomed", "krum", "multi_krum", "bulyan",
              "cclip", "fedld", "flag"]
rules = sorted(order["rule"], key=lambda x: rule_order.index(x) if x in rule_order else 99)
datas = [d for d in ("iid", "dir1", "dir0.1") if d in order["data"]]
attack_order = ["none", "sign_flip", "ipm_10", "alie", "label_flip", "mimic"] + ADAPTIVE
attacks = sorted(order["attack"], key=lambda x: attack_order.index(x) if x in attack_order else 99)
nnms = [n for n in ("off", "on") if n in order["nnm"]]


def cell(v):
    return "n/a" if v is None else "%.1f" % v


def worst(rule, nnm, data, among=None):
    """(accuracy, attack) of the lowest accuracy over the attacks (not 'none')."""
    best = None
    for a in attacks:
        if a == "none" or (among and a not in among):
            continue
        v = acc.get((rule, nnm, data, a))
        if v is None:
            continue
        if best is None or v < best[0]:
            best = (v, a)
    return best


md = []
md.append("Worst case over the attacks, final test accuracy (%) and the attack that reached it;")
md.append("clean = the same rule, data and NNM setting without attack.\n")
head = "| rule | NNM |"
sep = "|---|---|"
for d in datas:
    head += " %s clean | %s worst |" % (DATA_NAMES[d], DATA_NAMES[d])
    sep += "---:|---|"
md += [head, sep]
for rule in rules:
    for nnm in nnms:
        line = "| %s | %s |" % (rule, nnm)
        for d in datas:
            clean = acc.get((rule, nnm, d, "none"))
            w = worst(rule, nnm, d)
            line += " %s | %s |" % (cell(clean), "**%.1f** (%s)" % w if w else "n/a")
        md.append(line)
md.append("")
md.append("Largest loss against the clean run under an adaptive attack (points), per data:\n")
head = "| rule | NNM |" + "".join(" %s |" % DATA_NAMES[d] for d in datas)
md += [head, "|---|---|" + "---:|" * len(datas)]
for rule in rules:
    for nnm in nnms:
        line = "| %s | %s |" % (rule, nnm)
        for d in datas:
            clean = acc.get((rule, nnm, d, "none"))
            w = worst(rule, nnm, d, ADAPTIVE)
            line += " %s |" % ("%.1f (%s)" % (clean - w[0], w[1]) if w and clean is not None else "n/a")
        md.append(line)
md.append("")
for d in datas:
    for nnm in nnms:
        md.append("Every cell, %s, NNM %s (final test accuracy, %%):\n" % (DATA_NAMES[d], nnm))
        md.append("| rule |" + "".join(" %s |" % a for a in attacks) + " worst |")
        md.append("|---|" + "---:|" * (len(attacks) + 1))
        for rule in rules:
            w = worst(rule, nnm, d)
            md.append("| %s |" % rule + "".join(" %s |" % cell(acc.get((rule, nnm, d, a))) for a in attacks)
                      + " **%s** |" % ("%.1f" % w[0] if w else "n/a"))
        md.append("")
md.append("n = 15 workers, 3 Byzantine (OMNISCIENT), f = 3, %s steps, 784-256-256-10 MLP on "
          "Fashion-MNIST (test accuracy on the first 5,000 test images); a run that ended in NaN or "
          "failed counts 0. Command: `%s` (%s s)." % (STEPS, CMD, ELAPSED))
open(os.path.join(OUT, "robustness.md"), "w").write("\n".join(md) + "\n")

# worst case per rule: bars per data, clean and worst, one panel per NNM setting
fig, axes = plt.subplots(1, len(nnms), figsize=(7 * len(nnms), 4.5), sharey=True, squeeze=False)
width = 0.8 / len(datas)
colors = {"iid": "#4c72b0", "dir1": "#dd8452", "dir0.1": "#c44e52"}
for ax, nnm in zip(axes[0], nnms):
    for k, d in enumerate(datas):
        xs = [i + (k - (len(datas) - 1) / 2) * width for i in range(len(rules))]
        clean = [acc.get((r, nnm, d, "none")) or 0 for r in rules]
        w = [(worst(r, nnm, d) or (0, ""))[0] for r in rules]
        ax.bar(xs, clean, width, color=colors[d], alpha=0.25)
        ax.bar(xs, w, width, color=colors[d], label="%s (light: clean)" % DATA_NAMES[d])
    ax.set_xticks(range(len(rules)))
    ax.set_xticklabels(rules, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.axhline(10, color="grey", lw=0.8, ls=":")
    ax.set_title("NNM %s: worst case over %d attacks" % (nnm, len(attacks) - 1))
    ax.grid(axis="y", alpha=0.3)
axes[0][0].set_ylabel("final test accuracy (%)")
handles, labels = axes[0][0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=len(datas), fontsize=9)
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(os.path.join(OUT, "worst_case.png"), dpi=110)
plt.close(fig)

# one heat map per data setting: rules x attacks, NNM off and on
for d in datas:
    fig, axes = plt.subplots(1, len(nnms), figsize=(7 * len(nnms), 0.45 * len(rules) + 2.2),
                             squeeze=False)
    for ax, nnm in zip(axes[0], nnms):
        M = [[acc.get((r, nnm, d, a)) for a in attacks] for r in rules]
        img = ax.imshow([[math.nan if v is None else v for v in row] for row in M], vmin=0, vmax=90,
                        cmap="RdYlGn", aspect="auto")
        for i, row in enumerate(M):
            for j, v in enumerate(row):
                ax.text(j, i, cell(v), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(attacks)))
        ax.set_xticklabels(attacks, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(rules)))
        ax.set_yticklabels(rules, fontsize=8)
        ax.set_title("%s, NNM %s" % (DATA_NAMES[d], nnm))
    fig.colorbar(img, ax=axes[0].tolist(), shrink=0.8, label="test accuracy (%)")
    fig.savefig(os.path.join(OUT, "grid_%s.png" % d), dpi=110, bbox_inches="tight")
    plt.close(fig)
print("\n".join(md[: 4 + len(rules) * len(nnms)]))
