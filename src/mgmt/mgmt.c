/* The management HTTP API and the metrics endpoint: libmicrohttpd driven by the libev loop,
 * RabbitMQ's routes, JSON in and out; the answers every handler shares (src/mgmt/mgmt_api.h). */
#include "build_config.h"

#include "src/mgmt/mgmt.h"
#include "src/mgmt/mgmt_api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/cluster/cluster.h"
#include "src/broker/vhost.h"
#include "src/mgmt/metrics.h"
#include "src/mgmt/mgmt_defs.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/mgmt_stats.h"
#include "src/mgmt/ops.h"
#include "src/mgmt/ui.h"
#include "src/security/auth.h"

/* A request between MHD's calls: who asked, as its head said, and its body as it arrives. */
struct request {
    struct mgmt_call call; /* its user and rights once authenticated */
    struct http_body body;
    struct mgmt_work *work; /* its answer waits for this (mgmt_slice.h) */
    bool ui;                /* a file of the web UI: any path outside /api/ (ui.h) */
};

/* ---- Responses ------------------------------------------------------------------------- */

enum MHD_Result mgmt_respond(struct mgmt_call *c, unsigned status, char *body, size_t len,
                             const char *content_type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok;

    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    if (content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    ok = MHD_queue_response(c->conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result mgmt_respond_json(struct mgmt_call *c, unsigned status, json_t *j)
{
    const char *sort_path;
    bool reverse;
    char *text;

    /* A list answered whole is sorted here by ?sort= and ?sort_reverse=true, as RabbitMQ
     * sorts every list (the streamed ones sort themselves: mgmt_slice.h). */
    sort_path = mgmt_sort_wanted(c, &reverse);
    if (status == MHD_HTTP_OK && json_is_array(j) && (sort_path != NULL || reverse))
        mgmt_sort_array(j, sort_path, reverse);
    text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

    json_decref(j);
    if (text == NULL)
        return MHD_NO;
    return mgmt_respond(c, status, text, strlen(text), "application/json");
}

enum MHD_Result mgmt_respond_empty(struct mgmt_call *c, unsigned status)
{
    return mgmt_respond(c, status, NULL, 0, NULL);
}

/* {"error": error, "reason": reason}; reason is a string or a JSON value (RabbitMQ shows
 * some reasons as Erlang terms, e.g. ["not_boolean","yes"]). */
static enum MHD_Result respond_error_json(struct mgmt_call *c, unsigned status, const char *error,
                                          json_t *reason)
{
    json_t *j = json_object();

    json_object_set_new(j, "error", json_string(error));
    json_object_set_new(j, "reason", reason);
    return mgmt_respond_json(c, status, j);
}

enum MHD_Result mgmt_respond_error(struct mgmt_call *c, unsigned status, const char *error,
                                   const char *fmt, ...)
{
    char reason[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return respond_error_json(c, status, error, mgmt_json_bytes(wire_cstr(reason)));
}

enum MHD_Result mgmt_not_found(struct mgmt_call *c)
{
    return mgmt_respond_error(c, MHD_HTTP_NOT_FOUND, "Object Not Found", "Not Found");
}

enum MHD_Result mgmt_bad_request(struct mgmt_call *c, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return respond_error_json(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                              mgmt_json_bytes(wire_cstr(reason)));
}

/* A pair like Erlang's {Atom, Value}, the way RabbitMQ reports a bad field. */
enum MHD_Result mgmt_bad_request_term(struct mgmt_call *c, const char *what, json_t *value)
{
    json_t *reason = json_array();

    json_array_append_new(reason, json_string(what));
    json_array_append_new(reason, value);
    return respond_error_json(c, MHD_HTTP_BAD_REQUEST, "bad_request", reason);
}

enum MHD_Result mgmt_access_refused(struct mgmt_call *c)
{
    return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Access refused.");
}

/* An error of a broker operation, answered as RabbitMQ's management API answers it: refusals
 * as 401, missing objects as 404, the rest as 400 with the reason; what could not be written
 * to disk as 503. */
enum MHD_Result mgmt_respond_ops_error(struct mgmt_call *c, const struct ops_error *err)
{
    if (err->code == WIRE_ACCESS_REFUSED)
        return mgmt_access_refused(c);
    if (err->code == WIRE_NOT_FOUND)
        return mgmt_respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "%s", err->text);
    /* The broker could not write it down (a full disk): not the request's fault. */
    if (err->code == WIRE_RESOURCE_ERROR)
        return mgmt_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "resource_error", "%s",
                                  err->text);
    return mgmt_bad_request(c, "%s", err->text);
}

/* ---- Request helpers ------------------------------------------------------------------- */

bool mgmt_method_is(const struct mgmt_call *c, const char *m)
{
    return strcmp(c->method, m) == 0 ||
           (strcmp(m, MHD_HTTP_METHOD_GET) == 0 && strcmp(c->method, MHD_HTTP_METHOD_HEAD) == 0);
}

/* A mgmt_query parameter's value, or NULL. */
const char *mgmt_query(const struct mgmt_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

char *mgmt_query_decoded(const struct mgmt_call *c, const char *name)
{
    const char *v = mgmt_query(c, name);
    char *spaced, *out;
    size_t len;
    struct wire_bytes d;

    if (v == NULL)
        return NULL;
    /* '+' first, so that an escaped one (%2B) stays a '+'. */
    spaced = xstrdup(v);
    len = strlen(spaced);
    for (size_t i = 0; i < len; i++) {
        if (spaced[i] == '+')
            spaced[i] = ' ';
    }
    out = xmalloc(len + 1);
    d = mgmt_url_decode(spaced, (uint8_t *)out, len);
    out[d.len] = '\0';
    free(spaced);
    return out;
}

bool mgmt_query_true(const struct mgmt_call *c, const char *name)
{
    const char *v = mgmt_query(c, name);
    return v != NULL && strcmp(v, "true") == 0;
}

/* The body as a JSON object; an empty body is an empty object. NULL after answering 400. */
json_t *mgmt_body_object(struct mgmt_call *c, enum MHD_Result *answered)
{
    json_t *j;

    if (c->body_len == 0)
        return json_object();
    j = json_loadb(c->body, c->body_len, 0, NULL);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        *answered = mgmt_bad_request(c, "not_json");
        return NULL;
    }
    return j;
}

/* A boolean field (true/false, or "true"/"false" as RabbitMQ also takes); def when absent.
 * -1 after answering 400. */
int mgmt_body_bool(struct mgmt_call *c, const json_t *obj, const char *name, bool def, bool *out,
                   enum MHD_Result *answered)
{
    const json_t *v = json_object_get(obj, name);

    *out = def;
    if (v == NULL)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v) &&
        (strcmp(json_string_value(v), "true") == 0 || strcmp(json_string_value(v), "false") == 0)) {
        *out = strcmp(json_string_value(v), "true") == 0;
        return 0;
    }
    *answered = mgmt_bad_request_term(c, "not_boolean", json_deep_copy(v));
    return -1;
}

