/* npy.h - NumPy .npy files of float32 (C order, little-endian): the final parameters of a run,
 * saved gradients, and the arrays of the aggregate tool and the benchmarks. */
#ifndef PX_NPY_H
#define PX_NPY_H

#include <stddef.h>

#include "base/common.h"

/* Reads a float32 .npy file (format 1.0, 2.0 or 3.0, '<f4', C order) of at most max_ndim
 * dimensions: fills dims[0..*ndim) and *data (owned by the caller, px_free). Refuses, with
 * PX_EINVAL and a message naming the fault, every other dtype, Fortran order, a header that
 * does not parse, and a file whose size differs from what the shape needs. */
px_status px_npy_read_f32(const char *path, float **data, size_t *dims, int *ndim, int max_ndim);

/* Writes a float32 array of shape (dims[0], ..., dims[ndim-1]) (ndim 1 or 2) to path, through
 * a temporary file renamed when complete. */
px_status px_npy_write_f32(const char *path, const float *data, const size_t *dims, int ndim);

/* Writes rows[0..n_rows), each row_len floats, as one (n_rows, row_len) array. */
px_status px_npy_write_rows(const char *path, const float *const *rows, size_t n_rows,
                            size_t row_len);

#endif
