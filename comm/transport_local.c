/* transport_local.c - the in-process transport (see transport.h): the server and every worker
 * live in one process, so a message is handed over by pointer. Workers may send from several
 * threads at once; the server drains the queue in arrival order. */
#include <pthread.h>
#include <stdlib.h>

#include "transport.h"

typedef struct {
    const unsigned char *msg;
    size_t len;
} px__item;

typedef struct {
    px_transport base;
    const unsigned char *server_msg;
    size_t server_len;
    pthread_mutex_t mu;
    px__item *queue;
    size_t cap, head, tail;
} px__local;

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len)
{
    px__local *l = (px__local *)t;
    l->server_msg = msg;
    l->server_len = len;
    return PX_OK;
}

static px_status px__params_done(px_transport *t, double deadline_ms)
{
    return PX_OK;
}

static px_status px__recv(px_transport *t, const unsigned char **msg, size_t *len, int *src,
                          double deadline_ms)
{
    px__local *l = (px__local *)t;
    pthread_mutex_lock(&l->mu);
    int have = l->head < l->tail;
    if (have) {
        *msg = l->queue[l->head].msg;
        *len = l->queue[l->head].len;
        l->head++;
    }
    pthread_mutex_unlock(&l->mu);
    *src = 0;
    /* every local worker has already run when the server drains: an empty queue is final */
    return have ? PX_OK : px_error(PX_ETIMEOUT, "no further message from the local workers");
}

static px_status px__send_stop(px_transport *t, const unsigned char *msg, size_t len,
                               double deadline_ms)
{
    return px__send_params(t, msg, len);
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

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len)
{
    px__local *l = (px__local *)t;
    pthread_mutex_lock(&l->mu);
    if (l->head == l->tail) l->head = l->tail = 0; /* drained: reuse from the start */
    px_status st = PX_OK;
    if (l->tail < l->cap)
        l->queue[l->tail++] = (px__item){msg, len};
    else
        st = px_error(PX_EINVAL, "local transport: more than %zu messages queued", l->cap);
    pthread_mutex_unlock(&l->mu);
    return st;
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    return PX_OK;
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
    /* room for a few messages per worker: a faulty worker may send more than one */
    l->cap = 4 * n_workers + 16;
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
    l->base.params_done = px__params_done;
    l->base.recv = px__recv;
    l->base.send_stop = px__send_stop;
    l->base.recv_from_server = px__recv_from_server;
    l->base.send = px__send;
    l->base.sends_done = px__sends_done;
    l->base.destroy = px__destroy;
    *out = &l->base;
    return PX_OK;
}
