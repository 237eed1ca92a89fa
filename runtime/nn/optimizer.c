/* optimizer.c - the optimizer registry, SGD with momentum, and the learning-rate schedules (see
 * optimizer.h). */
#include "optimizer.h"

#include "base/table.h"
#include "runtime/nn/optimizer_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float px_lr_at(const px_lr_schedule *s, uint32_t step)
{
    if (step < s->warmup_steps) return s->lr * (float)(step + 1) / (float)s->warmup_steps;
    switch (s->kind) {
    case PX_LR_STEP:
        return s->lr * powf(s->step_gamma, (float)(step / s->step_every));
    case PX_LR_COSINE: {
        /* cosine over the steps after warm-up */
        double span = (double)s->steps - (double)s->warmup_steps;
        double t = span > 0 ? ((double)step - (double)s->warmup_steps) / span : 1.0;
        if (t > 1) t = 1;
        return (float)(s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * t)));
    }
    case PX_LR_CONSTANT:
    default:
        return s->lr;
    }
}

px_status px_sgd_create(px_sgd *o, size_t n, float momentum, float weight_decay, int nesterov)
{
    memset(o, 0, sizeof *o);
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->n = n;
    if (momentum != 0.0f) {
        o->velocity = px_alloc(n * sizeof(float), "the momentum buffer");
        if (!o->velocity) return PX_ENOMEM;
    }
    return PX_OK;
}

void px_sgd_free(px_sgd *o)
{
    px_free(o->velocity);
    o->velocity = NULL;
}

/* The update of n values; v is the momentum of those values (NULL without momentum). */
static size_t px__sgd_values(const px_sgd *o, float *restrict w, const float *restrict g,
                             float *restrict v, size_t n, float lr)
{
    const float wd = o->weight_decay, mu = o->momentum;
    size_t refused = 0;
    /* branch-free selects: the loops stay vectorised */
    if (!v) {
        for (size_t i = 0; i < n; i++) {
            float nw = px_om_sgd_plain(w[i], g[i], lr, wd);
            int ok = px_om_finite(nw);
            w[i] = ok ? nw : w[i];
            refused += !ok;
        }
        return refused;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = px_om_sgd_grad(g[i], w[i], wd);
        float nv = px_om_sgd_velocity(v[i], gi, mu);
        float nw = px_om_sgd_weight(w[i], gi, nv, lr, mu, o->nesterov);
        int ok = px_om_finite(nw) & px_om_finite(nv);
        v[i] = ok ? nv : v[i];
        w[i] = ok ? nw : w[i];
        refused += !ok;
    }
    return refused;
}

size_t px_sgd_step(px_sgd *o, float *restrict w, const float *restrict g, float lr)
{
    return px__sgd_values(o, w, g, o->velocity, o->n, lr);
}

/* The groups an optimizer steps: one of all n values when it was given none. */
static size_t px__groups(const px_optimizer *o, const px_layer_group **g, px_layer_group *one)
{
    if (o->groups) {
        *g = o->groups;
        return o->n_groups;
    }
    *one = (px_layer_group){"all", 0, o->n, PX_GROUP_MIDDLE};
    *g = one;
    return 1;
}

/* ---- SGD behind the interface ---- */

typedef struct {
    px_sgd sgd;
    int keep;            /* LISA KEEP: a frozen group keeps its momentum */
    uint8_t *was_active; /* per group: stepped last time (RESET zeroes a group leaving) */
} px__sgd_impl;

static size_t px__sgd_step(px_optimizer *o, float *w, const float *g, float lr,
                           const uint8_t *active)
{
    px__sgd_impl *s = o->impl;
    if (!active) return px_sgd_step(&s->sgd, w, g, lr);
    const px_layer_group *G, *gr;
    px_layer_group one;
    size_t ng = px__groups(o, &gr, &one), refused = 0;
    for (size_t k = 0; k < ng; k++) {
        G = &gr[k];
        float *v = s->sgd.velocity ? s->sgd.velocity + G->offset : NULL;
        if (active[k])
            refused += px__sgd_values(&s->sgd, w + G->offset, g + G->offset, v, G->size, lr);
        else if (s->was_active[k] && v && !s->keep)
            memset(v, 0, G->size * sizeof(float)); /* RESET: its next turn starts afresh */
        s->was_active[k] = active[k];
    }
    return refused;
}

