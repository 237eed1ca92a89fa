/* bulk_nccl.c - the NCCL backend of the payload channel (see bulk.h): one non-blocking
 * communicator over the job's ranks, one GPU per rank, every transfer an ncclSend or ncclRecv
 * on the channel's stream followed by an event of its slot. Every wait polls: the slot's event
 * with cudaEventQuery, the communicator with ncclCommGetAsyncError; a peer that died surfaces as
 * the communicator's error (the caller then aborts), one that stalls as the caller's deadline.
 * Device pointers never reach MPI (Debian's Open MPI is not CUDA-aware): MPI carries only the
 * unique id here. */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/cuda_check.h"
#include "comm/bulk.h"

typedef struct {
    px_bulk base;
    ncclComm_t nccl;
    cudaStream_t stream; /* base.stream's native handle */
    cudaEvent_t *done;   /* per slot: recorded after its transfer */
    unsigned char *active;
    int *peer;
    int n_slots, aborted;
} px__bnccl;

/* A failing NCCL call: file, line, the call, NCCL's error string and its last message. */
static px_status px__nccl_error(ncclResult_t r, ncclComm_t comm, const char *call,
                                const char *file, int line)
{
    return px_error(PX_ERUNTIME, "%s:%d: %s: %s (%s)", file, line, call, ncclGetErrorString(r),
                    ncclGetLastError(comm));
}

