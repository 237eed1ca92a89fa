/* test_dataset.c - the gzip IDX reader on files written here (good, truncated, corrupted,
 * wrong magic, trailing bytes), Fashion-MNIST as Debian ships it, batch conversion and the
 * per-worker sampler. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "runtime/dataset.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/px_test_dataset_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd);
}

/* writes an IDX of unsigned bytes, gzip-compressed; `count` in the header, `actual` items of
 * data written (a file that lies about its size when they differ) */
static void write_idx(const char *path, int dims, uint32_t count, uint32_t rows, uint32_t cols,
                      uint32_t actual, const uint8_t *data)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    unsigned char head[16] = {0, 0, 0x08, (unsigned char)dims};
    uint32_t d[3] = {count, rows, cols};
    for (int i = 0; i < dims; i++) {
        head[4 + 4 * i] = (unsigned char)(d[i] >> 24);
        head[5 + 4 * i] = (unsigned char)(d[i] >> 16);
        head[6 + 4 * i] = (unsigned char)(d[i] >> 8);
        head[7 + 4 * i] = (unsigned char)d[i];
    }
    gzwrite(f, head, 4 + 4 * (unsigned)dims);
    size_t per = dims == 3 ? (size_t)rows * cols : 1;
    if (actual) gzwrite(f, data, (unsigned)(actual * per));
    gzclose(f);
}

static void test_idx_round_trip_and_limit(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/img.gz", tmpdir);
    uint8_t data[3 * 2 * 3];
    for (int i = 0; i < 18; i++)
        data[i] = (uint8_t)(i * 13);
    write_idx(path, 3, 3, 2, 3, 3, data);
    size_t count, per;
    uint8_t *out;
    assert_int_equal(px_idx_read_gz(path, 3, 0, &count, &per, &out), PX_OK);
    assert_int_equal(count, 3);
    assert_int_equal(per, 6);
    assert_memory_equal(out, data, 18);
    px_free(out);
    assert_int_equal(px_idx_read_gz(path, 3, 2, &count, &per, &out), PX_OK);
    assert_int_equal(count, 2);
    assert_memory_equal(out, data, 12);
    px_free(out);
    /* asking for labels (1 dimension) from an image file is refused by the magic number */
    assert_int_equal(px_idx_read_gz(path, 1, 0, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "not an IDX file"));
}

static void test_idx_faults(void **state)
{
    (void)state;
    char path[300];
    size_t count, per;
    uint8_t *out = NULL, data[64] = {0};
    snprintf(path, sizeof path, "%s/short.gz", tmpdir);
    write_idx(path, 1, 10, 0, 0, 4, data); /* header says 10 labels, 4 present */
    assert_int_equal(px_idx_read_gz(path, 1, 0, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "ends early"));
    assert_null(out);

    snprintf(path, sizeof path, "%s/long.gz", tmpdir);
    write_idx(path, 1, 4, 0, 0, 10, data); /* trailing bytes after the 4 announced labels */
    assert_int_equal(px_idx_read_gz(path, 1, 0, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "more bytes"));

    snprintf(path, sizeof path, "%s/missing.gz", tmpdir);
    assert_int_equal(px_idx_read_gz(path, 1, 0, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "missing.gz"));

    /* a gzip stream with a flipped byte in the middle of its deflate data: refused either by
     * inflate or by the gzip CRC at the end, never accepted */
    snprintf(path, sizeof path, "%s/corrupt.gz", tmpdir);
    uint8_t big[4000];
    for (int i = 0; i < 4000; i++)
        big[i] = (uint8_t)((i * 7919) >> 3);
    write_idx(path, 3, 10, 20, 20, 10, big);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    for (long off = 20; off < size - 8; off += 37) {
        fseek(f, off, SEEK_SET);
        int c = fgetc(f);
        fseek(f, off, SEEK_SET);
        fputc(c ^ 0x55, f);
        fflush(f);
        out = NULL;
        px_status st = px_idx_read_gz(path, 3, 0, &count, &per, &out);
        if (st == PX_OK) {
            /* accepted only if the decoded bytes are exactly the original (cannot happen with
             * the CRC check, but say so precisely if it ever does) */
            assert_memory_equal(out, big, 4000);
            px_free(out);
        } else {
            assert_int_equal(st, PX_EINVAL);
            assert_null(out);
        }
        fseek(f, off, SEEK_SET);
        fputc(c, f);
        fflush(f);
    }
    fclose(f);
}

