/* fuzz_idx.c - the gzip IDX reader (runtime/dataset.h, px_idx_read_gz) on arbitrary files:
 * gzip streams, and plain IDX bytes (zlib reads a file that is not gzip as it is). Read as
 * labels (1 dimension) and as images (3 dimensions), whole and with a limit of 2 items. An
 * accepted file must give what the header says; a refused one leaves nothing allocated. */
#include "fuzz.h"

#include "base/alloc.h"
#include "runtime/dataset.h"

#include <zlib.h>

static void px__write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    px_fuzz_quiet();
    px_fuzz_seeds(px__write_seeds);
    return 0;
}

static void px__read(const char *path, int dims, size_t limit)
{
    size_t count = 0, item = 0;
    uint8_t *data = (uint8_t *)1;
    px_status st = px_idx_read_gz(path, dims, limit, &count, &item, &data);
    if (st < 0) {
        PX_FUZZ_ASSERT(data == NULL, "px_idx_read_gz refused the file but left *data set");
        return;
    }
    PX_FUZZ_ASSERT(data != NULL && count > 0 && item > 0, "px_idx_read_gz: an empty result");
    PX_FUZZ_ASSERT(!limit || count <= limit, "px_idx_read_gz kept more items than the limit");
    PX_FUZZ_ASSERT(dims == 3 || item == 1, "px_idx_read_gz: labels of more than one byte");
    volatile unsigned sink = 0;
    for (size_t i = 0; i < count * item; i++)
        sink += data[i];
    (void)sink;
    px_free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = px_fuzz_file(data, size);
    px__read(path, 1, 0);
    px__read(path, 3, 0);
    px__read(path, 1, 2);
    px__read(path, 3, 2);
    return 0;
}

/* ---- the seed corpus: small IDX files of the MNIST layout, gzip and plain ------------------- */

/* An IDX file of unsigned bytes: `dims` big-endian dimensions, then `extra` more (or, negative,
 * fewer) bytes than they need; gzip-compressed when gz. */
static void px__idx(const char *dir, const char *name, int ndim, const uint32_t *dims, long extra,
                    int gz)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    size_t size = 4 + 4 * (size_t)ndim + (size_t)((long)count + extra);
    uint8_t *b = calloc(1, size);
    if (!b) exit(1);
    b[2] = 0x08;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        uint8_t *p = b + 4 + 4 * i;
        p[0] = (uint8_t)(dims[i] >> 24), p[1] = (uint8_t)(dims[i] >> 16);
        p[2] = (uint8_t)(dims[i] >> 8), p[3] = (uint8_t)dims[i];
    }
    for (size_t i = 4 + 4 * (size_t)ndim; i < size; i++)
        b[i] = (uint8_t)(i * 7 % 10);
    if (!gz) {
        px_fuzz_write_seed(dir, name, b, size);
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        gzFile f = gzopen(path, "wb9");
        if (!f || gzwrite(f, b, (unsigned)size) != (int)size || gzclose(f) != Z_OK) exit(1);
    }
    free(b);
}

static void px__write_seeds(const char *dir)
{
    uint32_t labels[1] = {10}, images[3] = {3, 4, 5};
    px__idx(dir, "labels.gz", 1, labels, 0, 1);
    px__idx(dir, "images.gz", 3, images, 0, 1);
    px__idx(dir, "labels_plain", 1, labels, 0, 0);
    px__idx(dir, "images_plain", 3, images, 0, 0);
    px__idx(dir, "labels_short.gz", 1, labels, -3, 1);
    px__idx(dir, "images_long.gz", 3, images, 2, 1);
}
