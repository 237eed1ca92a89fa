// layers_cuda.cu - the CUDA twins of runtime/nn/layers.c (see layers_cuda.h): cuBLAS SGEMMs for
// every matrix product, and kernels whose per-element arithmetic is layer_math.h's, the same
// functions the CPU loops call. Row reductions (layer norm statistics, softmax denominators, the
// loss) accumulate in double, as on the CPU; column sums (bias gradients, layer norm's weight
// gradients) run in the CPU's order, one thread per column.
#include <math.h>
#include <stdlib.h>

#include "runtime/nn/cuda_internal.cuh"
#include "runtime/nn/layer_math.h"

// ---- context ------------------------------------------------------------------------------------

extern "C" px_status px_nn_cuda_create(px_nn_cuda **out, void *stream)
{
    *out = NULL;
    px_nn_cuda *c = (px_nn_cuda *)calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "nn cuda: cannot allocate a context");
    px_status st = PX_OK;
    c->stream = (cudaStream_t)stream;
    PX_CHECK_GOTO(px_cublas_create(&c->blas, c->stream), st, fail);
    PX_CUDA_CHECK_GOTO(cudaMalloc((void **)&c->refused, sizeof *c->refused), st, fail);
    PX_CUDA_CHECK_GOTO(cudaMemsetAsync(c->refused, 0, sizeof *c->refused, c->stream), st, fail);
    *out = c;
    return PX_OK;
fail:
    px_nn_cuda_destroy(c);
    return st;
}

extern "C" void px_nn_cuda_destroy(px_nn_cuda *c)
{
    if (!c) return;
    if (c->refused) (void)cudaFree(c->refused);
    if (c->blas) (void)cublasDestroy(c->blas);
    free(c);
}

// ---- matrix products ---------------------------------------------------------------------------
// Row-major C (M,N) = alpha op(A) op(B) + beta C. cuBLAS is column-major, and a row-major matrix
// is the column-major view of its transpose, so this is C^T = op(B)^T op(A)^T: the operands
// swap places and keep their own transposition flags.

static px_status px__gemm(px_nn_cuda *c, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                          const float *A, size_t lda, const float *B, size_t ldb, float beta,
                          float *C, size_t ldc)
{
    PX_CUBLAS_CHECK(cublasSgemm(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, B,
                                (int)ldb, A, (int)lda, &beta, C, (int)ldc));
    return PX_OK;
}

// The same for `count` products whose operands lie sA, sB, sC floats apart (the heads of
// attention).
static px_status px__gemm_batched(px_nn_cuda *c, int ta, int tb, size_t M, size_t N, size_t K,
                                  float alpha, const float *A, size_t lda, size_t sA,
                                  const float *B, size_t ldb, size_t sB, float beta, float *C,
                                  size_t ldc, size_t sC, size_t count)
{
    PX_CUBLAS_CHECK(cublasSgemmStridedBatched(
        c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,
        (int)K, &alpha, B, (int)ldb, (long long)sB, A, (int)lda, (long long)sA, &beta, C, (int)ldc,
        (long long)sC, (int)count));
    return PX_OK;
}

// ---- small shared kernels ------------------------------------------------------------------------

// out (N,OC) rows = bias: the product then adds to it (beta = 1), as the CPU twin
__global__ static void px__k_bias_rows(float *out, const float *bias, size_t N, size_t OC)
{
    PX_NN_FOR(i, N * OC) out[i] = bias[i % OC];
}

// dbias[o] += the sum over n of dout[n, o], in the CPU's order (float, n ascending)
__global__ static void px__k_colsum_f(float *dbias, const float *dout, size_t N, size_t OC)
{
    PX_NN_FOR(o, OC)
    {
        float acc = dbias[o];
        for (size_t n = 0; n < N; n++)
            acc += dout[n * OC + o];
        dbias[o] = acc;
    }
}

// ---- linear ----------------------------------------------------------------------------------

