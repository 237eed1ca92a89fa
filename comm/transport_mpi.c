/* transport_mpi.c - the MPI transport (see transport.h): point-to-point nonblocking messages
 * polled against a deadline. Collectives are avoided on purpose: a collective that one rank
 * never joins cannot be timed out or attributed to that rank. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

enum { PX__TAG_FROM_SERVER = 11, PX__TAG_TO_SERVER = 12 };
#define PX__POLL_US 50u /* sleep between polls: small against a step, frees the core */

typedef struct {
    px_transport base;
    size_t max_msg;
    unsigned char *rbuf;
    MPI_Request *server_reqs; /* one per worker rank */
    int n_server_reqs;
    MPI_Request *sends;
    size_t n_sends, max_sends;
} px__mpi;

/* Waits for reqs[0..n) until the deadline. On timeout returns PX_ETIMEOUT and sets pending[i]
 * for each request not yet complete. */
static px_status px__wait_all(MPI_Request *reqs, int n, double deadline_ms, int *pending)
{
    for (;;) {
        int done = 0;
        if (MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "MPI_Testall failed");
        if (done) return PX_OK;
        if (px_now_ms() > deadline_ms) {
            for (int i = 0; i < n; i++) {
                int flag = 0;
                MPI_Test(&reqs[i], &flag, MPI_STATUS_IGNORE);
                if (pending) pending[i] = !flag;
            }
            return PX_ETIMEOUT;
        }
        px_sleep_us(PX__POLL_US);
    }
}

static px_status px__send_params(px_transport *t, const unsigned char *msg, size_t len)
{
    px__mpi *m = (px__mpi *)t;
    if (len > (size_t)INT32_MAX) return px_error(PX_EINVAL, "mpi: message of %zu bytes", len);
    for (int r = 1; r < t->world; r++)
        if (MPI_Isend(msg, (int)len, MPI_BYTE, r, PX__TAG_FROM_SERVER, MPI_COMM_WORLD,
                      &m->server_reqs[r - 1]) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "mpi: cannot start the send to rank %d", r);
    m->n_server_reqs = t->world - 1;
    return PX_OK;
}

static px_status px__params_done(px_transport *t, double deadline_ms)
{
    px__mpi *m = (px__mpi *)t;
    if (m->n_server_reqs == 0) return PX_OK;
    int *pending = calloc((size_t)m->n_server_reqs, sizeof *pending);
    px_status st = px__wait_all(m->server_reqs, m->n_server_reqs, deadline_ms, pending);
    if (st == PX_ETIMEOUT) {
        char ranks[512] = "";
        for (int i = 0; i < m->n_server_reqs; i++) {
            if (!pending[i]) continue;
            char one[16];
            snprintf(one, sizeof one, "%s%d", ranks[0] ? ", " : "", i + 1);
            strncat(ranks, one, sizeof ranks - strlen(ranks) - 1);
        }
        st = px_error(PX_ETIMEOUT,
                      "rank %s did not take the server's message before the deadline "
                      "(cluster.timeout_ms): stalled or dead",
                      ranks);
    }
    free(pending);
    if (st == PX_OK) m->n_server_reqs = 0;
    return st;
}

