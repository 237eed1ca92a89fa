/* test_config.c - config.pb decoding (empty, text, random, truncated, unknown fields, bad enum
 * values), --set for every kind of field and its errors, every validation rule, the printed
 * forms, the aggregator section's defaults and ranges (the library's), and the limits. */
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

/* The fields of the aggregator section whose default is the library's: all but rule and seed. */
static int library_field(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "rule") && strcmp(f->name, "seed");
}

/* Asserts that field f of section a holds the value of the same key in the library parameters
 * lib, comparing typed values (nothing goes through text but the text keys). */
static void assert_field_is(const Phalanx__Aggregator *a, const ProtobufCFieldDescriptor *f,
                            const px_agg_params *lib)
{
    const char *at = (const char *)a + f->offset;
    uint64_t u;
    double r;
    bool b;
    char text[256];
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
        assert_int_equal(px_agg_params_get_uint(lib, f->name, &u), PX_OK);
        if (*(const uint32_t *)at != u) fail_msg("aggregator.%s = %u, the library's %llu", f->name,
                                                 *(const uint32_t *)at, (unsigned long long)u);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        assert_int_equal(px_agg_params_get_real(lib, f->name, &r), PX_OK);
        if (*(const double *)at != r)
            fail_msg("aggregator.%s = %g, the library's %g", f->name, *(const double *)at, r);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        assert_int_equal(px_agg_params_get_bool(lib, f->name, &b), PX_OK);
        if ((*(const protobuf_c_boolean *)at != 0) != b)
            fail_msg("aggregator.%s differs from the library's %d", f->name, b);
        break;
    case PROTOBUF_C_TYPE_STRING:
        assert_int_equal(px_agg_params_get_text(lib, f->name, text, sizeof text), PX_OK);
        assert_non_null(*(char *const *)at);
        if (strcmp(*(char *const *)at, text))
            fail_msg("aggregator.%s = \"%s\", the library's \"%s\"", f->name, *(char *const *)at,
                     text);
        break;
    default:
        fail_msg("aggregator.%s: a field type the library has no kind for", f->name);
    }
    if (f->type != PROTOBUF_C_TYPE_STRING)
        assert_true(*(const protobuf_c_boolean *)((const char *)a + f->quantifier_offset));
}

/* The aggregator parameters' defaults live in the library alone: config.proto states none, and a
 * config that leaves a field out holds (and hands the library) px_agg_params_default's value. */
static void test_aggregator_defaults_from_library(void **state)
{
    (void)state;
    px_config *cfg;
    assert_int_equal(px_config_default(&cfg), PX_OK);
    const ProtobufCMessageDescriptor *d = &phalanx__aggregator__descriptor;
    px_agg_params lib;
    px_agg_params_default(&lib);
    size_t checked = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!library_field(f)) continue;
        if (f->default_value)
            fail_msg("aggregator.%s: config.proto states a default; it is the library's", f->name);
        if (!px_agg_param_find(f->name))
            fail_msg("aggregator.%s: no aggregator parameter of that name", f->name);
        assert_field_is(cfg->aggregator, f, &lib);
        checked++;
    }
    assert_int_equal(checked, d->n_fields - 2);
    assert_true(checked >= 17);
    /* the parameters of a default config are the library's defaults with the run seed, field
     * by field (px_agg_params_default zeroes the padding, so memcmp compares the values) */
    px_agg_params p, want;
    px_agg_params_default(&want);
    want.seed = cfg->run->seed;
    assert_int_equal(px_config_agg_params(cfg, &p), PX_OK);
    assert_memory_equal(&p, &want, sizeof p);
    assert_int_equal(p.iters, 4);
    assert_true(p.geomed_nu == 0.1 && p.kappa == 0.8 && p.tau == 10 && p.clip_norm == 2);
    assert_int_equal(p.geomed_iters, 100);
    assert_int_equal(p.bucket_size, 2);
    /* aggregator.seed: 0 (the config's own default) = run.seed */
    px_config_set(cfg, "run.seed=1234");
    assert_int_equal(px_config_agg_params(cfg, &p), PX_OK);
    assert_int_equal(p.seed, 1234);
    px_config_set(cfg, "aggregator.seed=99");
    assert_int_equal(px_config_agg_params(cfg, &p), PX_OK);
    assert_int_equal(p.seed, 99);
    px_config_free(cfg);
}

