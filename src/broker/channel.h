/* A channel: method dispatch for channels 1..channel_max, content assembly for publishes,
 * delivery tags, unacked deliveries, consumers (a queue reaches them through struct
 * consumer_ops, src/broker/queue.h) and prefetch, publisher confirms and transactions. */
#ifndef WARREN_SRC_BROKER_CHANNEL_H
#define WARREN_SRC_BROKER_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp/frame.h"
#include "src/base/hmap.h"

struct conn;
struct consumer;
struct message;
struct qentry;
struct queue;
struct server;

/* A delivery awaiting ack. The channel keeps them in a ring ordered by tag; an acked one in
 * the middle becomes a hole (msg NULL) that leaves when it reaches the head, so ack,
 * multiple-ack and requeue cost O(1) per delivery. */
struct delivery {
    uint64_t tag;
    struct message *msg;
    struct queue *q;           /* holds a queue reference */
    struct consumer *consumer; /* NULL for basic.get, or once the consumer is gone */
    uint64_t seq;
    uint32_t deliveries;
    uint64_t delivered_ms; /* for the consumer acknowledgement timeout */
    uint64_t expires_at_ms; /* the queue entry's deadline, kept for a requeue; 0 none */
    bool tx_settled;       /* acked, nacked or rejected in the open transaction: its tag is
                              taken, its credit held until tx.commit (tx.rollback frees it) */
};

enum confirm_state {
    CONFIRM_WAIT, /* stored: waiting for its fsync */
    CONFIRM_ACK,
    CONFIRM_NACK,
};

struct confirm_slot {
    uint64_t store_seq;  /* CONFIRM_WAIT: the store sequence to wait for */
    uint64_t stream_seq; /* CONFIRM_WAIT: and the stream logs' sync sequence */
    uint8_t state;
};

/* A step of a transaction, applied at tx.commit. */
struct tx_op {
    uint32_t method_id;   /* WIRE_BASIC_PUBLISH, _ACK, _NACK or _REJECT */
    struct message *msg;  /* publish: the message (one reference) */
    bool mandatory;       /* publish */
    uint64_t tag;         /* ack, nack, reject */
    bool multiple;
    bool requeue;
};

enum channel_state {
    CHANNEL_OPEN,
    CHANNEL_CLOSING, /* we sent channel.close; everything but close-ok is dropped */
};

enum content_state {
    CONTENT_NONE,   /* expecting a method */
    CONTENT_HEADER, /* after basic.publish: expecting the content header */
    CONTENT_BODY,   /* expecting body frames */
};

struct channel {
    struct conn *conn;
    uint16_t id;
    enum channel_state state;
    bool flow_active; /* channel.flow from the client: false stops deliveries */

    /* The publish being assembled. */
    enum content_state content;
    uint8_t pub_exchange[256];
    uint8_t pub_exchange_len;
    uint8_t pub_routing_key[256];
    uint8_t pub_routing_key_len;
    bool pub_mandatory;
    bool pub_permitted;       /* write on pub_exchange was granted ... */
    uint64_t auth_generation; /* ... while the user database is at this generation */
    struct message *pub_msg;

    uint64_t next_tag; /* the last delivery tag used */
    struct delivery *unacked;
    size_t unacked_head, unacked_len, unacked_cap;
    uint32_t unacked_live;     /* entries that are not holes */
    uint32_t consumer_unacked; /* live entries from consumers (global prefetch counts these) */

    /* Publisher confirms: every publish gets the next sequence number; confirms go out in
     * one basic.ack (multiple when it covers several) per loop turn. */
    bool confirm_mode;
    uint64_t publish_seq; /* the last sequence number given */
    /* One slot per publish not yet confirmed to the client, in publish order; slot i is
     * publish confirm_base + i. Confirms go out in order, so one that waits for an fsync
     * holds back those after it (for at most one group commit). */
    struct confirm_slot *confirms;
    size_t confirm_head, confirm_len, confirm_cap;
    uint64_t confirm_base;
    uint64_t confirmed; /* publishes confirmed to the client (basic.ack), for statistics */
    bool waiting_durable; /* in the server's list of channels waiting for an fsync */
    struct channel *next_waiting, *prev_waiting;

    bool tx_mode;
    struct tx_op *tx_ops;
    size_t tx_len, tx_cap;

    /* Direct reply-to: the consumer of amq.rabbitmq.reply-to on this channel, if any. */
    struct wire_bytes reply_tag; /* owned; empty if none */
    char reply_address[96];      /* amq.rabbitmq.reply-to.<token>, registered with the server */

    /* The queue last declared on this channel (RabbitMQ's most_recently_declared_queue):
     * what an empty queue name means in queue.bind, queue.unbind, queue.purge, queue.delete,
     * basic.consume and basic.get. Empty until a queue.declare succeeds. */
    uint8_t last_queue[256];
    uint8_t last_queue_len;

    struct hmap consumers; /* tag -> struct consumer */
    uint16_t prefetch_consumer; /* basic.qos global=false: applies to consumers created after */
    uint16_t prefetch_channel;  /* basic.qos global=true: shared by the channel's consumers */
    size_t resume_slot; /* consumers' slot where channel_resume() starts its walk */
};

struct channel *channel_new(struct conn *c, uint16_t id);
/* Cancels the channel's consumers, requeues its unacked deliveries, frees it. */
void channel_free(struct channel *ch);

/* Handles one frame for this channel (method, header or body). Returns 0, or -1 after
 * recording an error with channel_fail() (the connection turns it into channel.close or
 * connection.close, as the reply code's class says). */
int channel_handle_frame(struct channel *ch, const struct wire_frame *f);

/* Records the error for the frame being handled; always returns -1. The text is prefixed
 * with the code's name, as RabbitMQ does ("NOT_FOUND - no queue 'x' in vhost '/'"). */
int channel_fail(struct channel *ch, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends the confirms that accumulated on the channel this loop turn. */
void channel_flush_confirms(struct channel *ch);
/* The store made everything up to durable_seq durable: every channel of s confirms what
 * waited for it. */
void channel_confirms_durable(struct server *s, uint64_t durable_seq);
/* The stream logs made appends up to stream_seq durable (src/broker/stream.h). */
void channel_streams_durable(struct server *s, uint64_t stream_seq);
/* The store failed: every confirm still waiting for an fsync is a basic.nack, since the
 * message may not be on disk. */
void channel_confirms_failed(struct server *s);

/* Delivers m to the direct reply-to consumer of ch (publish to amq.rabbitmq.reply-to.*). */
void channel_deliver_reply(struct channel *ch, struct message *m);

/* True if the oldest unacked delivery of ch is older than timeout_ms at now (the loop's
 * time, ev_now() in milliseconds, as deliveries are stamped). */
bool channel_ack_overdue(struct channel *ch, uint64_t now, uint32_t timeout_ms);

/* Consumers of this channel whose queues have ready messages get another chance. */
void channel_resume(struct channel *ch);

#endif
