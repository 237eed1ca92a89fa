/* bench_aggregate.c - our side of bench/aggregate: the time of every rule (and of the memory
 * floor, one read of the n x d inputs at the read bandwidth measured in the same run) for each
 * (n, d). Prints one tab-separated line per measurement for bench/aggregate to merge with the
 * PyTorch side:
 *   n  d  rule  best_ms  median_ms  GB/s(read of n*d*4 at best)  ratio_to_floor
 * Usage: bench_aggregate [--n 7,15,31] [--d 100000,1000000,10000000] [--rules a,b,...]
 *                        [--reps R] [--threads T] [--pre LIST]
 * A rule written RULE@STEPS runs behind that pre-aggregation chain (mean@nnm); --pre applies a
 * chain to every rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "base/rng.h"

/* OpenBLAS: the aggregators' LAPACK calls are n x n; BLAS threads would only spin */
void openblas_set_num_threads(int num_threads);

typedef float v16 __attribute__((vector_size(64)));

typedef struct {
    const float *data;
    size_t len, chunk;
    double *partial;
} read_job;

static void read_chunk(void *arg, size_t t, int thread)
{
    (void)thread;
    read_job *j = arg;
    size_t lo = t * j->chunk, hi = lo + j->chunk < j->len ? lo + j->chunk : j->len;
    v16 a = {0}, b = {0}, c = {0}, d = {0};
    size_t i = lo;
    for (; i + 64 <= hi; i += 64) {
        v16 x0, x1, x2, x3;
        memcpy(&x0, j->data + i, 64);
        memcpy(&x1, j->data + i + 16, 64);
        memcpy(&x2, j->data + i + 32, 64);
        memcpy(&x3, j->data + i + 48, 64);
        a += x0;
        b += x1;
        c += x2;
        d += x3;
    }
    double s = 0;
    for (int l = 0; l < 16; l++)
        s += (double)a[l] + b[l] + c[l] + d[l];
    for (; i < hi; i++)
        s += j->data[i];
    j->partial[t] = s;
}

/* best time of one parallel read of len floats */
static double read_floor_ms(px_pool *pool, const float *data, size_t len, int reps)
{
    size_t chunk = 1 << 16, tasks = (len + chunk - 1) / chunk;
    double *partial = calloc(tasks, sizeof *partial);
    read_job j = {data, len, chunk, partial};
    double best = 1e30, sink = 0;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = px_now_ms();
        px_pool_run(pool, tasks, read_chunk, &j);
        double t = px_now_ms() - t0;
        for (size_t i = 0; i < tasks; i++)
            sink += partial[i];
        if (r > 0 && t < best) best = t;
    }
    free(partial);
    if (sink == 12345.678) printf("#\n");
    return best;
}

