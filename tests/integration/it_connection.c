/* Connections and channels: login, server properties, tune, vhosts, close, channel numbers,
 * heartbeats. */
#include "harness.h"

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The entry of a field table called key, or NULL. */
static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key)
{
    for (int i = 0; i < t->num_entries; i++) {
        if (it_bytes_eq(t->entries[i].key, key))
            return &t->entries[i].value;
    }
    return NULL;
}

static void assert_nonempty_string(const amqp_table_t *t, const char *key)
{
    const amqp_field_value_t *v = table_get(t, key);

    ck_assert_msg(v != NULL, "server property '%s' is missing", key);
    ck_assert_msg(v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES,
                  "server property '%s' is of kind %d, not a long string", key, v->kind);
    ck_assert_msg(v->value.bytes.len > 0, "server property '%s' is empty", key);
}

/* Reads exactly n bytes from fd within deadline_ms (CLOCK_MONOTONIC, ms); returns the
 * number read before EOF or the deadline. */
static size_t read_fully(int fd, unsigned char *buf, size_t n, long long deadline_ms)
{
    size_t got = 0;

    while (got < n) {
        struct timespec ts;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left;
        ssize_t k;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        left = deadline_ms - ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        k = read(fd, buf + got, n - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* True if word is one of the space-separated words of list (len bytes). */
static bool has_word(const unsigned char *list, size_t len, const char *word)
{
    size_t n = strlen(word);

    for (size_t i = 0; i + n <= len;) {
        size_t end = i;

        while (end < len && list[end] != ' ')
            end++;
        if (end - i == n && memcmp(list + i, word, n) == 0)
            return true;
        i = end + 1;
    }
    return false;
}

START_TEST(protocol_header_is_answered_with_connection_start)
{
    static const unsigned char header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    unsigned char frame_header[7], payload[8192], end;
    int fd = it_raw_socket();
    long long deadline = mono_ms() + 5000;
    uint32_t size, props_len, mech_len, locales_len;
    const unsigned char *p;

    ck_assert_int_eq(send(fd, header, sizeof header, MSG_NOSIGNAL), (ssize_t)sizeof header);
    ck_assert_uint_eq(read_fully(fd, frame_header, sizeof frame_header, deadline), 7);
    ck_assert_uint_eq(frame_header[0], 1);                        /* method frame */
    ck_assert_uint_eq(frame_header[1] << 8 | frame_header[2], 0); /* channel 0 */
    size = get_u32(frame_header + 3);
    ck_assert_uint_le(size, sizeof payload);
    ck_assert_uint_eq(read_fully(fd, payload, size, deadline), size);
    ck_assert_uint_eq(read_fully(fd, &end, 1, deadline), 1);
    ck_assert_uint_eq(end, 0xce);

    /* connection.start: class 10, method 10, version 0-9. */
    ck_assert_uint_ge(size, 4 + 2 + 4);
    ck_assert_uint_eq(payload[0] << 8 | payload[1], 10);
    ck_assert_uint_eq(payload[2] << 8 | payload[3], 10);
    ck_assert_uint_eq(payload[4], 0);
    ck_assert_uint_eq(payload[5], 9);
    props_len = get_u32(payload + 6);
    ck_assert_uint_le(10 + (size_t)props_len + 4, size);
    p = payload + 10 + props_len;
    mech_len = get_u32(p);
    ck_assert_uint_le((size_t)(p + 4 - payload) + mech_len + 4, size);
    ck_assert_msg(has_word(p + 4, mech_len, "PLAIN"), "mechanisms '%.*s'", (int)mech_len, p + 4);
    ck_assert_msg(has_word(p + 4, mech_len, "AMQPLAIN"), "mechanisms '%.*s'", (int)mech_len, p + 4);
    p += 4 + mech_len;
    locales_len = get_u32(p);
    ck_assert_uint_eq((size_t)(p + 4 - payload) + locales_len, size);
    ck_assert_msg(has_word(p + 4, locales_len, "en_US"), "locales '%.*s'", (int)locales_len, p + 4);
    close(fd);
}
END_TEST

START_TEST(login_with_plain_succeeds_and_channel_works)
{
    amqp_connection_state_t c = it_connect();

    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(server_properties_name_the_product)
{
    amqp_connection_state_t c = it_connect();
    const amqp_table_t *props = amqp_get_server_properties(c);
    const amqp_field_value_t *caps;

    ck_assert_ptr_nonnull(props);
    assert_nonempty_string(props, "product");
    assert_nonempty_string(props, "version");
    assert_nonempty_string(props, "platform");
    assert_nonempty_string(props, "copyright");
    assert_nonempty_string(props, "information");
    caps = table_get(props, "capabilities");
    ck_assert_msg(caps != NULL, "server property 'capabilities' is missing");
    ck_assert_int_eq(caps->kind, AMQP_FIELD_KIND_TABLE);
    it_disconnect(c);
}
END_TEST

/* Clients and test suites branch on "version" (x-match all-with-x needs RabbitMQ 3.10): it is
 * the RabbitMQ release whose behaviour Warren follows, and Warren's own version has a name of
 * its own. */
START_TEST(version_property_is_the_rabbitmq_release_followed)
{
    amqp_connection_state_t c = it_connect();
    const amqp_table_t *props = amqp_get_server_properties(c);
    const amqp_field_value_t *v = table_get(props, "version");
    const amqp_field_value_t *product = table_get(props, "product");

    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, AMQP_FIELD_KIND_UTF8);
    ck_assert_msg(v->value.bytes.len >= 4 && memcmp(v->value.bytes.bytes, "3.1", 3) == 0,
                  "version '%.*s' is not a RabbitMQ 3.1x release", (int)v->value.bytes.len,
                  (const char *)v->value.bytes.bytes);
    if (product != NULL && product->kind == AMQP_FIELD_KIND_UTF8 &&
        product->value.bytes.len == 6 && memcmp(product->value.bytes.bytes, "Warren", 6) == 0) {
        it_assert_bytes(v->value.bytes, "3.10.8");
        assert_nonempty_string(props, "warren_version");
    }
    it_disconnect(c);
}
END_TEST

START_TEST(wrong_password_is_refused_with_403)
{
    struct it_conn_opts o = {.pass = "not-the-password"};
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(&o, &r);

    /* rabbitmq-c announces authentication_failure_close, so the broker explains the refusal
     * with connection.close instead of just dropping the socket. */
    it_expect_connection_close(c, r, 403,
                               "ACCESS_REFUSED - Login was refused using authentication "
                               "mechanism PLAIN. For details see the broker logfile.");
    it_destroy(c);
}
END_TEST

START_TEST(unknown_user_is_refused_with_403)
{
    struct it_conn_opts o = {.user = "it-no-such-user", .pass = "x"};
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(&o, &r);

    it_expect_connection_close(c, r, 403,
                               "ACCESS_REFUSED - Login was refused using authentication "
                               "mechanism PLAIN. For details see the broker logfile.");
    it_destroy(c);
}
END_TEST

START_TEST(tune_offers_rabbitmq_defaults)
{
    /* rabbitmq-c takes the smaller of each value it asks and the broker's connection.tune
     * (0 asked for channel_max: the broker's). It turns a frame_max of 0 into 4096, so the
     * largest frame_max is asked instead; and a heartbeat above the broker's shows the
     * broker's. */
    struct it_conn_opts o = {.channel_max = 0, .frame_max = 0x7fffffff, .heartbeat = 3600};
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(&o, &r);

    it_assert_ok(r, "login");
    ck_assert_int_eq(amqp_get_channel_max(c), 2047);
    ck_assert_int_eq(amqp_get_frame_max(c), 131072);
    ck_assert_int_eq(amqp_get_heartbeat(c), 60);
    it_disconnect(c);
}
END_TEST

START_TEST(smaller_frame_max_is_accepted_and_used)
{
    struct it_conn_opts o = {.frame_max = 4096};
    amqp_connection_state_t c = it_connect_opts(&o);
    char q[64], body[20000];
    struct it_msg m;

    ck_assert_int_eq(amqp_get_frame_max(c), 4096);
    /* A body of several frames of at most 4096 octets each goes through both ways. */
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    it_name(q, sizeof q, "conn.frame");
    it_queue_declare(c, 1, q, false, true, false, amqp_empty_table, NULL, NULL);
    it_publish_bytes(c, 1, "", q, NULL, (amqp_bytes_t){.len = sizeof body, .bytes = body});
    ck_assert(it_get(c, 1, q, true, &m));
    ck_assert_uint_eq(m.message.body.len, sizeof body);
    ck_assert(memcmp(m.message.body.bytes, body, sizeof body) == 0);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(unknown_vhost_is_refused_with_530)
{
    char vhost[64], text[160];
    struct it_conn_opts o = {.vhost = it_name(vhost, sizeof vhost, "vhost")};
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(&o, &r);

    snprintf(text, sizeof text, "NOT_ALLOWED - vhost %s not found", vhost);
    it_expect_connection_close(c, r, 530, text);
    it_destroy(c);
}
END_TEST

START_TEST(client_close_is_answered_with_close_ok)
{
    amqp_connection_state_t c = it_connect();
    amqp_rpc_reply_t r = amqp_connection_close(c, AMQP_REPLY_SUCCESS);

    it_assert_ok(r, "connection.close");
    ck_assert_uint_eq(r.reply.id, AMQP_CONNECTION_CLOSE_OK_METHOD);
    amqp_destroy_connection(c);
}
END_TEST

START_TEST(many_channels_work_independently)
{
    enum { CHANNELS = 200 };
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_name(q, sizeof q, "conn.many");
    it_queue_declare(c, 1, q, false, true, false, amqp_empty_table, NULL, NULL);
    /* Channel n publishes the body "n"; channel 1 reads them back in order. */
    for (amqp_channel_t ch = 2; ch <= CHANNELS; ch++) {
        char body[16];

        it_channel_open(c, ch);
        snprintf(body, sizeof body, "%u", ch);
        it_publish_bytes(c, ch, "", q, NULL, amqp_cstring_bytes(body));
        it_assert_channel_alive(c, ch);
    }
    for (amqp_channel_t ch = 2; ch <= CHANNELS; ch++) {
        char body[16];

        snprintf(body, sizeof body, "%u", ch);
        ck_assert(it_get(c, 1, q, true, &m));
        it_assert_body(&m, body);
        it_msg_free(&m);
    }
    /* Closing some channels leaves the others working. */
    for (amqp_channel_t ch = 2; ch <= CHANNELS; ch += 2)
        it_assert_ok(amqp_channel_close(c, ch, AMQP_REPLY_SUCCESS), "channel.close");
    for (amqp_channel_t ch = 3; ch <= CHANNELS; ch += 2)
        it_assert_channel_alive(c, ch);
    it_disconnect(c);
}
END_TEST

START_TEST(closed_channel_can_be_reopened)
{
    amqp_connection_state_t c = it_connect();
    amqp_rpc_reply_t r;

    it_channel_open(c, 2);
    r = amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS);
    it_assert_ok(r, "channel.close");
    ck_assert_uint_eq(r.reply.id, AMQP_CHANNEL_CLOSE_OK_METHOD);
    it_channel_open(c, 2);
    it_assert_channel_alive(c, 2);
    it_disconnect(c);
}
END_TEST

START_TEST(channel_closed_by_error_can_be_reopened)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_name(q, sizeof q, "conn.missing");
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, NULL);
    it_channel_open(c, 1);
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(method_on_unopened_channel_closes_connection_with_504)
{
    amqp_connection_state_t c = it_connect();

    amqp_exchange_declare(c, 7, amqp_cstring_bytes("amq.direct"), amqp_cstring_bytes("direct"), 1,
                          0, 0, 0, amqp_empty_table);
    it_expect_connection_close(c, amqp_get_rpc_reply(c), 504,
                               "CHANNEL_ERROR - expected 'channel.open'");
    it_destroy(c);
}
END_TEST

START_TEST(second_open_of_a_channel_closes_connection_with_504)
{
    amqp_connection_state_t c = it_connect();

    amqp_channel_open(c, 1);
    it_expect_connection_close(c, amqp_get_rpc_reply(c), 504,
                               "CHANNEL_ERROR - second 'channel.open' seen");
    it_destroy(c);
}
END_TEST

START_TEST(opening_more_than_channel_max_channels_closes_connection_with_530)
{
    struct it_conn_opts o = {.channel_max = 3};
    amqp_connection_state_t c = it_connect_opts(&o); /* channel 1 is open */

    ck_assert_int_eq(amqp_get_channel_max(c), 3);
    it_channel_open(c, 2);
    it_channel_open(c, 3);
    /* RabbitMQ counts open channels against channel_max. */
    amqp_channel_open(c, 4);
    it_expect_connection_close(c, amqp_get_rpc_reply(c), 530,
                               "NOT_ALLOWED - number of channels opened (3) has reached the "
                               "negotiated channel_max (3)");
    it_destroy(c);
}
END_TEST

START_TEST(custom_client_properties_are_accepted)
{
    amqp_table_entry_t caps[] = {
        {.key = amqp_cstring_bytes("publisher_confirms"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("authentication_failure_close"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t entries[] = {
        {.key = amqp_cstring_bytes("connection_name"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("it-conn")}},
        {.key = amqp_cstring_bytes("product"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("warren integration tests")}},
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE,
                   .value.table = {.num_entries = 3, .entries = caps}}},
    };
    amqp_table_t props = {.num_entries = 3, .entries = entries};
    struct it_conn_opts o = {.client_properties = &props};
    amqp_connection_state_t c = it_connect_opts(&o);

    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

START_TEST(heartbeat_is_negotiated_sent_and_enforced)
{
    static const unsigned char heartbeat[8] = {8, 0, 0, 0, 0, 0, 0, 0xce};
    struct it_conn_opts o = {.heartbeat = 1};
    amqp_connection_state_t c = it_connect_opts(&o);
    int fd = amqp_get_sockfd(c);
    unsigned char frame[8];
    long long start = mono_ms();
    size_t got;

    ck_assert_int_eq(amqp_get_heartbeat(c), 1);
    /* The client now stays silent and reads the socket itself: the broker sends heartbeat
     * frames (type 8, channel 0, size 0, frame-end) about once a second... */
    got = read_fully(fd, frame, sizeof frame, start + 2500);
    ck_assert_uint_eq(got, sizeof frame);
    ck_assert_msg(memcmp(frame, heartbeat, sizeof frame) == 0,
                  "expected a heartbeat frame, got %02x %02x %02x %02x %02x %02x %02x %02x",
                  frame[0], frame[1], frame[2], frame[3], frame[4], frame[5], frame[6], frame[7]);
    /* ...and, hearing nothing back, gives up on the connection and closes the socket. Only
     * heartbeats may come before the end of the stream. */
    for (;;) {
        got = read_fully(fd, frame, sizeof frame, start + 10000);
        if (got != sizeof frame)
            break;
        ck_assert_msg(memcmp(frame, heartbeat, sizeof frame) == 0, "unexpected frame type %u",
                      frame[0]);
    }
    ck_assert_msg(got == 0, "the stream ended inside a frame (%zu bytes)", got);
    ck_assert_msg(mono_ms() - start < 10000, "the broker did not close a silent connection");
    amqp_destroy_connection(c);
}
END_TEST

START_TEST(heartbeat_zero_disables_heartbeats)
{
    struct it_conn_opts o = {.heartbeat = 0};
    amqp_connection_state_t c = it_connect_opts(&o);

    ck_assert_int_eq(amqp_get_heartbeat(c), 0);
    it_disconnect(c);
}
END_TEST

static Suite *connection_suite(void)
{
    Suite *s = suite_create("connection");
    TCase *tc = it_tcase(s, "login");

    tcase_add_test(tc, protocol_header_is_answered_with_connection_start);
    tcase_add_test(tc, login_with_plain_succeeds_and_channel_works);
    tcase_add_test(tc, server_properties_name_the_product);
    tcase_add_test(tc, version_property_is_the_rabbitmq_release_followed);
    tcase_add_test(tc, wrong_password_is_refused_with_403);
    tcase_add_test(tc, unknown_user_is_refused_with_403);
    tcase_add_test(tc, tune_offers_rabbitmq_defaults);
    tcase_add_test(tc, smaller_frame_max_is_accepted_and_used);
    tcase_add_test(tc, unknown_vhost_is_refused_with_530);
    tcase_add_test(tc, client_close_is_answered_with_close_ok);
    tcase_add_test(tc, custom_client_properties_are_accepted);

    tc = it_tcase(s, "channels");
    tcase_add_test(tc, many_channels_work_independently);
    tcase_add_test(tc, closed_channel_can_be_reopened);
    tcase_add_test(tc, channel_closed_by_error_can_be_reopened);
    tcase_add_test(tc, method_on_unopened_channel_closes_connection_with_504);
    tcase_add_test(tc, second_open_of_a_channel_closes_connection_with_504);
    tcase_add_test(tc, opening_more_than_channel_max_channels_closes_connection_with_530);

    tc = it_tcase(s, "heartbeat");
    tcase_add_test(tc, heartbeat_is_negotiated_sent_and_enforced);
    tcase_add_test(tc, heartbeat_zero_disables_heartbeats);
    return s;
}

int main(void)
{
    return it_run(connection_suite(), NULL);
}
