/* Message TTL (x-message-ttl per queue, the expiration property per message), dead-lettering
 * of expired messages, and queue expiry (x-expires). Validated against RabbitMQ 3.10.8,
 * except the one test marked warrend-only. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS  2000
#define QUIET_MS 300
#define LATE_MS  200 /* how late an expiry may happen, measured by the client */

/* An exclusive queue on channel 1 with optional TTL (negative: none), dead-lettering to the
 * default exchange with key dlq (NULL: none) and x-expires (negative: none). */
static void ttl_queue(amqp_connection_state_t c, const char *q, long ttl_ms, const char *dlq)
{
    struct it_table args;

    it_table_init(&args);
    if (ttl_ms >= 0)
        it_table_add_long(&args, "x-message-ttl", ttl_ms);
    if (dlq != NULL) {
        it_table_add_str(&args, "x-dead-letter-exchange", "");
        it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    }
    it_queue_declare(c, 1, q, false, true, false, args.table, NULL, NULL);
}

/* Publishes body to q through the default exchange with an expiration (NULL: none). */
static void publish_expiring(amqp_connection_state_t c, const char *q, const char *body,
                             const char *expiration)
{
    amqp_basic_properties_t props = {0};

    if (expiration != NULL) {
        props._flags = AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(expiration);
    }
    it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes(body));
}

/* The single x-death entry of m (fails unless there is exactly one). */
static const amqp_table_t *only_death(const struct it_msg *m)
{
    amqp_table_t h = it_headers(m);
    const amqp_field_value_t *deaths = it_table_get(&h, "x-death");

    ck_assert_msg(deaths != NULL && deaths->kind == AMQP_FIELD_KIND_ARRAY, "no x-death array");
    ck_assert_int_eq(deaths->value.array.num_entries, 1);
    ck_assert_int_eq(deaths->value.array.entries[0].kind, AMQP_FIELD_KIND_TABLE);
    return &deaths->value.array.entries[0].value.table;
}

START_TEST(queue_ttl_expires_messages)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    ttl_queue(c, it_name(q, sizeof q, "ttl.queue"), 100, NULL);
    it_publish(c, "", q, "fresh");
    it_expect_get(c, 1, q, "fresh", NULL);
    it_publish(c, "", q, "stale");
    it_sleep_ms(250);
    it_expect_empty(c, 1, q);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(per_message_expiration_expires_only_that_message)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    ttl_queue(c, it_name(q, sizeof q, "ttl.msg"), -1, NULL);
    publish_expiring(c, q, "short", "100");
    it_sleep_ms(250);
    publish_expiring(c, q, "long", "60000");
    publish_expiring(c, q, "forever", NULL);
    it_expect_get(c, 1, q, "long", NULL);
    it_expect_get(c, 1, q, "forever", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(lower_of_queue_ttl_and_expiration_wins)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];

    /* Queue allows 60 s, the message 100 ms; then the other way round. */
    ttl_queue(c, it_name(q1, sizeof q1, "ttl.low1"), 60000, NULL);
    ttl_queue(c, it_name(q2, sizeof q2, "ttl.low2"), 100, NULL);
    publish_expiring(c, q1, "msg-short", "100");
    publish_expiring(c, q2, "queue-short", "60000");
    it_sleep_ms(300);
    it_expect_empty(c, 1, q1);
    it_expect_empty(c, 1, q2);
    it_disconnect(c);
}
END_TEST

START_TEST(ttl_zero_without_consumer_expires_at_once)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.zero.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.zero"), 0, dlq);
    it_publish(c, "", q, "nobody-waits");
    publish_expiring(c, q, "expiration-zero", "0");
    it_await_get(c, 1, dlq, "nobody-waits", &m, WAIT_MS);
    it_assert_table_str(only_death(&m), "reason", "expired");
    it_msg_free(&m);
    it_await_get(c, 1, dlq, "expiration-zero", NULL, WAIT_MS);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(ttl_zero_reaches_a_waiting_consumer)
{
    amqp_connection_state_t c = it_connect();
    char q[64], q2[64];
    struct it_msg m;

    ttl_queue(c, it_name(q, sizeof q, "ttl.zerocons"), 0, NULL);
    ttl_queue(c, it_name(q2, sizeof q2, "ttl.zerocons2"), -1, NULL);
    it_consume(c, 1, q, "waiting", true, false, NULL, 0);
    it_consume(c, 1, q2, "waiting2", true, false, NULL, 0);
    it_publish(c, "", q, "caught");
    it_expect_delivery(c, WAIT_MS, "caught", &m);
    ck_assert_str_eq(m.consumer_tag, "waiting");
    it_msg_free(&m);
    publish_expiring(c, q2, "caught-too", "0");
    it_expect_delivery(c, WAIT_MS, "caught-too", &m);
    ck_assert_str_eq(m.consumer_tag, "waiting2");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(expired_messages_are_dead_lettered_with_reason_expired)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64], body[64];
    const amqp_table_t *death;
    struct it_msg m;
    amqp_table_t h;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.dl.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.dl"), 100, dlq);
    it_publish(c, "", q, "by-queue-ttl");
    publish_expiring(c, q, "by-expiration", "50");

    /* Either may come first: RabbitMQ expires at the head only (queue TTL first), Warren
     * each message at its own time (the 50 ms one first). */
    for (int i = 0; i < 2; i++) {
        long long deadline = it_now_ms() + WAIT_MS;

        while (!it_get(c, 1, dlq, true, &m)) {
            ck_assert_msg(it_now_ms() < deadline, "only %d dead letters", i);
            it_sleep_ms(10);
        }
        death = only_death(&m);
        it_assert_table_str(death, "reason", "expired");
        it_assert_table_str(death, "queue", q);
        it_assert_table_long(death, "count", 1);
        h = it_headers(&m);
        it_assert_table_str(&h, "x-first-death-reason", "expired");
        ck_assert_msg((m.message.properties._flags & AMQP_BASIC_EXPIRATION_FLAG) == 0,
                      "expiration still set on the dead letter");
        it_body(&m, body, sizeof body);
        if (strcmp(body, "by-expiration") == 0)
            it_assert_table_str(death, "original-expiration", "50");
        else if (strcmp(body, "by-queue-ttl") == 0)
            ck_assert_ptr_null(it_table_get(death, "original-expiration"));
        else
            ck_abort_msg("unexpected dead letter '%s'", body);
        it_msg_free(&m);
    }
    it_expect_empty(c, 1, dlq);
    it_disconnect(c);
}
END_TEST

