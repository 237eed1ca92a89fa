/* transport_split.c - the split transport (see transport.h): each message's first min_msg bytes
 * (the wire header) travel over MPI in host memory, the rest (the payload) over a payload
 * channel between the ranks' devices (comm/bulk.h: NCCL, or MPI on the CPU backend).
 *
 * Every transfer on the channel is agreed over MPI first, so that no rank ever posts a transfer
 * its peer is not about to post too (bulk.h says why):
 * - uplink: the worker sends an announcement (the payload's length, then the header bytes); the
 *   server takes it when its receive gets there, sized by what was sent as the MPI transport
 *   does, checks the whole message's length against the legal range, and answers with the
 *   length it accepts (0: refused, nothing follows); then both post the payload. A worker's send
 *   returns once its message is delivered (or refused), so a worker rank has at most one
 *   transfer in progress and none in flight when it goes on (in_flight is always 0).
 * - downlink: the server announces the parameter message to each rank that took the previous
 *   one; the rank, when it asks for its next message, answers "ready" and posts its receive, and
 *   the server posts the payload as it sees the ready (in any of its calls). A rank that has not
 *   taken the previous message is skipped, as over MPI.
 * Header-only messages (stop, bye) travel over MPI alone.
 *
 * A payload that does not arrive within stall_ms (a dead or cut-off rank: a collective library
 * cannot drop one peer and go on) aborts the channel, and the transport fails from then on with
 * the rank named: the run ends cleanly instead of hanging. */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm/bulk.h"
#include "comm/transport.h"

enum { PX__TAG_UP = 31, PX__TAG_ANSWER = 32, PX__TAG_DOWN = 33, PX__TAG_READY = 34 };
#define PX__POLL_US    50u
#define PX__GRACE_MS   500.0
#define PX__LEN_BYTES  sizeof(uint64_t) /* an announcement starts with the payload's length */

/* A parameter message staged by the server: its announcement and its payload on the device. */
typedef struct {
    void *dev;
    unsigned char *ann;
    size_t ann_len, payload;
    int users;  /* ranks it is announced to whose transfer has not ended */
    int staged; /* being filled for the sends of this call */
} px__pbuf;

typedef struct {
    px_transport base;
    px_bulk *bulk;
    MPI_Comm comm; /* announcements, answers, readies: on a communicator of their own */
    size_t head, min_msg, max_msg, cap; /* cap: the largest payload, max_msg - head */
    double stall_ms;
    int dead; /* the channel was aborted */
    unsigned char *rbuf; /* a message received, whole (host) */
    unsigned char *ann;  /* an announcement received */
    void *dev_in;        /* a payload received (device) */
    /* server */
    px__pbuf *bufs;
    int n_bufs, max_bufs;
    int *down;            /* per rank: the buffer announced to it, -1 when none */
    uint8_t *posted;      /* per rank: the payload's send is posted */
    MPI_Request *down_req; /* per rank: the announcement's send */
    MPI_Request *ans_req;  /* per rank: the answer's send ... */
    uint64_t *ans;         /* ... and its value */
    /* worker */
    void *dev_out;
    unsigned char *ann_out;
} px__split;

static int px__slot_send(int peer)
{
    return 2 * peer;
}

static int px__slot_recv(int peer)
{
    return 2 * peer + 1;
}

/* MPI_Test until done or the deadline (then cancelled and freed): PX_OK or PX_ETIMEOUT. */
static px_status px__wait_req(MPI_Request *req, double deadline_ms)
{
    for (;;) {
        int done = 0;
        if (*req == MPI_REQUEST_NULL) return PX_OK;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "split transport: MPI_Test failed");
        if (done) return PX_OK;
        if (px_now_ms() > deadline_ms) {
            MPI_Cancel(req);
            MPI_Request_free(req);
            return PX_ETIMEOUT;
        }
        px_sleep_us(PX__POLL_US);
    }
}

