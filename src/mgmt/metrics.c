/* The Prometheus exposition, written line by line into one buffer. */
#include "build_config.h"

#include "src/mgmt/metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/mgmt_stats.h"

void metrics_buf_free(struct metrics_buf *b)
{
    free(b->data);
    *b = (struct metrics_buf){0};
}

static void reserve(struct metrics_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    while (b->cap - b->len < n)
        b->cap = b->cap ? b->cap * 2 : 64 * 1024;
    b->data = xrealloc(b->data, b->cap);
}

static void put(struct metrics_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void puts_(struct metrics_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void printf_(struct metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    reserve(b, 256);
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A label value: backslash, double quote and line feed escaped, as the format requires. */
static void put_label(struct metrics_buf *b, struct wire_bytes v)
{
    reserve(b, v.len * 2);
    for (size_t i = 0; i < v.len; i++) {
        char ch = (char)v.ptr[i];
        if (ch == '\\' || ch == '"') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = ch;
        } else if (ch == '\n') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'n';
        } else {
            b->data[b->len++] = ch;
        }
    }
}

static void family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    printf_(b, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void sample(struct metrics_buf *b, const char *name, const char *labels, uint64_t v)
{
    printf_(b, "%s%s %" PRIu64 "\n", name, labels, v);
}

/* ---- Per queue ------------------------------------------------------------------------- */

enum queue_metric {
    QM_READY,
    QM_UNACKED,
    QM_MESSAGES,
    QM_CONSUMERS,
    QM_READY_BYTES,
    QM_PUBLISHED,
    QM_DELIVERED,
    QM_REDELIVERED,
    QM_EXPIRED,
    QM_DEAD_LETTERED,
    QM_DROPPED,
};

static const struct {
    const char *name, *type, *help;
} queue_metrics[] = {
    [QM_READY] = {"rabbitmq_queue_messages_ready", "gauge",
                  "Messages ready to be delivered to consumers"},
    [QM_UNACKED] = {"rabbitmq_queue_messages_unacked", "gauge",
                    "Messages delivered to consumers but not yet acknowledged"},
    [QM_MESSAGES] = {"rabbitmq_queue_messages", "gauge",
                     "Sum of ready and unacknowledged messages - total queue depth"},
    [QM_CONSUMERS] = {"rabbitmq_queue_consumers", "gauge", "Consumers on a queue"},
    [QM_READY_BYTES] = {"rabbitmq_queue_messages_ready_bytes", "gauge",
                        "Size in bytes of ready messages"},
    [QM_PUBLISHED] = {"rabbitmq_queue_messages_published_total", "counter",
                      "Total number of messages published to queues"},
    [QM_DELIVERED] = {"warren_queue_messages_delivered_total", "counter",
                      "Total number of messages delivered from the queue to consumers and gets"},
    [QM_REDELIVERED] = {"warren_queue_messages_redelivered_total", "counter",
                        "Total number of messages returned to the queue for redelivery"},
    [QM_EXPIRED] = {"warren_queue_messages_expired_total", "counter",
                    "Total number of messages whose TTL ran out in the queue"},
    [QM_DEAD_LETTERED] = {"warren_queue_messages_dead_lettered_total", "counter",
                          "Total number of messages dead-lettered by the queue"},
    [QM_DROPPED] = {"warren_queue_messages_dropped_total", "counter",
                    "Total number of messages dropped by the queue with no dead-letter exchange"},
};

static uint64_t queue_metric(const struct queue *q, enum queue_metric m)
{
    switch (m) {
    case QM_READY:
        return mgmt_queue_ready(q);
    case QM_UNACKED:
        return mgmt_queue_unacked(q);
    case QM_MESSAGES:
        return mgmt_queue_ready(q) + mgmt_queue_unacked(q);
    case QM_CONSUMERS:
        return q->consumer_count;
    case QM_READY_BYTES:
        return q->ready_bytes + q->spill.bytes; /* in memory and spilled */
    case QM_PUBLISHED:
        return q->stats.published;
    case QM_DELIVERED:
        return q->stats.delivered;
    case QM_REDELIVERED:
        return q->stats.redelivered;
    case QM_EXPIRED:
        return q->stats.expired;
    case QM_DEAD_LETTERED:
        return q->stats.dead_lettered;
    case QM_DROPPED:
        return q->stats.dropped;
    }
    return 0;
}

/* A decimal number, without printf: a scrape writes a hundred thousand of them. */
static void put_u64(struct metrics_buf *b, uint64_t v)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    reserve(b, n);
    while (n > 0)
        b->data[b->len++] = digits[--n];
}

/* One family, one line per queue: the families are walked one after the other, as the
 * format wants each family's samples together. Each queue's label set is escaped once, into
 * the end of the same buffer, and copied from there into every family. */
static void per_queue(struct metrics_buf *b, struct server *s)
{
    size_t labels_start, labels_end, at;
    void *v, *qv;

    /* The labels, one after the other as `len(8 bytes) text`, past what will be output. */
    labels_start = b->len;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            struct queue *q = qv;
            size_t len_at = b->len, len;
            reserve(b, sizeof len);
            b->len += sizeof len;
            puts_(b, "{vhost=\"");
            put_label(b, vh->name);
            puts_(b, "\",queue=\"");
            put_label(b, q->name);
            puts_(b, "\"} ");
            len = b->len - len_at - sizeof len;
            memcpy(b->data + len_at, &len, sizeof len);
        }
    }
    labels_end = b->len;
    /* The output is written after the labels, then moved down over them. */
    for (size_t m = 0; m < ARRAY_LEN(queue_metrics); m++) {
        size_t name_len = strlen(queue_metrics[m].name);
        family(b, queue_metrics[m].name, queue_metrics[m].type, queue_metrics[m].help);
        at = labels_start;
        for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
            struct vhost *vh = v;
            for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
                size_t len;
                memcpy(&len, b->data + at, sizeof len);
                reserve(b, name_len + len + 22);
                memcpy(b->data + b->len, queue_metrics[m].name, name_len);
                b->len += name_len;
                /* reserve() may have moved the buffer: read the label after it. */
                memcpy(b->data + b->len, b->data + at + sizeof len, len);
                b->len += len;
                put_u64(b, queue_metric(qv, (enum queue_metric)m));
                b->data[b->len++] = '\n';
                at += sizeof len + len;
            }
        }
    }
    memmove(b->data + labels_start, b->data + labels_end, b->len - labels_end);
    b->len -= labels_end - labels_start;
}

