/* test_agg_classic.c - the classic rules on hand-computed cases and against brute-force
 * oracles written here: trimmed mean, MeaMed, Krum and Multi-Krum (selections and scores),
 * Bulyan, geometric median (optimality), centered clipping (by hand and over steps), and the
 * validity rules with their messages. */
#include "agg_test.h"

static px_agg_params params_f(uint32_t f)
{
    px_agg_params p;
    px_agg_params_default(&p);
    p.f = f;
    return p;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_trimmed_mean_and_meamed_by_hand(void **state)
{
    (void)state;
    /* one column: 1 2 3 4 100, f = 1: trimmed mean (2+3+4)/3 = 3; median 3, the 4 values
     * closest to 3 are 1..4 (100 is far): 2.5. Second column: -50 0 1 2 3: trimmed 1, median
     * 1, closest 4: 0 1 2 3 -> 1.5 */
    float r0[] = {1, -50}, r1[] = {2, 0}, r2[] = {3, 1}, r3[] = {4, 2}, r4[] = {100, 3};
    const float *rows[] = {r4, r2, r0, r3, r1};
    float out[2];
    px_agg_params p = params_f(1);
    assert_int_equal(agg_run_once("trimmed_mean", &p, rows, 5, 2, out, NULL), PX_OK);
    assert_float_equal(out[0], 3.0f, 1e-6);
    assert_float_equal(out[1], 1.0f, 1e-6);
    assert_int_equal(agg_run_once("meamed", &p, rows, 5, 2, out, NULL), PX_OK);
    assert_float_equal(out[0], 2.5f, 1e-6);
    assert_float_equal(out[1], 1.5f, 1e-6);
    /* f = 0: both are the mean */
    p = params_f(0);
    assert_int_equal(agg_run_once("trimmed_mean", &p, rows, 5, 2, out, NULL), PX_OK);
    assert_float_equal(out[0], 22.0f, 1e-5);
    assert_int_equal(agg_run_once("meamed", &p, rows, 5, 2, out, NULL), PX_OK);
    assert_float_equal(out[0], 22.0f, 1e-5);
}

/* the k values nearest the median by a different method: sort by distance (stable by value) */
static float meamed_oracle(const float *col, size_t n, size_t k)
{
    float s[128];
    memcpy(s, col, n * sizeof(float));
    qsort(s, n, sizeof(float), cmp_float);
    float med = n % 2 ? s[n / 2] : 0.5f * (s[n / 2 - 1] + s[n / 2]);
    double sum = 0;
    int used[128] = {0};
    for (size_t a = 0; a < k; a++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!used[i] && (best == SIZE_MAX || fabsf(s[i] - med) < fabsf(s[best] - med)))
                best = i;
        used[best] = 1;
        sum += s[best];
    }
    return (float)(sum / k);
}

static void test_coordinate_rules_against_sorting(void **state)
{
    (void)state;
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    for (size_t n = 1; n <= 33; n += 4) {
        size_t d = 1000 + n; /* not a multiple of the 16 lanes */
        agg_data x = agg_data_new(n, d);
        agg_fill_normal(&x, n);
        for (uint32_t f = 0; 2 * f + 1 <= n; f += 1 + n / 8) {
            px_agg_params p = params_f(f);
            float *tm = malloc(d * sizeof *tm), *mm = malloc(d * sizeof *mm);
            assert_int_equal(agg_run_once("trimmed_mean", &p, x.rows, n, d, tm, pool), PX_OK);
            assert_int_equal(agg_run_once("meamed", &p, x.rows, n, d, mm, pool), PX_OK);
            for (size_t c = 0; c < d; c++) {
                float col[64];
                for (size_t i = 0; i < n; i++)
                    col[i] = x.rows[i][c];
                float want_mm = meamed_oracle(col, n, n - f);
                qsort(col, n, sizeof(float), cmp_float);
                double s = 0;
                for (size_t i = f; i < n - f; i++)
                    s += col[i];
                assert_float_equal(tm[c], (float)(s / (n - 2 * f)), 1e-5);
                assert_float_equal(mm[c], want_mm, 1e-5);
            }
            free(tm);
            free(mm);
        }
        agg_data_free(&x);
    }
    px_pool_destroy(pool);
}

