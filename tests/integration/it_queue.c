/* Queues: declare (named, server-named, passive, exclusive, auto-delete), bindings, purge
 * and delete, as a client sees them. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static amqp_rpc_reply_t declare(amqp_connection_state_t c, amqp_channel_t ch, const char *name,
                                bool passive, bool durable, bool exclusive, bool auto_delete)
{
    amqp_queue_declare(c, ch, amqp_cstring_bytes(name), passive, durable, exclusive, auto_delete,
                       amqp_empty_table);
    return amqp_get_rpc_reply(c);
}

static void publish_n(amqp_connection_state_t c, const char *q, int n)
{
    for (int i = 1; i <= n; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, "", q, body);
    }
}

static void assert_queue_missing(amqp_connection_state_t c, const char *q)
{
    char text[200];

    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", q);
    it_expect_channel_close(c, 1, declare(c, 1, q, true, false, false, false), 404, text);
    it_channel_open(c, 1);
}

START_TEST(named_queue_declare_ok_returns_name_and_counts)
{
    amqp_connection_state_t c = it_connect();
    amqp_queue_declare_ok_t *ok;
    char q[64];
    uint32_t messages, consumers;
    struct it_msg m;

    it_name(q, sizeof q, "named");
    ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare");
    it_assert_bytes(ok->queue, q);
    ck_assert_uint_eq(ok->message_count, 0);
    ck_assert_uint_eq(ok->consumer_count, 0);

    publish_n(c, q, 3);
    it_expect_counts(c, q, 3, 0);

    /* A consumer holding one unacknowledged message: message_count counts ready ones. */
    it_channel_open(c, 2);
    it_qos(c, 2, 1, false);
    it_consume(c, 2, q, "ctag", false, false, NULL, 0);
    ck_assert(it_next_delivery(c, 2000, &m));
    it_msg_free(&m);
    /* The active redeclare answers the same counts as a passive one. */
    it_expect_counts(c, q, 2, 1);
    it_queue_declare(c, 1, q, false, true, false, amqp_empty_table, &messages, &consumers);
    ck_assert_uint_eq(messages, 2);
    ck_assert_uint_eq(consumers, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(server_named_queue_gets_amq_gen_name)
{
    amqp_connection_state_t c = it_connect();
    amqp_queue_declare_ok_t *ok;
    char q1[256], q2[256];
    struct it_msg m;

    ok = amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare ''");
    snprintf(q1, sizeof q1, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    ok = amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare ''");
    snprintf(q2, sizeof q2, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);

    ck_assert_msg(strncmp(q1, "amq.gen-", 8) == 0, "server-named queue '%s'", q1);
    ck_assert_uint_gt(strlen(q1), 8);
    ck_assert_str_ne(q1, q2);
    /* The name is usable like any other. */
    it_publish(c, "", q1, "to-gen");
    ck_assert(it_get(c, 1, q1, true, &m));
    it_assert_body(&m, "to-gen");
    it_msg_free(&m);
    ck_assert(!it_get(c, 1, q2, true, &m));
    it_disconnect(c);
}
END_TEST

START_TEST(passive_declare_of_missing_queue_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    assert_queue_missing(c, it_name(q, sizeof q, "missing"));
    it_disconnect(c);
}
END_TEST

START_TEST(amq_prefix_is_reserved_for_queues)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    snprintf(q, sizeof q, "amq.it-%ld", (long)getpid());
    snprintf(text, sizeof text, "ACCESS_REFUSED - queue name '%s' contains reserved prefix 'amq.*'",
             q);
    it_expect_channel_close(c, 1, declare(c, 1, q, false, false, false, false), 403, text);
    it_disconnect(c);
}
END_TEST

START_TEST(exclusive_queue_is_locked_to_its_connection)
{
    amqp_connection_state_t owner = it_connect(), other = it_connect();
    char q[64], text[300];
    struct it_msg m;

    it_temp_queue(owner, it_name(q, sizeof q, "exclusive"));
    snprintf(text, sizeof text,
             "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost "
             "'/'. It could be originally declared on another connection or the exclusive "
             "property value does not match that of the original declaration.",
             q);
    it_expect_channel_close(other, 1, declare(other, 1, q, false, false, true, false), 405, text);
    it_channel_open(other, 1);
    it_expect_channel_close(other, 1, declare(other, 1, q, true, false, false, false), 405, text);
    it_channel_open(other, 1);
    amqp_basic_consume(other, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    it_expect_channel_close(other, 1, amqp_get_rpc_reply(other), 405, text);
    it_channel_open(other, 1);

    /* The owner uses it on any of its channels. */
    it_channel_open(owner, 2);
    it_publish_bytes(owner, 2, "", q, NULL, amqp_cstring_bytes("mine"));
    ck_assert(it_get(owner, 2, q, true, &m));
    it_msg_free(&m);

    /* Closing the owner's connection deletes the queue. */
    it_disconnect(owner);
    it_expect_queue_gone(other, q);
    it_disconnect(other);
}
END_TEST

START_TEST(auto_delete_queue_goes_after_last_consumer_cancels)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_name(q, sizeof q, "autodel");
    it_queue_declare(c, 1, q, false, false, true, amqp_empty_table, NULL, NULL);
    it_consume(c, 1, q, "c1", true, false, NULL, 0);
    it_consume(c, 1, q, "c2", true, false, NULL, 0);
    amqp_basic_cancel(c, 1, amqp_cstring_bytes("c1"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel c1");
    it_assert_ok(declare(c, 1, q, true, false, false, false), "queue kept while c2 consumes");
    amqp_basic_cancel(c, 1, amqp_cstring_bytes("c2"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel c2");
    it_expect_queue_gone(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(auto_delete_queue_without_consumers_stays)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_name(q, sizeof q, "autodel.idle");
    it_queue_declare(c, 1, q, false, false, true, amqp_empty_table, NULL, NULL);
    it_disconnect(c);
    c = it_connect();
    it_assert_ok(declare(c, 1, q, true, false, false, false), "auto-delete queue never consumed");
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_with_other_durability_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[300];

    /* Not exclusive: RabbitMQ ignores durable on an exclusive queue (never durable). */
    it_queue(c, it_name(q, sizeof q, "redurable"));
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '/': "
             "received 'true' but current is 'false'",
             q);
    it_expect_channel_close(c, 1, declare(c, 1, q, false, true, false, false), 406, text);
    it_channel_open(c, 1);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_with_other_auto_delete_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[300];

    it_temp_queue(c, it_name(q, sizeof q, "reautodel"));
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '%s' in vhost '/': "
             "received 'true' but current is 'false'",
             q);
    it_expect_channel_close(c, 1, declare(c, 1, q, false, false, true, true), 406, text);
    it_disconnect(c);
}
END_TEST

static void locked_text(char *text, size_t size, const char *q)
{
    snprintf(text, size,
             "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost "
             "'/'. It could be originally declared on another connection or the exclusive "
             "property value does not match that of the original declaration.",
             q);
}

START_TEST(redeclare_of_shared_queue_as_exclusive_closes_channel_with_405)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[300];

    it_queue(c, it_name(q, sizeof q, "reexclusive"));
    locked_text(text, sizeof text, q);
    it_expect_channel_close(c, 1, declare(c, 1, q, false, false, true, false), 405, text);
    it_channel_open(c, 1);
    /* Checked before the other flags, as RabbitMQ does: durable differs too here. */
    it_expect_channel_close(c, 1, declare(c, 1, q, false, true, true, false), 405, text);
    it_channel_open(c, 1);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(redeclare_of_own_exclusive_queue_as_shared_closes_channel_with_405)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[300];

    it_temp_queue(c, it_name(q, sizeof q, "reshared"));
    locked_text(text, sizeof text, q);
    it_expect_channel_close(c, 1, declare(c, 1, q, false, false, false, false), 405, text);
    it_disconnect(c);
}
END_TEST

static amqp_table_t one_entry_table(amqp_table_entry_t *e, const char *key, int32_t value)
{
    *e = (amqp_table_entry_t){.key = amqp_cstring_bytes(key),
                              .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = value}};
    return (amqp_table_t){.num_entries = 1, .entries = e};
}

START_TEST(bind_and_unbind_with_arguments)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q[64];
    amqp_table_entry_t ea, eb;
    amqp_table_t args_a = one_entry_table(&ea, "it-arg", 1);
    amqp_table_t args_b = one_entry_table(&eb, "it-arg", 2);
    struct it_msg m;

    it_exchange(c, it_name(x, sizeof x, "bind"), "direct");
    it_temp_queue(c, it_name(q, sizeof q, "bind"));
    /* The same key with other arguments is another binding. */
    it_bind(c, q, x, "k", args_a);
    it_bind(c, q, x, "k", args_b);
    it_publish(c, x, "k", "1");
    it_expect_counts(c, q, 1, 0);

    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                      args_a);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind args a");
    it_publish(c, x, "k", "2");
    it_expect_counts(c, q, 2, 0);

    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                      args_b);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind args b");
    /* Unrouted: a get on the publishing channel would see it if it had been queued. */
    it_publish(c, x, "k", "3");
    ck_assert(it_get(c, 1, q, true, &m));
    it_assert_body(&m, "1");
    it_msg_free(&m);
    ck_assert(it_get(c, 1, q, true, &m));
    it_assert_body(&m, "2");
    it_msg_free(&m);
    ck_assert(!it_get(c, 1, q, true, &m));
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(unbind_of_missing_binding_succeeds)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "unbind"));
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes("amq.direct"),
                      amqp_cstring_bytes("never-bound"), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind of a binding that does not exist");
    it_disconnect(c);
}
END_TEST

