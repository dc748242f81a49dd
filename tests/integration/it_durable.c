/* Durability: what survives a restart of warrend, clean (SIGTERM) or not (SIGKILL), and what
 * does not; the store's promises seen from a client (confirms after the fsync, a message
 * routed to several queues stored once, disk space given back); recovery from damaged
 * segment files. Warrend only (the tests stop and start the broker), so the program skips
 * (exit 77) when AMQP_HOST names an external broker.
 *
 * The tests restart the broker the harness started, so they run in the harness's process
 * (it_set_nofork), one after the other. Each part that needs a data directory of its own
 * (another configuration, a disk measurement, a damaged file) runs against its own warrend.
 *
 * The segment files are read and damaged through their documented format (src/store/store.h,
 * src/store/recfile.h): a 16-byte file header, then records of u32 body length, u32 checksum and
 * the body, whose first byte is the record type (1: a message). */
#define _GNU_SOURCE /* memmem */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONFIRM_WAIT_MS 10000
#define WAIT_MS         2000

/* A write the broker has taken in reaches the page cache at the end of its loop turn (the
 * store flushes its buffer then), so a SIGKILL a moment after the client saw the effect of
 * a method cannot lose it. This is that moment: far longer than one loop turn. */
#define SETTLE_MS 100

/* The store's default segment size (src/store/store.h), for the disk space test. */
#define SEGMENT_BYTES (16L << 20)

#define SEG_FILE_HEADER  16
#define REC_FRAME        8
#define REC_TYPE_MESSAGE 6 /* MESSAGE_TIMED: what the broker writes (src/store/store.h) */

static const amqp_basic_properties_t persistent = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                                   .delivery_mode = 2};
static const amqp_basic_properties_t transient = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                                  .delivery_mode = 1};

/* ---- publishing with confirms ---------------------------------------------------------- */

/* A connection whose channel 1 is in confirm mode, and how far its confirms have come. */
struct pub {
    amqp_connection_state_t c;
    uint64_t published;
    uint64_t confirmed;
};

static struct pub pub_open(void)
{
    struct pub p = {.c = it_connect()};

    it_confirm_select(p.c, 1);
    return p;
}

static void pub_send(struct pub *p, const char *exchange, const char *key,
                     const amqp_basic_properties_t *props, const char *body)
{
    it_publish_bytes(p->c, 1, exchange, key, props, amqp_cstring_bytes(body));
    p->published++;
}

/* Waits until everything published so far is confirmed; fails unless all are acks. */
static void pub_wait(struct pub *p)
{
    enum it_confirm *state;

    if (p->confirmed == p->published)
        return;
    state = calloc(p->published + 1, sizeof *state);
    ck_assert_ptr_nonnull(state);
    for (uint64_t i = 1; i <= p->confirmed; i++)
        state[i] = IT_ACKED;
    it_collect_confirms(p->c, 1, state, p->published, CONFIRM_WAIT_MS, NULL);
    for (uint64_t i = p->confirmed + 1; i <= p->published; i++) {
        if (state[i] != IT_ACKED) {
            free(state);
            ck_abort_msg("publish %llu was nacked", (unsigned long long)i);
        }
    }
    free(state);
    p->confirmed = p->published;
}

/* Publishes n persistent messages "<prefix><i>" to queue (default exchange), confirmed. */
static void publish_persistent_n(struct pub *p, const char *queue, const char *prefix, int n)
{
    char body[128];

    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "%s%d", prefix, i);
        pub_send(p, "", queue, &persistent, body);
    }
    pub_wait(p);
}

/* ---- declarations ---------------------------------------------------------------------- */

static void durable_queue(amqp_connection_state_t c, const char *name)
{
    it_queue_declare(c, 1, name, true, false, false, amqp_empty_table, NULL, NULL);
}

static void durable_exchange(amqp_connection_state_t c, const char *name, const char *type)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "durable exchange.declare");
}

/* Fails unless a passive declare of exchange name succeeds (exists) or closes channel 1 with
 * 404 (!exists); channel 1 is open afterwards either way. */
static void expect_exchange(amqp_connection_state_t c, const char *name, bool exists)
{
    char what[300];

    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("direct"), 1, 0, 0, 0,
                          amqp_empty_table);
    snprintf(what, sizeof what, "passive exchange.declare '%s'", name);
    if (exists) {
        it_assert_ok(amqp_get_rpc_reply(c), what);
        return;
    }
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, NULL);
    it_channel_open(c, 1);
}

/* Fails unless queue exists (passive declare) with this many messages (negative: any). */
static void expect_queue(amqp_connection_state_t c, const char *name, long messages)
{
    amqp_queue_declare_ok_t *ok;
    char what[300];

    ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    snprintf(what, sizeof what, "passive queue.declare '%s'", name);
    it_assert_ok(amqp_get_rpc_reply(c), what);
    if (messages >= 0)
        ck_assert_msg(ok->message_count == (uint32_t)messages,
                      "queue '%s' holds %u messages, %ld expected", name, ok->message_count,
                      messages);
}

static void expect_queue_missing(amqp_connection_state_t c, const char *name)
{
    amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 404, NULL);
    it_channel_open(c, 1);
}

/* ---- reading queues back --------------------------------------------------------------- */

/* Fails unless basic.get (no-ack) takes body from queue, with redelivered as expected. */
static void expect_get(amqp_connection_state_t c, const char *queue, const char *body,
                       bool redelivered)
{
    struct it_msg m;

    it_expect_get(c, 1, queue, body, &m);
    ck_assert_msg(m.redelivered == redelivered, "'%s' from '%s': redelivered %d, expected %d", body,
                  queue, m.redelivered, redelivered);
    it_msg_free(&m);
}

/* Fails unless queue holds exactly "<prefix>0" .. "<prefix><n-1>", in order, not redelivered
 * (taking them). */
static void expect_sequence(amqp_connection_state_t c, const char *queue, const char *prefix, int n)
{
    char body[128];

    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "%s%d", prefix, i);
        expect_get(c, queue, body, false);
    }
    it_expect_empty(c, 1, queue);
}

/* ---- the data directory ---------------------------------------------------------------- */

static void msgs_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/msgs", it_data_dir());
}

