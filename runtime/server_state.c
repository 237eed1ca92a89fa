/* server_state.c - the server's run state (server.h, px_server_save / px_server_load): the next
 * step, the parameters, the optimizer's and the rule's state, the downlink replica and the
 * counters, in DIR/server.pxs (runtime/state.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/server.h"
#include "runtime/state.h"

/* What a state must match to be loaded into this server: the run's shape. */
static void px__shape(const px_server *s, uint64_t shape[6])
{
    shape[0] = s->d;
    shape[1] = s->n;
    shape[2] = px_codec_wire_id(&s->uplink);
    shape[3] = px_codec_wire_id(&s->downlink);
    shape[4] = s->model->n_groups;
    shape[5] = s->cfg->run->seed;
}

/* The counters a resumed run carries on (totals of the done line). */
enum { PX__COUNTERS = PX_DROP_REASON_COUNT + 4 };

px_status px_server_save(const px_server *s, uint32_t next_step, const uint64_t totals[2],
                         const char *dir)
{
    uint64_t shape[6], counters[PX__COUNTERS], step = next_step;
    px__shape(s, shape);
    for (int r = 0; r < PX_DROP_REASON_COUNT; r++)
        counters[r] = s->drops[r];
    counters[PX_DROP_REASON_COUNT] = s->update_refused;
    counters[PX_DROP_REASON_COUNT + 1] = s->steps_skipped;
    counters[PX_DROP_REASON_COUNT + 2] = totals[0];
    counters[PX_DROP_REASON_COUNT + 3] = totals[1];
    size_t opt_bytes = s->opt->ops->state_bytes(s->opt), agg_bytes = px_agg_state_bytes(s->agg);
    unsigned char *opt = px_alloc(opt_bytes, "the optimizer state");
    unsigned char *agg = px_alloc(agg_bytes, "the aggregation rule's state");
    px_status st = opt && agg ? PX_OK : PX_ENOMEM;
    if (st == PX_OK) {
        s->opt->ops->state_save(s->opt, opt);
        st = px_agg_state_save(s->agg, agg, agg_bytes);
    }
    if (st < 0) {
        px_free(opt);
        px_free(agg);
        return st;
    }
    char kinds[64];
    snprintf(kinds, sizeof kinds, "%s/%s", s->model->kind, s->opt->kind);
    px_state_section sec[] = {
        {"SHAP", shape, sizeof shape}, {"KIND", kinds, strlen(kinds)},
        {"STEP", &step, sizeof step},  {"PRMS", s->params, s->d * sizeof(float)},
        {"OPTM", opt, opt_bytes},      {"REPL", s->replica, s->replica ? s->d * sizeof(float) : 0},
        {"AGGS", agg, agg_bytes},      {"CNTR", counters, sizeof counters},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/server.pxs", dir);
    st = px_state_write(path, sec, sizeof sec / sizeof sec[0]);
    px_free(opt);
    px_free(agg);
    return st;
}

static px_status px__load_floats(const px_state_file *f, const char *tag, float *dst, size_t n)
{
    const void *data;
    PX_CHECK(px_state_get(f, tag, n * sizeof(float), &data, NULL));
    const float *src = data;
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, src + i, sizeof v);
        if (!isfinite(v))
            return px_error(PX_EINVAL, "state: section %s: value %zu is not finite", tag, i);
    }
    memcpy(dst, data, n * sizeof(float));
    return PX_OK;
}

static px_status px__load_sections(px_server *s, const px_state_file *f, uint32_t *next_step,
                                   uint64_t totals[2])
{
    uint64_t want[6], got[6], step, counters[PX__COUNTERS];
    const void *data;
    size_t bytes;
    px__shape(s, want);
    PX_CHECK(px_state_get(f, "SHAP", sizeof got, &data, NULL));
    memcpy(got, data, sizeof got);
    if (memcmp(want, got, sizeof want) != 0)
        return px_error(
            PX_EINVAL,
            "state: saved by a run of %llu parameters, %llu workers, codecs %llu/%llu, "
            "%llu layer groups, seed %llu; this run has %llu, %llu, "
            "%llu/%llu, %llu, %llu",
            (unsigned long long)got[0], (unsigned long long)got[1], (unsigned long long)got[2],
            (unsigned long long)got[3], (unsigned long long)got[4], (unsigned long long)got[5],
            (unsigned long long)want[0], (unsigned long long)want[1], (unsigned long long)want[2],
            (unsigned long long)want[3], (unsigned long long)want[4], (unsigned long long)want[5]);
    char kinds[64];
    snprintf(kinds, sizeof kinds, "%s/%s", s->model->kind, s->opt->kind);
    PX_CHECK(px_state_get(f, "KIND", SIZE_MAX, &data, &bytes));
    if (bytes != strlen(kinds) || memcmp(data, kinds, bytes) != 0)
        return px_error(PX_EINVAL, "state: saved by a run of model/optimizer %.*s; this run has %s",
                        (int)(bytes < 64 ? bytes : 64), (const char *)data, kinds);
    PX_CHECK(px_state_get(f, "STEP", sizeof step, &data, NULL));
    memcpy(&step, data, sizeof step);
    if (step > s->cfg->schedule->steps)
        return px_error(PX_EINVAL, "state: saved at step %llu, past this run's %u steps",
                        (unsigned long long)step, s->cfg->schedule->steps);
    PX_CHECK(px__load_floats(f, "PRMS", s->params, s->d));
    PX_CHECK(px_state_get(f, "OPTM", SIZE_MAX, &data, &bytes));
    PX_CHECK(s->opt->ops->state_load(s->opt, data, bytes));
    if (s->replica) PX_CHECK(px__load_floats(f, "REPL", s->replica, s->d));
    PX_CHECK(px_state_get(f, "AGGS", SIZE_MAX, &data, &bytes));
    PX_CHECK(px_agg_state_load(s->agg, data, bytes));
    PX_CHECK(px_state_get(f, "CNTR", sizeof counters, &data, NULL));
    memcpy(counters, data, sizeof counters);
    for (int r = 0; r < PX_DROP_REASON_COUNT; r++)
        s->drops[r] = counters[r];
    s->update_refused = counters[PX_DROP_REASON_COUNT];
    s->steps_skipped = counters[PX_DROP_REASON_COUNT + 1];
    totals[0] = counters[PX_DROP_REASON_COUNT + 2];
    totals[1] = counters[PX_DROP_REASON_COUNT + 3];
    *next_step = (uint32_t)step;
    return PX_OK;
}

px_status px_server_load(px_server *s, const char *dir, uint32_t *next_step, uint64_t totals[2])
{
    char path[4200];
    snprintf(path, sizeof path, "%s/server.pxs", dir);
    px_state_file f;
    PX_CHECK(px_state_read(path, &f));
    px_status st = px__load_sections(s, &f, next_step, totals);
    px_state_close(&f);
    if (st < 0) return px_error_context(st, "%s", path);
    /* every worker rank starts again from a full parameter message */
    if (s->down_codec) {
        memset(s->needs_full, 1, s->world > 1 ? (size_t)s->world : 1);
        if (s->world > 1) s->needs_full[0] = 0;
    }
    return PX_OK;
}
