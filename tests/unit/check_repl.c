/* Replication end to end (src/cluster/repl_leader.h, repl_follower.h): a leader's store and
 * definitions log with the leader's taps, real TCP on loopback, followers with data
 * directories of their own. After the follower acks, its segments and defs.log equal the
 * leader's byte for byte and a store opened on them recovers the same messages: live, after
 * a catch-up from nothing, after an incremental catch-up, after a divergent tail of an
 * older epoch was cut. Refusals: a wrong secret (each side), a leader of a lower epoch. The
 * commit position waits for a disconnected ISR member and moves once it is removed; a
 * follower whose backlog passes its bound is dropped and catches up again; a refused
 * connect is reported as such. The mirror tests run again with cluster.compression = lz4
 * (APPEND_LZ4 frames live and in catch-ups: the follower's files are the same).
 *
 * Over TLS (cluster.tls.*, certificates made by tls_certs.sh at test time): a catch-up of
 * several MB and the live stream arrive byte for byte; a follower or a leader whose
 * certificate another CA signed, and a plain end meeting a TLS end (both ways), are refused
 * with a warning on both sides (once: repeats go to the debug level), and the follower keeps
 * retrying; a bad certificate, key or CA file is named in the error. cluster.sync_rate_limit:
 * a catch-up of X bytes at L bytes/s takes at least X/L and arrives complete.
 *
 * Most tests run the leader and the follower on one loop (both are non-blocking); the first
 * runs the follower on a thread and loop of its own. Set REPL_TEST_LOG=1 for the logs. */
#define _GNU_SOURCE
#include "src/cluster/repl_follower.h"
#include "src/cluster/repl_leader.h"

#include <check.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "src/base/buf.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/repl_link.h"
#include "src/cluster/repl_proto.h"
#include "src/security/tls.h"
#include "src/store/defs_log.h"
#include "src/store/recfile.h"
#include "src/store/store.h"
#include "tests/unit/check_repl_util.h"

#define SECRET    "correct horse battery staple"
#define SEG_BYTES 16384
#define WAIT_MS   10000

static char root[512], ldir[600], fdir[600], f2dir[600];
static struct ev_loop *loop;
static char address[64];
static bool lz4; /* the leader compresses (the "mirror, lz4" case) */

/* Per test, reset by setup(): what leader_start() and follower_start() use. */
static unsigned segment_bytes;
static struct tls_server *leader_tls, *follower_tls; /* NULL: plain TCP */
static uint64_t leader_sync_rate;
static char cert_dir[512]; /* tls_certs.sh's files, made once in main() ("" if not made) */

/* ---- What the callbacks saw --------------------------------------------------------------- */

static struct {
    unsigned connected, live, lagging, disconnected, deposed;
    uint64_t deposed_epoch;
    uint64_t commit_pos, commit_seq;
} lev;

static struct {
    unsigned connected, caught_up, lost, refused, rejected;
    enum repl_reject why;
    uint64_t epoch;
} fev;

static void l_follower(void *ctx, const char *id, enum repl_follower_state s)
{
    (void)ctx;
    (void)id;
    if (s == REPL_FOLLOWER_CONNECTED)
        lev.connected++;
    else if (s == REPL_FOLLOWER_LIVE)
        lev.live++;
    else if (s == REPL_FOLLOWER_LAGGING)
        lev.lagging++;
    else
        lev.disconnected++;
}

static void l_commit(void *ctx, uint64_t pos, uint64_t seq)
{
    (void)ctx;
    ck_assert_uint_gt(pos, lev.commit_pos);
    ck_assert_uint_ge(seq, lev.commit_seq);
    lev.commit_pos = pos;
    lev.commit_seq = seq;
}

static void l_deposed(void *ctx, const char *id, uint64_t epoch)
{
    (void)ctx;
    (void)id;
    lev.deposed++;
    lev.deposed_epoch = epoch;
}

static const struct repl_leader_events leader_events = {
    .follower = l_follower,
    .commit = l_commit,
    .deposed = l_deposed,
};

static void f_connected(void *ctx, uint64_t epoch)
{
    (void)ctx;
    (void)epoch;
    fev.connected++;
}

static void f_caught_up(void *ctx, uint64_t pos)
{
    (void)ctx;
    (void)pos;
    fev.caught_up++;
}

static void f_lost(void *ctx, int err, bool refused)
{
    (void)ctx;
    (void)err;
    fev.lost++;
    if (refused)
        fev.refused++;
}

static void f_rejected(void *ctx, enum repl_reject why, uint64_t epoch)
{
    (void)ctx;
    fev.rejected++;
    fev.why = why;
    fev.epoch = epoch;
}

static const struct repl_follower_events follower_events = {
    .connected = f_connected,
    .caught_up = f_caught_up,
    .lost = f_lost,
    .rejected = f_rejected,
};

/* ---- Fixture ------------------------------------------------------------------------------ */

