/* How clients that connect to a follower reach the leader (CLUSTERING.md §2.8), on real
 * loopback sockets and one libev loop in the test's process:
 *
 *   header  the PROXY protocol v1 line (src/cluster/proxy_header.c): the bytes written for
 *           IPv4 and IPv6 are the spec's, and the reader is as strict as the spec;
 *   relay   the follower's proxy (src/cluster/proxy.c): a large stream both ways with slow
 *           readers stays within the buffer bound, half-closes pass through, a refusing or
 *           unknown leader closes the client at once, leader changes drop relays;
 *   leader  a real server (src/broker/server.c) in this process: it takes a PROXY header from
 *           its allow-list only, names the client by it, closes on a malformed one, sees
 *           the real client through the proxy; and refuse mode answers connection.open
 *           with 530 naming the leader, and the management API with 503. */
#include "build_config.h" /* _GNU_SOURCE for accept4 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "amqp/frame.h"
#include "amqp/method.h"
#include "src/base/config.h"
#include "src/base/log.h"
#include "src/broker/conn.h"
#include "src/broker/server.h"
#include "src/cluster/proxy.h"
#include "src/cluster/proxy_header.h"
#include "src/mgmt/mgmt.h"

#define WAIT_MS 10000 /* a bound on every wait: a bug fails the test instead of hanging it */

/* ---- The loop and sockets -------------------------------------------------------------- */

static struct ev_loop *loop;
static ev_timer tick; /* so that a loop turn with nothing to do returns soon */

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

static void turn(void)
{
    ev_run(loop, EVRUN_ONCE);
}

/* Runs the loop until cond holds; fails the test after WAIT_MS. */
#define PUMP_UNTIL(cond)                                                                           \
    do {                                                                                           \
        long long until_ = mono_ms() + WAIT_MS;                                                    \
        while (!(cond)) {                                                                          \
            ck_assert_msg(mono_ms() < until_, "gave up waiting for %s", #cond);                    \
            turn();                                                                                \
        }                                                                                          \
    } while (0)

static void loop_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    loop = ev_default_loop(0);
    ev_timer_init(&tick, on_tick, 0.002, 0.002);
    ev_timer_start(loop, &tick);
}

static void loop_stop(void)
{
    ev_timer_stop(loop, &tick);
}

static void set_nonblocking(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static socklen_t make_addr(int family, const char *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
        return sizeof *in;
    }
    {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
        return sizeof *in6;
    }
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;

    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port)
                                  : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

/* A non-blocking listener on ip, port chosen by the kernel; -1 if the family is missing. */
static int listen_on(int family, const char *ip, uint16_t *port)
{
    struct sockaddr_storage a;
    socklen_t len = make_addr(family, ip, 0, &a);
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    *port = local_port(fd);
    return fd;
}

/* A client connected to ip:port (the connect completes against a listener's backlog), then
 * made non-blocking. */
static int connect_to(int family, const char *ip, uint16_t port)
{
    struct sockaddr_storage a;
    socklen_t len = make_addr(family, ip, port, &a);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, len) == 0, "connect: %s", strerror(errno));
    set_nonblocking(fd);
    return fd;
}

/* The next connection on listener lfd, running the loop while none is there. */
static int accept_one(int lfd, struct sockaddr_storage *peer, socklen_t *peer_len)
{
    struct sockaddr_storage ignored;
    socklen_t ignored_len = sizeof ignored;
    int fd;

    if (peer == NULL) {
        peer = &ignored;
        peer_len = &ignored_len;
    }
    *peer_len = sizeof *peer;
    PUMP_UNTIL((fd = accept4(lfd, (struct sockaddr *)peer, peer_len, SOCK_NONBLOCK)) >= 0);
    return fd;
}

static void write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            turn();
            continue;
        }
        ck_assert_msg(n > 0, "write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads exactly len bytes, running the loop meanwhile; fails if the socket closes first. */
static void read_exactly(int fd, void *out, size_t len)
{
    uint8_t *p = out;
    size_t got = 0;
    long long until = mono_ms() + WAIT_MS;

    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EINTR),
                      "socket closed after %zu of %zu bytes", got, len);
        ck_assert_msg(mono_ms() < until, "gave up waiting for %zu bytes (got %zu)", len, got);
        turn();
    }
}

/* True once the peer has closed fd's connection (end of stream or reset); bytes still
 * arriving are read and dropped. */
static bool peer_closed(int fd)
{
    uint8_t buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return true;
        if (n < 0)
            return false;
    }
}

/* ---- The PROXY header ------------------------------------------------------------------ */

static int parse_str(const char *text, struct proxy_header *h)
{
    const char *why;

    return proxy_header_parse((const uint8_t *)text, strlen(text), h, &why);
}

static const char *addr_text(const struct sockaddr_storage *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (a->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)a)->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(((struct sockaddr_in *)a)->sin_port));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a)->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)a)->sin6_port));
    }
    return out;
}

static void format_str(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
                       char *out)
{
    size_t n = proxy_header_format((const struct sockaddr *)src, (const struct sockaddr *)dst,
                                   (uint8_t *)out);

    ck_assert_uint_le(n, PROXY_HEADER_MAX);
    out[n] = '\0';
}

