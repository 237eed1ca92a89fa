/* aggregators_cuda.h - aggregation on the GPU (CUDA builds only): the coordinate-wise rules as
 * kernels, and the Gram matrix of the Gram-form rules with cuBLAS.
 *
 * The inputs are n gradients of d floats in device memory, row i at X + i * ld. Coordinate-wise
 * rules (median, trimmed mean, MeaMed) run one thread per coordinate: the thread sorts its n
 * values with the sorting network of coord_math.h (n <= PX_CW_MAX_N) and reduces them with the
 * same functions the CPU's results are checked against bit for bit (tests/test_coord_math.c), so
 * a GPU result equals the CPU's exactly unless the compiler fused a multiply-add. The Gram-form
 * rules (FA, FedLD, the Krum family, geomed, NNM) need only the n x n matrix of inner products,
 * which the GPU forms (in double, over chunks of columns) and copies to the host, where the
 * rules' n x n work (LAPACKE eigenproblems, selections) runs as on the CPU path.
 *
 * Work is queued on the context's stream; a function that returns a host result waits for it.
 */
#ifndef PX_AGGREGATORS_CUDA_H
#define PX_AGGREGATORS_CUDA_H

#include <stddef.h>

#include "aggregators/coord_math.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_agg_cuda px_agg_cuda;


/* A context on `stream` (cudaStream_t, NULL = default) for up to n_max gradients: the cuBLAS
 * handle and the Gram pass's scratch (n_max x chunk doubles, and n_max^2 doubles), allocated
 * once. Fails with nothing allocated. */
px_status px_agg_cuda_create(px_agg_cuda **out, void *stream, size_t n_max, size_t chunk);
void px_agg_cuda_destroy(px_agg_cuda *c);

/* out (d, device) = the rule over the n rows of X; refuses n > PX_CW_MAX_N or n < 2f + 1
 * (trimmed mean, MeaMed). Values must be finite (the server screens them first, as the CPU
 * rules' screened variant does). */
px_status px_agg_coordwise_cuda(px_agg_cuda *c, px_cw_rule rule, const float *X, size_t ld,
                                size_t n, size_t d, size_t f, float *out);

/* G (n x n, row-major, host memory) = X X^T accumulated in double; waits for the result. */
px_status px_agg_gram_cuda(px_agg_cuda *c, const float *X, size_t ld, size_t n, size_t d,
                           double *G);

#ifdef __cplusplus
}
#endif

#endif
