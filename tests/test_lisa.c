/* test_lisa.c - LISA's plan: input and head groups always train, exactly gamma middle groups
 * per period, the same set through a period and for the same seed, a fresh draw per period,
 * uniform over the middle groups (chi-square over many periods), and the compact vectors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/lisa.h"

enum { G = 10 }; /* input, 8 middle, head */

static px_layer_group groups[G];

static void make_groups(void)
{
    size_t off = 0;
    for (int g = 0; g < G; g++) {
        groups[g] = (px_layer_group){"g", off, (size_t)(3 + g), PX_GROUP_MIDDLE};
        off += groups[g].size;
    }
    groups[0].role = PX_GROUP_INPUT;
    groups[G - 1].role = PX_GROUP_HEAD;
}

static void test_plan(void **state)
{
    (void)state;
    make_groups();
    px_lisa l;
    assert_int_equal(px_lisa_init(&l, 1, 9, 20, 1, groups, G), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "lisa.gamma = 9 must be in [1, 8]"));
    assert_int_equal(px_lisa_init(&l, 1, 2, 0, 1, groups, G), PX_EINVAL);
    assert_int_equal(px_lisa_init(&l, 1, 2, 20, 1, groups, G), PX_OK);
    uint8_t a[G], b[G];
    int changed = 0;
    for (uint32_t p = 0; p < 50; p++) {
        size_t values = px_lisa_active(&l, p * 20, a);
        size_t want = 0, middle = 0;
        for (int g = 0; g < G; g++) {
            want += a[g] ? groups[g].size : 0;
            middle += a[g] && groups[g].role == PX_GROUP_MIDDLE;
        }
        assert_int_equal(values, want);
        assert_int_equal(middle, 2);
        assert_true(a[0] && a[G - 1]);
        for (uint32_t s = 1; s < 20; s++) { /* one set through the period */
            px_lisa_active(&l, p * 20 + s, b);
            assert_memory_equal(a, b, G);
        }
        px_lisa_active(&l, p * 20 + 20, b);
        changed += memcmp(a, b, G) != 0;
    }
    assert_true(changed > 35); /* 1 - 1/28 of the draws differ from the previous one */
    /* the same seed, the same plan; another seed, another plan */
    px_lisa m;
    px_lisa_init(&m, 1, 2, 20, 1, groups, G);
    px_lisa_active(&l, 333, a);
    px_lisa_active(&m, 333, b);
    assert_memory_equal(a, b, G);
    px_lisa_init(&m, 1, 2, 20, 2, groups, G);
    int differ = 0;
    for (uint32_t p = 0; p < 20; p++) {
        px_lisa_active(&l, p * 20, a);
        px_lisa_active(&m, p * 20, b);
        differ += memcmp(a, b, G) != 0;
    }
    assert_true(differ > 10);
    /* off: everything trains */
    px_lisa_init(&m, 0, 2, 20, 1, groups, G);
    size_t all = 0;
    for (int g = 0; g < G; g++)
        all += groups[g].size;
    assert_int_equal(px_lisa_active(&m, 5, a), all);
    for (int g = 0; g < G; g++)
        assert_int_equal(a[g], 1);
}

static void test_uniform(void **state)
{
    (void)state;
    make_groups();
    px_lisa l;
    px_lisa_init(&l, 1, 2, 1, 7, groups, G);
    enum { P = 8000 };
    double count[G] = {0};
    uint8_t a[G];
    for (uint32_t p = 0; p < P; p++) {
        px_lisa_active(&l, p, a);
        for (int g = 1; g < G - 1; g++)
            count[g] += a[g];
    }
    /* each middle group is drawn with probability 2/8: chi-square with 7 degrees of freedom;
     * 24.3 is its 0.999 quantile */
    double expect = P * 2.0 / 8.0, chi2 = 0;
    for (int g = 1; g < G - 1; g++)
        chi2 += (count[g] - expect) * (count[g] - expect) / expect;
    assert_true(chi2 < 24.3);
}

static void test_compact(void **state)
{
    (void)state;
    make_groups();
    px_lisa l;
    px_lisa_init(&l, 1, 3, 5, 1, groups, G);
    size_t n = groups[G - 1].offset + groups[G - 1].size;
    float full[200], back[200], compact[200];
    for (size_t i = 0; i < n; i++)
        full[i] = (float)i + 1;
    uint8_t a[G];
    size_t k = px_lisa_active(&l, 0, a);
    px_lisa_gather(&l, a, full, compact);
    /* compact holds the active groups in order */
    size_t at = 0;
    for (int g = 0; g < G; g++)
        for (size_t i = 0; a[g] && i < groups[g].size; i++)
            assert_true(compact[at++] == full[groups[g].offset + i]);
    assert_int_equal(at, k);
    for (size_t i = 0; i < n; i++)
        back[i] = -1;
    px_lisa_scatter(&l, a, compact, back, 1);
    for (int g = 0; g < G; g++)
        for (size_t i = 0; i < groups[g].size; i++)
            assert_true(back[groups[g].offset + i] == (a[g] ? full[groups[g].offset + i] : 0.0f));
    for (size_t i = 0; i < n; i++)
        back[i] = -1;
    px_lisa_scatter(&l, a, compact, back, 0); /* frozen places untouched */
    for (int g = 0; g < G; g++)
        for (size_t i = 0; i < groups[g].size; i++)
            assert_true(back[groups[g].offset + i] == (a[g] ? full[groups[g].offset + i] : -1.0f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
