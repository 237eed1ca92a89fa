/* mlp.c - MLP forward/backward with cblas_sgemm, softmax cross-entropy (see mlp.h). */
#include "mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "runtime/nn/exec.h"
#include "runtime/nn/layers.h"

px_status px_mlp_shape(px_mlp *m, size_t inputs, const uint32_t *hidden, size_t n_hidden,
                       size_t classes)
{
    memset(m, 0, sizeof *m);
    if (n_hidden > PX_MLP_MAX_HIDDEN)
        return px_error(PX_EINVAL, "mlp: %zu hidden layers; at most %d", n_hidden,
                        PX_MLP_MAX_HIDDEN);
    m->n_linear = n_hidden + 1;
    m->dims[0] = inputs;
    for (size_t i = 0; i < n_hidden; i++)
        m->dims[i + 1] = hidden[i];
    m->dims[m->n_linear] = classes;
    size_t off = 0;
    for (size_t l = 0; l < m->n_linear; l++) {
        size_t in = m->dims[l], out = m->dims[l + 1];
        m->w_off[l] = off;
        off += in * out;
        m->b_off[l] = off;
        off += out;
        snprintf(m->names[2 * l], sizeof m->names[0], "fc%zu.weight", l + 1);
        snprintf(m->names[2 * l + 1], sizeof m->names[0], "fc%zu.bias", l + 1);
        m->tensors[2 * l] = (px_layer){m->w_off[l], in * out, m->names[2 * l]};
        m->tensors[2 * l + 1] = (px_layer){m->b_off[l], out, m->names[2 * l + 1]};
        snprintf(m->group_names[l], sizeof m->group_names[0], "fc%zu", l + 1);
        px_group_role role = l + 1 == n_hidden + 1 ? PX_GROUP_HEAD
                             : l == 0              ? PX_GROUP_INPUT
                                                   : PX_GROUP_MIDDLE;
        m->groups[l] = (px_layer_group){m->group_names[l], m->w_off[l], in * out + out, role};
    }
    m->n_params = off;
    m->table.count = 2 * m->n_linear;
    m->table.layers = m->tensors;
    return PX_OK;
}

void px_mlp_init(const px_mlp *m, float *params, uint64_t seed)
{
    for (size_t l = 0; l < m->n_linear; l++) {
        px_rng r;
        px_rng_init(&r, seed, PX_STREAM_INIT, l, 0);
        size_t in = m->dims[l], out = m->dims[l + 1];
        double bound = 1.0 / sqrt((double)in);
        float *w = params + m->w_off[l], *b = params + m->b_off[l];
        for (size_t i = 0; i < in * out; i++)
            w[i] = (float)((2.0 * px_rng_uniform(&r) - 1.0) * bound);
        for (size_t i = 0; i < out; i++)
            b[i] = (float)((2.0 * px_rng_uniform(&r) - 1.0) * bound);
    }
}

px_status px_mlp_work_create(px_mlp_work *w, const px_mlp *m, size_t batch_max)
{
    memset(w, 0, sizeof *w);
    w->batch_max = batch_max;
    size_t widest = 0;
    for (size_t l = 0; l <= m->n_linear; l++) {
        if (m->dims[l] > widest) widest = m->dims[l];
        w->act[l] = px_alloc(batch_max * m->dims[l] * sizeof(float), "mlp activations");
        if (!w->act[l]) goto fail;
    }
    for (int k = 0; k < 2; k++) {
        w->delta[k] = px_alloc(batch_max * widest * sizeof(float), "mlp backward scratch");
        if (!w->delta[k]) goto fail;
    }
    return PX_OK;
fail:
    px_mlp_work_free(w);
    return PX_ENOMEM;
}

void px_mlp_work_free(px_mlp_work *w)
{
    for (size_t l = 0; l <= PX_MLP_MAX_LINEAR; l++)
        px_free(w->act[l]);
    px_free(w->delta[0]);
    px_free(w->delta[1]);
    memset(w, 0, sizeof *w);
}

/* act[l+1] = act[l] W_l^T + b_l, then ReLU except after the last layer */
static void px__forward(const px_mlp *m, px_mlp_work *w, const float *params, size_t batch)
{
    for (size_t l = 0; l < m->n_linear; l++) {
        size_t in = m->dims[l], out = m->dims[l + 1];
        const float *W = params + m->w_off[l], *b = params + m->b_off[l];
        float *z = w->act[l + 1];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)out, (int)in, 1.0f,
                    w->act[l], (int)in, W, (int)in, 0.0f, z, (int)out);
        int relu = l + 1 < m->n_linear;
        for (size_t i = 0; i < batch; i++) {
            float *row = z + i * out;
            if (relu) {
                for (size_t j = 0; j < out; j++) {
                    float v = row[j] + b[j];
                    row[j] = v > 0.0f ? v : 0.0f;
                }
            } else {
                for (size_t j = 0; j < out; j++)
                    row[j] += b[j];
            }
        }
    }
}

