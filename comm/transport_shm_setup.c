/* transport_shm_setup.c - the shared-memory transport's segments and start-up (see
 * transport_shm.c for the design): the layout every rank computes alike, creating and opening
 * the segments (checked against their first line), attaching each rank, the collective
 * creation over MPI, and the tear-down. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"
#include "transport_shm_impl.h"

static size_t px__round(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Logical workers hosted by rank r (as px_worker_rank places them). */
static size_t px__hosted(size_t n_workers, int world, int r)
{
    size_t h = 0;
    for (size_t w = 0; w < n_workers; w++)
        h += px_worker_rank((uint32_t)w, world) == r;
    return h;
}

/* ---- layouts (every rank computes the same from the same arguments) ---- */

static size_t px__down_bytes(const px__shm *m)
{
    int world = m->base.world;
    size_t b = PX__LINE * (2 + 2 * (size_t)world + m->n_slots);
    return px__round(b, PX__PAGE) + (size_t)m->n_bufs * m->cap;
}

static void px__down_views(px__shm *m)
{
    unsigned char *p = m->down.base + PX__LINE;
    int world = m->base.world;
    m->down_bell = (px__word *)p;
    p += PX__LINE;
    m->mbox = (px__mailbox *)p; /* world entries of one line each */
    p += PX__LINE * (size_t)world;
    m->ack = (px__word *)p; /* world words, one line apart */
    p += PX__LINE * (size_t)world;
    m->done = (px__word *)p; /* a line per slot */
    size_t b = PX__LINE * (2 + 2 * (size_t)world + m->n_slots);
    m->bufs = m->down.base + px__round(b, PX__PAGE);
}

static size_t px__up_bytes(const px__shm *m, int r)
{
    size_t b = PX__LINE * (2 + px__up_slots(m, r));
    return px__round(b, PX__PAGE) + px__up_slots(m, r) * m->cap;
}

static void px__up_views(px__shm *m, int r)
{
    unsigned char *p = m->up[r].base;
    size_t k = px__up_slots(m, r), first = m->slot_first[r];
    m->took[r] = (px__word *)(p + PX__LINE);
    unsigned char *data = p + px__round(PX__LINE * (2 + k), PX__PAGE);
    for (size_t j = 0; j < k; j++) {
        m->ctl[first + j] = (px__slot_ctl *)(p + PX__LINE * (2 + j));
        m->slot[first + j] = data + j * m->cap;
    }
}

/* ---- segments ---- */

static void px__seg_unlink(px__seg *s)
{
    if (s->created && !s->unlinked && s->name[0]) shm_unlink(s->name);
    s->unlinked = 1;
}

static void px__seg_close(px__seg *s)
{
    px__seg_unlink(s);
    if (s->base) munmap(s->base, s->bytes);
    s->base = NULL;
}

/* Creates, sizes (the pages reserved now: a full /dev/shm fails here, not with SIGBUS in the
 * middle of a step), maps and heads segment `s`. */
static px_status px__seg_create(px__seg *s, const px__shm_head *head)
{
    int fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return px_error(PX_EIO, "shm: cannot create segment %s: %s", s->name, strerror(errno));
    s->created = 1;
    int err = ftruncate(fd, (off_t)s->bytes) != 0 ? errno : posix_fallocate(fd, 0, (off_t)s->bytes);
    if (err) {
        close(fd);
        return px_error(PX_EIO,
                        "shm: cannot reserve %zu bytes for segment %s: %s (is /dev/shm full or "
                        "small? cluster.transport = MPI needs none)",
                        s->bytes, s->name, strerror(err));
    }
    void *p = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return px_error(PX_EIO, "shm: cannot map segment %s: %s", s->name, strerror(errno));
    s->base = p;
    px__shm_head *h = (px__shm_head *)p;
    uint32_t magic = PX__SHM_MAGIC;
    memcpy((unsigned char *)h + sizeof h->magic, (const unsigned char *)head + sizeof h->magic,
           sizeof *h - sizeof h->magic);
    atomic_store_explicit(&h->magic, magic, memory_order_release);
    return PX_OK;
}

/* Opens segment `s` made by `owner` (a rank), waiting for its creator until the deadline; checks
 * that it is the segment meant (head) and of the size expected, so that no read below can pass
 * its end. */