/* Without per-object series, RabbitMQ sums the queue families into one unlabelled line. */
static void queue_sums(struct metrics_buf *b, struct server *s)
{
    void *v, *qv;

    for (size_t m = 0; m < ARRAY_LEN(queue_metrics); m++) {
        uint64_t sum = 0;
        for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
            struct vhost *vh = v;
            for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);)
                sum += queue_metric(qv, (enum queue_metric)m);
        }
        family(b, queue_metrics[m].name, queue_metrics[m].type, queue_metrics[m].help);
        sample(b, queue_metrics[m].name, "", sum);
    }
}

/* ---- Streams --------------------------------------------------------------------------- */

/* Of the vhosts named (every vhost when nvhosts is 0). */
static bool vhost_selected(const struct vhost *vh, const char *const *vhosts, size_t nvhosts)
{
    if (nvhosts == 0)
        return true;
    for (size_t i = 0; i < nvhosts; i++) {
        if (wire_bytes_eq_cstr(vh->name, vhosts[i]))
            return true;
    }
    return false;
}

enum stream_metric {
    SM_SEGMENTS,
    SM_FIRST_OFFSET,
    SM_NEXT_OFFSET,
    SM_MESSAGES,
    SM_DISK_BYTES,
    SM_MAX_LAG,
};

/* The series of each stream queue, {vhost, queue} labelled: RabbitMQ's names where it has the
 * figure (rabbitmq_stream_segments in queue_metrics; rabbitmq_stream_consumer_max_offset_lag,
 * family stream_consumer_metrics, of the streams with consumers), warren_stream_* for the
 * rest. All are gauges: retention removes segments, offsets and bytes. */
