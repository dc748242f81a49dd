#include "src/broker/message.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/method.h"
#include "src/base/util.h"

/* One allocation holds the struct, the names, the header and the body. props, when given,
 * are the header's properties already decoded by the caller. */
static struct message *make(struct wire_bytes exchange, struct wire_bytes routing_key,
                            struct wire_bytes header, const struct wire_props *props,
                            uint64_t body_size)
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

    if (props != NULL) {
        /* Every byte string of props lies inside header: the same offset in the copy. */
        struct wire_bytes *fields[] = {
            &m->props.content_type, &m->props.content_encoding, &m->props.headers.raw,
            &m->props.correlation_id, &m->props.reply_to, &m->props.expiration,
            &m->props.message_id, &m->props.type, &m->props.user_id, &m->props.app_id,
            &m->props.cluster_id,
        };
        m->props = *props;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            if (fields[i]->len > 0)
                fields[i]->ptr = m->header.ptr + (fields[i]->ptr - header.ptr);
        }
        return m;
    }
    /* These bytes decoded before (a channel, the store, a spill file), so this cannot fail. */
    rc = wire_content_header_decode(m->header, &decoded);
    assert(rc == WIRE_OK);
    (void)rc;
    m->props = decoded.props;
    return m;
}

struct message *message_new(struct wire_bytes exchange, struct wire_bytes routing_key,
                            struct wire_bytes header, uint64_t body_size)
{
    return make(exchange, routing_key, header, NULL, body_size);
}

struct message *message_new_decoded(struct wire_bytes exchange, struct wire_bytes routing_key,
                                    struct wire_bytes header, const struct wire_props *props,
                                    uint64_t body_size)
{
    return make(exchange, routing_key, header, props, body_size);
}

bool message_append_body(struct message *m, struct wire_bytes chunk)
{
    if (chunk.len > m->body_size - m->body_received)
        return false;
    /* A connection may have read the frame into its place in the body already. */
    if (chunk.len && chunk.ptr != m->body + m->body_received)
        memcpy(m->body + m->body_received, chunk.ptr, chunk.len);
    m->body_received += chunk.len;
    return true;
}

void message_unref(struct message *m)
{
    if (m != NULL && --m->refs == 0)
        free(m);
}

struct message *message_rewrite(const struct message *m, const struct wire_props *props)
{
    return message_rewrite_to(m, m->exchange, m->routing_key, props);
}

struct message *message_rewrite_to(const struct message *m, struct wire_bytes exchange,
                                   struct wire_bytes routing_key, const struct wire_props *props)
{
    struct wire_content_header h = {
        .class_id = WIRE_CLASS_BASIC, .body_size = m->body_size, .props = *props};
    size_t need = m->header.len + 512;
    struct message *copy;
    struct wire_writer w;
    uint8_t *tmp;

    for (;;) {
        tmp = xmalloc(need);
        w = wire_writer_init(tmp, need);
        wire_content_header_encode(&w, &h);
        if (!wire_writer_overflowed(&w))
            break;
        need = wire_writer_used(&w);
        free(tmp);
    }
    copy = message_new(exchange, routing_key,
                       (struct wire_bytes){.ptr = tmp, .len = wire_writer_used(&w)}, m->body_size);
    message_append_body(copy, (struct wire_bytes){.ptr = m->body, .len = m->body_size});
    free(tmp);
    return copy;
}

struct wire_table table_without(struct wire_table t, const char *name, uint8_t *out)
{
    struct wire_writer w = wire_writer_init(out, t.raw.len);
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field value;

    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &key, &value)) {
        if (!wire_bytes_eq_cstr(key, name))
            wire_table_put_bytes_name(&w, key, &value);
    }
    return (struct wire_table){.raw = {.ptr = out, .len = wire_writer_used(&w)}};
}

int expiration_parse(struct wire_bytes s, int64_t *ms, char *why, size_t why_size)
{
    size_t i = 0, first_digit, digits = 0;
    bool negative = false;
    int64_t v = 0;
    int prefix = (int)(sizeof "invalid expiration '" - 1 + s.len + sizeof "': " - 1);
    int n = snprintf(why, why_size, "invalid expiration '%.*s': ", (int)s.len, (const char *)s.ptr);
    char *reason = why + (n > 0 && (size_t)n < why_size ? n : 0);
    size_t room = why_size - (size_t)(reason - why);

    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
        negative = s.ptr[i++] == '-';
    while (i < s.len && s.ptr[i] == '0' && i + 1 < s.len && s.ptr[i + 1] >= '0' &&
           s.ptr[i + 1] <= '9')
        i++; /* leading zeros print as nothing */
    first_digit = i;
    for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, digits++) {
        if (v <= (INT64_MAX - 9) / 10)
            v = v * 10 + (s.ptr[i] - '0');
        else
            v = INT64_MAX;
    }
    if (digits == 0) {
        snprintf(reason, room, "no_integer");
        return -1;
    }
    if (i < s.len) {
        snprintf(reason, room, "{leftover_string,\"%.*s\"}", (int)(s.len - i),
                 (const char *)s.ptr + i);
        return -1;
    }
    if (negative && v != 0) {
        snprintf(reason, room, "{value_negative,-%.*s}", (int)digits,
                 (const char *)s.ptr + first_digit);
        return -1;
    }
    if (v > (int64_t)UINT32_MAX) {
        /* Erlang's ~p breaks a term that would pass column 80 after its first element and
         * indents the rest under it; RabbitMQ sends the text that way. */
        int one_line = prefix + (int)(sizeof "{value_too_large,}" - 1 + digits);
        if (one_line > 80)
            snprintf(reason, room, "{value_too_large,\n%*s%.*s}", prefix + 1, "", (int)digits,
                     (const char *)s.ptr + first_digit);
        else
            snprintf(reason, room, "{value_too_large,%.*s}", (int)digits,
                     (const char *)s.ptr + first_digit);
        return -1;
    }
    *ms = v;
    return 0;
}

bool expiration_is_valid(struct wire_bytes s)
{
    int64_t ms;
    char why[640];

    return expiration_parse(s, &ms, why, sizeof why) == 0;
}

bool message_expiration_ms(const struct message *m, int64_t *ms)
{
    char why[640];

    return (m->props.flags & WIRE_PROP_EXPIRATION) &&
           expiration_parse(m->props.expiration, ms, why, sizeof why) == 0;
}
