/* test_layers_gpt.c - the transformer's layers of runtime/nn/layers.h against oracles written
 * here: layer norm, layer_math.h's exp, GELU, causal attention, softmax cross-entropy. The
 * method and the tolerances are test_layers.c's (read its opening comment); the shared tensors
 * and checks are tests/layer_test.h. */
#include "layer_test.h"

/* ---- layer norm ------------------------------------------------------------------------------ */

typedef struct {
    size_t N, C;
    tensor inp, w, b, R;
    double *out, *mean, *rstd;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    for (size_t n = 0; n < c->N; n++) {
        const double *x = c->inp.d + n * c->C;
        double m = 0, v = 0;
        for (size_t i = 0; i < c->C; i++)
            m += x[i] / (double)c->C;
        for (size_t i = 0; i < c->C; i++)
            v += (x[i] - m) * (x[i] - m) / (double)c->C;
        double r = 1.0 / sqrt(v + 1e-5);
        c->mean[n] = m, c->rstd[n] = r;
        for (size_t i = 0; i < c->C; i++)
            c->out[n * c->C + i] = (x[i] - m) * r * c->w.d[i] + c->b.d[i];
    }
    return dot_r(c->out, &c->R);
}

static void test_layernorm(void **state)
{
    (void)state;
    ln_ctx c = {.N = 6, .C = 8};
    size_t n = c.N * c.C;
    c.inp = tensor_new(n), c.w = tensor_new(c.C), c.b = tensor_new(c.C), c.R = tensor_new(n);
    c.out = malloc(n * sizeof(double));
    c.mean = malloc(c.N * sizeof(double)), c.rstd = malloc(c.N * sizeof(double));
    /* rows with different means and spreads, so normalisation is not the identity */
    tensor_uniform(&c.inp, -1, 1, 12);
    for (size_t r = 0; r < c.N; r++)
        for (size_t i = 0; i < c.C; i++)
            c.inp.f[r * c.C + i] =
                c.inp.f[r * c.C + i] * (0.3f + 0.4f * (float)r) + 0.5f * (float)r;
    tensor_sync(&c.inp);
    tensor_uniform(&c.w, 0.5, 1.5, 13);
    tensor_uniform(&c.b, -0.5, 0.5, 14);
    tensor_uniform(&c.R, -1, 1, 15);
    float *out = malloc(n * sizeof(float)), mean[6], rstd[6];

    px_layernorm_forward(out, mean, rstd, c.inp.f, c.w.f, c.b.f, c.N, c.C);
    ln_loss(&c);
    check_close("layernorm forward", out, c.out, n, RTOL_FWD);
    check_close("layernorm mean", mean, c.mean, c.N, 1e-6);
    check_close("layernorm rstd", rstd, c.rstd, c.N, 1e-6);
    float *out2 = malloc(n * sizeof(float));
    px_layernorm_forward(out2, NULL, NULL, c.inp.f, c.w.f, c.b.f, c.N, c.C);
    assert_memory_equal(out2, out, n * sizeof(float));

    /* the input gradient subtracts two row means of products of ~1 values from each entry: a few
     * roundings relative to rstd * |dout|; 1e-4 (file comment) */
    px_layernorm_backward(c.inp.g, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, mean, rstd, c.N, c.C);
    fd_check("layernorm dinp", ln_loss, &c, &c.inp, 1e-4);
    fd_check("layernorm dweight", ln_loss, &c, &c.w, 1e-4);
    fd_check("layernorm dbias", ln_loss, &c, &c.b, 1e-4);

    tensor *ts[] = {&c.inp, &c.w, &c.b};
    float *first[3];
    save_grads(first, ts, 3);
    px_layernorm_backward(c.inp.g, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, mean, rstd, c.N, c.C);
    check_doubled("layernorm accumulates", first, ts, 3);
    zero_grad(&c.inp);
    px_layernorm_backward(c.inp.g, NULL, NULL, c.R.f, c.inp.f, c.w.f, mean, rstd, c.N, c.C);
    assert_memory_equal(c.inp.g, first[0], c.inp.n * sizeof(float));
    zero_grad(&c.w), zero_grad(&c.b);
    px_layernorm_backward(NULL, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, mean, rstd, c.N, c.C);
    assert_memory_equal(c.w.g, first[1], c.w.n * sizeof(float));
    assert_memory_equal(c.b.g, first[2], c.b.n * sizeof(float));
    zero_grad(&c.b);
    px_layernorm_backward(NULL, NULL, c.b.g, c.R.f, c.inp.f, c.w.f, mean, rstd, c.N, c.C);
    assert_memory_equal(c.b.g, first[2], c.b.n * sizeof(float));

    for (int i = 0; i < 3; i++)
        free(first[i]);
    free(out), free(out2);
    free(c.out), free(c.mean), free(c.rstd);
    tensor_free(&c.inp), tensor_free(&c.w), tensor_free(&c.b), tensor_free(&c.R);
}

