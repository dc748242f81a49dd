/* The leader's side of replication (src/cluster/repl_leader.h): accepting followers, the
 * handshake, the catch-up from the files, the live stream fed by the taps, acks, the commit
 * position. */
#define _GNU_SOURCE /* accept4 */
#include "src/cluster/repl_leader.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "src/base/buf.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/repl_link.h"
#include "src/cluster/repl_proto.h"
#include "src/store/crc32c.h"
#include "src/store/defs_log.h"
#include "src/store/recfile.h"
#include "src/store/store.h"

#define READ_BYTES        (64u << 10)  /* read(2) from a follower at most this much at once */
#define CATCHUP_TURN      (1u << 20)   /* file bytes a catch-up reads per loop turn */
#define CATCHUP_LOW_WATER (512u << 10) /* read more once the unsent stream is below this */
#define MAX_HANDSHAKES    16           /* connections not yet authenticated */
#define RATE_BURST_MIN    (16u << 10)  /* the smallest burst a sync rate limit allows */

enum conn_state {
    C_HELLO,   /* waiting for HELLO */
    C_AUTH,    /* CHALLENGE sent, waiting for AUTH */
    C_CATCHUP, /* sending from the files; live frames go to the backlog */
    C_LIVE,
};

/* A follower the leader knows: seen authenticated, or named in the ISR. */
struct member {
    char *id;
    uint64_t acked;
    bool in_isr;
    bool live;
    struct conn *conn; /* its authenticated connection, or NULL */
};

/* Part of a catch-up: segment bytes [from, to) to send, after a CREATE if create. */
struct copy_task {
    uint32_t segment;
    bool create;
    uint64_t from, to;
};

struct conn {
    struct repl_leader *l;
    struct conn *prev, *next;
    struct repl_link link;
    ev_io rio, wio;
    enum conn_state state;
    struct member *m; /* once authenticated */
    char peer[64];
    uint64_t accepted_ms;
    uint64_t last_rx_ms;

    /* From the HELLO, until the catch-up is planned. */
    char *node_id;
    uint64_t epoch_seen;
    uint8_t nonce_f[REPL_NONCE_BYTES], nonce_l[REPL_NONCE_BYTES];
    struct repl_history history;
    struct repl_manifest_seg *segs;
    size_t seg_count;
    uint64_t defs_size;
    uint32_t defs_crc;

    struct buf in;
    struct buf out;     /* for the socket */
    struct buf backlog; /* live frames while catching up */

    struct copy_task *tasks;
    size_t task_count, task_next;
    int task_fd;
    uint64_t h0;
    uint64_t sent_total;  /* bytes written to the socket */
    uint64_t catchup_end; /* sent_total at which the catch-up's last byte is written */

    /* cluster.sync_rate_limit: the catch-up's file bytes so far (catchup_bytes counts them
     * too) against the credit rate_limit * (now - rate_start_ms) (see catchup_allowance). */
    uint64_t rate_start_ms;
    uint64_t rate_spent;
    bool throttled; /* waiting for the resume timer, not for the socket */
    ev_timer resume;
};

struct seq_mark {
    uint64_t pos, seq;
};

struct repl_leader {
    struct ev_loop *loop;
    char *node_id;
    char *data_dir;
    uint8_t *secret;
    size_t secret_len;
    uint64_t epoch;
    uint64_t backlog_max;
    uint64_t sync_rate; /* bytes per second of a catch-up's files; 0: unlimited */
    struct tls_server *tls;
    struct repl_warn_limit tls_warn; /* TLS refusals, warned about once per reason a while */
    uint32_t heartbeat_ms, timeout_ms;
    bool lazy_sync;
    bool compress;
    struct buf zbuf; /* a catch-up's piece of file, read to be compressed */
    struct repl_leader_events ev;
    void *ctx;

    int listen_fd;
    ev_io accept_io;
    ev_timer tick;
    ev_timer commit_timer;
    ev_prepare prepare;

    struct conn *conns;
    size_t handshakes;
    struct member **members;
    size_t member_count;

    uint64_t head, commit, committed_seq, last_seq;
    struct seq_mark *marks; /* [mark_first, mark_count): positions where the store seq grew */
    size_t mark_first, mark_count, mark_cap;
    bool tapped_this_turn, sync_requested;

    struct store *store;
    struct defs_log *defs;
    struct buf scratch;
    struct repl_leader_stats stats;
};

const char *repl_follower_state_name(enum repl_follower_state s)
{
    switch (s) {
    case REPL_FOLLOWER_CONNECTED:
        return "connected";
    case REPL_FOLLOWER_LIVE:
        return "live";
    case REPL_FOLLOWER_LAGGING:
        return "lagging";
    case REPL_FOLLOWER_DISCONNECTED:
        return "disconnected";
    }
    return "unknown";
}

/* ---- Members ------------------------------------------------------------------------------ */

static struct member *member_find(struct repl_leader *l, const char *id)
{
    for (size_t i = 0; i < l->member_count; i++) {
        if (strcmp(l->members[i]->id, id) == 0)
            return l->members[i];
    }
    return NULL;
}

static struct member *member_get(struct repl_leader *l, const char *id)
{
    struct member *m = member_find(l, id);

    if (m != NULL)
        return m;
    m = xcalloc(1, sizeof(*m));
    m->id = xstrdup(id);
    l->members = xrealloc(l->members, (l->member_count + 1) * sizeof(*l->members));
    l->members[l->member_count++] = m;
    return m;
}

static void report(struct repl_leader *l, struct member *m, enum repl_follower_state s)
{
    log_info(NULL, "replication: follower %s %s", m->id, repl_follower_state_name(s));
    if (l->ev.follower != NULL)
        l->ev.follower(l->ctx, m->id, s);
}

/* ---- Commit ------------------------------------------------------------------------------- */

static void update_commit(struct repl_leader *l)
{
    uint64_t c = l->head, seq = l->committed_seq;

    for (size_t i = 0; i < l->member_count; i++) {
        if (l->members[i]->in_isr && l->members[i]->acked < c)
            c = l->members[i]->acked;
    }
    if (c <= l->commit)
        return;
    l->commit = c;
    while (l->mark_first < l->mark_count && l->marks[l->mark_first].pos <= c)
        seq = l->marks[l->mark_first++].seq;
    if (l->mark_first == l->mark_count)
        l->mark_first = l->mark_count = 0;
    l->committed_seq = seq;
    if (l->ev.commit != NULL)
        l->ev.commit(l->ctx, c, seq);
}

