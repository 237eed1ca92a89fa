/* common.h - the small shared base of Phalanx: status codes, error messages, timing,
 * aligned buffers and a logging sink.
 *
 * Every other part of Phalanx (aggregators, codecs, transports, the runtime) depends on this
 * header and on nothing else of the project, so it stays small and free of policy. The library
 * never exits and never prints on its own behalf: a function that fails returns a negative
 * px_status and records a one-line message (what, which rule, which value) that the caller can
 * read with px_errmsg() and decide what to do with. Only the programs in launch/ exit.
 */
#ifndef PX_COMMON_H
#define PX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define PX_VERSION_STRING "0.1.0"

/* Result of every public function that can fail: 0 = ok, negative = kind of error. */
typedef int px_status;
enum {
    PX_OK = 0,
    PX_EINVAL = -1,   /* bad input: argument, config, file content */
    PX_ENOMEM = -2,   /* allocation failed */
    PX_EIO = -3,      /* file or system call failed */
    PX_ETIMEOUT = -4, /* a wait ran past its deadline */
    PX_EPROTO = -5,   /* a message broke the wire format */
    PX_ERUNTIME = -6, /* anything else that stops a run */
    PX_ENOTSUP = -7,  /* asked for something this build or machine cannot do */
};

/* Records a formatted message as this thread's last error and returns `status`, so that a
 * failing function can end with `return px_error(PX_EINVAL, "...", ...)`. */
px_status px_error(px_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "context: " (for example the file being read), keeping
 * the original cause. Returns `status`. */
px_status px_error_context(px_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last error message of this thread ("" when none was recorded). */
const char *px_errmsg(void);

/* Short name of a status code ("invalid input", "timeout", ...). */
const char *px_status_name(px_status status);

/* Propagate a failure to the caller; the callee already recorded the message. */
#define PX_CHECK(call)                                                                             \
    do {                                                                                           \
        px_status px__st = (call);                                                                 \
        if (px__st < 0) return px__st;                                                             \
    } while (0)

/* Store a failure in `st` and jump to the function's single cleanup label. */
#define PX_CHECK_GOTO(call, st, label)                                                             \
    do {                                                                                           \
        (st) = (call);                                                                             \
        if ((st) < 0) goto label;                                                                  \
    } while (0)

/* Monotonic clock in milliseconds (double, sub-microsecond resolution). */
double px_now_ms(void);

/* Sleeps for `us` microseconds; used by polling loops so that waiting ranks leave the cores
 * to the ranks that compute (8 ranks share 2 cores on the reference machine). */
void px_sleep_us(unsigned us);

/* 64-byte aligned allocation of `bytes` (rounded up), zero-filled: buffers are sized once per
 * run, so the page-touch cost is paid at start-up and never in a step. Returns NULL on
 * failure after recording PX_ENOMEM with `what` in the message. Free with px_free. */
void *px_alloc(size_t bytes, const char *what);
void px_free(void *p);

/* How a flat parameter vector splits into tensors (weights and biases of each layer): per-layer
 * rules (FedLD, LISA) and reports need it. Offsets and sizes count float values. */
typedef struct {
    size_t offset;
    size_t size;
    const char *name; /* "fc1.weight", ... */
} px_layer;

typedef struct {
    size_t count;
    const px_layer *layers;
} px_layer_table;

/* Logging sink. Library code logs rarely (a dropped message, a fallback taken); the program
 * chooses where lines go and which levels pass. Default: stderr, level INFO. */
typedef enum { PX_LOG_ERROR = 0, PX_LOG_WARN = 1, PX_LOG_INFO = 2, PX_LOG_DEBUG = 3 } px_log_level;
typedef void (*px_log_fn)(px_log_level level, const char *line, void *user);
void px_log_set_sink(px_log_fn fn, void *user);
void px_log_set_level(px_log_level level);
void px_log(px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
