/* Exchange-to-exchange bindings (exchange.bind/unbind), alternate exchanges and internal
 * exchanges. Validated against RabbitMQ 3.10.8. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET_MS 200

static void declare_exchange(amqp_connection_state_t c, const char *name, const char *type,
                             bool auto_delete, bool internal, amqp_table_t args)
{
    char what[300];

    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 0,
                          auto_delete, internal, args);
    snprintf(what, sizeof what, "exchange.declare '%s'", name);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

static void e2e_bind(amqp_connection_state_t c, const char *destination, const char *source,
                     const char *key)
{
    char what[300];

    amqp_exchange_bind(c, 1, amqp_cstring_bytes(destination), amqp_cstring_bytes(source),
                       amqp_cstring_bytes(key), amqp_empty_table);
    snprintf(what, sizeof what, "exchange.bind '%s' <- '%s'", destination, source);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

static void e2e_unbind(amqp_connection_state_t c, const char *destination, const char *source,
                       const char *key)
{
    char what[300];

    amqp_exchange_unbind(c, 1, amqp_cstring_bytes(destination), amqp_cstring_bytes(source),
                         amqp_cstring_bytes(key), amqp_empty_table);
    snprintf(what, sizeof what, "exchange.unbind '%s' <- '%s'", destination, source);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

/* True if exchange x exists (passive declare); channel 1 is usable again either way. */
static bool exchange_exists(amqp_connection_state_t c, const char *x)
{
    amqp_rpc_reply_t r;
    char text[300];

    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("fanout"), 1, 0, 0, 0,
                          amqp_empty_table);
    r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, r, 404, text);
    it_channel_open(c, 1);
    return false;
}

/* Fails the test unless the next method is basic.return 312 of (x, key). */
static void expect_return(amqp_connection_state_t c, const char *x, const char *key)
{
    amqp_rpc_reply_t r = it_wait_method(c, 2000);
    const amqp_basic_return_t *ret;

    it_assert_ok(r, "waiting for basic.return");
    ck_assert_msg(r.reply.id == AMQP_BASIC_RETURN_METHOD, "got %s", amqp_method_name(r.reply.id));
    ret = r.reply.decoded;
    ck_assert_uint_eq(ret->reply_code, 312);
    it_assert_bytes(ret->reply_text, "NO_ROUTE");
    it_assert_bytes(ret->exchange, x);
    it_assert_bytes(ret->routing_key, key);
}

START_TEST(chain_of_exchanges_routes_to_the_queue)
{
    amqp_connection_state_t c = it_connect();
    char a[64], b[64], q[64];

    it_exchange(c, it_name(a, sizeof a, "e2e.chain.a"), "direct");
    it_exchange(c, it_name(b, sizeof b, "e2e.chain.b"), "topic");
    it_temp_queue(c, it_name(q, sizeof q, "e2e.chain"));
    e2e_bind(c, b, a, "k1");
    /* b's own binding matches only "k1": the key is kept along the chain. */
    it_bind(c, q, b, "k1", amqp_empty_table);
    it_publish(c, a, "k1", "through");
    it_publish(c, a, "k2", "not-bound-on-a");
    it_expect_get(c, 1, q, "through", NULL);
    it_expect_empty(c, 1, q);

    e2e_unbind(c, b, a, "k1");
    it_publish(c, a, "k1", "after-unbind");
    it_assert_channel_alive(c, 1);
    it_sleep_ms(QUIET_MS);
    it_expect_empty(c, 1, q);
    it_exchange_delete(c, a);
    it_exchange_delete(c, b);
    it_disconnect(c);
}
END_TEST

