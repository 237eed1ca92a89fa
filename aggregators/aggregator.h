/* aggregator.h - the aggregation rules: interface, parameters and registry.
 *
 * An aggregation rule turns n vectors of length d (the workers' gradients of one step) into one
 * vector of length d. Rules are pure computations over memory: no MPI, no files, nothing of
 * Phalanx but base/ (common.h, rng.h, pool.h). Each rule lives in its own file
 * (aggregators/median.c, ...) and is listed once in the registry (aggregators/registry.c).
 *
 * Two levels:
 * - px_agg_rule: one rule as the registry lists it (validity check, create/run/destroy of its
 *   context). Stateful rules keep what they carry between steps in their context, never in
 *   globals, and save and load it through the rule's state ops (px_agg_state_save).
 * - px_agg: what callers use. It composes the non-finite filter (an input containing NaN or
 *   Inf is dropped before anything else sees it, and counted), the pre-aggregation chain
 *   (static clipping, NNM, bucketing, in the order px_agg_params.pre lists them), and the rule,
 *   with every buffer sized once at creation.
 *
 * Specifications: ../shared/ALGORITHMS.md sections 1-3.
 */
#ifndef PX_AGGREGATOR_H
#define PX_AGGREGATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/pool.h"

#define PX_AGG_MAX_PRE    8    /* steps in one pre-aggregation chain */
#define PX_AGG_MAX_LAYERS 1024 /* layer sizes settable through the "layers" key */
/* Most iterations a rule may be asked for per step (keys iters, geomed_iters, cclip_iters):
 * each costs a pass over n x n (FA's IRLS, geomed's Weiszfeld steps) or n x d (cclip's rounds)
 * values, and the useful counts are a few to a few hundred; 2^32 - 1 would hang the run. */
#define PX_AGG_MAX_ITERS 1000u

/* Pre-aggregation steps (ALGORITHMS.md section 3, last row). */
typedef enum {
    PX_AGG_PRE_CLIP = 1,      /* static norm clipping to clip_norm */
    PX_AGG_PRE_NNM = 2,       /* nearest-neighbour mixing: mean of the n-f nearest inputs */
    PX_AGG_PRE_BUCKETING = 3, /* means of random groups of bucket_size inputs */
} px_agg_pre_kind;

/* Flag Aggregator start subspace. */
typedef enum {
    PX_AGG_INIT_PCA = 0,    /* top-m eigenvectors of X^T X: deterministic, no extra pass */
    PX_AGG_INIT_RANDOM = 1, /* seeded random orthonormal Y0, the same at every step */
} px_agg_init;

/* Parameters of every rule and pre-aggregation step. px_agg_params_default is the single
 * source of the defaults and the table of keys in registry.c the single source of the accepted
 * ranges; everything else (the config's aggregator section, --help, the aggregate tool) derives
 * from those two. A rule reads the fields it needs and ignores the others. The key of each field
 * is the name in its comment. */
typedef struct {
    uint32_t f;    /* "f": declared number of Byzantine inputs */
    uint64_t seed; /* "seed": seed of random choices (FA random init, bucketing) */
    /* Flag Aggregator */
    uint32_t m;       /* "m": subspace dimension, 0 = ceil(n/2); clamped to n */
    uint32_t iters;   /* "iters": IRLS iterations T */
    double lambda;    /* "lambda": pairwise regulariser */
    px_agg_init init; /* "init": pca | random */
    bool warm_start;  /* "warm_start": start from the previous step's subspace */
    bool rescale;     /* "rescale": multiply by the median input norm */
    /* Multi-Krum */
    uint32_t q; /* "q": inputs averaged, 0 = n - f; clamped to n */
    /* geometric median (smoothed Weiszfeld) */
    double geomed_nu;      /* "geomed_nu": smoothing distance */
    uint32_t geomed_iters; /* "geomed_iters": iteration cap */
    double geomed_tol;     /* "geomed_tol": stop when the objective improves by less than this
                              fraction */
    /* centered clipping */
    double tau;           /* "tau": clipping radius */
    uint32_t cclip_iters; /* "cclip_iters": clipping rounds L per step */
    /* FedLD principal-gradient aggregation */
    double kappa;       /* "kappa": fraction of principal directions kept (k >= 1) */
    bool fedld_history; /* "fedld_history": start as if every layer had history (no first-round
                           mean) */
    /* pre-aggregation chain */
    uint32_t n_pre;              /* "pre": comma-separated chain (clip,nnm,bucketing); */
    uint8_t pre[PX_AGG_MAX_PRE]; /* px_agg_pre_kind values in order */
    double clip_norm;            /* "clip_norm": static clipping threshold */
    uint32_t bucket_size;        /* "bucket_size": bucketing group size s */
    /* layer sizes ("layers": comma-separated), used when px_agg_create gets no layer table */
    uint32_t n_layers;                       /* 0: one layer */
    uint64_t layer_sizes[PX_AGG_MAX_LAYERS]; /* in floats; must add up to d */
} px_agg_params;

