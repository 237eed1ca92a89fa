// codec_math_device.cu - compiled (not run) by tests/it_codec_cuda.sh: every per-element function
// of comm/codec_math.h called from a CUDA kernel, so that the header stays usable as device code
// (the CPU unit tests cover the arithmetic itself).
#include "comm/codec_math.h"

__global__ void px_codec_math_device_check(const float *x, unsigned char *q8, unsigned short *q16,
                                           float *y, int n, unsigned long long stream_key)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint64_t kb = px_cm_block_key(stream_key, (uint64_t)(i / 256));
    uint64_t w = px_cm_sign_word(kb, (uint32_t)((i % 256) / 64));
    float v = px_cm_apply_sign(x[i], w, (uint32_t)(i % 64)) +
              px_cm_apply_sign32(x[i], (uint32_t)w, (uint32_t)i);
    uint32_t r = px_cm_dither(px_cm_dither_key(kb), (uint32_t)i);
    float s = px_cm_scale_absmax(px_cm_bits(v), PX_CM_INT8_MAX) +
              px_cm_scale_pow2(px_cm_bits(v), 14) + px_cm_clamp(v, 1.0f);
    q8[i] = (unsigned char)(px_cm_int8_rne(v) ^ px_cm_int8_sr(v, r) ^ px_cm_e4m3_encode(v, 0, 0) ^
                            px_cm_e4m3_encode(v, 1, r));
    q16[i] = (unsigned short)(px_cm_fp16_encode(v, 0, 0) ^ px_cm_fp16_encode(v, 1, r) ^
                              px_cm_bf16_rne(v) ^ px_cm_bf16_sr(v, r));
    y[i] = s + px_cm_int8_decode((int8_t)q8[i]) + px_cm_e4m3_decode(q8[i]) +
           px_cm_fp16_decode(q16[i]) + px_cm_bf16_decode(q16[i]) +
           (float)px_cm_finite_bits(px_cm_bits(v));
}
