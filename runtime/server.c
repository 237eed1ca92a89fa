/* server.c - the parameter server (see server.h). */
#include "server.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "comm/transport.h"
#include "runtime/npy.h"
#include "runtime/server_device.h"

#define PX__DROP_LOG_LIMIT 20 /* log the first drops in full, then only count them */
#define PX__WARN_LIMIT     20 /* the same for the other per-step warnings */

/* A per-step warning: the first PX__WARN_LIMIT are logged, the rest show in the metrics. */
static void px__step_warn(px_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void px__step_warn(px_server *s, const char *fmt, ...)
{
    if (++s->warnings > PX__WARN_LIMIT) return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    px_log(PX_LOG_WARN, "step %u: %s%s", s->step, line,
           s->warnings == PX__WARN_LIMIT ? " (further step warnings are not logged; the metrics "
                                           "count them)"
                                         : "");
}

/* A worker rank of the transport as the job numbers it (a shard's transport has its own). */
static int px__rank(const px_server *s, int r)
{
    return r > 0 ? r + s->rank_base : r;
}

px_status px_server_create(px_server *s, const px_config *cfg, const px_dataset *data, int world,
                           px_pool *pool)
{
    return px_server_create_shard(s, cfg, data, world, pool, NULL);
}

/* A shard's parts: its slice of the initial parameters, its LISA view, the channel's buffers. */
static px_status px__shard_setup(px_server *s, const px_server_shard *sh)
{
    s->slice = sh->slice;
    s->link = sh->link;
    s->shard = sh->index;
    s->shards = sh->count;
    s->rank_base = sh->rank_base;
    s->whole = px_alloc(s->d_all * sizeof(float), "the whole parameters");
    if (!s->whole) return PX_ENOMEM;
    s->model->ops->init(s->model, s->whole, s->cfg->run->seed);
    memcpy(s->params, s->whole + s->slice->lo, s->d * sizeof(float));
    s->lmask = calloc(s->slice->n_groups ? s->slice->n_groups : 1, 1);
    s->lprev = calloc(s->slice->n_groups ? s->slice->n_groups : 1, 1);
    /* step, stop flag, bytes up and down, the last decision's hash, then a flag per worker */
    s->agree_len = 32 + s->n;
    s->weights = px_alloc(s->n * sizeof(double), "the rule's weights");
    if (!s->weights) return PX_ENOMEM;
    s->agree = calloc(s->agree_len, 1);
    s->agree_all = calloc(s->shards * s->agree_len, 1);
    size_t plen = s->n + s->n * s->n; /* the longest partial: flags and a Gram matrix */
    s->partial = px_alloc(plen * sizeof(double), "the aggregator's partial");
    s->partial_all = px_alloc(s->shards * plen * sizeof(double), "the shards' partials");
    if (!s->lmask || !s->lprev || !s->agree || !s->agree_all || !s->partial || !s->partial_all)
        return px_error(PX_ENOMEM, "server: cannot allocate");
    s->lv = &s->slice->lisa;
    return PX_OK;
}

px_status px_server_create_shard(px_server *s, const px_config *cfg, const px_dataset *data,
                                 int world, px_pool *pool, const px_server_shard *sh)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->data = data;
    s->world = world;
    s->pool = pool;
    s->n = cfg->cluster->workers;
    px_config_kinds kinds;
    px_config_kind_names(cfg, &kinds);
    px_model_spec mspec = px_config_model_spec(cfg, data);
    PX_CHECK(px_model_create(&s->model, kinds.model, &mspec));
    s->d_all = s->d = s->model->n_params;
    if (sh) s->d = sh->slice->n;
    s->params_msg_len = PX_WIRE_HEADER_BYTES + s->d * sizeof(float);
    s->params_msg = px_alloc(s->params_msg_len, "the parameter message");
    if (!s->params_msg) return PX_ENOMEM;
    s->params = (float *)(s->params_msg + PX_WIRE_HEADER_BYTES);
    if (sh)
        PX_CHECK(px__shard_setup(s, sh));
    else
        s->model->ops->init(s->model, s->params, cfg->run->seed);

    PX_CHECK(px_config_codecs(cfg, &s->uplink, &s->downlink));
    PX_CHECK(px_codec_create(&s->up_codec, &s->uplink, s->d, pool));
    s->up_payload_bytes = px_codec_payload_bytes(&s->uplink, s->d);
    s->needs_full = calloc(world > 1 ? (size_t)world : 1, 1);
    if (!s->needs_full) return px_error(PX_ENOMEM, "server: cannot allocate");
    if (s->downlink.format != PX_CODEC_FP32) {
        PX_CHECK(px_codec_create(&s->down_codec, &s->downlink, s->d, pool));
        s->delta_msg_len = PX_WIRE_HEADER_BYTES + px_codec_payload_bytes(&s->downlink, s->d);
        s->delta_msg = px_alloc(s->delta_msg_len, "the parameter delta message");
        s->replica_msg = px_alloc(s->params_msg_len, "the replica message");
        if (!s->delta_msg || !s->replica_msg) return PX_ENOMEM;
        s->replica = (float *)(s->replica_msg + PX_WIRE_HEADER_BYTES);
        memcpy(s->replica, s->params, s->d * sizeof(float)); /* both start at the initial values */
        /* every worker rank starts from a full message (rank 0 is the server, except alone) */
        memset(s->needs_full, 1, world > 1 ? (size_t)world : 1);
        if (world > 1) s->needs_full[0] = 0;
    }

    const Phalanx__Optimizer *o = cfg->optimizer;
    const Phalanx__Lisa *lc = cfg->lisa;
    PX_CHECK(px_lisa_init(&s->lisa, lc->enabled, lc->gamma, lc->period, cfg->run->seed,
                          s->model->groups, s->model->n_groups));
    s->active_mask = calloc(s->model->n_groups, 1);
    if (!s->active_mask) return px_error(PX_ENOMEM, "server: cannot allocate");
    if (!sh) {
        s->lv = &s->lisa;
        s->lmask = s->active_mask;
    }
    if (s->lisa.on) {
        s->compact = px_alloc(s->d * sizeof(float), "the active groups' gradient");
        if (!s->compact) return PX_ENOMEM;
    }
    s->lisa_down = s->lisa.on && !s->down_codec;
    if (s->lisa_down) {
        s->lisa_msg = px_alloc(s->params_msg_len, "the changed groups' parameter message");
        s->prev_mask = calloc(s->model->n_groups, 1);
        if (!s->lisa_msg || !s->prev_mask) return px_error(PX_ENOMEM, "server: cannot allocate");
        if (!sh) s->lprev = s->prev_mask;
        memset(s->needs_full, 1, world > 1 ? (size_t)world : 1);
        if (world > 1) s->needs_full[0] = 0;
    }
    px_optimizer_spec ospec = px_config_optimizer_spec(cfg);
    PX_CHECK(px_optimizer_create(&s->opt, kinds.optimizer, &ospec, s->d,
                                 sh ? sh->slice->groups : s->model->groups,
                                 sh ? sh->slice->n_groups : s->model->n_groups));
    s->schedule = (px_lr_schedule){
        .kind = (px_lr_kind)o->schedule,
        .lr = o->lr,
        .steps = cfg->schedule->steps,
        .step_every = o->step_every,
        .step_gamma = o->step_gamma,
        .min_lr = o->min_lr,
        .warmup_steps = o->warmup_steps,
    };

    px_agg_params ap;
    PX_CHECK(px_config_agg_params(cfg, &ap));
    if (sh)
        PX_CHECK(px_agg_shard_create(&s->sagg, cfg->aggregator->rule, &ap, s->n, s->d, pool));
    else
        PX_CHECK(px_agg_create(&s->agg, cfg->aggregator->rule, &ap, s->n, s->d,
                               &s->model->tensors, pool));
    s->agg_out = px_alloc(s->d * sizeof(float), "the aggregate");
    s->rows = px_alloc(s->n * s->d * sizeof(float), "the gradients of a step");
    s->present = calloc(s->n, sizeof *s->present);
    s->have = calloc(s->n, 1);
    s->loss = calloc(s->n, sizeof *s->loss);
    if (!s->agg_out || !s->rows || !s->present || !s->have || !s->loss)
        return px_error(PX_ENOMEM, "server: cannot allocate");

    s->alive = calloc(s->n, 1);
    s->last_heard_ms = calloc(s->n, sizeof *s->last_heard_ms);
    if (!s->alive || !s->last_heard_ms) return px_error(PX_ENOMEM, "server: cannot allocate");
    double now = px_now_ms();
    for (size_t w = 0; w < s->n; w++) {
        s->alive[w] = 1;
        s->last_heard_ms[w] = now;
    }
    s->n_alive = s->n;
    PX_CHECK(px_config_byz_spec(cfg, &s->byz_spec));
    if (s->byz_spec.omniscient && px_attack_is_vector(s->byz_spec.attack) && s->byz_spec.count) {
        PX_CHECK(px_byz_server_create(&s->byz, &s->byz_spec, s->d, s->n, pool));
        s->byz_on = 1;
        /* the adaptive attacks that search against the rule evaluate a copy of it */
        PX_CHECK(px_byz_server_bind_rule(&s->byz, cfg->aggregator->rule, &ap, s->n,
                                         &s->model->tensors, s->agg));
    }

    int threads = px_pool_size(pool);
    s->eval_work = calloc((size_t)threads, sizeof *s->eval_work);
    /* about PX_EVAL_CHUNK predictions per forward pass: examples of a text hold many */
    s->eval_chunk = PX_EVAL_CHUNK / data->label_values ? PX_EVAL_CHUNK / data->label_values : 1;
    s->eval_labels =
        px_alloc((size_t)threads * s->eval_chunk * data->label_values, "evaluation labels");
    if (!s->eval_labels) return PX_ENOMEM;
    size_t chunks = (data->test.count + s->eval_chunk - 1) / s->eval_chunk;
    s->eval_loss = calloc(chunks ? chunks : 1, sizeof *s->eval_loss);
    s->eval_correct = calloc(chunks ? chunks : 1, sizeof *s->eval_correct);
    if (!s->eval_work || !s->eval_loss || !s->eval_correct)
        return px_error(PX_ENOMEM, "server: cannot allocate");
    for (int t = 0; t < threads; t++)
        if (!(s->eval_work[t] = s->model->ops->work_create(s->model, s->eval_chunk)))
            return PX_ENOMEM;
    return PX_OK;
}

