/* The log of a stream queue (src/store/stream_log.h): segment files, appends, the shared
 * group commit, recovery of the last segment, retention and readers. */
#include "src/store/stream_log.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/store/crc32c.h"
#include "src/store/recfile.h"

#define STREAM_MAGIC    "WRNSTRM\n"
#define STREAM_VERSION  1
#define REC_STREAM_MSG  1
#define MAX_BODY        (1u << 30)
#define WBUF_FLUSH      (1u << 20)
#define READ_WINDOW     (64u << 10)

/* The sparse index (stream_log.h, "Index"). */
#define INDEX_MAGIC       "WRNSIDX\n"
#define INDEX_VERSION     1
#define INDEX_ENTRY_BYTES 36
#define INDEX_INTERVAL    4096u
#define INDEX_END         1u /* flags: the entry after the last record */
#define INDEX_HAS_TS      2u /* flags: ts_before is the greatest timestamp before the entry */
#define INDEX_OUT_FLUSH   (64u << 10)

/* ---- The shared group commit ------------------------------------------------------------ */

struct stream_sync {
    struct ev_loop *loop;
    ev_prepare prepare;
    ev_async async;
    void (*durable_cb)(void *ctx, uint64_t durable_seq);
    void (*failure_cb)(void *ctx, int err);
    void *ctx;
    struct stream_log *dirty; /* logs with buffered records (loop side) */
    uint64_t appended_seq;    /* loop */
    uint64_t durable_seq;     /* loop: last reported */
    int failed;               /* loop: first write errno */
    bool failure_reported;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int *fds; /* dup()ed descriptors to fdatasync (thread closes them) */
    size_t fd_count, fd_cap;
    uint64_t written_seq; /* appends up to here are in fds' files */
    uint64_t synced_seq;
    int sync_error;
    bool stop;
};

/* What is known of the timestamps in a segment. */
enum seg_ts {
    TS_UNKNOWN, /* a sealed segment whose index is not usable (yet) */
    TS_NONE,    /* the segment has no readable record */
    TS_KNOWN,   /* max_ts_ms is the greatest timestamp of its readable records */
};

struct sseg {
    uint64_t first_offset;
    uint64_t first_ts_ms; /* 0 while empty */
    uint64_t size;        /* bytes, buffered ones included */
    int fd;
    enum seg_ts ts;
    uint64_t max_ts_ms;
    bool index_ok;     /* its .idx was checked or written, and covers the segment */
    bool index_failed; /* rebuilding its .idx failed: seeks scan the segment */
};

/* One index entry, decoded. */
struct idx_entry {
    uint64_t offset;
    uint64_t pos;
    uint64_t ts_before;
    uint32_t record_crc;
    uint32_t flags;
};

/* An index being written: the last segment's as records are appended, or one rebuilt. */
struct idx_out {
    int fd;          /* -1: not being written */
    const char *dir; /* of the log (borrowed) */
    uint64_t seg_first;
    uint64_t count; /* entries in the file */
    uint8_t *buf;   /* encoded entries not yet in the file */
    size_t len, cap;
    uint64_t last_pos; /* position of the newest entry's record; 0: no entry yet */
    bool failed;       /* a write failed (the file is not used) */
};

struct stream_log {
    struct stream_sync *sync;
    char *dir;
    struct sseg *segs; /* ascending; the last is appended to */
    size_t count, cap;
    uint64_t next_offset;
    uint64_t total_bytes;
    uint64_t max_bytes, max_age_ms, segment_bytes;
    uint8_t *wbuf; /* records not yet written to the last segment */
    size_t wlen, wcap;
    uint64_t flushed;     /* bytes of the last segment in its file */
    bool is_dirty;
    struct stream_log *next_dirty;
    bool failed;
    struct idx_out idx; /* the last segment's index */
};

/* ---- The index: entries and their writer ------------------------------------------------ */

static void idx_path(const char *dir, uint64_t first, char *out, size_t size)
{
    snprintf(out, size, "%s/%020" PRIu64 ".idx", dir, first);
}

/* The checksum of an entry: its first 28 bytes, after the first offset of its segment. */
static uint32_t index_crc(uint64_t seg_first, const uint8_t *entry)
{
    uint8_t seg[8];
    struct wire_writer w = wire_writer_init(seg, sizeof seg);

    wire_put_u64(&w, seg_first);
    return crc32c_update(crc32c_update(0, seg, sizeof seg), entry, INDEX_ENTRY_BYTES - 4);
}

static void index_encode(uint8_t out[INDEX_ENTRY_BYTES], uint64_t seg_first,
                         const struct idx_entry *e)
{
    struct wire_writer w = wire_writer_init(out, INDEX_ENTRY_BYTES);

    wire_put_u64(&w, e->offset);
    wire_put_u64(&w, e->pos);
    wire_put_u64(&w, e->ts_before);
    wire_put_u32(&w, e->record_crc);
    wire_put_u32(&w, e->flags);
    wire_put_u32(&w, index_crc(seg_first, out));
}

/* False if the bytes are not an entry of the segment starting at seg_first. */
static bool index_decode(const uint8_t in[INDEX_ENTRY_BYTES], uint64_t seg_first,
                         struct idx_entry *e)
{
    struct wire_reader r = {.pos = in, .end = in + INDEX_ENTRY_BYTES};
    uint32_t crc;

    if (!wire_u64(&r, &e->offset) || !wire_u64(&r, &e->pos) || !wire_u64(&r, &e->ts_before) ||
        !wire_u32(&r, &e->record_crc) || !wire_u32(&r, &e->flags) || !wire_u32(&r, &crc))
        return false;
    return crc == index_crc(seg_first, in) && (e->flags & ~(INDEX_END | INDEX_HAS_TS)) == 0 &&
           e->offset >= seg_first && e->pos >= RECFILE_FILE_HEADER_BYTES;
}

