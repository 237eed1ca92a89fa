/* test_codec_state.c - the codec features that carry something across values or steps:
 * stochastic rounding (unbiased, independent draws), worker-side error feedback, and the
 * downlink delta with the replica that the server and the workers keep. */
#include "codec_test.h"

/* ---- stochastic rounding is unbiased ------------------------------------------------------------
 * Over N independent draws (steps), the mean decoded value of an element estimates its
 * expectation. Given the block's signs and scale, the decoded element is x plus a sum of
 * independent zero-mean rounding errors (each value's dither is its own), whose ranges have
 * squared widths summing to at most w^2, w = the scale for int8 with or without the orthonormal
 * RHT (sum_j T_ij^2 = 1), or the local grid spacing for a float format. Hoeffding (Azuma for the
 * draw-to-draw dependence through the scale): P(|mean - x| >= t) <= 2 exp(-2 N t^2 / w^2). With
 * t = w sqrt(ln(2/delta) / (2N)) and delta = 1e-9 per element, a false failure over all the
 * elements tested has probability below 1e-6. The same check fails for round to nearest (bias up
 * to half a step), which shows that it can fail. */

static double sr_worst_ratio(px_codec_spec s, const float *x, size_t n, int draws,
                             double (*width)(px_codec_spec, float, double))
{
    px_codec *c = make(s, n, NULL);
    size_t bytes = px_codec_payload_bytes(&s, n);
    void *p = px_alloc(bytes, "payload");
    float *y = malloc(n * sizeof *y);
    double *sum = calloc(n, sizeof *sum), smax = 0;
    for (int d = 0; d < draws; d++) {
        px_codec_stream st = {.seed = 2024, .step = (uint32_t)d, .worker = 3};
        assert_int_equal(px_codec_encode(c, &st, x, n, NULL, p, bytes), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, bytes, y, n), PX_OK);
        for (size_t i = 0; i < n; i++) sum[i] += y[i];
        double sc = scale_at(p, &s, 0);
        smax = sc > smax ? sc : smax;
    }
    double worst = 0, lg = sqrt(log(2 / 1e-9) / (2.0 * draws));
    for (size_t i = 0; i < n; i++) {
        double t = width(s, x[i], smax) * lg;
        double dev = fabs(sum[i] / draws - x[i]);
        worst = dev / t > worst ? dev / t : worst;
    }
    free(sum);
    free(y);
    px_free(p);
    px_codec_destroy(c);
    return worst;
}

static double width_scale(px_codec_spec s, float x, double scale)
{
    (void)s, (void)x;
    return scale;
}

static double width_e4m3(px_codec_spec s, float x, double scale)
{
    (void)s; /* spacing: 2^-3 |y| for normals, 2^-9 below; in units of the scale */
    return 0x1.0p-3 * fabs(x) + 0x1.0p-9 * scale;
}

static double width_bf16(px_codec_spec s, float x, double scale)
{
    (void)s, (void)scale;
    return 0x1.0p-7 * fabs(x);
}

