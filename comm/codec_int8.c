/* codec_int8.c - the int8 format: symmetric codes in [-127, 127], one absmax scale per block
 * (scale = absmax / 127), round to nearest even or stochastic. The loops are branch-free calls
 * of the per-element functions of codec_math.h, which the compiler vectorises. */
#include <float.h>
#include <math.h>

#include "comm/codec_impl.h"
#include "comm/codec_math.h"

static float px__int8_scale(uint32_t amax_bits)
{
    return px_cm_scale_absmax(amax_bits, PX_CM_INT8_MAX);
}

static void px__int8_quantise(const float *restrict w, size_t len, float inv, void *restrict codes)
{
    int8_t *restrict q = codes;
    for (size_t j = 0; j < len; j++) q[j] = px_cm_int8_rne(w[j] * inv);
}

static void px__int8_quantise_sr(const float *restrict w, size_t len, float inv, uint64_t dk,
                                 void *restrict codes)
{
    int8_t *restrict q = codes;
    for (size_t j = 0; j < len; j++)
        q[j] = px_cm_int8_sr(w[j] * inv, px_cm_dither(dk, (uint32_t)j));
}

static int px__int8_dequantise(const void *restrict codes, size_t len, float mult,
                               float *restrict dst, int add)
{
    const int8_t *restrict q = codes;
    int ok = 1;
    if (add) {
        for (size_t j = 0; j < len; j++) {
            float v = dst[j] + px_cm_int8_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    } else {
        for (size_t j = 0; j < len; j++) {
            float v = px_cm_int8_decode(q[j]) * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    }
    return ok;
}

const px__codec_format_ops px__codec_int8_ops = {
    .code_bytes = 1,
    .scale = px__int8_scale,
    .quantise = px__int8_quantise,
    .quantise_sr = px__int8_quantise_sr,
    .dequantise = px__int8_dequantise,
};
