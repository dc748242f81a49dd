/* The message store: records written and read back, segments created and deleted, group
 * commit through the background thread, recovery after clean closes and simulated crashes
 * (torn and corrupt records), the paging area and the data directory lock. Each test works
 * in a fresh directory under $TMPDIR (or /tmp) and removes it.
 *
 * `check_store bench [seconds]` measures group-commit throughput instead of testing. */
#define _GNU_SOURCE
#include "src/store/store.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/store/crc32c.h"
#include "src/store/recfile.h"

/* ---- Fixture ---------------------------------------------------------------------------- */

static char dir[512];
static struct ev_loop *loop;

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/check_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    loop = ev_loop_new(EVFLAG_AUTO);
    log_set_level(LOG_LEVEL_NONE);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ev_loop_destroy(loop);
}

static struct store *open_store(uint32_t segment_bytes)
{
    struct store_options opts = {.segment_bytes = segment_bytes};
    char err[256] = "";
    struct store *st = store_open(loop, dir, &opts, err, sizeof(err));

    ck_assert_msg(st != NULL, "store_open: %s", err);
    return st;
}

/* What recovery reported, in order. */
struct found {
    struct store_recovered *v;
    size_t n, cap;
};

static void on_recovered(void *ctx, const struct store_recovered *r)
{
    struct found *f = ctx;

    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = realloc(f->v, f->cap * sizeof(*f->v));
    }
    f->v[f->n++] = *r;
}

static struct store *open_recover(uint32_t segment_bytes, struct found *f)
{
    struct store *st = open_store(segment_bytes);

    free(f->v); /* f starts zeroed; a second recovery replaces the first one's results */
    *f = (struct found){0};
    ck_assert_int_eq(store_recover(st, on_recovered, f), 0);
    return st;
}

/* A message whose body says which it is ("msg-<n>", padded to body_len). */
static struct store_msg make_msg(const uint32_t *queues, uint32_t nq, unsigned n, char *body,
                                 size_t body_len)
{
    static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
    memset(body, 'x', body_len);
    int k = snprintf(body, body_len, "msg-%u", n);
    if ((size_t)k < body_len)
        body[k] = '.';
    return (struct store_msg){
        .queue_ids = queues,
        .queue_count = nq,
        .exchange = wire_cstr("amq.direct"),
        .routing_key = wire_cstr("rk"),
        .header = {header, sizeof(header)},
        .body = {(const uint8_t *)body, body_len},
    };
}

/* Reads loc and checks it is message n with a body of body_len bytes. */
static void assert_msg(struct store *st, struct store_loc loc, unsigned n, size_t body_len)
{
    uint8_t *buf = malloc(loc.size);
    char *want = malloc(body_len + 1);
    uint32_t q = 0;
    struct store_msg m, expect = make_msg(&q, 1, n, want, body_len);

    ck_assert_int_eq(store_read(st, loc, buf, loc.size, &m), 0);
    ck_assert_uint_eq(m.body.len, body_len);
    ck_assert_msg(memcmp(m.body.ptr, want, body_len) == 0, "body of message %u differs", n);
    ck_assert(wire_bytes_eq(m.exchange, expect.exchange));
    ck_assert(wire_bytes_eq(m.routing_key, expect.routing_key));
    ck_assert(wire_bytes_eq(m.header, expect.header));
    free(buf);
    free(want);
}

static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(l, EVBREAK_ALL);
}

struct durable_watch {
    uint64_t seen;   /* highest durable_seq reported */
    uint64_t calls;  /* callbacks */
    uint64_t target; /* break the loop once reached */
    bool monotonic;
};

