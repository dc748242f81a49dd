/* A virtual host: the registry of its exchanges and queues, and routing a message from an
 * exchange to the set of queues it reaches. */
#ifndef WARREN_SRC_BROKER_VHOST_H
#define WARREN_SRC_BROKER_VHOST_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "exchanges/exchange_type.h"
#include "src/base/hmap.h"
#include "src/broker/queue.h"

struct exchange;
struct queue;
struct message;

struct vhost {
    struct wire_bytes name; /* owned */
    struct ev_loop *loop;   /* for the queues' timers */
    struct persist *persist; /* NULL: nothing is persisted (no data directory) */
    /* A cluster node: stream queues are refused (their log is not replicated yet, so their
     * confirms could not keep the cluster's promise). */
    bool refuse_streams;
    const char *spill_dir;   /* where queues spill their backlog; NULL: they keep it in memory */
    uint32_t memory_window;  /* messages a queue keeps in memory (queue_memory_window) */
    struct queue_budget *budget; /* shared by the broker's vhosts (queue_memory_limit); NULL none */
    uint64_t connection_count; /* open connections (for the vhost's max-connections) */
    struct queue_stats retired; /* what deleted queues had counted, added when they go */
    struct policy **policies, **operator_policies; /* src/broker/policy.h */
    size_t policy_count, operator_policy_count;
    int64_t default_delivery_limit; /* delivery_limit from the configuration; 0 none */
    struct message **dead;  /* dead-lettered messages waiting to be republished */
    size_t dead_len, dead_cap;
    struct hmap exchanges;  /* name -> struct exchange */
    struct hmap queues;     /* name -> struct queue */
    struct exchange *default_exchange;
    uint64_t route_generation; /* one per message: a queue is picked, an exchange visited once */
    /* Scratch space reused by every routing, never allocated per message. */
    struct wire_bytes *route_keys;  /* the message's key set (borrowed from the message) */
    size_t route_key_count, route_key_cap;
    struct route_out route_step;    /* what one exchange's type returned */
    struct route_out route_pending; /* exchanges still to visit */
    struct route_out route_queues;  /* the result */
};

/* A vhost with the default exchange and amq.direct, amq.fanout, amq.topic, amq.headers and
 * amq.match declared, as RabbitMQ has them. */
struct vhost *vhost_new(struct wire_bytes name, struct ev_loop *loop);
/* Deletes every queue and exchange, then the vhost. */
void vhost_free(struct vhost *vh);

struct exchange *vhost_exchange_find(struct vhost *vh, struct wire_bytes name);
void vhost_exchange_add(struct vhost *vh, struct exchange *x);
void vhost_exchange_delete(struct vhost *vh, struct exchange *x);

struct queue *vhost_queue_find(struct vhost *vh, struct wire_bytes name);
void vhost_queue_add(struct vhost *vh, struct queue *q);
/* Called by queue_delete: the vhost drops its reference. */
void vhost_forget_queue(struct vhost *vh, struct queue *q);

/* Routing one message: begin, add_key for its routing key and for each of its CC and BCC
 * keys (the keys are borrowed until vhost_route returns), then vhost_route from the exchange
 * it was published to. As in RabbitMQ (rabbit_exchange:route), every exchange on the way
 * matches the whole key set, whichever key brought the message there through an
 * exchange-to-exchange binding; an exchange where no key routes passes the message to its
 * alternate exchange. Each exchange is visited once and each queue is in the result once,
 * however many bindings, keys or paths reach it. */
void vhost_route_begin(struct vhost *vh);
void vhost_route_add_key(struct vhost *vh, struct wire_bytes key);
/* Returns the number of queues reached and the queues in *queues: the array belongs to the
 * vhost and is valid until the next routing. */
size_t vhost_route(struct vhost *vh, struct exchange *x, struct wire_table headers,
                   struct queue ***queues);

#endif