extern "C" px_status px_linear_forward_cuda(px_nn_cuda *c, float *out, const float *inp,
                                            const float *weight, const float *bias, size_t N,
                                            size_t C, size_t OC)
{
    float beta = 0.0f;
    if (bias) {
        px__k_bias_rows<<<px_nn_blocks(N * OC), PX_NN_THREADS, 0, c->stream>>>(out, bias, N, OC);
        PX_CUDA_CHECK_LAUNCH();
        beta = 1.0f;
    }
    return px__gemm(c, 0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

extern "C" px_status px_linear_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight,
                                             float *dbias, const float *dout, const float *inp,
                                             const float *weight, size_t N, size_t C, size_t OC)
{
    if (dinp) PX_CHECK(px__gemm(c, 0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C));
    if (dweight) PX_CHECK(px__gemm(c, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C));
    if (dbias) {
        px__k_colsum_f<<<px_nn_blocks(OC), PX_NN_THREADS, 0, c->stream>>>(dbias, dout, N, OC);
        PX_CUDA_CHECK_LAUNCH();
    }
    return PX_OK;
}

// ---- conv2d ------------------------------------------------------------------------------------

// col (C*K*K, Ho*Wo) of one image (C,H,W): row (ch*K + kh)*K + kw, column oh*Wo + ow reads input
// pixel (oh + kh - P, ow + kw - P), zero outside the image
__global__ static void px__k_im2col(float *col, const float *img, size_t C, size_t H, size_t W,
                                    size_t K, size_t P, size_t Ho, size_t Wo)
{
    size_t HWo = Ho * Wo;
    PX_NN_FOR(i, C * K * K * HWo)
    {
        size_t r = i / HWo, j = i % HWo;
        size_t kw = r % K, kh = (r / K) % K, ch = r / (K * K);
        long ih = (long)(j / Wo + kh) - (long)P, iw = (long)(j % Wo + kw) - (long)P;
        int inside = ih >= 0 && ih < (long)H && iw >= 0 && iw < (long)W;
        col[i] = inside ? img[(ch * H + (size_t)ih) * W + (size_t)iw] : 0.0f;
    }
}

// img (C,H,W) += the entries of col that im2col took from each pixel, gathered per pixel (no
// two threads write one pixel)
__global__ static void px__k_col2im_add(float *img, const float *col, size_t C, size_t H,
                                        size_t W, size_t K, size_t P, size_t Ho, size_t Wo)
{
    size_t HWo = Ho * Wo;
    PX_NN_FOR(i, C * H * W)
    {
        size_t iw = i % W, ih = (i / W) % H, ch = i / (H * W);
        float acc = 0.0f;
        for (size_t kh = 0; kh < K; kh++)
            for (size_t kw = 0; kw < K; kw++) {
                long oh = (long)(ih + P) - (long)kh, ow = (long)(iw + P) - (long)kw;
                if (oh < 0 || oh >= (long)Ho || ow < 0 || ow >= (long)Wo) continue;
                acc += col[((ch * K + kh) * K + kw) * HWo + (size_t)oh * Wo + (size_t)ow];
            }
        img[i] += acc;
    }
}

// out_b (OC, HWo) rows = bias
__global__ static void px__k_bias_planes(float *out, const float *bias, size_t OC, size_t HWo)
{
    PX_NN_FOR(i, OC * HWo) out[i] = bias[i / HWo];
}

// dbias[o] += sum over images and pixels of dout, a double sum per image as the CPU twin
__global__ static void px__k_conv_dbias(float *dbias, const float *dout, size_t B, size_t OC,
                                        size_t HWo)
{
    PX_NN_FOR(o, OC)
    {
        float acc = dbias[o];
        for (size_t b = 0; b < B; b++) {
            const float *db = dout + (b * OC + o) * HWo;
            double s = 0;
            for (size_t i = 0; i < HWo; i++)
                s += db[i];
            acc += (float)s;
        }
        dbias[o] = acc;
    }
}

extern "C" px_status px_conv2d_forward_cuda(px_nn_cuda *c, float *out, float *col,
                                            const float *inp, const float *weight,
                                            const float *bias, size_t B, size_t C, size_t H,
                                            size_t W, size_t OC, size_t K, size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1, HWo = Ho * Wo, CKK = C * K * K;
    for (size_t b = 0; b < B; b++) {
        float *ob = out + b * OC * HWo;
        px__k_im2col<<<px_nn_blocks(CKK * HWo), PX_NN_THREADS, 0, c->stream>>>(
            col, inp + b * C * H * W, C, H, W, K, P, Ho, Wo);
        PX_CUDA_CHECK_LAUNCH();
        float beta = 0.0f;
        if (bias) {
            px__k_bias_planes<<<px_nn_blocks(OC * HWo), PX_NN_THREADS, 0, c->stream>>>(ob, bias,
                                                                                      OC, HWo);
            PX_CUDA_CHECK_LAUNCH();
            beta = 1.0f;
        }
        PX_CHECK(px__gemm(c, 0, 0, OC, HWo, CKK, 1.0f, weight, CKK, col, HWo, beta, ob, HWo));
    }
    return PX_OK;
}

extern "C" px_status px_conv2d_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight,
                                             float *dbias, float *col, const float *dout,
                                             const float *inp, const float *weight, size_t B,
                                             size_t C, size_t H, size_t W, size_t OC, size_t K,
                                             size_t P)
{
    size_t Ho = H + 2 * P - K + 1, Wo = W + 2 * P - K + 1, HWo = Ho * Wo, CKK = C * K * K;
    if (dbias) {
        px__k_conv_dbias<<<px_nn_blocks(OC), PX_NN_THREADS, 0, c->stream>>>(dbias, dout, B, OC,
                                                                           HWo);
        PX_CUDA_CHECK_LAUNCH();
    }
    for (size_t b = 0; b < B; b++) {
        const float *db = dout + b * OC * HWo;
        if (dweight) {
            px__k_im2col<<<px_nn_blocks(CKK * HWo), PX_NN_THREADS, 0, c->stream>>>(
                col, inp + b * C * H * W, C, H, W, K, P, Ho, Wo);
            PX_CUDA_CHECK_LAUNCH();
            PX_CHECK(px__gemm(c, 0, 1, OC, CKK, HWo, 1.0f, db, HWo, col, HWo, 1.0f, dweight, CKK));
        }
        if (dinp) {
            PX_CHECK(px__gemm(c, 1, 0, CKK, HWo, OC, 1.0f, weight, CKK, db, HWo, 0.0f, col, HWo));
            px__k_col2im_add<<<px_nn_blocks(C * H * W), PX_NN_THREADS, 0, c->stream>>>(
                dinp + b * C * H * W, col, C, H, W, K, P, Ho, Wo);
            PX_CUDA_CHECK_LAUNCH();
        }
    }
    return PX_OK;
}

