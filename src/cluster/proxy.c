#include "src/cluster/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/proxy_header.h"

#define ADDRESS_TEXT_MAX 64 /* "[ffff:...:ffff]:65535" fits */

/* The bytes read from one side that wait to be written to the other: buf[start..end). */
struct pipe {
    uint8_t *buf; /* NULL while empty: an idle relay holds no buffer */
    size_t start, end;
    bool eof;  /* the side it reads from has shut down its writing half */
    bool shut; /* ... and that was passed on: the other side's writing half is shut down */
};

struct relay {
    struct proxy *p;
    enum proxy_kind kind;
    int client_fd, leader_fd;
    ev_io client_read, client_write, leader_read, leader_write;
    ev_timer connect_timer;
    bool connected;
    struct pipe up;              /* client -> leader */
    struct pipe down;            /* leader -> client */
    size_t header_left;          /* bytes of the PROXY header still at the front of up */
    bool sniffing;               /* HTTP: reading the request line before choosing */
    char peer[ADDRESS_TEXT_MAX]; /* the client, for log lines */
    struct relay *next, *prev;
};

struct proxy {
    struct ev_loop *loop;
    size_t buffer_bytes;
    uint32_t connect_timeout_ms;
    bool proxy_header;
    bool has_leader;
    /* The leader's port for each kind; leader_len 0 when it serves no such clients. */
    struct sockaddr_storage leader[PROXY_KINDS];
    socklen_t leader_len[PROXY_KINDS];
    char leader_text[PROXY_KINDS][ADDRESS_TEXT_MAX];
    struct relay *relays;
    struct proxy_stats stats;
    proxy_local_http_fn *local_http;
    void *local_ctx;
};

#define SNIFF_MAX 4096 /* a request line longer than this is relayed as it is */

static const char *const kind_names[PROXY_KINDS] = {"AMQP", "AMQPS", "HTTP"};

/* ---- Addresses ------------------------------------------------------------------------- */

/* "IP:port" or "[IPv6]:port", port 1..65535. */
static bool parse_address(const char *text, struct sockaddr_storage *out, socklen_t *out_len)
{
    char host[ADDRESS_TEXT_MAX];
    const char *colon = strrchr(text, ':'), *h = text;
    size_t host_len;
    char *end;
    unsigned long port;

    if (colon == NULL || strlen(text) >= ADDRESS_TEXT_MAX)
        return false;
    host_len = (size_t)(colon - text);
    if (text[0] == '[') {
        if (host_len < 2 || text[host_len - 1] != ']')
            return false;
        h = text + 1;
        host_len -= 2;
    }
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port == 0 || port > 65535)
        return false;
    memset(out, 0, sizeof *out);
    if (text[0] != '[') {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *out_len = sizeof *in;
        return inet_pton(AF_INET, host, &in->sin_addr) == 1;
    }
    {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof *in6;
        return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1;
    }
}

static void format_address(const struct sockaddr *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, size, "?");
    }
}

/* ---- Pipes ----------------------------------------------------------------------------- */

static size_t pipe_pending(const struct pipe *q)
{
    return q->end - q->start;
}

/* Reads what fd has into q, up to the proxy's bound. Returns the bytes read, 0 at the end
 * of the peer's stream, -1 on an error (errno set), -2 when fd has nothing now. */
