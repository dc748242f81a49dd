/* Samples of the queues' counters, for rates and broker-wide totals. */
#include "src/mgmt/mgmt_stats.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"

struct mgmt_queue_sample {
    struct wire_bytes key; /* owned "vhost\0queue": the map points at it */
    /* Which queue was sampled: compared, never dereferenced (it may be freed since). A
     * queue deleted and declared again under the same name starts its counters afresh. */
    const struct queue *q;
    uint64_t prev[MGMT_VALUES], cur[MGMT_VALUES];
    double prev_t, cur_t;
    unsigned samples;
    uint64_t generation;
};

/* A channel's confirms at the last two samples. */
struct mgmt_channel_sample {
    uint8_t key[10]; /* the connection's id, then the channel's: the map points at it */
    const struct channel *ch; /* compared, never dereferenced */
    uint64_t prev, cur;
    double prev_t, cur_t;
    unsigned samples;
    uint64_t generation;
};

static struct wire_bytes channel_key(const struct channel *ch, uint8_t buf[10])
{
    memcpy(buf, &ch->conn->log.conn_id, 8);
    memcpy(buf + 8, &ch->id, 2);
    return (struct wire_bytes){.ptr = buf, .len = 10};
}

/* "vhost\0queue" in buf (names are shortstr or config strings, so 600 bytes hold both). */
static struct wire_bytes queue_key(const struct queue *q, uint8_t *buf, size_t size)
{
    struct wire_bytes v = q->vhost->name, n = q->name;
    size_t len = 0;

    if (v.len + 1 + n.len > size)
        n.len = size - 1 - v.len; /* cannot happen with shortstr names; stays bounded */
    memcpy(buf, v.ptr, v.len);
    len += v.len;
    buf[len++] = '\0';
    memcpy(buf + len, n.ptr, n.len);
    len += n.len;
    return (struct wire_bytes){.ptr = buf, .len = len};
}

uint64_t mgmt_queue_ready(const struct queue *q)
{
    if (q->stream != NULL) {
        struct stream_info si;
        stream_info(q, &si);
        return si.messages;
    }
    return queue_ready_count(q);
}

uint64_t mgmt_queue_unacked(const struct queue *q)
{
    /* The queue counts its deliveries awaiting ack (src/broker/queue.h). */
    return q->deleted || q->stream != NULL ? 0 : q->unacked;
}

void mgmt_queue_values(const struct queue *q, uint64_t out[MGMT_VALUES])
{
    out[MGMT_PUBLISHED] = q->stats.published;
    out[MGMT_DELIVERED] = q->stats.delivered;
    out[MGMT_REDELIVERED] = q->stats.redelivered;
    out[MGMT_ACKED] = q->stats.acked;
    out[MGMT_EXPIRED] = q->stats.expired;
    out[MGMT_DEAD_LETTERED] = q->stats.dead_lettered;
    out[MGMT_DROPPED] = q->stats.dropped;
    out[MGMT_CONFIRMED] = 0; /* the server counts confirms */
    out[MGMT_READY] = mgmt_queue_ready(q);
    out[MGMT_UNACKED] = mgmt_queue_unacked(q);
}

static void on_sample_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mgmt_stats *st = container_of(w, struct mgmt_stats, timer);

    (void)loop;
    (void)revents;
    mgmt_stats_sample(st);
}

void mgmt_stats_init(struct mgmt_stats *st, struct server *s, double interval_s)
{
    memset(st, 0, sizeof *st);
    st->srv = s;
    st->interval_s = interval_s;
    hmap_init(&st->queues);
    hmap_init(&st->channels);
    ev_timer_init(&st->timer, on_sample_timer, interval_s, interval_s);
    ev_timer_start(s->loop, &st->timer);
    mgmt_stats_sample(st);
}

static void sample_free(void *v)
{
    struct mgmt_queue_sample *e = v;

    free((void *)e->key.ptr);
    free(e);
}

void mgmt_stats_free(struct mgmt_stats *st)
{
    void *v;

    if (st->srv == NULL)
        return;
    ev_timer_stop(st->srv->loop, &st->timer);
    for (size_t i = 0; hmap_next(&st->queues, &i, &v);)
        sample_free(v);
    hmap_free(&st->queues);
    for (size_t i = 0; hmap_next(&st->channels, &i, &v);)
        free(v);
    hmap_free(&st->channels);
    st->srv = NULL;
}

/* What deleted queues counted: each vhost adds a queue's final counters when it is deleted,
 * so nothing counted between the last sample and the deletion is lost. And what is counted
 * broker-wide only: confirms. */
static void add_retired(const struct server *s, uint64_t out[MGMT_COUNTERS])
{
    void *v;

    out[MGMT_CONFIRMED] += s->confirmed;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        const struct queue_stats *r = &((const struct vhost *)v)->retired;
        out[MGMT_PUBLISHED] += r->published;
        out[MGMT_DELIVERED] += r->delivered;
        out[MGMT_REDELIVERED] += r->redelivered;
        out[MGMT_ACKED] += r->acked;
        out[MGMT_EXPIRED] += r->expired;
        out[MGMT_DEAD_LETTERED] += r->dead_lettered;
        out[MGMT_DROPPED] += r->dropped;
    }
}

