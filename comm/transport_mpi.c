/* transport_mpi.c - the MPI transport (see transport.h): point-to-point nonblocking messages
 * polled against a deadline. Collectives are avoided on purpose: a collective that one rank
 * never joins cannot be timed out or attributed to that rank.
 *
 * Every receive is sized by the message actually sent: probe (MPI_Improbe matches the message,
 * so no other receive can take it), read its size, receive exactly that many bytes. A message
 * outside the legal sizes is received whole into a buffer of its own size and dropped. Relying
 * on MPI's truncation instead is not safe: Open MPI's shared-memory path writes an oversized
 * message whole into a smaller buffer, so one hostile rank could crash the server.
 *
 * The server copies each parameter message into a buffer of its own before sending, and does
 * not send to a rank that has not taken the previous one: a stalled or slow rank then holds
 * one old buffer, never the one being rewritten, and never blocks the others. A buffer is freed
 * only once no send reads it. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

enum { PX__TAG_FROM_SERVER = 11, PX__TAG_TO_SERVER = 12 };
#define PX__POLL_US 50u /* sleep between polls: small against a step, frees the core */
/* How long destroy waits for cancelled requests to end: long enough for a peer that is alive
 * to take a message already on its way, short on an error path that ends the job. */
#define PX__DESTROY_GRACE_MS 500.0

typedef struct {
    unsigned char *data;
    int users;  /* sends not yet complete that read this buffer */
    int staged; /* being filled for the sends of this call */
} px__buffer;

typedef struct {
    px_transport base;
    MPI_Comm comm;           /* the job's ranks this transport joins: rank 0 is its server */
    int *world_of;           /* per rank of comm: its rank in MPI_COMM_WORLD (for messages) */
    const char *server_name; /* "the server (rank 0)", or a shard's name */
    size_t min_msg, max_msg;
    unsigned char *rbuf;
    /* server: parameter buffers (one in normal operation, one more per lagging rank) */
    px__buffer *bufs;
    int n_bufs, max_bufs;
    /* per rank: lost mid-message (its receive never completed; the buffer it was going into is
     * abandoned to MPI, never freed), and no longer listened to */
    uint8_t *lost;
    double stall_ms;      /* how long the rest of a matched message may take (create's stall_ms) */
    MPI_Request *to_rank; /* per rank: the pending parameter send, or MPI_REQUEST_NULL */
    int *to_rank_buf;     /* per rank: the buffer that send reads */
    /* worker: sends of this step and the (caller's) messages they read */
    MPI_Request *sends;
    const unsigned char **send_msg;
    size_t n_sends, max_sends;
} px__mpi;

/* Rank r of the transport's communicator as MPI_COMM_WORLD numbers it (what a user sees). */
static int px__world(const px__mpi *m, int r)
{
    return m->world_of && r >= 0 && r < m->base.world ? m->world_of[r] : r;
}

/* Waits for reqs[0..n) until the deadline: PX_OK, or PX_ETIMEOUT. */
static px_status px__wait_all(MPI_Request *reqs, int n, double deadline_ms)
{
    for (;;) {
        int done = 0;
        if (MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "MPI_Testall failed");
        if (done) return PX_OK;
        if (px_now_ms() > deadline_ms) return PX_ETIMEOUT;
        px_sleep_us(PX__POLL_US);
    }
}

/* Cancels every active request of reqs[0..n) and waits until each has ended (completed or
 * cancelled; MPI_REQUEST_NULL then) or the deadline passes. Returns how many are still
 * active: a send that the peer neither takes nor lets go (Open MPI cannot cancel a send). */
