/* Clients that try to hurt the broker, and others that must not notice: connections that
 * never finish the handshake are dropped after handshake_timeout (1 s here) while another
 * client keeps its round trips fast; a client that opens channels in a loop meets
 * channel_max with RabbitMQ's 530; frame headers announcing 2 GiB before the handshake is
 * over are refused from the header alone, so the broker's memory does not grow.
 *
 * The channel loop runs against RabbitMQ as well (AMQP_HOST), with the same text. The others
 * are warrend's: handshake_timeout is its configuration (RabbitMQ's is 10 s), and RabbitMQ
 * treats an oversized frame header differently (before start-ok it waits for the frame until
 * its handshake timeout; after it, it resets the connection without a connection.close). */
#define _DEFAULT_SOURCE
#include "harness.h"
#include "sec_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS 1000
#define CONFIG               "handshake_timeout = 1000\n"
#define SILENT_CLIENTS       20
#define DROP_WAIT_MS         4000
#define ROUND_TRIP_MAX_MS    500  /* generous: a shared machine, sanitizer builds */
#define CHANNEL_MAX          2047 /* warrend's and RabbitMQ's default */
#define HUGE_FRAME_SIZE      0x80000000u
#define HUGE_CLIENTS         10
#define JUNK_BYTES           (4 * 1024 * 1024)
#define RSS_GROWTH_MAX_KIB   (16 * 1024)

static const uint8_t protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

/* ---- raw sockets ----------------------------------------------------------------------- */

static void send_all(int fd, const void *data, size_t len)
{
    ck_assert_msg(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len, "send: %s", strerror(errno));
}

/* connection.start-ok with PLAIN guest/guest: empty client properties, locale en_US. */
static size_t start_ok_frame(uint8_t *out)
{
    static const uint8_t payload[] = {
        0, 10,  0,   11,            /* connection.start-ok */
        0, 0,   0,   0,             /* client-properties {} */
        5, 'P', 'L', 'A', 'I', 'N', /* mechanism */
        0, 0,   0,   12,  0,   'g', 'u', 'e', 's', 't', 0, 'g', 'u', 'e', 's', 't', /* response */
        5, 'e', 'n', '_', 'U', 'S',                                                 /* locale */
    };
    uint32_t size = htonl(sizeof payload);

    out[0] = 1; /* method */
    out[1] = out[2] = 0;
    memcpy(out + 3, &size, 4);
    memcpy(out + 7, payload, sizeof payload);
    out[7 + sizeof payload] = 0xce;
    return 8 + sizeof payload;
}

/* Reads what fd has until it is closed or timeout_ms pass; returns the bytes read into buf
 * (at most size) and sets *closed when the peer closed or reset the connection. */
static size_t read_until_closed(int fd, uint8_t *buf, size_t size, int timeout_ms, bool *closed)
{
    long long deadline = it_now_ms() + timeout_ms;
    size_t got = 0;

    *closed = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - it_now_ms();
        uint8_t scratch[4096];
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return got;
        n = recv(fd, got < size ? buf + got : scratch, got < size ? size - got : sizeof scratch, 0);
        if (n <= 0) {
            *closed = n == 0 || errno == ECONNRESET;
            return got;
        }
        if (got < size)
            got += (size_t)n;
    }
}

/* The (class, method) ids of the method frames in buf, as "10.10 10.30"; frames are checked
 * to be whole and well formed. */
static void method_ids(const uint8_t *buf, size_t len, char *out, size_t out_size)
{
    size_t off = 0;

    out[0] = '\0';
    while (off < len) {
        uint32_t size;

        ck_assert_msg(len - off >= 7, "a partial frame header at offset %zu", off);
        size = (uint32_t)buf[off + 3] << 24 | (uint32_t)buf[off + 4] << 16 |
               (uint32_t)buf[off + 5] << 8 | buf[off + 6];
        ck_assert_msg(len - off - 7 >= (size_t)size + 1, "a partial frame at offset %zu", off);
        ck_assert_msg(buf[off + 7 + size] == 0xce, "no frame end at offset %zu", off);
        if (buf[off] == 1 && size >= 4)
            snprintf(out + strlen(out), out_size - strlen(out), "%s%u.%u", out[0] ? " " : "",
                     buf[off + 7] << 8 | buf[off + 8], buf[off + 9] << 8 | buf[off + 10]);
        off += 7 + size + 1;
    }
}

