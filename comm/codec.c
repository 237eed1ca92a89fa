/* codec.c - the codec's spec, wire byte, context and block pipeline (see codec.h).
 *
 * Encoding one block of B values (r of them real in a partial last block):
 *   stage    v = x (+ residual for error feedback, or master - replica for the downlink delta)
 *   rotate   (RHT) w = H D v / sqrt(P), v zero-padded to P = next power of two >= r
 *   scale    s from the block's largest |w| (format rule in codec_math.h), written first
 *   quantise codes of w / s
 * and decoding: values = codes * s; (RHT) x = D H values / sqrt(P); keep the first r; check that
 * every value is finite. The format-specific loops live in codec_bf16/fp16 (codec_half.c),
 * codec_int8.c and codec_fp8.c; the transform in hadamard.c.
 *
 * Large calls split their blocks into tasks of about 16K values over the context's thread pool;
 * each thread has its own block-sized scratch, allocated when the context is created.
 */
#include "comm/codec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "comm/codec_impl.h"
#include "comm/codec_math.h"
#include "base/rng.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the codec writes scales and codes in host order, which must be little-endian"
#endif

enum {
    PX__TASK_VALUES = 16384,     /* values per parallel task (64 KB of fp32 input) */
    PX__PARALLEL_MIN = 65536,    /* calls with fewer values run on the caller */
};

typedef enum { PX__ENCODE, PX__ENCODE_EF, PX__ENCODE_DELTA, PX__DECODE, PX__DECODE_ADD } px__mode;

struct px_codec {
    px_codec_spec spec;
    size_t n_max;
    px_pool *pool;
    int n_threads;
    const px__codec_format_ops *ops;
    size_t block_bytes; /* bytes of a full block: scale + codes */
    float norm;         /* 1/sqrt(block_size), the RHT's normalisation of a full block */
    float *scratch;     /* per thread: one block of work (block_size floats) */
    size_t *bad_block;  /* per thread: first block that decoded to a non-finite value */
};

/* ---- specs and the wire ---------------------------------------------------------------------- */

const char *px_codec_format_name(px_codec_format format)
{
    switch (format) {
    case PX_CODEC_FP32: return "fp32";
    case PX_CODEC_BF16: return "bf16";
    case PX_CODEC_FP16: return "fp16";
    case PX_CODEC_INT8: return "int8";
    case PX_CODEC_FP8_E4M3: return "fp8_e4m3";
    default: return "unknown";
    }
}

const char *px_codec_describe(const px_codec_spec *spec, char *buf, size_t cap)
{
    if (cap == 0) return buf;
    if (spec->format == PX_CODEC_FP32)
        snprintf(buf, cap, "fp32");
    else
        snprintf(buf, cap, "%s%s/%u%s", px_codec_format_name(spec->format),
                 spec->rht ? "+rht" : "", (unsigned)spec->block_size,
                 spec->stochastic ? " sr" : "");
    return buf;
}

static int px__is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static px_status px__check_block(uint64_t block_size)
{
    if (!px__is_pow2(block_size))
        return px_error(PX_EINVAL, "codec: block_size %llu is not a power of two",
                        (unsigned long long)block_size);
    if (block_size > PX_CODEC_MAX_BLOCK)
        return px_error(PX_EINVAL, "codec: block_size %llu exceeds the largest block, %u",
                        (unsigned long long)block_size, PX_CODEC_MAX_BLOCK);
    return PX_OK;
}

px_status px_codec_spec_check(const px_codec_spec *spec)
{
    if ((unsigned)spec->format >= PX_CODEC_FORMAT_COUNT)
        return px_error(PX_EINVAL, "codec: unknown format %d (fp32 0, bf16 1, fp16 2, int8 3, "
                                   "fp8_e4m3 4)",
                        (int)spec->format);
    if (spec->format == PX_CODEC_FP32) {
        if (spec->rht)
            return px_error(PX_EINVAL, "codec: rht needs a quantised format (bf16, fp16, int8, "
                                       "fp8_e4m3), got fp32");
        if (spec->stochastic)
            return px_error(PX_EINVAL, "codec: stochastic rounding needs a quantised format "
                                       "(bf16, fp16, int8, fp8_e4m3), got fp32");
        return PX_OK;
    }
    return px__check_block(spec->block_size);
}

