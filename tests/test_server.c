/* test_server.c - the parameter server never trusts a message: each corrupted, misaddressed,
 * stale, duplicate or wrong-size message is dropped and counted; non-finite gradients are
 * dropped by the aggregator; the update is the optimizer applied to the aggregate of the rest. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "comm/wire.h"
#include "runtime/server.h"

enum { FEATURES = 4, CLASSES = 3, D = FEATURES * CLASSES + CLASSES };

typedef struct {
    px_config *cfg;
    px_dataset data;
    px_server s;
    unsigned char msg[PX_WIRE_HEADER_BYTES + D * sizeof(float) + 64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    px_config_default(&f->cfg);
    px_config_set(f->cfg, "cluster.workers=4");
    px_config_set(f->cfg, "model.hidden=");
    px_config_set(f->cfg, "optimizer.momentum=0");
    px_config_set(f->cfg, "optimizer.lr=1");
    /* a tiny test split: the server only needs its shape here */
    f->data.classes = CLASSES;
    f->data.mean = 0;
    f->data.std = 1;
    f->data.test.count = 2;
    f->data.test.features = FEATURES;
    f->data.train.features = FEATURES; /* known from the headers, not loaded */
    f->data.train.count = 100;
    f->data.input = PX_INPUT_VALUES;
    f->data.label_values = 1;
    f->data.channels = 1;
    f->data.test.images = calloc(2 * FEATURES, 1);
    f->data.test.labels = calloc(2, 1);
    if (px_server_create(&f->s, f->cfg, &f->data, 3 /* MPI world: ranks 1, 2 host workers */,
                         NULL) != PX_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    px_server_free(&f->s);
    free(f->data.test.images);
    free(f->data.test.labels);
    px_config_free(f->cfg);
    free(f);
    return 0;
}

/* a gradient message of worker w for step `step`, every value = v */
static size_t make(fixture *f, uint32_t step, uint32_t w, float v)
{
    float *p = (float *)(f->msg + PX_WIRE_HEADER_BYTES);
    for (int i = 0; i < D; i++)
        p[i] = v;
    px_msg_header h = {
        .kind = PX_MSG_GRADIENT, .step = step, .worker = w, .elem_count = D, .loss = 1.0f};
    px_wire_seal(f->msg, &h, D * sizeof(float));
    return PX_WIRE_HEADER_BYTES + D * sizeof(float);
}

static void test_drops_and_update(void **state)
{
    fixture *f = *state;
    px_server *s = &f->s;
    assert_int_equal(s->d, D);
    float before[D];
    memcpy(before, s->params, sizeof before);
    const unsigned char *pm, *full;
    size_t pl, fl;
    assert_int_equal(px_server_begin_step(s, 5, &pm, &pl, &full, &fl), PX_OK);
    assert_null(full); /* float32 downlink: the message is the parameters */
    assert_int_equal(pl, PX_WIRE_HEADER_BYTES + D * sizeof(float));

    /* workers 0 and 2 live on rank 1, workers 1 and 3 on rank 2 (round-robin over 2 ranks) */
    size_t len = make(f, 5, 0, 1.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 1), PX_DROP_NONE);
    /* the same worker again */
    assert_int_equal(px_server_accept(s, f->msg, len, 1), PX_DROP_DUPLICATE);
    /* worker 1 claimed by rank 1, which does not host it */
    len = make(f, 5, 1, 2.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 1), PX_DROP_WORKER);
    /* a worker id out of range */
    len = make(f, 5, 77, 2.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_WORKER);
    /* a message of the previous step */
    len = make(f, 4, 1, 2.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_STEP);
    /* one flipped payload byte */
    len = make(f, 5, 1, 2.0f);
    f->msg[PX_WIRE_HEADER_BYTES + 3] ^= 0x10;
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_PAYLOAD_CRC);
    /* one flipped header byte (the step field) */
    len = make(f, 5, 1, 2.0f);
    f->msg[8] ^= 0x01;
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_HEADER_CRC);
    /* a consistent message of the wrong size (one value short) */
    px_msg_header h = {.kind = PX_MSG_GRADIENT, .step = 5, .worker = 1, .elem_count = D - 1};
    px_wire_seal(f->msg, &h, (D - 1) * sizeof(float));
    assert_int_equal(px_server_accept(s, f->msg, PX_WIRE_HEADER_BYTES + (D - 1) * sizeof(float), 2),
                     PX_DROP_LENGTH);
    /* garbage */
    memset(f->msg, 0xAB, 100);
    assert_int_equal(px_server_accept(s, f->msg, 100, 2), PX_DROP_MAGIC);
    assert_int_equal(px_server_accept(s, f->msg, 10, 2), PX_DROP_SHORT);

    /* worker 1 finally sends a good message; worker 2 sends NaN (dropped when decoded);
     * worker 3 sends 4.0 */
    len = make(f, 5, 1, 2.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_NONE);
    len = make(f, 5, 2, NAN);
    assert_int_equal(px_server_accept(s, f->msg, len, 1), PX_DROP_NONFINITE);
    len = make(f, 5, 3, 4.0f);
    assert_int_equal(px_server_accept(s, f->msg, len, 2), PX_DROP_NONE);

    assert_int_equal(s->drops[PX_DROP_DUPLICATE], 1);
    assert_int_equal(s->drops[PX_DROP_WORKER], 2);
    assert_int_equal(s->drops[PX_DROP_STEP], 1);
    assert_int_equal(s->drops[PX_DROP_PAYLOAD_CRC], 1);
    assert_int_equal(s->drops[PX_DROP_HEADER_CRC], 1);
    assert_int_equal(s->drops[PX_DROP_LENGTH], 1);
    assert_int_equal(s->drops[PX_DROP_MAGIC], 1);
    assert_int_equal(s->drops[PX_DROP_SHORT], 1);

    px_step_result r;
    assert_int_equal(px_server_finish_step(s, 0.5f, &r), PX_OK);
    assert_int_equal(r.received, 3);
    assert_int_equal(s->drops[PX_DROP_NONFINITE], 1);
    assert_int_equal(r.updated, 1);
    /* mean of the finite gradients (1, 2, 4) = 7/3; plain SGD at lr 0.5 */
    for (int i = 0; i < D; i++) {
        assert_true(isfinite(s->params[i]));
        assert_float_equal(s->params[i], before[i] - 0.5f * (7.0f / 3.0f), 1e-6);
    }
}

