/* An unordered set of bindings with O(1) add and remove: the list of bindings behind one
 * direct routing key, one topic trie node, or a whole fanout exchange.
 *
 * The set keeps each member's position in its type_data, so a binding is in at most one set
 * and its type_data belongs to the set while it is a member. */
#ifndef WARREN_EXCHANGES_BINDING_SET_H
#define WARREN_EXCHANGES_BINDING_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "exchanges/exchange_type.h"

struct binding_set {
    struct binding **items;
    size_t len;
    size_t cap;
};

void binding_set_add(struct binding_set *s, struct binding *b);
/* b must be a member. The last member takes its place. */
void binding_set_remove(struct binding_set *s, struct binding *b);
/* Appends every member's destination. */
void binding_set_route(const struct binding_set *s, struct route_out *out);
/* Frees the storage; members are forgotten, not freed. */
void binding_set_free(struct binding_set *s);

static inline bool binding_set_is_empty(const struct binding_set *s)
{
    return s->len == 0;
}

#endif
