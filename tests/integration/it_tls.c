/* AMQPS end to end: rabbitmq-c's TLS socket (and a bare OpenSSL client where rabbitmq-c
 * cannot reach: protocol versions, the server certificate, raw bytes) against warrend's TLS
 * listener. Logins with PLAIN and with EXTERNAL from a verified client certificate, refusals
 * with RabbitMQ's reply and the reason in warrend's log, the TLS and AMQP handshake timeouts,
 * SIGHUP reloading the certificate, and user names longer than a log line's field.
 *
 * The broker: a TLS listener on a free loopback port with verify_peer (clients may come
 * without a certificate: fail_if_no_peer_cert = false), ssl_handshake_timeout = 1000,
 * handshake_timeout = 4000, and as default user the DN of client.pem, the way
 * rabbitmq_auth_mechanism_ssl names it. Certificates come from tests/unit/tls_certs.sh, made
 * when the program starts.
 *
 * Against another broker: AMQP_HOST, AMQP_PORT, AMQPS_PORT and TLS_CERT_DIR (certificates
 * made by tls_certs.sh that the broker uses, set up as above with
 * auth_mechanisms.3 = EXTERNAL and rabbitmq_auth_mechanism_ssl enabled for RabbitMQ). The
 * tests of warrend's log, SIGHUP and restarts are then skipped. */
#include "harness.h"

#include <amqp_ssl_socket.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CLIENT_DN   "CN=warren-client,O=Warren Tests,C=GB"
#define CLIENT_PASS "warren-pass"
/* client-long.pem's DN: 101 bytes, more than a log line keeps of a user name. */
#define LONG_DN                                                                                    \
    "CN=warren-client.example.com,OU=Messaging Platform,O=Example Corporation,L=Springfield,"      \
    "ST=Oregon,C=US"
#define REFUSED_EXTERNAL                                                                           \
    "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details "     \
    "see the broker logfile."

static char cert_dir[256];
static char made_dir[128]; /* the temporary directory this program made, "" if none */
static int tls_port;

static const char *cert(const char *name)
{
    static char paths[8][320];
    static int next;
    char *p = paths[next++ % 8];

    snprintf(p, sizeof(paths[0]), "%s/%s", cert_dir, name);
    return p;
}

/* ---- rabbitmq-c over TLS ------------------------------------------------------------------ */

struct tls_opts {
    const char *cert;               /* "client" for client.pem and client.key; NULL none */
    amqp_tls_version_t min_version; /* 0: TLS 1.2 */
    amqp_tls_version_t max_version; /* 0: the newest */
    bool external;                  /* SASL EXTERNAL, else PLAIN with user and pass */
    const char *user, *pass;        /* NULL: CLIENT_DN, CLIENT_PASS */
};

/* Opens a TLS connection that checks the server's certificate against ca.pem and the name
 * localhost, and logs in; *open_rc is amqp_socket_open's status, *login the login's reply
 * (not attempted if the socket did not open). */
static amqp_connection_state_t tls_connect_raw(const struct tls_opts *o, int *open_rc,
                                               amqp_rpc_reply_t *login)
{
    struct timeval timeout = {.tv_sec = 5};
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_ssl_socket_new(c);
    char crt[64], key[64];

    ck_assert_ptr_nonnull(sock);
    ck_assert_int_eq(amqp_ssl_socket_set_cacert(sock, cert("ca.pem")), AMQP_STATUS_OK);
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 1);
    ck_assert_int_eq(
        amqp_ssl_socket_set_ssl_versions(sock, o->min_version ? o->min_version : AMQP_TLSv1_2,
                                         o->max_version ? o->max_version : AMQP_TLSvLATEST),
        AMQP_STATUS_OK);
    if (o->cert != NULL) {
        snprintf(crt, sizeof crt, "%s.pem", o->cert);
        snprintf(key, sizeof key, "%s.key", o->cert);
        ck_assert_int_eq(amqp_ssl_socket_set_key(sock, cert(crt), cert(key)), AMQP_STATUS_OK);
    }
    memset(login, 0, sizeof *login);
    *open_rc = amqp_socket_open_noblock(sock, "localhost", tls_port, &timeout);
    if (*open_rc != AMQP_STATUS_OK)
        return c;
    amqp_set_handshake_timeout(c, &timeout);
    amqp_set_rpc_timeout(c, &timeout);
    if (o->external)
        *login = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_EXTERNAL, "ignored");
    else
        *login = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                            o->user ? o->user : CLIENT_DN, o->pass ? o->pass : CLIENT_PASS);
    return c;
}

