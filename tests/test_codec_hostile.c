/* test_codec_hostile.c - what a malicious sender can put in a payload of the right size: NaN or
 * Inf scales, NaN and Inf codes, scales so large that values overflow, random bytes; and honest
 * non-finite input. Decoding either refuses the payload or yields finite values only. */
#include "codec_test.h"

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


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonfinite_payloads_refused),
        cmocka_unit_test(test_random_payloads_decode_finite_or_refused),
        cmocka_unit_test(test_nonfinite_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
