/* median.c - coordinate-wise median (ALGORITHMS.md section 3): per coordinate, the middle value
 * of the n inputs, or the average of the two middle values when n is even. Sixteen coordinates
 * at a time through the sorting network of sortnet.c. */
#include <stdlib.h>

#include "coord_math.h"
#include "internal.h"

static void px__median_lanes(const float (*v)[PX_LANES], size_t n, void *arg, float out[PX_LANES])
{
    (void)arg;
    for (int l = 0; l < PX_LANES; l++)
        out[l] = n % 2 ? v[n / 2][l] : px_cw_median_mid(v[n / 2 - 1][l], v[n / 2][l]);
}

static px_status px__median_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   const px_layer_table *layers, px_pool *pool)
{
    px__coord *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "median: cannot allocate");
    px_status st = px__coord_init(c, n_max, d, pool, "median scratch");
    if (st < 0) {
        free(c);
        return st;
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__median_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                uint64_t step)
{
    return px__coord_run(ctx, x, n, d, out, px__median_lanes, NULL, false);
}

static px_status px__median_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                         float *out, uint64_t step)
{
    return px__coord_run(ctx, x, n, d, out, px__median_lanes, NULL, true);
}

static void px__median_destroy(void *ctx)
{
    px__coord_free(ctx);
    free(ctx);
}

const px_agg_rule px_agg_rule_median = {
    .name = "median",
    .summary = "coordinate-wise median (mean of the two middle values when n is even)",
    .coordinatewise = true,
    .check = NULL,
    .create = px__median_create,
    .run = px__median_run,
    .destroy = px__median_destroy,
    .run_screened = px__median_run_screened,
};
