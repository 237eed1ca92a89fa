/* optimizer_math.h - the per-element arithmetic of the optimizers, shared by the C loops of
 * runtime/nn/optimizer.c and the CUDA kernels of runtime/nn/optimizer_cuda.cu (PX_HD), as
 * layer_math.h is for the layers: one source of truth that the CPU tests cover.
 *
 * SGD (torch.optim.SGD, dampening 0):  g' = g + wd w;  v' = mu v + g';
 *                                       w' = w - lr (nesterov ? g' + mu v' : v')
 * AdamW (Loshchilov & Hutter 2019, decoupled decay, as torch.optim.AdamW):
 *   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;
 *   w' = w (1 - lr wd) - (lr / bc1) m' / (sqrt(v') / sqrt(bc2) + eps),  bc_k = 1 - b_k^t
 * The per-step scalars (lr / bc1, sqrt(bc2), 1 - lr wd) are computed once per step on the host.
 * An element whose new values are not all finite keeps its old ones (the caller counts it).
 */
#ifndef PX_OPTIMIZER_MATH_H
#define PX_OPTIMIZER_MATH_H

#include <math.h>
#include <stdint.h>

#include "base/hd.h"

/* 1 when x is finite (exponent field not all ones), from its bits: no libm, no branch. */
PX_HD static inline int px_om_finite(float x)
{
    return (px_float_bits(x) & 0x7F800000u) != 0x7F800000u;
}

/* ---- SGD ---------------------------------------------------------------------------------- */

/* Weight after a step without momentum. */
PX_HD static inline float px_om_sgd_plain(float w, float g, float lr, float wd)
{
    return w - lr * (g + wd * w);
}

/* The decayed gradient g' = g + wd w. */
PX_HD static inline float px_om_sgd_grad(float g, float w, float wd)
{
    return g + wd * w;
}

/* The new momentum v' = mu v + g'. */
PX_HD static inline float px_om_sgd_velocity(float v, float gd, float mu)
{
    return mu * v + gd;
}

/* The new weight from g' and v'. */
PX_HD static inline float px_om_sgd_weight(float w, float gd, float nv, float lr, float mu,
                                           int nesterov)
{
    return w - lr * (nesterov ? gd + mu * nv : nv);
}

/* ---- AdamW ---------------------------------------------------------------------------------- */

/* The scalars of step t (1-based) of AdamW: step = lr / bc1, bc2_sqrt = sqrt(bc2), decay =
 * 1 - lr wd; the bias corrections in double (b^t for large t). Host only. */
typedef struct {
    float step, bc2_sqrt, decay;
} px_om_adam_scalars;

static inline px_om_adam_scalars px_om_adam_at(float lr, float b1, float b2, float wd, uint64_t t)
{
    const double bc1 = 1.0 - pow((double)b1, (double)t);
    const double bc2 = 1.0 - pow((double)b2, (double)t);
    px_om_adam_scalars s = {(float)((double)lr / bc1), (float)sqrt(bc2), 1.0f - lr * wd};
    return s;
}

PX_HD static inline float px_om_adam_m(float m, float g, float b1)
{
    return b1 * m + (1.0f - b1) * g;
}

PX_HD static inline float px_om_adam_v(float v, float g, float b2)
{
    return b2 * v + (1.0f - b2) * g * g;
}

PX_HD static inline float px_om_adamw_weight(float w, float nm, float nv, float decay, float step,
                                             float bc2_sqrt, float eps)
{
    float denom = sqrtf(nv) / bc2_sqrt + eps;
    return w * decay - step * nm / denom;
}

#endif
