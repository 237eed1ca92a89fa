/* transport_shm.c - the shared-memory transport (see transport.h): every rank on one node, the
 * messages in POSIX shared memory, wake-ups by futex.
 *
 * Why: under Open MPI's shared-memory path each 1 MB message costs a kernel copy with its pages
 * pinned, and a waiting rank can only sleep-poll (it wakes ~100 times a step on a busy core, and
 * the server takes a gradient late because it sleeps through its arrival). Here a worker builds
 * its gradient message in place in its own slot, the server copies it once into its private
 * buffer, the parameters are written once for all worker ranks, and a waiter sleeps in the
 * kernel until the word it waits on changes or its deadline passes.
 *
 * Segments (all created with shm_open and unlinked as soon as every user mapped them, so a crash
 * leaks nothing; the mappings live on until each process unmaps or ends):
 *   down  - written by the server alone, mapped read-only by the worker ranks: the parameter
 *           buffers, one mailbox per rank (which buffer, how long, a sequence number), the
 *           per-slot receipts ("done") and the down bell the worker ranks sleep on.
 *   bell  - the up bell, the one word every worker rank rings after a post (so the server
 *           sleeps on one word). A rank that rings it falsely only wakes the server.
 *   up_r  - one per worker rank r, written by that rank alone, mapped read-only by the server:
 *           one slot per logical worker it hosts plus one spare (the BYE, or a message built
 *           outside the slots), each with its post count, rank-level order and length.
 * A rank can write only its own slots, so the slot a message came from names its sender the way
 * MPI's source does (px_server_accept checks the worker id against it).
 *
 * The server treats everything in up_r as hostile: each control word is read once, a claimed
 * length is bounded by the slot before a byte is read, the message is copied once into the
 * server's own buffer and only that copy is handed on (the CRC is checked on the copy, so a
 * rank that rewrites its slot during or after the read changes nothing the server uses). A post
 * out of the rank's order (a replay, a skipped or stale post) is dropped as PX_EPROTO.
 *
 * Every wait has a deadline: a futex wait with a timeout on a word that the other side
 * increments, re-checked in a loop (a spurious or lost wake-up costs at most one timeout
 * slice). A dead rank only stops posting: no wait of this transport is inside a copy from
 * another process, so the deadlines always apply.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"
#include "transport_shm_impl.h"

/* transport_shm_setup.c holds the segments' layout, their creation and opening, the start-up
 * and the tear-down; this file, the two sides of a step. */

void px__shm_wait_word(px__word *w, uint32_t seen, double deadline_ms)
{
    double left = deadline_ms - px_now_ms();
    if (left <= 0) return;
    if (left > PX__WAIT_SLICE_MS) left = PX__WAIT_SLICE_MS;
    struct timespec ts = {(time_t)(left / 1000.0), (long)((left - 1000.0 * (time_t)(left / 1000.0)) * 1e6)};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seen, &ts, NULL, 0);
}

