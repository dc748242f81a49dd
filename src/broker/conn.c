#include "src/broker/conn.h"
#include "src/broker/conn_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "build_config.h"
#include "exchanges/erl_term.h"
#include "src/base/config.h"
#include "src/base/util.h"
#include "src/base/version.h"
#include "src/broker/channel.h"
#include "src/broker/message.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/cluster/cluster.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"
#include "src/security/tls.h"

#define READ_CHUNK      (128 * 1024)
#define OUT_HIGH_WATER  (4u * 1024 * 1024) /* consumers pause above this much unsent output */
#define OUT_LOW_WATER   (256u * 1024)      /* ... and resume below this */
#define CLOSE_OK_WAIT_MS 3000              /* how long we wait for connection.close-ok */
#define OUT_SPAN_MIN    (16u * 1024)       /* bodies this big are written from the message */
#define OUT_IOV_MAX     64                 /* iovecs per writev */
#define BODY_IN_MIN     (16u * 1024)       /* body frames this big are read into the message */
#define BODY_IN_TAIL    1024               /* ... with at most this much after them into in */

static void on_readable(struct ev_loop *loop, ev_io *w, int revents);
static void on_writable(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void process_input(struct conn *c);

static void format_peer(const struct sockaddr *sa, char *out, size_t out_size, bool *loopback)
{
    char host[INET6_ADDRSTRLEN] = "?";

    *loopback = false;
    if (sa == NULL) {
        snprintf(out, out_size, "memory");
        *loopback = true;
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        snprintf(out, out_size, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            *loopback = true;
        else if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            *loopback = in6->sin6_addr.s6_addr[12] == 127;
        snprintf(out, out_size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, out_size, "unix");
        *loopback = true;
    }
}

struct conn *conn_new(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct conn *c = xcalloc(1, sizeof *c);

    (void)peer_len;
    c->srv = srv;
    c->fd = fd;
    c->state = CONN_AWAIT_HEADER;
    c->log.conn_id = ++srv->next_conn_id;
    format_peer(peer, c->log.peer, sizeof c->log.peer, &c->is_loopback);
    c->proxy_header_pending = fd >= 0 && server_is_proxy_peer(srv, peer);
    /* Until tune-ok the spec only promises frames of FRAME-MIN-SIZE (4096) octets, so a client
     * that has not finished the handshake never gets a bigger buffer. */
    c->frame_max = WIRE_FRAME_MIN_SIZE;
    c->last_read_ms = c->last_write_ms = now_ms();
    c->deadline_ms = c->last_read_ms + srv->cfg->handshake_timeout_ms;
    if (fd >= 0) {
        ev_io_init(&c->read_watcher, on_readable, fd, EV_READ);
        ev_io_init(&c->write_watcher, on_writable, fd, EV_WRITE);
        ev_io_start(srv->loop, &c->read_watcher);
        ev_timer_init(&c->timer, on_timer, srv->cfg->handshake_timeout_ms / 1000.0, 0.);
        ev_timer_start(srv->loop, &c->timer);
    }
    log_debug(&c->log, "accepted connection");
    return c;
}

static void free_channels(struct conn *c)
{
    for (uint32_t i = 0; i < c->channels_cap; i++) {
        if (c->channels[i] != NULL) {
            struct channel *ch = c->channels[i];
            c->channels[i] = NULL;
            channel_free(ch);
        }
    }
    c->channel_count = 0;
}

/* Exclusive queues belong to their connection and go with it. */
static void delete_exclusive_queues(struct conn *c)
{
    struct queue *owned[64];
    size_t n;
    void *v;

    if (c->vhost == NULL)
        return;
    do {
        n = 0;
        for (size_t i = 0; n < ARRAY_LEN(owned) && hmap_next(&c->vhost->queues, &i, &v);) {
            struct queue *q = v;
            if (q->exclusive && q->owner == c)
                owned[n++] = q;
        }
        for (size_t i = 0; i < n; i++)
            queue_delete(owned[i]);
    } while (n == ARRAY_LEN(owned));
}

void conn_start_tls(struct conn *c, struct tls_conn *t)
{
    c->tls = t;
    c->deadline_ms = now_ms() + c->srv->cfg->ssl_handshake_timeout_ms;
    ev_timer_stop(c->srv->loop, &c->timer);
    ev_timer_set(&c->timer, c->srv->cfg->ssl_handshake_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->srv->loop, &c->timer);
}

/* TLS is up (inside a read, with or without application data): from here the AMQP handshake
 * has handshake_timeout, as on TCP, instead of what is left of ssl_handshake_timeout. */
static void tls_handshake_done(struct conn *c)
{
    c->tls_established = true;
    if (c->state != CONN_AWAIT_HEADER)
        return;
    c->deadline_ms = now_ms() + c->srv->cfg->handshake_timeout_ms;
    ev_timer_stop(c->srv->loop, &c->timer);
    ev_timer_set(&c->timer, c->srv->cfg->handshake_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->srv->loop, &c->timer);
}

/* read(2) and write(2), through TLS when the socket carries it. */
static ssize_t transport_read(struct conn *c, void *buf, size_t n)
{
    return c->tls ? tls_conn_read(c->tls, buf, n) : read(c->fd, buf, n);
}

static ssize_t transport_write(struct conn *c, const void *buf, size_t n)
{
    return c->tls ? tls_conn_write(c->tls, buf, n) : write(c->fd, buf, n);
}

static void release(struct conn *c)
{
    message_unref(c->body_in.msg);
    c->body_in.msg = NULL;
    free_channels(c);
    delete_exclusive_queues(c);
    if (c->counted_in_vhost) {
        c->vhost->connection_count--;
        c->counted_in_vhost = false;
    }
    if (c->tls != NULL) {
        if (c->fd >= 0)
            tls_conn_shutdown(c->tls);
        tls_conn_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0) {
        ev_io_stop(c->srv->loop, &c->read_watcher);
        ev_io_stop(c->srv->loop, &c->write_watcher);
        ev_timer_stop(c->srv->loop, &c->timer);
        close(c->fd);
        c->fd = -1;
    }
}

void conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    release(c);
    free(c->channels);
    free(c->in);
    bytes_free(&c->client_properties);
    outbuf_free(&c->out);
    free(c);
}

void conn_abort(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    release(c);
    server_conn_closed(c->srv, c);
}

/* ---- Output ---------------------------------------------------------------------------- */

static void output_added(struct conn *c)
{
    if (outbuf_pending(&c->out) > OUT_HIGH_WATER)
        c->congested = true;
    server_want_flush(c->srv, c);
}

void conn_send_method(struct conn *c, uint16_t channel, uint32_t method_id, const void *args)
{
    size_t need = 512;

    if (c->state == CONN_CLOSED)
        return;
    for (;;) {
        struct wire_writer w;
        outbuf_reserve(&c->out, need);
        w = outbuf_writer(&c->out);
        wire_frame_put_method(&w, channel, method_id, args);
        if (!wire_writer_overflowed(&w)) {
            outbuf_commit(&c->out, &w);
            break;
        }
        need = wire_writer_used(&w);
    }
    output_added(c);
}

/* A large body goes out from the message itself: its frames' envelopes are encoded into the
 * buffer and the body between them is a span of the message (one body, never copied; the
 * kernel copies it once, from there). Through TLS everything is copied, as OpenSSL encrypts
 * from a buffer anyway and a record per span would cost more than the copy. */
static void put_body_spans(struct conn *c, uint16_t channel, const struct message *m)
{
    size_t room = c->frame_max ? c->frame_max - WIRE_FRAME_OVERHEAD : UINT32_MAX;
    size_t frames = (size_t)(m->body_size + room - 1) / room;
    const uint8_t end = WIRE_FRAME_END;

    outbuf_reserve(&c->out, frames * WIRE_FRAME_OVERHEAD);
    for (size_t off = 0; off < m->body_size;) {
        size_t n = m->body_size - off < room ? (size_t)m->body_size - off : room;
        uint8_t prefix[WIRE_FRAME_HEADER_SIZE];

        wire_frame_body_prefix(prefix, channel, (uint32_t)n);
        outbuf_put(&c->out, prefix, sizeof prefix);
        outbuf_add_span(&c->out, (struct message *)m, m->body + off, n);
        outbuf_put(&c->out, &end, 1);
        off += n;
    }
}

void conn_send_content(struct conn *c, uint16_t channel, uint32_t method_id, const void *args,
                       const struct message *m)
{
    uint32_t body_max = c->frame_max ? c->frame_max - WIRE_FRAME_OVERHEAD : UINT32_MAX;
    size_t frames = m->body_size / body_max + 1;
    bool spans = c->tls == NULL && m->body_size >= OUT_SPAN_MIN;
    size_t need = 1024 + m->header.len + (spans ? 0 : (size_t)m->body_size) +
                  frames * WIRE_FRAME_OVERHEAD;

    if (c->state == CONN_CLOSED)
        return;
    for (;;) {
        struct wire_writer w;
        outbuf_reserve(&c->out, need);
        w = outbuf_writer(&c->out);
        wire_frame_put_method(&w, channel, method_id, args);
        wire_frame_put_raw(&w, WIRE_FRAME_HEADER, channel, m->header);
        if (!spans)
            wire_frame_put_body(&w, channel,
                                (struct wire_bytes){.ptr = m->body, .len = m->body_size},
                                c->frame_max);
        if (!wire_writer_overflowed(&w)) {
            outbuf_commit(&c->out, &w);
            break;
        }
        need = wire_writer_used(&w);
    }
    if (spans)
        put_body_spans(c, channel, m);
    output_added(c);
}

static void resume_consumers(struct conn *c)
{
    for (uint32_t i = 0; i < c->channels_cap; i++) {
        if (c->channels[i] != NULL)
            channel_resume(c->channels[i]);
    }
}

static void send_blocked(struct conn *c, unsigned alarms)
{
    struct wire_connection_blocked m = {
        .reason = (alarms & ALARM_MEMORY) ? WIRE_BYTES_C("low on memory")
                                          : WIRE_BYTES_C("low on disk"),
    };

    if (c->cap_connection_blocked)
        conn_send_method(c, 0, WIRE_CONNECTION_BLOCKED, &m);
}

/* Stops reading a publisher's socket: what it sends waits in the kernel, so it cannot
 * publish, while the deliveries to its consumers go on. */
static void block(struct conn *c, unsigned alarms)
{
    c->block_pending = false;
    if (c->blocked || c->state != CONN_OPEN)
        return;
    c->blocked = true;
    send_blocked(c, alarms);
    if (c->fd >= 0)
        ev_io_stop(c->srv->loop, &c->read_watcher);
    log_info(&c->log, "publisher blocked: %s alarm", (alarms & ALARM_MEMORY) ? "memory" : "disk");
}

void conn_alarm_changed(struct conn *c, unsigned alarms)
{
    if (alarms != 0) {
        if (c->is_publisher)
            block(c, alarms);
        return;
    }
    c->block_pending = false;
    if (!c->blocked)
        return;
    c->blocked = false;
    if (c->cap_connection_blocked && c->state == CONN_OPEN)
        conn_send_method(c, 0, WIRE_CONNECTION_UNBLOCKED, &(struct wire_connection_unblocked){0});
    c->last_read_ms = now_ms(); /* heartbeats were not read while blocked */
    if (c->fd >= 0 && c->state != CONN_CLOSED) {
        ev_io_start(c->srv->loop, &c->read_watcher);
        ev_feed_event(c->srv->loop, &c->read_watcher, EV_READ);
    }
    log_info(&c->log, "publisher unblocked");
}

/* Writes what the socket takes: the buffer and the body spans in one writev, or through
 * TLS (which never has spans) a piece at a time. */
static ssize_t write_output(struct conn *c)
{
    struct iovec iov[OUT_IOV_MAX];
    int n = outbuf_iov(&c->out, iov, c->tls ? 1 : OUT_IOV_MAX);

    if (c->tls != NULL)
        return transport_write(c, iov[0].iov_base, iov[0].iov_len);
    return writev(c->fd, iov, n);
}

void conn_flush(struct conn *c)
{
    bool was_congested = c->congested;

    if (c->state == CONN_CLOSED)
        return;
    if (c->fd < 0) {
        outbuf_consumed(&c->out, outbuf_pending(&c->out)); /* in memory: output goes nowhere */
    }
    while (c->fd >= 0 && outbuf_pending(&c->out) > 0) {
        ssize_t n = write_output(c);
        if (n > 0) {
            outbuf_consumed(&c->out, (size_t)n);
            c->last_write_ms = now_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* TLS may need to read before it can write on (during its handshake): then the
             * read watcher, always on, brings us back here. */
            if (c->tls == NULL || tls_conn_want_write(c->tls))
                ev_io_start(c->srv->loop, &c->write_watcher);
            return;
        }
        log_warn(&c->log, "write failed: %s; closing connection",
                 c->tls ? tls_conn_error(c->tls) : strerror(errno));
        conn_abort(c);
        return;
    }
    if (c->fd >= 0)
        ev_io_stop(c->srv->loop, &c->write_watcher);
    if (c->state == CONN_CLOSING && c->deadline_ms == 0) {
        /* We sent close-ok (or a protocol header): nothing more to say. */
        conn_abort(c);
        return;
    }
    if (outbuf_pending(&c->out) < OUT_LOW_WATER) {
        c->congested = false;
        if (was_congested)
            resume_consumers(c);
    }
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, write_watcher);

    (void)revents;
    /* A TLS read that waited for the socket to take its handshake bytes goes on now. */
    if (c->tls != NULL && outbuf_pending(&c->out) == 0) {
        ev_io_stop(loop, w);
        ev_feed_event(loop, &c->read_watcher, EV_READ);
        return;
    }
    conn_flush(c);
}

