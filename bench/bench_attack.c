/* bench_attack.c - the cost of an OMNISCIENT attack per step at the server, against the cost of
 * one aggregation by the same rule in the same run (the peer: "an adaptive attack costs a few
 * aggregations"). Inputs: n rows of length d drawn N(0.1, 1) from a fixed seed (the timing does
 * not depend on the values, except through the line search's path, which the table shows as
 * its evaluation count), `byz` of them Byzantine.
 *
 *   bench_attack [--n 15] [--d 269322] [--byz 3] [--reps 5] [--threads T]
 *                [--attacks a,b,...] [--rules r,r@nnm,...]
 *
 * Prints a Markdown table: attack, rule (RULE@nnm: behind NNM), evaluations of the rule or the
 * bound, Gram form or vectors, the attack's best time per step, one aggregation's best time,
 * and their ratio. Defaults: the quickstart MLP's d (784-256-256-10: 269,322 parameters), n = 15
 * workers of which 3 Byzantine, f = 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/rng.h"
#include "faults/byzantine.h"

void openblas_set_num_threads(int num_threads);

static px_attack attack_by_name(const char *s)
{
    for (int k = 0; k < PX_ATTACK_COUNT; k++)
        if (!strcmp(px_attack_name((px_attack)k), s)) return (px_attack)k;
    return PX_ATTACK_COUNT;
}

int main(int argc, char **argv)
{
    size_t n = 15, d = 269322, byz = 3;
    int reps = 5, threads = 0;
    char attacks[512] = "alie,ipm,optimal_ipm,optimal_alie,min_max,min_sum,mimic";
    char rules[512] = "mean,median,trimmed_mean,krum,geomed,cclip,flag,mean@nnm,median@nnm";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--d"))
            d = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--byz"))
            byz = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attacks"))
            snprintf(attacks, sizeof attacks, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--rules"))
            snprintf(rules, sizeof rules, "%s", argv[i + 1]);
        else {
            fprintf(stderr, "bench_attack: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (byz >= n || reps < 1) {
        fprintf(stderr, "bench_attack: needs byz < n and reps >= 1\n");
        return 2;
    }
    openblas_set_num_threads(1);
    px_pool *pool = NULL;
    if (px_pool_create(&pool, threads > 0 ? threads : px_cpu_count()) < 0) return 1;
    float *src = px_alloc(n * d * sizeof(float), "inputs"), *rows = px_alloc(n * d * sizeof(float), "rows");
    float *out = px_alloc(d * sizeof(float), "aggregate");
    const float **ptrs = calloc(n, sizeof *ptrs);
    uint8_t *have = calloc(n, 1);
    if (!src || !rows || !out || !ptrs || !have) return 1;
    px_rng r;
    px_rng_init(&r, 1, PX_STREAM_BYZANTINE, 0xbe7c4, 0);
    for (size_t i = 0; i < n * d; i++)
        src[i] = (float)(0.1 + px_rng_normal(&r));
    for (size_t w = 0; w < n; w++)
        ptrs[w] = rows + w * d;
    printf("n = %zu, d = %zu, %zu Byzantine, f = %zu, %d threads, best of %d\n\n", n, d, byz, byz,
           px_pool_size(pool), reps);
    printf("| attack | rule | evals | form | attack ms/step | aggregation ms | attack / aggregation |\n");
    printf("|---|---|---:|---|---:|---:|---:|\n");
    char alist[512];
    snprintf(alist, sizeof alist, "%s", attacks);
    for (char *asave = NULL, *an = strtok_r(alist, ",", &asave); an; an = strtok_r(NULL, ",", &asave)) {
        px_attack atk = attack_by_name(an);
        if (atk == PX_ATTACK_COUNT) {
            fprintf(stderr, "bench_attack: unknown attack %s\n", an);
            return 2;
        }
        char rlist[512];
        snprintf(rlist, sizeof rlist, "%s", rules);
        for (char *rsave = NULL, *rn = strtok_r(rlist, ",", &rsave); rn;
             rn = strtok_r(NULL, ",", &rsave)) {
            char rule[64];
            snprintf(rule, sizeof rule, "%s", rn);
            char *at = strchr(rule, '@');
            px_agg_params p;
            px_agg_params_default(&p);
            p.f = (uint32_t)byz;
            if (at) {
                *at = 0;
                if (px_agg_params_set(&p, "pre", at + 1) < 0) return 2;
            }
            px_byz_spec s;
            px_byz_spec_default(&s, (uint32_t)n);
            s.attack = atk;
            s.count = (uint32_t)byz;
            s.mimic_farthest = atk == PX_ATTACK_MIMIC;
            px_byz_server b;
            px_agg *agg = NULL;
            if (px_byz_server_create(&b, &s, d, n, pool) < 0 ||
                px_agg_create(&agg, rule, &p, n, d, NULL, pool) < 0 ||
                px_byz_server_bind_rule(&b, rule, &p, n, NULL, agg) < 0) {
                fprintf(stderr, "bench_attack: %s\n", px_errmsg());
                return 1;
            }
            double best_attack = 1e30, best_agg = 1e30;
            for (int k = 0; k < reps; k++) {
                memcpy(rows, src, n * d * sizeof(float));
                memset(have, 1, n);
                double t0 = px_now_ms();
                px_byz_server_apply(&b, 0, rows, have);
                double t1 = px_now_ms();
                px_agg_run(agg, ptrs, n, 0, out, NULL);
                double t2 = px_now_ms();
                if (t1 - t0 < best_attack) best_attack = t1 - t0;
                if (t2 - t1 < best_agg) best_agg = t2 - t1;
            }
            char evals[16] = "-";
            if (b.last.evals) snprintf(evals, sizeof evals, "%u", b.last.evals);
            int rule_bound = px_attack_needs_rule(atk);
            printf("| %s | %s | %s | %s | %.2f | %.2f | %.2f |\n", an, rn, evals,
                   !rule_bound ? "-" : (b.last.gram ? "Gram" : "vectors"), best_attack, best_agg,
                   best_attack / best_agg);
            px_agg_destroy(agg);
            px_byz_server_free(&b);
            if (!rule_bound) break; /* the rule plays no part in the attack: one row is enough */
        }
    }
    px_free(src);
    px_free(rows);
    px_free(out);
    free(ptrs);
    free(have);
    px_pool_destroy(pool);
    return 0;
}
