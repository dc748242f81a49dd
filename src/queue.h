/* A queue: its ready messages in order, its consumers, and handing one to the other.
 *
 * Ready messages sit in a ring in sequence order. A message that comes back (nack, reject,
 * recover, a channel that closed with it unacked) goes back to its original position, found
 * by its sequence number, with redelivered set. Consumers are served round-robin; one that
 * has no credit (prefetch reached, channel flow off, its connection's socket backed up) is
 * skipped until queue_dispatch() is called again. */
#ifndef WARREN_SRC_QUEUE_H
#define WARREN_SRC_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp/wire.h"

struct message;
struct channel;
struct conn;
struct vhost;
struct xbinding;

/* One ready message. */
struct qentry {
    struct message *msg;
    uint64_t seq;         /* position in the queue, for requeue in place */
    uint32_t deliveries;  /* how often it was delivered before */
    bool redelivered;
};

struct consumer {
    struct wire_bytes tag; /* owned */
    struct channel *ch;
    struct queue *q;
    bool no_ack;
    bool exclusive;
    int32_t priority;  /* x-priority: higher priorities are served first */
    uint16_t prefetch; /* per-consumer limit (basic.qos global=false before consume); 0 none */
    uint32_t unacked;  /* deliveries awaiting ack */
};

struct queue {
    unsigned char kind;     /* DEST_QUEUE (src/exchange.h) */
    struct wire_bytes name; /* owned */
    struct vhost *vhost;
    bool durable;
    bool exclusive;
    bool auto_delete;
    bool deleted;       /* gone from its vhost, kept alive by deliveries still unacked */
    struct conn *owner; /* the declaring connection, for exclusive queues */
    struct wire_bytes arguments; /* owned encoded table entries */

    struct qentry *ring;
    size_t head, len, cap;
    uint64_t next_seq;
    uint64_t ready_bytes;

    struct consumer **consumers; /* by priority, highest first; in arrival order within one */
    size_t consumer_count, consumer_cap, next_consumer;
    bool had_consumer;       /* auto-delete happens only once one has come and gone */
    bool single_active;      /* x-single-active-consumer: only the first consumer receives */
    bool has_exclusive_consumer;

    struct xbinding *bindings; /* bindings whose destination is this queue */
    uint64_t route_mark;       /* routing generation that last picked it (duplicate check) */
    uint32_t refs;             /* the vhost's, plus one per unacked delivery */
    bool dispatching;
};

struct queue *queue_new(struct vhost *vh, struct wire_bytes name, bool durable, bool exclusive,
                        bool auto_delete, struct wire_bytes arguments);
void queue_ref(struct queue *q);
void queue_unref(struct queue *q);

/* Appends a message (takes a reference of its own) and delivers what it can. */
void queue_push(struct queue *q, struct message *m);
/* Puts an unacked message back at its original position, redelivered; the caller's
 * reference moves into the queue. Call queue_dispatch() afterwards. */
void queue_requeue(struct queue *q, struct message *m, uint64_t seq, uint32_t deliveries);
/* Takes the head message for basic.get; false if the queue is empty. */
bool queue_pop(struct queue *q, struct qentry *out);
/* Delivers ready messages to consumers with credit. */
void queue_dispatch(struct queue *q);
/* Drops every ready message; returns how many. */
uint32_t queue_purge(struct queue *q);

static inline uint32_t queue_ready_count(const struct queue *q)
{
    return (uint32_t)q->len;
}

void queue_add_consumer(struct queue *q, struct consumer *c);
/* Removes c; the queue may be deleted as a result (auto-delete), which the return says. */
bool queue_remove_consumer(struct queue *q, struct consumer *c);

/* Removes the queue from its vhost: unbinds it, cancels its consumers (notifying clients that
 * asked for it), drops its ready messages. Returns the number of ready messages dropped. The
 * struct lives on while deliveries reference it. */
uint32_t queue_delete(struct queue *q);

#endif
