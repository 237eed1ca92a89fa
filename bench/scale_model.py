#!/usr/bin/env python3
"""bench/scale_model.py - a model on paper of one synchronous step at internet scale.

n workers train a d-parameter model through S server shards; every constant below is either the
scenario (stated) or a per-byte / per-value cost measured on this 2-vCPU VM, with the file it
comes from. Nothing here is measured at this scale: the output is arithmetic on those constants.

    /usr/bin/python3 bench/scale_model.py            # prints the Markdown tables

Step (serial: nothing overlaps anything, as the simulated cluster measured it -- parameters go
down, then gradients come up, then the server works):
    t_down   = n x (d/S) x bytes down per value / BW     (a shard sends its slice to every worker)
    t_up     = n x (d/S) x bytes up per value / BW       (a shard receives every worker's slice)
    t_decode = n x (d/S) x decode s per value            (one shard host, as measured here)
    t_agg    = n x (d/S) x aggregate s per value         (the mean)
    t_opt    = (d/S) x optimizer s per value             (AdamW on the shard's slice)
  and for a Gram-form rule (Krum, Multi-Krum, FA, geometric median, NNM) in addition:
    t_gram   = n (n+1)/2 x (d/S) multiply-adds / the Gram kernel's rate
    t_gather = (S-1) x (n^2 + n) x 8 bytes / BW          (every shard gathers the others' partials)
where the link is max(the shard's port, a worker host's port: d x bytes per value / BW); with
S <= n the shard's port is the busier. Under LISA only the trained fraction F of the values is
sent up, sent down (the groups the previous step trained), decoded, aggregated and updated.
"""

# ---- the scenario (stated, not measured) -------------------------------------------------------
N = 1000  # workers, one per host
D = 124_439_808  # parameters: GPT-2 small (124M: the count of its shapes below, head tied)
BW = 100e9  # bit/s per link, full duplex, every host (shards and workers)
SHARDS = [1, 2, 4, 8, 16, 32, 64]  # server shards, each alone on its host

# ---- measured here -----------------------------------------------------------------------------
# bytes per value on the wire, headers and scales included:
# bench/results/scale/20261202T031004Z.tsv, bytes_per_value of the rows mlp_fp32_1g (4.000) and mlp_int8rht_1g (1.016, int8 + RHT, blocks
# of 256: one 4-byte scale per 256 values, 1 + 4/256 = 1.0156)
BYTES_FP32 = 4.000
BYTES_INT8_RHT = 1.016
# LISA's trained fraction: bench/results/lisa.md, the GPT (gamma 2 of 8 blocks + embeddings +
# head): bytes up per step LISA / full = 0.2674 (and bench/scale's gpt_lisa row: 1.070 bytes per
# model value = 4 x 0.2674)
LISA_FRACTION = 0.2674
# decode, GB/s of fp32 output, one thread, d = 1e7, B = 256, the best of 5 at load 10:
# bench/results/codec/20261202T031013Z.txt (bench/codec --blocks 256), "decode GB/s" of the rows
# fp32 and int8+rht, threads 1 (a quiet run, README "Compression > Speed and accuracy", gave
# 10.81 and 6.63: the model's server is the slower, loaded one)
DECODE_GBS = {"fp32": 6.88, "int8+rht": 3.71}
# the mean over n rows, both cores: bench/results/aggregate/20261202T031019Z.tsv,
# build/bench/bench_aggregate --n 31 --d 10000000 --rules mean: best 97.639 ms for 31 x 1e7 values
AGG_MEAN_MS, AGG_MEAN_VALUES = 97.639, 31 * 10_000_000
# the Gram kernel, both cores: the same file, --n 127 --d 1000000 --rules krum: best 213.141 ms,
# all of Krum (Gram, distances, scores, the copy out) charged to its n(n+1)/2 x d multiply-adds
GRAM_MS, GRAM_N, GRAM_D = 213.141, 127, 1_000_000
# AdamW per value, one thread: bench/results/gpt_step.md, "phalanx opt" 2.2 ms per step of the
# 1,623,808-parameter GPT (batch 16 row; 2.3 ms at batch 8)
OPT_MS, OPT_VALUES = 2.2, 1_623_808

