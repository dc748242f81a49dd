/* The connections of warren-perf; see perf_conn.h. */
#include "build_config.h" /* _GNU_SOURCE for memmem */

#include "bench/perf_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "amqp/table.h"

/* Reads are at least this large, so one read brings in many small frames. */
#define READ_CHUNK (256u * 1024u)

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "warren-perf: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void perf_conn_fail(struct perf_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
}

static void conn_init(struct perf_conn *c, int fd)
{
    *c = (struct perf_conn){.fd = fd, .frame_max = WIRE_FRAME_MIN_SIZE};
    c->in_cap = 2 * READ_CHUNK;
    c->in = xrealloc(NULL, c->in_cap);
    c->out_cap = 64u * 1024u;
    c->out = xrealloc(NULL, c->out_cap);
}

void perf_conn_adopt(struct perf_conn *c, int fd)
{
    int one = 1;

    conn_init(c, fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void perf_conn_free(struct perf_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_cap = c->out_cap = 0;
}

/* ---- Writing -------------------------------------------------------------------------- */

static void out_reserve(struct perf_conn *c, size_t n)
{
    if (c->out_pos == c->out_len)
        c->out_pos = c->out_len = 0;
    if (c->out_cap - c->out_len >= n)
        return;
    if (c->out_pos > 0) {
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
    }
    while (c->out_cap - c->out_len < n)
        c->out_cap *= 2;
    c->out = xrealloc(c->out, c->out_cap);
}

void perf_conn_put_raw(struct perf_conn *c, const void *bytes, size_t len)
{
    out_reserve(c, len);
    memcpy(c->out + c->out_len, bytes, len);
    c->out_len += len;
}

void perf_conn_put_method(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args)
{
    for (size_t room = 512;; room *= 2) {
        struct wire_writer w;

        out_reserve(c, room);
        w = wire_writer_init(c->out + c->out_len, c->out_cap - c->out_len);
        wire_frame_put_method(&w, channel, id, args);
        if (!wire_writer_overflowed(&w)) {
            c->out_len += wire_writer_used(&w);
            return;
        }
        room = wire_writer_used(&w);
    }
}

int perf_conn_flush(struct perf_conn *c)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            perf_conn_fail(c, "write: %s", strerror(errno));
            return -1;
        }
        c->out_pos += (size_t)n;
    }
    c->out_pos = c->out_len = 0;
    return 0;
}

/* ---- Reading -------------------------------------------------------------------------- */

int perf_conn_fill(struct perf_conn *c)
{
    ssize_t n;

    if (c->in_pos == c->in_len)
        c->in_pos = c->in_len = 0;
    /* Keep room for a whole read chunk, moving the unparsed tail (a partial frame) to the
     * front, and growing only when one frame is bigger than what is left. */
    if (c->in_cap - c->in_len < READ_CHUNK && c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    if (c->in_cap - c->in_len < READ_CHUNK) {
        c->in_cap = c->in_len + 2 * READ_CHUNK;
        c->in = xrealloc(c->in, c->in_cap);
    }
    for (;;) {
        n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            return (int)(n > 0x7fffffff ? 0x7fffffff : n);
        }
        if (n == 0) {
            perf_conn_fail(c, "the peer closed the TCP connection without connection.close");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        perf_conn_fail(c, "read: %s", strerror(errno));
        return -1;
    }
}

int perf_conn_next_frame(struct perf_conn *c, struct wire_frame *f)
{
    size_t consumed;
    /* What we accept follows RabbitMQ's rule: a payload of up to frame_max octets. */
    int rc = wire_frame_parse(c->in + c->in_pos, c->in_len - c->in_pos, c->frame_max, f, &consumed);

    if (rc == WIRE_OK) {
        c->in_pos += consumed;
        return 1;
    }
    if (rc == WIRE_NEED_MORE)
        return 0;
    perf_conn_fail(c, "malformed frame from the peer (frame_max %u)", c->frame_max);
    return -1;
}

int perf_conn_wait(struct perf_conn *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    if (perf_conn_out_pending(c))
        p.events |= POLLOUT;
    if (poll(&p, 1, timeout_ms) < 0) {
        if (errno == EINTR)
            return 0;
        perf_conn_fail(c, "poll: %s", strerror(errno));
        return -1;
    }
    if ((p.revents & POLLOUT) && perf_conn_flush(c) < 0)
        return -1;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && perf_conn_fill(c) < 0)
        return -1;
    return 0;
}

/* ---- Frames every client answers ------------------------------------------------------ */

