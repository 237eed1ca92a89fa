/* exec.c - the CPU executor (the layers of layers.c over host memory) and the choice of backend
 * by the device's kind (see exec.h). */
#include "exec.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "runtime/nn/layers.h"

#ifdef PX_HAVE_CUDA
/* exec_cuda.c */
px_status px_exec_cuda_init(px_nn_exec *x);
void px_exec_cuda_fini(px_nn_exec *x);
#endif

/* ---- the CPU backend: each operation is its layers.c function, done when it returns ---- */

static void *px__cpu_alloc(px_nn_exec *x, size_t bytes, const char *what)
{
    (void)x;
    return px_alloc(bytes, what);
}

static void px__cpu_free(px_nn_exec *x, void *p)
{
    (void)x;
    px_free(p);
}

static px_status px__cpu_zero(px_nn_exec *x, void *p, size_t bytes)
{
    (void)x;
    memset(p, 0, bytes);
    return PX_OK;
}

static px_status px__cpu_linear_forward(px_nn_exec *x, float *out, const float *inp,
                                        const float *weight, const float *bias, size_t N, size_t C,
                                        size_t OC)
{
    (void)x;
    px_linear_forward(out, inp, weight, bias, N, C, OC);
    return PX_OK;
}

static px_status px__cpu_linear_backward(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                         const float *dout, const float *inp, const float *weight,
                                         size_t N, size_t C, size_t OC)
{
    (void)x;
    px_linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    return PX_OK;
}

static px_status px__cpu_conv2d_forward(px_nn_exec *x, float *out, float *col, const float *inp,
                                        const float *weight, const float *bias, size_t B, size_t C,
                                        size_t H, size_t W, size_t OC, size_t K, size_t P)
{
    (void)x;
    px_conv2d_forward(out, col, inp, weight, bias, B, C, H, W, OC, K, P);
    return PX_OK;
}

static px_status px__cpu_conv2d_backward(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                         float *col, const float *dout, const float *inp,
                                         const float *weight, size_t B, size_t C, size_t H,
                                         size_t W, size_t OC, size_t K, size_t P)
{
    (void)x;
    px_conv2d_backward(dinp, dweight, dbias, col, dout, inp, weight, B, C, H, W, OC, K, P);
    return PX_OK;
}

static px_status px__cpu_maxpool_forward(px_nn_exec *x, float *out, uint32_t *argmax,
                                         const float *inp, size_t B, size_t C, size_t H, size_t W)
{
    (void)x;
    px_maxpool_forward(out, argmax, inp, B, C, H, W);
    return PX_OK;
}

static px_status px__cpu_maxpool_backward(px_nn_exec *x, float *dinp, const float *dout,
                                          const uint32_t *argmax, size_t B, size_t C, size_t H,
                                          size_t W)
{
    (void)x;
    px_maxpool_backward(dinp, dout, argmax, B, C, H, W);
    return PX_OK;
}

static px_status px__cpu_relu_forward(px_nn_exec *x, float *out, const float *inp, size_t N)
{
    (void)x;
    px_relu_forward(out, inp, N);
    return PX_OK;
}

static px_status px__cpu_relu_mask(px_nn_exec *x, float *d, const float *out, size_t N)
{
    (void)x;
    px_relu_mask(d, out, N);
    return PX_OK;
}

static px_status px__cpu_embedding_forward(px_nn_exec *x, float *out, const int32_t *tokens,
                                           const float *wte, const float *wpe, size_t B, size_t T,
                                           size_t C)
{
    (void)x;
    px_embedding_forward(out, tokens, wte, wpe, B, T, C);
    return PX_OK;
}

static px_status px__cpu_embedding_backward(px_nn_exec *x, float *dwte, float *dwpe,
                                            const float *dout, const int32_t *tokens, size_t B,
                                            size_t T, size_t C)
{
    (void)x;
    px_embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
    return PX_OK;
}

static px_status px__cpu_layernorm_forward(px_nn_exec *x, float *out, float *mean, float *rstd,
                                           const float *inp, const float *weight,
                                           const float *bias, size_t N, size_t C)
{
    (void)x;
    px_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    return PX_OK;
}

static px_status px__cpu_layernorm_backward(px_nn_exec *x, float *dinp, float *dweight,
                                            float *dbias, const float *dout, const float *inp,
                                            const float *weight, const float *mean,
                                            const float *rstd, size_t N, size_t C)
{
    (void)x;
    px_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    return PX_OK;
}

static px_status px__cpu_gelu_forward(px_nn_exec *x, float *out, const float *inp, size_t N)
{
    (void)x;
    px_gelu_forward(out, inp, N);
    return PX_OK;
}

static px_status px__cpu_gelu_backward(px_nn_exec *x, float *dinp, const float *inp,
                                       const float *dout, size_t N)
{
    (void)x;
    px_gelu_backward(dinp, inp, dout, N);
    return PX_OK;
}

static px_status px__cpu_attention_forward(px_nn_exec *x, float *out, float *preatt, float *att,
                                           const float *inp, size_t B, size_t T, size_t C,
                                           size_t NH)
{
    (void)x;
    px_attention_forward(out, preatt, att, inp, B, T, C, NH);
    return PX_OK;
}

