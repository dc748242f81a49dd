/* The transport of a replication connection: plain TCP, or TLS over it (cluster.tls.*,
 * src/security/tls.h), read and written the way read(2) and send(2) are on a non-blocking
 * socket, so that the leader and the follower drive both the same way from libev:
 *
 *   readable  n = repl_link_read(): > 0 bytes; 0 the peer closed; -1 with errno EAGAIN
 *             (nothing now) or the failure (EPROTO for TLS: repl_link_error() says why).
 *             Afterwards: if repl_link_pending(), more waits inside TLS where the socket's
 *             readiness cannot show it: read again before waiting. If the last write waits
 *             for readability (write_waits_read, a TLS handshake), write again now.
 *   write     n = repl_link_write() on the front of the unsent bytes: a count (possibly
 *             partial) or -1 as above. After EAGAIN the next write must offer the same bytes
 *             again, at least as many (the front of a growing buffer does; it may move).
 *   watchers  the write watcher is wanted while repl_link_wants_writable() says so.
 *
 * Nothing here owns more than the socket and its TLS session (repl_link_close frees both). */
#ifndef WARREN_SRC_CLUSTER_REPL_LINK_H
#define WARREN_SRC_CLUSTER_REPL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tls_server;
struct tls_conn;

struct repl_link {
    int fd;                /* -1: closed */
    struct tls_conn *tls;  /* NULL: plain TCP */
    bool write_waits_read; /* the last write's EAGAIN waits for readability (handshake) */
    bool read_waits_write; /* the last read's EAGAIN waits for writability */
};

/* Takes fd (connected or accepted, non-blocking); with tls (NULL: plain TCP) a TLS session
 * over it, the connecting end if client. */
void repl_link_init(struct repl_link *k, int fd, struct tls_server *tls, bool client);

ssize_t repl_link_read(struct repl_link *k, void *buf, size_t n);
ssize_t repl_link_write(struct repl_link *k, const void *buf, size_t n);
bool repl_link_pending(const struct repl_link *k);

/* Whether the socket's writability is awaited: out_pending bytes wait and the last write did
 * not wait for readability instead, or a read waits for it. */
bool repl_link_wants_writable(const struct repl_link *k, bool out_pending);

/* Why the last call failed, for a log line: TLS's words when TLS failed ("TLS handshake
 * failed: certificate verify failed: unable to get local issuer certificate"), else
 * strerror(err), or "connection closed" for err 0. */
const char *repl_link_error(const struct repl_link *k, int err);

/* Whether the TLS handshake is done (true on plain TCP). */
bool repl_link_established(const struct repl_link *k);

/* Whether bytes a peer sent first look like TLS (a handshake or alert record of TLS 1.x):
 * a plain end met a TLS one, which deserves a clearer log line than a bad frame. */
bool repl_link_looks_like_tls(const uint8_t *p, size_t n);

/* A refused link repeats while the configuration disagrees (a follower retries every
 * 100 ms): its warning is written once per REPL_WARN_EVERY_MS for one reason, and the
 * repeats in between at the debug level. */
#define REPL_WARN_EVERY_MS 10000

struct repl_warn_limit {
    char reason[160]; /* the last reason warned about */
    uint64_t warned_ms;
    unsigned held; /* repeats of it since, at the debug level */
};

/* The level for a warning about reason at now_ms: LOG_LEVEL_WARNING if it is new or its
 * last warning is REPL_WARN_EVERY_MS old, else LOG_LEVEL_DEBUG. With a warning, more gets
 * " (N more since the last warning)" when repeats were held back, else "". */
int repl_warn_level(struct repl_warn_limit *w, const char *reason, uint64_t now_ms, char *more,
                    size_t more_size);

/* A best-effort TLS close_notify, then the session freed and the socket closed. */
void repl_link_close(struct repl_link *k);

#endif
