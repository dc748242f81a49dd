/* basic.*: publish, get, consume, cancel, qos, ack/nack/reject, recover, and what a client
 * receives on each error path. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET_MS 300 /* how long "no further delivery" is watched for */

static void publish_n(amqp_connection_state_t c, const char *q, int first, int last)
{
    for (int i = first; i <= last; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        it_publish(c, "", q, body);
    }
}

static amqp_rpc_reply_t consume(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                                const char *tag, bool exclusive)
{
    amqp_basic_consume(c, ch, amqp_cstring_bytes(q),
                       tag != NULL ? amqp_cstring_bytes(tag) : amqp_empty_bytes, 0, 0, exclusive,
                       amqp_empty_table);
    return amqp_get_rpc_reply(c);
}

/* Fails unless the next delivery comes within 2 s with this body (and is freed). Returns its
 * delivery tag; the consumer tag goes to tag_out when not NULL. */
static uint64_t expect_delivery(amqp_connection_state_t c, const char *body, bool redelivered,
                                char *tag_out, size_t tag_size)
{
    struct it_msg m;
    uint64_t tag;

    ck_assert_msg(it_next_delivery(c, 2000, &m), "no delivery of '%s' within 2 s", body);
    it_assert_body(&m, body);
    ck_assert_msg(m.redelivered == redelivered, "'%s': redelivered is %d", body, m.redelivered);
    if (tag_out != NULL)
        snprintf(tag_out, tag_size, "%s", m.consumer_tag);
    tag = m.delivery_tag;
    it_msg_free(&m);
    return tag;
}

static void expect_no_delivery(amqp_connection_state_t c)
{
    struct it_msg m;
    char body[64];

    if (it_next_delivery(c, QUIET_MS, &m)) {
        it_body(&m, body, sizeof body);
        it_msg_free(&m);
        ck_abort_msg("unexpected delivery of '%s'", body);
    }
}

static void expect_get(amqp_connection_state_t c, amqp_channel_t ch, const char *q,
                       const char *body, bool redelivered)
{
    struct it_msg m;

    ck_assert_msg(it_get(c, ch, q, true, &m), "queue empty, expected '%s'", body);
    it_assert_body(&m, body);
    ck_assert_msg(m.redelivered == redelivered, "'%s': redelivered is %d", body, m.redelivered);
    it_msg_free(&m);
}

static void expect_empty(amqp_connection_state_t c, amqp_channel_t ch, const char *q)
{
    struct it_msg m;
    char body[64];

    if (it_get(c, ch, q, true, &m)) {
        it_body(&m, body, sizeof body);
        it_msg_free(&m);
        ck_abort_msg("queue not empty: got '%s'", body);
    }
}

/* ---- field tables --------------------------------------------------------------------- */

static void assert_tables_equal(const amqp_table_t *want, const amqp_table_t *got,
                                const char *where);

