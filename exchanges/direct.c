/* direct: a binding matches when its routing key equals the message's, byte for byte.
 * A hash from each bound key to the set of bindings with that key makes routing one lookup,
 * however many keys are bound. */
#include <assert.h>
#include <stdlib.h>

#include "exchanges/binding_set.h"
#include "exchanges/bytes_map.h"
#include "exchanges/registry.h"
#include "exchanges/xalloc.h"

struct direct {
    struct bytes_map keys; /* routing key -> struct binding_set * (never empty) */
};

static void *direct_create(void)
{
    return exch_xcalloc(1, sizeof(struct direct));
}

static void free_set(void *set)
{
    binding_set_free(set);
    free(set);
}

static void direct_destroy(void *state)
{
    struct direct *d = state;

    if (d == NULL)
        return;
    bytes_map_free(&d->keys, free_set);
    free(d);
}

static void direct_bind(void *state, struct binding *b)
{
    struct direct *d = state;
    struct binding_set *set = bytes_map_get(&d->keys, b->routing_key);

    if (set == NULL) {
        set = exch_xcalloc(1, sizeof *set);
        bytes_map_put(&d->keys, b->routing_key, set);
    }
    binding_set_add(set, b);
}

static void direct_unbind(void *state, struct binding *b)
{
    struct direct *d = state;
    struct binding_set *set = bytes_map_get(&d->keys, b->routing_key);

    assert(set != NULL);
    binding_set_remove(set, b);
    if (binding_set_is_empty(set)) {
        bytes_map_remove(&d->keys, b->routing_key);
        free_set(set);
    }
}

static void direct_route(void *state, const struct route_msg *m, struct route_out *out)
{
    struct direct *d = state;
    const struct binding_set *set = bytes_map_get(&d->keys, m->routing_key);

    if (set != NULL)
        binding_set_route(set, out);
}

const struct exchange_type exchange_type_direct = {
    .name = "direct",
    .create = direct_create,
    .destroy = direct_destroy,
    .validate = NULL,
    .bind = direct_bind,
    .unbind = direct_unbind,
    .route = direct_route,
};
