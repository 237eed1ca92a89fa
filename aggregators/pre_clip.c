/* pre_clip.c - static norm clipping, a pre-aggregation step (ALGORITHMS.md section 3): an input
 * whose norm exceeds clip_norm is scaled down to norm clip_norm; the others pass unchanged. An
 * input whose norm overflowed float becomes zero.
 *
 * As every step of the chain, it is planned as a matrix on the n x n Gram matrix of its inputs
 * (here diagonal: the norms are the square roots of the Gram diagonal); registry.c composes the
 * chain and reads the data only for the rule. */
#include <math.h>
#include <string.h>

#include "internal.h"

static px_status px__clip_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    *n_out = n;
    return PX_OK;
}

static void px__clip_plan(const px_agg_params *p, const double *K, size_t n, uint64_t step,
                          double *T, size_t *n_out, double *ws, size_t *iws)
{
    memset(T, 0, n * n * sizeof *T);
    for (size_t i = 0; i < n; i++) {
        double norm = sqrt(fmax(K[i * n + i], 0.0));
        T[i * n + i] = !isfinite(norm) ? 0.0 : norm > p->clip_norm ? p->clip_norm / norm : 1.0;
    }
    *n_out = n;
}

const px__pre_step px__pre_clip = {
    .name = "clip",
    .summary = "static clipping: inputs with norm above clip_norm are scaled to clip_norm",
    .check = px__clip_check,
    .needs_gram = true,
    .plan = px__clip_plan,
};