/* A file that sets some aggregator fields: those keep the file's values, a zero included (set is
 * not default), and the others take the library's defaults. */
static void test_aggregator_file_values(void **state)
{
    (void)state;
    Phalanx__Config c = PHALANX__CONFIG__INIT;
    Phalanx__Aggregator agg = PHALANX__AGGREGATOR__INIT;
    agg.rule = "flag";
    agg.has_iters = 1;
    agg.iters = 0;
    agg.has_tau = 1;
    agg.tau = 3.5;
    agg.has_rescale = 1;
    agg.rescale = 1;
    agg.pre = "nnm";
    c.aggregator = &agg;
    size_t len = protobuf_c_message_get_packed_size(&c.base);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(&c.base, buf);
    px_config *cfg;
    assert_int_equal(px_config_decode(buf, len, "agg.pb", &cfg), PX_OK);
    free(buf);
    px_agg_params p, want;
    assert_int_equal(px_config_agg_params(cfg, &p), PX_OK);
    px_agg_params_default(&want);
    want.seed = cfg->run->seed;
    want.iters = 0;
    want.tau = 3.5;
    want.rescale = true;
    want.n_pre = 1;
    want.pre[0] = PX_AGG_PRE_NNM;
    assert_memory_equal(&p, &want, sizeof p);
    assert_int_equal(px_config_validate(cfg), PX_OK);
    px_config_free(cfg);
}

/* Every field reaches the library as a typed value: a value other than the default, written into
 * the config field, gives the parameters that the library's typed setter gives. */
static void test_aggregator_every_field_reaches_library(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &phalanx__aggregator__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!library_field(f)) continue;
        px_config *cfg;
        assert_int_equal(px_config_default(&cfg), PX_OK);
        px_agg_params want, got;
        px_agg_params_default(&want);
        want.seed = cfg->run->seed;
        char *at = (char *)cfg->aggregator + f->offset;
        uint64_t u;
        double r;
        bool b;
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT32:
            px_agg_params_get_uint(&want, f->name, &u);
            *(uint32_t *)at = (uint32_t)u + 3;
            assert_int_equal(px_agg_params_set_uint(&want, f->name, u + 3), PX_OK);
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            px_agg_params_get_real(&want, f->name, &r);
            r = r == 0 ? 0.25 : r / 2; /* inside every range: > 0, >= 0, (0, 1] */
            *(double *)at = r;
            assert_int_equal(px_agg_params_set_real(&want, f->name, r), PX_OK);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            px_agg_params_get_bool(&want, f->name, &b);
            *(protobuf_c_boolean *)at = !b;
            assert_int_equal(px_agg_params_set_bool(&want, f->name, !b), PX_OK);
            break;
        default: { /* the text keys: a value of each */
            const char *v = !strcmp(f->name, "init") ? "random" : "clip,bucketing";
            free(*(char **)at);
            *(char **)at = strdup(v);
            assert_int_equal(px_agg_params_set(&want, f->name, v), PX_OK);
        }
        }
        assert_int_equal(px_config_agg_params(cfg, &got), PX_OK);
        px_agg_params def;
        px_agg_params_default(&def);
        def.seed = cfg->run->seed;
        if (!memcmp(&got, &def, sizeof got))
            fail_msg("aggregator.%s does not reach the aggregator parameters", f->name);
        if (memcmp(&got, &want, sizeof got))
            fail_msg("aggregator.%s: the parameters differ from the library's typed setter's",
                     f->name);
        px_config_free(cfg);
    }
}

/* Typed values out of a key's range are refused by the library's range (the one table), with a
 * message naming the config field and the value, whether they come from a file, a typed write or
 * --set. */
