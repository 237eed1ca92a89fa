/* fedld.c - FedLD principal-gradient aggregation (Zeng et al., MICCAI 2024; ALGORITHMS.md
 * section 2.2), per layer in closed form.
 *
 * For layer l with the n x d_l updates G_l: H = G_l G_l^T / n = sum_j s_j e_j e_j^T; the k =
 * max(1, floor(n kappa)) leading directions v_j = G_l^T e_j are kept with weights c_j = s_j /
 * sum(all s); each client is revised to r_i = ||g_i|| sum_j c_j sign<g_i, v_j> v_j / ||v_j||
 * and the aggregate is mean_i r_i = G_l^T alpha with
 *   alpha = sum_j (c_j beta_j / ||v_j||) e_j,  beta_j = (1/n) sum_i ||g_i|| sign<g_i, v_j>,
 * where <g_i, v_j> = (K e_j)_i and ||v_j|| = sqrt(n s_j) come from the layer's Gram K. Flipping
 * the sign of e_j flips beta_j too, so the result does not depend on the eigen-solver's sign
 * convention. One Gram pass for all layers at once, an n x n eigenproblem per layer, one
 * combination pass with per-layer weights.
 *
 * The reference's history EMA (h <- 0.99 h + 0.01 delta) only serves as an all-zero flag, so it
 * is kept as one flag per layer: a layer takes the plain mean until an aggregate of it has been
 * non-zero (checked as alpha^T K alpha > 0). Fixed reference bugs: only the inputs handed in are
 * used (partial participation works), zero eigenvalues (below 1e-12 of the largest) and zero
 * projections are skipped instead of giving 0/0, and k is at least 1.
 */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PX_FEDLD_DROP 1e-12

typedef struct {
    px_layer_table layers;
    px__gram *gram;
    px__mix *mix;
    double kappa;
    bool *history;
    double *K, *H, *w, *work, *alpha, *Ke;
    lapack_int *iwork;
    lapack_int lwork, liwork;
    float *A;
} px__fedld_ctx;

static void px__fedld_destroy(void *ctx)
{
    px__fedld_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__mix_destroy(c->mix);
    free(c->history);
    free(c->K);
    free(c->H);
    free(c->w);
    free(c->work);
    free(c->alpha);
    free(c->Ke);
    free(c->iwork);
    free(c->A);
    free(c);
}

static px_status px__fedld_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                  const px_layer_table *layers, px_pool *pool)
{
    px__fedld_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "fedld: cannot allocate");
    c->layers = *layers;
    c->kappa = p->kappa;
    size_t L = layers->count, n = n_max;
    px_status st = px__gram_create(&c->gram, n, 0, d, layers, pool);
    if (st == PX_OK) st = px__mix_create(&c->mix, n, 0, 1, d, layers, pool);
    if (st < 0) {
        px__fedld_destroy(c);
        return px_error_context(st, "fedld");
    }
    c->lwork = (lapack_int)(1 + 6 * n + 2 * n * n);
    c->liwork = (lapack_int)(3 + 5 * n);
    c->history = calloc(L ? L : 1, sizeof *c->history);
    c->K = malloc((L ? L : 1) * n * n * sizeof *c->K);
    c->H = malloc(n * n * sizeof *c->H);
    c->w = malloc(n * sizeof *c->w);
    c->work = malloc((size_t)c->lwork * sizeof *c->work);
    c->iwork = malloc((size_t)c->liwork * sizeof *c->iwork);
    c->alpha = malloc(n * sizeof *c->alpha);
    c->Ke = malloc(n * sizeof *c->Ke);
    c->A = malloc((L ? L : 1) * n * sizeof *c->A);
    if (!c->history || !c->K || !c->H || !c->w || !c->work || !c->iwork || !c->alpha || !c->Ke ||
        !c->A) {
        px__fedld_destroy(c);
        return px_error(PX_ENOMEM, "fedld: cannot allocate");
    }
    for (size_t l = 0; l < L; l++)
        c->history[l] = p->fedld_history;
    /* the first LAPACK call pages the library's code in: pay it here, not in the first step */
    c->H[0] = 1.0;
    LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', 1, c->H, 1, c->w, c->work, c->lwork, c->iwork,
                        c->liwork);
    *ctx = c;
    return PX_OK;
}

/* alpha for one layer from its Gram K (n x n); returns PX_OK or a LAPACK failure. */
static px_status px__fedld_layer(px__fedld_ctx *c, const double *K, size_t n, double *alpha)
{
    memcpy(c->H, K, n * n * sizeof(double));
    for (size_t i = 0; i < n * n; i++)
        c->H[i] /= (double)n;
    lapack_int info =
        LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, c->H, (lapack_int)n, c->w,
                            c->work, c->lwork, c->iwork, c->liwork);
    if (info != 0)
        return px_error(PX_ERUNTIME, "fedld: eigen-decomposition failed (%d)", (int)info);
    double total = 0, smax = c->w[n - 1];
    for (size_t j = 0; j < n; j++)
        total += c->w[j];
    memset(alpha, 0, n * sizeof(double));
    if (!(total > 0) || !(smax > 0)) return PX_OK; /* an all-zero layer: the aggregate is zero */
    size_t k = (size_t)floor((double)n * c->kappa);
    if (k < 1) k = 1;
    if (k > n) k = n;
    for (size_t j = 0; j < k; j++) {
        double s = c->w[n - 1 - j];
        if (!(s > PX_FEDLD_DROP * smax)) break; /* descending: the rest are zero too */
        const double *e = c->H + (n - 1 - j) * n;
        double beta = 0;
        for (size_t i = 0; i < n; i++) {
            double proj = 0; /* <g_i, v_j> = (K e_j)_i */
            for (size_t q = 0; q < n; q++)
                proj += K[q * n + i] * e[q];
            double sg = proj > 0 ? 1.0 : (proj < 0 ? -1.0 : 0.0);
            beta += sqrt(fmax(K[i * n + i], 0.0)) * sg;
        }
        beta /= (double)n;
        double coef = (s / total) * beta / sqrt((double)n * s);
        for (size_t i = 0; i < n; i++)
            alpha[i] += coef * e[i];
    }
    return PX_OK;
}

