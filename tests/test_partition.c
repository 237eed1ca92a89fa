/* test_partition.c - the partitioners (fl/partition.h) on synthetic labels: every example assigned
 * exactly once for every kind and part count, IID balance, the Dirichlet trend from concentrated
 * (alpha = 0.1) to IID-like (alpha = 1000), the Gamma sampler's moments, shards of at most two
 * labels, reproducibility and pinned outputs, the refusals, and the histogram, summary and CSV
 * writers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/rng.h"
#include "fl/partition.h"

/* n labels in 0 .. classes-1, class c appearing `weight(c)` times as often as class 0 when skew
 * is set, else equally often; positions shuffled, as in a real dataset. */
static uint8_t *make_labels(size_t n, size_t classes, int skew, uint64_t seed)
{
    uint8_t *l = malloc(n);
    assert_non_null(l);
    size_t total = skew ? classes * (classes + 1) / 2 : classes, at = 0;
    for (size_t c = 0; c < classes; c++) {
        size_t share = (skew ? c + 1 : 1) * n / total;
        for (size_t k = 0; k < share && at < n; k++)
            l[at++] = (uint8_t)c;
    }
    while (at < n)
        l[at++] = (uint8_t)(classes - 1);
    px_rng r;
    px_rng_init(&r, seed, 1000, 0, 0); /* the test's own stream, not a partition's */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)px_rng_below(&r, i);
        uint8_t t = l[i - 1];
        l[i - 1] = l[j];
        l[j] = t;
    }
    return l;
}

/* The structural contract: sizes, offsets, every part non-empty and ascending, every example
 * exactly once. */
static void check_valid(const px_partition *p, size_t n, size_t parts)
{
    assert_int_equal(p->n, n);
    assert_int_equal(p->parts, parts);
    assert_int_equal(p->offsets[0], 0);
    assert_int_equal(p->offsets[parts], n);
    uint8_t *seen = calloc(n, 1);
    assert_non_null(seen);
    for (size_t q = 0; q < parts; q++) {
        assert_true(p->offsets[q] < p->offsets[q + 1]);
        for (uint32_t i = p->offsets[q]; i < p->offsets[q + 1]; i++) {
            assert_true(p->indices[i] < n);
            if (i > p->offsets[q]) assert_true(p->indices[i - 1] < p->indices[i]);
            assert_int_equal(seen[p->indices[i]], 0);
            seen[p->indices[i]] = 1;
        }
    }
    free(seen);
}

/* Per-part statistics against the overall label mix: the mean and largest total variation
 * distance, and the mean share of each part's two largest classes. */
typedef struct {
    double mean_tv, max_tv, mean_top2, frac_top2_over_80;
} mix_stats;

static mix_stats label_mix(const px_partition *p, const uint8_t *labels, size_t classes)
{
    uint32_t *h = malloc(p->parts * classes * sizeof *h);
    assert_non_null(h);
    px_partition_histogram(p, labels, classes, h);
    double global[PX_PARTITION_MAX_CLASSES] = {0};
    for (size_t i = 0; i < p->n; i++)
        global[labels[i]] += 1.0 / p->n;
    mix_stats s = {0};
    for (size_t q = 0; q < p->parts; q++) {
        double size = p->offsets[q + 1] - p->offsets[q], tv = 0;
        uint32_t a = 0, b = 0;
        for (size_t c = 0; c < classes; c++) {
            uint32_t x = h[q * classes + c];
            tv += fabs(x / size - global[c]) / 2;
            if (x > a)
                b = a, a = x;
            else if (x > b)
                b = x;
        }
        s.mean_tv += tv / p->parts;
        if (tv > s.max_tv) s.max_tv = tv;
        s.mean_top2 += (a + b) / size / p->parts;
        s.frac_top2_over_80 += ((a + b) / size > 0.8) / (double)p->parts;
    }
    free(h);
    return s;
}

