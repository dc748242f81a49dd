#include "src/broker/outbuf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"
#include "src/broker/message.h"

static struct out_span *span_at(const struct outbuf *o, size_t i)
{
    return &o->spans[(o->head + i) % o->cap];
}

void outbuf_free(struct outbuf *o)
{
    for (size_t i = 0; i < o->count; i++)
        message_unref(span_at(o, i)->msg);
    free(o->spans);
    buf_free(&o->bytes);
    *o = (struct outbuf){0};
}

void outbuf_reserve(struct outbuf *o, size_t n)
{
    struct buf *b = &o->bytes;

    if (b->cap - b->len >= n)
        return;
    if (b->sent > 0) {
        /* Every span still to go sits at or after the first unsent byte, so it moves with
         * the bytes. buf_reserve() then finds nothing sent and only grows the buffer. */
        size_t shift = b->sent;
        memmove(b->data, b->data + shift, b->len - shift);
        b->len -= shift;
        b->sent = 0;
        for (size_t i = 0; i < o->count; i++)
            span_at(o, i)->at -= shift;
    }
    buf_reserve(b, n);
}

void outbuf_put(struct outbuf *o, const void *data, size_t n)
{
    outbuf_reserve(o, n);
    memcpy(o->bytes.data + o->bytes.len, data, n);
    o->bytes.len += n;
}

void outbuf_add_span(struct outbuf *o, struct message *msg, const uint8_t *ptr, size_t len)
{
    if (len == 0)
        return;
    if (o->count == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct out_span *spans = xmalloc(cap * sizeof *spans);
        for (size_t i = 0; i < o->count; i++)
            spans[i] = *span_at(o, i);
        free(o->spans);
        o->spans = spans;
        o->cap = cap;
        o->head = 0;
    }
    *span_at(o, o->count) =
        (struct out_span){.at = o->bytes.len, .ptr = ptr, .len = len, .msg = message_ref(msg)};
    o->count++;
    o->span_pending += len;
}

int outbuf_iov(const struct outbuf *o, struct iovec *iov, int max)
{
    const struct buf *b = &o->bytes;
    size_t pos = b->sent;
    int n = 0;

    for (size_t i = 0; i < o->count; i++) {
        const struct out_span *s = span_at(o, i);
        size_t skip = i == 0 ? o->span_sent : 0;

        if (s->at > pos) {
            if (n == max)
                return n;
            iov[n++] = (struct iovec){.iov_base = b->data + pos, .iov_len = s->at - pos};
            pos = s->at;
        }
        if (n == max)
            return n;
        iov[n++] = (struct iovec){.iov_base = (void *)(s->ptr + skip), .iov_len = s->len - skip};
    }
    if (b->len > pos && n < max)
        iov[n++] = (struct iovec){.iov_base = b->data + pos, .iov_len = b->len - pos};
    return n;
}

void outbuf_consumed(struct outbuf *o, size_t n)
{
    struct buf *b = &o->bytes;

    while (n > 0) {
        struct out_span *s = o->count > 0 ? span_at(o, 0) : NULL;
        size_t k;

        if (s != NULL && b->sent == s->at) {
            k = s->len - o->span_sent < n ? s->len - o->span_sent : n;
            o->span_sent += k;
            o->span_pending -= k;
            n -= k;
            if (o->span_sent == s->len) {
                message_unref(s->msg);
                o->head = (o->head + 1) % o->cap;
                o->count--;
                o->span_sent = 0;
            }
            continue;
        }
        k = (s != NULL ? s->at : b->len) - b->sent;
        assert(k > 0); /* n never passes the end of the output */
        if (k > n)
            k = n;
        b->sent += k;
        n -= k;
    }
    if (o->count == 0 && b->sent == b->len)
        b->sent = b->len = 0;
}
