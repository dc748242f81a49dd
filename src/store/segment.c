/* The store's segment files (their layout is in src/store/store.h): finding and creating the
 * segments of an area, buffering records and writing them to the active segment, sealing a
 * full one (its descriptor goes to the sync thread), read descriptors, and deleting durable
 * segments that hold nothing live, once the records that still matter are carried forward. */
#include "src/store/store_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/store/recfile.h"

#define WBUF_FLUSH_BYTES (1u << 20) /* write(2) the buffer once it holds this much */
#define WBUF_KEEP_BYTES  (4u << 20) /* a larger buffer (a big message) is freed after use */
/* While the store has failed, small records (acks, returns, first deliveries) still go into
 * the write buffer, up to this much, to be written when it resumes (store_resume). */
#define FAILED_WBUF_BYTES (16u << 20)

/* ---- Segments of an area ---------------------------------------------------------------- */

void seg_path(const struct area *a, uint32_t number, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/%08" PRIu32 ".seg", a->path, number);
}

struct segment *seg_area_find(const struct area *a, uint32_t number)
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

struct segment *seg_area_push(struct area *a, uint32_t number)
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
void seg_area_remove(struct store *st, struct area *a, struct segment *s)
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
int seg_read_fd(struct store *st, struct area *a, struct segment *s)
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

/* ---- The tap ------------------------------------------------------------------------------ */

void store_set_tap(struct store *st, const struct store_tap *tap, void *ctx)
{
    assert(tap == NULL || (tap->segment_created && tap->segment_appended &&
                           tap->segment_truncated && tap->segment_unlinked));
    st->tap = tap;
    st->tap_ctx = ctx;
}

/* The write buffer of a durable area has just reached its file: a new segment's header is
 * reported as its creation, the rest as an append. */
static void tap_written(struct store *st, struct area *a)
{
    const uint8_t *p = a->wbuf;
    size_t n = a->wlen;
    uint64_t off = a->flushed;

    if (st->tap == NULL || !a->durable)
        return;
    if (off == 0) {
        assert(n >= SEG_HEADER);
        st->tap->segment_created(st->tap_ctx, a->active->number, p, SEG_HEADER);
        p += SEG_HEADER;
        n -= SEG_HEADER;
        off = SEG_HEADER;
    }
    if (n > 0)
        st->tap->segment_appended(st->tap_ctx, a->active->number, off, p, n, st->appended_seq);
}

void seg_tap_truncated(struct store *st, uint32_t number, uint64_t size)
{
    if (st->tap != NULL)
        st->tap->segment_truncated(st->tap_ctx, number, size);
}

void seg_tap_unlinked(struct store *st, uint32_t number)
{
    if (st->tap != NULL)
        st->tap->segment_unlinked(st->tap_ctx, number);
}

/* ---- Writing ---------------------------------------------------------------------------- */

/* The buffered records are in the active segment's file now. */
static void area_written(struct store *st, struct area *a)
{
    a->flushed += a->wlen;
    a->wlen = 0;
    if (a->wcap > WBUF_KEEP_BYTES) {
        free(a->wbuf);
        a->wbuf = NULL;
        a->wcap = 0;
    }
    if (a->durable) {
        if (st->sync_waiting_since_ms == 0 && st->appended_seq > st->durable_seq)
            st->sync_waiting_since_ms = now_ms();
        pthread_mutex_lock(&st->sync.mu);
        st->sync.written_seq = st->appended_seq;
        pthread_cond_signal(&st->sync.cond);
        pthread_mutex_unlock(&st->sync.mu);
    }
}

void seg_area_flush(struct store *st, struct area *a)
{
    char path[4096];
    int rc;

    /* A durable write that failed (a full disk) keeps its records in the buffer, where
     * store_read() still finds them, until store_resume() writes them. */
    if (a->wlen == 0 || (a->durable && st->failed != 0))
        return;
    rc = recfile_pwrite_all(a->active->fd, a->wbuf, a->wlen, a->flushed);
    if (rc < 0) {
        seg_path(a, a->active->number, path, sizeof(path));
        if (a->durable) {
            store_fail(st, -rc, "writing", path);
            return;
        }
        if (st->paging_error == 0) {
            st->paging_error = -rc;
            log_error(NULL, "message store: writing %s failed: %s; paged messages are lost",
                      path, strerror(-rc));
        }
    } else {
        tap_written(st, a);
    }
    area_written(st, a);
}

