/* wire.h - the message format between workers and the server.
 *
 * One message = a 48-byte header followed by the payload. All header fields are little-endian
 * and written byte by byte, so the format does not depend on struct layout or host order:
 *
 *   offset size field
 *        0    4 magic        "PHLX"
 *        4    2 version      PX_WIRE_VERSION
 *        6    1 kind         px_msg_kind
 *        7    1 codec        payload encoding (0 = fp32; see comm/codec.h once it exists)
 *        8    4 step         training step the message belongs to
 *       12    4 worker       logical worker id (PX_WIRE_SERVER for the server)
 *       16    8 elem_count   number of values the payload decodes to
 *       24    8 payload_bytes
 *       32    4 block_size   codec block size (0 for fp32)
 *       36    4 loss         sender's minibatch loss (float32; NaN when none)
 *       40    4 payload_crc  CRC-32C of the payload bytes
 *       44    4 header_crc   CRC-32C of bytes 0..43
 *
 * The server validates every field of every message it receives and drops a message that
 * breaks any rule, with the reason counted (px_drop_reason).
 */
#ifndef PX_WIRE_H
#define PX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define PX_WIRE_MAGIC        0x584C4850u /* bytes 'P','H','L','X' */
#define PX_WIRE_VERSION      1u
#define PX_WIRE_HEADER_BYTES 48u
#define PX_WIRE_SERVER       0xFFFFFFFFu

typedef enum {
    PX_MSG_GRADIENT = 1, /* worker -> server: one logical worker's gradient for a step */
    PX_MSG_PARAMS = 2,   /* server -> worker rank: the parameters for a step */
    PX_MSG_STOP = 3,     /* server -> worker rank: the run is over (no payload) */
    PX_MSG_BYE = 4,      /* worker rank -> server: answer to STOP, after its last message */
} px_msg_kind;

typedef struct {
    uint32_t magic;
    uint16_t version;
    uint8_t kind;
    uint8_t codec;
    uint32_t step;
    uint32_t worker;
    uint64_t elem_count;
    uint64_t payload_bytes;
    uint32_t block_size;
    float loss;
    uint32_t payload_crc;
} px_msg_header;

/* Why a message was refused; each reason has its own counter in the metrics. */
typedef enum {
    PX_DROP_NONE = 0,
    PX_DROP_SHORT,       /* fewer bytes than a header */
    PX_DROP_MAGIC,       /* not a Phalanx message */
    PX_DROP_VERSION,     /* another wire version */
    PX_DROP_HEADER_CRC,  /* header bytes corrupted */
    PX_DROP_KIND,        /* unexpected message kind */
    PX_DROP_STEP,        /* belongs to another step (late or early) */
    PX_DROP_WORKER,      /* unknown worker id, or not hosted by the sending rank */
    PX_DROP_DUPLICATE,   /* second message of a worker in one step */
    PX_DROP_CODEC,       /* another payload encoding than the run's */
    PX_DROP_LENGTH,      /* payload size differs from what the header and codec imply */
    PX_DROP_PAYLOAD_CRC, /* payload bytes corrupted */
    PX_DROP_NONFINITE,   /* decoded values contain NaN or Inf */
    PX_DROP_REASON_COUNT
} px_drop_reason;

/* Short snake_case name of a reason ("payload_crc"), used in logs and metrics keys. */
const char *px_drop_reason_name(px_drop_reason r);

/* Writes `payload_bytes`, `payload_crc` and the header into msg[0..48) for a payload already
 * placed at msg + PX_WIRE_HEADER_BYTES. Other fields come from `h`. */
void px_wire_seal(unsigned char *msg, const px_msg_header *h, size_t payload_bytes);

/* Parses and checks a received message of `len` bytes: size, magic, version, header CRC, that
 * payload_bytes matches len, and the payload CRC. On success fills `h` and returns
 * PX_DROP_NONE; otherwise returns the first broken rule. Checks of meaning (step, worker,
 * expected size) are the receiver's: see px_wire_expect. */
px_drop_reason px_wire_open(const unsigned char *msg, size_t len, px_msg_header *h);

/* A message that px_wire_copy put at `msg` (`len` bytes), with the CRC-32C of its payload as
 * written there (msg NULL: none). */
typedef struct {
    const unsigned char *msg;
    size_t len;
    uint32_t payload_crc;
} px_wire_copied;

/* Copies a received message (src, len bytes: memory that its sender may still be rewriting) into
 * dst and checksums the payload in the same pass, over the bytes written to dst; records that in
 * *(px_wire_copied *)user. A transport that copies messages out of shared memory calls it (its
 * copy_in hook, transport.h), so that px_wire_open_copied then checks the copy without reading
 * it again. */
void px_wire_copy(void *user, unsigned char *dst, const unsigned char *src, size_t len);

/* px_wire_open, but the payload CRC is taken from `c` when c records exactly this message
 * (c->msg == msg, c->len == len): computed by px_wire_copy over these bytes. Otherwise, or with
 * c NULL, as px_wire_open. */
px_drop_reason px_wire_open_copied(const unsigned char *msg, size_t len, const px_wire_copied *c,
                                   px_msg_header *h);

/* 1 if msg[0..len) is an intact BYE message (px_wire_open accepts it and its kind is
 * PX_MSG_BYE), else 0: the server's transport is handed this to recognise a worker rank's last
 * message (transport.h, send_stop) without reading message bytes itself. A forged or corrupted
 * BYE is not one. */
int px_wire_is_bye(const unsigned char *msg, size_t len);

/* What the receiver expects of a message; px_wire_expect compares a parsed header with it. */
typedef struct {
    uint8_t kind;
    uint32_t step;
    uint32_t n_workers;     /* worker ids must be < n_workers (ignored for server messages) */
    uint64_t elem_count;    /* values the payload must decode to */
    uint64_t payload_bytes; /* exact payload size implied by the codec */
    uint8_t codec;
} px_wire_expectation;

px_drop_reason px_wire_expect(const px_msg_header *h, const px_wire_expectation *e);

#endif
