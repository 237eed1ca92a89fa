/* flag.c - the Flag Aggregator (Almasi et al., ICLR 2024) in the n x n Gram form of
 * ALGORITHMS.md section 1.
 *
 * The subspace Y (d x m) that the IRLS iterations move is never formed: every iterate lies in
 * span(X), so it is kept as Y = X B (B: n x m), plus, for a random or warm start, a part on the
 * start rows Z (Y0 = Z R^-1 with Z^T Z = R^T R). One Gram pass gives K = X^T X (and Z^T X, Z^T Z
 * for those starts); everything else is n x n in double with LAPACKE (dpotrf, dsyevd); one
 * combination pass writes out = Y (C 1) / m, where C = Y^T X (and, with warm_start, the new
 * subspace Y = X B for the next step, which is the only d x m thing this file keeps).
 *
 * IRLS step (ALGORITHMS.md section 1): a_i = (|1 - ||c_i||^2| + eps)^(-1/4), M = diag(a^2)
 * (+ the Laplacian of the pairwise weights when lambda > 0), L = chol(M), S = L^T K L = V s V^T,
 * B = L V_m s_m^(-1/2), C = B^T K; stop after T steps, when E(Y) stops decreasing by more than
 * tol (keeping the previous Y), or when E(Y) <= tol.
 */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "base/rng.h"

#define PX_FLAG_EPS  1e-7
#define PX_FLAG_TOL  1e-10
#define PX_FLAG_DROP 1e-12 /* eigenvalues below this fraction of the largest are dropped */

typedef struct {
    /* parameters */
    uint32_t m_param, iters;
    double lambda;
    px_agg_init init;
    bool warm, rescale;
    uint64_t seed;
    size_t n_max, d, m_cap;
    /* passes */
    px__gram *gram;
    px__mix *mix;
    /* warm start state: the previous step's subspace, y_rows x d floats */
    float *Y;
    size_t y_rows;
    /* n x n work, all column-major with leading dimension n (or r for G) */
    double *G, *K, *nu, *inv, *Kc, *w_eig, *work, *C, *Cn, *B, *Bn, *Dz, *M, *L, *T1, *S, *a;
    double *R, *ZX, *c1, *tmp;
    lapack_int *iwork;
    lapack_int lwork, liwork;
    const float **rows;
    float *A;
    float **outs;
} px__flag_ctx;

static void px__flag_destroy(void *ctx)
{
    px__flag_ctx *c = ctx;
    if (!c) return;
    px__gram_destroy(c->gram);
    px__mix_destroy(c->mix);
    px_free(c->Y);
    double *bufs[] = {c->G,  c->K,  c->nu, c->inv, c->Kc, c->w_eig, c->work,
                      c->C,  c->Cn, c->B,  c->Bn,  c->Dz, c->M,     c->L,
                      c->T1, c->S,  c->a,  c->R,   c->ZX, c->c1,    c->tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c->iwork);
    free(c->rows);
    free(c->A);
    free(c->outs);
    free(c);
}

static size_t px__flag_m(const px__flag_ctx *c, size_t n)
{
    size_t m = c->m_param ? c->m_param : (n + 1) / 2;
    if (m > n) m = n;
    if (m < 1) m = 1;
    return m;
}