int seg_area_retry(struct store *st, struct area *a)
{
    int rc;

    if (a->active == NULL || a->wlen == 0)
        return 0;
    rc = recfile_pwrite_all(a->active->fd, a->wbuf, a->wlen, a->flushed);
    if (rc < 0)
        return rc;
    tap_written(st, a);
    area_written(st, a);
    return 0;
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

/* The active segment is full: write what is buffered and hand its descriptor to the sync
 * thread, which syncs it once more and closes it. -1 if the write failed: the segment stays
 * active with its records buffered. */
int seg_area_seal(struct store *st, struct area *a)
{
    struct segment *s = a->active;

    seg_area_flush(st, a);
    if (a->wlen > 0)
        return -1;
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
            seg_maybe_delete(st, s);
    } else {
        close(s->fd);
        s->fd = -1;
        if (s->live_refs == 0) {
            char path[4096];
            seg_path(a, s->number, path, sizeof(path));
            unlink(path);
            seg_area_remove(st, a, s);
        }
    }
    return 0;
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
    s = seg_area_push(a, a->next_number++);
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

int store_roll_segment(struct store *st, uint32_t min_number, uint32_t *number)
{
    struct area *a = &st->msgs;
    int rc;

    assert(st->recovered);
    if (st->failed != 0)
        return -st->failed;
    if (a->active != NULL && seg_area_seal(st, a) != 0)
        return -(st->failed != 0 ? st->failed : EIO);
    if (a->next_number < min_number)
        a->next_number = min_number;
    if ((rc = area_new_segment(st, a)) < 0)
        return rc;
    seg_area_flush(st, a);
    if (st->failed != 0)
        return -st->failed;
    *number = a->active->number;
    return 0;
}

/* Room for a record with a body of body_len bytes at the head of area a, in a new segment if
 * the active one is full. Returns where to encode the body (the frame goes before it), or
 * NULL if no segment could be created. */
uint8_t *seg_area_reserve(struct store *st, struct area *a, size_t body_len, struct store_loc *loc)
{
    size_t rec = RECFILE_FRAME_BYTES + body_len;
    uint8_t *p;

    assert(body_len > 0 && body_len <= MAX_RECORD_BODY);
    /* Failed: only into the active segment's buffer, and only so much. */
    if (a->durable && st->failed != 0 &&
        (a->active == NULL || a->active->size + rec > st->segment_bytes ||
         a->wlen + rec > FAILED_WBUF_BYTES))
        return NULL;
    if (a->active != NULL && a->active->size > SEG_HEADER &&
        a->active->size + rec > st->segment_bytes && seg_area_seal(st, a) != 0)
        return NULL;
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
uint64_t seg_area_commit(struct store *st, struct area *a, uint8_t *body, size_t body_len)
{
    recfile_frame_seal(body - RECFILE_FRAME_BYTES, (uint32_t)body_len);
    if (!a->durable) {
        if (a->wlen >= WBUF_FLUSH_BYTES)
            seg_area_flush(st, a);
        return 0;
    }
    /* Counted before a flush, which tells the sync thread how far the writes got. */
    st->records++;
    st->bytes_written += RECFILE_FRAME_BYTES + body_len;
    uint64_t seq = ++st->appended_seq;
    if (a->wlen >= WBUF_FLUSH_BYTES)
        seg_area_flush(st, a);
    store_update_hold(st);
    /* A segment sealed by this append may be waiting to be deleted. */
    if (st->doomed_count > 0)
        seg_process_doomed(st);
    return seq;
}

/* ---- Deleting durable segments ---------------------------------------------------------- */

void seg_maybe_delete(struct store *st, struct segment *s)
{
    if (st->recovering || s->state != SEG_LIVE)
        return;
    if (st->doomed_count == st->doomed_cap) {
        st->doomed_cap = st->doomed_cap ? st->doomed_cap * 2 : 8;
        st->doomed = xrealloc(st->doomed, st->doomed_cap * sizeof(*st->doomed));
    }
    st->doomed[st->doomed_count++] = s;
}

void seg_unlink(struct store *st, struct segment *s)
{
    char path[4096];

    seg_path(&st->msgs, s->number, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT) {
        log_error(NULL, "message store: removing %s failed: %s", path, strerror(errno));
        return;
    }
    seg_tap_unlinked(st, s->number);
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
    return target_seg != s->number && seg_area_find(a, target_seg) != NULL;
}

/* The records of s that still matter: with carry, appended again at the head (returns the
 * sequence of the last copy, 0 if none was needed); without, only counted (returns 0). Either
 * way *bytes is their size and [*lo, *hi] the segments they point at. -1 if s could not be
 * read. */
static int64_t walk_needed(struct store *st, struct segment *s, bool carry, uint64_t *bytes,
                           uint32_t *lo, uint32_t *hi)
{
    struct recfile_reader r;
    struct wire_bytes body;
    uint64_t off, last = 0;
    char path[4096];
    int fd = seg_read_fd(st, &st->msgs, s);
    int64_t rc = 0;

    *bytes = 0;
    *lo = UINT32_MAX;
    *hi = 0;
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
            if (!recfile_resync(&r, store_rec_type_ok))
                break;
            continue;
        }
        if (rec_is_message(body.ptr[0]) || body.len < 13)
            continue;
        uint32_t target = (uint32_t)body.ptr[5] << 24 | (uint32_t)body.ptr[6] << 16 |
                          (uint32_t)body.ptr[7] << 8 | body.ptr[8];
        if (!still_needed(st, s, body.ptr[0], target))
            continue;
        /* A QUEUE_DELETE is needed while any older segment exists. */
        uint32_t points_at = body.ptr[0] == REC_QUEUE_DELETE ? s->number : target;
        *bytes += RECFILE_FRAME_BYTES + body.len;
        *lo = points_at < *lo ? points_at : *lo;
        *hi = points_at > *hi ? points_at : *hi;
        if (!carry)
            continue;
        struct store_loc at;
        uint8_t *p = seg_area_reserve(st, &st->msgs, body.len, &at);
        if (p == NULL) {
            rc = -1;
            break;
        }
        memcpy(p, body.ptr, body.len);
        if (body.ptr[0] == REC_QUEUE_DELETE || target != at.segment)
            st->msgs.active->foreign_refs++;
        last = seg_area_commit(st, &st->msgs, p, body.len);
        st->carried++;
    }
    recfile_reader_free(&r);
    return rc < 0 ? rc : (int64_t)last;
}

