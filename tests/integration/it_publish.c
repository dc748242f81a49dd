/* Publishing extensions and odd corners: sender-selected distribution (CC/BCC headers),
 * validated user-id, access.request, connection.update-secret, and the nowait forms of the
 * synchronous methods. Validated against RabbitMQ 3.10.8. */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS  2000
#define QUIET_MS 200

/* ---- CC and BCC -------------------------------------------------------------------------- */

/* Headers {CC: [cc], BCC: [bcc]} (either may be NULL: left out). */
struct cc_headers {
    amqp_field_value_t cc_keys[1], bcc_keys[1];
    struct it_table t;
};

static void cc_headers(struct cc_headers *h, const char *cc, const char *bcc)
{
    it_table_init(&h->t);
    if (cc != NULL) {
        h->cc_keys[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                             .value.bytes = amqp_cstring_bytes(cc)};
        it_table_add(
            &h->t, "CC",
            (amqp_field_value_t){.kind = AMQP_FIELD_KIND_ARRAY, .value.array = {1, h->cc_keys}});
    }
    if (bcc != NULL) {
        h->bcc_keys[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                              .value.bytes = amqp_cstring_bytes(bcc)};
        it_table_add(
            &h->t, "BCC",
            (amqp_field_value_t){.kind = AMQP_FIELD_KIND_ARRAY, .value.array = {1, h->bcc_keys}});
    }
}

static void publish_with_headers(amqp_connection_state_t c, const char *x, const char *key,
                                 amqp_table_t headers, const char *body)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG, .headers = headers};

    it_publish_bytes(c, 1, x, key, &props, amqp_cstring_bytes(body));
}

/* Fails unless the message's headers have a CC array holding exactly key, and no BCC. */
static void assert_cc_kept_bcc_gone(const struct it_msg *m, const char *key)
{
    amqp_table_t h = it_headers(m);
    const amqp_field_value_t *cc = it_table_get(&h, "CC");

    ck_assert_ptr_null(it_table_get(&h, "BCC"));
    ck_assert_ptr_nonnull(cc);
    ck_assert_int_eq(cc->kind, AMQP_FIELD_KIND_ARRAY);
    ck_assert_int_eq(cc->value.array.num_entries, 1);
    ck_assert_int_eq(cc->value.array.entries[0].kind, AMQP_FIELD_KIND_UTF8);
    it_assert_bytes(cc->value.array.entries[0].value.bytes, key);
}

