/* The list of destinations a route() fills. The broker keeps one per vhost and clears it
 * before each message, so after warm-up routing allocates nothing. */
#include "exchanges/exchange_type.h"
#include "exchanges/xalloc.h"

#include <stdlib.h>

#define ROUTE_OUT_FIRST_CAP 16

void route_out_add(struct route_out *out, void *destination)
{
    if (out->len == out->cap) {
        size_t cap = out->cap != 0 ? out->cap * 2 : ROUTE_OUT_FIRST_CAP;

        out->dest = exch_xreallocarray(out->dest, cap, sizeof *out->dest);
        out->cap = cap;
    }
    out->dest[out->len++] = destination;
}

void route_out_clear(struct route_out *out)
{
    out->len = 0;
}

void route_out_free(struct route_out *out)
{
    if (out == NULL)
        return;
    free(out->dest);
    *out = (struct route_out){0};
}