static void setup(void)
{
    repl_test_mkdtemp(root, sizeof(root), "check_repl");
    snprintf(ldir, sizeof(ldir), "%s/leader", root);
    snprintf(fdir, sizeof(fdir), "%s/follower", root);
    snprintf(f2dir, sizeof(f2dir), "%s/follower2", root);
    loop = ev_loop_new(EVFLAG_AUTO);
    log_set_level(getenv("REPL_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_NONE);
    memset(&lev, 0, sizeof(lev));
    memset(&fev, 0, sizeof(fev));
    segment_bytes = SEG_BYTES;
    leader_tls = follower_tls = NULL;
    leader_sync_rate = 0;
}

static void setup_lz4(void)
{
    setup();
    lz4 = true;
}

static void teardown(void)
{
    lz4 = false;
    log_close_file();
    log_set_console(true);
    tls_server_free(leader_tls);
    tls_server_free(follower_tls);
    repl_test_rm_rf(root);
    ev_loop_destroy(loop);
}

static void on_poll(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

/* Runs the loop until cond holds or ms pass; returns cond. */
static bool run_until(bool (*cond)(void *), void *arg, unsigned ms)
{
    uint64_t deadline = now_ms() + ms;
    ev_timer t;

    ev_timer_init(&t, on_poll, 0.002, 0.002);
    ev_timer_start(loop, &t);
    while (!cond(arg) && now_ms() < deadline)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return cond(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void run_for(unsigned ms)
{
    run_until(never, NULL, ms);
}

/* ---- The leader's side -------------------------------------------------------------------- */

struct leader {
    struct store *st;
    struct defs_log *defs;
    struct repl_leader *l;
};

static struct store *open_store(const char *dir)
{
    struct store_options opts = {.segment_bytes = segment_bytes};
    char err[256] = "";
    struct store *st = store_open(loop, dir, &opts, err, sizeof(err));

    ck_assert_msg(st != NULL, "store_open: %s", err);
    return st;
}

static struct defs_log *open_defs(const char *dir)
{
    struct defs_log_options o = {.compact_min_bytes = 2048, .compact_ratio = 2};
    char p[700], err[256] = "";
    struct defs_log *d;

    snprintf(p, sizeof(p), "%s/defs.log", dir);
    d = defs_log_open(p, &o, err, sizeof(err));
    ck_assert_msg(d != NULL, "defs_log_open: %s", err);
    return d;
}

/* What a new leader of epoch does: store recovered, a segment of its own, the epoch
 * recorded, the replication port open (when listen), the taps attached. */
static void leader_start(struct leader *L, uint64_t epoch, uint64_t backlog_max, bool listen)
{
    struct repl_leader_options o = {
        .node_id = "leader",
        .data_dir = ldir,
        .secret = wire_cstr(SECRET),
        .epoch = epoch,
        .backlog_max = backlog_max,
        .heartbeat_ms = 50,
        .compress = lz4,
        .sync_rate = leader_sync_rate,
        .tls = leader_tls,
    };
    char err[256] = "";
    uint32_t seg;

    L->st = open_store(ldir);
    ck_assert_int_eq(store_recover(L->st, NULL, NULL), 0);
    ck_assert_int_eq(store_roll_segment(L->st, 0, &seg), 0);
    ck_assert_int_eq(repl_begin_epoch(ldir, epoch, seg), 0);
    L->defs = open_defs(ldir);
    L->l = repl_leader_new(loop, &o, &leader_events, NULL, err, sizeof(err));
    ck_assert_msg(L->l != NULL, "repl_leader_new: %s", err);
    if (listen) {
        ck_assert_msg(repl_leader_listen(L->l, "127.0.0.1:0", err, sizeof(err)) == 0, "%s", err);
        snprintf(address, sizeof(address), "127.0.0.1:%u", repl_leader_port(L->l));
    }
    repl_leader_attach(L->l, L->st, L->defs);
}

/* Closes the store and the log (what they write at close is tapped too). */
static void leader_close_files(struct leader *L)
{
    store_close(L->st);
    defs_log_close(L->defs);
    repl_leader_attach(L->l, NULL, NULL); /* forgets them, they are gone */
    L->st = NULL;
    L->defs = NULL;
}

static void leader_stop(struct leader *L)
{
    if (L->st != NULL)
        leader_close_files(L);
    if (lz4) {
        /* The test's messages are mostly one letter repeated: LZ4 takes most of it. */
        struct repl_leader_stats stats;
        repl_leader_stats(L->l, &stats);
        ck_assert_uint_gt(stats.packed_in, 0);
        ck_assert_uint_lt(stats.packed_out * 2, stats.packed_in);
    }
    repl_leader_free(L->l);
    L->l = NULL;
}

/* ---- Workload ----------------------------------------------------------------------------- */

struct workload {
    struct store_loc locs[8192];
    uint32_t queue[8192];
    size_t count, acked;
    unsigned n;
};

static void publish(struct leader *L, struct workload *w, unsigned count)
{
    static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
    static const uint32_t queues[] = {1, 2, 3};
    char body[400];

    for (unsigned i = 0; i < count; i++, w->n++) {
        size_t len = 50 + (w->n * 53) % 300;
        uint32_t q = queues[w->n % 3];
        struct store_msg m = {
            .queue_ids = &q,
            .queue_count = 1,
            .exchange = wire_cstr("amq.direct"),
            .routing_key = wire_cstr("rk"),
            .header = {header, sizeof(header)},
            .body = {(const uint8_t *)body, len},
        };
        memset(body, 'a' + (char)(w->n % 26), len);
        snprintf(body, sizeof(body), "message %u", w->n);
        ck_assert_uint_lt(w->count, 8192);
        ck_assert_uint_gt(store_append_message(L->st, &m, &w->locs[w->count]), 0);
        w->queue[w->count++] = q;
        if (i % 64 == 63)
            run_for(1);
    }
}

/* Acks the oldest count messages not acked yet: whole segments empty and go. */
static void ack_oldest(struct leader *L, struct workload *w, unsigned count)
{
    for (unsigned i = 0; i < count && w->acked < w->count; i++, w->acked++) {
        store_ack(L->st, w->queue[w->acked], w->locs[w->acked]);
        if (i % 64 == 63)
            run_for(1);
    }
}

static void define(struct leader *L, unsigned count, unsigned salt)
{
    char key[32], value[96];

    for (unsigned i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "queue-%u", i % 9);
        snprintf(value, sizeof(value), "definition %u of queue %u, salt %u", i, i % 9, salt);
        ck_assert_int_eq(defs_log_put(L->defs, DEFS_KIND_QUEUE, wire_cstr(key), wire_cstr(value)),
                         0);
    }
}

/* ---- Checks ------------------------------------------------------------------------------- */

static bool committed_everything(void *arg)
{
    struct leader *L = arg;
    return repl_leader_commit(L->l) == repl_leader_position(L->l);
}

static bool follower_caught_up(void *arg)
{
    (void)arg;
    return fev.caught_up > 0;
}

static bool leader_saw_live(void *arg)
{
    (void)arg;
    return lev.live > 0;
}

static struct repl_follower *follower_start(const char *dir, const char *id, const char *secret)
{
    struct repl_follower_options o = {
        .node_id = id,
        .data_dir = dir,
        .leader_address = address,
        .secret = wire_cstr(secret),
        .retry_ms = 20,
        .tls = follower_tls,
    };
    char err[256] = "";
    struct repl_follower *f = repl_follower_new(loop, &o, &follower_events, NULL, err, sizeof(err));

    ck_assert_msg(f != NULL, "repl_follower_new: %s", err);
    return f;
}

struct recovered {
    struct store_recovered v[8192];
    size_t n;
};

static void on_recovered(void *ctx, const struct store_recovered *r)
{
    struct recovered *out = ctx;

    ck_assert_uint_lt(out->n, 8192);
    out->v[out->n++] = *r;
}

/* A store opened on dir finds these live messages. */
static void recover_dir(const char *dir, struct recovered *out)
{
    struct store *st = open_store(dir);

    out->n = 0;
    ck_assert_int_eq(store_recover(st, on_recovered, out), 0);
    store_close(st);
}

/* The follower's files are the leader's, and recover to the same messages. */
static void assert_mirrored(const char *follower_dir, size_t expect_live)
{
    static struct recovered a, b;
    char pa[700], pb[700];

    ck_assert_uint_gt(repl_test_assert_same_dirs(ldir, follower_dir), 0);
    snprintf(pa, sizeof(pa), "%s/cluster.epochs", ldir);
    snprintf(pb, sizeof(pb), "%s/cluster.epochs", follower_dir);
    repl_test_assert_same_file(pa, pb);
    recover_dir(follower_dir, &a);
    recover_dir(ldir, &b);
    ck_assert_uint_eq(a.n, expect_live);
    ck_assert_uint_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_uint_eq(a.v[i].queue_id, b.v[i].queue_id);
        ck_assert_uint_eq(a.v[i].loc.segment, b.v[i].loc.segment);
        ck_assert_uint_eq(a.v[i].loc.offset, b.v[i].loc.offset);
        ck_assert_uint_eq(a.v[i].loc.size, b.v[i].loc.size);
    }
}

static uint64_t dir_segment_bytes(const char *dir)
{
    static char names[4096][16];
    size_t n = repl_test_list_segs(dir, names, 4096);
    uint64_t total = 0;
    char p[700];
    struct stat sb;

    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/msgs/%s", dir, names[i]);
        ck_assert_int_eq(stat(p, &sb), 0);
        total += (uint64_t)sb.st_size;
    }
    return total;
}

/* ---- A follower on a thread of its own ---------------------------------------------------- */

struct fthread {
    pthread_t thread;
    struct ev_loop *loop;
    ev_async stop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool ready;
    const char *dir;
};

static void on_stop(struct ev_loop *l, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(l, EVBREAK_ALL);
}

static void *fthread_main(void *arg)
{
    struct fthread *t = arg;
    struct repl_follower_options o = {
        .node_id = "f1",
        .data_dir = t->dir,
        .leader_address = address,
        .secret = wire_cstr(SECRET),
        .retry_ms = 20,
    };
    char err[256] = "";
    struct repl_follower *f;

    t->loop = ev_loop_new(EVFLAG_AUTO);
    ev_async_init(&t->stop, on_stop);
    ev_async_start(t->loop, &t->stop);
    f = repl_follower_new(t->loop, &o, NULL, NULL, err, sizeof(err));
    pthread_mutex_lock(&t->mu);
    t->ready = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    if (f != NULL)
        ev_run(t->loop, 0);
    repl_follower_free(f);
    ev_async_stop(t->loop, &t->stop);
    ev_loop_destroy(t->loop);
    return NULL;
}

static void fthread_start(struct fthread *t, const char *dir)
{
    *t = (struct fthread){.dir = dir};
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    ck_assert_int_eq(pthread_create(&t->thread, NULL, fthread_main, t), 0);
    pthread_mutex_lock(&t->mu);
    while (!t->ready)
        pthread_cond_wait(&t->cond, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static void fthread_stop(struct fthread *t)
{
    ev_async_send(t->loop, &t->stop);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
}

/* ---- Tests -------------------------------------------------------------------------------- */

START_TEST(live_stream_mirrors_the_leader_byte_for_byte)
{
    static struct leader L;
    static struct workload w;
    static const char *const isr[] = {"f1"};
    struct store_stats stats;
    struct fthread t;

    memset(&w, 0, sizeof(w));
    leader_start(&L, 7, 0, true);
    repl_leader_set_isr(L.l, isr, 1);
    fthread_start(&t, fdir);
    ck_assert(run_until(committed_everything, &L, WAIT_MS)); /* connected, caught up */

    define(&L, 20, 1);
    publish(&L, &w, 600);
    run_for(20);
    ack_oldest(&L, &w, 350);
    define(&L, 60, 2); /* past the compaction threshold */
    publish(&L, &w, 200);
    ack_oldest(&L, &w, 100);
    /* The commit covers every append of the store once the follower acked them. */
    store_flush(L.st);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    store_stats(L.st, &stats);
    ck_assert_uint_eq(repl_leader_committed_seq(L.l), stats.appended_seq);
    ck_assert_uint_eq(lev.commit_seq, stats.appended_seq);

    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    fthread_stop(&t);
    ck_assert_uint_eq(lev.live, 1);
    leader_stop(&L);
    assert_mirrored(fdir, w.count - w.acked);
}
END_TEST

START_TEST(catch_up_from_nothing_copies_everything)
{
    static struct leader L;
    static struct workload w;
    static const char *const isr[] = {"f1"};
    struct repl_leader_stats stats;
    struct repl_follower *f;
    uint64_t seg_bytes;

    memset(&w, 0, sizeof(w));
    leader_start(&L, 3, 0, true);
    define(&L, 30, 1);
    publish(&L, &w, 500);
    ack_oldest(&L, &w, 200);
    run_for(20);
    seg_bytes = dir_segment_bytes(ldir);

    repl_leader_set_isr(L.l, isr, 1);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, WAIT_MS));
    ck_assert(run_until(leader_saw_live, NULL, WAIT_MS));
    repl_leader_stats(L.l, &stats);
    ck_assert_uint_eq(stats.catchups, 1);
    ck_assert_uint_ge(stats.catchup_bytes, seg_bytes - 16 * 20);
    ck_assert_uint_eq(fev.connected, 1);
    ck_assert_uint_eq(lev.connected, 1);
    ck_assert_uint_eq(lev.live, 1);

    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, w.count - w.acked);
}
END_TEST

START_TEST(incremental_catch_up_sends_only_what_is_missing)
{
    static struct leader L;
    static struct workload w;
    static const char *const isr[] = {"f1"};
    struct repl_leader_stats before, after;
    struct repl_follower *f;
    uint64_t written_before, written_after, defs_bytes;
    char p[700];
    struct stat sb;

    memset(&w, 0, sizeof(w));
    leader_start(&L, 5, 0, true);
    repl_leader_set_isr(L.l, isr, 1);
    f = follower_start(fdir, "f1", SECRET);
    define(&L, 10, 1);
    publish(&L, &w, 500);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_follower_free(f);

    /* Away: the leader writes on, rolls over, deletes acked segments. */
    written_before = store_bytes_written(L.st);
    repl_leader_stats(L.l, &before);
    publish(&L, &w, 400);
    ack_oldest(&L, &w, 450);
    define(&L, 5, 2);
    run_for(30);
    written_after = store_bytes_written(L.st);
    snprintf(p, sizeof(p), "%s/defs.log", ldir);
    ck_assert_int_eq(stat(p, &sb), 0);
    defs_bytes = (uint64_t)sb.st_size;

    memset(&fev, 0, sizeof(fev));
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, WAIT_MS));
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_leader_stats(L.l, &after);
    ck_assert_uint_eq(after.catchups, before.catchups + 1);
    /* Only the records written while it was away (and new segments' headers) were copied;
     * segments it had stayed, none was sent again whole. */
    ck_assert_uint_le(after.catchup_bytes - before.catchup_bytes,
                      written_after - written_before + 16 * 40 + defs_bytes);
    ck_assert_uint_lt(after.catchup_bytes - before.catchup_bytes, dir_segment_bytes(ldir));

    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, w.count - w.acked);
}
END_TEST