// ---- max pooling -------------------------------------------------------------------------------

__global__ static void px__k_maxpool_fwd(float *out, uint32_t *argmax, const float *inp,
                                         size_t planes, size_t H, size_t W)
{
    size_t Ho = H / 2, Wo = W / 2;
    PX_NN_FOR(i, planes * Ho * Wo)
    {
        size_t p = i / (Ho * Wo), oh = (i / Wo) % Ho, ow = i % Wo;
        const float *plane = inp + p * H * W;
        size_t first = 2 * oh * W + 2 * ow;
        size_t cand[4] = {first, first + 1, first + W, first + W + 1};
        size_t best = first;
        for (int k = 1; k < 4; k++)
            if (px_lm_max_takes(plane[cand[k]], plane[best])) best = cand[k];
        out[i] = plane[best];
        argmax[i] = (uint32_t)best;
    }
}

// 2x2 windows with stride 2 do not overlap: each input position receives from at most one
// output, so the scatter needs no atomics
__global__ static void px__k_maxpool_bwd(float *dinp, const float *dout, const uint32_t *argmax,
                                         size_t planes, size_t HW, size_t HWo)
{
    PX_NN_FOR(i, planes * HWo) dinp[(i / HWo) * HW + argmax[i]] += dout[i];
}

extern "C" px_status px_maxpool_forward_cuda(px_nn_cuda *c, float *out, uint32_t *argmax,
                                             const float *inp, size_t B, size_t C, size_t H,
                                             size_t W)
{
    px__k_maxpool_fwd<<<px_nn_blocks(B * C * (H / 2) * (W / 2)), PX_NN_THREADS, 0, c->stream>>>(
        out, argmax, inp, B * C, H, W);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_maxpool_backward_cuda(px_nn_cuda *c, float *dinp, const float *dout,
                                              const uint32_t *argmax, size_t B, size_t C,
                                              size_t H, size_t W)
{
    size_t HWo = (H / 2) * (W / 2);
    px__k_maxpool_bwd<<<px_nn_blocks(B * C * HWo), PX_NN_THREADS, 0, c->stream>>>(
        dinp, dout, argmax, B * C, H * W, HWo);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

// ---- elementwise: ReLU, GELU, residual -----------------------------------------------------------

__global__ static void px__k_relu_fwd(float *out, const float *inp, size_t N)
{
    PX_NN_FOR(i, N) out[i] = px_lm_relu(inp[i]);
}

__global__ static void px__k_relu_bwd(float *dinp, const float *dout, const float *out, size_t N)
{
    PX_NN_FOR(i, N) dinp[i] += px_lm_relu_grad_from_out(out[i]) * dout[i];
}

__global__ static void px__k_relu_mask(float *d, const float *out, size_t N)
{
    PX_NN_FOR(i, N) d[i] = px_lm_relu_mask(out[i], d[i]);
}

__global__ static void px__k_gelu_fwd(float *out, const float *inp, size_t N)
{
    PX_NN_FOR(i, N) out[i] = px_lm_gelu(inp[i]);
}

__global__ static void px__k_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t N)
{
    PX_NN_FOR(i, N) dinp[i] += px_lm_gelu_grad(inp[i]) * dout[i];
}

__global__ static void px__k_add(float *out, const float *a, const float *b, size_t N)
{
    PX_NN_FOR(i, N) out[i] = a[i] + b[i];
}

__global__ static void px__k_acc(float *d, const float *dout, size_t N)
{
    PX_NN_FOR(i, N) d[i] += dout[i];
}

#define PX__LAUNCH_N(kernel, N, ...)                                                               \
    do {                                                                                           \
        if ((N) == 0) return PX_OK;                                                                \
        kernel<<<px_nn_blocks(N), PX_NN_THREADS, 0, c->stream>>>(__VA_ARGS__);                     \
        PX_CUDA_CHECK_LAUNCH();                                                                    \
    } while (0)

extern "C" px_status px_relu_forward_cuda(px_nn_cuda *c, float *out, const float *inp, size_t N)
{
    PX__LAUNCH_N(px__k_relu_fwd, N, out, inp, N);
    return PX_OK;
}

extern "C" px_status px_relu_backward_cuda(px_nn_cuda *c, float *dinp, const float *dout,
                                           const float *out, size_t N)
{
    PX__LAUNCH_N(px__k_relu_bwd, N, dinp, dout, out, N);
    return PX_OK;
}

extern "C" px_status px_relu_mask_cuda(px_nn_cuda *c, float *d, const float *out, size_t N)
{
    PX__LAUNCH_N(px__k_relu_mask, N, d, out, N);
    return PX_OK;
}

extern "C" px_status px_gelu_forward_cuda(px_nn_cuda *c, float *out, const float *inp, size_t N)
{
    PX__LAUNCH_N(px__k_gelu_fwd, N, out, inp, N);
    return PX_OK;
}

extern "C" px_status px_gelu_backward_cuda(px_nn_cuda *c, float *dinp, const float *inp,
                                           const float *dout, size_t N)
{
    PX__LAUNCH_N(px__k_gelu_bwd, N, dinp, inp, dout, N);
    return PX_OK;
}

extern "C" px_status px_residual_forward_cuda(px_nn_cuda *c, float *out, const float *a,
                                              const float *b, size_t N)
{
    PX__LAUNCH_N(px__k_add, N, out, a, b, N);
    return PX_OK;
}

extern "C" px_status px_residual_backward_cuda(px_nn_cuda *c, float *da, float *db,
                                               const float *dout, size_t N)
{
    if (da) PX__LAUNCH_N(px__k_acc, N, da, dout, N);
    if (db) PX__LAUNCH_N(px__k_acc, N, db, dout, N);
    return PX_OK;
}

// ---- embedding -----------------------------------------------------------------------------------

__global__ static void px__k_embed_fwd(float *out, const int32_t *tokens, const float *wte,
                                       const float *wpe, size_t B, size_t T, size_t C)
{
    PX_NN_FOR(i, B * T * C)
    {
        size_t bt = i / C, k = i % C, t = bt % T;
        out[i] = wte[(size_t)tokens[bt] * C + k] + wpe[t * C + k];
    }
}

__global__ static void px__k_embed_dwte(float *dwte, const float *dout, const int32_t *tokens,
                                        size_t BT, size_t C)
{
    PX_NN_FOR(i, BT * C) atomicAdd(&dwte[(size_t)tokens[i / C] * C + i % C], dout[i]);
}

// dwpe[t, k] += sum over b of dout[b, t, k], b ascending as the CPU twin
__global__ static void px__k_embed_dwpe(float *dwpe, const float *dout, size_t B, size_t T,
                                        size_t C)
{
    PX_NN_FOR(i, T * C)
    {
        float acc = dwpe[i];
        for (size_t b = 0; b < B; b++)
            acc += dout[b * T * C + i];
        dwpe[i] = acc;
    }
}

extern "C" px_status px_embedding_forward_cuda(px_nn_cuda *c, float *out, const int32_t *tokens,
                                               const float *wte, const float *wpe, size_t B,
                                               size_t T, size_t C)
{
    PX__LAUNCH_N(px__k_embed_fwd, B * T * C, out, tokens, wte, wpe, B, T, C);
    return PX_OK;
}

extern "C" px_status px_embedding_backward_cuda(px_nn_cuda *c, float *dwte, float *dwpe,
                                                const float *dout, const int32_t *tokens,
                                                size_t B, size_t T, size_t C)
{
    if (dwte) PX__LAUNCH_N(px__k_embed_dwte, B * T * C, dwte, dout, tokens, B * T, C);
    if (dwpe) PX__LAUNCH_N(px__k_embed_dwpe, T * C, dwpe, dout, B, T, C);
    return PX_OK;
}

// ---- layer norm: one block per row --------------------------------------------------------------

__global__ static void px__k_ln_fwd(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, size_t C)
{
    __shared__ double sh[PX_NN_THREADS / 32];
    size_t n = blockIdx.x;
    const float *x = inp + n * C;
    float *y = out + n * C;
    double s = 0;
    for (size_t i = threadIdx.x; i < C; i += blockDim.x)
        s += x[i];
    double m = px_nn_block_sum(s, sh) / (double)C;
    double q = 0;
    for (size_t i = threadIdx.x; i < C; i += blockDim.x) {
        double d = x[i] - m;
        q += d * d;
    }
    double v = px_nn_block_sum(q, sh) / (double)C;
    float mf = (float)m, rf = (float)(1.0 / sqrt(v + (double)PX_LM_LN_EPS));
    for (size_t i = threadIdx.x; i < C; i += blockDim.x)
        y[i] = px_lm_ln_out(px_lm_ln_norm(x[i], mf, rf), weight[i], bias[i]);
    if (threadIdx.x == 0) {
        if (mean) mean[n] = mf;
        if (rstd) rstd[n] = rf;
    }
}

__global__ static void px__k_ln_dinp(float *dinp, const float *dout, const float *inp,
                                     const float *weight, const float *mean, const float *rstd,
                                     size_t C)
{
    __shared__ double sh[PX_NN_THREADS / 32];
    size_t n = blockIdx.x;
    const float *x = inp + n * C, *dy = dout + n * C;
    float m = mean[n], r = rstd[n];
    double s = 0, sn = 0;
    for (size_t i = threadIdx.x; i < C; i += blockDim.x) {
        float dnorm = weight[i] * dy[i];
        s += dnorm;
        sn += (double)dnorm * px_lm_ln_norm(x[i], m, r);
    }
    float dnorm_mean = (float)(px_nn_block_sum(s, sh) / (double)C);
    float dnorm_norm_mean = (float)(px_nn_block_sum(sn, sh) / (double)C);
    float *dx = dinp + n * C;
    for (size_t i = threadIdx.x; i < C; i += blockDim.x)
        dx[i] += px_lm_ln_dinp(weight[i] * dy[i], px_lm_ln_norm(x[i], m, r), dnorm_mean,
                               dnorm_norm_mean, r);
}

// dweight[i] += sum over rows of norm * dout, dbias[i] += sum of dout: one thread per column,
// rows ascending as the CPU twin
__global__ static void px__k_ln_dparams(float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *mean, const float *rstd,
                                        size_t N, size_t C)
{
    PX_NN_FOR(i, C)
    {
        float aw = dweight ? dweight[i] : 0.0f, ab = dbias ? dbias[i] : 0.0f;
        for (size_t n = 0; n < N; n++) {
            float dy = dout[n * C + i];
            ab += dy;
            aw += px_lm_ln_norm(inp[n * C + i], mean[n], rstd[n]) * dy;
        }
        if (dweight) dweight[i] = aw;
        if (dbias) dbias[i] = ab;
    }
}

extern "C" px_status px_layernorm_forward_cuda(px_nn_cuda *c, float *out, float *mean,
                                               float *rstd, const float *inp, const float *weight,
                                               const float *bias, size_t N, size_t C)
{
    if (N == 0) return PX_OK;
    px__k_ln_fwd<<<(unsigned)N, PX_NN_THREADS, 0, c->stream>>>(out, mean, rstd, inp, weight, bias,
                                                                C);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_layernorm_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight,
                                                float *dbias, const float *dout, const float *inp,
                                                const float *weight, const float *mean,
                                                const float *rstd, size_t N, size_t C)
{
    if (N == 0) return PX_OK;
    if (dweight || dbias) {
        px__k_ln_dparams<<<px_nn_blocks(C), PX_NN_THREADS, 0, c->stream>>>(
            dweight, dbias, dout, inp, mean, rstd, N, C);
        PX_CUDA_CHECK_LAUNCH();
    }
    if (dinp) {
        px__k_ln_dinp<<<(unsigned)N, PX_NN_THREADS, 0, c->stream>>>(dinp, dout, inp, weight, mean,
                                                                     rstd, C);
        PX_CUDA_CHECK_LAUNCH();
    }
    return PX_OK;
}

// ---- causal attention ---------------------------------------------------------------------------

// One block per row (b, h, t) of the scores in att: keep the scaled scores in preatt (-inf above
// the diagonal), softmax over the visible prefix 0..t, zeros after it.
__global__ static void px__k_att_softmax(float *att, float *preatt, size_t T)
{
    __shared__ double sh[PX_NN_THREADS / 32];
    __shared__ float shm[PX_NN_THREADS / 32];
    size_t row = blockIdx.x, t = row % T;
    float *a = att + row * T;
    float mx = -INFINITY;
    for (size_t j = threadIdx.x; j <= t; j += blockDim.x)
        mx = a[j] > mx ? a[j] : mx;
    mx = px_nn_block_max(mx, shm);
    if (preatt)
        for (size_t j = threadIdx.x; j < T; j += blockDim.x)
            preatt[row * T + j] = j <= t ? a[j] : -INFINITY;
    double s = 0;
    for (size_t j = threadIdx.x; j <= t; j += blockDim.x) {
        float e = px_lm_expf(a[j] - mx);
        a[j] = e;
        s += e;
    }
    float inv = (float)(1.0 / px_nn_block_sum(s, sh));
    for (size_t j = threadIdx.x; j < T; j += blockDim.x)
        a[j] = j <= t ? a[j] * inv : 0.0f;
}

// One block per row: dpreatt = softmax backward of datt over the visible prefix, 0 after.
__global__ static void px__k_att_softmax_bwd(float *dpreatt, const float *att, const float *datt,
                                             size_t T)
{
    __shared__ double sh[PX_NN_THREADS / 32];
    size_t row = blockIdx.x, t = row % T;
    const float *ar = att + row * T, *dar = datt + row * T;
    double d = 0;
    for (size_t j = threadIdx.x; j <= t; j += blockDim.x)
        d += (double)ar[j] * dar[j];
    float dot = (float)px_nn_block_sum(d, sh);
    for (size_t j = threadIdx.x; j < T; j += blockDim.x)
        dpreatt[row * T + j] = j <= t ? px_lm_softmax_dz(ar[j], dar[j], dot) : 0.0f;
}

extern "C" px_status px_attention_forward_cuda(px_nn_cuda *c, float *out, float *preatt,
                                               float *att, const float *inp, size_t B, size_t T,
                                               size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C, TT = T * T;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++) {
        const float *q = inp + b * T * C3, *k = q + C;
        // scores (T,T) per head = scale q_h (T,hs) @ k_h^T, heads hs columns apart
        PX_CHECK(px__gemm_batched(c, 0, 1, T, T, hs, scale, q, C3, hs, k, C3, hs, 0.0f,
                                  att + b * NH * TT, T, TT, NH));
    }
    px__k_att_softmax<<<(unsigned)(B * NH * T), PX_NN_THREADS, 0, c->stream>>>(att, preatt, T);
    PX_CUDA_CHECK_LAUNCH();
    for (size_t b = 0; b < B; b++) {
        const float *v = inp + b * T * C3 + 2 * C;
        // out_bh (T,hs), rows C apart = att (T,T) @ v_h (T,hs)
        PX_CHECK(px__gemm_batched(c, 0, 0, T, hs, T, 1.0f, att + b * NH * TT, T, TT, v, C3, hs,
                                  0.0f, out + b * T * C, C, hs, NH));
    }
    return PX_OK;
}

