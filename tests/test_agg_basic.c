/* test_agg_basic.c - the aggregator interface: registry, validity, the non-finite filter, and
 * the two rules of the foundation (mean, median) on hand-computed cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregators/aggregator.h"
#include "base/rng.h"

static void run_rule(const char *rule, const float *const *rows, size_t n, size_t d, float *out,
                     px_agg_report *rep, px_pool *pool)
{
    px_agg_params p;
    px_agg_params_default(&p);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, rule, &p, n, d, NULL, pool), PX_OK);
    assert_int_equal(px_agg_run(a, rows, n, 0, out, rep), PX_OK);
    px_agg_destroy(a);
}

static void test_registry(void **state)
{
    (void)state;
    assert_non_null(px_agg_find("mean"));
    assert_non_null(px_agg_find("median"));
    assert_null(px_agg_find("no_such_rule"));
    px_agg_params p;
    px_agg_params_default(&p);
    assert_int_equal(px_agg_validate("no_such_rule", &p, 3), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "no_such_rule"));
    assert_non_null(strstr(px_errmsg(), "median")); /* the message lists the known rules */
}

static void test_mean_and_median_by_hand(void **state)
{
    (void)state;
    /* columns: (1,2,3,10) (-1,-1,5,0) (4,4,4,4): means 4, 0.75, 4; medians 2.5, -0.5, 4 */
    float r0[] = {1, -1, 4}, r1[] = {2, -1, 4}, r2[] = {3, 5, 4}, r3[] = {10, 0, 4};
    const float *rows[] = {r0, r1, r2, r3};
    float out[3];
    run_rule("mean", rows, 4, 3, out, NULL, NULL);
    assert_float_equal(out[0], 4.0f, 1e-6);
    assert_float_equal(out[1], 0.75f, 1e-6);
    assert_float_equal(out[2], 4.0f, 1e-6);
    run_rule("median", rows, 4, 3, out, NULL, NULL);
    assert_float_equal(out[0], 2.5f, 1e-6);
    assert_float_equal(out[1], -0.5f, 1e-6);
    assert_float_equal(out[2], 4.0f, 1e-6);
    /* odd n: the middle value */
    run_rule("median", rows, 3, 3, out, NULL, NULL);
    assert_float_equal(out[0], 2.0f, 1e-6);
    assert_float_equal(out[1], -1.0f, 1e-6);
    /* n = 1, d = 1 */
    run_rule("median", rows, 1, 1, out, NULL, NULL);
    assert_float_equal(out[0], 1.0f, 0);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_median_matches_sort(void **state)
{
    (void)state;
    /* random inputs with many ties, n from 1 to 40, against sorting each column */
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    px_rng r;
    px_rng_init(&r, 3, 1, 0, 0);
    enum { D = 3000 };
    for (size_t n = 1; n <= 40; n += (n < 10 ? 1 : 7)) {
        float *data = malloc(n * D * sizeof(float));
        const float **rows = malloc(n * sizeof *rows);
        for (size_t i = 0; i < n * D; i++)
            data[i] = (float)(px_rng_below(&r, 9)) - 4.0f;
        for (size_t i = 0; i < n; i++)
            rows[i] = data + i * D;
        float out[D], col[64];
        run_rule("median", rows, n, D, out, NULL, pool);
        for (size_t c = 0; c < D; c++) {
            for (size_t i = 0; i < n; i++)
                col[i] = rows[i][c];
            qsort(col, n, sizeof(float), cmp_float);
            float want = n % 2 ? col[n / 2] : 0.5f * (col[n / 2 - 1] + col[n / 2]);
            assert_true(out[c] == want);
        }
        free(data);
        free(rows);
    }
    px_pool_destroy(pool);
}

static void test_nonfinite_inputs_are_dropped(void **state)
{
    (void)state;
    float r0[] = {1, 2}, r1[] = {3, NAN}, r2[] = {INFINITY, 0}, r3[] = {5, 6};
    const float *rows[] = {r0, r1, r2, r3};
    float out[2];
    px_agg_report rep;
    run_rule("mean", rows, 4, 2, out, &rep, NULL);
    assert_int_equal(rep.n_in, 4);
    assert_int_equal(rep.n_nonfinite, 2);
    assert_int_equal(rep.n_used, 2);
    assert_float_equal(out[0], 3.0f, 1e-6);
    assert_float_equal(out[1], 4.0f, 1e-6);
    /* all inputs non-finite: refused, output untouched */
    const float *bad[] = {r1, r2};
    px_agg_params p;
    px_agg_params_default(&p);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "median", &p, 2, 2, NULL, NULL), PX_OK);
    out[0] = 42;
    assert_int_equal(px_agg_run(a, bad, 2, 0, out, &rep), PX_EINVAL);
    assert_float_equal(out[0], 42.0f, 0);
    assert_int_equal(rep.n_nonfinite, 2);
    px_agg_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_mean_and_median_by_hand),
        cmocka_unit_test(test_median_matches_sort),
        cmocka_unit_test(test_nonfinite_inputs_are_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
