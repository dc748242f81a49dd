/* Publisher confirms (confirm.select, basic.ack/nack from the broker): which publishes are
 * confirmed, in what order with basic.return, and how confirm mode and tx mode exclude each
 * other. Validated against RabbitMQ 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIRM_WAIT_MS 5000

static void publish_n(amqp_connection_state_t c, const char *exchange, const char *key, int n)
{
    for (int i = 1; i <= n; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, exchange, key, body);
    }
}

static void assert_all(const enum it_confirm *state, uint64_t last, enum it_confirm fate)
{
    for (uint64_t i = 1; i <= last; i++)
        ck_assert_msg(state[i] == fate, "publish %llu: confirm %d, expected %d",
                      (unsigned long long)i, state[i], fate);
}

START_TEST(every_publish_is_acked_once_after_select)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[51] = {0};
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "confirm.each"));
    it_confirm_select(c, 1);
    publish_n(c, "", q, 50);
    /* The broker may confirm several at once with multiple; every tag 1..50 must be
     * settled exactly once (a second confirm of a tag fails in the collector). */
    it_collect_confirms(c, 1, state, 50, CONFIRM_WAIT_MS, NULL);
    assert_all(state, 50, IT_ACKED);
    it_expect_counts(c, q, 50, 0);
    /* Nothing else is confirmed: no stray ack beyond the last tag. */
    ck_assert_int_eq(it_wait_method(c, 200).library_error, AMQP_STATUS_TIMEOUT);
    it_disconnect(c);
}
END_TEST

START_TEST(select_twice_is_allowed_and_numbering_is_per_channel)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[4] = {0};
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "confirm.twice"));
    it_confirm_select(c, 1);
    it_confirm_select(c, 1);
    it_channel_open(c, 2);
    it_confirm_select(c, 2);
    publish_n(c, "", q, 3);
    it_collect_confirms(c, 1, state, 3, CONFIRM_WAIT_MS, NULL);
    assert_all(state, 3, IT_ACKED);
    /* Channel 2 starts its own sequence at 1. */
    memset(state, 0, sizeof state);
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("on2"));
    it_collect_confirms(c, 2, state, 1, CONFIRM_WAIT_MS, NULL);
    ck_assert_int_eq(state[1], IT_ACKED);
    it_disconnect(c);
}
END_TEST

START_TEST(nowait_select_is_not_answered_and_takes_effect)
{
    amqp_connection_state_t c = it_connect();
    amqp_confirm_select_t sel = {.nowait = 1};
    enum it_confirm state[3] = {0};
    char q[64];

    ck_assert_int_eq(amqp_send_method(c, 1, AMQP_CONFIRM_SELECT_METHOD, &sel), AMQP_STATUS_OK);
    /* A synchronous method after it: its reply comes first and alone (a select-ok would be
     * queued by rabbitmq-c and then meet the collector below, which fails on it). */
    it_temp_queue(c, it_name(q, sizeof q, "confirm.nowait"));
    publish_n(c, "", q, 2);
    it_collect_confirms(c, 1, state, 2, CONFIRM_WAIT_MS, NULL);
    assert_all(state, 2, IT_ACKED);
    it_disconnect(c);
}
END_TEST

START_TEST(unroutable_message_is_acked)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[2] = {0};
    char key[64];
    int returns = 0;

    it_confirm_select(c, 1);
    it_publish(c, "amq.direct", it_name(key, sizeof key, "confirm.nowhere"), "lost");
    it_collect_confirms(c, 1, state, 1, CONFIRM_WAIT_MS, &returns);
    ck_assert_int_eq(state[1], IT_ACKED);
    ck_assert_int_eq(returns, 0); /* not mandatory: dropped silently */
    it_disconnect(c);
}
END_TEST

