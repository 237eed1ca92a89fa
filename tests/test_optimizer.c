/* test_optimizer.c - SGD with momentum, Nesterov and weight decay against hand-computed steps
 * (torch.optim.SGD semantics), and the learning-rate schedules at known points. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    assert_int_equal(px_optimizer_create(&a, "adagrad", &spec, N), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "optimizer.kind \"adagrad\""));
    assert_int_equal(px_optimizer_create(&a, "sgd", &spec, N), PX_OK);
    assert_int_equal(px_optimizer_create(&b, "sgd", &spec, N), PX_OK);
    assert_int_equal(px_optimizer_create(&c, "sgd", &spec, N), PX_OK);
    assert_string_equal(a->kind, "sgd");
    float wa[N] = {1, 2, 3, 4, 5, 6}, wb[N], wc[N] = {1, 2, 3, 4, 5, 6}, g[N];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)(i - k) * 0.5f;
        a->ops->step(a, wa, g, 0.1f);
        c->ops->step(c, wc, g, 0.1f);
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
        b->ops->step(b, wb, g, 0.1f);
        c->ops->step(c, wc, g, 0.1f);
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
    assert_int_equal(px_optimizer_create(&a, "sgd", &spec, N), PX_OK);
    assert_int_equal(a->ops->state_bytes(a), 0);
    assert_int_equal(a->ops->state_load(a, buf, 0), PX_OK);
    px_optimizer_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum_weight_decay),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_registry_and_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
