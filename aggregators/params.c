/* params.c - the parameters of the aggregator library: the defaults (the only place they are
 * written), the table of keys with their kinds and ranges, typed access, and access as text for
 * configs, command lines and `--help`. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- parameters -------------------------------------------------------------------------- */

void px_agg_params_default(px_agg_params *p)
{
    memset(p, 0, sizeof *p);
    p->f = 0;
    p->seed = 1;
    p->m = 0;
    p->iters = 4;
    p->lambda = 0.0;
    p->init = PX_AGG_INIT_PCA;
    p->warm_start = false;
    p->rescale = false;
    p->q = 0;
    p->geomed_nu = 0.1;
    p->geomed_iters = 100;
    p->geomed_tol = 1e-7;
    p->tau = 10.0;
    p->cclip_iters = 1;
    p->kappa = 0.8;
    p->fedld_history = false;
    p->n_pre = 0;
    p->clip_norm = 2.0;
    p->bucket_size = 2;
    p->n_layers = 0;
}

/* One key: what --help says of it, where its value lives in px_agg_params, and the values it
 * accepts. This table is the only place that states a range; px_agg_params_default the only one
 * that states a default. */
typedef struct {
    px_agg_param_info info; /* first: px_agg_param_at hands out &row->info */
    size_t offset, size;    /* the field in px_agg_params (not TEXT keys) */
    uint64_t umin, umax;    /* UINT: the least and the largest value (umax 0: the field's) */
    double lo, hi;          /* REAL: in [lo, hi], or (lo, hi] when lo_open */
    bool lo_open;
} px__param;

/* A key per field of px_agg_params, named as the field; _Generic checks the field's C type
 * against the kind (a key declared with the wrong macro does not compile). */
#define PX__FIELD(name) offsetof(px_agg_params, name), sizeof(((px_agg_params *)0)->name)
#define PX__UINT_IN(name, min, max, used_by, help)                                                 \
    {{#name, _Generic(((px_agg_params *)0)->name, uint32_t: PX_AGG_PARAM_UINT,                     \
                      uint64_t: PX_AGG_PARAM_UINT), used_by, help},                                \
     PX__FIELD(name), (min), (max), 0, 0, false}
