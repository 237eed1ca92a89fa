/* test_agg_gram.c - the shared passes of aggregators/ (gram.c, sortnet.c): the Gram matrix
 * against double sums, generated rows, per-segment Grams, the combination pass, squared
 * distances, the sorting network (0-1 principle), and bit-identical results on 1 and 2
 * threads. */
#include "agg_test.h"

#include "aggregators/internal.h"

static double gram_ref(const float *a, const float *b, size_t lo, size_t hi)
{
    double s = 0;
    for (size_t c = lo; c < hi; c++)
        s += (double)a[c] * b[c];
    return s;
}

static void gen_rows(void *arg, size_t k, size_t col, size_t count, float *dst)
{
    (void)arg;
    assert_int_equal(col % PX_GEN_BLOCK, 0);
    for (size_t i = 0; i < count; i++)
        dst[i] = (float)((k + 1) * 0.25) - (float)((col + i) % 7);
}

static void test_gram_matches_double(void **state)
{
    (void)state;
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    size_t ns[] = {1, 2, 3, 4, 5, 9, 17};
    size_t ds[] = {1, 15, 16, 17, 513, 4097, 70001};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ds / sizeof ds[0]; b++) {
            size_t n = ns[a], d = ds[b];
            agg_data x = agg_data_new(n, d);
            agg_fill_normal(&x, n * 1000 + d);
            px__gram *g;
            assert_int_equal(px__gram_create(&g, n + 2, 2, d, NULL, pool), PX_OK);
            double *K = malloc((n + 2) * (n + 2) * sizeof *K);
            px__gram_run(g, x.rows, n, 2, gen_rows, NULL, K);
            size_t r = n + 2;
            /* generated rows, materialised here for the reference */
            float *z = malloc(2 * d * sizeof *z);
            for (size_t k = 0; k < 2; k++)
                for (size_t c0 = 0; c0 < d; c0 += PX_GEN_BLOCK)
                    gen_rows(NULL, k, c0, d - c0 < PX_GEN_BLOCK ? d - c0 : PX_GEN_BLOCK,
                             z + k * d + c0);
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < r; j++) {
                    const float *ri = i < n ? x.rows[i] : z + (i - n) * d;
                    const float *rj = j < n ? x.rows[j] : z + (j - n) * d;
                    double want = gram_ref(ri, rj, 0, d);
                    double scale = sqrt(gram_ref(ri, ri, 0, d) * gram_ref(rj, rj, 0, d)) + 1e-30;
                    assert_true(fabs(K[i * r + j] - want) <= 1e-6 * scale);
                }
            free(z);
            free(K);
            px__gram_destroy(g);
            agg_data_free(&x);
        }
    px_pool_destroy(pool);
}

static void test_gram_segments_and_threads(void **state)
{
    (void)state;
    size_t n = 6, d = 20000;
    px_layer layers[] = {{0, 1, "a"}, {1, 4095, "b"}, {4096, 15000, "c"}, {19096, 904, "d"}};
    px_layer_table t = {4, layers};
    agg_data x = agg_data_new(n, d);
    agg_fill_normal(&x, 5);
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    double K1[4 * 36], K2[4 * 36];
    px__gram *g1, *g2;
    assert_int_equal(px__gram_create(&g1, n, 0, d, &t, NULL), PX_OK);
    assert_int_equal(px__gram_create(&g2, n, 0, d, &t, pool), PX_OK);
    px__gram_run(g1, x.rows, n, 0, NULL, NULL, K1);
    px__gram_run(g2, x.rows, n, 0, NULL, NULL, K2);
    assert_memory_equal(K1, K2, sizeof K1); /* bit-identical on 1 and 2 threads */
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double want = gram_ref(x.rows[i], x.rows[j], layers[s].offset,
                                       layers[s].offset + layers[s].size);
                assert_true(fabs(K1[s * 36 + i * n + j] - want) <= 1e-5 * (1 + fabs(want)) + 1e-4);
            }
    /* the combination pass with per-segment weights, against a direct sum */
    px__mix *m;
    assert_int_equal(px__mix_create(&m, n, 0, 2, d, &t, pool), PX_OK);
    float A[4 * 2 * 6];
    for (size_t i = 0; i < sizeof A / sizeof A[0]; i++)
        A[i] = (float)((int)(i % 5) - 2) * 0.5f;
    float *o0 = malloc(d * sizeof *o0), *o1 = malloc(d * sizeof *o1);
    float *outs[2] = {o0, o1};
    px__mix_run(m, x.rows, n, 0, NULL, NULL, A, 2, outs);
    for (size_t s = 0; s < 4; s++)
        for (size_t c = layers[s].offset; c < layers[s].offset + layers[s].size; c++)
            for (size_t k = 0; k < 2; k++) {
                double want = 0;
                for (size_t i = 0; i < n; i++)
                    want += (double)A[s * 12 + k * 6 + i] * x.rows[i][c];
                assert_true(fabs(outs[k][c] - want) <= 1e-5 * (1 + fabs(want)));
            }
    /* squared distances to a vector */
    px__sqdist *sq;
    assert_int_equal(px__sqdist_create(&sq, n, d, pool), PX_OK);
    double d2[6];
    px__sqdist_run(sq, x.rows, n, x.rows[0], d2);
    assert_true(d2[0] == 0.0);
    for (size_t i = 1; i < n; i++) {
        double want = 0;
        for (size_t c = 0; c < d; c++) {
            double u = (double)x.rows[i][c] - x.rows[0][c];
            want += u * u;
        }
        assert_true(fabs(d2[i] - want) <= 1e-6 * want);
    }
    px__sqdist_destroy(sq);
    free(o0);
    free(o1);
    px__mix_destroy(m);
    px__gram_destroy(g1);
    px__gram_destroy(g2);
    px_pool_destroy(pool);
    agg_data_free(&x);
}

static void test_sorting_network(void **state)
{
    (void)state;
    /* 0-1 principle: a comparator network sorts everything iff it sorts every 0-1 input */
    for (size_t n = 1; n <= 20; n++) {
        px__sortnet s;
        assert_int_equal(px__sortnet_init(&s, 20), PX_OK);
        px__sortnet_prepare(&s, n);
        for (size_t base = 0; base < (1u << n); base += PX_LANES) {
            float v[32][PX_LANES];
            for (size_t i = 0; i < n; i++)
                for (size_t l = 0; l < PX_LANES; l++)
                    v[i][l] = (float)(((base + l) >> i) & 1);
            px__sortnet_sort(&s, v);
            for (size_t i = 1; i < n; i++)
                for (size_t l = 0; l < PX_LANES; l++)
                    assert_true(v[i - 1][l] <= v[i][l]);
        }
        px__sortnet_free(&s);
    }
    /* random values for larger n */
    px_rng r;
    px_rng_init(&r, 7, 1, 2, 3);
    for (size_t n = 15; n <= 70; n += 3) {
        px__sortnet s;
        assert_int_equal(px__sortnet_init(&s, n), PX_OK);
        px__sortnet_prepare(&s, n);
        float(*v)[PX_LANES] = malloc(px__sortnet_rows(n) * sizeof *v);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < PX_LANES; l++)
                v[i][l] = (float)px_rng_normal(&r);
        px__sortnet_sort(&s, v);
        for (size_t i = 1; i < n; i++)
            for (size_t l = 0; l < PX_LANES; l++)
                assert_true(v[i - 1][l] <= v[i][l]);
        free(v);
        px__sortnet_free(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gram_matches_double),
        cmocka_unit_test(test_gram_segments_and_threads),
        cmocka_unit_test(test_sorting_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