static void on_commit_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    update_commit(container_of(w, struct repl_leader, commit_timer));
}

/* Re-evaluates the commit soon, from the loop rather than from inside a store call. */
static void schedule_commit(struct repl_leader *l)
{
    if (!ev_is_active(&l->commit_timer)) {
        ev_timer_set(&l->commit_timer, 0., 0.);
        ev_timer_start(l->loop, &l->commit_timer);
    }
}

/* ---- Connections: closing and sending ----------------------------------------------------- */

static void conn_free(struct conn *c)
{
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->backlog);
    repl_history_free(&c->history);
    free(c->segs);
    free(c->tasks);
    free(c->node_id);
    free(c);
}

/* Closes c and frees it; the caller must not touch c afterwards. */
static void conn_close(struct conn *c, enum repl_follower_state why)
{
    struct repl_leader *l = c->l;
    struct member *m = c->m;

    ev_io_stop(l->loop, &c->rio);
    ev_io_stop(l->loop, &c->wio);
    ev_timer_stop(l->loop, &c->resume);
    repl_link_close(&c->link);
    if (c->task_fd >= 0)
        close(c->task_fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->state == C_HELLO || c->state == C_AUTH)
        l->handshakes--;
    conn_free(c);
    if (m != NULL && m->conn == c) {
        m->conn = NULL;
        m->live = false;
        report(l, m, why);
    }
}

/* Sends an ERROR and closes (the frame goes behind what is unsent, if the socket takes it
 * now: one try). */
static void conn_refuse(struct conn *c, enum repl_error code, const char *reason)
{
    repl_put_error(&c->out, code, reason);
    if (repl_link_established(&c->link))
        (void)repl_link_write(&c->link, c->out.data + c->out.sent, buf_pending(&c->out));
    conn_close(c, REPL_FOLLOWER_DISCONNECTED);
}

static uint64_t conn_pending(const struct conn *c)
{
    return buf_pending(&c->out) + buf_pending(&c->backlog);
}

/* The live stream not yet written to the socket: what backlog_max bounds (the catch-up's own
 * bytes are bounded by catchup_pump()). */
static uint64_t live_pending(const struct conn *c)
{
    uint64_t catchup_left;

    if (c->state == C_CATCHUP)
        return buf_pending(&c->backlog);
    catchup_left = c->catchup_end > c->sent_total ? c->catchup_end - c->sent_total : 0;
    return buf_pending(&c->out) - catchup_left;
}

/* Starts or stops the write watcher for what c waits for. */
static void conn_watch(struct conn *c)
{
    bool pending = buf_pending(&c->out) > 0;

    /* A catch-up that is not throttled comes back when the socket takes more. */
    if (repl_link_wants_writable(&c->link, pending) ||
        (!pending && c->state == C_CATCHUP && !c->throttled))
        ev_io_start(c->l->loop, &c->wio);
    else
        ev_io_stop(c->l->loop, &c->wio);
}

/* Writes what c->out holds; false if c was closed. */
static bool conn_flush(struct conn *c)
{
    while (buf_pending(&c->out) > 0) {
        ssize_t n = repl_link_write(&c->link, c->out.data + c->out.sent, buf_pending(&c->out));
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            log_info(NULL, "replication: follower %s: %s", c->m ? c->m->id : c->peer,
                     repl_link_error(&c->link, errno));
            conn_close(c, REPL_FOLLOWER_DISCONNECTED);
            return false;
        }
        buf_consumed(&c->out, (size_t)n);
        c->sent_total += (uint64_t)n;
    }
    conn_watch(c);
    return true;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Queues a frame given as two pieces (a head and data, which stay the caller's) to a
 * follower: written at once when nothing is queued before it, else copied behind. Drops the
 * follower (LAGGING) past backlog_max. false if c was closed. */
static bool conn_send2(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    struct repl_leader *l = c->l;
    size_t done = 0;

    if (c->state == C_CATCHUP) {
        buf_append(&c->backlog, a, alen);
        buf_append(&c->backlog, b, blen);
    } else if (c->link.tls != NULL) {
        /* TLS takes one buffer: the frame is copied behind what waits, and written at once
         * if nothing did. */
        bool idle = buf_pending(&c->out) == 0;
        buf_append(&c->out, a, alen);
        buf_append(&c->out, b, blen);
        if (idle && !conn_flush(c))
            return false;
    } else {
        if (buf_pending(&c->out) == 0) {
            struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen > 0 ? 2 : 1};
            ssize_t n;
            do
                n = sendmsg(c->link.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            while (n < 0 && errno == EINTR);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                log_info(NULL, "replication: follower %s: %s", c->m ? c->m->id : c->peer,
                         strerror(errno));
                conn_close(c, REPL_FOLLOWER_DISCONNECTED);
                return false;
            }
            done = n > 0 ? (size_t)n : 0;
            c->sent_total += done;
        }
        if (done < alen) {
            buf_append(&c->out, (const uint8_t *)a + done, alen - done);
            buf_append(&c->out, b, blen);
        } else {
            buf_append(&c->out, (const uint8_t *)b + (done - alen), blen - (done - alen));
        }
        if (buf_pending(&c->out) > 0)
            ev_io_start(l->loop, &c->wio);
    }
    if (live_pending(c) > l->backlog_max) {
        log_warn(NULL,
                 "replication: follower %s is %" PRIu64 " bytes behind (more than %" PRIu64
                 "): dropped, it catches up from the files when it reconnects",
                 c->m->id, live_pending(c), l->backlog_max);
        conn_close(c, REPL_FOLLOWER_LAGGING);
        return false;
    }
    return true;
}

/* Sends l->scratch (one encoded frame) to every follower past its handshake. */
static void broadcast_scratch(struct repl_leader *l)
{
    for (struct conn *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_CATCHUP || c->state == C_LIVE)
            conn_send2(c, l->scratch.data, l->scratch.len, NULL, 0);
    }
    l->scratch.len = l->scratch.sent = 0;
}

/* ---- The taps ----------------------------------------------------------------------------- */

