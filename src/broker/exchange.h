/* An exchange as the broker keeps it: its type and the type's index, its flags and
 * arguments, and the bindings whose source it is. */
#ifndef WARREN_SRC_BROKER_EXCHANGE_H
#define WARREN_SRC_BROKER_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "exchanges/exchange_type.h"

struct vhost;
struct queue;

/* A binding's destination is a queue or (exchange-to-exchange bindings) an exchange. Both
 * structs start with this kind, so routing can tell them apart from the pointer alone. */
enum destination_kind {
    DEST_QUEUE = 1,
    DEST_EXCHANGE = 2,
};

static inline enum destination_kind destination_kind(const void *dest)
{
    return (enum destination_kind) * (const unsigned char *)dest;
}

/* A binding: the exchange type sees `b`; the broker links it into its source exchange and
 * into its destination (queue or exchange) so either side can drop it. */
struct xbinding {
    struct binding b; /* b.destination is the queue or exchange */
    struct exchange *source;
    struct xbinding *next_in_source, *prev_in_source;
    struct xbinding *next_in_dest, *prev_in_dest;
};

struct exchange {
    unsigned char kind;     /* DEST_EXCHANGE */
    struct wire_bytes name; /* owned; "" for the default exchange */
    struct vhost *vhost;
    const struct exchange_type *type;
    void *state;
    bool durable;
    bool auto_delete;
    bool internal;
    struct wire_bytes arguments; /* owned encoded table entries */
    struct xbinding *bindings; /* bindings whose source is this exchange */
    uint32_t binding_count;
    struct xbinding *incoming; /* bindings whose destination is this exchange */
    struct wire_bytes alternate; /* alternate exchange (argument, else policy), owned; or empty */
    uint64_t route_mark;         /* routing generation that last visited it */
    bool deleting; /* being freed: its bindings go without auto-deleting it again */
};

struct exchange *exchange_new(struct vhost *vh, struct wire_bytes name,
                              const struct exchange_type *type, bool durable, bool auto_delete,
                              bool internal, struct wire_bytes arguments);
/* Drops every binding of the exchange, then the exchange. */
void exchange_free(struct exchange *x);

/* The binding from x to dest (a queue or an exchange) with this key and these arguments, or
 * NULL. */
struct xbinding *exchange_find_binding(struct exchange *x, void *dest,
                                       struct wire_bytes routing_key, struct wire_bytes arguments);
/* Binds dest to x. Returns the binding, or NULL with a reply code in *code and a reason in
 * err: 406 when the type refuses the arguments, 506 when a durable binding cannot be written
 * to the definitions log. Binding twice is not an error: the existing binding is returned. */
struct xbinding *exchange_bind(struct exchange *x, void *dest, struct wire_bytes routing_key,
                               struct wire_bytes arguments, uint16_t *code, char *err,
                               size_t err_size);
/* Drops a binding; an auto-delete exchange goes with its last binding, as in RabbitMQ. */
void exchange_unbind(struct xbinding *xb);

/* True for names that only the broker may create (amq.*). */
bool exchange_name_is_reserved(struct wire_bytes name);

#endif
