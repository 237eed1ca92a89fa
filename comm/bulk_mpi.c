/* bulk_mpi.c - the MPI backend of the payload channel (see bulk.h): host buffers, nonblocking
 * MPI messages on a duplicate of MPI_COMM_WORLD (so that they never match another transport's).
 * A receive is sized by the message sent, as everywhere in comm/: probe, compare with the
 * length agreed, then receive exactly that; a payload of another length is taken in whole (or
 * left to MPI when it is too long to take) and refused. */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "comm/bulk.h"
#include "comm/transport.h"

enum { PX__TAG_BULK = 21 };

typedef struct {
    MPI_Request req;
    int active, matched, send, peer;
    void *buf;
    size_t bytes;
} px__bslot;

typedef struct {
    px_bulk base;
    MPI_Comm comm;
    int n_slots, aborted;
    px__bslot *slot;
} px__bmpi;

static px_status px__slot(px__bmpi *m, int slot)
{
    if (m->aborted) return px_error(PX_ERUNTIME, "bulk(mpi): the channel was aborted");
    if (slot < 0 || slot >= m->n_slots)
        return px_error(PX_EINVAL, "bulk(mpi): slot %d outside [0, %d)", slot, m->n_slots);
    return PX_OK;
}

static px_status px__post(px_bulk *b, int slot, int send, int peer, void *buf, size_t bytes)
{
    px__bmpi *m = (px__bmpi *)b;
    PX_CHECK(px__slot(m, slot));
    px__bslot *s = &m->slot[slot];
    if (s->active) return px_error(PX_EINVAL, "bulk(mpi): slot %d is still in use", slot);
    if (bytes > (size_t)INT_MAX)
        return px_error(PX_EINVAL, "bulk(mpi): %zu bytes, more than MPI's count limit", bytes);
    *s = (px__bslot){.req = MPI_REQUEST_NULL, .active = 1, .send = send, .peer = peer,
                     .buf = buf, .bytes = bytes};
    if (send && MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, PX__TAG_BULK, m->comm, &s->req) !=
                    MPI_SUCCESS) {
        s->active = 0;
        return px_error(PX_ERUNTIME, "bulk(mpi): cannot start the send to rank %d", peer);
    }
    s->matched = send;
    return PX_OK;
}

/* A payload of the wrong length: received whole into a buffer of its size, or, longer than
 * the MPI transport drains, matched (so that it blocks no other) and never received; refused
 * either way. */
static px_status px__refuse(MPI_Message *handle, int count, int peer, size_t agreed)
{
    void *sink = (size_t)count <= PX_MPI_DRAIN_MAX_BYTES ? malloc(count ? (size_t)count : 1) : NULL;
    if (sink) MPI_Mrecv(sink, count, MPI_BYTE, handle, MPI_STATUS_IGNORE);
    free(sink);
    return px_error(PX_EPROTO, "rank %d sent a payload of %d bytes, %zu were agreed", peer, count,
                    agreed);
}

static px_status px__test(px_bulk *b, int slot, int *done)
{
    px__bmpi *m = (px__bmpi *)b;
    *done = 0;
    PX_CHECK(px__slot(m, slot));
    px__bslot *s = &m->slot[slot];
    if (!s->active) {
        *done = 1;
        return PX_OK;
    }
    if (!s->matched) {
        int flag = 0, count = -1;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(s->peer, PX__TAG_BULK, m->comm, &flag, &handle, &status) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "bulk(mpi): MPI_Improbe for rank %d failed", s->peer);
        if (!flag) return PX_OK;
        MPI_Get_count(&status, MPI_BYTE, &count);
        if (count < 0 || (size_t)count != s->bytes) {
            s->active = 0;
            return px__refuse(&handle, count < 0 ? 0 : count, s->peer, s->bytes);
        }
        if (MPI_Imrecv(s->buf, count, MPI_BYTE, &handle, &s->req) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "bulk(mpi): receive from rank %d failed", s->peer);
        s->matched = 1;
    }
    int flag = 0;
    if (MPI_Test(&s->req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "bulk(mpi): transfer with rank %d failed", s->peer);
    if (flag) s->active = 0;
    *done = flag;
    return PX_OK;
}

static void px__abort(px_bulk *b)
{
    px__bmpi *m = (px__bmpi *)b;
    for (int i = 0; i < m->n_slots; i++) {
        px__bslot *s = &m->slot[i];
        if (s->active && s->req != MPI_REQUEST_NULL) {
            MPI_Cancel(&s->req);
            MPI_Request_free(&s->req); /* its buffer stays MPI's: the caller never frees it */
        }
        s->active = 0;
    }
    m->aborted = 1;
}

static void px__destroy(px_bulk *b)
{
    px__bmpi *m = (px__bmpi *)b;
    if (!m) return;
    if (m->slot) px__abort(b);
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
    px_stream_destroy(b->stream);
    px_device_close(b->dev);
    free(m->slot);
    free(m);
}

px_status px_bulk_mpi_create(px_bulk **out, int n_slots)
{
    *out = NULL;
    px__bmpi *m = calloc(1, sizeof *m);
    if (!m) return px_error(PX_ENOMEM, "bulk(mpi): cannot allocate");
    m->comm = MPI_COMM_NULL;
    m->n_slots = n_slots;
    px_status st = PX_OK;
    m->slot = calloc((size_t)(n_slots > 0 ? n_slots : 1), sizeof *m->slot);
    if (!m->slot) {
        st = px_error(PX_ENOMEM, "bulk(mpi): cannot allocate");
        goto fail;
    }
    for (int i = 0; i < n_slots; i++)
        m->slot[i].req = MPI_REQUEST_NULL;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &m->comm) != MPI_SUCCESS) {
        st = px_error(PX_ERUNTIME, "bulk(mpi): MPI_Comm_dup failed");
        goto fail;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->base.rank);
    MPI_Comm_size(m->comm, &m->base.world);
    PX_CHECK_GOTO(px_device_open(&m->base.dev, PX_DEVICE_CPU, 0), st, fail);
    PX_CHECK_GOTO(px_stream_create(m->base.dev, &m->base.stream), st, fail);
    m->base.name = "mpi";
    m->base.post = px__post;
    m->base.test = px__test;
    m->base.abort = px__abort;
    m->base.destroy = px__destroy;
    *out = &m->base;
    return PX_OK;
fail:
    px__destroy(&m->base);
    return st;
}

#ifndef PX_HAVE_NCCL
px_status px_bulk_nccl_create(px_bulk **out, int n_slots, double deadline_ms, int *gpu)
{
    (void)n_slots, (void)deadline_ms, (void)gpu;
    *out = NULL;
    return px_error(PX_ENOTSUP, "nccl: this build has no NCCL (see trainer --version)");
}
#endif
