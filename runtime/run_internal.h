/* run_internal.h - what the parts of a run share: the process's run context, set up by run.c
 * (set-up, start-up agreement, outputs) and driven by loop.c (the server's and the worker
 * ranks' step loops). Not for use outside runtime/. */
#ifndef PX_RUN_INTERNAL_H
#define PX_RUN_INTERNAL_H

#include <signal.h>
#include <stdint.h>

#include "base/pool.h"
#include "comm/codec.h"
#include "comm/transport.h"
#include "faults/byzantine.h"
#include "fl/partition.h"
#include "runtime/dataset.h"
#include "runtime/metrics.h"
#include "runtime/nn/model.h"
#include "runtime/run.h"
#include "runtime/server.h"
#include "runtime/state.h"
#include "runtime/worker.h"

/* Everything one process of a run holds. */
typedef struct {
    const px_config *cfg;
    const px_run_env *env;
    int world, rank, is_mpi, is_local, threads;
    int is_shm;     /* an MPI job whose messages go through shared memory (cluster.transport) */
    int is_split;   /* an MPI job whose payloads go through NCCL (cluster.transport = NCCL) */
    char link_where[160]; /* is_split: the payload channel and this rank's device */
    size_t msg_max; /* the largest legal message: the transports' buffers are sized by it */
    px_pool *pool;
    px_dataset data;
    px_model *model;        /* the workers' model (the server has its own) */
    px_lisa lisa;           /* the workers' LISA plan (the server has its own) */
    px_partition partition; /* the parts of the training set (federated, data.partition) */
    int has_partition;
    int federated;
    int lock_fd; /* rank 0: holds the run directory's lock (-1: none) */
    px_transport *t;
    /* a sharded server (cluster.server_shards = S > 1): ranks 0..S-1 are its shards, each with
     * one transport (t) to the worker ranks and the link to the others; a worker rank has one
     * transport per shard (ts[k]; t = ts[0]) */
    size_t shards;
    px_shard_slice *slices;
    px_transport **ts;
    px_shard_link *link;
    px_codec_spec up_spec, down_spec;
    px_byz_spec byz;
    /* the logical workers this process hosts (every one alone; a share under MPI) */
    uint32_t *ids;
    size_t hosted;
    px_worker_group group;
    int has_group;
    /* rank 0 */
    px_server server;
    int has_server;
    px_metrics metrics;
    uint32_t first_step;      /* 0, or the step a loaded state resumes at */
    const char *state_dir;    /* the state to continue from (a checkpoint, a saved state) */
    char resume_dir[4200];
    uint64_t bytes_totals[2]; /* up, down, since the start of the run (a resumed one too) */
    double trained_values;    /* active values summed over the steps run (LISA's share) */
    uint64_t full_sent; /* full parameter messages sent by this process's run (resyncs) */
    int *expected, *got;      /* per rank: messages due and received this step (MPI) */
    uint64_t drops_seen, late_seen, nonfinite_seen; /* already put in an interval */
    double compression_ratio; /* uplink message bytes over those of a float32 message */
    char uplink[64], downlink[64];
    char agg_where[320]; /* where the server aggregates, when the run has a device */
} px__run;

/* Set by SIGTERM and SIGUSR1 (the signal's number): checkpoint and stop at the next step. */
extern volatile sig_atomic_t px__preempt_signal;

/* The server's step loop (rank 0, and the one-process run with its local workers). */
px_status px__server_loop(px__run *R, px_run_summary *sum);

/* The worker ranks' loop: parameters in, updates out, until the server says stop. */
px_status px__worker_loop(px__run *R);

/* run_device.c: a device run's config checks (every rank alike, exit 2 when refused); the
 * workers' model on the run's device (ranks that host workers); the server's Gram matrix there
 * (R->agg_where says where the server aggregates, and why). */
px_status px__check_device(const px_config *cfg);
/* cluster.transport = NCCL, after the start-up agreement (collective): the split transport over
 * NCCL, or over its MPI channel with PX_DEVICE_BACKEND=cpu. */
px_status px__connect_split(px__run *R);
px_status px__setup_device(px__run *R);
px_status px__setup_server_device(px__run *R);

/* The directory of the state saved after `step` steps. */
void px__state_dir(const px_config *cfg, uint32_t step, char *dir, size_t cap);

#endif