/* ---- the vectorisable exp of layer_math.h ---------------------------------------------------- */

/* Within 2 ulp of exp over the whole unclamped range (every 1/4096 from -87 to 88, plus the ends),
 * exactly 1 at 0, clamped (finite, positive) beyond, and NaN through. */
static void test_expf(void **state)
{
    (void)state;
    double worst = 0;
    float worst_x = 0;
    for (long k = -87 * 4096; k <= 88 * 4096; k++) {
        float x = (float)k / 4096.0f;
        double want = exp((double)x), err = fabs((double)px_lm_expf(x) - want) / want;
        if (err > worst) worst = err, worst_x = x;
    }
    if (!(worst <= 2 * 0x1p-23)) {
        print_error("px_lm_expf(%.9g): relative error %.3g > 2 ulp\n", (double)worst_x, worst);
        fail();
    }
    assert_true(px_lm_expf(0.0f) == 1.0f);
    assert_true(fabs(px_lm_expf(-1000.0f) - exp(-87.0)) <= 2 * 0x1p-23 * exp(-87.0));
    assert_true(fabs(px_lm_expf(1000.0f) - exp(88.0)) <= 2 * 0x1p-23 * exp(88.0));
    assert_true(isnan(px_lm_expf(NAN)));
}

/* ---- GELU ------------------------------------------------------------------------------------ */

static double gelu_ref(double x)
{
    const double s = sqrt(2.0 / 3.14159265358979323846);
    return 0.5 * x * (1.0 + tanh(s * (x + 0.044715 * x * x * x)));
}

static double gelu_loss(void *p)
{
    pointwise_ctx *c = p;
    for (size_t i = 0; i < c->inp.n; i++)
        c->out[i] = gelu_ref(c->inp.d[i]);
    return dot_r(c->out, &c->R);
}

static void test_gelu(void **state)
{
    (void)state;
    size_t n = 48;
    pointwise_ctx c = {tensor_new(n), tensor_new(n), malloc(n * sizeof(double))};
    /* across the bend and into both tails, where tanh saturates */
    tensor_uniform(&c.inp, -6, 6, 16);
    c.inp.f[0] = 0, c.inp.f[1] = 1, c.inp.f[2] = -1, c.inp.f[3] = 12;
    tensor_sync(&c.inp);
    tensor_uniform(&c.R, -1, 1, 17);
    float *out = malloc(n * sizeof(float));
    px_gelu_forward(out, c.inp.f, n);
    gelu_loss(&c);
    check_close("gelu forward", out, c.out, n, RTOL_FWD);
    /* a known value: gelu_tanh(1) = 0.8411919906 (PyTorch, approximate="tanh") */
    assert_true(fabs(out[1] - 0.8411919906) < 1e-6);
    /* far tails: x and 0 (to 1e-8: e^x is clamped at e^88, so x / e^88 is what is left),
     * slopes 1 and 0, nothing overflows */
    const float tail[4] = {100.0f, -100.0f, 1e4f, -1e4f}, want_y[4] = {100.0f, 0, 1e4f, 0},
                want_g[4] = {1, 0, 1, 0};
    float ty[4], tg[4] = {0}, ones[4] = {1, 1, 1, 1};
    px_gelu_forward(ty, tail, 4);
    px_gelu_backward(tg, tail, ones, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(ty[i] - want_y[i]) <= 1e-6 * fabs(want_y[i]) + 1e-8);
        assert_true(fabs(tg[i] - want_g[i]) <= 1e-6);
    }

    /* one tanh and a few products per value: 1e-4 (file comment) */
    px_gelu_backward(c.inp.g, c.inp.f, c.R.f, n);
    fd_check("gelu dinp", gelu_loss, &c, &c.inp, 1e-4);
    tensor *ts[] = {&c.inp};
    float *first[1];
    save_grads(first, ts, 1);
    px_gelu_backward(c.inp.g, c.inp.f, c.R.f, n);
    check_doubled("gelu accumulates", first, ts, 1);
    free(first[0]);
    free(out);
    free(c.out);
    tensor_free(&c.inp), tensor_free(&c.R);
}

