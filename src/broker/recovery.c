/* Recovery at start: what the data directory holds comes back into the broker. The
 * definitions log is replayed into the vhosts (durable exchanges, queues, bindings and
 * policies are created again, in that order of the log), then the store hands back every
 * message reference and each queue gets its messages, in order, with their delivery counts.
 * This is the one part of persistence that calls up into the vhosts; what is written while
 * the broker runs is in persist.c. */
#include "src/broker/recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/registry.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"
#include "src/store/defs_log.h"
#include "src/store/store.h"

/* ---- Replay ---------------------------------------------------------------------------- */

struct replay {
    struct hmap *vhosts; /* name -> struct vhost */
    struct persist *p;
    int errors;
};

/* Splits the first 0-terminated part off b. */
static bool take_part(struct wire_bytes *b, struct wire_bytes *part)
{
    const uint8_t *nul = b->len ? memchr(b->ptr, 0, b->len) : NULL;

    if (nul == NULL)
        return false;
    *part = (struct wire_bytes){.ptr = b->ptr, .len = (size_t)(nul - b->ptr)};
    b->ptr = nul + 1;
    b->len -= part->len + 1;
    return true;
}

static struct vhost *replay_vhost(struct replay *r, struct wire_bytes name)
{
    struct vhost *vh = hmap_get(r->vhosts, name);

    if (vh == NULL)
        log_warn(NULL, "definitions name vhost '%.*s', which does not exist: skipped",
                 (int)name.len, (const char *)name.ptr);
    return vh;
}

static void replay_exchange(struct replay *r, struct wire_bytes key, struct wire_bytes value)
{
    struct wire_reader rd = wire_reader_init(value.ptr, value.len);
    struct wire_bytes vname, type_name, args;
    const struct exchange_type *type;
    struct vhost *vh;
    uint8_t flags;

    if (!take_part(&key, &vname) || !wire_shortstr(&rd, &type_name) || !wire_u8(&rd, &flags) ||
        !wire_bytes(&rd, wire_left(&rd), &args) || !wire_table_check(args)) {
        r->errors++;
        return;
    }
    if ((vh = replay_vhost(r, vname)) == NULL || vhost_exchange_find(vh, key) != NULL)
        return;
    if ((type = exchange_type_find(type_name)) == NULL) {
        log_error(NULL, "exchange '%.*s' has unknown type '%.*s': not recovered", (int)key.len,
                  (const char *)key.ptr, (int)type_name.len, (const char *)type_name.ptr);
        r->errors++;
        return;
    }
    vhost_exchange_add(vh, exchange_new(vh, key, type, true, flags & DEF_AUTO_DELETE,
                                        flags & DEF_INTERNAL, args));
}

static void replay_queue(struct replay *r, struct wire_bytes key, struct wire_bytes value)
{
    struct wire_reader rd = wire_reader_init(value.ptr, value.len);
    struct wire_bytes vname, args;
    struct queue_args qa;
    struct vhost *vh;
    struct queue *q;
    uint32_t id;
    uint8_t flags;
    char err[400];

    if (!take_part(&key, &vname) || !wire_u32(&rd, &id) || !wire_u8(&rd, &flags) ||
        !wire_bytes(&rd, wire_left(&rd), &args) || !wire_table_check(args)) {
        r->errors++;
        return;
    }
    if ((vh = replay_vhost(r, vname)) == NULL || vhost_queue_find(vh, key) != NULL)
        return;
    if (queue_args_parse(args, key, vh->name, vh->default_delivery_limit, &qa, err, sizeof err) !=
        0) {
        log_error(NULL, "queue '%.*s' not recovered: %s", (int)key.len, (const char *)key.ptr,
                  err);
        r->errors++;
        return;
    }
    q = queue_new(vh, key, true, false, flags & DEF_AUTO_DELETE, args);
    q->store_id = id;
    if (id >= r->p->next_queue_id)
        r->p->next_queue_id = id + 1;
    vhost_queue_add(vh, q);
}

static void replay_binding(struct replay *r, struct wire_bytes key)
{
    uint16_t code;
    struct wire_bytes vname, source, dname, rk;
    struct exchange *src;
    struct vhost *vh;
    void *dest;
    char err[256];
    uint8_t kind;

    if (!take_part(&key, &vname) || !take_part(&key, &source) || key.len < 1) {
        r->errors++;
        return;
    }
    kind = key.ptr[0];
    key.ptr++;
    key.len--;
    if (!take_part(&key, &dname) || !take_part(&key, &rk) || !wire_table_check(key)) {
        r->errors++;
        return;
    }
    if ((vh = replay_vhost(r, vname)) == NULL || (src = vhost_exchange_find(vh, source)) == NULL)
        return;
    dest = kind == 'q' ? (void *)vhost_queue_find(vh, dname) : (void *)vhost_exchange_find(vh, dname);
    if (dest == NULL)
        return;
    if (exchange_bind(src, dest, rk, key, &code, err, sizeof err) == NULL)
        log_warn(NULL, "binding from '%.*s' not recovered: %s", (int)source.len,
                 (const char *)source.ptr, err);
}

