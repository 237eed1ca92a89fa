/* test_mlp.c - the MLP: parameter layout, initialisation, and the analytic gradient against
 * central finite differences of an independent double-precision forward pass written here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/nn/mlp.h"
#include "base/rng.h"

/* Oracle: mean softmax cross-entropy of an MLP with ReLU hidden layers, naive loops in double.
 * Layout assumed from the documentation in mlp.h: per layer W (out x in, row-major) then b. */
static double oracle_loss(const size_t *dims, size_t n_linear, const double *p, const float *x,
                          const uint8_t *y, size_t batch, size_t *correct)
{
    double total = 0;
    double a[64] = {0}, z[64] = {0};
    if (correct) *correct = 0;
    for (size_t s = 0; s < batch; s++) {
        for (size_t j = 0; j < dims[0]; j++)
            a[j] = x[s * dims[0] + j];
        const double *q = p;
        for (size_t l = 0; l < n_linear; l++) {
            size_t in = dims[l], out = dims[l + 1];
            const double *W = q, *b = q + in * out;
            for (size_t o = 0; o < out; o++) {
                double v = b[o];
                for (size_t i = 0; i < in; i++)
                    v += W[o * in + i] * a[i];
                z[o] = (l + 1 < n_linear && v < 0) ? 0 : v;
            }
            memcpy(a, z, out * sizeof(double));
            q += in * out + out;
        }
        size_t C = dims[n_linear], best = 0;
        double mx = a[0];
        for (size_t c = 1; c < C; c++)
            if (a[c] > mx) mx = a[c], best = c;
        double se = 0;
        for (size_t c = 0; c < C; c++)
            se += exp(a[c] - mx);
        total += mx + log(se) - a[y[s]];
        if (correct) *correct += best == y[s];
    }
    return total / (double)batch;
}

static void test_layout_and_init(void **state)
{
    (void)state;
    px_mlp m;
    uint32_t hidden[] = {256, 256};
    assert_int_equal(px_mlp_shape(&m, 784, hidden, 2, 10), PX_OK);
    /* 784*256+256 + 256*256+256 + 256*10+10 */
    assert_int_equal(m.n_params, 200960 + 65792 + 2570);
    assert_int_equal(m.table.count, 6);
    size_t off = 0;
    for (size_t i = 0; i < m.table.count; i++) {
        assert_int_equal(m.table.layers[i].offset, off);
        off += m.table.layers[i].size;
    }
    assert_int_equal(off, m.n_params);
    assert_string_equal(m.table.layers[0].name, "fc1.weight");
    assert_string_equal(m.table.layers[5].name, "fc3.bias");

    float *p = malloc(m.n_params * sizeof(float)), *q = malloc(m.n_params * sizeof(float));
    px_mlp_init(&m, p, 42);
    px_mlp_init(&m, q, 42);
    assert_memory_equal(p, q, m.n_params * sizeof(float));
    /* nn.Linear bounds: 1/sqrt(784) for layer 1, 1/sqrt(256) for layers 2 and 3 */
    double max1 = 0, max3 = 0, mean1 = 0;
    for (size_t i = 0; i < 200960; i++) {
        max1 = fmax(max1, fabs(p[i]));
        mean1 += p[i];
    }
    for (size_t i = m.w_off[2]; i < m.n_params; i++)
        max3 = fmax(max3, fabs(p[i]));
    assert_true(max1 <= 1.0 / sqrt(784.0) && max1 > 0.99 / sqrt(784.0));
    assert_true(max3 <= 1.0 / 16.0 && max3 > 0.95 / 16.0);
    assert_true(fabs(mean1 / 200960) < 1e-3);
    px_mlp_init(&m, q, 43);
    assert_memory_not_equal(p, q, m.n_params * sizeof(float));
    free(p);
    free(q);
}

