/* test_adaptive.c - the adaptive attacks (faults/adaptive.c) on examples small enough to solve
 * by hand: Min-Max and Min-Sum's gamma for each direction, optimal IPM against the mean (where
 * D grows without bound, so the search only expands), MIMIC's farthest worker; and the
 * machinery under them: the Gram-form evaluation of a rule agrees with the rule on vectors, and
 * the search never changes the run's own aggregator. The NumPy reference (tests/adaptive_ref.py)
 * checks the same attacks on random inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregators/aggregator.h"
#include "faults/byzantine.h"

/* Runs `attack` on rows[0..n) (d values each) with the workers in byz[] Byzantine; returns the
 * choice and leaves the rows written. rule: NULL for attacks that do not evaluate one. */
static px_byz_choice run_attack(px_byz_spec *s, float *rows, size_t n, size_t d, const int *byz,
                                size_t n_byz, const char *rule, const px_agg_params *p,
                                const px_agg *live)
{
    s->n = (uint32_t)n;
    s->count = (uint32_t)n_byz;
    px_byz_server b;
    assert_int_equal(px_byz_server_create(&b, s, d, n, NULL), PX_OK);
    if (rule) assert_int_equal(px_byz_server_bind_rule(&b, rule, p, n, NULL, live), PX_OK);
    uint8_t have[16];
    memset(have, 1, sizeof have);
    memset(b.is_byz, 0, n);
    for (size_t i = 0; i < n_byz; i++)
        b.is_byz[byz[i]] = 1;
    assert_int_equal(px_byz_server_apply_rows(&b, 0, rows, have, n), n_byz);
    px_byz_choice c = b.last;
    px_byz_server_free(&b);
    return c;
}

/* Honest (1,0), (3,0), (2,1), (2,-1), worker 4 Byzantine: mean (2,0), largest honest distance
 * 2, std (unbiased) sqrt(2/3) in both coordinates.
 * STD, b = (2 - u, -u) with u = gamma sqrt(2/3): the farthest honest point is (3,0) or (2,1),
 * at squared distance (1+u)^2 + u^2 <= 4, so u = (sqrt(7) - 1) / 2; Min-Sum: the squared
 * distances add up to 4 + 8u^2 <= max_i sum_j = 8, so u = 1/sqrt(2).
 * UNIT and SIGN: p = (-1, 0), b = (2 - gamma, 0): Min-Max 1 + gamma <= 2, Min-Sum
 * 4 gamma^2 + 4 <= 8: gamma = 1 for both. */
