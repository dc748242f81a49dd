/* A growable output buffer: frames are encoded at the end, the socket drains the front. */
#ifndef WARREN_SRC_BASE_BUF_H
#define WARREN_SRC_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct buf {
    uint8_t *data;
    size_t len;  /* bytes written into data */
    size_t sent; /* bytes of data already written to the socket */
    size_t cap;
};

void buf_free(struct buf *b);
/* Makes room for n more bytes at the end. */
void buf_reserve(struct buf *b, size_t n);
/* A writer over the free space at the end; after encoding, buf_commit() keeps what it
 * wrote, or the caller reserves wire_writer_used() bytes and encodes again. */
struct wire_writer buf_writer(struct buf *b);
void buf_commit(struct buf *b, const struct wire_writer *w);

static inline size_t buf_pending(const struct buf *b)
{
    return b->len - b->sent;
}

/* Forgets the sent part once everything is sent, or when it is most of the buffer. */
void buf_consumed(struct buf *b, size_t n);

#endif
