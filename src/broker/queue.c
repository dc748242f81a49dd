#include "src/broker/queue.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "exchanges/erl_term.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/deadletter.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/policy.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"

/* ---- Arguments ------------------------------------------------------------------------- */

/* RabbitMQ words each argument error as "invalid arg 'K' for queue 'Q' in vhost 'V': REASON",
 * REASON being the Erlang term its validator returned, printed with ~p: an atom
 * (invalid_overflow), a tuple ({value_negative,-1}) or a string in double quotes. */
struct arg_check {
    const char *name;
    struct wire_bytes qname, vname;
    char *err;
    size_t err_size;
};

static int arg_error(const struct arg_check *a, const char *reason)
{
    snprintf(a->err, a->err_size, "invalid arg '%s' for queue '%.*s' in vhost '%.*s': %s",
             a->name, (int)a->qname.len, (const char *)a->qname.ptr, (int)a->vname.len,
             (const char *)a->vname.ptr, reason);
    return -1;
}

static int type_error(const struct arg_check *a, const struct wire_field *f)
{
    char reason[96];

    snprintf(reason, sizeof reason, "{unacceptable_type,%s}", erl_term_type_name(f->type));
    return arg_error(a, reason);
}

/* An integer argument: min 0 refuses negatives, min 1 also zero. */
static int arg_int(const struct arg_check *a, const struct wire_field *f, int64_t min,
                   int64_t *out)
{
    char reason[96];

    if (!wire_field_int(f, out)) {
        snprintf(reason, sizeof reason, "\"expected integer, got %s\"",
                 erl_term_type_name(f->type));
        return arg_error(a, reason);
    }
    if (*out < 0 || *out < min) {
        snprintf(reason, sizeof reason, "{value_%s,%" PRId64 "}", *out < 0 ? "negative" : "zero",
                 *out);
        return arg_error(a, reason);
    }
    return 0;
}

/* A string argument that must be one of values (NULL-terminated); how RabbitMQ refuses
 * another depends on the argument, so the caller passes the whole reason. */
static bool one_of(struct wire_bytes v, const char *const *values)
{
    for (; *values != NULL; values++)
        if (wire_bytes_eq_cstr(v, *values))
            return true;
    return false;
}

int queue_args_parse(struct wire_bytes args, struct wire_bytes queue_name,
                     struct wire_bytes vhost_name, int64_t default_delivery_limit,
                     struct queue_args *out, char *err, size_t err_size)
{
    static const char *const modes[] = {"default", "lazy", NULL};
    /* Quorum and stream declarations get a classic queue with the same semantics for the
     * arguments Warren knows. */
    static const char *const types[] = {"classic", "quorum", "stream", NULL};
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;
    struct arg_check a = {.qname = queue_name, .vname = vhost_name, .err = err,
                          .err_size = err_size};
    char reason[320];

    *out = (struct queue_args){
        .message_ttl_ms = -1,
        .expires_ms = -1,
        .max_length = -1,
        .max_length_bytes = -1,
        .delivery_limit = default_delivery_limit > 0 ? default_delivery_limit : -1,
        .overflow = OVERFLOW_DROP_HEAD,
        .max_age_ms = -1,
        .stream_segment_bytes = -1,
    };
    if (wire_table_find((struct wire_table){.raw = args}, "x-queue-type", &v) && v.type == 'S' &&
        wire_bytes_eq_cstr(v.v.bytes, "stream")) {
        out->stream = true;
        out->delivery_limit = -1;
    }
    wire_table_iter_init(&it, (struct wire_table){.raw = args});
    while (wire_table_next(&it, &key, &v)) {
        int64_t n;
        char name[64];

        snprintf(name, sizeof name, "%.*s", (int)key.len, (const char *)key.ptr);
        a.name = name;
        if (out->stream && stream_refuses_arg(name)) {
            snprintf(err, err_size,
                     "invalid arg '%s' for queue '%.*s' in vhost '%.*s' of queue type "
                     "rabbit_stream_queue",
                     name, (int)queue_name.len, (const char *)queue_name.ptr,
                     (int)vhost_name.len, (const char *)vhost_name.ptr);
            return -1;
        }
        if (out->stream && strcmp(name, "x-max-age") == 0) {
            if (v.type != 'S')
                return type_error(&a, &v);
            if ((out->max_age_ms = stream_parse_max_age(v.v.bytes)) < 0)
                return arg_error(&a, "invalid_max_age");
        } else if (out->stream && strcmp(name, "x-stream-max-segment-size-bytes") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            out->stream_segment_bytes = n;
        } else if (strcmp(name, "x-message-ttl") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            out->message_ttl_ms = n;
        } else if (strcmp(name, "x-expires") == 0) {
            if (arg_int(&a, &v, 1, &n) != 0)
                return -1;
            out->expires_ms = n;
        } else if (strcmp(name, "x-max-length") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            out->max_length = n;
        } else if (strcmp(name, "x-max-length-bytes") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            out->max_length_bytes = n;
        } else if (strcmp(name, "x-delivery-limit") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            out->delivery_limit = n;
        } else if (strcmp(name, "x-max-priority") == 0) {
            if (arg_int(&a, &v, 0, &n) != 0)
                return -1;
            if (n > 255) {
                snprintf(reason, sizeof reason, "{max_value_exceeded,%" PRId64 "}", n);
                return arg_error(&a, reason);
            }
            out->max_priority = (uint8_t)n;
        } else if (strcmp(name, "x-overflow") == 0) {
            if (v.type != 'S')
                return type_error(&a, &v);
            if (wire_bytes_eq_cstr(v.v.bytes, "drop-head"))
                out->overflow = OVERFLOW_DROP_HEAD;
            else if (wire_bytes_eq_cstr(v.v.bytes, "reject-publish"))
                out->overflow = OVERFLOW_REJECT_PUBLISH;
            else if (wire_bytes_eq_cstr(v.v.bytes, "reject-publish-dlx"))
                out->overflow = OVERFLOW_REJECT_PUBLISH_DLX;
            else
                return arg_error(&a, "invalid_overflow");
        } else if (strcmp(name, "x-dead-letter-exchange") == 0) {
            if (v.type != 'S') {
                /* Refused before validation, by the code that resolves the exchange name. */
                snprintf(err, err_size,
                         "invalid type '%s' for arg 'x-dead-letter-exchange' in queue '%.*s' in "
                         "vhost '%.*s'",
                         erl_term_type_name(v.type), (int)queue_name.len,
                         (const char *)queue_name.ptr, (int)vhost_name.len,
                         (const char *)vhost_name.ptr);
                return -1;
            }
            out->dlx = v.v.bytes;
            out->has_dlx = true;
        } else if (strcmp(name, "x-dead-letter-routing-key") == 0) {
            if (v.type != 'S')
                return type_error(&a, &v);
            out->dlrk = v.v.bytes;
            out->has_dlrk = true;
        } else if (strcmp(name, "x-single-active-consumer") == 0) {
            if (v.type != 't')
                return type_error(&a, &v);
            out->single_active = v.v.boolean;
        } else if (strcmp(name, "x-queue-mode") == 0 || strcmp(name, "x-queue-type") == 0) {
            bool mode = name[8] == 'm';
            if (v.type != 'S')
                return type_error(&a, &v);
            if (!one_of(v.v.bytes, mode ? modes : types)) {
                snprintf(reason, sizeof reason, "\"unsupported queue %s '%.*s'\"",
                         mode ? "mode" : "type", (int)(v.v.bytes.len > 200 ? 200 : v.v.bytes.len),
                         (const char *)v.v.bytes.ptr);
                return arg_error(&a, reason);
            }
        }
        /* Other arguments are kept and ignored, as RabbitMQ does with unknown ones. */
    }
    if (out->has_dlrk && !out->has_dlx) {
        a.name = "x-dead-letter-routing-key";
        return arg_error(&a, "routing_key_but_no_dlx_defined");
    }
    return 0;
}

