/* vector_attacks.c - the gradient attacks: what a Byzantine worker's vector becomes, at the
 * server from the honest gradients (OMNISCIENT) or at the worker from its own (LOCAL); and the
 * normal quantile that ALIE needs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "base/rng.h"

enum { PX__BYZ_NOISE = 0x2000000001ull };
#define PX__TILE 8192 /* values per task in the parallel passes */

double px_normal_quantile(double p)
{
    if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : (p == 1 ? INFINITY : NAN);
    /* Acklam's rational approximation of the inverse normal CDF ... */
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double lo = 0.02425, hi = 1 - lo;
    double x;
    if (p < lo) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= hi) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        double q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    /* ... refined by one Halley step on Phi(x) - p, Phi from erfc */
    double e = 0.5 * erfc(-x / sqrt(2)) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

double px_alie_z(uint32_t n, uint32_t count)
{
    double s = floor((double)n / 2 + 1) - (double)count;
    return px_normal_quantile(((double)n - count - s) / ((double)n - count));
}

px_status px_byz_server_create(px_byz_server *b, const px_byz_spec *s, size_t d, size_t n_rows,
                               px_pool *pool)
{
    memset(b, 0, sizeof *b);
    PX_CHECK(px_byz_check(s));
    b->spec = *s;
    b->d = d;
    b->pool = pool;
    b->mean = px_alloc(d * sizeof(float), "the attack's honest mean");
    b->std = px_alloc(d * sizeof(float), "the attack's honest deviation");
    b->is_byz = calloc(s->n, 1);
    b->honest = calloc(s->n, 1);
    if (!b->mean || !b->std || !b->is_byz || !b->honest) {
        px_byz_server_free(b);
        return px_error(PX_ENOMEM, "fault injection: cannot allocate");
    }
    b->last = (px_byz_choice){NAN, NAN, 0, 0, 0};
    if (px__byz_is_adaptive(s)) {
        if (n_rows < s->n) n_rows = s->n;
        px_status st = px__byz_adaptive_create(b, n_rows);
        if (st < 0) {
            px_byz_server_free(b);
            return st;
        }
    }
    return PX_OK;
}

void px_byz_server_free(px_byz_server *b)
{
    px__byz_adaptive_free(b);
    px_free(b->mean);
    px_free(b->std);
    free(b->is_byz);
    free(b->honest);
    memset(b, 0, sizeof *b);
}

typedef struct {
    px_byz_server *b;
    const float *rows;
    const uint8_t *honest; /* per worker: 1 if its row is an honest gradient of this step */
    size_t k;              /* honest rows */
    int want_std;
    size_t n; /* rows */
} px__stats_job;

/* per-coordinate mean and (unbiased) standard deviation of the honest rows, in double */
static void px__stats_tile(void *arg, size_t t, int thread)
{
    (void)thread;
    px__stats_job *j = arg;
    size_t d = j->b->d, lo = t * PX__TILE, hi = lo + PX__TILE < d ? lo + PX__TILE : d;
    size_t n = j->n;
    for (size_t c = lo; c < hi; c++) {
        double s = 0;
        for (size_t w = 0; w < n; w++)
            if (j->honest[w]) s += j->rows[w * d + c];
        double mu = s / (double)j->k;
        j->b->mean[c] = (float)mu;
        if (!j->want_std) continue;
        double v = 0;
        for (size_t w = 0; w < n; w++)
            if (j->honest[w]) {
                double e = j->rows[w * d + c] - mu;
                v += e * e;
            }
        j->b->std[c] = j->k > 1 ? (float)sqrt(v / (double)(j->k - 1)) : 0.0f;
    }
}

void px__byz_stats(px_byz_server *b, const float *rows, const uint8_t *honest, size_t k, size_t n,
                   int want_std)
{
    px__stats_job j = {b, rows, honest, k, want_std, n};
    px_pool_run(b->pool, (b->d + PX__TILE - 1) / PX__TILE, px__stats_tile, &j);
}

static void px__fill(float *x, size_t d, float v)
{
    for (size_t i = 0; i < d; i++)
        x[i] = v;
}

static void px__gaussian(const px_byz_spec *s, uint32_t worker, uint32_t step, float *x, size_t d)
{
    px_rng r;
    px_rng_init(&r, s->seed, PX_STREAM_BYZANTINE, PX__BYZ_NOISE ^ worker, step);
    for (size_t i = 0; i < d; i++)
        x[i] = (float)(s->sigma * px_rng_normal(&r));
}

