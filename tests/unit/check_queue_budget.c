/* The memory all queues of a broker keep their ready messages in (queue_memory_limit): past
 * the budget a queue keeps only QUEUE_MIN_WINDOW messages near its head and pages the rest of
 * its backlog to its spill file; nothing is lost or reordered, and the budget comes back to
 * zero as messages leave, whichever way they leave. */
#include <check.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/broker/message.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"

enum { BODY = 100, CHARGE = BODY + QUEUE_ENTRY_CHARGE, PER_QUEUE = 500 };

static struct vhost *vh;
static struct queue_budget budget;
static char dir[] = "/tmp/warren-budget-XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    vh = vhost_new(wire_cstr("/"), ev_default_loop(0));
    vh->spill_dir = dir;
    vh->memory_window = 1000;
    budget = (struct queue_budget){.limit = 100 * CHARGE}; /* 100 messages in all */
    vh->budget = &budget;
}

static void teardown(void)
{
    char cmd[64];

    vhost_free(vh);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static struct queue *declare(const char *name)
{
    struct queue *q = queue_new(vh, wire_cstr(name), false, false, false, (struct wire_bytes){0});
    vhost_queue_add(vh, q);
    ck_assert(q->can_spill);
    return q;
}

/* Message i of a queue: a BODY-byte body that starts with its number. */
static void push(struct queue *q, int i)
{
    static const uint8_t header[14] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, BODY, 0, 0};
    char body[BODY];
    struct message *m =
        message_new(wire_cstr(""), q->name, (struct wire_bytes){header, sizeof header}, BODY);

    memset(body, '.', sizeof body);
    snprintf(body, sizeof body, "%d", i);
    ck_assert(message_append_body(m, (struct wire_bytes){(const uint8_t *)body, BODY}));
    ck_assert(queue_push(q, m));
    message_unref(m);
}

/* Takes every message of q, checking they come in order, all of them. */
static void drain_in_order(struct queue *q, int count)
{
    struct qentry e;

    for (int i = 0; i < count; i++) {
        ck_assert_msg(queue_pop(q, &e), "message %d of %d missing", i, count);
        ck_assert_int_eq(atoi((const char *)e.msg->body), i);
        message_unref(e.msg);
    }
    ck_assert(!queue_pop(q, &e));
}

START_TEST(over_the_budget_each_queue_keeps_only_the_minimum_in_memory)
{
    struct queue *a = declare("a"), *b = declare("b"), *c = declare("c");

    for (int i = 0; i < PER_QUEUE; i++) {
        push(a, i);
        push(b, i);
        push(c, i);
    }
    /* The three filled the budget together; past it each kept QUEUE_MIN_WINDOW. */
    ck_assert_uint_le(a->len, 100);
    ck_assert_uint_eq(a->len + b->len + c->len, 3 * QUEUE_MIN_WINDOW);
    ck_assert_uint_eq(budget.used, 3 * QUEUE_MIN_WINDOW * (uint64_t)CHARGE);
    ck_assert_uint_eq(queue_ready_count(a), PER_QUEUE);
    ck_assert_uint_eq(a->spill.count, PER_QUEUE - a->len);
    drain_in_order(a, PER_QUEUE);
    drain_in_order(b, PER_QUEUE);
    drain_in_order(c, PER_QUEUE);
    ck_assert_uint_eq(budget.used, 0);
}
END_TEST

START_TEST(one_queue_under_the_budget_keeps_its_whole_window)
{
    struct queue *a = declare("a");

    budget.limit = 0; /* no broker-wide limit: the queue's own window (1000) alone */
    for (int i = 0; i < PER_QUEUE; i++)
        push(a, i);
    ck_assert_uint_eq(a->len, PER_QUEUE);
    ck_assert_uint_eq(a->spill.count, 0);
    ck_assert_uint_eq(budget.used, PER_QUEUE * (uint64_t)CHARGE);
    drain_in_order(a, PER_QUEUE);
    ck_assert_uint_eq(budget.used, 0);
}
END_TEST

START_TEST(budget_fills_up_first_come_first_served_then_pages)
{
    struct queue *a = declare("a"), *b = declare("b");

    for (int i = 0; i < PER_QUEUE; i++)
        push(a, i);
    /* a alone took the 100 the budget allows, then paged. */
    ck_assert_uint_eq(a->len, 100);
    for (int i = 0; i < PER_QUEUE; i++)
        push(b, i);
    /* b still gets the minimum near its head, so its consumers are served from memory. */
    ck_assert_uint_eq(b->len, QUEUE_MIN_WINDOW);
    drain_in_order(b, PER_QUEUE);
    drain_in_order(a, PER_QUEUE);
    ck_assert_uint_eq(budget.used, 0);
}
END_TEST

START_TEST(purge_and_delete_give_the_budget_back)
{
    struct queue *a = declare("a"), *b = declare("b");

    for (int i = 0; i < 80; i++) {
        push(a, i);
        push(b, i);
    }
    ck_assert_uint_gt(budget.used, 0);
    ck_assert_uint_eq(queue_purge(a), 80);
    ck_assert_uint_eq(budget.used, b->len * (uint64_t)CHARGE);
    queue_delete(b);
    ck_assert_uint_eq(budget.used, 0);
}
END_TEST

static Suite *budget_suite(void)
{
    Suite *s = suite_create("queue_budget");
    TCase *tc = tcase_create("budget");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, over_the_budget_each_queue_keeps_only_the_minimum_in_memory);
    tcase_add_test(tc, one_queue_under_the_budget_keeps_its_whole_window);
    tcase_add_test(tc, budget_fills_up_first_come_first_served_then_pages);
    tcase_add_test(tc, purge_and_delete_give_the_budget_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(budget_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