static void tapped(struct repl_leader *l, uint64_t data_bytes)
{
    l->head += 1 + data_bytes;
    l->stats.live_bytes += data_bytes;
    l->tapped_this_turn = true;
    schedule_commit(l);
}

/* APPEND frames for data at offset of a file, in pieces of at most REPL_CHUNK_MAX, each
 * sent from where the data is. */
static void broadcast_append(struct repl_leader *l, enum repl_file file, uint32_t segment,
                             uint64_t offset, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t n = len < REPL_CHUNK_MAX ? len : REPL_CHUNK_MAX;
        struct wire_bytes piece = {data, n};
        uint8_t head[REPL_APPEND_HEAD];

        tapped(l, n);
        if (l->compress && l->conns != NULL &&
            repl_put_append_lz4(&l->scratch, l->head, file, segment, offset, piece)) {
            l->stats.packed_in += n;
            l->stats.packed_out += l->scratch.len - REPL_APPEND_HEAD - 4;
            broadcast_scratch(l);
        } else {
            repl_append_head(head, l->head, file, segment, offset, piece);
            for (struct conn *c = l->conns, *next; c != NULL; c = next) {
                next = c->next;
                if (c->state == C_CATCHUP || c->state == C_LIVE)
                    conn_send2(c, head, sizeof(head), data, n);
            }
        }
        data += n;
        offset += n;
        len -= n;
    }
}

static void mark_seq(struct repl_leader *l, uint64_t seq)
{
    if (seq <= l->last_seq)
        return;
    l->last_seq = seq;
    if (l->mark_count == l->mark_cap) {
        if (l->mark_first > 0) {
            memmove(l->marks, l->marks + l->mark_first,
                    (l->mark_count - l->mark_first) * sizeof(*l->marks));
            l->mark_count -= l->mark_first;
            l->mark_first = 0;
        }
        if (l->mark_count == l->mark_cap) {
            l->mark_cap = l->mark_cap ? l->mark_cap * 2 : 256;
            l->marks = xrealloc(l->marks, l->mark_cap * sizeof(*l->marks));
        }
    }
    l->marks[l->mark_count++] = (struct seq_mark){l->head, seq};
}

static void t_created(void *ctx, uint32_t segment, const uint8_t *header, size_t len)
{
    struct repl_leader *l = ctx;

    tapped(l, len);
    repl_put_create(&l->scratch, l->head, segment, (struct wire_bytes){header, len});
    broadcast_scratch(l);
}

static void t_appended(void *ctx, uint32_t segment, uint64_t offset, const uint8_t *data,
                       size_t len, uint64_t seq)
{
    struct repl_leader *l = ctx;

    broadcast_append(l, REPL_FILE_SEGMENT, segment, offset, data, len);
    mark_seq(l, seq);
}

static void t_truncated(void *ctx, uint32_t segment, uint64_t size)
{
    struct repl_leader *l = ctx;

    tapped(l, 0);
    repl_put_truncate(&l->scratch, l->head, REPL_FILE_SEGMENT, segment, size);
    broadcast_scratch(l);
}

static void t_unlinked(void *ctx, uint32_t segment)
{
    struct repl_leader *l = ctx;

    tapped(l, 0);
    repl_put_unlink(&l->scratch, l->head, segment);
    broadcast_scratch(l);
}

static void t_defs_appended(void *ctx, uint64_t offset, const uint8_t *data, size_t len)
{
    broadcast_append(ctx, REPL_FILE_DEFS, 0, offset, data, len);
}

/* REPLACE pieces of content into out; only the last carries pos, so a follower never acks
 * a position whose file is half replaced. */
static void put_replace(struct buf *out, uint64_t pos, const uint8_t *content, uint64_t size)
{
    uint64_t off = 0;

    do {
        size_t n = size - off < REPL_CHUNK_MAX ? (size_t)(size - off) : REPL_CHUNK_MAX;
        repl_put_replace(out, off + n == size ? pos : 0, size, off,
                         (struct wire_bytes){content + off, n});
        off += n;
    } while (off < size);
}

static void t_defs_replaced(void *ctx, int fd, uint64_t size)
{
    struct repl_leader *l = ctx;
    uint8_t *content = xmalloc(size > 0 ? size : 1);
    int rc = recfile_pread_all(fd, content, size, 0);

    if (rc < 0) {
        /* Followers would keep the old log: drop them all, they catch up from the file. */
        log_error(NULL, "replication: reading the compacted definitions log failed: %s",
                  strerror(-rc));
        for (struct conn *c = l->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (c->state == C_CATCHUP || c->state == C_LIVE)
                conn_close(c, REPL_FOLLOWER_DISCONNECTED);
        }
        free(content);
        return;
    }
    tapped(l, size);
    put_replace(&l->scratch, l->head, content, size);
    broadcast_scratch(l);
    free(content);
}

static const struct store_tap store_tap = {
    .segment_created = t_created,
    .segment_appended = t_appended,
    .segment_truncated = t_truncated,
    .segment_unlinked = t_unlinked,
};

static const struct defs_log_tap defs_tap = {
    .appended = t_defs_appended,
    .replaced = t_defs_replaced,
};

void repl_leader_attach(struct repl_leader *l, struct store *st, struct defs_log *defs)
{
    l->store = st;
    l->defs = defs;
    if (st != NULL)
        store_set_tap(st, &store_tap, l);
    if (defs != NULL)
        defs_log_set_tap(defs, &defs_tap, l);
}

void repl_leader_detach(struct repl_leader *l)
{
    if (l == NULL)
        return;
    if (l->store != NULL)
        store_set_tap(l->store, NULL, NULL);
    if (l->defs != NULL)
        defs_log_set_tap(l->defs, NULL, NULL);
    l->store = NULL;
    l->defs = NULL;
}

/* ---- Catch-up ----------------------------------------------------------------------------- */

static void segment_path(const struct repl_leader *l, uint32_t segment, char *out, size_t n)
{
    snprintf(out, n, "%s/msgs/%08" PRIu32 ".seg", l->data_dir, segment);
}

static int cmp_seg(const void *a, const void *b)
{
    const struct repl_manifest_seg *x = a, *y = b;

    return x->segment < y->segment ? -1 : x->segment > y->segment;
}

