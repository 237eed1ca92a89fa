/* test_byzantine.c - fault injection: ALIE's z and the normal quantile, each gradient attack
 * against a hand computation on small inputs, the Byzantine set, label flipping, the message
 * faults, the workers limit, and the optimizer's guard against an overflowing update. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "comm/wire.h"
#include "faults/byzantine.h"
#include "runtime/nn/optimizer.h"

static px_byz_spec spec(px_attack a, uint32_t n, uint32_t count)
{
    px_byz_spec s;
    px_byz_spec_default(&s, n);
    s.attack = a;
    s.omniscient = 1;
    s.n = n;
    s.count = count;
    s.tau = 10;
    s.sigma = 1;
    s.scale = 10;
    s.omission_prob = 0.5f;
    s.large_value = 1e38f;
    s.corrupt_bytes = 8;
    s.delay_ms = 250;
    s.seed = 7;
    return s;
}

static void test_normal_quantile(void **state)
{
    (void)state;
    /* reference values of Phi^-1 (tables; e.g. 1.959963984540054 for 0.975) */
    assert_float_equal(px_normal_quantile(0.5), 0.0, 1e-15);
    assert_float_equal(px_normal_quantile(0.975), 1.959963984540054, 1e-12);
    assert_float_equal(px_normal_quantile(0.6), 0.2533471031357997, 1e-12);
    assert_float_equal(px_normal_quantile(0.8413447460685429), 1.0, 1e-12);
    assert_float_equal(px_normal_quantile(1e-10), -6.361340902404056, 1e-9);
    /* and the defining property, Phi(Phi^-1(p)) = p, with Phi from erfc */
    for (double p = 0.001; p < 1; p += 0.0371)
        assert_float_equal(0.5 * erfc(-px_normal_quantile(p) / sqrt(2.0)), p, 1e-13);
}

static void test_alie_z(void **state)
{
    (void)state;
    /* n = 15, f = 3: s = floor(8.5) - 3 = 5, z = Phi^-1((15 - 3 - 5) / 12) = Phi^-1(7/12) */
    double z = px_alie_z(15, 3);
    assert_float_equal(0.5 * erfc(-z / sqrt(2.0)), 7.0 / 12.0, 1e-13);
    assert_float_equal(z, 0.2104283942, 1e-9);
    /* n = 7, f = 2: s = floor(4.5) - 2 = 2, z = Phi^-1(3/5) */
    assert_float_equal(px_alie_z(7, 2), 0.2533471031357997, 1e-12);
    /* n = 50, f = 24 (the paper's largest minority): s = 2, z = Phi^-1(24/26) */
    assert_float_equal(0.5 * erfc(-px_alie_z(50, 24) / sqrt(2.0)), 24.0 / 26.0, 1e-13);
}

/* 4 workers, d = 3: workers 0..3 send rows; the Byzantine set is chosen by the seed, so the
 * test reads it and computes the expected vector from the honest rows by hand */
static void check_server_attack(px_attack a, void (*expect)(const float honest[][3], int k,
                                                            const float *own, float *want))
{
    enum { N = 4, D = 3 };
    px_byz_spec s = spec(a, N, 1);
    px_byz_server b;
    assert_int_equal(px_byz_server_create(&b, &s, D, 0, NULL), PX_OK);
    float rows[N * D] = {1, 2, 3, 3, 2, 1, 5, -4, 0, -1, 0, 2};
    float original[N * D];
    memcpy(original, rows, sizeof rows);
    uint8_t have[N] = {1, 1, 1, 1}, is_byz[N];
    px_byz_members(&s, 0, is_byz);
    int byz = -1, k = 0;
    float honest[N][D];
    for (int w = 0; w < N; w++) {
        if (is_byz[w])
            byz = w;
        else
            memcpy(honest[k++], original + w * D, sizeof honest[0]);
    }
    assert_true(byz >= 0 && k == 3);
    assert_int_equal(px_byz_server_apply(&b, 0, rows, have), 1);
    float want[D];
    expect(honest, k, original + byz * D, want);
    for (int c = 0; c < D; c++)
        assert_float_equal(rows[byz * D + c], want[c], 1e-5);
    /* honest rows untouched */
    for (int w = 0; w < N; w++)
        if (w != byz) assert_memory_equal(rows + w * D, original + w * D, D * sizeof(float));
    px_byz_server_free(&b);
}

