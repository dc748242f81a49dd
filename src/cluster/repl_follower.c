/* The follower's side of replication (src/cluster/repl_follower.h): the connection and its
 * handshake, the frames applied to the data directory, the fsync thread and the acks. */
#include "src/cluster/repl_follower.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/buf.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/repl_link.h"
#include "src/cluster/repl_proto.h"
#include "src/store/crc32c.h"
#include "src/store/recfile.h"

#define READ_BYTES   (256u << 10)
#define CACHE_FDS    8   /* segment descriptors kept open */
#define TICK_MS      200 /* timeouts and keepalive acks */
#define KEEPALIVE_MS 500 /* an ACK at least this often, so the leader knows we are there */

enum fstate {
    F_WAITING,    /* for the retry timer */
    F_CONNECTING, /* connect(2) in progress */
    F_HELLO,      /* HELLO sent, waiting for CHALLENGE */
    F_AUTHED,     /* AUTH sent, waiting for the stream */
    F_STREAM,     /* applying the stream */
};

struct cached {
    uint32_t segment; /* 0: free */
    int fd;
    uint64_t size;
    bool dirty; /* written since the fds to sync were last handed over */
};

/* One pass of the fsync thread. */
struct sync_job {
    int *fds; /* duplicates, closed by the thread */
    size_t count;
    bool msgs_dir, data_dir;
    uint64_t pos; /* what the pass makes durable */
    uint64_t gen; /* the connection it belongs to */
    int err;
};

struct repl_follower {
    struct ev_loop *loop;
    char *node_id;
    char *data_dir;
    char *msgs_dir;
    char *address;
    uint8_t *secret;
    size_t secret_len;
    uint32_t retry_ms, sync_delay_ms, timeout_ms;
    struct repl_follower_events ev;
    void *ctx;
    struct tls_server *tls;
    struct repl_warn_limit tls_warn; /* TLS refusals, warned about once per reason a while */
    int lock_fd;
    int msgs_dirfd, data_dirfd;
    uint8_t *unpacked; /* an APPEND_LZ4's data, decompressed (REPL_CHUNK_MAX bytes) */

    uint64_t epoch_seen;
    struct repl_history history;

    /* The connection. */
    enum fstate state;
    struct repl_link link; /* fd -1: none */
    uint64_t gen;
    ev_io rio, wio;
    ev_timer retry, tick, sync_timer;
    struct buf in, out;
    uint8_t nonce_f[REPL_NONCE_BYTES];
    uint64_t leader_epoch;
    uint64_t last_rx_ms, last_tx_ms;
    uint64_t applied, acked, live_pos;
    bool live;      /* the catch-up's end (HEARTBEAT with LIVE) came, at live_pos */
    bool caught_up; /* ... and is acked */

    /* Files. */
    struct cached cache[CACHE_FDS];
    unsigned cache_hand;
    int defs_fd;
    uint64_t defs_size;
    bool defs_dirty;
    int replace_fd;
    uint64_t replace_total, replace_got;
    int *dirty_fds;
    size_t dirty_count, dirty_cap;
    bool msgs_dir_dirty, data_dir_dirty;

    /* The fsync thread. */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool thread_started, stop;
    struct sync_job *job;  /* handed to the thread */
    struct sync_job *done; /* back from it */
    bool in_flight, sync_wanted;
    ev_async async;
};

const char *repl_reject_name(enum repl_reject why)
{
    switch (why) {
    case REPL_REJECT_AUTH:
        return "authentication failed";
    case REPL_REJECT_STALE_EPOCH:
        return "leader epoch is stale";
    case REPL_REJECT_NEWER_EPOCH:
        return "this node has seen a newer epoch than the leader";
    case REPL_REJECT_VERSION:
        return "protocol version mismatch";
    }
    return "unknown";
}

static void connection_lost(struct repl_follower *f, int err, bool refused);

/* ---- Files -------------------------------------------------------------------------------- */

static void seg_path(const struct repl_follower *f, uint32_t segment, char *out, size_t n)
{
    snprintf(out, n, "%s/%08" PRIu32 ".seg", f->msgs_dir, segment);
}

static void defs_path(const struct repl_follower *f, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/defs.log%s", f->data_dir, suffix);
}

/* fd was written: it joins the next fsync pass (as a duplicate, so that closing or evicting
 * it meanwhile loses nothing). */
static void mark_dirty(struct repl_follower *f, int fd, bool *dirty)
{
    if (*dirty)
        return;
    if (f->dirty_count == f->dirty_cap) {
        f->dirty_cap = f->dirty_cap ? f->dirty_cap * 2 : 16;
        f->dirty_fds = xrealloc(f->dirty_fds, f->dirty_cap * sizeof(int));
    }
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        /* Out of descriptors: sync it now rather than lose track of it. */
        (void)fdatasync(fd);
        return;
    }
    f->dirty_fds[f->dirty_count++] = copy;
    *dirty = true;
}

static struct cached *cache_find(struct repl_follower *f, uint32_t segment)
{
    for (unsigned i = 0; i < CACHE_FDS; i++) {
        if (f->cache[i].segment == segment)
            return &f->cache[i];
    }
    return NULL;
}

static void cache_drop(struct repl_follower *f, uint32_t segment)
{
    struct cached *c = cache_find(f, segment);

    if (c != NULL) {
        close(c->fd);
        *c = (struct cached){0};
    }
}

