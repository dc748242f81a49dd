#include "exchanges/bytes_map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "exchanges/xalloc.h"

#define BYTES_MAP_FIRST_BUCKETS 8

struct bytes_map_entry {
    struct bytes_map_entry *next;
    uint64_t hash;
    void *value;
    size_t key_len;
    uint8_t key[]; /* key_len bytes */
};

/* ---- SipHash-1-3 (Aumasson and Bernstein), one compression and three finalisation rounds:
 * enough for hash-flooding resistance in a table, at half the cost of SipHash-2-4. ---- */

static uint64_t sip_key[2];

/* Drawn before main(), while the process is still single-threaded. A failed getrandom()
 * (a very old kernel) only weakens flooding resistance, so fall back to the clock. */
__attribute__((constructor)) static void sip_key_init(void)
{
    if (getrandom(sip_key, sizeof sip_key, GRND_NONBLOCK) != (ssize_t)sizeof sip_key) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        sip_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
        sip_key[1] = (uint64_t)(uintptr_t)&ts * 0xc2b2ae3d27d4eb4fu ^ sip_key[0];
    }
}

static inline uint64_t rotl64(uint64_t x, int bits)
{
    return x << bits | x >> (64 - bits);
}

#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t bytes_map_hash(struct wire_bytes key)
{
    uint64_t v0 = sip_key[0] ^ 0x736f6d6570736575u;
    uint64_t v1 = sip_key[1] ^ 0x646f72616e646f6du;
    uint64_t v2 = sip_key[0] ^ 0x6c7967656e657261u;
    uint64_t v3 = sip_key[1] ^ 0x7465646279746573u;
    const uint8_t *p = key.ptr;
    size_t left = key.len;
    uint64_t m;

    for (; left >= 8; p += 8, left -= 8) {
        m = load_le64(p);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    /* The last block: the remaining bytes, and the length's low byte on top. */
    m = (uint64_t)(key.len & 0xff) << 56;
    for (size_t i = 0; i < left; i++)
        m |= (uint64_t)p[i] << (8 * i);
    v3 ^= m;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- The table: chained buckets, a power of two of them, at most one entry per bucket on
 * average. ---- */

static struct bytes_map_entry **bucket_of(const struct bytes_map *m, uint64_t hash)
{
    return &m->buckets[hash & (m->bucket_count - 1)];
}

static bool entry_has_key(const struct bytes_map_entry *e, uint64_t hash, struct wire_bytes key)
{
    return e->hash == hash && e->key_len == key.len &&
           (key.len == 0 || memcmp(e->key, key.ptr, key.len) == 0);
}

static void rehash(struct bytes_map *m, size_t bucket_count)
{
    struct bytes_map_entry **old = m->buckets;
    size_t old_count = m->bucket_count;

    m->buckets = exch_xcalloc(bucket_count, sizeof *m->buckets);
    m->bucket_count = bucket_count;
    for (size_t i = 0; i < old_count; i++) {
        struct bytes_map_entry *e = old[i], *next;

        for (; e != NULL; e = next) {
            struct bytes_map_entry **b = bucket_of(m, e->hash);

            next = e->next;
            e->next = *b;
            *b = e;
        }
    }
    free(old);
}

void *bytes_map_get(const struct bytes_map *m, struct wire_bytes key)
{
    uint64_t hash;

    if (m->len == 0)
        return NULL;
    hash = bytes_map_hash(key);
    for (struct bytes_map_entry *e = *bucket_of(m, hash); e != NULL; e = e->next) {
        if (entry_has_key(e, hash, key))
            return e->value;
    }
    return NULL;
}

void bytes_map_put(struct bytes_map *m, struct wire_bytes key, void *value)
{
    struct bytes_map_entry *e, **b;

    assert(value != NULL && bytes_map_get(m, key) == NULL);
    if (m->len >= m->bucket_count)
        rehash(m, m->bucket_count != 0 ? m->bucket_count * 2 : BYTES_MAP_FIRST_BUCKETS);
    e = exch_xmalloc(sizeof *e + key.len);
    e->hash = bytes_map_hash(key);
    e->value = value;
    e->key_len = key.len;
    if (key.len != 0)
        memcpy(e->key, key.ptr, key.len);
    b = bucket_of(m, e->hash);
    e->next = *b;
    *b = e;
    m->len++;
}

void *bytes_map_remove(struct bytes_map *m, struct wire_bytes key)
{
    struct bytes_map_entry **link, *e;
    uint64_t hash;
    void *value;

    if (m->len == 0)
        return NULL;
    hash = bytes_map_hash(key);
    for (link = bucket_of(m, hash); (e = *link) != NULL; link = &e->next) {
        if (entry_has_key(e, hash, key))
            break;
    }
    if (e == NULL)
        return NULL;
    *link = e->next;
    value = e->value;
    free(e);
    m->len--;

    /* An emptied map holds no buckets (a topic trie has many small maps); a shrunken one
     * gives half of them back. */
    if (m->len == 0) {
        free(m->buckets);
        m->buckets = NULL;
        m->bucket_count = 0;
    } else if (m->bucket_count > BYTES_MAP_FIRST_BUCKETS && m->len < m->bucket_count / 8) {
        rehash(m, m->bucket_count / 2);
    }
    return value;
}

void bytes_map_each(const struct bytes_map *m, void (*fn)(void *value, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->bucket_count; i++) {
        for (struct bytes_map_entry *e = m->buckets[i]; e != NULL; e = e->next)
            fn(e->value, ctx);
    }
}

void bytes_map_free(struct bytes_map *m, void (*free_value)(void *value))
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->bucket_count; i++) {
        struct bytes_map_entry *e = m->buckets[i], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            if (free_value != NULL)
                free_value(e->value);
            free(e);
        }
    }
    free(m->buckets);
    *m = (struct bytes_map){0};
}
