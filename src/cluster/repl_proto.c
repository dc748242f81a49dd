/* The replication stream's wire format and epoch files (src/cluster/repl_proto.h). */
#include "src/cluster/repl_proto.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/base/util.h"
#include "src/store/crc32c.h"
#include "src/store/recfile.h"

/* ---- Names -------------------------------------------------------------------------------- */

const char *repl_status_text(int status)
{
    switch (status) {
    case REPL_OK:
        return "ok";
    case REPL_NEED_MORE:
        return "incomplete frame";
    case REPL_ERR_TOO_BIG:
        return "frame too big";
    case REPL_ERR_CRC:
        return "frame checksum mismatch";
    case REPL_ERR_TYPE:
        return "unknown frame type";
    case REPL_ERR_SYNTAX:
        return "malformed frame";
    default:
        return "unknown error";
    }
}

const char *repl_type_name(uint8_t type)
{
    static const char *const names[] = {
        [REPL_HELLO] = "HELLO",   [REPL_CHALLENGE] = "CHALLENGE",
        [REPL_AUTH] = "AUTH",     [REPL_CREATE] = "CREATE",
        [REPL_APPEND] = "APPEND", [REPL_TRUNCATE] = "TRUNCATE",
        [REPL_UNLINK] = "UNLINK", [REPL_REPLACE] = "REPLACE",
        [REPL_EPOCH] = "EPOCH",   [REPL_HEARTBEAT] = "HEARTBEAT",
        [REPL_ACK] = "ACK",       [REPL_ERROR] = "ERROR",
        [REPL_APPEND_LZ4] = "APPEND_LZ4",
    };
    return type < ARRAY_LEN(names) && names[type] != NULL ? names[type] : "unknown";
}

const char *repl_error_text(uint16_t code)
{
    switch (code) {
    case REPL_ERROR_PROTOCOL:
        return "protocol error";
    case REPL_ERROR_AUTH:
        return "authentication failed";
    case REPL_ERROR_STALE_EPOCH:
        return "leader epoch is stale";
    case REPL_ERROR_DEPOSED:
        return "follower has seen a newer epoch";
    case REPL_ERROR_VERSION:
        return "unsupported version";
    case REPL_ERROR_LAGGING:
        return "follower lagging";
    case REPL_ERROR_IO:
        return "follower cannot write its files";
    default:
        return "unknown error";
    }
}

/* ---- Histories ---------------------------------------------------------------------------- */

void repl_history_free(struct repl_history *h)
{
    free(h->v);
    *h = (struct repl_history){0};
}

bool repl_history_push(struct repl_history *h, uint64_t epoch, uint32_t segment)
{
    if (h->count >= REPL_HISTORY_MAX)
        return false;
    if (h->count > 0 && (epoch <= h->v[h->count - 1].epoch || segment < h->v[h->count - 1].segment))
        return false;
    h->v = xrealloc(h->v, (h->count + 1) * sizeof(*h->v));
    h->v[h->count++] = (struct repl_epoch_start){epoch, segment};
    return true;
}

bool repl_history_equal(const struct repl_history *a, const struct repl_history *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        if (a->v[i].epoch != b->v[i].epoch || a->v[i].segment != b->v[i].segment)
            return false;
    }
    return true;
}

/* Index of epoch in h, or -1. */
static long history_find(const struct repl_history *h, uint64_t epoch)
{
    for (size_t i = 0; i < h->count; i++) {
        if (h->v[i].epoch == epoch)
            return (long)i;
    }
    return -1;
}

uint32_t repl_divergence(const struct repl_history *leader, const struct repl_history *follower)
{
    uint32_t d = UINT32_MAX;

    /* The largest common epoch: the follower's entries from the newest down. */
    for (size_t k = follower->count; k-- > 0;) {
        long i = history_find(leader, follower->v[k].epoch);
        if (i < 0 || leader->v[i].segment != follower->v[k].segment)
            continue;
        /* Both logs agree up to the end of this epoch, which each ends where its next epoch
         * starts: the leader's segments from there on were written by later leaders, the
         * follower's by leaders the leader never followed. */
        if ((size_t)i + 1 < leader->count)
            d = leader->v[i + 1].segment;
        if (k + 1 < follower->count && follower->v[k + 1].segment < d)
            d = follower->v[k + 1].segment;
        return d;
    }
    return 0;
}