extern "C" px_status px_attention_backward_cuda(px_nn_cuda *c, float *dinp, float *dpreatt,
                                                float *datt, const float *dout, const float *inp,
                                                const float *att, size_t B, size_t T, size_t C,
                                                size_t NH)
{
    if (!dinp) return PX_OK;
    size_t hs = C / NH, C3 = 3 * C, TT = T * T;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++) {
        const float *q = inp + b * T * C3, *k = q + C, *v = q + 2 * C;
        float *dq = dinp + b * T * C3, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + b * NH * TT, *dob = dout + b * T * C;
        // datt (T,T) = dout_bh @ v^T;  dv += att^T @ dout_bh   (all heads of b at once)
        PX_CHECK(px__gemm_batched(c, 0, 1, T, T, hs, 1.0f, dob, C, hs, v, C3, hs, 0.0f, datt, T,
                                  TT, NH));
        PX_CHECK(px__gemm_batched(c, 1, 0, T, hs, T, 1.0f, a, T, TT, dob, C, hs, 1.0f, dv, C3, hs,
                                  NH));
        px__k_att_softmax_bwd<<<(unsigned)(NH * T), PX_NN_THREADS, 0, c->stream>>>(dpreatt, a,
                                                                                  datt, T);
        PX_CUDA_CHECK_LAUNCH();
        // preatt = scale q k^T: dq += scale dpreatt @ k, dk += scale dpreatt^T @ q
        PX_CHECK(px__gemm_batched(c, 0, 0, T, hs, T, scale, dpreatt, T, TT, k, C3, hs, 1.0f, dq,
                                  C3, hs, NH));
        PX_CHECK(px__gemm_batched(c, 1, 0, T, hs, T, scale, dpreatt, T, TT, q, C3, hs, 1.0f, dk,
                                  C3, hs, NH));
    }
    return PX_OK;
}

