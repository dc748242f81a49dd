#include "src/store/recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/util.h"
#include "src/store/crc32c.h"

#define READ_CHUNK (1u << 20) /* bytes asked of read(2) at a time */
/* Bytes a resync may checksum per reader: corrupt data that keeps presenting plausible
 * lengths costs at most this, then the rest of the file is given up. */
#define RESYNC_BUDGET (256ull << 20)

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void recfile_header_encode(uint8_t out[RECFILE_FILE_HEADER_BYTES], const char magic[8],
                           uint32_t version, uint32_t tag)
{
    memcpy(out, magic, 8);
    put_u32(out + 8, version);
    put_u32(out + 12, tag);
}

bool recfile_header_check(const uint8_t hdr[RECFILE_FILE_HEADER_BYTES], const char magic[8],
                          uint32_t version, uint32_t *tag)
{
    if (memcmp(hdr, magic, 8) != 0 || get_u32(hdr + 8) != version)
        return false;
    *tag = get_u32(hdr + 12);
    return true;
}

static uint32_t frame_crc(const uint8_t *rec, uint32_t body_len)
{
    uint32_t crc = crc32c_update(0, rec, 4);
    return crc32c_update(crc, rec + RECFILE_FRAME_BYTES, body_len);
}

void recfile_frame_seal(uint8_t *rec, uint32_t body_len)
{
    put_u32(rec, body_len);
    put_u32(rec + 4, frame_crc(rec, body_len));
}

bool recfile_frame_check(const uint8_t *rec, size_t avail, uint32_t max_body,
                         struct wire_bytes *body)
{
    uint32_t len;

    if (avail < RECFILE_FRAME_BYTES)
        return false;
    len = get_u32(rec);
    if (len == 0 || len > max_body || avail - RECFILE_FRAME_BYTES < len)
        return false;
    if (get_u32(rec + 4) != frame_crc(rec, len))
        return false;
    *body = (struct wire_bytes){.ptr = rec + RECFILE_FRAME_BYTES, .len = len};
    return true;
}

void recfile_reader_init(struct recfile_reader *r, int fd, uint64_t file_size, uint64_t start,
                         uint32_t max_body)
{
    *r = (struct recfile_reader){
        .fd = fd,
        .file_size = file_size,
        .max_body = max_body,
        .pos = start,
        .buf_off = start,
        .resync_budget = RESYNC_BUDGET,
    };
}

void recfile_reader_free(struct recfile_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->buf_len = 0;
}

/* Makes buf hold the file's bytes [off, off + n); the caller has checked that they exist.
 * Returns false with errno set if read(2) fails or the file is shorter than it said. */
static bool ensure(struct recfile_reader *r, uint64_t off, size_t n)
{
    size_t want;
    int rc;

    if (off >= r->buf_off && off + n <= r->buf_off + r->buf_len)
        return true;
    want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > r->file_size - off)
        want = (size_t)(r->file_size - off);
    if (r->cap < want) {
        free(r->buf);
        r->buf = xmalloc(want);
        r->cap = want;
    }
    r->buf_off = off;
    r->buf_len = 0;
    rc = recfile_pread_all(r->fd, r->buf, want, off);
    if (rc < 0) {
        errno = -rc;
        return false;
    }
    r->buf_len = want;
    return true;
}

/* What lies at off: OK, BAD (incomplete or corrupt) or IO. */
static enum recfile_result check_at(struct recfile_reader *r, uint64_t off, struct wire_bytes *body,
                                    bool (*type_ok)(uint8_t))
{
    uint64_t left = r->file_size - off;
    uint8_t hdr[RECFILE_FRAME_BYTES];
    uint32_t len;
    const uint8_t *rec;

    if (left < RECFILE_FRAME_BYTES)
        return RECFILE_BAD;
    if (!ensure(r, off, RECFILE_FRAME_BYTES))
        return RECFILE_IO;
    memcpy(hdr, r->buf + (off - r->buf_off), sizeof(hdr));
    len = get_u32(hdr);
    /* The length is compared with what the file holds before anything is read for it. */
    if (len == 0 || len > r->max_body || left - RECFILE_FRAME_BYTES < len)
        return RECFILE_BAD;
    if (!ensure(r, off, RECFILE_FRAME_BYTES + (size_t)len))
        return RECFILE_IO;
    rec = r->buf + (off - r->buf_off);
    if (type_ok != NULL && !type_ok(rec[RECFILE_FRAME_BYTES]))
        return RECFILE_BAD;
    if (type_ok != NULL) {
        if (r->resync_budget < len)
            return RECFILE_END;
        r->resync_budget -= len;
    }
    if (!recfile_frame_check(rec, RECFILE_FRAME_BYTES + (size_t)len, r->max_body, body))
        return RECFILE_BAD;
    return RECFILE_OK;
}

enum recfile_result recfile_next(struct recfile_reader *r, uint64_t *offset,
                                 struct wire_bytes *body)
{
    enum recfile_result res;

    if (r->pos >= r->file_size)
        return RECFILE_END;
    res = check_at(r, r->pos, body, NULL);
    if (res == RECFILE_OK) {
        *offset = r->pos;
        r->pos += RECFILE_FRAME_BYTES + body->len;
    }
    return res;
}

bool recfile_resync(struct recfile_reader *r, bool (*type_ok)(uint8_t type))
{
    struct wire_bytes body;

    for (uint64_t off = r->pos + 1; off + RECFILE_FRAME_BYTES < r->file_size; off++) {
        switch (check_at(r, off, &body, type_ok)) {
        case RECFILE_OK:
            r->pos = off;
            return true;
        case RECFILE_BAD:
            continue;
        case RECFILE_END: /* budget spent */
        case RECFILE_IO:
            return false;
        }
    }
    return false;
}

int recfile_pwrite_all(int fd, const void *data, size_t n, uint64_t offset)
{
    const uint8_t *p = data;

    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)offset);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

int recfile_pread_all(int fd, void *data, size_t n, uint64_t offset)
{
    uint8_t *p = data;

    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (got == 0)
            return -EIO;
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

int recfile_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}
