/* status.c - the thread's last error message and the names of the status codes (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    case PX_ELOST:
        return "peer lost";
    default:
        return "unknown error";
    }
}
