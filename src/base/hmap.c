#include "src/base/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"

/* FNV-1a: names are short, and a good spread matters more than speed here. */
static size_t hash_bytes(struct wire_bytes k)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < k.len; i++) {
        h ^= k.ptr[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 32));
}

void hmap_init(struct hmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
}

void hmap_free(struct hmap *m)
{
    free(m->slots);
    hmap_init(m);
}

static struct hmap_entry *find_slot(const struct hmap *m, struct wire_bytes key, size_t hash)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct hmap_entry *e = &m->slots[i];
        if (e->value == NULL || (e->hash == hash && wire_bytes_eq(e->key, key)))
            return e;
    }
}

static void grow(struct hmap *m)
{
    struct hmap_entry *old = m->slots;
    size_t old_cap = m->cap;

    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].value != NULL)
            *find_slot(m, old[i].key, old[i].hash) = old[i];
    }
    free(old);
}

void *hmap_get(const struct hmap *m, struct wire_bytes key)
{
    if (m->len == 0)
        return NULL;
    return find_slot(m, key, hash_bytes(key))->value;
}

void hmap_put(struct hmap *m, struct wire_bytes key, void *value)
{
    size_t hash = hash_bytes(key);
    struct hmap_entry *e;

    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    e = find_slot(m, key, hash);
    if (e->value == NULL)
        m->len++;
    *e = (struct hmap_entry){.key = key, .value = value, .hash = hash};
}

void *hmap_remove(struct hmap *m, struct wire_bytes key)
{
    size_t mask, i, j;
    struct hmap_entry *e;
    void *value;

    if (m->len == 0)
        return NULL;
    e = find_slot(m, key, hash_bytes(key));
    if ((value = e->value) == NULL)
        return NULL;
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    mask = m->cap - 1;
    i = (size_t)(e - m->slots);
    for (j = (i + 1) & mask; m->slots[j].value != NULL; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].value = NULL;
    m->len--;
    return value;
}

bool hmap_next(const struct hmap *m, size_t *pos, void **value)
{
    while (*pos < m->cap) {
        struct hmap_entry *e = &m->slots[(*pos)++];
        if (e->value != NULL) {
            *value = e->value;
            return true;
        }
    }
    return false;
}

void hmap_remove_if(struct hmap *m, bool (*stale)(const void *value, void *ctx), void *ctx,
                    void (*release)(void *value))
{
    /* Removal shifts entries back, so it cannot happen during the scan: keys first. */
    struct wire_bytes *keys = NULL;
    size_t n = 0, cap = 0;

    for (size_t i = 0; i < m->cap; i++) {
        const struct hmap_entry *e = &m->slots[i];
        if (e->value == NULL || !stale(e->value, ctx))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            keys = xrealloc(keys, cap * sizeof *keys);
        }
        keys[n++] = e->key;
    }
    for (size_t i = 0; i < n; i++)
        release(hmap_remove(m, keys[i]));
    free(keys);
}
