/* codec_math.h - the per-element arithmetic of the codecs, shared by the C loops and CUDA kernels.
 *
 * Everything a codec does to one value lives here as a `static inline` function marked PX_HD
 * (`__host__ __device__` under nvcc, nothing in C): rounding an fp32 value to bf16, fp16, int8 or
 * fp8 E4M3 (round to nearest even, or stochastically from 32 random bits), reading a code back,
 * choosing a block's scale from its largest magnitude, and the counter-based random bits (sign
 * vector of the randomized Hadamard transform, dither of stochastic rounding) that sender and
 * receiver derive from the same key. The C loops in comm/codec_*.c call these functions, so the
 * CPU tests cover the arithmetic a GPU kernel would run. No state, no allocation, no libc beyond
 * math.h and memcpy.
 *
 * Formats (codes carry the sign in their top bit):
 *   bf16      1 sign, 8 exponent (bias 127), 7 mantissa bits: the top half of an fp32.
 *   fp16      IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa; max 65504, smallest
 *             normal 2^-14, subnormals down to 2^-24. Codes with exponent 31 are inf/NaN.
 *   fp8 E4M3  OCP "E4M3FN": 1 sign, 4 exponent (bias 7), 3 mantissa; no infinities; max 448
 *             (0x7E), smallest normal 2^-6 (0x08), subnormals m * 2^-9 (0x01..0x07); 0x7F and
 *             0xFF are NaN.
 *   int8      two's complement q in [-127, 127], value q * scale (-128 is never produced; when
 *             received it decodes to -128 * scale).
 * Encoders saturate: a magnitude above the format's largest finite value becomes that value.
 */
#ifndef PX_CODEC_MATH_H
#define PX_CODEC_MATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/hd.h"

#define PX_CM_INT8_MAX 127.0f
#define PX_CM_E4M3_MAX 448.0f
#define PX_CM_FP16_MAX 65504.0f

/* ---- bit casts (base/hd.h) ------------------------------------------------------------------ */

PX_HD static inline uint32_t px_cm_bits(float f)
{
    return px_float_bits(f);
}

PX_HD static inline float px_cm_float(uint32_t u)
{
    return px_bits_float(u);
}

/* 2^e as a float, for e in [-126, 127] (exact, no libm). */
PX_HD static inline float px_cm_pow2(int e)
{
    return px_cm_float((uint32_t)(e + 127) << 23);
}

/* True when the fp32 bits `u` are a finite value (the exponent field is not all ones). */
PX_HD static inline int px_cm_finite_bits(uint32_t u)
{
    return (u & 0x7FFFFFFFu) < 0x7F800000u;
}

/* ---- counter-based random bits ------------------------------------------------------------------
 * A codec call has a 64-bit stream key (comm/codec.c derives it with px_hash4 of base/rng.h
 * from run seed, PX_STREAM_CODEC, worker and step). Block b gets the key px_cm_block_key(K, b);
 * from a block key, the sign of element j and its stochastic-rounding dither are pure functions
 * of j, so any thread (or CUDA thread) can compute its own without a sequential generator. */

/* The splitmix64 output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer. */
PX_HD static inline uint64_t px_cm_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Key of block `block` of a call whose stream key is `stream_key`. */
PX_HD static inline uint64_t px_cm_block_key(uint64_t stream_key, uint64_t block)
{
    return px_cm_mix64(stream_key + (block + 1) * 0x9E3779B97F4A7C15ull);
}

/* 64 sign bits for elements 64*word .. 64*word+63 of a block: bit k set = element 64*word+k is
 * negated by the diagonal of the randomized Hadamard transform. */
PX_HD static inline uint64_t px_cm_sign_word(uint64_t block_key, uint32_t word)
{
    return px_cm_mix64(block_key ^ (((uint64_t)word + 1) * 0xD1B54A32D192ED03ull));
}

/* `mag` with the sign bit of element (j mod 64) of `sign_word` applied: +mag or -mag. */
PX_HD static inline float px_cm_apply_sign(float mag, uint64_t sign_word, uint32_t j)
{
    uint32_t flip = (uint32_t)((sign_word >> (j & 63u)) & 1u) << 31;
    return px_cm_float(px_cm_bits(mag) ^ flip);
}