static size_t px__sgd_state_bytes(const px_optimizer *o)
{
    const px__sgd_impl *s = o->impl;
    return s->sgd.velocity ? s->sgd.n * sizeof(float) : 0;
}

static void px__sgd_state_save(const px_optimizer *o, unsigned char *out)
{
    const px__sgd_impl *s = o->impl;
    if (s->sgd.velocity) memcpy(out, s->sgd.velocity, s->sgd.n * sizeof(float));
}

static px_status px__sgd_state_load(px_optimizer *o, const unsigned char *in, size_t len)
{
    px__sgd_impl *s = o->impl;
    size_t want = px__sgd_state_bytes(o);
    if (len != want)
        return px_error(PX_EINVAL,
                        "sgd state: %zu bytes, expected %zu (momentum buffer of %zu values%s)", len,
                        want, s->sgd.velocity ? s->sgd.n : 0,
                        s->sgd.velocity ? "" : ": momentum is 0, there is no state");
    for (size_t i = 0; i < s->sgd.n && s->sgd.velocity; i++) {
        float v;
        memcpy(&v, in + i * sizeof(float), sizeof v);
        if (!px_om_finite(v))
            return px_error(PX_EINVAL, "sgd state: momentum value %zu is not finite", i);
    }
    if (s->sgd.velocity) memcpy(s->sgd.velocity, in, len);
    return PX_OK;
}

static void px__sgd_destroy(px_optimizer *o)
{
    px__sgd_impl *s = o->impl;
    px_sgd_free(&s->sgd);
    free(s->was_active);
    free(s);
    free(o);
}

static const px_optimizer_ops px__sgd_ops = {
    .step = px__sgd_step,
    .state_bytes = px__sgd_state_bytes,
    .state_save = px__sgd_state_save,
    .state_load = px__sgd_state_load,
    .destroy = px__sgd_destroy,
};

static px_status px__sgd_create(px_optimizer *o, const px_optimizer_spec *spec)
{
    px__sgd_impl *s = calloc(1, sizeof *s);
    if (!s) return px_error(PX_ENOMEM, "sgd: cannot allocate");
    o->impl = s;
    o->ops = &px__sgd_ops;
    s->keep = spec->keep_frozen_state;
    s->was_active = calloc(o->n_groups ? o->n_groups : 1, 1);
    if (!s->was_active) return px_error(PX_ENOMEM, "sgd: cannot allocate");
    return px_sgd_create(&s->sgd, o->n, spec->momentum, spec->weight_decay, spec->nesterov);
}

/* ---- AdamW (ALGORITHMS.md section 6; as torch.optim.AdamW) ----
 * State per layer group, held only while the group trains (or, with KEEP, once it has): the
 * moments m and v and the group's step count t since its state was created, so that RESET
 * restarts the bias correction. A frozen group under RESET holds nothing. */

typedef struct {
    float *m, *v; /* NULL while the group holds no state */
    uint64_t t;
} px__adam_group;

typedef struct {
    float beta1, beta2, eps, weight_decay;
    int keep;
    size_t n_groups;
    px__adam_group *g;
} px__adamw;

static void px__adam_drop(px__adam_group *a)
{
    px_free(a->m);
    px_free(a->v);
    a->m = a->v = NULL;
    a->t = 0;
}

/* One AdamW update of a group's n values. Elements whose update would not be finite keep their
 * values and moments. */
static size_t px__adam_values(const px__adamw *A, px__adam_group *a, float *restrict w,
                              const float *restrict g, size_t n, float lr)
{
    a->t++;
    const float b1 = A->beta1, b2 = A->beta2, eps = A->eps;
    const px_om_adam_scalars sc = px_om_adam_at(lr, b1, b2, A->weight_decay, a->t);
    float *restrict m = a->m, *restrict v = a->v;
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        float nm = px_om_adam_m(m[i], g[i], b1);
        float nv = px_om_adam_v(v[i], g[i], b2);
        float nw = px_om_adamw_weight(w[i], nm, nv, sc.decay, sc.step, sc.bc2_sqrt, eps);
        int ok = px_om_finite(nw) & px_om_finite(nm) & px_om_finite(nv);
        m[i] = ok ? nm : m[i];
        v[i] = ok ? nv : v[i];
        w[i] = ok ? nw : w[i];
        refused += !ok;
    }
    return refused;
}