static void test_aggregator_ranges(void **state)
{
    (void)state;
    struct {
        const char *field;
        double value;
        const char *message;
    } cases[] = {
        {"tau", -1, "config: aggregator.tau: aggregator parameter tau: expected a number > 0, "
                    "got -1"},
        {"kappa", 1.5, "config: aggregator.kappa: aggregator parameter kappa: expected a number "
                       "in (0, 1], got 1.5"},
        {"geomed_nu", 0, "config: aggregator.geomed_nu: aggregator parameter geomed_nu: expected "
                         "a number > 0, got 0"},
        {"lambda", NAN, "config: aggregator.lambda: aggregator parameter lambda: expected a "
                        "number >= 0, got nan"},
        {"clip_norm", INFINITY, "config: aggregator.clip_norm"},
        {"bucket_size", 0, "config: aggregator.bucket_size: aggregator parameter bucket_size: "
                           "expected an integer in [1, 4294967295], got 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_config *cfg;
        assert_int_equal(px_config_default(&cfg), PX_OK);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(&phalanx__aggregator__descriptor,
                                                            cases[i].field);
        assert_non_null(f);
        char *at = (char *)cfg->aggregator + f->offset;
        if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            *(double *)at = cases[i].value;
        else
            *(uint32_t *)at = (uint32_t)cases[i].value;
        assert_int_equal(px_config_validate(cfg), PX_EINVAL);
        if (!strstr(px_errmsg(), cases[i].message))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].field, px_errmsg(),
                     cases[i].message);
        px_agg_params p;
        assert_int_equal(px_config_agg_params(cfg, &p), PX_EINVAL);
        px_config_free(cfg);
    }
    /* through a file: a NaN that protoc can write ("nan") */
    Phalanx__Config c = PHALANX__CONFIG__INIT;
    Phalanx__Aggregator agg = PHALANX__AGGREGATOR__INIT;
    agg.has_geomed_tol = 1;
    agg.geomed_tol = NAN;
    c.aggregator = &agg;
    size_t len = protobuf_c_message_get_packed_size(&c.base);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(&c.base, buf);
    px_config *cfg;
    assert_int_equal(px_config_decode(buf, len, "nan.pb", &cfg), PX_OK);
    free(buf);
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "config: aggregator.geomed_tol"));
    assert_non_null(strstr(px_errmsg(), "got nan"));
    px_config_free(cfg);
    /* and through --set, which parses the text into the typed field first */
    assert_int_equal(px_config_default(&cfg), PX_OK);
    assert_int_equal(px_config_set(cfg, "aggregator.init=svd"), PX_OK);
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "config: aggregator.init"));
    assert_non_null(strstr(px_errmsg(), "'svd'"));
    px_config_set(cfg, "aggregator.init=random");
    assert_int_equal(px_config_set(cfg, "aggregator.kappa=2"), PX_OK);
    assert_int_equal(px_config_validate(cfg), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "config: aggregator.kappa"));
    assert_non_null(strstr(px_errmsg(), "got 2"));
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

/* Iteration counts of the aggregator section are bounded by the library's table, so a config
 * cannot ask for 2^32 - 1 Weiszfeld steps (a hung run): refused at load with exit 2's message. */
static void test_aggregator_iteration_bounds(void **state)
{
    (void)state;
    const char *keys[] = {"iters", "geomed_iters", "cclip_iters"};
    for (size_t i = 0; i < 3; i++) {
        px_config *cfg;
        char set[80], message[160];
        assert_int_equal(px_config_default(&cfg), PX_OK);
        snprintf(set, sizeof set, "aggregator.%s=4294967295", keys[i]);
        assert_int_equal(px_config_set(cfg, set), PX_OK);
        assert_int_equal(px_config_validate(cfg), PX_EINVAL);
        snprintf(message, sizeof message,
                 "config: aggregator.%s: aggregator parameter %s: expected an integer in [0, "
                 "1000], got 4294967295",
                 keys[i], keys[i]);
        if (!strstr(px_errmsg(), message))
            fail_msg("%s: message '%s' lacks '%s'", keys[i], px_errmsg(), message);
        snprintf(set, sizeof set, "aggregator.%s=1000", keys[i]);
        assert_int_equal(px_config_set(cfg, set), PX_OK);
        assert_int_equal(px_config_validate(cfg), PX_OK);
        px_config_free(cfg);
    }
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
        cmocka_unit_test(test_aggregator_defaults_from_library),
        cmocka_unit_test(test_aggregator_file_values),
        cmocka_unit_test(test_aggregator_every_field_reaches_library),
        cmocka_unit_test(test_aggregator_ranges),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_set_numbers_strict),
        cmocka_unit_test(test_aggregator_iteration_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