/* A requeued message keeps its deadline (queue TTL or expiration): returned after it passed,
 * by a nack, a closed channel or basic.recover, it is dead-lettered as expired, never
 * redelivered. */
START_TEST(requeued_message_past_its_deadline_expires_instead_of_coming_back)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;
    uint64_t tag;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.requeue.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.requeue"), 300, dlq);
    it_publish(c, "", q, "by-queue-ttl");
    publish_expiring(c, q, "by-expiration", "200");
    it_publish(c, "", q, "recovered");
    it_channel_open(c, 2);
    ck_assert(it_get(c, 2, q, false, &m));
    it_assert_body(&m, "by-queue-ttl");
    tag = m.delivery_tag;
    it_msg_free(&m);
    ck_assert(it_get(c, 2, q, false, &m));
    it_assert_body(&m, "by-expiration");
    it_msg_free(&m);
    it_channel_open(c, 3);
    ck_assert(it_get(c, 3, q, false, &m));
    it_assert_body(&m, "recovered");
    it_msg_free(&m);
    it_sleep_ms(500);
    ck_assert_int_eq(amqp_basic_nack(c, 2, tag, false, true), AMQP_STATUS_OK);
    it_assert_channel_alive(c, 2);
    ck_assert_ptr_nonnull(amqp_basic_recover(c, 3, 1));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.recover");
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    for (int i = 0; i < 3; i++) {
        long long deadline = it_now_ms() + WAIT_MS;

        while (!it_get(c, 1, dlq, true, &m)) {
            ck_assert_msg(it_now_ms() < deadline, "only %d dead letters", i);
            it_sleep_ms(10);
        }
        it_assert_table_str(only_death(&m), "reason", "expired");
        it_msg_free(&m);
    }
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

/* With a TTL of 0 a message reaches only a consumer waiting for it: rejected with requeue,
 * it expires at once and is not delivered again. */
START_TEST(ttl_zero_message_rejected_with_requeue_is_not_redelivered)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.zero.requeue.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.zero.requeue"), 0, dlq);
    it_consume(c, 1, q, "waiting", false, false, NULL, 0);
    it_publish(c, "", q, "once");
    it_expect_delivery(c, WAIT_MS, "once", &m);
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    it_expect_no_delivery(c, QUIET_MS);
    it_await_get(c, 1, dlq, "once", &m, WAIT_MS);
    it_assert_table_str(only_death(&m), "reason", "expired");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(expiry_without_consumer_happens_on_time)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;
    long long start, took;

    /* Nobody reads q: the broker must expire the message by its own timer, which the
     * consumer on the dead-letter queue sees. */
    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.time.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.time"), 300, dlq);
    it_consume(c, 1, dlq, "timer", true, false, NULL, 0);
    start = it_now_ms();
    it_publish(c, "", q, "timed");
    it_expect_delivery(c, WAIT_MS, "timed", &m);
    took = it_now_ms() - start;
    it_msg_free(&m);
    ck_assert_msg(took >= 300 - 5 && took <= 300 + LATE_MS,
                  "expired after %lld ms, expected 300 ms", took);
    it_disconnect(c);
}
END_TEST

/* Warrend only: RabbitMQ's classic queues expire messages only at the head of the queue, so
 * a short-lived message behind a long-lived one waits there (and counts in the queue's
 * length) until the head goes. Warren removes it when its time comes wherever it is. */