/* Logged in, channel 1 open; fails the test otherwise. */
static amqp_connection_state_t tls_connect(const struct tls_opts *o)
{
    amqp_rpc_reply_t login;
    int rc;
    char buf[512];
    amqp_connection_state_t c = tls_connect_raw(o, &rc, &login);

    if (rc != AMQP_STATUS_OK) {
        amqp_destroy_connection(c);
        ck_abort_msg("TLS connection to localhost:%d failed: %s", tls_port, amqp_error_string2(rc));
    }
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        it_reply_str(login, buf, sizeof buf);
        amqp_destroy_connection(c);
        ck_abort_msg("login failed: %s", buf);
    }
    it_channel_open(c, 1);
    return c;
}

/* The login fails with connection.close 403 and RabbitMQ's text for a refused EXTERNAL. */
static void expect_external_refused(const struct tls_opts *o)
{
    amqp_rpc_reply_t login;
    int rc;
    amqp_connection_state_t c = tls_connect_raw(o, &rc, &login);

    ck_assert_msg(rc == AMQP_STATUS_OK, "TLS connection failed: %s", amqp_error_string2(rc));
    it_expect_connection_close(c, login, 403, REFUSED_EXTERNAL);
    it_destroy(c);
}

/* Publishes body to a new queue and gets it back. */
static void round_trip(amqp_connection_state_t c, const char *topic, size_t size)
{
    char q[64];
    char *body = malloc(size);
    struct it_msg m;

    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < size; i++)
        body[i] = (char)('a' + i % 23);
    it_temp_queue(c, it_name(q, sizeof q, topic));
    it_publish_bytes(c, 1, "", q, NULL, (amqp_bytes_t){size, body});
    ck_assert(it_get(c, 1, q, true, &m));
    ck_assert_uint_eq(m.message.body.len, size);
    ck_assert_int_eq(memcmp(m.message.body.bytes, body, size), 0);
    it_msg_free(&m);
    free(body);
}

/* ---- A bare OpenSSL client ------------------------------------------------------------------ */

static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

