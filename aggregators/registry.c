/* registry.c - the list of rules, their parameters, and the composed aggregator px_agg
 * (non-finite filter, then the rule). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

extern const px_agg_rule px_agg_rule_mean;
extern const px_agg_rule px_agg_rule_median;

static const px_agg_rule *const px__rules[] = {
    &px_agg_rule_mean,
    &px_agg_rule_median,
};

size_t px_agg_rule_count(void)
{
    return sizeof px__rules / sizeof px__rules[0];
}

const px_agg_rule *px_agg_rule_at(size_t i)
{
    return i < px_agg_rule_count() ? px__rules[i] : NULL;
}

const px_agg_rule *px_agg_find(const char *name)
{
    for (size_t i = 0; i < px_agg_rule_count(); i++)
        if (strcmp(px__rules[i]->name, name) == 0) return px__rules[i];
    return NULL;
}

void px_agg_params_default(px_agg_params *p)
{
    memset(p, 0, sizeof *p);
    p->f = 0;
    p->seed = 1;
}

static px_status px__parse_u64(const char *key, const char *value, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!value[0] || value[0] == '-')
        return px_error(PX_EINVAL, "aggregator parameter %s: expected a non-negative integer, got "
                                   "'%s'", key, value);
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || v > max)
        return px_error(PX_EINVAL, "aggregator parameter %s: expected an integer in [0, %llu], "
                                   "got '%s'", key, (unsigned long long)max, value);
    *out = v;
    return PX_OK;
}

px_status px_agg_params_set(px_agg_params *p, const char *key, const char *value)
{
    uint64_t v;
    if (strcmp(key, "f") == 0) {
        PX_CHECK(px__parse_u64(key, value, UINT32_MAX, &v));
        p->f = (uint32_t)v;
        return PX_OK;
    }
    if (strcmp(key, "seed") == 0) return px__parse_u64(key, value, UINT64_MAX, &p->seed);
    return px_error(PX_EINVAL, "unknown aggregator parameter '%s'", key);
}

px_status px_agg_validate(const char *rule, const px_agg_params *p, size_t n)
{
    const px_agg_rule *r = px_agg_find(rule);
    if (!r) {
        char names[512] = "";
        for (size_t i = 0; i < px_agg_rule_count(); i++) {
            if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, px__rules[i]->name, sizeof names - strlen(names) - 1);
        }
        return px_error(PX_EINVAL, "unknown aggregation rule '%s' (known: %s)", rule, names);
    }
    if (n == 0) return px_error(PX_EINVAL, "%s: no input to aggregate", r->name);
    return r->check ? r->check(p, n) : PX_OK;
}

struct px_agg {
    const px_agg_rule *rule;
    px_agg_params params;
    void *ctx;
    size_t n_max, d;
    const float **kept; /* the finite rows of the current call */
    px_pool *pool;
    int *finite;        /* per row: 1 if every value is finite */
};

px_status px_agg_create(px_agg **out, const char *rule, const px_agg_params *p, size_t n_max,
                        size_t d, const px_layer_table *layers, px_pool *pool)
{
    *out = NULL;
    PX_CHECK(px_agg_validate(rule, p, n_max));
    px_agg *a = calloc(1, sizeof *a);
    if (!a) return px_error(PX_ENOMEM, "aggregator: cannot allocate");
    a->rule = px_agg_find(rule);
    a->params = *p;
    a->n_max = n_max;
    a->d = d;
    a->pool = pool;
    a->kept = calloc(n_max, sizeof *a->kept);
    a->finite = calloc(n_max, sizeof *a->finite);
    if (!a->kept || !a->finite) {
        px_agg_destroy(a);
        return px_error(PX_ENOMEM, "aggregator: cannot allocate");
    }
    if (a->rule->create) {
        px_status st = a->rule->create(&a->ctx, p, n_max, d, layers, pool);
        if (st < 0) {
            px_agg_destroy(a);
            return px_error_context(st, "aggregator %s", rule);
        }
    }
    *out = a;
    return PX_OK;
}

void px_agg_destroy(px_agg *a)
{
    if (!a) return;
    if (a->ctx && a->rule->destroy) a->rule->destroy(a->ctx);
    free(a->kept);
    free(a->finite);
    free(a);
}

typedef struct {
    const float *const *rows;
    size_t d;
    int *finite;
} px__scan;

static void px__scan_row(void *arg, size_t i, int thread)
{
    (void)thread;
    px__scan *s = arg;
    const float *x = s->rows[i];
    /* an OR-reduction over "exponent all ones" vectorises; isfinite() in a loop with an early
     * exit does not */
    uint32_t bad = 0;
    for (size_t j = 0; j < s->d; j++) {
        uint32_t bits;
        memcpy(&bits, &x[j], 4);
        bad |= ((bits & 0x7F800000u) == 0x7F800000u);
    }
    s->finite[i] = !bad;
}

px_status px_agg_run(px_agg *a, const float *const *rows, size_t n, uint64_t step, float *out,
                     px_agg_report *report)
{
    if (n > a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        a->rule->name, n, a->n_max);
    px__scan scan = {rows, a->d, a->finite};
    px_pool_run(a->pool, n, px__scan_row, &scan);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (a->finite[i]) a->kept[kept++] = rows[i];
    if (report) {
        report->n_in = n;
        report->n_nonfinite = n - kept;
        report->n_used = kept;
    }
    if (kept == 0)
        return px_error(PX_EINVAL, "%s: none of the %zu inputs is finite", a->rule->name, n);
    PX_CHECK(a->rule->check ? a->rule->check(&a->params, kept) : PX_OK);
    return a->rule->run(a->ctx, a->kept, kept, a->d, out, step);
}
