/* test_optimizer.c - SGD with momentum, Nesterov and weight decay against hand-computed steps
 * (torch.optim.SGD semantics), and the learning-rate schedules at known points. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/nn/optimizer.h"

static void test_sgd_momentum_weight_decay(void **state)
{
    (void)state;
    px_sgd o;
    assert_int_equal(px_sgd_create(&o, 1, 0.9f, 0.01f, 0), PX_OK);
    float w = 1.0f, g = 0.5f;
    /* step 1: g' = 0.5 + 0.01*1 = 0.51; v = 0.51; w = 1 - 0.1*0.51 = 0.949 */
    px_sgd_step(&o, &w, &g, 0.1f);
    assert_float_equal(w, 0.949f, 1e-6);
    /* step 2: g' = 0.5 + 0.00949 = 0.50949; v = 0.459 + 0.50949 = 0.96849; w = 0.852151 */
    px_sgd_step(&o, &w, &g, 0.1f);
    assert_float_equal(w, 0.852151f, 1e-6);
    assert_float_equal(g, 0.5f, 0); /* the gradient is not modified */
    px_sgd_free(&o);
}

static void test_sgd_nesterov(void **state)
{
    (void)state;
    px_sgd o;
    assert_int_equal(px_sgd_create(&o, 2, 0.9f, 0.0f, 1), PX_OK);
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 1.0f};
    /* v = g; w -= lr * (g + 0.9 v) = lr * 1.9 g */
    px_sgd_step(&o, w, g, 0.1f);
    assert_float_equal(w[0], 1.0f - 0.095f, 1e-6);
    assert_float_equal(w[1], -2.0f - 0.19f, 1e-6);
    /* v = 0.9 g + g = 1.9 g; w -= lr * (g + 0.9 * 1.9 g) = lr * 2.71 g */
    px_sgd_step(&o, w, g, 0.1f);
    assert_float_equal(w[0], 1.0f - 0.095f - 0.1355f, 1e-6);
    px_sgd_free(&o);
}

static void test_sgd_plain(void **state)
{
    (void)state;
    px_sgd o;
    assert_int_equal(px_sgd_create(&o, 1, 0.0f, 0.1f, 0), PX_OK);
    assert_null(o.velocity); /* no momentum, no buffer */
    float w = 2.0f, g = 1.0f;
    px_sgd_step(&o, &w, &g, 0.5f); /* w = 2 - 0.5 * (1 + 0.2) = 1.4 */
    assert_float_equal(w, 1.4f, 1e-6);
    px_sgd_free(&o);
}

static void test_schedules(void **state)
{
    (void)state;
    px_lr_schedule s = {.kind = PX_LR_CONSTANT, .lr = 0.3f, .steps = 100};
    assert_float_equal(px_lr_at(&s, 0), 0.3f, 0);
    assert_float_equal(px_lr_at(&s, 99), 0.3f, 0);

    s = (px_lr_schedule){
        .kind = PX_LR_STEP, .lr = 1.0f, .steps = 100, .step_every = 10, .step_gamma = 0.1f};
    assert_float_equal(px_lr_at(&s, 9), 1.0f, 1e-7);
    assert_float_equal(px_lr_at(&s, 10), 0.1f, 1e-7);
    assert_float_equal(px_lr_at(&s, 25), 0.01f, 1e-8);

    s = (px_lr_schedule){.kind = PX_LR_COSINE, .lr = 1.0f, .steps = 100, .min_lr = 0.0f};
    assert_float_equal(px_lr_at(&s, 0), 1.0f, 1e-7);
    assert_float_equal(px_lr_at(&s, 50), 0.5f, 1e-6);
    assert_float_equal(px_lr_at(&s, 25), 0.5f * (1 + cos(M_PI / 4)), 1e-6);
    assert_float_equal(px_lr_at(&s, 100), 0.0f, 1e-7);
    s.min_lr = 0.2f;
    assert_float_equal(px_lr_at(&s, 50), 0.6f, 1e-6);

    /* warm-up: lr/4, 2lr/4, 3lr/4, lr, then the schedule (cosine over the remaining steps) */
    s = (px_lr_schedule){.kind = PX_LR_COSINE, .lr = 1.0f, .steps = 104, .warmup_steps = 4};
    assert_float_equal(px_lr_at(&s, 0), 0.25f, 1e-7);
    assert_float_equal(px_lr_at(&s, 2), 0.75f, 1e-7);
    assert_float_equal(px_lr_at(&s, 4), 1.0f, 1e-7);
    assert_float_equal(px_lr_at(&s, 54), 0.5f, 1e-6);
}