static px_status px__seg_open(px__seg *s, const px__shm_head *want, int writable, int owner,
                              double deadline_ms)
{
    for (;;) {
        int fd = shm_open(s->name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
        if (fd >= 0) {
            struct stat stt;
            int sized = fstat(fd, &stt) == 0 && (size_t)stt.st_size == s->bytes;
            void *p = sized ? mmap(NULL, s->bytes, PROT_READ | (writable ? PROT_WRITE : 0),
                                   MAP_SHARED, fd, 0)
                            : MAP_FAILED;
            close(fd);
            if (p != MAP_FAILED) {
                px__shm_head *h = p;
                if (atomic_load_explicit(&h->magic, memory_order_acquire) == PX__SHM_MAGIC) {
                    if (h->version != want->version || h->kind != want->kind ||
                        h->rank != want->rank || h->world != want->world ||
                        h->n_workers != want->n_workers || h->n_bufs != want->n_bufs ||
                        h->n_slots != want->n_slots || h->msg_cap != want->msg_cap ||
                        h->bytes != want->bytes) {
                        munmap(p, s->bytes);
                        return px_error(PX_EPROTO,
                                        "shm: segment %s of rank %d does not have the layout "
                                        "this rank expects",
                                        s->name, owner);
                    }
                    s->base = p;
                    return PX_OK;
                }
                munmap(p, s->bytes); /* not initialised yet */
            }
        } else if (errno != ENOENT) {
            return px_error(PX_EIO, "shm: cannot open segment %s of rank %d: %s", s->name, owner,
                            strerror(errno));
        }
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT,
                            "shm: rank %d did not make its segment %s before the deadline "
                            "(stalled or dead)",
                            owner, s->name);
        px_sleep_us(PX__ATTACH_POLL_US);
    }
}

static px__shm_head px__head(const px__shm *m, uint32_t kind, int rank, size_t bytes)
{
    px__shm_head h;
    memset(&h, 0, sizeof h);
    h.version = PX__SHM_VERSION;
    h.kind = kind;
    h.rank = (uint32_t)rank;
    h.world = (uint32_t)m->base.world;
    h.n_workers = (uint32_t)m->n_workers;
    h.n_bufs = (uint32_t)m->n_bufs;
    h.n_slots = (uint32_t)m->n_slots;
    h.msg_cap = m->cap;
    h.bytes = bytes;
    return h;
}

static void px__destroy(px_transport *t)
{
    px__shm *m = (px__shm *)t;
    if (!m) return;
    px__seg_close(&m->down);
    px__seg_close(&m->bell);
    for (int r = 0; m->up && r < t->world; r++)
        px__seg_close(&m->up[r]);
    px_free(m->rbuf);
    free(m->up);
    free(m->slot_first);
    free(m->took);
    free(m->ctl);
    free(m->slot);
    free(m->seen);
    free(m->next_order);
    free(m->posted);
    free(m->pend_buf);
    free(m->hold_buf);
    free(m->my_post);
    free(m->my_msg);
    free(m->lent);
    free(m);
}

/* ---- start-up ---- */

static px_status px__alloc(px__shm *m)
{
    int world = m->base.world;
    m->slot_first = calloc((size_t)world + 1, sizeof *m->slot_first);
    m->up = calloc((size_t)world, sizeof *m->up);
    m->took = calloc((size_t)world, sizeof *m->took);
    if (!m->slot_first || !m->up || !m->took) return px_error(PX_ENOMEM, "shm: cannot allocate");
    for (int r = 0; r < world; r++)
        m->slot_first[r + 1] = m->slot_first[r] + (r ? px__hosted(m->n_workers, world, r) + 1 : 0);
    m->n_slots = m->slot_first[world];
    m->ctl = calloc(m->n_slots, sizeof *m->ctl);
    m->slot = calloc(m->n_slots, sizeof *m->slot);
    if (!m->ctl || !m->slot) return px_error(PX_ENOMEM, "shm: cannot allocate");
    if (m->base.rank == 0) {
        m->rbuf = px_alloc(m->max_msg, "the receive buffer");
        m->seen = calloc(m->n_slots, sizeof *m->seen);
        m->next_order = calloc((size_t)world, sizeof *m->next_order);
        m->posted = calloc((size_t)world, sizeof *m->posted);
        m->pend_buf = malloc((size_t)world * sizeof *m->pend_buf);
        m->hold_buf = malloc((size_t)world * sizeof *m->hold_buf);
        if (!m->rbuf || !m->seen || !m->next_order || !m->posted || !m->pend_buf || !m->hold_buf)
            return px_error(PX_ENOMEM, "shm: cannot allocate the server's buffers");
        for (int r = 0; r < world; r++) {
            m->pend_buf[r] = m->hold_buf[r] = -1;
            m->next_order[r] = 1;
        }
    } else {
        size_t k = px__up_slots(m, m->base.rank);
        m->my_post = calloc(k, sizeof *m->my_post);
        m->my_msg = calloc(k, sizeof *m->my_msg);
        m->lent = calloc(k, 1);
        if (!m->my_post || !m->my_msg || !m->lent) return px_error(PX_ENOMEM, "shm: cannot allocate");
    }
    return PX_OK;
}

