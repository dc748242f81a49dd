/* Permissions: for each operation RabbitMQ checks, a user that holds exactly the permissions
 * it needs succeeds and a user missing one of them gets 403 ACCESS_REFUSED with RabbitMQ's
 * text, naming the resource of the check that failed (so the order of the checks shows);
 * topic permissions; connection.open to a vhost without permission (530), unknown users and
 * wrong passwords (403), guest from a non-loopback address.
 *
 * Users (all in vhost warren_probe_sec; "" grants nothing but the empty name):
 *   admin      .*  .*  .*    sets up the resources each test needs
 *   c / w / r  configure, write or read only
 *   nc nw nr   everything but configure, write or read
 *   scoped     configure and read on it.xa.* / it.qd.*, write on it.ae.* / it.dlx.*: exactly
 *              what declaring an exchange with an alternate exchange or a queue with a
 *              dead-letter exchange needs
 *   topic      .* .* .* and, on amq.topic, topic permissions write ^{username}\. read ^bind\.
 *   novhost    no permission anywhere
 *
 * Runs against the harness's warrend, or against RabbitMQ through
 * tests/interop/security_rabbitmq.sh (which imports these users first: `it_permissions
 * --definitions` prints them); every text here was checked that way against RabbitMQ 3.10.8. */
#define _DEFAULT_SOURCE
#include "harness.h"
#include "sec_util.h"

#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define VHOST    "warren_probe_sec"
#define PASSWORD "warren-probe-pw"

#define ADMIN   "warren_probe_admin"
#define U_C     "warren_probe_c"
#define U_W     "warren_probe_w"
#define U_R     "warren_probe_r"
#define U_NC    "warren_probe_nc"
#define U_NW    "warren_probe_nw"
#define U_NR    "warren_probe_nr"
#define SCOPED  "warren_probe_scoped"
#define TOPIC   "warren_probe_topic"
#define NOVHOST "warren_probe_novhost"

#define LOGIN_REFUSED                                                                              \
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see "    \
    "the broker logfile."

static const struct sec_user users[] = {
    {ADMIN, PASSWORD, 0, 0},   {U_C, PASSWORD, 0, 0},    {U_W, PASSWORD, 0, 0},
    {U_R, PASSWORD, 0, 0},     {U_NC, PASSWORD, 0, 0},   {U_NW, PASSWORD, 0, 0},
    {U_NR, PASSWORD, 0, 0},    {SCOPED, PASSWORD, 0, 0}, {TOPIC, PASSWORD, 0, 0},
    {NOVHOST, PASSWORD, 0, 0},
};

static const struct sec_vhost vhosts[] = {{VHOST, 0, 0}};

static const struct sec_permission permissions[] = {
    {ADMIN, VHOST, ".*", ".*", ".*"},
    {U_C, VHOST, ".*", "", ""},
    {U_W, VHOST, "", ".*", ""},
    {U_R, VHOST, "", "", ".*"},
    {U_NC, VHOST, "", ".*", ".*"},
    {U_NW, VHOST, ".*", "", ".*"},
    {U_NR, VHOST, ".*", ".*", ""},
    {SCOPED, VHOST, "^it\\.(xa|qd)\\.", "^it\\.(ae|dlx)\\.", "^it\\.(xa|qd)\\."},
    {TOPIC, VHOST, ".*", ".*", ".*"},
};

static const struct sec_topic_permission topic_permissions[] = {
    {TOPIC, VHOST, "amq.topic", "^{username}\\.", "^bind\\."},
};

static const struct sec_definitions defs = {
    users,
    SEC_LEN(users),
    vhosts,
    SEC_LEN(vhosts),
    permissions,
    SEC_LEN(permissions),
    topic_permissions,
    SEC_LEN(topic_permissions),
};

static void install(void)
{
    sec_install(&defs);
}

static amqp_connection_state_t as(const char *user)
{
    return sec_connect(&defs, user, VHOST);
}

/* ---- what the refusals look like ------------------------------------------------------- */

/* Fails unless r closed channel 1 with 403 and RabbitMQ's text for the resource. */
#define expect_refused(c, r, kind, name, user)                                                     \
    expect_refused_at((c), (r), (kind), (name), (user), __FILE__, __LINE__)
static void expect_refused_at(amqp_connection_state_t c, amqp_rpc_reply_t r, const char *kind,
                              const char *name, const char *user, const char *file, int line)
{
    char text[512];

    snprintf(text, sizeof text,
             "ACCESS_REFUSED - access to %s '%s' in vhost '" VHOST "' refused for user '%s'", kind,
             name, user);
    it_expect_channel_close_at(c, 1, r, 403, text, file, line);
}