/* Epoch 1 wrote segments 1 and 2 (the follower got them), and the follower then got a tail
 * of 2 and a segment 3 and 4 the new leader never had. The new leader of epoch 2 started
 * its own segment 3. The follower must end with the leader's files: 2 cut back, its 3
 * replaced, its 4 gone, 1 untouched. */
START_TEST(divergent_tail_of_an_older_epoch_is_cut)
{
    static struct leader L;
    static struct workload w;
    static const char *const isr[] = {"f1"};
    struct repl_leader_stats stats;
    struct repl_follower *f;
    uint8_t junk[700];
    uint32_t seg;
    char a[700], b[700];
    int fd;

    memset(&w, 0, sizeof(w));
    /* Epoch 1, written by a leader that is gone now; the follower has everything. */
    L.st = open_store(ldir);
    ck_assert_int_eq(store_recover(L.st, NULL, NULL), 0);
    ck_assert_int_eq(store_roll_segment(L.st, 0, &seg), 0);
    ck_assert_uint_eq(seg, 1);
    ck_assert_int_eq(repl_begin_epoch(ldir, 1, 1), 0);
    L.defs = open_defs(ldir);
    define(&L, 5, 1);
    publish(&L, &w, 100); /* into segment 1, then 2 */
    store_close(L.st);
    defs_log_close(L.defs);
    L.st = NULL;
    ck_assert_int_eq(mkdir(fdir, 0750), 0);
    snprintf(a, sizeof(a), "%s/msgs", fdir);
    ck_assert_int_eq(mkdir(a, 0750), 0);
    for (int i = 1; i <= 2; i++) {
        snprintf(a, sizeof(a), "%s/msgs/%08d.seg", ldir, i);
        snprintf(b, sizeof(b), "%s/msgs/%08d.seg", fdir, i);
        repl_test_copy_file(a, b);
    }
    snprintf(a, sizeof(a), "%s/defs.log", ldir);
    snprintf(b, sizeof(b), "%s/defs.log", fdir);
    repl_test_copy_file(a, b);
    ck_assert_int_eq(repl_begin_epoch(fdir, 1, 1), 0);
    /* What only the follower got from the old leader: a tail of 2, segments 3 and 4. */
    memset(junk, 0x5A, sizeof(junk));
    snprintf(b, sizeof(b), "%s/msgs/00000002.seg", fdir);
    fd = open(b, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, junk, 300), 300);
    close(fd);
    snprintf(b, sizeof(b), "%s/msgs/00000003.seg", fdir);
    repl_test_write_file(b, junk, sizeof(junk));
    snprintf(b, sizeof(b), "%s/msgs/00000004.seg", fdir);
    repl_test_write_file(b, junk, 100);

    /* Epoch 2: a new leader that had 1 and 2 only. */
    leader_start(&L, 2, 0, true);
    publish(&L, &w, 20); /* into its own segment 3 */
    run_for(10);
    repl_leader_set_isr(L.l, isr, 1);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, WAIT_MS));
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_leader_stats(L.l, &stats);
    /* Segments 1 and 2 were not sent again. */
    snprintf(a, sizeof(a), "%s/msgs/00000003.seg", ldir);
    {
        struct stat sb;
        ck_assert_int_eq(stat(a, &sb), 0);
        ck_assert_uint_le(stats.catchup_bytes, (uint64_t)sb.st_size);
    }
    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, w.count);
}
END_TEST