/* Like method_ids, but stops quietly at a partial frame (while reading). */
static void method_ids_lenient(const uint8_t *buf, size_t len, char *out, size_t out_size)
{
    size_t off = 0, whole = 0;

    while (len - off >= 7) {
        uint32_t size = (uint32_t)buf[off + 3] << 24 | (uint32_t)buf[off + 4] << 16 |
                        (uint32_t)buf[off + 5] << 8 | buf[off + 6];
        if (len - off - 7 < (size_t)size + 1)
            break;
        off += 7 + size + 1;
        whole = off;
    }
    method_ids(buf, whole, out, out_size);
}

/* ---- the handshake timeout ------------------------------------------------------------- */

enum stage { SILENT, HEADER_ONLY, START_OK_ONLY };

struct stalled {
    int fd;
    enum stage stage;
    long long opened_ms, closed_ms;
    uint8_t got[8192];
    size_t got_len;
};

static void open_stalled(struct stalled *s, enum stage stage)
{
    uint8_t frame[64];

    memset(s, 0, sizeof *s);
    s->stage = stage;
    s->fd = it_raw_socket();
    s->opened_ms = it_now_ms();
    if (stage != SILENT)
        send_all(s->fd, protocol_header, sizeof protocol_header);
    if (stage == START_OK_ONLY)
        send_all(s->fd, frame, start_ok_frame(frame));
}

/* Takes what the broker sent on s without waiting; notes when it closed. */
static void poll_stalled(struct stalled *s)
{
    for (;;) {
        ssize_t n = recv(s->fd, s->got + s->got_len, sizeof s->got - s->got_len, MSG_DONTWAIT);

        if (n > 0) {
            s->got_len += (size_t)n;
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            s->closed_ms = it_now_ms();
        return;
    }
}

/* A publish and a get on the working client: the time it took, in ms. */
static long long round_trip(amqp_connection_state_t c, const char *q)
{
    long long start = it_now_ms();

    it_publish(c, "", q, "ping");
    it_expect_get(c, 1, q, "ping", NULL);
    return it_now_ms() - start;
}

START_TEST(stalled_handshakes_are_dropped_after_handshake_timeout)
{
    struct stalled s[SILENT_CLIENTS + 2];
    size_t n = sizeof s / sizeof s[0];
    amqp_connection_state_t worker = it_connect();
    long long deadline, slowest = 0;
    int trips = 0;
    size_t open;
    char q[64], ids[128];

    it_temp_queue(worker, it_name(q, sizeof q, "abuse.worker"));
    for (size_t i = 0; i < SILENT_CLIENTS; i++)
        open_stalled(&s[i], SILENT);
    open_stalled(&s[SILENT_CLIENTS], HEADER_ONLY);
    open_stalled(&s[SILENT_CLIENTS + 1], START_OK_ONLY);
    /* The worker goes on while the others wait to be dropped. */
    deadline = it_now_ms() + DROP_WAIT_MS;
    do {
        long long took = round_trip(worker, q);
        slowest = took > slowest ? took : slowest;
        trips++;
        open = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i].closed_ms == 0)
                poll_stalled(&s[i]);
            open += s[i].closed_ms == 0;
        }
        it_sleep_ms(20);
    } while (open > 0 && it_now_ms() < deadline);

    ck_assert_msg(open == 0, "%zu stalled connections still open after %d ms", open, DROP_WAIT_MS);
    for (size_t i = 0; i < n; i++) {
        long long after = s[i].closed_ms - s[i].opened_ms;

        ck_assert_msg(after >= HANDSHAKE_TIMEOUT_MS - 100 && after <= HANDSHAKE_TIMEOUT_MS + 1500,
                      "connection %zu dropped after %lld ms, handshake_timeout is %d ms", i, after,
                      HANDSHAKE_TIMEOUT_MS);
        method_ids(s[i].got, s[i].got_len, ids, sizeof ids);
        /* Nothing but the handshake's own methods: connection.start, then tune. */
        ck_assert_str_eq(ids, s[i].stage == SILENT        ? ""
                              : s[i].stage == HEADER_ONLY ? "10.10"
                                                          : "10.10 10.30");
        close(s[i].fd);
    }
    ck_assert_msg(slowest <= ROUND_TRIP_MAX_MS, "a round trip of the working client took %lld ms",
                  slowest);
    ck_assert(it_broker_log_has("warning", "handshake timeout: closing connection"));
    printf("stalled handshakes: %zu dropped; the working client made %d round trips, the "
           "slowest %lld ms\n",
           n, trips, slowest);
    it_disconnect(worker);
}
END_TEST

