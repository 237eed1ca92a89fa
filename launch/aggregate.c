/* aggregate.c - the `aggregate` tool: applies one aggregation rule (with its pre-aggregation
 * chain) to an (n, d) float32 NumPy array and writes the (d,) result.
 *
 *   aggregate --rule NAME [--set key=value]... [--pre LIST] [--threads N] IN.npy OUT.npy
 *
 * Prints one line `rule=NAME n=N d=D time_ms=X`, X the time of the aggregation alone (no file
 * I/O, no allocation). A single call has no history: stateful rules start fresh, and fedld
 * applies its principal-gradient branch to every layer (fedld_history=1 unless --set says
 * otherwise). Exit 0 on success, 2 on a bad command line or bad input (file content, shape,
 * dtype, rule, parameters, validity rule), 1 on a run-time failure (I/O, memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/aggregator.h"
#include "base/limits.h"
#include "runtime/npy.h"

/* OpenBLAS (libopenblas, linked through LAPACKE): the aggregators call LAPACK only on n x n
 * problems, where BLAS threads would spin and take the cores from the aggregator's pool. */
void openblas_set_num_threads(int num_threads);

/* The tool's starting parameters: the library's defaults, except that one call has no history,
 * so fedld uses principal gradients on every layer. --help shows these. */
static void tool_defaults(px_agg_params *p)
{
    px_agg_params_default(p);
    p->fedld_history = true;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: aggregate --rule NAME [--set key=value]... [--pre LIST] [--threads N] "
        "IN.npy OUT.npy\n"
        "       aggregate --help | --version\n"
        "\n"
        "Reads an (n, d) float32 C-order .npy, aggregates its n rows with rule NAME, writes the\n"
        "(d,) float32 result to OUT.npy and prints `rule=NAME n=N d=D time_ms=X` (X: the\n"
        "aggregation alone). Rows with NaN or Inf are dropped first (reported on stderr).\n"
        "A single call has no history (stateful rules start fresh; fedld uses its principal-\n"
        "gradient branch on every layer). Exit 2 on bad input, 1 on a run-time failure.\n"
        "\n"
        "options:\n"
        "  --rule NAME        aggregation rule (below)\n"
        "  --set key=value    a rule parameter (below); repeatable\n"
        "  --pre LIST         pre-aggregation chain, same as --set pre=LIST\n"
        "  --threads N        threads (default: the number of cores)\n"
        "\nrules:\n");
    for (size_t i = 0; i < px_agg_rule_count(); i++) {
        const px_agg_rule *r = px_agg_rule_at(i);
        fprintf(out, "  %-13s %s\n", r->name, r->summary);
    }
    fprintf(out, "\npre-aggregation steps (--pre, applied in the order given):\n");
    for (size_t i = 0; i < px_agg_pre_count(); i++)
        fprintf(out, "  %-13s %s\n", px_agg_pre_name(i), px_agg_pre_summary(i));
    fprintf(out, "\nparameters (--set key=value; default; used by):\n");
    px_agg_params def;
    tool_defaults(&def);
    for (size_t i = 0; i < px_agg_param_count(); i++) {
        const px_agg_param_info *k = px_agg_param_at(i);
        char value[64], range[64];
        if (px_agg_params_get_text(&def, k->key, value, sizeof value) < 0 || !value[0])
            snprintf(value, sizeof value, "(none)");
        px_agg_param_range(k, range, sizeof range);
        fprintf(out, "  %-13s default %-11s [%s]\n  %13s %s%s%s%s\n", k->key, value, k->used_by, "",
                k->help, range[0] ? " (" : "", range, range[0] ? ")" : "");
    }
    fprintf(out, "\nvalidity (n after the chain): trimmed_mean, meamed, geomed n >= 2f+1; krum, "
                 "multi_krum n >= 2f+3;\nbulyan n >= 4f+3; nnm n >= f+1; bucketing hands on "
                 "ceil(n/bucket_size) vectors.\n");
}

/* ---- .npy ---------------------------------------------------------------------------------- */

