/* test_exec_models.c - the models' executor passes (exec.h) and the device wrapper
 * (model_device.h) on the CPU backend: the code a GPU runs, run here over host memory.
 *
 * Independent reasons for the expected values:
 * - CNN and GPT: their loss_grad is the executor pass on the CPU executor, so the wrapper (which
 *   stages parameters, batch and gradient through device buffers and runs the pass on its own
 *   executor) must give the plain model's loss and gradient bit for bit, step after step.
 * - MLP: its CPU loss_grad is written differently (bias and ReLU fused into its loops, the loss in
 *   double from the logits); the executor pass composes linear, ReLU and softmax cross-entropy
 *   layers. Two formulations of one function: they agree to float rounding (relative 1e-5 on the
 *   gradient), and 50 SGD steps of each follow the same loss curve (within 1e-4).
 * - Frozen groups (LISA's mask) get exact zeros on both paths.
 * - A device the machine lacks is refused with the runtime's reason, and the wrapped model is
 *   left to the caller, intact.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "runtime/nn/model.h"
#include "runtime/nn/model_device.h"

static px_model_spec mlp_spec(void)
{
    static uint32_t hidden[] = {24, 16};
    return (px_model_spec){.input_values = 30, .classes = 6, .label_values = 1, .hidden = hidden,
                           .n_hidden = 2};
}

static px_model_spec cnn_spec(void)
{
    static uint32_t conv[] = {3, 4}, hidden[] = {6};
    return (px_model_spec){.input_values = 14 * 14, .channels = 1, .rows = 14, .cols = 14,
                           .classes = 5, .label_values = 1, .hidden = hidden, .n_hidden = 1,
                           .conv = conv, .n_conv = 2};
}

static px_model_spec gpt_spec(void)
{
    return (px_model_spec){.tokens = 1, .input_values = 6, .classes = 9, .label_values = 6,
                           .blocks = 2, .width = 8, .heads = 2, .context = 6};
}

/* Batch k of a fixed random stream, written into the work area's input and y. */
static void fill(const px_model *m, void *work, uint8_t *y, size_t B, uint64_t k)
{
    px_rng r;
    px_rng_init(&r, 17, 5, k, 0);
    size_t n = B * m->input_values;
    if (m->tokens) {
        int32_t *t = m->ops->tokens(work);
        for (size_t i = 0; i < n; i++)
            t[i] = (int32_t)(px_rng_below(&r, m->classes));
    } else {
        float *x = m->ops->input(work);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)px_rng_normal(&r);
    }
    for (size_t i = 0; i < B * m->label_values; i++)
        y[i] = (uint8_t)(px_rng_below(&r, m->classes));
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        num = e > num ? e : num;
        den = fabs((double)a[i]) > den ? fabs((double)a[i]) : den;
    }
    return den > 0 ? num / den : num;
}

/* Trains the plain model and its CPU-device twin side by side: `steps` SGD steps from the same
 * seed on the same batches, the active mask `active` (NULL: every group). exact: gradients and
 * losses bit for bit; else within tol. */