static void test_every_example_once(void **state)
{
    (void)state;
    const size_t n = 60000, classes = 10;
    uint8_t *balanced = make_labels(n, classes, 0, 1), *skewed = make_labels(n, classes, 1, 2);
    const size_t parts[] = {1, 7, 100, 1000};
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        px_partition p;
        assert_int_equal(px_partition_make(&p, PX_PARTITION_IID, NULL, n, 0, parts[k], 0, 3), 0);
        check_valid(&p, n, parts[k]);
        px_partition_free(&p);
        assert_null(p.offsets);
        for (int skew = 0; skew < 2; skew++) {
            const uint8_t *l = skew ? skewed : balanced;
            /* alpha = 1 keeps 1000 parts of 60 examples non-empty; 0.3 concentrates the rest */
            double alpha = parts[k] >= 1000 ? 1.0 : 0.3;
            assert_int_equal(
                px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, parts[k], alpha, 3),
                0);
            check_valid(&p, n, parts[k]);
            px_partition_free(&p);
            assert_int_equal(
                px_partition_make(&p, PX_PARTITION_SHARDS, l, n, classes, parts[k], 0, 3), 0);
            check_valid(&p, n, parts[k]);
            px_partition_free(&p);
        }
    }
    /* sizes that do not divide: n prime, a class with no example at all (classes = 12) */
    const size_t odd = 7919;
    uint8_t *l = make_labels(odd, classes, 1, 4);
    for (int kind = 0; kind < PX_PARTITION_KIND_COUNT; kind++) {
        px_partition p;
        assert_int_equal(px_partition_make(&p, kind, l, odd, 12, 13, 0.5, 5), 0);
        check_valid(&p, odd, 13);
        px_partition_free(&p);
    }
    /* every example its own part */
    px_partition p;
    assert_int_equal(px_partition_make(&p, PX_PARTITION_IID, l, 50, classes, 50, 0, 1), 0);
    check_valid(&p, 50, 50);
    px_partition_free(&p);
    free(l);
    free(balanced);
    free(skewed);
}

static void test_iid(void **state)
{
    (void)state;
    const size_t n = 6000, classes = 10;
    uint8_t *l = make_labels(n, classes, 0, 1);
    px_partition p;
    /* sizes differ by at most one: 6000 / 7 = 857.14 */
    assert_int_equal(px_partition_make(&p, PX_PARTITION_IID, l, n, classes, 7, 0, 9), 0);
    size_t big = 0;
    for (size_t q = 0; q < 7; q++) {
        uint32_t size = p.offsets[q + 1] - p.offsets[q];
        assert_true(size == 857 || size == 858);
        big += size == 858;
    }
    assert_int_equal(big, 1);
    px_partition_free(&p);

    /* each part's label mix close to the overall one: 600 examples, about 60 +- 7 per class; a
     * partition by contiguous index ranges of label-sorted data would give tv = 0.9 */
    assert_int_equal(px_partition_make(&p, PX_PARTITION_IID, l, n, classes, 10, 0, 9), 0);
    mix_stats s = label_mix(&p, l, classes);
    assert_true(s.mean_tv < 0.07);
    assert_true(s.max_tv < 0.12);
    /* and the permutation is random: part 0 is not the first 600 examples */
    assert_true(p.indices[599] > 1000);
    px_partition_free(&p);
    free(l);
}

static void test_dirichlet_trend(void **state)
{
    (void)state;
    const size_t n = 6000, classes = 10, parts = 20, seeds = 5;
    uint8_t *l = make_labels(n, classes, 0, 1);
    const double alphas[] = {0.1, 1, 100, 1000};
    mix_stats mean[4] = {{0}};
    for (size_t a = 0; a < 4; a++)
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            px_partition p;
            assert_int_equal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, parts,
                                               alphas[a], seed),
                             0);
            mix_stats s = label_mix(&p, l, classes);
            /* which of a class's examples a part gets is random too, not its first ones: part 0's
             * 1/20 of each class would lie in the first ~5% of the indices */
            if (alphas[a] == 1000 && seed == 1) assert_true(p.indices[p.offsets[1] - 1] > n / 2);
            mean[a].mean_tv += s.mean_tv / seeds;
            mean[a].mean_top2 += s.mean_top2 / seeds;
            mean[a].frac_top2_over_80 += s.frac_top2_over_80 / seeds;
            if (s.max_tv > mean[a].max_tv) mean[a].max_tv = s.max_tv;
            px_partition_free(&p);
        }
    /* alpha = 0.1: most parts hold 1-2 classes (two classes hold over 80% of the part) */
    assert_true(mean[0].mean_top2 > 0.8);
    assert_true(mean[0].frac_top2_over_80 > 0.5);
    /* concentration falls as alpha grows; an IID part's top two hold about 0.2 */
    assert_true(mean[0].mean_top2 > mean[1].mean_top2 + 0.15);
    assert_true(mean[1].mean_top2 > mean[2].mean_top2 + 0.15);
    assert_true(mean[0].mean_tv > mean[1].mean_tv && mean[1].mean_tv > mean[2].mean_tv);
    /* alpha = 1000: every part's mix close to the overall one (closer than IID sampling's ~0.05:
     * each class is split almost exactly evenly) */
    assert_true(mean[3].mean_tv < 0.03);
    assert_true(mean[3].max_tv < 0.05);
    assert_true(mean[3].mean_top2 < 0.23);
    free(l);
}

