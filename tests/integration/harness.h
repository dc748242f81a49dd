/* The integration harness: one broker per test program, rabbitmq-c connections to it, and
 * helpers that fail the running Check test with a message saying what the client received.
 *
 * Broker: unless AMQP_HOST (and optionally AMQP_PORT, default 5672) name an existing broker,
 * it_run() starts $WARREND as `$WARREND -c <tmpdir>/warren.conf --port 0` with its stderr in
 * <tmpdir>/warrend.log, reads the port from the `ready: listening on <addr> ...` line and,
 * after the suite, stops it with SIGTERM. The program fails unless warrend exits 0 within
 * five seconds and its log holds no `[error]` line and no sanitizer report.
 *
 * The broker is started in the parent before srunner_run_all(), so the tests work the same
 * whether Check forks for each test (the default) or not (CK_FORK=no, under a debugger).
 * The durability tests restart it: see "restarts" below. */
#ifndef WARREN_TESTS_INTEGRATION_HARNESS_H
#define WARREN_TESTS_INTEGRATION_HARNESS_H

#include <amqp.h>
#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs suite s against the broker (started with extra_config appended to the harness's
 * config when the harness starts one; NULL for none) and returns the exit status for main:
 * 0 if every test passed and the broker stopped cleanly, 1 otherwise. */
int it_run(Suite *s, const char *extra_config);

/* True when the tests run against an external broker (AMQP_HOST set), not a warrend started
 * by the harness: tests of warrend's own configuration cannot run then. */
bool it_external_broker(void);

/* ---- restarts ------------------------------------------------------------------------- *
 *
 * For the durability tests: stopping the harness's warrend and starting it again on the same
 * config and data directory. The new instance listens on a new port, which it_port() and
 * it_connect() then use; every instance appends to the same log, and each is checked on its
 * own lines (when it stops, and the last one at the end of the program, as above). Only the
 * process that started the broker can do this, so a program that restarts it calls
 * it_set_nofork() before it_run(): its tests then run in that process, one after the other,
 * without Check's per-test timeout. Connections to a stopped instance are dead: the test
 * it_destroy()s them and connects again. */

/* The tests of the following it_run() calls run in this process (Check's CK_NOFORK). */
void it_set_nofork(void);

/* Stops the broker: SIGTERM and exit status 0 within five seconds, or with kill9 SIGKILL.
 * Fails the test unless it stopped so and its log is clean (no [error] line it was not
 * allowed, no sanitizer report). */
#define it_broker_stop(kill9) it_broker_stop_at((kill9), __FILE__, __LINE__)
void it_broker_stop_at(bool kill9, const char *file, int line);

/* Starts the broker again and waits for its ready line; fails the test if it does not start.
 * allowed_errors (NULL-terminated, may be NULL) lists texts: an [error] line of this
 * instance that contains one of them is expected and does not fail the program (the
 * strings must outlive the instance). */
#define it_broker_start(allowed_errors) it_broker_start_at((allowed_errors), __FILE__, __LINE__)
void it_broker_start_at(const char *const *allowed_errors, const char *file, int line);

/* it_broker_stop(kill9) (if a broker is running), then it_broker_start(NULL). */
#define it_broker_restart(kill9) it_broker_restart_at((kill9), __FILE__, __LINE__)
void it_broker_restart_at(bool kill9, const char *file, int line);

/* The broker's data directory and config file (NULL with an external broker). */
const char *it_data_dir(void);
const char *it_config_path(void);

/* True if a line of the running (or last stopped) instance's log has "[level]" and text. */
bool it_broker_log_has(const char *level, const char *text);

/* Adds test t to tc unless AMQP_HOST names an external broker: for tests of warrend's own
 * semantics, which RabbitMQ does not share (each such test says why in a comment). The
 * skipped test is named on stdout, the way a skipped program (exit 77) is. */
void it_add_warrend_test(TCase *tc, const TTest *t);

