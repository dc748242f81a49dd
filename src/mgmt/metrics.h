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
 * per-queue series (rabbitmq_queue_messages_ready{vhost="/",queue="q"} ...); without it
 * only broker totals are written, as RabbitMQ's /metrics does by default. node names this
 * broker in rabbitmq_identity_info. */
void metrics_render(struct metrics_buf *out, struct server *s, struct mgmt_stats *st,
                    bool per_object, const char *node);

void metrics_buf_free(struct metrics_buf *b);

/* The file descriptors this process has open (rabbitmq_process_open_fds; the management
 * API's fd_used). */
uint64_t metrics_open_fds(void);

#endif
