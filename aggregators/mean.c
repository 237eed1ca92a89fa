/* mean.c - the arithmetic mean: the non-robust baseline (ALGORITHMS.md section 3).
 *
 * One pass over column tiles, four rows at a time (four input streams, one update of the
 * L1-resident output tile per four rows). When asked to screen its own inputs it works into a
 * buffer and checks the result: a NaN or Inf in any input makes that coordinate of the sum
 * non-finite, so a finite result proves finite inputs. A coordinate whose float sum overflowed
 * (finite inputs near +-FLT_MAX) is summed again in double, so finite inputs give a finite
 * mean. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PX_MEAN_TILE 4096 /* columns per task: 16 KB of output stays in L1 while summing */

typedef struct {
    px_pool *pool;
    float *buf; /* d floats: the result while screening */
    int *bad;   /* per thread */
} px__mean_ctx;

typedef struct {
    px__mean_ctx *c;
    const float *const *x;
    size_t n, d;
    float *out;
    bool screen;
} px__mean_job;

/* The coordinates of [lo, hi) whose float mean came out non-finite, summed again in double: a
 * float sum overflows for finite inputs near +-FLT_MAX, their mean does not. Returns whether a
 * coordinate is still non-finite (then an input was NaN or Inf). */
static uint32_t px__mean_redo(const px__mean_job *j, size_t lo, size_t hi)
{
    uint32_t bad = 0;
    for (size_t c = lo; c < hi; c++) {
        if (fabsf(j->out[c]) <= FLT_MAX) continue;
        double s = 0;
        for (size_t i = 0; i < j->n; i++)
            s += j->x[i][c];
        j->out[c] = (float)(s / (double)j->n);
        bad |= !(fabsf(j->out[c]) <= FLT_MAX);
    }
    return bad;
}

static void px__mean_tile(void *arg, size_t t, int thread)
{
    px__mean_job *j = arg;
    size_t lo = t * PX_MEAN_TILE, hi = lo + PX_MEAN_TILE < j->d ? lo + PX_MEAN_TILE : j->d;
    float inv = 1.0f / (float)j->n;
    float *out = j->out;
    size_t i = 0;
    for (size_t c = lo; c < hi; c++)
        out[c] = 0.0f;
    for (; i + 4 <= j->n; i += 4) {
        const float *x0 = j->x[i], *x1 = j->x[i + 1], *x2 = j->x[i + 2], *x3 = j->x[i + 3];
        for (size_t c = lo; c < hi; c++)
            out[c] += (x0[c] + x1[c]) + (x2[c] + x3[c]);
    }
    for (; i < j->n; i++) {
        const float *xi = j->x[i];
        for (size_t c = lo; c < hi; c++)
            out[c] += xi[c];
    }
    uint32_t bad = 0;
    for (size_t c = lo; c < hi; c++) {
        out[c] *= inv;
        uint32_t bits;
        memcpy(&bits, &out[c], 4);
        bad |= (bits & 0x7F800000u) == 0x7F800000u;
    }
    if (bad) bad = px__mean_redo(j, lo, hi);
    if (bad && j->screen) j->c->bad[thread] = 1;
}

static void px__mean_destroy(void *ctx)
{
    px__mean_ctx *c = ctx;
    if (!c) return;
    px_free(c->buf);
    free(c->bad);
    free(c);
}

static px_status px__mean_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                 const px_layer_table *layers, px_pool *pool)
{
    px__mean_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "mean: cannot allocate");
    c->pool = pool;
    c->buf = px_alloc(d * sizeof(float), "mean buffer");
    c->bad = calloc((size_t)px_pool_size(pool), sizeof *c->bad);
    if (!c->buf || !c->bad) {
        px__mean_destroy(c);
        return px_error(PX_ENOMEM, "mean: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__mean_any(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              bool screen)
{
    px__mean_ctx *c = ctx;
    px__mean_job j = {c, x, n, d, screen ? c->buf : out, screen};
    int threads = px_pool_size(c->pool);
    for (int t = 0; t < threads; t++)
        c->bad[t] = 0;
    px_pool_run(c->pool, (d + PX_MEAN_TILE - 1) / PX_MEAN_TILE, px__mean_tile, &j);
    if (!screen) return PX_OK;
    for (int t = 0; t < threads; t++)
        if (c->bad[t]) return PX_AGG_NONFINITE;
    px__copy_run(c->pool, out, c->buf, d);
    return PX_OK;
}

static px_status px__mean_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              uint64_t step)
{
    return px__mean_any(ctx, x, n, d, out, false);
}

static px_status px__mean_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                       float *out, uint64_t step)
{
    return px__mean_any(ctx, x, n, d, out, true);
}

static px_status px__mean_run_gram(void *ctx, const double *K, size_t n, double *w, uint64_t step)
{
    for (size_t i = 0; i < n; i++)
        w[i] = 1.0 / (double)n;
    return PX_OK;
}

const px_agg_rule px_agg_rule_mean = {
    .name = "mean",
    .summary = "arithmetic mean (not robust: one input can move it anywhere)",
    .check = NULL,
    .create = px__mean_create,
    .run = px__mean_run,
    .destroy = px__mean_destroy,
    .run_screened = px__mean_run_screened,
    .run_gram = px__mean_run_gram,
};
