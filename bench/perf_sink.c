/* The discarding AMQP server of warren-perf --sink; see perf_sink.h. */
#include "bench/perf_sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/perf_conn.h"

#define SINK_MAX_CONNS 1024
#define SINK_FRAME_MAX 131072u /* what RabbitMQ offers */
#define SINK_CHANNELS  2047u

struct sink_conn {
    struct perf_sink *sink;
    pthread_t thread;
    struct perf_conn conn;
    bool confirming[SINK_CHANNELS + 1]; /* channel is in confirm mode */
    uint64_t next_tag[SINK_CHANNELS + 1];
    uint64_t acked_tag[SINK_CHANNELS + 1];
    uint64_t body_left; /* body octets still expected for the message being received */
    bool in_content;    /* a publish's header or body frames are expected */
    uint16_t content_channel;
};

struct perf_sink {
    int listen_fd;
    pthread_t acceptor;
    atomic_bool stop;
    atomic_uint_fast64_t messages;
    struct sink_conn *conns[SINK_MAX_CONNS];
    int nconns;
};

static void send_start(struct perf_conn *c)
{
    uint8_t props[256];
    struct wire_writer w = wire_writer_init(props, sizeof props);
    size_t t = wire_table_begin(&w), caps;

    wire_table_put_longstr(&w, "product", wire_cstr("warren-perf sink"));
    caps = wire_table_put_table_begin(&w, "capabilities");
    wire_table_put_bool(&w, "publisher_confirms", true);
    wire_table_put_bool(&w, "basic.nack", true);
    wire_table_end(&w, caps);
    wire_table_end(&w, t);
    struct wire_connection_start start = {
        .version_major = 0,
        .version_minor = 9,
        .server_properties = {.raw = {.ptr = props + t + 4, .len = wire_writer_used(&w) - t - 4}},
        .mechanisms = wire_cstr("PLAIN"),
        .locales = wire_cstr("en_US"),
    };
    perf_conn_put_method(c, 0, WIRE_CONNECTION_START, &start);
}

/* Answers one method; returns -1 when the connection is over. */
static int sink_method(struct sink_conn *s, uint16_t ch, const struct wire_method *m)
{
    struct perf_conn *c = &s->conn;

    if (ch > SINK_CHANNELS)
        return -1;
    switch (m->id) {
    case WIRE_CONNECTION_START_OK: {
        struct wire_connection_tune tune = {.channel_max = SINK_CHANNELS,
                                            .frame_max = SINK_FRAME_MAX};
        perf_conn_put_method(c, 0, WIRE_CONNECTION_TUNE, &tune);
        return 0;
    }
    case WIRE_CONNECTION_TUNE_OK:
        c->frame_max = m->u.connection_tune_ok.frame_max;
        return 0;
    case WIRE_CONNECTION_OPEN:
        perf_conn_put_method(c, 0, WIRE_CONNECTION_OPEN_OK, &(struct wire_connection_open_ok){0});
        return 0;
    case WIRE_CONNECTION_CLOSE:
        perf_conn_put_method(c, 0, WIRE_CONNECTION_CLOSE_OK, &(struct wire_connection_close_ok){0});
        perf_conn_flush(c);
        return -1;
    case WIRE_CHANNEL_OPEN:
        perf_conn_put_method(c, ch, WIRE_CHANNEL_OPEN_OK, &(struct wire_channel_open_ok){0});
        return 0;
    case WIRE_CHANNEL_CLOSE:
        s->confirming[ch] = false;
        perf_conn_put_method(c, ch, WIRE_CHANNEL_CLOSE_OK, &(struct wire_channel_close_ok){0});
        return 0;
    case WIRE_QUEUE_DECLARE: {
        struct wire_queue_declare_ok ok = {.queue = m->u.queue_declare.queue};
        if (!m->u.queue_declare.nowait)
            perf_conn_put_method(c, ch, WIRE_QUEUE_DECLARE_OK, &ok);
        return 0;
    }
    case WIRE_QUEUE_BIND:
        if (!m->u.queue_bind.nowait)
            perf_conn_put_method(c, ch, WIRE_QUEUE_BIND_OK, &(struct wire_queue_bind_ok){0});
        return 0;
    case WIRE_QUEUE_DELETE:
        if (!m->u.queue_delete.nowait)
            perf_conn_put_method(c, ch, WIRE_QUEUE_DELETE_OK, &(struct wire_queue_delete_ok){0});
        return 0;
    case WIRE_QUEUE_PURGE:
        if (!m->u.queue_purge.nowait)
            perf_conn_put_method(c, ch, WIRE_QUEUE_PURGE_OK, &(struct wire_queue_purge_ok){0});
        return 0;
    case WIRE_EXCHANGE_DECLARE:
        if (!m->u.exchange_declare.nowait)
            perf_conn_put_method(c, ch, WIRE_EXCHANGE_DECLARE_OK,
                                 &(struct wire_exchange_declare_ok){0});
        return 0;
    case WIRE_EXCHANGE_DELETE:
        if (!m->u.exchange_delete.nowait)
            perf_conn_put_method(c, ch, WIRE_EXCHANGE_DELETE_OK,
                                 &(struct wire_exchange_delete_ok){0});
        return 0;
    case WIRE_BASIC_QOS:
        perf_conn_put_method(c, ch, WIRE_BASIC_QOS_OK, &(struct wire_basic_qos_ok){0});
        return 0;
    case WIRE_BASIC_CONSUME: {
        struct wire_basic_consume_ok ok = {.consumer_tag = m->u.basic_consume.consumer_tag};
        if (ok.consumer_tag.len == 0)
            ok.consumer_tag = wire_cstr("sink-consumer");
        if (!m->u.basic_consume.nowait)
            perf_conn_put_method(c, ch, WIRE_BASIC_CONSUME_OK, &ok);
        return 0;
    }
    case WIRE_CONFIRM_SELECT:
        s->confirming[ch] = true;
        if (!m->u.confirm_select.nowait)
            perf_conn_put_method(c, ch, WIRE_CONFIRM_SELECT_OK,
                                 &(struct wire_confirm_select_ok){0});
        return 0;
    case WIRE_BASIC_PUBLISH:
        s->in_content = true;
        s->content_channel = ch;
        s->body_left = UINT64_MAX; /* unknown until the header */
        return 0;
    default:
        return 0; /* acks, cancels, ...: nothing to answer */
    }
}

