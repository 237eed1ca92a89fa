/* codec.h - low-precision codecs for what travels between workers and the server (HALO-style).
 *
 * A codec turns n fp32 values into a payload and back: an optional randomized Hadamard transform
 * (RHT) per block of B values, then one fp32 absmax scale per block and one code per value in
 * bf16, fp16, int8 or fp8 E4M3, rounded to nearest even or stochastically. fp32 is the identity
 * codec (the payload is the raw little-endian floats). Spec: ../shared/ALGORITHMS.md section 5.
 *
 * Payload layout (little-endian), for n values and block size B, w = bytes per code
 * (bf16/fp16 2, int8/fp8 1):
 *
 *   block 0: scale (fp32, 4 bytes) | codes of values 0 .. B-1          (B * w bytes)
 *   block 1: scale | codes of values B .. 2B-1
 *   ...
 *   last block, r = n - B*floor(n/B) values when n is not a multiple of B:
 *            scale | P codes, P = r without RHT, P = the next power of two >= r with RHT
 *
 * With RHT the partial last block is padded with zeros to length P before the transform (the
 * transform needs a power-of-two length) and all P rotated values are sent; the receiver
 * inverts the length-P transform and keeps the first r values. px_codec_payload_bytes gives the
 * exact size, so a receiver can refuse a wrong-size payload before decoding it.
 *
 * Randomness: the RHT's +-1 diagonal of block b and the dither of stochastic rounding come from
 * the stream key px_hash4(run seed, PX_STREAM_CODEC, worker, step) (base/rng.h), mixed with
 * b (comm/codec_math.h). Sender and receiver both derive them from (seed, step, worker); nothing
 * random travels. Every worker's payload has its own scales.
 *
 * Decoded values are always finite: px_codec_decode returns PX_EPROTO, and nothing the caller
 * should use, when a payload would decode to NaN or Inf (a NaN/Inf scale, an fp8 NaN code, an
 * fp16/bf16 inf or NaN code, a scale so large that values overflow). An honest sender produces
 * such a payload only from non-finite input (the block's scale is then NaN), which mirrors an
 * fp32 message carrying a NaN: the server drops it and counts it as PX_DROP_NONFINITE; or from
 * a block with a value within a factor 2 of FLT_MAX (FLT_MAX / (2 sqrt(B)) with RHT), whose
 * scale, codes or rotation overflow float32 (a gradient that large is lost either way; the
 * residual stays finite and the next step recovers; fuzz finding F6, tests/fuzz/README.md).
 *
 * Depends on base/ (common.h, rng.h, pool.h) only.
 */
#ifndef PX_CODEC_H
#define PX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/pool.h"

/* Value formats. The numbers are the low nibble of the wire codec byte: do not renumber. */
typedef enum {
    PX_CODEC_FP32 = 0,     /* raw float32: the identity codec, no blocks, no scales */
    PX_CODEC_BF16 = 1,     /* bfloat16, power-of-two block scale (block absmax in [1, 2)) */
    PX_CODEC_FP16 = 2,     /* IEEE half, power-of-two block scale (block absmax in [2^14, 2^15)) */
    PX_CODEC_INT8 = 3,     /* symmetric int8 +-127, scale = block absmax / 127 */
    PX_CODEC_FP8_E4M3 = 4, /* fp8 E4M3 (OCP E4M3FN, max 448), scale = block absmax / 448 */
    PX_CODEC_FORMAT_COUNT
} px_codec_format;

/* Largest block size (values). Blocks are powers of two from 1 to this. */
#define PX_CODEC_MAX_BLOCK 65536u

/* Wire codec byte: bits 0-3 the format, bit 4 the RHT, bits 5-7 reserved (zero). 0 = fp32. */
#define PX_CODEC_WIRE_RHT 0x10u

/* The worker id of the server's downlink stream (equal to PX_WIRE_SERVER of comm/wire.h). */
#define PX_CODEC_DOWNLINK 0xFFFFFFFFu

/* What a codec does. Defaults a config should offer: uplink int8 + RHT, downlink fp32,
 * block_size 256, stochastic 0. */
typedef struct {
    px_codec_format format;
    int rht;             /* 1: randomized Hadamard transform per block before quantising */
    int stochastic;      /* 1: stochastic rounding (sender side only; not on the wire) */
    uint32_t block_size; /* values per block: a power of two in [1, PX_CODEC_MAX_BLOCK];
                            ignored for fp32 */
} px_codec_spec;

/* Names the random streams of one payload: sender and receiver must pass the same values.
 * worker is the logical worker id for the uplink and PX_CODEC_DOWNLINK for the server's
 * broadcast. */
typedef struct {
    uint64_t seed;   /* the run seed (run.seed) */
    uint32_t step;   /* the training step the payload belongs to */
    uint32_t worker; /* logical worker id, or PX_CODEC_DOWNLINK */
} px_codec_stream;

typedef struct px_codec px_codec;

/* ---- specs and the wire ---------------------------------------------------------------------- */

/* Short name of a format: "fp32", "bf16", "fp16", "int8", "fp8_e4m3" ("unknown" otherwise). */
const char *px_codec_format_name(px_codec_format format);

/* Writes a readable description such as "int8+rht/256" or "fp8_e4m3/128 sr" into buf (at most
 * cap bytes, always terminated) and returns buf. */
const char *px_codec_describe(const px_codec_spec *spec, char *buf, size_t cap);

/* Checks a spec: a known format; for fp32 no RHT and no stochastic rounding; otherwise a block
 * size that is a power of two in [1, PX_CODEC_MAX_BLOCK]. PX_EINVAL with a message naming the
 * field, the rule and the value ("codec: block_size 96 is not a power of two"). */
px_status px_codec_spec_check(const px_codec_spec *spec);

