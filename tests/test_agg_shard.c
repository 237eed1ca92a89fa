/* test_agg_shard.c - the aggregator of a server sharded by coordinate (px_agg_shard_*): S shards
 * each given a slice of the same inputs, their partials summed in shard order, take the same
 * decisions (the weights of Krum, Multi-Krum, geomed, FA, bit for bit on every shard) as the
 * unsharded rule on the whole vectors (the weights from an independent double-precision Gram
 * matrix, up to its summation order), and the slices put together are px_agg_run's output; an
 * input non-finite in one slice only is dropped on every shard; the rules that cannot be sharded
 * are refused by name. */
#include "agg_test.h"

#define N      11
#define D      2000 /* cut into uneven slices, none a multiple of the 512-column blocks */
#define S_MAX  4
#define F      2

typedef struct {
    const char *rule;
    const char *sets; /* "key=value;key=value" */
} shard_case;

static const shard_case cases[] = {
    {"mean", ""},
    {"mean", "pre=nnm;f=2"},
    {"mean", "pre=bucketing;bucket_size=2"},
    {"median", ""},
    {"median", "pre=nnm;f=2"},
    {"trimmed_mean", "f=2"},
    {"meamed", "f=2"},
    {"krum", "f=2"},
    {"multi_krum", "f=2;m=4"},
    {"krum", "f=2;pre=clip,nnm"},
    {"geomed", ""},
    {"flag", "f=2"},
    {"flag", "f=2;pre=nnm"},
};

/* Eight honest inputs around a common direction, three attackers far away in two groups. */
static void make_inputs(agg_data *g)
{
    px_rng r;
    px_rng_init(&r, 5, 77, 0, 0);
    float *mu = calloc(D, sizeof *mu);
    assert_non_null(mu);
    for (size_t c = 0; c < D; c++)
        mu[c] = (float)px_rng_normal(&r);
    for (size_t i = 0; i < N; i++) {
        px_rng_init(&r, 5, 77, i + 1, 0);
        float *x = agg_row(g, i);
        double scale = i < 8 ? 1.0 : (i < 10 ? -4.0 : 6.0);
        for (size_t c = 0; c < D; c++)
            x[c] = (float)(scale * mu[c] + 0.5 * px_rng_normal(&r));
    }
    free(mu);
}

/* The slices of S shards: uneven lengths that tile [0, D). */
static void cut(size_t S, size_t *off, size_t *len)
{
    size_t at = 0;
    for (size_t s = 0; s < S; s++) {
        size_t want = s + 1 == S ? D - at : (D / S) + (s % 2 ? 37 : -53);
        off[s] = at;
        len[s] = want;
        at += want;
    }
}

typedef struct {
    float *out;       /* D: the slices put together */
    double w[S_MAX][N]; /* each shard's weights */
    px_agg_report report[S_MAX];
} sharded;

/* Runs the S shards on g: partials, their sum in shard order, finish. */
static void run_sharded(const shard_case *sc, const agg_data *g, size_t S, sharded *res)
{
    px_agg_params p = agg_params_from(sc->rule, sc->sets);
    size_t off[S_MAX], len[S_MAX];
    cut(S, off, len);
    px_agg_shard *sh[S_MAX];
    const float *rows[S_MAX][N];
    double *part[S_MAX], *sum = NULL;
    size_t plen = 0;
    for (size_t s = 0; s < S; s++) {
        if (px_agg_shard_create(&sh[s], sc->rule, &p, N, len[s], NULL) != PX_OK)
            fail_msg("%s/%s: create: %s", sc->rule, sc->sets, px_errmsg());
        for (size_t i = 0; i < N; i++)
            rows[s][i] = g->rows[i] + off[s];
        plen = px_agg_shard_partial_len(sh[s], N);
        part[s] = calloc(plen, sizeof(double));
        assert_non_null(part[s]);
        assert_int_equal(px_agg_shard_partial(sh[s], rows[s], N, part[s]), PX_OK);
    }
    sum = calloc(plen, sizeof(double));
    assert_non_null(sum);
    for (size_t s = 0; s < S; s++)
        for (size_t k = 0; k < plen; k++)
            sum[k] += part[s][k];
    for (size_t s = 0; s < S; s++) {
        if (px_agg_shard_finish(sh[s], rows[s], N, 3, sum, res->out + off[s], res->w[s],
                                &res->report[s]) != PX_OK)
            fail_msg("%s/%s: finish on shard %zu: %s", sc->rule, sc->sets, s, px_errmsg());
        px_agg_shard_destroy(sh[s]);
        free(part[s]);
    }
    free(sum);
}

/* The unsharded rule's weights from a Gram matrix summed here in double over the whole vectors
 * (another order than any shard's). */
static int reference_weights(const shard_case *sc, const agg_data *g, double *w)
{
    px_agg_params p = agg_params_from(sc->rule, sc->sets);
    double *K = calloc(N * N, sizeof *K);
    assert_non_null(K);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            K[i * N + j] = agg_dot(g->rows[i], g->rows[j], D);
    px_agg *a;
    assert_int_equal(px_agg_create(&a, sc->rule, &p, N, D, NULL, NULL), PX_OK);
    px_status st = px_agg_weights_gram(a, K, N, 3, w);
    px_agg_destroy(a);
    free(K);
    return st == PX_OK;
}

