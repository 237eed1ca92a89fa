/* shard.c - the aggregator of one shard of a server sharded by coordinate (aggregator.h,
 * "a server sharded by coordinate"): each shard sees a slice of every input, contributes a
 * partial (non-finite flags, partial Gram matrix) to a sum that every shard receives alike, and
 * takes every decision from that sum, so that all shards decide alike.
 *
 * Coordinate-wise rules need only the flags (which inputs to drop everywhere); rules with a Gram
 * form get their weights from the summed Gram matrix (px_agg_weights_gram: the chain and the
 * rule planned on n x n matrices) and apply them to the slice in one pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coord_math.h"
#include "internal.h"

struct px_agg_shard {
    px_agg *a;      /* the slice's composed aggregator (its chain's buffers and the rule) */
    bool gram;      /* the partial carries the slice's Gram matrix */
    bool gram_form; /* the rule's output is a weighted sum of its inputs */
    px__gram *pass; /* the Gram pass over the slice */
    px__mix *mix;   /* the output pass: one weighted sum */
    double *Kk;     /* n_max x n_max: the summed Gram matrix of the inputs kept */
    double *wk;     /* n_max: the weights of the inputs kept */
    float *Af;      /* n_max: those weights in float, as px_agg_run's own output pass uses them */
    const float **kept;
    size_t *idx; /* n_max: the index of each kept input */
};

px_status px_agg_shard_check(const char *rule, const px_agg_params *p)
{
    const px_agg_rule *r = px_agg_find(rule);
    if (!r) return px_agg_validate(rule, p, 1); /* names the known rules */
    const char *why = NULL;
    if (r->coordinatewise) return PX_OK;
    if (!r->run_gram)
        why = strcmp(rule, "bulyan") == 0 ? "its coordinate-wise stage runs on Krum's choice of "
                                            "whole vectors"
              : strcmp(rule, "cclip") == 0 ? "its centre is a vector carried from step to step"
              : strcmp(rule, "fedld") == 0 ? "it needs one Gram matrix per layer"
                                           : "it has neither a Gram form nor a coordinate-wise one";
    else if (strcmp(rule, "flag") == 0 && (p->warm_start || p->init != PX_AGG_INIT_PCA))
        why = "flag needs init = pca and no warm start (a random or warm start reads whole "
              "vectors)";
    if (!why) return PX_OK;
    return px_error(PX_ENOTSUP, "aggregator.rule = %s cannot run on a sharded server: %s", rule,
                    why);
}

void px_agg_shard_destroy(px_agg_shard *s)
{
    if (!s) return;
    px_agg_destroy(s->a);
    px__gram_destroy(s->pass);
    px__mix_destroy(s->mix);
    free(s->Kk);
    free(s->wk);
    free(s->Af);
    free(s->kept);
    free(s->idx);
    free(s);
}

px_status px_agg_shard_create(px_agg_shard **out, const char *rule, const px_agg_params *p,
                              size_t n_max, size_t d, px_pool *pool)
{
    *out = NULL;
    PX_CHECK(px_agg_shard_check(rule, p));
    px_agg_params one = *p;
    one.n_layers = 0; /* the slice is one layer: no rule that reads layers can be sharded */
    px_agg_shard *s = calloc(1, sizeof *s);
    if (!s) return px_error(PX_ENOMEM, "aggregator shard: cannot allocate");
    px_status st;
    PX_CHECK_GOTO(px_agg_create(&s->a, rule, &one, n_max, d, NULL, pool), st, fail);
    const px_agg_rule *r = s->a->rule;
    s->gram_form = r->run_gram != NULL;
    /* the Gram matrix is read by the chain (s->a->chain_gram, set when there is one) or by a
     * Gram-form rule other than the mean (whose weights need none) */
    s->gram = p->n_pre ? s->a->chain_gram : s->gram_form && strcmp(r->name, "mean") != 0;
    if (s->gram) PX_CHECK_GOTO(px__gram_create(&s->pass, n_max, 0, d, NULL, pool), st, fail);
    if (s->gram_form) PX_CHECK_GOTO(px__mix_create(&s->mix, n_max, 0, 1, d, NULL, pool), st, fail);
    s->Kk = calloc(n_max * n_max, sizeof *s->Kk);
    s->wk = calloc(n_max, sizeof *s->wk);
    s->Af = calloc(n_max, sizeof *s->Af);
    s->kept = calloc(n_max, sizeof *s->kept);
    s->idx = calloc(n_max, sizeof *s->idx);
    if (!s->Kk || !s->wk || !s->Af || !s->kept || !s->idx) {
        st = px_error(PX_ENOMEM, "aggregator shard: cannot allocate");
        goto fail;
    }
    *out = s;
    return PX_OK;
fail:
    px_agg_shard_destroy(s);
    return st;
}

size_t px_agg_shard_partial_len(const px_agg_shard *s, size_t n)
{
    return n + (s->gram ? n * n : 0);
}

px_status px_agg_shard_partial(px_agg_shard *s, const float *const *rows, size_t n,
                               double *partial)
{
    if (n > s->a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        s->a->rule->name, n, s->a->n_max);
    size_t d = s->a->d;
    if (s->gram) {
        /* a finite diagonal entry proves its row finite (an Inf or NaN would make it non-finite);
         * only the others are scanned, since a huge finite row can overflow its square */
        px__gram_run(s->pass, rows, n, 0, NULL, NULL, partial + n);
        for (size_t i = 0; i < n; i++)
            partial[i] = isfinite(partial[n + i * n + i]) ? 0.0 : !px__row_finite(rows[i], d);
    } else {
        for (size_t i = 0; i < n; i++)
            partial[i] = !px__row_finite(rows[i], d);
    }
    return PX_OK;
}