/* Reads the (n, d) float32 input. Returns 0, 1 (a system fault) or 2 (bad input). */
static int read_input(const char *path, float **data, size_t *n, size_t *d)
{
    size_t dims[8];
    int ndim;
    px_status st = px_npy_read_f32(path, data, dims, &ndim, 8);
    if (st == PX_OK && ndim != 2)
        st = px_error(PX_EINVAL, "%s: shape has %d dimensions, expected 2 (n, d)", path, ndim);
    else if (st == PX_OK && (dims[0] == 0 || dims[1] == 0))
        st = px_error(PX_EINVAL, "%s: shape (%zu, %zu) is empty", path, dims[0], dims[1]);
    if (st < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        px_free(*data);
        *data = NULL;
        return st == PX_EINVAL ? 2 : 1;
    }
    *n = dims[0];
    *d = dims[1];
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *rule = NULL, *in = NULL, *out = NULL;
    int threads = px_cpu_count();
    px_agg_params p;
    tool_defaults(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("aggregate (phalanx) %s\n", PX_VERSION_STRING);
            return 0;
        }
        if ((!strcmp(a, "--rule") || !strcmp(a, "--set") || !strcmp(a, "--pre") ||
             !strcmp(a, "--threads")) &&
            i + 1 >= argc) {
            fprintf(stderr, "aggregate: %s needs a value (aggregate --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--rule")) {
            rule = argv[++i];
        } else if (!strcmp(a, "--set") || !strcmp(a, "--pre")) {
            char kv[4096];
            if (!strcmp(a, "--pre")) {
                snprintf(kv, sizeof kv, "pre=%s", argv[++i]);
            } else {
                snprintf(kv, sizeof kv, "%s", argv[++i]);
            }
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "aggregate: --set %s: expected key=value\n", kv);
                return 2;
            }
            *eq = 0;
            if (px_agg_params_set(&p, kv, eq + 1) < 0) {
                fprintf(stderr, "aggregate: %s\n", px_errmsg());
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            char *e;
            long t = strtol(argv[++i], &e, 10);
            if (*e || t < 1 || t > (long)PX_MAX_THREADS) {
                fprintf(stderr, "aggregate: --threads: expected 1..%u, got '%s'\n", PX_MAX_THREADS,
                        argv[i]);
                return 2;
            }
            threads = (int)t;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "aggregate: unknown option '%s' (aggregate --help)\n", a);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "aggregate: unexpected argument '%s' (aggregate --help)\n", a);
            return 2;
        }
    }
    if (!rule || !in || !out) {
        fprintf(stderr, "aggregate: %s (aggregate --help)\n",
                !rule ? "--rule NAME is required" : "IN.npy and OUT.npy are required");
        return 2;
    }
    if (!px_agg_find(rule)) {
        px_agg_validate(rule, &p, 1);
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        return 2;
    }
    float *data = NULL;
    size_t n = 0, d = 0;
    int rc = read_input(in, &data, &n, &d);
    if (rc) return rc;
    if (px_agg_validate(rule, &p, n) < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        px_free(data);
        return 2;
    }
    openblas_set_num_threads(1);
    px_pool *pool = NULL;
    px_agg *agg = NULL;
    const float **rows = malloc(n * sizeof *rows);
    float *result = px_alloc(d * sizeof(float), "output");
    if (!rows || !result || px_pool_create(&pool, threads) < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        rc = 1;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = data + i * d;
    px_status st = px_agg_create(&agg, rule, &p, n, d, NULL, pool);
    if (st < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        rc = st == PX_EINVAL ? 2 : 1;
        goto done;
    }
    px_agg_report rep;
    double t0 = px_now_ms();
    st = px_agg_run(agg, rows, n, 0, result, &rep);
    double ms = px_now_ms() - t0;
    if (rep.n_nonfinite)
        fprintf(stderr, "aggregate: dropped %zu of %zu rows with NaN or Inf values\n",
                rep.n_nonfinite, n);
    if (st < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        rc = st == PX_EINVAL ? 2 : 1;
        goto done;
    }
    if (px_npy_write_f32(out, result, &d, 1) < 0) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        rc = 1;
        goto done;
    }
    if (rc == 0) printf("rule=%s n=%zu d=%zu time_ms=%.3f\n", rule, n, d, ms);
done:
    px_agg_destroy(agg);
    px_pool_destroy(pool);
    px_free(result);
    free(rows);
    px_free(data);
    return rc;
}
