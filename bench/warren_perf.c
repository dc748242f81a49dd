/* warren-perf: a load generator for AMQP 0-9-1 brokers in the manner of RabbitMQ's PerfTest.
 *
 * Producers and consumers are threads with a TCP connection each. They speak AMQP through
 * Warren's own codec (amqp/), not through a client library, so that the tool is not what
 * limits the figures: a producer encodes its publish frames once, stamps the send time into
 * each body and writes batches of 64 KiB; a consumer parses deliveries out of 256 KiB reads.
 * Latency is the time from the stamp to the arrival of the body (monotonic clock, so producer
 * and consumer must run on the same machine), kept in a log-linear histogram.
 *
 * The result is one line on stdout, "result key=value ...", for scripts (bench/compare), and a
 * summary on stderr for people. On any refusal by the broker the tool stops, prints
 * "error scenario=... reason=..." on stdout and the reason on stderr, and exits 1. */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/perf_conn.h"
#include "bench/perf_hist.h"
#include "bench/perf_sink.h"

#define BATCH_BYTES     (64u * 1024u) /* a producer writes this much per batch */
#define STAMP_BYTES     16u           /* send time (8) and run id (8) at the front of a body */
#define DRAIN_IDLE_NS   (10ull * 1000000000ull) /* count mode: give up after 10 s of silence */
#define DEFAULT_SECONDS 10
#define MAX_WORKERS     4096

struct options {
    const char *host;
    const char *port;
    const char *user;
    const char *password;
    const char *queue;
    const char *exchange; /* --fanout: the exchange's name */
    const char *scenario;
    int producers;
    int consumers;
    bool consumers_set;
    size_t body_bytes;
    double rate; /* per producer, msgs/s; 0: unlimited */
    double seconds;
    uint64_t producer_count; /* -C: messages per producer, 0: no limit */
    uint64_t consumer_count; /* -D: messages per consumer, 0: no limit */
    int queues;
    int fanout; /* 0: publish to queues through the default exchange */
    bool persistent;
    uint32_t confirm_window; /* 0: no publisher confirms */
    uint16_t prefetch;
    bool autoack;
    uint32_t ack_every;
    bool sink;
    bool keep;
    bool quiet;
    long broker_pid; /* 0: the broker's CPU time is not sampled */
    bool stream;     /* --stream: the queues are streams (x-queue-type=stream, durable) */
    /* --stream-offset: x-stream-offset of the consumers: "first", "last", "next" (sent as
     * long strings) or a number (sent as a long, 'l'), plus index * stream_offset_step. */
    const char *stream_offset;
    bool stream_offset_numeric;
    int64_t stream_offset_base;
    int64_t stream_offset_step;
};

enum role { PRODUCER, CONSUMER };

struct worker {
    enum role role;
    int index;
    pthread_t thread;
    struct perf_conn conn;
    char queue[256]; /* the queue a consumer consumes, or a producer publishes to */

    atomic_uint_fast64_t msgs;    /* published in full, or received in full */
    atomic_uint_fast64_t last_ns; /* when the last message was sent or received */
    atomic_bool connected;
    atomic_bool done; /* reached its count (and, for a producer, the broker has everything) */
    bool abandon;     /* the connection is in no state for a polite close */

    /* Producers. */
    uint64_t confirmed;
    uint64_t nacked;

    /* Consumers. */
    struct perf_hist hist;
    /* Streams: the x-stream-offset header of the deliveries. */
    int64_t want_offset; /* the numeric offset asked for; -1 for first, last, next */
    int64_t first_offset; /* of the first delivery; -1 before it */
    int64_t last_offset;
    /* Deliveries whose offset is past the previous one + 1 (RabbitMQ's streams skip the
     * offset of the chunk that starts each segment), the offsets so skipped, and the first
     * such jump (the previous offset and this one). */
    uint64_t offset_gaps, offsets_skipped;
    int64_t gap_prev, gap_got;
    /* Deliveries whose offset is not past the previous one: repeated or out of order. */
    uint64_t offset_backwards;
    int64_t back_prev, back_got;
    uint64_t offset_missing; /* deliveries without the header */
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = "5672",
    .user = "guest",
    .password = "guest",
    .queue = "warren-perf",
    .scenario = "custom",
    .producers = 1,
    .consumers = 1,
    .body_bytes = 16,
    .queues = 1,
    .ack_every = 1,
};

static struct worker *workers[MAX_WORKERS];
static int nworkers;
static uint64_t run_id;  /* marks the bodies of this run, so stale messages are not timed */
static atomic_bool go;   /* producers start publishing */
static atomic_bool stop; /* every worker winds up */
static atomic_bool failed;
static uint64_t start_ns; /* when the producers were let go: per-consumer rates count from it */
static char failure[600];
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *role_name(enum role r)
{
    return r == PRODUCER ? "producer" : "consumer";
}

/* The first failure stops the run; later ones (the other workers being torn down) are not
 * the cause and are not reported. */
static void fail(const char *who, int index, const char *why)
{
    pthread_mutex_lock(&failure_lock);
    if (!atomic_load(&failed)) {
        if (index >= 0)
            snprintf(failure, sizeof failure, "%s %d: %s", who, index, why);
        else
            snprintf(failure, sizeof failure, "%s: %s", who, why);
        atomic_store(&failed, true);
    }
    pthread_mutex_unlock(&failure_lock);
    atomic_store(&stop, true);
}

static void worker_fail(struct worker *w)
{
    fail(role_name(w->role), w->index, w->conn.error);
}

static void queue_name(int i, char *out, size_t n)
{
    if (opt.queues == 1)
        snprintf(out, n, "%s", opt.queue);
    else
        snprintf(out, n, "%s-%d", opt.queue, i);
}

/* ---- Producers ------------------------------------------------------------------------ */

/* A batch of identical publishes (method, header, body frames), encoded once; only the
 * stamp in each body changes from one batch to the next. */
struct batch {
    uint8_t *bytes;
    size_t msg_bytes; /* one message's frames */
    size_t body_off;  /* where the first body frame's payload starts, inside one message */
    size_t count;     /* messages in the batch */
};

static void encode_message(struct wire_writer *w, const struct worker *p, uint32_t frame_max)
{
    struct wire_basic_publish pub = {
        .exchange = opt.fanout ? wire_cstr(opt.exchange) : wire_cstr(""),
        .routing_key = opt.fanout ? wire_cstr("") : wire_cstr(p->queue),
    };
    struct wire_content_header h = {
        .class_id = WIRE_CLASS_BASIC,
        .body_size = opt.body_bytes,
        .props = {.flags = WIRE_PROP_DELIVERY_MODE, .delivery_mode = opt.persistent ? 2 : 1},
    };
    static const uint8_t zeros[4096];

    wire_frame_put_method(w, 1, WIRE_BASIC_PUBLISH, &pub);
    wire_frame_put_header(w, 1, &h);
    /* The body is zeros but for the stamp, patched per batch. */
    for (size_t off = 0, room = frame_max ? frame_max - WIRE_FRAME_OVERHEAD : SIZE_MAX;
         off < opt.body_bytes;) {
        size_t n = opt.body_bytes - off < room ? opt.body_bytes - off : room;
        size_t begin = wire_frame_begin(w, WIRE_FRAME_BODY, 1);

        for (size_t left = n; left > 0;) {
            size_t k = left < sizeof zeros ? left : sizeof zeros;
            wire_put_bytes(w, zeros, k);
            left -= k;
        }
        wire_frame_end(w, begin);
        off += n;
    }
}

