/* pre_bucketing.c - bucketing (Karimireddy et al., ICLR 2022), a pre-aggregation step
 * (ALGORITHMS.md section 3): the inputs are shuffled (seeded stream PX_STREAM_AGG with a = 0,
 * b = step) and cut into ceil(n/s) consecutive groups of s (the last may be smaller); each group
 * is replaced by its mean. */
#include <stdlib.h>

#include "internal.h"
#include "runtime/rng.h"

typedef struct {
    px__mix *mix;
    size_t s;
    uint64_t seed;
    float *buf; /* ceil(n_max/s) x d */
    size_t *perm;
    float *A;
    float **outs;
} px__bucket_ctx;

static px_status px__bucket_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    size_t s = p->bucket_size;
    *n_out = (n + s - 1) / s;
    return PX_OK;
}

static void px__bucket_destroy(void *ctx)
{
    px__bucket_ctx *c = ctx;
    if (!c) return;
    px__mix_destroy(c->mix);
    px_free(c->buf);
    free(c->perm);
    free(c->A);
    free(c->outs);
    free(c);
}

static px_status px__bucket_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   px_pool *pool)
{
    px__bucket_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "bucketing: cannot allocate");
    c->s = p->bucket_size;
    c->seed = p->seed;
    size_t k_max = (n_max + c->s - 1) / c->s;
    px_status st = px__mix_create(&c->mix, n_max, 0, k_max, d, NULL, pool);
    if (st < 0) {
        px__bucket_destroy(c);
        return px_error_context(st, "bucketing");
    }
    c->buf = px_alloc(k_max * d * sizeof(float), "bucket means");
    c->perm = malloc(n_max * sizeof *c->perm);
    c->A = malloc(k_max * n_max * sizeof *c->A);
    c->outs = malloc(k_max * sizeof *c->outs);
    if (!c->buf || !c->perm || !c->A || !c->outs) {
        px__bucket_destroy(c);
        return px_error(PX_ENOMEM, "bucketing: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__bucket_run(void *ctx, const float *const *in, size_t n, size_t d,
                                const float **out, size_t *n_out, uint64_t step, bool screen)
{
    px__bucket_ctx *c = ctx;
    px_rng r;
    px_rng_init(&r, c->seed, PX_STREAM_AGG, 0, step);
    for (size_t i = 0; i < n; i++)
        c->perm[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)px_rng_below(&r, i);
        size_t t = c->perm[i - 1];
        c->perm[i - 1] = c->perm[j];
        c->perm[j] = t;
    }
    size_t k = (n + c->s - 1) / c->s;
    for (size_t b = 0; b < k; b++) {
        size_t lo = b * c->s, hi = lo + c->s < n ? lo + c->s : n;
        for (size_t j = 0; j < n; j++)
            c->A[b * n + j] = 0.0f;
        for (size_t a = lo; a < hi; a++)
            c->A[b * n + c->perm[a]] = 1.0f / (float)(hi - lo);
        c->outs[b] = c->buf + b * d;
        out[b] = c->outs[b];
    }
    px__mix_run(c->mix, in, n, 0, NULL, NULL, c->A, k, c->outs);
    *n_out = k;
    return PX_OK;
}

const px__pre_step px__pre_bucketing = {
    .name = "bucketing",
    .summary = "bucketing: means of random groups of bucket_size inputs (a new draw per step)",
    .check = px__bucket_check,
    .create = px__bucket_create,
    .run = px__bucket_run,
    .destroy = px__bucket_destroy,
    .screens = false,
};