static amqp_rpc_reply_t unbind(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                               const char *x, const char *key)
{
    amqp_queue_unbind(c, ch, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes(key),
                      amqp_empty_table);
    return amqp_get_rpc_reply(c);
}

START_TEST(unbind_of_missing_queue_or_exchange_succeeds)
{
    amqp_connection_state_t c = it_connect();
    char q[64], missing_q[64], missing_x[64];

    it_temp_queue(c, it_name(q, sizeof q, "unbind.q"));
    it_name(missing_q, sizeof missing_q, "unbind.missing.q");
    it_name(missing_x, sizeof missing_x, "unbind.missing.x");
    it_assert_ok(unbind(c, 1, missing_q, "amq.direct", "k"), "queue.unbind of a missing queue");
    it_assert_ok(unbind(c, 1, q, missing_x, "k"), "queue.unbind from a missing exchange");
    it_assert_ok(unbind(c, 1, missing_q, missing_x, "k"), "queue.unbind of nothing at all");
    /* The default exchange is refused before anything is looked up. */
    it_expect_channel_close(c, 1, unbind(c, 1, missing_q, "", "k"), 403,
                            "ACCESS_REFUSED - operation not permitted on the default exchange");
    it_disconnect(c);
}
END_TEST

START_TEST(unbind_of_another_connections_exclusive_queue_is_refused_only_when_bound)
{
    amqp_connection_state_t owner = it_connect(), other = it_connect();
    char q[64], key[64], text[300];

    it_temp_queue(owner, it_name(q, sizeof q, "unbind.locked"));
    it_bind(owner, q, "amq.direct", it_name(key, sizeof key, "unbind.locked.key"),
            amqp_empty_table);
    /* RabbitMQ checks exclusive access only to remove a binding that exists. */
    it_assert_ok(unbind(other, 1, q, "amq.direct", "never-bound"),
                 "queue.unbind of a missing binding of a locked queue");
    locked_text(text, sizeof text, q);
    it_expect_channel_close(other, 1, unbind(other, 1, q, "amq.direct", key), 405, text);
    it_disconnect(other);
    it_disconnect(owner);
}
END_TEST