/* ---- attention ------------------------------------------------------------------------------- */

typedef struct {
    size_t B, T, C, NH;
    tensor inp, R;
    double *out, *att, *preatt;
} attn_ctx;

/* From the definition, per (b, h, t): scores against keys 0..t, softmax, weighted sum of values */
static double attn_loss(void *p)
{
    attn_ctx *c = p;
    size_t T = c->T, C = c->C, NH = c->NH, hs = C / NH;
    for (size_t b = 0; b < c->B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                const double *q = c->inp.d + (b * T + t) * 3 * C + h * hs;
                double *pre = c->preatt + ((b * NH + h) * T + t) * T;
                double *a = c->att + ((b * NH + h) * T + t) * T;
                double mx = -INFINITY, sum = 0;
                for (size_t u = 0; u < T; u++) {
                    pre[u] = -INFINITY, a[u] = 0;
                    if (u > t) continue;
                    const double *k = c->inp.d + (b * T + u) * 3 * C + C + h * hs;
                    double s = 0;
                    for (size_t i = 0; i < hs; i++)
                        s += q[i] * k[i];
                    pre[u] = s / sqrt((double)hs);
                    mx = fmax(mx, pre[u]);
                }
                for (size_t u = 0; u <= t; u++)
                    sum += a[u] = exp(pre[u] - mx);
                for (size_t u = 0; u <= t; u++)
                    a[u] /= sum;
                for (size_t i = 0; i < hs; i++) {
                    double o = 0;
                    for (size_t u = 0; u <= t; u++)
                        o += a[u] * c->inp.d[(b * T + u) * 3 * C + 2 * C + h * hs + i];
                    c->out[(b * T + t) * C + h * hs + i] = o;
                }
            }
    return dot_r(c->out, &c->R);
}

static void attn_case(size_t B, size_t T, size_t C, size_t NH)
{
    attn_ctx c = {.B = B, .T = T, .C = C, .NH = NH};
    size_t nin = B * T * 3 * C, nout = B * T * C, natt = B * NH * T * T;
    c.inp = tensor_new(nin), c.R = tensor_new(nout);
    c.out = malloc(nout * sizeof(double));
    c.att = malloc(natt * sizeof(double)), c.preatt = malloc(natt * sizeof(double));
    /* +-2: scores up to ~4*hs/sqrt(hs), so some softmax rows are far from uniform */
    tensor_uniform(&c.inp, -2, 2, 18 + T);
    tensor_uniform(&c.R, -1, 1, 19 + T);
    float *out = malloc(nout * sizeof(float)), *att = malloc(natt * sizeof(float)),
          *pre = malloc(natt * sizeof(float)), *datt = malloc(T * T * sizeof(float)),
          *dpre = malloc(T * T * sizeof(float));

    px_attention_forward(out, pre, att, c.inp.f, B, T, C, NH);
    attn_loss(&c);
    check_close("attention forward", out, c.out, nout, RTOL_FWD);
    check_close("attention att", att, c.att, natt, RTOL_FWD);
    for (size_t i = 0; i < natt; i++)
        if (isinf(c.preatt[i])) {
            assert_true(isinf(pre[i]) && pre[i] < 0);
            pre[i] = 0, c.preatt[i] = 0; /* compared as equal below */
        }
    check_close("attention preatt", pre, c.preatt, natt, RTOL_FWD);
    /* without preatt: the same out and att */
    float *out2 = malloc(nout * sizeof(float)), *att2 = malloc(natt * sizeof(float));
    px_attention_forward(out2, NULL, att2, c.inp.f, B, T, C, NH);
    assert_memory_equal(out2, out, nout * sizeof(float));
    assert_memory_equal(att2, att, natt * sizeof(float));

    /* the chain softmax -> two products of sums over hs and T (<= 7) terms: 1e-4 (file comment) */
    px_attention_backward(c.inp.g, dpre, datt, c.R.f, c.inp.f, att, B, T, C, NH);
    fd_check("attention dinp", attn_loss, &c, &c.inp, 1e-4);
    tensor *ts[] = {&c.inp};
    float *first[1];
    save_grads(first, ts, 1);
    px_attention_backward(c.inp.g, dpre, datt, c.R.f, c.inp.f, att, B, T, C, NH);
    check_doubled("attention accumulates", first, ts, 1);
    px_attention_backward(NULL, dpre, datt, c.R.f, c.inp.f, att, B, T, C, NH); /* no-op */

    free(first[0]);
    free(out), free(att), free(pre), free(datt), free(dpre), free(out2), free(att2);
    free(c.out), free(c.att), free(c.preatt);
    tensor_free(&c.inp), tensor_free(&c.R);
}

