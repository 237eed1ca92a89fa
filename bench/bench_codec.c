/* bench_codec.c - throughput and accuracy of the codecs (comm/codec.h).
 *
 * Table 1: encode and decode throughput in GB/s of fp32 input (4 d bytes / time) for every codec
 * and block size at d = 1e7, on one thread and on the pool's threads, beside memcpy of the same
 * 4 d bytes measured in the same run with the same threads (the memory-bandwidth floor); the
 * ratio column is encode+decode throughput / memcpy throughput. Times are the best of --reps
 * runs (the machine is shared; the best run is the least disturbed one).
 * Table 2: relative L2 error ||x - decode(encode(x))|| / ||x|| per codec, on synthetic
 * heavy-tailed data (Student-t, 3 degrees of freedom, with a scale that changes every 64K
 * values as it does between layers) and on every --grad FILE.npy (float32, any shape).
 *
 *   build/bench/bench_codec [--d N] [--reps R] [--threads 1,2] [--blocks 256,1024,4096]
 *                           [--grad FILE.npy]... [--no-speed]
 * (bench/codec builds it and runs it with these arguments). The "ef" row encodes with an
 * error-feedback residual, as a worker does with error feedback on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "comm/codec.h"
#include "base/common.h"
#include "runtime/npy.h"
#include "base/pool.h"
#include "base/rng.h"

#define MAX_LIST 16
#define MAX_GRADS 8

typedef struct {
    const char *name;
    px_codec_format format;
    int rht, stochastic;
    int ef; /* encode with an error-feedback residual (throughput table only) */
} codec_row;

static const codec_row CODECS[] = {
    {"bf16", PX_CODEC_BF16, 0, 0, 0},
    {"fp16", PX_CODEC_FP16, 0, 0, 0},
    {"int8", PX_CODEC_INT8, 0, 0, 0},
    {"int8+rht", PX_CODEC_INT8, 1, 0, 0},
    {"int8+rht ef", PX_CODEC_INT8, 1, 0, 1},
    {"int8+rht sr", PX_CODEC_INT8, 1, 1, 0},
    {"fp8_e4m3", PX_CODEC_FP8_E4M3, 0, 0, 0},
    {"fp8_e4m3+rht", PX_CODEC_FP8_E4M3, 1, 0, 0},
};
#define N_CODECS (sizeof CODECS / sizeof CODECS[0])

static int parse_list(const char *s, long *out)
{
    int n = 0;
    while (*s && n < MAX_LIST) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* ---- .npy reading ---------------------------------------------------------------------------- */

/* Reads a float32 .npy file of any shape as one flat vector. */
static px_status read_npy(const char *path, float **out, size_t *n_out)
{
    size_t dims[8];
    int ndim;
    PX_CHECK(px_npy_read_f32(path, out, dims, &ndim, 8));
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    *n_out = n;
    return PX_OK;
}

/* ---- timing ---------------------------------------------------------------------------------- */

typedef struct {
    const float *src;
    float *dst;
    size_t n;
} copy_job;

enum { COPY_CHUNK = 1 << 18 }; /* 1 MB of floats per task */

static void copy_task(void *ctx, size_t t, int thread)
{
    (void)thread;
    const copy_job *j = ctx;
    size_t i0 = t * COPY_CHUNK, m = j->n - i0 < COPY_CHUNK ? j->n - i0 : COPY_CHUNK;
    memcpy(j->dst + i0, j->src + i0, m * sizeof(float));
}

static double time_memcpy(px_pool *pool, const float *src, float *dst, size_t n, int reps)
{
    copy_job j = {src, dst, n};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = px_now_ms();
        px_pool_run(pool, (n + COPY_CHUNK - 1) / COPY_CHUNK, copy_task, &j);
        double t = px_now_ms() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* Compute capacity probe: an L1-resident transform loop, one task per thread and round. On a
 * shared VM the second vCPU may give no compute at times (memory-bound memcpy still scales);
 * the probe says how much compute the threads of this run really had. */
static float probe_buf[64][256];

static void probe_task(void *ctx, size_t t, int thread)
{
    (void)ctx, (void)t;
    for (int r = 0; r < 2000; r++) {
        px_wht(probe_buf[thread % 64], 256);
        probe_buf[thread % 64][0] *= 0.5f;
    }
}

static double probe_tasks_per_ms(px_pool *pool, int reps)
{
    int n = px_pool_size(pool);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = px_now_ms();
        px_pool_run(pool, (size_t)(4 * n), probe_task, NULL);
        double t = px_now_ms() - t0;
        best = t < best ? t : best;
    }
    return 4 * n / best;
}

static int check(px_status st, const char *what)
{
    if (st < 0) {
        fprintf(stderr, "bench_codec: %s: %s\n", what, px_errmsg());
        exit(1);
    }
    return 0;
}

static double gbps(size_t n, double ms)
{
    return (double)n * 4 / (ms * 1e6);
}

/* ---- accuracy -------------------------------------------------------------------------------- */

static double rel_error(px_codec_spec s, const float *x, size_t n, float *y, void *payload)
{
    px_codec *c;
    check(px_codec_create(&c, &s, n, NULL), "codec");
    px_codec_stream st = {.seed = 1, .step = 1, .worker = 0};
    size_t bytes = px_codec_payload_bytes(&s, n);
    check(px_codec_encode(c, &st, x, n, NULL, payload, bytes), "encode");
    check(px_codec_decode(c, &st, payload, bytes, y, n), "decode");
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        m += (double)x[i] * x[i];
    }
    px_codec_destroy(c);
    return sqrt(e / m);
}

