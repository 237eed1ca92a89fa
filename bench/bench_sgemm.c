/* bench_sgemm.c - the sgemm rate of this machine (OpenBLAS), for the GEMM floor of bench/step.
 *   bench_sgemm THREADS [M N K]    prints one line: threads=T m=M n=N k=K gflops=G
 * Default shape: the largest product of the MLP step at batch 64 taken to its best case, a
 * square 2048 problem (the machine's peak), so that the floor is a true lower bound. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int m = argc > 4 ? atoi(argv[2]) : 2048, n = argc > 4 ? atoi(argv[3]) : 2048,
        k = argc > 4 ? atoi(argv[4]) : 2048;
    openblas_set_num_threads(threads);
    float *a = px_alloc((size_t)m * k * sizeof(float), "A");
    float *b = px_alloc((size_t)k * n * sizeof(float), "B");
    float *c = px_alloc((size_t)m * n * sizeof(float), "C");
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double flop = 2.0 * m * n * k, best = 1e30;
    int reps = 0;
    double t_all = px_now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    while (reps < 5 || (px_now_ms() - t_all < 1500 && reps < 200)) {
        double t0 = px_now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        double ms = px_now_ms() - t0;
        if (ms < best) best = ms;
        reps++;
    }
    printf("threads=%d m=%d n=%d k=%d gflops=%.1f\n", threads, m, n, k, flop / best / 1e6);
    px_free(a);
    px_free(b);
    px_free(c);
    return 0;
}
