/* Inside the management API (src/mgmt/mgmt.h): what its files share. mgmt.c serves HTTP (the
 * daemons on the libev loop, authentication, the routes) and holds the helpers every handler
 * uses; the handlers of RabbitMQ's resources are in mgmt_users.c (overview, vhosts, users,
 * permissions, health), mgmt_objects.c (exchanges, queues, bindings, publish and get),
 * mgmt_runtime.c (connections, channels, consumers, policies, definitions), mgmt_params.c
 * (runtime and global parameters, vhost limits), mgmt_access.c (topic permissions, user
 * limits), mgmt_health.c (health checks but alarms) and mgmt_node.c (the node, the cluster's
 * name); mgmt_slice.c writes long
 * answers and runs imports a slice per loop turn. */
#ifndef WARREN_SRC_MGMT_MGMT_API_H
#define WARREN_SRC_MGMT_MGMT_API_H

#include <ev.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"
#include "src/mgmt/http_limits.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/mgmt_slice.h"
#include "src/mgmt/mgmt_stats.h"
#include "src/security/auth.h"

struct conn;
struct hmap;
struct ops_error;
struct server;
struct vhost;

/* A request body is JSON: a definitions file of 10,000 queues is a few megabytes, a
 * published message as large as the API is meant for (testing) well under this. */
#define MGMT_BODY_MAX         (64u * 1024 * 1024)
#define MGMT_MAX_SEGMENTS     12                    /* /api/bindings/v/e/x/q/q/props has 8 */
#define MGMT_STATS_INTERVAL_S 5.0                   /* RabbitMQ's collect_statistics_interval */
#define MGMT_REALM            "RabbitMQ Management" /* clients show it in their login prompt */
#define MGMT_GET_MAX          10000                 /* messages one /get may take */
#define MGMT_BODIES_MAX       (2 * MGMT_BODY_MAX)   /* all bodies being read at once */

/* One HTTP listener: the daemon and the watchers that drive it from the loop. */
struct mgmt_http {
    struct mgmt *m;
    struct MHD_Daemon *daemon;
    ev_io io;       /* the daemon's epoll descriptor */
    ev_timer timer; /* MHD's own timeout (idle connections, pending data) */
    bool metrics;   /* the Prometheus listener */
    char ip[64];
    uint16_t port;
    /* What its clients may hold: time, connections, request-body bytes. */
    struct http_limits limits;
};

struct mgmt {
    struct server *srv;
    struct mgmt_ctx ctx;
    struct mgmt_stats stats;
    struct mgmt_http api, prometheus;
    size_t metrics_size_hint; /* the last scrape's size: the next buffer starts there */
    /* Deleted vhosts whose connections are still closing: freed once none points at them. */
    struct vhost **dying;
    size_t ndying, dying_cap;
    ev_timer reap_timer;
    struct mgmt_slices slices; /* long answers and imports in progress (mgmt_slice.h) */
    double started_ms;         /* CLOCK_MONOTONIC at mgmt_start: a node's uptime */
};

/* A request being answered. */
struct mgmt_call {
    struct mgmt *m;
    struct MHD_Connection *conn;
    const char *method;
    struct wire_bytes seg[MGMT_MAX_SEGMENTS]; /* path segments after /api, decoded */
    size_t nseg;
    const char *body;
    size_t body_len;
    struct mgmt_work **work; /* where the request keeps a deferred answer (mgmt_defer) */
    char user[512];
    bool admin;       /* tagged administrator: everything */
    bool policymaker; /* administrator or policymaker: sets policies */
    bool monitor;     /* administrator or monitoring: sees every vhost, connection, channel */
};

/* ---- Answers (mgmt.c) ------------------------------------------------------------------- */

/* Responses, the request's parts, sorting and who may see what: each is described where it
 * is defined, in mgmt.c. */
enum MHD_Result mgmt_respond(struct mgmt_call *c, unsigned status, char *body, size_t len,
                             const char *content_type);
