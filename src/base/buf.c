#include "src/base/buf.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"

void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

void buf_reserve(struct buf *b, size_t n)
{
    size_t cap;

    if (b->cap - b->len >= n)
        return;
    if (b->sent > 0) {
        memmove(b->data, b->data + b->sent, b->len - b->sent);
        b->len -= b->sent;
        b->sent = 0;
        if (b->cap - b->len >= n)
            return;
    }
    for (cap = b->cap ? b->cap : 16384; cap - b->len < n; cap *= 2)
        ;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

struct wire_writer buf_writer(struct buf *b)
{
    struct wire_writer w = wire_writer_init(b->data + b->len, b->cap - b->len);
    return w;
}

void buf_commit(struct buf *b, const struct wire_writer *w)
{
    b->len += wire_writer_used(w);
}

void buf_consumed(struct buf *b, size_t n)
{
    b->sent += n;
    if (b->sent == b->len) {
        b->sent = 0;
        b->len = 0;
    }
}