START_TEST(follower_refuses_a_leader_with_the_wrong_secret)
{
    static struct leader L;
    struct repl_follower *f;

    leader_start(&L, 4, 0, true);
    f = follower_start(fdir, "f1", "not the secret");
    ck_assert(run_until(follower_caught_up, NULL, 300) == false);
    ck_assert_uint_ge(fev.rejected, 1);
    ck_assert_uint_eq(fev.why, REPL_REJECT_AUTH);
    ck_assert_uint_eq(fev.connected, 0);
    ck_assert_uint_eq(lev.connected, 0);
    repl_follower_free(f);
    leader_stop(&L);
}
END_TEST

/* A raw client that answers the challenge with a wrong mac gets ERROR(AUTH). */
static int raw_frame(int fd, struct buf *in, struct repl_frame *f)
{
    uint64_t deadline = now_ms() + 2000;

    for (;;) {
        int rc = repl_frame_next(in->data + in->sent, buf_pending(in), REPL_FRAME_MAX, f);
        if (rc != REPL_NEED_MORE)
            return rc;
        if (now_ms() > deadline)
            return REPL_NEED_MORE;
        ev_run(loop, EVRUN_NOWAIT);
        buf_reserve(in, 4096);
        ssize_t n = recv(fd, in->data + in->len, in->cap - in->len, MSG_DONTWAIT);
        if (n > 0)
            in->len += (size_t)n;
        else if (n == 0)
            return REPL_NEED_MORE;
        else
            usleep(1000);
    }
}

