/* server_device.h - the server's aggregation on a device (cluster.device = CUDA).
 *
 * The server copies a step's gradients to the device. For the Gram-form rules (mean with a
 * chain, Krum, Multi-Krum, geomed, FA with the pca start) and every pre-aggregation chain, the
 * device forms the part of a step that grows as n^2 d, the Gram matrix, in double
 * (aggregators_cuda.h), and the rule's sharded form (aggregator.h: px_agg_shard_partial_gram, then
 * px_agg_shard_finish) takes the n x n decisions (LAPACKE, selections) and forms the weighted sum
 * on the host, as the CPU path does. For the coordinate-wise rules without a chain (median,
 * trimmed mean, MeaMed; n <= PX_CW_MAX_N) the device computes the output, one thread per
 * coordinate over px_cw_coordinate (coord_math.h), unless a step has an input to drop (NaN or
 * Inf: the CPU path then drops it and lowers f, as always). Rules without a sharded form
 * (bulyan, cclip, fedld, FA with a warm or random start) aggregate on the CPU as before; the
 * trainer says which.
 *
 * The CPU backend (PX_DEVICE_BACKEND=cpu, for the tests) runs the same staging over the device
 * abstraction's host memory: the Gram matrix by plain double loops (another formulation of the
 * same matrix), the coordinate-wise rules by px_cw_coordinate in a loop (the GPU thread's code).
 */
#ifndef PX_SERVER_DEVICE_H
#define PX_SERVER_DEVICE_H

#include "base/device.h"
#include "runtime/server.h"

typedef struct px_server_device px_server_device;

/* Puts server s's aggregation on device `ordinal` of `kind` (a one-server s, or a shard). PX_OK
 * when the device now forms the Gram matrix; PX_ENOTSUP (message: why) when the rule does not
 * read one or has no sharded form: s is then unchanged and aggregates on the CPU. Any other
 * failure (no such device, memory) is an error of the run. */
px_status px_server_use_device(px_server *s, px_device_kind kind, int ordinal, px_pool *pool);

/* The device s aggregates on, NULL when none. */
const char *px_server_device_name(const px_server *s);

/* Step 1 of the sharded rule with the Gram matrix formed on the device: partial for the k rows
 * of s->present. */
px_status px_server_device_partial(px_server *s, size_t k, double *partial);

/* Step 3 on the device for a coordinate-wise rule: s->agg_out and s->weights (NaN) from the k
 * rows and the summed flags; *done = 0 (nothing written) when the CPU path must decide: not a
 * coordinate-wise rule, an input to drop, too few inputs for the rule. */
px_status px_server_device_finish(px_server *s, size_t k, const double *sum, int *done);

/* 1 when s's device computes its coordinate-wise rule's output. */
int px_server_device_coordwise(const px_server *s);

void px_server_device_free(px_server *s);

#endif
