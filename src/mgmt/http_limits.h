/* What the clients of one HTTP listener (src/mgmt/mgmt.h) may hold: time, connections and
 * request-body bytes, so that slow or hostile clients cannot make the management API or the
 * metrics endpoint unreachable, nor fill the broker's memory.
 *
 * Time: a client has head_timeout_ms to send a complete request head (request line and
 * headers), counted from its connection or from the end of its previous request on the
 * same connection; a connection without one by then is closed. libmicrohttpd's own
 * connection timeout starts again with every byte, so without this a client sending one
 * byte a second would hold its connection for as long as it liked. The rule is cowboy's
 * request_timeout, the one RabbitMQ's management.tcp.request_timeout sets.
 *
 * Connections: HTTP_LIMITS_CONNS are served; while more are open, each new one closes the
 * connection that has waited longest for a request head, so that clients that never finish
 * theirs cannot keep out one that does. Past HTTP_LIMITS_CONNS + HTTP_LIMITS_SPARE
 * libmicrohttpd accepts no more until some close.
 *
 * Bytes: the request bodies being read on all of a listener's connections together hold at
 * most body_budget bytes. A body reserves its announced size (Content-Length) before any
 * of it is read, or reserves as it arrives when it is chunked; what does not fit is refused
 * (503), and so is a body larger than the largest one a request may have (413).
 *
 * Everything here runs on the loop thread, in libmicrohttpd's callbacks or the loop's
 * timer. */
#ifndef WARREN_SRC_MGMT_HTTP_LIMITS_H
#define WARREN_SRC_MGMT_HTTP_LIMITS_H

#include <ev.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_LIMITS_CONNS 256 /* connections served at once */
#define HTTP_LIMITS_SPARE 64  /* more accepted, each closing one that waits for its head */

struct http_peer;

struct http_limits {
    struct ev_loop *loop;
    const char *what; /* "management API": names the listener in answers and logs */
    double head_timeout_s;
    unsigned conns; /* open */
    /* The connections waiting for a request head, oldest first; the timer fires at the
     * deadline of the oldest. */
    struct http_peer *oldest, *newest;
    ev_timer timer;
    uint64_t body_bytes; /* reserved by the bodies being read */
    uint64_t body_budget;
};

/* A request body being read, within its listener's budget. */
struct http_body {
    char *data;
    size_t len, cap;
    uint64_t reserved;  /* bytes of the budget it holds */
    uint64_t discarded; /* bytes read and dropped after it was refused */
    unsigned refused;   /* 0, or the status that refuses it (413 or 503) */
};

/* what is a static string. Nothing is open yet; the timer starts with the first connection. */
void http_limits_init(struct http_limits *l, struct ev_loop *loop, const char *what,
                      uint32_t head_timeout_ms, uint64_t body_budget);
/* Stops the timer. Call it after MHD_stop_daemon(), which has closed every connection. */
void http_limits_stop(struct http_limits *l);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the struct http_limits as cls: a connection
 * opens (its deadline starts; it may close the oldest one waiting) or closes. */
void http_limits_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                               enum MHD_ConnectionNotificationCode toe);
/* The head of a request arrived on conn (the access handler's first call): no deadline
 * until the request is done. */
void http_limits_head_received(struct MHD_Connection *conn);
/* A request on conn is done (MHD_OPTION_NOTIFY_COMPLETED): the next head's deadline starts. */
void http_limits_request_done(struct MHD_Connection *conn);

/* At the request head, before any of the body is read: reserves its announced size. 0, or
 * the status that refuses it at once: 413 when it announces more than max_bytes, 503 when
 * the budget has not that much left. The reason goes in the answer: see http_body_reason. */
unsigned http_body_begin(struct http_limits *l, struct http_body *b, struct MHD_Connection *conn,
                         uint64_t max_bytes);
/* Keeps n more bytes of the body. A chunked body reserves as it grows; one that passes
 * max_bytes or the budget is dropped, b->refused set, and what follows read and discarded.
 * False once max_bytes more have been discarded: close the connection. */
bool http_body_append(struct http_limits *l, struct http_body *b, const char *data, size_t n,
                      uint64_t max_bytes);
/* Why b->refused, with the figures, for the answer: into out, size bytes. */
void http_body_reason(const struct http_limits *l, const struct http_body *b, uint64_t max_bytes,
                      char *out, size_t size);
/* Frees the body's bytes and gives its reservation back; b is empty again. */
void http_body_free(struct http_limits *l, struct http_body *b);

#endif
