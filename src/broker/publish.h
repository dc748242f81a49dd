/* The last step of every publish, whoever publishes (a channel, the management API):
 * routing a complete message through its exchange and handing it to the queues it reaches. */
#ifndef WARREN_SRC_BROKER_PUBLISH_H
#define WARREN_SRC_BROKER_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct vhost;
struct exchange;
struct message;
struct wire_props;

struct publish_result {
    size_t routed;      /* queues (or a direct reply-to channel) reached; 0: unroutable */
    bool refused;       /* a queue refused it (x-overflow reject-publish) or the store failed */
    uint64_t store_seq; /* the store sequence a publisher confirm waits for; 0 none */
    uint64_t stream_seq; /* the stream logs' sync sequence it waits for too; 0 none */
};

/* Sender-selected distribution: the strings in header (CC or BCC, an array) join the key set
 * of a routing begun with vhost_route_begin(); anything else in it is skipped. */
void publish_add_header_keys(struct vhost *vh, const struct message *msg, const char *header);
/* RabbitMQ refuses a message whose CC or BCC header is there but is not an array (entries
 * of the array that are not strings are skipped, not refused). Returns NULL when the headers
 * are acceptable, else the first bad header, "CC" before "BCC", with its field type in
 * *type. */
const char *publish_bad_routing_header(const struct wire_props *props, uint8_t *type);
/* True for a direct reply-to address (amq.rabbitmq.reply-to.<token>). */
bool publish_is_reply_address(struct wire_bytes name);

/* Routes *msg from x by its routing key and its CC and BCC headers, removes BCC before anyone
 * sees it, writes the message to the store once when it is persistent and bound for durable
 * queues, and appends it to each queue. *msg may be replaced by the copy without BCC; the
 * caller keeps its reference either way. A client's publish goes through server_publish()
 * (src/broker/server.h), which sends direct reply-to addresses to their channel first. */
void publish_deliver(struct vhost *vh, struct exchange *x, struct message **msg,
                     struct publish_result *out);

#endif
