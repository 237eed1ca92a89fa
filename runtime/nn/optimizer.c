/* optimizer.c - the optimizer registry, SGD with momentum, and the learning-rate schedules (see
 * optimizer.h). */
#include "optimizer.h"

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

static inline int px__finite(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return (bits & 0x7F800000u) != 0x7F800000u;
}

size_t px_sgd_step(px_sgd *o, float *restrict w, const float *restrict g, float lr)
{
    const float wd = o->weight_decay, mu = o->momentum;
    float *restrict v = o->velocity;
    size_t n = o->n, refused = 0;
    /* branch-free selects: the loops stay vectorised */
    if (!v) {
        for (size_t i = 0; i < n; i++) {
            float nw = w[i] - lr * (g[i] + wd * w[i]);
            int ok = px__finite(nw);
            w[i] = ok ? nw : w[i];
            refused += !ok;
        }
        return refused;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float nv = mu * v[i] + gi;
        float nw = w[i] - lr * (o->nesterov ? gi + mu * nv : nv);
        int ok = px__finite(nw) & px__finite(nv);
        v[i] = ok ? nv : v[i];
        w[i] = ok ? nw : w[i];
        refused += !ok;
    }
    return refused;
}

/* ---- SGD behind the interface ---- */

static size_t px__sgd_step(px_optimizer *o, float *w, const float *g, float lr)
{
    return px_sgd_step(o->impl, w, g, lr);
}

static size_t px__sgd_state_bytes(const px_optimizer *o)
{
    const px_sgd *s = o->impl;
    return s->velocity ? s->n * sizeof(float) : 0;
}

static void px__sgd_state_save(const px_optimizer *o, unsigned char *out)
{
    const px_sgd *s = o->impl;
    if (s->velocity) memcpy(out, s->velocity, s->n * sizeof(float));
}

static px_status px__sgd_state_load(px_optimizer *o, const unsigned char *in, size_t len)
{
    px_sgd *s = o->impl;
    size_t want = px__sgd_state_bytes(o);
    if (len != want)
        return px_error(
            PX_EINVAL, "sgd state: %zu bytes, expected %zu (momentum buffer of %zu values%s)", len,
            want, s->velocity ? s->n : 0, s->velocity ? "" : ": momentum is 0, there is no state");
    for (size_t i = 0; i < s->n && s->velocity; i++) {
        float v;
        memcpy(&v, in + i * sizeof(float), sizeof v);
        if (!px__finite(v))
            return px_error(PX_EINVAL, "sgd state: momentum value %zu is not finite", i);
    }
    if (s->velocity) memcpy(s->velocity, in, len);
    return PX_OK;
}

static void px__sgd_destroy(px_optimizer *o)
{
    px_sgd_free(o->impl);
    free(o->impl);
    free(o);
}

static const px_optimizer_ops px__sgd_ops = {
    .step = px__sgd_step,
    .state_bytes = px__sgd_state_bytes,
    .state_save = px__sgd_state_save,
    .state_load = px__sgd_state_load,
    .destroy = px__sgd_destroy,
};

static px_status px__sgd_create(px_optimizer **out, const px_optimizer_spec *spec, size_t n)
{
    px_optimizer *o = calloc(1, sizeof *o);
    px_sgd *s = calloc(1, sizeof *s);
    if (!o || !s) {
        free(o);
        free(s);
        return px_error(PX_ENOMEM, "sgd: cannot allocate");
    }
    px_status st = px_sgd_create(s, n, spec->momentum, spec->weight_decay, spec->nesterov);
    if (st < 0) {
        free(o);
        free(s);
        return st;
    }
    o->ops = &px__sgd_ops;
    o->n = n;
    o->impl = s;
    *out = o;
    return PX_OK;
}

/* ---- the registry ---- */

static const px_optimizer_kind px__kinds[] = {
    {"sgd", "SGD with momentum, Nesterov and L2 weight decay (torch.optim.SGD)", px__sgd_create},
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
    for (size_t i = 0; name && i < PX__KINDS; i++)
        if (!strcmp(px__kinds[i].name, name)) return &px__kinds[i];
    return NULL;
}

px_status px_optimizer_create(px_optimizer **out, const char *name, const px_optimizer_spec *spec,
                              size_t n)
{
    *out = NULL;
    const px_optimizer_kind *k = px_optimizer_find(name);
    if (!k) {
        char known[256] = "";
        for (size_t i = 0; i < PX__KINDS; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, px__kinds[i].name, sizeof known - strlen(known) - 1);
        }
        return px_error(PX_EINVAL,
                        "config: optimizer.kind \"%s\" is not an optimizer of this build "
                        "(known: %s)",
                        name ? name : "", known);
    }
    PX_CHECK(k->create(out, spec, n));
    (*out)->kind = k->name;
    return PX_OK;
}

void px_optimizer_destroy(px_optimizer *o)
{
    if (o) o->ops->destroy(o);
}