/* A string field; def when absent. NULL after answering 400. */
const char *mgmt_body_string(struct mgmt_call *c, const json_t *obj, const char *name,
                             const char *def, size_t *len, enum MHD_Result *answered)
{
    const json_t *v = json_object_get(obj, name);

    if (v == NULL) {
        *len = def != NULL ? strlen(def) : 0;
        return def;
    }
    if (!json_is_string(v)) {
        *answered = mgmt_bad_request(c, "%s must be a string", name);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* The "arguments" field encoded as table entries into *args (free it). -1 after answering. */
int mgmt_body_arguments(struct mgmt_call *c, const json_t *obj, uint8_t **args, size_t *len,
                        enum MHD_Result *answered)
{
    const json_t *v = json_object_get(obj, "arguments");
    char err[256];

    /* RabbitMQ's own UI sends [] for no arguments. */
    if (v != NULL && json_is_array(v) && json_array_size(v) == 0)
        v = NULL;
    if (mgmt_json_to_table(v, args, len, err, sizeof err) != 0) {
        *answered = mgmt_bad_request(c, "arguments: %s", err);
        return -1;
    }
    return 0;
}

struct vhost *mgmt_find_vhost(struct mgmt_call *c, struct wire_bytes name)
{
    return server_vhost_find(c->m->srv, name);
}

/* "amq.default" in a URL names the default exchange, whose name is empty. */
struct wire_bytes mgmt_exchange_name(struct wire_bytes seg)
{
    return wire_bytes_eq_cstr(seg, "amq.default") ? WIRE_BYTES_C("") : seg;
}

/* Percent-encodes b into out (NUL-terminated, cut to fit); returns the length written. */
size_t mgmt_url_encode(struct wire_bytes b, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < b.len && n + 4 < size; i++) {
        uint8_t ch = b.ptr[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}

/* Percent-decodes s into out (at least strlen(s) bytes; cut at size). */
static int hex_value(char ch);

struct wire_bytes mgmt_url_decode(const char *s, uint8_t *out, size_t size)
{
    size_t n = 0;
    int hi, lo;

    for (size_t i = 0; s[i] != '\0' && n < size; i++) {
        if (s[i] == '%' && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
            out[n++] = (uint8_t)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = (uint8_t)s[i];
        }
    }
    return (struct wire_bytes){.ptr = out, .len = n};
}

/* ---- Sorting --------------------------------------------------------------------------- */

static int bytes_cmp(struct wire_bytes a, struct wire_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.ptr, b.ptr, n) : 0;

    return r != 0 ? r : (a.len > b.len) - (a.len < b.len);
}

static int cmp_vhost(const void *a, const void *b)
{
    return bytes_cmp((*(struct vhost *const *)a)->name, (*(struct vhost *const *)b)->name);
}

/* The vhosts in name order, or just one. The array is the caller's to free. */
struct vhost **mgmt_vhosts_sorted(struct server *s, struct vhost *only, size_t *n)
{
    struct vhost **out;
    void *v;

    if (only != NULL) {
        out = xmalloc(sizeof *out);
        out[0] = only;
        *n = 1;
        return out;
    }
    out = xmalloc((s->vhosts.len + 1) * sizeof *out);
    *n = 0;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);)
        out[(*n)++] = v;
    qsort(out, *n, sizeof *out, cmp_vhost);
    return out;
}

