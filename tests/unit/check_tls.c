/* The TLS transport: a tls_conn on one end of a non-blocking socket pair, an OpenSSL client
 * on the other, both pumped in one loop the way the event loop would. Handshakes with each
 * TLS version, data both ways (1 MiB in partial writes, records bigger than the reader's
 * buffer), client certificates verified or refused, the user name SASL EXTERNAL gets in
 * RabbitMQ's format, cipher choice, reload, closing, and the errors of tls_server_new.
 *
 * The certificates come from tls_certs.sh, run once into a temporary directory. */
#include "src/base/config.h"
#include "src/base/log.h"
#include "src/security/tls.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define PUMP_ROUNDS 20000 /* loop turns before a stuck exchange fails the test */

static char cert_dir[128];
static char err[512];

/* The path of a file made by tls_certs.sh (rotating static buffers). */
static const char *cert(const char *name)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];

    snprintf(p, sizeof(paths[0]), "%s/%s", cert_dir, name);
    return p;
}

/* The server's configuration: server.pem and its key, the test CA as cacertfile, then
 * extra lines, all through the real parser. */
static struct config tls_config(const char *extra)
{
    struct config c;
    char text[4096];

    snprintf(text, sizeof(text),
             "ssl_options.certfile = %s\nssl_options.keyfile = %s\n"
             "ssl_options.cacertfile = %s\n%s",
             cert("server.pem"), cert("server.key"), cert("ca.pem"), extra);
    config_defaults(&c);
    if (config_parse(&c, "t.conf", text, err, sizeof(err)) != 0)
        ck_abort_msg("config_parse: %s", err);
    return c;
}

static struct tls_server *server_with(const char *extra)
{
    struct config c = tls_config(extra);
    struct tls_server *s = tls_server_new(&c, err, sizeof(err));

    ck_assert_msg(s != NULL, "tls_server_new: %s", err);
    return s;
}

/* How the client end behaves. */
struct client_opts {
    const char *cert, *key; /* file names in cert_dir; NULL: no client certificate */
    int min_version, max_version;
    const char *ciphers; /* TLS 1.2 cipher list; NULL: OpenSSL's */
    const char *suites;  /* TLS 1.3 suites; NULL: OpenSSL's */
    bool old_versions;   /* security level 0, needed to offer TLS 1.0/1.1 */
    bool verify_server;  /* check the server certificate against ca.pem and "localhost" */
};

struct pair {
    int sfd, cfd; /* server and client ends of the socket pair */
    struct tls_conn *t;
    SSL_CTX *cctx;
    SSL *c;
};

static void set_nonblocking(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static struct pair pair_open(struct tls_server *s, const struct client_opts *o)
{
    struct pair p;
    int fds[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    set_nonblocking(fds[0]);
    set_nonblocking(fds[1]);
    p.sfd = fds[0];
    p.cfd = fds[1];
    p.t = tls_conn_new(s, p.sfd);
    p.cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(p.cctx);
    if (o->old_versions)
        SSL_CTX_set_security_level(p.cctx, 0);
    if (o->min_version != 0)
        ck_assert_int_eq(SSL_CTX_set_min_proto_version(p.cctx, o->min_version), 1);
    if (o->max_version != 0)
        ck_assert_int_eq(SSL_CTX_set_max_proto_version(p.cctx, o->max_version), 1);
    if (o->ciphers != NULL)
        ck_assert_int_eq(SSL_CTX_set_cipher_list(p.cctx, o->ciphers), 1);
    if (o->suites != NULL)
        ck_assert_int_eq(SSL_CTX_set_ciphersuites(p.cctx, o->suites), 1);
    if (o->cert != NULL) {
        ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(p.cctx, cert(o->cert)), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(p.cctx, cert(o->key), SSL_FILETYPE_PEM), 1);
    }
    if (o->verify_server) {
        ck_assert_int_eq(SSL_CTX_load_verify_locations(p.cctx, cert("ca.pem"), NULL), 1);
        SSL_CTX_set_verify(p.cctx, SSL_VERIFY_PEER, NULL);
    }
    p.c = SSL_new(p.cctx);
    ck_assert_ptr_nonnull(p.c);
    if (o->verify_server)
        ck_assert_int_eq(SSL_set1_host(p.c, "localhost"), 1);
    ck_assert_int_eq(SSL_set_fd(p.c, p.cfd), 1);
    SSL_set_connect_state(p.c);
    return p;
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->t);
    SSL_free(p->c);
    SSL_CTX_free(p->cctx);
    if (p->sfd >= 0)
        close(p->sfd);
    if (p->cfd >= 0)
        close(p->cfd);
    ERR_clear_error();
}

/* How a handshake ended on each side. */
struct outcome {
    bool server_ok;   /* tls_conn_established, no error */
    int server_rc;    /* tls_conn_read's last result */
    int server_errno; /* its errno when -1 */
    char server_error[256];
    bool client_ok; /* SSL_do_handshake returned 1 */
    bool client_failed;
};