/* Polls a transfer on the channel to its end; a failure or the deadline aborts the channel. */
static px_status px__wait_slot(px__split *m, int slot, double deadline_ms, const char *what,
                               int peer)
{
    for (;;) {
        int done = 0;
        px_status st = m->bulk->test(m->bulk, slot, &done);
        if (st < 0) {
            m->bulk->abort(m->bulk);
            m->dead = 1;
            return px_error_context(PX_ERUNTIME, "%s: %s with rank %d failed; channel aborted",
                                    m->bulk->name, what, peer);
        }
        if (done) return PX_OK;
        if (px_now_ms() > deadline_ms) {
            m->bulk->abort(m->bulk);
            m->dead = 1;
            return px_error(PX_ERUNTIME,
                            "%s: %s with rank %d did not end within %.0f ms (cluster.timeout_ms): "
                            "the rank died or stalled; channel aborted",
                            m->bulk->name, what, peer, m->stall_ms);
        }
        px_sleep_us(PX__POLL_US);
    }
}

static px_status px__alive(const px__split *m)
{
    if (m->dead)
        return px_error(PX_ERUNTIME, "%s: the channel was aborted after an earlier failure",
                        m->bulk->name);
    return PX_OK;
}

/* The payload's length an announcement of `count` bytes (in m->ann) gives, and the whole
 * message's; 0 when the announcement is not one a legal message makes. */
static int px__parse(const px__split *m, int count, uint64_t *payload, size_t *total)
{
    if (count < (int)PX__LEN_BYTES || (size_t)count > PX__LEN_BYTES + m->head) return 0;
    size_t h = (size_t)count - PX__LEN_BYTES;
    memcpy(payload, m->ann, PX__LEN_BYTES);
    if (*payload > m->cap) return 0;
    if (*payload && h != m->head) return 0; /* a payload follows only a whole header */
    *total = h + (size_t)*payload;
    return *total >= m->min_msg && *total <= m->max_msg;
}

/* Receives a matched announcement of `count` bytes into m->ann; one longer than any legal is
 * taken in whole into a buffer of its size (or, past what the MPI transport drains, left
 * matched and never received) and dropped: returns 0 then. */
static int px__take_announcement(px__split *m, MPI_Message *handle, int count)
{
    if (count >= 0 && (size_t)count <= PX__LEN_BYTES + m->head) {
        MPI_Mrecv(m->ann, count, MPI_BYTE, handle, MPI_STATUS_IGNORE);
        return 1;
    }
    void *sink = count > 0 && (size_t)count <= PX_MPI_DRAIN_MAX_BYTES ? malloc((size_t)count) : NULL;
    if (sink) MPI_Mrecv(sink, count, MPI_BYTE, handle, MPI_STATUS_IGNORE);
    free(sink);
    return 0;
}

/* ---- server: the downlink's progress ---- */

/* Readies of the ranks that were announced a payload: each posts that payload's send. */
static px_status px__poll_ready(px__split *m)
{
    for (;;) {
        int flag = 0, count = -1;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(MPI_ANY_SOURCE, PX__TAG_READY, m->comm, &flag, &handle, &status) !=
            MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "split transport: MPI_Improbe failed");
        if (!flag) return PX_OK;
        int r = status.MPI_SOURCE;
        MPI_Get_count(&status, MPI_BYTE, &count);
        uint64_t v = 0;
        if (count != (int)sizeof v) {
            px__take_announcement(m, &handle, count); /* a malformed ready: dropped */
            continue;
        }
        MPI_Mrecv(&v, count, MPI_BYTE, &handle, MPI_STATUS_IGNORE);
        if (r < 1 || r >= m->base.world || m->down[r] < 0 || m->posted[r]) continue;
        px__pbuf *b = &m->bufs[m->down[r]];
        /* a ready for another length would post a receive unlike this send: ignored, and the
         * rank stays behind (skipped) until it fails on its own deadline */
        if (v != b->payload || v == 0) continue;
        px_status st = m->bulk->post(m->bulk, px__slot_send(r), 1, r, b->dev, b->payload);
        if (st < 0) {
            m->bulk->abort(m->bulk);
            m->dead = 1;
            return px_error_context(st, "%s: the parameters' send to rank %d", m->bulk->name, r);
        }
        m->posted[r] = 1;
    }
}

