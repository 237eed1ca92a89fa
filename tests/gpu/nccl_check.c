/* nccl_check.c - the NCCL transport (comm/transport_nccl.h) under `mpirun -np N` (N >= 2, one
 * GPU per rank): two rounds of the uplink gather (each worker rank's header validated on the
 * host, its payload received into the server's device buffer; in the second round the server
 * refuses rank 1), then a broadcast of the parameters, every byte checked against what the
 * sender wrote. Run by tests/gpu/run.sh. Exit 0 pass, 1 fail, 77 no usable GPU or NCCL (skip:
 * nothing verified).
 */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "comm/transport_nccl.h"

enum { N_FLOATS = 1 << 20, HEADER = 32 };

static int rank;

static void die(const char *what)
{
    fprintf(stderr, "nccl_check: rank %d: %s: %s\n", rank, what, px_errmsg());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* value i of rank r's payload in round k */
static float value(int r, int k, size_t i)
{
    return (float)r * 1000.0f + (float)k * 100.0f + (float)(i % 997) * 0.5f;
}

typedef struct {
    int round;
} check_arg;

/* the server's validator: "px-hdr r=<rank> k=<round>", from the rank it names; rank 1 is
 * refused in round 1 */
static px_status validate(const unsigned char *hdr, size_t len, int src, size_t *take, void *arg)
{
    const check_arg *a = arg;
    char want[HEADER];
    snprintf(want, sizeof want, "px-hdr r=%d k=%d", src, a->round);
    *take = 0;
    if (len != HEADER || strncmp((const char *)hdr, want, HEADER) != 0)
        return px_error(PX_EPROTO, "rank %d sent a wrong header", src);
    *take = (a->round == 1 && src == 1) ? 0 : N_FLOATS * sizeof(float);
    return PX_OK;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    int n = 0, skip = cudaGetDeviceCount(&n) != cudaSuccess || n == 0 || world < 2, any_skip = 0;
    MPI_Allreduce(&skip, &any_skip, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_skip) {
        if (rank == 0)
            printf("nccl_check: SKIPPED, nothing verified: needs >= 2 ranks with one GPU each\n");
        MPI_Finalize();
        return 77;
    }
    px_nccl *c;
    int gpu = -1;
    if (px_nccl_create(&c, HEADER, px_now_ms() + 60000.0, &gpu) < 0) die("create");
    size_t bytes = N_FLOATS * sizeof(float);
    float *host = malloc(bytes);
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        check_arg arg = {k};
        if (rank == 0) {
            void **dst = calloc((size_t)world, sizeof *dst);
            size_t *cap = calloc((size_t)world, sizeof *cap), *got = calloc((size_t)world, 8);
            for (int r = 1; r < world; r++) {
                if (cudaMalloc(&dst[r], bytes) != cudaSuccess) die("cudaMalloc");
                cap[r] = bytes;
            }
            if (px_nccl_gather(c, dst, cap, got, validate, &arg, px_now_ms() + 60000.0) < 0)
                die("gather");
            for (int r = 1; r < world; r++) {
                size_t want = (k == 1 && r == 1) ? 0 : bytes;
                if (got[r] != want) {
                    printf("nccl_check: round %d rank %d: %zu bytes taken, %zu expected\n", k, r,
                           got[r], want);
                    bad = 1;
                }
                if (!got[r]) continue;
                cudaMemcpy(host, dst[r], bytes, cudaMemcpyDeviceToHost);
                for (size_t i = 0; i < N_FLOATS; i++)
                    if (host[i] != value(r, k, i)) {
                        printf("nccl_check: round %d rank %d: value %zu wrong\n", k, r, i);
                        bad = 1;
                        break;
                    }
                cudaFree(dst[r]);
            }
            free(dst), free(cap), free(got);
        } else {
            unsigned char hdr[HEADER] = {0};
            snprintf((char *)hdr, sizeof hdr, "px-hdr r=%d k=%d", rank, k);
            for (size_t i = 0; i < N_FLOATS; i++)
                host[i] = value(rank, k, i);
            void *payload;
            if (cudaMalloc(&payload, bytes) != cudaSuccess) die("cudaMalloc");
            cudaMemcpy(payload, host, bytes, cudaMemcpyHostToDevice);
            size_t accepted = 0;
            if (px_nccl_send(c, hdr, HEADER, payload, bytes, &accepted, px_now_ms() + 60000.0) < 0)
                die("send");
            if (accepted != ((k == 1 && rank == 1) ? 0 : bytes)) bad = 1;
            cudaFree(payload);
        }
    }
    /* the parameters: rank 0's buffer on every rank */
    void *params;
    if (cudaMalloc(&params, bytes) != cudaSuccess) die("cudaMalloc");
    for (size_t i = 0; i < N_FLOATS; i++)
        host[i] = rank == 0 ? value(0, 9, i) : -1.0f;
    cudaMemcpy(params, host, bytes, cudaMemcpyHostToDevice);
    if (px_nccl_broadcast(c, params, bytes, px_now_ms() + 60000.0) < 0) die("broadcast");
    cudaMemcpy(host, params, bytes, cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < N_FLOATS; i++)
        if (host[i] != value(0, 9, i)) {
            printf("nccl_check: rank %d: broadcast value %zu wrong\n", rank, i);
            bad = 1;
            break;
        }
    cudaFree(params);
    free(host);
    px_nccl_destroy(c);
    int any_bad = 0;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("nccl_check: %s on %d ranks (gather x2 with a refusal, broadcast of %zu bytes)\n",
               any_bad ? "FAIL" : "ok", world, bytes);
    MPI_Finalize();
    return any_bad ? 1 : 0;
}