void px__shm_ring(px__word *w)
{
    atomic_fetch_add_explicit(w, 1, memory_order_seq_cst);
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- server side ---- */

static int px__buf_busy(const px__shm *m, int b)
{
    for (int r = 1; r < m->base.world; r++)
        if (m->pend_buf[r] == b || m->hold_buf[r] == b) return 1;
    return 0;
}

/* 1 if rank r has taken the last message posted to it (its own word: a lie only hurts it). */
static int px__taken(const px__shm *m, int r)
{
    return atomic_load_explicit(m->took[r], memory_order_acquire) == m->posted[r];
}

/* A parameter buffer no rank holds or has pending, other than `not`, holding a copy of msg. */
static px_status px__stage(px__shm *m, const unsigned char *msg, size_t len, int not, int *out)
{
    if (len > m->max_msg)
        return px_error(PX_EINVAL,
                        "shm: a message of %zu bytes, more than the largest legal message (%zu "
                        "bytes)",
                        len, m->max_msg);
    for (int b = 0; b < m->n_bufs; b++) {
        if (b == not || px__buf_busy(m, b)) continue;
        memcpy(m->bufs + (size_t)b * m->cap, msg, len);
        *out = b;
        return PX_OK;
    }
    /* each rank holds at most two buffers, and a call stages two: cannot happen */
    return px_error(PX_ERUNTIME, "shm: no free parameter buffer");
}

static px_status px__post_ranks(px__shm *m, const unsigned char *msg, size_t len,
                                const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                int *skipped)
{
    int b_msg = -1, b_full = -1, skip = 0, world = m->base.world;
    PX_CHECK(px__stage(m, msg, len, -1, &b_msg));
    for (int r = 1; r < world; r++) {
        /* whether the rank took its last message is its own word, which it may change at any
         * instant: read once per post, and the full message staged on that reading (staged on
         * an earlier one, a rank that took in between got a relative message it must refuse) */
        if (!px__taken(m, r)) {
            skip++; /* still has not taken the previous message */
            if (needs_full) needs_full[r] = 1; /* its next message must be the full one */
            continue;
        }
        int use_full = full && needs_full && needs_full[r];
        if (use_full && b_full < 0) PX_CHECK(px__stage(m, full, full_len, b_msg, &b_full));
        px__mailbox *mb = PX__MBOX(m, r);
        /* the rank holds its newest message until it takes this one */
        m->hold_buf[r] = m->pend_buf[r];
        m->pend_buf[r] = use_full ? b_full : b_msg;
        mb->buf = (uint32_t)m->pend_buf[r];
        mb->len = use_full ? full_len : len;
        atomic_store_explicit(&mb->seq, ++m->posted[r], memory_order_release);
        if (use_full) needs_full[r] = 0;
    }
    px__shm_ring(m->down_bell); /* one wake-up for every rank */
    if (skipped) *skipped = skip;
    return PX_OK;
}

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len,
                                 const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                 int *skipped)
{
    return px__post_ranks((px__shm *)t, msg, len, full, full_len, needs_full, skipped);
}

/* Takes the message in slot i (post count p): its length bounded by the slot, copied once into
 * rbuf, then the receipt. */
static px_status px__take(px__shm *m, size_t i, uint32_t p, int r, const unsigned char **msg,
                          size_t *len, int *src)
{
    const px__slot_ctl *c = m->ctl[i];
    uint32_t order = atomic_load_explicit(&c->order, memory_order_relaxed);
    uint64_t claim = atomic_load_explicit(&c->len, memory_order_relaxed);
    uint32_t want = m->next_order[r];
    m->seen[i] = p;
    *src = r;
    *len = 0;
    px_status st = PX_OK;
    if (order != want) {
        /* a replay of an old post, or a post that skips ahead: the rank's order is lost */
        m->next_order[r] = order + 1;
        st = px_error(PX_EPROTO,
                      "rank %d posted a message out of order (number %u, expected %u: a replayed "
                      "or stale slot)",
                      r, order, want);
    } else if (claim < m->min_msg || claim > m->max_msg) {
        m->next_order[r] = want + 1;
        *len = claim <= m->cap ? (size_t)claim : 0; /* nothing past the slot was read */
        st = px_error(PX_EPROTO, "rank %d sent %llu bytes, %s legal message (%zu bytes)", r,
                      (unsigned long long)claim,
                      claim < m->min_msg ? "less than the smallest" : "more than the largest",
                      claim < m->min_msg ? m->min_msg : m->max_msg);
    } else {
        m->next_order[r] = want + 1;
        if (m->base.copy_in)
            m->base.copy_in(m->base.copy_user, m->rbuf, m->slot[i], (size_t)claim);
        else
            memcpy(m->rbuf, m->slot[i], (size_t)claim);
        *msg = m->rbuf;
        *len = (size_t)claim;
    }
    atomic_store_explicit(PX__DONE(m, i), p, memory_order_release);
    px__shm_ring(PX__ACK(m, r));
    return st;
}

/* The next message of rank `only` (0: any rank) in its rank's order; a deadline in the past
 * polls once. */
