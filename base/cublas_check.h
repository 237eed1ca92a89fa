/* cublas_check.h - the check of every cuBLAS call, for the CUDA files that use cuBLAS
 * (runtime/nn, aggregators): a failing call returns PX_ERUNTIME naming the call, the file and
 * line, and cuBLAS's status, as PX_CUDA_CHECK does for the runtime (base/cuda_check.h). Header
 * only: base/ itself does not link cuBLAS. */
#ifndef PX_CUBLAS_CHECK_H
#define PX_CUBLAS_CHECK_H

#include <cublas_v2.h>

#include "base/cuda_check.h"

#define PX_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        cublasStatus_t px__bs = (call);                                                            \
        if (px__bs != CUBLAS_STATUS_SUCCESS)                                                       \
            return px_error(PX_ERUNTIME, "%s:%d: %s: %s", __FILE__, __LINE__, #call,              \
                            cublasGetStatusString(px__bs));                                        \
    } while (0)

/* A cuBLAS handle whose work goes to `stream`; *blas stays NULL on failure. */
static inline px_status px_cublas_create(cublasHandle_t *blas, cudaStream_t stream)
{
    *blas = NULL;
    cublasHandle_t h;
    PX_CUBLAS_CHECK(cublasCreate(&h));
    cublasStatus_t bs = cublasSetStream(h, stream);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        return px_error(PX_ERUNTIME, "%s:%d: cublasSetStream: %s", __FILE__, __LINE__,
                        cublasGetStatusString(bs));
    }
    *blas = h;
    return PX_OK;
}

#endif