START_TEST(cycle_of_exchanges_delivers_one_copy_to_each_queue)
{
    amqp_connection_state_t c = it_connect();
    char a[64], b[64], qa[64], qb[64];

    it_exchange(c, it_name(a, sizeof a, "e2e.cycle.a"), "fanout");
    it_exchange(c, it_name(b, sizeof b, "e2e.cycle.b"), "fanout");
    it_temp_queue(c, it_name(qa, sizeof qa, "e2e.cycle.qa"));
    it_temp_queue(c, it_name(qb, sizeof qb, "e2e.cycle.qb"));
    e2e_bind(c, b, a, "");
    e2e_bind(c, a, b, "");
    it_bind(c, qa, a, "", amqp_empty_table);
    it_bind(c, qb, b, "", amqp_empty_table);
    it_publish(c, a, "", "from-a");
    it_publish(c, b, "", "from-b");
    it_assert_channel_alive(c, 1);
    it_sleep_ms(QUIET_MS);
    it_expect_counts(c, qa, 2, 0);
    it_expect_counts(c, qb, 2, 0);
    it_expect_get(c, 1, qa, "from-a", NULL);
    it_expect_get(c, 1, qa, "from-b", NULL);
    it_expect_get(c, 1, qb, "from-a", NULL);
    it_expect_get(c, 1, qb, "from-b", NULL);
    it_exchange_delete(c, a);
    it_exchange_delete(c, b);
    it_disconnect(c);
}
END_TEST

START_TEST(queue_reached_by_two_paths_gets_one_copy)
{
    amqp_connection_state_t c = it_connect();
    char a[64], b[64], q[64];

    it_exchange(c, it_name(a, sizeof a, "e2e.paths.a"), "fanout");
    it_exchange(c, it_name(b, sizeof b, "e2e.paths.b"), "fanout");
    it_temp_queue(c, it_name(q, sizeof q, "e2e.paths"));
    e2e_bind(c, b, a, "");
    it_bind(c, q, a, "", amqp_empty_table);
    it_bind(c, q, b, "", amqp_empty_table);
    it_publish(c, a, "", "once");
    it_assert_channel_alive(c, 1);
    it_sleep_ms(QUIET_MS);
    it_expect_get(c, 1, q, "once", NULL);
    it_expect_empty(c, 1, q);
    it_exchange_delete(c, a);
    it_exchange_delete(c, b);
    it_disconnect(c);
}
END_TEST

START_TEST(deleting_the_destination_removes_the_binding)
{
    amqp_connection_state_t c = it_connect();
    char a[64], b[64], q[64];

    it_exchange(c, it_name(a, sizeof a, "e2e.del.a"), "fanout");
    it_exchange(c, it_name(b, sizeof b, "e2e.del.b"), "fanout");
    it_temp_queue(c, it_name(q, sizeof q, "e2e.del"));
    e2e_bind(c, b, a, "");
    it_bind(c, q, b, "", amqp_empty_table);
    it_exchange_delete(c, b);
    /* A new b of the same name starts without the old binding from a. */
    it_exchange(c, b, "fanout");
    it_bind(c, q, b, "", amqp_empty_table);
    it_publish(c, a, "", "nowhere");
    it_assert_channel_alive(c, 1);
    it_sleep_ms(QUIET_MS);
    it_expect_empty(c, 1, q);
    it_exchange_delete(c, a);
    it_exchange_delete(c, b);
    it_disconnect(c);
}
END_TEST

START_TEST(bind_to_missing_exchange_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char a[64], missing[64], text[300];

    it_exchange(c, it_name(a, sizeof a, "e2e.404.a"), "fanout");
    it_name(missing, sizeof missing, "e2e.404.missing");
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", missing);

    amqp_exchange_bind(c, 1, amqp_cstring_bytes(a), amqp_cstring_bytes(missing),
                       amqp_cstring_bytes(""), amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(missing), amqp_cstring_bytes(a),
                       amqp_cstring_bytes(""), amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);
    it_exchange_delete(c, a);
    it_disconnect(c);
}
END_TEST

