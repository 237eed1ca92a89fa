/* adaptive.c - the attacks that adapt to the rule and to the honest spread (ALGORITHMS.md 4.1):
 * optimal IPM and optimal ALIE (a line search over the attack factor against the run's own rule
 * and pre-aggregation chain), Min-Max and Min-Sum (Shejwalkar and Houmansadr, NDSS 2021), and
 * MIMIC's farthest-worker choice (Karimireddy et al. 2022).
 *
 * Everything is computed in the Gram form where it can be: the candidate inputs of a step are
 * linear combinations of a few basis vectors (the honest gradients, and the honest deviation or
 * the perturbation direction), so one pass over d gives the basis's Gram matrix G (double) and
 * every distance the attacks need is a quadratic form in G. For a rule with a Gram form (mean,
 * Krum, Multi-Krum, geometric median, FA with the PCA start, behind any pre-aggregation chain)
 * px_agg_weights_gram then evaluates the rule on n x n numbers, so the line search's 20
 * evaluations cost no pass over d at all. Coordinate-wise and stateful rules get the vectors:
 * the candidate is written once into one buffer that every Byzantine input points at, and the
 * rule runs on its own copy of the run's aggregator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PX__GRAM_PIECES 32   /* most pieces of d in the Gram pass (fixed by d, not by threads) */
#define PX__GRAM_BLOCK  256  /* columns per block inside a piece (the r rows stay in cache) */
#define PX__MINMAX_CAP  200  /* iterations of the gamma search at most (it needs about 25) */

struct px_byz_adaptive {
    size_t n_rows, r_max, pieces;
    const float **basis; /* r_max: the honest rows, then the extra vector */
    double *G;           /* r_max x r_max: the basis's Gram matrix */
    double *part;        /* pieces x r_max x r_max: per-piece sums, added in piece order */
    float *dir;          /* d: MIN_*'s direction p */
    float *cand;         /* d: OPTIMAL_*'s candidate vector (evaluation on vectors) */
    float *out;          /* d: the rule's output on the candidate inputs */
    const float **inputs; /* n_rows: what the rule receives, in worker order */
    double *C, *T, *K, *w, *c; /* n_rows x r_max, n_rows x r_max, n_rows^2, n_rows, r_max */
    size_t *order;       /* n_rows: input position -> worker */
    size_t *hidx;        /* n_rows: worker -> its basis index (honest workers) */
    px_agg *shadow;      /* the run's rule and chain, for the candidates */
    const px_agg *live;  /* the run's aggregator (its state is copied into shadow) */
    unsigned char *state;
    size_t state_cap;
};

int px__byz_is_adaptive(const px_byz_spec *s)
{
    return (s->attack >= PX_ATTACK_OPTIMAL_IPM && s->attack <= PX_ATTACK_MIN_SUM) ||
           (s->attack == PX_ATTACK_MIMIC && s->mimic_farthest);
}

