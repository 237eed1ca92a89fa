/* rng.h - seeded random streams (part of the common base: no other dependency).
 *
 * Every random decision of a run comes from a stream named by (run seed, purpose, a, b): the
 * minibatch of logical worker a at step b, the initial weights, a codec's sign vector, an
 * attacker's noise. A stream depends only on its name, never on which rank or thread draws
 * it or on what was drawn before, which is what makes one-process runs, MPI runs and resumed
 * runs follow the same trajectory bit for bit.
 *
 * Generator: xoshiro256** (Blackman and Vigna), state seeded by splitmix64 over the name.
 */
#ifndef PX_RNG_H
#define PX_RNG_H

#include <math.h>
#include <stdint.h>

/* Purposes: one per kind of random decision, so that two uses never share a stream. */
enum {
    PX_STREAM_INIT = 1,      /* model initialisation: a = layer */
    PX_STREAM_BATCH = 2,     /* data order: a = logical worker, b = epoch */
    PX_STREAM_AGG = 3,       /* aggregator randomness (random init, bucketing): b = step */
    PX_STREAM_BYZANTINE = 4, /* attacker choices and noise: a = worker, b = step */
    PX_STREAM_CODEC = 5,     /* codec signs and stochastic rounding: a = worker, b = step */
    PX_STREAM_LISA = 6,      /* layer sampling: b = period */
    PX_STREAM_CLIENTS = 7,   /* federated client sampling and partitions */
};

typedef struct {
    uint64_t s[4];
} px_rng;

static inline uint64_t px_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A 64-bit hash of a stream name; also handy as a cheap per-element hash. */
static inline uint64_t px_hash4(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = px_splitmix64(&x);
    x = h ^ (purpose * 0xD1B54A32D192ED03ull);
    h = px_splitmix64(&x);
    x = h ^ (a * 0x8CB92BA72F3D8DD7ull);
    h = px_splitmix64(&x);
    x = h ^ (b * 0xABC98388FB8FAC03ull);
    return px_splitmix64(&x);
}

static inline void px_rng_init(px_rng *r, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b)
{
    uint64_t x = px_hash4(seed, purpose, a, b);
    for (int i = 0; i < 4; i++)
        r->s[i] = px_splitmix64(&x);
}

static inline uint64_t px__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t px_rng_u64(px_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = px__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = px__rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double px_rng_uniform(px_rng *r)
{
    return (double)(px_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, bound), bound > 0, without modulo bias (Lemire's method). */
static inline uint64_t px_rng_below(px_rng *r, uint64_t bound)
{
    unsigned __int128 m = (unsigned __int128)px_rng_u64(r) * bound;
    uint64_t lo = (uint64_t)m;
    if (lo < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (lo < threshold) {
            m = (unsigned __int128)px_rng_u64(r) * bound;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Standard normal by Box-Muller (one draw per call; the second value is discarded so that a
 * stream's k-th normal does not depend on how many normals were asked before in pairs). */
static inline double px_rng_normal(px_rng *r)
{
    double u1 = px_rng_uniform(r), u2 = px_rng_uniform(r);
    if (u1 < 0x1.0p-60) u1 = 0x1.0p-60;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