/* Ends the downlinks that are over: their buffers become free. */
static px_status px__reap(px__split *m)
{
    for (int r = 1; r < m->base.world; r++) {
        if (m->down[r] < 0) continue;
        int done = 0;
        if (m->down_req[r] != MPI_REQUEST_NULL &&
            MPI_Test(&m->down_req[r], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "split transport: MPI_Test failed");
        if (m->down_req[r] != MPI_REQUEST_NULL) continue;
        px__pbuf *b = &m->bufs[m->down[r]];
        if (b->payload) {
            if (!m->posted[r]) continue;
            PX_CHECK(m->bulk->test(m->bulk, px__slot_send(r), &done));
            if (!done) continue;
        }
        b->users--;
        m->down[r] = -1;
        m->posted[r] = 0;
    }
    return PX_OK;
}

static px_status px__progress(px__split *m)
{
    PX_CHECK(px__alive(m));
    PX_CHECK(px__poll_ready(m));
    px_status st = px__reap(m);
    if (st < 0) {
        m->bulk->abort(m->bulk);
        m->dead = 1;
    }
    return st;
}

/* A buffer no downlink uses, holding msg's announcement and its payload on the device. */
static px_status px__stage(px__split *m, const unsigned char *msg, size_t len, int *out)
{
    if (len > m->max_msg)
        return px_error(PX_EINVAL, "split transport: a message of %zu bytes, more than the "
                                   "largest legal message (%zu bytes)",
                        len, m->max_msg);
    int i = 0;
    while (i < m->n_bufs && (m->bufs[i].users > 0 || m->bufs[i].staged))
        i++;
    px__pbuf *b = &m->bufs[i];
    if (i == m->n_bufs) {
        /* every buffer is held by a lagging rank: one more (happens only when ranks lag) */
        if (m->n_bufs >= m->max_bufs)
            return px_error(PX_ERUNTIME, "split transport: no free parameter buffer");
        PX_CHECK(px_device_alloc(m->bulk->dev, m->cap, &b->dev));
        b->ann = malloc(PX__LEN_BYTES + m->head);
        if (!b->ann) return px_error(PX_ENOMEM, "split transport: cannot allocate");
        m->n_bufs++;
    }
    size_t h = len < m->head ? len : m->head;
    uint64_t payload = len - h;
    memcpy(b->ann, &payload, PX__LEN_BYTES);
    memcpy(b->ann + PX__LEN_BYTES, msg, h);
    b->ann_len = PX__LEN_BYTES + h;
    b->payload = (size_t)payload;
    /* queued before any send of it on the same stream (CUDA copies pageable memory to its own
     * staging before returning, so msg may change once this returns) */
    if (payload)
        PX_CHECK(px_device_copy(m->bulk->dev, b->dev, msg + h, (size_t)payload, PX_COPY_H2D,
                                m->bulk->stream));
    b->staged = 1;
    *out = i;
    return PX_OK;
}

static px_status px__announce_to_ranks(px__split *m, const unsigned char *msg, size_t len,
                                       const unsigned char *full, size_t full_len,
                                       uint8_t *needs_full, int *skipped)
{
    PX_CHECK(px__progress(m));
    int b_msg = -1, b_full = -1, skip = 0;
    px_status st = PX_OK;
    PX_CHECK_GOTO(px__stage(m, msg, len, &b_msg), st, done);
    if (full && needs_full) {
        int any = 0;
        for (int r = 1; r < m->base.world; r++)
            any |= needs_full[r] && m->down[r] < 0;
        if (any) PX_CHECK_GOTO(px__stage(m, full, full_len, &b_full), st, done);
    }
    for (int r = 1; r < m->base.world; r++) {
        if (m->down[r] >= 0) {
            skip++; /* still has not taken the previous message */
            if (needs_full) needs_full[r] = 1;
            continue;
        }
        int use_full = b_full >= 0 && needs_full[r];
        int i = use_full ? b_full : b_msg;
        if (MPI_Isend(m->bufs[i].ann, (int)m->bufs[i].ann_len, MPI_BYTE, r, PX__TAG_DOWN, m->comm,
                      &m->down_req[r]) != MPI_SUCCESS) {
            m->down_req[r] = MPI_REQUEST_NULL;
            st = px_error(PX_ERUNTIME, "split transport: cannot start the send to rank %d", r);
            goto done;
        }
        if (use_full) needs_full[r] = 0;
        m->down[r] = i;
        m->posted[r] = 0;
        m->bufs[i].users++;
    }
    if (skipped) *skipped = skip;
done:
    if (b_msg >= 0) m->bufs[b_msg].staged = 0;
    if (b_full >= 0) m->bufs[b_full].staged = 0;
    return st;
}

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len,
                                 const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                 int *skipped)
{
    return px__announce_to_ranks((px__split *)t, msg, len, full, full_len, needs_full, skipped);
}

