/* table.c - registry lookup by name (see table.h). */
#include "table.h"

#include <string.h>

static const char *px__name(const void *table, size_t i, size_t stride)
{
    const char *const *name = (const char *const *)((const char *)table + i * stride);
    return *name;
}

const void *px_table_find(const void *table, size_t count, size_t stride, const char *name)
{
    for (size_t i = 0; name && i < count; i++)
        if (!strcmp(px__name(table, i, stride), name)) return (const char *)table + i * stride;
    return NULL;
}

void px_table_names(const void *table, size_t count, size_t stride, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = 0;
    for (size_t i = 0; i < count; i++) {
        if (i) strncat(buf, ", ", cap - strlen(buf) - 1);
        strncat(buf, px__name(table, i, stride), cap - strlen(buf) - 1);
    }
}