/* The Gamma sampler through the proportions: with 2 parts, class c's share of part 0 is
 * Beta(alpha, alpha), mean 1/2 and variance 1 / (4 (2 alpha + 1)). 256 classes give 256
 * independent draws per partition (and no part is ever empty, so nothing is redrawn). Forgetting
 * the alpha < 1 boost would give 1 / (4 (2 alpha + 3)): 0.078 instead of 0.208 at 0.1. */
static void test_gamma_moments(void **state)
{
    (void)state;
    const size_t classes = 256, per_class = 400, n = classes * per_class, seeds = 8;
    uint8_t *l = make_labels(n, classes, 0, 2);
    uint32_t *h = malloc(2 * classes * sizeof *h);
    const double alphas[] = {0.1, 0.5, 2, 10};
    for (size_t a = 0; a < 4; a++) {
        double sum = 0, sum2 = 0, count = 0;
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            px_partition p;
            assert_int_equal(
                px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 2, alphas[a], seed),
                0);
            px_partition_histogram(&p, l, classes, h);
            for (size_t c = 0; c < classes; c++) {
                assert_int_equal(h[c] + h[classes + c], per_class);
                double x = (double)h[c] / per_class;
                sum += x, sum2 += x * x, count++;
            }
            px_partition_free(&p);
        }
        double mean = sum / count, var = sum2 / count - mean * mean;
        double want = 1 / (4 * (2 * alphas[a] + 1));
        assert_true(fabs(mean - 0.5) < 4 * sqrt(want / count));
        assert_true(fabs(var / want - 1) < 0.12);
    }
    free(h);
    free(l);
}

/* alpha = 0.001: U^(1/alpha) underflows to 0 for half of all draws, so a sampler outside logs
 * would divide 0 by 0. Each class must go (almost) whole to one of the two parts. */
static void test_dirichlet_tiny_alpha(void **state)
{
    (void)state;
    const size_t classes = 256, per_class = 100, n = classes * per_class;
    uint8_t *l = make_labels(n, classes, 0, 3);
    uint32_t *h = malloc(2 * classes * sizeof *h);
    px_partition p;
    assert_int_equal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 2, 0.001, 4), 0);
    check_valid(&p, n, 2);
    px_partition_histogram(&p, l, classes, h);
    size_t whole = 0, to_first = 0;
    for (size_t c = 0; c < classes; c++) {
        whole += h[c] == 0 || h[c] == per_class;
        to_first += h[c] > per_class / 2;
    }
    assert_true(whole >= 250);
    assert_true(to_first > 80 && to_first < 176);
    px_partition_free(&p);
    free(h);
    free(l);
}

static void test_shards(void **state)
{
    (void)state;
    /* 10 classes x 600 examples, 50 parts: 100 shards of 60, each of one class */
    const size_t n = 6000, classes = 10, parts = 50;
    uint8_t *l = make_labels(n, classes, 0, 1);
    uint32_t *h = malloc(parts * classes * sizeof *h);
    px_partition p;
    assert_int_equal(px_partition_make(&p, PX_PARTITION_SHARDS, l, n, classes, parts, 0, 6), 0);
    check_valid(&p, n, parts);
    px_partition_histogram(&p, l, classes, h);
    size_t two_labels = 0;
    for (size_t q = 0; q < parts; q++) {
        assert_int_equal(p.offsets[q + 1] - p.offsets[q], 120);
        size_t present = 0;
        for (size_t c = 0; c < classes; c++) {
            assert_int_equal(h[q * classes + c] % 60, 0);
            present += h[q * classes + c] > 0;
        }
        assert_true(present >= 1 && present <= 2);
        two_labels += present == 2;
    }
    /* the shards are dealt at random: in label order, every part would get one class twice
     * (two shards of the same class: probability 9/99 for a random pair) */
    assert_true(two_labels >= 35);
    px_partition_free(&p);
    free(h);
    free(l);
}