/* The server's answer to rank r: the payload length it accepts (0: refused). */
static px_status px__answer(px__split *m, int r, uint64_t v)
{
    if (px__wait_req(&m->ans_req[r], px_now_ms() + m->stall_ms) == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "split transport: rank %d never took an earlier answer", r);
    m->ans[r] = v;
    if (MPI_Isend(&m->ans[r], (int)sizeof v, MPI_BYTE, r, PX__TAG_ANSWER, m->comm,
                  &m->ans_req[r]) != MPI_SUCCESS) {
        m->ans_req[r] = MPI_REQUEST_NULL;
        return px_error(PX_ERUNTIME, "split transport: cannot answer rank %d", r);
    }
    return PX_OK;
}

static px_status px__server_recv(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                                 double deadline_ms)
{
    px__split *m = (px__split *)t;
    for (;;) {
        PX_CHECK(px__progress(m));
        int flag = 0, count = -1;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(MPI_ANY_SOURCE, PX__TAG_UP, m->comm, &flag, &handle, &status) !=
            MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "split transport: MPI_Improbe failed");
        if (!flag) {
            if (px_now_ms() > deadline_ms)
                return px_error(PX_ETIMEOUT, "no message before the deadline");
            px_sleep_us(PX__POLL_US);
            continue;
        }
        int r = *src = status.MPI_SOURCE;
        MPI_Get_count(&status, MPI_BYTE, &count);
        *len = count > 0 ? (size_t)count : 0;
        if (!px__take_announcement(m, &handle, count))
            return px_error(PX_EPROTO, "rank %d sent an announcement of %d bytes, more than a "
                                       "header's %zu",
                            r, count, PX__LEN_BYTES + m->head);
        uint64_t payload = 0;
        size_t total = 0;
        int legal = px__parse(m, count, &payload, &total);
        if (!legal) {
            if (count >= (int)PX__LEN_BYTES && payload) PX_CHECK(px__answer(m, r, 0));
            /* what arrived is the announcement (the payload never travels): its size counts */
            *len = (size_t)count;
            if (count < (int)PX__LEN_BYTES)
                return px_error(PX_EPROTO, "rank %d sent an announcement of %d bytes, shorter "
                                           "than its length field; refused",
                                r, count);
            return px_error(PX_EPROTO,
                            "rank %d announced a message of a %d-byte header and %llu payload "
                            "bytes, outside the legal sizes (a header of %zu bytes, %zu to %zu in "
                            "all); refused",
                            r, count - (int)PX__LEN_BYTES, (unsigned long long)payload, m->head,
                            m->min_msg, m->max_msg);
        }
        size_t h = total - (size_t)payload;
        memcpy(m->rbuf, m->ann + PX__LEN_BYTES, h);
        if (payload) {
            PX_CHECK(px__answer(m, r, payload));
            px_status st = m->bulk->post(m->bulk, px__slot_recv(r), 0, r, m->dev_in, payload);
            if (st < 0) {
                m->bulk->abort(m->bulk);
                m->dead = 1;
                return px_error_context(st, "%s: the payload of rank %d", m->bulk->name, r);
            }
            double until = px_now_ms() + m->stall_ms;
            PX_CHECK(px__wait_slot(m, px__slot_recv(r), deadline_ms > until ? deadline_ms : until,
                                   "the payload's transfer", r));
            PX_CHECK(px_device_copy(m->bulk->dev, m->rbuf + h, m->dev_in, (size_t)payload,
                                    PX_COPY_D2H, m->bulk->stream));
            PX_CHECK(px_stream_sync(m->bulk->stream));
        }
        *msg = m->rbuf;
        *len = total;
        return PX_OK;
    }
}