static void assert_values_equal(const amqp_field_value_t *want, const amqp_field_value_t *got,
                                const char *where)
{
    ck_assert_msg(want->kind == got->kind, "%s: kind '%c' arrived as '%c'", where, want->kind,
                  got->kind);
    switch (want->kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
        ck_assert_msg(!want->value.boolean == !got->value.boolean, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_I8:
        ck_assert_msg(want->value.i8 == got->value.i8, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_U8:
        ck_assert_msg(want->value.u8 == got->value.u8, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_I16:
        ck_assert_msg(want->value.i16 == got->value.i16, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_U16:
        ck_assert_msg(want->value.u16 == got->value.u16, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_I32:
        ck_assert_msg(want->value.i32 == got->value.i32, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_U32:
        ck_assert_msg(want->value.u32 == got->value.u32, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_I64:
        ck_assert_msg(want->value.i64 == got->value.i64, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        ck_assert_msg(want->value.u64 == got->value.u64, "%s differs", where);
        break;
    case AMQP_FIELD_KIND_F32:
        ck_assert_msg(memcmp(&want->value.f32, &got->value.f32, sizeof(float)) == 0, "%s differs",
                      where);
        break;
    case AMQP_FIELD_KIND_F64:
        ck_assert_msg(memcmp(&want->value.f64, &got->value.f64, sizeof(double)) == 0, "%s differs",
                      where);
        break;
    case AMQP_FIELD_KIND_DECIMAL:
        ck_assert_msg(want->value.decimal.decimals == got->value.decimal.decimals &&
                          want->value.decimal.value == got->value.decimal.value,
                      "%s differs", where);
        break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        ck_assert_msg(
            want->value.bytes.len == got->value.bytes.len &&
                memcmp(want->value.bytes.bytes, got->value.bytes.bytes, want->value.bytes.len) == 0,
            "%s differs", where);
        break;
    case AMQP_FIELD_KIND_VOID:
        break;
    case AMQP_FIELD_KIND_TABLE:
        assert_tables_equal(&want->value.table, &got->value.table, where);
        break;
    case AMQP_FIELD_KIND_ARRAY:
        ck_assert_msg(want->value.array.num_entries == got->value.array.num_entries,
                      "%s: %d array entries arrived as %d", where, want->value.array.num_entries,
                      got->value.array.num_entries);
        for (int i = 0; i < want->value.array.num_entries; i++) {
            char inner[256];

            snprintf(inner, sizeof inner, "%s[%d]", where, i);
            assert_values_equal(&want->value.array.entries[i], &got->value.array.entries[i], inner);
        }
        break;
    default:
        ck_abort_msg("%s: kind '%c' not handled by the test", where, want->kind);
    }
}

/* Same entries, in the same order, of the same kinds and values. */
static void assert_tables_equal(const amqp_table_t *want, const amqp_table_t *got,
                                const char *where)
{
    ck_assert_msg(want->num_entries == got->num_entries, "%s: %d entries arrived as %d", where,
                  want->num_entries, got->num_entries);
    for (int i = 0; i < want->num_entries; i++) {
        char inner[256];

        snprintf(inner, sizeof inner, "%s.%.*s", where, (int)want->entries[i].key.len,
                 (const char *)want->entries[i].key.bytes);
        ck_assert_msg(want->entries[i].key.len == got->entries[i].key.len &&
                          memcmp(want->entries[i].key.bytes, got->entries[i].key.bytes,
                                 want->entries[i].key.len) == 0,
                      "%s: entry %d has another key", inner, i);
        assert_values_equal(&want->entries[i].value, &got->entries[i].value, inner);
    }
}

#define ENTRY(k, kind_, member, v)                                                                 \
    {                                                                                              \
        .key = {sizeof(k) - 1, (void *)(k)}, .value = {.kind = (kind_), .value.member = (v) }      \
    }

static void assert_bytes_field(amqp_bytes_t want, amqp_bytes_t got, const char *name)
{
    ck_assert_msg(want.len == got.len && memcmp(want.bytes, got.bytes, want.len) == 0,
                  "property %s: sent '%.*s', received '%.*s'", name, (int)want.len,
                  (const char *)want.bytes, (int)got.len, (const char *)got.bytes);
}

START_TEST(publish_and_get_keep_every_property_and_header)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    amqp_field_value_t array_items[] = {
        {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 7},
        {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("seven")},
        {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 0},
    };
    amqp_table_entry_t nested[] = {
        ENTRY("inner", AMQP_FIELD_KIND_UTF8, bytes, amqp_cstring_bytes("value")),
        ENTRY("depth", AMQP_FIELD_KIND_I64, i64, -2),
    };
    amqp_table_entry_t headers[] = {
        ENTRY("bool", AMQP_FIELD_KIND_BOOLEAN, boolean, 1),
        ENTRY("i8", AMQP_FIELD_KIND_I8, i8, -8),
        ENTRY("u8", AMQP_FIELD_KIND_U8, u8, 200),
        ENTRY("i16", AMQP_FIELD_KIND_I16, i16, -1600),
        ENTRY("u16", AMQP_FIELD_KIND_U16, u16, 60000),
        ENTRY("i32", AMQP_FIELD_KIND_I32, i32, -320000),
        ENTRY("u32", AMQP_FIELD_KIND_U32, u32, 4000000000u),
        ENTRY("i64", AMQP_FIELD_KIND_I64, i64, -6400000000000LL),
        ENTRY("f32", AMQP_FIELD_KIND_F32, f32, 1.5f),
        ENTRY("f64", AMQP_FIELD_KIND_F64, f64, -2.25),
        ENTRY("decimal", AMQP_FIELD_KIND_DECIMAL, decimal, ((amqp_decimal_t){2, 31415})),
        ENTRY("utf8", AMQP_FIELD_KIND_UTF8, bytes, amqp_cstring_bytes("h\xc3\xa9llo")),
        ENTRY("bytes", AMQP_FIELD_KIND_BYTES, bytes, ((amqp_bytes_t){3, (void *)"\0\1\2"})),
        ENTRY("timestamp", AMQP_FIELD_KIND_TIMESTAMP, u64, 1700000000),
        ENTRY("void", AMQP_FIELD_KIND_VOID, u64, 0),
        ENTRY("table", AMQP_FIELD_KIND_TABLE, table, ((amqp_table_t){2, nested})),
        ENTRY("array", AMQP_FIELD_KIND_ARRAY, array, ((amqp_array_t){3, array_items})),
    };
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
                  AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                  AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_EXPIRATION_FLAG |
                  AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG |
                  AMQP_BASIC_USER_ID_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CLUSTER_ID_FLAG,
        .content_type = amqp_cstring_bytes("application/x-it"),
        .content_encoding = amqp_cstring_bytes("identity"),
        .headers = {sizeof headers / sizeof headers[0], headers},
        .delivery_mode = 2,
        .priority = 7,
        .correlation_id = amqp_cstring_bytes("corr-1"),
        .reply_to = amqp_cstring_bytes("reply.queue"),
        .expiration = amqp_cstring_bytes("600000"),
        .message_id = amqp_cstring_bytes("msg-1"),
        .timestamp = 1700000001,
        .type = amqp_cstring_bytes("it.type"),
        /* The broker checks user_id against the login, so it must be the user's. */
        .user_id = amqp_cstring_bytes("guest"),
        .app_id = amqp_cstring_bytes("warren-it"),
        .cluster_id = amqp_cstring_bytes("cluster-x"),
    };
    static const char body[] = "body with \0 a NUL";
    struct it_msg m;
    const amqp_basic_properties_t *got;

    it_temp_queue(c, it_name(q, sizeof q, "props"));
    it_publish_bytes(c, 1, "", q, &p, (amqp_bytes_t){sizeof body - 1, (void *)body});
    ck_assert(it_get(c, 1, q, true, &m));
    ck_assert_str_eq(m.exchange, "");
    ck_assert_str_eq(m.routing_key, q);
    ck_assert(!m.redelivered);
    ck_assert_uint_eq(m.message_count, 0);
    ck_assert_uint_eq(m.message.body.len, sizeof body - 1);
    ck_assert(memcmp(m.message.body.bytes, body, sizeof body - 1) == 0);

    got = &m.message.properties;
    ck_assert_uint_eq(got->_flags, p._flags);
    assert_bytes_field(p.content_type, got->content_type, "content_type");
    assert_bytes_field(p.content_encoding, got->content_encoding, "content_encoding");
    assert_tables_equal(&p.headers, &got->headers, "headers");
    ck_assert_uint_eq(got->delivery_mode, 2);
    ck_assert_uint_eq(got->priority, 7);
    assert_bytes_field(p.correlation_id, got->correlation_id, "correlation_id");
    assert_bytes_field(p.reply_to, got->reply_to, "reply_to");
    assert_bytes_field(p.expiration, got->expiration, "expiration");
    assert_bytes_field(p.message_id, got->message_id, "message_id");
    ck_assert_uint_eq(got->timestamp, 1700000001);
    assert_bytes_field(p.type, got->type, "type");
    assert_bytes_field(p.user_id, got->user_id, "user_id");
    assert_bytes_field(p.app_id, got->app_id, "app_id");
    assert_bytes_field(p.cluster_id, got->cluster_id, "cluster_id");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(message_without_properties_arrives_without_properties)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "noprops"));
    it_publish_bytes(c, 1, "", q, NULL, amqp_empty_bytes);
    ck_assert(it_get(c, 1, q, true, &m));
    ck_assert_uint_eq(m.message.properties._flags, 0);
    ck_assert_uint_eq(m.message.body.len, 0);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(user_id_other_than_login_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_properties_t p = {._flags = AMQP_BASIC_USER_ID_FLAG,
                                 .user_id = amqp_cstring_bytes("someone-else")};
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "userid"));
    it_publish_bytes(c, 1, "", q, &p, amqp_cstring_bytes("x"));
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - user_id property set to 'someone-else' but "
                            "authenticated user was 'guest'");
    it_disconnect(c);
}
END_TEST

START_TEST(get_reports_remaining_count_and_empty)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;
    amqp_rpc_reply_t r;

    it_temp_queue(c, it_name(q, sizeof q, "get"));
    publish_n(c, q, 1, 3);
    for (uint32_t left = 2;; left--) {
        ck_assert(it_get(c, 1, q, true, &m));
        ck_assert_uint_eq(m.message_count, left);
        it_msg_free(&m);
        if (left == 0)
            break;
    }
    r = amqp_basic_get(c, 1, amqp_cstring_bytes(q), 1);
    it_assert_ok(r, "basic.get");
    ck_assert_uint_eq(r.reply.id, AMQP_BASIC_GET_EMPTY_METHOD);
    it_disconnect(c);
}
END_TEST

START_TEST(get_from_missing_queue_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_name(q, sizeof q, "get.missing");
    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", q);
    it_expect_channel_close(c, 1, amqp_basic_get(c, 1, amqp_cstring_bytes(q), 1), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(publish_to_missing_exchange_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char x[64], text[200];

    it_name(x, sizeof x, "pub.missing");
    it_publish(c, x, "k", "x");
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", x);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(immediate_flag_closes_connection_with_540)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    int rc;

    it_temp_queue(c, it_name(q, sizeof q, "immediate"));
    rc = amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q), 0, 1, NULL,
                            amqp_cstring_bytes("now"));
    ck_assert_int_eq(rc, AMQP_STATUS_OK);
    it_expect_connection_close(c, it_wait_method(c, 2000), 540, "NOT_IMPLEMENTED - immediate=true");
    it_destroy(c);
}
END_TEST

START_TEST(mandatory_unroutable_message_is_returned_with_312)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_properties_t p = {._flags = AMQP_BASIC_MESSAGE_ID_FLAG,
                                 .message_id = amqp_cstring_bytes("ret-1")};
    amqp_rpc_reply_t r;
    const amqp_basic_return_t *ret;
    amqp_message_t msg;
    amqp_channel_t ch = 0;
    char key[64];

    it_name(key, sizeof key, "unrouted");
    ck_assert_int_eq(amqp_basic_publish(c, 1, amqp_cstring_bytes("amq.direct"),
                                        amqp_cstring_bytes(key), 1, 0, &p,
                                        amqp_cstring_bytes("back")),
                     AMQP_STATUS_OK);
    r = it_wait_method_on(c, 2000, &ch);
    it_assert_ok(r, "waiting for basic.return");
    ck_assert_uint_eq(r.reply.id, AMQP_BASIC_RETURN_METHOD);
    ck_assert_uint_eq(ch, 1);
    ret = r.reply.decoded;
    ck_assert_uint_eq(ret->reply_code, 312);
    it_assert_bytes(ret->reply_text, "NO_ROUTE");
    it_assert_bytes(ret->exchange, "amq.direct");
    it_assert_bytes(ret->routing_key, key);
    it_assert_ok(amqp_read_message(c, 1, &msg, 0), "content of basic.return");
    it_assert_bytes(msg.body, "back");
    it_assert_bytes(msg.properties.message_id, "ret-1");
    amqp_destroy_message(&msg);
    /* A routable mandatory message is not returned; the channel stays open. */
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

/* ---- consumers ------------------------------------------------------------------------ */

START_TEST(consume_with_empty_tag_gets_server_generated_tag)
{
    amqp_connection_state_t c = it_connect();
    char q[64], tag[256], delivered_tag[256];

    it_temp_queue(c, it_name(q, sizeof q, "ctag"));
    it_consume(c, 1, q, NULL, true, false, tag, sizeof tag);
    ck_assert_msg(strncmp(tag, "amq.ctag-", 9) == 0 && strlen(tag) > 9, "consumer tag '%s'", tag);
    it_publish(c, "", q, "hello");
    expect_delivery(c, "hello", false, delivered_tag, sizeof delivered_tag);
    ck_assert_str_eq(delivered_tag, tag);
    it_disconnect(c);
}
END_TEST

START_TEST(delivery_carries_exchange_key_and_increasing_tags)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "envelope"));
    it_bind(c, q, "amq.direct", q, amqp_empty_table);
    it_consume(c, 1, q, "env", false, false, NULL, 0);
    it_publish(c, "amq.direct", q, "one");
    it_publish(c, "", q, "two");
    ck_assert(it_next_delivery(c, 2000, &m));
    ck_assert_uint_eq(m.channel, 1);
    ck_assert_str_eq(m.consumer_tag, "env");
    ck_assert_str_eq(m.exchange, "amq.direct");
    ck_assert_str_eq(m.routing_key, q);
    /* Delivery tags count from 1 on each channel. */
    ck_assert_uint_eq(m.delivery_tag, 1);
    it_msg_free(&m);
    ck_assert(it_next_delivery(c, 2000, &m));
    ck_assert_str_eq(m.exchange, "");
    ck_assert_uint_eq(m.delivery_tag, 2);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(no_ack_consumer_empties_the_queue_without_acks)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "noack"));
    publish_n(c, q, 1, 3);
    it_consume(c, 1, q, "fast", true, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    expect_delivery(c, "m2", false, NULL, 0);
    expect_delivery(c, "m3", false, NULL, 0);
    it_expect_counts(c, q, 0, 1);
    /* Nothing delivered without acks waits for one. */
    it_ack(c, 1, 1, false);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - unknown delivery tag 1");
    it_disconnect(c);
}
END_TEST