/* FNV-1a over a partition's offsets and indices. */
static uint64_t fingerprint(const px_partition *p)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *bytes[2] = {(const uint8_t *)p->offsets, (const uint8_t *)p->indices};
    size_t lens[2] = {(p->parts + 1) * sizeof *p->offsets, p->n * sizeof *p->indices};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lens[k]; i++)
            h = (h ^ bytes[k][i]) * 0x100000001b3ull;
    return h;
}

static void test_reproducible(void **state)
{
    (void)state;
    const size_t n = 6000, classes = 10, parts = 7;
    uint8_t *l = make_labels(n, classes, 1, 1);
    for (int kind = 0; kind < PX_PARTITION_KIND_COUNT; kind++) {
        px_partition a, b, c;
        assert_int_equal(px_partition_make(&a, kind, l, n, classes, parts, 0.5, 11), 0);
        assert_int_equal(px_partition_make(&b, kind, l, n, classes, parts, 0.5, 11), 0);
        assert_int_equal(px_partition_make(&c, kind, l, n, classes, parts, 0.5, 12), 0);
        assert_memory_equal(a.offsets, b.offsets, (parts + 1) * sizeof *a.offsets);
        assert_memory_equal(a.indices, b.indices, n * sizeof *a.indices);
        assert_memory_not_equal(a.indices, c.indices, n * sizeof *a.indices);
        px_partition_free(&a);
        px_partition_free(&b);
        px_partition_free(&c);
    }
    free(l);
}

/* The integer-only partitioners pinned to their bytes: a change of stream, purpose or cut would
 * hand every run (and every resumed run) different data, so it must be a decision, seen here.
 * (DIRICHLET goes through exp and log, whose last bits may differ between C libraries.) */
static void test_pinned(void **state)
{
    (void)state;
    const size_t n = 6000, classes = 10;
    uint8_t *l = make_labels(n, classes, 0, 1);
    px_partition p;
    assert_int_equal(px_partition_make(&p, PX_PARTITION_IID, NULL, n, 0, 7, 0, 42), 0);
    assert_int_equal(fingerprint(&p), 0x458974655e1403b5ull);
    px_partition_free(&p);
    assert_int_equal(px_partition_make(&p, PX_PARTITION_SHARDS, l, n, classes, 50, 0, 42), 0);
    assert_int_equal(fingerprint(&p), 0xdc70ccca062e91b2ull);
    px_partition_free(&p);
    free(l);
}

static void expect_refusal(px_status st, const px_partition *p, const char *want)
{
    assert_int_equal(st, PX_EINVAL);
    if (!strstr(px_errmsg(), want)) fail_msg("message \"%s\" lacks \"%s\"", px_errmsg(), want);
    assert_null(p->offsets);
    assert_null(p->indices);
    assert_int_equal(p->parts, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    const size_t n = 6000, classes = 10;
    uint8_t *l = make_labels(n, classes, 0, 1);
    px_partition p;
    expect_refusal(px_partition_make(&p, PX_PARTITION_IID, l, n, classes, 0, 1, 1), &p,
                   "parts = 0");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, 100, classes, 101, 1, 1), &p,
                   "parts = 101 is more than the n = 100 examples");
    expect_refusal(px_partition_make(&p, PX_PARTITION_IID, NULL, 0, 0, 1, 1, 1), &p,
                   "parts = 1 is more than the n = 0 examples");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 10, 0, 1), &p,
                   "alpha = 0 must be positive and finite");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 10, -1, 1), &p,
                   "alpha = -1 must be");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 10, NAN, 1), &p,
                   "alpha = nan must be");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 10, INFINITY, 1),
                   &p, "alpha = inf must be");
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, NULL, n, classes, 10, 1, 1), &p,
                   "DIRICHLET needs per-example labels");
    expect_refusal(px_partition_make(&p, PX_PARTITION_SHARDS, NULL, n, classes, 10, 1, 1), &p,
                   "SHARDS needs per-example labels");
    expect_refusal(px_partition_make(&p, PX_PARTITION_SHARDS, l, n, 9, 10, 1, 1), &p,
                   "has label 9, not below classes = 9");
    expect_refusal(px_partition_make(&p, PX_PARTITION_IID, l, n, 0, 10, 1, 1), &p,
                   "classes = 0 must be in 1 .. 256");
    expect_refusal(px_partition_make(&p, PX_PARTITION_SHARDS, l, 100, classes, 51, 1, 1), &p,
                   "51 parts need at least 102 examples, got n = 100");
    expect_refusal(px_partition_make(&p, (px_partition_kind)3, l, n, classes, 10, 1, 1), &p,
                   "kind = 3 is not");
    /* alpha = 0.01 over 1000 parts of 6 examples each: parts stay empty in every draw */
    expect_refusal(px_partition_make(&p, PX_PARTITION_DIRICHLET, l, n, classes, 1000, 0.01, 1), &p,
                   "of 1000 (a client or worker) received no example in 100 Dirichlet draws "
                   "with alpha = 0.01");
    /* alpha is not the other kinds' business */
    assert_int_equal(px_partition_make(&p, PX_PARTITION_SHARDS, l, n, classes, 10, 0, 1), 0);
    px_partition_free(&p);
    px_partition_free(&p); /* safe twice */
    free(l);
}