static void on_durable(void *ctx, uint64_t seq)
{
    struct durable_watch *d = ctx;

    if (seq <= d->seen)
        d->monotonic = false;
    d->seen = seq;
    d->calls++;
    if (d->target != 0 && seq >= d->target)
        ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until everything appended so far is durable (at most 10 s). */
static void wait_durable(struct store *st)
{
    struct durable_watch d = {.monotonic = true};
    struct store_stats s;
    bool timed_out = false;
    ev_timer t;

    store_stats(st, &s);
    d.target = s.appended_seq;
    d.seen = s.durable_seq;
    store_on_durable(st, on_durable, &d);
    ev_timer_init(&t, on_timeout, 10.0, 0);
    t.data = &timed_out;
    ev_timer_start(loop, &t);
    if (d.seen < d.target)
        ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    store_on_durable(st, NULL, NULL);
    ck_assert_msg(!timed_out, "durable_seq did not reach %llu", (unsigned long long)d.target);
    /* Let queued unlinks reach their directory sync too. */
    ev_run(loop, EVRUN_NOWAIT);
}

static unsigned count_files(const char *sub, uint64_t *bytes)
{
    char path[600];
    DIR *d;
    struct dirent *e;
    unsigned n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    if (bytes)
        *bytes = 0;
    while ((e = readdir(d)) != NULL) {
        char p[1200];
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        ck_assert_int_eq(stat(p, &sb), 0);
        if (bytes)
            *bytes += (uint64_t)sb.st_size;
        n++;
    }
    closedir(d);
    return n;
}

static void seg_file(uint32_t number, char *out, size_t size)
{
    snprintf(out, size, "%s/msgs/%08u.seg", dir, number);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_size;
}

static unsigned body_number(struct store *st, struct store_loc loc)
{
    uint8_t *buf = malloc(loc.size);
    struct store_msg m;
    unsigned n = 0;

    ck_assert_int_eq(store_read(st, loc, buf, loc.size, &m), 0);
    ck_assert_int_eq(sscanf((const char *)m.body.ptr, "msg-%u", &n), 1);
    free(buf);
    return n;
}

/* ---- CRC-32C ---------------------------------------------------------------------------- */

START_TEST(crc32c_matches_published_check_values)
{
    uint8_t zeros[32] = {0}, ones[32], inc[32];

    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    /* RFC 3720 (iSCSI) appendix B.4 and the CRC catalogue's check value. */
    ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c(zeros, 32), 0x8A9136AAu);
    ck_assert_uint_eq(crc32c(ones, 32), 0x62A8AB43u);
    ck_assert_uint_eq(crc32c(inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c_update_portable(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_update_portable(0, inc, 32), 0x46DD794Eu);
}
END_TEST

START_TEST(crc32c_hardware_and_tables_agree_at_every_length_and_alignment)
{
    uint8_t buf[300];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t start = 0; start < 9; start++) {
        for (size_t len = 0; start + len <= sizeof(buf); len += 1 + len / 8) {
            uint32_t a = crc32c_update(0, buf + start, len);
            uint32_t b = crc32c_update_portable(0, buf + start, len);
            ck_assert_uint_eq(a, b);
            /* In two pieces it is the same CRC. */
            uint32_t c = crc32c_update(crc32c_update(0, buf + start, len / 3),
                                       buf + start + len / 3, len - len / 3);
            ck_assert_uint_eq(a, c);
        }
    }
}
END_TEST

/* ---- Writing and reading ---------------------------------------------------------------- */

START_TEST(message_round_trips_from_buffer_file_and_after_reopen)
{
    uint32_t q = 7;
    char body[100];
    struct store_msg m = make_msg(&q, 1, 1, body, sizeof(body));
    struct store_loc loc;
    struct found f = {0};
    struct store *st = open_recover(0, &f);

    ck_assert_uint_eq(f.n, 0);
    ck_assert_uint_eq(store_append_message(st, &m, &loc), 1);
    ck_assert_uint_eq(loc.segment, 1);
    ck_assert_uint_eq(loc.offset, RECFILE_FILE_HEADER_BYTES);
    assert_msg(st, loc, 1, sizeof(body)); /* still in the write buffer */
    store_flush(st);
    assert_msg(st, loc, 1, sizeof(body)); /* from the file */
    wait_durable(st);
    store_close(st);

    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(f.v[0].queue_id, 7);
    ck_assert_uint_eq(f.v[0].loc.segment, loc.segment);
    ck_assert_uint_eq(f.v[0].loc.offset, loc.offset);
    ck_assert_uint_eq(f.v[0].loc.size, loc.size);
    ck_assert(!f.v[0].delivered);
    assert_msg(st, f.v[0].loc, 1, sizeof(body));
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(many_messages_cross_segment_boundaries_and_read_back)
{
    enum { N = 2000 };
    uint32_t q = 1;
    char body[700];
    struct store_loc *locs = calloc(N, sizeof(*locs));
    struct found f = {0};
    struct store *st = open_recover(8192, &f);
    struct store_stats s;

    for (unsigned i = 0; i < N; i++) {
        size_t len = 1 + (i * 37) % sizeof(body);
        struct store_msg m = make_msg(&q, 1, i, body, len);
        ck_assert_uint_eq(store_append_message(st, &m, &locs[i]), i + 1);
        ck_assert_uint_le(locs[i].offset + locs[i].size, 8192);
    }
    store_stats(st, &s);
    ck_assert_uint_gt(s.segments, 50);
    ck_assert_uint_eq(count_files("msgs", NULL), s.segments);
    for (unsigned i = 0; i < N; i++)
        assert_msg(st, locs[i], i, 1 + (i * 37) % sizeof(body));
    wait_durable(st);
    store_close(st);

    st = open_recover(8192, &f);
    ck_assert_uint_eq(f.n, N);
    for (unsigned i = 0; i < N; i++) {
        ck_assert_uint_eq(f.v[i].loc.segment, locs[i].segment);
        ck_assert_uint_eq(f.v[i].loc.offset, locs[i].offset);
    }
    assert_msg(st, f.v[N - 1].loc, N - 1, 1 + ((N - 1) * 37) % sizeof(body));
    store_close(st);
    free(f.v);
    free(locs);
}
END_TEST

START_TEST(message_bigger_than_a_segment_gets_its_own)
{
    uint32_t q = 1;
    size_t big = 50000;
    char *body = malloc(big), small[10];
    struct store_loc a, b, c;
    struct found f = {0};
    struct store *st = open_recover(4096, &f);
    struct store_msg m1 = make_msg(&q, 1, 1, small, sizeof(small));
    struct store_msg m2 = make_msg(&q, 1, 2, body, big);
    struct store_msg m3 = make_msg(&q, 1, 3, small, sizeof(small));

    store_append_message(st, &m1, &a);
    store_append_message(st, &m2, &b);
    store_append_message(st, &m3, &c);
    ck_assert_uint_eq(a.segment, 1);
    ck_assert_uint_eq(b.segment, 2);
    ck_assert_uint_eq(b.offset, RECFILE_FILE_HEADER_BYTES);
    ck_assert_uint_eq(c.segment, 3);
    assert_msg(st, b, 2, big);
    store_close(st);
    free(body);
    free(f.v);
}
END_TEST

/* A record that fills the write buffer is written at once; it must still be reported
 * durable without any later append or loop turn flushing something else. */
START_TEST(big_message_written_at_once_is_reported_durable)
{
    uint32_t q = 1;
    size_t big = 2u << 20;
    char *body = malloc(big);
    struct store_loc loc;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct store_msg m = make_msg(&q, 1, 1, body, big);

    ck_assert_uint_eq(store_append_message(st, &m, &loc), 1);
    wait_durable(st);
    store_close(st);
    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 1);
    assert_msg(st, f.v[0].loc, 1, big);
    store_close(st);
    free(body);
    free(f.v);
}
END_TEST

/* ---- Acks and segment deletion ---------------------------------------------------------- */

START_TEST(acked_segments_are_deleted_and_disk_use_drops)
{
    enum { N = 600 };
    uint32_t q = 3;
    char body[200];
    struct store_loc locs[N];
    struct found f = {0};
    struct store *st = open_recover(16384, &f);
    uint64_t before, after;
    char first[600];

    for (unsigned i = 0; i < N; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
        store_append_message(st, &m, &locs[i]);
    }
    wait_durable(st);
    unsigned files = count_files("msgs", &before);
    ck_assert_uint_gt(files, 5);
    seg_file(1, first, sizeof(first));
    ck_assert_int_eq(access(first, F_OK), 0);

    /* Ack everything but the last 10 messages: all full segments go. */
    for (unsigned i = 0; i < N - 10; i++)
        store_ack(st, q, locs[i]);
    wait_durable(st);
    ck_assert_int_eq(access(first, F_OK), -1);
    ck_assert_int_eq(errno, ENOENT);
    unsigned left = count_files("msgs", &after);
    ck_assert_uint_le(left, 2);
    ck_assert_uint_lt(after * 4, before);
    store_close(st);

    st = open_recover(16384, &f);
    ck_assert_uint_eq(f.n, 10);
    for (unsigned i = 0; i < 10; i++)
        ck_assert_uint_eq(body_number(st, f.v[i].loc), N - 10 + i);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(one_stuck_message_pins_only_its_own_segment)
{
    enum { N = 3000 };
    uint32_t q = 1;
    char body[100];
    struct store_loc stuck, loc;
    struct found f = {0};
    struct store *st = open_recover(8192, &f);
    struct store_msg m = make_msg(&q, 1, 0, body, sizeof(body));

    store_append_message(st, &m, &stuck);
    for (unsigned i = 1; i < N; i++) {
        m = make_msg(&q, 1, i, body, sizeof(body));
        store_append_message(st, &m, &loc);
        store_delivered(st, q, loc);
        store_ack(st, q, loc); /* consumed right away, like a live consumer */
    }
    wait_durable(st);
    /* 3000 messages of ~140 bytes plus their acks is ~50 segments written; what stays is the
     * stuck message's segment, the active one and at most a segment of carried records. */
    ck_assert_uint_le(count_files("msgs", NULL), 4);
    store_close(st);

    st = open_recover(8192, &f);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(body_number(st, f.v[0].loc), 0);
    store_close(st);
    free(f.v);
}
END_TEST

/* Message 0 goes to queues A and B; A's ack lands in a later segment that then dies. The
 * ack must be carried forward, or A gets message 0 back at recovery. */
START_TEST(ack_in_deleted_segment_is_carried_forward)
{
    uint32_t both[2] = {10, 20}, a = 10;
    char body[400];
    struct store_loc first;
    struct store_loc later[40];
    struct found f = {0};
    struct store *st = open_recover(4096, &f);
    struct store_msg m = make_msg(both, 2, 0, body, sizeof(body));
    struct store_stats s;
    char seg2[600];

    bool acked_first = false;

    store_append_message(st, &m, &first);
    ck_assert_uint_eq(first.segment, 1);
    /* Fill segment 1, then put A's ack of message 0 into segment 2 among A's messages. */
    for (unsigned i = 1; i < 40; i++) {
        m = make_msg(&a, 1, i, body, sizeof(body));
        store_append_message(st, &m, &later[i]);
        if (later[i].segment == 2 && !acked_first) {
            store_ack(st, a, first);
            acked_first = true;
        }
    }
    ck_assert(acked_first);
    seg_file(2, seg2, sizeof(seg2));
    /* Ack all of A's own messages: segment 2 (and later full ones) die, segment 1 stays for
     * B's reference to message 0. */
    for (unsigned i = 1; i < 40; i++)
        store_ack(st, a, later[i]);
    wait_durable(st);
    store_stats(st, &s);
    ck_assert_uint_gt(s.carried, 0);
    ck_assert_int_eq(access(seg2, F_OK), -1);
    store_close(st);

    st = open_recover(4096, &f);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(f.v[0].queue_id, 20);
    ck_assert_uint_eq(f.v[0].loc.segment, 1);
    /* And once B acks too, segment 1 goes. */
    store_ack(st, 20, f.v[0].loc);
    wait_durable(st);
    char seg1[600];
    seg_file(1, seg1, sizeof(seg1));
    ck_assert_int_eq(access(seg1, F_OK), -1);
    store_close(st);

    st = open_recover(4096, &f);
    ck_assert_uint_eq(f.n, 0);
    store_close(st);
    free(f.v);
}
END_TEST

/* Every message goes to A and B; A acks them all, B none. The acks fill segments of their
 * own that hold nothing live, each still needed (its targets live on for B): carrying them
 * forward only fills the next segment with the same records, which is then carried in
 * turn. That must end (it did not: new segments without end, until descriptors ran out),
 * with the acks kept and disk use bounded. */
START_TEST(acks_that_fill_segments_of_their_own_are_not_carried_round_and_round)
{
    enum { N = 400 };
    uint32_t both[2] = {10, 20};
    char body[100];
    static struct store_loc locs[N];
    struct found f = {0};
    struct store *st = open_recover(4096, &f);
    struct store_stats s;
    unsigned files;

    for (unsigned i = 0; i < N; i++) {
        struct store_msg m = make_msg(both, 2, i, body, sizeof(body));
        store_append_message(st, &m, &locs[i]);
    }
    wait_durable(st);
    files = count_files("msgs", NULL);
    for (unsigned i = 0; i < N; i++)
        store_ack(st, 10, locs[i]);
    wait_durable(st);
    store_stats(st, &s);
    /* The messages' segments, and the acks: about 10 KB of them, in a few 4 KiB segments. */
    ck_assert_uint_le(count_files("msgs", NULL), files + 6);
    ck_assert_uint_lt(s.carried, 2 * N);
    store_close(st);

    st = open_recover(4096, &f);
    ck_assert_uint_eq(f.n, N);
    for (size_t i = 0; i < f.n; i++)
        ck_assert_uint_eq(f.v[i].queue_id, 20);
    /* B acks too: everything goes. */
    for (size_t i = 0; i < f.n; i++)
        store_ack(st, 20, f.v[i].loc);
    wait_durable(st);
    store_close(st);
    st = open_recover(4096, &f);
    ck_assert_uint_eq(f.n, 0);
    ck_assert_uint_le(count_files("msgs", NULL), 3);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(deleted_queue_messages_are_not_resurrected)
{
    uint32_t q1 = 1, q2 = 2, both[2] = {1, 2};
    char body[16];
    struct store_loc l1, l2, l3, l4;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct store_msg m;

    m = make_msg(&q1, 1, 1, body, sizeof(body));
    store_append_message(st, &m, &l1);
    m = make_msg(&q2, 1, 2, body, sizeof(body));
    store_append_message(st, &m, &l2);
    m = make_msg(both, 2, 3, body, sizeof(body));
    store_append_message(st, &m, &l3);
    store_queue_deleted(st, q1);
    store_release(st, l1);
    store_release(st, l3);
    /* A queue that reuses id 1 afterwards keeps its messages. */
    m = make_msg(&q1, 1, 4, body, sizeof(body));
    store_append_message(st, &m, &l4);
    wait_durable(st);
    store_close(st);

    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.v[0].queue_id, 2);
    ck_assert_uint_eq(body_number(st, f.v[0].loc), 2);
    ck_assert_uint_eq(f.v[1].queue_id, 2);
    ck_assert_uint_eq(body_number(st, f.v[1].loc), 3);
    ck_assert_uint_eq(f.v[2].queue_id, 1);
    ck_assert_uint_eq(body_number(st, f.v[2].loc), 4);
    store_close(st);
    free(f.v);
}
END_TEST

/* ---- Recovery --------------------------------------------------------------------------- */

START_TEST(recovery_after_clean_close_keeps_order_per_queue)
{
    uint32_t qa = 1, qb = 2;
    char body[32];
    struct store_loc locs[30];
    struct found f = {0};
    struct store *st = open_recover(2048, &f);

    for (unsigned i = 0; i < 30; i++) {
        struct store_msg m = make_msg(i % 2 ? &qb : &qa, 1, i, body, sizeof(body));
        store_append_message(st, &m, &locs[i]);
    }
    for (unsigned i = 0; i < 30; i += 3)
        store_ack(st, i % 2 ? qb : qa, locs[i]);
    wait_durable(st);
    store_close(st);

    st = open_recover(2048, &f);
    ck_assert_uint_eq(f.n, 20);
    unsigned last_a = 0, last_b = 0, k = 0;
    for (unsigned i = 0; i < 30; i++) {
        if (i % 3 == 0)
            continue;
        unsigned n = body_number(st, f.v[k].loc);
        ck_assert_uint_eq(n, i);
        ck_assert_uint_eq(f.v[k].queue_id, i % 2 ? qb : qa);
        unsigned *last = i % 2 ? &last_b : &last_a;
        ck_assert_uint_ge(n, *last);
        *last = n;
        k++;
    }
    store_close(st);
    free(f.v);
}
END_TEST

/* A message stored with its publish time and deadline (MESSAGE_TIMED) gives both back to
 * recovery and reads back unchanged; one stored without (a MESSAGE record, as older data
 * directories hold) recovers with zeros, side by side in the same segment. */
START_TEST(publish_time_and_deadline_survive_and_untimed_records_still_read)
{
    uint32_t q = 9;
    char body[16];
    struct store_loc l[3];
    struct found f = {0};
    struct store *st = open_recover(0, &f);

    for (unsigned i = 0; i < 3; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
        if (i != 1) {
            m.published_ms = 1796538644705ull + i;
            m.expires_ms = i == 2 ? 0 : 1796538649705ull;
        }
        store_append_message(st, &m, &l[i]);
        /* frame, type, [times], count, queue id, exchange, key, header, body */
        ck_assert_uint_eq(l[i].size, 8 + 1 + (i != 1 ? 16 : 0) + 2 + 4 + 11 + 3 + 4 + 15 + 16);
    }
    wait_durable(st);
    store_close(st);

    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.v[0].published_ms, 1796538644705ull);
    ck_assert_uint_eq(f.v[0].expires_ms, 1796538649705ull);
    ck_assert_uint_eq(f.v[1].published_ms, 0);
    ck_assert_uint_eq(f.v[1].expires_ms, 0);
    ck_assert_uint_eq(f.v[2].published_ms, 1796538644707ull);
    ck_assert_uint_eq(f.v[2].expires_ms, 0);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_uint_eq(body_number(st, f.v[i].loc), i);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(delivery_counts_and_delivered_flags_survive)
{
    uint32_t q = 5;
    char body[16];
    struct store_loc l[4];
    struct found f = {0};
    struct store *st = open_recover(0, &f);

    for (unsigned i = 0; i < 4; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
        store_append_message(st, &m, &l[i]);
    }
    /* 0: untouched. 1: delivered, unacked at the crash. 2: delivered and returned 3 times.
     * 3: returned twice then once more with a stale lower count (the highest wins). */
    store_delivered(st, q, l[1]);
    store_delivered(st, q, l[2]);
    store_requeue(st, q, l[2], 1);
    store_requeue(st, q, l[2], 2);
    store_requeue(st, q, l[2], 3);
    store_requeue(st, q, l[3], 2);
    store_requeue(st, q, l[3], 1);
    wait_durable(st);
    store_close(st);

    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 4);
    ck_assert(!f.v[0].delivered);
    ck_assert_uint_eq(f.v[0].deliveries, 0);
    ck_assert(f.v[1].delivered);
    ck_assert_uint_eq(f.v[1].deliveries, 0);
    ck_assert(f.v[2].delivered);
    ck_assert_uint_eq(f.v[2].deliveries, 3);
    ck_assert(f.v[3].delivered);
    ck_assert_uint_eq(f.v[3].deliveries, 2);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(message_for_three_queues_is_written_once_and_recovered_into_each)
{
    uint32_t one = 1, three[3] = {1, 2, 3};
    char body[16];
    struct store_loc a, b;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct store_msg m1 = make_msg(&one, 1, 1, body, sizeof(body));
    char path[600];

    store_append_message(st, &m1, &a);
    store_flush(st);
    seg_file(1, path, sizeof(path));
    off_t size1 = file_size(path);
    struct store_msg m3 = make_msg(three, 3, 2, body, sizeof(body));
    store_append_message(st, &m3, &b);
    store_flush(st);
    off_t size2 = file_size(path);
    /* One copy of header and body: only two more queue ids than the one-queue record. */
    ck_assert_int_eq(size2 - size1, (off_t)b.size);
    ck_assert_uint_eq(b.size, a.size + 8);
    ck_assert_uint_lt(b.size, 2 * a.size);
    wait_durable(st);
    store_close(st);

    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 4);
    for (unsigned i = 1; i < 4; i++) {
        ck_assert_uint_eq(f.v[i].queue_id, i);
        ck_assert_uint_eq(f.v[i].loc.offset, b.offset);
    }
    /* One queue acks: the other two keep it. */
    store_ack(st, 2, f.v[2].loc);
    wait_durable(st);
    store_close(st);
    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.v[1].queue_id, 1);
    ck_assert_uint_eq(f.v[2].queue_id, 3);
    store_close(st);
    free(f.v);
}
END_TEST