/* Total size of the durable segment files, and how many there are (count may be NULL). */
static long msgs_bytes(int *count)
{
    char dir[PATH_MAX - 300], path[PATH_MAX];
    struct dirent *e;
    struct stat st;
    long total = 0;
    DIR *d;

    msgs_path(dir, sizeof dir);
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s: %s", dir, strerror(errno));
    if (count != NULL)
        *count = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (len < 5 || strcmp(e->d_name + len - 4, ".seg") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0) {
            total += (long)st.st_size;
            if (count != NULL)
                (*count)++;
        }
    }
    closedir(d);
    return total;
}

/* The path of the segment with the highest number (the one being appended to). */
static void last_segment(char *buf, size_t size)
{
    char dir[PATH_MAX - 300], best[256] = "";
    struct dirent *e;
    DIR *d;

    msgs_path(dir, sizeof dir);
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        /* NNNNNNNN.seg: fixed width, so the names sort as the numbers do. */
        if (len == 12 && strcmp(e->d_name + 8, ".seg") == 0 && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    ck_assert_msg(best[0] != '\0', "no segment file in %s", dir);
    snprintf(buf, size, "%s/%s", dir, best);
}

/* A record of a segment file: where it starts and how long its body is. */
struct rec {
    long offset;
    uint32_t body_len;
    uint8_t type;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *read_whole(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    struct stat st;

    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fileno(f), &st), 0);
    data = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(fread(data, 1, (size_t)st.st_size, f) == (size_t)st.st_size, "short read of %s",
                  path);
    fclose(f);
    *size = (long)st.st_size;
    return data;
}

/* The record of the segment at path whose body contains the text marker; fails if none. */
static struct rec find_record(const char *path, const char *marker)
{
    long size, off = SEG_FILE_HEADER;
    uint8_t *data = read_whole(path, &size);
    size_t mlen = strlen(marker);

    while (off + REC_FRAME <= size) {
        uint32_t len = be32(data + off);

        if (len == 0 || (long)len > size - off - REC_FRAME)
            break;
        if (memmem(data + off + REC_FRAME, len, marker, mlen) != NULL) {
            struct rec r = {.offset = off, .body_len = len, .type = data[off + REC_FRAME]};

            free(data);
            return r;
        }
        off += REC_FRAME + (long)len;
    }
    free(data);
    ck_abort_msg("no record holding '%s' in %s", marker, path);
    return (struct rec){0};
}

/* The last complete record of the segment at path. */
static struct rec last_record(const char *path, long *file_size)
{
    long size, off = SEG_FILE_HEADER;
    uint8_t *data = read_whole(path, &size);
    struct rec last = {.offset = -1};

    while (off + REC_FRAME <= size) {
        uint32_t len = be32(data + off);

        if (len == 0 || (long)len > size - off - REC_FRAME)
            break;
        last = (struct rec){.offset = off, .body_len = len, .type = data[off + REC_FRAME]};
        off += REC_FRAME + (long)len;
    }
    free(data);
    ck_assert_msg(last.offset >= 0, "no record in %s", path);
    *file_size = size;
    return last;
}

static void flip_byte(const char *path, long offset)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    ck_assert_msg(fd >= 0, "cannot open %s: %s", path, strerror(errno));
    ck_assert_int_eq(pread(fd, &b, 1, offset), 1);
    b ^= 0xff;
    ck_assert_int_eq(pwrite(fd, &b, 1, offset), 1);
    close(fd);
}

/* ---- restarts -------------------------------------------------------------------------- */

/* Restarts the broker (kill9: with SIGKILL) and frees a and b (b may be NULL), which the
 * restart ends: closed politely before a clean stop, so that the broker does not wait for
 * the answer of a client that is not reading (it grants two seconds), dropped after a kill. */
static void restart_closing(bool kill9, amqp_connection_state_t a, amqp_connection_state_t b)
{
    if (!kill9) {
        it_disconnect(a);
        it_disconnect(b);
        a = b = NULL;
    }
    it_broker_restart(kill9);
    it_destroy(a);
    it_destroy(b);
}

/* ---- definitions ----------------------------------------------------------------------- */

/* Durable exchanges, queues (with their arguments) and bindings, an exchange-to-exchange
 * binding among them, come back and route; non-durable ones, exclusive queues and bindings
 * with a non-durable end do not. _i = 0: clean restart; 1: SIGKILL, when nothing of a
 * connection's shutdown can tidy up, so an exclusive queue that was written to the log would
 * show. */
START_TEST(durable_definitions_survive_a_restart_and_the_rest_does_not)
{
    bool kill9 = _i == 1;
    amqp_connection_state_t c = it_connect();
    char dx[64], fx[64], nx[64], dq[64], fq[64], nq[64], xq[64], margs[64];
    struct it_table args;

    it_name(dx, sizeof dx, "dur.dx");
    it_name(fx, sizeof fx, "dur.fx");
    it_name(nx, sizeof nx, "dur.nx");
    it_name(dq, sizeof dq, "dur.dq");
    it_name(fq, sizeof fq, "dur.fq");
    it_name(nq, sizeof nq, "dur.nq");
    it_name(xq, sizeof xq, "dur.xq");
    it_name(margs, sizeof margs, "dur.args");

    durable_exchange(c, dx, "direct");
    durable_exchange(c, fx, "fanout");
    it_exchange(c, nx, "direct");
    durable_queue(c, dq);
    durable_queue(c, fq);
    it_queue(c, nq);
    it_queue_declare(c, 1, xq, true, true, false, amqp_empty_table, NULL, NULL);
    it_table_init(&args);
    it_table_add_long(&args, "x-max-length", 3);
    it_table_add_str(&args, "x-overflow", "reject-publish");
    it_queue_declare(c, 1, margs, true, false, false, args.table, NULL, NULL);

    it_bind(c, dq, dx, "to-dq", amqp_empty_table);
    it_bind(c, nq, dx, "to-nq", amqp_empty_table);  /* non-durable queue: not kept */
    it_bind(c, dq, nx, "via-nx", amqp_empty_table); /* non-durable exchange: not kept */
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(fx), amqp_cstring_bytes(dx),
                       amqp_cstring_bytes("to-fx"), amqp_empty_table);
    it_assert_ok(amqp_get_rpc_reply(c), "exchange.bind");
    it_bind(c, fq, fx, "", amqp_empty_table);
    it_sleep_ms(kill9 ? SETTLE_MS : 0);

    restart_closing(kill9, c, NULL);
    c = it_connect();

    expect_exchange(c, dx, true);
    expect_exchange(c, fx, true);
    expect_exchange(c, nx, false);
    expect_queue(c, dq, 0);
    expect_queue(c, fq, 0);
    expect_queue_missing(c, nq);
    expect_queue_missing(c, xq);

    /* The arguments came back: an equal redeclare is accepted, a different one is not. */
    it_queue_declare(c, 1, margs, true, false, false, args.table, NULL, NULL);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(margs), 0, 1, 0, 0, amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, NULL);
    it_channel_open(c, 1);

    /* The bindings came back and route: dx -> dq directly, dx -> fx -> fq. */
    it_publish(c, dx, "to-dq", "direct-after-restart");
    it_expect_get(c, 1, dq, "direct-after-restart", NULL);
    it_publish(c, dx, "to-fx", "via-fx-after-restart");
    it_expect_get(c, 1, fq, "via-fx-after-restart", NULL);
    it_expect_empty(c, 1, dq);
    /* The type came back: a fanout ignores the key. */
    it_publish(c, fx, "any-key", "fanout-after-restart");
    it_expect_get(c, 1, fq, "fanout-after-restart", NULL);
    /* dx -> nq was not kept (nq is gone, and a new nq would not be bound), nor dq <- nx. */
    it_queue(c, nq);
    it_publish(c, dx, "to-nq", "nowhere");
    it_assert_channel_alive(c, 1);
    it_expect_empty(c, 1, nq);

    it_queue_delete(c, dq);
    it_queue_delete(c, fq);
    it_queue_delete(c, nq);
    it_queue_delete(c, margs);
    it_exchange_delete(c, dx);
    it_exchange_delete(c, fx);
    it_disconnect(c);
}
END_TEST

