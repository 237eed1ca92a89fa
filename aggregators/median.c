/* median.c - coordinate-wise median (ALGORITHMS.md section 3): per coordinate, the middle value
 * of the n inputs, or the average of the two middle values when n is even. */
#include <stdlib.h>

#include "aggregator.h"

#define PX_MEDIAN_TILE 1024 /* columns per task */

typedef struct {
    px_pool *pool;
    size_t n_max;
    float *scratch; /* per thread: n_max values */
} px__median_ctx;

typedef struct {
    px__median_ctx *c;
    const float *const *x;
    size_t n, d;
    float *out;
} px__median_job;

/* k-th smallest of v[0..n) (quickselect, median-of-three pivot); reorders v */
static float px__select(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        if (hi - lo < 16) { /* insertion sort of the small remainder */
            for (size_t i = lo + 1; i <= hi; i++) {
                float t = v[i];
                size_t j = i;
                while (j > lo && v[j - 1] > t) {
                    v[j] = v[j - 1];
                    j--;
                }
                v[j] = t;
            }
            return v[k];
        }
        size_t mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], cc = v[hi];
        float pivot = a < b ? (b < cc ? b : (a < cc ? cc : a)) : (a < cc ? a : (b < cc ? cc : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

static void px__median_tile(void *arg, size_t t, int thread)
{
    px__median_job *j = arg;
    float *v = j->c->scratch + (size_t)thread * j->c->n_max;
    size_t lo = t * PX_MEDIAN_TILE, hi = lo + PX_MEDIAN_TILE < j->d ? lo + PX_MEDIAN_TILE : j->d;
    size_t n = j->n, k = n / 2;
    for (size_t c = lo; c < hi; c++) {
        for (size_t i = 0; i < n; i++) v[i] = j->x[i][c];
        float upper = px__select(v, n, k);
        if (n % 2) {
            j->out[c] = upper;
        } else {
            /* after selection v[0..k) holds the k smallest values: the lower middle is their max */
            float lower = v[0];
            for (size_t i = 1; i < k; i++)
                if (v[i] > lower) lower = v[i];
            j->out[c] = 0.5f * (lower + upper);
        }
    }
}

static px_status px__median_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                   const px_layer_table *layers, px_pool *pool)
{
    px__median_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "median: cannot allocate");
    c->pool = pool;
    c->n_max = n_max;
    c->scratch = calloc((size_t)px_pool_size(pool) * n_max, sizeof(float));
    if (!c->scratch) {
        free(c);
        return px_error(PX_ENOMEM, "median: cannot allocate");
    }
    *ctx = c;
    return PX_OK;
}

static px_status px__median_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                                uint64_t step)
{
    px__median_ctx *c = ctx;
    px__median_job j = {c, x, n, d, out};
    px_pool_run(c->pool, (d + PX_MEDIAN_TILE - 1) / PX_MEDIAN_TILE, px__median_tile, &j);
    return PX_OK;
}

static void px__median_destroy(void *ctx)
{
    px__median_ctx *c = ctx;
    free(c->scratch);
    free(c);
}

const px_agg_rule px_agg_rule_median = {
    .name = "median",
    .summary = "coordinate-wise median (mean of the two middle values when n is even)",
    .check = NULL,
    .create = px__median_create,
    .run = px__median_run,
    .destroy = px__median_destroy,
};
