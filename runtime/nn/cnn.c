/* cnn.c - a LeNet-style convolutional network behind the model interface (model.h):
 *
 *   x (B,1,H,W) -> conv 5x5 pad 2 (c1) -> ReLU -> max-pool 2 -> conv 5x5 (c2) -> ReLU -> max-pool 2
 *     -> flatten -> Linear(h) -> ReLU -> Linear(classes)
 *
 * c1, c2 = model.channels (6, 16 by default, LeNet-5's), h = model.hidden[0] (120). For 28 x 28
 * images: (6,28,28) -> (6,14,14) -> (16,10,10) -> (16,5,5) = 400 -> 120 -> 10.
 *
 * Parameters, one layer group each, in this order: conv1 (weight (c1,C,5,5), bias) = the input
 * group; conv2 and fc1 = middle groups; fc2 = the head. Initialised as PyTorch initialises
 * Conv2d and Linear: uniform in +-1/sqrt(fan_in), from the stream (seed, PX_STREAM_INIT, layer).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "runtime/nn/layers.h"
#include "runtime/nn/model.h"

#define PX__K 5

typedef struct {
    size_t C, H, W;      /* input */
    size_t c1, c2, h, k; /* conv filters, hidden width, classes */
    size_t H1, W1;       /* after conv1 (same size) */
    size_t P1h, P1w;     /* after pool1 */
    size_t H2, W2;       /* after conv2 (valid) */
    size_t P2h, P2w;     /* after pool2 */
    size_t flat;         /* c2 * P2h * P2w */
    /* offsets of the tensors */
    size_t w1, b1, w2, b2, w3, b3, w4, b4, n;
    px_layer tensors[8];
    px_layer_group groups[4];
} px__cnn;

/* A work area in an executor's memory (exec.h): the host's for loss_grad, a GPU's for
 * xloss_grad. */
typedef struct {
    size_t B;
    px_nn_exec *x_exec;
    double *losses; /* the rows' losses, for the executor's ce_mean */
    float *x, *c1, *p1, *c2, *p2, *h, *logits; /* activations (c1, c2 after ReLU, in place) */
    float *probs;                              /* softmax, then the logits' gradient */
    uint32_t *a1, *a2;                         /* pooling argmax */
    float *col;                                /* im2col scratch */
    int32_t *targets;
    float *dh, *dp2, *dc2, *dp1, *dc1; /* activation gradients */
} px__cnn_work;

static const char *px__cnn_names[8] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                       "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};

static px_status px__cnn_check(const px_model_spec *s)
{
    if (s->n_conv != 0 && s->n_conv != 2)
        return px_error(PX_EINVAL,
                        "config: model.channels has %zu values; the CNN takes 2 (or "
                        "none for 6,16)",
                        s->n_conv);
    for (size_t i = 0; i < s->n_conv; i++)
        if (s->conv[i] < 1 || s->conv[i] > 1024)
            return px_error(PX_EINVAL, "config: model.channels[%zu] = %u must be in [1, 1024]", i,
                            s->conv[i]);
    if (s->n_hidden > 1)
        return px_error(PX_EINVAL,
                        "config: model.hidden has %zu widths; the CNN takes 1 (or "
                        "none for 120)",
                        s->n_hidden);
    if (s->n_hidden == 1 && (s->hidden[0] < 1 || s->hidden[0] > 65536))
        return px_error(PX_EINVAL, "config: model.hidden[0] = %u must be in [1, 65536]",
                        s->hidden[0]);
    if (s->input_values == 0) return PX_OK; /* the config alone: no data shape yet */
    if (s->tokens || s->label_values != 1)
        return px_error(PX_EINVAL, "config: model.kind = CNN classifies images; this dataset "
                                   "gives token windows");
    if (s->rows < 12 || s->cols < 12 || s->channels * s->rows * s->cols != s->input_values)
        return px_error(PX_EINVAL,
                        "config: model.kind = CNN needs images of at least 12 x 12 pixels; the "
                        "data is %zu x %zu x %zu",
                        s->channels, s->rows, s->cols);
    return PX_OK;
}

