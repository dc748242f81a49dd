/* Validation of queue arguments (x-message-ttl, x-expires, x-max-length, x-overflow, ...):
 * which values queue.declare accepts, and the exact 406 texts for the others and for a
 * redeclaration with different arguments. Every text is RabbitMQ 3.10.8's. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static amqp_field_value_t v_long(int64_t v)
{
    return (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I64, .value.i64 = v};
}

static amqp_field_value_t v_int(int32_t v)
{
    return (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I32, .value.i32 = v};
}

static amqp_field_value_t v_str(const char *s)
{
    return (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(s)};
}

static amqp_field_value_t v_bool(bool b)
{
    return (amqp_field_value_t){.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = b};
}

static amqp_field_value_t v_double(double d)
{
    return (amqp_field_value_t){.kind = AMQP_FIELD_KIND_F64, .value.f64 = d};
}

/* queue.declare of an exclusive queue q with the single argument key = value. */
static amqp_rpc_reply_t declare_with(amqp_connection_state_t c, const char *q, const char *key,
                                     amqp_field_value_t value)
{
    struct it_table args;

    it_table_init(&args);
    it_table_add(&args, key, value);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, args.table);
    return amqp_get_rpc_reply(c);
}

/* Declaring with key = value fails with 406 and "PRECONDITION_FAILED - invalid arg '<key>'
 * for queue '<q>' in vhost '/': <reason>". */
static void expect_invalid(const char *key, amqp_field_value_t value, const char *reason)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[512];

    it_name(q, sizeof q, "qargs.bad");
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/': %s", key, q,
             reason);
    it_expect_channel_close(c, 1, declare_with(c, q, key, value), 406, text);
    it_disconnect(c);
}

static void expect_valid(const char *key, amqp_field_value_t value)
{
    amqp_connection_state_t c = it_connect();
    char q[64], what[200];

    it_name(q, sizeof q, "qargs.ok");
    snprintf(what, sizeof what, "queue.declare with %s of kind '%c'", key, value.kind);
    it_assert_ok(declare_with(c, q, key, value), what);
    it_disconnect(c);
}

START_TEST(message_ttl_must_be_a_non_negative_integer)
{
    expect_invalid("x-message-ttl", v_long(-1), "{value_negative,-1}");
    expect_invalid("x-message-ttl", v_str("abc"), "\"expected integer, got longstr\"");
    expect_invalid("x-message-ttl", v_bool(true), "\"expected integer, got bool\"");
    expect_invalid("x-message-ttl", v_double(1.5), "\"expected integer, got double\"");
    expect_valid("x-message-ttl", v_long(0));
    expect_valid("x-message-ttl", v_int(1000));
    expect_valid("x-message-ttl", v_long(4294967297LL));
}
END_TEST

START_TEST(expires_must_be_a_positive_integer)
{
    expect_invalid("x-expires", v_long(0), "{value_zero,0}");
    expect_invalid("x-expires", v_long(-5), "{value_negative,-5}");
    expect_invalid("x-expires", v_str("a"), "\"expected integer, got longstr\"");
    expect_valid("x-expires", v_long(1));
}
END_TEST

START_TEST(length_limits_must_be_non_negative_integers)
{
    expect_invalid("x-max-length", v_long(-1), "{value_negative,-1}");
    expect_invalid("x-max-length", v_str("a"), "\"expected integer, got longstr\"");
    expect_invalid("x-max-length-bytes", v_long(-1), "{value_negative,-1}");
    expect_invalid("x-max-length-bytes", v_str("a"), "\"expected integer, got longstr\"");
    expect_valid("x-max-length", v_long(0));
    expect_valid("x-max-length-bytes", v_long(0));
}
END_TEST

START_TEST(overflow_must_be_a_known_string)
{
    expect_invalid("x-overflow", v_str("foo"), "invalid_overflow");
    expect_invalid("x-overflow", v_int(5), "{unacceptable_type,signedint}");
    expect_valid("x-overflow", v_str("drop-head"));
    expect_valid("x-overflow", v_str("reject-publish"));
    expect_valid("x-overflow", v_str("reject-publish-dlx"));
}
END_TEST

START_TEST(max_priority_must_be_an_integer_up_to_255)
{
    expect_invalid("x-max-priority", v_long(-1), "{value_negative,-1}");
    expect_invalid("x-max-priority", v_str("a"), "\"expected integer, got longstr\"");
    expect_invalid("x-max-priority", v_long(256), "{max_value_exceeded,256}");
    expect_valid("x-max-priority", v_long(0));
    expect_valid("x-max-priority", v_long(255));
}
END_TEST

