/* shards.c - the slices of a sharded server and the shards' exchanges (see shards.h). */
#include "shards.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/limits.h"
#include "comm/transport.h"

enum { PX__TAG_GATHER = 21, PX__TAG_PARAMS = 22 };
#define PX__POLL_US 50u

/* ---- slices -------------------------------------------------------------------------- */

/* The cut nearest `ideal` after `prev`: a group boundary within `slack`, else ideal rounded to
 * a multiple of align (never at or before prev, never at or past d). */
static size_t px__cut(const px_layer_group *groups, size_t n_groups, size_t d, size_t ideal,
                      size_t slack, size_t align, size_t prev)
{
    size_t best = 0, best_gap = (size_t)-1;
    for (size_t g = 1; g < n_groups; g++) {
        size_t b = groups[g].offset, gap = b > ideal ? b - ideal : ideal - b;
        if (b > prev && b < d && gap < best_gap) {
            best = b;
            best_gap = gap;
        }
    }
    if (best_gap <= slack) return best;
    size_t c = (ideal + align / 2) / align * align;
    if (c <= prev) c = prev + align;
    return c < d ? c : d - 1;
}

px_status px_shard_slices_make(px_shard_slice *out, size_t S, const px_layer_group *groups,
                               size_t n_groups, size_t d, size_t align)
{
    memset(out, 0, S * sizeof *out);
    if (align < 1) align = 1;
    if (S < 1 || S * align > d)
        return px_error(PX_EINVAL,
                        "config: cluster.server_shards = %zu: the model's %zu parameters cannot "
                        "be cut into %zu slices of at least %zu (the codec block)",
                        S, d, S, align);
    size_t prev = 0;
    for (size_t k = 0; k < S; k++) {
        size_t hi = k + 1 == S ? d
                               : px__cut(groups, n_groups, d, (k + 1) * (d / S), d / (10 * S),
                                         align, prev);
        px_shard_slice *sl = &out[k];
        sl->lo = prev;
        sl->n = hi - prev;
        sl->groups = calloc(n_groups, sizeof *sl->groups);
        sl->global = calloc(n_groups, sizeof *sl->global);
        if (!sl->groups || !sl->global) {
            px_shard_slices_free(out, S);
            return px_error(PX_ENOMEM, "server shards: cannot allocate");
        }
        for (size_t g = 0; g < n_groups; g++) {
            size_t a = groups[g].offset, b = a + groups[g].size;
            if (a < sl->lo) a = sl->lo;
            if (b > hi) b = hi;
            if (a >= b) continue;
            sl->groups[sl->n_groups] = (px_layer_group){groups[g].name, a - sl->lo, b - a,
                                                        groups[g].role};
            sl->global[sl->n_groups++] = g;
        }
        /* off: gather and scatter only (the draw is the whole model's) */
        px_lisa_init(&sl->lisa, 0, 0, 0, 0, sl->groups, sl->n_groups);
        prev = hi;
    }
    return PX_OK;
}

void px_shard_slices_free(px_shard_slice *sl, size_t S)
{
    for (size_t k = 0; sl && k < S; k++) {
        free(sl[k].groups);
        free(sl[k].global);
    }
}

size_t px_shard_slice_mask(const px_shard_slice *sl, const uint8_t *global_mask, uint8_t *local)
{
    size_t values = 0;
    for (size_t j = 0; j < sl->n_groups; j++) {
        local[j] = global_mask[sl->global[j]];
        if (local[j]) values += sl->groups[j].size;
    }
    return values;
}

/* ---- the shards' channel --------------------------------------------------------------- */

struct px_shard_link {
    MPI_Comm comm;
    int index, count;
    MPI_Request *reqs; /* count sends + count receives */
};

px_status px_shard_link_create(px_shard_link **out, const void *comm)
{
    *out = NULL;
    px_shard_link *l = calloc(1, sizeof *l);
    if (!l) return px_error(PX_ENOMEM, "server shards: cannot allocate");
    l->comm = *(const MPI_Comm *)comm;
    MPI_Comm_rank(l->comm, &l->index);
    MPI_Comm_size(l->comm, &l->count);
    MPI_Comm_set_errhandler(l->comm, MPI_ERRORS_RETURN);
    l->reqs = malloc(2 * (size_t)l->count * sizeof *l->reqs);
    if (!l->reqs) {
        free(l);
        return px_error(PX_ENOMEM, "server shards: cannot allocate");
    }
    for (int i = 0; i < 2 * l->count; i++)
        l->reqs[i] = MPI_REQUEST_NULL;
    *out = l;
    return PX_OK;
}

