/* cuda_check.h - the check of every CUDA runtime call (CUDA builds only): a failing call returns
 * a px_status whose message names the call, the file and line, and the runtime's error, in the
 * manner of llm.c's cudaCheck, but returned to the caller instead of exiting. cuBLAS has its
 * own in base/cublas_check.h, NCCL beside its calls in comm/. */
#ifndef PX_CUDA_CHECK_H
#define PX_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Records "FILE:LINE: CALL: cudaErrorName (description)" as PX_ERUNTIME (PX_ENOTSUP for the
 * errors that mean no usable device: no driver, no device, an unsupported architecture). */
px_status px__cuda_error(cudaError_t err, const char *call, const char *file, int line);

#ifdef __cplusplus
}
#endif

#define PX_CUDA_CHECK(call)                                                                        \
    do {                                                                                           \
        cudaError_t px__ce = (call);                                                               \
        if (px__ce != cudaSuccess) return px__cuda_error(px__ce, #call, __FILE__, __LINE__);       \
    } while (0)

#define PX_CUDA_CHECK_GOTO(call, st, label)                                                        \
    do {                                                                                           \
        cudaError_t px__ce = (call);                                                               \
        if (px__ce != cudaSuccess) {                                                               \
            (st) = px__cuda_error(px__ce, #call, __FILE__, __LINE__);                              \
            goto label;                                                                            \
        }                                                                                          \
    } while (0)

/* After a kernel launch: the launch's own error (bad configuration, no kernel image for this
 * GPU), without waiting for the kernel. */
#define PX_CUDA_CHECK_LAUNCH() PX_CUDA_CHECK(cudaGetLastError())

#endif