uint8_t px_codec_wire_id(const px_codec_spec *spec)
{
    return (uint8_t)((unsigned)spec->format | (spec->rht ? PX_CODEC_WIRE_RHT : 0u));
}

uint32_t px_codec_wire_block(const px_codec_spec *spec)
{
    return spec->format == PX_CODEC_FP32 ? 0u : spec->block_size;
}

px_status px_codec_from_wire(uint8_t id, uint32_t block_size, px_codec_spec *spec)
{
    if (id & 0xE0u)
        return px_error(PX_EINVAL, "codec: wire codec byte 0x%02x has reserved bits 0x%02x set",
                        id, id & 0xE0u);
    unsigned format = id & 0x0Fu;
    if (format >= PX_CODEC_FORMAT_COUNT)
        return px_error(PX_EINVAL, "codec: wire codec byte 0x%02x names unknown format %u", id,
                        format);
    px_codec_spec s = {.format = (px_codec_format)format,
                       .rht = (id & PX_CODEC_WIRE_RHT) != 0,
                       .stochastic = 0,
                       .block_size = block_size};
    if (s.format == PX_CODEC_FP32) {
        if (s.rht)
            return px_error(PX_EINVAL, "codec: wire codec byte 0x%02x asks for rht on fp32", id);
        if (block_size != 0)
            return px_error(PX_EINVAL, "codec: block_size %u with fp32 (must be 0)",
                            (unsigned)block_size);
    } else {
        PX_CHECK(px__check_block(block_size));
    }
    *spec = s;
    return PX_OK;
}

static size_t px__code_bytes(px_codec_format f)
{
    return (f == PX_CODEC_BF16 || f == PX_CODEC_FP16) ? 2 : 1;
}

/* Values a block of r real values carries on the wire: r, or the next power of two with RHT. */
static size_t px__wire_len(int rht, size_t r)
{
    if (!rht) return r;
    size_t p = 1;
    while (p < r) p <<= 1;
    return p;
}

size_t px_codec_payload_bytes(const px_codec_spec *spec, size_t n)
{
    if (spec->format == PX_CODEC_FP32) return n * sizeof(float);
    if ((unsigned)spec->format >= PX_CODEC_FORMAT_COUNT || !px__is_pow2(spec->block_size) ||
        spec->block_size > PX_CODEC_MAX_BLOCK)
        return 0; /* an invalid spec: no payload matches it */
    size_t b = spec->block_size, w = px__code_bytes(spec->format);
    size_t full = n / b, r = n % b;
    size_t bytes = full * (sizeof(float) + b * w);
    if (r) bytes += sizeof(float) + px__wire_len(spec->rht, r) * w;
    return bytes;
}

/* ---- the context ----------------------------------------------------------------------------- */

static const px__codec_format_ops *px__ops(px_codec_format f)
{
    switch (f) {
    case PX_CODEC_BF16: return &px__codec_bf16_ops;
    case PX_CODEC_FP16: return &px__codec_fp16_ops;
    case PX_CODEC_INT8: return &px__codec_int8_ops;
    case PX_CODEC_FP8_E4M3: return &px__codec_fp8_e4m3_ops;
    default: return NULL;
    }
}

