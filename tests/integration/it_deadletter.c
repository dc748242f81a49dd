/* Dead-letter exchanges: what a rejected (or cycled) message looks like when it reaches the
 * dead-letter queue: the x-death array, the x-first-death-* headers, the routing key, the
 * properties. Validated against RabbitMQ 3.10.8; the x-last-death-* headers exist only in
 * newer RabbitMQ versions and are asserted only against warrend. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS  2000
#define QUIET_MS 300

/* A queue on channel 1 whose dead letters go to dlx (NULL: no dead-lettering) with dlrk
 * (NULL: the message's own keys) and whose messages live ttl_ms (negative: forever). */
static void dl_queue(amqp_connection_state_t c, const char *q, const char *dlx, const char *dlrk,
                     long ttl_ms)
{
    struct it_table args;

    it_table_init(&args);
    if (dlx != NULL)
        it_table_add_str(&args, "x-dead-letter-exchange", dlx);
    if (dlrk != NULL)
        it_table_add_str(&args, "x-dead-letter-routing-key", dlrk);
    if (ttl_ms >= 0)
        it_table_add_long(&args, "x-message-ttl", ttl_ms);
    it_queue_declare(c, 1, q, false, true, false, args.table, NULL, NULL);
}

/* Takes the next message of q for a manual ack, waiting up to WAIT_MS for one: dead letters
 * reach their queue asynchronously. */
static void get_unacked(amqp_connection_state_t c, const char *q, const char *body,
                        struct it_msg *m)
{
    long long deadline = it_now_ms() + WAIT_MS;

    while (!it_get(c, 1, q, false, m)) {
        ck_assert_msg(it_now_ms() < deadline, "queue '%s' empty, expected '%s'", q, body);
        it_sleep_ms(10);
    }
    it_assert_body(m, body);
}

/* Takes the next message of q (waiting for one) and rejects it without requeue. */
static void get_and_reject(amqp_connection_state_t c, const char *q, const char *body)
{
    struct it_msg m;

    get_unacked(c, q, body, &m);
    it_assert_body(&m, body);
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 0), AMQP_STATUS_OK);
    it_msg_free(&m);
}

/* Fails unless the message's x-death holds n tables, and returns entry i. */
static const amqp_table_t *x_death_entry(const struct it_msg *m, int n, int i)
{
    amqp_table_t h = it_headers(m);
    const amqp_field_value_t *deaths = it_table_get(&h, "x-death");

    ck_assert_msg(deaths != NULL, "no x-death header");
    ck_assert_msg(deaths->kind == AMQP_FIELD_KIND_ARRAY, "x-death has kind '%c'", deaths->kind);
    ck_assert_int_eq(deaths->value.array.num_entries, n);
    ck_assert_msg(deaths->value.array.entries[i].kind == AMQP_FIELD_KIND_TABLE,
                  "x-death[%d] has kind '%c'", i, deaths->value.array.entries[i].kind);
    return &deaths->value.array.entries[i].value.table;
}

/* Fails unless death is {count, reason, queue, time, exchange, routing-keys} (plus
 * original-expiration when expiration is not NULL) with these values, and nothing else. */
static void assert_death(const amqp_table_t *death, long count, const char *reason,
                         const char *queue, const char *exchange, const char *const *keys,
                         int n_keys, const char *expiration)
{
    const amqp_field_value_t *t = it_table_get(death, "time");
    const amqp_field_value_t *rk = it_table_get(death, "routing-keys");
    long long now = (long long)time(NULL);

    it_assert_table_long(death, "count", count);
    it_assert_table_str(death, "reason", reason);
    it_assert_table_str(death, "queue", queue);
    it_assert_table_str(death, "exchange", exchange);
    ck_assert_msg(t != NULL && t->kind == AMQP_FIELD_KIND_TIMESTAMP, "x-death time missing or "
                                                                     "not a timestamp");
    ck_assert_msg((long long)t->value.u64 >= now - 10 && (long long)t->value.u64 <= now + 1,
                  "x-death time %llu, now %lld", (unsigned long long)t->value.u64, now);
    ck_assert_msg(rk != NULL && rk->kind == AMQP_FIELD_KIND_ARRAY, "routing-keys missing or not "
                                                                   "an array");
    ck_assert_int_eq(rk->value.array.num_entries, n_keys);
    for (int i = 0; i < n_keys; i++) {
        ck_assert_int_eq(rk->value.array.entries[i].kind, AMQP_FIELD_KIND_UTF8);
        it_assert_bytes(rk->value.array.entries[i].value.bytes, keys[i]);
    }
    if (expiration != NULL)
        it_assert_table_str(death, "original-expiration", expiration);
    else
        ck_assert_ptr_null(it_table_get(death, "original-expiration"));
    ck_assert_int_eq(death->num_entries, expiration != NULL ? 7 : 6);
}