static void mean3(const float h[][3], int k, float *m)
{
    for (int c = 0; c < 3; c++) {
        m[c] = 0;
        for (int i = 0; i < k; i++)
            m[c] += h[i][c] / k;
    }
}
static void want_sign_flip(const float h[][3], int k, const float *own, float *w)
{
    mean3(h, k, w);
    for (int c = 0; c < 3; c++)
        w[c] = -w[c];
}
static void want_ipm(const float h[][3], int k, const float *own, float *w)
{
    mean3(h, k, w);
    for (int c = 0; c < 3; c++)
        w[c] *= -10.0f;
}
static void want_alie(const float h[][3], int k, const float *own, float *w)
{
    /* z for n = 4, f = 1: s = floor(3) - 1 = 2, z = Phi^-1((4 - 1 - 2)/3) = Phi^-1(1/3) */
    double z = -0.4307272992954576;
    float m[3];
    mean3(h, k, m);
    for (int c = 0; c < 3; c++) {
        double v = 0;
        for (int i = 0; i < k; i++)
            v += (h[i][c] - m[c]) * (h[i][c] - m[c]);
        w[c] = (float)(m[c] + z * sqrt(v / (k - 1)));
    }
}
static void want_reverse(const float h[][3], int k, const float *own, float *w)
{
    for (int c = 0; c < 3; c++)
        w[c] = -10.0f * own[c];
}
static void want_zero(const float h[][3], int k, const float *own, float *w)
{
    for (int c = 0; c < 3; c++)
        w[c] = 0;
}
static void want_large(const float h[][3], int k, const float *own, float *w)
{
    for (int c = 0; c < 3; c++)
        w[c] = 1e38f;
}

static void test_server_attacks(void **state)
{
    (void)state;
    check_server_attack(PX_ATTACK_SIGN_FLIP, want_sign_flip);
    check_server_attack(PX_ATTACK_IPM, want_ipm);
    check_server_attack(PX_ATTACK_ALIE, want_alie);
    check_server_attack(PX_ATTACK_REVERSE, want_reverse);
    check_server_attack(PX_ATTACK_ZERO, want_zero);
    check_server_attack(PX_ATTACK_LARGE, want_large);
}

static void test_mimic_nan_inf_gaussian(void **state)
{
    (void)state;
    enum { N = 5, D = 20000 };
    float *rows = malloc(N * D * sizeof(float));
    uint8_t have[N], is_byz[N];
    for (px_attack a = PX_ATTACK_MIMIC; a <= PX_ATTACK_INF; a++) {
        if (a == PX_ATTACK_ZERO) continue;
        px_byz_spec s = spec(a == PX_ATTACK_MIMIC ? a : a, N, 2);
        s.mimic_target = 0;
        px_byz_members(&s, 3, is_byz);
        if (is_byz[0]) s.mimic_target = is_byz[1] ? 2 : 1;
        px_byz_server b;
        assert_int_equal(px_byz_server_create(&b, &s, D, 0, NULL), PX_OK);
        for (int i = 0; i < N * D; i++)
            rows[i] = (float)(i % 97) * 0.01f;
        memset(have, 1, N);
        assert_int_equal(px_byz_server_apply(&b, 3, rows, have), 2);
        for (int w = 0; w < N; w++) {
            if (!is_byz[w]) continue;
            const float *x = rows + w * D;
            if (a == PX_ATTACK_MIMIC)
                assert_memory_equal(x, rows + s.mimic_target * D, D * sizeof(float));
            if (a == PX_ATTACK_NAN) assert_true(isnan(x[0]) && isnan(x[D - 1]));
            if (a == PX_ATTACK_INF) assert_true(isinf(x[0]) && x[D / 2] > 0);
        }
        px_byz_server_free(&b);
    }
    /* Gaussian: N(0, sigma^2) per coordinate, reproducible */
    px_byz_spec s = spec(PX_ATTACK_GAUSSIAN, N, 1);
    s.sigma = 3.0f;
    float *g = malloc(D * sizeof(float)), *g2 = malloc(D * sizeof(float));
    px_byz_local_gradient(&s, 2, 9, g, D);
    px_byz_local_gradient(&s, 2, 9, g2, D);
    assert_memory_equal(g, g2, D * sizeof(float));
    double m = 0, v = 0;
    for (int i = 0; i < D; i++)
        m += g[i];
    m /= D;
    for (int i = 0; i < D; i++)
        v += (g[i] - m) * (g[i] - m);
    v /= D - 1;
    /* standard errors: mean 3/sqrt(20000) = 0.021, variance 9*sqrt(2/20000) = 0.09 */
    assert_true(fabs(m) < 5 * 0.0213);
    assert_true(fabs(v - 9.0) < 5 * 0.09);
    px_byz_local_gradient(&s, 2, 10, g2, D); /* another step, other noise */
    assert_memory_not_equal(g, g2, D * sizeof(float));
    free(g);
    free(g2);
    free(rows);
}

