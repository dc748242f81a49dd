/* The message store (src/store/store.h): its public calls and the glue between the pieces.
 * Here are opening the data directory (the lock, the two areas, the start of the sync thread),
 * the records (MESSAGE, ACK, RETURN, DELIVERED, QUEUE_DELETE) as they are appended and read
 * back, the paging area's entry points, statistics, and closing (with the last sync). The
 * segment files are in segment.c, the group commit's thread and callbacks in sync.c, recovery
 * in recover.c; what they share is in store_internal.h. */
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
#include "src/store/store_internal.h"

#define MIN_SEGMENT_BYTES 256

/* ---- Small helpers ---------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
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

bool store_rec_type_ok(uint8_t type)
{
    return type >= REC_MESSAGE && type <= REC_MESSAGE_TIMED;
}

/* ---- Appending -------------------------------------------------------------------------- */

static size_t message_body_len(const struct store_msg *m)
{
    assert(m->exchange.len <= 255 && m->routing_key.len <= 255);
    assert(m->queue_count <= STORE_MAX_QUEUES_PER_MESSAGE);
    return 1 + (m->published_ms != 0 ? 16 : 0) + 2 + 4 * (size_t)m->queue_count + 1 + m->exchange.len + 1 + m->routing_key.len + 4 +
           m->header.len + m->body.len;
}

static void message_encode(uint8_t *p, const struct store_msg *m)
{
    if (m->published_ms != 0) {
        *p++ = REC_MESSAGE_TIMED;
        put_u64(p, m->published_ms);
        put_u64(p + 8, m->expires_ms);
        p += 16;
    } else {
        *p++ = REC_MESSAGE;
    }
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
    if (st->failed != 0 || (p = seg_area_reserve(st, &st->msgs, len, loc)) == NULL)
        return 0;
    message_encode(p, m);
    st->msgs.active->live_refs += m->queue_count;
    return seg_area_commit(st, &st->msgs, p, len);
}

/* An ACK, RETURN, DELIVERED or QUEUE_DELETE record: queue, target position, maybe a count. */
static uint64_t append_control(struct store *st, enum rec_type type, uint32_t queue_id,
                               struct store_loc target, bool with_count, uint32_t count)
{
    size_t len = 1 + 12 + (with_count ? 4 : 0);
    struct store_loc at;
    uint8_t *p;

    assert(st->recovered);
    /* Also while the store has failed: the record waits in the write buffer (within a bound)
     * for store_resume(), so consumers' acks are not forgotten while the disk is full. */
    if ((p = seg_area_reserve(st, &st->msgs, len, &at)) == NULL)
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
    return seg_area_commit(st, &st->msgs, p, len);
}

static void drop_ref(struct store *st, struct store_loc loc)
{
    struct area *a = (loc.flags & STORE_LOC_PAGING) ? &st->paging : &st->msgs;
    struct segment *s = seg_area_find(a, loc.segment);

    assert(s != NULL && s->live_refs > 0);
    if (--s->live_refs > 0 || !s->sealed)
        return;
    if (a->durable) {
        seg_maybe_delete(st, s);
        seg_process_doomed(st);
    } else {
        char path[4096];
        seg_path(a, s->number, path, sizeof(path));
        unlink(path);
        seg_area_remove(st, a, s);
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
    if (st->paging_error != 0 || (p = seg_area_reserve(st, &st->paging, len, loc)) == NULL)
        return -(st->paging_error ? st->paging_error : EIO);
    message_encode(p, m);
    st->paging.active->live_refs += m->queue_count > 0 ? m->queue_count : 1;
    seg_area_commit(st, &st->paging, p, len);
    return 0;
}

void store_flush(struct store *st)
{
    seg_area_flush(st, &st->msgs);
    seg_area_flush(st, &st->paging);
}

/* ---- Reading ---------------------------------------------------------------------------- */

/* Decodes a MESSAGE body; the byte strings borrow it. */
bool store_message_decode(struct wire_bytes rec, struct store_msg *out, struct wire_reader *ids)
{
    struct wire_reader r = wire_reader_init(rec.ptr, rec.len);
    struct wire_bytes skip;
    uint8_t type;
    uint16_t count;

    uint64_t published_ms = 0, expires_ms = 0;

    if (!wire_u8(&r, &type) || !rec_is_message(type))
        return false;
    if (type == REC_MESSAGE_TIMED && (!wire_u64(&r, &published_ms) || !wire_u64(&r, &expires_ms)))
        return false;
    if (!wire_u16(&r, &count) || !wire_sub(&r, 4 * (size_t)count, ids))
        return false;
    *out = (struct store_msg){
        .queue_count = count, .published_ms = published_ms, .expires_ms = expires_ms};
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
    struct segment *s = seg_area_find(a, loc.segment);
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
        RECFILE_FRAME_BYTES + body.len != loc.size || !store_message_decode(body, out, &ids)) {
        seg_path(a, s->number, path, sizeof(path));
        log_error(NULL, "message store: %s: corrupt record at offset %" PRIu32, path, loc.offset);
        return -EIO;
    }
    return 0;
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
        struct segment *s = seg_area_push(a, nums[i]);
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

    ev_async_init(&st->async, store_on_synced);
    ev_async_start(loop, &st->async);
    ev_unref(loop); /* only pending appends keep the loop alive (store_update_hold) */
    ev_prepare_init(&st->prepare, store_on_prepare);
    ev_prepare_start(loop, &st->prepare);
    ev_unref(loop);
    st->watchers_started = true;

    /* The thread takes no signals: they stay with the loop thread's handlers. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&st->sync.thread, NULL, store_sync_main, st);
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

/* ---- Statistics and closing ------------------------------------------------------------- */

uint64_t store_bytes_written(const struct store *st)
{
    return st->bytes_written;
}

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
        seg_area_remove(st, a, s);
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