static void cache_clear(struct repl_follower *f)
{
    for (unsigned i = 0; i < CACHE_FDS; i++) {
        if (f->cache[i].segment != 0)
            close(f->cache[i].fd);
        f->cache[i] = (struct cached){0};
    }
    if (f->defs_fd >= 0)
        close(f->defs_fd);
    f->defs_fd = -1;
    f->defs_dirty = false;
}

static struct cached *cache_put(struct repl_follower *f, uint32_t segment, int fd, uint64_t size)
{
    struct cached *c = &f->cache[f->cache_hand];

    f->cache_hand = (f->cache_hand + 1) % CACHE_FDS;
    if (c->segment != 0)
        close(c->fd);
    *c = (struct cached){.segment = segment, .fd = fd, .size = size};
    return c;
}

/* The segment's cached descriptor, opened if needed; NULL with errno set. */
static struct cached *segment_open(struct repl_follower *f, uint32_t segment)
{
    struct cached *c = cache_find(f, segment);
    char path[4096];
    struct stat sb;
    int fd;

    if (c != NULL)
        return c;
    seg_path(f, segment, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
        return NULL;
    if (fstat(fd, &sb) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return NULL;
    }
    return cache_put(f, segment, fd, (uint64_t)sb.st_size);
}

static int defs_open(struct repl_follower *f)
{
    char path[4096];
    struct stat sb;

    if (f->defs_fd >= 0)
        return 0;
    defs_path(f, "", path, sizeof(path));
    if ((f->defs_fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(f->defs_fd, &sb) < 0) {
        int err = errno;
        close(f->defs_fd);
        f->defs_fd = -1;
        return -err;
    }
    f->defs_size = (uint64_t)sb.st_size;
    f->defs_dirty = false;
    return 0;
}

static void replace_abort(struct repl_follower *f)
{
    char path[4096];

    if (f->replace_fd < 0)
        return;
    close(f->replace_fd);
    f->replace_fd = -1;
    defs_path(f, ".tmp", path, sizeof(path));
    unlink(path);
}

/* Everything written so far, fsynced now, on the loop thread (rare: see the header). A pass
 * under way on the thread may hold some of it: it is waited for (its result is still
 * reported the usual way). */
static int sync_now(struct repl_follower *f)
{
    int rc = 0;

    pthread_mutex_lock(&f->mu);
    while (f->in_flight && f->done == NULL)
        pthread_cond_wait(&f->cond, &f->mu);
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < f->dirty_count; i++) {
        if (fdatasync(f->dirty_fds[i]) < 0 && rc == 0)
            rc = -errno;
    }
    if (f->msgs_dir_dirty && fsync(f->msgs_dirfd) < 0 && rc == 0)
        rc = -errno;
    if (f->data_dir_dirty && fsync(f->data_dirfd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- Applying the stream ------------------------------------------------------------------ */

/* Why a frame could not be applied; logged by the caller, which drops the connection. */
struct apply_error {
    int err;
    char what[200];
};

static bool apply_fail(struct apply_error *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool apply_fail(struct apply_error *e, int err, const char *fmt, ...)
{
    va_list ap;

    e->err = err;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof(e->what), fmt, ap);
    va_end(ap);
    return false;
}

static bool apply_create(struct repl_follower *f, uint32_t segment, struct wire_bytes header,
                         struct apply_error *e)
{
    char path[4096];
    struct cached *c;
    int fd, rc;

    cache_drop(f, segment);
    seg_path(f, segment, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
        return apply_fail(e, errno, "creating %s", path);
    if ((rc = recfile_pwrite_all(fd, header.ptr, header.len, 0)) < 0) {
        close(fd);
        return apply_fail(e, -rc, "writing %s", path);
    }
    c = cache_put(f, segment, fd, header.len);
    mark_dirty(f, fd, &c->dirty);
    f->msgs_dir_dirty = true;
    return true;
}

static bool apply_append(struct repl_follower *f, uint8_t file, uint32_t segment, uint64_t offset,
                         struct wire_bytes data, struct apply_error *e)
{
    int rc;

    if (file == REPL_FILE_DEFS) {
        if ((rc = defs_open(f)) < 0)
            return apply_fail(e, -rc, "opening defs.log");
        if (offset != f->defs_size)
            return apply_fail(e, EPROTO, "append to defs.log at %" PRIu64 ", its size is %" PRIu64,
                              offset, f->defs_size);
        if ((rc = recfile_pwrite_all(f->defs_fd, data.ptr, data.len, offset)) < 0)
            return apply_fail(e, -rc, "writing defs.log");
        f->defs_size += data.len;
        mark_dirty(f, f->defs_fd, &f->defs_dirty);
        return true;
    }
    struct cached *c = segment_open(f, segment);
    if (c == NULL)
        return apply_fail(e, errno == ENOENT ? EPROTO : errno, "append to segment %" PRIu32 ": %s",
                          segment, strerror(errno));
    /* Appends are exactly appends: a gap or an overlap means the stream lost its way. */
    if (offset != c->size)
        return apply_fail(e, EPROTO,
                          "append to segment %" PRIu32 " at %" PRIu64 ", its size is %" PRIu64,
                          segment, offset, c->size);
    if ((rc = recfile_pwrite_all(c->fd, data.ptr, data.len, offset)) < 0)
        return apply_fail(e, -rc, "writing segment %" PRIu32, segment);
    c->size += data.len;
    mark_dirty(f, c->fd, &c->dirty);
    return true;
}

static bool apply_truncate(struct repl_follower *f, uint8_t file, uint32_t segment, uint64_t size,
                           struct apply_error *e)
{
    int fd, rc;
    uint64_t *have;
    bool *dirty;

    if (file == REPL_FILE_DEFS) {
        if ((rc = defs_open(f)) < 0)
            return apply_fail(e, -rc, "opening defs.log");
        fd = f->defs_fd;
        have = &f->defs_size;
        dirty = &f->defs_dirty;
    } else {
        struct cached *c = segment_open(f, segment);
        if (c == NULL)
            return apply_fail(e, errno == ENOENT ? EPROTO : errno,
                              "truncate of segment %" PRIu32 ": %s", segment, strerror(errno));
        fd = c->fd;
        have = &c->size;
        dirty = &c->dirty;
    }
    if (size > *have)
        return apply_fail(e, EPROTO, "truncate to %" PRIu64 " of a file of %" PRIu64 " bytes", size,
                          *have);
    if (ftruncate(fd, (off_t)size) < 0)
        return apply_fail(e, errno, "truncating segment %" PRIu32, segment);
    *have = size;
    mark_dirty(f, fd, dirty);
    return true;
}

static bool apply_unlink(struct repl_follower *f, uint32_t segment, struct apply_error *e)
{
    char path[4096];

    cache_drop(f, segment);
    seg_path(f, segment, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        return apply_fail(e, errno, "removing %s", path);
    f->msgs_dir_dirty = true;
    return true;
}

static bool apply_replace(struct repl_follower *f, uint64_t total, uint64_t offset,
                          struct wire_bytes data, struct apply_error *e)
{
    char tmp[4096], path[4096];
    int rc;

    defs_path(f, ".tmp", tmp, sizeof(tmp));
    if (offset == 0) {
        replace_abort(f);
        if ((f->replace_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
            return apply_fail(e, errno, "creating %s", tmp);
        f->replace_total = total;
        f->replace_got = 0;
    } else if (f->replace_fd < 0 || offset != f->replace_got || total != f->replace_total) {
        return apply_fail(e, EPROTO, "piece of a replaced defs.log out of order");
    }
    if (data.len > 0 && (rc = recfile_pwrite_all(f->replace_fd, data.ptr, data.len, offset)) < 0)
        return apply_fail(e, -rc, "writing %s", tmp);
    f->replace_got += data.len;
    if (f->replace_got < f->replace_total)
        return true;
    /* Complete: on disk before its name replaces the old file, so a crash leaves one or the
     * other whole. */
    defs_path(f, "", path, sizeof(path));
    if (fdatasync(f->replace_fd) < 0) {
        rc = errno;
        replace_abort(f);
        return apply_fail(e, rc, "fsync of %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        rc = errno;
        replace_abort(f);
        return apply_fail(e, rc, "renaming %s", tmp);
    }
    close(f->replace_fd);
    f->replace_fd = -1;
    if (f->defs_fd >= 0)
        close(f->defs_fd);
    f->defs_fd = -1;
    f->defs_dirty = false;
    f->data_dir_dirty = true;
    return true;
}

static bool apply_epoch(struct repl_follower *f, uint64_t epoch, struct wire_bytes list,
                        uint32_t count, struct apply_error *e)
{
    struct repl_history h;
    int rc;

    if (epoch != f->leader_epoch)
        return apply_fail(e, EPROTO, "EPOCH %" PRIu64 " from the leader of epoch %" PRIu64, epoch,
                          f->leader_epoch);
    repl_history_from_list(list, count, &h);
    if (repl_history_equal(&h, &f->history)) {
        repl_history_free(&h);
        return true;
    }
    /* The removals and truncations the leader sent before are durable first: the recorded
     * history must never claim files this node does not have yet. */
    if ((rc = sync_now(f)) < 0 || (rc = repl_history_write(f->data_dir, &h)) < 0) {
        repl_history_free(&h);
        return apply_fail(e, -rc, "recording the epoch history in %s", f->data_dir);
    }
    repl_history_free(&f->history);
    f->history = h;
    return true;
}

/* ---- Sync and acks ------------------------------------------------------------------------ */

/* Whether a failure counts as the TLS link refused: during the handshake, or before the
 * leader's challenge came (with TLS 1.3 the leader verifies this node's certificate after
 * this side finished its handshake, and its refusal is an alert read then). */
static bool tls_refused(const struct repl_follower *f)
{
    return f->link.tls != NULL && (!repl_link_established(&f->link) || f->state == F_HELLO);
}

/* The log says why (the usual cause is configuration, so it is a warning); the follower
 * retries as after any failure. */
static void tls_failed(struct repl_follower *f, int err)
{
    const char *why = repl_link_error(&f->link, err);
    char more[64];
    int level = repl_warn_level(&f->tls_warn, why, now_ms(), more, sizeof(more));

    LOG_AT(level, NULL,
           "replication: TLS with the leader at %s failed: %s (this node uses TLS, "
           "cluster.tls.*: the leader must too, with a certificate of the same CA)%s",
           f->address, why, more);
    connection_lost(f, err != 0 ? err : EPROTO, false);
}

static void send_out(struct repl_follower *f)
{
    while (buf_pending(&f->out) > 0) {
        ssize_t n = repl_link_write(&f->link, f->out.data + f->out.sent, buf_pending(&f->out));
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            if (tls_refused(f))
                tls_failed(f, errno);
            else
                connection_lost(f, errno, false);
            return;
        }
        buf_consumed(&f->out, (size_t)n);
        f->last_tx_ms = now_ms();
    }
    if (repl_link_wants_writable(&f->link, buf_pending(&f->out) > 0))
        ev_io_start(f->loop, &f->wio);
    else
        ev_io_stop(f->loop, &f->wio);
}

static void send_ack(struct repl_follower *f, uint64_t pos)
{
    if (f->state != F_STREAM)
        return;
    repl_put_ack(&f->out, pos);
    send_out(f);
}

static void acked(struct repl_follower *f, uint64_t pos)
{
    if (pos > f->acked) {
        f->acked = pos;
        if (f->ev.acked != NULL)
            f->ev.acked(f->ctx, pos);
    }
    send_ack(f, f->acked);
    if (f->state == F_STREAM && !f->caught_up && f->live && f->acked >= f->live_pos) {
        f->caught_up = true;
        log_info(NULL, "replication: caught up with the leader at position %" PRIu64, f->live_pos);
        if (f->ev.caught_up != NULL)
            f->ev.caught_up(f->ctx, f->live_pos);
    }
}

/* Hands everything written since the last pass to the fsync thread (one pass at a time), or
 * acks at once when nothing was written. */
static void start_sync(struct repl_follower *f)
{
    struct sync_job *job;

    if (f->in_flight) {
        f->sync_wanted = true;
        return;
    }
    f->sync_wanted = false;
    ev_timer_stop(f->loop, &f->sync_timer);
    if (f->dirty_count == 0 && !f->msgs_dir_dirty && !f->data_dir_dirty) {
        acked(f, f->applied);
        return;
    }
    job = xcalloc(1, sizeof(*job));
    job->fds = f->dirty_fds;
    job->count = f->dirty_count;
    job->msgs_dir = f->msgs_dir_dirty;
    job->data_dir = f->data_dir_dirty;
    job->pos = f->applied;
    job->gen = f->gen;
    f->dirty_fds = NULL;
    f->dirty_count = f->dirty_cap = 0;
    f->msgs_dir_dirty = f->data_dir_dirty = false;
    for (unsigned i = 0; i < CACHE_FDS; i++)
        f->cache[i].dirty = false;
    f->defs_dirty = false;
    f->in_flight = true;
    pthread_mutex_lock(&f->mu);
    f->job = job;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static void *sync_main(void *arg)
{
    struct repl_follower *f = arg;

    pthread_mutex_lock(&f->mu);
    for (;;) {
        struct sync_job *job;
        while (!f->stop && f->job == NULL)
            pthread_cond_wait(&f->cond, &f->mu);
        if (f->job == NULL)
            break;
        job = f->job;
        f->job = NULL;
        pthread_mutex_unlock(&f->mu);
        for (size_t i = 0; i < job->count; i++) {
            if (fdatasync(job->fds[i]) < 0 && job->err == 0)
                job->err = errno;
            close(job->fds[i]);
        }
        /* The names after the contents: a created segment's entry, a removal, a rename. */
        if (job->msgs_dir && fsync(f->msgs_dirfd) < 0 && job->err == 0)
            job->err = errno;
        if (job->data_dir && fsync(f->data_dirfd) < 0 && job->err == 0)
            job->err = errno;
        pthread_mutex_lock(&f->mu);
        f->done = job;
        pthread_cond_broadcast(&f->cond); /* sync_now() may be waiting */
        ev_async_send(f->loop, &f->async);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void on_synced(struct ev_loop *loop, ev_async *w, int revents)
{
    struct repl_follower *f = container_of(w, struct repl_follower, async);
    struct sync_job *job;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&f->mu);
    job = f->done;
    f->done = NULL;
    pthread_mutex_unlock(&f->mu);
    if (job == NULL)
        return;
    f->in_flight = false;
    if (job->err != 0) {
        log_error(NULL,
                  "replication: fsync in %s failed: %s; nothing more is acked until "
                  "the leader sends it again",
                  f->data_dir, strerror(job->err));
        if (f->state == F_STREAM && job->gen == f->gen) {
            repl_put_error(&f->out, REPL_ERROR_IO, "fsync failed");
            send_out(f);
            connection_lost(f, job->err, false);
        }
    } else if (job->gen == f->gen && f->state == F_STREAM) {
        acked(f, job->pos);
    }
    free(job->fds);
    free(job);
    if (f->sync_wanted && f->state == F_STREAM)
        start_sync(f);
}

static void on_sync_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    start_sync(container_of(w, struct repl_follower, sync_timer));
}

/* Something was written: synced at the latest sync_delay_ms from now. */
static void written(struct repl_follower *f, uint64_t pos)
{
    if (pos > f->applied)
        f->applied = pos;
    if (!ev_is_active(&f->sync_timer)) {
        ev_timer_set(&f->sync_timer, f->sync_delay_ms / 1000., 0.);
        ev_timer_start(f->loop, &f->sync_timer);
    }
}

/* ---- The connection ----------------------------------------------------------------------- */

static void schedule_retry(struct repl_follower *f)
{
    f->state = F_WAITING;
    ev_timer_set(&f->retry, f->retry_ms / 1000., 0.);
    ev_timer_start(f->loop, &f->retry);
}

static void close_connection(struct repl_follower *f)
{
    if (f->link.fd >= 0) {
        ev_io_stop(f->loop, &f->rio);
        ev_io_stop(f->loop, &f->wio);
        repl_link_close(&f->link);
    }
    ev_timer_stop(f->loop, &f->sync_timer);
    buf_free(&f->in);
    buf_free(&f->out);
    replace_abort(f);
    cache_clear(f);
    f->gen++;
    f->applied = f->acked = f->live_pos = 0;
    f->live = f->caught_up = false;
    f->sync_wanted = false;
}

static void connection_lost(struct repl_follower *f, int err, bool refused)
{
    close_connection(f);
    schedule_retry(f);
    if (f->ev.lost != NULL)
        f->ev.lost(f->ctx, err, refused);
}

static void rejected(struct repl_follower *f, enum repl_reject why, uint64_t epoch)
{
    close_connection(f);
    schedule_retry(f);
    if (f->ev.rejected != NULL)
        f->ev.rejected(f->ctx, why, epoch);
}

/* The manifest of what this node has: segments with sizes, defs.log size and CRC. */
static int build_hello(struct repl_follower *f)
{
    struct repl_manifest_seg *segs = NULL;
    size_t n = 0, cap = 0;
    uint64_t defs_size = 0;
    uint32_t defs_crc = 0;
    char path[4096];
    struct dirent *e;
    struct stat sb;
    DIR *d;
    int fd, rc = 0;

    if ((d = opendir(f->msgs_dir)) == NULL)
        return -errno;
    while ((e = readdir(d)) != NULL) {
        uint32_t num = 0;
        bool ok = strlen(e->d_name) == 12 && strcmp(e->d_name + 8, ".seg") == 0;
        for (int i = 0; ok && i < 8; i++) {
            ok = e->d_name[i] >= '0' && e->d_name[i] <= '9';
            num = num * 10 + (uint32_t)(e->d_name[i] - '0');
        }
        seg_path(f, num, path, sizeof(path));
        if (!ok || num == 0 || stat(path, &sb) < 0)
            continue;
        if (n == REPL_MANIFEST_MAX) {
            rc = -E2BIG;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            segs = xrealloc(segs, cap * sizeof(*segs));
        }
        segs[n++] = (struct repl_manifest_seg){num, (uint64_t)sb.st_size};
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        struct repl_manifest_seg v = segs[i];
        size_t j = i;
        for (; j > 0 && segs[j - 1].segment > v.segment; j--)
            segs[j] = segs[j - 1];
        segs[j] = v;
    }
    defs_path(f, "", path, sizeof(path));
    if (rc == 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        /* Read in pieces: the log may be bigger than is reasonable to hold at once. */
        uint8_t *buf = xmalloc(1u << 20);
        ssize_t got;
        while ((got = read(fd, buf, 1u << 20)) > 0) {
            defs_crc = crc32c_update(defs_crc, buf, (size_t)got);
            defs_size += (uint64_t)got;
        }
        if (got < 0)
            rc = -errno;
        free(buf);
        close(fd);
    } else if (rc == 0 && errno != ENOENT) {
        rc = -errno;
    }
    if (rc == 0) {
        random_bytes(f->nonce_f, sizeof(f->nonce_f));
        repl_put_hello(&f->out, wire_cstr(f->node_id), f->epoch_seen, f->nonce_f, &f->history, segs,
                       n, defs_size, defs_crc);
    }
    free(segs);
    return rc;
}

static void on_challenge(struct repl_follower *f, const struct repl_challenge *ch)
{
    uint8_t want[REPL_MAC_BYTES], mac[REPL_MAC_BYTES];
    struct wire_bytes secret = {f->secret, f->secret_len};
    int rc;

    repl_mac(want, secret, REPL_ROLE_LEADER, f->nonce_f, ch->nonce, wire_cstr(f->node_id),
             ch->node_id, ch->epoch);
    if (!repl_mac_equal(want, ch->mac)) {
        log_warn(NULL, "replication: the leader at %s does not know the cluster secret: refused",
                 f->address);
        repl_put_error(&f->out, REPL_ERROR_AUTH, "authentication failed");
        send_out(f);
        rejected(f, REPL_REJECT_AUTH, ch->epoch);
        return;
    }
    f->leader_epoch = ch->epoch;
    /* Our answer goes even to a stale leader: proven, our epoch tells it it is deposed. */
    repl_mac(mac, secret, REPL_ROLE_FOLLOWER, f->nonce_f, ch->nonce, wire_cstr(f->node_id),
             ch->node_id, f->epoch_seen);
    repl_put_auth(&f->out, mac);
    if (ch->epoch < f->epoch_seen) {
        log_warn(NULL,
                 "replication: the leader at %s has epoch %" PRIu64 ", below %" PRIu64
                 " seen here: refused",
                 f->address, ch->epoch, f->epoch_seen);
        repl_put_error(&f->out, REPL_ERROR_STALE_EPOCH, "leader epoch is stale");
        send_out(f);
        rejected(f, REPL_REJECT_STALE_EPOCH, ch->epoch);
        return;
    }
    if (ch->epoch > f->epoch_seen) {
        if ((rc = repl_epoch_write(f->data_dir, ch->epoch)) < 0) {
            log_error(NULL, "replication: writing %s/cluster.epoch failed: %s", f->data_dir,
                      strerror(-rc));
            connection_lost(f, -rc, false);
            return;
        }
        f->epoch_seen = ch->epoch;
    }
    f->state = F_AUTHED;
    send_out(f); /* on failure the connection is gone and the state says so */
}

static void on_leader_error(struct repl_follower *f, uint16_t code, struct wire_bytes reason)
{
    log_warn(NULL, "replication: the leader at %s: %s: %.*s", f->address, repl_error_text(code),
             (int)reason.len, (const char *)reason.ptr);
    if (code == REPL_ERROR_AUTH)
        rejected(f, REPL_REJECT_AUTH, f->leader_epoch);
    else if (code == REPL_ERROR_DEPOSED)
        rejected(f, REPL_REJECT_NEWER_EPOCH, f->leader_epoch);
    else if (code == REPL_ERROR_VERSION)
        rejected(f, REPL_REJECT_VERSION, f->leader_epoch);
    else
        connection_lost(f, code == REPL_ERROR_LAGGING ? ENOBUFS : EPROTO, false);
}

/* One frame from the leader; false if the connection was closed. */
static bool on_frame(struct repl_follower *f, const struct repl_frame *fr)
{
    struct apply_error e = {0};
    struct repl_msg m;
    bool ok = true;

    if (repl_decode(fr, &m) != REPL_OK) {
        log_warn(NULL, "replication: malformed %s frame from the leader at %s",
                 repl_type_name(fr->type), f->address);
        repl_put_error(&f->out, REPL_ERROR_PROTOCOL, "malformed frame");
        send_out(f);
        connection_lost(f, EPROTO, false);
        return false;
    }
    if (m.type == REPL_ERROR) {
        on_leader_error(f, m.u.error.code, m.u.error.reason);
        return false;
    }
    if (f->state == F_HELLO) {
        if (m.type != REPL_CHALLENGE)
            goto unexpected;
        on_challenge(f, &m.u.challenge);
        return f->state == F_AUTHED;
    }
    if (f->state == F_AUTHED) {
        f->state = F_STREAM;
        log_info(NULL, "replication: following the leader at %s, epoch %" PRIu64, f->address,
                 f->leader_epoch);
        if (f->ev.connected != NULL)
            f->ev.connected(f->ctx, f->leader_epoch);
        if (f->state != F_STREAM)
            return false;
    }
    switch (m.type) {
    case REPL_CREATE:
        ok = apply_create(f, m.u.create.segment, m.u.create.header, &e);
        break;
    case REPL_APPEND:
        ok = apply_append(f, m.u.append.file, m.u.append.segment, m.u.append.offset,
                          m.u.append.data, &e);
        break;
    case REPL_APPEND_LZ4:
        if (f->unpacked == NULL)
            f->unpacked = xmalloc(REPL_CHUNK_MAX);
        if (repl_lz4_unpack(&m, f->unpacked) != 0) {
            ok = apply_fail(&e, EPROTO, "an APPEND_LZ4 does not decompress to its %" PRIu32
                            " bytes", m.u.append.raw_len);
            break;
        }
        ok = apply_append(f, m.u.append.file, m.u.append.segment, m.u.append.offset,
                          (struct wire_bytes){f->unpacked, m.u.append.raw_len}, &e);
        break;
    case REPL_TRUNCATE:
        ok = apply_truncate(f, m.u.truncate.file, m.u.truncate.segment, m.u.truncate.size, &e);
        break;
    case REPL_UNLINK:
        ok = apply_unlink(f, m.u.unlink_segment, &e);
        break;
    case REPL_REPLACE:
        ok = apply_replace(f, m.u.replace.total, m.u.replace.offset, m.u.replace.data, &e);
        break;
    case REPL_EPOCH:
        ok = apply_epoch(f, m.u.epoch.epoch, m.u.epoch.entries, m.u.epoch.count, &e);
        break;
    case REPL_HEARTBEAT:
        if (m.u.heartbeat.head < f->applied) {
            ok = apply_fail(&e, EPROTO, "heartbeat at %" PRIu64 " behind position %" PRIu64,
                            m.u.heartbeat.head, f->applied);
            break;
        }
        f->applied = m.u.heartbeat.head;
        if ((m.u.heartbeat.flags & REPL_HB_LIVE) && !f->live) {
            f->live = true;
            f->live_pos = m.u.heartbeat.head;
        }
        if ((m.u.heartbeat.flags & REPL_HB_SYNC) || !ev_is_active(&f->sync_timer))
            start_sync(f); /* with nothing written this only acks */
        return f->state == F_STREAM;
    default:
        goto unexpected;
    }
    if (!ok) {
        log_error(NULL, "replication: applying %s from the leader at %s: %s: %s",
                  repl_type_name(m.type), f->address, e.what, strerror(e.err));
        repl_put_error(&f->out, e.err == EPROTO ? REPL_ERROR_PROTOCOL : REPL_ERROR_IO, e.what);
        send_out(f);
        connection_lost(f, e.err, false);
        return false;
    }
    written(f, m.pos);
    return true;
unexpected:
    log_warn(NULL, "replication: the leader at %s sent %s out of turn", f->address,
             repl_type_name(m.type));
    repl_put_error(&f->out, REPL_ERROR_PROTOCOL, "unexpected frame");
    send_out(f);
    connection_lost(f, EPROTO, false);
    return false;
}

/* Reads what the socket (or TLS) has and applies the frames; false if the connection was
 * closed. */
static bool follower_read(struct repl_follower *f)
{
    struct repl_frame fr;
    ssize_t n;
    int rc;

    buf_reserve(&f->in, READ_BYTES);
    n = repl_link_read(&f->link, f->in.data + f->in.len, f->in.cap - f->in.len);
    if (n < 0 && errno == EAGAIN) {
        /* The write that waits for a TLS handshake message may go on now. */
        send_out(f);
        return f->link.fd >= 0;
    }
    if (n <= 0) {
        int err = n == 0 ? ECONNRESET : errno;
        if (tls_refused(f)) {
            tls_failed(f, n == 0 ? 0 : err);
            return false;
        }
        if (f->state == F_HELLO && f->link.tls == NULL) {
            const char *why = n == 0 ? "closed by the leader" : strerror(err);
            char more[64];
            int level = repl_warn_level(&f->tls_warn, why, now_ms(), more, sizeof(more));
            LOG_AT(level, NULL,
                   "replication: the leader at %s closed the connection before its "
                   "challenge (%s): does it require TLS (cluster.tls.*), which this node "
                   "lacks?%s",
                   f->address, why, more);
        } else {
            log_info(NULL, "replication: connection to the leader at %s lost: %s", f->address,
                     n == 0 ? "closed by the leader" : repl_link_error(&f->link, err));
        }
        connection_lost(f, err, false);
        return false;
    }
    if (f->state == F_HELLO && f->link.tls == NULL && buf_pending(&f->in) == 0 &&
        repl_link_looks_like_tls(f->in.data + f->in.len, (size_t)n)) {
        char more[64];
        int level = repl_warn_level(&f->tls_warn, "answers in TLS", now_ms(), more, sizeof(more));
        LOG_AT(level, NULL,
               "replication: the leader at %s answers in TLS, but this node has no "
               "cluster.tls.*: configure TLS on every node or on none%s",
               f->address, more);
        connection_lost(f, EPROTO, false);
        return false;
    }
    f->in.len += (size_t)n;
    f->last_rx_ms = now_ms();
    uint64_t gen = f->gen;
    for (;;) {
        rc = repl_frame_next(f->in.data + f->in.sent, buf_pending(&f->in), REPL_FRAME_MAX, &fr);
        if (rc == REPL_NEED_MORE)
            break;
        if (rc != REPL_OK) {
            log_warn(NULL, "replication: from the leader at %s: %s", f->address,
                     repl_status_text(rc));
            repl_put_error(&f->out, REPL_ERROR_PROTOCOL, repl_status_text(rc));
            send_out(f);
            connection_lost(f, EPROTO, false);
            return false;
        }
        if (!on_frame(f, &fr) || f->gen != gen)
            return false;
        buf_consumed(&f->in, fr.size);
    }
    /* TLS may hold decrypted bytes the socket's readiness does not show. */
    if (repl_link_pending(&f->link))
        ev_feed_event(f->loop, &f->rio, EV_READ);
    if (f->link.write_waits_read) {
        send_out(f);
        return f->gen == gen;
    }
    return true;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    follower_read(container_of(w, struct repl_follower, rio));
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct repl_follower *f = container_of(w, struct repl_follower, wio);
    int err = 0, rc;
    socklen_t len = sizeof(err);

    (void)loop;
    (void)revents;
    if (f->state != F_CONNECTING) {
        if (f->link.read_waits_write && !follower_read(f))
            return;
        send_out(f);
        return;
    }
    if (getsockopt(f->link.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        log_debug(NULL, "replication: connecting to %s: %s", f->address, strerror(err));
        connection_lost(f, err, err == ECONNREFUSED);
        return;
    }
    ev_io_start(f->loop, &f->rio);
    f->state = F_HELLO;
    f->last_rx_ms = now_ms();
    if ((rc = build_hello(f)) < 0) {
        log_error(NULL, "replication: reading %s failed: %s", f->data_dir, strerror(-rc));
        connection_lost(f, -rc, false);
        return;
    }
    /* With TLS this starts the handshake; the HELLO goes once it is done. */
    send_out(f);
}

static void connect_now(struct repl_follower *f)
{
    char err[256];
    bool in_progress;
    int fd = repl_socket(f->address, false, &in_progress, err, sizeof(err));

    if (fd < 0) {
        log_debug(NULL, "replication: %s", err);
        schedule_retry(f);
        if (f->ev.lost != NULL)
            f->ev.lost(f->ctx, -fd, fd == -ECONNREFUSED);
        return;
    }
    repl_link_init(&f->link, fd, f->tls, true);
    f->state = F_CONNECTING;
    f->last_rx_ms = now_ms();
    ev_io_init(&f->rio, on_readable, fd, EV_READ);
    ev_io_init(&f->wio, on_writable, fd, EV_WRITE);
    /* Connected at once or not: writability says when, SO_ERROR says how. */
    ev_io_start(f->loop, &f->wio);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    connect_now(container_of(w, struct repl_follower, retry));
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct repl_follower *f = container_of(w, struct repl_follower, tick);
    uint64_t now = now_ms();

    (void)loop;
    (void)revents;
    if (f->state == F_WAITING)
        return;
    if (now - f->last_rx_ms > f->timeout_ms) {
        log_warn(NULL, "replication: the leader at %s silent for %" PRIu64 " ms: reconnecting",
                 f->address, now - f->last_rx_ms);
        connection_lost(f, ETIMEDOUT, false);
        return;
    }
    if (f->state == F_STREAM && now - f->last_tx_ms >= KEEPALIVE_MS)
        send_ack(f, f->acked);
}

/* ---- Life cycle --------------------------------------------------------------------------- */

int repl_follower_note_epoch(struct repl_follower *f, uint64_t epoch)
{
    int rc;

    if (epoch <= f->epoch_seen)
        return 0;
    if ((rc = repl_epoch_write(f->data_dir, epoch)) < 0)
        return rc;
    f->epoch_seen = epoch;
    if (f->state != F_WAITING && f->state != F_CONNECTING && f->leader_epoch < epoch) {
        log_info(NULL, "replication: epoch %" PRIu64 " begun: leaving the leader of epoch %" PRIu64,
                 epoch, f->leader_epoch);
        rejected(f, REPL_REJECT_STALE_EPOCH, f->leader_epoch);
    }
    return 0;
}

uint64_t repl_follower_epoch_seen(const struct repl_follower *f)
{
    return f->epoch_seen;
}

uint64_t repl_follower_acked(const struct repl_follower *f)
{
    return f->acked;
}

bool repl_follower_is_caught_up(const struct repl_follower *f)
{
    return f->caught_up;
}

static int take_lock(struct repl_follower *f, char *err, size_t err_size)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/LOCK", f->data_dir);
    f->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (f->lock_fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(f->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, err_size, "data directory %s is in use (%s)", f->data_dir,
                 errno == EWOULDBLOCK ? "locked by a store or another follower" : strerror(errno));
        return -1;
    }
    return 0;
}

static int mkdir_if_missing(const char *path)
{
    return mkdir(path, 0750) < 0 && errno != EEXIST ? -errno : 0;
}

struct repl_follower *repl_follower_new(struct ev_loop *loop, const struct repl_follower_options *o,
                                        const struct repl_follower_events *events, void *ctx,
                                        char *err, size_t err_size)
{
    struct repl_follower *f;
    size_t n;
    int rc;
    sigset_t all, old;

    if (o->node_id == NULL || strlen(o->node_id) == 0 || strlen(o->node_id) > REPL_NODE_ID_MAX) {
        snprintf(err, err_size, "the node id must have 1 to %d bytes", REPL_NODE_ID_MAX);
        return NULL;
    }
    if (o->data_dir == NULL || o->leader_address == NULL) {
        snprintf(err, err_size, "a data directory and the leader's address are needed");
        return NULL;
    }
    f = xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->node_id = xstrdup(o->node_id);
    f->data_dir = xstrdup(o->data_dir);
    n = strlen(o->data_dir) + 6;
    f->msgs_dir = xmalloc(n);
    snprintf(f->msgs_dir, n, "%s/msgs", o->data_dir);
    f->address = xstrdup(o->leader_address);
    f->secret_len = o->secret.len;
    f->secret = xmalloc(o->secret.len > 0 ? o->secret.len : 1);
    if (o->secret.len > 0)
        memcpy(f->secret, o->secret.ptr, o->secret.len);
    f->retry_ms = o->retry_ms ? o->retry_ms : REPL_DEFAULT_RETRY_MS;
    f->sync_delay_ms = o->sync_delay_ms ? o->sync_delay_ms : REPL_DEFAULT_SYNC_DELAY_MS;
    f->timeout_ms = o->timeout_ms ? o->timeout_ms : 3000;
    if (events != NULL)
        f->ev = *events;
    f->ctx = ctx;
    f->lock_fd = f->msgs_dirfd = f->data_dirfd = -1;
    f->link.fd = f->defs_fd = f->replace_fd = -1;
    f->tls = o->tls;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    ev_init(&f->retry, on_retry);
    ev_init(&f->sync_timer, on_sync_timer);
    ev_timer_init(&f->tick, on_tick, TICK_MS / 1000., TICK_MS / 1000.);
    ev_async_init(&f->async, on_synced);

    if ((rc = mkdir_if_missing(f->data_dir)) < 0 || (rc = mkdir_if_missing(f->msgs_dir)) < 0) {
        snprintf(err, err_size, "cannot create %s: %s", f->msgs_dir, strerror(-rc));
        goto fail;
    }
    if (take_lock(f, err, err_size) < 0)
        goto fail;
    f->msgs_dirfd = open(f->msgs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    f->data_dirfd = open(f->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->msgs_dirfd < 0 || f->data_dirfd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", f->data_dir, strerror(errno));
        goto fail;
    }
    if ((rc = repl_epoch_read(f->data_dir, &f->epoch_seen)) < 0 ||
        (rc = repl_history_read(f->data_dir, &f->history)) < 0) {
        snprintf(err, err_size, "cannot read the epoch files in %s: %s", f->data_dir,
                 strerror(-rc));
        goto fail;
    }
    /* The thread takes no signals: they stay with the loop thread's handlers. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&f->thread, NULL, sync_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the replication fsync thread: %s", strerror(rc));
        goto fail;
    }
    f->thread_started = true;
    ev_async_start(loop, &f->async);
    ev_timer_start(loop, &f->tick);
    log_info(NULL, "replication: following %s%s into %s (epoch seen %" PRIu64 ")", f->address,
             f->tls != NULL ? " over TLS" : "", f->data_dir, f->epoch_seen);
    connect_now(f);
    return f;
fail:
    repl_follower_free(f);
    return NULL;
}

void repl_follower_free(struct repl_follower *f)
{
    if (f == NULL)
        return;
    f->ev = (struct repl_follower_events){0};
    close_connection(f);
    ev_timer_stop(f->loop, &f->retry);
    ev_timer_stop(f->loop, &f->tick);
    if (f->thread_started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        ev_async_stop(f->loop, &f->async);
        if (f->job != NULL) { /* handed over but not taken */
            for (size_t i = 0; i < f->job->count; i++)
                close(f->job->fds[i]);
            free(f->job->fds);
            free(f->job);
        }
        if (f->done != NULL) {
            free(f->done->fds);
            free(f->done);
        }
    }
    for (size_t i = 0; i < f->dirty_count; i++)
        close(f->dirty_fds[i]);
    free(f->dirty_fds);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    repl_history_free(&f->history);
    if (f->msgs_dirfd >= 0)
        close(f->msgs_dirfd);
    if (f->data_dirfd >= 0)
        close(f->data_dirfd);
    if (f->lock_fd >= 0)
        close(f->lock_fd);
    OPENSSL_cleanse(f->secret, f->secret_len);
    free(f->secret);
    free(f->node_id);
    free(f->data_dir);
    free(f->unpacked);
    free(f->msgs_dir);
    free(f->address);
    free(f);
}