static size_t parse_list(const char *s, size_t *out, size_t max)
{
    size_t k = 0;
    while (*s && k < max) {
        out[k++] = (size_t)strtod(s, (char **)&s);
        if (*s == ',') s++;
    }
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    size_t ns[8] = {7, 15, 31}, ds[8] = {100000, 1000000, 10000000};
    size_t nn = 3, nd = 3;
    const char *rules = "mean,median,trimmed_mean,meamed,cclip,krum,multi_krum,bulyan,geomed,"
                        "flag,fedld";
    const char *pre = "";
    int reps = 5, threads = px_cpu_count();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc)
            nn = parse_list(argv[++i], ns, 8);
        else if (!strcmp(argv[i], "--d") && i + 1 < argc)
            nd = parse_list(argv[++i], ds, 8);
        else if (!strcmp(argv[i], "--rules") && i + 1 < argc)
            rules = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pre") && i + 1 < argc)
            pre = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--n LIST] [--d LIST] [--rules LIST] [--reps R] "
                    "[--threads T] [--pre LIST]\n",
                    argv[0]);
            return 2;
        }
    }
    openblas_set_num_threads(1);
    px_pool *pool;
    if (px_pool_create(&pool, threads) < 0) return 1;
    printf("#threads\t%d\n", threads);
    for (size_t a = 0; a < nn; a++)
        for (size_t b = 0; b < nd; b++) {
            size_t n = ns[a], d = ds[b];
            float *data = px_alloc(n * d * sizeof(float), "bench data");
            const float **rows = malloc(n * sizeof *rows);
            float *out = px_alloc(d * sizeof(float), "bench output");
            if (!data || !rows || !out) {
                fprintf(stderr, "bench: %s\n", px_errmsg());
                return 1;
            }
            /* a common direction plus uniform noise per input, two inputs scaled up */
            px_rng r;
            px_rng_init(&r, 1, 99, n, d);
            for (size_t c = 0; c < d; c++) {
                float common = (float)(px_rng_u64(&r) >> 40) * 0x1p-24f - 0.5f;
                for (size_t i = 0; i < n; i++) {
                    uint64_t h = px_rng_u64(&r);
                    data[i * d + c] = common + 0.5f * ((float)(h >> 40) * 0x1p-24f - 0.5f);
                }
            }
            for (size_t c = 0; c < d; c++)
                data[c] *= 50.0f;
            for (size_t i = 0; i < n; i++)
                rows[i] = data + i * d;
            /* the floor: the best parallel read, measured before and after the rules (the
             * machine may be shared: the best of both is the least disturbed) */
            double floor_ms = read_floor_ms(pool, data, n * d, reps < 10 ? 10 : reps);
            char names[32][32];
            double bests[32], meds[32];
            int count = 0;
            char list[512];
            snprintf(list, sizeof list, "%s", rules);
            for (char *save = NULL, *rule = strtok_r(list, ",", &save); rule && count < 32;
                 rule = strtok_r(NULL, ",", &save)) {
                /* RULE@STEPS: the rule behind a pre-aggregation chain (mean@nnm) */
                char *at = strchr(rule, '@');
                const char *chain = pre;
                char label[32];
                snprintf(label, sizeof label, "%s", rule);
                if (at) {
                    *at = 0;
                    chain = at + 1;
                }
                px_agg_params p;
                px_agg_params_default(&p);
                char fbuf[32];
                snprintf(fbuf, sizeof fbuf, "%zu", (n - 3) / 4); /* valid for every rule */
                px_agg_params_set(&p, "f", fbuf);
                if (!strcmp(rule, "fedld")) px_agg_params_set(&p, "fedld_history", "1");
                if (chain[0] && px_agg_params_set(&p, "pre", chain) < 0) {
                    fprintf(stderr, "bench: %s\n", px_errmsg());
                    return 2;
                }
                px_agg *agg;
                if (px_agg_create(&agg, rule, &p, n, d, NULL, pool) < 0) {
                    fprintf(stderr, "bench: %s\n", px_errmsg());
                    return 1;
                }
                double *t = malloc((size_t)(reps + 1) * sizeof *t);
                for (int k = 0; k < reps + 1; k++) {
                    double t0 = px_now_ms();
                    if (px_agg_run(agg, rows, n, (uint64_t)k, out, NULL) < 0) {
                        fprintf(stderr, "bench: %s\n", px_errmsg());
                        return 1;
                    }
                    t[k] = px_now_ms() - t0;
                }
                qsort(t + 1, (size_t)reps, sizeof *t, cmp_double); /* t[0]: warm-up, dropped */
                snprintf(names[count], sizeof names[count], "%s", label);
                bests[count] = t[1];
                meds[count] = t[1 + reps / 2];
                count++;
                free(t);
                px_agg_destroy(agg);
            }
            double again = read_floor_ms(pool, data, n * d, reps < 10 ? 10 : reps);
            if (again < floor_ms) floor_ms = again;
            double bytes = (double)n * d * 4;
            printf("%zu\t%zu\tfloor\t%.3f\t%.3f\t%.2f\t1.00\n", n, d, floor_ms, floor_ms,
                   bytes / (floor_ms * 1e6));
            for (int k = 0; k < count; k++)
                printf("%zu\t%zu\t%s\t%.3f\t%.3f\t%.2f\t%.2f\n", n, d, names[k], bests[k],
                       meds[k], bytes / (bests[k] * 1e6), bests[k] / floor_ms);
            fflush(stdout);
            px_free(data);
            px_free(out);
            free(rows);
        }
    px_pool_destroy(pool);
    return 0;
}