static ssize_t pipe_fill(struct proxy *p, struct pipe *q, int fd)
{
    ssize_t n;

    if (q->buf == NULL)
        q->buf = xmalloc(p->buffer_bytes);
    if (q->end == p->buffer_bytes && q->start > 0) {
        memmove(q->buf, q->buf + q->start, pipe_pending(q));
        q->end -= q->start;
        q->start = 0;
    }
    if (q->end == p->buffer_bytes)
        return -2; /* full: the watcher is stopped until the other side takes some */
    do
        n = recv(fd, q->buf + q->end, p->buffer_bytes - q->end, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
    q->end += (size_t)n;
    p->stats.buffered_bytes += (uint64_t)n;
    if (pipe_pending(q) > p->stats.buffered_peak)
        p->stats.buffered_peak = pipe_pending(q);
    return n;
}

/* Writes what q holds to fd, as much as the socket takes; an emptied pipe gives back its
 * buffer. Returns the bytes written, or -1 on an error (errno set). */
static ssize_t pipe_drain(struct proxy *p, struct pipe *q, int fd)
{
    size_t done = 0;

    while (pipe_pending(q) > 0) {
        /* MSG_NOSIGNAL: a peer that is gone is an error to handle, not a SIGPIPE. */
        ssize_t n = send(fd, q->buf + q->start, pipe_pending(q), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return -1;
        q->start += (size_t)n;
        done += (size_t)n;
        p->stats.buffered_bytes -= (uint64_t)n;
    }
    if (pipe_pending(q) == 0) {
        free(q->buf);
        q->buf = NULL;
        q->start = q->end = 0;
    }
    return (ssize_t)done;
}

static void pipe_free(struct proxy *p, struct pipe *q)
{
    p->stats.buffered_bytes -= pipe_pending(q);
    free(q->buf);
    *q = (struct pipe){0};
}

/* ---- Relays ---------------------------------------------------------------------------- */

static void set_watching(struct ev_loop *loop, ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(loop, w);
}

/* A side is read while the pipe it fills has room: a full pipe is the backpressure. */
static void relay_watch(struct relay *r)
{
    struct ev_loop *loop = r->p->loop;
    size_t cap = r->p->buffer_bytes;

    set_watching(loop, &r->client_read, !r->up.eof && pipe_pending(&r->up) < cap);
    if (r->leader_fd < 0) {
        /* Sniffing an HTTP request, or answering it here: no leader socket. */
        set_watching(loop, &r->client_write, pipe_pending(&r->down) > 0);
        return;
    }
    set_watching(loop, &r->leader_write, !r->connected || pipe_pending(&r->up) > 0);
    set_watching(loop, &r->leader_read,
                 r->connected && !r->down.eof && pipe_pending(&r->down) < cap);
    set_watching(loop, &r->client_write, pipe_pending(&r->down) > 0);
}

static void relay_close(struct relay *r)
{
    struct proxy *p = r->p;

    ev_io_stop(p->loop, &r->client_read);
    ev_io_stop(p->loop, &r->client_write);
    ev_io_stop(p->loop, &r->leader_read);
    ev_io_stop(p->loop, &r->leader_write);
    ev_timer_stop(p->loop, &r->connect_timer);
    close(r->client_fd);
    if (r->leader_fd >= 0)
        close(r->leader_fd);
    pipe_free(p, &r->up);
    pipe_free(p, &r->down);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        p->relays = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    p->stats.relays--;
    free(r);
}

/* A socket error ends the relay: both sides are closed, whatever is buffered is lost (the
 * client's AMQP connection is gone either way). */
static void relay_fail(struct relay *r, const char *what, int err)
{
    log_debug(NULL, "proxy: %s client %s: %s %s; closing both sides", kind_names[r->kind], r->peer,
              what, strerror(err));
    relay_close(r);
}

static void connect_failed(struct relay *r, int err)
{
    log_warn(NULL, "proxy: cannot reach the leader at %s for %s client %s: %s; closing it",
             r->p->leader_text[r->kind], kind_names[r->kind], r->peer, strerror(err));
    r->p->stats.connect_failures++;
    relay_close(r);
}

/* Moves what the pipes hold, passes on a half-close once its pipe is empty, and closes the
 * relay once both directions are done. */
static void relay_move(struct relay *r)
{
    struct proxy *p = r->p;
    ssize_t n;

    if (r->connected) {
        if ((n = pipe_drain(p, &r->up, r->leader_fd)) < 0) {
            relay_fail(r, "writing to the leader:", errno);
            return;
        }
        /* The PROXY header is the proxy's, not the client's. */
        if ((size_t)n <= r->header_left) {
            r->header_left -= (size_t)n;
        } else {
            p->stats.bytes_to_leader += (uint64_t)n - r->header_left;
            r->header_left = 0;
        }
    }
    if ((n = pipe_drain(p, &r->down, r->client_fd)) < 0) {
        relay_fail(r, "writing to the client:", errno);
        return;
    }
    p->stats.bytes_to_client += (uint64_t)n;
    if (r->connected && r->up.eof && !r->up.shut && pipe_pending(&r->up) == 0) {
        shutdown(r->leader_fd, SHUT_WR);
        r->up.shut = true;
    }
    if (r->down.eof && !r->down.shut && pipe_pending(&r->down) == 0) {
        shutdown(r->client_fd, SHUT_WR);
        r->down.shut = true;
    }
    if (r->up.shut && r->down.shut) {
        log_debug(NULL, "proxy: %s client %s: both sides done", kind_names[r->kind], r->peer);
        relay_close(r);
        return;
    }
    relay_watch(r);
}

static void relay_connect(struct relay *r);
static void sniff(struct relay *r);

static void relay_read(struct relay *r, struct pipe *q, int fd, const char *what)
{
    ssize_t n = pipe_fill(r->p, q, fd);

    if (n == -1) {
        relay_fail(r, what, errno);
        return;
    }
    if (n == 0)
        q->eof = true;
    if (r->sniffing) {
        sniff(r);
        return;
    }
    relay_move(r);
}

/* HTTP: once the request line is in, answer here or relay (proxy_set_local_http). */
static void sniff(struct relay *r)
{
    struct proxy *p = r->p;
    const char *line = (const char *)r->up.buf + r->up.start;
    size_t have = pipe_pending(&r->up), len = 0;
    const char *eol = have > 0 ? memchr(line, '\n', have) : NULL;
    char method[16], path[SNIFF_MAX];
    char *answer = NULL;

    if (eol == NULL && have < SNIFF_MAX && !r->up.eof) {
        relay_watch(r);
        return;
    }
    r->sniffing = false;
    if (eol != NULL) {
        char first[SNIFF_MAX + 1];
        size_t n = (size_t)(eol - line);
        memcpy(first, line, n);
        first[n] = '\0';
        if (sscanf(first, "%15s %4095s", method, path) == 2)
            answer = p->local_http(p->local_ctx, method, path, &len);
    }
    if (answer == NULL && (!p->has_leader || p->leader_len[r->kind] == 0)) {
        p->stats.refused++;
        relay_close(r); /* no leader to relay to: the client retries */
        return;
    }
    if (answer == NULL) {
        relay_connect(r);
        return;
    }
    /* Answered here: the request is dropped, the answer goes out, then both sides close. */
    pipe_free(p, &r->up);
    r->up.eof = r->up.shut = true;
    pipe_free(p, &r->down);
    r->down.buf = (uint8_t *)answer;
    r->down.end = len;
    r->down.eof = true;
    p->stats.buffered_bytes += len;
    relay_move(r);
}

static void on_client_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct relay *r = container_of(w, struct relay, client_read);

    (void)loop;
    (void)revents;
    relay_read(r, &r->up, r->client_fd, "reading from the client:");
}

static void on_leader_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct relay *r = container_of(w, struct relay, leader_read);

    (void)loop;
    (void)revents;
    relay_read(r, &r->down, r->leader_fd, "reading from the leader:");
}

