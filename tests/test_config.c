/* test_config.c - config.pb decoding (empty, text, random, truncated, unknown fields, bad enum
 * values), --set for every kind of field and its errors, every validation rule, the printed
 * forms, and the limits (tests/test_config_agg.c: the aggregator section). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "base/rng.h"
#include "runtime/config.h"

/* A packed config with a few sections set, built with the generated structs. */
static uint8_t *pack_sample(size_t *len)
{
    Phalanx__Config c = PHALANX__CONFIG__INIT;
    Phalanx__Run run = PHALANX__RUN__INIT;
    Phalanx__Optimizer opt = PHALANX__OPTIMIZER__INIT;
    Phalanx__Cluster cl = PHALANX__CLUSTER__INIT;
    Phalanx__Model model = PHALANX__MODEL__INIT;
    uint32_t hidden[] = {32, 16};
    run.name = "sample";
    run.has_seed = 1;
    run.seed = 99;
    opt.has_lr = 1;
    opt.lr = 0.25f;
    cl.has_workers = 1;
    cl.workers = 9;
    model.n_hidden = 2;
    model.hidden = hidden;
    c.run = &run;
    c.model = &model;
    c.optimizer = &opt;
    c.cluster = &cl;
    *len = protobuf_c_message_get_packed_size(&c.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&c.base, buf);
    return buf;
}

static void test_decode_sample_and_defaults(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = pack_sample(&len);
    px_config *cfg;
    assert_int_equal(px_config_decode(buf, len, "sample", &cfg), PX_OK);
    assert_string_equal(cfg->run->name, "sample");
    assert_int_equal(cfg->run->seed, 99);
    assert_float_equal(cfg->optimizer->lr, 0.25f, 0);
    assert_float_equal(cfg->optimizer->momentum, 0.9f, 0); /* default filled in */
    assert_int_equal(cfg->cluster->workers, 9);
    assert_int_equal(cfg->model->n_hidden, 2);
    /* absent sections exist with their defaults */
    assert_non_null(cfg->schedule);
    assert_int_equal(cfg->schedule->steps, 1000);
    assert_string_equal(cfg->aggregator->rule, "mean");
    assert_int_equal(cfg->data->batch_size, 64);
    assert_int_equal(px_config_validate(cfg), PX_OK);
    px_config_free(cfg);
    free(buf);
}

static void test_decode_refusals(void **state)
{
    (void)state;
    px_config *cfg;
    assert_int_equal(px_config_decode((const uint8_t *)"", 0, "e.pb", &cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "empty"));
    assert_null(cfg);

    const char *text = "run { name: \"x\" }\noptimizer { lr: 0.1 }\n";
    assert_int_equal(px_config_decode((const uint8_t *)text, strlen(text), "t.txtpb", &cfg),
                     PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "text"));
    assert_non_null(strstr(px_errmsg(), "protoc --encode"));

    /* an unknown field number 20 (varint 5): tag byte (20 << 3) | 0 = 0xA0 0x01 */
    const uint8_t unknown[] = {0xA0, 0x01, 0x05};
    assert_int_equal(px_config_decode(unknown, sizeof unknown, "u.pb", &cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "field number 20"));

    /* cluster (field 5) { transport (field 3) = 7 }: 7 is not a Transport value */
    const uint8_t bad_enum[] = {0x2A, 0x02, 0x18, 0x07};
    assert_int_equal(px_config_decode(bad_enum, sizeof bad_enum, "b.pb", &cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "cluster.transport = 7"));

    /* an unknown field inside a section is found too: run { field 9 = 1 } */
    const uint8_t nested[] = {0x0A, 0x02, 0x48, 0x01};
    assert_int_equal(px_config_decode(nested, sizeof nested, "n.pb", &cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "run: field number 9"));
}

