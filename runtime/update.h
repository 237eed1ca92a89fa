/* update.h - the update seam: how a logical worker turns the parameters it was sent into the
 * update it sends back.
 *
 * The server treats every update as a gradient. Two kinds:
 * - "minibatch": one minibatch gradient of the model's loss (distributed mode), drawn from the
 *   whole training set or, with a partition, from the worker's own part;
 * - "local": a federated client's round: local SGD steps from the global model on the client's
 *   part, with its local objective (FedProx's proximal term, FedLD's margin control), and the
 *   update global - local.
 * What happens to an update afterwards -- faults, encoding, sealing -- is the worker's
 * (worker.c), in separate stages after this one.
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
#include "fl/clients.h"
#include "fl/partition.h"
#include "runtime/dataset.h"
#include "runtime/nn/model.h"

/* What every update of a run shares; must outlive the contexts. */
typedef struct {
    const px_model *model;
    const px_dataset *data;
    size_t batch; /* examples per minibatch */
    uint64_t seed;
    const px_partition *partition; /* the parts workers or clients draw from; NULL: all data */
    /* "local" (federated clients) */
    uint32_t local_steps;  /* per round (0: local_epochs over the client's part) */
    uint32_t local_epochs; /* per round, when local_steps is 0 */
    float local_lr;        /* the clients' SGD */
    float prox_mu;         /* FedProx (0: none) */
    px_loss_terms terms;   /* FedLD's margin control (0: none) */
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
    /* Writes the update of worker or client `who` at `params` for `step` (a round, for
     * clients) into out (n_params floats) and returns the loss it measured on the way (NaN when
     * none). `active` is the active-group mask (NULL = all groups); `hook` may be NULL. A
     * context serves one worker ("minibatch") or, round after round, any client ("local"). */
    float (*compute)(px_update *u, uint32_t who, const float *params, uint32_t step,
                     const uint8_t *active, const px_batch_hook *hook, float *out);
    void (*destroy)(px_update *u);
} px_update_kind;

/* The failure of the update's last compute (PX_OK when none), recorded as the calling thread's
 * error: a model whose pass runs on a device can fail there (model.h: work_failed). */
px_status px_update_failed(const px_update *u);

/* The registry ("minibatch", "local"); NULL if unknown. */
const px_update_kind *px_update_find(const char *name);

#endif
