/* test_codec.c - the codec API of comm/codec.h: specs and the wire byte, payload sizes and the
 * refusal of wrong-size payloads, round-trip error bounds of every format with and without the
 * RHT, the 100x-outlier case, payloads that would decode to NaN/Inf, determinism (also across
 * threads), unbiased stochastic rounding (Hoeffding bound), error feedback and the downlink
 * delta. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>

#include "comm/codec.h"
#include "runtime/pool.h"
#include "runtime/rng.h"

static const px_codec_format FORMATS[] = {PX_CODEC_BF16, PX_CODEC_FP16, PX_CODEC_INT8,
                                          PX_CODEC_FP8_E4M3};
#define N_FORMATS (sizeof FORMATS / sizeof FORMATS[0])

static px_codec_spec spec_of(px_codec_format f, int rht, int sr, uint32_t block)
{
    px_codec_spec s = {.format = f, .rht = rht, .stochastic = sr, .block_size = block};
    return s;
}

static px_codec *make(px_codec_spec s, size_t n_max, px_pool *pool)
{
    px_codec *c = NULL;
    if (px_codec_create(&c, &s, n_max, pool) != PX_OK) fail_msg("create: %s", px_errmsg());
    return c;
}

static void fill_normal(float *x, size_t n, uint64_t seed, double sd)
{
    px_rng r;
    px_rng_init(&r, seed, 77, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * px_rng_normal(&r));
}

static float scale_at(const void *payload, const px_codec_spec *s, size_t block)
{
    size_t bytes = 4 + (size_t)s->block_size * (s->format == PX_CODEC_BF16 ||
                                                        s->format == PX_CODEC_FP16
                                                    ? 2
                                                    : 1);
    float v;
    memcpy(&v, (const unsigned char *)payload + block * bytes, 4);
    return v;
}

static void set_scale(void *payload, const px_codec_spec *s, size_t block, float v)
{
    size_t bytes = 4 + (size_t)s->block_size * (s->format == PX_CODEC_BF16 ||
                                                        s->format == PX_CODEC_FP16
                                                    ? 2
                                                    : 1);
    memcpy((unsigned char *)payload + block * bytes, &v, 4);
}

/* ---- specs, wire byte, sizes ----------------------------------------------------------------- */

static void test_spec_and_wire_byte(void **state)
{
    (void)state;
    px_codec_spec s = spec_of(PX_CODEC_INT8, 1, 1, 256), t;
    assert_int_equal(px_codec_spec_check(&s), PX_OK);
    assert_int_equal(px_codec_wire_id(&s), 0x13);
    assert_int_equal(px_codec_wire_block(&s), 256);
    assert_int_equal(px_codec_from_wire(0x13, 256, &t), PX_OK);
    assert_int_equal(t.format, PX_CODEC_INT8);
    assert_int_equal(t.rht, 1);
    assert_int_equal(t.stochastic, 0); /* not on the wire */
    assert_int_equal(t.block_size, 256);
    /* every valid spec survives the round trip */
    for (size_t f = 0; f < N_FORMATS; f++)
        for (int rht = 0; rht < 2; rht++)
            for (uint32_t b = 1; b <= PX_CODEC_MAX_BLOCK; b *= 2) {
                s = spec_of(FORMATS[f], rht, 0, b);
                assert_int_equal(px_codec_spec_check(&s), PX_OK);
                assert_int_equal(
                    px_codec_from_wire(px_codec_wire_id(&s), px_codec_wire_block(&s), &t), PX_OK);
                assert_int_equal(t.format, s.format);
                assert_int_equal(t.rht, s.rht);
                assert_int_equal(t.block_size, s.block_size);
            }
    /* fp32 is byte 0 with block 0, whatever block the spec carries */
    s = spec_of(PX_CODEC_FP32, 0, 0, 256);
    assert_int_equal(px_codec_spec_check(&s), PX_OK);
    assert_int_equal(px_codec_wire_id(&s), 0);
    assert_int_equal(px_codec_wire_block(&s), 0);
    assert_int_equal(px_codec_from_wire(0, 0, &t), PX_OK);
    assert_int_equal(t.format, PX_CODEC_FP32);

    /* refusals name the value */
    s = spec_of(PX_CODEC_INT8, 0, 0, 96);
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "96"));
    assert_non_null(strstr(px_errmsg(), "power of two"));
    s.block_size = 0;
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);
    s.block_size = 131072;
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "131072"));
    s = spec_of((px_codec_format)9, 0, 0, 256);
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "9"));
    s = spec_of(PX_CODEC_FP32, 1, 0, 0);
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);
    s = spec_of(PX_CODEC_FP32, 0, 1, 0);
    assert_int_equal(px_codec_spec_check(&s), PX_EINVAL);

    assert_int_equal(px_codec_from_wire(0x05, 256, &t), PX_EINVAL); /* unknown format 5 */
    assert_non_null(strstr(px_errmsg(), "0x05"));
    assert_int_equal(px_codec_from_wire(0x0F, 256, &t), PX_EINVAL);
    assert_int_equal(px_codec_from_wire(0x23, 256, &t), PX_EINVAL); /* reserved bit */
    assert_non_null(strstr(px_errmsg(), "0x23"));
    assert_int_equal(px_codec_from_wire(0x10, 0, &t), PX_EINVAL);   /* rht on fp32 */
    assert_int_equal(px_codec_from_wire(0x00, 256, &t), PX_EINVAL); /* fp32 with a block */
    assert_int_equal(px_codec_from_wire(0x13, 100, &t), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "100"));
    assert_int_equal(px_codec_from_wire(0x13, 0, &t), PX_EINVAL);
    assert_int_equal(px_codec_from_wire(0x13, 1u << 20, &t), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "1048576"));

    px_codec *c = NULL;
    s = spec_of(PX_CODEC_INT8, 0, 0, 48);
    assert_int_equal(px_codec_create(&c, &s, 10, NULL), PX_EINVAL);
    assert_null(c);
    char buf[64];
    s = spec_of(PX_CODEC_FP8_E4M3, 1, 1, 128);
    assert_string_equal(px_codec_describe(&s, buf, sizeof buf), "fp8_e4m3+rht/128 sr");
}

