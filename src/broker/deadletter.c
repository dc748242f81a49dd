#include "src/broker/deadletter.h"

#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/publish.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"

static const char *const reason_names[] = {
    [DEAD_REJECTED] = "rejected",
    [DEAD_EXPIRED] = "expired",
    [DEAD_MAXLEN] = "maxlen",
    [DEAD_DELIVERY_LIMIT] = "delivery_limit",
};

static bool field_is(const struct wire_field *f, struct wire_bytes s)
{
    return f->type == 'S' && wire_bytes_eq(f->v.bytes, s);
}

/* The entry of an x-death array for (queue, reason), if there is one. */
static bool is_entry_for(const struct wire_field *entry, struct wire_bytes queue,
                         struct wire_bytes reason)
{
    struct wire_field q, r;

    return entry->type == 'F' && wire_table_find(entry->v.table, "queue", &q) &&
           wire_table_find(entry->v.table, "reason", &r) && field_is(&q, queue) &&
           field_is(&r, reason);
}

/* Writes the x-death entry for a message that dies now for the first time in q for reason. */
static void put_new_entry(struct wire_writer *w, const struct queue *q, const struct message *m,
                          struct wire_bytes reason)
{
    size_t entry, keys;
    struct wire_field f;

    wire_put_u8(w, 'F');
    entry = wire_table_begin(w);
    wire_table_put_i64(w, "count", 1);
    wire_table_put_longstr(w, "reason", reason);
    wire_table_put_longstr(w, "queue", q->name);
    wire_table_put_timestamp(w, "time", now_epoch_s());
    wire_table_put_longstr(w, "exchange", m->exchange);
    keys = wire_table_put_array_begin(w, "routing-keys");
    f = (struct wire_field){.type = 'S', .v.bytes = m->routing_key};
    wire_put_field(w, &f);
    if (m->props.flags & WIRE_PROP_HEADERS) {
        struct wire_field cc, key;
        struct wire_array_iter it;
        if (wire_table_find(m->props.headers, "CC", &cc) && cc.type == 'A') {
            wire_array_iter_init(&it, cc.v.array);
            while (wire_array_next(&it, &key))
                if (key.type == 'S')
                    wire_put_field(w, &key);
        }
    }
    wire_table_end(w, keys);
    if (m->props.flags & WIRE_PROP_EXPIRATION)
        wire_table_put_longstr(w, "original-expiration", m->props.expiration);
    wire_table_end(w, entry);
}

/* Writes an existing entry with its count one higher (RabbitMQ keeps its other fields). */
static void put_counted_entry(struct wire_writer *w, const struct wire_field *old)
{
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;
    int64_t count = 0;
    size_t entry;

    wire_put_u8(w, 'F');
    entry = wire_table_begin(w);
    wire_table_iter_init(&it, old->v.table);
    while (wire_table_next(&it, &key, &v)) {
        if (wire_bytes_eq_cstr(key, "count")) {
            wire_field_int(&v, &count);
            continue;
        }
        wire_table_put_bytes_name(w, key, &v);
    }
    wire_table_put_i64(w, "count", count + 1);
    wire_table_end(w, entry);
}

