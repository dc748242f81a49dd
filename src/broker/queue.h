/* A queue: its ready messages in order, its consumers, and handing one to the other; and
 * what it does with bad messages: TTL expiry, length limits, delivery limits and
 * dead-lettering.
 *
 * Ready messages sit in rings in sequence order, one ring per priority level (one level
 * unless x-max-priority is set). A message that comes back (nack, reject, recover, a channel
 * that closed with it unacked) goes back to its original position, found by its sequence
 * number, with redelivered set. Consumers are served by priority, round-robin within one
 * level; one without credit (prefetch reached, channel flow off, its connection's socket
 * backed up) is skipped until queue_dispatch() is called again. */
#ifndef WARREN_SRC_BROKER_QUEUE_H
#define WARREN_SRC_BROKER_QUEUE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "amqp/wire.h"
#include "src/broker/spill.h"

struct store_recovered;

struct message;
struct channel;
struct conn;
struct vhost;
struct xbinding;
struct stream;

/* One ready message. */
struct qentry {
    struct message *msg;
    uint64_t seq;           /* position in the queue, for requeue in place */
    uint64_t expires_at_ms; /* monotonic deadline from x-message-ttl or expiration; 0 none */
    uint32_t deliveries;    /* how often it was delivered and came back */
    bool redelivered;
};

struct consumer;

/* What a queue asks of whoever consumes from it. The queue calls these and nothing else of
 * its consumers, so it knows no channel or connection: a channel (src/broker/channel.c) is
 * the consumer today; a cluster replica or a stream reader can be another. */
struct consumer_ops {
    /* True if c has credit now (prefetch, flow, a writable connection). */
    bool (*can_take)(const struct consumer *c);
    /* Sends e to c; takes e's reference. May close the channel, removing consumers. */
    void (*deliver)(struct consumer *c, struct qentry *e);
    /* The queue went away: c must leave it (queue_remove_consumer) and be forgotten. */
    void (*cancelled)(struct consumer *c);
};

struct stream_reader;

struct consumer {
    const struct consumer_ops *ops;
    struct stream_reader *stream; /* a consumer of a stream: its position (src/broker/stream.h) */
    struct wire_bytes tag; /* owned */
    struct channel *ch;    /* the channel that owns it (never dereferenced by the queue) */
    struct queue *q;
    bool no_ack;
    bool exclusive;
    int32_t priority; /* x-priority: higher priorities are served first */
    uint16_t prefetch; /* per-consumer limit (basic.qos global=false before consume); 0 none */
    uint32_t unacked;  /* deliveries awaiting ack */
};

enum queue_overflow {
    OVERFLOW_DROP_HEAD,
    OVERFLOW_REJECT_PUBLISH,
    OVERFLOW_REJECT_PUBLISH_DLX,
};

/* The x- arguments a queue acts on, checked at declare. -1 means not set. */
struct queue_args {
    int64_t message_ttl_ms;   /* x-message-ttl */
    int64_t expires_ms;       /* x-expires */
    int64_t max_length;       /* x-max-length */
    int64_t max_length_bytes; /* x-max-length-bytes */
    int64_t delivery_limit;   /* x-delivery-limit (or the broker's default) */
    enum queue_overflow overflow;
    uint8_t max_priority;    /* x-max-priority; 0 for none */
    bool single_active;      /* x-single-active-consumer */
    struct wire_bytes dlx;   /* x-dead-letter-exchange (borrows the queue's arguments) */
    struct wire_bytes dlrk;  /* x-dead-letter-routing-key (borrows) */
    bool has_dlx, has_dlrk;
    /* x-queue-type=stream (src/broker/stream.h): an append-only log, not a queue of ready
     * messages; the arguments above that streams refuse are never set for one. */
    bool stream;
    int64_t max_age_ms;           /* x-max-age ("7D", "12h", ...) as milliseconds; -1 none */
    int64_t stream_segment_bytes; /* x-stream-max-segment-size-bytes; -1: the default */
};