static void test_payload_sizes(void **state)
{
    (void)state;
    /* by hand: int8 B = 256, n = 1000 = 3 * 256 + 232 */
    px_codec_spec s = spec_of(PX_CODEC_INT8, 0, 0, 256);
    assert_int_equal(px_codec_payload_bytes(&s, 1000), 3 * 260 + 4 + 232);
    s.rht = 1; /* the partial block travels padded to 256 rotated values */
    assert_int_equal(px_codec_payload_bytes(&s, 1000), 4 * 260);
    s = spec_of(PX_CODEC_BF16, 1, 0, 64); /* n = 100 = 64 + 36 -> padded to 64 */
    assert_int_equal(px_codec_payload_bytes(&s, 100), 2 * (4 + 128));
    s.rht = 0;
    assert_int_equal(px_codec_payload_bytes(&s, 100), (4 + 128) + (4 + 72));
    s = spec_of(PX_CODEC_FP8_E4M3, 1, 0, 1024); /* n = 1500: 1024 + 476 -> 512 */
    assert_int_equal(px_codec_payload_bytes(&s, 1500), (4 + 1024) + (4 + 512));
    s = spec_of(PX_CODEC_FP32, 0, 0, 0);
    assert_int_equal(px_codec_payload_bytes(&s, 1000), 4000);
    s = spec_of(PX_CODEC_INT8, 0, 0, 256);
    assert_int_equal(px_codec_payload_bytes(&s, 0), 0);
    s.block_size = 0; /* an unchecked invalid spec: no payload size matches */
    assert_int_equal(px_codec_payload_bytes(&s, 1000), 0);
    s.block_size = 96;
    assert_int_equal(px_codec_payload_bytes(&s, 1000), 0);
    s.block_size = 256;
    /* the target: int8 + RHT at B = 256 is (256 + 4) / 1024 = 0.254x of fp32 */
    s.rht = 1;
    assert_true(px_codec_payload_bytes(&s, 1 << 20) <= 0.27 * 4 * (1 << 20));
}

static void test_wrong_size_refused(void **state)
{
    (void)state;
    size_t n = 1000;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    fill_normal(x, n, 1, 1.0);
    px_codec_stream st = {.seed = 1, .step = 2, .worker = 3};
    for (size_t f = 0; f < N_FORMATS + 1; f++) {
        px_codec_format fmt = f < N_FORMATS ? FORMATS[f] : PX_CODEC_FP32;
        px_codec_spec s = spec_of(fmt, fmt != PX_CODEC_FP32, 0, 256);
        px_codec *c = make(s, n, NULL);
        size_t bytes = px_codec_payload_bytes(&s, n);
        unsigned char *p = px_alloc(bytes + 64, "test payload");
        assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, bytes - 1, y, n), PX_EINVAL);
        char want[32];
        snprintf(want, sizeof want, "expected %zu", bytes);
        assert_non_null(strstr(px_errmsg(), want));
        assert_int_equal(px_codec_decode(c, &st, p, bytes + 1, y, n), PX_EINVAL);
        assert_int_equal(px_codec_decode(c, &st, p, bytes + 4, y, n), PX_EINVAL);
        assert_int_equal(px_codec_decode(c, &st, p, 0, y, n), PX_EINVAL);
        /* the same bytes read as another element count (with RHT, 999 and 1000 values have
         * the same padded size: the header's element count tells them apart) */
        if (!s.rht) assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n - 1), PX_EINVAL);
        assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n - 300), PX_EINVAL);
        assert_int_equal(px_codec_decode_add(c, &st, p, bytes - 1, y, n), PX_EINVAL);
        assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes + 1), PX_EINVAL);
        /* more values than the context was made for */
        assert_int_equal(px_codec_decode(c, &st, p, px_codec_payload_bytes(&s, n + 1), y, n + 1),
                         PX_EINVAL);
        assert_non_null(strstr(px_errmsg(), "n_max"));
        /* a misaligned payload */
        if (fmt != PX_CODEC_FP32) {
            assert_int_equal(px_codec_decode(c, &st, p + 1, bytes, y, n), PX_EINVAL);
        }
        /* rht needs a stream */
        if (s.rht) assert_int_equal(px_codec_decode(c, NULL, p, bytes, y, n), PX_EINVAL);
        px_free(p);
        px_codec_destroy(c);
    }
    free(x);
    free(y);
}

static void test_fp32_is_raw(void **state)
{
    (void)state;
    size_t n = 777;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    fill_normal(x, n, 5, 3.0);
    px_codec_spec s = spec_of(PX_CODEC_FP32, 0, 0, 0);
    px_codec *c = make(s, n, NULL);
    float *p = px_alloc(n * 4, "payload");
    assert_int_equal(px_codec_encode(c, NULL, x, n, NULL, p, n * 4), PX_OK);
    assert_memory_equal(p, x, n * 4); /* identical to the plain fp32 message */
    assert_int_equal(px_codec_decode(c, NULL, p, n * 4, y, n), PX_OK);
    assert_memory_equal(y, x, n * 4);
    p[100] = NAN;
    assert_int_equal(px_codec_decode(c, NULL, p, n * 4, y, n), PX_EPROTO);
    px_free(p);
    px_codec_destroy(c);
    free(x);
    free(y);
}

