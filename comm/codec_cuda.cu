// codec_cuda.cu - the codecs as CUDA kernels (see codec_cuda.h). The per-value arithmetic is
// comm/codec_math.h, shared with the CPU loops of comm/codec_*.c; the block layout on the wire
// (an fp32 scale, then P codes) is comm/codec.c's.
#include <float.h>
#include <string.h>

#include "base/cuda_check.h"
#include "base/rng.h"
#include "comm/codec_cuda.h"
#include "comm/codec_math.h"

#define PX__CODEC_THREADS 256

// ---- a format's three operations, dispatched on the format (codec_math.h) ----------------------

__device__ static inline float px__fmt_scale(int fmt, uint32_t amax_bits)
{
    switch (fmt) {
    case PX_CODEC_BF16: return px_cm_scale_pow2(amax_bits, 0);
    case PX_CODEC_FP16: return px_cm_scale_pow2(amax_bits, 14);
    case PX_CODEC_INT8: return px_cm_scale_absmax(amax_bits, PX_CM_INT8_MAX);
    default: return px_cm_scale_absmax(amax_bits, PX_CM_E4M3_MAX);
    }
}

__device__ static inline void px__fmt_encode(int fmt, unsigned char *codes, size_t j, float y,
                                             int sr, uint32_t rnd)
{
    uint16_t h;
    switch (fmt) {
    case PX_CODEC_BF16:
        h = sr ? px_cm_bf16_sr(y, rnd) : px_cm_bf16_rne(y);
        memcpy(codes + 2 * j, &h, 2);
        break;
    case PX_CODEC_FP16:
        h = px_cm_fp16_encode(y, sr, rnd);
        memcpy(codes + 2 * j, &h, 2);
        break;
    case PX_CODEC_INT8:
        codes[j] = (unsigned char)(sr ? px_cm_int8_sr(y, rnd) : px_cm_int8_rne(y));
        break;
    default: codes[j] = px_cm_e4m3_encode(y, sr, rnd); break;
    }
}

__device__ static inline float px__fmt_decode(int fmt, const unsigned char *codes, size_t j)
{
    uint16_t h;
    switch (fmt) {
    case PX_CODEC_BF16: memcpy(&h, codes + 2 * j, 2); return px_cm_bf16_decode(h);
    case PX_CODEC_FP16: memcpy(&h, codes + 2 * j, 2); return px_cm_fp16_decode(h);
    case PX_CODEC_INT8: return px_cm_int8_decode((int8_t)codes[j]);
    default: return px_cm_e4m3_decode(codes[j]);
    }
}

// ---- block helpers ------------------------------------------------------------------------------

// The Walsh-Hadamard butterflies over w[0..P) in shared memory: each stride's pairs are
// independent, so the values after every stride are those of px__wht_generic
__device__ static void px__wht_shared(float *w, size_t P)
{
    for (size_t h = 1; h < P; h <<= 1) {
        __syncthreads();
        for (size_t q = threadIdx.x; q < P / 2; q += blockDim.x) {
            size_t j = (q / h) * 2 * h + q % h;
            float a = w[j], b = w[j + h];
            w[j] = a + b;
            w[j + h] = a - b;
        }
    }
    __syncthreads();
}

// Largest fp32 magnitude bits over w[0..P) (as px__absmax_bits: NaN/Inf patterns are larger
// than every finite one)
__device__ static uint32_t px__absmax_shared(const float *w, size_t P)
{
    __shared__ uint32_t m;
    if (threadIdx.x == 0) m = 0;
    __syncthreads();
    uint32_t mine = 0;
    for (size_t j = threadIdx.x; j < P; j += blockDim.x) {
        uint32_t b = px_cm_bits(w[j]) & 0x7FFFFFFFu;
        mine = b > mine ? b : mine;
    }
    atomicMax(&m, mine);
    __syncthreads();
    return m;
}

struct px__codec_args {
    int fmt, rht, sr;
    size_t B, n, code_bytes, block_bytes;
    uint64_t key;
    float norm_full; // 1/sqrt(B), as the CPU computes it once
};

__device__ static inline size_t px__pow2_at_least(size_t r)
{
    size_t p = 1;
    while (p < r) p <<= 1;
    return p;
}

__device__ static inline float px__norm(const px__codec_args &a, size_t P)
{
    return P == a.B ? a.norm_full : (float)(1.0 / sqrt((double)P));
}

// ---- kernels ------------------------------------------------------------------------------------