START_TEST(message_routed_to_two_queues_is_acked_once)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[2] = {0};
    char q1[64], q2[64], x[64];

    it_exchange(c, it_name(x, sizeof x, "confirm.fan"), "fanout");
    it_temp_queue(c, it_name(q1, sizeof q1, "confirm.fan1"));
    it_temp_queue(c, it_name(q2, sizeof q2, "confirm.fan2"));
    it_bind(c, q1, x, "", amqp_empty_table);
    it_bind(c, q2, x, "", amqp_empty_table);
    it_confirm_select(c, 1);
    it_publish(c, x, "", "both");
    it_collect_confirms(c, 1, state, 1, CONFIRM_WAIT_MS, NULL);
    ck_assert_int_eq(state[1], IT_ACKED);
    ck_assert_int_eq(it_wait_method(c, 200).library_error, AMQP_STATUS_TIMEOUT);
    it_expect_counts(c, q1, 1, 0);
    it_expect_counts(c, q2, 1, 0);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(mandatory_unroutable_is_returned_before_its_ack)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                  AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("text/plain"),
        .correlation_id = amqp_cstring_bytes("corr-7"),
        .delivery_mode = 2,
    };
    const amqp_basic_return_t *ret;
    const amqp_basic_ack_t *ack;
    amqp_message_t msg;
    amqp_channel_t ch = 0;
    amqp_rpc_reply_t r;
    char key[64];

    it_confirm_select(c, 1);
    it_name(key, sizeof key, "confirm.return");
    ck_assert_int_eq(amqp_basic_publish(c, 1, amqp_cstring_bytes("amq.direct"),
                                        amqp_cstring_bytes(key), 1, 0, &props,
                                        amqp_cstring_bytes("bounced")),
                     AMQP_STATUS_OK);

    r = it_wait_method_on(c, CONFIRM_WAIT_MS, &ch);
    it_assert_ok(r, "waiting for basic.return");
    ck_assert_msg(r.reply.id == AMQP_BASIC_RETURN_METHOD, "got %s before basic.return",
                  amqp_method_name(r.reply.id));
    ck_assert_uint_eq(ch, 1);
    ret = r.reply.decoded;
    ck_assert_uint_eq(ret->reply_code, 312);
    it_assert_bytes(ret->reply_text, "NO_ROUTE");
    it_assert_bytes(ret->exchange, "amq.direct");
    it_assert_bytes(ret->routing_key, key);
    it_assert_ok(amqp_read_message(c, 1, &msg, 0), "reading the returned message");
    it_assert_bytes(msg.body, "bounced");
    ck_assert_uint_eq(msg.properties._flags, props._flags);
    it_assert_bytes(msg.properties.content_type, "text/plain");
    it_assert_bytes(msg.properties.correlation_id, "corr-7");
    ck_assert_uint_eq(msg.properties.delivery_mode, 2);
    amqp_destroy_message(&msg);

    r = it_wait_method_on(c, CONFIRM_WAIT_MS, &ch);
    it_assert_ok(r, "waiting for basic.ack");
    ck_assert_msg(r.reply.id == AMQP_BASIC_ACK_METHOD, "got %s instead of basic.ack",
                  amqp_method_name(r.reply.id));
    ack = r.reply.decoded;
    ck_assert_uint_eq(ack->delivery_tag, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(confirm_select_on_tx_channel_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    amqp_tx_select(c, 1);
    it_assert_ok(amqp_get_rpc_reply(c), "tx.select");
    amqp_confirm_select(c, 1);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - cannot switch from tx to confirm mode");
    it_disconnect(c);
}
END_TEST

START_TEST(tx_select_on_confirm_channel_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    it_confirm_select(c, 1);
    amqp_tx_select(c, 1);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
    it_disconnect(c);
}
END_TEST

START_TEST(full_queue_with_reject_publish_nacks)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[5] = {0};
    struct it_table args;
    char q[64];

    it_table_init(&args);
    it_table_add_long(&args, "x-max-length", 2);
    it_table_add_str(&args, "x-overflow", "reject-publish");
    it_queue_declare(c, 1, it_name(q, sizeof q, "confirm.full"), false, true, false, args.table,
                     NULL, NULL);
    it_confirm_select(c, 1);
    publish_n(c, "", q, 4);
    it_collect_confirms(c, 1, state, 4, CONFIRM_WAIT_MS, NULL);
    ck_assert_int_eq(state[1], IT_ACKED);
    ck_assert_int_eq(state[2], IT_ACKED);
    ck_assert_int_eq(state[3], IT_NACKED);
    ck_assert_int_eq(state[4], IT_NACKED);
    it_expect_get(c, 1, q, "m1", NULL);
    it_expect_get(c, 1, q, "m2", NULL);
    it_expect_empty(c, 1, q);
    /* Room again: the next publish (tag 5) is acked. */
    it_publish(c, "", q, "m5");
    {
        enum it_confirm again[6] = {IT_ACKED, IT_ACKED, IT_ACKED, IT_NACKED, IT_NACKED};

        it_collect_confirms(c, 1, again, 5, CONFIRM_WAIT_MS, NULL);
        ck_assert_int_eq(again[5], IT_ACKED);
    }
    it_disconnect(c);
}
END_TEST

START_TEST(publish_to_missing_exchange_in_confirm_mode_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[200];

    it_confirm_select(c, 1);
    it_publish(c, it_name(x, sizeof x, "confirm.missing"), "k", "lost");
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, it_wait_method(c, CONFIRM_WAIT_MS), 404, text);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("confirm");
    TCase *tc = it_tcase(s, "confirm");

    tcase_add_test(tc, every_publish_is_acked_once_after_select);
    tcase_add_test(tc, select_twice_is_allowed_and_numbering_is_per_channel);
    tcase_add_test(tc, nowait_select_is_not_answered_and_takes_effect);
    tcase_add_test(tc, unroutable_message_is_acked);
    tcase_add_test(tc, message_routed_to_two_queues_is_acked_once);
    tcase_add_test(tc, mandatory_unroutable_is_returned_before_its_ack);
    tcase_add_test(tc, confirm_select_on_tx_channel_closes_channel_with_406);
    tcase_add_test(tc, tx_select_on_confirm_channel_closes_channel_with_406);
    tcase_add_test(tc, full_queue_with_reject_publish_nacks);
    tcase_add_test(tc, publish_to_missing_exchange_in_confirm_mode_closes_channel_with_404);
    return it_run(s, NULL);
}