enum MHD_Result mgmt_respond_json(struct mgmt_call *c, unsigned status, json_t *j);
enum MHD_Result mgmt_respond_empty(struct mgmt_call *c, unsigned status);
enum MHD_Result mgmt_respond_error(struct mgmt_call *c, unsigned status, const char *error,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum MHD_Result mgmt_not_found(struct mgmt_call *c);
enum MHD_Result mgmt_bad_request(struct mgmt_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum MHD_Result mgmt_bad_request_term(struct mgmt_call *c, const char *what, json_t *value);
enum MHD_Result mgmt_access_refused(struct mgmt_call *c);
enum MHD_Result mgmt_respond_ops_error(struct mgmt_call *c, const struct ops_error *err);
bool mgmt_method_is(const struct mgmt_call *c, const char *m);
const char *mgmt_query(const struct mgmt_call *c, const char *name);
bool mgmt_query_true(const struct mgmt_call *c, const char *name);
/* The query argument decoded as a form value ('+' a space, %XX a byte; MHD leaves them as
 * sent: see keep_escapes()), cut at its first NUL; owned by the caller; NULL if absent. */
char *mgmt_query_decoded(const struct mgmt_call *c, const char *name);
json_t *mgmt_body_object(struct mgmt_call *c, enum MHD_Result *answered);
int mgmt_body_bool(struct mgmt_call *c, const json_t *obj, const char *name, bool def, bool *out,
                   enum MHD_Result *answered);
const char *mgmt_body_string(struct mgmt_call *c, const json_t *obj, const char *name,
                             const char *def, size_t *len, enum MHD_Result *answered);
int mgmt_body_arguments(struct mgmt_call *c, const json_t *obj, uint8_t **args, size_t *len,
                        enum MHD_Result *answered);
struct vhost *mgmt_find_vhost(struct mgmt_call *c, struct wire_bytes name);
struct wire_bytes mgmt_exchange_name(struct wire_bytes seg);
size_t mgmt_url_encode(struct wire_bytes b, char *out, size_t size);
struct wire_bytes mgmt_url_decode(const char *s, uint8_t *out, size_t size);
struct vhost **mgmt_vhosts_sorted(struct server *s, struct vhost *only, size_t *n);
void **mgmt_map_sorted(const struct hmap *map, int (*cmp)(const void *, const void *), size_t *n);
enum MHD_Result mgmt_not_admin(struct mgmt_call *c);
bool mgmt_sees_objects_of(const struct mgmt_call *c, const struct vhost *vh);
bool mgmt_sees_conn(const struct mgmt_call *c, const struct conn *k);
bool mgmt_may_see(struct mgmt_call *c, const struct vhost *vh, enum MHD_Result *answered);
bool mgmt_permitted(struct mgmt_call *c, const struct vhost *vh, enum auth_op op,
                    struct wire_bytes primary, struct wire_bytes secondary, bool via_channel,
                    enum MHD_Result *answered);

/* ---- The handlers of the routes --------------------------------------------------------- */

/* mgmt_users.c */
enum MHD_Result mgmt_api_overview(struct mgmt_call *c);
enum MHD_Result mgmt_api_whoami(struct mgmt_call *c);
void mgmt_on_reap_vhosts(struct ev_loop *loop, ev_timer *w, int revents);
enum MHD_Result mgmt_api_vhosts(struct mgmt_call *c);
enum MHD_Result mgmt_api_aliveness(struct mgmt_call *c);
enum MHD_Result mgmt_api_alarms(struct mgmt_call *c);
/* src/mgmt/mgmt_cluster.c. mgmt_cluster_nodes: in cluster mode, true after appending to
 * nodes, in name order, self (this node's object, given the cluster's fields cluster_role,
 * in_sync and lag_bytes) and, on the leader, every other member it knows: each follower it
 * has seen and each in-sync member, with name, type, running and those three; false on a
 * single node. */
bool mgmt_cluster_nodes(const struct server *srv, json_t *self, json_t *nodes);
enum MHD_Result mgmt_api_health_leader(struct mgmt_call *c);
enum MHD_Result mgmt_api_cluster_status(struct mgmt_call *c);
enum MHD_Result mgmt_api_cluster_transfer(struct mgmt_call *c);
enum MHD_Result mgmt_api_users(struct mgmt_call *c);
enum MHD_Result mgmt_api_vhost_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_users_without_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_users_bulk_delete(struct mgmt_call *c);

/* mgmt_access.c */
enum MHD_Result mgmt_api_topic_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_user_topic_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_vhost_topic_permissions(struct mgmt_call *c);
enum MHD_Result mgmt_api_user_limits(struct mgmt_call *c);

/* mgmt_health.c */
enum MHD_Result mgmt_api_health_certificates(struct mgmt_call *c);
enum MHD_Result mgmt_api_health_port(struct mgmt_call *c);
enum MHD_Result mgmt_api_health_protocol(struct mgmt_call *c);
enum MHD_Result mgmt_api_health_virtual_hosts(struct mgmt_call *c);
enum MHD_Result mgmt_api_health_single_node(struct mgmt_call *c);

/* mgmt_objects.c */
enum MHD_Result mgmt_api_exchanges(struct mgmt_call *c);
enum MHD_Result mgmt_api_exchange_bindings(struct mgmt_call *c);
enum MHD_Result mgmt_api_publish(struct mgmt_call *c);
enum MHD_Result mgmt_api_queues(struct mgmt_call *c);
enum MHD_Result mgmt_api_queue_bindings(struct mgmt_call *c);
enum MHD_Result mgmt_api_get(struct mgmt_call *c);
enum MHD_Result mgmt_api_bindings(struct mgmt_call *c);

/* mgmt_runtime.c */
enum MHD_Result mgmt_api_connections(struct mgmt_call *c);
enum MHD_Result mgmt_api_vhost_connections(struct mgmt_call *c);
enum MHD_Result mgmt_api_user_connections(struct mgmt_call *c);
enum MHD_Result mgmt_api_channels(struct mgmt_call *c);
enum MHD_Result mgmt_api_consumers(struct mgmt_call *c);
enum MHD_Result mgmt_api_policies(struct mgmt_call *c);
enum MHD_Result mgmt_api_definitions(struct mgmt_call *c);
enum MHD_Result mgmt_api_memory_watermark(struct mgmt_call *c);

/* mgmt_params.c */
enum MHD_Result mgmt_api_parameters(struct mgmt_call *c);
enum MHD_Result mgmt_api_vhost_limits(struct mgmt_call *c);
enum MHD_Result mgmt_api_global_parameters(struct mgmt_call *c);

/* mgmt_node.c */
enum MHD_Result mgmt_api_nodes(struct mgmt_call *c);
enum MHD_Result mgmt_api_cluster_name(struct mgmt_call *c);
enum MHD_Result mgmt_api_extensions(struct mgmt_call *c);
enum MHD_Result mgmt_api_auth(struct mgmt_call *c);
enum MHD_Result mgmt_api_rebalance(struct mgmt_call *c);
enum MHD_Result mgmt_api_vhost_start(struct mgmt_call *c);
enum MHD_Result mgmt_api_queue_actions(struct mgmt_call *c);
/* GET /metrics/detailed on the Prometheus listener: its family= and vhost= parameters. */
struct metrics_buf;
void mgmt_render_detailed(struct mgmt *m, struct MHD_Connection *conn, struct metrics_buf *b);

#endif
