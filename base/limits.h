/* limits.h - the hard limits of a run, each defined once here. The config rules that refuse a
 * value beyond a limit, the messages that state it, and the code that sizes a buffer by it all
 * derive from these constants; none of them writes the number again.
 *
 * (Limits that belong to one module stay with it: PX_CODEC_MAX_BLOCK in comm/codec.h,
 * PX_AGG_MAX_PRE and PX_AGG_MAX_LAYERS in aggregators/aggregator.h.)
 */
#ifndef PX_LIMITS_H
#define PX_LIMITS_H

/* Most logical workers of a run (cluster.workers). faults/ draws the Byzantine set of a step in
 * a stack array of this many entries, and px_byz_check refuses a spec with more workers. */
#define PX_MAX_WORKERS 4096u

/* Most federated clients (federated.clients): Byzantine clients are drawn like workers, so the
 * same bound. */
#define PX_MAX_CLIENTS PX_MAX_WORKERS

/* Most threads of one process (cluster.threads, aggregate --threads). */
#define PX_MAX_THREADS 1024u

/* Most parameters of a model: 2^28 float32 = 1 GiB per copy. A run holds several copies (the
 * parameters, each hosted worker's gradient, the optimizer's state, the server's n inputs), so
 * the bound keeps a 2-core machine's run within reach; the model registry (px_model_check)
 * refuses a larger model from the config alone and again with the data's shape, before any
 * parameter is allocated. */
#define PX_MAX_PARAMS (1u << 28)

/* Most server shards of a run (cluster.server_shards): a worker rank holds one transport and
 * one message per shard and per hosted worker. */
#define PX_MAX_SERVER_SHARDS 64u

#endif
