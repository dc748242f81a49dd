#include "src/broker/publish.h"

#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/queue.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"

void publish_add_header_keys(struct vhost *vh, const struct message *msg, const char *header)
{
    struct wire_field keys, key;
    struct wire_array_iter it;

    if (!(msg->props.flags & WIRE_PROP_HEADERS) ||
        !wire_table_find(msg->props.headers, header, &keys) || keys.type != 'A')
        return;
    wire_array_iter_init(&it, keys.v.array);
    while (wire_array_next(&it, &key)) {
        if (key.type == 'S')
            vhost_route_add_key(vh, key.v.bytes);
    }
}

const char *publish_bad_routing_header(const struct wire_props *props, uint8_t *type)
{
    static const char *const headers[] = {"CC", "BCC"};
    struct wire_field f;

    if (!(props->flags & WIRE_PROP_HEADERS))
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(headers); i++) {
        if (wire_table_find(props->headers, headers[i], &f) && f.type != 'A') {
            *type = f.type;
            return headers[i];
        }
    }
    return NULL;
}

bool publish_is_reply_address(struct wire_bytes name)
{
    static const char prefix[] = "amq.rabbitmq.reply-to.";
    return name.len > sizeof prefix - 1 && memcmp(name.ptr, prefix, sizeof prefix - 1) == 0;
}

/* BCC recipients are not for consumers to see. */
static void strip_bcc(struct message **msg)
{
    struct message *m = *msg;
    struct wire_field bcc;
    struct wire_props props = m->props;
    uint8_t *tmp;

    if (!(m->props.flags & WIRE_PROP_HEADERS) || !wire_table_find(m->props.headers, "BCC", &bcc))
        return;
    tmp = xmalloc(m->props.headers.raw.len + 1);
    props.headers = table_without(m->props.headers, "BCC", tmp);
    *msg = message_rewrite(m, &props);
    free(tmp);
    message_unref(m);
}

void publish_deliver(struct vhost *vh, struct exchange *x, struct message **msg,
                     struct publish_result *out)
{
    struct message *m = *msg;
    struct queue **queues;
    size_t n;

    *out = (struct publish_result){0};
    vhost_route_begin(vh);
    vhost_route_add_key(vh, m->routing_key);
    publish_add_header_keys(vh, m, "CC");
    publish_add_header_keys(vh, m, "BCC");
    n = vhost_route(vh, x, m->props.headers, &queues);
    out->routed = n;
    if (n == 0)
        return;
    strip_bcc(msg);
    m = *msg;
    /* Written to the store once, before any queue can deliver or drop it. */
    out->store_seq = persist_publish(vh, m, queues, n);
    if (out->store_seq == 0 && vh->persist != NULL && vh->persist->failed &&
        (m->props.flags & WIRE_PROP_DELIVERY_MODE) && m->props.delivery_mode == 2)
        out->refused = true;
    for (size_t i = 0; i < n; i++) {
        if (queues[i]->stream != NULL) {
            /* A stream writes every message to its own log; the confirm waits for it. */
            uint64_t seq = stream_push(queues[i], m);
            if (seq == 0)
                out->refused = true;
            else if (seq > out->stream_seq)
                out->stream_seq = seq;
        } else if (!queue_push(queues[i], m)) {
            out->refused = true;
        }
    }
}
