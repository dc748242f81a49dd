#include "src/broker/spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amqp/wire.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/message.h"

#define WRITE_CHUNK (64 * 1024) /* records are written in batches of about this much */
#define READ_CHUNK  (64 * 1024) /* and read back in chunks of this much */

enum { REC_REDELIVERED = 1, REC_STORED = 2 };

/* Bytes written to spill files by this process, for the broker's disk check. */
static uint64_t bytes_written;

uint64_t spill_bytes_written(void)
{
    return bytes_written;
}

/* Record: u32 length of the rest, u64 seq, u64 expires_at_ms, u32 deliveries, u8 flags, then
 * either the store location (4 x u32) or shortstr exchange, shortstr routing key, u32 header
 * length, header, body (the rest). */

void spill_init(struct spill *s, const char *dir, uint64_t uid)
{
    char path[700];

    memset(s, 0, sizeof *s);
    s->fd = -1;
    snprintf(path, sizeof path, "%s/%016llx.spill", dir, (unsigned long long)uid);
    s->path = xstrdup(path);
}

static void close_file(struct spill *s)
{
    if (s->fd >= 0) {
        close(s->fd);
        unlink(s->path);
        s->fd = -1;
    }
    s->write_off = s->read_off = 0;
    s->wlen = s->rpos = s->rlen = 0;
    s->count = s->bytes = 0;
}