static int px__cancel_all(MPI_Request *reqs, int n, double deadline_ms)
{
    for (int i = 0; i < n; i++)
        if (reqs[i] != MPI_REQUEST_NULL) MPI_Cancel(&reqs[i]);
    for (;;) {
        int active = 0;
        for (int i = 0; i < n; i++) {
            if (reqs[i] == MPI_REQUEST_NULL) continue;
            int done = 0;
            if (MPI_Test(&reqs[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done) active++;
        }
        if (!active || px_now_ms() > deadline_ms) return active;
        px_sleep_us(PX__POLL_US);
    }
}

/* Marks completed parameter sends; their buffers become free. */
static void px__reap(px__mpi *m)
{
    for (int r = 1; r < m->base.world; r++) {
        if (m->to_rank[r] == MPI_REQUEST_NULL) continue;
        int done = 0;
        if (MPI_Test(&m->to_rank[r], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) continue;
        if (done) {
            m->bufs[m->to_rank_buf[r]].users--;
            m->to_rank[r] = MPI_REQUEST_NULL;
        }
    }
}

/* A parameter buffer no pending send reads, holding a copy of msg. */
static px_status px__stage(px__mpi *m, const unsigned char *msg, size_t len, int *out)
{
    if (len > m->max_msg)
        return px_error(PX_EINVAL,
                        "mpi: a message of %zu bytes, more than the largest legal "
                        "message (%zu bytes)",
                        len, m->max_msg);
    int b = 0;
    while (b < m->n_bufs && (m->bufs[b].users > 0 || m->bufs[b].staged))
        b++;
    if (b == m->n_bufs) {
        /* every buffer is held by a lagging rank: one more (happens only when ranks lag) */
        if (m->n_bufs >= m->max_bufs) return px_error(PX_ERUNTIME, "mpi: no free parameter buffer");
        m->bufs[b].data = px_alloc(m->max_msg, "a parameter buffer");
        if (!m->bufs[b].data) return PX_ENOMEM;
        m->n_bufs++;
    }
    memcpy(m->bufs[b].data, msg, len);
    m->bufs[b].staged = 1;
    *out = b;
    return PX_OK;
}

static px_status px__send_to_ranks(px__mpi *m, const unsigned char *msg, size_t len,
                                   const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                   int *skipped)
{
    /* MPI counts are ints: refused here, where the casts below are (px__stage's bound, the
     * largest legal message, is also below INT_MAX, but that is the creator's promise) */
    if (len > (size_t)INT_MAX || (full && full_len > (size_t)INT_MAX))
        return px_error(PX_EINVAL,
                        "mpi: a parameter message of %zu bytes, more than MPI's count limit "
                        "(INT_MAX = %d bytes)",
                        len > (size_t)INT_MAX ? len : full_len, INT_MAX);
    px__reap(m);
    int b_msg = -1, b_full = -1, skip = 0;
    px_status st = PX_OK;
    PX_CHECK_GOTO(px__stage(m, msg, len, &b_msg), st, done);
    if (full && needs_full) {
        int any = 0;
        for (int r = 1; r < m->base.world; r++)
            any |= needs_full[r] && m->to_rank[r] == MPI_REQUEST_NULL;
        if (any) PX_CHECK_GOTO(px__stage(m, full, full_len, &b_full), st, done);
    }
    for (int r = 1; r < m->base.world; r++) {
        if (m->to_rank[r] != MPI_REQUEST_NULL) {
            skip++; /* still has not taken the previous message */
            if (needs_full) needs_full[r] = 1; /* its next message must be the full one */
            continue;
        }
        int use_full = b_full >= 0 && needs_full[r];
        int b = use_full ? b_full : b_msg;
        if (MPI_Isend(m->bufs[b].data, (int)(use_full ? full_len : len), MPI_BYTE, r,
                      PX__TAG_FROM_SERVER, m->comm, &m->to_rank[r]) != MPI_SUCCESS) {
            m->to_rank[r] = MPI_REQUEST_NULL;
            st = px_error(PX_ERUNTIME, "mpi: cannot start the send to rank %d", px__world(m, r));
            goto done;
        }
        if (use_full) needs_full[r] = 0;
        m->to_rank_buf[r] = b;
        m->bufs[b].users++;
    }
    if (skipped) *skipped = skip;
done:
    /* on failure too: a staged buffer that no send reads is free again */
    if (b_msg >= 0) m->bufs[b_msg].staged = 0;
    if (b_full >= 0) m->bufs[b_full].staged = 0;
    return st;
}

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len,
                                 const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                 int *skipped)
{
    return px__send_to_ranks((px__mpi *)t, msg, len, full, full_len, needs_full, skipped);
}

/* Takes in and throws away a message that `handle` matched, of a size outside the legal range:
 * `len` bytes from rank `src`. It is received exactly (into rbuf when it fits, otherwise into a
 * temporary buffer of its size), so no byte lands past a buffer; see PX_MPI_DRAIN_MAX_BYTES for
 * one too long to take in. Returns PX_EPROTO naming the rank and the size, or PX_ERUNTIME if
 * MPI failed. */
static px_status px__discard(px__mpi *m, MPI_Message *handle, int src, size_t len)
{
    int too_short = len < m->min_msg;
    const char *rule = too_short ? "less than the smallest" : "more than the largest";
    size_t limit = too_short ? m->min_msg : m->max_msg;
    unsigned char *sink = len <= m->max_msg ? m->rbuf : NULL;
    if (!sink && len > PX_MPI_DRAIN_MAX_BYTES)
        return px_error(PX_EPROTO,
                        "rank %d sent %zu bytes, %s legal message (%zu bytes); not taken in: "
                        "more than the %zu bytes the transport drains",
                        px__world(m, src), len, rule, limit, PX_MPI_DRAIN_MAX_BYTES);
    if (!sink) sink = malloc(len);
    if (!sink)
        return px_error(PX_EPROTO,
                        "rank %d sent %zu bytes, %s legal message (%zu bytes); not taken in: "
                        "no memory to drain it",
                        px__world(m, src), len, rule, limit);
    int rc = MPI_Mrecv(sink, (int)len, MPI_BYTE, handle, MPI_STATUS_IGNORE);
    if (sink != m->rbuf) free(sink);
    if (rc != MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "mpi: receiving the %zu-byte message of rank %d failed", len,
                        px__world(m, src));
    return px_error(PX_EPROTO, "rank %d sent %zu bytes, %s legal message (%zu bytes)",
                    px__world(m, src), len, rule, limit);
}

/* A message matched from a rank already lost: taken in if it is all there, otherwise left to
 * MPI (request freed, buffer never freed); dropped either way, without waiting for it. */
static void px__forget(MPI_Message *handle, int count)
{
    unsigned char *sink = malloc(count > 0 ? (size_t)count : 1);
    MPI_Request req;
    if (!sink || MPI_Imrecv(sink, count, MPI_BYTE, handle, &req) != MPI_SUCCESS) {
        free(sink);
        return;
    }
    int done = 0;
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) {
        free(sink);
        return;
    }
    MPI_Request_free(&req); /* sink stays MPI's */
}

/* Receives the next message with `tag` from `source` into rbuf; a deadline in the past polls
 * once. A rank whose message stops arriving mid-way is lost: PX_ELOST names it (*src), and its
 * later messages are dropped unseen. */
static px_status px__recv(px__mpi *m, int source, int tag, const unsigned char **msg, size_t *len,
                          int *src, double deadline_ms)
{
    for (;;) {
        int flag = 0;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(source, tag, m->comm, &flag, &handle, &status) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "mpi: MPI_Improbe failed");
        if (flag) {
            int count = MPI_UNDEFINED;
            *src = status.MPI_SOURCE;
            if (MPI_Get_count(&status, MPI_BYTE, &count) != MPI_SUCCESS || count < 0)
                return px_error(PX_ERUNTIME, "mpi: cannot tell the size of rank %d's message",
                                px__world(m, *src));
            *len = (size_t)count;
            if (*src >= 0 && *src < m->base.world && m->lost[*src]) {
                px__forget(&handle, count);
                continue;
            }
            if (*len < m->min_msg || *len > m->max_msg) return px__discard(m, &handle, *src, *len);
            /* not MPI_Mrecv: a message above the eager limit is matched on its first
             * fragment, and a blocking receive of the rest never returns when the sender's
             * link is cut mid-message (seen on tests/cluster/: the server hung in MPI_Mrecv) */
            MPI_Request req;
            if (MPI_Imrecv(m->rbuf, count, MPI_BYTE, &handle, &req) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "mpi: receive from rank %d failed",
                                px__world(m, *src));
            /* the first bytes are in: the rest gets stall_ms, or until the deadline if later */
            double until = px_now_ms() + m->stall_ms;
            if (deadline_ms > until) until = deadline_ms;
            px_status ws = px__wait_all(&req, 1, until);
            if (ws == PX_ETIMEOUT) {
                /* MPI may still write into rbuf: it is abandoned (never freed), the rank is no
                 * longer listened to, and later receives go into a fresh buffer */
                MPI_Request_free(&req);
                m->lost[*src] = 1;
                m->rbuf = px_alloc(m->max_msg, "the receive buffer");
                if (!m->rbuf) return PX_ENOMEM;
                return px_error(PX_ELOST,
                                "rank %d's message of %zu bytes stopped arriving mid-way: the "
                                "rest did not come within %.0f ms (cluster.timeout_ms): "
                                "link lost or rank dead",
                                px__world(m, *src), *len, m->stall_ms);
            }
            if (ws < 0)
                return px_error(PX_ERUNTIME, "mpi: receive from rank %d failed",
                                px__world(m, *src));
            *msg = m->rbuf;
            return PX_OK;
        }
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "no message before the deadline");
        px_sleep_us(PX__POLL_US);
    }
}

