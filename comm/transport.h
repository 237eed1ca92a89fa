/* transport.h - how messages travel between the server and the workers.
 *
 * Three transports share one interface:
 * - MPI (transport_mpi.c): rank 0 is the server; ranks 1..W-1 host the logical workers
 *   round-robin (worker w lives on rank 1 + w mod (W-1)). Point-to-point messages only, so that
 *   every wait can have a deadline and a silent rank can be named.
 * - local (transport_local.c): one process hosts the server and every worker; messages are
 *   handed over by pointer, without copies.
 * - shm (transport_shm.c): the MPI job's ranks, all on one node, exchange messages through
 *   shared memory and wake each other with futexes; MPI only starts it (the segments' key) and
 *   ends the job. Same rank layout and deadlines as MPI.
 * - split (transport_split.c): headers over MPI, payloads over a channel between the ranks'
 *   devices (comm/bulk.h): NCCL (cluster.transport = NCCL), or MPI on the CPU backend.
 *
 * Messages are whole wire messages (comm/wire.h: header + payload), but a transport never reads
 * their bytes: it moves them, and where it must tell one kind from another (a worker rank's last
 * message, send_stop) it asks a classifier that the caller passes in. So the wire format lives
 * in one place, and a transport knows of a message only its length and its sender.
 *
 * No sender can write past a buffer: every receive is sized by the message actually sent
 * (probe, then receive exactly that many bytes), and a message outside the legal sizes is taken
 * in whole, off the hot path, and dropped (PX_EPROTO). Every blocking call takes an absolute
 * deadline (px_now_ms() clock) and returns PX_ETIMEOUT with a message naming the silent rank
 * when it passes. Waiting ranks sleep between polls so that they leave the cores to the ranks
 * that compute.
 */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef struct px_transport px_transport;

/* A classifier of whole messages, passed in by the caller so that the transport need not read
 * the wire format: returns 1 if msg[0..len) is of the kind asked about, else 0. */
typedef int (*px_msg_test)(const unsigned char *msg, size_t len);

struct px_transport {
    const char *name; /* "mpi", "shm", "local", "nccl" or "split-mpi" */
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
     * (local: when no message is left and none is on its way). PX_EPROTO when a message arrived
     * whose size is outside the legal range (MPI: [min_msg, max_msg] of the create function):
     * it was discarded without being written anywhere but a buffer of its own size, *len is
     * its size, *src its sender, and the message names both. The caller may go on receiving.
     * PX_ELOST when rank *src was lost in the middle of a message (MPI): nothing more comes
     * from it; the caller may go on receiving from the others. */
    px_status (*recv)(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                      double deadline_ms);
    /* Tells every worker rank that the run is over (`msg`, sent as send_params sends), then
     * takes in (and discards) whatever they still send until each has sent a message that
     * `is_last` accepts (the caller's knowledge: comm/wire.h px_wire_is_bye), so that no worker
     * is left waiting on a send. Best effort for ranks that stopped listening: they are not
     * waited for beyond the deadline (PX_ETIMEOUT names how many). */
    px_status (*send_stop)(px_transport *t, const unsigned char *msg, size_t len,
                           px_msg_test is_last, double deadline_ms);

