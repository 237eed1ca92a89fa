/* fuzz_state.c - the checkpoint reader: run-state files (runtime/state.h, px_state_read) on
 * arbitrary bytes, then what a resumed run loads from their sections: the aggregator state
 * (px_agg_state_load of the stateful rules: FA with warm start, FedLD, centered clipping), the
 * optimizer state (SGD, AdamW) and the packed config of config.pxs.
 *
 * The input is read as it is (almost everything stops at the magic or a section CRC), then with
 * every section's CRC-32C recomputed, so that the fuzzer reaches the loaders behind the file
 * format. A loader that accepts bytes must save them back unchanged (the formats are canonical),
 * and a resumed step on the loaded state must not crash.
 *
 * PX_FUZZ_WRITE_SEEDS=DIR fuzz_state writes the seed corpus (valid files made by the library's
 * own writers for the shapes below) into DIR and exits. */
#include "fuzz.h"

#include "aggregators/aggregator.h"
#include "base/alloc.h"
#include "comm/crc32c.h"
#include "runtime/config.h"
#include "runtime/nn/optimizer.h"
#include "runtime/state.h"

/* the shapes the loaders are made for: d parameters in two layer groups, n_max inputs */
#define PX_FUZZ_D     8u
#define PX_FUZZ_N_MAX 5u

static const px_layer_group px__groups[2] = {
    {"fc1", 0, 3, PX_GROUP_INPUT},
    {"head", 3, 5, PX_GROUP_HEAD},
};

enum { PX__FLAG, PX__FEDLD, PX__CCLIP, PX__MEAN, PX__AGGS };
static const char *px__agg_names[PX__AGGS] = {"flag", "fedld", "cclip", "mean"};
enum { PX__SGD, PX__ADAMW, PX__OPTS };
static const char *px__opt_names[PX__OPTS] = {"sgd", "adamw"};

/* Fresh loaders for every input, so that an input's outcome never depends on the ones before
 * it (a finding reproduces from its file alone). */
static px_agg *px__make_agg(int i)
{
    px_agg_params p;
    px_agg_params_default(&p);
    p.f = 1;
    p.warm_start = true;
    p.n_layers = 2;
    p.layer_sizes[0] = px__groups[0].size;
    p.layer_sizes[1] = px__groups[1].size;
    px_agg *a = NULL;
    if (px_agg_create(&a, px__agg_names[i], &p, PX_FUZZ_N_MAX, PX_FUZZ_D, NULL, NULL) < 0) {
        fprintf(stderr, "fuzz_state: %s\n", px_errmsg());
        abort();
    }
    return a;
}

static px_optimizer *px__make_opt(int i)
{
    px_optimizer_spec spec = {.momentum = 0.9f,
                              .weight_decay = 1e-4f,
                              .beta1 = 0.9f,
                              .beta2 = 0.999f,
                              .eps = 1e-8f,
                              .keep_frozen_state = 1};
    px_optimizer *o = NULL;
    px_status st = i == PX__SGD
                       ? px_optimizer_create(&o, px__opt_names[i], &spec, PX_FUZZ_D, NULL, 0)
                       : px_optimizer_create(&o, px__opt_names[i], &spec, PX_FUZZ_D, px__groups, 2);
    if (st < 0) {
        fprintf(stderr, "fuzz_state: %s\n", px_errmsg());
        abort();
    }
    return o;
}

/* One aggregation step of the loaded state on fixed finite inputs. */
static void px__agg_step(px_agg *a)
{
    float rows[PX_FUZZ_N_MAX][PX_FUZZ_D], out[PX_FUZZ_D];
    const float *x[PX_FUZZ_N_MAX];
    for (unsigned i = 0; i < PX_FUZZ_N_MAX; i++) {
        for (unsigned j = 0; j < PX_FUZZ_D; j++)
            rows[i][j] = (float)((i * 7 + j * 3) % 11) - 5.0f;
        x[i] = rows[i];
    }
    px_agg_run(a, x, PX_FUZZ_N_MAX, 1, out, NULL);
}