static px_status px__server_recv(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                                 double deadline_ms)
{
    return px__recv((px__mpi *)t, MPI_ANY_SOURCE, PX__TAG_TO_SERVER, msg, len, src, deadline_ms);
}

static px_status px__send_stop(px_transport *t, const unsigned char *msg, size_t len,
                               px_msg_test is_last, double deadline_ms)
{
    px__mpi *m = (px__mpi *)t;
    /* give lagging ranks until the deadline to take their last parameters, then tell every
     * rank that listens to stop */
    int *told = calloc((size_t)t->world, sizeof *told);
    if (!told) return px_error(PX_ENOMEM, "mpi: cannot allocate");
    double lag_deadline = px_now_ms() + (deadline_ms - px_now_ms()) / 2;
    for (;;) {
        px__reap(m);
        int pending = 0;
        for (int r = 1; r < t->world; r++)
            pending += m->to_rank[r] != MPI_REQUEST_NULL;
        if (!pending || px_now_ms() > lag_deadline) break;
        px_sleep_us(PX__POLL_US);
    }
    for (int r = 1; r < t->world; r++)
        told[r] = m->to_rank[r] == MPI_REQUEST_NULL;
    px_status st = px__send_to_ranks(m, msg, len, NULL, 0, NULL, NULL);
    /* drain: gradients still on their way are discarded; each told rank ends with its last
     * message (BYE), which the caller's classifier recognises */
    if (st == PX_OK) st = px_transport_await_last(t, told, is_last, deadline_ms);
    px__reap(m);
    int untold = 0;
    for (int r = 1; r < t->world; r++)
        untold += m->to_rank[r] != MPI_REQUEST_NULL;
    free(told);
    return px_transport_stop_result(st, untold);
}