/* Entry i of the index file fd of the segment starting at seg_first. */
static bool index_read(int fd, uint64_t seg_first, uint64_t i, struct idx_entry *e)
{
    uint8_t buf[INDEX_ENTRY_BYTES];

    if (i > (UINT64_MAX - RECFILE_FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES - 1)
        return false;
    return recfile_pread_all(fd, buf, sizeof buf,
                             RECFILE_FILE_HEADER_BYTES + i * INDEX_ENTRY_BYTES) == 0 &&
           index_decode(buf, seg_first, e);
}

/* The index is a hint: a failure to write it is logged, and seeks in its segment scan. */
static void idx_out_fail(struct idx_out *o, int err)
{
    char path[4200];

    idx_path(o->dir, o->seg_first, path, sizeof path);
    log_warn(NULL, "stream log: cannot write the index %s: %s; seeks in its segment scan it",
             path, strerror(err));
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    o->len = 0;
    o->failed = true;
}

/* Starts the index of the segment starting at seg_first, replacing any file of that name. */
static void idx_out_open(struct idx_out *o, const char *dir, uint64_t seg_first)
{
    char path[4200];
    uint8_t hdr[RECFILE_FILE_HEADER_BYTES];
    int rc;

    o->dir = dir;
    o->seg_first = seg_first;
    o->count = 0;
    o->len = 0;
    o->last_pos = 0;
    o->failed = false;
    idx_path(dir, seg_first, path, sizeof path);
    if ((o->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        idx_out_fail(o, errno);
        return;
    }
    recfile_header_encode(hdr, INDEX_MAGIC, INDEX_VERSION, 0);
    if ((rc = recfile_pwrite_all(o->fd, hdr, sizeof hdr, 0)) != 0)
        idx_out_fail(o, -rc);
}

/* Writes the buffered entries after those in the file. */
static void idx_out_flush(struct idx_out *o)
{
    int rc;

    if (o->fd < 0 || o->len == 0)
        return;
    rc = recfile_pwrite_all(o->fd, o->buf, o->len,
                            RECFILE_FILE_HEADER_BYTES + o->count * INDEX_ENTRY_BYTES);
    if (rc != 0) {
        idx_out_fail(o, -rc);
        return;
    }
    o->count += o->len / INDEX_ENTRY_BYTES;
    o->len = 0;
}

static void idx_out_add(struct idx_out *o, const struct idx_entry *e)
{
    if (o->fd < 0)
        return;
    if (o->len + INDEX_ENTRY_BYTES > o->cap) {
        o->cap = o->cap ? o->cap * 2 : 64 * INDEX_ENTRY_BYTES;
        o->buf = xrealloc(o->buf, o->cap);
    }
    index_encode(o->buf + o->len, o->seg_first, e);
    o->len += INDEX_ENTRY_BYTES;
    if (o->len >= INDEX_OUT_FLUSH)
        idx_out_flush(o);
}

/* Closes the file (what is buffered is dropped: flush first) and frees the buffer. */
static void idx_out_close(struct idx_out *o)
{
    if (o->fd >= 0)
        close(o->fd);
    free(o->buf);
    *o = (struct idx_out){.fd = -1};
}

/* The checksum of a record, from its frame (rec: where the record starts). */
static uint32_t record_crc(const uint8_t *rec)
{
    return (uint32_t)rec[4] << 24 | (uint32_t)rec[5] << 16 | (uint32_t)rec[6] << 8 | rec[7];
}

/* The record (offset, pos, checksum crc, ts_ms) of segment s follows those noted before: it
 * gets an entry if it is the first or starts an interval after the newest entry's record. */
static void index_note(struct idx_out *o, struct sseg *s, uint64_t offset, uint64_t pos,
                       uint32_t crc, uint64_t ts_ms)
{
    if (o->last_pos == 0 || pos - o->last_pos >= INDEX_INTERVAL) {
        struct idx_entry e = {
            .offset = offset,
            .pos = pos,
            .record_crc = crc,
            .ts_before = s->ts == TS_KNOWN ? s->max_ts_ms : 0,
            .flags = s->ts == TS_KNOWN ? INDEX_HAS_TS : 0,
        };
        idx_out_add(o, &e);
        o->last_pos = pos;
    }
    if (s->ts != TS_KNOWN || ts_ms > s->max_ts_ms)
        s->max_ts_ms = ts_ms;
    s->ts = TS_KNOWN;
}

/* Closes the index of segment s, which takes no more records (next_offset follows its last):
 * the END entry, then the file. */
static void index_seal(struct idx_out *o, struct sseg *s, uint64_t next_offset)
{
    struct idx_entry e = {
        .offset = next_offset,
        .pos = s->size,
        .ts_before = s->ts == TS_KNOWN ? s->max_ts_ms : 0,
        .flags = INDEX_END | (s->ts == TS_KNOWN ? INDEX_HAS_TS : 0),
    };

    idx_out_add(o, &e);
    idx_out_flush(o);
    s->index_ok = !o->failed;
    s->index_failed = o->failed;
    idx_out_close(o);
}

static void sync_queue_fd(struct stream_sync *y, int fd)
{
    int d = dup(fd);

    if (d < 0) {
        if (y->failed == 0)
            y->failed = errno;
        return;
    }
    pthread_mutex_lock(&y->mu);
    if (y->fd_count == y->fd_cap) {
        y->fd_cap = y->fd_cap ? y->fd_cap * 2 : 16;
        y->fds = xrealloc(y->fds, y->fd_cap * sizeof *y->fds);
    }
    y->fds[y->fd_count++] = d;
    pthread_mutex_unlock(&y->mu);
}

static void report_failure(struct stream_sync *y, int err, const char *what, const char *path)
{
    if (y->failed == 0) {
        y->failed = err;
        log_error(NULL, "stream log: %s %s failed: %s; stream publishes are refused", what,
                  path, strerror(err));
        ev_async_send(y->loop, &y->async);
    }
}

/* Writes l's buffer to its last segment. */
static void log_flush(struct stream_log *l)
{
    struct sseg *s;
    int rc;

    if (l->wlen == 0 || l->failed)
        return;
    s = &l->segs[l->count - 1];
    rc = recfile_pwrite_all(s->fd, l->wbuf, l->wlen, l->flushed);
    if (rc != 0) {
        l->failed = true;
        report_failure(l->sync, -rc, "writing to", l->dir);
        return;
    }
    l->flushed += l->wlen;
    l->wlen = 0;
    sync_queue_fd(l->sync, s->fd);
    idx_out_flush(&l->idx);
    if (l->idx.failed) {
        s->index_ok = false;
        s->index_failed = true;
    }
}

static void sync_flush_all(struct stream_sync *y)
{
    struct stream_log *l;

    while ((l = y->dirty) != NULL) {
        y->dirty = l->next_dirty;
        l->is_dirty = false;
        log_flush(l);
    }
    pthread_mutex_lock(&y->mu);
    if (y->failed == 0)
        y->written_seq = y->appended_seq;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->mu);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    sync_flush_all(w->data);
}

static void on_synced(struct ev_loop *loop, ev_async *w, int revents)
{
    struct stream_sync *y = w->data;
    uint64_t synced;
    int err;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&y->mu);
    synced = y->synced_seq;
    err = y->sync_error;
    pthread_mutex_unlock(&y->mu);
    if (err != 0 && y->failed == 0) {
        y->failed = err;
        log_error(NULL, "stream log: fdatasync failed: %s; stream publishes are refused",
                  strerror(err));
    }
    if (y->failed != 0) {
        if (!y->failure_reported && y->failure_cb != NULL)
            y->failure_cb(y->ctx, y->failed);
        y->failure_reported = true;
        return;
    }
    if (synced > y->durable_seq) {
        y->durable_seq = synced;
        if (y->durable_cb != NULL)
            y->durable_cb(y->ctx, synced);
    }
}