    /* ---- worker side ---- */
    /* The next message from the server (parameters or stop), in the order sent; a deadline in
     * the past polls once. *msg is valid until the next call. PX_EPROTO when the server sent a
     * message outside the legal sizes (discarded as recv does): the caller decides; a worker
     * rank cannot trust the server's stream after it. */
    px_status (*recv_from_server)(px_transport *t, const unsigned char **msg, size_t *len,
                                  double deadline_ms);
    /* Sends one message to the server, not before `ready_at_ms` (px_now_ms clock; 0 = now: a
     * straggler's delay). `msg` must stay unchanged until sends_done succeeds; if it never
     * does, until destroy has returned (free the buffers handed to send after destroy). */
    px_status (*send)(px_transport *t, const unsigned char *msg, size_t len, double ready_at_ms);
    /* Waits until every message handed to send has left. */
    px_status (*sends_done)(px_transport *t, double deadline_ms);
    /* 1 if `msg` was handed to send and has not been delivered yet (a straggler's message still
     * on its way): its buffer must not be rewritten. */
    int (*in_flight)(px_transport *t, const unsigned char *msg);
    /* Optional (NULL where a transport has none to give): a buffer of the transport's own, of at
     * least `len` bytes, for the message of the i-th logical worker this rank hosts, so that a
     * message built there is sent without a copy (shm: the worker's slot in shared memory).
     * NULL when it has none for i. The buffer stays the transport's: valid until destroy; the
     * rules of send and in_flight apply to it as to any message. */
    unsigned char *(*send_buffer)(px_transport *t, size_t i, size_t len);
    /* Set by the caller, optional (NULL: memcpy): how a transport that copies a received
     * message into its own buffer copies it (shm: out of the sender's slot), with copy_user
     * passed along: comm/wire.h px_wire_copy checks the payload's CRC in the same pass. MPI and
     * local do not copy (the kernel does, or nothing does) and ignore it. */
    void (*copy_in)(void *user, unsigned char *dst, const unsigned char *src, size_t len);
    void *copy_user;

    /* Ends every request still pending (cancelled, then given a short bounded wait to
     * complete), then frees what the transport owns. A send that can neither complete nor be
     * cancelled in that time (a peer that stopped listening) is abandoned to MPI, and the
     * transport's own buffer it reads is deliberately not freed: the process is ending, and a
     * leak is safe where a free is not. Call before MPI_Finalize, and before freeing the
     * buffers handed to send. */
    void (*destroy)(px_transport *t);
};

/* Rank that hosts logical worker w in a job of `world` processes (world >= 2). */
static inline int px_worker_rank(uint32_t w, int world)
{
    return 1 + (int)(w % (uint32_t)(world - 1));
}

/* The longest illegal message the MPI transport takes in (into a temporary buffer of its size)
 * in order to drop it. MPI lets a sender announce up to 2 GiB, and a receiver must not allocate
 * that on a hostile rank's word: a longer message is matched (so that it blocks no other) but
 * never received. That costs the receiver MPI's bookkeeping of one message (the bytes stay with
 * the sender, as for any message above MPI's eager limit); the sender's send never completes,
 * which is its own affair. */
#define PX_MPI_DRAIN_MAX_BYTES ((size_t)64 << 20)

/* MPI transport over MPI_COMM_WORLD (MPI must be initialised). Legal messages are min_msg to
 * max_msg bytes (the caller's format: at least a header; at most the largest header + payload);
 * the receive buffer is sized to max_msg once. A message outside that range is received whole
 * into rbuf (shorter) or a temporary buffer of its exact size (longer, up to
 * PX_MPI_DRAIN_MAX_BYTES), and dropped: recv returns PX_EPROTO. `max_sends` is the most messages
 * a worker rank sends per step. A message is matched on its first bytes; the rest must arrive
 * within `stall_ms` (or by the receive's deadline, if later), otherwise its sender is taken as
 * lost mid-message (a cut link, a dead rank): the receive fails with PX_ELOST, *src naming the
 * rank; the buffer it was going into stays MPI's (never freed), and the rank's later messages
 * are dropped unseen, so the caller may go on without it. Sets MPI_ERRORS_RETURN on
 * MPI_COMM_WORLD: MPI failures come back as codes. */
px_status px_transport_mpi_create(px_transport **out, size_t min_msg, size_t max_msg,
                                  size_t max_sends, double stall_ms);