/* ---- channels in a loop ---------------------------------------------------------------- */

START_TEST(channel_loop_meets_channel_max_and_others_stay_served)
{
    amqp_connection_state_t greedy = it_connect(), worker = it_connect();
    long long start = it_now_ms(), slowest = 0;
    amqp_rpc_reply_t r;
    char q[64];

    it_temp_queue(worker, it_name(q, sizeof q, "abuse.channels"));
    ck_assert_int_eq(amqp_get_channel_max(greedy), CHANNEL_MAX);
    for (int ch = 2; ch <= CHANNEL_MAX; ch++) {
        it_channel_open(greedy, (amqp_channel_t)ch);
        if (ch % 100 == 0) {
            long long took = round_trip(worker, q);
            slowest = took > slowest ? took : slowest;
        }
    }
    amqp_channel_open(greedy, CHANNEL_MAX + 1);
    r = amqp_get_rpc_reply(greedy);
    it_expect_connection_close(greedy, r, 530,
                               "NOT_ALLOWED - number of channels opened (2047) has reached the "
                               "negotiated channel_max (2047)");
    it_destroy(greedy);
    ck_assert_msg(slowest <= ROUND_TRIP_MAX_MS,
                  "a round trip of the other client took %lld ms during the loop", slowest);
    round_trip(worker, q);
    printf("%d channels opened in %lld ms; the other client's slowest round trip %lld ms\n",
           CHANNEL_MAX, it_now_ms() - start, slowest);
    it_disconnect(worker);
}
END_TEST

/* ---- frames of 2 GiB ------------------------------------------------------------------- */

/* Before start-ok, as RabbitMQ does before tune, the broker closes without a word. */
START_TEST(huge_frame_before_start_ok_closes_the_socket_silently)
{
    int fd = it_raw_socket();
    uint8_t header[7] = {1, 0, 0, 0x80, 0, 0, 0}, got[4096];
    bool closed;
    size_t len;
    char ids[64];

    send_all(fd, protocol_header, sizeof protocol_header);
    send_all(fd, header, sizeof header);
    len = read_until_closed(fd, got, sizeof got, 2000, &closed);
    ck_assert_msg(closed, "the connection is still open 2 s after a frame of 2 GiB");
    method_ids(got, len, ids, sizeof ids);
    ck_assert_str_eq(ids, "10.10");
    close(fd);
}
END_TEST

/* After start-ok the connection can be closed properly: 501 with RabbitMQ's wording of a
 * frame over the handshake's frame_max (4096, of which 4088 payload); close-ok ends it. */