static void message_done(struct sink_conn *s)
{
    s->in_content = false;
    atomic_fetch_add_explicit(&s->sink->messages, 1, memory_order_relaxed);
    if (s->confirming[s->content_channel])
        s->next_tag[s->content_channel]++;
}

static int sink_frame(struct sink_conn *s, const struct wire_frame *f)
{
    struct wire_method m;
    struct wire_content_header h;

    switch (f->type) {
    case WIRE_FRAME_METHOD:
        if (wire_method_decode(f->payload, &m) != WIRE_OK)
            return -1;
        return sink_method(s, f->channel, &m);
    case WIRE_FRAME_HEADER:
        if (!s->in_content || wire_content_header_decode(f->payload, &h) != WIRE_OK)
            return -1;
        s->body_left = h.body_size;
        if (s->body_left == 0)
            message_done(s);
        return 0;
    case WIRE_FRAME_BODY:
        if (!s->in_content || f->payload.len > s->body_left)
            return -1;
        s->body_left -= f->payload.len;
        if (s->body_left == 0)
            message_done(s);
        return 0;
    default:
        return 0; /* heartbeat */
    }
}

/* Acks everything published on a confirming channel since the last batch: one ack with
 * multiple per channel per read, as a broker with group commit would. */
static void sink_confirm(struct sink_conn *s)
{
    for (unsigned ch = 1; ch <= SINK_CHANNELS; ch++) {
        if (s->confirming[ch] && s->next_tag[ch] > s->acked_tag[ch]) {
            struct wire_basic_ack ack = {.delivery_tag = s->next_tag[ch], .multiple = true};
            perf_conn_put_method(&s->conn, (uint16_t)ch, WIRE_BASIC_ACK, &ack);
            s->acked_tag[ch] = s->next_tag[ch];
        }
    }
}

static void *sink_serve(void *arg)
{
    struct sink_conn *s = arg;
    struct perf_conn *c = &s->conn;
    bool header_seen = false;

    while (!atomic_load(&s->sink->stop)) {
        struct wire_frame f;
        int rc;

        if (perf_conn_wait(c, 100) < 0)
            break;
        if (!header_seen) {
            if (c->in_len - c->in_pos < 8)
                continue;
            if (wire_protocol_header_check(c->in + c->in_pos, 8) != WIRE_OK)
                break;
            c->in_pos += 8;
            header_seen = true;
            send_start(c);
        }
        while ((rc = perf_conn_next_frame(c, &f)) == 1) {
            if (sink_frame(s, &f) < 0)
                goto out;
        }
        if (rc < 0)
            break;
        sink_confirm(s);
        if (perf_conn_flush(c) < 0)
            break;
    }
out:
    perf_conn_free(c);
    return NULL;
}

static void *sink_accept(void *arg)
{
    struct perf_sink *sink = arg;

    while (!atomic_load(&sink->stop)) {
        struct pollfd p = {.fd = sink->listen_fd, .events = POLLIN};
        struct sink_conn *s;
        int fd;

        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept(sink->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (sink->nconns == SINK_MAX_CONNS || (s = calloc(1, sizeof *s)) == NULL) {
            close(fd);
            continue;
        }
        s->sink = sink;
        perf_conn_adopt(&s->conn, fd);
        if (pthread_create(&s->thread, NULL, sink_serve, s) != 0) {
            perf_conn_free(&s->conn);
            free(s);
            continue;
        }
        sink->conns[sink->nconns++] = s;
    }
    return NULL;
}

struct perf_sink *perf_sink_start(int port, int *bound_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof addr;
    struct perf_sink *sink = calloc(1, sizeof *sink);
    int one = 1;

    if (sink == NULL)
        return NULL;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sink->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sink->listen_fd < 0 ||
        setsockopt(sink->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(sink->listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(sink->listen_fd, 128) < 0 ||
        getsockname(sink->listen_fd, (struct sockaddr *)&addr, &len) < 0) {
        fprintf(stderr, "warren-perf: sink cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        if (sink->listen_fd >= 0)
            close(sink->listen_fd);
        free(sink);
        return NULL;
    }
    *bound_port = ntohs(addr.sin_port);
    if (pthread_create(&sink->acceptor, NULL, sink_accept, sink) != 0) {
        fprintf(stderr, "warren-perf: sink cannot start its thread\n");
        close(sink->listen_fd);
        free(sink);
        return NULL;
    }
    return sink;
}

uint64_t perf_sink_messages(struct perf_sink *s)
{
    return atomic_load_explicit(&s->messages, memory_order_relaxed);
}

void perf_sink_stop(struct perf_sink *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->conns[i]->thread, NULL);
        free(s->conns[i]);
    }
    close(s->listen_fd);
    free(s);
}
