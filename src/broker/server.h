/* The server: listeners, the libev loop, signals, the list of connections, vhosts, and
 * start-up and shutdown; a client's publish (server_publish: direct reply-to first), and the
 * list of channels whose publisher confirms wait for an fsync (channel_confirms_durable). */
#ifndef WARREN_SRC_BROKER_SERVER_H
#define WARREN_SRC_BROKER_SERVER_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "src/base/config.h"
#include "src/base/hmap.h"
#include "src/broker/queue.h"

struct channel;
struct cluster;
struct conn;
struct exchange;
struct message;
struct proxy;
struct publish_result;
struct vhost;

/* Resource alarms (server->alarms bits). */
enum {
    ALARM_MEMORY = 1,
    ALARM_DISK = 2,
};

/* Why a listener refused a connection (server->refused). */
enum refusal {
    REFUSED_FD_LIMIT,       /* out of file descriptors: it could not be accepted */
    REFUSED_CONNECTION_MAX, /* connection_max connections were open */
    REFUSED_REASONS,
};

struct listener {
    int fd;
    bool tls; /* AMQPS */
    ev_io watcher;
    char address[96]; /* "0.0.0.0:5672", "[::]:5672" */
    struct server *srv;
};

/* What the broker does with its clients. A single node, and a cluster's leader, serve them;
 * a follower relays them to the leader or refuses them (cluster.follower_listeners, set by
 * the cluster code through server_proxy_clients() and server_refuse_clients()). */
enum server_clients {
    SERVER_CLIENTS_SERVE,
    SERVER_CLIENTS_PROXY,  /* accepted sockets go to proxy_accept() (src/cluster/proxy.h) */
    SERVER_CLIENTS_REFUSE, /* connection.open and the HTTP API answer "not the leader" */
};

#define SERVER_URL_MAX 128

/* The disk is checked again after at least this much was written (and every second). */
#define DISK_CHECK_MIN_BYTES (256u * 1024)

struct server {
    struct ev_loop *loop;
    const struct config *cfg;
    /* Cluster mode (src/cluster/cluster.h), set by main: confirms wait for replication too;
     * NULL on a single node. */
    struct cluster *cluster;
    uint64_t durable_seq; /* the store's, as last reported */
    bool conns_held;      /* some connection may hold output for replication (hold_position) */
    uint64_t confirmable_seq;    /* the store sequence confirms may go out for */
    uint64_t stream_durable_seq; /* the stream logs', as last reported */
    struct listener listeners[CONFIG_MAX_LISTENERS * 4];
    struct tls_server *tls;     /* the TLS context, when a TLS listener is configured */
    size_t listener_count;
    struct hmap vhosts; /* name -> struct vhost */
    struct hmap reply_channels; /* direct reply-to address -> struct channel */
    struct persist *persist;    /* the data directory; NULL when running without one */
    struct auth_db *auth;       /* users, vhosts, permissions */
    struct conn *conns;
    uint32_t conn_count;
    uint64_t next_conn_id;
    struct conn *flush_list; /* connections with output this loop turn */
    struct channel *confirm_waiting; /* channels with confirms waiting for an fsync */
    struct conn *dead;       /* closed connections, freed after this loop turn */
    ev_prepare flush_watcher;
    ev_check reap_watcher;
    ev_signal sigterm_watcher, sigint_watcher, sighup_watcher;
    ev_timer shutdown_timer;
    ev_timer ack_timeout_timer; /* consumer_timeout checks */
    ev_timer alarm_timer;       /* memory and disk checks */
    /* When accept fails (out of file descriptors), the listeners pause, for accept_pause_s
     * (doubling while it keeps failing), and accept_timer restarts them. */
    ev_timer accept_timer;
    double accept_pause_s;          /* 0 while accept works */
    double accept_logged_at;        /* ev_now of the last log line about it */
    int spare_fd;                   /* kept open to accept-and-close with when fds run out */
    uint64_t refused[REFUSED_REASONS]; /* connections refused since start */
    uint64_t confirmed; /* publishes confirmed to their publishers (basic.ack) since start */
    uint64_t refused_unlogged;      /* refused for lack of fds since the last log line */
    unsigned alarms;            /* ALARM_* now on */
    uint64_t memory_limit;      /* bytes: the memory high watermark */
    /* How it was set (configuration, or server_set_memory_watermark): a fraction of the
     * machine's memory in thousandths, or bytes (then relative is 0). */
    uint32_t memory_watermark_relative;
    uint64_t memory_watermark_absolute;
    struct queue_budget queue_budget; /* what all queues may keep in memory (src/broker/queue.h) */
    uint64_t memory_used;       /* at the last check */
    uint32_t freed_since_trim;  /* connections freed since the heap was last looked at */
    double trimmed_at;          /* ev_now when free memory was last given back */
    uint64_t disk_free;         /* bytes free at the last check; UINT64_MAX if unknown */
    uint64_t disk_check_at;     /* check the disk again once bytes_written reaches this; 0 never */
    bool stopping;
    enum server_clients clients;
    struct proxy *proxy; /* SERVER_CLIENTS_PROXY: the follower's relay to the leader */
    /* SERVER_CLIENTS_REFUSE: where clients should go ("amqp://host:port", "http://host:port"),
     * "" while no leader is known. */
    char leader_amqp_url[SERVER_URL_MAX];
    char leader_http_url[SERVER_URL_MAX];
    /* Peers whose connections may start with a PROXY v1 header: cluster.proxy_peers first
     * (proxy_peers_configured of them), then those of server_set_proxy_peers(). IPv4
     * addresses are kept IPv4-mapped. */
    struct in6_addr *proxy_peers;
    size_t proxy_peer_count;
    size_t proxy_peers_configured;
};

