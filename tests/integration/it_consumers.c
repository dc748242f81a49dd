/* RabbitMQ's consumer extensions: consumer cancel notification, direct reply-to, consumer
 * priorities (x-priority) and single active consumer. Validated against RabbitMQ 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_TO "amq.rabbitmq.reply-to"
#define QUIET_MS 300
#define WAIT_MS  2000

/* ---- consumer cancel notification ------------------------------------------------------ */

/* A connection whose client properties announce capabilities.consumer_cancel_notify. */
static amqp_connection_state_t connect_with_cancel_notify(void)
{
    amqp_table_entry_t caps[] = {
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t entries[] = {
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {1, caps}}},
    };
    amqp_table_t props = {1, entries};
    struct it_conn_opts o = {.client_properties = &props};

    return it_connect_opts(&o);
}

START_TEST(queue_deleted_by_another_connection_cancels_a_notified_consumer)
{
    amqp_connection_state_t c = connect_with_cancel_notify();
    amqp_connection_state_t other = it_connect();
    const amqp_basic_cancel_t *cancel;
    amqp_channel_t ch = 0;
    amqp_rpc_reply_t r;
    char q[64];

    it_queue(c, it_name(q, sizeof q, "cons.notify"));
    it_consume(c, 1, q, "watched", false, false, NULL, 0);
    it_queue_delete(other, q);
    r = it_wait_method_on(c, WAIT_MS, &ch);
    it_assert_ok(r, "waiting for basic.cancel");
    ck_assert_msg(r.reply.id == AMQP_BASIC_CANCEL_METHOD, "got %s instead of basic.cancel",
                  amqp_method_name(r.reply.id));
    ck_assert_uint_eq(ch, 1);
    cancel = r.reply.decoded;
    it_assert_bytes(cancel->consumer_tag, "watched");
    ck_assert_int_eq(cancel->nowait, 1); /* the broker expects no cancel-ok */
    it_assert_channel_alive(c, 1);
    it_disconnect(other);
    it_disconnect(c);
}
END_TEST

START_TEST(queue_deleted_under_a_consumer_sends_nothing_without_the_capability)
{
    amqp_connection_state_t c = it_connect(); /* rabbitmq-c announces no such capability */
    amqp_connection_state_t other = it_connect();
    amqp_rpc_reply_t r;
    char q[64], buf[256];

    it_queue(c, it_name(q, sizeof q, "cons.silent"));
    it_consume(c, 1, q, "unwatched", false, false, NULL, 0);
    it_queue_delete(other, q);
    r = it_wait_method(c, QUIET_MS);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                      r.library_error == AMQP_STATUS_TIMEOUT,
                  "expected nothing, got %s", it_reply_str(r, buf, sizeof buf));
    it_assert_channel_alive(c, 1);
    it_disconnect(other);
    it_disconnect(c);
}
END_TEST

/* ---- direct reply-to ------------------------------------------------------------------- */

static void publish_request(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                            const char *body)
{
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG,
        .reply_to = amqp_cstring_bytes(REPLY_TO),
        .correlation_id = amqp_cstring_bytes("req-1"),
    };

    it_publish_bytes(c, ch, "", q, &props, amqp_cstring_bytes(body));
}

START_TEST(direct_reply_to_round_trip)
{
    amqp_connection_state_t client = it_connect();
    amqp_connection_state_t server = it_connect();
    amqp_basic_properties_t reply_props = {
        ._flags = AMQP_BASIC_CORRELATION_ID_FLAG,
        .correlation_id = amqp_cstring_bytes("req-1"),
    };
    char q[64], tag[256], reply_to[256];
    struct it_msg req, resp;

    it_temp_queue(server, it_name(q, sizeof q, "cons.rpc"));
    it_consume(client, 1, REPLY_TO, NULL, true, false, tag, sizeof tag);
    publish_request(client, 1, q, "question");

    /* The server sees a private reply address, not the pseudo-queue's name. */
    it_expect_get(server, 1, q, "question", &req);
    ck_assert(req.message.properties._flags & AMQP_BASIC_REPLY_TO_FLAG);
    snprintf(reply_to, sizeof reply_to, "%.*s", (int)req.message.properties.reply_to.len,
             (const char *)req.message.properties.reply_to.bytes);
    it_assert_bytes(req.message.properties.correlation_id, "req-1");
    it_msg_free(&req);
    ck_assert_msg(strncmp(reply_to, REPLY_TO ".", strlen(REPLY_TO ".")) == 0 &&
                      strlen(reply_to) > strlen(REPLY_TO "."),
                  "reply_to arrived as '%s'", reply_to);

    it_publish_bytes(server, 1, "", reply_to, &reply_props, amqp_cstring_bytes("answer"));
    it_expect_delivery(client, WAIT_MS, "answer", &resp);
    ck_assert_str_eq(resp.consumer_tag, tag);
    ck_assert_str_eq(resp.exchange, "");
    ck_assert_str_eq(resp.routing_key, reply_to);
    it_assert_bytes(resp.message.properties.correlation_id, "req-1");
    it_msg_free(&resp);

    /* A second reply to the same address arrives too: the address lives as long as the
     * consumer. */
    it_publish_bytes(server, 1, "", reply_to, &reply_props, amqp_cstring_bytes("again"));
    it_expect_delivery(client, WAIT_MS, "again", &resp);
    it_msg_free(&resp);
    it_disconnect(server);
    it_disconnect(client);
}
END_TEST