static void replay_policy(struct replay *r, struct wire_bytes key, struct wire_bytes value)
{
    static const char *const apply_to[] = {"all", "queues", "exchanges"};
    struct wire_reader rd = wire_reader_init(value.ptr, value.len);
    struct wire_bytes vname, name, pattern, definition;
    struct vhost *vh;
    uint64_t priority;
    uint8_t to;
    char *name_s, *pattern_s, err[300];

    if (!take_part(&key, &vname) || !take_part(&key, &name) || key.len != 1 ||
        !wire_u8(&rd, &to) || to > 2 || !wire_u64(&rd, &priority) ||
        !wire_longstr(&rd, &pattern) || !wire_bytes(&rd, wire_left(&rd), &definition)) {
        r->errors++;
        return;
    }
    if ((vh = replay_vhost(r, vname)) == NULL)
        return;
    name_s = xstrndup_bytes(name);
    pattern_s = xstrndup_bytes(pattern);
    if (policy_set(vh, name_s, pattern_s, apply_to[to], (int64_t)priority,
                   (struct wire_table){.raw = definition}, key.ptr[0] == 'o', err, sizeof err) != 0) {
        log_error(NULL, "policy '%s' not recovered: %s", name_s, err);
        r->errors++;
    }
    free(name_s);
    free(pattern_s);
}

static void replay_entry(void *ctx, uint8_t kind, struct wire_bytes key, struct wire_bytes value)
{
    struct replay *r = ctx;

    switch (kind) {
    case DEFS_KIND_EXCHANGE:
        replay_exchange(r, key, value);
        break;
    case DEFS_KIND_QUEUE:
        replay_queue(r, key, value);
        break;
    case DEFS_KIND_BINDING:
        replay_binding(r, key);
        break;
    case DEFS_KIND_POLICY:
        replay_policy(r, key, value);
        break;
    default:
        break; /* DEFS_KIND_USER, the user database: persist_auth_load() reads it */
    }
}

/* ---- Recovery of messages --------------------------------------------------------------- */

struct recovery {
    struct hmap *vhosts; /* name -> struct vhost */
    struct persist *p;
    struct hmap by_id; /* store id (4 bytes) -> queue */
    uint8_t *buf;
    size_t buf_size;
    struct message *last; /* the message of the previous reference, if it had the same loc */
    struct store_loc last_loc;
    uint32_t *gone;       /* ids of queues no longer defined */
    size_t gone_len, gone_cap;
    uint64_t messages, refs;
};

static void index_queues(struct recovery *rc)
{
    void *vh_v, *q_v;

    for (size_t i = 0; hmap_next(rc->vhosts, &i, &vh_v);) {
        struct vhost *vh = vh_v;
        for (size_t j = 0; hmap_next(&vh->queues, &j, &q_v);) {
            struct queue *q = q_v;
            if (q->store_id != 0)
                hmap_put(&rc->by_id, (struct wire_bytes){(const uint8_t *)&q->store_id, 4}, q);
        }
    }
}

static void recover_ref(void *ctx, const struct store_recovered *r)
{
    struct recovery *rc = ctx;
    struct queue *q = hmap_get(&rc->by_id, (struct wire_bytes){(const uint8_t *)&r->queue_id, 4});
    struct store_msg sm;
    struct message *m;

    if (q == NULL) {
        store_release(rc->p->store, r->loc);
        for (size_t i = 0; i < rc->gone_len; i++)
            if (rc->gone[i] == r->queue_id)
                return;
        if (rc->gone_len == rc->gone_cap) {
            rc->gone_cap = rc->gone_cap ? rc->gone_cap * 2 : 8;
            rc->gone = xrealloc(rc->gone, rc->gone_cap * sizeof *rc->gone);
        }
        rc->gone[rc->gone_len++] = r->queue_id;
        return;
    }
    rc->refs++;
    if (queue_spills(q)) {
        /* Beyond the memory window: keep the location only, read it when its turn comes. */
        queue_restore_loc(q, r);
        return;
    }
    if (rc->last != NULL && memcmp(&rc->last_loc, &r->loc, sizeof r->loc) == 0) {
        queue_restore(q, rc->last, r);
        return;
    }
    if (r->loc.size > rc->buf_size) {
        rc->buf_size = r->loc.size;
        rc->buf = xrealloc(rc->buf, rc->buf_size);
    }
    if (store_read(rc->p->store, r->loc, rc->buf, rc->buf_size, &sm) != 0) {
        store_release(rc->p->store, r->loc);
        return;
    }
    m = message_new(sm.exchange, sm.routing_key, sm.header, sm.body.len);
    message_append_body(m, sm.body);
    m->loc = r->loc;
    m->stored = true;
    message_unref(rc->last);
    rc->last = m;
    rc->last_loc = r->loc;
    rc->messages++;
    queue_restore(q, m, r);
}

/* ---- Start ----------------------------------------------------------------------------- */

int recovery_run(struct persist *p, struct hmap *vhosts, char *err, size_t err_size)
{
    struct replay r = {.vhosts = vhosts, .p = p};
    struct recovery rc = {.vhosts = vhosts, .p = p};
    int rcode;

    if (p == NULL)
        return 0;
    p->replaying = true;
    defs_log_foreach(p->defs, replay_entry, &r);
    p->replaying = false;
    if (r.errors > 0)
        log_error(NULL, "%d definitions could not be recovered", r.errors);

    hmap_init(&rc.by_id);
    index_queues(&rc);
    rcode = store_recover(p->store, recover_ref, &rc);
    message_unref(rc.last);
    free(rc.buf);
    hmap_free(&rc.by_id);
    for (size_t i = 0; i < rc.gone_len; i++)
        store_queue_deleted(p->store, rc.gone[i]);
    free(rc.gone);
    if (rcode != 0) {
        snprintf(err, err_size, "cannot recover the messages in %s: %s", p->dir, strerror(-rcode));
        return -1;
    }
    persist_start(p);
    log_info(NULL,
             "data directory %s: %zu definitions, %llu messages (%llu queue references) "
             "recovered",
             p->dir, defs_log_count(p->defs), (unsigned long long)rc.messages,
             (unsigned long long)rc.refs);
    return 0;
}
