#include "src/broker/persist.h"
#include "src/broker/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/queue.h"
#include "src/broker/spill.h"
#include "src/broker/stream.h"
#include "src/store/stream_log.h"
#include "src/broker/vhost.h"
#include "src/definitions/definitions.h"
#include "src/store/defs_log.h"
#include "src/store/store.h"

/* ---- Encodings of definitions (persist.h) ---------------------------------------------- */

#define KEY_MAX 1400 /* vhost, names and a binding's key: each at most 255; arguments extra */

struct key_buf {
    uint8_t *data;
    size_t len;
};

static void key_put(struct key_buf *k, struct wire_bytes b, bool terminate)
{
    memcpy(k->data + k->len, b.ptr, b.len);
    k->len += b.len;
    if (terminate)
        k->data[k->len++] = 0;
}

static struct key_buf entity_key(struct wire_bytes vhost, struct wire_bytes name)
{
    struct key_buf k = {.data = xmalloc(vhost.len + name.len + 1)};
    key_put(&k, vhost, true);
    key_put(&k, name, false);
    return k;
}

static struct key_buf binding_key(const struct xbinding *xb)
{
    const struct exchange *src = xb->source;
    void *dest = xb->b.destination;
    bool to_queue = destination_kind(dest) == DEST_QUEUE;
    struct wire_bytes dname = to_queue ? ((struct queue *)dest)->name : ((struct exchange *)dest)->name;
    struct key_buf k = {.data = xmalloc(src->vhost->name.len + src->name.len + dname.len +
                                        xb->b.routing_key.len + xb->b.arguments.raw.len + 8)};

    key_put(&k, src->vhost->name, true);
    key_put(&k, src->name, true);
    k.data[k.len++] = to_queue ? 'q' : 'e';
    key_put(&k, dname, true);
    key_put(&k, xb->b.routing_key, true);
    key_put(&k, xb->b.arguments.raw, false);
    return k;
}

static struct persist *persist_of(struct vhost *vh)
{
    return vh->persist;
}

static void write_failed(const char *what, int rc)
{
    log_error(NULL, "cannot write the definitions log (%s): %s", what, strerror(-rc));
}

void persist_batch_begin(struct persist *p)
{
    if (p != NULL)
        defs_log_begin(p->defs);
}

void persist_batch_end(struct persist *p)
{
    int rc;

    if (p != NULL && (rc = defs_log_commit(p->defs)) != 0)
        write_failed("batch", rc);
}

int persist_exchange_added(struct exchange *x)
{
    struct persist *p = persist_of(x->vhost);
    struct key_buf k;
    uint8_t *value;
    struct wire_writer w;
    int rc;

    if (p == NULL || p->replaying || !x->durable || x->name.len == 0)
        return 0;
    k = entity_key(x->vhost->name, x->name);
    value = xmalloc(x->arguments.len + 300);
    w = wire_writer_init(value, x->arguments.len + 300);
    wire_put_shortstr(&w, wire_cstr(x->type->name));
    wire_put_u8(&w, (uint8_t)(DEF_DURABLE | (x->auto_delete ? DEF_AUTO_DELETE : 0) |
                              (x->internal ? DEF_INTERNAL : 0)));
    wire_put_bytes(&w, x->arguments.ptr, x->arguments.len);
    rc = defs_log_put(p->defs, DEFS_KIND_EXCHANGE, (struct wire_bytes){k.data, k.len},
                      (struct wire_bytes){value, wire_writer_used(&w)});
    if (rc != 0)
        write_failed("exchange", rc);
    free(value);
    free(k.data);
    return rc;
}

void persist_exchange_removed(struct exchange *x)
{
    struct persist *p = persist_of(x->vhost);
    struct key_buf k;
    int rc;

    if (p == NULL || p->replaying || !x->durable || x->name.len == 0)
        return;
    k = entity_key(x->vhost->name, x->name);
    rc = defs_log_delete(p->defs, DEFS_KIND_EXCHANGE, (struct wire_bytes){k.data, k.len});
    if (rc != 0)
        write_failed("exchange", rc);
    free(k.data);
}

static bool queue_is_stored(const struct queue *q)
{
    return q->durable && !q->exclusive;
}

