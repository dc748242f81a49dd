#include "exchanges/registry.h"

#include <stddef.h>

/* Every type Warren knows. A new type is its file and one line here (and its declaration in
 * registry.h). */
static const struct exchange_type *const exchange_types[] = {
    &exchange_type_direct,
    &exchange_type_fanout,
    &exchange_type_topic,
    &exchange_type_headers,
};

const struct exchange_type *exchange_type_find(struct wire_bytes name)
{
    for (size_t i = 0; i < sizeof exchange_types / sizeof exchange_types[0]; i++) {
        if (wire_bytes_eq_cstr(name, exchange_types[i]->name))
            return exchange_types[i];
    }
    return NULL;
}