static void test_random_bytes_refused(void **state)
{
    (void)state;
    px_rng r;
    px_rng_init(&r, 1234, 1, 0, 0);
    uint8_t buf[512];
    int refused = 0;
    for (int trial = 0; trial < 2000; trial++) {
        size_t len = 1 + px_rng_below(&r, sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)px_rng_u64(&r);
        px_config *cfg = NULL;
        px_status st = px_config_decode(buf, len, "random", &cfg);
        if (st == PX_EINVAL) {
            refused++;
            assert_null(cfg);
        } else {
            /* a random string that happens to be a valid config must at least be complete */
            assert_int_equal(st, PX_OK);
            assert_non_null(cfg->optimizer);
            px_config_free(cfg);
        }
    }
    assert_true(refused >= 1990);
}

/* offsets where a top-level field ends, walked from the wire format by hand */
static int is_top_boundary(const uint8_t *b, size_t len, size_t cut)
{
    size_t p = 0;
    while (p < len) {
        if (p == cut) return 1;
        uint64_t key = 0;
        int shift = 0;
        while (b[p] & 0x80)
            key |= (uint64_t)(b[p++] & 0x7F) << shift, shift += 7;
        key |= (uint64_t)b[p++] << shift;
        int wt = (int)(key & 7);
        if (wt == 0) {
            while (b[p++] & 0x80) {
            }
        } else if (wt == 2) {
            uint64_t l = 0;
            shift = 0;
            while (b[p] & 0x80)
                l |= (uint64_t)(b[p++] & 0x7F) << shift, shift += 7;
            l |= (uint64_t)b[p++] << shift;
            p += l;
        } else if (wt == 5) {
            p += 4;
        } else {
            p += 8;
        }
    }
    return 0;
}

static void test_truncations(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = pack_sample(&len);
    for (size_t cut = 1; cut < len; cut++) {
        px_config *cfg = NULL;
        px_status st = px_config_decode(buf, cut, "cut", &cfg);
        /* every section is length-prefixed: a cut inside one is always refused; a cut between
         * sections leaves a shorter but well-formed config */
        if (is_top_boundary(buf, len, cut)) {
            assert_int_equal(st, PX_OK);
            px_config_free(cfg);
        } else {
            assert_int_equal(st, PX_EINVAL);
            /* (a short prefix may be all printable bytes and be taken for a text file) */
            assert_true(strstr(px_errmsg(), "not a valid config.pb") ||
                        strstr(px_errmsg(), "not a binary config.pb"));
        }
    }
    free(buf);
}

static void test_set_every_kind(void **state)
{
    (void)state;
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    assert_int_equal(px_config_set(cfg, "optimizer.lr=0.125"), PX_OK);
    assert_float_equal(cfg->optimizer->lr, 0.125f, 0);
    assert_int_equal(px_config_set(cfg, "model.hidden=128,64,32"), PX_OK);
    assert_int_equal(cfg->model->n_hidden, 3);
    assert_int_equal(cfg->model->hidden[2], 32);
    assert_int_equal(px_config_set(cfg, "model.hidden="), PX_OK);
    assert_int_equal(cfg->model->n_hidden, 0);
    assert_int_equal(px_config_set(cfg, "cluster.transport=mpi"), PX_OK);
    assert_int_equal(cfg->cluster->transport, PHALANX__CLUSTER__TRANSPORT__MPI);
    assert_int_equal(px_config_set(cfg, "logging.save_params=false"), PX_OK);
    assert_int_equal(cfg->logging->save_params, 0);
    assert_int_equal(px_config_set(cfg, "run.name=exp-1"), PX_OK);
    assert_string_equal(cfg->run->name, "exp-1");
    assert_int_equal(px_config_set(cfg, "run.name=exp-2"), PX_OK); /* frees the previous */
    assert_string_equal(cfg->run->name, "exp-2");
    assert_int_equal(px_config_set(cfg, "run.seed=18446744073709551615"), PX_OK);
    assert_true(cfg->run->seed == UINT64_MAX);
    assert_int_equal(px_config_set(cfg, "aggregator.f=2"), PX_OK);
    char text[64];
    assert_int_equal(px_config_get_text(cfg, "optimizer.lr", text, sizeof text), PX_OK);
    assert_string_equal(text, "0.125");
    assert_int_equal(px_config_get_text(cfg, "cluster.transport", text, sizeof text), PX_OK);
    assert_string_equal(text, "MPI");
    px_config_free(cfg);
}

