/* The coordinator on etcd. Two threads meet here:
 *
 *   main thread (main_loop)       coordinator thread (c->loop, the etcd client)
 *   coord_campaign() ...  --- requests (c->requests, mutex, ev_async wake) --->
 *   callbacks            <--- events   (c->events,   mutex, ev_async main_async) ---
 *
 * A request message is answered by turning it into its own result and posting it back.
 * Everything below "Coordinator thread" runs on the coordinator's thread only and so needs
 * no lock; the heartbeat, the lease deadline and the lease id are atomics. The watches
 * (who leads, the isr and transfer keys) are in coord_watch.c; what both files share, in
 * coord_internal.h. */
#include "src/cluster/coord.h"

#include <ev.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/coord_internal.h"
#include "src/cluster/etcd.h"

/* ---- Messages ------------------------------------------------------------------------------ */

static void free_list(char **list, size_t n)
{
    size_t i;

    for (i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

void coord_msg_free(struct msg *m)
{
    free(m->s1);
    free(m->s2);
    free_list(m->list, m->n);
    free_list(m->list2, m->n);
    free(m->nums);
    free(m);
}

struct msg *coord_msg_new(enum msg_kind kind)
{
    struct msg *m = xcalloc(1, sizeof(*m));

    m->kind = kind;
    return m;
}

static void queue_push(struct queue *q, struct msg *m)
{
    m->next = NULL;
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
}

static struct msg *queue_take_all(struct queue *q)
{
    struct msg *all = q->head;

    q->head = q->tail = NULL;
    return all;
}

static void free_chain(struct msg *m)
{
    while (m != NULL) {
        struct msg *next = m->next;

        coord_msg_free(m);
        m = next;
    }
}

/* From the coordinator thread to the main loop. */
void coord_post(struct coord *c, struct msg *m)
{
    pthread_mutex_lock(&c->mu);
    queue_push(&c->events, m);
    pthread_mutex_unlock(&c->mu);
    ev_async_send(c->main_loop, &c->main_async);
}

static void answer(struct coord *c, struct msg *m, int status)
{
    m->result = true;
    m->status = status;
    coord_post(c, m);
}

/* From the main thread to the coordinator thread. */
static void request(struct coord *c, struct msg *m)
{
    if (c->stopped) {
        coord_msg_free(m);
        return;
    }
    pthread_mutex_lock(&c->mu);
    queue_push(&c->requests, m);
    pthread_mutex_unlock(&c->mu);
    ev_async_send(c->loop, &c->wake);
}

/* ---- Values --------------------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* {"epoch": E, "members": [...]} into m (n1, list, n). */
bool coord_parse_isr(const uint8_t *value, size_t len, struct msg *m)
{
    json_t *root = json_loadb((const char *)value, len, 0, NULL);
    json_t *epoch = json_object_get(root, "epoch"), *members = json_object_get(root, "members");
    size_t i;
    bool ok = false;

    if (!json_is_integer(epoch) || !json_is_array(members))
        goto out;
    m->n1 = json_integer_value(epoch);
    m->list = xcalloc(json_array_size(members) + 1, sizeof(char *));
    for (i = 0; i < json_array_size(members); i++) {
        json_t *id = json_array_get(members, i);

        if (!json_is_string(id))
            goto out;
        m->list[m->n++] = xstrdup(json_string_value(id));
    }
    ok = true;
out:
    json_decref(root);
    return ok;
}

bool coord_parse_transfer(const uint8_t *value, size_t len, struct msg *m)
{
    json_t *root = json_loadb((const char *)value, len, 0, NULL);
    json_t *epoch = json_object_get(root, "epoch"), *target = json_object_get(root, "target");
    bool ok = json_is_integer(epoch) && json_is_string(target);

    if (ok) {
        m->n1 = json_integer_value(epoch);
        m->s1 = xstrdup(json_string_value(target));
    }
    json_decref(root);
    return ok;
}

/* The "id" of a node value (NULL if it has none). */
char *coord_value_node_id(const char *value)
{
    json_t *root = json_loads(value, 0, NULL);
    json_t *id = json_object_get(root, "id");
    char *out = json_is_string(id) ? xstrdup(json_string_value(id)) : NULL;

    json_decref(root);
    return out;
}

static void fill_isr(const struct msg *m, struct coord_isr *isr)
{
    isr->epoch = m->n1;
    isr->members = (const char *const *)m->list;
    isr->n_members = m->n;
    isr->mod_revision = m->n3;
}

/* ---- Main thread: delivery ----------------------------------------------------------------- */

static void deliver_result(struct coord *c, struct msg *m)
{
    struct coord_isr isr = {0};
    struct coord_node *nodes;
    size_t i;

    if (m->cb == NULL)
        return;
    switch (m->kind) {
    case REQ_RESIGN:
    case REQ_TRANSFER_WRITE:
    case REQ_REVOKE:
        ((coord_done_cb *)m->cb)(m->arg, m->status);
        break;
    case REQ_SECRET:
        ((coord_secret_cb *)m->cb)(m->arg, m->status, m->status == COORD_OK ? m->s1 : NULL);
        break;
    case REQ_ISR_READ:
    case REQ_ISR_WRITE:
        fill_isr(m, &isr);
        ((coord_isr_cb *)m->cb)(m->arg, m->status, &isr);
        break;
    case REQ_LIST_NODES:
        nodes = xcalloc(m->n + 1, sizeof(*nodes));
        for (i = 0; i < m->n; i++)
            nodes[i] = (struct coord_node){m->list[i], m->list2[i], m->nums[i]};
        ((coord_nodes_cb *)m->cb)(m->arg, m->status, nodes, m->n);
        free(nodes);
        break;
    default:
        break;
    }
    (void)c;
}

static void deliver_event(struct coord *c, struct msg *m)
{
    const struct coord_callbacks *cb = &c->cb;
    struct coord_leader leader;
    struct coord_isr isr = {0};

    switch (m->kind) {
    case EVT_READY:
        if (cb->on_ready)
            cb->on_ready(c->ctx, m->n1);
        break;
    case EVT_LEASE_LOST:
        if (cb->on_lease_lost)
            cb->on_lease_lost(c->ctx, m->s1);
        break;
    case EVT_ELECTED:
        if (cb->on_elected)
            cb->on_elected(c->ctx, m->n1);
        break;
    case EVT_DEPOSED:
        if (cb->on_deposed)
            cb->on_deposed(c->ctx, m->n1);
        break;
    case EVT_LEADER:
        if (cb->on_leader == NULL)
            break;
        leader = (struct coord_leader){m->n1, m->s1, m->s2, m->n2};
        cb->on_leader(c->ctx, m->s2 != NULL ? &leader : NULL);
        break;
    case EVT_ISR:
        fill_isr(m, &isr);
        if (cb->on_isr)
            cb->on_isr(c->ctx, &isr);
        break;
    case EVT_TRANSFER:
        if (cb->on_transfer)
            cb->on_transfer(c->ctx, m->n1, m->s1);
        break;
    default:
        break;
    }
}

static void coord_free(struct coord *c);

static void on_main_async(struct ev_loop *loop, ev_async *w, int revents)
{
    struct coord *c = container_of(w, struct coord, main_async);
    struct msg *all, *m;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&c->mu);
    all = queue_take_all(&c->events);
    pthread_mutex_unlock(&c->mu);
    c->dispatching = true;
    for (m = all; m != NULL && !c->stop_pending; m = m->next) {
        if (m->result)
            deliver_result(c, m);
        else
            deliver_event(c, m);
    }
    c->dispatching = false;
    free_chain(all);
    if (c->stop_pending)
        coord_free(c);
}

/* The context of an etcd call made for a request message. Listed in c->pendings so that
 * what is in flight when the coordinator stops (its callbacks then never run) is freed. */
struct pending {
    struct coord *c;
    struct msg *m;
    struct pending *prev, *next;
};

static struct pending *pending_new(struct coord *c, struct msg *m)
{
    struct pending *p = xcalloc(1, sizeof(*p));

    p->c = c;
    p->m = m;
    p->next = c->pendings;
    if (c->pendings != NULL)
        c->pendings->prev = p;
    c->pendings = p;
    return p;
}

/* Answers p's request with status and frees p. */
static void pending_answer(struct pending *p, int status)
{
    struct coord *c = p->c;

    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        c->pendings = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    answer(c, p->m, status);
    free(p);
}

/* ---- Coordinator thread: lease -------------------------------------------------------------- */

static void start_campaign(struct coord *c);

void coord_post_event(struct coord *c, enum msg_kind kind, int64_t n1, const char *s1)
{
    struct msg *m = coord_msg_new(kind);

    m->n1 = n1;
    m->s1 = s1 != NULL ? xstrdup(s1) : NULL;
    coord_post(c, m);
}

static void set_deadline(struct coord *c, uint64_t deadline)
{
    uint64_t now = now_ms();

    atomic_store(&c->deadline_ms, deadline);
    ev_timer_stop(c->loop, &c->deadline_timer);
    ev_timer_set(&c->deadline_timer, deadline > now ? (double)(deadline - now) / 1000.0 : 0.0, 0.0);
    ev_timer_start(c->loop, &c->deadline_timer);
}

static void lose_lease(struct coord *c, const char *reason)
{
    uint64_t now = now_ms();

    if (c->lease_state == LEASE_LOST)
        return;
    c->lease_state = LEASE_LOST;
    log_error(NULL, "cluster: lease %" PRIx64 " lost: %s", (uint64_t)atomic_load(&c->lease_id),
              reason);
    if (atomic_load(&c->deadline_ms) > now)
        atomic_store(&c->deadline_ms, now);
    ev_timer_stop(c->loop, &c->renew_timer);
    ev_timer_stop(c->loop, &c->deadline_timer);
    ev_timer_stop(c->loop, &c->campaign_retry);
    etcd_cancel(c->keepalive_req);
    c->keepalive_req = NULL;
    etcd_cancel(c->campaign_req);
    c->campaign_req = NULL;
    etcd_cancel(c->register_req);
    c->register_req = NULL;
    c->want_campaign = false;
    c->elected = false;
    coord_post_event(c, EVT_LEASE_LOST, 0, reason);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct coord *c = container_of(w, struct coord, deadline_timer);
    uint64_t deadline = atomic_load(&c->deadline_ms);

    (void)loop;
    (void)revents;
    if (c->lease_state != LEASE_LIVE)
        return;
    if (now_ms() >= deadline)
        lose_lease(c, c->stalled ? "the main loop stalled, so the lease was not renewed"
                                 : "no renewal succeeded before the lease deadline");
    else
        set_deadline(c, deadline);
}

static void on_keepalive(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;

    c->keepalive_req = NULL;
    if (c->lease_state != LEASE_LIVE)
        return;
    if (r->err == ETCD_OK) {
        uint64_t deadline = c->keepalive_sent_ms + (uint64_t)r->ttl * 1000;

        if (deadline > atomic_load(&c->deadline_ms))
            set_deadline(c, deadline);
    } else if (r->err == ETCD_E_LEASE_NOT_FOUND) {
        lose_lease(c, "etcd says the lease is gone");
    } else {
        double every = (double)c->ttl_granted_s / 3.0;
        log_warn(NULL, "cluster: lease renewal failed: %s", r->message);
        /* Again soon (the client moved on to the next endpoint), not a third of the TTL
         * later: when the etcd leader dies, its members answer again within about an
         * election timeout, and the lease deadline may come before the next tick. */
        ev_timer_stop(c->loop, &c->renew_timer);
        ev_timer_set(&c->renew_timer, RENEW_RETRY_S, every);
        ev_timer_start(c->loop, &c->renew_timer);
    }
}

/* Every TTL/3: renew, if the main loop proved alive recently. */
static void on_renew(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct coord *c = container_of(w, struct coord, renew_timer);
    uint64_t now = now_ms(), beat = atomic_load(&c->heartbeat_ms);

    (void)loop;
    (void)revents;
    if (c->lease_state != LEASE_LIVE || c->keepalive_req != NULL)
        return;
    if (now > beat && now - beat > c->stall_ms) {
        if (!c->stalled)
            log_error(NULL,
                      "cluster: no heartbeat from the main loop for %" PRIu64
                      " ms: lease renewals stop",
                      now - beat);
        c->stalled = true;
        return;
    }
    if (c->stalled)
        log_warn(NULL, "cluster: the main loop is alive again: lease renewals resume");
    c->stalled = false;
    c->keepalive_sent_ms = now;
    c->keepalive_req = etcd_lease_keepalive(c->etcd, atomic_load(&c->lease_id), on_keepalive, c);
}

static void start_grant(struct coord *c);

static void on_registered(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;

    c->register_req = NULL;
    if (c->lease_state != LEASE_LIVE)
        return;
    if (r->err == ETCD_E_LEASE_NOT_FOUND) {
        lose_lease(c, "etcd says the lease is gone");
        return;
    }
    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: registering %s failed: %s", c->node_key, r->message);
        ev_timer_set(&c->grant_retry, RETRY_MS / 1000.0, 0.0);
        ev_timer_start(c->loop, &c->grant_retry);
        return;
    }
    c->registered = true;
    log_info(NULL, "cluster: node %s registered with lease %" PRIx64 " (TTL %" PRId64 " s)",
             c->node_id, (uint64_t)atomic_load(&c->lease_id), c->ttl_granted_s);
    coord_post_event(c, EVT_READY, atomic_load(&c->lease_id), NULL);
    start_campaign(c);
}

