/* test_agg_flag.c - the Flag Aggregator: its Gram form against a direct computation in d x n
 * space written here (normalise, PCA start from LAPACKE_sgesvd, IRLS with an SVD of the
 * weighted d x n (or d x (n + n(n-1))) matrix, the stopping rule, project), and the properties
 * of ALGORITHMS.md section 1: scale and order invariance, identical inputs, T = 0 with a given
 * start, the outlier case, sign-blindness, rescale, determinism of the random start. */
#include <lapacke.h>

#include "agg_test.h"

/* top-m left singular vectors of the d x c column-major matrix P (destroyed) into U (d x m) */
static void top_left_sv(float *P, size_t d, size_t c, size_t m, float *U)
{
    size_t k = d < c ? d : c;
    float *s = malloc(k * sizeof *s), *u = malloc(d * k * sizeof *u),
          *sup = malloc(k * sizeof *sup);
    float vt[1];
    lapack_int info = LAPACKE_sgesvd(LAPACK_COL_MAJOR, 'S', 'N', (lapack_int)d, (lapack_int)c, P,
                                     (lapack_int)d, s, u, (lapack_int)d, vt, 1, sup);
    assert_int_equal(info, 0);
    memcpy(U, u, d * m * sizeof *U);
    free(s);
    free(u);
    free(sup);
}

static double energy(const float *Y, const float *X, size_t d, size_t n, size_t m, double lambda)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double r = 0;
        for (size_t k = 0; k < m; k++) {
            double t = agg_dot(Y + k * d, X + i * d, d);
            r += t * t;
        }
        e += sqrt(fmax(0, 1 - r));
    }
    if (lambda > 0)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                if (i == j) continue;
                double r = 0;
                for (size_t k = 0; k < m; k++) {
                    double t = agg_dot(Y + k * d, X + i * d, d) - agg_dot(Y + k * d, X + j * d, d);
                    r += t * t;
                }
                e += lambda / (double)(n * (n - 1)) * sqrt(fmax(0, 1 - r));
            }
    return e;
}

/* the reference algorithm in d x n space, with the PCA start (or the given Y0) */
static void flag_direct(const agg_data *g, size_t m, unsigned T, double lambda, const float *Y0,
                        float *out)
{
    size_t n = g->n, d = g->d, cols = n + (lambda > 0 ? n * (n - 1) : 0);
    float *X = malloc(n * d * sizeof *X), *P = malloc(cols * d * sizeof *P);
    float *Y = malloc(d * m * sizeof *Y), *Yn = malloc(d * m * sizeof *Yn);
    for (size_t i = 0; i < n; i++) {
        double nu = fmax(agg_norm(g->rows[i], d), 1e-12);
        for (size_t c = 0; c < d; c++)
            X[i * d + c] = (float)(g->rows[i][c] / nu);
    }
    if (Y0) {
        memcpy(Y, Y0, d * m * sizeof *Y);
    } else {
        memcpy(P, X, n * d * sizeof *P);
        top_left_sv(P, d, n, m, Y);
    }
    double E = energy(Y, X, d, n, m, lambda);
    for (unsigned t = 0; t < T && E > 1e-10; t++) {
        for (size_t i = 0; i < n; i++) {
            double r = 0;
            for (size_t k = 0; k < m; k++) {
                double u = agg_dot(Y + k * d, X + i * d, d);
                r += u * u;
            }
            double a = pow(fabs(1 - r) + 1e-7, -0.25);
            for (size_t c = 0; c < d; c++)
                P[i * d + c] = (float)(a * X[i * d + c]);
        }
        size_t col = n;
        if (lambda > 0)
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    if (i == j) continue;
                    double r = 0;
                    for (size_t k = 0; k < m; k++) {
                        double u =
                            agg_dot(Y + k * d, X + i * d, d) - agg_dot(Y + k * d, X + j * d, d);
                        r += u * u;
                    }
                    double b = pow(fabs(1 - r) + 1e-7, -0.25) * lambda / (double)(n * (n - 1));
                    for (size_t c = 0; c < d; c++)
                        P[col * d + c] = (float)(b * (X[i * d + c] - X[j * d + c]));
                    col++;
                }
        top_left_sv(P, d, cols, m, Yn);
        double En = energy(Yn, X, d, n, m, lambda);
        if (!(E - En > 1e-10)) break;
        memcpy(Y, Yn, d * m * sizeof *Y);
        E = En;
    }
    /* out = Y Y^T sum_i x_i / m */
    double *coef = calloc(m, sizeof *coef);
    for (size_t k = 0; k < m; k++)
        for (size_t i = 0; i < n; i++)
            coef[k] += agg_dot(Y + k * d, X + i * d, d);
    for (size_t c = 0; c < d; c++) {
        double s = 0;
        for (size_t k = 0; k < m; k++)
            s += Y[k * d + c] * coef[k];
        out[c] = (float)(s / (double)m);
    }
    free(coef);
    free(X);
    free(P);
    free(Y);
    free(Yn);
}

