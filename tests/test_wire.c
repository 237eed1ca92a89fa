/* test_wire.c - CRC-32C and the message header: known check values, agreement between the
 * hardware and table paths, and detection of every corrupted or unexpected field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "comm/crc32c.h"
#include "comm/wire.h"
#include "base/rng.h"

/* Bitwise CRC-32C, written independently of comm/crc32c.c: the definition itself. */
static uint32_t crc_reference(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_crc_check_values(void **state)
{
    (void)state;
    /* the standard check value of CRC-32C (RFC 3720 appendix B.4 and every CRC catalogue) */
    assert_int_equal(px_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(px_crc32c(0, "", 0), 0u);
    /* RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA, 32 bytes of 0xFF -> 0x62A8AB43 */
    unsigned char buf[32];
    memset(buf, 0, sizeof buf);
    assert_int_equal(px_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    assert_int_equal(px_crc32c(0, buf, 32), 0x62A8AB43u);
}

static void test_crc_matches_reference_all_lengths(void **state)
{
    (void)state;
    /* lengths around the 3-stream block boundary (3 * 8192) and odd tails */
    size_t max = 3 * 8192 * 2 + 77;
    unsigned char *buf = malloc(max);
    px_rng r;
    px_rng_init(&r, 7, 99, 0, 0);
    for (size_t i = 0; i < max; i++)
        buf[i] = (unsigned char)px_rng_u64(&r);
    size_t lens[] = {1, 7, 8, 9, 63, 64, 1000, 24575, 24576, 24577, 49152 + 5, max};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t off = k % 3; /* unaligned starts too */
        size_t len = lens[k] - (lens[k] > off ? off : 0);
        assert_int_equal(px_crc32c(0, buf + off, len), crc_reference(buf + off, len));
    }
    /* incremental: crc(a || b) computed in two calls */
    uint32_t part = px_crc32c(0, buf, 30000);
    assert_int_equal(px_crc32c(part, buf + 30000, max - 30000), crc_reference(buf, max));
    free(buf);
}

enum { D = 1000 };

static unsigned char *make_message(px_msg_header *h)
{
    unsigned char *msg = malloc(PX_WIRE_HEADER_BYTES + D * sizeof(float));
    float *payload = (float *)(msg + PX_WIRE_HEADER_BYTES);
    for (int i = 0; i < D; i++)
        payload[i] = (float)i * 0.5f - 3.0f;
    memset(h, 0, sizeof *h);
    h->kind = PX_MSG_GRADIENT;
    h->codec = 0;
    h->step = 41;
    h->worker = 5;
    h->elem_count = D;
    h->loss = 2.25f;
    px_wire_seal(msg, h, D * sizeof(float));
    return msg;
}

static px_wire_expectation expect_ok(void)
{
    px_wire_expectation e = {.kind = PX_MSG_GRADIENT,
                             .step = 41,
                             .n_workers = 7,
                             .elem_count = D,
                             .payload_bytes = D * sizeof(float),
                             .codec = 0};
    return e;
}

static void test_header_round_trip(void **state)
{
    (void)state;
    px_msg_header h, got;
    unsigned char *msg = make_message(&h);
    size_t len = PX_WIRE_HEADER_BYTES + D * sizeof(float);
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_NONE);
    assert_int_equal(got.kind, PX_MSG_GRADIENT);
    assert_int_equal(got.step, 41);
    assert_int_equal(got.worker, 5);
    assert_int_equal(got.elem_count, D);
    assert_int_equal(got.payload_bytes, D * sizeof(float));
    assert_true(got.loss == 2.25f);
    px_wire_expectation e = expect_ok();
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_NONE);
    /* the layout is little-endian and fixed: magic bytes spell PHLX, step at offset 8 */
    assert_memory_equal(msg, "PHLX", 4);
    assert_int_equal(msg[8], 41);
    assert_int_equal(msg[12], 5);
    free(msg);
}

static void test_every_corrupted_byte_is_caught(void **state)
{
    (void)state;
    px_msg_header h, got;
    unsigned char *msg = make_message(&h);
    size_t len = PX_WIRE_HEADER_BYTES + D * sizeof(float);
    /* flipping any single bit of the header or of a sample of payload bytes is detected */
    for (size_t byte = 0; byte < len; byte += (byte < PX_WIRE_HEADER_BYTES ? 1 : 97)) {
        for (int bit = 0; bit < 8; bit++) {
            msg[byte] ^= (unsigned char)(1u << bit);
            assert_int_not_equal(px_wire_open(msg, len, &got), PX_DROP_NONE);
            msg[byte] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_NONE);
    /* specific reasons */
    msg[0] ^= 1;
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_MAGIC);
    msg[0] ^= 1;
    msg[4] ^= 2;
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_VERSION);
    msg[4] ^= 2;
    msg[9] ^= 1;
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_HEADER_CRC);
    msg[9] ^= 1;
    msg[PX_WIRE_HEADER_BYTES + 10] ^= 0x40;
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_PAYLOAD_CRC);
    msg[PX_WIRE_HEADER_BYTES + 10] ^= 0x40;
    assert_int_equal(px_wire_open(msg, 20, &got), PX_DROP_SHORT);
    assert_int_equal(px_wire_open(msg, len - 4, &got), PX_DROP_LENGTH);
    free(msg);
}