static const char *method_name(uint16_t class_id, uint16_t method_id)
{
    const struct wire_method_info *info = wire_method_info(WIRE_METHOD_ID(class_id, method_id));

    return info != NULL ? info->name : "?";
}

int perf_conn_common(struct perf_conn *c, const struct wire_frame *f, const struct wire_method *m)
{
    if (f->type == WIRE_FRAME_HEARTBEAT)
        return 1;
    if (m == NULL)
        return 0;
    switch (m->id) {
    case WIRE_CONNECTION_CLOSE: {
        const struct wire_connection_close *cl = &m->u.connection_close;

        perf_conn_fail(c, "the broker closed the connection: %u %.*s%s%s", cl->reply_code,
                       (int)cl->reply_text.len, (const char *)cl->reply_text.ptr,
                       cl->class_id ? " (in reply to " : "",
                       cl->class_id ? method_name(cl->class_id, cl->method_id) : "");
        if (cl->class_id)
            strncat(c->error, ")", sizeof c->error - strlen(c->error) - 1);
        perf_conn_put_method(c, 0, WIRE_CONNECTION_CLOSE_OK, &(struct wire_connection_close_ok){0});
        perf_conn_flush(c);
        return -1;
    }
    case WIRE_CHANNEL_CLOSE: {
        const struct wire_channel_close *cl = &m->u.channel_close;

        perf_conn_fail(c, "the broker closed channel %u: %u %.*s%s%s", f->channel, cl->reply_code,
                       (int)cl->reply_text.len, (const char *)cl->reply_text.ptr,
                       cl->class_id ? " (in reply to " : "",
                       cl->class_id ? method_name(cl->class_id, cl->method_id) : "");
        if (cl->class_id)
            strncat(c->error, ")", sizeof c->error - strlen(c->error) - 1);
        perf_conn_put_method(c, f->channel, WIRE_CHANNEL_CLOSE_OK,
                             &(struct wire_channel_close_ok){0});
        perf_conn_flush(c);
        return -1;
    }
    case WIRE_CONNECTION_BLOCKED:
        if (!c->blocked)
            fprintf(stderr, "warren-perf: the broker blocked a connection: %.*s\n",
                    (int)m->u.connection_blocked.reason.len,
                    (const char *)m->u.connection_blocked.reason.ptr);
        c->blocked = true;
        return 1;
    case WIRE_CONNECTION_UNBLOCKED:
        c->blocked = false;
        return 1;
    default:
        return 0;
    }
}

/* Decodes a method frame, with a readable error on malformed bytes. */
static int decode(struct perf_conn *c, const struct wire_frame *f, struct wire_method *m)
{
    int rc = wire_method_decode(f->payload, m);

    if (rc != WIRE_OK) {
        perf_conn_fail(c, "undecodable method frame from the peer (%d)", rc);
        return -1;
    }
    return 0;
}

int perf_conn_rpc_within(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args,
                         uint32_t expect, struct wire_method *reply, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    const struct wire_method_info *info = wire_method_info(expect);

    if (id != 0)
        perf_conn_put_method(c, channel, id, args);
    for (;;) {
        struct wire_frame f;
        int rc;

        while ((rc = perf_conn_next_frame(c, &f)) == 1) {
            if (f.type != WIRE_FRAME_METHOD) {
                if (perf_conn_common(c, &f, NULL) == 0 && f.type != WIRE_FRAME_HEADER &&
                    f.type != WIRE_FRAME_BODY) {
                    perf_conn_fail(c, "unexpected frame type %u", f.type);
                    return -1;
                }
                continue;
            }
            if (decode(c, &f, reply) < 0)
                return -1;
            rc = perf_conn_common(c, &f, reply);
            if (rc < 0)
                return -1;
            if (rc == 0 && reply->id == expect && f.channel == channel)
                return 0;
            /* Anything else (a delivery racing a consume-ok, ...) is not what we wait for. */
        }
        if (rc < 0)
            return -1;
        if (perf_conn_flush(c) < 0)
            return -1;
        if (now_ms() >= deadline) {
            perf_conn_fail(c, "no %s from the broker within %d ms", info ? info->name : "reply",
                           timeout_ms);
            return -1;
        }
        if (perf_conn_wait(c, 100) < 0)
            return -1;
    }
}

int perf_conn_rpc(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args,
                  uint32_t expect, struct wire_method *reply)
{
    return perf_conn_rpc_within(c, channel, id, args, expect, reply, PERF_CONN_TIMEOUT_MS);
}

/* ---- Handshake ------------------------------------------------------------------------ */

