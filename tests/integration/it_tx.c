/* Transactions (tx.select/commit/rollback): publishes and acks of a transactional channel take
 * effect at commit and are dropped at rollback; commit and rollback need tx.select first.
 * Validated against RabbitMQ 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tx_select(amqp_connection_state_t c, amqp_channel_t ch)
{
    amqp_tx_select(c, ch);
    it_assert_ok(amqp_get_rpc_reply(c), "tx.select");
}

static void tx_commit(amqp_connection_state_t c, amqp_channel_t ch)
{
    amqp_tx_commit(c, ch);
    it_assert_ok(amqp_get_rpc_reply(c), "tx.commit");
}

static void tx_rollback(amqp_connection_state_t c, amqp_channel_t ch)
{
    amqp_tx_rollback(c, ch);
    it_assert_ok(amqp_get_rpc_reply(c), "tx.rollback");
}

/* Fails unless q holds n ready messages and still does a moment later: a publish that the
 * broker wrongly let through would reach the queue within that moment. */
static void expect_count_stays(amqp_connection_state_t c, const char *q, long n)
{
    it_expect_counts(c, q, n, -1);
    it_sleep_ms(100);
    it_expect_counts(c, q, n, -1);
}

/* Takes the next message of q on ch for a manual ack and returns its delivery tag. */
static uint64_t get_unacked(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                            const char *body)
{
    struct it_msg m;
    uint64_t tag;

    ck_assert_msg(it_get(c, ch, q, false, &m), "queue empty, expected '%s'", body);
    it_assert_body(&m, body);
    tag = m.delivery_tag;
    it_msg_free(&m);
    return tag;
}