/* A stream keeps its messages in a log of its own (src/broker/stream.h). */
static bool queue_takes_store_messages(const struct queue *q)
{
    return queue_is_stored(q) && q->stream == NULL;
}

int persist_queue_added(struct queue *q)
{
    struct persist *p = persist_of(q->vhost);
    struct key_buf k;
    uint8_t *value;
    struct wire_writer w;
    int rc;

    if (p == NULL || !queue_is_stored(q))
        return 0;
    if (q->store_id == 0)
        q->store_id = p->next_queue_id++;
    if (p->replaying)
        return 0;
    k = entity_key(q->vhost->name, q->name);
    value = xmalloc(q->arguments.len + 16);
    w = wire_writer_init(value, q->arguments.len + 16);
    wire_put_u32(&w, q->store_id);
    wire_put_u8(&w, (uint8_t)(DEF_DURABLE | (q->auto_delete ? DEF_AUTO_DELETE : 0)));
    wire_put_bytes(&w, q->arguments.ptr, q->arguments.len);
    rc = defs_log_put(p->defs, DEFS_KIND_QUEUE, (struct wire_bytes){k.data, k.len},
                      (struct wire_bytes){value, wire_writer_used(&w)});
    if (rc != 0)
        write_failed("queue", rc);
    free(value);
    free(k.data);
    return rc;
}

void persist_queue_removed(struct queue *q)
{
    struct persist *p = persist_of(q->vhost);
    struct key_buf k;
    int rc;

    if (p == NULL || q->store_id == 0)
        return;
    /* None of the messages stored for it may come back; the references it still holds are
     * released as it lets go of them (persist_released). */
    store_queue_deleted(p->store, q->store_id);
    k = entity_key(q->vhost->name, q->name);
    rc = defs_log_delete(p->defs, DEFS_KIND_QUEUE, (struct wire_bytes){k.data, k.len});
    if (rc != 0)
        write_failed("queue", rc);
    free(k.data);
}

static bool binding_is_stored(const struct xbinding *xb)
{
    void *dest = xb->b.destination;

    if (!xb->source->durable || xb->source->name.len == 0)
        return false;
    if (destination_kind(dest) == DEST_QUEUE)
        return queue_is_stored(dest);
    return ((struct exchange *)dest)->durable;
}

int persist_binding_added(struct xbinding *xb)
{
    struct persist *p = persist_of(xb->source->vhost);
    struct key_buf k;
    int rc;

    if (p == NULL || p->replaying || !binding_is_stored(xb))
        return 0;
    k = binding_key(xb);
    rc = defs_log_put(p->defs, DEFS_KIND_BINDING, (struct wire_bytes){k.data, k.len},
                      (struct wire_bytes){0});
    if (rc != 0)
        write_failed("binding", rc);
    free(k.data);
    return rc;
}

void persist_binding_removed(struct xbinding *xb)
{
    struct persist *p = persist_of(xb->source->vhost);
    struct key_buf k;
    int rc;

    if (p == NULL || p->replaying || !binding_is_stored(xb))
        return;
    k = binding_key(xb);
    rc = defs_log_delete(p->defs, DEFS_KIND_BINDING, (struct wire_bytes){k.data, k.len});
    if (rc != 0)
        write_failed("binding", rc);
    free(k.data);
}

/* A policy: key vhost 0x00 name 0x00 kind ('u' user, 'o' operator); value u8 apply-to,
 * u64 priority, longstr pattern, definition (table entries). */
static struct key_buf policy_key(struct wire_bytes vhost, const struct policy *p)
{
    struct key_buf k = {.data = xmalloc(vhost.len + strlen(p->name) + 4)};

    key_put(&k, vhost, true);
    key_put(&k, wire_cstr(p->name), true);
    k.data[k.len++] = p->operator_policy ? 'o' : 'u';
    return k;
}