void px_server_free(px_server *s)
{
    px_free(s->params_msg);
    px_free(s->lisa_msg);
    free(s->prev_mask);
    px_codec_destroy(s->up_codec);
    px_codec_destroy(s->down_codec);
    px_free(s->delta_msg);
    px_free(s->replica_msg);
    free(s->needs_full);
    px_optimizer_destroy(s->opt);
    free(s->active_mask);
    free(s->round_clients);
    free(s->client_scratch);
    px_free(s->agg_acc);
    px_free(s->compact);
    px_agg_destroy(s->agg);
    px_server_device_free(s);
    px_agg_shard_destroy(s->sagg);
    if (s->slice) { /* the view's masks are the shard's own */
        free(s->lmask);
        free(s->lprev);
    }
    px_free(s->whole);
    px_free(s->weights);
    free(s->agree);
    free(s->agree_all);
    px_free(s->partial);
    px_free(s->partial_all);
    px_free(s->agg_out);
    px_free(s->rows);
    free(s->present);
    free(s->have);
    free(s->loss);
    free(s->alive);
    free(s->last_heard_ms);
    if (s->byz_on) px_byz_server_free(&s->byz);
    if (s->eval_work)
        for (int t = 0; t < px_pool_size(s->pool); t++)
            if (s->eval_work[t]) s->model->ops->work_free(s->eval_work[t]);
    px_model_destroy(s->model);
    free(s->eval_work);
    free(s->eval_loss);
    px_free(s->eval_labels);
    free(s->eval_correct);
    memset(s, 0, sizeof *s);
}

