/* layers.c - CPU reference of the layers (see layers.h): loops over the per-element math of
 * layer_math.h, and cblas_sgemm for every matrix product. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "layer_math.h"

/* C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, with leading dimensions: the one place
 * that converts sizes to BLAS ints, so the call sites read as the products they compute. */
static void px__gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const float *Bm, size_t ldb, float beta, float *Cm,
                     size_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, Bm,
                (int)ldb, beta, Cm, (int)ldc);
}

/* Sum of x[0..n) in double. Four running sums: the additions overlap instead of waiting on each
 * other, and the compiler can keep the four in one vector register. */
static double px__sum(const float *x, size_t n)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            acc[k] += x[i + k];
    for (; i < n; i++)
        acc[0] += x[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* Sum of (x[i] - m)^2 in double, as px__sum. */
static double px__sum_sq_dev(const float *x, size_t n, double m)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            double d = x[i + k] - m;
            acc[k] += d * d;
        }
    for (; i < n; i++) {
        double d = x[i] - m;
        acc[0] += d * d;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* Sum of x[i] y[i] in double, as px__sum. */
static double px__dot(const float *x, const float *y, size_t n)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            acc[k] += (double)x[i + k] * y[i + k];
    for (; i < n; i++)
        acc[0] += (double)x[i] * y[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* Largest of x[0..n), n >= 1, in eight running maxima (one vector register) for the reason of
 * px__sum. With a NaN in x the result may or may not be NaN; the NaN reaches the caller's result
 * anyway, through its exp. */
static float px__max(const float *x, size_t n)
{
    float m[8];
    for (int k = 0; k < 8; k++)
        m[k] = x[0];
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    for (int k = 1; k < 8; k++)
        m[0] = m[k] > m[0] ? m[k] : m[0];
    return m[0];
}

/* x[0..n) = softmax(x[0..n)), in place: the maximum subtracted so no exp overflows, the
 * denominator summed in double. */
static void px__softmax(float *x, size_t n)
{
    float mx = px__max(x, n);
    for (size_t i = 0; i < n; i++)
        x[i] = px_lm_expf(x[i] - mx);
    float inv = (float)(1.0 / px__sum(x, n));
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

/* ---- linear ---------------------------------------------------------------------------------- */

void px_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       size_t N, size_t C, size_t OC)
{
    /* the bias goes in first and the product adds to it (beta = 1): one pass over out fewer
     * than adding it afterwards */
    float beta = 0.0f;
    if (bias) {
        for (size_t n = 0; n < N; n++)
            memcpy(out + n * OC, bias, OC * sizeof(float));
        beta = 1.0f;
    }
    px__gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void px_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, size_t N, size_t C, size_t OC)
{
    if (dinp) px__gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) px__gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        for (size_t n = 0; n < N; n++) {
            const float *row = dout + n * OC;
            for (size_t o = 0; o < OC; o++)
                dbias[o] += row[o];
        }
    }
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

size_t px_conv2d_col_size(size_t C, size_t H, size_t W, size_t K, size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1;
    return C * K * K * Ho * Wo;
}

/* The output columns [*lo, *hi) of a kernel column kw whose input column ow + kw - P falls inside
 * [0, W): the rest of the row reads padding. */
static void px__valid_cols(size_t kw, size_t P, size_t W, size_t Wo, size_t *lo, size_t *hi)
{
    *lo = kw < P ? P - kw : 0;
    size_t end = W + P - kw; /* first ow with ow + kw - P >= W */
    *hi = end < Wo ? end : Wo;
    if (*hi < *lo) *hi = *lo;
}

/* col (C*K*K, Ho*Wo) from one image img (C,H,W); see layers.h for the row order. */
static void px__im2col(float *col, const float *img, size_t C, size_t H, size_t W, size_t K,
                       size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1;
    for (size_t c = 0; c < C; c++)
        for (size_t kh = 0; kh < K; kh++)
            for (size_t kw = 0; kw < K; kw++) {
                float *row = col + ((c * K + kh) * K + kw) * Ho * Wo;
                size_t lo, hi;
                px__valid_cols(kw, P, W, Wo, &lo, &hi);
                for (size_t oh = 0; oh < Ho; oh++) {
                    float *dst = row + oh * Wo;
                    size_t ih = oh + kh; /* + P offset: ih - P is the input row */
                    if (ih < P || ih - P >= H) {
                        memset(dst, 0, Wo * sizeof(float));
                        continue;
                    }
                    memset(dst, 0, lo * sizeof(float));
                    /* output column lo reads input column lo + kw - P >= 0 */
                    if (hi > lo)
                        memcpy(dst + lo, img + (c * H + ih - P) * W + lo + kw - P,
                               (hi - lo) * sizeof(float));
                    memset(dst + hi, 0, (Wo - hi) * sizeof(float));
                }
            }
}

/* img (C,H,W) += each entry of col (C*K*K, Ho*Wo) added back onto the pixel im2col took it from;
 * entries that came from padding are dropped. */
static void px__col2im_add(float *img, const float *col, size_t C, size_t H, size_t W, size_t K,
                           size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1;
    for (size_t c = 0; c < C; c++)
        for (size_t kh = 0; kh < K; kh++)
            for (size_t kw = 0; kw < K; kw++) {
                const float *row = col + ((c * K + kh) * K + kw) * Ho * Wo;
                size_t lo, hi;
                px__valid_cols(kw, P, W, Wo, &lo, &hi);
                if (hi == lo) continue; /* this kernel column reads only padding */
                for (size_t oh = 0; oh < Ho; oh++) {
                    size_t ih = oh + kh;
                    if (ih < P || ih - P >= H) continue;
                    float *dst = img + (c * H + ih - P) * W + lo + kw - P;
                    const float *src = row + oh * Wo + lo;
                    for (size_t i = 0; i < hi - lo; i++)
                        dst[i] += src[i];
                }
            }
}

void px_conv2d_forward(float *out, float *col, const float *inp, const float *weight,
                       const float *bias, size_t B, size_t C, size_t H, size_t W, size_t OC,
                       size_t K, size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1, HWo = Ho * Wo, CKK = C * K * K;
    for (size_t b = 0; b < B; b++) {
        float *ob = out + b * OC * HWo;
        px__im2col(col, inp + b * C * H * W, C, H, W, K, P);
        float beta = 0.0f;
        if (bias) {
            for (size_t o = 0; o < OC; o++)
                for (size_t i = 0; i < HWo; i++)
                    ob[o * HWo + i] = bias[o];
            beta = 1.0f;
        }
        /* out_b (OC,HWo) = weight (OC,CKK) @ col (CKK,HWo) */
        px__gemm(0, 0, OC, HWo, CKK, 1.0f, weight, CKK, col, HWo, beta, ob, HWo);
    }
}

void px_conv2d_backward(float *dinp, float *dweight, float *dbias, float *col, const float *dout,
                        const float *inp, const float *weight, size_t B, size_t C, size_t H,
                        size_t W, size_t OC, size_t K, size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1, HWo = Ho * Wo, CKK = C * K * K;
    for (size_t b = 0; b < B; b++) {
        const float *db = dout + b * OC * HWo;
        if (dbias) {
            for (size_t o = 0; o < OC; o++) {
                double s = 0; /* H'W' terms per image */
                for (size_t i = 0; i < HWo; i++)
                    s += db[o * HWo + i];
                dbias[o] += (float)s;
            }
        }
        if (dweight) {
            /* dweight (OC,CKK) += dout_b (OC,HWo) @ col_b^T (HWo,CKK) */
            px__im2col(col, inp + b * C * H * W, C, H, W, K, P);
            px__gemm(0, 1, OC, CKK, HWo, 1.0f, db, HWo, col, HWo, 1.0f, dweight, CKK);
        }
        if (dinp) {
            /* dcol (CKK,HWo) = weight^T (CKK,OC) @ dout_b (OC,HWo), in col (done with it) */
            px__gemm(1, 0, CKK, HWo, OC, 1.0f, weight, CKK, db, HWo, 0.0f, col, HWo);
            px__col2im_add(dinp + b * C * H * W, col, C, H, W, K, P);
        }
    }
}

/* ---- max pooling ----------------------------------------------------------------------------- */

void px_maxpool_forward(float *out, uint32_t *argmax, const float *inp, size_t B, size_t C,
                        size_t H, size_t W)
{
    size_t Ho = H / 2, Wo = W / 2;
    for (size_t p = 0; p < B * C; p++) {
        const float *plane = inp + p * H * W;
        float *op = out + p * Ho * Wo;
        uint32_t *ap = argmax + p * Ho * Wo;
        for (size_t oh = 0; oh < Ho; oh++)
            for (size_t ow = 0; ow < Wo; ow++) {
                size_t first = 2 * oh * W + 2 * ow;
                /* row-major scan order decides ties (layer_math.h) */
                size_t cand[4] = {first, first + 1, first + W, first + W + 1};
                size_t best = first;
                for (int k = 1; k < 4; k++)
                    if (px_lm_max_takes(plane[cand[k]], plane[best])) best = cand[k];
                op[oh * Wo + ow] = plane[best];
                ap[oh * Wo + ow] = (uint32_t)best;
            }
    }
}

void px_maxpool_backward(float *dinp, const float *dout, const uint32_t *argmax, size_t B, size_t C,
                         size_t H, size_t W)
{
    size_t HWo = (H / 2) * (W / 2);
    for (size_t p = 0; p < B * C; p++) {
        float *plane = dinp + p * H * W;
        for (size_t i = 0; i < HWo; i++)
            plane[argmax[p * HWo + i]] += dout[p * HWo + i];
    }
}

/* ---- ReLU ------------------------------------------------------------------------------------ */

void px_relu_forward(float *out, const float *inp, size_t N)
{
    for (size_t i = 0; i < N; i++)
        out[i] = px_lm_relu(inp[i]);
}

void px_relu_backward(float *dinp, const float *dout, const float *out, size_t N)
{
    for (size_t i = 0; i < N; i++)
        dinp[i] += px_lm_relu_grad_from_out(out[i]) * dout[i];
}

void px_relu_mask(float *d, const float *out, size_t N)
{
    for (size_t i = 0; i < N; i++)
        d[i] = px_lm_relu_mask(out[i], d[i]);
}

/* ---- embedding ------------------------------------------------------------------------------- */

void px_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                          size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float *o = out + (b * T + t) * C;
            const float *e = wte + (size_t)tokens[b * T + t] * C, *p = wpe + t * C;
            for (size_t i = 0; i < C; i++)
                o[i] = e[i] + p[i];
        }
}

