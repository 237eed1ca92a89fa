/* test_codec_rht.c - the Walsh-Hadamard transform and the randomized Hadamard transform of
 * comm/hadamard.c: the known H_8 example, agreement of the vectorised transform with the plain
 * loops (bit for bit) and with the matrix definition, orthonormality, and the inverse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "comm/codec.h"
#include "comm/codec_impl.h"
#include "base/rng.h"

static void fill_normal(float *x, size_t n, uint64_t seed)
{
    px_rng r;
    px_rng_init(&r, seed, 99, 1, 2);
    for (size_t i = 0; i < n; i++) x[i] = (float)px_rng_normal(&r);
}

static void test_h8_example(void **state)
{
    (void)state;
    /* ALGORITHMS.md section 5: H_8 [1..8] without scaling is [36, -4, -8, 0, -16, 0, 0, 0] */
    const float want[8] = {36, -4, -8, 0, -16, 0, 0, 0};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    memcpy(y, x, sizeof x);
    px_wht(x, 8);
    px__wht_generic(y, 8);
    for (int i = 0; i < 8; i++) {
        assert_true(x[i] == want[i]);
        assert_true(y[i] == want[i]);
    }
    /* the same vector inside a longer transform: H_16 [1..8, 0..0] = [H_8 x, H_8 x] */
    float z[16] = {1, 2, 3, 4, 5, 6, 7, 8};
    px_wht(z, 16);
    for (int i = 0; i < 16; i++) assert_true(z[i] == want[i % 8]);
}

/* Sylvester-ordered Hadamard entry: (-1)^popcount(i & j). */
static int h_entry(size_t i, size_t j)
{
    return (__builtin_popcountll(i & j) & 1) ? -1 : 1;
}

static void test_wht_matches_definition(void **state)
{
    (void)state;
    size_t max = 65536;
    float *x = malloc(max * sizeof *x), *a = malloc(max * sizeof *a), *b = malloc(max * sizeof *b);
    for (size_t len = 1; len <= max; len *= 2) {
        fill_normal(x, len, len);
        memcpy(a, x, len * sizeof *x);
        memcpy(b, x, len * sizeof *x);
        px_wht(a, len);
        px__wht_generic(b, len);
        /* same additions in the same order: identical bits */
        assert_memory_equal(a, b, len * sizeof *a);
        if (len > 1024) continue;
        for (size_t i = 0; i < len; i++) {
            double s = 0, m = 0;
            for (size_t j = 0; j < len; j++) {
                s += h_entry(i, j) * (double)x[j];
                m += fabs((double)x[j]);
            }
            /* float sum of len terms: error below len * eps * sum |x_j| */
            if (fabs(a[i] - s) > 1e-7 * (double)len * m)
                fail_msg("len %zu row %zu: %g vs %g", len, i, (double)a[i], s);
        }
    }
    free(x);
    free(a);
    free(b);
}

static void test_rht_orthonormal_and_inverse(void **state)
{
    (void)state;
    px_codec_stream st = {.seed = 7, .step = 3, .worker = 2};
    size_t lens[] = {1, 2, 8, 64, 128, 256};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t L = lens[k];
        uint64_t key = px_codec_block_key(&st, 5);
        /* columns T e_i: T^T T = I */
        float *cols = calloc(L * L, sizeof *cols);
        for (size_t i = 0; i < L; i++) {
            cols[i * L + i] = 1.0f;
            px_rht_forward(cols + i * L, L, key);
        }
        for (size_t i = 0; i < L; i++)
            for (size_t j = 0; j < L; j++) {
                double d = 0;
                for (size_t t = 0; t < L; t++) d += (double)cols[i * L + t] * cols[j * L + t];
                if (fabs(d - (i == j)) > 1e-6)
                    fail_msg("len %zu: <T e%zu, T e%zu> = %g", L, i, j, d);
            }
        free(cols);
    }
    /* the inverse with the same key undoes the forward transform; norms are kept */
    size_t L = 4096;
    float *x = malloc(L * sizeof *x), *y = malloc(L * sizeof *y);
    fill_normal(x, L, 11);
    memcpy(y, x, L * sizeof *x);
    uint64_t key = px_codec_block_key(&st, 0);
    px_rht_forward(y, L, key);
    double nx = 0, ny = 0;
    for (size_t i = 0; i < L; i++) {
        nx += (double)x[i] * x[i];
        ny += (double)y[i] * y[i];
    }
    assert_true(fabs(sqrt(ny) / sqrt(nx) - 1) < 1e-6);
    px_rht_inverse(y, L, key);
    for (size_t i = 0; i < L; i++) assert_true(fabs(y[i] - x[i]) < 1e-5);
    /* the normalised Walsh-Hadamard transform is its own inverse */
    memcpy(y, x, L * sizeof *x);
    px_wht(y, L);
    px_wht(y, L);
    for (size_t i = 0; i < L; i++) assert_true(fabs(y[i] / (double)L - x[i]) < 1e-5);
    /* other signs (another step) do not undo it: the signs are part of the transform */
    memcpy(y, x, L * sizeof *x);
    px_rht_forward(y, L, key);
    px_codec_stream other = st;
    other.step++;
    px_rht_inverse(y, L, px_codec_block_key(&other, 0));
    double err = 0;
    for (size_t i = 0; i < L; i++) err += (y[i] - x[i]) * (double)(y[i] - x[i]);
    assert_true(sqrt(err / nx) > 0.5);
    free(x);
    free(y);
}

static void test_rht_spreads_a_spike(void **state)
{
    (void)state;
    /* a fixed Hadamard turns the flat vector into a spike; random signs keep it spread: the
     * largest rotated value of a flat vector stays far below its norm */
    size_t L = 256;
    float x[256], y[256];
    for (size_t i = 0; i < L; i++) x[i] = 1.0f;
    memcpy(y, x, sizeof x);
    px_wht(y, L);
    assert_true(y[0] == 256.0f); /* plain WHT: all the energy in one value */
    px_codec_stream st = {.seed = 1, .step = 0, .worker = 0};
    px_rht_forward(x, L, px_codec_block_key(&st, 0));
    float m = 0;
    for (size_t i = 0; i < L; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    /* norm 16; with random signs each value is a normalised sum of 256 fair +-1: |y| < 6 */
    assert_true(m < 6.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h8_example),
        cmocka_unit_test(test_wht_matches_definition),
        cmocka_unit_test(test_rht_orthonormal_and_inverse),
        cmocka_unit_test(test_rht_spreads_a_spike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