static void register_node(struct coord *c)
{
    c->register_req = etcd_put(c->etcd, c->node_key, strlen(c->node_key), c->node_value,
                               strlen(c->node_value), atomic_load(&c->lease_id), on_registered, c);
}

static void on_granted(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;
    char own[64];
    double every;

    c->grant_req = NULL;
    if (c->lease_state != LEASE_GRANTING)
        return;
    if (r->err != ETCD_OK) {
        bool busy = r->message != NULL && strstr(r->message, "lease already exists") != NULL;

        if (busy && !c->lease_busy_logged)
            log_warn(NULL,
                     "cluster: lease %" PRIx64 " exists (another process with this "
                     "node id?): waiting for it to expire",
                     (uint64_t)c->wanted_lease_id);
        else if (!busy)
            log_warn(NULL, "cluster: lease grant failed: %s", r->message);
        c->lease_busy_logged = busy;
        c->lease_state = LEASE_NONE;
        ev_timer_set(&c->grant_retry, (busy ? LEASE_BUSY_MS : RETRY_MS) / 1000.0, 0.0);
        ev_timer_start(c->loop, &c->grant_retry);
        return;
    }
    c->lease_state = LEASE_LIVE;
    c->ttl_granted_s = r->ttl > 0 ? r->ttl : c->ttl_s;
    atomic_store(&c->lease_id, r->lease_id);
    /* The election names a candidate key after its lease: fmt "%x" in etcd. */
    snprintf(own, sizeof(own), "%" PRIx64, (uint64_t)r->lease_id);
    free(c->own_key);
    c->own_key = xmalloc(strlen(c->leader_name) + strlen(own) + 2);
    sprintf(c->own_key, "%s/%s", c->leader_name, own);
    set_deadline(c, c->keepalive_sent_ms + (uint64_t)c->ttl_granted_s * 1000);
    every = (double)c->ttl_granted_s / 3.0;
    ev_timer_set(&c->renew_timer, every, every);
    ev_timer_start(c->loop, &c->renew_timer);
    register_node(c);
}