static void test_local_attacks(void **state)
{
    (void)state;
    float g[4] = {1, -2, 0.5f, 0};
    px_byz_spec s = spec(PX_ATTACK_REVERSE, 5, 1);
    s.omniscient = 0;
    px_byz_local_gradient(&s, 0, 0, g, 4);
    assert_float_equal(g[0], -10, 0);
    assert_float_equal(g[1], 20, 0);
    s.attack = PX_ATTACK_SIGN_FLIP;
    px_byz_local_gradient(&s, 0, 0, g, 4);
    assert_float_equal(g[0], 10, 0);
    s.attack = PX_ATTACK_IPM;
    s.tau = 0.1f;
    px_byz_local_gradient(&s, 0, 0, g, 4);
    assert_float_equal(g[0], -1, 1e-6);
    /* ALIE and MIMIC need the honest gradients: refused in LOCAL mode */
    s.attack = PX_ATTACK_ALIE;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "OMNISCIENT"));
}

static void test_byzantine_set(void **state)
{
    (void)state;
    px_byz_spec s = spec(PX_ATTACK_IPM, 15, 3);
    uint8_t a[15], b[15];
    px_byz_members(&s, 0, a);
    int count = 0;
    for (int w = 0; w < 15; w++) {
        count += a[w];
        assert_int_equal(a[w], px_byz_is_member(&s, w, 0));
    }
    assert_int_equal(count, 3);
    /* fixed: the same set at every step */
    px_byz_members(&s, 123, b);
    assert_memory_equal(a, b, 15);
    /* rotating: reproducible per step, and not always the same set */
    s.rotate = 1;
    int differs = 0;
    for (uint32_t step = 0; step < 20; step++) {
        px_byz_members(&s, step, a);
        px_byz_members(&s, step, b);
        assert_memory_equal(a, b, 15);
        uint8_t c[15];
        px_byz_members(&s, step + 1, c);
        differs += memcmp(a, c, 15) != 0;
    }
    assert_true(differs >= 15);
    /* another seed, another set; start_step delays the attack */
    s.rotate = 0;
    s.seed = 8;
    px_byz_members(&s, 0, b);
    s.seed = 7;
    px_byz_members(&s, 0, a);
    assert_memory_not_equal(a, b, 15);
    s.start_step = 10;
    px_byz_members(&s, 9, a);
    for (int w = 0; w < 15; w++)
        assert_int_equal(a[w], 0);
    s.count = 16;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "byzantine.count = 16"));
}

/* The workers limit is base/limits.h's: a spec of PX_MAX_WORKERS workers draws its set over all
 * of them (membership agrees with the set, the server side sizes its buffers from n), and one
 * more worker is refused by px_byz_check and px_byz_server_create, naming the value. */
static void test_workers_limit(void **state)
{
    (void)state;
    const uint32_t n = PX_MAX_WORKERS;
    px_byz_spec s = spec(PX_ATTACK_SIGN_FLIP, n, n / 2);
    assert_int_equal(px_byz_check(&s), PX_OK);
    uint8_t *is_byz = malloc(n), *have = malloc(n);
    px_byz_members(&s, 0, is_byz);
    uint32_t count = 0, top = 0;
    for (uint32_t w = 0; w < n; w++) {
        count += is_byz[w];
        if (is_byz[w]) top = w;
        if (is_byz[w] != px_byz_is_member(&s, w, 0)) fail_msg("worker %u: membership differs", w);
    }
    assert_int_equal(count, n / 2);
    assert_true(top >= n - 16); /* 2048 of 4096 drawn: the last 16 all honest has odds 2^-16 */
    assert_int_equal(px_byz_is_member(&s, n, 0), 0);
    /* the server side: n rows of d = 2, every honest row (1, 2): the attack writes -mean */
    enum { D = 2 };
    float *rows = malloc((size_t)n * D * sizeof(float));
    for (uint32_t w = 0; w < n; w++) {
        rows[w * D] = 1;
        rows[w * D + 1] = 2;
        have[w] = 1;
    }
    px_byz_server b;
    assert_int_equal(px_byz_server_create(&b, &s, D, 0, NULL), PX_OK);
    assert_int_equal(px_byz_server_apply(&b, 0, rows, have), n / 2);
    for (uint32_t w = 0; w < n; w++) {
        float want = is_byz[w] ? -1.0f : 1.0f;
        if (rows[w * D] != want) fail_msg("row %u: %g, expected %g", w, rows[w * D], want);
    }
    px_byz_server_free(&b);
    /* one more worker is refused */
    s.n = n + 1;
    char message[128];
    snprintf(message, sizeof message, "cluster.workers = %u must be in [1, %u]", n + 1, n);
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), message));
    assert_int_equal(px_byz_server_create(&b, &s, D, 0, NULL), PX_EINVAL);
    assert_null(b.is_byz);
    s.n = 0;
    assert_int_equal(px_byz_check(&s), PX_EINVAL);
    free(rows);
    free(have);
    free(is_byz);
}