static void batch_init(struct batch *b, const struct worker *p, uint32_t frame_max)
{
    uint8_t probe[1];
    struct wire_writer w = wire_writer_init(probe, 0);
    struct wire_basic_publish pub = {
        .exchange = opt.fanout ? wire_cstr(opt.exchange) : wire_cstr(""),
        .routing_key = opt.fanout ? wire_cstr("") : wire_cstr(p->queue),
    };

    /* A writer with no room counts what it would write: one message's size. */
    encode_message(&w, p, frame_max);
    b->msg_bytes = wire_writer_used(&w);
    w = wire_writer_init(probe, 0);
    wire_frame_put_method(&w, 1, WIRE_BASIC_PUBLISH, &pub);
    {
        struct wire_content_header h = {.class_id = WIRE_CLASS_BASIC,
                                        .body_size = opt.body_bytes,
                                        .props = {.flags = WIRE_PROP_DELIVERY_MODE}};
        wire_frame_put_header(&w, 1, &h);
    }
    b->body_off = wire_writer_used(&w) + WIRE_FRAME_HEADER_SIZE;

    b->count = BATCH_BYTES / b->msg_bytes;
    if (b->count == 0)
        b->count = 1;
    b->bytes = malloc(b->count * b->msg_bytes);
    if (b->bytes == NULL) {
        fprintf(stderr, "warren-perf: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < b->count; i++) {
        w = wire_writer_init(b->bytes + i * b->msg_bytes, b->msg_bytes);
        encode_message(&w, p, frame_max);
    }
}

static void batch_stamp(struct batch *b, size_t n, uint64_t t)
{
    if (opt.body_bytes < STAMP_BYTES)
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t *body = b->bytes + i * b->msg_bytes + b->body_off;
        memcpy(body, &t, 8);
        memcpy(body + 8, &run_id, 8);
    }
}

/* Publisher confirms: which of the last confirm_window tags are still unconfirmed. A new
 * message may go out only while its tag is within the window of the oldest unconfirmed one,
 * which keeps at most confirm_window messages unconfirmed. */
struct confirms {
    uint8_t *pending; /* indexed by tag % window */
    uint32_t window;
    uint64_t published; /* tag of the last message published */
    uint64_t low;       /* every tag <= low is confirmed */
};

static void confirm_one(struct confirms *cf, struct worker *p, uint64_t tag, bool ack)
{
    uint8_t *slot = &cf->pending[tag % cf->window];

    if (*slot) {
        *slot = 0;
        if (ack)
            p->confirmed++;
        else
            p->nacked++;
    }
}

static int confirm_reply(struct confirms *cf, struct worker *p, uint64_t tag, bool multiple,
                         bool ack)
{
    if (tag > cf->published || (tag == 0 && !multiple)) {
        perf_conn_fail(&p->conn,
                       "the broker confirmed tag %" PRIu64 ", only %" PRIu64 " were published", tag,
                       cf->published);
        return -1;
    }
    if (multiple) {
        /* Tag 0 with multiple confirms everything outstanding. */
        uint64_t upto = tag == 0 ? cf->published : tag;
        for (uint64_t t = cf->low + 1; t <= upto; t++)
            confirm_one(cf, p, t, ack);
    } else if (tag > cf->low) {
        confirm_one(cf, p, tag, ack);
    }
    while (cf->low < cf->published && !cf->pending[(cf->low + 1) % cf->window])
        cf->low++;
    return 0;
}

/* Reads and handles what the broker sent a producer: confirms, closes, alarms. */
static int producer_input(struct worker *p, struct confirms *cf)
{
    struct wire_frame f;
    struct wire_method m;
    int rc;

    while ((rc = perf_conn_next_frame(&p->conn, &f)) == 1) {
        if (f.type != WIRE_FRAME_METHOD) {
            if (perf_conn_common(&p->conn, &f, NULL) < 0)
                return -1;
            continue; /* the content of a basic.return: we publish without mandatory */
        }
        if (wire_method_decode(f.payload, &m) != WIRE_OK) {
            perf_conn_fail(&p->conn, "undecodable method frame from the broker");
            return -1;
        }
        if (perf_conn_common(&p->conn, &f, &m) != 0) {
            if (p->conn.error[0] != '\0')
                return -1;
            continue;
        }
        if (m.id == WIRE_BASIC_ACK && cf->window) {
            if (confirm_reply(cf, p, m.u.basic_ack.delivery_tag, m.u.basic_ack.multiple, true))
                return -1;
        } else if (m.id == WIRE_BASIC_NACK && cf->window) {
            if (confirm_reply(cf, p, m.u.basic_nack.delivery_tag, m.u.basic_nack.multiple, false))
                return -1;
        }
    }
    return rc;
}

/* How many messages may go out now, and if none, how long to wait for the next (ns). */
static size_t producer_quota(const struct worker *p, const struct confirms *cf,
                             const struct batch *b, uint64_t sent, uint64_t start, uint64_t now,
                             uint64_t *wait_ns)
{
    uint64_t n = b->count;

    *wait_ns = 100000000; /* nothing else to wait for: look at the socket every 100 ms */
    if (opt.producer_count && opt.producer_count - sent < n)
        n = opt.producer_count - sent;
    if (opt.rate > 0) {
        /* Message k (from 0) is due at start + k / rate. */
        double elapsed = (double)(now - start) / 1e9;
        uint64_t due = (uint64_t)(elapsed * opt.rate) + 1;

        if (due <= sent) {
            double next = (double)sent / opt.rate - elapsed;
            *wait_ns = (uint64_t)(next * 1e9) + 1;
            return 0;
        }
        if (due - sent < n)
            n = due - sent;
    }
    if (cf->window) {
        uint64_t in_flight = cf->published - cf->low;
        uint64_t room = in_flight >= cf->window ? 0 : cf->window - in_flight;
        if (room < n)
            n = room;
    }
    if (p->conn.blocked)
        n = 0;
    return (size_t)n;
}

/* Waits until the broker has handled every publish sent so far: a round trip on the same
 * channel (basic.qos, harmless on a channel without consumers) returns after them. */
static int producer_sync(struct worker *p, struct confirms *cf)
{
    struct wire_method m;
    struct wire_basic_qos qos = {0};

    if (cf->window) {
        while (cf->low < cf->published && !atomic_load(&stop)) {
            if (perf_conn_wait(&p->conn, 100) < 0 || producer_input(p, cf) < 0)
                return -1;
        }
        return 0;
    }
    /* A broker may hold a long backlog of publishes in its buffers (RabbitMQ after a million
     * of them took more than 10 s to get through it): wait as long as it takes, up to 5 min. */
    return perf_conn_rpc_within(&p->conn, 1, WIRE_BASIC_QOS, &qos, WIRE_BASIC_QOS_OK, &m, 300000);
}