START_TEST(leader_refuses_a_follower_with_the_wrong_secret)
{
    static struct leader L;
    struct repl_history none = {0};
    uint8_t nonce[REPL_NONCE_BYTES] = {7}, mac[REPL_MAC_BYTES] = {0};
    struct buf out = {0}, in = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct repl_leader_stats stats;
    struct repl_frame f;
    struct repl_msg m;
    int fd;

    leader_start(&L, 4, 0, true);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons(repl_leader_port(L.l));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    repl_put_hello(&out, wire_cstr("intruder"), 0, nonce, &none, NULL, 0, 0, 0);
    ck_assert_int_eq(send(fd, out.data, out.len, 0), (ssize_t)out.len);
    ck_assert_int_eq(raw_frame(fd, &in, &f), REPL_OK);
    ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
    ck_assert_uint_eq(m.type, REPL_CHALLENGE);
    ck_assert_uint_eq(m.u.challenge.epoch, 4);
    buf_consumed(&in, f.size);
    out.len = out.sent = 0;
    repl_put_auth(&out, mac);
    ck_assert_int_eq(send(fd, out.data, out.len, 0), (ssize_t)out.len);
    ck_assert_int_eq(raw_frame(fd, &in, &f), REPL_OK);
    ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
    ck_assert_uint_eq(m.type, REPL_ERROR);
    ck_assert_uint_eq(m.u.error.code, REPL_ERROR_AUTH);
    repl_leader_stats(L.l, &stats);
    ck_assert_uint_eq(stats.auth_failures, 1);
    ck_assert_uint_eq(lev.connected, 0);
    close(fd);
    buf_free(&out);
    buf_free(&in);
    leader_stop(&L);
}
END_TEST

static bool leader_deposed(void *arg)
{
    (void)arg;
    return lev.deposed > 0 && fev.rejected > 0;
}

START_TEST(follower_refuses_a_leader_of_a_lower_epoch)
{
    static struct leader L;
    struct repl_follower *f;
    uint64_t epoch;

    ck_assert_int_eq(mkdir(fdir, 0750), 0);
    ck_assert_int_eq(repl_epoch_write(fdir, 10), 0);
    leader_start(&L, 5, 0, true);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(leader_deposed, NULL, WAIT_MS));
    ck_assert_uint_eq(fev.why, REPL_REJECT_STALE_EPOCH);
    ck_assert_uint_eq(fev.epoch, 5);
    ck_assert_uint_eq(lev.deposed_epoch, 10);
    ck_assert_uint_eq(fev.connected, 0);
    ck_assert_uint_eq(lev.connected, 0);
    repl_follower_free(f);
    ck_assert_int_eq(repl_epoch_read(fdir, &epoch), 0);
    ck_assert_uint_eq(epoch, 10);
    leader_stop(&L);
}
END_TEST

START_TEST(follower_records_a_higher_epoch_and_then_refuses_its_old_leader)
{
    static struct leader L;
    struct repl_follower *f;
    uint64_t epoch;

    leader_start(&L, 6, 0, true);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, WAIT_MS));
    ck_assert_int_eq(repl_epoch_read(fdir, &epoch), 0);
    ck_assert_uint_eq(epoch, 6);
    /* The coordinator saw a new election: this leader is stale from here on. */
    ck_assert_int_eq(repl_follower_note_epoch(f, 8), 0);
    ck_assert_uint_eq(fev.rejected, 1);
    ck_assert(run_until(leader_deposed, NULL, WAIT_MS));
    ck_assert_uint_eq(lev.deposed_epoch, 8);
    repl_follower_free(f);
    leader_stop(&L);
}
END_TEST

static bool two_connected(void *arg)
{
    (void)arg;
    return lev.live >= 2;
}

START_TEST(commit_waits_for_a_disconnected_isr_member_until_it_is_removed)
{
    static struct leader L;
    static struct workload w;
    static const char *const both[] = {"f1", "f2"}, *const one[] = {"f2"};
    struct repl_follower *f1, *f2;
    uint64_t held;

    memset(&w, 0, sizeof(w));
    leader_start(&L, 9, 0, true);
    repl_leader_set_isr(L.l, both, 2);
    f1 = follower_start(fdir, "f1", SECRET);
    f2 = follower_start(f2dir, "f2", SECRET);
    ck_assert(run_until(two_connected, NULL, WAIT_MS));
    publish(&L, &w, 50);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));

    repl_follower_free(f1);
    held = repl_leader_commit(L.l);
    publish(&L, &w, 50);
    define(&L, 3, 1);
    run_for(300);
    /* f2 acked all of it, f1 is gone: the commit stays where f1 left it. */
    ck_assert_uint_eq(repl_leader_commit(L.l), held);
    ck_assert_uint_lt(held, repl_leader_position(L.l));
    ck_assert_uint_eq(lev.commit_pos, held);

    repl_leader_set_isr(L.l, one, 1);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    ck_assert_uint_eq(lev.commit_pos, repl_leader_position(L.l));

    /* With no follower in the ISR the commit follows the head. */
    repl_leader_set_isr(L.l, NULL, 0);
    repl_follower_free(f2);
    publish(&L, &w, 10);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    leader_stop(&L);
}
END_TEST