static void *sync_main(void *arg)
{
    struct stream_sync *y = arg;

    pthread_mutex_lock(&y->mu);
    for (;;) {
        int *fds;
        size_t n;
        uint64_t target;
        int err = 0;

        while (!y->stop && y->written_seq <= y->synced_seq && y->fd_count == 0)
            pthread_cond_wait(&y->cond, &y->mu);
        if (y->stop && y->written_seq <= y->synced_seq && y->fd_count == 0)
            break;
        fds = y->fds;
        n = y->fd_count;
        target = y->written_seq;
        y->fds = NULL;
        y->fd_count = y->fd_cap = 0;
        pthread_mutex_unlock(&y->mu);
        for (size_t i = 0; i < n; i++) {
            if (fdatasync(fds[i]) != 0 && err == 0)
                err = errno;
            close(fds[i]);
        }
        free(fds);
        pthread_mutex_lock(&y->mu);
        if (err != 0 && y->sync_error == 0)
            y->sync_error = err;
        if (y->sync_error == 0 && target > y->synced_seq)
            y->synced_seq = target;
        ev_async_send(y->loop, &y->async);
    }
    pthread_mutex_unlock(&y->mu);
    return NULL;
}

struct stream_sync *stream_sync_new(struct ev_loop *loop,
                                    void (*durable_cb)(void *ctx, uint64_t durable_seq),
                                    void (*failure_cb)(void *ctx, int err), void *ctx)
{
    struct stream_sync *y = xcalloc(1, sizeof *y);

    y->loop = loop;
    y->durable_cb = durable_cb;
    y->failure_cb = failure_cb;
    y->ctx = ctx;
    pthread_mutex_init(&y->mu, NULL);
    pthread_cond_init(&y->cond, NULL);
    ev_prepare_init(&y->prepare, on_prepare);
    y->prepare.data = y;
    ev_prepare_start(loop, &y->prepare);
    ev_unref(loop);
    ev_async_init(&y->async, on_synced);
    y->async.data = y;
    ev_async_start(loop, &y->async);
    ev_unref(loop);
    if (pthread_create(&y->thread, NULL, sync_main, y) != 0) {
        log_error(NULL, "stream log: cannot start the sync thread");
        abort();
    }
    return y;
}

void stream_sync_free(struct stream_sync *y)
{
    if (y == NULL)
        return;
    sync_flush_all(y);
    pthread_mutex_lock(&y->mu);
    y->stop = true;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->thread, NULL);
    ev_ref(y->loop);
    ev_prepare_stop(y->loop, &y->prepare);
    ev_ref(y->loop);
    ev_async_stop(y->loop, &y->async);
    for (size_t i = 0; i < y->fd_count; i++)
        close(y->fds[i]);
    free(y->fds);
    pthread_mutex_destroy(&y->mu);
    pthread_cond_destroy(&y->cond);
    free(y);
}

/* ---- Segments ---------------------------------------------------------------------------- */

static void seg_path(const struct stream_log *l, uint64_t first, char *out, size_t size)
{
    snprintf(out, size, "%s/%020" PRIu64 ".seg", l->dir, first);
}

static struct sseg *seg_push(struct stream_log *l, uint64_t first, int fd, uint64_t size)
{
    struct sseg *s;

    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->segs = xrealloc(l->segs, l->cap * sizeof *l->segs);
    }
    s = &l->segs[l->count++];
    *s = (struct sseg){.first_offset = first, .size = size, .fd = fd};
    l->total_bytes += size;
    return s;
}

