/* The transport of a replication connection (src/cluster/repl_link.h). */
#include "src/cluster/repl_link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/security/tls.h"

void repl_link_init(struct repl_link *k, int fd, struct tls_server *tls, bool client)
{
    *k = (struct repl_link){.fd = fd};
    if (tls != NULL)
        k->tls = client ? tls_conn_new_client(tls, fd) : tls_conn_new(tls, fd);
}

ssize_t repl_link_read(struct repl_link *k, void *buf, size_t n)
{
    ssize_t r;

    k->read_waits_write = false;
    if (k->tls == NULL) {
        do
            r = read(k->fd, buf, n);
        while (r < 0 && errno == EINTR);
        return r;
    }
    r = tls_conn_read(k->tls, buf, n);
    if (r < 0 && errno == EAGAIN)
        k->read_waits_write = tls_conn_want_write(k->tls);
    return r;
}

ssize_t repl_link_write(struct repl_link *k, const void *buf, size_t n)
{
    ssize_t r;

    k->write_waits_read = false;
    if (k->tls == NULL) {
        do
            r = send(k->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EWOULDBLOCK)
            errno = EAGAIN;
        return r;
    }
    r = tls_conn_write(k->tls, buf, n);
    if (r < 0 && errno == EAGAIN)
        k->write_waits_read = !tls_conn_want_write(k->tls);
    return r;
}

bool repl_link_pending(const struct repl_link *k)
{
    return k->tls != NULL && tls_conn_pending(k->tls);
}

bool repl_link_wants_writable(const struct repl_link *k, bool out_pending)
{
    return (out_pending && !k->write_waits_read) || k->read_waits_write;
}

const char *repl_link_error(const struct repl_link *k, int err)
{
    if (k->tls != NULL && tls_conn_error(k->tls)[0] != '\0')
        return tls_conn_error(k->tls);
    return err == 0 ? "connection closed" : strerror(err);
}

bool repl_link_established(const struct repl_link *k)
{
    return k->tls == NULL || tls_conn_established(k->tls);
}

bool repl_link_looks_like_tls(const uint8_t *p, size_t n)
{
    /* A record: content type 21 (alert) or 22 (handshake), then version 3.x. */
    return n >= 2 && (p[0] == 21 || p[0] == 22) && p[1] == 3;
}

void repl_link_close(struct repl_link *k)
{
    if (k->tls != NULL) {
        tls_conn_shutdown(k->tls);
        tls_conn_free(k->tls);
        k->tls = NULL;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

int repl_warn_level(struct repl_warn_limit *w, const char *reason, uint64_t now_ms, char *more,
                    size_t more_size)
{
    more[0] = '\0';
    if (strncmp(w->reason, reason, sizeof(w->reason) - 1) == 0 && w->warned_ms != 0 &&
        now_ms - w->warned_ms < REPL_WARN_EVERY_MS) {
        w->held++;
        return LOG_LEVEL_DEBUG;
    }
    if (w->held > 0)
        snprintf(more, more_size, " (%u more since the last warning)", w->held);
    snprintf(w->reason, sizeof(w->reason), "%s", reason);
    w->warned_ms = now_ms;
    w->held = 0;
    return LOG_LEVEL_WARNING;
}
