/* test_layers.c - the layers of runtime/nn/layers.h against oracles written here: linear,
 * conv2d, max pooling, ReLU, embedding, residual (tests/test_layers_gpt.c: the transformer's
 * layer norm, exp, GELU, attention and softmax cross-entropy; tests/layer_test.h: the shared
 * tensors and checks).
 *
 * For each layer: an independent double-precision forward (naive loops from the definition,
 * never the float code), which the float forward must match; then central finite differences of
 * the scalar L = sum(out * R), R a fixed random tensor, taken on that double oracle with respect
 * to every coordinate of every input and parameter, which the float backward (called with dout =
 * R) must match. Because the differences are taken in double (step 1e-6, truncation error ~1e-12,
 * cancellation ~1e-16 * |L| / 1e-6 ~ 1e-9), they are exact for our purpose and the tolerance only
 * has to cover the float arithmetic of the layer under test: sums of a few dozen products carry a
 * relative error of a few 1e-7, so the smooth layers use 1e-4 (a hundred times that, yet a wrong
 * factor, sign, index or missing term misses by orders of magnitude) and the piecewise-linear ones
 * (ReLU, max pooling, residual, embedding: sums of copies of R) 1e-5 or less. Each layer's
 * choice is restated where it is used.
 *
 * "Close" means |got - want| <= rtol * (|want| + rms(want)): relative, with the tensor's rms as a
 * floor so that an entry near zero, where cancellation is expected, is judged on the tensor's
 * scale rather than its own.
 *
 * Also: the accumulate convention (a second backward doubles every gradient), NULL gradient
 * outputs (the rest bit-identical to a full call), attention's causal mask in both directions,
 * max-pooling ties and NaN, cross-entropy on hand-computed rows, and layer_math.h's exp against
 * libm's in double.
 */
#include "layer_test.h"

/* ---- linear ---------------------------------------------------------------------------------- */

typedef struct {
    size_t N, C, OC;
    tensor inp, w, b, R;
    double *out;
} linear_ctx;

static void linear_oracle(const linear_ctx *c, double *out)
{
    for (size_t n = 0; n < c->N; n++)
        for (size_t o = 0; o < c->OC; o++) {
            double s = c->b.d[o];
            for (size_t i = 0; i < c->C; i++)
                s += c->inp.d[n * c->C + i] * c->w.d[o * c->C + i];
            out[n * c->OC + o] = s;
        }
}

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    linear_oracle(c, c->out);
    return dot_r(c->out, &c->R);
}