/* Sets every parameter to its default (zeroing the rest of *p, padding included, so that two
 * parameter sets compare equal with memcmp when their values do). The one place where a default
 * is written: `aggregate --help`, `trainer --help`, the trainer's config and --print-config read
 * them from here. */
void px_agg_params_default(px_agg_params *p);

/* The kind of value a key takes. */
typedef enum {
    PX_AGG_PARAM_UINT, /* an unsigned integer (a uint32_t or uint64_t field), within its range */
    PX_AGG_PARAM_REAL, /* a finite double within its range */
    PX_AGG_PARAM_BOOL, /* true or false (0 or 1 as text) */
    PX_AGG_PARAM_TEXT, /* set from text only: init (pca, random), pre and layers (lists) */
} px_agg_param_type;

/* One settable key, for --help, documentation and typed access: its name, its kind, the rules
 * or steps that read it, and one line of help. Its default is px_agg_params_default's (text:
 * px_agg_params_get_text), its range px_agg_param_range's. */
typedef struct {
    const char *key;
    px_agg_param_type type;
    const char *used_by;
    const char *help;
} px_agg_param_info;

size_t px_agg_param_count(void);
const px_agg_param_info *px_agg_param_at(size_t i);

/* The key named `key`, or NULL. */
const px_agg_param_info *px_agg_param_find(const char *key);

/* Writes the values key k (from px_agg_param_at or px_agg_param_find) accepts beyond those of its
 * type, as --help shows them ("> 0", "in (0, 1]", ">= 1"), into buf (always terminated); "" when
 * any value of the type is accepted. Returns buf. */
const char *px_agg_param_range(const px_agg_param_info *k, char *buf, size_t cap);

/* Typed setters: set key to a value of its kind, checked against the key's range. A key of
 * another kind, an unknown key or a value out of range is refused with PX_EINVAL and a message
 * naming the key, the range and the value ("aggregator parameter tau: expected a number > 0, got
 * -1"); *p is then unchanged. The config's aggregator section goes through these. */
px_status px_agg_params_set_uint(px_agg_params *p, const char *key, uint64_t value);
px_status px_agg_params_set_real(px_agg_params *p, const char *key, double value);
px_status px_agg_params_set_bool(px_agg_params *p, const char *key, bool value);

/* Sets one parameter of any kind from text ("f", "4"), as `aggregate --set` uses it: the text is
 * parsed by the key's kind, then goes through the typed setter (so the ranges are the same).
 * Unknown keys and malformed or out-of-range values are refused with PX_EINVAL and a message
 * naming the key, the accepted range and the value; *p is then unchanged. */
px_status px_agg_params_set(px_agg_params *p, const char *key, const char *value);

/* Typed getters: the value of key in p. PX_EINVAL for an unknown key or one of another kind. */
px_status px_agg_params_get_uint(const px_agg_params *p, const char *key, uint64_t *value);
px_status px_agg_params_get_real(const px_agg_params *p, const char *key, double *value);
px_status px_agg_params_get_bool(const px_agg_params *p, const char *key, bool *value);

/* The value of key in p as text that px_agg_params_set reads back to the same value: "4",
 * "1e-07" (the shortest exact form), "1" for true, "pca", "clip,nnm", "" for an empty list.
 * PX_EINVAL for an unknown key or a buffer too small (buf then holds ""). */
px_status px_agg_params_get_text(const px_agg_params *p, const char *key, char *buf, size_t cap);

/* The pre-aggregation steps by name ("clip", "nnm", "bucketing"), for --help. */
size_t px_agg_pre_count(void);
const char *px_agg_pre_name(size_t i);
const char *px_agg_pre_summary(size_t i);

/* What one call did, for the metrics. */
typedef struct {
    size_t n_in;        /* vectors handed to px_agg_run */
    size_t n_nonfinite; /* of which dropped for a NaN or Inf value */
    size_t n_used;      /* vectors the rule received after filtering and pre-aggregation */
} px_agg_report;

