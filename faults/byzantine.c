/* byzantine.c - the Byzantine set, the spec's rules, and the worker-side message faults (see
 * byzantine.h). */
#include "byzantine.h"

#include <math.h>
#include <string.h>

#include "base/rng.h"

/* sub-streams of PX_STREAM_BYZANTINE: `a` selects the use, so no two uses share draws */
enum { PX__BYZ_SET = 0x1000000001ull, PX__BYZ_OMIT = 0x1000000002ull };
#define PX__BYZ_WORKER(use, w) (((uint64_t)(use) << 33) ^ (uint64_t)(w))

const char *px_attack_name(px_attack a)
{
    static const char *names[PX_ATTACK_COUNT] = {
        "none",      "sign_flip", "ipm",          "alie",       "gaussian",   "reverse", "mimic",
        "zero",      "nan",       "inf",          "large",      "label_flip", "crash",   "omission",
        "straggler", "corrupt",   "wrong_length", "wrong_step", "garbage",    "optimal_ipm",
        "optimal_alie", "min_max", "min_sum",
    };
    return (a >= 0 && a < PX_ATTACK_COUNT) ? names[a] : "unknown";
}

const char *px_perturbation_name(px_perturbation p)
{
    static const char *names[PX_PERTURB_COUNT] = {"std", "unit", "sign"};
    return (p >= 0 && p < PX_PERTURB_COUNT) ? names[p] : "unknown";
}

int px_attack_is_vector(px_attack a)
{
    return (a >= PX_ATTACK_SIGN_FLIP && a <= PX_ATTACK_LARGE) ||
           (a >= PX_ATTACK_OPTIMAL_IPM && a <= PX_ATTACK_MIN_SUM);
}

int px_attack_needs_rule(px_attack a)
{
    return a == PX_ATTACK_OPTIMAL_IPM || a == PX_ATTACK_OPTIMAL_ALIE;
}

/* the one place the defaults are written besides proto/config.proto, which documents them */
void px_byz_spec_default(px_byz_spec *s, uint32_t n)
{
    memset(s, 0, sizeof *s);
    s->attack = PX_ATTACK_NONE;
    s->omniscient = 1;
    s->n = n;
    s->tau = 10;
    s->sigma = 1;
    s->scale = 10;
    s->omission_prob = 0.5f;
    s->delay_ms = 1000;
    s->corrupt_bytes = 8;
    s->large_value = 1e38f;
    s->perturbation = PX_PERTURB_STD;
    s->search_evals = 20;
    s->search_start = 0;
    s->search_delta = 10;
    s->search_ratio = 0.8f;
    s->seed = 1;
}

px_status px_byz_check(const px_byz_spec *s)
{
    if (s->attack < 0 || s->attack >= PX_ATTACK_COUNT)
        return px_error(PX_EINVAL, "config: byzantine.attack = %d is not an attack", s->attack);
    if (s->n < 1 || s->n > PX_MAX_WORKERS)
        return px_error(PX_EINVAL,
                        "config: byzantine: cluster.workers = %u must be in [1, %u] for fault "
                        "injection",
                        s->n, PX_MAX_WORKERS);
    if (s->count > s->n)
        return px_error(PX_EINVAL,
                        "config: byzantine.count = %u is more than the %u workers "
                        "(cluster.workers)",
                        s->count, s->n);
    if (s->attack != PX_ATTACK_NONE && s->count == 0)
        return px_error(PX_EINVAL,
                        "config: byzantine.attack = %s needs byzantine.count >= 1 "
                        "(it is 0)",
                        px_attack_name(s->attack));
    int adaptive = s->attack >= PX_ATTACK_OPTIMAL_IPM && s->attack <= PX_ATTACK_MIN_SUM;
    if (!s->omniscient && (s->attack == PX_ATTACK_ALIE || s->attack == PX_ATTACK_MIMIC || adaptive))
        return px_error(PX_EINVAL,
                        "config: byzantine.attack = %s needs the honest gradients: "
                        "byzantine.mode must be OMNISCIENT, not LOCAL",
                        px_attack_name(s->attack));
    if (!(s->omission_prob >= 0 && s->omission_prob <= 1))
        return px_error(PX_EINVAL, "config: byzantine.omission_prob = %g must be in [0, 1]",
                        (double)s->omission_prob);
    if (!isfinite(s->tau) || !isfinite(s->scale) || !isfinite(s->alie_z) ||
        !isfinite(s->large_value))
        return px_error(PX_EINVAL, "config: byzantine.tau, scale, alie_z and large_value must "
                                   "be finite (NaN and INF are attacks of their own)");
    if (!(s->sigma >= 0) || !isfinite(s->sigma))
        return px_error(PX_EINVAL, "config: byzantine.sigma = %g must be >= 0", (double)s->sigma);
    if (s->perturbation < 0 || s->perturbation >= PX_PERTURB_COUNT)
        return px_error(PX_EINVAL,
                        "config: byzantine.perturbation = %d is not a direction (STD, UNIT, SIGN)",
                        (int)s->perturbation);
    if (s->search_evals < 1 || s->search_evals > PX_BYZ_MAX_EVALS)
        return px_error(PX_EINVAL, "config: byzantine.search_evals = %u must be in [1, %u]",
                        s->search_evals, PX_BYZ_MAX_EVALS);
    if (!isfinite(s->search_start))
        return px_error(PX_EINVAL, "config: byzantine.search_start = %g must be finite",
                        (double)s->search_start);
    if (!(s->search_delta > 0) || !isfinite(s->search_delta))
        return px_error(PX_EINVAL, "config: byzantine.search_delta = %g must be > 0 and finite",
                        (double)s->search_delta);
    if (!(s->search_ratio > 0 && s->search_ratio < 1))
        return px_error(PX_EINVAL, "config: byzantine.search_ratio = %g must be in (0, 1)",
                        (double)s->search_ratio);
    if (s->attack == PX_ATTACK_CORRUPT && s->corrupt_bytes == 0)
        return px_error(PX_EINVAL, "config: byzantine.corrupt_bytes = 0 must be >= 1");
    if (s->attack == PX_ATTACK_MIMIC && s->mimic_target >= s->n)
        return px_error(PX_EINVAL, "config: byzantine.mimic_target = %u is not a worker (0..%u)",
                        s->mimic_target, s->n - 1);
    if (s->attack == PX_ATTACK_ALIE && s->alie_z == 0 && s->count * 2 >= s->n)
        return px_error(PX_EINVAL,
                        "config: byzantine.attack = ALIE with alie_z = 0 needs fewer "
                        "than half the workers Byzantine to derive z (count = %u, "
                        "n = %u); give byzantine.alie_z",
                        s->count, s->n);
    return PX_OK;
}