/* Sets up the broker of cfg: the TLS context, the data directory (users, vhosts, then
 * recovery_run() of src/broker/recovery.h), the timers; then binds the listeners of cfg
 * (port_override >= 0 replaces every TCP listener's port; with 0 the first gets a free port
 * and the others the same one; TLS listeners keep theirs, 0 also meaning a free one). The
 * ready line lists TCP addresses first, then TLS ones prefixed "tls:". Returns 0, or -1
 * after logging why. */
int server_init(struct server *s, struct ev_loop *loop, const struct config *cfg,
                int port_override);
/* Logs the ready line and runs until SIGTERM/SIGINT and a clean shutdown. */
void server_run(struct server *s);
/* What SIGTERM starts: stop listening, close the clients with 320 CONNECTION_FORCED, and
 * server_run returns once they are gone (or after a grace period). */
void server_shutdown(struct server *s);
void server_free(struct server *s);

/* rabbitmqctl set_vm_memory_high_watermark: a new memory high watermark, a fraction of the
 * machine's memory in thousandths (absolute 0) or absolute bytes. The queues' memory budget
 * follows unless queue_memory_limit is set, and the alarm is checked again at once. A
 * watermark of 0 sets the alarm for good, as in RabbitMQ (publishers stay blocked). */
void server_set_memory_watermark(struct server *s, uint32_t relative_thousandths,
                                 uint64_t absolute);

struct vhost *server_vhost_find(struct server *s, struct wire_bytes name);
/* The broker side of a vhost the user database has: created (and tied to the data
 * directory) if it does not exist yet. */
struct vhost *server_vhost_add(struct server *s, struct wire_bytes name);
/* Open connections and channels of a user, for the user's limits. */
uint64_t server_user_connections(const struct server *s, const char *user);
uint64_t server_user_channels(const struct server *s, const char *user);

/* Users, vhosts or permissions changed (management API, definitions import): write them to
 * the data directory. */
void server_auth_changed(struct server *s);

/* Direct reply-to: the channel whose reply address this is, or NULL. A channel registers its
 * ch->reply_address when it starts consuming replies and forgets it when it stops. */
struct channel *server_reply_channel(struct server *s, struct wire_bytes address);
void server_reply_register(struct server *s, struct channel *ch);
void server_reply_forget(struct server *s, struct channel *ch);
/* A client's publish (a channel's, or the management API's) of *msg to x: to the channel of a
 * direct reply-to address on the default exchange, or through publish_deliver()
 * (src/broker/publish.h) to the queues it reaches. */
void server_publish(struct server *s, struct vhost *vh, struct exchange *x, struct message **msg,
                    struct publish_result *out);

/* ---- Cluster roles (CLUSTERING.md §2.8) ------------------------------------------------
 *
 * Set by the cluster code; a broker that is never told otherwise serves its clients. */

/* Serves clients (the default; a node that became the leader). */
void server_serve_clients(struct server *s);
/* A follower in proxy mode: each client socket its AMQP and AMQPS listeners accept goes to
 * proxy_accept(p) (kept, not owned) instead of becoming a connection. */
void server_proxy_clients(struct server *s, struct proxy *p);
/* A follower in refuse mode: the AMQP handshake completes (any credentials: the follower's
 * user database may lag the leader's, and nothing is served) and connection.open is
 * answered with connection.close 530 "NOT_ALLOWED - node is a follower; leader is
 * amqp://host:port"; the management API answers 503 not_leader on its paths but the health
 * checks. The URLs name the leader ("amqp://host:port", "http://host:port"); NULL while no
 * leader is known ("...; no leader is known"). Called again when the leader changes. */
void server_refuse_clients(struct server *s, const char *leader_amqp_url,
                           const char *leader_http_url);
/* In refuse mode: true, with the reason a client is told ("node is a follower; leader is
 * <the AMQP or HTTP URL>") in reason (which may be NULL). False otherwise. */
bool server_refuses_clients(const struct server *s, bool http, char *reason, size_t reason_size);

/* The cluster's nodes (IP literals): their connections may start with a PROXY v1 header
 * naming the client they relay (src/cluster/proxy_header.h). Replaces the list set before;
 * cluster.proxy_peers from the configuration always stay allowed. Returns 0, or -1 after
 * logging which entry is not an IP address (the list is then unchanged). */
int server_set_proxy_peers(struct server *s, const char *const *ips, size_t count);
/* Whether a connection from peer may start with a PROXY header. */
bool server_is_proxy_peer(const struct server *s, const struct sockaddr *peer);
/* Cluster mode (src/main.c): confirms then wait for replication too, and vhosts refuse
 * stream queues. */
void server_set_cluster(struct server *s, struct cluster *c);

/* Cluster leader: every store append up to seq is on every in-sync follower; the confirms
 * that waited for it go out (those the local fsync covers too). */
void server_replicated(struct server *s, uint64_t seq);

/* Links a new connection into the server's list (accept, or an in-memory one). */
void server_adopt(struct server *s, struct conn *c);
/* Writes every connection's pending output and frees closed connections; the loop does this
 * before it blocks, once per turn. */
void server_flush_pending(struct server *s);

/* Output was appended to c's buffer: write it before the loop blocks again. */
void server_want_flush(struct server *s, struct conn *c);
/* c is closed: unlink it and free it after this loop turn. */
void server_conn_closed(struct server *s, struct conn *c);

#endif
