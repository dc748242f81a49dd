/* Inside the message store (src/store/store.h): what its files share, for src/store/ alone;
 * no other folder includes it. The record types, the in-memory state of segments, areas, the
 * sync thread and the store, and the functions one file of the store defines for the others:
 * store.c (the public calls, opening and closing, the records), segment.c (the segment files),
 * sync.c (the group commit) and recover.c (recovery at open). */
#ifndef WARREN_SRC_STORE_STORE_INTERNAL_H
#define WARREN_SRC_STORE_STORE_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"
#include "src/store/recfile.h"
#include "src/store/store.h"

#define SEG_MAGIC   "WRNSEG\r\n"
#define SEG_VERSION 1
#define SEG_HEADER  RECFILE_FILE_HEADER_BYTES

/* The largest record body: above RabbitMQ's largest max_message_size (512 MiB) with room for
 * the header and names, well below what a u32 length can say. */
#define MAX_RECORD_BODY (1u << 30)

#define READ_FDS 16 /* read descriptors kept open for sealed segments */

enum rec_type {
    REC_MESSAGE = 1,
    REC_ACK = 2,
    REC_RETURN = 3,
    REC_DELIVERED = 4,
    REC_QUEUE_DELETE = 5,
    REC_MESSAGE_TIMED = 6, /* a MESSAGE with its publish time and deadline (store.h) */
};

static inline bool rec_is_message(uint8_t type)
{
    return type == REC_MESSAGE || type == REC_MESSAGE_TIMED;
}

enum seg_state {
    SEG_LIVE,
    SEG_DELETING, /* its carried records are appended, waiting for their fsync */
    SEG_UNLINKED, /* unlinked; counts as existing until the directory is fsynced */
};

struct segment {
    uint32_t number;
    enum seg_state state;
    bool sealed;                 /* full: takes no more records */
    int fd;                      /* the active segment's write fd, or a cached read fd, or -1 */
    uint64_t size;               /* bytes, those still in the write buffer included */
    uint64_t live_refs;          /* live (queue, message) references of its MESSAGE records */
    uint64_t foreign_refs;       /* its other records that point outside it */
    uint64_t wait;               /* DELETING: append seq; UNLINKED: directory generation */
    bool kept;                   /* nothing live, but not worth carrying yet (segment.c) */
    uint32_t kept_lo, kept_hi;   /* ... the segments its needed records point at */
    size_t rec_first, rec_count; /* recovery: its messages in the recovery table */
};

struct area {
    bool durable;
    char *path;
    struct segment **segs; /* ascending by number */
    size_t count, cap;
    struct segment *active; /* the one appended to, or NULL */
    uint32_t next_number;
    uint8_t *wbuf; /* records not yet written to the active segment */
    size_t wlen, wcap;
    uint64_t flushed; /* bytes of the active segment already in its file */
};

/* What the loop thread and the sync thread share. Everything below mu is under it. */
struct sync_state {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool started;
    uint32_t interval_ms; /* constant */
    int dirfd;            /* constant: the msgs directory */

    uint64_t written_seq; /* loop: records up to here are written to their files */
    uint64_t synced_seq;  /* thread: ... and fsynced */
    int active_fd;        /* the active durable segment, or -1 */
    int *retired;         /* fds of sealed segments to sync once more, then close */
    size_t retired_count, retired_cap;
    uint64_t dir_requested, dir_done; /* generations of directory changes */
    uint64_t fsyncs;
    int error; /* first fsync errno */
    bool stop;
};

struct store {
    struct ev_loop *loop;
    char *dir;
    int lock_fd;
    uint32_t segment_bytes;
    struct area msgs, paging;
    struct sync_state sync;
    ev_async async;
    ev_prepare prepare;
    bool watchers_started;
    bool holding_loop;
    bool recovered;
    bool recovering;
    int failed;       /* errno of the first durable write or fsync failure */
    int paging_error; /* errno of the first paging write failure */
    bool failure_reported;

    uint64_t appended_seq, durable_seq;
    /* Loop: since when written records have waited for an fsync without progress (0: none
     * waits); store_sync_stalled_ms(). */
    uint64_t sync_waiting_since_ms;
    uint64_t records, bytes_written, carried;
    size_t dying; /* segments in SEG_DELETING or SEG_UNLINKED */

    struct segment *readers[READ_FDS];
    unsigned reader_hand;

    struct segment **doomed; /* sealed segments whose live_refs reached 0 */
    size_t doomed_count, doomed_cap;
    size_t kept; /* segments kept (struct segment's kept) */
    bool deleting;

    void (*durable_cb)(void *ctx, uint64_t durable_seq);
    void *durable_ctx;
    void (*failure_cb)(void *ctx, int err);
    void *failure_ctx;
    const struct store_tap *tap; /* store_set_tap(), or NULL */
    void *tap_ctx;
};

/* ---- Shared between the files (each is described where it is defined) ------------------ */

/* store.c */
bool store_rec_type_ok(uint8_t type);
bool store_message_decode(struct wire_bytes rec, struct store_msg *out, struct wire_reader *ids);

/* segment.c */
void seg_path(const struct area *a, uint32_t number, char *out, size_t out_size);
struct segment *seg_area_find(const struct area *a, uint32_t number);
struct segment *seg_area_push(struct area *a, uint32_t number);
void seg_area_remove(struct store *st, struct area *a, struct segment *s);
int seg_read_fd(struct store *st, struct area *a, struct segment *s);
void seg_area_flush(struct store *st, struct area *a);
/* store_resume(): writes the records a failed write left buffered; 0 or -errno. */
int seg_area_retry(struct store *st, struct area *a);
int seg_area_seal(struct store *st, struct area *a);
uint8_t *seg_area_reserve(struct store *st, struct area *a, size_t body_len, struct store_loc *loc);
uint64_t seg_area_commit(struct store *st, struct area *a, uint8_t *body, size_t body_len);
void seg_maybe_delete(struct store *st, struct segment *s);
void seg_unlink(struct store *st, struct segment *s);
void seg_process_doomed(struct store *st);
/* Segment number removed is gone (its unlink durable): the kept segments pointing at it
 * are looked at again. */
void seg_release_kept(struct store *st, uint32_t removed);
/* The tap's truncate and unlink events, for recovery (no-ops without a tap). */
void seg_tap_truncated(struct store *st, uint32_t number, uint64_t size);
void seg_tap_unlinked(struct store *st, uint32_t number);

/* sync.c */
void store_update_hold(struct store *st);
void store_fail(struct store *st, int err, const char *what, const char *path);
void *store_sync_main(void *arg);
void store_on_synced(struct ev_loop *loop, ev_async *w, int revents);
void store_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents);

#endif
