/* gram.c - the two streaming passes every Gram-form rule is made of (Krum, Multi-Krum, Bulyan,
 * NNM, geometric median, Flag Aggregator, FedLD):
 *   px__gram_run: G G^T over the n x d rows (n x n, double), one read of the data;
 *   px__mix_run:  a few weighted sums of the rows (the output, FA's subspace, NNM's mixes).
 *
 * The Gram kernel is a float SYRK written with vector extensions: the rows are taken four at a
 * time, a 4 x 4 tile of 16-lane accumulators runs over a 512-column block that stays in L1, and
 * the float partials are summed into double every 4096 columns (so a float sum never runs over
 * more than 256 products per lane). The work is cut into at most 64 pieces per segment whose
 * boundaries depend only on d; each piece writes its own double partial, and the partials are
 * added in piece order, so the result is bit-identical whatever the number of threads.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The 64-byte vector helpers below are static: the ABI note GCC gives for passing them by value
 * on targets without AVX-512 does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define PX_GRAM_SUB            PX_GEN_BLOCK /* columns per L1-resident block */
#define PX_GRAM_FLUSH          4096         /* columns summed in float before going to double */
#define PX_GRAM_MAX_PIECES     64           /* pieces per segment (at most) */
#define PX_GRAM_PARTIAL_BUDGET (64u << 20)  /* bytes of per-piece partial Grams (aim) */
#define PX_MIX_TILE            (4 * PX_GEN_BLOCK) /* columns per combination task */

typedef float px__v16 __attribute__((vector_size(64)));

typedef struct {
    size_t seg, lo, hi; /* absolute columns [lo, hi) of segment seg */
} px__piece;

struct px__gram {
    size_t r_max, gen_max, d, n_segs, n_pieces;
    px_pool *pool;
    int n_threads;
    size_t tiles_max;
    size_t *seg_first; /* first piece of each segment (n_segs + 1 entries) */
    px__piece *pieces;
    double *partial;    /* n_pieces x r_max^2 */
    px__v16 *acc;       /* per thread: tiles_max x 16 */
    float *gen_buf;     /* per thread: gen_max x PX_GRAM_SUB */
    const float **ptrs; /* per thread: r_max + 4 row pointers */
    /* the current pass */
    const float *const *rows;
    size_t n_rows, n_gen, r;
    px__gen_fn gen;
    void *gen_arg;
};

static size_t px__round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* A 4 x 4 tile of dot products over wv columns (a multiple of 16). The sixteen accumulators
 * are named variables: as an array GCC keeps them on the stack. */
static inline void px__tile(const float *const *a, const float *const *b, size_t wv, px__v16 *acc)
{
    px__v16 s00 = acc[0], s01 = acc[1], s02 = acc[2], s03 = acc[3];
    px__v16 s10 = acc[4], s11 = acc[5], s12 = acc[6], s13 = acc[7];
    px__v16 s20 = acc[8], s21 = acc[9], s22 = acc[10], s23 = acc[11];
    px__v16 s30 = acc[12], s31 = acc[13], s32 = acc[14], s33 = acc[15];
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    for (size_t c = 0; c < wv; c += 16) {
        px__v16 x0, x1, x2, x3, y0, y1, y2, y3;
        memcpy(&x0, a0 + c, 64);
        memcpy(&x1, a1 + c, 64);
        memcpy(&x2, a2 + c, 64);
        memcpy(&x3, a3 + c, 64);
        memcpy(&y0, b0 + c, 64);
        memcpy(&y1, b1 + c, 64);
        memcpy(&y2, b2 + c, 64);
        memcpy(&y3, b3 + c, 64);
        s00 += x0 * y0, s01 += x0 * y1, s02 += x0 * y2, s03 += x0 * y3;
        s10 += x1 * y0, s11 += x1 * y1, s12 += x1 * y2, s13 += x1 * y3;
        s20 += x2 * y0, s21 += x2 * y1, s22 += x2 * y2, s23 += x2 * y3;
        s30 += x3 * y0, s31 += x3 * y1, s32 += x3 * y2, s33 += x3 * y3;
    }
    acc[0] = s00, acc[1] = s01, acc[2] = s02, acc[3] = s03;
    acc[4] = s10, acc[5] = s11, acc[6] = s12, acc[7] = s13;
    acc[8] = s20, acc[9] = s21, acc[10] = s22, acc[11] = s23;
    acc[12] = s30, acc[13] = s31, acc[14] = s32, acc[15] = s33;
}