/* The arguments RabbitMQ compares when a queue is declared again (its declare_args), and
 * Warren's x-delivery-limit. */
static const char *const compared_args[] = {
    "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
    "x-max-priority", "x-overflow", "x-queue-mode", "x-single-active-consumer", "x-queue-type",
    "x-delivery-limit",
};

/* RabbitMQ's type classes: integers of any width are one class, floats another. */
static char type_class(uint8_t t)
{
    switch (t) {
    case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l': case 'L':
        return 'i';
    case 'f': case 'd':
        return 'f';
    default:
        return (char)t;
    }
}

static bool same_value(const struct wire_field *a, const struct wire_field *b)
{
    int64_t x, y;

    if (type_class(a->type) != type_class(b->type))
        return false;
    if (type_class(a->type) == 'i')
        return wire_field_int(a, &x) && wire_field_int(b, &y) && x == y;
    return erl_term_equal(a, b);
}

/* A value as RabbitMQ quotes it in these texts: a binary as its text, anything else as ~p. */
static void quote_value(const struct wire_field *f, char *out, size_t out_size)
{
    struct erl_out o = {.buf = out, .size = out_size};

    if (f->type == 'S' || f->type == 'x') {
        snprintf(out, out_size, "%.*s", (int)(f->v.bytes.len > 200 ? 200 : f->v.bytes.len),
                 (const char *)f->v.bytes.ptr);
        return;
    }
    if (f->type == 't') {
        snprintf(out, out_size, "%s", f->v.boolean ? "true" : "false");
        return;
    }
    erl_out_term(&o, f);
}

/* And those a stream compares besides. */
static const char *const compared_stream_args[] = {"x-max-age", "x-stream-max-segment-size-bytes"};

int queue_args_equivalent(struct wire_bytes current, struct wire_bytes received,
                          struct wire_bytes queue_name, struct wire_bytes vhost_name, char *err,
                          size_t err_size)
{
    struct wire_table cur = {.raw = current}, got = {.raw = received};
    struct wire_field type;
    bool stream = wire_table_find(cur, "x-queue-type", &type) && type.type == 'S' &&
                  wire_bytes_eq_cstr(type.v.bytes, "stream");
    size_t n = ARRAY_LEN(compared_args) + (stream ? ARRAY_LEN(compared_stream_args) : 0);

    for (size_t i = 0; i < n; i++) {
        const char *key = i < ARRAY_LEN(compared_args)
                              ? compared_args[i]
                              : compared_stream_args[i - ARRAY_LEN(compared_args)];
        struct wire_field a, b;
        bool has_cur = wire_table_find(cur, key, &a), has_got = wire_table_find(got, key, &b);
        char want[256], have[256], what_got[320], what_have[320];

        if (!has_cur && !has_got)
            continue;
        if (has_cur && has_got && same_value(&a, &b))
            continue;
        if (has_got) {
            quote_value(&b, want, sizeof want);
            if (has_cur)
                snprintf(what_got, sizeof what_got, "'%s'", want);
            else
                snprintf(what_got, sizeof what_got, "the value '%s' of type '%s'", want,
                         erl_term_type_name(b.type));
        } else {
            snprintf(what_got, sizeof what_got, "none");
        }
        if (has_cur) {
            quote_value(&a, have, sizeof have);
            if (has_got)
                snprintf(what_have, sizeof what_have, "'%s'", have);
            else
                snprintf(what_have, sizeof what_have, "the value '%s' of type '%s'", have,
                         erl_term_type_name(a.type));
        } else {
            snprintf(what_have, sizeof what_have, "none");
        }
        snprintf(err, err_size,
                 "inequivalent arg '%s' for queue '%.*s' in vhost '%.*s': received %s but "
                 "current is %s",
                 key, (int)queue_name.len, (const char *)queue_name.ptr, (int)vhost_name.len,
                 (const char *)vhost_name.ptr, what_got, what_have);
        return -1;
    }
    return 0;
}

