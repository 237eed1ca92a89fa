/* worker.c - logical workers: the update, then the fault, encoding and sealing stages, and the
 * message (see worker.h). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"
#include "runtime/state.h"

/* Sharded server: what the group follows of each shard's stream. */
static px_status px__shards_create(px_worker_group *g, size_t S)
{
    g->shard = calloc(S, sizeof *g->shard);
    g->scratch = calloc(g->setup.model->n_groups, 1);
    if (!g->shard || !g->scratch) return px_error(PX_ENOMEM, "workers: cannot allocate");
    for (size_t k = 0; k < S; k++) {
        size_t ng = g->setup.slices[k].n_groups ? g->setup.slices[k].n_groups : 1;
        g->shard[k].active = calloc(ng, 1);
        g->shard[k].prev = calloc(ng, 1);
        if (!g->shard[k].active || !g->shard[k].prev)
            return px_error(PX_ENOMEM, "workers: cannot allocate");
    }
    return PX_OK;
}

/* Sharded server: a worker's message to each shard, sized for its whole slice. */
static px_status px__parts_create(px_worker_group *g, px_worker *w)
{
    size_t S = g->setup.shards;
    w->parts = calloc(S, sizeof *w->parts);
    if (!w->parts) return px_error(PX_ENOMEM, "workers: cannot allocate");
    for (size_t k = 0; k < S; k++) {
        px_worker_part *p = &w->parts[k];
        p->msg_len =
            PX_WIRE_HEADER_BYTES + px_codec_payload_bytes(&g->setup.uplink, g->setup.slices[k].n);
        p->msg = px_alloc(p->msg_len, "a gradient message");
        if (!p->msg) return PX_ENOMEM;
    }
    return PX_OK;
}

px_status px_worker_group_create(px_worker_group *g, const px_worker_setup *setup,
                                 const uint32_t *ids, size_t count, px_pool *pool)
{
    memset(g, 0, sizeof *g);
    g->setup = *setup;
    const px_byz_spec *byz = setup->byz;
    g->setup.byz = byz && byz->attack != PX_ATTACK_NONE && byz->count > 0 ? byz : NULL;
    g->pool = pool;
    g->update = px_update_find(setup->update);
    if (!g->update) return px_error(PX_EINVAL, "workers: no update kind \"%s\"", setup->update);
    g->update_setup = (px_update_setup){.model = setup->model,
                                        .data = setup->data,
                                        .batch = setup->batch,
                                        .seed = setup->seed,
                                        .partition = setup->partition,
                                        .local_steps = setup->local_steps,
                                        .local_epochs = setup->local_epochs,
                                        .local_lr = setup->local_lr,
                                        .prox_mu = setup->prox_mu,
                                        .terms = {.margin_lambda = setup->margin_lambda}};
    if (setup->clients) {
        g->round_clients = calloc(setup->slots ? setup->slots : 1, sizeof *g->round_clients);
        g->client_scratch = calloc(setup->clients, sizeof *g->client_scratch);
        if (!g->round_clients || !g->client_scratch)
            return px_error(PX_ENOMEM, "workers: cannot allocate");
    }
    size_t d = setup->model->n_params;
    size_t S = setup->slices ? setup->shards : 1;
    if (S > 1) PX_CHECK(px__shards_create(g, S));
    if (setup->downlink.format != PX_CODEC_FP32 || setup->lisa->on || S > 1) {
        g->replica = px_alloc(d * sizeof(float), "the parameter replica");
        if (!g->replica) return PX_ENOMEM;
    }
    if (setup->downlink.format != PX_CODEC_FP32)
        PX_CHECK(px_codec_create(&g->down_codec, &setup->downlink, d, pool));
    else if (setup->lisa->on) {
        g->prev_active = calloc(setup->model->n_groups, 1);
        if (!g->prev_active) return px_error(PX_ENOMEM, "workers: cannot allocate");
    }
    /* the step's plan, even on a rank hosting no worker (it still follows the steps) */
    g->active = calloc(setup->model->n_groups, 1);
    if (!g->active) return px_error(PX_ENOMEM, "workers: cannot allocate");
    if (count == 0) return PX_OK;
    g->workers = calloc(count, sizeof *g->workers);
    if (!g->workers) return px_error(PX_ENOMEM, "workers: cannot allocate");
    g->count = count;
    int compressed = setup->uplink.format != PX_CODEC_FP32, lisa = setup->lisa->on;
    g->payload_bytes = px_codec_payload_bytes(&setup->uplink, d);
    for (size_t i = 0; i < count; i++) {
        px_worker *w = &g->workers[i];
        w->id = ids[i];
        PX_CHECK(g->update->create(&w->update, &g->update_setup, ids[i]));
        w->msg_len = PX_WIRE_HEADER_BYTES + g->payload_bytes;
        w->msg = px_alloc(w->msg_len, "a gradient message");
        if (!w->msg) return PX_ENOMEM;
        if (compressed || lisa || S > 1) {
            /* the payload is not the gradient itself: compute it beside */
            w->grad = px_alloc(d * sizeof(float), "a gradient");
            if (!w->grad) return PX_ENOMEM;
        }
        if (compressed) {
            /* each worker encodes on its own pool thread: its own context, no inner pool */
            PX_CHECK(px_codec_create(&w->codec, &setup->uplink, d, NULL));
            if (setup->error_feedback) {
                w->residual = px_alloc(d * sizeof(float), "an error-feedback residual");
                if (!w->residual) return PX_ENOMEM;
            }
        }
        if (compressed && lisa) {
            w->compact = px_alloc(d * sizeof(float), "the active groups' gradient");
            if (!w->compact) return PX_ENOMEM;
            if (w->residual) {
                w->compact_residual = px_alloc(d * sizeof(float), "the active groups' residual");
                if (!w->compact_residual) return PX_ENOMEM;
            }
        }
        if (S > 1) PX_CHECK(px__parts_create(g, w));
    }
    return PX_OK;
}

