// coordwise_cuda.cu - the coordinate-wise rules on the GPU and the context of
// aggregators_cuda.h: one thread per coordinate sorts its n values with px_cw_sort and reduces
// them with coord_math.h, the functions the CPU rules are checked against bit for bit.
#include <stdlib.h>

#include "aggregators/aggregators_cuda.h"
#include "aggregators/cuda_internal.cuh"
#include "aggregators/coord_math.h"

extern "C" px_status px_agg_cuda_create(px_agg_cuda **out, void *stream, size_t n_max,
                                        size_t chunk)
{
    *out = NULL;
    px_agg_cuda *c = (px_agg_cuda *)calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "aggregators cuda: cannot allocate a context");
    px_status st = PX_OK;
    c->stream = (cudaStream_t)stream;
    c->n_max = n_max;
    c->chunk = chunk ? chunk : 1;
    PX_CHECK_GOTO(px_cublas_create(&c->blas, c->stream), st, fail);
    PX_CUDA_CHECK_GOTO(cudaMalloc((void **)&c->xd, n_max * c->chunk * sizeof(double)), st, fail);
    PX_CUDA_CHECK_GOTO(cudaMalloc((void **)&c->gd, n_max * n_max * sizeof(double)), st, fail);
    *out = c;
    return PX_OK;
fail:
    px_agg_cuda_destroy(c);
    return st;
}

extern "C" void px_agg_cuda_destroy(px_agg_cuda *c)
{
    if (!c) return;
    if (c->xd) (void)cudaFree(c->xd);
    if (c->gd) (void)cudaFree(c->gd);
    if (c->blas) (void)cublasDestroy(c->blas);
    free(c);
}

// One thread per coordinate; the n values live in the thread's local array (registers for small
// n). Reads are coalesced: neighbouring threads read neighbouring columns of a row.
__global__ static void px__k_coordwise(int rule, const float *X, size_t ld, size_t n, size_t d,
                                       size_t f, float *out)
{
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < d;
         j += (size_t)gridDim.x * blockDim.x)
        out[j] = px_cw_coordinate((px_cw_rule)rule, X, ld, n, j, f);
}

extern "C" px_status px_agg_coordwise_cuda(px_agg_cuda *c, px_cw_rule rule, const float *X,
                                           size_t ld, size_t n, size_t d, size_t f, float *out)
{
    if (n == 0 || n > PX_CW_MAX_N)
        return px_error(PX_EINVAL, "aggregators cuda: %zu gradients; the coordinate-wise kernels "
                                   "take 1 to %d",
                        n, PX_CW_MAX_N);
    if (rule != PX_CW_MEDIAN && n < 2 * f + 1)
        return px_error(PX_EINVAL, "aggregators cuda: needs n >= 2f+1, got n = %zu with f = %zu",
                        n, f);
    if (d == 0) return PX_OK;
    size_t blocks = (d + PX_AGG_THREADS - 1) / PX_AGG_THREADS;
    if (blocks > 65535u * 8u) blocks = 65535u * 8u;
    px__k_coordwise<<<(unsigned)blocks, PX_AGG_THREADS, 0, c->stream>>>((int)rule, X, ld, n, d, f,
                                                                        out);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}