/* The same with the 32 sign bits of elements 32k .. 32k+31 (half of a sign word: the low half
 * for even k), for loops that work on 32-bit lanes; j is taken mod 32. */
PX_HD static inline float px_cm_apply_sign32(float mag, uint32_t sign_half, uint32_t j)
{
    return px_cm_float(px_cm_bits(mag) ^ (((sign_half >> (j & 31u)) & 1u) << 31));
}

/* A 32-bit integer hash with low bias ("lowbias32", C. Wellons, hash-prospector). */
PX_HD static inline uint32_t px_cm_hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* Key of the stochastic-rounding dither of a block (independent of its signs). */
PX_HD static inline uint64_t px_cm_dither_key(uint64_t block_key)
{
    return px_cm_mix64(block_key ^ 0x5851F42D4C957F2Dull);
}

/* 32 random bits for element j of a block with dither key `dk`. */
PX_HD static inline uint32_t px_cm_dither(uint64_t dk, uint32_t j)
{
    return px_cm_hash32(px_cm_hash32((uint32_t)dk ^ j) + (uint32_t)(dk >> 32));
}

/* ---- block scales -------------------------------------------------------------------------------
 * A block is sent as one fp32 scale and codes; value = decode(code) * scale. The encoder picks
 * the scale from the block's largest magnitude `amax_bits` (fp32 bits, sign cleared) and
 * quantises value / scale. An all-zero block has scale 0; a block holding NaN or Inf gets a NaN
 * scale (and zero codes), which the receiver refuses, as it refuses a NaN fp32 gradient. */

/* Absmax scale amax / qmax (int8: qmax 127, fp8: 448): the largest magnitude lands on the largest
 * code. Never below FLT_MIN, so 1/scale stays finite for blocks of tiny (even subnormal) values. */
PX_HD static inline float px_cm_scale_absmax(uint32_t amax_bits, float qmax)
{
    if (!px_cm_finite_bits(amax_bits)) return px_cm_float(0x7FC00000u);
    if (amax_bits == 0) return 0.0f;
    float s = px_cm_float(amax_bits) / qmax;
    return s < FLT_MIN ? FLT_MIN : s;
}

/* Power-of-two scale with amax / scale in [2^top, 2^(top+1)) (bf16: top 0, fp16: top 14), at
 * least 2^-126. Scaling by a power of two is exact, so the codec's error is exactly the format's
 * rounding error (round-to-nearest-even ties stay ties). */
PX_HD static inline float px_cm_scale_pow2(uint32_t amax_bits, int top)
{
    if (!px_cm_finite_bits(amax_bits)) return px_cm_float(0x7FC00000u);
    if (amax_bits == 0) return 0.0f;
    int e = (int)(amax_bits >> 23) - 127; /* -127 for a subnormal amax: clamped below */
    int k = e - top;
    if (k < -126) k = -126;
    return px_cm_pow2(k);
}

/* ---- int8 ------------------------------------------------------------------------------------ */

/* y clamped to [-lim, lim]; NaN gives -lim. Written with comparisons rather than fminf/fmaxf,
 * whose NaN rules keep compilers from using vector min/max. */
PX_HD static inline float px_cm_clamp(float y, float lim)
{
    y = y > -lim ? y : -lim;
    return y < lim ? y : lim;
}

/* y = value / scale rounded to nearest even and clamped to [-127, 127]. */
PX_HD static inline int8_t px_cm_int8_rne(float y)
{
    return (int8_t)(int32_t)rintf(px_cm_clamp(y, PX_CM_INT8_MAX));
}

/* Stochastic rounding of the magnitude: floor(|y|) + 1 with probability |y| - floor(|y|) (an
 * exact difference), from the top 24 random bits; E[result] = y up to 2^-24 (the resolution of
 * the uniform draw). */
