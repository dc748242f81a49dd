/* The stream log (src/store/stream_log.h), its readers and its sparse index: every seek
 * (first, last, next, an offset at, inside or between index entries, before the log or
 * beyond its end, in a removed segment, a time before, after or between messages, with the
 * clock stepped back) gives the record a reader scanning the whole log from its start finds,
 * whatever state the index files are in: written by the log, missing, truncated, random
 * bytes, stale (a segment cut back by recovery, a sealed segment that lost its tail).
 * Each test works in a fresh directory under $TMPDIR (or /tmp). */
#define _GNU_SOURCE
#include "src/store/stream_log.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/log.h"

#define SEGMENT_BYTES (64u << 10) /* small segments: many of them, ~16 index entries each */
#define MAX_RECORDS   4096
#define TS_BASE       1700000000000ull

static char top[512];
static char dir[600];
static struct ev_loop *loop;
static struct stream_sync *sync_;

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(top, sizeof(top), "%s/check_stream_log.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(top));
    snprintf(dir, sizeof(dir), "%s/log", top);
    log_set_level(LOG_LEVEL_NONE);
    loop = ev_loop_new(EVFLAG_AUTO);
    sync_ = stream_sync_new(loop, NULL, NULL, NULL);
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
    stream_sync_free(sync_);
    ev_loop_destroy(loop);
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct stream_log *open_log(void)
{
    char err[256] = "";
    struct stream_log *l = stream_log_open(sync_, dir, err, sizeof(err));

    ck_assert_msg(l != NULL, "stream_log_open: %s", err);
    stream_log_set_limits(l, 0, 0, SEGMENT_BYTES);
    return l;
}

static struct stream_log *reopen(struct stream_log *l)
{
    stream_log_close(l);
    return open_log();
}

/* Body sizes vary (1 byte to 9 KB, more than an index interval), deterministically. */
static size_t body_len_of(uint64_t i)
{
    if (i % 53 == 7)
        return 9000;
    return (size_t)(i * 7919 % 1500) + 1;
}

static uint64_t append(struct stream_log *l, uint64_t ts_ms, size_t body_len)
{
    static uint8_t body[9000];
    struct stream_record r = {
        .timestamp_ms = ts_ms,
        .exchange = {.ptr = (const uint8_t *)"ex", .len = 2},
        .routing_key = {.ptr = (const uint8_t *)"rk", .len = 2},
        .header = {.ptr = (const uint8_t *)"hdr", .len = 3},
        .body = {.ptr = body, .len = body_len},
    };

    ck_assert_uint_le(body_len, sizeof(body));
    memset(body, (int)(ts_ms & 0xff), body_len);
    ck_assert_uint_ne(stream_log_append(l, &r), 0);
    ck_assert_uint_eq(r.timestamp_ms, ts_ms);
    if (r.offset % 64 == 0)
        ev_run(loop, EVRUN_NOWAIT); /* the end of a loop turn: buffers are written */
    return r.offset;
}

/* n messages, stamped ts_of(i) (at least 1). */
static void fill(struct stream_log *l, uint64_t n, uint64_t (*ts_of)(uint64_t))
{
    for (uint64_t i = 0; i < n; i++)
        append(l, ts_of(i), body_len_of(i));
    ev_run(loop, EVRUN_NOWAIT);
}

/* Several messages per millisecond, in order. */
static uint64_t ts_monotonic(uint64_t i)
{
    return TS_BASE + i / 3;
}

/* The clock steps back by 50 ms twice: once in the middle of a segment, once far. */
static uint64_t ts_stepped_back(uint64_t i)
{
    uint64_t t = TS_BASE + i;

    if (i >= 200)
        t -= 50;
    if (i >= 520)
        t -= 50;
    return t;
}

/* ---- The reference: what a reader reading the whole log from its start gets ----------- */

struct scan {
    uint64_t offset[MAX_RECORDS];
    uint64_t ts[MAX_RECORDS];
    size_t n;
};

static void scan_all(struct stream_log *l, struct scan *out)
{
    struct stream_cursor c = {0};
    struct stream_record r;

    out->n = 0;
    ck_assert_int_eq(stream_cursor_seek(l, &c, STREAM_SEEK_FIRST, 0), 0);
    while (stream_cursor_next(l, &c, &r) == 1) {
        ck_assert_uint_lt(out->n, MAX_RECORDS);
        out->offset[out->n] = r.offset;
        out->ts[out->n] = r.timestamp_ms;
        out->n++;
    }
    stream_cursor_free(&c);
}

/* Index in the scan of the record a seek must give; s->n for the end of the log. */
static size_t expected(struct stream_log *l, const struct scan *s, enum stream_seek how,
                       uint64_t value)
{
    uint64_t first = stream_log_first_offset(l), next = stream_log_next_offset(l), target;
    size_t i;

    switch (how) {
    case STREAM_SEEK_FIRST:
        return 0;
    case STREAM_SEEK_NEXT:
        return s->n;
    case STREAM_SEEK_TIME:
        for (i = 0; i < s->n && s->ts[i] < value; i++)
            ;
        return i;
    case STREAM_SEEK_LAST:
        target = next > first ? next - 1 : next;
        break;
    case STREAM_SEEK_OFFSET:
    default:
        target = value < first ? first : value > next ? next : value;
        break;
    }
    for (i = 0; i < s->n && s->offset[i] < target; i++)
        ;
    return i;
}

static const char *seek_name[] = {"first", "last", "next", "offset", "time"};

/* Seeks a fresh cursor and reads up to three records: they must be the scan's from the
 * expected one on. */
static void check_seek(struct stream_log *l, const struct scan *s, enum stream_seek how,
                       uint64_t value)
{
    struct stream_cursor c = {0};
    struct stream_record r;
    size_t want = expected(l, s, how, value);

    ck_assert_int_eq(stream_cursor_seek(l, &c, how, value), 0);
    for (size_t k = 0; k < 3; k++) {
        int rc = stream_cursor_next(l, &c, &r);
        if (want + k >= s->n) {
            ck_assert_msg(rc == 0, "seek %s %" PRIu64 ": record %" PRIu64 " past the end",
                          seek_name[how], value, r.offset);
            break;
        }
        ck_assert_msg(rc == 1, "seek %s %" PRIu64 ": rc %d, expected offset %" PRIu64,
                      seek_name[how], value, rc, s->offset[want + k]);
        ck_assert_msg(r.offset == s->offset[want + k] && r.timestamp_ms == s->ts[want + k],
                      "seek %s %" PRIu64 ": offset %" PRIu64 " (ts %" PRIu64
                      "), a full scan gives %" PRIu64 " (ts %" PRIu64 ")",
                      seek_name[how], value, r.offset, r.timestamp_ms, s->offset[want + k],
                      s->ts[want + k]);
    }
    stream_cursor_free(&c);
}

/* Every kind of seek, every offset and every time around the messages. */
static void check_all_seeks(struct stream_log *l)
{
    static struct scan s;
    uint64_t first = stream_log_first_offset(l), next = stream_log_next_offset(l);

    scan_all(l, &s);
    check_seek(l, &s, STREAM_SEEK_FIRST, 0);
    check_seek(l, &s, STREAM_SEEK_LAST, 0);
    check_seek(l, &s, STREAM_SEEK_NEXT, 0);
    check_seek(l, &s, STREAM_SEEK_OFFSET, 0);
    check_seek(l, &s, STREAM_SEEK_OFFSET, UINT64_MAX);
    for (uint64_t o = first > 2 ? first - 2 : 0; o <= next + 2; o++)
        check_seek(l, &s, STREAM_SEEK_OFFSET, o);
    check_seek(l, &s, STREAM_SEEK_TIME, 0);
    check_seek(l, &s, STREAM_SEEK_TIME, UINT64_MAX);
    for (size_t i = 0; i < s.n; i++) {
        check_seek(l, &s, STREAM_SEEK_TIME, s.ts[i] - 1);
        check_seek(l, &s, STREAM_SEEK_TIME, s.ts[i]);
        check_seek(l, &s, STREAM_SEEK_TIME, s.ts[i] + 1);
    }
}

/* ---- Files ----------------------------------------------------------------------------- */

/* The paths of the log's files ending in ext (".seg", ".idx"), in name order (at most 64). */
static size_t list_files(const char *ext, char out[][700])
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t count = 0;

    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ext) == 0 && count < 64)
            snprintf(out[count++], 700, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
    }
    free(names);
    return count;
}