static void on_client_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    relay_move(container_of(w, struct relay, client_write));
}

static void on_leader_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct relay *r = container_of(w, struct relay, leader_write);
    int err = 0;
    socklen_t len = sizeof err;

    (void)revents;
    if (!r->connected) {
        /* The non-blocking connect finished: SO_ERROR says how. */
        if (getsockopt(r->leader_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            connect_failed(r, err);
            return;
        }
        r->connected = true;
        ev_timer_stop(loop, &r->connect_timer);
    }
    relay_move(r);
}

static void on_connect_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    connect_failed(container_of(w, struct relay, connect_timer), ETIMEDOUT);
}

/* ---- The proxy ------------------------------------------------------------------------- */

struct proxy *proxy_new(struct ev_loop *loop, const struct proxy_options *opt)
{
    struct proxy *p = xcalloc(1, sizeof *p);

    p->loop = loop;
    p->buffer_bytes =
        opt != NULL && opt->buffer_bytes != 0 ? opt->buffer_bytes : PROXY_BUFFER_DEFAULT;
    p->connect_timeout_ms = opt != NULL && opt->connect_timeout_ms != 0 ? opt->connect_timeout_ms
                                                                        : PROXY_CONNECT_TIMEOUT_MS;
    p->proxy_header = opt == NULL || !opt->no_proxy_header;
    return p;
}

