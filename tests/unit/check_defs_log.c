/* The definitions log: changes replayed after a reopen, the order entries are presented in,
 * atomic batches, torn and corrupt records, compaction and a crash in the middle of one.
 * Each test works in a fresh directory under $TMPDIR (or /tmp). */
#define _GNU_SOURCE
#include "src/store/defs_log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/store/recfile.h"

static char dir[512];
static char path[600];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/check_defs_log.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/defs.log", dir);
    log_set_level(LOG_LEVEL_NONE);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct defs_log *open_log(uint64_t compact_min)
{
    struct defs_log_options opts = {.compact_min_bytes = compact_min};
    char err[256] = "";
    struct defs_log *log = defs_log_open(path, &opts, err, sizeof(err));

    ck_assert_msg(log != NULL, "defs_log_open: %s", err);
    return log;
}

static off_t file_size(const char *p)
{
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    return sb.st_size;
}

/* The live set as text: "kind:key=value;" per entry, in foreach order. */
struct dump {
    char text[65536];
    size_t len;
};

static void dump_one(void *ctx, uint8_t kind, struct wire_bytes key, struct wire_bytes value)
{
    struct dump *d = ctx;
    int n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%u:%.*s=%.*s;", kind,
                     (int)key.len, (const char *)key.ptr, (int)value.len, (const char *)value.ptr);
    ck_assert_int_gt(n, 0);
    d->len += (size_t)n;
    ck_assert_uint_lt(d->len, sizeof(d->text));
}

static const char *dump(const struct defs_log *log)
{
    static struct dump d;

    d.len = 0;
    d.text[0] = '\0';
    defs_log_foreach(log, dump_one, &d);
    return d.text;
}

static void put(struct defs_log *log, uint8_t kind, const char *key, const char *value)
{
    ck_assert_int_eq(defs_log_put(log, kind, wire_cstr(key), wire_cstr(value)), 0);
}

static void del(struct defs_log *log, uint8_t kind, const char *key)
{
    ck_assert_int_eq(defs_log_delete(log, kind, wire_cstr(key)), 0);
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

START_TEST(changes_are_replayed_after_reopen)
{
    struct defs_log *log = open_log(0);
    struct wire_bytes v;

    ck_assert_str_eq(dump(log), "");
    put(log, DEFS_KIND_VHOST, "/", "");
    put(log, DEFS_KIND_EXCHANGE, "/ x", "direct");
    put(log, DEFS_KIND_QUEUE, "/ q1", "id=1");
    put(log, DEFS_KIND_QUEUE, "/ q2", "id=2");
    put(log, DEFS_KIND_BINDING, "x q1", "");
    del(log, DEFS_KIND_QUEUE, "/ q2");
    put(log, DEFS_KIND_QUEUE, "/ q1", "id=1 durable");
    ck_assert_uint_eq(defs_log_count(log), 4);
    defs_log_close(log);

    log = open_log(0);
    ck_assert_str_eq(dump(log), "1:/=;2:/ x=direct;3:/ q1=id=1 durable;4:x q1=;");
    ck_assert(defs_log_get(log, DEFS_KIND_QUEUE, wire_cstr("/ q1"), &v));
    ck_assert(wire_bytes_eq_cstr(v, "id=1 durable"));
    ck_assert(!defs_log_get(log, DEFS_KIND_QUEUE, wire_cstr("/ q2"), &v));
    /* The same key under another kind is another entry. */
    ck_assert(!defs_log_get(log, DEFS_KIND_EXCHANGE, wire_cstr("/ q1"), &v));
    defs_log_close(log);
}
END_TEST

START_TEST(replacing_keeps_position_and_recreating_moves_to_the_end)
{
    struct defs_log *log = open_log(0);

    put(log, DEFS_KIND_EXCHANGE, "a", "1");
    put(log, DEFS_KIND_EXCHANGE, "b", "1");
    put(log, DEFS_KIND_EXCHANGE, "c", "1");
    put(log, DEFS_KIND_EXCHANGE, "a", "2");
    del(log, DEFS_KIND_EXCHANGE, "b");
    put(log, DEFS_KIND_EXCHANGE, "b", "3");
    ck_assert_str_eq(dump(log), "2:a=2;2:c=1;2:b=3;");
    defs_log_close(log);
    log = open_log(0);
    ck_assert_str_eq(dump(log), "2:a=2;2:c=1;2:b=3;");
    defs_log_close(log);
}
END_TEST

START_TEST(each_change_appends_one_record_whatever_the_live_set)
{
    struct defs_log *log = open_log(1u << 30);
    char key[32];
    off_t before, after;

    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "queue-%d", i);
        put(log, DEFS_KIND_QUEUE, key, "some value");
    }
    before = file_size(path);
    put(log, DEFS_KIND_QUEUE, "one more", "v");
    after = file_size(path);
    /* frame + op + kind + key length + key + value */
    ck_assert_int_eq(after - before, RECFILE_FRAME_BYTES + 4 + 8 + 1);
    /* Deleting what is not there writes nothing. */
    del(log, DEFS_KIND_QUEUE, "never declared");
    ck_assert_int_eq(file_size(path), after);
    defs_log_close(log);
}
END_TEST

