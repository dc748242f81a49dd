/* The coordinator's watches (src/cluster/coord_internal.h), on its thread: the candidates
 * of the election, from which it reports who leads, and the isr and transfer keys. Each is
 * a range read, then a watch from the revision after it; a lost watch starts over. */
#include "src/cluster/coord_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"

/* ---- Coordinator thread: who leads (a watch on the candidates) ------------------------------ */

void coord_cands_clear(struct coord *c)
{
    size_t i;

    for (i = 0; i < c->n_cands; i++) {
        free(c->cands[i].key);
        free(c->cands[i].value);
    }
    free(c->cands);
    c->cands = NULL;
    c->n_cands = 0;
}

static void cands_put(struct coord *c, const struct etcd_kv *kv)
{
    struct candidate *cd = NULL;
    size_t i;

    for (i = 0; i < c->n_cands; i++)
        if (strcmp(c->cands[i].key, (const char *)kv->key) == 0)
            cd = &c->cands[i];
    if (cd == NULL) {
        c->cands = xrealloc(c->cands, (c->n_cands + 1) * sizeof(*c->cands));
        cd = &c->cands[c->n_cands++];
        cd->key = xstrdup((const char *)kv->key);
    } else {
        free(cd->value);
    }
    cd->create_revision = kv->create_revision;
    cd->lease = kv->lease;
    cd->value = xstrdup((const char *)kv->value);
}

static void cands_delete(struct coord *c, const char *key)
{
    size_t i;

    for (i = 0; i < c->n_cands; i++) {
        if (strcmp(c->cands[i].key, key) == 0) {
            free(c->cands[i].key);
            free(c->cands[i].value);
            c->cands[i] = c->cands[--c->n_cands];
            return;
        }
    }
}

/* The leader is the candidate created first. Reported when it changes. */
void coord_report_leader(struct coord *c)
{
    const struct candidate *best = NULL;
    struct msg *m;
    size_t i;

    if (!c->observing)
        return;
    for (i = 0; i < c->n_cands; i++)
        if (best == NULL || c->cands[i].create_revision < best->create_revision)
            best = &c->cands[i];
    if (c->leader_reported &&
        (best == NULL ? c->reported_key == NULL
                      : c->reported_key != NULL && strcmp(best->key, c->reported_key) == 0 &&
                            best->create_revision == c->reported_rev))
        return;
    c->leader_reported = true;
    free(c->reported_key);
    c->reported_key = best != NULL ? xstrdup(best->key) : NULL;
    c->reported_rev = best != NULL ? best->create_revision : 0;
    m = coord_msg_new(EVT_LEADER);
    if (best != NULL) {
        m->n1 = best->create_revision;
        m->n2 = best->lease;
        m->s1 = coord_value_node_id(best->value);
        m->s2 = xstrdup(best->value);
    }
    coord_post(c, m);
}

static void leader_watch_retry(struct coord *c)
{
    etcd_cancel(c->leader_watch);
    etcd_cancel(c->leader_range);
    c->leader_watch = c->leader_range = NULL;
    ev_timer_set(&c->leader_retry, RETRY_MS / 1000.0, 0.0);
    ev_timer_start(c->loop, &c->leader_retry);
}

static void on_leader_events(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;
    size_t i;

    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: watch of %s/ ended: %s; reading it again", c->leader_name,
                 r->message);
        leader_watch_retry(c);
        return;
    }
    for (i = 0; i < r->n_events; i++) {
        const struct etcd_event *ev = &r->events[i];

        if (ev->type == ETCD_EVENT_PUT) {
            cands_put(c, &ev->kv);
            continue;
        }
        cands_delete(c, (const char *)ev->kv.key);
        if (c->elected && c->own_key != NULL && strcmp((const char *)ev->kv.key, c->own_key) == 0) {
            c->elected = false;
            log_warn(NULL, "cluster: leader key %s deleted: node %s no longer leads epoch %" PRId64,
                     c->own_key, c->node_id, c->epoch);
            coord_post_event(c, EVT_DEPOSED, c->epoch, NULL);
        }
    }
    coord_report_leader(c);
}

