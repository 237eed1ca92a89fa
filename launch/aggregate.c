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

/* OpenBLAS (libopenblas, linked through LAPACKE): the aggregators call LAPACK only on n x n
 * problems, where BLAS threads would spin and take the cores from the aggregator's pool. */
void openblas_set_num_threads(int num_threads);

#define PX_NPY_MAX_HEADER 65536

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
    for (size_t i = 0; i < px_agg_param_count(); i++) {
        const px_agg_param_info *k = px_agg_param_at(i);
        fprintf(out, "  %-13s default %-11s [%s]\n  %13s %s\n", k->key, k->default_text, k->used_by,
                "", k->help);
    }
    fprintf(out, "\nvalidity (n after the chain): trimmed_mean, meamed, geomed n >= 2f+1; krum, "
                 "multi_krum n >= 2f+3;\nbulyan n >= 4f+3; nnm n >= f+1; bucketing hands on "
                 "ceil(n/bucket_size) vectors.\n");
}

/* ---- .npy ---------------------------------------------------------------------------------- */

static int bad_input(const char *path, const char *what)
{
    fprintf(stderr, "aggregate: %s: %s\n", path, what);
    return 2;
}

/* Skips spaces; returns the next non-space character position. */
static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* Parses the header dict of a .npy file: {'descr': '<f4', 'fortran_order': False, 'shape':
 * (n, d), } in any key order. Returns 0 or 2 (after printing why). */