static void side_by_side(const char *kind, const px_model_spec *spec, size_t B, size_t steps,
                         const uint8_t *active, const px_loss_terms *terms, int exact, double tol)
{
    px_model *plain, *base, *dev;
    assert_int_equal(px_model_create(&plain, kind, spec), PX_OK);
    assert_int_equal(px_model_create(&base, kind, spec), PX_OK);
    assert_int_equal(px_model_on_device(&dev, base, PX_DEVICE_CPU, 0), PX_OK);
    assert_non_null(px_model_device(dev));
    assert_null(px_model_device(plain));
    /* the wrapper keeps the shape */
    assert_int_equal(dev->n_params, plain->n_params);
    assert_int_equal(dev->n_groups, plain->n_groups);
    assert_int_equal(dev->tensors.count, plain->tensors.count);
    size_t d = plain->n_params;
    float *p1 = malloc(d * sizeof(float)), *p2 = malloc(d * sizeof(float));
    float *g1 = malloc(d * sizeof(float)), *g2 = malloc(d * sizeof(float));
    uint8_t *y = malloc(B * plain->label_values);
    plain->ops->init(plain, p1, 7);
    dev->ops->init(dev, p2, 7);
    assert_memory_equal(p1, p2, d * sizeof(float));
    void *w1 = plain->ops->work_create(plain, B), *w2 = dev->ops->work_create(dev, B);
    assert_non_null(w1);
    assert_non_null(w2);
    double first = 0, last = 0;
    for (size_t s = 0; s < steps; s++) {
        fill(plain, w1, y, B, s);
        fill(dev, w2, y, B, s);
        float l1 = plain->ops->loss_grad(plain, w1, p1, y, B, active, terms, g1);
        float l2 = dev->ops->loss_grad(dev, w2, p2, y, B, active, terms, g2);
        assert_int_equal(dev->ops->work_failed(w2), PX_OK);
        assert_true(isfinite(l1) && isfinite(l2));
        if (exact) {
            assert_memory_equal(&l1, &l2, sizeof l1);
            assert_memory_equal(g1, g2, d * sizeof(float));
        } else {
            assert_true(fabs((double)l1 - (double)l2) <= tol * fabs((double)l1));
            double e = rel_err(g1, g2, d);
            if (e > tol) fail_msg("%s step %zu: gradient relative error %.3g > %.1g", kind, s, e, tol);
        }
        /* frozen groups: exact zeros on both paths */
        for (size_t k = 0; active && k < plain->n_groups; k++)
            if (!active[k])
                for (size_t i = 0; i < plain->groups[k].size; i++) {
                    assert_true(g1[plain->groups[k].offset + i] == 0.0f);
                    assert_true(g2[plain->groups[k].offset + i] == 0.0f);
                }
        for (size_t i = 0; i < d; i++) {
            p1[i] -= 0.1f * g1[i];
            p2[i] -= 0.1f * g2[i];
        }
        if (s == 0) first = l2;
        last = l2;
    }
    if (steps >= 20 && !active) assert_true(last < first); /* it trains: the curve goes down */
    /* evaluation goes to the wrapped model on the CPU: the same counts */
    fill(plain, w1, y, B, 999);
    fill(dev, w2, y, B, 999);
    double ls1 = 0, ls2 = 0;
    size_t c1 = 0, c2 = 0;
    plain->ops->evaluate(plain, w1, p1, y, B, &ls1, &c1);
    dev->ops->evaluate(dev, w2, p2, y, B, &ls2, &c2);
    if (exact) {
        assert_true(ls1 == ls2);
        assert_int_equal(c1, c2);
    } else {
        assert_true(fabs(ls1 - ls2) <= 1e-3 * fabs(ls1));
    }
    plain->ops->work_free(w1);
    dev->ops->work_free(w2);
    px_model_destroy(plain);
    px_model_destroy(dev); /* and the model it wraps */
    free(p1), free(p2), free(g1), free(g2), free(y);
}

static void test_cnn_bit_for_bit(void **state)
{
    (void)state;
    px_model_spec s = cnn_spec();
    side_by_side("cnn", &s, 4, 30, NULL, NULL, 1, 0);
    uint8_t frozen[4] = {0, 1, 0, 1}; /* conv1 and fc1 frozen: the pass stops above conv1 */
    side_by_side("cnn", &s, 4, 3, frozen, NULL, 1, 0);
    px_loss_terms margin = {.margin_lambda = 0.3f};
    side_by_side("cnn", &s, 4, 3, NULL, &margin, 1, 0);
}

