#include "src/broker/channel.h"
#include "src/broker/channel_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/erl_term.h"
#include "exchanges/registry.h"
#include "src/base/config.h"
#include "src/base/util.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/publish.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"


struct channel *channel_new(struct conn *c, uint16_t id)
{
    struct channel *ch = xcalloc(1, sizeof *ch);

    ch->conn = c;
    ch->id = id;
    ch->state = CHANNEL_OPEN;
    ch->flow_active = true;
    hmap_init(&ch->consumers);
    return ch;
}

int channel_fail(struct channel *ch, uint16_t code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conn_fail(ch->conn, code, fmt, ap);
    va_end(ap);
    return -1;
}

/* The loop's time, read once per loop turn: precise enough for the consumer timeout, and
 * no clock read per delivery. */
static uint64_t loop_now_ms(const struct channel *ch)
{
    return (uint64_t)(ev_now(ch->conn->srv->loop) * 1000.0);
}

/* ---- Unacked deliveries ---------------------------------------------------------------- */

static struct delivery *unacked_at(const struct channel *ch, size_t i)
{
    return &ch->unacked[(ch->unacked_head + i) & (ch->unacked_cap - 1)];
}

static void unacked_push(struct channel *ch, const struct delivery *d)
{
    if (ch->unacked_len == ch->unacked_cap) {
        size_t cap = ch->unacked_cap ? ch->unacked_cap * 2 : 64;
        struct delivery *ring = xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < ch->unacked_len; i++)
            ring[i] = *unacked_at(ch, i);
        free(ch->unacked);
        ch->unacked = ring;
        ch->unacked_cap = cap;
        ch->unacked_head = 0;
    }
    *unacked_at(ch, ch->unacked_len++) = *d;
    ch->unacked_live++;
    if (d->consumer != NULL)
        ch->consumer_unacked++;
}

/* Holes at the head leave the ring. */
static void unacked_trim(struct channel *ch)
{
    while (ch->unacked_len > 0 && unacked_at(ch, 0)->msg == NULL) {
        ch->unacked_head = (ch->unacked_head + 1) & (ch->unacked_cap - 1);
        ch->unacked_len--;
    }
}

/* Which deliveries an operation acts on: those outstanding (an ack, basic.recover), those
 * settled in the open transaction (tx.commit), or all (the channel closes). */
enum pick {
    PICK_OUTSTANDING,
    PICK_TX_SETTLED,
    PICK_ALL,
};

static bool picked(const struct delivery *d, enum pick p)
{
    return d->msg != NULL && (p == PICK_ALL || d->tx_settled == (p == PICK_TX_SETTLED));
}

/* Index of the entry with this tag among those picked, or -1. Tags only grow, so the ring
 * is sorted. */
