/* clients.c - client sampling and the local objectives' parameter terms (see clients.h). */
#include "clients.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

size_t px_fl_clients_per_round(size_t clients, double fraction)
{
    double m = floor((double)clients * fraction + 0.5);
    if (m < 1) m = 1;
    if (m > (double)clients) m = (double)clients;
    return (size_t)m;
}

static int px__by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void px_fl_round_clients(uint64_t seed, uint32_t round, size_t K, size_t m, uint32_t *scratch,
                         uint32_t *out)
{
    for (size_t i = 0; i < K; i++)
        scratch[i] = (uint32_t)i;
    px_rng r;
    px_rng_init(&r, seed, PX_STREAM_CLIENTS, 1, round);
    for (size_t i = 0; i < m; i++) { /* a partial Fisher-Yates draw */
        size_t j = i + (size_t)px_rng_below(&r, K - i);
        uint32_t t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
        out[i] = scratch[i];
    }
    qsort(out, m, sizeof *out, px__by_value);
}

void px_fl_prox_grad(float *grad, const float *w, const float *w_global, size_t n, float mu)
{
    for (size_t i = 0; i < n; i++)
        grad[i] += mu * (w[i] - w_global[i]);
}