/* A test case added to s, with a timeout that leaves room for the harness's own bounded
 * waits (Check's default of 4 s is too short for the heartbeat tests). */
TCase *it_tcase(Suite *s, const char *name);

const char *it_host(void);
int it_port(void);

/* ---- names ---------------------------------------------------------------------------- */

/* Writes "it.<topic>.<pid>.<n>" into buf: unique per test process and call, so tests
 * running against a shared broker never meet each other's queues. Returns buf. */
char *it_name(char *buf, size_t size, const char *topic);

/* ---- connections ---------------------------------------------------------------------- */

/* What a connection asks for. Zero fields take the defaults: guest/guest, vhost "/",
 * channel_max 0, frame_max 131072, heartbeat 0, no extra client properties. */
struct it_conn_opts {
    const char *user;
    const char *pass;
    const char *vhost;
    int channel_max;
    int frame_max;
    int heartbeat;
    const amqp_table_t *client_properties; /* NULL: rabbitmq-c's own */
};

/* Opens a TCP connection and logs in with o (NULL: defaults); no channel is opened. The
 * login's reply goes to *login (which the test asserts); the connection is returned even
 * when the login failed, so the test can inspect it and then it_disconnect() it. Fails the
 * test only when the TCP connection cannot be made. */
amqp_connection_state_t it_connect_raw(const struct it_conn_opts *o, amqp_rpc_reply_t *login);

/* Logged in as guest/guest on "/", channel 1 open; fails the test on any error. */
amqp_connection_state_t it_connect(void);

/* Same, with the given options. */
amqp_connection_state_t it_connect_opts(const struct it_conn_opts *o);

/* Closes the connection politely if it is still open (ignoring errors: the broker may have
 * closed it already) and frees it. */
void it_disconnect(amqp_connection_state_t c);

/* Frees a connection the broker already closed (after it_expect_connection_close()). */
void it_destroy(amqp_connection_state_t c);

/* Opens channel ch; fails the test on error. */
void it_channel_open(amqp_connection_state_t c, amqp_channel_t ch);

/* A TCP socket connected to the broker, for writing raw bytes; fails the test on error. */
int it_raw_socket(void);

/* ---- replies -------------------------------------------------------------------------- */

/* A printable description of a reply, for failure messages. Returns buf. */
const char *it_reply_str(amqp_rpc_reply_t r, char *buf, size_t size);

/* Fails the test unless r is AMQP_RESPONSE_NORMAL. what names the operation. */
#define it_assert_ok(r, what) it_assert_ok_at((r), (what), __FILE__, __LINE__)
void it_assert_ok_at(amqp_rpc_reply_t r, const char *what, const char *file, int line);

/* Fails the test unless r is a channel.close with this code and text (text NULL: any),
 * then answers channel.close-ok on ch so the connection stays usable. */
#define it_expect_channel_close(c, ch, r, code, text)                                              \
    it_expect_channel_close_at((c), (ch), (r), (code), (text), __FILE__, __LINE__)
void it_expect_channel_close_at(amqp_connection_state_t c, amqp_channel_t ch, amqp_rpc_reply_t r,
                                int code, const char *text, const char *file, int line);

/* Fails the test unless r is a connection.close with this code and text (text NULL: any),
 * then answers connection.close-ok. The connection is then finished: it_destroy() it. */
#define it_expect_connection_close(c, r, code, text)                                               \
    it_expect_connection_close_at((c), (r), (code), (text), __FILE__, __LINE__)
void it_expect_connection_close_at(amqp_connection_state_t c, amqp_rpc_reply_t r, int code,
                                   const char *text, const char *file, int line);

/* For methods without a reply (publish, ack, reject, ...): waits up to timeout_ms for the
 * next method frame on any channel and returns it as a reply (AMQP_RESPONSE_SERVER_EXCEPTION
 * if it is a channel.close or connection.close, so it can be handed to it_expect_*_close;
 * AMQP_RESPONSE_NORMAL with the method otherwise). A timeout or socket error comes back as
 * AMQP_RESPONSE_LIBRARY_EXCEPTION. Content frames of deliveries are skipped. */
