/* optimizer.c - SGD with momentum and the learning-rate schedules (see optimizer.h). */
#include "optimizer.h"

#include <math.h>
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