/* Parameters of the CNN a spec describes (px_model_kind.count), laid out as
 * px_cnn_model_create does; the data's shape unknown (config time) counts at the least the
 * kind accepts: one channel, 12 x 12 pixels, one class. */
double px_cnn_count(const px_model_spec *s)
{
    double C = s->input_values ? (double)s->channels : 1.0, k = s->classes ? (double)s->classes : 1;
    size_t H = s->input_values ? s->rows : 12, W = s->input_values ? s->cols : 12;
    double c1 = s->n_conv ? s->conv[0] : 6, c2 = s->n_conv ? s->conv[1] : 16;
    double h = s->n_hidden ? s->hidden[0] : 120;
    double flat = c2 * (double)(((H / 2) - PX__K + 1) / 2) * (double)(((W / 2) - PX__K + 1) / 2);
    return c1 * C * PX__K * PX__K + c1 + c2 * c1 * PX__K * PX__K + c2 + h * flat + h + k * h + k;
}

static void px__cnn_init(const px_model *m, float *p, uint64_t seed)
{
    const px__cnn *c = m->impl;
    const size_t fan_in[4] = {c->C * PX__K * PX__K, c->c1 * PX__K * PX__K, c->flat, c->h};
    for (int l = 0; l < 4; l++) {
        px_rng r;
        px_rng_init(&r, seed, PX_STREAM_INIT, (uint64_t)l, 0);
        double bound = 1.0 / sqrt((double)fan_in[l]);
        const px_layer *w = &c->tensors[2 * l], *b = &c->tensors[2 * l + 1];
        for (size_t i = 0; i < w->size; i++)
            p[w->offset + i] = (float)((2.0 * px_rng_uniform(&r) - 1.0) * bound);
        for (size_t i = 0; i < b->size; i++)
            p[b->offset + i] = (float)((2.0 * px_rng_uniform(&r) - 1.0) * bound);
    }
}

static void px__cnn_xwork_free(px_nn_exec *x, void *work)
{
    px__cnn_work *w = work;
    if (!w) return;
    void *f[] = {w->x,  w->c1,  w->p1,  w->c2,  w->p2, w->h,  w->logits, w->probs, w->col,
                 w->dh, w->dp2, w->dc2, w->dp1, w->dc1, w->a1, w->a2,    w->targets, w->losses};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        x->ops->free(x, f[i]);
    free(w);
}

static void px__cnn_work_free(void *work)
{
    px__cnn_xwork_free(px_exec_cpu(), work);
}

static void *px__cnn_xwork_create(const px_model *m, px_nn_exec *x, size_t B)
{
    const px__cnn *c = m->impl;
    px__cnn_work *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->B = B;
    w->x_exec = x;
    size_t s1 = B * c->c1 * c->H1 * c->W1, q1 = B * c->c1 * c->P1h * c->P1w;
    size_t s2 = B * c->c2 * c->H2 * c->W2, q2 = B * c->flat;
    size_t col1 = px_conv2d_col_size(c->C, c->H, c->W, PX__K, 2);
    size_t col2 = px_conv2d_col_size(c->c1, c->P1h, c->P1w, PX__K, 0);
#define PX__A(n, what) x->ops->alloc(x, (n), what)
    w->x = PX__A(B * c->C * c->H * c->W * sizeof(float), "cnn input");
    w->c1 = PX__A(s1 * sizeof(float), "cnn activations");
    w->p1 = PX__A(q1 * sizeof(float), "cnn activations");
    w->c2 = PX__A(s2 * sizeof(float), "cnn activations");
    w->p2 = PX__A(q2 * sizeof(float), "cnn activations");
    w->h = PX__A(B * c->h * sizeof(float), "cnn activations");
    w->logits = PX__A(B * c->k * sizeof(float), "cnn logits");
    w->probs = PX__A(B * c->k * sizeof(float), "cnn probabilities");
    w->a1 = PX__A(q1 * sizeof(uint32_t), "cnn pooling indices");
    w->a2 = PX__A(q2 * sizeof(uint32_t), "cnn pooling indices");
    w->col = PX__A((col1 > col2 ? col1 : col2) * sizeof(float), "cnn im2col scratch");
    w->targets = PX__A(B * sizeof(int32_t), "cnn targets");
    w->losses = PX__A(B * sizeof(double), "cnn losses");
    w->dh = PX__A(B * c->h * sizeof(float), "cnn gradients");
    w->dp2 = PX__A(q2 * sizeof(float), "cnn gradients");
    w->dc2 = PX__A(s2 * sizeof(float), "cnn gradients");
    w->dp1 = PX__A(q1 * sizeof(float), "cnn gradients");
    w->dc1 = PX__A(s1 * sizeof(float), "cnn gradients");
#undef PX__A
    if (!w->x || !w->c1 || !w->p1 || !w->c2 || !w->p2 || !w->h || !w->logits || !w->probs ||
        !w->a1 || !w->a2 || !w->col || !w->targets || !w->losses || !w->dh || !w->dp2 ||
        !w->dc2 || !w->dp1 || !w->dc1) {
        px__cnn_xwork_free(x, w);
        return NULL;
    }
    return w;
}

