#include "src/queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "src/channel.h"
#include "src/exchange.h"
#include "src/message.h"
#include "src/util.h"
#include "src/vhost.h"

struct queue *queue_new(struct vhost *vh, struct wire_bytes name, bool durable, bool exclusive,
                        bool auto_delete, struct wire_bytes arguments)
{
    struct queue *q = xcalloc(1, sizeof *q);

    q->kind = DEST_QUEUE;
    q->name = bytes_dup(name);
    q->vhost = vh;
    q->durable = durable;
    q->exclusive = exclusive;
    q->auto_delete = auto_delete;
    q->arguments = bytes_dup(arguments);
    q->refs = 1;
    {
        struct wire_field v;
        if (wire_table_find((struct wire_table){.raw = q->arguments}, "x-single-active-consumer",
                            &v) &&
            v.type == 't')
            q->single_active = v.v.boolean;
    }
    return q;
}

void queue_ref(struct queue *q)
{
    q->refs++;
}

static void queue_free(struct queue *q)
{
    assert(q->len == 0 && q->consumer_count == 0);
    free(q->ring);
    free(q->consumers);
    bytes_free(&q->name);
    bytes_free(&q->arguments);
    free(q);
}

void queue_unref(struct queue *q)
{
    if (q != NULL && --q->refs == 0)
        queue_free(q);
}

static struct qentry *entry_at(const struct queue *q, size_t i)
{
    return &q->ring[(q->head + i) & (q->cap - 1)];
}

static void ring_grow(struct queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 16;
    struct qentry *ring = xmalloc(cap * sizeof *ring);

    for (size_t i = 0; i < q->len; i++)
        ring[i] = *entry_at(q, i);
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

void queue_push(struct queue *q, struct message *m)
{
    if (q->len == q->cap)
        ring_grow(q);
    *entry_at(q, q->len) = (struct qentry){.msg = message_ref(m), .seq = q->next_seq++};
    q->len++;
    q->ready_bytes += message_bytes(m);
    queue_dispatch(q);
}

void queue_requeue(struct queue *q, struct message *m, uint64_t seq, uint32_t deliveries)
{
    size_t pos;

    if (q->deleted) {
        message_unref(m);
        return;
    }
    if (q->len == q->cap)
        ring_grow(q);
    /* Requeued messages are usually older than everything ready, so search from the head. */
    for (pos = 0; pos < q->len && entry_at(q, pos)->seq < seq; pos++)
        ;
    if (pos < q->len / 2) {
        q->head = (q->head + q->cap - 1) & (q->cap - 1);
        for (size_t i = 0; i < pos; i++)
            *entry_at(q, i) = *entry_at(q, i + 1);
    } else {
        for (size_t i = q->len; i > pos; i--)
            *entry_at(q, i) = *entry_at(q, i - 1);
    }
    *entry_at(q, pos) =
        (struct qentry){.msg = m, .seq = seq, .deliveries = deliveries, .redelivered = true};
    q->len++;
    q->ready_bytes += message_bytes(m);
}

bool queue_pop(struct queue *q, struct qentry *out)
{
    if (q->len == 0)
        return false;
    *out = *entry_at(q, 0);
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    q->ready_bytes -= message_bytes(out->msg);
    return true;
}

/* The consumer to serve next: the highest priority level that has a consumer with credit,
 * round-robin within that level. With a single active consumer, only the first. */
static struct consumer *next_consumer(struct queue *q)
{
    size_t i = 0;

    if (q->single_active)
        return channel_consumer_can_take(q->consumers[0]) ? q->consumers[0] : NULL;
    while (i < q->consumer_count) {
        int32_t level = q->consumers[i]->priority;
        size_t end = i, group;

        while (end < q->consumer_count && q->consumers[end]->priority == level)
            end++;
        group = end - i;
        for (size_t k = 0; k < group; k++) {
            struct consumer *c = q->consumers[i + (q->next_consumer + k) % group];
            if (channel_consumer_can_take(c)) {
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
     * flag keeps a nested call from running over the same ring. */
    if (q->dispatching || q->deleted)
        return;
    q->dispatching = true;
    while (q->len > 0 && q->consumer_count > 0 && (c = next_consumer(q)) != NULL) {
        queue_pop(q, &e);
        channel_deliver(c, &e);
    }
    q->dispatching = false;
}

uint32_t queue_purge(struct queue *q)
{
    uint32_t n = (uint32_t)q->len;
    struct qentry e;

    while (queue_pop(q, &e))
        message_unref(e.msg);
    return n;
}

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
    if (c->exclusive)
        q->has_exclusive_consumer = false;
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
    while (q->bindings != NULL)
        exchange_unbind(q->bindings);
    /* Consumers of a deleted queue are cancelled: a client that announced
     * consumer_cancel_notify is told with basic.cancel, as RabbitMQ does. */
    while (q->consumer_count > 0)
        channel_consumer_cancelled_by_broker(q->consumers[q->consumer_count - 1]);
    dropped = queue_purge(q);
    vhost_forget_queue(q->vhost, q);
    queue_unref(q);
    return dropped;
}
