/* gpt.c - a character-level transformer behind the model interface (model.h), in the manner of
 * llm.c's train_gpt2.c (GPT-2's layout, pre-norm blocks):
 *
 *   x (B,T) tokens -> wte[x] + wpe[t]                                      (B,T,C) the stream
 *   L blocks:  stream += proj(attention(qkv(ln1(stream))))
 *              stream += fcproj(gelu(fc(ln2(stream))))                     fc: C -> 4C -> C
 *   -> lnf -> head (C -> V, no bias) -> softmax cross-entropy with the next tokens
 *
 * Layer groups: "embed" (wte, wpe) = the input group; "block0".."block{L-1}" = the middle groups
 * LISA samples from; "head" (lnf, the head) = the head group. Each group's tensors are
 * contiguous, in that order. Initialised as GPT-2: weights normal(0, 0.02), the two projections
 * that write into the stream normal(0, 0.02 / sqrt(2L)), biases 0, layer norms 1 and 0; tensor
 * t draws from the stream (seed, PX_STREAM_INIT, t).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "runtime/nn/layers.h"
#include "runtime/nn/model.h"

#define PX__GPT_MAX_BLOCKS 64

/* Offsets of one block's tensors. */
typedef struct {
    size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
} px__block;

typedef struct {
    size_t V, T, C, NH, L;
    size_t wte, wpe, lnfw, lnfb, headw, n;
    px__block blk[PX__GPT_MAX_BLOCKS];
    px_layer tensors[3 + 12 * PX__GPT_MAX_BLOCKS + 3];
    char names[3 + 12 * PX__GPT_MAX_BLOCKS + 3][24];
    px_layer_group groups[PX__GPT_MAX_BLOCKS + 2];
    char gnames[PX__GPT_MAX_BLOCKS + 2][16];
} px__gpt;

/* Activations of one block for a batch of B x T positions. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *preatt, *att, *attproj, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fchg, *fcproj, *res3;
} px__acts;

/* A work area in an executor's memory (exec.h): the host's for loss_grad, a GPU's for
 * xloss_grad. */
typedef struct {
    size_t B;
    px_nn_exec *x;
    int32_t *tokens, *targets;
    double *losses; /* the rows' losses (B x T), for the executor's ce_mean */
    float *encoded;
    px__acts a[PX__GPT_MAX_BLOCKS];
    float *lnf, *lnf_mean, *lnf_rstd, *logits, *probs;
    /* backward scratch, one block's worth, reused from the top block down */
    float *dres, *dlnf, *dfchg, *dfch, *dln2, *datty, *dqkv, *dln1, *dpreatt, *datt;
    float *pool; /* every buffer above is a slice of this one allocation */
} px__gpt_work;

static px_status px__gpt_check(const px_model_spec *s)
{
    if (s->blocks < 1 || s->blocks > PX__GPT_MAX_BLOCKS)
        return px_error(PX_EINVAL, "config: model.blocks = %zu must be in [1, %d]", s->blocks,
                        PX__GPT_MAX_BLOCKS);
    if (s->heads < 1 || s->width < 1 || s->width > 8192 || s->width % s->heads)
        return px_error(PX_EINVAL,
                        "config: model.width = %zu must be in [1, 8192] and a multiple of "
                        "model.heads = %zu",
                        s->width, s->heads);
    if (s->context < 1 || s->context > 4096)
        return px_error(PX_EINVAL, "config: model.context = %zu must be in [1, 4096]", s->context);
    if (s->input_values == 0) return PX_OK; /* the config alone: no data shape yet */
    if (!s->tokens || s->label_values != s->input_values || s->input_values != s->context)
        return px_error(PX_EINVAL,
                        "config: model.kind = GPT reads windows of model.context = %zu tokens; "
                        "this dataset gives %s of %zu values (use data.dataset = FORTUNES)",
                        s->context, s->tokens ? "token windows" : "images", s->input_values);
    return PX_OK;
}

/* ---- shape ---- */

static size_t px__tensor(px__gpt *g, size_t *count, size_t *off, size_t size, const char *name)
{
    size_t at = *off;
    snprintf(g->names[*count], sizeof g->names[0], "%s", name);
    g->tensors[*count] = (px_layer){at, size, g->names[*count]};
    (*count)++;
    *off += size;
    return at;
}