static px_agg_params flag_params(uint32_t m, uint32_t T, double lambda)
{
    px_agg_params p;
    px_agg_params_default(&p);
    p.m = m;
    p.iters = T;
    p.lambda = lambda;
    return p;
}

/* honest inputs around a common direction, with `bad` outliers at the end scaled by 50 */
static agg_data honest_and_outliers(size_t n, size_t d, size_t bad, uint64_t seed,
                                    float *honest_mean)
{
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, seed);
    px_rng r;
    px_rng_init(&r, seed, 98, 0, 0);
    float *h = malloc(d * sizeof *h);
    for (size_t c = 0; c < d; c++)
        h[c] = (float)px_rng_normal(&r);
    for (size_t i = 0; i < n - bad; i++)
        for (size_t c = 0; c < d; c++)
            agg_row(&x, i)[c] = h[c] + 0.4f * agg_row(&x, i)[c];
    for (size_t i = n - bad; i < n; i++)
        for (size_t c = 0; c < d; c++)
            agg_row(&x, i)[c] *= 50.0f;
    if (honest_mean)
        for (size_t c = 0; c < d; c++) {
            double s = 0;
            for (size_t i = 0; i < n - bad; i++)
                s += x.rows[i][c];
            honest_mean[c] = (float)(s / (double)(n - bad));
        }
    free(h);
    return x;
}

static void test_gram_form_matches_direct_svd(void **state)
{
    (void)state;
    struct {
        size_t n, d, m;
        unsigned T;
        double lambda;
    } cases[] = {{7, 60, 3, 4, 0},     {7, 60, 4, 1, 0},    {5, 40, 2, 4, 0.5},  {9, 33, 4, 0, 0},
                 {6, 200, 3, 10, 2.0}, {5, 50, 2, 4, 60.0}, {7, 30, 3, 3, 200.0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = cases[k].n, d = cases[k].d;
        agg_data x = honest_and_outliers(n, d, 2, 10 + k, NULL);
        float *want = malloc(d * sizeof *want), *got = malloc(d * sizeof *got);
        flag_direct(&x, cases[k].m, cases[k].T, cases[k].lambda, NULL, want);
        px_agg_params p = flag_params((uint32_t)cases[k].m, cases[k].T, cases[k].lambda);
        assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, got, NULL), PX_OK);
        double err = agg_rel_err(got, want, d);
        if (err > 2e-3) fail_msg("case %zu: relative error %g", k, err);
        free(want);
        free(got);
        agg_data_free(&x);
    }
}

static void test_scale_and_order_invariance(void **state)
{
    (void)state;
    size_t n = 8, d = 500;
    agg_data x = honest_and_outliers(n, d, 2, 3, NULL);
    px_agg_params p = flag_params(0, 4, 0);
    float *a = malloc(d * sizeof *a), *b = malloc(d * sizeof *b);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, a, NULL), PX_OK);
    /* positive rescaling of inputs */
    for (size_t c = 0; c < d; c++) {
        agg_row(&x, 1)[c] *= 1000.0f;
        agg_row(&x, 6)[c] *= 0.001f;
    }
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, b, NULL), PX_OK);
    assert_true(agg_rel_err(b, a, d) < 1e-4);
    /* order */
    const float *perm[8];
    size_t order[8] = {5, 2, 7, 0, 3, 1, 6, 4};
    for (size_t i = 0; i < n; i++)
        perm[i] = x.rows[order[i]];
    assert_int_equal(agg_run_once("flag", &p, perm, n, d, b, NULL), PX_OK);
    assert_true(agg_rel_err(b, a, d) < 1e-4);
    free(a);
    free(b);
    agg_data_free(&x);
}

static void test_identical_inputs(void **state)
{
    (void)state;
    size_t n = 6, d = 100;
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 1);
    for (size_t i = 1; i < n; i++)
        memcpy(agg_row(&x, i), x.rows[0], d * sizeof(float));
    double nu = agg_norm(x.rows[0], d);
    float out[100];
    for (uint32_t m = 1; m <= 4; m++) {
        px_agg_params p = flag_params(m, 4, 0);
        assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, out, NULL), PX_OK);
        for (size_t c = 0; c < d; c++)
            assert_float_equal(out[c], (float)(n * x.rows[0][c] / nu / m), 1e-5);
    }
    agg_data_free(&x);
}

