/* device.h - where buffers live and work runs: one interface over a CPU backend (always built)
 * and a CUDA backend (built with the CUDA toolkit, PX_HAVE_CUDA).
 *
 * A px_device owns memory allocations, streams and events of one processor: the CPU (host
 * memory, every operation done when it is called) or one GPU (device memory, operations queued
 * on streams and run in their order). Code above base/ writes one sequence of calls for both:
 * allocate once per run, copy in, run kernels on a stream, record events, copy out, synchronise
 * only where a result is read on the host. The backends sit in a table (base/device_impl.h), as
 * NCCL's transports do, so a new backend is one file and one row.
 *
 * Every call that can fail returns px_status and records the cause (for CUDA the call, file and
 * line, and the runtime's error name). Asking for a backend this build lacks returns
 * PX_ENOTSUP; asking for a GPU on a machine without one returns PX_ENOTSUP with the runtime's
 * reason ("no CUDA-capable device is detected"), never a crash.
 */
#ifndef PX_DEVICE_H
#define PX_DEVICE_H

#include <stddef.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PX_DEVICE_CPU = 0,
    PX_DEVICE_CUDA = 1,
} px_device_kind;

/* Direction of a copy; on the CPU backend every direction is a memcpy. */
typedef enum {
    PX_COPY_H2D = 0, /* host memory -> device memory */
    PX_COPY_D2H = 1, /* device memory -> host memory */
    PX_COPY_D2D = 2, /* device memory -> device memory */
} px_copy_dir;

typedef struct px_device px_device;
typedef struct px_stream px_stream;
typedef struct px_event px_event;

/* "cpu" or "cuda". */
const char *px_device_kind_name(px_device_kind kind);

/* 1 if this build holds the backend of `kind` (the CPU always; CUDA with PX_HAVE_CUDA). */
int px_device_built(px_device_kind kind);

/* Devices of `kind` on this machine, in *count. PX_ENOTSUP (and *count = 0) when the build
 * lacks the backend or the machine has none; the message says which, with the runtime's own
 * reason (no driver, no device), so a caller can pass it on as it is. */
px_status px_device_count(px_device_kind kind, int *count);

/* Opens device number `ordinal` of `kind` (CPU: 0) and makes it the calling thread's current
 * device. Fails with nothing allocated. The caller closes it after freeing what it allocated. */
px_status px_device_open(px_device **out, px_device_kind kind, int ordinal);

/* Waits for the device's queued work, then frees the device handle (not the caller's buffers,
 * streams or events: free those first). NULL is allowed. */
void px_device_close(px_device *d);

px_device_kind px_device_kind_of(const px_device *d);

/* Human-readable name: "cpu", or the GPU's name with its ordinal and compute capability. */
const char *px_device_name(const px_device *d);

/* Makes `d` the calling thread's current device (CUDA: every host thread starts on GPU 0). */
px_status px_device_bind_thread(px_device *d);

/* `bytes` of device memory (CPU: 64-byte aligned host memory), uninitialised. bytes 0 gives a
 * valid pointer that must still be freed. */
px_status px_device_alloc(px_device *d, size_t bytes, void **ptr);
void px_device_free(px_device *d, void *ptr);

/* `bytes` of host memory that the device copies to and from asynchronously (CUDA: page-locked;
 * CPU: ordinary aligned memory). */
px_status px_device_alloc_host(px_device *d, size_t bytes, void **ptr);
void px_device_free_host(px_device *d, void *ptr);

/* Queues on stream s (NULL: the device's default stream) a copy of `bytes` from src to dst in
 * direction dir, or the zeroing of `bytes` at ptr. The copy has happened once the stream has
 * reached it (px_stream_sync, an event): a host buffer must stay unchanged until then (for an
 * asynchronous copy on CUDA it must come from px_device_alloc_host). */
px_status px_device_copy(px_device *d, void *dst, const void *src, size_t bytes, px_copy_dir dir,
                         px_stream *s);
px_status px_device_zero(px_device *d, void *ptr, size_t bytes, px_stream *s);

/* Waits until everything queued on the device, on any stream, has run. */
px_status px_device_sync(px_device *d);

/* A stream: work queued on it runs in order; work on different streams may overlap. */
px_status px_stream_create(px_device *d, px_stream **out);
void px_stream_destroy(px_stream *s);
px_status px_stream_sync(px_stream *s);
/* The backend's own handle, for kernel launches and libraries (CUDA: a cudaStream_t; CPU:
 * NULL). */
void *px_stream_native(const px_stream *s);

/* An event marks a point in a stream: another stream can wait for it without the host
 * waiting, the host can wait for it, and two events time what ran between them. */
px_status px_event_create(px_device *d, px_event **out);
void px_event_destroy(px_event *e);
px_status px_event_record(px_event *e, px_stream *s);
/* Work queued on s after this call starts after the work before e's record. */
px_status px_stream_wait_event(px_stream *s, px_event *e);
px_status px_event_sync(px_event *e);
/* Milliseconds between two recorded events, once both have completed. */
px_status px_event_elapsed_ms(px_event *start, px_event *end, float *ms);

#ifdef __cplusplus
}
#endif

#endif