static void px__gpt_shape(px__gpt *g)
{
    size_t V = g->V, T = g->T, C = g->C, count = 0, off = 0;
    g->wte = px__tensor(g, &count, &off, V * C, "wte");
    g->wpe = px__tensor(g, &count, &off, T * C, "wpe");
    g->groups[0] = (px_layer_group){"embed", 0, off, PX_GROUP_INPUT};
    for (size_t l = 0; l < g->L; l++) {
        px__block *b = &g->blk[l];
        size_t start = off;
        char n[24];
#define PX__T(field, size, label)                                                                  \
    snprintf(n, sizeof n, "h%zu." label, l);                                                       \
    b->field = px__tensor(g, &count, &off, size, n)
        PX__T(ln1w, C, "ln1.weight");
        PX__T(ln1b, C, "ln1.bias");
        PX__T(qkvw, 3 * C * C, "attn.qkv.weight");
        PX__T(qkvb, 3 * C, "attn.qkv.bias");
        PX__T(projw, C * C, "attn.proj.weight");
        PX__T(projb, C, "attn.proj.bias");
        PX__T(ln2w, C, "ln2.weight");
        PX__T(ln2b, C, "ln2.bias");
        PX__T(fcw, 4 * C * C, "mlp.fc.weight");
        PX__T(fcb, 4 * C, "mlp.fc.bias");
        PX__T(fcprojw, 4 * C * C, "mlp.proj.weight");
        PX__T(fcprojb, C, "mlp.proj.bias");
#undef PX__T
        snprintf(g->gnames[l + 1], sizeof g->gnames[0], "block%zu", l);
        g->groups[l + 1] = (px_layer_group){g->gnames[l + 1], start, off - start, PX_GROUP_MIDDLE};
    }
    size_t start = off;
    g->lnfw = px__tensor(g, &count, &off, C, "lnf.weight");
    g->lnfb = px__tensor(g, &count, &off, C, "lnf.bias");
    g->headw = px__tensor(g, &count, &off, V * C, "head.weight");
    g->groups[g->L + 1] = (px_layer_group){"head", start, off - start, PX_GROUP_HEAD};
    g->n = off;
}

/* Parameters of the transformer a spec describes (px_model_kind.count), as px__gpt_shape lays
 * them out: token and position embeddings, 12 C^2 + 13 C per block, the final norm and the
 * head; the vocabulary unknown (config time) counts as 1. */
double px_gpt_count(const px_model_spec *s)
{
    double V = s->classes ? (double)s->classes : 1.0, T = (double)s->context;
    double C = (double)s->width, L = (double)s->blocks;
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + V * C;
}

static void px__gpt_init(const px_model *m, float *p, uint64_t seed)
{
    const px__gpt *g = m->impl;
    size_t count = 2 + 12 * g->L + 3; /* wte, wpe, 12 per block, lnf (2), head */
    double proj_std = 0.02 / sqrt(2.0 * (double)g->L);
    for (size_t t = 0; t < count; t++) {
        const px_layer *tl = &g->tensors[t];
        const char *name = tl->name;
        float *w = p + tl->offset;
        size_t len = strlen(name);
        int is_bias = len > 5 && !strcmp(name + len - 5, ".bias");
        int is_ln = strstr(name, "ln") != NULL;
        if (is_bias) {
            memset(w, 0, tl->size * sizeof(float));
        } else if (is_ln) {
            for (size_t i = 0; i < tl->size; i++)
                w[i] = 1.0f;
        } else {
            double std = strstr(name, "proj.weight") ? proj_std : 0.02;
            px_rng r;
            px_rng_init(&r, seed, PX_STREAM_INIT, t, 0);
            for (size_t i = 0; i < tl->size; i++)
                w[i] = (float)(std * px_rng_normal(&r));
        }
    }
}

/* ---- work areas ---- */

static void px__gpt_xwork_free(px_nn_exec *x, void *work)
{
    px__gpt_work *w = work;
    if (!w) return;
    x->ops->free(x, w->pool);
    x->ops->free(x, w->tokens);
    x->ops->free(x, w->targets);
    x->ops->free(x, w->losses);
    free(w);
}

