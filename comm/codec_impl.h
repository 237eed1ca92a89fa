/* codec_impl.h - what the codec's own files share: the loops of each value format and the
 * helpers of the Hadamard transform. Not for use outside comm/codec*.c, comm/hadamard.c and the
 * codec tests.
 *
 * comm/codec.c runs the block pipeline (stage, rotate, scale, quantise; and the way back) and
 * calls a format through its px__codec_format_ops: tight loops over one block, with no
 * allocation and no knowledge of blocks, transforms or threads.
 */
#ifndef PX_CODEC_IMPL_H
#define PX_CODEC_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "comm/codec.h"

typedef struct {
    size_t code_bytes; /* bytes per value on the wire */
    /* The block scale for a block whose largest magnitude has fp32 bits amax_bits (see
     * codec_math.h: 0 for an all-zero block, NaN for a non-finite one). */
    float (*scale)(uint32_t amax_bits);
    /* codes[j] = round(w[j] * inv), nearest even, saturating. */
    void (*quantise)(const float *w, size_t len, float inv, void *codes);
    /* The same with stochastic rounding, element j dithered by px_cm_dither(dither_key, j). */
    void (*quantise_sr)(const float *w, size_t len, float inv, uint64_t dither_key, void *codes);
    /* dst[j] = value(codes[j]) * mult (add = 0) or dst[j] += value(codes[j]) * mult (add = 1);
     * returns 1 when every dst[j] written is finite, 0 otherwise. */
    int (*dequantise)(const void *codes, size_t len, float mult, float *dst, int add);
} px__codec_format_ops;

extern const px__codec_format_ops px__codec_bf16_ops;     /* comm/codec_half.c */
extern const px__codec_format_ops px__codec_fp16_ops;     /* comm/codec_half.c */
extern const px__codec_format_ops px__codec_int8_ops;     /* comm/codec_int8.c */
extern const px__codec_format_ops px__codec_fp8_e4m3_ops; /* comm/codec_fp8.c */

/* The fp32 bits of the largest magnitude in x[0..len) (0 when len = 0). Finite values compare
 * as their bit patterns do, and NaN/Inf patterns are larger than every finite one, so the result
 * is >= 0x7F800000 exactly when some value is not finite. */
uint32_t px__absmax_bits(const float *x, size_t len);

/* The generic (scalar, any length) Walsh-Hadamard transform: what px_wht computes, written
 * plainly; px_wht may use vector registers for the short strides. Exposed for the tests. */
void px__wht_generic(float *x, size_t len);

/* out[j] = +-(in[j] * norm) for j < len, the sign of element j from the RHT diagonal of the
 * block with key block_key (px_cm_sign_word / px_cm_apply_sign); out may be in. */
void px__rht_sign_scale(float *out, const float *in, size_t len, uint64_t block_key, float norm);

/* 1/sqrt(len) for a power-of-two len, as the transform uses it (exact when len is a power of 4). */
float px__rht_norm(size_t len);

#endif