static void test_meamed_with_ties(void **state)
{
    (void)state;
    /* small integers: many equal values and equal distances to the median; the k nearest are
     * then not unique, but their sum is (ties at equal distance go to the smaller value on
     * both sides) */
    px_rng r;
    px_rng_init(&r, 5, 1, 0, 0);
    for (size_t n = 3; n <= 31; n += 4) {
        size_t d = 500;
        agg_data x = agg_data_new(n, d);
        for (size_t i = 0; i < n * d; i++) x.data[i] = (float)px_rng_below(&r, 5) - 2.0f;
        for (uint32_t f = 0; 2 * f + 1 <= n; f++) {
            px_agg_params p = params_f(f);
            float *mm = malloc(d * sizeof *mm);
            assert_int_equal(agg_run_once("meamed", &p, x.rows, n, d, mm, NULL), PX_OK);
            for (size_t c = 0; c < d; c++) {
                float col[64];
                for (size_t i = 0; i < n; i++) col[i] = x.rows[i][c];
                assert_float_equal(mm[c], meamed_oracle(col, n, n - f), 1e-5);
            }
            free(mm);
        }
        agg_data_free(&x);
    }
}

static void test_krum_by_hand(void **state)
{
    (void)state;
    /* 1-D points 0 1 2 3 100, f = 1 (n = 5 = 2f+3): 2 neighbours each; scores 5 2 2 5 huge;
     * Krum takes the first best (value 1); Multi-Krum (q = n-f = 4) averages 0 1 2 3 = 1.5 */
    float v[] = {0, 1, 2, 3, 100};
    const float *rows[] = {&v[0], &v[1], &v[2], &v[3], &v[4]};
    px_agg_params p = params_f(1);
    float out;
    assert_int_equal(agg_run_once("krum", &p, rows, 5, 1, &out, NULL), PX_OK);
    assert_float_equal(out, 1.0f, 0);
    assert_int_equal(agg_run_once("multi_krum", &p, rows, 5, 1, &out, NULL), PX_OK);
    assert_float_equal(out, 1.5f, 1e-6);
    p.q = 2; /* the two best: 1 and 2 */
    assert_int_equal(agg_run_once("multi_krum", &p, rows, 5, 1, &out, NULL), PX_OK);
    assert_float_equal(out, 1.5f, 1e-6);
    p.q = 3; /* 1, 2 and then 0 (scores 5 tie with 3: lower index) */
    assert_int_equal(agg_run_once("multi_krum", &p, rows, 5, 1, &out, NULL), PX_OK);
    assert_float_equal(out, 1.0f, 1e-6);
}

/* brute force: Krum scores straight from the data in double */
static void krum_scores_direct(const agg_data *x, size_t f, double *score)
{
    size_t n = x->n;
    for (size_t i = 0; i < n; i++) {
        double dist[64];
        size_t m = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (size_t c = 0; c < x->d; c++) {
                double u = (double)x->rows[i][c] - x->rows[j][c];
                s += u * u;
            }
            dist[m++] = s;
        }
        for (size_t a = 0; a < m; a++) /* sort ascending */
            for (size_t b = a + 1; b < m; b++)
                if (dist[b] < dist[a]) {
                    double t = dist[a];
                    dist[a] = dist[b];
                    dist[b] = t;
                }
        score[i] = 0;
        for (size_t a = 0; a < n - f - 2; a++)
            score[i] += dist[a];
    }
}