static px_status px__flag_create(void **ctx, const px_agg_params *p, size_t n_max, size_t d,
                                 const px_layer_table *layers, px_pool *pool)
{
    px__flag_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "flag: cannot allocate");
    c->m_param = p->m;
    c->iters = p->iters;
    c->lambda = p->lambda;
    c->init = p->init;
    c->warm = p->warm_start;
    c->rescale = p->rescale;
    c->seed = p->seed;
    c->n_max = n_max;
    c->d = d;
    c->m_cap = px__flag_m(c, n_max);
    size_t extra = (c->warm || c->init == PX_AGG_INIT_RANDOM) ? c->m_cap : 0;
    size_t gen = c->init == PX_AGG_INIT_RANDOM ? c->m_cap : 0;
    size_t r = n_max + extra, n = n_max;
    px_status st = px__gram_create(&c->gram, r, gen, d, NULL, pool);
    if (st == PX_OK)
        st = px__mix_create(&c->mix, r, gen, 1 + (c->warm ? c->m_cap : 0), d, NULL, pool);
    if (st < 0) {
        px__flag_destroy(c);
        return px_error_context(st, "flag");
    }
    if (c->warm) {
        c->Y = px_alloc(c->m_cap * d * sizeof(float), "flag warm-start subspace");
        if (!c->Y) {
            px__flag_destroy(c);
            return px_error_context(PX_ENOMEM, "flag");
        }
    }
    c->lwork = (lapack_int)(1 + 6 * n + 2 * n * n);
    c->liwork = (lapack_int)(3 + 5 * n);
    size_t nn = n * n;
    c->G = malloc(r * r * sizeof(double));
    c->K = malloc(nn * sizeof(double));
    c->Kc = malloc(nn * sizeof(double));
    c->nu = malloc(n * sizeof(double));
    c->inv = malloc(n * sizeof(double));
    c->w_eig = malloc(n * sizeof(double));
    c->work = malloc((size_t)c->lwork * sizeof(double));
    c->iwork = malloc((size_t)c->liwork * sizeof(lapack_int));
    c->C = malloc(r * n * sizeof(double));
    c->Cn = malloc(r * n * sizeof(double));
    c->B = malloc(nn * sizeof(double));
    c->Bn = malloc(nn * sizeof(double));
    c->Dz = malloc(r * r * sizeof(double));
    c->M = malloc(nn * sizeof(double));
    c->L = malloc(nn * sizeof(double));
    c->T1 = malloc(nn * sizeof(double));
    c->S = malloc(nn * sizeof(double));
    c->a = malloc(n * sizeof(double));
    c->R = malloc(r * r * sizeof(double));
    c->ZX = malloc(r * n * sizeof(double));
    c->c1 = malloc(r * sizeof(double));
    c->tmp = malloc((r + n) * sizeof(double));
    c->rows = malloc(r * sizeof *c->rows);
    c->A = malloc((1 + c->m_cap) * r * sizeof(float));
    c->outs = malloc((1 + c->m_cap) * sizeof *c->outs);
    if (!c->G || !c->K || !c->Kc || !c->nu || !c->inv || !c->w_eig || !c->work || !c->iwork ||
        !c->C || !c->Cn || !c->B || !c->Bn || !c->Dz || !c->M || !c->L || !c->T1 || !c->S ||
        !c->a || !c->R || !c->ZX || !c->c1 || !c->tmp || !c->rows || !c->A || !c->outs) {
        px__flag_destroy(c);
        return px_error(PX_ENOMEM, "flag: cannot allocate");
    }
    /* the first LAPACK calls page the library's code in (milliseconds): pay it here, not in
     * the first step */
    c->S[0] = 1.0;
    LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', 1, c->S, 1);
    c->S[0] = 1.0;
    LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', 1, c->S, 1, c->w_eig, c->work, c->lwork,
                        c->iwork, c->liwork);
    *ctx = c;
    return PX_OK;
}

/* Random start rows: approximately standard normal values (a sum of four 16-bit uniforms,
 * rescaled to unit variance), one stream per (row, 512-column block), the same at every step
 * as in the reference (which reseeds with seed 1 on every call). */
static void px__flag_gen(void *arg, size_t k, size_t col, size_t count, float *dst)
{
    const px__flag_ctx *c = arg;
    px_rng r;
    px_rng_init(&r, c->seed, PX_STREAM_AGG, (1ull << 32) + k, col / PX_GEN_BLOCK);
    for (size_t i = 0; i < count; i++) {
        uint64_t u = px_rng_u64(&r);
        uint32_t s = (uint32_t)(u & 0xFFFF) + (uint32_t)((u >> 16) & 0xFFFF) +
                     (uint32_t)((u >> 32) & 0xFFFF) + (uint32_t)(u >> 48);
        dst[i] = (float)(((double)s + 2.0) / 65536.0 - 2.0) * 1.7320508f;
    }
}

