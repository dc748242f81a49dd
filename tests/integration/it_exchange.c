/* Exchanges: declare, redeclare, delete, the default and amq.* exchanges, and routing
 * through each type as a client sees it. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_EXCHANGE_REFUSED "ACCESS_REFUSED - operation not permitted on the default exchange"

static amqp_rpc_reply_t declare(amqp_connection_state_t c, const char *name, const char *type,
                                bool passive, bool durable)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(type), passive,
                          durable, 0, 0, amqp_empty_table);
    return amqp_get_rpc_reply(c);
}

/* Gets every message of q (no-ack) and writes their bodies, space-separated, into out. */
static const char *drain(amqp_connection_state_t c, const char *q, char *out, size_t size)
{
    struct it_msg m;
    size_t len = 0;

    out[0] = '\0';
    while (it_get(c, 1, q, true, &m)) {
        char body[64];

        len += (size_t)snprintf(out + len, size - len, "%s%s", len > 0 ? " " : "",
                                it_body(&m, body, sizeof body));
        it_msg_free(&m);
        ck_assert_uint_lt(len, size);
    }
    return out;
}

START_TEST(every_type_can_be_declared_and_deleted)
{
    static const char *const types[] = {"direct", "fanout", "topic", "headers"};
    amqp_connection_state_t c = it_connect();

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char x[64];

        it_name(x, sizeof x, types[i]);
        it_exchange(c, x, types[i]);
        /* Redeclaring with the same arguments is a no-op, passive or not. */
        it_assert_ok(declare(c, x, types[i], false, false), "redeclare");
        it_assert_ok(declare(c, x, types[i], true, false), "passive declare");
        it_exchange_delete(c, x);
        it_expect_channel_close(c, 1, declare(c, x, types[i], true, false), 404, NULL);
        it_channel_open(c, 1);
    }
    it_disconnect(c);
}
END_TEST

START_TEST(passive_declare_of_missing_exchange_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[200];

    it_name(x, sizeof x, "missing");
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, declare(c, x, "direct", true, false), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_with_other_type_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[300];

    it_exchange(c, it_name(x, sizeof x, "retype"), "direct");
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in vhost '/': "
             "received 'fanout' but current is 'direct'",
             x);
    it_expect_channel_close(c, 1, declare(c, x, "fanout", false, false), 406, text);
    it_channel_open(c, 1);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_with_other_durability_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[300];

    it_exchange(c, it_name(x, sizeof x, "redurable"), "direct");
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '%s' in vhost '/': "
             "received 'true' but current is 'false'",
             x);
    it_expect_channel_close(c, 1, declare(c, x, "direct", false, true), 406, text);
    it_channel_open(c, 1);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_if_unused_of_bound_exchange_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[64], text[200];

    it_exchange(c, it_name(x, sizeof x, "inuse"), "direct");
    it_temp_queue(c, it_name(q, sizeof q, "inuse"));
    it_bind(c, q, x, "k", amqp_empty_table);
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(x), 1);
    snprintf(text, sizeof text, "PRECONDITION_FAILED - exchange '%s' in vhost '/' in use", x);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    /* Without its binding the exchange is unused and goes. */
    it_channel_open(c, 1);
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                      amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind");
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(x), 1);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.delete if-unused");
    it_expect_channel_close(c, 1, declare(c, x, "direct", true, false), 404, NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_of_missing_exchange_succeeds)
{
    amqp_connection_state_t c = it_connect();
    char x[64];

    /* RabbitMQ 3.x answers delete-ok: delete is idempotent. */
    it_exchange_delete(c, it_name(x, sizeof x, "nothere"));
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_of_exchange_removes_its_bindings)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[64], got[64];

    it_exchange(c, it_name(x, sizeof x, "rebind"), "direct");
    it_temp_queue(c, it_name(q, sizeof q, "rebind"));
    it_bind(c, q, x, "k", amqp_empty_table);
    it_exchange_delete(c, x);
    /* A new exchange of the same name starts without the old binding. */
    it_exchange(c, x, "direct");
    it_publish(c, x, "k", "lost");
    ck_assert_str_eq(drain(c, q, got, sizeof got), "");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(unknown_type_closes_connection_with_503)
{
    amqp_connection_state_t c = it_connect();
    char x[64];

    it_name(x, sizeof x, "badtype");
    /* RabbitMQ says "invalid exchange type" instead when the name happens to be an atom of
     * its Erlang VM (e.g. 'foo'); for any other name it says "unknown". */
    it_expect_connection_close(c, declare(c, x, "no-such-type", false, false), 503,
                               "COMMAND_INVALID - unknown exchange type 'no-such-type'");
    it_destroy(c);
}
END_TEST