/* Writes messages 0..n-1 to a fresh store and closes it; returns the last one's loc. */
static struct store_loc write_messages(unsigned n, size_t body_len, uint32_t segment_bytes)
{
    uint32_t q = 1;
    char *body = malloc(body_len);
    struct store_loc loc = {0};
    struct found f = {0};
    struct store *st = open_recover(segment_bytes, &f);

    for (unsigned i = 0; i < n; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, body_len);
        store_append_message(st, &m, &loc);
    }
    wait_durable(st);
    store_close(st);
    free(body);
    free(f.v);
    return loc;
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n;

    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(out, 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

START_TEST(torn_last_record_is_cut_at_every_offset)
{
    struct store_loc last = write_messages(20, 40, 0);
    char path[600], saved[700];

    seg_file(last.segment, path, sizeof(path));
    snprintf(saved, sizeof(saved), "%s/pristine", dir);
    copy_file(path, saved);
    ck_assert_int_eq(file_size(path), (off_t)(last.offset + last.size));

    for (uint32_t cut = last.offset; cut < last.offset + last.size; cut++) {
        struct found f = {0};
        copy_file(saved, path);
        ck_assert_int_eq(truncate(path, cut), 0);
        struct store *st = open_recover(0, &f);
        ck_assert_msg(f.n == 19, "cut at %u: %zu messages recovered", cut, f.n);
        ck_assert_int_eq(file_size(path), (off_t)last.offset);
        for (unsigned i = 0; i < 19; i++)
            ck_assert_uint_eq(body_number(st, f.v[i].loc), i);
        store_close(st);
        free(f.v);
    }
    /* After the cut the store appends and recovers normally. */
    struct found f = {0};
    uint32_t q = 1;
    char body[40];
    struct store_loc loc;
    struct store *st = open_recover(0, &f);
    struct store_msg m = make_msg(&q, 1, 99, body, sizeof(body));
    store_append_message(st, &m, &loc);
    wait_durable(st);
    store_close(st);
    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 20);
    ck_assert_uint_eq(body_number(st, f.v[19].loc), 99);
    store_close(st);
    free(f.v);
}
END_TEST

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