static px_status px__recv_from_server(px_transport *t, const unsigned char **msg, size_t *len,
                                      double deadline_ms)
{
    px__mpi *m = (px__mpi *)t;
    int src;
    px_status st = px__recv(m, 0, PX__TAG_FROM_SERVER, msg, len, &src, deadline_ms);
    if (st == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT,
                        "no message from %s before the deadline (cluster.timeout_ms): stalled "
                        "or dead",
                        m->server_name);
    if (st == PX_EPROTO) return px_error_context(st, "a broken message from %s", m->server_name);
    if (st == PX_ELOST) return px_error_context(st, "%s", m->server_name);
    return st;
}

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len, double ready_at)
{
    px__mpi *m = (px__mpi *)t;
    if (m->n_sends >= m->max_sends)
        return px_error(PX_EINVAL, "mpi: more than %zu sends in one step", m->max_sends);
    if (len > (size_t)INT_MAX)
        return px_error(PX_EINVAL, "mpi: a message of %zu bytes, more than MPI's count limit", len);
    /* a straggler really is late: sleep in slices (one sleep of the whole delay would overflow
     * the microsecond count past about 71 minutes) */
    for (double wait = ready_at - px_now_ms(); wait > 0; wait = ready_at - px_now_ms())
        px_sleep_us(wait > 1000.0 ? 1000000u : (unsigned)(wait * 1000) + 1);
    if (MPI_Isend(msg, (int)len, MPI_BYTE, 0, PX__TAG_TO_SERVER, m->comm,
                  &m->sends[m->n_sends]) != MPI_SUCCESS) {
        m->sends[m->n_sends] = MPI_REQUEST_NULL;
        return px_error(PX_ERUNTIME, "cannot start a send to %s", m->server_name);
    }
    m->send_msg[m->n_sends] = msg;
    m->n_sends++;
    return PX_OK;
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    px__mpi *m = (px__mpi *)t;
    if (m->n_sends == 0) return PX_OK;
    px_status st = px__wait_all(m->sends, (int)m->n_sends, deadline_ms);
    if (st == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT,
                        "%s did not take our messages before the deadline (cluster.timeout_ms): "
                        "stalled or dead",
                        m->server_name);
    if (st == PX_OK) m->n_sends = 0;
    return st;
}

