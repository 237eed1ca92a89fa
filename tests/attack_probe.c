/* attack_probe.c - runs one step of an OMNISCIENT attack on rows read from a .npy file, for the
 * tests that check the attacks against an independent computation (tests/it_adaptive.sh and
 * its NumPy reference, tests/adaptive_ref.py).
 *
 *   attack_probe --attack NAME --byz I[,J...] [--rule R] [--set key=value]...
 *                [--perturbation std|unit|sign] [--mimic-farthest] [--evals N] [--start X]
 *                [--delta X] [--ratio X] [--tau X] [--alie-z X] [--step S] IN.npy OUT.npy
 *
 * IN.npy: (n, d) float32, the rows of one step (the Byzantine rows' contents are ignored);
 * --byz: the Byzantine workers. Writes the rows after the attack to OUT.npy and prints
 * `factor=F distance=D target=T evals=E gram=G` (px_byz_choice). The rule's parameters go
 * through the aggregators' own key table (--set f=3, --set pre=nnm). Exit 2 on bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "base/alloc.h"
#include "faults/byzantine.h"
#include "runtime/npy.h"

static int bad(const char *msg)
{
    fprintf(stderr, "attack_probe: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    px_byz_spec s;
    px_byz_spec_default(&s, 0);
    px_agg_params p;
    px_agg_params_default(&p);
    const char *rule = "mean", *byz = NULL, *in = NULL, *out = NULL;
    uint32_t step = 0;
    int attack = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--mimic-farthest")) {
            s.mimic_farthest = 1;
            continue;
        }
        if (a[0] == '-' && !v) return bad("an option lacks its value");
        if (!strcmp(a, "--attack")) {
            for (int k = 0; k < PX_ATTACK_COUNT; k++)
                if (!strcmp(px_attack_name((px_attack)k), v)) attack = k;
            if (attack < 0) return bad("unknown attack");
        } else if (!strcmp(a, "--rule")) {
            rule = v;
        } else if (!strcmp(a, "--byz")) {
            byz = v;
        } else if (!strcmp(a, "--set")) {
            char key[64];
            const char *eq = strchr(v, '=');
            if (!eq || (size_t)(eq - v) >= sizeof key) return bad("--set wants key=value");
            memcpy(key, v, (size_t)(eq - v));
            key[eq - v] = 0;
            if (px_agg_params_set(&p, key, eq + 1) < 0) return bad(px_errmsg());
        } else if (!strcmp(a, "--perturbation")) {
            int k = 0;
            while (k < PX_PERTURB_COUNT && strcmp(px_perturbation_name((px_perturbation)k), v))
                k++;
            if (k == PX_PERTURB_COUNT) return bad("unknown perturbation");
            s.perturbation = (px_perturbation)k;
        } else if (!strcmp(a, "--evals")) {
            s.search_evals = (uint32_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--start")) {
            s.search_start = strtof(v, NULL);
        } else if (!strcmp(a, "--delta")) {
            s.search_delta = strtof(v, NULL);
        } else if (!strcmp(a, "--ratio")) {
            s.search_ratio = strtof(v, NULL);
        } else if (!strcmp(a, "--tau")) {
            s.tau = strtof(v, NULL);
        } else if (!strcmp(a, "--alie-z")) {
            s.alie_z = strtof(v, NULL);
        } else if (!strcmp(a, "--step")) {
            step = (uint32_t)strtoul(v, NULL, 10);
        } else if (a[0] == '-') {
            return bad("unknown option");
        } else {
            if (!in)
                in = a;
            else if (!out)
                out = a;
            else
                return bad("too many files");
            continue;
        }
        i++;
    }
    if (attack < 0 || !byz || !in || !out) return bad("needs --attack, --byz, IN.npy and OUT.npy");
    float *rows;
    size_t dims[2];
    int ndim;
    if (px_npy_read_f32(in, &rows, dims, &ndim, 2) < 0 || ndim != 2) return bad("cannot read IN");
    size_t n = dims[0], d = dims[1];
    s.attack = (px_attack)attack;
    s.n = (uint32_t)n;
    uint8_t *is_byz = calloc(n, 1), *have = calloc(n, 1);
    for (const char *c = byz; *c;) {
        char *end;
        unsigned long w = strtoul(c, &end, 10);
        if (end == c || w >= n) return bad("--byz: not a worker");
        is_byz[w] = 1;
        s.count++;
        c = *end == ',' ? end + 1 : end;
    }
    if (px_byz_check(&s) < 0) return bad(px_errmsg());
    px_byz_server b;
    if (px_byz_server_create(&b, &s, d, n, NULL) < 0) return bad(px_errmsg());
    if (px_byz_server_bind_rule(&b, rule, &p, n, NULL, NULL) < 0) return bad(px_errmsg());
    for (size_t w = 0; w < n; w++)
        have[w] = 1;
    memcpy(b.is_byz, is_byz, n);
    size_t written = px_byz_server_apply_rows(&b, step, rows, have, n);
    printf("factor=%.17g distance=%.17g target=%u evals=%u gram=%d written=%zu\n", b.last.factor,
           b.last.distance, b.last.target, b.last.evals, b.last.gram, written);
    size_t od[2] = {n, d};
    int rc = px_npy_write_f32(out, rows, od, 2) < 0 ? 1 : 0;
    px_byz_server_free(&b);
    px_free(rows);
    free(is_byz);
    free(have);
    return rc;
}