static size_t px__adamw_step(px_optimizer *o, float *w, const float *g, float lr,
                             const uint8_t *active)
{
    px__adamw *A = o->impl;
    const px_layer_group *gr;
    px_layer_group one;
    size_t ng = px__groups(o, &gr, &one), refused = 0;
    for (size_t k = 0; k < ng; k++) {
        px__adam_group *a = &A->g[k];
        if (active && !active[k]) {
            if (!A->keep) px__adam_drop(a);
            continue;
        }
        if (!a->m) {
            /* a group's state is made when it starts training (only at LISA's switches) */
            a->m = px_alloc(gr[k].size * sizeof(float), "AdamW's first moment");
            a->v = px_alloc(gr[k].size * sizeof(float), "AdamW's second moment");
            if (!a->m || !a->v) {
                px__adam_drop(a); /* cannot train it: it stays as it is this step */
                refused += gr[k].size;
                continue;
            }
            a->t = 0;
        }
        refused += px__adam_values(A, a, w + gr[k].offset, g + gr[k].offset, gr[k].size, lr);
    }
    return refused;
}

/* State layout: per group, u64 t (0 = no state held) then, when held, m and v as floats. */
static size_t px__adamw_state_bytes(const px_optimizer *o)
{
    const px__adamw *A = o->impl;
    const px_layer_group *gr;
    px_layer_group one;
    size_t ng = px__groups(o, &gr, &one), bytes = 0;
    for (size_t k = 0; k < ng; k++)
        bytes += sizeof(uint64_t) + (A->g[k].m ? 2 * gr[k].size * sizeof(float) : 0);
    return bytes;
}

static void px__adamw_state_save(const px_optimizer *o, unsigned char *out)
{
    const px__adamw *A = o->impl;
    const px_layer_group *gr;
    px_layer_group one;
    size_t ng = px__groups(o, &gr, &one);
    for (size_t k = 0; k < ng; k++) {
        uint64_t t = A->g[k].m ? A->g[k].t : 0;
        memcpy(out, &t, sizeof t);
        out += sizeof t;
        if (!A->g[k].m) continue;
        memcpy(out, A->g[k].m, gr[k].size * sizeof(float));
        out += gr[k].size * sizeof(float);
        memcpy(out, A->g[k].v, gr[k].size * sizeof(float));
        out += gr[k].size * sizeof(float);
    }
}

static px_status px__adamw_state_load(px_optimizer *o, const unsigned char *in, size_t len)
{
    px__adamw *A = o->impl;
    const px_layer_group *gr;
    px_layer_group one;
    size_t ng = px__groups(o, &gr, &one), at = 0;
    /* check everything first: a refused state leaves the optimizer as it was */
    for (size_t k = 0; k < ng; k++) {
        uint64_t t;
        if (len - at < sizeof t)
            return px_error(PX_EINVAL, "adamw state: truncated at group %zu", k);
        memcpy(&t, in + at, sizeof t);
        at += sizeof t;
        if (!t) continue;
        size_t bytes = 2 * gr[k].size * sizeof(float);
        if (len - at < bytes)
            return px_error(PX_EINVAL, "adamw state: group %s is truncated", gr[k].name);
        for (size_t i = 0; i < 2 * gr[k].size; i++) {
            float x;
            memcpy(&x, in + at + i * sizeof(float), sizeof x);
            if (!px_om_finite(x) || (i >= gr[k].size && x < 0))
                return px_error(PX_EINVAL, "adamw state: group %s holds a bad moment (%g)",
                                gr[k].name, (double)x);
        }
        at += bytes;
    }
    if (at != len)
        return px_error(PX_EINVAL, "adamw state: %zu bytes, the groups take %zu", len, at);
    at = 0;
    for (size_t k = 0; k < ng; k++) {
        px__adam_group *a = &A->g[k];
        uint64_t t;
        memcpy(&t, in + at, sizeof t);
        at += sizeof t;
        px__adam_drop(a);
        if (!t) continue;
        a->m = px_alloc(gr[k].size * sizeof(float), "AdamW's first moment");
        a->v = px_alloc(gr[k].size * sizeof(float), "AdamW's second moment");
        if (!a->m || !a->v) {
            px__adam_drop(a);
            return PX_ENOMEM;
        }
        memcpy(a->m, in + at, gr[k].size * sizeof(float));
        memcpy(a->v, in + at + gr[k].size * sizeof(float), gr[k].size * sizeof(float));
        a->t = t;
        at += 2 * gr[k].size * sizeof(float);
    }
    return PX_OK;
}

