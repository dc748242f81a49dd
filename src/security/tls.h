/* TLS (AMQPS) through OpenSSL, as a transport under a connection: a server context built
 * from the ssl_options.* keys, and per connection a TLS session over a non-blocking socket
 * that reads and writes the way read(2) and write(2) do. Nothing here blocks, and nothing
 * here owns the socket: the connection keeps its fd, its watchers and its timers.
 *
 * How a libev connection (level-triggered watchers) drives a struct tls_conn:
 *
 *   accept    t = tls_conn_new(server, fd), then start the read watcher: the handshake runs
 *             inside the first reads (the client speaks first), so nothing else is needed.
 *             Until tls_conn_established(t), arm the connection's timer with
 *             cfg->ssl_handshake_timeout_ms; afterwards handshake_timeout runs as on TCP.
 *   readable  n = tls_conn_read(t, buf, cap)
 *               n > 0       plaintext. If n == cap and tls_conn_pending(t), more is already
 *                           inside OpenSSL, where the socket's readiness cannot show it: read
 *                           again (or ev_feed_event() the read watcher) before waiting.
 *               n == 0      the peer closed (close_notify, or the socket's end of file).
 *               -1, EAGAIN  nothing now. If tls_conn_want_write(t), TLS has to send before it
 *                           can read on (a handshake message or a TLS 1.3 ticket stuck behind
 *                           a full socket): start the write watcher and call tls_conn_read
 *                           again when it fires. Otherwise wait for readability, as usual.
 *               -1, other   the connection is lost: EPROTO for a TLS failure (a refused
 *                           certificate, an unsupported version, bytes that are not TLS),
 *                           the socket's errno (ECONNRESET...) otherwise. tls_conn_error(t)
 *                           says why, for the log; close without tls_conn_shutdown.
 *   flush     n = tls_conn_write(t, out + sent, pending), with the same results except 0.
 *             Writes may be partial (n < pending). After -1/EAGAIN the next call must pass
 *             the same unsent bytes again, at least as many: a buffer that moved or grew
 *             meanwhile is fine (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), which the front of
 *             the connection's output buffer always satisfies. It waits for writability if
 *             tls_conn_want_write(t), else for readability (only while the handshake runs).
 *   close     tls_conn_shutdown(t) (a best-effort close_notify), tls_conn_free(t), close(fd).
 *
 * Renegotiation is refused (it is gone from TLS 1.3 and a denial-of-service lever in 1.2),
 * so once established a read never needs the socket writable except for TLS 1.3 tickets. */
#ifndef WARREN_SRC_SECURITY_TLS_H
#define WARREN_SRC_SECURITY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "src/base/config.h"

struct tls_server;
struct tls_conn;

/* The TLS context of cfg's ssl_options.*: certificate chain and key (decrypted with
 * ssl_options.password), CAs and peer verification, versions, ciphers and their order.
 * Returns NULL with the reason in err on failure, naming the key and file and OpenSSL's
 * words: "ssl_options.certfile '/etc/w/cert.pem': cannot open: No such file or directory",
 * "ssl_options.keyfile '/etc/w/key.pem' does not match ssl_options.certfile",
 * "ssl_options.ciphers: unknown cipher 'AES1024-SHA'". tlsv1.1 and tlsv1 in
 * ssl_options.versions are honoured (OpenSSL 3 needs security level 0 for their SHA-1
 * signatures) and logged as warnings. cfg is read here and not kept. */
struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t err_size);

/* Builds a context from cfg as tls_server_new() does and, if that works, makes it the one
 * new connections get (SIGHUP after a certificate renewal); connections already made keep
 * the context they started with until they close. Returns 0, or -1 with the reason in err
 * and the current context unchanged. */
int tls_server_reload(struct tls_server *s, const struct config *cfg, char *err, size_t err_size);

/* Connections made from s may outlive it: each holds a reference to its context. */
void tls_server_free(struct tls_server *s);