/* The same over a communicator of the job's ranks (`comm` points at an MPI_Comm; its rank 0
 * is the server this transport talks to), for a server of several shards: one transport per
 * shard, over that shard and the worker ranks. `server_name` (kept, not copied) names the
 * server in the workers' errors ("server shard 1 (rank 1)"); errors name ranks as
 * MPI_COMM_WORLD numbers them, and recv's *src is the rank in `comm`. */
px_status px_transport_mpi_create_on(px_transport **out, const void *comm,
                                     const char *server_name, size_t min_msg, size_t max_msg,
                                     size_t max_sends, double stall_ms);

/* Start-up agreement of an MPI job: every rank contributes `code` (0 = ready, larger = worse)
 * and learns the worst code and the lowest rank that reported it. A non-blocking collective
 * polled against the deadline, so a rank that never arrives is reported, not waited for (the
 * collective, which MPI cannot cancel, then stays pending on buffers of static storage). Once
 * per process. */
px_status px_mpi_agree(int code, double deadline_ms, int *worst_code, int *worst_rank);

/* Shared-memory transport over MPI_COMM_WORLD (MPI initialised, every rank calls it, after the
 * start-up agreement: it is collective). Fails with PX_EINVAL when the ranks are not all on one
 * node. Rank 0 draws a key and broadcasts it, then every rank attaches (below) and all agree
 * whether every rank did, so that all go on or all fail; every wait ends at the deadline.
 * `n_workers` logical workers are placed as px_worker_rank places them; legal messages are
 * min_msg to max_msg bytes, as for MPI. */
px_status px_transport_shm_create(px_transport **out, size_t min_msg, size_t max_msg,
                                  size_t n_workers, double deadline_ms);

/* The same transport without MPI (tests, and the part of the above after the key): rank `rank`
 * of `world` processes that agreed on `key` (1 to 48 characters, no '/') attaches to the
 * segments named after it: rank 0 creates its segments and waits (until the deadline) for each
 * worker rank's; a worker rank waits for rank 0's, then creates its own. Every segment is
 * unlinked as soon as the ranks that use it mapped it, and by destroy on any error path. */
px_status px_transport_shm_attach(px_transport **out, const char *key, int rank, int world,
                                  size_t min_msg, size_t max_msg, size_t n_workers,
                                  double deadline_ms);

/* Split transport over MPI_COMM_WORLD (collective: every rank calls it, after the start-up
 * agreement): each message's first min_msg bytes (the header) travel over MPI as the MPI
 * transport's do, the rest (the payload) over the channel `bulk` (comm/bulk.h: NCCL between
 * the ranks' GPUs, or MPI on the CPU backend), which the transport owns from here on, even on
 * failure. Same rank layout, legal sizes and deadlines as MPI; a payload that stops arriving
 * for stall_ms aborts the channel and fails the transport with the rank named (a collective
 * library cannot drop one peer and go on). A worker's send returns once its message is
 * delivered or refused. comm/transport_split.c says how each transfer is agreed. */
struct px_bulk;
px_status px_transport_split_create(px_transport **out, struct px_bulk *bulk, size_t min_msg,
                                    size_t max_msg, double stall_ms);

/* The drain of send_stop, shared by the transports of several ranks: takes in (and drops)
 * what t->recv delivers until each rank r with told[r] set has sent a message that is_last
 * accepts (told[r] is then cleared). An illegal message (PX_EPROTO) is dropped and the drain
 * goes on; PX_ETIMEOUT at the deadline names how many ranks never answered; another failure of
 * the transport is returned as it is. */
px_status px_transport_await_last(px_transport *t, int *told, px_msg_test is_last,
                                  double deadline_ms);
/* send_stop's result: `st`, or, when it is PX_OK but `untold` ranks never took their last
 * messages (stalled or dead), PX_ETIMEOUT saying how many. */
px_status px_transport_stop_result(px_status st, int untold);

/* Local transport for `n_workers` logical workers in this process. */
px_status px_transport_local_create(px_transport **out, size_t n_workers);

#endif
