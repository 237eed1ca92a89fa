/* update.c - the updates a worker can compute (see update.h): one row per kind. */
#include "update.h"

#include "base/table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One context per logical worker (minibatch) or federated slot (local). */
struct px_update {
    const px_update_setup *su;
    uint32_t worker;
    px_sampler sampler;  /* the data order: a function of (seed, worker or client, position) */
    void *work;          /* the model's activations */
    uint32_t *batch_idx; /* batch indices */
    uint8_t *labels;     /* batch labels (batch x label_values) */
    float *local;        /* local: the client's model while it trains */
    float *grad;         /* local: one step's gradient */
};

static void px__update_destroy(px_update *u)
{
    if (!u) return;
    px_sampler_free(&u->sampler);
    if (u->work) u->su->model->ops->work_free(u->work);
    px_free(u->batch_idx);
    px_free(u->labels);
    px_free(u->local);
    px_free(u->grad);
    free(u);
}

/* The part `who` draws from: its indices and count (all training data without a partition). */
static const uint32_t *px__part(const px_update_setup *su, uint32_t who, size_t *n)
{
    if (!su->partition) {
        *n = su->data->train.count;
        return NULL;
    }
    const px_partition *p = su->partition;
    *n = p->offsets[who + 1] - p->offsets[who];
    return p->indices + p->offsets[who];
}

/* The largest part any `who` of this context may draw from. */
static size_t px__largest_part(const px_update_setup *su)
{
    if (!su->partition) return su->data->train.count;
    size_t most = 0;
    for (size_t p = 0; p < su->partition->parts; p++) {
        size_t n = su->partition->offsets[p + 1] - su->partition->offsets[p];
        most = n > most ? n : most;
    }
    return most;
}

static px_status px__update_create(px_update **out, const px_update_setup *su, uint32_t worker,
                                   int local)
{
    *out = NULL;
    px_update *u = calloc(1, sizeof *u);
    if (!u) return px_error(PX_ENOMEM, "update: cannot allocate");
    u->su = su;
    u->worker = worker;
    px_status st;
    size_t n = local ? px__largest_part(su) : 0;
    if (!local) px__part(su, worker, &n);
    PX_CHECK_GOTO(px_sampler_init(&u->sampler, su->seed, worker, n), st, fail);
    u->work = su->model->ops->work_create(su->model, su->batch);
    u->batch_idx = px_alloc(su->batch * sizeof *u->batch_idx, "batch indices");
    u->labels = px_alloc(su->batch * su->data->label_values, "batch labels");
    if (!u->work || !u->batch_idx || !u->labels) {
        st = PX_ENOMEM;
        goto fail;
    }
    if (local) {
        size_t d = su->model->n_params;
        u->local = px_alloc(d * sizeof(float), "a client's model");
        u->grad = px_alloc(d * sizeof(float), "a client's gradient");
        if (!u->local || !u->grad) {
            st = PX_ENOMEM;
            goto fail;
        }
    }
    *out = u;
    return PX_OK;
fail:
    px__update_destroy(u);
    return st;
}

/* Batch `k` (B examples) of the data order of `who` over its part, into the work area; then the
 * loss and gradient at params. */
static float px__batch_grad(px_update *u, uint32_t who, uint64_t k, size_t B, const float *params,
                            const uint8_t *active, const px_batch_hook *hook,
                            const px_loss_terms *terms, float *grad)
{
    const px_update_setup *su = u->su;
    const px_model *m = su->model;
    size_t n;
    const uint32_t *part = px__part(su, who, &n);
    px_sampler_retarget(&u->sampler, who, n);
    px_sampler_batch(&u->sampler, k, B, u->batch_idx);
    if (part)
        for (size_t i = 0; i < B; i++)
            u->batch_idx[i] = part[u->batch_idx[i]];
    px_batch_io io = {.x = m->ops->input ? m->ops->input(u->work) : NULL,
                      .tokens = m->ops->tokens ? m->ops->tokens(u->work) : NULL,
                      .y = u->labels};
    px_dataset_gather(su->data, &su->data->train, u->batch_idx, B, &io);
    if (hook && hook->labels) hook->labels(hook->user, u->labels, B * su->data->label_values);
    return m->ops->loss_grad(m, u->work, params, u->labels, B, active, terms, grad);
}

px_status px_update_failed(const px_update *u)
{
    const px_model *m = u->su->model;
    return m->ops->work_failed ? m->ops->work_failed(u->work) : PX_OK;
}

/* ---- minibatch: one gradient of the model's loss on the worker's next minibatch ---- */

static px_status px__minibatch_create(px_update **out, const px_update_setup *su, uint32_t worker)
{
    return px__update_create(out, su, worker, 0);
}

static float px__minibatch_compute(px_update *u, uint32_t who, const float *params, uint32_t step,
                                   const uint8_t *active, const px_batch_hook *hook, float *out)
{
    (void)who; /* a minibatch context belongs to one worker */
    return px__batch_grad(u, u->worker, step, u->su->batch, params, active, hook, NULL, out);
}

/* ---- local: a federated client's round ---- */

static px_status px__local_create(px_update **out, const px_update_setup *su, uint32_t slot)
{
    if (!su->partition)
        return px_error(PX_EINVAL, "update: federated clients need a partition of the data");
    return px__update_create(out, su, slot, 1);
}

/* The client's round: S local SGD steps from the global model, batches continuing the client's
 * own data order from where its previous rounds would have left it (step r*S + s), so that one
 * local step per round is exactly a distributed worker's minibatch over the same part. */
static float px__local_compute(px_update *u, uint32_t client, const float *global, uint32_t round,
                               const uint8_t *active, const px_batch_hook *hook, float *out)
{
    const px_update_setup *su = u->su;
    size_t d = su->model->n_params, n;
    px__part(su, client, &n);
    size_t B = su->batch < n ? su->batch : n;
    uint64_t steps =
        su->local_steps ? su->local_steps : (uint64_t)su->local_epochs * (n / B ? n / B : 1);
    memcpy(u->local, global, d * sizeof(float));
    double loss_sum = 0;
    for (uint64_t s = 0; s < steps; s++) {
        float loss = px__batch_grad(u, client, (uint64_t)round * steps + s, B, u->local, active,
                                    hook, &su->terms, u->grad);
        loss_sum += loss;
        if (su->prox_mu != 0.0f) px_fl_prox_grad(u->grad, u->local, global, d, su->prox_mu);
        for (size_t i = 0; i < d; i++)
            u->local[i] -= su->local_lr * u->grad[i];
    }
    /* the update the server treats as a gradient: global - local */
    for (size_t i = 0; i < d; i++)
        out[i] = global[i] - u->local[i];
    return (float)(loss_sum / (double)steps);
}

static const px_update_kind px__kinds[] = {
    {"minibatch", px__minibatch_create, px__minibatch_compute, px__update_destroy},
    {"local", px__local_create, px__local_compute, px__update_destroy},
};

const px_update_kind *px_update_find(const char *name)
{
    return px_table_find(px__kinds, sizeof px__kinds / sizeof px__kinds[0], sizeof px__kinds[0],
                         name);
}