/* A context for TLS between the nodes of a cluster, both ways (mutual TLS): this node's
 * certificate chain and key (PEM, not encrypted) are presented whether it accepts or
 * connects, and the peer's certificate must chain to cafile, whichever end it is. Only the
 * chain is verified, not a host name: any certificate the (private) CA signed is a peer.
 * TLS 1.2 and up. prefix names the keys in errors: with "cluster.tls", "cluster.tls.cert
 * '/etc/w/node.pem': cannot open: No such file or directory". NULL with the reason in err
 * when a file is missing, unreadable or wrong, or one of the three is "". Free with
 * tls_server_free(). */
struct tls_server *tls_mutual_new(const char *prefix, const char *certfile, const char *keyfile,
                                  const char *cafile, char *err, size_t err_size);

/* A server-side TLS session on fd, an accepted non-blocking socket the caller keeps owning
 * (tls_conn_free does not close it). Aborts when memory is exhausted, as xmalloc does. */
struct tls_conn *tls_conn_new(struct tls_server *s, int fd);
/* The same for the connecting end (a context from tls_mutual_new()): the handshake starts
 * with the first tls_conn_write() or tls_conn_read(), as the writes' -1/EAGAIN with
 * tls_conn_want_write() false says (wait for readability, then write the same bytes again). */
struct tls_conn *tls_conn_new_client(struct tls_server *s, int fd);
void tls_conn_free(struct tls_conn *t);

/* See the top of this file for results and errno. n > 0. */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t n);
ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t n);

/* Whether the last call that returned -1/EAGAIN waits for the socket to become writable
 * (else readable). */
bool tls_conn_want_write(const struct tls_conn *t);

/* Whether bytes already taken from the socket wait inside OpenSSL (decrypted or not). */
bool tls_conn_pending(const struct tls_conn *t);

/* Sends close_notify once, if the session is established and has not failed; does not
 * wait for the peer's. Returns 0 if it went out, -1 if the socket did not take it (the
 * caller closes anyway: this is best effort). */
int tls_conn_shutdown(struct tls_conn *t);

bool tls_conn_established(const struct tls_conn *t);

/* Why the last call failed ("" if none): "TLS handshake failed: certificate verify failed:
 * unable to get local issuer certificate", "TLS handshake failed: peer did not return a
 * certificate", "TLS handshake failed: unsupported protocol", "Connection reset by peer". */
const char *tls_conn_error(const struct tls_conn *t);

/* The user name SASL EXTERNAL takes from a verified client certificate, as RabbitMQ's
 * rabbitmq_auth_mechanism_ssl derives it (ssl_cert_login_from):
 *   CONFIG_CERT_LOGIN_DN  the subject in RabbitMQ's RFC 4514 style: RDNs from last to first
 *                         joined by ',', the values of a multi-valued RDN in certificate
 *                         order joined by '+', types named CN, O, OU, L, ST, C, DC, UID,
 *                         EMAILADDRESS, SERIALNUMBER, TITLE, SN, GIVENNAME, INITIALS,
 *                         PSEUDONYM, GENERATIONQUALIFIER or else by dotted OID, values with
 *                         , + " \ < > ; and a leading space or '#' and a trailing space
 *                         escaped by '\', other bytes below 32 or from 126 up as \XX:
 *                         "CN=warren-client,O=Warren Tests,C=GB".
 *   CONFIG_CERT_LOGIN_CN  every CN of the subject, in certificate order, unescaped, joined
 *                         by ',': "warren-client".
 * False, with out set to "", when there is no verified client certificate (verify_none,
 * or a client that sent none), it has no CN (common_name mode), or the name does not fit in
 * n bytes: a cut name must never authenticate anyone. */
bool tls_conn_peer_identity(const struct tls_conn *t, enum config_cert_login from, char *out,
                            size_t n);

/* The negotiated version and cipher as OpenSSL names them, e.g. "TLSv1.3" and
 * "TLS_AES_256_GCM_SHA384" ("" before the handshake ends), for logs and the management
 * API (which shows RabbitMQ's lower-case "tlsv1.3"). */
const char *tls_conn_protocol(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);

#endif
