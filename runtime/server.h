/* server.h - the parameter server: it owns the model's parameters and optimizer state, checks
 * every incoming message, aggregates the step's gradients with the configured rule, applies the
 * optimizer and evaluates on the test set. It knows the model only through its interface
 * (runtime/nn/model.h) and the optimizer through its own (runtime/nn/optimizer.h).
 *
 * One step, as the run loop (loop.c) drives it, stage by stage:
 *   px_server_begin_step   seal the parameter message for the step
 *   px_server_accept       collect: for every message that arrives, validate and decode, or
 *                          drop (counted)
 *   px_server_finish_step  the OMNISCIENT attack stage (test mode), the aggregation stage, the
 *                          optimizer stage
 * The server never trusts a worker: wrong size, wrong step, foreign worker id, duplicate,
 * corrupted bytes are dropped with a reason; non-finite values are dropped by the aggregator.
 */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "aggregators/aggregator.h"
#include "comm/wire.h"
#include "faults/byzantine.h"
#include "runtime/config.h"
#include "runtime/dataset.h"
#include "fl/clients.h"
#include "fl/partition.h"
#include "runtime/lisa.h"
#include "base/pool.h"
#include "runtime/nn/model.h"
#include "runtime/nn/optimizer.h"
#include "runtime/shards.h"

#define PX_EVAL_CHUNK 500 /* predictions per evaluation forward pass */

typedef struct {
    const px_config *cfg;
    px_model *model;
    size_t n;                  /* logical workers */
    size_t d;                  /* parameters */
    int world;                 /* MPI world size (1 = one process) */
    unsigned char *params_msg; /* header + parameters: the parameters live in this buffer */
    size_t params_msg_len;
    px_codec_spec uplink, downlink;
    px_codec *up_codec; /* decodes every worker's payload to float32 */
    size_t up_payload_bytes;
    /* quantised downlink: a delta message, and the replica workers hold (in a full message) */
    px_codec *down_codec;
    unsigned char *delta_msg, *replica_msg;
    size_t delta_msg_len;
    float *replica;
    uint8_t *needs_full; /* per rank: must get the full replica next (delta downlink) */
    px_wire_copied copied; /* the message the transport last copied with px_wire_copy, if any */
    float *params;
    px_optimizer *opt;
    uint8_t *active; /* per layer group: trains this step (LISA); NULL = every group */
    px_lisa lisa;
    uint8_t *active_mask;      /* the step's active groups (all when LISA is off) */
    /* LISA with a float32 downlink: the parameter message carries only the
     * groups the previous step trained (the others have not changed since); a worker rank that
     * missed a message gets the full parameters (needs_full) */
    int lisa_down;
    unsigned char *lisa_msg; /* header + the changed groups' values */
    uint8_t *prev_mask;      /* the groups the previous step trained */
    size_t n_active;           /* values of the active groups: what a gradient message holds */
    size_t step_payload_bytes; /* the uplink payload of n_active values */
    float *compact;            /* LISA: a decoded payload before it is scattered into its row */
    /* federated mode: the slots play clients, drawn per round */
    size_t clients;                /* K (0: distributed mode) */
    const px_partition *partition; /* the clients' parts (sample counts weight FedAvg) */
    uint32_t *round_clients, *client_scratch;
    int weighted;    /* FedAvg: the mean weighted by the clients' sample counts */
    double *agg_acc; /* its sums */
    px_lr_schedule schedule;
    px_agg *agg;
    float *agg_out;
    float *rows;           /* n x d: the gradient of each worker this step */
    const float **present; /* rows received this step, in worker order */
    uint8_t *have;         /* per worker: received this step */
    float *loss;           /* per worker: reported minibatch loss */
    uint32_t step;
    uint64_t drops[PX_DROP_REASON_COUNT]; /* since the start */
    uint64_t drops_logged;
    const px_dataset *data; /* test split for evaluation */
    px_pool *pool;
    px_byz_spec byz_spec; /* fault injection (attack NONE when off) */
    px_byz_server byz;    /* OMNISCIENT attacks: the server replaces Byzantine rows */
    int byz_on;
    uint8_t *alive;        /* per worker: still expected (not silent past the timeout) */
    double *last_heard_ms; /* per worker: when its last valid gradient arrived */
    size_t n_alive;
    uint64_t update_refused; /* parameter elements kept because their update overflowed */
    uint64_t warnings;       /* step warnings logged (the first few in full) */
    uint64_t steps_skipped;  /* steps without an update (nothing valid, or not aggregated) */
    void **eval_work;        /* the model's work areas, one per pool thread */
    size_t eval_chunk;       /* test examples per forward pass */
    uint8_t *eval_labels;    /* per pool thread: eval_chunk x label_values labels */
    double *eval_loss;       /* per evaluation chunk */
    size_t *eval_correct;
    /* a shard of a sharded server (cluster.server_shards > 1, shards.h): d, params, the rows,
     * the codecs, the optimizer and the LISA view are this shard's slice's */
    const px_shard_slice *slice; /* NULL: one server of the whole vector */
    px_shard_link *link;         /* the channel to the other shards */
    size_t shard, shards;
    int rank_base;           /* added to a worker rank of the transport to name it (world) */
    size_t d_all;            /* the model's parameters (d with one server) */
    size_t n_active_all;     /* the step's active values in the whole model */
    float *whole;            /* the whole parameters: shard 0 gathers them to evaluate */
    const px_lisa *lv;       /* LISA's gather and scatter: the model's groups or the slice's */
    uint8_t *lmask, *lprev;  /* active groups of the view: this step's, the previous step's */
    px_agg_shard *sagg;      /* the sharded rule (instead of agg) */
    double *partial, *partial_all; /* this shard's partial, every shard's (in shard order) */
    unsigned char *agree, *agree_all; /* the inputs taken: this shard's, every shard's */
    size_t agree_len;
    double *weights;   /* the rule's weights of the last aggregation (NaN: not a weighted sum) */
    uint64_t decision; /* a hash of the last step's decision, compared among the shards */
    /* cluster.device = CUDA: the Gram matrix formed on the GPU, the rule's sharded form (sagg,
     * over one shard when there is one server) deciding from it (server_device.h) */
    struct px_server_device *sdev;
} px_server;

