/* test_config_agg.c - the config's aggregator section: its defaults and ranges are the
 * library's (aggregators/aggregator.h), every field reaches the library, values from a file,
 * and the iterative rules' bounds. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregator_defaults_from_library),
        cmocka_unit_test(test_aggregator_file_values),
        cmocka_unit_test(test_aggregator_every_field_reaches_library),
        cmocka_unit_test(test_aggregator_ranges),
        cmocka_unit_test(test_aggregator_iteration_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
