/* test_agg_fedld.c - FedLD principal-gradient aggregation against the literal per-client
 * revision of ALGORITHMS.md section 2.2 written here in d-space (H from direct sums, LAPACKE
 * dsyev, v_j = G^T e_j, sign<g_i, v_j>, r_i, mean of r_i), with eigenvector signs flipped at
 * random (the result must not change); per-layer plain means (first round, d_l = 1, all-zero
 * history); partial participation; zero layers. */
#include <lapacke.h>

#include "agg_test.h"

/* the aggregate of one layer [off, off+size) by the literal revision; flip: eigenvector signs */
static void fedld_literal(const agg_data *g, size_t off, size_t size, double kappa, uint64_t flip,
                          double *agg)
{
    size_t n = g->n;
    double *H = calloc(n * n, sizeof *H), *w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t c = off; c < off + size; c++)
                s += (double)g->rows[i][c] * g->rows[j][c];
            H[i * n + j] = s / (double)n;
        }
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, H, (lapack_int)n, w),
                     0);
    /* row-major: eigenvector j (ascending) is column j: H[q * n + j] */
    double total = 0;
    for (size_t j = 0; j < n; j++)
        total += w[j];
    size_t k = (size_t)floor(n * kappa);
    if (k < 1) k = 1;
    double *v = calloc(size, sizeof *v);
    for (size_t c = 0; c < size; c++)
        agg[c] = 0;
    for (size_t jj = 0; jj < k; jj++) {
        size_t j = n - 1 - jj;
        double s = w[j];
        if (!(s > 1e-12 * w[n - 1])) break;
        double sgn = (flip >> jj) & 1 ? -1.0 : 1.0, vn = 0;
        for (size_t c = 0; c < size; c++) {
            v[c] = 0;
            for (size_t q = 0; q < n; q++)
                v[c] += sgn * H[q * n + j] * g->rows[q][off + c];
            vn += v[c] * v[c];
        }
        vn = sqrt(vn);
        double cj = s / total;
        for (size_t i = 0; i < n; i++) {
            double gi = 0, pr = 0;
            for (size_t c = 0; c < size; c++) {
                gi += (double)g->rows[i][off + c] * g->rows[i][off + c];
                pr += (double)g->rows[i][off + c] * v[c];
            }
            double sg = pr > 0 ? 1 : (pr < 0 ? -1 : 0);
            for (size_t c = 0; c < size; c++)
                agg[c] += sqrt(gi) * cj * sg * v[c] / vn / (double)n;
        }
    }
    free(v);
    free(H);
    free(w);
}

static void layer_mean(const agg_data *g, size_t off, size_t size, double *agg)
{
    for (size_t c = 0; c < size; c++) {
        double s = 0;
        for (size_t i = 0; i < g->n; i++)
            s += g->rows[i][off + c];
        agg[c] = s / (double)g->n;
    }
}

static void assert_close(const float *got, const double *want, size_t size, double tol)
{
    double scale = 1e-12;
    for (size_t c = 0; c < size; c++)
        scale = fmax(scale, fabs(want[c]));
    for (size_t c = 0; c < size; c++)
        if (fabs(got[c] - want[c]) > tol * scale)
            fail_msg("coordinate %zu: got %g, want %g", c, (double)got[c], want[c]);
}

static void test_literal_revision_and_signs(void **state)
{
    (void)state;
    size_t sizes[] = {40, 1, 130, 12, 7};
    size_t L = 5, d = 0;
    for (size_t l = 0; l < L; l++)
        d += sizes[l];
    double kappas[] = {0.8, 0.3, 1.0, 0.01};
    for (size_t n = 1; n <= 7; n += 3)
        for (size_t kk = 0; kk < 4; kk++) {
            agg_data x = agg_data_new(n, d);
            agg_fill_normal(&x, 40 + n);
            px_agg_params p;
            px_agg_params_default(&p);
            p.fedld_history = true;
            p.kappa = kappas[kk];
            char list[64];
            snprintf(list, sizeof list, "%zu,%zu,%zu,%zu,%zu", sizes[0], sizes[1], sizes[2],
                     sizes[3], sizes[4]);
            assert_int_equal(px_agg_params_set(&p, "layers", list), PX_OK);
            float *got = malloc(d * sizeof *got);
            double *want = malloc(d * sizeof *want), *want2 = malloc(d * sizeof *want2);
            assert_int_equal(agg_run_once("fedld", &p, x.rows, n, d, got, NULL), PX_OK);
            size_t off = 0;
            for (size_t l = 0; l < L; l++) {
                if (sizes[l] == 1)
                    layer_mean(&x, off, 1, want);
                else
                    fedld_literal(&x, off, sizes[l], kappas[kk], 0, want);
                assert_close(got + off, want, sizes[l], 1e-4);
                /* any eigenvector signs give the same aggregate */
                if (sizes[l] > 1) {
                    fedld_literal(&x, off, sizes[l], kappas[kk], 0x2D, want2);
                    for (size_t c = 0; c < sizes[l]; c++)
                        assert_true(fabs(want2[c] - want[c]) <= 1e-9 * (1 + fabs(want[c])));
                }
                off += sizes[l];
            }
            free(got);
            free(want);
            free(want2);
            agg_data_free(&x);
        }
}