/* ---- Errors ---------------------------------------------------------------------------- */

int conn_fail(struct conn *c, uint16_t code, const char *fmt, va_list ap)
{
    const char *name = wire_reply_code_name(code);
    int n = snprintf(c->err_text, sizeof c->err_text, "%s - ", name ? name : "ERROR");

    c->err_code = code;
    if (n > 0 && (size_t)n < sizeof c->err_text)
        vsnprintf(c->err_text + n, sizeof c->err_text - (size_t)n, fmt, ap);
    /* A reply text is a shortstr: RabbitMQ cuts a longer one to 252 octets and "...". */
    if (strlen(c->err_text) > 255)
        memcpy(c->err_text + 252, "...", 4);
    return -1;
}

int conn_failf(struct conn *c, uint16_t code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conn_fail(c, code, fmt, ap);
    va_end(ap);
    return -1;
}

void conn_close_with(struct conn *c, uint16_t code, const char *text, uint32_t method_id)
{
    struct wire_connection_close m = {
        .reply_code = code,
        .reply_text = wire_cstr(text),
        .class_id = (uint16_t)WIRE_METHOD_CLASS(method_id),
        .method_id = (uint16_t)WIRE_METHOD_INDEX(method_id),
    };

    if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
        return;
    if (code != WIRE_CONNECTION_FORCED)
        log_warn(&c->log, "closing connection: %s", text);
    else
        log_info(&c->log, "closing connection: %s", text);
    conn_send_method(c, 0, WIRE_CONNECTION_CLOSE, &m);
    c->state = CONN_CLOSING;
    c->deadline_ms = now_ms() + CLOSE_OK_WAIT_MS;
    free_channels(c);
    if (c->fd >= 0) {
        ev_timer_stop(c->srv->loop, &c->timer);
        ev_timer_set(&c->timer, CLOSE_OK_WAIT_MS / 1000.0, 0.);
        ev_timer_start(c->srv->loop, &c->timer);
    }
}

