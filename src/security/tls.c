/* TLS through OpenSSL: the server context from ssl_options.*, and sessions over
 * non-blocking sockets driven by the connection's event loop. See tls.h for the contract. */
#include "src/security/tls.h"

#include "src/base/log.h"
#include "src/base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_server {
    SSL_CTX *ctx; /* for new connections; each SSL holds its own reference */
};

struct tls_conn {
    SSL *ssl;
    bool want_write; /* the last EAGAIN waits for writability */
    bool failed;     /* a fatal error: no close_notify may follow */
    /* A read that returned bytes found the end or an error behind them: the next read
     * reports it. 0 = nothing deferred, -1 = end of stream, else an errno. */
    int deferred;
    char error[256];
};

/* ---- Errors ---------------------------------------------------------------------------- */

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* OpenSSL's words for the oldest error queued on this thread ("no shared cipher"), then the
 * queue emptied, so that it cannot be blamed on the next connection. */
static const char *openssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (e == 0)
        snprintf(buf, size, "unknown OpenSSL error");
    else if (reason != NULL)
        snprintf(buf, size, "%s", reason);
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* ---- The server context ------------------------------------------------------------------ */

/* What the private key's password callback gets and tells. */
struct key_password {
    const char *password; /* "" none */
    bool asked;           /* the key turned out to be encrypted */
};

/* OpenSSL's own default would prompt on the terminal: a daemon must never block on that. */
static int on_key_password(char *buf, int size, int rwflag, void *arg)
{
    struct key_password *kp = arg;
    size_t len = strlen(kp->password);

    (void)rwflag;
    kp->asked = true;
    if (len == 0 || len > (size_t)size)
        return -1;
    memcpy(buf, kp->password, len);
    return (int)len;
}

/* A readable file, or the reason in err: OpenSSL's own message for a missing file is
 * "system library", which does not help an operator. */
static bool file_readable(const char *key, const char *path, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        set_err(err, err_size, "%s '%s': cannot open: %s", key, path, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* The certificate chain and its key; the names are the configuration keys, for errors. */
struct tls_files {
    const char *cert_key, *cert;
    const char *key_key, *key;
    const char *password_key, *password; /* "" none */
};

static bool load_certificate_and_key(SSL_CTX *ctx, const struct tls_files *f, char *err,
                                     size_t err_size)
{
    struct key_password kp = {.password = f->password};
    char why[160];
    bool ok;

    if (!file_readable(f->cert_key, f->cert, err, err_size) ||
        !file_readable(f->key_key, f->key, err, err_size))
        return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
        set_err(err, err_size, "%s '%s': %s", f->cert_key, f->cert,
                openssl_reason(why, sizeof(why)));
        return false;
    }
    SSL_CTX_set_default_passwd_cb(ctx, on_key_password);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &kp);
    ok = SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) == 1;
    /* kp lives on this stack: the context must not keep pointing at it. */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (!ok) {
        /* OpenSSL compares the key with the certificate as it loads it. */
        bool mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;

        openssl_reason(why, sizeof(why));
        if (mismatch)
            set_err(err, err_size, "%s '%s' does not match %s", f->key_key, f->key, f->cert_key);
        else if (kp.asked && f->password[0] == '\0')
            set_err(err, err_size, "%s '%s' is encrypted and %s is not set", f->key_key, f->key,
                    f->password_key);
        else if (kp.asked)
            set_err(err, err_size, "%s '%s': cannot decrypt it with %s: %s", f->key_key, f->key,
                    f->password_key, why);
        else
            set_err(err, err_size, "%s '%s': %s", f->key_key, f->key, why);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        set_err(err, err_size, "%s '%s' does not match %s", f->key_key, f->key, f->cert_key);
        return false;
    }
    return true;
}

