/* Cluster mode: one node's part in a cluster of warrend nodes coordinated by etcd
 * (CLUSTERING.md has the design; the README, "Running a cluster", the operator's view).
 *
 * Roles. Every node starts as a FOLLOWER: it registers in etcd (src/cluster/coord.h), mirrors
 * the leader's data directory through the replication stream (src/cluster/repl_follower.h),
 * and relays its clients to the leader (src/cluster/proxy.h) or refuses them naming the
 * leader. A follower in the in-sync replica set (ISR) stands for election; the winner becomes
 * the LEADER: the broker opens the data directory through its ordinary crash recovery and
 * serves, and followers connect to its replication port (src/cluster/repl_leader.h).
 *
 * The promise. A publisher confirm for a persistent message (and tx.commit-ok) goes out only
 * when the message is fsynced on the leader and acked by every ISR follower: the broker asks
 * cluster_confirmable() (the smaller of the store's durable sequence and the replicated one).
 * A follower leaves the ISR only through a txn that only the current leader can pass (its
 * epoch), and only ISR members campaign, so every possible next leader holds every confirmed
 * message.
 *
 * Fencing. The leader stops itself (the fence hook: the process exits, its supervisor starts
 * it again as a follower) when its lease is lost or its deadline passes; the lease is renewed
 * only while the main loop proves alive (coord_heartbeat from an ev_prepare). Followers
 * refuse a leader with a lower epoch than they have seen (repl_follower).
 *
 * What the cluster code does not do itself is run the broker: the hooks below (set by
 * src/main.c, which sits above the broker and the management API) start it at promotion. */
#ifndef WARREN_SRC_CLUSTER_CLUSTER_H
#define WARREN_SRC_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct config;
struct store;
struct defs_log;
struct proxy;
struct cluster;

enum cluster_role {
    CLUSTER_STARTING, /* registering in etcd */
    CLUSTER_FOLLOWER,
    CLUSTER_PROMOTING, /* elected, opening the store */
    CLUSTER_LEADER,
    CLUSTER_FENCED, /* stopped acting; the process is about to exit */
};

const char *cluster_role_name(enum cluster_role r);

struct cluster_hooks {
    /* Elected: start the broker on the data directory (crash recovery), bind the client
     * listeners, and give back its store and definitions log. 0, or -1 (logged) if the
     * broker cannot start: the node then resigns and exits. */
    int (*promote)(void *ctx, struct store **store, struct defs_log **defs);
    /* Every store append with sequence <= seq is fsynced here and on every ISR follower. */
    void (*replicated)(void *ctx, uint64_t seq);
    /* The node must stop acting now (lease lost, deposed, fatal error): why says so. The
     * hook does not return (the process exits with status 3 for its supervisor). */
    void (*fence)(void *ctx, const char *why);
    /* A follower learnt where the leader is ("host:port" of its AMQP and HTTP listeners), or
     * that none is known (NULLs): for the refuse mode's messages. May be NULL. */
    void (*leader_changed)(void *ctx, const char *amqp, const char *http);
    /* Leader: the IP addresses of the cluster's nodes, whose connections may start with a
     * PROXY header (the followers relaying their clients). May be NULL. */
    void (*proxy_peers)(void *ctx, const char *const *ips, size_t n);
    /* Leader: the ISR has had fewer than cluster.min_insync_replicas members for
     * cluster.confirm_timeout: every confirm still waiting becomes a basic.nack. */
    void (*nack_waiting)(void *ctx);
};

/* Starts cluster mode on loop with cfg->cluster: binds the replication port, the client
 * listeners (relayed or refused until this node leads) and the coordinator. NULL with the
 * reason in err if the configuration is unusable or a port cannot be bound. */
struct cluster *cluster_start(struct ev_loop *loop, const struct config *cfg,
                              const struct cluster_hooks *hooks, void *ctx, char *err,
                              size_t err_size);
void cluster_stop(struct cluster *c);

enum cluster_role cluster_role(const struct cluster *c);
const char *cluster_node_id(const struct cluster *c);
int64_t cluster_epoch(const struct cluster *c);


/* The relay a follower in proxy mode hands its client sockets to (the cluster points it at
 * the leader). */
struct proxy *cluster_proxy(const struct cluster *c);

/* The replication stream's position after everything written so far, and how far every
 * in-sync follower has it (leader only: 0 and UINT64_MAX otherwise, c NULL included). */
uint64_t cluster_position(const struct cluster *c);
uint64_t cluster_committed(const struct cluster *c);

/* A follower in proxy mode relays its management API too: it listens on "IP:port" itself
 * (instead of the broker's HTTP server) and hands each client to the proxy, which answers
 * GET /api/health/checks/leader (503) and GET /api/cluster/status (this node's view) here
 * and relays everything else to the leader's API. cluster_close_http() stops listening (at
 * promotion, before the broker's HTTP server binds the port). 0, or -1 with err. */
int cluster_listen_http(struct cluster *c, const char *address, char *err, size_t err_size);
void cluster_close_http(struct cluster *c);

/* The store sequence a confirm may cover: min(durable_seq, replicated). */
uint64_t cluster_confirmable(const struct cluster *c, uint64_t durable_seq);

/* A planned switchover, on the leader: once every in-sync follower has everything written,
 * this node gives its leadership up (its lease revoked at once, so the next in-sync member
 * is elected without waiting for a TTL) and exits for its supervisor to start it again as a
 * follower; its clients reconnect. 0, or -1 with the reason in err (not the leader, or no
 * other in-sync member is live to take over). */
int cluster_transfer_leadership(struct cluster *c, char *err, size_t err_size);

/* The cluster as this node sees it, as a JSON object (jansson, owned by the caller):
 * {"enabled": true, "name", "node", "role", "epoch", "leader", "isr": [...], "nodes": [{"name", "role",
 * "in_sync", "connected", "lag_bytes", "acked"}...]}. */
struct json_t;
struct json_t *cluster_status_json(const struct cluster *c);

/* The answer of the leader health check (GET /api/health/checks/leader), wherever it is
 * asked: {"status":"ok"} with *ok true on the leader (or c NULL, a single node), else
 * {"status":"failed","reason":...} with *ok false. Owned by the caller. */
struct json_t *cluster_leader_health_json(const struct cluster *c, bool *ok);

#endif
