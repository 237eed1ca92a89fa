/* partition.h - who holds which training examples: the partitioners of the federated clients
 * and of the distributed workers (ALGORITHMS.md 4.2), over any dataset.
 *
 * A partition is a list of example indices per part (a client or a worker): IID, Dirichlet over
 * the labels (Hsu et al. 2019) or label shards (McMahan et al. 2017). It is a pure function of
 * its inputs and the run seed, drawn from named streams, so every rank that computes it gets the
 * same bytes without talking, and a resumed run gets the partition it started with.
 *
 * Random streams: px_rng_init(&r, seed, PX_STREAM_CLIENTS, a, b) with a one of the purposes
 * below (other users of PX_STREAM_CLIENTS, such as client sampling, take other values of a).
 */
#ifndef PX_PARTITION_H
#define PX_PARTITION_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

/* The partitioners. */
typedef enum {
    PX_PARTITION_IID = 0,       /* a seeded permutation cut into nearly equal pieces */
    PX_PARTITION_DIRICHLET = 1, /* per class, proportions q_c ~ Dir(alpha * 1_parts) */
    PX_PARTITION_SHARDS = 2,    /* label-sorted examples cut into 2 * parts shards, 2 per part */
    PX_PARTITION_KIND_COUNT
} px_partition_kind;

/* Stream purposes (the `a` of PX_STREAM_CLIENTS streams), one per kind of draw. */
#define PX_PARTITION_STREAM_IID       0x7061727469696431ull /* IID permutation; b = 0 */
#define PX_PARTITION_STREAM_CLASS     0x70617274636c7331ull /* Dirichlet: order of class c; b = c */
#define PX_PARTITION_STREAM_DIRICHLET 0x7061727464697231ull /* q_c of draw k; b = k * 256 + c */
#define PX_PARTITION_STREAM_SHARDS    0x7061727473686431ull /* permutation of the shards; b = 0 */

/* Dirichlet draws tried before a part that received no example is an error. */
#define PX_PARTITION_DRAWS 100u

/* Most classes: labels are bytes. */
#define PX_PARTITION_MAX_CLASSES 256u

typedef struct {
    size_t parts;      /* clients or workers */
    size_t n;          /* examples partitioned */
    uint32_t *offsets; /* parts + 1: part p holds indices[offsets[p] .. offsets[p+1]) */
    uint32_t *indices; /* n example indices, each exactly once, ascending within a part */
} px_partition;

/* Upper-case name of a kind ("DIRICHLET"), for messages and summaries; "UNKNOWN" out of range. */
const char *px_partition_kind_name(px_partition_kind kind);

/* Partitions the examples 0 .. n-1 among `parts` parts, every example to exactly one part and
 * every part at least one example; within a part the indices are ascending (the order examples
 * are visited in is the data loader's business, not the partition's).
 *
 * labels: n values, each < classes (1 <= classes <= PX_PARTITION_MAX_CLASSES); may be NULL for
 * IID (text data has no per-example label), must be given for DIRICHLET and SHARDS.
 * - IID: a permutation of 0 .. n-1 cut into parts pieces whose sizes differ by at most 1.
 * - DIRICHLET: for each class c, its examples in a seeded order are split by proportions
 *   q_c ~ Dir(alpha * 1_parts), each part receiving round(m_c * Q_p) - round(m_c * Q_{p-1}) of
 *   them (Q the cumulative proportions), so that nothing is lost to rounding. alpha > 0 and
 *   finite; large alpha approaches IID, alpha = 0.1 gives most parts 1-2 classes. A draw in
 *   which some part receives nothing is redrawn (draws k = 0, 1, ..., PX_PARTITION_DRAWS - 1;
 *   draw 0 is the one a run normally gets); after the last, PX_EINVAL names the part. alpha is
 *   ignored by the other kinds.
 * - SHARDS: examples sorted by label (ties by index) cut into 2 * parts shards of nearly equal
 *   size, part p receiving shards s[2p] and s[2p + 1] of a seeded permutation s; needs
 *   n >= 2 * parts.
 *
 * Deterministic: the same inputs give byte-identical offsets and indices (single-threaded).
 * The result owns two arrays, n + parts + 1 uint32 in all; while it runs the call also uses an
 * n-uint32 scratch (DIRICHLET, SHARDS) and parts doubles or 2 * parts uint32, freed on return.
 * On failure (PX_EINVAL for bad input: parts 0 or > n, n > UINT32_MAX, bad classes, alpha or
 * labels, a kind out of range; PX_ENOMEM) *p is left zeroed with nothing allocated, and the
 * message names the value and the rule. Free with px_partition_free. */
px_status px_partition_make(px_partition *p, px_partition_kind kind, const uint8_t *labels,
                            size_t n, size_t classes, size_t parts, double alpha, uint64_t seed);

/* Frees what px_partition_make allocated and zeroes *p; safe on a zeroed or freed partition. */
void px_partition_free(px_partition *p);

/* Label counts per part: counts[q * classes + c] = examples of part q with label c (counts is
 * parts x classes, caller-allocated, overwritten; labels, the n labels make was given, not NULL).
 * Labels >= classes are not counted (make refused them whenever it was given labels). */
void px_partition_histogram(const px_partition *p, const uint8_t *labels, size_t classes,
                            uint32_t *counts);

/* Writes a short summary of the partition to `out`: one overall line (parts, examples, classes;
 * examples per part min / mean / max; classes present per part min / mean / max; the mean share
 * of a part's largest class; the label skew, as the mean total variation distance between a
 * part's label mix and the overall one), then one line per part (examples, classes present, the
 * largest class and its share). labels may be NULL (text data): then only the example counts.
 * Needs no allocation. PX_EIO if writing to `out` failed. */
px_status px_partition_summary(const px_partition *p, const uint8_t *labels, size_t classes,
                               FILE *out);

/* Writes the full histogram as CSV to `path`: a header "part,examples,class_0,...", then one row
 * per part (labels NULL: "part,examples" only). PX_EIO with the path and the cause if the file
 * cannot be written. */
px_status px_partition_write_csv(const px_partition *p, const uint8_t *labels, size_t classes,
                                 const char *path);

#endif
