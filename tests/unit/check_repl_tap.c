/* The store's and the definitions log's taps (store_set_tap, defs_log_set_tap): what they
 * report is exactly what lands on disk. Each test replays the events into a copy of the data
 * directory taken when the tap was set, runs a workload (segment rollover, acked segments
 * deleted, records carried forward, definitions compacted, a torn tail cut at recovery), and
 * compares the two directories byte for byte. */
#define _GNU_SOURCE
#include "src/store/defs_log.h"
#include "src/store/store.h"

#include <check.h>
#include <ev.h>
#include <inttypes.h>

#include "src/base/log.h"
#include "src/store/recfile.h"
#include "tests/unit/check_repl_util.h"

static char root[512], data_dir[600], mirror_dir[600];
static struct ev_loop *loop;

static void setup(void)
{
    char p[700];

    repl_test_mkdtemp(root, sizeof(root), "check_repl_tap");
    snprintf(data_dir, sizeof(data_dir), "%s/data", root);
    snprintf(mirror_dir, sizeof(mirror_dir), "%s/mirror", root);
    ck_assert_int_eq(mkdir(data_dir, 0750), 0);
    ck_assert_int_eq(mkdir(mirror_dir, 0750), 0);
    snprintf(p, sizeof(p), "%s/msgs", mirror_dir);
    ck_assert_int_eq(mkdir(p, 0750), 0);
    loop = ev_loop_new(EVFLAG_AUTO);
    log_set_level(LOG_LEVEL_NONE);
}

static void teardown(void)
{
    repl_test_rm_rf(root);
    ev_loop_destroy(loop);
}

/* ---- The mirror: tap events replayed into mirror_dir ------------------------------------ */

struct mirror {
    unsigned created, appended, truncated, unlinked, defs_appended, defs_replaced;
    uint64_t last_seq;
};

static void seg_name(uint32_t seg, char *out, size_t n)
{
    snprintf(out, n, "%s/msgs/%08" PRIu32 ".seg", mirror_dir, seg);
}

static void m_created(void *ctx, uint32_t seg, const uint8_t *header, size_t len)
{
    struct mirror *m = ctx;
    char p[700];

    ck_assert_uint_eq(len, RECFILE_FILE_HEADER_BYTES);
    seg_name(seg, p, sizeof(p));
    repl_test_write_file(p, header, len);
    m->created++;
}