/* The leader's segments as they are on disk now, ascending. */
static int list_segments(const struct repl_leader *l, struct repl_manifest_seg **out, size_t *count)
{
    char path[4096];
    struct repl_manifest_seg *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "%s/msgs", l->data_dir);
    if ((d = opendir(path)) == NULL) {
        *out = NULL;
        *count = 0;
        return errno == ENOENT ? 0 : -errno;
    }
    while ((e = readdir(d)) != NULL) {
        uint32_t num = 0;
        bool ok = strlen(e->d_name) == 12 && strcmp(e->d_name + 8, ".seg") == 0;
        struct stat sb;
        for (int i = 0; ok && i < 8; i++) {
            ok = e->d_name[i] >= '0' && e->d_name[i] <= '9';
            num = num * 10 + (uint32_t)(e->d_name[i] - '0');
        }
        if (!ok || num == 0)
            continue;
        segment_path(l, num, path, sizeof(path));
        if (stat(path, &sb) < 0)
            continue; /* unlinked meanwhile: the tap told followers */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = (struct repl_manifest_seg){num, (uint64_t)sb.st_size};
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_seg);
    *out = v;
    *count = n;
    return 0;
}

static const struct repl_manifest_seg *seg_find(const struct repl_manifest_seg *v, size_t n,
                                                uint32_t segment)
{
    struct repl_manifest_seg key = {segment, 0};

    return n > 0 ? bsearch(&key, v, n, sizeof(*v), cmp_seg) : NULL;
}

/* The whole defs.log (NULL and size 0 if there is none). */
static int read_defs(const struct repl_leader *l, uint8_t **content, uint64_t *size)
{
    char path[4096];
    struct stat sb;
    int fd, rc;

    *content = NULL;
    *size = 0;
    snprintf(path, sizeof(path), "%s/defs.log", l->data_dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *size = (uint64_t)sb.st_size;
    *content = xmalloc(*size > 0 ? *size : 1);
    rc = recfile_pread_all(fd, *content, *size, 0);
    close(fd);
    if (rc < 0) {
        free(*content);
        *content = NULL;
    }
    return rc;
}

/* Works out what the follower lacks and queues what needs no file reads (removals, the
 * history, defs.log); the segment copies become tasks for catchup_pump(). */
static int catchup_plan(struct conn *c)
{
    struct repl_leader *l = c->l;
    struct repl_history lh;
    struct repl_manifest_seg *segs = NULL;
    size_t seg_count = 0;
    uint8_t *defs = NULL;
    uint64_t defs_size = 0;
    uint32_t d;
    int rc;

    if ((rc = repl_history_read(l->data_dir, &lh)) < 0) {
        log_error(NULL, "replication: reading %s/cluster.epochs failed: %s", l->data_dir,
                  strerror(-rc));
        return rc;
    }
    if ((rc = list_segments(l, &segs, &seg_count)) < 0 ||
        (rc = read_defs(l, &defs, &defs_size)) < 0) {
        log_error(NULL, "replication: reading %s failed: %s", l->data_dir, strerror(-rc));
        repl_history_free(&lh);
        free(segs);
        return rc;
    }
    d = repl_divergence(&lh, &c->history);
    c->h0 = l->head;
    c->rate_start_ms = now_ms();
    c->rate_spent = l->stats.catchup_bytes; /* minus below: what the plan queues counts */

    /* 1. What the follower has and must not keep. */
    for (size_t i = 0; i < c->seg_count; i++) {
        const struct repl_manifest_seg *f = &c->segs[i];
        const struct repl_manifest_seg *mine = seg_find(segs, seg_count, f->segment);
        if (f->segment >= d || mine == NULL || mine->size < RECFILE_FILE_HEADER_BYTES)
            repl_put_unlink(&c->out, 0, f->segment);
        else if (f->size > mine->size)
            repl_put_truncate(&c->out, 0, REPL_FILE_SEGMENT, f->segment, mine->size);
    }
    /* 2. The history, recorded by the follower once the above is durable. */
    repl_put_epoch(&c->out, l->epoch, &lh);

    /* 3. The definitions log: the missing tail, or all of it. */
    if (defs_size > 0) {
        bool prefix = c->defs_size >= RECFILE_FILE_HEADER_BYTES && c->defs_size <= defs_size &&
                      crc32c(defs, c->defs_size) == c->defs_crc;
        if (!prefix) {
            put_replace(&c->out, 0, defs, defs_size);
            l->stats.catchup_bytes += defs_size;
        } else {
            for (uint64_t off = c->defs_size; off < defs_size;) {
                size_t n =
                    defs_size - off < REPL_CHUNK_MAX ? (size_t)(defs_size - off) : REPL_CHUNK_MAX;
                repl_put_append(&c->out, 0, REPL_FILE_DEFS, 0, off,
                                (struct wire_bytes){defs + off, n});
                l->stats.catchup_bytes += n;
                off += n;
            }
        }
    }

    c->rate_spent = l->stats.catchup_bytes - c->rate_spent;

    /* 4. Segment bytes the follower lacks, read from the files as the socket drains. */
    c->tasks = xcalloc(seg_count > 0 ? seg_count : 1, sizeof(*c->tasks));
    for (size_t i = 0; i < seg_count; i++) {
        const struct repl_manifest_seg *f = seg_find(c->segs, c->seg_count, segs[i].segment);
        uint64_t have = f != NULL && f->segment < d ? f->size : 0;
        if (segs[i].size < RECFILE_FILE_HEADER_BYTES)
            continue; /* being created: its CREATE is still to come from the tap */
        if (have < RECFILE_FILE_HEADER_BYTES)
            c->tasks[c->task_count++] = (struct copy_task){segs[i].segment, true, 0, segs[i].size};
        else if (have < segs[i].size)
            c->tasks[c->task_count++] =
                (struct copy_task){segs[i].segment, false, have, segs[i].size};
    }
    log_info(NULL,
             "replication: follower %s catches up from position %" PRIu64 ": %zu of %zu "
             "segments to send, divergence at segment %" PRIu32,
             c->m->id, c->h0, c->task_count, seg_count, d);
    repl_history_free(&lh);
    free(segs);
    free(defs);
    free(c->segs);
    c->segs = NULL;
    c->seg_count = 0;
    l->stats.catchups++;
    return 0;
}

/* The catch-up is sent: the live stream that waited in the backlog follows. */
static void catchup_done(struct conn *c)
{
    c->catchup_end = c->sent_total + buf_pending(&c->out);
    repl_put_heartbeat(&c->out, c->h0, c->l->commit < c->h0 ? c->l->commit : c->h0,
                       REPL_HB_LIVE | REPL_HB_SYNC);
    buf_append(&c->out, c->backlog.data + c->backlog.sent, buf_pending(&c->backlog));
    buf_free(&c->backlog);
    /* ...and what the backlog brought is fsynced at once. */
    repl_put_heartbeat(&c->out, c->l->head, c->l->commit, REPL_HB_SYNC);
    free(c->tasks);
    c->tasks = NULL;
    c->task_count = c->task_next = 0;
    c->state = C_LIVE;
}

/* How many more file bytes c's catch-up may send now under cluster.sync_rate_limit: the
 * credit earned since the plan (rate x time) less what was sent. So a catch-up's file bytes
 * never run ahead of rate x time (definitions log queued at the plan aside), and credit not
 * used while the socket was slow is kept up to one burst (a tenth of a second's worth). */
static uint64_t catchup_allowance(struct conn *c)
{
    struct repl_leader *l = c->l;
    double credit = (double)l->sync_rate * (double)(now_ms() - c->rate_start_ms) / 1000.;
    double burst =
        l->sync_rate / 10 > RATE_BURST_MIN ? (double)(l->sync_rate / 10) : RATE_BURST_MIN;

    if (credit - (double)c->rate_spent > burst)
        c->rate_spent = (uint64_t)(credit - burst);
    return credit > (double)c->rate_spent ? (uint64_t)(credit - (double)c->rate_spent) : 0;
}

static bool catchup_pump(struct conn *c);

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = container_of(w, struct conn, resume);

    (void)loop;
    (void)revents;
    c->throttled = false;
    catchup_pump(c);
}