static void start_grant(struct coord *c)
{
    if (c->lease_state != LEASE_NONE || c->stopping)
        return;
    c->lease_state = LEASE_GRANTING;
    c->keepalive_sent_ms = now_ms(); /* the grant starts the first TTL */
    c->grant_req = etcd_lease_grant(c->etcd, c->ttl_s, c->wanted_lease_id, on_granted, c);
}

static void on_grant_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct coord *c = container_of(w, struct coord, grant_retry);

    (void)loop;
    (void)revents;
    if (c->lease_state == LEASE_NONE)
        start_grant(c);
    else if (c->lease_state == LEASE_LIVE && !c->registered && c->register_req == NULL)
        register_node(c);
}

/* ---- Coordinator thread: election ------------------------------------------------------------ */

static void clear_leader_key(struct etcd_leader_key *k)
{
    free(k->name);
    free(k->key);
    memset(k, 0, sizeof(*k));
}

static void on_campaign(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;

    c->campaign_req = NULL;
    if (c->lease_state != LEASE_LIVE || !c->want_campaign)
        return;
    if (r->err == ETCD_E_LEASE_NOT_FOUND) {
        lose_lease(c, "etcd says the lease is gone (campaign)");
        return;
    }
    if (r->err != ETCD_OK) {
        log_warn(NULL, "cluster: campaign failed: %s; again in %d ms", r->message, RETRY_MS);
        ev_timer_set(&c->campaign_retry, RETRY_MS / 1000.0, 0.0);
        ev_timer_start(c->loop, &c->campaign_retry);
        return;
    }
    clear_leader_key(&c->leader_key);
    c->leader_key.name = xmalloc(r->leader.name_len + 1);
    memcpy(c->leader_key.name, r->leader.name, r->leader.name_len + 1);
    c->leader_key.name_len = r->leader.name_len;
    c->leader_key.key = xmalloc(r->leader.key_len + 1);
    memcpy(c->leader_key.key, r->leader.key, r->leader.key_len + 1);
    c->leader_key.key_len = r->leader.key_len;
    c->leader_key.rev = r->leader.rev;
    c->leader_key.lease = r->leader.lease;
    c->elected = true;
    c->epoch = r->leader.rev;
    log_info(NULL, "cluster: node %s elected leader, epoch %" PRId64, c->node_id, c->epoch);
    coord_post_event(c, EVT_ELECTED, c->epoch, NULL);
}