#define expect_topic_refused(c, r, key, exchange, user)                                            \
    expect_topic_refused_at((c), (r), (key), (exchange), (user), __FILE__, __LINE__)
static void expect_topic_refused_at(amqp_connection_state_t c, amqp_rpc_reply_t r, const char *key,
                                    const char *exchange, const char *user, const char *file,
                                    int line)
{
    char text[512];

    snprintf(text, sizeof text,
             "ACCESS_REFUSED - access to topic '%s' in exchange '%s' in vhost '" VHOST
             "' refused for user '%s'",
             key, exchange, user);
    it_expect_channel_close_at(c, 1, r, 403, text, file, line);
}

/* ---- what the admin sees --------------------------------------------------------------- */

static bool exchange_exists(amqp_connection_state_t a, const char *name)
{
    amqp_rpc_reply_t r;

    amqp_exchange_declare(a, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("direct"), 1, 0, 0, 0,
                          amqp_empty_table);
    r = amqp_get_rpc_reply(a);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    it_expect_channel_close(a, 1, r, 404, NULL);
    it_channel_open(a, 1);
    return false;
}

/* The queue's message count, or -1 when there is no such queue. */
static long queue_messages(amqp_connection_state_t a, const char *name)
{
    amqp_queue_declare_ok_t *ok;
    amqp_rpc_reply_t r;

    ok = amqp_queue_declare(a, 1, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(a);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return (long)ok->message_count;
    it_expect_channel_close(a, 1, r, 404, NULL);
    it_channel_open(a, 1);
    return -1;
}

/* The admin's queue, holding one message "m" when filled. */
static void admin_queue(amqp_connection_state_t a, const char *q, bool filled)
{
    it_queue(a, q);
    if (filled) {
        it_publish(a, "", q, "m");
        it_expect_counts(a, q, 1, -1);
    }
}

static void declare_exchange_args(amqp_connection_state_t c, const char *name, amqp_table_t args)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("direct"), 0, 0, 0, 0,
                          args);
}

static void declare_queue_args(amqp_connection_state_t c, const char *name, amqp_table_t args)
{
    amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 0, 0, 0, 0, args);
}

/* ---- exchange.declare, exchange.delete ------------------------------------------------- */

START_TEST(exchange_declare_needs_configure)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_C);
    char x[64];

    it_exchange(c, it_name(x, sizeof x, "x"), "direct");
    ck_assert(exchange_exists(a, x));
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(exchange_declare_without_configure_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char x[64];

    declare_exchange_args(c, it_name(x, sizeof x, "x"), amqp_empty_table);
    expect_refused(c, amqp_get_rpc_reply(c), "exchange", x, U_NC);
    ck_assert(!exchange_exists(a, x));
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(passive_declares_need_no_permission)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_W); /* no configure, no read */
    char x[64], q[64];

    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_queue(a, it_name(q, sizeof q, "q"));
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("direct"), 1, 0, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive exchange.declare");
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "passive queue.declare");
    it_exchange_delete(a, x);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* An alternate exchange needs configure and read on the exchange and write on the AE. */