/* An exchange deleted stays deleted (with its bindings), and one deleted and declared again
 * with another type comes back with the new type. */
START_TEST(deleted_exchange_stays_deleted)
{
    amqp_connection_state_t c = it_connect();
    char gone[64], retyped[64], q[64];

    it_name(gone, sizeof gone, "dur.gone");
    it_name(retyped, sizeof retyped, "dur.retyped");
    it_name(q, sizeof q, "dur.gone.q");
    durable_exchange(c, gone, "direct");
    durable_exchange(c, retyped, "direct");
    durable_queue(c, q);
    it_bind(c, q, gone, "k", amqp_empty_table);
    it_exchange_delete(c, gone);
    it_exchange_delete(c, retyped);
    durable_exchange(c, retyped, "fanout");
    it_bind(c, q, retyped, "only-this-key", amqp_empty_table);

    restart_closing(true, c, NULL);
    c = it_connect();

    expect_exchange(c, gone, false);
    expect_queue(c, q, 0);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(retyped), amqp_cstring_bytes("direct"), 0, 1, 0,
                          0, amqp_empty_table);
    it_expect_channel_close(c, 1, amqp_get_rpc_reply(c), 406, NULL);
    it_channel_open(c, 1);
    durable_exchange(c, retyped, "fanout");
    it_publish(c, retyped, "another-key", "fanned");
    it_expect_get(c, 1, q, "fanned", NULL);

    it_queue_delete(c, q);
    it_exchange_delete(c, retyped);
    it_disconnect(c);
}
END_TEST

/* ---- messages -------------------------------------------------------------------------- */

/* Persistent messages in a durable queue come back in order with their properties, after a
 * clean restart (_i = 0) and after SIGKILL right after the last confirm (_i = 1: what was
 * confirmed is on disk); transient messages in the same queue do not, nor persistent ones in
 * a non-durable queue. */