static void test_gpt_bit_for_bit(void **state)
{
    (void)state;
    px_model_spec s = gpt_spec();
    side_by_side("gpt", &s, 3, 30, NULL, NULL, 1, 0);
    uint8_t frozen[4] = {1, 0, 1, 1}; /* embed, block0 frozen, block1, head */
    side_by_side("gpt", &s, 3, 3, frozen, NULL, 1, 0);
    uint8_t top_only[4] = {0, 0, 0, 1};
    side_by_side("gpt", &s, 3, 3, top_only, NULL, 1, 0);
    px_loss_terms margin = {.margin_lambda = 0.3f};
    side_by_side("gpt", &s, 3, 3, NULL, &margin, 1, 0);
}

static void test_mlp_two_formulations(void **state)
{
    (void)state;
    px_model_spec s = mlp_spec();
    side_by_side("mlp", &s, 8, 50, NULL, NULL, 0, 1e-4);
    uint8_t frozen[3] = {0, 1, 1};
    side_by_side("mlp", &s, 8, 3, frozen, NULL, 0, 1e-5);
    uint8_t middle[3] = {1, 0, 1};
    side_by_side("mlp", &s, 8, 3, middle, NULL, 0, 1e-5);
    px_loss_terms margin = {.margin_lambda = 0.3f};
    side_by_side("mlp", &s, 8, 3, NULL, &margin, 0, 1e-5);
}

/* cluster.device = CUDA on this machine: a build without CUDA says so; a CUDA build on a
 * machine without a GPU says what the runtime found. Either way nothing crashes and the model
 * stays the caller's. */
static void test_missing_device_is_refused(void **state)
{
    (void)state;
    int n = 0;
    if (px_device_count(PX_DEVICE_CUDA, &n) >= 0 && n > 0) skip(); /* a GPU: nothing to refuse */
    px_model_spec s = gpt_spec();
    px_model *base, *dev = (px_model *)&s;
    assert_int_equal(px_model_create(&base, "gpt", &s), PX_OK);
    px_status st = px_model_on_device(&dev, base, PX_DEVICE_CUDA, 0);
    assert_true(st < 0);
    assert_null(dev);
    assert_true(strlen(px_errmsg()) > 10);
    /* the base is intact and usable */
    void *w = base->ops->work_create(base, 2);
    assert_non_null(w);
    base->ops->work_free(w);
    px_model_destroy(base);
}

/* A pass that fails on the device gives a NaN loss and a NaN gradient (nothing from it can be
 * taken for a gradient), and work_failed then reports the cause; the next good pass clears it. */
static void test_failed_pass_is_reported(void **state)
{
    (void)state;
    px_model_spec s = cnn_spec();
    px_model *base, *dev;
    assert_int_equal(px_model_create(&base, "cnn", &s), PX_OK);
    assert_int_equal(px_model_on_device(&dev, base, PX_DEVICE_CPU, 0), PX_OK);
    size_t d = dev->n_params;
    float *p = malloc(d * sizeof(float)), *g = malloc(d * sizeof(float));
    uint8_t y[3] = {0, 1, 2};
    dev->ops->init(dev, p, 1);
    void *w = dev->ops->work_create(dev, 2);
    assert_non_null(w);
    float loss = dev->ops->loss_grad(dev, w, p, y, 3, NULL, NULL, g); /* 3 > the area's 2 */
    assert_true(isnan(loss));
    for (size_t i = 0; i < d; i++)
        assert_true(isnan(g[i]));
    assert_int_equal(dev->ops->work_failed(w), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "the training step on cpu failed"));
    assert_non_null(strstr(px_errmsg(), "a batch of 3 in a work area for 2"));
    fill(dev, w, y, 2, 0);
    loss = dev->ops->loss_grad(dev, w, p, y, 2, NULL, NULL, g);
    assert_true(isfinite(loss));
    assert_int_equal(dev->ops->work_failed(w), PX_OK);
    dev->ops->work_free(w);
    px_model_destroy(dev);
    free(p), free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_bit_for_bit),
        cmocka_unit_test(test_gpt_bit_for_bit),
        cmocka_unit_test(test_mlp_two_formulations),
        cmocka_unit_test(test_missing_device_is_refused),
        cmocka_unit_test(test_failed_pass_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
