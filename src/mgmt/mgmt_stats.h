/* Message rates for the management API, and broker-wide counters for metrics.
 *
 * The queues count what happens to them (struct queue_stats); nothing else keeps history.
 * Rates need two points in time, so a timer samples every queue's counters every few seconds
 * (RabbitMQ's collect_statistics_interval is 5 s) and a rate is the difference between the
 * last two samples divided by the time between them, as RabbitMQ's "basic" rates mode shows
 * it. A sample is a few dozen bytes per queue, kept in one hash map; there is no statistics
 * database.
 *
 * Broker-wide counters are the sum of the live queues' counters plus what deleted queues had
 * counted, which each vhost adds up as its queues are deleted (struct vhost's retired), so
 * nothing counted before a deletion is lost; the totals never go down. Publisher confirms
 * belong to channels, not queues: the server counts them (struct server's confirmed), and a
 * channel its own (struct channel's confirmed, whose rate mgmt_stats_channel_confirm_rate()
 * gives). */
#ifndef WARREN_SRC_MGMT_MGMT_STATS_H
#define WARREN_SRC_MGMT_MGMT_STATS_H

#include <ev.h>
#include <stdint.h>

#include "src/base/hmap.h"

struct channel;
struct queue;
struct server;

/* What is sampled per queue: counters first, then gauges. */
enum mgmt_value {
    MGMT_PUBLISHED,     /* messages that entered the queue */
    MGMT_DELIVERED,     /* handed to a consumer or to basic.get */
    MGMT_REDELIVERED,   /* came back (nack, reject, recover, channel closed) */
    MGMT_ACKED,         /* acknowledged by a consumer */
    MGMT_EXPIRED,       /* TTL ran out */
    MGMT_DEAD_LETTERED, /* republished to the dead-letter exchange */
    MGMT_DROPPED,       /* over a limit with nowhere to dead-letter to */
    MGMT_CONFIRMED,     /* confirmed to publishers: broker-wide only (a queue's is 0) */
    MGMT_COUNTERS,      /* number of counters */
    MGMT_READY = MGMT_COUNTERS,
    MGMT_UNACKED,
    MGMT_VALUES, /* number of values */
};

struct mgmt_stats {
    struct server *srv;
    ev_timer timer;
    double interval_s;
    struct hmap queues;               /* "vhost\0queue" -> struct mgmt_queue_sample */
    struct hmap channels;             /* connection id and channel id -> its confirms */
    uint64_t generation;              /* of the last sample, to find queues that are gone */
    uint64_t reported[MGMT_COUNTERS]; /* last totals handed out: they never go down */
    /* Broker-wide values at the last two samples (counters include retired ones). */
    uint64_t prev[MGMT_VALUES], cur[MGMT_VALUES];
    double prev_t, cur_t;
    unsigned samples;
};

/* Starts sampling every interval_s seconds on s's loop. */
void mgmt_stats_init(struct mgmt_stats *st, struct server *s, double interval_s);
void mgmt_stats_free(struct mgmt_stats *st);
/* Takes a sample now (the timer does this; tests call it to see rates sooner). */
void mgmt_stats_sample(struct mgmt_stats *st);

/* A queue's values now. */
void mgmt_queue_values(const struct queue *q, uint64_t out[MGMT_VALUES]);
/* Messages of q ready for delivery: for a stream, every message in its log, as RabbitMQ
 * counts a stream's (each consumer reads it whole; none is taken away). */
uint64_t mgmt_queue_ready(const struct queue *q);
/* Deliveries of q that are not acknowledged yet: none for a stream, as in RabbitMQ (an ack
 * only gives a stream consumer credit back). */
uint64_t mgmt_queue_unacked(const struct queue *q);

/* Per-second rate of value v of queue q over the last interval; 0 until q has been sampled
 * twice. Gauges (ready, unacked) can have negative rates. */
double mgmt_stats_queue_rate(const struct mgmt_stats *st, const struct queue *q, enum mgmt_value v);
double mgmt_stats_global_rate(const struct mgmt_stats *st, enum mgmt_value v);
/* Per-second rate of the publishes ch confirmed over the last interval; 0 until sampled
 * twice. */
double mgmt_stats_channel_confirm_rate(const struct mgmt_stats *st, const struct channel *ch);

/* Broker-wide counters now: every live queue's counters plus the retired ones; never less
 * than what the previous call returned. */
void mgmt_stats_totals(struct mgmt_stats *st, uint64_t out[MGMT_COUNTERS]);

#endif