static ptrdiff_t unacked_find(const struct channel *ch, uint64_t tag, enum pick p)
{
    size_t lo = 0, hi = ch->unacked_len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t t = unacked_at(ch, mid)->tag;
        if (t == tag)
            return picked(unacked_at(ch, mid), p) ? (ptrdiff_t)mid : -1;
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Takes the delivery out of the ring, leaving a hole; the caller owns its references. */
static struct delivery unacked_take(struct channel *ch, size_t i)
{
    struct delivery *slot = unacked_at(ch, i);
    struct delivery d = *slot;

    slot->msg = NULL;
    ch->unacked_live--;
    if (d.consumer != NULL) {
        d.consumer->unacked--;
        ch->consumer_unacked--;
    }
    return d;
}

enum settle_kind {
    SETTLE_ACK,     /* basic.ack: done with */
    SETTLE_REQUEUE, /* nack/reject with requeue, recover, channel closed: back to the queue */
    SETTLE_DISCARD, /* nack/reject without requeue: dead-lettered, or dropped */
};

static void settle(struct delivery *d, enum settle_kind kind)
{
    d->q->unacked--;
    d->q->unacked_bytes -= message_bytes(d->msg);
    if (kind == SETTLE_ACK)
        d->q->stats.acked++;
    if (d->q->stream != NULL) {
        /* A stream keeps its messages: a settled delivery only gives credit back. */
        message_unref(d->msg);
    } else if (d->q->deleted) {
        persist_released(d->q, d->msg);
        message_unref(d->msg);
    } else if (kind == SETTLE_ACK) {
        persist_left(d->q, d->msg);
        message_unref(d->msg);
    } else if (kind == SETTLE_REQUEUE)
        queue_requeue(d->q, d->msg, d->seq, d->deliveries + 1, d->expires_at_ms);
    else
        queue_reject(d->q, d->msg);
}

/* Requeues every delivery among the first `end` entries of the ring, then trims it, in time
 * linear in their number: they are grouped by queue in two counting passes (no sort), each
 * queue takes its group in one pass (queue_requeue_many) and dispatches once, possibly to
 * consumers of this channel (basic.recover redelivers), whose new deliveries go after the
 * trimmed ring. The scratch memory is one queue entry per delivery and no copy of the
 * deliveries: fresh memory is much of what requeueing 100,000 of them costs. */
static void requeue_range(struct channel *ch, size_t end, enum pick p)
{
    struct queue **queues = NULL; /* the queues concerned, in order of first appearance */
    size_t *group_end = NULL, nqueues = 0, cap = 0, total = 0;
    struct qentry *entries;

    for (size_t i = 0; i < end; i++) {
        struct delivery *d = unacked_at(ch, i);
        if (!picked(d, p))
            continue;
        if (d->q->requeue_pos++ == 0) {
            if (nqueues == cap) {
                cap = cap ? cap * 2 : 8;
                queues = xrealloc(queues, cap * sizeof *queues);
            }
            queues[nqueues++] = d->q;
        }
        total++;
    }
    if (total == 0) {
        unacked_trim(ch);
        return;
    }
    /* Each queue's group starts where the one before ends; requeue_pos moves from the
     * group's count to its start, and the second pass moves it to the group's end. */
    group_end = xmalloc(nqueues * sizeof *group_end);
    for (size_t k = 0, start = 0; k < nqueues; k++) {
        size_t count = queues[k]->requeue_pos;
        queues[k]->requeue_pos = start;
        start += count;
    }
    entries = xmalloc(total * sizeof *entries);
    for (size_t i = 0; i < end; i++) {
        struct delivery d;
        if (!picked(unacked_at(ch, i), p))
            continue;
        d = unacked_take(ch, i);
        entries[d.q->requeue_pos++] = (struct qentry){.msg = d.msg,
                                                      .seq = d.seq,
                                                      .expires_at_ms = d.expires_at_ms,
                                                      .deliveries = d.deliveries + 1};
    }
    for (size_t k = 0; k < nqueues; k++) {
        group_end[k] = queues[k]->requeue_pos;
        queues[k]->requeue_pos = 0;
    }
    unacked_trim(ch);
    for (size_t k = 0, start = 0; k < nqueues; start = group_end[k++]) {
        struct queue *q = queues[k];
        size_t n = group_end[k] - start;
        q->unacked -= (uint32_t)n;
        for (size_t i = start; i < group_end[k]; i++)
            q->unacked_bytes -= message_bytes(entries[i].msg);
        if (q->stream != NULL) {
            /* Nothing goes back to a stream; its consumers read on. */
            for (size_t i = start; i < group_end[k]; i++)
                message_unref(entries[i].msg);
            queue_dispatch(q);
        } else if (q->deleted) {
            for (size_t i = start; i < group_end[k]; i++) {
                persist_released(q, entries[i].msg);
                message_unref(entries[i].msg);
            }
        } else {
            queue_requeue_many(q, entries + start, n);
            queue_dispatch(q);
        }
        /* Each delivery held a reference to its queue. */
        for (size_t i = 0; i < n; i++)
            queue_unref(q);
    }
    free(entries);
    free(group_end);
    free(queues);
}

/* Acks, rejects or requeues the delivery tag (and, with multiple, everything before it)
 * among the deliveries picked. Queues that got messages back, or whose consumers got credit
 * back, dispatch again. */
static int settle_tags(struct channel *ch, uint64_t tag, bool multiple, enum settle_kind kind,
                       enum pick p)
{
    size_t end;
    struct queue *touched[16];
    size_t ntouched = 0;
    bool overflow = false;

    if (multiple) {
        /* Tag 0 with multiple means every outstanding delivery. Otherwise the tag itself
         * must be outstanding, as RabbitMQ requires, or nothing is settled. */
        ptrdiff_t last = -1;
        if (tag != 0 && (last = unacked_find(ch, tag, p)) < 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED, "unknown delivery tag %" PRIu64,
                                tag);
        end = tag != 0 ? (size_t)last + 1 : ch->unacked_len;
        if (kind == SETTLE_REQUEUE) {
            requeue_range(ch, end, p);
            return 0;
        }
        for (size_t i = 0; i < end; i++) {
            struct delivery d;
            if (!picked(unacked_at(ch, i), p))
                continue;
            d = unacked_take(ch, i);
            if (ntouched < ARRAY_LEN(touched)) {
                size_t k;
                for (k = 0; k < ntouched && touched[k] != d.q; k++)
                    ;
                if (k == ntouched) {
                    queue_ref(d.q);
                    touched[ntouched++] = d.q;
                }
            } else {
                overflow = true;
            }
            settle(&d, kind);
            queue_unref(d.q);
        }
    } else {
        ptrdiff_t i = unacked_find(ch, tag, p);
        struct delivery d;
        if (i < 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED, "unknown delivery tag %" PRIu64,
                                tag);
        d = unacked_take(ch, (size_t)i);
        queue_ref(d.q);
        touched[ntouched++] = d.q;
        settle(&d, kind);
        queue_unref(d.q);
    }
    unacked_trim(ch);
    /* Under a channel-wide limit the freed credit goes round the channel's consumers first,
     * not to the queues of the settled deliveries. */
    if (ch->prefetch_channel != 0 && kind != SETTLE_REQUEUE)
        channel_resume(ch);
    for (size_t k = 0; k < ntouched; k++) {
        queue_dispatch(touched[k]);
        queue_unref(touched[k]);
    }
    if (overflow || (kind != SETTLE_REQUEUE && ch->prefetch_channel == 0))
        channel_resume(ch);
    return 0;
}

/* The picked unacked deliveries go back to their queues: all when the channel closes, the
 * outstanding ones on basic.recover (those settled in the open transaction stay settled). */
static void requeue_all(struct channel *ch, enum pick p)
{
    requeue_range(ch, ch->unacked_len, p);
}

bool channel_ack_overdue(struct channel *ch, uint64_t now, uint32_t timeout_ms)
{
    unacked_trim(ch);
    return ch->state == CHANNEL_OPEN && ch->unacked_len > 0 &&
           now - unacked_at(ch, 0)->delivered_ms > timeout_ms;
}

/* ---- Consumers ------------------------------------------------------------------------- */

/* consumer_ops: the queue's questions to a channel's consumer (src/broker/queue.h). */

static bool consumer_can_take(const struct consumer *c)
{
    const struct channel *ch = c->ch;

    if (ch->state != CHANNEL_OPEN || !ch->flow_active || ch->conn->congested)
        return false;
    /* The channel-wide limit holds back no-ack consumers too, as RabbitMQ's limiter does,
     * though their deliveries do not count against it. */
    if (ch->prefetch_channel != 0 && ch->consumer_unacked >= ch->prefetch_channel)
        return false;
    return c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch;
}

/* Sends e to c (deliver + header + body) and records it unless no-ack; takes e's reference. */
static void consumer_deliver(struct consumer *c, struct qentry *e)
{
    struct channel *ch = c->ch;
    struct wire_basic_deliver m = {
        .consumer_tag = c->tag,
        .delivery_tag = ++ch->next_tag,
        .redelivered = e->redelivered,
        .exchange = e->msg->exchange,
        .routing_key = e->msg->routing_key,
    };

    conn_send_content(ch->conn, ch->id, WIRE_BASIC_DELIVER, &m, e->msg);
    if (c->no_ack) {
        persist_left(c->q, e->msg);
        message_unref(e->msg);
        return;
    }
    if (e->deliveries == 0 && !e->redelivered)
        persist_delivered(c->q, e->msg);
    queue_ref(c->q);
    c->q->unacked++;
    c->q->unacked_bytes += message_bytes(e->msg);
    c->unacked++;
    unacked_push(ch, &(struct delivery){.tag = m.delivery_tag,
                                        .msg = e->msg,
                                        .q = c->q,
                                        .consumer = c,
                                        .seq = e->seq,
                                        .deliveries = e->deliveries,
                                        .delivered_ms = loop_now_ms(ch),
                                        .expires_at_ms = e->expires_at_ms});
}

/* The consumer leaves its queue and the channel. Its unacked deliveries stay on the channel
 * (they can still be acked) but no longer count against it. */
static void consumer_free(struct consumer *c)
{
    struct channel *ch = c->ch;

    /* Only a consumer with unacked deliveries looks for them, and only until it found all. */
    for (size_t i = 0, left = c->unacked; left > 0 && i < ch->unacked_len; i++) {
        struct delivery *d = unacked_at(ch, i);
        if (d->msg != NULL && d->consumer == c) {
            d->consumer = NULL;
            ch->consumer_unacked--;
            left--;
        }
    }
    hmap_remove(&ch->consumers, c->tag);
    bytes_free(&c->tag);
    free(c);
}

static void consumer_cancel(struct consumer *c)
{
    struct queue *q = c->q;

    queue_ref(q);
    queue_remove_consumer(q, c);
    consumer_free(c);
    queue_unref(q);
}

/* The queue of c went away: tell the client if it asked to be told, forget the consumer. */
static void consumer_cancelled_by_broker(struct consumer *c)
{
    struct channel *ch = c->ch;

    if (ch->conn->cap_consumer_cancel_notify && ch->state == CHANNEL_OPEN) {
        struct wire_basic_cancel m = {.consumer_tag = c->tag, .nowait = true};
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_CANCEL, &m);
    }
    queue_remove_consumer(c->q, c);
    consumer_free(c);
}