/* ---- Epoch files -------------------------------------------------------------------------- */

static char *dir_file(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);

    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Replaces dir/name with text: temporary file, fsync, rename, fsync of the directory. */
static int write_atomic(const char *dir, const char *name, const char *text, size_t len)
{
    char *path = dir_file(dir, name);
    size_t n = strlen(path) + 5;
    char *tmp = xmalloc(n);
    int fd, rc = 0;

    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = recfile_pwrite_all(fd, text, len, 0)) == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = recfile_fsync_dir(dir);
    if (rc < 0)
        unlink(tmp);
out:
    free(tmp);
    free(path);
    return rc;
}

/* The whole of a small file, NUL-terminated; NULL with *rc = 0 if it does not exist. */
static char *read_small(const char *dir, const char *name, size_t max, int *rc)
{
    char *path = dir_file(dir, name);
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    free(path);
    *rc = 0;
    if (fd < 0) {
        if (errno != ENOENT)
            *rc = -errno;
        return NULL;
    }
    text = xmalloc(max + 1);
    got = read(fd, text, max + 1);
    if (got < 0 || (size_t)got > max) {
        *rc = got < 0 ? -errno : -EINVAL;
        free(text);
        close(fd);
        return NULL;
    }
    text[got] = '\0';
    close(fd);
    return text;
}

/* A decimal u64 at *p, moving p past it. */
static bool parse_u64(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

int repl_epoch_read(const char *dir, uint64_t *epoch)
{
    int rc;
    char *text = read_small(dir, "cluster.epoch", 64, &rc);
    const char *p = text;

    *epoch = 0;
    if (text == NULL)
        return rc;
    if (!parse_u64(&p, epoch) || (*p != '\n' && *p != '\0'))
        rc = -EINVAL;
    free(text);
    return rc;
}

int repl_epoch_write(const char *dir, uint64_t epoch)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", epoch);

    return write_atomic(dir, "cluster.epoch", text, (size_t)n);
}

int repl_history_read(const char *dir, struct repl_history *h)
{
    int rc;
    char *text = read_small(dir, "cluster.epochs", REPL_HISTORY_MAX * 32, &rc);
    const char *p = text;

    *h = (struct repl_history){0};
    if (text == NULL)
        return rc;
    while (*p != '\0') {
        uint64_t epoch, seg;
        if (!parse_u64(&p, &epoch) || *p++ != ' ' || !parse_u64(&p, &seg) || *p++ != '\n' ||
            seg > REPL_SEGMENT_MAX || !repl_history_push(h, epoch, (uint32_t)seg)) {
            repl_history_free(h);
            rc = -EINVAL;
            break;
        }
    }
    free(text);
    return rc;
}

int repl_history_write(const char *dir, const struct repl_history *h)
{
    size_t cap = h->count * 32 + 1, len = 0;
    char *text = xmalloc(cap);
    int rc;

    text[0] = '\0';
    for (size_t i = 0; i < h->count; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%" PRIu64 " %" PRIu32 "\n", h->v[i].epoch,
                                h->v[i].segment);
    }
    rc = write_atomic(dir, "cluster.epochs", text, len);
    free(text);
    return rc;
}

int repl_begin_epoch(const char *dir, uint64_t epoch, uint32_t segment)
{
    struct repl_history h;
    uint64_t seen;
    int rc;

    if ((rc = repl_history_read(dir, &h)) < 0)
        return rc;
    if (!repl_history_push(&h, epoch, segment))
        rc = -EINVAL;
    if (rc == 0)
        rc = repl_history_write(dir, &h);
    repl_history_free(&h);
    if (rc == 0 && (rc = repl_epoch_read(dir, &seen)) == 0 && seen < epoch)
        rc = repl_epoch_write(dir, epoch);
    return rc;
}