px_status px_agg_shard_coordwise(const px_agg_shard *s, int *rule, size_t *f)
{
    const char *name = s->a->rule->name;
    if (!s->a->rule->coordinatewise || s->a->params.n_pre)
        return px_error(PX_ENOTSUP, "%s is not a coordinate-wise rule without a chain", name);
    if (strcmp(name, "median") == 0)
        *rule = PX_CW_MEDIAN;
    else if (strcmp(name, "trimmed_mean") == 0)
        *rule = PX_CW_TRIMMED_MEAN;
    else if (strcmp(name, "meamed") == 0)
        *rule = PX_CW_MEAMED;
    else
        return px_error(PX_ENOTSUP, "%s has no per-coordinate function", name);
    *f = s->a->params.f;
    return PX_OK;
}

int px_agg_shard_needs_gram(const px_agg_shard *s)
{
    return s->gram;
}

px_status px_agg_shard_partial_gram(px_agg_shard *s, const float *const *rows, size_t n,
                                    const double *G, double *partial)
{
    if (!s->gram) return px_agg_shard_partial(s, rows, n, partial);
    if (n > s->a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        s->a->rule->name, n, s->a->n_max);
    memcpy(partial + n, G, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) /* as px_agg_shard_partial: the diagonal proves a row finite */
        partial[i] = isfinite(G[i * n + i]) ? 0.0 : !px__row_finite(rows[i], s->a->d);
    return PX_OK;
}

/* The decision and this slice's output, for the kept inputs (f already lowered) */
static px_status px__shard_apply(px_agg_shard *s, size_t n, size_t kept, uint64_t step,
                                 const double *sum, float *out)
{
    px_agg *a = s->a;
    for (size_t i = 0; i < kept; i++)
        for (size_t j = 0; j < kept; j++)
            s->Kk[i * kept + j] = s->gram ? sum[n + s->idx[i] * n + s->idx[j]] : 0.0;
    if (s->gram_form) {
        px_status st = px_agg_weights_gram(a, s->Kk, kept, step, s->wk);
        if (st == PX_ENOTSUP)
            return px_error(PX_EINVAL,
                            "%s: the Gram matrix of the inputs is not finite (values too large "
                            "to square in float)",
                            a->rule->name);
        PX_CHECK(st);
        for (size_t j = 0; j < kept; j++)
            s->Af[j] = (float)s->wk[j];
        float *outs[1] = {out};
        px__mix_run(s->mix, s->kept, kept, 0, NULL, NULL, s->Af, 1, outs);
        return PX_OK;
    }
    size_t n_rule;
    PX_CHECK(px__chain_check(&a->params, kept, &n_rule));
    PX_CHECK(px__rule_check(a->rule, &a->params, kept, n_rule));
    if (a->params.n_pre == 0) return a->rule->run(a->ctx, s->kept, kept, a->d, out, step);
    /* a coordinate-wise rule behind a chain: the chain's vectors on this slice, then the rule */
    if (s->gram) memcpy(a->Kv, s->Kk, kept * kept * sizeof(double));
    size_t m = px__agg_plan(a, kept, step, s->gram);
    for (size_t i = 0; i < m * kept; i++)
        a->Af[i] = (float)a->A[i];
    px__mix_run(a->mix, s->kept, kept, 0, NULL, NULL, a->Af, m, a->vout);
    return a->rule->run(a->ctx, a->vrows, m, a->d, out, step);
}

px_status px_agg_shard_finish(px_agg_shard *s, const float *const *rows, size_t n, uint64_t step,
                              const double *sum, float *out, double *w, px_agg_report *report)
{
    px_agg *a = s->a;
    if (n > a->n_max)
        return px_error(PX_EINVAL, "%s: %zu inputs, more than the %zu it was created for",
                        a->rule->name, n, a->n_max);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (sum[i] == 0.0) {
            s->idx[kept] = i;
            s->kept[kept++] = rows[i];
        }
    if (report) *report = (px_agg_report){n, n - kept, kept};
    if (w)
        for (size_t i = 0; i < n; i++)
            w[i] = s->gram_form ? 0.0 : NAN;
    if (kept == 0)
        return px_error(PX_EINVAL, "%s: none of the %zu inputs is finite", a->rule->name, n);
    /* as px_agg_run: k inputs non-finite anywhere come from certainly faulty senders */
    uint32_t f = a->params.f;
    if (kept < n) {
        size_t k = n - kept;
        a->params.f = k >= f ? 0 : f - (uint32_t)k;
        if (a->rule->set_f) a->rule->set_f(a->ctx, a->params.f);
    }
    size_t n_rule = kept;
    px_status st = px__chain_check(&a->params, kept, &n_rule);
    if (st == PX_OK) st = px__rule_check(a->rule, &a->params, kept, n_rule);
    if (st == PX_OK) {
        if (report) report->n_used = n_rule;
        st = px__shard_apply(s, n, kept, step, sum, out);
    }
    if (kept < n) {
        a->params.f = f;
        if (a->rule->set_f) a->rule->set_f(a->ctx, f);
    }
    if (st == PX_OK && w && s->gram_form)
        for (size_t j = 0; j < kept; j++)
            w[s->idx[j]] = s->wk[j];
    return st;
}