static const struct consumer_ops channel_consumer_ops = {
    .can_take = consumer_can_take,
    .deliver = consumer_deliver,
    .cancelled = consumer_cancelled_by_broker,
};

/* The walk starts one consumer past the one that took the first delivery last time, so the
 * credit an ack frees under a channel-wide limit goes round the channel's queues instead of
 * back to the queue that was just served. */
void channel_resume(struct channel *ch)
{
    size_t start = ch->resume_slot, i = start, slot;
    bool wrapped = false, served = false;
    void *v;

    for (;;) {
        struct consumer *c;
        uint64_t tag_before = ch->next_tag;

        if (!hmap_next(&ch->consumers, &i, &v)) {
            if (wrapped || start == 0)
                break;
            wrapped = true;
            i = 0;
            continue;
        }
        slot = i - 1;
        if (wrapped && slot >= start)
            break;
        c = v;
        queue_dispatch(c->q);
        if (!served && ch->next_tag != tag_before) {
            served = true;
            ch->resume_slot = slot + 1;
        }
    }
}

/* ---- Confirms waiting for the store ------------------------------------------------------
 * A channel with a confirm that waits for an fsync is in its server's list of waiting
 * channels until the store reports that sequence durable (channel_confirms_durable). */

static void wait_durable(struct channel *ch)
{
    struct server *s = ch->conn->srv;

    if (ch->waiting_durable || s->persist == NULL)
        return;
    ch->waiting_durable = true;
    ch->prev_waiting = NULL;
    ch->next_waiting = s->confirm_waiting;
    if (s->confirm_waiting)
        s->confirm_waiting->prev_waiting = ch;
    s->confirm_waiting = ch;
}

static void unwait_durable(struct channel *ch)
{
    struct server *s = ch->conn->srv;

    if (!ch->waiting_durable)
        return;
    ch->waiting_durable = false;
    if (ch->prev_waiting)
        ch->prev_waiting->next_waiting = ch->next_waiting;
    else
        s->confirm_waiting = ch->next_waiting;
    if (ch->next_waiting)
        ch->next_waiting->prev_waiting = ch->prev_waiting;
}

void channel_free(struct channel *ch)
{
    void *v;
    size_t i;

    if (ch == NULL)
        return;
    /* The deliveries leave their consumers in one pass, so that no consumer cancelled below
     * walks the ring for its own: with many consumers that was consumers x deliveries. */
    for (i = 0; i < ch->unacked_len; i++) {
        struct delivery *d = unacked_at(ch, i);
        if (d->msg != NULL && d->consumer != NULL) {
            d->consumer->unacked--;
            d->consumer = NULL;
        }
    }
    ch->consumer_unacked = 0;
    /* Consumers go first, so requeued messages are not handed straight back to them. A
     * cancel can remove other consumers too (an auto-delete queue goes and cancels the rest)
     * and move entries in the table: the walk goes on from the slot it was at, which a moved
     * entry may now fill, and starts over until the table is empty. Starting over after
     * each cancel cost consumers x table size. */
    for (i = 0; ch->consumers.len > 0;) {
        if (!hmap_next(&ch->consumers, &i, &v)) {
            i = 0;
            continue;
        }
        consumer_cancel(v);
        i--;
    }
    requeue_all(ch, PICK_ALL);
    message_unref(ch->pub_msg);
    for (size_t k = 0; k < ch->tx_len; k++)
        message_unref(ch->tx_ops[k].msg);
    free(ch->tx_ops);
    unwait_durable(ch);
    free(ch->confirms);
    if (ch->reply_tag.len > 0)
        server_reply_forget(ch->conn->srv, ch);
    bytes_free(&ch->reply_tag);
    hmap_free(&ch->consumers);
    free(ch->unacked);
    free(ch);
}

/* ---- Lookups shared by the handlers ---------------------------------------------------- */

/* 405: the queue is another connection's exclusive queue, or (on a declare) its exclusive
 * flag differs from the declaration. */
int channel_fail_locked(struct channel *ch, struct wire_bytes name)
{
    return channel_fail(ch, WIRE_RESOURCE_LOCKED,
                        "cannot obtain exclusive access to locked queue " NAME_FMT
                        " in vhost " NAME_FMT ". It could be originally declared on another "
                        "connection or the exclusive property value does not match that of the "
                        "original declaration.",
                        NAME_ARG(name), VHOST_ARG(ch));
}

/* The queue name a method means: "" is the queue last declared on this channel, as the
 * spec allows, and 404 when none was. RabbitMQ expands it before anything else is checked
 * (rabbit_channel:expand_shortcuts), permissions included. *name may then point into ch. */
int channel_expand_queue_name(struct channel *ch, struct wire_bytes *name)
{
    if (name->len > 0)
        return 0;
    if (ch->last_queue_len == 0)
        return channel_fail(ch, WIRE_NOT_FOUND, "no previously declared queue");
    *name = (struct wire_bytes){.ptr = ch->last_queue, .len = ch->last_queue_len};
    return 0;
}

/* The queue a method names (expanded by channel_expand_queue_name() where the method allows "").
 * Fails with 404 (missing) or 405 (another connection's exclusive queue). */
struct queue *channel_find_queue(struct channel *ch, struct wire_bytes name)
{
    struct vhost *vh = ch->conn->vhost;
    struct queue *q;

    q = vhost_queue_find(vh, name);
    if (q == NULL) {
        channel_fail(ch, WIRE_NOT_FOUND, "no queue " NAME_FMT " in vhost " NAME_FMT,
                     NAME_ARG(name), VHOST_ARG(ch));
        return NULL;
    }
    if (q->exclusive && q->owner != ch->conn) {
        channel_fail_locked(ch, name);
        return NULL;
    }
    return q;
}

struct exchange *channel_find_exchange(struct channel *ch, struct wire_bytes name)
{
    struct exchange *x = vhost_exchange_find(ch->conn->vhost, name);

    if (x == NULL)
        channel_fail(ch, WIRE_NOT_FOUND, "no exchange " NAME_FMT " in vhost " NAME_FMT,
                     NAME_ARG(name), VHOST_ARG(ch));
    return x;
}

/* A name without its CR and LF characters: RabbitMQ removes them from the exchange and queue
 * names of exchange.declare, exchange.delete, exchange.bind, exchange.unbind, queue.declare,
 * queue.bind, queue.unbind and queue.delete (rabbit_channel:strip_cr_lf), and not from those
 * of queue.purge, basic.consume, basic.get or basic.publish. The result is name itself when
 * it has none, else a copy in buf. */
struct wire_bytes channel_strip_cr_lf(struct wire_bytes name, uint8_t buf[NAME_BUF_SIZE])
{
    size_t len = 0;

    if (name.len == 0 ||
        (memchr(name.ptr, '\r', name.len) == NULL && memchr(name.ptr, '\n', name.len) == NULL))
        return name;
    assert(name.len < NAME_BUF_SIZE);
    for (size_t i = 0; i < name.len; i++) {
        if (name.ptr[i] != '\r' && name.ptr[i] != '\n')
            buf[len++] = name.ptr[i];
    }
    return (struct wire_bytes){.ptr = buf, .len = len};
}