/* Runs the client's handshake and the server's reads until both have settled: both done,
 * or the server failed, or the client failed and the server has nothing more to read. */
static struct outcome handshake(struct pair *p)
{
    struct outcome r = {0};
    char buf[256];
    int idle = 0;

    for (int i = 0; i < PUMP_ROUNDS; i++) {
        ssize_t n;

        if (!r.client_ok && !r.client_failed) {
            int rc = SSL_do_handshake(p->c);
            int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(p->c, rc);

            if (rc == 1)
                r.client_ok = true;
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                r.client_failed = true;
            ERR_clear_error();
        }
        n = tls_conn_read(p->t, buf, sizeof(buf));
        r.server_rc = (int)n;
        ck_assert_msg(n <= 0, "no application data is sent during the handshake");
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            r.server_errno = n < 0 ? errno : 0;
            break;
        }
        if (r.client_ok && tls_conn_established(p->t)) {
            r.server_ok = true;
            break;
        }
        /* A client that gave up sends an alert or nothing: give the server a few turns. */
        if (r.client_failed && ++idle > 50)
            break;
    }
    snprintf(r.server_error, sizeof(r.server_error), "%s", tls_conn_error(p->t));
    return r;
}

static struct pair connected(struct tls_server *s, const struct client_opts *o)
{
    struct pair p = pair_open(s, o);
    struct outcome r = handshake(&p);

    ck_assert_msg(r.server_ok && r.client_ok, "handshake failed: server '%s' (rc %d errno %d)",
                  r.server_error, r.server_rc, r.server_errno);
    return p;
}

/* The client's next read fails: it got a fatal alert (or the socket closed). */
static bool client_read_fails(struct pair *p)
{
    char buf[64];

    for (int i = 0; i < PUMP_ROUNDS; i++) {
        size_t got;
        int rc = SSL_read_ex(p->c, buf, sizeof(buf), &got);
        int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(p->c, rc);

        ERR_clear_error();
        if (rc == 1)
            return false;
        if (e != SSL_ERROR_WANT_READ)
            return true;
        (void)tls_conn_read(p->t, buf, sizeof(buf)); /* let the server speak */
    }
    return false;
}

