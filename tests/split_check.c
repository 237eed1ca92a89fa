/* split_check.c - the split transport (comm/transport_split.c) under `mpirun -np N` (N >= 3):
 * headers over MPI, payloads over the channel named on the command line:
 *
 *   mpirun -np 3 split_check mpi     (the CPU backend: CI)
 *   mpirun -np 2 split_check nccl    (one GPU per rank: tests/gpu/run.sh)
 *
 * Four rounds of parameters down and one message per worker rank up, every byte checked
 * against what its sender wrote (each message's bytes are a function of its round, its sender
 * and its position), then the stop and the last messages:
 * - message lengths vary: whole (header + payload), header only, payload of one byte;
 * - rank 1 does not take the parameters of round 1 (a lagging rank): round 2's send skips it
 *   (skipped = 1) and marks it for the full message, it then takes round 1's message (in
 *   order), and round 3 sends it the full message while the others get the short one (the
 *   delta downlink);
 * - in round 2 the last rank also sends a message longer than the server's largest legal one
 *   and one shorter than a header (its own transport is made with wider limits, as a hostile
 *   rank's would be; with N >= 3): the server refuses each (PX_EPROTO naming the rank) and
 *   goes on.
 * On the MPI channel it first checks the channel alone: a payload longer than agreed refused.
 * Exit 0 pass, 1 fail, 77 (skip, nothing verified) when the channel cannot run here (nccl
 * without a GPU per rank, or a build without NCCL).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "comm/bulk.h"
#include "comm/transport.h"

enum { HEAD = 48, PAYLOAD = 300000, MAX_MSG = HEAD + PAYLOAD, ROUNDS = 4, SHORT_DELTA = 1000 };

static int rank, world, bad;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("split_check: rank %d: ", rank);                                                \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            bad = 1;                                                                               \
        }                                                                                          \
    } while (0)

static void die(const char *what)
{
    fprintf(stderr, "split_check: rank %d: %s: %s\n", rank, what, px_errmsg());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* byte i of a message of kind `kind` from `src` in round k */
static unsigned char byte_of(char kind, int src, int k, size_t i)
{
    if (i == 0) return (unsigned char)kind;
    return (unsigned char)((i * 131u + (size_t)src * 17u + (size_t)k * 29u + (unsigned char)kind) % 251u);
}

static void fill(unsigned char *m, size_t len, char kind, int src, int k)
{
    for (size_t i = 0; i < len; i++)
        m[i] = byte_of(kind, src, k, i);
}

static int same(const unsigned char *m, size_t len, char kind, int src, int k)
{
    for (size_t i = 0; i < len; i++)
        if (m[i] != byte_of(kind, src, k, i)) return 0;
    return 1;
}

/* the gradient message of rank r in round k: its length */
static size_t up_len(int r, int k)
{
    if ((r + k) % 3 == 1) return HEAD;         /* header only */
    if ((r + k) % 3 == 2) return HEAD + 1;     /* one payload byte */
    return MAX_MSG;
}

/* the parameters of round k: the delta (round 3) is short, the full message is whole */
static size_t down_len(int k)
{
    return k == 3 ? HEAD + SHORT_DELTA : MAX_MSG;
}

static int is_bye(const unsigned char *m, size_t len)
{
    return len >= 1 && m[0] == 'B';
}