START_TEST(cc_and_bcc_add_routing_keys_and_bcc_is_removed)
{
    amqp_connection_state_t c = it_connect();
    char x[64], q1[64], q2[64], q3[64], q4[64];
    struct cc_headers h;
    struct it_msg m;

    it_exchange(c, it_name(x, sizeof x, "pub.cc"), "direct");
    it_temp_queue(c, it_name(q1, sizeof q1, "pub.cc.main"));
    it_temp_queue(c, it_name(q2, sizeof q2, "pub.cc.cc"));
    it_temp_queue(c, it_name(q3, sizeof q3, "pub.cc.bcc"));
    it_temp_queue(c, it_name(q4, sizeof q4, "pub.cc.other"));
    it_bind(c, q1, x, "main", amqp_empty_table);
    it_bind(c, q2, x, "copy", amqp_empty_table);
    it_bind(c, q3, x, "blind", amqp_empty_table);
    it_bind(c, q4, x, "other", amqp_empty_table);
    cc_headers(&h, "copy", "blind");
    publish_with_headers(c, x, "main", h.t.table, "memo");

    it_expect_get(c, 1, q1, "memo", &m);
    ck_assert_str_eq(m.routing_key, "main"); /* the key it was published with */
    assert_cc_kept_bcc_gone(&m, "copy");
    it_msg_free(&m);
    it_expect_get(c, 1, q2, "memo", &m);
    ck_assert_str_eq(m.routing_key, "main");
    assert_cc_kept_bcc_gone(&m, "copy");
    it_msg_free(&m);
    it_expect_get(c, 1, q3, "memo", &m);
    assert_cc_kept_bcc_gone(&m, "copy");
    it_msg_free(&m);
    it_expect_empty(c, 1, q4);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

START_TEST(cc_key_already_routed_gives_one_copy)
{
    amqp_connection_state_t c = it_connect();
    struct cc_headers h;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "pub.ccsame"));
    cc_headers(&h, q, q);
    publish_with_headers(c, "", q, h.t.table, "once");
    it_expect_get(c, 1, q, "once", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

START_TEST(bcc_only_message_arrives_without_bcc_header)
{
    amqp_connection_state_t c = it_connect();
    struct cc_headers h;
    struct it_msg m;
    char q[64], key[64];
    amqp_table_t got;

    it_temp_queue(c, it_name(q, sizeof q, "pub.bcconly"));
    it_name(key, sizeof key, "pub.unbound");
    cc_headers(&h, NULL, q);
    /* The routing key goes nowhere; only BCC reaches the queue (default exchange). */
    publish_with_headers(c, "", key, h.t.table, "blind");
    it_expect_get(c, 1, q, "blind", &m);
    got = it_headers(&m);
    ck_assert_ptr_null(it_table_get(&got, "BCC"));
    ck_assert_str_eq(m.routing_key, key);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

/* Binds exchange destination to source with key, asserting bind-ok. */
static void bind_exchange(amqp_connection_state_t c, const char *destination, const char *source,
                          const char *key)
{
    char what[300];

    amqp_exchange_bind(c, 1, amqp_cstring_bytes(destination), amqp_cstring_bytes(source),
                       amqp_cstring_bytes(key), amqp_empty_table);
    snprintf(what, sizeof what, "exchange.bind '%s' <- '%s'", destination, source);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

START_TEST(every_key_is_matched_at_every_hop_of_an_exchange_chain)
{
    amqp_connection_state_t c = it_connect();
    char x1[64], x2[64], x3[64], qa[64], qb[64];
    struct cc_headers h;
    struct it_msg m;
    amqp_table_t got;

    /* x1 -a-> x2 -b-> qb and x1 -b-> x3 -a-> qa. Published with key a and CC [b], the
     * message reaches x2 by its routing key and x3 by its CC key; at each of them the whole
     * key set is matched again, so both queues get it. */
    it_exchange(c, it_name(x1, sizeof x1, "pub.hop.x1"), "direct");
    it_exchange(c, it_name(x2, sizeof x2, "pub.hop.x2"), "direct");
    it_exchange(c, it_name(x3, sizeof x3, "pub.hop.x3"), "direct");
    it_temp_queue(c, it_name(qa, sizeof qa, "pub.hop.qa"));
    it_temp_queue(c, it_name(qb, sizeof qb, "pub.hop.qb"));
    bind_exchange(c, x2, x1, "a");
    bind_exchange(c, x3, x1, "b");
    it_bind(c, qb, x2, "b", amqp_empty_table);
    it_bind(c, qa, x3, "a", amqp_empty_table);

    cc_headers(&h, "b", NULL);
    publish_with_headers(c, x1, "a", h.t.table, "carbon");
    it_expect_get(c, 1, qa, "carbon", NULL);
    it_expect_get(c, 1, qb, "carbon", NULL);
    it_expect_empty(c, 1, qa);
    it_expect_empty(c, 1, qb);

    /* BCC keys are matched at every hop too, and still removed. */
    cc_headers(&h, NULL, "b");
    publish_with_headers(c, x1, "a", h.t.table, "blind");
    it_expect_get(c, 1, qa, "blind", &m);
    got = it_headers(&m);
    ck_assert_ptr_null(it_table_get(&got, "BCC"));
    it_msg_free(&m);
    it_expect_get(c, 1, qb, "blind", NULL);
    it_exchange_delete(c, x1);
    it_exchange_delete(c, x2);
    it_exchange_delete(c, x3);
    it_disconnect(c);
}
END_TEST

START_TEST(alternate_exchange_takes_a_message_only_when_none_of_its_keys_routes)
{
    amqp_connection_state_t c = it_connect();
    char x[64], ae[64], q[64], qae[64];
    struct it_table args;
    struct cc_headers h;

    it_exchange(c, it_name(ae, sizeof ae, "pub.ae"), "fanout");
    it_table_init(&args);
    it_table_add_str(&args, "alternate-exchange", ae);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(it_name(x, sizeof x, "pub.ae.main")),
                          amqp_cstring_bytes("direct"), 0, 0, 0, 0, args.table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.declare with alternate-exchange");
    it_temp_queue(c, it_name(q, sizeof q, "pub.ae.q"));
    it_temp_queue(c, it_name(qae, sizeof qae, "pub.ae.qae"));
    it_bind(c, q, x, "known", amqp_empty_table);
    it_bind(c, qae, ae, "", amqp_empty_table);

    /* Its routing key routes: a CC key that goes nowhere does not reach the alternate. */
    cc_headers(&h, "unknown", NULL);
    publish_with_headers(c, x, "known", h.t.table, "routed");
    /* Its CC key routes: the same for a routing key that goes nowhere. */
    cc_headers(&h, "known", NULL);
    publish_with_headers(c, x, "unknown", h.t.table, "routed by cc");
    /* No key routes: one copy to the alternate exchange. */
    cc_headers(&h, "unknown2", "unknown3");
    publish_with_headers(c, x, "unknown", h.t.table, "diverted");
    it_expect_get(c, 1, q, "routed", NULL);
    it_expect_get(c, 1, q, "routed by cc", NULL);
    it_expect_empty(c, 1, q);
    it_expect_get(c, 1, qae, "diverted", NULL);
    it_expect_empty(c, 1, qae);
    it_exchange_delete(c, x);
    it_exchange_delete(c, ae);
    it_disconnect(c);
}
END_TEST

/* Publishes to q through the default exchange with one header of any value. */
static void publish_with_header(amqp_connection_state_t c, const char *q, const char *header,
                                amqp_field_value_t value)
{
    struct it_table t;

    it_table_init(&t);
    it_table_add(&t, header, value);
    publish_with_headers(c, "", q, t.table, "bad");
}

START_TEST(cc_or_bcc_that_is_not_an_array_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_table t;

    it_temp_queue(c, it_name(q, sizeof q, "pub.ccbad"));
    publish_with_header(c, q, "CC",
                        (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                             .value.bytes = amqp_cstring_bytes(q)});
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - invalid message: "
                            "{unacceptable_type_in_header,\"CC\",longstr}");
    it_channel_open(c, 1);
    publish_with_header(c, q, "BCC",
                        (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I32, .value.i32 = 7});
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - invalid message: "
                            "{unacceptable_type_in_header,\"BCC\",signedint}");
    it_channel_open(c, 1);
    /* Both wrong: CC is named. */
    it_table_init(&t);
    it_table_add(&t, "BCC", (amqp_field_value_t){.kind = AMQP_FIELD_KIND_VOID});
    it_table_add(&t, "CC", (amqp_field_value_t){.kind = AMQP_FIELD_KIND_TABLE,
                                                .value.table = amqp_empty_table});
    publish_with_headers(c, "", q, t.table, "bad");
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - invalid message: "
                            "{unacceptable_type_in_header,\"CC\",table}");
    it_channel_open(c, 1);
    publish_with_header(c, q, "BCC", (amqp_field_value_t){.kind = AMQP_FIELD_KIND_VOID});
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - invalid message: "
                            "{unacceptable_type_in_header,\"BCC\",void}");
    it_channel_open(c, 1);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

