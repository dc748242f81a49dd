/* Policies: which policy applies to a queue or exchange, how it folds into the declared
 * arguments (the lower numeric limit wins, otherwise the argument), and that a change
 * applies at once to what exists. */
#include <check.h>
#include <ev.h>
#include <stdlib.h>

#include "amqp/table.h"
#include "exchanges/registry.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"

static struct vhost *vh;

static void setup(void)
{
    vh = vhost_new(wire_cstr("/"), ev_default_loop(0));
}

static void teardown(void)
{
    vhost_free(vh);
}

/* A definition table with one integer and optionally one string. */
static struct wire_table def(uint8_t *buf, size_t cap, const char *ikey, int64_t ival,
                             const char *skey, const char *sval)
{
    struct wire_writer w = wire_writer_init(buf, cap);
    if (ikey != NULL)
        wire_table_put_i64(&w, ikey, ival);
    if (skey != NULL)
        wire_table_put_longstr(&w, skey, wire_cstr(sval));
    return (struct wire_table){.raw = {.ptr = buf, .len = wire_writer_used(&w)}};
}

static struct queue *declare(const char *name, struct wire_table args)
{
    struct queue *q = queue_new(vh, wire_cstr(name), true, false, false, args.raw);
    vhost_queue_add(vh, q);
    return q;
}

START_TEST(policy_sets_arguments_of_matching_queues_only)
{
    uint8_t b[256];
    char err[256];
    struct queue *orders, *other;

    ck_assert_int_eq(policy_set(vh, "limit", "^orders\\.", "queues", 0,
                                def(b, sizeof b, "max-length", 10, "dead-letter-exchange", "dlx"),
                                false, err, sizeof err),
                     0);
    orders = declare("orders.eu", (struct wire_table){{0}});
    other = declare("payments", (struct wire_table){{0}});
    ck_assert_int_eq(orders->args.max_length, 10);
    ck_assert(orders->args.has_dlx && wire_bytes_eq_cstr(orders->args.dlx, "dlx"));
    ck_assert_int_eq(other->args.max_length, -1);
    ck_assert(!other->args.has_dlx);
}
END_TEST

START_TEST(lower_limit_wins_and_argument_beats_policy_for_the_rest)
{
    uint8_t b[256], a[256];
    char err[256];
    struct queue *q1, *q2;

    ck_assert_int_eq(policy_set(vh, "p", ".*", "all", 0,
                                def(b, sizeof b, "max-length", 10, "dead-letter-exchange", "pdlx"),
                                false, err, sizeof err),
                     0);
    q1 = declare("a", def(a, sizeof a, "x-max-length", 5, "x-dead-letter-exchange", "adlx"));
    ck_assert_int_eq(q1->args.max_length, 5); /* argument 5 < policy 10 */
    ck_assert(wire_bytes_eq_cstr(q1->args.dlx, "adlx"));
    q2 = declare("b", def(a, sizeof a, "x-max-length", 50, NULL, NULL));
    ck_assert_int_eq(q2->args.max_length, 10); /* policy 10 < argument 50 */
    ck_assert(wire_bytes_eq_cstr(q2->args.dlx, "pdlx"));
}
END_TEST

START_TEST(highest_priority_policy_applies_and_operator_policy_caps)
{
    uint8_t b1[128], b2[128], b3[128];
    char err[256];
    struct queue *q;

    ck_assert_int_eq(policy_set(vh, "low", ".*", "queues", 1,
                                def(b1, sizeof b1, "max-length", 100, NULL, NULL), false, err,
                                sizeof err),
                     0);
    ck_assert_int_eq(policy_set(vh, "high", "^q$", "queues", 5,
                                def(b2, sizeof b2, "max-length", 200, NULL, NULL), false, err,
                                sizeof err),
                     0);
    q = declare("q", (struct wire_table){{0}});
    ck_assert_int_eq(q->args.max_length, 200);
    ck_assert_str_eq(policy_applied(vh, wire_cstr("q"), true, false), "high");
    ck_assert_int_eq(policy_set(vh, "cap", ".*", "queues", 0,
                                def(b3, sizeof b3, "max-length", 50, NULL, NULL), true, err,
                                sizeof err),
                     0);
    ck_assert_int_eq(q->args.max_length, 50);
}
END_TEST