void persist_policy_put(struct vhost *vh, const struct policy *p)
{
    struct persist *ps = vh->persist;
    struct key_buf k;
    uint8_t *value;
    size_t cap;
    struct wire_writer w;
    int rc;

    if (ps == NULL || ps->replaying)
        return;
    k = policy_key(vh->name, p);
    cap = strlen(p->pattern_source) + p->definition.len + 16;
    value = xmalloc(cap);
    w = wire_writer_init(value, cap);
    wire_put_u8(&w, (uint8_t)p->apply_to);
    wire_put_u64(&w, (uint64_t)p->priority);
    wire_put_longstr(&w, wire_cstr(p->pattern_source));
    wire_put_bytes(&w, p->definition.ptr, p->definition.len);
    rc = defs_log_put(ps->defs, DEFS_KIND_POLICY, (struct wire_bytes){k.data, k.len},
                      (struct wire_bytes){value, wire_writer_used(&w)});
    if (rc != 0)
        write_failed("policy", rc);
    free(value);
    free(k.data);
}

void persist_policy_delete(struct vhost *vh, const struct policy *p)
{
    struct persist *ps = vh->persist;
    struct key_buf k;
    int rc;

    if (ps == NULL || ps->replaying)
        return;
    k = policy_key(vh->name, p);
    rc = defs_log_delete(ps->defs, DEFS_KIND_POLICY, (struct wire_bytes){k.data, k.len});
    if (rc != 0)
        write_failed("policy", rc);
    free(k.data);
}

/* ---- What the store reports: durability (to durable_cb) and failure ---------------------- */

static void on_durable(void *ctx, uint64_t durable_seq)
{
    struct persist *p = ctx;

    p->durable_seq = durable_seq;
    if (p->durable_cb != NULL)
        p->durable_cb(p->durable_ctx, durable_seq);
}

static void on_store_failure(void *ctx, int err)
{
    struct persist *p = ctx;

    p->failed = true;
    log_error(NULL,
              "the message store failed (%s): persistent messages are refused until it can "
              "write again",
              strerror(err));
    if (p->failure_cb != NULL)
        p->failure_cb(p->durable_ctx);
}

int persist_resume(struct persist *p)
{
    int rc;

    if (p == NULL || !p->failed)
        return 0;
    if ((rc = store_resume(p->store)) != 0)
        return rc;
    p->failed = false;
    log_info(NULL, "the message store writes again: persistent messages are accepted");
    return 0;
}

/* ---- Messages --------------------------------------------------------------------------- */

bool persist_tracks(const struct queue *q, const struct message *m)
{
    return m->stored && q->store_id != 0 && q->vhost->persist != NULL;
}

uint64_t persist_publish(struct vhost *vh, struct message *m, struct queue *const *queues,
                         size_t n)
{
    struct persist *p = vh->persist;
    uint32_t small[16], *ids = small;
    struct store_msg sm;
    size_t count = 0;
    uint64_t seq;

    if (p == NULL || p->failed || m->stored || !(m->props.flags & WIRE_PROP_DELIVERY_MODE) ||
        m->props.delivery_mode != 2)
        return 0;
    if (n > ARRAY_LEN(small))
        ids = xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        if (queue_takes_store_messages(queues[i]) && !queues[i]->deleted)
            ids[count++] = queues[i]->store_id;
    seq = 0;
    if (count > 0) {
        int64_t msg_ttl;
        uint64_t wall = now_wall_ms();
        sm = (struct store_msg){.queue_ids = ids,
                                .published_ms = wall,
                                .expires_ms = message_expiration_ms(m, &msg_ttl)
                                                  ? wall + (uint64_t)msg_ttl
                                                  : 0,
                                .queue_count = (uint32_t)count,
                                .exchange = m->exchange,
                                .routing_key = m->routing_key,
                                .header = m->header,
                                .body = {.ptr = m->body, .len = m->body_size}};
        seq = store_append_message(p->store, &sm, &m->loc);
        m->stored = seq != 0;
    }
    if (ids != small)
        free(ids);
    return seq;
}

void persist_left(struct queue *q, struct message *m)
{
    if (persist_tracks(q, m))
        store_ack(q->vhost->persist->store, q->store_id, m->loc);
}

void persist_returned(struct queue *q, struct message *m, uint32_t deliveries)
{
    if (persist_tracks(q, m))
        store_requeue(q->vhost->persist->store, q->store_id, m->loc, deliveries);
}

void persist_delivered(struct queue *q, struct message *m)
{
    if (persist_tracks(q, m))
        store_delivered(q->vhost->persist->store, q->store_id, m->loc);
}

