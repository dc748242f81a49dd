/* Stream queues (src/broker/stream.h): a queue's log, its consumers' positions in it, and
 * the delivery of what they have not read yet. */
#include "src/broker/stream.h"

#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "amqp/method.h"
#include "amqp/table.h"
#include "exchanges/erl_term.h"
#include "src/base/hmap.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/queue.h"
#include "src/broker/vhost.h"
#include "src/store/stream_log.h"

/* Records a consumer may skip (filtered out) in one dispatch before it yields the loop. */
#define SCAN_BUDGET 4096

struct stream {
    struct queue *q;
    struct stream_log *log;
    bool open_failed;
    ev_timer kick; /* deliver what was appended this loop turn, once it is written */
    ev_timer age;  /* applies x-max-age while no publish rolls a segment (age_timer_arm) */
};

struct stream_reader {
    struct stream_cursor cur;
    struct wire_bytes *filters; /* owned */
    size_t filter_count;
    bool match_unfiltered;
};

bool stream_refuses_arg(const char *name)
{
    static const char *const refused[] = {
        "x-message-ttl", "x-expires", "x-dead-letter-exchange", "x-dead-letter-routing-key",
        "x-max-length", "x-max-priority", "x-overflow", "x-single-active-consumer",
        "x-delivery-limit", "x-queue-mode", "x-max-in-memory-length", "x-max-in-memory-bytes",
        "x-dead-letter-strategy", "x-quorum-initial-group-size",
    };
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        if (strcmp(name, refused[i]) == 0)
            return true;
    return false;
}

int64_t stream_parse_max_age(struct wire_bytes v)
{
    int64_t n = 0, unit_ms;
    size_t i;

    if (v.len < 2)
        return -1;
    for (i = 0; i + 1 < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9' || n > INT64_MAX / 10 / 1000)
            return -1;
        n = n * 10 + (v.ptr[i] - '0');
    }
    switch (v.ptr[v.len - 1]) {
    case 'Y': unit_ms = 365LL * 24 * 3600 * 1000; break;
    case 'M': unit_ms = 30LL * 24 * 3600 * 1000; break;
    case 'D': unit_ms = 24LL * 3600 * 1000; break;
    case 'h': unit_ms = 3600LL * 1000; break;
    case 'm': unit_ms = 60LL * 1000; break;
    case 's': unit_ms = 1000; break;
    default: return -1;
    }
    if (n > INT64_MAX / unit_ms)
        return -1;
    return n * unit_ms;
}

/* ---- The log ------------------------------------------------------------------------------ */

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct stream *s = w->data;

    (void)loop;
    (void)revents;
    stream_dispatch(s->q);
}

static struct stream_log *log_of(struct queue *q);

/* Retention by age runs when a segment is full, when the log is opened and when a policy
 * changes; a stream that gets no more publishes would keep its expired segments forever
 * without this timer. It fires every tenth of the age, within [1 s, 60 s], so an expired
 * segment outlives its age by at most that much; a check with nothing to remove looks at
 * two segments. It also opens the log of a stream nobody used since a restart. */
static void on_age(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct stream *s = w->data;
    struct stream_log *log = log_of(s->q);

    (void)revents;
    if (log != NULL)
        stream_log_retain(log, now_wall_ms());
    else if (s->open_failed)
        ev_timer_stop(loop, w); /* no log to keep short (no data directory, or it failed) */
}

/* (Re)starts the age timer for the queue's max age, or stops it if there is none. */
static void age_timer_arm(struct queue *q)
{
    struct stream *s = q->stream;
    double every;

    ev_timer_stop(q->vhost->loop, &s->age);
    if (q->args.max_age_ms <= 0 || s->open_failed)
        return;
    every = (double)q->args.max_age_ms / 10000.0;
    every = every < 1. ? 1. : every > 60. ? 60. : every;
    ev_timer_set(&s->age, every, every);
    ev_timer_start(q->vhost->loop, &s->age);
}

void stream_attach(struct queue *q)
{
    struct stream *s = xcalloc(1, sizeof *s);

    s->q = q;
    ev_timer_init(&s->kick, on_kick, 0., 0.);
    s->kick.data = s;
    ev_init(&s->age, on_age);
    s->age.data = s;
    q->stream = s;
    age_timer_arm(q);
}