/* The registry, and the state round trip: k steps, save, a fresh optimizer loads, both go on;
 * the same weights as an optimizer that never stopped. A wrong-size or non-finite state is
 * refused. */
static void test_registry_and_state(void **state)
{
    (void)state;
    enum { N = 6 };
    px_optimizer_spec spec = {.momentum = 0.9f, .weight_decay = 0.01f, .nesterov = 0};
    px_optimizer *a, *b, *c;
    assert_int_equal(px_optimizer_create(&a, "adagrad", &spec, N, NULL, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "optimizer.kind \"adagrad\""));
    assert_int_equal(px_optimizer_create(&a, "sgd", &spec, N, NULL, 0), PX_OK);
    assert_int_equal(px_optimizer_create(&b, "sgd", &spec, N, NULL, 0), PX_OK);
    assert_int_equal(px_optimizer_create(&c, "sgd", &spec, N, NULL, 0), PX_OK);
    assert_string_equal(a->kind, "sgd");
    float wa[N] = {1, 2, 3, 4, 5, 6}, wb[N], wc[N] = {1, 2, 3, 4, 5, 6}, g[N];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)(i - k) * 0.5f;
        a->ops->step(a, wa, g, 0.1f, NULL);
        c->ops->step(c, wc, g, 0.1f, NULL);
    }
    size_t bytes = a->ops->state_bytes(a);
    assert_int_equal(bytes, N * sizeof(float)); /* the momentum buffer */
    unsigned char buf[N * sizeof(float)];
    a->ops->state_save(a, buf);
    assert_int_equal(b->ops->state_load(b, buf, bytes - 1), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "expected 24"));
    memcpy(wb, wa, sizeof wb);
    assert_int_equal(b->ops->state_load(b, buf, bytes), PX_OK);
    for (int k = 3; k < 6; k++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)(i - k) * 0.5f;
        b->ops->step(b, wb, g, 0.1f, NULL);
        c->ops->step(c, wc, g, 0.1f, NULL);
    }
    assert_memory_equal(wb, wc, sizeof wb);
    float nan = NAN;
    memcpy(buf + 2 * sizeof(float), &nan, sizeof nan);
    assert_int_equal(b->ops->state_load(b, buf, bytes), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "value 2 is not finite"));
    px_optimizer_destroy(a);
    px_optimizer_destroy(b);
    px_optimizer_destroy(c);
    /* without momentum there is no state */
    spec.momentum = 0;
    assert_int_equal(px_optimizer_create(&a, "sgd", &spec, N, NULL, 0), PX_OK);
    assert_int_equal(a->ops->state_bytes(a), 0);
    assert_int_equal(a->ops->state_load(a, buf, 0), PX_OK);
    px_optimizer_destroy(a);
}

/* AdamW against the formula of ALGORITHMS.md section 6 in double, written here; then the
 * layer-group behaviour LISA relies on. */