/* Starts a new last segment whose first record will be offset first. 0 or -errno. */
static int seg_create(struct stream_log *l, uint64_t first)
{
    char path[4200];
    uint8_t hdr[RECFILE_FILE_HEADER_BYTES];
    struct sseg *s;
    int fd, rc;

    seg_path(l, first, path, sizeof path);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    recfile_header_encode(hdr, STREAM_MAGIC, STREAM_VERSION, 0);
    if ((rc = recfile_pwrite_all(fd, hdr, sizeof hdr, 0)) != 0 ||
        (rc = recfile_fsync_dir(l->dir)) != 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    s = seg_push(l, first, fd, sizeof hdr);
    s->ts = TS_NONE;
    l->flushed = sizeof hdr;
    sync_queue_fd(l->sync, fd);
    idx_out_close(&l->idx);
    idx_out_open(&l->idx, l->dir, first);
    s->index_ok = !l->idx.failed;
    s->index_failed = l->idx.failed;
    return 0;
}

static void seg_drop_first(struct stream_log *l)
{
    char path[4200];
    struct sseg *s = &l->segs[0];

    seg_path(l, s->first_offset, path, sizeof path);
    if (unlink(path) != 0)
        log_warn(NULL, "stream log: cannot remove %s: %s", path, strerror(errno));
    if (l->count == 1)
        idx_out_close(&l->idx);
    /* After the segment: an index without its segment is removed at the next open. */
    idx_path(l->dir, s->first_offset, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn(NULL, "stream log: cannot remove %s: %s", path, strerror(errno));
    close(s->fd);
    l->total_bytes -= s->size;
    memmove(l->segs, l->segs + 1, (l->count - 1) * sizeof *l->segs);
    l->count--;
}

static struct sseg *seg_find(struct stream_log *l, uint64_t first)
{
    size_t lo = 0, hi = l->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->segs[mid].first_offset < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->count && l->segs[lo].first_offset == first ? &l->segs[lo] : NULL;
}

/* ---- Records ------------------------------------------------------------------------------ */

static bool decode_record(struct wire_bytes body, struct stream_record *out)
{
    struct wire_reader r = {.pos = body.ptr, .end = body.ptr + body.len};
    uint8_t type, has_filter;
    uint32_t header_len;

    if (!wire_u8(&r, &type) || type != REC_STREAM_MSG || !wire_u64(&r, &out->offset) ||
        !wire_u64(&r, &out->timestamp_ms) || !wire_shortstr(&r, &out->exchange) ||
        !wire_shortstr(&r, &out->routing_key) || !wire_u8(&r, &has_filter) ||
        !wire_shortstr(&r, &out->filter_value) || !wire_u32(&r, &header_len) ||
        !wire_bytes(&r, header_len, &out->header))
        return false;
    out->has_filter = has_filter != 0;
    return wire_bytes(&r, wire_left(&r), &out->body);
}

/* Reads segment s as a reader does, from its first record up to file position size: valid
 * records with consecutive offsets from its first offset, up to the first that is not one.
 * Notes each in o (NULL: none) and sets s's timestamps. *end: the position after the last
 * valid record, *next: the offset after it. 0 or -errno (reading failed). */
static int seg_scan(struct sseg *s, uint64_t size, struct idx_out *o, uint64_t *end,
                    uint64_t *next)
{
    struct recfile_reader rd;
    struct wire_bytes body;
    uint64_t at, expect = s->first_offset;
    enum recfile_result res;
    int rc = 0;

    s->ts = TS_NONE;
    s->max_ts_ms = 0;
    recfile_reader_init(&rd, s->fd, size, RECFILE_FILE_HEADER_BYTES, MAX_BODY);
    *end = RECFILE_FILE_HEADER_BYTES;
    while ((res = recfile_next(&rd, &at, &body)) == RECFILE_OK) {
        struct stream_record rec;
        if (!decode_record(body, &rec) || rec.offset != expect)
            break;
        if (expect == s->first_offset)
            s->first_ts_ms = rec.timestamp_ms;
        if (o != NULL)
            /* The frame is in the reader's buffer, just before the body. */
            index_note(o, s, rec.offset, at, record_crc(body.ptr - RECFILE_FRAME_BYTES),
                       rec.timestamp_ms);
        else if (s->ts != TS_KNOWN || rec.timestamp_ms > s->max_ts_ms) {
            s->max_ts_ms = rec.timestamp_ms;
            s->ts = TS_KNOWN;
        }
        expect++;
        *end = rd.pos;
    }
    if (res == RECFILE_IO)
        rc = errno != 0 ? -errno : -EIO;
    recfile_reader_free(&rd);
    *next = expect;
    return rc;
}

/* Scans the last segment s: the offset after its last complete record, cutting a torn or
 * corrupt tail off; rebuilds its index on the way. 0 or -errno. */
static int recover_last(struct stream_log *l, struct sseg *s, uint64_t *next)
{
    uint64_t end;
    int rc;

    idx_out_open(&l->idx, l->dir, s->first_offset);
    if ((rc = seg_scan(s, s->size, &l->idx, &end, next)) != 0)
        return rc;
    if (end < s->size) {
        log_warn(NULL, "stream log: %s/%020" PRIu64 ".seg: torn or corrupt record at %" PRIu64
                       ", the log is cut there",
                 l->dir, s->first_offset, end);
        if (ftruncate(s->fd, (off_t)end) != 0)
            rc = -errno;
        l->total_bytes -= s->size - end;
        s->size = end;
    }
    idx_out_flush(&l->idx);
    s->index_ok = !l->idx.failed;
    s->index_failed = l->idx.failed;
    return rc;
}

/* A sealed segment's index is used if it ends with an END entry at the segment's size
 * (written when the next segment started), which also gives the segment's timestamps. */
static void index_check(struct stream_log *l, struct sseg *s)
{
    char path[4200];
    uint8_t hdr[RECFILE_FILE_HEADER_BYTES];
    struct idx_entry e;
    struct stat sb;
    uint32_t tag;
    int fd;

    idx_path(l->dir, s->first_offset, path, sizeof path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    if (fstat(fd, &sb) == 0 && sb.st_size >= RECFILE_FILE_HEADER_BYTES + INDEX_ENTRY_BYTES &&
        (sb.st_size - RECFILE_FILE_HEADER_BYTES) % INDEX_ENTRY_BYTES == 0 &&
        recfile_pread_all(fd, hdr, sizeof hdr, 0) == 0 &&
        recfile_header_check(hdr, INDEX_MAGIC, INDEX_VERSION, &tag) &&
        index_read(fd, s->first_offset,
                   (uint64_t)(sb.st_size - RECFILE_FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES - 1,
                   &e) &&
        (e.flags & INDEX_END) != 0 && e.pos == s->size) {
        s->index_ok = true;
        s->ts = (e.flags & INDEX_HAS_TS) != 0 ? TS_KNOWN : TS_NONE;
        s->max_ts_ms = e.ts_before;
    }
    close(fd);
}

/* Removes the index files whose segment is gone (a crash between the two unlinks). */
static void remove_orphan_indexes(struct stream_log *l, DIR *d)
{
    struct dirent *de;

    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        char path[4200], *end;
        uint64_t first;

        if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".idx") != 0)
            continue;
        first = strtoull(de->d_name, &end, 10);
        if (end != de->d_name + 20 || seg_find(l, first) != NULL)
            continue;
        snprintf(path, sizeof path, "%s/%s", l->dir, de->d_name);
        unlink(path);
    }
}

/* The timestamp of the first record of a sealed segment. */
static void read_first_ts(struct sseg *s)
{
    uint8_t buf[RECFILE_FRAME_BYTES + 1 + 16];

    if (s->size >= RECFILE_FILE_HEADER_BYTES + sizeof buf &&
        recfile_pread_all(s->fd, buf, sizeof buf, RECFILE_FILE_HEADER_BYTES) == 0) {
        struct wire_reader r = {.pos = buf + RECFILE_FRAME_BYTES + 1 + 8, .end = buf + sizeof buf};
        wire_u64(&r, &s->first_ts_ms);
    }
}

static int by_first(const void *a, const void *b)
{
    const struct sseg *x = a, *y = b;
    return (x->first_offset > y->first_offset) - (x->first_offset < y->first_offset);
}

struct stream_log *stream_log_open(struct stream_sync *y, const char *dir, char *err,
                                   size_t err_size)
{
    struct stream_log *l = xcalloc(1, sizeof *l);
    DIR *d;
    struct dirent *de;
    int rc = 0;

    l->sync = y;
    l->dir = xstrdup(dir);
    l->idx.fd = -1;
    l->segment_bytes = STREAM_DEFAULT_SEGMENT_BYTES;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((d = opendir(dir)) == NULL) {
        snprintf(err, err_size, "cannot read %s: %s", dir, strerror(errno));
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4200], *end;
        uint64_t first;
        uint8_t hdr[RECFILE_FILE_HEADER_BYTES];
        uint32_t tag;
        struct stat sb;
        int fd;

        if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg") != 0)
            continue;
        first = strtoull(de->d_name, &end, 10);
        if (end != de->d_name + 20)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
            snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            closedir(d);
            goto fail;
        }
        if (sb.st_size < (off_t)sizeof hdr || recfile_pread_all(fd, hdr, sizeof hdr, 0) != 0 ||
            !recfile_header_check(hdr, STREAM_MAGIC, STREAM_VERSION, &tag)) {
            /* A segment created but never given its header (a crash right then) holds
             * nothing: remove it. Anything else with a wrong header is not ours to touch. */
            if (sb.st_size < (off_t)sizeof hdr) {
                log_warn(NULL, "stream log: removing %s, which has no complete header", path);
                close(fd);
                unlink(path);
                continue;
            }
            snprintf(err, err_size, "%s is not a stream segment", path);
            close(fd);
            closedir(d);
            goto fail;
        }
        seg_push(l, first, fd, (uint64_t)sb.st_size);
    }
    if (l->count > 1) /* qsort wants a base even for no element */
        qsort(l->segs, l->count, sizeof *l->segs, by_first);
    remove_orphan_indexes(l, d);
    closedir(d);
    for (size_t i = 0; i + 1 < l->count; i++) {
        read_first_ts(&l->segs[i]);
        index_check(l, &l->segs[i]);
    }
    if (l->count == 0) {
        if ((rc = seg_create(l, 0)) != 0) {
            snprintf(err, err_size, "cannot create a segment in %s: %s", dir, strerror(-rc));
            goto fail;
        }
        l->next_offset = 0;
    } else {
        struct sseg *s = &l->segs[l->count - 1];
        if ((rc = recover_last(l, s, &l->next_offset)) != 0) {
            snprintf(err, err_size, "cannot read %s: %s", dir, strerror(-rc));
            goto fail;
        }
        l->flushed = s->size;
    }
    return l;
