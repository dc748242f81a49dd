/* Broker operations that do not need a channel: declaring and deleting exchanges and queues,
 * binding, purging, publishing and getting one message. The management API runs them on
 * behalf of an HTTP request, definitions import on behalf of a file; the checks and the
 * error texts are those a client of channel.c sees, which are RabbitMQ's.
 *
 * Every function runs on the loop thread that owns the broker state. A failure returns -1
 * and fills a struct ops_error with the AMQP reply code and RabbitMQ's reason, without the
 * "NOT_FOUND - " prefix a channel.close adds (the management API shows the bare reason for
 * most errors, "404 NOT_FOUND - reason" for a few, as RabbitMQ does). */
#ifndef WARREN_SRC_MGMT_OPS_H
#define WARREN_SRC_MGMT_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp/props.h"
#include "amqp/wire.h"

struct conn;
struct exchange;
struct queue;
struct server;
struct vhost;

struct ops_error {
    uint16_t code;  /* AMQP reply code: 404, 405, 403, 406, 503, ... */
    char text[512]; /* RabbitMQ's reason, e.g. "no queue 'q' in vhost '/'" */
};

/* Who asks: a connection (exclusive queues belong to the connection that declared them) or,
 * with conn NULL, the broker's operator (management API, definitions), who may look at and
 * delete every queue. */
struct ops_actor {
    struct conn *conn;
    const char *user; /* for the validated user-id of publish; NULL skips that check */
};

/* Exchanges. type is the exchange type's name; passive only checks that the exchange
 * exists. *created (may be NULL) tells a new exchange from an equivalent existing one. */
int ops_exchange_declare(struct vhost *vh, struct wire_bytes name, struct wire_bytes type,
                         bool passive, bool durable, bool auto_delete, bool internal,
                         struct wire_bytes arguments, bool *created, struct ops_error *err);
/* Deleting an exchange that does not exist succeeds unless must_exist is set (the
 * management API answers 404 for it; AMQP succeeds, as RabbitMQ 3.x does). */
int ops_exchange_delete(struct vhost *vh, struct wire_bytes name, bool if_unused, bool must_exist,
                        struct ops_error *err);

/* The queue called name, checked for access by actor: 404 if missing, 405 if it is another
 * connection's exclusive queue. */
struct queue *ops_queue_find(struct vhost *vh, const struct ops_actor *actor,
                             struct wire_bytes name, struct ops_error *err);

/* Declares a queue; an empty name gets a server-generated "amq.gen-..." one. *out gets the
 * queue (new or existing); *created (may be NULL) whether it is new. An exclusive queue
 * declared by a connection belongs to it. */
int ops_queue_declare(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                      bool passive, bool durable, bool exclusive, bool auto_delete,
                      struct wire_bytes arguments, struct queue **out, bool *created,
                      struct ops_error *err);
/* Deletes a queue; *count (may be NULL) gets the number of ready messages dropped. A missing
 * queue succeeds with 0 unless must_exist is set. */
int ops_queue_delete(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                     bool if_unused, bool if_empty, bool must_exist, uint32_t *count,
                     struct ops_error *err);
/* Drops the ready messages of a queue; *count (may be NULL) says how many. */
int ops_queue_purge(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                    uint32_t *count, struct ops_error *err);

/* Bindings of a queue (to_exchange false) or an exchange (true) to the exchange source.
 * Binding twice is not an error; unbinding what is not bound succeeds unless must_exist. */
int ops_bind(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes source,
             struct wire_bytes destination, bool to_exchange, struct wire_bytes routing_key,
             struct wire_bytes arguments, struct ops_error *err);
int ops_unbind(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes source,
               struct wire_bytes destination, bool to_exchange, struct wire_bytes routing_key,
               struct wire_bytes arguments, bool must_exist, struct ops_error *err);

/* Publishes a message built from its properties and body to an exchange, with the checks
 * basic.publish makes (exchange exists and is not internal, validated user-id, valid
 * expiration). s (may be NULL) is needed to reach direct reply-to addresses. *routed gets
 * the number of queues (or reply-to consumers) reached; *refused whether a queue refused it
 * (x-overflow reject-publish). */
int ops_publish(struct server *s, struct vhost *vh, const struct ops_actor *actor,
                struct wire_bytes exchange, struct wire_bytes routing_key,
                const struct wire_props *props, struct wire_bytes body, uint32_t *routed,
                bool *refused, struct ops_error *err);

/* Formats err as the text of a channel.close: "NOT_FOUND - no queue 'q' in vhost '/'". */
void ops_error_format(const struct ops_error *err, bool with_code, char *out, size_t out_size);

#endif
