/* hadamard.c - the fast Walsh-Hadamard transform and the randomized Hadamard transform (RHT)
 * of one codec block.
 *
 * The RHT of a block x of power-of-two length L is y = H_L D x / sqrt(L), D a random +-1
 * diagonal; it spreads an outlier over the whole block so that a per-block absmax scale stays
 * fine (HALO, Ashkboos et al. 2025; ../shared/ALGORITHMS.md section 5). Its inverse is
 * x = D H_L y / sqrt(L), since H_L H_L = L I.
 *
 * The butterflies of stride h >= the vector width are plain loops the compiler vectorises (two
 * strides per pass, to halve the passes over the block). The strides below the vector width
 * would be scalar; with AVX-512 or AVX2 they run inside one register as a permute and a fused
 * multiply-add by +-1 (exact, so the result is bit-for-bit px__wht_generic's). Either way the
 * additions happen in the same order as in px__wht_generic.
 */
#include <math.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "comm/codec.h"
#include "comm/codec_impl.h"
#include "comm/codec_math.h"

void px__wht_generic(float *x, size_t len)
{
    for (size_t h = 1; h < len; h <<= 1)
        for (size_t i = 0; i < len; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/* Stride h >= first: radix-4 passes (strides h and 2h together), then one radix-2 pass if the
 * number of remaining strides is odd. */
static void px__wht_wide(float *restrict x, size_t len, size_t first)
{
    size_t h = first;
    for (; 4 * h <= len; h *= 4) {
        for (size_t i = 0; i < len; i += 4 * h) {
            float *restrict p0 = x + i, *restrict p1 = p0 + h, *restrict p2 = p1 + h,
                            *restrict p3 = p2 + h;
            for (size_t j = 0; j < h; j++) {
                float a = p0[j], b = p1[j], c = p2[j], d = p3[j];
                float s0 = a + b, s1 = a - b, s2 = c + d, s3 = c - d;
                p0[j] = s0 + s2;
                p1[j] = s1 + s3;
                p2[j] = s0 - s2;
                p3[j] = s1 - s3;
            }
        }
    }
    if (h < len) { /* one stride left: h = len / 2 */
        float *restrict p0 = x, *restrict p1 = x + h;
        for (size_t j = 0; j < h; j++) {
            float a = p0[j], b = p1[j];
            p0[j] = a + b;
            p1[j] = a - b;
        }
    }
}

#if defined(__AVX512F__)
/* Strides 1, 2, 4, 8 inside each 16-float register: out = swap_h(x) + x * (+-1), where swap_h
 * exchanges lanes j and j^h and the sign is - for lanes with bit h set (they get a - b). */
static void px__wht_narrow(float *x, size_t len)
{
    const __m512 s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512 s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const __m512 s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const __m512 s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (size_t i = 0; i < len; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        v = _mm512_fmadd_ps(v, s1, _mm512_permute_ps(v, 0xB1));
        v = _mm512_fmadd_ps(v, s2, _mm512_permute_ps(v, 0x4E));
        v = _mm512_fmadd_ps(v, s4, _mm512_shuffle_f32x4(v, v, 0xB1));
        v = _mm512_fmadd_ps(v, s8, _mm512_shuffle_f32x4(v, v, 0x4E));
        _mm512_storeu_ps(x + i, v);
    }
}
#define PX__WHT_LANES 16
#elif defined(__AVX2__)
static void px__wht_narrow(float *x, size_t len)
{
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    for (size_t i = 0; i < len; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
#ifdef __FMA__
        v = _mm256_fmadd_ps(v, s1, _mm256_permute_ps(v, 0xB1));
        v = _mm256_fmadd_ps(v, s2, _mm256_permute_ps(v, 0x4E));
        v = _mm256_fmadd_ps(v, s4, _mm256_permute2f128_ps(v, v, 0x01));
#else
        v = _mm256_add_ps(_mm256_mul_ps(v, s1), _mm256_permute_ps(v, 0xB1));
        v = _mm256_add_ps(_mm256_mul_ps(v, s2), _mm256_permute_ps(v, 0x4E));
        v = _mm256_add_ps(_mm256_mul_ps(v, s4), _mm256_permute2f128_ps(v, v, 0x01));
#endif
        _mm256_storeu_ps(x + i, v);
    }
}
#define PX__WHT_LANES 8
#endif

void px_wht(float *x, size_t len)
{
#ifdef PX__WHT_LANES
    if (len >= PX__WHT_LANES) {
        px__wht_narrow(x, len);
        px__wht_wide(x, len, PX__WHT_LANES);
        return;
    }
    px__wht_generic(x, len);
#else
    px__wht_wide(x, len, 1); /* radix-4 from stride 1: the same additions, half the passes */
#endif
}

float px__rht_norm(size_t len)
{
    return (float)(1.0 / sqrt((double)len));
}

void px__rht_sign_scale(float *out, const float *in, size_t len, uint64_t block_key, float norm)
{
    /* 32 values per half sign word: 32-bit lanes shift by a vector of counts in one
     * instruction, where 64-bit words would need shifts and narrowing */
    for (size_t k = 0; k * 32 < len; k++) {
        uint64_t word = px_cm_sign_word(block_key, (uint32_t)(k / 2));
        uint32_t half = (uint32_t)(k % 2 ? word >> 32 : word);
        size_t end = len - k * 32 < 32 ? len - k * 32 : 32;
        const float *a = in + k * 32;
        float *o = out + k * 32;
        for (size_t j = 0; j < end; j++) o[j] = px_cm_apply_sign32(a[j] * norm, half, (uint32_t)j);
    }
}

void px_rht_forward(float *x, size_t len, uint64_t block_key)
{
    px__rht_sign_scale(x, x, len, block_key, px__rht_norm(len));
    px_wht(x, len);
}

void px_rht_inverse(float *x, size_t len, uint64_t block_key)
{
    px_wht(x, len);
    px__rht_sign_scale(x, x, len, block_key, px__rht_norm(len));
}
