/* worker.h - the logical workers hosted by one process: each draws its minibatch, computes its
 * gradient and sends it to the server as one wire message.
 *
 * A process hosts a group of logical workers (all n of them in a one-process run, every
 * (W-1)-th under mpirun). Their gradients are computed in parallel on the process's thread
 * pool, each with its own buffers, then sent in worker order from the calling thread (the only
 * thread that talks to MPI).
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "comm/transport.h"
#include "faults/byzantine.h"
#include "runtime/common.h"
#include "runtime/dataset.h"
#include "runtime/mlp.h"
#include "runtime/pool.h"

typedef struct {
    uint32_t id; /* logical worker id in [0, n) */
    px_sampler sampler;
    px_mlp_work work;
    uint32_t *batch_idx; /* batch_size indices */
    uint8_t *labels;     /* batch_size labels */
    unsigned char *msg;  /* header + d floats */
    size_t msg_len;
    /* this step */
    int active;             /* computes this step (not while its last message is on its way) */
    size_t send_len;        /* bytes to send (a faulty worker may send fewer) */
    px_byz_send_plan plan;  /* send at all, and after which delay */
} px_worker;

typedef struct {
    const px_mlp *model;
    const px_dataset *data;
    size_t batch;
    uint64_t seed;
    size_t count;
    px_worker *workers;
    px_pool *pool;
    const px_byz_spec *byz;  /* fault injection, or NULL */
    size_t classes;
    /* the step being computed (read by the pool tasks) */
    const float *params;
    uint32_t step;
} px_worker_group;

/* Creates the group hosting the logical workers ids[0..count) (count may be 0: a rank with no
 * worker). Every buffer of every step is allocated here. `byz` (may be NULL) makes the
 * Byzantine members of the group misbehave; it must outlive the group. */
px_status px_worker_group_create(px_worker_group *g, const px_mlp *model, const px_dataset *data,
                                 size_t batch, uint64_t seed, const uint32_t *ids, size_t count,
                                 px_pool *pool, const px_byz_spec *byz);
void px_worker_group_free(px_worker_group *g);

/* Computes every hosted worker's gradient at `params` for `step` and hands each message to the
 * transport (t->send): on time first, in worker order, then the stragglers' in order of their
 * delay. A worker whose previous message is still on its way sits the step out. */
px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *t);

#endif