void persist_released(struct queue *q, struct message *m)
{
    if (persist_tracks(q, m))
        store_release(q->vhost->persist->store, m->loc);
}

void persist_left_loc(struct queue *q, struct store_loc loc)
{
    if (q->store_id != 0 && q->vhost->persist != NULL)
        store_ack(q->vhost->persist->store, q->store_id, loc);
}

void persist_released_loc(struct queue *q, struct store_loc loc)
{
    if (q->store_id != 0 && q->vhost->persist != NULL)
        store_release(q->vhost->persist->store, loc);
}

struct message *persist_load(struct vhost *vh, struct store_loc loc)
{
    struct persist *p = vh->persist;
    struct store_msg sm;
    struct message *m;

    if (p == NULL)
        return NULL;
    if (loc.size > p->read_buf_size) {
        p->read_buf_size = loc.size;
        p->read_buf = xrealloc(p->read_buf, p->read_buf_size);
    }
    if (store_read(p->store, loc, p->read_buf, p->read_buf_size, &sm) != 0)
        return NULL;
    m = message_new(sm.exchange, sm.routing_key, sm.header, sm.body.len);
    message_append_body(m, sm.body);
    m->loc = loc;
    m->stored = true;
    return m;
}

/* ---- Open and close --------------------------------------------------------------------- */

struct persist *persist_open(struct ev_loop *loop, const char *dir, uint32_t sync_interval_ms,
                             char *err, size_t err_size)
{
    struct persist *p = xcalloc(1, sizeof *p);
    struct store_options opts = {.sync_interval_ms = sync_interval_ms};
    char path[600];

    p->next_queue_id = 1;
    p->store = store_open(loop, dir, &opts, err, err_size);
    if (p->store == NULL) {
        free(p);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/defs.log", dir);
    p->defs = defs_log_open(path, NULL, err, err_size);
    if (p->defs == NULL) {
        store_close(p->store);
        free(p);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/spill", dir);
    p->spill_dir = xstrdup(path);
    p->dir = xstrdup(dir);
    spill_clear_dir(p->spill_dir);
    p->streams = stream_sync_start(loop, p);
    return p;
}

void persist_attach(struct persist *p, struct vhost *vh, uint32_t memory_window,
                    struct queue_budget *budget)
{
    if (p == NULL)
        return;
    vh->persist = p;
    vh->spill_dir = p->spill_dir;
    vh->memory_window = memory_window;
    vh->budget = budget;
}

/* The user database is small and changes rarely: it is kept as one entry, RabbitMQ's
 * definitions JSON of its users, vhosts and permissions, rewritten on every change. */
static const struct wire_bytes auth_key = {.ptr = (const uint8_t *)"auth", .len = 4};

int persist_auth_load(struct persist *p, struct auth_db *db, char *err, size_t err_size)
{
    struct wire_bytes value;

    if (p == NULL || !defs_log_get(p->defs, DEFS_KIND_USER, auth_key, &value))
        return 0;
    return definitions_recover(db, (const char *)value.ptr, value.len, err, err_size);
}

void persist_auth_save(struct persist *p, const struct auth_db *db)
{
    char *text;
    int rc;

    if (p == NULL)
        return;
    text = definitions_export(db, NULL);
    rc = defs_log_put(p->defs, DEFS_KIND_USER, auth_key,
                      (struct wire_bytes){.ptr = (const uint8_t *)text, .len = strlen(text)});
    if (rc != 0)
        write_failed("users", rc);
    free(text);
}

void persist_start(struct persist *p)
{
    if (p == NULL)
        return;
    store_on_durable(p->store, on_durable, p);
    store_on_failure(p->store, on_store_failure, p);
}

void persist_close(struct persist *p, struct hmap *vhosts)
{
    void *v;

    if (p == NULL)
        return;
    for (size_t i = 0; hmap_next(vhosts, &i, &v);) {
        ((struct vhost *)v)->persist = NULL;
        ((struct vhost *)v)->spill_dir = NULL;
    }
    stream_detach_all(vhosts);
    stream_sync_free(p->streams);
    store_close(p->store);
    defs_log_close(p->defs);
    free(p->read_buf);
    free(p->spill_dir);
    free(p->dir);
    free(p);
}
