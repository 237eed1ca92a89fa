/* device_impl.h - inside base/: the table a device backend fills (device_cpu.c,
 * device_cuda.c) and the structs that base/device.c hands out. Nothing outside base/ includes
 * it. */
#ifndef PX_DEVICE_IMPL_H
#define PX_DEVICE_IMPL_H

#include "base/device.h"

typedef struct px__device_ops {
    px_device_kind kind;
    px_status (*count)(int *count);
    px_status (*open)(px_device *d, int ordinal); /* fills name and native */
    void (*close)(px_device *d);
    px_status (*bind_thread)(px_device *d);
    px_status (*alloc)(px_device *d, size_t bytes, void **ptr);
    void (*free)(px_device *d, void *ptr);
    px_status (*alloc_host)(px_device *d, size_t bytes, void **ptr);
    void (*free_host)(px_device *d, void *ptr);
    px_status (*copy)(px_device *d, void *dst, const void *src, size_t bytes, px_copy_dir dir,
                      void *stream);
    px_status (*zero)(px_device *d, void *ptr, size_t bytes, void *stream);
    px_status (*sync)(px_device *d);
    px_status (*stream_create)(px_device *d, void **native);
    void (*stream_destroy)(void *native);
    px_status (*stream_sync)(void *native);
    px_status (*event_create)(px_device *d, void **native);
    void (*event_destroy)(void *native);
    /* CPU: record stores the time in *t_ms (every earlier operation is done when it returns) */
    px_status (*event_record)(void *event, void *stream, double *t_ms);
    px_status (*stream_wait)(void *stream, void *event);
    px_status (*event_sync)(void *event);
    px_status (*event_elapsed)(void *start, double start_ms, void *end, double end_ms, float *ms);
} px__device_ops;

struct px_device {
    const px__device_ops *ops;
    int ordinal;
    void *native; /* backend state (CUDA: none; the runtime keeps the context) */
    char name[160];
};

struct px_stream {
    px_device *dev;
    void *native;
};

struct px_event {
    px_device *dev;
    void *native;
    double t_ms;
};

extern const px__device_ops px__device_cpu_ops;
#ifdef PX_HAVE_CUDA
extern const px__device_ops px__device_cuda_ops;
#endif

#endif