typedef struct px_agg_rule {
    const char *name;    /* registry name: "mean", "median", ... */
    const char *summary; /* one line for --help */
    /* The output's coordinate k depends only on the inputs' coordinate k (median, trimmed mean,
     * MeaMed): a server sharded by coordinate runs the rule on its slice as it is. */
    bool coordinatewise;
    /* Validity rule for n inputs with parameters p ("KRUM needs n >= 2f+3"): PX_OK, or
     * PX_EINVAL with a message naming the rule, the requirement and the values. */
    px_status (*check)(const px_agg_params *p, size_t n);
    /* Allocates the rule's context for at most n_max inputs of length d. `layers` is never
     * NULL here: px_agg_create passes a one-layer table when the caller gave none. `pool` may
     * be NULL (run on the caller only). */
    px_status (*create)(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                        const px_layer_table *layers, px_pool *pool);
    /* Aggregates x[0..n) (each d finite floats) into out (d floats). `step` is the training
     * step (for rules with history or per-step randomness). */
    px_status (*run)(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                     uint64_t step);
    void (*destroy)(void *ctx);
    /* Optional: run on inputs that have NOT been screened for NaN and Inf. The rule notices a
     * non-finite input in its first pass (a non-finite Gram diagonal, a flag raised while
     * loading) and then returns PX_AGG_NONFINITE before writing `out` or changing its state;
     * px_agg_run then filters and calls `run`. This saves px_agg_run's separate scan (a full
     * read of the inputs) in the common case where every input is finite. */
    px_status (*run_screened)(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              uint64_t step);
    /* Optional: for a rule whose output is a weighted sum of its inputs with weights that
     * depend on the inputs only through their Gram matrix K (n x n, double, row-major; NULL for
     * rules that do not read it), the weights: w gets n doubles and the result is PX_OK, or
     * PX_ENOTSUP when the current parameters need more than K (px_agg then builds the vectors
     * and calls run). px_agg uses it behind a pre-aggregation chain, which it plans on n x n
     * matrices too: the chain and the rule then read the inputs twice in all, once for their
     * Gram matrix and once for the output. */
    px_status (*run_gram)(void *ctx, const double *K, size_t n, double *w, uint64_t step);
    /* Optional, for rules whose computation uses f: changes the f of the next calls. px_agg
     * uses it when it dropped k non-finite inputs: those senders are certainly faulty, so at
     * most f - k faulty inputs remain among the others, and the rule runs with f - k. */
    void (*set_f)(void *ctx, uint32_t f);
    /* Optional, all three or none: for a rule that carries something from one call of run to
     * the next (FA's warm-start subspace, FedLD's history flags, centered clipping's centre),
     * the bytes of that state, without the header px_agg adds (see px_agg_state_save).
     * state_bytes: how many bytes state_save writes now (it may change after a run).
     * state_save: writes them to out, little-endian, byte by byte.
     * state_load: checks everything in in[0..len) against the context (its own dimensions,
     * finiteness where the rule needs it) and only then replaces the state; PX_EINVAL with a
     * message that starts with the rule's name otherwise, the state unchanged. Neither
     * allocates. NULL for rules whose output depends only on the call's inputs and step. */
    size_t (*state_bytes)(const void *ctx);
    void (*state_save)(const void *ctx, unsigned char *out);
    px_status (*state_load)(void *ctx, const unsigned char *in, size_t len);
} px_agg_rule;

/* What run_screened returns when it met a non-finite input (positive: not an error). */
#define PX_AGG_NONFINITE 1

/* Registry: look a rule up by name (NULL if unknown), or walk all of them. */
const px_agg_rule *px_agg_find(const char *name);
size_t px_agg_rule_count(void);
const px_agg_rule *px_agg_rule_at(size_t i);

/* Checks that `rule` exists, that every parameter of p is within its key's range (for
 * parameters written field by field), that the pre-aggregation chain of p accepts n inputs, and
 * that the rule's validity rule holds for the number of vectors the chain hands it (n, or ceil(n/s)
 * after bucketing), as the config loader does before a run starts. */
px_status px_agg_validate(const char *rule, const px_agg_params *p, size_t n);

typedef struct px_agg px_agg;

/* Creates the composed aggregator for `rule` (registry name) with at most n_max inputs of length
 * d, with the pre-aggregation chain p->pre. Refuses an unknown rule, a chain or rule whose
 * validity rule fails for n_max, or a layer table that does not tile [0, d) in order. `layers`
 * may be NULL: then p->layer_sizes is used if set, else the whole vector is one layer. The
 * caller owns the result and frees it with px_agg_destroy; `layers` and `pool` must outlive
 * it. */