static void test_history_rounds_and_partial_participation(void **state)
{
    (void)state;
    size_t n_max = 8, n = 5, d = 60;
    px_layer layers[] = {{0, 30, "w"}, {30, 30, "b"}};
    px_layer_table t = {2, layers};
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 9);
    for (size_t i = 0; i < n; i++)
        memset(agg_row(&x, i) + 30, 0, 30 * sizeof(float));
    px_agg_params p;
    px_agg_params_default(&p);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "fedld", &p, n_max, d, &t, NULL), PX_OK);
    float got[60];
    double want[60];
    /* round 0: plain means (the second layer is zero) */
    assert_int_equal(px_agg_run(a, x.rows, n, 0, got, NULL), PX_OK);
    layer_mean(&x, 0, 60, want);
    assert_close(got, want, 60, 1e-6);
    /* round 1 with only 5 of 8 clients: the first layer now has history (principal
     * gradient); the second had a zero aggregate, so it takes the mean of its new updates */
    for (size_t i = 0; i < n; i++)
        for (size_t c = 30; c < 60; c++)
            agg_row(&x, i)[c] = (float)(i + 1) * 0.1f * (float)c;
    assert_int_equal(px_agg_run(a, x.rows, n, 1, got, NULL), PX_OK);
    fedld_literal(&x, 0, 30, 0.8, 0, want);
    assert_close(got, want, 30, 1e-4);
    layer_mean(&x, 30, 30, want + 30);
    assert_close(got + 30, want + 30, 30, 1e-6);
    /* round 2: both layers have history */
    assert_int_equal(px_agg_run(a, x.rows, n, 2, got, NULL), PX_OK);
    fedld_literal(&x, 30, 30, 0.8, 0, want + 30);
    assert_close(got + 30, want + 30, 30, 1e-4);
    /* and a principal-gradient aggregate differs from the mean here */
    double mean[30];
    layer_mean(&x, 0, 30, mean);
    double diff = 0;
    for (size_t c = 0; c < 30; c++)
        diff = fmax(diff, fabs(got[c] - mean[c]));
    assert_true(diff > 1e-3);
    px_agg_destroy(a);
    /* a zero layer gives zero; identical clients give their update */
    memset(x.data, 0, n * d * sizeof(float));
    p.fedld_history = true;
    assert_int_equal(agg_run_once("fedld", &p, x.rows, n, d, got, NULL), PX_OK);
    for (size_t c = 0; c < d; c++)
        assert_true(got[c] == 0.0f);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < d; c++)
            agg_row(&x, i)[c] = (float)c - 20.0f;
    assert_int_equal(agg_run_once("fedld", &p, x.rows, n, d, got, NULL), PX_OK);
    for (size_t c = 0; c < d; c++)
        assert_float_equal(got[c], (float)c - 20.0f, 1e-4);
    agg_data_free(&x);
}

static void test_layer_table_checks(void **state)
{
    (void)state;
    px_agg_params p;
    px_agg_params_default(&p);
    assert_int_equal(px_agg_params_set(&p, "layers", "10,20"), PX_OK);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, "fedld", &p, 3, 31, NULL, NULL), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "add up to 30"));
    px_layer bad[] = {{0, 10, "a"}, {11, 20, "b"}};
    px_layer_table t = {2, bad};
    assert_int_equal(px_agg_create(&a, "fedld", &p, 3, 31, &t, NULL), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "layer 1 starts at 11"));
    assert_int_equal(px_agg_create(&a, "fedld", &p, 3, 30, NULL, NULL), PX_OK);
    px_agg_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_revision_and_signs),
        cmocka_unit_test(test_history_rounds_and_partial_participation),
        cmocka_unit_test(test_layer_table_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