px_status px_codec_create(px_codec **out, const px_codec_spec *spec, size_t n_max, px_pool *pool)
{
    *out = NULL;
    PX_CHECK(px_codec_spec_check(spec));
    px_codec *c = px_alloc(sizeof *c, "codec context");
    if (!c) return PX_ENOMEM;
    c->spec = *spec;
    if (c->spec.format == PX_CODEC_FP32) c->spec.block_size = 0;
    c->n_max = n_max;
    c->pool = pool;
    c->n_threads = px_pool_size(pool);
    c->ops = px__ops(spec->format);
    if (c->ops) {
        c->block_bytes = sizeof(float) + (size_t)spec->block_size * c->ops->code_bytes;
        c->norm = px__rht_norm(spec->block_size);
        c->scratch = px_alloc((size_t)c->n_threads * spec->block_size * sizeof(float),
                              "codec scratch");
        if (!c->scratch) {
            px_free(c);
            return PX_ENOMEM;
        }
    }
    c->bad_block = px_alloc((size_t)c->n_threads * sizeof(size_t), "codec thread state");
    if (!c->bad_block) {
        px_codec_destroy(c);
        return PX_ENOMEM;
    }
    *out = c;
    return PX_OK;
}

void px_codec_destroy(px_codec *c)
{
    if (!c) return;
    px_free(c->scratch);
    px_free(c->bad_block);
    px_free(c);
}

const px_codec_spec *px_codec_spec_of(const px_codec *c)
{
    return &c->spec;
}

uint64_t px_codec_block_key(const px_codec_stream *st, size_t block)
{
    return px_cm_block_key(px_hash4(st->seed, PX_STREAM_CODEC, st->worker, st->step), block);
}

/* ---- one block ------------------------------------------------------------------------------- */

/* One call's arguments, shared by its tasks. */
typedef struct {
    px_codec *c;
    px__mode mode;
    uint64_t key; /* stream key */
    size_t n, n_blocks, blocks_per_task;
    const float *x;       /* encode: input; delta: master */
    float *y;             /* encode: residual (or NULL); delta: replica; decode: output */
    unsigned char *wire;  /* the payload (read-only when decoding) */
} px__job;

static uint32_t px__f2u(float f)
{
    return px_cm_bits(f);
}

/* work[j] = +-((a[j] + sign_b * b[j]) * norm), the RHT signs of block key kb (as in
 * px__rht_sign_scale); sign_b is +1 (error feedback: x + residual) or -1 (delta: master -
 * replica), and a + (-1) * b is exactly a - b. */
static void px__rht_stage(float *restrict work, const float *a, const float *b, float sign_b,
                          size_t len, uint64_t kb, float norm)
{
    for (size_t k = 0; k * 32 < len; k++) {
        uint64_t word = px_cm_sign_word(kb, (uint32_t)(k / 2));
        uint32_t half = (uint32_t)(k % 2 ? word >> 32 : word);
        size_t end = len - k * 32 < 32 ? len - k * 32 : 32;
        const float *pa = a + k * 32, *pb = b + k * 32;
        float *o = work + k * 32;
        for (size_t j = 0; j < end; j++)
            o[j] = px_cm_apply_sign32((pa[j] + sign_b * pb[j]) * norm, half, (uint32_t)j);
    }
}

/* 1/sqrt(P) of a block's transform: the context's cached value for full blocks. */
static float px__norm(const px_codec *c, size_t P)
{
    return P == c->spec.block_size ? c->norm : px__rht_norm(P);
}

/* Decodes block b from src (scale + P codes) into out[0..r): stores or adds (add), using `work`
 * (P floats) for the inverse RHT. Returns 1 when every value written is finite. Not inlined:
 * the downlink delta relies on the server and the workers running this very code, so that their
 * replicas agree bit for bit. */
