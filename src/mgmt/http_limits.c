/* What the clients of one HTTP listener may hold: the request-head deadline, the connection
 * slots and the budget of request-body bytes (src/mgmt/http_limits.h). */
#include "build_config.h"

#include "src/mgmt/http_limits.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "src/base/log.h"
#include "src/base/util.h"

/* A chunked body reserves at least this much at a time, not once per chunk. */
#define BODY_RESERVE_STEP (64u * 1024)

/* One connection, from accept to close: MHD's socket context. */
struct http_peer {
    struct http_limits *lim;
    struct MHD_Connection *conn;
    char addr[64]; /* "192.0.2.10:53122", for log lines */
    /* In lim's list while it waits for a request head, since then. */
    struct http_peer *prev, *next;
    bool waiting;
    ev_tstamp since;
    bool closing;      /* shut down by us; MHD has yet to notice */
    unsigned requests; /* whose heads arrived */
};

static void format_addr(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info != NULL ? info->client_addr : NULL;
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, size, "?");
    }
}

static struct http_peer *peer_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* ---- Waiting for a request head --------------------------------------------------------- */

static void rearm(struct http_limits *l)
{
    ev_timer_stop(l->loop, &l->timer);
    if (l->oldest != NULL) {
        double left = l->oldest->since + l->head_timeout_s - ev_now(l->loop);
        ev_timer_set(&l->timer, left > 0 ? left : 0., 0.);
        ev_timer_start(l->loop, &l->timer);
    }
}

static void stop_waiting(struct http_peer *p)
{
    struct http_limits *l = p->lim;

    if (!p->waiting)
        return;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        l->oldest = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        l->newest = p->prev;
    p->prev = p->next = NULL;
    p->waiting = false;
    /* The timer keeps the oldest's deadline; a later one is checked when it fires. */
    if (l->oldest == NULL)
        ev_timer_stop(l->loop, &l->timer);
}

static void start_waiting(struct http_peer *p)
{
    struct http_limits *l = p->lim;

    if (p->waiting || p->closing)
        return;
    p->since = ev_now(l->loop);
    p->waiting = true;
    p->prev = l->newest;
    p->next = NULL;
    if (l->newest != NULL)
        l->newest->next = p;
    else
        l->oldest = p;
    l->newest = p;
    if (l->oldest == p)
        rearm(l);
}

/* MHD has no call that closes a connection from outside its callbacks; shutting the socket
 * down makes its next read see the end of the stream, and MHD then closes the connection
 * as one the client closed (MHD_CONNECTION_NOTIFY_CLOSED frees p). */
static void close_peer(struct http_peer *p)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(p->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

    stop_waiting(p);
    p->closing = true;
    if (info != NULL && shutdown(info->connect_fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_warn(NULL, "%s: shutdown of the connection from %s: %s", p->lim->what, p->addr,
                 strerror(errno));
}

static void on_head_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_limits *l = container_of(w, struct http_limits, timer);
    ev_tstamp now = ev_now(loop);

    (void)revents;
    /* Deadlines are in the order of the list: the expired ones are at its head. A
     * millisecond of slack keeps a timer that fires a hair early from spinning. */
    while (l->oldest != NULL && l->oldest->since + l->head_timeout_s <= now + 0.001) {
        struct http_peer *p = l->oldest;
        /* After a request, this is a client keeping its connection for the next one. */
        if (p->requests > 0)
            log_debug(NULL, "%s: closing the idle connection from %s after %.0f ms", l->what,
                      p->addr, l->head_timeout_s * 1000.0);
        else
            log_warn(NULL,
                     "%s: closing the connection from %s: no complete request head within "
                     "%.0f ms",
                     l->what, p->addr, l->head_timeout_s * 1000.0);
        close_peer(p);
    }
    rearm(l);
}

void http_limits_init(struct http_limits *l, struct ev_loop *loop, const char *what,
                      uint32_t head_timeout_ms, uint64_t body_budget)
{
    *l = (struct http_limits){
        .loop = loop,
        .what = what,
        .head_timeout_s = head_timeout_ms / 1000.0,
        .body_budget = body_budget,
    };
    ev_init(&l->timer, on_head_deadline);
}

void http_limits_stop(struct http_limits *l)
{
    ev_timer_stop(l->loop, &l->timer);
}

void http_limits_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                               enum MHD_ConnectionNotificationCode toe)
{
    struct http_limits *l = cls;
    struct http_peer *p = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (p != NULL) {
            stop_waiting(p);
            free(p);
            *socket_context = NULL;
            l->conns--;
        }
        return;
    }
    p = xcalloc(1, sizeof *p);
    p->lim = l;
    p->conn = conn;
    format_addr(conn, p->addr, sizeof p->addr);
    *socket_context = p;
    l->conns++;
    /* Full: the connection that has waited longest for its head makes room for this one. */
    if (l->conns > HTTP_LIMITS_CONNS && l->oldest != NULL) {
        log_warn(NULL,
                 "%s: closing the connection from %s: %u connections are open, and it has "
                 "waited longest for a request head",
                 l->what, l->oldest->addr, l->conns);
        close_peer(l->oldest);
    }
    start_waiting(p);
}