static void check_gradient(const uint32_t *hidden, size_t n_hidden, size_t inputs, size_t classes,
                           size_t batch)
{
    px_mlp m;
    assert_int_equal(px_mlp_shape(&m, inputs, hidden, n_hidden, classes), PX_OK);
    float *p = malloc(m.n_params * sizeof(float)), *g = malloc(m.n_params * sizeof(float));
    double *pd = malloc(m.n_params * sizeof(double));
    px_mlp_init(&m, p, 5);
    px_rng r;
    px_rng_init(&r, 9, 1, 0, 0);
    /* larger weights than the init so that every layer matters */
    for (size_t i = 0; i < m.n_params; i++)
        p[i] *= 3.0f;
    px_mlp_work w;
    assert_int_equal(px_mlp_work_create(&w, &m, batch), PX_OK);
    float *x = px_mlp_input(&w);
    float xcopy[64 * 16];
    uint8_t y[64];
    for (size_t i = 0; i < batch * inputs; i++)
        xcopy[i] = x[i] = (float)px_rng_normal(&r);
    for (size_t i = 0; i < batch; i++)
        y[i] = (uint8_t)px_rng_below(&r, classes);

    float loss = px_mlp_loss_grad(&m, &w, p, y, batch, g);
    for (size_t i = 0; i < m.n_params; i++)
        pd[i] = p[i];
    double want = oracle_loss(m.dims, m.n_linear, pd, xcopy, y, batch, NULL);
    assert_true(fabs(loss - want) < 1e-5 * fmax(1.0, fabs(want)));

    const double h = 1e-5;
    double worst = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        double keep = pd[i];
        pd[i] = keep + h;
        double up = oracle_loss(m.dims, m.n_linear, pd, xcopy, y, batch, NULL);
        pd[i] = keep - h;
        double down = oracle_loss(m.dims, m.n_linear, pd, xcopy, y, batch, NULL);
        pd[i] = keep;
        double fd = (up - down) / (2 * h);
        double err = fabs(fd - g[i]) / fmax(1e-3, fabs(fd) + fabs(g[i]));
        if (err > worst) worst = err;
    }
    /* float32 analytic gradient vs double finite differences */
    assert_true(worst < 2e-3);

    /* evaluation agrees with the oracle's loss and accuracy */
    double loss_sum = 0;
    size_t correct = 0, want_correct;
    memcpy(x, xcopy, batch * inputs * sizeof(float));
    px_mlp_evaluate(&m, &w, p, y, batch, &loss_sum, &correct);
    oracle_loss(m.dims, m.n_linear, pd, xcopy, y, batch, &want_correct);
    assert_int_equal(correct, want_correct);
    assert_true(fabs(loss_sum / batch - want) < 1e-5 * fmax(1.0, fabs(want)));
    px_mlp_work_free(&w);
    free(p);
    free(g);
    free(pd);
}

static void test_gradient_two_hidden(void **state)
{
    (void)state;
    uint32_t hidden[] = {7, 5};
    check_gradient(hidden, 2, 6, 4, 9);
}

static void test_gradient_softmax_regression(void **state)
{
    (void)state;
    check_gradient(NULL, 0, 11, 3, 5);
}

static void test_gradient_three_hidden_batch_one(void **state)
{
    (void)state;
    uint32_t hidden[] = {9, 8, 6};
    check_gradient(hidden, 3, 10, 5, 1);
}

static void test_flops(void **state)
{
    (void)state;
    px_mlp m;
    uint32_t hidden[] = {256, 256};
    px_mlp_shape(&m, 784, hidden, 2, 10);
    /* 2 FLOPs per multiply-add; forward + dW for every layer, dA for layers 2 and 3 */
    double mac = 64.0 * (784 * 256 + 256 * 256 + 256 * 10);
    double mac_da = 64.0 * (256 * 256 + 256 * 10);
    assert_true(fabs(px_mlp_step_flops(&m, 64) - (4 * mac + 2 * mac_da)) < 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_init),
        cmocka_unit_test(test_gradient_two_hidden),
        cmocka_unit_test(test_gradient_softmax_regression),
        cmocka_unit_test(test_gradient_three_hidden_batch_one),
        cmocka_unit_test(test_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