/* LISA's downlink: the values of the groups that the previous step trained, the only ones that
 * changed since its parameters, for the ranks that took those; the full message for the others
 * (every rank at the first step and after a resume). */
static void px__lisa_downlink(px_server *s, const px_msg_header *h, const unsigned char **msg,
                              size_t *len, const unsigned char **full, size_t *full_len)
{
    size_t n_prev = px_lisa_active(&s->lisa, h->step ? h->step - 1 : 0, s->prev_mask);
    if (s->slice) n_prev = px_shard_slice_mask(s->slice, s->prev_mask, s->lprev);
    px_lisa_gather(s->lv, s->lprev, s->params, (float *)(s->lisa_msg + PX_WIRE_HEADER_BYTES));
    px_msg_header hc = *h;
    hc.elem_count = n_prev;
    px_wire_seal(s->lisa_msg, &hc, n_prev * sizeof(float));
    int any = 0;
    for (int r = 0; r < (s->world > 1 ? s->world : 1); r++)
        any |= s->needs_full[r];
    if (any) {
        *full = *msg;
        *full_len = *len;
    }
    *msg = s->lisa_msg;
    *len = PX_WIRE_HEADER_BYTES + n_prev * sizeof(float);
}

px_status px_server_begin_step(px_server *s, uint32_t step, const unsigned char **msg, size_t *len,
                               const unsigned char **full, size_t *full_len)
{
    s->step = step;
    s->n_active = s->n_active_all = px_lisa_active(&s->lisa, step, s->active_mask);
    if (s->slice) s->n_active = px_shard_slice_mask(s->slice, s->active_mask, s->lmask);
    if (s->clients)
        px_fl_round_clients(s->cfg->run->seed, step, s->clients, s->n, s->client_scratch,
                            s->round_clients);
    s->step_payload_bytes = px_codec_payload_bytes(&s->uplink, s->n_active);
    s->active = s->lisa.on ? s->lmask : NULL;
    memset(s->have, 0, s->n);
    px_msg_header h = {
        .kind = PX_MSG_PARAMS,
        .codec = 0,
        .step = step,
        .worker = PX_WIRE_SERVER,
        .elem_count = s->d,
        .loss = NAN,
    };
    *full = NULL;
    *full_len = 0;
    if (!s->down_codec) {
        px_wire_seal(s->params_msg, &h, s->d * sizeof(float));
        *msg = s->params_msg;
        *len = s->params_msg_len;
        if (s->lisa_down) px__lisa_downlink(s, &h, msg, len, full, full_len);
        return PX_OK;
    }
    px_codec_stream cs = {s->cfg->run->seed, step, PX_CODEC_DOWNLINK};
    size_t pb = s->delta_msg_len - PX_WIRE_HEADER_BYTES;
    PX_CHECK(px_codec_encode_delta(s->down_codec, &cs, s->params, s->replica, s->d,
                                   s->delta_msg + PX_WIRE_HEADER_BYTES, pb));
    px_msg_header hd = h;
    hd.codec = px_codec_wire_id(&s->downlink);
    hd.block_size = px_codec_wire_block(&s->downlink);
    px_wire_seal(s->delta_msg, &hd, pb);
    *msg = s->delta_msg;
    *len = s->delta_msg_len;
    /* the full message carries the replica (with this step's delta in), never the master: a
     * worker that resynchronises then holds exactly what the others hold */
    int any = 0;
    for (int r = 0; r < (s->world > 1 ? s->world : 1); r++)
        any |= s->needs_full[r];
    if (any) {
        px_wire_seal(s->replica_msg, &h, s->d * sizeof(float));
        *full = s->replica_msg;
        *full_len = s->params_msg_len;
    }
    return PX_OK;
}