START_TEST(publishes_wait_for_commit)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.commit"));
    it_channel_open(c, 2);
    tx_select(c, 2);
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("a"));
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("b"));
    /* Not in the queue before the commit (checked from another channel). */
    it_assert_channel_alive(c, 2);
    expect_count_stays(c, q, 0);
    tx_commit(c, 2);
    it_expect_counts(c, q, 2, 0);
    it_expect_get(c, 1, q, "a", NULL);
    it_expect_get(c, 1, q, "b", NULL);
    /* The channel stays transactional after a commit: the next publish waits again. */
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("c"));
    it_assert_channel_alive(c, 2);
    expect_count_stays(c, q, 0);
    tx_commit(c, 2);
    it_expect_get(c, 1, q, "c", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(rollback_drops_publishes)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.rollback"));
    it_channel_open(c, 2);
    tx_select(c, 2);
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("dropped"));
    tx_rollback(c, 2);
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("kept"));
    tx_commit(c, 2);
    it_expect_get(c, 1, q, "kept", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(closing_the_channel_drops_uncommitted_publishes)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.close"));
    it_channel_open(c, 2);
    tx_select(c, 2);
    it_publish_bytes(c, 2, "", q, NULL, amqp_cstring_bytes("dropped"));
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(acks_wait_for_commit)
{
    amqp_connection_state_t c = it_connect();
    uint64_t t1, t2;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.ack"));
    it_publish(c, "", q, "a");
    it_publish(c, "", q, "b");
    it_channel_open(c, 2);
    tx_select(c, 2);
    t1 = get_unacked(c, 2, q, "a");
    t2 = get_unacked(c, 2, q, "b");
    it_ack(c, 2, t1, false);
    it_ack(c, 2, t2, false);
    tx_commit(c, 2);
    /* Acked for good: closing the channel requeues nothing. */
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(rolled_back_acks_leave_messages_unacked)
{
    amqp_connection_state_t c = it_connect();
    uint64_t t1, t2;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.ackrb"));
    it_publish(c, "", q, "a");
    it_publish(c, "", q, "b");
    it_channel_open(c, 2);
    tx_select(c, 2);
    t1 = get_unacked(c, 2, q, "a");
    t2 = get_unacked(c, 2, q, "b");
    it_ack(c, 2, t2, true);
    tx_rollback(c, 2);
    /* Still unacked on channel 2 (not ready, not gone): the tags remain valid, so acking t1
     * again in a committed transaction works. */
    expect_count_stays(c, q, 0);
    it_ack(c, 2, t1, false);
    tx_commit(c, 2);
    /* b was never acked: closing the channel requeues it, and only it. */
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    it_expect_counts(c, q, 1, 0);
    {
        struct it_msg m;

        it_expect_get(c, 1, q, "b", &m);
        ck_assert(m.redelivered);
        it_msg_free(&m);
    }
    it_disconnect(c);
}
END_TEST

START_TEST(nack_with_requeue_waits_for_commit)
{
    amqp_connection_state_t c = it_connect();
    uint64_t t1;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.nack"));
    it_publish(c, "", q, "a");
    it_channel_open(c, 2);
    tx_select(c, 2);
    t1 = get_unacked(c, 2, q, "a");
    ck_assert_int_eq(amqp_basic_nack(c, 2, t1, false, true), AMQP_STATUS_OK);
    it_assert_channel_alive(c, 2);
    expect_count_stays(c, q, 0);
    tx_commit(c, 2);
    it_expect_counts(c, q, 1, 0);
    it_disconnect(c);
}
END_TEST

/* An ack in a transaction takes its tag at once, as in RabbitMQ: acking it again is an
 * unknown tag. */
START_TEST(ack_in_a_transaction_takes_its_tag_at_once)
{
    amqp_connection_state_t c = it_connect();
    uint64_t t1;
    char q[64], text[64];

    it_temp_queue(c, it_name(q, sizeof q, "tx.ack.twice"));
    it_publish(c, "", q, "a");
    it_channel_open(c, 2);
    tx_select(c, 2);
    t1 = get_unacked(c, 2, q, "a");
    it_ack(c, 2, t1, false);
    it_ack(c, 2, t1, false);
    snprintf(text, sizeof text, "PRECONDITION_FAILED - unknown delivery tag %llu",
             (unsigned long long)t1);
    it_expect_channel_close(c, 2, it_wait_method(c, 2000), 406, text);
    it_disconnect(c);
}
END_TEST

/* basic.recover in a transaction gives back only the deliveries not settled in it: the one
 * acked but not yet committed stays acked, and the commit then removes it. */
START_TEST(recover_leaves_acks_of_the_open_transaction_alone)
{
    amqp_connection_state_t c = it_connect();
    uint64_t t1;
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "tx.recover"));
    it_publish(c, "", q, "a");
    it_publish(c, "", q, "b");
    it_channel_open(c, 2);
    tx_select(c, 2);
    t1 = get_unacked(c, 2, q, "a");
    get_unacked(c, 2, q, "b");
    it_ack(c, 2, t1, false);
    ck_assert_ptr_nonnull(amqp_basic_recover(c, 2, 1));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.recover");
    tx_commit(c, 2);
    it_expect_counts(c, q, 1, 0);
    it_expect_get(c, 1, q, "b", &m);
    ck_assert(m.redelivered);
    it_msg_free(&m);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(select_twice_is_allowed)
{
    amqp_connection_state_t c = it_connect();

    tx_select(c, 1);
    tx_select(c, 1);
    tx_commit(c, 1);
    tx_rollback(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(commit_without_select_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    amqp_tx_commit(c, 1);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - channel is not transactional");
    it_disconnect(c);
}
END_TEST

START_TEST(rollback_without_select_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    amqp_tx_rollback(c, 1);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406,
                            "PRECONDITION_FAILED - channel is not transactional");
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tx");
    TCase *tc = it_tcase(s, "tx");

    tcase_add_test(tc, publishes_wait_for_commit);
    tcase_add_test(tc, rollback_drops_publishes);
    tcase_add_test(tc, closing_the_channel_drops_uncommitted_publishes);
    tcase_add_test(tc, acks_wait_for_commit);
    tcase_add_test(tc, rolled_back_acks_leave_messages_unacked);
    tcase_add_test(tc, nack_with_requeue_waits_for_commit);
    tcase_add_test(tc, ack_in_a_transaction_takes_its_tag_at_once);
    tcase_add_test(tc, recover_leaves_acks_of_the_open_transaction_alone);
    tcase_add_test(tc, select_twice_is_allowed);
    tcase_add_test(tc, commit_without_select_closes_channel_with_406);
    tcase_add_test(tc, rollback_without_select_closes_channel_with_406);
    return it_run(s, NULL);
}
