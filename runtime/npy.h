/* npy.h - NumPy .npy files of float32 (format version 1.0, C order, little-endian): the final
 * parameters of a run, and arrays exchanged with tools and tests. */
#ifndef PX_NPY_H
#define PX_NPY_H

#include <stddef.h>

#include "runtime/common.h"

/* Writes a float32 array of shape (dims[0], ..., dims[ndim-1]) (ndim 1 or 2) to path, through
 * a temporary file renamed when complete. */
px_status px_npy_write_f32(const char *path, const float *data, const size_t *dims, int ndim);

/* Writes rows[0..n_rows), each row_len floats, as one (n_rows, row_len) array. */
px_status px_npy_write_rows(const char *path, const float *const *rows, size_t n_rows,
                            size_t row_len);

#endif