START_TEST(corrupt_byte_in_last_record_cuts_it)
{
    struct store_loc last = write_messages(10, 64, 0);
    char path[600];
    struct found f = {0};

    seg_file(last.segment, path, sizeof(path));
    flip_byte(path, last.offset + last.size / 2);
    struct store *st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 9);
    ck_assert_int_eq(file_size(path), (off_t)last.offset);
    ck_assert_uint_eq(body_number(st, f.v[8].loc), 8);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(corrupt_record_in_earlier_segment_is_skipped_not_cut)
{
    uint32_t q = 1;
    char body[64];
    struct store_loc locs[200];
    struct found f = {0};
    struct store *st = open_recover(4096, &f);
    char path[600];

    for (unsigned i = 0; i < 200; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
        store_append_message(st, &m, &locs[i]);
    }
    wait_durable(st);
    store_close(st);
    ck_assert_uint_eq(locs[5].segment, 1);
    ck_assert_uint_gt(locs[199].segment, 2);
    seg_file(1, path, sizeof(path));
    off_t size = file_size(path);
    flip_byte(path, locs[5].offset + 20);

    st = open_recover(4096, &f);
    ck_assert_uint_eq(f.n, 199);
    ck_assert_int_eq(file_size(path), size);
    for (unsigned i = 0, k = 0; i < 200; i++) {
        if (i == 5)
            continue;
        ck_assert_uint_eq(body_number(st, f.v[k++].loc), i);
    }
    /* store_read checks the checksum too. */
    uint8_t buf[256];
    struct store_msg m;
    ck_assert_int_eq(store_read(st, locs[5], buf, sizeof(buf), &m), -EIO);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(segment_with_torn_header_is_removed)
{
    struct store_loc last = write_messages(5, 16, 0);
    char path[600];
    struct found f = {0};
    int fd;

    ck_assert_uint_eq(last.segment, 1);
    seg_file(2, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_eq(write(fd, "WRNS", 4), 4);
    close(fd);
    struct store *st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 5);
    ck_assert_int_eq(access(path, F_OK), -1);
    store_close(st);
    free(f.v);
}
END_TEST

/* What a child that confirmed n messages and was then killed leaves behind. */
START_TEST(confirmed_messages_survive_kill_9)
{
    int fds[2];
    pid_t pid;
    uint64_t confirmed = 0;
    struct found f = {0};

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        uint32_t q = 1;
        char body[16];
        struct store_loc loc;
        struct found cf = {0};
        struct store *st = open_recover(4096, &cf);
        for (unsigned i = 0; i < 500; i++) {
            struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
            store_append_message(st, &m, &loc);
        }
        wait_durable(st);
        struct store_stats s;
        store_stats(st, &s);
        if (write(fds[1], &s.durable_seq, sizeof(s.durable_seq)) != sizeof(s.durable_seq))
            _exit(1);
        /* More appends, half written, none waited for: then the crash. */
        for (unsigned i = 500; i < 700; i++) {
            struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
            store_append_message(st, &m, &loc);
            if (i == 600)
                store_flush(st);
        }
        raise(SIGKILL);
        _exit(2);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &confirmed, sizeof(confirmed)), sizeof(confirmed));
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_uint_eq(confirmed, 500);

    struct store *st = open_recover(4096, &f);
    ck_assert_uint_ge(f.n, 500);
    for (unsigned i = 0; i < f.n; i++)
        ck_assert_uint_eq(body_number(st, f.v[i].loc), i);
    store_close(st);
    free(f.v);
}
END_TEST