/* peak resident memory of this process so far, in bytes (Linux: ru_maxrss in KiB) */
static size_t peak_rss_bytes(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return (size_t)ru.ru_maxrss * 1024;
}

/* A header is a claim, not data: a tiny .gz whose header announces far more than any gzip file
 * of its size can hold is refused before anything of the claimed size is allocated. */
static void test_idx_huge_claim_refused(void **state)
{
    (void)state;
    char path[300];
    size_t count, per;
    uint8_t *out = NULL;
    snprintf(path, sizeof path, "%s/liar.gz", tmpdir);
    /* 2,000,000 images of 28 x 28: 1.57 GB announced by a file of a few dozen bytes */
    write_idx(path, 3, 2000000, 28, 28, 0, NULL);
    size_t before = peak_rss_bytes();
    assert_int_equal(px_idx_read_gz(path, 3, 0, &count, &per, &out), PX_EINVAL);
    assert_null(out);
    const char *msg = px_errmsg();
    if (!strstr(msg, "liar.gz") || !strstr(msg, "2000000 x 28 x 28") ||
        !strstr(msg, "1568000000 bytes") || !strstr(msg, "at most"))
        fail_msg("message lacks the file, the claim or the bound: %s", msg);
    size_t grew = peak_rss_bytes() - before;
    if (grew > (16u << 20)) fail_msg("reading the header cost %zu bytes of memory", grew);
    /* the largest claim the header checks let through (2^28 items of 2^20 bytes) is refused by
     * the same bound, not by a failed allocation */
    snprintf(path, sizeof path, "%s/liar2.gz", tmpdir);
    write_idx(path, 3, 1u << 28, 1024, 1024, 0, NULL);
    assert_int_equal(px_idx_read_gz(path, 3, 0, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "at most"));
    /* a limit asks for less: 100 items of 784 bytes (78 KB) still exceed what ~40 bytes of
     * gzip hold (about 41 KB), so the file is refused the same way */
    assert_int_equal(px_idx_read_gz(path, 3, 100, &count, &per, &out), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "at most"));
    /* an honest, highly compressible file passes: 300 zero images (235 KB in a few hundred
     * bytes of gzip, well within deflate's 1032:1) */
    static uint8_t zeros[300 * 784];
    snprintf(path, sizeof path, "%s/zeros.gz", tmpdir);
    write_idx(path, 3, 300, 28, 28, 300, zeros);
    assert_int_equal(px_idx_read_gz(path, 3, 0, &count, &per, &out), PX_OK);
    assert_int_equal(count, 300);
    assert_int_equal(per, 784);
    px_free(out);
}

static void test_missing_dataset_names_package(void **state)
{
    (void)state;
    px_dataset ds;
    assert_int_equal(px_fmnist_load(&ds, "/nonexistent/fashion", 1, 1, 0, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "dataset-fashion-mnist"));
    /* a directory without the files: the message names the file and the package */
    assert_int_equal(px_fmnist_load(&ds, tmpdir, 1, 1, 0, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "train-images-idx3-ubyte.gz"));
    assert_non_null(strstr(px_errmsg(), "dataset-fashion-mnist"));
}

static void test_bad_labels_refused(void **state)
{
    (void)state;
    char path[300];
    uint8_t img[2 * 784] = {0}, lab[2] = {3, 10}; /* 10 is not a class */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", tmpdir);
    write_idx(path, 3, 2, 28, 28, 2, img);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", tmpdir);
    write_idx(path, 1, 2, 0, 0, 2, lab);
    px_dataset ds;
    assert_int_equal(px_fmnist_load(&ds, tmpdir, 1, 0, 0, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "label 10"));
}

