/* model_device.c - a model whose loss_grad runs on a device (see model_device.h). */
#include "model_device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/nn/exec.h"

typedef struct {
    px_model *base;
    px_device *dev;
} px__on_device;

/* One thread's work area: an executor, its pass's work area, and the copies it moves. */
typedef struct {
    px__on_device *od;
    size_t B;
    px_nn_exec *x;
    void *xwork;
    void *cpu_work; /* the base model's own, made on the first evaluate or generate */
    /* host staging (page-locked on a GPU): what the worker writes, and the targets */
    float *h_input;
    int32_t *h_tokens, *h_targets;
    /* device memory */
    float *d_params, *d_grad;
    void *d_input;
    int32_t *d_targets;
    px_status failed; /* the last pass's failure, and its message */
    char why[512];
} px__dwork;

static size_t px__input_bytes(const px_model *b, size_t B)
{
    return B * b->input_values * (b->tokens ? sizeof(int32_t) : sizeof(float));
}

static void px__dwork_free(void *work)
{
    px__dwork *w = work;
    if (!w) return;
    px_device *d = w->od->dev;
    const px_model *b = w->od->base;
    if (w->x) {
        if (w->xwork) b->ops->xwork_free(w->x, w->xwork);
        px_stream_sync(w->x->stream);
    }
    px_device_free(d, w->d_params);
    px_device_free(d, w->d_grad);
    px_device_free(d, w->d_input);
    px_device_free(d, w->d_targets);
    px_device_free_host(d, b->tokens ? (void *)w->h_tokens : (void *)w->h_input);
    px_device_free_host(d, w->h_targets);
    px_exec_destroy(w->x);
    if (w->cpu_work) b->ops->work_free(w->cpu_work);
    free(w);
}

static void *px__dwork_create(const px_model *m, size_t B)
{
    px__on_device *od = m->impl;
    const px_model *b = od->base;
    px__dwork *w = calloc(1, sizeof *w);
    if (!w) {
        px_error(PX_ENOMEM, "device model: cannot allocate a work area");
        return NULL;
    }
    w->od = od;
    w->B = B;
    px_device *d = od->dev;
    size_t labels = B * b->label_values, in = px__input_bytes(b, B);
    void *h_in = NULL;
    px_status st = px_device_bind_thread(d);
    if (st >= 0) st = px_exec_create(&w->x, d);
    if (st >= 0) st = px_device_alloc(d, b->n_params * sizeof(float), (void **)&w->d_params);
    if (st >= 0) st = px_device_alloc(d, b->n_params * sizeof(float), (void **)&w->d_grad);
    if (st >= 0) st = px_device_alloc(d, in, &w->d_input);
    if (st >= 0) st = px_device_alloc(d, labels * sizeof(int32_t), (void **)&w->d_targets);
    if (st >= 0) st = px_device_alloc_host(d, in, &h_in);
    if (st >= 0) st = px_device_alloc_host(d, labels * sizeof(int32_t), (void **)&w->h_targets);
    if (b->tokens)
        w->h_tokens = h_in;
    else
        w->h_input = h_in;
    if (st >= 0 && !(w->xwork = b->ops->xwork_create(b, w->x, B)))
        st = px_error_context(PX_ENOMEM, "device model: %s work area on %s", b->kind,
                              px_device_name(d));
    if (st < 0) {
        px__dwork_free(w);
        return NULL;
    }
    return w;
}

static float *px__dwork_input(void *work)
{
    return ((px__dwork *)work)->h_input;
}

static int32_t *px__dwork_tokens(void *work)
{
    return ((px__dwork *)work)->h_tokens;
}

/* The pass on the device: parameters and batch in, gradient out, then wait for it. */
static px_status px__device_pass(px__dwork *w, const float *params, const uint8_t *y, size_t B,
                                 const uint8_t *active, const px_loss_terms *terms, float *grad,
                                 double *loss)
{
    const px_model *b = w->od->base;
    px_device *d = w->od->dev;
    px_stream *s = w->x->stream;
    size_t n = b->n_params, labels = B * b->label_values;
    if (B > w->B)
        return px_error(PX_EINVAL, "device model: a batch of %zu in a work area for %zu", B, w->B);
    for (size_t i = 0; i < labels; i++)
        w->h_targets[i] = y[i];
    PX_CHECK(px_device_bind_thread(d));
    PX_CHECK(px_device_copy(d, w->d_params, params, n * sizeof(float), PX_COPY_H2D, s));
    PX_CHECK(px_device_copy(d, w->d_input, b->tokens ? (void *)w->h_tokens : (void *)w->h_input,
                            px__input_bytes(b, B), PX_COPY_H2D, s));
    PX_CHECK(px_device_copy(d, w->d_targets, w->h_targets, labels * sizeof(int32_t), PX_COPY_H2D,
                            s));
    PX_CHECK(b->ops->xloss_grad(b, w->x, w->xwork, w->d_params, w->d_input, w->d_targets, B,
                                active, terms, w->d_grad, loss));
    PX_CHECK(px_device_copy(d, grad, w->d_grad, n * sizeof(float), PX_COPY_D2H, s));
    return px_stream_sync(s);
}