void px_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                           size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *d = dout + (b * T + t) * C;
            if (dwte) {
                float *e = dwte + (size_t)tokens[b * T + t] * C;
                for (size_t i = 0; i < C; i++)
                    e[i] += d[i];
            }
            if (dwpe) {
                float *p = dwpe + t * C;
                for (size_t i = 0; i < C; i++)
                    p[i] += d[i];
            }
        }
}

/* ---- layer norm ------------------------------------------------------------------------------ */

void px_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        /* two passes in double: the one-pass E[x^2] - E[x]^2 cancels when |mean| >> std */
        double m = px__sum(x, C) / (double)C;
        double v = px__sum_sq_dev(x, C, m) / (double)C;
        float mf = (float)m, rf = (float)(1.0 / sqrt(v + (double)PX_LM_LN_EPS));
        for (size_t i = 0; i < C; i++)
            y[i] = px_lm_ln_out(px_lm_ln_norm(x[i], mf, rf), weight[i], bias[i]);
        if (mean) mean[n] = mf;
        if (rstd) rstd[n] = rf;
    }
}

void px_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float m = mean[n], r = rstd[n];
        if (dweight || dbias)
            for (size_t i = 0; i < C; i++) {
                if (dbias) dbias[i] += dy[i];
                if (dweight) dweight[i] += px_lm_ln_norm(x[i], m, r) * dy[i];
            }
        if (!dinp) continue;
        /* the two row means the input gradient subtracts (layer_math.h), four running sums each
         * as in px__sum */
        double s[4] = {0, 0, 0, 0}, sn[4] = {0, 0, 0, 0};
        size_t i = 0;
        for (; i + 4 <= C; i += 4)
            for (int k = 0; k < 4; k++) {
                float dnorm = weight[i + k] * dy[i + k];
                s[k] += dnorm;
                sn[k] += (double)dnorm * px_lm_ln_norm(x[i + k], m, r);
            }
        for (; i < C; i++) {
            float dnorm = weight[i] * dy[i];
            s[0] += dnorm;
            sn[0] += (double)dnorm * px_lm_ln_norm(x[i], m, r);
        }
        float dnorm_mean = (float)(((s[0] + s[1]) + (s[2] + s[3])) / (double)C);
        float dnorm_norm_mean = (float)(((sn[0] + sn[1]) + (sn[2] + sn[3])) / (double)C);
        float *dx = dinp + n * C;
        for (i = 0; i < C; i++)
            dx[i] += px_lm_ln_dinp(weight[i] * dy[i], px_lm_ln_norm(x[i], m, r), dnorm_mean,
                                   dnorm_norm_mean, r);
    }
}

