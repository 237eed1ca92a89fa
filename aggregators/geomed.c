/* geomed.c - geometric median by smoothed Weiszfeld (Pillutla et al., RFA; ALGORITHMS.md
 * section 3): y minimising sum_i ||y - x_i||, iterated as y <- sum_i w_i x_i / sum_i w_i with
 * w_i = 1 / max(nu, ||y - x_i||), from the mean, until the objective improves by less than the
 * fraction tol or the iteration cap.
 *
 * y stays in the span of the inputs, y = sum_i beta_i x_i, so every iteration is n x n work on
 * the Gram matrix: ||y - x_i||^2 = beta^T K beta - 2 (K beta)_i + K_ii. One Gram pass, the
 * iterations, one combination pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    px__gram *gram;
    px__mix *mix;
    double nu, tol;
    uint32_t iters;
    double *K, *beta, *Kb, *dist, *w;
    bool *ok; /* the input's norm is finite */
    float *A;
} px__geomed_ctx;

static px_status px__geomed_check(const px_agg_params *p, size_t n)
{
    if (n < 2 * (size_t)p->f + 1)
        return px_error(PX_EINVAL, "geomed: needs n >= 2f+1, got n = %zu with f = %u", n, p->f);
    return PX_OK;
}

static void px__geomed_destroy(void *ctx)
{
    px__geomed_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__mix_destroy(c->mix);
    free(c->K);
    free(c->beta);
    free(c->Kb);
    free(c->dist);
    free(c->w);
    free(c->A);
    free(c->ok);
    free(c);
}

static px_status px__geomed_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   const px_layer_table *layers, px_pool *pool)
{
    px__geomed_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "geomed: cannot allocate");
    c->nu = p->geomed_nu;
    c->tol = p->geomed_tol;
    c->iters = p->geomed_iters;
    px_status st = px__gram_create(&c->gram, n_max, 0, d, NULL, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n_max, 0, 1, d, NULL, pool);
    if (st < 0) {
        px__geomed_destroy(c);
        return px_error_context(st, "geomed");
    }
    c->K = malloc(n_max * n_max * sizeof *c->K);
    c->beta = malloc(n_max * sizeof *c->beta);
    c->Kb = malloc(n_max * sizeof *c->Kb);
    c->dist = malloc(n_max * sizeof *c->dist);
    c->w = malloc(n_max * sizeof *c->w);
    c->A = malloc(n_max * sizeof *c->A);
    c->ok = malloc(n_max * sizeof *c->ok);
    if (!c->K || !c->beta || !c->Kb || !c->dist || !c->w || !c->A || !c->ok) {
        px__geomed_destroy(c);
        return px_error(PX_ENOMEM, "geomed: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

/* distances from y = X beta to every input; returns the objective sum_i ||y - x_i|| over the
 * usable inputs */
static double px__geomed_dist(px__geomed_ctx *c, size_t n)
{
    const double *K = c->K;
    double bkb = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += K[i * n + j] * c->beta[j];
        c->Kb[i] = s;
        bkb += c->beta[i] * s;
    }
    double obj = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c->ok[i]) {
            c->dist[i] = INFINITY;
            continue;
        }
        double d2 = bkb - 2.0 * c->Kb[i] + K[i * n + i];
        c->dist[i] = sqrt(d2 > 0 ? d2 : 0.0);
        obj += c->dist[i];
    }
    return obj;
}

/* the weights beta of the geometric median on the inputs, from their Gram matrix c->K (which
 * it modifies) */
static px_status px__geomed_weights(px__geomed_ctx *c, size_t n)
{
    /* an input whose norm overflowed float takes no part (weight 0) */
    size_t usable = 0;
    for (size_t i = 0; i < n; i++) {
        c->ok[i] = isfinite(c->K[i * n + i]);
        usable += c->ok[i];
    }
    for (size_t i = 0; i < n; i++) {
        c->beta[i] = c->ok[i] ? 1.0 / (double)usable : 0.0;
        if (!c->ok[i])
            for (size_t j = 0; j < n; j++)
                c->K[i * n + j] = c->K[j * n + i] = 0.0;
    }
    if (usable == 0) return px_error(PX_EINVAL, "geomed: no input with a finite norm");
    double obj = px__geomed_dist(c, n);
    for (uint32_t t = 0; t < c->iters; t++) {
        double sw = 0;
        for (size_t i = 0; i < n; i++) {
            c->w[i] = isfinite(c->dist[i]) ? 1.0 / fmax(c->nu, c->dist[i]) : 0.0;
            sw += c->w[i];
        }
        for (size_t i = 0; i < n; i++)
            c->beta[i] = c->w[i] / sw;
        double prev = obj;
        obj = px__geomed_dist(c, n);
        if (!(prev - obj > c->tol * prev)) break;
    }
    return PX_OK;
}

static px_status px__geomed_any(void *ctx, const float *const *x, size_t n, float *out, bool screen)
{
    px__geomed_ctx *c = ctx;
    px__gram_run(c->gram, x, n, 0, NULL, NULL, c->K);
    if (screen && !px__diag_finite(c->K, n, n)) return PX_AGG_NONFINITE;
    PX_CHECK(px__geomed_weights(c, n));
    for (size_t i = 0; i < n; i++)
        c->A[i] = (float)c->beta[i];
    float *outs[1] = {out};
    px__mix_run(c->mix, x, n, 0, NULL, NULL, c->A, 1, outs);
    return PX_OK;
}

static px_status px__geomed_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                uint64_t step)
{
    return px__geomed_any(ctx, x, n, out, false);
}

static px_status px__geomed_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                         float *out, uint64_t step)
{
    return px__geomed_any(ctx, x, n, out, true);
}

static px_status px__geomed_run_gram(void *ctx, const double *K, size_t n, double *w, uint64_t step)
{
    px__geomed_ctx *c = ctx;
    memcpy(c->K, K, n * n * sizeof *K);
    PX_CHECK(px__geomed_weights(c, n));
    memcpy(w, c->beta, n * sizeof *w);
    return PX_OK;
}

const px_agg_rule px_agg_rule_geomed = {
    .name = "geomed",
    .summary = "geometric median by smoothed Weiszfeld iterations in the Gram form",
    .check = px__geomed_check,
    .create = px__geomed_create,
    .run = px__geomed_run,
    .destroy = px__geomed_destroy,
    .run_screened = px__geomed_run_screened,
    .run_gram = px__geomed_run_gram,
};