/* Receives the next message with `tag` from `source` into rbuf. */
static px_status px__recv(px__mpi *m, int source, int tag, const unsigned char **msg, size_t *len,
                          int *src, double deadline_ms)
{
    for (;;) {
        int flag = 0;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(source, tag, MPI_COMM_WORLD, &flag, &handle, &status) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "mpi: MPI_Improbe failed");
        if (flag) {
            int count = 0;
            MPI_Get_count(&status, MPI_BYTE, &count);
            *src = status.MPI_SOURCE;
            *len = (size_t)count;
            if ((size_t)count > m->max_msg) {
                /* receive what fits and discard: the truncation error consumes the message */
                MPI_Status st2;
                MPI_Mrecv(m->rbuf, (int)m->max_msg, MPI_BYTE, &handle, &st2);
                return px_error(PX_EPROTO,
                                "rank %d sent %d bytes, more than the largest legal "
                                "message (%zu bytes)",
                                *src, count, m->max_msg);
            }
            if (MPI_Mrecv(m->rbuf, count, MPI_BYTE, &handle, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "mpi: receive from rank %d failed", *src);
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
                               double deadline_ms)
{
    PX_CHECK(px__params_done(t, deadline_ms));
    PX_CHECK(px__send_params(t, msg, len));
    return px__params_done(t, deadline_ms);
}

static px_status px__recv_from_server(px_transport *t, const unsigned char **msg, size_t *len,
                                      double deadline_ms)
{
    int src;
    px_status st = px__recv((px__mpi *)t, 0, PX__TAG_FROM_SERVER, msg, len, &src, deadline_ms);
    if (st == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "no message from the server (rank 0) before the "
                                     "deadline (cluster.timeout_ms): stalled or dead");
    return st;
}

static px_status px__send(px_transport *t, const unsigned char *msg, size_t len)
{
    px__mpi *m = (px__mpi *)t;
    if (m->n_sends >= m->max_sends)
        return px_error(PX_EINVAL, "mpi: more than %zu sends in one step", m->max_sends);
    if (len > (size_t)INT32_MAX) return px_error(PX_EINVAL, "mpi: message of %zu bytes", len);
    if (MPI_Isend(msg, (int)len, MPI_BYTE, 0, PX__TAG_TO_SERVER, MPI_COMM_WORLD,
                  &m->sends[m->n_sends]) != MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "cannot start a send to the server");
    m->n_sends++;
    return PX_OK;
}

static px_status px__sends_done(px_transport *t, double deadline_ms)
{
    px__mpi *m = (px__mpi *)t;
    if (m->n_sends == 0) return PX_OK;
    px_status st = px__wait_all(m->sends, (int)m->n_sends, deadline_ms, NULL);
    if (st == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "the server (rank 0) did not take our messages "
                                     "before the deadline (cluster.timeout_ms): stalled or dead");
    if (st == PX_OK) m->n_sends = 0;
    return st;
}

static void px__destroy(px_transport *t)
{
    px__mpi *m = (px__mpi *)t;
    if (!m) return;
    px_free(m->rbuf);
    free(m->server_reqs);
    free(m->sends);
    free(m);
}

px_status px_transport_mpi_create(px_transport **out, size_t max_msg, size_t max_sends)
{
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return px_error(PX_EINVAL, "mpi transport: MPI is not initialised");
    px__mpi *m = calloc(1, sizeof *m);
    if (!m) return px_error(PX_ENOMEM, "mpi transport: cannot allocate");
    MPI_Comm_rank(MPI_COMM_WORLD, &m->base.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->base.world);
    if (m->base.world < 2) {
        int world = m->base.world;
        free(m);
        return px_error(PX_EINVAL, "mpi transport: needs at least 2 ranks, the job has %d", world);
    }
    /* errors come back as codes (a truncated oversized message must not abort the server) */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    m->base.name = "mpi";
    m->max_msg = max_msg;
    m->max_sends = max_sends ? max_sends : 1;
    m->rbuf = px_alloc(max_msg, "the receive buffer");
    m->server_reqs = calloc((size_t)m->base.world, sizeof *m->server_reqs);
    m->sends = calloc(m->max_sends, sizeof *m->sends);
    if (!m->rbuf || !m->server_reqs || !m->sends) {
        px__destroy(&m->base);
        return px_error(PX_ENOMEM, "mpi transport: cannot allocate buffers");
    }
    m->base.send_params = px__send_params;
    m->base.params_done = px__params_done;
    m->base.recv = px__server_recv;
    m->base.send_stop = px__send_stop;
    m->base.recv_from_server = px__recv_from_server;
    m->base.send = px__send;
    m->base.sends_done = px__sends_done;
    m->base.destroy = px__destroy;
    *out = &m->base;
    return PX_OK;
}

px_status px_mpi_agree(int code, double deadline_ms, int *worst_code, int *worst_rank)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int in[2] = {code, rank}, out[2] = {0, 0};
    MPI_Request req;
    if (MPI_Iallreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "mpi: start-up agreement failed");
    if (px__wait_all(&req, 1, deadline_ms, NULL) == PX_ETIMEOUT)
        return px_error(PX_ETIMEOUT, "not every rank reached the start of the run "
                                     "before the deadline (cluster.timeout_ms)");
    *worst_code = out[0];
    *worst_rank = out[1];
    return PX_OK;
}
