/* codec_cuda.h - the codecs on the GPU (CUDA builds only): encode a device gradient into a
 * device payload, and decode (or decode-and-add) a device payload, in the wire format of
 * comm/codec.h, byte for byte what the CPU codec writes and reads.
 *
 * One CUDA block per codec block: the block is staged in shared memory (with the RHT: signs and
 * 1/sqrt(P) applied, zero-padded to P, then the Walsh-Hadamard butterflies, whose additions are
 * the CPU's in the same order, so the rotation is bit-identical), its absmax reduced, its scale
 * written, and each thread encodes its values with comm/codec_math.h, the functions the CPU
 * loops call. Plain encode only: error feedback and the downlink delta stay on the CPU path.
 * Block sizes up to PX_CODEC_CUDA_MAX_BLOCK (shared memory); larger ones are refused.
 */
#ifndef PX_CODEC_CUDA_H
#define PX_CODEC_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "comm/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_CODEC_CUDA_MAX_BLOCK 8192u

/* payload (device, px_codec_payload_bytes(spec, n) bytes) = the encoding of x (device, n
 * floats), queued on stream (cudaStream_t; NULL = default). spec must be a checked, non-fp32
 * spec. */
px_status px_codec_encode_cuda(const px_codec_spec *spec, const px_codec_stream *st,
                               const float *x, size_t n, unsigned char *payload, void *stream);

/* out (device, n floats) = the decoded payload (add = 0), or out += it (add = 1). *bad (a
 * device int the caller zeroes first) becomes nonzero when a block's scale or a value written
 * is not finite: the caller refuses the payload, as px_codec_decode does. */
px_status px_codec_decode_cuda(const px_codec_spec *spec, const px_codec_stream *st,
                               const unsigned char *payload, size_t n, float *out, int add,
                               int *bad, void *stream);

#ifdef __cplusplus
}
#endif

#endif
