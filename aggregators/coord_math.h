/* coord_math.h - the per-coordinate arithmetic of the coordinate-wise rules (median, trimmed
 * mean, MeaMed), shared by the CPU rules and the CUDA kernels of aggregators/coordwise_cuda.cu
 * (PX_HD), as comm/codec_math.h is for the codecs.
 *
 * Each function reduces the n values of one coordinate, sorted ascending, read at s[0],
 * s[stride], ..., s[(n-1) stride] (stride 1 for a thread's own array on a GPU, PX_LANES for a lane
 * of the CPU's sorted tiles). The CPU rules call px_cw_median_mid and px_cw_mean_double in their
 * lane loops; their SIMD forms of the trimmed sum and the MeaMed window (aggregators/sortnet.c)
 * compute exactly what px_cw_trimmed_mean and px_cw_mean_near_median compute, in the same order,
 * which tests/test_coord_math.c checks bit for bit on the CPU. A GPU thread sorts its own values
 * with px_cw_sort, an odd-even transposition network (no data-dependent branches).
 */
#ifndef PX_COORD_MATH_H
#define PX_COORD_MATH_H

#include <float.h>
#include <math.h>
#include <stddef.h>

#include "base/hd.h"

/* The most values per coordinate a GPU thread sorts in registers and local memory. */
#define PX_CW_MAX_N 64

/* The coordinate-wise rules, as px_cw_coordinate and the kernels name them. */
typedef enum {
    PX_CW_MEDIAN = 0,
    PX_CW_TRIMMED_MEAN = 1, /* drops the f smallest and f largest */
    PX_CW_MEAMED = 2,       /* mean of the n - f values closest to the median */
} px_cw_rule;

/* Median of two middle values: halves first, because a + b overflows for finite values near
 * FLT_MAX while a/2 + b/2 cannot (and is the same float as (a + b)/2 whenever that is finite and
 * normal). */
PX_HD static inline float px_cw_median_mid(float lo, float hi)
{
    return 0.5f * lo + 0.5f * hi;
}

PX_HD static inline float px_cw_median(const float *s, size_t stride, size_t n)
{
    return n % 2 ? s[(n / 2) * stride] : px_cw_median_mid(s[(n / 2 - 1) * stride], s[(n / 2) * stride]);
}

/* Mean of s[lo..hi) in double: the fallback when the float sum overflowed. */
PX_HD static inline float px_cw_mean_double(const float *s, size_t stride, size_t lo, size_t hi)
{
    double acc = 0;
    for (size_t t = lo; t < hi; t++)
        acc += s[t * stride];
    return (float)(acc / (double)(hi - lo));
}

/* Mean of the n - 2f values left after dropping the f smallest and the f largest: a float sum in
 * ascending order times 1/(n - 2f), in double where that overflows. */
PX_HD static inline float px_cw_trimmed_mean(const float *s, size_t stride, size_t n, size_t f)
{
    float sum = 0.0f;
    for (size_t t = f; t < n - f; t++)
        sum += s[t * stride];
    float out = sum * (1.0f / (float)(n - 2 * f));
    return fabsf(out) <= FLT_MAX ? out : px_cw_mean_double(s, stride, f, n - f);
}

/* MeaMed's window: the start of the k consecutive sorted values closest to the median med.
 * Sliding the window right by one swaps s[t] for s[t+k]; it pays while s[t+k] is closer, and
 * the good slides come first, so the window starts after the last one. */
PX_HD static inline size_t px_cw_near_median_start(const float *s, size_t stride, size_t n,
                                                   size_t k, float med)
{
    size_t start = 0;
    for (size_t t = 0; t + k < n; t++) {
        float dl = fabsf(s[t * stride] - med), dr = fabsf(s[(t + k) * stride] - med);
        start = dr < dl ? t + 1 : start;
    }
    return start;
}

/* Mean of the k values closest to the median (MeaMed with k = n - f): a float sum of the window
 * in ascending order times 1/k, in double where that overflows. */
PX_HD static inline float px_cw_mean_near_median(const float *s, size_t stride, size_t n, size_t k)
{
    size_t start = px_cw_near_median_start(s, stride, n, k, px_cw_median(s, stride, n));
    float sum = 0.0f;
    for (size_t t = start; t < start + k; t++)
        sum += s[t * stride];
    float out = sum * (1.0f / (float)k);
    return fabsf(out) <= FLT_MAX ? out : px_cw_mean_double(s, stride, start, start + k);
}

/* Sorts v[0..n) ascending, n <= PX_CW_MAX_N: n rounds of compare-exchange of neighbours,
 * alternately from even and odd positions (odd-even transposition sort, a sorting network).
 * Finite values only (the rules screen NaN and Inf out before). */
PX_HD static inline void px_cw_sort(float *v, size_t n)
{
    for (size_t round = 0; round < n; round++)
        for (size_t i = round & 1; i + 1 < n; i += 2) {
            float a = v[i], b = v[i + 1];
            v[i] = a < b ? a : b;
            v[i + 1] = a < b ? b : a;
        }
}

/* Coordinate j of `rule` over the n rows of X (row i at X + i * ld; 1 <= n <= PX_CW_MAX_N,
 * finite values, n >= 2f + 1 for the trimmed mean and MeaMed): what one GPU thread computes
 * (aggregators/coordwise_cuda.cu), and what the server's device path computes on the CPU
 * backend (runtime/server_device.c). */
PX_HD static inline float px_cw_coordinate(px_cw_rule rule, const float *X, size_t ld, size_t n,
                                           size_t j, size_t f)
{
    float v[PX_CW_MAX_N];
    for (size_t i = 0; i < n; i++)
        v[i] = X[i * ld + j];
    px_cw_sort(v, n);
    return rule == PX_CW_MEDIAN         ? px_cw_median(v, 1, n)
           : rule == PX_CW_TRIMMED_MEAN ? px_cw_trimmed_mean(v, 1, n, f)
                                        : px_cw_mean_near_median(v, 1, n, n - f);
}

#endif
