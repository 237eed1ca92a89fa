/* transport.h - how messages travel between the server and the workers.
 *
 * Two transports share one interface:
 * - MPI (transport_mpi.c): rank 0 is the server; ranks 1..W-1 host the logical workers
 *   round-robin (worker w lives on rank 1 + w mod (W-1)). Point-to-point messages only, so that
 *   every wait can have a deadline and a silent rank can be named.
 * - local (transport_local.c): one process hosts the server and every worker; messages are
 *   handed over by pointer, without copies.
 *
 * Messages are whole wire messages (comm/wire.h: header + payload). The transport moves bytes;
 * it does not interpret them beyond what it needs for routing. Every blocking call takes an
 * absolute deadline (px_now_ms() clock) and returns PX_ETIMEOUT with a message naming the
 * silent rank when it passes. Waiting ranks sleep between polls so that they leave the cores
 * to the ranks that compute.
 */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/common.h"

typedef struct px_transport px_transport;

struct px_transport {
    const char *name; /* "mpi" or "local" */
    int rank;         /* this process: 0 = server */
    int world;        /* processes in the job (1 for local) */

    /* ---- server side ---- */
    /* Starts sending the parameter message to every worker rank. `msg` must stay unchanged
     * until params_done returns. */
    px_status (*send_params)(px_transport *t, const unsigned char *msg, size_t len);
    /* Waits until every parameter send of the step has completed. */
    px_status (*params_done)(px_transport *t, double deadline_ms);
    /* Next message from any worker rank. On PX_OK, *msg points at len bytes valid until the next
     * call and *src is the sending rank. PX_ETIMEOUT when nothing arrives before the deadline.
     * PX_EPROTO when a message arrived that was larger than the largest legal message: it was
     * discarded, *len is its size and *src its sender. */
    px_status (*recv)(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                      double deadline_ms);
    /* Tells every worker rank that the run is over. */
    px_status (*send_stop)(px_transport *t, const unsigned char *msg, size_t len,
                           double deadline_ms);

    /* ---- worker side ---- */
    /* Next message from the server (parameters or stop); *msg valid until the next call. */
    px_status (*recv_from_server)(px_transport *t, const unsigned char **msg, size_t *len,
                                  double deadline_ms);
    /* Starts sending one message to the server; `msg` must stay unchanged until sends_done. */
    px_status (*send)(px_transport *t, const unsigned char *msg, size_t len);
    /* Waits until every message handed to send has left. */
    px_status (*sends_done)(px_transport *t, double deadline_ms);

    void (*destroy)(px_transport *t);
};

/* Rank that hosts logical worker w in a job of `world` processes (world >= 2). */
static inline int px_worker_rank(uint32_t w, int world)
{
    return 1 + (int)(w % (uint32_t)(world - 1));
}

/* MPI transport over MPI_COMM_WORLD (MPI must be initialised). `max_msg` is the largest legal
 * message in bytes (receive buffers are sized to it once); `max_sends` the most messages a
 * worker rank sends per step. */
px_status px_transport_mpi_create(px_transport **out, size_t max_msg, size_t max_sends);

/* Start-up agreement of an MPI job: every rank contributes `code` (0 = ready, larger = worse)
 * and learns the worst code and the lowest rank that reported it. A non-blocking collective
 * polled against the deadline, so a rank that never arrives is reported, not waited for. */
px_status px_mpi_agree(int code, double deadline_ms, int *worst_code, int *worst_rank);

/* Local transport for `n_workers` logical workers in this process. */
px_status px_transport_local_create(px_transport **out, size_t n_workers);

#endif