/* A batch cut short would leave half a frame on the wire, which the broker would take for a
 * framing error: finish writing it before the connection is closed, reading meanwhile so a
 * broker that writes to us cannot stall. A broker that takes nothing for 2 s gets the socket
 * closed under it. */
static int producer_finish_batch(struct worker *p, struct confirms *cf, const struct batch *b,
                                 size_t wpos, size_t wend)
{
    struct perf_conn *c = &p->conn;
    uint64_t deadline = now_ns() + 2000000000u;

    while (wpos < wend) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
        ssize_t k = send(c->fd, b->bytes + wpos, wend - wpos, MSG_NOSIGNAL);

        if (k > 0) {
            wpos += (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            perf_conn_fail(c, "write: %s", strerror(errno));
            return -1;
        }
        if (now_ns() > deadline) {
            p->abandon = true;
            return 0;
        }
        if (poll(&pfd, 1, 100) > 0 && (pfd.revents & POLLIN) &&
            (perf_conn_fill(c) < 0 || producer_input(p, cf) < 0))
            return -1;
    }
    return 0;
}

static int producer_run(struct worker *p)
{
    struct perf_conn *c = &p->conn;
    struct confirms cf = {.window = opt.confirm_window};
    struct batch b;
    size_t wpos = 0, wend = 0, inflight = 0; /* bytes and messages of the batch being written */
    uint64_t sent = 0, start;
    int rc = -1;

    batch_init(&b, p, c->frame_max);
    if (cf.window) {
        cf.pending = calloc(cf.window, 1);
        if (cf.pending == NULL)
            abort();
    }
    atomic_store(&p->connected, true);
    while (!atomic_load(&go)) {
        if (atomic_load(&stop))
            goto out;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    start = now_ns();

    while (!atomic_load(&stop)) {
        uint64_t wait_ns = 100000000, now;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

        if (producer_input(p, &cf) < 0)
            goto out;
        now = now_ns();
        if (wpos == wend) {
            size_t n;

            if (inflight) {
                sent += inflight;
                atomic_store_explicit(&p->msgs, sent, memory_order_relaxed);
                atomic_store_explicit(&p->last_ns, now, memory_order_relaxed);
                inflight = 0;
            }
            /* Control frames (close-ok ...) go out only between batches, never inside. */
            if (perf_conn_out_pending(c) && perf_conn_flush(c) < 0)
                goto out;
            if (opt.producer_count && sent == opt.producer_count)
                break;
            n = producer_quota(p, &cf, &b, sent, start, now, &wait_ns);
            if (n > 0) {
                batch_stamp(&b, n, now);
                for (size_t i = 0; i < n && cf.window; i++)
                    cf.pending[++cf.published % cf.window] = 1;
                wpos = 0;
                wend = n * b.msg_bytes;
                inflight = n;
            }
        }
        while (wpos < wend) {
            ssize_t k = send(c->fd, b.bytes + wpos, wend - wpos, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                perf_conn_fail(c, "write: %s", strerror(errno));
                goto out;
            }
            wpos += (size_t)k;
        }
        if (wpos == wend && inflight)
            continue; /* batch written: count it and start the next one */

        if (wpos < wend || perf_conn_out_pending(c))
            pfd.events |= POLLOUT;
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
        if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR) {
            perf_conn_fail(c, "poll: %s", strerror(errno));
            goto out;
        }
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && perf_conn_fill(c) < 0) {
            /* The broker's last words may be in what was read before the end. */
            char eof[sizeof c->error];
            snprintf(eof, sizeof eof, "%s", c->error);
            c->error[0] = '\0';
            if (producer_input(p, &cf) < 0)
                goto out;
            snprintf(c->error, sizeof c->error, "%s", eof);
            goto out;
        }
    }
    if (wpos < wend && producer_finish_batch(p, &cf, &b, wpos, wend) < 0)
        goto out;
    if (opt.producer_count && sent == opt.producer_count) {
        if (producer_sync(p, &cf) < 0)
            goto out;
        atomic_store(&p->last_ns, now_ns());
        atomic_store(&p->done, true);
    }
    rc = 0;
out:
    free(b.bytes);
    free(cf.pending);
    return rc;
}

/* ---- Consumers ------------------------------------------------------------------------ */

struct delivery {
    bool in_content;
    uint64_t tag;
    uint64_t body_size;
    uint64_t body_seen;
    uint64_t stamp; /* 0: this message carries no stamp of this run */
};

/* basic.consume, with x-stream-offset when one is asked for. */
static int consumer_subscribe(struct worker *w)
{
    struct wire_basic_consume consume = {.queue = wire_cstr(w->queue), .no_ack = opt.autoack};
    uint8_t args[128];
    struct wire_writer aw = wire_writer_init(args, sizeof args);
    struct wire_method m;

    if (opt.stream_offset != NULL) {
        if (opt.stream_offset_numeric) {
            w->want_offset = opt.stream_offset_base + w->index * opt.stream_offset_step;
            wire_table_put_i64(&aw, "x-stream-offset", w->want_offset);
        } else {
            wire_table_put_longstr(&aw, "x-stream-offset", wire_cstr(opt.stream_offset));
        }
        consume.arguments.raw = (struct wire_bytes){.ptr = args, .len = wire_writer_used(&aw)};
    }
    return perf_conn_rpc(&w->conn, 1, WIRE_BASIC_CONSUME, &consume, WIRE_BASIC_CONSUME_OK, &m);
}

/* Consumers of a stream without producers (a replay) subscribe when the clock starts, not
 * before: a stream delivers what it holds at once, and the figures must include the broker's
 * answer to basic.consume. Anywhere else they subscribe first, so that nothing published
 * passes them by. */
static bool consume_at_go(void)
{
    return opt.stream && opt.producers == 0;
}

/* A stream delivery's x-stream-offset: offsets read in order must follow each other. */
static void consumer_offset(struct worker *w, const struct wire_content_header *h)
{
    struct wire_field f;
    int64_t off;

    if (!(h->props.flags & WIRE_PROP_HEADERS) ||
        !wire_table_find(h->props.headers, "x-stream-offset", &f) || !wire_field_int(&f, &off)) {
        w->offset_missing++;
        return;
    }
    if (w->first_offset < 0)
        w->first_offset = off;
    else if (off > w->last_offset + 1) {
        if (w->offset_gaps++ == 0) {
            w->gap_prev = w->last_offset;
            w->gap_got = off;
        }
        w->offsets_skipped += (uint64_t)(off - w->last_offset - 1);
    } else if (off <= w->last_offset && w->offset_backwards++ == 0) {
        w->back_prev = w->last_offset;
        w->back_got = off;
    }
    w->last_offset = off;
}

