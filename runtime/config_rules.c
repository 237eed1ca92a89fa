/* config_rules.c - what a config means beyond its schema: the rules between fields that
 * px_config_validate checks (each refusal names the field, the rule and the value), and the
 * translation of sections into the specs of the subsystems (aggregator parameters, fault
 * injection, codecs). The generic part (decoding, --set, printing) is config.c. */
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "base/limits.h"
#include "config.h"
#include "fl/clients.h"

#define PX__RULE(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) return px_error(PX_EINVAL, __VA_ARGS__);                                      \
    } while (0)

static px_status px__check_name(const char *field, const char *s)
{
    PX__RULE(s && s[0], "config: %s must not be empty", field);
    for (const char *p = s; *p; p++)
        PX__RULE(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.',
                 "config: %s = \"%s\": only letters, digits, '_', '-' and '.' are allowed (it "
                 "names a directory)",
                 field, s);
    PX__RULE(strcmp(s, ".") && strcmp(s, ".."), "config: %s = \"%s\" is not a usable name", field,
             s);
    return PX_OK;
}

/* ---- the aggregator section ------------------------------------------------------------------
 * Every field of phalanx.Aggregator but `rule` and `seed` is the parameter of px_agg_params with
 * the same key. Its default is the library's (px_agg_params_default) and so is its range: values
 * travel between the config and the library as what they are (integer, number, boolean, text),
 * through the library's typed accessors, never printed and parsed back. */

/* The C type of a field of Phalanx__Aggregator. */
typedef enum { PX__AGG_U32, PX__AGG_U64, PX__AGG_REAL, PX__AGG_BOOL, PX__AGG_TEXT } px__agg_ctype;

typedef struct {
    const char *key;     /* the field of phalanx.Aggregator and the key of px_agg_params */
    px__agg_ctype ctype; /* the field's C type (from the generated struct, by _Generic) */
    size_t value;        /* offset of the field in Phalanx__Aggregator */
    size_t has;          /* offset of has_<field>; 0 for a string (unset = NULL) */
} px__agg_field;

#define PX__AGG_CTYPE(name)                                                                        \
    _Generic(((Phalanx__Aggregator *)0)->name, uint32_t: PX__AGG_U32, uint64_t: PX__AGG_U64,       \
             double: PX__AGG_REAL, protobuf_c_boolean: PX__AGG_BOOL, char *: PX__AGG_TEXT)
