/* clients.h - federated clients: which ones take part in a round, and their local objective.
 *
 * The sample of a round is a pure function of (run seed, round): every rank draws the same one
 * without a message, and a resumed run draws the same rounds again. Slot i of a round (the
 * logical worker that trains for it, hosted round-robin like any worker) plays client
 * px_fl_round_clients(...)[i].
 */
#ifndef PX_FL_CLIENTS_H
#define PX_FL_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

/* Clients per round: round(clients x fraction), at least 1, at most clients. */
size_t px_fl_clients_per_round(size_t clients, double fraction);

/* The m clients of `round`, drawn uniformly without replacement from [0, K) with the stream
 * (seed, PX_STREAM_CLIENTS, 1, round), in increasing order (so that slot order, and with it
 * the server's summation order, is a function of the set). scratch holds K uint32. */
void px_fl_round_clients(uint64_t seed, uint32_t round, size_t K, size_t m, uint32_t *scratch,
                         uint32_t *out);

/* FedProx's proximal term (Li et al. 2020): grad += mu (w - w_global), n values. */
void px_fl_prox_grad(float *grad, const float *w, const float *w_global, size_t n, float mu);

#endif
