/* Poison messages and stuck consumers: delivery limits and the consumer timeout. Warrend
 * only, so the program skips (exit 77) when AMQP_HOST names an external broker:
 *
 * - RabbitMQ's classic queues refuse x-delivery-limit ("invalid arg 'x-delivery-limit' for
 *   queue '<q>' in vhost '/' of queue type rabbit_classic_queue"); its quorum queues have it:
 *   a message returned more than N times is dead-lettered with reason delivery_limit, and
 *   consumers see x-delivery-count on redeliveries. Warren gives every queue that, with
 *   these semantics: with x-delivery-limit N a message may come back (nack/reject with
 *   requeue, its channel or connection closed while it was unacked, basic.recover) N times;
 *   the (N+1)-th return dead-letters it (reason delivery_limit) or drops it when the queue
 *   has no dead-letter exchange. A redelivery carries x-delivery-count (long) = the number of
 *   returns so far. `delivery_limit = N` in warren.conf is the default for queues without
 *   the argument.
 * - The consumer timeout is RabbitMQ's `consumer_timeout` setting, which a test cannot change
 *   on a shared RabbitMQ; this program starts warrend with consumer_timeout = 500.
 *
 * Each part runs against its own warrend with its own configuration. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS  2000
#define QUIET_MS 300

#define DEFAULT_LIMIT       2
#define CONSUMER_TIMEOUT_MS 500

/* A plain queue (not exclusive: other connections consume it; it goes with its warrend) with
 * x-delivery-limit (negative: none) and dead-lettering to the default exchange with key dlq
 * (NULL: none). */
static void limited_queue(amqp_connection_state_t c, const char *q, long limit, const char *dlq)
{
    struct it_table args;

    it_table_init(&args);
    if (limit >= 0)
        it_table_add_long(&args, "x-delivery-limit", limit);
    if (dlq != NULL) {
        it_table_add_str(&args, "x-dead-letter-exchange", "");
        it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    }
    it_queue_declare(c, 1, q, false, false, false, args.table, NULL, NULL);
}

/* Fails unless m carries x-delivery-count = returns ('l'), or none when returns is 0, and is
 * flagged redelivered exactly when it came back before. */
static void assert_delivery_count(const struct it_msg *m, long returns)
{
    amqp_table_t h = it_headers(m);

    if (returns == 0)
        ck_assert_msg(it_table_get(&h, "x-delivery-count") == NULL,
                      "first delivery carries x-delivery-count");
    else
        it_assert_table_long(&h, "x-delivery-count", returns);
    ck_assert_msg(m->redelivered == (returns > 0), "redelivered %d after %ld returns",
                  m->redelivered, returns);
}

/* Fails unless dlq receives body with one x-death entry, reason delivery_limit, from q. */
static void expect_limit_dead_letter(amqp_connection_state_t c, const char *dlq, const char *q,
                                     const char *body)
{
    const amqp_field_value_t *deaths;
    const amqp_table_t *death;
    struct it_msg m;
    amqp_table_t h;

    it_await_get(c, 1, dlq, body, &m, WAIT_MS);
    h = it_headers(&m);
    deaths = it_table_get(&h, "x-death");
    ck_assert_msg(deaths != NULL && deaths->kind == AMQP_FIELD_KIND_ARRAY &&
                      deaths->value.array.num_entries == 1 &&
                      deaths->value.array.entries[0].kind == AMQP_FIELD_KIND_TABLE,
                  "no single x-death entry");
    death = &deaths->value.array.entries[0].value.table;
    it_assert_table_str(death, "reason", "delivery_limit");
    it_assert_table_str(death, "queue", q);
    it_assert_table_long(death, "count", 1);
    it_assert_table_str(&h, "x-first-death-reason", "delivery_limit");
    it_msg_free(&m);
}

/* A consumer that nacks with requeue every delivery of q: fails unless exactly
 * expected_deliveries arrive, with x-delivery-count 0, 1, 2, ... */
static void nack_until_gone(amqp_connection_state_t c, const char *q, int expected_deliveries)
{
    struct it_msg m;

    it_consume(c, 1, q, "poison-eater", false, false, NULL, 0);
    for (int i = 0; i < expected_deliveries; i++) {
        it_expect_delivery(c, WAIT_MS, "poison", &m);
        assert_delivery_count(&m, i);
        ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK);
        it_msg_free(&m);
    }
    it_expect_no_delivery(c, QUIET_MS);
}

/* ---- x-delivery-limit on the queue ----------------------------------------------------- */

