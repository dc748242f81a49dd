/* How long one seek into a stream log holds the loop: fills one segment of a stream log
 * (src/store/stream_log.h) with small messages, then times, on a fresh cursor each time,
 * a seek to the middle offset, to the middle timestamp and to the last message, and the
 * reopen of the log (the recovery of its last segment). Each seek is timed with the page
 * cache warm and again after the segment's pages were dropped (posix_fadvise DONTNEED,
 * which drops clean pages: the data was fsynced by then).
 *
 *   stream_seek [DIR] [SEGMENT_BYTES]   (default: $TMPDIR or /tmp, 500000000)
 *
 * Prints one line per case: stream_seek <case> <cache> ms=... (wall time, median of 5).
 * Writes SEGMENT_BYTES of files under DIR and removes them at the end. */
#define _GNU_SOURCE
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/store/stream_log.h"

#define BODY_BYTES 100
#define RUNS       5
#define TS_BASE    1700000000000ull

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Drops the cached pages of every file in dir (what a seek to old data meets on a busy host). */
static void drop_cache(const char *dir)
{
    char cmd[4300];
    FILE *p;
    char name[4200];

    snprintf(cmd, sizeof cmd, "ls '%s'", dir);
    if ((p = popen(cmd, "r")) == NULL)
        return;
    while (fgets(name, sizeof name, p) != NULL) {
        char path[8500];
        int fd;
        name[strcspn(name, "\n")] = '\0';
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if ((fd = open(path, O_RDONLY)) >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    pclose(p);
}

static void time_seek(struct stream_log *l, const char *dir, const char *name, enum stream_seek how,
                      uint64_t value, uint64_t expect_offset)
{
    for (int cold = 0; cold < 2; cold++) {
        double ms[RUNS];
        for (int i = 0; i < RUNS; i++) {
            struct stream_cursor c = {0};
            struct stream_record r;
            double t0;
            if (cold)
                drop_cache(dir);
            t0 = now_ms();
            if (stream_cursor_seek(l, &c, how, value) != 0 || stream_cursor_next(l, &c, &r) != 1) {
                fprintf(stderr, "stream_seek: %s failed\n", name);
                exit(1);
            }
            ms[i] = now_ms() - t0;
            if (r.offset != expect_offset) {
                fprintf(stderr, "stream_seek: %s read offset %" PRIu64 ", not %" PRIu64 "\n", name,
                        r.offset, expect_offset);
                exit(1);
            }
            stream_cursor_free(&c);
        }
        qsort(ms, RUNS, sizeof ms[0], by_value);
        printf("stream_seek %s %s ms=%.3f\n", name, cold ? "cold" : "warm", ms[RUNS / 2]);
    }
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    char base[4096], dir[4200], err[256], cmd[4300];
    uint64_t segment_bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : 500000000u;
    uint8_t body[BODY_BYTES];
    struct ev_loop *loop = EV_DEFAULT;
    struct stream_sync *y;
    struct stream_log *l;
    uint64_t n;
    double t0;

    log_set_level(LOG_LEVEL_NONE);
    snprintf(base, sizeof base, "%s/stream_seek.XXXXXX",
             argc > 1      ? argv[1]
             : tmp && *tmp ? tmp
                           : "/tmp");
    if (mkdtemp(base) == NULL) {
        perror("stream_seek: mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof dir, "%s/log", base);
    memset(body, 'b', sizeof body);
    y = stream_sync_new(loop, NULL, NULL, NULL);
    if ((l = stream_log_open(y, dir, err, sizeof err)) == NULL) {
        fprintf(stderr, "stream_seek: %s\n", err);
        return 1;
    }
    /* One segment, nearly full: the next append would start a second one. */
    stream_log_set_limits(l, 0, 0, segment_bytes);
    t0 = now_ms();
    for (n = 0;; n++) {
        struct stream_record r = {
            .timestamp_ms = TS_BASE + n,
            .routing_key = {.ptr = (const uint8_t *)"bench", .len = 5},
            .body = {.ptr = body, .len = sizeof body},
        };
        if (stream_log_disk_bytes(l) + 200 > segment_bytes)
            break;
        if (stream_log_append(l, &r) == 0) {
            fprintf(stderr, "stream_seek: append failed\n");
            return 1;
        }
        if (n % 4096 == 0)
            ev_run(loop, EVRUN_NOWAIT);
    }
    ev_run(loop, EVRUN_NOWAIT);
    printf("stream_seek fill messages=%" PRIu64 " bytes=%" PRIu64 " segments=%zu ms=%.0f\n", n,
           stream_log_disk_bytes(l), stream_log_segment_count(l), now_ms() - t0);
    time_seek(l, dir, "offset_middle", STREAM_SEEK_OFFSET, n / 2, n / 2);
    time_seek(l, dir, "time_middle", STREAM_SEEK_TIME, TS_BASE + n / 2, n / 2);
    time_seek(l, dir, "last", STREAM_SEEK_LAST, 0, n - 1);
    time_seek(l, dir, "first", STREAM_SEEK_FIRST, 0, 0);
    for (int cold = 1; cold >= 0; cold--) {
        stream_log_close(l);
        if (cold)
            drop_cache(dir);
        t0 = now_ms();
        if ((l = stream_log_open(y, dir, err, sizeof err)) == NULL) {
            fprintf(stderr, "stream_seek: reopen: %s\n", err);
            return 1;
        }
        printf("stream_seek reopen %s ms=%.1f\n", cold ? "cold" : "warm", now_ms() - t0);
    }
    time_seek(l, dir, "offset_middle_after_reopen", STREAM_SEEK_OFFSET, n / 2, n / 2);
    stream_log_destroy(l);
    stream_sync_free(y);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : 1;
}