static void test_min_max_min_sum_by_hand(void **state)
{
    (void)state;
    const float honest[4][2] = {{1, 0}, {3, 0}, {2, 1}, {2, -1}};
    const int byz[] = {4};
    double s = sqrt(2.0 / 3.0);
    struct {
        px_attack a;
        px_perturbation p;
        double gamma;
        float want[2];
    } cases[] = {
        {PX_ATTACK_MIN_MAX, PX_PERTURB_STD, (sqrt(7.0) - 1) / 2 / s, {0}},
        {PX_ATTACK_MIN_SUM, PX_PERTURB_STD, 1 / sqrt(2.0) / s, {0}},
        {PX_ATTACK_MIN_MAX, PX_PERTURB_UNIT, 1, {1, 0}},
        {PX_ATTACK_MIN_SUM, PX_PERTURB_UNIT, 1, {1, 0}},
        {PX_ATTACK_MIN_MAX, PX_PERTURB_SIGN, 1, {1, 0}},
        {PX_ATTACK_MIN_SUM, PX_PERTURB_SIGN, 1, {1, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float rows[5][2];
        memcpy(rows, honest, sizeof honest);
        rows[4][0] = rows[4][1] = 99;
        px_byz_spec sp;
        px_byz_spec_default(&sp, 5);
        sp.attack = cases[k].a;
        sp.perturbation = cases[k].p;
        px_byz_choice c = run_attack(&sp, &rows[0][0], 5, 2, byz, 1, NULL, NULL, NULL);
        /* the search keeps the last feasible gamma: below the bound, within its tolerance */
        assert_true(c.factor <= cases[k].gamma + 1e-12);
        assert_true(c.factor >= cases[k].gamma - 2 * PX_MINMAX_TOL);
        float u = (float)(c.factor * s);
        float want0 = cases[k].p == PX_PERTURB_STD ? 2 - u : (float)(2 - c.factor);
        float want1 = cases[k].p == PX_PERTURB_STD ? -u : 0;
        assert_float_equal(rows[4][0], want0, 1e-6);
        assert_float_equal(rows[4][1], want1, 1e-6);
        for (int i = 0; i < 4; i++) /* the honest rows are untouched */
            assert_memory_equal(rows[i], honest[i], sizeof honest[i]);
    }
}

/* Against the mean, b = -tau mu moves the aggregate by f tau / n mu: D grows with tau, every
 * proposal improves, so the search doubles its step 19 times from tau = 0, delta = 10:
 * tau = 10 (2^19 - 1). With f = 2 of n = 6 and mu = (1, 2): D = |1 - (4 - 2 tau) / 6| ||mu||
 * (the aggregate is (4 mu - 2 tau mu) / 6). */
static void test_optimal_ipm_against_the_mean(void **state)
{
    (void)state;
    float rows[6][2] = {{0, 1}, {2, 3}, {9, 9}, {1, 2}, {1, 2}, {9, 9}};
    const int byz[] = {2, 5};
    px_byz_spec sp;
    px_byz_spec_default(&sp, 6);
    sp.attack = PX_ATTACK_OPTIMAL_IPM;
    px_agg_params p;
    px_agg_params_default(&p);
    px_byz_choice c = run_attack(&sp, &rows[0][0], 6, 2, byz, 2, "mean", &p, NULL);
    double tau = 10.0 * ((1 << 19) - 1);
    assert_true(c.factor == tau);
    assert_int_equal(c.evals, 20);
    assert_int_equal(c.gram, 1);
    double want_D = fabs(1 - (4 - 2 * tau) / 6) * sqrt(5.0);
    assert_float_equal(c.distance, want_D, 1e-9 * want_D);
    assert_float_equal(rows[2][0], -(float)tau * 1.0f, 1e-3);
    assert_float_equal(rows[5][1], -(float)tau * 2.0f, 1e-3);
}

/* Honest 1-d values 0, 1, 2, 10 (mean 3.25): the farthest from the mean is worker 4 (value
 * 10), whatever mimic_target says. */
static void test_mimic_farthest(void **state)
{
    (void)state;
    float rows[6] = {0, 1, 7, 2, 10, 7};
    const int byz[] = {2, 5};
    px_byz_spec sp;
    px_byz_spec_default(&sp, 6);
    sp.attack = PX_ATTACK_MIMIC;
    sp.mimic_farthest = 1;
    sp.mimic_target = 0;
    px_byz_choice c = run_attack(&sp, rows, 6, 1, byz, 2, NULL, NULL, NULL);
    assert_int_equal(c.target, 4);
    assert_true(rows[2] == 10 && rows[5] == 10);
}

/* px_agg_weights_gram gives the weights whose combination is what px_agg_run computes on the
 * vectors, for the rules with a Gram form, behind no chain and behind NNM. */
static void test_weights_gram_match_the_rule(void **state)
{
    (void)state;
    enum { N = 9, D = 40 };
    float x[N][D];
    uint64_t z = 88172645463325252ull;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            x[i][j] = (float)((double)(z >> 11) / 9007199254740992.0 - 0.5) + (i == 3 ? 2 : 0);
        }
    const float *rows[N];
    double K[N * N];
    for (int i = 0; i < N; i++) {
        rows[i] = x[i];
        for (int k = 0; k < N; k++) {
            double s = 0;
            for (int j = 0; j < D; j++)
                s += (double)x[i][j] * x[k][j];
            K[i * N + k] = s;
        }
    }
    const char *rules[] = {"mean", "krum", "multi_krum", "geomed", "flag", "mean", "krum"};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        px_agg_params p;
        px_agg_params_default(&p);
        p.f = 2;
        if (r >= 5) assert_int_equal(px_agg_params_set(&p, "pre", "nnm"), PX_OK);
        px_agg *a;
        assert_int_equal(px_agg_create(&a, rules[r], &p, N, D, NULL, NULL), PX_OK);
        float out[D];
        double w[N];
        assert_int_equal(px_agg_run(a, rows, N, 0, out, NULL), PX_OK);
        assert_int_equal(px_agg_weights_gram(a, K, N, 0, w), PX_OK);
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int i = 0; i < N; i++)
                s += w[i] * x[i][j];
            assert_float_equal(s, out[j], 1e-4);
        }
        px_agg_destroy(a);
    }
    /* a coordinate-wise rule has no Gram form */
    px_agg_params p;
    px_agg_params_default(&p);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "median", &p, N, D, NULL, NULL), PX_OK);
    double w[N];
    assert_int_equal(px_agg_weights_gram(a, K, N, 0, w), PX_ENOTSUP);
    px_agg_destroy(a);
}

