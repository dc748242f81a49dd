/* Prometheus metrics in the text exposition format (version 0.0.4), with the names
 * RabbitMQ's rabbitmq_prometheus plugin uses where RabbitMQ has the same metric, and
 * warren_* names for counters RabbitMQ does not have.
 *
 * A scrape walks the queues a few times and writes every line straight into one growing
 * buffer: nothing is allocated per queue, and no history is kept besides the broker-wide
 * totals of src/mgmt/mgmt_stats.h. With 10,000 queues a scrape is a few megabytes of text built
 * in a few milliseconds. */
#ifndef WARREN_SRC_MGMT_METRICS_H
#define WARREN_SRC_MGMT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mgmt_stats;
struct server;

struct metrics_buf {
    char *data; /* not NUL-terminated */
    size_t len, cap;
};

/* Appends the whole exposition to out (which may hold text already). per_object adds the
 * per-queue series (rabbitmq_queue_messages_ready{vhost="/",queue="q"} ...), and the
 * streams' (rabbitmq_stream_segments, warren_stream_first_offset, _next_offset, _messages,
 * _disk_bytes, rabbitmq_stream_consumer_max_offset_lag, and per consumer
 * warren_stream_consumer_offset and _offset_lag {vhost, queue, channel, consumer_tag}); without it
 * only broker totals are written, as RabbitMQ's /metrics does by default. node names this
 * broker in rabbitmq_identity_info. */
void metrics_render(struct metrics_buf *out, struct server *s, struct mgmt_stats *st,
                    bool per_object, const char *node);

/* The families of RabbitMQ's /metrics/detailed that Warren has figures for, by the names its
 * family= parameter takes. */
enum metrics_family {
    METRICS_QUEUE_COARSE,         /* queue_coarse_metrics: ready, unacked, messages */
    METRICS_QUEUE_CONSUMER_COUNT, /* queue_consumer_count: consumers */
    METRICS_QUEUE,                /* queue_metrics: consumers, ready bytes, stream segments */
    METRICS_CONNECTION_CHURN,     /* connection_churn_metrics: connections opened, closed */
    METRICS_CONNECTION,           /* connection_metrics: channels of each connection */
    METRICS_CHANNEL,              /* channel_metrics: consumers, unacked, unconfirmed, prefetch */
    METRICS_NODE_COARSE,          /* node_coarse_metrics: fds, sockets, memory, disk free */
    METRICS_NODE,                 /* node_metrics: their limits, uptime */
    METRICS_VHOST_STATUS,         /* vhost_status: 1 for each vhost */
    METRICS_EXCHANGE_NAMES,       /* exchange_names: 1 for each exchange */
    METRICS_EXCHANGE_BINDINGS,    /* exchange_bindings: the bindings of each exchange */
    METRICS_STREAM_CONSUMER,      /* stream_consumer_metrics: each stream's highest lag */
};

/* 1 << the family named so; 0 for a name Warren has no figures for (RabbitMQ's
 * Erlang-specific ones, or a typo): it adds nothing, as RabbitMQ's unknown names add nothing. */
unsigned metrics_family_bit(const char *name);

/* /metrics/detailed: the identity and build lines, then the families of the bit set, as
 * RabbitMQ 3.10 names them (rabbitmq_detailed_*, rabbitmq_cluster_*). Per-queue families are
 * of the vhosts named (every vhost when nvhosts is 0); the others are not filtered, as in
 * RabbitMQ. cluster is the cluster's name, uptime_s the node's uptime. */
void metrics_render_detailed(struct metrics_buf *out, struct server *s, unsigned families,
                             const char *const *vhosts, size_t nvhosts, const char *node,
                             const char *cluster, double uptime_s);

void metrics_buf_free(struct metrics_buf *b);

/* The file descriptors this process has open (rabbitmq_process_open_fds; the management
 * API's fd_used). */
uint64_t metrics_open_fds(void);

#endif
