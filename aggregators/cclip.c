/* cclip.c - centered clipping (Karimireddy et al., ICML 2021; ALGORITHMS.md section 3): from the
 * previous step's aggregate v (zero at the first step), L rounds of
 *   v <- v + (1/n) sum_i clip_tau(g_i - v),   clip_tau(z) = z min(1, tau / ||z||).
 * Each round is one pass for the n distances ||g_i - v|| and one pass that writes
 *   v <- (1 - sum_i s_i / n) v + sum_i (s_i / n) g_i,   s_i = min(1, tau / ||g_i - v||).
 * The aggregate carried between steps lives in the context.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    px__sqdist *dist;
    px__mix *mix;
    double tau;
    uint32_t rounds;
    size_t d;
    float *v; /* the previous aggregate */
    double *d2;
    const float **rows;
    float *A;
} px__cclip_ctx;

static void px__cclip_destroy(void *ctx)
{
    px__cclip_ctx *c = ctx;
    if (!c) return;
    px__sqdist_destroy(c->dist);
    px__mix_destroy(c->mix);
    px_free(c->v);
    free(c->d2);
    free(c->rows);
    free(c->A);
    free(c);
}

static px_status px__cclip_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                  const px_layer_table *layers, px_pool *pool)
{
    px__cclip_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "cclip: cannot allocate");
    c->tau = p->tau;
    c->rounds = p->cclip_iters;
    c->d = d;
    px_status st = px__sqdist_create(&c->dist, n_max, d, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n_max + 1, 0, 2, d, NULL, pool);
    if (st < 0) {
        px__cclip_destroy(c);
        return px_error_context(st, "cclip");
    }
    c->v = px_alloc(d * sizeof(float), "cclip centre");
    c->d2 = malloc(n_max * sizeof *c->d2);
    c->rows = malloc((n_max + 1) * sizeof *c->rows);
    c->A = malloc(2 * (n_max + 1) * sizeof *c->A);
    if (!c->v || !c->d2 || !c->rows || !c->A) {
        px__cclip_destroy(c);
        return px_error(PX_ENOMEM, "cclip: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__cclip_any(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                               bool screen)
{
    px__cclip_ctx *c = ctx;
    for (size_t i = 0; i < n; i++)
        c->rows[i] = x[i];
    c->rows[n] = c->v;
    size_t r = n + 1;
    for (uint32_t l = 0; l < c->rounds; l++) {
        px__sqdist_run(c->dist, x, n, c->v, c->d2);
        if (screen && l == 0)
            for (size_t i = 0; i < n;
                 i++) /* the centre is finite: a non-finite distance is an input's */
                if (!isfinite(c->d2[i])) return PX_AGG_NONFINITE;
        double sum_s = 0;
        for (size_t i = 0; i < n; i++) {
            double dist = sqrt(c->d2[i]);
            /* an input at infinite distance (its norm overflowed float) is clipped to nothing */
            double s = dist > c->tau ? c->tau / dist : 1.0;
            if (!isfinite(dist)) s = 0.0;
            c->A[i] = (float)(s / (double)n);
            sum_s += s;
        }
        c->A[n] = (float)(1.0 - sum_s / (double)n);
        memcpy(c->A + r, c->A, r * sizeof *c->A);
        float *outs[2] = {c->v, out};
        px__mix_run(c->mix, c->rows, r, 0, NULL, NULL, c->A, l + 1 == c->rounds ? 2 : 1, outs);
    }
    if (c->rounds == 0) memcpy(out, c->v, d * sizeof(float));
    return PX_OK;
}

static px_status px__cclip_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                               uint64_t step)
{
    return px__cclip_any(ctx, x, n, d, out, false);
}

static px_status px__cclip_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                        float *out, uint64_t step)
{
    px__cclip_ctx *c = ctx;
    if (c->rounds == 0) return PX_AGG_NONFINITE; /* no pass to screen in: let px_agg scan */
    return px__cclip_any(ctx, x, n, d, out, true);
}

/* State: the centre v, d floats. */
static size_t px__cclip_state_bytes(const void *ctx)
{
    const px__cclip_ctx *c = ctx;
    return c->d * 4;
}

static void px__cclip_state_save(const void *ctx, unsigned char *out)
{
    const px__cclip_ctx *c = ctx;
    for (size_t j = 0; j < c->d; j++)
        px__put_f32(out + 4 * j, c->v[j]);
}

static px_status px__cclip_state_load(void *ctx, const unsigned char *in, size_t len)
{
    px__cclip_ctx *c = ctx;
    if (len != c->d * 4)
        return px_error(PX_EINVAL, "cclip: %zu bytes of centre, expected %zu (d = %zu floats)", len,
                        c->d * 4, c->d);
    /* the screened run relies on a finite centre (a non-finite distance is then an input's),
     * and a NaN centre would make every later aggregate NaN */
    for (size_t j = 0; j < c->d; j++) {
        float v = px__get_f32(in + 4 * j);
        if (!isfinite(v))
            return px_error(PX_EINVAL,
                            "cclip: the saved centre has a non-finite value at coordinate %zu "
                            "(%g)",
                            j, (double)v);
    }
    for (size_t j = 0; j < c->d; j++)
        c->v[j] = px__get_f32(in + 4 * j);
    return PX_OK;
}

const px_agg_rule px_agg_rule_cclip = {
    .name = "cclip",
    .summary = "centered clipping: L rounds of v += mean_i clip_tau(g_i - v) from the previous "
               "aggregate",
    .check = NULL,
    .create = px__cclip_create,
    .run = px__cclip_run,
    .destroy = px__cclip_destroy,
    .run_screened = px__cclip_run_screened,
    .state_bytes = px__cclip_state_bytes,
    .state_save = px__cclip_state_save,
    .state_load = px__cclip_state_load,
};
