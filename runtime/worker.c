/* worker.c - logical workers: the update, then the fault, encoding and sealing stages, and the
 * message (see worker.h). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"
#include "runtime/state.h"

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
    if (setup->downlink.format != PX_CODEC_FP32 || setup->lisa->on) {
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
        if (compressed || lisa) {
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
    }
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

/* Stage 4, sealing: the header, then what a faulty worker does to its message. */
static void px__seal_stage(const px_worker_group *g, px_worker *w, int bad, float loss)
{
    const px_worker_setup *su = &g->setup;
    w->plan = (px_byz_send_plan){1, 0.0, 0};
    if (bad) w->plan = px_byz_plan_send(su->byz, w->who, g->step);
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT,
        .codec = px_codec_wire_id(&su->uplink),
        .step = g->step - w->plan.step_back,
        .worker = w->id,
        .elem_count = g->n_active,
        .block_size = px_codec_wire_block(&su->uplink),
        .loss = loss,
    };
    px_wire_seal(w->msg, &h, g->payload_bytes);
    w->send_len = PX_WIRE_HEADER_BYTES + g->payload_bytes;
    if (bad && w->plan.send)
        w->send_len =
            px_byz_tamper(su->byz, w->who, g->step, PX_WIRE_HEADER_BYTES, w->msg, w->send_len);
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
    w->status = px__encode_stage(g, w, update);
    if (w->status < 0) return;
    px__seal_stage(g, w, bad, loss);
}

px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *t)
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
    for (size_t i = 0; i < g->count; i++)
        g->workers[i].active = !t->in_flight(t, g->workers[i].msg);
    px_pool_run(g->pool, g->count, px__worker_task, g);
    for (size_t i = 0; i < g->count; i++)
        if (g->workers[i].status < 0) return g->workers[i].status;
    double now = px_now_ms();
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        if (w->active && w->plan.send && w->plan.delay_ms <= 0)
            PX_CHECK(t->send(t, w->msg, w->send_len, 0));
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
        PX_CHECK(t->send(t, next->msg, next->send_len, now + next->plan.delay_ms));
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
