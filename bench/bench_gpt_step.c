/* bench_gpt_step.c - one GPT training step (forward, backward, AdamW) timed through the model and
 * optimizer interfaces, as a worker and the server run it, without the engine around it: the
 * Phalanx half of bench/gpt_step (the PyTorch half is bench/gpt_step_torch.py).
 *
 *   bench_gpt_step BATCH STEPS [WARMUP [ACTIVE [BLOCKS WIDTH HEADS CONTEXT VOCAB]]]
 *
 * prints one line:
 *   batch=B active=A steps=N params=P state_bytes=S flops=F step_ms=S grad_ms=G opt_ms=O
 *   cpu_ms=U samples_per_s=X tokens_per_s=Y loss0=A loss=L
 * step_ms is the mean wall time of one step (loss_grad + optimizer step) over the N timed steps,
 * after WARMUP (default 10) untimed ones; grad_ms and opt_ms are its two parts; cpu_ms is the
 * process's CPU time per step (what the step costs on a core when other jobs share the machine).
 * A sample is a window of CONTEXT tokens, each position with a next-token label. flops: the
 * matrix products of one full step (2 x the model's flops_per_sample multiply-adds x BATCH), for
 * a GEMM floor.
 *
 * Default shape: examples/gpt_full.txtpb (8 blocks, width 128, 4 heads, context 64) and a
 * vocabulary of 114 (the distinct bytes of Debian's fortunes as the trainer reads them: its
 * gpt_full run has 1,623,808 parameters, as this model). ACTIVE (default: every block) is how
 * many blocks train, as LISA's gamma: the embeddings, the head and blocks 0..ACTIVE-1 get
 * gradients and AdamW updates; the others are frozen (weight-gradient products skipped, AdamW
 * state dropped, as LISA's RESET). Every step draws fresh uniform tokens and targets (stream
 * (1, PX_STREAM_BATCH, 0, step)); AdamW at a constant lr 0.002, betas (0.9, 0.999), eps 1e-8,
 * weight decay 0.01. BLAS runs on one thread, as the trainer sets it. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/rng.h"
#include "runtime/nn/model.h"
#include "runtime/nn/optimizer.h"

/* CPU time of this process in ms: on a shared machine, the time the step itself took on a core,
 * whatever else ran (one thread here, so it is the step's own time; wall time counts waiting). */
static double px__cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static size_t px__arg(int argc, char **argv, int i, size_t dflt)
{
    return argc > i ? (size_t)strtoull(argv[i], NULL, 10) : dflt;
}

/* Fresh tokens and next-token targets for step `step`: uniform over the vocabulary. */
static void px__draw(int32_t *tokens, uint8_t *y, size_t n, size_t V, uint64_t step)
{
    px_rng r;
    px_rng_init(&r, 1, PX_STREAM_BATCH, 0, step);
    for (size_t i = 0; i < n; i++) {
        tokens[i] = (int32_t)px_rng_below(&r, V);
        y[i] = (uint8_t)px_rng_below(&r, V);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_gpt_step BATCH STEPS [WARMUP [ACTIVE [BLOCKS WIDTH HEADS "
                        "CONTEXT VOCAB]]]\n");
        return 2;
    }
    size_t B = px__arg(argc, argv, 1, 8), steps = px__arg(argc, argv, 2, 100);
    size_t warmup = px__arg(argc, argv, 3, 10);
    px_model_spec spec = {0};
    spec.blocks = px__arg(argc, argv, 5, 8);
    spec.width = px__arg(argc, argv, 6, 128);
    spec.heads = px__arg(argc, argv, 7, 4);
    spec.context = px__arg(argc, argv, 8, 64);
    spec.classes = px__arg(argc, argv, 9, 114);
    size_t active_blocks = px__arg(argc, argv, 4, spec.blocks);
    spec.tokens = 1;
    spec.input_values = spec.label_values = spec.context;
    if (B < 1 || steps < 1 || spec.classes < 2 || spec.classes > 256) {
        fprintf(stderr, "bench_gpt_step: need BATCH >= 1, STEPS >= 1, 2 <= VOCAB <= 256\n");
        return 2;
    }
    openblas_set_num_threads(1);

    px_model *m = NULL;
    px_optimizer *o = NULL;
    if (px_model_create(&m, "gpt", &spec) < 0) {
        fprintf(stderr, "bench_gpt_step: %s\n", px_errmsg());
        return 1;
    }
    px_optimizer_spec os = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    if (px_optimizer_create(&o, "adamw", &os, m->n_params, m->groups, m->n_groups) < 0) {
        fprintf(stderr, "bench_gpt_step: %s\n", px_errmsg());
        px_model_destroy(m);
        return 1;
    }
    size_t BT = B * spec.context;
    void *work = m->ops->work_create(m, B);
    float *params = px_alloc(m->n_params * sizeof(float), "parameters");
    float *grad = px_alloc(m->n_params * sizeof(float), "gradient");
    uint8_t *y = malloc(BT);
    if (!work || !params || !grad || !y) {
        fprintf(stderr, "bench_gpt_step: cannot allocate (%s)\n", px_errmsg());
        return 1;
    }
    m->ops->init(m, params, 1);
    int32_t *tokens = m->ops->tokens(work);
    /* groups: embed, block0..block{L-1}, head (gpt.c); the model takes at most 64 blocks */
    uint8_t *active = NULL, mask[64 + 2];
    if (active_blocks < spec.blocks && m->n_groups <= sizeof mask) {
        for (size_t k = 0; k < m->n_groups; k++)
            mask[k] = k == 0 || k + 1 == m->n_groups || k <= active_blocks;
        active = mask;
    }
    const float lr = 0.002f;

    double grad_ms = 0, opt_ms = 0, cpu_ms = 0;
    float loss0 = 0, loss = 0;
    for (size_t s = 0; s < warmup + steps; s++) {
        px__draw(tokens, y, BT, spec.classes, s);
        double c0 = px__cpu_ms(), t0 = px_now_ms();
        loss = m->ops->loss_grad(m, work, params, y, B, active, NULL, grad);
        double t1 = px_now_ms();
        o->ops->step(o, params, grad, lr, active);
        double t2 = px_now_ms(), c2 = px__cpu_ms();
        if (s == 0) loss0 = loss;
        if (s >= warmup) {
            grad_ms += t1 - t0;
            opt_ms += t2 - t1;
            cpu_ms += c2 - c0;
        }
    }
    double step_ms = (grad_ms + opt_ms) / (double)steps;
    double flops = 2.0 * m->ops->flops_per_sample(m) * (double)B;
    printf("batch=%zu active=%zu steps=%zu params=%zu state_bytes=%zu flops=%.0f step_ms=%.4f "
           "grad_ms=%.4f opt_ms=%.4f cpu_ms=%.4f samples_per_s=%.2f tokens_per_s=%.1f loss0=%.4f "
           "loss=%.4f\n",
           B, active ? active_blocks : spec.blocks, steps, m->n_params, o->ops->state_bytes(o),
           flops, step_ms, grad_ms / (double)steps, opt_ms / (double)steps, cpu_ms / (double)steps,
           1000.0 * (double)B / step_ms, 1000.0 * (double)BT / step_ms, (double)loss0,
           (double)loss);
    free(y);
    px_free(grad);
    px_free(params);
    m->ops->work_free(work);
    px_optimizer_destroy(o);
    px_model_destroy(m);
    return 0;
}