static void test_linear(void **state)
{
    (void)state;
    linear_ctx c = {.N = 6, .C = 7, .OC = 5};
    c.inp = tensor_new(c.N * c.C), c.w = tensor_new(c.OC * c.C), c.b = tensor_new(c.OC);
    c.R = tensor_new(c.N * c.OC);
    c.out = malloc(c.N * c.OC * sizeof(double));
    tensor_uniform(&c.inp, -1, 1, 1);
    tensor_uniform(&c.w, -1, 1, 2);
    tensor_uniform(&c.b, -1, 1, 3);
    tensor_uniform(&c.R, -1, 1, 4);
    float *out = malloc(c.N * c.OC * sizeof(float));

    px_linear_forward(out, c.inp.f, c.w.f, c.b.f, c.N, c.C, c.OC);
    linear_oracle(&c, c.out);
    check_close("linear forward", out, c.out, c.N * c.OC, RTOL_FWD);

    /* bias NULL: the product alone */
    px_linear_forward(out, c.inp.f, c.w.f, NULL, c.N, c.C, c.OC);
    for (size_t n = 0; n < c.N; n++)
        for (size_t o = 0; o < c.OC; o++)
            c.out[n * c.OC + o] -= c.b.d[o];
    check_close("linear forward, no bias", out, c.out, c.N * c.OC, RTOL_FWD);

    /* gradients: sums of at most N = 6 or OC = 5 products; 1e-4 (file comment) */
    px_linear_backward(c.inp.g, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, c.N, c.C, c.OC);
    fd_check("linear dinp", linear_loss, &c, &c.inp, 1e-4);
    fd_check("linear dweight", linear_loss, &c, &c.w, 1e-4);
    fd_check("linear dbias", linear_loss, &c, &c.b, 1e-4);

    tensor *ts[] = {&c.inp, &c.w, &c.b};
    float *first[3];
    save_grads(first, ts, 3);
    px_linear_backward(c.inp.g, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, c.N, c.C, c.OC);
    check_doubled("linear accumulates", first, ts, 3);

    /* frozen layer: dinp alone, bit-identical to the full call's */
    zero_grad(&c.inp);
    px_linear_backward(c.inp.g, NULL, NULL, c.R.f, c.inp.f, c.w.f, c.N, c.C, c.OC);
    assert_memory_equal(c.inp.g, first[0], c.inp.n * sizeof(float));
    /* first layer: the weight gradients alone; dbias NULL leaves dweight as it was */
    zero_grad(&c.w);
    zero_grad(&c.b);
    px_linear_backward(NULL, c.w.g, c.b.g, c.R.f, c.inp.f, c.w.f, c.N, c.C, c.OC);
    assert_memory_equal(c.w.g, first[1], c.w.n * sizeof(float));
    assert_memory_equal(c.b.g, first[2], c.b.n * sizeof(float));
    zero_grad(&c.w);
    px_linear_backward(NULL, c.w.g, NULL, c.R.f, c.inp.f, c.w.f, c.N, c.C, c.OC);
    assert_memory_equal(c.w.g, first[1], c.w.n * sizeof(float));

    for (int i = 0; i < 3; i++)
        free(first[i]);
    free(out);
    free(c.out);
    tensor_free(&c.inp), tensor_free(&c.w), tensor_free(&c.b), tensor_free(&c.R);
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

typedef struct {
    size_t B, C, H, W, OC, K, P, Ho, Wo;
    tensor inp, w, b, R;
    double *out;
} conv_ctx;

/* out[b][o][y][x] = bias[o] + sum_{c,i,j} w[o][c][i][j] * inp[b][c][y+i-P][x+j-P], 0 outside */
static void conv_oracle(const conv_ctx *c, double *out)
{
    for (size_t b = 0; b < c->B; b++)
        for (size_t o = 0; o < c->OC; o++)
            for (size_t y = 0; y < c->Ho; y++)
                for (size_t x = 0; x < c->Wo; x++) {
                    double s = c->b.d[o];
                    for (size_t ch = 0; ch < c->C; ch++)
                        for (size_t i = 0; i < c->K; i++)
                            for (size_t j = 0; j < c->K; j++) {
                                long iy = (long)(y + i) - (long)c->P,
                                     ix = (long)(x + j) - (long)c->P;
                                if (iy < 0 || ix < 0 || iy >= (long)c->H || ix >= (long)c->W)
                                    continue;
                                s += c->w.d[((o * c->C + ch) * c->K + i) * c->K + j] *
                                     c->inp.d[((b * c->C + ch) * c->H + (size_t)iy) * c->W +
                                              (size_t)ix];
                            }
                    out[((b * c->OC + o) * c->Ho + y) * c->Wo + x] = s;
                }
}

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    conv_oracle(c, c->out);
    return dot_r(c->out, &c->R);
}