void proxy_free(struct proxy *p)
{
    if (p == NULL)
        return;
    proxy_drop_all(p);
    free(p);
}

void proxy_drop_all(struct proxy *p)
{
    uint64_t n = 0;

    while (p->relays != NULL) {
        relay_close(p->relays);
        n++;
    }
    p->stats.dropped += n;
    if (n > 0)
        log_info(NULL, "proxy: dropped %llu relayed client connections", (unsigned long long)n);
}

int proxy_set_leader(struct proxy *p, const struct proxy_leader *leader)
{
    const char *text[PROXY_KINDS] = {0};
    struct sockaddr_storage addr[PROXY_KINDS];
    socklen_t len[PROXY_KINDS] = {0};
    bool ok = true, changed;

    if (leader != NULL) {
        text[PROXY_AMQP] = leader->amqp;
        text[PROXY_AMQPS] = leader->amqps;
        text[PROXY_HTTP] = leader->http;
    }
    for (int k = 0; k < PROXY_KINDS; k++) {
        if (text[k] != NULL && !parse_address(text[k], &addr[k], &len[k])) {
            log_error(NULL, "proxy: the leader's %s address '%s' is not IP:port", kind_names[k],
                      text[k]);
            ok = false;
        }
    }
    if (!ok || leader == NULL) {
        memset(text, 0, sizeof text);
        memset(len, 0, sizeof len);
    }
    changed = p->has_leader != (ok && leader != NULL);
    for (int k = 0; k < PROXY_KINDS; k++)
        changed |= strcmp(p->leader_text[k], text[k] != NULL ? text[k] : "") != 0;
    if (!changed)
        return ok ? 0 : -1;
    proxy_drop_all(p);
    p->has_leader = ok && leader != NULL;
    for (int k = 0; k < PROXY_KINDS; k++) {
        snprintf(p->leader_text[k], sizeof p->leader_text[k], "%s", text[k] != NULL ? text[k] : "");
        p->leader_len[k] = len[k];
        if (len[k] != 0)
            p->leader[k] = addr[k];
    }
    if (p->has_leader)
        log_info(NULL, "proxy: clients are relayed to the leader (AMQP %s, AMQPS %s, HTTP %s)",
                 text[PROXY_AMQP] ? text[PROXY_AMQP] : "none",
                 text[PROXY_AMQPS] ? text[PROXY_AMQPS] : "none",
                 text[PROXY_HTTP] ? text[PROXY_HTTP] : "none");
    else
        log_info(NULL, "proxy: no leader known; client connections are closed until one is");
    return ok ? 0 : -1;
}

/* The PROXY header goes first into the pipe to the leader: the spec wants it "sent at once
 * upon the connection establishment and prepended before any data". */
static void put_proxy_header(struct relay *r, const struct sockaddr *peer)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    bool have_local = getsockname(r->client_fd, (struct sockaddr *)&local, &len) == 0;

    r->up.buf = xmalloc(r->p->buffer_bytes);
    r->up.end = proxy_header_format(peer, have_local ? (struct sockaddr *)&local : NULL, r->up.buf);
    r->header_left = r->up.end;
    r->p->stats.buffered_bytes += r->up.end;
}