/* Carrying s forward frees the space of what in it is dead. When most of s is still needed
 * (the acks of messages that live on in other queues, say), carrying would only write the
 * same records into the next segment, which would fill with them and be carried in turn,
 * without end: s is kept instead, until a segment it points at goes (seg_release_kept). */
static bool worth_carrying(struct store *st, struct segment *s)
{
    uint64_t bytes;
    uint32_t lo, hi;

    if (walk_needed(st, s, false, &bytes, &lo, &hi) < 0)
        return true; /* carrying will log it */
    if (bytes * 2 <= s->size)
        return true;
    s->kept = true;
    s->kept_lo = lo;
    s->kept_hi = hi;
    st->kept++;
    return false;
}

void seg_release_kept(struct store *st, uint32_t removed)
{
    for (size_t i = 0; i < st->msgs.count && st->kept > 0; i++) {
        struct segment *s = st->msgs.segs[i];
        if (s->kept && removed >= s->kept_lo && removed <= s->kept_hi) {
            s->kept = false;
            st->kept--;
            seg_maybe_delete(st, s);
        }
    }
}

void seg_process_doomed(struct store *st)
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
        if (!worth_carrying(st, s))
            continue;
        uint64_t bytes;
        uint32_t lo, hi;
        last = walk_needed(st, s, true, &bytes, &lo, &hi);
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
