#include "src/store/store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/store/recfile.h"

#define SEG_MAGIC   "WRNSEG\r\n"
#define SEG_VERSION 1
#define SEG_HEADER  RECFILE_FILE_HEADER_BYTES

/* The largest record body: above RabbitMQ's largest max_message_size (512 MiB) with room for
 * the header and names, well below what a u32 length can say. */
#define MAX_RECORD_BODY (1u << 30)

#define WBUF_FLUSH_BYTES  (1u << 20) /* write(2) the buffer once it holds this much */
#define WBUF_KEEP_BYTES   (4u << 20) /* a larger buffer (a big message) is freed after use */
#define READ_FDS          16         /* read descriptors kept open for sealed segments */
#define MIN_SEGMENT_BYTES 256

enum rec_type {
    REC_MESSAGE = 1,
    REC_ACK = 2,
    REC_RETURN = 3,
    REC_DELIVERED = 4,
    REC_QUEUE_DELETE = 5,
};

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
    uint64_t records, bytes_written, carried;
    size_t dying; /* segments in SEG_DELETING or SEG_UNLINKED */

    struct segment *readers[READ_FDS];
    unsigned reader_hand;

    struct segment **doomed; /* sealed segments whose live_refs reached 0 */
    size_t doomed_count, doomed_cap;
    bool deleting;

    void (*durable_cb)(void *ctx, uint64_t durable_seq);
    void *durable_ctx;
    void (*failure_cb)(void *ctx, int err);
    void *failure_ctx;
};

/* ---- Small helpers ---------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void seg_path(const struct area *a, uint32_t number, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/%08" PRIu32 ".seg", a->path, number);
}

/* mkdir(2), and an fsync of the parent when the directory is new, so that its name
 * survives a power loss like the files created in it later. */
static int mkdir_durable(const char *path)
{
    char *parent;
    char *slash;
    int rc;

    if (mkdir(path, 0750) < 0)
        return errno == EEXIST ? 0 : -errno;
    parent = xstrdup(path);
    slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    rc = recfile_fsync_dir(slash != NULL ? parent : ".");
    free(parent);
    return rc;
}

/* mkdir -p: every missing component is created. */
static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;

    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if ((rc = mkdir_durable(p)) < 0)
                break;
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return rc;
}

static bool rec_type_ok(uint8_t type)
{
    return type >= REC_MESSAGE && type <= REC_QUEUE_DELETE;
}

static bool pos_before(uint32_t seg_a, uint32_t off_a, uint32_t seg_b, uint32_t off_b)
{
    return seg_a < seg_b || (seg_a == seg_b && off_a < off_b);
}

/* ---- Segments of an area ---------------------------------------------------------------- */

static struct segment *area_find(const struct area *a, uint32_t number)
{
    size_t lo = 0, hi = a->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->segs[mid]->number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->count && a->segs[lo]->number == number ? a->segs[lo] : NULL;
}

static struct segment *area_push(struct area *a, uint32_t number)
{
    struct segment *s = xcalloc(1, sizeof(*s));

    assert(a->count == 0 || a->segs[a->count - 1]->number < number);
    s->number = number;
    s->fd = -1;
    if (a->count == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->segs = xrealloc(a->segs, a->cap * sizeof(*a->segs));
    }
    a->segs[a->count++] = s;
    return s;
}

static void reader_forget(struct store *st, struct segment *s)
{
    for (unsigned i = 0; i < READ_FDS; i++) {
        if (st->readers[i] == s)
            st->readers[i] = NULL;
    }
}

/* Removes s from its area and frees it (its file is already gone or being abandoned). */
static void area_remove(struct store *st, struct area *a, struct segment *s)
{
    size_t i = 0;

    while (i < a->count && a->segs[i] != s)
        i++;
    assert(i < a->count);
    memmove(&a->segs[i], &a->segs[i + 1], (a->count - i - 1) * sizeof(*a->segs));
    a->count--;
    reader_forget(st, s);
    if (s->fd >= 0)
        close(s->fd);
    if (s->state != SEG_LIVE)
        st->dying--;
    free(s);
}

