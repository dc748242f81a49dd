/* Inside the coordinator (src/cluster/coord.h): what coord.c (messages, lease, election,
 * one-shot requests, the threads) and coord_watch.c (the watches on the candidates and on
 * the isr and transfer keys) share. Nothing outside src/cluster/coord*.c includes it. */
#ifndef WARREN_SRC_CLUSTER_COORD_INTERNAL_H
#define WARREN_SRC_CLUSTER_COORD_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "src/cluster/coord.h"
#include "src/cluster/etcd.h"

#define RENEW_RETRY_S 0.05 /* a failed renewal is tried again after this long */
#define RETRY_MS      250  /* after a failed grant, registration, campaign or range */
#define LEASE_BUSY_MS 1000 /* lease id taken by an older process: wait for its expiry */

enum msg_kind {
    /* requests */
    REQ_CAMPAIGN,
    REQ_RESIGN,
    REQ_OBSERVE,
    REQ_SECRET,
    REQ_LIST_NODES,
    REQ_ISR_READ,
    REQ_ISR_WRITE,
    REQ_WATCH_ISR,
    REQ_TRANSFER_WRITE,
    REQ_WATCH_TRANSFER,
    REQ_REVOKE,
    REQ_STOP,
    /* events */
    EVT_READY,
    EVT_LEASE_LOST,
    EVT_ELECTED,
    EVT_DEPOSED,
    EVT_LEADER,
    EVT_ISR,
    EVT_TRANSFER,
};

/* A request, then its result, or an event. Fields by kind: n1 epoch (or lease id for
 * REVOKE / READY), n2 lease id, n3 mod revision; s1 node id / target / secret / reason, s2
 * info; list the members or node ids, list2 node infos, nums node leases. */
struct msg {
    struct msg *next;
    enum msg_kind kind;
    bool result; /* a request answered: call cb */
    int status;
    int64_t n1, n2, n3;
    char *s1, *s2;
    char **list, **list2;
    int64_t *nums;
    size_t n;
    void (*cb)(void); /* the per-request callback, cast back by kind */
    void *arg;
};

struct queue {
    struct msg *head, *tail;
};

/* A key followed by the coordinator (isr, transfer): range, then watch from there. */
struct key_watch {
    struct coord *c;
    const char *suffix;
    enum msg_kind event;
    bool wanted;
    struct etcd_req *range, *watch;
    ev_timer retry;
};

struct candidate {
    char *key;
    int64_t create_revision;
    int64_t lease;
    char *value;
};

struct coord {
    /* set at start, then read-only */
    struct ev_loop *main_loop;
    struct coord_callbacks cb;
    void *ctx;
    char *prefix; /* "/warren/<name>/" */
    char *node_id;
    char *node_value; /* JSON: the info with "id" */
    char *node_key, *leader_name, *isr_key, *transfer_key, *secret_key;
    unsigned ttl_s, timeout_ms, stall_ms;
    int64_t wanted_lease_id;

    /* shared */
    pthread_mutex_t mu;
    struct queue requests, events;
    ev_async main_async;
    ev_async wake;
    _Atomic uint64_t heartbeat_ms;
    _Atomic uint64_t deadline_ms;
    _Atomic int64_t lease_id;

    /* main thread */
    pthread_t thread;
    bool dispatching, stop_pending, stopped;

    /* coordinator thread */
    struct ev_loop *loop;
    struct etcd_client *etcd;
    bool stopping, revoke_on_stop;
    enum { LEASE_NONE, LEASE_GRANTING, LEASE_LIVE, LEASE_LOST } lease_state;
    bool registered, stalled;
    int64_t ttl_granted_s;
    struct etcd_req *grant_req, *keepalive_req, *register_req, *stop_req;
    uint64_t keepalive_sent_ms;
    ev_timer renew_timer, deadline_timer, grant_retry, stop_timer;
    bool lease_busy_logged;
    /* election */
    bool want_campaign, elected;
    int64_t epoch;
    struct etcd_req *campaign_req;
    struct etcd_leader_key leader_key; /* own, while elected */
    ev_timer campaign_retry;
    char *own_key; /* "<prefix>leader/<lease hex>" */
    /* leader watch */
    bool observing, leader_watch_wanted, leader_reported;
    char *reported_key;
    int64_t reported_rev;
    struct candidate *cands;
    size_t n_cands;
    struct etcd_req *leader_range, *leader_watch;
    ev_timer leader_retry;
    struct key_watch isr_watch, transfer_watch;
    struct pending *pendings;
};

/* coord.c: messages between the threads, and the values of the keys. */
struct msg *coord_msg_new(enum msg_kind kind);
void coord_msg_free(struct msg *m);
/* Coordinator thread: hands m to the main thread. */
void coord_post(struct coord *c, struct msg *m);
void coord_post_event(struct coord *c, enum msg_kind kind, int64_t n1, const char *s1);
bool coord_parse_isr(const uint8_t *value, size_t len, struct msg *m);
bool coord_parse_transfer(const uint8_t *value, size_t len, struct msg *m);
/* The "id" of a node's info JSON (allocated), NULL if it has none. */
char *coord_value_node_id(const char *value);

/* coord_watch.c, coordinator thread: who leads (a watch on the candidates, on_leader), and
 * the watches of the isr and transfer keys. */
void coord_watches_init(struct coord *c); /* at start, before the thread runs */
void coord_leader_watch_start(struct coord *c);
void coord_report_leader(struct coord *c);
void coord_cands_clear(struct coord *c);
void coord_key_watch_start(struct key_watch *kw);

#endif