static void test_set_errors(void **state)
{
    (void)state;
    struct {
        const char *assignment, *message;
    } cases[] = {
        {"optimizer.lr", "expected section.field=value"},
        {"nosuch.lr=1", "no section 'nosuch'"},
        {"optimizer.lrr=1", "optimizer has no field 'lrr'"},
        {"optimizer.lr=abc", "expected a finite number"},
        {"optimizer.lr=nan", "expected a finite number"},
        {"optimizer.lr=1e39", "expected a finite number"},
        {"cluster.workers=-3", "non-negative integer"},
        {"cluster.workers=5000000000", "[0, 4294967295]"},
        {"cluster.transport=carrier_pigeon", "is not one of AUTO, MPI, LOCAL, SHM, NCCL"},
        {"logging.save_params=maybe", "true or false"},
        {"optimizer=3", "is a section"},
        {"optimizer.lr.x=3", "is not a section"},
        {"model.hidden=64,x", "model.hidden[1]"},
    };
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(px_config_set(cfg, cases[i].assignment), PX_EINVAL);
        if (!strstr(px_errmsg(), cases[i].message))
            fail_msg("--set %s: message '%s' lacks '%s'", cases[i].assignment, px_errmsg(),
                     cases[i].message);
    }
    /* the config is unchanged by refused overrides */
    assert_float_equal(cfg->optimizer->lr, 0.05f, 0);
    assert_int_equal(cfg->cluster->workers, 7);
    px_config_free(cfg);
}

static void test_validation_rules(void **state)
{
    (void)state;
    struct {
        const char *assignment, *message;
    } cases[] = {
        {"cluster.workers=0", "cluster.workers = 0"},
        {"cluster.workers=5000", "cluster.workers = 5000"},
        {"data.batch_size=0", "data.batch_size = 0"},
        {"optimizer.lr=0", "optimizer.lr = 0 must be > 0"},
        {"optimizer.lr=-0.1", "optimizer.lr = -0.1"},
        {"optimizer.momentum=1", "optimizer.momentum = 1"},
        {"optimizer.weight_decay=-1", "optimizer.weight_decay = -1"},
        {"cluster.timeout_ms=10", "cluster.timeout_ms = 10"},
        {"schedule.steps=0", "schedule.steps = 0"},
        {"schedule.log_every=0", "schedule.log_every = 0"},
        {"run.name=a/b", "run.name = \"a/b\""},
        {"run.name=", "run.name must not be empty"},
        {"model.hidden=64,0", "model.hidden[1] = 0"},
#ifndef PX_HAVE_CUDA /* a CUDA build accepts it here and asks the machine at start-up */
        {"cluster.device=CUDA", "cluster.device = CUDA needs a build with the CUDA toolkit"},
#endif
        {"cluster.transport=NCCL", "cluster.transport = NCCL moves GPU buffers and needs "
                                   "cluster.device = CUDA"},
        {"aggregator.rule=krum9", "unknown aggregation rule 'krum9'"},
        {"optimizer.warmup_steps=5000", "optimizer.warmup_steps = 5000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_config *cfg;
        assert_int_equal(px_config_default(&cfg), PX_OK);
        assert_int_equal(px_config_set(cfg, cases[i].assignment), PX_OK);
        assert_int_equal(px_config_validate(cfg), PX_EINVAL);
        if (!strstr(px_errmsg(), cases[i].message))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].assignment, px_errmsg(),
                     cases[i].message);
        px_config_free(cfg);
    }
    /* combinations */
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    px_config_set(cfg, "optimizer.schedule=COSINE");
    px_config_set(cfg, "optimizer.min_lr=0.5");
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "optimizer.min_lr = 0.5"));
    px_config_set(cfg, "optimizer.min_lr=0.01");
    assert_int_equal(px_config_validate(cfg), PX_OK);
    px_config_set(cfg, "optimizer.momentum=0");
    px_config_set(cfg, "optimizer.nesterov=true");
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "nesterov"));
    px_config_set(cfg, "optimizer.nesterov=false");
    /* with f_wait the rule must also hold for the n - f_wait gradients a step may go on with */
    px_config_set(cfg, "cluster.workers=15");
    px_config_set(cfg, "aggregator.rule=bulyan");
    px_config_set(cfg, "aggregator.f=3");
    assert_int_equal(px_config_validate(cfg), PX_OK);
    px_config_set(cfg, "cluster.f_wait=3");
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "cluster.f_wait = 3 (steps go on with 12 gradients)"));
    assert_non_null(strstr(px_errmsg(), "bulyan: needs n >= 4f+3, got n = 12 with f = 3"));
    px_config_free(cfg);
}