static off_t file_size(const char *p)
{
    struct stat sb;

    ck_assert_int_eq(stat(p, &sb), 0);
    return sb.st_size;
}

static void write_file(const char *p, const void *data, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0640);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static uint8_t *read_file(const char *p, size_t *n)
{
    int fd = open(p, O_RDONLY);
    uint8_t *data;

    ck_assert_int_ge(fd, 0);
    *n = (size_t)file_size(p);
    data = malloc(*n + 1);
    ck_assert_int_eq(read(fd, data, *n), (ssize_t)*n);
    close(fd);
    return data;
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* A log of several segments (and a partly filled last one), closed and reopened. */
static struct stream_log *sample_log(uint64_t n, uint64_t (*ts_of)(uint64_t))
{
    struct stream_log *l = open_log();

    fill(l, n, ts_of);
    ck_assert_uint_ge(stream_log_segment_count(l), 4);
    return reopen(l);
}

/* ---- Tests ------------------------------------------------------------------------------ */

START_TEST(seeks_match_a_full_scan)
{
    struct stream_log *l = open_log();

    check_all_seeks(l); /* empty */
    append(l, TS_BASE, 10);
    check_all_seeks(l); /* one message, buffered */
    fill(l, 600, ts_monotonic);
    ck_assert_uint_ge(stream_log_segment_count(l), 4);
    check_all_seeks(l); /* the index as appends wrote it */
    l = reopen(l);
    check_all_seeks(l); /* sealed indexes from disk, the last one rebuilt by recovery */
    fill(l, 100, ts_monotonic);
    check_all_seeks(l); /* appends after a reopen */
    stream_log_close(l);
}
END_TEST

START_TEST(sealed_segments_have_a_small_index_ending_at_their_size)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    char segs[64][700], idxs[64][700];
    size_t n = list_files(".seg", segs);

    ck_assert_uint_eq(list_files(".idx", idxs), n);
    for (size_t i = 0; i + 1 < n; i++) {
        off_t seg = file_size(segs[i]), idx = file_size(idxs[i]);
        /* A header, an entry per 4 KiB started, an END entry. */
        ck_assert_int_eq((idx - 16) % 36, 0);
        ck_assert_int_ge(idx, 16 + 36 * 2);
        ck_assert_int_le(idx, 16 + 36 * (seg / 4096 + 2));
    }
    stream_log_close(l);
}
END_TEST