START_TEST(poison_message_is_dead_lettered_after_limit_plus_one_deliveries)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.poison"), 2, dlq);
    it_publish(c, "", q, "poison");
    nack_until_gone(c, q, 3);
    expect_limit_dead_letter(c, dlq, q, "poison");
    it_expect_counts(c, q, 0, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(poison_message_without_dead_letter_exchange_is_dropped)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    limited_queue(c, it_name(q, sizeof q, "dlim.drop"), 2, NULL);
    it_publish(c, "", q, "poison");
    nack_until_gone(c, q, 3);
    it_expect_counts(c, q, 0, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(limit_zero_dead_letters_at_the_first_return)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.zero.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.zero"), 0, dlq);
    it_publish(c, "", q, "poison");
    nack_until_gone(c, q, 1);
    expect_limit_dead_letter(c, dlq, q, "poison");
    it_disconnect(c);
}
END_TEST

START_TEST(dropped_connections_count_as_returns)
{
    amqp_connection_state_t owner = it_connect();
    char q[64], dlq[64];
    struct it_msg m;

    it_temp_queue(owner, it_name(dlq, sizeof dlq, "dlim.conn.dlq"));
    limited_queue(owner, it_name(q, sizeof q, "dlim.conn"), 1, dlq);
    it_publish(owner, "", q, "poison");
    for (int i = 0; i < 2; i++) {
        amqp_connection_state_t victim = it_connect();

        it_consume(victim, 1, q, "crasher", false, false, NULL, 0);
        it_expect_delivery(victim, WAIT_MS, "poison", &m);
        assert_delivery_count(&m, i);
        it_msg_free(&m);
        /* Gone without acking: the socket closes under the broker, no connection.close. */
        amqp_destroy_connection(victim);
    }
    expect_limit_dead_letter(owner, dlq, q, "poison");
    it_expect_counts(owner, q, 0, 0);
    it_disconnect(owner);
}
END_TEST

START_TEST(every_kind_of_return_counts)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.kinds.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.kinds"), 3, dlq);
    it_publish(c, "", q, "poison");

    ck_assert(it_get(c, 1, q, false, &m));
    assert_delivery_count(&m, 0);
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 1), AMQP_STATUS_OK); /* 1 */
    it_msg_free(&m);

    ck_assert(it_get(c, 1, q, false, &m));
    assert_delivery_count(&m, 1);
    it_msg_free(&m);
    ck_assert_ptr_nonnull(amqp_basic_recover(c, 1, 1)); /* 2 */

    it_channel_open(c, 2);
    ck_assert(it_get(c, 2, q, false, &m));
    assert_delivery_count(&m, 2);
    it_msg_free(&m);
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close"); /* 3 */

    ck_assert(it_get(c, 1, q, false, &m));
    assert_delivery_count(&m, 3);
    ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK); /* 4 */
    it_msg_free(&m);
    expect_limit_dead_letter(c, dlq, q, "poison");
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(acks_and_rejects_without_requeue_do_not_count)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    const amqp_field_value_t *deaths;
    struct it_msg m;
    amqp_table_t h;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.fine.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.fine"), 1, dlq);
    it_publish(c, "", q, "good");
    it_publish(c, "", q, "bad");
    ck_assert(it_get(c, 1, q, false, &m));
    ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    ck_assert(it_get(c, 1, q, false, &m)); /* "good" again, returned once: within the limit */
    it_assert_body(&m, "good");
    assert_delivery_count(&m, 1);
    it_ack(c, 1, m.delivery_tag, false);
    it_msg_free(&m);
    ck_assert(it_get(c, 1, q, false, &m));
    it_assert_body(&m, "bad");
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 0), AMQP_STATUS_OK);
    it_msg_free(&m);
    /* Rejected without requeue: an ordinary dead letter, not a delivery-limit one. */
    it_await_get(c, 1, dlq, "bad", &m, WAIT_MS);
    h = it_headers(&m);
    deaths = it_table_get(&h, "x-death");
    ck_assert_ptr_nonnull(deaths);
    ck_assert_int_eq(deaths->kind, AMQP_FIELD_KIND_ARRAY);
    ck_assert_int_eq(deaths->value.array.entries[0].kind, AMQP_FIELD_KIND_TABLE);
    it_assert_table_str(&deaths->value.array.entries[0].value.table, "reason", "rejected");
    it_msg_free(&m);
    it_expect_empty(c, 1, q);
    it_expect_empty(c, 1, dlq);
    it_disconnect(c);
}
END_TEST

/* ---- delivery_limit in warren.conf ----------------------------------------------------- */

START_TEST(configured_default_applies_to_queues_without_the_argument)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.default.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.default"), -1, dlq);
    it_publish(c, "", q, "poison");
    nack_until_gone(c, q, DEFAULT_LIMIT + 1);
    expect_limit_dead_letter(c, dlq, q, "poison");
    it_disconnect(c);
}
END_TEST