/* Access control: the checks RabbitMQ makes for op, and its refusal text (403). */
int channel_permit(struct channel *ch, enum auth_op op, struct wire_bytes primary,
                  struct wire_bytes secondary)
{
    struct conn *c = ch->conn;
    char why[600];

    if (auth_check_op(c->srv->auth, wire_cstr(c->log.user), c->vhost->name, op, primary,
                      secondary, why, sizeof why))
        return 0;
    return channel_fail(ch, WIRE_ACCESS_REFUSED, "%s", why);
}

/* Topic permissions: on a topic exchange the routing key (publish, access AUTH_WRITE) or the
 * binding key (bind and unbind, AUTH_READ) must match the user's pattern, if it has one. */
int channel_permit_topic(struct channel *ch, const struct exchange *x, unsigned access,
                        struct wire_bytes key)
{
    struct conn *c = ch->conn;
    char why[600];

    if (x == NULL || strcmp(x->type->name, "topic") != 0 ||
        auth_topic_permitted(c->srv->auth, wire_cstr(c->log.user), c->vhost->name, x->name,
                             access, key, NULL))
        return 0;
    auth_topic_refusal_text(why, sizeof why, key, x->name, c->vhost->name, wire_cstr(c->log.user));
    return channel_fail(ch, WIRE_ACCESS_REFUSED, "%s", why);
}

const char *channel_bool_text(bool b)
{
    return b ? "true" : "false";
}

/* ---- channel class --------------------------------------------------------------------- */

static int handle_channel_flow(struct channel *ch, const struct wire_method *m)
{
    struct wire_channel_flow_ok ok = {.active = m->u.channel_flow.active};

    ch->flow_active = m->u.channel_flow.active;
    conn_send_method(ch->conn, ch->id, WIRE_CHANNEL_FLOW_OK, &ok);
    if (ch->flow_active)
        channel_resume(ch);
    return 0;
}

static int handle_channel_flow_ok(struct channel *ch, const struct wire_method *m)
{
    (void)ch;
    (void)m;
    return 0; /* we never send channel.flow */
}

/* ---- basic class ----------------------------------------------------------------------- */

static int handle_basic_qos(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_qos *a = &m->u.basic_qos;

    /* RabbitMQ refuses a byte limit; global=false sets the limit of consumers created
     * afterwards on this channel, global=true a limit shared by the channel. */
    if (a->prefetch_size != 0)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED, "prefetch_size!=0 (%u)", a->prefetch_size);
    if (a->global)
        ch->prefetch_channel = a->prefetch_count;
    else
        ch->prefetch_consumer = a->prefetch_count;
    conn_send_method(ch->conn, ch->id, WIRE_BASIC_QOS_OK, &(struct wire_basic_qos_ok){0});
    channel_resume(ch);
    return 0;
}

/* Direct reply-to: consuming from the pseudo-queue amq.rabbitmq.reply-to makes this channel
 * an RPC client. Replies published to its address go straight to it, no queue between. */
static int consume_replies(struct channel *ch, const struct wire_basic_consume *a)
{
    char generated[64];
    struct wire_bytes tag = a->consumer_tag;

    if (!a->no_ack)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED, "reply consumer cannot acknowledge");
    if (ch->reply_tag.len > 0)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED, "reply consumer already set");
    if (tag.len == 0) {
        random_name(generated, sizeof generated, "amq.ctag-");
        tag = wire_cstr(generated);
    }
    ch->reply_tag = bytes_dup(tag);
    random_name(ch->reply_address, sizeof ch->reply_address, "amq.rabbitmq.reply-to.");
    server_reply_register(ch->conn->srv, ch);
    if (!a->nowait) {
        struct wire_basic_consume_ok ok = {.consumer_tag = ch->reply_tag};
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_CONSUME_OK, &ok);
    }
    return 0;
}

void channel_deliver_reply(struct channel *ch, struct message *m)
{
    struct wire_basic_deliver d = {
        .consumer_tag = ch->reply_tag,
        .delivery_tag = ++ch->next_tag,
        .exchange = m->exchange,
        .routing_key = m->routing_key,
    };

    if (ch->state == CHANNEL_OPEN)
        conn_send_content(ch->conn, ch->id, WIRE_BASIC_DELIVER, &d, m);
}

static int handle_basic_consume(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_consume *a = &m->u.basic_consume;
    char generated[64];
    struct wire_bytes tag = a->consumer_tag;
    struct consumer *c;
    struct queue *q;
    struct wire_field prio;
    struct wire_bytes queue = a->queue;

    if (channel_expand_queue_name(ch, &queue) != 0)
        return -1;
    if (wire_bytes_eq_cstr(queue, "amq.rabbitmq.reply-to"))
        return consume_replies(ch, a);
    if (channel_permit(ch, AUTH_OP_BASIC_CONSUME, queue, (struct wire_bytes){0}) != 0)
        return -1;
    if ((q = channel_find_queue(ch, queue)) == NULL)
        return -1;
    if (tag.len == 0) {
        random_name(generated, sizeof generated, "amq.ctag-");
        tag = wire_cstr(generated);
    } else if (hmap_get(&ch->consumers, tag) != NULL) {
        return channel_fail(ch, WIRE_NOT_ALLOWED, "attempt to reuse consumer tag " NAME_FMT,
                            NAME_ARG(tag));
    }
    if (ch->conn->srv->cfg->consumer_max_per_channel != 0 &&
        ch->consumers.len >= ch->conn->srv->cfg->consumer_max_per_channel)
        return channel_fail(ch, WIRE_NOT_ALLOWED,
                            "reached maximum (%u) of consumers per channel",
                            ch->conn->srv->cfg->consumer_max_per_channel);
    if (q->has_exclusive_consumer || (a->exclusive && q->consumer_count > 0))
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "queue " NAME_FMT " in vhost " NAME_FMT " in exclusive use",
                            NAME_ARG(q->name), VHOST_ARG(ch));
    c = xcalloc(1, sizeof *c);
    c->ops = &channel_consumer_ops;
    c->tag = bytes_dup(tag);
    c->ch = ch;
    c->no_ack = a->no_ack;
    c->exclusive = a->exclusive;
    c->prefetch = ch->prefetch_consumer;
    if (q->stream != NULL) {
        uint16_t code;
        char err[700];
        if (stream_consumer_start(q, c, a->arguments.raw, a->no_ack, c->prefetch, &code, err,
                                  sizeof err) != 0) {
            bytes_free(&c->tag);
            free(c);
            return channel_fail(ch, code, "%s", err);
        }
    }
    if (wire_table_find(a->arguments, "x-priority", &prio)) {
        int64_t v;
        if (!wire_field_int(&prio, &v) || v < INT32_MIN || v > INT32_MAX) {
            bytes_free(&c->tag);
            free(c);
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "invalid arg 'x-priority' for queue " NAME_FMT " in vhost " NAME_FMT
                                ": \"expected integer, got %s\"",
                                NAME_ARG(q->name), VHOST_ARG(ch), erl_term_type_name(prio.type));
        }
        c->priority = (int32_t)v;
    }
    hmap_put(&ch->consumers, c->tag, c);
    /* consume-ok goes out before the first delivery. */
    if (!a->nowait) {
        struct wire_basic_consume_ok ok = {.consumer_tag = c->tag};
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_CONSUME_OK, &ok);
    }
    queue_add_consumer(q, c);
    queue_dispatch(q);
    return 0;
}