START_TEST(time_seeks_after_the_clock_stepped_back_match_a_full_scan)
{
    struct stream_log *l = open_log();

    fill(l, 700, ts_stepped_back);
    check_all_seeks(l);
    l = reopen(l);
    check_all_seeks(l);
    stream_log_close(l);
}
END_TEST

/* A reader that scanned the segment from its start would skip the rest of it at a corrupt
 * record: a seek that lands after it proves the index was used, not a scan. */
START_TEST(seek_uses_the_index_past_an_unread_region)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    char segs[64][700];
    struct stream_cursor c = {0};
    struct stream_record r;
    uint64_t first, target;
    int fd;

    ck_assert_uint_ge(list_files(".seg", segs), 2);
    first = strtoull(strrchr(segs[1], '/') + 1, NULL, 10);
    target = first + 1;
    while (target < stream_log_next_offset(l)) {
        ck_assert_int_eq(stream_cursor_seek(l, &c, STREAM_SEEK_OFFSET, target), 0);
        ck_assert_int_eq(stream_cursor_next(l, &c, &r), 1);
        if (c.pos > 16 + 3 * 4096)
            break;
        target++;
    }
    /* Damage the segment's first record. */
    fd = open(segs[1], O_WRONLY);
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, 16 + 8 + 10), 4);
    close(fd);
    ck_assert_int_eq(stream_cursor_seek(l, &c, STREAM_SEEK_OFFSET, target), 0);
    ck_assert_int_eq(stream_cursor_next(l, &c, &r), 1);
    ck_assert_uint_eq(r.offset, target);
    stream_cursor_free(&c);
    stream_log_close(l);
}
END_TEST

static void remove_indexes(void)
{
    char idxs[64][700];
    size_t n = list_files(".idx", idxs);

    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(unlink(idxs[i]), 0);
}