void px_worker_group_free(px_worker_group *g)
{
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        if (w->update) g->update->destroy(w->update);
        if (!w->msg_lent) px_free(w->msg);
        px_free(w->grad);
        px_free(w->residual);
        px_free(w->compact);
        px_free(w->compact_residual);
        px_codec_destroy(w->codec);
        for (size_t k = 0; w->parts && k < g->setup.shards; k++)
            px_free(w->parts[k].msg);
        free(w->parts);
    }
    for (size_t k = 0; g->shard && k < g->setup.shards; k++) {
        free(g->shard[k].active);
        free(g->shard[k].prev);
    }
    free(g->shard);
    free(g->scratch);
    free(g->workers);
    free(g->active);
    free(g->round_clients);
    free(g->client_scratch);
    px_free(g->replica);
    px_codec_destroy(g->down_codec);
    free(g->prev_active);
    memset(g, 0, sizeof *g);
}

px_status px_worker_group_place(px_worker_group *g, px_transport *t)
{
    if (!t->send_buffer) return PX_OK;
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        if (w->msg_lent) continue;
        unsigned char *buf = t->send_buffer(t, i, w->msg_len);
        if (!buf) continue;
        px_free(w->msg);
        w->msg = buf;
        w->msg_lent = 1;
    }
    return PX_OK;
}