static void server(px_transport *t, unsigned char *buf, unsigned char *full)
{
    uint8_t *needs_full = calloc((size_t)world, 1);
    for (int k = 0; k < ROUNDS; k++) {
        fill(buf, down_len(k), 'P', 0, k);
        int skipped = -1;
        const unsigned char *f = NULL;
        if (k == 3) {
            fill(full, MAX_MSG, 'F', 0, k);
            f = full;
        }
        if (t->send_params(t, buf, down_len(k), f, MAX_MSG, needs_full, &skipped) < 0)
            die("send_params");
        CHECK(skipped == (k == 2 ? 1 : 0), "round %d: %d ranks skipped, expected %d", k, skipped,
              k == 2);
        if (k == 2) CHECK(needs_full[1] == 1, "round 2: the skipped rank 1 is not marked");
        if (k == 3) CHECK(needs_full[1] == 0, "round 3: rank 1's mark was not cleared");
        int expect = world - 1, refused = 0;
        int *got = calloc((size_t)world, sizeof *got);
        while (expect > 0 || (k == 2 && world >= 3 && refused < 2)) {
            const unsigned char *m;
            size_t len;
            int src;
            px_status st = t->recv(t, &m, &len, &src, px_now_ms() + 30000.0);
            if (st == PX_EPROTO) {
                CHECK(k == 2 && src == world - 1, "round %d: an unexpected refusal: %s", k,
                      px_errmsg());
                CHECK(strstr(px_errmsg(), "rank") != NULL, "the refusal does not name the rank");
                refused++;
                continue;
            }
            if (st < 0) die("recv");
            CHECK(src >= 1 && src < world && !got[src], "round %d: a second message from %d", k,
                  src);
            if (src < 1 || src >= world) continue;
            got[src] = 1;
            expect--;
            CHECK(len == up_len(src, k), "round %d rank %d: %zu bytes, expected %zu", k, src, len,
                  up_len(src, k));
            CHECK(len == up_len(src, k) && same(m, len, 'G', src, k),
                  "round %d rank %d: the message's bytes differ", k, src);
        }
        free(got);
        MPI_Barrier(MPI_COMM_WORLD); /* the round is over on every rank */
    }
    unsigned char stop[HEAD];
    fill(stop, HEAD, 'S', 0, 99);
    if (t->send_stop(t, stop, HEAD, is_bye, px_now_ms() + 30000.0) < 0) die("send_stop");
    free(needs_full);
}

static void worker(px_transport *t, unsigned char *buf)
{
    for (int k = 0; k < ROUNDS; k++) {
        const unsigned char *m;
        size_t len;
        if (!(rank == 1 && k == 1)) { /* rank 1 lags in round 1 */
            if (t->recv_from_server(t, &m, &len, px_now_ms() + 30000.0) < 0) die("recv params");
            int took = rank == 1 && k == 2 ? 1 : k; /* rank 1 then takes round 1's message */
            if (k == 3 && rank == 1) {
                CHECK(len == MAX_MSG && same(m, len, 'F', 0, 3),
                      "round 3: the lagging rank did not get the full message");
            } else {
                CHECK(len == down_len(took) && same(m, len, 'P', 0, took),
                      "round %d: the parameters of round %d differ (%zu bytes)", k, took, len);
            }
        }
        size_t n = up_len(rank, k);
        fill(buf, n, 'G', rank, k);
        if (t->send(t, buf, n, 0) < 0) die("send");
        if (k == 2 && rank == world - 1 && world >= 3) {
            /* hostile: a message longer than the server's largest, then one shorter than a
             * header; the server refuses both, and each send returns (refused) */
            fill(buf, MAX_MSG + 8, 'H', rank, k);
            if (t->send(t, buf, MAX_MSG + 8, 0) < 0) die("send (too long)");
            if (t->send(t, buf, HEAD - 20, 0) < 0) die("send (too short)");
        }
        if (t->sends_done(t, px_now_ms() + 30000.0) < 0) die("sends_done");
        MPI_Barrier(MPI_COMM_WORLD); /* the round is over on every rank (the test's pacing) */
    }
    const unsigned char *m;
    size_t len;
    if (t->recv_from_server(t, &m, &len, px_now_ms() + 30000.0) < 0) die("recv stop");
    CHECK(len == HEAD && same(m, len, 'S', 0, 99), "the stop message differs");
    unsigned char bye[HEAD];
    fill(bye, HEAD, 'B', rank, 0);
    if (t->send(t, bye, HEAD, 0) < 0) die("send bye");
}

