/* fuzz_wire.c - the message decoder (comm/wire.h) on arbitrary bytes, then what a receiver does
 * with a message it accepted: the expectation check, the codec named by its header and the
 * decoding of its payload (the server's path in runtime/server.c, px_server_accept).
 *
 * The input is tried twice: as it is (what a hostile rank sends: almost everything stops at the
 * magic or a CRC), and with both CRCs recomputed, so that the fuzzer reaches the header fields
 * and the payload behind them. */
#include "fuzz.h"

#include <math.h>

#include "base/alloc.h"
#include "comm/codec.h"
#include "comm/crc32c.h"
#include "comm/wire.h"

/* the largest message a receiver here decodes (the server's own bound is its model's d) */
#define PX_FUZZ_MAX_ELEMS (1u << 16)

static void px__write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    px_fuzz_quiet();
    px_fuzz_seeds(px__write_seeds);
    return 0;
}

/* The server's steps after px_wire_open: its expectation for the message (here the header's own
 * fields, as a receiver that accepts what the header says), the codec, the size check, the
 * decode. */
static void px__receive(const uint8_t *msg, size_t len, const px_msg_header *h)
{
    px_codec_spec spec;
    if (px_codec_from_wire(h->codec, h->block_size, &spec) < 0) return;
    PX_FUZZ_ASSERT(px_codec_spec_check(&spec) == PX_OK, "px_codec_from_wire gave a bad spec");
    PX_FUZZ_ASSERT(px_codec_wire_id(&spec) == h->codec &&
                       px_codec_wire_block(&spec) == h->block_size,
                   "px_codec_from_wire and px_codec_wire_id/_block do not round-trip");
    if (h->elem_count > PX_FUZZ_MAX_ELEMS) return;
    size_t n = (size_t)h->elem_count;
    size_t want = px_codec_payload_bytes(&spec, n);
    px_wire_expectation e = {
        .kind = h->kind,
        .step = h->step,
        .n_workers = 16,
        .elem_count = n,
        .payload_bytes = want,
        .codec = px_codec_wire_id(&spec),
    };
    px_drop_reason r = px_wire_expect(h, &e);
    if (r != PX_DROP_NONE) {
        PX_FUZZ_ASSERT(r == PX_DROP_WORKER || r == PX_DROP_LENGTH,
                       "px_wire_expect refused a header that matches the expectation");
        return;
    }
    PX_FUZZ_ASSERT(len == PX_WIRE_HEADER_BYTES + want, "accepted length differs from the codec's");
    px_codec *codec = NULL;
    if (px_codec_create(&codec, &spec, n, NULL) < 0) return;
    /* the payload as the server holds it: 4-byte aligned (at offset 48 of an aligned buffer) */
    uint8_t *copy = px_alloc(len, "fuzz message");
    float *out = px_alloc((n ? n : 1) * sizeof(float), "fuzz output");
    if (copy && out) {
        memcpy(copy, msg, len);
        px_codec_stream cs = {.seed = h->step ^ 0x5eedu, .step = h->step, .worker = h->worker};
        if (px_codec_decode(codec, &cs, copy + PX_WIRE_HEADER_BYTES, want, out, n) == PX_OK)
            for (size_t i = 0; i < n; i++)
                PX_FUZZ_ASSERT(isfinite(out[i]), "px_codec_decode gave a non-finite value");
    }
    px_free(copy);
    px_free(out);
    px_codec_destroy(codec);
}

static void px__open(const uint8_t *msg, size_t len)
{
    px_msg_header h;
    px_drop_reason r = px_wire_open(msg, len, &h);
    PX_FUZZ_ASSERT(r >= PX_DROP_NONE && r < PX_DROP_REASON_COUNT, "px_wire_open: unknown reason");
    PX_FUZZ_ASSERT(strcmp(px_drop_reason_name(r), "unknown") != 0, "a reason without a name");
    PX_FUZZ_ASSERT(px_wire_is_bye(msg, len) == (r == PX_DROP_NONE && h.kind == PX_MSG_BYE),
                   "px_wire_is_bye disagrees with px_wire_open");
    if (r != PX_DROP_NONE) return;
    PX_FUZZ_ASSERT(h.payload_bytes == len - PX_WIRE_HEADER_BYTES, "accepted a wrong length");
    px__receive(msg, len, &h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px__open(data, size);
    if (size < PX_WIRE_HEADER_BYTES) return 0;
    /* the same bytes with honest CRCs: payload_crc over the payload, header_crc over 0..43 */
    uint8_t *msg = malloc(size);
    if (!msg) return 0;
    memcpy(msg, data, size);
    px_fuzz_put32(msg + 40, px_crc32c(0, msg + PX_WIRE_HEADER_BYTES, size - PX_WIRE_HEADER_BYTES));
    px_fuzz_put32(msg + 44, px_crc32c(0, msg, 44));
    px__open(msg, size);
    free(msg);
    return 0;
}

/* ---- the seed corpus: messages as workers and the server seal them ------------------------- */

static void px__seed(const char *dir, const char *name, uint8_t kind, px_codec_spec spec, size_t n,
                     uint32_t worker)
{
    size_t bytes = kind == PX_MSG_STOP || kind == PX_MSG_BYE ? 0 : px_codec_payload_bytes(&spec, n);
    uint8_t *msg = px_alloc(PX_WIRE_HEADER_BYTES + bytes + 4, "seed message");
    float *x = calloc(n + 1, sizeof(float));
    if (!msg || !x) exit(1);
    px_msg_header h = {.kind = kind, .step = 5, .worker = worker, .loss = 0.75f};
    if (bytes) {
        px_codec *c = NULL;
        if (px_codec_create(&c, &spec, n, NULL) < 0) exit(1);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((int)(i * 13 % 9) - 4) * 0.5f;
        px_codec_stream cs = {.seed = 5 ^ 0x5eedu, .step = 5, .worker = worker};
        if (px_codec_encode(c, &cs, x, n, NULL, msg + PX_WIRE_HEADER_BYTES, bytes) < 0) exit(1);
        px_codec_destroy(c);
        h.codec = px_codec_wire_id(&spec);
        h.block_size = px_codec_wire_block(&spec);
        h.elem_count = n;
    }
    px_wire_seal(msg, &h, bytes);
    px_fuzz_write_seed(dir, name, msg, PX_WIRE_HEADER_BYTES + bytes);
    px_free(msg);
    free(x);
}

static void px__write_seeds(const char *dir)
{
    px_codec_spec fp32 = {PX_CODEC_FP32, 0, 0, 0}, int8 = {PX_CODEC_INT8, 1, 0, 16},
                  bf16 = {PX_CODEC_BF16, 0, 0, 8}, fp8 = {PX_CODEC_FP8_E4M3, 1, 0, 4};
    px__seed(dir, "gradient_fp32", PX_MSG_GRADIENT, fp32, 6, 2);
    px__seed(dir, "gradient_int8_rht", PX_MSG_GRADIENT, int8, 20, 3);
    px__seed(dir, "gradient_fp8_rht", PX_MSG_GRADIENT, fp8, 7, 0);
    px__seed(dir, "params_fp32", PX_MSG_PARAMS, fp32, 4, PX_WIRE_SERVER);
    px__seed(dir, "params_bf16", PX_MSG_PARAMS, bf16, 9, PX_WIRE_SERVER);
    px__seed(dir, "stop", PX_MSG_STOP, fp32, 0, PX_WIRE_SERVER);
    px__seed(dir, "bye", PX_MSG_BYE, fp32, 0, 1);
}