px_status px_worker_group_take(px_worker_group *g, const unsigned char *msg, size_t len,
                               const float **params, uint32_t *step, int *stop)
{
    *stop = 0;
    px_msg_header h;
    px_drop_reason r = px_wire_open(msg, len, &h);
    if (r != PX_DROP_NONE)
        return px_error(PX_EPROTO, "broken message from the server (%s)", px_drop_reason_name(r));
    if (h.kind == PX_MSG_STOP) {
        *stop = 1;
        /* a preempted run's stop: save the workers' state (elem_count 1) for step h.step */
        g->stop_save = h.elem_count == 1;
        *step = h.step;
        return PX_OK;
    }
    size_t d = g->setup.model->n_params;
    const px_codec_spec *down = &g->setup.downlink;
    /* full parameters; a quantised delta; or (LISA) the groups the previous step trained */
    int full = h.codec == 0 && h.elem_count == d, delta = g->down_codec != NULL && !full;
    size_t values = d;
    if (g->prev_active && !full)
        values = px_lisa_active(g->setup.lisa, h.step ? h.step - 1 : 0, g->prev_active);
    size_t want = delta ? px_codec_payload_bytes(down, d) : values * sizeof(float);
    if (h.kind != PX_MSG_PARAMS || h.elem_count != (delta ? d : values) ||
        h.payload_bytes != want ||
        (delta && (h.codec != px_codec_wire_id(down) || h.block_size != px_codec_wire_block(down))) ||
        (!delta && h.codec != 0))
        return px_error(PX_EPROTO,
                        "unexpected message from the server (kind %u, codec %u, %llu "
                        "values in %llu bytes; expected %zu values)",
                        h.kind, h.codec, (unsigned long long)h.elem_count,
                        (unsigned long long)h.payload_bytes, values);
    const unsigned char *payload = msg + PX_WIRE_HEADER_BYTES;
    *step = h.step;
    if (!g->replica) {
        *params = (const float *)payload; /* read in place: no copy */
        return PX_OK;
    }
    if (full) {
        memcpy(g->replica, payload, d * sizeof(float));
        g->replica_valid = 1;
        g->replica_step = h.step;
        *params = g->replica;
        return PX_OK;
    }
    /* a delta or the changed groups are relative to the previous step's parameters: a rank
     * that missed those must never apply them (the server sends it the full parameters) */
    if (!g->replica_valid || h.step != g->replica_step + 1) {
        px_status st = g->replica_valid
                           ? px_error(PX_EPROTO,
                                      "parameters of step %u relative to step %u, but the last "
                                      "parameters taken were of step %u",
                                      h.step, h.step - 1, g->replica_step)
                           : px_error(PX_EPROTO,
                                      "parameters of step %u relative to earlier ones, but no "
                                      "full parameters were taken before",
                                      h.step);
        g->replica_valid = 0;
        return st;
    }
    if (delta) {
        px_codec_stream cs = {g->setup.seed, h.step, PX_CODEC_DOWNLINK};
        px_status st = px_codec_decode_add(g->down_codec, &cs, payload, want, g->replica, d);
        if (st < 0) {
            g->replica_valid = 0;
            return px_error_context(st, "parameter delta of step %u", h.step);
        }
    } else {
        px_lisa_scatter(g->setup.lisa, g->prev_active, (const float *)payload, g->replica, 0);
    }
    g->replica_step = h.step;
    *params = g->replica;
    return PX_OK;
}

px_status px_worker_group_take_part(px_worker_group *g, size_t k, const unsigned char *msg,
                                    size_t len, uint32_t *step, int *stop)
{
    *stop = 0;
    px_msg_header h;
    px_drop_reason r = px_wire_open(msg, len, &h);
    if (r != PX_DROP_NONE)
        return px_error(PX_EPROTO, "broken message from server shard %zu (%s)", k,
                        px_drop_reason_name(r));
    *step = h.step;
    if (h.kind == PX_MSG_STOP) {
        *stop = 1;
        g->stop_save = h.elem_count == 1;
        return PX_OK;
    }
    const px_shard_slice *sl = &g->setup.slices[k];
    px_worker_shard *v = &g->shard[k];
    const px_codec_spec *down = &g->setup.downlink;
    size_t n = sl->n;
    /* the slice in full; a quantised delta of it; or (LISA) its groups the previous step trained */
    int full = h.codec == 0 && h.elem_count == n, delta = g->down_codec != NULL && !full;
    size_t values = n;
    if (!g->down_codec && g->setup.lisa->on && !full) {
        px_lisa_active(g->setup.lisa, h.step ? h.step - 1 : 0, g->scratch);
        values = px_shard_slice_mask(sl, g->scratch, v->prev);
    }
    size_t want = delta ? px_codec_payload_bytes(down, n) : values * sizeof(float);
    if (h.kind != PX_MSG_PARAMS || h.elem_count != (delta ? n : values) ||
        h.payload_bytes != want ||
        (delta && (h.codec != px_codec_wire_id(down) || h.block_size != px_codec_wire_block(down))) ||
        (!delta && h.codec != 0))
        return px_error(PX_EPROTO,
                        "unexpected message from server shard %zu (kind %u, codec %u, %llu values "
                        "in %llu bytes; expected %zu values)",
                        k, h.kind, h.codec, (unsigned long long)h.elem_count,
                        (unsigned long long)h.payload_bytes, values);
    const unsigned char *payload = msg + PX_WIRE_HEADER_BYTES;
    float *dst = g->replica + sl->lo;
    if (full) {
        memcpy(dst, payload, n * sizeof(float));
        v->valid = 1;
        v->step = h.step;
        return PX_OK;
    }
    if (!v->valid || h.step != v->step + 1) {
        v->valid = 0;
        return px_error(PX_EPROTO,
                        "server shard %zu: parameters of step %u relative to step %u, but the "
                        "slice holds %s",
                        k, h.step, h.step - 1, "no full parameters of the step before");
    }
    if (delta) {
        px_codec_stream cs = {g->setup.seed, h.step, PX_CODEC_DOWNLINK};
        px_status st = px_codec_decode_add(g->down_codec, &cs, payload, want, dst, n);
        if (st < 0) {
            v->valid = 0;
            return px_error_context(st, "parameter delta of step %u from server shard %zu",
                                    h.step, k);
        }
    } else {
        px_lisa_scatter(&sl->lisa, v->prev, (const float *)payload, dst, 0);
    }
    v->step = h.step;
    return PX_OK;
}