static void start_campaign(struct coord *c)
{
    if (!c->want_campaign || c->lease_state != LEASE_LIVE || !c->registered ||
        c->campaign_req != NULL || c->elected || c->stopping)
        return;
    /* To see our own key vanish while leading (on_deposed). */
    coord_leader_watch_start(c);
    c->campaign_req =
        etcd_campaign(c->etcd, c->leader_name, strlen(c->leader_name), atomic_load(&c->lease_id),
                      c->node_value, strlen(c->node_value), on_campaign, c);
}

static void on_campaign_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    start_campaign(container_of(w, struct coord, campaign_retry));
}

static void on_resigned(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;

    if (r->err != ETCD_OK && r->err != ETCD_E_LEASE_NOT_FOUND)
        log_warn(NULL, "cluster: resign failed: %s", r->message);
    pending_answer(p,
                   r->err == ETCD_OK || r->err == ETCD_E_LEASE_NOT_FOUND ? COORD_OK : COORD_ERROR);
}

static void do_resign(struct coord *c, struct msg *m)
{
    c->want_campaign = false;
    ev_timer_stop(c->loop, &c->campaign_retry);
    if (c->elected) {
        c->elected = false; /* before the delete event: not a deposition */
        log_info(NULL, "cluster: node %s resigns leadership of epoch %" PRId64, c->node_id,
                 c->epoch);
        etcd_election_resign(c->etcd, &c->leader_key, on_resigned, pending_new(c, m));
        return;
    }
    if (c->campaign_req != NULL || c->own_key != NULL) {
        /* Cut the wait short; etcd withdraws the key when it notices, we do it now. */
        etcd_cancel(c->campaign_req);
        c->campaign_req = NULL;
        if (c->own_key != NULL) {
            etcd_delete(c->etcd, c->own_key, strlen(c->own_key), NULL, 0, false, on_resigned,
                        pending_new(c, m));
            return;
        }
    }
    answer(c, m, COORD_OK);
}

