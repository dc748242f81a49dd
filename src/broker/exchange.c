#include "src/broker/exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/method.h"
#include "src/base/util.h"
#include "src/broker/persist.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"

struct exchange *exchange_new(struct vhost *vh, struct wire_bytes name,
                              const struct exchange_type *type, bool durable, bool auto_delete,
                              bool internal, struct wire_bytes arguments)
{
    struct exchange *x = xcalloc(1, sizeof *x);

    x->kind = DEST_EXCHANGE;
    x->name = bytes_dup(name);
    x->vhost = vh;
    x->type = type;
    x->state = type ? type->create() : NULL;
    x->durable = durable;
    x->auto_delete = auto_delete;
    x->internal = internal;
    x->arguments = bytes_dup(arguments);
    x->alternate = bytes_dup(policy_alternate_exchange(vh, x));
    return x;
}

/* The list of bindings that end at dest. */
static struct xbinding **incoming_of(void *dest)
{
    if (destination_kind(dest) == DEST_QUEUE)
        return &((struct queue *)dest)->bindings;
    return &((struct exchange *)dest)->incoming;
}

void exchange_free(struct exchange *x)
{
    if (x == NULL)
        return;
    x->deleting = true;
    persist_exchange_removed(x);
    while (x->bindings != NULL)
        exchange_unbind(x->bindings);
    while (x->incoming != NULL)
        exchange_unbind(x->incoming);
    if (x->type)
        x->type->destroy(x->state);
    bytes_free(&x->name);
    bytes_free(&x->arguments);
    bytes_free(&x->alternate);
    free(x);
}

struct xbinding *exchange_find_binding(struct exchange *x, void *dest,
                                       struct wire_bytes routing_key, struct wire_bytes arguments)
{
    for (struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source) {
        if (xb->b.destination == dest && wire_bytes_eq(xb->b.routing_key, routing_key) &&
            wire_bytes_eq(xb->b.arguments.raw, arguments))
            return xb;
    }
    return NULL;
}

struct xbinding *exchange_bind(struct exchange *x, void *dest, struct wire_bytes routing_key,
                               struct wire_bytes arguments, uint16_t *code, char *err,
                               size_t err_size)
{
    int rc;

    struct xbinding *xb = exchange_find_binding(x, dest, routing_key, arguments);
    struct xbinding **in = incoming_of(dest);

    if (xb != NULL)
        return xb;
    xb = xcalloc(1, sizeof *xb);
    xb->b.destination = dest;
    xb->b.routing_key = bytes_dup(routing_key);
    xb->b.arguments.raw = bytes_dup(arguments);
    xb->source = x;
    *code = WIRE_PRECONDITION_FAILED;
    if (x->type->validate && x->type->validate(&xb->b, err, err_size) != 0)
        goto refused;
    /* Written before it is linked in: a durable binding that would not survive a restart is
     * refused (and the log is unchanged). */
    if ((rc = persist_binding_added(xb)) != 0) {
        *code = WIRE_RESOURCE_ERROR;
        snprintf(err, err_size, "cannot store the binding: %s", strerror(-rc));
        goto refused;
    }
    x->type->bind(x->state, &xb->b);
    xb->next_in_source = x->bindings;
    if (x->bindings)
        x->bindings->prev_in_source = xb;
    x->bindings = xb;
    x->binding_count++;
    xb->next_in_dest = *in;
    if (*in)
        (*in)->prev_in_dest = xb;
    *in = xb;
    return xb;
refused:
    bytes_free(&xb->b.routing_key);
    bytes_free(&xb->b.arguments.raw);
    free(xb);
    return NULL;
}

void exchange_unbind(struct xbinding *xb)
{
    struct exchange *x = xb->source;
    struct xbinding **in = incoming_of(xb->b.destination);

    persist_binding_removed(xb);
    x->type->unbind(x->state, &xb->b);
    if (xb->prev_in_source)
        xb->prev_in_source->next_in_source = xb->next_in_source;
    else
        x->bindings = xb->next_in_source;
    if (xb->next_in_source)
        xb->next_in_source->prev_in_source = xb->prev_in_source;
    x->binding_count--;
    if (xb->prev_in_dest)
        xb->prev_in_dest->next_in_dest = xb->next_in_dest;
    else
        *in = xb->next_in_dest;
    if (xb->next_in_dest)
        xb->next_in_dest->prev_in_dest = xb->prev_in_dest;
    bytes_free(&xb->b.routing_key);
    bytes_free(&xb->b.arguments.raw);
    free(xb);
    if (x->auto_delete && x->binding_count == 0 && !x->deleting)
        vhost_exchange_delete(x->vhost, x);
}

bool exchange_name_is_reserved(struct wire_bytes name)
{
    return name.len >= 4 && memcmp(name.ptr, "amq.", 4) == 0;
}