/* E(Y) = sum_i sqrt(max(0, 1 - ||c_i||^2)) + lambda/(n(n-1)) sum_{i!=j} sqrt(max(0, 1 -
 * ||c_i - c_j||^2)); C is m x n column-major (column i = c_i). */
static double px__flag_energy(const double *C, size_t m, size_t n, double lambda)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < m; k++)
            s += C[i * m + k] * C[i * m + k];
        e += sqrt(fmax(0.0, 1.0 - s));
    }
    if (lambda > 0 && n > 1) {
        double pe = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                if (i == j) continue;
                double s = 0;
                for (size_t k = 0; k < m; k++) {
                    double t = C[i * m + k] - C[j * m + k];
                    s += t * t;
                }
                pe += sqrt(fmax(0.0, 1.0 - s));
            }
        e += lambda / ((double)n * (double)(n - 1)) * pe;
    }
    return e;
}

/* Out = Bt^T K for B (n x m, column-major): C (m x n), column i = c_i. */
static void px__flag_coords(const double *B, const double *K, size_t n, size_t m, double *C)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m; k++) {
            double s = 0;
            for (size_t j = 0; j < n; j++)
                s += B[k * n + j] * K[i * n + j];
            C[i * m + k] = s;
        }
}

/* Top-m eigenpairs of the n x n symmetric S (overwritten by its eigenvectors); returns how
 * many are kept (eigenvalues above PX_FLAG_DROP times the largest), or -1 if LAPACK failed.
 * The kept ones are in columns n-1, n-2, ... of S with eigenvalues w[n-1], w[n-2], ... */
static long px__flag_eig(px__flag_ctx *c, double *S, size_t n, size_t m)
{
    lapack_int info =
        LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, S, (lapack_int)n, c->w_eig,
                            c->work, c->lwork, c->iwork, c->liwork);
    if (info != 0) return -1;
    double smax = c->w_eig[n - 1];
    size_t kept = 0;
    while (kept < m && kept < n) {
        double s = c->w_eig[n - 1 - kept];
        if (!(s > 0) || !(s > PX_FLAG_DROP * smax)) break;
        kept++;
    }
    return (long)kept;
}

/* The whole rule on x[0..n), or, with Kin (the n x n Gram of the inputs, row-major), only the
 * weights of the output on the inputs (into w_out; no pass over the data; PCA start only). */