START_TEST(changing_or_clearing_a_policy_applies_to_existing_queues_at_once)
{
    uint8_t b[128];
    char err[256];
    struct queue *q = declare("backlog", (struct wire_table){{0}});
    struct message *m;

    for (int i = 0; i < 10; i++) {
        m = message_new(
            wire_cstr(""), wire_cstr("backlog"),
            (struct wire_bytes){
                (const uint8_t *)"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 14},
            0);
        queue_push(q, m);
        message_unref(m);
    }
    ck_assert_uint_eq(queue_ready_count(q), 10);
    ck_assert_int_eq(policy_set(vh, "shrink", "^backlog$", "queues", 0,
                                def(b, sizeof b, "max-length", 3, NULL, NULL), false, err,
                                sizeof err),
                     0);
    ck_assert_uint_eq(queue_ready_count(q), 3); /* drop-head at once */
    ck_assert_int_eq(policy_clear(vh, "shrink", false), 0);
    ck_assert_int_eq(q->args.max_length, -1);
    ck_assert_int_eq(policy_clear(vh, "shrink", false), -1);
}
END_TEST

START_TEST(exchange_policy_sets_alternate_exchange_unless_argument_does)
{
    uint8_t b[128], a[128];
    char err[256];
    const struct exchange_type *direct = exchange_type_find(wire_cstr("direct"));
    struct exchange *x1 =
        exchange_new(vh, wire_cstr("x1"), direct, true, false, false, (struct wire_bytes){0});
    struct exchange *x2 = exchange_new(vh, wire_cstr("x2"), direct, true, false, false,
                                       def(a, sizeof a, NULL, 0, "alternate-exchange", "own").raw);

    vhost_exchange_add(vh, x1);
    vhost_exchange_add(vh, x2);
    ck_assert_uint_eq(x1->alternate.len, 0);
    ck_assert_int_eq(policy_set(vh, "ae", "^x", "exchanges", 0,
                                def(b, sizeof b, NULL, 0, "alternate-exchange", "unrouted"), false,
                                err, sizeof err),
                     0);
    ck_assert(wire_bytes_eq_cstr(x1->alternate, "unrouted"));
    ck_assert(wire_bytes_eq_cstr(x2->alternate, "own"));
    /* amq.* exchanges are left alone. */
    ck_assert_uint_eq(vhost_exchange_find(vh, wire_cstr("amq.direct"))->alternate.len, 0);
}
END_TEST

START_TEST(bad_definitions_and_patterns_are_refused)
{
    uint8_t b[128];
    char err[256];

    ck_assert_int_eq(policy_set(vh, "p", "(", "queues", 0,
                                def(b, sizeof b, "max-length", 1, NULL, NULL), false, err,
                                sizeof err),
                     -1);
    ck_assert_int_eq(policy_set(vh, "p", ".*", "everything", 0,
                                def(b, sizeof b, "max-length", 1, NULL, NULL), false, err,
                                sizeof err),
                     -1);
    ck_assert_int_eq(policy_set(vh, "p", ".*", "queues", 0,
                                def(b, sizeof b, "max-length", -1, NULL, NULL), false, err,
                                sizeof err),
                     -1);
    ck_assert_int_eq(policy_set(vh, "p", ".*", "queues", 0,
                                def(b, sizeof b, NULL, 0, "overflow", "explode"), false, err,
                                sizeof err),
                     -1);
    ck_assert_uint_eq(vh->policy_count, 0);
}
END_TEST

/* Issue 15: a policy's pattern held 1.5 GB ((.*){1,6000}) or took 24 GB ((.*){1,32000}). */
START_TEST(a_pattern_too_complex_to_compile_is_refused_with_the_reason)
{
    uint8_t b[128];
    char err[512];

    for (int operator_policy = 0; operator_policy <= 1; operator_policy++) {
        ck_assert_int_eq(policy_set(vh, "p", "^x\\.(.*){1,1000}$", "queues", 0,
                                    def(b, sizeof b, "max-length", 1, NULL, NULL), operator_policy,
                                    err, sizeof err),
                         -1);
        ck_assert_str_eq(err, "regular expression '^x\\.(.*){1,1000}$' is invalid: pattern too "
                              "complex: its repetitions and alternatives would take more than "
                              "1000000 steps to compile");
    }
    ck_assert_uint_eq(vh->policy_count, 0);
    ck_assert_uint_eq(vh->operator_policy_count, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, policy_sets_arguments_of_matching_queues_only);
    tcase_add_test(tc, lower_limit_wins_and_argument_beats_policy_for_the_rest);
    tcase_add_test(tc, highest_priority_policy_applies_and_operator_policy_caps);
    tcase_add_test(tc, changing_or_clearing_a_policy_applies_to_existing_queues_at_once);
    tcase_add_test(tc, exchange_policy_sets_alternate_exchange_unless_argument_does);
    tcase_add_test(tc, bad_definitions_and_patterns_are_refused);
    tcase_add_test(tc, a_pattern_too_complex_to_compile_is_refused_with_the_reason);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