static int handle_basic_cancel(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_cancel *a = &m->u.basic_cancel;
    struct consumer *c = hmap_get(&ch->consumers, a->consumer_tag);
    struct wire_basic_cancel_ok ok = {.consumer_tag = a->consumer_tag};

    /* Send cancel-ok first: a cancel can auto-delete the queue, whose name was borrowed
     * from nothing here, but the tag is borrowed from the frame and stays valid. */
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_CANCEL_OK, &ok);
    if (c != NULL) {
        consumer_cancel(c);
    } else if (ch->reply_tag.len > 0 && wire_bytes_eq(ch->reply_tag, a->consumer_tag)) {
        server_reply_forget(ch->conn->srv, ch);
        bytes_free(&ch->reply_tag);
    }
    return 0;
}

static int handle_basic_publish(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_publish *a = &m->u.basic_publish;

    if (a->immediate)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED, "immediate=true");
    if (!ch->conn->is_publisher) {
        ch->conn->is_publisher = true;
        if (ch->conn->srv->alarms != 0)
            ch->conn->block_pending = true;
    }
    /* Write permission on the exchange, remembered while the user database is unchanged:
     * publishers keep using one exchange, and the check is a regex match. */
    if (ch->auth_generation != ch->conn->srv->auth->generation ||
        !wire_bytes_eq(a->exchange, (struct wire_bytes){ch->pub_exchange, ch->pub_exchange_len}) ||
        !ch->pub_permitted) {
        ch->pub_permitted = false;
        if (channel_permit(ch, AUTH_OP_BASIC_PUBLISH, a->exchange, (struct wire_bytes){0}) != 0)
            return -1;
        ch->pub_permitted = true;
        ch->auth_generation = ch->conn->srv->auth->generation;
    }
    memcpy(ch->pub_exchange, a->exchange.ptr, a->exchange.len);
    ch->pub_exchange_len = (uint8_t)a->exchange.len;
    memcpy(ch->pub_routing_key, a->routing_key.ptr, a->routing_key.len);
    ch->pub_routing_key_len = (uint8_t)a->routing_key.len;
    ch->pub_mandatory = a->mandatory;
    ch->content = CONTENT_HEADER;
    return 0;
}

/* Publish number ch->publish_seq is confirmed (ack), refused (nack) or waits for the store
 * (store_seq != 0). The client hears of it at the end of the loop turn, in order, acks that
 * follow each other in one basic.ack with multiple. */
static void confirm(struct channel *ch, bool ack, uint64_t store_seq, uint64_t stream_seq)
{
    struct confirm_slot *slot;

    if (ch->confirm_len == ch->confirm_cap) {
        size_t cap = ch->confirm_cap ? ch->confirm_cap * 2 : 64;
        struct confirm_slot *ring = xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < ch->confirm_len; i++)
            ring[i] = ch->confirms[(ch->confirm_head + i) & (ch->confirm_cap - 1)];
        free(ch->confirms);
        ch->confirms = ring;
        ch->confirm_cap = cap;
        ch->confirm_head = 0;
    }
    if (ch->confirm_len == 0)
        ch->confirm_base = ch->publish_seq;
    slot = &ch->confirms[(ch->confirm_head + ch->confirm_len++) & (ch->confirm_cap - 1)];
    slot->store_seq = store_seq;
    slot->stream_seq = stream_seq;
    if (!ack)
        slot->state = CONFIRM_NACK;
    else if ((store_seq != 0 && store_seq > ch->conn->srv->confirmable_seq) ||
             (stream_seq != 0 && stream_seq > ch->conn->srv->stream_durable_seq))
        slot->state = CONFIRM_WAIT;
    else
        slot->state = CONFIRM_ACK;
    if (slot->state == CONFIRM_WAIT)
        wait_durable(ch);
    ch->conn->confirms_pending = true;
}

static void send_acks(struct channel *ch, uint64_t upto, uint64_t count)
{
    struct wire_basic_ack m = {.delivery_tag = upto, .multiple = count > 1};

    if (count > 0)
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_ACK, &m);
    /* Counted per publish, as RabbitMQ's message_stats.confirm. */
    ch->confirmed += count;
    ch->conn->srv->confirmed += count;
}

void channel_flush_confirms(struct channel *ch)
{
    uint64_t acks = 0;

    if (ch->state != CHANNEL_OPEN)
        return;
    while (ch->confirm_len > 0) {
        struct confirm_slot *slot = &ch->confirms[ch->confirm_head];
        uint64_t seq = ch->confirm_base;

        if (slot->state == CONFIRM_WAIT)
            break;
        if (slot->state == CONFIRM_ACK) {
            acks++;
        } else {
            struct wire_basic_nack m = {.delivery_tag = seq, .requeue = false};
            send_acks(ch, seq - 1, acks);
            acks = 0;
            conn_send_method(ch->conn, ch->id, WIRE_BASIC_NACK, &m);
        }
        ch->confirm_head = (ch->confirm_head + 1) & (ch->confirm_cap - 1);
        ch->confirm_len--;
        ch->confirm_base++;
    }
    send_acks(ch, ch->confirm_base - 1, acks);
}

static void confirms_durable(struct channel *ch)
{
    uint64_t durable_seq = ch->conn->srv->confirmable_seq;
    uint64_t stream_seq = ch->conn->srv->stream_durable_seq;
    bool waiting = false;

    /* Stored publishes appended in publish order, so their store sequences grow along the
     * ring: stop at the first one still waiting. */
    for (size_t i = 0; i < ch->confirm_len; i++) {
        struct confirm_slot *slot = &ch->confirms[(ch->confirm_head + i) & (ch->confirm_cap - 1)];
        if (slot->state != CONFIRM_WAIT)
            continue;
        if (slot->store_seq > durable_seq || slot->stream_seq > stream_seq) {
            waiting = true;
            break;
        }
        slot->state = CONFIRM_ACK;
    }
    if (!waiting)
        unwait_durable(ch);
    channel_flush_confirms(ch);
}

void channel_confirms_failed(struct server *s)
{
    struct channel *ch;

    while ((ch = s->confirm_waiting) != NULL) {
        for (size_t i = 0; i < ch->confirm_len; i++) {
            struct confirm_slot *slot =
                &ch->confirms[(ch->confirm_head + i) & (ch->confirm_cap - 1)];
            if (slot->state == CONFIRM_WAIT)
                slot->state = CONFIRM_NACK;
        }
        unwait_durable(ch);
        channel_flush_confirms(ch);
    }
}