static void test_no_valid_gradient_keeps_parameters(void **state)
{
    fixture *f = *state;
    px_server *s = &f->s;
    float before[D];
    memcpy(before, s->params, sizeof before);
    const unsigned char *pm, *full;
    size_t pl, fl;
    px_server_begin_step(s, 0, &pm, &pl, &full, &fl);
    size_t len = make(f, 0, 0, INFINITY);
    assert_int_equal(px_server_accept(s, f->msg, len, 1), PX_DROP_NONFINITE);
    px_step_result r;
    assert_int_equal(px_server_finish_step(s, 0.5f, &r), PX_OK);
    assert_int_equal(r.updated, 0);
    assert_memory_equal(before, s->params, sizeof before);
    /* a step with nothing at all */
    px_server_begin_step(s, 1, &pm, &pl, &full, &fl);
    assert_int_equal(px_server_finish_step(s, 0.5f, &r), PX_OK);
    assert_int_equal(r.received, 0);
    assert_int_equal(r.updated, 0);
}

/* an int8 + RHT uplink: the server decodes each payload with the sender's stream, and refuses
 * a payload of the wrong size, block size or codec before decoding it */
static void test_int8_uplink(void **state)
{
    fixture *f = *state;
    px_server_free(&f->s);
    px_config_set(f->cfg, "compression.uplink=INT8");
    px_config_set(f->cfg, "compression.block_size=4");
    assert_int_equal(px_server_create(&f->s, f->cfg, &f->data, 1, NULL), PX_OK);
    px_server *s = &f->s;
    px_codec_spec up = {.format = PX_CODEC_INT8, .rht = 1, .block_size = 4};
    size_t pb = px_codec_payload_bytes(&up, D);
    assert_int_equal(s->up_payload_bytes, pb);
    assert_true(pb < D * sizeof(float));
    px_codec *enc;
    assert_int_equal(px_codec_create(&enc, &up, D, NULL), PX_OK);
    float g[D];
    for (int i = 0; i < D; i++)
        g[i] = (float)(i - 7) * 0.25f;
    const unsigned char *pm, *full;
    size_t pl, fl;
    px_server_begin_step(s, 3, &pm, &pl, &full, &fl);

    px_codec_stream cs = {f->cfg->run->seed, 3, 2};
    unsigned char *payload = f->msg + PX_WIRE_HEADER_BYTES;
    assert_int_equal(px_codec_encode(enc, &cs, g, D, NULL, payload, pb), PX_OK);
    px_msg_header h = {.kind = PX_MSG_GRADIENT,
                       .step = 3,
                       .worker = 2,
                       .elem_count = D,
                       .codec = px_codec_wire_id(&up),
                       .block_size = 4};
    px_wire_seal(f->msg, &h, pb);
    size_t len = PX_WIRE_HEADER_BYTES + pb;
    /* a wrong size, block size or codec: refused before decoding */
    px_wire_seal(f->msg, &h, pb - 1);
    assert_int_equal(px_server_accept(s, f->msg, len - 1, 0), PX_DROP_LENGTH);
    h.block_size = 8;
    px_wire_seal(f->msg, &h, pb);
    assert_int_equal(px_server_accept(s, f->msg, len, 0), PX_DROP_CODEC);
    h.block_size = 4;
    h.codec = PX_CODEC_FP8_E4M3 | PX_CODEC_WIRE_RHT;
    px_wire_seal(f->msg, &h, pb);
    assert_int_equal(px_server_accept(s, f->msg, len, 0), PX_DROP_CODEC);
    /* the right message, decoded within int8's error: at most scale'/2 per rotated element,
     * scale' = rotated block absmax / 127 <= ||block|| / 127 <= 2 absmax / 127 (B = 4); the
     * orthonormal inverse keeps the error vector's norm, so each element errs by at most
     * sqrt(4) scale'/2 <= 2 absmax / 127 */
    h.codec = px_codec_wire_id(&up);
    px_wire_seal(f->msg, &h, pb);
    assert_int_equal(px_server_accept(s, f->msg, len, 0), PX_DROP_NONE);
    float absmax = 0;
    for (int i = 0; i < D; i++)
        absmax = fmaxf(absmax, fabsf(g[i]));
    for (int i = 0; i < D; i++)
        assert_float_equal(s->rows[2 * D + i], g[i], 2 * absmax / 127.0);
    /* a payload whose first scale is NaN (a consistent, well-sealed message) */
    h.worker = 1;
    float nan = NAN;
    memcpy(payload, &nan, sizeof nan);
    px_wire_seal(f->msg, &h, pb);
    assert_int_equal(px_server_accept(s, f->msg, len, 0), PX_DROP_NONFINITE);
    assert_int_equal(s->drops[PX_DROP_CODEC], 2);
    assert_int_equal(s->drops[PX_DROP_LENGTH], 1);
    assert_int_equal(s->drops[PX_DROP_NONFINITE], 1);
    px_codec_destroy(enc);
}

int main(void)
{
    px_log_set_level(PX_LOG_ERROR); /* the drops are expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drops_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_valid_gradient_keeps_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int8_uplink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
