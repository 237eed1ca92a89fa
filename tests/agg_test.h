/* agg_test.h - helpers shared by the aggregator tests (tests/test_agg_*.c): seeded test data,
 * a one-call wrapper around px_agg, and double-precision reference arithmetic. Header-only so
 * that the test glob (tests/test_*.c) needs nothing more. */
#ifndef PX_AGG_TEST_H
#define PX_AGG_TEST_H

#include <math.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregators/aggregator.h"
#include "base/rng.h"

/* n rows of d floats in one block, with the row-pointer array the interface takes */
typedef struct {
    size_t n, d;
    float *data;
    const float **rows;
} agg_data;

static inline agg_data agg_data_new(size_t n, size_t d)
{
    agg_data a = {n, d, calloc((n * d) > 0 ? n * d : 1, sizeof(float)),
                  calloc(n ? n : 1, sizeof(float *))};
    assert_non_null(a.data);
    assert_non_null(a.rows);
    for (size_t i = 0; i < n; i++)
        a.rows[i] = a.data + i * d;
    return a;
}

static inline void agg_data_free(agg_data *a)
{
    free(a->data);
    free(a->rows);
}

static inline float *agg_row(agg_data *a, size_t i)
{
    return a->data + i * a->d;
}

/* standard normal entries from a seeded stream */
static inline void agg_fill_normal(agg_data *a, uint64_t seed)
{
    px_rng r;
    px_rng_init(&r, seed, 99, 0, 0);
    for (size_t i = 0; i < a->n * a->d; i++)
        a->data[i] = (float)px_rng_normal(&r);
}

/* The library's defaults with "key=value;key=value" applied (a test's case table); fails the
 * test, naming `what`, if a pair is refused. */
static inline px_agg_params agg_params_from(const char *what, const char *sets)
{
    px_agg_params p;
    px_agg_params_default(&p);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sets);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = 0;
        if (px_agg_params_set(&p, kv, eq + 1) != PX_OK) fail_msg("%s: %s", what, px_errmsg());
    }
    return p;
}

/* creates, runs once at `step`, destroys; returns the status of create or run */
static inline px_status agg_run_once(const char *rule, const px_agg_params *p,
                                     const float *const *rows, size_t n, size_t d, float *out,
                                     px_pool *pool)
{
    px_agg *a;
    px_status st = px_agg_create(&a, rule, p, n, d, NULL, pool);
    if (st < 0) return st;
    st = px_agg_run(a, rows, n, 0, out, NULL);
    px_agg_destroy(a);
    return st;
}

static inline double agg_dot(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t c = 0; c < d; c++)
        s += (double)a[c] * b[c];
    return s;
}

static inline double agg_norm(const float *a, size_t d)
{
    return sqrt(agg_dot(a, a, d));
}

static inline double agg_cosine(const float *a, const float *b, size_t d)
{
    return agg_dot(a, b, d) / (agg_norm(a, d) * agg_norm(b, d));
}

/* max |a - b| / (max |b| + tiny) */
static inline double agg_rel_err(const float *a, const float *b, size_t d)
{
    double num = 0, den = 1e-30;
    for (size_t c = 0; c < d; c++) {
        double e = fabs((double)a[c] - b[c]);
        if (e > num || isnan(e)) num = isnan(e) ? INFINITY : e;
        if (fabs(b[c]) > den) den = fabs(b[c]);
    }
    return num / den;
}

#endif
