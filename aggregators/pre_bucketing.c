/* pre_bucketing.c - bucketing (Karimireddy et al., ICLR 2022), a pre-aggregation step
 * (ALGORITHMS.md section 3): the inputs are shuffled (seeded stream PX_STREAM_AGG with a = 0,
 * b = step) and cut into ceil(n/s) consecutive groups of s (the last may be smaller); each group
 * is replaced by its mean. Planned as the averaging matrix; needs no Gram matrix. */
#include <string.h>

#include "internal.h"
#include "base/rng.h"

static px_status px__bucket_check(const px_agg_params *p, size_t n, size_t *n_out)
{
    size_t s = p->bucket_size;
    *n_out = (n + s - 1) / s;
    return PX_OK;
}

static void px__bucket_plan(const px_agg_params *p, const double *K, size_t n, uint64_t step,
                            double *T, size_t *n_out, double *ws, size_t *iws)
{
    size_t s = p->bucket_size, *perm = iws;
    px_rng r;
    px_rng_init(&r, p->seed, PX_STREAM_AGG, 0, step);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)px_rng_below(&r, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t k = (n + s - 1) / s;
    memset(T, 0, k * n * sizeof *T);
    for (size_t b = 0; b < k; b++) {
        size_t lo = b * s, hi = lo + s < n ? lo + s : n;
        for (size_t a = lo; a < hi; a++)
            T[b * n + perm[a]] = 1.0 / (double)(hi - lo);
    }
    *n_out = k;
}

const px__pre_step px__pre_bucketing = {
    .name = "bucketing",
    .summary = "bucketing: means of random groups of bucket_size inputs (a new draw per step)",
    .check = px__bucket_check,
    .needs_gram = false,
    .plan = px__bucket_plan,
};
