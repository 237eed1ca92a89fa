/* test_codec_formats.c - the per-element arithmetic of the codecs (comm/codec_math.h): fp8 E4M3
 * edge values with bit patterns derived by hand from the format, bf16/fp16/int8 round to nearest
 * even on hand-picked ties, agreement with independent references (a brute-force nearest-code
 * search for E4M3, the compiler's _Float16 conversion for fp16), and exact unbiasedness of
 * stochastic rounding when every value of the random bits is tried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "comm/codec_math.h"
#include "base/rng.h"

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t u_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- fp8 E4M3 -----------------------------------------------------------------------------------
 * E4M3 (OCP 8-bit floating point spec, "E4M3FN"): s eeee mmm, bias 7.
 *   e = 0:     value = (-1)^s * m/8 * 2^-6          (subnormal; m = 1..7 -> 2^-9 .. 7*2^-9)
 *   e = 1..15: value = (-1)^s * (1 + m/8) * 2^(e-7), except e = 15, m = 7 which is NaN.
 * So max = (1 + 6/8) * 2^8 = 448 = 0 1111 110 = 0x7E, min normal = 2^-6 = 0 0001 000 = 0x08. */

/* The definition above, written with ldexp: the reference the brute-force search uses. */
static double e4m3_reference_value(unsigned c)
{
    int s = (c >> 7) & 1, e = (c >> 3) & 15, m = c & 7;
    double v = e == 0 ? ldexp(m / 8.0, -6) : ldexp(1.0 + m / 8.0, e - 7);
    return s ? -v : v;
}

static void test_e4m3_edge_values_by_hand(void **state)
{
    (void)state;
    static const struct {
        float x;
        uint8_t code;
    } cases[] = {
        {0.0f, 0x00},
        {-0.0f, 0x80},
        {448.0f, 0x7E},                /* max: 0 1111 110 */
        {-448.0f, 0xFE},
        {0.015625f, 0x08},             /* 2^-6, min normal: 0 0001 000 */
        {0.001953125f, 0x01},          /* 2^-9, min subnormal: 0 0000 001 */
        {3 * 0.001953125f, 0x03},      /* 3 * 2^-9 */
        {7 * 0.001953125f, 0x07},      /* max subnormal 7 * 2^-9: 0 0000 111 */
        {-7 * 0.001953125f, 0x87},
        {1.0f, 0x38},                  /* 0 0111 000 */
        {1.125f, 0x39},                /* 0 0111 001 */
        {1.0625f, 0x38},               /* tie 1 | 1.125: even mantissa 000 */
        {1.1875f, 0x3A},               /* tie 1.125 | 1.25: even mantissa 010 */
        {240.0f, 0x77},                /* 1.875 * 2^7: 0 1110 111 */
        {256.0f, 0x78},                /* 2^8: 0 1111 000 */
        {416.0f, 0x7D},                /* 1.625 * 2^8 */
        {0.0009765625f, 0x00},         /* 2^-10 = half the smallest subnormal: tie -> 0 (even) */
        {0x1.000002p-10f, 0x01},      /* just above the tie */
        {0.0029296875f, 0x02},         /* 1.5 * 2^-9: tie between 0x01 and 0x02 -> even 0x02 */
        {7.5f * 0.001953125f, 0x08},   /* tie max subnormal | min normal -> even 0x08 */
        {0.0001f, 0x00},               /* far below: 0 */
        /* saturation: no infinity in E4M3; 480 would be the NaN pattern */
        {449.0f, 0x7E},
        {464.0f, 0x7E},                /* midpoint 448 | (480): saturates */
        {500.0f, 0x7E},
        {1e30f, 0x7E},
        {-1e30f, 0xFE},
        {3.4e38f, 0x7E},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t got = px_cm_e4m3_encode(cases[i].x, 0, 0);
        if (got != cases[i].code)
            fail_msg("e4m3(%a) = 0x%02x, expected 0x%02x", (double)cases[i].x, got,
                     cases[i].code);
    }
    /* decoding, by hand */
    assert_true(px_cm_e4m3_decode(0x7E) == 448.0f);
    assert_true(px_cm_e4m3_decode(0xFE) == -448.0f);
    assert_true(px_cm_e4m3_decode(0x08) == 0.015625f);
    assert_true(px_cm_e4m3_decode(0x01) == 0.001953125f);
    assert_true(px_cm_e4m3_decode(0x07) == 7 * 0.001953125f);
    assert_true(px_cm_e4m3_decode(0x38) == 1.0f);
    assert_true(px_cm_e4m3_decode(0x77) == 240.0f);
    assert_true(px_cm_e4m3_decode(0x00) == 0.0f);
    assert_int_equal(u_of(px_cm_e4m3_decode(0x80)), 0x80000000u); /* -0 */
    assert_true(isnan(px_cm_e4m3_decode(0x7F)));
    assert_true(isnan(px_cm_e4m3_decode(0xFF)));
}