/* We have said our last word: close once the output is written. */
void conn_close_after_flush(struct conn *c)
{
    c->state = CONN_CLOSING;
    c->deadline_ms = 0;
    free_channels(c);
    server_want_flush(c->srv, c);
}

/* RabbitMQ quotes the octets of a bad frame as an Erlang binary: <<0,20,0,10,0>>. */
static const char *octets(struct wire_bytes b, char *out, size_t out_size)
{
    struct erl_out o = {.buf = out, .size = out_size};
    erl_out_binary(&o, b);
    return out;
}

int conn_method_error(struct conn *c, struct wire_bytes payload, int rc)
{
    char text[200];

    if (rc == WIRE_ERR_COMMAND_INVALID && payload.len >= 4) {
        /* RabbitMQ 3.10 drops the socket without a word here (its connection process
         * crashes); Warren says what was wrong. */
        return conn_failf(c, WIRE_NOT_IMPLEMENTED, "unknown method: class %u, method %u",
                    (unsigned)(payload.ptr[0] << 8 | payload.ptr[1]),
                    (unsigned)(payload.ptr[2] << 8 | payload.ptr[3]));
    }
    if (payload.len >= 4) {
        payload.ptr += 4;
        payload.len -= 4;
    }
    return conn_failf(c, WIRE_FRAME_ERROR, "cannot decode %s", octets(payload, text, sizeof text));
}