#define PX_NCCL_CALL(c, call)                                                                      \
    do {                                                                                           \
        ncclResult_t px__nr = (call);                                                              \
        if (px__nr != ncclSuccess && px__nr != ncclInProgress)                                     \
            return px__nccl_error(px__nr, (c)->nccl, #call, __FILE__, __LINE__);                   \
        if (px__nr == ncclInProgress) PX_CHECK(px__settle(c, #call));                              \
    } while (0)

/* The communicator's state: ncclSuccess, ncclInProgress, or its asynchronous error (then the
 * message). */
static px_status px__state(px__bnccl *c, ncclResult_t *state)
{
    ncclResult_t r = ncclCommGetAsyncError(c->nccl, state);
    if (r != ncclSuccess) return px__nccl_error(r, c->nccl, "ncclCommGetAsyncError", __FILE__, __LINE__);
    if (*state != ncclSuccess && *state != ncclInProgress)
        return px_error(PX_ERUNTIME, "nccl: the communicator failed: %s (%s)",
                        ncclGetErrorString(*state), ncclGetLastError(c->nccl));
    return PX_OK;
}

/* A call on a non-blocking communicator that answered ncclInProgress: NCCL asks that its state
 * be polled until it leaves that before the next call. Enqueueing ends in microseconds; the
 * bound only guards against a library that never settles. */
static px_status px__settle(px__bnccl *c, const char *call)
{
    double deadline = px_now_ms() + 60000.0;
    for (;;) {
        ncclResult_t state = ncclSuccess;
        PX_CHECK(px__state(c, &state));
        if (state == ncclSuccess) return PX_OK;
        if (px_now_ms() > deadline)
            return px_error(PX_ETIMEOUT, "nccl: %s was still in progress after 60 s", call);
        px_sleep_us(20);
    }
}

static px_status px__slot(px__bnccl *c, int slot)
{
    if (c->aborted) return px_error(PX_ERUNTIME, "nccl: the communicator was aborted");
    if (slot < 0 || slot >= c->n_slots)
        return px_error(PX_EINVAL, "nccl: slot %d outside [0, %d)", slot, c->n_slots);
    return PX_OK;
}

static px_status px__post(px_bulk *b, int slot, int send, int peer, void *buf, size_t bytes)
{
    px__bnccl *c = (px__bnccl *)b;
    PX_CHECK(px__slot(c, slot));
    if (c->active[slot]) return px_error(PX_EINVAL, "nccl: slot %d is still in use", slot);
    if (send)
        PX_NCCL_CALL(c, ncclSend(buf, bytes, ncclChar, peer, c->nccl, c->stream));
    else
        PX_NCCL_CALL(c, ncclRecv(buf, bytes, ncclChar, peer, c->nccl, c->stream));
    PX_CUDA_CHECK(cudaEventRecord(c->done[slot], c->stream));
    c->active[slot] = 1;
    c->peer[slot] = peer;
    return PX_OK;
}

static px_status px__test(px_bulk *b, int slot, int *done)
{
    px__bnccl *c = (px__bnccl *)b;
    *done = 0;
    PX_CHECK(px__slot(c, slot));
    if (!c->active[slot]) {
        *done = 1;
        return PX_OK;
    }
    ncclResult_t state = ncclSuccess;
    px_status st = px__state(c, &state);
    if (st < 0) return px_error_context(st, "the transfer with rank %d", c->peer[slot]);
    cudaError_t q = cudaEventQuery(c->done[slot]);
    if (q == cudaErrorNotReady) return PX_OK;
    if (q != cudaSuccess)
        return px__cuda_error(q, "cudaEventQuery(transfer)", __FILE__, __LINE__);
    c->active[slot] = 0;
    *done = 1;
    return PX_OK;
}

static void px__abort(px_bulk *b)
{
    px__bnccl *c = (px__bnccl *)b;
    if (c->nccl && !c->aborted) (void)ncclCommAbort(c->nccl);
    c->aborted = 1;
}

static void px__destroy(px_bulk *b)
{
    px__bnccl *c = (px__bnccl *)b;
    if (!c) return;
    int pending = 0;
    for (int i = 0; c->active && i < c->n_slots; i++)
        pending |= c->active[i];
    if (c->nccl && !c->aborted && !pending) {
        /* flush, then free (bounded: a peer that stopped gets the communicator aborted) */
        ncclResult_t r = ncclCommFinalize(c->nccl);
        double deadline = px_now_ms() + 10000.0;
        ncclResult_t state = r;
        while (r == ncclSuccess || r == ncclInProgress) {
            if (ncclCommGetAsyncError(c->nccl, &state) != ncclSuccess || state != ncclInProgress)
                break;
            if (px_now_ms() > deadline) break;
            px_sleep_us(100);
        }
        if ((r == ncclSuccess || r == ncclInProgress) && state == ncclSuccess)
            (void)ncclCommDestroy(c->nccl);
        else
            px__abort(b);
    } else if (c->nccl) {
        px__abort(b);
    }
    for (int i = 0; c->done && i < c->n_slots; i++)
        if (c->done[i]) (void)cudaEventDestroy(c->done[i]);
    px_stream_destroy(b->stream);
    px_device_close(b->dev);
    free(c->done);
    free(c->active);
    free(c->peer);
    free(c);
}

/* This rank's GPU: its rank among the ranks of its node, which must not outnumber the GPUs
 * (NCCL refuses two ranks of one communicator on one GPU). */
static px_status px__pick_gpu(int rank, int *gpu)
{
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) !=
        MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "nccl: MPI_Comm_split_type(shared) failed");
    int local_rank = 0, local_size = 1;
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
    int n = 0;
    px_status st = px_device_count(PX_DEVICE_CUDA, &n);
    if (st < 0) return px_error_context(st, "nccl: rank %d has no usable GPU", rank);
    if (local_size > n)
        return px_error(PX_ENOTSUP,
                        "nccl: %d ranks share rank %d's node, which has %d GPU(s): NCCL takes one "
                        "GPU per rank (start fewer ranks per node)",
                        local_size, rank, n);
    *gpu = local_rank;
    return PX_OK;
}

px_status px_bulk_nccl_create(px_bulk **out, int n_slots, double deadline_ms, int *gpu)
{
    *out = NULL;
    px__bnccl *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "nccl: cannot allocate the channel");
    px_status st = PX_OK;
    c->n_slots = n_slots;
    c->done = calloc((size_t)(n_slots > 0 ? n_slots : 1), sizeof *c->done);
    c->active = calloc((size_t)(n_slots > 0 ? n_slots : 1), 1);
    c->peer = calloc((size_t)(n_slots > 0 ? n_slots : 1), sizeof *c->peer);
    if (!c->done || !c->active || !c->peer) {
        st = px_error(PX_ENOMEM, "nccl: cannot allocate the channel");
        goto fail;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &c->base.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->base.world);
    /* every rank takes part in the id's broadcast, even one that failed to get a GPU: the
     * others would wait for it otherwise (the failure then travels in the id's first byte) */
    int my_gpu = -1;
    px_status gst = px__pick_gpu(c->base.rank, &my_gpu);
    if (gst == PX_OK) gst = px_device_open(&c->base.dev, PX_DEVICE_CUDA, my_gpu);
    if (gst == PX_OK) gst = px_stream_create(c->base.dev, &c->base.stream);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->base.rank == 0 && gst == PX_OK) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) gst = px__nccl_error(r, NULL, "ncclGetUniqueId", __FILE__, __LINE__);
    }
    int ok = gst == PX_OK, all_ok = 0;
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) {
        st = px_error(PX_ERUNTIME, "nccl: the unique id's broadcast failed");
        goto fail;
    }
    if (gst < 0) {
        st = gst;
        goto fail;
    }
    if (!all_ok) {
        st = px_error(PX_ERUNTIME, "nccl: another rank could not set up its GPU (see its message)");
        goto fail;
    }
    c->stream = (cudaStream_t)px_stream_native(c->base.stream);
    for (int i = 0; i < n_slots; i++)
        PX_CUDA_CHECK_GOTO(cudaEventCreateWithFlags(&c->done[i], cudaEventDisableTiming), st, fail);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0; /* every wait polls, so that a rank that never arrives ends it */
    ncclResult_t r = ncclCommInitRankConfig(&c->nccl, c->base.world, id, c->base.rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
        st = px__nccl_error(r, NULL, "ncclCommInitRankConfig", __FILE__, __LINE__);
        c->nccl = NULL;
        goto fail;
    }
    for (;;) {
        ncclResult_t state = ncclSuccess;
        PX_CHECK_GOTO(px__state(c, &state), st, fail);
        if (state == ncclSuccess) break;
        if (px_now_ms() > deadline_ms) {
            st = px_error(PX_ETIMEOUT, "nccl: the communicator's initialisation did not end "
                                       "before the deadline (a rank did not arrive)");
            goto fail;
        }
        px_sleep_us(100);
    }
    c->base.name = "nccl";
    c->base.post = px__post;
    c->base.test = px__test;
    c->base.abort = px__abort;
    c->base.destroy = px__destroy;
    *gpu = my_gpu;
    *out = &c->base;
    return PX_OK;
fail:
    if (c->nccl) px__abort(&c->base);
    px__destroy(&c->base);
    return st;
}
