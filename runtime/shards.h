/* shards.h - a parameter server of S shards (cluster.server_shards; DESIGN.md "Scale-out").
 *
 * Ranks 0..S-1 of the job are the server's shards, ranks S..W-1 host the workers. Shard s owns
 * the slice [lo, lo + n) of the parameter vector, and is an ordinary server of that slice (its
 * own transport to the worker ranks, its own codecs, optimizer and LISA view) except at two
 * points of a step, where the shards exchange small messages over their own communicator:
 *   1. after the collect: which workers' gradients each shard took (and its byte counts); the
 *      step goes on with the workers every shard took, so that every shard aggregates the same
 *      inputs;
 *   2. the aggregator's partials (a non-finite flag per input and, for the Gram-form rules, the
 *      slice's n x n Gram matrix), summed in shard order, so that every shard takes the same
 *      decision (aggregators/aggregator.h, px_agg_shard_*).
 * Shard 0 also gathers the other slices for evaluation and for the final parameters. Every
 * exchange has a deadline, and a shard that does not answer ends the run with its name.
 */
#ifndef PX_SHARDS_H
#define PX_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/lisa.h"
#include "runtime/nn/model.h"

struct px_shard_link;

/* One shard's slice of the parameters, with the layer groups that fall in it. */
typedef struct {
    size_t lo, n;           /* the slice: parameters [lo, lo + n) */
    size_t n_groups;        /* layer groups that meet the slice */
    px_layer_group *groups; /* their parts within it (offsets from lo) */
    size_t *global;         /* per local group: the model's group */
    px_lisa lisa;           /* gather and scatter over the local groups (never draws) */
} px_shard_slice;

/* Cuts d parameters in layer groups groups[0..n_groups) into S slices: at the group boundary
 * nearest each ideal cut k d / S when it lies within d / (10 S) of it, otherwise at the ideal
 * cut rounded to a multiple of `align` (the codecs' block); no slice is empty (S <= d / align).
 * out has S entries; free with px_shard_slices_free. */
px_status px_shard_slices_make(px_shard_slice *out, size_t S, const px_layer_group *groups,
                               size_t n_groups, size_t d, size_t align);
void px_shard_slices_free(px_shard_slice *sl, size_t S);

/* The slice's part of a step's active groups (one flag per model group) into local (one flag
 * per local group); returns the active values within the slice. */
size_t px_shard_slice_mask(const px_shard_slice *sl, const uint8_t *global_mask, uint8_t *local);

/* The channels of a job with S shards (MPI initialised; collective over MPI_COMM_WORLD: every
 * rank calls it, after the start-up agreement, so that every rank is there). A shard k
 * (rank k < S) gets ts[0], its transport to the worker ranks (over the communicator of shard k
 * and ranks S..W-1, where it is rank 0), and *link; a worker rank gets ts[k] for every shard k
 * and no link. Transport arguments as px_transport_mpi_create. */
typedef struct px_transport px_transport;
px_status px_shard_connect(size_t S, size_t min_msg, size_t max_msg, size_t max_sends,
                           double stall_ms, px_transport **ts, struct px_shard_link **link);

/* The shards' channel (MPI). */
typedef struct px_shard_link px_shard_link;

/* Over `comm` (points at an MPI_Comm of the S shards, shard s its rank s). */
px_status px_shard_link_create(px_shard_link **out, const void *comm);
void px_shard_link_destroy(px_shard_link *l);
int px_shard_link_index(const px_shard_link *l);
int px_shard_link_count(const px_shard_link *l);

/* Every shard's `bytes` bytes (this shard's are `mine`) into all[s * bytes], on every shard.
 * A shard silent past the deadline, or one that sends another length, fails the call with a
 * message naming it and `what`. */
px_status px_shard_allgather(px_shard_link *l, const void *mine, size_t bytes, void *all,
                             double deadline_ms, const char *what);

/* Shard 0: every other shard's slice into whole (d floats, at its lo); the others send theirs.
 * `mine` is this shard's slice (slices[index].n floats). */
px_status px_shard_gather_params(px_shard_link *l, const px_shard_slice *slices, const float *mine,
                                 float *whole, double deadline_ms);

#endif