/* ---- Frames ------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int repl_frame_next(const uint8_t *buf, size_t len, uint32_t max_payload, struct repl_frame *f)
{
    uint32_t size, crc;

    if (len < REPL_FRAME_HEADER)
        return REPL_NEED_MORE;
    if (buf[0] < REPL_HELLO || buf[0] > REPL_APPEND_LZ4)
        return REPL_ERR_TYPE;
    /* The length is checked before anything is buffered for it. */
    size = be32(buf + 1);
    if (size > max_payload)
        return REPL_ERR_TOO_BIG;
    if (len - REPL_FRAME_HEADER < size)
        return REPL_NEED_MORE;
    crc = crc32c_update(crc32c(buf, 5), buf + REPL_FRAME_HEADER, size);
    if (crc != be32(buf + 5))
        return REPL_ERR_CRC;
    *f = (struct repl_frame){
        .type = buf[0],
        .payload = {buf + REPL_FRAME_HEADER, size},
        .size = REPL_FRAME_HEADER + (size_t)size,
    };
    return REPL_OK;
}

static bool segment_ok(uint32_t seg)
{
    return seg >= 1 && seg <= REPL_SEGMENT_MAX;
}

/* A file reference: a segment with its number, or the definitions log with 0. */
static bool file_ok(uint8_t file, uint32_t seg)
{
    return (file == REPL_FILE_SEGMENT && segment_ok(seg)) || (file == REPL_FILE_DEFS && seg == 0);
}

/* A list of count 12-byte entries (u64 epoch + u32 segment for a history, u32 segment + u64
 * size for a manifest), checked ascending. */
static bool read_history(struct wire_reader *r, uint32_t *count, struct wire_bytes *list)
{
    uint64_t prev_epoch = 0;
    uint32_t prev_seg = 0;
    struct wire_reader sub;

    if (!wire_u32(r, count) || *count > REPL_HISTORY_MAX || !wire_sub(r, 12 * (size_t)*count, &sub))
        return false;
    *list = (struct wire_bytes){sub.pos, wire_left(&sub)};
    for (uint32_t i = 0; i < *count; i++) {
        uint64_t epoch = 0;
        uint32_t seg = 0;
        (void)wire_u64(&sub, &epoch);
        (void)wire_u32(&sub, &seg);
        if (seg > REPL_SEGMENT_MAX || (i > 0 && (epoch <= prev_epoch || seg < prev_seg)))
            return false;
        prev_epoch = epoch;
        prev_seg = seg;
    }
    return true;
}

static bool read_manifest(struct wire_reader *r, uint32_t *count, struct wire_bytes *list)
{
    uint32_t prev = 0;
    struct wire_reader sub;

    if (!wire_u32(r, count) || *count > REPL_MANIFEST_MAX ||
        !wire_sub(r, 12 * (size_t)*count, &sub))
        return false;
    *list = (struct wire_bytes){sub.pos, wire_left(&sub)};
    for (uint32_t i = 0; i < *count; i++) {
        uint32_t seg = 0;
        uint64_t size = 0;
        (void)wire_u32(&sub, &seg);
        (void)wire_u64(&sub, &size);
        if (!segment_ok(seg) || seg <= prev)
            return false;
        prev = seg;
    }
    return true;
}

static bool decode_hello(struct wire_reader *r, struct repl_hello *h)
{
    struct wire_bytes magic, nonce;

    if (!wire_bytes(r, 8, &magic) || memcmp(magic.ptr, REPL_MAGIC, 8) != 0 ||
        !wire_u16(r, &h->version))
        return false;
    if (h->version != REPL_VERSION) {
        /* Decoded this far only, so the leader can say which version it speaks. */
        r->pos = r->end;
        return true;
    }
    if (!wire_shortstr(r, &h->node_id) || h->node_id.len == 0 || !wire_u64(r, &h->epoch_seen) ||
        !wire_bytes(r, REPL_NONCE_BYTES, &nonce) ||
        !read_history(r, &h->history_count, &h->history) ||
        !read_manifest(r, &h->segment_count, &h->segments) || !wire_u64(r, &h->defs_size) ||
        !wire_u32(r, &h->defs_crc) || h->defs_size > REPL_DEFS_MAX)
        return false;
    h->nonce = nonce.ptr;
    return true;
}

