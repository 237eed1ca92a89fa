/* transport_nccl.c - NCCL between the server's and the workers' GPUs, headers over MPI (see
 * transport_nccl.h). Every wait polls against a deadline: MPI requests with MPI_Test, NCCL work
 * with ncclCommGetAsyncError and cudaStreamQuery on a non-blocking communicator. */
#include "comm/transport_nccl.h"

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "base/cuda_check.h"

/* MPI tags of the header exchange, on the context's own duplicate of MPI_COMM_WORLD (so they
 * can never match a message of the MPI transport) */
enum { PX__TAG_HEADER = 41, PX__TAG_ANSWER = 42 };

struct px_nccl {
    MPI_Comm comm; /* duplicate of MPI_COMM_WORLD */
    int rank, world, gpu;
    ncclComm_t nccl;
    cudaStream_t stream;
    size_t max_header;
    unsigned char *hdr; /* max_header bytes: the server's receive buffer */
    int aborted;        /* the communicator was aborted: only destroy is left */
};

/* A failing NCCL call: file, line, the call, NCCL's error string and its last message. */
static px_status px__nccl_error(ncclResult_t r, ncclComm_t comm, const char *call,
                                const char *file, int line)
{
    return px_error(PX_ERUNTIME, "%s:%d: %s: %s (%s)", file, line, call, ncclGetErrorString(r),
                    comm ? ncclGetLastError(comm) : ncclGetLastError(NULL));
}

/* ncclInProgress is success on a non-blocking communicator: the wait that follows polls */
#define PX_NCCL_CHECK(c, call)                                                                     \
    do {                                                                                           \
        ncclResult_t px__nr = (call);                                                              \
        if (px__nr != ncclSuccess && px__nr != ncclInProgress)                                     \
            return px__nccl_error(px__nr, (c)->nccl, #call, __FILE__, __LINE__);                   \
    } while (0)

static void px__abort(px_nccl *c)
{
    if (c->nccl && !c->aborted) (void)ncclCommAbort(c->nccl);
    c->aborted = 1;
}

/* Waits for the communicator's pending work (its state and the stream) until the deadline.
 * `what` and `peers` name the operation and the ranks involved for the messages. */
static px_status px__wait(px_nccl *c, double deadline_ms, const char *what, const char *peers)
{
    for (;;) {
        ncclResult_t state = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(c->nccl, &state);
        if (r != ncclSuccess) {
            px_status st = px__nccl_error(r, c->nccl, "ncclCommGetAsyncError", __FILE__, __LINE__);
            px__abort(c);
            return st;
        }
        if (state != ncclSuccess && state != ncclInProgress) {
            px_status st = px_error(PX_ERUNTIME,
                                    "nccl: %s with %s failed: %s (%s); communicator aborted",
                                    what, peers, ncclGetErrorString(state),
                                    ncclGetLastError(c->nccl));
            px__abort(c);
            return st;
        }
        cudaError_t q = state == ncclSuccess ? cudaStreamQuery(c->stream) : cudaErrorNotReady;
        if (q == cudaSuccess) return PX_OK;
        if (q != cudaErrorNotReady) {
            px_status st = px__cuda_error(q, "cudaStreamQuery(nccl stream)", __FILE__, __LINE__);
            px__abort(c);
            return st;
        }
        if (px_now_ms() > deadline_ms) {
            px__abort(c);
            return px_error(PX_ETIMEOUT,
                            "nccl: %s with %s did not complete before the deadline (a rank died "
                            "or stalled); communicator aborted",
                            what, peers);
        }
        px_sleep_us(50);
    }
}

/* MPI_Test until the request completes or the deadline passes (then cancelled). */
static px_status px__mpi_wait(MPI_Request *req, double deadline_ms, const char *what, int peer)
{
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "nccl: MPI %s with rank %d failed", what, peer);
        if (done) return PX_OK;
        if (px_now_ms() > deadline_ms) {
            MPI_Cancel(req);
            MPI_Request_free(req);
            return px_error(PX_ETIMEOUT, "nccl: rank %d: no %s before the deadline", peer, what);
        }
        px_sleep_us(100);
    }
}

/* This rank's GPU: its rank among the ranks of its node, which must not outnumber the GPUs
 * (NCCL refuses two ranks of one communicator on one GPU). */
