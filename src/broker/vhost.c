#include "src/broker/vhost.h"

#include <stdlib.h>

#include "exchanges/registry.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"

static void declare_builtin(struct vhost *vh, const char *name, const char *type)
{
    const struct exchange_type *t = exchange_type_find(wire_cstr(type));
    vhost_exchange_add(vh, exchange_new(vh, wire_cstr(name), t, true, false, false,
                                        (struct wire_bytes){0}));
}

struct vhost *vhost_new(struct wire_bytes name, struct ev_loop *loop)
{
    struct vhost *vh = xcalloc(1, sizeof *vh);

    vh->name = bytes_dup(name);
    vh->loop = loop;
    vh->memory_window = UINT32_MAX;
    hmap_init(&vh->exchanges);
    hmap_init(&vh->queues);
    /* The default exchange routes by queue name itself (see vhost_route). */
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
    policy_free_all(vh);
    for (size_t k = 0; k < vh->dead_len; k++)
        message_unref(vh->dead[k]);
    free(vh->dead);
    free(vh->route_keys);
    route_out_free(&vh->route_step);
    route_out_free(&vh->route_pending);
    route_out_free(&vh->route_queues);
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

void vhost_route_begin(struct vhost *vh)
{
    vh->route_key_count = 0;
}

void vhost_route_add_key(struct vhost *vh, struct wire_bytes key)
{
    if (vh->route_key_count == vh->route_key_cap) {
        vh->route_key_cap = vh->route_key_cap != 0 ? vh->route_key_cap * 2 : 8;
        vh->route_keys = xrealloc(vh->route_keys, vh->route_key_cap * sizeof *vh->route_keys);
    }
    vh->route_keys[vh->route_key_count++] = key;
}

/* A queue joins the result, an exchange the ones still to visit, unless this message has
 * been there already. */
static void add_destination(struct vhost *vh, void *dest)
{
    if (destination_kind(dest) == DEST_QUEUE) {
        struct queue *q = dest;
        if (q->route_mark != vh->route_generation) {
            q->route_mark = vh->route_generation;
            route_out_add(&vh->route_queues, q);
        }
    } else {
        struct exchange *x = dest;
        if (x->route_mark != vh->route_generation) {
            x->route_mark = vh->route_generation;
            route_out_add(&vh->route_pending, x);
        }
    }
}

/* Into vh->route_step: where exchange e sends the message by any key of its key set. A type
 * that ignores the key (fanout, headers) answers the same for each; add_destination drops the
 * repeats. */
static void match_keys(struct vhost *vh, struct exchange *e, struct wire_table headers)
{
    route_out_clear(&vh->route_step);
    for (size_t k = 0; k < vh->route_key_count; k++) {
        if (e == vh->default_exchange) {
            /* The default exchange routes by queue name itself; it has no bindings. */
            struct queue *q = vhost_queue_find(vh, vh->route_keys[k]);
            if (q != NULL)
                route_out_add(&vh->route_step, q);
        } else {
            struct route_msg rm = {.routing_key = vh->route_keys[k], .headers = headers};
            e->type->route(e->state, &rm, &vh->route_step);
        }
    }
}

size_t vhost_route(struct vhost *vh, struct exchange *x, struct wire_table headers,
                   struct queue ***queues)
{
    vh->route_generation++;
    route_out_clear(&vh->route_queues);
    route_out_clear(&vh->route_pending);
    add_destination(vh, x);
    while (vh->route_pending.len > 0) {
        struct exchange *e = vh->route_pending.dest[--vh->route_pending.len];
        size_t found;

        match_keys(vh, e, headers);
        found = vh->route_step.len;
        for (size_t i = 0; i < found; i++)
            add_destination(vh, vh->route_step.dest[i]);
        if (found == 0 && e->alternate.len > 0) {
            struct exchange *ae = vhost_exchange_find(vh, e->alternate);
            if (ae != NULL)
                add_destination(vh, ae);
        }
    }
    *queues = (struct queue **)vh->route_queues.dest;
    return vh->route_queues.len;
}