/* Polls a slot of the channel to its end (or its failure), within 10 s. */
static px_status wait_slot(px_bulk *b, int slot)
{
    double until = px_now_ms() + 10000.0;
    for (;;) {
        int done = 0;
        px_status st = b->test(b, slot, &done);
        if (st < 0 || done) return st;
        if (px_now_ms() > until) return px_error(PX_ETIMEOUT, "the transfer did not end");
        px_sleep_us(100);
    }
}

/* The MPI channel alone (ranks 0 and 1): a payload longer than the receive agreed is refused
 * with the sender and both lengths named (taken in whole, so the sender's send ends), and the
 * next transfer between the same ranks arrives intact. (On NCCL a length that differs from the
 * agreed one is undefined: the agreement over MPI is what prevents it.) */
static void channel_check(void)
{
    px_bulk *b;
    if (px_bulk_mpi_create(&b, 2) < 0) die("channel_check: create");
    enum { AGREED = 500, SENT = 1000 };
    unsigned char out[SENT], in[SENT];
    if (rank == 1) {
        fill(out, SENT, 'X', 1, 0);
        if (b->post(b, 0, 1, 0, out, SENT) < 0 || wait_slot(b, 0) < 0) die("channel_check: send");
        fill(out, AGREED, 'Y', 1, 0);
        if (b->post(b, 0, 1, 0, out, AGREED) < 0 || wait_slot(b, 0) < 0) die("channel_check: send");
    } else if (rank == 0) {
        memset(in, 0, sizeof in);
        if (b->post(b, 1, 0, 1, in, AGREED) < 0) die("channel_check: recv");
        px_status st = wait_slot(b, 1);
        CHECK(st == PX_EPROTO && strstr(px_errmsg(), "rank 1") && strstr(px_errmsg(), "1000 bytes"),
              "a payload longer than agreed: status %d, '%s'", (int)st, px_errmsg());
        for (size_t i = 0; i < sizeof in; i++)
            CHECK(in[i] == 0, "the refused payload was written into the receive buffer");
        if (b->post(b, 1, 0, 1, in, AGREED) < 0 || wait_slot(b, 1) < 0) die("channel_check: recv");
        CHECK(same(in, AGREED, 'Y', 1, 0), "the transfer after a refusal differs");
    }
    b->destroy(b);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const char *backend = argc > 1 ? argv[1] : "mpi";
    if (strcmp(backend, "nccl") != 0 && world >= 2) channel_check();
    px_bulk *bulk = NULL;
    int gpu = -1;
    px_status st = strcmp(backend, "nccl") == 0
                       ? px_bulk_nccl_create(&bulk, 2 * world, px_now_ms() + 60000.0, &gpu)
                       : px_bulk_mpi_create(&bulk, 2 * world);
    if (st == PX_ENOTSUP || world < 2) {
        if (rank == 0)
            printf("split_check: SKIPPED, nothing verified: %s\n",
                   world < 2 ? "needs >= 2 ranks" : px_errmsg());
        MPI_Finalize();
        return 77;
    }
    if (st < 0) die("channel");
    /* the last worker rank's limits are wider than the server's: it plays a hostile rank */
    int hostile = rank == world - 1 && world >= 3;
    px_transport *t;
    if (px_transport_split_create(&t, bulk, HEAD, hostile ? MAX_MSG + 64 : MAX_MSG,
                                  20000.0) < 0)
        die("create");
    unsigned char *buf = malloc(MAX_MSG + 64), *full = malloc(MAX_MSG);
    if (!buf || !full) die("malloc");
    if (rank == 0)
        server(t, buf, full);
    else
        worker(t, buf);
    t->destroy(t);
    free(buf);
    free(full);
    int any_bad = 0;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("split_check: %s on %d ranks over %s%s\n", any_bad ? "FAIL" : "ok", world, backend,
               gpu >= 0 ? " (one GPU per rank)" : "");
    MPI_Finalize();
    return any_bad ? 1 : 0;
}
