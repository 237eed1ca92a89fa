/* device_cpu.c - the CPU backend of the device interface: memory is host memory, a stream is
 * the calling thread (every operation is complete when its call returns), and an event is the
 * time at which it was recorded. It lets code written against base/device.h run, and be
 * tested, on a machine without a GPU. */
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/device_impl.h"

static px_status px__cpu_count(int *count)
{
    *count = 1;
    return PX_OK;
}

static px_status px__cpu_open(px_device *d, int ordinal)
{
    (void)ordinal;
    strcpy(d->name, "cpu");
    return PX_OK;
}

static void px__cpu_close(px_device *d)
{
    (void)d;
}

static px_status px__cpu_ok(px_device *d)
{
    (void)d;
    return PX_OK;
}

static px_status px__cpu_alloc(px_device *d, size_t bytes, void **ptr)
{
    (void)d;
    *ptr = px_alloc(bytes, "a device buffer (cpu)");
    return *ptr ? PX_OK : PX_ENOMEM;
}

static void px__cpu_free(px_device *d, void *ptr)
{
    (void)d;
    px_free(ptr);
}

static px_status px__cpu_copy(px_device *d, void *dst, const void *src, size_t bytes,
                              px_copy_dir dir, void *stream)
{
    (void)d, (void)dir, (void)stream;
    memmove(dst, src, bytes); /* memmove: harmless where memcpy would do, safe where not */
    return PX_OK;
}

static px_status px__cpu_zero(px_device *d, void *ptr, size_t bytes, void *stream)
{
    (void)d, (void)stream;
    memset(ptr, 0, bytes);
    return PX_OK;
}

/* a stream or an event needs no state: its handle's native pointer stays NULL */
static px_status px__cpu_handle_create(px_device *d, void **native)
{
    (void)d;
    *native = NULL;
    return PX_OK;
}

static void px__cpu_handle_destroy(void *native)
{
    (void)native;
}

static px_status px__cpu_handle_sync(void *native)
{
    (void)native;
    return PX_OK;
}

static px_status px__cpu_event_record(void *event, void *stream, double *t_ms)
{
    (void)event, (void)stream;
    *t_ms = px_now_ms();
    return PX_OK;
}

static px_status px__cpu_stream_wait(void *stream, void *event)
{
    (void)stream, (void)event;
    return PX_OK;
}

static px_status px__cpu_event_elapsed(void *start, double start_ms, void *end, double end_ms,
                                       float *ms)
{
    (void)start, (void)end;
    if (start_ms < 0 || end_ms < 0)
        return px_error(PX_EINVAL, "device: timing an event that was never recorded");
    *ms = (float)(end_ms - start_ms);
    return PX_OK;
}

const px__device_ops px__device_cpu_ops = {
    .kind = PX_DEVICE_CPU,
    .count = px__cpu_count,
    .open = px__cpu_open,
    .close = px__cpu_close,
    .bind_thread = px__cpu_ok,
    .alloc = px__cpu_alloc,
    .free = px__cpu_free,
    .alloc_host = px__cpu_alloc,
    .free_host = px__cpu_free,
    .copy = px__cpu_copy,
    .zero = px__cpu_zero,
    .sync = px__cpu_ok,
    .stream_create = px__cpu_handle_create,
    .stream_destroy = px__cpu_handle_destroy,
    .stream_sync = px__cpu_handle_sync,
    .event_create = px__cpu_handle_create,
    .event_destroy = px__cpu_handle_destroy,
    .event_record = px__cpu_event_record,
    .stream_wait = px__cpu_stream_wait,
    .event_sync = px__cpu_handle_sync,
    .event_elapsed = px__cpu_event_elapsed,
};
