/* optimizer.h - the server's optimizer: an interface with a registry (optimizer.kind, by its
 * lower-case enum name), SGD with momentum, Nesterov and L2 weight decay (as torch.optim.SGD
 * with dampening 0) as its first kind, and the learning-rate schedules.
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
#include "runtime/nn/model.h"

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

/* ---- the interface the engine uses ---- */

/* Everything an optimizer kind may read, as plain values (runtime/nn does not read the config
 * schema). */
typedef struct {
    float momentum, weight_decay; /* SGD: momentum; both: weight decay */
    int nesterov;
    float beta1, beta2, eps; /* AdamW */
    int keep_frozen_state;   /* LISA: 1 = a frozen group keeps its state (KEEP), 0 = RESET */
} px_optimizer_spec;

typedef struct px_optimizer px_optimizer;

typedef struct {
    /* One update of w (n values) with gradient g at learning rate lr, of the layer groups marked
     * in `active` (one flag per group; NULL = every group); g is not modified, and the
     * parameters and state of the other groups are left as they are (RESET drops a frozen
     * group's state). An element whose update would not be finite keeps its old values;
     * returns how many. */
    size_t (*step)(px_optimizer *o, float *w, const float *g, float lr, const uint8_t *active);
    /* The state a resumed run needs (momentum, moments, step counts): its size in bytes now,
     * and a copy out or in (load refuses a wrong size or a non-finite value, naming it). */
    size_t (*state_bytes)(const px_optimizer *o);
    void (*state_save)(const px_optimizer *o, unsigned char *out);
    px_status (*state_load)(px_optimizer *o, const unsigned char *in, size_t len);
    void (*destroy)(px_optimizer *o);
} px_optimizer_ops;

struct px_optimizer {
    const char *kind; /* registry name */
    const px_optimizer_ops *ops;
    size_t n; /* parameters */
    size_t n_groups;
    const px_layer_group *groups; /* the model's layer groups (the optimizer's state unit) */
    void *impl;
};

typedef struct {
    const char *name;
    const char *summary;
    /* fills o->impl and o->ops of an optimizer whose kind, n and groups are set */
    px_status (*create)(px_optimizer *o, const px_optimizer_spec *spec);
} px_optimizer_kind;

const px_optimizer_kind *px_optimizer_find(const char *name);
size_t px_optimizer_kind_count(void);
const px_optimizer_kind *px_optimizer_kind_at(size_t i);

/* Creates an optimizer of kind `name` for n parameters cut into the layer groups groups[0..
 * n_groups) (NULL: one group of all n), which must outlive it. Refuses an unknown kind, naming
 * the known ones. The caller owns it (px_optimizer_destroy). */
px_status px_optimizer_create(px_optimizer **out, const char *name, const px_optimizer_spec *spec,
                              size_t n, const px_layer_group *groups, size_t n_groups);
void px_optimizer_destroy(px_optimizer *o);

#endif