static int px__in_flight(px_transport *t, const unsigned char *msg)
{
    px__mpi *m = (px__mpi *)t;
    for (size_t i = 0; i < m->n_sends; i++) {
        if (m->send_msg[i] != msg || m->sends[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        if (MPI_Test(&m->sends[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done) return 1;
    }
    return 0;
}

static void px__destroy(px_transport *t)
{
    px__mpi *m = (px__mpi *)t;
    if (!m) return;
    /* end every pending request before freeing anything a send reads: sends to lagging ranks
     * (server), sends the server never took (worker, on an error path) */
    double deadline = px_now_ms() + PX__DESTROY_GRACE_MS;
    if (m->to_rank) px__cancel_all(m->to_rank, m->base.world, deadline);
    if (m->sends) px__cancel_all(m->sends, (int)m->n_sends, deadline);
    for (int b = 0; b < m->n_bufs; b++)
        m->bufs[b].users = 0;
    for (int r = 1; m->to_rank && r < m->base.world; r++) {
        if (m->to_rank[r] == MPI_REQUEST_NULL) continue;
        m->bufs[m->to_rank_buf[r]].users++; /* abandoned: its buffer is never freed */
        MPI_Request_free(&m->to_rank[r]);
    }
    for (size_t i = 0; m->sends && i < m->n_sends; i++)
        if (m->sends[i] != MPI_REQUEST_NULL) MPI_Request_free(&m->sends[i]);
    px_free(m->rbuf);
    free(m->lost);
    free(m->world_of);
    for (int b = 0; b < m->n_bufs; b++)
        if (m->bufs[b].users == 0) px_free(m->bufs[b].data);
    free(m->bufs);
    free(m->to_rank);
    free(m->to_rank_buf);
    free(m->sends);
    free(m->send_msg);
    free(m);
}

px_status px_transport_mpi_create(px_transport **out, size_t min_msg, size_t max_msg,
                                  size_t max_sends, double stall_ms)
{
    static MPI_Comm world = MPI_COMM_WORLD;
    return px_transport_mpi_create_on(out, &world, "the server (rank 0)", min_msg, max_msg,
                                      max_sends, stall_ms);
}

px_status px_transport_mpi_create_on(px_transport **out, const void *comm,
                                     const char *server_name, size_t min_msg, size_t max_msg,
                                     size_t max_sends, double stall_ms)
{
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return px_error(PX_EINVAL, "mpi transport: MPI is not initialised");
    if (max_msg == 0 || max_msg > (size_t)INT_MAX || min_msg > max_msg)
        return px_error(PX_EINVAL,
                        "mpi transport: legal message sizes [%zu, %zu] bytes must be a "
                        "non-empty range within MPI's count limit (%d)",
                        min_msg, max_msg, INT_MAX);
    px__mpi *m = calloc(1, sizeof *m);
    if (!m) return px_error(PX_ENOMEM, "mpi transport: cannot allocate");
    m->comm = *(const MPI_Comm *)comm;
    m->server_name = server_name;
    MPI_Comm_rank(m->comm, &m->base.rank);
    MPI_Comm_size(m->comm, &m->base.world);
    int world = m->base.world;
    if (world < 2) {
        free(m);
        return px_error(PX_EINVAL, "mpi transport: needs at least 2 ranks, the job has %d", world);
    }
    /* errors come back as codes: a failed receive is reported, not fatal to the job */
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    m->base.name = "mpi";
    m->stall_ms = stall_ms;
    m->min_msg = min_msg;
    m->max_msg = max_msg;
    m->max_sends = max_sends ? max_sends : 1;
    m->rbuf = px_alloc(max_msg, "the receive buffer");
    /* a lagging rank holds at most one buffer; a step stages at most two (delta and full) */
    m->max_bufs = world + 2;
    m->bufs = calloc((size_t)m->max_bufs, sizeof *m->bufs);
    m->to_rank = malloc((size_t)world * sizeof *m->to_rank);
    m->to_rank_buf = calloc((size_t)world, sizeof *m->to_rank_buf);
    m->lost = calloc((size_t)world, 1);
    m->world_of = malloc((size_t)world * sizeof *m->world_of);
    if (m->world_of) {
        MPI_Group g, wg;
        MPI_Comm_group(m->comm, &g);
        MPI_Comm_group(MPI_COMM_WORLD, &wg);
        for (int r = 0; r < world; r++)
            m->world_of[r] = r;
        MPI_Group_translate_ranks(g, world, m->world_of, wg, m->world_of);
        MPI_Group_free(&g);
        MPI_Group_free(&wg);
    }
    m->sends = malloc(m->max_sends * sizeof *m->sends);
    m->send_msg = calloc(m->max_sends, sizeof *m->send_msg);
    if (m->to_rank)
        for (int r = 0; r < world; r++)
            m->to_rank[r] = MPI_REQUEST_NULL;
    if (m->sends)
        for (size_t i = 0; i < m->max_sends; i++)
            m->sends[i] = MPI_REQUEST_NULL;
    if (!m->rbuf || !m->bufs || !m->to_rank || !m->to_rank_buf || !m->lost || !m->world_of ||
        !m->sends || !m->send_msg) {
        px__destroy(&m->base);
        return px_error(PX_ENOMEM, "mpi transport: cannot allocate buffers");
    }
    if (m->base.rank == 0) {
        m->bufs[0].data = px_alloc(max_msg, "a parameter buffer");
        if (!m->bufs[0].data) {
            px__destroy(&m->base);
            return PX_ENOMEM;
        }
        m->n_bufs = 1;
    }
    m->base.send_params = px__send_params;
    m->base.recv = px__server_recv;
    m->base.send_stop = px__send_stop;
    m->base.recv_from_server = px__recv_from_server;
    m->base.send = px__send;
    m->base.sends_done = px__sends_done;
    m->base.in_flight = px__in_flight;
    m->base.send_buffer = NULL; /* MPI reads the caller's buffer */
    m->base.destroy = px__destroy;
    *out = &m->base;
    return PX_OK;
}

px_status px_mpi_agree(int code, double deadline_ms, int *worst_code, int *worst_rank)
{
    /* static: a collective cannot be cancelled, so on a timeout it stays pending and may still
     * write its result when the late rank arrives; its buffers must outlive this call. Called
     * once per process. */
    static int in[2], out[2];
    static MPI_Request req = MPI_REQUEST_NULL;
    if (req != MPI_REQUEST_NULL)
        return px_error(PX_ERUNTIME, "mpi: the start-up agreement is still pending from an "
                                     "earlier call");
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    in[0] = code;
    in[1] = rank;
    if (MPI_Iallreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
        req = MPI_REQUEST_NULL;
        return px_error(PX_ERUNTIME, "mpi: start-up agreement failed");
    }
    px_status st = px__wait_all(&req, 1, deadline_ms);
    if (st == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "not every rank reached the start of the run before the "
                                     "deadline (cluster.timeout_ms)");
    PX_CHECK(st);
    *worst_code = out[0];
    *worst_rank = out[1];
    return PX_OK;
}