static void px__load_aggs(const void *data, size_t bytes)
{
    for (int i = 0; i < PX__AGGS; i++) {
        px_agg *a = px__make_agg(i);
        if (px_agg_state_load(a, data, bytes) < 0) {
            px_agg_destroy(a);
            continue;
        }
        size_t saved = px_agg_state_bytes(a);
        PX_FUZZ_ASSERT(saved == bytes, "aggregator state: loaded and saved sizes differ");
        unsigned char *back = malloc(saved);
        PX_FUZZ_ASSERT(back, "malloc");
        PX_FUZZ_ASSERT(px_agg_state_save(a, back, saved) == PX_OK, "px_agg_state_save");
        PX_FUZZ_ASSERT(memcmp(back, data, saved) == 0, "aggregator state: saved bytes differ");
        free(back);
        px__agg_step(a);
        px_agg_destroy(a);
    }
}

static void px__load_opts(const void *data, size_t bytes)
{
    for (int i = 0; i < PX__OPTS; i++) {
        px_optimizer *o = px__make_opt(i);
        if (o->ops->state_load(o, data, bytes) < 0) {
            px_optimizer_destroy(o);
            continue;
        }
        size_t saved = o->ops->state_bytes(o);
        PX_FUZZ_ASSERT(saved == bytes, "optimizer state: loaded and saved sizes differ");
        unsigned char *back = malloc(saved ? saved : 1);
        PX_FUZZ_ASSERT(back, "malloc");
        o->ops->state_save(o, back);
        PX_FUZZ_ASSERT(memcmp(back, data, saved) == 0, "optimizer state: saved bytes differ");
        free(back);
        float w[PX_FUZZ_D] = {0}, g[PX_FUZZ_D];
        for (unsigned j = 0; j < PX_FUZZ_D; j++)
            g[j] = 0.25f * (float)j - 1.0f;
        o->ops->step(o, w, g, 0.01f, NULL);
        px_optimizer_destroy(o);
    }
}

static void px__read(const char *path, size_t size, int loaders)
{
    px_state_file f;
    if (px_state_read(path, &f) < 0) {
        PX_FUZZ_ASSERT(f.bytes == NULL && f.count == 0, "px_state_read refused but kept bytes");
        return;
    }
    PX_FUZZ_ASSERT(f.len == size && f.count <= PX_STATE_MAX_SECTIONS, "px_state_read: a bad file");
    size_t total = 12;
    for (size_t i = 0; i < f.count; i++) {
        const px_state_section *s = &f.sections[i];
        PX_FUZZ_ASSERT(s->bytes == 0 ||
                           ((const unsigned char *)s->data >= f.bytes &&
                            (const unsigned char *)s->data + s->bytes <= f.bytes + f.len),
                       "a section outside the file");
        total += 16 + s->bytes;
    }
    PX_FUZZ_ASSERT(total == f.len, "px_state_read: the sections do not tile the file");
    const void *data;
    size_t bytes;
    if (loaders) {
        if (px_state_get(&f, "AGGS", SIZE_MAX, &data, &bytes) == PX_OK) px__load_aggs(data, bytes);
        if (px_state_get(&f, "OPTM", SIZE_MAX, &data, &bytes) == PX_OK) px__load_opts(data, bytes);
        if (px_state_get(&f, "CNFG", SIZE_MAX, &data, &bytes) == PX_OK) {
            px_config *cfg = NULL;
            if (px_config_decode(data, bytes, "config.pxs", &cfg) == PX_OK) px_config_free(cfg);
        }
    }
    px_state_close(&f);
}

/* The input with each section's CRC-32C made right (as far as its headers can be walked). */
static void px__fix_crcs(uint8_t *b, size_t len)
{
    if (len < 12) return;
    size_t count = px_fuzz_u32(b + 8), at = 12;
    for (size_t i = 0; i < count && i < PX_STATE_MAX_SECTIONS && len - at >= 16; i++) {
        uint64_t n = px_fuzz_u64(b + at + 4);
        if (n > len - at - 16) return;
        px_fuzz_put32(b + at + 12, px_crc32c(0, b + at + 16, (size_t)n));
        at += 16 + (size_t)n;
    }
}

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
    px__read(px_fuzz_file(data, size), size, 0);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    px__fix_crcs(fixed, size);
    px__read(px_fuzz_file(fixed, size), size, 1);
    free(fixed);
    return 0;
}