static void test_krum_selection_brute_force(void **state)
{
    (void)state;
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    for (size_t trial = 0; trial < 6; trial++) {
        size_t n = 7 + 4 * trial, d = 300 + 97 * trial, f = (n - 3) / 2;
        agg_data x = agg_data_new(n, d);
        agg_fill_normal(&x, 100 + trial);
        /* make the rows well separated in scale so that scores have no near-ties */
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < d; c++)
                agg_row(&x, i)[c] *= 1.0f + 0.37f * (float)i;
        double score[64];
        krum_scores_direct(&x, f, score);
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (score[i] < score[best]) best = i;
        px_agg_params p = params_f((uint32_t)f);
        float *out = malloc(d * sizeof *out);
        assert_int_equal(agg_run_once("krum", &p, x.rows, n, d, out, pool), PX_OK);
        assert_memory_equal(out, x.rows[best], d * sizeof(float));
        /* Multi-Krum: mean of the n-f best */
        size_t idx[64];
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                if (score[idx[b]] < score[idx[a]]) {
                    size_t t = idx[a];
                    idx[a] = idx[b];
                    idx[b] = t;
                }
        assert_int_equal(agg_run_once("multi_krum", &p, x.rows, n, d, out, pool), PX_OK);
        for (size_t c = 0; c < d; c++) {
            double s = 0;
            for (size_t a = 0; a < n - f; a++)
                s += x.rows[idx[a]][c];
            assert_float_equal(out[c], (float)(s / (double)(n - f)), 1e-4);
        }
        free(out);
        agg_data_free(&x);
    }
    px_pool_destroy(pool);
}

static void test_bulyan_by_hand(void **state)
{
    (void)state;
    /* 0 1 2 3 4 5 100, f = 1: repeated Krum selects 2, 3, 1, 4, 0 (ties to the lower index);
     * median of {0..4} is 2, the beta = 3 closest are 1 2 3: output 2. The second column is
     * the first negated plus 10: output 8. */
    float v[7][2];
    float vals[] = {0, 1, 2, 3, 4, 5, 100};
    const float *rows[7];
    for (int i = 0; i < 7; i++) {
        v[i][0] = vals[i];
        v[i][1] = 10.0f - vals[i];
        rows[i] = v[i];
    }
    px_agg_params p = params_f(1);
    float out[2];
    assert_int_equal(agg_run_once("bulyan", &p, rows, 7, 2, out, NULL), PX_OK);
    assert_float_equal(out[0], 2.0f, 1e-6);
    assert_float_equal(out[1], 8.0f, 1e-6);
}

static void test_bulyan_brute_force(void **state)
{
    (void)state;
    /* the outliers (scaled by 50) are never selected, and the result equals the MeaMed of
     * the selected set computed here by a different method */
    size_t n = 11, d = 203, f = 2;
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 77);
    for (size_t c = 0; c < d; c++) {
        agg_row(&x, 3)[c] *= 50;
        agg_row(&x, 8)[c] = 40.0f + agg_row(&x, 8)[c];
    }
    px_agg_params p = params_f((uint32_t)f);
    float *out = malloc(d * sizeof *out);
    assert_int_equal(agg_run_once("bulyan", &p, x.rows, n, d, out, NULL), PX_OK);
    /* oracle: repeated Krum with direct distances */
    int left[16];
    for (size_t i = 0; i < n; i++)
        left[i] = 1;
    size_t chosen[16], theta = n - 2 * f;
    for (size_t s = 0; s < theta; s++) {
        size_t nl = n - s, k = nl >= f + 3 ? nl - f - 2 : 1, best = SIZE_MAX;
        if (k > nl - 1) k = nl - 1;
        double best_score = INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (!left[i]) continue;
            double dist[16];
            size_t m = 0;
            for (size_t j = 0; j < n; j++) {
                if (!left[j] || j == i) continue;
                double t = 0;
                for (size_t c = 0; c < d; c++) {
                    double u = (double)x.rows[i][c] - x.rows[j][c];
                    t += u * u;
                }
                dist[m++] = t;
            }
            for (size_t a = 0; a < m; a++)
                for (size_t b = a + 1; b < m; b++)
                    if (dist[b] < dist[a]) {
                        double t = dist[a];
                        dist[a] = dist[b];
                        dist[b] = t;
                    }
            double sc = 0;
            for (size_t a = 0; a < k; a++)
                sc += dist[a];
            if (sc < best_score) best_score = sc, best = i;
        }
        chosen[s] = best;
        left[best] = 0;
        assert_true(best != 3 && best != 8);
    }
    for (size_t c = 0; c < d; c++) {
        float col[16];
        for (size_t s = 0; s < theta; s++)
            col[s] = x.rows[chosen[s]][c];
        assert_float_equal(out[c], meamed_oracle(col, theta, theta - 2 * f), 1e-5);
    }
    free(out);
    agg_data_free(&x);
}