/* log-sum-exp of a row, in double */
static double px__lse(const float *z, size_t c)
{
    float mx = z[0];
    for (size_t j = 1; j < c; j++)
        if (z[j] > mx) mx = z[j];
    double s = 0;
    for (size_t j = 0; j < c; j++)
        s += exp((double)(z[j] - mx));
    return (double)mx + log(s);
}

float px_mlp_loss_grad(const px_mlp *m, px_mlp_work *w, const float *params, const uint8_t *y,
                       size_t batch, float *grad)
{
    return px_mlp_loss_grad_active(m, w, params, y, batch, NULL, 0.0f, grad);
}

float px_mlp_loss_grad_active(const px_mlp *m, px_mlp_work *w, const float *params,
                              const uint8_t *y, size_t batch, const uint8_t *active, float margin,
                              float *grad)
{
    px__forward(m, w, params, batch);
    size_t L = m->n_linear, C = m->dims[L];
    const float *logits = w->act[L];
    float *dz = w->delta[0];
    double loss = 0;
    const double inv_b = 1.0 / (double)batch;
    /* d(mean CE)/dz = (softmax(z) - onehot(y)) / B */
    for (size_t i = 0; i < batch; i++) {
        const float *z = logits + i * C;
        double lse = px__lse(z, C);
        loss += lse - (double)z[y[i]];
        for (size_t j = 0; j < C; j++) {
            double p = exp((double)z[j] - lse);
            dz[i * C + j] = (float)((p - (j == y[i] ? 1.0 : 0.0)) * inv_b);
        }
    }
    double extra = 0;
    if (margin != 0.0f) {
        /* FedLD's margin control on the batch's probabilities (the scratch of the backward
         * pass holds them until it starts) */
        float *probs = w->delta[1];
        for (size_t i = 0; i < batch; i++) {
            const float *z = logits + i * C;
            double lse = px__lse(z, C);
            for (size_t j = 0; j < C; j++)
                probs[i * C + j] = (float)exp((double)z[j] - lse);
        }
        extra = px_margin_backward(dz, probs, batch, C, margin);
    }
    /* the backward pass goes down to the lowest active layer, no further */
    size_t lowest = 0;
    if (active) {
        lowest = L;
        for (size_t l = 0; l < L && lowest == L; l++)
            if (active[l]) lowest = l;
        for (size_t l = 0; l < lowest; l++)
            memset(grad + m->w_off[l], 0, m->groups[l].size * sizeof(float));
    }
    int cur = 0;
    for (size_t l = L; l-- > lowest;) {
        size_t in = m->dims[l], out = m->dims[l + 1];
        const float *d = w->delta[cur];
        float *db = grad + m->b_off[l];
        if (active && !active[l]) {
            memset(grad + m->w_off[l], 0, m->groups[l].size * sizeof(float));
        } else {
            /* dW = dZ^T A (out x in) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)batch,
                        1.0f, d, (int)out, w->act[l], (int)in, 0.0f, grad + m->w_off[l], (int)in);
            memcpy(db, d, out * sizeof(float));
            for (size_t i = 1; i < batch; i++)
                for (size_t j = 0; j < out; j++)
                    db[j] += d[i * out + j];
        }
        if (l == lowest) break;
        /* dA = dZ W (batch x in), then through the ReLU of layer l-1: zero where it was off */
        float *da = w->delta[1 - cur];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)batch, (int)in, (int)out, 1.0f,
                    d, (int)out, params + m->w_off[l], (int)in, 0.0f, da, (int)in);
        const float *a = w->act[l];
        for (size_t k = 0; k < batch * in; k++)
            if (!(a[k] > 0.0f)) da[k] = 0.0f;
        cur = 1 - cur;
    }
    return (float)(loss * inv_b + extra);
}

void px_mlp_evaluate(const px_mlp *m, px_mlp_work *w, const float *params, const uint8_t *y,
                     size_t batch, double *loss_sum, size_t *correct)
{
    px__forward(m, w, params, batch);
    size_t C = m->dims[m->n_linear];
    const float *logits = w->act[m->n_linear];
    for (size_t i = 0; i < batch; i++) {
        const float *z = logits + i * C;
        size_t best = 0;
        for (size_t j = 1; j < C; j++)
            if (z[j] > z[best]) best = j;
        *correct += (best == y[i]);
        *loss_sum += px__lse(z, C) - (double)z[y[i]];
    }
}

double px_mlp_step_flops(const px_mlp *m, size_t batch)
{
    double f = 0;
    for (size_t l = 0; l < m->n_linear; l++) {
        double mac = (double)batch * (double)m->dims[l] * (double)m->dims[l + 1];
        f += 2 * mac /* forward */ + 2 * mac /* dW */ + (l > 0 ? 2 * mac : 0) /* dA */;
    }
    return f;
}