/* A descriptor to read s: the active segment's own, or one from a small cache. */
static int seg_read_fd(struct store *st, struct area *a, struct segment *s)
{
    char path[4096];
    struct segment *old;
    int fd;

    if (s->fd >= 0)
        return s->fd;
    seg_path(a, s->number, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    old = st->readers[st->reader_hand];
    if (old != NULL) {
        close(old->fd);
        old->fd = -1;
    }
    st->readers[st->reader_hand] = s;
    st->reader_hand = (st->reader_hand + 1) % READ_FDS;
    s->fd = fd;
    return fd;
}

/* ---- Failure ---------------------------------------------------------------------------- */

static void update_hold(struct store *st)
{
    bool want = st->failed == 0 && st->appended_seq > st->durable_seq;

    if (!st->watchers_started)
        return;
    if (want && !st->holding_loop) {
        ev_ref(st->loop);
        st->holding_loop = true;
    } else if (!want && st->holding_loop) {
        ev_unref(st->loop);
        st->holding_loop = false;
    }
}

/* The disk failed us: nothing more can be promised durable. The callback runs from the
 * async watcher, never inside the append that failed. */
static void store_fail(struct store *st, int err, const char *what, const char *path)
{
    if (st->failed != 0)
        return;
    st->failed = err;
    log_error(NULL,
              "message store: %s %s failed: %s; persistent messages can no longer be "
              "confirmed",
              what, path, strerror(err));
    update_hold(st);
    if (st->watchers_started)
        ev_async_send(st->loop, &st->async);
}

/* ---- Writing ---------------------------------------------------------------------------- */

static void area_flush(struct store *st, struct area *a)
{
    char path[4096];
    int rc;

    if (a->wlen == 0)
        return;
    if (st->failed == 0 || !a->durable) {
        rc = recfile_pwrite_all(a->active->fd, a->wbuf, a->wlen, a->flushed);
        if (rc < 0) {
            seg_path(a, a->active->number, path, sizeof(path));
            if (a->durable) {
                store_fail(st, -rc, "writing", path);
            } else if (st->paging_error == 0) {
                st->paging_error = -rc;
                log_error(NULL, "message store: writing %s failed: %s; paged messages are lost",
                          path, strerror(-rc));
            }
        }
    }
    a->flushed += a->wlen;
    a->wlen = 0;
    if (a->wcap > WBUF_KEEP_BYTES) {
        free(a->wbuf);
        a->wbuf = NULL;
        a->wcap = 0;
    }
    if (a->durable && st->failed == 0) {
        pthread_mutex_lock(&st->sync.mu);
        st->sync.written_seq = st->appended_seq;
        pthread_cond_signal(&st->sync.cond);
        pthread_mutex_unlock(&st->sync.mu);
    }
}

static void wbuf_reserve(struct area *a, size_t n)
{
    if (a->wcap - a->wlen >= n)
        return;
    size_t cap = a->wcap ? a->wcap : 64 * 1024;
    while (cap - a->wlen < n)
        cap *= 2;
    a->wbuf = xrealloc(a->wbuf, cap);
    a->wcap = cap;
}

static void maybe_delete(struct store *st, struct segment *s);
static void process_doomed(struct store *st);

/* The active segment is full: write what is buffered and hand its descriptor to the sync
 * thread, which syncs it once more and closes it. */
static void area_seal(struct store *st, struct area *a)
{
    struct segment *s = a->active;

    area_flush(st, a);
    s->sealed = true;
    a->active = NULL;
    if (a->durable) {
        struct sync_state *y = &st->sync;
        pthread_mutex_lock(&y->mu);
        if (y->retired_count == y->retired_cap) {
            y->retired_cap = y->retired_cap ? y->retired_cap * 2 : 8;
            y->retired = xrealloc(y->retired, y->retired_cap * sizeof(int));
        }
        y->retired[y->retired_count++] = s->fd;
        y->active_fd = -1;
        pthread_cond_signal(&y->cond);
        pthread_mutex_unlock(&y->mu);
        s->fd = -1;
        if (s->live_refs == 0)
            maybe_delete(st, s);
    } else {
        close(s->fd);
        s->fd = -1;
        if (s->live_refs == 0) {
            char path[4096];
            seg_path(a, s->number, path, sizeof(path));
            unlink(path);
            area_remove(st, a, s);
        }
    }
}

static int area_new_segment(struct store *st, struct area *a)
{
    char path[4096];
    struct segment *s;
    int fd;

    assert(a->next_number < UINT32_MAX);
    seg_path(a, a->next_number, path, sizeof(path));
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        int err = errno;
        if (a->durable) {
            store_fail(st, err, "creating", path);
        } else if (st->paging_error == 0) {
            st->paging_error = err;
            log_error(NULL, "message store: creating %s failed: %s", path, strerror(err));
        }
        return -err;
    }
    s = area_push(a, a->next_number++);
    s->fd = fd;
    s->size = SEG_HEADER;
    a->active = s;
    a->flushed = 0;
    wbuf_reserve(a, SEG_HEADER);
    recfile_header_encode(a->wbuf + a->wlen, SEG_MAGIC, SEG_VERSION, s->number);
    a->wlen += SEG_HEADER;
    if (a->durable) {
        /* The new name must be durable before anything in the file can be. */
        pthread_mutex_lock(&st->sync.mu);
        st->sync.active_fd = fd;
        st->sync.dir_requested++;
        pthread_mutex_unlock(&st->sync.mu);
    }
    return 0;
}

/* Room for a record with a body of body_len bytes at the head of area a, in a new segment if
 * the active one is full. Returns where to encode the body (the frame goes before it), or
 * NULL if no segment could be created. */
static uint8_t *area_reserve(struct store *st, struct area *a, size_t body_len,
                             struct store_loc *loc)
{
    size_t rec = RECFILE_FRAME_BYTES + body_len;
    uint8_t *p;

    assert(body_len > 0 && body_len <= MAX_RECORD_BODY);
    if (a->active != NULL && a->active->size > SEG_HEADER &&
        a->active->size + rec > st->segment_bytes)
        area_seal(st, a);
    if (a->active == NULL && area_new_segment(st, a) < 0)
        return NULL;
    assert(a->active != NULL);
    wbuf_reserve(a, rec);
    p = a->wbuf + a->wlen;
    *loc = (struct store_loc){
        .segment = a->active->number,
        .offset = (uint32_t)a->active->size,
        .size = (uint32_t)rec,
        .flags = a->durable ? 0 : STORE_LOC_PAGING,
    };
    a->wlen += rec;
    a->active->size += rec;
    return p + RECFILE_FRAME_BYTES;
}

/* Seals the record whose body was encoded at body and accounts for it. */
static uint64_t area_commit(struct store *st, struct area *a, uint8_t *body, size_t body_len)
{
    recfile_frame_seal(body - RECFILE_FRAME_BYTES, (uint32_t)body_len);
    if (!a->durable) {
        if (a->wlen >= WBUF_FLUSH_BYTES)
            area_flush(st, a);
        return 0;
    }
    /* Counted before a flush, which tells the sync thread how far the writes got. */
    st->records++;
    st->bytes_written += RECFILE_FRAME_BYTES + body_len;
    uint64_t seq = ++st->appended_seq;
    if (a->wlen >= WBUF_FLUSH_BYTES)
        area_flush(st, a);
    update_hold(st);
    /* A segment sealed by this append may be waiting to be deleted. */
    if (st->doomed_count > 0)
        process_doomed(st);
    return seq;
}

static size_t message_body_len(const struct store_msg *m)
{
    assert(m->exchange.len <= 255 && m->routing_key.len <= 255);
    assert(m->queue_count <= STORE_MAX_QUEUES_PER_MESSAGE);
    return 1 + 2 + 4 * (size_t)m->queue_count + 1 + m->exchange.len + 1 + m->routing_key.len + 4 +
           m->header.len + m->body.len;
}