static void *px__cnn_work_create(const px_model *m, size_t B)
{
    return px__cnn_xwork_create(m, px_exec_cpu(), B);
}

static float *px__cnn_input(void *work)
{
    return ((px__cnn_work *)work)->x;
}

static px_status px__cnn_forward(const px__cnn *c, px__cnn_work *w, const float *p,
                                 const float *input, size_t B)
{
    px_nn_exec *x = w->x_exec;
    PX_X(x, conv2d_forward, w->c1, w->col, input, p + c->w1, p + c->b1, B, c->C, c->H, c->W, c->c1,
         PX__K, 2);
    PX_X(x, relu_forward, w->c1, w->c1, B * c->c1 * c->H1 * c->W1);
    PX_X(x, maxpool_forward, w->p1, w->a1, w->c1, B, c->c1, c->H1, c->W1);
    PX_X(x, conv2d_forward, w->c2, w->col, w->p1, p + c->w2, p + c->b2, B, c->c1, c->P1h, c->P1w,
         c->c2, PX__K, 0);
    PX_X(x, relu_forward, w->c2, w->c2, B * c->c2 * c->H2 * c->W2);
    PX_X(x, maxpool_forward, w->p2, w->a2, w->c2, B, c->c2, c->H2, c->W2);
    PX_X(x, linear_forward, w->h, w->p2, p + c->w3, p + c->b3, B, c->flat, c->h);
    PX_X(x, relu_forward, w->h, w->h, B * c->h);
    return x->ops->linear_forward(x, w->logits, w->h, p + c->w4, p + c->b4, B, c->h, c->k);
}

/* The gradient slots of layer l: NULL when it is frozen (its region is zeroed instead). */
static float *px__slot(const px__cnn *c, float *grad, const uint8_t *active, int l, int bias)
{
    if (active && !active[l]) return NULL;
    return grad + c->tensors[2 * l + bias].offset;
}