static void test_attention(void **state)
{
    (void)state;
    attn_case(2, 5, 8, 2);
    attn_case(1, 7, 12, 3); /* head size 4, odd T */
    attn_case(1, 1, 4, 1);  /* a single position attends only to itself */
}

/* Causality both ways: changing positions after t0 leaves outputs up to t0 bit-identical, and a
 * gradient flowing from outputs up to t0 reaches no input after t0. */
static void test_attention_causal(void **state)
{
    (void)state;
    const size_t B = 2, T = 6, C = 8, NH = 2, t0 = 2;
    tensor x = tensor_new(B * T * 3 * C);
    tensor_uniform(&x, -2, 2, 30);
    float *out = malloc(B * T * C * sizeof(float)), *out2 = malloc(B * T * C * sizeof(float));
    float *att = malloc(B * NH * T * T * sizeof(float)), *datt = malloc(T * T * sizeof(float)),
          *dpre = malloc(T * T * sizeof(float)), *dout = calloc(B * T * C, sizeof(float));
    px_attention_forward(out, NULL, att, x.f, B, T, C, NH);
    for (size_t b = 0; b < B; b++)
        for (size_t t = t0 + 1; t < T; t++)
            for (size_t i = 0; i < 3 * C; i++)
                x.f[(b * T + t) * 3 * C + i] += 0.5f;
    px_attention_forward(out2, NULL, att, x.f, B, T, C, NH);
    for (size_t b = 0; b < B; b++) {
        assert_memory_equal(out + b * T * C, out2 + b * T * C, (t0 + 1) * C * sizeof(float));
        /* and the change did reach the later positions */
        assert_memory_not_equal(out + (b * T + t0 + 1) * C, out2 + (b * T + t0 + 1) * C,
                                (T - t0 - 1) * C * sizeof(float));
    }

    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < (t0 + 1) * C; i++)
            dout[b * T * C + i] = 1.0f + 0.1f * (float)i;
    px_attention_backward(x.g, dpre, datt, dout, x.f, att, B, T, C, NH);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            double s = 0;
            for (size_t i = 0; i < 3 * C; i++)
                s += fabs(x.g[(b * T + t) * 3 * C + i]);
            if (t > t0)
                assert_true(s == 0);
            else
                assert_true(s > 0);
        }
    free(out), free(out2), free(att), free(datt), free(dpre), free(dout);
    tensor_free(&x);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------- */

typedef struct {
    size_t N, V;
    const int32_t *tgt;
    tensor logits;
    double *probs;
} ce_ctx;

/* mean over rows of log(sum_j exp(z_j)) - z_target, the log-sum-exp shifted by the row max */
static double ce_loss(void *p)
{
    ce_ctx *c = p;
    double total = 0;
    for (size_t n = 0; n < c->N; n++) {
        const double *z = c->logits.d + n * c->V;
        double mx = -INFINITY, s = 0;
        for (size_t j = 0; j < c->V; j++)
            mx = fmax(mx, z[j]);
        for (size_t j = 0; j < c->V; j++)
            s += exp(z[j] - mx);
        for (size_t j = 0; j < c->V; j++)
            c->probs[n * c->V + j] = exp(z[j] - mx) / s;
        total += mx + log(s) - z[c->tgt[n]];
    }
    return total / (double)c->N;
}