START_TEST(persistent_messages_survive_in_order_and_transient_ones_do_not)
{
    bool kill9 = _i == 1;
    struct pub p = pub_open();
    amqp_basic_properties_t props = persistent;
    amqp_connection_state_t c;
    char q[64], nq[64], body[32];
    struct it_table headers;
    struct it_msg m;
    amqp_table_t h;

    it_name(q, sizeof q, "dur.msgs");
    it_name(nq, sizeof nq, "dur.msgs.nd");
    durable_queue(p.c, q);
    it_queue(p.c, nq);

    it_table_init(&headers);
    it_table_add_str(&headers, "origin", "it_durable");
    it_table_add_long(&headers, "n", 42);
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG |
                    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_PRIORITY_FLAG;
    props.content_type = amqp_cstring_bytes("text/plain");
    props.headers = headers.table;
    props.message_id = amqp_cstring_bytes("first-of-all");
    props.priority = 3;
    pub_send(&p, "", q, &props, "p0");
    for (int i = 1; i < 40; i++) {
        snprintf(body, sizeof body, "t%d", i);
        pub_send(&p, "", q, &transient, body);
        snprintf(body, sizeof body, "p%d", i);
        pub_send(&p, "", q, &persistent, body);
    }
    pub_send(&p, "", nq, &persistent, "in-a-non-durable-queue");
    pub_wait(&p);
    expect_queue(p.c, q, 79);

    restart_closing(kill9, p.c, NULL);
    c = it_connect();

    expect_queue(c, q, 40);
    expect_queue_missing(c, nq);
    it_expect_get(c, 1, q, "p0", &m);
    ck_assert(!m.redelivered);
    ck_assert_str_eq(m.exchange, "");
    ck_assert_str_eq(m.routing_key, q);
    ck_assert(m.message.properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG);
    ck_assert_uint_eq(m.message.properties.delivery_mode, 2);
    ck_assert(m.message.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    it_assert_bytes(m.message.properties.content_type, "text/plain");
    ck_assert(m.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG);
    it_assert_bytes(m.message.properties.message_id, "first-of-all");
    ck_assert(m.message.properties._flags & AMQP_BASIC_PRIORITY_FLAG);
    ck_assert_uint_eq(m.message.properties.priority, 3);
    h = it_headers(&m);
    it_assert_table_str(&h, "origin", "it_durable");
    it_assert_table_long(&h, "n", 42);
    it_msg_free(&m);
    for (int i = 1; i < 40; i++) {
        snprintf(body, sizeof body, "p%d", i);
        expect_get(c, q, body, false);
    }
    it_expect_empty(c, 1, q);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* A backlog longer than the window a queue keeps in memory (queue_memory_window, 2048 by
 * default: the rest waits on disk) comes back whole and in order after SIGKILL, without
 * the transient messages among it. */
START_TEST(backlog_beyond_the_memory_window_survives_a_kill_in_order)
{
    enum { BACKLOG = 6000 };
    struct pub p = pub_open();
    amqp_connection_state_t c;
    char q[64], body[32];
    struct it_msg m;
    int kept = 0;

    it_name(q, sizeof q, "dur.backlog");
    durable_queue(p.c, q);
    for (int i = 0; i < BACKLOG; i++) {
        bool is_transient = i % 10 == 9;

        snprintf(body, sizeof body, "b%05d", i);
        pub_send(&p, "", q, is_transient ? &transient : &persistent, body);
        kept += !is_transient;
    }
    pub_wait(&p);
    expect_queue(p.c, q, BACKLOG);

    restart_closing(true, p.c, NULL);
    c = it_connect();
    expect_queue(c, q, kept);
    it_consume(c, 1, q, "backlog", true, false, NULL, 0);
    for (int i = 0; i < BACKLOG; i++) {
        if (i % 10 == 9)
            continue;
        snprintf(body, sizeof body, "b%05d", i);
        it_expect_delivery(c, WAIT_MS, body, &m);
        ck_assert_msg(!m.redelivered, "'%s' redelivered", body);
        it_msg_free(&m);
    }
    it_expect_no_delivery(c, 200);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* After SIGKILL (_i = 1) or a clean stop (_i = 0): a message a consumer had but had not
 * acked comes back first, with redelivered; one it acked does not come back; those never
 * delivered come back without redelivered. */
START_TEST(unacked_delivery_comes_back_redelivered_and_acked_one_does_not)
{
    bool kill9 = _i == 1;
    struct pub p = pub_open();
    amqp_connection_state_t c = it_connect();
    struct it_msg a, b;
    char q[64];

    it_name(q, sizeof q, "dur.redeliv");
    durable_queue(p.c, q);
    pub_send(&p, "", q, &persistent, "a");
    pub_send(&p, "", q, &persistent, "b");
    pub_send(&p, "", q, &persistent, "c");
    pub_send(&p, "", q, &persistent, "d");
    pub_wait(&p);

    it_qos(c, 1, 2, false);
    it_consume(c, 1, q, "holder", false, false, NULL, 0);
    it_expect_delivery(c, WAIT_MS, "a", &a);
    it_expect_delivery(c, WAIT_MS, "b", &b);
    ck_assert(!a.redelivered && !b.redelivered);
    /* Cancelled first, so that the ack gives no credit for c: c and d are never delivered. */
    amqp_basic_cancel(c, 1, amqp_cstring_bytes("holder"));
    it_assert_ok(amqp_get_rpc_reply(c), "basic.cancel");
    it_ack(c, 1, b.delivery_tag, false);
    it_assert_channel_alive(c, 1);
    it_msg_free(&a);
    it_msg_free(&b);
    it_sleep_ms(SETTLE_MS);

    /* c stays open, holding its unacked delivery, while the broker stops or dies. */
    it_disconnect(p.c);
    it_broker_restart(kill9);
    it_destroy(c);
    c = it_connect();

    expect_queue(c, q, 3);
    expect_get(c, q, "a", true);
    expect_get(c, q, "c", false);
    expect_get(c, q, "d", false);
    it_expect_empty(c, 1, q);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* Expiry keeps its schedule across a restart (issue 16, item 7), as RabbitMQ's queue index
 * keeps absolute expiry times: a persistent message with its own expiration, and one in a
 * queue with x-message-ttl, both published TTL_MS before they are due, are dead-lettered
 * "expired" at TTL_MS after their publication even though the broker was killed and
 * restarted RESTART_AFTER_MS in; before, the first never expired after a restart and the
 * second counted its TTL again from the restart (due at RESTART_AFTER_MS + TTL_MS at the
 * earliest). One already past its deadline at the restart is never delivered, and one with a
 * long expiration stays. */
START_TEST(expiry_keeps_its_schedule_across_a_restart)
{
    enum { TTL_MS = 5000, RESTART_AFTER_MS = 2000, SLACK_MS = 1500 };
    struct pub p = pub_open();
    amqp_basic_properties_t own = persistent, past = persistent, later = persistent;
    amqp_connection_state_t c;
    struct it_table args, ttl_args;
    char q[64], tq[64], dlq[64], ttl_text[16];
    long long t0, done;
    struct it_msg m;
    amqp_table_t h;

    it_name(q, sizeof q, "dur.exp");
    it_name(tq, sizeof tq, "dur.exp.ttl");
    it_name(dlq, sizeof dlq, "dur.exp.dead");
    durable_queue(p.c, dlq);
    it_table_init(&args);
    it_table_add_str(&args, "x-dead-letter-exchange", "");
    it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    it_queue_declare(p.c, 1, q, true, false, false, args.table, NULL, NULL);
    it_table_init(&ttl_args);
    it_table_add_str(&ttl_args, "x-dead-letter-exchange", "");
    it_table_add_str(&ttl_args, "x-dead-letter-routing-key", dlq);
    it_table_add_long(&ttl_args, "x-message-ttl", TTL_MS);
    it_queue_declare(p.c, 1, tq, true, false, false, ttl_args.table, NULL, NULL);

    snprintf(ttl_text, sizeof ttl_text, "%d", TTL_MS);
    own._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    own.expiration = amqp_cstring_bytes(ttl_text);
    past._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    past.expiration = amqp_cstring_bytes("1000");
    later._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    later.expiration = amqp_cstring_bytes("600000");
    t0 = it_now_ms();
    pub_send(&p, "", q, &past, "past-its-deadline");
    pub_send(&p, "", q, &own, "own-expiration");
    pub_send(&p, "", q, &later, "long-expiration");
    pub_send(&p, "", tq, &persistent, "queue-ttl");
    pub_wait(&p);
    it_sleep_ms(RESTART_AFTER_MS - (long)(it_now_ms() - t0));

    restart_closing(true, p.c, NULL);
    c = it_connect();

    /* Poll until both timed messages have left their queues. */
    for (;;) {
        amqp_queue_declare_ok_t *a, *b;
        a = amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
        it_assert_ok(amqp_get_rpc_reply(c), "passive declare");
        uint32_t in_q = a->message_count;
        b = amqp_queue_declare(c, 1, amqp_cstring_bytes(tq), 1, 0, 0, 0, amqp_empty_table);
        it_assert_ok(amqp_get_rpc_reply(c), "passive declare");
        done = it_now_ms() - t0;
        if (in_q == 1 && b->message_count == 0)
            break;
        ck_assert_msg(done < TTL_MS + SLACK_MS,
                      "%lld ms after publication %s still holds %u messages (1 expected) and "
                      "%s %u (0 expected): expiry did not keep its schedule",
                      done, q, in_q, tq, b->message_count);
        it_sleep_ms(50);
    }
    /* All three timed ones were dead-lettered "expired"; the long one stays. */
    for (int i = 0; i < 3; i++) {
        char body[64];
        ck_assert_msg(it_get(c, 1, dlq, true, &m), "%d dead letters in %s, 3 expected", i, dlq);
        h = it_headers(&m);
        it_assert_table_str(&h, "x-first-death-reason", "expired");
        it_body(&m, body, sizeof body);
        ck_assert_msg(strcmp(body, "past-its-deadline") == 0 ||
                          strcmp(body, "own-expiration") == 0 || strcmp(body, "queue-ttl") == 0,
                      "unexpected dead letter '%s'", body);
        it_msg_free(&m);
    }
    it_expect_empty(c, 1, dlq);
    expect_get(c, q, "long-expiration", false);
    it_queue_delete(c, q);
    it_queue_delete(c, tq);
    it_queue_delete(c, dlq);
    it_disconnect(c);
}
END_TEST

/* A queue with x-delivery-limit 2: two nack-requeues, SIGKILL, restart: the next delivery
 * carries x-delivery-count 2, and one more return passes the limit (dead-lettered). */
START_TEST(delivery_count_survives_a_kill_and_the_limit_still_applies)
{
    struct pub p = pub_open();
    amqp_connection_state_t c;
    char q[64], dlq[64];
    struct it_table args;
    struct it_msg m;
    amqp_table_t h;

    it_name(q, sizeof q, "dur.limit");
    it_name(dlq, sizeof dlq, "dur.limit.dlq");
    durable_queue(p.c, dlq);
    it_table_init(&args);
    it_table_add_long(&args, "x-delivery-limit", 2);
    it_table_add_str(&args, "x-dead-letter-exchange", "");
    it_table_add_str(&args, "x-dead-letter-routing-key", dlq);
    it_queue_declare(p.c, 1, q, true, false, false, args.table, NULL, NULL);
    pub_send(&p, "", q, &persistent, "poison");
    pub_wait(&p);

    for (int i = 0; i < 2; i++) {
        ck_assert_msg(it_get(p.c, 1, q, false, &m), "delivery %d: queue empty", i + 1);
        it_assert_body(&m, "poison");
        h = it_headers(&m);
        if (i > 0)
            it_assert_table_long(&h, "x-delivery-count", i);
        ck_assert_int_eq(amqp_basic_nack(p.c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK);
        it_msg_free(&m);
    }
    it_assert_channel_alive(p.c, 1);
    it_sleep_ms(SETTLE_MS);

    restart_closing(true, p.c, NULL);
    c = it_connect();

    expect_queue(c, q, 1);
    ck_assert_msg(it_get(c, 1, q, false, &m), "the poison message did not come back");
    it_assert_body(&m, "poison");
    ck_assert(m.redelivered);
    h = it_headers(&m);
    it_assert_table_long(&h, "x-delivery-count", 2);
    ck_assert_int_eq(amqp_basic_nack(c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    /* The third return passes the limit of 2. */
    it_await_get(c, 1, dlq, "poison", &m, WAIT_MS);
    h = it_headers(&m);
    it_assert_table_str(&h, "x-first-death-reason", "delivery_limit");
    it_msg_free(&m);
    it_expect_empty(c, 1, q);
    it_queue_delete(c, q);
    it_queue_delete(c, dlq);
    it_disconnect(c);
}
END_TEST

/* In a queue with a delivery limit, a redelivery carries x-delivery-count; the message
 * acked after such a redelivery must stay acked after a restart, like any other. */
START_TEST(message_acked_after_a_counted_redelivery_does_not_come_back)
{
    struct pub p = pub_open();
    amqp_connection_state_t c;
    struct it_table args;
    struct it_msg m;
    amqp_table_t h;
    char q[64];

    it_name(q, sizeof q, "dur.counted");
    it_table_init(&args);
    it_table_add_long(&args, "x-delivery-limit", 5);
    it_queue_declare(p.c, 1, q, true, false, false, args.table, NULL, NULL);
    pub_send(&p, "", q, &persistent, "counted");
    pub_send(&p, "", q, &persistent, "stays");
    pub_wait(&p);
    ck_assert(it_get(p.c, 1, q, false, &m));
    it_assert_body(&m, "counted");
    ck_assert_int_eq(amqp_basic_nack(p.c, 1, m.delivery_tag, 0, 1), AMQP_STATUS_OK);
    it_msg_free(&m);
    ck_assert(it_get(p.c, 1, q, false, &m));
    it_assert_body(&m, "counted");
    h = it_headers(&m);
    it_assert_table_long(&h, "x-delivery-count", 1);
    it_ack(p.c, 1, m.delivery_tag, false);
    it_msg_free(&m);
    it_assert_channel_alive(p.c, 1);

    restart_closing(false, p.c, NULL);
    c = it_connect();
    expect_queue(c, q, 1);
    expect_get(c, q, "stays", false);
    it_expect_empty(c, 1, q);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* A persistent message fanned out to three durable queues is one record in the store (the
 * segment files grow by one body, not three), comes back in all three after SIGKILL, and
 * stays in the third once the other two have acked it. */
START_TEST(message_routed_to_three_queues_is_stored_once)
{
    enum { BODY_BYTES = 64 * 1024 };
    struct pub p = pub_open();
    amqp_connection_state_t c;
    char x[64], q[3][64], *body;
    long before, grown;

    it_name(x, sizeof x, "dur.fan");
    durable_exchange(p.c, x, "fanout");
    for (int i = 0; i < 3; i++) {
        durable_queue(p.c, it_name(q[i], sizeof q[i], "dur.fan.q"));
        it_bind(p.c, q[i], x, "", amqp_empty_table);
    }
    body = malloc(BODY_BYTES + 1);
    ck_assert_ptr_nonnull(body);
    for (int i = 0; i < BODY_BYTES; i++)
        body[i] = (char)('a' + i % 26);
    body[BODY_BYTES] = '\0';

    before = msgs_bytes(NULL);
    pub_send(&p, x, "", &persistent, body);
    pub_wait(&p);
    grown = msgs_bytes(NULL) - before;
    printf("it_durable: a %d-byte message to 3 queues grew the segments by %ld bytes\n", BODY_BYTES,
           grown);
    ck_assert_msg(grown >= BODY_BYTES && grown < BODY_BYTES + 4096,
                  "a %d-byte message to 3 queues grew the segment files by %ld bytes", BODY_BYTES,
                  grown);

    restart_closing(true, p.c, NULL);
    c = it_connect();
    for (int i = 0; i < 3; i++)
        expect_queue(c, q[i], 1);
    it_expect_get(c, 1, q[0], body, NULL);
    it_expect_get(c, 1, q[1], body, NULL);
    it_assert_channel_alive(c, 1);
    it_sleep_ms(SETTLE_MS);

    restart_closing(true, c, NULL);
    c = it_connect();
    expect_queue(c, q[0], 0);
    expect_queue(c, q[1], 0);
    expect_queue(c, q[2], 1);
    it_expect_get(c, 1, q[2], body, NULL);
    free(body);
    for (int i = 0; i < 3; i++)
        it_queue_delete(c, q[i]);
    it_exchange_delete(c, x);
    it_disconnect(c);
}
END_TEST

/* A purge and a queue.delete stay done after SIGKILL; a queue deleted and declared again
 * under the same name holds only what was published after. */
START_TEST(purge_and_delete_stay_done)
{
    struct pub p = pub_open();
    amqp_connection_state_t c;
    amqp_queue_purge_ok_t *purged;
    char q1[64], q2[64];

    it_name(q1, sizeof q1, "dur.purged");
    it_name(q2, sizeof q2, "dur.deleted");
    durable_queue(p.c, q1);
    durable_queue(p.c, q2);
    publish_persistent_n(&p, q1, "purged", 5);
    publish_persistent_n(&p, q2, "deleted", 3);
    purged = amqp_queue_purge(p.c, 1, amqp_cstring_bytes(q1));
    it_assert_ok(amqp_get_rpc_reply(p.c), "queue.purge");
    ck_assert_uint_eq(purged->message_count, 5);
    ck_assert_uint_eq(it_queue_delete(p.c, q2), 3);
    durable_queue(p.c, q2);
    pub_send(&p, "", q2, &persistent, "new");
    pub_wait(&p);
    it_sleep_ms(SETTLE_MS);

    restart_closing(true, p.c, NULL);
    c = it_connect();
    expect_queue(c, q1, 0);
    expect_queue(c, q2, 1);
    expect_get(c, q2, "new", false);
    it_expect_empty(c, 1, q2);

    /* And a deleted queue stays deleted. */
    it_queue_delete(c, q2);
    restart_closing(false, c, NULL);
    c = it_connect();
    expect_queue_missing(c, q2);
    it_queue_delete(c, q1);
    it_disconnect(c);
}
END_TEST

/* Runs a second $WARREND on the running broker's config and data directory: its output goes
 * to out. Returns its wait status; fails if it is still running after five seconds. */
static int run_second_warrend(char *out, size_t out_size)
{
    const char *path = getenv("WARREND");
    long long deadline = it_now_ms() + 5000;
    size_t len = 0;
    int fds[2], status;
    pid_t pid;

    ck_assert_msg(path != NULL, "WARREND is not set");
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(path, path, "-c", it_config_path(), "--port", "0", "--data-dir", it_data_dir(),
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        long long left = deadline - it_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(fds[0]);
            ck_abort_msg("a second warrend on the same data directory was still running after "
                         "5 s");
        }
        n = read(fds[0], out + len, out_size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == out_size - 1)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* A second warrend on a data directory in use stops at once with a clear reason and a
 * non-zero status, and leaves the first one and its data alone. */
START_TEST(second_broker_on_the_same_data_dir_refuses_to_start)
{
    struct pub p = pub_open();
    amqp_connection_state_t c;
    char q[64], out[4096];
    int status;

    it_name(q, sizeof q, "dur.lock");
    durable_queue(p.c, q);
    publish_persistent_n(&p, q, "before", 3);

    status = run_second_warrend(out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
                  "second warrend: status 0x%x, output: %s", (unsigned)status, out);
    ck_assert_msg(strstr(out, "in use by another warrend") != NULL &&
                      strstr(out, it_data_dir()) != NULL,
                  "second warrend gave no clear reason: %s", out);

    /* The first one still serves, and still owns its data. */
    publish_persistent_n(&p, q, "after", 2);
    restart_closing(false, p.c, NULL);
    c = it_connect();
    expect_queue(c, q, 5);
    expect_get(c, q, "before0", false);
    expect_get(c, q, "before1", false);
    expect_get(c, q, "before2", false);
    expect_sequence(c, q, "after", 2);
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* ---- the group commit ------------------------------------------------------------------ */

#define SYNC_INTERVAL_MS 200
/* How much earlier than the interval a confirm may come: the interval counts from the end
 * of the previous fsync, which is a little before the client sees its confirm and
 * publishes again. */
#define SYNC_SLACK_MS 40

/* With persistence.sync_interval = 200, the fsyncs are at least 200 ms apart and a confirm
 * waits for the fsync of its message: back-to-back publish-and-wait rounds take at least the
 * interval each. A burst is grouped into few fsyncs, so it is confirmed in about one
 * interval, not one per message. */
START_TEST(confirm_of_a_persistent_message_waits_for_the_group_fsync)
{
    struct pub p = pub_open();
    long long t0, latency, burst_ms;
    char q[64], line[256];
    size_t used = 0;

    it_name(q, sizeof q, "dur.sync");
    durable_queue(p.c, q);
    pub_send(&p, "", q, &persistent, "warm-up");
    pub_wait(&p);
    for (int i = 0; i < 4; i++) {
        t0 = it_now_ms();
        pub_send(&p, "", q, &persistent, "round");
        pub_wait(&p);
        latency = it_now_ms() - t0;
        used += (size_t)snprintf(line + used, sizeof line - used, " %lld", latency);
        ck_assert_msg(latency >= SYNC_INTERVAL_MS - SYNC_SLACK_MS,
                      "confirm %d came %lld ms after its publish, before the %d ms fsync "
                      "interval had passed",
                      i, latency, SYNC_INTERVAL_MS);
        ck_assert_msg(latency < 5 * SYNC_INTERVAL_MS, "confirm %d took %lld ms", i, latency);
    }
    printf("it_durable: sync_interval %d ms: back-to-back confirm latencies (ms):%s\n",
           SYNC_INTERVAL_MS, line);

    t0 = it_now_ms();
    publish_persistent_n(&p, q, "burst", 200);
    burst_ms = it_now_ms() - t0;
    printf("it_durable: sync_interval %d ms: 200 persistent publishes confirmed in %lld ms\n",
           SYNC_INTERVAL_MS, burst_ms);
    ck_assert_msg(burst_ms < 3 * SYNC_INTERVAL_MS,
                  "200 persistent publishes took %lld ms to confirm: not grouped", burst_ms);
    it_queue_delete(p.c, q);
    it_disconnect(p.c);
}
END_TEST

/* ---- disk space ------------------------------------------------------------------------ */

#define DISK_MESSAGES   100000
#define DISK_BODY_BYTES 1024
#define DISK_BATCH      5000
#define DISK_ACK_EVERY  500

/* 100k persistent 1 KiB messages (about 100 MiB, several 16 MiB segments), consumed and
 * acked: the segment files shrink back to about one segment; and nothing comes back after a
 * restart. */
START_TEST(disk_space_comes_back_once_messages_are_acked)
{
    struct pub p = pub_open();
    amqp_connection_state_t c = it_connect();
    long long t0, publish_ms, drain_ms;
    long peak, now = 0, deadline;
    int peak_segments, segments = 0;
    uint64_t last_tag = 0;
    char q[64], body[DISK_BODY_BYTES + 1];
    struct it_msg m;

    it_name(q, sizeof q, "dur.disk");
    durable_queue(p.c, q);
    memset(body, 'x', DISK_BODY_BYTES);
    body[DISK_BODY_BYTES] = '\0';

    t0 = it_now_ms();
    for (int i = 0; i < DISK_MESSAGES; i++) {
        snprintf(body, 16, "%09d", i);
        body[9] = '.';
        pub_send(&p, "", q, &persistent, body);
        if ((i + 1) % DISK_BATCH == 0)
            pub_wait(&p);
    }
    pub_wait(&p);
    publish_ms = it_now_ms() - t0;
    expect_queue(p.c, q, DISK_MESSAGES);
    peak = msgs_bytes(&peak_segments);
    ck_assert_msg(peak >= (long)DISK_MESSAGES * DISK_BODY_BYTES,
                  "%d messages of %d bytes take only %ld bytes of segments", DISK_MESSAGES,
                  DISK_BODY_BYTES, peak);

    t0 = it_now_ms();
    it_qos(c, 1, 2 * DISK_ACK_EVERY, false);
    it_consume(c, 1, q, "drain", false, false, NULL, 0);
    for (int i = 0; i < DISK_MESSAGES; i++) {
        char want[16];

        ck_assert_msg(it_next_delivery(c, CONFIRM_WAIT_MS, &m), "delivery %d did not come", i);
        snprintf(want, sizeof want, "%09d.", i);
        ck_assert_msg(m.message.body.len == DISK_BODY_BYTES &&
                          memcmp(m.message.body.bytes, want, 10) == 0,
                      "delivery %d is not message %d", i, i);
        last_tag = m.delivery_tag;
        it_msg_free(&m);
        if ((i + 1) % DISK_ACK_EVERY == 0 || i + 1 == DISK_MESSAGES)
            it_ack(c, 1, last_tag, true);
    }
    it_assert_channel_alive(c, 1);
    drain_ms = it_now_ms() - t0;

    /* Segments are deleted once their records are settled (after an fsync): wait for it. */
    deadline = (long)(it_now_ms() + 10000);
    while (it_now_ms() < deadline) {
        now = msgs_bytes(&segments);
        if (now <= SEGMENT_BYTES)
            break;
        it_sleep_ms(50);
    }
    printf("it_durable: %d x %d B persistent: published and confirmed in %lld ms, drained in "
           "%lld ms; segments: %ld bytes in %d files at the peak, %ld bytes in %d after the "
           "drain\n",
           DISK_MESSAGES, DISK_BODY_BYTES, publish_ms, drain_ms, peak, peak_segments, now,
           segments);
    ck_assert_msg(now <= SEGMENT_BYTES,
                  "after every message was acked the segments still take %ld bytes in %d files "
                  "(peak %ld)",
                  now, segments, peak);

    restart_closing(false, c, p.c);
    c = it_connect();
    expect_queue(c, q, 0);
    ck_assert_msg(msgs_bytes(NULL) <= SEGMENT_BYTES, "segments grew back after the restart");
    it_queue_delete(c, q);
    it_disconnect(c);
}
END_TEST

/* ---- damaged segment files ------------------------------------------------------------- */

#define DAMAGE_MESSAGES 20

/* Bodies of the damage tests: fixed width, so that no marker is part of another. */
static void damage_body(char *buf, size_t size, const char *prefix, int i)
{
    snprintf(buf, size, "%s-%03d.", prefix, i);
}

/* Fills a new durable queue with DAMAGE_MESSAGES persistent messages, confirmed, and stops
 * the broker cleanly; leaves the last segment's path in seg. */
static void fill_and_stop(char *q, size_t q_size, const char *prefix, char *seg, size_t seg_size)
{
    struct pub p = pub_open();
    char body[64];

    it_name(q, q_size, prefix);
    durable_queue(p.c, q);
    for (int i = 0; i < DAMAGE_MESSAGES; i++) {
        damage_body(body, sizeof body, prefix, i);
        pub_send(&p, "", q, &persistent, body);
    }
    pub_wait(&p);
    it_disconnect(p.c);
    it_broker_stop(false);
    last_segment(seg, seg_size);
}

/* Fails unless q holds the damage test's messages except number missing, in order. */
static void expect_all_but(amqp_connection_state_t c, const char *q, const char *prefix,
                           int missing)
{
    char body[64];

    expect_queue(c, q, DAMAGE_MESSAGES - 1);
    for (int i = 0; i < DAMAGE_MESSAGES; i++) {
        if (i == missing)
            continue;
        damage_body(body, sizeof body, prefix, i);
        expect_get(c, q, body, false);
    }
    it_expect_empty(c, 1, q);
}

/* The last record of the last segment, which holds the last message published. */
static struct rec last_message_record(const char *seg, const char *prefix, long *file_size)
{
    struct rec last = last_record(seg, file_size);
    char body[64];

    damage_body(body, sizeof body, prefix, DAMAGE_MESSAGES - 1);
    ck_assert_msg(last.type == REC_TYPE_MESSAGE && find_record(seg, body).offset == last.offset,
                  "the last record of %s (type %u at %ld) is not the last message published", seg,
                  last.type, last.offset);
    return last;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

/* A crash in the middle of an append: the last segment ends inside its last record. The
 * broker starts, says which file it cut, and every message before the torn one is there;
 * the cut file takes new appends that survive a restart. */
START_TEST(torn_last_record_is_cut_with_a_warning)
{
    amqp_connection_state_t c;
    char q[64], seg[PATH_MAX];
    struct rec last;
    long size;
    struct pub p;

    fill_and_stop(q, sizeof q, "torn", seg, sizeof seg);
    last = last_message_record(seg, "torn", &size);
    ck_assert_int_eq(size, last.offset + REC_FRAME + (long)last.body_len);
    ck_assert_int_eq(truncate(seg, last.offset + REC_FRAME + last.body_len / 2), 0);

    it_broker_start(NULL);
    ck_assert_msg(it_broker_log_has("warning", base_name(seg)),
                  "no warning naming %s after its last record was torn", seg);
    c = it_connect();
    expect_all_but(c, q, "torn", DAMAGE_MESSAGES - 1);

    p = pub_open();
    pub_send(&p, "", q, &persistent, "after-the-cut");
    pub_wait(&p);
    restart_closing(false, c, p.c);
    c = it_connect();
    expect_queue(c, q, 1);
    expect_get(c, q, "after-the-cut", false);
    it_disconnect(c);
}
END_TEST

/* A flipped byte inside the last record: its checksum fails, it is cut off like a torn
 * tail, with a warning naming the file. */
START_TEST(corrupt_last_record_is_cut_with_a_warning)
{
    amqp_connection_state_t c;
    char q[64], seg[PATH_MAX];
    struct rec last;
    long size;

    fill_and_stop(q, sizeof q, "flipend", seg, sizeof seg);
    last = last_message_record(seg, "flipend", &size);
    flip_byte(seg, last.offset + REC_FRAME + last.body_len / 2);

    it_broker_start(NULL);
    ck_assert_msg(it_broker_log_has("warning", base_name(seg)),
                  "no warning naming %s after its last record was corrupted", seg);
    c = it_connect();
    expect_all_but(c, q, "flipend", DAMAGE_MESSAGES - 1);
    it_disconnect(c);
}
END_TEST

/* Holds the path the next test's broker may name in an [error] line (it must outlive the
 * broker instance: the harness checks its log when it stops). */
static char corrupt_segment[PATH_MAX];

/* A flipped byte in a record in the middle of the last segment: not a torn append but
 * damage, so the broker logs an error naming the file, loses that message and recovers the
 * others, in order. */
START_TEST(corrupt_record_in_the_middle_is_skipped_with_an_error)
{
    static const char *const allowed[] = {corrupt_segment, NULL};
    amqp_connection_state_t c;
    char q[64], body[64];
    struct rec mid;

    fill_and_stop(q, sizeof q, "flipmid", corrupt_segment, sizeof corrupt_segment);
    damage_body(body, sizeof body, "flipmid", DAMAGE_MESSAGES / 2);
    mid = find_record(corrupt_segment, body);
    ck_assert_uint_eq(mid.type, REC_TYPE_MESSAGE);
    flip_byte(corrupt_segment, mid.offset + REC_FRAME + mid.body_len / 2);

    it_broker_start(allowed);
    ck_assert_msg(it_broker_log_has("error", corrupt_segment),
                  "no error naming %s after a record in its middle was corrupted", corrupt_segment);
    c = it_connect();
    expect_all_but(c, q, "flipmid", DAMAGE_MESSAGES / 2);
    it_disconnect(c);
}
END_TEST

/* ---- the program ----------------------------------------------------------------------- */

static Suite *suite_with(const char *name, const TTest *t)
{
    Suite *s = suite_create(name);
    TCase *tc = it_tcase(s, name);

    tcase_add_test(tc, t);
    return s;
}

int main(void)
{
    const char *host = getenv("AMQP_HOST");
    char config[64];
    Suite *s;
    TCase *tc;
    int rc = 0;

    if (host != NULL && host[0] != '\0') {
        printf("it_durable: skipped: the tests restart warrend, and AMQP_HOST names an external "
               "broker\n");
        return 77;
    }
    it_set_nofork();

    s = suite_create("durable");
    tc = it_tcase(s, "definitions");
    tcase_add_loop_test(tc, durable_definitions_survive_a_restart_and_the_rest_does_not, 0, 2);
    tcase_add_test(tc, deleted_exchange_stays_deleted);
    tc = it_tcase(s, "messages");
    tcase_add_loop_test(tc, persistent_messages_survive_in_order_and_transient_ones_do_not, 0, 2);
    tcase_add_test(tc, backlog_beyond_the_memory_window_survives_a_kill_in_order);
    tcase_add_loop_test(tc, unacked_delivery_comes_back_redelivered_and_acked_one_does_not, 0, 2);
    tcase_add_test(tc, delivery_count_survives_a_kill_and_the_limit_still_applies);
    tcase_add_test(tc, expiry_keeps_its_schedule_across_a_restart);
    tcase_add_test(tc, message_acked_after_a_counted_redelivery_does_not_come_back);
    tcase_add_test(tc, message_routed_to_three_queues_is_stored_once);
    tcase_add_test(tc, purge_and_delete_stay_done);
    tcase_add_test(tc, second_broker_on_the_same_data_dir_refuses_to_start);
    rc |= it_run(s, NULL);

    snprintf(config, sizeof config, "persistence.sync_interval = %d\n", SYNC_INTERVAL_MS);
    rc |= it_run(
        suite_with("sync_interval", confirm_of_a_persistent_message_waits_for_the_group_fsync),
        config);
    rc |= it_run(suite_with("disk_space", disk_space_comes_back_once_messages_are_acked), NULL);
    rc |= it_run(suite_with("torn_tail", torn_last_record_is_cut_with_a_warning), NULL);
    rc |= it_run(suite_with("corrupt_tail", corrupt_last_record_is_cut_with_a_warning), NULL);
    rc |= it_run(
        suite_with("corrupt_middle", corrupt_record_in_the_middle_is_skipped_with_an_error), NULL);
    return rc;
}