static int consumer_run(struct worker *w)
{
    struct perf_conn *c = &w->conn;
    struct delivery d = {0};
    uint64_t received = 0, last_tag = 0, unacked = 0;

    atomic_store(&w->connected, true);
    if (consume_at_go()) {
        while (!atomic_load(&go))
            nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
        if (atomic_load(&stop))
            return 0;
        if (consumer_subscribe(w) < 0)
            return -1;
    }
    while (!atomic_load(&stop)) {
        struct wire_frame f;
        struct wire_method m;
        struct wire_content_header h;
        uint64_t now;
        int rc;

        if (perf_conn_wait(c, 100) < 0) {
            /* The broker's last words may be in what was read before the end. */
            char eof[sizeof c->error];
            snprintf(eof, sizeof eof, "%s", c->error);
            c->error[0] = '\0';
            while (perf_conn_next_frame(c, &f) == 1) {
                if (f.type == WIRE_FRAME_METHOD && wire_method_decode(f.payload, &m) == 0 &&
                    perf_conn_common(c, &f, &m) < 0)
                    return -1;
            }
            snprintf(c->error, sizeof c->error, "%s", eof);
            return -1;
        }
        /* Every message of one read arrived at the same moment. */
        now = now_ns();
        while ((rc = perf_conn_next_frame(c, &f)) == 1) {
            bool complete = false;

            switch (f.type) {
            case WIRE_FRAME_METHOD:
                if (wire_method_decode(f.payload, &m) != WIRE_OK) {
                    perf_conn_fail(c, "undecodable method frame from the broker");
                    return -1;
                }
                if (perf_conn_common(c, &f, &m) != 0) {
                    if (c->error[0] != '\0')
                        return -1;
                    break;
                }
                if (m.id == WIRE_BASIC_DELIVER) {
                    d = (struct delivery){.in_content = true,
                                          .tag = m.u.basic_deliver.delivery_tag};
                } else if (m.id == WIRE_BASIC_CANCEL) {
                    perf_conn_fail(c, "the broker cancelled the consumer (queue deleted?)");
                    return -1;
                }
                break;
            case WIRE_FRAME_HEADER:
                if (!d.in_content || wire_content_header_decode(f.payload, &h) != WIRE_OK) {
                    perf_conn_fail(c, "unexpected or malformed content header");
                    return -1;
                }
                d.body_size = h.body_size;
                complete = d.body_size == 0;
                if (opt.stream)
                    consumer_offset(w, &h);
                break;
            case WIRE_FRAME_BODY:
                if (!d.in_content || f.payload.len > d.body_size - d.body_seen) {
                    perf_conn_fail(c, "unexpected body frame");
                    return -1;
                }
                if (d.body_seen == 0 && f.payload.len >= STAMP_BYTES) {
                    uint64_t id;
                    memcpy(&id, f.payload.ptr + 8, 8);
                    if (id == run_id)
                        memcpy(&d.stamp, f.payload.ptr, 8);
                }
                d.body_seen += f.payload.len;
                complete = d.body_seen == d.body_size;
                break;
            default:
                if (perf_conn_common(c, &f, NULL) < 0)
                    return -1;
                break;
            }
            if (!complete)
                continue;

            d.in_content = false;
            received++;
            if (d.stamp != 0)
                perf_hist_record(&w->hist, now > d.stamp ? now - d.stamp : 0);
            if (!opt.autoack) {
                last_tag = d.tag;
                if (++unacked >= opt.ack_every) {
                    struct wire_basic_ack ack = {.delivery_tag = last_tag, .multiple = true};
                    perf_conn_put_method(c, 1, WIRE_BASIC_ACK, &ack);
                    unacked = 0;
                }
            }
            if (opt.consumer_count && received == opt.consumer_count)
                break;
        }
        if (rc < 0)
            return -1;
        atomic_store_explicit(&w->msgs, received, memory_order_relaxed);
        atomic_store_explicit(&w->last_ns, now, memory_order_relaxed);
        if (opt.consumer_count && received == opt.consumer_count) {
            if (unacked) {
                struct wire_basic_ack ack = {.delivery_tag = last_tag, .multiple = true};
                perf_conn_put_method(c, 1, WIRE_BASIC_ACK, &ack);
            }
            atomic_store(&w->done, true);
            break;
        }
        if (perf_conn_flush(c) < 0)
            return -1;
    }
    return 0;
}

/* ---- Workers -------------------------------------------------------------------------- */

static int channel_setup(struct worker *w)
{
    struct perf_conn *c = &w->conn;
    struct wire_method m;

    if (perf_conn_rpc(c, 1, WIRE_CHANNEL_OPEN, &(struct wire_channel_open){0}, WIRE_CHANNEL_OPEN_OK,
                      &m) < 0)
        return -1;
    if (w->role == PRODUCER && opt.confirm_window) {
        if (perf_conn_rpc(c, 1, WIRE_CONFIRM_SELECT, &(struct wire_confirm_select){0},
                          WIRE_CONFIRM_SELECT_OK, &m) < 0) {
            char why[sizeof c->error];
            snprintf(why, sizeof why, "%s", c->error);
            perf_conn_fail(c, "the broker refused publisher confirms (confirm.select): %s", why);
            return -1;
        }
    }
    if (w->role == CONSUMER) {
        if (opt.prefetch) {
            struct wire_basic_qos qos = {.prefetch_count = opt.prefetch};
            if (perf_conn_rpc(c, 1, WIRE_BASIC_QOS, &qos, WIRE_BASIC_QOS_OK, &m) < 0)
                return -1;
        }
        if (!consume_at_go())
            return consumer_subscribe(w);
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int rc;

    if (perf_conn_open(&w->conn, opt.host, opt.port, opt.user, opt.password) < 0) {
        worker_fail(w);
        return NULL;
    }
    if (channel_setup(w) < 0) {
        worker_fail(w);
        perf_conn_free(&w->conn);
        return NULL;
    }
    rc = w->role == PRODUCER ? producer_run(w) : consumer_run(w);
    if (rc < 0) {
        worker_fail(w);
        perf_conn_free(&w->conn);
        return NULL;
    }
    if (w->abandon)
        perf_conn_free(&w->conn);
    else
        perf_conn_close(&w->conn);
    return NULL;
}

static struct worker *worker_start(enum role role, int index)
{
    struct worker *w = calloc(1, sizeof *w);

    if (w == NULL || nworkers == MAX_WORKERS) {
        fprintf(stderr, "warren-perf: too many workers\n");
        exit(2);
    }
    w->role = role;
    w->index = index;
    w->want_offset = -1;
    w->first_offset = -1;
    perf_hist_reset(&w->hist);
    queue_name(index % opt.queues, w->queue, sizeof w->queue);
    workers[nworkers++] = w;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        fprintf(stderr, "warren-perf: cannot start a thread: %s\n", strerror(errno));
        exit(2);
    }
    return w;
}

