/* Limits that protect the broker and share it between users: per-vhost max-connections and
 * max-queues, per-user max-connections and max-channels (from the user database), the
 * negotiated channel_max, and warrend's connection_max and consumer_max_per_channel (set in
 * this program's configuration). Each limit is hit, answered with RabbitMQ's code and text,
 * and stops being in the way once the client gives something back.
 *
 * The vhost, user and channel_max tests run against RabbitMQ too, through
 * tests/interop/security_rabbitmq.sh (`it_limits_sec --definitions` prints the users and
 * limits it imports); every text was checked that way against RabbitMQ 3.10.8.
 * connection_max and consumer_max_per_channel are warrend's configuration: RabbitMQ 3.10 has
 * no consumer_max_per_channel, and its connection_max would have to be set on the node. */
#include "harness.h"
#include "sec_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD "warren-probe-pw"

#define V_CONNS  "warren_probe_lim_conns"  /* max-connections 2 */
#define V_QUEUES "warren_probe_lim_queues" /* max-queues 2 */
#define V_OPEN   "warren_probe_lim_open"   /* no limits */

#define U_ADMIN "warren_probe_lim_admin" /* no limits */
#define U_CONNS "warren_probe_lim_uconn" /* max-connections 2 */
#define U_CHANS "warren_probe_lim_uchan" /* max-channels 3 */

#define CONNECTION_MAX   16
#define CONSUMER_MAX     3
#define CONFIG           "connection_max = 16\nconsumer_max_per_channel = 3\n"
#define RELEASE_WAIT_MS  3000 /* RabbitMQ counts a closed connection out a moment later */
#define CONSUMER_WAIT_MS 2000

static const struct sec_user users[] = {
    {U_ADMIN, PASSWORD, 0, 0},
    {U_CONNS, PASSWORD, 2, 0},
    {U_CHANS, PASSWORD, 0, 3},
};

static const struct sec_vhost vhosts[] = {
    {V_CONNS, 2, 0},
    {V_QUEUES, 0, 2},
    {V_OPEN, 0, 0},
};

static const struct sec_permission permissions[] = {
    {U_ADMIN, V_CONNS, ".*", ".*", ".*"}, {U_ADMIN, V_QUEUES, ".*", ".*", ".*"},
    {U_ADMIN, V_OPEN, ".*", ".*", ".*"},  {U_CONNS, V_OPEN, ".*", ".*", ".*"},
    {U_CONNS, V_CONNS, ".*", ".*", ".*"}, {U_CHANS, V_OPEN, ".*", ".*", ".*"},
};

static const struct sec_definitions defs = {
    users, SEC_LEN(users), vhosts, SEC_LEN(vhosts), permissions, SEC_LEN(permissions), NULL, 0,
};

static void install(void)
{
    sec_install(&defs);
}

static amqp_connection_state_t as(const char *user, const char *vhost)
{
    return sec_connect(&defs, user, vhost);
}

/* warrend says why it refused something in a warning; RabbitMQ's log is not ours to read. */
#define expect_logged(text) expect_logged_at((text), __FILE__, __LINE__)
static void expect_logged_at(const char *text, const char *file, int line)
{
    if (!it_external_broker() && !it_broker_log_has("warning", text))
        ck_abort_msg("%s:%d: no warning with '%s' in the broker's log", file, line, text);
}

/* Logs in as user on vhost and expects connection.close 530 with text, which is logged. */
#define expect_open_refused(user, vhost, text)                                                     \
    expect_open_refused_at((user), (vhost), (text), __FILE__, __LINE__)
static void expect_open_refused_at(const char *user, const char *vhost, const char *text,
                                   const char *file, int line)
{
    struct it_conn_opts o = {.user = user, .pass = PASSWORD, .vhost = vhost};
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(&o, &r);

    it_expect_connection_close_at(c, r, 530, text, file, line);
    it_destroy(c);
    expect_logged_at(text, file, line);
}

/* Logs in as user on vhost, retrying while the broker still counts a connection that was
 * just closed; fails after RELEASE_WAIT_MS. */
static amqp_connection_state_t connect_when_released(const char *user, const char *vhost)
{
    long long deadline = it_now_ms() + RELEASE_WAIT_MS;
    struct it_conn_opts o = {.user = user, .pass = PASSWORD, .vhost = vhost};
    amqp_rpc_reply_t r;
    char buf[512];

    for (;;) {
        amqp_connection_state_t c = it_connect_raw(&o, &r);

        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            it_channel_open(c, 1);
            return c;
        }
        it_destroy(c);
        if (it_now_ms() > deadline)
            ck_abort_msg("%s on %s: still refused %d ms after a connection closed: %s", user, vhost,
                         RELEASE_WAIT_MS, it_reply_str(r, buf, sizeof buf));
        it_sleep_ms(50);
    }
}