static void px__gpt_work_free(void *work)
{
    px__gpt_xwork_free(px_exec_cpu(), work);
}

/* Carves `n` floats out of the pool (or counts them when base is NULL). */
static float *px__carve(float *base, size_t *at, size_t n)
{
    float *p = base ? base + *at : NULL;
    *at += (n + 15) & ~(size_t)15; /* 64-byte aligned slices */
    return p;
}

static size_t px__gpt_layout(const px__gpt *g, px__gpt_work *w, float *base)
{
    size_t B = w->B, T = g->T, C = g->C, V = g->V, NH = g->NH, BT = B * T, at = 0;
    w->encoded = px__carve(base, &at, BT * C);
    for (size_t l = 0; l < g->L; l++) {
        px__acts *a = &w->a[l];
        a->ln1 = px__carve(base, &at, BT * C);
        a->ln1_mean = px__carve(base, &at, BT);
        a->ln1_rstd = px__carve(base, &at, BT);
        a->qkv = px__carve(base, &at, BT * 3 * C);
        a->atty = px__carve(base, &at, BT * C);
        if (px_exec_wants_preatt(w->x)) a->preatt = px__carve(base, &at, B * NH * T * T);
        a->att = px__carve(base, &at, B * NH * T * T);
        a->attproj = px__carve(base, &at, BT * C);
        a->res2 = px__carve(base, &at, BT * C);
        a->ln2 = px__carve(base, &at, BT * C);
        a->ln2_mean = px__carve(base, &at, BT);
        a->ln2_rstd = px__carve(base, &at, BT);
        a->fch = px__carve(base, &at, BT * 4 * C);
        a->fchg = px__carve(base, &at, BT * 4 * C);
        a->fcproj = px__carve(base, &at, BT * C);
        a->res3 = px__carve(base, &at, BT * C);
    }
    w->lnf = px__carve(base, &at, BT * C);
    w->lnf_mean = px__carve(base, &at, BT);
    w->lnf_rstd = px__carve(base, &at, BT);
    w->logits = px__carve(base, &at, BT * V);
    w->probs = px__carve(base, &at, BT * V);
    w->dres = px__carve(base, &at, BT * C);
    w->dlnf = px__carve(base, &at, BT * C);
    w->dfchg = px__carve(base, &at, BT * 4 * C);
    w->dfch = px__carve(base, &at, BT * 4 * C);
    w->dln2 = px__carve(base, &at, BT * C);
    w->datty = px__carve(base, &at, BT * C);
    w->dqkv = px__carve(base, &at, BT * 3 * C);
    w->dln1 = px__carve(base, &at, BT * C);
    w->dpreatt = px__carve(base, &at, px_exec_att_scratch(w->x, T, NH));
    w->datt = px__carve(base, &at, px_exec_att_scratch(w->x, T, NH));
    return at;
}

static void *px__gpt_xwork_create(const px_model *m, px_nn_exec *x, size_t B)
{
    const px__gpt *g = m->impl;
    px__gpt_work *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->B = B;
    w->x = x;
    size_t floats = px__gpt_layout(g, w, NULL);
    w->pool = x->ops->alloc(x, floats * sizeof(float), "gpt activations");
    w->tokens = x->ops->alloc(x, B * g->T * sizeof(int32_t), "gpt tokens");
    w->targets = x->ops->alloc(x, B * g->T * sizeof(int32_t), "gpt targets");
    w->losses = x->ops->alloc(x, B * g->T * sizeof(double), "gpt losses");
    if (!w->pool || !w->tokens || !w->targets || !w->losses) {
        px__gpt_xwork_free(x, w);
        return NULL;
    }
    px__gpt_layout(g, w, w->pool);
    return w;
}

static void *px__gpt_work_create(const px_model *m, size_t B)
{
    return px__gpt_xwork_create(m, px_exec_cpu(), B);
}

static int32_t *px__gpt_tokens(void *work)
{
    return ((px__gpt_work *)work)->tokens;
}

/* ---- forward and backward ---- */

