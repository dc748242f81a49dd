/* One exchange type behind one small interface. A type keeps its own index of the bindings
 * of one exchange (a hash for direct, a word trie for topic, ...) and answers route(). The
 * broker owns the bindings themselves and their destinations; a type only keeps pointers to
 * them between bind() and unbind().
 *
 * A new type is one file defining one `const struct exchange_type` and one line in
 * exchanges/registry.c. */
#ifndef WARREN_EXCHANGES_EXCHANGE_TYPE_H
#define WARREN_EXCHANGES_EXCHANGE_TYPE_H

#include <stddef.h>

#include "amqp/table.h"

/* A binding as the broker keeps it. routing_key and arguments are owned by the broker and
 * live as long as the binding. type_data belongs to the exchange type (set in bind, freed in
 * unbind), e.g. the parsed x-match of a headers binding. */
struct binding {
    void *destination; /* a queue or an exchange: opaque to the type */
    struct wire_bytes routing_key;
    struct wire_table arguments;
    void *type_data;
};

/* What routing looks at: the routing key and the message's headers property (empty table
 * when the message has none). */
struct route_msg {
    struct wire_bytes routing_key;
    struct wire_table headers;
};

/* The destinations of the bindings that matched. A destination may appear more than once
 * (two bindings to one queue): the broker removes duplicates. */
struct route_out {
    void **dest;
    size_t len;
    size_t cap;
};

void route_out_add(struct route_out *out, void *destination);
void route_out_clear(struct route_out *out); /* len = 0, keeps the storage */
void route_out_free(struct route_out *out);

struct exchange_type {
    const char *name; /* "direct", "fanout", "topic", "headers" */
    /* New per-exchange state; NULL only when memory is exhausted (the broker aborts). */
    void *(*create)(void);
    /* Frees the state; bindings still in it are forgotten, not freed. */
    void (*destroy)(void *state);
    /* Checks a binding's arguments before bind (e.g. x-match must be all, any, all-with-x
     * or any-with-x). Returns 0, or -1 with a RabbitMQ-style reason in err (the broker
     * answers 406 PRECONDITION_FAILED with it). May be NULL: everything is valid. */
    int (*validate)(const struct binding *b, char *err, size_t err_size);
    /* Adds b to the index (b stays valid until unbind). The broker never binds the same
     * struct twice. */
    void (*bind)(void *state, struct binding *b);
    /* Removes b, which was bound before. */
    void (*unbind)(void *state, struct binding *b);
    /* Appends the destination of every binding that matches m. */
    void (*route)(void *state, const struct route_msg *m, struct route_out *out);
};

#endif
