/* partition.c - the partitioners: IID, Dirichlet over labels, label shards (see partition.h), and
 * the summaries of a partition that a run writes at start. */
#include "partition.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

const char *px_partition_kind_name(px_partition_kind kind)
{
    static const char *names[PX_PARTITION_KIND_COUNT] = {"IID", "DIRICHLET", "SHARDS"};
    return (kind >= 0 && kind < PX_PARTITION_KIND_COUNT) ? names[kind] : "UNKNOWN";
}

static px_status px__partition_check(px_partition_kind kind, const uint8_t *labels, size_t n,
                                     size_t classes, size_t parts, double alpha)
{
    if (kind < 0 || kind >= PX_PARTITION_KIND_COUNT)
        return px_error(PX_EINVAL,
                        "partition: kind = %d is not IID (0), DIRICHLET (1) or SHARDS (2)",
                        (int)kind);
    if (n > UINT32_MAX)
        return px_error(PX_EINVAL, "partition: n = %zu examples is more than 32-bit indices hold",
                        n);
    if (parts == 0)
        return px_error(PX_EINVAL, "partition: parts = 0; needs at least one client or worker");
    if (parts > n)
        return px_error(PX_EINVAL,
                        "partition: parts = %zu is more than the n = %zu examples; every client "
                        "or worker needs at least one",
                        parts, n);
    if (!labels && kind != PX_PARTITION_IID)
        return px_error(PX_EINVAL,
                        "partition: %s needs per-example labels (labels is NULL); unlabelled data "
                        "can only be partitioned IID",
                        px_partition_kind_name(kind));
    if (labels) {
        if (classes == 0 || classes > PX_PARTITION_MAX_CLASSES)
            return px_error(PX_EINVAL,
                            "partition: classes = %zu must be in 1 .. %u (labels are bytes)",
                            classes, PX_PARTITION_MAX_CLASSES);
        for (size_t i = 0; i < n; i++)
            if (labels[i] >= classes)
                return px_error(PX_EINVAL,
                                "partition: example %zu has label %u, not below classes = %zu", i,
                                labels[i], classes);
    }
    if (kind == PX_PARTITION_DIRICHLET && !(alpha > 0 && isfinite(alpha)))
        return px_error(PX_EINVAL, "partition: DIRICHLET alpha = %g must be positive and finite",
                        alpha);
    if (kind == PX_PARTITION_SHARDS && n < 2 * parts)
        return px_error(PX_EINVAL,
                        "partition: SHARDS gives each part 2 shards, so %zu parts need at least "
                        "%zu examples, got n = %zu",
                        parts, 2 * parts, n);
    return PX_OK;
}