/* Cancels what is still pending (an error path: the run is ending), then frees. */
void px_shard_link_destroy(px_shard_link *l)
{
    if (!l) return;
    for (int i = 0; i < 2 * l->count; i++)
        if (l->reqs[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&l->reqs[i]);
            MPI_Request_free(&l->reqs[i]);
        }
    free(l->reqs);
    free(l);
}

int px_shard_link_index(const px_shard_link *l)
{
    return l->index;
}

int px_shard_link_count(const px_shard_link *l)
{
    return l->count;
}

/* The names of the shards in need[] (1 = still missing), for an error. */
static void px__missing(const px_shard_link *l, const uint8_t *need, char *who, size_t cap)
{
    who[0] = 0;
    for (int s = 0; s < l->count; s++) {
        if (!need[s]) continue;
        char one[48];
        snprintf(one, sizeof one, "%sserver shard %d (rank %d)", who[0] ? ", " : "", s, s);
        strncat(who, one, cap - strlen(who) - 1);
    }
}

/* Receives `bytes` bytes from each shard marked in need[] (tag) into dst[s * stride], and waits
 * for the sends in l->reqs[0..count); every wait ends at the deadline. */
static px_status px__exchange(px_shard_link *l, int tag, uint8_t *need, unsigned char *dst,
                              const size_t *bytes, const size_t *offset, double deadline_ms,
                              const char *what)
{
    MPI_Request *recv = l->reqs + l->count;
    int left = 0;
    for (int s = 0; s < l->count; s++)
        left += need[s];
    for (;;) {
        for (int s = 0; s < l->count; s++) {
            if (!need[s] || recv[s] != MPI_REQUEST_NULL) continue;
            int flag = 0, count = -1;
            MPI_Message h;
            MPI_Status status;
            if (MPI_Improbe(s, tag, l->comm, &flag, &h, &status) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "server shards: MPI_Improbe failed");
            if (!flag) continue;
            MPI_Get_count(&status, MPI_BYTE, &count);
            if (count < 0 || (size_t)count != bytes[s]) {
                /* a shard out of step with this one: nothing it sends can be trusted */
                MPI_Request dummy;
                void *sink = malloc(count > 0 ? (size_t)count : 1);
                if (sink && MPI_Imrecv(sink, count > 0 ? count : 0, MPI_BYTE, &h, &dummy) ==
                                MPI_SUCCESS)
                    MPI_Request_free(&dummy); /* sink stays MPI's */
                return px_error(PX_EPROTO,
                                "server shard %d (rank %d) sent %d bytes of %s, expected %zu: "
                                "the shards are out of step",
                                s, s, count, what, bytes[s]);
            }
            if (MPI_Imrecv(dst + offset[s], count, MPI_BYTE, &h, &recv[s]) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "server shards: receiving %s from shard %d failed",
                                what, s);
        }
        for (int s = 0; s < l->count; s++) {
            if (!need[s] || recv[s] == MPI_REQUEST_NULL) continue;
            int done = 0;
            if (MPI_Test(&recv[s], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return px_error(PX_ERUNTIME, "server shards: receiving %s from shard %d failed",
                                what, s);
            if (done) {
                need[s] = 0;
                left--;
            }
        }
        int sends_done = 0;
        if (MPI_Testall(l->count, l->reqs, &sends_done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "server shards: sending %s failed", what);
        if (!left && sends_done) return PX_OK;
        if (px_now_ms() > deadline_ms) break;
        px_sleep_us(PX__POLL_US);
    }
    char who[1024];
    if (!left) { /* ours did not leave: the peers that should take them */
        for (int s = 0; s < l->count; s++) {
            int done = 1;
            if (l->reqs[s] != MPI_REQUEST_NULL) MPI_Test(&l->reqs[s], &done, MPI_STATUS_IGNORE);
            need[s] = !done;
        }
    }
    px__missing(l, need, who, sizeof who);
    return px_error(PX_ETIMEOUT,
                    "%s: no exchange of %s with %s before the deadline (cluster.timeout_ms): "
                    "stalled or dead",
                    l->count > 1 ? "server shards" : "server", what, who[0] ? who : "a shard");
}

px_status px_shard_allgather(px_shard_link *l, const void *mine, size_t bytes, void *all,
                             double deadline_ms, const char *what)
{
    if (bytes > (size_t)0x7fffffff)
        return px_error(PX_EINVAL, "server shards: %s of %zu bytes is past MPI's count", what,
                        bytes);
    unsigned char *dst = all;
    memcpy(dst + (size_t)l->index * bytes, mine, bytes);
    uint8_t need[l->count];
    size_t len[l->count], off[l->count];
    for (int s = 0; s < l->count; s++) {
        need[s] = s != l->index;
        len[s] = bytes;
        off[s] = (size_t)s * bytes;
        if (s == l->index) continue;
        if (MPI_Isend(dst + (size_t)l->index * bytes, (int)bytes, MPI_BYTE, s, PX__TAG_GATHER, l->comm,
                      &l->reqs[s]) != MPI_SUCCESS)
            return px_error(PX_ERUNTIME, "server shards: cannot send %s to shard %d", what, s);
    }
    return px__exchange(l, PX__TAG_GATHER, need, dst, len, off, deadline_ms, what);
}

px_status px_shard_gather_params(px_shard_link *l, const px_shard_slice *slices, const float *mine,
                                 float *whole, double deadline_ms)
{
    uint8_t need[l->count];
    size_t len[l->count], off[l->count];
    for (int s = 0; s < l->count; s++) {
        need[s] = l->index == 0 && s != 0;
        len[s] = slices[s].n * sizeof(float);
        off[s] = slices[s].lo * sizeof(float);
    }
    if (l->index == 0) {
        memcpy(whole + slices[0].lo, mine, slices[0].n * sizeof(float));
    } else if (MPI_Isend(mine, (int)len[l->index], MPI_BYTE, 0, PX__TAG_PARAMS, l->comm,
                         &l->reqs[0]) != MPI_SUCCESS) {
        return px_error(PX_ERUNTIME, "server shards: cannot send the parameters to shard 0");
    }
    return px__exchange(l, PX__TAG_PARAMS, need, (unsigned char *)whole, len, off, deadline_ms,
                        "the parameters");
}

px_status px_shard_connect(size_t S, size_t min_msg, size_t max_msg, size_t max_sends,
                           double stall_ms, px_transport **ts, px_shard_link **link)
{
    /* the names the workers' errors give the shards: static, the transports keep them */
    static char names[PX_MAX_SERVER_SHARDS][48];
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (S > PX_MAX_SERVER_SHARDS || (size_t)world < S + 1)
        return px_error(PX_EINVAL, "server shards: %zu shards in a job of %d ranks", S, world);
    MPI_Group wg;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    int *members = malloc((size_t)world * sizeof *members);
    if (!members) return px_error(PX_ENOMEM, "server shards: cannot allocate");
    px_status st = PX_OK;
    /* shard k and the worker ranks, in that order: k is rank 0 of its communicator, and worker
     * rank S + j is rank 1 + j, so px_worker_rank places the workers there as the job does */
    for (size_t k = 0; k < S; k++) {
        int m = 0;
        members[m++] = (int)k;
        for (int r = (int)S; r < world; r++)
            members[m++] = r;
        MPI_Group g;
        MPI_Comm c = MPI_COMM_NULL;
        MPI_Group_incl(wg, m, members, &g);
        int rc = MPI_Comm_create(MPI_COMM_WORLD, g, &c);
        MPI_Group_free(&g);
        if (rc != MPI_SUCCESS) {
            st = px_error(PX_ERUNTIME, "server shards: cannot make shard %zu's communicator", k);
            break;
        }
        if (c == MPI_COMM_NULL) continue; /* another shard's */
        snprintf(names[k], sizeof names[k], "server shard %zu (rank %zu)", k, k);
        /* the communicator lives as long as the process: the transport keeps using it */
        static MPI_Comm comms[PX_MAX_SERVER_SHARDS];
        comms[k] = c;
        st = px_transport_mpi_create_on(&ts[rank < (int)S ? 0 : k], &comms[k], names[k], min_msg,
                                        max_msg, max_sends, stall_ms);
        if (st < 0) break;
    }
    if (st == PX_OK) {
        static MPI_Comm shards = MPI_COMM_NULL;
        if (MPI_Comm_split(MPI_COMM_WORLD, rank < (int)S ? 0 : MPI_UNDEFINED, rank, &shards) !=
            MPI_SUCCESS)
            st = px_error(PX_ERUNTIME, "server shards: cannot make the shards' communicator");
        else if (rank < (int)S)
            st = px_shard_link_create(link, &shards);
    }
    free(members);
    MPI_Group_free(&wg);
    return st;
}