START_TEST(default_exchange_cannot_be_declared_or_deleted)
{
    amqp_connection_state_t c = it_connect();

    it_expect_channel_close(c, 1, declare(c, "", "direct", false, false), 403,
                            DEFAULT_EXCHANGE_REFUSED);
    it_channel_open(c, 1);
    it_expect_channel_close(c, 1, declare(c, "", "direct", true, false), 403,
                            DEFAULT_EXCHANGE_REFUSED);
    it_channel_open(c, 1);
    amqp_exchange_delete(c, 1, amqp_empty_bytes, 0);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403, DEFAULT_EXCHANGE_REFUSED);
    it_disconnect(c);
}
END_TEST

START_TEST(default_exchange_cannot_be_bound_or_unbound)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "bind.default"));
    amqp_queue_bind(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, amqp_cstring_bytes("k"),
                    amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403, DEFAULT_EXCHANGE_REFUSED);
    it_channel_open(c, 1);
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, amqp_cstring_bytes(q),
                      amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403, DEFAULT_EXCHANGE_REFUSED);
    it_disconnect(c);
}
END_TEST

START_TEST(default_exchange_routes_by_queue_name)
{
    amqp_connection_state_t c = it_connect();
    char q[64], other[64], got[64];

    it_temp_queue(c, it_name(q, sizeof q, "default"));
    it_temp_queue(c, it_name(other, sizeof other, "default"));
    it_publish(c, "", q, "m1");
    it_publish(c, "", "it.no-such-queue", "dropped");
    ck_assert_str_eq(drain(c, q, got, sizeof got), "m1");
    ck_assert_str_eq(drain(c, other, got, sizeof got), "");
    it_disconnect(c);
}
END_TEST

START_TEST(amq_exchanges_exist)
{
    static const char *const names[][2] = {
        {"amq.direct", "direct"},   {"amq.fanout", "fanout"}, {"amq.topic", "topic"},
        {"amq.headers", "headers"}, {"amq.match", "headers"},
    };
    amqp_connection_state_t c = it_connect();

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        it_assert_ok(declare(c, names[i][0], names[i][1], true, false), names[i][0]);
    it_disconnect(c);
}
END_TEST

