/* pool.h - a fixed pool of threads for data-parallel loops (part of the common base).
 *
 * Used where one process should use every core: the workers of a one-process run, the passes
 * of an aggregator over the n x d gradient matrix, codecs over large buffers. The threads are
 * created once per run; a parallel loop hands out task indices from an atomic counter, the
 * calling thread takes part, and idle threads sleep on a condition variable (no spinning, so
 * the pool does not steal cores from MPI ranks that share the machine).
 */
#ifndef PX_POOL_H
#define PX_POOL_H

#include "base/common.h"

typedef struct px_pool px_pool;

/* Task body: called once for each task index in [0, n_tasks), from some thread of the pool;
 * `thread` in [0, px_pool_size) identifies the thread (for per-thread scratch buffers). */
typedef void (*px_task_fn)(void *ctx, size_t task, int thread);

/* Creates a pool of `n_threads` threads in all, the caller included (1 = run everything on
 * the caller). The caller owns the pool and destroys it with px_pool_destroy. */
px_status px_pool_create(px_pool **out, int n_threads);
void px_pool_destroy(px_pool *pool);

/* Number of threads, the caller included. A NULL pool has size 1. */
int px_pool_size(const px_pool *pool);

/* Runs fn(ctx, t, thread) for t = 0..n_tasks-1 and returns when all are done. A NULL pool runs
 * the tasks in order on the caller. Not reentrant: a task must not call px_pool_run on the
 * same pool. */
void px_pool_run(px_pool *pool, size_t n_tasks, px_task_fn fn, void *ctx);

/* Number of online cores of this machine. */
int px_cpu_count(void);

#endif