/* A frame error as RabbitMQ words it: "type T, all octets = <<...>>: Error", or "first 16
 * octets" when the payload is longer, laid out as its io_lib:format ~p does (a binary or the
 * error tuple that would pass column 80 is broken over lines). The error is error_head, or
 * the tuple error_head followed by error_tail, which may go on the next line. */
static void frame_fail(struct conn *c, uint8_t type, struct wire_bytes payload,
                       const char *error_head, const char *error_tail)
{
    char text[512], head[48];
    struct erl_out o = {.buf = text, .size = sizeof text};
    bool all = payload.len <= 16;
    const char *line;
    size_t col;

    if (!all)
        payload.len = 16;
    snprintf(head, sizeof head, "type %u, %s octets = ", type, all ? "all" : "first 16");
    erl_out_str(&o, head);
    erl_out_binary_at(&o, payload, strlen(head));
    erl_out_str(&o, ": ");
    line = strrchr(text, '\n');
    col = strlen(line ? line + 1 : text);
    erl_out_str(&o, error_head);
    /* Read off RabbitMQ 3.10: the tuple stays on the line if it ends before column 79. */
    if (error_tail[0] != '\0' && col + strlen(error_head) + strlen(error_tail) >= 79) {
        erl_out_str(&o, "\n");
        for (size_t k = 0; k <= col; k++)
            erl_out_str(&o, " ");
    }
    erl_out_str(&o, error_tail);
    conn_failf(c, WIRE_FRAME_ERROR, "%s", text);
}

static void bad_frame_end(struct conn *c, uint8_t type, struct wire_bytes payload, uint8_t end)
{
    char tail[8];

    snprintf(tail, sizeof tail, "%u}", end);
    frame_fail(c, type, payload, "{invalid_frame_end_marker,", tail);
}

/* The frame at the front of buf failed to parse: say why, as RabbitMQ words it. */
static void frame_error(struct conn *c, const uint8_t *buf, size_t len)
{
    struct wire_reader r = wire_reader_init(buf, len);
    struct wire_bytes payload = {0};
    uint8_t type = 0, end = 0;
    uint16_t channel;
    uint32_t size = 0;

    wire_u8(&r, &type);
    wire_u16(&r, &channel);
    wire_u32(&r, &size);
    if (c->frame_max != 0 && size > c->frame_max) {
        conn_failf(c, WIRE_FRAME_ERROR, "type %u, all octets = <<>>: {frame_too_large,%u,%u}", type,
             size, c->frame_max - WIRE_FRAME_OVERHEAD);
        return;
    }
    wire_bytes(&r, size, &payload); /* the parser saw all of it */
    wire_u8(&r, &end);
    if (end != WIRE_FRAME_END)
        bad_frame_end(c, type, payload, end);
    else
        frame_fail(c, type, payload, "unknown_frame", "");
}

/* ---- Channel 0 and channel frames ------------------------------------------------------ */

static int expect(struct conn *c, const struct wire_method *m, uint32_t id)
{
    const struct wire_method_info *got = wire_method_info(m->id);
    const struct wire_method_info *want = wire_method_info(id);

    if (m->id == id)
        return 0;
    return conn_failf(c, WIRE_COMMAND_INVALID, "expected '%s', got '%s'", want->name,
                got ? got->name : "unknown");
}

static int handle_channel0(struct conn *c, const struct wire_frame *f, uint32_t *method_id)
{
    struct wire_method m;
    int rc;

    if (f->type == WIRE_FRAME_HEARTBEAT)
        return 0;
    if (f->type != WIRE_FRAME_METHOD) {
        char text[200];
        return conn_failf(c, WIRE_UNEXPECTED_FRAME, "type %u, all octets = %s", f->type,
                    octets(f->payload, text, sizeof text));
    }
    rc = wire_method_decode(f->payload, &m);
    *method_id = m.id;
    if (rc != WIRE_OK)
        return conn_method_error(c, f->payload, rc);

    switch (c->state) {
    case CONN_AWAIT_START_OK:
        if (expect(c, &m, WIRE_CONNECTION_START_OK) != 0)
            return -1;
        return conn_handle_start_ok(c, &m.u.connection_start_ok);
    case CONN_AWAIT_SECURE_OK:
        if (expect(c, &m, WIRE_CONNECTION_SECURE_OK) != 0)
            return -1;
        return conn_handle_secure_ok(c, &m.u.connection_secure_ok);
    case CONN_AWAIT_TUNE_OK:
        if (expect(c, &m, WIRE_CONNECTION_TUNE_OK) != 0)
            return -1;
        return conn_handle_tune_ok(c, &m.u.connection_tune_ok);
    case CONN_AWAIT_OPEN:
        if (expect(c, &m, WIRE_CONNECTION_OPEN) != 0)
            return -1;
        return conn_handle_open(c, &m.u.connection_open);
    case CONN_CLOSING:
        /* Waiting for close-ok: a close from the client crosses ours; answer it. */
        if (m.id == WIRE_CONNECTION_CLOSE_OK) {
            conn_abort(c);
        } else if (m.id == WIRE_CONNECTION_CLOSE) {
            conn_send_method(c, 0, WIRE_CONNECTION_CLOSE_OK, &(struct wire_connection_close_ok){0});
            c->deadline_ms = 0;
        }
        return 0;
    default:
        break;
    }
    switch (m.id) {
    case WIRE_CONNECTION_CLOSE:
        log_info(&c->log, "client closed the connection");
        conn_send_method(c, 0, WIRE_CONNECTION_CLOSE_OK, &(struct wire_connection_close_ok){0});
        conn_close_after_flush(c);
        return 0;
    case WIRE_CONNECTION_CLOSE_OK:
        return 0;
    case WIRE_CONNECTION_UPDATE_SECRET:
        return conn_handle_update_secret(c, &m.u.connection_update_secret);
    default:
        return conn_failf(c, WIRE_CHANNEL_ERROR, "unexpected method in connection state running");
    }
}

