/* lisa.h - LISA, layerwise importance sampling (ALGORITHMS.md section 6): which layer groups
 * train at a step, and the compact vectors of the active groups that travel.
 *
 * The active set of a step is a pure function of (run seed, period index): every `period`
 * steps, `gamma` middle groups drawn uniformly without replacement from the stream
 * (seed, PX_STREAM_LISA, 0, step / period), with the input and head groups always on. So the
 * server and every worker rank derive the same plan with no message, a resumed run needs no
 * saved draw, and the sizes of the messages (the active values only) enforce the agreement: a
 * worker that computed another set sends a payload of the wrong size, which the server drops.
 */
#ifndef PX_LISA_H
#define PX_LISA_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/nn/model.h"

typedef struct {
    int on;
    uint32_t gamma, period;
    uint64_t seed;
    size_t n_groups;
    const px_layer_group *groups;
    size_t n_middle; /* middle groups of the model */
} px_lisa;

/* Sets up LISA for a model's groups (on = 0: every group trains at every step). Refuses gamma
 * outside [1, middle groups] and a period of 0, naming the lisa.* field. */
px_status px_lisa_init(px_lisa *l, int on, uint32_t gamma, uint32_t period, uint64_t seed,
                       const px_layer_group *groups, size_t n_groups);

/* The active groups of `step` (one flag per group); returns the number of active values. */
size_t px_lisa_active(const px_lisa *l, uint32_t step, uint8_t *active);

/* The active groups' values of full (n_params) in group order into compact, and back: scatter
 * writes zeros into the frozen groups' places when zero_frozen is set, and leaves them as they
 * are otherwise. */
void px_lisa_gather(const px_lisa *l, const uint8_t *active, const float *full, float *compact);
void px_lisa_scatter(const px_lisa *l, const uint8_t *active, const float *compact, float *full,
                     int zero_frozen);

#endif