#define PX__UINT(name, min, used_by, help) PX__UINT_IN(name, min, 0, used_by, help)
#define PX__REAL(name, lo, lo_open, hi, used_by, help)                                             \
    {{#name, _Generic(((px_agg_params *)0)->name, double: PX_AGG_PARAM_REAL), used_by, help},      \
     PX__FIELD(name), 0, 0, (lo), (hi), (lo_open)}
#define PX__BOOL(name, used_by, help)                                                              \
    {{#name, _Generic(((px_agg_params *)0)->name, bool: PX_AGG_PARAM_BOOL), used_by, help},        \
     PX__FIELD(name), 0, 0, 0, 0, false}
#define PX__TEXT(key, used_by, help)                                                               \
    {{key, PX_AGG_PARAM_TEXT, used_by, help}, 0, 0, 0, 0, 0, 0, false}

static const px__param px__params[] = {
    PX__UINT(f, 0, "trimmed_mean krum multi_krum bulyan geomed meamed nnm",
             "declared number of Byzantine inputs (validity rules and trimming)"),
    PX__UINT(seed, 0, "flag (init=random) bucketing", "seed of the rule's random choices"),
    PX__UINT(m, 0, "flag", "subspace dimension; 0 = ceil(n/2); clamped to n"),
    PX__UINT_IN(iters, 0, PX_AGG_MAX_ITERS, "flag", "IRLS iterations T (0 = the start subspace)"),
    PX__REAL(lambda, 0, false, INFINITY, "flag", "pairwise regulariser"),
    PX__TEXT("init", "flag", "start subspace: pca (top-m eigenvectors) or random (seeded)"),
    PX__BOOL(warm_start, "flag", "start from the previous step's subspace"),
    PX__BOOL(rescale, "flag", "multiply the unit-scale output by the median input norm"),
    PX__UINT(q, 0, "multi_krum", "inputs averaged; 0 = n-f; clamped to n"),
    PX__REAL(geomed_nu, 0, true, INFINITY, "geomed", "Weiszfeld smoothing distance"),
    PX__UINT_IN(geomed_iters, 0, PX_AGG_MAX_ITERS, "geomed", "Weiszfeld iteration cap"),
    PX__REAL(geomed_tol, 0, false, INFINITY, "geomed",
             "stop when the objective improves by less than this fraction"),
    PX__REAL(tau, 0, true, INFINITY, "cclip", "clipping radius"),
    PX__UINT_IN(cclip_iters, 0, PX_AGG_MAX_ITERS, "cclip", "clipping rounds L per step"),
    PX__REAL(kappa, 0, true, 1.0, "fedld",
             "fraction of principal directions kept; k = max(1, floor(n kappa))"),
    PX__BOOL(fedld_history, "fedld", "every layer starts with history (no first-round mean)"),
    PX__TEXT("layers", "fedld",
             "comma-separated layer sizes in floats, adding up to d; empty = one layer (the "
             "trainer passes its own table)"),
    PX__TEXT("pre", "all rules", "pre-aggregation chain, comma-separated: clip, nnm, bucketing"),
    PX__REAL(clip_norm, 0, true, INFINITY, "clip", "static clipping threshold"),
    PX__UINT(bucket_size, 1, "bucketing", "bucket size s"),
};
#define PX__N_PARAMS (sizeof px__params / sizeof px__params[0])

/* the names of px_agg_init, by value */
static const char *const px__init_names[] = {[PX_AGG_INIT_PCA] = "pca",
                                             [PX_AGG_INIT_RANDOM] = "random"};

size_t px_agg_param_count(void)
{
    return PX__N_PARAMS;
}

const px_agg_param_info *px_agg_param_at(size_t i)
{
    return i < PX__N_PARAMS ? &px__params[i].info : NULL;
}

static const px__param *px__param_find(const char *key)
{
    for (size_t i = 0; i < PX__N_PARAMS; i++)
        if (!strcmp(px__params[i].info.key, key)) return &px__params[i];
    return NULL;
}

const px_agg_param_info *px_agg_param_find(const char *key)
{
    const px__param *k = px__param_find(key);
    return k ? &k->info : NULL;
}

static uint64_t px__umax(const px__param *k)
{
    if (k->umax) return k->umax;
    return k->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
}

const char *px_agg_param_range(const px_agg_param_info *info, char *buf, size_t cap)
{
    const px__param *k = (const px__param *)info; /* info is the first member of its row */
    buf[0] = 0;
    if (k->info.type == PX_AGG_PARAM_UINT && k->umax)
        snprintf(buf, cap, "in [%llu, %llu]", (unsigned long long)k->umin,
                 (unsigned long long)k->umax);
    else if (k->info.type == PX_AGG_PARAM_UINT && k->umin > 0)
        snprintf(buf, cap, ">= %llu", (unsigned long long)k->umin);
    else if (k->info.type == PX_AGG_PARAM_REAL && isinf(k->hi))
        snprintf(buf, cap, "%s %g", k->lo_open ? ">" : ">=", k->lo);
    else if (k->info.type == PX_AGG_PARAM_REAL)
        snprintf(buf, cap, "in %c%g, %g]", k->lo_open ? '(' : '[', k->lo, k->hi);
    return buf;
}

/* "an integer in [1, 4294967295]", "a number > 0", ...: what a message says key k expects */
static const char *px__expected(const px__param *k, char *buf, size_t cap)
{
    char range[64];
    switch (k->info.type) {
    case PX_AGG_PARAM_UINT:
        snprintf(buf, cap, "an integer in [%llu, %llu]", (unsigned long long)k->umin,
                 (unsigned long long)px__umax(k));
        break;
    case PX_AGG_PARAM_REAL:
        snprintf(buf, cap, "a number %s", px_agg_param_range(&k->info, range, sizeof range));
        break;
    case PX_AGG_PARAM_BOOL:
        snprintf(buf, cap, "0, 1, true or false");
        break;
    default:
        snprintf(buf, cap, "text");
    }
    return buf;
}

static const char *px__type_name(px_agg_param_type t)
{
    static const char *const names[] = {"an integer", "a number", "a boolean", "text"};
    return names[t];
}

/* The row of key, which must be of kind `type`; NULL (and the message) otherwise. */
static const px__param *px__param_lookup(const char *key, px_agg_param_type type)
{
    const px__param *k = px__param_find(key);
    if (!k)
        px_error(PX_EINVAL, "unknown aggregator parameter '%s' (aggregate --help lists them)",
                 key);
    else if (k->info.type != type)
        px_error(PX_EINVAL, "aggregator parameter %s takes %s, not %s", key,
                 px__type_name(k->info.type), px__type_name(type));
    return k && k->info.type == type ? k : NULL;
}

static px_status px__check_uint(const px__param *k, uint64_t v)
{
    if (v >= k->umin && v <= px__umax(k)) return PX_OK;
    char want[96];
    return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got %llu", k->info.key,
                    px__expected(k, want, sizeof want), (unsigned long long)v);
}

static px_status px__check_real(const px__param *k, double v)
{
    if (isfinite(v) && v <= k->hi && (k->lo_open ? v > k->lo : v >= k->lo)) return PX_OK;
    char want[96];
    return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got %g", k->info.key,
                    px__expected(k, want, sizeof want), v);
}