void stream_detach(struct queue *q, bool destroy)
{
    struct stream *s = q->stream;

    if (s == NULL)
        return;
    ev_timer_stop(q->vhost->loop, &s->kick);
    ev_timer_stop(q->vhost->loop, &s->age);
    if (destroy)
        stream_log_destroy(s->log);
    else
        stream_log_close(s->log);
    free(s);
    q->stream = NULL;
}

void stream_detach_all(struct hmap *vhosts)
{
    void *v, *qv;

    for (size_t i = 0; hmap_next(vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t j = 0; hmap_next(&vh->queues, &j, &qv);) {
            struct queue *q = qv;
            if (q->stream != NULL) {
                ev_timer_stop(vh->loop, &q->stream->age);
                stream_log_close(q->stream->log);
                q->stream->log = NULL;
                q->stream->open_failed = true;
            }
        }
    }
}

static void apply_limits(struct queue *q, struct stream_log *log)
{
    stream_log_set_limits(log, q->args.max_length_bytes > 0 ? (uint64_t)q->args.max_length_bytes : 0,
                          q->args.max_age_ms > 0 ? (uint64_t)q->args.max_age_ms : 0,
                          q->args.stream_segment_bytes > 0 ? (uint64_t)q->args.stream_segment_bytes
                                                           : 0);
}

/* The log, opened on first use (the queue's store id is known only once it is declared). */
static struct stream_log *log_of(struct queue *q)
{
    struct stream *s = q->stream;
    struct persist *p = q->vhost->persist;
    char dir[4200], err[4400];

