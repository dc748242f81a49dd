/* Requeueing many unacked deliveries at once: a channel closed, basic.nack multiple with
 * requeue, basic.recover. Every message comes back exactly once, in its original place (by
 * publish order, ahead of messages published later; by priority first in a priority queue),
 * flagged redelivered; and the broker keeps answering other clients meanwhile, which it did
 * not while a requeue cost time quadratic in the number of deliveries (80,000 unacked held
 * the loop for 2.4 s). bench/requeue.sh measures how long the loop is held. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS  2000
#define QUIET_MS 300

/* Deliveries held unacked by one channel in the large tests, and the least time the broker
 * may take to give them back before a client notices (see requeue_bound_ms). */
#define MANY             50000
#define MANY_CONSUMERS   5000 /* on one channel, sharing those deliveries */
#define REQUEUE_BOUND_MS 250

static void publish_numbered(amqp_connection_state_t c, const char *q, int first, int last)
{
    for (int i = first; i <= last; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, "", q, body);
    }
}

/* Fails unless the next delivery to any consumer of c comes within WAIT_MS with body m<i>
 * and this redelivered flag; returns its tag. */
static uint64_t expect_numbered(amqp_connection_state_t c, int i, bool redelivered)
{
    struct it_msg m;
    char want[16], got[32];
    uint64_t tag;

    ck_assert_msg(it_next_delivery(c, WAIT_MS, &m), "no delivery of m%d within %d ms", i, WAIT_MS);
    snprintf(want, sizeof want, "m%d", i);
    it_body(&m, got, sizeof got);
    ck_assert_msg(strcmp(got, want) == 0, "expected %s, got %s", want, got);
    ck_assert_msg(m.redelivered == redelivered, "%s: redelivered is %d", want, m.redelivered);
    tag = m.delivery_tag;
    it_msg_free(&m);
    return tag;
}

static void expect_got(amqp_connection_state_t c, amqp_channel_t ch, const char *q, int i,
                       bool redelivered)
{
    struct it_msg m;
    char body[16];

    snprintf(body, sizeof body, "m%d", i);
    it_expect_get(c, ch, q, body, &m);
    ck_assert_msg(m.redelivered == redelivered, "%s: redelivered is %d", body, m.redelivered);
    it_msg_free(&m);
}

/* Publishes m1..m<MANY> to q on c and waits until holder's consumers (no prefetch limit)
 * have them all: they stay unacked. Returns how long the deliveries took, from the end of
 * the publishing to the last one; the last delivery tag goes to *last_tag. */
static long long deliver_many(amqp_connection_state_t c, amqp_connection_state_t holder,
                              const char *q, uint64_t *last_tag)
{
    long long t0;

    publish_numbered(c, q, 1, MANY);
    t0 = it_now_ms();
    for (int i = 1; i <= MANY; i++)
        *last_tag = expect_numbered(holder, i, false);
    return it_now_ms() - t0;
}

/* How long the broker may take to give MANY deliveries back before a client notices:
 * REQUEUE_BOUND_MS, or half of what delivering them took (deliver_ms), whichever is more.
 * Requeueing is linear work without I/O, a small fraction of the delivery (20 ms against
 * 0.5 to 1.3 s on a shared 2-core machine); the quadratic requeue took longer than the
 * delivery (0.6 to 2.2 s). Measured against the delivery, the bound holds on a loaded
 * machine and in a sanitizer build alike. */
static long long requeue_bound_ms(long long deliver_ms)
{
    return deliver_ms / 2 > REQUEUE_BOUND_MS ? deliver_ms / 2 : REQUEUE_BOUND_MS;
}

/* A round trip of another connection, in milliseconds. */
static long long probe_ms(amqp_connection_state_t probe)
{
    long long t0 = it_now_ms();

    it_assert_channel_alive(probe, 1);
    return it_now_ms() - t0;
}

