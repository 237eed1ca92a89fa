/* layer_test.h - what the layer tests (tests/test_layers.c, tests/test_layers_gpt.c) share:
 * tensors with a float copy for the code under test and a double copy for the oracle, the
 * closeness rule, central finite differences on the double oracle, and the accumulate check.
 * Header-only (static inline), as tests/agg_test.h. See test_layers.c for the method and the
 * tolerances. */
#ifndef PX_LAYER_TEST_H
#define PX_LAYER_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "runtime/nn/layer_math.h"
#include "runtime/nn/layers.h"

#define FD_H       1e-6
#define RTOL_FWD   1e-5 /* float forward vs double oracle */
#define RTOL_ACCUM 1e-6 /* second backward vs twice the first (sgemm may sum in another order) */

/* ---- tensors: a float copy for the code under test, a double copy for the oracle ------------- */

typedef struct {
    size_t n;
    float *f;  /* values given to the float code */
    double *d; /* the same values, for the oracle (finite differences perturb these) */
    float *g;  /* gradient from the float backward */
} tensor;

static inline tensor tensor_new(size_t n)
{
    tensor t = {n, calloc(n ? n : 1, sizeof(float)), calloc(n ? n : 1, sizeof(double)),
                calloc(n ? n : 1, sizeof(float))};
    assert_non_null(t.f);
    assert_non_null(t.d);
    assert_non_null(t.g);
    return t;
}

static inline void tensor_free(tensor *t)
{
    free(t->f);
    free(t->d);
    free(t->g);
}

/* uniform in [lo, hi), drawn in float so that the oracle sees exactly the float values */
static inline void tensor_uniform(tensor *t, double lo, double hi, uint64_t seed)
{
    px_rng r;
    px_rng_init(&r, seed, 0x1a7e5, 0, 0);
    for (size_t i = 0; i < t->n; i++) {
        t->f[i] = (float)(lo + (hi - lo) * px_rng_uniform(&r));
        t->d[i] = t->f[i];
    }
}

static inline void tensor_sync(tensor *t) /* after writing t->f by hand */
{
    for (size_t i = 0; i < t->n; i++)
        t->d[i] = t->f[i];
}

static inline void zero_grad(tensor *t)
{
    memset(t->g, 0, t->n * sizeof(float));
}

static inline double rms(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0;
}

/* got (float) against want (double), see the file comment; names the worst entry on failure */
static inline void check_close(const char *what, const float *got, const double *want, size_t n,
                        double rtol)
{
    double floor = rms(want, n), worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / (fabs(want[i]) + floor + 1e-300);
        if (!(err <= worst)) worst = err, at = i;
    }
    if (!(worst <= rtol)) {
        print_error("%s: entry %zu: got %.9g, want %.9g (relative error %.3g > %.3g)\n", what, at,
                    (double)got[at], want[at], worst, rtol);
        fail();
    }
}

/* The layer's scalar loss as a function of the oracle's double tensors. */
typedef double (*loss_fn)(void *ctx);

/* Central differences of loss with respect to every coordinate of x->d, against x->g. */
static inline void fd_check(const char *what, loss_fn loss, void *ctx, tensor *x, double rtol)
{
    double *fd = malloc(x->n * sizeof(double));
    assert_non_null(fd);
    for (size_t i = 0; i < x->n; i++) {
        double save = x->d[i];
        x->d[i] = save + FD_H;
        double lp = loss(ctx);
        x->d[i] = save - FD_H;
        double lm = loss(ctx);
        x->d[i] = save;
        fd[i] = (lp - lm) / (2 * FD_H);
    }
    check_close(what, x->g, fd, x->n, rtol);
    free(fd);
}

/* sum(out * R) over n values */
static inline double dot_r(const double *out, const tensor *R)
{
    double s = 0;
    for (size_t i = 0; i < R->n; i++)
        s += out[i] * R->d[i];
    return s;
}

static inline void save_grads(float **copies, tensor *const *ts, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        copies[i] = malloc(ts[i]->n * sizeof(float));
        assert_non_null(copies[i]);
        memcpy(copies[i], ts[i]->g, ts[i]->n * sizeof(float));
    }
}

/* after a second backward: every gradient is twice the saved first one */
static inline void check_doubled(const char *what, float *const *first, tensor *const *ts, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        double *twice = malloc(ts[i]->n * sizeof(double));
        assert_non_null(twice);
        for (size_t j = 0; j < ts[i]->n; j++)
            twice[j] = 2.0 * first[i][j];
        check_close(what, ts[i]->g, twice, ts[i]->n, RTOL_ACCUM);
        free(twice);
    }
}


/* a pointwise layer's case: its input, R, and the oracle's output */
typedef struct {
    tensor inp, R;
    double *out;
} pointwise_ctx;

#endif
