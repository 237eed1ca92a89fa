/* gpu_models.c - each model's whole training step on the GPU against the CPU, through the path
 * the trainer takes (model_device.h: parameters and batch copied to the device, the model's
 * executor pass there, the gradient copied back), and the GPU step's throughput. Run by
 * tests/gpu/run.sh; exit 77 (ctest's skip, nothing verified) without a usable GPU.
 *
 * For MLP (the quickstart's 784-256-256-10), CNN (LeNet-5 on 28 x 28) and GPT (4 blocks of width
 * 128, 4 heads, context 64, 96 symbols): the plain CPU model and its CUDA twin start from the same
 * seed and take 50 SGD steps (lr 0.05) on the same seeded batches. Checked:
 *   - the first gradient (same parameters on both): relative error max|gpu - cpu| / max|cpu|
 *     within 1e-4 (summation orders differ: cuBLAS vs OpenBLAS, the GPU's reductions, atomic
 *     adds into the embedding's gradient);
 *   - the loss curves: |loss_gpu - loss_cpu| <= 1e-3 |loss_cpu| at every step (the trajectories
 *     drift apart slowly from those roundings);
 *   - the parameters after 50 steps: relative error within 1e-3.
 * Then samples/s of the GPU step at a larger batch against the CPU step at one thread, and its
 * multiply-add rate as a share of the SGEMM rate measured in the same run.
 *
 * GPU_MODELS_BACKEND=cpu runs the program with the CPU backend in the GPU's place (a dry run of
 * this program on a machine without a GPU: it verifies nothing about a GPU, and says so).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "base/clock.h"
#include "base/device.h"
#include "base/rng.h"
#include "runtime/nn/layers_cuda.h"
#include "runtime/nn/model.h"
#include "runtime/nn/model_device.h"

static int checks, failures;
static px_device_kind twin = PX_DEVICE_CUDA; /* the backend checked against the CPU */

