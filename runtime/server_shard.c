/* server_shard.c - what a shard of a sharded server does with the others (see server.h and
 * shards.h): agree on the step's inputs, and gather the whole parameters on shard 0. */
#include <string.h>

#include "runtime/server.h"

px_status px_server_agree_inputs(px_server *s, double *bytes_up, double *bytes_down, int *stop)
{
    unsigned char *a = s->agree;
    uint32_t head[2] = {s->step, (uint32_t)(*stop != 0)};
    double bytes[2] = {*bytes_up, *bytes_down};
    memcpy(a, head, sizeof head);
    memcpy(a + 8, bytes, sizeof bytes);
    memcpy(a + 24, &s->decision, sizeof s->decision);
    memcpy(a + 32, s->have, s->n);
    PX_CHECK(px_shard_allgather(s->link, a, s->agree_len, s->agree_all,
                                px_now_ms() + s->cfg->cluster->timeout_ms,
                                "the step's inputs"));
    *bytes_up = *bytes_down = 0;
    for (size_t sh = 0; sh < s->shards; sh++) {
        const unsigned char *o = s->agree_all + sh * s->agree_len;
        memcpy(head, o, sizeof head);
        memcpy(bytes, o + 8, sizeof bytes);
        if (head[0] != s->step)
            return px_error(PX_ERUNTIME,
                            "server shard %zu (rank %zu) is at step %u, shard %zu at step %u: "
                            "the shards are out of step",
                            sh, sh, head[0], s->shard, s->step);
        uint64_t decision;
        memcpy(&decision, o + 24, sizeof decision);
        if (decision != s->decision)
            return px_error(PX_ERUNTIME,
                            "server shards %zu and %zu took different aggregation decisions at "
                            "step %u (the rule's weights differ): stopping rather than training "
                            "on inconsistent parameters",
                            sh, s->shard, s->step ? s->step - 1 : 0);
        *stop |= head[1] != 0;
        *bytes_up += bytes[0];
        *bytes_down += bytes[1];
        for (size_t w = 0; w < s->n; w++) /* the workers every shard took */
            s->have[w] &= o[32 + w] != 0;
    }
    return PX_OK;
}

px_status px_server_gather_params(px_server *s)
{
    if (!s->slice) return PX_OK;
    /* the slice of the whole: a shard of it, the slices of the others' (shard 0) */
    return px_shard_gather_params(s->link, s->slice - s->shard, s->params, s->whole,
                                  px_now_ms() + s->cfg->cluster->timeout_ms);
}

const float *px_server_params(const px_server *s)
{
    return s->slice ? s->whole : s->params;
}
