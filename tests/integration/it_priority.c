/* Priority queues (x-max-priority): delivery order by message priority, FIFO within one
 * priority, priorities above the maximum, and the argument's limits. Validated against
 * RabbitMQ 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 2000

static void priority_queue(amqp_connection_state_t c, const char *q, long max_priority)
{
    struct it_table args;

    it_table_init(&args);
    if (max_priority >= 0)
        it_table_add_long(&args, "x-max-priority", max_priority);
    it_queue_declare(c, 1, q, false, true, false, args.table, NULL, NULL);
}

/* Publishes body to q with a priority (negative: no priority property). */
static void publish_priority(amqp_connection_state_t c, const char *q, const char *body,
                             int priority)
{
    amqp_basic_properties_t props = {0};

    if (priority >= 0) {
        props._flags = AMQP_BASIC_PRIORITY_FLAG;
        props.priority = (uint8_t)priority;
    }
    it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes(body));
}

START_TEST(consumer_gets_highest_priority_first_and_fifo_within_one)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64], body[16];

    priority_queue(c, it_name(q, sizeof q, "prio.order"), 10);
    for (int round = 0; round < 2; round++) {
        /* Priorities in a scrambled order, each once per round. */
        static const int order[] = {3, 0, 10, 5, 7, 1, 9, 2, 8, 4, 6};

        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            snprintf(body, sizeof body, "p%d%c", order[i], round == 0 ? 'a' : 'b');
            publish_priority(c, q, body, order[i]);
        }
    }
    it_expect_counts(c, q, 22, 0);
    it_consume(c, 1, q, "prio", true, false, NULL, 0);
    for (int p = 10; p >= 0; p--) {
        for (int round = 0; round < 2; round++) {
            snprintf(body, sizeof body, "p%d%c", p, round == 0 ? 'a' : 'b');
            it_expect_delivery(c, WAIT_MS, body, &m);
            it_msg_free(&m);
        }
    }
    it_disconnect(c);
}
END_TEST

START_TEST(priority_above_the_maximum_counts_as_the_maximum)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    priority_queue(c, it_name(q, sizeof q, "prio.cap"), 5);
    publish_priority(c, q, "four", 4);
    publish_priority(c, q, "five", 5);
    publish_priority(c, q, "nine", 9);
    publish_priority(c, q, "max", 255);
    publish_priority(c, q, "five-again", 5);
    it_expect_get(c, 1, q, "five", NULL);
    it_expect_get(c, 1, q, "nine", NULL);
    it_expect_get(c, 1, q, "max", NULL);
    it_expect_get(c, 1, q, "five-again", NULL);
    it_expect_get(c, 1, q, "four", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(message_without_priority_has_priority_zero)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    priority_queue(c, it_name(q, sizeof q, "prio.none"), 3);
    publish_priority(c, q, "none", -1);
    publish_priority(c, q, "zero", 0);
    publish_priority(c, q, "one", 1);
    it_expect_get(c, 1, q, "one", NULL);
    it_expect_get(c, 1, q, "none", NULL);
    it_expect_get(c, 1, q, "zero", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(requeued_message_keeps_its_priority)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    priority_queue(c, it_name(q, sizeof q, "prio.requeue"), 10);
    publish_priority(c, q, "low", 1);
    publish_priority(c, q, "high", 8);
    ck_assert(it_get(c, 1, q, false, &m));
    it_assert_body(&m, "high");
    publish_priority(c, q, "middle", 5);
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    it_expect_get(c, 1, q, "high", &m);
    ck_assert(m.redelivered);
    it_msg_free(&m);
    it_expect_get(c, 1, q, "middle", NULL);
    it_expect_get(c, 1, q, "low", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(queue_without_max_priority_ignores_priorities)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    priority_queue(c, it_name(q, sizeof q, "prio.plain"), -1);
    publish_priority(c, q, "first", 1);
    publish_priority(c, q, "second", 9);
    it_expect_get(c, 1, q, "first", NULL);
    it_expect_get(c, 1, q, "second", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(max_priority_above_255_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char q[64], text[300];

    it_name(q, sizeof q, "prio.256");
    it_table_init(&args);
    it_table_add_long(&args, "x-max-priority", 256);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, args.table);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '%s' in vhost '/': "
             "{max_value_exceeded,256}",
             q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    /* 255 is the largest accepted. */
    it_channel_open(c, 1);
    priority_queue(c, q, 255);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("priority");
    TCase *tc = it_tcase(s, "priority");

    tcase_add_test(tc, consumer_gets_highest_priority_first_and_fifo_within_one);
    tcase_add_test(tc, priority_above_the_maximum_counts_as_the_maximum);
    tcase_add_test(tc, message_without_priority_has_priority_zero);
    tcase_add_test(tc, requeued_message_keeps_its_priority);
    tcase_add_test(tc, queue_without_max_priority_ignores_priorities);
    tcase_add_test(tc, max_priority_above_255_closes_channel_with_406);
    return it_run(s, NULL);
}