static void test_label_flip(void **state)
{
    (void)state;
    uint8_t y[5] = {0, 3, 9, 4, 5};
    px_byz_flip_labels(y, 5, 10);
    uint8_t want[5] = {9, 6, 0, 5, 4};
    assert_memory_equal(y, want, 5);
}

static void test_message_faults(void **state)
{
    (void)state;
    enum { D = 64 };
    unsigned char msg[PX_WIRE_HEADER_BYTES + D * 4], copy[sizeof msg];
    px_msg_header h = {.kind = PX_MSG_GRADIENT, .step = 12, .worker = 1, .elem_count = D};
    for (int i = 0; i < D; i++)
        ((float *)(msg + PX_WIRE_HEADER_BYTES))[i] = (float)i;
    px_wire_seal(msg, &h, D * 4);
    memcpy(copy, msg, sizeof msg);
    px_msg_header got;

    px_byz_spec s = spec(PX_ATTACK_CORRUPT, 3, 1);
    assert_int_equal(px_byz_tamper(&s, 1, 12, PX_WIRE_HEADER_BYTES, msg, sizeof msg), sizeof msg);
    int changed = 0;
    for (size_t i = 0; i < sizeof msg; i++)
        changed += msg[i] != copy[i];
    assert_true(changed >= 1 && changed <= 8);
    assert_int_not_equal(px_wire_open(msg, sizeof msg, &got), PX_DROP_NONE);

    memcpy(msg, copy, sizeof msg);
    s.attack = PX_ATTACK_WRONG_LENGTH;
    size_t len = px_byz_tamper(&s, 1, 12, PX_WIRE_HEADER_BYTES, msg, sizeof msg);
    assert_int_equal(len, sizeof msg - 4);
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_LENGTH);

    /* WRONG_STEP leaves the bytes alone; the plan tells the sender to seal the previous step */
    s.attack = PX_ATTACK_WRONG_STEP;
    memcpy(msg, copy, sizeof msg);
    assert_int_equal(px_byz_tamper(&s, 1, 12, PX_WIRE_HEADER_BYTES, msg, sizeof msg), sizeof msg);
    assert_memory_equal(msg, copy, sizeof msg);
    assert_int_equal(px_byz_plan_send(&s, 1, 12).step_back, 1);

    s.attack = PX_ATTACK_GARBAGE;
    px_byz_tamper(&s, 1, 12, PX_WIRE_HEADER_BYTES, msg, sizeof msg);
    assert_int_not_equal(px_wire_open(msg, sizeof msg, &got), PX_DROP_NONE);

    s.attack = PX_ATTACK_CRASH;
    s.crash_step = 5;
    assert_int_equal(px_byz_plan_send(&s, 0, 4).send, 1);
    assert_int_equal(px_byz_plan_send(&s, 0, 5).send, 0);
    assert_int_equal(px_byz_plan_send(&s, 0, 500).send, 0);

    s.attack = PX_ATTACK_STRAGGLER;
    assert_float_equal(px_byz_plan_send(&s, 0, 3).delay_ms, 250, 0);

    /* omission: skips with probability p (binomial: 10000 draws, sd 50) */
    s.attack = PX_ATTACK_OMISSION;
    s.omission_prob = 0.3f;
    int skipped = 0;
    for (uint32_t step = 0; step < 10000; step++)
        skipped += !px_byz_plan_send(&s, 2, step).send;
    assert_true(abs(skipped - 3000) < 250);
}

static void test_sgd_refuses_overflow(void **state)
{
    (void)state;
    px_sgd o;
    assert_int_equal(px_sgd_create(&o, 4, 0.9f, 0.0f, 0), PX_OK);
    float w[4] = {1, 2, 3, 4}, g[4] = {1, INFINITY, NAN, 3e38f};
    /* lr 10: 3e38 * 10 overflows */
    assert_int_equal(px_sgd_step(&o, w, g, 10.0f), 3);
    assert_float_equal(w[0], 1 - 10.0f, 1e-6);
    assert_float_equal(w[1], 2, 0);
    assert_float_equal(w[2], 3, 0);
    assert_float_equal(w[3], 4, 0);
    for (int i = 1; i < 4; i++)
        assert_float_equal(o.velocity[i], 0, 0);
    px_sgd_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_quantile),      cmocka_unit_test(test_alie_z),
        cmocka_unit_test(test_server_attacks),       cmocka_unit_test(test_mimic_nan_inf_gaussian),
        cmocka_unit_test(test_local_attacks),        cmocka_unit_test(test_byzantine_set),
        cmocka_unit_test(test_label_flip),           cmocka_unit_test(test_message_faults),
        cmocka_unit_test(test_sgd_refuses_overflow), cmocka_unit_test(test_workers_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