/* ---- round-trip error bounds ----------------------------------------------------------------- */

/* Per-value bound of the rounding error, in units of the scale, for |y| = |value| / scale:
 * int8 1/2; E4M3 2^-4 |y| above the smallest normal, 2^-10 below (half the spacing); fp16
 * 2^-11 |y|, 2^-25 below its smallest normal; bf16 2^-8 |y|. Returned as a (relative, absolute)
 * pair: err <= rel * |y| + abs. */
static void format_bound(px_codec_format f, double *rel, double *abs_)
{
    switch (f) {
    case PX_CODEC_INT8: *rel = 0, *abs_ = 0.5; break;
    case PX_CODEC_FP8_E4M3: *rel = 0x1.0p-4, *abs_ = 0x1.0p-10; break;
    case PX_CODEC_FP16: *rel = 0x1.0p-11, *abs_ = 0x1.0p-25; break;
    case PX_CODEC_BF16: *rel = 0x1.0p-8, *abs_ = 0x1.0p-133; break;
    default: *rel = 0, *abs_ = 0;
    }
}

/* Checks decode(encode(x)) block by block: without RHT every value is within the format's bound
 * of the scale it was sent with; with RHT the block's L2 error is within the bound applied to the
 * rotated block (orthonormal: ||err||_2 <= rel * ||x_b||_2 + abs * scale * sqrt(P)). A slack of
 * 2^-20 relative covers the fp32 arithmetic of scaling and of the transform. Returns the largest
 * ratio error / bound seen (<= 1 when all hold). */
static double check_round_trip(px_codec_spec s, const float *x, size_t n, const void *payload,
                               const float *y)
{
    double rel, abs_, worst = 0;
    format_bound(s.format, &rel, &abs_);
    size_t B = s.block_size;
    for (size_t b = 0; b * B < n; b++) {
        size_t r = n - b * B < B ? n - b * B : B, P = 1;
        while (P < r) P <<= 1;
        double sc = scale_at(payload, &s, b);
        if (!s.rht) {
            for (size_t i = b * B; i < b * B + r; i++) {
                double err = fabs((double)x[i] - y[i]);
                double bound = rel * fabs(x[i]) + abs_ * sc + 0x1.0p-20 * fabs(x[i]) + 1e-37;
                if (err / bound > worst) worst = err / bound;
            }
        } else {
            double e2 = 0, x2 = 0;
            for (size_t i = b * B; i < b * B + r; i++) {
                e2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                x2 += (double)x[i] * x[i];
            }
            double bound = rel * sqrt(x2) + abs_ * sc * sqrt((double)P) + 0x1.0p-20 * sqrt(x2) +
                           1e-37;
            if (sqrt(e2) / bound > worst) worst = sqrt(e2) / bound;
        }
    }
    return worst;
}

static void test_round_trip_bounds(void **state)
{
    (void)state;
    size_t n = 5000 + 37;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    /* blocks of very different magnitudes, a few spikes, zeros, one all-zero stretch */
    fill_normal(x, n, 3, 1.0);
    for (size_t i = 0; i < n; i++) x[i] *= (float)pow(10.0, (double)((i / 300) % 9) - 4.0);
    x[17] *= 100;
    x[2222] = -5e3f;
    for (size_t i = 1024; i < 1024 + 300; i++) x[i] = 0.0f;
    px_codec_stream st = {.seed = 42, .step = 9, .worker = 4};
    uint32_t blocks[] = {1, 16, 64, 256, 4096};
    for (size_t f = 0; f < N_FORMATS; f++)
        for (int rht = 0; rht < 2; rht++)
            for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; k++) {
                px_codec_spec s = spec_of(FORMATS[f], rht, 0, blocks[k]);
                px_codec *c = make(s, n, NULL);
                size_t bytes = px_codec_payload_bytes(&s, n);
                void *p = px_alloc(bytes, "payload");
                assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
                assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
                double worst = check_round_trip(s, x, n, p, y);
                char name[48];
                if (worst > 1.0)
                    fail_msg("%s: error %.3g x its bound", px_codec_describe(&s, name, sizeof name),
                             worst);
                /* the all-zero stretch stays exactly zero without RHT */
                if (!rht && blocks[k] <= 256) assert_true(y[1024 + 256] == 0.0f);
                px_free(p);
                px_codec_destroy(c);
            }
    free(x);
    free(y);
}

