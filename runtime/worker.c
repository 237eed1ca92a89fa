/* worker.c - logical workers: minibatch, gradient, message (see worker.h). */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"

px_status px_worker_group_create(px_worker_group *g, const px_mlp *model, const px_dataset *data,
                                 size_t batch, uint64_t seed, const uint32_t *ids, size_t count,
                                 px_pool *pool, const px_byz_spec *byz)
{
    memset(g, 0, sizeof *g);
    g->byz = byz && byz->attack != PX_ATTACK_NONE && byz->count > 0 ? byz : NULL;
    g->classes = data->classes;
    g->model = model;
    g->data = data;
    g->batch = batch;
    g->seed = seed;
    g->pool = pool;
    if (count == 0) return PX_OK;
    g->workers = calloc(count, sizeof *g->workers);
    if (!g->workers) return px_error(PX_ENOMEM, "workers: cannot allocate");
    g->count = count;
    size_t payload = model->n_params * sizeof(float);
    for (size_t i = 0; i < count; i++) {
        px_worker *w = &g->workers[i];
        w->id = ids[i];
        PX_CHECK(px_sampler_init(&w->sampler, seed, ids[i], data->train.count));
        PX_CHECK(px_mlp_work_create(&w->work, model, batch));
        w->batch_idx = px_alloc(batch * sizeof *w->batch_idx, "batch indices");
        w->labels = px_alloc(batch, "batch labels");
        w->msg_len = PX_WIRE_HEADER_BYTES + payload;
        w->msg = px_alloc(w->msg_len, "a gradient message");
        if (!w->batch_idx || !w->labels || !w->msg) return PX_ENOMEM;
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
    }
    free(g->workers);
    memset(g, 0, sizeof *g);
}

static void px__worker_task(void *arg, size_t i, int thread)
{
    (void)thread;
    px_worker_group *g = arg;
    px_worker *w = &g->workers[i];
    if (!w->active) return;
    const px_byz_spec *byz = g->byz;
    int bad = byz && px_byz_is_member(byz, w->id, g->step);
    px_sampler_batch(&w->sampler, g->step, g->batch, w->batch_idx);
    px_split_gather(g->data, &g->data->train, w->batch_idx, g->batch, px_mlp_input(&w->work),
                    w->labels);
    if (bad && byz->attack == PX_ATTACK_LABEL_FLIP)
        px_byz_flip_labels(w->labels, g->batch, g->classes);
    float *grad = (float *)(w->msg + PX_WIRE_HEADER_BYTES);
    size_t d = g->model->n_params;
    float loss = px_mlp_loss_grad(g->model, &w->work, g->params, w->labels, g->batch, grad);
    if (bad && !byz->omniscient && px_attack_is_vector(byz->attack))
        px_byz_local_gradient(byz, w->id, g->step, grad, d);
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT,
        .codec = 0,
        .step = g->step,
        .worker = w->id,
        .elem_count = d,
        .block_size = 0,
        .loss = loss,
    };
    px_wire_seal(w->msg, &h, d * sizeof(float));
    w->send_len = w->msg_len;
    w->plan = (px_byz_send_plan){1, 0.0};
    if (bad) {
        w->plan = px_byz_plan_send(byz, w->id, g->step);
        if (w->plan.send) w->send_len = px_byz_tamper(byz, w->id, g->step, w->msg, w->msg_len);
    }
}

px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *t)
{
    g->params = params;
    g->step = step;
    for (size_t i = 0; i < g->count; i++) g->workers[i].active = !t->in_flight(t, g->workers[i].msg);
    px_pool_run(g->pool, g->count, px__worker_task, g);
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