/* ---- Rings ----------------------------------------------------------------------------- */

static struct qentry *ring_at(const struct qring *r, size_t i)
{
    return &r->ring[(r->head + i) & (r->cap - 1)];
}

/* Makes room for n more entries. */
static void ring_reserve(struct qring *r, size_t n)
{
    size_t cap = r->cap ? r->cap : 16;
    struct qentry *ring;

    if (r->len + n <= r->cap)
        return;
    while (cap < r->len + n)
        cap *= 2;
    ring = xmalloc(cap * sizeof *ring);
    for (size_t i = 0; i < r->len; i++)
        ring[i] = *ring_at(r, i);
    free(r->ring);
    r->ring = ring;
    r->cap = cap;
    r->head = 0;
}

static void ring_push_back(struct qring *r, const struct qentry *e)
{
    ring_reserve(r, 1);
    *ring_at(r, r->len++) = *e;
}

/* Index of the first entry whose seq is not below seq (the ring is in seq order). */
static size_t ring_lower_bound(const struct qring *r, uint64_t seq)
{
    size_t lo = 0, hi = r->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_at(r, mid)->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Merges the n entries of e, in seq order, into the ring in one pass. Only the ring's entries
 * that interleave with them move: those before e's last towards the head, or those after
 * e's first towards the tail, whichever are fewer. Requeued messages are usually older than
 * everything ready, so usually nothing moves. O(n + moved + log len). */
static void ring_merge(struct qring *r, const struct qentry *e, size_t n)
{
    size_t old_len = r->len, before_last, after_first;

    ring_reserve(r, n);
    before_last = ring_lower_bound(r, e[n - 1].seq);
    after_first = old_len - ring_lower_bound(r, e[0].seq);
    r->len += n;
    if (before_last <= after_first) {
        /* The head moves back by n: old entry j is now at n + j. Filling the gap from the
         * front, the write index (in - n + taken) never passes the next entry to read. */
        size_t out = 0, in = n, taken = 0;
        r->head = (r->head + r->cap - n) & (r->cap - 1);
        while (taken < n) {
            if (in < n + before_last && ring_at(r, in)->seq < e[taken].seq)
                *ring_at(r, out++) = *ring_at(r, in++);
            else
                *ring_at(r, out++) = e[taken++];
        }
    } else {
        /* The tail moves on by n, and the gap fills from the back, symmetrically. */
        size_t out = old_len + n, in = old_len, left = n;
        while (left > 0) {
            if (in > old_len - after_first && ring_at(r, in - 1)->seq > e[left - 1].seq)
                *ring_at(r, --out) = *ring_at(r, --in);
            else
                *ring_at(r, --out) = e[--left];
        }
    }
}

static void ring_pop_front(struct qring *r, struct qentry *out)
{
    *out = *ring_at(r, 0);
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
}

static struct qring *level_of(struct queue *q, const struct message *m)
{
    uint8_t p = (m->props.flags & WIRE_PROP_PRIORITY) ? m->props.priority : 0;

    /* Priorities above the queue's maximum count as the maximum, as in RabbitMQ. */
    return &q->levels[p < q->level_count ? p : q->level_count - 1];
}

static struct qring *top_level(struct queue *q)
{
    for (size_t i = q->level_count; i-- > 0;) {
        if (q->levels[i].len > 0)
            return &q->levels[i];
    }
    return NULL;
}

/* The lowest non-empty level: where drop-head takes from. */
static struct qring *bottom_level(struct queue *q)
{
    for (size_t i = 0; i < q->level_count; i++) {
        if (q->levels[i].len > 0)
            return &q->levels[i];
    }
    return NULL;
}

/* ---- Life ------------------------------------------------------------------------------ */

static void on_ttl_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void enforce_limits(struct queue *q);
static void on_expires_timer(struct ev_loop *loop, ev_timer *w, int revents);

struct queue *queue_new(struct vhost *vh, struct wire_bytes name, bool durable, bool exclusive,
                        bool auto_delete, struct wire_bytes arguments)
{
    struct queue *q = xcalloc(1, sizeof *q);
    char err[256];
    int rc;

    q->kind = DEST_QUEUE;
    q->name = bytes_dup(name);
    q->vhost = vh;
    q->durable = durable;
    q->exclusive = exclusive;
    q->auto_delete = auto_delete;
    q->arguments = bytes_dup(arguments);
    q->refs = 1;
    q->effective = policy_queue_arguments(vh, q->name, q->arguments);
    rc = queue_args_parse(q->effective, q->name, vh->name, vh->default_delivery_limit, &q->args,
                          err, sizeof err);
    if (rc != 0) {
        /* The caller checked the declared arguments; a policy made them invalid. */
        log_warn(NULL, "queue '%.*s': policy ignored: %s", (int)name.len, (const char *)name.ptr,
                 err);
        bytes_free(&q->effective);
        q->effective = bytes_dup(q->arguments);
        rc = queue_args_parse(q->effective, q->name, vh->name, vh->default_delivery_limit,
                              &q->args, err, sizeof err);
    }
    assert(rc == 0);
    q->level_count = (uint16_t)(q->args.max_priority + 1);
    q->levels = xcalloc(q->level_count, sizeof *q->levels);
    ev_init(&q->ttl_timer, on_ttl_timer);
    ev_init(&q->expires_timer, on_expires_timer);
    {
        static uint64_t next_uid;
        spill_init(&q->spill, vh->spill_dir ? vh->spill_dir : ".", ++next_uid);
        q->can_spill = vh->spill_dir != NULL && q->level_count == 1;
    }
    q->last_used_ms = now_ms();
    if (q->args.expires_ms > 0) {
        ev_timer_set(&q->expires_timer, (double)q->args.expires_ms / 1000.0, 0.);
        ev_timer_start(vh->loop, &q->expires_timer);
    }
    if (q->args.stream)
        stream_attach(q);
    return q;
}

void queue_ref(struct queue *q)
{
    q->refs++;
}

void queue_policies_changed(struct queue *q)
{
    struct wire_bytes effective = policy_queue_arguments(q->vhost, q->name, q->arguments);
    struct queue_args args;
    char err[400];
    bool had_expiry = q->args.expires_ms > 0;

    if (wire_bytes_eq(effective, q->effective) ||
        queue_args_parse(effective, q->name, q->vhost->name, q->vhost->default_delivery_limit,
                         &args, err, sizeof err) != 0) {
        bytes_free(&effective);
        return;
    }
    /* Priorities and the single active consumer are the queue's own, not a policy's. */
    args.max_priority = q->args.max_priority;
    args.single_active = q->args.single_active;
    bytes_free(&q->effective);
    q->effective = effective;
    q->args = args;
    if (q->stream != NULL) {
        stream_limits_changed(q);
        return;
    }
    if (q->args.expires_ms > 0 && !had_expiry) {
        ev_timer_set(&q->expires_timer, (double)q->args.expires_ms / 1000.0, 0.);
        ev_timer_start(q->vhost->loop, &q->expires_timer);
    } else if (q->args.expires_ms <= 0) {
        ev_timer_stop(q->vhost->loop, &q->expires_timer);
    }
    enforce_limits(q);
}

static void queue_free(struct queue *q)
{
    assert(q->len == 0 && q->consumer_count == 0);
    stream_detach(q, false);
    ev_timer_stop(q->vhost->loop, &q->ttl_timer);
    ev_timer_stop(q->vhost->loop, &q->expires_timer);
    for (size_t i = 0; i < q->level_count; i++)
        free(q->levels[i].ring);
    free(q->levels);
    spill_free(&q->spill);
    free(q->consumers);
    bytes_free(&q->name);
    bytes_free(&q->arguments);
    bytes_free(&q->effective);
    free(q);
}

void queue_unref(struct queue *q)
{
    if (q != NULL && --q->refs == 0)
        queue_free(q);
}

void queue_touch(struct queue *q)
{
    q->last_used_ms = now_ms();
}

/* ---- Expiry ---------------------------------------------------------------------------- */

static void arm_ttl_timer(struct queue *q, uint64_t now)
{
    ev_timer_stop(q->vhost->loop, &q->ttl_timer);
    if (q->next_expiry_ms == 0 || q->deleted)
        return;
    ev_timer_set(&q->ttl_timer,
                 q->next_expiry_ms > now ? (double)(q->next_expiry_ms - now) / 1000.0 : 0.,
                 0.);
    ev_timer_start(q->vhost->loop, &q->ttl_timer);
}

static bool entry_expired(const struct qentry *e, uint64_t now)
{
    return e->expires_at_ms != 0 && e->expires_at_ms <= now;
}

/* A ready message comes into memory, or leaves it: the queue's bytes and, for a queue that
 * can page, the broker-wide budget. */
static void charge_in(struct queue *q, const struct message *m)
{
    q->ready_bytes += message_bytes(m);
    if (q->can_spill && q->vhost->budget != NULL)
        q->vhost->budget->used += message_bytes(m) + QUEUE_ENTRY_CHARGE;
}

static void charge_out(struct queue *q, const struct message *m)
{
    q->ready_bytes -= message_bytes(m);
    if (q->can_spill && q->vhost->budget != NULL)
        q->vhost->budget->used -= message_bytes(m) + QUEUE_ENTRY_CHARGE;
}

/* True if the queue should keep no more in memory than it has: past its own window, or past
 * the minimum while the broker's queues together are over their budget. */
static bool memory_full(const struct queue *q)
{
    const struct queue_budget *b = q->vhost->budget;

    return q->len >= q->vhost->memory_window ||
           (b != NULL && b->limit != 0 && b->used >= b->limit && q->len >= QUEUE_MIN_WINDOW);
}

/* Removes every expired message, wherever it is in the queue (RabbitMQ only drops expired
 * messages when they reach the head; Warren does not let them sit there), dead-lettering
 * each with reason "expired", and sets the timer for the next one. */
static void expire_due(struct queue *q)
{
    uint64_t now, next = 0;

    /* Called for every message taken: a queue without TTLs must not read the clock. */
    if (q->next_expiry_ms == 0 || q->next_expiry_ms > (now = now_ms()))
        return;
    for (size_t l = 0; l < q->level_count; l++) {
        struct qring *r = &q->levels[l];
        size_t kept = 0;
        for (size_t i = 0; i < r->len; i++) {
            struct qentry e = *ring_at(r, i);
            if (entry_expired(&e, now)) {
                charge_out(q, e.msg);
                q->stats.expired++;
                deadletter(q, e.msg, DEAD_EXPIRED);
                continue;
            }
            if (e.expires_at_ms != 0 && (next == 0 || e.expires_at_ms < next))
                next = e.expires_at_ms;
            *ring_at(r, kept++) = e;
        }
        q->len -= r->len - kept;
        r->len = kept;
    }
    q->next_expiry_ms = next;
    arm_ttl_timer(q, now);
}

static void on_ttl_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct queue *q = container_of(w, struct queue, ttl_timer);

    uint64_t now = now_ms();

    (void)loop;
    (void)revents;
    /* libev times from the loop's cached clock, which may lag now_ms() (a timer armed before
     * the loop first ran, during recovery, say): a wake-up before the deadline sets the timer
     * again rather than leave the message to wait for the next event on this queue. */
    if (q->next_expiry_ms > now) {
        arm_ttl_timer(q, now);
        return;
    }
    expire_due(q);
}