amqp_rpc_reply_t it_wait_method(amqp_connection_state_t c, int timeout_ms);

/* Same, and tells on which channel the method came (channel may be NULL). */
amqp_rpc_reply_t it_wait_method_on(amqp_connection_state_t c, int timeout_ms,
                                   amqp_channel_t *channel);

/* Fails the test unless channel ch still works: makes one round trip (a passive declare of
 * amq.direct, which changes nothing) and asserts it succeeds. Used after methods without a
 * reply (publish, ack) to prove the broker accepted them. */
#define it_assert_channel_alive(c, ch) it_assert_channel_alive_at((c), (ch), __FILE__, __LINE__)
void it_assert_channel_alive_at(amqp_connection_state_t c, amqp_channel_t ch, const char *file,
                                int line);

/* ---- declarations --------------------------------------------------------------------- */

/* queue.declare on ch asserting success; returns message_count and consumer_count through
 * the pointers when not NULL. */
void it_queue_declare(amqp_connection_state_t c, amqp_channel_t ch, const char *name, bool durable,
                      bool exclusive, bool auto_delete, amqp_table_t args, uint32_t *message_count,
                      uint32_t *consumer_count);

/* A plain (non-durable, non-exclusive, not auto-delete) queue on channel 1. */
void it_queue(amqp_connection_state_t c, const char *name);

/* An exclusive queue on channel 1: the broker deletes it when the connection closes, even
 * when the test fails half-way, so nothing is left behind on a shared broker. */
void it_temp_queue(amqp_connection_state_t c, const char *name);

/* Fails the test unless a passive declare of queue on channel 1 reports these counts (a
 * negative one is not checked). RabbitMQ answers a declare ahead of the deliveries its queue
 * has not taken in yet, so the counts are polled for up to two seconds before failing. */
#define it_expect_counts(c, queue, messages, consumers)                                            \
    it_expect_counts_at((c), (queue), (messages), (consumers), __FILE__, __LINE__)
void it_expect_counts_at(amqp_connection_state_t c, const char *queue, long messages,
                         long consumers, const char *file, int line);

/* Fails the test unless queue disappears (a passive declare on channel 1 closes the channel
 * with 404) within two seconds: RabbitMQ deletes exclusive and auto-delete queues shortly
 * after the close or cancel that triggers it. Channel 1 is open again afterwards. */
#define it_expect_queue_gone(c, queue) it_expect_queue_gone_at((c), (queue), __FILE__, __LINE__)
void it_expect_queue_gone_at(amqp_connection_state_t c, const char *queue, const char *file,
                             int line);

/* queue.delete on channel 1 asserting success; returns the message count. */
uint32_t it_queue_delete(amqp_connection_state_t c, const char *name);

/* exchange.declare on channel 1 (non-durable, not auto-delete) asserting success. */
void it_exchange(amqp_connection_state_t c, const char *name, const char *type);

void it_exchange_delete(amqp_connection_state_t c, const char *name);

/* queue.bind on channel 1 asserting success. */
void it_bind(amqp_connection_state_t c, const char *queue, const char *exchange, const char *key,
             amqp_table_t args);

/* basic.consume on ch asserting success; tag NULL or "" lets the broker pick one. The
 * consumer tag the broker answered is copied into tag_out (may be NULL). */
void it_consume(amqp_connection_state_t c, amqp_channel_t ch, const char *queue, const char *tag,
                bool no_ack, bool exclusive, char *tag_out, size_t tag_size);

/* basic.qos on ch asserting success. */
void it_qos(amqp_connection_state_t c, amqp_channel_t ch, uint16_t prefetch_count, bool global);

/* ---- messages ------------------------------------------------------------------------- */

