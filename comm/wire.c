/* wire.c - encoding and validation of message headers (format in wire.h). */
#include "wire.h"

#include <string.h>

#include "crc32c.h"

static void px__put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void px__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void px__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t px__get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t px__get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t px__get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

const char *px_drop_reason_name(px_drop_reason r)
{
    static const char *names[PX_DROP_REASON_COUNT] = {
        "none",   "short",     "magic", "version", "header_crc",  "kind",      "step",
        "worker", "duplicate", "codec", "length",  "payload_crc", "nonfinite",
    };
    return (r >= 0 && r < PX_DROP_REASON_COUNT) ? names[r] : "unknown";
}

void px_wire_seal(unsigned char *msg, const px_msg_header *h, size_t payload_bytes)
{
    const unsigned char *payload = msg + PX_WIRE_HEADER_BYTES;
    float loss = h->loss;
    uint32_t loss_bits;
    memcpy(&loss_bits, &loss, 4);
    px__put32(msg + 0, PX_WIRE_MAGIC);
    px__put16(msg + 4, PX_WIRE_VERSION);
    msg[6] = h->kind;
    msg[7] = h->codec;
    px__put32(msg + 8, h->step);
    px__put32(msg + 12, h->worker);
    px__put64(msg + 16, h->elem_count);
    px__put64(msg + 24, payload_bytes);
    px__put32(msg + 32, h->block_size);
    px__put32(msg + 36, loss_bits);
    px__put32(msg + 40, px_crc32c(0, payload, payload_bytes));
    px__put32(msg + 44, px_crc32c(0, msg, 44));
}

px_drop_reason px_wire_open_copied(const unsigned char *msg, size_t len, const px_wire_copied *c,
                                   px_msg_header *h)
{
    if (len < PX_WIRE_HEADER_BYTES) return PX_DROP_SHORT;
    if (px__get32(msg) != PX_WIRE_MAGIC) return PX_DROP_MAGIC;
    if (px__get16(msg + 4) != PX_WIRE_VERSION) return PX_DROP_VERSION;
    if (px__get32(msg + 44) != px_crc32c(0, msg, 44)) return PX_DROP_HEADER_CRC;
    h->magic = PX_WIRE_MAGIC;
    h->version = PX_WIRE_VERSION;
    h->kind = msg[6];
    h->codec = msg[7];
    h->step = px__get32(msg + 8);
    h->worker = px__get32(msg + 12);
    h->elem_count = px__get64(msg + 16);
    h->payload_bytes = px__get64(msg + 24);
    h->block_size = px__get32(msg + 32);
    uint32_t loss_bits = px__get32(msg + 36);
    memcpy(&h->loss, &loss_bits, 4);
    h->payload_crc = px__get32(msg + 40);
    if (h->payload_bytes != len - PX_WIRE_HEADER_BYTES) return PX_DROP_LENGTH;
    uint32_t crc = c && c->msg == msg && c->len == len
                       ? c->payload_crc
                       : px_crc32c(0, msg + PX_WIRE_HEADER_BYTES, (size_t)h->payload_bytes);
    if (crc != h->payload_crc)
        return PX_DROP_PAYLOAD_CRC;
    return PX_DROP_NONE;
}

px_drop_reason px_wire_open(const unsigned char *msg, size_t len, px_msg_header *h)
{
    return px_wire_open_copied(msg, len, NULL, h);
}

void px_wire_copy(void *user, unsigned char *dst, const unsigned char *src, size_t len)
{
    px_wire_copied *c = user;
    c->msg = NULL;
    if (len < PX_WIRE_HEADER_BYTES) {
        memcpy(dst, src, len);
        return;
    }
    memcpy(dst, src, PX_WIRE_HEADER_BYTES);
    c->payload_crc = px_crc32c_copy(0, dst + PX_WIRE_HEADER_BYTES, src + PX_WIRE_HEADER_BYTES,
                                    len - PX_WIRE_HEADER_BYTES);
    c->msg = dst;
    c->len = len;
}

int px_wire_is_bye(const unsigned char *msg, size_t len)
{
    px_msg_header h;
    return px_wire_open(msg, len, &h) == PX_DROP_NONE && h.kind == PX_MSG_BYE;
}

px_drop_reason px_wire_expect(const px_msg_header *h, const px_wire_expectation *e)
{
    if (h->kind != e->kind) return PX_DROP_KIND;
    if (h->step != e->step) return PX_DROP_STEP;
    if (e->kind == PX_MSG_GRADIENT && h->worker >= e->n_workers) return PX_DROP_WORKER;
    if (h->codec != e->codec) return PX_DROP_CODEC;
    if (h->elem_count != e->elem_count || h->payload_bytes != e->payload_bytes)
        return PX_DROP_LENGTH;
    return PX_DROP_NONE;
}