/* Fisher-Yates over v[0 .. len) from one named stream. */
static void px__shuffle(uint32_t *v, size_t len, uint64_t seed, uint64_t purpose, uint64_t b)
{
    px_rng r;
    px_rng_init(&r, seed, PX_STREAM_CLIENTS, purpose, b);
    for (size_t i = len; i > 1; i--) {
        size_t j = (size_t)px_rng_below(&r, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The examples grouped by label, ascending index within a label (a stable counting sort);
 * start[c] .. start[c + 1] is class c's range. */
static void px__sort_by_label(const uint8_t *labels, size_t n, size_t classes, uint32_t *out,
                              size_t start[PX_PARTITION_MAX_CLASSES + 1])
{
    size_t pos[PX_PARTITION_MAX_CLASSES + 1] = {0};
    for (size_t i = 0; i < n; i++)
        pos[labels[i] + 1]++;
    for (size_t c = 0; c < classes; c++)
        pos[c + 1] += pos[c];
    memcpy(start, pos, (classes + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++)
        out[pos[labels[i]]++] = (uint32_t)i;
}

static void px__iid(px_partition *p, uint64_t seed)
{
    for (size_t i = 0; i < p->n; i++)
        p->indices[i] = (uint32_t)i;
    px__shuffle(p->indices, p->n, seed, PX_PARTITION_STREAM_IID, 0);
    /* floor(q n / parts) cuts: sizes are floor(n / parts) or one more */
    for (size_t q = 0; q <= p->parts; q++)
        p->offsets[q] = (uint32_t)((uint64_t)q * p->n / p->parts);
}

/* log of a Gamma(a, 1) draw: Marsaglia and Tsang, "A simple method for generating gamma
 * variables" (2000), with their boost for a < 1: Gamma(a) = Gamma(a + 1) * U^(1/a). In logs,
 * because U^(1/a) underflows to 0 for small a (alpha = 0.01: 1e-300 is not rare), which would
 * leave a class with no proportion at all. */
static double px__gamma_log(px_rng *r, double a)
{
    double boost = 0;
    if (a < 1) {
        boost = log(1.0 - px_rng_uniform(r)) / a; /* U in (0, 1] */
        a += 1;
    }
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = px_rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = px_rng_uniform(r);
        if (u < 1 - 0.0331 * (x * x) * (x * x)) return log(d * v) + boost;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return log(d * v) + boost;
    }
}

/* Cumulative proportions Q_0 .. Q_{parts-1} (Q_{parts-1} = 1) of q_c ~ Dir(alpha * 1_parts) for
 * class c in draw k: normalised Gamma(alpha) draws, scaled by the largest before exp. */
static void px__dirichlet_cumulative(double *cum, size_t parts, double alpha, uint64_t seed,
                                     unsigned draw, size_t c)
{
    px_rng r;
    px_rng_init(&r, seed, PX_STREAM_CLIENTS, PX_PARTITION_STREAM_DIRICHLET,
                (uint64_t)draw * PX_PARTITION_MAX_CLASSES + c);
    double top = -INFINITY, sum = 0;
    for (size_t q = 0; q < parts; q++) {
        cum[q] = px__gamma_log(&r, alpha);
        if (cum[q] > top) top = cum[q];
    }
    for (size_t q = 0; q < parts; q++) {
        sum += exp(cum[q] - top);
        cum[q] = sum;
    }
    for (size_t q = 0; q < parts; q++)
        cum[q] /= sum;
}

/* Part q's share of a class of m examples: the cuts are round(m * Q_q), the last one m, so the
 * counts add up to m whatever the rounding; clamped so that they never go backwards. */
static uint32_t px__cut(const double *cum, size_t q, size_t parts, uint32_t m)
{
    if (q + 1 == parts) return m;
    double x = floor((double)m * cum[q] + 0.5);
    return x >= m ? m : (uint32_t)x;
}

/* byclass: the examples grouped by label, each class in its seeded order; start: the ranges. */
static px_status px__dirichlet(px_partition *p, const uint32_t *byclass, const size_t *start,
                               size_t classes, double alpha, uint64_t seed, double *cum)
{
    size_t parts = p->parts, empty = 0;
    unsigned draw;
    for (draw = 0; draw < PX_PARTITION_DRAWS; draw++) {
        /* first pass: only the sizes, in offsets[q + 1] */
        memset(p->offsets, 0, (parts + 1) * sizeof *p->offsets);
        for (size_t c = 0; c < classes; c++) {
            uint32_t m = (uint32_t)(start[c + 1] - start[c]), prev = 0;
            if (m == 0) continue;
            px__dirichlet_cumulative(cum, parts, alpha, seed, draw, c);
            for (size_t q = 0; q < parts; q++) {
                uint32_t cut = px__cut(cum, q, parts, m);
                if (cut < prev) cut = prev;
                p->offsets[q + 1] += cut - prev;
                prev = cut;
            }
        }
        for (empty = 0; empty < parts && p->offsets[empty + 1] > 0; empty++)
            ;
        if (empty == parts) break;
    }
    if (draw == PX_PARTITION_DRAWS)
        return px_error(PX_EINVAL,
                        "partition: part %zu of %zu (a client or worker) received no example in "
                        "%u Dirichlet draws with alpha = %g over %zu examples of %zu classes; use "
                        "a larger alpha or fewer parts",
                        empty, parts, PX_PARTITION_DRAWS, alpha, p->n, classes);

    /* second pass: the same draws again (streams are stateless), now placing the examples;
     * offsets[q] serves as part q's write cursor and is shifted back afterwards */
    for (size_t q = 0; q < parts; q++)
        p->offsets[q + 1] += p->offsets[q];
    for (size_t c = 0; c < classes; c++) {
        uint32_t m = (uint32_t)(start[c + 1] - start[c]), prev = 0;
        if (m == 0) continue;
        px__dirichlet_cumulative(cum, parts, alpha, seed, draw, c);
        for (size_t q = 0; q < parts; q++) {
            uint32_t cut = px__cut(cum, q, parts, m);
            if (cut < prev) cut = prev;
            memcpy(p->indices + p->offsets[q], byclass + start[c] + prev,
                   (cut - prev) * sizeof *byclass);
            p->offsets[q] += cut - prev;
            prev = cut;
        }
    }
    for (size_t q = parts; q > 0; q--)
        p->offsets[q] = p->offsets[q - 1];
    p->offsets[0] = 0;
    return PX_OK;
}

/* Where shard s of `shards` nearly equal shards over n examples starts. */
static size_t px__shard_start(size_t s, size_t n, size_t shards)
{
    return (size_t)((uint64_t)s * n / shards);
}

/* sorted: the examples sorted by label; perm: scratch for 2 * parts shard numbers. */
static void px__shards(px_partition *p, const uint32_t *sorted, uint32_t *perm, uint64_t seed)
{
    size_t shards = 2 * p->parts;
    for (size_t s = 0; s < shards; s++)
        perm[s] = (uint32_t)s;
    px__shuffle(perm, shards, seed, PX_PARTITION_STREAM_SHARDS, 0);
    p->offsets[0] = 0;
    for (size_t q = 0; q < p->parts; q++) {
        size_t at = p->offsets[q];
        for (size_t k = 0; k < 2; k++) {
            size_t s = perm[2 * q + k], from = px__shard_start(s, p->n, shards);
            size_t len = px__shard_start(s + 1, p->n, shards) - from;
            memcpy(p->indices + at, sorted + from, len * sizeof *sorted);
            at += len;
        }
        p->offsets[q + 1] = (uint32_t)at;
    }
}

static int px__cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

px_status px_partition_make(px_partition *p, px_partition_kind kind, const uint8_t *labels,
                            size_t n, size_t classes, size_t parts, double alpha, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    PX_CHECK(px__partition_check(kind, labels, n, classes, parts, alpha));
    px_status st = PX_OK;
    uint32_t *byclass = NULL, *perm = NULL;
    double *cum = NULL;
    size_t start[PX_PARTITION_MAX_CLASSES + 1];
    p->parts = parts;
    p->n = n;
    p->offsets = px_alloc((parts + 1) * sizeof *p->offsets, "the partition's offsets");
    p->indices = px_alloc(n * sizeof *p->indices, "the partition's indices");
    if (!p->offsets || !p->indices) PX_CHECK_GOTO(PX_ENOMEM, st, done);

    if (kind == PX_PARTITION_IID) {
        px__iid(p, seed);
    } else {
        byclass = px_alloc(n * sizeof *byclass, "the partition's examples by label");
        if (!byclass) PX_CHECK_GOTO(PX_ENOMEM, st, done);
        px__sort_by_label(labels, n, classes, byclass, start);
        if (kind == PX_PARTITION_DIRICHLET) {
            cum = px_alloc(parts * sizeof *cum, "the Dirichlet proportions");
            if (!cum) PX_CHECK_GOTO(PX_ENOMEM, st, done);
            /* which of class c's examples go where: the split is by position in this order */
            for (size_t c = 0; c < classes; c++)
                px__shuffle(byclass + start[c], start[c + 1] - start[c], seed,
                            PX_PARTITION_STREAM_CLASS, c);
            PX_CHECK_GOTO(px__dirichlet(p, byclass, start, classes, alpha, seed, cum), st, done);
        } else {
            perm = px_alloc(2 * parts * sizeof *perm, "the shard permutation");
            if (!perm) PX_CHECK_GOTO(PX_ENOMEM, st, done);
            px__shards(p, byclass, perm, seed);
        }
    }
    /* a part is a set: listed ascending, whatever order the partitioner produced it in */
    for (size_t q = 0; q < parts; q++)
        qsort(p->indices + p->offsets[q], p->offsets[q + 1] - p->offsets[q], sizeof *p->indices,
              px__cmp_u32);

done:
    px_free(byclass);
    px_free(perm);
    px_free(cum);
    if (st < 0) px_partition_free(p);
    return st;
}

void px_partition_free(px_partition *p)
{
    px_free(p->offsets);
    px_free(p->indices);
    memset(p, 0, sizeof *p);
}

void px_partition_histogram(const px_partition *p, const uint8_t *labels, size_t classes,
                            uint32_t *counts)
{
    memset(counts, 0, p->parts * classes * sizeof *counts);
    for (size_t q = 0; q < p->parts; q++)
        for (uint32_t i = p->offsets[q]; i < p->offsets[q + 1]; i++) {
            uint8_t c = labels[p->indices[i]];
            if (c < classes) counts[q * classes + c]++;
        }
}

/* One part's label mix against the overall one (global, over `total` labelled examples). */
typedef struct {
    uint32_t size, present, top_class, top_count;
    double skew; /* total variation distance between the part's label mix and the overall one */
} px__part_stats;

static px__part_stats px__stats(const px_partition *p, size_t q, const uint8_t *labels,
                                size_t classes, const uint64_t *global, uint64_t total)
{
    px__part_stats s = {.size = p->offsets[q + 1] - p->offsets[q]};
    uint32_t local[PX_PARTITION_MAX_CLASSES] = {0};
    uint32_t counted = 0;
    for (uint32_t i = p->offsets[q]; classes && i < p->offsets[q + 1]; i++) {
        uint8_t c = labels[p->indices[i]];
        if (c < classes) local[c]++, counted++;
    }
    for (size_t c = 0; c < classes; c++) {
        s.present += local[c] > 0;
        if (local[c] > s.top_count) s.top_count = local[c], s.top_class = (uint32_t)c;
        if (counted && total)
            s.skew += fabs((double)local[c] / counted - (double)global[c] / total);
    }
    s.skew /= 2;
    return s;
}

px_status px_partition_summary(const px_partition *p, const uint8_t *labels, size_t classes,
                               FILE *out)
{
    if (classes > PX_PARTITION_MAX_CLASSES) classes = PX_PARTITION_MAX_CLASSES;
    if (!labels) classes = 0;
    uint64_t global[PX_PARTITION_MAX_CLASSES] = {0}, total = 0;
    for (size_t i = 0; classes && i < p->n; i++)
        if (labels[p->indices[i]] < classes) global[labels[p->indices[i]]]++, total++;

    uint32_t min_size = UINT32_MAX, max_size = 0, min_present = UINT32_MAX, max_present = 0;
    double sum_present = 0, sum_share = 0, sum_skew = 0;
    for (size_t q = 0; q < p->parts; q++) {
        px__part_stats s = px__stats(p, q, labels, classes, global, total);
        if (s.size < min_size) min_size = s.size;
        if (s.size > max_size) max_size = s.size;
        if (s.present < min_present) min_present = s.present;
        if (s.present > max_present) max_present = s.present;
        sum_present += s.present;
        sum_share += s.size ? (double)s.top_count / s.size : 0;
        sum_skew += s.skew;
    }
    double parts = p->parts ? (double)p->parts : 1;
    if (!p->parts) min_size = min_present = 0;
    fprintf(out, "partition: %zu parts, %zu examples", p->parts, p->n);
    if (classes) fprintf(out, ", %zu classes", classes);
    fprintf(out, "; examples per part min %u, mean %.1f, max %u", min_size, p->n / parts, max_size);
    if (classes)
        fprintf(out,
                "; classes per part min %u, mean %.2f, max %u; top class share mean %.1f%%; label "
                "skew (mean total variation from the overall mix) %.3f",
                min_present, sum_present / parts, max_present, 100 * sum_share / parts,
                sum_skew / parts);
    fputc('\n', out);
    for (size_t q = 0; q < p->parts; q++) {
        px__part_stats s = px__stats(p, q, labels, classes, global, total);
        fprintf(out, "part %zu: %u examples", q, s.size);
        if (classes)
            fprintf(out, ", %u classes, top class %u holds %.1f%%, skew %.3f", s.present,
                    s.top_class, s.size ? 100.0 * s.top_count / s.size : 0.0, s.skew);
        fputc('\n', out);
    }
    if (ferror(out)) return px_error(PX_EIO, "partition: writing the summary failed");
    return PX_OK;
}

px_status px_partition_write_csv(const px_partition *p, const uint8_t *labels, size_t classes,
                                 const char *path)
{
    if (classes > PX_PARTITION_MAX_CLASSES) classes = PX_PARTITION_MAX_CLASSES;
    if (!labels) classes = 0;
    FILE *f = fopen(path, "w");
    if (!f) return px_error(PX_EIO, "partition: cannot write %s: %s", path, strerror(errno));
    fputs("part,examples", f);
    for (size_t c = 0; c < classes; c++)
        fprintf(f, ",class_%zu", c);
    fputc('\n', f);
    for (size_t q = 0; q < p->parts; q++) {
        uint32_t local[PX_PARTITION_MAX_CLASSES] = {0};
        for (uint32_t i = p->offsets[q]; classes && i < p->offsets[q + 1]; i++)
            if (labels[p->indices[i]] < classes) local[labels[p->indices[i]]]++;
        fprintf(f, "%zu,%u", q, p->offsets[q + 1] - p->offsets[q]);
        for (size_t c = 0; c < classes; c++)
            fprintf(f, ",%u", local[c]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return px_error(PX_EIO, "partition: cannot write %s: %s", path, strerror(errno));
    return PX_OK;
}