static void m_appended(void *ctx, uint32_t seg, uint64_t offset, const uint8_t *data, size_t len,
                       uint64_t seq)
{
    struct mirror *m = ctx;
    char p[700];
    struct stat sb;
    int fd;

    seg_name(seg, p, sizeof(p));
    fd = open(p, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    /* Appends are appends: each one starts where the file ends. */
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert_uint_eq((uint64_t)sb.st_size, offset);
    ck_assert_int_eq(recfile_pwrite_all(fd, data, len, offset), 0);
    close(fd);
    ck_assert_uint_ge(seq, m->last_seq);
    m->last_seq = seq;
    m->appended++;
}

static void m_truncated(void *ctx, uint32_t seg, uint64_t size)
{
    struct mirror *m = ctx;
    char p[700];

    seg_name(seg, p, sizeof(p));
    ck_assert_int_eq(truncate(p, (off_t)size), 0);
    m->truncated++;
}

static void m_unlinked(void *ctx, uint32_t seg)
{
    struct mirror *m = ctx;
    char p[700];

    seg_name(seg, p, sizeof(p));
    ck_assert_int_eq(unlink(p), 0);
    m->unlinked++;
}

static void m_defs_appended(void *ctx, uint64_t offset, const uint8_t *data, size_t len)
{
    struct mirror *m = ctx;
    char p[700];
    struct stat sb;
    int fd;

    snprintf(p, sizeof(p), "%s/defs.log", mirror_dir);
    fd = open(p, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert_uint_eq((uint64_t)sb.st_size, offset);
    ck_assert_int_eq(recfile_pwrite_all(fd, data, len, offset), 0);
    close(fd);
    m->defs_appended++;
}

static void m_defs_replaced(void *ctx, int fd, uint64_t size)
{
    struct mirror *m = ctx;
    uint8_t *buf = malloc(size);
    char p[700];

    ck_assert_int_eq(recfile_pread_all(fd, buf, size, 0), 0);
    snprintf(p, sizeof(p), "%s/defs.log", mirror_dir);
    repl_test_write_file(p, buf, size);
    free(buf);
    m->defs_replaced++;
}

static const struct store_tap mirror_store_tap = {
    .segment_created = m_created,
    .segment_appended = m_appended,
    .segment_truncated = m_truncated,
    .segment_unlinked = m_unlinked,
};

static const struct defs_log_tap mirror_defs_tap = {
    .appended = m_defs_appended,
    .replaced = m_defs_replaced,
};

/* ---- Workload helpers ------------------------------------------------------------------- */

static struct store *open_store(uint32_t segment_bytes)
{
    struct store_options opts = {.segment_bytes = segment_bytes};
    char err[256] = "";
    struct store *st = store_open(loop, data_dir, &opts, err, sizeof(err));

    ck_assert_msg(st != NULL, "store_open: %s", err);
    return st;
}

static struct defs_log *open_defs(void)
{
    struct defs_log_options o = {.compact_min_bytes = 600, .compact_ratio = 2};
    char p[700], err[256] = "";
    struct defs_log *d;

    snprintf(p, sizeof(p), "%s/defs.log", data_dir);
    d = defs_log_open(p, &o, err, sizeof(err));
    ck_assert_msg(d != NULL, "defs_log_open: %s", err);
    return d;
}

static struct store_loc publish(struct store *st, const uint32_t *queues, uint32_t nq, unsigned n)
{
    static const uint8_t header[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0x10, 0, 2};
    char body[200];
    size_t len = 20 + (n * 37) % 150;
    struct store_loc loc;

    memset(body, 'a' + (char)(n % 26), len);
    struct store_msg m = {
        .queue_ids = queues,
        .queue_count = nq,
        .exchange = wire_cstr("amq.direct"),
        .routing_key = wire_cstr("rk"),
        .header = {header, sizeof(header)},
        .body = {(const uint8_t *)body, len},
    };
    ck_assert_uint_gt(store_append_message(st, &m, &loc), 0);
    return loc;
}

static void run_loop(void)
{
    for (int i = 0; i < 50; i++)
        ev_run(loop, EVRUN_NOWAIT);
    usleep(2000);
    for (int i = 0; i < 50; i++)
        ev_run(loop, EVRUN_NOWAIT);
}

static void copy_data_dir_to_mirror(void)
{
    static char names[4096][16];
    size_t n = repl_test_list_segs(data_dir, names, 4096);
    char a[700], b[700];

    for (size_t i = 0; i < n; i++) {
        snprintf(a, sizeof(a), "%s/msgs/%s", data_dir, names[i]);
        snprintf(b, sizeof(b), "%s/msgs/%s", mirror_dir, names[i]);
        repl_test_copy_file(a, b);
    }
    snprintf(a, sizeof(a), "%s/defs.log", data_dir);
    snprintf(b, sizeof(b), "%s/defs.log", mirror_dir);
    if (access(a, F_OK) == 0)
        repl_test_copy_file(a, b);
}

/* ---- Tests ------------------------------------------------------------------------------ */

START_TEST(tap_replay_reproduces_segments_and_definitions_byte_for_byte)
{
    struct mirror m = {0};
    static const uint32_t q1[] = {1}, q2[] = {2}, q12[] = {1, 2};
    static struct store_loc locs[600];
    /* Segments small enough to roll over and be deleted many times, big enough to hold the
     * acks carried forward (all carried records filling segments of their own would be
     * carried again and again). */
    struct store *st = open_store(16384);
    struct defs_log *defs;
    char key[32], value[64];

    store_set_tap(st, &mirror_store_tap, &m);
    ck_assert_int_eq(store_recover(st, NULL, NULL), 0);
    defs = open_defs();
    copy_data_dir_to_mirror(); /* the header a new log starts with */
    defs_log_set_tap(defs, &mirror_defs_tap, &m);

    for (unsigned i = 0; i < 600; i++) {
        const uint32_t *q = i % 3 == 0 ? q1 : (i % 3 == 1 ? q2 : q12);
        locs[i] = publish(st, q, i % 3 == 2 ? 2 : 1, i);
        if (i % 10 == 0) {
            snprintf(key, sizeof(key), "queue-%u", i % 7);
            snprintf(value, sizeof(value), "value of %u", i);
            ck_assert_int_eq(defs_log_put(defs, DEFS_KIND_QUEUE, wire_cstr(key), wire_cstr(value)),
                             0);
        }
        if (i % 50 == 0)
            run_loop();
    }
    run_loop();
    /* Queue 1 consumes everything: segments holding only queue 1's messages and acks go,
     * others carry their acks forward. */
    for (unsigned i = 0; i < 600; i++) {
        if (i % 3 != 1)
            store_ack(st, 1, locs[i]);
        if (i % 40 == 0)
            run_loop();
    }
    run_loop();
    /* Queue 2 consumes all but its last 30. */
    for (unsigned i = 0; i < 570; i++) {
        if (i % 3 != 0)
            store_ack(st, 2, locs[i]);
        if (i % 40 == 0)
            run_loop();
    }
    defs_log_begin(defs);
    for (unsigned i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "queue-%u", i);
        ck_assert_int_eq(defs_log_delete(defs, DEFS_KIND_QUEUE, wire_cstr(key)), 0);
    }
    ck_assert_int_eq(defs_log_commit(defs), 0);
    run_loop();
    store_close(st);
    defs_log_close(defs);

    ck_assert_uint_ge(m.created, 5);
    ck_assert_uint_ge(m.unlinked, 3);
    ck_assert_uint_gt(m.appended, m.created);
    ck_assert_uint_gt(m.defs_appended, 5);
    ck_assert_uint_ge(m.defs_replaced, 1);
    ck_assert_uint_gt(repl_test_assert_same_dirs(data_dir, mirror_dir), 0);
}
END_TEST

START_TEST(tap_reports_the_torn_tail_recovery_cuts)
{
    struct mirror m = {0};
    static const uint32_t q1[] = {1};
    struct store *st = open_store(4096);
    char p[700];
    int fd;

    ck_assert_int_eq(store_recover(st, NULL, NULL), 0);
    for (unsigned i = 0; i < 10; i++)
        publish(st, q1, 1, i);
    store_close(st);
    /* Half a record at the end, as a crash in the middle of a write leaves it. */
    snprintf(p, sizeof(p), "%s/msgs/00000001.seg", data_dir);
    fd = open(p, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\0\0\0\x40garbage", 11), 11);
    close(fd);
    copy_data_dir_to_mirror();

    st = open_store(4096);
    store_set_tap(st, &mirror_store_tap, &m);
    ck_assert_int_eq(store_recover(st, NULL, NULL), 0);
    ck_assert_uint_eq(m.truncated, 1);
    publish(st, q1, 1, 99);
    store_close(st);
    /* Recovery sealed segment 1: the new message went to segment 2. */
    ck_assert_uint_eq(repl_test_assert_same_dirs(data_dir, mirror_dir), 2);
}
END_TEST

START_TEST(roll_segment_starts_a_new_segment_with_its_header_on_disk)
{
    struct mirror m = {0};
    static const uint32_t q1[] = {1};
    struct store *st = open_store(1 << 20);
    uint32_t number = 0;
    char p[700];
    struct stat sb;

    store_set_tap(st, &mirror_store_tap, &m);
    ck_assert_int_eq(store_recover(st, NULL, NULL), 0);
    publish(st, q1, 1, 1);
    ck_assert_int_eq(store_roll_segment(st, 0, &number), 0);
    ck_assert_uint_eq(number, 2);
    ck_assert_int_eq(store_roll_segment(st, 10, &number), 0);
    ck_assert_uint_eq(number, 10);
    snprintf(p, sizeof(p), "%s/msgs/00000010.seg", data_dir);
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_size, RECFILE_FILE_HEADER_BYTES);
    publish(st, q1, 1, 2);
    store_close(st);
    /* Segment 2 held nothing and was sealed: it is gone; 1 and 10 stay. */
    ck_assert_uint_eq(repl_test_assert_same_dirs(data_dir, mirror_dir), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("repl_tap");
    TCase *tc = tcase_create("tap");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tap_replay_reproduces_segments_and_definitions_byte_for_byte);
    tcase_add_test(tc, tap_reports_the_torn_tail_recovery_cuts);
    tcase_add_test(tc, roll_segment_starts_a_new_segment_with_its_header_on_disk);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