/* Closes channel ch of holder; fails unless its close-ok, and a round trip of probe sent
 * right after the close, come within bound_ms. */
static void close_within(amqp_connection_state_t holder, amqp_channel_t ch,
                         amqp_connection_state_t probe, long long bound_ms)
{
    amqp_channel_close_t close = {.reply_code = AMQP_REPLY_SUCCESS,
                                  .reply_text = amqp_cstring_bytes("done")};
    amqp_method_t close_ok;
    long long t0 = it_now_ms(), probe_wait, close_wait;

    ck_assert_int_eq(amqp_send_method(holder, ch, AMQP_CHANNEL_CLOSE_METHOD, &close),
                     AMQP_STATUS_OK);
    probe_wait = probe_ms(probe);
    ck_assert_int_eq(amqp_simple_wait_method(holder, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok),
                     AMQP_STATUS_OK);
    close_wait = it_now_ms() - t0;
    ck_assert_msg(close_wait < bound_ms, "close-ok after %lld ms (bound %lld)", close_wait,
                  bound_ms);
    ck_assert_msg(probe_wait < bound_ms, "another connection waited %lld ms (bound %lld)",
                  probe_wait, bound_ms);
}

/* Fails unless q holds m1..m<MANY> again, in order, each redelivered, and nothing else;
 * then deletes q. */
static void expect_all_back(amqp_connection_state_t c, const char *q)
{
    it_expect_counts(c, q, MANY, 0);
    it_consume(c, 1, q, "after", true, false, NULL, 0);
    for (int i = 1; i <= MANY; i++)
        expect_numbered(c, i, true);
    it_expect_no_delivery(c, QUIET_MS);
    it_queue_delete(c, q);
}

/* ---- many at once ---------------------------------------------------------------------- */

START_TEST(closing_a_channel_with_many_unacked_requeues_them_in_order_without_stalling)
{
    amqp_connection_state_t c = it_connect(), holder = it_connect(), probe = it_connect();
    long long deliver_ms;
    uint64_t last;
    char q[64];

    it_queue(c, it_name(q, sizeof q, "requeue.close.many"));
    it_channel_open(holder, 2);
    it_consume(holder, 2, q, "holder", false, false, NULL, 0);
    deliver_ms = deliver_many(c, holder, q, &last);
    close_within(holder, 2, probe, requeue_bound_ms(deliver_ms));
    expect_all_back(c, q);
    it_disconnect(probe);
    it_disconnect(holder);
    it_disconnect(c);
}
END_TEST

/* The consumer is cancelled first, so that the round trip after the nack measures the
 * requeue alone, not the redeliveries (which it_basic's nack tests cover). */
START_TEST(nack_multiple_of_many_unacked_requeues_them_in_order_without_stalling)
{
    amqp_connection_state_t c = it_connect(), holder = it_connect(), probe = it_connect();
    long long deliver_ms, bound_ms, t0, probe_wait, nack_wait;
    uint64_t last;
    char q[64];

    it_queue(c, it_name(q, sizeof q, "requeue.nack.many"));
    it_consume(holder, 1, q, "holder", false, false, NULL, 0);
    deliver_ms = deliver_many(c, holder, q, &last);
    bound_ms = requeue_bound_ms(deliver_ms);
    amqp_basic_cancel(holder, 1, amqp_cstring_bytes("holder"));
    it_assert_ok(amqp_get_rpc_reply(holder), "basic.cancel");

    t0 = it_now_ms();
    ck_assert_int_eq(amqp_basic_nack(holder, 1, last, 1, 1), AMQP_STATUS_OK);
    probe_wait = probe_ms(probe);
    it_assert_channel_alive(holder, 1);
    nack_wait = it_now_ms() - t0;
    ck_assert_msg(nack_wait < bound_ms, "round trip after the nack took %lld ms (bound %lld)",
                  nack_wait, bound_ms);
    ck_assert_msg(probe_wait < bound_ms, "another connection waited %lld ms (bound %lld)",
                  probe_wait, bound_ms);
    expect_all_back(c, q);
    it_disconnect(probe);
    it_disconnect(holder);
    it_disconnect(c);
}
END_TEST

