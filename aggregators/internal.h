/* internal.h - what the files of aggregators/ share among themselves and nobody else uses:
 * the Gram pass (gram.c), the weighted row-combination pass (gram.c), the lane-parallel sorting
 * network of the coordinate-wise rules (sortnet.c), the pre-aggregation step interface
 * (pre_*.c), small n x n helpers (nn.c) and the little-endian byte helpers of saved state.
 *
 * Everything here is deterministic by construction: the work over d is split into pieces whose
 * boundaries depend only on d (or the layer table), never on the number of threads or on
 * timing, and per-piece partial results are combined in piece order.
 */
#ifndef PX_AGG_INTERNAL_H
#define PX_AGG_INTERNAL_H

#include <string.h>

#include "aggregator.h"

/* ---- Gram pass (gram.c) ------------------------------------------------------------------ */

/* Fills generated row k for columns [col, col + count) into dst. gram.c and the combination pass
 * call it only with col a multiple of PX_GEN_BLOCK and count <= PX_GEN_BLOCK, so a generator
 * can seed one random stream per (k, col / PX_GEN_BLOCK) and give the same values in both. */
#define PX_GEN_BLOCK 512
typedef void (*px__gen_fn)(void *arg, size_t k, size_t col, size_t count, float *dst);

typedef struct px__gram px__gram;

/* Plans Gram passes over at most r_max rows (of which at most gen_max generated) of length d,
 * split into the segments of `segs` (NULL: one segment [0, d)). Allocates everything a pass
 * needs. */
px_status px__gram_create(px__gram **g, size_t r_max, size_t gen_max, size_t d,
                          const px_layer_table *segs, px_pool *pool);
void px__gram_destroy(px__gram *g);

/* For each segment s, the r x r Gram matrix (r = n_rows + n_gen; rows first, then generated
 * rows) over the segment's columns, in double, both triangles filled, at out + s * r * r.
 * One streaming pass: float products over cache-resident column blocks, summed in double
 * every 4096 columns. */
void px__gram_run(px__gram *g, const float *const *rows, size_t n_rows, size_t n_gen,
                  px__gen_fn gen, void *gen_arg, double *out);

/* ---- weighted combination of rows (gram.c) ----------------------------------------------- */

typedef struct px__mix px__mix;

/* Plans passes out_k = sum_i A[k][i] row_i for at most k_max outputs of at most r_max rows (of
 * which at most gen_max generated) of length d, with per-segment weights (segs as above). */
px_status px__mix_create(px__mix **m, size_t r_max, size_t gen_max, size_t k_max, size_t d,
                         const px_layer_table *segs, px_pool *pool);
void px__mix_destroy(px__mix *m);

/* outs[k][c] = sum_i A[s * n_out * r + k * r + i] * row_i[c] for c in segment s, where row_i is
 * rows[i] for i < n_rows and generated row i - n_rows after. The sum runs over i in order, in
 * float. An output may alias an input row (each column is read before it is written). */
void px__mix_run(px__mix *m, const float *const *rows, size_t n_rows, size_t n_gen, px__gen_fn gen,
                 void *gen_arg, const float *A, size_t n_out, float *const *outs);

/* ---- squared distances to one vector (gram.c) -------------------------------------------- */

typedef struct px__sqdist px__sqdist;

px_status px__sqdist_create(px__sqdist **s, size_t n_max, size_t d, px_pool *pool);
void px__sqdist_destroy(px__sqdist *s);

/* out[i] = sum_c (rows_i[c] - v[c])^2 for i < n (v NULL: the squared norms), in double; one
 * pass, pieces fixed by d as for the Gram. */
void px__sqdist_run(px__sqdist *s, const float *const *rows, size_t n, const float *v, double *out);

/* ---- lane-parallel sorting network (sortnet.c) ------------------------------------------- */

#define PX_LANES                                                                                   \
    64 /* coordinates sorted at once: four 512-bit vectors of floats, so that four                 \
        * independent comparator chains hide each other's latency */

/* Batcher's odd-even merge sort for up to n_max values, pruned to the current n. */
typedef struct {
    size_t n_max, n;
    size_t count, full_count;
    uint16_t *full;  /* pairs (lo, hi) of the network for the next power of two >= n_max */
    uint16_t *pairs; /* the pairs with hi < n */
} px__sortnet;

