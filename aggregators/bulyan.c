/* bulyan.c - Bulyan (El Mhamdi et al. 2018; ALGORITHMS.md section 3): select theta = n - 2f
 * inputs by repeated Krum (each round scores the inputs not yet selected against each other with
 * their n_r - f - 2 nearest neighbours, n_r the inputs left, at least one), then per coordinate
 * average the beta = theta - 2f selected values closest to their median.
 *
 * One Gram pass gives every distance; the selection is n x n work; the second phase is one
 * coordinate-wise pass over the theta selected rows with the sorting network.
 */
#include <stdlib.h>

#include "internal.h"

typedef struct {
    px__gram *gram;
    px__coord coord;
    size_t f;
    double *K, *D, *score, *scratch;
    size_t *left;
    const float **chosen;
} px__bulyan_ctx;

static px_status px__bulyan_check(const px_agg_params *p, size_t n)
{
    if (n < 4 * (size_t)p->f + 3)
        return px_error(PX_EINVAL, "bulyan: needs n >= 4f+3, got n = %zu with f = %u", n, p->f);
    return PX_OK;
}

static void px__bulyan_destroy(void *ctx)
{
    px__bulyan_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__coord_free(&c->coord);
    free(c->K);
    free(c->D);
    free(c->score);
    free(c->scratch);
    free(c->left);
    free(c->chosen);
    free(c);
}

static px_status px__bulyan_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   const px_layer_table *layers, px_pool *pool)
{
    px__bulyan_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "bulyan: cannot allocate");
    c->f = p->f;
    px_status st = px__gram_create(&c->gram, n_max, 0, d, NULL, pool);
    if (st == PX_OK) st = px__coord_init(&c->coord, n_max, d, pool, "bulyan scratch");
    if (st < 0) {
        px__bulyan_destroy(c);
        return px_error_context(st, "bulyan");
    }
    c->K = malloc(n_max * n_max * sizeof *c->K);
    c->D = malloc(n_max * n_max * sizeof *c->D);
    c->score = malloc(n_max * sizeof *c->score);
    c->scratch = malloc(n_max * sizeof *c->scratch);
    c->left = malloc(n_max * sizeof *c->left);
    c->chosen = malloc(n_max * sizeof *c->chosen);
    if (!c->K || !c->D || !c->score || !c->scratch || !c->left || !c->chosen) {
        px__bulyan_destroy(c);
        return px_error(PX_ENOMEM, "bulyan: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static void px__bulyan_lanes(const float (*v)[PX_LANES], size_t n, void *arg, float out[PX_LANES])
{
    size_t beta = *(const size_t *)arg;
    px__lane_mean_near_median(v, n, beta, out);
}

static px_status px__bulyan_any(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                bool screen)
{
    px__bulyan_ctx *c = ctx;
    size_t f = c->f, theta = n - 2 * f, beta = theta - 2 * f;
    px__gram_run(c->gram, x, n, 0, NULL, NULL, c->K);
    if (screen && !px__diag_finite(c->K, n, n)) return PX_AGG_NONFINITE;
    px__gram_distances(c->K, n, n, c->D);
    size_t n_left = n;
    for (size_t i = 0; i < n; i++)
        c->left[i] = i;
    for (size_t s = 0; s < theta; s++) {
        size_t k = n_left >= f + 3 ? n_left - f - 2 : 1;
        if (k > n_left - 1) k = n_left - 1;
        px__krum_scores(c->D, n, c->left, n_left, k, c->score, c->scratch);
        size_t best = 0;
        for (size_t a = 1; a < n_left; a++)
            if (c->score[a] < c->score[best]) best = a;
        c->chosen[s] = x[c->left[best]];
        for (size_t a = best; a + 1 < n_left; a++)
            c->left[a] = c->left[a + 1];
        n_left--;
    }
    return px__coord_run(&c->coord, c->chosen, theta, d, out, px__bulyan_lanes, &beta, false);
}

static px_status px__bulyan_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                uint64_t step)
{
    return px__bulyan_any(ctx, x, n, d, out, false);
}

static px_status px__bulyan_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                         float *out, uint64_t step)
{
    return px__bulyan_any(ctx, x, n, d, out, true);
}

static void px__bulyan_set_f(void *ctx, uint32_t f)
{
    ((px__bulyan_ctx *)ctx)->f = f;
}

const px_agg_rule px_agg_rule_bulyan = {
    .name = "bulyan",
    .summary = "n-2f inputs chosen by repeated Krum, then per coordinate the mean of the "
               "n-4f closest to their median",
    .check = px__bulyan_check,
    .create = px__bulyan_create,
    .run = px__bulyan_run,
    .destroy = px__bulyan_destroy,
    .run_screened = px__bulyan_run_screened,
    .set_f = px__bulyan_set_f,
};