static px_status px__recv_any(px__shm *m, const unsigned char **msg, size_t *len, int *src,
                              double deadline_ms)
{
    int world = m->base.world;
    for (;;) {
        uint32_t bell = atomic_load_explicit(m->up_bell, memory_order_acquire);
        for (int k = 0; k < world - 1; k++) {
            int r = 1 + (m->next_rank - 1 + k) % (world - 1);
            /* the rank's pending post with the lowest order goes first: its messages arrive in
             * the order sent, as MPI's would (a BYE after the gradients before it) */
            size_t best = SIZE_MAX;
            uint32_t best_p = 0, best_o = 0;
            /* twice once a post is seen: a slot read before a later post of the same rank was
             * may have missed an earlier one, which the second pass (after the acquire of the
             * later post) cannot miss */
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 1 && best == SIZE_MAX) break;
                best = SIZE_MAX;
                for (size_t i = m->slot_first[r]; i < m->slot_first[r + 1]; i++) {
                    uint32_t p = atomic_load_explicit(&m->ctl[i]->post, memory_order_acquire);
                    if (p == m->seen[i]) continue;
                    uint32_t o = atomic_load_explicit(&m->ctl[i]->order, memory_order_relaxed);
                    if (best == SIZE_MAX || (int32_t)(o - best_o) < 0) {
                        best = i;
                        best_p = p;
                        best_o = o;
                    }
                }
            }
            if (best == SIZE_MAX) continue;
            m->next_rank = 1 + r % (world - 1);
            return px__take(m, best, best_p, r, msg, len, src);
        }
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "no message before the deadline");
        px__shm_wait_word(m->up_bell, bell, deadline_ms);
    }
}

static px_status px__server_recv(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                                 double deadline_ms)
{
    return px__recv_any((px__shm *)t, msg, len, src, deadline_ms);
}

static px_status px__send_stop(px_transport *t, const unsigned char *msg, size_t len,
                               px_msg_test is_last, double deadline_ms)
{
    px__shm *m = (px__shm *)t;
    int world = t->world;
    int *told = calloc((size_t)world, sizeof *told);
    if (!told) return px_error(PX_ENOMEM, "shm: cannot allocate");
    /* give lagging ranks until half the deadline to take their last parameters */
    double lag_deadline = px_now_ms() + (deadline_ms - px_now_ms()) / 2;
    for (;;) {
        int pending = 0;
        for (int r = 1; r < world; r++)
            pending += !px__taken(m, r);
        if (!pending || px_now_ms() > lag_deadline) break;
        px_sleep_us(PX__ATTACH_POLL_US);
    }
    for (int r = 1; r < world; r++)
        told[r] = px__taken(m, r);
    px_status st = px__post_ranks(m, msg, len, NULL, 0, NULL, NULL);
    if (st == PX_OK) st = px_transport_await_last(t, told, is_last, deadline_ms);
    int untold = 0;
    for (int r = 1; r < world; r++)
        untold += !px__taken(m, r);
    free(told);
    return px_transport_stop_result(st, untold);
}

/* ---- worker side ---- */

static px_status px__recv_from_server(px_transport *t, const unsigned char **msg, size_t *len,
                                      double deadline_ms)
{
    px__shm *m = (px__shm *)t;
    int r = t->rank;
    px__mailbox *mb = PX__MBOX(m, r);
    for (;;) {
        uint32_t bell = atomic_load_explicit(m->down_bell, memory_order_acquire);
        uint32_t seq = atomic_load_explicit(&mb->seq, memory_order_acquire);
        if (seq != m->took_seq) {
            uint32_t b = mb->buf;
            uint64_t l = mb->len;
            /* the previous message's buffer is released from here on */
            m->took_seq = seq;
            atomic_store_explicit(m->took[r], seq, memory_order_release);
            if (b >= (uint32_t)m->n_bufs || l < m->min_msg || l > m->max_msg)
                return px_error(PX_EPROTO,
                                "a broken message from the server: rank 0 posted %llu bytes in "
                                "buffer %u, outside the legal sizes [%zu, %zu] or buffers",
                                (unsigned long long)l, b, m->min_msg, m->max_msg);
            *msg = m->bufs + (size_t)b * m->cap;
            *len = (size_t)l;
            return PX_OK;
        }
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "no message from the server (rank 0) before the deadline "
                                         "(cluster.timeout_ms): stalled or dead");
        px__shm_wait_word(m->down_bell, bell, deadline_ms);
    }
}