static void test_t0_with_given_start(void **state)
{
    (void)state;
    /* iters = 0 with warm_start: step 0 returns the projection on its PCA subspace Y0, step 1
     * starts from that Y0 and, with T = 0, returns Y0 Y0^T sum x_i / m for its own inputs */
    size_t n = 7, d = 80, m = 3;
    agg_data x1 = honest_and_outliers(n, d, 1, 21, NULL),
             x2 = honest_and_outliers(n, d, 2, 22, NULL);
    px_agg_params p = flag_params((uint32_t)m, 0, 0);
    p.warm_start = true;
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "flag", &p, n, d, NULL, NULL), PX_OK);
    float got[80], want[80];
    assert_int_equal(px_agg_run(a, x1.rows, n, 0, got, NULL), PX_OK);
    flag_direct(&x1, m, 0, 0, NULL, want);
    assert_true(agg_rel_err(got, want, d) < 1e-3);
    /* Y0 from an SVD of the normalised x1 */
    float *P = malloc(n * d * sizeof *P), *Y0 = malloc(d * m * sizeof *Y0);
    for (size_t i = 0; i < n; i++) {
        double nu = agg_norm(x1.rows[i], d);
        for (size_t c = 0; c < d; c++)
            P[i * d + c] = (float)(x1.rows[i][c] / nu);
    }
    top_left_sv(P, d, n, m, Y0);
    assert_int_equal(px_agg_run(a, x2.rows, n, 1, got, NULL), PX_OK);
    flag_direct(&x2, m, 0, 0, Y0, want);
    assert_true(agg_rel_err(got, want, d) < 1e-3);
    /* and it is not the same as a fresh start on x2 */
    float fresh[80];
    flag_direct(&x2, m, 0, 0, NULL, fresh);
    assert_true(agg_rel_err(fresh, want, d) > 1e-2);
    px_agg_destroy(a);
    free(P);
    free(Y0);
    agg_data_free(&x1);
    agg_data_free(&x2);
}

static void test_outliers_and_sign_blindness(void **state)
{
    (void)state;
    size_t n = 7, d = 2000;
    float *hm = malloc(d * sizeof *hm), *out = malloc(d * sizeof *out),
          *mean = malloc(d * sizeof *mean);
    agg_data x = honest_and_outliers(n, d, 2, 5, hm);
    px_agg_params p = flag_params(4, 4, 0);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, out, NULL), PX_OK);
    assert_int_equal(agg_run_once("mean", &p, x.rows, n, d, mean, NULL), PX_OK);
    double cos_fa = agg_cosine(out, hm, d), cos_mean = agg_cosine(mean, hm, d);
    assert_true(cos_fa > 0.9);
    assert_true(cos_mean < 0.2);
    /* a reversed honest gradient: the honest direction survives with an honest majority */
    for (size_t c = 0; c < d; c++)
        agg_row(&x, 5)[c] = -x.rows[0][c];
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, out, NULL), PX_OK);
    assert_true(agg_cosine(out, hm, d) > 0.5);
    free(hm);
    free(out);
    free(mean);
    agg_data_free(&x);
}

static void test_rescale_random_init_zero(void **state)
{
    (void)state;
    size_t n = 5, d = 300;
    agg_data x = honest_and_outliers(n, d, 1, 6, NULL);
    float a[300], b[300], c2[300];
    px_agg_params p = flag_params(0, 4, 0);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, a, NULL), PX_OK);
    p.rescale = true;
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, b, NULL), PX_OK);
    double norms[5];
    for (size_t i = 0; i < n; i++)
        norms[i] = agg_norm(x.rows[i], d);
    for (size_t i = 0; i < n; i++) /* median of 5 */
        for (size_t j = i + 1; j < n; j++)
            if (norms[j] < norms[i]) {
                double t = norms[i];
                norms[i] = norms[j];
                norms[j] = t;
            }
    for (size_t c = 0; c < d; c++)
        assert_float_equal(b[c], (float)(a[c] * norms[2]), 1e-4 * norms[2]);
    /* random start: bit-identical on two instances and two thread counts, finite, and after
     * enough iterations close to the PCA start's fixed point */
    p = flag_params(0, 30, 0);
    p.init = PX_AGG_INIT_RANDOM;
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, b, NULL), PX_OK);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, c2, pool), PX_OK);
    assert_memory_equal(b, c2, sizeof b);
    for (size_t c = 0; c < d; c++)
        assert_true(isfinite(b[c]));
    p.init = PX_AGG_INIT_PCA;
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, c2, NULL), PX_OK);
    assert_true(agg_cosine(b, c2, d) > 0.99);
    /* a different seed gives a different start, hence (T = 0) a different output */
    p = flag_params(2, 0, 0);
    p.init = PX_AGG_INIT_RANDOM;
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, b, NULL), PX_OK);
    p.seed = 2;
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, c2, NULL), PX_OK);
    assert_true(agg_rel_err(b, c2, d) > 1e-2);
    px_pool_destroy(pool);
    /* all-zero inputs give a zero output */
    memset(x.data, 0, n * d * sizeof(float));
    p = flag_params(0, 4, 0);
    assert_int_equal(agg_run_once("flag", &p, x.rows, n, d, a, NULL), PX_OK);
    for (size_t c = 0; c < d; c++)
        assert_true(a[c] == 0.0f);
    agg_data_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gram_form_matches_direct_svd),
        cmocka_unit_test(test_scale_and_order_invariance),
        cmocka_unit_test(test_identical_inputs),
        cmocka_unit_test(test_t0_with_given_start),
        cmocka_unit_test(test_outliers_and_sign_blindness),
        cmocka_unit_test(test_rescale_random_init_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