START_TEST(consume_from_missing_queue_closes_channel_with_404)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_name(q, sizeof q, "consume.missing");
    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", q);
    it_expect_channel_close(c, 1, consume(c, 1, q, NULL, false), 404, text);
    it_disconnect(c);
}
END_TEST

START_TEST(exclusive_consumer_refuses_other_consumers_with_403)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_temp_queue(c, it_name(q, sizeof q, "exclusive.consumer"));
    snprintf(text, sizeof text, "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use", q);
    it_channel_open(c, 2);
    it_assert_ok(consume(c, 1, q, "first", true), "exclusive basic.consume");
    it_expect_channel_close(c, 2, consume(c, 2, q, "second", false), 403, text);
    it_disconnect(c);
}
END_TEST

START_TEST(exclusive_consume_on_queue_with_consumers_fails_with_403)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_temp_queue(c, it_name(q, sizeof q, "exclusive.late"));
    snprintf(text, sizeof text, "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use", q);
    it_channel_open(c, 2);
    it_assert_ok(consume(c, 1, q, "first", false), "basic.consume");
    it_expect_channel_close(c, 2, consume(c, 2, q, "second", true), 403, text);
    it_disconnect(c);
}
END_TEST

START_TEST(duplicate_consumer_tag_closes_connection_with_530)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "duptag"));
    it_assert_ok(consume(c, 1, q, "same", false), "basic.consume");
    it_expect_connection_close(c, consume(c, 1, q, "same", false), 530,
                               "NOT_ALLOWED - attempt to reuse consumer tag 'same'");
    it_destroy(c);
}
END_TEST