px_status px__byz_adaptive_create(px_byz_server *b, size_t n_rows)
{
    px_byz_adaptive *a = calloc(1, sizeof *a);
    if (!a) return px_error(PX_ENOMEM, "fault injection: cannot allocate");
    b->adaptive = a;
    size_t d = b->d, r = n_rows + 1;
    a->n_rows = n_rows;
    a->r_max = r;
    a->pieces = (d + 2047) / 2048;
    if (a->pieces > PX__GRAM_PIECES) a->pieces = PX__GRAM_PIECES;
    if (a->pieces == 0) a->pieces = 1;
    a->basis = calloc(r, sizeof *a->basis);
    a->G = calloc(r * r, sizeof *a->G);
    a->part = calloc(a->pieces * r * r, sizeof *a->part);
    a->inputs = calloc(n_rows, sizeof *a->inputs);
    a->C = calloc(n_rows * r, sizeof *a->C);
    a->T = calloc(n_rows * r, sizeof *a->T);
    a->K = calloc(n_rows * n_rows, sizeof *a->K);
    a->w = calloc(n_rows, sizeof *a->w);
    a->c = calloc(r, sizeof *a->c);
    a->order = calloc(n_rows, sizeof *a->order);
    a->hidx = calloc(n_rows, sizeof *a->hidx);
    px_attack k = b->spec.attack;
    int optimal = px_attack_needs_rule(k);
    if (k == PX_ATTACK_MIN_MAX || k == PX_ATTACK_MIN_SUM) /* (needs_dir below) */
        a->dir = px_alloc(d * sizeof(float), "the attack's direction");
    if (optimal) {
        a->cand = px_alloc(d * sizeof(float), "the attack's candidate vector");
        a->out = px_alloc(d * sizeof(float), "the rule's output on the candidates");
    }
    int needs_dir = k == PX_ATTACK_MIN_MAX || k == PX_ATTACK_MIN_SUM;
    if (!a->basis || !a->G || !a->part || !a->inputs || !a->C || !a->T || !a->K || !a->w ||
        !a->c || !a->order || !a->hidx || (needs_dir && !a->dir) ||
        (optimal && (!a->cand || !a->out)))
        return px_error(PX_ENOMEM, "fault injection: cannot allocate the adaptive attack");
    return PX_OK;
}

void px__byz_adaptive_free(px_byz_server *b)
{
    px_byz_adaptive *a = b->adaptive;
    if (!a) return;
    px_agg_destroy(a->shadow);
    free(a->basis);
    free(a->G);
    free(a->part);
    px_free(a->dir);
    px_free(a->cand);
    px_free(a->out);
    free(a->inputs);
    free(a->C);
    free(a->T);
    free(a->K);
    free(a->w);
    free(a->c);
    free(a->order);
    free(a->hidx);
    free(a->state);
    free(a);
    b->adaptive = NULL;
}

px_status px_byz_server_bind_rule(px_byz_server *b, const char *rule, const px_agg_params *p,
                                  size_t n_max, const px_layer_table *layers, const px_agg *live)
{
    if (!px_attack_needs_rule(b->spec.attack) || !b->adaptive) return PX_OK;
    px_byz_adaptive *a = b->adaptive;
    if (n_max > a->n_rows)
        return px_error(PX_EINVAL, "fault injection: a rule for %zu inputs, the attack has %zu rows",
                        n_max, a->n_rows);
    px_agg_destroy(a->shadow);
    a->shadow = NULL;
    px_status st = px_agg_create(&a->shadow, rule, p, n_max, b->d, layers, b->pool);
    if (st < 0) return px_error_context(st, "byzantine.attack = %s: the attacker's copy of the rule",
                                        px_attack_name(b->spec.attack));
    a->live = live;
    return PX_OK;
}

/* ---- the Gram matrix of the basis: one pass over d ---------------------------------------- */

typedef struct {
    px_byz_adaptive *a;
    size_t r, d;
} px__gram_job;

typedef float px__v8 __attribute__((vector_size(32)));

/* Piece t's sums of products, upper triangle: float products summed in eight float lanes over
 * blocks of PX__GRAM_BLOCK columns (32 terms per lane: relative rounding near 1e-6 at worst),
 * the blocks added in double. The order of every sum is fixed by d alone, never by the thread
 * count. */
static void px__gram_piece(void *arg, size_t t, int thread)
{
    (void)thread;
    px__gram_job *j = arg;
    px_byz_adaptive *a = j->a;
    size_t r = j->r, d = j->d, lo = t * d / a->pieces, hi = (t + 1) * d / a->pieces;
    double *P = a->part + t * a->r_max * a->r_max;
    for (size_t i = 0; i < r * r; i++)
        P[i] = 0;
    for (size_t c0 = lo; c0 < hi; c0 += PX__GRAM_BLOCK) {
        size_t c1 = c0 + PX__GRAM_BLOCK < hi ? c0 + PX__GRAM_BLOCK : hi;
        for (size_t i = 0; i < r; i++) {
            const float *x = a->basis[i];
            for (size_t k = i; k < r; k++) {
                const float *y = a->basis[k];
                px__v8 acc = {0};
                size_t c = c0;
                for (; c + 8 <= c1; c += 8) {
                    px__v8 u, v;
                    memcpy(&u, x + c, sizeof u);
                    memcpy(&v, y + c, sizeof v);
                    acc += u * v;
                }
                double s = 0;
                for (int l = 0; l < 8; l++)
                    s += acc[l];
                for (; c < c1; c++)
                    s += (double)x[c] * y[c];
                P[i * r + k] += s;
            }
        }
    }
}