static void synthetic_heavy_tailed(float *x, size_t n)
{
    px_rng r;
    px_rng_init(&r, 2024, 1, 2, 3);
    double layer_scale = 1;
    for (size_t i = 0; i < n; i++) {
        if (i % 65536 == 0) layer_scale = pow(10.0, -4.0 + 3.0 * px_rng_uniform(&r));
        /* Student-t with 3 degrees of freedom: z / sqrt(chi2_3 / 3) */
        double z = px_rng_normal(&r), c = 0;
        for (int k = 0; k < 3; k++) {
            double g = px_rng_normal(&r);
            c += g * g;
        }
        x[i] = (float)(layer_scale * z / sqrt(c / 3));
    }
}

static void error_table(const char *label, const float *x, size_t n, const long *blocks,
                        int n_blocks)
{
    float *y = malloc(n * sizeof *y);
    px_codec_spec big = {.format = PX_CODEC_BF16, .rht = 1, .block_size = 1};
    void *payload = px_alloc(px_codec_payload_bytes(&big, n) + 64, "payload");
    if (!y || !payload) {
        fprintf(stderr, "bench_codec: out of memory\n");
        exit(1);
    }
    printf("\n%s (%zu values)\n", label, n);
    printf("| codec | bytes / fp32 bytes |");
    for (int b = 0; b < n_blocks; b++) printf(" B = %ld |", blocks[b]);
    printf("\n|---|---|");
    for (int b = 0; b < n_blocks; b++) printf("---|");
    printf("\n");
    for (size_t k = 0; k < N_CODECS; k++) {
        if (CODECS[k].ef) continue;
        px_codec_spec s0 = {.format = CODECS[k].format, .rht = CODECS[k].rht,
                            .stochastic = CODECS[k].stochastic, .block_size = (uint32_t)blocks[0]};
        printf("| %s | %.4f |", CODECS[k].name,
               (double)px_codec_payload_bytes(&s0, n) / (4.0 * (double)n));
        for (int b = 0; b < n_blocks; b++) {
            px_codec_spec s = s0;
            s.block_size = (uint32_t)blocks[b];
            printf(" %.2e |", rel_error(s, x, n, y, payload));
        }
        printf("\n");
    }
    printf("(bytes ratio at B = %ld)\n", blocks[0]);
    free(y);
    px_free(payload);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    size_t d = 10000000;
    int reps = 5, speed = 1, n_grads = 0;
    long threads[MAX_LIST] = {1, 2}, blocks[MAX_LIST] = {256, 1024, 4096};
    int n_threads = 2, n_blocks = 3;
    const char *grads[MAX_GRADS];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--d") && v) d = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) n_threads = parse_list(argv[++i], threads);
        else if (!strcmp(a, "--blocks") && v) n_blocks = parse_list(argv[++i], blocks);
        else if (!strcmp(a, "--grad") && v && n_grads < MAX_GRADS) grads[n_grads++] = argv[++i];
        else if (!strcmp(a, "--no-speed")) speed = 0;
        else if (!strcmp(a, "--help")) {
            printf("usage: bench_codec [--d N] [--reps R] [--threads 1,2] [--blocks 256,1024]\n"
                   "                   [--grad FILE.npy]... [--no-speed]\n"
                   "Throughput (GB/s of fp32 input) of every codec beside memcpy, and relative\n"
                   "error on synthetic heavy-tailed data and on each --grad float32 .npy file.\n");
            return 0;
        } else {
            fprintf(stderr,
                    "usage: bench_codec [--d N] [--reps R] [--threads 1,2] [--blocks 256,1024]\n"
                    "                   [--grad FILE.npy]... [--no-speed]\n");
            return 2;
        }
    }
    if (n_threads < 1 || n_blocks < 1 || d == 0 || reps < 1) {
        fprintf(stderr, "bench_codec: bad --d, --reps, --threads or --blocks\n");
        return 2;
    }
    for (int b = 0; b < n_blocks; b++) {
        px_codec_spec s = {.format = PX_CODEC_INT8, .block_size = (uint32_t)blocks[b]};
        check(px_codec_spec_check(&s), "--blocks");
    }

    float *x = px_alloc(d * sizeof *x, "input"), *y = px_alloc(d * sizeof *y, "output");
    px_codec_spec widest = {.format = PX_CODEC_BF16, .rht = 1, .block_size = 1};
    void *payload = px_alloc(px_codec_payload_bytes(&widest, d) + 64, "payload");
    float *residual = px_alloc(d * sizeof *residual, "residual");
    if (!x || !y || !payload || !residual) {
        fprintf(stderr, "bench_codec: %s\n", px_errmsg());
        return 1;
    }
    synthetic_heavy_tailed(x, d);

    if (speed) {
        printf("Codec throughput, d = %zu fp32 values (%.0f MB), best of %d runs; GB/s of fp32 "
               "input\n\n",
               d, d * 4 / 1e6, reps);
        printf("| codec | B | threads | encode GB/s | decode GB/s | enc+dec GB/s | memcpy GB/s | "
               "enc+dec / memcpy |\n|---|---|---|---|---|---|---|---|\n");
        double probe_one = 0;
        char probe_note[1024] = "";
        for (int t = 0; t < n_threads; t++) {
            px_pool *pool = NULL;
            check(px_pool_create(&pool, (int)threads[t]), "pool");
            double probe = probe_tasks_per_ms(pool, reps);
            if (t == 0) probe_one = probe / threads[0];
            size_t used = strlen(probe_note);
            snprintf(probe_note + used, sizeof probe_note - used,
                     "%s%ld thread%s: %.2fx one thread's compute", used ? "; " : "", threads[t],
                     threads[t] > 1 ? "s" : "", probe / probe_one);
            /* memcpy touches y first: every buffer is paged in before any timing */
            double copy_ms = time_memcpy(pool, x, y, d, reps);
            double copy = gbps(d, copy_ms);
            for (size_t k = 0; k < N_CODECS + 1; k++) {
                for (int b = 0; b < n_blocks; b++) {
                    px_codec_spec s = {.format = PX_CODEC_FP32};
                    const char *name = "fp32";
                    if (k > 0) {
                        s.format = CODECS[k - 1].format;
                        s.rht = CODECS[k - 1].rht;
                        s.stochastic = CODECS[k - 1].stochastic;
                        s.block_size = (uint32_t)blocks[b];
                        name = CODECS[k - 1].name;
                    } else if (b > 0) {
                        break;
                    }
                    px_codec *c;
                    check(px_codec_create(&c, &s, d, pool), "codec");
                    size_t bytes = px_codec_payload_bytes(&s, d);
                    double enc = 1e30, dec = 1e30;
                    for (int r = 0; r < reps; r++) {
                        px_codec_stream st = {.seed = 1, .step = (uint32_t)r, .worker = 0};
                        double t0 = px_now_ms();
                        check(px_codec_encode(c, &st, x, d,
                                              k && CODECS[k - 1].ef ? residual : NULL, payload,
                                              bytes),
                              "encode");
                        double t1 = px_now_ms();
                        check(px_codec_decode(c, &st, payload, bytes, y, d), "decode");
                        double t2 = px_now_ms();
                        enc = t1 - t0 < enc ? t1 - t0 : enc;
                        dec = t2 - t1 < dec ? t2 - t1 : dec;
                    }
                    double both = gbps(d, enc + dec);
                    char bname[16] = "-";
                    if (k) snprintf(bname, sizeof bname, "%ld", blocks[b]);
                    printf("| %s | %s | %ld | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, bname,
                           threads[t], gbps(d, enc), gbps(d, dec), both, copy, both / copy);
                    px_codec_destroy(c);
                }
            }
            px_pool_destroy(pool);
        }
        printf("\nCompute available (an L1-resident transform loop timed beside each thread count; "
               "on a shared VM a second vCPU can give less than a core): %s\n",
               probe_note);
    }

    const char *label = "Relative L2 error ||x - decode(encode(x))|| / ||x||, round to nearest "
                        "even unless sr; SYNTHETIC heavy-tailed data (Student-t, 3 dof, scale "
                        "changing every 64K values), not real gradients";
    error_table(label, x, d, blocks, n_blocks);
    for (int g = 0; g < n_grads; g++) {
        float *gx = NULL;
        size_t gn = 0;
        if (read_npy(grads[g], &gx, &gn) < 0) {
            fprintf(stderr, "bench_codec: %s\n", px_errmsg());
            return 1;
        }
        char buf[512];
        snprintf(buf, sizeof buf, "Relative L2 error on %s", grads[g]);
        error_table(buf, gx, gn, blocks, n_blocks);
        px_free(gx);
    }
    px_free(x);
    px_free(y);
    px_free(payload);
    px_free(residual);
    return 0;
}