// ---- softmax cross-entropy: one block per row ---------------------------------------------------

__global__ static void px__k_ce_fwd(float *probs, double *losses, const float *logits,
                                    const int32_t *targets, size_t V)
{
    __shared__ double sh[PX_NN_THREADS / 32];
    __shared__ float shm[PX_NN_THREADS / 32];
    size_t n = blockIdx.x;
    const float *z = logits + n * V;
    float mx = -INFINITY;
    for (size_t j = threadIdx.x; j < V; j += blockDim.x)
        mx = z[j] > mx ? z[j] : mx;
    mx = px_nn_block_max(mx, shm);
    double s = 0;
    for (size_t j = threadIdx.x; j < V; j += blockDim.x) {
        float e = px_lm_expf(z[j] - mx);
        if (probs) probs[n * V + j] = e;
        s += e;
    }
    double sum = px_nn_block_sum(s, sh);
    if (probs) {
        float inv = (float)(1.0 / sum);
        for (size_t j = threadIdx.x; j < V; j += blockDim.x)
            probs[n * V + j] *= inv;
    }
    if (threadIdx.x == 0) losses[n] = (double)mx + log(sum) - (double)z[targets[n]];
}

__global__ static void px__k_ce_bwd(float *dlogits, const float *probs, const int32_t *targets,
                                    size_t N, size_t V, float inv_n)
{
    PX_NN_FOR(i, N * V)
    {
        size_t n = i / V, j = i % V;
        dlogits[i] = px_lm_ce_dlogit(probs[i], j == (size_t)targets[n], inv_n);
    }
}

extern "C" px_status px_crossentropy_forward_cuda(px_nn_cuda *c, float *probs, double *losses,
                                                  const float *logits, const int32_t *targets,
                                                  size_t N, size_t V)
{
    if (N == 0) return PX_OK;
    px__k_ce_fwd<<<(unsigned)N, PX_NN_THREADS, 0, c->stream>>>(probs, losses, logits, targets, V);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_crossentropy_backward_cuda(px_nn_cuda *c, float *dlogits,
                                                   const float *probs, const int32_t *targets,
                                                   size_t N, size_t V)
{
    float inv_n = (float)(1.0 / (double)N);
    PX__LAUNCH_N(px__k_ce_bwd, N * V, dlogits, probs, targets, N, V, inv_n);
    return PX_OK;
}