static void on_expires_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct queue *q = container_of(w, struct queue, expires_timer);
    uint64_t idle = now_ms() - q->last_used_ms;

    (void)revents;
    if (q->consumer_count == 0 && idle >= (uint64_t)q->args.expires_ms) {
        log_info(NULL, "queue '%.*s' in vhost '%.*s' expired after %" PRId64 " ms unused",
                 (int)q->name.len, (const char *)q->name.ptr, (int)q->vhost->name.len,
                 (const char *)q->vhost->name.ptr, q->args.expires_ms);
        queue_delete(q);
        return;
    }
    /* In use, or used since the timer was set: look again when it could next expire. */
    if (q->consumer_count > 0 || idle >= (uint64_t)q->args.expires_ms)
        idle = 0;
    ev_timer_set(w, (double)((uint64_t)q->args.expires_ms - idle) / 1000.0, 0.);
    ev_timer_start(loop, w);
}

/* ---- Messages in and out --------------------------------------------------------------- */

static bool over_limit(const struct queue *q, size_t extra_msgs, uint64_t extra_bytes)
{
    return (q->args.max_length >= 0 &&
            queue_ready_count(q) + extra_msgs > (uint64_t)q->args.max_length) ||
           (q->args.max_length_bytes >= 0 &&
            q->ready_bytes + q->spill.bytes + extra_bytes > (uint64_t)q->args.max_length_bytes);
}

