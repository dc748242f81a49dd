/* warren-fill: declares many durable queues and fills each with the same number of
 * persistent messages, with publisher confirms, for the restart-time measurement
 * (bench/durability.sh). It speaks through rabbitmq-c, not warren-perf's codec: its job is
 * a known, confirmed backlog spread over many queues, not a throughput figure.
 *
 * Messages go round-robin over the queues (queue 0, 1, ..., N-1, then again), so every
 * queue grows at the same pace and the store's segments interleave all queues, as they
 * would in a broker with many busy queues. The tool exits 0 only when every message was
 * confirmed (basic.ack), and prints one line: "fill queues=... per_queue=... confirmed=...
 * nacked=... declare_s=... publish_s=... msgs_per_s=...". */
#include "build_config.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fill {
    amqp_connection_state_t conn;
    uint64_t published; /* delivery tags run 1..published */
    uint64_t confirmed; /* every tag up to this one is settled */
    uint64_t acked;
    uint64_t nacked;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool reply_ok(amqp_connection_state_t conn, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    fprintf(stderr, "warren-fill: %s failed (reply type %d, library error %d)\n", what,
            (int)r.reply_type, r.library_error);
    return false;
}

/* Reads frames until a basic.ack or basic.nack arrives and applies it. A confirm with
 * `multiple` settles every tag up to its own; the broker confirms in order here, since the
 * tool uses one channel, so settled tags are always a prefix. */
static bool wait_confirm(struct fill *f)
{
    amqp_frame_t frame;
    uint64_t tag;
    bool multiple, ack;

    for (;;) {
        if (amqp_simple_wait_frame(f->conn, &frame) != AMQP_STATUS_OK) {
            fprintf(stderr, "warren-fill: connection lost while waiting for confirms\n");
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = frame.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
            ack = true;
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *n = frame.payload.method.decoded;
            tag = n->delivery_tag;
            multiple = n->multiple;
            ack = false;
        } else {
            fprintf(stderr, "warren-fill: unexpected method 0x%08x while waiting for confirms\n",
                    frame.payload.method.id);
            return false;
        }
        uint64_t settled = multiple ? tag - f->confirmed : 1;
        if (tag <= f->confirmed || tag > f->published) {
            fprintf(stderr, "warren-fill: confirm for tag %" PRIu64 " out of order\n", tag);
            return false;
        }
        if (!multiple && tag != f->confirmed + 1) {
            fprintf(stderr, "warren-fill: confirm for tag %" PRIu64 " skips tags\n", tag);
            return false;
        }
        f->confirmed = tag;
        if (ack)
            f->acked += settled;
        else
            f->nacked += settled;
        amqp_maybe_release_buffers(f->conn);
        return true;
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: warren-fill [-h HOST] [-p PORT] [-n QUEUES] [-m PER_QUEUE] [-s BODY_BYTES]\n"
            "                   [-u PREFIX] [-c CONFIRM_WINDOW] [--transient]\n"
            "  declares durable queues PREFIX-0 .. PREFIX-(QUEUES-1) (10000) and publishes\n"
            "  PER_QUEUE (100) messages of BODY_BYTES (16) to each, persistent unless\n"
            "  --transient, with at most CONFIRM_WINDOW (1000) unconfirmed\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *prefix = "fill";
    int port = 5672, queues = 10000, per_queue = 100, window = 1000;
    size_t body_bytes = 16;
    bool persistent = true;
    static const struct option long_options[] = {
        {"transient", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "h:p:n:m:s:u:c:", long_options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'n':
            queues = atoi(optarg);
            break;
        case 'm':
            per_queue = atoi(optarg);
            break;
        case 's':
            body_bytes = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'u':
            prefix = optarg;
            break;
        case 'c':
            window = atoi(optarg);
            break;
        case 't':
            persistent = false;
            break;
        case 'H':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (queues <= 0 || per_queue < 0 || window <= 0 || port <= 0 || body_bytes > (1u << 20)) {
        usage();
        return 2;
    }

    struct fill f = {.conn = amqp_new_connection()};
    amqp_socket_t *sock = amqp_tcp_socket_new(f.conn);
    if (sock == NULL || amqp_socket_open(sock, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "warren-fill: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    amqp_rpc_reply_t login =
        amqp_login(f.conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "warren-fill: login refused\n");
        return 1;
    }
    amqp_channel_open(f.conn, 1);
    if (!reply_ok(f.conn, "channel.open"))
        return 1;

    double t0 = now_s();
    char name[256];
    for (int i = 0; i < queues; i++) {
        snprintf(name, sizeof name, "%s-%d", prefix, i);
        amqp_queue_declare(f.conn, 1, amqp_cstring_bytes(name), 0, 1, 0, 0, amqp_empty_table);
        if (!reply_ok(f.conn, "queue.declare"))
            return 1;
    }
    double t1 = now_s();

    amqp_confirm_select(f.conn, 1);
    if (!reply_ok(f.conn, "confirm.select"))
        return 1;

    char *body = calloc(1, body_bytes > 0 ? body_bytes : 1);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
        .delivery_mode = persistent ? 2 : 1,
    };
    amqp_bytes_t content = {.len = body_bytes, .bytes = body};
    for (int round = 0; round < per_queue; round++) {
        for (int i = 0; i < queues; i++) {
            snprintf(name, sizeof name, "%s-%d", prefix, i);
            /* The body says which message of its queue it is, so a reader can check order. */
            if (body_bytes >= 4)
                memcpy(body, &round, 4);
            if (amqp_basic_publish(f.conn, 1, amqp_empty_bytes, amqp_cstring_bytes(name), 0, 0,
                                   &props, content) != AMQP_STATUS_OK) {
                fprintf(stderr, "warren-fill: publish failed\n");
                return 1;
            }
            f.published++;
            while (f.published - f.confirmed >= (uint64_t)window) {
                if (!wait_confirm(&f))
                    return 1;
            }
        }
    }
    while (f.confirmed < f.published) {
        if (!wait_confirm(&f))
            return 1;
    }
    double t2 = now_s();

    printf("fill queues=%d per_queue=%d persistent=%d published=%" PRIu64 " confirmed=%" PRIu64
           " nacked=%" PRIu64 " declare_s=%.3f publish_s=%.3f msgs_per_s=%.0f\n",
           queues, per_queue, persistent ? 1 : 0, f.published, f.acked, f.nacked, t1 - t0, t2 - t1,
           t2 > t1 ? (double)f.published / (t2 - t1) : 0.0);
    amqp_channel_close(f.conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(f.conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(f.conn);
    free(body);
    return f.nacked == 0 ? 0 : 1;
}