/* Closing the channel cancels its consumers before it requeues: each must not walk the
 * whole unacked ring to find its deliveries (5,000 consumers x 50,000 deliveries held the
 * loop for 0.3 to 2.2 s), nor the whole consumer table to find the next consumer. */
START_TEST(closing_a_channel_with_many_consumers_and_many_unacked_does_not_stall)
{
    amqp_connection_state_t c = it_connect(), holder = it_connect(), probe = it_connect();
    long long deliver_ms;
    uint64_t last;
    char q[64];

    it_queue(c, it_name(q, sizeof q, "requeue.consumers.many"));
    it_channel_open(holder, 2);
    for (int k = 0; k < MANY_CONSUMERS; k++) {
        /* nowait: one round trip for all of them, below. */
        amqp_basic_consume_t consume = {.queue = amqp_cstring_bytes(q), .nowait = 1};
        char tag[16];
        snprintf(tag, sizeof tag, "c%d", k);
        consume.consumer_tag = amqp_cstring_bytes(tag);
        ck_assert_int_eq(amqp_send_method(holder, 2, AMQP_BASIC_CONSUME_METHOD, &consume),
                         AMQP_STATUS_OK);
    }
    it_assert_channel_alive(holder, 2);
    it_expect_counts(c, q, 0, MANY_CONSUMERS);
    deliver_ms = deliver_many(c, holder, q, &last);
    close_within(holder, 2, probe, requeue_bound_ms(deliver_ms));
    expect_all_back(c, q);
    it_disconnect(probe);
    it_disconnect(holder);
    it_disconnect(c);
}
END_TEST

/* ---- where they go back ---------------------------------------------------------------- */

/* Two channels held every other message; m9 and m10 came later. The second channel's
 * messages go back between the first's. */
START_TEST(requeues_from_two_channels_interleave_in_publish_order)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "requeue.interleave"));
    it_channel_open(c, 2);
    it_channel_open(c, 3);
    publish_numbered(c, q, 1, 8);
    for (int i = 1; i <= 8; i++) {
        ck_assert(it_get(c, i % 2 ? 2 : 3, q, false, &m));
        it_msg_free(&m);
    }
    publish_numbered(c, q, 9, 10);
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close 2");
    it_assert_ok(amqp_channel_close(c, 3, AMQP_REPLY_SUCCESS), "channel.close 3");
    it_expect_counts(c, q, 10, 0);
    for (int i = 1; i <= 10; i++)
        expect_got(c, 1, q, i, i <= 8);
    it_disconnect(c);
}
END_TEST

/* A message that was requeued and taken again is the channel's newest delivery, yet the
 * oldest message: it goes back ahead of the others. */
START_TEST(redelivered_message_goes_back_ahead_of_later_ones)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;
    uint64_t m1_tag;

    it_temp_queue(c, it_name(q, sizeof q, "requeue.again"));
    it_channel_open(c, 2);
    publish_numbered(c, q, 1, 4);
    ck_assert(it_get(c, 2, q, false, &m));
    m1_tag = m.delivery_tag;
    it_msg_free(&m);
    for (int i = 2; i <= 3; i++) {
        ck_assert(it_get(c, 2, q, false, &m));
        it_msg_free(&m);
    }
    ck_assert_int_eq(amqp_basic_reject(c, 2, m1_tag, 1), AMQP_STATUS_OK);
    ck_assert(it_get(c, 2, q, false, &m)); /* m1 again, unacked */
    it_assert_body(&m, "m1");
    it_msg_free(&m);
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    for (int i = 1; i <= 4; i++)
        expect_got(c, 1, q, i, i <= 3);
    it_disconnect(c);
}
END_TEST

