/* registry.c - the list of rules and pre-aggregation steps, and the composed aggregator px_agg:
 * non-finite filter, then the pre-aggregation chain, then the rule (their parameters: params.c). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

extern const px_agg_rule px_agg_rule_mean, px_agg_rule_median, px_agg_rule_trimmed_mean,
    px_agg_rule_krum, px_agg_rule_multi_krum, px_agg_rule_bulyan, px_agg_rule_geomed,
    px_agg_rule_cclip, px_agg_rule_meamed, px_agg_rule_flag, px_agg_rule_fedld;

static const px_agg_rule *const px__rules[] = {
    &px_agg_rule_mean,       &px_agg_rule_median, &px_agg_rule_trimmed_mean, &px_agg_rule_krum,
    &px_agg_rule_multi_krum, &px_agg_rule_bulyan, &px_agg_rule_geomed,       &px_agg_rule_cclip,
    &px_agg_rule_meamed,     &px_agg_rule_flag,   &px_agg_rule_fedld,
};

/* indexed by px_agg_pre_kind - 1 */
static const px__pre_step *const px__pre_steps[] = {&px__pre_clip, &px__pre_nnm,
                                                    &px__pre_bucketing};
#define PX__N_PRE (sizeof px__pre_steps / sizeof px__pre_steps[0])

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

size_t px_agg_pre_count(void)
{
    return PX__N_PRE;
}

const char *px_agg_pre_name(size_t i)
{
    return i < PX__N_PRE ? px__pre_steps[i]->name : NULL;
}

const char *px_agg_pre_summary(size_t i)
{
    return i < PX__N_PRE ? px__pre_steps[i]->summary : NULL;
}

/* ---- validity ---------------------------------------------------------------------------- */

px_status px__chain_check(const px_agg_params *p, size_t n, size_t *n_rule)
{
    size_t cur = n;
    for (uint32_t s = 0; s < p->n_pre; s++) {
        const px__pre_step *step = px__pre_steps[p->pre[s] - 1];
        size_t next;
        PX_CHECK(step->check(p, cur, &next));
        cur = next;
    }
    *n_rule = cur;
    return PX_OK;
}

px_status px__rule_check(const px_agg_rule *r, const px_agg_params *p, size_t n_in, size_t n)
{
    if (n == 0) return px_error(PX_EINVAL, "%s: no input to aggregate", r->name);
    px_status st = r->check ? r->check(p, n) : PX_OK;
    if (st < 0 && n != n_in)
        return px_error_context(st, "after pre-aggregation (%zu inputs became %zu)", n_in, n);
    return st;
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
    PX_CHECK(px__agg_params_check(p));
    size_t n_rule;
    PX_CHECK(px__chain_check(p, n, &n_rule));
    return px__rule_check(r, p, n, n_rule);
}

/* ---- the composed aggregator ------------------------------------------------------------- */


static px_status px__agg_alloc_chain(px_agg *a)
{
    size_t n = a->n_max, nn = n * n;
    const px_agg_params *p = &a->params;
    a->chain_gram = a->rule->run_gram && a->rule != &px_agg_rule_mean;
    for (uint32_t s = 0; s < p->n_pre; s++)
        a->chain_gram |= px__pre_steps[p->pre[s] - 1]->needs_gram;
    if (a->chain_gram) PX_CHECK(px__gram_create(&a->gram, n, 0, a->d, NULL, a->pool));
    PX_CHECK(px__mix_create(&a->mix, n, 0, n, a->d, NULL, a->pool));
    a->K = malloc(nn * sizeof(double));
    a->Kv = malloc(nn * sizeof(double));
    a->A = malloc(nn * sizeof(double));
    a->T = malloc(nn * sizeof(double));
    a->tmp = malloc(nn * sizeof(double));
    a->ws = malloc((2 * nn + 2 * n) * sizeof(double));
    a->w = malloc(n * sizeof(double));
    a->wv = malloc(n * sizeof(double));
    a->iws = malloc(n * sizeof(size_t));
    a->Af = malloc(nn * sizeof(float));
    a->vout = malloc(n * sizeof(float *));
    a->vrows = malloc(n * sizeof(float *));
    a->vbuf = px_alloc(n * a->d * sizeof(float), "pre-aggregated vectors");
    if (!a->K || !a->Kv || !a->A || !a->T || !a->tmp || !a->ws || !a->w || !a->wv || !a->iws ||
        !a->Af || !a->vout || !a->vrows || !a->vbuf)
        return px_error(PX_ENOMEM, "aggregator: cannot allocate the pre-aggregation chain");
    for (size_t i = 0; i < n; i++) {
        a->vout[i] = a->vbuf + i * a->d;
        a->vrows[i] = a->vout[i];
    }
    return PX_OK;
}