bool queue_spills(const struct queue *q)
{
    return q->can_spill && (q->spill.count > 0 || memory_full(q));
}

/* Moves records from the spill file back into memory, up to the window. Expired ones are
 * dead-lettered on the way. */
static void refill(struct queue *q)
{
    uint64_t now = 0;

    while (q->spill.count > 0 && !memory_full(q)) {
        struct spill_rec r;
        struct qentry e;

        if (spill_next(&q->spill, &r) <= 0)
            break;
        if (r.stored && (r.msg = persist_load(q->vhost, r.loc)) == NULL)
            continue; /* logged by the store; the reference is lost with the record */
        e = (struct qentry){.msg = r.msg, .seq = r.seq, .expires_at_ms = r.expires_at_ms,
                            .deliveries = r.deliveries, .redelivered = r.redelivered};
        if (e.expires_at_ms != 0) {
            if (now == 0)
                now = now_ms();
            if (entry_expired(&e, now)) {
                q->stats.expired++;
                deadletter(q, e.msg, DEAD_EXPIRED);
                continue;
            }
            if (q->next_expiry_ms == 0 || e.expires_at_ms < q->next_expiry_ms) {
                q->next_expiry_ms = e.expires_at_ms;
                arm_ttl_timer(q, now);
            }
        }
        ring_push_back(&q->levels[0], &e);
        q->len++;
        charge_in(q, e.msg);
    }
}

/* Appends the entry to the spill file instead of memory; false if that failed (the caller
 * keeps it in memory). Takes no reference: the message leaves memory. */
static bool spill_out(struct queue *q, const struct qentry *e, bool stored, struct store_loc loc)
{
    struct spill_rec r = {.seq = e->seq,
                          .expires_at_ms = e->expires_at_ms,
                          .deliveries = e->deliveries,
                          .redelivered = e->redelivered,
                          .stored = stored,
                          .loc = loc,
                          .msg = e->msg};

    return spill_append(&q->spill, &r, e->msg ? message_bytes(e->msg) : 0) == 0;
}

/* drop-head (and a limit that a policy lowered): the oldest ready messages make room,
 * dead-lettered with reason maxlen. */
static void enforce_limits(struct queue *q)
{
    while (queue_ready_count(q) > 0 && over_limit(q, 0, 0)) {
        struct qentry head;
        if (q->len == 0)
            refill(q);
        if (q->len == 0)
            break;
        ring_pop_front(bottom_level(q), &head);
        q->len--;
        charge_out(q, head.msg);
        deadletter(q, head.msg, DEAD_MAXLEN);
    }
}

