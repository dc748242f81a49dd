/* Dead-lettering: a message that a queue gives up on (rejected without requeue, expired,
 * dropped by a length limit, past its delivery limit) is republished to the queue's
 * dead-letter exchange with an x-death history, exactly as RabbitMQ does; with no
 * dead-letter exchange it is dropped.
 *
 * Republishing is deferred to the end of the loop turn (vhost_flush_deadletters), so it never
 * runs inside another routing, and a dead-letter cycle cannot recurse. */
#ifndef WARREN_SRC_BROKER_DEADLETTER_H
#define WARREN_SRC_BROKER_DEADLETTER_H

struct queue;
struct message;
struct vhost;

enum dead_reason {
    DEAD_REJECTED,
    DEAD_EXPIRED,
    DEAD_MAXLEN,
    DEAD_DELIVERY_LIMIT,
};

/* q gives up on m (the caller's reference moves here). */
void deadletter(struct queue *q, struct message *m, enum dead_reason reason);

/* Republishes every dead-lettered message of the vhost, including those that dead-lettering
 * itself produces. */
void vhost_flush_deadletters(struct vhost *vh);

#endif