static void test_ties_survive_the_scale(void **state)
{
    (void)state;
    /* bf16/fp16 use power-of-two scales: round to nearest even ties stay ties end to end */
    float x[4] = {1.0f, 0x1.01p0f, 0x1.03p0f, -0x1.01p0f}; /* 1, 1+2^-8, 1+3*2^-8 */
    float y[4];
    px_codec_spec s = spec_of(PX_CODEC_BF16, 0, 0, 4);
    px_codec *c = make(s, 4, NULL);
    uint32_t p[4]; /* 4 + 8 bytes */
    assert_int_equal(px_codec_encode(c, NULL, x, 4, NULL, p, 12), PX_OK);
    assert_int_equal(px_codec_decode(c, NULL, p, 12, y, 4), PX_OK);
    assert_true(y[0] == 1.0f && y[1] == 1.0f && y[2] == 0x1.04p0f && y[3] == -1.0f);
    px_codec_destroy(c);
    float h[3] = {1.0f, 0x1.002p0f, 0x1.006p0f}; /* 1, 1+2^-11, 1+3*2^-11 */
    s = spec_of(PX_CODEC_FP16, 0, 0, 4);
    c = make(s, 3, NULL);
    assert_int_equal(px_codec_encode(c, NULL, h, 3, NULL, p, 10), PX_OK);
    assert_true(scale_at(p, &s, 0) == 0x1.0p-14f);
    assert_int_equal(px_codec_decode(c, NULL, p, 10, y, 3), PX_OK);
    assert_true(y[0] == 1.0f && y[1] == 1.0f && y[2] == 0x1.008p0f);
    px_codec_destroy(c);
    /* fp8: a block whose absmax is 448 has scale 1 and the codes are the format's own */
    float e[6] = {448.0f, 1.0f, 0.015625f, 0.001953125f, 0.0009765625f, -1.1875f};
    const uint8_t want[6] = {0x7E, 0x38, 0x08, 0x01, 0x00, 0xBA};
    s = spec_of(PX_CODEC_FP8_E4M3, 0, 0, 8);
    c = make(s, 6, NULL);
    unsigned char q[12];
    assert_int_equal(px_codec_encode(c, NULL, e, 6, NULL, (uint32_t *)p, 10), PX_OK);
    memcpy(q, p, 10);
    assert_true(scale_at(q, &s, 0) == 1.0f);
    assert_memory_equal(q + 4, want, 6);
    px_codec_destroy(c);
}

static double rel_error(const float *x, const float *y, size_t n)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        m += (double)x[i] * x[i];
    }
    return sqrt(e / m);
}

static double codec_rel_error(px_codec_spec s, const float *x, size_t n, uint32_t step)
{
    px_codec *c = make(s, n, NULL);
    size_t bytes = px_codec_payload_bytes(&s, n);
    void *p = px_alloc(bytes, "payload");
    float *y = malloc(n * sizeof *y);
    px_codec_stream st = {.seed = 1, .step = step, .worker = 0};
    assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
    assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
    double e = rel_error(x, y, n);
    free(y);
    px_free(p);
    px_codec_destroy(c);
    return e;
}

static void test_outlier_rht_int8(void **state)
{
    (void)state;
    /* ALGORITHMS.md section 5: 256 values, one 100x outlier; int8 relative error about 3.4e-2
     * without rotation and 3.0e-3 with the RHT. Required: at least 5x better, for any signs. */
    float x[256];
    double sum_plain = 0, sum_rht = 0, sum_f8 = 0, sum_f8r = 0;
    for (uint32_t trial = 0; trial < 20; trial++) {
        fill_normal(x, 256, 100 + trial, 1.0);
        x[37 + trial] = 100.0f;
        double plain = codec_rel_error(spec_of(PX_CODEC_INT8, 0, 0, 256), x, 256, trial);
        double rht = codec_rel_error(spec_of(PX_CODEC_INT8, 1, 0, 256), x, 256, trial);
        if (plain < 5 * rht) fail_msg("trial %u: int8 %.3g, int8+rht %.3g", trial, plain, rht);
        sum_plain += plain;
        sum_rht += rht;
        sum_f8 += codec_rel_error(spec_of(PX_CODEC_FP8_E4M3, 0, 0, 256), x, 256, trial);
        sum_f8r += codec_rel_error(spec_of(PX_CODEC_FP8_E4M3, 1, 0, 256), x, 256, trial);
    }
    print_message("    mean relative error over 20 vectors: int8 %.2e, int8+rht %.2e (%.1fx); "
                  "fp8 %.2e, fp8+rht %.2e\n",
                  sum_plain / 20, sum_rht / 20, sum_plain / sum_rht, sum_f8 / 20, sum_f8r / 20);
    /* fp8 is floating point: the outlier does not hurt it much either way */
    assert_true(sum_f8 / 20 < 0.05 && sum_f8r / 20 < 0.05);
}

/* ---- payloads that must not decode ----------------------------------------------------------- */

static px_status decode_status(px_codec_spec s, void *p, size_t n, px_codec_stream *st)
{
    px_codec *c = make(s, n, NULL);
    float *y = malloc(n * sizeof *y);
    px_status rc = px_codec_decode(c, st, p, px_codec_payload_bytes(&s, n), y, n);
    if (rc == PX_OK)
        for (size_t i = 0; i < n; i++) assert_true(isfinite(y[i]));
    /* decode_add agrees */
    memset(y, 0, n * sizeof *y);
    assert_int_equal(px_codec_decode_add(c, st, p, px_codec_payload_bytes(&s, n), y, n), rc);
    free(y);
    px_codec_destroy(c);
    return rc;
}