void px_server_count_drop(px_server *s, px_drop_reason r, int src, const char *why)
{
    s->drops[r]++;
    /* with cluster.f_wait the server goes on without the slowest gradients, which then arrive
     * late by design: counted, not worth a line each */
    if (r == PX_DROP_STEP && s->cfg->cluster->f_wait) return;
    if (++s->drops_logged <= PX__DROP_LOG_LIMIT)
        px_log(PX_LOG_WARN, "step %u: dropped a message from rank %d: %s (%s)%s", s->step,
               px__rank(s, src),
               px_drop_reason_name(r), why,
               s->drops_logged == PX__DROP_LOG_LIMIT ? "; further drops are only counted in the "
                                                       "metrics"
                                                     : "");
}

px_drop_reason px_server_accept(px_server *s, const unsigned char *msg, size_t len, int src)
{
    px_msg_header h;
    /* a message the transport copied with px_wire_copy has its payload CRC already */
    px_drop_reason r = px_wire_open_copied(msg, len, &s->copied, &h);
    s->copied.msg = NULL;
    if (r == PX_DROP_NONE) {
        px_wire_expectation e = {
            .kind = PX_MSG_GRADIENT,
            .step = s->step,
            .n_workers = (uint32_t)s->n,
            .elem_count = s->n_active,
            .payload_bytes = s->step_payload_bytes,
            .codec = px_codec_wire_id(&s->uplink),
        };
        r = px_wire_expect(&h, &e);
        if (r == PX_DROP_NONE && h.block_size != px_codec_wire_block(&s->uplink)) r = PX_DROP_CODEC;
    }
    if (r == PX_DROP_NONE && s->world >= 2 && px_worker_rank(h.worker, s->world) != src)
        r = PX_DROP_WORKER;
    if (r == PX_DROP_NONE && s->have[h.worker]) r = PX_DROP_DUPLICATE;
    char why[256];
    if (r == PX_DROP_NONE) {
        /* every worker's payload is decoded on its own, with its own scales, to float32 */
        px_codec_stream cs = {s->cfg->run->seed, h.step, h.worker};
        float *row = s->rows + (size_t)h.worker * s->d;
        if (px_codec_decode(s->up_codec, &cs, msg + PX_WIRE_HEADER_BYTES, s->step_payload_bytes,
                            s->lisa.on ? s->compact : row, s->n_active) < 0) {
            r = PX_DROP_NONFINITE;
            snprintf(why, sizeof why, "worker %u: %s", h.worker, px_errmsg());
        } else if (s->lisa.on) {
            /* the frozen groups' places hold zeros: every rule, and the Gram matrix of the
             * Gram-form rules, then sees the active slice alone */
            px_lisa_scatter(s->lv, s->lmask, s->compact, row, 1);
        }
    }
    if (r != PX_DROP_NONE) {
        if (r == PX_DROP_STEP)
            snprintf(why, sizeof why, "message of step %u, expected %u", h.step, s->step);
        else if (r == PX_DROP_WORKER)
            snprintf(why, sizeof why, "worker id %u is not hosted by rank %d", h.worker,
                     px__rank(s, src));
        else if (r != PX_DROP_NONFINITE)
            snprintf(why, sizeof why, "%zu bytes", len);
        px_server_count_drop(s, r, src, why);
        return r;
    }
    s->have[h.worker] = 1;
    s->loss[h.worker] = h.loss;
    return PX_DROP_NONE;
}