static px_status px__flag_any(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              bool screen, const double *Kin, double *w_out)
{
    px__flag_ctx *c = ctx;
    size_t m = px__flag_m(c, n);
    /* start rows Z: the stored subspace (warm start after the first step), or generated */
    size_t n_extra = 0, n_gen = 0;
    if (Kin) {
        /* from a given Gram matrix: no start rows */
    } else if (c->warm && c->y_rows > 0) {
        n_extra = c->y_rows;
    } else if (c->init == PX_AGG_INIT_RANDOM) {
        n_gen = m < d ? m : d;
        n_extra = n_gen;
    }
    size_t n_stored = n_gen ? 0 : n_extra, r = n + n_extra;
    for (size_t i = 0; i < n && !Kin; i++)
        c->rows[i] = x[i];
    for (size_t k = 0; k < n_stored && !Kin; k++)
        c->rows[n + k] = c->Y + k * d;

    /* pass 1: the Gram matrix of [G; Z] */
    double *G = c->G;
    if (Kin) {
        memcpy(G, Kin, n * n * sizeof *G);
    } else {
        px__gram_run(c->gram, c->rows, n + n_stored, n_gen, px__flag_gen, c, G);
        if (screen && !px__diag_finite(G, r, n)) return PX_AGG_NONFINITE;
    }
    for (size_t i = 0; i < n; i++) {
        double g = G[i * r + i];
        c->nu[i] = isfinite(g) ? sqrt(g) : INFINITY;
        /* an input whose norm overflowed float is left out (x_i = 0): it cannot poison K */
        c->inv[i] = isfinite(g) ? 1.0 / fmax(sqrt(g), 1e-12) : 0.0;
    }
    double *K = c->K;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            K[i * n + j] = c->inv[i] && c->inv[j] ? G[i * r + j] * c->inv[i] * c->inv[j] : 0.0;

    /* the start: C = Y0^T X, and Y0 = X B + Z Dz */
    size_t mc = 0;     /* columns of the current Y */
    bool on_z = false; /* the current Y is Y0 = Z Dz (B = 0) */
    if (n_extra > 0) {
        size_t mz = n_extra;
        double *R = c->R;
        for (size_t a = 0; a < mz; a++)
            for (size_t b = 0; b < mz; b++)
                R[b * mz + a] = G[(n + a) * r + (n + b)];
        lapack_int info =
            LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)mz, R, (lapack_int)mz);
        if (info == 0) {
            /* C = R^-T (Z^T X): forward substitution with the upper factor, column by column */
            for (size_t i = 0; i < n; i++)
                for (size_t a = 0; a < mz; a++) {
                    double s = G[(n + a) * r + i] * c->inv[i];
                    for (size_t b = 0; b < a; b++)
                        s -= R[a * mz + b] * c->C[i * mz + b];
                    c->C[i * mz + a] = s / R[a * mz + a];
                }
            /* Dz = R^-1 (upper triangular inverse), mz x mz column-major */
            memset(c->Dz, 0, mz * mz * sizeof(double));
            for (size_t col = 0; col < mz; col++) {
                for (size_t a = mz; a-- > 0;) {
                    double s = a == col ? 1.0 : 0.0;
                    for (size_t b = a + 1; b < mz; b++)
                        s -= R[b * mz + a] * c->Dz[col * mz + b];
                    c->Dz[col * mz + a] = s / R[a * mz + a];
                }
            }
            mc = mz;
            on_z = true;
        }
        /* a rank-deficient start (fewer columns than m, or a zero stored subspace) falls back
         * to the PCA start below */
    }
    if (!on_z) {
        memcpy(c->S, K, n * n * sizeof(double));
        long kept = px__flag_eig(c, c->S, n, m);
        if (kept < 0) return px_error(PX_ERUNTIME, "flag: eigen-decomposition of X^T X failed");
        mc = (size_t)kept;
        for (size_t k = 0; k < mc; k++) {
            double s = c->w_eig[n - 1 - k];
            for (size_t j = 0; j < n; j++)
                c->B[k * n + j] = c->S[(n - 1 - k) * n + j] / sqrt(s);
        }
        px__flag_coords(c->B, K, n, mc, c->C);
    }
    double E = px__flag_energy(c->C, mc, n, c->lambda);

    /* IRLS */
    for (uint32_t t = 0; t < c->iters && E > PX_FLAG_TOL; t++) {
        double *M = c->M, *L = c->L;
        memset(M, 0, n * n * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t k = 0; k < mc; k++)
                s += c->C[i * mc + k] * c->C[i * mc + k];
            double ai = pow(fabs(1.0 - s) + PX_FLAG_EPS, -0.25);
            M[i * n + i] = ai * ai;
        }
        if (c->lambda > 0 && n > 1) {
            double coef = c->lambda / ((double)n * (double)(n - 1));
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    if (i == j) continue;
                    double s = 0;
                    for (size_t k = 0; k < mc; k++) {
                        double u = c->C[i * mc + k] - c->C[j * mc + k];
                        s += u * u;
                    }
                    double b = pow(fabs(1.0 - s) + PX_FLAG_EPS, -0.25) * coef;
                    double w = 2.0 * b * b;
                    M[j * n + i] -= w;
                    M[i * n + i] += w;
                }
        }
        memcpy(L, M, n * n * sizeof(double));
        if (LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, L, (lapack_int)n) != 0)
            return px_error(PX_ERUNTIME, "flag: Cholesky factor of the IRLS weights failed");
        for (size_t col = 0; col < n; col++)
            for (size_t row = 0; row < col; row++)
                L[col * n + row] = 0.0;
        /* S = L^T K L */
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < n; i++) {
                double s = 0;
                for (size_t k = j; k < n; k++)
                    s += K[k * n + i] * L[j * n + k];
                c->T1[j * n + i] = s;
            }
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < n; i++) {
                double s = 0;
                for (size_t k = i; k < n; k++)
                    s += L[i * n + k] * c->T1[j * n + k];
                c->S[j * n + i] = s;
            }
        long kept = px__flag_eig(c, c->S, n, m);
        if (kept < 0) return px_error(PX_ERUNTIME, "flag: eigen-decomposition of L^T K L failed");
        size_t mn = (size_t)kept;
        /* Bn = L V_m s^(-1/2) */
        for (size_t k = 0; k < mn; k++) {
            double s = c->w_eig[n - 1 - k];
            const double *v = c->S + (n - 1 - k) * n;
            for (size_t i = 0; i < n; i++) {
                double acc = 0;
                for (size_t j = 0; j <= i; j++)
                    acc += L[j * n + i] * v[j];
                c->Bn[k * n + i] = acc / sqrt(s);
            }
        }
        px__flag_coords(c->Bn, K, n, mn, c->Cn);
        double En = px__flag_energy(c->Cn, mn, n, c->lambda);
        if (!(E - En > PX_FLAG_TOL)) break; /* no longer decreasing: keep the previous Y */
        memcpy(c->B, c->Bn, n * mn * sizeof(double));
        memcpy(c->C, c->Cn, n * mn * sizeof(double));
        mc = mn;
        on_z = false;
        E = En;
    }

    /* pass 2: out = Y (C 1) / m (optionally times the median input norm), and the new subspace */
    double scale = 1.0 / (double)m;
    if (c->rescale) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(c->nu[i])) c->tmp[cnt++] = c->nu[i];
        scale *= px__median_double(c->tmp, cnt);
    }
    for (size_t k = 0; k < mc; k++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += c->C[i * mc + k];
        c->c1[k] = s;
    }
    size_t rr = on_z ? r : n; /* rows the output reads */
    size_t n_out = 1 + (c->warm ? mc : 0);
    float *A = c->A;
    memset(A, 0, n_out * rr * sizeof(float));
    for (size_t k = 0; k < mc; k++) {
        for (size_t i = 0; i < rr; i++) {
            /* column k of Y, as weights on the rows: X B or Z Dz */
            double yk =
                on_z ? (i < n ? 0.0 : c->Dz[k * n_extra + (i - n)]) : c->B[k * n + i] * c->inv[i];
            A[i] += (float)(yk * c->c1[k] * scale);
            if (c->warm) A[(1 + k) * rr + i] = (float)yk;
        }
    }
    if (w_out) {
        for (size_t i = 0; i < n; i++)
            w_out[i] = A[i];
        return PX_OK;
    }
    c->outs[0] = out;
    for (size_t k = 0; k + 1 < n_out; k++)
        c->outs[1 + k] = c->Y + k * d;
    px__mix_run(c->mix, c->rows, on_z ? n + n_stored : n, on_z ? n_gen : 0, px__flag_gen, c, A,
                n_out, c->outs);
    if (c->warm) c->y_rows = mc;
    return PX_OK;
}