static void test_adamw(void **state)
{
    (void)state;
    enum { N = 7 };
    px_layer_group groups[3] = {{"in", 0, 2, PX_GROUP_INPUT},
                                {"mid", 2, 3, PX_GROUP_MIDDLE},
                                {"head", 5, 2, PX_GROUP_HEAD}};
    px_optimizer_spec spec = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    px_optimizer *o;
    assert_int_equal(px_optimizer_create(&o, "adamw", &spec, N, groups, 3), PX_OK);
    assert_int_equal(o->ops->state_bytes(o), 3 * 8); /* no moments before the first step */
    float w[N];
    double W[N], M[N] = {0}, V[N] = {0};
    for (int i = 0; i < N; i++)
        W[i] = w[i] = 0.5f - 0.1f * (float)i;
    const double lr = 0.01;
    for (int t = 1; t <= 5; t++) {
        float g[N];
        for (int i = 0; i < N; i++)
            g[i] = (float)(0.3 * sin(1.0 + i * t));
        assert_int_equal(o->ops->step(o, w, g, (float)lr, NULL), 0);
        for (int i = 0; i < N; i++) {
            M[i] = 0.9 * M[i] + 0.1 * g[i];
            V[i] = 0.999 * V[i] + 0.001 * (double)g[i] * g[i];
            double mh = M[i] / (1 - pow(0.9, t)), vh = V[i] / (1 - pow(0.999, t));
            W[i] -= lr * (mh / (sqrt(vh) + 1e-8) + 0.01 * W[i]);
        }
    }
    for (int i = 0; i < N; i++)
        assert_true(fabs(w[i] - W[i]) < 1e-6);
    assert_int_equal(o->ops->state_bytes(o), 3 * 8 + 2 * N * 4);

    /* LISA: only "in" and "head" train; the middle group's weights stay bit for bit and, under
     * RESET, its state goes */
    uint8_t active[3] = {1, 0, 1};
    float before[N], g[N];
    memcpy(before, w, sizeof w);
    for (int i = 0; i < N; i++)
        g[i] = 1.0f;
    o->ops->step(o, w, g, (float)lr, active);
    assert_memory_equal(w + 2, before + 2, 3 * sizeof(float));
    assert_true(w[0] != before[0] && w[6] != before[6]);
    assert_int_equal(o->ops->state_bytes(o), 3 * 8 + 2 * 4 * 4); /* 4 values hold moments */
    /* its next turn restarts the bias correction: Adam's first step moves each weight by
     * lr * g / (|g| + eps) ~ lr (with weight decay on top), whatever the history */
    uint8_t mid[3] = {0, 1, 0};
    memcpy(before, w, sizeof w);
    for (int i = 0; i < N; i++)
        g[i] = (float)(i + 1);
    o->ops->step(o, w, g, (float)lr, mid);
    for (int i = 2; i < 5; i++) {
        double want = before[i] * (1 - lr * 0.01) - lr * g[i] / (fabs(g[i]) + 1e-8);
        assert_true(fabs(w[i] - want) < 1e-6);
    }
    /* save and load: a fresh optimizer continues identically */
    size_t bytes = o->ops->state_bytes(o);
    unsigned char *buf = malloc(bytes);
    o->ops->state_save(o, buf);
    px_optimizer *p;
    assert_int_equal(px_optimizer_create(&p, "adamw", &spec, N, groups, 3), PX_OK);
    assert_int_equal(p->ops->state_load(p, buf, bytes - 1), PX_EINVAL);
    assert_int_equal(p->ops->state_load(p, buf, bytes), PX_OK);
    float w2[N];
    memcpy(w2, w, sizeof w);
    o->ops->step(o, w, g, (float)lr, NULL);
    p->ops->step(p, w2, g, (float)lr, NULL);
    assert_memory_equal(w, w2, sizeof w);
    free(buf);
    px_optimizer_destroy(p);
    px_optimizer_destroy(o);

    /* KEEP: a frozen group keeps its moments */
    spec.keep_frozen_state = 1;
    assert_int_equal(px_optimizer_create(&o, "adamw", &spec, N, groups, 3), PX_OK);
    o->ops->step(o, w, g, (float)lr, NULL);
    o->ops->step(o, w, g, (float)lr, active);
    assert_int_equal(o->ops->state_bytes(o), 3 * 8 + 2 * N * 4);
    px_optimizer_destroy(o);
    /* bad hyper-parameters are refused, naming them */
    spec.beta2 = 1.0f;
    assert_int_equal(px_optimizer_create(&o, "adamw", &spec, N, groups, 3), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "beta1 and beta2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum_weight_decay),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_registry_and_state),
        cmocka_unit_test(test_adamw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
