/* The coordinator: what cluster mode needs from a coordination service (leases, election,
 * the in-sync replica set, the cluster secret), behind an interface that says nothing of
 * etcd, so that ZooKeeper could back it later. Today it is etcd 3.4 through
 * src/cluster/etcd.h (docs: CLUSTERING.md §2.2, §2.5, §2.6, §2.10).
 *
 * Keys, under the prefix /warren/<cluster_name>/:
 *   nodes/<node id>      this node's info ({"id": ..., advertised addresses}), bound to its
 *                        lease: present while the node is alive
 *   leader/<lease hex>   candidates and leader (etcd's election recipe on "<prefix>leader");
 *                        the leader is the oldest; its create_revision is the EPOCH, a
 *                        fencing token that only grows
 *   isr                  {"epoch": E, "members": ["a", "b"]} (members sorted), written only
 *                        by a txn that holds while the writer's leader key was created at E
 *   transfer             {"epoch": E, "target": "id"}, written the same way
 *   secret               64 hex digits (32 random bytes), created once by the first node
 *
 * Threads: the coordinator runs its own thread and libev loop, so that a stalled main loop
 * does not by itself stop or delay etcd traffic. The functions below are called from the
 * thread running main_loop (coord_heartbeat and coord_lease_deadline from any thread); they
 * queue a request and return at once. Every callback, long-lived (struct coord_callbacks)
 * or per request, runs ON main_loop (woken by an ev_async), never on the coordinator's
 * thread, and never after coord_stop returned. Data passed to a callback is valid until it
 * returns. A callback may call any function here, coord_stop included.
 *
 * The lease (one per node): granted at start (retried until it is), renewed every TTL/3 by
 * one POST each. Renewal is GATED: it happens only while the main loop proves it is alive
 * by calling coord_heartbeat() at least every stall_timeout_ms (from an ev_prepare/ev_check
 * and from the disk sync path). The lease deadline is the monotonic time the last
 * successful renewal was SENT, plus the TTL: etcd cannot have expired the lease before it.
 * on_lease_lost fires once, when etcd says the lease is gone or when the deadline passes
 * without a renewal; from then on the node holds nothing in etcd (candidacy, leadership and
 * node key are gone) and the coordinator does no more: coord_stop it (a node restarts as a
 * follower with a new coordinator). Errors from etcd are logged through src/base/log.h. */
#ifndef WARREN_SRC_CLUSTER_COORD_H
#define WARREN_SRC_CLUSTER_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct coord;

struct coord_options {
    const char *endpoints;       /* etcd: "http://127.0.0.1:2379,https://10.0.0.2:2379" */
    const char *cluster_name;    /* prefix /warren/<cluster_name>/; NULL = "warren" */
    const char *node_id;         /* 1-64 characters of [A-Za-z0-9._-] */
    const char *node_info;       /* a JSON object (advertised addresses ...); NULL = {} */
    unsigned lease_ttl_s;        /* 0 = 3; at least 2 (etcd's minimum) */
    unsigned request_timeout_ms; /* per etcd call; 0 = 1000 */
    unsigned stall_timeout_ms;   /* renewals stop after this long without a heartbeat;
                                  * 0 = 5000 */
    int64_t lease_id;            /* 0 = etcd picks; else this id, and a second process with
                                  * the same id waits until the first one's lease is gone */
    const char *username;        /* etcd authentication; NULL = none */
    const char *password;
    const char *tls_ca; /* for https:// endpoints */
    const char *tls_cert;
    const char *tls_key;
    const char *source_address; /* local IP for connections to etcd; NULL = any */
};

enum coord_status {
    COORD_OK = 0,
    COORD_FENCED = 1,   /* a fenced write refused: the epoch given is not this node's leader
                         * key's (not elected, deposed, or an old epoch) */
    COORD_ERROR = -1,   /* etcd unreachable, timed out, or refused: logged; for a write, its
                         * outcome is unknown (read back before trusting either way) */
    COORD_NO_LEASE = -2 /* not yet granted, or lost */
};

/* A leader as the election shows it. */
struct coord_leader {
    int64_t epoch;       /* its leader key's create_revision */
    const char *node_id; /* "id" of its info */
    const char *info;    /* its node info, as JSON text */
    int64_t lease_id;    /* its lease: coord_revoke_lease() ends its leadership at once */
};

struct coord_isr {
    int64_t epoch;              /* of the leader that wrote it; 0 if there is no isr key */
    const char *const *members; /* sorted node ids */
    size_t n_members;
    int64_t mod_revision; /* etcd revision of the write; 0 if there is no isr key */
};

struct coord_node {
    const char *id;
    const char *info; /* JSON text */
    int64_t lease_id;
};

