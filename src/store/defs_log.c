#include "src/store/defs_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/hmap.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/store/recfile.h"

#define DEFS_MAGIC   "WRNDEFS\n"
#define DEFS_VERSION 1
#define MAX_BODY     (256u << 20) /* a definitions record is never near this */
#define WRITE_CHUNK  (1u << 20)   /* compaction writes in pieces of this size */

#define DEFAULT_COMPACT_MIN   (1u << 20)
#define DEFAULT_COMPACT_RATIO 4

enum defs_op {
    OP_PUT = 1,
    OP_DEL = 2,
    OP_BATCH = 3,
};

struct defs_entry {
    struct defs_entry *prev, *next; /* in order of first put */
    uint8_t *ckey;                  /* kind byte, then the key: the map's key */
    size_t ckey_len;
    uint8_t *value;
    size_t value_len;
};

struct defs_log {
    char *path;
    char *tmp_path;
    char *dir_path;
    int fd;
    uint64_t file_bytes;
    uint64_t live_bytes; /* header plus one PUT record per entry */
    uint64_t compact_min;
    uint32_t compact_ratio;
    uint64_t compactions;
    struct hmap map; /* ckey -> struct defs_entry */
    struct defs_entry *head, *tail;

    bool in_batch;
    uint8_t *batch; /* encoded ops of the open batch */
    size_t batch_len, batch_cap;
    uint32_t batch_count;

    const struct defs_log_tap *tap; /* defs_log_set_tap(), or NULL */
    void *tap_ctx;
};

/* ---- The live set ----------------------------------------------------------------------- */

static uint64_t put_record_bytes(size_t ckey_len, size_t value_len)
{
    return RECFILE_FRAME_BYTES + 1 + 1 + 2 + (ckey_len - 1) + value_len;
}

static struct wire_bytes ckey_make(uint8_t kind, struct wire_bytes key, uint8_t *buf)
{
    buf[0] = kind;
    if (key.len)
        memcpy(buf + 1, key.ptr, key.len);
    return (struct wire_bytes){.ptr = buf, .len = key.len + 1};
}

static struct defs_entry *entry_find(const struct defs_log *log, uint8_t kind,
                                     struct wire_bytes key)
{
    uint8_t small[256];
    uint8_t *buf = key.len < sizeof(small) ? small : xmalloc(key.len + 1);
    struct defs_entry *e = hmap_get(&log->map, ckey_make(kind, key, buf));

    if (buf != small)
        free(buf);
    return e;
}

static void apply_put(struct defs_log *log, uint8_t kind, struct wire_bytes key,
                      struct wire_bytes value)
{
    struct defs_entry *e = entry_find(log, kind, key);
    uint8_t *copy = xmalloc(value.len ? value.len : 1);

    if (value.len)
        memcpy(copy, value.ptr, value.len);
    if (e != NULL) {
        /* Replaced in place: the entry keeps its position in the order. */
        log->live_bytes -= put_record_bytes(e->ckey_len, e->value_len);
        free(e->value);
    } else {
        e = xcalloc(1, sizeof(*e));
        e->ckey = xmalloc(key.len + 1);
        e->ckey_len = ckey_make(kind, key, e->ckey).len;
        e->prev = log->tail;
        if (log->tail)
            log->tail->next = e;
        else
            log->head = e;
        log->tail = e;
        hmap_put(&log->map, (struct wire_bytes){e->ckey, e->ckey_len}, e);
    }
    e->value = copy;
    e->value_len = value.len;
    log->live_bytes += put_record_bytes(e->ckey_len, e->value_len);
}

static void entry_free(struct defs_entry *e)
{
    free(e->ckey);
    free(e->value);
    free(e);
}

static void apply_delete(struct defs_log *log, uint8_t kind, struct wire_bytes key)
{
    struct defs_entry *e = entry_find(log, kind, key);

    if (e == NULL)
        return;
    hmap_remove(&log->map, (struct wire_bytes){e->ckey, e->ckey_len});
    if (e->prev)
        e->prev->next = e->next;
    else
        log->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        log->tail = e->prev;
    log->live_bytes -= put_record_bytes(e->ckey_len, e->value_len);
    entry_free(e);
}