/* Forward over B windows of T tokens (T <= the context): the logits. */
static px_status px__gpt_forward(const px__gpt *g, px__gpt_work *w, const float *p,
                                 const int32_t *tokens, size_t B, size_t T)
{
    px_nn_exec *x = w->x;
    size_t C = g->C, BT = B * T;
    PX_X(x, embedding_forward, w->encoded, tokens, p + g->wte, p + g->wpe, B, T, C);
    const float *stream = w->encoded;
    for (size_t l = 0; l < g->L; l++) {
        const px__block *b = &g->blk[l];
        px__acts *a = &w->a[l];
        PX_X(x, layernorm_forward, a->ln1, a->ln1_mean, a->ln1_rstd, stream, p + b->ln1w,
             p + b->ln1b, BT, C);
        PX_X(x, linear_forward, a->qkv, a->ln1, p + b->qkvw, p + b->qkvb, BT, C, 3 * C);
        PX_X(x, attention_forward, a->atty, a->preatt, a->att, a->qkv, B, T, C, g->NH);
        PX_X(x, linear_forward, a->attproj, a->atty, p + b->projw, p + b->projb, BT, C, C);
        PX_X(x, residual_forward, a->res2, stream, a->attproj, BT * C);
        PX_X(x, layernorm_forward, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, p + b->ln2w,
             p + b->ln2b, BT, C);
        PX_X(x, linear_forward, a->fch, a->ln2, p + b->fcw, p + b->fcb, BT, C, 4 * C);
        PX_X(x, gelu_forward, a->fchg, a->fch, BT * 4 * C);
        PX_X(x, linear_forward, a->fcproj, a->fchg, p + b->fcprojw, p + b->fcprojb, BT, 4 * C,
             C);
        PX_X(x, residual_forward, a->res3, a->res2, a->fcproj, BT * C);
        stream = a->res3;
    }
    PX_X(x, layernorm_forward, w->lnf, w->lnf_mean, w->lnf_rstd, stream, p + g->lnfw,
         p + g->lnfb, BT, C);
    return x->ops->linear_forward(x, w->logits, w->lnf, p + g->headw, NULL, BT, C, g->V);
}

/* A gradient slot: NULL when group `group` is frozen (its region stays zero). */
#define PX__SLOT(field) (on ? grad + (field) : NULL)

static px_status px__block_backward(const px__gpt *g, px__gpt_work *w, const float *p,
                                    float *grad, size_t l, int on, size_t B, size_t T)
{
    px_nn_exec *x = w->x;
    const px__block *b = &g->blk[l];
    const px__acts *a = &w->a[l];
    size_t C = g->C, BT = B * T, NH = g->NH;
    const float *in = l ? w->a[l - 1].res3 : w->encoded;
    /* the MLP: dres is the gradient of res3 = res2 + fcproj */
    PX_X(x, zero, w->dfchg, BT * 4 * C * sizeof(float));
    PX_X(x, linear_backward, w->dfchg, PX__SLOT(b->fcprojw), PX__SLOT(b->fcprojb), w->dres,
         a->fchg, p + b->fcprojw, BT, 4 * C, C);
    PX_X(x, zero, w->dfch, BT * 4 * C * sizeof(float));
    PX_X(x, gelu_backward, w->dfch, a->fch, w->dfchg, BT * 4 * C);
    PX_X(x, zero, w->dln2, BT * C * sizeof(float));
    PX_X(x, linear_backward, w->dln2, PX__SLOT(b->fcw), PX__SLOT(b->fcb), w->dfch, a->ln2,
         p + b->fcw, BT, C, 4 * C);
    PX_X(x, layernorm_backward, w->dres, PX__SLOT(b->ln2w), PX__SLOT(b->ln2b), w->dln2, a->res2,
         p + b->ln2w, a->ln2_mean, a->ln2_rstd, BT, C);
    /* attention: dres is now the gradient of res2 = in + attproj */
    PX_X(x, zero, w->datty, BT * C * sizeof(float));
    PX_X(x, linear_backward, w->datty, PX__SLOT(b->projw), PX__SLOT(b->projb), w->dres, a->atty,
         p + b->projw, BT, C, C);
    PX_X(x, zero, w->dqkv, BT * 3 * C * sizeof(float));
    PX_X(x, attention_backward, w->dqkv, w->dpreatt, w->datt, w->datty, a->qkv, a->att, B, T, C,
         NH);
    PX_X(x, zero, w->dln1, BT * C * sizeof(float));
    PX_X(x, linear_backward, w->dln1, PX__SLOT(b->qkvw), PX__SLOT(b->qkvb), w->dqkv, a->ln1,
         p + b->qkvw, BT, C, 3 * C);
    return x->ops->layernorm_backward(x, w->dres, PX__SLOT(b->ln1w), PX__SLOT(b->ln1b), w->dln1,
                                      in, p + b->ln1w, a->ln1_mean, a->ln1_rstd, BT, C);
}