static px_status px__send_stop(px_transport *t, const unsigned char *msg, size_t len,
                               px_msg_test is_last, double deadline_ms)
{
    px__split *m = (px__split *)t;
    int *told = calloc((size_t)t->world, sizeof *told);
    if (!told) return px_error(PX_ENOMEM, "split transport: cannot allocate");
    /* lagging ranks get until halfway to take their last parameters; a worker blocked in its
     * send waits for the server's answer, so what arrives meanwhile is taken in (dropped) */
    double lag_deadline = px_now_ms() + (deadline_ms - px_now_ms()) / 2;
    px_status st = PX_OK;
    for (;;) {
        const unsigned char *in;
        size_t in_len;
        int src;
        px_status rs = px__server_recv(t, &in, &in_len, &src, 0);
        if (rs < 0 && rs != PX_ETIMEOUT && rs != PX_EPROTO) {
            st = rs;
            break;
        }
        int pending = 0;
        for (int r = 1; r < t->world; r++)
            pending += m->down[r] >= 0;
        if (!pending || px_now_ms() > lag_deadline) break;
        if (rs == PX_ETIMEOUT) px_sleep_us(PX__POLL_US);
    }
    for (int r = 1; r < t->world; r++)
        told[r] = m->down[r] < 0;
    if (st == PX_OK) st = px__announce_to_ranks(m, msg, len, NULL, 0, NULL, NULL);
    if (st == PX_OK) st = px_transport_await_last(t, told, is_last, deadline_ms);
    int untold = 0;
    if (!m->dead) {
        for (double until = px_now_ms() + PX__GRACE_MS; px_now_ms() < until; px_sleep_us(PX__POLL_US)) {
            if (px__progress(m) < 0) break;
            untold = 0;
            for (int r = 1; r < t->world; r++)
                untold += m->down[r] >= 0;
            if (!untold) break;
        }
    }
    free(told);
    return px_transport_stop_result(st, untold);
}

/* ---- worker ---- */