/* Against centered clipping (state: the previous aggregate), the search runs on the attacker's
 * own copy: the run's aggregator keeps its state byte for byte, and the copy saw that state
 * (the search's D(0) is the distance the run's rule gives for the same inputs). */
static void test_search_leaves_the_run_alone(void **state)
{
    (void)state;
    enum { N = 7, D = 16 };
    float x[N][D], tmp[D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            x[i][j] = (float)(0.1 * i - 0.05 * j + (j % 3));
    const float *rows[N];
    for (int i = 0; i < N; i++)
        rows[i] = x[i];
    px_agg_params p;
    px_agg_params_default(&p);
    p.f = 2;
    p.tau = 0.5;
    px_agg *live;
    assert_int_equal(px_agg_create(&live, "cclip", &p, N, D, NULL, NULL), PX_OK);
    assert_int_equal(px_agg_run(live, rows, N, 0, tmp, NULL), PX_OK); /* a centre != 0 */
    size_t bytes = px_agg_state_bytes(live);
    unsigned char *before = malloc(bytes), *after = malloc(bytes);
    assert_int_equal(px_agg_state_save(live, before, bytes), PX_OK);
    px_byz_spec sp;
    px_byz_spec_default(&sp, N);
    sp.attack = PX_ATTACK_OPTIMAL_ALIE;
    sp.search_evals = 1; /* D(0) only: the candidate is the honest mean */
    const int byz[] = {1, 4};
    float y[N][D];
    memcpy(y, x, sizeof x);
    px_byz_choice c = run_attack(&sp, &y[0][0], N, D, byz, 2, "cclip", &p, live);
    assert_int_equal(px_agg_state_bytes(live), bytes);
    assert_int_equal(px_agg_state_save(live, after, bytes), PX_OK);
    assert_memory_equal(before, after, bytes);
    assert_true(c.factor == 0 && c.gram == 0);
    /* the same inputs through the run's rule (from the same state) give the same distance */
    const float *yr[N];
    float mu[D] = {0};
    for (int i = 0; i < N; i++) {
        yr[i] = y[i];
        if (i == 1 || i == 4) continue;
        for (int j = 0; j < D; j++)
            mu[j] += x[i][j] / 5.0f;
    }
    float out[D];
    assert_int_equal(px_agg_run(live, yr, N, 1, out, NULL), PX_OK);
    double s = 0;
    for (int j = 0; j < D; j++)
        s += ((double)out[j] - mu[j]) * ((double)out[j] - mu[j]);
    assert_float_equal(c.distance, sqrt(s), 1e-5);
    free(before);
    free(after);
    px_agg_destroy(live);
}

/* The spec's rules for the new fields, each refusal naming the field. */
static void test_check_names_the_field(void **state)
{
    (void)state;
    px_byz_spec s;
    px_byz_spec_default(&s, 15);
    s.attack = PX_ATTACK_OPTIMAL_IPM;
    s.count = 3;
    assert_int_equal(px_byz_check(&s), PX_OK);
    s.search_ratio = 1;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "byzantine.search_ratio"));
    s.search_ratio = 0.8f;
    s.search_evals = 0;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "byzantine.search_evals = 0"));
    s.search_evals = 20;
    s.search_delta = -1;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "byzantine.search_delta"));
    s.search_delta = 10;
    s.omniscient = 0;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "OMNISCIENT"));
    s.omniscient = 1;
    s.attack = PX_ATTACK_MIN_MAX;
    s.perturbation = (px_perturbation)7;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "byzantine.perturbation = 7"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_max_min_sum_by_hand),
        cmocka_unit_test(test_optimal_ipm_against_the_mean),
        cmocka_unit_test(test_mimic_farthest),
        cmocka_unit_test(test_weights_gram_match_the_rule),
        cmocka_unit_test(test_search_leaves_the_run_alone),
        cmocka_unit_test(test_check_names_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
