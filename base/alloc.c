/* alloc.c - aligned, zero-filled buffers (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

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