/* ---- per-vhost limits ------------------------------------------------------------------ */

START_TEST(vhost_max_connections_refuses_the_next_open_with_530)
{
    amqp_connection_state_t c1 = as(U_ADMIN, V_CONNS), c2 = as(U_ADMIN, V_CONNS), c3;

    expect_open_refused(U_ADMIN, V_CONNS,
                        "NOT_ALLOWED - access to vhost '" V_CONNS "' refused for user '" U_ADMIN
                        "': connection limit (2) is reached");
    /* The limit is the vhost's: another user is refused too, and other vhosts are open. */
    expect_open_refused(U_CONNS, V_CONNS,
                        "NOT_ALLOWED - access to vhost '" V_CONNS "' refused for user '" U_CONNS
                        "': connection limit (2) is reached");
    c3 = as(U_ADMIN, V_OPEN);
    it_disconnect(c3);
    /* The connections at the limit still work, and closing one makes room. */
    it_assert_channel_alive(c1, 1);
    it_disconnect(c2);
    c2 = connect_when_released(U_ADMIN, V_CONNS);
    it_disconnect(c2);
    it_disconnect(c1);
}
END_TEST

START_TEST(vhost_max_queues_refuses_a_new_queue_with_406)
{
    amqp_connection_state_t c = as(U_ADMIN, V_QUEUES);
    amqp_rpc_reply_t r;
    char q1[64], q2[64], q3[64], text[300];

    it_queue(c, it_name(q1, sizeof q1, "limq"));
    it_queue(c, it_name(q2, sizeof q2, "limq"));
    amqp_queue_declare(c, 1, amqp_cstring_bytes(it_name(q3, sizeof q3, "limq")), 0, 0, 0, 0,
                       amqp_empty_table);
    r = amqp_get_rpc_reply(c);
    snprintf(text, sizeof text,
             "PRECONDITION_FAILED - cannot declare queue '%s': queue limit in vhost '" V_QUEUES
             "' (2) is reached",
             q3);
    it_expect_channel_close(c, 1, r, 406, text);
    expect_logged(text);
    it_channel_open(c, 1);
    /* Declaring a queue that exists creates nothing, so the limit does not apply. */
    it_queue(c, q1);
    /* A deleted queue makes room. */
    it_queue_delete(c, q1);
    it_queue(c, q3);
    it_queue_delete(c, q2);
    it_queue_delete(c, q3);
    it_disconnect(c);
}
END_TEST

/* ---- per-user limits ------------------------------------------------------------------- */

START_TEST(user_max_connections_refuses_the_next_open_with_530)
{
    /* The user's connections count in every vhost together. */
    amqp_connection_state_t c1 = as(U_CONNS, V_OPEN), c2 = as(U_CONNS, V_CONNS);

    expect_open_refused(U_CONNS, V_OPEN,
                        "NOT_ALLOWED - connection refused for user '" U_CONNS
                        "': user connection limit (2) is reached");
    /* Another user is not affected. */
    it_disconnect(as(U_ADMIN, V_OPEN));
    it_assert_channel_alive(c1, 1);
    it_disconnect(c2);
    c2 = connect_when_released(U_CONNS, V_OPEN);
    it_disconnect(c2);
    it_disconnect(c1);
}
END_TEST

START_TEST(user_max_channels_refuses_the_next_channel_with_530)
{
    /* Counted over all the user's connections: 2 here and 1 there. */
    amqp_connection_state_t c1 = as(U_CHANS, V_OPEN), c2 = as(U_CHANS, V_OPEN);
    amqp_rpc_reply_t r;

    it_channel_open(c1, 2);
    amqp_channel_open(c2, 2);
    r = amqp_get_rpc_reply(c2);
    it_expect_connection_close(c2, r, 530,
                               "NOT_ALLOWED - number of channels opened for user '" U_CHANS
                               "' has reached the maximum allowed user limit of (3)");
    it_destroy(c2);
    expect_logged("number of channels opened for user '" U_CHANS
                  "' has reached the maximum allowed user limit of (3)");
    /* The other connection keeps its channels; the one that was closed gave its channel
     * back, so one more can be opened. */
    it_assert_channel_alive(c1, 1);
    it_assert_channel_alive(c1, 2);
    {
        long long deadline = it_now_ms() + RELEASE_WAIT_MS;
        for (;;) {
            amqp_channel_open(c1, 3);
            r = amqp_get_rpc_reply(c1);
            if (r.reply_type == AMQP_RESPONSE_NORMAL)
                break;
            /* RabbitMQ may still count the closed connection's channel: the refusal closes
             * the whole connection, so start again with a new one. */
            it_expect_connection_close(c1, r, 530, NULL);
            it_destroy(c1);
            ck_assert_msg(it_now_ms() < deadline, "the closed connection's channel still counts");
            it_sleep_ms(100);
            c1 = as(U_CHANS, V_OPEN);
            it_channel_open(c1, 2);
        }
    }
    it_disconnect(c1);
}
END_TEST

