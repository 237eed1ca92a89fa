/* trimmed_mean.c - coordinate-wise trimmed mean (ALGORITHMS.md section 3): per coordinate, drop
 * the f largest and the f smallest of the n values and average the n - 2f others. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
    px__coord coord;
    size_t f;
} px__trimmed_ctx;

static px_status px__trimmed_check(const px_agg_params *p, size_t n)
{
    if (n < 2 * (size_t)p->f + 1)
        return px_error(PX_EINVAL, "trimmed_mean: needs n >= 2f+1, got n = %zu with f = %u", n,
                        p->f);
    return PX_OK;
}

static void px__trimmed_lanes(const float (*v)[PX_LANES], size_t n, void *arg, float out[PX_LANES])
{
    size_t f = *(const size_t *)arg;
    float sum[PX_LANES] = {0};
    for (size_t t = f; t < n - f; t++)
        for (int l = 0; l < PX_LANES; l++)
            sum[l] += v[t][l];
    float inv = 1.0f / (float)(n - 2 * f);
    for (int l = 0; l < PX_LANES; l++)
        out[l] = sum[l] * inv;
    int overflow = 0; /* a float sum of values near +-FLT_MAX: those lanes again, in double */
    for (int l = 0; l < PX_LANES; l++)
        overflow |= !(fabsf(out[l]) <= FLT_MAX);
    for (int l = 0; overflow && l < PX_LANES; l++)
        if (!(fabsf(out[l]) <= FLT_MAX)) out[l] = px__lane_mean_double(v, f, n - f, (size_t)l);
}

static px_status px__trimmed_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                    const px_layer_table *layers, px_pool *pool)
{
    px__trimmed_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "trimmed_mean: cannot allocate");
    px_status st = px__coord_init(&c->coord, n_max, d, pool, "trimmed_mean scratch");
    if (st < 0) {
        free(c);
        return st;
    }
    c->f = p->f;
    *ctx = c;
    return PX_OK;
}

static px_status px__trimmed_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                 uint64_t step)
{
    px__trimmed_ctx *c = ctx;
    return px__coord_run(&c->coord, x, n, d, out, px__trimmed_lanes, &c->f, false);
}

static px_status px__trimmed_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                          float *out, uint64_t step)
{
    px__trimmed_ctx *c = ctx;
    return px__coord_run(&c->coord, x, n, d, out, px__trimmed_lanes, &c->f, true);
}

static void px__trimmed_destroy(void *ctx)
{
    px__trimmed_ctx *c = ctx;
    px__coord_free(&c->coord);
    free(c);
}

static void px__trimmed_mean_set_f(void *ctx, uint32_t f)
{
    ((px__trimmed_ctx *)ctx)->f = f;
}

const px_agg_rule px_agg_rule_trimmed_mean = {
    .name = "trimmed_mean",
    .summary = "coordinate-wise mean after dropping the f largest and f smallest values",
    .coordinatewise = true,
    .check = px__trimmed_check,
    .create = px__trimmed_create,
    .run = px__trimmed_run,
    .destroy = px__trimmed_destroy,
    .run_screened = px__trimmed_run_screened,
    .set_f = px__trimmed_mean_set_f,
};