static bool lagged_and_back(void *arg)
{
    struct leader *L = arg;
    return lev.lagging > 0 && lev.live >= 2 && committed_everything(L);
}

START_TEST(follower_past_its_backlog_bound_is_dropped_and_catches_up_again)
{
    static struct leader L;
    static struct workload w;
    static const char *const isr[] = {"f1"};
    struct repl_follower *f;

    memset(&w, 0, sizeof(w));
    leader_start(&L, 11, 32 << 10, true);
    repl_leader_set_isr(L.l, isr, 1);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(leader_saw_live, NULL, WAIT_MS));
    /* Megabytes in one loop turn: more than the socket and the 32 KiB bound take. */
    for (int i = 0; i < 4; i++) {
        static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
        static uint8_t body[3000];
        uint32_t q = 1;
        struct store_msg m = {
            .queue_ids = &q,
            .queue_count = 1,
            .exchange = wire_cstr("amq.direct"),
            .routing_key = wire_cstr("big"),
            .header = {header, sizeof(header)},
            .body = {body, sizeof(body)},
        };
        for (int k = 0; k < 500; k++) {
            memset(body, 'A' + k % 26, sizeof(body));
            ck_assert_uint_gt(store_append_message(L.st, &m, &w.locs[w.count]), 0);
            w.queue[w.count++] = q;
        }
    }
    ck_assert(run_until(lagged_and_back, &L, WAIT_MS));
    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, w.count);
}
END_TEST

static bool refused_twice(void *arg)
{
    (void)arg;
    return fev.refused >= 2;
}

START_TEST(refused_connects_are_reported_as_refused)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    struct repl_follower *f;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A port that was free a moment ago: nothing listens there now. */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sa.sin_port));
    close(fd);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(refused_twice, NULL, WAIT_MS));
    ck_assert_uint_eq(fev.lost, fev.refused);
    repl_follower_free(f);
}
END_TEST

START_TEST(second_follower_on_one_directory_is_refused)
{
    struct repl_follower_options o = {
        .node_id = "f1",
        .data_dir = fdir,
        .leader_address = "127.0.0.1:1",
        .secret = wire_cstr(SECRET),
    };
    char err[256] = "";
    struct repl_follower *f = repl_follower_new(loop, &o, NULL, NULL, err, sizeof(err));

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_null(repl_follower_new(loop, &o, NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
    repl_follower_free(f);
}
END_TEST

/* ---- TLS and the sync rate limit ---------------------------------------------------------- */

/* A node's TLS context from tls_certs.sh's files: NAME.pem, NAME.key, and the CA CA.pem. */
static struct tls_server *node_tls(const char *name, const char *ca)
{
    char cert[700], key[700], cafile[700], err[256] = "";
    struct tls_server *t;

    snprintf(cert, sizeof(cert), "%s/%s.pem", cert_dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", cert_dir, name);
    snprintf(cafile, sizeof(cafile), "%s/%s.pem", cert_dir, ca);
    t = tls_mutual_new("cluster.tls", cert, key, cafile, err, sizeof(err));
    ck_assert_msg(t != NULL, "tls_mutual_new: %s", err);
    return t;
}

/* Warnings (both sides run in this process) go to root/log for the test to read. */
static void capture_warnings(void)
{
    char path[700];

    snprintf(path, sizeof(path), "%s/log", root);
    ck_assert_int_eq(log_open_file(path), 0);
    if (getenv("REPL_TEST_LOG") == NULL) {
        log_set_console(false);
        log_set_level(LOG_LEVEL_WARNING);
    }
}

/* How many warning lines of the log hold every one of the (NULL-terminated) words. */
static unsigned warnings_with(const char *word, ...)
{
    char path[700];
    size_t len;
    uint8_t *text;
    unsigned n = 0;

    snprintf(path, sizeof(path), "%s/log", root);
    text = repl_test_read_file(path, &len);
    if (text == NULL)
        return 0;
    text[len] = '\0';
    for (char *line = (char *)text, *end; line != NULL && *line != '\0'; line = end) {
        va_list ap;
        bool all = strstr(line, "[warning]") != NULL;

        end = strchr(line, '\n');
        if (end != NULL)
            *end++ = '\0';
        va_start(ap, word);
        for (const char *w = word; all && w != NULL; w = va_arg(ap, const char *))
            all = strstr(line, w) != NULL;
        va_end(ap);
        n += all;
    }
    free(text);
    return n;
}

/* count messages of body_bytes each (about that many bytes of segments each). */
static void publish_big(struct leader *L, unsigned count, size_t body_bytes, unsigned salt)
{
    static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
    uint8_t *body = malloc(body_bytes);
    uint32_t q = 1;
    struct store_loc loc;

    ck_assert_ptr_nonnull(body);
    for (unsigned i = 0; i < count; i++) {
        struct store_msg m = {
            .queue_ids = &q,
            .queue_count = 1,
            .exchange = wire_cstr("amq.direct"),
            .routing_key = wire_cstr("rk"),
            .header = {header, sizeof(header)},
            .body = {body, body_bytes},
        };
        for (size_t j = 0; j < body_bytes; j++)
            body[j] = (uint8_t)((j * 31 + i * 7 + salt) ^ (j >> 8));
        ck_assert_uint_gt(store_append_message(L->st, &m, &loc), 0);
        if (i % 8 == 7)
            run_for(1);
    }
    free(body);
}

static bool follower_lost_twice(void *arg)
{
    (void)arg;
    return fev.lost >= 2;
}

/* A follower that must not get in: it is refused again and again (it keeps retrying), and
 * neither side ever counts a connection. */
static void assert_refused_and_retrying(void)
{
    static struct leader L;
    struct repl_follower *f;

    capture_warnings();
    leader_start(&L, 3, 0, true);
    define(&L, 5, 1);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_lost_twice, NULL, WAIT_MS));
    ck_assert_uint_eq(fev.connected, 0);
    ck_assert_uint_eq(lev.connected, 0);
    ck_assert_uint_eq(fev.rejected, 0);
    repl_follower_free(f);
    leader_stop(&L);
}

/* The leader listens on a socket with small buffers (accepted sockets inherit them), so that
 * its writes are partial and wait for the socket, as on a real network. */
static void listen_with_small_buffers(struct leader *L)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 8192;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    repl_leader_listen_fd(L->l, fd);
    snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sa.sin_port));
}