START_TEST(cc_entries_that_are_not_strings_are_skipped)
{
    amqp_connection_state_t c = it_connect();
    char q[64], other[64];
    amqp_field_value_t keys[3];
    struct it_table t;

    it_temp_queue(c, it_name(q, sizeof q, "pub.ccmixed"));
    it_name(other, sizeof other, "pub.ccmixed.unbound");
    keys[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I32, .value.i32 = 1};
    keys[1] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                   .value.bytes = amqp_cstring_bytes(q)};
    keys[2] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1};
    it_table_init(&t);
    it_table_add(&t, "CC",
                 (amqp_field_value_t){.kind = AMQP_FIELD_KIND_ARRAY, .value.array = {3, keys}});
    publish_with_headers(c, "", other, t.table, "mixed");
    it_expect_get(c, 1, q, "mixed", NULL);
    it_expect_empty(c, 1, q);
    it_disconnect(c);
}
END_TEST

/* ---- validated user-id ------------------------------------------------------------------- */

static void publish_as(amqp_connection_state_t c, const char *q, const char *user_id)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_USER_ID_FLAG,
                                     .user_id = amqp_cstring_bytes(user_id)};

    it_publish_bytes(c, 1, "", q, &props, amqp_cstring_bytes("signed"));
}

START_TEST(user_id_of_the_connection_is_delivered)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "pub.uid"));
    publish_as(c, q, "guest");
    it_expect_get(c, 1, q, "signed", &m);
    ck_assert(m.message.properties._flags & AMQP_BASIC_USER_ID_FLAG);
    it_assert_bytes(m.message.properties.user_id, "guest");
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(user_id_of_another_user_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "pub.uidbad"));
    publish_as(c, q, "mallory");
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 406,
                            "PRECONDITION_FAILED - user_id property set to 'mallory' but "
                            "authenticated user was 'guest'");
    it_channel_open(c, 1);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