px_status px_agg_params_set_uint(px_agg_params *p, const char *key, uint64_t value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_UINT);
    if (!k) return PX_EINVAL;
    PX_CHECK(px__check_uint(k, value));
    char *field = (char *)p + k->offset;
    if (k->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)value;
        memcpy(field, &v32, sizeof v32);
    } else {
        memcpy(field, &value, sizeof value);
    }
    return PX_OK;
}

px_status px_agg_params_set_real(px_agg_params *p, const char *key, double value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_REAL);
    if (!k) return PX_EINVAL;
    PX_CHECK(px__check_real(k, value));
    memcpy((char *)p + k->offset, &value, sizeof value);
    return PX_OK;
}

px_status px_agg_params_set_bool(px_agg_params *p, const char *key, bool value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_BOOL);
    if (!k) return PX_EINVAL;
    memcpy((char *)p + k->offset, &value, sizeof value);
    return PX_OK;
}

static uint64_t px__read_uint(const px_agg_params *p, const px__param *k)
{
    const char *field = (const char *)p + k->offset;
    if (k->size == sizeof(uint32_t)) {
        uint32_t v32;
        memcpy(&v32, field, sizeof v32);
        return v32;
    }
    uint64_t v;
    memcpy(&v, field, sizeof v);
    return v;
}

static double px__read_real(const px_agg_params *p, const px__param *k)
{
    double v;
    memcpy(&v, (const char *)p + k->offset, sizeof v);
    return v;
}

px_status px_agg_params_get_uint(const px_agg_params *p, const char *key, uint64_t *value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_UINT);
    if (!k) return PX_EINVAL;
    *value = px__read_uint(p, k);
    return PX_OK;
}

px_status px_agg_params_get_real(const px_agg_params *p, const char *key, double *value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_REAL);
    if (!k) return PX_EINVAL;
    *value = px__read_real(p, k);
    return PX_OK;
}

px_status px_agg_params_get_bool(const px_agg_params *p, const char *key, bool *value)
{
    const px__param *k = px__param_lookup(key, PX_AGG_PARAM_BOOL);
    if (!k) return PX_EINVAL;
    memcpy(value, (const char *)p + k->offset, sizeof *value);
    return PX_OK;
}

/* ---- parameters as text ---- */

static px_status px__parse_u64(const char *key, const char *value, const char *want,
                               uint64_t *out)
{
    /* strtoull would take a sign or leading blanks: refused, so "-1" is not 2^64 - 1 */
    bool ok = value[0] >= '0' && value[0] <= '9';
    if (ok) {
        char *end;
        errno = 0;
        *out = strtoull(value, &end, 10);
        ok = !errno && !*end;
    }
    if (!ok)
        return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got '%s'", key, want,
                        value);
    return PX_OK;
}

