/* dataset.c - the gzip IDX reader (zlib), Fashion-MNIST loading, batch conversion and the
 * per-worker sampler (see dataset.h). */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "base/rng.h"
#include "base/table.h"

#define PX_FMNIST_PACKAGE "dataset-fashion-mnist"

static px_status px__read_exact(gzFile f, const char *path, void *buf, size_t len, const char *what)
{
    size_t done = 0;
    while (done < len) {
        unsigned chunk = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
        int got = gzread(f, (char *)buf + done, chunk);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return px_error(PX_EINVAL, "%s: corrupt gzip data while reading %s (%s)", path, what,
                            msg);
        }
        if (got == 0)
            return px_error(PX_EINVAL, "%s: file ends early: %zu of %zu bytes of %s", path, done,
                            len, what);
        done += (size_t)got;
    }
    return PX_OK;
}

/* Reads and checks the IDX header of an open file: fills dims (dims[1] = dims[2] = 1 for
 * labels). */
static px_status px__idx_header(gzFile f, const char *path, int expect_dims, size_t dims[3])
{
    unsigned char head[16];
    size_t head_len = 4 + 4 * (size_t)expect_dims;
    PX_CHECK(px__read_exact(f, path, head, head_len, "the IDX header"));
    /* magic: two zero bytes, the type code (0x08 = unsigned byte), the number of dimensions */
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != expect_dims)
        return px_error(PX_EINVAL,
                        "%s: not an IDX file of unsigned bytes with %d dimension%s "
                        "(magic %02x %02x %02x %02x)",
                        path, expect_dims, expect_dims > 1 ? "s" : "", head[0], head[1], head[2],
                        head[3]);
    dims[0] = 0;
    dims[1] = dims[2] = 1;
    for (int i = 0; i < expect_dims; i++)
        dims[i] = ((size_t)head[4 + 4 * i] << 24) | ((size_t)head[5 + 4 * i] << 16) |
                  ((size_t)head[6 + 4 * i] << 8) | head[7 + 4 * i];
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || dims[1] * dims[2] > (1u << 20) ||
        dims[0] > (1u << 28))
        return px_error(PX_EINVAL, "%s: implausible IDX dimensions %zu x %zu x %zu", path, dims[0],
                        dims[1], dims[2]);
    return PX_OK;
}

/* Deflate's largest expansion: a match copies at most 258 bytes and, with one-bit codes for
 * its length and its distance, costs at least 2 bits, so a compressed byte yields at most
 * 4 x 258 = 1032 bytes. The gzip header and trailer, further members, block headers and the
 * literal that must precede the first match only lower the ratio, and a file zlib reads as
 * plain bytes (not gzip) yields 1 per byte: a file of S bytes decodes to at most 1032 S. */
#define PX_GZIP_MAX_RATIO 1032u