static px_status px__flag_run(void *ctx, const float *const *x, size_t n, size_t d, float *out,
                              uint64_t step)
{
    return px__flag_any(ctx, x, n, d, out, false, NULL, NULL);
}

static px_status px__flag_run_screened(void *ctx, const float *const *x, size_t n, size_t d,
                                       float *out, uint64_t step)
{
    return px__flag_any(ctx, x, n, d, out, true, NULL, NULL);
}

static px_status px__flag_run_gram(void *ctx, const double *K, size_t n, double *w, uint64_t step)
{
    px__flag_ctx *c = ctx;
    /* a random or warm start needs its start rows in the data passes */
    if (c->warm || c->init != PX_AGG_INIT_PCA) return PX_ENOTSUP;
    return px__flag_any(ctx, NULL, n, c->d, NULL, false, K, w);
}

/* State: with warm_start, the subspace of the last step (y_rows x d floats, y_rows <= m_cap;
 * 0 rows before the first step):
 *   u32 m_cap (the columns the context holds), u32 y_rows, then the rows' floats, row by row.
 * Without warm_start every step starts afresh and the state is empty. */
static size_t px__flag_state_bytes(const void *ctx)
{
    const px__flag_ctx *c = ctx;
    return c->warm ? 8 + c->y_rows * c->d * 4 : 0;
}