static px_status px__recv_from_server(px_transport *t, const unsigned char **msg, size_t *len,
                                      double deadline_ms)
{
    px__split *m = (px__split *)t;
    PX_CHECK(px__alive(m));
    for (;;) {
        int flag = 0, count = -1;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(0, PX__TAG_DOWN, m->comm, &flag, &handle, &status) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "split transport: MPI_Improbe failed");
        if (!flag) {
            if (px_now_ms() > deadline_ms)
                return px_error(PX_ETIMEOUT, "no message from the server (rank 0) before the "
                                             "deadline (cluster.timeout_ms): stalled or dead");
            px_sleep_us(PX__POLL_US);
            continue;
        }
        MPI_Get_count(&status, MPI_BYTE, &count);
        uint64_t payload = 0;
        size_t total = 0;
        if (!px__take_announcement(m, &handle, count) || !px__parse(m, count, &payload, &total))
            return px_error(PX_EPROTO, "a broken message from the server (rank 0): an "
                                       "announcement of %d bytes outside the legal sizes",
                            count);
        size_t h = total - (size_t)payload;
        memcpy(m->rbuf, m->ann + PX__LEN_BYTES, h);
        if (payload) {
            /* ready first, then the receive: the server posts its send when it sees the ready */
            MPI_Request req;
            if (MPI_Isend(&payload, (int)sizeof payload, MPI_BYTE, 0, PX__TAG_READY, m->comm,
                          &req) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "split transport: cannot tell the server we are "
                                             "ready");
            px_status st = m->bulk->post(m->bulk, px__slot_recv(0), 0, 0, m->dev_in, payload);
            double until = px_now_ms() + m->stall_ms;
            if (deadline_ms > until) until = deadline_ms;
            if (st == PX_OK)
                st = px__wait_slot(m, px__slot_recv(0), until, "the parameters' transfer", 0);
            else
                m->bulk->abort(m->bulk), m->dead = 1;
            px_status rs = px__wait_req(&req, until);
            PX_CHECK(st);
            if (rs < 0) return px_error(PX_ETIMEOUT, "split transport: the server did not take "
                                                     "our ready");
            PX_CHECK(px_device_copy(m->bulk->dev, m->rbuf + h, m->dev_in, (size_t)payload,
                                    PX_COPY_D2H, m->bulk->stream));
            PX_CHECK(px_stream_sync(m->bulk->stream));
        }
        *msg = m->rbuf;
        *len = total;
        return PX_OK;
    }
}

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len, double ready_at)
{
    px__split *m = (px__split *)t;
    PX_CHECK(px__alive(m));
    if (len > m->max_msg || len > (size_t)INT_MAX)
        return px_error(PX_EINVAL, "split transport: a message of %zu bytes, more than the "
                                   "largest legal message (%zu bytes)",
                        len, m->max_msg);
    /* a straggler really is late (as over MPI: sleep in slices) */
    for (double wait = ready_at - px_now_ms(); wait > 0; wait = ready_at - px_now_ms())
        px_sleep_us(wait > 1000.0 ? 1000000u : (unsigned)(wait * 1000) + 1);
    size_t h = len < m->head ? len : m->head;
    uint64_t payload = len - h;
    memcpy(m->ann_out, &payload, PX__LEN_BYTES);
    memcpy(m->ann_out + PX__LEN_BYTES, msg, h);
    if (payload) /* on its way to the device while the server answers */
        PX_CHECK(px_device_copy(m->bulk->dev, m->dev_out, msg + h, (size_t)payload, PX_COPY_H2D,
                                m->bulk->stream));
    MPI_Request req, ans_req = MPI_REQUEST_NULL;
    uint64_t answer = 0;
    if (MPI_Isend(m->ann_out, (int)(PX__LEN_BYTES + h), MPI_BYTE, 0, PX__TAG_UP, m->comm, &req) !=
        MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "cannot start a send to the server (rank 0)");
    if (payload && MPI_Irecv(&answer, (int)sizeof answer, MPI_BYTE, 0, PX__TAG_ANSWER, m->comm,
                             &ans_req) != MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "cannot wait for the server's answer");
    double until = px_now_ms() + m->stall_ms;
    if (px__wait_req(&ans_req, until) == PX_ETIMEOUT || px__wait_req(&req, until) == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "the server (rank 0) did not take our message within %.0f "
                                     "ms (cluster.timeout_ms): stalled or dead",
                        m->stall_ms);
    if (!payload || answer == 0) return PX_OK; /* header only, or refused: nothing follows */
    if (answer != payload)
        return px_error(PX_EPROTO, "the server (rank 0) accepted %llu payload bytes of our %llu",
                        (unsigned long long)answer, (unsigned long long)payload);
    px_status st = m->bulk->post(m->bulk, px__slot_send(0), 1, 0, m->dev_out, (size_t)payload);
    if (st < 0) {
        m->bulk->abort(m->bulk);
        m->dead = 1;
        return px_error_context(st, "%s: our payload", m->bulk->name);
    }
    return px__wait_slot(m, px__slot_send(0), px_now_ms() + m->stall_ms, "the payload's transfer",
                         0);
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    (void)deadline_ms; /* every send ended in send */
    return px__alive((px__split *)t);
}

static int px__in_flight(px_transport *t, const unsigned char *msg)
{
    (void)t, (void)msg;
    return 0;
}

static void px__destroy(px_transport *t)
{
    px__split *m = (px__split *)t;
    if (!m) return;
    int pending = 0;
    double grace = px_now_ms() + PX__GRACE_MS;
    for (int r = 0; r < m->base.world; r++) {
        if (m->down_req) pending |= px__wait_req(&m->down_req[r], grace) != PX_OK;
        if (m->ans_req) pending |= px__wait_req(&m->ans_req[r], grace) != PX_OK;
        if (m->down && m->down[r] >= 0 && m->posted[r]) {
            int done = 0;
            while (!m->dead && m->bulk->test(m->bulk, px__slot_send(r), &done) == PX_OK && !done &&
                   px_now_ms() < grace)
                px_sleep_us(PX__POLL_US);
            pending |= !done;
        }
    }
    if (m->bulk && (pending || m->dead)) {
        /* a transfer the channel could not end may still touch its buffers: they are kept */
        m->bulk->abort(m->bulk);
        m->dead = 1;
    }
    if (m->bulk && !m->dead) {
        for (int i = 0; i < m->n_bufs; i++)
            px_device_free(m->bulk->dev, m->bufs[i].dev);
        px_device_free(m->bulk->dev, m->dev_in);
        px_device_free(m->bulk->dev, m->dev_out);
    }
    if (m->bulk) px_device_free_host(m->bulk->dev, m->rbuf);
    for (int i = 0; m->bufs && i < m->n_bufs; i++)
        free(m->bufs[i].ann);
    if (m->bulk) m->bulk->destroy(m->bulk);
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
    free(m->ann);
    free(m->ann_out);
    free(m->bufs);
    free(m->down);
    free(m->posted);
    free(m->down_req);
    free(m->ans_req);
    free(m->ans);
    free(m);
}