/* Long-lived events; any may be NULL. All run on main_loop. */
struct coord_callbacks {
    /* The lease is granted and nodes/<id> registered. Once, after coord_start. */
    void (*on_ready)(void *ctx, int64_t lease_id);
    /* The lease is gone (etcd said so, or its deadline passed): stop acting as leader
     * now. Once; nothing else fires afterwards but per-request results. */
    void (*on_lease_lost)(void *ctx, const char *reason);
    /* coord_campaign() won: this node leads from epoch on. */
    void (*on_elected)(void *ctx, int64_t epoch);
    /* While leading, the leader key was deleted by someone else (not by coord_resign, not
     * by a lost lease, which is on_lease_lost): this node no longer leads. It does not
     * stand again by itself: coord_campaign() does that. */
    void (*on_deposed)(void *ctx, int64_t epoch);
    /* After coord_observe(): the current leader at once (NULL = nobody leads), then each
     * change, the absence of a leader included. */
    void (*on_leader)(void *ctx, const struct coord_leader *leader);
    /* After coord_watch_isr(): the current isr at once (epoch 0 if none), then each
     * change. */
    void (*on_isr)(void *ctx, const struct coord_isr *isr);
    /* After coord_watch_transfer(): the current transfer at once, then each change;
     * target NULL = none. */
    void (*on_transfer)(void *ctx, int64_t epoch, const char *target);
};

/* Per-request results, on main_loop, once each (unless coord_stop came first). */
typedef void coord_done_cb(void *arg, int status);
typedef void coord_secret_cb(void *arg, int status, const char *secret_hex);
typedef void coord_isr_cb(void *arg, int status, const struct coord_isr *isr);
typedef void coord_nodes_cb(void *arg, int status, const struct coord_node *nodes, size_t n);

/* Starts the coordinator thread, which grants the lease and registers the node (then
 * on_ready). cb is copied; ctx is passed to its callbacks. NULL, with the reason in err, if
 * the options are unusable; etcd being unreachable is not an error here (it retries). */
struct coord *coord_start(struct ev_loop *main_loop, const struct coord_options *opts,
                          const struct coord_callbacks *cb, void *ctx, char *err, size_t err_size);
/* Stops the thread and frees everything; no callback fires afterwards. With revoke_lease,
 * the lease is revoked first (waiting at most the request timeout), so that other nodes see
 * this one leave at once instead of after the TTL. NULL is fine. */
void coord_stop(struct coord *c, bool revoke_lease);

/* The main loop is alive (cheap: one atomic store). Any thread. */
void coord_heartbeat(struct coord *c);
/* The lease deadline in now_ms() time (src/base/util.h, CLOCK_MONOTONIC): past it, etcd may
 * have expired the lease, so a leader must have fenced itself. 0 before the first grant.
 * Any thread. */
uint64_t coord_lease_deadline(const struct coord *c);
/* This node's lease id, 0 before the grant. Any thread. */
int64_t coord_lease_id(const struct coord *c);

/* Stands for election with the node's lease and info (as soon as the lease is granted, and
 * again after transient errors): on_elected(epoch) once it leads. */
void coord_campaign(struct coord *c);
/* Withdraws: as a candidate, deletes its candidate key; as leader, gives up leadership (the
 * next candidate wins). cb (may be NULL) says when etcd has done it. */
void coord_resign(struct coord *c, coord_done_cb *cb, void *arg);
/* Starts on_leader reports. */
void coord_observe(struct coord *c);

/* The cluster secret: created by the first caller of the cluster (put-or-get txn), read by
 * the others. */
void coord_get_secret(struct coord *c, coord_secret_cb *cb, void *arg);
/* The registered (live) nodes, sorted by id. */
void coord_list_nodes(struct coord *c, coord_nodes_cb *cb, void *arg);

/* A linearizable read of isr (epoch 0, no members if absent). */
void coord_isr_read(struct coord *c, coord_isr_cb *cb, void *arg);
/* Writes isr = {epoch, members} if this node's leader key still has create_revision epoch:
 * COORD_OK (isr = what was written), COORD_FENCED, COORD_ERROR, COORD_NO_LEASE. members is
 * copied (and sorted in the copy). */
void coord_isr_write(struct coord *c, int64_t epoch, const char *const *members, size_t n,
                     coord_isr_cb *cb, void *arg);
/* Starts on_isr reports. */
void coord_watch_isr(struct coord *c);

/* Writes transfer = {epoch, target} (target NULL: deletes it), fenced like coord_isr_write. */
void coord_transfer_write(struct coord *c, int64_t epoch, const char *target, coord_done_cb *cb,
                          void *arg);
/* Starts on_transfer reports. */
void coord_watch_transfer(struct coord *c);

/* Revokes another node's lease (the crash fast-path: its leader key and node key go with
 * it). COORD_OK also if it was gone already. */
void coord_revoke_lease(struct coord *c, int64_t lease_id, coord_done_cb *cb, void *arg);

#endif
