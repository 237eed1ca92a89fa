/* common.c - status messages, clock, aligned buffers and the logging sink (see common.h). */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char px__errbuf[1024];

px_status px_error(px_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(px__errbuf, sizeof px__errbuf, fmt, ap);
    va_end(ap);
    return status;
}

px_status px_error_context(px_status status, const char *fmt, ...)
{
    char prefix[512], old[sizeof px__errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, px__errbuf, sizeof old);
    size_t used = strlen(prefix);
    if (used > sizeof px__errbuf - 3) used = sizeof px__errbuf - 3;
    memcpy(px__errbuf, prefix, used);
    memcpy(px__errbuf + used, ": ", 2);
    size_t rest = sizeof px__errbuf - used - 3;
    size_t old_len = strnlen(old, rest);
    memcpy(px__errbuf + used + 2, old, old_len);
    px__errbuf[used + 2 + old_len] = 0;
    return status;
}

const char *px_errmsg(void)
{
    return px__errbuf;
}

const char *px_status_name(px_status status)
{
    switch (status) {
    case PX_OK:
        return "ok";
    case PX_EINVAL:
        return "invalid input";
    case PX_ENOMEM:
        return "out of memory";
    case PX_EIO:
        return "i/o error";
    case PX_ETIMEOUT:
        return "timeout";
    case PX_EPROTO:
        return "protocol error";
    case PX_ERUNTIME:
        return "run-time error";
    case PX_ENOTSUP:
        return "not supported";
    default:
        return "unknown error";
    }
}

double px_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void px_sleep_us(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void *px_alloc(size_t bytes, const char *what)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        px_error(PX_ENOMEM, "cannot allocate %zu bytes for %s", bytes, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void px_free(void *p)
{
    free(p);
}

static void px__log_stderr(px_log_level level, const char *line, void *user)
{
    (void)user;
    static const char *tags[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "phalanx %s: %s\n", tags[level], line);
}

static px_log_fn px__log_fn = px__log_stderr;
static void *px__log_user;
static px_log_level px__log_level = PX_LOG_INFO;

void px_log_set_sink(px_log_fn fn, void *user)
{
    px__log_fn = fn ? fn : px__log_stderr;
    px__log_user = user;
}

void px_log_set_level(px_log_level level)
{
    px__log_level = level;
}

void px_log(px_log_level level, const char *fmt, ...)
{
    if (level > px__log_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    px__log_fn(level, line, px__log_user);
}