/* ---- access.request and update-secret ---------------------------------------------------- */

START_TEST(access_request_is_answered_with_request_ok)
{
    amqp_connection_state_t c = it_connect();
    amqp_access_request_t req = {
        .realm = amqp_cstring_bytes("/data"),
        .exclusive = 0,
        .passive = 1,
        .active = 1,
        .write = 1,
        .read = 1,
    };
    amqp_rpc_reply_t r;

    r = amqp_simple_rpc(c, 1, AMQP_ACCESS_REQUEST_METHOD,
                        (amqp_method_number_t[]){AMQP_ACCESS_REQUEST_OK_METHOD, 0}, &req);
    it_assert_ok(r, "access.request");
    ck_assert_uint_eq(r.reply.id, AMQP_ACCESS_REQUEST_OK_METHOD);
    ck_assert_uint_eq(((amqp_access_request_ok_t *)r.reply.decoded)->ticket, 1);
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Reads exactly n bytes from fd within timeout_ms; false on timeout, error or EOF. */
static bool read_exactly(int fd, unsigned char *buf, size_t n, int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    size_t got = 0;

    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - it_now_ms();
        ssize_t k;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        got += (size_t)k;
    }
    return true;
}

/* rabbitmq-c 0.11 has no codec for connection.update-secret (class 10, method 70), so the
 * method goes out as raw bytes on the logged-in connection's socket, and update-secret-ok
 * (method 71, no arguments) is read back raw: rabbitmq-c has nothing buffered at that point,
 * and after those 12 bytes it can take over the socket again. */
static void update_secret(amqp_connection_state_t c, const char *secret)
{
    static const char reason[] = "token refresh";
    static const unsigned char expected[12] = {1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 71, 0xce};
    unsigned char frame[128], reply[12];
    size_t payload = 4 + 4 + strlen(secret) + 1 + strlen(reason), n = 0;
    int fd = amqp_get_sockfd(c);

    ck_assert_uint_lt(payload + 8, sizeof frame);
    frame[n++] = 1; /* method frame */
    frame[n++] = 0; /* channel 0 */
    frame[n++] = 0;
    put_u32(frame + n, (uint32_t)payload);
    n += 4;
    frame[n++] = 0;
    frame[n++] = 10;
    frame[n++] = 0;
    frame[n++] = 70;
    put_u32(frame + n, (uint32_t)strlen(secret));
    n += 4;
    memcpy(frame + n, secret, strlen(secret));
    n += strlen(secret);
    frame[n++] = (unsigned char)strlen(reason);
    memcpy(frame + n, reason, strlen(reason));
    n += strlen(reason);
    frame[n++] = 0xce;
    ck_assert_int_eq(write(fd, frame, n), (ssize_t)n);

    ck_assert_msg(read_exactly(fd, reply, sizeof reply, WAIT_MS), "no update-secret-ok");
    ck_assert_msg(memcmp(reply, expected, sizeof reply) == 0,
                  "got %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x", reply[0],
                  reply[1], reply[2], reply[3], reply[4], reply[5], reply[6], reply[7], reply[8],
                  reply[9], reply[10], reply[11]);
}

