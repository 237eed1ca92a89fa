/* update.h - the update seam: how a logical worker turns the parameters it was sent into the
 * update it sends back.
 *
 * The server treats every update as a gradient. Today's kind, "minibatch", is one minibatch
 * gradient of the model's loss; the federated issue adds local steps with a local objective
 * (update = global - local). What happens to an update afterwards -- faults, encoding, sealing
 * -- is the worker's (worker.c), in separate stages after this one.
 *
 * An update context belongs to one logical worker and holds every buffer it needs (the
 * model's work area, the batch indices and labels), allocated once at create. Contexts of
 * different workers may compute at the same time on different threads.
 */
#ifndef PX_UPDATE_H
#define PX_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/dataset.h"
#include "runtime/nn/model.h"

/* What every update of a run shares; must outlive the contexts. */
typedef struct {
    const px_model *model;
    const px_dataset *data;
    size_t batch; /* examples per minibatch */
    uint64_t seed;
} px_update_setup;

/* A hook on the drawn batch before the gradient (data poisoning by a faulty worker): may
 * rewrite the n labels. */
typedef struct {
    void (*labels)(void *user, uint8_t *y, size_t n);
    void *user;
} px_batch_hook;

typedef struct px_update px_update;

typedef struct {
    const char *name;
    px_status (*create)(px_update **out, const px_update_setup *su, uint32_t worker);
    /* Writes worker's update at `params` for `step` into out (n_params floats) and returns the
     * loss it measured on the way (NaN when none). `active` is the active-group mask (NULL =
     * all groups); `hook` may be NULL. */
    float (*compute)(px_update *u, const float *params, uint32_t step, const uint8_t *active,
                     const px_batch_hook *hook, float *out);
    void (*destroy)(px_update *u);
} px_update_kind;

/* The registry ("minibatch"); NULL if unknown. */
const px_update_kind *px_update_find(const char *name);

#endif
