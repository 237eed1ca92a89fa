/* device_cuda.c - the CUDA backend of the device interface (built with PX_HAVE_CUDA): device
 * memory from cudaMalloc, page-locked host memory, streams and events of the CUDA runtime. One
 * device per process is the intended use (a rank binds the GPU of its node-local rank), but
 * every handle remembers its ordinal, so nothing here assumes GPU 0. */
#include <stdio.h>

#include "base/cuda_check.h"
#include "base/device_impl.h"

px_status px__cuda_error(cudaError_t err, const char *call, const char *file, int line)
{
    /* the errors that mean "no usable GPU here": a clear refusal, not a run-time failure */
    int unusable = err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
                   err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDevice ||
                   err == cudaErrorDevicesUnavailable || err == cudaErrorSystemDriverMismatch ||
                   err == cudaErrorCompatNotSupportedOnDevice;
    return px_error(unusable ? PX_ENOTSUP : PX_ERUNTIME, "%s:%d: %s: %s (%s)", file, line, call,
                    cudaGetErrorName(err), cudaGetErrorString(err));
}

static px_status px__cuda_count(int *count)
{
    *count = 0;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) /* no driver, no device: the runtime's reason, as it is */
        return px_error(PX_ENOTSUP,
                        "device: no usable CUDA device on this machine: cudaGetDeviceCount: %s "
                        "(%s)",
                        cudaGetErrorName(err), cudaGetErrorString(err));
    if (n == 0)
        return px_error(PX_ENOTSUP, "device: no usable CUDA device on this machine (the runtime "
                                    "reports 0 devices)");
    *count = n;
    return PX_OK;
}

static px_status px__cuda_bind(px_device *d)
{
    PX_CUDA_CHECK(cudaSetDevice(d->ordinal));
    return PX_OK;
}

static px_status px__cuda_open(px_device *d, int ordinal)
{
    PX_CHECK(px__cuda_bind(d));
    struct cudaDeviceProp p;
    PX_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
    /* the build holds code for compute capability 8.0 and 9.0 (and PTX of 9.0): older GPUs
     * cannot run it, and a kernel launch would fail far from here */
    if (p.major < 8)
        return px_error(PX_ENOTSUP,
                        "device: cuda:%d (%s) has compute capability %d.%d; this build needs "
                        "8.0 or later",
                        ordinal, p.name, p.major, p.minor);
    snprintf(d->name, sizeof d->name, "%.100s (cuda:%d, sm_%d%d, %.1f GiB)", p.name, ordinal,
             p.major, p.minor, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return PX_OK;
}

static void px__cuda_close(px_device *d)
{
    /* errors of work that ran before are the caller's to have checked; close never fails */
    if (cudaSetDevice(d->ordinal) == cudaSuccess) (void)cudaDeviceSynchronize();
}

static px_status px__cuda_alloc(px_device *d, size_t bytes, void **ptr)
{
    (void)d;
    PX_CUDA_CHECK(cudaMalloc(ptr, bytes ? bytes : 1));
    return PX_OK;
}

static void px__cuda_free(px_device *d, void *ptr)
{
    (void)d;
    (void)cudaFree(ptr);
}

static px_status px__cuda_alloc_host(px_device *d, size_t bytes, void **ptr)
{
    (void)d;
    PX_CUDA_CHECK(cudaMallocHost(ptr, bytes ? bytes : 1));
    return PX_OK;
}

static void px__cuda_free_host(px_device *d, void *ptr)
{
    (void)d;
    (void)cudaFreeHost(ptr);
}

static px_status px__cuda_copy(px_device *d, void *dst, const void *src, size_t bytes,
                               px_copy_dir dir, void *stream)
{
    (void)d;
    enum cudaMemcpyKind kind = dir == PX_COPY_H2D   ? cudaMemcpyHostToDevice
                               : dir == PX_COPY_D2H ? cudaMemcpyDeviceToHost
                                                    : cudaMemcpyDeviceToDevice;
    PX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, (cudaStream_t)stream));
    return PX_OK;
}

static px_status px__cuda_zero(px_device *d, void *ptr, size_t bytes, void *stream)
{
    (void)d;
    PX_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, (cudaStream_t)stream));
    return PX_OK;
}

static px_status px__cuda_sync(px_device *d)
{
    PX_CHECK(px__cuda_bind(d));
    PX_CUDA_CHECK(cudaDeviceSynchronize());
    return PX_OK;
}

static px_status px__cuda_stream_create(px_device *d, void **native)
{
    PX_CHECK(px__cuda_bind(d));
    cudaStream_t s;
    /* non-blocking: no implicit synchronisation with the legacy default stream */
    PX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *native = s;
    return PX_OK;
}

static void px__cuda_stream_destroy(void *native)
{
    (void)cudaStreamDestroy((cudaStream_t)native);
}

static px_status px__cuda_stream_sync(void *native)
{
    PX_CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)native));
    return PX_OK;
}

static px_status px__cuda_event_create(px_device *d, void **native)
{
    PX_CHECK(px__cuda_bind(d));
    cudaEvent_t e;
    PX_CUDA_CHECK(cudaEventCreate(&e));
    *native = e;
    return PX_OK;
}

static void px__cuda_event_destroy(void *native)
{
    (void)cudaEventDestroy((cudaEvent_t)native);
}

static px_status px__cuda_event_record(void *event, void *stream, double *t_ms)
{
    *t_ms = 0.0; /* the device keeps the time */
    PX_CUDA_CHECK(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream));
    return PX_OK;
}

static px_status px__cuda_stream_wait(void *stream, void *event)
{
    PX_CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)event, 0));
    return PX_OK;
}

static px_status px__cuda_event_sync(void *event)
{
    PX_CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)event));
    return PX_OK;
}

static px_status px__cuda_event_elapsed(void *start, double start_ms, void *end, double end_ms,
                                        float *ms)
{
    (void)start_ms, (void)end_ms;
    PX_CUDA_CHECK(cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end));
    return PX_OK;
}

const px__device_ops px__device_cuda_ops = {
    .kind = PX_DEVICE_CUDA,
    .count = px__cuda_count,
    .open = px__cuda_open,
    .close = px__cuda_close,
    .bind_thread = px__cuda_bind,
    .alloc = px__cuda_alloc,
    .free = px__cuda_free,
    .alloc_host = px__cuda_alloc_host,
    .free_host = px__cuda_free_host,
    .copy = px__cuda_copy,
    .zero = px__cuda_zero,
    .sync = px__cuda_sync,
    .stream_create = px__cuda_stream_create,
    .stream_destroy = px__cuda_stream_destroy,
    .stream_sync = px__cuda_stream_sync,
    .event_create = px__cuda_event_create,
    .event_destroy = px__cuda_event_destroy,
    .event_record = px__cuda_event_record,
    .stream_wait = px__cuda_stream_wait,
    .event_sync = px__cuda_event_sync,
    .event_elapsed = px__cuda_event_elapsed,
};