/* basic.publish on channel 1 with no properties but delivery_mode 1; asserts the client
 * wrote it. */
void it_publish(amqp_connection_state_t c, const char *exchange, const char *key, const char *body);

/* Same on channel ch with properties (may be NULL) and a body of any bytes. */
void it_publish_bytes(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                      const char *key, const amqp_basic_properties_t *props, amqp_bytes_t body);

/* A received message: from basic.get or a delivery to a consumer. */
struct it_msg {
    amqp_channel_t channel;
    uint64_t delivery_tag;
    bool redelivered;
    uint32_t message_count; /* basic.get-ok only */
    char exchange[256];
    char routing_key[256];
    char consumer_tag[256]; /* deliveries only */
    amqp_message_t message; /* properties and body */
};

/* basic.get on ch: true with *m filled (it_msg_free() it) if a message came, false if the
 * queue was empty; fails the test on any error. */
bool it_get(amqp_connection_state_t c, amqp_channel_t ch, const char *queue, bool no_ack,
            struct it_msg *m);

/* Waits up to timeout_ms for a delivery to any consumer of c: true with *m filled, false on
 * timeout; fails the test on anything else (e.g. the channel was closed). */
bool it_next_delivery(amqp_connection_state_t c, int timeout_ms, struct it_msg *m);

void it_msg_free(struct it_msg *m);

/* The body as a NUL-terminated string in buf (truncated to fit), for assertions. */
const char *it_body(const struct it_msg *m, char *buf, size_t size);

/* Fails the test unless the message body equals text. */
#define it_assert_body(m, text) it_assert_body_at((m), (text), __FILE__, __LINE__)
void it_assert_body_at(const struct it_msg *m, const char *text, const char *file, int line);

/* basic.ack on ch; asserts the client wrote it. */
void it_ack(amqp_connection_state_t c, amqp_channel_t ch, uint64_t tag, bool multiple);

/* ---- small comparisons ---------------------------------------------------------------- */

bool it_bytes_eq(amqp_bytes_t b, const char *s);

/* Fails the test unless b equals the string s. */
#define it_assert_bytes(b, s) it_assert_bytes_at((b), (s), #b, __FILE__, __LINE__)
void it_assert_bytes_at(amqp_bytes_t b, const char *s, const char *expr, const char *file,
                        int line);

/* ---- time ----------------------------------------------------------------------------- */

/* A monotonic clock in milliseconds, for measuring when things happen. */
long long it_now_ms(void);

void it_sleep_ms(long ms);

/* ---- field tables --------------------------------------------------------------------- */

#define IT_TABLE_MAX 16

/* A field table built in place for arguments and headers: it_table_init() it, add entries,
 * then pass t.table (which points into t, so t must outlive its use). Keys and string values
 * are borrowed, not copied. */
struct it_table {
    amqp_table_t table;
    amqp_table_entry_t entries[IT_TABLE_MAX];
};

void it_table_init(struct it_table *t);
void it_table_add(struct it_table *t, const char *key, amqp_field_value_t value);
void it_table_add_long(struct it_table *t, const char *key, int64_t value);    /* 'l' */
void it_table_add_int(struct it_table *t, const char *key, int32_t value);     /* 'I' */
void it_table_add_str(struct it_table *t, const char *key, const char *value); /* 'S' */
void it_table_add_bool(struct it_table *t, const char *key, bool value);       /* 't' */

/* The value of key in t, or NULL when t has no such entry. */
const amqp_field_value_t *it_table_get(const amqp_table_t *t, const char *key);

/* Fails the test unless t has key as a long string (kind 'S') equal to value. */
#define it_assert_table_str(t, key, value)                                                         \
    it_assert_table_str_at((t), (key), (value), __FILE__, __LINE__)
void it_assert_table_str_at(const amqp_table_t *t, const char *key, const char *value,
                            const char *file, int line);