__attribute__((noinline)) static int px__decode_block(const px_codec *c, const unsigned char *src,
                                                      size_t r, size_t P, uint64_t kb, float *out,
                                                      int add, float *work)
{
    float scale;
    memcpy(&scale, src, sizeof scale);
    if (!px_cm_finite_bits(px__f2u(scale))) return 0;
    if (!c->spec.rht) return c->ops->dequantise(src + sizeof scale, r, scale, out, add);
    c->ops->dequantise(src + sizeof scale, P, scale, work, 0);
    px_wht(work, P);
    /* x = D H y / sqrt(P): the sign and the normalisation in the pass that writes the output */
    const float norm = px__norm(c, P);
    int ok = 1;
    for (size_t k = 0; k * 32 < r; k++) { /* 32 values per half sign word (see hadamard.c) */
        uint64_t word = px_cm_sign_word(kb, (uint32_t)(k / 2));
        uint32_t half = (uint32_t)(k % 2 ? word >> 32 : word);
        size_t end = r - k * 32 < 32 ? r - k * 32 : 32;
        const float *a = work + k * 32;
        float *o = out + k * 32;
        if (add) {
            for (size_t j = 0; j < end; j++) {
                float v = o[j] + px_cm_apply_sign32(a[j] * norm, half, (uint32_t)j);
                o[j] = v;
                ok &= fabsf(v) <= FLT_MAX;
            }
        } else {
            for (size_t j = 0; j < end; j++) {
                float v = px_cm_apply_sign32(a[j] * norm, half, (uint32_t)j);
                o[j] = v;
                ok &= fabsf(v) <= FLT_MAX;
            }
        }
    }
    return ok;
}

static void px__encode_block(const px__job *jb, size_t b, float *scr)
{
    const px_codec *c = jb->c;
    const size_t B = c->spec.block_size, i0 = b * B;
    const size_t r = jb->n - i0 < B ? jb->n - i0 : B;
    const size_t P = px__wire_len(c->spec.rht, r);
    float *work = scr;
    unsigned char *dst = jb->wire + b * c->block_bytes;
    const float *x = jb->x + i0;
    float *y = jb->y ? jb->y + i0 : NULL;
    const uint64_t kb = c->spec.rht || c->spec.stochastic ? px_cm_block_key(jb->key, b) : 0;

    /* stage v = x, x + residual or master - replica, and rotate it: work = H D v / sqrt(P),
     * zero-padded to P. With RHT the sum or difference goes straight into the signed, scaled
     * work block (one pass over the inputs); without, error feedback stages v in the residual
     * itself, where the new residual is computed, and the delta stages it in work. */
    const float *src = x;
    if (c->spec.rht) {
        const float norm = px__norm(c, P);
        if (jb->mode == PX__ENCODE)
            px__rht_sign_scale(work, x, r, kb, norm);
        else
            px__rht_stage(work, x, y, jb->mode == PX__ENCODE_DELTA ? -1.0f : 1.0f, r, kb, norm);
        for (size_t j = r; j < P; j++) work[j] = 0.0f;
        px_wht(work, P);
        src = work;
    } else if (jb->mode == PX__ENCODE_EF) {
        for (size_t j = 0; j < r; j++) y[j] = x[j] + y[j];
        src = y;
    } else if (jb->mode == PX__ENCODE_DELTA) {
        for (size_t j = 0; j < r; j++) work[j] = x[j] - y[j];
        src = work;
    }

    float scale = c->ops->scale(px__absmax_bits(src, P));
    memcpy(dst, &scale, sizeof scale);
    unsigned char *codes = dst + sizeof scale;
    if (!px_cm_finite_bits(px__f2u(scale))) {
        /* NaN or Inf in the input: the receiver refuses the NaN scale */
        memset(codes, 0, P * c->ops->code_bytes);
        if (jb->mode == PX__ENCODE_EF) memset(y, 0, r * sizeof *y);
        return;
    }
    float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    if (c->spec.stochastic)
        c->ops->quantise_sr(src, P, inv, px_cm_dither_key(kb), codes);
    else
        c->ops->quantise(src, P, inv, codes);

    if (jb->mode == PX__ENCODE_EF) {
        /* residual = v - what the receiver decodes. Without RHT: v - codes * scale in place
         * (dequantising with -scale in add mode subtracts exactly codes * scale). With RHT, by
         * linearity: the rotated block minus codes * scale, rotated back (D H e / sqrt(P)); equal
         * to v - decode(payload) up to fp32 rounding of the transform. */
        if (!c->spec.rht) {
            c->ops->dequantise(codes, r, -scale, y, 1);
        } else {
            c->ops->dequantise(codes, P, -scale, work, 1);
            px_wht(work, P);
            px__rht_sign_scale(y, work, r, kb, px__norm(c, P));
        }
    } else if (jb->mode == PX__ENCODE_DELTA) {
        px__decode_block(c, dst, r, P, kb, y, 1, work);
    }
}