START_TEST(reply_to_an_unknown_address_is_dropped)
{
    amqp_connection_state_t c = it_connect();

    it_publish(c, "", REPLY_TO ".bm90LWEtdG9rZW4=", "nobody");
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(reply_consumer_with_acks_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    amqp_basic_consume(c, 1, amqp_cstring_bytes(REPLY_TO), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - reply consumer cannot acknowledge");
    it_disconnect(c);
}
END_TEST

START_TEST(second_reply_consumer_on_a_channel_closes_it_with_406)
{
    amqp_connection_state_t c = it_connect();

    it_consume(c, 1, REPLY_TO, NULL, true, false, NULL, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(REPLY_TO), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - reply consumer already set");
    it_disconnect(c);
}
END_TEST

START_TEST(request_without_reply_consumer_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "cons.noreply"));
    /* The consumer is on channel 2: a reply address belongs to its channel. */
    it_channel_open(c, 2);
    it_consume(c, 2, REPLY_TO, NULL, true, false, NULL, 0);
    publish_request(c, 1, q, "question");
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - fast reply consumer does not exist");
    /* Nothing was enqueued. */
    it_channel_open(c, 1);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

/* ---- consumer priorities ---------------------------------------------------------------- */

static void consume_with_priority(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                                  const char *tag, int64_t priority)
{
    struct it_table args;

    it_table_init(&args);
    it_table_add_long(&args, "x-priority", priority);
    it_consume_args(c, ch, q, tag, false, false, args.table, NULL, 0);
}

START_TEST(higher_priority_consumer_gets_messages_while_it_has_room)
{
    amqp_connection_state_t c = it_connect();
    int high = 0, low = 0;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "cons.prio"));
    it_channel_open(c, 2);
    it_channel_open(c, 3);
    it_qos(c, 2, 2, false);
    it_qos(c, 3, 10, false);
    /* The low one subscribes first: order must not matter. */
    consume_with_priority(c, 3, q, "low", 1);
    consume_with_priority(c, 2, q, "high", 10);
    for (int i = 1; i <= 5; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, "", q, body);
    }
    /* Two channels: their deliveries may interleave on the socket in any order. */
    for (int i = 1; i <= 5; i++) {
        struct it_msg m;
        char body[16];
        int n;

        ck_assert_msg(it_next_delivery(c, WAIT_MS, &m), "only %d of 5 deliveries", i - 1);
        it_body(&m, body, sizeof body);
        ck_assert_msg(sscanf(body, "m%d", &n) == 1, "body '%s'", body);
        /* high takes the first two (its prefetch), low the rest. */
        ck_assert_msg(strcmp(m.consumer_tag, n <= 2 ? "high" : "low") == 0, "%s went to %s", body,
                      m.consumer_tag);
        if (strcmp(m.consumer_tag, "high") == 0)
            high++;
        else
            low++;
        it_msg_free(&m);
    }
    ck_assert_int_eq(high, 2);
    ck_assert_int_eq(low, 3);
    it_disconnect(c);
}
END_TEST

START_TEST(consumers_of_equal_priority_take_turns)
{
    amqp_connection_state_t c = it_connect();
    int a = 0, b = 0;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "cons.prioeq"));
    consume_with_priority(c, 1, q, "a", 5);
    consume_with_priority(c, 1, q, "b", 5);
    for (int i = 0; i < 4; i++)
        it_publish(c, "", q, "x");
    for (int i = 0; i < 4; i++) {
        struct it_msg m;

        it_expect_delivery(c, WAIT_MS, "x", &m);
        if (strcmp(m.consumer_tag, "a") == 0)
            a++;
        else
            b++;
        it_msg_free(&m);
    }
    ck_assert_int_eq(a, 2);
    ck_assert_int_eq(b, 2);
    it_disconnect(c);
}
END_TEST