/* ---- Coordinator thread: one-shot requests -------------------------------------------------- */

static int status_of(const struct etcd_response *r, const char *what)
{
    if (r->err == ETCD_OK)
        return COORD_OK;
    log_warn(NULL, "cluster: %s failed: %s", what, r->message);
    return r->err == ETCD_E_LEASE_NOT_FOUND ? COORD_NO_LEASE : COORD_ERROR;
}

static void on_secret(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;
    int status = status_of(r, "reading the cluster secret");

    if (status == COORD_OK && !r->succeeded) {
        free(p->m->s1); /* another node's secret came first */
        p->m->s1 = NULL;
        if (r->n_kvs == 1)
            p->m->s1 = xstrdup((const char *)r->kvs[0].value);
        else
            status = COORD_ERROR; /* deleted between compare and range: cannot be */
    }
    if (status != COORD_OK) {
        free(p->m->s1);
        p->m->s1 = NULL;
    }
    pending_answer(p, status);
}

static void do_secret(struct coord *c, struct msg *m)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[32];
    char text[65];
    size_t i;
    struct etcd_compare cmp = {.key = c->secret_key,
                               .key_len = strlen(c->secret_key),
                               .target = ETCD_CMP_CREATE,
                               .result = ETCD_CMP_EQUAL,
                               .number = 0};
    struct etcd_op put = {.type = ETCD_OP_PUT,
                          .key = c->secret_key,
                          .key_len = strlen(c->secret_key),
                          .value = text,
                          .value_len = 64};
    struct etcd_op get = {
        .type = ETCD_OP_RANGE, .key = c->secret_key, .key_len = strlen(c->secret_key)};
    struct etcd_txn t = {&cmp, 1, &put, 1, &get, 1};

    random_bytes(raw, sizeof(raw));
    for (i = 0; i < sizeof(raw); i++) {
        text[2 * i] = hex[raw[i] >> 4];
        text[2 * i + 1] = hex[raw[i] & 15];
    }
    text[64] = '\0';
    m->s1 = xstrdup(text); /* the answer if our put wins */
    etcd_txn(c->etcd, &t, on_secret, pending_new(c, m));
}

static void on_nodes(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;
    struct msg *m = p->m;
    int status = status_of(r, "listing nodes");
    size_t plen = strlen(p->c->prefix) + strlen("nodes/"), i;

    if (status == COORD_OK) {
        m->list = xcalloc(r->n_kvs + 1, sizeof(char *));
        m->list2 = xcalloc(r->n_kvs + 1, sizeof(char *));
        m->nums = xcalloc(r->n_kvs + 1, sizeof(int64_t));
        /* etcd returns a range sorted by key, so by id. */
        for (i = 0; i < r->n_kvs; i++) {
            const struct etcd_kv *kv = &r->kvs[i];

            m->list[i] = xstrdup(kv->key_len > plen ? (const char *)kv->key + plen : "");
            m->list2[i] = xstrdup((const char *)kv->value);
            m->nums[i] = kv->lease;
        }
        m->n = r->n_kvs;
    }
    pending_answer(p, status);
}

static void do_list_nodes(struct coord *c, struct msg *m)
{
    char prefix[512];
    uint8_t end[512];
    size_t end_len;

    snprintf(prefix, sizeof(prefix), "%snodes/", c->prefix);
    end_len = etcd_prefix_end(prefix, strlen(prefix), end);
    etcd_range(c->etcd, prefix, strlen(prefix), end, end_len, 0, 0, on_nodes, pending_new(c, m));
}

static void on_isr_read(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;
    int status = status_of(r, "reading the isr");

    if (status == COORD_OK && r->n_kvs == 1) {
        if (coord_parse_isr(r->kvs[0].value, r->kvs[0].value_len, p->m)) {
            p->m->n3 = r->kvs[0].mod_revision;
        } else {
            log_warn(NULL, "cluster: %s holds no valid isr", p->c->isr_key);
            status = COORD_ERROR;
        }
    }
    pending_answer(p, status);
}

static void on_fenced_write(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;
    int status =
        status_of(r, p->m->kind == REQ_ISR_WRITE ? "writing the isr" : "writing the transfer");

    if (status == COORD_OK && !r->succeeded) {
        log_warn(NULL, "cluster: %s write of epoch %" PRId64 " fenced: not the leader of it",
                 p->m->kind == REQ_ISR_WRITE ? "isr" : "transfer", p->m->n1);
        status = COORD_FENCED;
    }
    if (status == COORD_OK)
        p->m->n3 = r->revision;
    pending_answer(p, status);
}

