/* optimizer.h - the server's optimizer: SGD with momentum, Nesterov and L2 weight decay (as
 * torch.optim.SGD with dampening 0), and the learning-rate schedules.
 *
 * One update per step, applied to the aggregated gradient:
 *   g <- g + wd * w;   v <- momentum * v + g;   w <- w - lr * (nesterov ? g + momentum * v : v)
 * The momentum buffer is allocated once (n values) and starts at zero, as in PyTorch where the
 * first step sets v = g.
 */
#ifndef PX_OPTIMIZER_H
#define PX_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef enum { PX_LR_CONSTANT = 0, PX_LR_STEP = 1, PX_LR_COSINE = 2 } px_lr_kind;

typedef struct {
    px_lr_kind kind;
    float lr;       /* peak learning rate */
    uint32_t steps; /* length of the run (COSINE reaches min_lr there) */
    uint32_t step_every;
    float step_gamma;
    float min_lr;
    uint32_t warmup_steps;
} px_lr_schedule;

/* Learning rate for step `step` (0-based): linear warm-up from lr/warmup to lr over the first
 * warmup_steps steps, then the schedule's value. */
float px_lr_at(const px_lr_schedule *s, uint32_t step);

typedef struct {
    float momentum, weight_decay;
    int nesterov;
    size_t n;
    float *velocity; /* n values */
} px_sgd;

px_status px_sgd_create(px_sgd *o, size_t n, float momentum, float weight_decay, int nesterov);
void px_sgd_free(px_sgd *o);

/* One update of w (n values) with gradient g at learning rate lr. g is not modified. An element
 * whose new weight or momentum would not be finite (an overflowing aggregate) keeps its old
 * values, so the model never holds NaN or Inf; the number of such elements is returned. */
size_t px_sgd_step(px_sgd *o, float *w, const float *g, float lr);

#endif