fail:
    stream_log_close(l);
    return NULL;
}

static void undirty(struct stream_log *l)
{
    struct stream_log **pp;

    if (!l->is_dirty)
        return;
    for (pp = &l->sync->dirty; *pp != NULL; pp = &(*pp)->next_dirty) {
        if (*pp == l) {
            *pp = l->next_dirty;
            break;
        }
    }
    l->is_dirty = false;
}

void stream_log_close(struct stream_log *l)
{
    if (l == NULL)
        return;
    if (l->count > 0)
        log_flush(l);
    undirty(l);
    idx_out_close(&l->idx);
    for (size_t i = 0; i < l->count; i++)
        close(l->segs[i].fd);
    free(l->segs);
    free(l->wbuf);
    free(l->dir);
    free(l);
}

void stream_log_destroy(struct stream_log *l)
{
    if (l == NULL)
        return;
    undirty(l);
    l->wlen = 0;
    l->idx.len = 0;
    while (l->count > 0)
        seg_drop_first(l);
    if (rmdir(l->dir) != 0)
        log_warn(NULL, "stream log: cannot remove %s: %s", l->dir, strerror(errno));
    stream_log_close(l);
}

uint64_t stream_log_append(struct stream_log *l, struct stream_record *r)
{
    struct stream_sync *y = l->sync;
    size_t body_len = 1 + 8 + 8 + 1 + r->exchange.len + 1 + r->routing_key.len + 1 + 1 +
                      r->filter_value.len + 4 + r->header.len + r->body.len;
    size_t need = RECFILE_FRAME_BYTES + body_len;
    struct sseg *s = &l->segs[l->count - 1];
    struct wire_writer w;
    uint8_t *rec;

    if (l->failed || y->failed != 0 || body_len > MAX_BODY || r->exchange.len > 255 ||
        r->routing_key.len > 255 || r->filter_value.len > 255)
        return 0;
    if (r->timestamp_ms == 0)
        r->timestamp_ms = now_wall_ms();
    /* A full segment takes no more: the next one starts at this record. */
    if (s->first_ts_ms != 0 && s->size + need > l->segment_bytes) {
        int rc;
        log_flush(l);
        index_seal(&l->idx, s, l->next_offset);
        if ((rc = seg_create(l, l->next_offset)) != 0) {
            l->failed = true;
            report_failure(y, -rc, "creating a segment in", l->dir);
            return 0;
        }
        s = &l->segs[l->count - 1];
        stream_log_retain(l, r->timestamp_ms);
        s = &l->segs[l->count - 1];
    }
    if (l->wlen + need > l->wcap) {
        l->wcap = l->wlen + need > 2 * l->wcap ? l->wlen + need : 2 * l->wcap;
        l->wbuf = xrealloc(l->wbuf, l->wcap);
    }
    rec = l->wbuf + l->wlen;
    r->offset = l->next_offset++;
    w = wire_writer_init(rec + RECFILE_FRAME_BYTES, body_len);
    wire_put_u8(&w, REC_STREAM_MSG);
    wire_put_u64(&w, r->offset);
    wire_put_u64(&w, r->timestamp_ms);
    wire_put_shortstr(&w, r->exchange);
    wire_put_shortstr(&w, r->routing_key);
    wire_put_u8(&w, r->has_filter ? 1 : 0);
    wire_put_shortstr(&w, r->has_filter ? r->filter_value : (struct wire_bytes){0});
    wire_put_u32(&w, (uint32_t)r->header.len);
    wire_put_bytes(&w, r->header.ptr, r->header.len);
    wire_put_bytes(&w, r->body.ptr, r->body.len);
    recfile_frame_seal(rec, (uint32_t)body_len);
    index_note(&l->idx, s, r->offset, s->size, record_crc(rec), r->timestamp_ms);
    l->wlen += need;
    s->size += need;
    l->total_bytes += need;
    if (s->first_ts_ms == 0)
        s->first_ts_ms = r->timestamp_ms;
    if (!l->is_dirty) {
        l->is_dirty = true;
        l->next_dirty = y->dirty;
        y->dirty = l;
    }
    if (l->wlen >= WBUF_FLUSH)
        log_flush(l);
    return ++y->appended_seq;
}