/* One channel held messages of two queues, interleaved: each queue gets its own back, in
 * order, ahead of what was published to it later. */
START_TEST(nack_multiple_returns_each_queue_its_own_messages_in_order)
{
    amqp_connection_state_t c = it_connect();
    char qa[64], qb[64];
    struct it_msg m;
    uint64_t last = 0;

    it_temp_queue(c, it_name(qa, sizeof qa, "requeue.two.a"));
    it_temp_queue(c, it_name(qb, sizeof qb, "requeue.two.b"));
    publish_numbered(c, qa, 1, 4);
    publish_numbered(c, qb, 1, 4);
    for (int i = 1; i <= 4; i++) {
        ck_assert(it_get(c, 1, qa, false, &m));
        it_msg_free(&m);
        ck_assert(it_get(c, 1, qb, false, &m));
        last = m.delivery_tag;
        it_msg_free(&m);
    }
    publish_numbered(c, qa, 5, 5);
    publish_numbered(c, qb, 5, 5);
    ck_assert_int_eq(amqp_basic_nack(c, 1, last, 1, 1), AMQP_STATUS_OK);
    it_expect_counts(c, qa, 5, 0);
    it_expect_counts(c, qb, 5, 0);
    for (int i = 1; i <= 5; i++) {
        expect_got(c, 1, qb, i, i <= 4);
        expect_got(c, 1, qa, i, i <= 4);
    }
    it_disconnect(c);
}
END_TEST

/* The deliveries of a priority queue are in priority order, not publish order: they go back
 * to their priority, in publish order within it. */
START_TEST(requeue_to_a_priority_queue_keeps_priority_then_publish_order)
{
    amqp_connection_state_t c = it_connect();
    static const int priority[] = {1, 5, 1, 3, 5, 3, 1, 5};
    static const int expected[] = {2, 5, 8, 4, 6, 1, 3, 7}; /* by priority, then m<i> */
    struct it_table args;
    char q[64];
    struct it_msg m;

    it_table_init(&args);
    it_table_add_long(&args, "x-max-priority", 5);
    it_queue_declare(c, 1, it_name(q, sizeof q, "requeue.priority"), false, true, false, args.table,
                     NULL, NULL);
    for (int i = 1; i <= 8; i++) {
        amqp_basic_properties_t props = {._flags = AMQP_BASIC_PRIORITY_FLAG,
                                         .priority = (uint8_t)priority[i - 1]};
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes(body));
    }
    it_channel_open(c, 2);
    for (int i = 0; i < 6; i++) {
        ck_assert(it_get(c, 2, q, false, &m));
        it_msg_free(&m);
    }
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    for (int i = 0; i < 8; i++)
        expect_got(c, 1, q, expected[i], i < 6);
    it_disconnect(c);
}
END_TEST

/* basic.recover gives the consumer its unacked messages again, each once. */
START_TEST(recover_redelivers_each_unacked_message_once)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "requeue.recover"));
    publish_numbered(c, q, 1, 3);
    it_consume(c, 1, q, "r", false, false, NULL, 0);
    for (int i = 1; i <= 3; i++)
        expect_numbered(c, i, false);
    ck_assert_ptr_nonnull(amqp_basic_recover(c, 1, 1));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.recover");
    for (int i = 1; i <= 3; i++)
        expect_numbered(c, i, true);
    it_expect_no_delivery(c, QUIET_MS);
    it_disconnect(c);
}
END_TEST

/* basic.recover with a prefetch of 1 and one message held: it comes back once, redelivered,
 * within the prefetch (the next message waits), under a new tag that can be acked; then the
 * next message comes under a tag of its own. */
