/* pre_clip.c - static norm clipping, a pre-aggregation step (ALGORITHMS.md section 3): an input
 * whose norm exceeds clip_norm is scaled down to norm clip_norm; the others pass unchanged (by
 * pointer, no copy). An input whose norm overflowed float becomes zero. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
    px__sqdist *dist;
    px__mix *mix;
    double clip;
    size_t d;
    float *buf; /* n_max x d: the clipped copies */
    double *d2;
    float *A;
    float **outs;
    const float **src;
} px__clip_ctx;

static px_status px__clip_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    *n_out = n;
    return PX_OK;
}

static void px__clip_destroy(void *ctx)
{
    px__clip_ctx *c = ctx;
    if (!c) return;
    px__sqdist_destroy(c->dist);
    px__mix_destroy(c->mix);
    px_free(c->buf);
    free(c->d2);
    free(c->A);
    free(c->outs);
    free(c->src);
    free(c);
}

static px_status px__clip_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                 px_pool *pool)
{
    px__clip_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "clip: cannot allocate");
    c->clip = p->clip_norm;
    c->d = d;
    px_status st = px__sqdist_create(&c->dist, n_max, d, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n_max, 0, n_max, d, NULL, pool);
    if (st < 0) {
        px__clip_destroy(c);
        return px_error_context(st, "clip");
    }
    c->buf = px_alloc(n_max * d * sizeof(float), "clipped inputs");
    c->d2 = malloc(n_max * sizeof *c->d2);
    c->A = malloc(n_max * n_max * sizeof *c->A);
    c->outs = malloc(n_max * sizeof *c->outs);
    c->src = malloc(n_max * sizeof *c->src);
    if (!c->buf || !c->d2 || !c->A || !c->outs || !c->src) {
        px__clip_destroy(c);
        return px_error(PX_ENOMEM, "clip: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__clip_run(void *ctx, const float *const *in, size_t n, size_t d,
                              const float **out, size_t *n_out, uint64_t step, bool screen)
{
    px__clip_ctx *c = ctx;
    px__sqdist_run(c->dist, in, n, NULL, c->d2);
    if (screen)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(c->d2[i])) return PX_AGG_NONFINITE;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double norm = sqrt(c->d2[i]);
        if (norm <= c->clip) {
            out[i] = in[i];
            continue;
        }
        for (size_t j = 0; j < n; j++)
            c->A[k * n + j] = 0.0f;
        c->A[k * n + i] = isfinite(norm) ? (float)(c->clip / norm) : 0.0f;
        c->outs[k] = c->buf + i * d;
        out[i] = c->buf + i * d;
        k++;
    }
    if (k) px__mix_run(c->mix, in, n, 0, NULL, NULL, c->A, k, c->outs);
    *n_out = n;
    return PX_OK;
}

const px__pre_step px__pre_clip = {
    .name = "clip",
    .summary = "static clipping: inputs with norm above clip_norm are scaled to clip_norm",
    .check = px__clip_check,
    .create = px__clip_create,
    .run = px__clip_run,
    .destroy = px__clip_destroy,
    .screens = true,
};
