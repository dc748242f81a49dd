/* Queue length limits (x-max-length, x-max-length-bytes) and what happens on overflow
 * (x-overflow drop-head, reject-publish, reject-publish-dlx). Validated against RabbitMQ
 * 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS     5000
#define BURST       100000
#define BURST_LIMIT 1000
#define BURST_BATCH 5000 /* publishes between waits for their confirms */

/* An exclusive queue on channel 1 with these limits (negative: none), overflow behaviour
 * (NULL: the default, drop-head) and dead-lettering to the default exchange with key dlq
 * (NULL: none). */
static void limited_queue(amqp_connection_state_t c, const char *q, long max_length, long max_bytes,
                          const char *overflow, const char *dlq)
{
    struct it_table args;

    it_table_init(&args);
    if (max_length >= 0)
        it_table_add_long(&args, "x-max-length", max_length);
    if (max_bytes >= 0)
        it_table_add_long(&args, "x-max-length-bytes", max_bytes);
    if (overflow != NULL)
        it_table_add_str(&args, "x-overflow", overflow);
    if (dlq != NULL) {
        it_table_add_str(&args, "x-dead-letter-exchange", "");
        it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    }
    it_queue_declare(c, 1, q, false, true, false, args.table, NULL, NULL);
}

static void publish_range(amqp_connection_state_t c, const char *q, int first, int last)
{
    for (int i = first; i <= last; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, "", q, body);
    }
}

/* Fails unless the next dead letter in dlq is body with x-death reason maxlen from q. */
static void expect_maxlen_dead_letter(amqp_connection_state_t c, const char *dlq, const char *q,
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
                  "'%s' has no single x-death entry", body);
    death = &deaths->value.array.entries[0].value.table;
    it_assert_table_str(death, "reason", "maxlen");
    it_assert_table_str(death, "queue", q);
    it_assert_table_long(death, "count", 1);
    it_msg_free(&m);
}

START_TEST(max_length_drops_and_dead_letters_the_head)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.len.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.len"), 2, -1, NULL, dlq);
    publish_range(c, q, 1, 4);
    it_expect_counts(c, q, 2, 0);
    expect_maxlen_dead_letter(c, dlq, q, "m1");
    expect_maxlen_dead_letter(c, dlq, q, "m2");
    it_expect_get(c, 1, q, "m3", NULL);
    it_expect_get(c, 1, q, "m4", NULL);
    it_expect_empty(c, 1, q);
    it_expect_empty(c, 1, dlq);
    it_disconnect(c);
}
END_TEST

START_TEST(max_length_bytes_drops_the_head_until_the_bodies_fit)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.bytes.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.bytes"), -1, 12, "drop-head", dlq);
    it_publish(c, "", q, "aaaa");
    it_publish(c, "", q, "bbbb");
    it_publish(c, "", q, "cccc");     /* 12 bytes: exactly the limit, all stay */
    it_publish(c, "", q, "dddddddd"); /* 20 bytes: two must go to fit */
    it_expect_counts(c, q, 2, 0);
    expect_maxlen_dead_letter(c, dlq, q, "aaaa");
    expect_maxlen_dead_letter(c, dlq, q, "bbbb");
    it_expect_get(c, 1, q, "cccc", NULL);
    it_expect_get(c, 1, q, "dddddddd", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(unacked_messages_do_not_count_towards_the_limit)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    limited_queue(c, it_name(q, sizeof q, "ql.unacked"), 1, -1, NULL, NULL);
    it_publish(c, "", q, "m1");
    ck_assert(it_get(c, 1, q, false, &m)); /* m1 is now unacked, not ready */
    it_msg_free(&m);
    it_publish(c, "", q, "m2");
    it_expect_counts(c, q, 1, 0);
    it_publish(c, "", q, "m3"); /* drops m2, not the unacked m1 */
    it_expect_counts(c, q, 1, 0);
    it_expect_get(c, 1, q, "m3", NULL);
    ck_assert_int_eq(amqp_basic_recover(c, 1, 1) != NULL, 1);
    it_expect_get(c, 1, q, "m1", NULL);
    it_disconnect(c);
}
END_TEST

/* A requeue that takes the queue over its limit drops (dead-letters) from the head as a
 * publish would: the returned messages go back to their places at the head, so they go
 * first. RabbitMQ's requeue runs maybe_drop_head for drop-head queues. */
START_TEST(requeue_over_the_limit_drops_from_the_head)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m1, m2;
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.requeue.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.requeue"), 2, -1, NULL, dlq);
    publish_range(c, q, 1, 2);
    ck_assert(it_get(c, 1, q, false, &m1));
    ck_assert(it_get(c, 1, q, false, &m2));
    publish_range(c, q, 3, 4); /* two ready, at the limit; m1 and m2 unacked */
    it_expect_counts(c, q, 2, 0);
    ck_assert_int_eq(amqp_basic_nack(c, 1, m2.delivery_tag, 1, 1), 0);
    it_msg_free(&m1);
    it_msg_free(&m2);
    expect_maxlen_dead_letter(c, dlq, q, "m1");
    expect_maxlen_dead_letter(c, dlq, q, "m2");
    it_expect_counts(c, q, 2, 0);
    it_expect_get(c, 1, q, "m3", NULL);
    it_expect_get(c, 1, q, "m4", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(reject_publish_refuses_new_messages_and_does_not_dead_letter)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[5] = {0};
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.reject.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.reject"), 2, -1, "reject-publish", dlq);
    /* Without confirms the refused message just vanishes. */
    publish_range(c, q, 1, 3);
    it_expect_counts(c, q, 2, 0);
    it_confirm_select(c, 1);
    publish_range(c, q, 4, 4);
    it_collect_confirms(c, 1, state, 1, WAIT_MS, NULL);
    ck_assert_int_eq(state[1], IT_NACKED);
    it_expect_get(c, 1, q, "m1", NULL);
    it_expect_get(c, 1, q, "m2", NULL);
    it_expect_empty(c, 1, q);
    it_sleep_ms(100);
    it_expect_empty(c, 1, dlq);
    it_disconnect(c);
}
END_TEST