void defs_log_foreach(const struct defs_log *log, defs_log_fn fn, void *ctx)
{
    for (const struct defs_entry *e = log->head; e != NULL; e = e->next) {
        fn(ctx, e->ckey[0], (struct wire_bytes){e->ckey + 1, e->ckey_len - 1},
           (struct wire_bytes){e->value, e->value_len});
    }
}

bool defs_log_get(const struct defs_log *log, uint8_t kind, struct wire_bytes key,
                  struct wire_bytes *value)
{
    const struct defs_entry *e = entry_find(log, kind, key);

    if (e == NULL)
        return false;
    *value = (struct wire_bytes){e->value, e->value_len};
    return true;
}

size_t defs_log_count(const struct defs_log *log)
{
    return log->map.len;
}

/* ---- Records ---------------------------------------------------------------------------- */

/* A PUT or DEL record, frame included, in a new buffer of *len bytes. */
static uint8_t *encode_change(enum defs_op op, uint8_t kind, struct wire_bytes key,
                              struct wire_bytes value, size_t *len)
{
    size_t body = 1 + 1 + 2 + key.len + (op == OP_PUT ? value.len : 0);
    uint8_t *rec = xmalloc(RECFILE_FRAME_BYTES + body);
    struct wire_writer w = wire_writer_init(rec + RECFILE_FRAME_BYTES, body);

    wire_put_u8(&w, (uint8_t)op);
    wire_put_u8(&w, kind);
    wire_put_u16(&w, (uint16_t)key.len);
    wire_put_bytes(&w, key.ptr, key.len);
    if (op == OP_PUT)
        wire_put_bytes(&w, value.ptr, value.len);
    assert(wire_writer_used(&w) == body);
    recfile_frame_seal(rec, (uint32_t)body);
    *len = RECFILE_FRAME_BYTES + body;
    return rec;
}

/* Replays a BATCH body: checked whole first, so a malformed batch changes nothing. */
static bool replay_batch(struct defs_log *log, struct wire_reader r)
{
    for (int pass = 0; pass < 2; pass++) {
        struct wire_reader p = r;
        uint32_t count;

        if (!wire_u32(&p, &count))
            return false;
        for (uint32_t i = 0; i < count; i++) {
            struct wire_bytes key, value;
            uint8_t op, kind;
            uint16_t klen;
            if (!wire_u8(&p, &op) || !wire_u8(&p, &kind) || !wire_u16(&p, &klen) ||
                !wire_bytes(&p, klen, &key) || !wire_longstr(&p, &value) ||
                (op != OP_PUT && op != OP_DEL))
                return false;
            if (pass == 1 && op == OP_PUT)
                apply_put(log, kind, key, value);
            else if (pass == 1)
                apply_delete(log, kind, key);
        }
        if (wire_left(&p) != 0)
            return false;
    }
    return true;
}

static bool replay_record(struct defs_log *log, struct wire_bytes body)
{
    struct wire_reader r = wire_reader_init(body.ptr, body.len);
    struct wire_bytes key, value;
    uint8_t op, kind;
    uint16_t klen;

    if (!wire_u8(&r, &op))
        return false;
    if (op == OP_BATCH)
        return replay_batch(log, r);
    if (!wire_u8(&r, &kind) || !wire_u16(&r, &klen) || !wire_bytes(&r, klen, &key))
        return false;
    if (op == OP_PUT) {
        (void)wire_bytes(&r, wire_left(&r), &value);
        apply_put(log, kind, key, value);
        return true;
    }
    if (op == OP_DEL && wire_left(&r) == 0) {
        apply_delete(log, kind, key);
        return true;
    }
    return false;
}

static bool op_ok(uint8_t type)
{
    return type >= OP_PUT && type <= OP_BATCH;
}

/* ---- Appending -------------------------------------------------------------------------- */