px_status px__sortnet_init(px__sortnet *s, size_t n_max);
void px__sortnet_free(px__sortnet *s);
/* Prunes the network to n <= n_max values (no allocation). */
void px__sortnet_prepare(px__sortnet *s, size_t n);
/* Rows the sort needs in v for n values (n itself; kept for callers that size scratch). */
size_t px__sortnet_rows(size_t n);
/* Sorts each of the PX_LANES lanes of v[0..n) ascending (v[i][l] = value i of lane l): a fixed
 * network in registers for n <= 32, the pruned pair table otherwise. */
void px__sortnet_sort(const px__sortnet *s, float (*v)[PX_LANES]);

/* Runs a coordinate-wise rule over d columns: loads PX_LANES columns of the n rows at a time,
 * sorts them with the network and calls `reduce` on the sorted lanes, which writes the
 * PX_LANES results to out. Columns are processed in tiles in parallel over `pool`; the tail
 * that does not fill a whole lane group is padded by repeating its last column. */
typedef void (*px__lane_reduce)(const float (*v)[PX_LANES], size_t n, void *arg,
                                float out[PX_LANES]);
typedef struct {
    px__sortnet net;
    px_pool *pool;
    size_t rows;    /* rows of scratch per thread: max(n_max, 32) */
    float *scratch; /* per thread: rows x PX_LANES */
    float *buf;     /* d floats: the result while the inputs are being screened */
    int *bad;       /* per thread: a non-finite value was loaded */
} px__coord;

px_status px__coord_init(px__coord *c, size_t n_max, size_t d, px_pool *pool, const char *what);
void px__coord_free(px__coord *c);
/* With screen = false, writes out and returns PX_OK. With screen = true, works into c->buf
 * while checking every value it loads, and either copies the result to out (PX_OK) or returns
 * PX_AGG_NONFINITE with out untouched. */
px_status px__coord_run(px__coord *c, const float *const *x, size_t n, size_t d, float *out,
                        px__lane_reduce reduce, void *arg, bool screen);

/* Parallel copy of d floats (the end of a screened pass). */
void px__copy_run(px_pool *pool, float *dst, const float *src, size_t d);

/* True when the diagonal of the n x n matrix K (leading dimension ld) is finite: a NaN or Inf
 * anywhere in a row makes its squared norm non-finite (squares cannot cancel), so this is how
 * the Gram-form rules screen their inputs. A finite input whose squared norm overflows also
 * fails it; px_agg_run's scan then finds it finite and the rule handles it as an outlier. */
bool px__diag_finite(const double *K, size_t ld, size_t n);

/* The mean of the k values closest to the median of sorted lanes v[0..n), k <= n (MeaMed and
 * Bulyan's second phase): the window [s, s+k) of the sorted values where s is one past the last
 * t < n - k with |v[t+k] - med| < |v[t] - med| (0 if none). Finite values give a finite mean,
 * also near +-FLT_MAX (a halves-first median, sums that overflow redone in double). */
void px__lane_mean_near_median(const float (*v)[PX_LANES], size_t n, size_t k, float out[PX_LANES]);

/* The mean of v[lo..hi) in lane `lane`, accumulated in double. The coordinate-wise rules sum in
 * float, which overflows for finite values near +-FLT_MAX (3e38 + 3e38 = inf); they recompute
 * a result that came out non-finite with this. The mean of finite values lies between them, so
 * it is finite; a result that stays non-finite had a non-finite input. */
float px__lane_mean_double(const float (*v)[PX_LANES], size_t lo, size_t hi, size_t lane);

/* ---- pre-aggregation steps (pre_clip.c, pre_nnm.c, pre_bucketing.c) ---------------------- */

typedef struct {
    const char *name;
    const char *summary;
    /* Number of vectors the step hands on for n inputs, or PX_EINVAL with a message when it
     * cannot take n inputs. */
    px_status (*check)(const px_agg_params *p, size_t n, size_t *n_out);
    bool needs_gram; /* plan reads K */
    /* The step as a matrix: T (n_out x n, row-major) such that its output vectors are T times
     * its input vectors, from the inputs' Gram matrix K (n x n; NULL when !needs_gram). Every
     * step is linear in the vectors once its choices (norms, neighbours, buckets) are made, and
     * those choices depend on the vectors only through K, so registry.c composes the chain on
     * n x n matrices and the data is read only by the Gram pass and the rule. ws: 2 n^2
     * doubles of scratch, iws: n. */
    void (*plan)(const px_agg_params *p, const double *K, size_t n, uint64_t step, double *T,
                 size_t *n_out, double *ws, size_t *iws);
} px__pre_step;