static struct channel *channel_get(const struct conn *c, uint16_t id)
{
    return id < c->channels_cap ? c->channels[id] : NULL;
}

static int open_channel(struct conn *c, const struct wire_frame *f)
{
    struct wire_method m;

    if (f->type != WIRE_FRAME_METHOD || wire_method_decode(f->payload, &m) != WIRE_OK ||
        m.id != WIRE_CHANNEL_OPEN)
        return conn_failf(c, WIRE_CHANNEL_ERROR, "expected 'channel.open'");
    if (c->channel_count >= c->channel_max || f->channel > c->channel_max)
        return conn_failf(c, WIRE_NOT_ALLOWED,
                    "number of channels opened (%u) has reached the negotiated channel_max (%u)",
                    c->channel_count, c->channel_max);
    {
        const struct auth_user *au = auth_user_find(c->srv->auth, wire_cstr(c->log.user));
        if (au != NULL && au->max_channels >= 0 &&
            server_user_channels(c->srv, c->log.user) >= (uint64_t)au->max_channels)
            return conn_failf(c, WIRE_NOT_ALLOWED,
                        "number of channels opened for user '%s' has reached the maximum allowed "
                        "user limit of (%lld)",
                        c->log.user, (long long)au->max_channels);
    }
    if (f->channel >= c->channels_cap) {
        uint32_t cap = c->channels_cap ? c->channels_cap : 8;
        while (cap <= f->channel)
            cap *= 2;
        c->channels = xrealloc(c->channels, cap * sizeof *c->channels);
        memset(c->channels + c->channels_cap, 0, (cap - c->channels_cap) * sizeof *c->channels);
        c->channels_cap = cap;
    }
    c->channels[f->channel] = channel_new(c, f->channel);
    c->channel_count++;
    conn_send_method(c, f->channel, WIRE_CHANNEL_OPEN_OK, &(struct wire_channel_open_ok){0});
    return 0;
}

static void drop_channel(struct conn *c, uint16_t id)
{
    struct channel *ch = c->channels[id];

    c->channels[id] = NULL;
    c->channel_count--;
    channel_free(ch);
}

/* Peeks at the method id of a method frame without decoding its arguments. */
static uint32_t frame_method_id(const struct wire_frame *f)
{
    struct wire_reader r = wire_reader_init(f->payload.ptr, f->payload.len);
    uint16_t cls = 0, mth = 0;

    if (f->type != WIRE_FRAME_METHOD || !wire_u16(&r, &cls) || !wire_u16(&r, &mth))
        return 0;
    return WIRE_METHOD_ID(cls, mth);
}

static int handle_channel_frame(struct conn *c, const struct wire_frame *f, uint32_t *method_id)
{
    struct channel *ch = channel_get(c, f->channel);
    uint32_t id = frame_method_id(f);

    *method_id = id;
    if (c->state != CONN_OPEN)
        return conn_failf(c, WIRE_CHANNEL_ERROR, "expected 'channel.open'");
    if (f->type == WIRE_FRAME_HEARTBEAT) {
        *method_id = 0;
        return conn_failf(c, WIRE_UNEXPECTED_FRAME, "type 8, all octets = <<>>");
    }
    if (ch == NULL)
        return open_channel(c, f);
    if (ch->state == CHANNEL_CLOSING) {
        /* After our channel.close, only close-ok (or a crossing close) means anything. */
        if (id == WIRE_CHANNEL_CLOSE_OK) {
            drop_channel(c, f->channel);
        } else if (id == WIRE_CHANNEL_CLOSE) {
            conn_send_method(c, f->channel, WIRE_CHANNEL_CLOSE_OK,
                             &(struct wire_channel_close_ok){0});
            drop_channel(c, f->channel);
        }
        return 0;
    }
    if (ch->content == CONTENT_NONE) {
        switch (id) {
        case WIRE_CHANNEL_OPEN:
            return conn_failf(c, WIRE_CHANNEL_ERROR, "second 'channel.open' seen");
        case WIRE_CHANNEL_CLOSE:
            drop_channel(c, f->channel);
            conn_send_method(c, f->channel, WIRE_CHANNEL_CLOSE_OK,
                             &(struct wire_channel_close_ok){0});
            return 0;
        case WIRE_CHANNEL_CLOSE_OK:
            return 0;
        default:
            break;
        }
        if (id != 0 && WIRE_METHOD_CLASS(id) == WIRE_CLASS_CONNECTION)
            return conn_failf(c, WIRE_COMMAND_INVALID, "connection methods are only valid on channel 0");
    }
    /* RabbitMQ reports content errors against the publish being assembled, and a content
     * frame that belongs to no publish against nothing (0, 0). */
    if (ch->content != CONTENT_NONE)
        *method_id = WIRE_BASIC_PUBLISH;
    else if (f->type != WIRE_FRAME_METHOD)
        *method_id = 0;
    return channel_handle_frame(ch, f);
}