static void message_encode(uint8_t *p, const struct store_msg *m)
{
    *p++ = REC_MESSAGE;
    *p++ = (uint8_t)(m->queue_count >> 8);
    *p++ = (uint8_t)m->queue_count;
    for (uint32_t i = 0; i < m->queue_count; i++, p += 4)
        put_u32(p, m->queue_ids[i]);
    *p++ = (uint8_t)m->exchange.len;
    if (m->exchange.len)
        memcpy(p, m->exchange.ptr, m->exchange.len);
    p += m->exchange.len;
    *p++ = (uint8_t)m->routing_key.len;
    if (m->routing_key.len)
        memcpy(p, m->routing_key.ptr, m->routing_key.len);
    p += m->routing_key.len;
    put_u32(p, (uint32_t)m->header.len);
    p += 4;
    if (m->header.len)
        memcpy(p, m->header.ptr, m->header.len);
    p += m->header.len;
    if (m->body.len)
        memcpy(p, m->body.ptr, m->body.len);
}

uint64_t store_append_message(struct store *st, const struct store_msg *m, struct store_loc *loc)
{
    size_t len = message_body_len(m);
    uint8_t *p;

    assert(st->recovered && m->queue_count > 0);
    if (st->failed != 0 || (p = area_reserve(st, &st->msgs, len, loc)) == NULL)
        return 0;
    message_encode(p, m);
    st->msgs.active->live_refs += m->queue_count;
    return area_commit(st, &st->msgs, p, len);
}

/* An ACK, RETURN, DELIVERED or QUEUE_DELETE record: queue, target position, maybe a count. */
static uint64_t append_control(struct store *st, enum rec_type type, uint32_t queue_id,
                               struct store_loc target, bool with_count, uint32_t count)
{
    size_t len = 1 + 12 + (with_count ? 4 : 0);
    struct store_loc at;
    uint8_t *p;

    assert(st->recovered);
    if (st->failed != 0 || (p = area_reserve(st, &st->msgs, len, &at)) == NULL)
        return 0;
    if (type == REC_QUEUE_DELETE)
        target = at; /* everything before this record */
    p[0] = (uint8_t)type;
    put_u32(p + 1, queue_id);
    put_u32(p + 5, target.segment);
    put_u32(p + 9, target.offset);
    if (with_count)
        put_u32(p + 13, count);
    if (type == REC_QUEUE_DELETE || target.segment != at.segment)
        st->msgs.active->foreign_refs++;
    return area_commit(st, &st->msgs, p, len);
}

static void drop_ref(struct store *st, struct store_loc loc)
{
    struct area *a = (loc.flags & STORE_LOC_PAGING) ? &st->paging : &st->msgs;
    struct segment *s = area_find(a, loc.segment);

    assert(s != NULL && s->live_refs > 0);
    if (--s->live_refs > 0 || !s->sealed)
        return;
    if (a->durable) {
        maybe_delete(st, s);
        process_doomed(st);
    } else {
        char path[4096];
        seg_path(a, s->number, path, sizeof(path));
        unlink(path);
        area_remove(st, a, s);
    }
}

uint64_t store_ack(struct store *st, uint32_t queue_id, struct store_loc loc)
{
    uint64_t seq;

    assert(!(loc.flags & STORE_LOC_PAGING));
    seq = append_control(st, REC_ACK, queue_id, loc, false, 0);
    drop_ref(st, loc);
    return seq;
}

uint64_t store_requeue(struct store *st, uint32_t queue_id, struct store_loc loc,
                       uint32_t deliveries)
{
    assert(!(loc.flags & STORE_LOC_PAGING));
    return append_control(st, REC_RETURN, queue_id, loc, true, deliveries);
}

uint64_t store_delivered(struct store *st, uint32_t queue_id, struct store_loc loc)
{
    assert(!(loc.flags & STORE_LOC_PAGING));
    return append_control(st, REC_DELIVERED, queue_id, loc, false, 0);
}

uint64_t store_queue_deleted(struct store *st, uint32_t queue_id)
{
    return append_control(st, REC_QUEUE_DELETE, queue_id, (struct store_loc){0}, false, 0);
}

void store_release(struct store *st, struct store_loc loc)
{
    drop_ref(st, loc);
}

int store_page_out(struct store *st, const struct store_msg *m, struct store_loc *loc)
{
    size_t len = message_body_len(m);
    uint8_t *p;

    /* After a failed paging write the area is not trusted again until a restart. */
    if (st->paging_error != 0 || (p = area_reserve(st, &st->paging, len, loc)) == NULL)
        return -(st->paging_error ? st->paging_error : EIO);
    message_encode(p, m);
    st->paging.active->live_refs += m->queue_count > 0 ? m->queue_count : 1;
    area_commit(st, &st->paging, p, len);
    return 0;
}

void store_flush(struct store *st)
{
    area_flush(st, &st->msgs);
    area_flush(st, &st->paging);
}

/* ---- Reading ---------------------------------------------------------------------------- */

/* Decodes a MESSAGE body; the byte strings borrow it. */
static bool message_decode(struct wire_bytes rec, struct store_msg *out, struct wire_reader *ids)
{
    struct wire_reader r = wire_reader_init(rec.ptr, rec.len);
    struct wire_bytes skip;
    uint8_t type;
    uint16_t count;

    if (!wire_u8(&r, &type) || type != REC_MESSAGE || !wire_u16(&r, &count) ||
        !wire_sub(&r, 4 * (size_t)count, ids))
        return false;
    *out = (struct store_msg){.queue_count = count};
    if (!wire_shortstr(&r, &out->exchange) || !wire_shortstr(&r, &out->routing_key) ||
        !wire_longstr(&r, &out->header))
        return false;
    (void)wire_bytes(&r, wire_left(&r), &skip);
    out->body = skip;
    return true;
}

int store_read(struct store *st, struct store_loc loc, void *buf, size_t buf_size,
               struct store_msg *out)
{
    struct area *a = (loc.flags & STORE_LOC_PAGING) ? &st->paging : &st->msgs;
    struct segment *s = area_find(a, loc.segment);
    struct wire_bytes body;
    struct wire_reader ids;
    char path[4096];
    int rc;