static void test_geomed(void **state)
{
    (void)state;
    /* collinear 0, 1, 10: the geometric median is the middle point */
    float v[] = {0, 1, 10};
    const float *rows[] = {&v[0], &v[1], &v[2]};
    px_agg_params p = params_f(1);
    p.geomed_nu = 1e-6;
    float out;
    assert_int_equal(agg_run_once("geomed", &p, rows, 3, 1, &out, NULL), PX_OK);
    assert_float_equal(out, 1.0f, 1e-3);
    /* optimality: the gradient of sum_i ||y - x_i|| vanishes at the output, and the objective
     * is below the mean's and the coordinate median's */
    size_t n = 9, d = 50;
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 8);
    for (size_t c = 0; c < d; c++)
        agg_row(&x, 0)[c] += 30.0f; /* one far outlier */
    p = params_f(2);
    p.geomed_iters = 1000;
    p.geomed_tol = 1e-12;
    float y[50], mean[50];
    assert_int_equal(agg_run_once("geomed", &p, x.rows, n, d, y, NULL), PX_OK);
    assert_int_equal(agg_run_once("mean", &p, x.rows, n, d, mean, NULL), PX_OK);
    double grad[50] = {0}, obj = 0, obj_mean = 0;
    for (size_t i = 0; i < n; i++) {
        double dist = 0, dm = 0;
        for (size_t c = 0; c < d; c++) {
            dist += ((double)y[c] - x.rows[i][c]) * ((double)y[c] - x.rows[i][c]);
            dm += ((double)mean[c] - x.rows[i][c]) * ((double)mean[c] - x.rows[i][c]);
        }
        dist = sqrt(dist);
        obj += dist;
        obj_mean += sqrt(dm);
        for (size_t c = 0; c < d; c++)
            grad[c] += ((double)y[c] - x.rows[i][c]) / dist;
    }
    double gn = 0;
    for (size_t c = 0; c < d; c++)
        gn += grad[c] * grad[c];
    assert_true(sqrt(gn) < 1e-2 * (double)n); /* each term has norm 1: n would be the worst */
    assert_true(obj < obj_mean);
    agg_data_free(&x);
}

static void test_cclip_by_hand_and_over_steps(void **state)
{
    (void)state;
    /* tau = 1, v0 = 0: (3,0) is clipped to (1,0), (0,0.5) passes: v = (0.5, 0.25) */
    float g1[] = {3, 0}, g2[] = {0, 0.5f};
    const float *rows[] = {g1, g2};
    px_agg_params p = params_f(0);
    p.tau = 1;
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "cclip", &p, 2, 2, NULL, NULL), PX_OK);
    float out[2];
    assert_int_equal(px_agg_run(a, rows, 2, 0, out, NULL), PX_OK);
    assert_float_equal(out[0], 0.5f, 1e-6);
    assert_float_equal(out[1], 0.25f, 1e-6);
    /* step 2 starts from (0.5, 0.25): g1 - v = (2.5, -0.25), norm 2.5125, clipped by
     * 1/2.5125; g2 - v = (-0.5, 0.25) passes */
    double n1 = sqrt(2.5 * 2.5 + 0.25 * 0.25);
    double want0 = 0.5 + 0.5 * (2.5 / n1 - 0.5), want1 = 0.25 + 0.5 * (-0.25 / n1 + 0.25);
    assert_int_equal(px_agg_run(a, rows, 2, 1, out, NULL), PX_OK);
    assert_float_equal(out[0], (float)want0, 1e-6);
    assert_float_equal(out[1], (float)want1, 1e-6);
    px_agg_destroy(a);
    /* L = 3 rounds and a larger d against a direct loop */
    size_t n = 6, d = 777;
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 4);
    p.tau = 20;
    p.cclip_iters = 3;
    float *o = malloc(d * sizeof *o);
    double *v = calloc(d, sizeof *v);
    for (int round = 0; round < 3; round++) {
        double *nv = calloc(d, sizeof *nv);
        for (size_t i = 0; i < n; i++) {
            double dist = 0;
            for (size_t c = 0; c < d; c++)
                dist += (x.rows[i][c] - v[c]) * (x.rows[i][c] - v[c]);
            dist = sqrt(dist);
            double s = dist > p.tau ? p.tau / dist : 1.0;
            for (size_t c = 0; c < d; c++)
                nv[c] += s * (x.rows[i][c] - v[c]) / (double)n;
        }
        for (size_t c = 0; c < d; c++)
            v[c] += nv[c];
        free(nv);
    }
    assert_int_equal(agg_run_once("cclip", &p, x.rows, n, d, o, NULL), PX_OK);
    for (size_t c = 0; c < d; c++)
        assert_float_equal(o[c], (float)v[c], 1e-5);
    free(v);
    free(o);
    agg_data_free(&x);
}