static void px__adamw_destroy(px_optimizer *o)
{
    px__adamw *A = o->impl;
    for (size_t k = 0; A->g && k < A->n_groups; k++)
        px__adam_drop(&A->g[k]);
    free(A->g);
    free(A);
    free(o);
}

static const px_optimizer_ops px__adamw_ops = {
    .step = px__adamw_step,
    .state_bytes = px__adamw_state_bytes,
    .state_save = px__adamw_state_save,
    .state_load = px__adamw_state_load,
    .destroy = px__adamw_destroy,
};

static px_status px__adamw_create(px_optimizer *o, const px_optimizer_spec *spec)
{
    if (!(spec->beta1 >= 0 && spec->beta1 < 1) || !(spec->beta2 >= 0 && spec->beta2 < 1) ||
        !(spec->eps > 0) || !(spec->weight_decay >= 0))
        return px_error(PX_EINVAL,
                        "config: AdamW needs optimizer.beta1 and beta2 in [0, 1), eps > 0 and "
                        "weight_decay >= 0 (got %g, %g, %g, %g)",
                        (double)spec->beta1, (double)spec->beta2, (double)spec->eps,
                        (double)spec->weight_decay);
    px__adamw *A = calloc(1, sizeof *A);
    if (!A) return px_error(PX_ENOMEM, "adamw: cannot allocate");
    o->impl = A;
    o->ops = &px__adamw_ops;
    A->beta1 = spec->beta1;
    A->beta2 = spec->beta2;
    A->eps = spec->eps;
    A->weight_decay = spec->weight_decay;
    A->keep = spec->keep_frozen_state;
    A->n_groups = o->n_groups ? o->n_groups : 1;
    A->g = calloc(A->n_groups, sizeof *A->g);
    return A->g ? PX_OK : px_error(PX_ENOMEM, "adamw: cannot allocate");
}

/* ---- the registry ---- */

static const px_optimizer_kind px__kinds[] = {
    {"sgd", "SGD with momentum, Nesterov and L2 weight decay (torch.optim.SGD)", px__sgd_create},
    {"adamw", "AdamW with decoupled weight decay, state per layer group (torch.optim.AdamW)",
     px__adamw_create},
};

#define PX__KINDS (sizeof px__kinds / sizeof px__kinds[0])

size_t px_optimizer_kind_count(void)
{
    return PX__KINDS;
}

const px_optimizer_kind *px_optimizer_kind_at(size_t i)
{
    return i < PX__KINDS ? &px__kinds[i] : NULL;
}

const px_optimizer_kind *px_optimizer_find(const char *name)
{
    return px_table_find(px__kinds, PX__KINDS, sizeof px__kinds[0], name);
}

px_status px_optimizer_create(px_optimizer **out, const char *name, const px_optimizer_spec *spec,
                              size_t n, const px_layer_group *groups, size_t n_groups)
{
    *out = NULL;
    const px_optimizer_kind *k = px_optimizer_find(name);
    if (!k) {
        char known[256];
        px_table_names(px__kinds, PX__KINDS, sizeof px__kinds[0], known, sizeof known);
        return px_error(PX_EINVAL,
                        "config: optimizer.kind \"%s\" is not an optimizer of this build "
                        "(known: %s)",
                        name ? name : "", known);
    }
    px_optimizer *o = calloc(1, sizeof *o);
    if (!o) return px_error(PX_ENOMEM, "optimizer: cannot allocate");
    o->kind = k->name;
    o->n = n;
    o->groups = groups;
    o->n_groups = groups ? n_groups : 1;
    px_status st = k->create(o, spec);
    if (st < 0) {
        if (o->ops)
            o->ops->destroy(o);
        else
            free(o);
        return st;
    }
    *out = o;
    return PX_OK;
}

void px_optimizer_destroy(px_optimizer *o)
{
    if (o) o->ops->destroy(o);
}