/* A frame's handler failed: a soft error closes the channel, a hard one the connection. */
void conn_report_error(struct conn *c, uint16_t channel, uint32_t method_id)
{
    struct channel *ch = channel ? channel_get(c, channel) : NULL;

    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_AWAIT_START_OK || c->state == CONN_AWAIT_SECURE_OK) {
        /* Before connection.tune RabbitMQ closes the socket without a word; so do we. */
        log_warn(&c->log, "closing connection during the handshake: %s", c->err_text);
        conn_close_after_flush(c);
        return;
    }
    if (ch == NULL || wire_reply_code_is_hard(c->err_code)) {
        conn_close_with(c, c->err_code, c->err_text, method_id);
        return;
    }
    log_warn(&c->log, "channel %u error: %s", channel, c->err_text);
    {
        struct wire_channel_close m = {
            .reply_code = c->err_code,
            .reply_text = wire_cstr(c->err_text),
            .class_id = (uint16_t)WIRE_METHOD_CLASS(method_id),
            .method_id = (uint16_t)WIRE_METHOD_INDEX(method_id),
        };
        conn_send_method(c, channel, WIRE_CHANNEL_CLOSE, &m);
    }
    /* The channel's consumers and unacked messages go now; the struct stays until close-ok. */
    {
        struct channel *fresh = channel_new(c, channel);
        fresh->state = CHANNEL_CLOSING;
        c->channels[channel] = fresh;
        channel_free(ch);
    }
}

static void handle_frame(struct conn *c, const struct wire_frame *f)
{
    uint32_t method_id = 0;
    int rc;

    c->err_code = 0;
    if (f->channel == 0)
        rc = handle_channel0(c, f, &method_id);
    else
        rc = handle_channel_frame(c, f, &method_id);
    if (rc != 0)
        conn_report_error(c, f->channel, method_id);
}

/* ---- Large body frames, read straight into their message --------------------------------- */

/* The frame at in + off is incomplete. If it is a large body frame of the publish its channel
 * is assembling, the rest of its payload is read into the message itself instead of the read
 * buffer (saving a copy of every byte, and the move of a partial frame to the buffer's front).
 * What already arrived goes there now; in keeps the bytes before the frame. */
static void body_in_begin(struct conn *c, size_t off)
{
    struct wire_reader r = wire_reader_init(c->in + off, c->in_len - off);
    struct channel *ch;
    struct message *m;
    uint32_t size;
    uint16_t channel;
    uint8_t type;

    if (c->state != CONN_OPEN || !wire_u8(&r, &type) || type != WIRE_FRAME_BODY ||
        !wire_u16(&r, &channel) || !wire_u32(&r, &size))
        return;
    /* The parser checked size against frame_max already; a frame whose payload is all here
     * waits for its end octet the usual way. */
    if (size < BODY_IN_MIN || wire_left(&r) >= size)
        return;
    ch = channel_get(c, channel);
    if (ch == NULL || ch->state != CHANNEL_OPEN || ch->content != CONTENT_BODY)
        return;
    m = ch->pub_msg;
    if (size > m->body_size - m->body_received)
        return; /* too long for the body: the channel refuses it when it is all read */
    c->body_in.msg = message_ref(m);
    c->body_in.dst = m->body + m->body_received;
    c->body_in.len = size;
    c->body_in.got = (uint32_t)wire_left(&r);
    c->body_in.channel = channel;
    memcpy(c->body_in.dst, r.pos, c->body_in.got);
    c->in_len = off;
}

/* Takes up to n bytes of the payload being read into a message; returns how many. */
static size_t body_in_take(struct conn *c, const uint8_t *data, size_t n)
{
    size_t want = c->body_in.len - c->body_in.got;

    if (n > want)
        n = want;
    memcpy(c->body_in.dst + c->body_in.got, data, n);
    c->body_in.got += (uint32_t)n;
    return n;
}

/* The payload is all in the message and its frame-end octet at the front of in: the frame is
 * handled as if it had been parsed from the buffer (message_append_body sees that the bytes
 * are in place already). Returns how many bytes of in it used. */
static size_t body_in_finish(struct conn *c)
{
    struct wire_frame f = {.type = WIRE_FRAME_BODY, .channel = c->body_in.channel,
                           .payload = {.ptr = c->body_in.dst, .len = c->body_in.len}};
    struct message *m = c->body_in.msg;
    size_t used = 1;

    c->body_in.msg = NULL;
    if (c->in[0] != WIRE_FRAME_END) {
        bad_frame_end(c, WIRE_FRAME_BODY, f.payload, c->in[0]);
        conn_report_error(c, 0, 0);
        used = c->in_len; /* nothing after a broken frame can be trusted */
    } else {
        handle_frame(c, &f);
    }
    message_unref(m);
    return used;
}