/* ---- GELU ------------------------------------------------------------------------------------ */

void px_gelu_forward(float *out, const float *inp, size_t N)
{
    for (size_t i = 0; i < N; i++)
        out[i] = px_lm_gelu(inp[i]);
}

void px_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N)
{
    for (size_t i = 0; i < N; i++)
        dinp[i] += px_lm_gelu_grad(inp[i]) * dout[i];
}

/* ---- causal multi-head self-attention -------------------------------------------------------- */

void px_attention_forward(float *out, float *preatt, float *att, const float *inp, size_t B,
                          size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            const float *q = inp + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *a = att + (b * NH + h) * T * T;
            float *pa = preatt ? preatt + (b * NH + h) * T * T : NULL;
            /* scores (T,T) = scale * q (T,hs) @ k^T, rows strided by 3C inside inp */
            px__gemm(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, a, T);
            for (size_t t = 0; t < T; t++) {
                float *row = a + t * T;
                if (pa) {
                    memcpy(pa + t * T, row, (t + 1) * sizeof(float));
                    for (size_t t2 = t + 1; t2 < T; t2++)
                        pa[t * T + t2] = -INFINITY;
                }
                px__softmax(row, t + 1); /* over the visible prefix 0..t */
                /* the zeros make the full-square att @ v below equal to the causal sum */
                for (size_t t2 = t + 1; t2 < T; t2++)
                    row[t2] = 0.0f;
            }
            /* out_bh (T,hs), rows strided by C = att (T,T) @ v (T,hs) */
            px__gemm(0, 0, T, hs, T, 1.0f, a, T, v, C3, 0.0f, out + b * T * C + h * hs, C);
        }
}

