// cuda_internal.cuh - inside runtime/nn's CUDA files: the context behind px_nn_cuda, the cuBLAS
// check, launch sizes and the block reductions the row-wise kernels share.
#ifndef PX_NN_CUDA_INTERNAL_CUH
#define PX_NN_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "base/cublas_check.h"
#include "runtime/nn/layers_cuda.h"

struct px_nn_cuda {
    cudaStream_t stream;
    cublasHandle_t blas;
    unsigned long long *refused; // device counter of the optimizers' refused elements
};


#define PX_NN_THREADS 256

// Blocks for n independent elements at PX_NN_THREADS each (kernels loop over a grid stride
// beyond 65535 * 8 blocks, so any n fits).
static inline unsigned px_nn_blocks(size_t n)
{
    size_t b = (n + PX_NN_THREADS - 1) / PX_NN_THREADS;
    if (b == 0) b = 1;
    return (unsigned)(b < 65535u * 8u ? b : 65535u * 8u);
}

#define PX_NN_FOR(i, n)                                                                            \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

// Sum of one double per thread over a block of PX_NN_THREADS threads; every thread gets it.
// `shared` holds PX_NN_THREADS / 32 doubles.
__device__ static inline double px_nn_block_sum(double x, double *shared)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xFFFFFFFFu, x, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    double t = 0;
    for (int w = 0; w < (int)(blockDim.x / 32); w++)
        t += shared[w];
    return t;
}

// Largest of one float per thread over the block (NaN handling as px_lm: a NaN may or may not
// win; it reaches the result through the exps anyway).
__device__ static inline float px_nn_block_max(float x, float *shared)
{
    for (int o = 16; o > 0; o >>= 1) {
        float y = __shfl_xor_sync(0xFFFFFFFFu, x, o);
        x = y > x ? y : x;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    float m = shared[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++)
        m = shared[w] > m ? shared[w] : m;
    return m;
}

#endif