START_TEST(exchange_declare_with_alternate_exchange_allowed)
{
    amqp_connection_state_t a = as(ADMIN), c = as(SCOPED);
    struct it_table args;
    char x[64], ae[64];

    it_name(x, sizeof x, "xa");
    it_name(ae, sizeof ae, "ae");
    it_table_init(&args);
    it_table_add_str(&args, "alternate-exchange", ae);
    declare_exchange_args(c, x, args.table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.declare with alternate-exchange");
    ck_assert(exchange_exists(a, x));
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* Each of the three checks refused in turn: the text names the resource of the first check
 * that fails, in RabbitMQ's order (configure x, read x, write ae). */
static void refuse_exchange_with_ae(const char *user, bool refusal_names_ae)
{
    amqp_connection_state_t a = as(ADMIN), c = as(user);
    struct it_table args;
    char x[64], ae[64];

    it_name(x, sizeof x, "xa");
    it_name(ae, sizeof ae, "ae");
    it_table_init(&args);
    it_table_add_str(&args, "alternate-exchange", ae);
    declare_exchange_args(c, x, args.table);
    expect_refused(c, amqp_get_rpc_reply(c), "exchange", refusal_names_ae ? ae : x, user);
    ck_assert(!exchange_exists(a, x));
    it_disconnect(c);
    it_disconnect(a);
}

START_TEST(exchange_declare_with_alternate_exchange_without_configure_is_refused)
{
    refuse_exchange_with_ae(U_NC, false);
}
END_TEST

START_TEST(exchange_declare_with_alternate_exchange_without_read_is_refused)
{
    refuse_exchange_with_ae(U_NR, false);
}
END_TEST

START_TEST(exchange_declare_with_alternate_exchange_without_write_on_it_is_refused)
{
    refuse_exchange_with_ae(U_NW, true);
}
END_TEST

START_TEST(exchange_delete_needs_configure)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_C);
    char x[64];

    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_exchange_delete(c, x);
    ck_assert(!exchange_exists(a, x));
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(exchange_delete_without_configure_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char x[64];

    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(x), 0);
    expect_refused(c, amqp_get_rpc_reply(c), "exchange", x, U_NC);
    ck_assert(exchange_exists(a, x));
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* ---- queue.declare, queue.delete ------------------------------------------------------- */

START_TEST(queue_declare_needs_configure)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_C);
    char q[64];

    it_queue(c, it_name(q, sizeof q, "q"));
    ck_assert_int_eq(queue_messages(a, q), 0);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(queue_declare_without_configure_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char q[64];

    declare_queue_args(c, it_name(q, sizeof q, "q"), amqp_empty_table);
    expect_refused(c, amqp_get_rpc_reply(c), "queue", q, U_NC);
    ck_assert_int_eq(queue_messages(a, q), -1);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* A server-named queue is checked under the name the server picked. */
START_TEST(server_named_queue_declare_without_configure_is_refused)
{
    amqp_connection_state_t c = as(U_NC);
    const char *prefix = "ACCESS_REFUSED - access to queue 'amq.gen-";
    const char *suffix = "' in vhost '" VHOST "' refused for user '" U_NC "'";
    const amqp_channel_close_t *close;
    amqp_rpc_reply_t r;
    char buf[512];
    size_t len;

    declare_queue_args(c, "", amqp_empty_table);
    r = amqp_get_rpc_reply(c);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
                      r.reply.id == AMQP_CHANNEL_CLOSE_METHOD,
                  "expected channel.close, got %s", it_reply_str(r, buf, sizeof buf));
    close = r.reply.decoded;
    len = close->reply_text.len;
    ck_assert_uint_eq(close->reply_code, 403);
    ck_assert_msg(len > strlen(prefix) + strlen(suffix) &&
                      memcmp(close->reply_text.bytes, prefix, strlen(prefix)) == 0 &&
                      memcmp((const char *)close->reply_text.bytes + len - strlen(suffix), suffix,
                             strlen(suffix)) == 0,
                  "unexpected text: %s", it_reply_str(r, buf, sizeof buf));
    it_expect_channel_close(c, 1, r, 403, NULL);
    it_disconnect(c);
}
END_TEST

