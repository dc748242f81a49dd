/* The memory alarm: with vm_memory_high_watermark.absolute set a little above warrend's idle
 * resident memory (and queues allowed to keep their messages in memory), a publisher of large
 * messages pushes the broker over it. A publisher that
 * announced the connection.blocked capability gets connection.blocked("low on memory"); one
 * that did not is blocked silently (the broker stops reading its socket, so even a round trip
 * stalls). A consumer on another connection is still served and drains the queue, the alarm
 * clears, the publisher gets connection.unblocked (or simply resumes) and publishes again.
 * Every message carries its sequence number, and the consumer must see each exactly once, in
 * order.
 *
 * warrend only: the watermark is warrend's configuration, calibrated at start from the
 * broker's own /proc/PID/status (so the test works with sanitizers, which use more memory). */
#define _DEFAULT_SOURCE
#include "harness.h"
#include "sec_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BIG_BYTES      (1024 * 1024)
#define MARGIN_BYTES   (24L * 1024 * 1024) /* the watermark above idle memory */
#define BIG_COUNT      48                  /* 48 MiB: well over the margin */
#define SMALL_BYTES    1024
#define SMALL_COUNT    20
#define BLOCK_WAIT_MS  10000 /* the alarm is checked every second */
#define DRAIN_WAIT_MS  20000
#define STALL_CHECK_MS 1500
#define END_SEQ        999999

/* Set in the parent by the fixture, before Check forks the tests. */
static long watermark_bytes;

/* Restarts the broker with the watermark above what it uses idle. */
static void calibrate(void)
{
    pid_t pid;
    long rss_kib;
    FILE *f;

    if (watermark_bytes != 0)
        return;
    pid = sec_broker_pid();
    ck_assert_msg(pid > 0, "cannot find the harness's warrend");
    rss_kib = sec_rss_kib(pid);
    ck_assert_msg(rss_kib > 0, "cannot read the resident memory of warrend (pid %ld)", (long)pid);
    watermark_bytes = rss_kib * 1024 + MARGIN_BYTES;
    it_broker_stop(false);
    f = fopen(it_config_path(), "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "vm_memory_high_watermark.absolute = %ld\n", watermark_bytes);
    /* By default queues keep at most half the watermark in memory and page out the rest:
     * the big messages must stay in memory to set the alarm off. (Before warrend gave freed
     * memory back, the alarm also went off on the paged-out bodies' freed memory.) */
    fprintf(f, "queue_memory_limit = 1GB\n");
    ck_assert_int_eq(fclose(f), 0);
    it_broker_start(NULL);
    printf("it_alarms: warrend idle at %ld KiB, watermark %ld KiB\n", rss_kib,
           watermark_bytes / 1024);
}

/* ---- the publisher, in a thread of its own (its writes block while it is blocked) ------ */

struct publisher {
    const char *queue;
    bool capability; /* announce connection.blocked and expect it */
    /* Without the capability: the thread waits for alarm_seen before its round trip. */
    atomic_bool alarm_seen;
    /* What happened, read by the test when the flags say it is there. */
    atomic_bool big_done, blocked, unblocked, roundtrip_done, done;
    char reason[64];
    long long blocked_ms, unblocked_ms, roundtrip_ms;
    char error[512];
};

static void body_of(char *buf, size_t size, int seq)
{
    memset(buf, 'x', size);
    snprintf(buf, size, "seq %06d", seq);
    buf[strlen(buf)] = ' '; /* the padding follows the number, not a NUL */
}

static bool publish_seq(amqp_connection_state_t c, const char *queue, int seq, size_t size)
{
    static char big[BIG_BYTES];
    char *buf = size <= sizeof big ? big : NULL;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};

    body_of(buf, size, seq);
    return amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                              (amqp_bytes_t){size, buf}) == AMQP_STATUS_OK;
}