static int tcp_connect(struct perf_conn *c, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, rc;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        perf_conn_fail(c, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        perf_conn_fail(c, "cannot connect to %s:%s: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void put_start_ok(struct perf_conn *c, const char *user, const char *password)
{
    uint8_t props[512], response[600];
    struct wire_writer w = wire_writer_init(props, sizeof props);
    size_t t, caps, ulen = strlen(user), plen = strlen(password);

    t = wire_table_begin(&w);
    wire_table_put_longstr(&w, "product", wire_cstr("warren-perf"));
    wire_table_put_longstr(&w, "platform", wire_cstr("C"));
    caps = wire_table_put_table_begin(&w, "capabilities");
    wire_table_put_bool(&w, "publisher_confirms", true);
    wire_table_put_bool(&w, "basic.nack", true);
    wire_table_put_bool(&w, "consumer_cancel_notify", true);
    wire_table_put_bool(&w, "connection.blocked", true);
    wire_table_end(&w, caps);
    wire_table_end(&w, t);

    /* PLAIN: authzid (empty) NUL authcid NUL password. */
    if (ulen > 255)
        ulen = 255;
    if (plen > 255)
        plen = 255;
    response[0] = 0;
    memcpy(response + 1, user, ulen);
    response[1 + ulen] = 0;
    memcpy(response + 2 + ulen, password, plen);

    struct wire_connection_start_ok ok = {
        /* The table's entries, without the 4-octet length wire_table_begin wrote. */
        .client_properties = {.raw = {.ptr = props + t + 4, .len = wire_writer_used(&w) - t - 4}},
        .mechanism = wire_cstr("PLAIN"),
        .response = {.ptr = response, .len = 2 + ulen + plen},
        .locale = wire_cstr("en_US"),
    };
    perf_conn_put_method(c, 0, WIRE_CONNECTION_START_OK, &ok);
}

int perf_conn_open(struct perf_conn *c, const char *host, const char *port, const char *user,
                   const char *password)
{
    struct wire_method m;
    int fd;

    *c = (struct perf_conn){.fd = -1};
    fd = tcp_connect(c, host, port);
    if (fd < 0)
        return -1;
    perf_conn_adopt(c, fd);
    perf_conn_put_raw(c, wire_protocol_header, sizeof wire_protocol_header);

    if (perf_conn_rpc(c, 0, 0, NULL, WIRE_CONNECTION_START, &m) < 0)
        goto fail;
    if (memmem(m.u.connection_start.mechanisms.ptr, m.u.connection_start.mechanisms.len, "PLAIN",
               5) == NULL) {
        perf_conn_fail(c, "the broker does not offer SASL PLAIN");
        goto fail;
    }
    put_start_ok(c, user, password);
    if (perf_conn_rpc(c, 0, 0, NULL, WIRE_CONNECTION_TUNE, &m) < 0)
        goto fail;

    /* Take what the server offers: its frame_max and channel_max, and no heartbeats, which a
     * busy benchmark connection does not need and a blocked producer could miss. */
    struct wire_connection_tune_ok tune = {
        .channel_max = m.u.connection_tune.channel_max,
        .frame_max = m.u.connection_tune.frame_max,
        .heartbeat = 0,
    };
    c->channel_max = tune.channel_max;
    c->frame_max = tune.frame_max;
    if (c->frame_max != 0 && c->frame_max < WIRE_FRAME_MIN_SIZE) {
        perf_conn_fail(c, "the broker offers frame_max %u, below the spec's minimum %u",
                       c->frame_max, WIRE_FRAME_MIN_SIZE);
        goto fail;
    }
    perf_conn_put_method(c, 0, WIRE_CONNECTION_TUNE_OK, &tune);
    struct wire_connection_open open = {.virtual_host = wire_cstr("/")};
    if (perf_conn_rpc(c, 0, WIRE_CONNECTION_OPEN, &open, WIRE_CONNECTION_OPEN_OK, &m) < 0)
        goto fail;
    return 0;
fail:
    perf_conn_free(c);
    return -1;
}

void perf_conn_close(struct perf_conn *c)
{
    struct wire_method m;

    if (c->fd >= 0 && c->error[0] == '\0') {
        struct wire_connection_close cl = {.reply_code = WIRE_REPLY_SUCCESS,
                                           .reply_text = wire_cstr("bye")};
        /* Only for politeness: whatever the answer, the socket is closed next. A consumer may
         * have a flood of deliveries to read through first, hence the short wait. */
        perf_conn_rpc_within(c, 0, WIRE_CONNECTION_CLOSE, &cl, WIRE_CONNECTION_CLOSE_OK, &m, 2000);
    }
    perf_conn_free(c);
}