/* Fails unless the x-first-death-* headers (and, against warrend, x-last-death-*) say this. */
static void assert_first_and_last(const struct it_msg *m, const char *first_reason,
                                  const char *first_queue, const char *first_exchange,
                                  const char *last_reason, const char *last_queue,
                                  const char *last_exchange)
{
    amqp_table_t h = it_headers(m);

    it_assert_table_str(&h, "x-first-death-reason", first_reason);
    it_assert_table_str(&h, "x-first-death-queue", first_queue);
    it_assert_table_str(&h, "x-first-death-exchange", first_exchange);
    if (it_external_broker()) /* RabbitMQ 3.10 does not set x-last-death-* */
        return;
    it_assert_table_str(&h, "x-last-death-reason", last_reason);
    it_assert_table_str(&h, "x-last-death-queue", last_queue);
    it_assert_table_str(&h, "x-last-death-exchange", last_exchange);
}

START_TEST(rejected_message_arrives_with_x_death)
{
    amqp_connection_state_t c = it_connect();
    struct it_table headers;
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .expiration = amqp_cstring_bytes("60000"),
        .message_id = amqp_cstring_bytes("id-1"),
    };
    char q[64], dlx[64], dlq[64];
    const char *keys[1];
    struct it_msg m;
    amqp_table_t h;

    it_exchange(c, it_name(dlx, sizeof dlx, "dl.dlx"), "fanout");
    it_temp_queue(c, it_name(dlq, sizeof dlq, "dl.dlq"));
    it_bind(c, dlq, dlx, "", amqp_empty_table);
    dl_queue(c, it_name(q, sizeof q, "dl.src"), dlx, NULL, -1);
    it_table_init(&headers);
    it_table_add_str(&headers, "app", "kept");
    props.headers = headers.table;
    it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes("poison"));
    get_and_reject(c, q, "poison");

    it_await_get(c, 1, dlq, "poison", &m, WAIT_MS);
    ck_assert_str_eq(m.exchange, dlx);
    ck_assert_str_eq(m.routing_key, q);
    ck_assert_msg((m.message.properties._flags & AMQP_BASIC_EXPIRATION_FLAG) == 0,
                  "expiration still set on the dead letter");
    it_assert_bytes(m.message.properties.message_id, "id-1");
    h = it_headers(&m);
    it_assert_table_str(&h, "app", "kept");
    keys[0] = q;
    assert_death(x_death_entry(&m, 1, 0), 1, "rejected", q, "", keys, 1, "60000");
    assert_first_and_last(&m, "rejected", q, "", "rejected", q, "");
    it_msg_free(&m);
    it_expect_empty(c, 1, q);
    it_exchange_delete(c, dlx);
    it_disconnect(c);
}
END_TEST

START_TEST(nacked_message_is_dead_lettered_with_reason_rejected)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    const char *keys[1];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dl.nack.dlq"));
    /* The default exchange as dead-letter exchange, with a fixed routing key. */
    dl_queue(c, it_name(q, sizeof q, "dl.nack"), "", dlq, -1);
    it_publish(c, "", q, "a");
    it_publish(c, "", q, "b");
    ck_assert(it_get(c, 1, q, false, &m));
    it_msg_free(&m);
    ck_assert(it_get(c, 1, q, false, &m));
    ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 1, 0), AMQP_STATUS_OK);
    it_msg_free(&m);

    keys[0] = q;
    it_await_get(c, 1, dlq, "a", &m, WAIT_MS);
    ck_assert_str_eq(m.exchange, "");
    ck_assert_str_eq(m.routing_key, dlq); /* x-dead-letter-routing-key replaces the key */
    assert_death(x_death_entry(&m, 1, 0), 1, "rejected", q, "", keys, 1, NULL);
    it_msg_free(&m);
    it_await_get(c, 1, dlq, "b", &m, WAIT_MS);
    assert_death(x_death_entry(&m, 1, 0), 1, "rejected", q, "", keys, 1, NULL);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(rejected_with_requeue_is_not_dead_lettered)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dl.requeue.dlq"));
    dl_queue(c, it_name(q, sizeof q, "dl.requeue"), "", dlq, -1);
    it_publish(c, "", q, "back");
    ck_assert(it_get(c, 1, q, false, &m));
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    it_expect_get(c, 1, q, "back", &m);
    ck_assert(m.redelivered);
    it_msg_free(&m);
    it_expect_empty(c, 1, dlq);
    it_disconnect(c);
}
END_TEST