static void test_stochastic_rounding_unbiased(void **state)
{
    (void)state;
    /* 64 values with fractional parts (in units of the int8 step) in [0.1, 0.45], so that round
     * to nearest is biased by at least 0.1 step; the largest, 127 steps, fixes the scale */
    enum { N = 64, DRAWS = 20000 };
    float x[N];
    px_rng r;
    px_rng_init(&r, 11, 12, 13, 14);
    const double step = 0.01;
    for (int i = 0; i < N - 1; i++) {
        double k = (double)px_rng_below(&r, 200) - 100, frac = 0.1 + 0.35 * px_rng_uniform(&r);
        x[i] = (float)((k + (k < 0 ? -frac : frac)) * step);
    }
    x[N - 1] = (float)(127 * step);
    double w = sr_worst_ratio(spec_of(PX_CODEC_INT8, 0, 1, N), x, N, DRAWS, width_scale);
    print_message("    int8 sr: largest |mean - x| = %.2f of the Hoeffding bound\n", w);
    assert_true(w < 1.0);
    assert_true(sr_worst_ratio(spec_of(PX_CODEC_INT8, 0, 0, N), x, N, DRAWS, width_scale) > 1.0);
    w = sr_worst_ratio(spec_of(PX_CODEC_INT8, 1, 1, N), x, N, DRAWS, width_scale);
    print_message("    int8+rht sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
    /* float formats: values placed between grid points */
    for (int i = 0; i < N; i++)
        x[i] = (float)((1.0 + 0.3 * px_rng_uniform(&r)) * pow(2, i % 7 - 3));
    w = sr_worst_ratio(spec_of(PX_CODEC_FP8_E4M3, 0, 1, N), x, N, DRAWS, width_e4m3);
    print_message("    fp8 sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
    assert_true(sr_worst_ratio(spec_of(PX_CODEC_FP8_E4M3, 0, 0, N), x, N, DRAWS, width_e4m3) > 1.0);
    w = sr_worst_ratio(spec_of(PX_CODEC_BF16, 0, 1, N), x, N, DRAWS, width_bf16);
    print_message("    bf16 sr: %.2f of the bound\n", w);
    assert_true(w < 1.0);
}

static void test_stochastic_rounding_independent(void **state)
{
    (void)state;
    /* values halfway between two int8 steps round up with probability 1/2 each, independently:
     * a pair of neighbours agrees in about half of the draws. With N draws the agreement count is
     * Binomial(N, 1/2): 6 standard deviations (3 sqrt(N)) bound it with probability 1 - 2e-9. A
     * dither shared by a block's values would make every pair agree every time. */
    enum { N = 16, DRAWS = 4000 };
    float x[N], y[N];
    for (int i = 0; i < N - 1; i++) x[i] = (float)((i - 7) + 0.5) * 0.01f;
    x[N - 1] = 1.27f; /* scale 0.01 */
    px_codec_spec s = spec_of(PX_CODEC_INT8, 0, 1, N);
    px_codec *c = make(s, N, NULL);
    unsigned char p[4 + N] __attribute__((aligned(8)));
    int agree[N - 2] = {0};
    for (int d = 0; d < DRAWS; d++) {
        px_codec_stream st = {.seed = 77, .step = (uint32_t)d, .worker = 1};
        assert_int_equal(px_codec_encode(c, &st, x, N, NULL, p, sizeof p), PX_OK);
        assert_int_equal(px_codec_decode(c, &st, p, sizeof p, y, N), PX_OK);
        for (int i = 0; i < N - 2; i++) agree[i] += (y[i] > x[i]) == (y[i + 1] > x[i + 1]);
    }
    for (int i = 0; i < N - 2; i++)
        if (fabs(agree[i] - DRAWS / 2.0) > 3 * sqrt((double)DRAWS))
            fail_msg("values %d and %d rounded the same way in %d of %d draws", i, i + 1, agree[i],
                     DRAWS);
    px_codec_destroy(c);
}

/* ---- error feedback and the downlink delta --------------------------------------------------- */

static void test_error_feedback(void **state)
{
    (void)state;
    /* the same gradient g for T steps: with error feedback the decoded sum is T g minus the last
     * residual (telescoping), and the residual stays within one quantisation step */
    enum { N = 256, T = 100 };
    float g[N], res[N], y[N];
    fill_normal(g, N, 21, 1.0);
    for (int rht = 0; rht < 2; rht++) {
        px_codec_spec s = spec_of(PX_CODEC_INT8, rht, 0, 32);
        px_codec *c = make(s, N, NULL);
        size_t bytes = px_codec_payload_bytes(&s, N);
        void *p = px_alloc(bytes, "payload");
        double sum_ef[N] = {0}, sum_plain[N] = {0}, smax = 0;
        memset(res, 0, sizeof res);
        for (uint32_t t = 0; t < T; t++) {
            px_codec_stream st = {.seed = 5, .step = t, .worker = 0};
            assert_int_equal(px_codec_encode(c, &st, g, N, res, p, bytes), PX_OK);
            assert_int_equal(px_codec_decode(c, &st, p, bytes, y, N), PX_OK);
            for (int i = 0; i < N; i++) sum_ef[i] += y[i];
            if (t == T - 1)
                for (size_t b = 0; b < N / 32; b++) smax = fmax(smax, scale_at(p, &s, b));
            assert_int_equal(px_codec_encode(c, &st, g, N, NULL, p, bytes), PX_OK);
            assert_int_equal(px_codec_decode(c, &st, p, bytes, y, N), PX_OK);
            for (int i = 0; i < N; i++) sum_plain[i] += y[i];
        }
        double err_ef = 0, err_plain = 0;
        /* the last residual is the last payload's rounding: scale/2 per value without the
         * rotation, and at most the block's L2 bound sqrt(32) scale/2 per value with it */
        double bound = (rht ? sqrt(32.0) : 1.0) * 0.5 * smax * (1 + 1e-5) + 1e-7;
        for (int i = 0; i < N; i++) {
            /* telescoping: sum of decoded + final residual = T g */
            assert_true(fabs(sum_ef[i] + res[i] - (double)T * g[i]) < 1e-4 * T * fabs(g[i]) + 1e-5);
            assert_true(fabs(res[i]) <= bound);
            err_ef = fmax(err_ef, fabs(sum_ef[i] / T - g[i]));
            err_plain = fmax(err_plain, fabs(sum_plain[i] / T - g[i]));
        }
        print_message("    %s: mean over %d steps off by %.2e with error feedback, %.2e without\n",
                      rht ? "int8+rht" : "int8", T, err_ef, err_plain);
        if (!rht) assert_true(err_ef < 0.1 * err_plain);
        assert_true(err_ef <= bound / T + 1e-6);
        px_free(p);
        px_codec_destroy(c);
    }
}

static void test_downlink_delta(void **state)
{
    (void)state;
    /* the server's replica and a worker's replica stay bit-for-bit equal, and both track the
     * master within one step's quantisation error (it does not accumulate) */
    size_t n = 1000;
    float *master = malloc(n * sizeof *master), *rs = malloc(n * sizeof *rs),
          *rw = malloc(n * sizeof *rw), *step = malloc(n * sizeof *step);
    px_codec_format fmts[] = {PX_CODEC_INT8, PX_CODEC_FP8_E4M3, PX_CODEC_BF16, PX_CODEC_FP32};
    for (size_t f = 0; f < 4; f++)
        for (int rht = 0; rht < 2; rht++) {
            if (fmts[f] == PX_CODEC_FP32 && rht) continue;
            px_codec_spec s = spec_of(fmts[f], rht, fmts[f] == PX_CODEC_INT8 && rht, 64);
            px_codec *server = make(s, n, NULL), *worker = make(s, n, NULL);
            size_t bytes = px_codec_payload_bytes(&s, n);
            void *p = px_alloc(bytes, "payload");
            fill_normal(master, n, 31, 1.0);
            memcpy(rs, master, n * sizeof *rs);
            memcpy(rw, master, n * sizeof *rw);
            double first = 0, worst = 0;
            for (uint32_t t = 1; t <= 50; t++) {
                fill_normal(step, n, 1000 + t, 0.01);
                for (size_t i = 0; i < n; i++) master[i] += step[i];
                px_codec_stream st = {.seed = 8, .step = t, .worker = PX_CODEC_DOWNLINK};
                assert_int_equal(px_codec_encode_delta(server, &st, master, rs, n, p, bytes),
                                 PX_OK);
                assert_int_equal(px_codec_decode_add(worker, &st, p, bytes, rw, n), PX_OK);
                assert_memory_equal(rs, rw, n * sizeof *rs);
                double e = 0, m = 0;
                for (size_t i = 0; i < n; i++) {
                    e = fmax(e, fabs((double)master[i] - rw[i]));
                    m = fmax(m, fabs((double)step[i]));
                }
                if (t == 1) first = e;
                worst = fmax(worst, e);
                /* one step's error: well below the size of one update */
                if (fmts[f] != PX_CODEC_FP32) assert_true(e < 0.1 * m);
            }
            if (fmts[f] != PX_CODEC_FP32) assert_true(worst < 3 * first); /* no drift */
            px_free(p);
            px_codec_destroy(server);
            px_codec_destroy(worker);
        }
    free(master);
    free(rs);
    free(rw);
    free(step);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stochastic_rounding_unbiased),
        cmocka_unit_test(test_stochastic_rounding_independent),
        cmocka_unit_test(test_error_feedback),
        cmocka_unit_test(test_downlink_delta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