/* The rule must still hold for the workers alive. */
static px_status px__check_alive(const px_server *s)
{
    px_agg_params ap;
    PX_CHECK(px_config_agg_params(s->cfg, &ap));
    if (px_agg_validate(s->cfg->aggregator->rule, &ap, s->n_alive) < 0)
        return px_error(PX_ERUNTIME, "step %u: too few live workers left: %s", s->step,
                        px_errmsg());
    return PX_OK;
}

px_status px_server_track_liveness(px_server *s, double now_ms, double silence_ms, int *changed)
{
    *changed = 0;
    for (size_t w = 0; w < s->n; w++) {
        if (s->have[w]) {
            s->last_heard_ms[w] = now_ms;
            if (!s->alive[w]) {
                s->alive[w] = 1;
                s->n_alive++;
                *changed = 1;
                px_log(PX_LOG_INFO, "step %u: worker %zu is back", s->step, w);
            }
        } else if (s->alive[w] && now_ms - s->last_heard_ms[w] > silence_ms) {
            s->alive[w] = 0;
            s->n_alive--;
            *changed = 1;
            char where[32] = "";
            if (s->world >= 2)
                snprintf(where, sizeof where, " (rank %d)",
                         px__rank(s, px_worker_rank((uint32_t)w, s->world)));
            px_log(PX_LOG_WARN,
                   "step %u: worker %zu%s sent no valid gradient for %.0f ms: "
                   "treated as dead, %zu workers left",
                   s->step, w, where, now_ms - s->last_heard_ms[w], s->n_alive);
        }
    }
    return *changed ? px__check_alive(s) : PX_OK;
}