/* Brute-force E4M3 encoder from the definition: the nearest of the 254 finite codes, ties to the
 * code with an even mantissa, magnitudes above 448 saturate. */
static uint8_t e4m3_brute(float x)
{
    double ax = fabs((double)x);
    unsigned best = 0;
    double bd = INFINITY;
    for (unsigned c = 0; c < 0x7F; c++) {
        double d = fabs(e4m3_reference_value(c) - ax);
        if (d < bd || (d == bd && (c & 1) == 0)) {
            bd = d;
            best = c;
        }
    }
    if (ax > 448.0) best = 0x7E;
    return (uint8_t)(best | (signbit(x) ? 0x80u : 0u));
}

static void test_e4m3_matches_brute_force(void **state)
{
    (void)state;
    /* every code's value decodes as the definition says */
    for (unsigned c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F) continue;
        assert_true((double)px_cm_e4m3_decode((uint8_t)c) == e4m3_reference_value(c));
    }
    /* every value and every midpoint between neighbouring codes, nudged by one ulp either way */
    for (unsigned c = 0; c < 0x7E; c++) {
        double lo = e4m3_reference_value(c), hi = e4m3_reference_value(c + 1);
        float pts[] = {(float)lo, (float)((lo + hi) / 2), nextafterf((float)((lo + hi) / 2), 0),
                       nextafterf((float)((lo + hi) / 2), 1e9f)};
        for (int k = 0; k < 4; k++)
            for (int s = 0; s < 2; s++) {
                float x = s ? -pts[k] : pts[k];
                if (px_cm_e4m3_encode(x, 0, 0) != e4m3_brute(x))
                    fail_msg("e4m3(%a) = 0x%02x, brute force 0x%02x", (double)x,
                             px_cm_e4m3_encode(x, 0, 0), e4m3_brute(x));
            }
    }
    /* a sweep of fp32 patterns from 2^-12 to 2^10 */
    for (uint32_t u = 0x39800000u; u < 0x44800000u; u += 0x1F3u) {
        float x = f_of(u);
        assert_int_equal(px_cm_e4m3_encode(x, 0, 0), e4m3_brute(x));
    }
}

/* ---- fp16 ------------------------------------------------------------------------------------ */

static void test_fp16_ties_by_hand(void **state)
{
    (void)state;
    static const struct {
        float x;
        uint16_t code;
    } cases[] = {
        {1.0f, 0x3C00},
        {1.00048828125f, 0x3C00}, /* 1 + 2^-11: tie 1 | 1 + 2^-10 -> even 0x3C00 */
        {1.00146484375f, 0x3C02}, /* 1 + 3*2^-11: tie 0x3C01 | 0x3C02 -> even 0x3C02 */
        {0x1.002002p0f, 0x3C01},  /* 1 + 2^-11 + 2^-23: just above the tie */
        {2049.0f, 0x6800},        /* tie 2048 | 2050 -> 2048 (0x6800) */
        {2051.0f, 0x6802},        /* tie 2050 | 2052 -> 2052 (0x6802) */
        {-2051.0f, 0xE802},
        {65504.0f, 0x7BFF},       /* max */
        {65519.0f, 0x7BFF},
        {65520.0f, 0x7BFF},       /* IEEE would round to inf: the codec saturates */
        {1e9f, 0x7BFF},
        {0.00006103515625f, 0x0400}, /* 2^-14 min normal */
        {5.9604644775390625e-8f, 0x0001}, /* 2^-24 min subnormal */
        {2.98023223876953125e-8f, 0x0000}, /* 2^-25: tie 0 | 2^-24 -> 0 */
        {8.94069671630859375e-8f, 0x0002}, /* 3 * 2^-25: tie 1 | 2 -> 2 */
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = px_cm_fp16_encode(cases[i].x, 0, 0);
        if (got != cases[i].code)
            fail_msg("fp16(%a) = 0x%04x, expected 0x%04x", (double)cases[i].x, got,
                     cases[i].code);
    }
    assert_true(px_cm_fp16_decode(0x3C00) == 1.0f);
    assert_true(px_cm_fp16_decode(0x7BFF) == 65504.0f);
    assert_true(px_cm_fp16_decode(0x0001) == 5.9604644775390625e-8f);
    assert_true(px_cm_fp16_decode(0x0400) == 0.00006103515625f);
    assert_true(px_cm_fp16_decode(0xC000) == -2.0f);
    assert_true(isinf(px_cm_fp16_decode(0x7C00)) && px_cm_fp16_decode(0x7C00) > 0);
    assert_true(isinf(px_cm_fp16_decode(0xFC00)) && px_cm_fp16_decode(0xFC00) < 0);
    assert_true(isnan(px_cm_fp16_decode(0x7E00)));
}