START_TEST(tls_carries_a_large_catch_up_and_the_live_stream_byte_for_byte)
{
    static struct leader L;
    static const char *const isr[] = {"f1"};
    struct repl_leader_stats stats;
    struct repl_follower *f;

    segment_bytes = 1u << 20;
    leader_tls = node_tls("node", "ca");
    follower_tls = node_tls("node", "ca");
    leader_start(&L, 5, 0, false);
    listen_with_small_buffers(&L);
    define(&L, 30, 1);
    publish_big(&L, 110, 60000, 1); /* 6.6 MB in 7 segments */
    run_for(20);

    repl_leader_set_isr(L.l, isr, 1);
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, 3 * WAIT_MS));
    repl_leader_stats(L.l, &stats);
    ck_assert_uint_ge(stats.catchup_bytes, 110 * 60000);

    /* The live stream through the same TLS session, big and small frames. */
    publish_big(&L, 40, 60000, 2);
    define(&L, 10, 2);
    store_flush(L.st);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    /* One session all along: no TLS error cut it and made the follower start again. */
    ck_assert_uint_eq(fev.connected, 1);
    ck_assert_uint_eq(fev.lost, 0);
    ck_assert_uint_eq(lev.connected, 1);
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, 150);
}
END_TEST

START_TEST(leader_refuses_a_follower_whose_certificate_another_ca_signed)
{
    leader_tls = node_tls("node", "ca");
    follower_tls = node_tls("other-node", "ca"); /* trusts the leader, is not trusted */
    assert_refused_and_retrying();
    /* One warning a side: the refusals that follow repeat it at the debug level. */
    ck_assert_uint_eq(warnings_with("requires TLS", "certificate verify failed", NULL), 1);
    ck_assert_uint_eq(warnings_with("TLS with the leader at", NULL), 1);
}
END_TEST

START_TEST(follower_refuses_a_leader_whose_certificate_another_ca_signed)
{
    leader_tls = node_tls("other-node", "ca"); /* trusts the follower, is not trusted */
    follower_tls = node_tls("node", "ca");
    assert_refused_and_retrying();
    ck_assert_uint_ge(warnings_with("TLS with the leader at", "certificate verify failed", NULL),
                      1);
    ck_assert_uint_ge(warnings_with("requires TLS", NULL), 1);
}
END_TEST

START_TEST(tls_leader_refuses_a_plain_follower)
{
    leader_tls = node_tls("node", "ca");
    assert_refused_and_retrying();
    ck_assert_uint_ge(warnings_with("requires TLS", NULL), 1);
    ck_assert_uint_ge(
        warnings_with("answers in TLS", NULL) + warnings_with("does it require TLS", NULL), 1);
}
END_TEST

START_TEST(plain_leader_refuses_a_tls_follower)
{
    follower_tls = node_tls("node", "ca");
    assert_refused_and_retrying();
    ck_assert_uint_ge(warnings_with("speaks TLS, but this node has no cluster.tls", NULL), 1);
    ck_assert_uint_ge(warnings_with("TLS with the leader at", NULL), 1);
}
END_TEST

START_TEST(sync_rate_limit_holds_a_catch_up_to_its_rate)
{
    static struct leader L;
    struct repl_leader_stats stats;
    struct repl_follower *f;
    uint64_t started, elapsed_ms;

    segment_bytes = 1u << 20;
    leader_sync_rate = 2u << 20; /* 2 MiB/s */
    leader_start(&L, 4, 0, true);
    define(&L, 20, 1);
    publish_big(&L, 60, 60000, 3); /* 3.6 MB: at least 1.7 s */
    run_for(20);

    started = now_ms();
    f = follower_start(fdir, "f1", SECRET);
    ck_assert(run_until(follower_caught_up, NULL, 3 * WAIT_MS));
    elapsed_ms = now_ms() - started;
    repl_leader_stats(L.l, &stats);
    ck_assert_uint_ge(stats.catchup_bytes, 60 * 60000);
    /* A lower bound (1 ms for the clocks' rounding): the files cannot have gone faster. */
    ck_assert_msg((elapsed_ms + 1) * leader_sync_rate >= stats.catchup_bytes * 1000,
                  "%" PRIu64 " bytes caught up in %" PRIu64 " ms at %" PRIu64 " bytes/s",
                  stats.catchup_bytes, elapsed_ms, leader_sync_rate);

    leader_close_files(&L);
    ck_assert(run_until(committed_everything, &L, WAIT_MS));
    ck_assert_uint_eq(fev.connected, 1);
    repl_follower_free(f);
    leader_stop(&L);
    assert_mirrored(fdir, 60);
}
END_TEST

