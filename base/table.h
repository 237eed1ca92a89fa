/* table.h - the registries' lookup: a table of rows whose first member is the row's name
 * (const char *), found by name, and the list of names for a refusal ("known: mlp, cnn, gpt").
 * One implementation for the model, optimizer, dataset and update registries. */
#ifndef PX_TABLE_H
#define PX_TABLE_H

#include <stddef.h>

/* The row of `table` (count rows of `stride` bytes) named `name`, or NULL. */
const void *px_table_find(const void *table, size_t count, size_t stride, const char *name);

/* The rows' names joined by ", " into buf (cut to cap). */
void px_table_names(const void *table, size_t count, size_t stride, char *buf, size_t cap);

#endif