/* ---- channel_max ----------------------------------------------------------------------- */

/* A client that asked for channel_max 5 in tune-ok may not open channel 6. */
START_TEST(channel_above_negotiated_channel_max_is_refused_with_530)
{
    struct it_conn_opts o = {.user = U_ADMIN, .pass = PASSWORD, .vhost = V_OPEN, .channel_max = 5};
    amqp_connection_state_t c = it_connect_opts(&o);
    amqp_rpc_reply_t r;

    ck_assert_int_eq(amqp_get_channel_max(c), 5);
    for (amqp_channel_t ch = 2; ch <= 5; ch++)
        it_channel_open(c, ch);
    amqp_channel_open(c, 6);
    r = amqp_get_rpc_reply(c);
    it_expect_connection_close(
        c, r, 530,
        "NOT_ALLOWED - number of channels opened (5) has reached the negotiated "
        "channel_max (5)");
    it_destroy(c);
    expect_logged("number of channels opened (5) has reached the negotiated channel_max (5)");
}
END_TEST

/* ---- warrend's configuration ----------------------------------------------------------- */

/* connection_max = 16: the 17th TCP connection is closed at once, before the protocol header
 * is answered, and a warning says why. */
START_TEST(connection_max_closes_the_next_socket)
{
    amqp_connection_state_t c[CONNECTION_MAX], extra;
    struct it_conn_opts o = {.user = U_ADMIN, .pass = PASSWORD, .vhost = V_OPEN};
    amqp_rpc_reply_t r;
    char buf[512];

    for (int i = 0; i < CONNECTION_MAX; i++)
        c[i] = as(U_ADMIN, V_OPEN);
    extra = it_connect_raw(&o, &r);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION,
                  "connection %d of %d: expected the socket to be closed, got %s",
                  CONNECTION_MAX + 1, CONNECTION_MAX, it_reply_str(r, buf, sizeof buf));
    it_destroy(extra);
    ck_assert(it_broker_log_has("warning", "connection refused: connection_max (16) is reached"));
    /* The connections that were let in are not affected; one closed makes room. */
    for (int i = 0; i < CONNECTION_MAX; i++)
        it_assert_channel_alive(c[i], 1);
    it_disconnect(c[0]);
    c[0] = connect_when_released(U_ADMIN, V_OPEN);
    for (int i = 0; i < CONNECTION_MAX; i++)
        it_disconnect(c[i]);
}
END_TEST

/* consumer_max_per_channel = 3: the 4th basic.consume on a channel is a connection error,
 * as in RabbitMQ 3.12, which has the setting; other channels can still consume. */
START_TEST(consumer_max_per_channel_refuses_the_next_consumer)
{
    amqp_connection_state_t c = as(U_ADMIN, V_OPEN), other = as(U_ADMIN, V_OPEN);
    amqp_rpc_reply_t r;
    char q[64];

    it_queue(other, it_name(q, sizeof q, "consumers"));
    for (int i = 0; i < CONSUMER_MAX; i++)
        it_consume(c, 1, q, NULL, false, false, NULL, 0);
    it_channel_open(other, 2);
    it_consume(other, 2, q, NULL, false, false, NULL, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(c);
    it_expect_connection_close(c, r, 530,
                               "NOT_ALLOWED - reached maximum (3) of consumers per channel");
    it_destroy(c);
    expect_logged("reached maximum (3) of consumers per channel");
    /* Its three consumers went with the connection; the other's remains. */
    it_expect_counts(other, q, 0, 1);
    it_queue_delete(other, q);
    it_disconnect(other);
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
    s = suite_create("limits_sec");

    tc = tcase(s, "vhost");
    tcase_add_test(tc, vhost_max_connections_refuses_the_next_open_with_530);
    tcase_add_test(tc, vhost_max_queues_refuses_a_new_queue_with_406);

    tc = tcase(s, "user");
    tcase_add_test(tc, user_max_connections_refuses_the_next_open_with_530);
    tcase_add_test(tc, user_max_channels_refuses_the_next_channel_with_530);

    tc = tcase(s, "channel_max");
    tcase_add_test(tc, channel_above_negotiated_channel_max_is_refused_with_530);

    tc = tcase(s, "config");
    it_add_warrend_test(tc, connection_max_closes_the_next_socket);
    it_add_warrend_test(tc, consumer_max_per_channel_refuses_the_next_consumer);

    return it_run(s, CONFIG);
}