/* Data poisoning by a Byzantine worker (LABEL_FLIP), applied to the drawn batch. */
static void px__flip_labels(void *user, uint8_t *y, size_t n)
{
    const px_worker_group *g = user;
    px_byz_flip_labels(y, n, g->setup.data->classes);
}

/* Stage 2, faults: a Byzantine worker's local gradient attack rewrites its update. */
static void px__fault_stage(const px_worker_group *g, const px_worker *w, int bad, float *update)
{
    const px_byz_spec *byz = g->setup.byz;
    if (bad && !byz->omniscient && px_attack_is_vector(byz->attack))
        px_byz_local_gradient(byz, w->who, g->step, update, g->setup.model->n_params);
}

/* Stage 3, encoding: the uplink codec writes the payload (float32 is already in place). Under
 * LISA the payload holds the active groups' values only, as one vector; error feedback carries
 * the frozen groups' residuals over to their next turn. */
static px_status px__encode_stage(const px_worker_group *g, px_worker *w, const float *update)
{
    const px_lisa *lisa = g->setup.lisa;
    void *payload = w->msg + PX_WIRE_HEADER_BYTES;
    if (!w->codec) {
        if (lisa->on) px_lisa_gather(lisa, g->active, update, payload);
        return PX_OK;
    }
    px_codec_stream cs = {g->setup.seed, g->step, w->id};
    if (!lisa->on)
        return px_codec_encode(w->codec, &cs, update, g->setup.model->n_params, w->residual,
                               payload, g->payload_bytes);
    px_lisa_gather(lisa, g->active, update, w->compact);
    if (w->residual) px_lisa_gather(lisa, g->active, w->residual, w->compact_residual);
    PX_CHECK(px_codec_encode(w->codec, &cs, w->compact, g->n_active, w->compact_residual, payload,
                             g->payload_bytes));
    if (w->residual) px_lisa_scatter(lisa, g->active, w->compact_residual, w->residual, 0);
    return PX_OK;
}

/* Seals msg (header + a payload of `payload_bytes` holding `values` values) as worker w's
 * message of this step, then lets a faulty worker tamper with it; returns the bytes to send. */
static size_t px__seal(const px_worker_group *g, const px_worker *w, int bad, float loss,
                       unsigned char *msg, size_t values, size_t payload_bytes)
{
    const px_worker_setup *su = &g->setup;
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT,
        .codec = px_codec_wire_id(&su->uplink),
        .step = g->step - w->plan.step_back,
        .worker = w->id,
        .elem_count = values,
        .block_size = px_codec_wire_block(&su->uplink),
        .loss = loss,
    };
    px_wire_seal(msg, &h, payload_bytes);
    size_t len = PX_WIRE_HEADER_BYTES + payload_bytes;
    if (bad && w->plan.send)
        len = px_byz_tamper(su->byz, w->who, g->step, PX_WIRE_HEADER_BYTES, msg, len);
    return len;
}