/* ---- the model interface ---- */

px_status px_mlp_check(const px_model_spec *spec)
{
    if (spec->tokens || spec->label_values > 1)
        return px_error(PX_EINVAL, "config: model.kind = MLP classifies values; this dataset "
                                   "gives token windows (use model.kind = GPT)");
    if (spec->n_hidden > PX_MLP_MAX_HIDDEN)
        return px_error(PX_EINVAL, "config: model.hidden has %zu layers; at most %d are allowed",
                        spec->n_hidden, PX_MLP_MAX_HIDDEN);
    for (size_t i = 0; i < spec->n_hidden; i++)
        if (spec->hidden[i] < 1 || spec->hidden[i] > PX_MLP_MAX_WIDTH)
            return px_error(PX_EINVAL, "config: model.hidden[%zu] = %u must be in [1, %u]", i,
                            spec->hidden[i], PX_MLP_MAX_WIDTH);
    return PX_OK;
}

double px_mlp_count(const px_model_spec *spec)
{
    /* as px_mlp_shape lays them out: per linear layer in x out weights and out biases; the
     * data's shape unknown (config time) counts as 1 input value and 1 class */
    double prev = spec->input_values ? (double)spec->input_values : 1.0, n = 0;
    for (size_t i = 0; i < spec->n_hidden; i++) {
        n += prev * spec->hidden[i] + spec->hidden[i];
        prev = spec->hidden[i];
    }
    double k = spec->classes ? (double)spec->classes : 1.0;
    return n + prev * k + k;
}

static void px__mlp_init(const px_model *m, float *params, uint64_t seed)
{
    px_mlp_init(m->impl, params, seed);
}

static void *px__mlp_work_create(const px_model *m, size_t batch_max)
{
    px_mlp_work *w = calloc(1, sizeof *w);
    if (!w) {
        px_error(PX_ENOMEM, "mlp: cannot allocate a work area");
        return NULL;
    }
    if (px_mlp_work_create(w, m->impl, batch_max) < 0) {
        free(w);
        return NULL;
    }
    return w;
}

static void px__mlp_work_free(void *work)
{
    if (!work) return;
    px_mlp_work_free(work);
    free(work);
}

static float *px__mlp_input(void *work)
{
    return px_mlp_input(work);
}

static float px__mlp_loss_grad(const px_model *m, void *work, const float *params,
                               const uint8_t *y, size_t batch, const uint8_t *active,
                               const px_loss_terms *terms, float *grad)
{
    return px_mlp_loss_grad_active(m->impl, work, params, y, batch, active,
                                   terms ? terms->margin_lambda : 0.0f, grad);
}

static void px__mlp_evaluate(const px_model *m, void *work, const float *params, const uint8_t *y,
                             size_t batch, double *loss_sum, size_t *correct)
{
    px_mlp_evaluate(m->impl, work, params, y, batch, loss_sum, correct);
}

/* ---- the pass on an executor (exec.h), for the GPU ----
 * The CPU's own pass above fuses the bias and the ReLU into its loops and takes the loss in
 * double from the logits; this one composes the layers of exec.h (linear, ReLU, softmax
 * cross-entropy), so that it runs on any executor. On the CPU executor the two agree to
 * rounding (tests/test_exec_models.c), not bit for bit: the CPU trainer keeps its own pass. */

typedef struct {
    px_nn_exec *x;
    size_t B;
    float *act[PX_MLP_MAX_LINEAR + 1]; /* act[l] = output of layer l (act[0] unused: the input) */
    float *delta[2];                   /* backward scratch, B x the widest layer */
    float *probs;
    double *losses;
} px__mlp_xwork;

static void px__mlp_xwork_free(px_nn_exec *x, void *work)
{
    px__mlp_xwork *w = work;
    if (!w) return;
    for (size_t l = 0; l <= PX_MLP_MAX_LINEAR; l++)
        x->ops->free(x, w->act[l]);
    x->ops->free(x, w->delta[0]);
    x->ops->free(x, w->delta[1]);
    x->ops->free(x, w->probs);
    x->ops->free(x, w->losses);
    free(w);
}

