/* transport_local.c - the in-process transport (see transport.h): the server and every worker
 * live in one process, so a message is handed over by pointer. Workers may send from several
 * threads at once. Each message carries the time it becomes visible (a straggler's delay is
 * simulated by a later time, not by blocking the step); the server takes messages in order of
 * that time, then of sending. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

typedef struct {
    const unsigned char *msg;
    size_t len;
    double ready_at;
    uint64_t seq;
} px__item;

typedef struct {
    px_transport base;
    const unsigned char *server_msg;
    size_t server_len;
    pthread_mutex_t mu;
    px__item *queue;
    size_t cap, count;
    uint64_t seq;
} px__local;

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len,
                                 const unsigned char *full, size_t full_len, uint8_t *needs_full,
                                 int *skipped)
{
    px__local *l = (px__local *)t;
    int use_full = full && needs_full && needs_full[0];
    l->server_msg = use_full ? full : msg;
    l->server_len = use_full ? full_len : len;
    if (use_full) needs_full[0] = 0;
    if (skipped) *skipped = 0;
    return PX_OK;
}

static px_status px__recv(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                          double deadline_ms)
{
    px__local *l = (px__local *)t;
    *src = 0;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        size_t best = l->count;
        for (size_t i = 0; i < l->count; i++)
            if (best == l->count || l->queue[i].ready_at < l->queue[best].ready_at ||
                (l->queue[i].ready_at == l->queue[best].ready_at &&
                 l->queue[i].seq < l->queue[best].seq))
                best = i;
        double now = px_now_ms(), ready = best < l->count ? l->queue[best].ready_at : 0;
        if (best < l->count && ready <= now) {
            *msg = l->queue[best].msg;
            *len = l->queue[best].len;
            memmove(&l->queue[best], &l->queue[best + 1], (l->count - best - 1) * sizeof *l->queue);
            l->count--;
            pthread_mutex_unlock(&l->mu);
            return PX_OK;
        }
        pthread_mutex_unlock(&l->mu);
        /* every local worker has run before the server drains: an empty queue is final, and a
         * message still on its way is worth waiting for only until the deadline */
        if (best == l->count || ready > deadline_ms)
            return px_error(PX_ETIMEOUT, "no further message from the local workers");
        double wait_ms = ready - now;
        px_sleep_us(wait_ms > 1000 ? 1000000u : (unsigned)(wait_ms * 1000) + 1);
    }
}

static px_status px__send_stop(px_transport *t, const unsigned char *msg, size_t len,
                               px_msg_test is_last, double deadline_ms)
{
    /* the workers of this process ran their last step before the server stops: no sender is
     * left to wait for, so is_last has nothing to recognise */
    return px__send_params(t, msg, len, NULL, 0, NULL, NULL);
}

static px_status px__recv_from_server(px_transport *t, const unsigned char **msg, size_t *len,
                                      double deadline_ms)
{
    px__local *l = (px__local *)t;
    if (!l->server_msg) return px_error(PX_ETIMEOUT, "no message from the server yet");
    *msg = l->server_msg;
    *len = l->server_len;
    return PX_OK;
}

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len, double ready_at)
{
    px__local *l = (px__local *)t;
    pthread_mutex_lock(&l->mu);
    px_status st = PX_OK;
    if (l->count < l->cap)
        l->queue[l->count++] = (px__item){msg, len, ready_at, l->seq++};
    else
        st = px_error(PX_EINVAL, "local transport: more than %zu messages queued", l->cap);
    pthread_mutex_unlock(&l->mu);
    return st;
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    return PX_OK;
}

static int px__in_flight(px_transport *t, const unsigned char *msg)
{
    px__local *l = (px__local *)t;
    int found = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->count && !found; i++)
        found = l->queue[i].msg == msg;
    pthread_mutex_unlock(&l->mu);
    return found;
}

static void px__destroy(px_transport *t)
{
    px__local *l = (px__local *)t;
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    free(l->queue);
    free(l);
}

px_status px_transport_local_create(px_transport **out, size_t n_workers)
{
    *out = NULL;
    px__local *l = calloc(1, sizeof *l);
    if (!l) return px_error(PX_ENOMEM, "local transport: cannot allocate");
    /* a worker has at most one message on its way (it skips a step while one is) and one
     * sent this step */
    l->cap = 2 * n_workers + 16;
    l->queue = calloc(l->cap, sizeof *l->queue);
    if (!l->queue) {
        free(l);
        return px_error(PX_ENOMEM, "local transport: cannot allocate");
    }
    pthread_mutex_init(&l->mu, NULL);
    l->base.name = "local";
    l->base.rank = 0;
    l->base.world = 1;
    l->base.send_params = px__send_params;
    l->base.recv = px__recv;
    l->base.send_stop = px__send_stop;
    l->base.recv_from_server = px__recv_from_server;
    l->base.send = px__send;
    l->base.sends_done = px__sends_done;
    l->base.in_flight = px__in_flight;
    l->base.send_buffer = NULL; /* messages are handed over by pointer: nothing to copy */
    l->base.destroy = px__destroy;
    *out = &l->base;
    return PX_OK;
}
