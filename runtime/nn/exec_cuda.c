/* exec_cuda.c - the CUDA executor (see exec.h): device memory from base/device.h, every layer a
 * kernel or cuBLAS call of layers_cuda.h queued on the executor's own stream with its own cuBLAS
 * handle. Built only with PX_HAVE_CUDA; nothing here holds arithmetic of its own. */
#include <stdlib.h>

#include "base/alloc.h"
#include "runtime/nn/exec.h"
#include "runtime/nn/layers_cuda.h"

px_status px_exec_cuda_init(px_nn_exec *x);
void px_exec_cuda_fini(px_nn_exec *x);

typedef struct {
    px_nn_cuda *nn;
    double *losses; /* host copy of the last ce_forward's per-row losses (page-locked) */
    size_t losses_cap;
} px__cuda_exec;

#define PX__NN(x) (((px__cuda_exec *)(x)->impl)->nn)

static void *px__alloc(px_nn_exec *x, size_t bytes, const char *what)
{
    void *p = NULL;
    if (px_device_alloc(x->dev, bytes, &p) < 0) {
        px_error_context(PX_ENOMEM, "exec: cannot allocate %zu bytes of GPU memory for %s",
                         bytes, what);
        return NULL;
    }
    return p;
}

static void px__free(px_nn_exec *x, void *p)
{
    if (p) px_device_free(x->dev, p);
}

static px_status px__zero(px_nn_exec *x, void *p, size_t bytes)
{
    return px_device_zero(x->dev, p, bytes, x->stream);
}

static px_status px__linear_forward(px_nn_exec *x, float *out, const float *inp,
                                    const float *weight, const float *bias, size_t N, size_t C,
                                    size_t OC)
{
    return px_linear_forward_cuda(PX__NN(x), out, inp, weight, bias, N, C, OC);
}

