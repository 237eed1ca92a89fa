/* layer_math.h - the per-element arithmetic of the layers, shared by the C loops and CUDA kernels.
 *
 * What a layer does to one value lives here as a `static inline` function marked PX_HD
 * (`__host__ __device__` under nvcc, nothing in C), as comm/codec_math.h does for the codecs:
 * a vectorisable exp, GELU and its derivative, ReLU and its derivative, layer normalisation of one
 * value and its input gradient, the max-pooling comparison, the softmax backward of one attention
 * score and the gradient of softmax cross-entropy with respect to one logit. The loops of
 * runtime/nn/layers.c call these, so the CPU tests cover the arithmetic a GPU kernel would run. No
 * state, no allocation, no libc beyond math.h and memcpy.
 */
#ifndef PX_LAYER_MATH_H
#define PX_LAYER_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/hd.h"

#define PX_LM_LN_EPS 1e-5f /* layer norm's epsilon, added to the variance (PyTorch, GPT-2) */

/* ---- exp ----------------------------------------------------------------------------------------
 * libm's expf and tanhf are a call per element, which no compiler vectorises without
 * -ffast-math; at GPT sizes GELU alone then costs more than the layer's matrix products. This exp
 * is plain arithmetic, so a loop of it vectorises, and it is the same on a GPU.
 * x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2; ln2 is split in two (Cody & Waite) so
 * that n * ln2 is exact; e^r by the minimax polynomial of Cephes' expf (S. L. Moshier); 2^n
 * written straight into the exponent bits. Relative error within 2 ulp (tests/test_layers.c
 * checks it against exp in double). x is clamped to [-87, 88] so that 2^n stays a normal float:
 * e^x below e^-87 (~1.6e-38) returns that instead of underflowing towards 0, and above e^88
 * (~1.7e38) returns that instead of overflowing to inf. A NaN stays NaN. */

PX_HD static inline uint32_t px_lm_bits(float f)
{
    return px_float_bits(f);
}

PX_HD static inline float px_lm_float(uint32_t u)
{
    return px_bits_float(u);
}

PX_HD static inline float px_lm_expf(float x)
{
    x = x < -87.0f ? -87.0f : x; /* comparisons, not fmaxf/fminf, so that a NaN passes */
    x = x > 88.0f ? 88.0f : x;
    /* adding 1.5 * 2^23 rounds x / ln2 to an integer n held in the low mantissa bits */
    const float magic = 12582912.0f;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    uint32_t n_bits = px_lm_bits(t) - px_lm_bits(magic); /* n, two's complement */
    float r = x - n * 0.693359375f;                      /* ln2 = 0.693359375 - 2.12194440e-4 */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * px_lm_float((n_bits + 127u) << 23); /* 2^n, n in [-126, 127] */
}

/* ---- GELU, tanh approximation ------------------------------------------------------------------
 * gelu(x) = x/2 (1 + tanh(u)), u = s (x + a x^3), s = sqrt(2/pi), a = 0.044715 (Hendrycks & Gimpel
 * 2016, the "tanh approximation"; what GPT-2, llm.c and PyTorch's approximate="tanh" compute).
 * Evaluated through the identity (1 + tanh u)/2 = sigmoid(2u) = 1 / (1 + e^-2u): one exp, no
 * cancellation in either tail (x/2 (1 + tanh u) loses its digits where tanh u is near -1). */

#define PX_LM_GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define PX_LM_GELU_A 0.044715f

/* e^-2u for the input x: sigmoid(2u) = 1 / (1 + e^-2u) and 1 - sigmoid(2u) = e^-2u sigmoid(2u) */
PX_HD static inline float px_lm_gelu_exp(float x)
{
    float u = PX_LM_GELU_S * (x + PX_LM_GELU_A * x * x * x);
    return px_lm_expf(-2.0f * u);
}

PX_HD static inline float px_lm_gelu(float x)
{
    return x / (1.0f + px_lm_gelu_exp(x));
}

/* d/dx [x g] = g + x 2 g (1 - g) du/dx with g = sigmoid(2u), du/dx = s (1 + 3 a x^2); 1 - g taken
 * as e g, exact where g is near 1. Finite for |x| up to ~1e19, where 3 a x^2 overflows (PyTorch's
 * tanh form gives NaN there too). */
PX_HD static inline float px_lm_gelu_grad(float x)
{
    float e = px_lm_gelu_exp(x);
    float g = 1.0f / (1.0f + e);
    return g + 2.0f * x * g * (e * g) * PX_LM_GELU_S * (1.0f + 3.0f * PX_LM_GELU_A * x * x);
}

/* ---- ReLU ------------------------------------------------------------------------------------ */

PX_HD static inline float px_lm_relu(float x)
{
    return x > 0.0f ? x : 0.0f;
}

/* The derivative read from the forward's output: out > 0 exactly when the input was > 0, and the
 * output is what a network keeps anyway (it feeds the next layer). 0 at x = 0, as PyTorch. */
PX_HD static inline float px_lm_relu_grad_from_out(float out)
{
    return out > 0.0f ? 1.0f : 0.0f;
}

/* The gradient through a ReLU, in place: d where the forward's output was > 0, else exactly 0
 * (a select, not a product: no -0 from a negative d, no NaN from a NaN d where the unit was
 * off). */
PX_HD static inline float px_lm_relu_mask(float out, float d)
{
    return out > 0.0f ? d : 0.0f;
}

/* ---- layer norm ---------------------------------------------------------------------------------
 * y = (x - mean) * rstd * w + b over a row of C values, rstd = 1/sqrt(var + eps), var the biased
 * (population) variance. */

PX_HD static inline float px_lm_ln_norm(float x, float mean, float rstd)
{
    return (x - mean) * rstd;
}

PX_HD static inline float px_lm_ln_out(float norm, float w, float b)
{
    return norm * w + b;
}

/* Input gradient of one element of a row (llm.c's layernorm_backward; Ba et al. 2016 with the
 * mean and variance differentiated through): with dnorm = w * dout,
 *   dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)). */
PX_HD static inline float px_lm_ln_dinp(float dnorm, float norm, float dnorm_mean,
                                        float dnorm_norm_mean, float rstd)
{
    return rstd * (dnorm - dnorm_mean - norm * dnorm_norm_mean);
}

/* ---- max pooling -------------------------------------------------------------------------------
 * Whether candidate v replaces the window's best so far: strictly greater, so the first maximum in
 * row-major order wins a tie; a NaN always wins and then stays (as PyTorch: NaN propagates). */
PX_HD static inline int px_lm_max_takes(float v, float best)
{
    return v > best || v != v;
}

/* ---- softmax ---------------------------------------------------------------------------------
 * Backward of p = softmax(z) for one element: dz_i = p_i (dp_i - sum_j p_j dp_j); `dot` is that
 * sum over the row. */
PX_HD static inline float px_lm_softmax_dz(float p, float dp, float dot)
{
    return p * (dp - dot);
}

/* Gradient of the mean cross-entropy over N rows with respect to one logit:
 *   d/dz_j [ (1/N) sum_n (lse(z_n) - z_n[target_n]) ] = (p_j - [j == target]) / N. */
PX_HD static inline float px_lm_ce_dlogit(float p, int is_target, float inv_n)
{
    return (p - (is_target ? 1.0f : 0.0f)) * inv_n;
}

#endif