START_TEST(a_repeated_refusal_is_warned_about_once_in_a_while)
{
    struct repl_warn_limit w = {0};
    char more[64];

    ck_assert_int_eq(repl_warn_level(&w, "unknown ca", 1000, more, sizeof(more)),
                     LOG_LEVEL_WARNING);
    ck_assert_str_eq(more, "");
    ck_assert_int_eq(repl_warn_level(&w, "unknown ca", 1100, more, sizeof(more)), LOG_LEVEL_DEBUG);
    ck_assert_int_eq(repl_warn_level(&w, "unknown ca", 10999, more, sizeof(more)), LOG_LEVEL_DEBUG);
    ck_assert_int_eq(repl_warn_level(&w, "unknown ca", 11000, more, sizeof(more)),
                     LOG_LEVEL_WARNING);
    ck_assert_str_eq(more, " (2 more since the last warning)");
    /* Another reason is news at once. */
    ck_assert_int_eq(repl_warn_level(&w, "wrong version number", 11001, more, sizeof(more)),
                     LOG_LEVEL_WARNING);
    ck_assert_str_eq(more, "");
}
END_TEST

START_TEST(tls_context_errors_name_the_key_and_the_file)
{
    char cert[700], key[700], ca[700], missing[700], err[256];

    snprintf(cert, sizeof(cert), "%s/node.pem", cert_dir);
    snprintf(key, sizeof(key), "%s/node.key", cert_dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", cert_dir);
    snprintf(missing, sizeof(missing), "%s/missing.pem", cert_dir);
    ck_assert_ptr_null(tls_mutual_new("cluster.tls", cert, key, "", err, sizeof(err)));
    ck_assert_str_eq(err, "TLS between nodes needs cluster.tls.cert, cluster.tls.key and "
                          "cluster.tls.ca together");
    ck_assert_ptr_null(tls_mutual_new("cluster.tls", missing, key, ca, err, sizeof(err)));
    ck_assert_msg(strstr(err, "cluster.tls.cert '") == err &&
                      strstr(err, "missing.pem': cannot open: No such file or directory"),
                  "%s", err);
    snprintf(key, sizeof(key), "%s/server.key", cert_dir);
    ck_assert_ptr_null(tls_mutual_new("cluster.tls", cert, key, ca, err, sizeof(err)));
    ck_assert_msg(strstr(err, "server.key' does not match cluster.tls.cert") != NULL, "%s", err);
    snprintf(key, sizeof(key), "%s/node.key", cert_dir);
    ck_assert_ptr_null(tls_mutual_new("cluster.tls", cert, key, key, err, sizeof(err)));
    ck_assert_msg(strstr(err, "cluster.tls.ca '") == err, "%s", err);
}
END_TEST

/* Makes the certificates once (tls_certs.sh, the openssl CLI); false if that cannot be done,
 * and the TLS tests are left out. */
static bool make_certificates(void)
{
    const char *srcdir = getenv("top_srcdir");
    const char *tmp = getenv("TMPDIR");
    char command[1400];
    int rc;

    if (srcdir == NULL)
        return false;
    snprintf(cert_dir, sizeof(cert_dir), "%s/check_repl_certs.XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(cert_dir) == NULL) {
        cert_dir[0] = '\0';
        return false;
    }
    snprintf(command, sizeof(command), "sh '%s/tests/unit/tls_certs.sh' '%s'", srcdir, cert_dir);
    rc = system(command);
    if (rc != 0) {
        fprintf(stderr, "check_repl: tls_certs.sh failed (%d): TLS tests left out\n", rc);
        return false;
    }
    return true;
}

int main(void)
{
    Suite *s = suite_create("repl");
    TCase *tc = tcase_create("mirror");
    SRunner *sr;
    int failed;
    bool certs;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, live_stream_mirrors_the_leader_byte_for_byte);
    tcase_add_test(tc, catch_up_from_nothing_copies_everything);
    tcase_add_test(tc, incremental_catch_up_sends_only_what_is_missing);
    tcase_add_test(tc, divergent_tail_of_an_older_epoch_is_cut);
    tcase_add_test(tc, follower_past_its_backlog_bound_is_dropped_and_catches_up_again);
    suite_add_tcase(s, tc);
    tc = tcase_create("mirror, lz4");
    tcase_add_checked_fixture(tc, setup_lz4, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, live_stream_mirrors_the_leader_byte_for_byte);
    tcase_add_test(tc, catch_up_from_nothing_copies_everything);
    tcase_add_test(tc, incremental_catch_up_sends_only_what_is_missing);
    tcase_add_test(tc, divergent_tail_of_an_older_epoch_is_cut);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, follower_refuses_a_leader_with_the_wrong_secret);
    tcase_add_test(tc, leader_refuses_a_follower_with_the_wrong_secret);
    tcase_add_test(tc, follower_refuses_a_leader_of_a_lower_epoch);
    tcase_add_test(tc, follower_records_a_higher_epoch_and_then_refuses_its_old_leader);
    tcase_add_test(tc, refused_connects_are_reported_as_refused);
    tcase_add_test(tc, second_follower_on_one_directory_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("commit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, commit_waits_for_a_disconnected_isr_member_until_it_is_removed);
    suite_add_tcase(s, tc);
    tc = tcase_create("rate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sync_rate_limit_holds_a_catch_up_to_its_rate);
    suite_add_tcase(s, tc);
    certs = make_certificates();
    if (certs) {
        tc = tcase_create("tls");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, tls_carries_a_large_catch_up_and_the_live_stream_byte_for_byte);
        tcase_add_test(tc, leader_refuses_a_follower_whose_certificate_another_ca_signed);
        tcase_add_test(tc, follower_refuses_a_leader_whose_certificate_another_ca_signed);
        tcase_add_test(tc, tls_leader_refuses_a_plain_follower);
        tcase_add_test(tc, plain_leader_refuses_a_tls_follower);
        tcase_add_test(tc, tls_context_errors_name_the_key_and_the_file);
        tcase_add_test(tc, a_repeated_refusal_is_warned_about_once_in_a_while);
        suite_add_tcase(s, tc);
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (cert_dir[0] != '\0')
        repl_test_rm_rf(cert_dir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
