/* device.c - the device interface (device.h) over the backend table: picks the backend of a
 * kind, and holds the handles so that backends see only their native objects. */
#include "base/device.h"

#include <stdlib.h>

#include "base/device_impl.h"

/* The backends this build holds, indexed by px_device_kind. */
static const px__device_ops *const px__backends[] = {
    &px__device_cpu_ops,
#ifdef PX_HAVE_CUDA
    &px__device_cuda_ops,
#else
    NULL,
#endif
};

const char *px_device_kind_name(px_device_kind kind)
{
    return kind == PX_DEVICE_CPU ? "cpu" : kind == PX_DEVICE_CUDA ? "cuda" : "?";
}

static const px__device_ops *px__ops(px_device_kind kind)
{
    if ((unsigned)kind >= sizeof px__backends / sizeof px__backends[0]) return NULL;
    return px__backends[kind];
}

int px_device_built(px_device_kind kind)
{
    return px__ops(kind) != NULL;
}

px_status px_device_count(px_device_kind kind, int *count)
{
    *count = 0;
    const px__device_ops *ops = px__ops(kind);
    if (!ops)
        return px_error(PX_ENOTSUP,
                        "device: this build has no %s support (it was configured without the "
                        "CUDA toolkit; see trainer --version)",
                        px_device_kind_name(kind));
    return ops->count(count);
}

px_status px_device_open(px_device **out, px_device_kind kind, int ordinal)
{
    *out = NULL;
    int n = 0;
    PX_CHECK(px_device_count(kind, &n));
    if (ordinal < 0 || ordinal >= n)
        return px_error(PX_EINVAL, "device: %s:%d does not exist (this machine has %d)",
                        px_device_kind_name(kind), ordinal, n);
    px_device *d = calloc(1, sizeof *d);
    if (!d) return px_error(PX_ENOMEM, "device: cannot allocate a handle");
    d->ops = px__ops(kind);
    d->ordinal = ordinal;
    px_status st = d->ops->open(d, ordinal);
    if (st < 0) {
        free(d);
        return st;
    }
    *out = d;
    return PX_OK;
}

void px_device_close(px_device *d)
{
    if (!d) return;
    d->ops->close(d);
    free(d);
}

px_device_kind px_device_kind_of(const px_device *d)
{
    return d->ops->kind;
}

const char *px_device_name(const px_device *d)
{
    return d->name;
}

px_status px_device_bind_thread(px_device *d)
{
    return d->ops->bind_thread(d);
}

px_status px_device_alloc(px_device *d, size_t bytes, void **ptr)
{
    *ptr = NULL;
    return d->ops->alloc(d, bytes, ptr);
}

void px_device_free(px_device *d, void *ptr)
{
    if (ptr) d->ops->free(d, ptr);
}

px_status px_device_alloc_host(px_device *d, size_t bytes, void **ptr)
{
    *ptr = NULL;
    return d->ops->alloc_host(d, bytes, ptr);
}

void px_device_free_host(px_device *d, void *ptr)
{
    if (ptr) d->ops->free_host(d, ptr);
}

px_status px_device_copy(px_device *d, void *dst, const void *src, size_t bytes, px_copy_dir dir,
                         px_stream *s)
{
    if (bytes == 0) return PX_OK;
    return d->ops->copy(d, dst, src, bytes, dir, s ? s->native : NULL);
}

px_status px_device_zero(px_device *d, void *ptr, size_t bytes, px_stream *s)
{
    if (bytes == 0) return PX_OK;
    return d->ops->zero(d, ptr, bytes, s ? s->native : NULL);
}

px_status px_device_sync(px_device *d)
{
    return d->ops->sync(d);
}

px_status px_stream_create(px_device *d, px_stream **out)
{
    *out = NULL;
    px_stream *s = calloc(1, sizeof *s);
    if (!s) return px_error(PX_ENOMEM, "device: cannot allocate a stream handle");
    s->dev = d;
    px_status st = d->ops->stream_create(d, &s->native);
    if (st < 0) {
        free(s);
        return st;
    }
    *out = s;
    return PX_OK;
}

void px_stream_destroy(px_stream *s)
{
    if (!s) return;
    s->dev->ops->stream_destroy(s->native);
    free(s);
}

px_status px_stream_sync(px_stream *s)
{
    return s->dev->ops->stream_sync(s->native);
}

void *px_stream_native(const px_stream *s)
{
    return s ? s->native : NULL;
}

px_status px_event_create(px_device *d, px_event **out)
{
    *out = NULL;
    px_event *e = calloc(1, sizeof *e);
    if (!e) return px_error(PX_ENOMEM, "device: cannot allocate an event handle");
    e->dev = d;
    e->t_ms = -1.0; /* not recorded */
    px_status st = d->ops->event_create(d, &e->native);
    if (st < 0) {
        free(e);
        return st;
    }
    *out = e;
    return PX_OK;
}

void px_event_destroy(px_event *e)
{
    if (!e) return;
    e->dev->ops->event_destroy(e->native);
    free(e);
}

px_status px_event_record(px_event *e, px_stream *s)
{
    return e->dev->ops->event_record(e->native, s ? s->native : NULL, &e->t_ms);
}

px_status px_stream_wait_event(px_stream *s, px_event *e)
{
    return s->dev->ops->stream_wait(s->native, e->native);
}

px_status px_event_sync(px_event *e)
{
    return e->dev->ops->event_sync(e->native);
}

px_status px_event_elapsed_ms(px_event *start, px_event *end, float *ms)
{
    *ms = 0.0f;
    if (start->dev->ops != end->dev->ops)
        return px_error(PX_EINVAL, "device: events of two different backends cannot be timed");
    return start->dev->ops->event_elapsed(start->native, start->t_ms, end->native, end->t_ms, ms);
}
