// gram_cuda.cu - the Gram matrix of n gradients on the GPU (see aggregators_cuda.h): chunks of
// columns converted to double, each added to G by a DSYRK (G += Xc Xc^T), then G copied to the
// host. Double throughout, as the CPU's Gram pass accumulates in double (STYLE.md: anything
// n x n accumulates in double); the chunk bounds the scratch to n_max x chunk doubles.
#include "aggregators/aggregators_cuda.h"
#include "aggregators/cuda_internal.cuh"

// xd (n, w) = X[:, c0 .. c0 + w) in double, row-major with leading dimension w
__global__ static void px__k_to_double(double *xd, const float *X, size_t ld, size_t n, size_t c0,
                                       size_t w)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * w;
         i += (size_t)gridDim.x * blockDim.x)
        xd[i] = (double)X[(i / w) * ld + c0 + i % w];
}

// the lower triangle that DSYRK left is mirrored, so G is whole and symmetric
__global__ static void px__k_mirror(double *g, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / n, col = i % n;
        if (col > r) g[i] = g[col * n + r];
    }
}

extern "C" px_status px_agg_gram_cuda(px_agg_cuda *c, const float *X, size_t ld, size_t n,
                                      size_t d, double *G)
{
    if (n == 0) return PX_OK;
    if (n > c->n_max)
        return px_error(PX_EINVAL, "aggregators cuda: %zu gradients, the context holds %zu", n,
                        c->n_max);
    PX_CUDA_CHECK(cudaMemsetAsync(c->gd, 0, n * n * sizeof(double), c->stream));
    const double one = 1.0;
    for (size_t c0 = 0; c0 < d; c0 += c->chunk) {
        size_t w = d - c0 < c->chunk ? d - c0 : c->chunk;
        size_t blocks = (n * w + 255) / 256;
        px__k_to_double<<<(unsigned)(blocks < 65535u * 8u ? blocks : 65535u * 8u), 256, 0,
                          c->stream>>>(c->xd, X, ld, n, c0, w);
        PX_CUDA_CHECK_LAUNCH();
        // row-major xd (n, w) is column-major xd^T (w, n): G = (xd^T)^T (xd^T) is DSYRK with
        // trans = T on the column-major (w x n) matrix; G row-major = column-major (symmetric)
        PX_CUBLAS_CHECK(cublasDsyrk(c->blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_T, (int)n, (int)w,
                                    &one, c->xd, (int)w, &one, c->gd, (int)n));
    }
    // column-major upper = row-major lower: mirror it to the upper half
    px__k_mirror<<<(unsigned)((n * n + 255) / 256), 256, 0, c->stream>>>(c->gd, n);
    PX_CUDA_CHECK_LAUNCH();
    PX_CUDA_CHECK(cudaMemcpyAsync(G, c->gd, n * n * sizeof(double), cudaMemcpyDeviceToHost,
                                  c->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return PX_OK;
}