struct raw_tls {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

/* A blocking TLS client on the TLS port, limited to [min, max] (0: OpenSSL's), offering
 * TLS 1.0 and 1.1 too when asked (security level 0). Returns whether the handshake worked. */
static bool raw_tls_open(struct raw_tls *t, int min, int max)
{
    struct timeval tv = {.tv_sec = 5};

    t->ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(t->ctx);
    SSL_CTX_set_security_level(t->ctx, 0);
    if (min)
        SSL_CTX_set_min_proto_version(t->ctx, min);
    if (max)
        SSL_CTX_set_max_proto_version(t->ctx, max);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(t->ctx, cert("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->fd = tcp_connect(tls_port);
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    t->ssl = SSL_new(t->ctx);
    ck_assert_ptr_nonnull(t->ssl);
    SSL_set1_host(t->ssl, "localhost");
    SSL_set_fd(t->ssl, t->fd);
    return SSL_connect(t->ssl) == 1;
}

static void raw_tls_close(struct raw_tls *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
    ERR_clear_error();
}

/* The CN of the server certificate the client was given. */
static const char *raw_tls_server_cn(struct raw_tls *t)
{
    static char cn[128];
    X509 *x = SSL_get1_peer_certificate(t->ssl);

    ck_assert_ptr_nonnull(x);
    cn[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_free(x);
    return cn;
}

/* The mechanisms of the connection.start that answers a protocol header on read_fn. */
static void mechanisms_after_header(int (*io)(void *, void *, int, bool), void *arg, char *out,
                                    size_t size)
{
    static const uint8_t header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    uint8_t buf[4096];
    size_t len = 0, frame, at;
    uint32_t props, mech;

    ck_assert_int_eq(io(arg, (void *)header, sizeof header, true), (int)sizeof header);
    for (;;) {
        int n = io(arg, buf + len, (int)(sizeof buf - len), false);

        ck_assert_msg(n > 0, "connection closed before connection.start");
        len += (size_t)n;
        if (len >= 7 &&
            len >=
                7 + ((size_t)buf[3] << 24 | (size_t)buf[4] << 16 | (size_t)buf[5] << 8 | buf[6]) +
                    1)
            break;
    }
    frame = (size_t)buf[3] << 24 | (size_t)buf[4] << 16 | (size_t)buf[5] << 8 | buf[6];
    /* type, channel, size, class-id, method-id, version-major, version-minor */
    at = 7 + 4 + 2;
    ck_assert_uint_eq(buf[7 + 1], 10); /* connection.start */
    props = (uint32_t)buf[at] << 24 | (uint32_t)buf[at + 1] << 16 | (uint32_t)buf[at + 2] << 8 |
            buf[at + 3];
    at += 4 + props;
    ck_assert_uint_le(at + 4, 7 + frame);
    mech = (uint32_t)buf[at] << 24 | (uint32_t)buf[at + 1] << 16 | (uint32_t)buf[at + 2] << 8 |
           buf[at + 3];
    ck_assert_uint_le(at + 4 + mech, 7 + frame);
    ck_assert_uint_lt(mech, size);
    memcpy(out, buf + at + 4, mech);
    out[mech] = '\0';
}

static int tls_io(void *arg, void *buf, int n, bool write)
{
    return write ? SSL_write(arg, buf, n) : SSL_read(arg, buf, n);
}

static int tcp_io(void *arg, void *buf, int n, bool write)
{
    int fd = *(int *)arg;

    return (int)(write ? send(fd, buf, (size_t)n, MSG_NOSIGNAL) : recv(fd, buf, (size_t)n, 0));
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    }
    return false;
}

/* Waits up to timeout_ms for warrend's log to have the line; false if it never comes. */
static bool log_line_within(const char *level, const char *text, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (it_broker_log_has(level, text))
            return true;
        it_sleep_ms(20);
    }
    return false;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

START_TEST(amqps_carries_messages_after_checking_the_server_certificate)
{
    struct tls_opts o = {0};
    amqp_connection_state_t c = tls_connect(&o);

    round_trip(c, "tls.small", 100);
    /* More than the socket takes at once: partial TLS writes on the broker's side. */
    round_trip(c, "tls.big", 4 * 1024 * 1024);
    it_disconnect(c);
}
END_TEST

START_TEST(tls_1_2_and_1_3_are_accepted)
{
    struct raw_tls t;

    ck_assert(raw_tls_open(&t, TLS1_2_VERSION, TLS1_2_VERSION));
    ck_assert_str_eq(SSL_get_version(t.ssl), "TLSv1.2");
    raw_tls_close(&t);
    ck_assert(raw_tls_open(&t, TLS1_3_VERSION, 0));
    ck_assert_str_eq(SSL_get_version(t.ssl), "TLSv1.3");
    raw_tls_close(&t);
}
END_TEST

/* Warren's default is tlsv1.3 and tlsv1.2 only. RabbitMQ 3.10.8 (on Erlang/OTP 25) still
 * accepts TLS 1.1 unless ssl_options.versions says otherwise: warrend only. Warrend says
 * why in its log. */
START_TEST(tls_1_1_is_refused_and_logged)
{
    struct raw_tls t;

    ck_assert(!raw_tls_open(&t, TLS1_VERSION, TLS1_1_VERSION));
    raw_tls_close(&t);
    ck_assert(log_line_within("warning", "TLS handshake failed: unsupported protocol", 2000));
}
END_TEST

START_TEST(plain_login_over_tls)
{
    struct tls_opts o = {.cert = "client"};
    amqp_connection_state_t c = tls_connect(&o);

    round_trip(c, "tls.plain", 10);
    it_disconnect(c);
}
END_TEST

START_TEST(external_login_takes_the_user_from_the_certificate)
{
    struct tls_opts o = {.cert = "client", .external = true};
    amqp_connection_state_t c = tls_connect(&o);
    amqp_basic_properties_t p = {._flags = AMQP_BASIC_USER_ID_FLAG,
                                 .user_id = amqp_cstring_bytes(CLIENT_DN)};
    char q[64];
    struct it_msg m;

    /* The user is the DN: a user-id naming it is accepted, as RabbitMQ validates user-id. */
    it_temp_queue(c, it_name(q, sizeof q, "tls.external"));
    it_publish_bytes(c, 1, "", q, &p, amqp_cstring_bytes("from a certificate"));
    ck_assert(it_get(c, 1, q, true, &m));
    it_assert_bytes(m.message.properties.user_id, CLIENT_DN);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(external_without_a_certificate_is_refused)
{
    struct tls_opts o = {.external = true};

    expect_external_refused(&o);
}
END_TEST

START_TEST(external_for_a_certificate_naming_no_user_is_refused)
{
    struct tls_opts o = {.cert = "stranger", .external = true};

    expect_external_refused(&o);
}
END_TEST

START_TEST(external_refusals_are_logged_with_their_reason)
{
    struct tls_opts none = {.external = true}, nobody = {.cert = "stranger", .external = true};

    expect_external_refused(&none);
    ck_assert(log_line_within("warning", "login refused: no verified client certificate", 2000));
    expect_external_refused(&nobody);
    ck_assert(
        log_line_within("warning", "login refused: no user named by the client certificate", 2000));
}
END_TEST

START_TEST(a_client_certificate_from_another_ca_fails_the_handshake)
{
    struct tls_opts o = {.cert = "untrusted"};
    amqp_rpc_reply_t login;
    int rc;
    amqp_connection_state_t c = tls_connect_raw(&o, &rc, &login);

    /* TLS 1.3 clients finish their side first: the refusal comes with the first read. */
    ck_assert(rc != AMQP_STATUS_OK || login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION);
    amqp_destroy_connection(c);
}
END_TEST

START_TEST(a_refused_client_certificate_is_logged)
{
    struct tls_opts o = {.cert = "untrusted"};
    amqp_rpc_reply_t login;
    int rc;

    amqp_destroy_connection(tls_connect_raw(&o, &rc, &login));
    ck_assert(log_line_within("warning",
                              "TLS handshake failed: certificate verify failed: unable to get "
                              "local issuer certificate",
                              2000));
}
END_TEST

/* EXTERNAL is offered where a client certificate can be verified, and only there. */
START_TEST(external_is_offered_on_the_tls_listener_only)
{
    struct raw_tls t;
    char mechanisms[256];
    int fd;

    ck_assert(raw_tls_open(&t, 0, 0));
    mechanisms_after_header(tls_io, t.ssl, mechanisms, sizeof mechanisms);
    ck_assert_msg(has_word(mechanisms, "EXTERNAL") && has_word(mechanisms, "PLAIN") &&
                      has_word(mechanisms, "AMQPLAIN"),
                  "TLS: '%s'", mechanisms);
    raw_tls_close(&t);
    fd = it_raw_socket();
    mechanisms_after_header(tcp_io, &fd, mechanisms, sizeof mechanisms);
    ck_assert_msg(!has_word(mechanisms, "EXTERNAL") && has_word(mechanisms, "PLAIN"), "TCP: '%s'",
                  mechanisms);
    close(fd);
}
END_TEST

/* AMQP without TLS on the TLS port: the broker drops the connection, answering nothing an
 * AMQP client could take for a reply. */
START_TEST(plain_amqp_on_the_tls_port_is_dropped)
{
    static const uint8_t header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    int fd = tcp_connect(tls_port);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint8_t buf[256];
    ssize_t n;

    ck_assert_int_eq(send(fd, header, sizeof header, MSG_NOSIGNAL), 8);
    /* Whatever comes back (a TLS alert, or nothing) must not look like AMQP. */
    while (poll(&p, 1, 3000) == 1 && (n = recv(fd, buf, sizeof buf, 0)) > 0)
        ck_assert_msg(buf[0] != 'A' && buf[0] != 1, "an AMQP answer on the TLS port");
    ck_assert_int_eq(poll(&p, 1, 0), 1); /* closed, not timed out */
    close(fd);
}
END_TEST

/* The broker was started with ssl_handshake_timeout = 1000. */
START_TEST(a_silent_client_is_dropped_after_ssl_handshake_timeout)
{
    int fd = tcp_connect(tls_port);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    long long start = it_now_ms(), took;
    char b;

    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    took = it_now_ms() - start;
    ck_assert_int_le(recv(fd, &b, 1, 0), 0);
    ck_assert_msg(took >= 900 && took < 3000, "closed after %lld ms", took);
    close(fd);
    ck_assert(log_line_within("warning", "handshake timeout", 1000));
}
END_TEST

/* The broker was started with ssl_handshake_timeout = 1000 and handshake_timeout = 4000. Once
 * TLS is up, the AMQP handshake has handshake_timeout, counted from the end of the TLS one,
 * as in RabbitMQ: a client that sends its protocol header 2 s after TLS, later than
 * ssl_handshake_timeout, still gets connection.start. */
START_TEST(the_amqp_handshake_after_tls_has_handshake_timeout)
{
    struct raw_tls t;
    char mechanisms[128];

    ck_assert(raw_tls_open(&t, 0, 0));
    it_sleep_ms(2000);
    mechanisms_after_header(tls_io, t.ssl, mechanisms, sizeof mechanisms);
    ck_assert_msg(has_word(mechanisms, "PLAIN"), "mechanisms '%s'", mechanisms);
    raw_tls_close(&t);
}
END_TEST

/* ... and a client that says nothing after TLS is dropped when handshake_timeout has passed
 * since TLS ended. */
START_TEST(a_client_silent_after_tls_is_dropped_after_handshake_timeout)
{
    struct timeval tv = {.tv_sec = 10};
    struct raw_tls t;
    long long start, took;
    char b;
    int n;

    ck_assert(raw_tls_open(&t, 0, 0));
    start = it_now_ms();
    setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* TLS 1.3 session tickets are read on the way; then the end of the stream. */
    n = SSL_read(t.ssl, &b, 1);
    took = it_now_ms() - start;
    ck_assert_msg(n <= 0 && took < 9000, "SSL_read: %d after %lld ms", n, took);
    ck_assert_msg(took >= 3500, "closed %lld ms after TLS, before handshake_timeout (4000)", took);
    raw_tls_close(&t);
    ck_assert(log_line_within("warning", "handshake timeout", 1000));
}
END_TEST

/* warrend's pid, found by the config path on its command line. */
static pid_t warrend_pid(void)
{
    const char *conf = it_config_path();
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t pid = -1;

    ck_assert_ptr_nonnull(conf);
    ck_assert_ptr_nonnull(d);
    while (pid < 0 && (e = readdir(d)) != NULL) {
        char path[300], cmd[4096];
        FILE *f;
        size_t n;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++) {
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        }
        cmd[n] = '\0';
        if (strstr(cmd, conf) != NULL && strstr(cmd, "warrend") != NULL)
            pid = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    ck_assert_int_gt(pid, 0);
    return pid;
}

static void copy_file(const char *from, const char *to)
{
    char command[1024];

    snprintf(command, sizeof command, "cp '%s' '%s.new' && mv '%s.new' '%s'", from, to, to, to);
    ck_assert_int_eq(system(command), 0);
}

/* A renewed certificate is put in place of the old one and the broker gets SIGHUP: new
 * connections see it, connections made before go on. */
START_TEST(sighup_reloads_the_certificate_for_new_connections)
{
    struct tls_opts o = {0};
    amqp_connection_state_t before = tls_connect(&o), after;
    struct raw_tls t;

    ck_assert(raw_tls_open(&t, 0, 0));
    ck_assert_str_eq(raw_tls_server_cn(&t), "localhost");
    raw_tls_close(&t);

    copy_file(cert("server2.pem"), cert("server.pem"));
    copy_file(cert("server2.key"), cert("server.key"));
    ck_assert_int_eq(kill(warrend_pid(), SIGHUP), 0);
    ck_assert(log_line_within("info", "TLS certificates reloaded", 3000));

    ck_assert(raw_tls_open(&t, 0, 0));
    ck_assert_str_eq(raw_tls_server_cn(&t), "warren-reloaded");
    raw_tls_close(&t);
    after = tls_connect(&o);
    round_trip(after, "tls.after", 1000);
    round_trip(before, "tls.before", 1000);
    it_disconnect(after);
    it_disconnect(before);
}
END_TEST

/* RabbitMQ takes user names of any length: a DN of 101 bytes logs in with EXTERNAL, and with
 * PLAIN, and keeps its permissions. The broker is restarted, once, on a fresh data directory
 * whose default user is that DN. */
static void restart_with_long_default_user(void)
{
    static bool done;
    char command[1024];
    FILE *f;

    if (done)
        return;
    done = true;
    it_broker_stop(false);
    snprintf(command, sizeof command, "rm -rf '%s'", it_data_dir());
    ck_assert_int_eq(system(command), 0);
    f = fopen(it_config_path(), "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "default_user = %s\n", LONG_DN);
    fclose(f);
    it_broker_start(NULL);
}

START_TEST(external_login_with_a_dn_longer_than_63_bytes)
{
    struct tls_opts o = {.cert = "client-long", .external = true};
    amqp_connection_state_t c;

    restart_with_long_default_user();
    c = tls_connect(&o);
    round_trip(c, "tls.long.external", 10);
    it_disconnect(c);
}
END_TEST

START_TEST(plain_login_with_a_user_name_longer_than_63_bytes)
{
    struct tls_opts o = {.user = LONG_DN, .pass = CLIENT_PASS};
    amqp_connection_state_t c;

    restart_with_long_default_user();
    c = tls_connect(&o);
    round_trip(c, "tls.long.plain", 10);
    it_disconnect(c);
}
END_TEST

/* ---- Set-up ------------------------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("it_tls: free port");
        exit(99);
    }
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int make_certificates(void)
{
    const char *srcdir = getenv("top_srcdir");
    char command[1024];
    int rc;

    snprintf(made_dir, sizeof made_dir, "%s/it_tls.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (srcdir == NULL || mkdtemp(made_dir) == NULL) {
        fprintf(stderr, "it_tls: needs top_srcdir (make check) and a temporary directory\n");
        return 99;
    }
    snprintf(cert_dir, sizeof cert_dir, "%s", made_dir);
    snprintf(command, sizeof command, "sh '%s/tests/unit/tls_certs.sh' '%s'", srcdir, cert_dir);
    rc = system(command);
    if (rc != 0)
        return WIFEXITED(rc) && WEXITSTATUS(rc) == 77 ? 77 : 99;
    return 0;
}

int main(void)
{
    char config[2048];
    Suite *s = suite_create("tls");
    TCase *tc;
    int rc;

    /* As the harness decides, before it_run() has looked. */
    if (getenv("AMQP_HOST") != NULL && getenv("AMQP_HOST")[0] != '\0') {
        const char *port = getenv("AMQPS_PORT"), *dir = getenv("TLS_CERT_DIR");

        if (port == NULL || dir == NULL) {
            printf("it_tls: skipped: AMQP_HOST names an external broker; set AMQPS_PORT and "
                   "TLS_CERT_DIR to test its TLS listener\n");
            return 77;
        }
        tls_port = atoi(port);
        snprintf(cert_dir, sizeof cert_dir, "%s", dir);
    } else {
        if ((rc = make_certificates()) != 0)
            return rc;
        tls_port = free_port();
    }
    snprintf(config, sizeof config,
             "listeners.ssl.default = 127.0.0.1:%d\n"
             "ssl_options.certfile = %s\nssl_options.keyfile = %s\n"
             "ssl_options.cacertfile = %s\n"
             "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = false\n"
             "ssl_handshake_timeout = 1000\nhandshake_timeout = 4000\n"
             "default_user = %s\ndefault_pass = %s\n"
             "management.tcp.port = 0\nprometheus.tcp.port = 0\n",
             tls_port, cert("server.pem"), cert("server.key"), cert("ca.pem"), CLIENT_DN,
             CLIENT_PASS);

    tc = it_tcase(s, "amqps");
    tcase_add_test(tc, amqps_carries_messages_after_checking_the_server_certificate);
    tcase_add_test(tc, tls_1_2_and_1_3_are_accepted);
    tcase_add_test(tc, plain_login_over_tls);
    tcase_add_test(tc, external_login_takes_the_user_from_the_certificate);
    tcase_add_test(tc, external_without_a_certificate_is_refused);
    tcase_add_test(tc, external_for_a_certificate_naming_no_user_is_refused);
    tcase_add_test(tc, a_client_certificate_from_another_ca_fails_the_handshake);
    tcase_add_test(tc, external_is_offered_on_the_tls_listener_only);
    tcase_add_test(tc, plain_amqp_on_the_tls_port_is_dropped);
    /* Warrend's log, its pid and its restarts: not another broker's. */
    it_add_warrend_test(tc, tls_1_1_is_refused_and_logged);
    it_add_warrend_test(tc, external_refusals_are_logged_with_their_reason);
    it_add_warrend_test(tc, a_refused_client_certificate_is_logged);
    it_add_warrend_test(tc, a_silent_client_is_dropped_after_ssl_handshake_timeout);
    it_add_warrend_test(tc, the_amqp_handshake_after_tls_has_handshake_timeout);
    it_add_warrend_test(tc, a_client_silent_after_tls_is_dropped_after_handshake_timeout);
    it_add_warrend_test(tc, sighup_reloads_the_certificate_for_new_connections);
    /* Last: they restart the broker with another default user. */
    it_add_warrend_test(tc, external_login_with_a_dn_longer_than_63_bytes);
    it_add_warrend_test(tc, plain_login_with_a_user_name_longer_than_63_bytes);

    /* The restart needs the process that started the broker. */
    it_set_nofork();
    rc = it_run(s, config);
    if (made_dir[0] != '\0') {
        char command[256];

        snprintf(command, sizeof command, "rm -rf '%s'", made_dir);
        if (system(command) != 0)
            fprintf(stderr, "it_tls: could not remove %s\n", made_dir);
    }
    return rc;
}
