/* test_layers.c - every layer of runtime/nn/layers.h against an oracle written here.
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
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "runtime/nn/layer_math.h"
#include "runtime/nn/layers.h"

#define FD_H       1e-6
#define RTOL_FWD   1e-5 /* float forward vs double oracle */
#define RTOL_ACCUM 1e-6 /* second backward vs twice the first (sgemm may sum in another order) */

/* ---- tensors: a float copy for the code under test, a double copy for the oracle ------------- */

typedef struct {
    size_t n;
    float *f;  /* values given to the float code */
    double *d; /* the same values, for the oracle (finite differences perturb these) */
    float *g;  /* gradient from the float backward */
} tensor;

static tensor tensor_new(size_t n)
{
    tensor t = {n, calloc(n ? n : 1, sizeof(float)), calloc(n ? n : 1, sizeof(double)),
                calloc(n ? n : 1, sizeof(float))};
    assert_non_null(t.f);
    assert_non_null(t.d);
    assert_non_null(t.g);
    return t;
}

static void tensor_free(tensor *t)
{
    free(t->f);
    free(t->d);
    free(t->g);
}

/* uniform in [lo, hi), drawn in float so that the oracle sees exactly the float values */
static void tensor_uniform(tensor *t, double lo, double hi, uint64_t seed)
{
    px_rng r;
    px_rng_init(&r, seed, 0x1a7e5, 0, 0);
    for (size_t i = 0; i < t->n; i++) {
        t->f[i] = (float)(lo + (hi - lo) * px_rng_uniform(&r));
        t->d[i] = t->f[i];
    }
}

static void tensor_sync(tensor *t) /* after writing t->f by hand */
{
    for (size_t i = 0; i < t->n; i++)
        t->d[i] = t->f[i];
}

static void zero_grad(tensor *t)
{
    memset(t->g, 0, t->n * sizeof(float));
}

static double rms(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0;
}

/* got (float) against want (double), see the file comment; names the worst entry on failure */
static void check_close(const char *what, const float *got, const double *want, size_t n,
                        double rtol)
{
    double floor = rms(want, n), worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / (fabs(want[i]) + floor + 1e-300);
        if (!(err <= worst)) worst = err, at = i;
    }
    if (!(worst <= rtol)) {
        print_error("%s: entry %zu: got %.9g, want %.9g (relative error %.3g > %.3g)\n", what, at,
                    (double)got[at], want[at], worst, rtol);
        fail();
    }
}

/* The layer's scalar loss as a function of the oracle's double tensors. */
typedef double (*loss_fn)(void *ctx);

/* Central differences of loss with respect to every coordinate of x->d, against x->g. */
static void fd_check(const char *what, loss_fn loss, void *ctx, tensor *x, double rtol)
{
    double *fd = malloc(x->n * sizeof(double));
    assert_non_null(fd);
    for (size_t i = 0; i < x->n; i++) {
        double save = x->d[i];
        x->d[i] = save + FD_H;
        double lp = loss(ctx);
        x->d[i] = save - FD_H;
        double lm = loss(ctx);
        x->d[i] = save;
        fd[i] = (lp - lm) / (2 * FD_H);
    }
    check_close(what, x->g, fd, x->n, rtol);
    free(fd);
}

/* sum(out * R) over n values */
static double dot_r(const double *out, const tensor *R)
{
    double s = 0;
    for (size_t i = 0; i < R->n; i++)
        s += out[i] * R->d[i];
    return s;
}

static void save_grads(float **copies, tensor *const *ts, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        copies[i] = malloc(ts[i]->n * sizeof(float));
        assert_non_null(copies[i]);
        memcpy(copies[i], ts[i]->g, ts[i]->n * sizeof(float));
    }
}

/* after a second backward: every gradient is twice the saved first one */
static void check_doubled(const char *what, float *const *first, tensor *const *ts, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        double *twice = malloc(ts[i]->n * sizeof(double));
        assert_non_null(twice);
        for (size_t j = 0; j < ts[i]->n; j++)
            twice[j] = 2.0 * first[i][j];
        check_close(what, ts[i]->g, twice, ts[i]->n, RTOL_ACCUM);
        free(twice);
    }
}

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

typedef struct {
    tensor inp, R;
    double *out;
} pointwise_ctx;

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
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_ties_and_nan),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_expf),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_causal),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_crossentropy_by_hand),
        cmocka_unit_test(test_crossentropy_large_logit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
