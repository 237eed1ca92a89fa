/* krum.c - Krum and Multi-Krum (Blanchard et al. 2017; ALGORITHMS.md section 3).
 *
 * Krum picks the input whose squared distances to its n - f - 2 nearest neighbours add up to the
 * least; Multi-Krum averages the q inputs with the best such scores (q = n - f by default).
 * Distances come from one Gram pass (||a-b||^2 = ||a||^2 + ||b||^2 - 2<a,b>, in double); the
 * output is one more pass that copies or averages the chosen rows. Ties go to the lower index.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    px__gram *gram;
    px__mix *mix;
    size_t f, q;
    bool multi;
    double *K, *D, *score, *scratch;
    size_t *idx;
    float *w;
} px__krum_ctx;

static px_status px__krum_check_named(const char *name, const px_agg_params *p, size_t n)
{
    if (n < 2 * (size_t)p->f + 3)
        return px_error(PX_EINVAL, "%s: needs n >= 2f+3, got n = %zu with f = %u", name, n, p->f);
    return PX_OK;
}

static px_status px__krum_check(const px_agg_params *p, size_t n)
{
    return px__krum_check_named("krum", p, n);
}

static px_status px__multi_krum_check(const px_agg_params *p, size_t n)
{
    return px__krum_check_named("multi_krum", p, n);
}

static void px__krum_destroy(void *ctx)
{
    px__krum_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__mix_destroy(c->mix);
    free(c->K);
    free(c->D);
    free(c->score);
    free(c->scratch);
    free(c->idx);
    free(c->w);
    free(c);
}

static px_status px__krum_create_any(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                     px_pool *pool, bool multi)
{
    const char *name = multi ? "multi_krum" : "krum";
    px__krum_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "%s: cannot allocate", name);
    c->f = p->f;
    c->q = p->q;
    c->multi = multi;
    px_status st = px__gram_create(&c->gram, n_max, 0, d, NULL, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n_max, 0, 1, d, NULL, pool);
    if (st < 0) {
        px__krum_destroy(c);
        return px_error_context(st, "%s", name);
    }
    c->K = malloc(n_max * n_max * sizeof *c->K);
    c->D = malloc(n_max * n_max * sizeof *c->D);
    c->score = malloc(n_max * sizeof *c->score);
    c->scratch = malloc(n_max * sizeof *c->scratch);
    c->idx = malloc(n_max * sizeof *c->idx);
    c->w = malloc(n_max * sizeof *c->w);
    if (!c->K || !c->D || !c->score || !c->scratch || !c->idx || !c->w) {
        px__krum_destroy(c);
        return px_error(PX_ENOMEM, "%s: cannot allocate", name);
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__krum_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                 const px_layer_table *layers, px_pool *pool)
{
    return px__krum_create_any(ctx, p, n_max, d, pool, false);
}

static px_status px__multi_krum_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                       const px_layer_table *layers, px_pool *pool)
{
    return px__krum_create_any(ctx, p, n_max, d, pool, true);
}

/* the weights of the output on the inputs, from their Gram matrix */
static void px__krum_weights(px__krum_ctx *c, const double *K, size_t n, double *w)
{
    px__gram_distances(K, n, n, c->D);
    for (size_t i = 0; i < n; i++)
        c->idx[i] = i;
    px__krum_scores(c->D, n, c->idx, n, n - c->f - 2, c->score, c->scratch);
    px__argsort(c->score, c->idx, n);
    size_t q = 1;
    if (c->multi) {
        q = c->q ? c->q : n - c->f;
        if (q > n) q = n;
    }
    for (size_t i = 0; i < n; i++)
        w[i] = 0.0;
    for (size_t a = 0; a < q; a++)
        w[c->idx[a]] = 1.0 / (double)q;
}

static px_status px__krum_any(void *ctx, const float *const *x, size_t n, float *out, bool screen)
{
    px__krum_ctx *c = ctx;
    px__gram_run(c->gram, x, n, 0, NULL, NULL, c->K);
    if (screen && !px__diag_finite(c->K, n, n)) return PX_AGG_NONFINITE;
    px__krum_weights(c, c->K, n, c->score); /* score: n doubles, free again here */
    for (size_t i = 0; i < n; i++)
        c->w[i] = (float)c->score[i];
    float *outs[1] = {out};
    px__mix_run(c->mix, x, n, 0, NULL, NULL, c->w, 1, outs);
    return PX_OK;
}

static px_status px__krum_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              uint64_t step)
{
    return px__krum_any(ctx, x, n, out, false);
}

static px_status px__krum_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                       float *out, uint64_t step)
{
    return px__krum_any(ctx, x, n, out, true);
}

static px_status px__krum_run_gram(void *ctx, const double *K, size_t n, double *w, uint64_t step)
{
    px__krum_weights(ctx, K, n, w);
    return PX_OK;
}

static void px__krum_set_f(void *ctx, uint32_t f)
{
    ((px__krum_ctx *)ctx)->f = f;
}

const px_agg_rule px_agg_rule_krum = {
    .name = "krum",
    .summary = "the input closest (sum of squared distances) to its n-f-2 nearest neighbours",
    .check = px__krum_check,
    .create = px__krum_create,
    .run = px__krum_run,
    .destroy = px__krum_destroy,
    .run_screened = px__krum_run_screened,
    .run_gram = px__krum_run_gram,
    .set_f = px__krum_set_f,
};

const px_agg_rule px_agg_rule_multi_krum = {
    .name = "multi_krum",
    .summary = "mean of the q inputs with the best Krum scores (q = n-f by default)",
    .check = px__multi_krum_check,
    .create = px__multi_krum_create,
    .run = px__krum_run,
    .destroy = px__krum_destroy,
    .run_screened = px__krum_run_screened,
    .run_gram = px__krum_run_gram,
    .set_f = px__krum_set_f,
};