static const struct {
    const char *name, *help;
} stream_metrics[] = {
    [SM_SEGMENTS] = {"rabbitmq_stream_segments", "Number of stream segment files"},
    [SM_FIRST_OFFSET] = {"warren_stream_first_offset", "First offset still in the stream"},
    [SM_NEXT_OFFSET] = {"warren_stream_next_offset",
                        "Offset the next message appended to the stream gets"},
    [SM_MESSAGES] = {"warren_stream_messages", "Messages in the stream (next minus first offset)"},
    [SM_DISK_BYTES] = {"warren_stream_disk_bytes", "Size in bytes of the stream's segment files"},
    [SM_MAX_LAG] = {"rabbitmq_stream_consumer_max_offset_lag", "Highest consumer offset lag"},
};

/* How many offsets of the log lie past consumer c's (what it has yet to get). */
static uint64_t consumer_lag(const struct consumer *c, const struct stream_info *si)
{
    uint64_t offset = stream_consumer_offset(c);

    return si->next_offset > offset ? si->next_offset - offset : 0;
}

static uint64_t stream_metric(const struct queue *q, enum stream_metric m)
{
    struct stream_info si;
    uint64_t max = 0;

    stream_info(q, &si);
    switch (m) {
    case SM_SEGMENTS:
        return si.segments;
    case SM_FIRST_OFFSET:
        return si.first_offset;
    case SM_NEXT_OFFSET:
        return si.next_offset;
    case SM_MESSAGES:
        return si.messages;
    case SM_DISK_BYTES:
        return si.disk_bytes;
    case SM_MAX_LAG:
        for (size_t i = 0; i < q->consumer_count; i++) {
            uint64_t lag = consumer_lag(q->consumers[i], &si);
            if (q->consumers[i]->stream != NULL && lag > max)
                max = lag;
        }
        return max;
    }
    return 0;
}

/* One family of the stream queues of the selected vhosts, under name (RabbitMQ's detailed
 * names differ from the per-object ones). */
static void stream_family(struct metrics_buf *b, struct server *s, const char *name,
                          enum stream_metric m, const char *const *vhosts, size_t nvhosts)
{
    void *v, *qv;

    family(b, name, "gauge", stream_metrics[m].help);
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        if (!vhost_selected(vh, vhosts, nvhosts))
            continue;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            const struct queue *q = qv;
            if (q->stream == NULL || (m == SM_MAX_LAG && q->consumer_count == 0))
                continue;
            printf_(b, "%s{vhost=\"", name);
            put_label(b, vh->name);
            puts_(b, "\",queue=\"");
            put_label(b, q->name);
            puts_(b, "\"} ");
            put_u64(b, stream_metric(q, m));
            puts_(b, "\n");
        }
    }
}

/* Each consumer of a stream, labelled {vhost, queue, channel, consumer_tag} (the channel by
 * its name, as the API shows it): the offset it reads next, or its lag. */
static void stream_consumer_family(struct metrics_buf *b, struct server *s, bool lag)
{
    const char *name = lag ? "warren_stream_consumer_offset_lag" : "warren_stream_consumer_offset";
    char channel[240];
    void *v, *qv;

    family(b, name, "gauge",
           lag ? "Offsets of the stream past the consumer's: messages it has yet to get"
               : "Offset the stream consumer reads next");
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            const struct queue *q = qv;
            struct stream_info si;
            if (q->stream == NULL || q->consumer_count == 0)
                continue;
            stream_info(q, &si);
            for (size_t n = 0; n < q->consumer_count; n++) {
                const struct consumer *c = q->consumers[n];
                size_t len;
                if (c->stream == NULL)
                    continue;
                mgmt_conn_name(c->ch->conn, channel, sizeof channel);
                len = strlen(channel);
                snprintf(channel + len, sizeof channel - len, " (%u)", c->ch->id);
                printf_(b, "%s{vhost=\"", name);
                put_label(b, vh->name);
                puts_(b, "\",queue=\"");
                put_label(b, q->name);
                puts_(b, "\",channel=\"");
                put_label(b, wire_cstr(channel));
                puts_(b, "\",consumer_tag=\"");
                put_label(b, c->tag);
                puts_(b, "\"} ");
                put_u64(b, lag ? consumer_lag(c, &si) : stream_consumer_offset(c));
                puts_(b, "\n");
            }
        }
    }
}