START_TEST(amq_prefix_is_reserved)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[200];

    snprintf(x, sizeof x, "amq.it-%ld", (long)getpid());
    snprintf(text, sizeof text,
             "ACCESS_REFUSED - exchange name '%s' contains reserved prefix 'amq.*'", x);
    it_expect_channel_close(c, 1, declare(c, x, "direct", false, false), 403, text);
    /* A passive declare just finds nothing. */
    it_channel_open(c, 1);
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, declare(c, x, "direct", true, false), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(auto_delete_exchange_goes_with_its_last_binding)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[64];

    it_name(x, sizeof x, "autodel");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("fanout"), 0, 0, 1, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.declare auto-delete");
    it_temp_queue(c, it_name(q, sizeof q, "autodel"));
    it_bind(c, q, x, "a", amqp_empty_table);
    it_bind(c, q, x, "b", amqp_empty_table);
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("a"),
                      amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind a");
    it_assert_ok(declare(c, x, "fanout", true, false), "exchange still there with one binding");
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("b"),
                      amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind b");
    it_expect_channel_close(c, 1, declare(c, x, "fanout", true, false), 404, NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(direct_exchange_routes_by_exact_key)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q1[64], q2[64], got[64];

    it_exchange(c, it_name(x, sizeof x, "direct"), "direct");
    it_temp_queue(c, it_name(q1, sizeof q1, "direct"));
    it_temp_queue(c, it_name(q2, sizeof q2, "direct"));
    it_bind(c, q1, x, "red", amqp_empty_table);
    it_bind(c, q2, x, "green", amqp_empty_table);
    it_bind(c, q2, x, "red", amqp_empty_table);
    it_publish(c, x, "red", "r");
    it_publish(c, x, "green", "g");
    it_publish(c, x, "blue", "b");
    it_publish(c, x, "Red", "R");
    ck_assert_str_eq(drain(c, q1, got, sizeof got), "r");
    ck_assert_str_eq(drain(c, q2, got, sizeof got), "r g");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

/* Routing keys published to the topic exchange; the body of each message is its index. */
static const char *const topic_keys[] = {
    "",        /* 0: zero words */
    "a",       /* 1 */
    "c",       /* 2 */
    "a.b",     /* 3 */
    "a.c",     /* 4 */
    "a.b.c",   /* 5 */
    "a.x.y.c", /* 6 */
    "b",       /* 7 */
    "x.b.y",   /* 8 */
    "a..c",    /* 9: an empty word in the middle */
    "a.b.c.d", /* 10 */
    ".",       /* 11: two empty words */
};

/* What RabbitMQ 3.10 routes to a queue bound with each pattern. */
static const struct {
    const char *pattern;
    const char *keys; /* indexes into topic_keys, in publish order */
} topic_cases[] = {
    {"*", "1 2 7"},
    {"#", "0 1 2 3 4 5 6 7 8 9 10 11"},
    {"a", "1"},
    {"a.*", "3 4"},
    {"a.#", "1 3 4 5 6 9 10"},
    {"#.c", "2 4 5 6 9"},
    {"a.*.c", "5 9"},
    {"a.#.c", "4 5 6 9"},
    {"*.b.*", "5 8"},
    {"#.b.#", "3 5 7 8 10"},
    {"a.b.c", "5"},
    {"*.*", "3 4 11"},
    {"", "0"},
    {"#.#", "0 1 2 3 4 5 6 7 8 9 10 11"},
    {"a.*.#", "3 4 5 6 9 10"},
};

#define TOPIC_CASES (sizeof topic_cases / sizeof topic_cases[0])

START_TEST(topic_exchange_matches_words_stars_and_hashes)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[TOPIC_CASES][64], got[128];

    it_exchange(c, it_name(x, sizeof x, "topic"), "topic");
    for (size_t i = 0; i < TOPIC_CASES; i++) {
        it_temp_queue(c, it_name(q[i], sizeof q[i], "topic"));
        it_bind(c, q[i], x, topic_cases[i].pattern, amqp_empty_table);
    }
    for (size_t k = 0; k < sizeof topic_keys / sizeof topic_keys[0]; k++) {
        char body[8];

        snprintf(body, sizeof body, "%zu", k);
        it_publish(c, x, topic_keys[k], body);
    }
    for (size_t i = 0; i < TOPIC_CASES; i++)
        ck_assert_msg(strcmp(drain(c, q[i], got, sizeof got), topic_cases[i].keys) == 0,
                      "pattern '%s': expected keys %s, got %s", topic_cases[i].pattern,
                      topic_cases[i].keys, got);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(fanout_exchange_copies_to_every_bound_queue)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[3][64], unbound[64], got[64];

    it_exchange(c, it_name(x, sizeof x, "fanout"), "fanout");
    for (int i = 0; i < 3; i++) {
        it_temp_queue(c, it_name(q[i], sizeof q[i], "fanout"));
        /* The routing key of a fanout binding does not matter. */
        it_bind(c, q[i], x, i == 0 ? "" : "ignored", amqp_empty_table);
    }
    it_temp_queue(c, it_name(unbound, sizeof unbound, "fanout"));
    it_publish(c, x, "any.key", "f1");
    it_publish(c, x, "", "f2");
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(drain(c, q[i], got, sizeof got), "f1 f2");
    ck_assert_str_eq(drain(c, unbound, got, sizeof got), "");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

static amqp_table_entry_t str_entry(const char *key, const char *value)
{
    return (amqp_table_entry_t){
        .key = amqp_cstring_bytes(key),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(value)}};
}

static amqp_table_entry_t int_entry(const char *key, int32_t value)
{
    return (amqp_table_entry_t){.key = amqp_cstring_bytes(key),
                                .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = value}};
}

static void publish_with_headers(amqp_connection_state_t c, const char *x, amqp_table_entry_t *h,
                                 int n, const char *body)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG,
                                     .headers = {.num_entries = n, .entries = h}};

    it_publish_bytes(c, 1, x, "ignored", &props, amqp_cstring_bytes(body));
}

