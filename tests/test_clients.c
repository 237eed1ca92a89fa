/* test_clients.c - client sampling: m distinct clients in increasing order, the same draw for
 * the same (seed, round) and another for another round or seed, every client equally likely
 * (chi-square over many rounds); FedProx's proximal gradient by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fl/clients.h"

static void test_per_round(void **state)
{
    (void)state;
    assert_int_equal(px_fl_clients_per_round(100, 0.1), 10);
    assert_int_equal(px_fl_clients_per_round(1000, 0.01), 10);
    assert_int_equal(px_fl_clients_per_round(20, 1.0), 20);
    assert_int_equal(px_fl_clients_per_round(20, 0.001), 1); /* at least one */
    assert_int_equal(px_fl_clients_per_round(7, 0.5), 4);    /* 3.5 rounds to 4 */
}

static void test_sampling(void **state)
{
    (void)state;
    enum { K = 50, M = 7, ROUNDS = 20000 };
    uint32_t scratch[K], a[M], b[M];
    px_fl_round_clients(1, 3, K, M, scratch, a);
    px_fl_round_clients(1, 3, K, M, scratch, b);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < M; i++) {
        assert_true(a[i] < K);
        if (i) assert_true(a[i - 1] < a[i]); /* increasing, hence distinct */
    }
    int differ_round = 0, differ_seed = 0;
    for (uint32_t r = 0; r < 50; r++) {
        px_fl_round_clients(1, r, K, M, scratch, a);
        px_fl_round_clients(1, r + 1, K, M, scratch, b);
        differ_round += memcmp(a, b, sizeof a) != 0;
        px_fl_round_clients(2, r, K, M, scratch, b);
        differ_seed += memcmp(a, b, sizeof a) != 0;
    }
    assert_true(differ_round > 45 && differ_seed > 45);
    /* uniform: each client with probability M/K per round; chi-square with K-1 = 49 degrees
     * of freedom, 85.4 is its 0.999 quantile */
    double count[K] = {0};
    for (uint32_t r = 0; r < ROUNDS; r++) {
        px_fl_round_clients(9, r, K, M, scratch, a);
        for (int i = 0; i < M; i++)
            count[a[i]]++;
    }
    double expect = (double)ROUNDS * M / K, chi2 = 0;
    for (int c = 0; c < K; c++)
        chi2 += (count[c] - expect) * (count[c] - expect) / expect;
    assert_true(chi2 < 85.4);
    /* everyone: the identity */
    uint32_t all[K];
    px_fl_round_clients(1, 0, K, K, scratch, all);
    for (uint32_t i = 0; i < K; i++)
        assert_int_equal(all[i], i);
}

static void test_prox(void **state)
{
    (void)state;
    float g[3] = {1, 2, 3}, w[3] = {0.5f, 0, -1}, w0[3] = {0, 0, 1};
    px_fl_prox_grad(g, w, w0, 3, 0.1f);
    assert_true(fabsf(g[0] - 1.05f) < 1e-7f && g[1] == 2.0f && fabsf(g[2] - 2.8f) < 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_round),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_prox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