START_TEST(same_consumer_tag_on_another_channel_is_allowed)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "tag.perchannel"));
    it_channel_open(c, 2);
    it_assert_ok(consume(c, 1, q, "same", false), "basic.consume on channel 1");
    it_assert_ok(consume(c, 2, q, "same", false), "basic.consume on channel 2");
    it_expect_counts(c, q, 0, 2);
    it_disconnect(c);
}
END_TEST

START_TEST(cancel_stops_deliveries_and_keeps_messages)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_cancel_ok_t *ok;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "cancel"));
    it_consume(c, 1, q, "gone", true, false, NULL, 0);
    it_publish(c, "", q, "before");
    expect_delivery(c, "before", false, NULL, 0);
    ok = amqp_basic_cancel(c, 1, amqp_cstring_bytes("gone"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_assert_bytes(ok->consumer_tag, "gone");
    it_publish(c, "", q, "after");
    expect_no_delivery(c);
    it_expect_counts(c, q, 1, 0);
    expect_get(c, 1, q, "after", false);
    it_disconnect(c);
}
END_TEST

START_TEST(cancel_of_unknown_tag_is_answered_with_cancel_ok)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_cancel_ok_t *ok = amqp_basic_cancel(c, 1, amqp_cstring_bytes("never-consumed"));

    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel of an unknown tag");
    it_assert_bytes(ok->consumer_tag, "never-consumed");
    it_disconnect(c);
}
END_TEST

START_TEST(deleting_the_queue_cancels_its_consumers_for_clients_that_ask)
{
    amqp_table_entry_t caps[] = {
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t entries[] = {
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {1, caps}}},
    };
    amqp_table_t props = {1, entries};
    struct it_conn_opts o = {.client_properties = &props};
    amqp_connection_state_t c = it_connect_opts(&o);
    const amqp_basic_cancel_t *cancel;
    amqp_rpc_reply_t r;
    amqp_channel_t ch = 0;
    char q[64];

    it_queue(c, it_name(q, sizeof q, "cancel.notify"));
    it_channel_open(c, 2);
    it_consume(c, 2, q, "watcher", true, false, NULL, 0);
    it_queue_delete(c, q);
    r = it_wait_method_on(c, 2000, &ch);
    it_assert_ok(r, "waiting for basic.cancel");
    ck_assert_msg(r.reply.id == AMQP_BASIC_CANCEL_METHOD, "got %s instead of basic.cancel",
                  amqp_method_name(r.reply.id));
    ck_assert_uint_eq(ch, 2);
    cancel = r.reply.decoded;
    it_assert_bytes(cancel->consumer_tag, "watcher");
    it_disconnect(c);
}
END_TEST

START_TEST(consumers_of_one_queue_take_turns)
{
    amqp_connection_state_t c = it_connect();
    char q[64], tag[256];
    int got_a = 0, got_b = 0;
    char last[256] = "";

    it_temp_queue(c, it_name(q, sizeof q, "roundrobin"));
    it_consume(c, 1, q, "a", true, false, NULL, 0);
    it_consume(c, 1, q, "b", true, false, NULL, 0);
    publish_n(c, q, 1, 6);
    for (int i = 1; i <= 6; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        expect_delivery(c, body, false, tag, sizeof tag);
        ck_assert_msg(strcmp(tag, last) != 0, "'%s' got two messages in a row", tag);
        snprintf(last, sizeof last, "%s", tag);
        if (strcmp(tag, "a") == 0)
            got_a++;
        else
            got_b++;
    }
    ck_assert_int_eq(got_a, 3);
    ck_assert_int_eq(got_b, 3);
    it_disconnect(c);
}
END_TEST