static px_status px__idx_open(const char *path, gzFile *out, off_t *file_bytes)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return px_error(PX_EINVAL, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return px_error(PX_EINVAL, "%s: not a regular file", path);
    if (file_bytes) *file_bytes = sb.st_size;
    *out = gzopen(path, "rb");
    if (!*out) return px_error(PX_EINVAL, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(*out, 1 << 17);
    return PX_OK;
}

px_status px_idx_read_gz(const char *path, int expect_dims, size_t limit, size_t *count,
                         size_t *item_bytes, uint8_t **data)
{
    *data = NULL;
    gzFile f;
    off_t file_bytes;
    PX_CHECK(px__idx_open(path, &f, &file_bytes));
    px_status st;
    size_t dims[3];
    PX_CHECK_GOTO(px__idx_header(f, path, expect_dims, dims), st, done);
    size_t n = (limit && limit < dims[0]) ? limit : dims[0];
    size_t per = dims[1] * dims[2];
    /* the header is a claim: allocate only what a file of this size can hold (n <= 2^28 and
     * per <= 2^20 by the header checks, so neither product overflows) */
    uint64_t can_hold = (uint64_t)file_bytes * PX_GZIP_MAX_RATIO;
    if ((uint64_t)(4 + 4 * expect_dims) + (uint64_t)n * per > can_hold) {
        st = px_error(PX_EINVAL,
                      "%s: the IDX header claims %zu x %zu x %zu (%zu bytes to read) but a "
                      "file of %lld bytes holds at most %llu bytes (gzip expands at most "
                      "%u:1): a lying header or a truncated file",
                      path, dims[0], dims[1], dims[2], n * per, (long long)file_bytes,
                      (unsigned long long)can_hold, PX_GZIP_MAX_RATIO);
        goto done;
    }
    *data = px_alloc(n * per, path);
    if (!*data) {
        st = PX_ENOMEM;
        goto done;
    }
    PX_CHECK_GOTO(px__read_exact(f, path, *data, n * per, "the data"), st, done);
    if (n == dims[0]) {
        /* the whole file was asked for: it must end here, and its gzip trailer (CRC) must
         * check, which gzread verifies when it reaches the end */
        unsigned char extra;
        int got = gzread(f, &extra, 1);
        if (got < 0) {
            int zerr;
            st = px_error(PX_EINVAL, "%s: corrupt gzip data at the end of the file (%s)", path,
                          gzerror(f, &zerr));
            goto done;
        }
        if (got > 0) {
            st = px_error(PX_EINVAL, "%s: more bytes than the header's %zu items", path, dims[0]);
            goto done;
        }
    }
    *count = n;
    *item_bytes = per;
    st = PX_OK;
done:
    gzclose(f);
    if (st < 0) {
        px_free(*data);
        *data = NULL;
    }
    return st;
}

/* The shape of a split from its two headers alone (a split this process does not load): the
 * example count (after the limit) and the values per example. */
static px_status px__split_shape(px_split *s, const char *dir, const char *prefix, size_t limit)
{
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    size_t di[3] = {0}, dl[3] = {0};
    gzFile f;
    PX_CHECK(px__idx_open(ipath, &f, NULL));
    px_status st = px__idx_header(f, ipath, 3, di);
    gzclose(f);
    PX_CHECK(st);
    PX_CHECK(px__idx_open(lpath, &f, NULL));
    st = px__idx_header(f, lpath, 1, dl);
    gzclose(f);
    PX_CHECK(st);
    if (di[0] != dl[0])
        return px_error(PX_EINVAL, "%s has %zu images but %s has %zu labels", ipath, di[0], lpath,
                        dl[0]);
    s->count = limit && limit < di[0] ? limit : di[0];
    s->features = di[1] * di[2];
    s->rows = di[1];
    s->cols = di[2];
    return PX_OK;
}

static px_status px__load_split(px_split *s, const char *dir, const char *prefix, size_t limit,
                                size_t classes)
{
    char ipath[4096], lpath[4096];
    PX_CHECK(px__split_shape(s, dir, prefix, limit));
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    size_t ni, nl, per, one;
    PX_CHECK(px_idx_read_gz(ipath, 3, limit, &ni, &per, &s->images));
    px_status st = px_idx_read_gz(lpath, 1, limit, &nl, &one, &s->labels);
    if (st < 0) return st;
    if (ni != nl)
        return px_error(PX_EINVAL, "%s has %zu images but %s has %zu labels", ipath, ni, lpath, nl);
    for (size_t i = 0; i < nl; i++)
        if (s->labels[i] >= classes)
            return px_error(PX_EINVAL, "%s: label %u of example %zu is not a class (0..%zu)", lpath,
                            s->labels[i], i, classes - 1);
    s->count = ni;
    s->features = per;
    return PX_OK;
}

px_status px_fmnist_load(px_dataset *ds, const char *dir, int want_train, int want_test,
                         size_t train_limit, size_t test_limit)
{
    memset(ds, 0, sizeof *ds);
    ds->classes = 10;
    ds->input = PX_INPUT_VALUES;
    ds->label_values = 1;
    ds->channels = 1;
    /* per-pixel mean and standard deviation of the Fashion-MNIST training set */
    ds->mean = 0.2860f;
    ds->std = 0.3530f;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return px_error(PX_EINVAL,
                        "Fashion-MNIST not found: %s is not a directory (install the "
                        "Debian package %s: apt-get install %s, or set data.path)",
                        dir, PX_FMNIST_PACKAGE, PX_FMNIST_PACKAGE);
    px_status st = PX_OK;
    /* the splits this process uses are loaded, the others known by their headers: every mode
     * (server, worker rank, one process) sees both shapes and checks them here, once */
    st = want_train ? px__load_split(&ds->train, dir, "train", train_limit, ds->classes)
                    : px__split_shape(&ds->train, dir, "train", train_limit);
    if (st == PX_OK)
        st = want_test ? px__load_split(&ds->test, dir, "t10k", test_limit, ds->classes)
                       : px__split_shape(&ds->test, dir, "t10k", test_limit);
    if (st == PX_OK && ds->train.features != ds->test.features)
        st = px_error(PX_EINVAL,
                      "%s: training images are %zu x %zu (%zu values) but test images are "
                      "%zu x %zu (%zu values): one model cannot take both",
                      dir, ds->train.rows, ds->train.cols, ds->train.features, ds->test.rows,
                      ds->test.cols, ds->test.features);
    if (st < 0) {
        px_dataset_free(ds);
        return px_error_context(st, "Fashion-MNIST (Debian package %s)", PX_FMNIST_PACKAGE);
    }
    return PX_OK;
}

void px_dataset_free(px_dataset *ds)
{
    px_free(ds->train.images);
    px_free(ds->train.labels);
    px_free(ds->test.images);
    px_free(ds->test.labels);
    memset(&ds->train, 0, sizeof ds->train);
    memset(&ds->test, 0, sizeof ds->test);
}

static void px__convert(const px_dataset *ds, const uint8_t *src, size_t features, float *x)
{
    const float a = 1.0f / (255.0f * ds->std), b = -ds->mean / ds->std;
    for (size_t j = 0; j < features; j++)
        x[j] = (float)src[j] * a + b;
}

void px_split_gather(const px_dataset *ds, const px_split *split, const uint32_t *idx, size_t n,
                     float *x, uint8_t *y)
{
    size_t f = split->features;
    for (size_t i = 0; i < n; i++) {
        px__convert(ds, split->images + (size_t)idx[i] * f, f, x + i * f);
        y[i] = split->labels[idx[i]];
    }
}

void px_split_slice(const px_dataset *ds, const px_split *split, size_t first, size_t n, float *x,
                    uint8_t *y)
{
    size_t f = split->features;
    for (size_t i = 0; i < n; i++) {
        px__convert(ds, split->images + (first + i) * f, f, x + i * f);
        y[i] = split->labels[first + i];
    }
}

px_status px_sampler_init(px_sampler *s, uint64_t seed, uint32_t worker, size_t n)
{
    memset(s, 0, sizeof *s);
    if (n == 0 || n > UINT32_MAX) return px_error(PX_EINVAL, "sampler: %zu training examples", n);
    s->seed = seed;
    s->worker = worker;
    s->n = n;
    s->cap = n;
    s->epoch = UINT64_MAX;
    s->perm = px_alloc(n * sizeof *s->perm, "the sampler's permutation");
    return s->perm ? PX_OK : PX_ENOMEM;
}

void px_sampler_retarget(px_sampler *s, uint32_t worker, size_t n)
{
    if (s->worker == worker && s->n == n) return; /* its permutation is still good */
    s->worker = worker;
    s->n = n <= s->cap ? n : s->cap;
    s->epoch = UINT64_MAX;
}

void px_sampler_free(px_sampler *s)
{
    px_free(s->perm);
    s->perm = NULL;
}

static void px__shuffle_epoch(px_sampler *s, uint64_t epoch)
{
    px_rng r;
    px_rng_init(&r, s->seed, PX_STREAM_BATCH, s->worker, epoch);
    for (size_t i = 0; i < s->n; i++)
        s->perm[i] = (uint32_t)i;
    for (size_t i = s->n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)px_rng_below(&r, i + 1);
        uint32_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
    s->epoch = epoch;
}

void px_sampler_batch(px_sampler *s, uint64_t step, size_t batch, uint32_t *idx)
{
    uint64_t pos = step * batch;
    for (size_t i = 0; i < batch; i++, pos++) {
        uint64_t epoch = pos / s->n;
        if (epoch != s->epoch) px__shuffle_epoch(s, epoch);
        idx[i] = s->perm[pos % s->n];
    }
}

/* ---- the registry ---- */

static px_status px__open_fmnist(px_dataset *ds, const px_data_source *src, int want_train,
                                 int want_test)
{
    return px_fmnist_load(ds, src->path, want_train, want_test, src->train_limit, src->test_limit);
}

static px_status px__open_fortunes(px_dataset *ds, const px_data_source *src, int want_train,
                                   int want_test)
{
    return px_fortunes_load(ds, src->path, src->window, src->train_limit, src->test_limit);
}

static const px_dataset_kind px__kinds[] = {
    {"fashion_mnist", "Fashion-MNIST: 28 x 28 grey images, 10 classes (IDX .gz)",
     "/usr/share/datasets/fashion-mnist", px__open_fmnist},
    {"fortunes", "English text of Debian's fortunes, as characters", "/usr/share/games/fortunes",
     px__open_fortunes},
};

#define PX__KINDS (sizeof px__kinds / sizeof px__kinds[0])

const px_dataset_kind *px_dataset_find(const char *name)
{
    return px_table_find(px__kinds, PX__KINDS, sizeof px__kinds[0], name);
}

px_status px_dataset_open(px_dataset *ds, const char *name, const px_data_source *src,
                          int want_train, int want_test)
{
    memset(ds, 0, sizeof *ds);
    const px_dataset_kind *k = px_dataset_find(name);
    if (!k)
        return px_error(PX_EINVAL, "config: data.dataset \"%s\" is not a dataset of this build",
                        name ? name : "");
    px_data_source where = *src;
    if (!where.path || !where.path[0]) where.path = k->default_path;
    PX_CHECK(k->open(ds, &where, want_train, want_test));
    ds->kind = k->name;
    return PX_OK;
}

void px_dataset_gather(const px_dataset *ds, const px_split *split, const uint32_t *idx, size_t n,
                       const px_batch_io *io)
{
    if (ds->input == PX_INPUT_VALUES) {
        px_split_gather(ds, split, idx, n, io->x, io->y);
        return;
    }
    size_t T = split->features; /* a window of T tokens predicts the next T */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *w = split->images + (size_t)idx[i] * split->stride;
        for (size_t t = 0; t < T; t++) {
            io->tokens[i * T + t] = w[t];
            io->y[i * T + t] = w[t + 1];
        }
    }
}

void px_dataset_slice(const px_dataset *ds, const px_split *split, size_t first, size_t n,
                      const px_batch_io *io)
{
    if (ds->input == PX_INPUT_VALUES) {
        px_split_slice(ds, split, first, n, io->x, io->y);
        return;
    }
    size_t T = split->features;
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < T; t++) {
            io->tokens[i * T + t] = split->images[(first + i) * split->stride + t];
            io->y[i * T + t] = split->images[(first + i) * split->stride + t + 1];
        }
}
