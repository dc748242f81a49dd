#include "src/message.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "src/util.h"

/* One allocation holds the struct, the names, the header and the body. */
struct message *message_new(struct wire_bytes exchange, struct wire_bytes routing_key,
                            struct wire_bytes header, uint64_t body_size)
{
    size_t size = sizeof(struct message) + exchange.len + routing_key.len + header.len +
                  (size_t)body_size + 2;
    struct message *m = xmalloc(size);
    uint8_t *p = (uint8_t *)(m + 1);
    struct wire_content_header decoded;
    int rc;

    memset(m, 0, sizeof *m);
    m->refs = 1;
    memcpy(p, exchange.ptr, exchange.len);
    m->exchange = (struct wire_bytes){.ptr = p, .len = exchange.len};
    p += exchange.len;
    *p++ = '\0';
    memcpy(p, routing_key.ptr, routing_key.len);
    m->routing_key = (struct wire_bytes){.ptr = p, .len = routing_key.len};
    p += routing_key.len;
    *p++ = '\0';
    memcpy(p, header.ptr, header.len);
    m->header = (struct wire_bytes){.ptr = p, .len = header.len};
    p += header.len;
    m->body = p;
    m->body_size = body_size;

    /* The channel decoded these same bytes before, so this cannot fail. */
    rc = wire_content_header_decode(m->header, &decoded);
    assert(rc == WIRE_OK);
    (void)rc;
    m->props = decoded.props;
    return m;
}

bool message_append_body(struct message *m, struct wire_bytes chunk)
{
    if (chunk.len > m->body_size - m->body_received)
        return false;
    if (chunk.len)
        memcpy(m->body + m->body_received, chunk.ptr, chunk.len);
    m->body_received += chunk.len;
    return true;
}

void message_unref(struct message *m)
{
    if (m != NULL && --m->refs == 0)
        free(m);
}