    if (s == NULL || s->state != SEG_LIVE || loc.offset + (uint64_t)loc.size > s->size)
        return -ENOENT;
    if (buf_size < loc.size || loc.size <= RECFILE_FRAME_BYTES)
        return -EINVAL;
    if (s == a->active && loc.offset + (uint64_t)loc.size > a->flushed) {
        /* Still in the write buffer: no need to force a write. */
        memcpy(buf, a->wbuf + (loc.offset - a->flushed), loc.size);
    } else {
        int fd = seg_read_fd(st, a, s);
        if (fd < 0)
            return fd;
        if ((rc = recfile_pread_all(fd, buf, loc.size, loc.offset)) < 0)
            return rc;
    }
    if (!recfile_frame_check(buf, loc.size, MAX_RECORD_BODY, &body) ||
        RECFILE_FRAME_BYTES + body.len != loc.size || !message_decode(body, out, &ids)) {
        seg_path(a, s->number, path, sizeof(path));
        log_error(NULL, "message store: %s: corrupt record at offset %" PRIu32, path, loc.offset);
        return -EIO;
    }
    return 0;
}

/* ---- Deleting durable segments ---------------------------------------------------------- */

static void maybe_delete(struct store *st, struct segment *s)
{
    if (st->recovering || s->state != SEG_LIVE)
        return;
    if (st->doomed_count == st->doomed_cap) {
        st->doomed_cap = st->doomed_cap ? st->doomed_cap * 2 : 8;
        st->doomed = xrealloc(st->doomed, st->doomed_cap * sizeof(*st->doomed));
    }
    st->doomed[st->doomed_count++] = s;
}

static void seg_unlink(struct store *st, struct segment *s)
{
    char path[4096];

    seg_path(&st->msgs, s->number, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT) {
        log_error(NULL, "message store: removing %s failed: %s", path, strerror(errno));
        return;
    }
    reader_forget(st, s);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (s->state == SEG_LIVE)
        st->dying++;
    s->state = SEG_UNLINKED;
    pthread_mutex_lock(&st->sync.mu);
    s->wait = ++st->sync.dir_requested;
    pthread_cond_signal(&st->sync.cond);
    pthread_mutex_unlock(&st->sync.mu);
}

/* Does a record of dead segment s still say something about a segment that exists? */
static bool still_needed(const struct store *st, const struct segment *s, uint8_t type,
                         uint32_t target_seg)
{
    const struct area *a = &st->msgs;

    if (type == REC_QUEUE_DELETE) {
        for (size_t i = 0; i < a->count && a->segs[i]->number <= target_seg; i++) {
            if (a->segs[i] != s)
                return true;
        }
        return false;
    }
    return target_seg != s->number && area_find(a, target_seg) != NULL;
}

/* Appends again at the head every record of s that still matters. Returns the sequence of
 * the last copy (0 if none was needed), or -1 if s could not be read. */
