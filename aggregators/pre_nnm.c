/* pre_nnm.c - nearest-neighbour mixing (Allouah et al., AISTATS 2023), a pre-aggregation step
 * (ALGORITHMS.md section 3): every input is replaced by the mean of its n - f nearest inputs
 * (itself included; ties by index). One Gram pass for the distances, one pass writing the n
 * mixtures. */
#include <stdlib.h>

#include "internal.h"

typedef struct {
    px__gram *gram;
    px__mix *mix;
    size_t f;
    float *buf; /* n_max x d */
    double *K, *D;
    size_t *idx;
    float *A;
    float **outs;
} px__nnm_ctx;

static px_status px__nnm_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    *n_out = n;
    if (n < (size_t)p->f + 1)
        return px_error(PX_EINVAL, "nnm: needs n >= f+1, got n = %zu with f = %u", n, p->f);
    return PX_OK;
}

static void px__nnm_destroy(void *ctx)
{
    px__nnm_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__mix_destroy(c->mix);
    px_free(c->buf);
    free(c->K);
    free(c->D);
    free(c->idx);
    free(c->A);
    free(c->outs);
    free(c);
}

static px_status px__nnm_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                px_pool *pool)
{
    px__nnm_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "nnm: cannot allocate");
    c->f = p->f;
    px_status st = px__gram_create(&c->gram, n_max, 0, d, NULL, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n_max, 0, n_max, d, NULL, pool);
    if (st < 0) {
        px__nnm_destroy(c);
        return px_error_context(st, "nnm");
    }
    c->buf = px_alloc(n_max * d * sizeof(float), "nnm mixtures");
    c->K = malloc(n_max * n_max * sizeof *c->K);
    c->D = malloc(n_max * n_max * sizeof *c->D);
    c->idx = malloc(n_max * sizeof *c->idx);
    c->A = malloc(n_max * n_max * sizeof *c->A);
    c->outs = malloc(n_max * sizeof *c->outs);
    if (!c->buf || !c->K || !c->D || !c->idx || !c->A || !c->outs) {
        px__nnm_destroy(c);
        return px_error(PX_ENOMEM, "nnm: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__nnm_run(void *ctx, const float *const *in, size_t n, size_t d,
                             const float **out, size_t *n_out, uint64_t step, bool screen)
{
    px__nnm_ctx *c = ctx;
    px__gram_run(c->gram, in, n, 0, NULL, NULL, c->K);
    if (screen && !px__diag_finite(c->K, n, n)) return PX_AGG_NONFINITE;
    px__gram_distances(c->K, n, n, c->D);
    size_t k = n - c->f;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            c->idx[j] = j;
        px__argsort(c->D + i * n, c->idx, n);
        for (size_t j = 0; j < n; j++)
            c->A[i * n + j] = 0.0f;
        for (size_t a = 0; a < k; a++)
            c->A[i * n + c->idx[a]] = 1.0f / (float)k;
        c->outs[i] = c->buf + i * d;
        out[i] = c->outs[i];
    }
    px__mix_run(c->mix, in, n, 0, NULL, NULL, c->A, n, c->outs);
    *n_out = n;
    return PX_OK;
}

const px__pre_step px__pre_nnm = {
    .name = "nnm",
    .summary = "nearest-neighbour mixing: each input becomes the mean of its n-f nearest",
    .check = px__nnm_check,
    .create = px__nnm_create,
    .run = px__nnm_run,
    .destroy = px__nnm_destroy,
    .screens = true,
};