static void *px__mlp_xwork_create(const px_model *m, px_nn_exec *x, size_t B)
{
    const px_mlp *mlp = m->impl;
    px__mlp_xwork *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->x = x;
    w->B = B;
    size_t widest = 0, L = mlp->n_linear;
    int ok = 1;
    for (size_t l = 0; l <= L; l++) {
        widest = mlp->dims[l] > widest ? mlp->dims[l] : widest;
        if (l == 0) continue;
        w->act[l] = x->ops->alloc(x, B * mlp->dims[l] * sizeof(float), "mlp activations");
        ok &= w->act[l] != NULL;
    }
    for (int k = 0; k < 2; k++) {
        w->delta[k] = x->ops->alloc(x, B * widest * sizeof(float), "mlp backward scratch");
        ok &= w->delta[k] != NULL;
    }
    w->probs = x->ops->alloc(x, B * mlp->dims[L] * sizeof(float), "mlp probabilities");
    w->losses = x->ops->alloc(x, B * sizeof(double), "mlp losses");
    if (!ok || !w->probs || !w->losses) {
        px__mlp_xwork_free(x, w);
        return NULL;
    }
    return w;
}

static px_status px__mlp_xloss_grad(const px_model *model, px_nn_exec *x, void *work,
                                    const float *params, const void *input,
                                    const int32_t *targets, size_t B, const uint8_t *active,
                                    const px_loss_terms *terms, float *grad, double *loss)
{
    const px_mlp *m = model->impl;
    px__mlp_xwork *w = work;
    if (w->x != x || B > w->B)
        return px_error(PX_EINVAL, "mlp: a work area used on another executor or batch");
    size_t L = m->n_linear, C = m->dims[L];
    const float *a = input;
    for (size_t l = 0; l < L; l++) {
        size_t in = m->dims[l], out = m->dims[l + 1];
        PX_X(x, linear_forward, w->act[l + 1], a, params + m->w_off[l], params + m->b_off[l], B,
             in, out);
        if (l + 1 < L) PX_X(x, relu_forward, w->act[l + 1], w->act[l + 1], B * out);
        a = w->act[l + 1];
    }
    PX_X(x, ce_forward, w->probs, w->losses, w->act[L], targets, B, C);
    PX_X(x, ce_backward, w->delta[0], w->probs, targets, B, C);
    PX_X(x, ce_mean, w->losses, B, loss);
    if (terms && terms->margin_lambda != 0.0f)
        PX_X(x, margin_backward, w->delta[0], w->probs, B, C, terms->margin_lambda, loss);
    PX_X(x, zero, grad, m->n_params * sizeof(float));
    size_t lowest = 0; /* the backward pass goes down to the lowest active layer, no further */
    while (active && lowest < L && !active[lowest])
        lowest++;
    int cur = 0;
    for (size_t l = L; l-- > lowest;) {
        size_t in = m->dims[l], out = m->dims[l + 1];
        int on = !active || active[l];
        float *dinp = l > lowest ? w->delta[1 - cur] : NULL;
        if (dinp) PX_X(x, zero, dinp, B * in * sizeof(float));
        PX_X(x, linear_backward, dinp, on ? grad + m->w_off[l] : NULL,
             on ? grad + m->b_off[l] : NULL, w->delta[cur], l ? w->act[l] : (const float *)input,
             params + m->w_off[l], B, in, out);
        if (!dinp) break;
        PX_X(x, relu_mask, dinp, w->act[l], B * in); /* through the ReLU of layer l - 1 */
        cur = 1 - cur;
    }
    return PX_OK;
}

static double px__mlp_flops(const px_model *m)
{
    return px_mlp_step_flops(m->impl, 1);
}

static void px__mlp_destroy(px_model *m)
{
    free(m->impl);
    free(m);
}

static const px_model_ops px__mlp_ops = {
    .init = px__mlp_init,
    .work_create = px__mlp_work_create,
    .work_free = px__mlp_work_free,
    .input = px__mlp_input,
    .tokens = NULL,
    .loss_grad = px__mlp_loss_grad,
    .evaluate = px__mlp_evaluate,
    .xwork_create = px__mlp_xwork_create,
    .xwork_free = px__mlp_xwork_free,
    .xloss_grad = px__mlp_xloss_grad,
    .flops_per_sample = px__mlp_flops,
    .destroy = px__mlp_destroy,
};

px_status px_mlp_model_create(px_model **out, const px_model_spec *spec)
{
    *out = NULL;
    PX_CHECK(px_mlp_check(spec));
    px_model *m = calloc(1, sizeof *m);
    px_mlp *mlp = calloc(1, sizeof *mlp);
    if (!m || !mlp) {
        free(m);
        free(mlp);
        return px_error(PX_ENOMEM, "mlp: cannot allocate");
    }
    px_status st =
        px_mlp_shape(mlp, spec->input_values, spec->hidden, spec->n_hidden, spec->classes);
    if (st < 0) {
        free(m);
        free(mlp);
        return st;
    }
    m->ops = &px__mlp_ops;
    m->impl = mlp;
    m->n_params = mlp->n_params;
    m->input_values = spec->input_values;
    m->classes = spec->classes;
    m->label_values = 1;
    m->tensors = mlp->table;
    m->n_groups = mlp->n_linear;
    m->groups = mlp->groups;
    *out = m;
    return PX_OK;
}