/* The catch-up has used its credit: it resumes from a timer once half a burst is earned
 * (the loop goes on meanwhile; only this follower's catch-up waits). */
static void throttle(struct conn *c)
{
    struct repl_leader *l = c->l;
    double credit = (double)l->sync_rate * (double)(now_ms() - c->rate_start_ms) / 1000.;
    double burst =
        l->sync_rate / 10 > RATE_BURST_MIN ? (double)(l->sync_rate / 10) : RATE_BURST_MIN;
    double owed = (double)c->rate_spent - credit;
    double wait_s = ((owed > 0 ? owed : 0) + burst / 2) / (double)l->sync_rate;

    c->throttled = true;
    ev_timer_stop(l->loop, &c->resume);
    ev_timer_set(&c->resume, wait_s > 0.001 ? wait_s : 0.001, 0.);
    ev_timer_start(l->loop, &c->resume);
}

/* Reads more of the files into c->out while the socket keeps up; at most CATCHUP_TURN bytes
 * per call (per loop turn), and no faster than cluster.sync_rate_limit. false if c was
 * closed. */
static bool catchup_pump(struct conn *c)
{
    struct repl_leader *l = c->l;
    size_t budget = CATCHUP_TURN;
    char path[4096];

    while (c->state == C_CATCHUP && buf_pending(&c->out) < CATCHUP_LOW_WATER && budget > 0) {
        struct copy_task *t;
        int rc;

        if (c->task_next == c->task_count) {
            catchup_done(c);
            break;
        }
        t = &c->tasks[c->task_next];
        segment_path(l, t->segment, path, sizeof(path));
        if (c->task_fd < 0 && (c->task_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            if (errno != ENOENT) {
                log_error(NULL, "replication: opening %s failed: %s", path, strerror(errno));
                conn_close(c, REPL_FOLLOWER_DISCONNECTED);
                return false;
            }
            /* Deleted since the plan: its UNLINK is in the backlog. */
            c->task_next++;
            continue;
        }
        if (t->from == t->to) {
            close(c->task_fd);
            c->task_fd = -1;
            c->task_next++;
            continue;
        }
        if (t->create) {
            uint8_t header[RECFILE_FILE_HEADER_BYTES];
            if ((rc = recfile_pread_all(c->task_fd, header, sizeof(header), 0)) < 0)
                goto fail;
            repl_put_create(&c->out, 0, t->segment, (struct wire_bytes){header, sizeof(header)});
            t->create = false;
            t->from = sizeof(header);
            continue;
        }
        size_t n = t->to - t->from < REPL_CHUNK_MAX ? (size_t)(t->to - t->from) : REPL_CHUNK_MAX;
        if (n > budget)
            n = budget;
        if (l->sync_rate > 0) {
            uint64_t allowed = catchup_allowance(c);
            if (allowed == 0) {
                throttle(c);
                break;
            }
            if (n > allowed)
                n = (size_t)allowed;
            c->rate_spent += n;
        }
        /* Straight from the file into the stream: one copy (compressed: read into the
         * leader's scratch buffer, then packed into the stream). */
        if (l->compress) {
            l->zbuf.len = 0;
            buf_reserve(&l->zbuf, n);
            if ((rc = recfile_pread_all(c->task_fd, l->zbuf.data, n, t->from)) < 0)
                goto fail;
            size_t before = c->out.len;
            if (repl_put_append_lz4(&c->out, 0, REPL_FILE_SEGMENT, t->segment, t->from,
                                    (struct wire_bytes){l->zbuf.data, n})) {
                l->stats.packed_in += n;
                l->stats.packed_out += c->out.len - before - REPL_APPEND_HEAD - 4;
            } else {
                repl_put_append(&c->out, 0, REPL_FILE_SEGMENT, t->segment, t->from,
                                (struct wire_bytes){l->zbuf.data, n});
            }
        } else {
            buf_reserve(&c->out, REPL_APPEND_HEAD + n);
            uint8_t *head = c->out.data + c->out.len;
            if ((rc = recfile_pread_all(c->task_fd, head + REPL_APPEND_HEAD, n, t->from)) < 0)
                goto fail;
            repl_append_head(head, 0, REPL_FILE_SEGMENT, t->segment, t->from,
                             (struct wire_bytes){head + REPL_APPEND_HEAD, n});
            c->out.len += REPL_APPEND_HEAD + n;
        }
        t->from += n;
        budget -= n;
        l->stats.catchup_bytes += n;
        continue;
    fail:
        log_error(NULL, "replication: reading %s failed: %s", path, strerror(-rc));
        conn_close(c, REPL_FOLLOWER_DISCONNECTED);
        return false;
    }
    return conn_flush(c);
}

/* ---- Handshake and acks ------------------------------------------------------------------- */

static bool on_hello(struct conn *c, const struct repl_hello *h)
{
    struct repl_leader *l = c->l;
    uint8_t mac[REPL_MAC_BYTES];

    if (h->version != REPL_VERSION) {
        log_warn(NULL, "replication: %s speaks version %u, this node %u: refused", c->peer,
                 h->version, REPL_VERSION);
        conn_refuse(c, REPL_ERROR_VERSION, "unsupported replication version");
        return false;
    }
    c->node_id = xstrndup_bytes(h->node_id);
    c->epoch_seen = h->epoch_seen;
    memcpy(c->nonce_f, h->nonce, REPL_NONCE_BYTES);
    repl_history_from_list(h->history, h->history_count, &c->history);
    c->seg_count = h->segment_count;
    c->segs = xcalloc(c->seg_count > 0 ? c->seg_count : 1, sizeof(*c->segs));
    for (uint32_t i = 0; i < h->segment_count; i++)
        repl_manifest_entry(h->segments, i, &c->segs[i].segment, &c->segs[i].size);
    c->defs_size = h->defs_size;
    c->defs_crc = h->defs_crc;

    random_bytes(c->nonce_l, sizeof(c->nonce_l));
    repl_mac(mac, (struct wire_bytes){l->secret, l->secret_len}, REPL_ROLE_LEADER, c->nonce_f,
             c->nonce_l, h->node_id, wire_cstr(l->node_id), l->epoch);
    repl_put_challenge(&c->out, l->epoch, c->nonce_l, mac, wire_cstr(l->node_id));
    c->state = C_AUTH;
    return conn_flush(c);
}

static bool on_auth(struct conn *c, const uint8_t *mac)
{
    struct repl_leader *l = c->l;
    uint8_t want[REPL_MAC_BYTES];
    struct member *m;

    repl_mac(want, (struct wire_bytes){l->secret, l->secret_len}, REPL_ROLE_FOLLOWER, c->nonce_f,
             c->nonce_l, wire_cstr(c->node_id), wire_cstr(l->node_id), c->epoch_seen);
    if (!repl_mac_equal(want, mac)) {
        log_warn(NULL,
                 "replication: %s (calling itself %s) does not know the cluster secret: "
                 "refused",
                 c->peer, c->node_id);
        l->stats.auth_failures++;
        conn_refuse(c, REPL_ERROR_AUTH, "authentication failed");
        return false;
    }
    if (c->epoch_seen > l->epoch) {
        char id[REPL_NODE_ID_MAX + 1];
        uint64_t epoch = c->epoch_seen;
        log_warn(NULL,
                 "replication: follower %s has seen epoch %" PRIu64 ", above this leader's %" PRIu64
                 ": refused; this node may have been deposed",
                 c->node_id, epoch, l->epoch);
        snprintf(id, sizeof(id), "%s", c->node_id);
        conn_refuse(c, REPL_ERROR_DEPOSED, "a newer epoch exists");
        if (l->ev.deposed != NULL)
            l->ev.deposed(l->ctx, id, epoch);
        return false;
    }
    if (strcmp(c->node_id, l->node_id) == 0) {
        log_warn(NULL, "replication: %s claims this leader's own node id %s: refused", c->peer,
                 c->node_id);
        conn_refuse(c, REPL_ERROR_PROTOCOL, "node id in use by the leader");
        return false;
    }
    m = member_get(l, c->node_id);
    if (m->conn != NULL) {
        log_info(NULL, "replication: follower %s reconnected; closing its old connection", m->id);
        conn_close(m->conn, REPL_FOLLOWER_DISCONNECTED);
    }
    l->handshakes--;
    c->state = C_CATCHUP;
    c->m = m;
    m->conn = c;
    m->live = false;
    if (catchup_plan(c) < 0) {
        conn_refuse(c, REPL_ERROR_IO, "the leader cannot read its files");
        return false;
    }
    report(l, m, REPL_FOLLOWER_CONNECTED);
    return catchup_pump(c);
}

static bool on_ack(struct conn *c, uint64_t pos)
{
    struct repl_leader *l = c->l;
    struct member *m = c->m;

    if (pos > l->head) {
        log_warn(NULL, "replication: follower %s acked position %" PRIu64 " beyond %" PRIu64, m->id,
                 pos, l->head);
        conn_refuse(c, REPL_ERROR_PROTOCOL, "ack beyond the stream");
        return false;
    }
    if (pos > m->acked) {
        m->acked = pos;
        if (l->ev.acked != NULL)
            l->ev.acked(l->ctx, m->id, pos);
    }
    if (!m->live && c->state == C_LIVE && m->acked >= c->h0) {
        m->live = true;
        report(l, m, REPL_FOLLOWER_LIVE);
    }
    update_commit(l);
    return m->conn == c;
}

/* One frame from a follower; false if c was closed. */
static bool on_frame(struct conn *c, const struct repl_frame *f)
{
    struct repl_msg msg;

    if (repl_decode(f, &msg) != REPL_OK) {
        log_warn(NULL, "replication: %s sent a malformed %s frame", c->peer,
                 repl_type_name(f->type));
        conn_refuse(c, REPL_ERROR_PROTOCOL, "malformed frame");
        return false;
    }
    if (msg.type == REPL_ERROR) {
        log_warn(NULL, "replication: follower %s: %s: %.*s", c->node_id ? c->node_id : c->peer,
                 repl_error_text(msg.u.error.code), (int)msg.u.error.reason.len,
                 (const char *)msg.u.error.reason.ptr);
        conn_close(c, REPL_FOLLOWER_DISCONNECTED);
        return false;
    }
    if (c->state == C_HELLO && msg.type == REPL_HELLO)
        return on_hello(c, &msg.u.hello);
    if (c->state == C_AUTH && msg.type == REPL_AUTH)
        return on_auth(c, msg.u.mac);
    if ((c->state == C_CATCHUP || c->state == C_LIVE) && msg.type == REPL_ACK)
        return on_ack(c, msg.pos);
    log_warn(NULL, "replication: %s sent %s out of turn", c->peer, repl_type_name(msg.type));
    conn_refuse(c, REPL_ERROR_PROTOCOL, "unexpected frame");
    return false;
}

/* Reads what the socket (or TLS) has and handles the frames; false if c was closed. */
static bool conn_read(struct conn *c)
{
    struct repl_leader *l = c->l;
    struct repl_frame f;
    ssize_t n;
    int rc;

    buf_reserve(&c->in, READ_BYTES);
    n = repl_link_read(&c->link, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n < 0 && errno == EAGAIN) {
        /* A TLS read that must write first (a handshake message), or a write that waited
         * for this read. */
        if (c->link.write_waits_read && buf_pending(&c->out) > 0)
            return conn_flush(c);
        conn_watch(c);
        return true;
    }
    if (n <= 0) {
        int err = n == 0 ? 0 : errno;
        if (c->link.tls != NULL && !repl_link_established(&c->link)) {
            const char *why = repl_link_error(&c->link, err);
            char more[64];
            int level = repl_warn_level(&l->tls_warn, why, now_ms(), more, sizeof(more));
            LOG_AT(level, NULL,
                   "replication: %s: %s: refused (this node requires TLS, cluster.tls.*; the "
                   "follower must use it too, with a certificate of the same CA)%s",
                   c->peer, why, more);
        } else if (c->m != NULL)
            log_info(NULL, "replication: follower %s: %s", c->m->id,
                     repl_link_error(&c->link, err));
        conn_close(c, REPL_FOLLOWER_DISCONNECTED);
        return false;
    }
    if (c->state == C_HELLO && c->link.tls == NULL && c->in.len == 0 &&
        repl_link_looks_like_tls(c->in.data, (size_t)n)) {
        char more[64];
        int level = repl_warn_level(&l->tls_warn, "speaks TLS", now_ms(), more, sizeof(more));
        LOG_AT(level, NULL,
               "replication: %s speaks TLS, but this node has no cluster.tls.*: refused "
               "(configure TLS on every node or on none)%s",
               c->peer, more);
        conn_close(c, REPL_FOLLOWER_DISCONNECTED);
        return false;
    }
    c->in.len += (size_t)n;
    c->last_rx_ms = now_ms();
    for (;;) {
        /* Only a HELLO is big; after it a follower sends small frames only. */
        uint32_t max = c->state == C_HELLO ? REPL_FRAME_MAX : REPL_SMALL_FRAME_MAX;
        rc = repl_frame_next(c->in.data + c->in.sent, buf_pending(&c->in), max, &f);
        if (rc == REPL_NEED_MORE)
            break;
        if (rc != REPL_OK) {
            log_warn(NULL, "replication: %s: %s", c->peer, repl_status_text(rc));
            conn_refuse(c, REPL_ERROR_PROTOCOL, repl_status_text(rc));
            return false;
        }
        if (!on_frame(c, &f))
            return false;
        buf_consumed(&c->in, f.size);
    }
    /* TLS may hold decrypted bytes the socket's readiness does not show. */
    if (repl_link_pending(&c->link))
        ev_feed_event(l->loop, &c->rio, EV_READ);
    if (c->link.write_waits_read && buf_pending(&c->out) > 0)
        return conn_flush(c);
    return true;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_read(container_of(w, struct conn, rio));
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, wio);

    (void)loop;
    (void)revents;
    if (c->link.read_waits_write && !conn_read(c))
        return;
    if (c->state == C_CATCHUP && !c->throttled)
        catchup_pump(c);
    else
        conn_flush(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct repl_leader *l = container_of(w, struct repl_leader, accept_io);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct conn *c;
    int fd, one = 1;

    (void)revents;
    fd = accept4(l->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_warn(NULL, "replication: accept failed: %s", strerror(errno));
        return;
    }
    if (l->handshakes >= MAX_HANDSHAKES) {
        log_warn(NULL, "replication: %d handshakes under way: connection refused", MAX_HANDSHAKES);
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = xcalloc(1, sizeof(*c));
    c->l = l;
    repl_link_init(&c->link, fd, l->tls, false);
    ev_init(&c->resume, on_resume);
    c->task_fd = -1;
    c->state = C_HELLO;
    c->last_rx_ms = c->accepted_ms = now_ms();
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&sa;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", a, ntohs(in->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", a, ntohs(in6->sin6_port));
    } else {
        snprintf(c->peer, sizeof(c->peer), "unknown");
    }
    ev_io_init(&c->rio, on_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
    ev_io_start(loop, &c->rio);
    c->next = l->conns;
    if (l->conns != NULL)
        l->conns->prev = c;
    l->conns = c;
    l->handshakes++;
}

/* ---- Timers ------------------------------------------------------------------------------- */

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct repl_leader *l = container_of(w, struct repl_leader, tick);
    uint64_t now = now_ms();

    (void)loop;
    (void)revents;
    for (struct conn *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        /* A handshake has timeout_ms in all, however it trickles in. */
        bool handshaking = c->state == C_HELLO || c->state == C_AUTH;
        if (now - c->last_rx_ms > l->timeout_ms ||
            (handshaking && now - c->accepted_ms > l->timeout_ms)) {
            log_warn(NULL, "replication: follower %s silent for %" PRIu64 " ms: dropped",
                     c->m ? c->m->id : c->peer, now - c->last_rx_ms);
            conn_close(c, REPL_FOLLOWER_DISCONNECTED);
            continue;
        }
        if (c->state == C_LIVE) {
            repl_put_heartbeat(&l->scratch, l->head, l->commit, 0);
            conn_send2(c, l->scratch.data, l->scratch.len, NULL, 0);
            l->scratch.len = l->scratch.sent = 0;
        }
    }
}

