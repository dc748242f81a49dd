/* A connection's output: frames encoded into a byte buffer, with large message bodies left
 * where they are and written from the message itself (writev), so a body is never copied
 * on its way out. Each such span holds a reference to its message until it is written. */
#ifndef WARREN_SRC_BROKER_OUTBUF_H
#define WARREN_SRC_BROKER_OUTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "src/base/buf.h"

struct message;

struct out_span {
    size_t at; /* offset in bytes.data: the span goes out before the byte at this offset */
    const uint8_t *ptr;
    size_t len;
    struct message *msg; /* the span's reference */
};

struct outbuf {
    struct buf bytes;
    struct out_span *spans; /* a ring, in stream order */
    size_t head, count, cap;
    size_t span_sent;    /* bytes of the first span already written */
    size_t span_pending; /* bytes of spans not yet written */
};

/* Drops every unwritten span's reference and the buffer. */
void outbuf_free(struct outbuf *o);

/* Room for n more bytes after the last one (never moves a span out of place). */
void outbuf_reserve(struct outbuf *o, size_t n);

static inline struct wire_writer outbuf_writer(struct outbuf *o)
{
    return buf_writer(&o->bytes);
}

static inline void outbuf_commit(struct outbuf *o, const struct wire_writer *w)
{
    buf_commit(&o->bytes, w);
}

/* Appends a copy of n bytes. */
void outbuf_put(struct outbuf *o, const void *data, size_t n);

/* Appends len bytes at ptr, which lie inside msg, taking a reference to msg. */
void outbuf_add_span(struct outbuf *o, struct message *msg, const uint8_t *ptr, size_t len);

static inline size_t outbuf_pending(const struct outbuf *o)
{
    return buf_pending(&o->bytes) + o->span_pending;
}

/* The unwritten output as at most max iovecs, in order; returns how many. */
int outbuf_iov(const struct outbuf *o, struct iovec *iov, int max);

/* The first n bytes of the unwritten output were written. */
void outbuf_consumed(struct outbuf *o, size_t n);

#endif