static px_status px__linear_backward(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     size_t N, size_t C, size_t OC)
{
    return px_linear_backward_cuda(PX__NN(x), dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

static px_status px__conv2d_forward(px_nn_exec *x, float *out, float *col, const float *inp,
                                    const float *weight, const float *bias, size_t B, size_t C,
                                    size_t H, size_t W, size_t OC, size_t K, size_t P)
{
    return px_conv2d_forward_cuda(PX__NN(x), out, col, inp, weight, bias, B, C, H, W, OC, K, P);
}

static px_status px__conv2d_backward(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                     float *col, const float *dout, const float *inp,
                                     const float *weight, size_t B, size_t C, size_t H, size_t W,
                                     size_t OC, size_t K, size_t P)
{
    return px_conv2d_backward_cuda(PX__NN(x), dinp, dweight, dbias, col, dout, inp, weight, B, C,
                                   H, W, OC, K, P);
}

static px_status px__maxpool_forward(px_nn_exec *x, float *out, uint32_t *argmax,
                                     const float *inp, size_t B, size_t C, size_t H, size_t W)
{
    return px_maxpool_forward_cuda(PX__NN(x), out, argmax, inp, B, C, H, W);
}

static px_status px__maxpool_backward(px_nn_exec *x, float *dinp, const float *dout,
                                      const uint32_t *argmax, size_t B, size_t C, size_t H,
                                      size_t W)
{
    return px_maxpool_backward_cuda(PX__NN(x), dinp, dout, argmax, B, C, H, W);
}

static px_status px__relu_forward(px_nn_exec *x, float *out, const float *inp, size_t N)
{
    return px_relu_forward_cuda(PX__NN(x), out, inp, N);
}

static px_status px__relu_mask(px_nn_exec *x, float *d, const float *out, size_t N)
{
    return px_relu_mask_cuda(PX__NN(x), d, out, N);
}

static px_status px__embedding_forward(px_nn_exec *x, float *out, const int32_t *tokens,
                                       const float *wte, const float *wpe, size_t B, size_t T,
                                       size_t C)
{
    return px_embedding_forward_cuda(PX__NN(x), out, tokens, wte, wpe, B, T, C);
}

static px_status px__embedding_backward(px_nn_exec *x, float *dwte, float *dwpe,
                                        const float *dout, const int32_t *tokens, size_t B,
                                        size_t T, size_t C)
{
    return px_embedding_backward_cuda(PX__NN(x), dwte, dwpe, dout, tokens, B, T, C);
}

static px_status px__layernorm_forward(px_nn_exec *x, float *out, float *mean, float *rstd,
                                       const float *inp, const float *weight, const float *bias,
                                       size_t N, size_t C)
{
    return px_layernorm_forward_cuda(PX__NN(x), out, mean, rstd, inp, weight, bias, N, C);
}

static px_status px__layernorm_backward(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight,
                                        const float *mean, const float *rstd, size_t N, size_t C)
{
    return px_layernorm_backward_cuda(PX__NN(x), dinp, dweight, dbias, dout, inp, weight, mean,
                                      rstd, N, C);
}

static px_status px__gelu_forward(px_nn_exec *x, float *out, const float *inp, size_t N)
{
    return px_gelu_forward_cuda(PX__NN(x), out, inp, N);
}

static px_status px__gelu_backward(px_nn_exec *x, float *dinp, const float *inp,
                                   const float *dout, size_t N)
{
    return px_gelu_backward_cuda(PX__NN(x), dinp, inp, dout, N);
}

static px_status px__attention_forward(px_nn_exec *x, float *out, float *preatt, float *att,
                                       const float *inp, size_t B, size_t T, size_t C, size_t NH)
{
    return px_attention_forward_cuda(PX__NN(x), out, preatt, att, inp, B, T, C, NH);
}

static px_status px__attention_backward(px_nn_exec *x, float *dinp, float *dpreatt, float *datt,
                                        const float *dout, const float *inp, const float *att,
                                        size_t B, size_t T, size_t C, size_t NH)
{
    return px_attention_backward_cuda(PX__NN(x), dinp, dpreatt, datt, dout, inp, att, B, T, C,
                                      NH);
}

static px_status px__residual_forward(px_nn_exec *x, float *out, const float *a, const float *b,
                                      size_t N)
{
    return px_residual_forward_cuda(PX__NN(x), out, a, b, N);
}

static px_status px__ce_forward(px_nn_exec *x, float *probs, double *losses, const float *logits,
                                const int32_t *targets, size_t N, size_t V)
{
    return px_crossentropy_forward_cuda(PX__NN(x), probs, losses, logits, targets, N, V);
}

/* the rows' losses come to the host and are summed there in row order, as the CPU sums them */
static px_status px__ce_mean(px_nn_exec *x, const double *losses, size_t N, double *mean)
{
    px__cuda_exec *e = x->impl;
    if (N > e->losses_cap) {
        px_device_free_host(x->dev, e->losses);
        e->losses = NULL;
        e->losses_cap = 0;
        PX_CHECK(px_device_alloc_host(x->dev, N * sizeof(double), (void **)&e->losses));
        e->losses_cap = N;
    }
    PX_CHECK(px_device_copy(x->dev, e->losses, losses, N * sizeof(double), PX_COPY_D2H,
                            x->stream));
    PX_CHECK(px_stream_sync(x->stream));
    double s = 0;
    for (size_t i = 0; i < N; i++)
        s += e->losses[i];
    *mean = N ? s / (double)N : 0.0;
    return PX_OK;
}

static px_status px__ce_backward(px_nn_exec *x, float *dlogits, const float *probs,
                                 const int32_t *targets, size_t N, size_t V)
{
    return px_crossentropy_backward_cuda(PX__NN(x), dlogits, probs, targets, N, V);
}

static px_status px__margin_backward(px_nn_exec *x, float *dlogits, const float *probs, size_t N,
                                     size_t V, float lambda, double *loss)
{
    (void)x, (void)dlogits, (void)probs, (void)N, (void)V, (void)lambda, (void)loss;
    return px_error(PX_ENOTSUP, "exec: FedLD's margin term (fl.margin_lambda) has no GPU kernel; "
                                "federated clients train on the CPU");
}

static const px_nn_exec_ops px__cuda_ops = {
    .alloc = px__alloc,
    .free = px__free,
    .zero = px__zero,
    .linear_forward = px__linear_forward,
    .linear_backward = px__linear_backward,
    .conv2d_forward = px__conv2d_forward,
    .conv2d_backward = px__conv2d_backward,
    .maxpool_forward = px__maxpool_forward,
    .maxpool_backward = px__maxpool_backward,
    .relu_forward = px__relu_forward,
    .relu_mask = px__relu_mask,
    .embedding_forward = px__embedding_forward,
    .embedding_backward = px__embedding_backward,
    .layernorm_forward = px__layernorm_forward,
    .layernorm_backward = px__layernorm_backward,
    .gelu_forward = px__gelu_forward,
    .gelu_backward = px__gelu_backward,
    .attention_forward = px__attention_forward,
    .attention_backward = px__attention_backward,
    .residual_forward = px__residual_forward,
    .ce_forward = px__ce_forward,
    .ce_mean = px__ce_mean,
    .ce_backward = px__ce_backward,
    .margin_backward = px__margin_backward,
};

px_status px_exec_cuda_init(px_nn_exec *x)
{
    px__cuda_exec *e = calloc(1, sizeof *e);
    if (!e) return px_error(PX_ENOMEM, "exec: cannot allocate a CUDA executor");
    px_status st = px_nn_cuda_create(&e->nn, px_stream_native(x->stream));
    if (st < 0) {
        free(e);
        return st;
    }
    x->impl = e;
    x->ops = &px__cuda_ops;
    return PX_OK;
}

void px_exec_cuda_fini(px_nn_exec *x)
{
    px__cuda_exec *e = x->impl;
    if (!e) return;
    px_stream_sync(x->stream);
    px_device_free_host(x->dev, e->losses);
    px_nn_cuda_destroy(e->nn);
    free(e);
    x->impl = NULL;
}