/* A dead-letter exchange needs configure and read on the queue and write on the DLX. */
START_TEST(queue_declare_with_dead_letter_exchange_allowed)
{
    amqp_connection_state_t a = as(ADMIN), c = as(SCOPED);
    struct it_table args;
    char q[64], dlx[64];

    it_name(q, sizeof q, "qd");
    it_name(dlx, sizeof dlx, "dlx");
    it_table_init(&args);
    it_table_add_str(&args, "x-dead-letter-exchange", dlx);
    declare_queue_args(c, q, args.table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.declare with x-dead-letter-exchange");
    ck_assert_int_eq(queue_messages(a, q), 0);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

static void refuse_queue_with_dlx(const char *user, bool refusal_names_dlx)
{
    amqp_connection_state_t a = as(ADMIN), c = as(user);
    struct it_table args;
    char q[64], dlx[64];

    it_name(q, sizeof q, "qd");
    it_name(dlx, sizeof dlx, "dlx");
    it_table_init(&args);
    it_table_add_str(&args, "x-dead-letter-exchange", dlx);
    declare_queue_args(c, q, args.table);
    if (refusal_names_dlx)
        expect_refused(c, amqp_get_rpc_reply(c), "exchange", dlx, user);
    else
        expect_refused(c, amqp_get_rpc_reply(c), "queue", q, user);
    ck_assert_int_eq(queue_messages(a, q), -1);
    it_disconnect(c);
    it_disconnect(a);
}

START_TEST(queue_declare_with_dead_letter_exchange_without_configure_is_refused)
{
    refuse_queue_with_dlx(U_NC, false);
}
END_TEST

START_TEST(queue_declare_with_dead_letter_exchange_without_read_is_refused)
{
    refuse_queue_with_dlx(U_NR, false);
}
END_TEST

START_TEST(queue_declare_with_dead_letter_exchange_without_write_on_it_is_refused)
{
    refuse_queue_with_dlx(U_NW, true);
}
END_TEST

START_TEST(queue_delete_needs_configure)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_C);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    ck_assert_uint_eq(it_queue_delete(c, q), 1);
    ck_assert_int_eq(queue_messages(a, q), -1);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(queue_delete_without_configure_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 0, 0);
    expect_refused(c, amqp_get_rpc_reply(c), "queue", q, U_NC);
    ck_assert_int_eq(queue_messages(a, q), 1);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* ---- queue.bind, queue.unbind ---------------------------------------------------------- */

/* Write on the queue and read on the exchange; nc has both and no configure. */
START_TEST(queue_bind_needs_write_on_queue_and_read_on_exchange)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_bind(c, q, x, "k", amqp_empty_table);
    it_publish(a, x, "k", "routed");
    it_expect_get(a, 1, q, "routed", NULL);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

static void refuse_queue_binding(const char *user, bool unbind)
{
    amqp_connection_state_t a = as(ADMIN), c = as(user);
    bool missing_write = strcmp(user, U_NW) == 0;
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    if (unbind) {
        it_bind(a, q, x, "k", amqp_empty_table);
        amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x),
                          amqp_cstring_bytes("k"), amqp_empty_table);
    } else {
        amqp_queue_bind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                        amqp_empty_table);
    }
    /* The queue's write check comes first. */
    expect_refused(c, amqp_get_rpc_reply(c), missing_write ? "queue" : "exchange",
                   missing_write ? q : x, user);
    /* Bound only if it was before: the refused change did not happen. */
    it_publish(a, x, "k", "probe");
    if (unbind)
        it_expect_get(a, 1, q, "probe", NULL);
    else
        it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}

START_TEST(queue_bind_without_write_on_queue_is_refused)
{
    refuse_queue_binding(U_NW, false);
}
END_TEST

START_TEST(queue_bind_without_read_on_exchange_is_refused)
{
    refuse_queue_binding(U_NR, false);
}
END_TEST

START_TEST(queue_unbind_needs_write_on_queue_and_read_on_exchange)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_bind(a, q, x, "k", amqp_empty_table);
    amqp_queue_unbind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(x), amqp_cstring_bytes("k"),
                      amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "queue.unbind");
    it_publish(a, x, "k", "unrouted");
    it_assert_channel_alive(a, 1);
    it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(queue_unbind_without_write_on_queue_is_refused)
{
    refuse_queue_binding(U_NW, true);
}
END_TEST

START_TEST(queue_unbind_without_read_on_exchange_is_refused)
{
    refuse_queue_binding(U_NR, true);
}
END_TEST

/* An empty queue name means the queue last declared on the channel, and the permission
 * checks see that queue: c may declare (configure) but not read, and the refusal of basic.get
 * "" names the queue it declared. */
START_TEST(empty_queue_name_is_checked_as_the_last_declared_queue)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_C);
    char q[64];

    it_queue(c, it_name(q, sizeof q, "q"));
    amqp_basic_get(c, 1, amqp_empty_bytes, 1);
    expect_refused(c, amqp_get_rpc_reply(c), "queue", q, U_C);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* ---- exchange.bind, exchange.unbind ---------------------------------------------------- */

/* Admin's source exchange s, destination d and a queue q bound to d with "k". */
static void exchange_pair(amqp_connection_state_t a, char *s, char *d, char *q, size_t size)
{
    it_exchange(a, it_name(s, size, "src"), "direct");
    it_exchange(a, it_name(d, size, "dst"), "direct");
    admin_queue(a, it_name(q, size, "q"), false);
    it_bind(a, q, d, "k", amqp_empty_table);
}

static void exchange_pair_delete(amqp_connection_state_t a, const char *s, const char *d,
                                 const char *q)
{
    it_queue_delete(a, q);
    it_exchange_delete(a, d);
    it_exchange_delete(a, s);
}