/* The pass of loss_grad on the work area's executor: input and targets in its memory. */
static px_status px__cnn_pass(const px__cnn *c, px__cnn_work *w, const float *p,
                              const float *input, const int32_t *targets, size_t B,
                              const uint8_t *active, const px_loss_terms *terms, float *grad,
                              double *loss)
{
    px_nn_exec *x = w->x_exec;
    PX_CHECK(px__cnn_forward(c, w, p, input, B));
    PX_X(x, ce_forward, w->probs, w->losses, w->logits, targets, B, c->k);
    float *dlogits = w->logits; /* the logits are spent */
    PX_X(x, ce_backward, dlogits, w->probs, targets, B, c->k);
    PX_X(x, ce_mean, w->losses, B, loss);
    if (terms && terms->margin_lambda != 0.0f)
        PX_X(x, margin_backward, dlogits, w->probs, B, c->k, terms->margin_lambda, loss);
    PX_X(x, zero, grad, c->n * sizeof(float));
    /* the backward pass stops below the lowest active layer */
    int lowest = 0;
    while (active && lowest < 4 && !active[lowest])
        lowest++;
    PX_X(x, zero, w->dh, B * c->h * sizeof(float));
    PX_X(x, linear_backward, lowest < 3 ? w->dh : NULL, px__slot(c, grad, active, 3, 0),
         px__slot(c, grad, active, 3, 1), dlogits, w->h, p + c->w4, B, c->h, c->k);
    if (lowest > 2) return PX_OK;
    PX_X(x, relu_mask, w->dh, w->h, B * c->h);
    size_t q2 = B * c->flat;
    PX_X(x, zero, w->dp2, q2 * sizeof(float));
    PX_X(x, linear_backward, lowest < 2 ? w->dp2 : NULL, px__slot(c, grad, active, 2, 0),
         px__slot(c, grad, active, 2, 1), w->dh, w->p2, p + c->w3, B, c->flat, c->h);
    if (lowest > 1) return PX_OK;
    size_t s2 = B * c->c2 * c->H2 * c->W2;
    PX_X(x, zero, w->dc2, s2 * sizeof(float));
    PX_X(x, maxpool_backward, w->dc2, w->dp2, w->a2, B, c->c2, c->H2, c->W2);
    PX_X(x, relu_mask, w->dc2, w->c2, s2);
    size_t q1 = B * c->c1 * c->P1h * c->P1w;
    PX_X(x, zero, w->dp1, q1 * sizeof(float));
    PX_X(x, conv2d_backward, lowest < 1 ? w->dp1 : NULL, px__slot(c, grad, active, 1, 0),
         px__slot(c, grad, active, 1, 1), w->col, w->dc2, w->p1, p + c->w2, B, c->c1, c->P1h,
         c->P1w, c->c2, PX__K, 0);
    if (lowest > 0) return PX_OK;
    size_t s1 = B * c->c1 * c->H1 * c->W1;
    PX_X(x, zero, w->dc1, s1 * sizeof(float));
    PX_X(x, maxpool_backward, w->dc1, w->dp1, w->a1, B, c->c1, c->H1, c->W1);
    PX_X(x, relu_mask, w->dc1, w->c1, s1);
    return x->ops->conv2d_backward(x, NULL, px__slot(c, grad, active, 0, 0),
                                   px__slot(c, grad, active, 0, 1), w->col, w->dc1, input,
                                   p + c->w1, B, c->C, c->H, c->W, c->c1, PX__K, 2);
}

static float px__cnn_loss_grad(const px_model *m, void *work, const float *p, const uint8_t *y,
                               size_t B, const uint8_t *active, const px_loss_terms *terms,
                               float *grad)
{
    px__cnn_work *w = work;
    for (size_t i = 0; i < B; i++)
        w->targets[i] = y[i];
    double loss = 0;
    px__cnn_pass(m->impl, w, p, w->x, w->targets, B, active, terms, grad, &loss); /* the CPU's */
    return (float)loss;                                                          /* never fails */
}

static px_status px__cnn_xloss_grad(const px_model *m, px_nn_exec *x, void *work, const float *p,
                                    const void *input, const int32_t *targets, size_t B,
                                    const uint8_t *active, const px_loss_terms *terms, float *grad,
                                    double *loss)
{
    px__cnn_work *w = work;
    if (w->x_exec != x || B > w->B)
        return px_error(PX_EINVAL, "cnn: a work area used on another executor or batch");
    return px__cnn_pass(m->impl, w, p, input, targets, B, active, terms, grad, loss);
}

static void px__cnn_evaluate(const px_model *m, void *work, const float *p, const uint8_t *y,
                             size_t B, double *loss_sum, size_t *correct)
{
    const px__cnn *c = m->impl;
    px__cnn_work *w = work;
    px__cnn_forward(c, w, p, w->x, B);
    for (size_t i = 0; i < B; i++) {
        const float *z = w->logits + i * c->k;
        size_t best = 0;
        for (size_t j = 1; j < c->k; j++)
            if (z[j] > z[best]) best = j;
        *correct += best == y[i];
        w->targets[i] = y[i];
    }
    *loss_sum += px_crossentropy_forward(NULL, w->logits, w->targets, B, c->k) * (double)B;
}

