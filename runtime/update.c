/* update.c - the updates a worker can compute (see update.h): one row per kind. */
#include "update.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- minibatch: one gradient of the model's loss on the worker's next minibatch ---- */

struct px_update {
    const px_update_setup *su;
    uint32_t worker;
    px_sampler sampler;  /* the worker's data order: a function of (seed, worker, step) */
    void *work;          /* the model's activations */
    uint32_t *batch_idx; /* batch indices */
    uint8_t *labels;     /* batch labels (batch x label_values) */
};

static void px__minibatch_destroy(px_update *u)
{
    if (!u) return;
    px_sampler_free(&u->sampler);
    if (u->work) u->su->model->ops->work_free(u->work);
    px_free(u->batch_idx);
    px_free(u->labels);
    free(u);
}

static px_status px__minibatch_create(px_update **out, const px_update_setup *su, uint32_t worker)
{
    *out = NULL;
    px_update *u = calloc(1, sizeof *u);
    if (!u) return px_error(PX_ENOMEM, "update: cannot allocate");
    u->su = su;
    u->worker = worker;
    px_status st;
    PX_CHECK_GOTO(px_sampler_init(&u->sampler, su->seed, worker, su->data->train.count), st, fail);
    u->work = su->model->ops->work_create(su->model, su->batch);
    u->batch_idx = px_alloc(su->batch * sizeof *u->batch_idx, "batch indices");
    u->labels = px_alloc(su->batch * su->data->label_values, "batch labels");
    if (!u->work || !u->batch_idx || !u->labels) {
        st = PX_ENOMEM;
        goto fail;
    }
    *out = u;
    return PX_OK;
fail:
    px__minibatch_destroy(u);
    return st;
}

static float px__minibatch_compute(px_update *u, const float *params, uint32_t step,
                                   const uint8_t *active, const px_batch_hook *hook, float *out)
{
    const px_update_setup *su = u->su;
    const px_model *m = su->model;
    px_sampler_batch(&u->sampler, step, su->batch, u->batch_idx);
    px_batch_io io = {.x = m->ops->input ? m->ops->input(u->work) : NULL,
                      .tokens = m->ops->tokens ? m->ops->tokens(u->work) : NULL,
                      .y = u->labels};
    px_dataset_gather(su->data, &su->data->train, u->batch_idx, su->batch, &io);
    if (hook && hook->labels)
        hook->labels(hook->user, u->labels, su->batch * su->data->label_values);
    return m->ops->loss_grad(m, u->work, params, u->labels, su->batch, active, NULL, out);
}

static const px_update_kind px__kinds[] = {
    {"minibatch", px__minibatch_create, px__minibatch_compute, px__minibatch_destroy},
};

const px_update_kind *px_update_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof px__kinds / sizeof px__kinds[0]; i++)
        if (!strcmp(px__kinds[i].name, name)) return &px__kinds[i];
    return NULL;
}