/* The client sends n bytes; the server reads them all into out, reading as tls.h says. */
static void client_to_server(struct pair *p, const void *data, size_t n, void *out)
{
    size_t sent = 0, got = 0;

    for (int i = 0; got < n && i < PUMP_ROUNDS * 10; i++) {
        ssize_t r;

        if (sent < n) {
            size_t put;
            int rc = SSL_write_ex(p->c, (const char *)data + sent, n - sent, &put);

            if (rc == 1)
                sent += put;
            else
                ck_assert_int_eq(SSL_get_error(p->c, rc), SSL_ERROR_WANT_WRITE);
        }
        r = tls_conn_read(p->t, (char *)out + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else
            ck_assert_msg(r < 0 && errno == EAGAIN, "server read: %zd errno %d %s", r, errno,
                          tls_conn_error(p->t));
    }
    ck_assert_uint_eq(got, n);
}

/* The server sends n bytes; the client reads them all into out. */
static void server_to_client(struct pair *p, const void *data, size_t n, void *out)
{
    size_t sent = 0, got = 0;

    for (int i = 0; got < n && i < PUMP_ROUNDS * 10; i++) {
        size_t read;

        if (sent < n) {
            ssize_t w = tls_conn_write(p->t, (const char *)data + sent, n - sent);

            if (w > 0)
                sent += (size_t)w;
            else
                ck_assert_msg(errno == EAGAIN, "server write: errno %d %s", errno,
                              tls_conn_error(p->t));
        }
        if (SSL_read_ex(p->c, (char *)out + got, n - got, &read) == 1)
            got += read;
        ERR_clear_error();
    }
    ck_assert_uint_eq(got, n);
}

static void round_trip(struct pair *p)
{
    char buf[64];

    client_to_server(p, "AMQP\0\0\x09\x01", 8, buf);
    ck_assert_mem_eq(buf, "AMQP\0\0\x09\x01", 8);
    server_to_client(p, "connection.start", 16, buf);
    ck_assert_mem_eq(buf, "connection.start", 16);
}

/* The subject of the certificate the client got from the server. */
static const char *server_cert_subject(struct pair *p)
{
    static char subject[256];
    X509 *x = SSL_get1_peer_certificate(p->c);

    ck_assert_ptr_nonnull(x);
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    X509_free(x);
    return subject;
}

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static const struct client_opts plain_client = {0};
static const struct client_opts trusted_client = {.cert = "client.pem", .key = "client.key"};

/* ---- Handshake and data ---------------------------------------------------------------- */

START_TEST(handshake_completes_and_data_flows_both_ways)
{
    struct tls_server *s = server_with("");
    struct client_opts o = {.verify_server = true};
    struct pair p = pair_open(s, &o);
    char buf[8];

    /* Nothing before the handshake: the server waits for the ClientHello. */
    ck_assert(!tls_conn_established(p.t));
    ck_assert_int_eq(tls_conn_read(p.t, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert(!tls_conn_want_write(p.t));
    ck_assert_str_eq(tls_conn_protocol(p.t), "");
    ck_assert_str_eq(tls_conn_error(p.t), "");

    struct outcome r = handshake(&p);
    ck_assert_msg(r.server_ok && r.client_ok, "%s", r.server_error);
    /* The client checked the chain and the name localhost. */
    ck_assert_int_eq(SSL_get_verify_result(p.c), X509_V_OK);
    ck_assert_str_eq(tls_conn_protocol(p.t), "TLSv1.3");
    ck_assert_str_eq(tls_conn_cipher(p.t), SSL_get_cipher_name(p.c));
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* Data written from two copies in turn: after EAGAIN the retry comes from a buffer at a
 * different address, as when the connection's output buffer grows (realloc). */
START_TEST(one_mebibyte_from_server_in_partial_writes_from_a_moving_buffer)
{
    enum { SIZE = 1 << 20 };
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char *copies[2] = {malloc(SIZE), malloc(SIZE)}, *got = malloc(SIZE);
    size_t sent = 0, received = 0;
    int which = 0, eagains = 0, partials = 0;

    for (size_t i = 0; i < SIZE; i++)
        copies[0][i] = copies[1][i] = (char)(i * 7 + i / 4099);
    while (received < SIZE) {
        size_t n;

        if (sent < SIZE) {
            ssize_t w = tls_conn_write(p.t, copies[which] + sent, SIZE - sent);

            if (w < 0) {
                ck_assert_int_eq(errno, EAGAIN);
                ck_assert(tls_conn_want_write(p.t));
                eagains++;
                which = !which;
            } else {
                partials += (size_t)w < SIZE - sent;
                sent += (size_t)w;
            }
        }
        /* The client drains a little at a time, so the socket fills up. */
        if (SSL_read_ex(p.c, got + received, 50000, &n) == 1)
            received += n;
        ERR_clear_error();
    }
    ck_assert_int_eq(memcmp(got, copies[0], SIZE), 0);
    ck_assert_int_gt(eagains, 0);
    ck_assert_int_gt(partials, 0);
    free(copies[0]);
    free(copies[1]);
    free(got);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* The server reads with a buffer smaller than a TLS record and waits the way tls.h says:
 * poll() for readability, except when a full read leaves tls_conn_pending(). Without that
 * rule the rest of a record would sit inside OpenSSL and this test would time out. */
START_TEST(one_mebibyte_from_client_into_a_small_buffer_with_pending)
{
    enum { SIZE = 1 << 20, CAP = 1000 };
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char *data = malloc(SIZE), *got = malloc(SIZE);
    size_t sent = 0, received = 0;
    bool read_again = false;
    int pendings = 0;

    for (size_t i = 0; i < SIZE; i++)
        data[i] = (char)(i * 13 + i / 65521);
    while (received < SIZE) {
        size_t put;
        ssize_t r;

        if (sent < SIZE && SSL_write_ex(p.c, data + sent, SIZE - sent, &put) == 1)
            sent += put;
        ERR_clear_error();
        if (!read_again) {
            struct pollfd pfd = {.fd = p.sfd, .events = POLLIN};

            ck_assert_int_eq(poll(&pfd, 1, 1000), 1); /* a second without data: stuck */
        }
        r = tls_conn_read(p.t, got + received, CAP);
        ck_assert_msg(r > 0 || (r < 0 && errno == EAGAIN), "read %zd: %s", r, tls_conn_error(p.t));
        if (r > 0)
            received += (size_t)r;
        read_again = r == CAP && tls_conn_pending(p.t);
        pendings += read_again;
    }
    ck_assert_int_eq(memcmp(got, data, SIZE), 0);
    ck_assert_int_gt(pendings, 0);
    free(data);
    free(got);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* One read takes in more than one 16 KB record when the socket holds them. */
START_TEST(a_large_read_takes_several_records)
{
    enum { SIZE = 100000 };
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char *data = calloc(1, SIZE), *got = malloc(SIZE);
    size_t put;
    ssize_t r;

    ck_assert_int_eq(SSL_write_ex(p.c, data, SIZE, &put), 1);
    ck_assert_uint_eq(put, SIZE);
    r = tls_conn_read(p.t, got, SIZE);
    ck_assert_int_eq(r, SIZE);
    ck_assert(!tls_conn_pending(p.t));
    free(data);
    free(got);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* TLS 1.3 KeyUpdate is a post-handshake message in both directions. */
START_TEST(key_update_requested_by_the_client_is_answered)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);

    ck_assert_int_eq(SSL_key_update(p.c, SSL_KEY_UPDATE_REQUESTED), 1);
    round_trip(&p);
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(client_renegotiation_is_refused)
{
    struct tls_server *s = server_with("");
    struct client_opts o = {.max_version = TLS1_2_VERSION};
    struct pair p = connected(s, &o);
    char buf[16];
    bool renegotiated = false;

    ck_assert_int_eq(SSL_renegotiate(p.c), 1);
    for (int i = 0; i < 200 && !renegotiated; i++) {
        renegotiated = SSL_do_handshake(p.c) == 1;
        ERR_clear_error();
        (void)tls_conn_read(p.t, buf, sizeof(buf));
    }
    ck_assert(!renegotiated);
    ck_assert_int_eq(SSL_renegotiate_pending(p.c), 1);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* ---- Closing ------------------------------------------------------------------------------ */

START_TEST(close_notify_from_the_client_reads_as_end_of_stream)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char buf[16];
    ssize_t r = -1;

    SSL_shutdown(p.c);
    for (int i = 0; i < 100 && r < 0; i++)
        r = tls_conn_read(p.t, buf, sizeof(buf));
    ck_assert_int_eq(r, 0);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(a_socket_closed_without_close_notify_reads_as_end_of_stream)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char buf[16];
    size_t n;
    ssize_t r;

    /* The client reads the server's TLS 1.3 tickets first: a socket closed with unread
     * bytes is reset instead (ECONNRESET, the socket's errno, is what the server gets then). */
    ck_assert_int_eq(SSL_read_ex(p.c, buf, sizeof(buf), &n), 0);
    ck_assert_int_eq(SSL_get_error(p.c, 0), SSL_ERROR_WANT_READ);
    close(p.cfd);
    p.cfd = -1;
    r = tls_conn_read(p.t, buf, sizeof(buf));
    ck_assert_msg(r == 0, "read %zd errno %d: %s", r, errno, tls_conn_error(p.t));
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* Bytes come first; the end behind them is the next read's answer. */
START_TEST(data_then_end_of_stream_in_one_read)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char buf[64];
    size_t put;

    ck_assert_int_eq(SSL_write_ex(p.c, "last words", 10, &put), 1);
    SSL_shutdown(p.c);
    ck_assert_int_eq(tls_conn_read(p.t, buf, sizeof(buf)), 10);
    ck_assert_mem_eq(buf, "last words", 10);
    ck_assert(tls_conn_pending(p.t));
    ck_assert_int_eq(tls_conn_read(p.t, buf, sizeof(buf)), 0);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(server_shutdown_sends_close_notify)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &plain_client);
    char buf[16];
    size_t n;
    int rc;

    ck_assert_int_eq(tls_conn_shutdown(p.t), 0);
    rc = SSL_read_ex(p.c, buf, sizeof(buf), &n);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(SSL_get_error(p.c, rc), SSL_ERROR_ZERO_RETURN);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(plain_amqp_on_a_tls_socket_fails_the_handshake)
{
    struct tls_server *s = server_with("");
    struct pair p = pair_open(s, &plain_client);
    char buf[16];

    ck_assert_int_eq(write(p.cfd, "AMQP\0\0\x09\x01", 8), 8);
    ck_assert_int_eq(tls_conn_read(p.t, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_msg(strncmp(tls_conn_error(p.t), "TLS handshake failed: ", 22) == 0, "%s",
                  tls_conn_error(p.t));
    ck_assert(!tls_conn_established(p.t));
    ck_assert_int_eq(tls_conn_shutdown(p.t), -1); /* nothing to close politely */
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* A port probe (a load balancer's health check) connects and leaves without a byte. */
START_TEST(a_connection_closed_before_the_client_hello_reads_as_end_of_stream)
{
    struct tls_server *s = server_with("");
    struct pair p = pair_open(s, &plain_client);
    char buf[16];
    ssize_t r;

    close(p.cfd);
    p.cfd = -1;
    r = tls_conn_read(p.t, buf, sizeof(buf));
    ck_assert_msg(r == 0, "read %zd errno %d: %s", r, errno, tls_conn_error(p.t));
    ck_assert_str_eq(tls_conn_error(p.t), "TLS handshake failed: the peer closed the connection");
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(a_client_gone_during_the_handshake_is_a_reset)
{
    struct tls_server *s = server_with("");
    struct pair p = pair_open(s, &plain_client);
    char buf[16];
    ssize_t r;

    ck_assert_int_eq(SSL_do_handshake(p.c), -1);                /* ClientHello sent */
    ck_assert_int_eq(tls_conn_read(p.t, buf, sizeof(buf)), -1); /* ServerHello... sent */
    ck_assert_int_eq(errno, EAGAIN);
    close(p.cfd);
    p.cfd = -1;
    r = tls_conn_read(p.t, buf, sizeof(buf));
    /* It left the ServerHello unread, so its socket was reset rather than closed. */
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, ECONNRESET);
    ck_assert_str_eq(tls_conn_error(p.t), "Connection reset by peer");
    ck_assert_int_eq(tls_conn_shutdown(p.t), -1);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* ---- Client certificates ------------------------------------------------------------------ */

START_TEST(verify_peer_with_fail_if_no_peer_cert_refuses_a_client_without_certificate)
{
    struct tls_server *s =
        server_with("ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n");
    struct pair p = pair_open(s, &plain_client);
    struct outcome r = handshake(&p);

    ck_assert(!r.server_ok);
    ck_assert_int_eq(r.server_rc, -1);
    ck_assert_int_eq(r.server_errno, EPROTO);
    ck_assert_msg(strstr(r.server_error, "certificate") != NULL, "%s", r.server_error);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: peer did not return a certificate");
    /* TLS 1.3 clients finish first; the alert reaches them on their next read. */
    ck_assert(client_read_fails(&p));
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(verify_peer_refuses_a_certificate_from_another_ca)
{
    struct tls_server *s =
        server_with("ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n");
    struct client_opts o = {.cert = "untrusted.pem", .key = "untrusted.key"};
    struct pair p = pair_open(s, &o);
    struct outcome r = handshake(&p);
    char name[256];

    ck_assert(!r.server_ok);
    ck_assert_int_eq(r.server_errno, EPROTO);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: certificate verify failed: unable to "
                                     "get local issuer certificate");
    ck_assert(!tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_CN, name, sizeof(name)));
    ck_assert(client_read_fails(&p));
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(verify_peer_refuses_an_untrusted_certificate_even_without_fail_if_no_peer_cert)
{
    struct tls_server *s = server_with("ssl_options.verify = verify_peer\n");
    struct client_opts o = {.cert = "untrusted.pem", .key = "untrusted.key"};
    struct pair p = pair_open(s, &o);
    struct outcome r = handshake(&p);

    ck_assert(!r.server_ok);
    ck_assert_int_eq(r.server_errno, EPROTO);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(verified_client_certificate_gives_rabbitmq_user_names)
{
    struct tls_server *s =
        server_with("ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n");
    struct pair p = connected(s, &trusted_client);
    char name[256];

    /* rabbit_ssl:peer_cert_auth_name/2 of RabbitMQ 3.10.8 gives these for client.pem. */
    ck_assert(tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_DN, name, sizeof(name)));
    ck_assert_str_eq(name, "CN=warren-client,O=Warren Tests,C=GB");
    ck_assert(tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_CN, name, sizeof(name)));
    ck_assert_str_eq(name, "warren-client");
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* client-dn.pem's subject has every character RFC 4514 escapes, UTF-8, and a multi-valued
 * RDN; RabbitMQ 3.10.8 (rabbit_ssl:peer_cert_auth_name/2) writes it exactly so. */
START_TEST(distinguished_name_escapes_as_rabbitmq_does)
{
    struct tls_server *s = server_with("ssl_options.verify = verify_peer\n");
    struct client_opts o = {.cert = "client-dn.pem", .key = "client-dn.key"};
    struct pair p = connected(s, &o);
    static const char dn[] = "CN=\\#warren client\\ ,OU=QA+L=Here,"
                             "O=Acme\\, \\\"Inc\\\" \\<1\\+1\\;2\\\\3\\>,L=Z\\C3\\BCrich,C=DE";
    char name[256];

    ck_assert(tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_DN, name, sizeof(name)));
    ck_assert_str_eq(name, dn);
    ck_assert(tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_CN, name, sizeof(name)));
    ck_assert_str_eq(name, "#warren client ");
    /* A name that does not fit is no name, not a cut one. */
    ck_assert(tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_DN, name, sizeof(dn)));
    ck_assert(!tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_DN, name, sizeof(dn) - 1));
    ck_assert_str_eq(name, "");
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(verify_peer_without_fail_accepts_a_client_without_certificate_but_names_nobody)
{
    struct tls_server *s = server_with("ssl_options.verify = verify_peer\n");
    struct pair p = connected(s, &plain_client);
    char name[64] = "x";

    ck_assert(!tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_DN, name, sizeof(name)));
    ck_assert_str_eq(name, "");
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* With verify_none no certificate is asked for, so EXTERNAL has nobody to name, as
 * RabbitMQ refuses EXTERNAL without verify_peer. */
START_TEST(verify_none_names_nobody_even_if_the_client_has_a_certificate)
{
    struct tls_server *s = server_with("");
    struct pair p = connected(s, &trusted_client);
    char name[64];

    ck_assert(!tls_conn_peer_identity(p.t, CONFIG_CERT_LOGIN_CN, name, sizeof(name)));
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* ---- Versions and ciphers ----------------------------------------------------------------- */

START_TEST(tls_1_1_client_is_refused_by_default)
{
    struct tls_server *s = server_with("");
    struct client_opts o = {.max_version = TLS1_1_VERSION, .old_versions = true};
    struct pair p = pair_open(s, &o);
    struct outcome r = handshake(&p);

    ck_assert(!r.server_ok);
    ck_assert_int_eq(r.server_errno, EPROTO);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: unsupported protocol");
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(tls_1_2_and_1_3_clients_are_accepted_by_default)
{
    struct tls_server *s = server_with("");
    struct client_opts o12 = {.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION};
    struct client_opts o13 = {.min_version = TLS1_3_VERSION};
    struct pair p = connected(s, &o12);

    ck_assert_str_eq(tls_conn_protocol(p.t), "TLSv1.2");
    round_trip(&p);
    pair_close(&p);
    p = connected(s, &o13);
    ck_assert_str_eq(tls_conn_protocol(p.t), "TLSv1.3");
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

static char *capture_stderr(int *saved)
{
    static char path[64];
    int fd;

    strcpy(path, "/tmp/check_tls.XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    *saved = dup(STDERR_FILENO);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    return path;
}

static void restore_stderr(int saved, const char *path, char *text, size_t size)
{
    int fd;
    ssize_t n;

    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    n = read(fd, text, size - 1);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

/* Asked for, TLS 1.1 works (the operator is warned), and only what was asked for. */
START_TEST(tls_1_1_when_configured_works_with_a_warning)
{
    struct client_opts o11 = {.max_version = TLS1_1_VERSION, .old_versions = true};
    struct client_opts o13 = {.min_version = TLS1_3_VERSION};
    struct tls_server *s;
    struct pair p;
    struct outcome r;
    char log[1024];
    int saved;
    const char *path = capture_stderr(&saved);

    s = server_with("ssl_options.versions.1 = tlsv1.1\n");
    restore_stderr(saved, path, log, sizeof(log));
    ck_assert_msg(strstr(log, "[warning] ssl_options.versions enables tlsv1.1: insecure") != NULL,
                  "%s", log);
    p = connected(s, &o11);
    ck_assert_str_eq(tls_conn_protocol(p.t), "TLSv1.1");
    round_trip(&p);
    pair_close(&p);
    p = pair_open(s, &o13);
    r = handshake(&p);
    ck_assert(!r.server_ok);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: unsupported protocol");
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(tls_1_3_only_refuses_tls_1_2)
{
    struct tls_server *s = server_with("ssl_options.versions.1 = tlsv1.3\n");
    struct client_opts o = {.max_version = TLS1_2_VERSION};
    struct pair p = pair_open(s, &o);
    struct outcome r = handshake(&p);

    ck_assert(!r.server_ok);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: unsupported protocol");
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

#define AES128 "ECDHE-ECDSA-AES128-GCM-SHA256"
#define AES256 "ECDHE-ECDSA-AES256-GCM-SHA384"

START_TEST(configured_ciphers_are_the_only_ones_offered)
{
    struct tls_server *s =
        server_with("ssl_options.versions.1 = tlsv1.2\nssl_options.ciphers.1 = " AES128 "\n");
    struct client_opts only256 = {.ciphers = AES256};
    struct client_opts both = {.ciphers = AES256 ":" AES128};
    struct pair p = pair_open(s, &only256);
    struct outcome r = handshake(&p);

    ck_assert(!r.server_ok);
    ck_assert_str_eq(r.server_error, "TLS handshake failed: no shared cipher");
    pair_close(&p);
    p = connected(s, &both);
    ck_assert_str_eq(tls_conn_cipher(p.t), AES128);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(honor_cipher_order_picks_the_servers_first_choice)
{
    static const char ciphers[] = "ssl_options.versions.1 = tlsv1.2\n"
                                  "ssl_options.ciphers.1 = " AES128 "\n"
                                  "ssl_options.ciphers.2 = " AES256 "\n";
    char text[512];
    struct client_opts prefers256 = {.ciphers = AES256 ":" AES128};
    struct tls_server *s = server_with(ciphers);
    struct pair p = connected(s, &prefers256);

    ck_assert_str_eq(tls_conn_cipher(p.t), AES256); /* the client's choice */
    pair_close(&p);
    tls_server_free(s);
    snprintf(text, sizeof(text), "%sssl_options.honor_cipher_order = true\n", ciphers);
    s = server_with(text);
    p = connected(s, &prefers256);
    ck_assert_str_eq(tls_conn_cipher(p.t), AES128); /* the server's */
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

START_TEST(tls_1_3_suites_and_iana_names_are_understood)
{
    struct tls_server *s = server_with("ssl_options.ciphers.1 = TLS_CHACHA20_POLY1305_SHA256\n");
    struct client_opts o12 = {.max_version = TLS1_2_VERSION, .ciphers = AES256 ":" AES128};
    struct pair p = connected(s, &plain_client);

    ck_assert_str_eq(tls_conn_cipher(p.t), "TLS_CHACHA20_POLY1305_SHA256");
    pair_close(&p);
    /* The list names no TLS 1.2 cipher: TLS 1.2 keeps OpenSSL's defaults. */
    p = connected(s, &o12);
    pair_close(&p);
    tls_server_free(s);

    s = server_with("ssl_options.versions.1 = tlsv1.2\n"
                    "ssl_options.ciphers.1 = TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n");
    p = connected(s, &o12);
    ck_assert_str_eq(tls_conn_cipher(p.t), AES128);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* ---- Reload ------------------------------------------------------------------------------- */

START_TEST(reload_gives_new_connections_the_new_certificate)
{
    struct tls_server *s = server_with("");
    struct config c2 = tls_config("");
    struct config broken = tls_config("");
    struct pair old, fresh, later;

    old = connected(s, &plain_client);
    ck_assert_str_eq(server_cert_subject(&old), "/CN=localhost");

    snprintf(c2.ssl_certfile, sizeof(c2.ssl_certfile), "%s", cert("server2.pem"));
    snprintf(c2.ssl_keyfile, sizeof(c2.ssl_keyfile), "%s", cert("server2.key"));
    ck_assert_int_eq(tls_server_reload(s, &c2, err, sizeof(err)), 0);
    fresh = connected(s, &plain_client);
    ck_assert_str_eq(server_cert_subject(&fresh), "/CN=warren-reloaded");

    /* The connection made before keeps working on its own context. */
    round_trip(&old);
    ck_assert_str_eq(server_cert_subject(&old), "/CN=localhost");

    /* A reload that fails changes nothing. */
    snprintf(broken.ssl_keyfile, sizeof(broken.ssl_keyfile), "%s", cert("client.key"));
    ck_assert_int_eq(tls_server_reload(s, &broken, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "does not match ssl_options.certfile"));
    later = connected(s, &plain_client);
    ck_assert_str_eq(server_cert_subject(&later), "/CN=warren-reloaded");

    /* Connections outlive the server object. */
    tls_server_free(s);
    round_trip(&old);
    round_trip(&fresh);
    pair_close(&old);
    pair_close(&fresh);
    pair_close(&later);
}
END_TEST

/* ---- tls_server_new's errors ------------------------------------------------------------- */

static const char *server_error(const char *extra)
{
    struct config c = tls_config(extra);
    struct tls_server *s = tls_server_new(&c, err, sizeof(err));

    ck_assert_ptr_null(s);
    return err;
}

START_TEST(server_errors_name_the_key_the_file_and_the_reason)
{
    char want[512], text[512];

    snprintf(text, sizeof(text), "ssl_options.certfile = %s\n", cert("missing.pem"));
    snprintf(want, sizeof(want),
             "ssl_options.certfile '%s': cannot open: No such file or directory",
             cert("missing.pem"));
    ck_assert_str_eq(server_error(text), want);

    snprintf(text, sizeof(text), "ssl_options.keyfile = %s\n", cert("client.key"));
    snprintf(want, sizeof(want), "ssl_options.keyfile '%s' does not match ssl_options.certfile",
             cert("client.key"));
    ck_assert_str_eq(server_error(text), want);

    /* A file that is not PEM: OpenSSL's words after the name. */
    snprintf(text, sizeof(text), "ssl_options.certfile = %s\n", cert("ca.srl"));
    snprintf(want, sizeof(want), "ssl_options.certfile '%s': ", cert("ca.srl"));
    ck_assert_msg(strncmp(server_error(text), want, strlen(want)) == 0, "%s", err);

    snprintf(text, sizeof(text), "ssl_options.cacertfile = %s\n", cert("missing-ca.pem"));
    snprintf(want, sizeof(want),
             "ssl_options.cacertfile '%s': cannot open: No such file or directory",
             cert("missing-ca.pem"));
    ck_assert_str_eq(server_error(text), want);

    ck_assert_str_eq(server_error("ssl_options.cacertfile = false\n"
                                  "ssl_options.verify = verify_peer\n"),
                     "ssl_options.verify = verify_peer needs ssl_options.cacertfile");
    ck_assert_str_eq(server_error("ssl_options.certfile = false\n"),
                     "TLS needs ssl_options.certfile and ssl_options.keyfile");
    ck_assert_str_eq(server_error("ssl_options.ciphers.1 = AES1024-SHA\n"),
                     "ssl_options.ciphers: unknown cipher 'AES1024-SHA'");
    /* A family name is not one cipher. */
    ck_assert_str_eq(server_error("ssl_options.ciphers.1 = HIGH\n"),
                     "ssl_options.ciphers: unknown cipher 'HIGH'");
}
END_TEST

START_TEST(encrypted_key_needs_the_right_password)
{
    char text[512], want[512];
    struct tls_server *s;
    struct pair p;

    snprintf(text, sizeof(text), "ssl_options.keyfile = %s\n", cert("server-enc.key"));
    snprintf(want, sizeof(want),
             "ssl_options.keyfile '%s' is encrypted and ssl_options.password is not set",
             cert("server-enc.key"));
    ck_assert_str_eq(server_error(text), want);

    snprintf(text, sizeof(text), "ssl_options.keyfile = %s\nssl_options.password = wrong\n",
             cert("server-enc.key"));
    snprintf(want, sizeof(want),
             "ssl_options.keyfile '%s': cannot decrypt it with ssl_options.password: ",
             cert("server-enc.key"));
    ck_assert_msg(strncmp(server_error(text), want, strlen(want)) == 0, "%s", err);

    snprintf(text, sizeof(text), "ssl_options.keyfile = %s\nssl_options.password = warren-secret\n",
             cert("server-enc.key"));
    s = server_with(text);
    p = connected(s, &plain_client);
    round_trip(&p);
    pair_close(&p);
    tls_server_free(s);
}
END_TEST

/* ---- Resources ---------------------------------------------------------------------------- */

START_TEST(no_descriptor_outlives_its_owner)
{
    int before = open_fd_count();
    struct tls_server *s = server_with("ssl_options.verify = verify_peer\n");

    for (int i = 0; i < 3; i++) {
        struct pair p = connected(s, &trusted_client);

        round_trip(&p);
        tls_conn_shutdown(p.t);
        pair_close(&p);
    }
    ck_assert_int_eq(tls_server_reload(s, &(struct config){0}, err, sizeof(err)), -1);
    tls_server_free(s);
    ck_assert_int_eq(open_fd_count(), before);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *t = tcase_create("transport");

    tcase_set_timeout(t, 30);
    tcase_add_test(t, handshake_completes_and_data_flows_both_ways);
    tcase_add_test(t, one_mebibyte_from_server_in_partial_writes_from_a_moving_buffer);
    tcase_add_test(t, one_mebibyte_from_client_into_a_small_buffer_with_pending);
    tcase_add_test(t, a_large_read_takes_several_records);
    tcase_add_test(t, key_update_requested_by_the_client_is_answered);
    tcase_add_test(t, client_renegotiation_is_refused);
    tcase_add_test(t, close_notify_from_the_client_reads_as_end_of_stream);
    tcase_add_test(t, a_socket_closed_without_close_notify_reads_as_end_of_stream);
    tcase_add_test(t, data_then_end_of_stream_in_one_read);
    tcase_add_test(t, server_shutdown_sends_close_notify);
    tcase_add_test(t, plain_amqp_on_a_tls_socket_fails_the_handshake);
    tcase_add_test(t, a_connection_closed_before_the_client_hello_reads_as_end_of_stream);
    tcase_add_test(t, a_client_gone_during_the_handshake_is_a_reset);
    suite_add_tcase(s, t);

    t = tcase_create("certificates");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, verify_peer_with_fail_if_no_peer_cert_refuses_a_client_without_certificate);
    tcase_add_test(t, verify_peer_refuses_a_certificate_from_another_ca);
    tcase_add_test(t,
                   verify_peer_refuses_an_untrusted_certificate_even_without_fail_if_no_peer_cert);
    tcase_add_test(t, verified_client_certificate_gives_rabbitmq_user_names);
    tcase_add_test(t, distinguished_name_escapes_as_rabbitmq_does);
    tcase_add_test(t,
                   verify_peer_without_fail_accepts_a_client_without_certificate_but_names_nobody);
    tcase_add_test(t, verify_none_names_nobody_even_if_the_client_has_a_certificate);
    suite_add_tcase(s, t);

    t = tcase_create("versions_and_ciphers");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, tls_1_1_client_is_refused_by_default);
    tcase_add_test(t, tls_1_2_and_1_3_clients_are_accepted_by_default);
    tcase_add_test(t, tls_1_1_when_configured_works_with_a_warning);
    tcase_add_test(t, tls_1_3_only_refuses_tls_1_2);
    tcase_add_test(t, configured_ciphers_are_the_only_ones_offered);
    tcase_add_test(t, honor_cipher_order_picks_the_servers_first_choice);
    tcase_add_test(t, tls_1_3_suites_and_iana_names_are_understood);
    suite_add_tcase(s, t);

    t = tcase_create("server");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, reload_gives_new_connections_the_new_certificate);
    tcase_add_test(t, server_errors_name_the_key_the_file_and_the_reason);
    tcase_add_test(t, encrypted_key_needs_the_right_password);
    tcase_add_test(t, no_descriptor_outlives_its_owner);
    suite_add_tcase(s, t);
    return s;
}

/* Makes the certificates once for every test; 77 (skip) without the openssl CLI. */
static int make_certificates(void)
{
    const char *srcdir = getenv("top_srcdir");
    char command[1024];
    int rc;

    if (srcdir == NULL) {
        fprintf(stderr, "check_tls: top_srcdir is not set (run through make check)\n");
        return 1;
    }
    strcpy(cert_dir, "/tmp/check_tls.XXXXXX");
    if (mkdtemp(cert_dir) == NULL) {
        perror("check_tls: mkdtemp");
        return 1;
    }
    snprintf(command, sizeof(command), "sh '%s/tests/unit/tls_certs.sh' '%s'", srcdir, cert_dir);
    rc = system(command);
    if (rc != 0) {
        fprintf(stderr, "check_tls: tls_certs.sh failed (%d)\n", rc);
        return WIFEXITED(rc) && WEXITSTATUS(rc) == 77 ? 77 : 1;
    }
    return 0;
}

static void remove_certificates(void)
{
    char command[256];

    snprintf(command, sizeof(command), "rm -rf '%s'", cert_dir);
    if (system(command) != 0)
        fprintf(stderr, "check_tls: could not remove %s\n", cert_dir);
}

int main(void)
{
    SRunner *sr;
    int failed, rc;

    /* Only warnings reach stderr, where one test looks for one. */
    log_set_level(LOG_LEVEL_WARNING);
    if ((rc = make_certificates()) != 0)
        return rc;
    sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_certificates();
    return failed == 0 ? 0 : 1;
}