void stream_log_set_limits(struct stream_log *l, uint64_t max_bytes, uint64_t max_age_ms,
                           uint64_t segment_bytes)
{
    l->max_bytes = max_bytes;
    l->max_age_ms = max_age_ms;
    l->segment_bytes = segment_bytes != 0 ? segment_bytes : STREAM_DEFAULT_SEGMENT_BYTES;
}

size_t stream_log_retain(struct stream_log *l, uint64_t now_ms)
{
    size_t removed = 0;

    while (l->count > 1) {
        /* As RabbitMQ (osiris): the oldest segments go while the log holds more than the
         * limit, so what is kept stays under it. */
        bool over_bytes = l->max_bytes != 0 && l->total_bytes > l->max_bytes;
        /* The next segment's first message is newer than every message of this one. */
        bool too_old = l->max_age_ms != 0 && l->segs[1].first_ts_ms != 0 &&
                       l->segs[1].first_ts_ms + l->max_age_ms < now_ms;
        if (!over_bytes && !too_old)
            break;
        seg_drop_first(l);
        removed++;
    }
    if (removed > 0)
        recfile_fsync_dir(l->dir);
    return removed;
}

uint64_t stream_log_first_offset(const struct stream_log *l)
{
    return l->segs[0].first_offset;
}

uint64_t stream_log_next_offset(const struct stream_log *l)
{
    return l->next_offset;
}

uint64_t stream_log_disk_bytes(const struct stream_log *l)
{
    return l->total_bytes;
}

size_t stream_log_segment_count(const struct stream_log *l)
{
    return l->count;
}

/* ---- Readers ------------------------------------------------------------------------------ */

static void cursor_at_segment(struct stream_cursor *c, const struct sseg *s)
{
    c->seg_first = s->first_offset;
    c->offset = s->first_offset;
    c->pos = RECFILE_FILE_HEADER_BYTES;
    c->len = 0;
}

/* The record at c->pos of segment s: 1 (*body borrows c->buf), 0 at the segment's end,
 * -EIO if it is not a valid record, -errno if reading failed. */