static void conv_case(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t K, size_t P)
{
    conv_ctx c = {.B = B, .C = C, .H = H, .W = W, .OC = OC, .K = K, .P = P};
    c.Ho = H + 2 * P - K + 1, c.Wo = W + 2 * P - K + 1;
    size_t nout = B * OC * c.Ho * c.Wo;
    c.inp = tensor_new(B * C * H * W), c.w = tensor_new(OC * C * K * K), c.b = tensor_new(OC);
    c.R = tensor_new(nout);
    c.out = malloc(nout * sizeof(double));
    tensor_uniform(&c.inp, -1, 1, 10 + K);
    tensor_uniform(&c.w, -1, 1, 20 + K);
    tensor_uniform(&c.b, -1, 1, 30 + K);
    tensor_uniform(&c.R, -1, 1, 40 + K);
    size_t ncol = px_conv2d_col_size(C, H, W, K, P);
    assert_int_equal(ncol, C * K * K * c.Ho * c.Wo);
    float *col = malloc(ncol * sizeof(float)), *out = malloc(nout * sizeof(float));

    px_conv2d_forward(out, col, c.inp.f, c.w.f, c.b.f, B, C, H, W, OC, K, P);
    conv_oracle(&c, c.out);
    check_close("conv2d forward", out, c.out, nout, RTOL_FWD);

    /* gradients: sums of at most C*K*K = 27 or B*H'*W' = 60 products; 1e-4 (file comment) */
    px_conv2d_backward(c.inp.g, c.w.g, c.b.g, col, c.R.f, c.inp.f, c.w.f, B, C, H, W, OC, K, P);
    fd_check("conv2d dinp", conv_loss, &c, &c.inp, 1e-4);
    fd_check("conv2d dweight", conv_loss, &c, &c.w, 1e-4);
    fd_check("conv2d dbias", conv_loss, &c, &c.b, 1e-4);

    tensor *ts[] = {&c.inp, &c.w, &c.b};
    float *first[3];
    save_grads(first, ts, 3);
    px_conv2d_backward(c.inp.g, c.w.g, c.b.g, col, c.R.f, c.inp.f, c.w.f, B, C, H, W, OC, K, P);
    check_doubled("conv2d accumulates", first, ts, 3);

    zero_grad(&c.inp);
    px_conv2d_backward(c.inp.g, NULL, NULL, col, c.R.f, c.inp.f, c.w.f, B, C, H, W, OC, K, P);
    assert_memory_equal(c.inp.g, first[0], c.inp.n * sizeof(float));
    zero_grad(&c.w);
    zero_grad(&c.b);
    px_conv2d_backward(NULL, c.w.g, c.b.g, col, c.R.f, c.inp.f, c.w.f, B, C, H, W, OC, K, P);
    assert_memory_equal(c.w.g, first[1], c.w.n * sizeof(float));
    assert_memory_equal(c.b.g, first[2], c.b.n * sizeof(float));

    for (int i = 0; i < 3; i++)
        free(first[i]);
    free(col);
    free(out);
    free(c.out);
    tensor_free(&c.inp), tensor_free(&c.w), tensor_free(&c.b), tensor_free(&c.R);
}

static void test_conv2d(void **state)
{
    (void)state;
    conv_case(2, 3, 6, 5, 4, 3, 1); /* "same" 3x3, non-square image */
    conv_case(1, 2, 5, 4, 3, 2, 0); /* no padding, even kernel */
    conv_case(2, 1, 3, 4, 2, 5, 2); /* kernel wider than the unpadded image */
    conv_case(1, 2, 3, 1, 2, 3, 1); /* one column: kernel columns that read only padding */
}

/* ---- max pooling ----------------------------------------------------------------------------- */

typedef struct {
    size_t B, C, H, W;
    tensor inp, R;
    double *out;
} pool_ctx;

static void pool_oracle(const pool_ctx *c, double *out)
{
    size_t Ho = c->H / 2, Wo = c->W / 2;
    for (size_t p = 0; p < c->B * c->C; p++)
        for (size_t y = 0; y < Ho; y++)
            for (size_t x = 0; x < Wo; x++) {
                const double *in = c->inp.d + p * c->H * c->W;
                double m = -INFINITY;
                for (size_t i = 0; i < 2; i++)
                    for (size_t j = 0; j < 2; j++)
                        m = fmax(m, in[(2 * y + i) * c->W + 2 * x + j]);
                out[(p * Ho + y) * Wo + x] = m;
            }
}

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    pool_oracle(c, c->out);
    return dot_r(c->out, &c->R);
}