/* a->G (r x r, both triangles) for the r basis rows in a->basis. */
static void px__basis_gram(px_byz_server *b, size_t r)
{
    px_byz_adaptive *a = b->adaptive;
    px__gram_job j = {a, r, b->d};
    px_pool_run(b->pool, a->pieces, px__gram_piece, &j);
    for (size_t i = 0; i < r; i++)
        for (size_t k = i; k < r; k++) {
            double s = 0;
            for (size_t t = 0; t < a->pieces; t++)
                s += a->part[t * a->r_max * a->r_max + i * r + k];
            a->G[i * r + k] = a->G[k * r + i] = s;
        }
}

/* The honest rows as the first m basis vectors (in worker order); hidx maps them back. */
static size_t px__honest_basis(px_byz_server *b, const float *rows, size_t n)
{
    px_byz_adaptive *a = b->adaptive;
    size_t m = 0;
    for (size_t w = 0; w < n; w++)
        if (b->honest[w]) {
            a->hidx[w] = m;
            a->basis[m++] = rows + w * b->d;
        }
    return m;
}

/* Squared distance between combinations x and y of the basis: (x-y)^T G (x-y); x or y NULL
 * stands for the zero vector. Clamped at 0 (rounding can make a tiny distance negative). */
static double px__qform(const double *G, size_t r, const double *x, const double *y)
{
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        double ui = (x ? x[i] : 0) - (y ? y[i] : 0);
        if (ui == 0) continue;
        for (size_t k = 0; k < r; k++)
            s += ui * G[i * r + k] * ((x ? x[k] : 0) - (y ? y[k] : 0));
    }
    return s > 0 ? s : 0;
}

/* ---- MIMIC: the honest worker farthest from the honest mean ------------------------------ */

static uint32_t px__farthest(px_byz_server *b, const float *rows, size_t n)
{
    px_byz_adaptive *a = b->adaptive;
    size_t m = px__honest_basis(b, rows, n);
    px__basis_gram(b, m);
    /* ||h_i - mu||^2 = G_ii - (2/m) sum_j G_ij + (1/m^2) sum_jl G_jl */
    double total = 0;
    for (size_t i = 0; i < m * m; i++)
        total += a->G[i];
    double best = -1;
    uint32_t target = 0;
    for (size_t w = 0; w < n; w++) {
        if (!b->honest[w]) continue;
        size_t i = a->hidx[w];
        double row = 0;
        for (size_t j = 0; j < m; j++)
            row += a->G[i * m + j];
        double dist = a->G[i * m + i] - 2 * row / (double)m + total / ((double)m * (double)m);
        if (dist > best) { /* ties: the lowest worker id */
            best = dist;
            target = (uint32_t)w;
        }
    }
    return target;
}

/* ---- Min-Max and Min-Sum --------------------------------------------------------------- */

/* p into a->dir, from b->mean and b->std (ALGORITHMS.md 4.1). */
static void px__direction(px_byz_server *b)
{
    float *p = b->adaptive->dir;
    size_t d = b->d;
    switch (b->spec.perturbation) {
    case PX_PERTURB_UNIT: {
        double s = 0;
        for (size_t i = 0; i < d; i++)
            s += (double)b->mean[i] * b->mean[i];
        double inv = s > 0 ? 1 / sqrt(s) : 0; /* a zero mean has no direction: p = 0 */
        for (size_t i = 0; i < d; i++)
            p[i] = (float)(-(double)b->mean[i] * inv);
        break;
    }
    case PX_PERTURB_SIGN:
        for (size_t i = 0; i < d; i++)
            p[i] = b->mean[i] > 0 ? -1.0f : (b->mean[i] < 0 ? 1.0f : 0.0f);
        break;
    default:
        for (size_t i = 0; i < d; i++)
            p[i] = -b->std[i];
    }
}