px_status px_transport_split_create(px_transport **out, px_bulk *bulk, size_t min_msg,
                                    size_t max_msg, double stall_ms)
{
    *out = NULL;
    if (max_msg == 0 || max_msg > (size_t)INT_MAX || min_msg > max_msg) {
        bulk->destroy(bulk);
        return px_error(PX_EINVAL, "split transport: legal message sizes [%zu, %zu] bytes must be "
                                   "a non-empty range within MPI's count limit",
                        min_msg, max_msg);
    }
    px__split *m = calloc(1, sizeof *m);
    if (!m) {
        bulk->destroy(bulk);
        return px_error(PX_ENOMEM, "split transport: cannot allocate");
    }
    m->bulk = bulk;
    m->comm = MPI_COMM_NULL;
    px_status st = PX_OK;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &m->comm) != MPI_SUCCESS) {
        st = px_error(PX_ERUNTIME, "split transport: MPI_Comm_dup failed");
        goto fail;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->base.rank);
    MPI_Comm_size(m->comm, &m->base.world);
    int world = m->base.world;
    if (world < 2) {
        st = px_error(PX_EINVAL, "split transport: needs at least 2 ranks, the job has %d", world);
        goto fail;
    }
    m->base.name = strcmp(bulk->name, "nccl") == 0 ? "nccl" : "split-mpi";
    m->head = min_msg;
    m->min_msg = min_msg;
    m->max_msg = max_msg;
    m->cap = max_msg - min_msg;
    m->stall_ms = stall_ms;
    m->ann = malloc(PX__LEN_BYTES + m->head);
    PX_CHECK_GOTO(px_device_alloc_host(bulk->dev, max_msg, (void **)&m->rbuf), st, fail);
    PX_CHECK_GOTO(px_device_alloc(bulk->dev, m->cap, &m->dev_in), st, fail);
    if (m->base.rank == 0) {
        m->max_bufs = world + 2; /* a lagging rank holds one; a step stages two (delta, full) */
        m->bufs = calloc((size_t)m->max_bufs, sizeof *m->bufs);
        m->down = malloc((size_t)world * sizeof *m->down);
        m->posted = calloc((size_t)world, 1);
        m->down_req = malloc((size_t)world * sizeof *m->down_req);
        m->ans_req = malloc((size_t)world * sizeof *m->ans_req);
        m->ans = calloc((size_t)world, sizeof *m->ans);
        if (!m->bufs || !m->down || !m->posted || !m->down_req || !m->ans_req || !m->ans) {
            st = px_error(PX_ENOMEM, "split transport: cannot allocate");
            goto fail;
        }
        for (int r = 0; r < world; r++) {
            m->down[r] = -1;
            m->down_req[r] = m->ans_req[r] = MPI_REQUEST_NULL;
        }
    } else {
        m->ann_out = malloc(PX__LEN_BYTES + m->head);
        PX_CHECK_GOTO(px_device_alloc(bulk->dev, m->cap, &m->dev_out), st, fail);
    }
    if (!m->ann || (m->base.rank > 0 && !m->ann_out)) {
        st = px_error(PX_ENOMEM, "split transport: cannot allocate");
        goto fail;
    }
    m->base.send_params = px__send_params;
    m->base.recv = px__server_recv;
    m->base.send_stop = px__send_stop;
    m->base.recv_from_server = px__recv_from_server;
    m->base.send = px__send;
    m->base.sends_done = px__sends_done;
    m->base.in_flight = px__in_flight;
    m->base.send_buffer = NULL;
    m->base.destroy = px__destroy;
    *out = &m->base;
    return PX_OK;
fail:
    px__destroy(&m->base);
    return st;
}
