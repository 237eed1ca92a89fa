/* test_codec.c - the codec API of comm/codec.h: specs and the wire byte, payload sizes and the
 * refusal of wrong-size payloads, round-trip error bounds of every format with and without the
 * RHT, the 100x-outlier case, determinism (also across threads) and extreme block sizes.
 * Hostile payloads: test_codec_hostile.c; stochastic rounding, error feedback and the downlink
 * delta: test_codec_state.c. */
#include "codec_test.h"

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
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_block_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