/* After the store's own end-of-turn write (this watcher has the lowest priority): ask the
 * followers to fsync what this turn sent them. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct repl_leader *l = container_of(w, struct repl_leader, prepare);

    (void)loop;
    (void)revents;
    if (!l->sync_requested && (l->lazy_sync || !l->tapped_this_turn))
        return;
    l->sync_requested = false;
    l->tapped_this_turn = false;
    repl_put_heartbeat(&l->scratch, l->head, l->commit, REPL_HB_SYNC);
    for (struct conn *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_LIVE)
            conn_send2(c, l->scratch.data, l->scratch.len, NULL, 0);
    }
    l->scratch.len = l->scratch.sent = 0;
}

void repl_leader_request_sync(struct repl_leader *l)
{
    l->sync_requested = true;
}

/* ---- Life cycle --------------------------------------------------------------------------- */

struct repl_leader *repl_leader_new(struct ev_loop *loop, const struct repl_leader_options *o,
                                    const struct repl_leader_events *events, void *ctx, char *err,
                                    size_t err_size)
{
    struct repl_leader *l;

    if (o->node_id == NULL || strlen(o->node_id) == 0 || strlen(o->node_id) > REPL_NODE_ID_MAX) {
        snprintf(err, err_size, "the node id must have 1 to %d bytes", REPL_NODE_ID_MAX);
        return NULL;
    }
    if (o->data_dir == NULL || o->epoch == 0) {
        snprintf(err, err_size, "a data directory and an epoch above 0 are needed");
        return NULL;
    }
    l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->node_id = xstrdup(o->node_id);
    l->data_dir = xstrdup(o->data_dir);
    l->secret_len = o->secret.len;
    l->secret = xmalloc(o->secret.len > 0 ? o->secret.len : 1);
    if (o->secret.len > 0)
        memcpy(l->secret, o->secret.ptr, o->secret.len);
    l->epoch = o->epoch;
    l->backlog_max = o->backlog_max ? o->backlog_max : REPL_DEFAULT_BACKLOG_MAX;
    l->sync_rate = o->sync_rate;
    l->tls = o->tls;
    l->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : REPL_DEFAULT_HEARTBEAT_MS;
    l->timeout_ms = o->timeout_ms ? o->timeout_ms : REPL_DEFAULT_TIMEOUT_MS;
    l->lazy_sync = o->lazy_sync;
    l->compress = o->compress;
    if (events != NULL)
        l->ev = *events;
    l->ctx = ctx;
    l->listen_fd = -1;

    ev_timer_init(&l->tick, on_tick, l->heartbeat_ms / 1000., l->heartbeat_ms / 1000.);
    ev_timer_start(loop, &l->tick);
    ev_unref(loop); /* heartbeats alone do not keep the loop running */
    ev_init(&l->commit_timer, on_commit_timer);
    ev_prepare_init(&l->prepare, on_prepare);
    ev_set_priority(&l->prepare, EV_MINPRI);
    ev_prepare_start(loop, &l->prepare);
    ev_unref(loop);
    return l;
}