/* ---- calls ----------------------------------------------------------------------------------- */

static void px__task(void *ctx, size_t task, int thread)
{
    const px__job *jb = ctx;
    px_codec *c = jb->c;
    const size_t B = c->spec.block_size;
    float *scr = c->scratch + (size_t)thread * B;
    size_t b0 = task * jb->blocks_per_task;
    size_t b1 = b0 + jb->blocks_per_task < jb->n_blocks ? b0 + jb->blocks_per_task : jb->n_blocks;
    if (jb->mode == PX__DECODE || jb->mode == PX__DECODE_ADD) {
        int add = jb->mode == PX__DECODE_ADD;
        for (size_t b = b0; b < b1; b++) {
            size_t i0 = b * B, r = jb->n - i0 < B ? jb->n - i0 : B;
            size_t P = px__wire_len(c->spec.rht, r);
            uint64_t kb = c->spec.rht ? px_cm_block_key(jb->key, b) : 0;
            if (!px__decode_block(c, jb->wire + b * c->block_bytes, r, P, kb, jb->y + i0, add,
                                  scr)) {
                if (b < c->bad_block[thread]) c->bad_block[thread] = b;
                return; /* this task's later blocks do not matter: the payload is refused */
            }
        }
    } else {
        for (size_t b = b0; b < b1; b++) px__encode_block(jb, b, scr);
    }
}