static void test_fp16_matches_compiler_conversion(void **state)
{
    (void)state;
#ifdef __FLT16_MAX__
    /* _Float16 conversion is IEEE round to nearest even: an independent reference */
    for (uint32_t u = 0; u < 0x477FF000u; u += 0x3F1u) {
        for (int s = 0; s < 2; s++) {
            float x = f_of(u | (s ? 0x80000000u : 0));
            _Float16 h = (_Float16)x;
            uint16_t ref;
            memcpy(&ref, &h, 2);
            uint16_t got = px_cm_fp16_encode(x, 0, 0);
            if (got != ref) fail_msg("fp16(%a) = 0x%04x, _Float16 0x%04x", (double)x, got, ref);
            assert_true(px_cm_fp16_decode(got) == (float)h);
        }
    }
#else
    skip();
#endif
}

/* ---- bf16 and int8 --------------------------------------------------------------------------- */

static void test_bf16_ties_by_hand(void **state)
{
    (void)state;
    /* bf16 keeps the top 16 bits of an fp32; 1.0 = 0x3F80, ulp at 1 = 2^-7 */
    static const struct {
        uint32_t x;
        uint16_t code;
    } cases[] = {
        {0x3F800000u, 0x3F80}, /* 1 */
        {0x3F808000u, 0x3F80}, /* 1 + 2^-8: tie 0x3F80 | 0x3F81 -> even */
        {0x3F818000u, 0x3F82}, /* 1 + 3*2^-8: tie 0x3F81 | 0x3F82 -> even */
        {0x3F808001u, 0x3F81}, /* just above the first tie */
        {0x3F817FFFu, 0x3F81}, /* just below the second tie */
        {0xBF808000u, 0xBF80}, /* -(1 + 2^-8) */
        {0x00000000u, 0x0000},
        {0x80000000u, 0x8000},
        {0x7F7F0000u, 0x7F7F}, /* largest bf16 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = px_cm_bf16_rne(f_of(cases[i].x));
        if (got != cases[i].code)
            fail_msg("bf16(0x%08x) = 0x%04x, expected 0x%04x", cases[i].x, got, cases[i].code);
        assert_int_equal(u_of(px_cm_bf16_decode(cases[i].code)), (uint32_t)cases[i].code << 16);
    }
}

static void test_int8_rounding_by_hand(void **state)
{
    (void)state;
    static const struct {
        float y;
        int q;
    } cases[] = {
        {0.5f, 0},     {1.5f, 2},   {2.5f, 2},     {-0.5f, 0},     {-1.5f, -2},
        {-2.5f, -2},   {126.5f, 126}, {0x1.fffffep-2f, 0}, {0x1.000002p-1f, 1}, {127.0f, 127},
        {127.4f, 127}, {200.0f, 127}, {-1e9f, -127}, {-127.6f, -127},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (px_cm_int8_rne(cases[i].y) != cases[i].q)
            fail_msg("int8(%a) = %d, expected %d", (double)cases[i].y, px_cm_int8_rne(cases[i].y),
                     cases[i].q);
    assert_true(px_cm_int8_decode(-128) == -128.0f);
}

/* ---- stochastic rounding, exactly ---------------------------------------------------------------
 * Each rounding function uses a fixed set of the 32 random bits (int8 and the sub-unit case of the
 * small floats: the top 24; bf16: the low 16; fp16 normal: the low 13; E4M3 normal: the low 20).
 * Running over every value of those bits gives the exact expectation of the rounded value. */

static double mean_over_bits(double (*round_fn)(float, uint32_t), float y, int nbits, int low)
{
    double sum = 0;
    uint32_t count = 1u << nbits;
    for (uint32_t k = 0; k < count; k++) sum += round_fn(y, low ? k : k << (32 - nbits));
    return sum / count;
}

static double sr_int8(float y, uint32_t r)
{
    return px_cm_int8_decode(px_cm_int8_sr(y, r));
}
static double sr_bf16(float y, uint32_t r)
{
    return px_cm_bf16_decode(px_cm_bf16_sr(y, r));
}
static double sr_fp16(float y, uint32_t r)
{
    return px_cm_fp16_decode(px_cm_fp16_encode(y, 1, r));
}
static double sr_e4m3(float y, uint32_t r)
{
    return px_cm_e4m3_decode(px_cm_e4m3_encode(y, 1, r));
}

static void test_stochastic_rounding_exact_expectation(void **state)
{
    (void)state;
    /* int8: E = y up to the 2^-24 resolution of the uniform draw */
    float ys[] = {0.3f, -0.3f, 5.7f, -126.01f, 0.0001f, 1.0f, 126.999f};
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) {
        double m = mean_over_bits(sr_int8, ys[i], 24, 0);
        if (fabs(m - ys[i]) > 0x1.0p-24) fail_msg("int8 sr E[%g] = %.9g", (double)ys[i], m);
        /* the outcomes are the two neighbours: r = 0 rounds the magnitude up, r = ~0 down */
        double lo = floor(ys[i]), hi = ceil(ys[i]);
        double up = sr_int8(ys[i], 0), down = sr_int8(ys[i], 0xFFFFFFFFu);
        assert_true((up == lo || up == hi) && (down == lo || down == hi));
        assert_true(fabs(up) >= fabs(down));
    }
    /* bf16: the 16 dropped bits; E = y exactly */
    float yb[] = {1.2345678f, -3.14159f, 1.00390625f, 7e-30f};
    for (size_t i = 0; i < sizeof yb / sizeof yb[0]; i++)
        assert_true(mean_over_bits(sr_bf16, yb[i], 16, 1) == (double)yb[i]);
    /* fp16, normal range: the 13 dropped bits; exact */
    float yh[] = {1.2345678f, -1000.123f, 0.000123456f};
    for (size_t i = 0; i < sizeof yh / sizeof yh[0]; i++)
        assert_true(mean_over_bits(sr_fp16, yh[i], 13, 1) == (double)yh[i]);
    /* E4M3, normal range: the 20 dropped bits; exact */
    float y8[] = {1.2345678f, -300.5f, 0.02f};
    for (size_t i = 0; i < sizeof y8 / sizeof y8[0]; i++)
        assert_true(mean_over_bits(sr_e4m3, y8[i], 20, 1) == (double)y8[i]);
    /* E4M3 subnormal range between 2^-9 and 2^-6 (dropped bits: 21..23 of them); exact */
    float ys8[] = {0.003f, 0.0101f};
    for (size_t i = 0; i < sizeof ys8 / sizeof ys8[0]; i++)
        assert_true(mean_over_bits(sr_e4m3, ys8[i], 23, 1) == (double)ys8[i]);
    /* E4M3 below the smallest subnormal: 0 or 2^-9 with probability y / 2^-9 (24-bit draw) */
    float tiny = 0.0007f;
    assert_true(fabs(mean_over_bits(sr_e4m3, tiny, 24, 0) - tiny) <= 0x1.0p-24 * 0x1.0p-9);
    /* saturation stays saturated */
    assert_int_equal(px_cm_e4m3_encode(1000.0f, 1, 0xFFFFFFFFu), 0x7E);
    assert_int_equal(px_cm_fp16_encode(1e6f, 1, 0xFFFFFFFFu), 0x7BFF);
}

static void test_scales(void **state)
{
    (void)state;
    /* absmax scale: the largest magnitude maps to the largest code */
    assert_true(px_cm_scale_absmax(u_of(254.0f), 127.0f) == 2.0f);
    assert_true(px_cm_scale_absmax(u_of(448.0f), 448.0f) == 1.0f);
    assert_true(px_cm_scale_absmax(0, 127.0f) == 0.0f);
    assert_true(px_cm_scale_absmax(1, 127.0f) == FLT_MIN); /* subnormal block: clamped */
    assert_true(isnan(px_cm_scale_absmax(0x7F800000u, 127.0f)));
    assert_true(isnan(px_cm_scale_absmax(0x7FC00000u, 127.0f)));
    /* power-of-two scales: absmax / scale in [2^top, 2^(top+1)) */
    assert_true(px_cm_scale_pow2(u_of(1.0f), 0) == 1.0f);
    assert_true(px_cm_scale_pow2(u_of(1.99f), 0) == 1.0f);
    assert_true(px_cm_scale_pow2(u_of(2.0f), 0) == 2.0f);
    assert_true(px_cm_scale_pow2(u_of(0.75f), 14) == 0x1.0p-15f);
    assert_true(px_cm_scale_pow2(u_of(1e-37f), 14) == 0x1.0p-126f);
    assert_true(isnan(px_cm_scale_pow2(0x7F800000u, 0)));
}

static void test_random_bits(void **state)
{
    (void)state;
    /* sign words: about half the bits set, different per block and per word */
    /* volatile: GCC 12 -O3 -march=native folds this loop over a constant key to a wrong
     * constant (seen on this machine); a run-time key keeps the test about the generator */
    volatile uint64_t seed = 12345;
    uint64_t k0 = px_cm_block_key(seed, 0), k1 = px_cm_block_key(seed, 1);
    assert_true(k0 != k1);
    long ones = 0;
    for (uint32_t w = 0; w < 1024; w++) ones += __builtin_popcountll(px_cm_sign_word(k0, w));
    /* 65536 fair bits: sd 128; 6 sd = 768 */
    assert_true(labs(ones - 32768) < 768);
    assert_true(px_cm_sign_word(k0, 0) != px_cm_sign_word(k1, 0));
    assert_true(px_cm_sign_word(k0, 0) != px_cm_sign_word(k0, 1));
    /* dither: uniform top bits (chi-square over 16 cells, 2^16 draws: 15 dof; 60 is p < 1e-6) */
    long cells[16] = {0};
    uint64_t dk = px_cm_dither_key(k0);
    for (uint32_t j = 0; j < 65536; j++) cells[px_cm_dither(dk, j) >> 28]++;
    double chi = 0;
    for (int i = 0; i < 16; i++) chi += (cells[i] - 4096.0) * (cells[i] - 4096.0) / 4096.0;
    assert_true(chi < 60.0);
    /* the 32-bit form the C loops use picks the same bit as the 64-bit form (for CUDA) */
    for (uint32_t w = 0; w < 16; w++) {
        uint64_t word = px_cm_sign_word(k1, w);
        for (uint32_t j = 0; j < 64; j++) {
            uint32_t half = (uint32_t)(j < 32 ? word : word >> 32);
            assert_true(px_cm_apply_sign(1.5f, word, j) == px_cm_apply_sign32(1.5f, half, j));
        }
    }
    /* apply_sign flips exactly the sign bit */
    assert_true(px_cm_apply_sign(2.5f, 1, 0) == -2.5f);
    assert_true(px_cm_apply_sign(2.5f, 1, 1) == 2.5f);
    assert_true(px_cm_apply_sign(2.5f, 1ull << 63, 63) == -2.5f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e4m3_edge_values_by_hand),
        cmocka_unit_test(test_e4m3_matches_brute_force),
        cmocka_unit_test(test_fp16_ties_by_hand),
        cmocka_unit_test(test_fp16_matches_compiler_conversion),
        cmocka_unit_test(test_bf16_ties_by_hand),
        cmocka_unit_test(test_int8_rounding_by_hand),
        cmocka_unit_test(test_stochastic_rounding_exact_expectation),
        cmocka_unit_test(test_scales),
        cmocka_unit_test(test_random_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