static void maybe_compact(struct defs_log *log)
{
    if (log->file_bytes > log->compact_min &&
        log->file_bytes / log->compact_ratio > log->live_bytes) {
        int rc = defs_log_compact(log);
        if (rc < 0)
            log_error(NULL, "definitions: compacting %s failed: %s; the log keeps growing",
                      log->path, strerror(-rc));
    }
}

/* Appends a record and syncs it. On failure the file is cut back to where it was, so the
 * next append does not follow a torn record. */
static int append_sync(struct defs_log *log, const uint8_t *rec, size_t len)
{
    int rc = recfile_pwrite_all(log->fd, rec, len, log->file_bytes);

    if (rc == 0 && fdatasync(log->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        log_error(NULL, "definitions: writing %s failed: %s", log->path, strerror(-rc));
        if (ftruncate(log->fd, (off_t)log->file_bytes) < 0)
            log_error(NULL, "definitions: truncating %s failed: %s", log->path, strerror(errno));
        return rc;
    }
    if (log->tap != NULL)
        log->tap->appended(log->tap_ctx, log->file_bytes, rec, len);
    log->file_bytes += len;
    return 0;
}

static void batch_add(struct defs_log *log, enum defs_op op, uint8_t kind, struct wire_bytes key,
                      struct wire_bytes value)
{
    size_t need = 1 + 1 + 2 + key.len + 4 + value.len;
    struct wire_writer w;

    if (log->batch_cap - log->batch_len < need) {
        while (log->batch_cap - log->batch_len < need)
            log->batch_cap = log->batch_cap ? log->batch_cap * 2 : 256;
        log->batch = xrealloc(log->batch, log->batch_cap);
    }
    w = wire_writer_init(log->batch + log->batch_len, need);
    wire_put_u8(&w, (uint8_t)op);
    wire_put_u8(&w, kind);
    wire_put_u16(&w, (uint16_t)key.len);
    wire_put_bytes(&w, key.ptr, key.len);
    wire_put_longstr(&w, value);
    log->batch_len += need;
    log->batch_count++;
}

int defs_log_put(struct defs_log *log, uint8_t kind, struct wire_bytes key, struct wire_bytes value)
{
    uint8_t *rec;
    size_t len;
    int rc;

    assert(key.len <= DEFS_MAX_KEY);
    if (log->in_batch) {
        batch_add(log, OP_PUT, kind, key, value);
        return 0;
    }
    rec = encode_change(OP_PUT, kind, key, value, &len);
    rc = append_sync(log, rec, len);
    free(rec);
    if (rc == 0) {
        apply_put(log, kind, key, value);
        maybe_compact(log);
    }
    return rc;
}

int defs_log_delete(struct defs_log *log, uint8_t kind, struct wire_bytes key)
{
    uint8_t *rec;
    size_t len;
    int rc;

    assert(key.len <= DEFS_MAX_KEY);
    if (log->in_batch) {
        batch_add(log, OP_DEL, kind, key, (struct wire_bytes){NULL, 0});
        return 0;
    }
    if (entry_find(log, kind, key) == NULL)
        return 0;
    rec = encode_change(OP_DEL, kind, key, (struct wire_bytes){NULL, 0}, &len);
    rc = append_sync(log, rec, len);
    free(rec);
    if (rc == 0) {
        apply_delete(log, kind, key);
        maybe_compact(log);
    }
    return rc;
}

void defs_log_begin(struct defs_log *log)
{
    assert(!log->in_batch);
    log->in_batch = true;
    log->batch_len = 0;
    log->batch_count = 0;
}

int defs_log_commit(struct defs_log *log)
{
    size_t body = 1 + 4 + log->batch_len;
    uint8_t *rec;
    int rc;

    assert(log->in_batch);
    log->in_batch = false;
    if (log->batch_count == 0)
        return 0;
    rec = xmalloc(RECFILE_FRAME_BYTES + body);
    rec[RECFILE_FRAME_BYTES] = OP_BATCH;
    rec[RECFILE_FRAME_BYTES + 1] = (uint8_t)(log->batch_count >> 24);
    rec[RECFILE_FRAME_BYTES + 2] = (uint8_t)(log->batch_count >> 16);
    rec[RECFILE_FRAME_BYTES + 3] = (uint8_t)(log->batch_count >> 8);
    rec[RECFILE_FRAME_BYTES + 4] = (uint8_t)log->batch_count;
    memcpy(rec + RECFILE_FRAME_BYTES + 5, log->batch, log->batch_len);
    recfile_frame_seal(rec, (uint32_t)body);
    rc = append_sync(log, rec, RECFILE_FRAME_BYTES + body);
    if (rc == 0) {
        bool ok = replay_batch(log, wire_reader_init(rec + RECFILE_FRAME_BYTES + 1, body - 1));
        assert(ok);
        (void)ok;
        maybe_compact(log);
    }
    free(rec);
    return rc;
}

/* ---- Compaction ------------------------------------------------------------------------- */

int defs_log_compact(struct defs_log *log)
{
    uint8_t *buf = xmalloc(WRITE_CHUNK);
    size_t used = 0;
    uint64_t off = 0;
    int rc = 0;
    /* Read-write: a tap reads the new file back (defs_log_set_tap). */
    int fd = open(log->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

    if (fd < 0) {
        free(buf);
        return -errno;
    }
    recfile_header_encode(buf, DEFS_MAGIC, DEFS_VERSION, 0);
    used = RECFILE_FILE_HEADER_BYTES;
    for (const struct defs_entry *e = log->head; e != NULL && rc == 0; e = e->next) {
        struct wire_bytes key = {e->ckey + 1, e->ckey_len - 1};
        struct wire_bytes value = {e->value, e->value_len};
        size_t len;
        uint8_t *rec = encode_change(OP_PUT, e->ckey[0], key, value, &len);
        if (used + len > WRITE_CHUNK && used > 0) {
            rc = recfile_pwrite_all(fd, buf, used, off);
            off += used;
            used = 0;
        }
        if (rc == 0 && len > WRITE_CHUNK) {
            rc = recfile_pwrite_all(fd, rec, len, off);
            off += len;
        } else if (rc == 0) {
            memcpy(buf + used, rec, len);
            used += len;
        }
        free(rec);
    }
    if (rc == 0 && used > 0) {
        rc = recfile_pwrite_all(fd, buf, used, off);
        off += used;
    }
    free(buf);
    /* The new file must be complete on disk before its name replaces the old one... */
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0 && rename(log->tmp_path, log->path) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlink(log->tmp_path);
        return rc;
    }
    /* ...and the rename durable before appends to the new file can count as durable. */
    rc = recfile_fsync_dir(log->dir_path);
    if (rc < 0)
        log_error(NULL, "definitions: fsync of %s failed: %s", log->dir_path, strerror(-rc));
    close(log->fd);
    log->fd = fd;
    log->file_bytes = off;
    log->compactions++;
    if (log->tap != NULL)
        log->tap->replaced(log->tap_ctx, fd, off);
    return rc;
}

void defs_log_set_tap(struct defs_log *log, const struct defs_log_tap *tap, void *ctx)
{
    assert(tap == NULL || (tap->appended != NULL && tap->replaced != NULL));
    log->tap = tap;
    log->tap_ctx = ctx;
}

/* ---- Opening ---------------------------------------------------------------------------- */

static int replay(struct defs_log *log, char *err, size_t err_size)
{
    struct recfile_reader r;
    struct wire_bytes body;
    uint64_t off;
    int rc = 0;

    recfile_reader_init(&r, log->fd, log->file_bytes, RECFILE_FILE_HEADER_BYTES, MAX_BODY);
    for (;;) {
        enum recfile_result res = recfile_next(&r, &off, &body);
        if (res == RECFILE_END)
            break;
        if (res == RECFILE_IO) {
            snprintf(err, err_size, "cannot read %s: %s", log->path, strerror(errno));
            rc = -1;
            break;
        }
        if (res == RECFILE_OK) {
            if (!replay_record(log, body))
                log_error(NULL, "definitions: %s: malformed record at offset %" PRIu64 " skipped",
                          log->path, off);
            continue;
        }
        uint64_t bad = r.pos;
        if (recfile_resync(&r, op_ok)) {
            log_error(NULL,
                      "definitions: %s: corrupt record at offset %" PRIu64 "; skipped %" PRIu64
                      " bytes to the next valid record",
                      log->path, bad, r.pos - bad);
            continue;
        }
        log_warn(NULL,
                 "definitions: %s: torn or corrupt record at offset %" PRIu64 "; cut %" PRIu64
                 " bytes off the end",
                 log->path, bad, log->file_bytes - bad);
        if (ftruncate(log->fd, (off_t)bad) < 0 || fdatasync(log->fd) < 0) {
            snprintf(err, err_size, "cannot truncate %s: %s", log->path, strerror(errno));
            rc = -1;
        }
        log->file_bytes = bad;
        break;
    }
    recfile_reader_free(&r);
    return rc;
}

struct defs_log *defs_log_open(const char *path, const struct defs_log_options *opts, char *err,
                               size_t err_size)
{
    struct defs_log *log = xcalloc(1, sizeof(*log));
    uint8_t hdr[RECFILE_FILE_HEADER_BYTES];
    const char *slash = strrchr(path, '/');
    struct stat sb;
    size_t n = strlen(path) + 5;
    uint32_t tag;

    log->path = xstrdup(path);
    log->tmp_path = xmalloc(n);
    snprintf(log->tmp_path, n, "%s.tmp", path);
    log->dir_path = slash == NULL ? xstrdup(".") : xstrndup_bytes(wire_cstr(path));
    if (slash != NULL)
        log->dir_path[slash == path ? 1 : slash - path] = '\0';
    log->compact_min =
        opts && opts->compact_min_bytes ? opts->compact_min_bytes : DEFAULT_COMPACT_MIN;
    log->compact_ratio = opts && opts->compact_ratio ? opts->compact_ratio : DEFAULT_COMPACT_RATIO;
    hmap_init(&log->map);

    /* A compaction that did not reach its rename: the old file is the truth. */
    if (unlink(log->tmp_path) == 0)
        log_warn(NULL, "definitions: removed %s left by an unfinished compaction", log->tmp_path);

    log->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd < 0 || fstat(log->fd, &sb) < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    log->file_bytes = (uint64_t)sb.st_size;
    if (log->file_bytes < RECFILE_FILE_HEADER_BYTES) {
        /* New, or torn while being created (nothing was in it yet). */
        recfile_header_encode(hdr, DEFS_MAGIC, DEFS_VERSION, 0);
        if (ftruncate(log->fd, 0) < 0 || recfile_pwrite_all(log->fd, hdr, sizeof(hdr), 0) < 0 ||
            fsync(log->fd) < 0 || recfile_fsync_dir(log->dir_path) < 0) {
            snprintf(err, err_size, "cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        log->file_bytes = sizeof(hdr);
    } else if (recfile_pread_all(log->fd, hdr, sizeof(hdr), 0) < 0 ||
               !recfile_header_check(hdr, DEFS_MAGIC, DEFS_VERSION, &tag)) {
        snprintf(err, err_size, "%s is not a warren definitions log", path);
        goto fail;
    }
    log->live_bytes = RECFILE_FILE_HEADER_BYTES;
    if (replay(log, err, err_size) < 0)
        goto fail;
    return log;
fail:
    defs_log_close(log);
    return NULL;
}

void defs_log_stats(const struct defs_log *log, struct defs_log_stats *out)
{
    *out = (struct defs_log_stats){
        .file_bytes = log->file_bytes,
        .live_bytes = log->live_bytes,
        .entries = log->map.len,
        .compactions = log->compactions,
    };
}

void defs_log_close(struct defs_log *log)
{
    if (log == NULL)
        return;
    for (struct defs_entry *e = log->head, *next; e != NULL; e = next) {
        next = e->next;
        entry_free(e);
    }
    hmap_free(&log->map);
    if (log->fd >= 0)
        close(log->fd);
    free(log->batch);
    free(log->path);
    free(log->tmp_path);
    free(log->dir_path);
    free(log);
}