/* ---- qos -------------------------------------------------------------------------------- */

START_TEST(prefetch_limits_unacked_deliveries_per_consumer)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    uint64_t tag;

    it_temp_queue(c, it_name(q, sizeof q, "prefetch"));
    it_qos(c, 1, 2, false);
    publish_n(c, q, 1, 5);
    it_consume(c, 1, q, "slow", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    tag = expect_delivery(c, "m2", false, NULL, 0);
    expect_no_delivery(c);
    /* Acknowledging both makes room for two more. */
    it_ack(c, 1, tag, true);
    expect_delivery(c, "m3", false, NULL, 0);
    expect_delivery(c, "m4", false, NULL, 0);
    expect_no_delivery(c);
    it_expect_counts(c, q, 1, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(prefetch_applies_to_each_new_consumer_separately)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];
    struct it_msg m;
    int delivered = 0;

    it_temp_queue(c, it_name(q1, sizeof q1, "prefetch.each"));
    it_temp_queue(c, it_name(q2, sizeof q2, "prefetch.each"));
    publish_n(c, q1, 1, 3);
    publish_n(c, q2, 1, 3);
    it_qos(c, 1, 1, false);
    it_consume(c, 1, q1, "c1", false, false, NULL, 0);
    it_consume(c, 1, q2, "c2", false, false, NULL, 0);
    while (it_next_delivery(c, QUIET_MS, &m)) {
        delivered++;
        it_msg_free(&m);
    }
    ck_assert_int_eq(delivered, 2);
    it_disconnect(c);
}
END_TEST

START_TEST(global_prefetch_limits_the_whole_channel)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];
    struct it_msg m;
    uint64_t last_tag = 0;
    int delivered = 0;

    it_temp_queue(c, it_name(q1, sizeof q1, "prefetch.global"));
    it_temp_queue(c, it_name(q2, sizeof q2, "prefetch.global"));
    publish_n(c, q1, 1, 5);
    publish_n(c, q2, 1, 5);
    it_qos(c, 1, 3, true);
    it_consume(c, 1, q1, "g1", false, false, NULL, 0);
    it_consume(c, 1, q2, "g2", false, false, NULL, 0);
    while (it_next_delivery(c, QUIET_MS, &m)) {
        delivered++;
        last_tag = m.delivery_tag;
        it_msg_free(&m);
    }
    ck_assert_int_eq(delivered, 3);
    /* One ack, one more delivery across both consumers. */
    it_ack(c, 1, last_tag, false);
    delivered = 0;
    while (it_next_delivery(c, QUIET_MS, &m)) {
        delivered++;
        it_msg_free(&m);
    }
    ck_assert_int_eq(delivered, 1);
    it_disconnect(c);
}
END_TEST

/* RabbitMQ's channel limiter holds back every consumer of the channel once the channel-wide
 * limit is reached, no-ack ones too (their deliveries do not count against it): the no-ack
 * consumer waits for the ack that frees credit. */
START_TEST(global_prefetch_at_its_limit_holds_back_a_no_ack_consumer)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];
    struct it_msg m;
    uint64_t tag;

    it_temp_queue(c, it_name(q1, sizeof q1, "prefetch.global.noack"));
    it_temp_queue(c, it_name(q2, sizeof q2, "prefetch.global.noack"));
    publish_n(c, q1, 1, 1);
    publish_n(c, q2, 1, 3);
    it_qos(c, 1, 1, true);
    it_consume(c, 1, q1, "acks", false, false, NULL, 0);
    ck_assert(it_next_delivery(c, QUIET_MS, &m));
    ck_assert_str_eq(m.consumer_tag, "acks");
    tag = m.delivery_tag;
    it_msg_free(&m);
    it_consume(c, 1, q2, "noack", true, false, NULL, 0);
    it_expect_no_delivery(c, QUIET_MS);
    it_ack(c, 1, tag, false);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(it_next_delivery(c, QUIET_MS, &m), "no-ack delivery %d missing", i + 1);
        ck_assert_str_eq(m.consumer_tag, "noack");
        it_msg_free(&m);
    }
    it_expect_no_delivery(c, QUIET_MS);
    it_disconnect(c);
}
END_TEST

/* One channel with a channel-wide limit of 1 consuming from two queues: the credit an ack
 * frees goes round the queues, so neither starves (RabbitMQ notifies the blocked queues in a
 * random rotation; Warren in turn). */
START_TEST(global_prefetch_credit_rotates_across_queues)
{
    amqp_connection_state_t c = it_connect();
    char q1[64], q2[64];
    struct it_msg m;
    int from_q1 = 0, from_q2 = 0;

    it_temp_queue(c, it_name(q1, sizeof q1, "prefetch.global.fair"));
    it_temp_queue(c, it_name(q2, sizeof q2, "prefetch.global.fair"));
    publish_n(c, q1, 1, 20);
    publish_n(c, q2, 1, 20);
    it_qos(c, 1, 1, true);
    it_consume(c, 1, q1, "q1", false, false, NULL, 0);
    it_consume(c, 1, q2, "q2", false, false, NULL, 0);
    for (int i = 0; i < 12; i++) {
        ck_assert_msg(it_next_delivery(c, QUIET_MS, &m), "delivery %d missing", i + 1);
        if (strcmp(m.consumer_tag, "q1") == 0)
            from_q1++;
        else
            from_q2++;
        it_ack(c, 1, m.delivery_tag, false);
        it_msg_free(&m);
    }
    ck_assert_msg(from_q1 >= 3 && from_q2 >= 3, "q1 got %d deliveries, q2 %d", from_q1, from_q2);
    it_disconnect(c);
}
END_TEST