static float px__dwork_loss_grad(const px_model *m, void *work, const float *params,
                                 const uint8_t *y, size_t B, const uint8_t *active,
                                 const px_loss_terms *terms, float *grad)
{
    (void)m;
    px__dwork *w = work;
    double loss = 0;
    w->failed = px__device_pass(w, params, y, B, active, terms, grad, &loss);
    if (w->failed >= 0) return (float)loss;
    snprintf(w->why, sizeof w->why, "%s", px_errmsg());
    for (size_t i = 0; i < w->od->base->n_params; i++) /* nothing from a failed pass is used */
        grad[i] = NAN;
    return NAN;
}

static px_status px__dwork_failed(void *work)
{
    px__dwork *w = work;
    if (w->failed >= 0) return PX_OK;
    return px_error(w->failed, "the training step on %s failed: %s", px_device_name(w->od->dev),
                    w->why);
}

/* ---- the rest is the base model's, on the CPU ---- */

static void px__od_init(const px_model *m, float *params, uint64_t seed)
{
    const px_model *b = ((px__on_device *)m->impl)->base;
    b->ops->init(b, params, seed);
}

static void *px__cpu_work(px__dwork *w)
{
    const px_model *b = w->od->base;
    if (!w->cpu_work) w->cpu_work = b->ops->work_create(b, w->B);
    return w->cpu_work;
}

static void px__od_evaluate(const px_model *m, void *work, const float *params, const uint8_t *y,
                            size_t B, double *loss_sum, size_t *correct)
{
    const px_model *b = ((px__on_device *)m->impl)->base;
    px__dwork *w = work;
    void *cw = px__cpu_work(w);
    if (!cw) { /* no memory for it: nothing counted, the caller's totals show it */
        *loss_sum = NAN;
        return;
    }
    if (b->tokens)
        memcpy(b->ops->tokens(cw), w->h_tokens, px__input_bytes(b, B));
    else
        memcpy(b->ops->input(cw), w->h_input, px__input_bytes(b, B));
    b->ops->evaluate(b, cw, params, y, B, loss_sum, correct);
}

static size_t px__od_generate(const px_model *m, void *work, const float *params, uint64_t seed,
                              int32_t start, size_t n, int32_t *out)
{
    const px_model *b = ((px__on_device *)m->impl)->base;
    void *cw = px__cpu_work(work);
    return cw ? b->ops->generate(b, cw, params, seed, start, n, out) : 0;
}

static double px__od_flops(const px_model *m)
{
    const px_model *b = ((px__on_device *)m->impl)->base;
    return b->ops->flops_per_sample(b);
}

static void px__od_destroy(px_model *m)
{
    px__on_device *od = m->impl;
    px_model_destroy(od->base);
    px_device_close(od->dev);
    free(od);
    free(m);
}

#define PX__OD_OPS(in, tok, gen)                                                                   \
    {.init = px__od_init,                                                                          \
     .work_create = px__dwork_create,                                                              \
     .work_free = px__dwork_free,                                                                  \
     .input = in,                                                                                  \
     .tokens = tok,                                                                                \
     .loss_grad = px__dwork_loss_grad,                                                             \
     .work_failed = px__dwork_failed,                                                              \
     .evaluate = px__od_evaluate,                                                                  \
     .generate = gen,                                                                              \
     .flops_per_sample = px__od_flops,                                                             \
     .destroy = px__od_destroy}

static const px_model_ops px__values_ops = PX__OD_OPS(px__dwork_input, NULL, NULL);
static const px_model_ops px__tokens_ops = PX__OD_OPS(NULL, px__dwork_tokens, NULL);
static const px_model_ops px__tokens_gen_ops =
    PX__OD_OPS(NULL, px__dwork_tokens, px__od_generate);

px_status px_model_on_device(px_model **out, px_model *base, px_device_kind kind, int ordinal)
{
    *out = NULL;
    const px_model_ops *bo = base->ops;
    if (!bo->xwork_create || !bo->xwork_free || !bo->xloss_grad)
        return px_error(PX_ENOTSUP, "model.kind = %s has no pass for a device (only the CPU)",
                        base->kind ? base->kind : "?");
    px_model *m = calloc(1, sizeof *m);
    px__on_device *od = calloc(1, sizeof *od);
    if (!m || !od) {
        free(m);
        free(od);
        return px_error(PX_ENOMEM, "device model: cannot allocate");
    }
    px_status st = px_device_open(&od->dev, kind, ordinal);
    if (st < 0) {
        free(m);
        free(od);
        return st;
    }
    od->base = base;
    *m = *base; /* the same shape: parameters, tensors, groups */
    m->ops = !base->tokens      ? &px__values_ops
             : bo->generate     ? &px__tokens_gen_ops
                                : &px__tokens_ops;
    m->impl = od;
    *out = m;
    return PX_OK;
}

px_device *px_model_device(const px_model *m)
{
    return m->ops->destroy == px__od_destroy ? ((px__on_device *)m->impl)->dev : NULL;
}
