/* codec_fp8.c - the fp8 E4M3 format (OCP E4M3FN: max 448, subnormals down to 2^-9, saturating
 * encode, 0x7F/0xFF = NaN): one absmax scale per block (scale = absmax / 448), round to nearest
 * even or stochastic. Decoding goes through a 256-entry table filled from px_cm_e4m3_decode, the
 * same function a CUDA kernel would call. */
#include <float.h>
#include <math.h>

#include "comm/codec_impl.h"
#include "comm/codec_math.h"

static float px__e4m3_scale(uint32_t amax_bits)
{
    return px_cm_scale_absmax(amax_bits, PX_CM_E4M3_MAX);
}

static void px__e4m3_quantise(const float *restrict w, size_t len, float inv, void *restrict codes)
{
    uint8_t *restrict q = codes;
    for (size_t j = 0; j < len; j++) q[j] = px_cm_e4m3_encode(w[j] * inv, 0, 0);
}

static void px__e4m3_quantise_sr(const float *restrict w, size_t len, float inv, uint64_t dk,
                                 void *restrict codes)
{
    uint8_t *restrict q = codes;
    for (size_t j = 0; j < len; j++)
        q[j] = px_cm_e4m3_encode(w[j] * inv, 1, px_cm_dither(dk, (uint32_t)j));
}

/* Values of the 256 codes; filled on first use (idempotent, so a race between two first users
 * writes the same bytes twice). */
static float px__e4m3_table[256];
static int px__e4m3_table_ready;

static const float *px__e4m3_values(void)
{
    if (!__atomic_load_n(&px__e4m3_table_ready, __ATOMIC_ACQUIRE)) {
        for (int c = 0; c < 256; c++) px__e4m3_table[c] = px_cm_e4m3_decode((uint8_t)c);
        __atomic_store_n(&px__e4m3_table_ready, 1, __ATOMIC_RELEASE);
    }
    return px__e4m3_table;
}

static int px__e4m3_dequantise(const void *restrict codes, size_t len, float mult,
                               float *restrict dst, int add)
{
    const uint8_t *restrict q = codes;
    const float *restrict t = px__e4m3_values();
    int ok = 1;
    if (add) {
        for (size_t j = 0; j < len; j++) {
            float v = dst[j] + t[q[j]] * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    } else {
        for (size_t j = 0; j < len; j++) {
            float v = t[q[j]] * mult;
            dst[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    }
    return ok;
}

const px__codec_format_ops px__codec_fp8_e4m3_ops = {
    .code_bytes = 1,
    .scale = px__e4m3_scale,
    .quantise = px__e4m3_quantise,
    .quantise_sr = px__e4m3_quantise_sr,
    .dequantise = px__e4m3_dequantise,
};