START_TEST(bind_to_missing_queue_or_exchange_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char q[64], missing[64], text[200];

    it_temp_queue(c, it_name(q, sizeof q, "bind404"));
    it_name(missing, sizeof missing, "bind404.missing");
    amqp_queue_bind(c, 1, amqp_cstring_bytes(missing), amqp_cstring_bytes("amq.direct"),
                    amqp_cstring_bytes("k"), amqp_empty_table);
    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", missing);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(missing),
                    amqp_cstring_bytes("k"), amqp_empty_table);
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", missing);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(purge_returns_count_of_ready_messages)
{
    amqp_connection_state_t c = it_connect();
    amqp_queue_purge_ok_t *ok;
    char q[64];
    struct it_msg held, m;

    it_temp_queue(c, it_name(q, sizeof q, "purge"));
    publish_n(c, q, 5);
    /* One message is delivered and not acknowledged: purge leaves it alone. */
    ck_assert(it_get(c, 1, q, false, &held));
    ok = amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    it_assert_ok(amqp_get_rpc_reply(c), "queue.purge");
    ck_assert_uint_eq(ok->message_count, 4);
    ck_assert(!it_get(c, 1, q, true, &m));
    ck_assert_int_eq(amqp_basic_reject(c, 1, held.delivery_tag, 1), AMQP_STATUS_OK);
    ck_assert(it_get(c, 1, q, true, &m));
    it_assert_body(&m, "m1");
    it_msg_free(&m);
    it_msg_free(&held);
    ok = amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    it_assert_ok(amqp_get_rpc_reply(c), "queue.purge");
    ck_assert_uint_eq(ok->message_count, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_returns_message_count)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_queue(c, it_name(q, sizeof q, "delete"));
    publish_n(c, q, 3);
    ck_assert_uint_eq(it_queue_delete(c, q), 3);
    assert_queue_missing(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_of_missing_queue_succeeds_with_zero)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    ck_assert_uint_eq(it_queue_delete(c, it_name(q, sizeof q, "delete.missing")), 0);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_if_unused_with_consumer_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_temp_queue(c, it_name(q, sizeof q, "ifunused"));
    it_channel_open(c, 2);
    it_consume(c, 2, q, "busy", true, false, NULL, 0);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 1, 0);
    snprintf(text, sizeof text, "PRECONDITION_FAILED - queue '%s' in vhost '/' in use", q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    /* Once the consumer is gone, if-unused deletes it. */
    amqp_basic_cancel(c, 2, amqp_cstring_bytes("busy"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_channel_open(c, 1);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 1, 0);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.delete if-unused");
    assert_queue_missing(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(delete_if_empty_with_messages_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "ifempty"));
    publish_n(c, q, 1);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 0, 1);
    snprintf(text, sizeof text, "PRECONDITION_FAILED - queue '%s' in vhost '/' not empty", q);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, text);
    it_channel_open(c, 1);
    ck_assert(it_get(c, 1, q, true, &m));
    it_msg_free(&m);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 0, 1);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.delete if-empty");
    assert_queue_missing(c, q);
    it_disconnect(c);
}
END_TEST