START_TEST(batch_is_invisible_until_commit_then_durable)
{
    struct defs_log *log = open_log(0);

    put(log, DEFS_KIND_EXCHANGE, "x", "fanout");
    put(log, DEFS_KIND_BINDING, "x q1", "");
    put(log, DEFS_KIND_BINDING, "x q2", "");
    defs_log_begin(log);
    del(log, DEFS_KIND_BINDING, "x q1");
    del(log, DEFS_KIND_BINDING, "x q2");
    del(log, DEFS_KIND_EXCHANGE, "x");
    put(log, DEFS_KIND_EXCHANGE, "y", "topic");
    ck_assert_str_eq(dump(log), "2:x=fanout;4:x q1=;4:x q2=;");
    ck_assert_int_eq(defs_log_commit(log), 0);
    ck_assert_str_eq(dump(log), "2:y=topic;");
    defs_log_close(log);
    log = open_log(0);
    ck_assert_str_eq(dump(log), "2:y=topic;");
    defs_log_close(log);
}
END_TEST

START_TEST(torn_last_record_is_cut_at_every_offset)
{
    struct defs_log *log = open_log(0);
    char saved[700];
    off_t good, full;

    put(log, DEFS_KIND_QUEUE, "q1", "1");
    put(log, DEFS_KIND_QUEUE, "q2", "2");
    good = file_size(path);
    put(log, DEFS_KIND_QUEUE, "q3", "a value long enough to be torn in many places");
    full = file_size(path);
    defs_log_close(log);
    snprintf(saved, sizeof(saved), "%s/saved", dir);
    copy_file(path, saved);

    for (off_t cut = good; cut < full; cut++) {
        copy_file(saved, path);
        ck_assert_int_eq(truncate(path, cut), 0);
        log = open_log(0);
        ck_assert_msg(strcmp(dump(log), "3:q1=1;3:q2=2;") == 0, "cut at %lld: %s", (long long)cut,
                      dump(log));
        ck_assert_int_eq(file_size(path), good);
        /* And the log takes appends again after the cut. */
        put(log, DEFS_KIND_QUEUE, "q4", "4");
        defs_log_close(log);
        log = open_log(0);
        ck_assert_str_eq(dump(log), "3:q1=1;3:q2=2;3:q4=4;");
        defs_log_close(log);
    }
}
END_TEST

START_TEST(torn_batch_changes_nothing)
{
    struct defs_log *log = open_log(0);
    off_t good, full;

    put(log, DEFS_KIND_EXCHANGE, "x", "direct");
    put(log, DEFS_KIND_BINDING, "x q", "");
    good = file_size(path);
    defs_log_begin(log);
    del(log, DEFS_KIND_BINDING, "x q");
    del(log, DEFS_KIND_EXCHANGE, "x");
    ck_assert_int_eq(defs_log_commit(log), 0);
    full = file_size(path);
    defs_log_close(log);
    /* Torn after the first op of the batch: neither op happened. */
    ck_assert_int_eq(truncate(path, good + (full - good) / 2), 0);
    log = open_log(0);
    ck_assert_str_eq(dump(log), "2:x=direct;4:x q=;");
    defs_log_close(log);
}
END_TEST