px_status px_agg_create(px_agg **out, const char *rule, const px_agg_params *p, size_t n_max,
                        size_t d, const px_layer_table *layers, px_pool *pool)
{
    *out = NULL;
    PX_CHECK(px_agg_validate(rule, p, n_max));
    if (d == 0) return px_error(PX_EINVAL, "%s: vectors of length 0", rule);
    px_agg *a = calloc(1, sizeof *a);
    if (!a) return px_error(PX_ENOMEM, "aggregator: cannot allocate");
    px_status st = PX_OK;
    a->rule = px_agg_find(rule);
    a->params = *p;
    a->n_max = n_max;
    a->d = d;
    a->pool = pool;
    a->kept = calloc(n_max, sizeof *a->kept);
    a->finite = calloc(n_max, sizeof *a->finite);
    if (!a->kept || !a->finite) {
        st = px_error(PX_ENOMEM, "aggregator: cannot allocate");
        goto fail;
    }
    /* the layer table: the caller's, else from the parameters, else one layer */
    if (layers) {
        a->table = *layers;
    } else {
        size_t count = p->n_layers ? p->n_layers : 1;
        a->own_layers = calloc(count, sizeof *a->own_layers);
        if (!a->own_layers) {
            st = px_error(PX_ENOMEM, "aggregator: cannot allocate");
            goto fail;
        }
        size_t off = 0;
        for (size_t l = 0; l < count; l++) {
            size_t size = p->n_layers ? p->layer_sizes[l] : d;
            a->own_layers[l] = (px_layer){off, size, NULL};
            off += size;
        }
        a->table = (px_layer_table){count, a->own_layers};
    }
    size_t off = 0;
    for (size_t l = 0; l < a->table.count; l++) {
        if (a->table.layers[l].offset != off) {
            st = px_error(PX_EINVAL,
                          "%s: layer %zu starts at %zu, expected %zu (layers must tile "
                          "the vector in order)",
                          rule, l, a->table.layers[l].offset, off);
            goto fail;
        }
        off += a->table.layers[l].size;
    }
    if (off != d || a->table.count == 0) {
        st = px_error(PX_EINVAL, "%s: the layer sizes add up to %zu, but the vectors have d = %zu",
                      rule, off, d);
        goto fail;
    }
    if (p->n_pre) PX_CHECK_GOTO(px__agg_alloc_chain(a), st, fail);
    if (a->rule->create) {
        st = a->rule->create(&a->ctx, p, n_max, d, &a->table, pool);
        if (st < 0) {
            px_error_context(st, "aggregator %s", rule);
            goto fail;
        }
    }
    *out = a;
    return PX_OK;
fail:
    px_agg_destroy(a);
    return st;
}