int repl_decode(const struct repl_frame *f, struct repl_msg *out)
{
    struct wire_reader r = wire_reader_init(f->payload.ptr, f->payload.len);
    struct wire_bytes b, b2;
    bool ok = false;

    *out = (struct repl_msg){.type = f->type};
    switch (f->type) {
    case REPL_HELLO:
        ok = decode_hello(&r, &out->u.hello);
        break;
    case REPL_CHALLENGE:
        ok = wire_u64(&r, &out->u.challenge.epoch) && wire_bytes(&r, REPL_NONCE_BYTES, &b) &&
             wire_bytes(&r, REPL_MAC_BYTES, &b2) && wire_shortstr(&r, &out->u.challenge.node_id) &&
             out->u.challenge.node_id.len > 0;
        if (ok) {
            out->u.challenge.nonce = b.ptr;
            out->u.challenge.mac = b2.ptr;
        }
        break;
    case REPL_AUTH:
        ok = wire_bytes(&r, REPL_MAC_BYTES, &b);
        if (ok)
            out->u.mac = b.ptr;
        break;
    case REPL_CREATE:
        ok = wire_u64(&r, &out->pos) && wire_u32(&r, &out->u.create.segment) &&
             segment_ok(out->u.create.segment) && wire_left(&r) >= 1 &&
             wire_left(&r) <= REPL_HEADER_MAX &&
             wire_bytes(&r, wire_left(&r), &out->u.create.header);
        break;
    case REPL_APPEND:
        ok = wire_u64(&r, &out->pos) && wire_u8(&r, &out->u.append.file) &&
             wire_u32(&r, &out->u.append.segment) &&
             file_ok(out->u.append.file, out->u.append.segment) &&
             wire_u64(&r, &out->u.append.offset) && wire_left(&r) >= 1 &&
             wire_left(&r) <= REPL_CHUNK_MAX &&
             out->u.append.offset <= UINT64_MAX - REPL_CHUNK_MAX &&
             wire_bytes(&r, wire_left(&r), &out->u.append.data);
        break;
    case REPL_APPEND_LZ4:
        ok = wire_u64(&r, &out->pos) && wire_u8(&r, &out->u.append.file) &&
             wire_u32(&r, &out->u.append.segment) &&
             file_ok(out->u.append.file, out->u.append.segment) &&
             wire_u64(&r, &out->u.append.offset) && wire_u32(&r, &out->u.append.raw_len) &&
             out->u.append.raw_len >= 1 && out->u.append.raw_len <= REPL_CHUNK_MAX &&
             wire_left(&r) >= 1 && wire_left(&r) <= (size_t)LZ4_COMPRESSBOUND(REPL_CHUNK_MAX) &&
             out->u.append.offset <= UINT64_MAX - REPL_CHUNK_MAX &&
             wire_bytes(&r, wire_left(&r), &out->u.append.data);
        break;
    case REPL_TRUNCATE:
        ok = wire_u64(&r, &out->pos) && wire_u8(&r, &out->u.truncate.file) &&
             wire_u32(&r, &out->u.truncate.segment) &&
             file_ok(out->u.truncate.file, out->u.truncate.segment) &&
             wire_u64(&r, &out->u.truncate.size) && out->u.truncate.size <= (uint64_t)INT64_MAX;
        break;
    case REPL_UNLINK:
        ok = wire_u64(&r, &out->pos) && wire_u32(&r, &out->u.unlink_segment) &&
             segment_ok(out->u.unlink_segment);
        break;
    case REPL_REPLACE:
        ok = wire_u64(&r, &out->pos) && wire_u64(&r, &out->u.replace.total) &&
             wire_u64(&r, &out->u.replace.offset) && out->u.replace.total <= REPL_DEFS_MAX &&
             wire_left(&r) <= REPL_CHUNK_MAX &&
             wire_bytes(&r, wire_left(&r), &out->u.replace.data) &&
             out->u.replace.offset <= out->u.replace.total &&
             out->u.replace.data.len <= out->u.replace.total - out->u.replace.offset &&
             /* Only an empty file comes in an empty piece. */
             (out->u.replace.data.len > 0 || out->u.replace.total == 0);
        break;
    case REPL_EPOCH:
        ok = wire_u64(&r, &out->u.epoch.epoch) &&
             read_history(&r, &out->u.epoch.count, &out->u.epoch.entries);
        break;
    case REPL_HEARTBEAT:
        ok = wire_u64(&r, &out->u.heartbeat.head) && wire_u64(&r, &out->u.heartbeat.commit) &&
             wire_u8(&r, &out->u.heartbeat.flags) &&
             out->u.heartbeat.commit <= out->u.heartbeat.head &&
             (out->u.heartbeat.flags & ~(REPL_HB_SYNC | REPL_HB_LIVE)) == 0;
        break;
    case REPL_ACK:
        ok = wire_u64(&r, &out->pos);
        break;
    case REPL_ERROR:
        ok = wire_u16(&r, &out->u.error.code) && wire_shortstr(&r, &out->u.error.reason);
        break;
    default:
        return REPL_ERR_TYPE;
    }
    return ok && wire_left(&r) == 0 ? REPL_OK : REPL_ERR_SYNTAX;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

struct repl_epoch_start repl_history_entry(struct wire_bytes list, uint32_t i)
{
    assert((size_t)i * 12 + 12 <= list.len);
    return (struct repl_epoch_start){get_u64(list.ptr + 12 * (size_t)i),
                                     be32(list.ptr + 12 * (size_t)i + 8)};
}

void repl_manifest_entry(struct wire_bytes list, uint32_t i, uint32_t *segment, uint64_t *size)
{
    assert((size_t)i * 12 + 12 <= list.len);
    *segment = be32(list.ptr + 12 * (size_t)i);
    *size = get_u64(list.ptr + 12 * (size_t)i + 4);
}

void repl_history_from_list(struct wire_bytes list, uint32_t count, struct repl_history *out)
{
    *out = (struct repl_history){0};
    for (uint32_t i = 0; i < count; i++) {
        struct repl_epoch_start e = repl_history_entry(list, i);
        bool ok = repl_history_push(out, e.epoch, e.segment);
        assert(ok); /* the decoder checked the order */
        (void)ok;
    }
}

/* ---- Encoding ----------------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A frame of type whose payload is fixed[0..fixed_len) followed by data. */
static void put_frame(struct buf *out, uint8_t type, const uint8_t *fixed, size_t fixed_len,
                      struct wire_bytes data)
{
    size_t payload = fixed_len + data.len;
    uint8_t *p;
    uint32_t crc;

    assert(payload <= REPL_FRAME_MAX);
    buf_reserve(out, REPL_FRAME_HEADER + payload);
    p = out->data + out->len;
    p[0] = type;
    put_be32(p + 1, (uint32_t)payload);
    if (fixed_len > 0)
        memcpy(p + REPL_FRAME_HEADER, fixed, fixed_len);
    if (data.len > 0)
        memcpy(p + REPL_FRAME_HEADER + fixed_len, data.ptr, data.len);
    crc = crc32c_update(crc32c(p, 5), p + REPL_FRAME_HEADER, payload);
    put_be32(p + 5, crc);
    out->len += REPL_FRAME_HEADER + payload;
}

/* Encodes with a writer into a buffer big enough for the fixed fields of any frame but a
 * HELLO or EPOCH. */
#define FIXED_MAX 512

void repl_put_hello(struct buf *out, struct wire_bytes node_id, uint64_t epoch_seen,
                    const uint8_t nonce[REPL_NONCE_BYTES], const struct repl_history *history,
                    const struct repl_manifest_seg *segs, size_t seg_count, uint64_t defs_size,
                    uint32_t defs_crc)
{
    size_t n = 8 + 2 + 1 + node_id.len + 8 + REPL_NONCE_BYTES + 4 + 12 * history->count + 4 +
               12 * seg_count + 8 + 4;
    uint8_t *fixed = xmalloc(n);
    struct wire_writer w = wire_writer_init(fixed, n);

    assert(node_id.len >= 1 && node_id.len <= REPL_NODE_ID_MAX);
    wire_put_bytes(&w, REPL_MAGIC, 8);
    wire_put_u16(&w, REPL_VERSION);
    wire_put_shortstr(&w, node_id);
    wire_put_u64(&w, epoch_seen);
    wire_put_bytes(&w, nonce, REPL_NONCE_BYTES);
    wire_put_u32(&w, (uint32_t)history->count);
    for (size_t i = 0; i < history->count; i++) {
        wire_put_u64(&w, history->v[i].epoch);
        wire_put_u32(&w, history->v[i].segment);
    }
    wire_put_u32(&w, (uint32_t)seg_count);
    for (size_t i = 0; i < seg_count; i++) {
        wire_put_u32(&w, segs[i].segment);
        wire_put_u64(&w, segs[i].size);
    }
    wire_put_u64(&w, defs_size);
    wire_put_u32(&w, defs_crc);
    assert(wire_writer_used(&w) == n);
    put_frame(out, REPL_HELLO, fixed, n, (struct wire_bytes){0});
    free(fixed);
}

void repl_put_challenge(struct buf *out, uint64_t epoch, const uint8_t nonce[REPL_NONCE_BYTES],
                        const uint8_t mac[REPL_MAC_BYTES], struct wire_bytes node_id)
{
    uint8_t fixed[FIXED_MAX];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    assert(node_id.len >= 1 && node_id.len <= REPL_NODE_ID_MAX);
    wire_put_u64(&w, epoch);
    wire_put_bytes(&w, nonce, REPL_NONCE_BYTES);
    wire_put_bytes(&w, mac, REPL_MAC_BYTES);
    wire_put_shortstr(&w, node_id);
    put_frame(out, REPL_CHALLENGE, fixed, wire_writer_used(&w), (struct wire_bytes){0});
}

void repl_put_auth(struct buf *out, const uint8_t mac[REPL_MAC_BYTES])
{
    put_frame(out, REPL_AUTH, mac, REPL_MAC_BYTES, (struct wire_bytes){0});
}

void repl_put_create(struct buf *out, uint64_t pos, uint32_t segment, struct wire_bytes header)
{
    uint8_t fixed[12];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u64(&w, pos);
    wire_put_u32(&w, segment);
    put_frame(out, REPL_CREATE, fixed, sizeof(fixed), header);
}

static size_t append_fixed(uint8_t *fixed, uint64_t pos, enum repl_file file, uint32_t segment,
                           uint64_t offset)
{
    struct wire_writer w = wire_writer_init(fixed, 21);

    wire_put_u64(&w, pos);
    wire_put_u8(&w, (uint8_t)file);
    wire_put_u32(&w, segment);
    wire_put_u64(&w, offset);
    return wire_writer_used(&w);
}

void repl_put_append(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                     uint64_t offset, struct wire_bytes data)
{
    uint8_t fixed[21];

    assert(data.len >= 1 && data.len <= REPL_CHUNK_MAX);
    put_frame(out, REPL_APPEND, fixed, append_fixed(fixed, pos, file, segment, offset), data);
}

bool repl_put_append_lz4(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                         uint64_t offset, struct wire_bytes data)
{
    size_t fixed_len, start = out->len, bound;
    uint8_t *frame;
    int packed;
    uint32_t crc;

    assert(data.len >= 1 && data.len <= REPL_CHUNK_MAX);
    bound = (size_t)LZ4_compressBound((int)data.len);
    buf_reserve(out, REPL_FRAME_HEADER + 25 + bound);
    frame = out->data + start;
    fixed_len = append_fixed(frame + REPL_FRAME_HEADER, pos, file, segment, offset);
    put_be32(frame + REPL_FRAME_HEADER + fixed_len, (uint32_t)data.len);
    fixed_len += 4;
    packed = LZ4_compress_default((const char *)data.ptr,
                                  (char *)frame + REPL_FRAME_HEADER + fixed_len, (int)data.len,
                                  (int)bound);
    /* Not worth it unless it saves more than the 4 bytes of length it costs. */
    if (packed <= 0 || (size_t)packed + 4 >= data.len)
        return false;
    frame[0] = REPL_APPEND_LZ4;
    put_be32(frame + 1, (uint32_t)(fixed_len + (size_t)packed));
    crc = crc32c_update(crc32c(frame, 5), frame + REPL_FRAME_HEADER, fixed_len + (size_t)packed);
    put_be32(frame + 5, crc);
    out->len = start + REPL_FRAME_HEADER + fixed_len + (size_t)packed;
    return true;
}

int repl_lz4_unpack(const struct repl_msg *m, uint8_t *dst)
{
    int n;

    if (m->type != REPL_APPEND_LZ4 || m->u.append.data.len > INT_MAX)
        return -1;
    n = LZ4_decompress_safe((const char *)m->u.append.data.ptr, (char *)dst,
                            (int)m->u.append.data.len, (int)REPL_CHUNK_MAX);
    return n == (int)m->u.append.raw_len ? 0 : -1;
}

void repl_append_head(uint8_t head[REPL_APPEND_HEAD], uint64_t pos, enum repl_file file,
                      uint32_t segment, uint64_t offset, struct wire_bytes data)
{
    size_t fixed = append_fixed(head + REPL_FRAME_HEADER, pos, file, segment, offset);
    uint32_t crc;

    assert(data.len >= 1 && data.len <= REPL_CHUNK_MAX);
    head[0] = REPL_APPEND;
    put_be32(head + 1, (uint32_t)(fixed + data.len));
    crc = crc32c_update(crc32c(head, 5), head + REPL_FRAME_HEADER, fixed);
    crc = crc32c_update(crc, data.ptr, data.len);
    put_be32(head + 5, crc);
}

void repl_put_truncate(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                       uint64_t size)
{
    uint8_t fixed[21];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u64(&w, pos);
    wire_put_u8(&w, (uint8_t)file);
    wire_put_u32(&w, segment);
    wire_put_u64(&w, size);
    put_frame(out, REPL_TRUNCATE, fixed, sizeof(fixed), (struct wire_bytes){0});
}

void repl_put_unlink(struct buf *out, uint64_t pos, uint32_t segment)
{
    uint8_t fixed[12];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u64(&w, pos);
    wire_put_u32(&w, segment);
    put_frame(out, REPL_UNLINK, fixed, sizeof(fixed), (struct wire_bytes){0});
}

void repl_put_replace(struct buf *out, uint64_t pos, uint64_t total, uint64_t offset,
                      struct wire_bytes data)
{
    uint8_t fixed[24];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    assert(data.len <= REPL_CHUNK_MAX && offset + data.len <= total);
    wire_put_u64(&w, pos);
    wire_put_u64(&w, total);
    wire_put_u64(&w, offset);
    put_frame(out, REPL_REPLACE, fixed, sizeof(fixed), data);
}

void repl_put_epoch(struct buf *out, uint64_t epoch, const struct repl_history *history)
{
    size_t n = 8 + 4 + 12 * history->count;
    uint8_t *fixed = xmalloc(n);
    struct wire_writer w = wire_writer_init(fixed, n);

    wire_put_u64(&w, epoch);
    wire_put_u32(&w, (uint32_t)history->count);
    for (size_t i = 0; i < history->count; i++) {
        wire_put_u64(&w, history->v[i].epoch);
        wire_put_u32(&w, history->v[i].segment);
    }
    put_frame(out, REPL_EPOCH, fixed, n, (struct wire_bytes){0});
    free(fixed);
}

void repl_put_heartbeat(struct buf *out, uint64_t head, uint64_t commit, uint8_t flags)
{
    uint8_t fixed[17];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u64(&w, head);
    wire_put_u64(&w, commit);
    wire_put_u8(&w, flags);
    put_frame(out, REPL_HEARTBEAT, fixed, sizeof(fixed), (struct wire_bytes){0});
}

void repl_put_ack(struct buf *out, uint64_t pos)
{
    uint8_t fixed[8];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u64(&w, pos);
    put_frame(out, REPL_ACK, fixed, sizeof(fixed), (struct wire_bytes){0});
}

void repl_put_error(struct buf *out, enum repl_error code, const char *reason)
{
    uint8_t fixed[2 + 256];
    struct wire_writer w = wire_writer_init(fixed, sizeof(fixed));

    wire_put_u16(&w, (uint16_t)code);
    wire_put_shortstr(&w, wire_cstr(reason));
    put_frame(out, REPL_ERROR, fixed, wire_writer_used(&w), (struct wire_bytes){0});
}

/* ---- Authentication ----------------------------------------------------------------------- */

void repl_mac(uint8_t out[REPL_MAC_BYTES], struct wire_bytes secret, enum repl_role role,
              const uint8_t follower_nonce[REPL_NONCE_BYTES],
              const uint8_t leader_nonce[REPL_NONCE_BYTES], struct wire_bytes follower_id,
              struct wire_bytes leader_id, uint64_t epoch)
{
    /* A fixed label per role, so a leader's answer can never pass as a follower's. */
    const char *label = role == REPL_ROLE_LEADER ? "warren-repl leader" : "warren-repl follower";
    uint8_t msg[32 + 2 * REPL_NONCE_BYTES + 2 * (1 + REPL_NODE_ID_MAX) + 8];
    struct wire_writer w = wire_writer_init(msg, sizeof(msg));
    unsigned int len = REPL_MAC_BYTES;
    uint8_t empty = 0;

    wire_put_shortstr(&w, wire_cstr(label));
    wire_put_bytes(&w, follower_nonce, REPL_NONCE_BYTES);
    wire_put_bytes(&w, leader_nonce, REPL_NONCE_BYTES);
    wire_put_shortstr(&w, follower_id);
    wire_put_shortstr(&w, leader_id);
    wire_put_u64(&w, epoch);
    assert(!wire_writer_overflowed(&w));
    if (HMAC(EVP_sha256(), secret.len > 0 ? secret.ptr : &empty, (int)secret.len, msg,
             wire_writer_used(&w), out, &len) == NULL)
        abort(); /* only on an OpenSSL without SHA-256 */
    assert(len == REPL_MAC_BYTES);
}

bool repl_mac_equal(const uint8_t a[REPL_MAC_BYTES], const uint8_t b[REPL_MAC_BYTES])
{
    return CRYPTO_memcmp(a, b, REPL_MAC_BYTES) == 0;
}

/* ---- Sockets ------------------------------------------------------------------------------ */

int repl_socket(const char *address, bool listening, bool *in_progress, char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    const char *whole = address, *colon = strrchr(address, ':');
    char host[256], port[16];
    size_t hl;
    int fd = -1, rc, one = 1;

    *in_progress = false;
    if (colon == NULL || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port)) {
        snprintf(err, err_size, "address '%s' is not host:port", address);
        return -EINVAL;
    }
    hl = (size_t)(colon - address);
    if (hl >= 2 && address[0] == '[' && address[hl - 1] == ']') {
        address++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, err_size, "host name in '%s' is too long", whole);
        return -EINVAL;
    }
    memcpy(host, address, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    hints.ai_flags = listening ? AI_PASSIVE : 0;
    hints.ai_flags |= AI_NUMERICSERV;
    /* Resolving a name blocks; cluster addresses are usually numeric, which does not. */
    if ((rc = getaddrinfo(hl > 0 ? host : NULL, port, &hints, &res)) != 0) {
        snprintf(err, err_size, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (listening) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
                break;
        } else {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            if (errno == EINPROGRESS) {
                *in_progress = true;
                break;
            }
        }
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_size, "cannot %s %s: %s", listening ? "listen on" : "connect to", whole,
                 strerror(-rc));
        return rc;
    }
    return fd;
}