px_status px_agg_create(px_agg **out, const char *rule, const px_agg_params *p, size_t n_max,
                        size_t d, const px_layer_table *layers, px_pool *pool);
void px_agg_destroy(px_agg *a);

/* Aggregates rows[0..n) (n <= n_max; each d floats, possibly non-finite) into out. Inputs with
 * a non-finite value are dropped first and counted in `report` (may be NULL). Fails with
 * PX_EINVAL when what remains breaks the chain's or the rule's validity rule (for example every
 * input was non-finite); `out` is then left unchanged. Allocates nothing. */
px_status px_agg_run(px_agg *a, const float *const *rows, size_t n, uint64_t step, float *out,
                     px_agg_report *report);

/* The aggregate of n inputs known only through their Gram matrix K (n x n, double, row-major,
 * both triangles), as weights: w (n doubles) such that px_agg_run on vectors with that Gram
 * matrix would give sum_i w_i x_i (up to the float rounding of its own Gram pass). Works when
 * the rule has a Gram form (run_gram) and the chain is planned on n x n matrices, which every
 * pre-aggregation step is; PX_ENOTSUP otherwise (a coordinate-wise rule, FA with a warm or
 * random start, a non-finite diagonal), and the caller then builds the vectors and calls
 * px_agg_run. PX_EINVAL when the chain's or the rule's validity rule fails for n. Costs
 * O(n^3), never a pass over d: what lets an adaptive attack (faults/) evaluate the run's rule
 * on many candidate inputs per step. May change the rule's carried state like px_agg_run;
 * callers that must not disturb a run use their own aggregator. Allocates nothing. */
px_status px_agg_weights_gram(px_agg *a, const double *K, size_t n, uint64_t step, double *w);

/* ---- a server sharded by coordinate (DESIGN.md "Scale-out") ------------------------------ *
 *
 * S shards each hold one contiguous slice of every input and create their own px_agg_shard for
 * it (d = the slice's length). One step:
 *   1. every shard: px_agg_shard_partial(rows of its slice) -> partial (px_agg_shard_partial_len
 *      doubles): a non-finite flag per input and, when the chain or the rule reads it, the
 *      slice's partial Gram matrix;
 *   2. the caller sums the S partials element by element IN SHARD ORDER and gives every shard
 *      the same sum, bit for bit (gather them all and add them in order: an MPI_Allreduce may
 *      round differently on different ranks);
 *   3. every shard: px_agg_shard_finish(rows, sum) -> its slice of the aggregate.
 * Because every decision (which inputs are dropped as non-finite, the chain's plan, Krum's
 * choice, FA's or geomed's weights) is taken from the summed partials alone, it is the same on
 * every shard, and it is the decision of px_agg_run on the whole vectors up to the summation
 * order of the Gram matrix. Shardable: the rules with a Gram form (mean, krum, multi_krum,
 * geomed, flag with the pca start and no warm start) and the coordinate-wise rules (median,
 * trimmed_mean, meamed), behind any pre-aggregation chain. Not (yet): bulyan (its coordinate
 * stage runs on Krum's choice of whole vectors), cclip (its centre is a vector of its own),
 * fedld (one Gram matrix per layer), flag with a warm or random start. */
typedef struct px_agg_shard px_agg_shard;

/* PX_OK if `rule` with parameters p can run sharded, else PX_ENOTSUP with a message naming the
 * rule and the reason (for the config check). */
px_status px_agg_shard_check(const char *rule, const px_agg_params *p);

/* A shard's aggregator for at most n_max inputs of a slice of d values (as px_agg_create, with
 * one layer). */
px_status px_agg_shard_create(px_agg_shard **out, const char *rule, const px_agg_params *p,
                              size_t n_max, size_t d, px_pool *pool);
void px_agg_shard_destroy(px_agg_shard *s);

/* Doubles of the partial for n inputs: n, or n + n * n when the Gram matrix is needed. */
size_t px_agg_shard_partial_len(const px_agg_shard *s, size_t n);

/* Step 1: this shard's partial for rows[0..n) (its slices, d floats each) into partial. */
px_status px_agg_shard_partial(px_agg_shard *s, const float *const *rows, size_t n,
                               double *partial);