static px_status px__cpu_attention_backward(px_nn_exec *x, float *dinp, float *dpreatt,
                                            float *datt, const float *dout, const float *inp,
                                            const float *att, size_t B, size_t T, size_t C,
                                            size_t NH)
{
    (void)x;
    px_attention_backward(dinp, dpreatt, datt, dout, inp, att, B, T, C, NH);
    return PX_OK;
}

static px_status px__cpu_residual_forward(px_nn_exec *x, float *out, const float *a,
                                          const float *b, size_t N)
{
    (void)x;
    px_residual_forward(out, a, b, N);
    return PX_OK;
}

/* the mean is computed here, as layers.c computes it, and kept in losses[0] for ce_mean */
static px_status px__cpu_ce_forward(px_nn_exec *x, float *probs, double *losses,
                                    const float *logits, const int32_t *targets, size_t N, size_t V)
{
    (void)x;
    losses[0] = px_crossentropy_forward(probs, logits, targets, N, V);
    return PX_OK;
}

static px_status px__cpu_ce_mean(px_nn_exec *x, const double *losses, size_t N, double *mean)
{
    (void)x, (void)N;
    *mean = losses[0];
    return PX_OK;
}

static px_status px__cpu_ce_backward(px_nn_exec *x, float *dlogits, const float *probs,
                                     const int32_t *targets, size_t N, size_t V)
{
    (void)x;
    px_crossentropy_backward(dlogits, probs, targets, N, V);
    return PX_OK;
}

static px_status px__cpu_margin_backward(px_nn_exec *x, float *dlogits, const float *probs,
                                         size_t N, size_t V, float lambda, double *loss)
{
    (void)x;
    *loss += px_margin_backward(dlogits, probs, N, V, lambda);
    return PX_OK;
}

static const px_nn_exec_ops px__cpu_ops = {
    .alloc = px__cpu_alloc,
    .free = px__cpu_free,
    .zero = px__cpu_zero,
    .linear_forward = px__cpu_linear_forward,
    .linear_backward = px__cpu_linear_backward,
    .conv2d_forward = px__cpu_conv2d_forward,
    .conv2d_backward = px__cpu_conv2d_backward,
    .maxpool_forward = px__cpu_maxpool_forward,
    .maxpool_backward = px__cpu_maxpool_backward,
    .relu_forward = px__cpu_relu_forward,
    .relu_mask = px__cpu_relu_mask,
    .embedding_forward = px__cpu_embedding_forward,
    .embedding_backward = px__cpu_embedding_backward,
    .layernorm_forward = px__cpu_layernorm_forward,
    .layernorm_backward = px__cpu_layernorm_backward,
    .gelu_forward = px__cpu_gelu_forward,
    .gelu_backward = px__cpu_gelu_backward,
    .attention_forward = px__cpu_attention_forward,
    .attention_backward = px__cpu_attention_backward,
    .residual_forward = px__cpu_residual_forward,
    .ce_forward = px__cpu_ce_forward,
    .ce_mean = px__cpu_ce_mean,
    .ce_backward = px__cpu_ce_backward,
    .margin_backward = px__cpu_margin_backward,
};

static px_nn_exec px__cpu = {.ops = &px__cpu_ops, .kind = PX_DEVICE_CPU};

px_nn_exec *px_exec_cpu(void)
{
    return &px__cpu;
}

/* ---- executors on a device ---- */

px_status px_exec_create(px_nn_exec **out, px_device *d)
{
    *out = NULL;
    px_nn_exec *x = calloc(1, sizeof *x);
    if (!x) return px_error(PX_ENOMEM, "exec: cannot allocate an executor");
    x->dev = d;
    x->kind = px_device_kind_of(d);
    px_status st = px_stream_create(d, &x->stream);
    if (st < 0) {
        free(x);
        return st;
    }
    if (x->kind == PX_DEVICE_CPU) {
        x->ops = &px__cpu_ops;
    } else {
#ifdef PX_HAVE_CUDA
        st = px_exec_cuda_init(x);
#else
        st = px_error(PX_ENOTSUP, "exec: this build has no %s backend",
                      px_device_kind_name(x->kind));
#endif
        if (st < 0) {
            px_stream_destroy(x->stream);
            free(x);
            return st;
        }
    }
    *out = x;
    return PX_OK;
}

void px_exec_destroy(px_nn_exec *x)
{
    if (!x || x == &px__cpu) return;
#ifdef PX_HAVE_CUDA
    if (x->kind == PX_DEVICE_CUDA) px_exec_cuda_fini(x);
#endif
    px_stream_destroy(x->stream);
    free(x);
}

size_t px_exec_att_scratch(const px_nn_exec *x, size_t T, size_t NH)
{
    return x->kind == PX_DEVICE_CPU ? T * T : NH * T * T;
}

int px_exec_wants_preatt(const px_nn_exec *x)
{
    return x->kind != PX_DEVICE_CPU;
}