static double px__cnn_flops(const px_model *m)
{
    const px__cnn *c = m->impl;
    double conv1 = (double)c->c1 * c->H1 * c->W1 * c->C * PX__K * PX__K;
    double conv2 = (double)c->c2 * c->H2 * c->W2 * c->c1 * PX__K * PX__K;
    double fc = (double)c->flat * c->h + (double)c->h * c->k;
    return 3 * (conv1 + conv2 + fc); /* forward, and twice that backward */
}

static void px__cnn_destroy(px_model *m)
{
    free(m->impl);
    free(m);
}

static const px_model_ops px__cnn_ops = {
    .init = px__cnn_init,
    .work_create = px__cnn_work_create,
    .work_free = px__cnn_work_free,
    .input = px__cnn_input,
    .tokens = NULL,
    .loss_grad = px__cnn_loss_grad,
    .evaluate = px__cnn_evaluate,
    .xwork_create = px__cnn_xwork_create,
    .xwork_free = px__cnn_xwork_free,
    .xloss_grad = px__cnn_xloss_grad,
    .flops_per_sample = px__cnn_flops,
    .destroy = px__cnn_destroy,
};

px_status px_cnn_check(const px_model_spec *spec)
{
    return px__cnn_check(spec);
}

px_status px_cnn_model_create(px_model **out, const px_model_spec *s)
{
    *out = NULL;
    PX_CHECK(px__cnn_check(s));
    px_model *m = calloc(1, sizeof *m);
    px__cnn *c = calloc(1, sizeof *c);
    if (!m || !c) {
        free(m);
        free(c);
        return px_error(PX_ENOMEM, "cnn: cannot allocate");
    }
    c->C = s->channels;
    c->H = s->rows;
    c->W = s->cols;
    c->c1 = s->n_conv ? s->conv[0] : 6;
    c->c2 = s->n_conv ? s->conv[1] : 16;
    c->h = s->n_hidden ? s->hidden[0] : 120;
    c->k = s->classes;
    c->H1 = c->H;
    c->W1 = c->W;
    c->P1h = c->H1 / 2;
    c->P1w = c->W1 / 2;
    c->H2 = c->P1h - PX__K + 1;
    c->W2 = c->P1w - PX__K + 1;
    c->P2h = c->H2 / 2;
    c->P2w = c->W2 / 2;
    c->flat = c->c2 * c->P2h * c->P2w;
    const size_t sizes[8] = {c->c1 * c->C * PX__K * PX__K,
                             c->c1,
                             c->c2 * c->c1 * PX__K * PX__K,
                             c->c2,
                             c->h * c->flat,
                             c->h,
                             c->k * c->h,
                             c->k};
    size_t *offs[8] = {&c->w1, &c->b1, &c->w2, &c->b2, &c->w3, &c->b3, &c->w4, &c->b4};
    size_t off = 0;
    for (int t = 0; t < 8; t++) {
        *offs[t] = off;
        c->tensors[t] = (px_layer){off, sizes[t], px__cnn_names[t]};
        off += sizes[t];
    }
    c->n = off;
    static const char *gnames[4] = {"conv1", "conv2", "fc1", "fc2"};
    for (int l = 0; l < 4; l++)
        c->groups[l] =
            (px_layer_group){gnames[l], c->tensors[2 * l].offset, sizes[2 * l] + sizes[2 * l + 1],
                             l == 0   ? PX_GROUP_INPUT
                             : l == 3 ? PX_GROUP_HEAD
                                      : PX_GROUP_MIDDLE};
    m->ops = &px__cnn_ops;
    m->impl = c;
    m->n_params = c->n;
    m->input_values = s->input_values;
    m->classes = s->classes;
    m->label_values = 1;
    m->tensors = (px_layer_table){8, c->tensors};
    m->n_groups = 4;
    m->groups = c->groups;
    *out = m;
    return PX_OK;
}
