/* test_coord_math.c - the per-coordinate math of aggregators/coord_math.h, which the CUDA
 * kernels of the coordinate-wise rules run, against the CPU rules (median, trimmed_mean,
 * meamed): for random inputs (several n, f, and a d that leaves a partial lane group), the
 * scalar function applied to each coordinate's values, sorted by px_cw_sort, must give the CPU
 * rule's float bit for bit. Plus the sorting network itself, and the overflow fallbacks near
 * FLT_MAX. */
#include <float.h>

#include "agg_test.h"

#include "aggregators/coord_math.h"

enum { D = 53 };

static void check_rule(const char *rule, size_t n, uint32_t f, uint64_t seed, float scale)
{
    agg_data a = agg_data_new(n, D);
    agg_fill_normal(&a, seed);
    for (size_t i = 0; i < n * D; i++) { /* finite, whatever the scale */
        float x = a.data[i] > 4.0f ? 4.0f : (a.data[i] < -4.0f ? -4.0f : a.data[i]);
        a.data[i] = x * scale;
    }
    px_agg_params p;
    px_agg_params_default(&p);
    p.f = f;
    float out[D];
    assert_int_equal(agg_run_once(rule, &p, a.rows, n, D, out, NULL), PX_OK);
    for (size_t c = 0; c < D; c++) {
        float col[PX_CW_MAX_N];
        for (size_t i = 0; i < n; i++)
            col[i] = a.data[i * D + c];
        px_cw_sort(col, n);
        float want = !strcmp(rule, "median")         ? px_cw_median(col, 1, n)
                     : !strcmp(rule, "trimmed_mean") ? px_cw_trimmed_mean(col, 1, n, f)
                                                     : px_cw_mean_near_median(col, 1, n, n - f);
        if (memcmp(&want, &out[c], sizeof want))
            fail_msg("%s n=%zu f=%u coordinate %zu: coord_math %.9g, CPU rule %.9g", rule, n, f,
                     c, (double)want, (double)out[c]);
    }
    agg_data_free(&a);
}

static void test_rules_match(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 33};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        check_rule("median", n, 0, 100 + n, 1.0f);
        for (uint32_t f = 0; 2 * f + 1 <= n; f++) {
            check_rule("trimmed_mean", n, f, 200 + n * 7 + f, 1.0f);
            check_rule("meamed", n, f, 300 + n * 7 + f, 1.0f);
        }
    }
}

/* values near FLT_MAX: the float sums overflow, and both sides fall back to double alike */
static void test_overflow_fallback(void **state)
{
    (void)state;
    check_rule("median", 7, 0, 11, FLT_MAX / 4.0f);
    check_rule("trimmed_mean", 7, 1, 12, FLT_MAX / 4.0f);
    check_rule("meamed", 7, 2, 13, FLT_MAX / 4.0f);
    float s[4] = {FLT_MAX, FLT_MAX, FLT_MAX, FLT_MAX};
    assert_true(px_cw_trimmed_mean(s, 1, 4, 1) == FLT_MAX);
    assert_true(px_cw_median(s, 1, 4) == FLT_MAX);
}

static void test_sort_network(void **state)
{
    (void)state;
    px_rng r;
    px_rng_init(&r, 5, 1, 0, 0);
    for (size_t n = 0; n <= PX_CW_MAX_N; n++) {
        float v[PX_CW_MAX_N];
        for (size_t i = 0; i < n; i++) /* few distinct values: ties */
            v[i] = (float)(int)(px_rng_normal(&r) * 3.0);
        px_cw_sort(v, n);
        for (size_t i = 1; i < n; i++)
            assert_true(v[i - 1] <= v[i]);
    }
    /* strided reads: lane 1 of rows of 3 */
    float m[5][3] = {{0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {0, 4, 0}, {0, 5, 0}};
    assert_true(px_cw_median(&m[0][1], 3, 5) == 3.0f);
    assert_true(px_cw_median(&m[0][1], 3, 4) == 2.5f);
    assert_true(px_cw_trimmed_mean(&m[0][1], 3, 5, 2) == 3.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_match),
        cmocka_unit_test(test_overflow_fallback),
        cmocka_unit_test(test_sort_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