START_TEST(huge_frame_before_tune_ok_is_a_frame_error)
{
    int fd = it_raw_socket();
    uint8_t frame[64], header[7] = {1, 0, 0, 0x80, 0, 0, 0}, got[4096];
    static const uint8_t close_ok[12] = {1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xce};
    static const char text[] =
        "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,2147483648,4088}";
    long long deadline = it_now_ms() + 2000;
    bool closed = false;
    size_t len = 0, off;
    char ids[64] = "";

    send_all(fd, protocol_header, sizeof protocol_header);
    send_all(fd, frame, start_ok_frame(frame));
    send_all(fd, header, sizeof header);
    /* Until connection.close has come whole. */
    while (!closed && strstr(ids, "10.50") == NULL && it_now_ms() < deadline) {
        len += read_until_closed(fd, got + len, sizeof got - len, 50, &closed);
        method_ids_lenient(got, len, ids, sizeof ids);
    }
    method_ids(got, len, ids, sizeof ids);
    ck_assert_str_eq(ids, "10.10 10.30 10.50");
    /* The close's reply code and text, in the last frame (before its class and method ids
     * and the frame end). */
    off = len - 1 - 4 - strlen(text) - 1 - 2;
    ck_assert_uint_eq(got[off] << 8 | got[off + 1], 501);
    ck_assert_uint_eq(got[off + 2], strlen(text));
    ck_assert(memcmp(got + off + 3, text, strlen(text)) == 0);
    send_all(fd, close_ok, sizeof close_ok);
    read_until_closed(fd, got, sizeof got, 1000, &closed);
    ck_assert_msg(closed, "the connection is still open 1 s after close-ok");
    close(fd);
}
END_TEST

/* Ten clients announce 2 GiB each and keep sending: the broker's memory does not follow. */
START_TEST(huge_frames_do_not_grow_broker_memory)
{
    pid_t pid = sec_broker_pid();
    static uint8_t junk[JUNK_BYTES];
    uint8_t header[7] = {1, 0, 0, 0x80, 0, 0, 0};
    long before, after;
    int fds[HUGE_CLIENTS];
    amqp_connection_state_t c;

    ck_assert_msg(pid > 0, "cannot find the harness's warrend");
    before = sec_rss_kib(pid);
    memset(junk, 'j', sizeof junk);
    for (int i = 0; i < HUGE_CLIENTS; i++) {
        fds[i] = it_raw_socket();
        send_all(fds[i], protocol_header, sizeof protocol_header);
        send_all(fds[i], header, sizeof header);
    }
    for (int i = 0; i < HUGE_CLIENTS; i++) {
        /* The broker closes the connection: most of this is refused, which is the point. */
        size_t sent = 0;
        while (sent < sizeof junk) {
            ssize_t n = send(fds[i], junk + sent, sizeof junk - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
    }
    it_sleep_ms(300);
    after = sec_rss_kib(pid);
    for (int i = 0; i < HUGE_CLIENTS; i++)
        close(fds[i]);
    ck_assert_msg(after - before <= RSS_GROWTH_MAX_KIB,
                  "warrend grew from %ld to %ld KiB with %d frames of 2 GiB announced", before,
                  after, HUGE_CLIENTS);
    printf("warrend resident memory %ld KiB before, %ld KiB with %d frames of 2 GiB announced\n",
           before, after, HUGE_CLIENTS);
    /* And it serves others. */
    c = it_connect();
    it_assert_channel_alive(c, 1);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abuse");
    TCase *tc;

    tc = it_tcase(s, "handshake");
    it_add_warrend_test(tc, stalled_handshakes_are_dropped_after_handshake_timeout);

    tc = it_tcase(s, "channels");
    tcase_add_test(tc, channel_loop_meets_channel_max_and_others_stay_served);

    tc = it_tcase(s, "frames");
    it_add_warrend_test(tc, huge_frame_before_start_ok_closes_the_socket_silently);
    it_add_warrend_test(tc, huge_frame_before_tune_ok_is_a_frame_error);
    it_add_warrend_test(tc, huge_frames_do_not_grow_broker_memory);
    return it_run(s, CONFIG);
}