START_TEST(headers_exchange_matches_all_or_any)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q_all[64], q_any[64], q_default[64], got[64];
    amqp_table_entry_t all[] = {str_entry("x-match", "all"), int_entry("a", 1),
                                str_entry("b", "x")};
    amqp_table_entry_t any[] = {str_entry("x-match", "any"), int_entry("a", 1),
                                str_entry("b", "x")};
    amqp_table_entry_t dflt[] = {int_entry("a", 1), str_entry("b", "x")};
    amqp_table_entry_t both[] = {int_entry("a", 1), str_entry("b", "x")};
    amqp_table_entry_t more[] = {str_entry("c", "extra"), str_entry("b", "x"), int_entry("a", 1)};
    amqp_table_entry_t only_a[] = {int_entry("a", 1)};
    amqp_table_entry_t wrong_a[] = {int_entry("a", 2), str_entry("b", "y")};

    it_exchange(c, it_name(x, sizeof x, "headers"), "headers");
    it_temp_queue(c, it_name(q_all, sizeof q_all, "headers.all"));
    it_temp_queue(c, it_name(q_any, sizeof q_any, "headers.any"));
    it_temp_queue(c, it_name(q_default, sizeof q_default, "headers.default"));
    it_bind(c, q_all, x, "", (amqp_table_t){.num_entries = 3, .entries = all});
    it_bind(c, q_any, x, "", (amqp_table_t){.num_entries = 3, .entries = any});
    it_bind(c, q_default, x, "", (amqp_table_t){.num_entries = 2, .entries = dflt});

    publish_with_headers(c, x, both, 2, "both");
    publish_with_headers(c, x, more, 3, "more");
    publish_with_headers(c, x, only_a, 1, "only_a");
    publish_with_headers(c, x, wrong_a, 2, "wrong");
    publish_with_headers(c, x, NULL, 0, "none");

    ck_assert_str_eq(drain(c, q_all, got, sizeof got), "both more");
    ck_assert_str_eq(drain(c, q_any, got, sizeof got), "both more only_a");
    /* Without x-match a binding matches all. */
    ck_assert_str_eq(drain(c, q_default, got, sizeof got), "both more");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(message_matching_two_bindings_of_a_queue_arrives_once)
{
    amqp_connection_state_t c = it_connect();
    char topic[64], fanout[64], q[64], got[64];

    it_exchange(c, it_name(topic, sizeof topic, "twice.topic"), "topic");
    it_exchange(c, it_name(fanout, sizeof fanout, "twice.fanout"), "fanout");
    it_temp_queue(c, it_name(q, sizeof q, "twice"));
    it_bind(c, q, topic, "a.*", amqp_empty_table);
    it_bind(c, q, topic, "*.b", amqp_empty_table);
    it_bind(c, q, topic, "#", amqp_empty_table);
    it_bind(c, q, fanout, "one", amqp_empty_table);
    it_bind(c, q, fanout, "two", amqp_empty_table);
    it_publish(c, topic, "a.b", "t");
    it_publish(c, fanout, "x", "f");
    ck_assert_str_eq(drain(c, q, got, sizeof got), "t f");
    it_exchange_delete(c, topic);
    it_exchange_delete(c, fanout);
    it_disconnect(c);
}
END_TEST

static Suite *exchange_suite(void)
{
    Suite *s = suite_create("exchange");
    TCase *tc = it_tcase(s, "declare");

    tcase_add_test(tc, every_type_can_be_declared_and_deleted);
    tcase_add_test(tc, passive_declare_of_missing_exchange_closes_channel_with_404);
    tcase_add_test(tc, redeclare_with_other_type_closes_channel_with_406);
    tcase_add_test(tc, redeclare_with_other_durability_closes_channel_with_406);
    tcase_add_test(tc, delete_if_unused_of_bound_exchange_closes_channel_with_406);
    tcase_add_test(tc, delete_of_missing_exchange_succeeds);
    tcase_add_test(tc, delete_of_exchange_removes_its_bindings);
    tcase_add_test(tc, unknown_type_closes_connection_with_503);
    tcase_add_test(tc, auto_delete_exchange_goes_with_its_last_binding);

    tc = it_tcase(s, "reserved");
    tcase_add_test(tc, default_exchange_cannot_be_declared_or_deleted);
    tcase_add_test(tc, default_exchange_cannot_be_bound_or_unbound);
    tcase_add_test(tc, amq_exchanges_exist);
    tcase_add_test(tc, amq_prefix_is_reserved);

    tc = it_tcase(s, "routing");
    tcase_add_test(tc, default_exchange_routes_by_queue_name);
    tcase_add_test(tc, direct_exchange_routes_by_exact_key);
    tcase_add_test(tc, topic_exchange_matches_words_stars_and_hashes);
    tcase_add_test(tc, fanout_exchange_copies_to_every_bound_queue);
    tcase_add_test(tc, headers_exchange_matches_all_or_any);
    tcase_add_test(tc, message_matching_two_bindings_of_a_queue_arrives_once);
    return s;
}

int main(void)
{
    return it_run(exchange_suite(), NULL);
}
