/* byzantine.h - fault injection: which workers are Byzantine at a step, what they send, and
 * what they do to their messages (ALGORITHMS.md section 4).
 *
 * Everything here is a pure function of the spec, the run seed, the worker and the step, so
 * that every rank agrees on who is Byzantine without talking, and a run with faults is as
 * reproducible as one without. Depends only on the common base.
 *
 * Three places act:
 * - the server, in OMNISCIENT mode: after a step's honest gradients arrived, each Byzantine
 *   slot is replaced by a vector computed from them (px_byz_server_apply);
 * - the worker, for gradient attacks in LOCAL mode (px_byz_local_gradient) and for data
 *   poisoning (px_byz_flip_labels) in either mode;
 * - the worker's message, in either mode: crash, omission, delay, corrupted bytes, a wrong
 *   length or step, garbage (px_byz_plan_send, px_byz_tamper).
 */
#ifndef PX_BYZANTINE_H
#define PX_BYZANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/limits.h"
#include "base/pool.h"
#include "aggregators/aggregator.h"

/* The attacks; the numbers are those of phalanx.Byzantine.Attack in proto/config.proto. */
typedef enum {
    PX_ATTACK_NONE = 0,
    PX_ATTACK_SIGN_FLIP = 1,
    PX_ATTACK_IPM = 2,
    PX_ATTACK_ALIE = 3,
    PX_ATTACK_GAUSSIAN = 4,
    PX_ATTACK_REVERSE = 5,
    PX_ATTACK_MIMIC = 6,
    PX_ATTACK_ZERO = 7,
    PX_ATTACK_NAN = 8,
    PX_ATTACK_INF = 9,
    PX_ATTACK_LARGE = 10,
    PX_ATTACK_LABEL_FLIP = 11,
    PX_ATTACK_CRASH = 12,
    PX_ATTACK_OMISSION = 13,
    PX_ATTACK_STRAGGLER = 14,
    PX_ATTACK_CORRUPT = 15,
    PX_ATTACK_WRONG_LENGTH = 16,
    PX_ATTACK_WRONG_STEP = 17,
    PX_ATTACK_GARBAGE = 18,
    /* the adaptive attacks (ALGORITHMS.md 4.1, adaptive.c): OMNISCIENT only */
    PX_ATTACK_OPTIMAL_IPM = 19,  /* -tau * mean, tau searched against the run's rule */
    PX_ATTACK_OPTIMAL_ALIE = 20, /* mean + tau * std, tau searched against the run's rule */
    PX_ATTACK_MIN_MAX = 21,      /* mean + gamma * p, largest gamma within the honest spread */
    PX_ATTACK_MIN_SUM = 22,      /* the same with the sum of squared distances */
    PX_ATTACK_COUNT
} px_attack;

/* Min-Max and Min-Sum's perturbation direction p (phalanx.Byzantine.Perturbation). */
typedef enum {
    PX_PERTURB_STD = 0,  /* -std per coordinate */
    PX_PERTURB_UNIT = 1, /* -mean / ||mean|| */
    PX_PERTURB_SIGN = 2, /* -sign(mean) */
    PX_PERTURB_COUNT
} px_perturbation;

/* Min-Max and Min-Sum's search for gamma, as in Shejwalkar and Houmansadr's code: start and
 * first step, and the stopping gap between the last feasible gamma and the next proposal. */
#define PX_MINMAX_GAMMA0 10.0
#define PX_MINMAX_TOL    1e-5

/* Most evaluations of the rule one step's line search may make (byzantine.search_evals): each
 * is an aggregation (n x n in the Gram form, a pass over n x d otherwise). */
#define PX_BYZ_MAX_EVALS 1000u

typedef struct {
    px_attack attack;
    int omniscient; /* 1: gradient attacks at the server; 0: at the worker */
    uint32_t n;     /* workers, at most PX_MAX_WORKERS (base/limits.h) */
    uint32_t count; /* Byzantine workers */
    int rotate;     /* redraw the set every step */
    uint32_t start_step;
    float tau, alie_z, sigma, scale, omission_prob, large_value;
    uint32_t mimic_target, crash_step, delay_ms, corrupt_bytes;
    int mimic_farthest; /* MIMIC: copy, each step, the honest worker farthest from the mean */
    px_perturbation perturbation; /* MIN_MAX, MIN_SUM */
    /* OPTIMAL_IPM, OPTIMAL_ALIE: the line search over the factor (evaluations of the rule in
     * all, D(start) included; start; first step; shrink ratio in (0, 1)) */
    uint32_t search_evals;
    float search_start, search_delta, search_ratio;
    uint64_t seed;
} px_byz_spec;

/* Lower-case name of an attack ("sign_flip"), or "unknown". */
const char *px_attack_name(px_attack a);

/* 1 if the attack replaces or rewrites the gradient vector (sign flip .. large, and the
 * adaptive attacks). */
int px_attack_is_vector(px_attack a);

/* 1 for the attacks that evaluate the run's aggregation rule (OPTIMAL_IPM, OPTIMAL_ALIE): the
 * server side then needs px_byz_server_bind_rule. */
int px_attack_needs_rule(px_attack a);

/* Lower-case name of a perturbation direction ("std"), or "unknown". */
const char *px_perturbation_name(px_perturbation p);

/* Fills *s with the defaults of every parameter (the values proto/config.proto documents), no
 * attack, and n workers. For callers that build a spec by hand (tests, benchmarks). */
void px_byz_spec_default(px_byz_spec *s, uint32_t n);

/* Checks the spec's rules (1 <= n <= PX_MAX_WORKERS, count <= n, LOCAL mode only with attacks a
 * worker can compute alone, parameter ranges). PX_EINVAL with a message naming the field. The
 * functions below expect a spec that passes. */
