/* meamed.c - MeaMed (Xie et al. 2018; ALGORITHMS.md section 3): per coordinate, the mean of the
 * n - f values closest to the coordinate's median. */
#include <stdlib.h>

#include "internal.h"

typedef struct {
    px__coord coord;
    size_t f;
} px__meamed_ctx;

static px_status px__meamed_check(const px_agg_params *p, size_t n)
{
    if (n < 2 * (size_t)p->f + 1)
        return px_error(PX_EINVAL, "meamed: needs n >= 2f+1, got n = %zu with f = %u", n, p->f);
    return PX_OK;
}

static void px__meamed_lanes(const float (*v)[PX_LANES], size_t n, void *arg, float out[PX_LANES])
{
    size_t f = *(const size_t *)arg;
    px__lane_mean_near_median(v, n, n - f, out);
}

static px_status px__meamed_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   const px_layer_table *layers, px_pool *pool)
{
    px__meamed_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "meamed: cannot allocate");
    px_status st = px__coord_init(&c->coord, n_max, d, pool, "meamed scratch");
    if (st < 0) {
        free(c);
        return st;
    }
    c->f = p->f;
    *ctx = c;
    return PX_OK;
}

static px_status px__meamed_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                uint64_t step)
{
    px__meamed_ctx *c = ctx;
    return px__coord_run(&c->coord, x, n, d, out, px__meamed_lanes, &c->f, false);
}

static px_status px__meamed_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                         float *out, uint64_t step)
{
    px__meamed_ctx *c = ctx;
    return px__coord_run(&c->coord, x, n, d, out, px__meamed_lanes, &c->f, true);
}

static void px__meamed_destroy(void *ctx)
{
    px__meamed_ctx *c = ctx;
    px__coord_free(&c->coord);
    free(c);
}

static void px__meamed_set_f(void *ctx, uint32_t f)
{
    ((px__meamed_ctx *)ctx)->f = f;
}

const px_agg_rule px_agg_rule_meamed = {
    .name = "meamed",
    .summary = "coordinate-wise mean of the n-f values closest to the median",
    .coordinatewise = true,
    .check = px__meamed_check,
    .create = px__meamed_create,
    .run = px__meamed_run,
    .destroy = px__meamed_destroy,
    .run_screened = px__meamed_run_screened,
    .set_f = px__meamed_set_f,
};
