/* The management API: the node and the cluster it forms alone. A Warren broker is a one-node
 * cluster, so /api/nodes lists one node, this one, with the fields of RabbitMQ's node object
 * that Warren has a figure for: memory and disk against their limits and alarms, file
 * descriptors and sockets against theirs, uptime, processors, the exchange types, the SASL
 * mechanisms, the HTTP contexts; and "listeners", as the overview lists them. The Erlang
 * ones (processes, run queue, garbage collection, mnesia, applications) are left out.
 * In cluster mode the leader lists every member (the others with what it knows of them:
 * name, type, running) and adds Warren's cluster_role, in_sync and lag_bytes to each
 * (mgmt_cluster.c); a follower's API refuses /api/nodes (503 not_leader, mgmt.c).
 *   GET /api/nodes          [node...]            administrators and monitoring users
 *   GET /api/nodes/name     node, or 404 for a name not listed
 *   GET /api/cluster-name   {"name": ...}        any management user
 *   PUT /api/cluster-name   {"name": "x"}        administrators: 204; the name is the
 *                                                global parameter cluster_name, as in RabbitMQ
 *   GET /api/extensions     []                   Warren's UI has no plugins' extensions
 *   GET /api/auth           {"enable_uaa": false, ...}  no credentials needed (the UI's login
 *                                                page reads it before anyone logged in)
 * and the cluster operations, which on one node have nothing to do but answer as RabbitMQ's
 * single node does (administrators only):
 *   POST /api/rebalance/queues             204
 *   POST /api/vhosts/v/start/node          204 (the vhost runs); another node: 400 nodedown
 *   POST /api/queues/v/q/actions           {"action": "sync" | "cancel_sync"}: 204, a
 *                                          classic queue is never mirrored */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/mgmt/metrics.h"
#include "src/security/auth.h"

/* The SASL mechanisms as RabbitMQ's node lists them: every mechanism Warren knows, enabled
 * when configured. */
static json_t *auth_mechanisms_json(const struct config *cfg)
{
    static const struct {
        enum config_auth_mechanism id;
        const char *name, *description;
    } known[] = {
        {CONFIG_AUTH_PLAIN, "PLAIN", "SASL PLAIN authentication mechanism"},
        {CONFIG_AUTH_AMQPLAIN, "AMQPLAIN", "QPid AMQPLAIN mechanism"},
        {CONFIG_AUTH_EXTERNAL, "EXTERNAL", "SASL EXTERNAL authentication mechanism"},
        {CONFIG_AUTH_RABBIT_CR_DEMO, "RABBIT-CR-DEMO",
         "RabbitMQ Demo challenge-response authentication mechanism"},
    };
    json_t *arr = json_array();

    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        bool enabled = false;
        for (size_t k = 0; k < cfg->auth_mechanism_count; k++)
            enabled = enabled || cfg->auth_mechanisms[k] == known[i].id;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b}", "name", known[i].name, "description",
                                             known[i].description, "enabled", enabled));
    }
    return arr;
}

/* The HTTP listeners as RabbitMQ's "contexts" show them (its port is a string there too). */
static json_t *contexts_json(const struct mgmt_ctx *ctx)
{
    json_t *arr = json_array();
    char port[8];

    if (ctx->http_port != 0) {
        snprintf(port, sizeof port, "%u", ctx->http_port);
        json_array_append_new(arr,
                              json_pack("{s:s,s:s,s:s,s:s}", "description", "RabbitMQ Management",
                                        "path", "/", "ip", ctx->http_ip, "port", port));
    }
    if (ctx->prometheus_port != 0) {
        snprintf(port, sizeof port, "%u", ctx->prometheus_port);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s}", "description",
                                             "RabbitMQ Prometheus", "path", "/", "ip",
                                             ctx->prometheus_ip, "port", port, "protocol",
                                             "'http/prometheus'"));
    }
    return arr;
}

/* Milliseconds since the management API started, which is when the broker did. */
static json_int_t uptime_ms(const struct mgmt *m)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (json_int_t)((double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6 - m->started_ms);
}