px_status px_server_lose_rank(px_server *s, int rank)
{
    size_t lost = 0;
    for (size_t w = 0; w < s->n; w++) {
        if (s->world < 2 || px_worker_rank((uint32_t)w, s->world) != rank) continue;
        s->have[w] = 0; /* a gradient kept this step goes with its rank */
        if (s->alive[w]) {
            s->alive[w] = 0;
            s->n_alive--;
            lost++;
        }
    }
    px_log(PX_LOG_WARN, "step %u: rank %d lost: its %zu workers are dead, %zu workers left",
           s->step, px__rank(s, rank), lost, s->n_alive);
    return px__check_alive(s);
}

/* The mean loss the honest workers reported, before an attacker takes over the Byzantine rows. */
static double px__reported_loss(const px_server *s)
{
    double loss_sum = 0;
    size_t loss_n = 0;
    for (size_t w = 0; w < s->n; w++)
        if (s->have[w] && isfinite(s->loss[w])) {
            loss_sum += s->loss[w];
            loss_n++;
        }
    return loss_n ? loss_sum / (double)loss_n : NAN;
}

/* Stage: the OMNISCIENT attacker (test mode) rewrites the Byzantine rows; then the rows that
 * take part, in worker order. Returns how many. */
static size_t px__attack_stage(px_server *s, px_step_result *r)
{
    if (s->byz_on && s->clients) {
        /* a slot is Byzantine when the client it plays this round is */
        for (size_t w = 0; w < s->n; w++)
            s->byz.is_byz[w] =
                (uint8_t)px_byz_is_member(&s->byz_spec, s->round_clients[w], s->step);
        r->injected = px_byz_server_apply_rows(&s->byz, s->step, s->rows, s->have, s->n);
    } else if (s->byz_on) {
        r->injected = px_byz_server_apply(&s->byz, s->step, s->rows, s->have);
    }
    size_t k = 0;
    for (size_t w = 0; w < s->n; w++)
        if (s->have[w]) s->present[k++] = s->rows + w * s->d;
    return k;
}

/* logging.save_gradients_step: the aggregator's inputs of one step, for offline study. */
static void px__save_gradients(const px_server *s, size_t k)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/gradients_step%u.npy", s->cfg->run->output_dir,
             s->cfg->run->name, s->step + 1);
    if (px_npy_write_rows(path, s->present, k, s->d) < 0)
        px_log(PX_LOG_WARN, "%s", px_errmsg());
    else
        px_log(PX_LOG_INFO, "step %u: wrote the %zu gradients to %s", s->step + 1, k, path);
}

/* Stage: pre-aggregation and aggregation of the k present rows into agg_out. A failure (too
 * few inputs for the rule, or a numerical failure on hostile inputs such as an eigen-solver
 * that does not converge on values near the float limit) skips the step, never the run. */
/* FedAvg: the mean of the present rows weighted by their clients' sample counts, in double;
 * a row holding NaN or Inf is dropped (and counted), as the library's rules do. */