START_TEST(update_secret_is_answered_with_update_secret_ok)
{
    amqp_connection_state_t c = it_connect();

    update_secret(c, "guest");
    it_assert_channel_alive(c, 1);
    /* RabbitMQ's internal user database does not check the new secret (only token backends
     * such as OAuth 2 do): a client refreshing its secret is not disconnected. */
    update_secret(c, "a-new-token");
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

/* ---- nowait variants --------------------------------------------------------------------- */

/* Sends method on ch without waiting: the broker must not answer a nowait method. */
static void send_nowait(amqp_connection_state_t c, amqp_channel_t ch, amqp_method_number_t id,
                        void *method)
{
    int rc = amqp_send_method(c, ch, id, method);

    ck_assert_msg(rc == AMQP_STATUS_OK, "sending %s: %s", amqp_method_name(id),
                  amqp_error_string2(rc));
}

/* Nothing at all arrives on c for a moment: no stray -ok of a nowait method. */
static void expect_silence(amqp_connection_state_t c)
{
    amqp_rpc_reply_t r = it_wait_method(c, QUIET_MS);
    char buf[256];

    ck_assert_msg(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                      r.library_error == AMQP_STATUS_TIMEOUT,
                  "expected nothing, got %s", it_reply_str(r, buf, sizeof buf));
}

START_TEST(nowait_exchange_declare_bind_unbind_delete)
{
    amqp_connection_state_t c = it_connect();
    char a[64], b[64], q[64];

    it_name(a, sizeof a, "pub.nw.a");
    it_name(b, sizeof b, "pub.nw.b");
    it_temp_queue(c, it_name(q, sizeof q, "pub.nw.x"));
    send_nowait(c, 1, AMQP_EXCHANGE_DECLARE_METHOD,
                &(amqp_exchange_declare_t){.exchange = amqp_cstring_bytes(a),
                                           .type = amqp_cstring_bytes("fanout"),
                                           .nowait = 1});
    send_nowait(c, 1, AMQP_EXCHANGE_DECLARE_METHOD,
                &(amqp_exchange_declare_t){.exchange = amqp_cstring_bytes(b),
                                           .type = amqp_cstring_bytes("fanout"),
                                           .nowait = 1});
    send_nowait(c, 1, AMQP_EXCHANGE_BIND_METHOD,
                &(amqp_exchange_bind_t){.destination = amqp_cstring_bytes(b),
                                        .source = amqp_cstring_bytes(a),
                                        .nowait = 1});
    /* Synchronous from here: its reply is the next method, and the effects are there. */
    it_bind(c, q, b, "", amqp_empty_table);
    it_publish(c, a, "", "through");
    it_expect_get(c, 1, q, "through", NULL);

    send_nowait(c, 1, AMQP_EXCHANGE_UNBIND_METHOD,
                &(amqp_exchange_unbind_t){.destination = amqp_cstring_bytes(b),
                                          .source = amqp_cstring_bytes(a),
                                          .nowait = 1});
    it_assert_channel_alive(c, 1);
    it_publish(c, a, "", "unbound");
    it_assert_channel_alive(c, 1);
    it_sleep_ms(QUIET_MS);
    it_expect_empty(c, 1, q);

    send_nowait(c, 1, AMQP_EXCHANGE_DELETE_METHOD,
                &(amqp_exchange_delete_t){.exchange = amqp_cstring_bytes(a), .nowait = 1});
    send_nowait(c, 1, AMQP_EXCHANGE_DELETE_METHOD,
                &(amqp_exchange_delete_t){.exchange = amqp_cstring_bytes(b), .nowait = 1});
    {
        char text[200];

        amqp_exchange_declare(c, 1, amqp_cstring_bytes(a), amqp_cstring_bytes("fanout"), 1, 0, 0, 0,
                              amqp_empty_table);
        snprintf(text, sizeof text, "NOT_FOUND - no exchange '%s' in vhost '/'", a);
        it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, text);
    }
    expect_silence(c);
    it_disconnect(c);
}
END_TEST