/* PX_OK with the rule (median, trimmed_mean, meamed: a px_cw_rule of coord_math.h) and its f
 * when this shard's rule is coordinate-wise without a chain: its output is then px_cw_coordinate
 * of every coordinate of the kept inputs, which a device may compute; PX_ENOTSUP otherwise. */
px_status px_agg_shard_coordwise(const px_agg_shard *s, int *rule, size_t *f);

/* Whether this rule's partial holds a Gram matrix (the chain or the rule reads it). */
int px_agg_shard_needs_gram(const px_agg_shard *s);

/* Step 1 with the Gram matrix G of rows[0..n) (n x n, double, both triangles) formed elsewhere
 * (on a GPU: runtime/server_device.c): the partial px_agg_shard_partial would write, from G.
 * Without a Gram matrix in the partial, G is not read. */
px_status px_agg_shard_partial_gram(px_agg_shard *s, const float *const *rows, size_t n,
                                    const double *G, double *partial);

/* Step 3: this shard's slice of the aggregate into out (d floats), from the same rows and the
 * sum of every shard's partial. w (may be NULL) gets n weights when the rule is a weighted sum
 * of its inputs (0 for a dropped input), else NaNs. The errors and the non-finite handling are
 * px_agg_run's: an input non-finite in any slice is dropped on every shard, and f shrinks by
 * the number dropped. Changes the rule's state as px_agg_run would. */
px_status px_agg_shard_finish(px_agg_shard *s, const float *const *rows, size_t n, uint64_t step,
                              const double *sum, float *out, double *w, px_agg_report *report);

/* ---- state across steps (for checkpoints) ------------------------------------------------ *
 *
 * A resumed run continues the same trajectory only if every aggregator starts where it stopped.
 * What an aggregator carries between calls of px_agg_run is its rule's state: FA with
 * warm_start (the previous step's subspace), FedLD (one history flag per layer), centered
 * clipping (the previous aggregate, its centre). Nothing else carries over: the non-finite
 * filter, the pre-aggregation chain (bucketing draws from (seed, step)) and every other rule
 * are functions of the call's inputs and step, and their state is empty.
 *
 * Saved state = a 48-byte header and the rule's payload. Every field is little-endian and
 * written byte by byte, so the bytes do not depend on struct layout or host order:
 *
 *   offset size field
 *        0    4 magic          "PXAS"
 *        4    4 version        PX_AGG_STATE_VERSION
 *        8   16 rule           registry name, padded with zero bytes
 *       24    8 d              vector length the aggregator was created for
 *       32    8 n_max          inputs it was created for
 *       40    8 payload_bytes  bytes that follow (the rule's own layout, which repeats the
 *                              dimensions it depends on: FA's subspace size, FedLD's layers)
 *
 * The bytes carry no checksum of their own: the container (a checkpoint section) has one. */
#define PX_AGG_STATE_MAGIC        0x53415850u /* bytes 'P','X','A','S' */
#define PX_AGG_STATE_VERSION      1u
#define PX_AGG_STATE_HEADER_BYTES 48u
#define PX_AGG_STATE_NAME_BYTES   16u

/* Bytes px_agg_state_save writes now: the header plus the rule's payload. It can change after
 * px_agg_run or px_agg_state_load (FA's subspace can lose columns), so ask right before saving;
 * for a rule without state it is PX_AGG_STATE_HEADER_BYTES. */
size_t px_agg_state_bytes(const px_agg *a);

/* Writes the state (layout above) to out[0..px_agg_state_bytes(a)). PX_EINVAL when cap is
 * smaller, out then untouched. Reads the aggregator only; allocates nothing. */
px_status px_agg_state_save(const px_agg *a, unsigned char *out, size_t cap);

/* Replaces a's state with the one saved in in[0..len), so that the next px_agg_run gives what
 * the saved aggregator's next run would have given, bit for bit (same inputs, same step). The
 * bytes must come from px_agg_state_save of an aggregator with the same rule, d and n_max (and
 * the rule's own dimensions: FA's subspace size and warm_start, FedLD's layer table); anything
 * else is refused with PX_EINVAL and a message that names what differs and both values: a
 * wrong magic or version, another rule or size, a buffer shorter or longer than the header
 * says, a rule payload that does not fit this aggregator, or values the rule cannot take
 * (a NaN or Inf in FA's subspace or the clipping centre, a history flag other than 0 or 1).
 * A refused load leaves a unchanged. Allocates nothing; does not keep `in`. */
px_status px_agg_state_load(px_agg *a, const unsigned char *in, size_t len);

#endif