extern const px__pre_step px__pre_clip, px__pre_nnm, px__pre_bucketing;

/* The ranges of every parameter and the codes of init and pre (params.c), for parameters a caller
 * may have written field by field. */
px_status px__agg_params_check(const px_agg_params *p);

/* ---- small helpers (nn.c) ---------------------------------------------------------------- */

/* Squared distances D (n x n) from a Gram matrix K (n x n, leading dimension ldk):
 * D_ij = K_ii + K_jj - 2 K_ij, clamped at 0; a non-finite value (an input whose norm
 * overflowed float) becomes +inf, so that such an input is the farthest from everything. */
void px__gram_distances(const double *K, size_t ldk, size_t n, double *D);

/* Krum score of each of the `count` inputs idx[0..count) against the others of the same set:
 * the sum of the `k` smallest squared distances to the others. */
void px__krum_scores(const double *D, size_t n, const size_t *idx, size_t count, size_t k,
                     double *score, double *scratch);

/* Sorts idx[0..count) by key ascending, ties by index (insertion sort: count is small). */
void px__argsort(const double *key, size_t *idx, size_t count);

/* Median of v[0..n) (reorders v; mean of the two middle values when n is even). */
double px__median_double(double *v, size_t n);

/* ---- saved state: little-endian values written byte by byte (registry.c, stateful rules) -- */

static inline void px__put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void px__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t px__get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t px__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* floats travel as their IEEE-754 bits, so a loaded value is the saved one bit for bit */
static inline void px__put_f32(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    px__put_u32(p, bits);
}

static inline float px__get_f32(const unsigned char *p)
{
    uint32_t bits = px__get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

/* 1 if every one of the d values of x is finite. An OR-reduction over "exponent all ones"
 * vectorises; isfinite() in a loop with an early exit does not. */
static inline int px__row_finite(const float *x, size_t d)
{
    uint32_t bad = 0;
    for (size_t j = 0; j < d; j++) {
        uint32_t bits;
        memcpy(&bits, &x[j], 4);
        bad |= ((bits & 0x7F800000u) == 0x7F800000u);
    }
    return !bad;
}

/* ---- the composed aggregator (registry.c), for the other files of the library ------------ */

/* The composed aggregator: filter, pre-aggregation chain, rule. */
struct px_agg {
    const px_agg_rule *rule;
    px_agg_params params;
    void *ctx;
    size_t n_max, d;
    px_pool *pool;
    const float **kept;   /* the finite rows of the current call */
    int *finite;          /* per row: 1 if every value is finite */
    px_layer *own_layers; /* the table built from params.layer_sizes or for one layer */
    px_layer_table table;
    /* the pre-aggregation chain, planned on n x n matrices (see px__pre_step) */
    bool chain_gram; /* the chain or the rule reads the Gram matrix of the inputs */
    px__gram *gram;  /* the Gram pass over the inputs */
    px__mix *mix;    /* the output pass, or the pass that builds the chain's vectors */
    double *K, *Kv, *A, *T, *tmp, *ws, *w, *wv; /* n_max x n_max (w, wv: n_max) */
    size_t *iws;
    float *Af;   /* the chain's matrix (or the output weights) in float */
    float *vbuf; /* n_max x d: the chain's vectors, for rules that need them */
    float **vout;
    const float **vrows;
};

/* Runs the chain's validity rules from n inputs; *n_rule gets what the rule will receive. */
px_status px__chain_check(const px_agg_params *p, size_t n, size_t *n_rule);
/* The rule's validity rule for the n it receives after the chain turned n_in inputs into n. */
px_status px__rule_check(const px_agg_rule *r, const px_agg_params *p, size_t n_in, size_t n);
/* Plans the chain on n inputs: a->A (m x n) gets the chain's m vectors as combinations of the
 * inputs and, when `gram` (a->Kv holding the inputs' Gram matrix on entry), a->Kv their Gram
 * matrix. Returns m. */
size_t px__agg_plan(px_agg *a, size_t n, uint64_t step, bool gram);

#endif
