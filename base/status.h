/* status.h - the error contract of Phalanx: px_status, the thread's last error message, and the
 * PX_CHECK macros that propagate a failure.
 *
 * The library never exits and never prints on its own behalf: a function that fails returns a
 * negative px_status and records a one-line message (what, which rule, which value) that the
 * caller can read with px_errmsg() and decide what to do with. Only the programs in launch/ exit.
 */
#ifndef PX_STATUS_H
#define PX_STATUS_H

#ifdef __cplusplus /* CUDA sources (.cu) are C++ */
extern "C" {
#endif

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
    PX_ELOST = -8,    /* a peer was lost (died or cut off mid-message); the error names it */
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

#ifdef __cplusplus
}
#endif

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

#endif
