/* transport_shm_impl.h - the shared-memory transport's layout and state (transport_shm.c,
 * transport_shm_setup.c),
 * shared with its white-box test (tests/test_shm.c), which plays hostile ranks by writing their
 * slots' control words directly. Not for use elsewhere. */
#ifndef PX_TRANSPORT_SHM_IMPL_H
#define PX_TRANSPORT_SHM_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

#define PX__SHM_MAGIC   0x48535850u /* "PXSH" */
#define PX__SHM_VERSION 1u
#define PX__LINE        64u
#define PX__PAGE        4096u
/* start-up polls (opening a segment that its creator has not made yet) */
#define PX__ATTACH_POLL_US 200u
/* longest single futex sleep: a lost wake-up costs at most this */
#define PX__WAIT_SLICE_MS 200.0

typedef _Atomic uint32_t px__word;

/* First line of every segment: what it is, so that an opener checks it is the one meant. */
typedef struct {
    px__word magic; /* stored last by the creator (release): the rest is then initialised */
    uint32_t version, kind, rank, world, n_workers, n_bufs, n_slots;
    uint64_t msg_cap, bytes;
} px__shm_head;

typedef struct {
    px__word seq; /* server: count of messages posted to this rank */
    px__word mapped; /* server: 1 once it mapped this rank's up segment */
    uint32_t buf;    /* which parameter buffer */
    uint32_t pad;
    uint64_t len;
} px__mailbox;

typedef struct {
    px__word post;  /* worker: incremented after each message placed in the slot */
    px__word order; /* worker: the message's place in the rank's order (1, 2, ...) */
    _Atomic uint64_t len;
} px__slot_ctl;

enum { PX__SEG_DOWN = 1, PX__SEG_BELL = 2, PX__SEG_UP = 3 };

typedef struct {
    unsigned char *base;
    size_t bytes;
    char name[96];
    int created, unlinked;
} px__seg;

typedef struct {
    px_transport base;
    size_t min_msg, max_msg, cap; /* cap: max_msg rounded up to pages (slot and buffer size) */
    size_t n_workers;
    int n_bufs;
    size_t n_slots;        /* every rank's slots together */
    size_t *slot_first;    /* per rank: index of its first slot (world + 1 entries) */
    px__seg down, bell, *up; /* up: per rank (the server maps every one; a worker its own) */
    /* views into the segments */
    px__word *down_bell, *up_bell, *ack; /* ack: per rank, rung when the server took a message */
    px__mailbox *mbox;                   /* per rank */
    px__word *done;                      /* per slot */
    unsigned char *bufs;                 /* n_bufs * cap */
    px__word **took;                     /* per rank: in its up segment */
    px__slot_ctl **ctl;                  /* per slot: in its rank's up segment */
    unsigned char **slot;                /* per slot: its data */
    /* server */
    unsigned char *rbuf;
    uint32_t *seen;        /* per slot: the post count last taken */
    uint32_t *next_order;  /* per rank: the order the next message must have */
    uint32_t *posted;      /* per rank: messages posted to it */
    int *pend_buf, *hold_buf; /* per rank: buffer of its newest message, and of the one before */
    int next_rank;         /* where the next scan starts (fairness) */
    /* worker */
    uint32_t took_seq;        /* the last message taken from the server */
    uint32_t order;           /* messages posted so far */
    uint32_t *my_post;        /* per own slot: posts so far */
    const unsigned char **my_msg; /* per own slot: the caller's message it carries */
    uint8_t *lent;            /* per own slot: handed out by send_buffer */
} px__shm;

#define PX__MBOX(m, r) ((px__mailbox *)((unsigned char *)(m)->mbox + PX__LINE * (size_t)(r)))
#define PX__ACK(m, r)  ((px__word *)((unsigned char *)(m)->ack + PX__LINE * (size_t)(r)))
#define PX__DONE(m, i) ((px__word *)((unsigned char *)(m)->done + PX__LINE * (size_t)(i)))


/* Slots of worker rank r's segment: one per logical worker it hosts, and a spare. */
static inline size_t px__up_slots(const px__shm *m, int r)
{
    return m->slot_first[r + 1] - m->slot_first[r];
}

/* transport_shm.c: the message-passing operations; transport_shm_setup.c: the rest. */
void px__shm_bind_ops(px_transport *t);
void px__shm_wait_word(px__word *w, uint32_t seen, double deadline_ms);
void px__shm_ring(px__word *w);

#endif