static px_status px__parse_pre(const char *value, px_agg_params *p)
{
    uint8_t steps[PX_AGG_MAX_PRE];
    uint32_t count = 0;
    const char *s = value;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        size_t k = 0;
        while (k < px_agg_pre_count() &&
               !(strlen(px_agg_pre_name(k)) == len && !strncmp(px_agg_pre_name(k), s, len)))
            k++;
        if (k == px_agg_pre_count())
            return px_error(PX_EINVAL,
                            "aggregator parameter pre: unknown step '%.*s' in '%s' "
                            "(known: clip, nnm, bucketing)",
                            (int)len, s, value);
        if (count == PX_AGG_MAX_PRE)
            return px_error(PX_EINVAL, "aggregator parameter pre: more than %d steps in '%s'",
                            PX_AGG_MAX_PRE, value);
        steps[count++] = (uint8_t)(k + 1);
        if (!e) break;
        s = e + 1;
        if (!*s)
            return px_error(PX_EINVAL, "aggregator parameter pre: empty step at the end of '%s'",
                            value);
    }
    memcpy(p->pre, steps, count);
    p->n_pre = count;
    return PX_OK;
}

static px_status px__parse_layers(const char *value, px_agg_params *p)
{
    /* two passes: check everything first, so that a refused value leaves p unchanged */
    for (int store = 0; store < 2; store++) {
        uint32_t count = 0;
        const char *s = value;
        while (*s) {
            char item[32];
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (len == 0 || len >= sizeof item)
                return px_error(PX_EINVAL, "aggregator parameter layers: bad size '%.*s' in '%s'",
                                (int)len, s, value);
            memcpy(item, s, len);
            item[len] = 0;
            if (count == PX_AGG_MAX_LAYERS)
                return px_error(PX_EINVAL, "aggregator parameter layers: more than %d layers",
                                PX_AGG_MAX_LAYERS);
            uint64_t v = 0;
            PX_CHECK(px__parse_u64("layers", item, "sizes of at least 1", &v));
            if (v == 0)
                return px_error(PX_EINVAL,
                                "aggregator parameter layers: expected sizes of at least 1, "
                                "got '%s' in '%s'",
                                item, value);
            if (store) p->layer_sizes[count] = v;
            count++;
            if (!e) break;
            s = e + 1;
            if (!*s)
                return px_error(PX_EINVAL,
                                "aggregator parameter layers: empty size at the end "
                                "of '%s'",
                                value);
        }
        if (store) p->n_layers = count;
    }
    return PX_OK;
}

static px_status px__parse_init(const char *value, px_agg_params *p)
{
    for (size_t i = 0; i < sizeof px__init_names / sizeof px__init_names[0]; i++)
        if (!strcmp(value, px__init_names[i])) {
            p->init = (px_agg_init)i;
            return PX_OK;
        }
    return px_error(PX_EINVAL, "aggregator parameter init: expected pca or random, got '%s'",
                    value);
}

px_status px_agg_params_set(px_agg_params *p, const char *key, const char *value)
{
    const px__param *k = px__param_find(key);
    if (!k)
        return px_error(PX_EINVAL,
                        "unknown aggregator parameter '%s' (aggregate --help lists them)", key);
    char want[96];
    px__expected(k, want, sizeof want);
    switch (k->info.type) {
    case PX_AGG_PARAM_UINT: {
        uint64_t v = 0;
        PX_CHECK(px__parse_u64(key, value, want, &v));
        if (v > px__umax(k))
            return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got '%s'", key,
                            want, value);
        return px_agg_params_set_uint(p, key, v);
    }
    case PX_AGG_PARAM_REAL: {
        char *end;
        errno = 0;
        double v = value[0] ? strtod(value, &end) : NAN;
        if (!value[0] || errno || *end)
            return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got '%s'", key,
                            want, value);
        return px_agg_params_set_real(p, key, v);
    }
    case PX_AGG_PARAM_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true")) return px_agg_params_set_bool(p, key, 1);
        if (!strcmp(value, "0") || !strcmp(value, "false"))
            return px_agg_params_set_bool(p, key, 0);
        return px_error(PX_EINVAL, "aggregator parameter %s: expected %s, got '%s'", key, want,
                        value);
    default:
        break;
    }
    if (!strcmp(key, "init")) return px__parse_init(value, p);
    if (!strcmp(key, "pre")) return px__parse_pre(value, p);
    return px__parse_layers(value, p);
}