/* /metrics/per-object: every stream's families, then its consumers'. */
static void per_stream(struct metrics_buf *b, struct server *s)
{
    for (size_t m = 0; m < ARRAY_LEN(stream_metrics); m++)
        stream_family(b, s, stream_metrics[m].name, (enum stream_metric)m, NULL, 0);
    stream_consumer_family(b, s, false);
    stream_consumer_family(b, s, true);
}

/* ---- Process --------------------------------------------------------------------------- */

static uint64_t resident_bytes(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    long page = sysconf(_SC_PAGESIZE);

    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

uint64_t metrics_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not counting the directory being read */
}

void metrics_render(struct metrics_buf *b, struct server *s, struct mgmt_stats *st, bool per_object,
                    const char *node)
{
    uint64_t totals[MGMT_COUNTERS], channels = 0, consumers = 0, queues = 0;
    struct rlimit rl;
    void *v, *qv;
    static const char global_labels[] =
        "{protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\"}";

    for (const struct conn *c = s->conns; c != NULL; c = c->next)
        channels += c->channel_count;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        queues += vh->queues.len;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);)
            consumers += ((struct queue *)qv)->consumer_count;
    }
    mgmt_stats_totals(st, totals);

    family(b, "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info");
    puts_(b, "rabbitmq_identity_info{rabbitmq_node=\"");
    put_label(b, wire_cstr(node));
    puts_(b, "\",rabbitmq_cluster=\"");
    put_label(b, wire_cstr(node));
    puts_(b, "\"} 1\n");
    family(b, "rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info");
    puts_(b, "rabbitmq_build_info{product=\"Warren\",product_version=\"" PACKAGE_VERSION "\"} 1\n");

    family(b, "rabbitmq_connections", "gauge", "Connections currently open");
    sample(b, "rabbitmq_connections", "", s->conn_count);
    family(b, "warren_connections_refused_total", "counter",
           "Total number of client connections refused by a listener: out of file descriptors "
           "(fd_limit) or at connection_max");
    sample(b, "warren_connections_refused_total", "{reason=\"fd_limit\"}",
           s->refused[REFUSED_FD_LIMIT]);
    sample(b, "warren_connections_refused_total", "{reason=\"connection_max\"}",
           s->refused[REFUSED_CONNECTION_MAX]);
    family(b, "rabbitmq_channels", "gauge", "Channels currently open");
    sample(b, "rabbitmq_channels", "", channels);
    family(b, "rabbitmq_consumers", "gauge", "Consumers currently connected");
    sample(b, "rabbitmq_consumers", "", consumers);
    family(b, "rabbitmq_queues", "gauge", "Queues available");
    sample(b, "rabbitmq_queues", "", queues);

    family(b, "rabbitmq_process_resident_memory_bytes", "gauge", "Memory used in bytes");
    sample(b, "rabbitmq_process_resident_memory_bytes", "", resident_bytes());
    family(b, "rabbitmq_process_open_fds", "gauge", "Open file descriptors");
    sample(b, "rabbitmq_process_open_fds", "", metrics_open_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "rabbitmq_process_max_fds", "gauge", "Open file descriptors limit");
        sample(b, "rabbitmq_process_max_fds", "", (uint64_t)rl.rlim_cur);
    }

    family(b, "rabbitmq_global_messages_delivered_total", "counter",
           "Total number of messages delivered to consumers");
    sample(b, "rabbitmq_global_messages_delivered_total", global_labels, totals[MGMT_DELIVERED]);
    family(b, "rabbitmq_global_messages_redelivered_total", "counter",
           "Total number of messages redelivered to consumers");
    sample(b, "rabbitmq_global_messages_redelivered_total", global_labels,
           totals[MGMT_REDELIVERED]);
    family(b, "rabbitmq_global_messages_acknowledged_total", "counter",
           "Total number of messages acknowledged by consumers");
    sample(b, "rabbitmq_global_messages_acknowledged_total", global_labels, totals[MGMT_ACKED]);
    family(b, "warren_global_messages_enqueued_total", "counter",
           "Total number of messages that entered a queue (a message routed to three queues "
           "counts three times)");
    sample(b, "warren_global_messages_enqueued_total", "", totals[MGMT_PUBLISHED]);
    family(b, "warren_global_messages_expired_total", "counter",
           "Total number of messages whose TTL ran out in a queue");
    sample(b, "warren_global_messages_expired_total", "", totals[MGMT_EXPIRED]);
    family(b, "warren_global_messages_dead_lettered_total", "counter",
           "Total number of messages dead-lettered, for any reason");
    sample(b, "warren_global_messages_dead_lettered_total", "", totals[MGMT_DEAD_LETTERED]);
    family(b, "warren_global_messages_dropped_total", "counter",
           "Total number of messages a queue dropped with no dead-letter exchange to send them "
           "to");
    sample(b, "warren_global_messages_dropped_total", "", totals[MGMT_DROPPED]);

    if (per_object) {
        per_queue(b, s);
        per_stream(b, s);
    } else
        queue_sums(b, s);
}