/* ---- the last declared queue ------------------------------------------------------------ */

START_TEST(empty_queue_name_means_the_queue_last_declared_on_the_channel)
{
    amqp_connection_state_t c = it_connect();
    char q[64], key[64];
    amqp_queue_purge_ok_t *purged;
    amqp_queue_delete_ok_t *deleted;
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "last"));
    it_name(key, sizeof key, "last.key");
    amqp_queue_bind(c, 1, amqp_empty_bytes, amqp_cstring_bytes("amq.direct"),
                    amqp_cstring_bytes(key), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.bind ''");
    it_publish(c, "amq.direct", key, "m1");
    it_publish(c, "amq.direct", key, "m2");
    it_expect_get(c, 1, "", "m1", NULL);

    purged = amqp_queue_purge(c, 1, amqp_empty_bytes);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.purge ''");
    ck_assert_uint_eq(purged->message_count, 1);

    it_assert_ok(unbind(c, 1, "", "amq.direct", key), "queue.unbind ''");
    it_publish(c, "amq.direct", key, "unrouted");
    it_expect_empty(c, 1, q);

    it_consume(c, 1, "", NULL, true, false, NULL, 0);
    it_publish(c, "", q, "consumed");
    it_expect_delivery(c, 2000, "consumed", &m);
    it_msg_free(&m);

    deleted = amqp_queue_delete(c, 1, amqp_empty_bytes, 0, 0);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.delete ''");
    ck_assert_uint_eq(deleted->message_count, 0);
    assert_queue_missing(c, q);
    it_disconnect(c);
}
END_TEST