static int px__weighted_mean(px_server *s, px_step_result *r)
{
    double total = 0;
    size_t used = 0;
    memset(s->agg_out, 0, s->d * sizeof(float));
    double *acc = s->agg_acc;
    memset(acc, 0, s->d * sizeof(double));
    for (size_t w = 0; w < s->n; w++) {
        if (!s->have[w]) continue;
        const float *x = s->rows + w * s->d;
        int finite = 1;
        for (size_t i = 0; i < s->d && finite; i++)
            finite = isfinite(x[i]);
        if (!finite) {
            r->nonfinite++;
            s->drops[PX_DROP_NONFINITE]++;
            continue;
        }
        uint32_t c = s->round_clients[w];
        double weight = (double)(s->partition->offsets[c + 1] - s->partition->offsets[c]);
        for (size_t i = 0; i < s->d; i++)
            acc[i] += weight * x[i];
        total += weight;
        used++;
    }
    if (!used || total <= 0) {
        s->steps_skipped++;
        px__step_warn(s, "no finite update to average; parameters unchanged");
        return 0;
    }
    for (size_t i = 0; i < s->d; i++)
        s->agg_out[i] = (float)(acc[i] / total);
    return 1;
}

/* A shard's aggregation: its partial, every shard's summed in shard order (the same sum, bit
 * for bit, on every shard), then its slice of the aggregate. One server whose Gram matrix a
 * device forms (server_device.h) runs it as the only shard. A shard that does not answer ends
 * the run; a rule that refuses the inputs skips the step on every shard alike. */
static px_status px__aggregate_sharded(px_server *s, size_t k, px_step_result *r, int *ok)
{
    *ok = 0;
    double t0 = px_now_ms();
    size_t len = px_agg_shard_partial_len(s->sagg, k);
    if (s->sdev)
        PX_CHECK(px_server_device_partial(s, k, s->partial));
    else
        PX_CHECK(px_agg_shard_partial(s->sagg, s->present, k, s->partial));
    double *sum = s->partial; /* one server (its rule on a device): its own partial */
    if (s->slice) {
        PX_CHECK(px_shard_allgather(s->link, s->partial, len * sizeof(double), s->partial_all,
                                    px_now_ms() + s->cfg->cluster->timeout_ms,
                                    "the aggregator's partials"));
        sum = s->partial_all; /* shard 0's, then each next shard's added in place */
        for (size_t sh = 1; sh < s->shards; sh++)
            for (size_t i = 0; i < len; i++)
                sum[i] += s->partial_all[sh * len + i];
    }
    px_agg_report rep = {0};
    int done = 0; /* a device's failure ends the run; a rule's refusal below skips the step */
    if (s->sdev) PX_CHECK(px_server_device_finish(s, k, sum, &done));
    px_status st = PX_OK;
    if (!done)
        st = px_agg_shard_finish(s->sagg, s->present, k, s->step, sum, s->agg_out, s->weights,
                                 &rep);
    r->agg_ms = px_now_ms() - t0;
    /* the decision every shard must have taken alike: the inputs' weights (Krum's choice,
     * Multi-Krum's set, FA's and geomed's weights; NaN for a coordinate-wise rule), the
     * non-finite ones dropped, the outcome; checked in the next exchange */
    uint64_t h = 1469598103934665603ull;
    const unsigned char *b = (const unsigned char *)s->weights;
    for (size_t i = 0; i < k * sizeof(double); i++)
        h = (h ^ b[i]) * 1099511628211ull;
    s->decision = (h ^ rep.n_nonfinite ^ ((uint64_t)(st < 0) << 63)) * 1099511628211ull;
    r->nonfinite = rep.n_nonfinite;
    s->drops[PX_DROP_NONFINITE] += rep.n_nonfinite;
    if (st < 0) {
        s->steps_skipped++;
        px__step_warn(s, "not aggregated (%s); parameters unchanged", px_errmsg());
        return PX_OK;
    }
    *ok = 1;
    return PX_OK;
}

static int px__aggregate_stage(px_server *s, size_t k, px_step_result *r)
{
    if (s->weighted) {
        double t0 = px_now_ms();
        int ok = px__weighted_mean(s, r);
        r->agg_ms = px_now_ms() - t0;
        return ok;
    }
    double t0 = px_now_ms();
    px_agg_report rep = {0};
    px_status st = px_agg_run(s->agg, s->present, k, s->step, s->agg_out, &rep);
    r->agg_ms = px_now_ms() - t0;
    r->nonfinite = rep.n_nonfinite;
    s->drops[PX_DROP_NONFINITE] += rep.n_nonfinite;
    if (st < 0) {
        s->steps_skipped++;
        px__step_warn(s, "not aggregated (%s); parameters unchanged", px_errmsg());
        return 0;
    }
    return 1;
}