static void release_unknown(void *ctx, const struct store_recovered *r)
{
    struct store *st = *(struct store **)ctx;

    if (r->queue_id == 99)
        store_release(st, r->loc);
}

START_TEST(recovered_reference_of_unknown_queue_can_be_released)
{
    uint32_t q = 99;
    char body[16];
    struct store_loc loc;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct store_msg m = make_msg(&q, 1, 1, body, sizeof(body));
    char path[600];

    store_append_message(st, &m, &loc);
    wait_durable(st);
    store_close(st);

    st = open_store(0);
    ck_assert_int_eq(store_recover(st, release_unknown, &st), 0);
    store_queue_deleted(st, 99);
    wait_durable(st);
    seg_file(1, path, sizeof(path));
    ck_assert_int_eq(access(path, F_OK), -1);
    store_close(st);
    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 0);
    store_close(st);
    free(f.v);
}
END_TEST

/* ---- Disk failure ----------------------------------------------------------------------- */

static void on_failure(void *ctx, int err)
{
    *(int *)ctx = err;
    ev_break(loop, EVBREAK_ALL);
}

/* Ten small messages made durable (the first one's location in *first), then a file size
 * limit a little past the segment's size, which makes write(2) fail with EFBIG as a full disk
 * would, and ten messages of 500 bytes appended (not written yet; the last one's location in
 * *last). *saved gets the limit to restore. */
