/* transport_nccl.h - moving gradients and parameters GPU to GPU with NCCL (builds with NCCL
 * only, PX_HAVE_NCCL), headers on the host over MPI.
 *
 * The layout is the MPI transport's: rank 0 is the server, ranks 1..W-1 the worker ranks. One
 * NCCL communicator spans all ranks; its unique id is made by rank 0 and broadcast over MPI.
 * Each rank takes the GPU of its node-local rank (MPI_Comm_split_type shared), so a node runs at
 * most as many ranks as it has GPUs.
 *
 * The uplink of a step: every worker rank sends its message header over MPI (host bytes: the
 * server receives it sized by what was sent and hands it to the caller's validator, as the MPI
 * transport does), the server answers each rank with the payload length it accepts (0: refused,
 * nothing follows), and the accepted payloads then move in one NCCL group of ncclSend/ncclRecv
 * straight into the server's device buffers. The downlink is one ncclBroadcast from rank 0.
 * Device pointers never reach MPI (Debian's Open MPI is not CUDA-aware).
 *
 * Every NCCL call is checked (file, line, NCCL's error and last message). The communicator is
 * non-blocking, so every wait polls: a deadline passes -> ncclCommAbort, PX_ETIMEOUT naming the
 * ranks still outstanding; an asynchronous NCCL error (a peer died) -> ncclCommAbort,
 * PX_ERUNTIME with NCCL's reason. After an abort the context only accepts destroy.
 */
#ifndef PX_TRANSPORT_NCCL_H
#define PX_TRANSPORT_NCCL_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef struct px_nccl px_nccl;

/* Validates a worker rank's header (hdr[0..len), from rank src) and returns in *payload_bytes
 * the payload length to accept, at most the capacity the caller gave; PX_OK with 0 refuses it
 * (the worker then sends nothing). A negative status ends the gather with that status. */
typedef px_status (*px_nccl_header_fn)(const unsigned char *hdr, size_t len, int src,
                                       size_t *payload_bytes, void *arg);

/* Collective over MPI_COMM_WORLD (MPI initialised, world >= 2): picks and binds the GPU of this
 * rank's node-local rank, creates the communicator from rank 0's unique id and a CUDA stream
 * for NCCL's work. *gpu receives the GPU ordinal taken. Fails with nothing allocated (and the
 * reason: no GPU, more ranks on a node than GPUs, NCCL's error); a rank that never arrives ends
 * it at the deadline. */
px_status px_nccl_create(px_nccl **out, size_t max_header, double deadline_ms, int *gpu);

/* Finalises the communicator (aborts it after an error or a timeout), frees everything. */
void px_nccl_destroy(px_nccl *c);

/* The cudaStream_t NCCL's work is queued on: kernels producing a payload run on it (or an event
 * orders them before it). */
void *px_nccl_stream(const px_nccl *c);

/* Server (rank 0): one header from every worker rank, validated by check, then the accepted
 * payloads received into dst[r] (device, capacity cap[r] bytes, for r = 1..world-1; dst[0]
 * unused); got[r] receives the bytes taken (0 when refused). Returns once every payload has
 * arrived. */
px_status px_nccl_gather(px_nccl *c, void *const *dst, const size_t *cap, size_t *got,
                         px_nccl_header_fn check, void *arg, double deadline_ms);

/* Worker rank: sends hdr (host) over MPI, waits for the server's answer, and, if accepted,
 * payload (device, up to payload_bytes; the server may accept fewer only by refusing) over
 * NCCL. *accepted receives the bytes the server took (0 = refused). */
px_status px_nccl_send(px_nccl *c, const unsigned char *hdr, size_t hdr_len, const void *payload,
                       size_t payload_bytes, size_t *accepted, double deadline_ms);

/* Every rank: buf (device, bytes) of rank 0 copied into buf of every rank. */
px_status px_nccl_broadcast(px_nccl *c, void *buf, size_t bytes, double deadline_ms);

#endif
