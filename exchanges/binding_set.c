#include "exchanges/binding_set.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "exchanges/xalloc.h"

#define BINDING_SET_FIRST_CAP 4

/* A member's index lives in its type_data: unbinding one of 100000 bindings to the same
 * key must not search the other 99999. */
static size_t position_of(const struct binding *b)
{
    return (size_t)(uintptr_t)b->type_data;
}

static void set_position(struct binding *b, size_t i)
{
    b->type_data = (void *)(uintptr_t)i;
}

void binding_set_add(struct binding_set *s, struct binding *b)
{
    if (s->len == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : BINDING_SET_FIRST_CAP;

        s->items = exch_xreallocarray(s->items, cap, sizeof *s->items);
        s->cap = cap;
    }
    set_position(b, s->len);
    s->items[s->len++] = b;
}

void binding_set_remove(struct binding_set *s, struct binding *b)
{
    size_t i = position_of(b);

    assert(i < s->len && s->items[i] == b);
    s->items[i] = s->items[--s->len];
    set_position(s->items[i], i);
    b->type_data = NULL;

    /* Give memory back after a mass unbind, but not on every small change. */
    if (s->len == 0) {
        binding_set_free(s);
    } else if (s->cap > 4 * BINDING_SET_FIRST_CAP && s->len <= s->cap / 4) {
        s->cap /= 2;
        s->items = exch_xreallocarray(s->items, s->cap, sizeof *s->items);
    }
}

void binding_set_route(const struct binding_set *s, struct route_out *out)
{
    for (size_t i = 0; i < s->len; i++)
        route_out_add(out, s->items[i]->destination);
}

void binding_set_free(struct binding_set *s)
{
    if (s == NULL)
        return;
    free(s->items);
    *s = (struct binding_set){0};
}