static bool load_peer_verification(SSL_CTX *ctx, const struct config *cfg, char *err,
                                   size_t err_size)
{
    STACK_OF(X509_NAME) * names;
    char why[160];
    int mode = SSL_VERIFY_NONE;

    if (cfg->ssl_cacertfile[0] != '\0') {
        if (!file_readable("ssl_options.cacertfile", cfg->ssl_cacertfile, err, err_size))
            return false;
        if (SSL_CTX_load_verify_locations(ctx, cfg->ssl_cacertfile, NULL) != 1) {
            set_err(err, err_size, "ssl_options.cacertfile '%s': %s", cfg->ssl_cacertfile,
                    openssl_reason(why, sizeof(why)));
            return false;
        }
        /* The certificate request names the CAs, so that a client holding several
         * certificates can pick one these CAs signed. */
        names = SSL_load_client_CA_file(cfg->ssl_cacertfile);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    if (cfg->ssl_verify_peer) {
        if (cfg->ssl_cacertfile[0] == '\0') {
            set_err(err, err_size, "ssl_options.verify = verify_peer needs ssl_options.cacertfile");
            return false;
        }
        mode = SSL_VERIFY_PEER;
        if (cfg->ssl_fail_if_no_peer_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return true;
}

static int openssl_version(uint8_t v)
{
    switch (v) {
    case CONFIG_TLS_V1:
        return TLS1_VERSION;
    case CONFIG_TLS_V1_1:
        return TLS1_1_VERSION;
    case CONFIG_TLS_V1_2:
        return TLS1_2_VERSION;
    case CONFIG_TLS_V1_3:
        return TLS1_3_VERSION;
    }
    return 0;
}

/* OpenSSL takes a range of versions; a gap inside it (tlsv1.3 and tlsv1.1 without
 * tlsv1.2) is cut out with the per-version options. */
static bool set_versions(SSL_CTX *ctx, const struct config *cfg, char *err, size_t err_size)
{
    static const struct {
        int version;
        uint64_t no_option;
        const char *name;
    } all[] = {
        {TLS1_VERSION, SSL_OP_NO_TLSv1, "tlsv1"},
        {TLS1_1_VERSION, SSL_OP_NO_TLSv1_1, "tlsv1.1"},
        {TLS1_2_VERSION, SSL_OP_NO_TLSv1_2, "tlsv1.2"},
        {TLS1_3_VERSION, SSL_OP_NO_TLSv1_3, "tlsv1.3"},
    };
    bool on[4] = {false};
    int lo = -1, hi = -1;

    for (size_t i = 0; i < cfg->ssl_version_count; i++) {
        int v = openssl_version(cfg->ssl_versions[i]);

        for (int j = 0; j < 4; j++) {
            if (all[j].version == v)
                on[j] = true;
        }
    }
    for (int j = 0; j < 4; j++) {
        if (!on[j])
            continue;
        if (lo < 0)
            lo = j;
        hi = j;
    }
    if (lo < 0) {
        set_err(err, err_size, "ssl_options.versions: no TLS version enabled");
        return false;
    }
    if (SSL_CTX_set_min_proto_version(ctx, all[lo].version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, all[hi].version) != 1) {
        char why[160];

        set_err(err, err_size, "ssl_options.versions: %s", openssl_reason(why, sizeof(why)));
        return false;
    }
    for (int j = lo; j <= hi; j++) {
        if (!on[j])
            SSL_CTX_set_options(ctx, all[j].no_option);
    }
    if (lo <= 1) {
        /* OpenSSL 3 rates the MD5+SHA-1 signatures of TLS 1.0 and 1.1 below security level
         * 1, so asking for those versions means level 0. */
        SSL_CTX_set_security_level(ctx, 0);
        log_warn(NULL,
                 "ssl_options.versions enables %s: insecure (RFC 8996 deprecates TLS 1.0 and "
                 "1.1), and the TLS security level drops to 0; use tlsv1.2 and tlsv1.3",
                 on[0] && on[1] ? "tlsv1 and tlsv1.1" : all[lo].name);
    }
    return true;
}

/* Every cipher this OpenSSL knows, TLS 1.3 suites included, to look configured names up. */
static SSL_CTX *cipher_catalogue(void)
{
    SSL_CTX *all = SSL_CTX_new(TLS_server_method());

    if (all == NULL)
        return NULL;
    if (SSL_CTX_set_cipher_list(all, "ALL:COMPLEMENTOFALL:@SECLEVEL=0") != 1 ||
        SSL_CTX_set_ciphersuites(all, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:"
                                      "TLS_AES_128_CCM_8_SHA256") != 1) {
        SSL_CTX_free(all);
        return NULL;
    }
    return all;
}

/* Appends name to list (":"-separated); false if it does not fit. */
static bool list_append(char *list, size_t size, const char *name)
{
    size_t len = strlen(list);
    int n = snprintf(list + len, size - len, "%s%s", len > 0 ? ":" : "", name);

    return n >= 0 && (size_t)n < size - len;
}

/* ssl_options.ciphers names TLS 1.3 suites and TLS 1.2 ciphers in one list, as RabbitMQ's
 * does, by OpenSSL name or by IANA name (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, what
 * Erlang also takes). OpenSSL keeps the two kinds apart, so the list is split; a kind the
 * list does not mention keeps OpenSSL's defaults, so that a list written before TLS 1.3
 * does not turn TLS 1.3 off. */
static bool set_ciphers(SSL_CTX *ctx, const struct config *cfg, char *err, size_t err_size)
{
    char tls12[CONFIG_MAX_TLS_CIPHERS * 64] = "", tls13[CONFIG_MAX_TLS_CIPHERS * 64] = "";
    STACK_OF(SSL_CIPHER) * known;
    SSL_CTX *all;
    char why[160];
    bool ok = true;

    if (cfg->ssl_cipher_count == 0)
        return true;
    if ((all = cipher_catalogue()) == NULL) {
        set_err(err, err_size, "ssl_options.ciphers: %s", openssl_reason(why, sizeof(why)));
        return false;
    }
    known = SSL_CTX_get_ciphers(all);
    for (size_t i = 0; ok && i < cfg->ssl_cipher_count; i++) {
        const char *name = cfg->ssl_ciphers[i];
        const SSL_CIPHER *found = NULL;

        for (int j = 0; found == NULL && j < sk_SSL_CIPHER_num(known); j++) {
            const SSL_CIPHER *c = sk_SSL_CIPHER_value(known, j);
            const char *iana = SSL_CIPHER_standard_name(c);

            if (strcmp(SSL_CIPHER_get_name(c), name) == 0 ||
                (iana != NULL && strcmp(iana, name) == 0))
                found = c;
        }
        if (found == NULL) {
            set_err(err, err_size, "ssl_options.ciphers: unknown cipher '%s'", name);
            ok = false;
        } else if (strcmp(SSL_CIPHER_get_version(found), "TLSv1.3") == 0) {
            ok = list_append(tls13, sizeof(tls13), SSL_CIPHER_get_name(found));
        } else {
            ok = list_append(tls12, sizeof(tls12), SSL_CIPHER_get_name(found));
        }
    }
    SSL_CTX_free(all);
    if (!ok)
        return false;
    if ((tls12[0] != '\0' && SSL_CTX_set_cipher_list(ctx, tls12) != 1) ||
        (tls13[0] != '\0' && SSL_CTX_set_ciphersuites(ctx, tls13) != 1)) {
        set_err(err, err_size, "ssl_options.ciphers: %s", openssl_reason(why, sizeof(why)));
        return false;
    }
    return true;
}

static SSL_CTX *context_new(const struct config *cfg, char *err, size_t err_size)
{
    /* The session id context lets TLS 1.2 clients resume sessions when client certificates
     * are verified; without one OpenSSL refuses such resumptions. */
    static const unsigned char session_context[] = "warren";
    const struct tls_files files = {
        .cert_key = "ssl_options.certfile",
        .cert = cfg->ssl_certfile,
        .key_key = "ssl_options.keyfile",
        .key = cfg->ssl_keyfile,
        .password_key = "ssl_options.password",
        .password = cfg->ssl_password,
    };
    SSL_CTX *ctx;
    char why[160];

    if (err_size > 0)
        err[0] = '\0';
    ERR_clear_error();
    if (cfg->ssl_certfile[0] == '\0' || cfg->ssl_keyfile[0] == '\0') {
        set_err(err, err_size, "TLS needs ssl_options.certfile and ssl_options.keyfile");
        return NULL;
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        set_err(err, err_size, "cannot create a TLS context: %s", openssl_reason(why, sizeof(why)));
        return NULL;
    }
    if (!set_versions(ctx, cfg, err, err_size) || !set_ciphers(ctx, cfg, err, err_size) ||
        !load_certificate_and_key(ctx, &files, err, err_size) ||
        !load_peer_verification(ctx, cfg, err, err_size)) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                            (cfg->ssl_honor_cipher_order ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* Clients often close the socket without close_notify; AMQP frames carry their own
     * lengths, so a cut stream is seen by the framing and a bare EOF is a plain close. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    /* Partial writes let a connection flush what the socket takes and go on; an output
     * buffer that grows (moves) between retries is allowed; idle connections give their
     * record buffers back, which matters with thousands of them. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1);
    SSL_CTX_set_dh_auto(ctx, 1);
    return ctx;
}

struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t err_size)
{
    SSL_CTX *ctx = context_new(cfg, err, err_size);
    struct tls_server *s;

    if (ctx == NULL)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    return s;
}

int tls_server_reload(struct tls_server *s, const struct config *cfg, char *err, size_t err_size)
{
    SSL_CTX *ctx = context_new(cfg, err, err_size);

    if (ctx == NULL)
        return -1;
    SSL_CTX_free(s->ctx); /* sessions still using it hold their own references */
    s->ctx = ctx;
    return 0;
}

void tls_server_free(struct tls_server *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    free(s);
}

/* ---- Mutual TLS between peers ------------------------------------------------------------ */

struct tls_server *tls_mutual_new(const char *prefix, const char *certfile, const char *keyfile,
                                  const char *cafile, char *err, size_t err_size)
{
    char cert_key[96], key_key[96], ca_key[96], why[160];
    const struct tls_files files = {
        .cert_key = cert_key,
        .cert = certfile,
        .key_key = key_key,
        .key = keyfile,
        .password_key = "",
        .password = "",
    };
    SSL_CTX *ctx;
    struct tls_server *s;

    if (err_size > 0)
        err[0] = '\0';
    snprintf(cert_key, sizeof(cert_key), "%s.cert", prefix);
    snprintf(key_key, sizeof(key_key), "%s.key", prefix);
    snprintf(ca_key, sizeof(ca_key), "%s.ca", prefix);
    if (certfile[0] == '\0' || keyfile[0] == '\0' || cafile[0] == '\0') {
        set_err(err, err_size, "TLS between nodes needs %s, %s and %s together", cert_key, key_key,
                ca_key);
        return NULL;
    }
    ERR_clear_error();
    /* One context for both ends: a node accepts peers (as leader) and connects to one (as
     * follower) with the same certificate. */
    if ((ctx = SSL_CTX_new(TLS_method())) == NULL) {
        set_err(err, err_size, "cannot create a TLS context: %s", openssl_reason(why, sizeof(why)));
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        !load_certificate_and_key(ctx, &files, err, err_size) ||
        !file_readable(ca_key, cafile, err, err_size)) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        set_err(err, err_size, "%s '%s': %s", ca_key, cafile, openssl_reason(why, sizeof(why)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Both ends verify the other's chain against the CA, and a peer must present one. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* As in context_new(): partial writes, moving write buffers. Peers carry lengths in
     * their own frames, so a bare end of file is a plain close. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    s = xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    return s;
}

/* ---- Sessions ---------------------------------------------------------------------------- */

static struct tls_conn *conn_new(struct tls_server *s, int fd, bool client)
{
    struct tls_conn *t = xcalloc(1, sizeof(*t));

    ERR_clear_error();
    /* Both fail only when memory is exhausted (SSL_set_fd: for its socket BIO, which does
     * not close the fd when freed). */
    if ((t->ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        log_error(NULL, "out of memory for a TLS session");
        abort();
    }
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    return t;
}

struct tls_conn *tls_conn_new(struct tls_server *s, int fd)
{
    return conn_new(s, fd, false);
}

struct tls_conn *tls_conn_new_client(struct tls_server *s, int fd)
{
    return conn_new(s, fd, true);
}

void tls_conn_free(struct tls_conn *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* Turns the failure of an SSL call into -1 with errno, or 0 for the end of the stream. */
static int fail_with(struct tls_conn *t, int rc, int saved_errno)
{
    int code = SSL_get_error(t->ssl, rc);
    const char *stage = SSL_is_init_finished(t->ssl) ? "TLS error" : "TLS handshake failed";
    char why[160];
    long verify;

    switch (code) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        t->want_write = code == SSL_ERROR_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (!SSL_is_init_finished(t->ssl))
            snprintf(t->error, sizeof(t->error), "%s: the peer closed the connection", stage);
        return 0;
    case SSL_ERROR_SYSCALL:
        t->failed = true;
        ERR_clear_error();
        if (saved_errno == 0) {
            /* End of file where OpenSSL still expected handshake bytes. */
            snprintf(t->error, sizeof(t->error), "%s: the peer closed the connection", stage);
            return 0;
        }
        snprintf(t->error, sizeof(t->error), "%s", strerror(saved_errno));
        errno = saved_errno;
        return -1;
    default:
        t->failed = true;
        openssl_reason(why, sizeof(why));
        verify = SSL_get_verify_result(t->ssl);
        if (verify != X509_V_OK)
            snprintf(t->error, sizeof(t->error), "%s: %s: %s", stage, why,
                     X509_verify_cert_error_string(verify));
        else
            snprintf(t->error, sizeof(t->error), "%s: %s", stage, why);
        errno = EPROTO;
        return -1;
    }
}

/* Reads records until buf is full or the socket has nothing more: one call per readable
 * event takes in as much as a plain read() would, not one 16 KB record. */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t n)
{
    size_t total = 0;

    if (t->deferred != 0) {
        int d = t->deferred;

        t->deferred = 0;
        if (d < 0)
            return 0;
        errno = d;
        return -1;
    }
    t->error[0] = '\0';
    while (total < n) {
        size_t got = 0;
        int rc, r;

        ERR_clear_error();
        errno = 0;
        rc = SSL_read_ex(t->ssl, (char *)buf + total, n - total, &got);
        if (rc == 1) {
            total += got;
            continue;
        }
        r = fail_with(t, rc, errno);
        if (total == 0)
            return r;
        /* Bytes first; what stopped the loop is reported by the next call. */
        if (r == 0)
            t->deferred = -1;
        else if (errno != EAGAIN)
            t->deferred = errno;
        break;
    }
    return (ssize_t)total;
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t n)
{
    size_t total = 0;

    t->error[0] = '\0';
    while (total < n) {
        size_t put = 0;
        int rc, r;

        ERR_clear_error();
        errno = 0;
        rc = SSL_write_ex(t->ssl, (const char *)buf + total, n - total, &put);
        if (rc == 1) {
            total += put;
            continue;
        }
        r = fail_with(t, rc, errno);
        if (r == 0) {
            /* close_notify while writing: the peer is gone for writes too. */
            snprintf(t->error, sizeof(t->error), "the peer closed the TLS session");
            errno = EPIPE;
            r = -1;
        }
        /* What was written is reported now; a lasting failure comes back on the next call,
         * and OpenSSL expects the EAGAIN-ed bytes again there (tls.h). */
        return total > 0 ? (ssize_t)total : r;
    }
    return (ssize_t)total;
}

bool tls_conn_want_write(const struct tls_conn *t)
{
    return t->want_write;
}

bool tls_conn_pending(const struct tls_conn *t)
{
    return SSL_has_pending(t->ssl) == 1 || t->deferred != 0;
}

int tls_conn_shutdown(struct tls_conn *t)
{
    int rc;

    if (t->failed || !SSL_is_init_finished(t->ssl))
        return -1;
    ERR_clear_error();
    /* 0 means ours went out and the peer's has not come: no need to wait for it. */
    rc = SSL_shutdown(t->ssl);
    ERR_clear_error();
    return rc >= 0 ? 0 : -1;
}

bool tls_conn_established(const struct tls_conn *t)
{
    return SSL_is_init_finished(t->ssl) == 1;
}

const char *tls_conn_error(const struct tls_conn *t)
{
    return t->error;
}

const char *tls_conn_protocol(const struct tls_conn *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
    const char *name = SSL_is_init_finished(t->ssl) ? SSL_get_cipher_name(t->ssl) : NULL;

    return name != NULL ? name : "";
}

/* ---- Peer identity ------------------------------------------------------------------------ */

/* A bounded string being written; full once anything did not fit. */
struct out {
    char *buf;
    size_t size, len;
    bool full;
};

static void out_bytes(struct out *o, const void *p, size_t n)
{
    if (o->full || n >= o->size - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

/* RabbitMQ's names for attribute types; any other type is written as its dotted OID
 * (street, postalCode, dnQualifier... included, as RabbitMQ does). */
static const struct {
    int nid;
    const char *name;
} attribute_names[] = {
    {NID_commonName, "CN"},
    {NID_surname, "SN"},
    {NID_givenName, "GIVENNAME"},
    {NID_initials, "INITIALS"},
    {NID_generationQualifier, "GENERATIONQUALIFIER"},
    {NID_localityName, "L"},
    {NID_stateOrProvinceName, "ST"},
    {NID_organizationName, "O"},
    {NID_organizationalUnitName, "OU"},
    {NID_title, "TITLE"},
    {NID_countryName, "C"},
    {NID_serialNumber, "SERIALNUMBER"},
    {NID_pseudonym, "PSEUDONYM"},
    {NID_domainComponent, "DC"},
    {NID_pkcs9_emailAddress, "EMAILADDRESS"},
    {NID_userId, "UID"},
};

static void out_attribute_type(struct out *o, const ASN1_OBJECT *type)
{
    int nid = OBJ_obj2nid(type);
    char oid[128];

    for (size_t i = 0; i < ARRAY_LEN(attribute_names); i++) {
        if (attribute_names[i].nid == nid) {
            out_str(o, attribute_names[i].name);
            return;
        }
    }
    if (OBJ_obj2txt(oid, sizeof(oid), type, 1) <= 0) {
        o->full = true; /* an OID too long to write: no name rather than a wrong one */
        return;
    }
    out_str(o, oid);
}

/* The value as UTF-8 (every directory string type converted); NULL for other types, which
 * are rare in subjects. Free with OPENSSL_free. */
static unsigned char *value_utf8(const ASN1_STRING *value, int *len)
{
    unsigned char *utf8 = NULL;

    *len = ASN1_STRING_to_UTF8(&utf8, value);
    return *len >= 0 ? utf8 : NULL;
}

/* RFC 4514 escaping, RabbitMQ's way: a backslash before a leading space or '#', a trailing
 * space and each of , + " \ < > ; and \XX for every byte below 32 or from 126 up (so the
 * bytes of UTF-8 text too). */
static void out_escaped(struct out *o, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        bool special = strchr(",+\"\\<>;", ch) != NULL && ch != '\0';

        if ((i == 0 && (ch == ' ' || ch == '#')) || (i + 1 == n && ch == ' ') || special) {
            char esc[2] = {'\\', (char)ch};

            out_bytes(o, esc, 2);
        } else if (ch < 32 || ch >= 126) {
            char esc[3] = {'\\', hex[ch >> 4], hex[ch & 15]};

            out_bytes(o, esc, 3);
        } else {
            out_bytes(o, &ch, 1);
        }
    }
}

/* A value that is not a directory string: RFC 4514's '#' and the hex of its DER encoding
 * (RabbitMQ writes an Erlang term there; no real client certificate has one). */
static void out_der_hex(struct out *o, const ASN1_STRING *value)
{
    static const char hex[] = "0123456789ABCDEF";
    ASN1_TYPE *any = ASN1_TYPE_new();
    unsigned char *der = NULL;
    int len = -1;

    if (any != NULL && ASN1_TYPE_set1(any, ASN1_STRING_type(value), value) == 1)
        len = i2d_ASN1_TYPE(any, &der);
    ASN1_TYPE_free(any);
    if (len < 0) {
        o->full = true;
        return;
    }
    out_str(o, "#");
    for (int i = 0; i < len; i++) {
        char pair[2] = {hex[der[i] >> 4], hex[der[i] & 15]};

        out_bytes(o, pair, 2);
    }
    OPENSSL_free(der);
}

static void out_entry(struct out *o, const X509_NAME_ENTRY *e)
{
    const ASN1_STRING *value = X509_NAME_ENTRY_get_data(e);
    unsigned char *utf8;
    int len;

    out_attribute_type(o, X509_NAME_ENTRY_get_object(e));
    out_str(o, "=");
    if ((utf8 = value_utf8(value, &len)) != NULL) {
        out_escaped(o, utf8, (size_t)len);
        OPENSSL_free(utf8);
    } else {
        out_der_hex(o, value);
    }
}

/* RDNs from the last to the first; the entries of one multi-valued RDN (same set number,
 * adjacent) in certificate order, joined by '+'. */
static void out_distinguished_name(struct out *o, const X509_NAME *name)
{
    int count = X509_NAME_entry_count(name);
    int end = count; /* one past the RDN being written */

    while (end > 0) {
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, end - 1));
        int start = end - 1;

        while (start > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start - 1)) == set)
            start--;
        if (end < count)
            out_str(o, ",");
        for (int i = start; i < end; i++) {
            if (i > start)
                out_str(o, "+");
            out_entry(o, X509_NAME_get_entry(name, i));
        }
        end = start;
    }
}

static void out_common_names(struct out *o, const X509_NAME *name)
{
    int i = -1;
    bool any = false;

    while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
        const ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        unsigned char *utf8;
        int len;

        if (any)
            out_str(o, ",");
        any = true;
        if ((utf8 = value_utf8(value, &len)) == NULL) {
            o->full = true; /* a CN that is no string names nobody */
            return;
        }
        out_bytes(o, utf8, (size_t)len);
        OPENSSL_free(utf8);
    }
    if (!any)
        o->full = true;
}

bool tls_conn_peer_identity(const struct tls_conn *t, enum config_cert_login from, char *out,
                            size_t n)
{
    struct out o = {.buf = out, .size = n};
    X509 *cert;

    if (n == 0)
        return false;
    out[0] = '\0';
    if (!SSL_is_init_finished(t->ssl) || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return false;
        /* The result above is X509_V_OK when no certificate was asked for or sent, too. */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    cert = SSL_get1_peer_certificate(t->ssl);
#else
    cert = SSL_get_peer_certificate(t->ssl);
#endif
    if (cert == NULL)
        return false;
    if (from == CONFIG_CERT_LOGIN_CN)
        out_common_names(&o, X509_get_subject_name(cert));
    else
        out_distinguished_name(&o, X509_get_subject_name(cert));
    X509_free(cert);
    if (o.full) {
        out[0] = '\0';
        return false;
    }
    return true;
}