/* Puts (or deletes, value NULL) key if this node's leader key was created at epoch. */
static void fenced_write(struct coord *c, struct msg *m, const char *key, const char *value)
{
    struct etcd_compare cmp = {.key = c->own_key,
                               .key_len = c->own_key ? strlen(c->own_key) : 0,
                               .target = ETCD_CMP_CREATE,
                               .result = ETCD_CMP_EQUAL,
                               .number = m->n1};
    struct etcd_op op = {.type = value != NULL ? ETCD_OP_PUT : ETCD_OP_DELETE,
                         .key = key,
                         .key_len = strlen(key),
                         .value = value,
                         .value_len = value != NULL ? strlen(value) : 0};
    struct etcd_txn t = {&cmp, 1, &op, 1, NULL, 0};

    if (c->lease_state != LEASE_LIVE || c->own_key == NULL) {
        answer(c, m, COORD_NO_LEASE);
        return;
    }
    etcd_txn(c->etcd, &t, on_fenced_write, pending_new(c, m));
}

static void do_isr_write(struct coord *c, struct msg *m)
{
    json_t *root = json_object(), *members = json_array();
    char *text;
    size_t i;

    for (i = 0; i < m->n; i++)
        json_array_append_new(members, json_string(m->list[i]));
    json_object_set_new(root, "epoch", json_integer(m->n1));
    json_object_set_new(root, "members", members);
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    fenced_write(c, m, c->isr_key, text);
    free(text);
}

static void do_transfer_write(struct coord *c, struct msg *m)
{
    char *text = NULL;

    if (m->s1 != NULL) {
        json_t *root = json_pack("{s:I, s:s}", "epoch", (json_int_t)m->n1, "target", m->s1);

        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
    }
    fenced_write(c, m, c->transfer_key, text);
    free(text);
}

static void on_revoked(const struct etcd_response *r, void *arg)
{
    struct pending *p = arg;
    int status = r->err == ETCD_OK || r->err == ETCD_E_LEASE_NOT_FOUND
                     ? COORD_OK
                     : status_of(r, "revoking a lease");

    pending_answer(p, status);
}

/* ---- Coordinator thread: loop -------------------------------------------------------------- */

static void on_stop_done(const struct etcd_response *r, void *arg)
{
    struct coord *c = arg;

    c->stop_req = NULL;
    if (r->err != ETCD_OK && r->err != ETCD_E_LEASE_NOT_FOUND)
        log_warn(NULL, "cluster: revoking the lease at stop failed: %s", r->message);
    else
        log_info(NULL, "cluster: lease %" PRIx64 " revoked", (uint64_t)atomic_load(&c->lease_id));
    ev_break(c->loop, EVBREAK_ALL);
}

static void on_stop_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void do_stop(struct coord *c)
{
    c->stopping = true;
    c->want_campaign = false;
    if (c->revoke_on_stop && c->lease_state == LEASE_LIVE) {
        c->lease_state = LEASE_LOST; /* no more renewals */
        c->stop_req = etcd_lease_revoke(c->etcd, atomic_load(&c->lease_id), on_stop_done, c);
        ev_timer_set(&c->stop_timer, c->timeout_ms / 1000.0 + 0.1, 0.0);
        ev_timer_start(c->loop, &c->stop_timer);
        return;
    }
    ev_break(c->loop, EVBREAK_ALL);
}

static void handle(struct coord *c, struct msg *m)
{
    char key[512];

    switch (m->kind) {
    case REQ_CAMPAIGN:
        c->want_campaign = true;
        start_campaign(c);
        coord_msg_free(m);
        break;
    case REQ_RESIGN:
        do_resign(c, m);
        break;
    case REQ_OBSERVE:
        c->observing = true;
        c->leader_reported = false;
        if (c->leader_watch != NULL)
            coord_report_leader(c);
        coord_leader_watch_start(c);
        coord_msg_free(m);
        break;
    case REQ_SECRET:
        do_secret(c, m);
        break;
    case REQ_LIST_NODES:
        do_list_nodes(c, m);
        break;
    case REQ_ISR_READ:
        snprintf(key, sizeof(key), "%s", c->isr_key);
        etcd_range(c->etcd, key, strlen(key), NULL, 0, 0, 0, on_isr_read, pending_new(c, m));
        break;
    case REQ_ISR_WRITE:
        do_isr_write(c, m);
        break;
    case REQ_WATCH_ISR:
        coord_key_watch_start(&c->isr_watch);
        coord_msg_free(m);
        break;
    case REQ_TRANSFER_WRITE:
        do_transfer_write(c, m);
        break;
    case REQ_WATCH_TRANSFER:
        coord_key_watch_start(&c->transfer_watch);
        coord_msg_free(m);
        break;
    case REQ_REVOKE:
        etcd_lease_revoke(c->etcd, m->n1, on_revoked, pending_new(c, m));
        break;
    case REQ_STOP:
        coord_msg_free(m);
        do_stop(c);
        break;
    default:
        coord_msg_free(m);
        break;
    }
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct coord *c = container_of(w, struct coord, wake);
    struct msg *all, *m, *next;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&c->mu);
    all = queue_take_all(&c->requests);
    pthread_mutex_unlock(&c->mu);
    for (m = all; m != NULL; m = next) {
        next = m->next;
        if (c->stopping)
            coord_msg_free(m);
        else
            handle(c, m);
    }
}