bool queue_push(struct queue *q, struct message *m)
{
    struct qentry e = {.msg = m, .seq = q->next_seq++};
    int64_t ttl = q->args.message_ttl_ms, msg_ttl;
    uint64_t now = 0;

    if (q->deleted)
        return true;
    if ((q->args.overflow != OVERFLOW_DROP_HEAD) && over_limit(q, 1, message_bytes(m))) {
        /* reject-publish: the newest message is refused (the publisher gets a nack);
         * reject-publish-dlx dead-letters it as well. */
        if (q->args.overflow == OVERFLOW_REJECT_PUBLISH_DLX)
            deadletter(q, message_ref(m), DEAD_MAXLEN);
        else
            persist_left(q, m);
        return false;
    }
    if (message_expiration_ms(m, &msg_ttl) && (ttl < 0 || msg_ttl < ttl))
        ttl = msg_ttl;
    if (ttl >= 0) {
        now = now_ms();
        e.expires_at_ms = now + (uint64_t)ttl;
        if (e.expires_at_ms == 0)
            e.expires_at_ms = 1;
    }
    q->stats.published++;
    if (queue_spills(q) && spill_out(q, &e, persist_tracks(q, m), m->loc)) {
        /* Beyond the memory window: on disk. Consumers with credit would have emptied the
         * window first, so there is nobody to dispatch to. */
    } else {
        message_ref(m);
        ring_push_back(level_of(q, m), &e);
        q->len++;
        charge_in(q, m);
        queue_dispatch(q);
    }
    enforce_limits(q);
    /* A message still here with a TTL of 0 found no consumer waiting: it expires now. */
    if (e.expires_at_ms != 0 && q->len > 0) {
        if (q->next_expiry_ms == 0 || e.expires_at_ms < q->next_expiry_ms) {
            q->next_expiry_ms = e.expires_at_ms;
            if (ttl == 0)
                expire_due(q);
            else
                arm_ttl_timer(q, now);
        }
    }
    return true;
}

static int by_seq(const void *a, const void *b)
{
    const struct qentry *x = a, *y = b;

    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Merges entries into one ring, sorting them first unless they already are in seq order
 * (deliveries of one queue are, but for those that were redelivered). */
static void merge_sorted(struct qring *r, struct qentry *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (e[i].seq < e[i - 1].seq) {
            qsort(e, n, sizeof *e, by_seq);
            break;
        }
    }
    ring_merge(r, e, n);
}

static size_t level_index(struct queue *q, const struct message *m)
{
    return (size_t)(level_of(q, m) - q->levels);
}

static void merge_levels(struct queue *q, struct qentry *e, size_t kept);

