/* sortnet.c - the engine of the coordinate-wise rules (median, trimmed mean, MeaMed, Bulyan's
 * second phase): 16 coordinates at a time, the n values of each are sorted by one Batcher
 * odd-even merge network applied to whole vectors (a comparator is a vector min and max), so
 * there is no branch per value and the data is read once, tile by tile, by both cores.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coord_math.h"
#include "internal.h"

/* The 64-byte vector helpers below are static: the ABI note GCC gives for passing them by value
 * on targets without AVX-512 does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define PX_COORD_TILE 1024 /* columns per task (a multiple of PX_LANES) */

px_status px__sortnet_init(px__sortnet *s, size_t n_max)
{
    memset(s, 0, sizeof *s);
    size_t N = 1;
    while (N < n_max)
        N *= 2;
    if (N > 65536) return px_error(PX_EINVAL, "sorting network: %zu inputs is too many", n_max);
    /* count first, then fill: Batcher's network as Knuth gives it (TAOCP 5.3.4, algorithm M) */
    for (int pass = 0; pass < 2; pass++) {
        size_t cnt = 0;
        for (size_t p = 1; p < N; p += p)
            for (size_t k = p; k > 0; k /= 2)
                for (size_t j = k % p; j + k < N; j += k + k)
                    for (size_t i = 0; i < k && i + j + k < N; i++)
                        if ((i + j) / (p + p) == (i + j + k) / (p + p)) {
                            if (pass) {
                                s->full[2 * cnt] = (uint16_t)(i + j);
                                s->full[2 * cnt + 1] = (uint16_t)(i + j + k);
                            }
                            cnt++;
                        }
        if (!pass) {
            s->full = malloc((cnt ? cnt : 1) * 2 * sizeof *s->full);
            s->pairs = malloc((cnt ? cnt : 1) * 2 * sizeof *s->pairs);
            if (!s->full || !s->pairs) {
                px__sortnet_free(s);
                return px_error(PX_ENOMEM, "sorting network: cannot allocate");
            }
        }
        s->full_count = cnt;
    }
    s->n_max = n_max;
    s->n = (size_t)-1;
    return PX_OK;
}