int repl_leader_listen(struct repl_leader *l, const char *address, char *err, size_t err_size)
{
    bool in_progress;
    int fd = repl_socket(address, true, &in_progress, err, err_size);

    if (fd < 0)
        return fd;
    repl_leader_listen_fd(l, fd);
    log_info(NULL, "replication: leader of epoch %" PRIu64 " listening on %s (port %u)", l->epoch,
             address, repl_leader_port(l));
    return 0;
}

void repl_leader_listen_fd(struct repl_leader *l, int fd)
{
    int flags = fcntl(fd, F_GETFL);

    assert(l->listen_fd < 0);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    l->listen_fd = fd;
    ev_io_init(&l->accept_io, on_accept, fd, EV_READ);
    ev_io_start(l->loop, &l->accept_io);
    if (l->tls != NULL)
        log_info(NULL, "replication: the replication port speaks TLS only (cluster.tls.*)");
    ev_unref(l->loop); /* listening alone does not keep the loop running */
}

uint16_t repl_leader_port(const struct repl_leader *l)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);

    if (l->listen_fd < 0 || getsockname(l->listen_fd, (struct sockaddr *)&sa, &len) < 0)
        return 0;
    if (sa.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    if (sa.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    return 0;
}

uint64_t repl_leader_position(const struct repl_leader *l)
{
    return l->head;
}

uint64_t repl_leader_commit(const struct repl_leader *l)
{
    return l->commit;
}

uint64_t repl_leader_committed_seq(const struct repl_leader *l)
{
    return l->committed_seq;
}

void repl_leader_set_isr(struct repl_leader *l, const char *const *ids, size_t count)
{
    for (size_t i = 0; i < l->member_count; i++)
        l->members[i]->in_isr = false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(ids[i], l->node_id) != 0 && strlen(ids[i]) <= REPL_NODE_ID_MAX)
            member_get(l, ids[i])->in_isr = true;
    }
    schedule_commit(l);
}

