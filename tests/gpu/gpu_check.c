/* gpu_check.c - every device kernel against its CPU twin, on the first GPU (each model's whole
 * training step and the benchmark are tests/gpu/gpu_models.c's). Run by tests/gpu/run.sh (and by
 * ctest as gpu_check, which reports a skip without a GPU).
 *
 * Each check draws seeded inputs, runs the CPU reference (runtime/nn/layers.c,
 * optimizer_math.h through px_sgd/AdamW's own loops, the aggregator rules, the CPU codec) and
 * the CUDA twin on copies of them, and compares each output tensor by its relative error,
 * max |gpu - cpu| / max |cpu|, against a threshold stated per tensor: 0 where the GPU must
 * agree bit for bit (data movement, comparisons, the codec's wire bytes), a few ulps where the
 * only differences are the order of a reduction and fused multiply-adds, more for products
 * whose cuBLAS summation order differs from OpenBLAS's over long dot products.
 *
 * Exit status: 0 every check passed, 1 a check failed (each printed), 77 no usable GPU here
 * (ctest's skip: nothing was verified).
 */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "aggregators/aggregators_cuda.h"
#include "base/clock.h"
#include "base/device.h"
#include "base/rng.h"
#include "comm/codec.h"
#include "comm/codec_cuda.h"
#include "runtime/nn/layers.h"
#include "runtime/nn/layers_cuda.h"
#include "runtime/nn/optimizer.h"
#include "runtime/nn/optimizer_math.h"

static px_device *dev;
static px_nn_cuda *nn;
static int failures, checks;