START_TEST(routing_keys_of_x_death_include_cc)
{
    amqp_connection_state_t c = it_connect();
    amqp_field_value_t cc_keys[1];
    struct it_table headers;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG};
    char q[64], dlq[64];
    const char *keys[2];
    struct it_msg m;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "dl.cc.dlq"));
    dl_queue(c, it_name(q, sizeof q, "dl.cc"), "", dlq, -1);
    cc_keys[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                      .value.bytes = amqp_cstring_bytes("cc-key")};
    it_table_init(&headers);
    it_table_add(&headers, "CC",
                 (amqp_field_value_t){.kind = AMQP_FIELD_KIND_ARRAY, .value.array = {1, cc_keys}});
    props.headers = headers.table;
    it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes("copied"));
    get_and_reject(c, q, "copied");
    it_await_get(c, 1, dlq, "copied", &m, WAIT_MS);
    keys[0] = q;
    keys[1] = "cc-key";
    assert_death(x_death_entry(&m, 1, 0), 1, "rejected", q, "", keys, 2, NULL);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(dead_lettered_twice_carries_two_deaths_newest_first)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64], q3[64];
    const char *keys[1];
    struct it_msg m;

    it_temp_queue(c, it_name(q3, sizeof q3, "dl.twice.end"));
    dl_queue(c, it_name(q2, sizeof q2, "dl.twice.2"), "", q3, -1);
    dl_queue(c, it_name(q1, sizeof q1, "dl.twice.1"), "", q2, -1);
    it_publish(c, "", q1, "hop");
    get_and_reject(c, q1, "hop");
    get_and_reject(c, q2, "hop");
    it_await_get(c, 1, q3, "hop", &m, WAIT_MS);
    /* The routing keys recorded are the ones the message had in that queue: q1's death saw
     * the published key, q2's the dead-letter key that brought it to q2. */
    keys[0] = q2;
    assert_death(x_death_entry(&m, 2, 0), 1, "rejected", q2, "", keys, 1, NULL);
    keys[0] = q1;
    assert_death(x_death_entry(&m, 2, 1), 1, "rejected", q1, "", keys, 1, NULL);
    assert_first_and_last(&m, "rejected", q1, "", "rejected", q2, "");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(same_queue_and_reason_again_increments_the_count)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    const char *keys[1];
    struct it_msg m;

    /* Rejected messages come straight back to the same queue. */
    dl_queue(c, it_name(q, sizeof q, "dl.again"), "", NULL, -1);
    it_publish(c, "", q, "boomerang");
    for (long round = 1; round <= 3; round++) {
        keys[0] = q;
        get_and_reject(c, q, "boomerang");
        get_unacked(c, q, "boomerang", &m);
        assert_death(x_death_entry(&m, 1, 0), round, "rejected", q, "", keys, 1, NULL);
        assert_first_and_last(&m, "rejected", q, "", "rejected", q, "");
        /* Put back as it is (requeue): the next round dead-letters it again. */
        ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 1), AMQP_STATUS_OK);
        it_msg_free(&m);
    }
    it_disconnect(c);
}
END_TEST

