/* fanout: every binding matches, whatever the routing key and headers. */
#include <stdlib.h>

#include "exchanges/binding_set.h"
#include "exchanges/registry.h"
#include "exchanges/xalloc.h"

static void *fanout_create(void)
{
    return exch_xcalloc(1, sizeof(struct binding_set));
}

static void fanout_destroy(void *state)
{
    binding_set_free(state);
    free(state);
}

static void fanout_bind(void *state, struct binding *b)
{
    binding_set_add(state, b);
}

static void fanout_unbind(void *state, struct binding *b)
{
    binding_set_remove(state, b);
}

static void fanout_route(void *state, const struct route_msg *m, struct route_out *out)
{
    (void)m;
    binding_set_route(state, out);
}

const struct exchange_type exchange_type_fanout = {
    .name = "fanout",
    .create = fanout_create,
    .destroy = fanout_destroy,
    .validate = NULL,
    .bind = fanout_bind,
    .unbind = fanout_unbind,
    .route = fanout_route,
};