    if (s == NULL || s->log != NULL || s->open_failed)
        return s ? s->log : NULL;
    if (p == NULL || p->streams == NULL || q->store_id == 0) {
        s->open_failed = p == NULL;
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s/streams", p->dir);
    (void)mkdir(dir, 0750);
    snprintf(dir, sizeof dir, "%s/streams/%" PRIu32, p->dir, q->store_id);
    s->log = stream_log_open(p->streams, dir, err, sizeof err);
    if (s->log == NULL) {
        log_error(NULL, "stream '%.*s': %s", (int)q->name.len, (const char *)q->name.ptr, err);
        s->open_failed = true;
        return NULL;
    }
    apply_limits(q, s->log);
    stream_log_retain(s->log, now_wall_ms());
    return s->log;
}

void stream_limits_changed(struct queue *q)
{
    struct stream_log *log = log_of(q);

    if (log != NULL) {
        apply_limits(q, log);
        stream_log_retain(log, now_wall_ms());
    }
    age_timer_arm(q);
}

uint64_t stream_push(struct queue *q, struct message *m)
{
    struct stream_log *log = log_of(q);
    struct stream_record r = {0};
    struct wire_field fv;
    uint64_t seq;

    if (log == NULL || q->deleted || m->body_size > UINT32_MAX)
        return 0;
    r.exchange = m->exchange;
    r.routing_key = m->routing_key;
    r.header = m->header;
    r.body = (struct wire_bytes){.ptr = m->body, .len = (size_t)m->body_size};
    if ((m->props.flags & WIRE_PROP_HEADERS) &&
        wire_table_find(m->props.headers, "x-stream-filter-value", &fv) && fv.type == 'S' &&
        fv.v.bytes.len <= 255) {
        r.has_filter = true;
        r.filter_value = fv.v.bytes;
    }
    seq = stream_log_append(log, &r);
    if (seq == 0)
        return 0;
    q->stats.published++;
    if (q->consumer_count > 0 && !ev_is_active(&q->stream->kick))
        ev_timer_start(q->vhost->loop, &q->stream->kick);
    return seq;
}

/* ---- Consumers ------------------------------------------------------------------------------ */

static void reader_free(struct stream_reader *r)
{
    if (r == NULL)
        return;
    stream_cursor_free(&r->cur);
    for (size_t i = 0; i < r->filter_count; i++)
        bytes_free(&r->filters[i]);
    free(r->filters);
    free(r);
}

static void add_filter(struct stream_reader *r, struct wire_bytes v)
{
    r->filters = xrealloc(r->filters, (r->filter_count + 1) * sizeof *r->filters);
    r->filters[r->filter_count++] = bytes_dup(v);
}

#define QNAME_FMT "queue '%.*s' in vhost '%.*s'"
#define QNAME_ARG(q)                                                                         \
    (int)(q)->name.len, (const char *)(q)->name.ptr, (int)(q)->vhost->name.len,            \
        (const char *)(q)->vhost->name.ptr

int stream_consumer_start(struct queue *q, struct consumer *c, struct wire_bytes args,
                          bool no_ack, uint16_t prefetch, uint16_t *code, char *err,
                          size_t err_size)
{
    struct wire_table t = {.raw = args};
    struct wire_field f;
    struct stream_reader *r;
    struct stream_log *log;
    enum stream_seek how = STREAM_SEEK_NEXT;
    uint64_t value = 0;
    int rc;

    if (no_ack) {
        *code = WIRE_NOT_IMPLEMENTED;
        snprintf(err, err_size,
                 "automatic acknowledgement not supported by stream queues " QNAME_FMT,
                 QNAME_ARG(q));
        return -1;
    }
    if (prefetch == 0) {
        *code = WIRE_PRECONDITION_FAILED;
        snprintf(err, err_size, "consumer prefetch count is not set for '" QNAME_FMT "'",
                 QNAME_ARG(q));
        return -1;
    }
    if (wire_table_find(t, "x-stream-offset", &f)) {
        int64_t n;
        if (f.type == 'S') {
            int64_t age;
            if (wire_bytes_eq_cstr(f.v.bytes, "first"))
                how = STREAM_SEEK_FIRST;
            else if (wire_bytes_eq_cstr(f.v.bytes, "last"))
                how = STREAM_SEEK_LAST;
            else if (wire_bytes_eq_cstr(f.v.bytes, "next"))
                how = STREAM_SEEK_NEXT;
            else if ((age = stream_parse_max_age(f.v.bytes)) >= 0) {
                uint64_t now = now_wall_ms();
                how = STREAM_SEEK_TIME;
                value = (uint64_t)age < now ? now - (uint64_t)age : 0;
            } else {
                /* RabbitMQ 3.10 fails with INTERNAL_ERROR here; a clear refusal is better. */
                *code = WIRE_PRECONDITION_FAILED;
                snprintf(err, err_size,
                         "invalid arg 'x-stream-offset' for " QNAME_FMT ": \"%.*s\"",
                         QNAME_ARG(q), (int)(f.v.bytes.len > 64 ? 64 : f.v.bytes.len),
                         (const char *)f.v.bytes.ptr);
                return -1;
            }
        } else if (f.type == 'T') {
            how = STREAM_SEEK_TIME;
            value = f.v.u * 1000; /* AMQP timestamps are seconds */
        } else if (wire_field_int(&f, &n)) {
            how = STREAM_SEEK_OFFSET;
            value = n < 0 ? 0 : (uint64_t)n;
        } else {
            *code = WIRE_PRECONDITION_FAILED;
            snprintf(err, err_size,
                     "invalid arg 'x-stream-offset' for " QNAME_FMT ": {unacceptable_type,%s}",
                     QNAME_ARG(q), erl_term_type_name(f.type));
            return -1;
        }
    }
    r = xcalloc(1, sizeof *r);
    if (wire_table_find(t, "x-stream-filter", &f)) {
        if (f.type == 'S') {
            add_filter(r, f.v.bytes);
        } else if (f.type == 'A') {
            struct wire_array_iter it;
            struct wire_field e;
            wire_array_iter_init(&it, f.v.array);
            while (wire_array_next(&it, &e))
                if (e.type == 'S')
                    add_filter(r, e.v.bytes);
        }
    }
    if (wire_table_find(t, "x-stream-match-unfiltered", &f) && f.type == 't')
        r->match_unfiltered = f.v.boolean;
    if ((log = log_of(q)) == NULL) {
        reader_free(r);
        *code = WIRE_INTERNAL_ERROR;
        snprintf(err, err_size, "stream " QNAME_FMT " has no log (no data directory)",
                 QNAME_ARG(q));
        return -1;
    }
    if ((rc = stream_cursor_seek(log, &r->cur, how, value)) < 0) {
        reader_free(r);
        *code = WIRE_INTERNAL_ERROR;
        snprintf(err, err_size, "cannot read stream " QNAME_FMT ": %s", QNAME_ARG(q),
                 strerror(-rc));
        return -1;
    }
    c->stream = r;
    return 0;
}

void stream_consumer_stop(struct consumer *c)
{
    reader_free(c->stream);
    c->stream = NULL;
}

uint64_t stream_consumer_offset(const struct consumer *c)
{
    return c->stream != NULL ? c->stream->cur.offset : 0;
}

static bool passes(const struct stream_reader *r, const struct stream_record *rec)
{
    if (r->filter_count == 0)
        return true;
    if (!rec->has_filter)
        return r->match_unfiltered;
    for (size_t i = 0; i < r->filter_count; i++)
        if (wire_bytes_eq(r->filters[i], rec->filter_value))
            return true;
    return false;
}

/* The message of a record, with x-stream-offset in its headers. */
static struct message *record_message_rewritten(const struct stream_record *rec);

/* The content header of a record with x-stream-offset set in its headers table, spliced
 * into out (cap bytes) without decoding the rest: the fields before the table copied, the
 * table written anew, the properties after it copied. 0 if it does not fit or the header is
 * not one this splice knows (record_message then decodes and encodes it whole). */
static size_t header_with_offset(struct wire_bytes h, uint64_t offset, uint8_t *out, size_t cap)
{
    const uint8_t *p = h.ptr;
    size_t pos = 14, tail;
    uint16_t flags;
    struct wire_table old = {0};
    struct wire_writer w;

    if (h.len < 14 || cap < h.len + 32)
        return 0;
    flags = (uint16_t)(p[12] << 8 | p[13]);
    if (flags & 1)
        return 0; /* a second flags word: not basic's */
    for (uint16_t bit = WIRE_PROP_CONTENT_TYPE; bit >= WIRE_PROP_CONTENT_ENCODING; bit >>= 1) {
        if (!(flags & bit))
            continue;
        if (pos >= h.len || pos + 1 + p[pos] > h.len)
            return 0;
        pos += 1 + (size_t)p[pos];
    }
    tail = pos;
    if (flags & WIRE_PROP_HEADERS) {
        uint32_t len;
        if (pos + 4 > h.len)
            return 0;
        len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 |
              p[pos + 3];
        if (len > h.len - pos - 4)
            return 0;
        old.raw = (struct wire_bytes){.ptr = p + pos + 4, .len = len};
        tail = pos + 4 + len;
    }
    memcpy(out, p, pos);
    out[12] = (uint8_t)((flags | WIRE_PROP_HEADERS) >> 8);
    out[13] = (uint8_t)(flags | WIRE_PROP_HEADERS);
    w = wire_writer_init(out + pos + 4, cap - pos - 4 - (h.len - tail));
    if (old.raw.len > 0) {
        struct wire_table_iter it;
        struct wire_bytes key;
        struct wire_field v;
        wire_table_iter_init(&it, old);
        while (wire_table_next(&it, &key, &v))
            if (!wire_bytes_eq_cstr(key, "x-stream-offset"))
                wire_table_put_bytes_name(&w, key, &v);
    }
    wire_table_put_i64(&w, "x-stream-offset", (int64_t)offset);
    if (wire_writer_overflowed(&w))
        return 0;
    size_t table = wire_writer_used(&w);
    out[pos] = (uint8_t)(table >> 24);
    out[pos + 1] = (uint8_t)(table >> 16);
    out[pos + 2] = (uint8_t)(table >> 8);
    out[pos + 3] = (uint8_t)table;
    memcpy(out + pos + 4 + table, p + tail, h.len - tail);
    return pos + 4 + table + (h.len - tail);
}

/* A delivery of rec: its message with x-stream-offset in its headers. Made in one go from
 * the record's bytes (one decode, one copy of the body), the common case; the rest through
 * a message decoded and rewritten. */
static struct message *record_message(const struct stream_record *rec)
{
    uint8_t stack[2048];
    size_t n = header_with_offset(rec->header, rec->offset, stack, sizeof(stack));