START_TEST(expired_message_behind_the_head_is_removed_on_time)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;
    long long start, took;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ttl.mid.dlq"));
    ttl_queue(c, it_name(q, sizeof q, "ttl.mid"), -1, dlq);
    it_consume(c, 1, dlq, "timer", true, false, NULL, 0);
    start = it_now_ms();
    publish_expiring(c, q, "head", NULL);
    publish_expiring(c, q, "behind", "100");
    publish_expiring(c, q, "tail", NULL);
    it_expect_delivery(c, WAIT_MS, "behind", &m);
    took = it_now_ms() - start;
    it_assert_table_str(only_death(&m), "reason", "expired");
    it_msg_free(&m);
    ck_assert_msg(took >= 100 - 5 && took <= 100 + LATE_MS, "expired after %lld ms", took);
    it_expect_counts(c, q, 2, 0);
    it_expect_get(c, 1, q, "head", NULL);
    it_expect_get(c, 1, q, "tail", NULL);
    it_disconnect(c);
}
END_TEST

static void expect_invalid_expiration(const char *expiration, const char *text)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "ttl.badexp"));
    publish_expiring(c, q, "bad", expiration);
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406, text);
    it_channel_open(c, 1);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}

START_TEST(invalid_expiration_closes_channel_with_406)
{
    expect_invalid_expiration("soon",
                              "PRECONDITION_FAILED - invalid expiration 'soon': no_integer");
    expect_invalid_expiration("", "PRECONDITION_FAILED - invalid expiration '': no_integer");
    expect_invalid_expiration(" 5", "PRECONDITION_FAILED - invalid expiration ' 5': no_integer");
    expect_invalid_expiration("-1",
                              "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}");
    expect_invalid_expiration("1.5", "PRECONDITION_FAILED - invalid expiration '1.5': "
                                     "{leftover_string,\".5\"}");
    /* Erlang's ~p breaks the long term over two lines, and RabbitMQ sends it so. */
    expect_invalid_expiration("99999999999999999999",
                              "PRECONDITION_FAILED - invalid expiration '99999999999999999999': "
                              "{value_too_large,\n"
                              "                                            "
                              "99999999999999999999}");
}
END_TEST

START_TEST(expiration_with_a_plus_sign_is_accepted)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    ttl_queue(c, it_name(q, sizeof q, "ttl.plus"), -1, NULL);
    publish_expiring(c, q, "plus", "+60000");
    it_expect_get(c, 1, q, "plus", NULL);
    it_disconnect(c);
}
END_TEST

/* ---- x-expires -------------------------------------------------------------------------- */

static void expiring_queue(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                           long expires_ms)
{
    struct it_table args;

    it_table_init(&args);
    it_table_add_long(&args, "x-expires", expires_ms);
    it_queue_declare(c, ch, q, false, false, false, args.table, NULL, NULL);
}

START_TEST(unused_queue_is_deleted_after_x_expires)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    expiring_queue(c, 1, it_name(q, sizeof q, "ttl.expires"), 300);
    it_publish(c, "", q, "lost-with-the-queue");
    it_expect_counts(c, q, 1, 0); /* still there well before its time */
    it_sleep_ms(800);
    it_expect_queue_gone(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(consumer_keeps_an_expiring_queue_alive)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_channel_open(c, 2);
    expiring_queue(c, 2, it_name(q, sizeof q, "ttl.alive"), 300);
    it_consume(c, 2, q, "keeper", true, false, NULL, 0);
    it_sleep_ms(800);
    it_expect_counts(c, q, 0, 1);
    amqp_basic_cancel(c, 2, amqp_cstring_bytes("keeper"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_sleep_ms(800);
    it_expect_queue_gone(c, q);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ttl");
    TCase *tc = it_tcase(s, "message_ttl");

    tcase_add_test(tc, queue_ttl_expires_messages);
    tcase_add_test(tc, per_message_expiration_expires_only_that_message);
    tcase_add_test(tc, lower_of_queue_ttl_and_expiration_wins);
    tcase_add_test(tc, ttl_zero_without_consumer_expires_at_once);
    tcase_add_test(tc, ttl_zero_reaches_a_waiting_consumer);
    tcase_add_test(tc, requeued_message_past_its_deadline_expires_instead_of_coming_back);
    tcase_add_test(tc, ttl_zero_message_rejected_with_requeue_is_not_redelivered);
    tcase_add_test(tc, expired_messages_are_dead_lettered_with_reason_expired);
    tcase_add_test(tc, expiry_without_consumer_happens_on_time);
    it_add_warrend_test(tc, expired_message_behind_the_head_is_removed_on_time);
    tcase_add_test(tc, invalid_expiration_closes_channel_with_406);
    tcase_add_test(tc, expiration_with_a_plus_sign_is_accepted);
    tc = it_tcase(s, "queue_expiry");
    tcase_add_test(tc, unused_queue_is_deleted_after_x_expires);
    tcase_add_test(tc, consumer_keeps_an_expiring_queue_alive);
    return it_run(s, NULL);
}