static void test_shards_decide_alike(void **state)
{
    (void)state;
    agg_data g = agg_data_new(N, D);
    make_inputs(&g);
    float *whole = calloc(D, sizeof *whole);
    sharded res = {.out = calloc(D, sizeof(float))};
    assert_non_null(whole);
    assert_non_null(res.out);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const shard_case *sc = &cases[c];
        px_agg_params p = agg_params_from(sc->rule, sc->sets);
        px_agg *a;
        assert_int_equal(px_agg_create(&a, sc->rule, &p, N, D, NULL, NULL), PX_OK);
        assert_int_equal(px_agg_run(a, g.rows, N, 3, whole, NULL), PX_OK);
        px_agg_destroy(a);
        double wref[N];
        int gram_form = reference_weights(sc, &g, wref);
        for (size_t S = 1; S <= S_MAX; S++) {
            run_sharded(sc, &g, S, &res);
            for (size_t s = 0; s < S; s++) {
                /* every shard took the same decision, bit for bit */
                assert_memory_equal(res.w[s], res.w[0], sizeof res.w[0]);
                assert_int_equal(res.report[s].n_used, res.report[0].n_used);
            }
            if (gram_form) {
                for (size_t i = 0; i < N; i++) {
                    /* Krum's choice and Multi-Krum's set exactly, continuous weights closely */
                    if ((wref[i] == 0.0) != (res.w[0][i] == 0.0))
                        fail_msg("%s/%s S=%zu: weight %zu is %g sharded, %g whole", sc->rule,
                                 sc->sets, S, i, res.w[0][i], wref[i]);
                    if (fabs(res.w[0][i] - wref[i]) > 1e-6 * (1.0 + fabs(wref[i])))
                        fail_msg("%s/%s S=%zu: weight %zu: %.12g sharded, %.12g whole", sc->rule,
                                 sc->sets, S, i, res.w[0][i], wref[i]);
                }
            } else {
                for (size_t i = 0; i < N; i++)
                    assert_true(isnan(res.w[0][i]));
            }
            /* the slices put together are the whole aggregate (float sums in other orders) */
            double scale = 0;
            for (size_t k = 0; k < D; k++)
                scale = fmax(scale, fabs(whole[k]));
            for (size_t k = 0; k < D; k++)
                if (fabs(res.out[k] - whole[k]) > 1e-4 * (1.0 + scale))
                    fail_msg("%s/%s S=%zu: coordinate %zu: %g sharded, %g whole", sc->rule,
                             sc->sets, S, k, res.out[k], whole[k]);
        }
    }
    free(whole);
    free(res.out);
    agg_data_free(&g);
}

/* An attacker that is non-finite in the last slice only is dropped by every shard, which then
 * runs with f - 1: the result is px_agg_run's, which drops it too. */
static void test_nonfinite_in_one_slice(void **state)
{
    (void)state;
    agg_data g = agg_data_new(N, D);
    make_inputs(&g);
    agg_row(&g, 9)[D - 5] = NAN;
    agg_row(&g, 10)[D - 1] = INFINITY;
    float *whole = calloc(D, sizeof *whole);
    sharded res = {.out = calloc(D, sizeof(float))};
    assert_non_null(whole);
    assert_non_null(res.out);
    const shard_case krum = {"krum", "f=2"}, med = {"median", ""};
    const shard_case *both[] = {&krum, &med};
    for (size_t c = 0; c < 2; c++) {
        px_agg_params p = agg_params_from(both[c]->rule, both[c]->sets);
        px_agg *a;
        assert_int_equal(px_agg_create(&a, both[c]->rule, &p, N, D, NULL, NULL), PX_OK);
        px_agg_report rep;
        assert_int_equal(px_agg_run(a, g.rows, N, 3, whole, &rep), PX_OK);
        px_agg_destroy(a);
        run_sharded(both[c], &g, 3, &res);
        for (size_t s = 0; s < 3; s++) {
            assert_int_equal(res.report[s].n_nonfinite, 2);
            assert_int_equal(res.report[s].n_used, rep.n_used);
        }
        if (c == 0) {
            assert_true(res.w[0][9] == 0.0 && res.w[0][10] == 0.0);
            for (size_t k = 0; k < D; k++) /* Krum's choice is one input, copied */
                assert_true(fabsf(res.out[k] - whole[k]) <= 1e-6f * (1.0f + fabsf(whole[k])));
        } else {
            for (size_t k = 0; k < D; k++) /* the median of the same 9 values */
                assert_true(res.out[k] == whole[k]);
        }
    }
    free(whole);
    free(res.out);
    agg_data_free(&g);
}

static void test_refused(void **state)
{
    (void)state;
    px_agg_params p;
    px_agg_params_default(&p);
    p.f = 1;
    const char *no[] = {"bulyan", "cclip", "fedld"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(px_agg_shard_check(no[i], &p), PX_ENOTSUP);
        assert_non_null(strstr(px_errmsg(), no[i]));
        assert_non_null(strstr(px_errmsg(), "sharded"));
    }
    p.warm_start = true;
    assert_int_equal(px_agg_shard_check("flag", &p), PX_ENOTSUP);
    assert_non_null(strstr(px_errmsg(), "warm"));
    p.warm_start = false;
    assert_int_equal(px_agg_shard_check("flag", &p), PX_OK);
    assert_true(px_agg_shard_check("no_such_rule", &p) < 0);
    px_agg_shard *s = NULL;
    assert_int_equal(px_agg_shard_create(&s, "cclip", &p, N, 10, NULL), PX_ENOTSUP);
    assert_null(s);

    /* more inputs than it was made for */
    assert_int_equal(px_agg_shard_create(&s, "median", &p, 3, 10, NULL), PX_OK);
    agg_data g = agg_data_new(4, 10);
    double part[4];
    assert_int_equal(px_agg_shard_partial(s, g.rows, 4, part), PX_EINVAL);
    px_agg_shard_destroy(s);
    agg_data_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_decide_alike),
        cmocka_unit_test(test_nonfinite_in_one_slice),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