static struct store *store_about_to_fail(struct found *f, int *failure, struct store_loc *first,
                                         struct store_loc *last, struct rlimit *saved)
{
    uint32_t q = 1;
    char body[500] = {0};
    struct store *st = open_recover(0, f);
    struct rlimit lim;
    char path[600];

    for (unsigned i = 0; i < 10; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, 16);
        store_append_message(st, &m, i == 0 ? first : last);
    }
    wait_durable(st);
    store_on_failure(st, on_failure, failure);
    signal(SIGXFSZ, SIG_IGN);
    seg_file(1, path, sizeof(path));
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, saved), 0);
    lim = *saved;
    lim.rlim_cur = (rlim_t)file_size(path) + 1200;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (unsigned i = 10; i < 20; i++) {
        struct store_msg m = make_msg(&q, 1, i, body, sizeof(body));
        ck_assert_uint_eq(store_append_message(st, &m, last), i + 1);
    }
    return st;
}

/* A file size limit makes write(2) fail with EFBIG, as a full or failing disk would. Messages
 * are refused from then on; acks are still taken (buffered for store_resume()). */
START_TEST(write_failure_is_reported_and_appends_are_refused)
{
    uint32_t q = 1;
    char body[500] = {0};
    struct store_loc loc, first;
    struct found f = {0};
    struct store_stats s;
    struct rlimit saved;
    int failure = 0;
    bool timed_out = false;
    ev_timer t;
    struct store *st = store_about_to_fail(&f, &failure, &first, &loc, &saved);

    store_flush(st); /* two records fit, the third is cut, then EFBIG */
    struct store_msg m = make_msg(&q, 1, 99, body, 16);
    ck_assert_uint_eq(store_append_message(st, &m, &loc), 0);
    ck_assert_uint_ne(store_ack(st, q, first), 0);

    ev_timer_init(&t, on_timeout, 10.0, 0);
    t.data = &timed_out;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    ck_assert(!timed_out);
    ck_assert_int_eq(failure, EFBIG);
    store_stats(st, &s);
    ck_assert_uint_eq(s.durable_seq, 10); /* nothing after the failure was confirmed */
    /* With nothing left that can become durable, the store no longer holds the loop. */
    ev_run(loop, 0);
    store_close(st);

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    st = open_recover(0, &f);
    ck_assert_uint_ge(f.n, 10);
    ck_assert_uint_le(f.n, 12);
    for (unsigned i = 0; i < f.n; i++)
        ck_assert_uint_eq(body_number(st, f.v[i].loc), i);
    store_close(st);
    free(f.v);
}
END_TEST

/* The disk has room again: store_resume() writes what the failed write left buffered (and
 * the acks taken meanwhile), and the store takes messages again; all of it survives. */
START_TEST(failed_store_resumes_and_writes_what_it_kept)
{
    uint32_t q = 1;
    char body[500] = {0};
    struct store_loc loc, first;
    struct found f = {0};
    struct store_stats s;
    struct rlimit saved;
    int failure = 0;
    bool timed_out = false;
    ev_timer t;
    struct store *st = store_about_to_fail(&f, &failure, &first, &loc, &saved);

    store_flush(st); /* fails: the ten records stay buffered */
    ck_assert_int_eq(body_number(st, loc), 19); /* still readable, from the buffer */
    ck_assert_uint_ne(store_ack(st, q, first), 0);
    ck_assert_int_ne(store_resume(st), 0); /* no room yet */

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    ck_assert_int_eq(store_resume(st), 0);
    struct store_msg m = make_msg(&q, 1, 20, body, 16);
    ck_assert_uint_ne(store_append_message(st, &m, &loc), 0);
    ev_timer_init(&t, on_timeout, 10.0, 0);
    t.data = &timed_out;
    ev_timer_start(loop, &t);
    wait_durable(st);
    ev_timer_stop(loop, &t);
    store_stats(st, &s);
    ck_assert_uint_eq(s.durable_seq, s.appended_seq);
    store_close(st);

    /* Message 0 was acked while the store had failed; 1 to 20 are all there, in order. */
    st = open_recover(0, &f);
    ck_assert_uint_eq(f.n, 20);
    for (unsigned i = 0; i < f.n; i++)
        ck_assert_uint_eq(body_number(st, f.v[i].loc), i + 1);
    store_close(st);
    free(f.v);
    (void)failure;
}
END_TEST

/* ---- Group commit ----------------------------------------------------------------------- */

struct producer {
    struct store *st;
    unsigned sent, total, per_turn;
    ev_idle idle;
};

static void produce(struct ev_loop *l, ev_idle *w, int revents)
{
    struct producer *p = w->data;
    uint32_t q = 1;
    char body[16];
    struct store_loc loc;

    (void)revents;
    for (unsigned i = 0; i < p->per_turn && p->sent < p->total; i++, p->sent++) {
        struct store_msg m = make_msg(&q, 1, p->sent, body, sizeof(body));
        ck_assert_uint_eq(store_append_message(p->st, &m, &loc), p->sent + 1);
    }
    if (p->sent == p->total)
        ev_idle_stop(l, w);
}

