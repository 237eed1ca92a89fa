/* mlp.h - the multi-layer perceptron: shape and parameter layout, initialisation, forward and
 * backward passes with softmax cross-entropy, and evaluation.
 *
 * Parameters live in one flat float vector (what travels between workers and the server): for
 * each linear layer l, its weight W_l (out_l x in_l, row-major) then its bias b_l (out_l). The
 * layer table lists these tensors in that order. Hidden layers apply ReLU; the last layer's
 * outputs are the logits.
 *
 * All matrix products go through cblas_sgemm. A px_mlp_work holds the activations of one
 * forward/backward pass for batches of up to batch_max examples; it is allocated once per run
 * and reused every step.
 */
#ifndef PX_MLP_H
#define PX_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/nn/model.h"

#define PX_MLP_MAX_HIDDEN 16     /* hidden layers (the one definition; config checks use it) */
#define PX_MLP_MAX_WIDTH  65536u /* units of a hidden layer */
#define PX_MLP_MAX_LINEAR (PX_MLP_MAX_HIDDEN + 1)

typedef struct {
    size_t n_linear;                    /* linear layers (hidden + 1) */
    size_t dims[PX_MLP_MAX_LINEAR + 1]; /* dims[0] = inputs, dims[n_linear] = classes */
    size_t w_off[PX_MLP_MAX_LINEAR], b_off[PX_MLP_MAX_LINEAR];
    size_t n_params;
    px_layer tensors[2 * PX_MLP_MAX_LINEAR];
    char names[2 * PX_MLP_MAX_LINEAR][24];
    px_layer_table table;
    px_layer_group groups[PX_MLP_MAX_LINEAR]; /* one per linear layer: weight then bias */
    char group_names[PX_MLP_MAX_LINEAR][8];
} px_mlp;

/* Shape of an MLP with `inputs` inputs, the given hidden widths and `classes` outputs. */
px_status px_mlp_shape(px_mlp *m, size_t inputs, const uint32_t *hidden, size_t n_hidden,
                       size_t classes);

/* Initialises params (n_params floats) as PyTorch's nn.Linear does: every weight and bias of
 * layer l uniform in [-1/sqrt(in_l), 1/sqrt(in_l)], drawn from the stream (seed, PX_STREAM_INIT,
 * l). */
void px_mlp_init(const px_mlp *m, float *params, uint64_t seed);

typedef struct {
    size_t batch_max;
    float *act[PX_MLP_MAX_LINEAR + 1]; /* act[0] = input batch; act[l] = output of layer l */
    float *delta[2];                   /* backward scratch, batch_max x widest layer */
} px_mlp_work;

px_status px_mlp_work_create(px_mlp_work *w, const px_mlp *m, size_t batch_max);
void px_mlp_work_free(px_mlp_work *w);

/* Input buffer of a work area: the caller writes a batch of B x dims[0] floats here. */
static inline float *px_mlp_input(px_mlp_work *w)
{
    return w->act[0];
}

/* Forward and backward pass on the batch in px_mlp_input(w) with labels y (B examples): writes
 * the gradient of the mean cross-entropy into grad (n_params floats) and returns the mean loss.
 * Labels must be < classes. */
float px_mlp_loss_grad(const px_mlp *m, px_mlp_work *w, const float *params, const uint8_t *y,
                       size_t batch, float *grad);

/* The same with an active-group mask (one flag per linear layer; NULL = all): an inactive
 * layer's gradient is zero and its weight-gradient products are skipped, and the backward pass
 * stops below the lowest active layer; and with FedLD's margin-control term of weight margin
 * (0 = none) added to the loss. */
float px_mlp_loss_grad_active(const px_mlp *m, px_mlp_work *w, const float *params,
                              const uint8_t *y, size_t batch, const uint8_t *active, float margin,
                              float *grad);

/* Forward pass only: adds the batch's summed cross-entropy to *loss_sum and its number of
 * correct top-1 predictions to *correct. */
void px_mlp_evaluate(const px_mlp *m, px_mlp_work *w, const float *params, const uint8_t *y,
                     size_t batch, double *loss_sum, size_t *correct);

/* The MLP behind the model interface (runtime/nn/model.h): the registry's row "mlp". */
px_status px_mlp_check(const px_model_spec *spec);
/* Parameters of the MLP a spec describes (px_model_kind.count). */
double px_mlp_count(const px_model_spec *spec);
px_status px_mlp_model_create(px_model **out, const px_model_spec *spec);

/* Multiply-add count of one forward + backward pass at batch B (for the GEMM floor). */
double px_mlp_step_flops(const px_mlp *m, size_t batch);

#endif