static void test_real_fashion_mnist(void **state)
{
    (void)state;
    px_dataset ds;
    assert_int_equal(px_fmnist_load(&ds, "/usr/share/datasets/fashion-mnist", 1, 1, 0, 0), PX_OK);
    assert_int_equal(ds.train.count, 60000);
    assert_int_equal(ds.test.count, 10000);
    assert_int_equal(ds.train.features, 784);
    /* Fashion-MNIST is balanced: 6000 training and 1000 test images per class */
    size_t tr[10] = {0}, te[10] = {0};
    for (size_t i = 0; i < 60000; i++)
        tr[ds.train.labels[i]]++;
    for (size_t i = 0; i < 10000; i++)
        te[ds.test.labels[i]]++;
    for (int c = 0; c < 10; c++) {
        assert_int_equal(tr[c], 6000);
        assert_int_equal(te[c], 1000);
    }
    /* the normalisation constants are the training set's pixel mean and std (to 3 digits) */
    double s = 0, s2 = 0;
    for (size_t i = 0; i < 60000 * 784; i++) {
        double v = ds.train.images[i] / 255.0;
        s += v;
        s2 += v * v;
    }
    double mean = s / (60000.0 * 784), std = sqrt(s2 / (60000.0 * 784) - mean * mean);
    assert_true(fabs(mean - ds.mean) < 1e-3);
    assert_true(fabs(std - ds.std) < 1e-3);
    /* conversion of a batch: (pixel/255 - mean)/std, labels copied */
    uint32_t idx[2] = {5, 59999};
    float *x = malloc(2 * 784 * sizeof(float));
    uint8_t y[2];
    px_split_gather(&ds, &ds.train, idx, 2, x, y);
    assert_int_equal(y[1], ds.train.labels[59999]);
    for (int j = 0; j < 784; j++)
        assert_float_equal(x[784 + j],
                           (ds.train.images[59999 * 784 + j] / 255.0f - ds.mean) / ds.std, 1e-5);
    free(x);
    px_dataset_free(&ds);
}

