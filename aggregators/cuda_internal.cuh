// cuda_internal.cuh - inside aggregators' CUDA files: the context behind px_agg_cuda and the
// cuBLAS check.
#ifndef PX_AGG_CUDA_INTERNAL_CUH
#define PX_AGG_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "base/cublas_check.h"

#define PX_AGG_THREADS 128 // small blocks: each thread holds up to PX_CW_MAX_N values

struct px_agg_cuda {
    cudaStream_t stream;
    cublasHandle_t blas;
    size_t n_max, chunk;
    double *xd; // n_max x chunk: a chunk of columns converted to double
    double *gd; // n_max x n_max: the Gram matrix on the device
};


#endif