START_TEST(group_commit_syncs_many_appends_at_once)
{
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct producer p = {.st = st, .total = 20000, .per_turn = 50};
    struct durable_watch d = {.target = 20000, .monotonic = true};
    struct store_stats s;
    bool timed_out = false;
    ev_timer t;

    store_on_durable(st, on_durable, &d);
    ev_idle_init(&p.idle, produce);
    p.idle.data = &p;
    ev_idle_start(loop, &p.idle);
    ev_timer_init(&t, on_timeout, 30.0, 0);
    t.data = &timed_out;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    ck_assert(!timed_out);
    ck_assert_uint_eq(d.seen, 20000);
    ck_assert(d.monotonic);
    store_stats(st, &s);
    ck_assert_uint_eq(s.durable_seq, 20000);
    ck_assert_uint_gt(s.fsyncs, 0);
    ck_assert_uint_lt(s.fsyncs, 20000 / 10);
    ck_assert_uint_le(d.calls, s.fsyncs); /* at most one report per sync */
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(loop_stays_alive_until_appends_are_durable)
{
    uint32_t q = 1;
    char body[16];
    struct store_loc loc;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct durable_watch d = {.monotonic = true};
    struct store_msg m = make_msg(&q, 1, 1, body, sizeof(body));

    store_on_durable(st, on_durable, &d);
    /* Nothing pending: the store's watchers do not keep ev_run alive. */
    ev_run(loop, 0);
    ck_assert_uint_eq(d.calls, 0);
    store_append_message(st, &m, &loc);
    store_append_message(st, &m, &loc);
    /* No target: ev_run returns by itself once the store has nothing pending. */
    ev_run(loop, 0);
    ck_assert_uint_eq(d.seen, 2);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(sync_interval_limits_fsync_rate)
{
    struct store_options opts = {.sync_interval_ms = 100};
    char err[256];
    struct store *st = store_open(loop, dir, &opts, err, sizeof(err));
    struct producer p = {.st = st, .total = 400, .per_turn = 1};
    struct durable_watch d = {.target = 400, .monotonic = true};
    struct store_stats s;
    ev_timer t;
    bool timed_out = false;
    ev_tstamp start;

    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(store_recover(st, NULL, NULL), 0);
    store_on_durable(st, on_durable, &d);
    ev_idle_init(&p.idle, produce);
    p.idle.data = &p;
    ev_idle_start(loop, &p.idle);
    ev_timer_init(&t, on_timeout, 10.0, 0);
    t.data = &timed_out;
    ev_timer_start(loop, &t);
    ev_now_update(loop);
    start = ev_now(loop);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    ev_now_update(loop);
    ck_assert(!timed_out);
    store_stats(st, &s);
    /* At most one fsync per 100 ms, plus the first. */
    ck_assert_uint_le(s.fsyncs, 2 + (uint64_t)((ev_now(loop) - start) * 10));
    store_close(st);
}
END_TEST

/* ---- Paging ----------------------------------------------------------------------------- */

START_TEST(paged_messages_read_back_and_their_segments_go_when_released)
{
    enum { N = 300 };
    uint32_t q = 1;
    char body[200];
    struct store_loc locs[N];
    struct found f = {0};
    struct store *st = open_recover(4096, &f);

    for (unsigned i = 0; i < N; i++) {
        struct store_msg m = make_msg(&q, 0, i, body, sizeof(body));
        ck_assert_int_eq(store_page_out(st, &m, &locs[i]), 0);
        ck_assert(locs[i].flags & STORE_LOC_PAGING);
    }
    store_flush(st);
    ck_assert_uint_gt(count_files("paging", NULL), 10);
    ck_assert_uint_eq(count_files("msgs", NULL), 0); /* nothing durable was written */
    for (unsigned i = 0; i < N; i++)
        assert_msg(st, locs[i], i, sizeof(body));
    for (unsigned i = 0; i < N - 1; i++)
        store_release(st, locs[i]);
    ck_assert_uint_eq(count_files("paging", NULL), 1); /* the active one */
    assert_msg(st, locs[N - 1], N - 1, sizeof(body));
    store_close(st);
    ck_assert_uint_eq(count_files("paging", NULL), 0);
    free(f.v);
}
END_TEST

START_TEST(failed_paging_write_refuses_further_page_outs)
{
    uint32_t q = 1;
    char body[1000];
    struct store_loc first, lost;
    struct found f = {0};
    struct store *st = open_recover(0, &f);
    struct store_msg m = make_msg(&q, 0, 1, body, sizeof(body));
    struct rlimit lim, saved;
    uint8_t buf[2048];
    struct store_msg out;

    ck_assert_int_eq(store_page_out(st, &m, &first), 0);
    store_flush(st);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = first.offset + first.size + 100;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(store_page_out(st, &m, &lost), 0);
    store_flush(st);
    ck_assert_int_eq(store_page_out(st, &m, &lost), -EFBIG);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_msg(st, first, 1, sizeof(body));
    ck_assert_int_eq(store_read(st, lost, buf, sizeof(buf), &out), -EIO);
    store_close(st);
    free(f.v);
}
END_TEST

START_TEST(paging_area_is_emptied_at_open)
{
    uint32_t q = 1;
    char body[16];
    struct store_loc loc;
    struct found f = {0};
    char path[600];
    int fd;

    snprintf(path, sizeof(path), "%s/paging", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/paging/00000003.seg", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_eq(write(fd, "leftover from a crash", 21), 21);
    close(fd);
    struct store *st = open_recover(0, &f);
    ck_assert_int_eq(access(path, F_OK), -1);
    struct store_msg m = make_msg(&q, 2, 1, body, sizeof(body));
    uint32_t two[2] = {1, 2};
    m.queue_ids = two;
    ck_assert_int_eq(store_page_out(st, &m, &loc), 0);
    ck_assert_uint_eq(f.n, 0);
    store_close(st);
    free(f.v);
}
END_TEST

/* ---- The lock --------------------------------------------------------------------------- */

START_TEST(second_open_of_a_directory_is_refused)
{
    char err[512] = "", want[128];
    struct store *a = open_store(0);
    struct store *b = store_open(loop, dir, NULL, err, sizeof(err));

    ck_assert_ptr_null(b);
    snprintf(want, sizeof(want), "is in use by another warrend (pid %ld)", (long)getpid());
    ck_assert_msg(strstr(err, dir) != NULL && strstr(err, want) != NULL, "error: %s", err);
    store_close(a);
    b = store_open(loop, dir, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(b);
    store_close(b);
}
END_TEST

START_TEST(open_creates_missing_directories)
{
    char sub[700], err[256];

    snprintf(sub, sizeof(sub), "%s/a/b/data", dir);
    struct store *st = store_open(loop, sub, NULL, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    snprintf(sub, sizeof(sub), "%s/a/b/data/msgs", dir);
    ck_assert_int_eq(access(sub, F_OK), 0);
    snprintf(sub, sizeof(sub), "%s/a/b/data/LOCK", dir);
    ck_assert_int_eq(access(sub, F_OK), 0);
    store_close(st);
}
END_TEST

/* ---- Measurement ------------------------------------------------------------------------ */

/* Not a test (so no ck_assert, which needs a running test): a single producer appends
 * 16-byte persistent messages from the loop for a while, as fast as it can, and the group
 * commit syncs them. */

struct bench {
    struct store *st;
    uint64_t appended, durable;
    bool stopping;
    ev_idle idle;
    ev_timer stop;
};

static void bench_produce(struct ev_loop *l, ev_idle *w, int revents)
{
    struct bench *b = w->data;
    static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
    uint32_t q = 1;
    struct store_loc loc;
    struct store_msg m = {
        .queue_ids = &q,
        .queue_count = 1,
        .exchange = wire_cstr(""),
        .routing_key = wire_cstr("bench"),
        .header = {header, sizeof(header)},
        .body = {(const uint8_t *)"0123456789abcdef", 16},
    };

    (void)l;
    (void)revents;
    for (int i = 0; i < 256; i++)
        b->appended = store_append_message(b->st, &m, &loc);
}

static void bench_durable(void *ctx, uint64_t seq)
{
    struct bench *b = ctx;

    b->durable = seq;
    if (b->stopping && seq >= b->appended)
        ev_break(loop, EVBREAK_ALL);
}

static void bench_stop(struct ev_loop *l, ev_timer *w, int revents)
{
    struct bench *b = w->data;

    (void)revents;
    ev_idle_stop(l, &b->idle);
    b->stopping = true;
    if (b->durable >= b->appended)
        ev_break(l, EVBREAK_ALL);
}

static void bench_count(void *ctx, const struct store_recovered *r)
{
    (void)r;
    (*(uint64_t *)ctx)++;
}

static int bench(double seconds)
{
    const char *tmp = getenv("TMPDIR");
    struct store_options opts = {0};
    struct store_stats s;
    struct bench b = {0};
    char err[256];
    ev_tstamp start, end;
    uint64_t disk = 0;
    struct dirent *e;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/check_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    loop = ev_loop_new(EVFLAG_AUTO);
    if ((b.st = store_open(loop, dir, &opts, err, sizeof(err))) == NULL ||
        store_recover(b.st, NULL, NULL) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    store_on_durable(b.st, bench_durable, &b);
    ev_idle_init(&b.idle, bench_produce);
    b.idle.data = &b;
    ev_idle_start(loop, &b.idle);
    ev_timer_init(&b.stop, bench_stop, seconds, 0);
    b.stop.data = &b;
    ev_timer_start(loop, &b.stop);
    ev_now_update(loop);
    start = ev_now(loop);
    ev_run(loop, 0);
    ev_now_update(loop);
    end = ev_now(loop);
    store_stats(b.st, &s);

    char sub[600];
    snprintf(sub, sizeof(sub), "%s/msgs", dir);
    if ((d = opendir(sub)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char p[1200];
            struct stat sb;
            snprintf(p, sizeof(p), "%s/%s", sub, e->d_name);
            if (e->d_name[0] != '.' && stat(p, &sb) == 0)
                disk += (uint64_t)sb.st_size;
        }
        closedir(d);
    }
    printf("store bench: %.2f s; %" PRIu64 " appends of 16-byte messages, all durable "
           "(%.0f/s); %" PRIu64 " fdatasyncs (%.0f/s, %.0f appends each); %" PRIu64
           " bytes in %" PRIu64 " segments = %.1f bytes on disk per message\n",
           end - start, s.durable_seq, (double)s.durable_seq / (end - start), s.fsyncs,
           (double)s.fsyncs / (end - start),
           (double)s.durable_seq / (double)(s.fsyncs ? s.fsyncs : 1), disk, s.segments,
           (double)disk / (double)(s.durable_seq ? s.durable_seq : 1));
    store_close(b.st);

    /* Start-up cost of that backlog: reopen and recover every message. */
    struct timespec t0, t1;
    uint64_t recovered = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((b.st = store_open(loop, dir, &opts, err, sizeof(err))) == NULL ||
        store_recover(b.st, bench_count, &recovered) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("store bench: recovered %" PRIu64 " messages in %.2f s (%.0f/s)\n", recovered, secs,
           (double)recovered / secs);
    store_close(b.st);
    ev_loop_destroy(loop);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- Suite ------------------------------------------------------------------------------ */

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc;

    tc = tcase_create("crc32c");
    tcase_add_test(tc, crc32c_matches_published_check_values);
    tcase_add_test(tc, crc32c_hardware_and_tables_agree_at_every_length_and_alignment);
    suite_add_tcase(s, tc);

    tc = tcase_create("segments");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, message_round_trips_from_buffer_file_and_after_reopen);
    tcase_add_test(tc, many_messages_cross_segment_boundaries_and_read_back);
    tcase_add_test(tc, message_bigger_than_a_segment_gets_its_own);
    tcase_add_test(tc, big_message_written_at_once_is_reported_durable);
    tcase_add_test(tc, acked_segments_are_deleted_and_disk_use_drops);
    tcase_add_test(tc, one_stuck_message_pins_only_its_own_segment);
    tcase_add_test(tc, ack_in_deleted_segment_is_carried_forward);
    tcase_add_test(tc, acks_that_fill_segments_of_their_own_are_not_carried_round_and_round);
    tcase_add_test(tc, deleted_queue_messages_are_not_resurrected);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, recovery_after_clean_close_keeps_order_per_queue);
    tcase_add_test(tc, delivery_counts_and_delivered_flags_survive);
    tcase_add_test(tc, publish_time_and_deadline_survive_and_untimed_records_still_read);
    tcase_add_test(tc, message_for_three_queues_is_written_once_and_recovered_into_each);
    tcase_add_test(tc, torn_last_record_is_cut_at_every_offset);
    tcase_add_test(tc, corrupt_byte_in_last_record_cuts_it);
    tcase_add_test(tc, corrupt_record_in_earlier_segment_is_skipped_not_cut);
    tcase_add_test(tc, segment_with_torn_header_is_removed);
    tcase_add_test(tc, confirmed_messages_survive_kill_9);
    tcase_add_test(tc, recovered_reference_of_unknown_queue_can_be_released);
    tcase_add_test(tc, write_failure_is_reported_and_appends_are_refused);
    tcase_add_test(tc, failed_store_resumes_and_writes_what_it_kept);
    suite_add_tcase(s, tc);

    tc = tcase_create("group_commit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, group_commit_syncs_many_appends_at_once);
    tcase_add_test(tc, loop_stays_alive_until_appends_are_durable);
    tcase_add_test(tc, sync_interval_limits_fsync_rate);
    suite_add_tcase(s, tc);

    tc = tcase_create("paging");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, paged_messages_read_back_and_their_segments_go_when_released);
    tcase_add_test(tc, failed_paging_write_refuses_further_page_outs);
    tcase_add_test(tc, paging_area_is_emptied_at_open);
    suite_add_tcase(s, tc);

    tc = tcase_create("lock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, second_open_of_a_directory_is_refused);
    tcase_add_test(tc, open_creates_missing_directories);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;

    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return bench(argc > 2 ? atof(argv[2]) : 3.0);
    sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