# ---- derived from GPT-2 small's shapes (arithmetic, not measured): LISA's fraction there -----
# token embedding 50257 x 768 (tied with the head) + positions 1024 x 768 always train; a block
# is 12 x 768^2 weights + 13 x 768 biases and norms = 7,087,872; gamma 2 of 12 blocks
GPT2_EMBED = 50257 * 768 + 1024 * 768
GPT2_BLOCK = 12 * 768 * 768 + 13 * 768
GPT2_FRACTION = (GPT2_EMBED + 2 * GPT2_BLOCK) / D


def formats():
    """(name, bytes up per value, bytes down per value, decode GB/s, fraction of values)"""
    return [
        ("fp32", BYTES_FP32, BYTES_FP32, DECODE_GBS["fp32"], 1.0),
        ("int8+RHT up, fp32 down", BYTES_INT8_RHT, BYTES_FP32, DECODE_GBS["int8+rht"], 1.0),
        (f"LISA, F = {LISA_FRACTION} (measured, our GPT), fp32", BYTES_FP32 * LISA_FRACTION,
         BYTES_FP32 * LISA_FRACTION, DECODE_GBS["fp32"], LISA_FRACTION),
        (f"LISA, F = {GPT2_FRACTION:.3f} (GPT-2 small's shapes), fp32",
         BYTES_FP32 * GPT2_FRACTION, BYTES_FP32 * GPT2_FRACTION, DECODE_GBS["fp32"],
         GPT2_FRACTION),
    ]


def step(S, b_up, b_down, dec_gbs, frac):
    """the step's parts in seconds for S shards"""
    bw = BW / 8  # bytes/s
    slice_values = D / S
    link_up = max(N * slice_values * b_up, D * b_up) / bw
    link_down = max(N * slice_values * b_down, D * b_down) / bw
    # decode GB/s are of fp32 output: 4 bytes per value
    t_decode = N * slice_values * frac * 4 / (dec_gbs * 1e9)
    t_agg = N * slice_values * frac * (AGG_MEAN_MS / 1e3) / AGG_MEAN_VALUES
    t_opt = slice_values * frac * (OPT_MS / 1e3) / OPT_VALUES
    gram_rate = GRAM_N * (GRAM_N + 1) / 2 * GRAM_D / (GRAM_MS / 1e3)  # multiply-adds/s
    t_gram = N * (N + 1) / 2 * slice_values * frac / gram_rate
    t_gather = (S - 1) * (N * N + N) * 8 / bw
    return dict(up=link_up, down=link_down, decode=t_decode, agg=t_agg, opt=t_opt,
                gram=t_gram, gather=t_gather)


def main():
    print(f"n = {N:,} workers, d = {D / 1e6:.0f}M parameters, links {BW / 1e9:.0f} Gbit/s; "
          "seconds per step, serial (nothing overlaps); server compute on one shard host like this "
          "VM (decode one thread, mean and Gram two)")
    print()
    print("| format | S | link down | link up | link only (down + up) | decode | mean | AdamW "
          "| **step, mean** | Gram | gather | step, Gram-form rule |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, b_up, b_down, dec, frac in formats():
        for S in SHARDS:
            t = step(S, b_up, b_down, dec, frac)
            link = t["down"] + t["up"]
            mean_step = link + t["decode"] + t["agg"] + t["opt"]
            gram_step = mean_step + t["gram"] + t["gather"]
            print(f"| {name} | {S} | {t['down']:.3f} | {t['up']:.3f} | {link:.3f} | "
                  f"{t['decode']:.3f} | {t['agg']:.3f} | {t['opt']:.4f} | **{mean_step:.3f}** | "
                  f"{t['gram']:.1f} | {t['gather']:.4f} | {gram_step:.1f} |")


if __name__ == "__main__":
    main()