START_TEST(corrupt_record_in_the_middle_is_skipped)
{
    struct defs_log *log = open_log(0);
    off_t at;
    int fd;
    uint8_t b;

    put(log, DEFS_KIND_QUEUE, "q1", "1");
    at = file_size(path);
    put(log, DEFS_KIND_QUEUE, "q2", "2");
    put(log, DEFS_KIND_QUEUE, "q3", "3");
    defs_log_close(log);
    fd = open(path, O_RDWR);
    ck_assert_int_eq(pread(fd, &b, 1, at + 10), 1);
    b ^= 1;
    ck_assert_int_eq(pwrite(fd, &b, 1, at + 10), 1);
    close(fd);
    log = open_log(0);
    ck_assert_str_eq(dump(log), "3:q1=1;3:q3=3;");
    defs_log_close(log);
}
END_TEST

START_TEST(log_is_compacted_when_much_larger_than_the_live_set)
{
    struct defs_log *log = open_log(2048);
    struct defs_log_stats s;
    char key[32], value[64];

    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 10; i++) {
            snprintf(key, sizeof(key), "q%d", i);
            snprintf(value, sizeof(value), "round %d of queue %d", round, i);
            put(log, DEFS_KIND_QUEUE, key, value);
        }
        snprintf(key, sizeof(key), "tmp%d", round);
        put(log, DEFS_KIND_EXCHANGE, key, "short-lived");
        del(log, DEFS_KIND_EXCHANGE, key);
    }
    defs_log_stats(log, &s);
    ck_assert_uint_gt(s.compactions, 3);
    ck_assert_uint_eq(s.entries, 10);
    ck_assert_int_eq(file_size(path), (off_t)s.file_bytes);
    /* Never far past either threshold. */
    ck_assert_uint_le(s.file_bytes, 4 * s.live_bytes + 2048 + 200);
    char expect[4096] = "";
    for (int i = 0; i < 10; i++) {
        char one[128];
        snprintf(one, sizeof(one), "3:q%d=round 39 of queue %d;", i, i);
        strcat(expect, one);
    }
    ck_assert_str_eq(dump(log), expect);
    /* Right after a compaction the file is exactly the live set. */
    ck_assert_int_eq(defs_log_compact(log), 0);
    defs_log_stats(log, &s);
    ck_assert_uint_eq(s.file_bytes, s.live_bytes);
    ck_assert_int_eq(file_size(path), (off_t)s.live_bytes);
    defs_log_close(log);

    log = open_log(2048);
    ck_assert_str_eq(dump(log), expect);
    defs_log_close(log);
}
END_TEST

START_TEST(compaction_writes_values_larger_than_its_buffer)
{
    struct defs_log *log = open_log(0);
    size_t big = 3u << 20;
    char *value = malloc(big + 1);
    struct wire_bytes v;

    memset(value, 'v', big);
    value[big] = '\0';
    value[big - 1] = 'z';
    put(log, DEFS_KIND_POLICY, "small", "s");
    ck_assert_int_eq(defs_log_put(log, DEFS_KIND_POLICY, wire_cstr("big"),
                                  (struct wire_bytes){(const uint8_t *)value, big}),
                     0);
    put(log, DEFS_KIND_POLICY, "after", "a");
    ck_assert_int_eq(defs_log_compact(log), 0);
    defs_log_close(log);
    log = open_log(0);
    ck_assert(defs_log_get(log, DEFS_KIND_POLICY, wire_cstr("big"), &v));
    ck_assert_uint_eq(v.len, big);
    ck_assert(memcmp(v.ptr, value, big) == 0);
    ck_assert_uint_eq(defs_log_count(log), 3);
    defs_log_close(log);
    free(value);
}
END_TEST

/* A compaction that crashed before its rename leaves PATH.tmp, complete or not, beside an
 * intact PATH: the old file is what counts. */
