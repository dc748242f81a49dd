/* A hash map from byte strings to pointers: direct's routing keys, a topic node's words.
 *
 * Keys are copied in; values are the caller's. The hash is SipHash-1-3 under a key drawn
 * at start-up, so binding keys chosen to collide cannot turn a lookup into a list walk. */
#ifndef WARREN_EXCHANGES_BYTES_MAP_H
#define WARREN_EXCHANGES_BYTES_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct bytes_map_entry;

struct bytes_map {
    struct bytes_map_entry **buckets; /* NULL until the first put */
    size_t bucket_count;              /* a power of two, or 0 */
    size_t len;
};

/* The value stored under key, or NULL. */
void *bytes_map_get(const struct bytes_map *m, struct wire_bytes key);
/* Stores value (not NULL) under key, which must not be present yet. */
void bytes_map_put(struct bytes_map *m, struct wire_bytes key, void *value);
/* Removes key and returns its value, or NULL if it was not there. */
void *bytes_map_remove(struct bytes_map *m, struct wire_bytes key);
/* Frees the map, calling free_value (if not NULL) on every value. */
void bytes_map_free(struct bytes_map *m, void (*free_value)(void *value));

/* Calls fn on every value, in no particular order. fn must not change the map. */
void bytes_map_each(const struct bytes_map *m, void (*fn)(void *value, void *ctx), void *ctx);

static inline bool bytes_map_is_empty(const struct bytes_map *m)
{
    return m->len == 0;
}

/* SipHash-1-3 of the bytes under the process's random key (exposed for the tests). */
uint64_t bytes_map_hash(struct wire_bytes key);

#endif