/* Stage 4, sealing: the header, then what a faulty worker does to its message. */
static void px__seal_stage(const px_worker_group *g, px_worker *w, int bad, float loss)
{
    w->plan = (px_byz_send_plan){1, 0.0, 0};
    if (bad) w->plan = px_byz_plan_send(g->setup.byz, w->who, g->step);
    w->send_len = px__seal(g, w, bad, loss, w->msg, g->n_active, g->payload_bytes);
}

/* Sharded server: stages 3 and 4 for each shard: its slice of the update (LISA: of its active
 * groups) encoded with the worker's codec and error feedback, sealed, and tampered with as the
 * whole message would be. */
static px_status px__encode_parts(const px_worker_group *g, px_worker *w, int bad,
                                  const float *update, float loss)
{
    const px_worker_setup *su = &g->setup;
    const int lisa = su->lisa->on;
    w->plan = (px_byz_send_plan){1, 0.0, 0};
    if (bad) w->plan = px_byz_plan_send(su->byz, w->who, g->step);
    for (size_t k = 0; k < su->shards; k++) {
        const px_shard_slice *sl = &su->slices[k];
        const px_worker_shard *v = &g->shard[k];
        px_worker_part *p = &w->parts[k];
        const float *x = update + sl->lo;
        float *res = w->residual ? w->residual + sl->lo : NULL;
        unsigned char *payload = p->msg + PX_WIRE_HEADER_BYTES;
        px_codec_stream cs = {su->seed, g->step, w->id};
        if (!w->codec) {
            if (lisa)
                px_lisa_gather(&sl->lisa, v->active, x, (float *)payload);
            else
                memcpy(payload, x, sl->n * sizeof(float));
        } else if (!lisa) {
            PX_CHECK(px_codec_encode(w->codec, &cs, x, sl->n, res, payload, v->payload_bytes));
        } else {
            px_lisa_gather(&sl->lisa, v->active, x, w->compact);
            if (res) px_lisa_gather(&sl->lisa, v->active, res, w->compact_residual);
            PX_CHECK(px_codec_encode(w->codec, &cs, w->compact, v->n_active,
                                     res ? w->compact_residual : NULL, payload,
                                     v->payload_bytes));
            if (res) px_lisa_scatter(&sl->lisa, v->active, w->compact_residual, res, 0);
        }
        p->send_len = px__seal(g, w, bad, loss, p->msg, v->n_active, v->payload_bytes);
    }
    return PX_OK;
}

static void px__worker_task(void *arg, size_t i, int thread)
{
    (void)thread;
    px_worker_group *g = arg;
    const px_byz_spec *byz = g->setup.byz;
    px_worker *w = &g->workers[i];
    w->status = PX_OK;
    if (!w->active) return;
    int bad = byz && px_byz_is_member(byz, w->who, g->step);
    px_batch_hook poison = {px__flip_labels, g};
    float *update = w->grad ? w->grad : (float *)(w->msg + PX_WIRE_HEADER_BYTES);
    float loss = g->update->compute(
        w->update, w->who, g->params, g->step, g->setup.lisa->on ? g->active : NULL,
        bad && byz->attack == PX_ATTACK_LABEL_FLIP ? &poison : NULL, update);
    px__fault_stage(g, w, bad, update);
    if (w->parts) {
        w->status = px__encode_parts(g, w, bad, update, loss);
        return;
    }
    w->status = px__encode_stage(g, w, update);
    if (w->status < 0) return;
    px__seal_stage(g, w, bad, loss);
}

/* A worker's messages (one, or one per shard): whether any is still on its way, and sending
 * them all, each to its shard. */
static int px__in_flight(const px_worker_group *g, const px_worker *w, px_transport *const *t)
{
    if (!w->parts) return t[0]->in_flight(t[0], w->msg);
    for (size_t k = 0; k < g->setup.shards; k++)
        if (t[k]->in_flight(t[k], w->parts[k].msg)) return 1;
    return 0;
}

static px_status px__send(const px_worker_group *g, const px_worker *w, px_transport *const *t,
                          double ready_at)
{
    if (!w->parts) return t[0]->send(t[0], w->msg, w->send_len, ready_at);
    for (size_t k = 0; k < g->setup.shards; k++)
        PX_CHECK(t[k]->send(t[k], w->parts[k].msg, w->parts[k].send_len, ready_at));
    return PX_OK;
}