/* Every value of a map, sorted with cmp; the array is the caller's to free. */
void **mgmt_map_sorted(const struct hmap *map, int (*cmp)(const void *, const void *), size_t *n)
{
    void **out = xmalloc((map->len + 1) * sizeof *out);
    void *v;

    *n = 0;
    for (size_t i = 0; hmap_next(map, &i, &v);)
        out[(*n)++] = v;
    qsort(out, *n, sizeof *out, cmp);
    return out;
}

/* ---- Who may do what ------------------------------------------------------------------ */

/* RabbitMQ's management access, by user tag: administrator may do everything; monitoring
 * also sees every vhost, connection and channel; management and policymaker see the vhosts
 * they have permissions in, and their own connections. Exchanges, queues and bindings need
 * the AMQP permissions a client would need for the same operation (src/security/auth.h). */

enum MHD_Result mgmt_not_admin(struct mgmt_call *c)
{
    return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Not administrator user");
}

static bool has_vhost_access(const struct mgmt_call *c, struct wire_bytes vhost)
{
    return auth_vhost_access(c->m->srv->auth, wire_cstr(c->user), vhost);
}

/* Whether the user sees vh's exchanges, queues, bindings and consumers. */
bool mgmt_sees_objects_of(const struct mgmt_call *c, const struct vhost *vh)
{
    return c->admin || has_vhost_access(c, vh->name);
}

bool mgmt_sees_conn(const struct mgmt_call *c, const struct conn *k)
{
    return c->monitor || strcmp(k->log.user, c->user) == 0;
}

/* False after answering 401, for a vhost whose objects the user may not see. */
bool mgmt_may_see(struct mgmt_call *c, const struct vhost *vh, enum MHD_Result *answered)
{
    if (mgmt_sees_objects_of(c, vh))
        return true;
    *answered = mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                   "User not authorised to access virtual host");
    return false;
}

/* The AMQP permission check of op, for anyone, administrators included. False after
 * answering: 401 "Access refused.", or for what RabbitMQ does through a channel (publish,
 * get) 400 with the channel's 403 text. */
bool mgmt_permitted(struct mgmt_call *c, const struct vhost *vh, enum auth_op op,
                    struct wire_bytes primary, struct wire_bytes secondary, bool via_channel,
                    enum MHD_Result *answered)
{
    char refusal[600];

    if (!has_vhost_access(c, vh->name)) {
        *answered = mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                       "User not authorised to access virtual host");
        return false;
    }
    if (auth_check_op(c->m->srv->auth, wire_cstr(c->user), vh->name, op, primary, secondary,
                      refusal, sizeof refusal))
        return true;
    *answered = via_channel ? mgmt_bad_request(c, "403 ACCESS_REFUSED - %s", refusal)
                            : mgmt_access_refused(c);
    return false;
}

/* ---- Routing --------------------------------------------------------------------------- */

enum {
    M_GET = 1,
    M_PUT = 2,
    M_POST = 4,
    M_DELETE = 8,
};

typedef enum MHD_Result (*handler_fn)(struct mgmt_call *c);

/* Paths below /api/: "*" is any one segment. Searched in order; the first pattern that
 * matches the path and the method answers. */