START_TEST(header_for_ipv4_is_the_spec_line)
{
    struct sockaddr_storage src, dst;
    char line[PROXY_HEADER_MAX + 1];

    make_addr(AF_INET, "10.1.2.3", 5555, &src);
    make_addr(AF_INET, "127.0.0.1", 5672, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n");
}
END_TEST

START_TEST(header_for_ipv6_is_the_spec_line)
{
    struct sockaddr_storage src, dst;
    char line[PROXY_HEADER_MAX + 1];

    make_addr(AF_INET6, "2001:db8:0:0:0:0:0:1", 5555, &src);
    make_addr(AF_INET6, "::1", 5672, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP6 2001:db8::1 ::1 5555 5672\r\n");
    /* Hexadecimal groups only, where inet_ntop() would write a dotted IPv4 tail (the spec's
     * form has none, and the reader refuses it). */
    make_addr(AF_INET6, "::ffff:103", 1, &src);
    make_addr(AF_INET6, "::1.2.3.4", 2, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP6 ::ffff:103 ::102:304 1 2\r\n");
    make_addr(AF_INET6, "1:0:2:0:0:3:0:0", 1, &src);
    make_addr(AF_INET6, "::", 2, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP6 1:0:2::3:0:0 :: 1 2\r\n");
    /* The longest TCP6 line is the spec's 104 bytes. */
    make_addr(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, &src);
    make_addr(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, &dst);
    format_str(&src, &dst, line);
    ck_assert_uint_eq(strlen(line), 104);
}
END_TEST

START_TEST(header_for_mapped_or_mixed_addresses)
{
    struct sockaddr_storage src, dst;
    char line[PROXY_HEADER_MAX + 1];

    /* A client on an IPv6 socket with an IPv4-mapped address is an IPv4 client. */
    make_addr(AF_INET6, "::ffff:192.0.2.10", 40000, &src);
    make_addr(AF_INET, "192.0.2.1", 5672, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP4 192.0.2.10 192.0.2.1 40000 5672\r\n");
    /* Beside a true IPv6 address a mapped one stays IPv6, as the reader would take it. */
    make_addr(AF_INET6, "::ffff:192.0.2.10", 40000, &src);
    make_addr(AF_INET6, "2001:db8::1", 5672, &dst);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY TCP6 ::ffff:c000:20a 2001:db8::1 40000 5672\r\n");
    make_addr(AF_INET, "192.0.2.1", 5672, &dst);
    /* Two families cannot share a line: UNKNOWN, and the receiver uses what it sees. */
    make_addr(AF_INET6, "2001:db8::1", 40000, &src);
    format_str(&src, &dst, line);
    ck_assert_str_eq(line, "PROXY UNKNOWN\r\n");
    format_str(&src, NULL, line);
    ck_assert_str_eq(line, "PROXY UNKNOWN\r\n");
}
END_TEST

START_TEST(reader_takes_tcp4_tcp6_and_unknown)
{
    struct proxy_header h;
    char text[64];

    ck_assert_int_eq(parse_str("PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\r\nAMQP", &h), 41);
    ck_assert(h.known);
    ck_assert_str_eq(addr_text(&h.src, text, sizeof text), "10.1.2.3:5555");
    ck_assert_str_eq(addr_text(&h.dst, text, sizeof text), "127.0.0.1:5672");

    ck_assert_int_eq(parse_str("PROXY TCP6 2001:DB8::1 ::1 0 65535\r\n", &h), 36);
    ck_assert_str_eq(addr_text(&h.src, text, sizeof text), "[2001:db8::1]:0");
    ck_assert_str_eq(addr_text(&h.dst, text, sizeof text), "[::1]:65535");

    ck_assert_int_eq(parse_str("PROXY UNKNOWN\r\n", &h), 15);
    ck_assert(!h.known);
    ck_assert_int_eq(parse_str("PROXY UNKNOWN anything at all\r\n", &h), 31);
    ck_assert(!h.known);
}
END_TEST

START_TEST(reader_waits_for_the_crlf)
{
    static const char line[] = "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n";
    struct proxy_header h;
    const char *why;

    /* Every prefix of a good line asks for more: a header may arrive a byte at a time. */
    for (size_t len = 0; len < sizeof line - 1; len++)
        ck_assert_int_eq(proxy_header_parse((const uint8_t *)line, len, &h, &why), 0);
}
END_TEST

START_TEST(reader_is_as_strict_as_the_spec)
{
    static const char *const bad[] = {
        "PROXZ TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n",   /* not the magic */
        "PROXY  TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n",  /* two spaces */
        "PROXY TCP4 10.1.2.3  127.0.0.1 5555 5672\r\n",  /* two spaces */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672 \r\n",  /* a trailing space */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\n",     /* LF alone */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\rx",    /* CR alone */
        "PROXY TCP4 010.1.2.3 127.0.0.1 5555 5672\r\n",  /* a leading zero */
        "PROXY TCP4 10.1.2.3 127.0.0.1 05555 5672\r\n",  /* a leading zero */
        "PROXY TCP4 10.1.2.256 127.0.0.1 5555 5672\r\n", /* an octet > 255 */
        "PROXY TCP4 10.1.2 127.0.0.1 5555 5672\r\n",     /* three octets */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 65536\r\n",  /* a port > 65535 */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555\r\n",        /* a port missing */
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672 1\r\n", /* a field too many */
        "PROXY TCP4 ::1 ::1 5555 5672\r\n",              /* IPv6 under TCP4 */
        "PROXY TCP6 10.1.2.3 127.0.0.1 5555 5672\r\n",   /* IPv4 under TCP6 */
        "PROXY TCP6 ::ffff:10.1.2.3 ::1 5555 5672\r\n",  /* dotted tail: not the spec's form */
        "PROXY TCP6 1::2::3 ::1 5555 5672\r\n",          /* two "::" */
        "PROXY UDP4 10.1.2.3 127.0.0.1 5555 5672\r\n",   /* not a TCP protocol */
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "AMQP\x00\x00\x09\x01",
        "GET / HTTP/1.1\r\n",
    };
    struct proxy_header h;
    char line[200];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse_str(bad[i], &h) == -1, "accepted: %s", bad[i]);
    /* No CRLF within 107 bytes (the longest line the spec allows) ends the wait. */
    memset(line, 'f', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    ck_assert_int_eq(proxy_header_parse((const uint8_t *)line, 106, &h, &(const char *){0}), 0);
    ck_assert_int_eq(proxy_header_parse((const uint8_t *)line, 107, &h, &(const char *){0}), -1);
    memcpy(line + 105, "\r\n", 2);
    ck_assert_int_eq(proxy_header_parse((const uint8_t *)line, 200, &h, &(const char *){0}), 107);
}
END_TEST

/* ---- The relay ------------------------------------------------------------------------- */

static int follower_lfd = -1; /* the follower's client listener (the test accepts on it) */
static int leader_lfd = -1;   /* the leader's port (the test plays the leader) */
static uint16_t follower_port, leader_port;
static struct proxy *proxy;

#define TEST_BUFFER (64u * 1024)

static void set_leader_port(uint16_t port)
{
    char amqp[32], http[32];
    struct proxy_leader l = {.amqp = amqp, .http = http};

    snprintf(amqp, sizeof amqp, "127.0.0.1:%u", port);
    snprintf(http, sizeof http, "127.0.0.1:%u", port);
    ck_assert_int_eq(proxy_set_leader(proxy, &l), 0);
}

static void relay_setup_with(bool proxy_header)
{
    struct proxy_options opt = {.buffer_bytes = TEST_BUFFER, .no_proxy_header = !proxy_header};

    loop_start();
    follower_lfd = listen_on(AF_INET, "127.0.0.1", &follower_port);
    leader_lfd = listen_on(AF_INET, "127.0.0.1", &leader_port);
    ck_assert_int_ge(follower_lfd, 0);
    ck_assert_int_ge(leader_lfd, 0);
    proxy = proxy_new(loop, &opt);
    set_leader_port(leader_port);
}

static void relay_setup(void)
{
    relay_setup_with(false);
}

static void relay_teardown(void)
{
    proxy_free(proxy);
    proxy = NULL;
    close(follower_lfd);
    close(leader_lfd);
    loop_stop();
}

static struct proxy_stats stats(void)
{
    struct proxy_stats s;

    proxy_stats(proxy, &s);
    return s;
}

/* A client of the follower, accepted and handed to the proxy as kind; *leader gets the
 * leader's end of the relay (unless NULL: then none is waited for). */
static int open_relay_from(int family, const char *ip, int lfd, uint16_t port, enum proxy_kind kind,
                           int *leader)
{
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int client = connect_to(family, ip, port);
    int fd = accept_one(lfd, &peer, &peer_len);

    proxy_accept(proxy, fd, (struct sockaddr *)&peer, peer_len, kind);
    if (leader != NULL)
        *leader = accept_one(leader_lfd, NULL, NULL);
    return client;
}

static int open_relay(enum proxy_kind kind, int *leader)
{
    return open_relay_from(AF_INET, "127.0.0.1", follower_lfd, follower_port, kind, leader);
}

/* The stream each side writes: random bytes with a prime period, so that no buffer size
 * could hide a lost or reordered piece; a window of up to STREAM_CHUNK bytes starts at
 * every position of the table. */
#define STREAM_PERIOD 1048573u /* a prime */
#define STREAM_CHUNK  (1u << 20)
static uint8_t *stream_table;

static const uint8_t *pattern_at(uint64_t i, uint32_t salt)
{
    if (stream_table == NULL) {
        uint32_t x = 2463534242u;
        stream_table = malloc(STREAM_PERIOD + STREAM_CHUNK);
        for (size_t k = 0; k < STREAM_PERIOD + STREAM_CHUNK; k++) {
            if (k < STREAM_PERIOD) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                stream_table[k] = (uint8_t)x;
            } else {
                stream_table[k] = stream_table[k - STREAM_PERIOD];
            }
        }
    }
    return stream_table + (i + salt) % STREAM_PERIOD;
}

struct stream {
    uint64_t sent, received;
    uint32_t salt;
    bool eof;
};

/* Writes up to max bytes of the stream (up to total); returns how many the socket took. */
static size_t send_some(int fd, struct stream *s, uint64_t total, size_t max)
{
    size_t n = max < STREAM_CHUNK ? max : STREAM_CHUNK;
    ssize_t w;

    if (total - s->sent < n)
        n = (size_t)(total - s->sent);
    if (n == 0)
        return 0;
    w = send(fd, pattern_at(s->sent, s->salt), n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    ck_assert_msg(w > 0, "write: %s", strerror(errno));
    s->sent += (uint64_t)w;
    return (size_t)w;
}

/* Reads up to max bytes and checks them against the stream; notes its end. */
static size_t receive_some(int fd, struct stream *s, size_t max)
{
    static uint8_t buf[64 * 1024];
    ssize_t n = recv(fd, buf, max < sizeof buf ? max : sizeof buf, 0);

    if (n == 0)
        s->eof = true;
    if (n <= 0) {
        ck_assert_msg(n == 0 || errno == EAGAIN || errno == EINTR, "read: %s", strerror(errno));
        return 0;
    }
    ck_assert_msg(memcmp(buf, pattern_at(s->received, s->salt), (size_t)n) == 0,
                  "the bytes after %llu differ", (unsigned long long)s->received);
    s->received += (uint64_t)n;
    return (size_t)n;
}

START_TEST(large_streams_both_ways_stay_within_the_buffer_bound)
{
    const uint64_t total = 32u << 20; /* each way: more than the kernel's buffers can hold */
    struct stream up = {.salt = 0}, down = {.salt = 500000};
    int leader, client = open_relay(PROXY_AMQP, &leader);
    struct proxy_stats st;
    int idle = 0;

    /* Nobody reads: the writers stall once the kernel's buffers and the proxy's are full,
     * and the proxy holds exactly its bound in each direction, no more. */
    while (idle < 50) {
        size_t moved =
            send_some(client, &up, total, 1u << 20) + send_some(leader, &down, total, 1u << 20);
        turn();
        idle = moved == 0 ? idle + 1 : 0;
    }
    printf("writers stalled after %llu and %llu bytes\n", (unsigned long long)up.sent,
           (unsigned long long)down.sent);
    ck_assert_msg(up.sent < total && down.sent < total,
                  "the writers never stalled: the test proves nothing (sent %llu and %llu)",
                  (unsigned long long)up.sent, (unsigned long long)down.sent);
    st = stats();
    ck_assert_uint_eq(st.buffered_bytes, 2 * TEST_BUFFER);
    ck_assert_uint_eq(st.buffered_peak, TEST_BUFFER);

    /* Slow readers (16 KiB a turn against writers of up to 1 MiB): everything arrives, in
     * order, and the buffers never hold more than their bound. */
    while (up.received < total || down.received < total) {
        send_some(client, &up, total, 1u << 20);
        send_some(leader, &down, total, 1u << 20);
        receive_some(leader, &up, 16 * 1024);
        receive_some(client, &down, 16 * 1024);
        ck_assert(!up.eof && !down.eof);
        st = stats();
        ck_assert_uint_le(st.buffered_bytes, 2 * TEST_BUFFER);
        ev_run(loop, EVRUN_NOWAIT);
    }
    st = stats();
    ck_assert_uint_eq(st.buffered_peak, TEST_BUFFER);
    ck_assert_uint_eq(st.buffered_bytes, 0); /* drained: an idle relay holds no buffer */
    ck_assert_uint_eq(st.bytes_to_leader, total);
    ck_assert_uint_eq(st.bytes_to_client, total);

    /* Both sides end their streams: each end is passed on and the relay goes away. */
    shutdown(client, SHUT_WR);
    shutdown(leader, SHUT_WR);
    PUMP_UNTIL(
        (receive_some(leader, &up, 4096), receive_some(client, &down, 4096), up.eof && down.eof));
    PUMP_UNTIL(stats().relays == 0);
    close(client);
    close(leader);
}
END_TEST

START_TEST(a_half_close_is_passed_on_and_the_other_way_goes_on)
{
    int leader, client = open_relay(PROXY_AMQP, &leader);
    char buf[8];

    write_all(client, "ping", 4);
    shutdown(client, SHUT_WR);
    read_exactly(leader, buf, 4);
    ck_assert_mem_eq(buf, "ping", 4);
    PUMP_UNTIL(peer_closed(leader)); /* the client's end of stream reached the leader */
    /* The other direction still works after the half-close. */
    write_all(leader, "pong", 4);
    read_exactly(client, buf, 4);
    ck_assert_mem_eq(buf, "pong", 4);
    ck_assert_uint_eq(stats().relays, 1);
    close(leader);
    PUMP_UNTIL(peer_closed(client));
    PUMP_UNTIL(stats().relays == 0);
    close(client);
}
END_TEST

START_TEST(a_leader_port_that_refuses_closes_the_client_at_once)
{
    uint16_t dead_port;
    int dead = listen_on(AF_INET, "127.0.0.1", &dead_port), client;

    close(dead); /* nothing listens there now: connects are refused */
    set_leader_port(dead_port);
    client = open_relay(PROXY_AMQP, NULL);
    PUMP_UNTIL(peer_closed(client));
    ck_assert_uint_eq(stats().connect_failures, 1);
    ck_assert_uint_eq(stats().relays, 0);
    close(client);
}
END_TEST

START_TEST(without_a_leader_new_clients_are_closed_at_once)
{
    struct proxy_leader amqp_only = {.amqp = "127.0.0.1:1"};
    int client;

    ck_assert_int_eq(proxy_set_leader(proxy, NULL), 0);
    client = open_relay(PROXY_AMQP, NULL);
    /* Closed inside proxy_accept: no loop turn needed. */
    ck_assert(peer_closed(client));
    close(client);
    ck_assert_uint_eq(stats().refused, 1);

    /* A kind the leader does not serve is closed the same way. */
    ck_assert_int_eq(proxy_set_leader(proxy, &amqp_only), 0);
    client = open_relay(PROXY_AMQPS, NULL);
    ck_assert(peer_closed(client));
    close(client);
    ck_assert_uint_eq(stats().refused, 2);
    ck_assert_uint_eq(stats().relays_started, 0);
}
END_TEST

START_TEST(a_bad_leader_address_leaves_no_leader)
{
    struct proxy_leader bad = {.amqp = "leader.example:5672"};
    int client;

    ck_assert_int_eq(proxy_set_leader(proxy, &bad), -1);
    client = open_relay(PROXY_AMQP, NULL);
    ck_assert(peer_closed(client));
    close(client);
}
END_TEST

START_TEST(drop_all_and_a_leader_change_close_every_relay)
{
    int leader1, client1 = open_relay(PROXY_AMQP, &leader1);
    int leader2, client2 = open_relay(PROXY_HTTP, &leader2);
    char buf[1];

    write_all(client1, "a", 1);
    read_exactly(leader1, buf, 1);
    write_all(client2, "b", 1);
    read_exactly(leader2, buf, 1);
    ck_assert_uint_eq(stats().relays, 2);
    proxy_drop_all(proxy);
    ck_assert_uint_eq(stats().relays, 0);
    ck_assert_uint_eq(stats().dropped, 2);
    ck_assert(peer_closed(client1) && peer_closed(client2));
    PUMP_UNTIL(peer_closed(leader1) && peer_closed(leader2));
    close(client1);
    close(client2);
    close(leader1);
    close(leader2);

    /* The same leader again changes nothing; another leader drops what led to the old. */
    client1 = open_relay(PROXY_AMQP, &leader1);
    set_leader_port(leader_port);
    ck_assert_uint_eq(stats().relays, 1);
    set_leader_port((uint16_t)(leader_port == 65535 ? 1 : leader_port + 1));
    ck_assert_uint_eq(stats().relays, 0);
    ck_assert_uint_eq(stats().dropped, 3);
    ck_assert(peer_closed(client1));
    close(client1);
    close(leader1);
}
END_TEST

static void relay_header_setup(void)
{
    relay_setup_with(true);
}

/* What a relay of kind from a client at ip sends the leader first: the PROXY line, then the
 * client's bytes. */
static void check_relayed_header(int family, const char *ip, const char *proto)
{
    char want[PROXY_HEADER_MAX + 1], got[PROXY_HEADER_MAX + 9];
    uint16_t port;
    int lfd = listen_on(family, ip, &port), leader, client;

    if (lfd < 0) {
        printf("skipped: no %s on this machine\n", ip);
        return;
    }
    client = open_relay_from(family, ip, lfd, port, PROXY_AMQP, &leader);
    write_all(client, "AMQP\x00\x00\x09\x01", 8);
    snprintf(want, sizeof want, "PROXY %s %s %s %u %u\r\n", proto, ip, ip, local_port(client),
             port);
    read_exactly(leader, got, strlen(want) + 8);
    got[strlen(want) + 8] = '\0';
    ck_assert_mem_eq(got, want, strlen(want));
    ck_assert_mem_eq(got + strlen(want), "AMQP\x00\x00\x09\x01", 8);
    /* The header is the proxy's: the client's bytes are what is counted. */
    PUMP_UNTIL(stats().bytes_to_leader == 8);
    close(client);
    close(leader);
    close(lfd);
}

START_TEST(amqp_relays_start_with_the_clients_address_ipv4)
{
    check_relayed_header(AF_INET, "127.0.0.1", "TCP4");
}
END_TEST

START_TEST(amqp_relays_start_with_the_clients_address_ipv6)
{
    check_relayed_header(AF_INET6, "::1", "TCP6");
}
END_TEST

START_TEST(http_relays_send_no_header)
{
    int leader, client = open_relay(PROXY_HTTP, &leader);
    char got[16];

    write_all(client, "GET / HTTP/1.1\r\n", 16);
    read_exactly(leader, got, 16);
    ck_assert_mem_eq(got, "GET / HTTP/1.1\r\n", 16);
    close(client);
    close(leader);
}
END_TEST

/* ---- The leader's side: a real server in this process ---------------------------------- */

static struct config cfg;
static struct server srv;
static uint16_t srv_port;

static void server_start(const char *extra_config)
{
    char text[512], err[700];

    loop_start();
    log_set_level(LOG_LEVEL_WARNING);
    config_defaults(&cfg);
    snprintf(text, sizeof text, "data_dir = false\n%s", extra_config);
    ck_assert_msg(config_parse(&cfg, "test", text, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(server_init(&srv, loop, &cfg, 0), 0);
    srv_port = local_port(srv.listeners[0].fd);
}

static void leader_setup(void)
{
    server_start("");
}

static void leader_teardown(void)
{
    server_free(&srv);
    loop_stop();
}

/* A minimal AMQP client on a raw socket. */
struct client {
    int fd;
    uint8_t in[64 * 1024];
    size_t len;
    uint8_t frame[64 * 1024]; /* the payload of the last method frame read */
};

static void client_send(struct client *c, uint32_t method_id, const void *args)
{
    uint8_t buf[1024];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_frame_put_method(&w, 0, method_id, args);
    ck_assert(!wire_writer_overflowed(&w));
    write_all(c->fd, buf, wire_writer_used(&w));
}

/* The next method frame, decoded into *m (borrowing c->frame). Fails the test if the socket
 * closes first. */
static void client_read_method(struct client *c, struct wire_method *m)
{
    long long until = mono_ms() + WAIT_MS;

    for (;;) {
        struct wire_frame f;
        size_t used = 0;
        int rc = wire_frame_parse(c->in, c->len, 0, &f, &used);
        ssize_t n;

        if (rc == WIRE_OK) {
            ck_assert_uint_eq(f.type, WIRE_FRAME_METHOD);
            memcpy(c->frame, f.payload.ptr, f.payload.len);
            ck_assert_int_eq(wire_method_decode((struct wire_bytes){c->frame, f.payload.len}, m),
                             WIRE_OK);
            memmove(c->in, c->in + used, c->len - used);
            c->len -= used;
            return;
        }
        ck_assert_int_eq(rc, WIRE_NEED_MORE);
        n = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
        ck_assert_msg(n != 0, "the server closed the connection");
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
        ck_assert_msg(mono_ms() < until, "no method frame from the server");
        turn();
    }
}

static void client_expect(struct client *c, uint32_t method_id, struct wire_method *m)
{
    client_read_method(c, m);
    ck_assert_msg(m->id == method_id, "got method %08x, expected %08x", m->id, method_id);
}

/* Protocol header (after whatever prefix the caller wrote), start-ok with PLAIN, tune-ok. */
static void client_login(struct client *c, const char *user, const char *pass)
{
    char response[128];
    int n = snprintf(response, sizeof response, "%c%s%c%s", 0, user, 0, pass);
    struct wire_connection_start_ok start_ok = {
        .mechanism = WIRE_BYTES_C("PLAIN"),
        .response = {.ptr = (const uint8_t *)response, .len = (size_t)n},
        .locale = WIRE_BYTES_C("en_US"),
    };
    struct wire_connection_tune_ok tune_ok = {.frame_max = 131072};
    struct wire_method m;

    client_expect(c, WIRE_CONNECTION_START, &m);
    client_send(c, WIRE_CONNECTION_START_OK, &start_ok);
    client_expect(c, WIRE_CONNECTION_TUNE, &m);
    client_send(c, WIRE_CONNECTION_TUNE_OK, &tune_ok);
}

static void client_open(struct client *c, struct wire_method *reply)
{
    struct wire_connection_open open = {.virtual_host = WIRE_BYTES_C("/")};

    client_send(c, WIRE_CONNECTION_OPEN, &open);
    client_read_method(c, reply);
}

static struct client *client_connect(const void *prefix, size_t prefix_len)
{
    struct client *c = calloc(1, sizeof *c);

    c->fd = connect_to(AF_INET, "127.0.0.1", srv_port);
    if (prefix_len > 0)
        write_all(c->fd, prefix, prefix_len);
    write_all(c->fd, "AMQP\x00\x00\x09\x01", 8);
    return c;
}

static void client_free(struct client *c)
{
    close(c->fd);
    free(c);
}

/* The server's newest connection (the list is newest first). */
static struct conn *newest_conn(void)
{
    PUMP_UNTIL(srv.conns != NULL);
    return srv.conns;
}

static const char proxy_line[] = "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n";

START_TEST(a_header_from_a_stranger_is_a_bad_protocol_header)
{
    struct client *c = calloc(1, sizeof *c);
    uint8_t got[8];

    /* No peers allowed (a single node): the same answer as before any of this existed. */
    c->fd = connect_to(AF_INET, "127.0.0.1", srv_port);
    write_all(c->fd, proxy_line, sizeof proxy_line - 1);
    read_exactly(c->fd, got, 8);
    ck_assert_mem_eq(got, "AMQP\x00\x00\x09\x01", 8);
    PUMP_UNTIL(peer_closed(c->fd));
    client_free(c);
}
END_TEST

START_TEST(a_proxy_peers_header_names_the_client)
{
    const char *const peers[] = {"192.0.2.99", "127.0.0.1"};
    struct client *c;
    struct wire_method m;
    char want[64];

    ck_assert_int_eq(server_set_proxy_peers(&srv, peers, 2), 0);
    c = client_connect(proxy_line, sizeof proxy_line - 1);
    client_expect(c, WIRE_CONNECTION_START, &m);
    ck_assert_str_eq(newest_conn()->log.peer, "10.1.2.3:5555");
    ck_assert(!newest_conn()->is_loopback);
    client_free(c);

    /* guest may log in from loopback only, and the client is 10.1.2.3 now: refused, as a
     * direct client from there would be (the socket closes without tune). */
    c = client_connect(proxy_line, sizeof proxy_line - 1);
    client_expect(c, WIRE_CONNECTION_START, &m);
    client_send(c, WIRE_CONNECTION_START_OK,
                &(struct wire_connection_start_ok){.mechanism = WIRE_BYTES_C("PLAIN"),
                                                   .response = WIRE_BYTES_C("\0guest\0guest"),
                                                   .locale = WIRE_BYTES_C("en_US")});
    PUMP_UNTIL(peer_closed(c->fd));
    client_free(c);

    /* A client on a peer's host may still connect without a header. */
    c = client_connect(NULL, 0);
    client_login(c, "guest", "guest");
    client_open(c, &m);
    ck_assert_uint_eq(m.id, WIRE_CONNECTION_OPEN_OK);
    snprintf(want, sizeof want, "127.0.0.1:%u", local_port(c->fd));
    ck_assert_str_eq(newest_conn()->log.peer, want);
    client_free(c);
}
END_TEST

START_TEST(a_header_split_into_bytes_is_read_whole)
{
    const char *const peers[] = {"127.0.0.1"};
    struct client *c = calloc(1, sizeof *c);
    struct wire_method m;

    ck_assert_int_eq(server_set_proxy_peers(&srv, peers, 1), 0);
    c->fd = connect_to(AF_INET, "127.0.0.1", srv_port);
    for (size_t i = 0; i < sizeof proxy_line - 2; i++) {
        write_all(c->fd, proxy_line + i, 1);
        turn();
    }
    /* The line's last byte and the protocol header in one write: not a byte after the CRLF
     * may be taken with the header. */
    write_all(c->fd, "\nAMQP\x00\x00\x09\x01", 9);
    client_expect(c, WIRE_CONNECTION_START, &m);
    ck_assert_str_eq(newest_conn()->log.peer, "10.1.2.3:5555");
    client_free(c);
}
END_TEST

START_TEST(a_malformed_header_from_a_peer_closes_the_connection)
{
    const char *const peers[] = {"127.0.0.1"};
    static const char *const bad[] = {
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555\r\n",
        "PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\n",
        "PROXY TCP9 10.1.2.3 127.0.0.1 5555 5672\r\n",
        "PRO\r\n",
    };

    ck_assert_int_eq(server_set_proxy_peers(&srv, peers, 1), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = connect_to(AF_INET, "127.0.0.1", srv_port);
        uint8_t buf[16];
        ssize_t n;

        write_all(fd, bad[i], strlen(bad[i]));
        write_all(fd, "AMQP\x00\x00\x09\x01", 8);
        PUMP_UNTIL((n = recv(fd, buf, sizeof buf, 0)) == 0 || (n < 0 && errno == ECONNRESET) ||
                   n > 0);
        ck_assert_msg(n <= 0, "the server answered %zd bytes to %s", n, bad[i]);
        close(fd);
    }
    PUMP_UNTIL(srv.conns == NULL);
}
END_TEST

START_TEST(the_configured_peers_are_allowed)
{
    struct sockaddr_storage a;

    leader_teardown();
    server_start("cluster.proxy_peers = 127.0.0.2, 2001:db8::7\n");
    make_addr(AF_INET, "127.0.0.2", 1, &a);
    ck_assert(server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    make_addr(AF_INET6, "::ffff:127.0.0.2", 1, &a);
    ck_assert(server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    make_addr(AF_INET6, "2001:db8::7", 1, &a);
    ck_assert(server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    make_addr(AF_INET, "127.0.0.1", 1, &a);
    ck_assert(!server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    /* The cluster's list adds to the configured one, and replacing it keeps that. */
    ck_assert_int_eq(server_set_proxy_peers(&srv, (const char *const[]){"127.0.0.1"}, 1), 0);
    ck_assert(server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    ck_assert_int_eq(server_set_proxy_peers(&srv, NULL, 0), 0);
    ck_assert(!server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    make_addr(AF_INET, "127.0.0.2", 1, &a);
    ck_assert(server_is_proxy_peer(&srv, (struct sockaddr *)&a));
    ck_assert_int_eq(server_set_proxy_peers(&srv, (const char *const[]){"node-2"}, 1), -1);
}
END_TEST

START_TEST(the_leader_sees_the_client_through_the_proxy)
{
    const char *const peers[] = {"127.0.0.1"};
    char leader_addr[32], want[64];
    struct proxy_leader l = {.amqp = leader_addr};
    struct client *c = calloc(1, sizeof *c);
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct wire_method m;
    int fd;

    ck_assert_int_eq(server_set_proxy_peers(&srv, peers, 1), 0);
    follower_lfd = listen_on(AF_INET, "127.0.0.1", &follower_port);
    proxy = proxy_new(loop, NULL);
    snprintf(leader_addr, sizeof leader_addr, "127.0.0.1:%u", srv_port);
    ck_assert_int_eq(proxy_set_leader(proxy, &l), 0);

    c->fd = connect_to(AF_INET, "127.0.0.1", follower_port);
    fd = accept_one(follower_lfd, &peer, &peer_len);
    proxy_accept(proxy, fd, (struct sockaddr *)&peer, peer_len, PROXY_AMQP);
    write_all(c->fd, "AMQP\x00\x00\x09\x01", 8);
    client_login(c, "guest", "guest");
    client_open(c, &m);
    ck_assert_uint_eq(m.id, WIRE_CONNECTION_OPEN_OK);
    /* The client's own port, not the one the proxy connected from. */
    snprintf(want, sizeof want, "127.0.0.1:%u", local_port(c->fd));
    ck_assert_str_eq(newest_conn()->log.peer, want);

    proxy_drop_all(proxy);
    PUMP_UNTIL(peer_closed(c->fd));
    PUMP_UNTIL(srv.conns == NULL);
    client_free(c);
    proxy_free(proxy);
    proxy = NULL;
    close(follower_lfd);
}
END_TEST

START_TEST(a_follower_that_proxies_hands_its_clients_to_the_proxy)
{
    char leader_addr[32];
    struct proxy_leader l = {.amqp = leader_addr};
    uint8_t got[8];
    int leader, client;

    leader_lfd = listen_on(AF_INET, "127.0.0.1", &leader_port);
    proxy = proxy_new(loop, &(struct proxy_options){.no_proxy_header = true});
    snprintf(leader_addr, sizeof leader_addr, "127.0.0.1:%u", leader_port);
    ck_assert_int_eq(proxy_set_leader(proxy, &l), 0);
    server_proxy_clients(&srv, proxy);

    client = connect_to(AF_INET, "127.0.0.1", srv_port);
    write_all(client, "AMQP\x00\x00\x09\x01", 8);
    leader = accept_one(leader_lfd, NULL, NULL);
    read_exactly(leader, got, 8);
    ck_assert_mem_eq(got, "AMQP\x00\x00\x09\x01", 8);
    ck_assert_ptr_null(srv.conns); /* the broker itself never saw the client */

    server_serve_clients(&srv);
    proxy_free(proxy);
    proxy = NULL;
    close(client);
    close(leader);
    close(leader_lfd);
}
END_TEST

/* Logs in (any credentials) and sends connection.open; returns the close's code and text. */
static void expect_open_refused(const char *user, const char *pass, const char *text)
{
    struct client *c = client_connect(NULL, 0);
    struct wire_method m;

    client_login(c, user, pass);
    client_open(c, &m);
    ck_assert_uint_eq(m.id, WIRE_CONNECTION_CLOSE);
    ck_assert_uint_eq(m.u.connection_close.reply_code, 530);
    ck_assert_msg(wire_bytes_eq_cstr(m.u.connection_close.reply_text, text), "got '%.*s'",
                  (int)m.u.connection_close.reply_text.len,
                  (const char *)m.u.connection_close.reply_text.ptr);
    ck_assert_uint_eq(m.u.connection_close.class_id, 10);
    ck_assert_uint_eq(m.u.connection_close.method_id, 40);
    client_send(c, WIRE_CONNECTION_CLOSE_OK, &(struct wire_connection_close_ok){0});
    PUMP_UNTIL(peer_closed(c->fd));
    client_free(c);
}

START_TEST(refuse_mode_answers_open_with_530_naming_the_leader)
{
    struct client *c;
    struct wire_method m;

    server_refuse_clients(&srv, "amqp://192.0.2.7:5672", "http://192.0.2.7:15672");
    expect_open_refused("guest", "guest",
                        "NOT_ALLOWED - node is a follower; leader is amqp://192.0.2.7:5672");
    /* Any login gets that far: the follower's users may lag the leader's. */
    expect_open_refused("someone", "not-a-password",
                        "NOT_ALLOWED - node is a follower; leader is amqp://192.0.2.7:5672");

    server_refuse_clients(&srv, NULL, NULL);
    expect_open_refused("guest", "guest", "NOT_ALLOWED - node is a follower; no leader is known");

    /* A follower that becomes the leader serves again. */
    server_serve_clients(&srv);
    c = client_connect(NULL, 0);
    client_login(c, "guest", "guest");
    client_open(c, &m);
    ck_assert_uint_eq(m.id, WIRE_CONNECTION_OPEN_OK);
    client_free(c);
}
END_TEST

/* An HTTP request to the management API on addr:port; returns the whole answer in out. */
static void http_get(uint16_t port, const char *path, char *out, size_t size)
{
    char req[512];
    size_t got = 0;
    int fd = connect_to(AF_INET, "127.0.0.1", port);
    long long until = mono_ms() + WAIT_MS;

    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
             "Connection: close\r\n\r\n",
             path);
    write_all(fd, req, strlen(req));
    for (;;) {
        ssize_t n = recv(fd, out + got, size - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            break;
        ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
        ck_assert_msg(mono_ms() < until, "no answer to %s", path);
        turn();
    }
    out[got] = '\0';
    close(fd);
}

START_TEST(refuse_mode_answers_the_http_api_with_503_but_its_health_checks)
{
    char extra[128], answer[8192];
    struct mgmt *m = NULL;
    uint16_t port;
    int probe = listen_on(AF_INET, "127.0.0.1", &port);

    close(probe);
    leader_teardown();
    snprintf(extra, sizeof extra,
             "management.tcp.port = %u\nmanagement.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 0\n",
             port);
    server_start(extra);
    ck_assert_int_eq(mgmt_start(&srv, &m), 0);

    server_refuse_clients(&srv, "amqp://192.0.2.7:5672", "http://192.0.2.7:15672");
    http_get(port, "/api/overview", answer, sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 503", 12) == 0, "%s", answer);
    ck_assert_ptr_nonnull(strstr(answer, "\"error\":\"not_leader\""));
    ck_assert_ptr_nonnull(
        strstr(answer, "\"reason\":\"node is a follower; leader is http://192.0.2.7:15672\""));
    http_get(port, "/api/queues/%2F/q", answer, sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 503", 12) == 0, "%s", answer);
    http_get(port, "/api/health/checks/alarms", answer, sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "%s", answer);

    server_refuse_clients(&srv, NULL, NULL);
    http_get(port, "/api/overview", answer, sizeof answer);
    ck_assert_ptr_nonnull(strstr(answer, "\"reason\":\"node is a follower; no leader is known\""));

    server_serve_clients(&srv);
    http_get(port, "/api/overview", answer, sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "%s", answer);
    mgmt_stop(m);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *header = tcase_create("header");
    TCase *relay = tcase_create("relay");
    TCase *relay_header = tcase_create("relay_header");
    TCase *leader = tcase_create("leader");

    tcase_add_test(header, header_for_ipv4_is_the_spec_line);
    tcase_add_test(header, header_for_ipv6_is_the_spec_line);
    tcase_add_test(header, header_for_mapped_or_mixed_addresses);
    tcase_add_test(header, reader_takes_tcp4_tcp6_and_unknown);
    tcase_add_test(header, reader_waits_for_the_crlf);
    tcase_add_test(header, reader_is_as_strict_as_the_spec);
    suite_add_tcase(s, header);

    tcase_add_checked_fixture(relay, relay_setup, relay_teardown);
    tcase_set_timeout(relay, 60);
    tcase_add_test(relay, large_streams_both_ways_stay_within_the_buffer_bound);
    tcase_add_test(relay, a_half_close_is_passed_on_and_the_other_way_goes_on);
    tcase_add_test(relay, a_leader_port_that_refuses_closes_the_client_at_once);
    tcase_add_test(relay, without_a_leader_new_clients_are_closed_at_once);
    tcase_add_test(relay, a_bad_leader_address_leaves_no_leader);
    tcase_add_test(relay, drop_all_and_a_leader_change_close_every_relay);
    tcase_add_test(relay, http_relays_send_no_header);
    suite_add_tcase(s, relay);

    tcase_add_checked_fixture(relay_header, relay_header_setup, relay_teardown);
    tcase_add_test(relay_header, amqp_relays_start_with_the_clients_address_ipv4);
    tcase_add_test(relay_header, amqp_relays_start_with_the_clients_address_ipv6);
    suite_add_tcase(s, relay_header);

    tcase_add_checked_fixture(leader, leader_setup, leader_teardown);
    tcase_set_timeout(leader, 30);
    tcase_add_test(leader, a_header_from_a_stranger_is_a_bad_protocol_header);
    tcase_add_test(leader, a_proxy_peers_header_names_the_client);
    tcase_add_test(leader, a_header_split_into_bytes_is_read_whole);
    tcase_add_test(leader, a_malformed_header_from_a_peer_closes_the_connection);
    tcase_add_test(leader, the_configured_peers_are_allowed);
    tcase_add_test(leader, the_leader_sees_the_client_through_the_proxy);
    tcase_add_test(leader, a_follower_that_proxies_hands_its_clients_to_the_proxy);
    tcase_add_test(leader, refuse_mode_answers_open_with_530_naming_the_leader);
    tcase_add_test(leader, refuse_mode_answers_the_http_api_with_503_but_its_health_checks);
    suite_add_tcase(s, leader);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proxy_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