static int64_t carry_forward(struct store *st, struct segment *s)
{
    struct recfile_reader r;
    struct wire_bytes body;
    uint64_t off, last = 0;
    char path[4096];
    int fd = seg_read_fd(st, &st->msgs, s);
    int64_t rc = 0;

    seg_path(&st->msgs, s->number, path, sizeof(path));
    if (fd < 0) {
        log_error(NULL, "message store: opening %s failed: %s", path, strerror(-fd));
        return -1;
    }
    recfile_reader_init(&r, fd, s->size, SEG_HEADER, MAX_RECORD_BODY);
    for (;;) {
        enum recfile_result res = recfile_next(&r, &off, &body);
        if (res == RECFILE_END)
            break;
        if (res == RECFILE_IO) {
            log_error(NULL, "message store: reading %s failed: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (res == RECFILE_BAD) {
            log_error(NULL, "message store: %s: corrupt record at offset %" PRIu64 " skipped", path,
                      r.pos);
            if (!recfile_resync(&r, rec_type_ok))
                break;
            continue;
        }
        if (body.ptr[0] == REC_MESSAGE || body.len < 13)
            continue;
        uint32_t target = (uint32_t)body.ptr[5] << 24 | (uint32_t)body.ptr[6] << 16 |
                          (uint32_t)body.ptr[7] << 8 | body.ptr[8];
        if (!still_needed(st, s, body.ptr[0], target))
            continue;
        struct store_loc at;
        uint8_t *p = area_reserve(st, &st->msgs, body.len, &at);
        if (p == NULL) {
            rc = -1;
            break;
        }
        memcpy(p, body.ptr, body.len);
        if (body.ptr[0] == REC_QUEUE_DELETE || target != at.segment)
            st->msgs.active->foreign_refs++;
        last = area_commit(st, &st->msgs, p, body.len);
        st->carried++;
    }
    recfile_reader_free(&r);
    return rc < 0 ? rc : (int64_t)last;
}

static void process_doomed(struct store *st)
{
    if (st->deleting || st->recovering)
        return;
    st->deleting = true;
    /* Carrying may seal the active segment and doom it too: the list grows while we go. */
    for (size_t i = 0; i < st->doomed_count && st->failed == 0; i++) {
        struct segment *s = st->doomed[i];
        int64_t last;

        if (s->state != SEG_LIVE || s->live_refs > 0 || !s->sealed)
            continue;
        if (s->foreign_refs == 0) {
            seg_unlink(st, s);
            continue;
        }
        last = carry_forward(st, s);
        if (last < 0)
            continue; /* logged; the segment stays until the next start */
        if (last == 0) {
            seg_unlink(st, s);
        } else {
            s->state = SEG_DELETING;
            s->wait = (uint64_t)last;
            st->dying++;
        }
    }
    st->doomed_count = 0;
    st->deleting = false;
}

/* ---- The sync thread -------------------------------------------------------------------- */

static void add_ms(struct timespec *ts, uint64_t ms)
{
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *sync_main(void *arg)
{
    struct store *st = arg;
    struct sync_state *y = &st->sync;
    struct timespec last = {0, 0};
    bool synced_once = false;
    int *fds = NULL;
    size_t fds_cap = 0;

    pthread_mutex_lock(&y->mu);
    for (;;) {
        bool work = y->written_seq > y->synced_seq || y->retired_count > 0 ||
                    y->dir_requested > y->dir_done;

        if (y->stop)
            break;
        if (!work || y->error != 0) {
            pthread_cond_wait(&y->cond, &y->mu);
            continue;
        }
        if (y->interval_ms > 0 && synced_once) {
            /* Group more appends into one fsync: wait out the interval since the last one. */
            struct timespec due = last, now;
            add_ms(&due, y->interval_ms);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec < due.tv_sec ||
                (now.tv_sec == due.tv_sec && now.tv_nsec < due.tv_nsec)) {
                pthread_cond_timedwait(&y->cond, &y->mu, &due);
                continue;
            }
        }

        uint64_t target = y->written_seq;
        uint64_t dir_gen = y->dir_requested;
        bool dir = dir_gen > y->dir_done;
        int active = y->active_fd;
        size_t nfds = y->retired_count;
        if (fds_cap < nfds) {
            fds_cap = nfds;
            fds = xrealloc(fds, fds_cap * sizeof(int));
        }
        if (nfds)
            memcpy(fds, y->retired, nfds * sizeof(int));
        y->retired_count = 0;
        pthread_mutex_unlock(&y->mu);

        int err = 0;
        uint64_t calls = 0;
        /* Sealed segments first: their records come before the active segment's. */
        for (size_t i = 0; i < nfds; i++, calls++) {
            if (fdatasync(fds[i]) < 0 && err == 0)
                err = errno;
            close(fds[i]);
        }
        if (active >= 0) {
            calls++;
            if (fdatasync(active) < 0 && err == 0)
                err = errno;
        }
        if (dir && fsync(y->dirfd) < 0 && err == 0)
            err = errno;

        clock_gettime(CLOCK_MONOTONIC, &last);
        synced_once = true;
        pthread_mutex_lock(&y->mu);
        y->fsyncs += calls;
        if (err != 0) {
            y->error = err;
        } else {
            if (target > y->synced_seq)
                y->synced_seq = target;
            y->dir_done = dir_gen;
        }
        pthread_mutex_unlock(&y->mu);
        ev_async_send(st->loop, &st->async);
        pthread_mutex_lock(&y->mu);
    }
    pthread_mutex_unlock(&y->mu);
    free(fds);
    return NULL;
}

/* Back on the loop thread after a sync: segments waiting for it go, then the broker hears
 * how far durability got. */
static void on_synced(struct ev_loop *loop, ev_async *w, int revents)
{
    struct store *st = container_of(w, struct store, async);
    uint64_t synced, dir_done;
    int err;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&st->sync.mu);
    synced = st->sync.synced_seq;
    dir_done = st->sync.dir_done;
    err = st->sync.error;
    pthread_mutex_unlock(&st->sync.mu);

    if (err != 0)
        store_fail(st, err, "fsync of", st->msgs.path);
    if (st->dying > 0) {
        for (size_t i = 0; i < st->msgs.count;) {
            struct segment *s = st->msgs.segs[i];
            if (s->state == SEG_DELETING && s->wait <= synced) {
                seg_unlink(st, s);
            } else if (s->state == SEG_UNLINKED && s->wait <= dir_done) {
                area_remove(st, &st->msgs, s);
                continue;
            }
            i++;
        }
    }
    if (synced > st->durable_seq) {
        st->durable_seq = synced;
        update_hold(st);
        if (st->durable_cb != NULL)
            st->durable_cb(st->durable_ctx, synced);
    }
    if (st->failed != 0 && !st->failure_reported) {
        st->failure_reported = true;
        if (st->failure_cb != NULL)
            st->failure_cb(st->failure_ctx, st->failed);
    }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    store_flush(container_of(w, struct store, prepare));
}

void store_on_durable(struct store *st, void (*cb)(void *ctx, uint64_t durable_seq), void *ctx)
{
    st->durable_cb = cb;
    st->durable_ctx = ctx;
}

void store_on_failure(struct store *st, void (*cb)(void *ctx, int err), void *ctx)
{
    st->failure_cb = cb;
    st->failure_ctx = ctx;
}

/* ---- Opening ---------------------------------------------------------------------------- */

static int take_lock(struct store *st, char *err, size_t err_size)
{
    char *path = path_join(st->dir, "LOCK");
    char pid[32];
    int n, fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);
            pid[got > 0 ? got : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            snprintf(err, err_size, "data directory %s is in use by another warrend (pid %s)",
                     st->dir, pid[0] ? pid : "unknown");
        } else {
            snprintf(err, err_size, "cannot lock %s: %s", path, strerror(errno));
        }
        close(fd);
        free(path);
        return -1;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || recfile_pwrite_all(fd, pid, (size_t)n, 0) < 0)
        log_warn(NULL, "message store: cannot write the pid into %s", path);
    free(path);
    st->lock_fd = fd;
    return 0;
}

/* Segment numbers of the files NNNNNNNN.seg in a's directory, ascending. */
static int list_segments(struct area *a, uint32_t **out, size_t *count)
{
    DIR *d = opendir(a->path);
    struct dirent *e;
    size_t n = 0, cap = 0;
    uint32_t *nums = NULL;

    if (d == NULL)
        return -errno;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        uint32_t v = 0;
        bool ok = len == 12 && strcmp(name + 8, ".seg") == 0;
        for (size_t i = 0; ok && i < 8; i++) {
            ok = name[i] >= '0' && name[i] <= '9';
            v = v * 10 + (uint32_t)(name[i] - '0');
        }
        if (!ok || v == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            nums = xrealloc(nums, cap * sizeof(*nums));
        }
        nums[n++] = v;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) { /* insertion sort: directories list few segments */
        uint32_t v = nums[i];
        size_t j = i;
        for (; j > 0 && nums[j - 1] > v; j--)
            nums[j] = nums[j - 1];
        nums[j] = v;
    }
    *out = nums;
    *count = n;
    return 0;
}