/* gamma for MIN_MAX (sum = 0) or MIN_SUM (sum = 1): the basis is the m honest rows and p. */
static double px__minmax_gamma(px_byz_server *b, size_t m, int sum, uint32_t *evals)
{
    px_byz_adaptive *a = b->adaptive;
    size_t r = m + 1;
    const double *G = a->G;
    double *u = a->c; /* coefficients of mu: 1/m on the honest rows */
    for (size_t i = 0; i < r; i++)
        u[i] = i < m ? 1.0 / (double)m : 0;
    /* ||b - h_i||^2 = A_i + 2 gamma B_i + gamma^2 Gpp with b - h_i = (u - e_i) + gamma e_p */
    double *A = a->w, *B = a->T, Gpp = G[m * r + m];
    for (size_t i = 0; i < m; i++) {
        u[i] -= 1;
        A[i] = px__qform(G, r, u, NULL);
        double s = 0;
        for (size_t k = 0; k < r; k++)
            s += u[k] * G[k * r + m];
        B[i] = s;
        u[i] += 1;
    }
    /* the bound: the honest spread */
    double bound = 0;
    for (size_t i = 0; i < m; i++) {
        double row = 0;
        for (size_t j = 0; j < m; j++) {
            double dij = G[i * r + i] + G[j * r + j] - 2 * G[i * r + j];
            dij = dij > 0 ? dij : 0;
            if (sum)
                row += dij;
            else if (dij > bound)
                bound = dij;
        }
        if (sum && row > bound) bound = row;
    }
    double gamma = PX_MINMAX_GAMMA0, step = PX_MINMAX_GAMMA0, best = 0;
    uint32_t it = 0;
    while (fabs(best - gamma) > PX_MINMAX_TOL && it < PX__MINMAX_CAP) {
        double worst = 0;
        for (size_t i = 0; i < m; i++) {
            double di = A[i] + 2 * gamma * B[i] + gamma * gamma * Gpp;
            if (sum)
                worst += di;
            else if (di > worst)
                worst = di;
        }
        if (worst <= bound) {
            best = gamma;
            gamma += step / 2;
        } else {
            gamma -= step / 2;
        }
        step /= 2;
        it++;
    }
    *evals = it;
    return best;
}

/* ---- optimal IPM and optimal ALIE: the line search over the factor ---------------------- */

typedef struct {
    px_byz_server *b;
    uint32_t step;
    const float *rows;
    size_t n, m, k; /* rows, honest rows, inputs the rule gets (honest + Byzantine) */
    int alie;
    int gram; /* 1: evaluate in the Gram form; 0: on vectors; -1: not decided yet */
} px__search;

/* The candidate Byzantine vector for factor tau: the same float arithmetic as what is sent. */
static void px__candidate(const px_byz_server *b, int alie, double tau, float *x)
{
    float t = (float)tau;
    if (alie)
        for (size_t i = 0; i < b->d; i++)
            x[i] = b->mean[i] + t * b->std[i];
    else
        for (size_t i = 0; i < b->d; i++)
            x[i] = -t * b->mean[i];
}

/* D(tau) in the Gram form: the inputs are C x basis, their Gram matrix C G C^T, the rule's
 * weights w give the aggregate (C^T w) x basis, and D^2 = (C^T w - u)^T G (C^T w - u).
 * PX_ENOTSUP when the rule has no Gram form. */