/* Stage: the server optimizer applies the aggregate. */
static void px__optimizer_stage(px_server *s, float lr, px_step_result *r)
{
    r->refused = s->opt->ops->step(s->opt, s->params, s->agg_out, lr, s->active);
    s->update_refused += r->refused;
    if (r->refused)
        px__step_warn(s, "the update of %zu parameters would overflow; they keep their values",
                      r->refused);
    r->updated = 1;
}

px_status px_server_finish_step(px_server *s, float lr, px_step_result *r)
{
    memset(r, 0, sizeof *r);
    r->train_loss = px__reported_loss(s);
    size_t k = px__attack_stage(s, r);
    r->received = k;
    if (k == 0) {
        s->steps_skipped++;
        px__step_warn(s, "no valid gradient arrived; parameters unchanged");
        return PX_OK;
    }
    if (s->cfg->logging->save_gradients_step == s->step + 1) px__save_gradients(s, k);
    int ok;
    if (s->sagg)
        PX_CHECK(px__aggregate_sharded(s, k, r, &ok));
    else
        ok = px__aggregate_stage(s, k, r);
    if (ok) px__optimizer_stage(s, lr, r);
    return PX_OK;
}

typedef struct {
    px_server *s;
} px__eval_job;

static void px__eval_chunk(void *arg, size_t c, int thread)
{
    px_server *s = ((px__eval_job *)arg)->s;
    const px_model *m = s->model;
    void *w = s->eval_work[thread];
    size_t first = c * s->eval_chunk, count = s->data->test.count - first;
    if (count > s->eval_chunk) count = s->eval_chunk;
    uint8_t *labels = s->eval_labels + (size_t)thread * s->eval_chunk * s->data->label_values;
    px_batch_io io = {.x = m->ops->input ? m->ops->input(w) : NULL,
                      .tokens = m->ops->tokens ? m->ops->tokens(w) : NULL,
                      .y = labels};
    px_dataset_slice(s->data, &s->data->test, first, count, &io);
    double loss = 0;
    size_t correct = 0;
    m->ops->evaluate(m, w, px_server_params(s), labels, count, &loss, &correct);
    s->eval_loss[c] = loss;
    s->eval_correct[c] = correct;
}

void px_server_evaluate(px_server *s, double *test_loss, double *test_acc)
{
    size_t n = s->data->test.count;
    size_t chunks = (n + s->eval_chunk - 1) / s->eval_chunk;
    px__eval_job job = {s};
    px_pool_run(s->pool, chunks, px__eval_chunk, &job);
    double loss = 0;
    size_t correct = 0;
    for (size_t c = 0; c < chunks; c++) { /* fixed order: the same sum on any thread count */
        loss += s->eval_loss[c];
        correct += s->eval_correct[c];
    }
    /* per label: per example for a classifier, per predicted character for text */
    double labels = (double)n * (double)s->data->label_values;
    *test_loss = n ? loss / labels : NAN;
    *test_acc = n ? (double)correct / labels : NAN;
}

px_status px_server_federate(px_server *s, const px_partition *partition, int weighted)
{
    s->clients = partition->parts;
    s->partition = partition;
    s->weighted = weighted && !strcmp(s->cfg->aggregator->rule, "mean");
    s->round_clients = calloc(s->n, sizeof *s->round_clients);
    s->client_scratch = calloc(s->clients, sizeof *s->client_scratch);
    if (!s->round_clients || !s->client_scratch)
        return px_error(PX_ENOMEM, "server: cannot allocate");
    if (s->weighted) {
        s->agg_acc = px_alloc(s->d * sizeof(double), "the weighted mean's sums");
        if (!s->agg_acc) return PX_ENOMEM;
    }
    return PX_OK;
}