/* ---- /metrics/detailed ----------------------------------------------------------------- */

static const char *const family_names[] = {
    [METRICS_QUEUE_COARSE] = "queue_coarse_metrics",
    [METRICS_QUEUE_CONSUMER_COUNT] = "queue_consumer_count",
    [METRICS_QUEUE] = "queue_metrics",
    [METRICS_CONNECTION_CHURN] = "connection_churn_metrics",
    [METRICS_CONNECTION] = "connection_metrics",
    [METRICS_CHANNEL] = "channel_metrics",
    [METRICS_NODE_COARSE] = "node_coarse_metrics",
    [METRICS_NODE] = "node_metrics",
    [METRICS_VHOST_STATUS] = "vhost_status",
    [METRICS_EXCHANGE_NAMES] = "exchange_names",
    [METRICS_EXCHANGE_BINDINGS] = "exchange_bindings",
    [METRICS_STREAM_CONSUMER] = "stream_consumer_metrics",
};

unsigned metrics_family_bit(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(family_names); i++) {
        if (family_names[i] != NULL && strcmp(name, family_names[i]) == 0)
            return 1u << i;
    }
    return 0;
}

/* One family of per-queue samples, {vhost, queue} labelled, of the selected vhosts. */
static void detailed_queue_family(struct metrics_buf *b, struct server *s, const char *name,
                                  const char *type, const char *help, enum queue_metric m,
                                  const char *const *vhosts, size_t nvhosts)
{
    void *v, *qv;

    family(b, name, type, help);
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        if (!vhost_selected(vh, vhosts, nvhosts))
            continue;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            printf_(b, "%s{vhost=\"", name);
            put_label(b, vh->name);
            puts_(b, "\",queue=\"");
            put_label(b, ((struct queue *)qv)->name);
            puts_(b, "\"} ");
            put_u64(b, queue_metric(qv, m));
            puts_(b, "\n");
        }
    }
}

/* A sample labelled with one name (RabbitMQ labels connections and channels "channel", with
 * the Erlang process; Warren with the connection's or channel's name, as the API shows it). */
static void named_sample(struct metrics_buf *b, const char *name, const char *label,
                         const char *value, uint64_t v)
{
    printf_(b, "%s{%s=\"", name, label);
    put_label(b, wire_cstr(value));
    puts_(b, "\"} ");
    put_u64(b, v);
    puts_(b, "\n");
}

enum conn_metric {
    CM_CHANNELS,
    CM_CONSUMERS,
    CM_UNACKED,
    CM_UNCONFIRMED,
    CM_CONSUMER_PREFETCH,
    CM_CHANNEL_PREFETCH
};

static void detailed_conn_family(struct metrics_buf *b, struct server *s, const char *name,
                                 const char *type, const char *help, enum conn_metric m)
{
    char label[240];

    family(b, name, type, help);
    for (const struct conn *c = s->conns; c != NULL; c = c->next) {
        if (c->state == CONN_CLOSED || c->fd < 0)
            continue;
        mgmt_conn_name(c, label, sizeof label);
        if (m == CM_CHANNELS) {
            named_sample(b, name, "channel", label, c->channel_count);
            continue;
        }
        for (uint32_t i = 0; i < c->channels_cap; i++) {
            const struct channel *ch = c->channels[i];
            size_t n = strlen(label);
            uint64_t v = 0;
            if (ch == NULL)
                continue;
            snprintf(label + n, sizeof label - n, " (%u)", ch->id);
            switch (m) {
            case CM_CONSUMERS:
                v = ch->consumers.len;
                break;
            case CM_UNACKED:
                v = ch->unacked_live;
                break;
            case CM_UNCONFIRMED:
                v = ch->confirm_len;
                break;
            case CM_CONSUMER_PREFETCH:
                v = ch->prefetch_consumer;
                break;
            case CM_CHANNEL_PREFETCH:
                v = ch->prefetch_channel;
                break;
            case CM_CHANNELS:
                break;
            }
            named_sample(b, name, "channel", label, v);
            label[n] = '\0';
        }
    }
}