START_TEST(queue_argument_overrides_the_configured_default)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dlim.override.dlq"));
    limited_queue(c, it_name(q, sizeof q, "dlim.override"), 4, dlq);
    it_publish(c, "", q, "poison");
    nack_until_gone(c, q, 5);
    expect_limit_dead_letter(c, dlq, q, "poison");
    it_disconnect(c);
}
END_TEST

/* ---- consumer_timeout ------------------------------------------------------------------ */

START_TEST(unacked_delivery_past_the_timeout_closes_the_channel_and_is_requeued)
{
    amqp_connection_state_t slow = it_connect();
    amqp_connection_state_t other = it_connect();
    struct it_msg m;
    long long start, took;
    char q[64];

    limited_queue(other, it_name(q, sizeof q, "ctimeout"), -1, NULL);
    it_consume(slow, 1, q, "slow", false, false, NULL, 0);
    it_publish(other, "", q, "stuck");
    it_expect_delivery(slow, WAIT_MS, "stuck", &m);
    it_msg_free(&m);
    start = it_now_ms();
    it_expect_channel_close(slow, 1, it_wait_method(slow, 5 * CONSUMER_TIMEOUT_MS), 406,
                            "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed "
                            "out. Timeout value used: 500 ms. This timeout value can be "
                            "configured, see consumers doc guide to learn more");
    took = it_now_ms() - start;
    ck_assert_msg(took >= CONSUMER_TIMEOUT_MS - 50, "closed after %lld ms", took);
    /* The connection survives; the message goes to the next consumer, redelivered. */
    it_channel_open(slow, 1);
    it_assert_channel_alive(slow, 1);
    it_consume(other, 1, q, "next", false, false, NULL, 0);
    it_expect_delivery(other, WAIT_MS, "stuck", &m);
    ck_assert(m.redelivered);
    it_ack(other, 1, m.delivery_tag, false);
    it_msg_free(&m);
    it_disconnect(slow);
    it_disconnect(other);
}
END_TEST

START_TEST(deliveries_acked_in_time_keep_the_channel_open)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "ctimeout.ok"));
    it_consume(c, 1, q, "quick", false, false, NULL, 0);
    for (int i = 0; i < 4; i++) {
        it_publish(c, "", q, "fine");
        it_expect_delivery(c, WAIT_MS, "fine", &m);
        it_sleep_ms(CONSUMER_TIMEOUT_MS / 2);
        it_ack(c, 1, m.delivery_tag, false);
        it_msg_free(&m);
    }
    /* Nothing unacked now: long after the timeout the channel is still open. */
    it_sleep_ms(2 * CONSUMER_TIMEOUT_MS);
    ck_assert_int_eq(it_wait_method(c, 0).library_error, AMQP_STATUS_TIMEOUT);
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    const char *host = getenv("AMQP_HOST");
    char config[128];
    Suite *s;
    TCase *tc;
    int rc = 0;

    if (host != NULL && host[0] != '\0') {
        printf("it_delivery_limit: skipped: warrend only (RabbitMQ classic queues have no "
               "x-delivery-limit, and its consumer_timeout cannot be set by a test), and "
               "AMQP_HOST names an external broker\n");
        return 77;
    }

    s = suite_create("delivery_limit");
    tc = it_tcase(s, "queue_argument");
    tcase_add_test(tc, poison_message_is_dead_lettered_after_limit_plus_one_deliveries);
    tcase_add_test(tc, poison_message_without_dead_letter_exchange_is_dropped);
    tcase_add_test(tc, limit_zero_dead_letters_at_the_first_return);
    tcase_add_test(tc, dropped_connections_count_as_returns);
    tcase_add_test(tc, every_kind_of_return_counts);
    tcase_add_test(tc, acks_and_rejects_without_requeue_do_not_count);
    rc |= it_run(s, NULL);

    s = suite_create("delivery_limit_default");
    tc = it_tcase(s, "config");
    tcase_add_test(tc, configured_default_applies_to_queues_without_the_argument);
    tcase_add_test(tc, queue_argument_overrides_the_configured_default);
    snprintf(config, sizeof config, "delivery_limit = %d\n", DEFAULT_LIMIT);
    rc |= it_run(s, config);

    s = suite_create("consumer_timeout");
    tc = it_tcase(s, "timeout");
    tcase_add_test(tc, unacked_delivery_past_the_timeout_closes_the_channel_and_is_requeued);
    tcase_add_test(tc, deliveries_acked_in_time_keep_the_channel_open);
    snprintf(config, sizeof config, "consumer_timeout = %d\n", CONSUMER_TIMEOUT_MS);
    rc |= it_run(s, config);
    return rc;
}