/* fp32: the payload is the values themselves. Tasks are chunks of PX__TASK_VALUES values. */
static void px__fp32_task(void *ctx, size_t task, int thread)
{
    const px__job *jb = ctx;
    size_t i0 = task * PX__TASK_VALUES;
    size_t m = jb->n - i0 < PX__TASK_VALUES ? jb->n - i0 : PX__TASK_VALUES;
    float *wire = (float *)jb->wire + i0;
    /* decoding has no x: an offset on a null pointer is undefined even when it is 0 */
    const float *x = jb->x ? jb->x + i0 : NULL;
    float *y = jb->y ? jb->y + i0 : NULL;
    int ok = 1;
    switch (jb->mode) {
    case PX__ENCODE: memcpy(wire, x, m * sizeof *x); break;
    case PX__ENCODE_EF:
        for (size_t j = 0; j < m; j++) {
            wire[j] = x[j] + y[j];
            y[j] = 0.0f; /* fp32 loses nothing */
        }
        break;
    case PX__ENCODE_DELTA:
        for (size_t j = 0; j < m; j++) {
            float d = x[j] - y[j];
            wire[j] = d;
            y[j] += d;
        }
        break;
    case PX__DECODE:
        for (size_t j = 0; j < m; j++) {
            float v = wire[j];
            y[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
        break;
    case PX__DECODE_ADD:
        for (size_t j = 0; j < m; j++) {
            float v = y[j] + wire[j];
            y[j] = v;
            ok &= fabsf(v) <= FLT_MAX;
        }
        break;
    }
    if (!ok && task < jb->c->bad_block[thread]) jb->c->bad_block[thread] = task;
}

static px_status px__run(px_codec *c, px__mode mode, const px_codec_stream *st, const float *x,
                         float *y, size_t n, const void *payload, size_t payload_bytes)
{
    char name[48] = "";
    if (n > c->n_max || payload_bytes != px_codec_payload_bytes(&c->spec, n) ||
        (n && ((uintptr_t)payload & 3u)) ||
        (!st && (c->spec.rht || (c->spec.stochastic && mode < PX__DECODE))))
        px_codec_describe(&c->spec, name, sizeof name); /* for the message below */
    if (n > c->n_max)
        return px_error(PX_EINVAL, "codec %s: %zu values exceed the context's n_max %zu", name, n,
                        c->n_max);
    size_t want = px_codec_payload_bytes(&c->spec, n);
    if (payload_bytes != want)
        return px_error(PX_EINVAL, "codec %s: payload of %zu bytes for %zu values, expected %zu",
                        name, payload_bytes, n, want);
    if (n && ((uintptr_t)payload & 3u))
        return px_error(PX_EINVAL, "codec %s: payload address %p is not 4-byte aligned", name,
                        payload);
    if (!st && (c->spec.rht || (c->spec.stochastic && mode < PX__DECODE)))
        return px_error(PX_EINVAL, "codec %s: a stream (seed, step, worker) is needed", name);
    if (n == 0) return PX_OK;

    px__job jb = {.c = c,
                  .mode = mode,
                  .key = st ? px_hash4(st->seed, PX_STREAM_CODEC, st->worker, st->step) : 0,
                  .n = n,
                  .x = x,
                  .y = y,
                  .wire = (unsigned char *)payload};
    for (int t = 0; t < c->n_threads; t++) c->bad_block[t] = SIZE_MAX;
    px_pool *pool = n >= PX__PARALLEL_MIN ? c->pool : NULL;
    size_t unit; /* values per bad_block index */
    if (c->spec.format == PX_CODEC_FP32) {
        unit = PX__TASK_VALUES;
        px_pool_run(pool, (n + unit - 1) / unit, px__fp32_task, &jb);
    } else {
        unit = c->spec.block_size;
        jb.n_blocks = (n + unit - 1) / unit;
        jb.blocks_per_task = unit >= PX__TASK_VALUES ? 1 : PX__TASK_VALUES / unit;
        px_pool_run(pool, (jb.n_blocks + jb.blocks_per_task - 1) / jb.blocks_per_task, px__task,
                    &jb);
    }
    if (mode < PX__DECODE) return PX_OK;
    size_t bad = SIZE_MAX;
    for (int t = 0; t < c->n_threads; t++)
        if (c->bad_block[t] < bad) bad = c->bad_block[t];
    if (bad == SIZE_MAX) return PX_OK;
    size_t i0 = bad * unit, i1 = i0 + unit < n ? i0 + unit : n;
    if (c->spec.format == PX_CODEC_FP32)
        return px_error(PX_EPROTO, "codec fp32: values %zu..%zu hold a NaN or Inf", i0, i1 - 1);
    px_codec_describe(&c->spec, name, sizeof name);
    float scale;
    memcpy(&scale, (const unsigned char *)payload + bad * c->block_bytes, sizeof scale);
    return px_error(PX_EPROTO,
                    "codec %s: block %zu (values %zu..%zu) decodes to a NaN or Inf (scale %g)",
                    name, bad, i0, i1 - 1, (double)scale);
}

px_status px_codec_encode(px_codec *c, const px_codec_stream *st, const float *x, size_t n,
                          float *residual, void *payload, size_t payload_bytes)
{
    return px__run(c, residual ? PX__ENCODE_EF : PX__ENCODE, st, x, residual, n, payload,
                   payload_bytes);
}

px_status px_codec_encode_delta(px_codec *c, const px_codec_stream *st, const float *master,
                                float *replica, size_t n, void *payload, size_t payload_bytes)
{
    return px__run(c, PX__ENCODE_DELTA, st, master, replica, n, payload, payload_bytes);
}

px_status px_codec_decode(px_codec *c, const px_codec_stream *st, const void *payload,
                          size_t payload_bytes, float *out, size_t n)
{
    return px__run(c, PX__DECODE, st, NULL, out, n, payload, payload_bytes);
}

px_status px_codec_decode_add(px_codec *c, const px_codec_stream *st, const void *payload,
                              size_t payload_bytes, float *acc, size_t n)
{
    return px__run(c, PX__DECODE_ADD, st, NULL, acc, n, payload, payload_bytes);
}

uint32_t px__absmax_bits(const float *x, size_t len)
{
    uint32_t m = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        u &= 0x7FFFFFFFu;
        m = u > m ? u : m;
    }
    return m;
}
