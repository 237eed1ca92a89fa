/* lisa.c - the active layer groups of a step and the compact vectors (see lisa.h). */
#include "lisa.h"

#include <string.h>

#include "base/rng.h"

px_status px_lisa_init(px_lisa *l, int on, uint32_t gamma, uint32_t period, uint64_t seed,
                       const px_layer_group *groups, size_t n_groups)
{
    memset(l, 0, sizeof *l);
    l->groups = groups;
    l->n_groups = n_groups;
    for (size_t g = 0; g < n_groups; g++)
        l->n_middle += groups[g].role == PX_GROUP_MIDDLE;
    if (!on) return PX_OK;
    if (period < 1) return px_error(PX_EINVAL, "config: lisa.period = 0 must be >= 1");
    if (gamma < 1 || gamma > l->n_middle)
        return px_error(PX_EINVAL,
                        "config: lisa.gamma = %u must be in [1, %zu]: the model has %zu middle "
                        "layer groups",
                        gamma, l->n_middle, l->n_middle);
    l->on = 1;
    l->gamma = gamma;
    l->period = period;
    l->seed = seed;
    return PX_OK;
}

size_t px_lisa_active(const px_lisa *l, uint32_t step, uint8_t *active)
{
    size_t values = 0;
    if (!l->on) {
        for (size_t g = 0; g < l->n_groups; g++) {
            active[g] = 1;
            values += l->groups[g].size;
        }
        return values;
    }
    /* the middle groups' indices, then a partial Fisher-Yates draw of gamma of them */
    size_t middle[l->n_middle ? l->n_middle : 1], m = 0;
    for (size_t g = 0; g < l->n_groups; g++) {
        active[g] = l->groups[g].role != PX_GROUP_MIDDLE;
        if (l->groups[g].role == PX_GROUP_MIDDLE) middle[m++] = g;
    }
    px_rng r;
    px_rng_init(&r, l->seed, PX_STREAM_LISA, 0, step / l->period);
    for (size_t i = 0; i < l->gamma; i++) {
        size_t j = i + (size_t)px_rng_below(&r, m - i);
        size_t t = middle[i];
        middle[i] = middle[j];
        middle[j] = t;
        active[middle[i]] = 1;
    }
    for (size_t g = 0; g < l->n_groups; g++)
        if (active[g]) values += l->groups[g].size;
    return values;
}

void px_lisa_gather(const px_lisa *l, const uint8_t *active, const float *full, float *compact)
{
    for (size_t g = 0; g < l->n_groups; g++) {
        if (!active[g]) continue;
        memcpy(compact, full + l->groups[g].offset, l->groups[g].size * sizeof(float));
        compact += l->groups[g].size;
    }
}

void px_lisa_scatter(const px_lisa *l, const uint8_t *active, const float *compact, float *full,
                     int zero_frozen)
{
    for (size_t g = 0; g < l->n_groups; g++) {
        float *dst = full + l->groups[g].offset;
        if (!active[g]) {
            if (zero_frozen) memset(dst, 0, l->groups[g].size * sizeof(float));
            continue;
        }
        memcpy(dst, compact, l->groups[g].size * sizeof(float));
        compact += l->groups[g].size;
    }
}