/* Waits until every worker of a role has its channel ready, or one failed. */
static bool wait_connected(enum role role)
{
    for (;;) {
        bool all = true;

        if (atomic_load(&failed))
            return false;
        for (int i = 0; i < nworkers; i++)
            if (workers[i]->role == role && !atomic_load(&workers[i]->connected))
                all = false;
        if (all)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

/* ---- Topology ------------------------------------------------------------------------- */

static int declare_topology(struct perf_conn *c)
{
    struct wire_method m;
    char name[256];

    if (perf_conn_rpc(c, 1, WIRE_CHANNEL_OPEN, &(struct wire_channel_open){0}, WIRE_CHANNEL_OPEN_OK,
                      &m) < 0)
        return -1;
    if (opt.fanout) {
        struct wire_exchange_declare x = {.exchange = wire_cstr(opt.exchange),
                                          .type = wire_cstr("fanout"),
                                          .durable = opt.persistent};
        if (perf_conn_rpc(c, 1, WIRE_EXCHANGE_DECLARE, &x, WIRE_EXCHANGE_DECLARE_OK, &m) < 0)
            return -1;
    }
    for (int i = 0; i < opt.queues; i++) {
        queue_name(i, name, sizeof name);
        struct wire_queue_declare q = {.queue = wire_cstr(name),
                                       .durable = opt.persistent || opt.stream};
        uint8_t args[64];
        struct wire_writer aw = wire_writer_init(args, sizeof args);

        if (opt.stream) {
            wire_table_put_longstr(&aw, "x-queue-type", wire_cstr("stream"));
            q.arguments.raw = (struct wire_bytes){.ptr = args, .len = wire_writer_used(&aw)};
        }
        if (perf_conn_rpc(c, 1, WIRE_QUEUE_DECLARE, &q, WIRE_QUEUE_DECLARE_OK, &m) < 0)
            return -1;
        if (opt.fanout) {
            struct wire_queue_bind bind = {.queue = wire_cstr(name),
                                           .exchange = wire_cstr(opt.exchange)};
            if (perf_conn_rpc(c, 1, WIRE_QUEUE_BIND, &bind, WIRE_QUEUE_BIND_OK, &m) < 0)
                return -1;
        }
    }
    return 0;
}

static int delete_topology(struct perf_conn *c)
{
    struct wire_method m;
    char name[256];

    for (int i = 0; i < opt.queues; i++) {
        queue_name(i, name, sizeof name);
        struct wire_queue_delete q = {.queue = wire_cstr(name)};
        if (perf_conn_rpc(c, 1, WIRE_QUEUE_DELETE, &q, WIRE_QUEUE_DELETE_OK, &m) < 0)
            return -1;
    }
    if (opt.fanout) {
        struct wire_exchange_delete x = {.exchange = wire_cstr(opt.exchange)};
        if (perf_conn_rpc(c, 1, WIRE_EXCHANGE_DELETE, &x, WIRE_EXCHANGE_DELETE_OK, &m) < 0)
            return -1;
    }
    return 0;
}

/* ---- Options -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: warren-perf [options]\n"
                 "  -h HOST            broker host (127.0.0.1)\n"
                 "  -p PORT            broker port (5672)\n"
                 "  --user U --password P   credentials (guest/guest)\n"
                 "  -x N               producers (1), one connection each\n"
                 "  -y N               consumers (1), one connection each\n"
                 "  -s BYTES           body size (16); latency needs >= 16\n"
                 "  -r RATE            messages/s per producer (0: unlimited)\n"
                 "  -z SECONDS         run time (10 unless -C or -D is given)\n"
                 "  -C N               messages per producer, then stop\n"
                 "  -D N               messages per consumer, then stop\n"
                 "  -u NAME            queue name (warren-perf); with --queues N: NAME-0 ...\n"
                 "  --queues N         N queues; producer and consumer i use queue i %% N\n"
                 "  --fanout N         a fanout exchange (NAME-fanout) bound to N queues, one\n"
                 "                     consumer each\n"
                 "  --persistent       delivery-mode 2 and durable queues\n"
                 "  --stream           declare the queues as streams (x-queue-type=stream,\n"
                 "                     durable); consumers need -q and manual acks\n"
                 "  --stream-offset first|last|next|N\n"
                 "                     x-stream-offset of the consumers (the broker's default:\n"
                 "                     next); each delivery's x-stream-offset is checked\n"
                 "  --offset-step K    consumer i starts at offset N + i * K (numeric N)\n"
                 "  -c N               publisher confirms, at most N unconfirmed per producer\n"
                 "  -q N               consumer prefetch (basic.qos)\n"
                 "  -a                 consume with no-ack (autoack)\n"
                 "  --ack-every N      ack with multiple every N messages (1)\n"
                 "  --sink             publish to a built-in server that discards everything:\n"
                 "                     the tool's own ceiling (no consumers)\n"
                 "  --scenario NAME    label of the result line\n"
                 "  --keep             do not delete the queues at the end\n"
                 "  --quiet            no per-second progress on stderr\n"
                 "  --broker-pid PID   report the CPU time of that process (same machine) during\n"
                 "                     the measurement\n"
                 "Output: one line 'result key=value ...' on stdout; 'error ... reason=...' and\n"
                 "exit status 1 if the broker refuses something.\n");
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && *out >= 0 && isfinite(*out);
}

static void bad_value(const char *name, const char *v)
{
    fprintf(stderr, "warren-perf: bad value '%s' for %s\n", v, name);
    exit(2);
}

static void parse_options(int argc, char **argv)
{
    enum {
        O_QUEUES = 256,
        O_FANOUT,
        O_PERSISTENT,
        O_ACK_EVERY,
        O_SINK,
        O_SCENARIO,
        O_KEEP,
        O_QUIET,
        O_USER,
        O_PASSWORD,
        O_BROKER_PID,
        O_STREAM,
        O_STREAM_OFFSET,
        O_OFFSET_STEP,
        O_HELP
    };
    static const struct option longopts[] = {
        {"queues", required_argument, NULL, O_QUEUES},
        {"fanout", required_argument, NULL, O_FANOUT},
        {"persistent", no_argument, NULL, O_PERSISTENT},
        {"ack-every", required_argument, NULL, O_ACK_EVERY},
        {"sink", no_argument, NULL, O_SINK},
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"keep", no_argument, NULL, O_KEEP},
        {"quiet", no_argument, NULL, O_QUIET},
        {"user", required_argument, NULL, O_USER},
        {"password", required_argument, NULL, O_PASSWORD},
        {"broker-pid", required_argument, NULL, O_BROKER_PID},
        {"stream", no_argument, NULL, O_STREAM},
        {"stream-offset", required_argument, NULL, O_STREAM_OFFSET},
        {"offset-step", required_argument, NULL, O_OFFSET_STEP},
        {"help", no_argument, NULL, O_HELP},
        {0},
    };
    uint64_t v;
    int o;

    while ((o = getopt_long(argc, argv, "h:p:x:y:s:r:z:C:D:u:c:q:a", longopts, NULL)) != -1) {
        switch (o) {
        case 'h':
            opt.host = optarg;
            break;
        case 'p':
            if (!parse_u64(optarg, 65535, &v))
                bad_value("-p", optarg);
            opt.port = optarg;
            break;
        case 'x':
            if (!parse_u64(optarg, MAX_WORKERS / 2, &v))
                bad_value("-x", optarg);
            opt.producers = (int)v;
            break;
        case 'y':
            if (!parse_u64(optarg, MAX_WORKERS / 2, &v))
                bad_value("-y", optarg);
            opt.consumers = (int)v;
            opt.consumers_set = true;
            break;
        case 's':
            if (!parse_u64(optarg, 512u * 1024u * 1024u, &v))
                bad_value("-s", optarg);
            opt.body_bytes = (size_t)v;
            break;
        case 'r':
            if (!parse_double(optarg, &opt.rate))
                bad_value("-r", optarg);
            break;
        case 'z':
            if (!parse_double(optarg, &opt.seconds) || opt.seconds <= 0)
                bad_value("-z", optarg);
            break;
        case 'C':
            if (!parse_u64(optarg, UINT64_MAX, &opt.producer_count) || !opt.producer_count)
                bad_value("-C", optarg);
            break;
        case 'D':
            if (!parse_u64(optarg, UINT64_MAX, &opt.consumer_count) || !opt.consumer_count)
                bad_value("-D", optarg);
            break;
        case 'u':
            if (strlen(optarg) == 0 || strlen(optarg) > 200)
                bad_value("-u", optarg);
            opt.queue = optarg;
            break;
        case 'c':
            if (!parse_u64(optarg, 1u << 24, &v) || !v)
                bad_value("-c", optarg);
            opt.confirm_window = (uint32_t)v;
            break;
        case 'q':
            if (!parse_u64(optarg, 65535, &v))
                bad_value("-q", optarg);
            opt.prefetch = (uint16_t)v;
            break;
        case 'a':
            opt.autoack = true;
            break;
        case O_QUEUES:
            if (!parse_u64(optarg, 1000, &v) || !v)
                bad_value("--queues", optarg);
            opt.queues = (int)v;
            break;
        case O_FANOUT:
            if (!parse_u64(optarg, 1000, &v) || !v)
                bad_value("--fanout", optarg);
            opt.fanout = (int)v;
            break;
        case O_PERSISTENT:
            opt.persistent = true;
            break;
        case O_ACK_EVERY:
            if (!parse_u64(optarg, UINT32_MAX, &v) || !v)
                bad_value("--ack-every", optarg);
            opt.ack_every = (uint32_t)v;
            break;
        case O_SINK:
            opt.sink = true;
            break;
        case O_SCENARIO:
            opt.scenario = optarg;
            break;
        case O_KEEP:
            opt.keep = true;
            break;
        case O_QUIET:
            opt.quiet = true;
            break;
        case O_USER:
            opt.user = optarg;
            break;
        case O_PASSWORD:
            opt.password = optarg;
            break;
        case O_BROKER_PID:
            if (!parse_u64(optarg, INT32_MAX, &v) || !v)
                bad_value("--broker-pid", optarg);
            opt.broker_pid = (long)v;
            break;
        case O_STREAM:
            opt.stream = true;
            break;
        case O_STREAM_OFFSET:
            if (strcmp(optarg, "first") == 0 || strcmp(optarg, "last") == 0 ||
                strcmp(optarg, "next") == 0) {
                opt.stream_offset_numeric = false;
            } else if (parse_u64(optarg, INT64_MAX, &v)) {
                opt.stream_offset_numeric = true;
                opt.stream_offset_base = (int64_t)v;
            } else {
                bad_value("--stream-offset", optarg);
            }
            opt.stream_offset = optarg;
            break;
        case O_OFFSET_STEP:
            if (!parse_u64(optarg, INT64_MAX / MAX_WORKERS, &v))
                bad_value("--offset-step", optarg);
            opt.stream_offset_step = (int64_t)v;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warren-perf: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (opt.fanout) {
        static char exchange[256];
        if (opt.queues != 1) {
            fprintf(stderr, "warren-perf: --fanout and --queues exclude each other\n");
            exit(2);
        }
        opt.queues = opt.fanout;
        snprintf(exchange, sizeof exchange, "%s-fanout", opt.queue);
        opt.exchange = exchange;
        if (!opt.consumers_set)
            opt.consumers = opt.fanout;
    }
    if (opt.sink)
        opt.consumers = 0; /* the sink never delivers */
    if (opt.stream_offset_step && !opt.stream_offset_numeric) {
        fprintf(stderr, "warren-perf: --offset-step wants a numeric --stream-offset\n");
        exit(2);
    }
    if ((opt.stream_offset != NULL) && !opt.stream) {
        fprintf(stderr, "warren-perf: --stream-offset is for --stream\n");
        exit(2);
    }
    if (opt.seconds == 0 && !opt.producer_count && !opt.consumer_count)
        opt.seconds = DEFAULT_SECONDS;
    if (opt.producers == 0 && opt.consumers == 0) {
        fprintf(stderr, "warren-perf: no producer and no consumer: nothing to do\n");
        exit(2);
    }
    if (opt.producers == 0 && opt.seconds == 0 && !opt.consumer_count) {
        fprintf(stderr, "warren-perf: consumers alone need -z or -D to know when to stop\n");
        exit(2);
    }
    if (!opt.autoack && opt.prefetch && opt.ack_every > opt.prefetch) {
        fprintf(stderr, "warren-perf: --ack-every %u above prefetch %u would stall the consumers\n",
                opt.ack_every, opt.prefetch);
        exit(2);
    }
}

/* ---- Reporting ------------------------------------------------------------------------ */

struct totals {
    uint64_t sent, received, confirmed, nacked;
    uint64_t last_sent_ns, last_received_ns;
};

static struct totals totals(void)
{
    struct totals t = {0};

    for (int i = 0; i < nworkers; i++) {
        struct worker *w = workers[i];
        uint64_t n = atomic_load_explicit(&w->msgs, memory_order_relaxed);
        uint64_t last = atomic_load_explicit(&w->last_ns, memory_order_relaxed);

        if (w->role == PRODUCER) {
            t.sent += n;
            if (last > t.last_sent_ns)
                t.last_sent_ns = last;
        } else {
            t.received += n;
            if (last > t.last_received_ns)
                t.last_received_ns = last;
        }
    }
    return t;
}

static void print_latency(FILE *out, const char *name, const struct perf_hist *h, double q)
{
    if (h->count == 0)
        fprintf(out, " %s=na", name);
    else
        fprintf(out, " %s=%.1f", name, (double)perf_hist_quantile(h, q) / 1e3);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Each consumer's own rate (its messages over the time from the start to its last one):
 * the slowest, the median and the fastest; with --stream, what the x-stream-offset headers
 * said: the first offset of consumer 0, the highest last offset, jumps forward (RabbitMQ
 * skips an offset at each segment start: not an error) with the offsets skipped, offsets not
 * past the previous one (an error), each with its first instance (the offset before it and
 * its own), deliveries without the header, and consumers that asked for a numeric offset and
 * got an earlier one first (an error) or a later one (RabbitMQ, asked for a skipped
 * offset). */
static void print_consumers(FILE *out, uint64_t start)
{
    double rates[MAX_WORKERS];
    int n = 0;
    uint64_t gaps = 0, skipped = 0, backwards = 0, missing = 0, before = 0, after = 0;
    int64_t first = -1, last = -1, gap_prev = -1, gap_got = -1, back_prev = -1, back_got = -1;

    for (int i = 0; i < nworkers; i++) {
        const struct worker *w = workers[i];
        uint64_t msgs = atomic_load(&w->msgs), end = atomic_load(&w->last_ns);

        if (w->role != CONSUMER)
            continue;
        rates[n++] = msgs && end > start ? (double)msgs / ((double)(end - start) / 1e9) : 0.0;
        if (w->offset_gaps && gaps == 0) {
            gap_prev = w->gap_prev;
            gap_got = w->gap_got;
        }
        if (w->offset_backwards && backwards == 0) {
            back_prev = w->back_prev;
            back_got = w->back_got;
        }
        gaps += w->offset_gaps;
        skipped += w->offsets_skipped;
        backwards += w->offset_backwards;
        missing += w->offset_missing;
        if (w->index == 0)
            first = w->first_offset;
        if (w->last_offset > last)
            last = w->last_offset;
        if (w->want_offset >= 0 && w->first_offset >= 0 && w->first_offset < w->want_offset)
            before++;
        if (w->want_offset >= 0 && w->first_offset > w->want_offset)
            after++;
    }
    if (n == 0 || opt.sink) {
        fprintf(out, " consumer_msgs_per_s_min=na consumer_msgs_per_s_median=na"
                     " consumer_msgs_per_s_max=na");
    } else {
        qsort(rates, (size_t)n, sizeof rates[0], cmp_double);
        fprintf(out,
                " consumer_msgs_per_s_min=%.0f consumer_msgs_per_s_median=%.0f"
                " consumer_msgs_per_s_max=%.0f",
                rates[0], n % 2 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2,
                rates[n - 1]);
    }
    if (opt.stream && n > 0) {
        fprintf(out,
                " stream_first_offset=%" PRId64 " stream_last_offset=%" PRId64
                " stream_offset_gaps=%" PRIu64 " stream_offsets_skipped=%" PRIu64
                " stream_offset_backwards=%" PRIu64 " stream_offset_missing=%" PRIu64
                " stream_start_before=%" PRIu64 " stream_start_after=%" PRIu64,
                first, last, gaps, skipped, backwards, missing, before, after);
        if (gaps)
            fprintf(out, " stream_first_gap=%" PRId64 ">%" PRId64, gap_prev, gap_got);
        if (backwards)
            fprintf(out, " stream_first_backwards=%" PRId64 ">%" PRId64, back_prev, back_got);
    }
}

/* True when a count-limited run has nothing more to wait for: every producer has sent its
 * count and the broker has it, and the consumers have their count (-D) or everything that
 * was sent. Consumers that wait DRAIN_IDLE_NS without a message end the run too, with a
 * warning: the result line then shows what is missing. */
static bool counts_reached(const struct totals *t, uint64_t *idle_since, uint64_t now)
{
    static uint64_t last_received;
    bool producers_done = true, consumers_done = true;
    uint64_t expected;

    for (int i = 0; i < nworkers; i++) {
        if (workers[i]->role == PRODUCER && !atomic_load(&workers[i]->done))
            producers_done = false;
        if (workers[i]->role == CONSUMER && !atomic_load(&workers[i]->done))
            consumers_done = false;
    }
    if ((opt.producers > 0 && !opt.producer_count) || !producers_done)
        return false;
    if (opt.consumers == 0)
        return true;
    if (opt.consumer_count) {
        expected = opt.consumer_count * (uint64_t)opt.consumers;
        if (consumers_done)
            return true;
    } else {
        /* Every published message reaches one queue, or each of the fanout's queues. */
        expected = t->sent * (uint64_t)(opt.fanout ? opt.fanout : 1);
        if (t->received >= expected)
            return true;
    }
    if (t->received != last_received) {
        last_received = t->received;
        *idle_since = now;
    }
    if (now - *idle_since > DRAIN_IDLE_NS) {
        fprintf(stderr,
                "warren-perf: %" PRIu64 " of %" PRIu64 " messages arrived; nothing more"
                " for %llu s\n",
                t->received, expected, DRAIN_IDLE_NS / 1000000000ull);
        return true;
    }
    return false;
}

/* CPU seconds (user + system) of this process, all threads. */
static double self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (utime + stime) of another process from /proc/PID/stat; -1 if unreadable. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[2048];
    unsigned long long utime, stime;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name, in parentheses, may hold spaces: count fields after its ')'. utime
     * and stime are fields 14 and 15, the 12th and 13th after it. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime, &stime) !=
            2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds all the machine's cores spent busy (not idle, not waiting for I/O) since boot,
 * from /proc/stat; -1 if unreadable. Set against the tool's and the broker's own, it tells
 * how much of the machine other processes took during a measurement. */
static double machine_busy_s(void)
{
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait,
               &irq, &softirq, &steal);
    fclose(f);
    if (n != 8)
        return -1;
    return (double)(user + nice + sys + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop, true);
}