/* The pass of loss_grad on the work area's executor: tokens and targets (B x T) in its memory. */
static px_status px__gpt_pass(const px__gpt *g, px__gpt_work *w, const float *p,
                              const int32_t *tokens, const int32_t *targets, size_t B,
                              const uint8_t *active, const px_loss_terms *terms, float *grad,
                              double *loss)
{
    px_nn_exec *x = w->x;
    size_t T = g->T, C = g->C, BT = B * T;
    PX_CHECK(px__gpt_forward(g, w, p, tokens, B, T));
    PX_X(x, ce_forward, w->probs, w->losses, w->logits, targets, BT, g->V);
    float *dlogits = w->logits; /* the logits are spent */
    PX_X(x, ce_backward, dlogits, w->probs, targets, BT, g->V);
    PX_X(x, ce_mean, w->losses, BT, loss);
    if (terms && terms->margin_lambda != 0.0f)
        PX_X(x, margin_backward, dlogits, w->probs, BT, g->V, terms->margin_lambda, loss);
    PX_X(x, zero, grad, g->n * sizeof(float));
    /* groups: 0 embed, 1 + l block l, L + 1 head; the pass goes down to the lowest active one */
    size_t lowest = 0, G = g->L + 2;
    while (active && lowest < G && !active[lowest])
        lowest++;
    int on = !active || active[G - 1];
    PX_X(x, zero, w->dlnf, BT * C * sizeof(float));
    PX_X(x, linear_backward, w->dlnf, PX__SLOT(g->headw), NULL, dlogits, w->lnf, p + g->headw,
         BT, C, g->V);
    PX_X(x, zero, w->dres, BT * C * sizeof(float));
    const float *top = g->L ? w->a[g->L - 1].res3 : w->encoded;
    PX_X(x, layernorm_backward, w->dres, PX__SLOT(g->lnfw), PX__SLOT(g->lnfb), w->dlnf, top,
         p + g->lnfw, w->lnf_mean, w->lnf_rstd, BT, C);
    for (size_t l = g->L; l-- > 0 && l + 1 >= lowest;)
        PX_CHECK(px__block_backward(g, w, p, grad, l, !active || active[l + 1], B, T));
    if (!active || active[0])
        PX_X(x, embedding_backward, grad + g->wte, grad + g->wpe, w->dres, tokens, B, T, C);
    return PX_OK;
}

static float px__gpt_loss_grad(const px_model *m, void *work, const float *p, const uint8_t *y,
                               size_t B, const uint8_t *active, const px_loss_terms *terms,
                               float *grad)
{
    const px__gpt *g = m->impl;
    px__gpt_work *w = work;
    for (size_t i = 0; i < B * g->T; i++)
        w->targets[i] = y[i];
    double loss = 0;
    px__gpt_pass(g, w, p, w->tokens, w->targets, B, active, terms, grad, &loss); /* the CPU's */
    return (float)loss;                                                         /* never fails */
}

static px_status px__gpt_xloss_grad(const px_model *m, px_nn_exec *x, void *work, const float *p,
                                    const void *input, const int32_t *targets, size_t B,
                                    const uint8_t *active, const px_loss_terms *terms, float *grad,
                                    double *loss)
{
    px__gpt_work *w = work;
    if (w->x != x || B > w->B)
        return px_error(PX_EINVAL, "gpt: a work area used on another executor or batch");
    return px__gpt_pass(m->impl, w, p, input, targets, B, active, terms, grad, loss);
}