#define PX__AGG_SCALAR(name)                                                                       \
    {                                                                                              \
#name, PX__AGG_CTYPE(name), offsetof(Phalanx__Aggregator, name),                           \
            offsetof(Phalanx__Aggregator, has_##name)                                              \
    }
#define PX__AGG_STRING(name)                                                                       \
    {                                                                                              \
#name, PX__AGG_CTYPE(name), offsetof(Phalanx__Aggregator, name), 0                         \
    }

static const px__agg_field px__agg_fields[] = {
    PX__AGG_SCALAR(f),          PX__AGG_STRING(pre),          PX__AGG_SCALAR(m),
    PX__AGG_SCALAR(iters),      PX__AGG_SCALAR(lambda),       PX__AGG_STRING(init),
    PX__AGG_SCALAR(warm_start), PX__AGG_SCALAR(rescale),      PX__AGG_SCALAR(q),
    PX__AGG_SCALAR(geomed_nu),  PX__AGG_SCALAR(geomed_iters), PX__AGG_SCALAR(geomed_tol),
    PX__AGG_SCALAR(tau),        PX__AGG_SCALAR(cclip_iters),  PX__AGG_SCALAR(kappa),
    PX__AGG_SCALAR(clip_norm),  PX__AGG_SCALAR(bucket_size),
};
#define PX__N_AGG_FIELDS (sizeof px__agg_fields / sizeof px__agg_fields[0])

#define PX__AGG_AT(a, off)  ((void *)((char *)(a) + (off)))
#define PX__AGG_CAT(a, off) ((const void *)((const char *)(a) + (off)))

static int px__agg_field_set(const Phalanx__Aggregator *a, const px__agg_field *fd)
{
    if (fd->ctype == PX__AGG_TEXT) return *(char *const *)PX__AGG_CAT(a, fd->value) != NULL;
    return *(const protobuf_c_boolean *)PX__AGG_CAT(a, fd->has);
}

/* The library's value of fd's key in `lib`, written into the field (marked as set). */
static px_status px__agg_field_from(Phalanx__Aggregator *a, const px__agg_field *fd,
                                    const px_agg_params *lib)
{
    void *slot = PX__AGG_AT(a, fd->value);
    switch (fd->ctype) {
    case PX__AGG_U32:
    case PX__AGG_U64: {
        uint64_t v;
        PX_CHECK(px_agg_params_get_uint(lib, fd->key, &v));
        if (fd->ctype == PX__AGG_U32 && v > UINT32_MAX)
            return px_error(PX_EINVAL, "the library's default %llu does not fit a uint32",
                            (unsigned long long)v);
        if (fd->ctype == PX__AGG_U32)
            *(uint32_t *)slot = (uint32_t)v;
        else
            *(uint64_t *)slot = v;
        break;
    }
    case PX__AGG_REAL:
        PX_CHECK(px_agg_params_get_real(lib, fd->key, slot));
        break;
    case PX__AGG_BOOL: {
        bool v;
        PX_CHECK(px_agg_params_get_bool(lib, fd->key, &v));
        *(protobuf_c_boolean *)slot = v;
        break;
    }
    case PX__AGG_TEXT: {
        char text[256];
        PX_CHECK(px_agg_params_get_text(lib, fd->key, text, sizeof text));
        char *copy = strdup(text);
        if (!copy) return px_error(PX_ENOMEM, "cannot allocate");
        *(char **)slot = copy;
        return PX_OK;
    }
    }
    *(protobuf_c_boolean *)PX__AGG_AT(a, fd->has) = 1;
    return PX_OK;
}

/* The field's value handed to the library's typed setter (which checks the key's range). */
static px_status px__agg_field_to(const Phalanx__Aggregator *a, const px__agg_field *fd,
                                  px_agg_params *p)
{
    const void *slot = PX__AGG_CAT(a, fd->value);
    switch (fd->ctype) {
    case PX__AGG_U32:
        return px_agg_params_set_uint(p, fd->key, *(const uint32_t *)slot);
    case PX__AGG_U64:
        return px_agg_params_set_uint(p, fd->key, *(const uint64_t *)slot);
    case PX__AGG_REAL:
        return px_agg_params_set_real(p, fd->key, *(const double *)slot);
    case PX__AGG_BOOL:
        return px_agg_params_set_bool(p, fd->key, *(const protobuf_c_boolean *)slot != 0);
    case PX__AGG_TEXT:
        return px_agg_params_set(p, fd->key, *(char *const *)slot);
    }
    return px_error(PX_EINVAL, "unknown field type");
}

px_status px_config_fill_library_defaults(px_config *cfg)
{
    px_agg_params lib;
    px_agg_params_default(&lib);
    for (size_t i = 0; i < PX__N_AGG_FIELDS; i++) {
        const px__agg_field *fd = &px__agg_fields[i];
        if (px__agg_field_set(cfg->aggregator, fd)) continue;
        px_status st = px__agg_field_from(cfg->aggregator, fd, &lib);
        if (st < 0) return px_error_context(st, "config: aggregator.%s", fd->key);
    }
    return PX_OK;
}

px_status px_config_agg_params(const px_config *cfg, px_agg_params *p)
{
    const Phalanx__Aggregator *a = cfg->aggregator;
    px_agg_params_default(p);
    for (size_t i = 0; i < PX__N_AGG_FIELDS; i++) {
        const px__agg_field *fd = &px__agg_fields[i];
        if (!px__agg_field_set(a, fd)) continue; /* a config built by hand: the library's */
        px_status st = px__agg_field_to(a, fd, p);
        if (st < 0) return px_error_context(st, "config: aggregator.%s", fd->key);
    }
    /* the config's own default: 0 = the run seed */
    return px_agg_params_set_uint(p, "seed", a->seed ? a->seed : cfg->run->seed);
}

px_status px_config_byz_spec(const px_config *cfg, px_byz_spec *s)
{
    const Phalanx__Byzantine *b = cfg->byzantine;
    memset(s, 0, sizeof *s);
    s->attack = (px_attack)b->attack;
    s->omniscient = b->mode == PHALANX__BYZANTINE__MODE__OMNISCIENT;
    /* federated: the Byzantine are clients (a round's slot is Byzantine when its client is) */
    s->n = cfg->federated->enabled ? cfg->federated->clients : cfg->cluster->workers;
    s->count = b->count;
    s->rotate = b->rotate;
    s->start_step = b->start_step;
    s->tau = b->tau;
    s->alie_z = b->alie_z;
    s->sigma = b->sigma;
    s->scale = b->scale;
    s->omission_prob = b->omission_prob;
    s->large_value = b->large_value;
    s->mimic_target = b->mimic_target;
    s->crash_step = b->crash_step;
    s->delay_ms = b->delay_ms;
    s->corrupt_bytes = b->corrupt_bytes;
    s->mimic_farthest = b->mimic_farthest;
    s->perturbation = (px_perturbation)b->perturbation;
    s->search_evals = b->search_evals;
    s->search_start = b->search_start;
    s->search_delta = b->search_delta;
    s->search_ratio = b->search_ratio;
    s->seed = cfg->run->seed;
    return PX_OK;
}

static px_codec_spec px__codec_spec(int format, int rotation, const Phalanx__Compression *c,
                                    int stochastic)
{
    px_codec_spec s = {
        .format = (px_codec_format)format, .block_size = c->block_size, .stochastic = stochastic};
    if (format != PX_CODEC_FP32)
        s.rht = rotation == PHALANX__COMPRESSION__ROTATION__RHT ||
                (rotation == PHALANX__COMPRESSION__ROTATION__AUTO && format == PX_CODEC_INT8);
    if (format == PX_CODEC_FP32) s.block_size = 0;
    return s;
}

px_status px_config_codecs(const px_config *cfg, px_codec_spec *up, px_codec_spec *down)
{
    const Phalanx__Compression *c = cfg->compression;
    *up = px__codec_spec(c->uplink, c->uplink_rotation, c, c->stochastic && c->uplink);
    *down = px__codec_spec(c->downlink, c->downlink_rotation, c, 0);
    return PX_OK;
}

/* run, and the kinds: each kind checks its own section (the model's sizes are the model's
 * rules) */
static px_status px__validate_run_and_kinds(const px_config *cfg)
{
    const Phalanx__Run *run = cfg->run;
    PX_CHECK(px__check_name("run.name", run->name));
    PX__RULE(run->output_dir && run->output_dir[0], "config: run.output_dir must not be empty");

    px_config_kinds kinds;
    px_config_kind_names(cfg, &kinds);
    px_model_spec mspec = px_config_model_spec(cfg, NULL);
    PX_CHECK(px_model_check(kinds.model, &mspec));
    if (!px_dataset_find(kinds.dataset))
        return px_error(PX_EINVAL, "config: data.dataset \"%s\" is not a dataset of this build",
                        kinds.dataset);
    if (!px_optimizer_find(kinds.optimizer))
        return px_error(PX_EINVAL,
                        "config: optimizer.kind \"%s\" is not an optimizer of this build",
                        kinds.optimizer);
    return PX_OK;
}

static px_status px__validate_data_and_optimizer(const px_config *cfg)
{
    const Phalanx__Data *data = cfg->data;
    PX__RULE(data->path != NULL, "config: data.path is missing");
    PX__RULE(data->batch_size >= 1 && data->batch_size <= 65536,
             "config: data.batch_size = %u must be in [1, 65536]", data->batch_size);

    const Phalanx__Optimizer *opt = cfg->optimizer;
    PX__RULE(isfinite(opt->lr) && opt->lr > 0, "config: optimizer.lr = %g must be > 0",
             (double)opt->lr);
    PX__RULE(isfinite(opt->momentum) && opt->momentum >= 0 && opt->momentum < 1,
             "config: optimizer.momentum = %g must be in [0, 1)", (double)opt->momentum);
    PX__RULE(isfinite(opt->weight_decay) && opt->weight_decay >= 0,
             "config: optimizer.weight_decay = %g must be >= 0", (double)opt->weight_decay);
    PX__RULE(!opt->nesterov || opt->momentum > 0,
             "config: optimizer.nesterov = true needs optimizer.momentum > 0 (it is 0)");
    if (opt->schedule == PHALANX__OPTIMIZER__SCHEDULE__STEP) {
        PX__RULE(opt->step_every >= 1, "config: optimizer.step_every = 0 must be >= 1 for the "
                                       "STEP schedule");
        PX__RULE(isfinite(opt->step_gamma) && opt->step_gamma > 0 && opt->step_gamma <= 1,
                 "config: optimizer.step_gamma = %g must be in (0, 1]", (double)opt->step_gamma);
    }
    if (opt->schedule == PHALANX__OPTIMIZER__SCHEDULE__COSINE)
        PX__RULE(isfinite(opt->min_lr) && opt->min_lr >= 0 && opt->min_lr <= opt->lr,
                 "config: optimizer.min_lr = %g must be in [0, optimizer.lr = %g]",
                 (double)opt->min_lr, (double)opt->lr);
    PX__RULE(opt->warmup_steps <= cfg->schedule->steps,
             "config: optimizer.warmup_steps = %u must not exceed schedule.steps = %u",
             opt->warmup_steps, cfg->schedule->steps);
    return PX_OK;
}

/* cluster.server_shards: what a sharded server can run (the rank count is checked at start-up,
 * runtime/run.c, where it is known). What it cannot is refused, named, rather than run wrong. */
static px_status px__validate_shards(const px_config *cfg)
{
    const Phalanx__Cluster *cl = cfg->cluster;
    uint32_t S = cl->server_shards;
    PX__RULE(S >= 1 && S <= PX_MAX_SERVER_SHARDS,
             "config: cluster.server_shards = %u must be in [1, %u]", S, PX_MAX_SERVER_SHARDS);
    if (S == 1) return PX_OK;
    PX__RULE(cl->transport == PHALANX__CLUSTER__TRANSPORT__AUTO ||
                 cl->transport == PHALANX__CLUSTER__TRANSPORT__MPI,
             "config: cluster.server_shards = %u needs cluster.transport = MPI or AUTO (each "
             "shard has its own MPI channel to the workers)",
             S);
    PX__RULE(cl->device == PHALANX__CLUSTER__DEVICE__CPU,
             "config: cluster.server_shards = %u runs on the CPU (cluster.device = CPU)", S);
    PX__RULE(!cfg->federated->enabled,
             "config: cluster.server_shards = %u: federated mode runs with one server "
             "(server_shards = 1)",
             S);
    PX__RULE(!cfg->checkpoint->every && !cfg->logging->save_state_step,
             "config: cluster.server_shards = %u does not save run state yet "
             "(checkpoint.every and logging.save_state_step must be 0)",
             S);
    PX__RULE(!cfg->logging->save_gradients_step,
             "config: cluster.server_shards = %u: logging.save_gradients_step needs whole "
             "gradients on one rank (server_shards = 1)",
             S);
    px_byz_spec byz;
    PX_CHECK(px_config_byz_spec(cfg, &byz));
    PX__RULE(!(byz.omniscient && byz.count && px_attack_is_vector(byz.attack)),
             "config: cluster.server_shards = %u: an OMNISCIENT attack rewrites whole gradients "
             "on the server and needs them on one rank (server_shards = 1, or a LOCAL attack)",
             S);
    px_agg_params ap;
    PX_CHECK(px_config_agg_params(cfg, &ap));
    px_status st = px_agg_shard_check(cfg->aggregator->rule, &ap);
    if (st < 0) return px_error_context(st, "config: cluster.server_shards = %u", S);
    return PX_OK;
}

static px_status px__validate_cluster(const px_config *cfg)
{
    const Phalanx__Cluster *cl = cfg->cluster;
    PX__RULE(cl->workers >= 1 && cl->workers <= PX_MAX_WORKERS,
             "config: cluster.workers = %u must be in [1, %u]", cl->workers, PX_MAX_WORKERS);
    PX__RULE(cl->timeout_ms >= 100 && cl->timeout_ms <= 86400000u,
             "config: cluster.timeout_ms = %u must be in [100, 86400000] (0.1 s to a day)",
             cl->timeout_ms);
    PX__RULE(cl->threads <= PX_MAX_THREADS, "config: cluster.threads = %u must be in [0, %u]",
             cl->threads, PX_MAX_THREADS);
    /* what the build holds is known here; whether the machine has a GPU is asked at start-up
     * (runtime/run.c), so that --print-config works anywhere */
#ifndef PX_HAVE_CUDA
    PX__RULE(cl->device == PHALANX__CLUSTER__DEVICE__CPU,
             "config: cluster.device = CUDA needs a build with the CUDA toolkit, and this trainer "
             "was built without it (see trainer --version); set cluster.device = CPU");
#endif
    PX__RULE(cl->transport != PHALANX__CLUSTER__TRANSPORT__NCCL ||
                 cl->device == PHALANX__CLUSTER__DEVICE__CUDA,
             "config: cluster.transport = NCCL moves GPU buffers and needs cluster.device = CUDA "
             "(it is CPU); use transport MPI or AUTO on the CPU");
#ifndef PX_HAVE_NCCL
    PX__RULE(cl->transport != PHALANX__CLUSTER__TRANSPORT__NCCL,
             "config: cluster.transport = NCCL needs a build with NCCL, and this trainer was "
             "built without it (see trainer --version); use transport MPI or AUTO");
#endif

    PX__RULE(cl->f_wait < cl->workers,
             "config: cluster.f_wait = %u must be less than cluster.workers = %u", cl->f_wait,
             cl->workers);
    PX__RULE(cl->step_timeout_ms == 0 ||
                 (cl->step_timeout_ms >= 10 && cl->step_timeout_ms <= cl->timeout_ms),
             "config: cluster.step_timeout_ms = %u must be 0 or in [10, cluster.timeout_ms = %u]",
             cl->step_timeout_ms, cl->timeout_ms);
    return px__validate_shards(cfg);
}

static px_status px__validate_faults_and_codecs(const px_config *cfg)
{
    px_byz_spec byz;
    PX_CHECK(px_config_byz_spec(cfg, &byz));
    PX_CHECK(px_byz_check(&byz));

    const Phalanx__Compression *cc = cfg->compression;
    if (cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32 ||
        cc->downlink != PHALANX__COMPRESSION__FORMAT__FP32)
        PX__RULE(cc->block_size >= 1 && cc->block_size <= PX_CODEC_MAX_BLOCK &&
                     (cc->block_size & (cc->block_size - 1)) == 0,
                 "config: compression.block_size = %u must be a power of two in [1, %u]",
                 cc->block_size, PX_CODEC_MAX_BLOCK);
    PX__RULE(!cc->error_feedback || cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32,
             "config: compression.error_feedback = true needs a compressed uplink "
             "(compression.uplink is FP32)");
    PX__RULE(!cc->stochastic || cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32,
             "config: compression.stochastic = true needs a compressed uplink "
             "(compression.uplink is FP32)");
    px_codec_spec up, down;
    PX_CHECK(px_config_codecs(cfg, &up, &down));
    px_status cst = px_codec_spec_check(&up);
    if (cst == PX_OK) cst = px_codec_spec_check(&down);
    if (cst < 0) return px_error_context(cst, "config: compression");
    return PX_OK;
}

/* the aggregator's validity rule for n workers, and for n - f_wait */
static px_status px__validate_aggregator(const px_config *cfg)
{
    const Phalanx__Cluster *cl = cfg->cluster;
    px_agg_params ap;
    PX_CHECK(px_config_agg_params(cfg, &ap));
    px_status st = px_agg_validate(cfg->aggregator->rule, &ap, cl->workers);
    if (st == PX_OK && cl->f_wait) {
        /* the server goes on with n - f_wait gradients: the rule must hold for them */
        st = px_agg_validate(cfg->aggregator->rule, &ap, cl->workers - cl->f_wait);
        if (st < 0)
            return px_error_context(st,
                                    "config: aggregator.rule = \"%s\" with cluster.workers "
                                    "= %u and cluster.f_wait = %u (steps go on with %u "
                                    "gradients)",
                                    cfg->aggregator->rule, cl->workers, cl->f_wait,
                                    cl->workers - cl->f_wait);
    }
    if (st < 0)
        return px_error_context(st,
                                "config: aggregator.rule = \"%s\" with "
                                "cluster.workers = %u",
                                cfg->aggregator->rule, cl->workers);
    return PX_OK;
}

/* federated: the section's ranges; the slots per round are set by px_config_resolve */
static px_status px__validate_federated(const px_config *cfg)
{
    const Phalanx__Federated *f = cfg->federated;
    if (!f->enabled) return PX_OK;
    PX__RULE(f->clients >= 1 && f->clients <= PX_MAX_CLIENTS,
             "config: federated.clients = %u must be in [1, %u]", f->clients, PX_MAX_CLIENTS);
    PX__RULE(isfinite(f->sample_fraction) && f->sample_fraction > 0 && f->sample_fraction <= 1,
             "config: federated.sample_fraction = %g must be in (0, 1]",
             (double)f->sample_fraction);
    PX__RULE(f->local_steps >= 1 || f->local_epochs >= 1,
             "config: federated.local_steps and local_epochs are both 0: a client would not train");
    PX__RULE(isfinite(f->local_lr) && f->local_lr > 0,
             "config: federated.local_lr = %g must be > 0", (double)f->local_lr);
    PX__RULE(isfinite(f->prox_mu) && f->prox_mu >= 0, "config: federated.prox_mu = %g must be >= 0",
             (double)f->prox_mu);
    PX__RULE(isfinite(f->margin_lambda) && f->margin_lambda >= 0,
             "config: federated.margin_lambda = %g must be >= 0", (double)f->margin_lambda);
    size_t m = px_fl_clients_per_round(f->clients, f->sample_fraction);
    PX__RULE(cfg->cluster->workers == m,
             "config: federated: %u clients at sample_fraction %g give %zu per round, but "
             "cluster.workers = %u (the trainer sets it; px_config_resolve)",
             f->clients, (double)f->sample_fraction, m, cfg->cluster->workers);
    return PX_OK;
}

void px_config_resolve(px_config *cfg)
{
    const Phalanx__Federated *f = cfg->federated;
    if (f->enabled && f->clients >= 1 && f->sample_fraction > 0 && f->sample_fraction <= 1)
        cfg->cluster->workers = (uint32_t)px_fl_clients_per_round(f->clients, f->sample_fraction);
}

px_status px_config_validate(const px_config *cfg)
{
    PX_CHECK(px__validate_federated(cfg));
    PX_CHECK(px__validate_run_and_kinds(cfg));
    PX_CHECK(px__validate_data_and_optimizer(cfg));
    PX_CHECK(px__validate_cluster(cfg));
    PX_CHECK(px__validate_faults_and_codecs(cfg));
    const Phalanx__Schedule *sch = cfg->schedule;
    PX__RULE(sch->steps >= 1, "config: schedule.steps = 0 must be >= 1");
    PX__RULE(sch->log_every >= 1, "config: schedule.log_every = 0 must be >= 1");
    return px__validate_aggregator(cfg);
}

/* The lower-case name of an enum value (the registries' key). */
static void px__kind_name(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t cap)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    snprintf(buf, cap, "%s", v ? v->name : "?");
    for (char *p = buf; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

void px_config_kind_names(const px_config *cfg, px_config_kinds *k)
{
    px__kind_name(&phalanx__model__kind__descriptor, (int)cfg->model->kind, k->model,
                  sizeof k->model);
    px__kind_name(&phalanx__data__dataset__descriptor, (int)cfg->data->dataset, k->dataset,
                  sizeof k->dataset);
    px__kind_name(&phalanx__optimizer__kind__descriptor, (int)cfg->optimizer->kind, k->optimizer,
                  sizeof k->optimizer);
}

px_model_spec px_config_model_spec(const px_config *cfg, const px_dataset *data)
{
    const Phalanx__Model *m = cfg->model;
    px_model_spec spec = {.hidden = m->hidden,
                          .n_hidden = m->n_hidden,
                          .conv = m->channels,
                          .n_conv = m->n_channels,
                          .blocks = m->blocks,
                          .width = m->width,
                          .heads = m->heads,
                          .context = m->context};
    if (data) {
        spec.tokens = data->input == PX_INPUT_TOKENS;
        spec.input_values = data->train.features;
        spec.channels = data->channels;
        spec.rows = data->train.rows;
        spec.cols = data->train.cols;
        spec.classes = data->classes;
        spec.label_values = data->label_values;
    }
    return spec;
}

px_optimizer_spec px_config_optimizer_spec(const px_config *cfg)
{
    const Phalanx__Optimizer *o = cfg->optimizer;
    return (px_optimizer_spec){.momentum = o->momentum,
                               .weight_decay = o->weight_decay,
                               .nesterov = o->nesterov,
                               .beta1 = o->beta1,
                               .beta2 = o->beta2,
                               .eps = o->eps,
                               .keep_frozen_state =
                                   cfg->lisa->state_policy == PHALANX__LISA__STATE_POLICY__KEEP};
}

px_data_source px_config_data_source(const px_config *cfg)
{
    const Phalanx__Data *d = cfg->data;
    return (px_data_source){.path = d->path,
                            .train_limit = d->train_limit,
                            .test_limit = d->test_limit,
                            .window = cfg->model->context};
}
