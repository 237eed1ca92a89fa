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

#include "base/common.h"

typedef struct px_transport px_transport;

struct px_transport {
    const char *name; /* "mpi" or "local" */
    int rank;         /* this process: 0 = server */
    int world;        /* processes in the job (1 for local) */

    /* ---- server side ---- */
    /* Sends the parameter message to every worker rank. The transport keeps its own copy, so
     * `msg` may change as soon as this returns. A rank that has not yet taken the previous
     * parameters (stalled, or a straggler) is skipped: *skipped (may be NULL) counts them.
     * With a delta downlink `msg` is usable only by a rank that took every earlier message:
     * then `full` (not NULL) is the complete parameters, sent instead to each rank r marked in
     * needs_full[r] (the mark is cleared), and a skipped rank is marked. needs_full has an entry
     * per rank (index 0 for the one-process transport). */
    px_status (*send_params)(px_transport *t, const unsigned char *msg, size_t len,
                             const unsigned char *full, size_t full_len, uint8_t *needs_full,
                             int *skipped);
    /* Next message from any worker rank. On PX_OK, *msg points at len bytes valid until the next
     * call and *src is the sending rank. PX_ETIMEOUT when nothing arrives before the deadline
     * (local: when no message is left and none is on its way). PX_EPROTO when a message
     * arrived that was larger than the largest legal message: it was discarded, *len is its
     * size and *src its sender. */
    px_status (*recv)(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                      double deadline_ms);
    /* Tells every worker rank that the run is over, then takes in (and discards) whatever they
     * still send until each has answered with a BYE message (comm/wire.h), so that no worker
     * is left waiting on a send. Best effort for ranks that stopped listening: they are not
     * waited for beyond the deadline (PX_ETIMEOUT names how many). */
    px_status (*send_stop)(px_transport *t, const unsigned char *msg, size_t len,
                           double deadline_ms);

    /* ---- worker side ---- */
    /* The next message from the server (parameters or stop), in the order sent; a deadline in
     * the past polls once. *msg is valid until the next call. */
    px_status (*recv_from_server)(px_transport *t, const unsigned char **msg, size_t *len,
                                  double deadline_ms);
    /* Sends one message to the server, not before `ready_at_ms` (px_now_ms clock; 0 = now: a
     * straggler's delay). `msg` must stay unchanged until sends_done. */
    px_status (*send)(px_transport *t, const unsigned char *msg, size_t len, double ready_at_ms);
    /* Waits until every message handed to send has left. */
    px_status (*sends_done)(px_transport *t, double deadline_ms);
    /* 1 if `msg` was handed to send and has not been delivered yet (a straggler's message still
     * on its way): its buffer must not be rewritten. */
    int (*in_flight)(px_transport *t, const unsigned char *msg);

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