START_TEST(nowait_queue_declare_bind_purge_delete)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_name(q, sizeof q, "pub.nw.q");
    send_nowait(
        c, 1, AMQP_QUEUE_DECLARE_METHOD,
        &(amqp_queue_declare_t){.queue = amqp_cstring_bytes(q), .exclusive = 1, .nowait = 1});
    send_nowait(c, 1, AMQP_QUEUE_BIND_METHOD,
                &(amqp_queue_bind_t){.queue = amqp_cstring_bytes(q),
                                     .exchange = amqp_cstring_bytes("amq.fanout"),
                                     .nowait = 1});
    it_publish(c, "amq.fanout", "", "fanned");
    it_publish(c, "", q, "direct");
    it_expect_counts(c, q, 2, 0);

    send_nowait(c, 1, AMQP_QUEUE_PURGE_METHOD,
                &(amqp_queue_purge_t){.queue = amqp_cstring_bytes(q), .nowait = 1});
    it_expect_counts(c, q, 0, 0);

    send_nowait(c, 1, AMQP_QUEUE_DELETE_METHOD,
                &(amqp_queue_delete_t){.queue = amqp_cstring_bytes(q), .nowait = 1});
    it_expect_queue_gone(c, q);
    expect_silence(c);
    it_disconnect(c);
}
END_TEST

START_TEST(nowait_consume_and_cancel)
{
    amqp_connection_state_t c = it_connect();
    struct it_msg m;
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "pub.nw.consume"));
    send_nowait(c, 1, AMQP_BASIC_CONSUME_METHOD,
                &(amqp_basic_consume_t){.queue = amqp_cstring_bytes(q),
                                        .consumer_tag = amqp_cstring_bytes("nw"),
                                        .no_ack = 1,
                                        .nowait = 1});
    it_expect_counts(c, q, 0, 1);
    it_publish(c, "", q, "to-nw");
    it_expect_delivery(c, WAIT_MS, "to-nw", &m);
    ck_assert_str_eq(m.consumer_tag, "nw");
    it_msg_free(&m);

    send_nowait(c, 1, AMQP_BASIC_CANCEL_METHOD,
                &(amqp_basic_cancel_t){.consumer_tag = amqp_cstring_bytes("nw"), .nowait = 1});
    it_expect_counts(c, q, 0, 0);
    it_publish(c, "", q, "kept");
    it_expect_counts(c, q, 1, 0);
    expect_silence(c);
    it_disconnect(c);
}
END_TEST

START_TEST(nowait_method_that_fails_still_closes_the_channel)
{
    amqp_connection_state_t c = it_connect();
    char q[64], text[200];

    it_name(q, sizeof q, "pub.nw.missing");
    send_nowait(c, 1, AMQP_QUEUE_BIND_METHOD,
                &(amqp_queue_bind_t){.queue = amqp_cstring_bytes(q),
                                     .exchange = amqp_cstring_bytes("amq.direct"),
                                     .routing_key = amqp_cstring_bytes("k"),
                                     .nowait = 1});
    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", q);
    it_expect_channel_close(c, 1, it_wait_method(c, WAIT_MS), 404, text);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("publish");
    TCase *tc = it_tcase(s, "cc_bcc");

    tcase_add_test(tc, cc_and_bcc_add_routing_keys_and_bcc_is_removed);
    tcase_add_test(tc, cc_key_already_routed_gives_one_copy);
    tcase_add_test(tc, bcc_only_message_arrives_without_bcc_header);
    tcase_add_test(tc, every_key_is_matched_at_every_hop_of_an_exchange_chain);
    tcase_add_test(tc, alternate_exchange_takes_a_message_only_when_none_of_its_keys_routes);
    tcase_add_test(tc, cc_or_bcc_that_is_not_an_array_closes_channel_with_406);
    tcase_add_test(tc, cc_entries_that_are_not_strings_are_skipped);
    tc = it_tcase(s, "user_id");
    tcase_add_test(tc, user_id_of_the_connection_is_delivered);
    tcase_add_test(tc, user_id_of_another_user_closes_channel_with_406);
    tc = it_tcase(s, "legacy_and_secret");
    tcase_add_test(tc, access_request_is_answered_with_request_ok);
    tcase_add_test(tc, update_secret_is_answered_with_update_secret_ok);
    tc = it_tcase(s, "nowait");
    tcase_add_test(tc, nowait_exchange_declare_bind_unbind_delete);
    tcase_add_test(tc, nowait_queue_declare_bind_purge_delete);
    tcase_add_test(tc, nowait_consume_and_cancel);
    tcase_add_test(tc, nowait_method_that_fails_still_closes_the_channel);
    return it_run(s, NULL);
}