static int px__on(const px_byz_spec *s, uint32_t step)
{
    return s->attack != PX_ATTACK_NONE && s->count > 0 && step >= s->start_step;
}

/* The Byzantine set of `step` for a spec with the attack on: the first min(count, n) entries
 * of a seeded partial Fisher-Yates shuffle of 0..n-1, left in perm (PX_MAX_WORKERS entries: n is
 * at most that, px_byz_check says so). Returns how many. */
static uint32_t px__draw(const px_byz_spec *s, uint32_t step, uint32_t *perm)
{
    uint32_t n = s->n < PX_MAX_WORKERS ? s->n : PX_MAX_WORKERS;
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    px_rng r;
    px_rng_init(&r, s->seed, PX_STREAM_BYZANTINE, PX__BYZ_SET, s->rotate ? (uint64_t)step + 1 : 0);
    uint32_t i = 0;
    for (; i < s->count && i < n; i++) {
        uint32_t j = i + (uint32_t)px_rng_below(&r, n - i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return i;
}

void px_byz_members(const px_byz_spec *s, uint32_t step, uint8_t *is_byz)
{
    memset(is_byz, 0, s->n);
    if (!px__on(s, step)) return;
    uint32_t perm[PX_MAX_WORKERS];
    uint32_t k = px__draw(s, step, perm);
    for (uint32_t i = 0; i < k; i++)
        is_byz[perm[i]] = 1;
}

int px_byz_is_member(const px_byz_spec *s, uint32_t worker, uint32_t step)
{
    if (!px__on(s, step) || worker >= s->n) return 0;
    uint32_t perm[PX_MAX_WORKERS];
    uint32_t k = px__draw(s, step, perm);
    for (uint32_t i = 0; i < k; i++)
        if (perm[i] == worker) return 1;
    return 0;
}

void px_byz_flip_labels(uint8_t *y, size_t count, size_t classes)
{
    for (size_t i = 0; i < count; i++)
        y[i] = (uint8_t)(classes - 1 - y[i]);
}

px_byz_send_plan px_byz_plan_send(const px_byz_spec *s, uint32_t worker, uint32_t step)
{
    px_byz_send_plan p = {1, 0.0, 0};
    switch (s->attack) {
    case PX_ATTACK_CRASH:
        p.send = step < s->crash_step;
        break;
    case PX_ATTACK_OMISSION: {
        px_rng r;
        px_rng_init(&r, s->seed, PX_STREAM_BYZANTINE, PX__BYZ_WORKER(PX__BYZ_OMIT, worker), step);
        p.send = px_rng_uniform(&r) >= s->omission_prob;
        break;
    }
    case PX_ATTACK_STRAGGLER:
        p.delay_ms = s->delay_ms;
        break;
    case PX_ATTACK_WRONG_STEP:
        p.step_back = 1; /* a well-formed message of the previous step */
        break;
    default:
        break;
    }
    return p;
}

size_t px_byz_tamper(const px_byz_spec *s, uint32_t worker, uint32_t step, size_t header_bytes,
                     unsigned char *msg, size_t len)
{
    px_rng r;
    px_rng_init(&r, s->seed, PX_STREAM_BYZANTINE, PX__BYZ_WORKER(PX__BYZ_OMIT + 1, worker), step);
    switch (s->attack) {
    case PX_ATTACK_CORRUPT:
        /* xor random positions with a non-zero byte: every chosen byte really changes */
        for (uint32_t k = 0; k < s->corrupt_bytes; k++)
            msg[px_rng_below(&r, len)] ^= (unsigned char)(1 + px_rng_below(&r, 255));
        return len;
    case PX_ATTACK_WRONG_LENGTH:
        /* the header announces the full payload; the message ends early */
        return len > header_bytes + 4 ? len - 4 : len / 2;
    case PX_ATTACK_GARBAGE:
        for (size_t i = 0; i < len; i++)
            msg[i] = (unsigned char)px_rng_u64(&r);
        return len;
    default:
        return len;
    }
}