/* Where a shard of a sharded server stands (px_server_create_shard). */
typedef struct {
    size_t index, count;         /* this shard, of count */
    const px_shard_slice *slice; /* its slice (outlives the server) */
    px_shard_link *link;         /* the shards' channel (outlives the server) */
    int rank_base;               /* world rank of the transport's rank r >= 1: r + rank_base */
} px_server_shard;

/* Builds the model (the config's model.kind, shaped by the data), initialises the parameters
 * from the run seed, and allocates every buffer of the run. `data` must hold the test split
 * and outlive the server. On failure px_server_free releases what was made. */
px_status px_server_create(px_server *s, const px_config *cfg, const px_dataset *data, int world,
                           px_pool *pool);
void px_server_free(px_server *s);

/* The same for one shard of a sharded server (sh NULL: px_server_create). `world` is the size
 * of the shard's transport (the shard and the worker ranks). */
px_status px_server_create_shard(px_server *s, const px_config *cfg, const px_dataset *data,
                                 int world, px_pool *pool, const px_server_shard *sh);

/* Sharded server, after a step's collect, on every shard: the shards exchange which workers'
 * gradients they took and go on with those every shard took (the others are forgotten on
 * this step), so that every shard aggregates the same inputs. Adds every shard's byte counts
 * of the step to *bytes_up and *bytes_down (this shard's are in them), and ORs every shard's
 * *stop (a preemption signal) into it. A shard at another step, or silent past the deadline,
 * fails the call naming it. */