PX_HD static inline int8_t px_cm_int8_sr(float y, uint32_t rnd)
{
    /* |y| clamped to 127 on the bit pattern (magnitudes order as their bits; NaN gives 127):
     * a float select here keeps GCC from vectorising */
    uint32_t ab = px_cm_bits(y) & 0x7FFFFFFFu;
    float a = px_cm_float(ab < 0x42FE0000u ? ab : 0x42FE0000u);
    float f = (float)(int32_t)a; /* floor(a) for 0 <= a <= 127 */
    float u = (float)(int32_t)(rnd >> 8) * 0x1.0p-24f;
    /* u < a - f from the sign of the difference (no float comparison: it keeps GCC from
     * vectorising; the difference of two finite values is never rounded to zero) */
    float q = f + (float)(int32_t)(px_cm_bits(u - (a - f)) >> 31);
    return (int8_t)(int32_t)px_cm_float(px_cm_bits(q) | (px_cm_bits(y) & 0x80000000u));
}

PX_HD static inline float px_cm_int8_decode(int8_t q)
{
    return (float)q;
}

/* ---- small binary floats (fp16, fp8 E4M3) ---------------------------------------------------- */

/* Rounds the magnitude with fp32 bits `a` (sign cleared, finite) onto the grid of a binary
 * float format with `man` mantissa bits, smallest normal exponent `emin` and largest finite
 * magnitude `maxa` (fp32 bits); returns the format's magnitude bits (exponent field << man |
 * mantissa; exponent bias 1 - emin). `sr` = 0: round to nearest, ties to even; `sr` = 1: round
 * up with probability equal to the fraction of the gap (exact: the random bits are added below
 * the kept bits, where the fp32 pattern is linear in the value within a binade).
 * Magnitudes above maxa saturate to maxa. */
PX_HD static inline uint32_t px_cm_round_small(uint32_t a, int man, int emin, uint32_t maxa, int sr,
                                               uint32_t rnd)
{
    /* Branch-free (both cases computed, then selected) so that the C loops vectorise. */
    a = a < maxa ? a : maxa;
    int E = (int)(a >> 23);
    int below = emin + 127 - E; /* binades below the smallest normal of the format */
    int shift = 23 - man + (below > 0 ? below : 0);
    /* Case 1, shift <= 23: the grid spacing is 2^shift units of the fp32 pattern within this
     * binade and the binade's start is on the grid, so integer rounding of `a` is rounding of
     * the value. The parity of the code below `a` comes from the significand with its implicit
     * bit, so that at shift 23 (one grid step per binade) the code 1 counts as odd. */
    int sh = shift < 23 ? shift : 23;
    uint32_t mask = (1u << sh) - 1u;
    uint32_t odd = (((a & 0x7FFFFFu) | 0x800000u) >> sh) & 1u;
    uint32_t add = sr ? (rnd & mask) : ((mask >> 1) + odd);
    uint32_t b = (a + add) & ~mask;
    int eb = (int)(b >> 23) - 127;
    uint32_t normal =
        ((uint32_t)(eb - emin + 1) << man) | ((b >> (23 - man)) & ((1u << man) - 1u));
    /* a subnormal of the format: the count of units 2^(emin-man), an exact small integer. It is
     * computed for every value (branch-free) but used only below 2^emin, so the operand is
     * capped there: above it the product would not fit an int32, and converting it would be
     * undefined behaviour even though the result is discarded. */
    uint32_t min_normal = (uint32_t)(emin + 127) << 23;
    uint32_t b_sub = b < min_normal ? b : min_normal;
    uint32_t sub = (uint32_t)(int32_t)(px_cm_float(b_sub) * px_cm_pow2(man - emin));
    uint32_t on_grid = eb >= emin ? normal : sub;
    /* Case 2, shift > 23: below one unit 2^(emin-man) the result is 0 or 1 unit. RNE: 1 above
     * half a unit (half a unit itself is a tie, to the even code 0). Stochastic: 1 with
     * probability t = |x| / unit, as rnd < T = floor(t 2^32), T computed from the significand
     * (unbiased up to 2^-32 of a unit). Integer arithmetic only: GCC would move float work into
     * a branch here and then not vectorise. */
    uint32_t half_unit = (uint32_t)(emin - man - 1 + 127) << 23;
    uint32_t sig = (a & 0x7FFFFFu) | (E > 0 ? 0x800000u : 0u);
    int rs = 126 - man + emin - E; /* t 2^32 = (sig << 8) >> rs */
    rs = rs < 0 ? 0 : (rs > 31 ? 31 : rs);
    uint32_t tiny = sr ? (rnd < ((sig << 8) >> rs) ? 1u : 0u) : (a > half_unit ? 1u : 0u);
    return shift <= 23 ? on_grid : tiny;
}