px_status px_byz_check(const px_byz_spec *s);

/* 1 if worker w is Byzantine and the attack is on at `step`. The set has s->count members,
 * drawn from the run seed once (or per step when rotating). Allocates nothing. */
int px_byz_is_member(const px_byz_spec *s, uint32_t worker, uint32_t step);

/* Fills is_byz[0..n) for `step` (all zero when the attack is off or count is 0). */
void px_byz_members(const px_byz_spec *s, uint32_t step, uint8_t *is_byz);

/* Phi^-1(p) for p in (0, 1): the standard normal quantile (Acklam's rational approximation
 * refined by one Halley step; relative error below 1e-13). */
double px_normal_quantile(double p);

/* ALIE's z for n workers of which `count` are Byzantine (Baruch et al. 2019):
 * s = floor(n/2 + 1) - count, z = Phi^-1((n - count - s) / (n - count)). */
double px_alie_z(uint32_t n, uint32_t count);

/* ---- the server side (OMNISCIENT) ---- */

/* What the adaptive attack of the last step chose, for the metrics and the tests. */
typedef struct {
    double factor;   /* OPTIMAL_*: tau; MIN_MAX, MIN_SUM: gamma; NAN for the others */
    double distance; /* OPTIMAL_*: D(tau) = ||rule(inputs) - mean(honest)|| at the chosen tau */
    uint32_t target; /* MIMIC: the worker copied */
    uint32_t evals;  /* evaluations of the rule (OPTIMAL_*) or of the bound (MIN_*) */
    int gram;        /* OPTIMAL_*: 1 if the rule was evaluated in the Gram form (n x n only) */
} px_byz_choice;

typedef struct px_byz_adaptive px_byz_adaptive; /* adaptive.c's buffers */

typedef struct {
    px_byz_spec spec;
    size_t d;
    float *mean, *std; /* d values each: statistics of the honest gradients */
    uint8_t *is_byz;   /* n flags: Byzantine at the current step */
    uint8_t *honest;   /* n flags: an honest gradient of the current step arrived */
    px_pool *pool;
    px_byz_adaptive *adaptive; /* NULL unless the attack is adaptive or MIMIC farthest */
    px_byz_choice last;
} px_byz_server;

/* Sizes every buffer of the server side for the spec's n workers and d values (n_rows: the
 * rows a step hands px_byz_server_apply_rows at most; the spec's n for distributed runs).
 * Refuses a spec that px_byz_check refuses (leaving *b zeroed); px_byz_server_free releases
 * what it holds. */
px_status px_byz_server_create(px_byz_server *b, const px_byz_spec *s, size_t d, size_t n_rows,
                               px_pool *pool);
void px_byz_server_free(px_byz_server *b);

/* For the attacks that search against the run's rule (px_attack_needs_rule; a no-op for the
 * others): creates the server side's own copy of the rule `rule` with parameters p and the
 * pre-aggregation chain they list, for up to n_max inputs of length d (the layer table as the
 * run's), on which candidate attacks are evaluated. `live` (may be NULL) is the run's own
 * aggregator: before each evaluation its carried state (FA's warm start, centered clipping's
 * centre, FedLD's history) is copied into the copy, so the attacker sees the rule exactly as the
 * step will run it, and the run's aggregator itself is never touched. `layers` and `live` must
 * outlive b. */
px_status px_byz_server_bind_rule(px_byz_server *b, const char *rule, const px_agg_params *p,
                                  size_t n_max, const px_layer_table *layers, const px_agg *live);

/* Replaces the Byzantine rows of `step`: rows[w] (d floats each, w < n) for each Byzantine w
 * becomes the attack vector computed from the honest rows that arrived (have[w] = 1, not
 * Byzantine); have[w] is set for every row written. REVERSE uses the Byzantine worker's own
 * gradient and is skipped when it did not arrive. Returns the number of rows replaced. Only
 * gradient attacks act here; the others are the workers'. */
size_t px_byz_server_apply(px_byz_server *b, uint32_t step, float *rows, uint8_t *have);

/* The same for rows whose membership the caller wrote into b->is_byz[0..n) (n <= the spec's
 * n): a federated round's slots, each Byzantine if the client it plays is. */
size_t px_byz_server_apply_rows(px_byz_server *b, uint32_t step, float *rows, uint8_t *have,
                                size_t n);

/* ---- the worker side ---- */

/* LOCAL mode: rewrites worker w's own gradient g (d floats) for a gradient attack. SIGN_FLIP
 * and IPM use the worker's own gradient in place of the honest mean. */
void px_byz_local_gradient(const px_byz_spec *s, uint32_t worker, uint32_t step, float *g,
                           size_t d);

/* LABEL_FLIP: y -> classes - 1 - y. */
void px_byz_flip_labels(uint8_t *y, size_t count, size_t classes);

typedef struct {
    int send;        /* 0: the worker sends nothing this step (crash, omission) */
    double delay_ms; /* wait before sending (straggler) */
    uint32_t step_back; /* WRONG_STEP: seal the message as this many steps older (1) */
} px_byz_send_plan;

/* What Byzantine worker w does with its message at `step`. */
px_byz_send_plan px_byz_plan_send(const px_byz_spec *s, uint32_t worker, uint32_t step);

/* Tampers with the bytes of a sealed message of `len` bytes whose header takes header_bytes
 * (CORRUPT, WRONG_LENGTH, GARBAGE) and returns the number of bytes to send. Other attacks return
 * len untouched (WRONG_STEP acts through the plan: the sender seals another step). The wire
 * format is not read here: faults/ works on bytes, comm/ owns the format. */
size_t px_byz_tamper(const px_byz_spec *s, uint32_t worker, uint32_t step, size_t header_bytes,
                     unsigned char *msg, size_t len);

#endif