static void test_nonfinite_payloads_refused(void **state)
{
    (void)state;
    px_codec_stream st = {.seed = 3, .step = 1, .worker = 0};
    float x[8] = {1, -2, 3, -4, 5, -6, 7, -8};
    unsigned char p[64] __attribute__((aligned(8)));
    /* int8, blocks of 4: [scale | 4 codes] x 2 */
    px_codec_spec s = spec_of(PX_CODEC_INT8, 0, 0, 4);
    px_codec *c = make(s, 8, NULL);
    assert_int_equal(px_codec_encode(c, &st, x, 8, NULL, p, 16), PX_OK);
    px_codec_destroy(c);
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);
    set_scale(p, &s, 1, NAN);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    assert_non_null(strstr(px_errmsg(), "block 1"));
    set_scale(p, &s, 1, INFINITY);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    set_scale(p, &s, 1, -1.0f); /* negative but finite: decodes */
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);
    set_scale(p, &s, 1, 3e38f); /* 127 * 3e38 overflows */
    p[8 + 4] = 127;
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    set_scale(p, &s, 1, 1.0f);
    p[8 + 4] = 0x80; /* -128 is never sent but decodes to a finite -128 * scale */
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);

    /* fp8: the NaN codes, also under a zero scale (0 * NaN) */
    s = spec_of(PX_CODEC_FP8_E4M3, 0, 0, 4);
    memset(p, 0, sizeof p);
    set_scale(p, &s, 0, 1.0f);
    set_scale(p, &s, 1, 1.0f);
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);
    p[5] = 0x7F;
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    assert_non_null(strstr(px_errmsg(), "block 0"));
    p[5] = 0xFF;
    set_scale(p, &s, 0, 0.0f);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    p[5] = 0x7E; /* 448 * scale: fine */
    set_scale(p, &s, 0, 1e30f);
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);
    set_scale(p, &s, 0, 1e36f); /* 448e36 overflows */
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);

    /* fp16: inf and NaN codes; bf16: inf code and an overflowing finite code */
    s = spec_of(PX_CODEC_FP16, 0, 0, 4);
    memset(p, 0, sizeof p);
    set_scale(p, &s, 0, 1.0f);
    set_scale(p, &s, 1, 1.0f);
    uint16_t h = 0x7C00; /* block 1 starts at 12: scale, then codes; this is its code 1 */
    memcpy(p + 16 + 2, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    assert_non_null(strstr(px_errmsg(), "block 1"));
    h = 0xFE00;
    memcpy(p + 16 + 2, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    h = 0x7BFF;
    memcpy(p + 16 + 2, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);
    s = spec_of(PX_CODEC_BF16, 0, 0, 4);
    memset(p, 0, sizeof p);
    set_scale(p, &s, 0, 2.0f);
    set_scale(p, &s, 1, 2.0f);
    h = 0x7F80;
    memcpy(p + 4, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    h = 0x7F7F; /* 3.39e38 * 2 overflows */
    memcpy(p + 4, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_EPROTO);
    h = 0x3F80;
    memcpy(p + 4, &h, 2);
    assert_int_equal(decode_status(s, p, 8, &st), PX_OK);

    /* RHT: every rotated value finite, but the inverse transform overflows */
    s = spec_of(PX_CODEC_INT8, 1, 0, 256);
    unsigned char *q = px_alloc(260, "payload");
    memset(q, 127, 260);
    set_scale(q, &s, 0, 1e35f); /* 127e35 each; the sum of 256 overflows fp32 */
    assert_int_equal(decode_status(s, q, 256, &st), PX_EPROTO);
    set_scale(q, &s, 0, 1e30f);
    assert_int_equal(decode_status(s, q, 256, &st), PX_OK);
    px_free(q);
}

static void test_random_payloads_decode_finite_or_refused(void **state)
{
    (void)state;
    /* a malicious sender controls every byte: decode is either PX_OK with finite values or
     * PX_EPROTO (decode_status checks both) */
    px_rng r;
    px_rng_init(&r, 5, 6, 7, 8);
    px_codec_stream st = {.seed = 9, .step = 9, .worker = 9};
    size_t n = 100;
    int ok = 0, refused = 0;
    for (size_t f = 0; f < N_FORMATS; f++)
        for (int rht = 0; rht < 2; rht++) {
            px_codec_spec s = spec_of(FORMATS[f], rht, 0, 16);
            size_t bytes = px_codec_payload_bytes(&s, n);
            unsigned char *p = px_alloc(bytes, "payload");
            for (int trial = 0; trial < 500; trial++) {
                for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)px_rng_u64(&r);
                if (trial % 2) /* half the time, plausible scales */
                    for (size_t b = 0; b * 16 < n; b++)
                        set_scale(p, &s, b, (float)ldexp(1.0, (int)px_rng_below(&r, 60) - 30));
                px_status rc = decode_status(s, p, n, &st);
                assert_true(rc == PX_OK || rc == PX_EPROTO);
                ok += rc == PX_OK;
                refused += rc == PX_EPROTO;
            }
            px_free(p);
        }
    assert_true(ok > 100 && refused > 100); /* both outcomes exercised */
}

static void test_nonfinite_input(void **state)
{
    (void)state;
    /* NaN/Inf in the input: that block gets a NaN scale; the receiver refuses the payload;
     * the error-feedback residual of that block is reset, the others carry on */
    size_t n = 64;
    float x[64], res[64], y[64];
    fill_normal(x, n, 8, 1.0);
    for (size_t i = 0; i < n; i++) res[i] = 0.001f;
    x[40] = NAN;
    px_codec_stream st = {.seed = 1, .step = 1, .worker = 1};
    for (int rht = 0; rht < 2; rht++) {
        px_codec_spec s = spec_of(PX_CODEC_INT8, rht, 0, 16);
        px_codec *c = make(s, n, NULL);
        unsigned char p[4 * 20] __attribute__((aligned(8)));
        assert_int_equal(px_codec_encode(c, &st, x, n, res, p, sizeof p), PX_OK);
        assert_true(isnan(scale_at(p, &s, 2)));
        assert_true(isfinite(scale_at(p, &s, 1)));
        for (size_t i = 32; i < 48; i++) assert_true(res[i] == 0.0f);
        for (size_t i = 0; i < 32; i++) assert_true(isfinite(res[i]));
        assert_int_equal(px_codec_decode(c, &st, p, sizeof p, y, n), PX_EPROTO);
        assert_non_null(strstr(px_errmsg(), "block 2"));
        px_codec_destroy(c);
    }
    x[40] = INFINITY;
    px_codec_spec s = spec_of(PX_CODEC_FP8_E4M3, 0, 0, 16);
    px_codec *c = make(s, n, NULL);
    unsigned char p[4 * 20] __attribute__((aligned(8)));
    assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, sizeof p), PX_OK);
    assert_int_equal(px_codec_decode(c, &st, p, sizeof p, y, n), PX_EPROTO);
    px_codec_destroy(c);
}