static void test_validity_rules(void **state)
{
    (void)state;
    px_agg_params p = params_f(3);
    assert_int_equal(px_agg_validate("krum", &p, 8), PX_EINVAL);
    assert_string_equal(px_errmsg(), "krum: needs n >= 2f+3, got n = 8 with f = 3");
    assert_int_equal(px_agg_validate("krum", &p, 9), PX_OK);
    assert_int_equal(px_agg_validate("multi_krum", &p, 8), PX_EINVAL);
    assert_int_equal(px_agg_validate("bulyan", &p, 14), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "bulyan: needs n >= 4f+3"));
    assert_int_equal(px_agg_validate("bulyan", &p, 15), PX_OK);
    assert_int_equal(px_agg_validate("trimmed_mean", &p, 6), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "trimmed_mean: needs n >= 2f+1"));
    assert_int_equal(px_agg_validate("trimmed_mean", &p, 7), PX_OK);
    assert_int_equal(px_agg_validate("meamed", &p, 6), PX_EINVAL);
    assert_int_equal(px_agg_validate("geomed", &p, 6), PX_EINVAL);
    assert_int_equal(px_agg_validate("mean", &p, 1), PX_OK);
    assert_int_equal(px_agg_validate("flag", &p, 1), PX_OK);
    assert_int_equal(px_agg_validate("mean", &p, 0), PX_EINVAL);
    /* the chain: bucketing with s = 2 turns 9 inputs into 5 < 2f+3 */
    assert_int_equal(px_agg_params_set(&p, "pre", "bucketing"), PX_OK);
    assert_int_equal(px_agg_validate("krum", &p, 9), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "9 inputs became 5"));
    assert_non_null(strstr(px_errmsg(), "krum: needs n >= 2f+3"));
    assert_int_equal(px_agg_validate("krum", &p, 17), PX_OK);
    assert_int_equal(px_agg_params_set(&p, "pre", "nnm"), PX_OK);
    assert_int_equal(px_agg_validate("mean", &p, 3), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "nnm: needs n >= f+1"));
    /* px_agg_run re-checks for the inputs that are left after the non-finite filter, with f
     * reduced by the number dropped: one NaN sender of f = 1 leaves 4 inputs with f = 0 */
    p = params_f(1);
    float ok[] = {1}, bad[] = {NAN};
    const float *rows[] = {ok, ok, ok, ok, bad};
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "krum", &p, 5, 1, NULL, NULL), PX_OK);
    float out = 7;
    assert_int_equal(px_agg_run(a, rows, 5, 0, &out, NULL), PX_OK);
    assert_float_equal(out, 1.0f, 0);
    /* three NaN senders leave 2 inputs: too few for krum even with f = 0 */
    const float *worse[] = {ok, bad, ok, bad, bad};
    out = 7;
    assert_int_equal(px_agg_run(a, worse, 5, 0, &out, NULL), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "got n = 2 with f = 0"));
    assert_float_equal(out, 7.0f, 0);
    /* the rule is back at f = 1 afterwards: 4 finite inputs are too few for it */
    assert_int_equal(px_agg_run(a, rows, 4, 0, &out, NULL), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "got n = 4 with f = 1"));
    px_agg_destroy(a);
}