START_TEST(missing_indexes_are_rebuilt)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    char segs[64][700], idxs[64][700];

    stream_log_close(l);
    remove_indexes();
    l = open_log();
    check_all_seeks(l);
    /* The seeks rebuilt them. */
    ck_assert_uint_eq(list_files(".idx", idxs), list_files(".seg", segs));
    l = reopen(l);
    check_all_seeks(l);
    /* Removed while the log is open. */
    remove_indexes();
    check_all_seeks(l);
    stream_log_close(l);
}
END_TEST

START_TEST(truncated_indexes_give_the_same_results)
{
    static const int64_t cuts[] = {0, 7, 16, 16 + 36, 16 + 36 * 2 + 5, -36, -1};
    char idxs[64][700];
    struct stream_log *l = sample_log(600, ts_monotonic);

    /* Each round starts from whole indexes: the seeks of the one before rebuilt them. */
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        size_t n;

        stream_log_close(l);
        n = list_files(".idx", idxs);
        for (size_t i = 0; i < n; i++) {
            off_t size = file_size(idxs[i]);
            off_t at = cuts[k] >= 0 ? cuts[k] : size + cuts[k];
            if (at < size)
                ck_assert_int_eq(truncate(idxs[i], at < 0 ? 0 : at), 0);
        }
        l = open_log();
        check_all_seeks(l);
    }
    stream_log_close(l);
}
END_TEST

START_TEST(random_bytes_in_indexes_give_the_same_results)
{
    char idxs[64][700];
    struct stream_log *l = sample_log(600, ts_monotonic);
    size_t n;

    for (int round = 0; round < 6; round++) {
        stream_log_close(l);
        n = list_files(".idx", idxs);
        for (size_t i = 0; i < n; i++) {
            size_t size;
            uint8_t *data = read_file(idxs[i], &size);
            if (round % 3 == 0) {
                /* All random, the same size. */
                for (size_t j = 0; j < size; j++)
                    data[j] = (uint8_t)rnd();
            } else if (round % 3 == 1) {
                /* A few bytes changed, the END entry kept: found only by a seek. */
                for (int k = 0; k < 4 && size > 52; k++)
                    data[16 + rnd() % (size - 52)] ^= (uint8_t)(1 + rnd() % 255);
            } else {
                /* Random length. */
                size = (size_t)(rnd() % (size + 1));
                for (size_t j = 16; j < size; j++)
                    data[j] = (uint8_t)rnd();
            }
            write_file(idxs[i], data, size);
            free(data);
        }
        l = open_log();
        check_all_seeks(l);
        /* Damaged while the log is open (the last segment's too). */
        n = list_files(".idx", idxs);
        for (size_t i = 0; i < n; i++) {
            size_t size;
            uint8_t *data = read_file(idxs[i], &size);
            for (int k = 0; k < 8 && size > 16; k++)
                data[16 + rnd() % (size - 16)] = (uint8_t)rnd();
            write_file(idxs[i], data, size);
            free(data);
        }
        check_all_seeks(l);
    }
    stream_log_close(l);
}
END_TEST

/* The last segment loses its tail in a crash (a torn record), with its index still
 * describing the records that were there; the log goes on from the cut, with records of
 * the same sizes as those lost, so old entries point at records again. */
START_TEST(index_of_a_segment_cut_back_by_recovery_is_not_used)
{
    struct stream_log *l = open_log();
    char segs[64][700], idxs[64][700];
    size_t n, idx_size;
    uint8_t *stale;
    uint64_t next;

    fill(l, 600, ts_monotonic);
    next = stream_log_next_offset(l);
    stream_log_close(l);
    n = list_files(".seg", segs);
    ck_assert_uint_eq(list_files(".idx", idxs), n);
    stale = read_file(idxs[n - 1], &idx_size);
    /* Cut the last segment in the middle of a record, about halfway. */
    ck_assert_int_eq(truncate(segs[n - 1], file_size(segs[n - 1]) / 2 + 3), 0);
    l = open_log();
    ck_assert_uint_lt(stream_log_next_offset(l), next);
    check_all_seeks(l);
    /* The stale index is put back while the log runs, then after a restart. */
    write_file(idxs[n - 1], stale, idx_size);
    check_all_seeks(l);
    for (uint64_t i = stream_log_next_offset(l); i < next; i++)
        append(l, ts_monotonic(i) + 1000, body_len_of(i));
    ev_run(loop, EVRUN_NOWAIT);
    write_file(idxs[n - 1], stale, idx_size);
    check_all_seeks(l);
    stream_log_close(l);
    write_file(idxs[n - 1], stale, idx_size);
    l = open_log();
    check_all_seeks(l);
    /* Sealed, with more segments after it. */
    fill(l, 300, ts_monotonic);
    check_all_seeks(l);
    l = reopen(l);
    check_all_seeks(l);
    free(stale);
    stream_log_close(l);
}
END_TEST