static void sample_queue(struct mgmt_stats *st, const struct queue *q, double now,
                         uint64_t sum[MGMT_VALUES])
{
    uint8_t buf[600];
    struct wire_bytes key = queue_key(q, buf, sizeof buf);
    struct mgmt_queue_sample *e = hmap_get(&st->queues, key);
    uint64_t values[MGMT_VALUES];

    if (e == NULL) {
        uint8_t *owned = xmalloc(key.len);
        memcpy(owned, key.ptr, key.len);
        e = xcalloc(1, sizeof *e);
        e->key = (struct wire_bytes){.ptr = owned, .len = key.len};
        e->q = q;
        hmap_put(&st->queues, e->key, e);
    } else if (e->q != q) {
        /* A queue of the same name replaced it (its vhost kept the old one's counts). */
        e->q = q;
        e->samples = 0;
    }
    mgmt_queue_values(q, values);
    memcpy(e->prev, e->cur, sizeof e->prev);
    e->prev_t = e->cur_t;
    memcpy(e->cur, values, sizeof e->cur);
    e->cur_t = now;
    e->samples++;
    e->generation = st->generation;
    for (int i = 0; i < MGMT_VALUES; i++)
        sum[i] += values[i];
}

static void sample_channel(struct mgmt_stats *st, const struct channel *ch, double now)
{
    uint8_t buf[10];
    struct wire_bytes key = channel_key(ch, buf);
    struct mgmt_channel_sample *e = hmap_get(&st->channels, key);

    if (e == NULL) {
        e = xcalloc(1, sizeof *e);
        memcpy(e->key, buf, sizeof e->key);
        e->ch = ch;
        hmap_put(&st->channels, (struct wire_bytes){.ptr = e->key, .len = sizeof e->key}, e);
    } else if (e->ch != ch) {
        e->ch = ch;
        e->samples = 0;
    }
    e->prev = e->cur;
    e->prev_t = e->cur_t;
    e->cur = ch->confirmed;
    e->cur_t = now;
    e->samples++;
    e->generation = st->generation;
}

/* Samples not refreshed by this round belong to queues or channels that are gone. */
static bool queue_gone(const void *v, void *st)
{
    return ((const struct mgmt_queue_sample *)v)->generation !=
           ((struct mgmt_stats *)st)->generation;
}

static bool channel_gone(const void *v, void *st)
{
    return ((const struct mgmt_channel_sample *)v)->generation !=
           ((struct mgmt_stats *)st)->generation;
}

/* Every open channel's confirms; the samples of channels gone are dropped. */
static void sample_channels(struct mgmt_stats *st, double now)
{
    for (const struct conn *c = st->srv->conns; c != NULL; c = c->next) {
        for (uint32_t i = 0; i < c->channels_cap; i++) {
            if (c->channels[i] != NULL)
                sample_channel(st, c->channels[i], now);
        }
    }
    hmap_remove_if(&st->channels, channel_gone, st, free);
}

void mgmt_stats_sample(struct mgmt_stats *st)
{
    struct server *s = st->srv;
    double now = ev_now(s->loop);
    uint64_t sum[MGMT_VALUES] = {0};
    void *v, *qv;

    st->generation++;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);)
            sample_queue(st, qv, now, sum);
    }
    /* Queues not seen this time are gone (their vhost kept their counts): drop the samples. */
    hmap_remove_if(&st->queues, queue_gone, st, sample_free);
    sample_channels(st, now);
    add_retired(s, sum);
    memcpy(st->prev, st->cur, sizeof st->prev);
    st->prev_t = st->cur_t;
    memcpy(st->cur, sum, sizeof st->cur);
    st->cur_t = now;
    st->samples++;
}

static double rate(uint64_t prev, uint64_t cur, double prev_t, double cur_t, bool counter)
{
    double dt = cur_t - prev_t;

    if (dt <= 0)
        return 0.0;
    /* A counter that went down was reset (queue recreated): no rate rather than a wrong one. */
    if (counter && cur < prev)
        return 0.0;
    return ((double)cur - (double)prev) / dt;
}

double mgmt_stats_queue_rate(const struct mgmt_stats *st, const struct queue *q, enum mgmt_value v)
{
    uint8_t buf[600];
    const struct mgmt_queue_sample *e = hmap_get(&st->queues, queue_key(q, buf, sizeof buf));

    if (e == NULL || e->q != q || e->samples < 2)
        return 0.0;
    return rate(e->prev[v], e->cur[v], e->prev_t, e->cur_t, v < MGMT_COUNTERS);
}

double mgmt_stats_global_rate(const struct mgmt_stats *st, enum mgmt_value v)
{
    if (st->samples < 2)
        return 0.0;
    return rate(st->prev[v], st->cur[v], st->prev_t, st->cur_t, v < MGMT_COUNTERS);
}

double mgmt_stats_channel_confirm_rate(const struct mgmt_stats *st, const struct channel *ch)
{
    uint8_t buf[10];
    const struct mgmt_channel_sample *e = hmap_get(&st->channels, channel_key(ch, buf));

    if (e == NULL || e->ch != ch || e->samples < 2)
        return 0.0;
    return rate(e->prev, e->cur, e->prev_t, e->cur_t, true);
}

void mgmt_stats_totals(struct mgmt_stats *st, uint64_t out[MGMT_COUNTERS])
{
    struct server *s = st->srv;
    uint64_t values[MGMT_VALUES];
    void *v, *qv;

    memset(out, 0, MGMT_COUNTERS * sizeof *out);
    add_retired(s, out);
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            mgmt_queue_values(qv, values);
            for (int c = 0; c < MGMT_COUNTERS; c++)
                out[c] += values[c];
        }
    }
    /* A deleted vhost takes its queues' counts and its retired ones with it: hold the
     * totals, which never go down. */
    for (int c = 0; c < MGMT_COUNTERS; c++) {
        if (out[c] < st->reported[c])
            out[c] = st->reported[c];
        st->reported[c] = out[c];
    }
}