static void test_printing(void **state)
{
    (void)state;
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    px_config_set(cfg, "model.hidden=256,256");
    px_config_set(cfg, "aggregator.f=1");
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    px_config_print_text(mem, cfg);
    fclose(mem);
    assert_non_null(strstr(text, "  lr: 0.05\n"));
    assert_non_null(strstr(text, "  hidden: 256\n  hidden: 256\n"));
    assert_non_null(strstr(text, "  rule: \"mean\"\n"));
    assert_non_null(strstr(text, "  transport: AUTO\n"));
    /* the aggregator parameters print their effective values: the library's defaults */
    assert_non_null(strstr(text, "  f: 1\n"));
    assert_non_null(strstr(text, "  iters: 4\n"));
    assert_non_null(strstr(text, "  geomed_tol: 1e-07\n"));
    assert_non_null(strstr(text, "  init: \"pca\"\n"));
    assert_non_null(strstr(text, "  pre: \"\"\n"));
    assert_non_null(strstr(text, "  warm_start: false\n"));
    free(text);
    mem = open_memstream(&text, &size);
    px_config_print_table(mem, cfg);
    fclose(mem);
    assert_non_null(strstr(text, "*model.hidden"));
    assert_non_null(strstr(text, " optimizer.lr"));
    assert_non_null(strstr(text, "*aggregator.f "));
    assert_non_null(strstr(text, " aggregator.iters "));
    assert_non_null(strstr(text, " aggregator.kappa "));
    free(text);
    /* "*" compares with the library's default, not with a zero: iters 4 is the default, 0 not */
    px_config_set(cfg, "aggregator.iters=4");
    px_config_set(cfg, "aggregator.kappa=0.5");
    px_config_set(cfg, "aggregator.m=0");
    mem = open_memstream(&text, &size);
    px_config_print_table(mem, cfg);
    fclose(mem);
    assert_non_null(strstr(text, " aggregator.iters "));
    assert_non_null(strstr(text, "*aggregator.kappa "));
    assert_non_null(strstr(text, " aggregator.m "));
    free(text);
    px_config_set(cfg, "aggregator.iters=0");
    mem = open_memstream(&text, &size);
    px_config_print_table(mem, cfg);
    fclose(mem);
    assert_non_null(strstr(text, "*aggregator.iters "));
    free(text);
    px_config_free(cfg);
}

/* Numbers from the command line are decimal only and never silently changed: a leading zero
 * (octal under C's base 0) or a hex prefix is refused, a list item longer than the parser's
 * buffer is refused rather than cut, and a non-zero float that would be stored as 0 or as a
 * subnormal is refused naming the field. */
