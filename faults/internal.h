/* internal.h - what the files of faults/ share among themselves and nobody else uses: the
 * honest statistics pass (vector_attacks.c) and the adaptive attacks' entry points
 * (adaptive.c). */
#ifndef PX_FAULTS_INTERNAL_H
#define PX_FAULTS_INTERNAL_H

#include "byzantine.h"

/* Per-coordinate mean (and, with want_std, the unbiased standard deviation) of the k rows w
 * of rows[0..n) with honest[w] = 1, into b->mean and b->std; in double, parallel over tiles of
 * coordinates. k >= 1. */
void px__byz_stats(px_byz_server *b, const float *rows, const uint8_t *honest, size_t k, size_t n,
                   int want_std);

/* 1 if the spec's attack is served by adaptive.c (the adaptive attacks, MIMIC farthest). */
int px__byz_is_adaptive(const px_byz_spec *s);

/* Sizes adaptive.c's buffers for up to n_rows rows of b->d values (b->adaptive). */
px_status px__byz_adaptive_create(px_byz_server *b, size_t n_rows);
void px__byz_adaptive_free(px_byz_server *b);

/* Writes every Byzantine row (b->is_byz) of rows[0..n) for an adaptive attack from the k >= 1
 * honest rows (b->honest), sets have[] for them, fills b->last and returns how many rows it
 * wrote. */
size_t px__byz_adaptive_apply(px_byz_server *b, uint32_t step, float *rows, uint8_t *have,
                              size_t n, size_t k);

#endif