px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *const *t)
{
    g->params = params;
    g->step = step;
    g->n_active = px_lisa_active(g->setup.lisa, step, g->active);
    if (g->setup.clients) /* the slots play this round's clients (every rank draws the same) */
        px_fl_round_clients(g->setup.seed, step, g->setup.clients, g->setup.slots,
                            g->client_scratch, g->round_clients);
    for (size_t i = 0; i < g->count; i++)
        g->workers[i].who =
            g->setup.clients ? g->round_clients[g->workers[i].id] : g->workers[i].id;
    g->payload_bytes = px_codec_payload_bytes(&g->setup.uplink, g->n_active);
    for (size_t k = 0; g->shard && k < g->setup.shards; k++) {
        px_worker_shard *v = &g->shard[k];
        v->n_active = px_shard_slice_mask(&g->setup.slices[k], g->active, v->active);
        v->payload_bytes = px_codec_payload_bytes(&g->setup.uplink, v->n_active);
    }
    for (size_t i = 0; i < g->count; i++)
        g->workers[i].active = !px__in_flight(g, &g->workers[i], t);
    px_pool_run(g->pool, g->count, px__worker_task, g);
    for (size_t i = 0; i < g->count; i++) {
        if (g->workers[i].active) PX_CHECK(px_update_failed(g->workers[i].update));
        if (g->workers[i].status < 0) return g->workers[i].status;
    }
    double now = px_now_ms();
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        if (w->active && w->plan.send && w->plan.delay_ms <= 0) PX_CHECK(px__send(g, w, t, 0));
    }
    /* stragglers last, the shortest delay first (the MPI transport sleeps until each is due) */
    for (;;) {
        px_worker *next = NULL;
        for (size_t i = 0; i < g->count; i++) {
            px_worker *w = &g->workers[i];
            if (w->active && w->plan.send && w->plan.delay_ms > 0 &&
                (!next || w->plan.delay_ms < next->plan.delay_ms))
                next = w;
        }
        if (!next) break;
        PX_CHECK(px__send(g, next, t, now + next->plan.delay_ms));
        next->plan.delay_ms = 0;
        next->plan.send = 0;
    }
    return PX_OK;
}

px_status px_worker_group_save(const px_worker_group *g, const char *dir)
{
    for (size_t i = 0; i < g->count; i++) {
        const px_worker *w = &g->workers[i];
        char path[4200];
        snprintf(path, sizeof path, "%s/worker_%u.pxs", dir, w->id);
        size_t d = g->setup.model->n_params;
        uint64_t shape[2] = {w->id, w->residual ? d : 0};
        px_state_section sec[2] = {{"WSHP", shape, sizeof shape},
                                   {"EFRS", w->residual, w->residual ? d * sizeof(float) : 0}};
        PX_CHECK(px_state_write(path, sec, 2));
    }
    return PX_OK;
}

px_status px_worker_group_load(px_worker_group *g, const char *dir)
{
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        char path[4200];
        snprintf(path, sizeof path, "%s/worker_%u.pxs", dir, w->id);
        size_t d = g->setup.model->n_params;
        px_state_file f;
        PX_CHECK(px_state_read(path, &f));
        const void *data;
        uint64_t shape[2];
        px_status st = px_state_get(&f, "WSHP", sizeof shape, &data, NULL);
        if (st == PX_OK) {
            memcpy(shape, data, sizeof shape);
            if (shape[0] != w->id || shape[1] != (w->residual ? d : 0))
                st = px_error(PX_EINVAL,
                              "state %s: saved for worker %llu with a residual of %llu values; "
                              "this run's worker %u has %zu (error feedback %s)",
                              path, (unsigned long long)shape[0], (unsigned long long)shape[1],
                              w->id, w->residual ? d : 0, w->residual ? "on" : "off");
        }
        if (st == PX_OK && w->residual) {
            st = px_state_get(&f, "EFRS", d * sizeof(float), &data, NULL);
            if (st == PX_OK) memcpy(w->residual, data, d * sizeof(float));
        }
        px_state_close(&f);
        if (st < 0) return px_error_context(st, "worker %u", w->id);
    }
    return PX_OK;
}
