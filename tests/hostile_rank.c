/* hostile_rank.c - an MPI rank that joins a trainer job and attacks the transport instead of
 * training.
 *
 * As a worker rank (rank > 0) it sends the server a message far larger than any legal one
 * (1,000,000 bytes), an empty one and one a byte short of a header, and never a gradient. It
 * then follows the server as a worker rank would (takes each parameter message, answers STOP
 * with BYE), so that a server that survives the attack can end the job normally.
 *
 *   mpirun -np 3 trainer CONFIG.pb --set ... : -np 1 hostile_rank [TIMEOUT_MS [HUGE_BYTES]]
 *
 * HUGE_BYTES (optional) adds a first message of that size, meant to be over the transport's
 * drain limit (comm/transport.h PX_MPI_DRAIN_MAX_BYTES): the server matches it but never takes
 * it in, so this rank does not wait for it.
 *
 * As the server (rank 0) it sends every worker rank a 1,000,000-byte message in place of the
 * parameters, then waits for the job to end (a worker must refuse it, not write it past a
 * buffer):
 *
 *   mpirun -np 1 hostile_rank [TIMEOUT_MS] : -np 2 trainer CONFIG.pb --set ...
 *
 * It speaks the transport's protocol from the outside, as an attacker would: the tags and the
 * agreement below are copies of comm/transport_mpi.c's (if they drift, the server never sees
 * the attack and tests/it_hostile_rank.sh fails on the missing drops). Every wait has a deadline
 * (TIMEOUT_MS, default 60000, without a message from the server): past it the rank aborts the
 * job with exit status 3, so that a test sees a failure rather than a hang.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"

enum { TAG_FROM_SERVER = 11, TAG_TO_SERVER = 12 }; /* as in comm/transport_mpi.c */
enum { N_ATTACKS = 4 };                            /* [0] is the optional huge one */

static int rank;

static void give_up(const char *what)
{
    fprintf(stderr, "hostile_rank %d: %s\n", rank, what);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    exit(3);
}

/* Polls `req` until it completes or timeout_ms pass: 1 if it completed. */
static int wait_for(MPI_Request *req, double timeout_ms)
{
    double deadline = px_now_ms() + timeout_ms;
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return 0;
        if (done) return 1;
        if (px_now_ms() > deadline) return 0;
        px_sleep_us(100);
    }
}

/* The start-up agreement of px_mpi_agree: every rank contributes (code, rank), MAXLOC. */
static void agree(double timeout_ms)
{
    int in[2] = {0, rank}, out[2] = {0, 0};
    MPI_Request req;
    if (MPI_Iallreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD, &req) != MPI_SUCCESS ||
        !wait_for(&req, timeout_ms))
        give_up("no start-up agreement");
    if (out[0] != 0) give_up("the trainer ranks did not start");
}

/* Rank 0: an oversized "parameter message" to every worker rank; the job must then end by a
 * worker's doing (it aborts the job), so reaching the deadline is a failure. */
static int play_server(double timeout_ms)
{
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    agree(timeout_ms);
    enum { BYTES = 1000000 };
    unsigned char *msg = malloc(BYTES);
    if (!msg) give_up("cannot allocate");
    memset(msg, 0xA5, BYTES);
    for (int r = 1; r < world; r++) {
        MPI_Request req;
        if (MPI_Isend(msg, BYTES, MPI_BYTE, r, TAG_FROM_SERVER, MPI_COMM_WORLD, &req) !=
            MPI_SUCCESS)
            give_up("cannot start a send");
        MPI_Request_free(&req); /* msg stays allocated until exit */
    }
    px_sleep_us((unsigned)(timeout_ms * 1000));
    give_up("the worker ranks did not end the job");
    return 3;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    double timeout_ms = argc > 1 ? atof(argv[1]) : 60000.0;
    if (rank == 0) return play_server(timeout_ms);
    int bytes[N_ATTACKS] = {argc > 2 ? atoi(argv[2]) : -1, 1000000, 0,
                            (int)PX_WIRE_HEADER_BYTES - 1};

    /* the attack: messages no legal sender produces. Started before the start-up agreement,
     * which the server completes only after this rank joined it: so they are already at the
     * server when its first step begins, and are counted by a step rather than arriving after
     * the last one (the end-of-run drain discards whatever comes late, uncounted). */
    unsigned char *attack[N_ATTACKS] = {NULL};
    MPI_Request sent[N_ATTACKS];
    for (int i = 0; i < N_ATTACKS; i++) {
        sent[i] = MPI_REQUEST_NULL;
        if (bytes[i] < 0) continue;
        attack[i] = malloc((size_t)bytes[i] + 1);
        if (!attack[i]) give_up("cannot allocate");
        memset(attack[i], 0xA5, (size_t)bytes[i] + 1);
        if (MPI_Isend(attack[i], bytes[i], MPI_BYTE, 0, TAG_TO_SERVER, MPI_COMM_WORLD, &sent[i]) !=
            MPI_SUCCESS)
            give_up("cannot start a send");
    }

    agree(timeout_ms);

    /* follow the server: take every message (sized by what was sent), answer STOP with BYE */
    unsigned char *in_msg = NULL;
    size_t in_cap = 0;
    uint32_t last_step = 0;
    double deadline = px_now_ms() + timeout_ms;
    for (;;) {
        int flag = 0;
        MPI_Message handle;
        MPI_Status status;
        if (MPI_Improbe(0, TAG_FROM_SERVER, MPI_COMM_WORLD, &flag, &handle, &status) != MPI_SUCCESS)
            give_up("MPI_Improbe failed");
        if (!flag) {
            if (px_now_ms() > deadline) give_up("no message from the server before the deadline");
            px_sleep_us(100);
            continue;
        }
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        if ((size_t)count > in_cap) {
            free(in_msg);
            in_cap = (size_t)count;
            in_msg = malloc(in_cap);
            if (!in_msg) give_up("cannot allocate");
        }
        if (MPI_Mrecv(in_msg, count, MPI_BYTE, &handle, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            give_up("receive from the server failed");
        deadline = px_now_ms() + timeout_ms;
        px_msg_header h;
        if (px_wire_open(in_msg, (size_t)count, &h) != PX_DROP_NONE) continue;
        last_step = h.step;
        if (h.kind == PX_MSG_STOP) break;
    }

    /* a server that is still alive took the attack messages long ago (but the huge one: it is
     * never taken in, so MPI is told to forget it; its buffer is freed after MPI_Finalize) */
    if (sent[0] != MPI_REQUEST_NULL) MPI_Request_free(&sent[0]);
    for (int i = 1; i < N_ATTACKS; i++)
        if (!wait_for(&sent[i], timeout_ms)) give_up("the server never took an attack message");
    unsigned char bye[PX_WIRE_HEADER_BYTES];
    px_msg_header b = {
        .kind = PX_MSG_BYE, .step = last_step, .worker = PX_WIRE_SERVER, .loss = 0.0f};
    px_wire_seal(bye, &b, 0);
    MPI_Request bye_req;
    if (MPI_Isend(bye, (int)sizeof bye, MPI_BYTE, 0, TAG_TO_SERVER, MPI_COMM_WORLD, &bye_req) !=
            MPI_SUCCESS ||
        !wait_for(&bye_req, timeout_ms))
        give_up("the server did not take BYE");
    for (int i = 1; i < N_ATTACKS; i++)
        free(attack[i]);
    free(in_msg);
    MPI_Finalize();
    free(attack[0]);
    return 0;
}