static void px__flag_state_save(const void *ctx, unsigned char *out)
{
    const px__flag_ctx *c = ctx;
    if (!c->warm) return;
    px__put_u32(out, (uint32_t)c->m_cap);
    px__put_u32(out + 4, (uint32_t)c->y_rows);
    for (size_t j = 0; j < c->y_rows * c->d; j++)
        px__put_f32(out + 8 + 4 * j, c->Y[j]);
}

static px_status px__flag_state_load(void *ctx, const unsigned char *in, size_t len)
{
    px__flag_ctx *c = ctx;
    if (!c->warm) {
        if (len != 0)
            return px_error(PX_EINVAL,
                            "flag: the saved state holds a warm-start subspace (%zu bytes), "
                            "this aggregator has warm_start = 0",
                            len);
        return PX_OK;
    }
    if (len == 0)
        return px_error(PX_EINVAL, "flag: the saved state has no warm-start subspace (saved with "
                                   "warm_start = 0), this aggregator has warm_start = 1");
    if (len < 8)
        return px_error(PX_EINVAL,
                        "flag: %zu bytes of warm-start state, shorter than its 8-byte "
                        "header",
                        len);
    uint32_t m_cap = px__get_u32(in), rows = px__get_u32(in + 4);
    if (m_cap != c->m_cap)
        return px_error(PX_EINVAL,
                        "flag: warm-start subspace saved for up to %u columns, this aggregator "
                        "keeps up to %zu (m and n_max decide it)",
                        m_cap, c->m_cap);
    if (rows > c->m_cap)
        return px_error(PX_EINVAL, "flag: warm-start subspace of %u columns, more than its %zu",
                        rows, c->m_cap);
    if (len != 8 + (size_t)rows * c->d * 4)
        return px_error(PX_EINVAL,
                        "flag: %zu bytes of warm-start state, expected %zu for %u columns of "
                        "d = %zu floats",
                        len, 8 + (size_t)rows * c->d * 4, rows, c->d);
    /* a non-finite start row would make the Gram pass, and so every later step, NaN */
    for (size_t j = 0; j < (size_t)rows * c->d; j++) {
        float v = px__get_f32(in + 8 + 4 * j);
        if (!isfinite(v))
            return px_error(PX_EINVAL,
                            "flag: the saved warm-start subspace has a non-finite value (%g) in "
                            "column %zu at coordinate %zu",
                            (double)v, j / c->d, j % c->d);
    }
    for (size_t j = 0; j < (size_t)rows * c->d; j++)
        c->Y[j] = px__get_f32(in + 8 + 4 * j);
    c->y_rows = rows;
    return PX_OK;
}

const px_agg_rule px_agg_rule_flag = {
    .name = "flag",
    .summary = "Flag Aggregator: IRLS for the m-dim subspace of the normalised inputs (Gram "
               "form), output Y Y^T sum x_i / m",
    .check = NULL,
    .create = px__flag_create,
    .run = px__flag_run,
    .destroy = px__flag_destroy,
    .run_screened = px__flag_run_screened,
    .run_gram = px__flag_run_gram,
    .state_bytes = px__flag_state_bytes,
    .state_save = px__flag_state_save,
    .state_load = px__flag_state_load,
};