static void px__names(px__shm *m, const char *key)
{
    snprintf(m->down.name, sizeof m->down.name, "/phalanx-%s-down", key);
    snprintf(m->bell.name, sizeof m->bell.name, "/phalanx-%s-bell", key);
    for (int r = 1; r < m->base.world; r++)
        snprintf(m->up[r].name, sizeof m->up[r].name, "/phalanx-%s-up%d", key, r);
}

/* The server: makes down and bell, maps every rank's up segment as it appears, tells each rank
 * it did, and unlinks its own two once every rank has mapped them (a rank makes its up segment
 * only after mapping down and bell). */
static px_status px__attach_server(px__shm *m, double deadline_ms)
{
    int world = m->base.world;
    m->down.bytes = px__down_bytes(m);
    px__shm_head h = px__head(m, PX__SEG_DOWN, 0, m->down.bytes);
    PX_CHECK(px__seg_create(&m->down, &h));
    px__down_views(m);
    m->bell.bytes = PX__PAGE;
    h = px__head(m, PX__SEG_BELL, 0, m->bell.bytes);
    PX_CHECK(px__seg_create(&m->bell, &h));
    m->up_bell = (px__word *)(m->bell.base + PX__LINE);
    for (int r = 1; r < world; r++) {
        m->up[r].bytes = px__up_bytes(m, r);
        h = px__head(m, PX__SEG_UP, r, m->up[r].bytes);
        PX_CHECK(px__seg_open(&m->up[r], &h, 0, r, deadline_ms));
        px__up_views(m, r);
        atomic_store_explicit(&PX__MBOX(m, r)->mapped, 1, memory_order_release);
        px__shm_ring(m->down_bell);
    }
    px__seg_unlink(&m->down);
    px__seg_unlink(&m->bell);
    return PX_OK;
}

/* A worker rank: maps down (read-only) and bell, makes its up segment, and unlinks it once the
 * server says it mapped it. */
static px_status px__attach_worker(px__shm *m, double deadline_ms)
{
    int r = m->base.rank;
    m->down.bytes = px__down_bytes(m);
    px__shm_head h = px__head(m, PX__SEG_DOWN, 0, m->down.bytes);
    PX_CHECK(px__seg_open(&m->down, &h, 0, 0, deadline_ms));
    px__down_views(m);
    m->bell.bytes = PX__PAGE;
    h = px__head(m, PX__SEG_BELL, 0, m->bell.bytes);
    PX_CHECK(px__seg_open(&m->bell, &h, 1, 0, deadline_ms));
    m->up_bell = (px__word *)(m->bell.base + PX__LINE);
    m->up[r].bytes = px__up_bytes(m, r);
    h = px__head(m, PX__SEG_UP, r, m->up[r].bytes);
    PX_CHECK(px__seg_create(&m->up[r], &h));
    px__up_views(m, r);
    px__mailbox *mb = PX__MBOX(m, r);
    for (;;) {
        uint32_t bell = atomic_load_explicit(m->down_bell, memory_order_acquire);
        if (atomic_load_explicit(&mb->mapped, memory_order_acquire)) break;
        if (px_now_ms() > deadline_ms)
            return px_error(PX_ETIMEOUT, "shm: the server (rank 0) did not map this rank's "
                                         "segment before the deadline (stalled or dead)");
        px__shm_wait_word(m->down_bell, bell, deadline_ms);
    }
    px__seg_unlink(&m->up[r]);
    return PX_OK;
}