static int open_area(struct store *st, struct area *a, const char *name, bool durable, char *err,
                     size_t err_size)
{
    uint32_t *nums = NULL;
    size_t n = 0;
    char path[4096];
    int rc;

    a->durable = durable;
    a->path = path_join(st->dir, name);
    a->next_number = 1;
    if ((rc = mkdir_durable(a->path)) < 0) {
        snprintf(err, err_size, "cannot create %s: %s", a->path, strerror(-rc));
        return -1;
    }
    if ((rc = list_segments(a, &nums, &n)) < 0) {
        snprintf(err, err_size, "cannot list %s: %s", a->path, strerror(-rc));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        seg_path(a, nums[i], path, sizeof(path));
        if (!durable) {
            /* Paged messages do not outlive the broker that paged them. */
            unlink(path);
            continue;
        }
        struct stat sb;
        if (stat(path, &sb) < 0) {
            snprintf(err, err_size, "cannot stat %s: %s", path, strerror(errno));
            free(nums);
            return -1;
        }
        struct segment *s = area_push(a, nums[i]);
        s->sealed = true;
        s->size = (uint64_t)sb.st_size;
        a->next_number = nums[i] + 1;
    }
    free(nums);
    return 0;
}

struct store *store_open(struct ev_loop *loop, const char *dir, const struct store_options *opts,
                         char *err, size_t err_size)
{
    struct store *st = xcalloc(1, sizeof(*st));
    pthread_condattr_t attr;
    sigset_t all, old;
    int rc;

    st->loop = loop;
    st->dir = xstrdup(dir);
    st->lock_fd = -1;
    st->sync.dirfd = -1;
    st->sync.active_fd = -1;
    st->segment_bytes =
        opts && opts->segment_bytes ? opts->segment_bytes : STORE_DEFAULT_SEGMENT_BYTES;
    if (st->segment_bytes < MIN_SEGMENT_BYTES)
        st->segment_bytes = MIN_SEGMENT_BYTES;
    st->sync.interval_ms = opts ? opts->sync_interval_ms : 0;

    if ((rc = mkdir_p(dir)) < 0) {
        snprintf(err, err_size, "cannot create data directory %s: %s", dir, strerror(-rc));
        goto fail;
    }
    if (take_lock(st, err, err_size) < 0)
        goto fail;
    if (open_area(st, &st->msgs, "msgs", true, err, err_size) < 0 ||
        open_area(st, &st->paging, "paging", false, err, err_size) < 0)
        goto fail;
    st->sync.dirfd = open(st->msgs.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->sync.dirfd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", st->msgs.path, strerror(errno));
        goto fail;
    }

    pthread_mutex_init(&st->sync.mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&st->sync.cond, &attr);
    pthread_condattr_destroy(&attr);

    ev_async_init(&st->async, on_synced);
    ev_async_start(loop, &st->async);
    ev_unref(loop); /* only pending appends keep the loop alive (update_hold) */
    ev_prepare_init(&st->prepare, on_prepare);
    ev_prepare_start(loop, &st->prepare);
    ev_unref(loop);
    st->watchers_started = true;

    /* The thread takes no signals: they stay with the loop thread's handlers. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&st->sync.thread, NULL, sync_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the store's sync thread: %s", strerror(rc));
        goto fail;
    }
    st->sync.started = true;
    return st;
fail:
    store_close(st);
    return NULL;
}

/* ---- Recovery --------------------------------------------------------------------------- */

enum {
    REF_DEAD = 1,
    REF_DELIVERED = 2,
};

struct rmsg {
    uint32_t offset, size;
    size_t first_ref;
    uint32_t ref_count;
};

struct rref {
    uint32_t queue_id;
    uint32_t deliveries;
    uint8_t flags;
};

struct rdel {
    uint32_t queue_id, segment, offset;
};

struct recovery {
    struct store *st;
    struct rmsg *msgs;
    size_t msg_count, msg_cap;
    struct rref *refs;
    size_t ref_count, ref_cap;
    struct rdel *dels;
    size_t del_count, del_cap;
};

static struct rmsg *recovery_find(struct recovery *rv, uint32_t segment, uint32_t offset)
{
    struct segment *s = area_find(&rv->st->msgs, segment);
    size_t lo, hi;

    if (s == NULL || s->rec_count == 0)
        return NULL;
    assert(rv->msgs != NULL);
    lo = s->rec_first;
    hi = s->rec_first + s->rec_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv->msgs[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->rec_first + s->rec_count && rv->msgs[lo].offset == offset ? &rv->msgs[lo] : NULL;
}

static struct rref *recovery_ref(struct recovery *rv, uint32_t segment, uint32_t offset,
                                 uint32_t queue_id)
{
    struct rmsg *m = recovery_find(rv, segment, offset);

    if (m == NULL)
        return NULL;
    for (uint32_t i = 0; i < m->ref_count; i++) {
        if (rv->refs[m->first_ref + i].queue_id == queue_id)
            return &rv->refs[m->first_ref + i];
    }
    return NULL;
}

/* Applies one valid record found at (s, offset); false if its payload does not parse. */
static bool recovery_apply(struct recovery *rv, struct segment *s, uint64_t offset,
                           struct wire_bytes body)
{
    struct wire_reader r = wire_reader_init(body.ptr, body.len);
    uint32_t queue_id, seg, off, count = 0;
    uint8_t type;
    struct rref *ref;

    if (!wire_u8(&r, &type))
        return false;
    if (type == REC_MESSAGE) {
        struct store_msg m;
        struct wire_reader ids;
        if (!message_decode(body, &m, &ids))
            return false;
        if (rv->msg_count == rv->msg_cap) {
            rv->msg_cap = rv->msg_cap ? rv->msg_cap * 2 : 1024;
            rv->msgs = xrealloc(rv->msgs, rv->msg_cap * sizeof(*rv->msgs));
        }
        if (rv->ref_count + m.queue_count > rv->ref_cap) {
            while (rv->ref_count + m.queue_count > rv->ref_cap)
                rv->ref_cap = rv->ref_cap ? rv->ref_cap * 2 : 1024;
            rv->refs = xrealloc(rv->refs, rv->ref_cap * sizeof(*rv->refs));
        }
        rv->msgs[rv->msg_count++] = (struct rmsg){
            .offset = (uint32_t)offset,
            .size = (uint32_t)(RECFILE_FRAME_BYTES + body.len),
            .first_ref = rv->ref_count,
            .ref_count = m.queue_count,
        };
        for (uint32_t i = 0; i < m.queue_count; i++) {
            uint32_t q = 0;
            (void)wire_u32(&ids, &q);
            rv->refs[rv->ref_count++] = (struct rref){.queue_id = q};
        }
        s->rec_count++;
        return true;
    }
    if (!wire_u32(&r, &queue_id) || !wire_u32(&r, &seg) || !wire_u32(&r, &off))
        return false;
    if (type == REC_RETURN && !wire_u32(&r, &count))
        return false;
    if (wire_left(&r) != 0)
        return false;
    if (type == REC_QUEUE_DELETE || seg != s->number)
        s->foreign_refs++;
    switch (type) {
    case REC_ACK:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL)
            ref->flags |= REF_DEAD;
        break;
    case REC_RETURN:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL) {
            ref->flags |= REF_DELIVERED;
            if (count > ref->deliveries)
                ref->deliveries = count;
        }
        break;
    case REC_DELIVERED:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL)
            ref->flags |= REF_DELIVERED;
        break;
    case REC_QUEUE_DELETE:
        if (rv->del_count == rv->del_cap) {
            rv->del_cap = rv->del_cap ? rv->del_cap * 2 : 16;
            rv->dels = xrealloc(rv->dels, rv->del_cap * sizeof(*rv->dels));
        }
        rv->dels[rv->del_count++] = (struct rdel){queue_id, seg, off};
        break;
    default:
        return false;
    }
    return true;
}