static px_status px__distance_gram(px__search *S, double tau, double *D)
{
    px_byz_server *b = S->b;
    px_byz_adaptive *a = b->adaptive;
    size_t m = S->m, k = S->k, r = S->alie ? m + 1 : m;
    double *C = a->C;
    memset(C, 0, k * r * sizeof *C);
    for (size_t p = 0; p < k; p++) {
        size_t w = a->order[p];
        double *row = C + p * r;
        if (b->honest[w]) {
            row[a->hidx[w]] = 1;
        } else if (S->alie) {
            for (size_t i = 0; i < m; i++)
                row[i] = 1.0 / (double)m;
            row[m] = (double)(float)tau;
        } else {
            for (size_t i = 0; i < m; i++)
                row[i] = -(double)(float)tau / (double)m;
        }
    }
    /* T = C G, K = T C^T */
    for (size_t p = 0; p < k; p++)
        for (size_t j = 0; j < r; j++) {
            double s = 0;
            for (size_t i = 0; i < r; i++)
                s += C[p * r + i] * a->G[i * r + j];
            a->T[p * r + j] = s;
        }
    for (size_t p = 0; p < k; p++)
        for (size_t q = 0; q < k; q++) {
            double s = 0;
            for (size_t j = 0; j < r; j++)
                s += a->T[p * r + j] * C[q * r + j];
            a->K[p * k + q] = s;
        }
    PX_CHECK(px_agg_weights_gram(a->shadow, a->K, k, S->step, a->w));
    for (size_t j = 0; j < r; j++) {
        double s = j < m ? -1.0 / (double)m : 0;
        for (size_t p = 0; p < k; p++)
            s += a->w[p] * C[p * r + j];
        a->c[j] = s;
    }
    *D = sqrt(px__qform(a->G, r, a->c, NULL));
    return PX_OK;
}

/* Makes the attacker's copy of the rule carry the run's state (a no-op for stateless rules). */
static px_status px__sync_state(px_byz_adaptive *a)
{
    if (!a->live) return PX_OK;
    size_t bytes = px_agg_state_bytes(a->live);
    if (bytes <= PX_AGG_STATE_HEADER_BYTES) return PX_OK;
    if (bytes > a->state_cap) {
        /* grows a few times in a run at most (FA's subspace reaches its size at the first
         * step); every other step reuses the buffer */
        unsigned char *s = realloc(a->state, bytes);
        if (!s) return px_error(PX_ENOMEM, "fault injection: cannot allocate the rule's state");
        a->state = s;
        a->state_cap = bytes;
    }
    PX_CHECK(px_agg_state_save(a->live, a->state, a->state_cap));
    return px_agg_state_load(a->shadow, a->state, bytes);
}

/* D(tau) on vectors: the candidate written once, every Byzantine input pointing at it. */
static px_status px__distance_vectors(px__search *S, double tau, double *D)
{
    px_byz_server *b = S->b;
    px_byz_adaptive *a = b->adaptive;
    px__candidate(b, S->alie, tau, a->cand);
    for (size_t p = 0; p < S->k; p++) {
        size_t w = a->order[p];
        a->inputs[p] = b->honest[w] ? S->rows + w * b->d : a->cand;
    }
    PX_CHECK(px__sync_state(a));
    PX_CHECK(px_agg_run(a->shadow, a->inputs, S->k, S->step, a->out, NULL));
    double s = 0;
    for (size_t i = 0; i < b->d; i++) {
        double e = (double)a->out[i] - b->mean[i];
        s += e * e;
    }
    *D = sqrt(s);
    return PX_OK;
}

/* D(tau), or -inf when the rule refuses the inputs (a candidate it cannot aggregate is no
 * improvement). */
static double px__distance(px__search *S, double tau)
{
    double D = -INFINITY;
    if (S->gram != 0) {
        px_status st = px__distance_gram(S, tau, &D);
        if (st == PX_ENOTSUP && S->gram < 0) {
            S->gram = 0;
        } else {
            S->gram = 1;
            return st == PX_OK && isfinite(D) ? D : -INFINITY;
        }
    }
    if (px__distance_vectors(S, tau, &D) < 0 || !isfinite(D)) return -INFINITY;
    return D;
}