static int cursor_record(struct stream_log *l, struct stream_cursor *c, const struct sseg *s,
                         struct wire_bytes *body)
{
    bool last = s == &l->segs[l->count - 1];
    uint64_t size = last ? l->flushed : s->size;
    size_t have, want;
    uint32_t body_len;

    if (last && c->pos >= l->flushed && l->wlen > 0) {
        log_flush(l);
        size = l->flushed;
    }
    if (c->pos >= size)
        return 0;
    if (size - c->pos < RECFILE_FRAME_BYTES)
        return -EIO;
    for (int round = 0; round < 2; round++) {
        if (c->pos >= c->buf_off && c->pos < c->buf_off + c->len)
            have = (size_t)(c->buf_off + c->len - c->pos);
        else
            have = 0;
        if (have >= RECFILE_FRAME_BYTES) {
            const uint8_t *p = c->buf + (c->pos - c->buf_off);
            body_len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            if (body_len == 0 || body_len > MAX_BODY ||
                size - c->pos < RECFILE_FRAME_BYTES + (uint64_t)body_len)
                return -EIO;
            if (have >= RECFILE_FRAME_BYTES + (size_t)body_len) {
                if (!recfile_frame_check(p, have, MAX_BODY, body))
                    return -EIO;
                return 1;
            }
            want = RECFILE_FRAME_BYTES + (size_t)body_len;
        } else {
            want = RECFILE_FRAME_BYTES;
        }
        if (round == 1)
            return -EIO;
        /* Refill the window from c->pos: at least the record, up to READ_WINDOW. */
        if (want < READ_WINDOW)
            want = READ_WINDOW;
        if (want > size - c->pos)
            want = (size_t)(size - c->pos);
        if (c->cap < want) {
            c->cap = want;
            free(c->buf);
            c->buf = xmalloc(c->cap);
        }
        {
            int rc = recfile_pread_all(s->fd, c->buf, want, c->pos);
            if (rc != 0)
                return rc;
        }
        c->buf_off = c->pos;
        c->len = want;
    }
    return -EIO;
}

/* The segment c is in; moves c to the first segment if its own was removed. */
static const struct sseg *cursor_segment(struct stream_log *l, struct stream_cursor *c)
{
    const struct sseg *s = seg_find(l, c->seg_first);

    if (s == NULL) {
        s = &l->segs[0];
        if (c->offset < s->first_offset || c->seg_first < s->first_offset) {
            cursor_at_segment(c, s);
        } else {
            /* Not a segment start of this log (should not happen): start over. */
            cursor_at_segment(c, s);
        }
    }
    return s;
}

/* stream_cursor_next, also giving the record's position in its segment (c->seg_first). */
static int cursor_read(struct stream_log *l, struct stream_cursor *c, struct stream_record *out,
                       uint64_t *at)
{
    for (;;) {
        const struct sseg *s = cursor_segment(l, c);
        struct wire_bytes body;
        int rc = cursor_record(l, c, s, &body);

        if (rc == 1) {
            /* A record that breaks the sequence of offsets is as corrupt as a torn one. */
            if (!decode_record(body, out) || out->offset != c->offset) {
                rc = -EIO;
            } else {
                *at = c->pos;
                c->pos += RECFILE_FRAME_BYTES + body.len;
                c->offset = out->offset + 1;
                return 1;
            }
        }
        if (rc == -EIO) {
            log_error(NULL, "stream log: %s/%020" PRIu64 ".seg: corrupt record at %" PRIu64
                            ", the rest of the segment is skipped",
                      l->dir, s->first_offset, c->pos);
            rc = 0;
            if (s == &l->segs[l->count - 1])
                return -EIO;
        }
        if (rc < 0)
            return rc;
        /* The end of this segment: on to the next, if there is one. */
        if (s == &l->segs[l->count - 1])
            return 0;
        cursor_at_segment(c, s + 1);
    }
}

int stream_cursor_next(struct stream_log *l, struct stream_cursor *c, struct stream_record *out)
{
    uint64_t at;

    return cursor_read(l, c, out, &at);
}

/* Rebuilds the index of segment s from a scan of it (a seek found it missing or bad); for
 * the last segment that is the index appends go on writing. Whatever happens, s's
 * timestamps are those of the scan. */
static void index_rebuild(struct stream_log *l, struct sseg *s)
{
    bool last = s == &l->segs[l->count - 1];
    struct idx_out sealed = {.fd = -1}, *o = last ? &l->idx : &sealed;
    uint64_t end, next;
    int rc;

    if (last)
        log_flush(l);
    idx_out_close(o);
    idx_out_open(o, l->dir, s->first_offset);
    rc = seg_scan(s, last ? l->flushed : s->size, o, &end, &next);
    if (rc != 0) {
        log_warn(NULL, "stream log: cannot read %s/%020" PRIu64 ".seg: %s", l->dir,
                 s->first_offset, strerror(-rc));
        s->ts = TS_UNKNOWN;
        s->index_ok = false;
        s->index_failed = true;
        if (!last)
            idx_out_close(o);
        return;
    }
    if (last) {
        idx_out_flush(o);
        s->index_ok = !o->failed;
        s->index_failed = o->failed;
    } else {
        index_seal(o, s, next);
    }
}

/* Places c in segment s at the index entry from which a scan finds key (an offset, or a
 * time if by_time): the last entry whose offset is <= key, or whose ts_before is < key.
 * False if the index does not hold up (an entry fails its checksum or does not point at a
 * record with its offset). */
