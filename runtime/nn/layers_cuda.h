/* layers_cuda.h - the CUDA twins of the layers (runtime/nn/layers.h) and of the optimizers'
 * updates (runtime/nn/optimizer.h), built only with PX_HAVE_CUDA.
 *
 * Each function takes the same arguments as its CPU twin, with every array in device memory, and
 * the same contract (forward overwrites, backward accumulates, a NULL gradient skips its work),
 * plus a context: the stream the work is queued on and the cuBLAS handle bound to it. Nothing
 * waits for the GPU: a function returns once its kernels are queued, and an error it reports is
 * a launch or cuBLAS error (a fault inside a kernel surfaces at the next synchronisation).
 * Nothing is allocated inside: scratch is the caller's, sized as the CPU twin's.
 *
 * The per-element arithmetic is the CPU's own: layer_math.h and optimizer_math.h, compiled for
 * the device. Reductions are ordered differently on the GPU (and the compiler fuses multiply-adds
 * there), so results agree with the CPU to a tolerance, not bit for bit: tests/gpu/ states the
 * tolerance per tensor. Matrix products are cuBLAS SGEMMs in fp32 (no TF32: the math mode is
 * left at its default, pedantic fp32).
 */
#ifndef PX_NN_LAYERS_CUDA_H
#define PX_NN_LAYERS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_nn_cuda px_nn_cuda;

/* A context on `stream` (a cudaStream_t; NULL = the default stream) of the current device:
 * creates the cuBLAS handle and a device counter for the optimizers' refusals. Fails with
 * nothing allocated. */
px_status px_nn_cuda_create(px_nn_cuda **out, void *stream);
void px_nn_cuda_destroy(px_nn_cuda *c);

/* ---- layers: see layers.h for shapes and semantics ---- */

px_status px_linear_forward_cuda(px_nn_cuda *c, float *out, const float *inp, const float *weight,
                                 const float *bias, size_t N, size_t C, size_t OC);
px_status px_linear_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight, float *dbias,
                                  const float *dout, const float *inp, const float *weight,
                                  size_t N, size_t C, size_t OC);

px_status px_conv2d_forward_cuda(px_nn_cuda *c, float *out, float *col, const float *inp,
                                 const float *weight, const float *bias, size_t B, size_t C,
                                 size_t H, size_t W, size_t OC, size_t K, size_t P);
px_status px_conv2d_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight, float *dbias,
                                  float *col, const float *dout, const float *inp,
                                  const float *weight, size_t B, size_t C, size_t H, size_t W,
                                  size_t OC, size_t K, size_t P);

px_status px_maxpool_forward_cuda(px_nn_cuda *c, float *out, uint32_t *argmax, const float *inp,
                                  size_t B, size_t C, size_t H, size_t W);
px_status px_maxpool_backward_cuda(px_nn_cuda *c, float *dinp, const float *dout,
                                   const uint32_t *argmax, size_t B, size_t C, size_t H, size_t W);

px_status px_relu_forward_cuda(px_nn_cuda *c, float *out, const float *inp, size_t N);
px_status px_relu_backward_cuda(px_nn_cuda *c, float *dinp, const float *dout, const float *out,
                                size_t N);
px_status px_relu_mask_cuda(px_nn_cuda *c, float *d, const float *out, size_t N);

/* dwte accumulates with atomic adds (a token may appear many times in a batch): its sums are
 * in no fixed order, unlike every other gradient here. */
px_status px_embedding_forward_cuda(px_nn_cuda *c, float *out, const int32_t *tokens,
                                    const float *wte, const float *wpe, size_t B, size_t T,
                                    size_t C);
px_status px_embedding_backward_cuda(px_nn_cuda *c, float *dwte, float *dwpe, const float *dout,
                                     const int32_t *tokens, size_t B, size_t T, size_t C);

px_status px_layernorm_forward_cuda(px_nn_cuda *c, float *out, float *mean, float *rstd,
                                    const float *inp, const float *weight, const float *bias,
                                    size_t N, size_t C);
px_status px_layernorm_backward_cuda(px_nn_cuda *c, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     const float *mean, const float *rstd, size_t N, size_t C);

px_status px_gelu_forward_cuda(px_nn_cuda *c, float *out, const float *inp, size_t N);
px_status px_gelu_backward_cuda(px_nn_cuda *c, float *dinp, const float *inp, const float *dout,
                                size_t N);

/* att and preatt (B,NH,T,T) as the CPU twin; the backward's dpreatt and datt scratch must hold
 * NH*T*T floats each (one batch element's heads at once, for batched GEMMs). */
px_status px_attention_forward_cuda(px_nn_cuda *c, float *out, float *preatt, float *att,
                                    const float *inp, size_t B, size_t T, size_t C, size_t NH);
px_status px_attention_backward_cuda(px_nn_cuda *c, float *dinp, float *dpreatt, float *datt,
                                     const float *dout, const float *inp, const float *att,
                                     size_t B, size_t T, size_t C, size_t NH);

px_status px_residual_forward_cuda(px_nn_cuda *c, float *out, const float *a, const float *b,
                                   size_t N);
px_status px_residual_backward_cuda(px_nn_cuda *c, float *da, float *db, const float *dout,
                                    size_t N);

/* The CPU twin returns the mean loss; on the device each row's loss goes to losses (N, double)
 * and the caller reduces them when it reads the loss (no synchronisation here). probs may be
 * NULL (evaluation). */
px_status px_crossentropy_forward_cuda(px_nn_cuda *c, float *probs, double *losses,
                                       const float *logits, const int32_t *targets, size_t N,
                                       size_t V);
px_status px_crossentropy_backward_cuda(px_nn_cuda *c, float *dlogits, const float *probs,
                                        const int32_t *targets, size_t N, size_t V);

/* ---- optimizers: one update of n values (see optimizer_math.h) ----
 * v NULL: SGD without momentum. The count of elements that kept their old values (a non-finite
 * update) is added to a device counter, read (with a synchronisation) by
 * px_nn_cuda_take_refused. For AdamW, t is the group's step count after this step (1 on its
 * first). */
px_status px_sgd_step_cuda(px_nn_cuda *c, float *w, const float *g, float *v, size_t n, float lr,
                           float momentum, float weight_decay, int nesterov);
px_status px_adamw_step_cuda(px_nn_cuda *c, float *w, const float *g, float *m, float *v,
                             size_t n, float lr, float beta1, float beta2, float eps,
                             float weight_decay, uint64_t t);
/* Waits for the stream, returns the refusals counted since the last call and resets the
 * counter. */
px_status px_nn_cuda_take_refused(px_nn_cuda *c, size_t *refused);

#ifdef __cplusplus
}
#endif

#endif