START_TEST(prefetch_size_is_not_implemented_and_closes_connection_with_540)
{
    amqp_connection_state_t c = it_connect();

    amqp_basic_qos(c, 1, 1000, 0, 0);
    it_expect_connection_close(c, amqp_get_rpc_reply(c), 540,
                               "NOT_IMPLEMENTED - prefetch_size!=0 (1000)");
    it_destroy(c);
}
END_TEST

/* ---- ack, nack, reject ---------------------------------------------------------------- */

START_TEST(ack_single_and_multiple_remove_exactly_those_messages)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    uint64_t tags[6];

    it_queue(c, it_name(q, sizeof q, "ack"));
    it_channel_open(c, 2);
    publish_n(c, q, 1, 5);
    it_consume(c, 2, q, "acker", false, false, NULL, 0);
    for (int i = 1; i <= 5; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        tags[i] = expect_delivery(c, body, false, NULL, 0);
    }
    it_ack(c, 2, tags[2], false);  /* m2 */
    it_ack(c, 2, tags[4], true);   /* m1, m3, m4 */
    it_assert_channel_alive(c, 2); /* the broker took both acks */
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    /* Only m5 was left unacknowledged: closing the channel requeues it alone. */
    it_expect_counts(c, q, 1, 0);
    expect_get(c, 1, q, "m5", true);
    ck_assert_uint_eq(it_queue_delete(c, q), 0);
    it_disconnect(c);
}
END_TEST

START_TEST(ack_multiple_with_tag_zero_acks_everything)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "ack.zero"));
    publish_n(c, q, 1, 3);
    it_consume(c, 1, q, "all", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    expect_delivery(c, "m2", false, NULL, 0);
    expect_delivery(c, "m3", false, NULL, 0);
    it_ack(c, 1, 0, true);
    it_assert_channel_alive(c, 1);
    amqp_basic_cancel(c, 1, amqp_cstring_bytes("all"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_assert_ok(amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS), "channel.close");
    it_channel_open(c, 1);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(requeued_messages_keep_their_position)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m1, m2;

    it_temp_queue(c, it_name(q, sizeof q, "requeue"));
    publish_n(c, q, 1, 3);
    ck_assert(it_get(c, 1, q, false, &m1));
    ck_assert(it_get(c, 1, q, false, &m2));
    /* Requeued in the opposite order, they still come back as m1, m2, m3. */
    ck_assert_int_eq(amqp_basic_reject(c, 1, m2.delivery_tag, 1), AMQP_STATUS_OK);
    ck_assert_int_eq(amqp_basic_nack(c, 1, m1.delivery_tag, 0, 1), AMQP_STATUS_OK);
    it_msg_free(&m1);
    it_msg_free(&m2);
    expect_get(c, 1, q, "m1", true);
    expect_get(c, 1, q, "m2", true);
    expect_get(c, 1, q, "m3", false);
    it_disconnect(c);
}
END_TEST

START_TEST(nack_multiple_requeues_to_consumer_as_redelivered)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    uint64_t tag;

    it_temp_queue(c, it_name(q, sizeof q, "nack"));
    it_qos(c, 1, 3, false);
    publish_n(c, q, 1, 3);
    it_consume(c, 1, q, "n", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    expect_delivery(c, "m2", false, NULL, 0);
    tag = expect_delivery(c, "m3", false, NULL, 0);
    ck_assert_int_eq(amqp_basic_nack(c, 1, tag, 1, 1), AMQP_STATUS_OK);
    expect_delivery(c, "m1", true, NULL, 0);
    expect_delivery(c, "m2", true, NULL, 0);
    expect_delivery(c, "m3", true, NULL, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(reject_without_requeue_drops_the_message)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "reject.drop"));
    publish_n(c, q, 1, 2);
    ck_assert(it_get(c, 1, q, false, &m));
    ck_assert_int_eq(amqp_basic_reject(c, 1, m.delivery_tag, 0), AMQP_STATUS_OK);
    it_msg_free(&m);
    ck_assert(it_get(c, 1, q, false, &m));
    ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 0, 0), AMQP_STATUS_OK);
    it_msg_free(&m);
    it_expect_counts(c, q, 0, 0);
    expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(unknown_delivery_tag_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();

    it_ack(c, 1, 42, false);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - unknown delivery tag 42");
    it_channel_open(c, 1);
    ck_assert_int_eq(amqp_basic_reject(c, 1, 43, 1), AMQP_STATUS_OK);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - unknown delivery tag 43");
    it_channel_open(c, 1);
    ck_assert_int_eq(amqp_basic_nack(c, 1, 44, 0, 1), AMQP_STATUS_OK);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - unknown delivery tag 44");
    it_disconnect(c);
}
END_TEST

START_TEST(second_ack_of_a_tag_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "ack.twice"));
    publish_n(c, q, 1, 1);
    ck_assert(it_get(c, 1, q, false, &m));
    it_ack(c, 1, m.delivery_tag, false);
    it_ack(c, 1, m.delivery_tag, false);
    it_msg_free(&m);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - unknown delivery tag 1");
    it_disconnect(c);
}
END_TEST

START_TEST(unacked_messages_of_closed_channel_are_requeued)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "close.channel"));
    it_channel_open(c, 2);
    publish_n(c, q, 1, 2);
    it_consume(c, 2, q, "holder", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    expect_delivery(c, "m2", false, NULL, 0);
    it_assert_ok(amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS), "channel.close");
    it_expect_counts(c, q, 2, 0);
    expect_get(c, 1, q, "m1", true);
    expect_get(c, 1, q, "m2", true);
    it_disconnect(c);
}
END_TEST