static void test_set_numbers_strict(void **state)
{
    (void)state;
    struct {
        const char *assignment, *message;
    } cases[] = {
        {"cluster.workers=010", "cluster.workers: expected a decimal integer without leading "
                                "zeros, got '010'"},
        {"cluster.workers=0x10", "cluster.workers: expected a decimal integer in [0, "
                                 "4294967295], got '0x10'"},
        {"run.seed=00", "run.seed: expected a decimal integer without leading zeros, got '00'"},
        {"model.hidden=64,010", "model.hidden[1]: expected a decimal integer without leading "
                                "zeros, got '010'"},
        {"optimizer.lr=1e-46", "optimizer.lr: 1e-46 is not zero but would be stored as 0 or a "
                               "subnormal float (the smallest normal is 1.17549e-38)"},
        {"optimizer.lr=1e-40", "optimizer.lr: 1e-40 is not zero but would be stored"},
        {"optimizer.lr=-1.1e-38", "optimizer.lr: -1.1e-38 is not zero"},
        {"aggregator.geomed_tol=1e-400", "aggregator.geomed_tol: 1e-400 is not zero but would be "
                                         "stored as 0 or a subnormal double"},
        {"aggregator.geomed_tol=3e-310", "aggregator.geomed_tol: 3e-310 is not zero"},
        {"optimizer.lr=0x1p-3", "optimizer.lr: expected a decimal number, got '0x1p-3'"},
    };
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (px_config_set(cfg, cases[i].assignment) != PX_EINVAL)
            fail_msg("--set %s was accepted", cases[i].assignment);
        if (!strstr(px_errmsg(), cases[i].message))
            fail_msg("--set %s: message '%s' lacks '%s'", cases[i].assignment, px_errmsg(),
                     cases[i].message);
    }
    assert_int_equal(cfg->cluster->workers, 7);
    assert_float_equal(cfg->optimizer->lr, 0.05f, 0);
    /* a list item longer than the item buffer is refused, not cut: cut to its first 127
     * characters, this one would read as octal 064 = 52 */
    char set[300] = "model.hidden=";
    size_t at = strlen(set);
    for (int k = 0; k < 125; k++)
        set[at++] = '0';
    memcpy(set + at, "64999", 6);
    assert_int_equal(px_config_set(cfg, set), PX_EINVAL);
    if (!strstr(px_errmsg(), "model.hidden[0]: an item of 130 characters, more than the 127"))
        fail_msg("long item: message '%s'", px_errmsg());
    /* what stays accepted: 0, plain decimals, zero written as a decimal, normal floats */
    assert_int_equal(px_config_set(cfg, "cluster.f_wait=0"), PX_OK);
    assert_int_equal(px_config_set(cfg, "cluster.workers=10"), PX_OK);
    assert_int_equal(cfg->cluster->workers, 10);
    assert_int_equal(px_config_set(cfg, "model.hidden=100,8"), PX_OK);
    assert_int_equal(cfg->model->hidden[0], 100);
    assert_int_equal(px_config_set(cfg, "optimizer.weight_decay=0.0e-50"), PX_OK);
    assert_true(cfg->optimizer->weight_decay == 0.0f);
    assert_int_equal(px_config_set(cfg, "optimizer.lr=1.2e-38"), PX_OK);
    assert_true(cfg->optimizer->lr == 1.2e-38f);
    assert_int_equal(px_config_set(cfg, "aggregator.geomed_tol=1e-300"), PX_OK);
    assert_true(cfg->aggregator->geomed_tol == 1e-300);
    px_config_free(cfg);
}

/* The workers and threads limits come from base/limits.h: the last value in is accepted, the
 * next refused with a message that states the limit. */
static void test_limits(void **state)
{
    (void)state;
    px_config *cfg;
    char set[64], message[128];
    assert_int_equal(px_config_default(&cfg), PX_OK);
    snprintf(set, sizeof set, "cluster.workers=%u", PX_MAX_WORKERS);
    assert_int_equal(px_config_set(cfg, set), PX_OK);
    assert_int_equal(px_config_validate(cfg), PX_OK);
    snprintf(set, sizeof set, "cluster.workers=%u", PX_MAX_WORKERS + 1);
    assert_int_equal(px_config_set(cfg, set), PX_OK);
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    snprintf(message, sizeof message, "cluster.workers = %u must be in [1, %u]",
             PX_MAX_WORKERS + 1, PX_MAX_WORKERS);
    assert_non_null(strstr(px_errmsg(), message));
    px_config_set(cfg, "cluster.workers=7");
    snprintf(set, sizeof set, "cluster.threads=%u", PX_MAX_THREADS);
    px_config_set(cfg, set);
    assert_int_equal(px_config_validate(cfg), PX_OK);
    snprintf(set, sizeof set, "cluster.threads=%u", PX_MAX_THREADS + 1);
    px_config_set(cfg, set);
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    snprintf(message, sizeof message, "cluster.threads = %u must be in [0, %u]",
             PX_MAX_THREADS + 1, PX_MAX_THREADS);
    assert_non_null(strstr(px_errmsg(), message));
    px_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_sample_and_defaults),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_random_bytes_refused),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_set_every_kind),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_validation_rules),
        cmocka_unit_test(test_printing),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_set_numbers_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