/* Parses and checks a queue's arguments. Returns 0, or -1 with RabbitMQ's reason in err
 * (without the "PRECONDITION_FAILED - " prefix). args borrowed: out points into it. */
int queue_args_parse(struct wire_bytes args, struct wire_bytes queue_name,
                     struct wire_bytes vhost_name, int64_t default_delivery_limit,
                     struct queue_args *out, char *err, size_t err_size);

/* A queue declared again must repeat the arguments RabbitMQ compares (x-message-ttl,
 * x-max-length, ...; integers of any width compare by value; unknown arguments are not
 * compared). Returns 0, or -1 with RabbitMQ's "inequivalent arg" text in err. */
int queue_args_equivalent(struct wire_bytes current, struct wire_bytes received,
                          struct wire_bytes queue_name, struct wire_bytes vhost_name, char *err,
                          size_t err_size);

struct qring {
    struct qentry *ring;
    size_t head, len, cap; /* cap is a power of two */
};

/* What the queues of a broker may keep in memory together. Past the limit a queue keeps only
 * QUEUE_MIN_WINDOW ready messages near its head and pages the rest of its backlog to disk
 * (as beyond its own window), so that many queues with backlogs cannot take the machine's
 * memory between them. Only queues that can page (a data directory, no priorities) count. */
struct queue_budget {
    uint64_t used;  /* charged for the ready messages queues hold in memory */
    uint64_t limit; /* 0: no limit */
};

#define QUEUE_MIN_WINDOW 64
/* What a ready message in memory is charged besides its body: its queue entry and its share
 * of the message block, measured at about 384 bytes for a 16-byte body. */
#define QUEUE_ENTRY_CHARGE 384

/* Counters, for statistics and metrics. */
struct queue_stats {
    uint64_t published;
    uint64_t delivered;
    uint64_t redelivered;
    uint64_t acked;
    uint64_t expired;
    uint64_t dead_lettered;
    uint64_t dropped; /* over a limit with nowhere to dead-letter to */
};

struct queue {
    unsigned char kind;     /* DEST_QUEUE (src/broker/exchange.h) */
    struct wire_bytes name; /* owned */
    struct vhost *vhost;
    bool durable;
    bool exclusive;
    bool auto_delete;
    bool deleted;       /* gone from its vhost, kept alive by deliveries still unacked */
    struct conn *owner; /* the declaring connection, for exclusive queues */
    struct wire_bytes arguments; /* owned encoded table entries, as declared */
    struct wire_bytes effective; /* owned: arguments with the matching policies folded in */
    struct queue_args args;      /* parsed from effective (borrows it) */

    struct qring *levels; /* levels[0] lowest priority; one level without x-max-priority */
    uint16_t level_count;
    size_t len; /* ready messages in memory, in all levels */
    /* Ready messages beyond the memory window, on disk in order after those in memory (only
     * single-level queues spill; the vhost says whether there is a data directory). */
    struct spill spill;
    bool can_spill;
    uint64_t next_seq;
    uint64_t ready_bytes;
    uint64_t next_expiry_ms; /* earliest expires_at_ms of a ready message; 0 none */
    ev_timer ttl_timer;
    ev_timer expires_timer; /* x-expires */
    uint64_t last_used_ms;

    struct consumer **consumers; /* by priority, highest first; in arrival order within one */
    size_t consumer_count, consumer_cap, next_consumer;
    bool had_consumer;       /* auto-delete happens only once one has come and gone */
    bool has_exclusive_consumer;