__global__ static void px__k_encode(px__codec_args a, const float *x, unsigned char *payload)
{
    extern __shared__ float w[];
    size_t b = blockIdx.x, i0 = b * a.B;
    size_t r = a.n - i0 < a.B ? a.n - i0 : a.B, P = a.rht ? px__pow2_at_least(r) : r;
    unsigned char *dst = payload + b * a.block_bytes;
    uint64_t kb = a.rht || a.sr ? px_cm_block_key(a.key, b) : 0;
    float norm = a.rht ? px__norm(a, P) : 1.0f;
    for (size_t j = threadIdx.x; j < P; j += blockDim.x) {
        float v = j < r ? x[i0 + j] : 0.0f;
        w[j] = a.rht && j < r ? px_cm_apply_sign(v * norm, px_cm_sign_word(kb, (uint32_t)(j / 64)),
                                                 (uint32_t)j)
                              : v;
    }
    if (a.rht) px__wht_shared(w, P);
    float scale = px__fmt_scale(a.fmt, px__absmax_shared(w, P));
    if (threadIdx.x == 0) memcpy(dst, &scale, sizeof scale);
    unsigned char *codes = dst + sizeof scale;
    int finite = px_cm_finite_bits(px_cm_bits(scale));
    float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    uint64_t dk = px_cm_dither_key(kb);
    for (size_t j = threadIdx.x; j < P; j += blockDim.x) {
        if (!finite) { // NaN or Inf in the input: zero codes, the receiver refuses the NaN scale
            memset(codes + j * a.code_bytes, 0, a.code_bytes);
            continue;
        }
        px__fmt_encode(a.fmt, codes, j, w[j] * inv, a.sr, a.sr ? px_cm_dither(dk, (uint32_t)j) : 0u);
    }
}

__global__ static void px__k_decode(px__codec_args a, const unsigned char *payload, float *out,
                                    int add, int *bad)
{
    extern __shared__ float w[];
    size_t b = blockIdx.x, i0 = b * a.B;
    size_t r = a.n - i0 < a.B ? a.n - i0 : a.B, P = a.rht ? px__pow2_at_least(r) : r;
    const unsigned char *src = payload + b * a.block_bytes;
    float scale;
    memcpy(&scale, src, sizeof scale);
    if (!px_cm_finite_bits(px_cm_bits(scale))) {
        if (threadIdx.x == 0) atomicOr(bad, 1);
        return;
    }
    const unsigned char *codes = src + sizeof scale;
    int ok = 1;
    if (!a.rht) {
        for (size_t j = threadIdx.x; j < r; j += blockDim.x) {
            float v = px__fmt_decode(a.fmt, codes, j) * scale;
            v = add ? out[i0 + j] + v : v;
            out[i0 + j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    } else {
        for (size_t j = threadIdx.x; j < P; j += blockDim.x)
            w[j] = px__fmt_decode(a.fmt, codes, j) * scale;
        px__wht_shared(w, P);
        uint64_t kb = px_cm_block_key(a.key, b);
        float norm = px__norm(a, P);
        for (size_t j = threadIdx.x; j < r; j += blockDim.x) {
            float v = px_cm_apply_sign(w[j] * norm, px_cm_sign_word(kb, (uint32_t)(j / 64)),
                                       (uint32_t)j);
            v = add ? out[i0 + j] + v : v;
            out[i0 + j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
    }
    if (!ok) atomicOr(bad, 1);
}

// ---- calls --------------------------------------------------------------------------------------

static px_status px__args(const px_codec_spec *spec, const px_codec_stream *st, size_t n,
                          px__codec_args *a, size_t *blocks)
{
    if (spec->format == PX_CODEC_FP32 || (unsigned)spec->format >= PX_CODEC_FORMAT_COUNT)
        return px_error(PX_EINVAL, "codec cuda: format %d has no device kernel (fp32 is a copy)",
                        (int)spec->format);
    if (spec->block_size == 0 || (spec->block_size & (spec->block_size - 1)) ||
        spec->block_size > PX_CODEC_CUDA_MAX_BLOCK)
        return px_error(PX_ENOTSUP,
                        "codec cuda: block_size %u; the device codec takes powers of two up to "
                        "%u (shared memory)",
                        spec->block_size, PX_CODEC_CUDA_MAX_BLOCK);
    a->fmt = (int)spec->format;
    a->rht = spec->rht;
    a->sr = spec->stochastic;
    a->B = spec->block_size;
    a->n = n;
    a->code_bytes = (spec->format == PX_CODEC_BF16 || spec->format == PX_CODEC_FP16) ? 2 : 1;
    a->block_bytes = sizeof(float) + a->B * a->code_bytes;
    a->key = px_hash4(st->seed, PX_STREAM_CODEC, st->worker, st->step);
    a->norm_full = (float)(1.0 / sqrt((double)a->B));
    *blocks = (n + a->B - 1) / a->B;
    return PX_OK;
}

extern "C" px_status px_codec_encode_cuda(const px_codec_spec *spec, const px_codec_stream *st,
                                          const float *x, size_t n, unsigned char *payload,
                                          void *stream)
{
    px__codec_args a = {};
    size_t blocks = 0;
    PX_CHECK(px__args(spec, st, n, &a, &blocks));
    if (blocks == 0) return PX_OK;
    px__k_encode<<<(unsigned)blocks, PX__CODEC_THREADS, a.B * sizeof(float),
                   (cudaStream_t)stream>>>(a, x, payload);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_codec_decode_cuda(const px_codec_spec *spec, const px_codec_stream *st,
                                          const unsigned char *payload, size_t n, float *out,
                                          int add, int *bad, void *stream)
{
    px__codec_args a = {};
    size_t blocks = 0;
    PX_CHECK(px__args(spec, st, n, &a, &blocks));
    if (blocks == 0) return PX_OK;
    px__k_decode<<<(unsigned)blocks, PX__CODEC_THREADS, a.B * sizeof(float),
                   (cudaStream_t)stream>>>(a, payload, out, add, bad);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}