#define OK(call)                                                                                   \
    do {                                                                                           \
        px_status px__s = (call);                                                                  \
        if (px__s < 0) {                                                                           \
            fprintf(stderr, "gpu_check: %s:%d: %s: %s\n", __FILE__, __LINE__, #call, px_errmsg()); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- buffers ---------------------------------------------------------------------------------- */

static float *h_new(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) exit(1);
    return p;
}

static void h_normal(float *x, size_t n, uint64_t seed, float scale)
{
    px_rng r;
    px_rng_init(&r, seed, 77, 0, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)px_rng_normal(&r) * scale;
}

static void *d_new(size_t bytes)
{
    void *p;
    OK(px_device_alloc(dev, bytes, &p));
    OK(px_device_zero(dev, p, bytes, NULL));
    return p;
}

static void *d_from(const void *h, size_t bytes)
{
    void *p = d_new(bytes);
    OK(px_device_copy(dev, p, h, bytes, PX_COPY_H2D, NULL));
    return p;
}

static float *d_floats(const float *h, size_t n)
{
    return d_from(h, n * sizeof(float));
}

static void to_host(void *h, const void *d, size_t bytes)
{
    OK(px_device_sync(dev));
    OK(px_device_copy(dev, h, d, bytes, PX_COPY_D2H, NULL));
    OK(px_device_sync(dev));
}

/* ---- comparison ------------------------------------------------------------------------------ */

/* Compares the device tensor d (n floats) with the CPU's ref: relative error within tol. */
static void compare(const char *what, const float *ref, const float *d, size_t n, double tol)
{
    float *got = h_new(n);
    to_host(got, d, n * sizeof(float));
    double num = 0, den = 0;
    size_t worst = 0, nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && isfinite(ref[i])) nonfinite++;
        double e = fabs((double)got[i] - (double)ref[i]);
        if (e > num) num = e, worst = i;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    double rel = den > 0 ? num / den : num;
    int ok = nonfinite == 0 && rel <= tol;
    checks++;
    failures += !ok;
    printf("%-4s %-34s rel.err %.3e (limit %.1e) n=%zu%s\n", ok ? "ok" : "FAIL", what, rel, tol, n,
           nonfinite ? " NON-FINITE" : "");
    if (!ok && n)
        printf("     worst at %zu: cpu %.9g gpu %.9g\n", worst, (double)ref[worst],
               (double)got[worst]);
    free(got);
}

static void verdict(const char *what, int ok, const char *detail)
{
    checks++;
    failures += !ok;
    printf("%-4s %-34s %s\n", ok ? "ok" : "FAIL", what, detail);
}

/* ---- layers ----------------------------------------------------------------------------------- */

static void check_linear(void)
{
    size_t N = 64, C = 784, OC = 256;
    float *x = h_new(N * C), *w = h_new(OC * C), *b = h_new(OC), *dout = h_new(N * OC);
    h_normal(x, N * C, 1, 1.0f);
    h_normal(w, OC * C, 2, 0.05f);
    h_normal(b, OC, 3, 0.1f);
    h_normal(dout, N * OC, 4, 1.0f);
    float *out = h_new(N * OC), *dx = h_new(N * C), *dw = h_new(OC * C), *db = h_new(OC);
    px_linear_forward(out, x, w, b, N, C, OC);
    px_linear_backward(dx, dw, db, dout, x, w, N, C, OC);
    float *gx = d_floats(x, N * C), *gw = d_floats(w, OC * C), *gb = d_floats(b, OC),
          *gdo = d_floats(dout, N * OC), *gout = d_new(N * OC * 4), *gdx = d_new(N * C * 4),
          *gdw = d_new(OC * C * 4), *gdb = d_new(OC * 4);
    OK(px_linear_forward_cuda(nn, gout, gx, gw, gb, N, C, OC));
    OK(px_linear_backward_cuda(nn, gdx, gdw, gdb, gdo, gx, gw, N, C, OC));
    compare("linear forward out", out, gout, N * OC, 1e-5);
    compare("linear backward dinp", dx, gdx, N * C, 1e-5);
    compare("linear backward dweight", dw, gdw, OC * C, 1e-5);
    compare("linear backward dbias", db, gdb, OC, 1e-6);
    free(x), free(w), free(b), free(dout), free(out), free(dx), free(dw), free(db);
}

static void check_conv_pool(void)
{
    size_t B = 4, C = 3, H = 28, W = 28, OC = 6, K = 5, P = 2;
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1, ncol = px_conv2d_col_size(C, H, W, K, P);
    size_t nin = B * C * H * W, nout = B * OC * Ho * Wo, nw = OC * C * K * K;
    float *x = h_new(nin), *w = h_new(nw), *b = h_new(OC), *dout = h_new(nout), *col = h_new(ncol);
    h_normal(x, nin, 5, 1.0f);
    h_normal(w, nw, 6, 0.2f);
    h_normal(b, OC, 7, 0.1f);
    h_normal(dout, nout, 8, 1.0f);
    float *out = h_new(nout), *dx = h_new(nin), *dw = h_new(nw), *db = h_new(OC);
    px_conv2d_forward(out, col, x, w, b, B, C, H, W, OC, K, P);
    px_conv2d_backward(dx, dw, db, col, dout, x, w, B, C, H, W, OC, K, P);
    float *gx = d_floats(x, nin), *gw = d_floats(w, nw), *gb = d_floats(b, OC),
          *gdo = d_floats(dout, nout), *gcol = d_new(ncol * 4), *gout = d_new(nout * 4),
          *gdx = d_new(nin * 4), *gdw = d_new(nw * 4), *gdb = d_new(OC * 4);
    OK(px_conv2d_forward_cuda(nn, gout, gcol, gx, gw, gb, B, C, H, W, OC, K, P));
    OK(px_conv2d_backward_cuda(nn, gdx, gdw, gdb, gcol, gdo, gx, gw, B, C, H, W, OC, K, P));
    compare("conv2d forward out", out, gout, nout, 1e-5);
    compare("conv2d backward dinp", dx, gdx, nin, 1e-5);
    compare("conv2d backward dweight", dw, gdw, nw, 1e-5);
    compare("conv2d backward dbias", db, gdb, OC, 1e-6);

    /* max pooling of the conv output: comparisons and a scatter, bit for bit */
    size_t np = B * OC * (Ho / 2) * (Wo / 2);
    float *po = h_new(np), *pdo = h_new(np), *pdx = h_new(nout);
    uint32_t *am = calloc(np, 4), *gam_h = calloc(np, 4);
    h_normal(pdo, np, 9, 1.0f);
    px_maxpool_forward(po, am, out, B, OC, Ho, Wo);
    px_maxpool_backward(pdx, pdo, am, B, OC, Ho, Wo);
    float *gpo = d_new(np * 4), *gpdo = d_floats(pdo, np), *gpdx = d_new(nout * 4);
    uint32_t *gam = d_new(np * 4);
    float *gin = d_floats(out, nout); /* the CPU's conv output, so pooling is checked alone */
    OK(px_maxpool_forward_cuda(nn, gpo, gam, gin, B, OC, Ho, Wo));
    OK(px_maxpool_backward_cuda(nn, gpdx, gpdo, gam, B, OC, Ho, Wo));
    compare("maxpool forward out", po, gpo, np, 0.0);
    to_host(gam_h, gam, np * 4);
    verdict("maxpool forward argmax", !memcmp(am, gam_h, np * 4), "bit for bit");
    compare("maxpool backward dinp", pdx, gpdx, nout, 0.0);
    free(x), free(w), free(b), free(dout), free(col), free(out), free(dx), free(dw), free(db);
    free(po), free(pdo), free(pdx), free(am), free(gam_h);
}

static void check_elementwise(void)
{
    size_t N = 1 << 20;
    float *x = h_new(N), *dout = h_new(N), *y = h_new(N), *dx = h_new(N), *y2 = h_new(N);
    h_normal(x, N, 10, 3.0f);
    h_normal(dout, N, 11, 1.0f);
    float *gx = d_floats(x, N), *gdo = d_floats(dout, N), *gy = d_new(N * 4), *gdx = d_new(N * 4);
    px_relu_forward(y, x, N);
    px_relu_backward(dx, dout, y, N);
    OK(px_relu_forward_cuda(nn, gy, gx, N));
    OK(px_relu_backward_cuda(nn, gdx, gdo, gy, N));
    compare("relu forward", y, gy, N, 0.0);
    compare("relu backward", dx, gdx, N, 0.0);
    memset(dx, 0, N * 4);
    OK(px_device_zero(dev, gdx, N * 4, NULL));
    px_gelu_forward(y, x, N);
    px_gelu_backward(dx, x, dout, N);
    OK(px_gelu_forward_cuda(nn, gy, gx, N));
    OK(px_gelu_backward_cuda(nn, gdx, gx, gdo, N));
    compare("gelu forward (layer_math.h)", y, gy, N, 1e-6);
    compare("gelu backward (layer_math.h)", dx, gdx, N, 1e-6);
    px_residual_forward(y2, x, dout, N);
    OK(px_residual_forward_cuda(nn, gy, gx, gdo, N));
    compare("residual forward", y2, gy, N, 0.0);
    free(x), free(dout), free(y), free(dx), free(y2);
}

static void check_embedding_layernorm(void)
{
    size_t B = 8, T = 64, C = 128, V = 96, N = B * T;
    int32_t *tok = calloc(N, 4);
    px_rng r;
    px_rng_init(&r, 12, 1, 0, 0);
    for (size_t i = 0; i < N; i++)
        tok[i] = (int32_t)(px_rng_u64(&r) % V);
    float *wte = h_new(V * C), *wpe = h_new(T * C), *dout = h_new(N * C), *out = h_new(N * C);
    float *dwte = h_new(V * C), *dwpe = h_new(T * C);
    h_normal(wte, V * C, 13, 0.1f);
    h_normal(wpe, T * C, 14, 0.1f);
    h_normal(dout, N * C, 15, 1.0f);
    px_embedding_forward(out, tok, wte, wpe, B, T, C);
    px_embedding_backward(dwte, dwpe, dout, tok, B, T, C);
    int32_t *gtok = d_from(tok, N * 4);
    float *gwte = d_floats(wte, V * C), *gwpe = d_floats(wpe, T * C), *gdo = d_floats(dout, N * C),
          *gout = d_new(N * C * 4), *gdwte = d_new(V * C * 4), *gdwpe = d_new(T * C * 4);
    OK(px_embedding_forward_cuda(nn, gout, gtok, gwte, gwpe, B, T, C));
    OK(px_embedding_backward_cuda(nn, gdwte, gdwpe, gdo, gtok, B, T, C));
    compare("embedding forward", out, gout, N * C, 0.0);
    compare("embedding backward dwte (atomics)", dwte, gdwte, V * C, 1e-6);
    compare("embedding backward dwpe", dwpe, gdwpe, T * C, 0.0);

    /* layer norm of the embedding output */
    float *lw = h_new(C), *lb = h_new(C), *y = h_new(N * C), *mean = h_new(N), *rstd = h_new(N);
    float *dx = h_new(N * C), *dlw = h_new(C), *dlb = h_new(C);
    h_normal(lw, C, 16, 1.0f);
    h_normal(lb, C, 17, 0.1f);
    px_layernorm_forward(y, mean, rstd, out, lw, lb, N, C);
    px_layernorm_backward(dx, dlw, dlb, dout, out, lw, mean, rstd, N, C);
    float *gin = d_floats(out, N * C), *glw = d_floats(lw, C), *glb = d_floats(lb, C),
          *gy = d_new(N * C * 4), *gmean = d_new(N * 4), *grstd = d_new(N * 4),
          *gdx = d_new(N * C * 4), *gdlw = d_new(C * 4), *gdlb = d_new(C * 4);
    OK(px_layernorm_forward_cuda(nn, gy, gmean, grstd, gin, glw, glb, N, C));
    OK(px_layernorm_backward_cuda(nn, gdx, gdlw, gdlb, gdo, gin, glw, gmean, grstd, N, C));
    compare("layernorm forward out", y, gy, N * C, 1e-6);
    compare("layernorm forward rstd", rstd, grstd, N, 1e-6);
    compare("layernorm backward dinp", dx, gdx, N * C, 1e-5);
    compare("layernorm backward dweight", dlw, gdlw, C, 1e-5);
    compare("layernorm backward dbias", dlb, gdlb, C, 1e-6);
    free(tok), free(wte), free(wpe), free(dout), free(out), free(dwte), free(dwpe);
    free(lw), free(lb), free(y), free(mean), free(rstd), free(dx), free(dlw), free(dlb);
}

static void check_attention_ce(void)
{
    size_t B = 2, T = 64, C = 128, NH = 4, N3 = B * T * 3 * C, NO = B * T * C, NA = B * NH * T * T;
    float *inp = h_new(N3), *dout = h_new(NO), *out = h_new(NO), *pre = h_new(NA), *att = h_new(NA);
    float *dinp = h_new(N3), *dpre = h_new(T * T), *datt = h_new(T * T);
    h_normal(inp, N3, 18, 1.0f);
    h_normal(dout, NO, 19, 1.0f);
    px_attention_forward(out, pre, att, inp, B, T, C, NH);
    px_attention_backward(dinp, dpre, datt, dout, inp, att, B, T, C, NH);
    float *ginp = d_floats(inp, N3), *gdo = d_floats(dout, NO), *gout = d_new(NO * 4),
          *gpre = d_new(NA * 4), *gatt = d_new(NA * 4), *gdinp = d_new(N3 * 4),
          *gdpre = d_new(NH * T * T * 4), *gdatt = d_new(NH * T * T * 4);
    OK(px_attention_forward_cuda(nn, gout, gpre, gatt, ginp, B, T, C, NH));
    OK(px_attention_backward_cuda(nn, gdinp, gdpre, gdatt, gdo, ginp, gatt, B, T, C, NH));
    compare("attention forward att", att, gatt, NA, 1e-5);
    compare("attention forward out", out, gout, NO, 1e-5);
    compare("attention backward dinp", dinp, gdinp, N3, 1e-4);

    size_t N = 256, V = 65;
    float *logits = h_new(N * V), *probs = h_new(N * V), *dl = h_new(N * V);
    int32_t *tg = calloc(N, 4);
    for (size_t i = 0; i < N; i++)
        tg[i] = (int32_t)((i * 7 + 3) % V);
    h_normal(logits, N * V, 20, 3.0f);
    double loss = px_crossentropy_forward(probs, logits, tg, N, V);
    px_crossentropy_backward(dl, probs, tg, N, V);
    float *glog = d_floats(logits, N * V), *gprobs = d_new(N * V * 4), *gdl = d_new(N * V * 4);
    int32_t *gtg = d_from(tg, N * 4);
    double *glosses = d_new(N * 8), *losses = calloc(N, 8);
    OK(px_crossentropy_forward_cuda(nn, gprobs, glosses, glog, gtg, N, V));
    OK(px_crossentropy_backward_cuda(nn, gdl, gprobs, gtg, N, V));
    to_host(losses, glosses, N * 8);
    double gl = 0;
    for (size_t i = 0; i < N; i++)
        gl += losses[i];
    gl /= (double)N;
    char msg[96];
    snprintf(msg, sizeof msg, "cpu %.9f gpu %.9f (limit rel 1e-6)", loss, gl);
    verdict("crossentropy loss", fabs(gl - loss) <= 1e-6 * fabs(loss), msg);
    compare("crossentropy probs", probs, gprobs, N * V, 1e-6);
    compare("crossentropy dlogits", dl, gdl, N * V, 1e-6);
    free(inp), free(dout), free(out), free(pre), free(att), free(dinp), free(dpre), free(datt);
    free(logits), free(probs), free(dl), free(tg), free(losses);
}

/* ---- optimizers: the CPU's own loops (optimizer.c) against the kernels ------------------------ */

static void check_optimizers(void)
{
    size_t n = 1 << 20;
    float *w = h_new(n), *g = h_new(n);
    h_normal(w, n, 21, 1.0f);
    h_normal(g, n, 22, 0.1f);
    float *gw = d_floats(w, n), *gg = d_floats(g, n), *gv = d_new(n * 4);
    px_sgd sgd;
    OK(px_sgd_create(&sgd, n, 0.9f, 1e-4f, 1));
    for (int s = 0; s < 3; s++) {
        px_sgd_step(&sgd, w, g, 0.05f);
        OK(px_sgd_step_cuda(nn, gw, gg, gv, n, 0.05f, 0.9f, 1e-4f, 1));
    }
    compare("sgd nesterov weights (3 steps)", w, gw, n, 1e-6);
    compare("sgd nesterov momentum", sgd.velocity, gv, n, 1e-6);
    px_sgd_free(&sgd);

    /* AdamW: one group of n values through the registry, as the server runs it */
    h_normal(w, n, 23, 1.0f);
    OK(px_device_copy(dev, gw, w, n * 4, PX_COPY_H2D, NULL));
    float *gm = d_new(n * 4), *gv2 = d_new(n * 4);
    px_optimizer_spec spec = {.weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    px_optimizer *o;
    OK(px_optimizer_create(&o, "adamw", &spec, n, NULL, 0));
    for (uint64_t t = 1; t <= 3; t++) {
        o->ops->step(o, w, g, 0.002f, NULL);
        OK(px_adamw_step_cuda(nn, gw, gg, gm, gv2, n, 0.002f, 0.9f, 0.999f, 1e-8f, 0.01f, t));
    }
    compare("adamw weights (3 steps)", w, gw, n, 1e-6);
    size_t refused = 1;
    OK(px_nn_cuda_take_refused(nn, &refused));
    verdict("optimizer refusals counted", refused == 0, refused ? "refused > 0" : "0 refused");
    px_optimizer_destroy(o);
    free(w), free(g);
}

/* ---- aggregators ---------------------------------------------------------------------------- */

static void check_aggregators(void)
{
    size_t n = 15, d = 100003, f = 3;
    float *X = h_new(n * d), *out = h_new(d);
    h_normal(X, n * d, 24, 1.0f);
    const float **rows = calloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = X + i * d;
    px_agg_cuda *ac;
    OK(px_agg_cuda_create(&ac, NULL, n, 65536));
    float *gX = d_floats(X, n * d), *gout = d_new(d * 4);
    static const char *names[] = {"median", "trimmed_mean", "meamed"};
    for (int k = 0; k < 3; k++) {
        px_agg_params p;
        px_agg_params_default(&p);
        p.f = (uint32_t)f;
        px_agg *a;
        OK(px_agg_create(&a, names[k], &p, n, d, NULL, NULL));
        OK(px_agg_run(a, rows, n, 0, out, NULL));
        px_agg_destroy(a);
        OK(px_agg_coordwise_cuda(ac, (px_cw_rule)k, gX, d, n, d, f, gout));
        char what[64];
        snprintf(what, sizeof what, "aggregator %s", names[k]);
        compare(what, out, gout, d, 1e-6); /* coord_math.h on both; FMA may move an ulp */
    }
    /* Gram matrix: double on both sides */
    double *G = calloc(n * n, 8), worst = 0, big = 0;
    OK(px_agg_gram_cuda(ac, gX, d, n, d, G));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t c = 0; c < d; c++)
                s += (double)X[i * d + c] * X[j * d + c];
            worst = fmax(worst, fabs(s - G[i * n + j]));
            big = fmax(big, fabs(s));
        }
    char msg[96];
    snprintf(msg, sizeof msg, "rel.err %.3e (limit 1e-12)", worst / big);
    verdict("gram matrix (cuBLAS DSYRK)", worst / big <= 1e-12, msg);
    px_agg_cuda_destroy(ac);
    free(X), free(out), free(rows), free(G);
}

