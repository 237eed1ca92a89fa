/* alloc.h - the aligned, zero-filled buffers every layer allocates once per run. */
#ifndef PX_ALLOC_H
#define PX_ALLOC_H

#include <stddef.h>

/* 64-byte aligned allocation of `bytes` (rounded up), zero-filled: buffers are sized once per
 * run, so the page-touch cost is paid at start-up and never in a step. Returns NULL on
 * failure after recording PX_ENOMEM with `what` in the message. Free with px_free. */
void *px_alloc(size_t bytes, const char *what);
void px_free(void *p);

#endif
