#include "src/vhost.h"

#include <stdlib.h>

#include "exchanges/registry.h"
#include "src/exchange.h"
#include "src/message.h"
#include "src/queue.h"
#include "src/util.h"

static void declare_builtin(struct vhost *vh, const char *name, const char *type)
{
    const struct exchange_type *t = exchange_type_find(wire_cstr(type));
    vhost_exchange_add(vh, exchange_new(vh, wire_cstr(name), t, true, false, false,
                                        (struct wire_bytes){0}));
}

struct vhost *vhost_new(struct wire_bytes name)
{
    struct vhost *vh = xcalloc(1, sizeof *vh);

    vh->name = bytes_dup(name);
    hmap_init(&vh->exchanges);
    hmap_init(&vh->queues);
    /* The default exchange routes by queue name itself; it has no type index. */
    vh->default_exchange = exchange_new(vh, wire_cstr(""), exchange_type_find(wire_cstr("direct")),
                                        true, false, false, (struct wire_bytes){0});
    vhost_exchange_add(vh, vh->default_exchange);
    declare_builtin(vh, "amq.direct", "direct");
    declare_builtin(vh, "amq.fanout", "fanout");
    declare_builtin(vh, "amq.topic", "topic");
    declare_builtin(vh, "amq.headers", "headers");
    declare_builtin(vh, "amq.match", "headers");
    return vh;
}

void vhost_free(struct vhost *vh)
{
    void *v;
    size_t i;

    if (vh == NULL)
        return;
    /* Queues first: deleting one unbinds it from its exchanges. */
    for (;;) {
        i = 0;
        if (!hmap_next(&vh->queues, &i, &v))
            break;
        queue_delete(v);
    }
    for (i = 0; hmap_next(&vh->exchanges, &i, &v);)
        exchange_free(v);
    hmap_free(&vh->exchanges);
    hmap_free(&vh->queues);
    route_out_free(&vh->route_scratch);
    bytes_free(&vh->name);
    free(vh);
}

struct exchange *vhost_exchange_find(struct vhost *vh, struct wire_bytes name)
{
    return hmap_get(&vh->exchanges, name);
}

void vhost_exchange_add(struct vhost *vh, struct exchange *x)
{
    hmap_put(&vh->exchanges, x->name, x);
}

void vhost_exchange_delete(struct vhost *vh, struct exchange *x)
{
    hmap_remove(&vh->exchanges, x->name);
    exchange_free(x);
}

struct queue *vhost_queue_find(struct vhost *vh, struct wire_bytes name)
{
    return hmap_get(&vh->queues, name);
}

void vhost_queue_add(struct vhost *vh, struct queue *q)
{
    hmap_put(&vh->queues, q->name, q);
}

void vhost_forget_queue(struct vhost *vh, struct queue *q)
{
    hmap_remove(&vh->queues, q->name);
}

size_t vhost_route(struct vhost *vh, struct exchange *x, const struct message *m,
                   struct queue ***queues)
{
    struct route_out *out = &vh->route_scratch;
    uint64_t gen = ++vh->route_generation;
    size_t n = 0;

    route_out_clear(out);
    if (x == vh->default_exchange) {
        struct queue *q = vhost_queue_find(vh, m->routing_key);
        if (q != NULL)
            route_out_add(out, q);
    } else {
        struct route_msg rm = {.routing_key = m->routing_key};
        if (m->props.flags & WIRE_PROP_HEADERS)
            rm.headers = m->props.headers;
        x->type->route(x->state, &rm, out);
    }
    /* A queue reached by several bindings gets the message once: compact in place. */
    for (size_t i = 0; i < out->len; i++) {
        struct queue *q = out->dest[i];
        if (q->route_mark == gen)
            continue;
        q->route_mark = gen;
        out->dest[n++] = q;
    }
    out->len = n;
    *queues = (struct queue **)out->dest;
    return n;
}
