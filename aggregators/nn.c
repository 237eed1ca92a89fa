/* nn.c - small n x n helpers of the Gram-form rules: squared distances from a Gram matrix, Krum
 * scores, a stable argsort and a median of doubles. n is the number of workers (tens), so
 * plain loops in a fixed order are the right tool. */
#include <math.h>
#include <string.h>

#include "internal.h"

void px__gram_distances(const double *K, size_t ldk, size_t n, double *D)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double v = K[i * ldk + i] + K[j * ldk + j] - 2.0 * K[i * ldk + j];
            if (!isfinite(v)) v = INFINITY;
            D[i * n + j] = i == j ? 0.0 : (v > 0 ? v : 0.0);
        }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(K[i * ldk + i]))
            for (size_t j = 0; j < n; j++)
                if (j != i) D[i * n + j] = D[j * n + i] = INFINITY;
}

void px__argsort(const double *key, size_t *idx, size_t count)
{
    for (size_t a = 1; a < count; a++) {
        size_t t = idx[a], b = a;
        while (b > 0 &&
               (key[idx[b - 1]] > key[t] || (key[idx[b - 1]] == key[t] && idx[b - 1] > t))) {
            idx[b] = idx[b - 1];
            b--;
        }
        idx[b] = t;
    }
}

void px__krum_scores(const double *D, size_t n, const size_t *idx, size_t count, size_t k,
                     double *score, double *scratch)
{
    for (size_t a = 0; a < count; a++) {
        size_t i = idx[a], m = 0;
        for (size_t b = 0; b < count; b++)
            if (b != a) scratch[m++] = D[i * n + idx[b]];
        /* partial selection of the k smallest, then their sum in ascending order */
        for (size_t s = 0; s < k && s < m; s++) {
            size_t best = s;
            for (size_t u = s + 1; u < m; u++)
                if (scratch[u] < scratch[best]) best = u;
            double t = scratch[s];
            scratch[s] = scratch[best];
            scratch[best] = t;
        }
        double sum = 0;
        for (size_t s = 0; s < k && s < m; s++)
            sum += scratch[s];
        score[a] = sum;
    }
}

double px__median_double(double *v, size_t n)
{
    for (size_t a = 1; a < n; a++) {
        double t = v[a];
        size_t b = a;
        while (b > 0 && v[b - 1] > t) {
            v[b] = v[b - 1];
            b--;
        }
        v[b] = t;
    }
    if (n == 0) return 0;
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