static bool is_death_header(struct wire_bytes key)
{
    static const char *const names[] = {"x-death",
                                        "x-first-death-reason",
                                        "x-first-death-queue",
                                        "x-first-death-exchange",
                                        "x-last-death-reason",
                                        "x-last-death-queue",
                                        "x-last-death-exchange"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (wire_bytes_eq_cstr(key, names[i]))
            return true;
    return false;
}

/* The message as it leaves q: headers with its history, no expiration, addressed to the
 * dead-letter exchange with the dead-letter routing key (or its own). */
static struct message *dead_message(const struct queue *q, const struct message *m,
                                    struct wire_bytes reason)
{
    struct wire_table headers = {{0}};
    struct wire_props props = m->props;
    size_t cap = (m->props.flags & WIRE_PROP_HEADERS ? m->props.headers.raw.len : 0) + 1024 +
                 q->name.len * 4 + m->exchange.len * 4 + m->routing_key.len * 2;
    uint8_t *buf;
    struct wire_writer w;
    struct wire_field deaths = {0}, first;
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;
    struct message *dm;
    bool had_deaths, had_first; /* x-first-death-* are kept once set */
    size_t arr;

    if (m->props.flags & WIRE_PROP_HEADERS)
        headers = m->props.headers;
    had_deaths = wire_table_find(headers, "x-death", &deaths) && deaths.type == 'A';
    had_first = wire_table_find(headers, "x-first-death-reason", &first);
    if (had_deaths)
        cap += deaths.v.array.raw.len + 64;
    buf = xmalloc(cap);
    w = wire_writer_init(buf, cap);

    /* Everything the publisher set stays, but CC when a dead-letter routing key replaces the
     * message's keys, and the history that is rewritten below. */
    wire_table_iter_init(&it, headers);
    while (wire_table_next(&it, &key, &v)) {
        bool first_death = key.len > 14 && memcmp(key.ptr, "x-first-death-", 14) == 0;
        if (is_death_header(key) && !first_death)
            continue;
        if (q->args.has_dlrk && wire_bytes_eq_cstr(key, "CC"))
            continue;
        wire_table_put_bytes_name(&w, key, &v);
    }
    if (!had_first) {
        wire_table_put_longstr(&w, "x-first-death-reason", reason);
        wire_table_put_longstr(&w, "x-first-death-queue", q->name);
        wire_table_put_longstr(&w, "x-first-death-exchange", m->exchange);
    }
    wire_table_put_longstr(&w, "x-last-death-reason", reason);
    wire_table_put_longstr(&w, "x-last-death-queue", q->name);
    wire_table_put_longstr(&w, "x-last-death-exchange", m->exchange);

    /* x-death: the entry for this queue and reason first, counted; the others after it. */
    arr = wire_table_put_array_begin(&w, "x-death");
    {
        struct wire_field old = {0};
        bool found = false;
        struct wire_array_iter ai;

        if (had_deaths) {
            wire_array_iter_init(&ai, deaths.v.array);
            while (wire_array_next(&ai, &v)) {
                if (is_entry_for(&v, q->name, reason)) {
                    old = v;
                    found = true;
                    break;
                }
            }
        }
        if (found)
            put_counted_entry(&w, &old);
        else
            put_new_entry(&w, q, m, reason);
        if (had_deaths) {
            wire_array_iter_init(&ai, deaths.v.array);
            while (wire_array_next(&ai, &v))
                if (!is_entry_for(&v, q->name, reason))
                    wire_put_field(&w, &v);
        }
    }
    wire_table_end(&w, arr);

    props.headers.raw = (struct wire_bytes){.ptr = buf, .len = wire_writer_used(&w)};
    props.flags |= WIRE_PROP_HEADERS;
    props.flags &= (uint16_t)~WIRE_PROP_EXPIRATION;
    props.expiration = (struct wire_bytes){0};
    dm = message_rewrite_to(m, q->args.dlx, q->args.has_dlrk ? q->args.dlrk : m->routing_key,
                            &props);
    free(buf);
    return dm;
}

void deadletter(struct queue *q, struct message *m, enum dead_reason reason)
{
    struct vhost *vh = q->vhost;

    persist_left(q, m);
    if (!q->args.has_dlx) {
        q->stats.dropped++;
        message_unref(m);
        return;
    }
    q->stats.dead_lettered++;
    if (vh->dead_len == vh->dead_cap) {
        vh->dead_cap = vh->dead_cap ? vh->dead_cap * 2 : 16;
        vh->dead = xrealloc(vh->dead, vh->dead_cap * sizeof *vh->dead);
    }
    vh->dead[vh->dead_len++] = dead_message(q, m, wire_cstr(reason_names[reason]));
    message_unref(m);
}

/* RabbitMQ drops a dead-lettered message that would return to a queue it already died in,
 * unless one of the deaths since then was a rejection: a cycle of expiries or overflows
 * would otherwise run forever, while a consumer that rejects is making progress. */
static bool is_cycle(const struct message *m, const struct queue *q)
{
    struct wire_field deaths, entry, f;
    struct wire_array_iter it;

    if (!wire_table_find(m->props.headers, "x-death", &deaths) || deaths.type != 'A')
        return false;
    wire_array_iter_init(&it, deaths.v.array);
    while (wire_array_next(&it, &entry)) {
        if (entry.type != 'F')
            continue;
        if (wire_table_find(entry.v.table, "reason", &f) &&
            field_is(&f, wire_cstr(reason_names[DEAD_REJECTED])))
            return false;
        if (wire_table_find(entry.v.table, "queue", &f) && field_is(&f, q->name))
            return true;
    }
    return false;
}

void vhost_flush_deadletters(struct vhost *vh)
{
    /* Publishing can dead-letter more (a full queue dropping its head): the list grows while
     * it is walked, and the cycle check bounds it. */
    for (size_t i = 0; i < vh->dead_len; i++) {
        struct message *m = vh->dead[i];
        struct exchange *x = vhost_exchange_find(vh, m->exchange);
        struct queue **queues;
        size_t n;

        vh->dead[i] = NULL;
        if (x == NULL) {
            log_debug(NULL, "dead-letter exchange '%.*s' does not exist: message dropped",
                      (int)m->exchange.len, (const char *)m->exchange.ptr);
            message_unref(m);
            continue;
        }
        vhost_route_begin(vh);
        vhost_route_add_key(vh, m->routing_key);
        publish_add_header_keys(vh, m, "CC");
        n = vhost_route(vh, x, m->props.headers, &queues);
        /* queue_push may route again (reject-publish-dlx): copy the result first, leaving
         * out the queues that would close a cycle. */
        {
            struct queue *small[16];
            struct queue **targets = n <= ARRAY_LEN(small) ? small : xmalloc(n * sizeof *targets);
            size_t kept = 0;
            for (size_t k = 0; k < n; k++) {
                if (is_cycle(m, queues[k])) {
                    log_debug(NULL, "dead-letter cycle through queue '%.*s': message dropped",
                              (int)queues[k]->name.len, (const char *)queues[k]->name.ptr);
                    continue;
                }
                targets[kept++] = queues[k];
            }
            persist_publish(vh, m, targets, kept);
            for (size_t k = 0; k < kept; k++)
                queue_push(targets[k], m);
            if (targets != small)
                free(targets);
        }
        message_unref(m);
    }
    vh->dead_len = 0;
}