static const struct route {
    const char *pattern;
    unsigned methods;
    handler_fn handle;
} routes[] = {
    {"overview", M_GET, mgmt_api_overview},
    {"whoami", M_GET, mgmt_api_whoami},
    {"vhosts", M_GET, mgmt_api_vhosts},
    {"vhosts/*", M_GET | M_PUT | M_DELETE, mgmt_api_vhosts},
    {"vhosts/*/permissions", M_GET, mgmt_api_vhost_permissions},
    {"vhosts/*/topic-permissions", M_GET, mgmt_api_vhost_topic_permissions},
    {"vhosts/*/connections", M_GET, mgmt_api_vhost_connections},
    {"vhosts/*/channels", M_GET, mgmt_api_vhost_connections},
    {"exchanges", M_GET, mgmt_api_exchanges},
    {"exchanges/*", M_GET, mgmt_api_exchanges},
    {"exchanges/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_exchanges},
    {"exchanges/*/*/publish", M_POST, mgmt_api_publish},
    {"exchanges/*/*/bindings/source", M_GET, mgmt_api_exchange_bindings},
    {"exchanges/*/*/bindings/destination", M_GET, mgmt_api_exchange_bindings},
    {"queues", M_GET, mgmt_api_queues},
    {"queues/*", M_GET, mgmt_api_queues},
    {"queues/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_queues},
    {"queues/*/*/contents", M_DELETE, mgmt_api_queues},
    {"queues/*/*/get", M_POST, mgmt_api_get},
    {"queues/*/*/bindings", M_GET, mgmt_api_queue_bindings},
    {"bindings", M_GET, mgmt_api_bindings},
    {"bindings/*", M_GET, mgmt_api_bindings},
    {"bindings/*/*/*/*/*", M_GET | M_POST, mgmt_api_bindings},
    {"bindings/*/*/*/*/*/*", M_GET | M_DELETE, mgmt_api_bindings},
    {"connections", M_GET, mgmt_api_connections},
    {"connections/username/*", M_GET | M_DELETE, mgmt_api_user_connections},
    {"connections/*", M_GET | M_DELETE, mgmt_api_connections},
    {"connections/*/channels", M_GET, mgmt_api_connections},
    {"channels", M_GET, mgmt_api_channels},
    {"channels/*", M_GET, mgmt_api_channels},
    {"consumers", M_GET, mgmt_api_consumers},
    {"consumers/*", M_GET, mgmt_api_consumers},
    {"definitions", M_GET | M_POST, mgmt_api_definitions},
    {"definitions/*", M_GET | M_POST, mgmt_api_definitions},
    {"policies", M_GET, mgmt_api_policies},
    {"policies/*", M_GET, mgmt_api_policies},
    {"policies/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_policies},
    {"operator-policies", M_GET, mgmt_api_policies},
    {"operator-policies/*", M_GET, mgmt_api_policies},
    {"operator-policies/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_policies},
    {"aliveness-test/*", M_GET, mgmt_api_aliveness},
    {"health/checks/alarms", M_GET, mgmt_api_alarms},
    {"health/checks/local-alarms", M_GET, mgmt_api_alarms},
    {"health/checks/certificate-expiration/*/*", M_GET, mgmt_api_health_certificates},
    {"health/checks/port-listener/*", M_GET, mgmt_api_health_port},
    {"health/checks/protocol-listener/*", M_GET, mgmt_api_health_protocol},
    {"health/checks/virtual-hosts", M_GET, mgmt_api_health_virtual_hosts},
    {"health/checks/node-is-quorum-critical", M_GET, mgmt_api_health_single_node},
    {"health/checks/node-is-mirror-sync-critical", M_GET, mgmt_api_health_single_node},
    {"health/checks/leader", M_GET, mgmt_api_health_leader},
    {"cluster/status", M_GET, mgmt_api_cluster_status},
    {"cluster/transfer-leadership", M_POST, mgmt_api_cluster_transfer},
    {"users", M_GET, mgmt_api_users},
    {"users/without-permissions", M_GET, mgmt_api_users_without_permissions},
    {"users/bulk-delete", M_POST, mgmt_api_users_bulk_delete},
    {"users/*", M_GET | M_PUT | M_DELETE, mgmt_api_users},
    {"users/*/permissions", M_GET, mgmt_api_users},
    {"users/*/topic-permissions", M_GET, mgmt_api_user_topic_permissions},
    {"topic-permissions", M_GET, mgmt_api_topic_permissions},
    {"topic-permissions/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_topic_permissions},
    {"user-limits", M_GET, mgmt_api_user_limits},
    {"user-limits/*", M_GET, mgmt_api_user_limits},
    {"user-limits/*/*", M_PUT | M_DELETE, mgmt_api_user_limits},
    {"global-parameters", M_GET, mgmt_api_global_parameters},
    {"global-parameters/*", M_GET | M_PUT | M_DELETE, mgmt_api_global_parameters},
    {"permissions", M_GET, mgmt_api_permissions},
    {"permissions/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_permissions},
    {"vm-memory-high-watermark", M_GET | M_PUT, mgmt_api_memory_watermark},
    {"parameters", M_GET, mgmt_api_parameters},
    {"parameters/*", M_GET, mgmt_api_parameters},
    {"parameters/*/*", M_GET, mgmt_api_parameters},
    {"parameters/*/*/*", M_GET | M_PUT | M_DELETE, mgmt_api_parameters},
    {"vhost-limits", M_GET, mgmt_api_vhost_limits},
    {"vhost-limits/*", M_GET, mgmt_api_vhost_limits},
    {"vhost-limits/*/*", M_PUT | M_DELETE, mgmt_api_vhost_limits},
    {"nodes", M_GET, mgmt_api_nodes},
    {"nodes/*", M_GET, mgmt_api_nodes},
    {"cluster-name", M_GET | M_PUT, mgmt_api_cluster_name},
    {"extensions", M_GET, mgmt_api_extensions},
    {"auth", M_GET, mgmt_api_auth},
    {"rebalance/queues", M_POST, mgmt_api_rebalance},
    {"vhosts/*/start/*", M_POST, mgmt_api_vhost_start},
    {"queues/*/*/actions", M_POST, mgmt_api_queue_actions},
};

static unsigned method_bit(const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
        return M_GET;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0)
        return M_PUT;
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return M_POST;
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
        return M_DELETE;
    return 0;
}

static bool route_matches(const char *pattern, const struct mgmt_call *c)
{
    size_t i = 0;
    const char *p = pattern;

    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (i >= c->nseg)
            return false;
        if (!(len == 1 && p[0] == '*') &&
            !(c->seg[i].len == len && memcmp(c->seg[i].ptr, p, len) == 0))
            return false;
        i++;
        p += len + (slash != NULL);
    }
    return i == c->nseg;
}

static enum MHD_Result dispatch(struct mgmt_call *c)
{
    unsigned bit = method_bit(c->method), allowed = 0;

    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        if (!route_matches(routes[i].pattern, c))
            continue;
        if (routes[i].methods & bit)
            return routes[i].handle(c);
        allowed |= routes[i].methods;
    }
    if (allowed != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        char allow[64] = "HEAD, OPTIONS";
        enum MHD_Result ok;
        if (allowed & M_GET)
            strcat(allow, ", GET");
        if (allowed & M_PUT)
            strcat(allow, ", PUT");
        if (allowed & M_POST)
            strcat(allow, ", POST");
        if (allowed & M_DELETE)
            strcat(allow, ", DELETE");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        ok = MHD_queue_response(c->conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ok;
    }
    return mgmt_not_found(c);
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Splits the raw path after "/api/" into percent-decoded segments, each in storage. False
 * when there are too many. */
static bool split_path(struct mgmt_call *c, const char *path, uint8_t *storage)
{
    size_t out = 0;

    c->nseg = 0;
    while (*path != '\0') {
        const char *end = strchr(path, '/');
        size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
        uint8_t *start = storage + out;

        if (c->nseg == MGMT_MAX_SEGMENTS)
            return false;
        for (size_t i = 0; i < len; i++) {
            int hi, lo;
            if (path[i] == '%' && i + 2 < len && (hi = hex_value(path[i + 1])) >= 0 &&
                (lo = hex_value(path[i + 2])) >= 0) {
                storage[out++] = (uint8_t)(hi * 16 + lo);
                i += 2;
            } else {
                storage[out++] = (uint8_t)path[i];
            }
        }
        c->seg[c->nseg++] =
            (struct wire_bytes){.ptr = start, .len = (size_t)(storage + out - start)};
        /* Each segment ends with a NUL (in the room of the '/' that ended it): a name handed
         * to the C library (regexec, even with REG_STARTEND) finds one. */
        storage[out++] = '\0';
        path += len;
        if (*path == '/') {
            path++;
            /* A trailing slash names no further object. */
            if (*path == '\0')
                break;
        }
    }
    return true;
}

/* ---- Authentication -------------------------------------------------------------------- */

static bool peer_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info != NULL ? info->client_addr : NULL;

    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* HTTP basic credentials (RFC 7617) as bytes: the header's base64 decoded into *decoded
 * (size bytes, the caller's to wipe and free; NULL without a header), the user before its
 * first colon, the password all that follows, whatever bytes it holds. A password is thus
 * compared whole, length included: one with a NUL or anything after the real password is a
 * wrong password, not a shorter right one. False without an Authorization header of the
 * Basic scheme, or with one that is not base64 or has no colon. */
static bool basic_credentials(struct MHD_Connection *conn, uint8_t **decoded, size_t *size,
                              struct wire_bytes *user, struct wire_bytes *pass)
{
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const uint8_t *colon;
    int n;

    *decoded = NULL;
    *size = 0;
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    h += 6;
    while (*h == ' ')
        h++;
    /* MHD's connection memory bounds the header, and so this. */
    *size = strlen(h) / 4 * 3 + 1;
    *decoded = xmalloc(*size);
    n = auth_base64_decode(h, *decoded, *size);
    if (n < 0 || (colon = memchr(*decoded, ':', (size_t)n)) == NULL)
        return false;
    *user = (struct wire_bytes){.ptr = *decoded, .len = (size_t)(colon - *decoded)};
    *pass = (struct wire_bytes){.ptr = colon + 1, .len = (size_t)(*decoded + n - colon - 1)};
    return true;
}

/* Checks the request's credentials against the user database, as RabbitMQ's management
 * plugin does: a known user, the right password, allowed from where the request comes
 * (loopback_users) and tagged for management. False after answering 401. */
static bool authenticate(struct mgmt_call *c, enum MHD_Result *answered)
{
    const struct config *cfg = c->m->srv->cfg;
    const struct auth_db *db = c->m->srv->auth;
    uint8_t *decoded;
    size_t decoded_size;
    struct wire_bytes user_bytes, pass;
    char user[sizeof c->user];
    const struct auth_user *u;
    const char *error = "not_authorised", *reason = NULL;
    struct MHD_Response *r;
    char body[200];

    if (!basic_credentials(c->conn, &decoded, &decoded_size, &user_bytes, &pass)) {
        if (decoded != NULL)
            OPENSSL_cleanse(decoded, decoded_size);
        free(decoded);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        *answered = MHD_queue_basic_auth_fail_response(c->conn, MGMT_REALM, r);
        MHD_destroy_response(r);
        return false;
    }
    /* Names are C strings from here on: one with a NUL, or too long to keep, is no user's. */
    snprintf(user, sizeof user, "%.*s", (int)user_bytes.len, (const char *)user_bytes.ptr);
    u = auth_user_find(db, user_bytes);
    if (memchr(user_bytes.ptr, '\0', user_bytes.len) != NULL || user_bytes.len >= sizeof user ||
        !auth_check_password(db, user_bytes, pass)) {
        error = "not_authorized";
        reason = "Login failed";
        log_warn(NULL, "management API: login refused for user '%s'", user);
    } else if (config_is_loopback_user(cfg, user) && !peer_is_loopback(c->conn)) {
        reason = "User can only log in via localhost";
    } else if (!auth_user_has_tag(u, "administrator") && !auth_user_has_tag(u, "monitoring") &&
               !auth_user_has_tag(u, "policymaker") && !auth_user_has_tag(u, "management")) {
        reason = "Not management user";
    } else {
        snprintf(c->user, sizeof c->user, "%s", user);
        c->admin = auth_user_has_tag(u, "administrator");
        c->monitor = c->admin || auth_user_has_tag(u, "monitoring");
        c->policymaker = c->admin || auth_user_has_tag(u, "policymaker");
    }
    OPENSSL_cleanse(decoded, decoded_size);
    free(decoded);
    if (reason == NULL)
        return true;
    snprintf(body, sizeof body, "{\"error\":\"%s\",\"reason\":\"%s\"}", error, reason);
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    *answered = MHD_queue_basic_auth_fail_response(c->conn, MGMT_REALM, r);
    MHD_destroy_response(r);
    return false;
}

/* ---- The request callbacks ------------------------------------------------------------- */

static enum MHD_Result serve_metrics(struct mgmt *m, struct MHD_Connection *conn, const char *url,
                                     const char *method)
{
    struct metrics_buf b = {0};
    struct mgmt_call c = {.m = m, .conn = conn, .method = method};
    bool per_object = false, detailed = false;

    if (strcmp(url, "/metrics") == 0)
        per_object = m->srv->cfg->prometheus_per_object;
    else if (strcmp(url, "/metrics/per-object") == 0)
        per_object = true;
    else if (strcmp(url, "/metrics/detailed") == 0)
        detailed = true;
    else
        return mgmt_respond(&c, MHD_HTTP_NOT_FOUND, xstrdup("Not Found\n"), 10, "text/plain");
    if (method_bit(method) != M_GET)
        return mgmt_respond(&c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0, NULL);
    if (m->metrics_size_hint > 0) {
        b.cap = m->metrics_size_hint + m->metrics_size_hint / 8;
        b.data = xmalloc(b.cap);
    }
    if (detailed) {
        mgmt_render_detailed(m, conn, &b);
    } else {
        metrics_render(&b, m->srv, &m->stats, per_object, m->ctx.node);
        m->metrics_size_hint = b.len;
    }
    /* The buffer goes to MHD, which frees it once sent. */
    return mgmt_respond(&c, MHD_HTTP_OK, b.data, b.len, "text/plain; version=0.0.4");
}

/* The largest body a request to h may have: the metrics endpoint and the UI's files take
 * none. */
static uint64_t body_max(const struct mgmt_http *h, const struct request *req)
{
    return h->metrics || req->ui ? 0 : MGMT_BODY_MAX;
}

static enum MHD_Result refuse_body(struct mgmt_http *h, struct request *req)
{
    char reason[256];

    http_body_reason(&h->limits, &req->body, body_max(h, req), reason, sizeof reason);
    if (req->body.refused == MHD_HTTP_CONTENT_TOO_LARGE)
        return mgmt_respond_error(&req->call, MHD_HTTP_CONTENT_TOO_LARGE, "bad_request", "%s",
                                  reason);
    log_warn(NULL, "%s: request body refused: %s", h->limits.what, reason);
    return mgmt_respond_error(&req->call, MHD_HTTP_SERVICE_UNAVAILABLE, "service_unavailable", "%s",
                              reason);
}

/* The first call of a request: its head has arrived, none of its body has been read. Every
 * refusal is decided here (an unknown path, credentials, a body too large for the request
 * or for the budget), so that a refused body is never read: an answer queued this early
 * makes MHD close the connection once it is sent, without reading on. */
static enum MHD_Result on_request_head(struct mgmt_http *h, struct MHD_Connection *conn,
                                       const char *url, const char *method, void **con_cls)
{
    struct request *req = xcalloc(1, sizeof *req);
    enum MHD_Result answered = MHD_NO;
    char reason[SERVER_URL_MAX + 64];

    *con_cls = req;
    req->call = (struct mgmt_call){.m = h->m, .conn = conn, .method = method};
    http_limits_head_received(conn);
    if (!h->metrics) {
        if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/api") != 0)
            req->ui = true;
        /* A follower that refuses clients answers its health checks only, before any login:
         * its user database may lag the leader's (src/broker/server.h). */
        if (!req->ui && strncmp(url, "/api/health/", 12) != 0 &&
            strncmp(url, "/api/cluster/", 13) != 0 &&
            server_refuses_clients(h->m->srv, true, reason, sizeof reason))
            return mgmt_respond_error(&req->call, MHD_HTTP_SERVICE_UNAVAILABLE, "not_leader", "%s",
                                      reason);
        /* How to log in is asked before logging in (RabbitMQ's is open too). */
        if (req->ui ? !mgmt_ui_accepts(conn, method, &answered)
                    : strcmp(url, "/api/auth") != 0 && !authenticate(&req->call, &answered))
            return answered;
    }
    if (http_body_begin(&h->limits, &req->body, conn, body_max(h, req)) != 0)
        return refuse_body(h, req);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct mgmt_http *h = cls;
    struct request *req = *con_cls;
    struct mgmt_call c;
    enum MHD_Result answered;
    uint8_t *storage;

    (void)version;
    if (req == NULL)
        return on_request_head(h, conn, url, method, con_cls);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (http_body_append(&h->limits, &req->body, upload_data, n, body_max(h, req)))
            return MHD_YES;
        log_warn(NULL, "%s: closing a connection whose refused request body goes on",
                 h->limits.what);
        return MHD_NO;
    }
    c = req->call;
    if (req->work != NULL) /* called back once its work is done */
        return mgmt_work_answer(req->work, &c);
    if (req->body.refused != 0)
        return refuse_body(h, req);
    if (h->metrics)
        return serve_metrics(h->m, conn, url, method);
    if (req->ui)
        return mgmt_ui_serve(h->m->srv->cfg, conn, url, method);
    c.body = req->body.data;
    c.body_len = req->body.len;
    c.work = &req->work;
    storage = xmalloc(strlen(url) + 1);
    if (!split_path(&c, url[4] == '/' ? url + 5 : url + 4, storage))
        answered = mgmt_not_found(&c);
    else
        answered = dispatch(&c);
    free(storage);
    return answered;
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    struct mgmt_http *h = cls;
    struct request *req = *con_cls;

    (void)toe;
    if (req != NULL) {
        mgmt_work_free(req->work);
        http_body_free(&h->limits, &req->body);
        free(req);
        *con_cls = NULL;
    }
    http_limits_request_done(conn);
}

/* The path as it came: segments are decoded one by one, so "%2F" (the vhost "/") cannot be
 * mistaken for a separator. */
static size_t keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's own messages (its format strings), into our log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn(NULL, "management HTTP: %s", line);
}

/* ---- Driving MHD from libev ------------------------------------------------------------ */

static void http_rearm(struct mgmt_http *h)
{
    struct ev_loop *loop = h->m->srv->loop;
    MHD_UNSIGNED_LONG_LONG ms;

    ev_timer_stop(loop, &h->timer);
    if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
        ev_timer_set(&h->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(loop, &h->timer);
    }
}

static void http_run(struct mgmt_http *h)
{
    MHD_run(h->daemon);
    http_rearm(h);
}

/* Connections were resumed (src/mgmt/mgmt_slice.h): without a thread of its own MHD only
 * sees them when it runs. Only the API suspends connections, never the metrics. */
static void run_api(void *ctx)
{
    struct mgmt *m = ctx;

    if (m->api.daemon != NULL)
        http_run(&m->api);
}

static void on_http_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    http_run(container_of(w, struct mgmt_http, io));
}

static void on_http_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    http_run(container_of(w, struct mgmt_http, timer));
}

/* A listening socket on ip:port. "::" also takes IPv4 (a dual-stack socket), and falls back
 * to 0.0.0.0 on a host without IPv6. Returns the socket, or -1 after logging why. */
static int listen_on(const char *what, const char *ip, uint16_t port, char *bound, size_t size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    char service[8];
    int fd, rc, one = 1, zero = 0;

    snprintf(service, sizeof service, "%u", port);
    rc = getaddrinfo(ip, service, &hints, &res);
    if (rc != 0) {
        log_error(NULL, "%s: cannot listen on '%s': %s", what, ip, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && errno == EAFNOSUPPORT && strcmp(ip, "::") == 0) {
        freeaddrinfo(res);
        return listen_on(what, "0.0.0.0", port, bound, size);
    }
    if (fd < 0) {
        log_error(NULL, "%s: socket: %s", what, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        log_error(NULL, "%s: cannot listen on %s port %u: %s", what, ip, port, strerror(errno));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    snprintf(bound, size, res->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
    freeaddrinfo(res);
    return fd;
}

static int http_start(struct mgmt *m, struct mgmt_http *h, const char *what, const char *ip,
                      uint16_t port, bool metrics, uint32_t request_timeout_ms)
{
    char bound[96];
    const union MHD_DaemonInfo *info;
    /* Long answers and imports suspend their connection between slices (mgmt_slice.h). */
    const unsigned suspendable_daemon_flags =
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    int fd;

    h->m = m;
    h->metrics = metrics;
    snprintf(h->ip, sizeof h->ip, "%s", ip);
    h->port = port;
    if ((fd = listen_on(what, ip, port, bound, sizeof bound)) < 0)
        return -1;
    http_limits_init(&h->limits, m->srv->loop, what, request_timeout_ms, MGMT_BODIES_MAX);
    /* No thread of MHD's own: the loop runs it (see mgmt.h). */
    h->daemon = MHD_start_daemon(
        suspendable_daemon_flags, port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
        on_request_done, h, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_CONNECTION,
        http_limits_on_connection, &h->limits, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(HTTP_LIMITS_CONNS + HTTP_LIMITS_SPARE), MHD_OPTION_END);
    if (h->daemon == NULL) {
        log_error(NULL, "%s: cannot start the HTTP server on %s", what, bound);
        close(fd);
        return -1;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    ev_io_init(&h->io, on_http_io, info->epoll_fd, EV_READ);
    ev_io_start(m->srv->loop, &h->io);
    ev_init(&h->timer, on_http_timer);
    http_rearm(h);
    log_info(NULL, "%s: listening on http://%s/", what, bound);
    return 0;
}

static void http_stop(struct mgmt *m, struct mgmt_http *h)
{
    if (h->daemon == NULL)
        return;
    ev_io_stop(m->srv->loop, &h->io);
    ev_timer_stop(m->srv->loop, &h->timer);
    MHD_stop_daemon(h->daemon);
    http_limits_stop(&h->limits);
    h->daemon = NULL;
}

int mgmt_start(struct server *s, struct mgmt **out)
{
    const struct config *cfg = s->cfg;
    struct mgmt *m = xcalloc(1, sizeof *m);
    char host[100];

    *out = m;
    m->srv = s;
    m->ctx.srv = s;
    m->ctx.stats = &m->stats;
    {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        m->started_ms = (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
    }
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    host[strcspn(host, ".")] = '\0';
    /* A cluster's nodes are named by their cluster.node_id (unique, where host names may
     * not be: several nodes on one machine). */
    if (s->cluster != NULL)
        snprintf(m->ctx.node, sizeof m->ctx.node, "warren@%s", cluster_node_id(s->cluster));
    else
        snprintf(m->ctx.node, sizeof m->ctx.node, "warren@%s", host);
    /* As RabbitMQ's load_definitions: at every start, before any client, or no start. */
    if (cfg->load_definitions[0] != '\0') {
        char err[1200];
        if (mgmt_defs_load_file(s, cfg->load_definitions, err, sizeof err) != 0) {
            log_error(NULL, "load_definitions: %s", err);
            return -1;
        }
    }
    mgmt_stats_init(&m->stats, s, MGMT_STATS_INTERVAL_S);
    mgmt_slices_init(&m->slices, s->loop, run_api, m);
    ev_timer_init(&m->reap_timer, mgmt_on_reap_vhosts, 0.1, 0.1);
    if (cfg->management_port != 0) {
        snprintf(m->ctx.http_ip, sizeof m->ctx.http_ip, "%s", cfg->management_ip);
        m->ctx.http_port = (uint16_t)cfg->management_port;
        if (http_start(m, &m->api, "management API", cfg->management_ip,
                       (uint16_t)cfg->management_port, false,
                       cfg->management_request_timeout_ms) != 0)
            return -1;
        mgmt_ui_announce(cfg);
    }
    if (cfg->prometheus_port != 0) {
        snprintf(m->ctx.prometheus_ip, sizeof m->ctx.prometheus_ip, "%s", cfg->prometheus_ip);
        m->ctx.prometheus_port = (uint16_t)cfg->prometheus_port;
        if (http_start(m, &m->prometheus, "Prometheus metrics", cfg->prometheus_ip,
                       (uint16_t)cfg->prometheus_port, true,
                       cfg->prometheus_request_timeout_ms) != 0)
            return -1;
    }
    return 0;
}

void mgmt_stop(struct mgmt *m)
{
    if (m == NULL)
        return;
    mgmt_slices_stop(&m->slices); /* MHD may not stop with connections suspended */
    http_stop(m, &m->api);
    http_stop(m, &m->prometheus);
    mgmt_stats_free(&m->stats);
    ev_timer_stop(m->srv->loop, &m->reap_timer);
    /* Deleted vhosts with connections still closing: those are dropped now (which releases
     * their channels at once) and stop pointing at the vhost, which then goes. */
    for (size_t i = 0; i < m->ndying; i++) {
        struct conn *k, *next;
        for (k = m->srv->conns; k != NULL; k = next) {
            next = k->next;
            if (k->vhost == m->dying[i]) {
                conn_abort(k);
                k->vhost = NULL;
            }
        }
        for (k = m->srv->dead; k != NULL; k = k->next) {
            if (k->vhost == m->dying[i])
                k->vhost = NULL;
        }
        vhost_free(m->dying[i]);
    }
    free(m->dying);
    free(m);
}