static bool index_lookup(struct stream_log *l, struct stream_cursor *c, const struct sseg *s,
                         bool by_time, uint64_t key)
{
    bool last = s == &l->segs[l->count - 1];
    int fd = -1;
    uint64_t n, lo, hi;
    struct idx_entry e, found;
    struct stream_record rec;
    struct wire_bytes body;
    bool ok = false;

    if (last) {
        log_flush(l); /* the entries of this loop turn too */
        fd = l->idx.fd;
        n = l->idx.count;
    } else {
        char path[4200];
        struct stat sb;

        idx_path(l->dir, s->first_offset, path, sizeof path);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0 ||
            sb.st_size < RECFILE_FILE_HEADER_BYTES + INDEX_ENTRY_BYTES)
            goto out;
        /* The entries before the END entry. */
        n = (uint64_t)(sb.st_size - RECFILE_FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES - 1;
    }
    if (n == 0) {
        cursor_at_segment(c, s); /* no record: nothing to skip */
        ok = true;
        goto out;
    }
    if (!index_read(fd, s->first_offset, 0, &found) || found.offset != s->first_offset ||
        found.pos != RECFILE_FILE_HEADER_BYTES || (found.flags & INDEX_END) != 0)
        goto out;
    lo = 0;
    hi = n;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;

        if (!index_read(fd, s->first_offset, mid, &e) || (e.flags & INDEX_END) != 0)
            goto out;
        if (by_time ? (e.flags & INDEX_HAS_TS) == 0 || e.ts_before < key : e.offset <= key) {
            lo = mid;
            found = e;
        } else {
            hi = mid;
        }
    }
    /* The entry must point at the very record it was written for: an index that does not
     * describe this segment (stale, or from a crash) fails here, even if its checksums pass. */
    c->seg_first = s->first_offset;
    c->pos = found.pos;
    c->offset = found.offset;
    c->len = 0;
    ok = cursor_record(l, c, s, &body) == 1 && decode_record(body, &rec) &&
         rec.offset == found.offset &&
         record_crc(body.ptr - RECFILE_FRAME_BYTES) == found.record_crc;
out:
    if (!last && fd >= 0)
        close(fd);
    return ok;
}

/* Places c in segment s where a scan forward finds key (see index_lookup): at an index
 * entry, or at the segment's first record if its index cannot be had. */
static void seek_in_segment(struct stream_log *l, struct stream_cursor *c, struct sseg *s,
                            bool by_time, uint64_t key)
{
    bool rebuilt = false;

    for (;;) {
        if (!s->index_ok && !s->index_failed) {
            index_rebuild(l, s);
            rebuilt = true;
        }
        if (!s->index_ok)
            break;
        if (index_lookup(l, c, s, by_time, key))
            return;
        log_warn(NULL, "stream log: %s/%020" PRIu64 ".idx does not match its segment%s",
                 l->dir, s->first_offset, rebuilt ? "" : "; rebuilding it");
        s->index_ok = false;
        if (rebuilt) {
            s->index_failed = true;
            break;
        }
    }
    cursor_at_segment(c, s);
}

/* The first segment holding a message stamped at or after t_ms; NULL if there is none. */
static struct sseg *segment_with_time(struct stream_log *l, uint64_t t_ms)
{
    for (size_t i = 0; i < l->count; i++) {
        struct sseg *s = &l->segs[i];

        if (s->ts == TS_UNKNOWN && !s->index_failed)
            index_rebuild(l, s);
        /* Unknown still (the segment cannot be read): a scan from it decides. */
        if (s->ts == TS_UNKNOWN || (s->ts == TS_KNOWN && s->max_ts_ms >= t_ms))
            return s;
    }
    return NULL;
}

int stream_cursor_seek(struct stream_log *l, struct stream_cursor *c, enum stream_seek how,
                       uint64_t value)
{
    struct sseg *s = NULL;
    struct stream_record rec;
    uint64_t target = 0;
    bool by_time = false;
    size_t lo, hi;

    c->len = 0;
    switch (how) {
    case STREAM_SEEK_FIRST:
        cursor_at_segment(c, &l->segs[0]);
        return 0;
    case STREAM_SEEK_NEXT:
        target = l->next_offset;
        break;
    case STREAM_SEEK_LAST:
        target = l->next_offset > l->segs[0].first_offset ? l->next_offset - 1 : l->next_offset;
        break;
    case STREAM_SEEK_OFFSET:
        target = value < l->segs[0].first_offset ? l->segs[0].first_offset
                 : value > l->next_offset       ? l->next_offset
                                                 : value;
        break;
    case STREAM_SEEK_TIME:
    default:
        if ((s = segment_with_time(l, value)) != NULL) {
            by_time = true;
        } else {
            how = STREAM_SEEK_NEXT; /* nothing stamped that late: what comes next */
            target = l->next_offset;
        }
        break;
    }
    if (s == NULL) {
        /* The segment holding target: the last one starting at or before it. */
        lo = 0;
        hi = l->count;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (l->segs[mid].first_offset <= target)
                lo = mid;
            else
                hi = mid;
        }
        s = &l->segs[lo];
    }
    if (how == STREAM_SEEK_NEXT && s == &l->segs[l->count - 1]) {
        c->seg_first = s->first_offset;
        c->offset = target;
        c->pos = s->size;
        return 0;
    }
    seek_in_segment(l, c, s, by_time, by_time ? value : target);
    /* A scan of at most one interval (unless the index could not be used): stop at the
     * first record sought. */
    while (by_time || c->offset < target) {
        uint64_t at;
        int rc = cursor_read(l, c, &rec, &at);

        if (rc <= 0)
            return rc;
        if (by_time ? rec.timestamp_ms >= value : rec.offset >= target) {
            c->pos = at; /* cursor_read left c->seg_first at the record's segment */
            c->offset = rec.offset;
            break;
        }
    }
    return 0;
}

void stream_cursor_free(struct stream_cursor *c)
{
    free(c->buf);
    *c = (struct stream_cursor){0};
}
