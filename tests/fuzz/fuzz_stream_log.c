/* Fuzz target for the stream log (src/store/stream_log.h): the input becomes the segment
 * files (and, if asked, the index files) of a log in a directory of its own, which is then
 * opened (recovery), read with cursors, sought into every way, appended to, trimmed by
 * retention, reopened and destroyed. Besides crashes, hangs and sanitizer reports it checks
 * what the log promises: every seek gives the record a reader scanning the whole log from
 * its start finds. That holds whatever the segment bytes are, as long as the index files
 * are the log's own (written or rebuilt by it from the segments); index files taken from
 * the input are only required not to crash it, since a forged index whose checksums all
 * pass may place a time seek differently (stream_log.h, "Index").
 *
 * Input:
 *   u8 flags   bits 0-1: segments - 1; bit 2: the first segment's 16-byte file header comes
 *              from the input (else a valid one is written); bit 3: every segment but the
 *              last gets an index file from the input (a valid header, then the bytes);
 *              bit 4: append, apply retention and reopen before the checks are repeated
 *   u8 first   the first offset of the first segment
 *   per segment: u16 gap (segments after the first: its first offset is the previous
 *              one's plus gap), u16 n, n bytes of the file after its header; with bit 3 and
 *              not the last segment, u16 m, m bytes of its index after the header
 * Lengths are big-endian; a short input ends the list of segments. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/store/recfile.h"
#include "src/store/stream_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SCAN  512 /* records compared; what is after is only read */
#define MAX_SEEKS 64  /* offsets and times sought (spread over the log): executions stay fast */

static struct ev_loop *loop;
static struct stream_sync *sync_;
static char top[512], dir[600];

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void clear_dir(void);

static void remove_top(void)
{
    clear_dir();
    rmdir(top);
}

static void setup_once(void)
{
    const char *tmp = getenv("TMPDIR");

    if (loop != NULL)
        return;
    log_set_level(LOG_LEVEL_NONE);
    snprintf(top, sizeof top, "%s/fuzz_stream_log.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    check(mkdtemp(top) != NULL);
    snprintf(dir, sizeof dir, "%s/log", top);
    loop = ev_loop_new(EVFLAG_AUTO);
    sync_ = stream_sync_new(loop, NULL, NULL, NULL);
    atexit(remove_top);
}

/* Empties and removes the log directory (what open left behind when it refused the log). */
static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[1000];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

struct input {
    const uint8_t *pos, *end;
};

static bool take_u16(struct input *in, size_t *v)
{
    if (in->end - in->pos < 2)
        return false;
    *v = (size_t)in->pos[0] << 8 | in->pos[1];
    in->pos += 2;
    return true;
}

static bool take(struct input *in, size_t n, const uint8_t **p)
{
    if ((size_t)(in->end - in->pos) < n)
        n = (size_t)(in->end - in->pos);
    *p = in->pos;
    in->pos += n;
    return true;
}

static void write_file(const char *path, const char magic[8], const uint8_t *hdr,
                       const uint8_t *body, size_t n)
{
    uint8_t valid[RECFILE_FILE_HEADER_BYTES];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);

    check(fd >= 0);
    if (hdr == NULL) {
        recfile_header_encode(valid, magic, 1, 0);
        hdr = valid;
    }
    check(write(fd, hdr, RECFILE_FILE_HEADER_BYTES) == RECFILE_FILE_HEADER_BYTES);
    check(n == 0 || write(fd, body, n) == (ssize_t)n);
    close(fd);
}

/* Writes the files the input describes. Returns its flags. */
static unsigned make_files(const uint8_t *data, size_t size)
{
    struct input in = {.pos = data, .end = data + size};
    unsigned flags, segments;
    uint64_t first;

    if (size < 2)
        return 0;
    flags = data[0];
    first = data[1];
    in.pos += 2;
    segments = (flags & 3) + 1;
    check(mkdir(dir, 0750) == 0);
    for (unsigned i = 0; i < segments; i++) {
        const uint8_t *body, *hdr = NULL;
        size_t gap = 0, n;
        char path[700];

        if ((i > 0 && !take_u16(&in, &gap)) || !take_u16(&in, &n))
            break;
        first += gap;
        if (i == 0 && (flags & 4) != 0) {
            if ((size_t)(in.end - in.pos) < RECFILE_FILE_HEADER_BYTES)
                break;
            hdr = in.pos;
            in.pos += RECFILE_FILE_HEADER_BYTES;
        }
        take(&in, n, &body);
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, first);
        write_file(path, "WRNSTRM\n", hdr, body, (size_t)(in.pos - body));
        if ((flags & 8) != 0 && i + 1 < segments && take_u16(&in, &n)) {
            take(&in, n, &body);
            snprintf(path, sizeof path, "%s/%020" PRIu64 ".idx", dir, first);
            write_file(path, "WRNSIDX\n", NULL, body, (size_t)(in.pos - body));
        }
    }
    return flags;
}

/* ---- What a full scan finds, and every seek against it ---------------------------------- */

struct scan {
    uint64_t offset[MAX_SCAN];
    uint64_t ts[MAX_SCAN];
    size_t n;
    bool complete; /* the whole log is in it (else seeks beyond it are not compared) */
    bool in_order; /* offsets grow and are in [first, next): no overlapping segment names */
};