START_TEST(bind_with_empty_queue_and_key_binds_by_the_queue_name)
{
    amqp_connection_state_t c = it_connect();
    amqp_queue_declare_ok_t *ok;
    char q[256];

    /* The pattern of old clients: a server-named queue, bound by its own name. */
    ok = amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare ''");
    snprintf(q, sizeof q, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    amqp_queue_bind(c, 1, amqp_empty_bytes, amqp_cstring_bytes("amq.direct"), amqp_empty_bytes,
                    amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.bind '' with key ''");
    it_publish(c, "amq.direct", q, "by name");
    it_expect_get(c, 1, q, "by name", NULL);
    it_disconnect(c);
}
END_TEST

START_TEST(empty_queue_name_before_any_declare_on_the_channel_closes_it_with_404)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    const char *text = "NOT_FOUND - no previously declared queue";

    /* Declared on channel 1: channel 2 has declared nothing. */
    it_temp_queue(c, it_name(q, sizeof q, "last.none"));
    it_channel_open(c, 2);
    amqp_basic_get(c, 2, amqp_empty_bytes, 1);
    it_expect_channel_close(c, 2, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 2);
    amqp_queue_bind(c, 2, amqp_empty_bytes, amqp_cstring_bytes("amq.direct"), amqp_empty_bytes,
                    amqp_empty_table);
    it_expect_channel_close(c, 2, amqp_get_rpc_reply(c), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(passive_declare_of_empty_name_is_not_the_last_declared_queue)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    /* queue.declare is not among the methods that expand "": RabbitMQ looks for a queue
     * named '' and finds none. */
    it_temp_queue(c, it_name(q, sizeof q, "last.passive"));
    it_expect_channel_close(c, 1, declare(c, 1, "", true, false, false, false), 404,
                            "NOT_FOUND - no queue '' in vhost '/'");
    it_disconnect(c);
}
END_TEST

/* ---- CR and LF in names ------------------------------------------------------------------ */

START_TEST(cr_and_lf_are_stripped_from_queue_names)
{
    amqp_connection_state_t c = it_connect();
    char q[64], raw[80], key[64], text[200];
    amqp_queue_declare_ok_t *ok;

    it_name(q, sizeof q, "crlf.q");
    snprintf(raw, sizeof raw, "\r%.4s\n%s\r\n", q, q + 4);
    ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(raw), 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare with CR and LF");
    it_assert_bytes(ok->queue, q);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(raw), 1, 0, 0, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive queue.declare with CR and LF");

    amqp_queue_bind(c, 1, amqp_cstring_bytes(raw), amqp_cstring_bytes("amq.\r\ndirect"),
                    amqp_cstring_bytes(it_name(key, sizeof key, "crlf.key")), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.bind with CR and LF");
    it_publish(c, "amq.direct", key, "routed");
    it_expect_get(c, 1, q, "routed", NULL);
    it_assert_ok(unbind(c, 1, raw, "amq.direct\n", key), "queue.unbind with CR and LF");
    it_publish(c, "amq.direct", key, "unrouted");
    it_expect_empty(c, 1, q);

    /* queue.purge, basic.get and basic.consume take the name as it is. */
    snprintf(raw, sizeof raw, "%s\n", q);
    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", raw);
    amqp_queue_purge(c, 1, amqp_cstring_bytes(raw));
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);
    amqp_basic_get(c, 1, amqp_cstring_bytes(raw), 1);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);

    amqp_queue_delete(c, 1, amqp_cstring_bytes(raw), 0, 0);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.delete with LF");
    assert_queue_missing(c, q);

    /* Nothing left: the broker names the queue. */
    ok = amqp_queue_declare(c, 1, amqp_cstring_bytes("\r\n"), 0, 0, 1, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare of CR LF");
    ck_assert_msg(ok->queue.len > 8 && memcmp(ok->queue.bytes, "amq.gen-", 8) == 0,
                  "declare-ok named '%.*s'", (int)ok->queue.len, (const char *)ok->queue.bytes);
    it_disconnect(c);
}
END_TEST

START_TEST(cr_and_lf_are_stripped_from_exchange_names)
{
    amqp_connection_state_t c = it_connect();
    char x[64], x2[64], raw[80], raw2[80], q[64], text[200];

    it_name(x, sizeof x, "crlf.x");
    it_name(x2, sizeof x2, "crlf.x2");
    snprintf(raw, sizeof raw, "%s\r\n", x);
    snprintf(raw2, sizeof raw2, "\n%s", x2);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(raw), amqp_cstring_bytes("fanout"), 0, 0, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.declare with CR and LF");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(raw2), amqp_cstring_bytes("fanout"), 0, 0, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.declare with LF");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("fanout"), 1, 0, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive exchange.declare without them");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(raw), amqp_cstring_bytes("fanout"), 1, 0, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive exchange.declare with them");

    amqp_exchange_bind(c, 1, amqp_cstring_bytes(raw2), amqp_cstring_bytes(raw),
                       amqp_empty_bytes, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.bind with CR and LF");
    it_temp_queue(c, it_name(q, sizeof q, "crlf.xq"));
    it_bind(c, q, x2, "", amqp_empty_table);
    it_publish(c, x, "", "through both");
    it_expect_get(c, 1, q, "through both", NULL);
    amqp_exchange_unbind(c, 1, amqp_cstring_bytes(raw2), amqp_cstring_bytes(raw),
                         amqp_empty_bytes, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.unbind with CR and LF");
    it_publish(c, x, "", "unrouted");
    it_expect_empty(c, 1, q);

    /* basic.publish takes the name as it is. */
    it_publish(c, raw, "", "nowhere");
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", raw);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 404, text);
    it_channel_open(c, 1);

    amqp_exchange_delete(c, 1, amqp_cstring_bytes(raw), 0);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.delete with CR and LF");
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(raw2), 0);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.delete with LF");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("fanout"), 1, 0, 0, 0,
                          amqp_empty_table);
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    it_channel_open(c, 1);

    /* Nothing left: the default exchange, which cannot be declared. */
    amqp_exchange_declare(c, 1, amqp_cstring_bytes("\n"), amqp_cstring_bytes("fanout"), 0, 0, 0,
                          0, amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 403,
                            "ACCESS_REFUSED - operation not permitted on the default exchange");
    it_disconnect(c);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = it_tcase(s, "declare");

    tcase_add_test(tc, named_queue_declare_ok_returns_name_and_counts);
    tcase_add_test(tc, server_named_queue_gets_amq_gen_name);
    tcase_add_test(tc, passive_declare_of_missing_queue_closes_channel_with_404);
    tcase_add_test(tc, amq_prefix_is_reserved_for_queues);
    tcase_add_test(tc, exclusive_queue_is_locked_to_its_connection);
    tcase_add_test(tc, auto_delete_queue_goes_after_last_consumer_cancels);
    tcase_add_test(tc, auto_delete_queue_without_consumers_stays);
    tcase_add_test(tc, redeclare_with_other_durability_closes_channel_with_406);
    tcase_add_test(tc, redeclare_with_other_auto_delete_closes_channel_with_406);
    tcase_add_test(tc, redeclare_of_shared_queue_as_exclusive_closes_channel_with_405);
    tcase_add_test(tc, redeclare_of_own_exclusive_queue_as_shared_closes_channel_with_405);

    tc = it_tcase(s, "bind");
    tcase_add_test(tc, bind_and_unbind_with_arguments);
    tcase_add_test(tc, unbind_of_missing_binding_succeeds);
    tcase_add_test(tc, unbind_of_missing_queue_or_exchange_succeeds);
    tcase_add_test(tc, unbind_of_another_connections_exclusive_queue_is_refused_only_when_bound);
    tcase_add_test(tc, bind_to_missing_queue_or_exchange_closes_channel_with_404);

    tc = it_tcase(s, "purge_delete");
    tcase_add_test(tc, purge_returns_count_of_ready_messages);
    tcase_add_test(tc, delete_returns_message_count);
    tcase_add_test(tc, delete_of_missing_queue_succeeds_with_zero);
    tcase_add_test(tc, delete_if_unused_with_consumer_closes_channel_with_406);
    tcase_add_test(tc, delete_if_empty_with_messages_closes_channel_with_406);

    tc = it_tcase(s, "last_declared");
    tcase_add_test(tc, empty_queue_name_means_the_queue_last_declared_on_the_channel);
    tcase_add_test(tc, bind_with_empty_queue_and_key_binds_by_the_queue_name);
    tcase_add_test(tc, empty_queue_name_before_any_declare_on_the_channel_closes_it_with_404);
    tcase_add_test(tc, passive_declare_of_empty_name_is_not_the_last_declared_queue);

    tc = it_tcase(s, "names");
    tcase_add_test(tc, cr_and_lf_are_stripped_from_queue_names);
    tcase_add_test(tc, cr_and_lf_are_stripped_from_exchange_names);
    return s;
}

int main(void)
{
    return it_run(queue_suite(), NULL);
}