static void test_maxpool(void **state)
{
    (void)state;
    pool_ctx c = {.B = 2, .C = 2, .H = 6, .W = 5}; /* odd W: the last column is dropped */
    size_t n = c.B * c.C * c.H * c.W, nout = c.B * c.C * (c.H / 2) * (c.W / 2);
    c.inp = tensor_new(n), c.R = tensor_new(nout);
    c.out = malloc(nout * sizeof(double));
    /* distinct values 0.01 apart (a shuffled ramp), so no window is within FD_H of a tie */
    px_rng r;
    px_rng_init(&r, 5, 0x1a7e5, 0, 0);
    for (size_t i = 0; i < n; i++)
        c.inp.f[i] = (float)(0.01 * (double)i - 1.0);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = px_rng_below(&r, i + 1);
        float t = c.inp.f[i];
        c.inp.f[i] = c.inp.f[j], c.inp.f[j] = t;
    }
    tensor_sync(&c.inp);
    tensor_uniform(&c.R, -1, 1, 6);
    float *out = malloc(nout * sizeof(float));
    uint32_t *arg = malloc(nout * sizeof(uint32_t));

    px_maxpool_forward(out, arg, c.inp.f, c.B, c.C, c.H, c.W);
    pool_oracle(&c, c.out);
    check_close("maxpool forward", out, c.out, nout, 0); /* a selection: exact */

    /* the gradient is R copied to the winners: exact up to the differences' 1e-9 */
    px_maxpool_backward(c.inp.g, c.R.f, arg, c.B, c.C, c.H, c.W);
    fd_check("maxpool dinp", pool_loss, &c, &c.inp, 1e-6);
    tensor *ts[] = {&c.inp};
    float *first[1];
    save_grads(first, ts, 1);
    px_maxpool_backward(c.inp.g, c.R.f, arg, c.B, c.C, c.H, c.W);
    check_doubled("maxpool accumulates", first, ts, 1);
    free(first[0]);

    free(arg);
    free(out);
    free(c.out);
    tensor_free(&c.inp), tensor_free(&c.R);
}

static void test_maxpool_ties_and_nan(void **state)
{
    (void)state;
    /* one plane (H,W) = (2,10): five windows */
    const float in[2][10] = {
        {1, 1, 1, 3, 2, 1, 0, 0, 4, 1},
        {1, 1, 3, 2, 5, 5, 0, 0, 2, 3},
    };
    float x[20], out[5], dx[20] = {0}, dout[5] = {1, 2, 3, 4, 5};
    memcpy(x, in, sizeof x);
    x[16] = NAN; /* window 3 holds a NaN among zeros */
    uint32_t arg[5];
    px_maxpool_forward(out, arg, x, 1, 1, 2, 10);
    /* all equal: the first (top-left) wins */
    assert_int_equal(arg[0], 0);
    /* 3 at top-right and bottom-left: top row first */
    assert_int_equal(arg[1], 3);
    /* 5 twice on the bottom row: left first */
    assert_int_equal(arg[2], 14);
    /* NaN wins and propagates */
    assert_int_equal(arg[3], 16);
    assert_true(isnan(out[3]));
    /* 4 top-left beats 3 bottom-right */
    assert_int_equal(arg[4], 8);
    assert_true(out[0] == 1 && out[1] == 3 && out[2] == 5 && out[4] == 4);
    px_maxpool_backward(dx, dout, arg, 1, 1, 2, 10);
    for (size_t i = 0; i < 20; i++) {
        float want = 0;
        for (size_t k = 0; k < 5; k++)
            if (arg[k] == i) want = dout[k];
        assert_true(dx[i] == want);
    }
}

/* ---- ReLU ------------------------------------------------------------------------------------ */

static double relu_loss(void *p)
{
    pointwise_ctx *c = p;
    for (size_t i = 0; i < c->inp.n; i++)
        c->out[i] = c->inp.d[i] > 0 ? c->inp.d[i] : 0;
    return dot_r(c->out, &c->R);
}