static int parse_npy_header(const char *path, const char *h, size_t len, size_t *n, size_t *d)
{
    const char *s = h, *end = h + len;
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    char msg[512];
    while (end > s && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    s = skip_ws(s, end);
    if (s == end || *s != '{') return bad_input(path, "corrupt .npy header (no '{')");
    s++;
    for (;;) {
        s = skip_ws(s, end);
        if (s < end && *s == '}') {
            s++;
            break;
        }
        if (s >= end || *s != '\'') return bad_input(path, "corrupt .npy header (expected a key)");
        const char *k = ++s;
        while (s < end && *s != '\'')
            s++;
        if (s >= end) return bad_input(path, "corrupt .npy header (unterminated key)");
        size_t klen = (size_t)(s - k);
        s = skip_ws(s + 1, end);
        if (s >= end || *s != ':') return bad_input(path, "corrupt .npy header (expected ':')");
        s = skip_ws(s + 1, end);
        if (klen == 5 && !strncmp(k, "descr", 5)) {
            if (seen_descr++) return bad_input(path, "corrupt .npy header (descr twice)");
            if (s >= end || *s != '\'') return bad_input(path, "corrupt .npy header (descr)");
            const char *v = ++s;
            while (s < end && *s != '\'')
                s++;
            if (s >= end) return bad_input(path, "corrupt .npy header (unterminated descr)");
            if (!((s - v == 3 && !strncmp(v, "<f4", 3)))) {
                snprintf(msg, sizeof msg, "dtype '%.*s' is not float32 ('<f4')", (int)(s - v), v);
                return bad_input(path, msg);
            }
            s++;
        } else if (klen == 13 && !strncmp(k, "fortran_order", 13)) {
            if (seen_order++) return bad_input(path, "corrupt .npy header (fortran_order twice)");
            if (end - s >= 5 && !strncmp(s, "False", 5)) {
                s += 5;
            } else if (end - s >= 4 && !strncmp(s, "True", 4)) {
                return bad_input(path, "Fortran-order array: expected C order");
            } else {
                return bad_input(path, "corrupt .npy header (fortran_order)");
            }
        } else if (klen == 5 && !strncmp(k, "shape", 5)) {
            if (seen_shape++) return bad_input(path, "corrupt .npy header (shape twice)");
            if (s >= end || *s != '(') return bad_input(path, "corrupt .npy header (shape)");
            s++;
            size_t dims[8], nd = 0;
            for (;;) {
                s = skip_ws(s, end);
                if (s < end && *s == ')') {
                    s++;
                    break;
                }
                if (s >= end || *s < '0' || *s > '9')
                    return bad_input(path, "corrupt .npy header (shape)");
                errno = 0;
                char *e;
                unsigned long long v = strtoull(s, &e, 10);
                if (errno || e > end) return bad_input(path, "corrupt .npy header (shape)");
                if (nd < 8) dims[nd] = (size_t)v;
                nd++;
                s = skip_ws(e, end);
                if (s < end && *s == ',')
                    s++;
                else if (s < end && *s == ')')
                    continue;
                else
                    return bad_input(path, "corrupt .npy header (shape)");
            }
            if (nd != 2) {
                snprintf(msg, sizeof msg, "shape has %zu dimensions, expected 2 (n, d)", nd);
                return bad_input(path, msg);
            }
            if (dims[0] == 0 || dims[1] == 0) {
                snprintf(msg, sizeof msg, "shape (%zu, %zu) is empty", dims[0], dims[1]);
                return bad_input(path, msg);
            }
            *n = dims[0];
            *d = dims[1];
        } else {
            snprintf(msg, sizeof msg, "corrupt .npy header (unknown key '%.*s')", (int)klen, k);
            return bad_input(path, msg);
        }
        s = skip_ws(s, end);
        if (s < end && *s == ',') s++;
    }
    s = skip_ws(s, end);
    if (s != end) return bad_input(path, "corrupt .npy header (text after '}')");
    if (!seen_descr || !seen_order || !seen_shape)
        return bad_input(path, "corrupt .npy header (descr, fortran_order or shape missing)");
    return 0;
}

/* Reads an (n, d) float32 .npy into a 64-byte aligned buffer. Returns 0, 1 or 2. */
static int read_npy(const char *path, float **data, size_t *n, size_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "aggregate: %s: %s\n", path, strerror(errno));
        return 2;
    }
    int rc = 0;
    unsigned char pre[12];
    char *header = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = bad_input(path, "not a .npy file (bad magic or too short)");
        goto done;
    }
    size_t hlen, hstart;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        hstart = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            rc = bad_input(path, "truncated .npy header");
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        hstart = 12;
    } else {
        char msg[64];
        snprintf(msg, sizeof msg, "unsupported .npy version %u.%u", pre[6], pre[7]);
        rc = bad_input(path, msg);
        goto done;
    }
    if (hlen == 0 || hlen > PX_NPY_MAX_HEADER) {
        rc = bad_input(path, "corrupt .npy header (bad length)");
        goto done;
    }
    header = malloc(hlen + 1);
    if (!header) {
        fprintf(stderr, "aggregate: out of memory\n");
        rc = 1;
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        rc = bad_input(path, "truncated .npy header");
        goto done;
    }
    header[hlen] = 0;
    if (memchr(header, 0, hlen) || header[hlen - 1] != '\n') {
        rc = bad_input(path, "corrupt .npy header (not a newline-terminated text)");
        goto done;
    }
    rc = parse_npy_header(path, header, hlen, n, d);
    if (rc) goto done;
    if (*d > SIZE_MAX / 4 / *n) {
        rc = bad_input(path, "shape too large");
        goto done;
    }
    size_t bytes = *n * *d * 4;
    if (fseek(f, 0, SEEK_END) != 0) {
        fprintf(stderr, "aggregate: %s: %s\n", path, strerror(errno));
        rc = 1;
        goto done;
    }
    long size = ftell(f);
    if (size < 0 || (size_t)size != hstart + hlen + bytes) {
        char msg[160];
        snprintf(msg, sizeof msg, "data is %ld bytes, the header's shape (%zu, %zu) needs %zu%s",
                 size < 0 ? -1L : size - (long)(hstart + hlen), *n, *d, bytes,
                 size >= 0 && (size_t)size < hstart + hlen + bytes ? " (truncated)" : "");
        rc = bad_input(path, msg);
        goto done;
    }
    fseek(f, (long)(hstart + hlen), SEEK_SET);
    *data = px_alloc(bytes, "input array");
    if (!*data) {
        fprintf(stderr, "aggregate: %s\n", px_errmsg());
        rc = 1;
        goto done;
    }
    if (fread(*data, 1, bytes, f) != bytes) {
        fprintf(stderr, "aggregate: %s: read failed\n", path);
        px_free(*data);
        *data = NULL;
        rc = 1;
    }
done:
    free(header);
    fclose(f);
    return rc;
}

/* Writes a (d,) float32 .npy (version 1.0, header padded to 64 bytes). Returns 0 or 1. */
static int write_npy(const char *path, const float *x, size_t d)
{
    char dict[128];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }", d);
    size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)len + pad + 1;
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(hlen & 0xFF),
                             (unsigned char)(hlen >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "aggregate: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(x, sizeof(float), d, f) == d;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        fprintf(stderr, "aggregate: %s: write failed\n", path);
        return 1;
    }
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *rule = NULL, *in = NULL, *out = NULL;
    int threads = px_cpu_count();
    px_agg_params p;
    px_agg_params_default(&p);
    p.fedld_history = true; /* one call, no history: principal gradients everywhere */
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
            if (*e || t < 1 || t > 1024) {
                fprintf(stderr, "aggregate: --threads: expected 1..1024, got '%s'\n", argv[i]);
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
    int rc = read_npy(in, &data, &n, &d);
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
    rc = write_npy(out, result, d);
    if (rc == 0) printf("rule=%s n=%zu d=%zu time_ms=%.3f\n", rule, n, d, ms);
done:
    px_agg_destroy(agg);
    px_pool_destroy(pool);
    px_free(result);
    free(rows);
    px_free(data);
    return rc;
}