void px__sortnet_free(px__sortnet *s)
{
    free(s->full);
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

void px__sortnet_prepare(px__sortnet *s, size_t n)
{
    if (s->n == n) return;
    /* padding values n..N-1 are +inf in thought: a comparator touching one never moves
     * anything, so dropping it sorts the first n */
    s->count = 0;
    for (size_t c = 0; c < s->full_count; c++)
        if (s->full[2 * c + 1] < n) {
            s->pairs[2 * s->count] = s->full[2 * c];
            s->pairs[2 * s->count + 1] = s->full[2 * c + 1];
            s->count++;
        }
    s->n = n;
}

typedef float px__v16 __attribute__((vector_size(64)));
typedef int32_t px__v16i __attribute__((vector_size(64)));

#ifdef __AVX512F__
#include <immintrin.h>
static inline px__v16 px__vmin(px__v16 x, px__v16 y)
{
    return (px__v16)_mm512_min_ps((__m512)x, (__m512)y);
}
static inline px__v16 px__vmax(px__v16 x, px__v16 y)
{
    return (px__v16)_mm512_max_ps((__m512)x, (__m512)y);
}
#else /* portable: a compare and two selects (the inputs are finite, so min/max are exact) */
static inline px__v16 px__vmin(px__v16 x, px__v16 y)
{
    px__v16i m = x < y;
    return (px__v16)((m & (px__v16i)x) | (~m & (px__v16i)y));
}
static inline px__v16 px__vmax(px__v16 x, px__v16 y)
{
    px__v16i m = x < y;
    return (px__v16)((m & (px__v16i)y) | (~m & (px__v16i)x));
}
#endif

#define PX__CX(a, b)                                                                               \
    do {                                                                                           \
        px__v16 px__t = px__vmin(a, b);                                                            \
        b = px__vmax(a, b);                                                                        \
        a = px__t;                                                                                 \
    } while (0)
#include "sortnet_fixed.h"

size_t px__sortnet_rows(size_t n)
{
    return n ? n : 1;
}

void px__sortnet_sort(const px__sortnet *s, float (*v)[PX_LANES])
{
    /* up to 32 values: a fixed network in registers */
    size_t n = s->n;
    if (n <= 32 && n > 1) {
        px__sort_fixed_fn fn = px__sort_fixed[n];
        fn(v, 0);
        fn(v, 16);
        fn(v, 32);
        fn(v, 48);
        return;
    }
    const uint16_t *pr = s->pairs;
    for (size_t c = 0; c < s->count; c++) {
        float *a = v[pr[2 * c]], *b = v[pr[2 * c + 1]];
#pragma GCC unroll 4
        for (int q = 0; q < PX_LANES; q += 16) {
            px__v16 x, y;
            memcpy(&x, a + q, sizeof x);
            memcpy(&y, b + q, sizeof y);
            px__v16 lo = px__vmin(x, y), hi = px__vmax(x, y);
            memcpy(a + q, &lo, sizeof lo);
            memcpy(b + q, &hi, sizeof hi);
        }
    }
}

/* one 16-lane chunk of px__lane_mean_near_median, lanes [q, q+16): writes the means to out and
 * the windows' starts to starts */
static void px__near_median16(const float (*v)[PX_LANES], size_t n, size_t k, size_t q, float *out,
                              float *starts)
{
    px__v16 med, lo_v, hi_v, x, y;
    memcpy(&hi_v, v[n / 2] + q, sizeof hi_v);
    if (n % 2) {
        med = hi_v;
    } else { /* halves first: lo + hi overflows for finite values near FLT_MAX */
        memcpy(&lo_v, v[n / 2 - 1] + q, sizeof lo_v);
        med = 0.5f * lo_v + 0.5f * hi_v; /* px_cw_median_mid, 16 lanes at once */
    }
    const px__v16 one = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* sliding the window right by one swaps v[t] for v[t+k]: it pays while v[t+k] is closer;
     * |v[t]-med| falls and |v[t+k]-med| grows with t, so the good slides come first and the
     * window starts after the last one (ties, which change nothing, may sit among them). With
     * finite values near +-FLT_MAX a distance may overflow to inf, but only on one side of a
     * finite median (the other side's distances are at most FLT_MAX - |med|), and inf against a
     * finite distance compares as the exact distances do. */
    px__v16 start = one - one;
    for (size_t t = 0; t + k < n; t++) {
        memcpy(&x, v[t] + q, sizeof x);
        memcpy(&y, v[t + k] + q, sizeof y);
        px__v16 dl = x - med, dr = y - med;
        dl = px__vmax(dl, -dl);
        dr = px__vmax(dr, -dr);
        px__v16 next = (float)(t + 1) * one;
        start = px__vmax(start, (px__v16)((px__v16i)(dr < dl) & (px__v16i)next));
    }
    /* the window [start, start + k) always holds [n - k, k) (start <= n - k < k when k > n/2,
     * which the validity rules give): only the two fringes need a mask */
    px__v16 end = start + (float)k, sum = one - one;
    size_t lo_always = n - k < k ? n - k : k, hi_always = n - k < k ? k : n - k;
    for (size_t t = 0; t < n; t++) {
        memcpy(&x, v[t] + q, sizeof x);
        if (t >= lo_always && t < hi_always && n - k < k) {
            sum += x;
            continue;
        }
        px__v16 ft = (float)t * one;
        px__v16i in = (ft >= start) & (ft < end);
        sum += (px__v16)(in & (px__v16i)x);
    }
    sum *= 1.0f / (float)k;
    memcpy(out + q, &sum, sizeof sum);
    memcpy(starts + q, &start, sizeof start);
}

float px__lane_mean_double(const float (*v)[PX_LANES], size_t lo, size_t hi, size_t lane)
{
    return px_cw_mean_double(&v[0][lane], PX_LANES, lo, hi);
}

void px__lane_mean_near_median(const float (*v)[PX_LANES], size_t n, size_t k, float out[PX_LANES])
{
    float starts[PX_LANES];
    for (size_t q = 0; q < PX_LANES; q += 16)
        px__near_median16(v, n, k, q, out, starts);
    /* a float sum of values near +-FLT_MAX overflows: those lanes again, in double (one check
     * for all lanes, in a loop that vectorises) */
    int overflow = 0;
    for (size_t l = 0; l < PX_LANES; l++)
        overflow |= !(fabsf(out[l]) <= FLT_MAX);
    for (size_t l = 0; overflow && l < PX_LANES; l++)
        if (!(fabsf(out[l]) <= FLT_MAX)) {
            size_t s = (size_t)starts[l];
            out[l] = px__lane_mean_double(v, s, s + k, l);
        }
}

px_status px__coord_init(px__coord *c, size_t n_max, size_t d, px_pool *pool, const char *what)
{
    memset(c, 0, sizeof *c);
    PX_CHECK(px__sortnet_init(&c->net, n_max));
    c->pool = pool;
    /* at least 32 rows (8 KB) per thread: with the 3840 B of 15 rows, median ran 25 % slower
     * here (the per-thread areas and the input rows then collide in the cache) */
    c->rows = n_max < 32 ? 32 : n_max;
    c->scratch = px_alloc((size_t)px_pool_size(pool) * c->rows * PX_LANES * sizeof(float), what);
    c->buf = px_alloc(d * sizeof(float), what);
    c->bad = calloc((size_t)px_pool_size(pool), sizeof *c->bad);
    if (!c->scratch || !c->buf || !c->bad) {
        px__coord_free(c);
        return PX_ENOMEM;
    }
    return PX_OK;
}

void px__coord_free(px__coord *c)
{
    px__sortnet_free(&c->net);
    px_free(c->scratch);
    px_free(c->buf);
    free(c->bad);
    c->scratch = c->buf = NULL;
    c->bad = NULL;
}

typedef struct {
    float *dst;
    const float *src;
    size_t d;
} px__copy_job;

#define PX_COPY_CHUNK 65536

static void px__copy_chunk(void *arg, size_t t, int thread)
{
    px__copy_job *j = arg;
    size_t lo = t * PX_COPY_CHUNK, hi = lo + PX_COPY_CHUNK < j->d ? lo + PX_COPY_CHUNK : j->d;
    memcpy(j->dst + lo, j->src + lo, (hi - lo) * sizeof(float));
}

void px__copy_run(px_pool *pool, float *dst, const float *src, size_t d)
{
    px__copy_job j = {dst, src, d};
    px_pool_run(pool, (d + PX_COPY_CHUNK - 1) / PX_COPY_CHUNK, px__copy_chunk, &j);
}

bool px__diag_finite(const double *K, size_t ld, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(K[i * ld + i])) return false;
    return true;
}

typedef struct {
    px__coord *c;
    const float *const *x;
    size_t n, d;
    float *out;
    px__lane_reduce reduce;
    void *arg;
    bool screen;
} px__coord_job;

static void px__coord_tile(void *arg, size_t t, int thread)
{
    px__coord_job *j = arg;
    size_t n = j->n;
    float(*v)[PX_LANES] =
        (float(*)[PX_LANES])(j->c->scratch + (size_t)thread * j->c->rows * PX_LANES);
    size_t lo = t * PX_COORD_TILE, hi = lo + PX_COORD_TILE < j->d ? lo + PX_COORD_TILE : j->d;

    for (size_t c = lo; c < hi; c += PX_LANES) {
        float res[PX_LANES];
        if (c + PX_LANES <= hi) {
            for (size_t i = 0; i < n; i++)
                memcpy(v[i], j->x[i] + c, sizeof v[i]);
            if (j->screen) { /* exponent all ones = NaN or Inf */
                const px__v16i expo = {0x7F800000, 0x7F800000, 0x7F800000, 0x7F800000,
                                       0x7F800000, 0x7F800000, 0x7F800000, 0x7F800000,
                                       0x7F800000, 0x7F800000, 0x7F800000, 0x7F800000,
                                       0x7F800000, 0x7F800000, 0x7F800000, 0x7F800000};
                px__v16i bad = expo ^ expo;
                for (size_t i = 0; i < n; i++)
                    for (size_t q = 0; q < PX_LANES; q += 16) {
                        px__v16i b;
                        memcpy(&b, v[i] + q, sizeof b);
                        bad |= (b & expo) == expo;
                    }
                for (int l = 0; l < 16; l++)
                    if (bad[l]) j->c->bad[thread] = 1;
            }
            px__sortnet_sort(&j->c->net, v);
            j->reduce((const float(*)[PX_LANES])v, n, j->arg, res);
            memcpy(j->out + c, res, sizeof res);
        } else { /* the last partial group: repeat the last column in the idle lanes */
            size_t w = hi - c;
            for (size_t i = 0; i < n; i++)
                for (size_t l = 0; l < PX_LANES; l++) {
                    v[i][l] = j->x[i][c + (l < w ? l : w - 1)];
                    if (j->screen && !isfinite(v[i][l])) j->c->bad[thread] = 1;
                }
            px__sortnet_sort(&j->c->net, v);
            j->reduce((const float(*)[PX_LANES])v, n, j->arg, res);
            memcpy(j->out + c, res, w * sizeof(float));
        }
    }
}

px_status px__coord_run(px__coord *c, const float *const *x, size_t n, size_t d, float *out,
                        px__lane_reduce reduce, void *arg, bool screen)
{
    px__sortnet_prepare(&c->net, n);
    px__coord_job j = {c, x, n, d, screen ? c->buf : out, reduce, arg, screen};
    int threads = px_pool_size(c->pool);
    for (int t = 0; t < threads; t++)
        c->bad[t] = 0;
    px_pool_run(c->pool, (d + PX_COORD_TILE - 1) / PX_COORD_TILE, px__coord_tile, &j);
    if (!screen) return PX_OK;
    for (int t = 0; t < threads; t++)
        if (c->bad[t]) return PX_AGG_NONFINITE;
    px__copy_run(c->pool, out, c->buf, d);
    return PX_OK;
}
