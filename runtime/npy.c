/* npy.c - writing float32 .npy files (see npy.h). */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* writes the header for shape dims (ndim 1 or 2), then rows[0..n_rows) of row_len floats */
static px_status px__write(const char *path, const size_t *dims, int ndim,
                           const float *const *rows, size_t n_rows, size_t row_len)
{
    if (ndim < 1 || ndim > 2) return px_error(PX_EINVAL, "npy: %d dimensions not supported", ndim);
    char dict[128];
    if (ndim == 1)
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }",
                 dims[0]);
    else
        snprintf(dict, sizeof dict,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", dims[0],
                 dims[1]);
    /* magic (6) + version (2) + header length (2) + dict, padded with spaces and ended by a
     * newline to a multiple of 64 bytes */
    size_t dict_len = strlen(dict);
    size_t total = 10 + dict_len + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = dict_len + pad + 1;
    unsigned char head[256];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(hlen & 0xFF);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, dict_len);
    memset(head + 10 + dict_len, ' ', pad);
    head[10 + hlen - 1] = '\n';

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return px_error(PX_EIO, "cannot write %s: %s", tmp, strerror(errno));
    int ok = fwrite(head, 1, 10 + hlen, f) == 10 + hlen;
    for (size_t r = 0; ok && r < n_rows; r++)
        ok = fwrite(rows[r], sizeof(float), row_len, f) == row_len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return px_error(PX_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    return PX_OK;
}

px_status px_npy_write_f32(const char *path, const float *data, const size_t *dims, int ndim)
{
    const float *rows[1] = {data};
    return px__write(path, dims, ndim, rows, 1, dims[0] * (ndim == 2 ? dims[1] : 1));
}

px_status px_npy_write_rows(const char *path, const float *const *rows, size_t n_rows,
                            size_t row_len)
{
    size_t dims[2] = {n_rows, row_len};
    return px__write(path, dims, 2, rows, n_rows, row_len);
}