/* ---- determinism ----------------------------------------------------------------------------- */

static void *encode_copy(px_codec *c, px_codec_spec s, const px_codec_stream *st, const float *x,
                         size_t n)
{
    size_t bytes = px_codec_payload_bytes(&s, n);
    void *p = px_alloc(bytes, "payload");
    assert_int_equal(px_codec_encode(c, st, x, n, NULL, p, bytes), PX_OK);
    return p;
}

static void test_determinism(void **state)
{
    (void)state;
    size_t n = 300000 + 123; /* large enough for the pool, not a multiple of the block */
    float *x = malloc(n * sizeof *x), *y1 = malloc(n * sizeof *y1), *y2 = malloc(n * sizeof *y2);
    fill_normal(x, n, 77, 0.01);
    px_pool *pool = NULL;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    px_codec_stream st = {.seed = 1234, .step = 56, .worker = 7};
    for (size_t f = 0; f < N_FORMATS; f++) {
        px_codec_spec s = spec_of(FORMATS[f], 1, 1, 256);
        size_t bytes = px_codec_payload_bytes(&s, n);
        px_codec *c1 = make(s, n, NULL), *c2 = make(s, n, pool);
        void *a = encode_copy(c1, s, &st, x, n);
        void *b = encode_copy(c1, s, &st, x, n);
        void *t = encode_copy(c2, s, &st, x, n); /* two threads */
        assert_memory_equal(a, b, bytes);
        assert_memory_equal(a, t, bytes);
        assert_int_equal(px_codec_decode(c1, &st, a, bytes, y1, n), PX_OK);
        assert_int_equal(px_codec_decode(c2, &st, a, bytes, y2, n), PX_OK);
        assert_memory_equal(y1, y2, n * sizeof *y1);
        /* another seed, step or worker: other signs and dither, other bytes */
        px_codec_stream o[3] = {st, st, st};
        o[0].seed++;
        o[1].step++;
        o[2].worker++;
        for (int k = 0; k < 3; k++) {
            void *d = encode_copy(c1, s, &o[k], x, n);
            assert_true(memcmp(a, d, bytes) != 0);
            /* decoding with the wrong stream gives garbage, not the input */
            assert_int_equal(px_codec_decode(c1, &o[k], a, bytes, y2, n), PX_OK);
            assert_true(rel_error(x, y2, n) > 0.5);
            px_free(d);
        }
        assert_true(rel_error(x, y1, n) < 0.1);
        px_free(a);
        px_free(b);
        px_free(t);
        px_codec_destroy(c1);
        px_codec_destroy(c2);
    }
    px_pool_destroy(pool);
    free(x);
    free(y1);
    free(y2);
}

/* ---- stochastic rounding is unbiased ------------------------------------------------------------
 * Over N independent draws (steps), the mean decoded value of an element estimates its
 * expectation. Given the block's signs and scale, the decoded element is x plus a sum of
 * independent zero-mean rounding errors (each value's dither is its own), whose ranges have
 * squared widths summing to at most w^2, w = the scale for int8 with or without the orthonormal
 * RHT (sum_j T_ij^2 = 1), or the local grid spacing for a float format. Hoeffding (Azuma for the
 * draw-to-draw dependence through the scale): P(|mean - x| >= t) <= 2 exp(-2 N t^2 / w^2). With
 * t = w sqrt(ln(2/delta) / (2N)) and delta = 1e-9 per element, a false failure over all the
 * elements tested has probability below 1e-6. The same check fails for round to nearest (bias up
 * to half a step), which shows that it can fail. */

static double sr_worst_ratio(px_codec_spec s, const float *x, size_t n, int draws,
                             double (*width)(px_codec_spec, float, double))
{
    px_codec *c = make(s, n, NULL);
    size_t bytes = px_codec_payload_bytes(&s, n);
    void *p = px_alloc(bytes, "payload");
    float *y = malloc(n * sizeof *y);
    double *sum = calloc(n, sizeof *sum), smax = 0;
    for (int d = 0; d < draws; d++) {
        px_codec_stream st = {.seed = 2024, .step = (uint32_t)d, .worker = 3};
        assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
        for (size_t i = 0; i < n; i++) sum[i] += y[i];
        double sc = scale_at(p, &s, 0);
        smax = sc > smax ? sc : smax;
    }
    double worst = 0, lg = sqrt(log(2 / 1e-9) / (2.0 * draws));
    for (size_t i = 0; i < n; i++) {
        double t = width(s, x[i], smax) * lg;
        double dev = fabs(sum[i] / draws - x[i]);
        worst = dev / t > worst ? dev / t : worst;
    }
    free(sum);
    free(y);
    px_free(p);
    px_codec_destroy(c);
    return worst;
}

static double width_scale(px_codec_spec s, float x, double scale)
{
    (void)s, (void)x;
    return scale;
}

static double width_e4m3(px_codec_spec s, float x, double scale)
{
    (void)s; /* spacing: 2^-3 |y| for normals, 2^-9 below; in units of the scale */
    return 0x1.0p-3 * fabs(x) + 0x1.0p-9 * scale;
}