START_TEST(unacked_messages_of_closed_connection_are_requeued)
{
    amqp_connection_state_t c = it_connect(), holder = it_connect();
    char q[64];
    struct it_msg m;

    it_queue(c, it_name(q, sizeof q, "close.connection"));
    publish_n(c, q, 1, 2);
    ck_assert(it_get(c, 1, q, true, &m)); /* m1 consumed for good */
    it_msg_free(&m);
    ck_assert(it_get(holder, 1, q, false, &m));
    it_assert_body(&m, "m2");
    it_msg_free(&m);
    it_disconnect(holder);
    it_expect_counts(c, q, 1, 0);
    expect_get(c, 1, q, "m2", true);
    ck_assert_uint_eq(it_queue_delete(c, q), 0);
    it_disconnect(c);
}
END_TEST

START_TEST(recover_with_requeue_redelivers_unacked_messages)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "recover"));
    publish_n(c, q, 1, 2);
    it_consume(c, 1, q, "r", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    expect_delivery(c, "m2", false, NULL, 0);
    amqp_basic_recover(c, 1, 1);
    it_assert_ok(amqp_get_rpc_reply(c), "basic.recover");
    expect_delivery(c, "m1", true, NULL, 0);
    expect_delivery(c, "m2", true, NULL, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(recover_async_redelivers_unacked_messages)
{
    amqp_connection_state_t c = it_connect();
    amqp_basic_recover_async_t recover = {.requeue = 1};
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "recover.async"));
    publish_n(c, q, 1, 1);
    it_consume(c, 1, q, "ra", false, false, NULL, 0);
    expect_delivery(c, "m1", false, NULL, 0);
    ck_assert_int_eq(amqp_send_method(c, 1, AMQP_BASIC_RECOVER_ASYNC_METHOD, &recover),
                     AMQP_STATUS_OK);
    expect_delivery(c, "m1", true, NULL, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(recover_without_requeue_closes_connection_with_540)
{
    amqp_connection_state_t c = it_connect();

    amqp_basic_recover(c, 1, 0);
    it_expect_connection_close(c, amqp_get_rpc_reply(c), 540, "NOT_IMPLEMENTED - requeue=false");
    it_destroy(c);
}
END_TEST

/* ---- ordering and size ---------------------------------------------------------------- */

START_TEST(messages_of_one_channel_arrive_in_publish_order)
{
    enum { COUNT = 2000 };
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "fifo"));
    publish_n(c, q, 1, COUNT);
    it_consume(c, 1, q, "fifo", true, false, NULL, 0);
    for (int i = 1; i <= COUNT; i++) {
        char body[16];

        snprintf(body, sizeof body, "m%d", i);
        expect_delivery(c, body, false, NULL, 0);
    }
    it_disconnect(c);
}
END_TEST

START_TEST(large_body_crosses_many_frames_intact)
{
    enum { BODY_BYTES = 1 << 20 };
    struct it_conn_opts o = {.frame_max = 131072};
    amqp_connection_state_t c = it_connect_opts(&o);
    unsigned char *body = malloc(BODY_BYTES);
    char q[64];
    struct it_msg m;
    uint32_t x = 2463534242u;

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(amqp_get_frame_max(c), 131072);
    /* xorshift: no two frames of the body alike, so a lost or repeated frame shows. */
    for (size_t i = 0; i < BODY_BYTES; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body[i] = (unsigned char)x;
    }
    it_temp_queue(c, it_name(q, sizeof q, "large"));
    it_publish_bytes(c, 1, "", q, NULL, (amqp_bytes_t){BODY_BYTES, body});
    it_publish(c, "", q, "small after large");
    it_consume(c, 1, q, "big", true, false, NULL, 0);
    ck_assert(it_next_delivery(c, 5000, &m));
    ck_assert_uint_eq(m.message.body.len, BODY_BYTES);
    ck_assert(memcmp(m.message.body.bytes, body, BODY_BYTES) == 0);
    it_msg_free(&m);
    expect_delivery(c, "small after large", false, NULL, 0);
    free(body);
    it_disconnect(c);
}
END_TEST

/* Body i of the fan-out test: xorshift bytes seeded by i, so no two bodies or frames alike. */
static unsigned char *make_body(size_t len, uint32_t seed)
{
    unsigned char *b = malloc(len ? len : 1);
    uint32_t x = 2463534242u ^ (seed * 2654435761u);

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

/* Large bodies are read into their message and written from it (no copy in the broker);
 * small ones go through the connection's buffers. Sizes either side of where that changes
 * (16 KiB), bodies not a multiple of the frame payload, a publisher whose frames are small
 * and one whose frames are large, and three consumers on one connection getting the same
 * message at once: every byte arrives, in order, in every copy. */
START_TEST(large_bodies_fanned_out_to_consumers_on_one_connection_arrive_intact)
{
    static const size_t sizes[] = {16383, 16384, 16385, 20000, 200001, 1 << 20, 5, 3 * 131072};
    enum { N = sizeof sizes / sizeof sizes[0], QUEUES = 3 };
    struct it_conn_opts big = {.frame_max = 131072}, small = {.frame_max = 20000};
    amqp_connection_state_t pub_big = it_connect_opts(&big);
    amqp_connection_state_t pub_small = it_connect_opts(&small);
    amqp_connection_state_t sub = it_connect_opts(&big);
    unsigned char *bodies[N];
    bool seen[QUEUES][N] = {{false}};
    char x[64], q[QUEUES][64], tag[16];

    it_exchange(sub, it_name(x, sizeof x, "zc.fanout"), "fanout");
    for (int i = 0; i < QUEUES; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "zc.%d", i);
        it_temp_queue(sub, it_name(q[i], sizeof q[i], topic));
        it_bind(sub, q[i], x, "", amqp_empty_table);
        snprintf(tag, sizeof tag, "c%d", i);
        it_consume(sub, 1, q[i], tag, true, false, NULL, 0);
    }
    for (size_t i = 0; i < N; i++) {
        bodies[i] = make_body(sizes[i], (uint32_t)i);
        /* Alternate publishers: frames of 19992 octets and of 131064. */
        it_publish_bytes(i % 2 ? pub_small : pub_big, 1, x, "", NULL,
                         (amqp_bytes_t){sizes[i], bodies[i]});
        if (i % 2 == 0)
            it_publish(pub_big, x, "", "small between large");
    }
    /* The two publishers' messages interleave at the queues, each publisher's in order. */
    for (int got = 0; got < QUEUES * (int)(N + (N + 1) / 2); got++) {
        struct it_msg m;
        int who;

        ck_assert_msg(it_next_delivery(sub, 10000, &m), "delivery %d did not come", got);
        ck_assert_int_eq(sscanf(m.consumer_tag, "c%d", &who), 1);
        ck_assert(who >= 0 && who < QUEUES);
        if (it_bytes_eq(m.message.body, "small between large")) {
            it_msg_free(&m);
            continue;
        }
        /* Bodies are told apart by their size (the two publishers' messages interleave). */
        {
            size_t i = 0;
            while (i < N && sizes[i] != m.message.body.len)
                i++;
            ck_assert_msg(i < N, "a body of %zu octets was never published",
                          m.message.body.len);
            ck_assert_msg(memcmp(m.message.body.bytes, bodies[i], sizes[i]) == 0,
                          "body %zu (%zu octets) to consumer %d differs", i, sizes[i], who);
            ck_assert_msg(!seen[who][i], "body %zu came twice to consumer %d", i, who);
            seen[who][i] = true;
        }
        it_msg_free(&m);
    }
    for (int i = 0; i < QUEUES; i++) {
        for (size_t k = 0; k < N; k++)
            ck_assert_msg(seen[i][k], "body %zu never came to consumer %d", k, i);
    }
    for (size_t i = 0; i < N; i++)
        free(bodies[i]);
    it_disconnect(pub_big);
    it_disconnect(pub_small);
    it_disconnect(sub);
}
END_TEST