void http_limits_head_received(struct MHD_Connection *conn)
{
    struct http_peer *p = peer_of(conn);

    if (p != NULL) {
        stop_waiting(p);
        p->requests++;
    }
}

void http_limits_request_done(struct MHD_Connection *conn)
{
    struct http_peer *p = peer_of(conn);

    if (p != NULL)
        start_waiting(p);
}

/* ---- Request bodies --------------------------------------------------------------------- */

static bool reserve(struct http_limits *l, struct http_body *b, uint64_t bytes)
{
    if (bytes > l->body_budget - l->body_bytes)
        return false;
    l->body_bytes += bytes;
    b->reserved += bytes;
    return true;
}

/* The announced size, or false when the body is chunked or announces none. MHD has checked
 * the header's syntax before the access handler runs. */
static bool announced_size(struct MHD_Connection *conn, uint64_t *size)
{
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;

    if (cl == NULL || (te != NULL && strcasecmp(te, "identity") != 0))
        return false;
    errno = 0;
    *size = strtoull(cl, &end, 10);
    return errno == 0 && end != cl && *end == '\0';
}

unsigned http_body_begin(struct http_limits *l, struct http_body *b, struct MHD_Connection *conn,
                         uint64_t max_bytes)
{
    uint64_t size;

    *b = (struct http_body){0};
    if (!announced_size(conn, &size) || size == 0)
        return 0;
    if (size > max_bytes)
        b->refused = MHD_HTTP_CONTENT_TOO_LARGE;
    else if (!reserve(l, b, size))
        b->refused = MHD_HTTP_SERVICE_UNAVAILABLE;
    return b->refused;
}

bool http_body_append(struct http_limits *l, struct http_body *b, const char *data, size_t n,
                      uint64_t max_bytes)
{
    if (b->refused == 0 && b->len + n > b->reserved) {
        uint64_t more = b->len + n - b->reserved;
        if (more < BODY_RESERVE_STEP)
            more = BODY_RESERVE_STEP;
        if (b->len + n > max_bytes)
            b->refused = MHD_HTTP_CONTENT_TOO_LARGE;
        else if (!reserve(l, b, more))
            b->refused = MHD_HTTP_SERVICE_UNAVAILABLE;
        if (b->refused != 0) {
            unsigned refused = b->refused;
            http_body_free(l, b);
            b->refused = refused;
        }
    }
    if (b->refused != 0) {
        b->discarded += n;
        return b->discarded <= max_bytes;
    }
    /* Grown by doubling, but never past the reservation: the budget bounds the memory. */
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
        b->cap = cap < b->reserved ? cap : (size_t)b->reserved;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return true;
}

void http_body_reason(const struct http_limits *l, const struct http_body *b, uint64_t max_bytes,
                      char *out, size_t size)
{
    if (b->refused == MHD_HTTP_CONTENT_TOO_LARGE)
        snprintf(out, size, "request body larger than %" PRIu64 " bytes", max_bytes);
    else
        snprintf(out, size,
                 "the request bodies being read hold %" PRIu64 " of the %" PRIu64
                 " bytes the %s may buffer; try again later",
                 l->body_bytes, l->body_budget, l->what);
}

void http_body_free(struct http_limits *l, struct http_body *b)
{
    assert(l->body_bytes >= b->reserved);
    l->body_bytes -= b->reserved;
    free(b->data);
    *b = (struct http_body){0};
}