/* Write on the destination and read on the source; nc has both and no configure. */
START_TEST(exchange_bind_needs_write_on_destination_and_read_on_source)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char s[64], d[64], q[64];

    exchange_pair(a, s, d, q, sizeof s);
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s), amqp_cstring_bytes("k"),
                       amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.bind");
    it_publish(a, s, "k", "through");
    it_expect_get(a, 1, q, "through", NULL);
    exchange_pair_delete(a, s, d, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

static void refuse_exchange_binding(const char *user, bool unbind)
{
    amqp_connection_state_t a = as(ADMIN), c = as(user);
    bool missing_write = strcmp(user, U_NW) == 0;
    char s[64], d[64], q[64];

    exchange_pair(a, s, d, q, sizeof s);
    if (unbind) {
        amqp_exchange_bind(a, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s),
                           amqp_cstring_bytes("k"), amqp_empty_table);
        it_assert_ok(amqp_get_rpc_reply(a), "exchange.bind by the admin");
        amqp_exchange_unbind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s),
                             amqp_cstring_bytes("k"), amqp_empty_table);
    } else {
        amqp_exchange_bind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s),
                           amqp_cstring_bytes("k"), amqp_empty_table);
    }
    /* The destination's write check comes first. */
    expect_refused(c, amqp_get_rpc_reply(c), "exchange", missing_write ? d : s, user);
    it_publish(a, s, "k", "probe");
    if (unbind)
        it_expect_get(a, 1, q, "probe", NULL);
    else
        it_expect_empty(a, 1, q);
    exchange_pair_delete(a, s, d, q);
    it_disconnect(c);
    it_disconnect(a);
}

START_TEST(exchange_bind_without_write_on_destination_is_refused)
{
    refuse_exchange_binding(U_NW, false);
}
END_TEST

START_TEST(exchange_bind_without_read_on_source_is_refused)
{
    refuse_exchange_binding(U_NR, false);
}
END_TEST

START_TEST(exchange_unbind_needs_write_on_destination_and_read_on_source)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NC);
    char s[64], d[64], q[64];

    exchange_pair(a, s, d, q, sizeof s);
    amqp_exchange_bind(a, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s), amqp_cstring_bytes("k"),
                       amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(a), "exchange.bind by the admin");
    amqp_exchange_unbind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes(s),
                         amqp_cstring_bytes("k"), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.unbind");
    it_publish(a, s, "k", "stops at the source");
    it_assert_channel_alive(a, 1);
    it_expect_empty(a, 1, q);
    exchange_pair_delete(a, s, d, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(exchange_unbind_without_write_on_destination_is_refused)
{
    refuse_exchange_binding(U_NW, true);
}
END_TEST

START_TEST(exchange_unbind_without_read_on_source_is_refused)
{
    refuse_exchange_binding(U_NR, true);
}
END_TEST

/* ---- basic.publish, basic.get, basic.consume, queue.purge ------------------------------ */

START_TEST(publish_needs_write_on_exchange)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_W);
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_bind(a, q, x, "k", amqp_empty_table);
    it_publish(c, x, "k", "via x");
    it_publish(c, "", q, "via the default exchange");
    it_assert_channel_alive(c, 1);
    it_expect_get(a, 1, q, "via x", NULL);
    it_expect_get(a, 1, q, "via the default exchange", NULL);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(publish_without_write_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NW);
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "x"), "direct");
    it_bind(a, q, x, "k", amqp_empty_table);
    it_publish(c, x, "k", "refused");
    expect_refused(c, it_wait_method(c, 2000), "exchange", x, U_NW);
    it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* The default exchange is checked, and named, as amq.default. */
START_TEST(publish_to_default_exchange_without_write_names_amq_default)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NW);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_publish(c, "", q, "refused");
    expect_refused(c, it_wait_method(c, 2000), "exchange", "amq.default", U_NW);
    it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(get_needs_read_on_queue)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_R);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    it_expect_get(c, 1, q, "m", NULL);
    ck_assert_int_eq(queue_messages(a, q), 0);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(get_without_read_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NR);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    expect_refused(c, amqp_basic_get(c, 1, amqp_cstring_bytes(q), 1), "queue", q, U_NR);
    ck_assert_int_eq(queue_messages(a, q), 1);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(consume_needs_read_on_queue)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_R);
    struct it_msg m;
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    it_consume(c, 1, q, NULL, true, false, NULL, 0);
    it_expect_delivery(c, 2000, "m", &m);
    it_msg_free(&m);
    it_disconnect(c);
    it_queue_delete(a, q);
    it_disconnect(a);
}
END_TEST