void px_attention_backward(float *dinp, float *dpreatt, float *datt, const float *dout,
                           const float *inp, const float *att, size_t B, size_t T, size_t C,
                           size_t NH)
{
    if (!dinp) return;
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            const float *q = inp + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *dq = dinp + b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + (b * NH + h) * T * T;
            const float *dob = dout + b * T * C + h * hs;
            /* datt (T,T) = dout_bh (T,hs) @ v^T;  dv (T,hs) += att^T @ dout_bh */
            px__gemm(0, 1, T, T, hs, 1.0f, dob, C, v, C3, 0.0f, datt, T);
            px__gemm(1, 0, T, hs, T, 1.0f, a, T, dob, C, 1.0f, dv, C3);
            /* softmax backward per row over the visible prefix; the masked part has no gradient */
            for (size_t t = 0; t < T; t++) {
                const float *ar = a + t * T, *dar = datt + t * T;
                float *dpr = dpreatt + t * T;
                float dot = (float)px__dot(ar, dar, t + 1);
                for (size_t t2 = 0; t2 <= t; t2++)
                    dpr[t2] = px_lm_softmax_dz(ar[t2], dar[t2], dot);
                for (size_t t2 = t + 1; t2 < T; t2++)
                    dpr[t2] = 0.0f;
            }
            /* preatt = scale q k^T: dq += scale dpreatt @ k, dk += scale dpreatt^T @ q */
            px__gemm(0, 0, T, hs, T, scale, dpreatt, T, k, C3, 1.0f, dq, C3);
            px__gemm(1, 0, T, hs, T, scale, dpreatt, T, q, C3, 1.0f, dk, C3);
        }
}

