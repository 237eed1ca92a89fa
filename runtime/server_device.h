/* server_device.h - the server's aggregation on a device (cluster.device = CUDA).
 *
 * What a GPU takes over is the part of a step that grows as n^2 d: the Gram matrix of the n
 * gradients, which the Gram-form rules (mean, Krum, Multi-Krum, geomed, FA with the pca start)
 * and every pre-aggregation chain decide from. The server copies the step's gradients to the
 * device, forms the Gram matrix there in double (aggregators_cuda.h) and hands it to the rule's
 * sharded form (aggregator.h: px_agg_shard_partial_gram, then px_agg_shard_finish), which takes
 * the n x n decisions (LAPACKE, selections) and forms the weighted sum on the host, as the CPU
 * path does. Rules without a sharded form (bulyan, cclip, fedld, FA with a warm or random start)
 * and the coordinate-wise rules aggregate on the CPU as before; the trainer says which.
 *
 * The CPU backend (PX_DEVICE_BACKEND=cpu, for the tests) forms the Gram matrix over the device
 * abstraction's host memory with plain double loops: another formulation of the same matrix.
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

void px_server_device_free(px_server *s);

#endif