void channel_confirms_durable(struct server *s, uint64_t durable_seq)
{
    struct channel *ch, *next;

    if (durable_seq > s->confirmable_seq)
        s->confirmable_seq = durable_seq;
    for (ch = s->confirm_waiting; ch != NULL; ch = next) {
        next = ch->next_waiting;
        confirms_durable(ch);
    }
}

void channel_streams_durable(struct server *s, uint64_t stream_seq)
{
    struct channel *ch, *next;

    if (stream_seq > s->stream_durable_seq)
        s->stream_durable_seq = stream_seq;
    for (ch = s->confirm_waiting; ch != NULL; ch = next) {
        next = ch->next_waiting;
        confirms_durable(ch);
    }
}

/* Routes a complete message and hands it to its queues: the last step of basic.publish, or
 * of tx.commit for the publishes of a transaction. Takes the caller's reference. *refused
 * is set when a queue refused the message (x-overflow reject-publish). */
static int publish_route(struct channel *ch, struct message *msg, bool mandatory, bool *refused,
                         uint64_t *store_seq, uint64_t *stream_seq)
{
    struct vhost *vh = ch->conn->vhost;
    struct exchange *x;
    size_t n;
    int rc = 0;

    x = vhost_exchange_find(vh, msg->exchange);
    if (x == NULL) {
        rc = channel_fail(ch, WIRE_NOT_FOUND, "no exchange " NAME_FMT " in vhost " NAME_FMT,
                          NAME_ARG(msg->exchange), VHOST_ARG(ch));
        goto out;
    }
    if (x->internal) {
        rc = channel_fail(ch, WIRE_ACCESS_REFUSED,
                          "cannot publish to internal exchange " NAME_FMT " in vhost " NAME_FMT,
                          NAME_ARG(msg->exchange), VHOST_ARG(ch));
        goto out;
    }
    if ((rc = channel_permit_topic(ch, x, AUTH_WRITE, msg->routing_key)) != 0)
        goto out;
    {
        struct publish_result res;
        server_publish(ch->conn->srv, vh, x, &msg, &res);
        n = res.routed;
        if (refused != NULL && res.refused)
            *refused = true;
        if (store_seq != NULL)
            *store_seq = res.store_seq;
        if (stream_seq != NULL)
            *stream_seq = res.stream_seq;
    }
    if (n == 0 && mandatory) {
        struct wire_basic_return r = {
            .reply_code = WIRE_NO_ROUTE,
            .reply_text = WIRE_BYTES_C("NO_ROUTE"),
            .exchange = msg->exchange,
            .routing_key = msg->routing_key,
        };
        conn_send_content(ch->conn, ch->id, WIRE_BASIC_RETURN, &r, msg);
    }
out:
    message_unref(msg);
    return rc;
}

/* The message is complete: check what RabbitMQ checks of its properties, then route it
 * now, or keep it for tx.commit. */
static int publish_complete(struct channel *ch)
{
    struct message *msg = ch->pub_msg;
    const struct wire_props *p = &msg->props;
    int rc;

    ch->pub_msg = NULL;
    ch->content = CONTENT_NONE;
    if (ch->confirm_mode)
        ch->publish_seq++;
    /* Validated user-id: a message may only claim the user that published it, unless that
     * user is an impersonator. */
    if ((p->flags & WIRE_PROP_USER_ID) &&
        !auth_may_claim_user_id(ch->conn->srv->auth, ch->conn->log.user, p->user_id)) {
        rc = channel_fail(ch, WIRE_PRECONDITION_FAILED,
                          "user_id property set to " NAME_FMT " but authenticated user was '%s'",
                          NAME_ARG(p->user_id), ch->conn->log.user);
        message_unref(msg);
        return rc;
    }
    if (p->flags & WIRE_PROP_EXPIRATION) {
        int64_t ms;
        char why[640];
        if (expiration_parse(p->expiration, &ms, why, sizeof why) != 0) {
            rc = channel_fail(ch, WIRE_PRECONDITION_FAILED, "%s", why);
            message_unref(msg);
            return rc;
        }
    }
    {
        /* RabbitMQ's text is the Erlang term of its error (rabbit_basic:header_routes). */
        uint8_t type;
        const char *bad = publish_bad_routing_header(p, &type);
        if (bad != NULL) {
            rc = channel_fail(ch, WIRE_PRECONDITION_FAILED,
                              "invalid message: {unacceptable_type_in_header,\"%s\",%s}", bad,
                              erl_term_type_name(type));
            message_unref(msg);
            return rc;
        }
    }
    if ((p->flags & WIRE_PROP_REPLY_TO) &&
        wire_bytes_eq_cstr(p->reply_to, "amq.rabbitmq.reply-to")) {
        struct wire_props props = *p;
        struct message *addressed;
        if (ch->reply_tag.len == 0) {
            message_unref(msg);
            return channel_fail(ch, WIRE_PRECONDITION_FAILED, "fast reply consumer does not exist");
        }
        props.reply_to = wire_cstr(ch->reply_address);
        addressed = message_rewrite(msg, &props);
        message_unref(msg);
        msg = addressed;
    }
    if (ch->tx_mode) {
        struct tx_op *op;
        if (ch->tx_len == ch->tx_cap) {
            ch->tx_cap = ch->tx_cap ? ch->tx_cap * 2 : 16;
            ch->tx_ops = xrealloc(ch->tx_ops, ch->tx_cap * sizeof *ch->tx_ops);
        }
        op = &ch->tx_ops[ch->tx_len++];
        *op = (struct tx_op){.method_id = WIRE_BASIC_PUBLISH, .msg = msg,
                             .mandatory = ch->pub_mandatory};
        return 0;
    }
    {
        bool refused = false;
        uint64_t store_seq = 0, stream_seq = 0;
        rc = publish_route(ch, msg, ch->pub_mandatory, &refused, &store_seq, &stream_seq);
        if (rc == 0 && ch->confirm_mode)
            confirm(ch, !refused, refused ? 0 : store_seq, refused ? 0 : stream_seq);
    }
    return rc;
}

static int handle_content_header(struct channel *ch, const struct wire_frame *f)
{
    const struct config *cfg = ch->conn->srv->cfg;
    struct wire_content_header h;
    int rc = wire_content_header_decode(f->payload, &h);

    /* As RabbitMQ: a short header is a frame error, a non-zero weight an unexpected frame,
     * malformed properties a syntax error; all of them close the connection. */
    if (rc != WIRE_OK)
        return channel_fail(ch, (uint16_t)-rc, "malformed content header");
    if (h.class_id != WIRE_CLASS_BASIC)
        return channel_fail(ch, WIRE_UNEXPECTED_FRAME,
                            "expected content header for class 60, got one for class %u instead",
                            h.class_id);
    if (h.body_size > cfg->max_message_size) {
        ch->content = CONTENT_NONE;
        return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                            "message size %" PRIu64 " is larger than configured max size %" PRIu64,
                            h.body_size, (uint64_t)cfg->max_message_size);
    }
    ch->pub_msg = message_new_decoded(
        (struct wire_bytes){.ptr = ch->pub_exchange, .len = ch->pub_exchange_len},
        (struct wire_bytes){.ptr = ch->pub_routing_key, .len = ch->pub_routing_key_len},
        f->payload, &h.props, h.body_size);
    if (h.body_size == 0)
        return publish_complete(ch);
    ch->content = CONTENT_BODY;
    return 0;
}