START_TEST(dead_letter_arguments_must_be_strings)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[512];

    /* This one has a text of its own shape. */
    it_name(q, sizeof q, "qargs.dlx");
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in "
             "queue '%s' in vhost '/'",
             q);
    it_expect_channel_close(c, 1, declare_with(c, q, "x-dead-letter-exchange", v_int(5)), 406,
                            text);
    it_disconnect(c);

    expect_invalid("x-dead-letter-routing-key", v_int(5), "{unacceptable_type,signedint}");
    expect_valid("x-dead-letter-exchange", v_str("any-exchange-even-missing"));
}
END_TEST

START_TEST(dead_letter_routing_key_needs_a_dead_letter_exchange)
{
    expect_invalid("x-dead-letter-routing-key", v_str("rk"), "routing_key_but_no_dlx_defined");
}
END_TEST

START_TEST(queue_mode_and_type_must_be_known)
{
    expect_invalid("x-queue-mode", v_str("foo"), "\"unsupported queue mode 'foo'\"");
    expect_invalid("x-queue-type", v_str("foo"), "\"unsupported queue type 'foo'\"");
    expect_valid("x-queue-mode", v_str("lazy"));
    expect_valid("x-queue-mode", v_str("default"));
    expect_valid("x-queue-type", v_str("classic"));
}
END_TEST

START_TEST(unknown_arguments_are_ignored)
{
    expect_valid("x-not-an-argument", v_int(5));
    expect_valid("no-prefix", v_str("at all"));
}
END_TEST

/* ---- redeclaration ------------------------------------------------------------------------ */

START_TEST(redeclare_with_another_value_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[512];

    it_name(q, sizeof q, "qargs.redecl");
    it_assert_ok(declare_with(c, q, "x-message-ttl", v_long(1000)), "first declare");
    /* The same value as another integer type is the same argument. */
    it_assert_ok(declare_with(c, q, "x-message-ttl", v_int(1000)), "same value as 'I'");

    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '%s' in vhost "
             "'/': received '2000' but current is '1000'",
             q);
    it_expect_channel_close(c, 1, declare_with(c, q, "x-message-ttl", v_long(2000)), 406, text);
    it_channel_open(c, 1);

    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, amqp_empty_table);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '%s' in vhost "
             "'/': received none but current is the value '1000' of type 'long'",
             q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    it_channel_open(c, 1);

    /* Both present but of other type classes: the values alone are quoted. */
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '%s' in vhost "
             "'/': received 'soon' but current is '1000'",
             q);
    it_expect_channel_close(c, 1, declare_with(c, q, "x-message-ttl", v_str("soon")), 406, text);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_with_an_added_argument_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[512];

    it_temp_queue(c, it_name(q, sizeof q, "qargs.added"));
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '%s' in vhost "
             "'/': received the value '10' of type 'long' but current is none",
             q);
    it_expect_channel_close(c, 1, declare_with(c, q, "x-max-length", v_long(10)), 406, text);
    it_channel_open(c, 1);
    /* An argument RabbitMQ does not know is not compared. */
    it_assert_ok(declare_with(c, q, "x-not-an-argument", v_long(10)), "unknown argument");
    it_disconnect(c);
}
END_TEST

START_TEST(passive_declare_ignores_arguments)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "qargs.passive"));
    it_table_init(&args);
    it_table_add_long(&args, "x-message-ttl", -1);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 1, 0, args.table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive declare with a bad argument");
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qargs");
    TCase *tc = it_tcase(s, "validation");

    tcase_add_test(tc, message_ttl_must_be_a_non_negative_integer);
    tcase_add_test(tc, expires_must_be_a_positive_integer);
    tcase_add_test(tc, length_limits_must_be_non_negative_integers);
    tcase_add_test(tc, overflow_must_be_a_known_string);
    tcase_add_test(tc, max_priority_must_be_an_integer_up_to_255);
    tcase_add_test(tc, dead_letter_arguments_must_be_strings);
    tcase_add_test(tc, dead_letter_routing_key_needs_a_dead_letter_exchange);
    tcase_add_test(tc, queue_mode_and_type_must_be_known);
    tcase_add_test(tc, unknown_arguments_are_ignored);
    tc = it_tcase(s, "equivalence");
    tcase_add_test(tc, redeclare_with_another_value_closes_channel_with_406);
    tcase_add_test(tc, redeclare_with_an_added_argument_closes_channel_with_406);
    tcase_add_test(tc, passive_declare_ignores_arguments);
    return it_run(s, NULL);
}