size_t repl_leader_followers(const struct repl_leader *l, struct repl_follower_info *out,
                             size_t max)
{
    for (size_t i = 0; i < l->member_count && i < max; i++) {
        const struct member *m = l->members[i];
        out[i] = (struct repl_follower_info){
            .node_id = m->id,
            .connected = m->conn != NULL,
            .live = m->live,
            .in_isr = m->in_isr,
            .acked = m->acked,
            .pending_bytes = m->conn != NULL ? conn_pending(m->conn) : 0,
        };
    }
    return l->member_count;
}

void repl_leader_stats(const struct repl_leader *l, struct repl_leader_stats *out)
{
    *out = l->stats;
}

void repl_leader_free(struct repl_leader *l)
{
    if (l == NULL)
        return;
    /* No reports from here on: the caller is tearing the leader down. */
    l->ev = (struct repl_leader_events){0};
    while (l->conns != NULL)
        conn_close(l->conns, REPL_FOLLOWER_DISCONNECTED);
    if (l->listen_fd >= 0) {
        ev_ref(l->loop);
        ev_io_stop(l->loop, &l->accept_io);
        close(l->listen_fd);
    }
    ev_ref(l->loop);
    ev_timer_stop(l->loop, &l->tick);
    ev_ref(l->loop);
    ev_prepare_stop(l->loop, &l->prepare);
    ev_timer_stop(l->loop, &l->commit_timer);
    for (size_t i = 0; i < l->member_count; i++) {
        free(l->members[i]->id);
        free(l->members[i]);
    }
    free(l->members);
    free(l->marks);
    buf_free(&l->scratch);
    buf_free(&l->zbuf);
    free(l->node_id);
    free(l->data_dir);
    OPENSSL_cleanse(l->secret, l->secret_len);
    free(l->secret);
    free(l);
}