/* The attacks that need nothing but the Byzantine worker's own vector x (rewritten in place).
 * Returns 0 for the other attacks. */
static int px__from_own(const px_byz_spec *s, uint32_t worker, uint32_t step, float *x, size_t d)
{
    switch (s->attack) {
    case PX_ATTACK_REVERSE:
        for (size_t i = 0; i < d; i++)
            x[i] *= -s->scale;
        return 1;
    case PX_ATTACK_GAUSSIAN:
        px__gaussian(s, worker, step, x, d);
        return 1;
    case PX_ATTACK_ZERO:
        px__fill(x, d, 0.0f);
        return 1;
    case PX_ATTACK_NAN:
        px__fill(x, d, NAN);
        return 1;
    case PX_ATTACK_INF:
        px__fill(x, d, INFINITY);
        return 1;
    case PX_ATTACK_LARGE:
        px__fill(x, d, s->large_value);
        return 1;
    default:
        return 0;
    }
}

size_t px_byz_server_apply(px_byz_server *b, uint32_t step, float *rows, uint8_t *have)
{
    const px_byz_spec *s = &b->spec;
    if (!s->omniscient || !px_attack_is_vector(s->attack)) return 0;
    px_byz_members(s, step, b->is_byz);
    return px_byz_server_apply_rows(b, step, rows, have, s->n);
}

size_t px_byz_server_apply_rows(px_byz_server *b, uint32_t step, float *rows, uint8_t *have,
                                size_t n)
{
    const px_byz_spec *s = &b->spec;
    if (!s->omniscient || !px_attack_is_vector(s->attack)) return 0;
    size_t d = b->d, k = 0, replaced = 0;
    uint8_t *honest = b->honest;
    for (size_t w = 0; w < n; w++) {
        honest[w] = have[w] && !b->is_byz[w];
        k += honest[w];
    }
    px_attack a = s->attack;
    if (b->adaptive) return k ? px__byz_adaptive_apply(b, step, rows, have, n, k) : 0;
    int needs_stats = a == PX_ATTACK_SIGN_FLIP || a == PX_ATTACK_IPM || a == PX_ATTACK_ALIE;
    if (needs_stats) {
        if (k == 0) return 0; /* nothing honest to compute from */
        px__byz_stats(b, rows, honest, k, n, a == PX_ATTACK_ALIE);
    }
    size_t target = s->mimic_target;
    if (a == PX_ATTACK_MIMIC && !(target < n && honest[target])) {
        for (target = 0; target < n && !honest[target]; target++) {
        }
        if (target == n) return 0;
    }
    float z = s->alie_z != 0 ? s->alie_z : (float)px_alie_z(s->n, s->count);
    for (size_t w = 0; w < n; w++) {
        if (!b->is_byz[w]) continue;
        float *x = rows + w * d;
        switch (a) {
        case PX_ATTACK_SIGN_FLIP:
            for (size_t i = 0; i < d; i++)
                x[i] = -b->mean[i];
            break;
        case PX_ATTACK_IPM:
            for (size_t i = 0; i < d; i++)
                x[i] = -s->tau * b->mean[i];
            break;
        case PX_ATTACK_ALIE:
            for (size_t i = 0; i < d; i++)
                x[i] = b->mean[i] + z * b->std[i];
            break;
        case PX_ATTACK_MIMIC:
            memcpy(x, rows + target * d, d * sizeof(float));
            break;
        case PX_ATTACK_REVERSE:
            if (!have[w]) continue; /* its own gradient did not arrive */
            px__from_own(s, (uint32_t)w, step, x, d);
            break;
        default:
            if (!px__from_own(s, (uint32_t)w, step, x, d)) continue;
        }
        have[w] = 1;
        replaced++;
    }
    return replaced;
}

void px_byz_local_gradient(const px_byz_spec *s, uint32_t worker, uint32_t step, float *g, size_t d)
{
    /* without the others' gradients, the worker's own stands in for the honest mean */
    if (s->attack == PX_ATTACK_SIGN_FLIP || s->attack == PX_ATTACK_IPM) {
        float f = s->attack == PX_ATTACK_SIGN_FLIP ? -1.0f : -s->tau;
        for (size_t i = 0; i < d; i++)
            g[i] *= f;
        return;
    }
    px__from_own(s, worker, step, g, d);
}