static void px__gpt_evaluate(const px_model *m, void *work, const float *p, const uint8_t *y,
                             size_t B, double *loss_sum, size_t *correct)
{
    const px__gpt *g = m->impl;
    px__gpt_work *w = work;
    size_t BT = B * g->T, V = g->V;
    px__gpt_forward(g, w, p, w->tokens, B, g->T);
    for (size_t i = 0; i < BT; i++) {
        const float *z = w->logits + i * V;
        size_t best = 0;
        for (size_t j = 1; j < V; j++)
            if (z[j] > z[best]) best = j;
        *correct += best == y[i];
        w->targets[i] = y[i];
    }
    *loss_sum += px_crossentropy_forward(NULL, w->logits, w->targets, BT, V) * (double)BT;
}

/* Samples n tokens after `start`, each from the softmax of the last position's logits over the
 * previous (at most context) tokens, drawn from the stream (seed, PX_STREAM_INIT, ~0). */
static size_t px__gpt_generate(const px_model *m, void *work, const float *p, uint64_t seed,
                               int32_t start, size_t n, int32_t *out)
{
    const px__gpt *g = m->impl;
    px__gpt_work *w = work;
    size_t V = g->V;
    px_rng r;
    px_rng_init(&r, seed, PX_STREAM_INIT, UINT64_MAX, 0);
    for (size_t i = 0; i < n; i++) {
        /* the window: the last tokens generated, at most the context */
        size_t T = i + 1 < g->T ? i + 1 : g->T;
        for (size_t t = 0; t < T; t++) {
            size_t k = i + 1 - T + t; /* position in (start, out[0..i)) */
            w->tokens[t] = k == 0 ? start : out[k - 1];
        }
        px__gpt_forward(g, w, p, w->tokens, 1, T);
        const float *z = w->logits + (T - 1) * V;
        float mx = z[0];
        for (size_t j = 1; j < V; j++)
            mx = z[j] > mx ? z[j] : mx;
        double sum = 0;
        for (size_t j = 0; j < V; j++)
            sum += exp((double)(z[j] - mx));
        double u = px_rng_uniform(&r) * sum, acc = 0;
        size_t pick = V - 1;
        for (size_t j = 0; j < V; j++) {
            acc += exp((double)(z[j] - mx));
            if (u < acc) {
                pick = j;
                break;
            }
        }
        out[i] = (int32_t)pick;
    }
    return n;
}

static double px__gpt_flops(const px_model *m)
{
    const px__gpt *g = m->impl;
    double C = (double)g->C, T = (double)g->T;
    double per_token = g->L * (12 * C * C + 2 * T * C) + C * g->V; /* matmuls + attention */
    return 3 * per_token * T;                                      /* forward + 2x backward */
}

static void px__gpt_destroy(px_model *m)
{
    free(m->impl);
    free(m);
}

static const px_model_ops px__gpt_ops = {
    .init = px__gpt_init,
    .work_create = px__gpt_work_create,
    .work_free = px__gpt_work_free,
    .input = NULL,
    .tokens = px__gpt_tokens,
    .loss_grad = px__gpt_loss_grad,
    .evaluate = px__gpt_evaluate,
    .generate = px__gpt_generate,
    .xwork_create = px__gpt_xwork_create,
    .xwork_free = px__gpt_xwork_free,
    .xloss_grad = px__gpt_xloss_grad,
    .flops_per_sample = px__gpt_flops,
    .destroy = px__gpt_destroy,
};

px_status px_gpt_check(const px_model_spec *spec)
{
    return px__gpt_check(spec);
}

px_status px_gpt_model_create(px_model **out, const px_model_spec *s)
{
    *out = NULL;
    PX_CHECK(px__gpt_check(s));
    px_model *m = calloc(1, sizeof *m);
    px__gpt *g = calloc(1, sizeof *g);
    if (!m || !g) {
        free(m);
        free(g);
        return px_error(PX_ENOMEM, "gpt: cannot allocate");
    }
    g->V = s->classes;
    g->T = s->context;
    g->C = s->width;
    g->NH = s->heads;
    g->L = s->blocks;
    px__gpt_shape(g);
    m->ops = &px__gpt_ops;
    m->impl = g;
    m->n_params = g->n;
    m->input_values = g->T;
    m->classes = g->V;
    m->label_values = g->T;
    m->tokens = 1;
    m->tensors = (px_layer_table){2 + 12 * g->L + 3, g->tensors};
    m->n_groups = g->L + 2;
    m->groups = g->groups;
    *out = m;
    return PX_OK;
}