static void test_crossentropy(void **state)
{
    (void)state;
    int32_t tgt[6] = {0, 6, 3, 3, 1, 5};
    ce_ctx c = {.N = 6, .V = 7, .tgt = tgt};
    size_t n = c.N * c.V;
    c.logits = tensor_new(n);
    c.probs = malloc(n * sizeof(double));
    tensor_uniform(&c.logits, -3, 3, 34);
    float *probs = malloc(n * sizeof(float));
    double loss = px_crossentropy_forward(probs, c.logits.f, tgt, c.N, c.V);
    double want = ce_loss(&c);
    /* each row's log-sum-exp adds up V float exps (1 ulp each, ~6e-8 relative) and takes the log
     * in double: at most ~1.2e-7 off */
    assert_true(fabs(loss - want) <= 2e-7);
    check_close("crossentropy probs", probs, c.probs, n, 1e-6);
    assert_true(px_crossentropy_forward(NULL, c.logits.f, tgt, c.N, c.V) == loss);

    /* the loss itself is the scalar here; (p - onehot)/N from float probs: 1e-5 */
    for (size_t i = 0; i < n; i++)
        c.logits.g[i] = 7.0f; /* written, not accumulated: this must vanish */
    px_crossentropy_backward(c.logits.g, probs, tgt, c.N, c.V);
    fd_check("crossentropy dlogits", ce_loss, &c, &c.logits, 1e-5);
    /* in place, over probs */
    px_crossentropy_backward(probs, probs, tgt, c.N, c.V);
    assert_memory_equal(probs, c.logits.g, n * sizeof(float));

    free(probs);
    free(c.probs);
    tensor_free(&c.logits);
}

/* Rows worked by hand: exp(0, ln 2, ln 3) = (1, 2, 3), so softmax = (1/6, 1/3, 1/2) and the loss
 * at target 2 is ln 6 - ln 3 = ln 2; three logits of 1000 (exp overflows a naive float or double
 * sum) give 1/3 each and ln 3; (-1000, 0, -1000) at target 0 costs 1000 + ln(1 + 2e-1000) = 1000.
 */
static void test_crossentropy_by_hand(void **state)
{
    (void)state;
    const float z[9] = {0, (float)log(2.0), (float)log(3.0), 1000, 1000, 1000, -1000, 0, -1000};
    const int32_t tgt[3] = {2, 0, 0};
    float p[9], d[9];
    double loss = px_crossentropy_forward(p, z, tgt, 3, 3);
    assert_true(fabs(loss - (log(2.0) + log(3.0) + 1000.0) / 3.0) < 2e-7);
    const double want_p[9] = {1.0 / 6, 1.0 / 3, 1.0 / 2, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 1, 0};
    for (int i = 0; i < 9; i++)
        assert_true(fabs(p[i] - want_p[i]) < 1e-6);
    px_crossentropy_backward(d, p, tgt, 3, 3);
    const double want_d[9] = {1.0 / 18, 1.0 / 9,  -1.0 / 6, -2.0 / 9, 1.0 / 9,
                              1.0 / 9,  -1.0 / 3, 1.0 / 3,  0};
    for (int i = 0; i < 9; i++)
        assert_true(fabs(d[i] - want_d[i]) < 1e-6);
}

/* A logit of 1000 among zeros, wherever it sits in the row (first lanes, later lanes, the tail
 * past the last full vector): softmax is one-hot on it, and the loss is 0 at that target and 1000
 * elsewhere, all without overflow. */
static void test_crossentropy_large_logit(void **state)
{
    (void)state;
    enum { V = 19 };
    const size_t where[4] = {0, 5, 13, 17};
    float z[4 * V] = {0}, p[4 * V];
    int32_t tgt[4] = {0, 5, 13, 2};
    for (int n = 0; n < 4; n++)
        z[n * V + where[n]] = 1000.0f;
    double loss = px_crossentropy_forward(p, z, tgt, 4, V);
    assert_true(fabs(loss - 1000.0 / 4) < 1e-6);
    for (int n = 0; n < 4; n++)
        for (size_t j = 0; j < V; j++)
            assert_true(fabs(p[n * V + j] - (j == where[n] ? 1.0 : 0.0)) < 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_expf),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_causal),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_crossentropy_by_hand),
        cmocka_unit_test(test_crossentropy_large_logit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
