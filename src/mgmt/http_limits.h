/* What the clients of one HTTP listener (src/mgmt/mgmt.h) may hold, so that hostile clients
 * cannot fill the broker's memory.
 *
 * Bytes: the request bodies being read on all of a listener's connections together hold at
 * most body_budget bytes. A body reserves its announced size (Content-Length) before any
 * of it is read, or reserves as it arrives when it is chunked; what does not fit is refused
 * (503), and so is a body larger than the largest one a request may have (413).
 *
 * Everything here runs on the loop thread, in libmicrohttpd's callbacks. */
#ifndef WARREN_SRC_MGMT_HTTP_LIMITS_H
#define WARREN_SRC_MGMT_HTTP_LIMITS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_limits {
    const char *what;    /* "management API": names the listener in answers and logs */
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

/* what is a static string. */
void http_limits_init(struct http_limits *l, const char *what, uint64_t body_budget);

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
