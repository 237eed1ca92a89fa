/* state.h - run-state files: named sections of bytes, each with its CRC-32C, written whole or
 * not at all.
 *
 * Everything a resumed run needs lives in a few named structs that can say their size and save
 * and load themselves (the server's state in server.c, each logical worker's in worker.c); this
 * file is how such sections reach a disk and come back. Layout (little-endian):
 *
 *   "PXSTATE1"                         8 bytes
 *   section count                      u32
 *   per section: tag (4 ASCII bytes), length (u64), CRC-32C of the bytes (u32), the bytes
 *
 * A file is written to "<path>.tmp", fsynced and renamed, so that a reader sees the previous
 * file or the complete new one, never half of one. Reading refuses a missing file, a wrong
 * magic, a section whose length runs past the end, a CRC that does not match (naming the
 * section), and trailing bytes.
 */
#ifndef PX_STATE_H
#define PX_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define PX_STATE_MAX_SECTIONS 16

typedef struct {
    char tag[5]; /* four characters and a NUL: "PRMS" */
    const void *data;
    size_t bytes;
} px_state_section;

/* Writes the sections to `path` (atomically, as above). */
px_status px_state_write(const char *path, const px_state_section *sections, size_t count);

/* A state file read into memory and checked. */
typedef struct {
    unsigned char *bytes;
    size_t len;
    size_t count;
    px_state_section sections[PX_STATE_MAX_SECTIONS]; /* data points into bytes */
} px_state_file;

px_status px_state_read(const char *path, px_state_file *f);
void px_state_close(px_state_file *f);

/* The section `tag`: PX_OK with *data and *bytes, or PX_EINVAL naming the file's missing
 * section. If `want` is not SIZE_MAX the section must have exactly that many bytes. */
px_status px_state_get(const px_state_file *f, const char *tag, size_t want, const void **data,
                       size_t *bytes);

/* Creates directory `dir` (and its parents) if missing. */
px_status px_state_mkdir(const char *dir);

#endif