static void test_relu(void **state)
{
    (void)state;
    size_t n = 40;
    pointwise_ctx c = {tensor_new(n), tensor_new(n), malloc(n * sizeof(double))};
    /* magnitudes in [0.05, 1) with random signs: no input within FD_H of the kink */
    tensor_uniform(&c.inp, 0.05, 1, 7);
    for (size_t i = 0; i < n; i += 2)
        c.inp.f[(i * 7) % n] = -c.inp.f[(i * 7) % n];
    tensor_sync(&c.inp);
    tensor_uniform(&c.R, -1, 1, 8);
    float *out = malloc(n * sizeof(float));
    px_relu_forward(out, c.inp.f, n);
    relu_loss(&c);
    check_close("relu forward", out, c.out, n, 0);
    /* in place gives the same */
    float *inplace = malloc(n * sizeof(float));
    memcpy(inplace, c.inp.f, n * sizeof(float));
    px_relu_forward(inplace, inplace, n);
    assert_memory_equal(inplace, out, n * sizeof(float));

    /* R masked: exact up to the differences' 1e-9 */
    px_relu_backward(c.inp.g, c.R.f, out, n);
    fd_check("relu dinp", relu_loss, &c, &c.inp, 1e-6);
    tensor *ts[] = {&c.inp};
    float *first[1];
    save_grads(first, ts, 1);
    px_relu_backward(c.inp.g, c.R.f, out, n);
    check_doubled("relu accumulates", first, ts, 1);
    free(first[0]);
    free(inplace);
    free(out);
    free(c.out);
    tensor_free(&c.inp), tensor_free(&c.R);
}

/* The ReLU's backward in place (px_relu_mask, what the CNN and the MLP's executor pass use):
 * d where the forward's output was > 0, else exactly +0, by hand: a select, so a NaN or a
 * negative d where the unit was off gives +0 (a product would give NaN or -0), and a NaN output
 * counts as off. */
static void test_relu_mask(void **state)
{
    (void)state;
    const float out[8] = {1.0f, 0.0f, -0.0f, 2.5f, NAN, 1e-30f, 3.0f, 0.0f};
    float d[8] = {-2.0f, -3.0f, 4.0f, NAN, 5.0f, -0.0f, INFINITY, NAN};
    const float want[8] = {-2.0f, 0.0f, 0.0f, NAN, 0.0f, -0.0f, INFINITY, 0.0f};
    px_relu_mask(d, out, 8);
    for (int i = 0; i < 8; i++) {
        if (isnan(want[i])) {
            assert_true(isnan(d[i]));
            continue;
        }
        assert_memory_equal(&d[i], &want[i], sizeof(float)); /* bits: +0 stays +0 */
    }
    /* the same as the backward into a zeroed buffer wherever d is finite and the sign of zero
     * does not matter */
    size_t n = 64;
    float *o = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float)),
          *b = calloc(n, sizeof(float));
    px_rng r;
    px_rng_init(&r, 3, 4, 5, 0);
    for (size_t i = 0; i < n; i++) {
        o[i] = px_lm_relu((float)px_rng_normal(&r));
        m[i] = (float)px_rng_normal(&r);
    }
    px_relu_backward(b, m, o, n);
    px_relu_mask(m, o, n);
    for (size_t i = 0; i < n; i++)
        assert_true(m[i] == b[i]);
    free(o), free(m), free(b);
}

/* ---- embedding ------------------------------------------------------------------------------- */

typedef struct {
    size_t B, T, C, V, maxT;
    int32_t *tok;
    tensor wte, wpe, R;
    double *out;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    for (size_t b = 0; b < c->B; b++)
        for (size_t t = 0; t < c->T; t++)
            for (size_t i = 0; i < c->C; i++)
                c->out[(b * c->T + t) * c->C + i] =
                    c->wte.d[(size_t)c->tok[b * c->T + t] * c->C + i] + c->wpe.d[t * c->C + i];
    return dot_r(c->out, &c->R);
}