/* ---- residual add ---------------------------------------------------------------------------- */

void px_residual_forward(float *out, const float *a, const float *b, size_t N)
{
    for (size_t i = 0; i < N; i++)
        out[i] = a[i] + b[i];
}

void px_residual_backward(float *da, float *db, const float *dout, size_t N)
{
    if (da)
        for (size_t i = 0; i < N; i++)
            da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < N; i++)
            db[i] += dout[i];
}

/* ---- softmax cross-entropy ------------------------------------------------------------------- */

double px_crossentropy_forward(float *probs, const float *logits, const int32_t *targets, size_t N,
                               size_t V)
{
    double loss = 0;
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float mx = px__max(z, V);
        /* every exp(z - max) is in (0, 1], and the largest is 1: the sum cannot overflow or
         * vanish; its log in double keeps the loss exact to the float inputs' precision */
        double sum = 0;
        if (probs) {
            float *p = probs + n * V;
            for (size_t j = 0; j < V; j++)
                p[j] = px_lm_expf(z[j] - mx);
            sum = px__sum(p, V);
            float inv = (float)(1.0 / sum);
            for (size_t j = 0; j < V; j++)
                p[j] *= inv;
        } else {
            /* no probs to hold the exps: a stack chunk at a time, so the loop still vectorises */
            float e[256];
            for (size_t j0 = 0; j0 < V; j0 += 256) {
                size_t m = V - j0 < 256 ? V - j0 : 256;
                for (size_t j = 0; j < m; j++)
                    e[j] = px_lm_expf(z[j0 + j] - mx);
                sum += px__sum(e, m);
            }
        }
        double lse = (double)mx + log(sum);
        loss += lse - (double)z[targets[n]];
    }
    return loss / (double)N;
}

void px_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, size_t N,
                              size_t V)
{
    float inv_n = (float)(1.0 / (double)N);
    for (size_t n = 0; n < N; n++) {
        const float *p = probs + n * V;
        float *d = dlogits + n * V;
        size_t target = (size_t)targets[n];
        for (size_t j = 0; j < V; j++)
            d[j] = px_lm_ce_dlogit(p[j], j == target, inv_n);
    }
}

/* ---- margin control (FedLD, ALGORITHMS.md 2.1) ---- */

double px_margin_backward(float *dlogits, const float *probs, size_t N, size_t V, float lambda)
{
    /* S = sum over the whole batch of p^2 (not per sample, not divided by N) */
    double S = 0;
    for (size_t i = 0; i < N * V; i++)
        S += (double)probs[i] * probs[i];
    if (dlogits) {
        const double scale = 2.0 * lambda / (1.0 + S);
        for (size_t n = 0; n < N; n++) {
            const float *p = probs + n * V;
            double q = 0; /* q_n = sum_c p_nc^2 */
            for (size_t j = 0; j < V; j++)
                q += (double)p[j] * p[j];
            for (size_t j = 0; j < V; j++)
                dlogits[n * V + j] += (float)(scale * p[j] * ((double)p[j] - q));
        }
    }
    return lambda * log1p(S);
}