static json_t *node_json(const struct mgmt_call *c)
{
    const struct server *s = c->m->srv;
    const struct config *cfg = s->cfg;
    json_t *o = json_object();
    struct rlimit rl;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char pid[32];
    json_int_t fd_total = -1;

    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    json_object_set_new(o, "name", json_string(c->m->ctx.node));
    json_object_set_new(o, "type", json_string("disc"));
    json_object_set_new(o, "running", json_true());
    json_object_set_new(o, "being_drained", json_false());
    json_object_set_new(o, "partitions", json_array());
    json_object_set_new(o, "cluster_links", json_array());
    json_object_set_new(o, "os_pid", json_string(pid)); /* a string in RabbitMQ too */
    json_object_set_new(o, "rates_mode", json_string("basic"));
    json_object_set_new(o, "uptime", json_integer(uptime_ms(c->m)));
    json_object_set_new(o, "processors", json_integer(cpus > 0 ? cpus : 1));
    json_object_set_new(o, "mem_used", json_integer((json_int_t)s->memory_used));
    json_object_set_new(o, "mem_limit", json_integer((json_int_t)s->memory_limit));
    json_object_set_new(o, "mem_alarm", json_boolean(s->alarms & ALARM_MEMORY));
    json_object_set_new(o, "mem_calculation_strategy", json_string("rss"));
    if (s->disk_free != UINT64_MAX) /* not known before the first check */
        json_object_set_new(o, "disk_free", json_integer((json_int_t)s->disk_free));
    json_object_set_new(o, "disk_free_limit", json_integer((json_int_t)cfg->disk_free_limit));
    json_object_set_new(o, "disk_free_alarm", json_boolean(s->alarms & ALARM_DISK));
    json_object_set_new(o, "fd_used", json_integer((json_int_t)metrics_open_fds()));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        fd_total = (json_int_t)rl.rlim_cur;
        json_object_set_new(o, "fd_total", json_integer(fd_total));
    }
    json_object_set_new(o, "sockets_used", json_integer(s->conn_count));
    /* What the broker will accept: connection_max, else as many as descriptors allow. */
    if (cfg->connection_max != 0 && (fd_total < 0 || cfg->connection_max < fd_total))
        json_object_set_new(o, "sockets_total", json_integer(cfg->connection_max));
    else if (fd_total >= 0)
        json_object_set_new(o, "sockets_total", json_integer(fd_total));
    json_object_set_new(o, "exchange_types", mgmt_json_exchange_types());
    json_object_set_new(o, "auth_mechanisms", auth_mechanisms_json(cfg));
    json_object_set_new(o, "contexts", contexts_json(&c->m->ctx));
    json_object_set_new(o, "listeners", mgmt_json_listeners(&c->m->ctx));
    json_object_set_new(o, "applications", json_array());
    json_object_set_new(o, "enabled_plugins", json_array());
    if (cfg->data_dir[0] != '\0')
        json_object_set_new(o, "db_dir", json_string(cfg->data_dir));
    json_object_set_new(o, "log_files", json_array());
    if (cfg->log_file[0] != '\0')
        json_array_append_new(json_object_get(o, "log_files"), json_string(cfg->log_file));
    return o;
}

enum MHD_Result mgmt_api_nodes(struct mgmt_call *c)
{
    json_t *arr, *self, *node;
    size_t i;

