/* worker.c - logical workers: minibatch, gradient, message (see worker.h). */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"

px_status px_worker_group_create(px_worker_group *g, const px_mlp *model, const px_dataset *data,
                                 size_t batch, uint64_t seed, const uint32_t *ids, size_t count,
                                 px_pool *pool)
{
    memset(g, 0, sizeof *g);
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
    px_sampler_batch(&w->sampler, g->step, g->batch, w->batch_idx);
    px_split_gather(g->data, &g->data->train, w->batch_idx, g->batch, px_mlp_input(&w->work),
                    w->labels);
    float *grad = (float *)(w->msg + PX_WIRE_HEADER_BYTES);
    float loss = px_mlp_loss_grad(g->model, &w->work, g->params, w->labels, g->batch, grad);
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT,
        .codec = 0,
        .step = g->step,
        .worker = w->id,
        .elem_count = g->model->n_params,
        .block_size = 0,
        .loss = loss,
    };
    px_wire_seal(w->msg, &h, g->model->n_params * sizeof(float));
}

px_status px_worker_group_step(px_worker_group *g, const float *params, uint32_t step,
                               px_transport *t)
{
    g->params = params;
    g->step = step;
    px_pool_run(g->pool, g->count, px__worker_task, g);
    for (size_t i = 0; i < g->count; i++)
        PX_CHECK(t->send(t, g->workers[i].msg, g->workers[i].msg_len));
    return PX_OK;
}