void queue_requeue_many(struct queue *q, struct qentry *e, size_t n)
{
    size_t kept = 0;
    uint64_t now = 0, next_expiry = 0;

    if (q->deleted) {
        for (size_t i = 0; i < n; i++)
            message_unref(e[i].msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* A message that keeps coming back is parked, so a poison message cannot loop. */
        if (q->args.delivery_limit >= 0 && e[i].deliveries > (uint64_t)q->args.delivery_limit) {
            if (!q->args.has_dlx)
                log_warn(NULL,
                         "queue '%.*s': message returned %u times, over the delivery limit of "
                         "%" PRId64 ": dropped (no dead-letter exchange)",
                         (int)q->name.len, (const char *)q->name.ptr, e[i].deliveries,
                         q->args.delivery_limit);
            deadletter(q, e[i].msg, DEAD_DELIVERY_LIMIT);
            continue;
        }
        /* It keeps its deadline: past it, it expires rather than come back (with a TTL of
         * 0, at once). */
        if (e[i].expires_at_ms != 0) {
            if (now == 0)
                now = now_ms();
            if (entry_expired(&e[i], now)) {
                q->stats.expired++;
                deadletter(q, e[i].msg, DEAD_EXPIRED);
                continue;
            }
            if (next_expiry == 0 || e[i].expires_at_ms < next_expiry)
                next_expiry = e[i].expires_at_ms;
        }
        persist_returned(q, e[i].msg, e[i].deliveries);
        charge_in(q, e[i].msg);
        q->stats.redelivered++;
        e[kept] = e[i];
        e[kept].redelivered = true;
        kept++;
    }
    if (kept == 0)
        return;
    q->len += kept;
    merge_levels(q, e, kept);
    /* Back over x-max-length(-bytes): drop-head drops (dead-letters) from the head, where
     * the returned messages now are, as RabbitMQ's requeue does (maybe_drop_head); the
     * reject-publish modes only refuse new publishes. */
    if (q->args.overflow == OVERFLOW_DROP_HEAD)
        enforce_limits(q);
    if (next_expiry != 0 && (q->next_expiry_ms == 0 || next_expiry < q->next_expiry_ms)) {
        q->next_expiry_ms = next_expiry;
        arm_ttl_timer(q, now);
    }
}

/* Merges the kept entries of a requeue into their levels. */
static void merge_levels(struct queue *q, struct qentry *e, size_t kept)
{
    size_t level;
    bool one_level = true;

    level = level_index(q, e[0].msg);
    for (size_t i = 1; q->level_count > 1 && i < kept && one_level; i++)
        one_level = level_index(q, e[i].msg) == level;
    if (one_level) {
        merge_sorted(&q->levels[level], e, kept);
        return;
    }
    {
        /* Priorities: each level takes its own entries, split out in one counting pass. */
        size_t *start = xcalloc((size_t)q->level_count + 1, sizeof *start);
        struct qentry *split = xmalloc(kept * sizeof *split);
        for (size_t i = 0; i < kept; i++)
            start[level_index(q, e[i].msg) + 1]++;
        for (size_t l = 0; l < q->level_count; l++)
            start[l + 1] += start[l];
        for (size_t i = 0; i < kept; i++)
            split[start[level_index(q, e[i].msg)]++] = e[i];
        /* Each start[l] now ends level l's run. */
        for (size_t l = 0, from = 0; l < q->level_count; from = start[l++]) {
            if (start[l] > from)
                merge_sorted(&q->levels[l], split + from, start[l] - from);
        }
        free(split);
        free(start);
    }
}

void queue_requeue(struct queue *q, struct message *m, uint64_t seq, uint32_t deliveries,
                   uint64_t expires_at_ms)
{
    struct qentry e = {
        .msg = m, .seq = seq, .expires_at_ms = expires_at_ms, .deliveries = deliveries};

    queue_requeue_many(q, &e, 1);
}

/* The monotonic deadline of a recovered message, 0 for none. RabbitMQ keeps a message's
 * expiry as an absolute time in its queue index, so both the queue's x-message-ttl (counted
 * from publication) and the message's own expiration keep their schedule across a restart;
 * the store keeps the wall-clock publish time and deadline for that. A message stored without
 * them (a data directory of an older Warren) counts its TTL from the restart. m is NULL when
 * the message was not read (beyond the memory window): only the queue's TTL is known then. */
static uint64_t restored_deadline(const struct queue *q, const struct message *m,
                                  const struct store_recovered *r)
{
    int64_t ttl = q->args.message_ttl_ms, msg_ttl;
    uint64_t now = now_ms(), wall_now, deadline = 0;

    if (r->published_ms == 0) {
        if (m != NULL && message_expiration_ms(m, &msg_ttl) && (ttl < 0 || msg_ttl < ttl))
            ttl = msg_ttl;
        return ttl < 0 ? 0 : now + (uint64_t)ttl;
    }
    if (ttl >= 0)
        deadline = r->published_ms + (uint64_t)ttl;
    if (r->expires_ms != 0 && (deadline == 0 || r->expires_ms < deadline))
        deadline = r->expires_ms;
    if (deadline == 0)
        return 0;
    wall_now = now_wall_ms();
    /* Past its deadline (or the clock went back less than the TTL): expire at once. */
    return deadline <= wall_now ? (now != 0 ? now : 1) : now + (deadline - wall_now);
}

static void note_deadline(struct queue *q, uint64_t expires_at_ms)
{
    if (expires_at_ms != 0 && (q->next_expiry_ms == 0 || expires_at_ms < q->next_expiry_ms)) {
        q->next_expiry_ms = expires_at_ms;
        arm_ttl_timer(q, now_ms());
    }
}

void queue_restore_loc(struct queue *q, const struct store_recovered *r)
{
    struct qentry e = {.seq = q->next_seq++,
                       .deliveries = r->deliveries,
                       .redelivered = r->delivered || r->deliveries > 0,
                       .expires_at_ms = restored_deadline(q, NULL, r)};

    /* Its deadline is looked at when it comes back into memory (refill). */
    if (!spill_out(q, &e, true, r->loc))
        log_error(NULL, "queue '%.*s': a recovered message could not be spilled and is lost",
                  (int)q->name.len, (const char *)q->name.ptr);
}

void queue_restore(struct queue *q, struct message *m, const struct store_recovered *r)
{
    struct qentry e = {.msg = message_ref(m),
                       .seq = q->next_seq++,
                       .deliveries = r->deliveries,
                       .redelivered = r->delivered || r->deliveries > 0,
                       .expires_at_ms = restored_deadline(q, m, r)};

    note_deadline(q, e.expires_at_ms);
    ring_push_back(level_of(q, m), &e);
    q->len++;
    charge_in(q, m);
}

void queue_reject(struct queue *q, struct message *m)
{
    deadletter(q, m, DEAD_REJECTED);
}

/* Queues with a delivery limit show consumers how often a message came back, in the
 * x-delivery-count header, as RabbitMQ's quorum queues do. */
static void add_delivery_count(struct qentry *e)
{
    uint8_t *tmp = xmalloc(e->msg->props.headers.raw.len + 64);
    struct wire_props props = e->msg->props;
    struct wire_table rest = table_without(props.headers, "x-delivery-count", tmp);
    struct wire_writer w = wire_writer_init(tmp + rest.raw.len, 64);
    struct message *counted;

    wire_table_put_i64(&w, "x-delivery-count", e->deliveries);
    props.headers.raw = (struct wire_bytes){.ptr = tmp, .len = rest.raw.len + wire_writer_used(&w)};
    props.flags |= WIRE_PROP_HEADERS;
    counted = message_rewrite(e->msg, &props);
    /* The store keeps the message as published (the count is its own record): the copy is
     * the same stored message, so its ack and returns must reach the store. */
    counted->loc = e->msg->loc;
    counted->stored = e->msg->stored;
    free(tmp);
    message_unref(e->msg);
    e->msg = counted;
}

bool queue_pop(struct queue *q, struct qentry *out)
{
    struct qring *r;

    expire_due(q);
    if (q->len < q->vhost->memory_window / 2 && q->spill.count > 0)
        refill(q);
    if ((r = top_level(q)) == NULL)
        return false;
    ring_pop_front(r, out);
    q->len--;
    charge_out(q, out->msg);
    q->stats.delivered++;
    if (out->deliveries > 0 && q->args.delivery_limit >= 0)
        add_delivery_count(out);
    return true;
}

/* The consumer to serve next: the highest priority level that has a consumer with credit,
 * round-robin within that level. With a single active consumer, only the first. */
static struct consumer *next_consumer(struct queue *q)
{
    size_t i = 0;

    if (q->args.single_active)
        return q->consumers[0]->ops->can_take(q->consumers[0]) ? q->consumers[0] : NULL;
    while (i < q->consumer_count) {
        int32_t level = q->consumers[i]->priority;
        size_t end = i, group;

        while (end < q->consumer_count && q->consumers[end]->priority == level)
            end++;
        group = end - i;
        for (size_t k = 0; k < group; k++) {
            struct consumer *c = q->consumers[i + (q->next_consumer + k) % group];
            if (c->ops->can_take(c)) {
                q->next_consumer += k + 1;
                return c;
            }
        }
        i = end;
    }
    return NULL;
}

void queue_dispatch(struct queue *q)
{
    struct consumer *c;
    struct qentry e;

    /* A delivery can close a channel (e.g. a write error), which removes consumers: the
     * flag keeps a nested call from running over the same rings. */
    if (q->stream != NULL) {
        stream_dispatch(q);
        return;
    }
    if (q->dispatching || q->deleted)
        return;
    q->dispatching = true;
    while (queue_ready_count(q) > 0 && q->consumer_count > 0 && (c = next_consumer(q)) != NULL) {
        if (!queue_pop(q, &e))
            break;
        c->ops->deliver(c, &e);
    }
    q->dispatching = false;
}

/* Drops every ready message: it left the queue (purge), or the queue is gone and the store
 * was told already (delete: the references are only released). */
static uint32_t drop_ready(struct queue *q, bool deleting)
{
    uint32_t n = queue_ready_count(q);
    struct spill_rec sr;

    while (spill_next(&q->spill, &sr) > 0) {
        if (sr.stored) {
            if (deleting)
                persist_released_loc(q, sr.loc);
            else
                persist_left_loc(q, sr.loc);
        } else {
            message_unref(sr.msg);
        }
    }
    for (size_t l = 0; l < q->level_count; l++) {
        struct qring *r = &q->levels[l];
        struct qentry e;
        while (r->len > 0) {
            ring_pop_front(r, &e);
            charge_out(q, e.msg);
            if (deleting)
                persist_released(q, e.msg);
            else
                persist_left(q, e.msg);
            message_unref(e.msg);
        }
    }
    q->len = 0;
    q->ready_bytes = 0;
    q->next_expiry_ms = 0;
    ev_timer_stop(q->vhost->loop, &q->ttl_timer);
    return n;
}

uint32_t queue_purge(struct queue *q)
{
    return drop_ready(q, false);
}

/* ---- Consumers ------------------------------------------------------------------------- */

void queue_add_consumer(struct queue *q, struct consumer *c)
{
    size_t pos;

    if (q->consumer_count == q->consumer_cap) {
        q->consumer_cap = q->consumer_cap ? q->consumer_cap * 2 : 4;
        q->consumers = xrealloc(q->consumers, q->consumer_cap * sizeof *q->consumers);
    }
    /* After every consumer of the same or a higher priority. */
    for (pos = 0; pos < q->consumer_count && q->consumers[pos]->priority >= c->priority; pos++)
        ;
    memmove(&q->consumers[pos + 1], &q->consumers[pos],
            (q->consumer_count - pos) * sizeof *q->consumers);
    q->consumers[pos] = c;
    q->consumer_count++;
    q->had_consumer = true;
    if (c->exclusive)
        q->has_exclusive_consumer = true;
    c->q = q;
    queue_touch(q);
}

bool queue_remove_consumer(struct queue *q, struct consumer *c)
{
    size_t i;

    for (i = 0; i < q->consumer_count && q->consumers[i] != c; i++)
        ;
    assert(i < q->consumer_count);
    memmove(&q->consumers[i], &q->consumers[i + 1],
            (q->consumer_count - i - 1) * sizeof *q->consumers);
    q->consumer_count--;
    stream_consumer_stop(c);
    if (c->exclusive)
        q->has_exclusive_consumer = false;
    queue_touch(q);
    if (q->auto_delete && q->consumer_count == 0 && q->had_consumer && !q->deleted) {
        queue_delete(q);
        return true;
    }
    return false;
}

uint32_t queue_delete(struct queue *q)
{
    uint32_t dropped;

    if (q->deleted)
        return 0;
    q->deleted = true;
    ev_timer_stop(q->vhost->loop, &q->expires_timer);
    while (q->bindings != NULL)
        exchange_unbind(q->bindings);
    /* Consumers of a deleted queue are cancelled: a client that announced
     * consumer_cancel_notify is told with basic.cancel, as RabbitMQ does. */
    while (q->consumer_count > 0) {
        struct consumer *c = q->consumers[q->consumer_count - 1];
        c->ops->cancelled(c);
    }
    persist_queue_removed(q);
    stream_detach(q, true);
    dropped = drop_ready(q, true);
    /* The broker's totals keep what the queue counted (metrics never go down). */
    q->vhost->retired.published += q->stats.published;
    q->vhost->retired.delivered += q->stats.delivered;
    q->vhost->retired.redelivered += q->stats.redelivered;
    q->vhost->retired.acked += q->stats.acked;
    q->vhost->retired.expired += q->stats.expired;
    q->vhost->retired.dead_lettered += q->stats.dead_lettered;
    q->vhost->retired.dropped += q->stats.dropped;
    vhost_forget_queue(q->vhost, q);
    queue_unref(q);
    return dropped;
}