START_TEST(reject_publish_dlx_nacks_and_dead_letters)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm state[5] = {0};
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.rdlx.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.rdlx"), 1, -1, "reject-publish-dlx", dlq);
    it_confirm_select(c, 1);
    publish_range(c, q, 1, 3);
    it_collect_confirms(c, 1, state, 3, WAIT_MS, NULL);
    ck_assert_int_eq(state[1], IT_ACKED);
    ck_assert_int_eq(state[2], IT_NACKED);
    ck_assert_int_eq(state[3], IT_NACKED);
    expect_maxlen_dead_letter(c, dlq, q, "m2");
    expect_maxlen_dead_letter(c, dlq, q, "m3");
    it_expect_get(c, 1, q, "m1", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(max_length_zero_keeps_nothing)
{
    amqp_connection_state_t c = it_connect();
    char q[64], dlq[64];

    it_temp_queue(c, it_name(dlq, sizeof dlq, "ql.zero.dlq"));
    limited_queue(c, it_name(q, sizeof q, "ql.zero"), 0, -1, NULL, dlq);
    it_publish(c, "", q, "m1");
    expect_maxlen_dead_letter(c, dlq, q, "m1");
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

/* Publishes m1..mBURST on channel 1 (in confirm mode) in batches, collecting each batch's
 * confirms before the next, so neither side's buffers grow without bound. */
static enum it_confirm *publish_burst(amqp_connection_state_t c, const char *q)
{
    enum it_confirm *state = calloc(BURST + 1, sizeof *state);

    ck_assert_ptr_nonnull(state);
    it_confirm_select(c, 1);
    for (int first = 1; first <= BURST; first += BURST_BATCH) {
        int last = first + BURST_BATCH - 1 <= BURST ? first + BURST_BATCH - 1 : BURST;

        publish_range(c, q, first, last);
        it_collect_confirms(c, 1, state, (uint64_t)last, WAIT_MS, NULL);
    }
    return state;
}

START_TEST(burst_into_drop_head_keeps_exactly_the_newest)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm *state;
    struct it_msg m;
    char q[64], want[16];

    limited_queue(c, it_name(q, sizeof q, "ql.burst.drop"), BURST_LIMIT, -1, NULL, NULL);
    state = publish_burst(c, q);
    for (int i = 1; i <= BURST; i++)
        ck_assert_msg(state[i] == IT_ACKED, "publish %d not acked (%d)", i, state[i]);
    free(state);
    it_expect_counts(c, q, BURST_LIMIT, 0);
    for (int i = BURST - BURST_LIMIT + 1; i <= BURST; i++) {
        snprintf(want, sizeof want, "m%d", i);
        ck_assert_msg(it_get(c, 1, q, true, &m), "queue empty before '%s'", want);
        it_assert_body(&m, want);
        it_msg_free(&m);
    }
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(burst_into_reject_publish_nacks_the_overflow)
{
    amqp_connection_state_t c = it_connect();
    enum it_confirm *state;
    struct it_msg m;
    char q[64], want[16];

    limited_queue(c, it_name(q, sizeof q, "ql.burst.reject"), BURST_LIMIT, -1, "reject-publish",
                  NULL);
    state = publish_burst(c, q);
    for (int i = 1; i <= BURST; i++)
        ck_assert_msg(state[i] == (i <= BURST_LIMIT ? IT_ACKED : IT_NACKED),
                      "publish %d confirmed %d", i, state[i]);
    free(state);
    it_expect_counts(c, q, BURST_LIMIT, 0);
    for (int i = 1; i <= BURST_LIMIT; i++) {
        snprintf(want, sizeof want, "m%d", i);
        ck_assert_msg(it_get(c, 1, q, true, &m), "queue empty before '%s'", want);
        it_assert_body(&m, want);
        it_msg_free(&m);
    }
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qlimits");
    TCase *tc = it_tcase(s, "length");

    tcase_add_test(tc, max_length_drops_and_dead_letters_the_head);
    tcase_add_test(tc, max_length_bytes_drops_the_head_until_the_bodies_fit);
    tcase_add_test(tc, unacked_messages_do_not_count_towards_the_limit);
    tcase_add_test(tc, requeue_over_the_limit_drops_from_the_head);
    tcase_add_test(tc, reject_publish_refuses_new_messages_and_does_not_dead_letter);
    tcase_add_test(tc, reject_publish_dlx_nacks_and_dead_letters);
    tcase_add_test(tc, max_length_zero_keeps_nothing);
    tc = it_tcase(s, "burst");
    tcase_add_test(tc, burst_into_drop_head_keeps_exactly_the_newest);
    tcase_add_test(tc, burst_into_reject_publish_nacks_the_overflow);
    return it_run(s, NULL);
}