static void on_leader_range(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;
    size_t i;
    uint8_t end[512];
    char prefix[512];
    size_t end_len;

    c->leader_range = NULL;
    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: reading %s/ failed: %s", c->leader_name, r->message);
        leader_watch_retry(c);
        return;
    }
    coord_cands_clear(c);
    for (i = 0; i < r->n_kvs; i++)
        cands_put(c, &r->kvs[i]);
    coord_report_leader(c);
    snprintf(prefix, sizeof(prefix), "%s/", c->leader_name);
    end_len = etcd_prefix_end(prefix, strlen(prefix), end);
    c->leader_watch = etcd_watch(c->etcd, prefix, strlen(prefix), end, end_len, r->revision + 1, 0,
                                 on_leader_events, c);
}

void coord_leader_watch_start(struct coord *c)
{
    char prefix[512];
    uint8_t end[512];
    size_t end_len;

    c->leader_watch_wanted = true;
    if (c->leader_range != NULL || c->leader_watch != NULL || c->stopping)
        return;
    snprintf(prefix, sizeof(prefix), "%s/", c->leader_name);
    end_len = etcd_prefix_end(prefix, strlen(prefix), end);
    c->leader_range =
        etcd_range(c->etcd, prefix, strlen(prefix), end, end_len, 0, 0, on_leader_range, c);
}

static void on_leader_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord_leader_watch_start(container_of(w, struct coord, leader_retry));
}

/* ---- Coordinator thread: isr and transfer ---------------------------------------------------- */

/* An event for the value of a watched key (value NULL: deleted or absent). */
static void post_key_value(struct key_watch *kw, const struct etcd_kv *kv, bool deleted)
{
    struct coord *c = kw->c;
    struct msg *m = coord_msg_new(kw->event);
    bool ok = true;

    if (!deleted && kv != NULL) {
        ok = kw->event == EVT_ISR ? coord_parse_isr(kv->value, kv->value_len, m)
                                  : coord_parse_transfer(kv->value, kv->value_len, m);
        m->n3 = kv->mod_revision;
    }
    if (!ok) {
        log_warn(NULL, "cluster: %s%s holds no valid value: ignored", c->prefix, kw->suffix);
        coord_msg_free(m);
        return;
    }
    coord_post(c, m);
}

static void key_watch_retry(struct key_watch *kw)
{
    etcd_cancel(kw->watch);
    etcd_cancel(kw->range);
    kw->watch = kw->range = NULL;
    ev_timer_set(&kw->retry, RETRY_MS / 1000.0, 0.0);
    ev_timer_start(kw->c->loop, &kw->retry);
}

static void on_key_events(const struct etcd_response *r, void *arg)
{
    struct key_watch *kw = arg;
    size_t i;

    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: watch of %s%s ended: %s; reading it again", kw->c->prefix,
                 kw->suffix, r->message);
        key_watch_retry(kw);
        return;
    }
    for (i = 0; i < r->n_events; i++)
        post_key_value(kw, &r->events[i].kv, r->events[i].type == ETCD_EVENT_DELETE);
}

static void on_key_range(const struct etcd_response *r, void *arg)
{
    struct key_watch *kw = arg;
    struct coord *c = kw->c;
    char key[512];

    kw->range = NULL;
    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: reading %s%s failed: %s", c->prefix, kw->suffix, r->message);
        key_watch_retry(kw);
        return;
    }
    post_key_value(kw, r->n_kvs > 0 ? &r->kvs[0] : NULL, r->n_kvs == 0);
    snprintf(key, sizeof(key), "%s%s", c->prefix, kw->suffix);
    kw->watch =
        etcd_watch(c->etcd, key, strlen(key), NULL, 0, r->revision + 1, 0, on_key_events, kw);
}

void coord_key_watch_start(struct key_watch *kw)
{
    char key[512];

    kw->wanted = true;
    if (kw->range != NULL || kw->watch != NULL || kw->c->stopping)
        return;
    snprintf(key, sizeof(key), "%s%s", kw->c->prefix, kw->suffix);
    kw->range = etcd_range(kw->c->etcd, key, strlen(key), NULL, 0, 0, 0, on_key_range, kw);
}

static void on_key_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord_key_watch_start(container_of(w, struct key_watch, retry));
}

void coord_watches_init(struct coord *c)
{
    ev_init(&c->leader_retry, on_leader_retry);
    c->isr_watch = (struct key_watch){.c = c, .suffix = "isr", .event = EVT_ISR};
    c->transfer_watch = (struct key_watch){.c = c, .suffix = "transfer", .event = EVT_TRANSFER};
    ev_init(&c->isr_watch.retry, on_key_retry);
    ev_init(&c->transfer_watch.retry, on_key_retry);
}
