/* A hash map from byte-string keys to pointers (exchanges, queues, consumers by name).
 * Keys are borrowed: the value owns its name, and the map points at it. */
#ifndef WARREN_SRC_BASE_HMAP_H
#define WARREN_SRC_BASE_HMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "amqp/wire.h"

struct hmap_entry {
    struct wire_bytes key;
    void *value;
    size_t hash;
};

struct hmap {
    struct hmap_entry *slots; /* open addressing, linear probing; value NULL = empty */
    size_t cap;               /* a power of two */
    size_t len;
};

void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m); /* frees the table, not the values */
void *hmap_get(const struct hmap *m, struct wire_bytes key);
/* Inserts or replaces; key must stay valid while it is in the map; value is not NULL. */
void hmap_put(struct hmap *m, struct wire_bytes key, void *value);
void *hmap_remove(struct hmap *m, struct wire_bytes key);

/* Iteration: for (size_t i = 0; hmap_next(m, &i, &v);) — do not insert while iterating;
 * removing the current entry is allowed only through hmap_remove after collecting (or
 * hmap_remove_if, which does that). */
bool hmap_next(const struct hmap *m, size_t *pos, void **value);
/* Removes every entry whose value stale(value, ctx) says is stale, and hands each one removed
 * to release (after it is out of the map, so release may free its key). */
void hmap_remove_if(struct hmap *m, bool (*stale)(const void *value, void *ctx), void *ctx,
                    void (*release)(void *value));

#endif