/* Sets a segment whose header is missing or wrong aside: the last one was being created
 * when the broker stopped, so it is removed; an earlier one is renamed for an operator. */
static void recovery_drop_segment(struct store *st, struct segment *s, bool last)
{
    char path[4096], aside[4200];

    seg_path(&st->msgs, s->number, path, sizeof(path));
    if (last && s->size < SEG_HEADER) {
        log_warn(NULL, "message store: %s: incomplete segment header (%" PRIu64 " bytes), removed",
                 path, s->size);
        unlink(path);
    } else {
        snprintf(aside, sizeof(aside), "%s.corrupt", path);
        log_error(NULL, "message store: %s: not a segment of this store, moved to %s", path, aside);
        if (rename(path, aside) < 0)
            log_error(NULL, "message store: renaming %s failed: %s", path, strerror(errno));
    }
    area_remove(st, &st->msgs, s);
}

/* Reads one segment into the recovery table. Returns 0, 1 if the segment was dropped, or
 * -errno. */
static int recovery_scan(struct recovery *rv, struct segment *s, bool last)
{
    struct store *st = rv->st;
    uint8_t hdr[SEG_HEADER];
    struct recfile_reader r;
    struct wire_bytes body;
    uint64_t off;
    uint32_t tag;
    char path[4096];
    int fd, rc = 0;

    seg_path(&st->msgs, s->number, path, sizeof(path));
    fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        log_error(NULL, "message store: opening %s failed: %s", path, strerror(errno));
        return rc;
    }
    if (s->size < SEG_HEADER || recfile_pread_all(fd, hdr, SEG_HEADER, 0) < 0 ||
        !recfile_header_check(hdr, SEG_MAGIC, SEG_VERSION, &tag) || tag != s->number) {
        close(fd);
        recovery_drop_segment(st, s, last);
        return 1;
    }
    s->rec_first = rv->msg_count;
    s->rec_count = 0;
    recfile_reader_init(&r, fd, s->size, SEG_HEADER, MAX_RECORD_BODY);
    for (;;) {
        enum recfile_result res = recfile_next(&r, &off, &body);
        if (res == RECFILE_END)
            break;
        if (res == RECFILE_IO) {
            rc = -errno;
            log_error(NULL, "message store: reading %s failed: %s", path, strerror(errno));
            break;
        }
        if (res == RECFILE_OK) {
            if (!recovery_apply(rv, s, off, body))
                log_error(NULL, "message store: %s: malformed record at offset %" PRIu64 " skipped",
                          path, off);
            continue;
        }
        uint64_t bad = r.pos;
        if (recfile_resync(&r, rec_type_ok)) {
            log_error(NULL,
                      "message store: %s: corrupt record at offset %" PRIu64 "; skipped %" PRIu64
                      " bytes to the next valid record",
                      path, bad, r.pos - bad);
            continue;
        }
        if (last) {
            /* A torn append: the broker stopped in the middle of a write, and nothing in it
             * was confirmed. Cut it so the file ends at a record boundary again. */
            log_warn(NULL,
                     "message store: %s: torn or corrupt record at offset %" PRIu64 "; cut %" PRIu64
                     " bytes off the end",
                     path, bad, s->size - bad);
            if (ftruncate(fd, (off_t)bad) < 0 || fdatasync(fd) < 0) {
                rc = -errno;
                log_error(NULL, "message store: truncating %s failed: %s", path, strerror(errno));
            }
            s->size = bad;
        } else {
            log_error(NULL,
                      "message store: %s: corrupt data from offset %" PRIu64 " to the end (%" PRIu64
                      " bytes) skipped",
                      path, bad, s->size - bad);
        }
        break;
    }
    recfile_reader_free(&r);
    close(fd);
    return rc;
}

static int rdel_cmp(const void *a, const void *b)
{
    const struct rdel *x = a, *y = b;

    if (x->queue_id != y->queue_id)
        return x->queue_id < y->queue_id ? -1 : 1;
    if (x->segment != y->segment)
        return x->segment < y->segment ? 1 : -1; /* latest position first */
    return x->offset < y->offset ? 1 : (x->offset > y->offset ? -1 : 0);
}

/* The latest QUEUE_DELETE position of queue_id, if any (dels sorted by rdel_cmp). */
static const struct rdel *recovery_deleted(const struct recovery *rv, uint32_t queue_id)
{
    size_t lo = 0, hi = rv->del_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv->dels[mid].queue_id < queue_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rv->del_count && rv->dels[lo].queue_id == queue_id ? &rv->dels[lo] : NULL;
}