static int handle_content_body(struct channel *ch, const struct wire_frame *f)
{
    if (!message_append_body(ch->pub_msg, f->payload))
        return channel_fail(ch, WIRE_FRAME_ERROR, "body frames exceed the declared body size");
    if (message_complete(ch->pub_msg))
        return publish_complete(ch);
    return 0;
}

static int handle_basic_get(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_get *a = &m->u.basic_get;
    struct wire_bytes queue = a->queue;
    struct queue *q;
    struct qentry e;
    struct wire_basic_get_ok ok;

    if (channel_expand_queue_name(ch, &queue) != 0 ||
        channel_permit(ch, AUTH_OP_BASIC_GET, queue, (struct wire_bytes){0}) != 0)
        return -1;
    if ((q = channel_find_queue(ch, queue)) == NULL)
        return -1;
    if (q->stream != NULL)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED,
                            "basic.get not supported by stream queues queue " NAME_FMT
                            " in vhost " NAME_FMT,
                            NAME_ARG(q->name), VHOST_ARG(ch));
    queue_touch(q);
    if (!queue_pop(q, &e)) {
        conn_send_method(ch->conn, ch->id, WIRE_BASIC_GET_EMPTY,
                         &(struct wire_basic_get_empty){0});
        return 0;
    }
    ok = (struct wire_basic_get_ok){
        .delivery_tag = ++ch->next_tag,
        .redelivered = e.redelivered,
        .exchange = e.msg->exchange,
        .routing_key = e.msg->routing_key,
        .message_count = queue_ready_count(q),
    };
    conn_send_content(ch->conn, ch->id, WIRE_BASIC_GET_OK, &ok, e.msg);
    if (a->no_ack) {
        persist_left(q, e.msg);
        message_unref(e.msg);
        return 0;
    }
    if (e.deliveries == 0 && !e.redelivered)
        persist_delivered(q, e.msg);
    queue_ref(q);
    q->unacked++;
    q->unacked_bytes += message_bytes(e.msg);
    unacked_push(ch, &(struct delivery){.tag = ok.delivery_tag,
                                        .msg = e.msg,
                                        .q = q,
                                        .seq = e.seq,
                                        .deliveries = e.deliveries,
                                        .delivered_ms = loop_now_ms(ch),
                                        .expires_at_ms = e.expires_at_ms});
    return 0;
}

/* In a transaction, acks, nacks and rejects take their tags now, as RabbitMQ does (settling
 * one again is an unknown tag, basic.recover leaves it alone), and apply at commit. */
static int tx_settle(struct channel *ch, uint32_t method_id, uint64_t tag, bool multiple,
                     bool requeue)
{
    ptrdiff_t found = -1;

    if ((tag != 0 || !multiple) && (found = unacked_find(ch, tag, PICK_OUTSTANDING)) < 0)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED, "unknown delivery tag %" PRIu64, tag);
    if (!multiple) {
        unacked_at(ch, (size_t)found)->tx_settled = true;
    } else {
        /* Tag 0 means every delivery outstanding now: the op names the last of them, so a
         * later delivery settled otherwise in the same transaction is not swept along. */
        size_t end = found >= 0 ? (size_t)found + 1 : ch->unacked_len;
        for (size_t i = 0; i < end; i++) {
            struct delivery *d = unacked_at(ch, i);
            if (picked(d, PICK_OUTSTANDING)) {
                d->tx_settled = true;
                tag = d->tag;
            }
        }
        if (tag == 0)
            return 0; /* nothing outstanding: nothing to do at commit */
    }
    if (ch->tx_len == ch->tx_cap) {
        ch->tx_cap = ch->tx_cap ? ch->tx_cap * 2 : 16;
        ch->tx_ops = xrealloc(ch->tx_ops, ch->tx_cap * sizeof *ch->tx_ops);
    }
    ch->tx_ops[ch->tx_len++] = (struct tx_op){
        .method_id = method_id, .tag = tag, .multiple = multiple, .requeue = requeue};
    return 0;
}

static enum settle_kind settle_kind_of(uint32_t method_id, bool requeue)
{
    if (method_id == WIRE_BASIC_ACK)
        return SETTLE_ACK;
    return requeue ? SETTLE_REQUEUE : SETTLE_DISCARD;
}

static int handle_basic_ack(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_ack *a = &m->u.basic_ack;
    if (ch->tx_mode)
        return tx_settle(ch, m->id, a->delivery_tag, a->multiple, false);
    return settle_tags(ch, a->delivery_tag, a->multiple, SETTLE_ACK, PICK_OUTSTANDING);
}

/* RabbitMQ refuses nack and reject of a stream's delivery. */
static int refuse_stream_settle(struct channel *ch, uint64_t tag)
{
    ptrdiff_t i = unacked_find(ch, tag, PICK_OUTSTANDING);
    struct delivery *d = i >= 0 ? unacked_at(ch, (size_t)i) : NULL;

    if (d == NULL || d->q->stream == NULL)
        return 0;
    return channel_fail(ch, WIRE_NOT_IMPLEMENTED,
                        "basic.nack and basic.reject not supported by stream queues queue " NAME_FMT
                        " in vhost " NAME_FMT,
                        NAME_ARG(d->q->name), VHOST_ARG(ch));
}

static int handle_basic_nack(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_nack *a = &m->u.basic_nack;
    if (refuse_stream_settle(ch, a->delivery_tag) != 0)
        return -1;
    if (ch->tx_mode)
        return tx_settle(ch, m->id, a->delivery_tag, a->multiple, a->requeue);
    return settle_tags(ch, a->delivery_tag, a->multiple, settle_kind_of(m->id, a->requeue),
                       PICK_OUTSTANDING);
}

static int handle_basic_reject(struct channel *ch, const struct wire_method *m)
{
    const struct wire_basic_reject *a = &m->u.basic_reject;
    if (refuse_stream_settle(ch, a->delivery_tag) != 0)
        return -1;
    if (ch->tx_mode)
        return tx_settle(ch, m->id, a->delivery_tag, false, a->requeue);
    return settle_tags(ch, a->delivery_tag, false, settle_kind_of(m->id, a->requeue),
                       PICK_OUTSTANDING);
}

/* basic.recover requeues every unacked delivery. Like RabbitMQ, Warren does not redeliver
 * to the same consumer (requeue=false) and answers that with 540. */
static int handle_basic_recover(struct channel *ch, const struct wire_method *m)
{
    if (!m->u.basic_recover.requeue)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED, "requeue=false");
    requeue_all(ch, PICK_OUTSTANDING);
    conn_send_method(ch->conn, ch->id, WIRE_BASIC_RECOVER_OK, &(struct wire_basic_recover_ok){0});
    return 0;
}