START_TEST(priority_of_the_wrong_type_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char q[64], text[300];

    it_temp_queue(c, it_name(q, sizeof q, "cons.priotype"));
    it_table_init(&args);
    it_table_add_str(&args, "x-priority", "high");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, args.table);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '%s' in vhost '/': "
             "\"expected integer, got longstr\"",
             q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    it_disconnect(c);
}
END_TEST

/* ---- single active consumer ------------------------------------------------------------- */

static void sac_queue(amqp_connection_state_t c, const char *q)
{
    struct it_table args;

    it_table_init(&args);
    it_table_add_bool(&args, "x-single-active-consumer", true);
    it_queue_declare(c, 1, q, false, false, false, args.table, NULL, NULL);
}

START_TEST(only_the_first_consumer_is_active_until_it_cancels)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    sac_queue(c, it_name(q, sizeof q, "cons.sac"));
    it_channel_open(c, 2);
    it_consume(c, 1, q, "first", true, false, NULL, 0);
    it_consume(c, 2, q, "second", true, false, NULL, 0);
    it_expect_counts(c, q, 0, 2);
    for (int i = 0; i < 4; i++)
        it_publish(c, "", q, "to-first");
    for (int i = 0; i < 4; i++) {
        it_expect_delivery(c, WAIT_MS, "to-first", &m);
        ck_assert_str_eq(m.consumer_tag, "first");
        it_msg_free(&m);
    }
    amqp_basic_cancel(c, 1, amqp_cstring_bytes("first"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_publish(c, "", q, "to-second");
    it_expect_delivery(c, WAIT_MS, "to-second", &m);
    ck_assert_str_eq(m.consumer_tag, "second");
    it_msg_free(&m);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(next_consumer_takes_over_the_unacked_messages_of_a_closed_one)
{
    amqp_connection_state_t first = it_connect();
    amqp_connection_state_t second = it_connect();
    struct it_msg m;
    char q[64];

    sac_queue(first, it_name(q, sizeof q, "cons.sacclose"));
    it_consume(first, 1, q, "first", false, false, NULL, 0);
    it_consume(second, 1, q, "second", false, false, NULL, 0);
    it_publish(first, "", q, "pending");
    it_expect_delivery(first, WAIT_MS, "pending", &m);
    it_msg_free(&m);
    it_expect_no_delivery(second, QUIET_MS);
    it_disconnect(first);
    it_expect_delivery(second, WAIT_MS, "pending", &m);
    ck_assert(m.redelivered);
    ck_assert_str_eq(m.consumer_tag, "second");
    it_ack(second, 1, m.delivery_tag, false);
    it_msg_free(&m);
    it_queue_delete(second, q);
    it_disconnect(second);
}
END_TEST

START_TEST(single_active_consumer_must_be_a_boolean)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char q[64], text[300];

    it_name(q, sizeof q, "cons.sactype");
    it_table_init(&args);
    it_table_add_str(&args, "x-single-active-consumer", "yes");
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, args.table);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue '%s' in "
             "vhost '/': {unacceptable_type,longstr}",
             q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consumers");
    TCase *tc = it_tcase(s, "cancel_notify");

    tcase_add_test(tc, queue_deleted_by_another_connection_cancels_a_notified_consumer);
    tcase_add_test(tc, queue_deleted_under_a_consumer_sends_nothing_without_the_capability);
    tc = it_tcase(s, "direct_reply_to");
    tcase_add_test(tc, direct_reply_to_round_trip);
    tcase_add_test(tc, reply_to_an_unknown_address_is_dropped);
    tcase_add_test(tc, reply_consumer_with_acks_closes_channel_with_406);
    tcase_add_test(tc, second_reply_consumer_on_a_channel_closes_it_with_406);
    tcase_add_test(tc, request_without_reply_consumer_closes_channel_with_406);
    tc = it_tcase(s, "priorities");
    tcase_add_test(tc, higher_priority_consumer_gets_messages_while_it_has_room);
    tcase_add_test(tc, consumers_of_equal_priority_take_turns);
    tcase_add_test(tc, priority_of_the_wrong_type_closes_channel_with_406);
    tc = it_tcase(s, "single_active_consumer");
    tcase_add_test(tc, only_the_first_consumer_is_active_until_it_cancels);
    tcase_add_test(tc, next_consumer_takes_over_the_unacked_messages_of_a_closed_one);
    tcase_add_test(tc, single_active_consumer_must_be_a_boolean);
    return it_run(s, NULL);
}
