/* Messages that come back to their queue (queue_requeue_many, src/broker/queue.c): in any
 * batches, in any order within a batch, they go back to their original places among the
 * messages still ready (by seq; by priority first in a priority queue), each exactly once,
 * flagged redelivered, with their delivery counts. A seeded random schedule of takes and
 * returns is checked against a model of the queue: a flag per message saying it is ready. */
#include <check.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "src/broker/message.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"

enum { COUNT = 400, ROUNDS = 300, BODY = 16 };

static struct vhost *vh;

static void setup(void)
{
    vh = vhost_new(wire_cstr("/"), ev_default_loop(0)); /* no spill directory: all in memory */
}

static void teardown(void)
{
    vhost_free(vh);
}

/* xorshift64: the same schedule on every run. */
static uint64_t rnd_state = 88172645463325252u;

static size_t rnd(size_t below)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (size_t)(rnd_state % below);
}

static struct queue *declare(const char *name, int max_priority)
{
    uint8_t args[64];
    struct wire_writer w = wire_writer_init(args, sizeof args);
    struct queue *q;

    if (max_priority > 0)
        wire_table_put_i64(&w, "x-max-priority", max_priority);
    q = queue_new(vh, wire_cstr(name), false, false, false,
                  (struct wire_bytes){args, wire_writer_used(&w)});
    vhost_queue_add(vh, q);
    return q;
}

/* Message i: its number in a BODY-byte body, with a priority property when priority >= 0. */
static void push(struct queue *q, int i, int priority)
{
    uint8_t header[15] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, BODY, 0, 0, 0};
    size_t header_len = 14;
    char body[BODY];
    struct message *m;

    if (priority >= 0) {
        header[12] = 0x08; /* property flags: priority */
        header[14] = (uint8_t)priority;
        header_len = 15;
    }
    m = message_new(wire_cstr(""), q->name, (struct wire_bytes){header, header_len}, BODY);
    memset(body, 0, sizeof body);
    snprintf(body, sizeof body, "%d", i);
    ck_assert(message_append_body(m, (struct wire_bytes){(const uint8_t *)body, BODY}));
    ck_assert(queue_push(q, m));
    message_unref(m);
}

struct model {
    int priority[COUNT]; /* -1: none */
    bool ready[COUNT];
    uint32_t returns[COUNT];
    struct qentry held[COUNT]; /* taken, not given back */
    size_t held_len;
};

/* The message the queue must hand out next: the highest priority, the oldest within it. */
static int model_next(const struct model *m)
{
    int best = -1;

    for (int i = 0; i < COUNT; i++) {
        if (m->ready[i] && (best < 0 || m->priority[i] > m->priority[best]))
            best = i;
    }
    return best;
}

static void take(struct queue *q, struct model *m)
{
    int want = model_next(m), got;
    struct qentry e;

    ck_assert_msg(queue_pop(q, &e), "queue empty, message %d expected", want);
    got = atoi((const char *)e.msg->body);
    ck_assert_msg(got == want, "message %d came, %d expected", got, want);
    ck_assert_msg(e.redelivered == (m->returns[got] > 0), "message %d: redelivered %d", got,
                  e.redelivered);
    ck_assert_uint_eq(e.deliveries, m->returns[got]);
    m->ready[got] = false;
    m->held[m->held_len++] = e;
}

/* Gives n held messages back in one batch, in a random order. */
static void give_back(struct queue *q, struct model *m, size_t n)
{
    static struct qentry batch[COUNT];

    for (size_t i = 0; i < n; i++) {
        size_t k = rnd(m->held_len);
        int number = atoi((const char *)m->held[k].msg->body);
        batch[i] = m->held[k];
        batch[i].deliveries = ++m->returns[number];
        m->ready[number] = true;
        m->held[k] = m->held[--m->held_len];
    }
    queue_requeue_many(q, batch, n);
}

static void run_schedule(struct queue *q, struct model *m)
{
    for (int i = 0; i < COUNT; i++) {
        m->ready[i] = true;
        push(q, i, m->priority[i]);
    }
    /* Now and then everything is taken, so that what is given back next lands among
     * messages given back before, on both sides, and in every priority. */
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t n = rnd(3) == 0 ? COUNT : rnd(60); n > 0 && model_next(m) >= 0; n--)
            take(q, m);
        if (m->held_len > 0)
            give_back(q, m, 1 + rnd(m->held_len));
        ck_assert_uint_eq(queue_ready_count(q), COUNT - m->held_len);
    }
    give_back(q, m, m->held_len);
    while (model_next(m) >= 0)
        take(q, m);
    ck_assert_uint_eq(queue_ready_count(q), 0);
    for (size_t i = 0; i < m->held_len; i++)
        message_unref(m->held[i].msg);
}

START_TEST(returns_in_any_batches_and_orders_come_back_in_publish_order)
{
    static struct model m;

    for (int i = 0; i < COUNT; i++)
        m.priority[i] = -1;
    run_schedule(declare("plain", 0), &m);
}
END_TEST

START_TEST(returns_to_a_priority_queue_come_back_by_priority_then_publish_order)
{
    static struct model m;

    for (int i = 0; i < COUNT; i++)
        m.priority[i] = (int)rnd(4);
    run_schedule(declare("priorities", 3), &m);
}
END_TEST

static Suite *requeue_suite(void)
{
    Suite *s = suite_create("queue_requeue");
    TCase *tc = tcase_create("requeue");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* Under a second of CPU, but Check's default 4 s of wall time ran out on a machine with a
     * load average of 16 (the test got an eighth of a core). */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, returns_in_any_batches_and_orders_come_back_in_publish_order);
    tcase_add_test(tc, returns_to_a_priority_queue_come_back_by_priority_then_publish_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(requeue_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