static void test_sampler(void **state)
{
    (void)state;
    enum { N = 1000, B = 50 };
    px_sampler a, b, c;
    assert_int_equal(px_sampler_init(&a, 11, 3, N), PX_OK);
    assert_int_equal(px_sampler_init(&b, 11, 3, N), PX_OK);
    assert_int_equal(px_sampler_init(&c, 11, 4, N), PX_OK);
    /* one epoch = 20 batches visits every example exactly once */
    int seen[N] = {0};
    uint32_t ia[B], ib[B], ic[B];
    for (int s = 0; s < N / B; s++) {
        px_sampler_batch(&a, s, B, ia);
        for (int i = 0; i < B; i++)
            seen[ia[i]]++;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    /* random access gives the same batches as in order: step 45 (epoch 2), then step 3 */
    px_sampler_batch(&a, 45, B, ia);
    for (int s = 0; s <= 45; s++)
        px_sampler_batch(&b, s, B, ib);
    assert_memory_equal(ia, ib, sizeof ia);
    px_sampler_batch(&a, 3, B, ia);
    px_sampler_batch(&c, 3, B, ic);
    px_sampler_batch(&b, 3, B, ib);
    assert_memory_equal(ia, ib, sizeof ia);
    /* another worker draws another order */
    assert_memory_not_equal(ia, ic, sizeof ia);
    /* consecutive epochs are different permutations */
    px_sampler_batch(&a, 0, B, ia);
    px_sampler_batch(&b, 20, B, ib);
    assert_memory_not_equal(ia, ib, sizeof ia);
    /* a batch that straddles two epochs: B = 30 does not divide N */
    px_sampler_batch(&a, 33, 30, ia); /* positions 990..1019 */
    for (int i = 0; i < 30; i++)
        assert_true(ia[i] < N);
    px_sampler_free(&a);
    px_sampler_free(&b);
    px_sampler_free(&c);
}

/* A tiny fortunes directory: the split, the vocabulary and the windows by hand. */
static void test_fortunes_by_hand(void **state)
{
    (void)state;
    char path[300];
    /* files in name order (a, then b): 10 fortunes in all, and the 10th (k = 9) is the
     * validation split's only one */
    snprintf(path, sizeof path, "%s/a", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("ab\n%\nba\n%\naab\n%\nbb\n%\na\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/b", tmpdir);
    f = fopen(path, "w");
    fputs("b\n%\nab\n%\nba\n%\nb\n%\ncab\n%\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/b.dat", tmpdir); /* an index: ignored */
    f = fopen(path, "w");
    fputs("zzzz", f);
    fclose(f);
    px_dataset ds;
    assert_int_equal(px_fortunes_load(&ds, tmpdir, 3, 0, 0), PX_OK);
    /* bytes seen: '\n' 'a' 'b' 'c' -> ids 0 1 2 3 */
    assert_int_equal(ds.classes, 4);
    assert_memory_equal(ds.vocab, "\nabc", 4);
    assert_int_equal(ds.input, PX_INPUT_TOKENS);
    assert_int_equal(ds.label_values, 3);
    /* training text: "ab\n\nba\n\naab\n\nbb\n\na\n\nb\n\nab\n\nba\n\nb\n\n" (37 chars) */
    const char *train = "ab\n\nba\n\naab\n\nbb\n\na\n\nb\n\nab\n\nba\n\nb\n\n";
    size_t len = strlen(train);
    assert_int_equal(ds.train.count, len - 3);
    /* validation: "cab\n\n" (5 chars), disjoint windows of 3 with their next char: 1 */
    assert_int_equal(ds.test.count, 1);
    int32_t tok[2 * 3];
    uint8_t y[2 * 3];
    uint32_t idx[2] = {0, 7};
    px_batch_io io = {.tokens = tok, .y = y};
    px_dataset_gather(&ds, &ds.train, idx, 2, &io);
    int32_t want_tok[6];
    uint8_t want_y[6];
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < 3; t++) {
            const char *at = train + idx[i] + t;
            want_tok[i * 3 + t] = at[0] == '\n' ? 0 : at[0] - 'a' + 1;
            want_y[i * 3 + t] = (uint8_t)(at[1] == '\n' ? 0 : at[1] - 'a' + 1);
        }
    assert_memory_equal(tok, want_tok, sizeof tok);
    assert_memory_equal(y, want_y, sizeof y);
    px_dataset_slice(&ds, &ds.test, 0, 1, &io);
    int32_t cab[3] = {3, 1, 2};
    uint8_t ab_nl[3] = {1, 2, 0};
    assert_memory_equal(tok, cab, sizeof cab);
    assert_memory_equal(y, ab_nl, sizeof ab_nl);
    px_dataset_free(&ds);
    /* a window longer than the validation text */
    assert_int_equal(px_fortunes_load(&ds, tmpdir, 8, 0, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "validation text has 5 characters"));
}

static void test_fortunes_missing(void **state)
{
    (void)state;
    px_dataset ds;
    assert_int_equal(px_fortunes_load(&ds, "/nonexistent/fortunes", 64, 0, 0), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "Debian package fortunes"));
    assert_int_equal(px_fortunes_load(&ds, tmpdir, 64, 0, 0), PX_EINVAL); /* empty dir */
    assert_non_null(strstr(px_errmsg(), "no fortune files"));
}

static void test_real_fortunes(void **state)
{
    (void)state;
    px_dataset ds;
    px_data_source src = {.path = "", .window = 64};
    if (access("/usr/share/games/fortunes/fortunes", R_OK) != 0) skip();
    assert_int_equal(px_dataset_open(&ds, "fortunes", &src, 1, 1), PX_OK);
    /* English text: letters, digits, punctuation, newline; at most the 256 byte values */
    assert_true(ds.classes > 60 && ds.classes <= 256);
    /* about one fortune in ten is held out: the validation text is near a ninth of training */
    double ratio = (double)(ds.test.count * 64) / (double)ds.train.count;
    assert_true(ratio > 0.07 && ratio < 0.16);
    px_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_round_trip_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_huge_claim_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dataset_names_package, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_labels_refused, setup, teardown),
        cmocka_unit_test(test_real_fashion_mnist),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test_setup_teardown(test_fortunes_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fortunes_missing, setup, teardown),
        cmocka_unit_test(test_real_fortunes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