START_TEST(unbind_of_missing_exchanges_succeeds)
{
    amqp_connection_state_t c = it_connect();
    char x[64], missing[64];

    it_exchange(c, it_name(x, sizeof x, "e2e.unbind"), "direct");
    it_name(missing, sizeof missing, "e2e.unbind.missing");
    e2e_unbind(c, x, "amq.direct", "never-bound");
    e2e_unbind(c, missing, x, "k");
    e2e_unbind(c, x, missing, "k");
    e2e_unbind(c, missing, missing, "k");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(default_exchange_cannot_take_part_in_exchange_bindings)
{
    amqp_connection_state_t c = it_connect();
    char x[64];

    it_exchange(c, it_name(x, sizeof x, "e2e.default"), "fanout");
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes(""), amqp_cstring_bytes("k"),
                       amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403,
                            "ACCESS_REFUSED - operation not permitted on the default exchange");
    it_channel_open(c, 1);
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                       amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403,
                            "ACCESS_REFUSED - operation not permitted on the default exchange");
    it_channel_open(c, 1);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(auto_delete_exchange_goes_when_its_last_e2e_binding_goes)
{
    amqp_connection_state_t c = it_connect();
    char src[64], dst[64], other[64];

    it_name(src, sizeof src, "e2e.ad.src");
    declare_exchange(c, src, "fanout", true, false, amqp_empty_table);
    it_exchange(c, it_name(dst, sizeof dst, "e2e.ad.dst"), "fanout");
    it_exchange(c, it_name(other, sizeof other, "e2e.ad.other"), "fanout");
    e2e_bind(c, dst, src, "");
    e2e_bind(c, other, src, "");
    e2e_unbind(c, dst, src, "");
    ck_assert_msg(exchange_exists(c, src), "auto-delete source went with a binding left");
    e2e_unbind(c, other, src, "");
    ck_assert_msg(!exchange_exists(c, src), "auto-delete source outlived its last binding");
    it_exchange_delete(c, dst);
    it_exchange_delete(c, other);
    it_disconnect(c);
}
END_TEST

START_TEST(auto_delete_exchange_stays_when_it_was_only_a_destination)
{
    amqp_connection_state_t c = it_connect();
    char src[64], dst[64];

    it_exchange(c, it_name(src, sizeof src, "e2e.add.src"), "fanout");
    it_name(dst, sizeof dst, "e2e.add.dst");
    declare_exchange(c, dst, "fanout", true, false, amqp_empty_table);
    e2e_bind(c, dst, src, "");
    e2e_unbind(c, dst, src, "");
    ck_assert_msg(exchange_exists(c, dst), "auto-delete destination went with a binding");
    it_exchange_delete(c, dst);
    it_exchange_delete(c, src);
    it_disconnect(c);
}
END_TEST

START_TEST(unroutable_message_goes_to_the_alternate_exchange)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char x[64], ae[64], q[64], qae[64];
    struct it_msg m;

    it_exchange(c, it_name(ae, sizeof ae, "e2e.ae"), "fanout");
    it_table_init(&args);
    it_table_add_str(&args, "alternate-exchange", ae);
    declare_exchange(c, it_name(x, sizeof x, "e2e.ae.main"), "direct", false, false, args.table);
    it_temp_queue(c, it_name(q, sizeof q, "e2e.ae.q"));
    it_temp_queue(c, it_name(qae, sizeof qae, "e2e.ae.qae"));
    it_bind(c, q, x, "known", amqp_empty_table);
    it_bind(c, qae, ae, "", amqp_empty_table);

    it_publish(c, x, "known", "routed");
    it_publish(c, x, "unknown", "diverted");
    it_expect_get(c, 1, q, "routed", NULL);
    it_expect_empty(c, 1, q);
    it_expect_get(c, 1, qae, "diverted", &m);
    /* The message keeps the exchange and key it was published with. */
    ck_assert_str_eq(m.exchange, x);
    ck_assert_str_eq(m.routing_key, "unknown");
    it_msg_free(&m);
    it_expect_empty(c, 1, qae);

    /* Routed by the alternate exchange, a mandatory message is not returned. */
    ck_assert_int_eq(amqp_basic_publish(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("other"), 1,
                                        0, NULL, amqp_cstring_bytes("mandatory")),
                     AMQP_STATUS_OK);
    it_assert_channel_alive(c, 1);
    it_expect_get(c, 1, qae, "mandatory", NULL);
    ck_assert_int_eq(it_wait_method(c, QUIET_MS).library_error, AMQP_STATUS_TIMEOUT);

    /* Unroutable in the alternate exchange too: returned. */
    it_queue_delete(c, qae);
    ck_assert_int_eq(amqp_basic_publish(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("other"), 1,
                                        0, NULL, amqp_cstring_bytes("bounced")),
                     AMQP_STATUS_OK);
    expect_return(c, x, "other");
    it_exchange_delete(c, x);
    it_exchange_delete(c, ae);
    it_disconnect(c);
}
END_TEST

