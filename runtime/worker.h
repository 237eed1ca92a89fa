/* worker.h - the logical workers hosted by one process: each computes its update from the
 * parameters (the update seam, update.h), then passes it through the stages that follow --
 * faults (a Byzantine worker's local attack), encoding (the uplink codec, with error feedback),
 * sealing (the wire header, and a faulty worker's message tampering) -- and sends it to the
 * server as one wire message.
 *
 * A process hosts a group of logical workers (all n of them in a one-process run, every
 * (W-1)-th under mpirun). Their gradients are computed in parallel on the process's thread
 * pool, each with its own buffers and codec, then sent in worker order from the calling thread
 * (the only thread that talks to MPI). The group keeps the parameters the server sent: the
 * message itself with a float32 downlink, or a replica that quantised deltas update.
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "comm/codec.h"
#include "comm/transport.h"
#include "faults/byzantine.h"
#include "base/common.h"
#include "base/pool.h"
#include "runtime/dataset.h"
#include "runtime/lisa.h"
#include "runtime/nn/model.h"
#include "runtime/shards.h"
#include "runtime/update.h"

/* A worker's message to one shard of a sharded server: header + the slice's payload. */
typedef struct {
    unsigned char *msg;
    size_t msg_len, send_len;
} px_worker_part;

typedef struct {
    uint32_t id;        /* logical worker id in [0, n): a federated round's slot */
    uint32_t who;       /* the worker itself, or the client the slot plays this round */
    px_update *update;  /* the update seam's context of this worker */
    unsigned char *msg; /* header + payload */
    size_t msg_len;
    int msg_lent; /* msg is the transport's (px_worker_group_place), not ours to free */
    float *grad;     /* float32 gradient before encoding (NULL: computed in msg) */
    float *residual; /* error feedback (NULL when off): the worker's run state */
    float *compact, *compact_residual; /* LISA: the active groups' values (NULL when off) */
    px_codec *codec;                   /* uplink encoder of this worker */
    px_worker_part *parts; /* sharded server: one message per shard (NULL: msg alone) */
    /* this step */
    int active;            /* computes this step (not while its last message is on its way) */
    size_t send_len;       /* bytes to send (a faulty worker may send fewer) */
    px_byz_send_plan plan; /* send at all, and after which delay */
    px_status status;      /* of the step's encoding */
} px_worker;

/* What every worker of a run shares. */
typedef struct {
    const px_model *model;
    const px_dataset *data;
    size_t batch;
    uint64_t seed;
    const char *update;            /* the update kind (update.h): "minibatch" */
    const px_lisa *lisa;           /* which layer groups train at a step (off: all) */
    const px_partition *partition; /* parts of the training set (NULL: all of it) */
    size_t slots;                  /* logical workers of the run (every rank's) */
    size_t clients;                /* federated: clients K (0: distributed mode) */
    /* federated: the clients' local training */
    uint32_t local_steps, local_epochs;
    float local_lr, prox_mu, margin_lambda;
    const px_byz_spec *byz; /* fault injection, or NULL */
    px_codec_spec uplink;   /* FP32 = send the float32 gradient itself */
    px_codec_spec downlink; /* FP32 = parameters in full; otherwise quantised deltas */
    int error_feedback;
    /* a sharded server (cluster.server_shards > 1): its slices, shards entries (NULL: one
     * server of the whole vector) */
    const px_shard_slice *slices;
    size_t shards;
} px_worker_setup;

/* What a worker rank knows of one shard's stream: the slice's active groups this step and at
 * the previous one, and the replica's slice. */
typedef struct {
    uint8_t *active, *prev; /* per local group (shards.h) */
    size_t n_active, payload_bytes;
    int valid;      /* a full slice has been applied */
    uint32_t step;  /* the step of the last parameters applied to the slice */
} px_worker_shard;

typedef struct {
    px_worker_setup setup;
    px_update_setup update_setup;
    const px_update_kind *update;
    size_t count;
    px_worker *workers;
    px_pool *pool;
    size_t payload_bytes;                     /* uplink payload of one message this step */
    uint8_t *active;                          /* per layer group: trains this step */
    uint32_t *round_clients, *client_scratch; /* federated: the round's clients (slots, K) */
    size_t n_active; /* values of the active groups: what a message carries */
    /* parameters rebuilt from downlink deltas, or from LISA's messages of the changed groups
     * (NULL with FP32 and no LISA: the parameters are read in the message) */
    float *replica;
    px_codec *down_codec;
    uint8_t *prev_active; /* LISA: the groups trained by the step before the message's */
    int replica_valid;    /* a full parameter message has been applied */
    uint32_t replica_step; /* the step of the last parameters applied to the replica */
    px_worker_shard *shard; /* sharded server: per shard (NULL: one server) */
    uint8_t *scratch;       /* sharded: a step's active groups of the whole model */
    int stop_save;     /* the stop message asks for the workers' state (preemption) */
    /* the step being computed (read by the pool tasks) */
    const float *params;
    uint32_t step;
} px_worker_group;

/* Creates the group hosting the logical workers ids[0..count) (count may be 0: a rank with no
 * worker). Every buffer of every step is allocated here. `setup` is copied; what it points to
 * must outlive the group. */
px_status px_worker_group_create(px_worker_group *g, const px_worker_setup *setup,
                                 const uint32_t *ids, size_t count, px_pool *pool);
void px_worker_group_free(px_worker_group *g);

/* Moves each hosted worker's message into the buffer the transport lends for it
 * (t->send_buffer: shared memory with the shm transport), so that it is sealed where the server
 * reads it; a worker the transport lends nothing keeps its own. Before the first step. */
px_status px_worker_group_place(px_worker_group *g, px_transport *t);

/* Takes a message from the server. PARAMS: checks it, applies it (full parameters, or a delta
 * to the replica) and sets *params (valid until the next call) and *step; STOP: sets *step,
 * *stop, and g->stop_save when the server asks for the workers' state before the end. A
 * message that breaks the format, or a delta that arrives before any full parameters, fails
 * with PX_EPROTO. */
px_status px_worker_group_take(px_worker_group *g, const unsigned char *msg, size_t len,
                               const float **params, uint32_t *step, int *stop);

/* Sharded server: takes a message of shard `k` as px_worker_group_take does, into the replica's
 * slice of that shard (the replica is then the parameters: g->replica). */
px_status px_worker_group_take_part(px_worker_group *g, size_t k, const unsigned char *msg,
                                    size_t len, uint32_t *step, int *stop);

/* Computes every hosted worker's gradient at `params` for `step` and hands each message to the
 * transport (t[0]->send; with a sharded server, each shard's slice to t[shard]): on time first,
 * in worker order, then the stragglers' in order of their delay. A worker whose previous
 * message is still on its way sits the step out. */
px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *const *t);

/* The hosted workers' run state (error-feedback residuals; nothing when error feedback is off:
 * the data order and every random choice are functions of (seed, worker, step)). Saved as one
 * file per logical worker, DIR/worker_<id>.pxs, so that a run can resume on any number of
 * ranks; load refuses a file of another shape, naming it. */
px_status px_worker_group_save(const px_worker_group *g, const char *dir);
px_status px_worker_group_load(px_worker_group *g, const char *dir);

#endif
