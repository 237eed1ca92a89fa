/* codec_test.h - shared by the codec tests (test_codec*.c): spec and context makers, seeded
 * data, and access to a payload's block scales. Static functions: each test file includes it
 * once. */
#ifndef PX_CODEC_TEST_H
#define PX_CODEC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>

#include "comm/codec.h"
#include "base/pool.h"
#include "base/rng.h"

static const px_codec_format FORMATS[] = {PX_CODEC_BF16, PX_CODEC_FP16, PX_CODEC_INT8,
                                          PX_CODEC_FP8_E4M3};
#define N_FORMATS (sizeof FORMATS / sizeof FORMATS[0])

static inline px_codec_spec spec_of(px_codec_format f, int rht, int sr, uint32_t block)
{
    px_codec_spec s = {.format = f, .rht = rht, .stochastic = sr, .block_size = block};
    return s;
}

static inline px_codec *make(px_codec_spec s, size_t n_max, px_pool *pool)
{
    px_codec *c = NULL;
    if (px_codec_create(&c, &s, n_max, pool) != PX_OK) fail_msg("create: %s", px_errmsg());
    return c;
}

static inline void fill_normal(float *x, size_t n, uint64_t seed, double sd)
{
    px_rng r;
    px_rng_init(&r, seed, 77, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * px_rng_normal(&r));
}

static inline float scale_at(const void *payload, const px_codec_spec *s, size_t block)
{
    size_t bytes = 4 + (size_t)s->block_size * (s->format == PX_CODEC_BF16 ||
                                                        s->format == PX_CODEC_FP16
                                                    ? 2
                                                    : 1);
    float v;
    memcpy(&v, (const unsigned char *)payload + block * bytes, 4);
    return v;
}

static inline void set_scale(void *payload, const px_codec_spec *s, size_t block, float v)
{
    size_t bytes = 4 + (size_t)s->block_size * (s->format == PX_CODEC_BF16 ||
                                                        s->format == PX_CODEC_FP16
                                                    ? 2
                                                    : 1);
    memcpy((unsigned char *)payload + block * bytes, &v, 4);
}


#endif