int main(int argc, char **argv)
{
    struct perf_sink *sink = NULL;
    struct perf_conn setup = {.fd = -1};
    struct perf_hist hist;
    struct totals t = {0}, prev = {0};
    char port_buf[16];
    uint64_t start = 0, end = 0, next_report, idle_since, sink_start_msgs = 0, sink_msgs = 0;
    double window, send_window, recv_window;
    double tool_cpu0 = 0, tool_cpu1 = 0, broker_cpu0 = -1, broker_cpu1 = -1;
    double machine0 = -1, machine1 = -1;
    int status = 0;

    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (getrandom(&run_id, sizeof run_id, 0) != sizeof run_id || run_id == 0)
        run_id = now_ns() | 1;

    if (opt.sink) {
        int port;
        sink = perf_sink_start(0, &port);
        if (sink == NULL)
            return 1;
        snprintf(port_buf, sizeof port_buf, "%d", port);
        opt.host = "127.0.0.1";
        opt.port = port_buf;
    }

    if (perf_conn_open(&setup, opt.host, opt.port, opt.user, opt.password) < 0 ||
        declare_topology(&setup) < 0) {
        fail("setup", -1, setup.error);
        goto report;
    }
    for (int i = 0; i < opt.consumers; i++)
        worker_start(CONSUMER, i);
    if (!wait_connected(CONSUMER))
        goto report;
    for (int i = 0; i < opt.producers; i++)
        worker_start(PRODUCER, i);
    if (!wait_connected(PRODUCER))
        goto report;

    if (sink)
        sink_start_msgs = perf_sink_messages(sink);
    start = now_ns();
    start_ns = start;
    tool_cpu0 = self_cpu_s();
    machine0 = machine_busy_s();
    if (opt.broker_pid)
        broker_cpu0 = proc_cpu_s(opt.broker_pid);
    idle_since = start;
    next_report = start + 1000000000u;
    atomic_store(&go, true);
    for (;;) {
        uint64_t now;

        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        now = now_ns();
        t = totals();
        if (sink)
            t.received = perf_sink_messages(sink) - sink_start_msgs;
        if (atomic_load(&stop))
            break;
        if (opt.seconds > 0 && (double)(now - start) >= opt.seconds * 1e9)
            break;
        if ((opt.producer_count || opt.consumer_count) && counts_reached(&t, &idle_since, now))
            break;
        if (now >= next_report) {
            if (!opt.quiet)
                fprintf(stderr, "warren-perf: %5.1f s  sent %9.0f msg/s  received %9.0f msg/s\n",
                        (double)(now - start) / 1e9, (double)(t.sent - prev.sent),
                        (double)(t.received - prev.received));
            prev = t;
            next_report += 1000000000u;
        }
    }
    end = now_ns();
    tool_cpu1 = self_cpu_s();
    machine1 = machine_busy_s();
    if (opt.broker_pid)
        broker_cpu1 = proc_cpu_s(opt.broker_pid);
    if (sink)
        sink_msgs = perf_sink_messages(sink) - sink_start_msgs;

report:
    atomic_store(&stop, true);
    atomic_store(&go, true);
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i]->thread, NULL);
    /* Even after a failure elsewhere, so that a refused scenario leaves nothing behind. */
    if (!opt.keep && setup.fd >= 0 && setup.error[0] == '\0' && delete_topology(&setup) < 0 &&
        !atomic_load(&failed))
        fprintf(stderr, "warren-perf: could not delete the queues: %s\n", setup.error);
    perf_conn_close(&setup);
    perf_sink_stop(sink); /* after every connection to it is closed */

    if (atomic_load(&failed)) {
        fprintf(stderr, "warren-perf: %s\n", failure);
        printf("error scenario=%s reason=%s\n", opt.scenario, failure);
        status = 1;
    } else {

        perf_hist_reset(&hist);
        for (int i = 0; i < nworkers; i++)
            perf_hist_merge(&hist, &workers[i]->hist);
        window = (double)(end - start) / 1e9;
        /* A run by count ends when the last message is in; a run by time at its end. */
        send_window = opt.producer_count && t.last_sent_ns > start
                          ? (double)(t.last_sent_ns - start) / 1e9
                          : window;
        recv_window = (opt.producer_count || opt.consumer_count) && t.last_received_ns > start
                          ? (double)(t.last_received_ns - start) / 1e9
                          : window;
        if (sink) {
            t.received = sink_msgs;
            recv_window = window;
        }
        for (int i = 0; i < nworkers; i++) {
            t.confirmed += workers[i]->confirmed;
            t.nacked += workers[i]->nacked;
        }

        printf("result scenario=%s producers=%d consumers=%d queues=%d body_bytes=%zu"
               " persistent=%d confirm=%u ack=%s sent_msgs=%" PRIu64 " received_msgs=%" PRIu64
               " confirmed_msgs=%" PRIu64 " nacked_msgs=%" PRIu64
               " sent_msgs_per_s=%.0f received_msgs_per_s=%.0f",
               opt.scenario, opt.producers, opt.sink ? 0 : opt.consumers, opt.queues,
               opt.body_bytes, opt.persistent, opt.confirm_window, opt.autoack ? "auto" : "manual",
               t.sent, t.received, t.confirmed, t.nacked,
               send_window > 0 ? (double)t.sent / send_window : 0.0,
               recv_window > 0 ? (double)t.received / recv_window : 0.0);
        print_latency(stdout, "p50_us", &hist, 0.50);
        print_latency(stdout, "p99_us", &hist, 0.99);
        print_latency(stdout, "p999_us", &hist, 0.999);
        if (hist.count)
            printf(" max_us=%.1f", (double)hist.max_ns / 1e3);
        else
            printf(" max_us=na");
        print_consumers(stdout, start);
        /* CPU time during the measurement, of the tool (with --sink, the sink's too) and of
         * the broker, to tell which of them limits a figure. */
        printf(" duration_s=%.3f tool_cpu_s=%.2f", window, tool_cpu1 - tool_cpu0);
        if (broker_cpu0 >= 0 && broker_cpu1 >= 0)
            printf(" broker_cpu_s=%.2f", broker_cpu1 - broker_cpu0);
        else
            printf(" broker_cpu_s=na");
        if (machine0 >= 0 && machine1 >= 0)
            printf(" machine_cpu_s=%.2f cores=%ld\n", machine1 - machine0,
                   sysconf(_SC_NPROCESSORS_ONLN));
        else
            printf(" machine_cpu_s=na cores=%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
        fflush(stdout);

        fprintf(stderr,
                "warren-perf: %s: %d producer(s), %d consumer(s), %d queue(s)%s, %zu-byte bodies,"
                " %.2f s\n"
                "  sent     %12" PRIu64 " msgs  %10.0f msg/s  %8.1f MB/s\n"
                "  received %12" PRIu64 " msgs  %10.0f msg/s%s\n",
                opt.scenario, opt.producers, opt.sink ? 0 : opt.consumers, opt.queues,
                opt.fanout ? " (fanout)" : "", opt.body_bytes, window, t.sent,
                send_window > 0 ? (double)t.sent / send_window : 0.0,
                send_window > 0 ? (double)t.sent * (double)opt.body_bytes / send_window / 1e6 : 0.0,
                t.received, recv_window > 0 ? (double)t.received / recv_window : 0.0,
                opt.sink ? " (by the sink)" : "");
        if (opt.confirm_window)
            fprintf(stderr, "  confirmed %11" PRIu64 " msgs, nacked %" PRIu64 "\n", t.confirmed,
                    t.nacked);
        fprintf(stderr, "  CPU      warren-perf %.0f %%", (tool_cpu1 - tool_cpu0) / window * 100);
        if (broker_cpu0 >= 0 && broker_cpu1 >= 0)
            fprintf(stderr, ", broker %.0f %%", (broker_cpu1 - broker_cpu0) / window * 100);
        if (machine0 >= 0 && machine1 >= 0)
            fprintf(stderr, ", whole machine %.0f %% of %ld %%",
                    (machine1 - machine0) / window * 100, sysconf(_SC_NPROCESSORS_ONLN) * 100);
        fprintf(stderr, " (100 %% = one core)\n");
        if (hist.count)
            fprintf(stderr,
                    "  latency  p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us"
                    " (%" PRIu64 " samples)\n",
                    (double)perf_hist_quantile(&hist, 0.5) / 1e3,
                    (double)perf_hist_quantile(&hist, 0.99) / 1e3,
                    (double)perf_hist_quantile(&hist, 0.999) / 1e3, (double)hist.max_ns / 1e3,
                    hist.count);
    }
    for (int i = 0; i < nworkers; i++)
        free(workers[i]);
    return status;
}