px_status px_transport_shm_attach(px_transport **out, const char *key, int rank, int world,
                                  size_t min_msg, size_t max_msg, size_t n_workers,
                                  double deadline_ms)
{
    *out = NULL;
    if (world < 2 || rank < 0 || rank >= world)
        return px_error(PX_EINVAL, "shm transport: rank %d of %d: needs at least 2 ranks", rank,
                        world);
    if (max_msg == 0 || min_msg > max_msg || max_msg > ((size_t)1 << 40))
        return px_error(PX_EINVAL, "shm transport: legal message sizes [%zu, %zu] bytes",
                        min_msg, max_msg);
    if (!key || !key[0] || strlen(key) > 48 || strchr(key, '/'))
        return px_error(PX_EINVAL, "shm transport: a segment key of 1 to 48 characters, no '/'");
    px__shm *m = calloc(1, sizeof *m);
    if (!m) return px_error(PX_ENOMEM, "shm transport: cannot allocate");
    m->base.name = "shm";
    m->base.rank = rank;
    m->base.world = world;
    m->min_msg = min_msg;
    m->max_msg = max_msg;
    m->cap = px__round(max_msg, PX__PAGE);
    m->n_workers = n_workers;
    /* each worker rank holds at most two buffers (the message it computes on, and the next one
     * posted to it), and a step stages two (the delta and the full parameters) */
    m->n_bufs = 2 * (world - 1) + 2;
    px__shm_bind_ops(&m->base);
    m->base.destroy = px__destroy;
    px_status st = px__alloc(m);
    if (st == PX_OK) {
        px__names(m, key);
        st = rank == 0 ? px__attach_server(m, deadline_ms) : px__attach_worker(m, deadline_ms);
    }
    if (st < 0) {
        px__destroy(&m->base); /* unlinks whatever this rank made */
        return st;
    }
    *out = &m->base;
    return PX_OK;
}

/* Polls a request until the deadline: 1 if it completed. */
static int px__mpi_wait(MPI_Request *req, double deadline_ms)
{
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return 0;
        if (done) return 1;
        if (px_now_ms() > deadline_ms) return 0;
        px_sleep_us(PX__ATTACH_POLL_US);
    }
}

px_status px_transport_shm_create(px_transport **out, size_t min_msg, size_t max_msg,
                                  size_t n_workers, double deadline_ms)
{
    /* static: a collective cannot be cancelled; on a timeout it stays pending on these */
    static char key[64];
    static int in[2], res[2];
    static MPI_Request req = MPI_REQUEST_NULL;
    *out = NULL;
    if (req != MPI_REQUEST_NULL)
        return px_error(PX_ERUNTIME, "shm: an earlier start-up is still pending");
    int rank, world, local = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return px_error(PX_ERUNTIME, "shm: cannot tell which ranks share this node");
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    if (local != world)
        return px_error(PX_EINVAL,
                        "config: cluster.transport = SHM needs every rank on one node; this "
                        "node has %d of the job's %d ranks (use MPI or AUTO)",
                        local, world);
    if (rank == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(key, sizeof key, "%ld-%lx", (long)getpid(),
                 (unsigned long)(ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20)));
    }
    if (MPI_Ibcast(key, (int)sizeof key, MPI_CHAR, 0, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
        req = MPI_REQUEST_NULL;
        return px_error(PX_ERUNTIME, "shm: cannot broadcast the segment key");
    }
    if (!px__mpi_wait(&req, deadline_ms))
        return px_error(PX_ETIMEOUT, "shm: the segment key did not reach every rank before the "
                                     "deadline");
    key[sizeof key - 1] = 0;
    px_status st = px_transport_shm_attach(out, key, rank, world, min_msg, max_msg, n_workers,
                                           deadline_ms);
    char why[512];
    snprintf(why, sizeof why, "%s", st < 0 ? px_errmsg() : "");
    /* every rank learns whether every rank attached, so all start or all stop */
    in[0] = st < 0;
    in[1] = rank;
    if (MPI_Iallreduce(in, res, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
        req = MPI_REQUEST_NULL;
        if (*out) (*out)->destroy(*out);
        *out = NULL;
        return px_error(PX_ERUNTIME, "shm: start-up agreement failed");
    }
    if (!px__mpi_wait(&req, deadline_ms)) {
        if (*out) (*out)->destroy(*out);
        *out = NULL;
        return px_error(PX_ETIMEOUT, "shm: not every rank attached before the deadline");
    }
    if (st < 0) return px_error(st, "%s", why);
    if (res[0]) {
        (*out)->destroy(*out);
        *out = NULL;
        return px_error(PX_ERUNTIME, "shm: rank %d could not attach the shared memory (see its "
                                     "message)",
                        res[1]);
    }
    return PX_OK;
}