void px_agg_destroy(px_agg *a)
{
    if (!a) return;
    if (a->ctx && a->rule->destroy) a->rule->destroy(a->ctx);
    px__gram_destroy(a->gram);
    px__mix_destroy(a->mix);
    double *bufs[] = {a->K, a->Kv, a->A, a->T, a->tmp, a->ws, a->w, a->wv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(a->iws);
    free(a->Af);
    free(a->vout);
    free(a->vrows);
    px_free(a->vbuf);
    free(a->kept);
    free(a->finite);
    free(a->own_layers);
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
    s->finite[i] = px__row_finite(s->rows[i], s->d);
}

/* Drops the rows with a NaN or Inf value into a->kept; fills the report; refuses when none is
 * left or the chain's or the rule's validity rule fails for what is left. */
static px_status px__agg_filter(px_agg *a, const float *const *rows, size_t n, size_t *kept_out,
                                px_agg_report *report)
{
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
    *kept_out = kept;
    if (kept < n) return PX_OK; /* checked by the caller, with the reduced f */
    size_t n_rule;
    PX_CHECK(px__chain_check(&a->params, kept, &n_rule));
    PX_CHECK(px__rule_check(a->rule, &a->params, kept, n_rule));
    if (report) report->n_used = n_rule;
    return PX_OK;
}

/* C = A B for row-major A (m x k) and B (k x n). */
static void px__matmul(const double *A, const double *B, size_t m, size_t k, size_t n, double *C)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t q = 0; q < k; q++)
                s += A[i * k + q] * B[q * n + j];
            C[i * n + j] = s;
        }
}

size_t px__agg_plan(px_agg *a, size_t n, uint64_t step, bool gram)
{
    const px_agg_params *p = &a->params;
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            a->A[i * n + j] = i == j;
    for (uint32_t s = 0; s < p->n_pre; s++) {
        const px__pre_step *stp = px__pre_steps[p->pre[s] - 1];
        size_t m2;
        stp->plan(p, stp->needs_gram ? a->Kv : NULL, m, step, a->T, &m2, a->ws, a->iws);
        px__matmul(a->T, a->A, m2, m, n, a->tmp);
        memcpy(a->A, a->tmp, m2 * n * sizeof(double));
        if (gram) { /* Kv <- T Kv T^T */
            px__matmul(a->T, a->Kv, m2, m, m, a->tmp);
            for (size_t i = 0; i < m2; i++)
                for (size_t j = 0; j < m2; j++) {
                    double t = 0;
                    for (size_t q = 0; q < m; q++)
                        t += a->tmp[i * m + q] * a->T[j * m + q];
                    a->ws[i * m2 + j] = t;
                }
            memcpy(a->Kv, a->ws, m2 * m2 * sizeof(double));
        }
        m = m2;
    }
    return m;
}

/* The chain on rows[0..n) (finite, or screened by the Gram pass when `screen`), then the rule. */
static px_status px__agg_chain(px_agg *a, const float *const *rows, size_t n, uint64_t step,
                               float *out, bool screen)
{
    if (a->chain_gram) {
        px__gram_run(a->gram, rows, n, 0, NULL, NULL, a->K);
        if (screen && !px__diag_finite(a->K, n, n)) return PX_AGG_NONFINITE;
        memcpy(a->Kv, a->K, n * n * sizeof(double));
    }
    size_t m = px__agg_plan(a, n, step, a->chain_gram);
    /* a rule that works from the Gram matrix: its weights, pulled back to the inputs, and one
     * pass over the inputs */
    if (a->rule->run_gram) {
        px_status st = a->rule->run_gram(a->ctx, a->chain_gram ? a->Kv : NULL, m, a->wv, step);
        if (st == PX_OK) {
            for (size_t j = 0; j < n; j++) {
                double t = 0;
                for (size_t i = 0; i < m; i++)
                    t += a->wv[i] * a->A[i * n + j];
                a->Af[j] = (float)t;
            }
            float *outs[1] = {out};
            px__mix_run(a->mix, rows, n, 0, NULL, NULL, a->Af, 1, outs);
            return PX_OK;
        }
        if (st != PX_ENOTSUP) return st;
    }
    /* otherwise build the chain's m vectors and run the rule on them */
    for (size_t i = 0; i < m * n; i++)
        a->Af[i] = (float)a->A[i];
    px__mix_run(a->mix, rows, n, 0, NULL, NULL, a->Af, m, a->vout);
    return a->rule->run(a->ctx, a->vrows, m, a->d, out, step);
}

