/* aggregator.h - the aggregation rules: interface, parameters and registry.
 *
 * An aggregation rule turns n vectors of length d (the workers' gradients of one step) into one
 * vector of length d. Rules are pure computations over memory: no MPI, no files, nothing of
 * Phalanx but runtime/common.h, rng.h and pool.h. Each rule lives in its own file
 * (aggregators/median.c, ...) and is listed once in the registry (aggregators/registry.c).
 *
 * Two levels:
 * - px_agg_rule: one rule as the registry lists it (validity check, create/run/destroy of its
 *   context). Stateful rules keep what they carry between steps in their context, never in
 *   globals.
 * - px_agg: what callers use. It composes the non-finite filter (an input containing NaN or
 *   Inf is dropped before anything else sees it, and counted), the pre-aggregation chain, and
 *   the rule, with every buffer sized once at creation.
 *
 * Specifications: ../shared/ALGORITHMS.md sections 1-3.
 */
#ifndef PX_AGGREGATOR_H
#define PX_AGGREGATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/common.h"
#include "runtime/pool.h"

/* Parameters of every rule, with their defaults set by px_agg_params_default. A rule reads the
 * fields it needs and ignores the others. */
typedef struct {
    uint32_t f;    /* declared number of Byzantine inputs; default 0 */
    uint64_t seed; /* seed of the rule's random choices; default 1 */
} px_agg_params;

void px_agg_params_default(px_agg_params *p);

/* Sets one parameter from text ("f", "4"), as `aggregate --set` and the trainer use it.
 * Unknown keys and malformed values are refused with PX_EINVAL and a message naming them. */
px_status px_agg_params_set(px_agg_params *p, const char *key, const char *value);

/* What one call did, for the metrics. */
typedef struct {
    size_t n_in;        /* vectors handed to px_agg_run */
    size_t n_nonfinite; /* of which dropped for a NaN or Inf value */
    size_t n_used;      /* vectors the rule received after filtering and pre-aggregation */
} px_agg_report;

typedef struct px_agg_rule {
    const char *name;    /* registry name: "mean", "median", ... */
    const char *summary; /* one line for --help */
    /* Validity rule for n inputs with parameters p ("KRUM needs n >= 2f+3"): PX_OK, or
     * PX_EINVAL with a message naming the rule, the requirement and the values. */
    px_status (*check)(const px_agg_params *p, size_t n);
    /* Allocates the rule's context for at most n_max inputs of length d. `layers` may be NULL
     * (then the whole vector is one layer); `pool` may be NULL (run on the caller only). */
    px_status (*create)(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                        const px_layer_table *layers, px_pool *pool);
    /* Aggregates x[0..n) (each d finite floats) into out (d floats). `step` is the training
     * step (for rules with history or per-step randomness). */
    px_status (*run)(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                     uint64_t step);
    void (*destroy)(void *ctx);
} px_agg_rule;

/* Registry: look a rule up by name (NULL if unknown), or walk all of them. */
const px_agg_rule *px_agg_find(const char *name);
size_t px_agg_rule_count(void);
const px_agg_rule *px_agg_rule_at(size_t i);

/* Checks that `rule` exists and that its validity rule holds for n inputs, as the config loader
 * does before a run starts. */
px_status px_agg_validate(const char *rule, const px_agg_params *p, size_t n);

typedef struct px_agg px_agg;

/* Creates the composed aggregator for `rule` (registry name) with at most n_max inputs of length
 * d. Refuses an unknown rule or one whose validity rule fails for n_max. The caller owns the
 * result and frees it with px_agg_destroy; `layers` and `pool` must outlive it. */
px_status px_agg_create(px_agg **out, const char *rule, const px_agg_params *p, size_t n_max,
                        size_t d, const px_layer_table *layers, px_pool *pool);
void px_agg_destroy(px_agg *a);

/* Aggregates rows[0..n) (n <= n_max; each d floats, possibly non-finite) into out. Inputs with
 * a non-finite value are dropped first and counted in `report` (may be NULL). Fails with
 * PX_EINVAL when what remains breaks the rule's validity rule (for example every input was
 * non-finite); `out` is then left unchanged. Allocates nothing. */
px_status px_agg_run(px_agg *a, const float *const *rows, size_t n, uint64_t step, float *out,
                     px_agg_report *report);

#endif