START_TEST(missing_alternate_exchange_leaves_the_message_unroutable)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char x[64], ae[64];

    it_name(ae, sizeof ae, "e2e.ae.missing");
    it_table_init(&args);
    it_table_add_str(&args, "alternate-exchange", ae);
    declare_exchange(c, it_name(x, sizeof x, "e2e.ae.main2"), "direct", false, false, args.table);
    it_publish(c, x, "unknown", "lost");
    it_assert_channel_alive(c, 1);
    ck_assert_int_eq(amqp_basic_publish(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("unknown"),
                                        1, 0, NULL, amqp_cstring_bytes("bounced")),
                     AMQP_STATUS_OK);
    expect_return(c, x, "unknown");
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(alternate_exchange_argument_must_be_a_string)
{
    amqp_connection_state_t c = it_connect();
    struct it_table args;
    char x[64], text[300];

    it_name(x, sizeof x, "e2e.ae.type");
    it_table_init(&args);
    it_table_add_int(&args, "alternate-exchange", 5);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("direct"), 0, 0, 0, 0,
                          args.table);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in "
             "exchange '%s' in vhost '/'",
             x);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    it_disconnect(c);
}
END_TEST

START_TEST(publish_to_internal_exchange_closes_channel_with_403)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[300];

    it_name(x, sizeof x, "e2e.internal");
    declare_exchange(c, x, "fanout", false, true, amqp_empty_table);
    it_publish(c, x, "", "refused");
    snprintf(text, sizeof text,
             "ACCESS_REFUSED - cannot publish to internal exchange '%s' in "
             "vhost '/'",
             x);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 403, text);
    it_channel_open(c, 1);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(internal_exchange_routes_what_another_exchange_sends_it)
{
    amqp_connection_state_t c = it_connect();
    char pub[64], internal[64], q[64];

    it_exchange(c, it_name(pub, sizeof pub, "e2e.front"), "direct");
    it_name(internal, sizeof internal, "e2e.back");
    declare_exchange(c, internal, "fanout", false, true, amqp_empty_table);
    it_temp_queue(c, it_name(q, sizeof q, "e2e.back"));
    e2e_bind(c, internal, pub, "in");
    it_bind(c, q, internal, "", amqp_empty_table);
    it_publish(c, pub, "in", "via-internal");
    it_expect_get(c, 1, q, "via-internal", NULL);
    it_exchange_delete(c, pub);
    it_exchange_delete(c, internal);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = it_tcase(s, "exchange_bind");

    tcase_add_test(tc, chain_of_exchanges_routes_to_the_queue);
    tcase_add_test(tc, cycle_of_exchanges_delivers_one_copy_to_each_queue);
    tcase_add_test(tc, queue_reached_by_two_paths_gets_one_copy);
    tcase_add_test(tc, deleting_the_destination_removes_the_binding);
    tcase_add_test(tc, bind_to_missing_exchange_closes_channel_with_404);
    tcase_add_test(tc, unbind_of_missing_exchanges_succeeds);
    tcase_add_test(tc, default_exchange_cannot_take_part_in_exchange_bindings);
    tcase_add_test(tc, auto_delete_exchange_goes_when_its_last_e2e_binding_goes);
    tcase_add_test(tc, auto_delete_exchange_stays_when_it_was_only_a_destination);
    tc = it_tcase(s, "alternate_exchange");
    tcase_add_test(tc, unroutable_message_goes_to_the_alternate_exchange);
    tcase_add_test(tc, missing_alternate_exchange_leaves_the_message_unroutable);
    tcase_add_test(tc, alternate_exchange_argument_must_be_a_string);
    tc = it_tcase(s, "internal");
    tcase_add_test(tc, publish_to_internal_exchange_closes_channel_with_403);
    tcase_add_test(tc, internal_exchange_routes_what_another_exchange_sends_it);
    return it_run(s, NULL);
}