static void test_params(void **state)
{
    (void)state;
    px_agg_params p;
    px_agg_params_default(&p);
    assert_int_equal(p.iters, 4);
    assert_int_equal(px_agg_params_set(&p, "iters", "7"), PX_OK);
    assert_int_equal(p.iters, 7);
    assert_int_equal(px_agg_params_set(&p, "lambda", "0.5"), PX_OK);
    assert_true(p.lambda == 0.5);
    assert_int_equal(px_agg_params_set(&p, "lambda", "-1"), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "lambda"));
    assert_int_equal(px_agg_params_set(&p, "kappa", "1.5"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "kappa", "0"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "init", "random"), PX_OK);
    assert_int_equal(p.init, PX_AGG_INIT_RANDOM);
    assert_int_equal(px_agg_params_set(&p, "init", "svd"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "f", "x"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "f", "-2"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "bucket_size", "0"), PX_EINVAL);
    assert_int_equal(px_agg_params_set(&p, "pre", "clip,nnm,bucketing"), PX_OK);
    assert_int_equal(p.n_pre, 3);
    assert_int_equal(p.pre[2], PX_AGG_PRE_BUCKETING);
    assert_int_equal(px_agg_params_set(&p, "pre", "clip,oops"), PX_EINVAL);
    assert_int_equal(p.n_pre, 3); /* unchanged after a refusal */
    assert_int_equal(px_agg_params_set(&p, "pre", ""), PX_OK);
    assert_int_equal(p.n_pre, 0);
    assert_int_equal(px_agg_params_set(&p, "layers", "3,4,5"), PX_OK);
    assert_int_equal(p.n_layers, 3);
    assert_int_equal(p.layer_sizes[2], 5);
    assert_int_equal(px_agg_params_set(&p, "layers", "3,0"), PX_EINVAL);
    assert_int_equal(p.n_layers, 3);
    assert_int_equal(px_agg_params_set(&p, "nope", "1"), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "nope"));
    /* every key's value reads back from its text: the defaults, and a set of other values */
    px_agg_params d, q, other;
    px_agg_params_default(&d);
    px_agg_params_default(&other);
    assert_int_equal(px_agg_params_set(&other, "pre", "nnm,clip"), PX_OK);
    assert_int_equal(px_agg_params_set(&other, "layers", "7,8"), PX_OK);
    assert_int_equal(px_agg_params_set(&other, "geomed_tol", "3.3e-9"), PX_OK);
    assert_int_equal(px_agg_params_set(&other, "seed", "18446744073709551615"), PX_OK);
    assert_int_equal(px_agg_params_set(&other, "init", "random"), PX_OK);
    assert_int_equal(px_agg_params_set(&other, "rescale", "true"), PX_OK);
    for (size_t i = 0; i < px_agg_param_count(); i++) {
        const px_agg_param_info *k = px_agg_param_at(i);
        char text[256], again[256];
        /* the default's text sets exactly the default */
        assert_int_equal(px_agg_params_get_text(&d, k->key, text, sizeof text), PX_OK);
        px_agg_params_default(&q);
        if (px_agg_params_set(&q, k->key, text) != PX_OK)
            fail_msg("%s: its default's text '%s' does not read back: %s", k->key, text,
                     px_errmsg());
        assert_memory_equal(&q, &d, sizeof q);
        /* another value's text sets that value */
        assert_int_equal(px_agg_params_get_text(&other, k->key, text, sizeof text), PX_OK);
        assert_int_equal(px_agg_params_set(&q, k->key, text), PX_OK);
        assert_int_equal(px_agg_params_get_text(&q, k->key, again, sizeof again), PX_OK);
        assert_string_equal(again, text);
    }
    char text[64];
    assert_int_equal(px_agg_params_get_text(&d, "geomed_tol", text, sizeof text), PX_OK);
    assert_string_equal(text, "1e-07");
    assert_int_equal(px_agg_params_get_text(&other, "pre", text, sizeof text), PX_OK);
    assert_string_equal(text, "nnm,clip");
    assert_int_equal(px_agg_params_get_text(&other, "layers", text, sizeof text), PX_OK);
    assert_string_equal(text, "7,8");
    assert_int_equal(px_agg_params_get_text(&d, "layers", text, sizeof text), PX_OK);
    assert_string_equal(text, "");
    assert_int_equal(px_agg_params_get_text(&other, "init", text, sizeof text), PX_OK);
    assert_string_equal(text, "random");
    assert_int_equal(px_agg_params_get_text(&other, "seed", text, sizeof text), PX_OK);
    assert_string_equal(text, "18446744073709551615");
    assert_int_equal(px_agg_params_get_text(&other, "pre", text, 4), PX_EINVAL); /* too small */
    assert_string_equal(text, "");
}