static void test_embedding(void **state)
{
    (void)state;
    emb_ctx c = {.B = 2, .T = 5, .C = 8, .V = 11, .maxT = 7};
    size_t nout = c.B * c.T * c.C;
    /* token 4 three times (once per sequence at different positions, once repeated): its row
     * must receive the sum; tokens 0 and V-1 exercise the ends of the table */
    int32_t tok[10] = {4, 0, 7, 4, 10, 2, 4, 9, 1, 3};
    c.tok = tok;
    c.wte = tensor_new(c.V * c.C), c.wpe = tensor_new(c.maxT * c.C), c.R = tensor_new(nout);
    c.out = malloc(nout * sizeof(double));
    tensor_uniform(&c.wte, -1, 1, 9);
    tensor_uniform(&c.wpe, -1, 1, 10);
    tensor_uniform(&c.R, -1, 1, 11);
    float *out = malloc(nout * sizeof(float));
    px_embedding_forward(out, tok, c.wte.f, c.wpe.f, c.B, c.T, c.C);
    emb_loss(&c);
    check_close("embedding forward", out, c.out, nout, RTOL_FWD);

    /* sums of at most 3 copies of R: 1e-5 */
    px_embedding_backward(c.wte.g, c.wpe.g, c.R.f, tok, c.B, c.T, c.C);
    fd_check("embedding dwte", emb_loss, &c, &c.wte, 1e-5);
    fd_check("embedding dwpe", emb_loss, &c, &c.wpe, 1e-5); /* rows t >= T: zero */

    tensor *ts[] = {&c.wte, &c.wpe};
    float *first[2];
    save_grads(first, ts, 2);
    px_embedding_backward(c.wte.g, c.wpe.g, c.R.f, tok, c.B, c.T, c.C);
    check_doubled("embedding accumulates", first, ts, 2);
    zero_grad(&c.wte);
    px_embedding_backward(c.wte.g, NULL, c.R.f, tok, c.B, c.T, c.C);
    assert_memory_equal(c.wte.g, first[0], c.wte.n * sizeof(float));
    zero_grad(&c.wpe);
    px_embedding_backward(NULL, c.wpe.g, c.R.f, tok, c.B, c.T, c.C);
    assert_memory_equal(c.wpe.g, first[1], c.wpe.n * sizeof(float));

    free(first[0]), free(first[1]);
    free(out);
    free(c.out);
    tensor_free(&c.wte), tensor_free(&c.wpe), tensor_free(&c.R);
}

/* ---- residual -------------------------------------------------------------------------------- */

typedef struct {
    tensor a, b, R;
    double *out;
} res_ctx;

static double res_loss(void *p)
{
    res_ctx *c = p;
    for (size_t i = 0; i < c->a.n; i++)
        c->out[i] = c->a.d[i] + c->b.d[i];
    return dot_r(c->out, &c->R);
}

static void test_residual(void **state)
{
    (void)state;
    size_t n = 13;
    res_ctx c = {tensor_new(n), tensor_new(n), tensor_new(n), malloc(n * sizeof(double))};
    tensor_uniform(&c.a, -1, 1, 31);
    tensor_uniform(&c.b, -1, 1, 32);
    tensor_uniform(&c.R, -1, 1, 33);
    float *out = malloc(n * sizeof(float));
    px_residual_forward(out, c.a.f, c.b.f, n);
    res_loss(&c);
    check_close("residual forward", out, c.out, n, RTOL_FWD);

    /* copies of R: exact up to the differences' 1e-9 */
    px_residual_backward(c.a.g, c.b.g, c.R.f, n);
    fd_check("residual da", res_loss, &c, &c.a, 1e-6);
    fd_check("residual db", res_loss, &c, &c.b, 1e-6);
    tensor *ts[] = {&c.a, &c.b};
    float *first[2];
    save_grads(first, ts, 2);
    px_residual_backward(c.a.g, c.b.g, c.R.f, n);
    check_doubled("residual accumulates", first, ts, 2);
    zero_grad(&c.b);
    px_residual_backward(NULL, c.b.g, c.R.f, n);
    assert_memory_equal(c.b.g, first[1], n * sizeof(float));
    zero_grad(&c.a);
    px_residual_backward(c.a.g, NULL, c.R.f, n);
    assert_memory_equal(c.a.g, first[0], n * sizeof(float));
    free(first[0]), free(first[1]);
    free(out);
    free(c.out);
    tensor_free(&c.a), tensor_free(&c.b), tensor_free(&c.R);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_ties_and_nan),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_relu_mask),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_residual),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