static void test_expectations(void **state)
{
    (void)state;
    px_msg_header h, got;
    unsigned char *msg = make_message(&h);
    size_t len = PX_WIRE_HEADER_BYTES + D * sizeof(float);
    assert_int_equal(px_wire_open(msg, len, &got), PX_DROP_NONE);
    px_wire_expectation e = expect_ok();
    e.step = 42;
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_STEP);
    e = expect_ok();
    e.n_workers = 5; /* worker 5 does not exist among 5 workers */
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_WORKER);
    e = expect_ok();
    e.kind = PX_MSG_PARAMS;
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_KIND);
    e = expect_ok();
    e.elem_count = D + 1;
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_LENGTH);
    e = expect_ok();
    e.codec = 3;
    assert_int_equal(px_wire_expect(&got, &e), PX_DROP_CODEC);
    free(msg);
}

/* The copy that checksums as it goes: the CRC of what it wrote, for every length around its
 * chunk size; a message copied by px_wire_copy opens as px_wire_open would, and a payload byte
 * changed after the copy is not covered by the recorded CRC. */
static void test_copy_with_crc(void **state)
{
    (void)state;
    enum { N = 3 * 8192 + 100 };
    static unsigned char src[N], dst[N];
    px_rng r;
    px_rng_init(&r, 5, 0, 0, 0);
    for (size_t i = 0; i < N; i++)
        src[i] = (unsigned char)px_rng_u64(&r);
    size_t lens[] = {0, 1, 7, 8191, 8192, 8193, 2 * 8192, N};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        memset(dst, 0, sizeof dst);
        assert_int_equal(px_crc32c_copy(0, dst, src, lens[k]), crc_reference(src, lens[k]));
        if (lens[k]) assert_memory_equal(dst, src, lens[k]);
    }
    static unsigned char msg[PX_WIRE_HEADER_BYTES + 4000], got[sizeof msg];
    memcpy(msg + PX_WIRE_HEADER_BYTES, src, 4000);
    px_msg_header h = {.kind = PX_MSG_GRADIENT, .step = 3, .worker = 1, .elem_count = 1000};
    px_wire_seal(msg, &h, 4000);
    px_wire_copied c;
    px_wire_copy(&c, got, msg, sizeof msg);
    assert_ptr_equal(c.msg, got);
    px_msg_header o;
    assert_int_equal(px_wire_open_copied(got, sizeof got, &c, &o), PX_DROP_NONE);
    assert_int_equal(o.step, 3);
    msg[PX_WIRE_HEADER_BYTES + 9] ^= 1; /* a sender's byte flipped in the source copy */
    px_wire_copy(&c, got, msg, sizeof msg);
    assert_int_equal(px_wire_open_copied(got, sizeof got, &c, &o), PX_DROP_PAYLOAD_CRC);
    assert_int_equal(px_wire_open(got, sizeof got, &o), PX_DROP_PAYLOAD_CRC);
    px_wire_copy(&c, got, msg, 10); /* shorter than a header: recorded as nothing */
    assert_null(c.msg);
}

static void test_is_bye(void **state)
{
    (void)state;
    unsigned char msg[PX_WIRE_HEADER_BYTES + 4];
    px_msg_header h = {.kind = PX_MSG_BYE, .step = 9, .worker = PX_WIRE_SERVER};
    px_wire_seal(msg, &h, 0);
    assert_int_equal(px_wire_is_bye(msg, PX_WIRE_HEADER_BYTES), 1);
    /* too short, longer than its header says, or any flipped bit: not a BYE */
    assert_int_equal(px_wire_is_bye(msg, PX_WIRE_HEADER_BYTES - 1), 0);
    assert_int_equal(px_wire_is_bye(msg, 0), 0);
    assert_int_equal(px_wire_is_bye(msg, PX_WIRE_HEADER_BYTES + 4), 0);
    for (size_t byte = 0; byte < PX_WIRE_HEADER_BYTES; byte++) {
        msg[byte] ^= 0x10;
        assert_int_equal(px_wire_is_bye(msg, PX_WIRE_HEADER_BYTES), 0);
        msg[byte] ^= 0x10;
    }
    /* a byte 6 that says BYE is not enough: the header must be intact */
    unsigned char forged[PX_WIRE_HEADER_BYTES];
    memset(forged, 0, sizeof forged);
    forged[6] = PX_MSG_BYE;
    assert_int_equal(px_wire_is_bye(forged, sizeof forged), 0);
    /* other kinds are not BYE */
    px_msg_header stop = {.kind = PX_MSG_STOP, .step = 9, .worker = PX_WIRE_SERVER};
    px_wire_seal(msg, &stop, 0);
    assert_int_equal(px_wire_is_bye(msg, PX_WIRE_HEADER_BYTES), 0);
    px_msg_header grad;
    unsigned char *g = make_message(&grad);
    assert_int_equal(px_wire_is_bye(g, PX_WIRE_HEADER_BYTES + D * sizeof(float)), 0);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_values),
        cmocka_unit_test(test_crc_matches_reference_all_lengths),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_every_corrupted_byte_is_caught),
        cmocka_unit_test(test_expectations),
        cmocka_unit_test(test_is_bye),
        cmocka_unit_test(test_copy_with_crc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