    if (n > 0) {
        struct message *m =
            message_new(rec->exchange, rec->routing_key, (struct wire_bytes){stack, n},
                        rec->body.len);
        message_append_body(m, rec->body);
        return m;
    }
    return record_message_rewritten(rec);
}

static struct message *record_message_rewritten(const struct stream_record *rec)
{
    struct message *raw = message_new(rec->exchange, rec->routing_key, rec->header, rec->body.len);
    struct wire_props props;
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;
    struct message *m;
    size_t cap;
    uint8_t *buf;
    struct wire_writer w;

    message_append_body(raw, rec->body);
    props = raw->props;
    cap = (props.flags & WIRE_PROP_HEADERS ? props.headers.raw.len : 0) + 64;
    buf = xmalloc(cap);
    w = wire_writer_init(buf, cap);
    if (props.flags & WIRE_PROP_HEADERS) {
        wire_table_iter_init(&it, props.headers);
        while (wire_table_next(&it, &key, &v))
            if (!wire_bytes_eq_cstr(key, "x-stream-offset"))
                wire_table_put_bytes_name(&w, key, &v);
    }
    wire_table_put_i64(&w, "x-stream-offset", (int64_t)rec->offset);
    props.headers.raw = (struct wire_bytes){.ptr = buf, .len = wire_writer_used(&w)};
    props.flags |= WIRE_PROP_HEADERS;
    m = message_rewrite(raw, &props);
    free(buf);
    message_unref(raw);
    return m;
}

void stream_dispatch(struct queue *q)
{
    struct stream_log *log;
    bool more = false;

    if (q->dispatching || q->deleted || q->consumer_count == 0 || (log = log_of(q)) == NULL)
        return;
    q->dispatching = true;
    for (size_t i = 0; i < q->consumer_count; i++) {
        struct consumer *c = q->consumers[i];
        unsigned scanned = 0;

        while (c->stream != NULL && c->ops->can_take(c)) {
            struct stream_record rec;
            struct qentry e;
            int rc = stream_cursor_next(log, &c->stream->cur, &rec);

            if (rc < 0) {
                log_error(NULL, "stream '%.*s': cannot read offset %" PRIu64 ": %s",
                          (int)q->name.len, (const char *)q->name.ptr, c->stream->cur.offset,
                          strerror(-rc));
                break;
            }
            if (rc == 0)
                break;
            if (!passes(c->stream, &rec)) {
                if (++scanned >= SCAN_BUDGET) {
                    more = true;
                    break;
                }
                continue;
            }
            e = (struct qentry){.msg = record_message(&rec), .seq = rec.offset};
            q->stats.delivered++;
            c->ops->deliver(c, &e);
            /* A delivery can close the channel, removing consumers. */
            if (i >= q->consumer_count || q->consumers[i] != c)
                break;
        }
    }
    q->dispatching = false;
    if (more && !ev_is_active(&q->stream->kick))
        ev_timer_start(q->vhost->loop, &q->stream->kick);
}

void stream_info(const struct queue *q, struct stream_info *out)
{
    struct stream_log *log = q->stream != NULL ? log_of((struct queue *)q) : NULL;

    *out = (struct stream_info){0};
    if (log == NULL)
        return;
    out->open = true;
    out->first_offset = stream_log_first_offset(log);
    out->next_offset = stream_log_next_offset(log);
    out->messages = out->next_offset - out->first_offset;
    out->disk_bytes = stream_log_disk_bytes(log);
    out->segments = stream_log_segment_count(log);
}

/* ---- The group commit ------------------------------------------------------------------------ */

static void on_streams_durable(void *ctx, uint64_t seq)
{
    struct persist *p = ctx;

    if (p->stream_durable_cb != NULL)
        p->stream_durable_cb(p->durable_ctx, seq);
}

static void on_streams_failed(void *ctx, int err)
{
    struct persist *p = ctx;

    (void)err;
    if (p->failure_cb != NULL)
        p->failure_cb(p->durable_ctx);
}

struct stream_sync *stream_sync_start(struct ev_loop *loop, struct persist *p)
{
    return stream_sync_new(loop, on_streams_durable, on_streams_failed, p);
}