void spill_free(struct spill *s)
{
    close_file(s);
    free(s->wbuf);
    free(s->rbuf);
    free(s->path);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

static int write_out(struct spill *s)
{
    size_t done = 0;

    while (done < s->wlen) {
        ssize_t n = pwrite(s->fd, s->wbuf + done, s->wlen - done, (off_t)(s->write_off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    s->write_off += s->wlen;
    bytes_written += s->wlen;
    s->wlen = 0;
    return 0;
}

int spill_append(struct spill *s, const struct spill_rec *r, uint64_t body_bytes)
{
    const struct message *m = r->msg;
    size_t need = 4 + 8 + 8 + 4 + 1 +
                  (r->stored ? 16 : 2 + m->exchange.len + m->routing_key.len + 4 + m->header.len +
                                        (size_t)m->body_size);
    struct wire_writer w;
    int rc;

    if (s->fd < 0) {
        s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (s->fd < 0) {
            rc = -errno;
            log_error(NULL, "cannot create spill file %s: %s", s->path, strerror(errno));
            return rc;
        }
    }
    if (s->wcap - s->wlen < need) {
        if (s->wlen > 0 && (rc = write_out(s)) != 0) {
            log_error(NULL, "cannot write spill file %s: %s", s->path, strerror(-rc));
            return rc;
        }
        if (s->wcap < need || s->wcap < WRITE_CHUNK) {
            s->wcap = need > WRITE_CHUNK ? need : WRITE_CHUNK;
            s->wbuf = xrealloc(s->wbuf, s->wcap);
        }
    }
    w = wire_writer_init(s->wbuf + s->wlen, need);
    wire_put_u32(&w, (uint32_t)(need - 4));
    wire_put_u64(&w, r->seq);
    wire_put_u64(&w, r->expires_at_ms);
    wire_put_u32(&w, r->deliveries);
    wire_put_u8(&w, (uint8_t)((r->redelivered ? REC_REDELIVERED : 0) | (r->stored ? REC_STORED : 0)));
    if (r->stored) {
        wire_put_u32(&w, r->loc.segment);
        wire_put_u32(&w, r->loc.offset);
        wire_put_u32(&w, r->loc.size);
        wire_put_u32(&w, r->loc.flags);
    } else {
        wire_put_shortstr(&w, m->exchange);
        wire_put_shortstr(&w, m->routing_key);
        wire_put_longstr(&w, m->header);
        wire_put_bytes(&w, m->body, (size_t)m->body_size);
    }
    s->wlen += wire_writer_used(&w);
    s->count++;
    s->bytes += body_bytes;
    return 0;
}

/* Makes at least n bytes of the spill available at rbuf + rpos: first what the file holds
 * beyond read_off, then what is still in the write buffer. The buffer is taken as it is,
 * never written first, so reading back needs no disk space: a spill whose writes fail (a
 * full disk) still gives back every record it took. */
static int fill(struct spill *s, size_t n)
{
    if (s->rlen - s->rpos >= n)
        return 0;
    if (s->rpos > 0) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    while (s->rlen < n && s->read_off < s->write_off) {
        size_t want = s->rcap - s->rlen;
        ssize_t got;
        if (want < READ_CHUNK) {
            s->rcap = s->rlen + (n > READ_CHUNK ? n : READ_CHUNK);
            s->rbuf = xrealloc(s->rbuf, s->rcap);
            want = s->rcap - s->rlen;
        }
        if (want > s->write_off - s->read_off)
            want = (size_t)(s->write_off - s->read_off);
        got = pread(s->fd, s->rbuf + s->rlen, want, (off_t)s->read_off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        s->rlen += (size_t)got;
        s->read_off += (uint64_t)got;
    }
    if (s->rlen < n && s->wlen > 0) {
        /* The file is read to its end: the rest is in the write buffer. */
        if (s->rcap - s->rlen < s->wlen) {
            s->rcap = s->rlen + s->wlen;
            s->rbuf = xrealloc(s->rbuf, s->rcap);
        }
        memcpy(s->rbuf + s->rlen, s->wbuf, s->wlen);
        s->rlen += s->wlen;
        s->wlen = 0;
    }
    return s->rlen >= n ? 0 : -EIO;
}

int spill_next(struct spill *s, struct spill_rec *r)
{
    struct wire_reader rd;
    uint32_t len;
    uint8_t flags;
    int rc;

    if (s->count == 0)
        return 0;
    if ((rc = fill(s, 4)) != 0)
        goto broken;
    rd = wire_reader_init(s->rbuf + s->rpos, 4);
    wire_u32(&rd, &len);
    if ((rc = fill(s, 4 + (size_t)len)) != 0)
        goto broken;
    rd = wire_reader_init(s->rbuf + s->rpos + 4, len);
    memset(r, 0, sizeof *r);
    if (!wire_u64(&rd, &r->seq) || !wire_u64(&rd, &r->expires_at_ms) ||
        !wire_u32(&rd, &r->deliveries) || !wire_u8(&rd, &flags)) {
        rc = -EIO;
        goto broken;
    }
    r->redelivered = flags & REC_REDELIVERED;
    r->stored = flags & REC_STORED;
    if (r->stored) {
        if (!wire_u32(&rd, &r->loc.segment) || !wire_u32(&rd, &r->loc.offset) ||
            !wire_u32(&rd, &r->loc.size) || !wire_u32(&rd, &r->loc.flags)) {
            rc = -EIO;
            goto broken;
        }
    } else {
        struct wire_bytes exchange, routing_key, header, body;
        if (!wire_shortstr(&rd, &exchange) || !wire_shortstr(&rd, &routing_key) ||
            !wire_longstr(&rd, &header) || !wire_bytes(&rd, wire_left(&rd), &body)) {
            rc = -EIO;
            goto broken;
        }
        r->msg = message_new(exchange, routing_key, header, body.len);
        message_append_body(r->msg, body);
    }
    s->rpos += 4 + (size_t)len;
    s->count--;
    if (s->count == 0)
        close_file(s); /* drained: the file goes, and with it the disk space */
    return 1;
broken:
    log_error(NULL, "spill file %s cannot be read back (%s): %llu messages lost", s->path,
              strerror(-rc), (unsigned long long)s->count);
    close_file(s);
    return rc;
}

void spill_clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];

    if (d == NULL) {
        mkdir(dir, 0750);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}
