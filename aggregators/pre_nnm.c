/* pre_nnm.c - nearest-neighbour mixing (Allouah et al., AISTATS 2023), a pre-aggregation step
 * (ALGORITHMS.md section 3): every input is replaced by the mean of its n - f nearest inputs
 * (itself included; ties by index). Planned on the n x n Gram matrix of its inputs as the
 * mixing matrix; no pass over the data of its own. */
#include <string.h>

#include "internal.h"

static px_status px__nnm_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    *n_out = n;
    if (n < (size_t)p->f + 1)
        return px_error(PX_EINVAL, "nnm: needs n >= f+1, got n = %zu with f = %u", n, p->f);
    return PX_OK;
}

static void px__nnm_plan(const px_agg_params *p, const double *K, size_t n, uint64_t step,
                         double *T, size_t *n_out, double *ws, size_t *iws)
{
    double *D = ws;
    px__gram_distances(K, n, n, D);
    size_t k = n - p->f;
    memset(T, 0, n * n * sizeof *T);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            iws[j] = j;
        px__argsort(D + i * n, iws, n);
        for (size_t a = 0; a < k; a++)
            T[i * n + iws[a]] = 1.0 / (double)k;
    }
    *n_out = n;
}

const px__pre_step px__pre_nnm = {
    .name = "nnm",
    .summary = "nearest-neighbour mixing: each input becomes the mean of its n-f nearest",
    .check = px__nnm_check,
    .needs_gram = true,
    .plan = px__nnm_plan,
};