#define OK(call)                                                                                   \
    do {                                                                                           \
        px_status px__s = (call);                                                                  \
        if (px__s < 0) {                                                                           \
            fprintf(stderr, "gpu_models: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,             \
                    px_errmsg());                                                                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void verdict(const char *what, int ok, const char *detail)
{
    checks++;
    failures += !ok;
    printf("%-4s %-40s %s\n", ok ? "ok" : "FAIL", what, detail);
}

static double rel_err(const float *ref, const float *got, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        num = fmax(num, fabs((double)got[i] - (double)ref[i]));
        den = fmax(den, fabs((double)ref[i]));
    }
    return den > 0 ? num / den : num;
}

/* Batch k: seeded inputs and labels in the work area and y. */
static void fill(const px_model *m, void *work, uint8_t *y, size_t B, uint64_t k)
{
    px_rng r;
    px_rng_init(&r, 41, 3, k, 0);
    size_t n = B * m->input_values;
    if (m->tokens) {
        int32_t *t = m->ops->tokens(work);
        for (size_t i = 0; i < n; i++)
            t[i] = (int32_t)px_rng_below(&r, m->classes);
    } else {
        float *x = m->ops->input(work);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)px_rng_normal(&r);
    }
    for (size_t i = 0; i < B * m->label_values; i++) /* images: a function of the input */
        y[i] = m->tokens ? (uint8_t)px_rng_below(&r, m->classes)
                         : (uint8_t)((((float *)m->ops->input(work))[i * m->input_values] > 0) +
                                     2 * (((float *)m->ops->input(work))[i * m->input_values + 7] >
                                          0));
}

static double sgemm_gflops(px_device *dev);

static void check_model(const char *kind, const px_model_spec *spec, size_t B, size_t B_bench,
                        px_device *sg_dev)
{
    px_model *cpu, *base, *gpu;
    OK(px_model_create(&cpu, kind, spec));
    OK(px_model_create(&base, kind, spec));
    OK(px_model_on_device(&gpu, base, twin, 0));
    size_t d = cpu->n_params;
    float *pc = malloc(d * 4), *pg = malloc(d * 4), *gc = malloc(d * 4), *gg = malloc(d * 4);
    uint8_t *y = malloc(B_bench * cpu->label_values);
    cpu->ops->init(cpu, pc, 5);
    memcpy(pg, pc, d * 4);
    void *wc = cpu->ops->work_create(cpu, B), *wg = gpu->ops->work_create(gpu, B);
    if (!wc || !wg) OK(PX_ENOMEM);
    double worst = 0, first = 0, lc_last = 0, lg_last = 0;
    char msg[200], what[64];
    for (size_t s = 0; s < 50; s++) {
        fill(cpu, wc, y, B, s);
        fill(gpu, wg, y, B, s);
        float lc = cpu->ops->loss_grad(cpu, wc, pc, y, B, NULL, NULL, gc);
        float lg = gpu->ops->loss_grad(gpu, wg, pg, y, B, NULL, NULL, gg);
        OK(gpu->ops->work_failed(wg));
        if (s == 0) {
            double e = rel_err(gc, gg, d);
            snprintf(msg, sizeof msg, "rel.err %.3e (limit 1e-4), %zu parameters", e, d);
            snprintf(what, sizeof what, "%s first gradient cpu vs %s", kind, px_device_kind_name(twin));
            verdict(what, e <= 1e-4, msg);
            first = lc;
        }
        worst = fmax(worst, fabs((double)lg - (double)lc) / fabs((double)lc));
        lc_last = lc, lg_last = lg;
        for (size_t i = 0; i < d; i++) {
            pc[i] -= 0.05f * gc[i];
            pg[i] -= 0.05f * gg[i];
        }
    }
    snprintf(msg, sizeof msg, "loss %.4f -> cpu %.4f %s %.4f; worst rel. diff %.2e (limit 1e-3)",
             first, lc_last, px_device_kind_name(twin), lg_last, worst);
    snprintf(what, sizeof what, "%s 50 SGD steps cpu vs %s", kind, px_device_kind_name(twin));
    verdict(what, worst <= 1e-3, msg);
    double e = rel_err(pc, pg, d);
    snprintf(msg, sizeof msg, "rel.err %.3e (limit 1e-3)", e);
    snprintf(what, sizeof what, "%s parameters after 50 steps", kind);
    verdict(what, e <= 1e-3, msg);
    cpu->ops->work_free(wc);
    gpu->ops->work_free(wg);

    /* throughput: the engine's step (copies included) at B_bench, GPU vs one CPU thread */
    openblas_set_num_threads(1);
    wc = cpu->ops->work_create(cpu, B_bench);
    wg = gpu->ops->work_create(gpu, B_bench);
    if (!wc || !wg) OK(PX_ENOMEM);
    fill(cpu, wc, y, B_bench, 0);
    fill(gpu, wg, y, B_bench, 0);
    double rate[2];
    for (int on_gpu = 0; on_gpu < 2; on_gpu++) {
        px_model *m = on_gpu ? gpu : cpu;
        void *w = on_gpu ? wg : wc;
        float *p = on_gpu ? pg : pc, *g = on_gpu ? gg : gc;
        m->ops->loss_grad(m, w, p, y, B_bench, NULL, NULL, g); /* warm-up */
        int steps = 0;
        double t0 = px_now_ms(), t;
        do {
            m->ops->loss_grad(m, w, p, y, B_bench, NULL, NULL, g);
            steps++;
            t = px_now_ms() - t0;
        } while (t < 2000 && steps < 200);
        rate[on_gpu] = (double)B_bench * steps / (t / 1000.0);
    }
    OK(gpu->ops->work_failed(wg));
    double flops = 2.0 * cpu->ops->flops_per_sample(cpu) * rate[1];
    double peak = twin == PX_DEVICE_CUDA ? sgemm_gflops(sg_dev) : NAN;
    printf("bench %s step (batch %zu, copies included): %s %.0f samples/s, cpu (1 thread) %.0f "
           "samples/s, ratio %.1fx; %.1f GFLOP/s = %.1f%% of the SGEMM rate %.0f GFLOP/s "
           "measured in this run\n",
           kind, B_bench, px_device_kind_name(twin), rate[1], rate[0], rate[1] / rate[0], flops / 1e9,
           100.0 * flops / 1e9 / peak, peak);
    cpu->ops->work_free(wc);
    gpu->ops->work_free(wg);
    px_model_destroy(cpu);
    px_model_destroy(gpu);
    free(pc), free(pg), free(gc), free(gg), free(y);
}

/* cuBLAS's fp32 GEMM rate on 4096^3 products (the layers' own entry point), best of 5. */
static double sgemm_gflops(px_device *dev)
{
    static double cached = 0;
    if (cached > 0) return cached;
    size_t n = 4096;
    px_stream *s;
    px_nn_cuda *nn;
    OK(px_stream_create(dev, &s));
    OK(px_nn_cuda_create(&nn, px_stream_native(s)));
    float *a, *b, *c;
    OK(px_device_alloc(dev, n * n * 4, (void **)&a));
    OK(px_device_alloc(dev, n * n * 4, (void **)&b));
    OK(px_device_alloc(dev, n * n * 4, (void **)&c));
    OK(px_device_zero(dev, a, n * n * 4, s));
    OK(px_device_zero(dev, b, n * n * 4, s));
    double best = 1e30;
    for (int i = 0; i < 6; i++) {
        OK(px_stream_sync(s));
        double t0 = px_now_ms();
        OK(px_linear_forward_cuda(nn, c, a, b, NULL, n, n, n));
        OK(px_stream_sync(s));
        double ms = px_now_ms() - t0;
        if (i > 0 && ms < best) best = ms;
    }
    px_device_free(dev, a), px_device_free(dev, b), px_device_free(dev, c);
    px_nn_cuda_destroy(nn);
    px_stream_destroy(s);
    cached = 2.0 * (double)n * n * n / (best * 1e-3) / 1e9;
    return cached;
}

int main(void)
{
    int count = 0;
    const char *b = getenv("GPU_MODELS_BACKEND");
    if (b && !strcmp(b, "cpu")) {
        twin = PX_DEVICE_CPU;
        printf("gpu_models: DRY RUN on the CPU backend (GPU_MODELS_BACKEND=cpu): no GPU is "
               "checked\n");
    } else if (px_device_count(PX_DEVICE_CUDA, &count) < 0) {
        printf("gpu_models: SKIPPED, nothing verified: %s\n", px_errmsg());
        return 77;
    }
    px_device *dev;
    OK(px_device_open(&dev, twin, 0));
    printf("gpu_models on %s\n", px_device_name(dev));
    double t0 = px_now_ms();
    uint32_t mlp_hidden[] = {256, 256};
    px_model_spec mlp = {.input_values = 784, .channels = 1, .rows = 28, .cols = 28,
                         .classes = 10, .label_values = 1, .hidden = mlp_hidden, .n_hidden = 2};
    check_model("mlp", &mlp, 64, 1024, dev);
    px_model_spec cnn = mlp;
    cnn.hidden = NULL, cnn.n_hidden = 0; /* LeNet-5's defaults */
    check_model("cnn", &cnn, 64, 512, dev);
    px_model_spec gpt = {.tokens = 1, .input_values = 64, .classes = 96, .label_values = 64,
                         .blocks = 4, .width = 128, .heads = 4, .context = 64};
    check_model("gpt", &gpt, 8, 64, dev);
    px_device_close(dev);
    printf("gpu_models: %d of %d checks passed in %.1f s\n", checks - failures, checks,
           (px_now_ms() - t0) / 1000.0);
    return failures ? 1 : 0;
}
