/* warren-requeue: how long the broker's loop is held when many unacked deliveries go back to
 * their queue at once. One connection (the holder) consumes COUNT messages with manual acks
 * and no prefetch limit, so they are all unacked on one channel; then it gives them back in
 * one operation:
 *
 *   close       channel.close (the time to close-ok includes the requeue)
 *   nack        basic.cancel, then basic.nack multiple requeue=true of every tag, then a
 *               round trip on the same channel (its reply comes after the requeue)
 *   connection  connection.close (the broker answers close-ok first and requeues after)
 *
 * Meanwhile a probe thread on a connection of its own makes round trips (a passive declare
 * of amq.direct) one after the other; the longest of them is what every other client of the
 * broker waited at worst. The probe starts 100 ms before the operation and stops 200 ms after
 * the queue is seen holding COUNT ready messages again.
 *
 * With -P the queue is durable and the messages persistent, so each return is also recorded
 * in the message store. With -t a taker, another consumer without a prefetch limit on a
 * connection of its own that never reads, subscribes just before the operation: the broker
 * then also redelivers the messages to it, until that connection's output backs up, and the
 * probe measures the requeue and that dispatch together; the queue then holds fewer than
 * COUNT ready messages (the taker's are unacked), which is not an error.
 *
 * Usage: warren-requeue [-h HOST] [-p PORT] [-n COUNT] [-m close|nack|connection] [-P] [-t]
 * Output: one line "requeue mode=... count=... persistent=... taker=... op_ms=... probe_max_ms=...
 * probe_pings=... ready_after=..."; op_ms is the holder's own wait (from sending the operation to
 * its reply; for connection, to close-ok). Exit 0 only if the queue held COUNT ready messages
 * after. */
#include "build_config.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static int port = 5672;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "warren-requeue: %s\n", what);
    exit(1);
}

static void expect_ok(amqp_connection_state_t c, const char *what)
{
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        die(what);
}

/* Logged in as guest/guest on "/", channel 1 open. */
static amqp_connection_state_t connect_broker(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);

    if (s == NULL || amqp_socket_open(s, host, port) != AMQP_STATUS_OK)
        die("cannot connect");
    if (amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
        AMQP_RESPONSE_NORMAL)
        die("login refused");
    amqp_channel_open(c, 1);
    expect_ok(c, "channel.open");
    return c;
}

static void ping(amqp_connection_state_t c)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes("amq.direct"), amqp_cstring_bytes("direct"), 1,
                          0, 0, 0, amqp_empty_table);
    expect_ok(c, "passive exchange.declare");
}

static uint32_t ready_count(amqp_connection_state_t c, const char *queue)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);

    expect_ok(c, "passive queue.declare");
    return ok->message_count;
}

struct probe {
    amqp_connection_state_t conn;
    atomic_bool stop;
    double max_ms;
    uint64_t pings;
};

static void *probe_run(void *arg)
{
    struct probe *p = arg;

    while (!atomic_load(&p->stop)) {
        double t0 = now_ms(), rtt;
        ping(p->conn);
        rtt = now_ms() - t0;
        if (rtt > p->max_ms)
            p->max_ms = rtt;
        p->pings++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    amqp_connection_state_t setup, holder;
    struct probe probe = {0};
    pthread_t probe_thread;
    const char *mode = "close";
    uint64_t count = 80000, last_tag = 0;
    bool persistent = false, taker = false;
    amqp_connection_state_t taker_conn = NULL;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};
    char queue[64];
    uint32_t ready = 0;
    double t0, op_ms;
    int opt;

    while ((opt = getopt(argc, argv, "h:p:n:m:Pt")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'n':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            mode = optarg;
            break;
        case 'P':
            persistent = true;
            props.delivery_mode = 2;
            break;
        case 't':
            taker = true;
            break;
        default:
            fprintf(stderr, "usage: warren-requeue [-h HOST] [-p PORT] [-n COUNT] "
                            "[-m close|nack|connection] [-P] [-t]\n");
            return 2;
        }
    }
    if (strcmp(mode, "close") != 0 && strcmp(mode, "nack") != 0 && strcmp(mode, "connection") != 0)
        die("mode must be close, nack or connection");
    snprintf(queue, sizeof queue, "warren-requeue-%ld", (long)getpid());

    setup = connect_broker();
    holder = connect_broker();
    probe.conn = connect_broker();
    amqp_queue_declare(setup, 1, amqp_cstring_bytes(queue), 0, persistent, 0, 0, amqp_empty_table);
    expect_ok(setup, "queue.declare");
    amqp_basic_consume(holder, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes("holder"), 0, 0, 0,
                       amqp_empty_table);
    expect_ok(holder, "basic.consume");
    for (uint64_t i = 0; i < count; i++) {
        char body[24];
        snprintf(body, sizeof body, "%" PRIu64, i);
        if (amqp_basic_publish(setup, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                               amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
            die("publish failed");
    }
    ping(setup);
    for (uint64_t i = 0; i < count; i++) {
        amqp_envelope_t env;
        if (amqp_consume_message(holder, &env, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL)
            die("delivery expected");
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
    }

    if (pthread_create(&probe_thread, NULL, probe_run, &probe) != 0)
        die("pthread_create");
    if (taker) {
        taker_conn = connect_broker();
        amqp_basic_consume(taker_conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes("taker"), 0,
                           0, 0, amqp_empty_table);
        expect_ok(taker_conn, "basic.consume (taker)");
    }
    usleep(100000);
    if (strcmp(mode, "nack") == 0) {
        amqp_basic_cancel(holder, 1, amqp_cstring_bytes("holder"));
        expect_ok(holder, "basic.cancel");
    }
    t0 = now_ms();
    if (strcmp(mode, "close") == 0) {
        if (amqp_channel_close(holder, 1, AMQP_REPLY_SUCCESS).reply_type != AMQP_RESPONSE_NORMAL)
            die("channel.close");
    } else if (strcmp(mode, "nack") == 0) {
        if (amqp_basic_nack(holder, 1, last_tag, 1, 1) != AMQP_STATUS_OK)
            die("basic.nack");
        ping(holder);
    } else {
        if (amqp_connection_close(holder, AMQP_REPLY_SUCCESS).reply_type != AMQP_RESPONSE_NORMAL)
            die("connection.close");
    }
    op_ms = now_ms() - t0;
    for (int i = 0; i < (taker ? 50 : 3000) && (ready = ready_count(setup, queue)) < count; i++)
        usleep(10000);
    usleep(200000);
    atomic_store(&probe.stop, true);
    pthread_join(probe_thread, NULL);

    printf("requeue mode=%s count=%" PRIu64 " persistent=%d taker=%d op_ms=%.1f"
           " probe_max_ms=%.1f probe_pings=%" PRIu64 " ready_after=%u\n",
           mode, count, persistent, taker, op_ms, probe.max_ms, probe.pings, ready);
    amqp_queue_delete(setup, 1, amqp_cstring_bytes(queue), 0, 0);
    expect_ok(setup, "queue.delete");
    if (strcmp(mode, "connection") != 0)
        amqp_connection_close(holder, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(holder);
    amqp_connection_close(probe.conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(probe.conn);
    amqp_connection_close(setup, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(setup);
    if (taker_conn != NULL)
        amqp_destroy_connection(taker_conn); /* without a word: it never reads */
    return ready == count || taker ? 0 : 1;
}