START_TEST(consume_without_read_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NR);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    expect_refused(c, amqp_get_rpc_reply(c), "queue", q, U_NR);
    ck_assert_int_eq(queue_messages(a, q), 1);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(purge_needs_read_on_queue)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_R);
    amqp_queue_purge_ok_t *ok;
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    ok = amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    it_assert_ok(amqp_get_rpc_reply(c), "queue.purge");
    ck_assert_uint_eq(ok->message_count, 1);
    ck_assert_int_eq(queue_messages(a, q), 0);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(purge_without_read_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(U_NR);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), true);
    amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    expect_refused(c, amqp_get_rpc_reply(c), "queue", q, U_NR);
    ck_assert_int_eq(queue_messages(a, q), 1);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* ---- topic permissions ----------------------------------------------------------------- */

/* An admin queue bound to amq.topic for every key. */
static void topic_queue(amqp_connection_state_t a, char *q, size_t size)
{
    admin_queue(a, it_name(q, size, "tq"), false);
    it_bind(a, q, "amq.topic", "#", amqp_empty_table);
}

START_TEST(topic_publish_with_key_inside_write_pattern_is_routed)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char q[64];

    topic_queue(a, q, sizeof q);
    /* ^{username}\. is expanded with the user's name. */
    it_publish(c, "amq.topic", TOPIC ".news", "mine");
    it_assert_channel_alive(c, 1);
    it_expect_get(a, 1, q, "mine", NULL);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(topic_publish_with_key_outside_write_pattern_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char q[64];

    topic_queue(a, q, sizeof q);
    it_publish(c, "amq.topic", "someone_else.news", "not mine");
    expect_topic_refused(c, it_wait_method(c, 2000), "someone_else.news", "amq.topic", TOPIC);
    it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* Topic permissions are per exchange: another topic exchange has none, so any key goes. */
START_TEST(topic_exchange_without_topic_permission_allows_any_key)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char q[64], x[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_exchange(a, it_name(x, sizeof x, "tx"), "topic");
    it_bind(a, q, x, "#", amqp_empty_table);
    it_publish(c, x, "someone_else.news", "free here");
    it_expect_get(a, 1, q, "free here", NULL);
    it_queue_delete(a, q);
    it_exchange_delete(a, x);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(topic_bind_with_key_inside_read_pattern_is_allowed)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    it_bind(c, q, "amq.topic", "bind.news", amqp_empty_table);
    it_publish(a, "amq.topic", "bind.news", "bound");
    it_expect_get(a, 1, q, "bound", NULL);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

START_TEST(topic_bind_with_key_outside_read_pattern_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char q[64];

    admin_queue(a, it_name(q, sizeof q, "q"), false);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes("amq.topic"),
                    amqp_cstring_bytes("other.news"), amqp_empty_table);
    expect_topic_refused(c, amqp_get_rpc_reply(c), "other.news", "amq.topic", TOPIC);
    it_publish(a, "amq.topic", "other.news", "not bound");
    it_assert_channel_alive(a, 1);
    it_expect_empty(a, 1, q);
    it_queue_delete(a, q);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* exchange.bind checks the key against the read pattern of the source exchange. */
START_TEST(topic_exchange_bind_with_key_outside_read_pattern_is_refused)
{
    amqp_connection_state_t a = as(ADMIN), c = as(TOPIC);
    char d[64];

    it_exchange(a, it_name(d, sizeof d, "dst"), "fanout");
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes("amq.topic"),
                       amqp_cstring_bytes("other.#"), amqp_empty_table);
    expect_topic_refused(c, amqp_get_rpc_reply(c), "other.#", "amq.topic", TOPIC);
    it_channel_open(c, 1);
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(d), amqp_cstring_bytes("amq.topic"),
                       amqp_cstring_bytes("bind.#"), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.bind with a key inside the read pattern");
    it_exchange_delete(a, d);
    it_disconnect(c);
    it_disconnect(a);
}
END_TEST

/* ---- connection.open and login --------------------------------------------------------- */

/* Fails unless logging in with o is answered by connection.close with code and text. */
#define expect_login_closed(o, code, text)                                                         \
    expect_login_closed_at((o), (code), (text), __FILE__, __LINE__)
static void expect_login_closed_at(const struct it_conn_opts *o, int code, const char *text,
                                   const char *file, int line)
{
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(o, &r);

    it_expect_connection_close_at(c, r, code, text, file, line);
    it_destroy(c);
}

START_TEST(open_of_vhost_without_permission_is_refused_with_530)
{
    struct it_conn_opts o = {.user = NOVHOST, .pass = PASSWORD, .vhost = VHOST};

    expect_login_closed(&o, 530,
                        "NOT_ALLOWED - access to vhost '" VHOST "' refused for user '" NOVHOST "'");
}
END_TEST

/* Permissions are per vhost: admin has them on warren_probe_sec only, not on "/". */
START_TEST(open_of_other_vhost_is_refused_with_530)
{
    struct it_conn_opts o = {.user = ADMIN, .pass = PASSWORD, .vhost = "/"};

    expect_login_closed(&o, 530, "NOT_ALLOWED - access to vhost '/' refused for user '" ADMIN "'");
}
END_TEST

START_TEST(open_of_missing_vhost_is_refused_with_530)
{
    struct it_conn_opts o = {.user = ADMIN, .pass = PASSWORD, .vhost = "warren_probe_nowhere"};

    expect_login_closed(&o, 530, "NOT_ALLOWED - vhost warren_probe_nowhere not found");
}
END_TEST

START_TEST(unknown_user_is_refused_with_403)
{
    struct it_conn_opts o = {.user = "warren_probe_nobody", .pass = PASSWORD, .vhost = VHOST};

    expect_login_closed(&o, 403, LOGIN_REFUSED);
    /* The reason is in the broker's log only, where the client is told to look. */
    if (!it_external_broker())
        ck_assert(it_broker_log_has("warning", "login refused: invalid credentials"));
}
END_TEST

START_TEST(wrong_password_is_refused_with_403)
{
    struct it_conn_opts o = {.user = ADMIN, .pass = "not the password", .vhost = VHOST};

    expect_login_closed(&o, 403, LOGIN_REFUSED);
}
END_TEST

START_TEST(empty_password_is_refused_with_403)
{
    struct it_conn_opts o = {.user = ADMIN, .pass = "", .vhost = VHOST};

    expect_login_closed(&o, 403, LOGIN_REFUSED);
}
END_TEST

/* An IPv4 address of this machine that is not a loopback one, or false. */
static bool non_loopback_address(char *buf, size_t size)
{
    struct ifaddrs *list, *i;
    bool found = false;

    if (getifaddrs(&list) != 0)
        return false;
    for (i = list; i != NULL && !found; i = i->ifa_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;

        if (sin == NULL || sin->sin_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        found = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size) != NULL;
    }
    freeifaddrs(list);
    return found;
}

/* Logs in over addr with user and password on vhost; the reply goes to *r. */
static amqp_connection_state_t connect_via(const char *addr, const char *user, const char *pass,
                                           const char *vhost, amqp_rpc_reply_t *r)
{
    struct timeval timeout = {.tv_sec = 5};
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    int rc;

    rc = amqp_socket_open_noblock(sock, addr, it_port(), &timeout);
    ck_assert_msg(rc == AMQP_STATUS_OK, "cannot connect to %s:%d: %s", addr, it_port(),
                  amqp_error_string2(rc));
    amqp_set_rpc_timeout(c, &timeout);
    amqp_set_handshake_timeout(c, &timeout);
    *r = amqp_login(c, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, pass);
    return c;
}

/* loopback_users.guest = true, RabbitMQ's default: guest may log in from localhost only. */
START_TEST(guest_from_non_loopback_address_is_refused)
{
    amqp_connection_state_t c;
    amqp_rpc_reply_t r;
    char addr[64], buf[512];

    if (!non_loopback_address(addr, sizeof addr)) {
        printf("guest_from_non_loopback_address_is_refused: skipped: no non-loopback IPv4 "
               "address\n");
        return;
    }
    c = connect_via(addr, "guest", "guest", "/", &r);
    it_expect_connection_close(c, r, 403, LOGIN_REFUSED);
    it_destroy(c);
    if (!it_external_broker())
        ck_assert(it_broker_log_has("warning", "user can only connect via localhost"));

    /* Another user connects from the same address: the refusal is guest's alone. */
    c = connect_via(addr, ADMIN, PASSWORD, VHOST, &r);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_NORMAL, "%s from %s: %s", ADMIN, addr,
                  it_reply_str(r, buf, sizeof buf));
    it_disconnect(c);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = it_tcase(s, name);

    /* An unchecked fixture runs in the process that started the broker, which alone can
     * restart it (sec_install). */
    tcase_add_unchecked_fixture(tc, install, NULL);
    return tc;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (sec_print_definitions(argc, argv, &defs))
        return 0;
    s = suite_create("permissions");

    tc = tcase(s, "exchanges");
    tcase_add_test(tc, exchange_declare_needs_configure);
    tcase_add_test(tc, exchange_declare_without_configure_is_refused);
    tcase_add_test(tc, passive_declares_need_no_permission);
    tcase_add_test(tc, exchange_declare_with_alternate_exchange_allowed);
    tcase_add_test(tc, exchange_declare_with_alternate_exchange_without_configure_is_refused);
    tcase_add_test(tc, exchange_declare_with_alternate_exchange_without_read_is_refused);
    tcase_add_test(tc, exchange_declare_with_alternate_exchange_without_write_on_it_is_refused);
    tcase_add_test(tc, exchange_delete_needs_configure);
    tcase_add_test(tc, exchange_delete_without_configure_is_refused);

    tc = tcase(s, "queues");
    tcase_add_test(tc, queue_declare_needs_configure);
    tcase_add_test(tc, queue_declare_without_configure_is_refused);
    tcase_add_test(tc, server_named_queue_declare_without_configure_is_refused);
    tcase_add_test(tc, queue_declare_with_dead_letter_exchange_allowed);
    tcase_add_test(tc, queue_declare_with_dead_letter_exchange_without_configure_is_refused);
    tcase_add_test(tc, queue_declare_with_dead_letter_exchange_without_read_is_refused);
    tcase_add_test(tc, queue_declare_with_dead_letter_exchange_without_write_on_it_is_refused);
    tcase_add_test(tc, queue_delete_needs_configure);
    tcase_add_test(tc, queue_delete_without_configure_is_refused);

    tc = tcase(s, "bindings");
    tcase_add_test(tc, queue_bind_needs_write_on_queue_and_read_on_exchange);
    tcase_add_test(tc, queue_bind_without_write_on_queue_is_refused);
    tcase_add_test(tc, queue_bind_without_read_on_exchange_is_refused);
    tcase_add_test(tc, queue_unbind_needs_write_on_queue_and_read_on_exchange);
    tcase_add_test(tc, queue_unbind_without_write_on_queue_is_refused);
    tcase_add_test(tc, queue_unbind_without_read_on_exchange_is_refused);
    tcase_add_test(tc, empty_queue_name_is_checked_as_the_last_declared_queue);
    tcase_add_test(tc, exchange_bind_needs_write_on_destination_and_read_on_source);
    tcase_add_test(tc, exchange_bind_without_write_on_destination_is_refused);
    tcase_add_test(tc, exchange_bind_without_read_on_source_is_refused);
    tcase_add_test(tc, exchange_unbind_needs_write_on_destination_and_read_on_source);
    tcase_add_test(tc, exchange_unbind_without_write_on_destination_is_refused);
    tcase_add_test(tc, exchange_unbind_without_read_on_source_is_refused);

    tc = tcase(s, "messages");
    tcase_add_test(tc, publish_needs_write_on_exchange);
    tcase_add_test(tc, publish_without_write_is_refused);
    tcase_add_test(tc, publish_to_default_exchange_without_write_names_amq_default);
    tcase_add_test(tc, get_needs_read_on_queue);
    tcase_add_test(tc, get_without_read_is_refused);
    tcase_add_test(tc, consume_needs_read_on_queue);
    tcase_add_test(tc, consume_without_read_is_refused);
    tcase_add_test(tc, purge_needs_read_on_queue);
    tcase_add_test(tc, purge_without_read_is_refused);

    tc = tcase(s, "topic");
    tcase_add_test(tc, topic_publish_with_key_inside_write_pattern_is_routed);
    tcase_add_test(tc, topic_publish_with_key_outside_write_pattern_is_refused);
    tcase_add_test(tc, topic_exchange_without_topic_permission_allows_any_key);
    tcase_add_test(tc, topic_bind_with_key_inside_read_pattern_is_allowed);
    tcase_add_test(tc, topic_bind_with_key_outside_read_pattern_is_refused);
    tcase_add_test(tc, topic_exchange_bind_with_key_outside_read_pattern_is_refused);

    tc = tcase(s, "login");
    tcase_add_test(tc, open_of_vhost_without_permission_is_refused_with_530);
    tcase_add_test(tc, open_of_other_vhost_is_refused_with_530);
    tcase_add_test(tc, open_of_missing_vhost_is_refused_with_530);
    tcase_add_test(tc, unknown_user_is_refused_with_403);
    tcase_add_test(tc, wrong_password_is_refused_with_403);
    tcase_add_test(tc, empty_password_is_refused_with_403);
    tcase_add_test(tc, guest_from_non_loopback_address_is_refused);

    return it_run(s, NULL);
}
