/* A virtual host: the registry of its exchanges and queues, and routing a message from an
 * exchange to the set of queues it reaches. */
#ifndef WARREN_SRC_VHOST_H
#define WARREN_SRC_VHOST_H

#include <stddef.h>
#include <stdint.h>

#include "exchanges/exchange_type.h"
#include "src/hmap.h"

struct exchange;
struct queue;
struct message;

struct vhost {
    struct wire_bytes name; /* owned */
    struct hmap exchanges;  /* name -> struct exchange */
    struct hmap queues;     /* name -> struct queue */
    struct exchange *default_exchange;
    uint64_t route_generation;
    struct route_out route_scratch; /* reused by every routing, never freed per message */
};

/* A vhost with the default exchange and amq.direct, amq.fanout, amq.topic, amq.headers and
 * amq.match declared, as RabbitMQ has them. */
struct vhost *vhost_new(struct wire_bytes name);
/* Deletes every queue and exchange, then the vhost. */
void vhost_free(struct vhost *vh);

struct exchange *vhost_exchange_find(struct vhost *vh, struct wire_bytes name);
void vhost_exchange_add(struct vhost *vh, struct exchange *x);
void vhost_exchange_delete(struct vhost *vh, struct exchange *x);

struct queue *vhost_queue_find(struct vhost *vh, struct wire_bytes name);
void vhost_queue_add(struct vhost *vh, struct queue *q);
/* Called by queue_delete: the vhost drops its reference. */
void vhost_forget_queue(struct vhost *vh, struct queue *q);

/* Routes m through x: fills queues[] with each queue it reaches once and returns how many;
 * the array belongs to the vhost and is valid until the next call. */
size_t vhost_route(struct vhost *vh, struct exchange *x, const struct message *m,
                   struct queue ***queues);

#endif