/* Value of the magnitude bits `m` of a format with `man` mantissa bits and smallest normal
 * exponent `emin` (no special codes: callers handle inf/NaN patterns). */
PX_HD static inline float px_cm_small_value(uint32_t m, int man, int emin)
{
    uint32_t e = m >> man, f = m & ((1u << man) - 1u);
    /* A subnormal f * 2^(emin-man) is 2^emin (1 + f / 2^man) - 2^emin, exactly: one
     * unconditional subtraction, the cases selected on integers (branch-free, so that loops
     * of it vectorise). */
    uint32_t eb = (e > 0 ? e - 1u : 0u) + (uint32_t)(emin + 127);
    float bias = px_cm_float(e == 0 ? (uint32_t)(emin + 127) << 23 : 0u);
    return px_cm_float((eb << 23) | (f << (23 - man))) - bias;
}

/* fp16 code of y (finite), RNE (sr = 0) or stochastic, saturating at 65504. */
PX_HD static inline uint16_t px_cm_fp16_encode(float y, int sr, uint32_t rnd)
{
    uint32_t u = px_cm_bits(y);
    uint32_t s = (u >> 16) & 0x8000u;
    return (uint16_t)(s | px_cm_round_small(u & 0x7FFFFFFFu, 10, -14, 0x477FE000u, sr, rnd));
}

/* Value of an fp16 code; exponent-31 codes decode to +-inf or NaN as IEEE 754 defines. */
PX_HD static inline float px_cm_fp16_decode(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, m = h & 0x7FFFu;
    uint32_t v = px_cm_bits(px_cm_small_value(m, 10, -14));
    return px_cm_float((m >= 0x7C00u ? 0x7F800000u | ((m & 0x3FFu) << 13) : v) | s);
}

/* fp8 E4M3 code of y (finite), RNE (sr = 0) or stochastic, saturating at 448. */
PX_HD static inline uint8_t px_cm_e4m3_encode(float y, int sr, uint32_t rnd)
{
    uint32_t u = px_cm_bits(y);
    uint32_t s = (u >> 24) & 0x80u;
    return (uint8_t)(s | px_cm_round_small(u & 0x7FFFFFFFu, 3, -6, 0x43E00000u, sr, rnd));
}

/* Value of an fp8 E4M3 code; 0x7F and 0xFF (the format's NaN) decode to NaN. */
PX_HD static inline float px_cm_e4m3_decode(uint8_t c)
{
    uint32_t s = (uint32_t)(c & 0x80u) << 24, m = c & 0x7Fu;
    uint32_t v = px_cm_bits(px_cm_small_value(m, 3, -6));
    return px_cm_float((m == 0x7Fu ? 0x7FC00000u : v) | s);
}

/* ---- bf16 ------------------------------------------------------------------------------------ */

/* bf16 code of y (finite), RNE: add half an ulp minus one, plus the kept bit's parity. Values
 * that round past the largest bf16 become inf (never reached: the codec scales blocks to
 * [1, 2)). */
PX_HD static inline uint16_t px_cm_bf16_rne(float y)
{
    uint32_t u = px_cm_bits(y);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 code of y (finite), stochastic: 16 random bits added below the kept bits, then cut. */
PX_HD static inline uint16_t px_cm_bf16_sr(float y, uint32_t rnd)
{
    return (uint16_t)((px_cm_bits(y) + (rnd & 0xFFFFu)) >> 16);
}

PX_HD static inline float px_cm_bf16_decode(uint16_t h)
{
    return px_cm_float((uint32_t)h << 16);
}

#endif