static void scan_all(struct stream_log *l, struct scan *s)
{
    struct stream_cursor c = {0};
    struct stream_record r;
    int rc = 0;

    s->n = 0;
    s->in_order = true;
    check(stream_cursor_seek(l, &c, STREAM_SEEK_FIRST, 0) == 0);
    while (s->n < MAX_SCAN && (rc = stream_cursor_next(l, &c, &r)) == 1) {
        /* Segments whose names overlap (segment i+1 named below the end of segment i) were
         * never written by the log: it reads them, but no order between them is promised. */
        if (r.offset < stream_log_first_offset(l) || r.offset >= stream_log_next_offset(l) ||
            (s->n > 0 && r.offset <= s->offset[s->n - 1]))
            s->in_order = false;
        s->offset[s->n] = r.offset;
        s->ts[s->n] = r.timestamp_ms;
        s->n++;
    }
    s->complete = rc == 0;
    /* Reading on to the end must stop. */
    while (rc == 1)
        rc = stream_cursor_next(l, &c, &r);
    stream_cursor_free(&c);
}

/* The scan's index of the record a seek gives; s->n: the end of the log. */
static size_t expected(struct stream_log *l, const struct scan *s, enum stream_seek how,
                       uint64_t value)
{
    uint64_t first = stream_log_first_offset(l), next = stream_log_next_offset(l), target;
    size_t i;

    if (how == STREAM_SEEK_FIRST)
        return 0;
    if (how == STREAM_SEEK_NEXT)
        return s->n;
    if (how == STREAM_SEEK_TIME) {
        for (i = 0; i < s->n && s->ts[i] < value; i++)
            ;
        return i;
    }
    if (how == STREAM_SEEK_LAST)
        target = next > first ? next - 1 : next;
    else
        target = value < first ? first : value > next ? next : value;
    for (i = 0; i < s->n && s->offset[i] < target; i++)
        ;
    return i;
}

static void check_seek(struct stream_log *l, const struct scan *s, bool compare,
                       enum stream_seek how, uint64_t value)
{
    struct stream_cursor c = {0};
    struct stream_record r;
    size_t want;
    int rc;

    if (stream_cursor_seek(l, &c, how, value) != 0) {
        check(!compare);
        stream_cursor_free(&c);
        return;
    }
    rc = stream_cursor_next(l, &c, &r);
    if (compare) {
        want = expected(l, s, how, value);
        if (want < s->n)
            check(rc == 1 && r.offset == s->offset[want] && r.timestamp_ms == s->ts[want]);
        else if (s->complete)
            check(rc == 0);
    }
    stream_cursor_free(&c);
}

static void check_log(struct stream_log *l, bool compare)
{
    static struct scan s;
    uint64_t first = stream_log_first_offset(l), next = stream_log_next_offset(l), step;

    check(first <= next);
    scan_all(l, &s);
    /* A read error in the last segment ends a scan early: nothing to compare with then. */
    compare = compare && s.complete && s.in_order;
    check_seek(l, &s, compare, STREAM_SEEK_FIRST, 0);
    check_seek(l, &s, compare, STREAM_SEEK_LAST, 0);
    check_seek(l, &s, compare, STREAM_SEEK_NEXT, 0);
    check_seek(l, &s, compare, STREAM_SEEK_OFFSET, UINT64_MAX);
    step = (next - first) / MAX_SEEKS + 1;
    for (uint64_t o = first > 0 ? first - 1 : 0; o <= next + 1; o += step)
        check_seek(l, &s, compare, STREAM_SEEK_OFFSET, o);
    check_seek(l, &s, compare, STREAM_SEEK_TIME, 0);
    check_seek(l, &s, compare, STREAM_SEEK_TIME, UINT64_MAX);
    for (size_t i = 0; i < s.n; i += s.n / MAX_SEEKS + 1) {
        check_seek(l, &s, compare, STREAM_SEEK_TIME, s.ts[i] - 1);
        check_seek(l, &s, compare, STREAM_SEEK_TIME, s.ts[i]);
        check_seek(l, &s, compare, STREAM_SEEK_TIME, s.ts[i] + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stream_log *l;
    unsigned flags;
    char err[256];
    bool own_index;

    setup_once();
    clear_dir();
    flags = make_files(data, size);
    own_index = (flags & 8) == 0;
    if ((l = stream_log_open(sync_, dir, err, sizeof err)) == NULL) {
        check(err[0] != '\0');
        clear_dir();
        return 0;
    }
    stream_log_set_limits(l, 0, 0, 4096);
    check_log(l, own_index);
    if ((flags & 16) != 0) {
        static const uint8_t body[300];
        struct stream_record r = {.body = {.ptr = body, .len = sizeof body}};
        for (int i = 0; i < 30; i++) {
            r.timestamp_ms = (uint64_t)(i * 37 % 11) + 1;
            if (stream_log_append(l, &r) == 0)
                break;
        }
        ev_run(loop, EVRUN_NOWAIT);
        check_log(l, own_index);
        stream_log_set_limits(l, 8192, 0, 4096);
        stream_log_retain(l, 1000);
        check_log(l, own_index);
        stream_log_close(l);
        if ((l = stream_log_open(sync_, dir, err, sizeof err)) == NULL) {
            clear_dir();
            return 0;
        }
        check_log(l, own_index);
    }
    stream_log_destroy(l);
    clear_dir();
    return 0;
}