static px_status px__fedld_any(void *ctx, const float *const *x, size_t n, float *out, bool screen)
{
    px__fedld_ctx *c = ctx;
    size_t L = c->layers.count;
    px__gram_run(c->gram, x, n, 0, NULL, NULL, c->K);
    if (screen)
        for (size_t l = 0; l < L; l++)
            if (!px__diag_finite(c->K + l * n * n, n, n)) return PX_AGG_NONFINITE;
    for (size_t l = 0; l < L; l++) {
        const double *K = c->K + l * n * n;
        float *A = c->A + l * n;
        if (!c->history[l] || c->layers.layers[l].size <= 1) {
            for (size_t i = 0; i < n; i++)
                c->alpha[i] = 1.0 / (double)n;
        } else {
            PX_CHECK(px__fedld_layer(c, K, n, c->alpha));
        }
        double q = 0; /* ||aggregate||^2 = alpha^T K alpha */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                q += c->alpha[i] * K[j * n + i] * c->alpha[j];
        if (q > 0) c->history[l] = true;
        for (size_t i = 0; i < n; i++)
            A[i] = (float)c->alpha[i];
    }
    float *outs[1] = {out};
    px__mix_run(c->mix, x, n, 0, NULL, NULL, c->A, 1, outs);
    return PX_OK;
}

static px_status px__fedld_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                               uint64_t step)
{
    return px__fedld_any(ctx, x, n, out, false);
}

static px_status px__fedld_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                        float *out, uint64_t step)
{
    return px__fedld_any(ctx, x, n, out, true);
}

/* State: the history flags, with the layer table they belong to, so that flags saved for other
 * layers are refused instead of landing on the wrong ones:
 *   u32 layer count L, then per layer: u64 size in floats, u8 flag (0 or 1). */
#define PX_FEDLD_STATE_LAYER 9

static size_t px__fedld_state_bytes(const void *ctx)
{
    const px__fedld_ctx *c = ctx;
    return 4 + c->layers.count * PX_FEDLD_STATE_LAYER;
}

static void px__fedld_state_save(const void *ctx, unsigned char *out)
{
    const px__fedld_ctx *c = ctx;
    px__put_u32(out, (uint32_t)c->layers.count);
    for (size_t l = 0; l < c->layers.count; l++) {
        unsigned char *p = out + 4 + l * PX_FEDLD_STATE_LAYER;
        px__put_u64(p, c->layers.layers[l].size);
        p[8] = c->history[l] ? 1 : 0;
    }
}

static px_status px__fedld_state_load(void *ctx, const unsigned char *in, size_t len)
{
    px__fedld_ctx *c = ctx;
    size_t L = c->layers.count;
    if (len < 4)
        return px_error(PX_EINVAL, "fedld: %zu bytes of history, too short for the layer count",
                        len);
    uint32_t saved = px__get_u32(in);
    if (saved != L)
        return px_error(PX_EINVAL, "fedld: history saved for %u layers, this aggregator has %zu",
                        saved, L);
    if (len != 4 + L * PX_FEDLD_STATE_LAYER)
        return px_error(PX_EINVAL, "fedld: %zu bytes of history for %zu layers, expected %zu", len,
                        L, 4 + L * PX_FEDLD_STATE_LAYER);
    for (size_t l = 0; l < L; l++) {
        const unsigned char *p = in + 4 + l * PX_FEDLD_STATE_LAYER;
        uint64_t size = px__get_u64(p);
        if (size != c->layers.layers[l].size)
            return px_error(PX_EINVAL,
                            "fedld: history saved for layer %zu of %llu floats, this "
                            "aggregator's layer %zu has %zu",
                            l, (unsigned long long)size, l, c->layers.layers[l].size);
        if (p[8] > 1)
            return px_error(PX_EINVAL, "fedld: history flag of layer %zu is %u, expected 0 or 1", l,
                            (unsigned)p[8]);
    }
    for (size_t l = 0; l < L; l++)
        c->history[l] = in[4 + l * PX_FEDLD_STATE_LAYER + 8] == 1;
    return PX_OK;
}

const px_agg_rule px_agg_rule_fedld = {
    .name = "fedld",
    .summary = "FedLD principal-gradient aggregation per layer (not Byzantine-robust: chain a "
               "pre-aggregation step before it)",
    .check = NULL,
    .create = px__fedld_create,
    .run = px__fedld_run,
    .destroy = px__fedld_destroy,
    .run_screened = px__fedld_run_screened,
    .state_bytes = px__fedld_state_bytes,
    .state_save = px__fedld_state_save,
    .state_load = px__fedld_state_load,
};