START_TEST(recover_redelivers_within_prefetch_under_tags_that_can_be_acked)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    uint64_t tag;

    it_temp_queue(c, it_name(q, sizeof q, "requeue.recover.prefetch"));
    publish_numbered(c, q, 1, 2);
    it_qos(c, 1, 1, false);
    it_consume(c, 1, q, "r", false, false, NULL, 0);
    expect_numbered(c, 1, false);
    it_expect_no_delivery(c, QUIET_MS);
    ck_assert_ptr_nonnull(amqp_basic_recover(c, 1, 1));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.recover");
    tag = expect_numbered(c, 1, true);
    it_expect_no_delivery(c, QUIET_MS);
    ck_assert_int_eq(amqp_basic_ack(c, 1, tag, 0), AMQP_STATUS_OK);
    tag = expect_numbered(c, 2, false);
    it_expect_no_delivery(c, QUIET_MS);
    ck_assert_int_eq(amqp_basic_ack(c, 1, tag, 0), AMQP_STATUS_OK);
    it_assert_channel_alive(c, 1);
    it_expect_counts(c, q, 0, 1);
    it_disconnect(c);
}
END_TEST

/* x-delivery-limit 1 (Warren's, on a classic queue: RabbitMQ refuses it there): of the
 * messages a closed channel returns at once, only the one returned for the second time is
 * dead-lettered; the others go back in order. */
START_TEST(closing_a_channel_dead_letters_only_messages_past_their_delivery_limit)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char q[64], dlq[64];
    struct it_msg m;
    uint64_t m2_tag = 0;

    it_temp_queue(c, it_name(dlq, sizeof dlq, "requeue.limit.dlq"));
    it_table_init(&args);
    it_table_add_long(&args, "x-delivery-limit", 1);
    it_table_add_str(&args, "x-dead-letter-exchange", "");
    it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    it_queue_declare(c, 1, it_name(q, sizeof q, "requeue.limit"), false, true, false, args.table,
                     NULL, NULL);
    publish_numbered(c, q, 1, 4);
    it_channel_open(c, 2);
    for (int i = 1; i <= 4; i++) {
        ck_assert(it_get(c, 2, q, false, &m));
        if (i == 2)
            m2_tag = m.delivery_tag;
        it_msg_free(&m);
    }
    ck_assert_int_eq(amqp_basic_reject(c, 2, m2_tag, 1), AMQP_STATUS_OK);
    ck_assert(it_get(c, 2, q, false, &m)); /* m2's second delivery, unacked */
    it_assert_body(&m, "m2");
    it_msg_free(&m);
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    it_await_get(c, 1, dlq, "m2", NULL, WAIT_MS);
    expect_got(c, 1, q, 1, true);
    expect_got(c, 1, q, 3, true);
    expect_got(c, 1, q, 4, true);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

static Suite *requeue_suite(void)
{
    Suite *s = suite_create("requeue");
    TCase *tc = it_tcase(s, "many");

    tcase_add_test(tc, closing_a_channel_with_many_unacked_requeues_them_in_order_without_stalling);
    tcase_add_test(tc, nack_multiple_of_many_unacked_requeues_them_in_order_without_stalling);
    tcase_add_test(tc, closing_a_channel_with_many_consumers_and_many_unacked_does_not_stall);

    tc = it_tcase(s, "order");
    tcase_add_test(tc, requeues_from_two_channels_interleave_in_publish_order);
    tcase_add_test(tc, redelivered_message_goes_back_ahead_of_later_ones);
    tcase_add_test(tc, nack_multiple_returns_each_queue_its_own_messages_in_order);
    tcase_add_test(tc, requeue_to_a_priority_queue_keeps_priority_then_publish_order);
    tcase_add_test(tc, recover_redelivers_each_unacked_message_once);
    tcase_add_test(tc, recover_redelivers_within_prefetch_under_tags_that_can_be_acked);
    it_add_warrend_test(tc, closing_a_channel_dead_letters_only_messages_past_their_delivery_limit);
    return s;
}

int main(void)
{
    return it_run(requeue_suite(), NULL);
}
