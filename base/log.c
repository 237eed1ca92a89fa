/* log.c - the logging sink (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

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
