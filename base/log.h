/* log.h - the logging sink. Library code logs rarely (a dropped message, a fallback taken); the
 * program chooses where lines go and which levels pass. */
#ifndef PX_LOG_H
#define PX_LOG_H

/* Logging sink. Library code logs rarely (a dropped message, a fallback taken); the program
 * chooses where lines go and which levels pass. Default: stderr, level INFO. */
typedef enum { PX_LOG_ERROR = 0, PX_LOG_WARN = 1, PX_LOG_INFO = 2, PX_LOG_DEBUG = 3 } px_log_level;
typedef void (*px_log_fn)(px_log_level level, const char *line, void *user);
void px_log_set_sink(px_log_fn fn, void *user);
void px_log_set_level(px_log_level level);
void px_log(px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