px_status px_agg_run(px_agg *a, const float *const *rows, size_t n, uint64_t step, float *out,
                     px_agg_report *report)
{
    if (n > a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        a->rule->name, n, a->n_max);
    /* fast path: the first pass over the inputs (the rule's, or the chain's Gram pass) screens
     * them for NaN and Inf, which saves a full read when they are all finite (the common case) */
    size_t n_rule;
    bool has_chain = a->params.n_pre > 0;
    bool screens = has_chain ? a->chain_gram : a->rule->run_screened != NULL;
    if (screens && n > 0 && px__chain_check(&a->params, n, &n_rule) == PX_OK &&
        px__rule_check(a->rule, &a->params, n, n_rule) == PX_OK) {
        if (report) *report = (px_agg_report){n, 0, n_rule};
        px_status st = has_chain ? px__agg_chain(a, rows, n, step, out, true)
                                 : a->rule->run_screened(a->ctx, rows, n, a->d, out, step);
        if (st != PX_AGG_NONFINITE) return st;
    }
    /* k non-finite inputs come from k certainly faulty senders: the rule and the chain run on
     * the others with f - k (at most that many faulty inputs can remain among them) */
    uint32_t f = a->params.f;
    size_t kept = 0;
    px_status st = px__agg_filter(a, rows, n, &kept, report);
    if (st < 0) return st;
    if (kept < n) {
        size_t k = n - kept;
        a->params.f = k >= f ? 0 : f - (uint32_t)k;
        st = px__chain_check(&a->params, kept, &n_rule);
        if (st == PX_OK) st = px__rule_check(a->rule, &a->params, kept, n_rule);
        if (st == PX_OK && report) report->n_used = n_rule;
        if (st == PX_OK && a->rule->set_f) a->rule->set_f(a->ctx, a->params.f);
    }
    if (st == PX_OK)
        st = has_chain ? px__agg_chain(a, a->kept, kept, step, out, false)
                       : a->rule->run(a->ctx, a->kept, kept, a->d, out, step);
    if (kept < n) {
        a->params.f = f;
        if (a->rule->set_f) a->rule->set_f(a->ctx, f);
    }
    return st;
}

px_status px_agg_weights_gram(px_agg *a, const double *K, size_t n, uint64_t step, double *w)
{
    if (n > a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        a->rule->name, n, a->n_max);
    if (!a->rule->run_gram || !px__diag_finite(K, n, n)) return PX_ENOTSUP;
    size_t n_rule;
    PX_CHECK(px__chain_check(&a->params, n, &n_rule));
    PX_CHECK(px__rule_check(a->rule, &a->params, n, n_rule));
    if (a->params.n_pre == 0) return a->rule->run_gram(a->ctx, K, n, w, step);
    memcpy(a->Kv, K, n * n * sizeof(double));
    size_t m = px__agg_plan(a, n, step, true);
    PX_CHECK(a->rule->run_gram(a->ctx, a->Kv, m, a->wv, step));
    for (size_t j = 0; j < n; j++) {
        double t = 0;
        for (size_t i = 0; i < m; i++)
            t += a->wv[i] * a->A[i * n + j];
        w[j] = t;
    }
    return PX_OK;
}

/* ---- state across steps ------------------------------------------------------------------ */

size_t px_agg_state_bytes(const px_agg *a)
{
    size_t payload = a->rule->state_bytes && a->ctx ? a->rule->state_bytes(a->ctx) : 0;
    return PX_AGG_STATE_HEADER_BYTES + payload;
}

