/* hd.h - what code shared by a C loop and a CUDA kernel needs: the PX_HD marker (__host__
 * __device__ under nvcc, nothing in C) and the float <-> bits casts, written once for every
 * per-element math header (comm/codec_math.h, runtime/nn/layer_math.h). */
#ifndef PX_HD_H
#define PX_HD_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define PX_HD __host__ __device__
#else
#define PX_HD
#endif

/* The bits of a float, and the float of some bits (memcpy in C: no aliasing; intrinsics on a
 * GPU). */
PX_HD static inline uint32_t px_float_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

PX_HD static inline float px_bits_float(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

#endif