typedef double px__v8d __attribute__((vector_size(64)));
typedef float px__v8 __attribute__((vector_size(32)));

/* The 16 lanes summed in double, in a fixed tree order. */
static double px__hsum(px__v16 v)
{
    px__v8 lo = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    px__v8 hi = {v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
    px__v8d s = __builtin_convertvector(lo, px__v8d) + __builtin_convertvector(hi, px__v8d);
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static void px__gram_piece(void *arg, size_t t, int thread)
{
    px__gram *g = arg;
    const px__piece *pc = &g->pieces[t];
    size_t r = g->r, nb = (r + 3) / 4, ntiles = nb * (nb + 1) / 2;
    double *P = g->partial + t * g->r_max * g->r_max;
    px__v16 *acc = g->acc + (size_t)thread * g->tiles_max * 16;
    float *gbuf = g->gen_buf ? g->gen_buf + (size_t)thread * g->gen_max * PX_GRAM_SUB : NULL;
    const float **p = g->ptrs + (size_t)thread * (g->r_max + 4);
    memset(P, 0, r * r * sizeof *P);
    for (size_t f0 = pc->lo; f0 < pc->hi; f0 += PX_GRAM_FLUSH) {
        size_t f1 = f0 + PX_GRAM_FLUSH < pc->hi ? f0 + PX_GRAM_FLUSH : pc->hi;
        memset(acc, 0, ntiles * 16 * sizeof *acc);
        for (size_t s0 = f0; s0 < f1; s0 += PX_GRAM_SUB) {
            size_t s1 = s0 + PX_GRAM_SUB < f1 ? s0 + PX_GRAM_SUB : f1;
            size_t w = s1 - s0, wv = w / 16 * 16;
            for (size_t k = 0; k < g->n_gen; k++)
                g->gen(g->gen_arg, k, s0, w, gbuf + k * PX_GRAM_SUB);
            for (size_t i = 0; i < r; i++)
                p[i] = i < g->n_rows ? g->rows[i] + s0 : gbuf + (i - g->n_rows) * PX_GRAM_SUB;
            for (size_t i = r; i < 4 * nb; i++)
                p[i] = p[r - 1]; /* padding: results dropped */
            size_t tile = 0;
            for (size_t I = 0; I < nb; I++)
                for (size_t J = I; J < nb; J++, tile++)
                    px__tile(p + 4 * I, p + 4 * J, wv, acc + tile * 16);
            for (size_t c = wv; c < w; c++)
                for (size_t i = 0; i < r; i++)
                    for (size_t j = i; j < r; j++)
                        P[i * r + j] += (double)p[i][c] * p[j][c];
        }
        size_t tile = 0;
        for (size_t I = 0; I < nb; I++)
            for (size_t J = I; J < nb; J++, tile++)
                for (size_t a = 0; a < 4; a++)
                    for (size_t b = 0; b < 4; b++) {
                        size_t i = 4 * I + a, j = 4 * J + b;
                        if (i < r && j < r && i <= j)
                            P[i * r + j] += px__hsum(acc[tile * 16 + a * 4 + b]);
                    }
    }
}

px_status px__gram_create(px__gram **out, size_t r_max, size_t gen_max, size_t d,
                          const px_layer_table *segs, px_pool *pool)
{
    *out = NULL;
    px__gram *g = calloc(1, sizeof *g);
    if (!g) return px_error(PX_ENOMEM, "gram: cannot allocate");
    g->r_max = r_max ? r_max : 1;
    g->gen_max = gen_max;
    g->d = d;
    g->pool = pool;
    g->n_threads = px_pool_size(pool);
    g->n_segs = segs ? segs->count : 1;
    /* at most 64 pieces, fewer when n is so large that their partials would pass the budget */
    size_t max_pieces = PX_GRAM_PARTIAL_BUDGET / (g->r_max * g->r_max * sizeof(double));
    if (max_pieces > PX_GRAM_MAX_PIECES) max_pieces = PX_GRAM_MAX_PIECES;
    if (max_pieces < 2) max_pieces = 2;
    size_t piece = px__round_up((d + max_pieces - 1) / max_pieces, PX_GRAM_FLUSH);
    if (piece < PX_GRAM_FLUSH) piece = PX_GRAM_FLUSH;
    g->seg_first = calloc(g->n_segs + 1, sizeof *g->seg_first);
    size_t total = 0;
    for (size_t s = 0; s < g->n_segs; s++) {
        size_t size = segs ? segs->layers[s].size : d;
        total += size ? (size + piece - 1) / piece : 1;
    }
    g->pieces = calloc(total, sizeof *g->pieces);
    if (!g->seg_first || !g->pieces) goto nomem;
    g->n_pieces = 0;
    for (size_t s = 0; s < g->n_segs; s++) {
        size_t off = segs ? segs->layers[s].offset : 0, size = segs ? segs->layers[s].size : d;
        g->seg_first[s] = g->n_pieces;
        size_t lo = 0;
        do {
            size_t hi = lo + piece < size ? lo + piece : size;
            g->pieces[g->n_pieces++] = (px__piece){s, off + lo, off + hi};
            lo = hi;
        } while (lo < size);
    }
    g->seg_first[g->n_segs] = g->n_pieces;
    size_t nb = (g->r_max + 3) / 4;
    g->tiles_max = nb * (nb + 1) / 2;
    g->partial = px_alloc(g->n_pieces * g->r_max * g->r_max * sizeof(double), "gram partials");
    g->acc = px_alloc((size_t)g->n_threads * g->tiles_max * 16 * sizeof(px__v16), "gram tiles");
    g->ptrs = calloc((size_t)g->n_threads * (g->r_max + 4), sizeof *g->ptrs);
    if (!g->partial || !g->acc || !g->ptrs) goto nomem;
    if (gen_max) {
        g->gen_buf = px_alloc((size_t)g->n_threads * gen_max * PX_GRAM_SUB * sizeof(float),
                              "gram generated rows");
        if (!g->gen_buf) goto nomem;
    }
    *out = g;
    return PX_OK;
nomem:
    px__gram_destroy(g);
    return px_error(PX_ENOMEM, "gram: cannot allocate for %zu rows of length %zu", r_max, d);
}

void px__gram_destroy(px__gram *g)
{
    if (!g) return;
    free(g->seg_first);
    free(g->pieces);
    px_free(g->partial);
    px_free(g->acc);
    free(g->ptrs);
    px_free(g->gen_buf);
    free(g);
}

void px__gram_run(px__gram *g, const float *const *rows, size_t n_rows, size_t n_gen,
                  px__gen_fn gen, void *gen_arg, double *out)
{
    size_t r = n_rows + n_gen;
    g->rows = rows;
    g->n_rows = n_rows;
    g->n_gen = n_gen;
    g->r = r;
    g->gen = gen;
    g->gen_arg = gen_arg;
    if (r == 0) return;
    px_pool_run(g->pool, g->n_pieces, px__gram_piece, g);
    for (size_t s = 0; s < g->n_segs; s++) {
        double *K = out + s * r * r;
        memset(K, 0, r * r * sizeof *K);
        for (size_t t = g->seg_first[s]; t < g->seg_first[s + 1]; t++) {
            const double *P = g->partial + t * g->r_max * g->r_max;
            for (size_t i = 0; i < r; i++)
                for (size_t j = i; j < r; j++)
                    K[i * r + j] += P[i * r + j];
        }
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < i; j++)
                K[i * r + j] = K[j * r + i];
    }
}

/* ---- weighted combination ---------------------------------------------------------------- */

struct px__mix {
    size_t r_max, gen_max, k_max, d, n_segs, n_tiles;
    px_pool *pool;
    int n_threads;
    size_t *seg_off, *seg_end;
    float *tmp;         /* per thread: k_max x PX_MIX_TILE */
    float *gen_buf;     /* per thread: gen_max x PX_MIX_TILE */
    const float **ptrs; /* per thread: r_max row pointers, r_max non-zero-weight rows */
    float *wts;         /* per thread: 4 r_max weights (four outputs per row) */
    /* the current pass */
    const float *const *rows;
    size_t n_rows, n_gen, r, n_out;
    px__gen_fn gen;
    void *gen_arg;
    const float *A;
    float *const *outs;
};

px_status px__mix_create(px__mix **out, size_t r_max, size_t gen_max, size_t k_max, size_t d,
                         const px_layer_table *segs, px_pool *pool)
{
    *out = NULL;
    px__mix *m = calloc(1, sizeof *m);
    if (!m) return px_error(PX_ENOMEM, "mix: cannot allocate");
    m->r_max = r_max ? r_max : 1;
    m->gen_max = gen_max;
    m->k_max = k_max ? k_max : 1;
    m->d = d;
    m->pool = pool;
    m->n_threads = px_pool_size(pool);
    m->n_segs = segs ? segs->count : 1;
    m->n_tiles = (d + PX_MIX_TILE - 1) / PX_MIX_TILE;
    m->seg_off = calloc(m->n_segs, sizeof *m->seg_off);
    m->seg_end = calloc(m->n_segs, sizeof *m->seg_end);
    m->tmp = px_alloc((size_t)m->n_threads * m->k_max * PX_MIX_TILE * sizeof(float), "mix tiles");
    m->ptrs = calloc((size_t)m->n_threads * 2 * m->r_max, sizeof *m->ptrs);
    m->wts = calloc((size_t)m->n_threads * 4 * m->r_max, sizeof *m->wts);
    if (!m->seg_off || !m->seg_end || !m->tmp || !m->ptrs || !m->wts) goto nomem;
    for (size_t s = 0; s < m->n_segs; s++) {
        m->seg_off[s] = segs ? segs->layers[s].offset : 0;
        m->seg_end[s] = m->seg_off[s] + (segs ? segs->layers[s].size : d);
    }
    if (gen_max) {
        m->gen_buf = px_alloc((size_t)m->n_threads * gen_max * PX_MIX_TILE * sizeof(float),
                              "mix generated rows");
        if (!m->gen_buf) goto nomem;
    }
    *out = m;
    return PX_OK;
nomem:
    px__mix_destroy(m);
    return px_error(PX_ENOMEM, "mix: cannot allocate for %zu outputs of length %zu", k_max, d);
}

void px__mix_destroy(px__mix *m)
{
    if (!m) return;
    free(m->seg_off);
    free(m->seg_end);
    px_free(m->tmp);
    px_free(m->gen_buf);
    free(m->ptrs);
    free(m->wts);
    free(m);
}

/* One block of up to four outputs over columns [a0, a1) of the tile: the rows with a non-zero
 * weight in the block stream through once, each loaded vector feeding the four accumulators
 * (which stay in registers). The sum runs over the rows in order. */
static void px__mix_block(const float *const *nz, const float *wts, size_t cnt, size_t kb,
                          size_t a0, size_t a1, float *const *o)
{
    size_t c = a0;
    if (kb == 1) {
        for (; c + 16 <= a1; c += 16) {
            px__v16 s0 = {0};
            for (size_t j = 0; j < cnt; j++) {
                px__v16 x;
                memcpy(&x, nz[j] + c, sizeof x);
                s0 += wts[4 * j] * x;
            }
            memcpy(o[0] + c, &s0, sizeof s0);
        }
    } else {
        for (; c + 16 <= a1; c += 16) {
            px__v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            for (size_t j = 0; j < cnt; j++) {
                px__v16 x;
                memcpy(&x, nz[j] + c, sizeof x);
                const float *wj = wts + 4 * j;
                s0 += wj[0] * x;
                s1 += wj[1] * x;
                s2 += wj[2] * x;
                s3 += wj[3] * x;
            }
            px__v16 sk[4] = {s0, s1, s2, s3};
            for (size_t k = 0; k < kb; k++)
                memcpy(o[k] + c, &sk[k], sizeof s0);
        }
    }
    for (; c < a1; c++)
        for (size_t k = 0; k < kb; k++) {
            float acc = 0.0f;
            for (size_t j = 0; j < cnt; j++)
                acc += wts[4 * j + k] * nz[j][c];
            o[k][c] = acc;
        }
}

static void px__mix_tile(void *arg, size_t t, int thread)
{
    px__mix *m = arg;
    size_t c0 = t * PX_MIX_TILE, c1 = c0 + PX_MIX_TILE < m->d ? c0 + PX_MIX_TILE : m->d;
    size_t w = c1 - c0, r = m->r;
    float *tmp = m->tmp + (size_t)thread * m->k_max * PX_MIX_TILE;
    float *gbuf = m->gen_buf ? m->gen_buf + (size_t)thread * m->gen_max * PX_MIX_TILE : NULL;
    const float **p = m->ptrs + (size_t)thread * 2 * m->r_max;
    const float **nz = p + m->r_max; /* rows with a non-zero weight in the current block */
    float *wts = m->wts + (size_t)thread * 4 * m->r_max;
    for (size_t k = 0; k < m->n_gen; k++)
        for (size_t b = c0; b < c1; b += PX_GEN_BLOCK)
            m->gen(m->gen_arg, k, b, c1 - b < PX_GEN_BLOCK ? c1 - b : PX_GEN_BLOCK,
                   gbuf + k * PX_MIX_TILE + (b - c0));
    for (size_t i = 0; i < r; i++)
        p[i] = i < m->n_rows ? m->rows[i] + c0 : gbuf + (i - m->n_rows) * PX_MIX_TILE;
    /* the segment holding c0: the last one starting at or before it */
    size_t s = 0, hi = m->n_segs;
    while (hi - s > 1) {
        size_t mid = (s + hi) / 2;
        if (m->seg_off[mid] <= c0)
            s = mid;
        else
            hi = mid;
    }
    for (size_t p0 = c0; p0 < c1; s++) {
        size_t p1 = m->seg_end[s] < c1 ? m->seg_end[s] : c1;
        const float *A = m->A + s * m->n_out * r;
        for (size_t k0 = 0; k0 < m->n_out; k0 += 4) {
            size_t kb = m->n_out - k0 < 4 ? m->n_out - k0 : 4;
            /* a row whose weights are all zero in this block is not read (the sum is the
             * same without it) */
            size_t cnt = 0;
            for (size_t i = 0; i < r; i++) {
                float wk[4] = {0, 0, 0, 0};
                int any = 0;
                for (size_t k = 0; k < kb; k++) {
                    wk[k] = A[(k0 + k) * r + i];
                    any |= wk[k] != 0.0f;
                }
                if (!any) continue;
                nz[cnt] = p[i];
                memcpy(wts + 4 * cnt, wk, sizeof wk);
                cnt++;
            }
            float *o[4];
            for (size_t k = 0; k < kb; k++)
                o[k] = tmp + (k0 + k) * PX_MIX_TILE;
            px__mix_block(nz, wts, cnt, kb, p0 - c0, p1 - c0, o);
        }
        p0 = p1;
    }
    for (size_t k = 0; k < m->n_out; k++)
        memcpy(m->outs[k] + c0, tmp + k * PX_MIX_TILE, w * 4);
}

void px__mix_run(px__mix *m, const float *const *rows, size_t n_rows, size_t n_gen, px__gen_fn gen,
                 void *gen_arg, const float *A, size_t n_out, float *const *outs)
{
    m->rows = rows;
    m->n_rows = n_rows;
    m->n_gen = n_gen;
    m->r = n_rows + n_gen;
    m->gen = gen;
    m->gen_arg = gen_arg;
    m->A = A;
    m->n_out = n_out;
    m->outs = outs;
    px_pool_run(m->pool, m->n_tiles, px__mix_tile, m);
}

/* ---- squared distances to one vector ----------------------------------------------------- */

struct px__sqdist {
    size_t n_max, d, n_pieces, piece;
    px_pool *pool;
    double *partial; /* n_pieces x n_max */
    const float *const *rows;
    const float *v;
    size_t n;
};

px_status px__sqdist_create(px__sqdist **out, size_t n_max, size_t d, px_pool *pool)
{
    *out = NULL;
    px__sqdist *s = calloc(1, sizeof *s);
    if (!s) return px_error(PX_ENOMEM, "distances: cannot allocate");
    s->n_max = n_max ? n_max : 1;
    s->d = d;
    s->pool = pool;
    s->piece = px__round_up((d + PX_GRAM_MAX_PIECES - 1) / PX_GRAM_MAX_PIECES, PX_GRAM_FLUSH);
    if (s->piece < PX_GRAM_FLUSH) s->piece = PX_GRAM_FLUSH;
    s->n_pieces = d ? (d + s->piece - 1) / s->piece : 1;
    s->partial = px_alloc(s->n_pieces * s->n_max * sizeof(double), "distance partials");
    if (!s->partial) {
        free(s);
        return PX_ENOMEM;
    }
    *out = s;
    return PX_OK;
}

void px__sqdist_destroy(px__sqdist *s)
{
    if (!s) return;
    px_free(s->partial);
    free(s);
}

static void px__sqdist_piece(void *arg, size_t t, int thread)
{
    (void)thread;
    px__sqdist *s = arg;
    size_t lo = t * s->piece, hi = lo + s->piece < s->d ? lo + s->piece : s->d;
    double *P = s->partial + t * s->n_max;
    for (size_t i = 0; i < s->n; i++) {
        const float *x = s->rows[i];
        double acc = 0;
        for (size_t f0 = lo; f0 < hi; f0 += PX_GRAM_FLUSH) {
            size_t f1 = f0 + PX_GRAM_FLUSH < hi ? f0 + PX_GRAM_FLUSH : hi;
            size_t wv = f0 + (f1 - f0) / 16 * 16;
            px__v16 a = {0};
            for (size_t c = f0; c < wv; c += 16) {
                px__v16 vx, vv = {0};
                memcpy(&vx, x + c, sizeof vx);
                if (s->v) memcpy(&vv, s->v + c, sizeof vv);
                px__v16 u = vx - vv;
                a += u * u;
            }
            acc += px__hsum(a);
            for (size_t c = wv; c < f1; c++) {
                double u = (double)x[c] - (s->v ? (double)s->v[c] : 0.0);
                acc += u * u;
            }
        }
        P[i] = acc;
    }
}

void px__sqdist_run(px__sqdist *s, const float *const *rows, size_t n, const float *v, double *out)
{
    s->rows = rows;
    s->v = v;
    s->n = n;
    for (size_t i = 0; i < n; i++)
        out[i] = 0;
    if (s->d == 0) return;
    px_pool_run(s->pool, s->n_pieces, px__sqdist_piece, s);
    for (size_t t = 0; t < s->n_pieces; t++)
        for (size_t i = 0; i < n; i++)
            out[i] += s->partial[t * s->n_max + i];
}