px_status px_agg_state_save(const px_agg *a, unsigned char *out, size_t cap)
{
    size_t bytes = px_agg_state_bytes(a), name_len = strlen(a->rule->name);
    if (cap < bytes)
        return px_error(PX_EINVAL,
                        "aggregator state: a buffer of %zu bytes, the state of \"%s\" needs %zu",
                        cap, a->rule->name, bytes);
    if (name_len >= PX_AGG_STATE_NAME_BYTES) /* a registry name too long for the header field */
        return px_error(PX_EINVAL, "aggregator state: rule name \"%s\" is longer than %u bytes",
                        a->rule->name, PX_AGG_STATE_NAME_BYTES - 1);
    px__put_u32(out, PX_AGG_STATE_MAGIC);
    px__put_u32(out + 4, PX_AGG_STATE_VERSION);
    memset(out + 8, 0, PX_AGG_STATE_NAME_BYTES);
    memcpy(out + 8, a->rule->name, name_len);
    px__put_u64(out + 24, a->d);
    px__put_u64(out + 32, a->n_max);
    px__put_u64(out + 40, bytes - PX_AGG_STATE_HEADER_BYTES);
    if (bytes > PX_AGG_STATE_HEADER_BYTES)
        a->rule->state_save(a->ctx, out + PX_AGG_STATE_HEADER_BYTES);
    return PX_OK;
}

/* The saved rule field for a message: up to its last non-zero byte, anything unprintable
 * (a zero byte inside included) as '?', so that a damaged field shows as damaged. */
static void px__state_name_text(const unsigned char *field, char *text)
{
    size_t end = PX_AGG_STATE_NAME_BYTES;
    while (end > 0 && field[end - 1] == 0)
        end--;
    for (size_t i = 0; i < end; i++)
        text[i] = field[i] >= 0x20 && field[i] < 0x7F && field[i] != '"' ? (char)field[i] : '?';
    text[end] = 0;
}

px_status px_agg_state_load(px_agg *a, const unsigned char *in, size_t len)
{
    const char *name = a->rule->name;
    if (len < PX_AGG_STATE_HEADER_BYTES)
        return px_error(PX_EINVAL,
                        "aggregator state: %zu bytes, shorter than the %u-byte header "
                        "(truncated)",
                        len, PX_AGG_STATE_HEADER_BYTES);
    uint32_t magic = px__get_u32(in), version = px__get_u32(in + 4);
    if (magic != PX_AGG_STATE_MAGIC)
        return px_error(PX_EINVAL,
                        "aggregator state: magic 0x%08x, expected 0x%08x (\"PXAS\"): these bytes "
                        "are not aggregator state",
                        magic, PX_AGG_STATE_MAGIC);
    if (version != PX_AGG_STATE_VERSION)
        return px_error(PX_EINVAL,
                        "aggregator state: format version %u, this build reads version %u", version,
                        PX_AGG_STATE_VERSION);
    /* the name field must be this rule's name followed by zero bytes, exactly as saved */
    unsigned char field[PX_AGG_STATE_NAME_BYTES] = {0};
    memcpy(field, name, strlen(name) < sizeof field ? strlen(name) : sizeof field);
    uint64_t d = px__get_u64(in + 24), n_max = px__get_u64(in + 32);
    if (memcmp(field, in + 8, sizeof field) != 0 || d != a->d || n_max != a->n_max) {
        char saved[PX_AGG_STATE_NAME_BYTES + 1];
        px__state_name_text(in + 8, saved);
        return px_error(PX_EINVAL,
                        "aggregator state: saved for rule \"%s\" with d = %llu and n_max = %llu, "
                        "this aggregator is \"%s\" with d = %zu and n_max = %zu",
                        saved, (unsigned long long)d, (unsigned long long)n_max, name, a->d,
                        a->n_max);
    }
    uint64_t payload = px__get_u64(in + 40);
    size_t follow = len - PX_AGG_STATE_HEADER_BYTES;
    if (payload != follow)
        return px_error(PX_EINVAL,
                        "aggregator state of \"%s\": the header announces %llu payload bytes, "
                        "%zu follow (%s)",
                        name, (unsigned long long)payload, follow,
                        payload > follow ? "truncated" : "trailing bytes");
    if (!a->rule->state_load || !a->ctx) {
        if (follow != 0)
            return px_error(PX_EINVAL,
                            "aggregator state: rule \"%s\" carries no state, got %zu payload "
                            "bytes",
                            name, follow);
        return PX_OK;
    }
    px_status st = a->rule->state_load(a->ctx, in + PX_AGG_STATE_HEADER_BYTES, follow);
    if (st < 0) return px_error_context(st, "aggregator state");
    return PX_OK;
}