static px_status px__pick_gpu(px_nccl *c)
{
    MPI_Comm local;
    if (MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local) !=
        MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "nccl: MPI_Comm_split_type(shared) failed");
    int local_rank = 0, local_size = 1;
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return px_error(PX_ENOTSUP, "nccl: rank %d has no usable CUDA device (%s)", c->rank,
                        e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if (local_size > n)
        return px_error(PX_ENOTSUP,
                        "nccl: %d ranks share rank %d's node, which has %d GPU(s): NCCL needs one "
                        "GPU per rank (start fewer ranks per node)",
                        local_size, c->rank, n);
    c->gpu = local_rank;
    PX_CUDA_CHECK(cudaSetDevice(c->gpu));
    return PX_OK;
}

px_status px_nccl_create(px_nccl **out, size_t max_header, double deadline_ms, int *gpu)
{
    *out = NULL;
    px_nccl *c = calloc(1, sizeof *c);
    if (!c) return px_error(PX_ENOMEM, "nccl: cannot allocate the context");
    px_status st = PX_OK;
    c->comm = MPI_COMM_NULL;
    c->max_header = max_header;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &c->comm) != MPI_SUCCESS) {
        st = px_error(PX_ERUNTIME, "nccl: MPI_Comm_dup failed");
        goto fail;
    }
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->world);
    if (c->world < 2) {
        st = px_error(PX_EINVAL, "nccl: needs at least 2 ranks, the job has %d", c->world);
        goto fail;
    }
    c->hdr = malloc(max_header ? max_header : 1);
    if (!c->hdr) {
        st = px_error(PX_ENOMEM, "nccl: cannot allocate the header buffer");
        goto fail;
    }
    PX_CHECK_GOTO(px__pick_gpu(c), st, fail);
    PX_CUDA_CHECK_GOTO(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), st, fail);

    /* the unique id: made by rank 0, broadcast over MPI (host bytes) */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) {
            st = px__nccl_error(r, NULL, "ncclGetUniqueId(&id)", __FILE__, __LINE__);
            goto fail;
        }
    }
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->comm) != MPI_SUCCESS) {
        st = px_error(PX_ERUNTIME, "nccl: MPI_Bcast of the unique id failed");
        goto fail;
    }
    /* non-blocking: initialisation and every operation return at once, and px__wait polls
     * them against a deadline */
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&c->nccl, c->world, id, c->rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
        st = px__nccl_error(r, c->nccl, "ncclCommInitRankConfig", __FILE__, __LINE__);
        c->nccl = NULL;
        goto fail;
    }
    PX_CHECK_GOTO(px__wait(c, deadline_ms, "communicator initialisation", "every rank"), st,
                  fail);
    *gpu = c->gpu;
    *out = c;
    return PX_OK;
fail:
    px__abort(c);
    px_nccl_destroy(c);
    return st;
}

void px_nccl_destroy(px_nccl *c)
{
    if (!c) return;
    if (c->nccl && !c->aborted) {
        /* flush what is pending (bounded: a dead peer gets the communicator aborted), then
         * free it; an aborted communicator is already freed */
        ncclResult_t r = ncclCommFinalize(c->nccl);
        if (r == ncclSuccess || r == ncclInProgress)
            (void)px__wait(c, px_now_ms() + 10000.0, "finalisation", "every rank");
        else
            px__abort(c);
        if (!c->aborted) (void)ncclCommDestroy(c->nccl);
    }
    if (c->stream) (void)cudaStreamDestroy(c->stream);
    if (c->comm != MPI_COMM_NULL) MPI_Comm_free(&c->comm);
    free(c->hdr);
    free(c);
}

void *px_nccl_stream(const px_nccl *c)
{
    return c->stream;
}

static px_status px__usable(const px_nccl *c)
{
    if (c->aborted)
        return px_error(PX_ERUNTIME, "nccl: the communicator was aborted after an earlier error");
    return PX_OK;
}

/* The server takes the header of worker rank src, sized by what was sent: a header longer than
 * max_header is drained into a buffer of its size and refused. */