/* ---- the seed corpus ------------------------------------------------------------------------ */

static void px__seed(const char *dir, const char *name, const px_state_section *s, size_t count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (px_state_write(path, s, count) < 0) {
        fprintf(stderr, "fuzz_state: %s\n", px_errmsg());
        exit(1);
    }
}

static void px__write_seeds(const char *dir)
{
    /* run the aggregators and optimizers a few steps so that their states are not empty */
    px_agg *agg[PX__AGGS];
    px_optimizer *opt[PX__OPTS];
    for (int i = 0; i < PX__AGGS; i++)
        agg[i] = px__make_agg(i);
    for (int i = 0; i < PX__OPTS; i++)
        opt[i] = px__make_opt(i);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < PX__AGGS; i++)
            px__agg_step(agg[i]);
        float w[PX_FUZZ_D] = {0}, g[PX_FUZZ_D];
        for (unsigned j = 0; j < PX_FUZZ_D; j++)
            g[j] = 0.5f * (float)j - 1.0f;
        for (int i = 0; i < PX__OPTS; i++)
            opt[i]->ops->step(opt[i], w, g, 0.01f, NULL);
    }
    px_config *cfg = NULL;
    if (px_config_default(&cfg) < 0) exit(1);
    size_t cfg_len = protobuf_c_message_get_packed_size(&cfg->base);
    unsigned char *cfg_pb = malloc(cfg_len + 1);
    protobuf_c_message_pack(&cfg->base, cfg_pb);
    px_config_free(cfg);

    unsigned char *agg_state[PX__AGGS], *opt_state[PX__OPTS];
    size_t agg_bytes[PX__AGGS], opt_bytes[PX__OPTS];
    for (int i = 0; i < PX__AGGS; i++) {
        agg_bytes[i] = px_agg_state_bytes(agg[i]);
        agg_state[i] = malloc(agg_bytes[i]);
        px_agg_state_save(agg[i], agg_state[i], agg_bytes[i]);
        px_agg_destroy(agg[i]);
    }
    for (int i = 0; i < PX__OPTS; i++) {
        opt_bytes[i] = opt[i]->ops->state_bytes(opt[i]);
        opt_state[i] = malloc(opt_bytes[i] + 1);
        opt[i]->ops->state_save(opt[i], opt_state[i]);
        px_optimizer_destroy(opt[i]);
    }
    float params[PX_FUZZ_D];
    for (unsigned j = 0; j < PX_FUZZ_D; j++)
        params[j] = (float)j / 8.0f;
    uint64_t step = 3;
    /* a server state as server.c writes it (the sections this target loads) */
    for (int a = 0; a < PX__AGGS; a++) {
        int o = a % PX__OPTS;
        px_state_section s[] = {
            {"STEP", &step, sizeof step},
            {"PRMS", params, sizeof params},
            {"OPTM", opt_state[o], opt_bytes[o]},
            {"AGGS", agg_state[a], agg_bytes[a]},
        };
        char name[64];
        snprintf(name, sizeof name, "server_%s_%s.pxs", px__agg_names[a], px__opt_names[o]);
        px__seed(dir, name, s, sizeof s / sizeof s[0]);
    }
    px_state_section cfg_sec = {"CNFG", cfg_pb, cfg_len};
    px__seed(dir, "config.pxs", &cfg_sec, 1);
    uint64_t shape[2] = {2, PX_FUZZ_D};
    px_state_section worker[2] = {{"WSHP", shape, sizeof shape}, {"EFRS", params, sizeof params}};
    px__seed(dir, "worker_2.pxs", worker, 2);
    px__seed(dir, "empty.pxs", NULL, 0);
    for (int i = 0; i < PX__AGGS; i++)
        free(agg_state[i]);
    for (int i = 0; i < PX__OPTS; i++)
        free(opt_state[i]);
    free(cfg_pb);
}