static void *coord_thread(void *arg)
{
    struct coord *c = arg;

    start_grant(c);
    ev_run(c->loop, 0);
    /* Stopped: requests in flight end without answers (coord_stop drops undelivered ones). */
    etcd_free(c->etcd);
    c->etcd = NULL;
    while (c->pendings != NULL) {
        struct pending *p = c->pendings;

        c->pendings = p->next;
        coord_msg_free(p->m);
        free(p);
    }
    return NULL;
}

/* ---- Main thread: interface ------------------------------------------------------------------ */

static bool valid_node_id(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0, i;

    if (n == 0 || n > 64)
        return false;
    for (i = 0; i < n; i++) {
        char ch = id[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static char *concat(const char *a, const char *b)
{
    char *s = xmalloc(strlen(a) + strlen(b) + 1);

    strcpy(s, a);
    strcat(s, b);
    return s;
}

struct coord *coord_start(struct ev_loop *main_loop, const struct coord_options *opts,
                          const struct coord_callbacks *cb, void *ctx, char *err, size_t err_size)
{
    struct etcd_options eo = {0};
    const char *name = opts->cluster_name ? opts->cluster_name : "warren";
    json_t *info = NULL;
    struct coord *c;

    if (!valid_node_id(opts->node_id)) {
        snprintf(err, err_size, "cluster node id '%s' is not 1-64 characters of [A-Za-z0-9._-]",
                 opts->node_id ? opts->node_id : "");
        return NULL;
    }
    if (!valid_node_id(name)) {
        snprintf(err, err_size, "cluster name '%s' is not 1-64 characters of [A-Za-z0-9._-]", name);
        return NULL;
    }
    if (opts->lease_ttl_s == 1) {
        snprintf(err, err_size, "cluster lease TTL must be at least 2 s (etcd's minimum)");
        return NULL;
    }
    if (opts->node_info != NULL) {
        info = json_loads(opts->node_info, 0, NULL);
        if (!json_is_object(info)) {
            json_decref(info);
            snprintf(err, err_size, "cluster node info is not a JSON object");
            return NULL;
        }
    } else {
        info = json_object();
    }
    json_object_set_new(info, "id", json_string(opts->node_id));

    c = xcalloc(1, sizeof(*c));
    c->loop = ev_loop_new(EVFLAG_AUTO);
    eo.endpoints = opts->endpoints;
    eo.request_timeout_ms = opts->request_timeout_ms;
    eo.username = opts->username;
    eo.password = opts->password;
    eo.tls_ca = opts->tls_ca;
    eo.tls_cert = opts->tls_cert;
    eo.tls_key = opts->tls_key;
    eo.source_address = opts->source_address;
    c->etcd = c->loop ? etcd_new(c->loop, &eo, err, err_size) : NULL;
    if (c->etcd == NULL) {
        if (c->loop == NULL)
            snprintf(err, err_size, "cannot create the cluster thread's event loop");
        else
            ev_loop_destroy(c->loop);
        json_decref(info);
        free(c);
        return NULL;
    }
    c->main_loop = main_loop;
    if (cb != NULL)
        c->cb = *cb;
    c->ctx = ctx;
    c->prefix = xmalloc(strlen(name) + 10);
    sprintf(c->prefix, "/warren/%s/", name);
    c->node_id = xstrdup(opts->node_id);
    c->node_value = json_dumps(info, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(info);
    c->node_key = xmalloc(strlen(c->prefix) + strlen(c->node_id) + 8);
    sprintf(c->node_key, "%snodes/%s", c->prefix, c->node_id);
    c->leader_name = concat(c->prefix, "leader");
    c->isr_key = concat(c->prefix, "isr");
    c->transfer_key = concat(c->prefix, "transfer");
    c->secret_key = concat(c->prefix, "secret");
    c->ttl_s = opts->lease_ttl_s ? opts->lease_ttl_s : 3;
    c->timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms : 1000;
    c->stall_ms = opts->stall_timeout_ms ? opts->stall_timeout_ms : 5000;
    c->wanted_lease_id = opts->lease_id;
    atomic_init(&c->heartbeat_ms, now_ms());
    atomic_init(&c->deadline_ms, 0);
    atomic_init(&c->lease_id, 0);
    pthread_mutex_init(&c->mu, NULL);

    ev_async_init(&c->main_async, on_main_async);
    ev_async_start(main_loop, &c->main_async);
    ev_async_init(&c->wake, on_wake);
    ev_async_start(c->loop, &c->wake);
    ev_init(&c->renew_timer, on_renew);
    ev_init(&c->deadline_timer, on_deadline);
    ev_init(&c->grant_retry, on_grant_retry);
    ev_init(&c->campaign_retry, on_campaign_retry);
    ev_init(&c->stop_timer, on_stop_timeout);
    coord_watches_init(c);

    if (pthread_create(&c->thread, NULL, coord_thread, c) != 0) {
        snprintf(err, err_size, "cannot start the cluster thread");
        ev_async_stop(main_loop, &c->main_async);
        c->stopped = true;
        etcd_free(c->etcd);
        coord_free(c);
        return NULL;
    }
    log_info(NULL, "cluster: coordinator for node %s started (etcd %s, prefix %s)", c->node_id,
             opts->endpoints, c->prefix);
    return c;
}

static void coord_free(struct coord *c)
{
    pthread_mutex_lock(&c->mu);
    free_chain(queue_take_all(&c->events));
    free_chain(queue_take_all(&c->requests));
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    coord_cands_clear(c);
    clear_leader_key(&c->leader_key);
    ev_loop_destroy(c->loop);
    free(c->reported_key);
    free(c->own_key);
    free(c->prefix);
    free(c->node_id);
    free(c->node_value);
    free(c->node_key);
    free(c->leader_name);
    free(c->isr_key);
    free(c->transfer_key);
    free(c->secret_key);
    free(c);
}

void coord_stop(struct coord *c, bool revoke_lease)
{
    struct msg *m;

    if (c == NULL || c->stopped)
        return;
    m = coord_msg_new(REQ_STOP);
    pthread_mutex_lock(&c->mu);
    c->revoke_on_stop = revoke_lease; /* read by the thread after it takes the request */
    queue_push(&c->requests, m);
    pthread_mutex_unlock(&c->mu);
    ev_async_send(c->loop, &c->wake);
    pthread_join(c->thread, NULL);
    c->stopped = true;
    ev_async_stop(c->main_loop, &c->main_async);
    log_info(NULL, "cluster: coordinator for node %s stopped", c->node_id);
    if (c->dispatching)
        c->stop_pending = true; /* on_main_async frees it when the callback returns */
    else
        coord_free(c);
}

void coord_heartbeat(struct coord *c)
{
    atomic_store_explicit(&c->heartbeat_ms, now_ms(), memory_order_relaxed);
}

uint64_t coord_lease_deadline(const struct coord *c)
{
    return atomic_load(&((struct coord *)c)->deadline_ms);
}

int64_t coord_lease_id(const struct coord *c)
{
    return atomic_load(&((struct coord *)c)->lease_id);
}

static void request_simple(struct coord *c, enum msg_kind kind, void (*cb)(void), void *arg)
{
    struct msg *m = coord_msg_new(kind);

    m->cb = cb;
    m->arg = arg;
    request(c, m);
}

void coord_campaign(struct coord *c)
{
    request_simple(c, REQ_CAMPAIGN, NULL, NULL);
}

void coord_resign(struct coord *c, coord_done_cb *cb, void *arg)
{
    request_simple(c, REQ_RESIGN, (void (*)(void))cb, arg);
}

void coord_observe(struct coord *c)
{
    request_simple(c, REQ_OBSERVE, NULL, NULL);
}

void coord_get_secret(struct coord *c, coord_secret_cb *cb, void *arg)
{
    request_simple(c, REQ_SECRET, (void (*)(void))cb, arg);
}

void coord_list_nodes(struct coord *c, coord_nodes_cb *cb, void *arg)
{
    request_simple(c, REQ_LIST_NODES, (void (*)(void))cb, arg);
}

void coord_isr_read(struct coord *c, coord_isr_cb *cb, void *arg)
{
    request_simple(c, REQ_ISR_READ, (void (*)(void))cb, arg);
}

void coord_isr_write(struct coord *c, int64_t epoch, const char *const *members, size_t n,
                     coord_isr_cb *cb, void *arg)
{
    struct msg *m = coord_msg_new(REQ_ISR_WRITE);
    size_t i;

    m->n1 = epoch;
    m->list = xcalloc(n + 1, sizeof(char *));
    for (i = 0; i < n; i++)
        m->list[i] = xstrdup(members[i]);
    m->n = n;
    qsort(m->list, n, sizeof(char *), compare_strings);
    m->cb = (void (*)(void))cb;
    m->arg = arg;
    request(c, m);
}

void coord_watch_isr(struct coord *c)
{
    request_simple(c, REQ_WATCH_ISR, NULL, NULL);
}

void coord_transfer_write(struct coord *c, int64_t epoch, const char *target, coord_done_cb *cb,
                          void *arg)
{
    struct msg *m = coord_msg_new(REQ_TRANSFER_WRITE);

    m->n1 = epoch;
    m->s1 = target != NULL ? xstrdup(target) : NULL;
    m->cb = (void (*)(void))cb;
    m->arg = arg;
    request(c, m);
}

void coord_watch_transfer(struct coord *c)
{
    request_simple(c, REQ_WATCH_TRANSFER, NULL, NULL);
}

void coord_revoke_lease(struct coord *c, int64_t lease_id, coord_done_cb *cb, void *arg)
{
    struct msg *m = coord_msg_new(REQ_REVOKE);

    m->n1 = lease_id;
    m->cb = (void (*)(void))cb;
    m->arg = arg;
    request(c, m);
}