static void process_input(struct conn *c)
{
    size_t off = 0;

    if (c->discarding) {
        c->in_len = 0;
        return;
    }

    if (c->body_in.msg != NULL) {
        if (c->body_in.got < c->body_in.len || c->in_len == 0)
            return;
        off = body_in_finish(c);
    }
    if (c->state == CONN_AWAIT_HEADER) {
        int rc = wire_protocol_header_check(c->in, c->in_len);
        if (rc == WIRE_NEED_MORE)
            return;
        if (rc != WIRE_OK) {
            /* As RabbitMQ: answer a wrong protocol header with ours, then close. */
            log_warn(&c->log, "unsupported protocol header; closing connection");
            outbuf_put(&c->out, wire_protocol_header, sizeof wire_protocol_header);
            conn_close_after_flush(c);
            c->in_len = 0;
            return;
        }
        off = sizeof wire_protocol_header;
        conn_send_start(c);
    }
    while (c->state != CONN_CLOSED && off < c->in_len) {
        struct wire_frame f;
        size_t used = 0;
        int rc = wire_frame_parse(c->in + off, c->in_len - off, c->frame_max, &f, &used);

        if (rc == WIRE_NEED_MORE) {
            body_in_begin(c, off);
            break;
        }
        if (rc != WIRE_OK) {
            if (c->state == CONN_CLOSING) {
                c->discarding = true;
                off = c->in_len;
                break;
            }
            frame_error(c, c->in + off, c->in_len - off);
            conn_report_error(c, 0, 0);
            off = c->in_len; /* nothing after a broken frame can be trusted */
            break;
        }
        off += used;
        handle_frame(c, &f);
    }
    if (c->state == CONN_CLOSED)
        return;
    if (c->block_pending)
        block(c, c->srv->alarms);
    if (c->confirms_pending) {
        c->confirms_pending = false;
        for (uint32_t i = 0; i < c->channels_cap; i++) {
            if (c->channels[i] != NULL && c->channels[i]->state == CHANNEL_OPEN)
                channel_flush_confirms(c->channels[i]);
        }
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

void conn_feed(struct conn *c, const uint8_t *data, size_t len)
{
    while (len > 0 && c->state != CONN_CLOSED) {
        size_t room, n;
        if (c->body_in.msg != NULL && c->body_in.got < c->body_in.len) {
            n = body_in_take(c, data, len);
            data += n;
            len -= n;
            continue;
        }
        if (c->in_cap - c->in_len < READ_CHUNK) {
            c->in_cap = c->in_len + READ_CHUNK;
            c->in = xrealloc(c->in, c->in_cap);
        }
        room = c->in_cap - c->in_len;
        n = len < room ? len : room;
        memcpy(c->in + c->in_len, data, n);
        c->in_len += n;
        data += n;
        len -= n;
        process_input(c);
    }
}

/* Reads what the socket has: into in, or while a large body frame is being read, its payload
 * into the message and whatever follows it into in, in one readv. */
static ssize_t read_input(struct conn *c)
{
    struct iovec iov[2];
    ssize_t n;
    size_t took;

    if (c->body_in.msg == NULL || c->body_in.got == c->body_in.len) {
        n = transport_read(c, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0)
            c->in_len += (size_t)n;
        return n;
    }
    iov[0] = (struct iovec){.iov_base = c->body_in.dst + c->body_in.got,
                            .iov_len = c->body_in.len - c->body_in.got};
    /* Only a little of what follows: if it is the next large frame, its payload should go
     * to its message too, not through in. */
    iov[1] = (struct iovec){.iov_base = c->in + c->in_len, .iov_len = c->in_cap - c->in_len};
    if (iov[1].iov_len > BODY_IN_TAIL)
        iov[1].iov_len = BODY_IN_TAIL;
    n = c->tls ? transport_read(c, iov[0].iov_base, iov[0].iov_len) : readv(c->fd, iov, 2);
    if (n > 0) {
        took = (size_t)n < iov[0].iov_len ? (size_t)n : iov[0].iov_len;
        c->body_in.got += (uint32_t)took;
        c->in_len += (size_t)n - took;
    }
    return n;
}

/* A peer of server_is_proxy_peer() may start with a PROXY v1 header naming the client it
 * relays; a client on that host may also connect directly, without one (its first byte is
 * then an AMQP protocol header's 'A', or a TLS record's 0x16, never a 'P'). The header comes
 * off the socket before anything else reads it, TLS included (a follower relays AMQPS bytes
 * untouched, after the header), and not a byte past its CRLF is taken: the bytes are peeked
 * first, and only those up to the line's end are read. Returns 1 when the socket holds the
 * client's own bytes from here, 0 to wait for more, -1 if the connection was closed. */
static int read_proxy_header(struct conn *c)
{
    uint8_t peek[PROXY_HEADER_MAX];
    struct proxy_header h;
    const uint8_t *lf;
    const char *why;
    size_t take;
    ssize_t n;
    int rc;

    do
        n = recv(c->fd, peek, sizeof peek - c->proxy_header_len, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n <= 0) {
        log_debug(&c->log, "socket closed before the PROXY header: %s",
                  n == 0 ? "end of stream" : strerror(errno));
        conn_abort(c);
        return -1;
    }
    if (c->proxy_header_len == 0 && peek[0] != 'P') {
        c->proxy_header_pending = false;
        return 1;
    }
    lf = memchr(peek, '\n', (size_t)n);
    take = lf != NULL ? (size_t)(lf - peek) + 1 : (size_t)n;
    if (recv(c->fd, c->proxy_header + c->proxy_header_len, take, 0) != (ssize_t)take) {
        log_warn(&c->log, "reading the PROXY header failed: %s; closing connection",
                 strerror(errno));
        conn_abort(c);
        return -1;
    }
    c->proxy_header_len = (uint8_t)(c->proxy_header_len + take);
    rc = proxy_header_parse(c->proxy_header, c->proxy_header_len, &h, &why);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        log_warn(&c->log, "malformed PROXY protocol header: %s; closing connection", why);
        conn_abort(c);
        return -1;
    }
    c->proxy_header_pending = false;
    c->last_read_ms = now_ms();
    if (h.known) {
        /* From here the client is who the header says: in log lines, the management API
         * and loopback_users alike. UNKNOWN keeps the connection's own address. */
        char via[sizeof c->log.peer];
        memcpy(via, c->log.peer, sizeof via);
        format_peer((const struct sockaddr *)&h.src, c->log.peer, sizeof c->log.peer,
                    &c->is_loopback);
        log_debug(&c->log, "client relayed by %s (PROXY header)", via);
    }
    return 1;
}

/* Reads what the socket has and handles it; the connection may be closed afterwards. */
static void read_socket(struct conn *c)
{
    struct ev_loop *loop = c->srv->loop;
    ssize_t n;
    int err;

    if (c->proxy_header_pending && read_proxy_header(c) <= 0)
        return;

    /* Room for at least one chunk, and for the whole frame being assembled. */
    if (c->in_cap - c->in_len < READ_CHUNK) {
        size_t cap = c->in_len + READ_CHUNK;
        if (c->frame_max && cap < (size_t)c->frame_max + READ_CHUNK)
            cap = (size_t)c->frame_max + READ_CHUNK;
        c->in = xrealloc(c->in, cap);
        c->in_cap = cap;
    }
    n = read_input(c);
    err = errno;
    if (c->tls != NULL && !c->tls_established && tls_conn_established(c->tls))
        tls_handshake_done(c);
    errno = err;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (c->tls != NULL && tls_conn_want_write(c->tls))
            ev_io_start(loop, &c->write_watcher);
        return;
    }
    if (n <= 0) {
        if (n < 0 && c->tls != NULL)
            log_warn(&c->log, "%s; closing connection", tls_conn_error(c->tls));
        else if (c->state == CONN_OPEN || c->state == CONN_AWAIT_OPEN)
            log_warn(&c->log, "client unexpectedly closed TCP connection");
        else
            log_debug(&c->log, "socket closed");
        conn_abort(c);
        return;
    }
    c->last_read_ms = now_ms();
    process_input(c);
    if (c->state == CONN_CLOSED)
        return;
    /* Decrypted bytes waiting inside OpenSSL do not make the socket readable. */
    if (c->tls != NULL && tls_conn_pending(c->tls))
        ev_feed_event(loop, &c->read_watcher, EV_READ);
    if (c->tls != NULL && outbuf_pending(&c->out) > 0)
        server_want_flush(c->srv, c);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, read_watcher);
    struct server *s = c->srv;
    uint64_t before = cluster_position(s->cluster), after;

    (void)loop;
    (void)revents;
    read_socket(c);
    /* A cluster leader: what the client sent changed the definitions log (a durable declare,
     * bind, delete ...; messages are written at the end of the turn): the replies wait until
     * every in-sync follower has the change, so that a declare-ok outlives a failover. */
    if (s->cluster != NULL && (after = cluster_position(s->cluster)) != before &&
        c->state != CONN_CLOSED) {
        c->hold_position = after;
        s->conns_held = true;
    }
}