static double width_bf16(px_codec_spec s, float x, double scale)
{
    (void)s, (void)scale;
    return 0x1.0p-7 * fabs(x);
}

static void test_stochastic_rounding_unbiased(void **state)
{
    (void)state;
    /* 64 values with fractional parts (in units of the int8 step) in [0.1, 0.45], so that round
     * to nearest is biased by at least 0.1 step; the largest, 127 steps, fixes the scale */
    enum { N = 64, DRAWS = 20000 };
    float x[N];
    px_rng r;
    px_rng_init(&r, 11, 12, 13, 14);
    const double step = 0.01;
    for (int i = 0; i < N - 1; i++) {
        double k = (double)px_rng_below(&r, 200) - 100, frac = 0.1 + 0.35 * px_rng_uniform(&r);
        x[i] = (float)((k + (k < 0 ? -frac : frac)) * step);
    }
    x[N - 1] = (float)(127 * step);
    double w = sr_worst_ratio(spec_of(PX_CODEC_INT8, 0, 1, N), x, N, DRAWS, width_scale);
    print_message("    int8 sr: largest |mean - x| = %.2f of the Hoeffding bound\n", w);
    assert_true(w < 1.0);
    assert_true(sr_worst_ratio(spec_of(PX_CODEC_INT8, 0, 0, N), x, N, DRAWS, width_scale) > 1.0);
    w = sr_worst_ratio(spec_of(PX_CODEC_INT8, 1, 1, N), x, N, DRAWS, width_scale);
    print_message("    int8+rht sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
    /* float formats: values placed between grid points */
    for (int i = 0; i < N; i++)
        x[i] = (float)((1.0 + 0.3 * px_rng_uniform(&r)) * pow(2, i % 7 - 3));
    w = sr_worst_ratio(spec_of(PX_CODEC_FP8_E4M3, 0, 1, N), x, N, DRAWS, width_e4m3);
    print_message("    fp8 sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
    assert_true(sr_worst_ratio(spec_of(PX_CODEC_FP8_E4M3, 0, 0, N), x, N, DRAWS, width_e4m3) > 1.0);
    w = sr_worst_ratio(spec_of(PX_CODEC_BF16, 0, 1, N), x, N, DRAWS, width_bf16);
    print_message("    bf16 sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
}

static void test_stochastic_rounding_independent(void **state)
{
    (void)state;
    /* values halfway between two int8 steps round up with probability 1/2 each, independently:
     * a pair of neighbours agrees in about half of the draws. With N draws the agreement count is
     * Binomial(N, 1/2): 6 standard deviations (3 sqrt(N)) bound it with probability 1 - 2e-9. A
     * dither shared by a block's values would make every pair agree every time. */
    enum { N = 16, DRAWS = 4000 };
    float x[N], y[N];
    for (int i = 0; i < N - 1; i++) x[i] = (float)((i - 7) + 0.5) * 0.01f;
    x[N - 1] = 1.27f; /* scale 0.01 */
    px_codec_spec s = spec_of(PX_CODEC_INT8, 0, 1, N);
    px_codec *c = make(s, N, NULL);
    unsigned char p[4 + N] __attribute__((aligned(8)));
    int agree[N - 2] = {0};
    for (int d = 0; d < DRAWS; d++) {
        px_codec_stream st = {.seed = 77, .step = (uint32_t)d, .worker = 1};
        assert_int_equal(px_codec_encode(c, &st, x, N, NULL, p, sizeof p), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, sizeof p, y, N), PX_OK);
        for (int i = 0; i < N - 2; i++) agree[i] += (y[i] > x[i]) == (y[i + 1] > x[i + 1]);
    }
    for (int i = 0; i < N - 2; i++)
        if (fabs(agree[i] - DRAWS / 2.0) > 3 * sqrt((double)DRAWS))
            fail_msg("values %d and %d rounded the same way in %d of %d draws", i, i + 1, agree[i],
                     DRAWS);
    px_codec_destroy(c);
}

/* ---- error feedback and the downlink delta --------------------------------------------------- */

static void test_error_feedback(void **state)
{
    (void)state;
    /* the same gradient g for T steps: with error feedback the decoded sum is T g minus the last
     * residual (telescoping), and the residual stays within one quantisation step */
    enum { N = 256, T = 100 };
    float g[N], res[N], y[N];
    fill_normal(g, N, 21, 1.0);
    for (int rht = 0; rht < 2; rht++) {
        px_codec_spec s = spec_of(PX_CODEC_INT8, rht, 0, 32);
        px_codec *c = make(s, N, NULL);
        size_t bytes = px_codec_payload_bytes(&s, N);
        void *p = px_alloc(bytes, "payload");
        double sum_ef[N] = {0}, sum_plain[N] = {0}, smax = 0;
        memset(res, 0, sizeof res);
        for (uint32_t t = 0; t < T; t++) {
            px_codec_stream st = {.seed = 5, .step = t, .worker = 0};
            assert_int_equal(px_codec_encode(c, &st, g, N, res, p, bytes), PX_OK);
            assert_int_equal(px_codec_decode(c, &st, p, bytes, y, N), PX_OK);
            for (int i = 0; i < N; i++) sum_ef[i] += y[i];
            if (t == T - 1)
                for (size_t b = 0; b < N / 32; b++) smax = fmax(smax, scale_at(p, &s, b));
            assert_int_equal(px_codec_encode(c, &st, g, N, NULL, p, bytes), PX_OK);
            assert_int_equal(px_codec_decode(c, &st, p, bytes, y, N), PX_OK);
            for (int i = 0; i < N; i++) sum_plain[i] += y[i];
        }
        double err_ef = 0, err_plain = 0;
        /* the last residual is the last payload's rounding: scale/2 per value without the
         * rotation, and at most the block's L2 bound sqrt(32) scale/2 per value with it */
        double bound = (rht ? sqrt(32.0) : 1.0) * 0.5 * smax * (1 + 1e-5) + 1e-7;
        for (int i = 0; i < N; i++) {
            /* telescoping: sum of decoded + final residual = T g */
            assert_true(fabs(sum_ef[i] + res[i] - (double)T * g[i]) < 1e-4 * T * fabs(g[i]) + 1e-5);
            assert_true(fabs(res[i]) <= bound);
            err_ef = fmax(err_ef, fabs(sum_ef[i] / T - g[i]));
            err_plain = fmax(err_plain, fabs(sum_plain[i] / T - g[i]));
        }
        print_message("    %s: mean over %d steps off by %.2e with error feedback, %.2e without\n",
                      rht ? "int8+rht" : "int8", T, err_ef, err_plain);
        if (!rht) assert_true(err_ef < 0.1 * err_plain);
        assert_true(err_ef <= bound / T + 1e-6);
        px_free(p);
        px_codec_destroy(c);
    }
}

static void test_downlink_delta(void **state)
{
    (void)state;
    /* the server's replica and a worker's replica stay bit-for-bit equal, and both track the
     * master within one step's quantisation error (it does not accumulate) */
    size_t n = 1000;
    float *master = malloc(n * sizeof *master), *rs = malloc(n * sizeof *rs),
          *rw = malloc(n * sizeof *rw), *step = malloc(n * sizeof *step);
    px_codec_format fmts[] = {PX_CODEC_INT8, PX_CODEC_FP8_E4M3, PX_CODEC_BF16, PX_CODEC_FP32};
    for (size_t f = 0; f < 4; f++)
        for (int rht = 0; rht < 2; rht++) {
            if (fmts[f] == PX_CODEC_FP32 && rht) continue;
            px_codec_spec s = spec_of(fmts[f], rht, fmts[f] == PX_CODEC_INT8 && rht, 64);
            px_codec *server = make(s, n, NULL), *worker = make(s, n, NULL);
            size_t bytes = px_codec_payload_bytes(&s, n);
            void *p = px_alloc(bytes, "payload");
            fill_normal(master, n, 31, 1.0);
            memcpy(rs, master, n * sizeof *rs);
            memcpy(rw, master, n * sizeof *rw);
            double first = 0, worst = 0;
            for (uint32_t t = 1; t <= 50; t++) {
                fill_normal(step, n, 1000 + t, 0.01);
                for (size_t i = 0; i < n; i++) master[i] += step[i];
                px_codec_stream st = {.seed = 8, .step = t, .worker = PX_CODEC_DOWNLINK};
                assert_int_equal(px_codec_encode_delta(server, &st, master, rs, n, p, bytes),
                                 PX_OK);
                assert_int_equal(px_codec_decode_add(worker, &st, p, bytes, rw, n), PX_OK);
                assert_memory_equal(rs, rw, n * sizeof *rs);
                double e = 0, m = 0;
                for (size_t i = 0; i < n; i++) {
                    e = fmax(e, fabs((double)master[i] - rw[i]));
                    m = fmax(m, fabs((double)step[i]));
                }
                if (t == 1) first = e;
                worst = fmax(worst, e);
                /* one step's error: well below the size of one update */
                if (fmts[f] != PX_CODEC_FP32) assert_true(e < 0.1 * m);
            }
            if (fmts[f] != PX_CODEC_FP32) assert_true(worst < 3 * first); /* no drift */
            px_free(p);
            px_codec_destroy(server);
            px_codec_destroy(worker);
        }
    free(master);
    free(rs);
    free(rw);
    free(step);
}

static void test_block_extremes(void **state)
{
    (void)state;
    /* B = 1 (a scale per value) and B = 65536 with a partial last block padded to 8192 */
    size_t n = 65536 + 4464;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    fill_normal(x, n, 99, 1.0);
    px_codec_stream st = {.seed = 1, .step = 1, .worker = 1};
    uint32_t blocks[] = {1, 65536};
    for (int k = 0; k < 2; k++)
        for (int rht = 0; rht < 2; rht++) {
            px_codec_spec s = spec_of(PX_CODEC_INT8, rht, 0, blocks[k]);
            px_codec *c = make(s, n, NULL);
            size_t bytes = px_codec_payload_bytes(&s, n);
            if (k == 1) assert_int_equal(bytes, (4 + 65536) + 4 + (rht ? 8192 : 4464));
            void *p = px_alloc(bytes, "payload");
            assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
            assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
            assert_true(check_round_trip(s, x, n, p, y) <= 1.0);
            px_free(p);
            px_codec_destroy(c);
        }
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_and_wire_byte),
        cmocka_unit_test(test_payload_sizes),
        cmocka_unit_test(test_wrong_size_refused),
        cmocka_unit_test(test_fp32_is_raw),
        cmocka_unit_test(test_round_trip_bounds),
        cmocka_unit_test(test_ties_survive_the_scale),
        cmocka_unit_test(test_outlier_rht_int8),
        cmocka_unit_test(test_nonfinite_payloads_refused),
        cmocka_unit_test(test_random_payloads_decode_finite_or_refused),
        cmocka_unit_test(test_nonfinite_input),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_stochastic_rounding_unbiased),
        cmocka_unit_test(test_stochastic_rounding_independent),
        cmocka_unit_test(test_error_feedback),
        cmocka_unit_test(test_downlink_delta),
        cmocka_unit_test(test_block_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
