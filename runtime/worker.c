/* worker.c - logical workers: minibatch, gradient, faults, encoding, message (see worker.h). */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"

px_status px_worker_group_create(px_worker_group *g, const px_worker_setup *setup,
                                 const uint32_t *ids, size_t count, px_pool *pool)
{
    memset(g, 0, sizeof *g);
    g->setup = *setup;
    const px_byz_spec *byz = setup->byz;
    g->setup.byz = byz && byz->attack != PX_ATTACK_NONE && byz->count > 0 ? byz : NULL;
    g->pool = pool;
    size_t d = setup->model->n_params;
    if (setup->downlink.format != PX_CODEC_FP32) {
        g->replica = px_alloc(d * sizeof(float), "the parameter replica");
        if (!g->replica) return PX_ENOMEM;
        PX_CHECK(px_codec_create(&g->down_codec, &setup->downlink, d, pool));
    }
    if (count == 0) return PX_OK;
    g->workers = calloc(count, sizeof *g->workers);
    if (!g->workers) return px_error(PX_ENOMEM, "workers: cannot allocate");
    g->count = count;
    int compressed = setup->uplink.format != PX_CODEC_FP32;
    g->payload_bytes = px_codec_payload_bytes(&setup->uplink, d);
    for (size_t i = 0; i < count; i++) {
        px_worker *w = &g->workers[i];
        w->id = ids[i];
        PX_CHECK(px_sampler_init(&w->sampler, setup->seed, ids[i], setup->data->train.count));
        PX_CHECK(px_mlp_work_create(&w->work, setup->model, setup->batch));
        w->batch_idx = px_alloc(setup->batch * sizeof *w->batch_idx, "batch indices");
        w->labels = px_alloc(setup->batch, "batch labels");
        w->msg_len = PX_WIRE_HEADER_BYTES + g->payload_bytes;
        w->msg = px_alloc(w->msg_len, "a gradient message");
        if (!w->batch_idx || !w->labels || !w->msg) return PX_ENOMEM;
        if (compressed) {
            /* each worker encodes on its own pool thread: its own context, no inner pool */
            PX_CHECK(px_codec_create(&w->codec, &setup->uplink, d, NULL));
            w->grad = px_alloc(d * sizeof(float), "a gradient");
            if (!w->grad) return PX_ENOMEM;
            if (setup->error_feedback) {
                w->residual = px_alloc(d * sizeof(float), "an error-feedback residual");
                if (!w->residual) return PX_ENOMEM;
            }
        }
    }
    return PX_OK;
}

void px_worker_group_free(px_worker_group *g)
{
    for (size_t i = 0; i < g->count; i++) {
        px_worker *w = &g->workers[i];
        px_sampler_free(&w->sampler);
        px_mlp_work_free(&w->work);
        px_free(w->batch_idx);
        px_free(w->labels);
        px_free(w->msg);
        px_free(w->grad);
        px_free(w->residual);
        px_codec_destroy(w->codec);
    }
    free(g->workers);
    px_free(g->replica);
    px_codec_destroy(g->down_codec);
    memset(g, 0, sizeof *g);
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
        return PX_OK;
    }
    size_t d = g->setup.model->n_params;
    const px_codec_spec *down = &g->setup.downlink;
    int full = h.codec == 0;
    size_t want = full ? d * sizeof(float) : px_codec_payload_bytes(down, d);
    if (h.kind != PX_MSG_PARAMS || h.elem_count != d || h.payload_bytes != want ||
        (!full && (h.codec != px_codec_wire_id(down) || h.block_size != px_codec_wire_block(down))))
        return px_error(PX_EPROTO,
                        "unexpected message from the server (kind %u, codec %u, %llu "
                        "values in %llu bytes; expected %zu values)",
                        h.kind, h.codec, (unsigned long long)h.elem_count,
                        (unsigned long long)h.payload_bytes, d);
    const unsigned char *payload = msg + PX_WIRE_HEADER_BYTES;
    *step = h.step;
    if (!g->replica) {
        if (!full) return px_error(PX_EPROTO, "a parameter delta, but the downlink is float32");
        *params = (const float *)payload; /* read in place: no copy */
        return PX_OK;
    }
    if (full) {
        memcpy(g->replica, payload, d * sizeof(float));
        g->replica_valid = 1;
    } else {
        if (!g->replica_valid)
            return px_error(PX_EPROTO, "a parameter delta before any full parameters");
        px_codec_stream cs = {g->setup.seed, h.step, PX_CODEC_DOWNLINK};
        px_status st = px_codec_decode_add(g->down_codec, &cs, payload, want, g->replica, d);
        if (st < 0) {
            g->replica_valid = 0;
            return px_error_context(st, "parameter delta of step %u", h.step);
        }
    }
    *params = g->replica;
    return PX_OK;
}

static void px__worker_task(void *arg, size_t i, int thread)
{
    (void)thread;
    px_worker_group *g = arg;
    const px_worker_setup *su = &g->setup;
    px_worker *w = &g->workers[i];
    w->status = PX_OK;
    if (!w->active) return;
    const px_byz_spec *byz = su->byz;
    int bad = byz && px_byz_is_member(byz, w->id, g->step);
    px_sampler_batch(&w->sampler, g->step, su->batch, w->batch_idx);
    px_split_gather(su->data, &su->data->train, w->batch_idx, su->batch, px_mlp_input(&w->work),
                    w->labels);
    if (bad && byz->attack == PX_ATTACK_LABEL_FLIP)
        px_byz_flip_labels(w->labels, su->batch, su->data->classes);
    unsigned char *payload = w->msg + PX_WIRE_HEADER_BYTES;
    float *grad = w->grad ? w->grad : (float *)payload;
    size_t d = su->model->n_params;
    float loss = px_mlp_loss_grad(su->model, &w->work, g->params, w->labels, su->batch, grad);
    if (bad && !byz->omniscient && px_attack_is_vector(byz->attack))
        px_byz_local_gradient(byz, w->id, g->step, grad, d);
    if (w->codec) {
        px_codec_stream cs = {su->seed, g->step, w->id};
        w->status = px_codec_encode(w->codec, &cs, grad, d, w->residual, payload, g->payload_bytes);
        if (w->status < 0) return;
    }
    w->plan = (px_byz_send_plan){1, 0.0, 0};
    if (bad) w->plan = px_byz_plan_send(byz, w->id, g->step);
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT,
        .codec = px_codec_wire_id(&su->uplink),
        .step = g->step - w->plan.step_back,
        .worker = w->id,
        .elem_count = d,
        .block_size = px_codec_wire_block(&su->uplink),
        .loss = loss,
    };
    px_wire_seal(w->msg, &h, g->payload_bytes);
    w->send_len = w->msg_len;
    if (bad && w->plan.send)
        w->send_len =
            px_byz_tamper(byz, w->id, g->step, PX_WIRE_HEADER_BYTES, w->msg, w->msg_len);
}

px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *t)
{
    g->params = params;
    g->step = step;
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