/* The timer found a deadline passed. After a stall of the loop (a slow disk, swapping, a
 * stopped process) the timer can run before the socket's readiness is handled, with the
 * peer's bytes, heartbeats or the rest of its handshake, waiting unread in the socket:
 * those are read first, so that the peer is judged on what it sent, not on when we looked.
 * A blocked publisher's socket stays unread. Returns false if the connection closed. */
static bool read_before_judging(struct conn *c)
{
    if (c->blocked || c->fd < 0)
        return true;
    read_socket(c);
    return c->state != CONN_CLOSED;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = container_of(w, struct conn, timer);
    uint64_t now = now_ms();

    (void)loop;
    (void)revents;
    if (c->state == CONN_CLOSING) {
        log_debug(&c->log, "no close-ok from the client; dropping the connection");
        conn_abort(c);
        return;
    }
    if (c->state != CONN_OPEN) {
        /* Closed; or open (handle_open set the heartbeat timer); or the read ended the TLS
         * handshake, which restarted this one-shot timer for the AMQP handshake. */
        if (!read_before_judging(c) || c->state == CONN_OPEN || ev_is_active(&c->timer))
            return;
        log_warn(&c->log, "handshake timeout: closing connection");
        conn_abort(c);
        return;
    }
    if (c->heartbeat_s == 0)
        return;
    /* A peer silent for two heartbeat intervals is gone; a blocked one is not being read. */
    if (c->blocked)
        c->last_read_ms = now;
    if (now - c->last_read_ms > 2000u * c->heartbeat_s) {
        if (!read_before_judging(c) || c->state != CONN_OPEN)
            return; /* closed, or closing after what it read */
        now = now_ms();
    }
    if (now - c->last_read_ms > 2000u * c->heartbeat_s) {
        log_warn(&c->log, "missed heartbeats from client, timeout: %us", c->heartbeat_s);
        conn_abort(c);
        return;
    }
    if (now - c->last_write_ms >= 500u * c->heartbeat_s) {
        outbuf_reserve(&c->out, WIRE_FRAME_OVERHEAD);
        {
            struct wire_writer wr = outbuf_writer(&c->out);
            wire_frame_put_heartbeat(&wr);
            outbuf_commit(&c->out, &wr);
        }
        server_want_flush(c->srv, c);
    }
}

void conn_check_ack_timeouts(struct conn *c, uint64_t now, uint32_t timeout_ms)
{
    if (c->state != CONN_OPEN)
        return;
    for (uint32_t i = 0; i < c->channels_cap; i++) {
        struct channel *ch = c->channels[i];
        if (ch == NULL || !channel_ack_overdue(ch, now, timeout_ms))
            continue;
        /* As RabbitMQ: the channel is closed with 406 and its deliveries requeued. */
        channel_fail(ch, WIRE_PRECONDITION_FAILED,
                     "delivery acknowledgement on channel %u timed out. Timeout value used: %u "
                     "ms. This timeout value can be configured, see consumers doc guide to learn "
                     "more",
                     ch->id, timeout_ms);
        conn_report_error(c, ch->id, 0);
    }
}