/* Opens the relay's connection to the leader (the client's bytes wait in up meanwhile). */
static void relay_connect(struct relay *r)
{
    struct proxy *p = r->p;
    enum proxy_kind kind = r->kind;
    int one = 1;

    r->leader_fd = socket(p->leader[kind].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->leader_fd < 0) {
        log_warn(NULL, "proxy: no socket for the leader: %s", strerror(errno));
        p->stats.connect_failures++;
        relay_close(r);
        return;
    }
    setsockopt(r->leader_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ev_io_init(&r->leader_read, on_leader_readable, r->leader_fd, EV_READ);
    ev_io_init(&r->leader_write, on_leader_writable, r->leader_fd, EV_WRITE);
    log_debug(NULL, "proxy: %s client %s relayed to the leader at %s", kind_names[kind], r->peer,
              p->leader_text[kind]);

    /* From the address the client reached this node at (its advertised one), so that the
     * leader, which accepts PROXY headers only from the nodes' addresses, knows it (on one
     * host with several loopback addresses the kernel would pick 127.0.0.1). Best effort. */
    {
        struct sockaddr_storage local;
        socklen_t local_len = sizeof local;
        if (getsockname(r->client_fd, (struct sockaddr *)&local, &local_len) == 0 &&
            local.ss_family == p->leader[kind].ss_family) {
            if (local.ss_family == AF_INET)
                ((struct sockaddr_in *)&local)->sin_port = 0;
            else if (local.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&local)->sin6_port = 0;
            (void)bind(r->leader_fd, (struct sockaddr *)&local, local_len);
        }
    }
    if (connect(r->leader_fd, (struct sockaddr *)&p->leader[kind], p->leader_len[kind]) == 0) {
        r->connected = true;
        relay_move(r);
        return;
    }
    if (errno != EINPROGRESS) {
        connect_failed(r, errno);
        return;
    }
    ev_timer_start(p->loop, &r->connect_timer);
    relay_watch(r);
}

void proxy_set_local_http(struct proxy *p, proxy_local_http_fn *fn, void *ctx)
{
    p->local_http = fn;
    p->local_ctx = ctx;
}

void proxy_accept(struct proxy *p, int fd, const struct sockaddr *peer, socklen_t peer_len,
                  enum proxy_kind kind)
{
    struct relay *r;
    int one = 1, flags;
    bool local = kind == PROXY_HTTP && p->local_http != NULL;

    (void)peer_len;
    /* Without a leader an HTTP client may still ask what this node answers itself. */
    if (kind >= PROXY_KINDS || (!local && (!p->has_leader || p->leader_len[kind] == 0))) {
        p->stats.refused++;
        close(fd);
        return;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    r = xcalloc(1, sizeof *r);
    r->p = p;
    r->kind = kind;
    r->client_fd = fd;
    r->leader_fd = -1;
    format_address(peer, r->peer, sizeof r->peer);
    ev_io_init(&r->client_read, on_client_readable, fd, EV_READ);
    ev_io_init(&r->client_write, on_client_writable, fd, EV_WRITE);
    ev_timer_init(&r->connect_timer, on_connect_timeout, p->connect_timeout_ms / 1000.0, 0.);
    r->next = p->relays;
    if (p->relays != NULL)
        p->relays->prev = r;
    p->relays = r;
    p->stats.relays++;
    p->stats.relays_started++;
    if (p->proxy_header && kind != PROXY_HTTP)
        put_proxy_header(r, peer);
    if (local) {
        r->sniffing = true;
        relay_watch(r);
        return;
    }
    relay_connect(r);
}

void proxy_stats(const struct proxy *p, struct proxy_stats *out)
{
    *out = p->stats;
    out->buffer_bytes = p->buffer_bytes;
}