/* n = 8 in 3 classes, parts {0, 4, 5} and {1, 2, 3, 6, 7}, built by hand */
static const uint8_t small_labels[8] = {0, 1, 1, 2, 0, 2, 2, 1};
static uint32_t small_offsets[3] = {0, 3, 8}, small_indices[8] = {0, 4, 5, 1, 2, 3, 6, 7};
static const px_partition small = {2, 8, small_offsets, small_indices};

static void test_histogram(void **state)
{
    (void)state;
    uint32_t h[2 * 3 + 1];
    h[6] = 0xdeadbeef;
    memset(h, 0xff, 6 * sizeof *h);
    px_partition_histogram(&small, small_labels, 3, h);
    const uint32_t want[6] = {2, 0, 1, 0, 3, 2};
    assert_memory_equal(h, want, sizeof want);
    /* labels >= classes are left out, not written past the table */
    px_partition_histogram(&small, small_labels, 2, h);
    const uint32_t want2[4] = {2, 0, 0, 3};
    assert_memory_equal(h, want2, sizeof want2);
    assert_int_equal(h[6], 0xdeadbeef);
}

static char *capture_summary(const uint8_t *labels, size_t classes)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(px_partition_summary(&small, labels, classes, f), 0);
    fclose(f);
    return text;
}

static void test_summary(void **state)
{
    (void)state;
    /* part 0: labels {0, 0, 2}; part 1: {1, 1, 2, 2, 1}; overall {2, 3, 3} / 8. Skew of part 0:
     * (|2/3 - 1/4| + |0 - 3/8| + |1/3 - 3/8|) / 2 = 0.417; of part 1: (1/4 + 9/40 + 1/40) / 2 */
    char *text = capture_summary(small_labels, 3);
    const char *want = "partition: 2 parts, 8 examples, 3 classes; examples per part min 3, mean "
                       "4.0, max 5; classes per part min 2, mean 2.00, max 2; top class share "
                       "mean 63.3%; label skew (mean total variation from the overall mix) 0.333\n"
                       "part 0: 3 examples, 2 classes, top class 0 holds 66.7%, skew 0.417\n"
                       "part 1: 5 examples, 2 classes, top class 1 holds 60.0%, skew 0.250\n";
    assert_string_equal(text, want);
    free(text);
    /* without labels (text data): sizes only */
    text = capture_summary(NULL, 0);
    assert_string_equal(text, "partition: 2 parts, 8 examples; examples per part min 3, mean 4.0, "
                              "max 5\npart 0: 3 examples\npart 1: 5 examples\n");
    free(text);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[4096];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = 0;
    fclose(f);
    return buf;
}

static void test_csv(void **state)
{
    (void)state;
    char path[] = "/tmp/px_partition_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(px_partition_write_csv(&small, small_labels, 3, path), 0);
    assert_string_equal(read_all(path), "part,examples,class_0,class_1,class_2\n"
                                        "0,3,2,0,1\n"
                                        "1,5,0,3,2\n");
    assert_int_equal(px_partition_write_csv(&small, NULL, 0, path), 0);
    assert_string_equal(read_all(path), "part,examples\n0,3\n1,5\n");
    unlink(path);
    assert_int_equal(px_partition_write_csv(&small, small_labels, 3, "/nonexistent-dir/h.csv"),
                     PX_EIO);
    assert_non_null(strstr(px_errmsg(), "cannot write /nonexistent-dir/h.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_example_once),
        cmocka_unit_test(test_iid),
        cmocka_unit_test(test_dirichlet_trend),
        cmocka_unit_test(test_gamma_moments),
        cmocka_unit_test(test_dirichlet_tiny_alpha),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
