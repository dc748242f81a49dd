/* An exchange as the broker keeps it: its type and the type's index, its flags and
 * arguments, and the bindings whose source it is. */
#ifndef WARREN_SRC_EXCHANGE_H
#define WARREN_SRC_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "exchanges/exchange_type.h"

struct vhost;
struct queue;

/* A binding: the exchange type sees `b`; the broker links it into its source exchange and
 * its destination queue so either side can drop it. */
struct xbinding {
    struct binding b; /* b.destination is the queue */
    struct exchange *source;
    struct queue *queue;
    struct xbinding *next_in_source, *prev_in_source;
    struct xbinding *next_in_queue, *prev_in_queue;
};

struct exchange {
    struct wire_bytes name; /* owned; "" for the default exchange */
    struct vhost *vhost;
    const struct exchange_type *type;
    void *state;
    bool durable;
    bool auto_delete;
    bool internal;
    struct wire_bytes arguments; /* owned encoded table entries */
    struct xbinding *bindings;
    uint32_t binding_count;
    bool deleting; /* being freed: its bindings go without auto-deleting it again */
};

struct exchange *exchange_new(struct vhost *vh, struct wire_bytes name,
                              const struct exchange_type *type, bool durable, bool auto_delete,
                              bool internal, struct wire_bytes arguments);
/* Drops every binding of the exchange, then the exchange. */
void exchange_free(struct exchange *x);

/* The binding from x to q with this key and these arguments, or NULL. */
struct xbinding *exchange_find_binding(struct exchange *x, struct queue *q,
                                       struct wire_bytes routing_key, struct wire_bytes arguments);
/* Binds q to x. Returns the binding, or NULL with a reason in err when the type refuses the
 * arguments. Binding twice is not an error: the existing binding is returned. */
struct xbinding *exchange_bind(struct exchange *x, struct queue *q, struct wire_bytes routing_key,
                               struct wire_bytes arguments, char *err, size_t err_size);
/* Drops a binding; an auto-delete exchange goes with its last binding, as in RabbitMQ. */
void exchange_unbind(struct xbinding *xb);

/* True for names that only the broker may create (amq.*). */
bool exchange_name_is_reserved(struct wire_bytes name);

#endif
