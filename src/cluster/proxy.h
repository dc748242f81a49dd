/* The follower's proxy (cluster.follower_listeners = proxy, docs: CLUSTERING.md §2.8): a
 * follower keeps its client listeners open and hands each accepted socket here instead of
 * to the broker; the proxy connects to the leader's port for that kind of client and relays
 * bytes both ways until either side is done. TLS is not terminated: AMQPS bytes go to the
 * leader's AMQPS port as they came. An AMQP or AMQPS relay starts with a PROXY protocol v1
 * header (src/cluster/proxy_header.h) so that the leader, which accepts it from its cluster
 * nodes only, sees the client's own address.
 *
 * Everything runs on the broker's libev loop. Memory is bounded: each direction of a relay
 * holds at most buffer_bytes; while it is full its reading side is not read (the client's or
 * the leader's TCP window closes), and an idle relay holds no buffer at all. A side that
 * shuts down its writing half has that passed on once its bytes are written (half-close);
 * an error on either side, or a leader that does not answer, closes both.
 *
 * While no leader is known, new client sockets are closed at once so that clients retry
 * (and find the leader once one is elected); when the leader changes, every relay to the
 * old one is dropped and its clients reconnect. */
#ifndef WARREN_SRC_CLUSTER_PROXY_H
#define WARREN_SRC_CLUSTER_PROXY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_BUFFER_DEFAULT     (64u * 1024) /* bytes per direction and relay */
#define PROXY_CONNECT_TIMEOUT_MS 5000         /* the leader's port must answer within */

/* What kind of client a listener accepted: each is relayed to the leader's port for it. */
enum proxy_kind {
    PROXY_AMQP,  /* AMQP over TCP: PROXY header, then the client's bytes */
    PROXY_AMQPS, /* AMQP over TLS: PROXY header, then the TLS bytes, untouched */
    PROXY_HTTP,  /* the management API: the bytes only (the HTTP server reads no header) */
    PROXY_KINDS,
};

struct proxy_options {
    size_t buffer_bytes;         /* per direction and relay; 0: PROXY_BUFFER_DEFAULT */
    uint32_t connect_timeout_ms; /* 0: PROXY_CONNECT_TIMEOUT_MS */
    bool no_proxy_header;        /* AMQP and AMQPS relays send no PROXY header (tests) */
};

/* The leader's client ports: "IP:port" or "[IPv6]:port" (IP literals: the cluster code
 * resolves names, as this runs on the loop and must not wait for DNS). NULL for a kind the
 * leader does not serve: clients of that kind are then closed at once. */
struct proxy_leader {
    const char *amqp;
    const char *amqps;
    const char *http;
};

/* Counters for the management API. */
struct proxy_stats {
    uint64_t relays;           /* open now (connecting to the leader, or relaying) */
    uint64_t relays_started;   /* since proxy_new */
    uint64_t refused;          /* sockets closed at once: no leader known for their kind */
    uint64_t connect_failures; /* the leader's port refused, failed or did not answer */
    uint64_t dropped;          /* relays closed by proxy_drop_all or a leader change */
    uint64_t bytes_to_leader;  /* client bytes relayed (PROXY headers not counted) */
    uint64_t bytes_to_client;  /* leader bytes relayed */
    uint64_t buffered_bytes;   /* in the relays' buffers now */
    uint64_t buffered_peak;    /* the most one direction of one relay ever held */
    uint64_t buffer_bytes;     /* its bound: options.buffer_bytes */
};

struct proxy;

/* A proxy on loop with opt (NULL: the defaults), no leader known yet. */
struct proxy *proxy_new(struct ev_loop *loop, const struct proxy_options *opt);
/* Closes every relay and frees p (NULL is fine). */
void proxy_free(struct proxy *p);

/* The leader is now at leader's addresses, or unknown (leader NULL). When that differs from
 * before, every relay is dropped (they lead to a node that no longer leads). Returns 0, or
 * -1 after logging why if an address is not "IP:port": the leader is then unknown. */
int proxy_set_leader(struct proxy *p, const struct proxy_leader *leader);

/* Takes fd, a client socket accepted by a listener of this kind (peer: the client's
 * address, for the PROXY header): relays it to the leader, or closes it at once when no
 * leader is known for its kind. fd belongs to the proxy from here, in every case. */
void proxy_accept(struct proxy *p, int fd, const struct sockaddr *peer, socklen_t peer_len,
                  enum proxy_kind kind);

/* Closes every relay, client and leader sockets alike. */
void proxy_drop_all(struct proxy *p);

/* HTTP relays that this node answers itself: the relay first reads the request line; fn
 * gets its method and path and returns a whole HTTP response (malloc'd, *len bytes), which
 * is written back before the connection is closed, or NULL to relay the request to the
 * leader unchanged. Used for what must describe this node, not the leader (its leader
 * health check). fn NULL: every HTTP client is relayed. */
typedef char *proxy_local_http_fn(void *ctx, const char *method, const char *path, size_t *len);
void proxy_set_local_http(struct proxy *p, proxy_local_http_fn *fn, void *ctx);

void proxy_stats(const struct proxy *p, struct proxy_stats *out);

#endif