    if (!c->monitor)
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Not monitor user");
    arr = json_array();
    self = node_json(c);
    /* A cluster's leader lists every member (mgmt_cluster.c), a single node itself. */
    if (!mgmt_cluster_nodes(c->m->srv, self, arr))
        json_array_append(arr, self);
    json_decref(self);
    if (c->nseg == 2) {
        json_array_foreach(arr, i, node)
        {
            if (wire_bytes_eq_cstr(c->seg[1], json_string_value(json_object_get(node, "name")))) {
                json_incref(node);
                json_decref(arr);
                return mgmt_respond_json(c, MHD_HTTP_OK, node);
            }
        }
        json_decref(arr);
        return mgmt_not_found(c);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

/* PUT: {"name": "x"}, RabbitMQ's reason when the key is missing; a name that is not a
 * non-empty string is refused (RabbitMQ fails with 500). */
static enum MHD_Result put_cluster_name(struct mgmt_call *c)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body, *name;
    char *text;

    if (!c->admin)
        return mgmt_not_admin(c);
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    name = json_object_get(body, "name");
    if (name == NULL) {
        answered = mgmt_bad_request(c, "[{key_missing,name}]");
    } else if (!json_is_string(name) || json_string_length(name) == 0) {
        answered = mgmt_bad_request(c, "name must be a non-empty string");
    } else {
        text = json_dumps(name, JSON_ENCODE_ANY | JSON_COMPACT);
        auth_global_parameter_set(c->m->srv->auth, MGMT_CLUSTER_NAME_PARAMETER, text);
        free(text);
        server_auth_changed(c->m->srv);
        log_info(NULL, "management API: user '%s' named the cluster '%s'", c->user,
                 json_string_value(name));
        answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    json_decref(body);
    return answered;
}

enum MHD_Result mgmt_api_cluster_name(struct mgmt_call *c)
{
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_cluster_name(c);
    return mgmt_respond_json(c, MHD_HTTP_OK,
                             json_pack("{s:o}", "name", mgmt_json_cluster_name(&c->m->ctx)));
}

/* The JavaScript files plugins add to RabbitMQ's UI: none. */
enum MHD_Result mgmt_api_extensions(struct mgmt_call *c)
{
    return mgmt_respond_json(c, MHD_HTTP_OK, json_array());
}

/* How the UI logs in: with a user and password, never through OAuth (UAA). */
enum MHD_Result mgmt_api_auth(struct mgmt_call *c)
{
    return mgmt_respond_json(
        c, MHD_HTTP_OK,
        json_pack("{s:b,s:s,s:s}", "enable_uaa", 0, "uaa_client_id", "", "uaa_location", ""));
}

/* ---- Cluster operations --------------------------------------------------------------- */

enum MHD_Result mgmt_api_rebalance(struct mgmt_call *c)
{
    if (!c->admin)
        return mgmt_not_admin(c);
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

enum MHD_Result mgmt_api_vhost_start(struct mgmt_call *c)
{
    char node[300];

    if (!c->admin)
        return mgmt_not_admin(c);
    snprintf(node, sizeof node, "%.*s", (int)c->seg[3].len, (const char *)c->seg[3].ptr);
    if (!wire_bytes_eq_cstr(c->seg[3], c->m->ctx.node))
        return mgmt_bad_request(c, "Request to node %s failed with nodedown", node);
    if (mgmt_find_vhost(c, c->seg[1]) == NULL)
        return mgmt_bad_request(c, "Request to node %s failed with {no_such_vhost,<<\"%.*s\">>}",
                                node, (int)c->seg[1].len, (const char *)c->seg[1].ptr);
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

enum MHD_Result mgmt_api_queue_actions(struct mgmt_call *c)
{
    enum MHD_Result answered = MHD_NO;
    struct vhost *vh;
    json_t *body;
    const json_t *action;

    if (!c->admin)
        return mgmt_not_admin(c);
    if ((vh = mgmt_find_vhost(c, c->seg[1])) == NULL || vhost_queue_find(vh, c->seg[2]) == NULL)
        return mgmt_not_found(c); /* RabbitMQ 3.10 fails with 500 */
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    action = json_object_get(body, "action");
    if (action == NULL)
        answered = mgmt_bad_request(c, "[{key_missing,action}]");
    else if (json_is_string(action) && (strcmp(json_string_value(action), "sync") == 0 ||
                                        strcmp(json_string_value(action), "cancel_sync") == 0))
        answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    else
        answered = mgmt_bad_request_term(c, "unknown", json_deep_copy(action));
    json_decref(body);
    return answered;
}

/* ---- /metrics/detailed ----------------------------------------------------------------- */

#define DETAILED_VHOSTS_MAX 64 /* vhost= parameters taken; more are ignored */

struct detailed_query {
    unsigned families;
    char *vhosts[DETAILED_VHOSTS_MAX];
    size_t nvhosts;
};

/* Each family= and vhost= of the query string, as RabbitMQ reads them (both may repeat). The
 * daemon keeps values escaped (mgmt.c), so "%2F" is decoded here. */
static enum MHD_Result on_detailed_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    struct detailed_query *q = cls;
    uint8_t *decoded;
    struct wire_bytes text;

    (void)kind;
    if (value == NULL)
        return MHD_YES;
    decoded = xmalloc(strlen(value) + 1);
    text = mgmt_url_decode(value, decoded, strlen(value));
    decoded[text.len] = '\0';
    if (strcmp(key, "family") == 0) {
        q->families |= metrics_family_bit((const char *)decoded);
    } else if (strcmp(key, "vhost") == 0 && q->nvhosts < DETAILED_VHOSTS_MAX) {
        q->vhosts[q->nvhosts++] = (char *)decoded;
        return MHD_YES;
    }
    free(decoded);
    return MHD_YES;
}

void mgmt_render_detailed(struct mgmt *m, struct MHD_Connection *conn, struct metrics_buf *b)
{
    struct detailed_query q = {0};
    json_t *cluster = mgmt_json_cluster_name(&m->ctx);

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_detailed_argument, &q);
    metrics_render_detailed(b, m->srv, q.families, (const char *const *)q.vhosts, q.nvhosts,
                            m->ctx.node, json_string_value(cluster), (double)uptime_ms(m) / 1000.0);
    json_decref(cluster);
    for (size_t i = 0; i < q.nvhosts; i++)
        free(q.vhosts[i]);
}
