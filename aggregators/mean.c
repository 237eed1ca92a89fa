/* mean.c - the arithmetic mean: the non-robust baseline (ALGORITHMS.md section 3). */
#include <stdlib.h>

#include "aggregator.h"

#define PX_MEAN_TILE 4096 /* columns per task: 16 KB per row stays in L1 while summing */

typedef struct {
    px_pool *pool;
} px__mean_ctx;

typedef struct {
    const float *const *x;
    size_t n, d;
    float *out;
} px__mean_job;

static void px__mean_tile(void *arg, size_t t, int thread)
{
    (void)thread;
    px__mean_job *j = arg;
    size_t lo = t * PX_MEAN_TILE, hi = lo + PX_MEAN_TILE < j->d ? lo + PX_MEAN_TILE : j->d;
    float inv = 1.0f / (float)j->n;
    float *out = j->out;
    const float *x0 = j->x[0];
    for (size_t c = lo; c < hi; c++) out[c] = x0[c];
    for (size_t i = 1; i < j->n; i++) {
        const float *xi = j->x[i];
        for (size_t c = lo; c < hi; c++) out[c] += xi[c];
    }
    for (size_t c = lo; c < hi; c++) out[c] *= inv;
}

static px_status px__mean_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                 const px_layer_table *layers, px_pool *pool)
{
    px__mean_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "mean: cannot allocate");
    c->pool = pool;
    *ctx = c;
    return PX_OK;
}

static px_status px__mean_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              uint64_t step)
{
    px__mean_ctx *c = ctx;
    px__mean_job j = {x, n, d, out};
    px_pool_run(c->pool, (d + PX_MEAN_TILE - 1) / PX_MEAN_TILE, px__mean_tile, &j);
    return PX_OK;
}

const px_agg_rule px_agg_rule_mean = {
    .name = "mean",
    .summary = "arithmetic mean (not robust: one input can move it anywhere)",
    .check = NULL,
    .create = px__mean_create,
    .run = px__mean_run,
    .destroy = free,
};