/* A crash soon after the next segment started can leave a sealed segment without its tail
 * (its last writes were not synced yet) while its index says it was complete. */
START_TEST(index_of_a_sealed_segment_that_lost_its_tail_is_not_used)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    char segs[64][700];
    size_t n;

    stream_log_close(l);
    n = list_files(".seg", segs);
    ck_assert_int_eq(truncate(segs[1], file_size(segs[1]) - 100), 0);
    ck_assert_int_eq(truncate(segs[2], file_size(segs[2]) / 2), 0);
    l = open_log();
    check_all_seeks(l);
    (void)n;
    stream_log_close(l);
}
END_TEST

START_TEST(seeks_into_removed_segments_start_at_the_first_message_left)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    struct stream_cursor c = {0}, old = {0};
    struct stream_record r;
    size_t before = stream_log_segment_count(l);

    /* A cursor in the second segment, which retention then removes. */
    ck_assert_int_eq(stream_cursor_seek(l, &old, STREAM_SEEK_OFFSET, 60), 0);
    stream_log_set_limits(l, stream_log_disk_bytes(l) / 2, 0, SEGMENT_BYTES);
    ck_assert_uint_gt(stream_log_retain(l, TS_BASE + 1000000), 0);
    ck_assert_uint_lt(stream_log_segment_count(l), before);
    ck_assert_uint_gt(stream_log_first_offset(l), 60);
    check_all_seeks(l);
    ck_assert_int_eq(stream_cursor_seek(l, &c, STREAM_SEEK_OFFSET, 60), 0);
    ck_assert_int_eq(stream_cursor_next(l, &c, &r), 1);
    ck_assert_uint_eq(r.offset, stream_log_first_offset(l));
    ck_assert_int_eq(stream_cursor_next(l, &old, &r), 1);
    ck_assert_uint_eq(r.offset, stream_log_first_offset(l));
    stream_cursor_free(&c);
    stream_cursor_free(&old);
    /* Their index files went with them. */
    {
        char segs[64][700], idxs[64][700];
        ck_assert_uint_eq(list_files(".idx", idxs), list_files(".seg", segs));
    }
    l = reopen(l);
    check_all_seeks(l);
    stream_log_close(l);
}
END_TEST

START_TEST(index_without_its_segment_is_removed_at_open)
{
    struct stream_log *l = sample_log(600, ts_monotonic);
    char segs[64][700], idxs[64][700];

    stream_log_close(l);
    list_files(".seg", segs);
    ck_assert_int_eq(unlink(segs[0]), 0); /* a crash between the two unlinks of retention */
    l = open_log();
    ck_assert_uint_eq(list_files(".idx", idxs), list_files(".seg", segs));
    check_all_seeks(l);
    stream_log_destroy(l);
    ck_assert_int_ne(access(dir, F_OK), 0); /* nothing left behind */
}
END_TEST

static Suite *stream_log_suite(void)
{
    Suite *s = suite_create("stream_log");
    TCase *tc = tcase_create("stream_log");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, seeks_match_a_full_scan);
    tcase_add_test(tc, sealed_segments_have_a_small_index_ending_at_their_size);
    tcase_add_test(tc, time_seeks_after_the_clock_stepped_back_match_a_full_scan);
    tcase_add_test(tc, seek_uses_the_index_past_an_unread_region);
    tcase_add_test(tc, missing_indexes_are_rebuilt);
    tcase_add_test(tc, truncated_indexes_give_the_same_results);
    tcase_add_test(tc, random_bytes_in_indexes_give_the_same_results);
    tcase_add_test(tc, index_of_a_segment_cut_back_by_recovery_is_not_used);
    tcase_add_test(tc, index_of_a_sealed_segment_that_lost_its_tail_is_not_used);
    tcase_add_test(tc, seeks_into_removed_segments_start_at_the_first_message_left);
    tcase_add_test(tc, index_without_its_segment_is_removed_at_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