/* Fails the test unless t has key as a signed 64-bit integer (kind 'l') equal to value. */
#define it_assert_table_long(t, key, value)                                                        \
    it_assert_table_long_at((t), (key), (value), __FILE__, __LINE__)
void it_assert_table_long_at(const amqp_table_t *t, const char *key, int64_t value,
                             const char *file, int line);

/* The headers of a received message (an empty table when it has none). */
amqp_table_t it_headers(const struct it_msg *m);

/* ---- consumers and deliveries --------------------------------------------------------- */

/* basic.consume with arguments (x-priority, ...) on ch asserting success; otherwise as
 * it_consume(). */
void it_consume_args(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                     const char *tag, bool no_ack, bool exclusive, amqp_table_t args, char *tag_out,
                     size_t tag_size);

/* Fails the test unless a delivery arrives within timeout_ms and has this body; the delivery
 * goes to *m (it_msg_free() it). */
#define it_expect_delivery(c, timeout_ms, body, m)                                                 \
    it_expect_delivery_at((c), (timeout_ms), (body), (m), __FILE__, __LINE__)
void it_expect_delivery_at(amqp_connection_state_t c, int timeout_ms, const char *body,
                           struct it_msg *m, const char *file, int line);

/* Fails the test if any delivery arrives within quiet_ms. */
#define it_expect_no_delivery(c, quiet_ms)                                                         \
    it_expect_no_delivery_at((c), (quiet_ms), __FILE__, __LINE__)
void it_expect_no_delivery_at(amqp_connection_state_t c, int quiet_ms, const char *file, int line);

/* Fails the test unless basic.get on ch takes a message with this body (acked by no_ack)
 * from queue; the message goes to *m when m is not NULL (it_msg_free() it). */
#define it_expect_get(c, ch, queue, body, m)                                                       \
    it_expect_get_at((c), (ch), (queue), (body), (m), __FILE__, __LINE__)
void it_expect_get_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                      const char *body, struct it_msg *m, const char *file, int line);

/* Like it_expect_get(), but polls for up to timeout_ms while the queue is empty: for messages
 * the broker moves asynchronously (dead letters reach their queue a moment after the
 * rejection in RabbitMQ). */
#define it_await_get(c, ch, queue, body, m, timeout_ms)                                            \
    it_await_get_at((c), (ch), (queue), (body), (m), (timeout_ms), __FILE__, __LINE__)
void it_await_get_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                     const char *body, struct it_msg *m, int timeout_ms, const char *file,
                     int line);

/* Fails the test unless queue is empty (basic.get on ch answers get-empty). */
#define it_expect_empty(c, ch, queue) it_expect_empty_at((c), (ch), (queue), __FILE__, __LINE__)
void it_expect_empty_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                        const char *file, int line);

/* ---- publisher confirms --------------------------------------------------------------- */

/* confirm.select on ch asserting select-ok. */
void it_confirm_select(amqp_connection_state_t c, amqp_channel_t ch);

/* What the broker said about one published message in confirm mode. */
enum it_confirm { IT_PENDING = 0, IT_ACKED, IT_NACKED };

/* Reads basic.ack and basic.nack on ch until every entry of state[1..last] is settled or
 * timeout_ms passes (then fails the test); state[i] is the fate of publish sequence number
 * i, and `multiple` settles every pending entry up to the tag. A confirm of an already
 * settled or unknown tag fails the test. Methods on other channels and deliveries are
 * skipped; basic.return on ch is skipped too (counted in *returns when not NULL), as is its
 * content. Anything else fails the test. */
#define it_collect_confirms(c, ch, state, last, timeout_ms, returns)                               \
    it_collect_confirms_at((c), (ch), (state), (last), (timeout_ms), (returns), __FILE__, __LINE__)
void it_collect_confirms_at(amqp_connection_state_t c, amqp_channel_t ch, enum it_confirm *state,
                            uint64_t last, int timeout_ms, int *returns, const char *file,
                            int line);

#endif