px_status px_server_agree_inputs(px_server *s, double *bytes_up, double *bytes_down, int *stop);

/* Sharded server, on every shard: shard 0 gathers the whole parameters (for evaluation and the
 * outputs). Nothing with one server. */
px_status px_server_gather_params(px_server *s);

/* The whole parameters (d_all floats): shard 0's gathered copy, or the parameters of one
 * server. */
const float *px_server_params(const px_server *s);

/* Federated mode: the n slots play clients of `partition` (K = partition->parts), a new draw
 * every round; with `weighted` and aggregator.rule "mean" the aggregate weights each client by
 * its sample count (FedAvg). */
px_status px_server_federate(px_server *s, const px_partition *partition, int weighted);

/* Starts step `step`: builds the step's parameter message (msg/len) and forgets the previous
 * step's gradients. With a float32 downlink the message holds the parameters and *full is
 * NULL. Otherwise it holds the quantised difference between the parameters and the replica the
 * workers hold (the replica then takes it in, as the workers will), and *full is the complete
 * replica for the ranks marked in s->needs_full (all of them at step 0). */
px_status px_server_begin_step(px_server *s, uint32_t step, const unsigned char **msg, size_t *len,
                               const unsigned char **full, size_t *full_len);

/* Takes one received message from rank `src` (0 in a one-process run). Returns PX_DROP_NONE if
 * its gradient was kept, or the reason it was dropped (counted in s->drops and logged). */
px_drop_reason px_server_accept(px_server *s, const unsigned char *msg, size_t len, int src);

/* Count a message that the transport refused before it could be parsed (oversized). */
void px_server_count_drop(px_server *s, px_drop_reason r, int src, const char *why);

/* After a step's messages are in: marks the workers heard from; a worker silent for longer
 * than silence_ms is reported (logged with the rank hosting it) and no longer waited for, one
 * heard again is expected again. *changed is set when the set changed. Fails with
 * PX_ERUNTIME when the workers left are too few for the aggregation rule. */
px_status px_server_track_liveness(px_server *s, double now_ms, double silence_ms, int *changed);

/* The transport lost rank `rank` (it died or was cut off mid-message, and nothing more will
 * come from it): its workers are dead from now on and their gradients of this step are
 * dropped. Fails with PX_ERUNTIME when the workers left are too few for the aggregation rule. */
px_status px_server_lose_rank(px_server *s, int rank);

typedef struct {
    size_t received;   /* gradients kept this step */
    size_t injected;   /* of which written by the OMNISCIENT attacker */
    size_t refused;    /* parameter elements whose update would have overflowed */
    size_t nonfinite;  /* of which dropped for NaN/Inf by the aggregator */
    int updated;       /* 1 if the parameters were updated */
    double train_loss; /* mean reported loss of the kept finite gradients (NaN if none) */
    double agg_ms;
} px_step_result;

/* Aggregates the step's gradients and applies the optimizer at learning rate lr. When no valid
 * gradient arrived, or the rule's validity condition fails for the number that did, the
 * parameters stay as they are (updated = 0) and the reason is logged. */
px_status px_server_finish_step(px_server *s, float lr, px_step_result *r);

/* Mean cross-entropy and top-1 accuracy on the test split. */
void px_server_evaluate(px_server *s, double *test_loss, double *test_acc);

/* The server's run state, what a resumed run needs: the next step, the parameters, the
 * optimizer's state, the downlink replica, the aggregation rule's state, the counters. Saved to
 * DIR/server.pxs (runtime/state.h). Load refuses a file of another shape (model size,
 * workers, codecs) naming both, and marks every rank for a full parameter message. */
px_status px_server_save(const px_server *s, uint32_t next_step, const uint64_t totals[2],
                         const char *dir);
px_status px_server_load(px_server *s, const char *dir, uint32_t *next_step, uint64_t totals[2]);

#endif