/* ---- codecs: the wire bytes must be the CPU codec's ------------------------------------------ */

static void check_codecs(void)
{
    size_t n = 100000 + 77; /* a partial last block */
    float *x = h_new(n), *back = h_new(n);
    h_normal(x, n, 25, 0.01f);
    float *gx = d_floats(x, n), *gback = d_new(n * 4);
    int *gbad = d_new(sizeof(int));
    static const px_codec_format fmts[] = {PX_CODEC_BF16, PX_CODEC_FP16, PX_CODEC_INT8,
                                           PX_CODEC_FP8_E4M3};
    px_codec_stream st = {.seed = 1, .step = 5, .worker = 3};
    for (int k = 0; k < 4; k++)
        for (int rht = 0; rht <= 1; rht++)
            for (int sr = 0; sr <= 1; sr++) {
                px_codec_spec spec = {fmts[k], rht, sr, 256};
                size_t bytes = px_codec_payload_bytes(&spec, n);
                unsigned char *cpu = malloc(bytes), *gpu = malloc(bytes);
                px_codec *c;
                OK(px_codec_create(&c, &spec, n, NULL));
                OK(px_codec_encode(c, &st, x, n, NULL, cpu, bytes));
                OK(px_codec_decode(c, &st, cpu, bytes, back, n));
                px_codec_destroy(c);
                unsigned char *gp = d_new(bytes);
                OK(px_codec_encode_cuda(&spec, &st, gx, n, gp, NULL));
                to_host(gpu, gp, bytes);
                char what[64], desc[32];
                snprintf(what, sizeof what, "codec %s encode",
                         px_codec_describe(&spec, desc, sizeof desc));
                size_t diff = 0;
                for (size_t i = 0; i < bytes; i++)
                    diff += cpu[i] != gpu[i];
                char msg[64];
                snprintf(msg, sizeof msg, "%zu of %zu wire bytes differ (limit 0)", diff, bytes);
                verdict(what, diff == 0, msg);
                OK(px_device_copy(dev, gp, cpu, bytes, PX_COPY_H2D, NULL)); /* decode the CPU's */
                OK(px_codec_decode_cuda(&spec, &st, gp, n, gback, 0, gbad, NULL));
                snprintf(what, sizeof what, "codec %s decode", desc);
                compare(what, back, gback, n, 1e-6);
                px_device_free(dev, gp);
                free(cpu), free(gpu);
            }
    free(x), free(back);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    int count = 0;
    if (px_device_count(PX_DEVICE_CUDA, &count) < 0) {
        printf("gpu_check: SKIPPED, nothing verified: %s\n", px_errmsg());
        return 77;
    }
    OK(px_device_open(&dev, PX_DEVICE_CUDA, 0));
    printf("gpu_check on %s\n", px_device_name(dev));
    OK(px_nn_cuda_create(&nn, NULL));
    double t0 = px_now_ms();
    check_linear();
    check_conv_pool();
    check_elementwise();
    check_embedding_layernorm();
    check_attention_ce();
    check_optimizers();
    check_aggregators();
    check_codecs();
    OK(px_device_sync(dev));
    printf("gpu_check: %d of %d checks passed in %.1f s (device buffers are not freed: the "
           "process ends here)\n",
           checks - failures, checks, (px_now_ms() - t0) / 1000.0);
    px_nn_cuda_destroy(nn);
    return failures ? 1 : 0;
}