/* Appends text to buf (holding *len bytes); false when it does not fit. */
static bool px__append(char *buf, size_t cap, size_t *len, const char *text)
{
    size_t n = strlen(text);
    if (*len + n + 1 > cap) return false;
    memcpy(buf + *len, text, n + 1);
    *len += n;
    return true;
}

px_status px_agg_params_get_text(const px_agg_params *p, const char *key, char *buf, size_t cap)
{
    const px__param *k = px__param_find(key);
    if (cap) buf[0] = 0;
    if (!k)
        return px_error(PX_EINVAL,
                        "unknown aggregator parameter '%s' (aggregate --help lists them)", key);
    char item[64];
    size_t len = 0;
    bool fits = cap > 0;
    switch (k->info.type) {
    case PX_AGG_PARAM_UINT:
        snprintf(item, sizeof item, "%llu", (unsigned long long)px__read_uint(p, k));
        fits = px__append(buf, cap, &len, item);
        break;
    case PX_AGG_PARAM_REAL: {
        /* the shortest text that reads back to the same double (0.1, not 0.10000000000000001) */
        double v = px__read_real(p, k);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(item, sizeof item, "%.*g", prec, v);
            if (strtod(item, NULL) == v) break;
        }
        fits = px__append(buf, cap, &len, item);
        break;
    }
    case PX_AGG_PARAM_BOOL: {
        bool v;
        memcpy(&v, (const char *)p + k->offset, sizeof v);
        fits = px__append(buf, cap, &len, v ? "1" : "0");
        break;
    }
    default:
        if (!strcmp(key, "init")) {
            fits = px__append(buf, cap, &len,
                              (size_t)p->init < sizeof px__init_names / sizeof px__init_names[0]
                                  ? px__init_names[p->init]
                                  : "?");
        } else if (!strcmp(key, "pre")) {
            for (uint32_t s = 0; s < p->n_pre && fits; s++) {
                if (s) fits = px__append(buf, cap, &len, ",");
                const char *name =
                    p->pre[s] >= 1 && p->pre[s] <= px_agg_pre_count() ? px_agg_pre_name(p->pre[s] - 1)
                                                               : "?";
                if (fits) fits = px__append(buf, cap, &len, name);
            }
        } else {
            for (uint32_t l = 0; l < p->n_layers && l < PX_AGG_MAX_LAYERS && fits; l++) {
                snprintf(item, sizeof item, "%s%llu", l ? "," : "",
                         (unsigned long long)p->layer_sizes[l]);
                fits = px__append(buf, cap, &len, item);
            }
        }
    }
    if (!fits) {
        if (cap) buf[0] = 0;
        return px_error(PX_EINVAL, "aggregator parameter %s: its text needs more than %zu bytes",
                        key, cap);
    }
    return PX_OK;
}

/* The ranges of every key and the codes of init and pre, for parameters a caller may have
 * written field by field (the text and typed setters check them as they go). */
px_status px__agg_params_check(const px_agg_params *p)
{
    for (size_t i = 0; i < PX__N_PARAMS; i++) {
        const px__param *k = &px__params[i];
        if (k->info.type == PX_AGG_PARAM_UINT) PX_CHECK(px__check_uint(k, px__read_uint(p, k)));
        if (k->info.type == PX_AGG_PARAM_REAL) PX_CHECK(px__check_real(k, px__read_real(p, k)));
    }
    if ((size_t)p->init >= sizeof px__init_names / sizeof px__init_names[0])
        return px_error(PX_EINVAL, "aggregator parameter init: %d is not pca or random",
                        (int)p->init);
    if (p->n_pre > PX_AGG_MAX_PRE)
        return px_error(PX_EINVAL, "aggregator parameter pre: %u steps, more than %d",
                        p->n_pre, PX_AGG_MAX_PRE);
    for (uint32_t s = 0; s < p->n_pre; s++)
        if (p->pre[s] < 1 || p->pre[s] > px_agg_pre_count())
            return px_error(PX_EINVAL, "aggregator: bad pre-aggregation step %u", p->pre[s]);
    if (p->n_layers > PX_AGG_MAX_LAYERS)
        return px_error(PX_EINVAL, "aggregator parameter layers: %u layers, more than %d",
                        p->n_layers, PX_AGG_MAX_LAYERS);
    return PX_OK;
}
