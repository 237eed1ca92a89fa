/* codec_half.c - the 16-bit formats bf16 and fp16 (IEEE binary16). Each block has a power-of-two
 * scale (bf16: the block's absmax lands in [1, 2); fp16: in [2^14, 2^15), high in the format's
 * range and below its 65504 limit), so scaling is exact and the codec's error is exactly the
 * format's rounding error: round to nearest even (ties to even survive the scale) or stochastic. */
#include <float.h>
#include <math.h>

#include "comm/codec_impl.h"
#include "comm/codec_math.h"

/* ---- bf16 ------------------------------------------------------------------------------------ */

static float px__bf16_scale(uint32_t amax_bits)
{
    return px_cm_scale_pow2(amax_bits, 0);
}

static void px__bf16_quantise(const float *restrict w, size_t len, float inv, void *restrict codes)
{
    uint16_t *restrict q = codes;
    for (size_t j = 0; j < len; j++) q[j] = px_cm_bf16_rne(w[j] * inv);
}

static void px__bf16_quantise_sr(const float *restrict w, size_t len, float inv, uint64_t dk,
                                 void *restrict codes)
{
    uint16_t *restrict q = codes;
    for (size_t j = 0; j < len; j++)
        q[j] = px_cm_bf16_sr(w[j] * inv, px_cm_dither(dk, (uint32_t)j));
}

static int px__bf16_dequantise(const void *restrict codes, size_t len, float mult,
                               float *restrict dst, int add)
{
    const uint16_t *restrict q = codes;
    int ok = 1;
    if (add) {
        for (size_t j = 0; j < len; j++) {
            float v = dst[j] + px_cm_bf16_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    } else {
        for (size_t j = 0; j < len; j++) {
            float v = px_cm_bf16_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    }
    return ok;
}

const px__codec_format_ops px__codec_bf16_ops = {
    .code_bytes = 2,
    .scale = px__bf16_scale,
    .quantise = px__bf16_quantise,
    .quantise_sr = px__bf16_quantise_sr,
    .dequantise = px__bf16_dequantise,
};

/* ---- fp16 ------------------------------------------------------------------------------------ */

static float px__fp16_scale(uint32_t amax_bits)
{
    return px_cm_scale_pow2(amax_bits, 14);
}

static void px__fp16_quantise(const float *restrict w, size_t len, float inv, void *restrict codes)
{
    uint16_t *restrict q = codes;
    for (size_t j = 0; j < len; j++) q[j] = px_cm_fp16_encode(w[j] * inv, 0, 0);
}

static void px__fp16_quantise_sr(const float *restrict w, size_t len, float inv, uint64_t dk,
                                 void *restrict codes)
{
    uint16_t *restrict q = codes;
    for (size_t j = 0; j < len; j++)
        q[j] = px_cm_fp16_encode(w[j] * inv, 1, px_cm_dither(dk, (uint32_t)j));
}

static int px__fp16_dequantise(const void *restrict codes, size_t len, float mult,
                               float *restrict dst, int add)
{
    const uint16_t *restrict q = codes;
    int ok = 1;
    if (add) {
        for (size_t j = 0; j < len; j++) {
            float v = dst[j] + px_cm_fp16_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    } else {
        for (size_t j = 0; j < len; j++) {
            float v = px_cm_fp16_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    }
    return ok;
}

const px__codec_format_ops px__codec_fp16_ops = {
    .code_bytes = 2,
    .scale = px__fp16_scale,
    .quantise = px__fp16_quantise,
    .quantise_sr = px__fp16_quantise_sr,
    .dequantise = px__fp16_dequantise,
};