/* Exchanges, the default one left out as RabbitMQ leaves it out, labelled {vhost, exchange,
 * type}: 1 each (exchange_names) or its bindings (exchange_bindings). */
static void detailed_exchange_family(struct metrics_buf *b, struct server *s, bool bindings)
{
    const char *name =
        bindings ? "rabbitmq_cluster_exchange_bindings" : "rabbitmq_cluster_exchange_name";
    void *v, *xv;

    family(b, name, "gauge",
           bindings ? "Number of bindings for an exchange. This value is cluster-wide."
                    : "Enumerates exchanges without any additional info. This value is "
                      "cluster-wide. A cheaper alternative to `exchange_bindings`");
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t k = 0; hmap_next(&vh->exchanges, &k, &xv);) {
            const struct exchange *x = xv;
            if (x->name.len == 0)
                continue;
            printf_(b, "%s{vhost=\"", name);
            put_label(b, vh->name);
            puts_(b, "\",exchange=\"");
            put_label(b, x->name);
            printf_(b, "\",type=\"%s\"} ", x->type->name);
            put_u64(b, bindings ? x->binding_count : 1);
            puts_(b, "\n");
        }
    }
}

void metrics_render_detailed(struct metrics_buf *b, struct server *s, unsigned families,
                             const char *const *vhosts, size_t nvhosts, const char *node,
                             const char *cluster, double uptime_s)
{
    struct rlimit rl;
    void *v;
    bool have_rl = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;

    family(b, "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info");
    puts_(b, "rabbitmq_identity_info{rabbitmq_node=\"");
    put_label(b, wire_cstr(node));
    puts_(b, "\",rabbitmq_cluster=\"");
    put_label(b, wire_cstr(cluster));
    puts_(b, "\"} 1\n");
    family(b, "rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info");
    puts_(b, "rabbitmq_build_info{product=\"Warren\",product_version=\"" PACKAGE_VERSION "\"} 1\n");

    if (families & (1u << METRICS_CONNECTION_CHURN)) {
        /* Every connection gets the next id: those opened are the ids given. */
        family(b, "rabbitmq_detailed_connections_opened_total", "counter",
               "Total number of connections opened");
        sample(b, "rabbitmq_detailed_connections_opened_total", "", s->next_conn_id);
        family(b, "rabbitmq_detailed_connections_closed_total", "counter",
               "Total number of connections closed or terminated");
        sample(b, "rabbitmq_detailed_connections_closed_total", "",
               s->next_conn_id - s->conn_count);
    }
    if (families & (1u << METRICS_QUEUE_COARSE)) {
        detailed_queue_family(b, s, "rabbitmq_detailed_queue_messages_ready", "gauge",
                              "Messages ready to be delivered to consumers", QM_READY, vhosts,
                              nvhosts);
        detailed_queue_family(b, s, "rabbitmq_detailed_queue_messages_unacked", "gauge",
                              "Messages delivered to consumers but not yet acknowledged",
                              QM_UNACKED, vhosts, nvhosts);
        detailed_queue_family(b, s, "rabbitmq_detailed_queue_messages", "gauge",
                              "Sum of ready and unacknowledged messages - total queue depth",
                              QM_MESSAGES, vhosts, nvhosts);
    }
    if (families & ((1u << METRICS_QUEUE_CONSUMER_COUNT) | (1u << METRICS_QUEUE)))
        detailed_queue_family(b, s, "rabbitmq_detailed_queue_consumers", "gauge",
                              "Consumers on a queue", QM_CONSUMERS, vhosts, nvhosts);
    if (families & (1u << METRICS_QUEUE)) {
        detailed_queue_family(b, s, "rabbitmq_detailed_queue_messages_ready_bytes", "gauge",
                              "Size in bytes of ready messages", QM_READY_BYTES, vhosts, nvhosts);
        stream_family(b, s, "rabbitmq_detailed_stream_segments", SM_SEGMENTS, vhosts, nvhosts);
    }
    if (families & (1u << METRICS_STREAM_CONSUMER))
        stream_family(b, s, "rabbitmq_detailed_stream_consumer_max_offset_lag", SM_MAX_LAG, vhosts,
                      nvhosts);
    if (families & (1u << METRICS_CONNECTION))
        detailed_conn_family(b, s, "rabbitmq_detailed_connection_channels", "gauge",
                             "Channels on a connection", CM_CHANNELS);
    if (families & (1u << METRICS_CHANNEL)) {
        detailed_conn_family(b, s, "rabbitmq_detailed_channel_consumers", "gauge",
                             "Consumers on a channel", CM_CONSUMERS);
        detailed_conn_family(b, s, "rabbitmq_detailed_channel_messages_unacked", "gauge",
                             "Delivered but not yet acknowledged messages", CM_UNACKED);
        detailed_conn_family(b, s, "rabbitmq_detailed_channel_messages_unconfirmed", "gauge",
                             "Published but not yet confirmed messages", CM_UNCONFIRMED);
        detailed_conn_family(b, s, "rabbitmq_detailed_consumer_prefetch", "gauge",
                             "Limit of unacknowledged messages for each consumer",
                             CM_CONSUMER_PREFETCH);
        detailed_conn_family(b, s, "rabbitmq_detailed_channel_prefetch", "gauge",
                             "Total limit of unacknowledged messages for all consumers on a "
                             "channel",
                             CM_CHANNEL_PREFETCH);
    }
    if (families & (1u << METRICS_NODE_COARSE)) {
        family(b, "rabbitmq_detailed_process_open_fds", "gauge", "Open file descriptors");
        sample(b, "rabbitmq_detailed_process_open_fds", "", metrics_open_fds());
        family(b, "rabbitmq_detailed_process_open_tcp_sockets", "gauge", "Open TCP sockets");
        sample(b, "rabbitmq_detailed_process_open_tcp_sockets", "", s->conn_count);
        family(b, "rabbitmq_detailed_process_resident_memory_bytes", "gauge",
               "Memory used in bytes");
        sample(b, "rabbitmq_detailed_process_resident_memory_bytes", "", resident_bytes());
        if (s->disk_free != UINT64_MAX) {
            family(b, "rabbitmq_detailed_disk_space_available_bytes", "gauge",
                   "Disk space available in bytes");
            sample(b, "rabbitmq_detailed_disk_space_available_bytes", "", s->disk_free);
        }
    }
    if (families & (1u << METRICS_NODE)) {
        if (have_rl) {
            family(b, "rabbitmq_detailed_process_max_fds", "gauge", "Open file descriptors limit");
            sample(b, "rabbitmq_detailed_process_max_fds", "", (uint64_t)rl.rlim_cur);
        }
        family(b, "rabbitmq_detailed_resident_memory_limit_bytes", "gauge",
               "Memory high watermark in bytes");
        sample(b, "rabbitmq_detailed_resident_memory_limit_bytes", "", s->memory_limit);
        family(b, "rabbitmq_detailed_disk_space_available_limit_bytes", "gauge",
               "Free disk space low watermark in bytes");
        sample(b, "rabbitmq_detailed_disk_space_available_limit_bytes", "",
               s->cfg->disk_free_limit);
        family(b, "rabbitmq_detailed_erlang_uptime_seconds", "gauge", "Node uptime");
        printf_(b, "rabbitmq_detailed_erlang_uptime_seconds %.3f\n", uptime_s);
    }
    if (families & (1u << METRICS_VHOST_STATUS)) {
        family(b, "rabbitmq_cluster_vhost_status", "gauge", "Whether a given vhost is running");
        for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
            puts_(b, "rabbitmq_cluster_vhost_status{vhost=\"");
            put_label(b, ((struct vhost *)v)->name);
            puts_(b, "\"} 1\n");
        }
    }
    if (families & (1u << METRICS_EXCHANGE_NAMES))
        detailed_exchange_family(b, s, false);
    if (families & (1u << METRICS_EXCHANGE_BINDINGS))
        detailed_exchange_family(b, s, true);
}
