/* config.h - loading, overriding, checking and printing a run's configuration (config.pb).
 *
 * The schema is proto/config.proto; the generated protobuf-c struct Phalanx__Config is the
 * configuration the whole runtime reads. After px_config_load every section is present (a
 * section missing from the file is filled with its defaults), so code reads cfg->optimizer->lr
 * without NULL checks, and every field holds its effective value: the file's, else the
 * schema's default, else, for a field whose default belongs to a library (the aggregator
 * parameters), that library's default.
 *
 * Every function here refuses bad input with PX_EINVAL and a message that names the field, the
 * rule and the value; the trainer turns that into exit status 2.
 */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stdio.h>

#include "aggregators/aggregator.h"
#include "comm/codec.h"
#include "config.pb-c.h"
#include "base/common.h"
#include "faults/byzantine.h"
#include "runtime/dataset.h"
#include "runtime/nn/model.h"
#include "runtime/nn/optimizer.h"

typedef Phalanx__Config px_config;

/* Reads and decodes a binary config.pb. Refuses a missing or unreadable file, an empty file,
 * bytes that do not decode as phalanx.Config (truncated, random, a text-format file), fields
 * unknown to this schema and enum values outside their lists. On success *out is a complete
 * config owned by the caller (free with px_config_free). */
px_status px_config_load(const char *path, px_config **out);

/* Decodes a config from memory (same checks as px_config_load; `what` names the source in
 * messages). */
px_status px_config_decode(const unsigned char *data, size_t len, const char *what,
                           px_config **out);

/* A config with every field at its default (the schema's, or the library's where the schema
 * leaves it to a library). */
px_status px_config_default(px_config **out);

/* Sets every field that `cfg` leaves unset and whose default is a library's to that default,
 * marked as set: the aggregator parameters (the fields of phalanx.Aggregator but rule and seed)
 * from px_agg_params_default, copied as typed values. Fields already set are kept.
 * px_config_decode and px_config_default call it; a config built field by field may too. */
px_status px_config_fill_library_defaults(px_config *cfg);

void px_config_free(px_config *cfg);

/* Applies one "section.field=value" override (the trainer's --set). Scalars parse with range
 * checks, enums by name (case-insensitive), bools as true/false/1/0, repeated fields as a comma
 * list (empty clears). */
px_status px_config_set(px_config *cfg, const char *assignment);

/* Checks every rule between fields (ranges, combinations, the aggregator's validity rule for n
 * workers). The first broken rule is reported. */
px_status px_config_validate(const px_config *cfg);

/* Sets the fields other fields decide: in federated mode, cluster.workers = the clients per
 * round (round(clients x sample_fraction), at least 1). The trainer calls it after --set and
 * before px_config_validate. */
void px_config_resolve(px_config *cfg);

/* Prints the effective config in protobuf text format: every field, defaults included. The
 * output encodes back to an equivalent config.pb with protoc --encode=phalanx.Config. */
void px_config_print_text(FILE *out, const px_config *cfg);

/* Prints the start-up table: one row per field, "*" marking values that differ from the
 * default (the one px_config_default holds: the schema's or the library's). */
void px_config_print_table(FILE *out, const px_config *cfg);

/* Text of one scalar field of a section, as --print-config writes it (for metrics and logs).
 * Returns PX_EINVAL if `section.field` does not exist. */
px_status px_config_get_text(const px_config *cfg, const char *path, char *buf, size_t cap);

/* The aggregator parameters of the config: px_agg_params_default, then every field of the
 * aggregator section that the config sets, copied as a typed value through the library's typed
 * setters (so the library's range checks apply: a refusal names aggregator.FIELD and the value),
 * then the seed (aggregator.seed, or run.seed when it is 0). */
px_status px_config_agg_params(const px_config *cfg, px_agg_params *p);

/* The uplink and downlink codecs of the config's compression section (FP32 = identity codec;
 * rotation AUTO resolved: RHT with INT8 only). */
px_status px_config_codecs(const px_config *cfg, px_codec_spec *up, px_codec_spec *down);

/* The fault-injection spec of the config's byzantine section (with the run seed and n). */
px_status px_config_byz_spec(const px_config *cfg, px_byz_spec *s);

/* The registry names of the config's kinds: the lower-case names of model.kind, data.dataset
 * and optimizer.kind ("mlp", "fashion_mnist", "sgd"). The engine looks each up in its registry
 * (runtime/nn/models.c, runtime/dataset.c, runtime/nn/optimizer.c) by this name. */
typedef struct {
    char model[32], dataset[32], optimizer[32];
} px_config_kinds;
void px_config_kind_names(const px_config *cfg, px_config_kinds *k);

/* The model section as the model registry reads it, for data of the given shape (NULL: no data
 * yet, for the config's own checks). */
px_model_spec px_config_model_spec(const px_config *cfg, const px_dataset *data);

/* The optimizer section as the optimizer registry reads it. */
px_optimizer_spec px_config_optimizer_spec(const px_config *cfg);

/* The data section as the dataset registry reads it. */
px_data_source px_config_data_source(const px_config *cfg);

#endif