static int handle_basic_recover_async(struct channel *ch, const struct wire_method *m)
{
    if (!m->u.basic_recover_async.requeue)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED, "requeue=false");
    requeue_all(ch, PICK_OUTSTANDING);
    return 0;
}

/* ---- confirm and tx -------------------------------------------------------------------- */

static int handle_confirm_select(struct channel *ch, const struct wire_method *m)
{
    if (ch->tx_mode)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                            "cannot switch from tx to confirm mode");
    ch->confirm_mode = true;
    if (!m->u.confirm_select.nowait)
        conn_send_method(ch->conn, ch->id, WIRE_CONFIRM_SELECT_OK,
                         &(struct wire_confirm_select_ok){0});
    return 0;
}

static int handle_tx_select(struct channel *ch, const struct wire_method *m)
{
    (void)m;
    if (ch->confirm_mode)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                            "cannot switch from confirm to tx mode");
    ch->tx_mode = true;
    conn_send_method(ch->conn, ch->id, WIRE_TX_SELECT_OK, &(struct wire_tx_select_ok){0});
    return 0;
}

static int handle_tx_commit(struct channel *ch, const struct wire_method *m)
{
    size_t n = ch->tx_len;
    int rc = 0;

    (void)m;
    if (!ch->tx_mode)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED, "channel is not transactional");
    ch->tx_len = 0;
    for (size_t i = 0; i < n; i++) {
        struct tx_op *op = &ch->tx_ops[i];
        if (rc != 0) {
            message_unref(op->msg);
            continue;
        }
        if (op->method_id == WIRE_BASIC_PUBLISH)
            rc = publish_route(ch, op->msg, op->mandatory, NULL, NULL, NULL);
        else
            rc = settle_tags(ch, op->tag, op->multiple, settle_kind_of(op->method_id, op->requeue),
                             PICK_TX_SETTLED);
    }
    if (rc == 0)
        conn_send_method(ch->conn, ch->id, WIRE_TX_COMMIT_OK, &(struct wire_tx_commit_ok){0});
    return rc;
}

static int handle_tx_rollback(struct channel *ch, const struct wire_method *m)
{
    (void)m;
    if (!ch->tx_mode)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED, "channel is not transactional");
    /* Publishes are dropped; acknowledgements are forgotten, so those deliveries stay
     * unacked, as in RabbitMQ. */
    for (size_t i = 0; i < ch->tx_len; i++)
        message_unref(ch->tx_ops[i].msg);
    ch->tx_len = 0;
    for (size_t i = 0; i < ch->unacked_len; i++)
        unacked_at(ch, i)->tx_settled = false;
    conn_send_method(ch->conn, ch->id, WIRE_TX_ROLLBACK_OK, &(struct wire_tx_rollback_ok){0});
    return 0;
}

/* access.request is gone from 0-9-1 but old clients still send it; RabbitMQ answers with
 * ticket 1. */
static int handle_access_request(struct channel *ch, const struct wire_method *m)
{
    (void)m;
    conn_send_method(ch->conn, ch->id, WIRE_ACCESS_REQUEST_OK,
                     &(struct wire_access_request_ok){.ticket = 1});
    return 0;
}

/* ---- Dispatch -------------------------------------------------------------------------- */

typedef int (*method_handler)(struct channel *ch, const struct wire_method *m);

static const struct {
    uint32_t id;
    method_handler handle;
} handlers[] = {
    /* The per-message methods first: the table is searched in order. */
    {WIRE_BASIC_PUBLISH, handle_basic_publish},
    {WIRE_BASIC_ACK, handle_basic_ack},
    {WIRE_BASIC_NACK, handle_basic_nack},
    {WIRE_BASIC_REJECT, handle_basic_reject},
    {WIRE_BASIC_GET, handle_basic_get},
    {WIRE_BASIC_QOS, handle_basic_qos},
    {WIRE_BASIC_CONSUME, handle_basic_consume},
    {WIRE_BASIC_CANCEL, handle_basic_cancel},
    {WIRE_BASIC_RECOVER, handle_basic_recover},
    {WIRE_BASIC_RECOVER_ASYNC, handle_basic_recover_async},
    {WIRE_CHANNEL_FLOW, handle_channel_flow},
    {WIRE_CHANNEL_FLOW_OK, handle_channel_flow_ok},
    {WIRE_EXCHANGE_DECLARE, channel_handle_exchange_declare},
    {WIRE_EXCHANGE_DELETE, channel_handle_exchange_delete},
    {WIRE_QUEUE_DECLARE, channel_handle_queue_declare},
    {WIRE_QUEUE_BIND, channel_handle_queue_bind},
    {WIRE_QUEUE_UNBIND, channel_handle_queue_unbind},
    {WIRE_QUEUE_PURGE, channel_handle_queue_purge},
    {WIRE_QUEUE_DELETE, channel_handle_queue_delete},
    {WIRE_EXCHANGE_BIND, channel_handle_exchange_bind},
    {WIRE_EXCHANGE_UNBIND, channel_handle_exchange_unbind},
    {WIRE_CONFIRM_SELECT, handle_confirm_select},
    {WIRE_TX_SELECT, handle_tx_select},
    {WIRE_TX_COMMIT, handle_tx_commit},
    {WIRE_TX_ROLLBACK, handle_tx_rollback},
    {WIRE_ACCESS_REQUEST, handle_access_request},
};

static int handle_method(struct channel *ch, const struct wire_frame *f)
{
    struct wire_method m;
    const struct wire_method_info *info;
    int rc = wire_method_decode(f->payload, &m);

    if (rc != WIRE_OK)
        return conn_method_error(ch->conn, f->payload, rc);
    for (size_t i = 0; i < ARRAY_LEN(handlers); i++) {
        if (handlers[i].id == m.id)
            return handlers[i].handle(ch, &m);
    }
    info = wire_method_info(m.id);
    if (info != NULL && info->channel0_only)
        return channel_fail(ch, WIRE_COMMAND_INVALID, "method %s is only valid on channel 0",
                            info->name);
    return channel_fail(ch, WIRE_NOT_IMPLEMENTED, "method %s is not implemented",
                        info ? info->name : "unknown");
}

int channel_handle_frame(struct channel *ch, const struct wire_frame *f)
{
    switch (ch->content) {
    case CONTENT_NONE:
        if (f->type == WIRE_FRAME_METHOD)
            return handle_method(ch, f);
        return channel_fail(ch, WIRE_UNEXPECTED_FRAME,
                            "expected method frame, got non method frame instead");
    case CONTENT_HEADER:
        if (f->type == WIRE_FRAME_HEADER)
            return handle_content_header(ch, f);
        return channel_fail(ch, WIRE_UNEXPECTED_FRAME,
                            "expected content header for class 60, got non content header frame "
                            "instead");
    case CONTENT_BODY:
        if (f->type == WIRE_FRAME_BODY)
            return handle_content_body(ch, f);
        return channel_fail(ch, WIRE_UNEXPECTED_FRAME,
                            "expected content body, got non content body frame instead");
    }
    assert(false);
    return -1;
}
