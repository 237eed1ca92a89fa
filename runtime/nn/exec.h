/* exec.h - an executor: where a model's forward and backward pass runs, as one table of the
 * layers' operations over one device's memory.
 *
 * A model writes its pass once, as calls through an executor (x->ops->linear_forward(x, ...)),
 * and the same code then runs on the CPU (runtime/nn/layers.c, host memory) or on a GPU
 * (runtime/nn/layers_cuda.cu, device memory, every operation queued on the executor's stream).
 * The CPU executor calls the very functions a model called before executors existed, in the same
 * order, so the CPU results stay bit for bit what they were; the CUDA executor's kernels share
 * their per-element arithmetic with those functions (layer_math.h), so the CPU tests cover it.
 * Backends sit in a table, as base/device.h's do: a new one is one file and one row.
 *
 * Every operation has its CPU twin's contract (layers.h: forward overwrites, backward
 * accumulates, a NULL gradient skips its work) and returns px_status (the CPU's never fail).
 * Nothing waits for the device except ce_mean, which reads the loss on the host.
 *
 * An executor belongs to one thread at a time (its stream and its cuBLAS handle are not shared).
 */
#ifndef PX_NN_EXEC_H
#define PX_NN_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/device.h"
#include "base/status.h"

typedef struct px_nn_exec px_nn_exec;

typedef struct {
    /* memory on the executor's device: `what` names it in an allocation failure's message */
    void *(*alloc)(px_nn_exec *x, size_t bytes, const char *what);
    void (*free)(px_nn_exec *x, void *p);
    px_status (*zero)(px_nn_exec *x, void *p, size_t bytes);

    px_status (*linear_forward)(px_nn_exec *x, float *out, const float *inp, const float *weight,
                                const float *bias, size_t N, size_t C, size_t OC);
    px_status (*linear_backward)(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                 const float *dout, const float *inp, const float *weight,
                                 size_t N, size_t C, size_t OC);
    px_status (*conv2d_forward)(px_nn_exec *x, float *out, float *col, const float *inp,
                                const float *weight, const float *bias, size_t B, size_t C,
                                size_t H, size_t W, size_t OC, size_t K, size_t P);
    px_status (*conv2d_backward)(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                 float *col, const float *dout, const float *inp,
                                 const float *weight, size_t B, size_t C, size_t H, size_t W,
                                 size_t OC, size_t K, size_t P);
    px_status (*maxpool_forward)(px_nn_exec *x, float *out, uint32_t *argmax, const float *inp,
                                 size_t B, size_t C, size_t H, size_t W);
    px_status (*maxpool_backward)(px_nn_exec *x, float *dinp, const float *dout,
                                  const uint32_t *argmax, size_t B, size_t C, size_t H, size_t W);
    px_status (*relu_forward)(px_nn_exec *x, float *out, const float *inp, size_t N);
    px_status (*relu_mask)(px_nn_exec *x, float *d, const float *out, size_t N);
    px_status (*embedding_forward)(px_nn_exec *x, float *out, const int32_t *tokens,
                                   const float *wte, const float *wpe, size_t B, size_t T,
                                   size_t C);
    px_status (*embedding_backward)(px_nn_exec *x, float *dwte, float *dwpe, const float *dout,
                                    const int32_t *tokens, size_t B, size_t T, size_t C);
    px_status (*layernorm_forward)(px_nn_exec *x, float *out, float *mean, float *rstd,
                                   const float *inp, const float *weight, const float *bias,
                                   size_t N, size_t C);
    px_status (*layernorm_backward)(px_nn_exec *x, float *dinp, float *dweight, float *dbias,
                                    const float *dout, const float *inp, const float *weight,
                                    const float *mean, const float *rstd, size_t N, size_t C);
    px_status (*gelu_forward)(px_nn_exec *x, float *out, const float *inp, size_t N);
    px_status (*gelu_backward)(px_nn_exec *x, float *dinp, const float *inp, const float *dout,
                               size_t N);
    /* preatt: (B,NH,T,T) scratch for a backend that keeps the scores apart (px_exec_att_scratch
     * says whether it wants one; NULL otherwise); dpreatt and datt: px_exec_att_scratch floats */
    px_status (*attention_forward)(px_nn_exec *x, float *out, float *preatt, float *att,
                                   const float *inp, size_t B, size_t T, size_t C, size_t NH);
    px_status (*attention_backward)(px_nn_exec *x, float *dinp, float *dpreatt, float *datt,
                                    const float *dout, const float *inp, const float *att,
                                    size_t B, size_t T, size_t C, size_t NH);
    px_status (*residual_forward)(px_nn_exec *x, float *out, const float *a, const float *b,
                                  size_t N);
    /* Softmax cross-entropy of N rows of V logits. `losses` (N doubles of the executor's
     * memory) holds what ce_mean turns into the mean loss; probs may be NULL (no backward). */
    px_status (*ce_forward)(px_nn_exec *x, float *probs, double *losses, const float *logits,
                            const int32_t *targets, size_t N, size_t V);
    /* Waits for the work queued so far and returns the mean loss of the last ce_forward. */
    px_status (*ce_mean)(px_nn_exec *x, const double *losses, size_t N, double *mean);
    px_status (*ce_backward)(px_nn_exec *x, float *dlogits, const float *probs,
                             const int32_t *targets, size_t N, size_t V);
    /* FedLD's margin term (layers.h: px_margin_backward), its loss added to *loss; a backend
     * without it refuses with PX_ENOTSUP */
    px_status (*margin_backward)(px_nn_exec *x, float *dlogits, const float *probs, size_t N,
                                 size_t V, float lambda, double *loss);
} px_nn_exec_ops;

struct px_nn_exec {
    const px_nn_exec_ops *ops;
    px_device_kind kind;
    px_device *dev;    /* NULL for the CPU executor of px_exec_cpu() */
    px_stream *stream; /* the stream the operations are queued on (NULL on the CPU) */
    void *impl;        /* the backend's own state */
};

/* The CPU executor: host memory, the layers of layers.c, nothing to create or free. */
px_nn_exec *px_exec_cpu(void);

/* An executor on device d (which outlives it), with its own stream and, on a GPU, its own cuBLAS
 * handle. The CPU backend gives the CPU executor's operations over d's (host) memory. Fails with
 * nothing allocated. */
px_status px_exec_create(px_nn_exec **out, px_device *d);
void px_exec_destroy(px_nn_exec *x);

/* Floats of attention scratch (dpreatt, datt each) for NH heads of T positions: one head's
 * worth on the CPU (it loops), every head's on a GPU (batched GEMMs). Whether attention_forward
 * wants a preatt buffer: 0 on the CPU. */
size_t px_exec_att_scratch(const px_nn_exec *x, size_t T, size_t NH);
int px_exec_wants_preatt(const px_nn_exec *x);

/* Calls one operation and returns its failure from the calling function. */
#define PX_X(x, op, ...) PX_CHECK((x)->ops->op((x), __VA_ARGS__))

#endif