static px_status px__recv_header(px_nccl *c, int src, size_t *len, double deadline_ms)
{
    MPI_Status status;
    int flag = 0;
    while (!flag) {
        if (MPI_Iprobe(src, PX__TAG_HEADER, c->comm, &flag, &status) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "nccl: MPI_Iprobe for rank %d's header failed", src);
        if (flag) break;
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "nccl: rank %d sent no header before the deadline", src);
        px_sleep_us(100);
    }
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (count < 0 || (size_t)count > c->max_header) {
        unsigned char *tmp = malloc(count > 0 ? (size_t)count : 1);
        if (!tmp) return px_error(PX_ENOMEM, "nccl: cannot drain rank %d's header", src);
        MPI_Recv(tmp, count, MPI_BYTE, src, PX__TAG_HEADER, c->comm, MPI_STATUS_IGNORE);
        free(tmp);
        *len = (size_t)(count > 0 ? count : 0);
        return PX_OK; /* oversized: the caller refuses it (len > max_header) */
    }
    if (MPI_Recv(c->hdr, count, MPI_BYTE, src, PX__TAG_HEADER, c->comm, MPI_STATUS_IGNORE) !=
        MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "nccl: MPI_Recv of rank %d's header failed", src);
    *len = (size_t)count;
    return PX_OK;
}

px_status px_nccl_gather(px_nccl *c, void *const *dst, const size_t *cap, size_t *got,
                         px_nccl_header_fn check, void *arg, double deadline_ms)
{
    PX_CHECK(px__usable(c));
    if (c->rank != 0) return px_error(PX_EINVAL, "nccl: gather runs on the server (rank 0)");
    got[0] = 0;
    /* headers first, each validated on the host and answered with the accepted length */
    for (int r = 1; r < c->world; r++) {
        size_t len = 0, take = 0;
        PX_CHECK(px__recv_header(c, r, &len, deadline_ms));
        if (len <= c->max_header) PX_CHECK(check(c->hdr, len, r, &take, arg));
        if (take > cap[r]) take = 0; /* the validator's promise broken: refuse */
        got[r] = take;
        uint64_t answer = take;
        MPI_Request req;
        MPI_Isend(&answer, 1, MPI_UINT64_T, r, PX__TAG_ANSWER, c->comm, &req);
        PX_CHECK(px__mpi_wait(&req, deadline_ms, "answer", r));
    }
    /* then every accepted payload in one group: NCCL matches them by peer */
    PX_NCCL_CHECK(c, ncclGroupStart());
    for (int r = 1; r < c->world; r++)
        if (got[r]) PX_NCCL_CHECK(c, ncclRecv(dst[r], got[r], ncclChar, r, c->nccl, c->stream));
    PX_NCCL_CHECK(c, ncclGroupEnd());
    return px__wait(c, deadline_ms, "the payload gather", "the worker ranks");
}

px_status px_nccl_send(px_nccl *c, const unsigned char *hdr, size_t hdr_len, const void *payload,
                       size_t payload_bytes, size_t *accepted, double deadline_ms)
{
    *accepted = 0;
    PX_CHECK(px__usable(c));
    if (c->rank == 0) return px_error(PX_EINVAL, "nccl: the server does not send payloads");
    MPI_Request req;
    MPI_Isend(hdr, (int)hdr_len, MPI_BYTE, 0, PX__TAG_HEADER, c->comm, &req);
    PX_CHECK(px__mpi_wait(&req, deadline_ms, "header delivery to the server", 0));
    uint64_t answer = 0;
    MPI_Irecv(&answer, 1, MPI_UINT64_T, 0, PX__TAG_ANSWER, c->comm, &req);
    PX_CHECK(px__mpi_wait(&req, deadline_ms, "answer from the server", 0));
    if (answer == 0) return PX_OK; /* refused: nothing follows */
    if (answer > payload_bytes)
        return px_error(PX_EPROTO, "nccl: the server accepted %llu payload bytes, %zu were offered",
                        (unsigned long long)answer, payload_bytes);
    PX_NCCL_CHECK(c, ncclGroupStart());
    PX_NCCL_CHECK(c, ncclSend(payload, (size_t)answer, ncclChar, 0, c->nccl, c->stream));
    PX_NCCL_CHECK(c, ncclGroupEnd());
    PX_CHECK(px__wait(c, deadline_ms, "the payload send", "the server (rank 0)"));
    *accepted = (size_t)answer;
    return PX_OK;
}

px_status px_nccl_broadcast(px_nccl *c, void *buf, size_t bytes, double deadline_ms)
{
    PX_CHECK(px__usable(c));
    PX_NCCL_CHECK(c, ncclBroadcast(buf, buf, bytes, ncclChar, 0, c->nccl, c->stream));
    return px__wait(c, deadline_ms, "the parameter broadcast", "every rank");
}