/* Waits up to timeout_ms for a method on channel 0 of c: its id, or 0 (with p->error set). */
static amqp_method_number_t wait_connection_method(struct publisher *p, amqp_connection_state_t c,
                                                   int timeout_ms, amqp_method_t *method)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    amqp_frame_t f;
    int rc;

    for (;;) {
        rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (rc != AMQP_STATUS_OK) {
            snprintf(p->error, sizeof p->error, "waiting %d ms for a connection method: %s",
                     timeout_ms, amqp_error_string2(rc));
            return 0;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && f.channel == 0) {
            *method = f.payload.method;
            return f.payload.method.id;
        }
    }
}

static void *publisher_run(void *arg)
{
    struct publisher *p = arg;
    struct timeval patient = {.tv_sec = 30};
    amqp_connection_state_t c = p->capability ? sec_connect_blockable() : it_connect();
    amqp_method_t m;
    amqp_rpc_reply_t r;
    int seq = 0;

    /* A stalled round trip must wait for the alarm to clear, not time out first. */
    amqp_set_rpc_timeout(c, &patient);
    /* Room in the socket for every big message: the alarm may stop the broker reading before
     * all are sent (a slow broker: sanitizers, a loaded machine), and a write that waited for
     * it would keep this thread from reading connection.blocked. SO_SNDBUFFORCE needs root;
     * SO_SNDBUF is the best a user gets. */
    {
        int bytes = (BIG_COUNT + 2) * BIG_BYTES;
        if (setsockopt(amqp_get_sockfd(c), SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
            setsockopt(amqp_get_sockfd(c), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
    for (; seq < BIG_COUNT; seq++) {
        if (!publish_seq(c, p->queue, seq, BIG_BYTES)) {
            snprintf(p->error, sizeof p->error, "publishing message %d failed", seq);
            goto out;
        }
    }
    p->big_done = true;
    if (p->capability) {
        if (wait_connection_method(p, c, BLOCK_WAIT_MS, &m) != AMQP_CONNECTION_BLOCKED_METHOD) {
            if (p->error[0] == '\0')
                snprintf(p->error, sizeof p->error, "expected connection.blocked, got %s",
                         amqp_method_name(m.id));
            goto out;
        }
        {
            const amqp_connection_blocked_t *b = m.decoded;
            snprintf(p->reason, sizeof p->reason, "%.*s", (int)b->reason.len,
                     (const char *)b->reason.bytes);
        }
        p->blocked_ms = it_now_ms();
        p->blocked = true;
        if (wait_connection_method(p, c, DRAIN_WAIT_MS, &m) != AMQP_CONNECTION_UNBLOCKED_METHOD) {
            if (p->error[0] == '\0')
                snprintf(p->error, sizeof p->error, "expected connection.unblocked, got %s",
                         amqp_method_name(m.id));
            goto out;
        }
        p->unblocked_ms = it_now_ms();
        p->unblocked = true;
    } else {
        long long deadline = it_now_ms() + BLOCK_WAIT_MS;
        while (!p->alarm_seen && it_now_ms() < deadline)
            it_sleep_ms(10);
        /* The broker no longer reads this socket: the answer comes after the alarm. */
        amqp_exchange_declare(c, 1, amqp_cstring_bytes("amq.direct"), amqp_cstring_bytes("direct"),
                              1, 0, 0, 0, amqp_empty_table);
        r = amqp_get_rpc_reply(c);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            it_reply_str(r, p->error, sizeof p->error);
            goto out;
        }
        p->roundtrip_ms = it_now_ms();
        p->roundtrip_done = true;
    }
    /* Publishing again, small messages that do not set the alarm off again. */
    for (int i = 0; i < SMALL_COUNT; i++, seq++) {
        if (!publish_seq(c, p->queue, seq, SMALL_BYTES)) {
            snprintf(p->error, sizeof p->error, "publishing message %d failed", seq);
            goto out;
        }
    }
    if (!publish_seq(c, p->queue, END_SEQ, SMALL_BYTES)) {
        snprintf(p->error, sizeof p->error, "publishing the last message failed");
        goto out;
    }
    /* Nothing else came on channel 0: no connection.blocked without the capability. */
    r = it_wait_method(c, 200);
    if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          r.library_error == AMQP_STATUS_TIMEOUT)) {
        snprintf(p->error, sizeof p->error, "unexpected frame after the alarm: ");
        it_reply_str(r, p->error + strlen(p->error), sizeof p->error - strlen(p->error));
    }
out:
    it_disconnect(c);
    p->done = true;
    return NULL;
}

/* ---- the consumer ---------------------------------------------------------------------- */

/* Consumes queue on c (acking each message) until the last message; fails unless it got
 * sequence numbers 0..BIG_COUNT+SMALL_COUNT-1 in order, then END_SEQ. Returns the time of
 * the first delivery. */
static long long drain(amqp_connection_state_t c, const char *queue, struct publisher *p)
{
    long long deadline = it_now_ms() + DRAIN_WAIT_MS, first_ms = 0;
    int expected = 0;
    struct it_msg m;

    it_qos(c, 1, 4, false);
    it_consume(c, 1, queue, NULL, false, false, NULL, 0);
    for (;;) {
        int seq = -1;
        long long left = deadline - it_now_ms();

        ck_assert_msg(left > 0 && it_next_delivery(c, (int)left, &m),
                      "no delivery within %d ms after message %d (publisher: %s)", DRAIN_WAIT_MS,
                      expected - 1, p->error[0] ? p->error : "no error");
        if (first_ms == 0)
            first_ms = it_now_ms();
        ck_assert_msg(m.message.body.len >= 10 &&
                          sscanf((const char *)m.message.body.bytes, "seq %6d", &seq) == 1,
                      "a message without a sequence number");
        it_ack(c, 1, m.delivery_tag, false);
        it_msg_free(&m);
        if (seq == END_SEQ)
            break;
        ck_assert_msg(seq == expected, "expected message %d, got %d", expected, seq);
        expected++;
    }
    ck_assert_int_eq(expected, BIG_COUNT + SMALL_COUNT);
    return first_ms;
}

static void wait_for(atomic_bool *flag, int timeout_ms, const char *what, struct publisher *p)
{
    long long deadline = it_now_ms() + timeout_ms;

    while (!*flag && it_now_ms() < deadline && !p->done)
        it_sleep_ms(10);
    ck_assert_msg(*flag, "%s did not happen within %d ms (publisher: %s)", what, timeout_ms,
                  p->error[0] ? p->error : "no error");
}

START_TEST(memory_alarm_blocks_publisher_with_connection_blocked_until_drained)
{
    amqp_connection_state_t consumer = it_connect();
    struct publisher p = {.capability = true};
    long long first_delivery_ms;
    pthread_t thread;
    char q[64];

    it_queue(consumer, it_name(q, sizeof q, "alarm.mem"));
    p.queue = q;
    ck_assert_int_eq(pthread_create(&thread, NULL, publisher_run, &p), 0);
    wait_for(&p.blocked, BLOCK_WAIT_MS + 2000, "connection.blocked", &p);
    ck_assert_str_eq(p.reason, "low on memory");
    ck_assert(it_broker_log_has("warning", "memory alarm set, publishers are blocked"));
    /* Consumers are served during the alarm: the queue drains, the alarm clears. */
    first_delivery_ms = drain(consumer, q, &p);
    pthread_join(thread, NULL);
    ck_assert_msg(p.error[0] == '\0', "publisher: %s", p.error);
    ck_assert(p.unblocked);
    ck_assert_msg(first_delivery_ms < p.unblocked_ms,
                  "the consumer got its first message only after the alarm cleared");
    ck_assert(it_broker_log_has("warning", "memory alarm cleared"));
    printf("blocked after %d messages of 1 MiB; unblocked %lld ms after the consumer started\n",
           BIG_COUNT, p.unblocked_ms - first_delivery_ms);
    it_queue_delete(consumer, q);
    it_disconnect(consumer);
}
END_TEST

/* A connection that announced the capability and published once: it is told when the alarm
 * is set, so the test knows without reading the log. */
static amqp_connection_state_t sentinel(void)
{
    amqp_connection_state_t c = sec_connect_blockable();

    it_publish(c, "", "it.alarm.nowhere", "makes this connection a publisher");
    it_assert_channel_alive(c, 1);
    return c;
}

static void expect_connection_method(amqp_connection_state_t c, amqp_method_number_t id,
                                     int timeout_ms)
{
    amqp_channel_t ch = 1;
    amqp_rpc_reply_t r = it_wait_method_on(c, timeout_ms, &ch);
    char buf[512];

    ck_assert_msg(r.reply_type == AMQP_RESPONSE_NORMAL && r.reply.id == id && ch == 0,
                  "expected %s, got %s", amqp_method_name(id), it_reply_str(r, buf, sizeof buf));
}

START_TEST(memory_alarm_stalls_publisher_without_capability_silently)
{
    amqp_connection_state_t consumer = it_connect(), watch = sentinel();
    struct publisher p = {.capability = false};
    pthread_t thread;
    char q[64];

    it_queue(consumer, it_name(q, sizeof q, "alarm.silent"));
    p.queue = q;
    ck_assert_int_eq(pthread_create(&thread, NULL, publisher_run, &p), 0);
    expect_connection_method(watch, AMQP_CONNECTION_BLOCKED_METHOD, BLOCK_WAIT_MS);
    p.alarm_seen = true;
    /* The publisher's round trip stalls: the broker does not read its socket. */
    it_sleep_ms(STALL_CHECK_MS);
    ck_assert_msg(!p.roundtrip_done, "a blocked publisher's round trip was answered (%s)",
                  p.error[0] ? p.error : "no error");
    drain(consumer, q, &p);
    pthread_join(thread, NULL);
    ck_assert_msg(p.error[0] == '\0', "publisher: %s", p.error);
    ck_assert(p.roundtrip_done);
    expect_connection_method(watch, AMQP_CONNECTION_UNBLOCKED_METHOD, 1000);
    it_disconnect(watch);
    it_queue_delete(consumer, q);
    it_disconnect(consumer);
}
END_TEST

/* During the alarm new connections are accepted and non-publishing work goes on. */
START_TEST(memory_alarm_lets_other_clients_work)
{
    amqp_connection_state_t consumer = it_connect(), other;
    struct publisher p = {.capability = true};
    pthread_t thread;
    char q[64], q2[64];

    it_queue(consumer, it_name(q, sizeof q, "alarm.others"));
    p.queue = q;
    ck_assert_int_eq(pthread_create(&thread, NULL, publisher_run, &p), 0);
    wait_for(&p.blocked, BLOCK_WAIT_MS + 2000, "connection.blocked", &p);
    other = it_connect();
    it_temp_queue(other, it_name(q2, sizeof q2, "alarm.declared"));
    it_bind(other, q2, "amq.fanout", "", amqp_empty_table);
    {
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(other, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
        it_assert_ok(amqp_get_rpc_reply(other), "passive queue.declare during the alarm");
        ck_assert_uint_gt(ok->message_count, 0);
    }
    it_disconnect(other);
    drain(consumer, q, &p);
    pthread_join(thread, NULL);
    ck_assert_msg(p.error[0] == '\0', "publisher: %s", p.error);
    it_queue_delete(consumer, q);
    it_disconnect(consumer);
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;

    if (getenv("AMQP_HOST") != NULL && getenv("AMQP_HOST")[0] != '\0') {
        printf("it_alarms: skipped: it configures its own warrend's memory watermark, and "
               "AMQP_HOST names an external broker\n");
        return 77;
    }
    {
        /* AddressSanitizer keeps freed memory in a quarantine (256 MB by default), so under
         * a sanitizer build a drained queue would give nothing back and the alarm would
         * never clear: the broker of this program gets a small one (later options win). */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];

        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1", asan != NULL ? asan : "",
                 asan != NULL && asan[0] != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    s = suite_create("alarms");
    tc = it_tcase(s, "memory");
    /* In the process that started the broker, which alone can restart it. */
    tcase_add_unchecked_fixture(tc, calibrate, NULL);
    tcase_add_test(tc, memory_alarm_blocks_publisher_with_connection_blocked_until_drained);
    tcase_add_test(tc, memory_alarm_stalls_publisher_without_capability_silently);
    tcase_add_test(tc, memory_alarm_lets_other_clients_work);
    return it_run(s, NULL);
}