/* The typed setters and getters: the same ranges as the text (one table holds them), a refusal
 * names the key, the range and the value and leaves the parameters unchanged, and a key is only
 * reached with its own kind. */
static void test_params_typed(void **state)
{
    (void)state;
    px_agg_params p, before;
    px_agg_params_default(&p);
    assert_int_equal(px_agg_params_set_uint(&p, "iters", 9), PX_OK);
    assert_int_equal(p.iters, 9);
    assert_int_equal(px_agg_params_set_uint(&p, "seed", UINT64_MAX), PX_OK);
    assert_true(p.seed == UINT64_MAX);
    assert_int_equal(px_agg_params_set_real(&p, "kappa", 1.0), PX_OK);
    assert_true(p.kappa == 1.0);
    assert_int_equal(px_agg_params_set_bool(&p, "warm_start", true), PX_OK);
    assert_true(p.warm_start);
    uint64_t u;
    double r;
    bool b;
    assert_int_equal(px_agg_params_get_uint(&p, "iters", &u), PX_OK);
    assert_int_equal(u, 9);
    assert_int_equal(px_agg_params_get_real(&p, "kappa", &r), PX_OK);
    assert_true(r == 1.0);
    assert_int_equal(px_agg_params_get_bool(&p, "warm_start", &b), PX_OK);
    assert_true(b);
    /* a refusal names the key, the range and the value, and leaves p unchanged */
#define REFUSED(call, message)                                                                     \
    do {                                                                                           \
        before = p;                                                                                \
        assert_int_equal((call), PX_EINVAL);                                                       \
        if (!strstr(px_errmsg(), message))                                                         \
            fail_msg("%s: message '%s' lacks '%s'", #call, px_errmsg(), message);                 \
        assert_memory_equal(&p, &before, sizeof p);                                                \
    } while (0)
    REFUSED(px_agg_params_set_real(&p, "tau", -1),
            "aggregator parameter tau: expected a number > 0, got -1");
    REFUSED(px_agg_params_set_real(&p, "kappa", 1.5),
            "kappa: expected a number in (0, 1], got 1.5");
    REFUSED(px_agg_params_set_real(&p, "kappa", 0), "kappa: expected a number in (0, 1], got 0");
    REFUSED(px_agg_params_set_real(&p, "lambda", NAN), "lambda: expected a number >= 0, got nan");
    REFUSED(px_agg_params_set_real(&p, "geomed_nu", INFINITY), "geomed_nu: expected a number > 0");
    REFUSED(px_agg_params_set_uint(&p, "bucket_size", 0),
            "bucket_size: expected an integer in [1, 4294967295], got 0");
    REFUSED(px_agg_params_set_uint(&p, "f", (uint64_t)UINT32_MAX + 1),
            "f: expected an integer in [0, 4294967295], got 4294967296");
    REFUSED(px_agg_params_set_uint(&p, "tau", 3), "tau takes a number, not an integer");
    REFUSED(px_agg_params_set_real(&p, "pre", 1), "pre takes text, not a number");
    REFUSED(px_agg_params_set_bool(&p, "nope", true), "unknown aggregator parameter 'nope'");
    REFUSED(px_agg_params_get_uint(&p, "kappa", &u), "kappa takes a number, not an integer");
    /* the text path refuses out-of-range values with the same ranges */
    REFUSED(px_agg_params_set(&p, "tau", "-1"), "tau: expected a number > 0, got -1");
    REFUSED(px_agg_params_set(&p, "bucket_size", "0"),
            "bucket_size: expected an integer in [1, 4294967295], got 0");
    REFUSED(px_agg_params_set(&p, "f", "4294967296"), "f: expected an integer in [0, 4294967295]");
    REFUSED(px_agg_params_set(&p, "f", " 3"), "got ' 3'");
    REFUSED(px_agg_params_set(&p, "kappa", "1e999"), "kappa: expected a number in (0, 1]");
    /* iteration counts are bounded: 2^32 - 1 Weiszfeld steps or clipping rounds would hang the
     * run, so every iteration key refuses more than PX_AGG_MAX_ITERS, naming key and range */
    REFUSED(px_agg_params_set_uint(&p, "geomed_iters", UINT32_MAX),
            "aggregator parameter geomed_iters: expected an integer in [0, 1000], got 4294967295");
    REFUSED(px_agg_params_set_uint(&p, "cclip_iters", 1001),
            "aggregator parameter cclip_iters: expected an integer in [0, 1000], got 1001");
    REFUSED(px_agg_params_set(&p, "iters", "1001"),
            "aggregator parameter iters: expected an integer in [0, 1000], got '1001'");
    REFUSED(px_agg_params_set(&p, "geomed_iters", "4294967295"),
            "geomed_iters: expected an integer in [0, 1000]");
#undef REFUSED
    /* the bound itself is accepted */
    assert_int_equal(px_agg_params_set_uint(&p, "geomed_iters", 1000), PX_OK);
    assert_int_equal(px_agg_params_set(&p, "iters", "1000"), PX_OK);
    assert_int_equal(px_agg_params_set_uint(&p, "cclip_iters", 0), PX_OK);
    p = before;
    /* parameters written field by field meet the same ranges in px_agg_validate */
    assert_int_equal(px_agg_validate("cclip", &p, 5), PX_OK);
    p.tau = 0;
    assert_int_equal(px_agg_validate("cclip", &p, 5), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "tau: expected a number > 0, got 0"));
    p = before;
    p.bucket_size = 0;
    assert_int_equal(px_agg_validate("mean", &p, 5), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "bucket_size"));
    p = before;
    p.cclip_iters = UINT32_MAX; /* written field by field: px_agg_validate refuses it too */
    assert_int_equal(px_agg_validate("cclip", &p, 5), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "cclip_iters: expected an integer in [0, 1000]"));
    /* the range --help shows comes from the same table */
    char range[64];
    assert_string_equal(px_agg_param_range(px_agg_param_find("kappa"), range, sizeof range),
                        "in (0, 1]");
    assert_string_equal(px_agg_param_range(px_agg_param_find("tau"), range, sizeof range), "> 0");
    assert_string_equal(px_agg_param_range(px_agg_param_find("lambda"), range, sizeof range),
                        ">= 0");
    assert_string_equal(px_agg_param_range(px_agg_param_find("bucket_size"), range, sizeof range),
                        ">= 1");
    assert_string_equal(px_agg_param_range(px_agg_param_find("iters"), range, sizeof range),
                        "in [0, 1000]");
    assert_string_equal(px_agg_param_range(px_agg_param_find("f"), range, sizeof range), "");
    assert_null(px_agg_param_find("nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trimmed_mean_and_meamed_by_hand),
        cmocka_unit_test(test_coordinate_rules_against_sorting),
        cmocka_unit_test(test_meamed_with_ties),
        cmocka_unit_test(test_krum_by_hand),
        cmocka_unit_test(test_krum_selection_brute_force),
        cmocka_unit_test(test_bulyan_by_hand),
        cmocka_unit_test(test_bulyan_brute_force),
        cmocka_unit_test(test_geomed),
        cmocka_unit_test(test_cclip_by_hand_and_over_steps),
        cmocka_unit_test(test_validity_rules),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_typed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