/* "D improves": by more than a relative 1e-9, so that rounding noise between two candidates
 * with the same aggregate (Krum choosing the same input) is not an improvement. */
static int px__improves(double candidate, double best)
{
    if (!isfinite(best)) return candidate > best;
    return candidate > best + 1e-9 * fabs(best);
}

/* ALGORITHMS.md 4.1: D(start), an expansion that doubles the step while D improves, then a
 * contraction around the best factor with a shrinking step, search_evals evaluations in all. */
static double px__line_search(px__search *S, double *D_best, uint32_t *evals)
{
    const px_byz_spec *s = &S->b->spec;
    double best = s->search_start, delta = s->search_delta;
    double Db = px__distance(S, best);
    uint32_t used = 1;
    while (used < s->search_evals) {
        double prop = best + delta, Dp = px__distance(S, prop);
        used++;
        if (px__improves(Dp, Db)) {
            best = prop;
            Db = Dp;
            delta *= 2;
        } else {
            delta *= s->search_ratio;
            break;
        }
    }
    while (used < s->search_evals) {
        double prop = best + delta, Dp = px__distance(S, prop);
        used++;
        if (px__improves(Dp, Db)) {
            best = prop;
            Db = Dp;
        }
        delta *= s->search_ratio;
    }
    *D_best = Db;
    *evals = used;
    return best;
}

size_t px__byz_adaptive_apply(px_byz_server *b, uint32_t step, float *rows, uint8_t *have,
                              size_t n, size_t k)
{
    px_byz_adaptive *a = b->adaptive;
    const px_byz_spec *s = &b->spec;
    size_t d = b->d, written = 0;
    px_attack atk = s->attack;
    b->last = (px_byz_choice){NAN, NAN, 0, 0, 0};
    if (atk == PX_ATTACK_MIMIC) {
        uint32_t target = px__farthest(b, rows, n);
        for (size_t w = 0; w < n; w++) {
            if (!b->is_byz[w]) continue;
            memcpy(rows + w * d, rows + (size_t)target * d, d * sizeof(float));
            have[w] = 1;
            written++;
        }
        b->last.target = target;
        return written;
    }
    int want_std = atk == PX_ATTACK_OPTIMAL_ALIE ||
                   ((atk == PX_ATTACK_MIN_MAX || atk == PX_ATTACK_MIN_SUM) &&
                    s->perturbation == PX_PERTURB_STD);
    px__byz_stats(b, rows, b->honest, k, n, want_std);
    size_t m = px__honest_basis(b, rows, n);
    double factor;
    const float *extra = NULL; /* the vector b(factor) adds to the mean: x = mean + f * extra */
    if (atk == PX_ATTACK_MIN_MAX || atk == PX_ATTACK_MIN_SUM) {
        px__direction(b);
        a->basis[m] = a->dir;
        px__basis_gram(b, m + 1);
        factor = px__minmax_gamma(b, m, atk == PX_ATTACK_MIN_SUM, &b->last.evals);
        extra = a->dir;
    } else {
        int alie = atk == PX_ATTACK_OPTIMAL_ALIE;
        if (alie) a->basis[m] = b->std;
        px__basis_gram(b, alie ? m + 1 : m);
        px__search S = {b, step, rows, n, m, 0, alie, -1};
        for (size_t w = 0; w < n; w++)
            if (b->honest[w] || b->is_byz[w]) a->order[S.k++] = w;
        factor = px__line_search(&S, &b->last.distance, &b->last.evals);
        b->last.gram = S.gram == 1;
        if (alie) extra = b->std;
    }
    b->last.factor = factor;
    float f = (float)factor;
    for (size_t w = 0; w < n; w++) {
        if (!b->is_byz[w]) continue;
        float *x = rows + w * d;
        if (extra)
            for (size_t i = 0; i < d; i++)
                x[i] = b->mean[i] + f * extra[i];
        else
            px__candidate(b, 0, factor, x);
        have[w] = 1;
        written++;
    }
    return written;
}