static Suite *basic_suite(void)
{
    Suite *s = suite_create("basic");
    TCase *tc = it_tcase(s, "publish_get");

    tcase_add_test(tc, publish_and_get_keep_every_property_and_header);
    tcase_add_test(tc, message_without_properties_arrives_without_properties);
    tcase_add_test(tc, user_id_other_than_login_closes_channel_with_406);
    tcase_add_test(tc, get_reports_remaining_count_and_empty);
    tcase_add_test(tc, get_from_missing_queue_closes_channel_with_404);
    tcase_add_test(tc, publish_to_missing_exchange_closes_channel_with_404);
    tcase_add_test(tc, immediate_flag_closes_connection_with_540);
    tcase_add_test(tc, mandatory_unroutable_message_is_returned_with_312);

    tc = it_tcase(s, "consume");
    tcase_add_test(tc, consume_with_empty_tag_gets_server_generated_tag);
    tcase_add_test(tc, delivery_carries_exchange_key_and_increasing_tags);
    tcase_add_test(tc, no_ack_consumer_empties_the_queue_without_acks);
    tcase_add_test(tc, consume_from_missing_queue_closes_channel_with_404);
    tcase_add_test(tc, exclusive_consumer_refuses_other_consumers_with_403);
    tcase_add_test(tc, exclusive_consume_on_queue_with_consumers_fails_with_403);
    tcase_add_test(tc, duplicate_consumer_tag_closes_connection_with_530);
    tcase_add_test(tc, same_consumer_tag_on_another_channel_is_allowed);
    tcase_add_test(tc, cancel_stops_deliveries_and_keeps_messages);
    tcase_add_test(tc, cancel_of_unknown_tag_is_answered_with_cancel_ok);
    tcase_add_test(tc, consumers_of_one_queue_take_turns);
    tcase_add_test(tc, deleting_the_queue_cancels_its_consumers_for_clients_that_ask);

    tc = it_tcase(s, "qos");
    tcase_add_test(tc, prefetch_limits_unacked_deliveries_per_consumer);
    tcase_add_test(tc, prefetch_applies_to_each_new_consumer_separately);
    tcase_add_test(tc, global_prefetch_limits_the_whole_channel);
    tcase_add_test(tc, global_prefetch_at_its_limit_holds_back_a_no_ack_consumer);
    tcase_add_test(tc, global_prefetch_credit_rotates_across_queues);
    tcase_add_test(tc, prefetch_size_is_not_implemented_and_closes_connection_with_540);

    tc = it_tcase(s, "ack");
    tcase_add_test(tc, ack_single_and_multiple_remove_exactly_those_messages);
    tcase_add_test(tc, ack_multiple_with_tag_zero_acks_everything);
    tcase_add_test(tc, requeued_messages_keep_their_position);
    tcase_add_test(tc, nack_multiple_requeues_to_consumer_as_redelivered);
    tcase_add_test(tc, reject_without_requeue_drops_the_message);
    tcase_add_test(tc, unknown_delivery_tag_closes_channel_with_406);
    tcase_add_test(tc, second_ack_of_a_tag_closes_channel_with_406);
    tcase_add_test(tc, unacked_messages_of_closed_channel_are_requeued);
    tcase_add_test(tc, unacked_messages_of_closed_connection_are_requeued);
    tcase_add_test(tc, recover_with_requeue_redelivers_unacked_messages);
    tcase_add_test(tc, recover_async_redelivers_unacked_messages);
    tcase_add_test(tc, recover_without_requeue_closes_connection_with_540);

    tc = it_tcase(s, "order_size");
    tcase_add_test(tc, messages_of_one_channel_arrive_in_publish_order);
    tcase_add_test(tc, large_body_crosses_many_frames_intact);
    tcase_add_test(tc, large_bodies_fanned_out_to_consumers_on_one_connection_arrive_intact);
    return s;
}

int main(void)
{
    return it_run(basic_suite(), NULL);
}