int store_recover(struct store *st, store_recover_fn cb, void *ctx)
{
    struct recovery rv = {.st = st};
    int rc = 0;

    assert(!st->recovered);
    st->recovering = true;
    for (size_t i = 0; i < st->msgs.count;) {
        struct segment *s = st->msgs.segs[i];
        int r = recovery_scan(&rv, s, i + 1 == st->msgs.count);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r == 0)
            i++;
    }
    if (rv.del_count > 1)
        qsort(rv.dels, rv.del_count, sizeof(*rv.dels), rdel_cmp);

    /* First the counts, so that releases from the callbacks find them complete. */
    for (size_t i = 0; i < st->msgs.count; i++) {
        struct segment *s = st->msgs.segs[i];
        assert(s->rec_count == 0 || rv.msgs != NULL);
        for (size_t k = s->rec_first; k < s->rec_first + s->rec_count; k++) {
            struct rmsg *m = &rv.msgs[k];
            for (uint32_t j = 0; j < m->ref_count; j++) {
                struct rref *ref = &rv.refs[m->first_ref + j];
                const struct rdel *d = recovery_deleted(&rv, ref->queue_id);
                if (d != NULL && pos_before(s->number, m->offset, d->segment, d->offset))
                    ref->flags |= REF_DEAD;
                if (!(ref->flags & REF_DEAD))
                    s->live_refs++;
            }
        }
    }
    for (size_t i = 0; i < st->msgs.count; i++) {
        struct segment *s = st->msgs.segs[i];
        assert(s->rec_count == 0 || rv.msgs != NULL);
        for (size_t k = s->rec_first; k < s->rec_first + s->rec_count; k++) {
            struct rmsg *m = &rv.msgs[k];
            for (uint32_t j = 0; j < m->ref_count; j++) {
                struct rref *ref = &rv.refs[m->first_ref + j];
                if (ref->flags & REF_DEAD)
                    continue;
                struct store_recovered out = {
                    .queue_id = ref->queue_id,
                    .deliveries = ref->deliveries,
                    .delivered = (ref->flags & REF_DELIVERED) != 0,
                    .loc = {.segment = s->number, .offset = m->offset, .size = m->size},
                };
                if (cb != NULL)
                    cb(ctx, &out);
            }
        }
    }
out:
    free(rv.msgs);
    free(rv.refs);
    free(rv.dels);
    st->recovering = false;
    st->recovered = true;
    if (rc == 0) {
        for (size_t i = 0; i < st->msgs.count; i++) {
            if (st->msgs.segs[i]->live_refs == 0)
                maybe_delete(st, st->msgs.segs[i]);
        }
        process_doomed(st);
    } else {
        st->failed = -rc; /* do not delete or append over what could not be read */
    }
    return rc;
}

/* ---- Statistics and closing ------------------------------------------------------------- */

void store_stats(const struct store *st, struct store_stats *out)
{
    *out = (struct store_stats){
        .appended_seq = st->appended_seq,
        .durable_seq = st->durable_seq,
        .records = st->records,
        .bytes_written = st->bytes_written,
        .carried = st->carried,
    };
    pthread_mutex_lock((pthread_mutex_t *)&st->sync.mu);
    out->fsyncs = st->sync.fsyncs;
    pthread_mutex_unlock((pthread_mutex_t *)&st->sync.mu);
    for (size_t i = 0; i < st->msgs.count; i++) {
        if (st->msgs.segs[i]->state != SEG_UNLINKED) {
            out->segments++;
            out->disk_bytes += st->msgs.segs[i]->size;
        }
    }
    out->paging_segments = st->paging.count;
    for (size_t i = 0; i < st->paging.count; i++)
        out->paging_bytes += st->paging.segs[i]->size;
}

static void area_free(struct store *st, struct area *a)
{
    char path[4096];

    while (a->count > 0) {
        struct segment *s = a->segs[a->count - 1];
        if (!a->durable) {
            seg_path(a, s->number, path, sizeof(path));
            unlink(path);
        }
        area_remove(st, a, s);
    }
    free(a->segs);
    free(a->wbuf);
    free(a->path);
}

void store_close(struct store *st)
{
    struct sync_state *y;
    bool dir_changed = false;

    if (st == NULL)
        return;
    y = &st->sync;
    if (st->sync.started) {
        store_flush(st);
        pthread_mutex_lock(&y->mu);
        y->stop = true;
        pthread_cond_signal(&y->cond);
        pthread_mutex_unlock(&y->mu);
        pthread_join(y->thread, NULL);

        /* The thread is gone: the last sync is ours. */
        for (size_t i = 0; i < y->retired_count; i++) {
            if (fdatasync(y->retired[i]) < 0 && st->failed == 0)
                store_fail(st, errno, "fsync of", st->msgs.path);
            close(y->retired[i]);
        }
        y->retired_count = 0;
        if (st->msgs.active != NULL && fdatasync(st->msgs.active->fd) < 0 && st->failed == 0)
            store_fail(st, errno, "fsync of", st->msgs.path);
        if (st->failed == 0) {
            st->durable_seq = st->appended_seq;
            /* Carried copies are durable now: their old segments can go. */
            for (size_t i = 0; i < st->msgs.count; i++) {
                struct segment *s = st->msgs.segs[i];
                if (s->state == SEG_DELETING)
                    seg_unlink(st, s);
                if (s->state == SEG_UNLINKED)
                    dir_changed = true;
            }
        }
        if (dir_changed || y->dir_requested > y->dir_done)
            fsync(y->dirfd);
    }
    if (st->watchers_started) {
        ev_ref(st->loop);
        ev_async_stop(st->loop, &st->async);
        ev_ref(st->loop);
        ev_prepare_stop(st->loop, &st->prepare);
        if (st->holding_loop)
            ev_unref(st->loop);
    }
    if (st->sync.started) {
        pthread_mutex_destroy(&y->mu);
        pthread_cond_destroy(&y->cond);
    }
    area_free(st, &st->msgs);
    area_free(st, &st->paging);
    free(y->retired);
    free(st->doomed);
    if (y->dirfd >= 0)
        close(y->dirfd);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->dir);
    free(st);
}