    struct xbinding *bindings; /* bindings whose destination is this queue */
    uint64_t route_mark;       /* routing generation that last picked it (duplicate check) */
    size_t requeue_pos;        /* while a channel groups requeued deliveries by queue: this
                                  queue's count, then where its next one goes; 0 otherwise */
    uint32_t refs;             /* the vhost's, plus one per unacked delivery */
    uint32_t store_id;         /* the message store's name for a durable queue; 0 none */
    uint32_t unacked;          /* deliveries from this queue awaiting ack */
    uint64_t unacked_bytes;    /* their bodies' bytes */
    bool dispatching;
    struct queue_stats stats;
    struct stream *stream; /* x-queue-type=stream: its log (src/broker/stream.h); else NULL */
};

/* A queue with checked arguments (see queue_args_parse). */
struct queue *queue_new(struct vhost *vh, struct wire_bytes name, bool durable, bool exclusive,
                        bool auto_delete, struct wire_bytes arguments);
/* The policies of its vhost changed: apply what they now say (src/broker/policy.h). */
void queue_policies_changed(struct queue *q);
void queue_ref(struct queue *q);
void queue_unref(struct queue *q);

/* Appends a message (taking a reference of its own) and delivers what it can. Returns
 * false if the queue refused it (x-overflow reject-publish at its limit): the publisher's
 * confirm is then a nack. */
bool queue_push(struct queue *q, struct message *m);
/* Puts unacked messages back at their original positions, redelivered, in one pass over
 * the queue: time linear in n plus the ready messages that must move (those interleaved
 * with the batch, on its shorter side), never their product; the entries are sorted only if
 * they are not in seq order already. Of each entry only msg, seq, expires_at_ms and
 * deliveries are read; deliveries counts this return: past the delivery limit the message is
 * dead-lettered (or dropped) instead, and past its deadline (it keeps the one it had) it
 * expires instead. The entries' references move into the queue; the array stays the
 * caller's, its contents reordered. Call queue_dispatch() afterwards, once for the batch. */
void queue_requeue_many(struct queue *q, struct qentry *e, size_t n);
/* The same for one message. */
void queue_requeue(struct queue *q, struct message *m, uint64_t seq, uint32_t deliveries,
                   uint64_t expires_at_ms);
/* Appends a message recovered from the store at start (the caller's reference is shared:
 * the queue takes one of its own); r is what the store recovered: delivery count, delivered
 * flag, and the wall-clock publish time and deadline its expiry is rebuilt from (a message
 * past its deadline expires at once, dead-lettered "expired" where the queue says so). */
void queue_restore(struct queue *q, struct message *m, const struct store_recovered *r);
/* The message was rejected without requeue: dead-letter it (reason "rejected") or drop it.
 * Takes the caller's reference. */
void queue_reject(struct queue *q, struct message *m);
/* Takes the head message for basic.get (expired ones are removed first); false if empty. */
bool queue_pop(struct queue *q, struct qentry *out);
/* Delivers ready messages to consumers with credit. */
void queue_dispatch(struct queue *q);
/* Drops every ready message; returns how many. */
uint32_t queue_purge(struct queue *q);
/* The queue was used (consume, get, declare): x-expires starts again. */
void queue_touch(struct queue *q);

/* Ready messages, in memory and spilled. */
static inline uint32_t queue_ready_count(const struct queue *q)
{
    return (uint32_t)(q->len + q->spill.count);
}

/* True if a message appended now would go to the spill file rather than memory. */
bool queue_spills(const struct queue *q);
/* Appends a recovered persistent message by its store location only (it is beyond the
 * memory window, so it is not read now). */
void queue_restore_loc(struct queue *q, const struct store_recovered *r);

void queue_add_consumer(struct queue *q, struct consumer *c);
/* Removes c; the queue may be deleted as a result (auto-delete), which the return says. */
bool queue_remove_consumer(struct queue *q, struct consumer *c);

/* Removes the queue from its vhost: unbinds it, cancels its consumers (notifying clients that
 * asked for it), drops its ready messages. Returns the number of ready messages dropped. The
 * struct lives on while deliveries reference it. */
uint32_t queue_delete(struct queue *q);

#endif