START_TEST(automatic_cycle_is_dropped)
{
    amqp_connection_state_t c = it_connect();
    char q[64], x[64], watch[64];
    const char *keys[1];
    struct it_msg m;

    /* q's expired messages go to a fanout that feeds q itself and a watcher: the copy for q
     * would close a cycle with no rejection in it, so only the watcher gets one. */
    it_exchange(c, it_name(x, sizeof x, "dl.cycle.fan"), "fanout");
    dl_queue(c, it_name(q, sizeof q, "dl.cycle"), x, NULL, 50);
    it_temp_queue(c, it_name(watch, sizeof watch, "dl.cycle.watch"));
    it_bind(c, q, x, "", amqp_empty_table);
    it_bind(c, watch, x, "", amqp_empty_table);
    it_publish(c, "", q, "loop");
    it_sleep_ms(400);
    it_expect_counts(c, watch, 1, 0);
    it_expect_empty(c, 1, q);
    it_expect_get(c, 1, watch, "loop", &m);
    keys[0] = q;
    assert_death(x_death_entry(&m, 1, 0), 1, "expired", q, "", keys, 1, NULL);
    it_msg_free(&m);
    it_expect_empty(c, 1, watch);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(two_queue_automatic_cycle_is_dropped_when_it_closes)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64], x[64], watch[64];
    const char *keys[1];
    struct it_msg m;

    /* q1 expires into q2; q2 expires into a fanout feeding q1 and a watcher. */
    it_exchange(c, it_name(x, sizeof x, "dl.cycle2.fan"), "fanout");
    it_name(q1, sizeof q1, "dl.cycle2.1");
    dl_queue(c, it_name(q2, sizeof q2, "dl.cycle2.2"), x, NULL, 50);
    dl_queue(c, q1, "", q2, 50);
    it_temp_queue(c, it_name(watch, sizeof watch, "dl.cycle2.watch"));
    it_bind(c, q1, x, "", amqp_empty_table);
    it_bind(c, watch, x, "", amqp_empty_table);
    it_publish(c, "", q1, "loop");
    it_sleep_ms(500);
    it_expect_counts(c, watch, 1, 0);
    it_expect_empty(c, 1, q1);
    it_expect_empty(c, 1, q2);
    it_expect_get(c, 1, watch, "loop", &m);
    keys[0] = q2;
    assert_death(x_death_entry(&m, 2, 0), 1, "expired", q2, "", keys, 1, NULL);
    keys[0] = q1;
    assert_death(x_death_entry(&m, 2, 1), 1, "expired", q1, "", keys, 1, NULL);
    it_msg_free(&m);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(cycle_with_a_rejection_continues)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];
    const char *keys[1];
    struct it_msg m;

    /* q1 expires into q2; what q2 rejects goes back to q1: a rejection is in the loop. */
    it_name(q1, sizeof q1, "dl.loop.1");
    dl_queue(c, it_name(q2, sizeof q2, "dl.loop.2"), "", q1, -1);
    dl_queue(c, q1, "", q2, 50);
    it_publish(c, "", q1, "loop");
    it_sleep_ms(300);
    get_and_reject(c, q2, "loop");
    it_sleep_ms(300);
    /* Back in q2 after expiring in q1 a second time. */
    ck_assert(it_get(c, 1, q2, true, &m));
    keys[0] = q1;
    assert_death(x_death_entry(&m, 2, 0), 2, "expired", q1, "", keys, 1, NULL);
    keys[0] = q2;
    assert_death(x_death_entry(&m, 2, 1), 1, "rejected", q2, "", keys, 1, NULL);
    assert_first_and_last(&m, "expired", q1, "", "expired", q1, "");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(missing_dead_letter_exchange_drops_the_message)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlx[64];

    dl_queue(c, it_name(q, sizeof q, "dl.nodlx"), it_name(dlx, sizeof dlx, "dl.nodlx.x"), NULL, -1);
    it_publish(c, "", q, "gone");
    get_and_reject(c, q, "gone");
    it_assert_channel_alive(c, 1);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deadletter");
    TCase *tc = it_tcase(s, "x_death");

    tcase_add_test(tc, rejected_message_arrives_with_x_death);
    tcase_add_test(tc, nacked_message_is_dead_lettered_with_reason_rejected);
    tcase_add_test(tc, rejected_with_requeue_is_not_dead_lettered);
    tcase_add_test(tc, routing_keys_of_x_death_include_cc);
    tcase_add_test(tc, dead_lettered_twice_carries_two_deaths_newest_first);
    tcase_add_test(tc, same_queue_and_reason_again_increments_the_count);
    tc = it_tcase(s, "cycles");
    tcase_add_test(tc, automatic_cycle_is_dropped);
    tcase_add_test(tc, two_queue_automatic_cycle_is_dropped_when_it_closes);
    tcase_add_test(tc, cycle_with_a_rejection_continues);
    tcase_add_test(tc, missing_dead_letter_exchange_drops_the_message);
    return it_run(s, NULL);
}