/* The header's codec byte and block_size field for payloads of a (checked) spec: format |
 * PX_CODEC_WIRE_RHT when rht; block size 0 for fp32. Stochastic rounding is not on the wire: the
 * receiver decodes both roundings the same way. */
uint8_t px_codec_wire_id(const px_codec_spec *spec);
uint32_t px_codec_wire_block(const px_codec_spec *spec);

/* The spec of a received header's codec byte and block_size (stochastic = 0). Refuses with
 * PX_EINVAL, naming the value: an unknown format, reserved bits set, RHT on fp32, a non-zero
 * block size for fp32, a block size that is not a power of two or exceeds PX_CODEC_MAX_BLOCK.
 * A server compares the received byte and block size with its own spec's; this function is for
 * a receiver that accepts what the header says, and for tests. */
px_status px_codec_from_wire(uint8_t id, uint32_t block_size, px_codec_spec *spec);

/* Exact payload size in bytes of n values under a spec (layout above); 0 for an invalid spec. */
size_t px_codec_payload_bytes(const px_codec_spec *spec, size_t n);

/* ---- the context ----------------------------------------------------------------------------- */

/* Creates a codec for payloads of up to n_max values: checks the spec and allocates all scratch
 * (a few block-sized buffers per thread of `pool`), so that encode and decode never allocate.
 * `pool` may be NULL (everything runs on the caller); otherwise calls with at least 65536 values
 * spread their blocks over the pool's threads. A context serves one call at a time: give each
 * thread that encodes or decodes concurrently its own context (with pool NULL when the callers
 * already are the pool's tasks). The caller keeps the pool alive until px_codec_destroy. */
px_status px_codec_create(px_codec **out, const px_codec_spec *spec, size_t n_max, px_pool *pool);

/* Frees a context (NULL is allowed). */
void px_codec_destroy(px_codec *codec);

/* The context's spec. */
const px_codec_spec *px_codec_spec_of(const px_codec *codec);

/* Encodes x[0..n) into payload, which must be exactly px_codec_payload_bytes(spec, n) bytes at a
 * 4-byte aligned address (a px_alloc buffer, or one at offset PX_WIRE_HEADER_BYTES = 48 of
 * one). `stream` names the random streams (needed when the spec has RHT or stochastic rounding;
 * may be NULL otherwise). Block numbers start at 0 in every call, so one (seed, step, worker)
 * should name one payload: encode a message's segments (active layers, ...) as one vector.
 *
 * Error feedback: when `residual` is not NULL it is the caller's n floats of carried error
 * (zero-initialised before the first step, one per logical worker, kept across steps). The
 * codec encodes v = x + residual and then stores residual = v - decode(payload), what the
 * receiver will not see, to be added at the next step (with RHT it is computed in the rotated
 * domain and rotated back: equal up to fp32 rounding). A block of v holding NaN or Inf is sent
 * with a NaN scale (the receiver drops the payload) and its residual is reset to zero.
 * PX_EINVAL for n > n_max or a wrong payload size. */
px_status px_codec_encode(px_codec *codec, const px_codec_stream *stream, const float *x, size_t n,
                          float *residual, void *payload, size_t payload_bytes);

/* Decodes a payload of payload_bytes bytes (4-byte aligned) into out[0..n) (fp32). PX_EINVAL
 * when payload_bytes is not px_codec_payload_bytes(spec, n), n > n_max or the payload is
 * misaligned (a server checks the size before: see px_codec_payload_bytes). PX_EPROTO when the
 * payload would decode to a NaN or Inf (the message names the block and its scale; out is then
 * partly written and must not be used). On PX_OK every out[i] is finite. */
px_status px_codec_decode(px_codec *codec, const px_codec_stream *stream, const void *payload,
                          size_t payload_bytes, float *out, size_t n);

/* Like px_codec_decode, but adds the decoded values into acc[0..n) (acc[i] += value): a worker
 * applies the server's quantised parameter delta to its replica with it. On an error acc is
 * partly updated; the caller must treat its replica as lost (resynchronise in fp32). */
px_status px_codec_decode_add(px_codec *codec, const px_codec_stream *stream, const void *payload,
                              size_t payload_bytes, float *acc, size_t n);

/* Downlink delta (server side): encodes master - replica into payload and adds to replica what
 * the workers will decode, using the same decode code as px_codec_decode_add, so the server's
 * replica stays bit-for-bit equal to every worker's (same build, CPU path). The replicas then
 * track the master with the error of one quantisation step, which does not accumulate. Both
 * start equal (for example both hold the initial parameters). Same size rules as encode; a
 * non-finite delta block is sent with a NaN scale and leaves that block of the replica as it
 * was. */
px_status px_codec_encode_delta(px_codec *codec, const px_codec_stream *stream,
                                const float *master, float *replica, size_t n, void *payload,
                                size_t payload_bytes);

/* ---- the transform, for tests and benchmarks ------------------------------------------------- */

/* Fast Walsh-Hadamard transform in place, unnormalised, in Sylvester (natural) order:
 * x <- H_len x with H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]]; len a power of two. */
void px_wht(float *x, size_t len);

/* The randomized Hadamard transform of one block as the codec applies it: x <- H D x / sqrt(len)
 * (forward) and x <- D H x / sqrt(len) (inverse), D = diag(+-1) drawn from `block_key`
 * (px_codec_block_key). Both are orthonormal and each undoes the other. */
void px_rht_forward(float *x, size_t len, uint64_t block_key);
void px_rht_inverse(float *x, size_t len, uint64_t block_key);

/* Key of block `block` of a stream: what the codec feeds to the sign and dither generators. */
uint64_t px_codec_block_key(const px_codec_stream *stream, size_t block);

#endif