START_TEST(crash_between_temp_write_and_rename_keeps_the_old_log)
{
    struct defs_log *log;
    char tmp[700], other[700];

    /* A complete snapshot of some other state, as the tmp file of a compaction. */
    snprintf(other, sizeof(other), "%s/other.log", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    {
        char err[256];
        struct defs_log *o = defs_log_open(other, NULL, err, sizeof(err));
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(defs_log_put(o, DEFS_KIND_QUEUE, wire_cstr("stale"), wire_cstr("x")), 0);
        ck_assert_int_eq(defs_log_compact(o), 0);
        defs_log_close(o);
    }

    log = open_log(0);
    put(log, DEFS_KIND_QUEUE, "q1", "1");
    put(log, DEFS_KIND_QUEUE, "q2", "2");
    del(log, DEFS_KIND_QUEUE, "q1");
    defs_log_close(log);

    for (int partial = 0; partial < 2; partial++) {
        copy_file(other, tmp);
        if (partial)
            ck_assert_int_eq(truncate(tmp, file_size(tmp) - 3), 0);
        log = open_log(0);
        ck_assert_str_eq(dump(log), "3:q2=2;");
        ck_assert_int_eq(access(tmp, F_OK), -1);
        defs_log_close(log);
    }
}
END_TEST

/* A file size limit makes write(2) fail with EFBIG, as a full disk would: the change is
 * refused, nothing half-written stays behind, and the log works again once there is room. */
START_TEST(failed_write_changes_nothing_and_leaves_no_torn_record)
{
    struct defs_log *log = open_log(0);
    struct rlimit lim, saved;
    char value[300];
    struct wire_bytes v;
    off_t size;

    put(log, DEFS_KIND_QUEUE, "q1", "1");
    size = file_size(path);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)size + 100;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    memset(value, 'v', sizeof(value));
    ck_assert_int_eq(defs_log_put(log, DEFS_KIND_QUEUE, wire_cstr("q2"),
                                  (struct wire_bytes){(const uint8_t *)value, sizeof(value)}),
                     -EFBIG);
    ck_assert(!defs_log_get(log, DEFS_KIND_QUEUE, wire_cstr("q2"), &v));
    ck_assert_int_eq(file_size(path), size);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    put(log, DEFS_KIND_QUEUE, "q3", "3");
    defs_log_close(log);
    log = open_log(0);
    ck_assert_str_eq(dump(log), "3:q1=1;3:q3=3;");
    defs_log_close(log);
}
END_TEST

START_TEST(a_file_that_is_not_a_definitions_log_is_refused)
{
    char err[256] = "";
    int fd = open(path, O_WRONLY | O_CREAT, 0600);

    ck_assert_int_eq(write(fd, "this is some other file!", 24), 24);
    close(fd);
    ck_assert_ptr_null(defs_log_open(path, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "is not a warren definitions log") != NULL, "%s", err);
    ck_assert_int_eq(file_size(path), 24);
}
END_TEST

static Suite *defs_log_suite(void)
{
    Suite *s = suite_create("defs_log");
    TCase *tc = tcase_create("defs_log");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, changes_are_replayed_after_reopen);
    tcase_add_test(tc, replacing_keeps_position_and_recreating_moves_to_the_end);
    tcase_add_test(tc, each_change_appends_one_record_whatever_the_live_set);
    tcase_add_test(tc, batch_is_invisible_until_commit_then_durable);
    tcase_add_test(tc, torn_last_record_is_cut_at_every_offset);
    tcase_add_test(tc, torn_batch_changes_nothing);
    tcase_add_test(tc, corrupt_record_in_the_middle_is_skipped);
    tcase_add_test(tc, log_is_compacted_when_much_larger_than_the_live_set);
    tcase_add_test(tc, compaction_writes_values_larger_than_its_buffer);
    tcase_add_test(tc, crash_between_temp_write_and_rename_keeps_the_old_log);
    tcase_add_test(tc, failed_write_changes_nothing_and_leaves_no_torn_record);
    tcase_add_test(tc, a_file_that_is_not_a_definitions_log_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(defs_log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
