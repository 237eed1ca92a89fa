/* fuzz_config.c - the config loader (runtime/config.h) on arbitrary bytes: decode, then what
 * the trainer does with a config it accepted (resolve, validate, the library views of its
 * sections, --print-config and the start-up table). Nothing may crash, leak or hit undefined
 * behaviour; a refusal must leave no config behind. */
#include "fuzz.h"

#include "runtime/config.h"

static void px__write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    px_fuzz_quiet();
    px_fuzz_seeds(px__write_seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_config *cfg = (px_config *)1;
    px_status st = px_config_decode(data, size, "fuzz.pb", &cfg);
    if (st < 0) {
        PX_FUZZ_ASSERT(cfg == NULL, "px_config_decode refused the bytes but left *out set");
        return 0;
    }
    PX_FUZZ_ASSERT(cfg != NULL, "px_config_decode accepted the bytes without a config");
    px_config_resolve(cfg);
    if (px_config_validate(cfg) == PX_OK) {
        /* what the trainer derives from a valid config */
        px_agg_params p;
        px_config_agg_params(cfg, &p);
        px_codec_spec up, down;
        px_config_codecs(cfg, &up, &down);
        px_byz_spec byz;
        px_config_byz_spec(cfg, &byz);
        px_config_kinds kinds;
        px_config_kind_names(cfg, &kinds);
        px_config_model_spec(cfg, NULL);
        px_config_optimizer_spec(cfg);
        px_config_data_source(cfg);
    }
    FILE *out = fopen("/dev/null", "w");
    if (out) {
        px_config_print_text(out, cfg);
        px_config_print_table(out, cfg);
        fclose(out);
    }
    char buf[256];
    static const char *fields[] = {"run.name",          "model.hidden",       "aggregator.rule",
                                   "aggregator.layers", "compression.uplink", "data.path"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        px_config_get_text(cfg, fields[i], buf, sizeof buf);
    px_config_free(cfg);
    return 0;
}

/* ---- the seed corpus: the default config and a few others made with --set (the encoded
 * examples/ are copied beside them by make_corpus.sh) ---------------------------------------- */

static void px__write_seeds(const char *dir)
{
    static const char *variants[][4] = {
        {"default", NULL},
        {"flag_int8", "aggregator.rule=flag", "compression.uplink=INT8", "aggregator.pre=clip,nnm"},
        {"fedld_layers", "aggregator.rule=fedld", "model.hidden=16,8", "aggregator.kappa=0.5"},
        {"byzantine", "byzantine.count=2", "cluster.workers=9", "aggregator.rule=krum"},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        px_config *cfg = NULL;
        if (px_config_default(&cfg) < 0) exit(1);
        for (int i = 1; i < 4 && variants[v][i]; i++)
            if (px_config_set(cfg, variants[v][i]) < 0)
                fprintf(stderr, "fuzz_config: seed %s: %s\n", variants[v][0], px_errmsg());
        size_t len = protobuf_c_message_get_packed_size(&cfg->base);
        uint8_t *pb = malloc(len + 1);
        if (!pb) exit(1);
        protobuf_c_message_pack(&cfg->base, pb);
        char name[64];
        snprintf(name, sizeof name, "%s.pb", variants[v][0]);
        px_fuzz_write_seed(dir, name, pb, len);
        free(pb);
        px_config_free(cfg);
    }
}
