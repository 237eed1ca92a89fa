/* npy.c - NumPy .npy files of float32 (see npy.h): a strict reader and a writer. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PX_NPY_MAX_HEADER 65536

/* ---- reading ------------------------------------------------------------------------------- */

static const char *px__skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

#define PX__BAD(...) return px_error(PX_EINVAL, __VA_ARGS__)

/* Parses the header dict {'descr': '<f4', 'fortran_order': False, 'shape': (...), } in any key
 * order. */
static px_status px__parse_header(const char *path, const char *h, size_t len, size_t *dims,
                                  int *ndim, int max_ndim)
{
    const char *s = h, *end = h + len;
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    while (end > s && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    s = px__skip_ws(s, end);
    if (s == end || *s != '{') PX__BAD("%s: corrupt .npy header (no '{')", path);
    s++;
    for (;;) {
        s = px__skip_ws(s, end);
        if (s < end && *s == '}') {
            s++;
            break;
        }
        if (s >= end || *s != '\'') PX__BAD("%s: corrupt .npy header (expected a key)", path);
        const char *k = ++s;
        while (s < end && *s != '\'')
            s++;
        if (s >= end) PX__BAD("%s: corrupt .npy header (unterminated key)", path);
        size_t klen = (size_t)(s - k);
        s = px__skip_ws(s + 1, end);
        if (s >= end || *s != ':') PX__BAD("%s: corrupt .npy header (expected ':')", path);
        s = px__skip_ws(s + 1, end);
        if (klen == 5 && !strncmp(k, "descr", 5)) {
            if (seen_descr++) PX__BAD("%s: corrupt .npy header (descr twice)", path);
            if (s >= end || *s != '\'') PX__BAD("%s: corrupt .npy header (descr)", path);
            const char *v = ++s;
            while (s < end && *s != '\'')
                s++;
            if (s >= end) PX__BAD("%s: corrupt .npy header (unterminated descr)", path);
            if (!(s - v == 3 && !strncmp(v, "<f4", 3)))
                PX__BAD("%s: dtype '%.*s' is not float32 ('<f4')", path, (int)(s - v), v);
            s++;
        } else if (klen == 13 && !strncmp(k, "fortran_order", 13)) {
            if (seen_order++) PX__BAD("%s: corrupt .npy header (fortran_order twice)", path);
            if (end - s >= 5 && !strncmp(s, "False", 5))
                s += 5;
            else if (end - s >= 4 && !strncmp(s, "True", 4))
                PX__BAD("%s: Fortran-order array: expected C order", path);
            else
                PX__BAD("%s: corrupt .npy header (fortran_order)", path);
        } else if (klen == 5 && !strncmp(k, "shape", 5)) {
            if (seen_shape++) PX__BAD("%s: corrupt .npy header (shape twice)", path);
            if (s >= end || *s != '(') PX__BAD("%s: corrupt .npy header (shape)", path);
            s++;
            int nd = 0;
            for (;;) {
                s = px__skip_ws(s, end);
                if (s < end && *s == ')') {
                    s++;
                    break;
                }
                if (s >= end || *s < '0' || *s > '9')
                    PX__BAD("%s: corrupt .npy header (shape)", path);
                errno = 0;
                char *e;
                unsigned long long v = strtoull(s, &e, 10);
                if (errno || e > end) PX__BAD("%s: corrupt .npy header (shape)", path);
                if (nd < max_ndim) dims[nd] = (size_t)v;
                nd++;
                s = px__skip_ws(e, end);
                if (s < end && *s == ',')
                    s++;
                else if (!(s < end && *s == ')'))
                    PX__BAD("%s: corrupt .npy header (shape)", path);
            }
            if (nd > max_ndim)
                PX__BAD("%s: shape has %d dimensions, at most %d are supported", path, nd,
                        max_ndim);
            *ndim = nd;
        } else {
            PX__BAD("%s: corrupt .npy header (unknown key '%.*s')", path, (int)klen, k);
        }
        s = px__skip_ws(s, end);
        if (s < end && *s == ',') s++;
    }
    s = px__skip_ws(s, end);
    if (s != end) PX__BAD("%s: corrupt .npy header (text after '}')", path);
    if (!seen_descr || !seen_order || !seen_shape)
        PX__BAD("%s: corrupt .npy header (descr, fortran_order or shape missing)", path);
    return PX_OK;
}

px_status px_npy_read_f32(const char *path, float **data, size_t *dims, int *ndim, int max_ndim)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return px_error(PX_EINVAL, "%s: %s", path, strerror(errno));
    px_status st = PX_OK;
    unsigned char pre[12];
    char *header = NULL;
    size_t hlen = 0, hstart = 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = px_error(PX_EINVAL, "%s: not a .npy file (bad magic or too short)", path);
        goto done;
    }
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        hstart = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = px_error(PX_EINVAL, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        hstart = 12;
    } else {
        st = px_error(PX_EINVAL, "%s: unsupported .npy version %u.%u", path, pre[6], pre[7]);
        goto done;
    }
    if (hlen == 0 || hlen > PX_NPY_MAX_HEADER) {
        st = px_error(PX_EINVAL, "%s: corrupt .npy header (bad length)", path);
        goto done;
    }
    header = malloc(hlen + 1);
    if (!header) {
        st = px_error(PX_ENOMEM, "%s: cannot allocate", path);
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        st = px_error(PX_EINVAL, "%s: truncated .npy header", path);
        goto done;
    }
    header[hlen] = 0;
    if (memchr(header, 0, hlen) || header[hlen - 1] != '\n') {
        st = px_error(PX_EINVAL, "%s: corrupt .npy header (not a newline-terminated text)", path);
        goto done;
    }
    PX_CHECK_GOTO(px__parse_header(path, header, hlen, dims, ndim, max_ndim), st, done);
    size_t count = 1;
    for (int i = 0; i < *ndim; i++) {
        if (dims[i] && count > SIZE_MAX / 4 / dims[i]) {
            st = px_error(PX_EINVAL, "%s: shape too large", path);
            goto done;
        }
        count *= dims[i];
    }
    size_t bytes = count * 4;
    if (fseek(f, 0, SEEK_END) != 0) {
        st = px_error(PX_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    long size = ftell(f);
    if (size < 0 || (size_t)size != hstart + hlen + bytes) {
        st = px_error(PX_EINVAL, "%s: data is %ld bytes, the header's shape needs %zu%s", path,
                      size < 0 ? -1L : size - (long)(hstart + hlen), bytes,
                      size >= 0 && (size_t)size < hstart + hlen + bytes ? " (truncated)" : "");
        goto done;
    }
    fseek(f, (long)(hstart + hlen), SEEK_SET);
    *data = px_alloc(bytes ? bytes : 4, path);
    if (!*data) {
        st = PX_ENOMEM;
        goto done;
    }
    if (fread(*data, 1, bytes, f) != bytes) {
        st = px_error(PX_EIO, "%s: read failed", path);
        px_free(*data);
        *data = NULL;
    }
done:
    free(header);
    fclose(f);
    return st;
}

/* ---- writing ------------------------------------------------------------------------------- */

/* writes the header for shape dims (ndim 1 or 2), then rows[0..n_rows) of row_len floats, to a
 * temporary file renamed when complete */
static px_status px__write(const char *path, const size_t *dims, int ndim, const float *const *rows,
                           size_t n_rows, size_t row_len)
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
    /* on disk before the rename: a crash leaves the old file or the whole new one */
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
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