/* Own slot j (0-based within this rank) that carries msg, or -1. */
static int px__own_slot_of(const px__shm *m, const unsigned char *msg)
{
    size_t k = px__up_slots(m, m->base.rank);
    for (size_t j = 0; j < k; j++)
        if (m->my_msg[j] == msg) return (int)j;
    return -1;
}

static int px__slot_busy(const px__shm *m, size_t j)
{
    size_t i = m->slot_first[m->base.rank] + j;
    return atomic_load_explicit(PX__DONE(m, i), memory_order_acquire) != m->my_post[j];
}

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len, double ready_at)
{
    px__shm *m = (px__shm *)t;
    int r = t->rank;
    size_t first = m->slot_first[r], k = px__up_slots(m, r);
    if (len > m->cap)
        return px_error(PX_EINVAL, "shm: a message of %zu bytes, more than a slot (%zu bytes)",
                        len, m->cap);
    /* a straggler really is late: sleep in slices */
    for (double wait = ready_at - px_now_ms(); wait > 0; wait = ready_at - px_now_ms())
        px_sleep_us(wait > 1000.0 ? 1000000u : (unsigned)(wait * 1000) + 1);
    size_t j = k;
    for (size_t q = 0; q < k && j == k; q++)
        if (m->lent[q] && m->slot[first + q] == msg) j = q; /* built in place: no copy */
    if (j == k) {
        for (size_t q = 0; q < k && j == k; q++)
            if (!m->lent[q] && !px__slot_busy(m, q)) j = q;
        if (j == k)
            return px_error(PX_ERUNTIME,
                            "shm: every slot of rank %d holds a message the server has not "
                            "taken",
                            r);
        memcpy(m->slot[first + j], msg, len);
    } else if (px__slot_busy(m, j)) {
        return px_error(PX_EINVAL, "shm: the message in slot %zu is still on its way", j);
    }
    px__slot_ctl *c = (px__slot_ctl *)m->ctl[first + j];
    atomic_store_explicit(&c->len, len, memory_order_relaxed);
    atomic_store_explicit(&c->order, ++m->order, memory_order_relaxed);
    atomic_store_explicit(&c->post, ++m->my_post[j], memory_order_release);
    m->my_msg[j] = msg;
    px__shm_ring(m->up_bell);
    return PX_OK;
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    px__shm *m = (px__shm *)t;
    size_t k = px__up_slots(m, t->rank);
    px__word *ack = PX__ACK(m, t->rank);
    for (;;) {
        uint32_t a = atomic_load_explicit(ack, memory_order_acquire);
        int busy = 0;
        for (size_t j = 0; j < k; j++)
            busy |= px__slot_busy(m, j);
        if (!busy) return PX_OK;
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "the server (rank 0) did not take our messages before "
                                         "the deadline (cluster.timeout_ms): stalled or dead");
        px__shm_wait_word(ack, a, deadline_ms);
    }
}

static int px__in_flight(px_transport *t, const unsigned char *msg)
{
    px__shm *m = (px__shm *)t;
    int j = px__own_slot_of(m, msg);
    return j >= 0 && px__slot_busy(m, (size_t)j);
}

static unsigned char *px__send_buffer(px_transport *t, size_t i, size_t len)
{
    px__shm *m = (px__shm *)t;
    int r = t->rank;
    /* the last slot stays the spare, for messages built elsewhere (the BYE) */
    if (r <= 0 || i + 1 >= px__up_slots(m, r) || len > m->cap || m->lent[i]) return NULL;
    m->lent[i] = 1;
    return m->slot[m->slot_first[r] + i];
}

/* The message-passing operations of the transport (transport_shm_setup.c sets up the rest). */
void px__shm_bind_ops(px_transport *t)
{
    t->send_params = px__send_params;
    t->recv = px__server_recv;
    t->send_stop = px__send_stop;
    t->recv_from_server = px__recv_from_server;
    t->send = px__send;
    t->sends_done = px__sends_done;
    t->in_flight = px__in_flight;
    t->send_buffer = px__send_buffer;
}
