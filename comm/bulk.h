/* bulk.h - the channel that carries the payloads of the split transport (transport.h,
 * px_transport_split_create): point-to-point transfers between buffers of two ranks' devices.
 *
 * A transfer is posted by each side only once both have agreed on it over MPI (its peer, its
 * length), so that a transfer never waits on a peer that is not about to post its half: a
 * collective library such as NCCL cannot cancel a transfer, and one left unmatched would block
 * every later one on its stream. A posted transfer is then polled to its end against the
 * caller's deadline; past it the caller aborts the channel, which then only accepts destroy.
 *
 * Two backends, in the manner of base/device.h:
 * - NCCL (bulk_nccl.c, builds with NCCL): GPU buffers, one communicator over the job's ranks,
 *   one GPU per rank (its node-local rank), the transfers and the copies on one stream.
 * - MPI (bulk_mpi.c, always built): host buffers (the CPU backend of base/device.h), transfers
 *   as nonblocking MPI messages on a communicator of their own. It runs the split transport's
 *   whole protocol where there is no GPU: the tests use it, and a run asks for it with
 *   PX_DEVICE_BACKEND=cpu.
 */
#ifndef PX_BULK_H
#define PX_BULK_H

#include <stddef.h>

#include "base/device.h"
#include "base/status.h"

typedef struct px_bulk px_bulk;

struct px_bulk {
    const char *name; /* "nccl" or "mpi" */
    int rank, world;  /* this process in MPI_COMM_WORLD */
    px_device *dev;   /* the transfer buffers' memory: allocate and copy through it */
    px_stream *stream; /* copies to and from transfer buffers go here: in order with transfers */

    /* Posts the transfer of `bytes` at buf (memory of dev) to (send = 1) or from (send = 0)
     * rank peer, as the caller's slot (0 .. n_slots-1 of the create function; one transfer per
     * slot at a time). A send may read buf until the slot tests done; a receive has written it
     * then, and a copy out of it queued on `stream` afterwards reads the bytes received. */
    px_status (*post)(px_bulk *b, int slot, int send, int peer, void *buf, size_t bytes);
    /* *done = 1 once the slot's transfer has ended. A failure (NCCL's asynchronous error, a
     * peer whose payload is not the length agreed) is returned with the peer named; the caller
     * then aborts the channel. */
    px_status (*test)(px_bulk *b, int slot, int *done);
    /* Ends every transfer still pending (NCCL: ncclCommAbort), after an error or a deadline:
     * posts and tests fail from then on, and the buffers they read or wrote are not to be freed
     * while the process lives (a transfer the library could not stop may still touch them). */
    void (*abort)(px_bulk *b);
    /* Frees the channel and its device (after abort, or once every slot tested done). */
    void (*destroy)(px_bulk *b);
};

/* The MPI backend (collective over MPI_COMM_WORLD: it duplicates it). */
px_status px_bulk_mpi_create(px_bulk **out, int n_slots);

/* The NCCL backend (collective over MPI_COMM_WORLD): picks and binds the GPU of this rank's
 * node-local rank (refused when a node runs more ranks than it has GPUs: NCCL takes one GPU per
 * rank), makes the communicator from rank 0's unique id (broadcast over MPI), non-blocking, so
 * that its initialisation too ends at the deadline. *gpu receives the GPU taken. PX_ENOTSUP in
 * a build without NCCL, or on a rank without a usable GPU. */
px_status px_bulk_nccl_create(px_bulk **out, int n_slots, double deadline_ms, int *gpu);

#endif
