/* What the clients of one HTTP listener may hold: the budget of request-body bytes
 * (src/mgmt/http_limits.h). */
#include "build_config.h"

#include "src/mgmt/http_limits.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/base/util.h"

/* A chunked body reserves at least this much at a time, not once per chunk. */
#define BODY_RESERVE_STEP (64u * 1024)

void http_limits_init(struct http_limits *l, const char *what, uint64_t body_budget)
{
    *l = (struct http_limits){.what = what, .body_budget = body_budget};
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
