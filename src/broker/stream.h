/* Stream queues (x-queue-type=stream), as RabbitMQ's streams look to AMQP 0-9-1 clients: an
 * append-only log on disk (src/store/stream_log.h) in which every message gets an offset,
 * read by any number of consumers, each from its own offset, none removing anything.
 *
 * - Declared durable, not exclusive, not auto-delete; x-max-length-bytes, x-max-age and
 *   x-stream-max-segment-size-bytes (also as policies) set retention, which removes whole
 *   segments; the arguments of features streams lack are refused (stream_refuses_arg).
 * - A publish appends the message; its confirm waits for the log's fsync (every message,
 *   persistent or not, is written, as RabbitMQ does).
 * - A consumer needs a prefetch (basic.qos) and manual acks: an ack only gives credit back.
 *   x-stream-offset picks where it starts (first, last, next, an offset, a timestamp, or an
 *   interval such as "1h" back from now); every delivery carries x-stream-offset. A consumer
 *   at the end gets new messages as they are appended.
 * - x-stream-filter-value on a publish, x-stream-filter and x-stream-match-unfiltered on a
 *   consume filter what a consumer gets (RabbitMQ 3.13), exactly here: no false positives.
 * - The queue keeps nothing per message in memory: consumers read from disk.
 *
 * The log lives at DATA_DIR/streams/<queue's store id>/ and is opened when first used; a
 * broker without a data directory refuses publishes to streams (nacked). */
#ifndef WARREN_SRC_BROKER_STREAM_H
#define WARREN_SRC_BROKER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct queue;
struct consumer;
struct message;
struct persist;
struct hmap;

/* True for an argument a stream refuses at declare ("invalid arg ... of queue type
 * rabbit_stream_queue"). */
bool stream_refuses_arg(const char *name);
/* x-max-age: digits and one unit of Y M D h m s, as milliseconds; -1 if malformed. */
int64_t stream_parse_max_age(struct wire_bytes v);

/* Attaches a stream to q (x-queue-type=stream), and detaches it (the log is closed; with
 * destroy its files are removed: the queue was deleted). */
void stream_attach(struct queue *q);
void stream_detach(struct queue *q, bool destroy);
/* The queue's arguments changed (a policy): apply the retention they say. */
void stream_limits_changed(struct queue *q);

/* Appends m. Returns the sequence its confirm waits for (stream_sync), 0 if the stream
 * refused it (no data directory, the disk failed): the publisher's confirm is a nack. */
uint64_t stream_push(struct queue *q, struct message *m);

/* basic.consume on a stream: checks what RabbitMQ checks of the consumer (prefetch, acks,
 * x-stream-offset, x-stream-filter) and places c in the log. 0, or -1 with the AMQP reply
 * code in *code and the text in err. */
int stream_consumer_start(struct queue *q, struct consumer *c, struct wire_bytes args,
                          bool no_ack, uint16_t prefetch, uint16_t *code, char *err,
                          size_t err_size);
void stream_consumer_stop(struct consumer *c);

/* Delivers to every consumer with credit what it has not read yet. */
void stream_dispatch(struct queue *q);

struct stream_info {
    bool open;             /* the log is there (else the rest is 0) */
    uint64_t first_offset; /* first offset still in the log */
    uint64_t next_offset;  /* the offset the next message gets */
    uint64_t messages;     /* next - first */
    uint64_t disk_bytes;
    uint64_t segments;
};
/* Opens the log if it is not open yet (after a restart), which changes nothing a reader
 * of q can see: hence const, for the management API. */
void stream_info(const struct queue *q, struct stream_info *out);
/* The offset consumer c reads next. */
uint64_t stream_consumer_offset(const struct consumer *c);

/* The group commit of the stream logs, owned by the persistence (persist_open creates it;
 * persist_close detaches every stream of the vhosts, then frees it). */
struct stream_sync;
struct ev_loop;
struct stream_sync *stream_sync_start(struct ev_loop *loop, struct persist *p);
void stream_detach_all(struct hmap *vhosts);

#endif
