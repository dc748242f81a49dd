/* The management HTTP API and the metrics endpoint: libmicrohttpd driven by the libev loop,
 * RabbitMQ's routes, JSON in and out. */
#include "build_config.h"

#include "src/mgmt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/auth.h"
#include "src/channel.h"
#include "src/config.h"
#include "src/conn.h"
#include "src/exchange.h"
#include "src/log.h"
#include "src/message.h"
#include "src/metrics.h"
#include "src/mgmt_defs.h"
#include "src/mgmt_json.h"
#include "src/mgmt_stats.h"
#include "src/ops.h"
#include "src/persist.h"
#include "src/policy.h"
#include "src/queue.h"
#include "src/server.h"
#include "src/util.h"
#include "src/vhost.h"

/* A request body is JSON: a definitions file of 10,000 queues is a few megabytes, a
 * published message as large as the API is meant for (testing) well under this. */
#define MGMT_BODY_MAX         (64u * 1024 * 1024)
#define MGMT_MAX_SEGMENTS     12                    /* /api/bindings/v/e/x/q/q/props has 8 */
#define MGMT_STATS_INTERVAL_S 5.0                   /* RabbitMQ's collect_statistics_interval */
#define MGMT_REALM            "RabbitMQ Management" /* clients show it in their login prompt */
#define MGMT_GET_MAX          10000                 /* messages one /get may take */

/* One HTTP listener: the daemon and the watchers that drive it from the loop. */
struct mgmt_http {
    struct mgmt *m;
    struct MHD_Daemon *daemon;
    ev_io io;       /* the daemon's epoll descriptor */
    ev_timer timer; /* MHD's own timeout (idle connections, pending data) */
    bool metrics;   /* the Prometheus listener */
    char ip[64];
    uint16_t port;
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
};

/* A request between MHD's calls: its body, as it arrives. */
struct request {
    char *body;
    size_t len, cap;
    bool too_large;
};

/* A request being answered. */
struct call {
    struct mgmt *m;
    struct MHD_Connection *conn;
    const char *method;
    struct wire_bytes seg[MGMT_MAX_SEGMENTS]; /* path segments after /api, decoded */
    size_t nseg;
    const char *body;
    size_t body_len;
    char user[512];
    bool admin;       /* tagged administrator: everything */
    bool policymaker; /* administrator or policymaker: sets policies */
    bool monitor;     /* administrator or monitoring: sees every vhost, connection, channel */
};

/* ---- Responses ------------------------------------------------------------------------- */

static enum MHD_Result respond(struct call *c, unsigned status, char *body, size_t len,
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

static enum MHD_Result respond_json(struct call *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

    json_decref(j);
    if (text == NULL)
        return MHD_NO;
    return respond(c, status, text, strlen(text), "application/json");
}

static enum MHD_Result respond_empty(struct call *c, unsigned status)
{
    return respond(c, status, NULL, 0, NULL);
}

/* {"error": error, "reason": reason}; reason is a string or a JSON value (RabbitMQ shows
 * some reasons as Erlang terms, e.g. ["not_boolean","yes"]). */
static enum MHD_Result respond_error_json(struct call *c, unsigned status, const char *error,
                                          json_t *reason)
{
    json_t *j = json_object();

    json_object_set_new(j, "error", json_string(error));
    json_object_set_new(j, "reason", reason);
    return respond_json(c, status, j);
}

static enum MHD_Result respond_error(struct call *c, unsigned status, const char *error,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result respond_error(struct call *c, unsigned status, const char *error,
                                     const char *fmt, ...)
{
    char reason[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return respond_error_json(c, status, error, mgmt_json_bytes(wire_cstr(reason)));
}

static enum MHD_Result not_found(struct call *c)
{
    return respond_error(c, MHD_HTTP_NOT_FOUND, "Object Not Found", "Not Found");
}

static enum MHD_Result bad_request(struct call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum MHD_Result bad_request(struct call *c, const char *fmt, ...)
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
static enum MHD_Result bad_request_term(struct call *c, const char *what, json_t *value)
{
    json_t *reason = json_array();

    json_array_append_new(reason, json_string(what));
    json_array_append_new(reason, value);
    return respond_error_json(c, MHD_HTTP_BAD_REQUEST, "bad_request", reason);
}

static enum MHD_Result access_refused(struct call *c)
{
    return respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Access refused.");
}

/* An error of a broker operation, answered as RabbitMQ's management API answers it: refusals
 * as 401, missing objects as 404, the rest as 400 with the reason. */
static enum MHD_Result respond_ops_error(struct call *c, const struct ops_error *err)
{
    if (err->code == WIRE_ACCESS_REFUSED)
        return access_refused(c);
    if (err->code == WIRE_NOT_FOUND)
        return respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "%s", err->text);
    return bad_request(c, "%s", err->text);
}

/* ---- Request helpers ------------------------------------------------------------------- */

static bool method_is(const struct call *c, const char *m)
{
    return strcmp(c->method, m) == 0 ||
           (strcmp(m, MHD_HTTP_METHOD_GET) == 0 && strcmp(c->method, MHD_HTTP_METHOD_HEAD) == 0);
}

/* A query parameter's value, or NULL. */
static const char *query(const struct call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool query_true(const struct call *c, const char *name)
{
    const char *v = query(c, name);
    return v != NULL && strcmp(v, "true") == 0;
}

/* The body as a JSON object; an empty body is an empty object. NULL after answering 400. */
static json_t *body_object(struct call *c, enum MHD_Result *answered)
{
    json_t *j;

    if (c->body_len == 0)
        return json_object();
    j = json_loadb(c->body, c->body_len, 0, NULL);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        *answered = bad_request(c, "not_json");
        return NULL;
    }
    return j;
}

/* A boolean field (true/false, or "true"/"false" as RabbitMQ also takes); def when absent.
 * -1 after answering 400. */
static int body_bool(struct call *c, const json_t *obj, const char *name, bool def, bool *out,
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
    *answered = bad_request_term(c, "not_boolean", json_deep_copy(v));
    return -1;
}

/* A string field; def when absent. NULL after answering 400. */
static const char *body_string(struct call *c, const json_t *obj, const char *name, const char *def,
                               size_t *len, enum MHD_Result *answered)
{
    const json_t *v = json_object_get(obj, name);

    if (v == NULL) {
        *len = def != NULL ? strlen(def) : 0;
        return def;
    }
    if (!json_is_string(v)) {
        *answered = bad_request(c, "%s must be a string", name);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* The "arguments" field encoded as table entries into *args (free it). -1 after answering. */
static int body_arguments(struct call *c, const json_t *obj, uint8_t **args, size_t *len,
                          enum MHD_Result *answered)
{
    const json_t *v = json_object_get(obj, "arguments");
    char err[256];

    /* RabbitMQ's own UI sends [] for no arguments. */
    if (v != NULL && json_is_array(v) && json_array_size(v) == 0)
        v = NULL;
    if (mgmt_json_to_table(v, args, len, err, sizeof err) != 0) {
        *answered = bad_request(c, "arguments: %s", err);
        return -1;
    }
    return 0;
}

static struct vhost *find_vhost(struct call *c, struct wire_bytes name)
{
    return server_vhost_find(c->m->srv, name);
}

/* "amq.default" in a URL names the default exchange, whose name is empty. */
static struct wire_bytes exchange_name(struct wire_bytes seg)
{
    return wire_bytes_eq_cstr(seg, "amq.default") ? WIRE_BYTES_C("") : seg;
}

/* Percent-encodes b into out (NUL-terminated, cut to fit); returns the length written. */
static size_t url_encode(struct wire_bytes b, char *out, size_t size)
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

static struct wire_bytes url_decode(const char *s, uint8_t *out, size_t size)
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

static int cmp_queue(const void *a, const void *b)
{
    const struct queue *x = *(struct queue *const *)a, *y = *(struct queue *const *)b;
    int r = bytes_cmp(x->vhost->name, y->vhost->name);
    return r != 0 ? r : bytes_cmp(x->name, y->name);
}

static int cmp_exchange(const void *a, const void *b)
{
    const struct exchange *x = *(struct exchange *const *)a, *y = *(struct exchange *const *)b;
    int r = bytes_cmp(x->vhost->name, y->vhost->name);
    return r != 0 ? r : bytes_cmp(x->name, y->name);
}

/* The vhosts in name order, or just one. The array is the caller's to free. */
static struct vhost **vhosts_sorted(struct server *s, struct vhost *only, size_t *n)
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
static void **map_sorted(const struct hmap *map, int (*cmp)(const void *, const void *), size_t *n)
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
 * the AMQP permissions a client would need for the same operation (src/auth.h). */

static enum MHD_Result not_admin(struct call *c)
{
    return respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Not administrator user");
}

static bool has_vhost_access(const struct call *c, struct wire_bytes vhost)
{
    return auth_vhost_access(c->m->srv->auth, wire_cstr(c->user), vhost);
}

/* Whether the user sees vh's exchanges, queues, bindings and consumers. */
static bool sees_objects_of(const struct call *c, const struct vhost *vh)
{
    return c->admin || has_vhost_access(c, vh->name);
}

static bool sees_conn(const struct call *c, const struct conn *k)
{
    return c->monitor || strcmp(k->log.user, c->user) == 0;
}

/* False after answering 401, for a vhost whose objects the user may not see. */
static bool may_see(struct call *c, const struct vhost *vh, enum MHD_Result *answered)
{
    if (sees_objects_of(c, vh))
        return true;
    *answered = respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                              "User not authorised to access virtual host");
    return false;
}

/* The AMQP permission check of op, for anyone, administrators included. False after
 * answering: 401 "Access refused.", or for what RabbitMQ does through a channel (publish,
 * get) 400 with the channel's 403 text. */
static bool permitted(struct call *c, const struct vhost *vh, enum auth_op op,
                      struct wire_bytes primary, struct wire_bytes secondary, bool via_channel,
                      enum MHD_Result *answered)
{
    char refusal[600];

    if (!has_vhost_access(c, vh->name)) {
        *answered = respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access virtual host");
        return false;
    }
    if (auth_check_op(c->m->srv->auth, wire_cstr(c->user), vh->name, op, primary, secondary,
                      refusal, sizeof refusal))
        return true;
    *answered =
        via_channel ? bad_request(c, "403 ACCESS_REFUSED - %s", refusal) : access_refused(c);
    return false;
}

/* ---- Overview, vhosts ------------------------------------------------------------------ */

static enum MHD_Result h_overview(struct call *c)
{
    return respond_json(c, MHD_HTTP_OK, mgmt_json_overview(&c->m->ctx));
}

static json_t *tags_json(char *const *tags, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(tags[i]));
    return arr;
}

static enum MHD_Result h_whoami(struct call *c)
{
    const struct auth_user *u = auth_user_find(c->m->srv->auth, wire_cstr(c->user));
    json_t *j = json_object();

    json_object_set_new(j, "name", json_string(c->user));
    json_object_set_new(j, "tags", u != NULL ? tags_json(u->tags, u->tags_len) : json_array());
    return respond_json(c, MHD_HTTP_OK, j);
}

/* Tags as the API takes them: "a,b" or ["a", "b"]. The strings are copied into *out (free
 * with free_tags). -1 after answering 400. */
static int body_tags(struct call *c, const json_t *v, char ***out, size_t *n,
                     enum MHD_Result *answered)
{
    *out = NULL;
    *n = 0;
    if (v == NULL)
        return 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *t;
        *out = xcalloc(json_array_size(v) + 1, sizeof **out);
        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t)) {
                *answered = bad_request(c, "tags must be strings");
                return -1;
            }
            if (json_string_length(t) > 0)
                (*out)[(*n)++] = xstrdup(json_string_value(t));
        }
        return 0;
    }
    if (!json_is_string(v)) {
        *answered = bad_request(c, "tags must be a string (\"a,b\") or an array of strings");
        return -1;
    }
    {
        const char *p = json_string_value(v);
        *out = xcalloc(strlen(p) / 2 + 2, sizeof **out);
        while (*p != '\0') {
            size_t len = strcspn(p, ",");
            const char *start = p;
            while (len > 0 && *start == ' ') {
                start++;
                len--;
            }
            while (len > 0 && start[len - 1] == ' ')
                len--;
            if (len > 0) {
                char *t = xmalloc(len + 1);
                memcpy(t, start, len);
                t[len] = '\0';
                (*out)[(*n)++] = t;
            }
            p += strcspn(p, ",");
            if (*p == ',')
                p++;
        }
    }
    return 0;
}

static void free_tags(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

static json_t *vhost_json(struct call *c, struct vhost *vh)
{
    json_t *o = mgmt_json_vhost(&c->m->ctx, vh);
    const struct auth_vhost *av = auth_vhost_find(c->m->srv->auth, vh->name);

    if (av != NULL) {
        json_t *meta = json_object();
        json_object_set_new(o, "description", json_string(av->description ? av->description : ""));
        json_object_set_new(o, "tags", tags_json(av->tags, av->tags_len));
        json_object_set_new(meta, "description",
                            json_string(av->description ? av->description : ""));
        json_object_set_new(meta, "tags", tags_json(av->tags, av->tags_len));
        json_object_set_new(o, "metadata", meta);
        json_object_set_new(
            o, "default_queue_type",
            json_string(av->default_queue_type ? av->default_queue_type : "undefined"));
    }
    return o;
}

static enum MHD_Result put_vhost(struct call *c, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(c, &answered);
    char **tags = NULL, *vname = NULL;
    size_t ntags = 0, dlen = 0, qlen = 0;
    const char *description, *queue_type;
    bool existed;

    if (body == NULL)
        return answered;
    if ((description = body_string(c, body, "description", "", &dlen, &answered)) == NULL ||
        (queue_type = body_string(c, body, "default_queue_type", "", &qlen, &answered)) == NULL ||
        body_tags(c, json_object_get(body, "tags"), &tags, &ntags, &answered) != 0)
        goto out;
    if (name.len == 0 || name.len > 255 || memchr(name.ptr, '\0', name.len) != NULL) {
        answered = bad_request(c, "a vhost name is 1 to 255 bytes, without NUL");
        goto out;
    }
    vname = xstrndup_bytes(name);
    existed = auth_vhost_find(c->m->srv->auth, name) != NULL;
    auth_vhost_put(c->m->srv->auth, vname, description, (const char *const *)tags, ntags,
                   qlen > 0 ? queue_type : NULL);
    /* As in RabbitMQ, whoever creates a vhost may use it. */
    if (!existed) {
        char err[AUTH_ERR_MAX];
        if (auth_permission_set(c->m->srv->auth, c->user, vname, ".*", ".*", ".*", err,
                                sizeof err) != 0)
            log_warn(NULL, "management API: vhost '%s': %s", vname, err);
    }
    server_vhost_add(c->m->srv, name);
    server_auth_changed(c->m->srv);
    if (!existed)
        log_info(NULL, "management API: user '%s' created vhost '%s'", c->user, vname);
    answered = respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    free(vname);
    free_tags(tags, ntags);
    json_decref(body);
    return answered;
}

/* Whether a connection (open, closing, or closed and not yet freed) points at vh. */
static bool vhost_in_use(const struct server *s, const struct vhost *vh)
{
    for (const struct conn *k = s->conns; k != NULL; k = k->next) {
        if (k->vhost == vh)
            return true;
    }
    for (const struct conn *k = s->dead; k != NULL; k = k->next) {
        if (k->vhost == vh)
            return true;
    }
    return false;
}

static void on_reap_vhosts(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mgmt *m = container_of(w, struct mgmt, reap_timer);
    size_t kept = 0;

    (void)revents;
    for (size_t i = 0; i < m->ndying; i++) {
        if (vhost_in_use(m->srv, m->dying[i]))
            m->dying[kept++] = m->dying[i];
        else
            vhost_free(m->dying[i]);
    }
    m->ndying = kept;
    if (kept == 0)
        ev_timer_stop(loop, w);
}

/* Deletes a vhost as RabbitMQ does: its clients get connection.close 320 "vhost 'v' is
 * deleted", it leaves the broker at once (no new client finds it), and its queues and
 * exchanges are freed once the last of those connections is gone, so no delivery still
 * points into them. Its permissions go with it. */
static enum MHD_Result delete_vhost(struct call *c, struct vhost *vh)
{
    struct mgmt *m = c->m;
    struct server *s = m->srv;
    char *vname = xstrndup_bytes(vh->name);
    char text[400];
    struct conn *k, *next;

    snprintf(text, sizeof text, "CONNECTION_FORCED - vhost '%s' is deleted", vname);
    for (k = s->conns; k != NULL; k = next) {
        next = k->next;
        if (k->vhost != vh)
            continue;
        if (k->state == CONN_OPEN || k->state == CONN_AWAIT_OPEN)
            conn_close_with(k, WIRE_CONNECTION_FORCED, text, 0);
        else if (k->state != CONN_CLOSING)
            conn_abort(k);
    }
    hmap_remove(&s->vhosts, vh->name);
    if (m->ndying == m->dying_cap) {
        m->dying_cap = m->dying_cap ? m->dying_cap * 2 : 4;
        m->dying = xrealloc(m->dying, m->dying_cap * sizeof *m->dying);
    }
    m->dying[m->ndying++] = vh;
    if (!ev_is_active(&m->reap_timer))
        ev_timer_start(s->loop, &m->reap_timer);
    auth_vhost_delete(s->auth, vname);
    server_auth_changed(s);
    log_info(NULL, "management API: user '%s' deleted vhost '%s'", c->user, vname);
    free(vname);
    return respond_empty(c, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result h_vhosts(struct call *c)
{
    size_t n;
    struct vhost **vhs;
    json_t *arr;

    if (c->nseg == 2) {
        struct vhost *vh = find_vhost(c, c->seg[1]);
        enum MHD_Result answered;
        if (method_is(c, MHD_HTTP_METHOD_PUT))
            return c->admin ? put_vhost(c, c->seg[1]) : not_admin(c);
        if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
            if (!c->admin)
                return not_admin(c);
            return vh != NULL ? delete_vhost(c, vh) : not_found(c);
        }
        if (vh == NULL)
            return not_found(c);
        if (!c->monitor && !may_see(c, vh, &answered))
            return answered;
        return respond_json(c, MHD_HTTP_OK, vhost_json(c, vh));
    }
    arr = json_array();
    vhs = vhosts_sorted(c->m->srv, NULL, &n);
    for (size_t i = 0; i < n; i++) {
        if (c->monitor || sees_objects_of(c, vhs[i]))
            json_array_append_new(arr, vhost_json(c, vhs[i]));
    }
    free(vhs);
    return respond_json(c, MHD_HTTP_OK, arr);
}

static enum MHD_Result h_aliveness(struct call *c)
{
    struct vhost *vh = find_vhost(c, c->seg[1]);
    enum MHD_Result answered;
    json_t *j;

    if (vh == NULL)
        return not_found(c);
    if (!may_see(c, vh, &answered))
        return answered;
    j = json_object();
    json_object_set_new(j, "status", json_string("ok"));
    return respond_json(c, MHD_HTTP_OK, j);
}

static enum MHD_Result h_alarms(struct call *c)
{
    json_t *j = json_object();

    json_object_set_new(j, "status", json_string("ok"));
    return respond_json(c, MHD_HTTP_OK, j);
}

/* ---- Users and permissions (administrators only) --------------------------------------- */

static json_t *user_json(const struct auth_user *u)
{
    json_t *o = json_object(), *limits = json_object();
    char hash[AUTH_HASH_MAX_BYTES * 2];

    auth_base64_encode(u->hash, u->hash_len, hash);
    json_object_set_new(o, "name", json_string(u->name));
    json_object_set_new(o, "password_hash", json_string(hash));
    json_object_set_new(o, "hashing_algorithm",
                        json_string(auth_hash_algorithm_name(u->algorithm)));
    json_object_set_new(o, "tags", tags_json(u->tags, u->tags_len));
    if (u->max_connections >= 0)
        json_object_set_new(limits, "max-connections", json_integer(u->max_connections));
    if (u->max_channels >= 0)
        json_object_set_new(limits, "max-channels", json_integer(u->max_channels));
    json_object_set_new(o, "limits", limits);
    return o;
}

static enum MHD_Result put_user(struct call *c, struct wire_bytes name)
{
    struct auth_db *db = c->m->srv->auth;
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(c, &answered);
    const json_t *password, *hash, *algorithm;
    char **tags = NULL, *uname = NULL, err[AUTH_ERR_MAX];
    size_t ntags = 0;
    bool existed;

    if (body == NULL)
        return answered;
    password = json_object_get(body, "password");
    hash = json_object_get(body, "password_hash");
    algorithm = json_object_get(body, "hashing_algorithm");
    if (body_tags(c, json_object_get(body, "tags"), &tags, &ntags, &answered) != 0)
        goto out;
    if ((password != NULL && !json_is_string(password)) ||
        (hash != NULL && !json_is_string(hash)) ||
        (algorithm != NULL && !json_is_string(algorithm))) {
        answered = bad_request(c, "password, password_hash and hashing_algorithm are strings");
        goto out;
    }
    if (password != NULL && hash != NULL) {
        answered = bad_request(c, "password and password_hash cannot both be set");
        goto out;
    }
    if (name.len == 0 || name.len > 255 || memchr(name.ptr, '\0', name.len) != NULL) {
        answered = bad_request(c, "a user name is 1 to 255 bytes, without NUL");
        goto out;
    }
    uname = xstrndup_bytes(name);
    existed = auth_user_find(db, name) != NULL;
    if (hash != NULL) {
        enum auth_hash_algorithm alg = AUTH_HASH_SHA256;
        if (algorithm != NULL &&
            auth_hash_algorithm_parse(json_string_value(algorithm), &alg) != 0) {
            answered =
                bad_request(c, "unknown hashing_algorithm '%s'", json_string_value(algorithm));
            goto out;
        }
        if (auth_user_put_hash(db, uname, json_string_value(hash), alg, err, sizeof err) != 0) {
            answered = bad_request(c, "%s", err);
            goto out;
        }
        auth_user_set_tags(db, uname, (const char *const *)tags, ntags);
    } else if (password != NULL || !existed) {
        /* A new user without a password cannot log in with one, as in RabbitMQ. */
        if (auth_user_put(db, uname, password ? json_string_value(password) : NULL,
                          (const char *const *)tags, ntags, err, sizeof err) != 0) {
            answered = bad_request(c, "%s", err);
            goto out;
        }
    } else {
        auth_user_set_tags(db, uname, (const char *const *)tags, ntags);
    }
    server_auth_changed(c->m->srv);
    log_info(NULL, "management API: user '%s' %s user '%s'", c->user,
             existed ? "updated" : "created", uname);
    answered = respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    free(uname);
    free_tags(tags, ntags);
    json_decref(body);
    return answered;
}

static void add_permission_json(json_t *arr, const struct auth_user *u,
                                const struct auth_permission *p)
{
    json_t *o = json_object();

    json_object_set_new(o, "user", json_string(u->name));
    json_object_set_new(o, "vhost", json_string(p->vhost));
    json_object_set_new(o, "configure", json_string(p->configure.source));
    json_object_set_new(o, "write", json_string(p->write.source));
    json_object_set_new(o, "read", json_string(p->read.source));
    json_array_append_new(arr, o);
}

static int cmp_permission(const void *a, const void *b)
{
    return strcmp((*(const struct auth_permission *const *)a)->vhost,
                  (*(const struct auth_permission *const *)b)->vhost);
}

/* Permissions of every user (only_user NULL) or one, in every vhost (only_vhost NULL) or
 * one; by user, then vhost. */
static json_t *permissions_json(const struct auth_db *db, const char *only_user,
                                const char *only_vhost)
{
    json_t *arr = json_array();
    size_t nu;
    const struct auth_user **users = auth_users_sorted(db, &nu);

    for (size_t i = 0; i < nu; i++) {
        size_t np;
        void **perms;
        if (only_user != NULL && strcmp(users[i]->name, only_user) != 0)
            continue;
        perms = map_sorted(&users[i]->permissions, cmp_permission, &np);
        for (size_t k = 0; k < np; k++) {
            const struct auth_permission *p = perms[k];
            if (only_vhost == NULL || strcmp(p->vhost, only_vhost) == 0)
                add_permission_json(arr, users[i], p);
        }
        free(perms);
    }
    free(users);
    return arr;
}

/* /api/users[/u[/permissions]] */
static enum MHD_Result h_users(struct call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_user *u;

    if (!c->admin)
        return not_admin(c);
    if (c->nseg == 1) {
        json_t *arr = json_array();
        size_t n;
        const struct auth_user **users = auth_users_sorted(db, &n);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, user_json(users[i]));
        free(users);
        return respond_json(c, MHD_HTTP_OK, arr);
    }
    if (method_is(c, MHD_HTTP_METHOD_PUT))
        return put_user(c, c->seg[1]);
    if ((u = auth_user_find(db, c->seg[1])) == NULL)
        return not_found(c);
    if (c->nseg == 3)
        return respond_json(c, MHD_HTTP_OK, permissions_json(db, u->name, NULL));
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        char *uname = xstrdup(u->name);
        auth_user_delete(db, uname);
        server_auth_changed(c->m->srv);
        log_info(NULL, "management API: user '%s' deleted user '%s'", c->user, uname);
        free(uname);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return respond_json(c, MHD_HTTP_OK, user_json(u));
}

/* /api/vhosts/v/permissions */
static enum MHD_Result h_vhost_permissions(struct call *c)
{
    struct vhost *vh = find_vhost(c, c->seg[1]);
    char *vname;
    json_t *arr;

    if (!c->admin)
        return not_admin(c);
    if (vh == NULL)
        return not_found(c);
    vname = xstrndup_bytes(vh->name);
    arr = permissions_json(c->m->srv->auth, NULL, vname);
    free(vname);
    return respond_json(c, MHD_HTTP_OK, arr);
}

/* /api/permissions[/v/u] */
static enum MHD_Result h_permissions(struct call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_permission *p;
    const struct auth_user *u;

    if (!c->admin)
        return not_admin(c);
    if (c->nseg == 1)
        return respond_json(c, MHD_HTTP_OK, permissions_json(db, NULL, NULL));
    if (find_vhost(c, c->seg[1]) == NULL || (u = auth_user_find(db, c->seg[2])) == NULL)
        return method_is(c, MHD_HTTP_METHOD_PUT) ? bad_request(c, "vhost_or_user_not_found")
                                                 : not_found(c);
    p = auth_permission_find(db, c->seg[2], c->seg[1]);
    if (method_is(c, MHD_HTTP_METHOD_PUT)) {
        enum MHD_Result answered = MHD_NO;
        json_t *body = body_object(c, &answered);
        const char *conf, *write, *read;
        char err[AUTH_ERR_MAX], *vname;
        bool existed = p != NULL;
        int rc;

        if (body == NULL)
            return answered;
        conf = json_string_value(json_object_get(body, "configure"));
        write = json_string_value(json_object_get(body, "write"));
        read = json_string_value(json_object_get(body, "read"));
        if (conf == NULL || write == NULL || read == NULL) {
            json_decref(body);
            return bad_request(c, "configure, write and read are required strings");
        }
        vname = xstrndup_bytes(c->seg[1]);
        rc = auth_permission_set(db, u->name, vname, conf, write, read, err, sizeof err);
        free(vname);
        json_decref(body);
        if (rc != 0)
            return bad_request(c, "%s", err);
        server_auth_changed(c->m->srv);
        return respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
    }
    if (p == NULL)
        return not_found(c);
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        char *vname = xstrndup_bytes(c->seg[1]);
        auth_permission_clear(db, u->name, vname);
        free(vname);
        server_auth_changed(c->m->srv);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    {
        json_t *arr = json_array(), *one;
        add_permission_json(arr, u, p);
        one = json_incref(json_array_get(arr, 0));
        json_decref(arr);
        return respond_json(c, MHD_HTTP_OK, one);
    }
}

/* ---- Exchanges ------------------------------------------------------------------------- */

/* The exchanges (or queues) of the vhosts the user sees, by vhost then name, in one array
 * the caller frees. */
static void **collect_objects(struct call *c, struct vhost *only, bool queues, size_t *n)
{
    size_t nv, cap = 0;
    struct vhost **vhs = vhosts_sorted(c->m->srv, only, &nv);
    void **all;

    for (size_t i = 0; i < nv; i++)
        cap += queues ? vhs[i]->queues.len : vhs[i]->exchanges.len;
    all = xmalloc((cap + 1) * sizeof *all);
    *n = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t k;
        void **objs;
        if (!sees_objects_of(c, vhs[i]))
            continue;
        objs = queues ? map_sorted(&vhs[i]->queues, cmp_queue, &k)
                      : map_sorted(&vhs[i]->exchanges, cmp_exchange, &k);
        memcpy(all + *n, objs, k * sizeof *objs);
        *n += k;
        free(objs);
    }
    free(vhs);
    return all;
}

/* Case-insensitive search for needle in name, as RabbitMQ's name filter matches. */
static bool name_contains(struct wire_bytes name, const char *needle)
{
    size_t len = strlen(needle);

    if (len == 0)
        return true;
    for (size_t i = 0; i + len <= name.len; i++) {
        size_t k = 0;
        while (k < len && tolower(name.ptr[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == len)
            return true;
    }
    return false;
}

/* Lists objects, whole, or (with ?page=) one page of those whose name contains ?name=, in
 * RabbitMQ's paged shape. Only the objects of the page are rendered: a page of 100 out of
 * 10,000 queues costs a hundred queues' JSON. */
static enum MHD_Result list_objects(struct call *c, struct vhost *only, bool queues)
{
    const char *page_arg = query(c, "page"), *size_arg = query(c, "page_size");
    const char *filter = query(c, "name");
    size_t n, kept = 0;
    void **objs = collect_objects(c, only, queues, &n);
    long page = 1, size = 100;
    char *end;
    json_t *items = json_array(), *paged;

    if (page_arg == NULL) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(items, queues ? mgmt_json_queue(&c->m->ctx, objs[i], false)
                                                : mgmt_json_exchange(&c->m->ctx, objs[i]));
        free(objs);
        return respond_json(c, MHD_HTTP_OK, items);
    }
    page = strtol(page_arg, &end, 10);
    if (*page_arg == '\0' || *end != '\0' ||
        (size_arg != NULL &&
         ((size = strtol(size_arg, &end, 10)), *size_arg == '\0' || *end != '\0'))) {
        free(objs);
        json_decref(items);
        return bad_request(c, "Pagination parameters are invalid");
    }
    if (page < 1 || size < 1 || size > 500) {
        free(objs);
        json_decref(items);
        return respond_error(c, MHD_HTTP_BAD_REQUEST, "invalid_pagination_parameters",
                             "Invalid pagination parameters: page number %ld, page size %s", page,
                             size_arg != NULL ? size_arg : "undefined");
    }
    for (size_t i = 0; i < n; i++) {
        struct wire_bytes name =
            queues ? ((struct queue *)objs[i])->name : ((struct exchange *)objs[i])->name;
        if (filter == NULL || name_contains(name, filter))
            objs[kept++] = objs[i];
    }
    if (kept > 0 && (size_t)(page - 1) * (size_t)size >= kept) {
        free(objs);
        json_decref(items);
        return respond_error(c, MHD_HTTP_BAD_REQUEST, "page_out_of_range",
                             "Page out of range, page: %ld page size: %ld, len: %zu", page, size,
                             kept);
    }
    for (size_t i = (size_t)(page - 1) * (size_t)size; i < kept && i < (size_t)(page * size); i++)
        json_array_append_new(items, queues ? mgmt_json_queue(&c->m->ctx, objs[i], false)
                                            : mgmt_json_exchange(&c->m->ctx, objs[i]));
    paged = json_object();
    json_object_set_new(paged, "filtered_count", json_integer((json_int_t)kept));
    json_object_set_new(paged, "item_count", json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(paged, "items", items);
    json_object_set_new(paged, "page", json_integer(page));
    json_object_set_new(paged, "page_count",
                        json_integer((json_int_t)((kept + (size_t)size - 1) / (size_t)size)));
    json_object_set_new(paged, "page_size", json_integer(size));
    json_object_set_new(paged, "total_count", json_integer((json_int_t)n));
    free(objs);
    return respond_json(c, MHD_HTTP_OK, paged);
}

static enum MHD_Result list_exchanges(struct call *c, struct vhost *only)
{
    return list_objects(c, only, false);
}

static enum MHD_Result put_exchange(struct call *c, struct vhost *vh, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(c, &answered);
    bool durable, auto_delete, internal, created;
    const char *type;
    size_t type_len, args_len = 0;
    uint8_t *args = NULL;
    struct ops_error err;

    if (body == NULL)
        return answered;
    if ((type = body_string(c, body, "type", "direct", &type_len, &answered)) == NULL ||
        body_bool(c, body, "durable", true, &durable, &answered) != 0 ||
        body_bool(c, body, "auto_delete", false, &auto_delete, &answered) != 0 ||
        body_bool(c, body, "internal", false, &internal, &answered) != 0 ||
        body_arguments(c, body, &args, &args_len, &answered) != 0)
        goto out;
    {
        struct wire_field ae;
        bool has_ae = wire_table_find((struct wire_table){.raw = {args, args_len}},
                                      "alternate-exchange", &ae) &&
                      ae.type == 'S';
        /* The name is copied out of the table: permission checks want a C string. */
        char *ae_name = has_ae ? xstrndup_bytes(ae.v.bytes) : NULL;
        bool ok = permitted(c, vh, has_ae ? AUTH_OP_EXCHANGE_DECLARE_AE : AUTH_OP_EXCHANGE_DECLARE,
                            name, has_ae ? wire_cstr(ae_name) : WIRE_BYTES_C(""), false, &answered);
        free(ae_name);
        if (!ok)
            goto out;
    }
    if (ops_exchange_declare(vh, name, (struct wire_bytes){(const uint8_t *)type, type_len}, false,
                             durable, auto_delete, internal, (struct wire_bytes){args, args_len},
                             &created, &err) != 0) {
        answered = respond_ops_error(c, &err);
        goto out;
    }
    answered = respond_empty(c, created ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
out:
    free(args);
    json_decref(body);
    return answered;
}

static enum MHD_Result h_exchanges(struct call *c)
{
    struct vhost *vh = NULL;
    struct wire_bytes name;
    struct exchange *x;
    struct ops_error err;
    enum MHD_Result answered;

    if (c->nseg >= 2 && (vh = find_vhost(c, c->seg[1])) == NULL) {
        if (method_is(c, MHD_HTTP_METHOD_PUT))
            return respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "vhost_not_found");
        return not_found(c);
    }
    if (vh != NULL && !may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2)
        return list_exchanges(c, vh);
    name = exchange_name(c->seg[2]);
    if (method_is(c, MHD_HTTP_METHOD_PUT))
        return put_exchange(c, vh, name);
    x = vhost_exchange_find(vh, name);
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (name.len == 0 || exchange_name_is_reserved(name))
            return access_refused(c);
        if (x == NULL)
            return not_found(c);
        if (!permitted(c, vh, AUTH_OP_EXCHANGE_DELETE, name, WIRE_BYTES_C(""), false, &answered))
            return answered;
        if (ops_exchange_delete(vh, name, query_true(c, "if-unused"), true, &err) != 0)
            return respond_ops_error(c, &err);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if (x == NULL)
        return not_found(c);
    {
        json_t *j = mgmt_json_exchange(&c->m->ctx, x);
        json_object_set_new(j, "incoming", json_array());
        json_object_set_new(j, "outgoing", json_array());
        return respond_json(c, MHD_HTTP_OK, j);
    }
}

/* GET /api/exchanges/v/x/bindings/source|destination */
static enum MHD_Result h_exchange_bindings(struct call *c)
{
    struct vhost *vh = find_vhost(c, c->seg[1]);
    struct exchange *x = vh != NULL ? vhost_exchange_find(vh, exchange_name(c->seg[2])) : NULL;
    enum MHD_Result answered;
    json_t *arr;

    if (x == NULL)
        return not_found(c);
    if (!may_see(c, vh, &answered))
        return answered;
    arr = json_array();
    if (wire_bytes_eq_cstr(c->seg[4], "source")) {
        if (x == vh->default_exchange) {
            size_t n;
            void **qs = map_sorted(&vh->queues, cmp_queue, &n);
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, mgmt_json_default_binding(qs[i]));
            free(qs);
        }
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source)
            json_array_append_new(arr, mgmt_json_binding(xb));
    } else {
        for (const struct xbinding *xb = x->incoming; xb != NULL; xb = xb->next_in_dest)
            json_array_append_new(arr, mgmt_json_binding(xb));
    }
    return respond_json(c, MHD_HTTP_OK, arr);
}

/* Decodes "payload" with "payload_encoding" into *body (malloc'd). -1 after answering. */
static int decode_payload(struct call *c, const json_t *obj, uint8_t **body, size_t *len,
                          enum MHD_Result *answered)
{
    const json_t *payload = json_object_get(obj, "payload");
    const json_t *encoding = json_object_get(obj, "payload_encoding");
    const char *enc;

    if (payload == NULL || encoding == NULL || !json_is_string(payload) ||
        !json_is_string(encoding)) {
        *answered = bad_request(c, "payload and payload_encoding must be strings");
        return -1;
    }
    enc = json_string_value(encoding);
    if (strcmp(enc, "string") == 0) {
        *len = json_string_length(payload);
        *body = xmalloc(*len + 1);
        memcpy(*body, json_string_value(payload), *len);
        return 0;
    }
    if (strcmp(enc, "base64") == 0) {
        const char *text = json_string_value(payload);
        size_t tlen = json_string_length(payload);
        *body = xmalloc(tlen / 4 * 3 + 3);
        if (mgmt_base64_decode(text, tlen, *body, len) != 0) {
            free(*body);
            *body = NULL;
            *answered = bad_request_term(c, "not_base64", json_string(text));
            return -1;
        }
        return 0;
    }
    *answered = bad_request_term(c, "unsupported_encoding", json_string(enc));
    return -1;
}

/* POST /api/exchanges/v/x/publish */
static enum MHD_Result h_publish(struct call *c)
{
    enum MHD_Result answered = MHD_NO;
    struct vhost *vh = find_vhost(c, c->seg[1]);
    json_t *body, *j;
    const char *rk;
    size_t rk_len, body_len = 0;
    uint8_t *payload = NULL, *headers = NULL;
    struct wire_props props;
    char why[256];
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    uint32_t routed;
    bool refused;

    if (vh == NULL)
        return not_found(c);
    if ((body = body_object(c, &answered)) == NULL)
        return answered;
    if ((rk = body_string(c, body, "routing_key", NULL, &rk_len, &answered)) == NULL) {
        if (json_object_get(body, "routing_key") == NULL)
            answered = bad_request(c, "routing_key is missing");
        goto out;
    }
    if (rk_len > 255) {
        answered = bad_request(c, "routing_key is longer than 255 bytes");
        goto out;
    }
    if (decode_payload(c, body, &payload, &body_len, &answered) != 0)
        goto out;
    if (mgmt_json_to_props(json_object_get(body, "properties"), &props, &headers, why,
                           sizeof why) != 0) {
        answered = bad_request(c, "%s", why);
        goto out;
    }
    if (!permitted(c, vh, AUTH_OP_BASIC_PUBLISH, exchange_name(c->seg[2]), WIRE_BYTES_C(""), true,
                   &answered))
        goto out;
    {
        /* Topic permissions, as basic.publish checks them. */
        struct exchange *x = vhost_exchange_find(vh, exchange_name(c->seg[2]));
        struct wire_bytes key = {(const uint8_t *)rk, rk_len};
        if (x != NULL && strcmp(x->type->name, "topic") == 0 &&
            !auth_topic_permitted(c->m->srv->auth, wire_cstr(c->user), vh->name, x->name,
                                  AUTH_WRITE, key, NULL)) {
            char text[700];
            auth_topic_refusal_text(text, sizeof text, key, x->name, vh->name, wire_cstr(c->user));
            answered = bad_request(c, "403 ACCESS_REFUSED - %s", text);
            goto out;
        }
    }
    if (ops_publish(c->m->srv, vh, &actor, exchange_name(c->seg[2]),
                    (struct wire_bytes){(const uint8_t *)rk, rk_len}, &props,
                    (struct wire_bytes){payload, body_len}, &routed, &refused, &err) != 0) {
        char text[600];
        /* RabbitMQ publishes through a channel here, so its errors carry their code. */
        ops_error_format(&err, true, text, sizeof text);
        answered = bad_request(c, "%s", text);
        goto out;
    }
    j = json_object();
    json_object_set_new(j, "routed", json_boolean(routed > 0));
    answered = respond_json(c, MHD_HTTP_OK, j);
out:
    free(payload);
    free(headers);
    json_decref(body);
    return answered;
}

/* ---- Queues ---------------------------------------------------------------------------- */

static enum MHD_Result list_queues(struct call *c, struct vhost *only)
{
    return list_objects(c, only, true);
}

static enum MHD_Result put_queue(struct call *c, struct vhost *vh, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(c, &answered);
    bool durable, auto_delete, exclusive, created;
    size_t args_len = 0;
    uint8_t *args = NULL;
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    struct queue *q;

    if (body == NULL)
        return answered;
    if (body_bool(c, body, "durable", false, &durable, &answered) != 0 ||
        body_bool(c, body, "auto_delete", false, &auto_delete, &answered) != 0 ||
        body_bool(c, body, "exclusive", false, &exclusive, &answered) != 0 ||
        body_arguments(c, body, &args, &args_len, &answered) != 0)
        goto out;
    /* An exclusive queue belongs to the connection that declared it; a request has none. */
    if (exclusive) {
        answered = bad_request(c, "exclusive queues can only be declared over AMQP, by the "
                                  "connection that will own them");
        goto out;
    }
    {
        struct wire_field dlx;
        bool has_dlx = wire_table_find((struct wire_table){.raw = {args, args_len}},
                                       "x-dead-letter-exchange", &dlx) &&
                       dlx.type == 'S';
        char *dlx_name = has_dlx ? xstrndup_bytes(dlx.v.bytes) : NULL;
        bool ok =
            permitted(c, vh, has_dlx ? AUTH_OP_QUEUE_DECLARE_DLX : AUTH_OP_QUEUE_DECLARE, name,
                      has_dlx ? wire_cstr(dlx_name) : WIRE_BYTES_C(""), false, &answered);
        free(dlx_name);
        if (!ok)
            goto out;
    }
    if (ops_queue_declare(vh, &actor, name, false, durable, false, auto_delete,
                          (struct wire_bytes){args, args_len}, &q, &created, &err) != 0) {
        answered = respond_ops_error(c, &err);
        goto out;
    }
    answered = respond_empty(c, created ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
out:
    free(args);
    json_decref(body);
    return answered;
}

static enum MHD_Result h_queues(struct call *c)
{
    struct vhost *vh = NULL;
    struct queue *q;
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    enum MHD_Result answered;

    if (c->nseg >= 2 && (vh = find_vhost(c, c->seg[1])) == NULL) {
        if (method_is(c, MHD_HTTP_METHOD_PUT))
            return respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "vhost_not_found");
        return not_found(c);
    }
    if (vh != NULL && !may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2)
        return list_queues(c, vh);
    if (method_is(c, MHD_HTTP_METHOD_PUT))
        return put_queue(c, vh, c->seg[2]);
    q = vhost_queue_find(vh, c->seg[2]);
    if (q == NULL)
        return not_found(c);
    if (c->nseg == 4) { /* DELETE .../contents */
        if (!permitted(c, vh, AUTH_OP_QUEUE_PURGE, q->name, WIRE_BYTES_C(""), false, &answered))
            return answered;
        if (ops_queue_purge(vh, &actor, c->seg[2], NULL, &err) != 0)
            return respond_ops_error(c, &err);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (!permitted(c, vh, AUTH_OP_QUEUE_DELETE, q->name, WIRE_BYTES_C(""), false, &answered))
            return answered;
        if (ops_queue_delete(vh, &actor, c->seg[2], query_true(c, "if-unused"),
                             query_true(c, "if-empty"), true, NULL, &err) != 0)
            return respond_ops_error(c, &err);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return respond_json(c, MHD_HTTP_OK, mgmt_json_queue(&c->m->ctx, q, true));
}

/* GET /api/queues/v/q/bindings */
static enum MHD_Result h_queue_bindings(struct call *c)
{
    struct vhost *vh = find_vhost(c, c->seg[1]);
    struct queue *q = vh != NULL ? vhost_queue_find(vh, c->seg[2]) : NULL;
    enum MHD_Result answered;
    json_t *arr;

    if (q == NULL)
        return not_found(c);
    if (!may_see(c, vh, &answered))
        return answered;
    arr = json_array();
    json_array_append_new(arr, mgmt_json_default_binding(q));
    for (const struct xbinding *xb = q->bindings; xb != NULL; xb = xb->next_in_dest)
        json_array_append_new(arr, mgmt_json_binding(xb));
    return respond_json(c, MHD_HTTP_OK, arr);
}

enum ackmode { ACK_REQUEUE, ACK_DROP, REJECT_REQUEUE, REJECT_DROP };

/* One message of a /get, as RabbitMQ shows it. */
static json_t *got_message(const struct qentry *e, uint32_t remaining, bool base64, long truncate)
{
    const struct message *m = e->msg;
    json_t *o = json_object();
    size_t shown = m->body_size;
    struct wire_bytes body;

    if (truncate >= 0 && (uint64_t)truncate < shown)
        shown = (size_t)truncate;
    body = (struct wire_bytes){.ptr = m->body, .len = shown};
    json_object_set_new(o, "payload_bytes", json_integer((json_int_t)m->body_size));
    json_object_set_new(o, "redelivered", json_boolean(e->redelivered));
    json_object_set_new(o, "exchange", mgmt_json_bytes(m->exchange));
    json_object_set_new(o, "routing_key", mgmt_json_bytes(m->routing_key));
    json_object_set_new(o, "message_count", json_integer(remaining));
    json_object_set_new(o, "properties", mgmt_json_from_props(&m->props));
    /* "auto" shows the body as a string when it is UTF-8, else as base64. */
    if (!base64) {
        json_t *s = json_stringn((const char *)body.ptr, body.len);
        if (s != NULL) {
            json_object_set_new(o, "payload", s);
            json_object_set_new(o, "payload_encoding", json_string("string"));
            return o;
        }
    }
    {
        char *text = xmalloc(body.len / 3 * 4 + 8);
        mgmt_base64_encode(body.ptr, body.len, text);
        json_object_set_new(o, "payload", json_string(text));
        json_object_set_new(o, "payload_encoding", json_string("base64"));
        free(text);
    }
    return o;
}

/* POST /api/queues/v/q/get: takes up to count messages, then acks, requeues or rejects them
 * all, as RabbitMQ does (so a requeueing get never shows one message twice). */
static enum MHD_Result h_get(struct call *c)
{
    enum MHD_Result answered = MHD_NO;
    struct vhost *vh = find_vhost(c, c->seg[1]);
    struct ops_actor actor = {.user = c->user};
    struct ops_error err;
    json_t *body, *arr, *v;
    const char *mode, *enc;
    enum ackmode ackmode;
    json_int_t count;
    long truncate = -1;
    struct queue *q;
    struct qentry *taken = NULL;
    size_t ntaken = 0;

    if (vh == NULL)
        return not_found(c);
    if ((body = body_object(c, &answered)) == NULL)
        return answered;
    v = json_object_get(body, "count");
    mode = json_string_value(json_object_get(body, "ackmode"));
    enc = json_string_value(json_object_get(body, "encoding"));
    if (v == NULL || mode == NULL || enc == NULL) {
        answered = bad_request(c, "count, ackmode and encoding are required");
        goto out;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MGMT_GET_MAX) {
        answered = bad_request(c, "count must be an integer from 1 to %d", MGMT_GET_MAX);
        goto out;
    }
    count = json_integer_value(v);
    if (strcmp(mode, "ack_requeue_true") == 0)
        ackmode = ACK_REQUEUE;
    else if (strcmp(mode, "ack_requeue_false") == 0)
        ackmode = ACK_DROP;
    else if (strcmp(mode, "reject_requeue_true") == 0)
        ackmode = REJECT_REQUEUE;
    else if (strcmp(mode, "reject_requeue_false") == 0)
        ackmode = REJECT_DROP;
    else {
        answered = bad_request(c, "ackmode must be ack_requeue_true, ack_requeue_false, "
                                  "reject_requeue_true or reject_requeue_false");
        goto out;
    }
    if (strcmp(enc, "auto") != 0 && strcmp(enc, "base64") != 0) {
        answered = bad_request(c, "Unsupported encoding. Please use auto or base64.");
        goto out;
    }
    if ((v = json_object_get(body, "truncate")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            answered = bad_request(c, "truncate must be a non-negative integer");
            goto out;
        }
        truncate = json_integer_value(v) > 0x7fffffff ? 0x7fffffff : (long)json_integer_value(v);
    }
    if (!permitted(c, vh, AUTH_OP_BASIC_GET, c->seg[2], WIRE_BYTES_C(""), true, &answered))
        goto out;
    if ((q = ops_queue_find(vh, &actor, c->seg[2], &err)) == NULL) {
        char text[600];
        ops_error_format(&err, false, text, sizeof text);
        answered =
            respond_error(c, err.code == WIRE_NOT_FOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST,
                          err.code == WIRE_NOT_FOUND ? "not_found" : "bad_request", "%s", text);
        goto out;
    }
    queue_ref(q);
    queue_touch(q);
    taken = xmalloc((size_t)count * sizeof *taken);
    arr = json_array();
    while (ntaken < (size_t)count && queue_pop(q, &taken[ntaken])) {
        json_array_append_new(arr, got_message(&taken[ntaken], queue_ready_count(q),
                                               strcmp(enc, "base64") == 0, truncate));
        ntaken++;
    }
    /* As a basic.get with an ack, a reject or a nack after it would (src/channel.c). */
    for (size_t i = 0; i < ntaken; i++) {
        struct qentry *e = &taken[i];
        if (ackmode == ACK_DROP) {
            persist_left(q, e->msg);
            message_unref(e->msg);
            continue;
        }
        if (e->deliveries == 0 && !e->redelivered)
            persist_delivered(q, e->msg);
        if (ackmode == REJECT_DROP)
            queue_reject(q, e->msg);
        else
            queue_requeue(q, e->msg, e->seq, e->deliveries + 1);
    }
    if (ntaken > 0)
        queue_dispatch(q);
    queue_unref(q);
    free(taken);
    answered = respond_json(c, MHD_HTTP_OK, arr);
out:
    json_decref(body);
    return answered;
}

/* ---- Bindings -------------------------------------------------------------------------- */

static void add_bindings_of(json_t *arr, struct vhost *vh)
{
    size_t nq, nx;
    void **qs = map_sorted(&vh->queues, cmp_queue, &nq);
    void **xs = map_sorted(&vh->exchanges, cmp_exchange, &nx);

    for (size_t i = 0; i < nq; i++)
        json_array_append_new(arr, mgmt_json_default_binding(qs[i]));
    for (size_t i = 0; i < nx; i++) {
        const struct exchange *x = xs[i];
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source)
            json_array_append_new(arr, mgmt_json_binding(xb));
    }
    free(qs);
    free(xs);
}

/* The bindings from source to the queue or exchange dest, with their properties keys. */
static json_t *bindings_between(struct vhost *vh, struct exchange *src, void *dest)
{
    json_t *arr = json_array();

    if (src == vh->default_exchange && destination_kind(dest) == DEST_QUEUE) {
        json_array_append_new(arr, mgmt_json_default_binding(dest));
        return arr;
    }
    for (const struct xbinding *xb = src->bindings; xb != NULL; xb = xb->next_in_source) {
        if (xb->b.destination == dest)
            json_array_append_new(arr, mgmt_json_binding(xb));
    }
    return arr;
}

/* /api/bindings[/v[/e/x/(q|e)/d[/props]]] */
static enum MHD_Result h_bindings(struct call *c)
{
    struct vhost *vh = NULL;
    struct exchange *src;
    void *dest;
    bool to_exchange;
    json_t *arr;
    enum MHD_Result denied;

    if (c->nseg >= 2 && (vh = find_vhost(c, c->seg[1])) == NULL)
        return not_found(c);
    if (vh != NULL && !may_see(c, vh, &denied))
        return denied;
    if (c->nseg <= 2) {
        size_t n;
        struct vhost **vhs = vhosts_sorted(c->m->srv, vh, &n);
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
            if (sees_objects_of(c, vhs[i]))
                add_bindings_of(arr, vhs[i]);
        }
        free(vhs);
        return respond_json(c, MHD_HTTP_OK, arr);
    }
    to_exchange = wire_bytes_eq_cstr(c->seg[4], "e");
    if (!wire_bytes_eq_cstr(c->seg[2], "e") ||
        (!to_exchange && !wire_bytes_eq_cstr(c->seg[4], "q")))
        return not_found(c);
    src = vhost_exchange_find(vh, exchange_name(c->seg[3]));
    dest = to_exchange ? (void *)vhost_exchange_find(vh, exchange_name(c->seg[5]))
                       : (void *)vhost_queue_find(vh, c->seg[5]);
    if (method_is(c, MHD_HTTP_METHOD_POST)) {
        enum MHD_Result answered = MHD_NO;
        json_t *body = body_object(c, &answered);
        const char *rk;
        size_t rk_len, args_len = 0;
        uint8_t *args = NULL;
        struct ops_error err;
        struct ops_actor actor = {.user = c->user};
        char key[1024], location[4096];

        if (body == NULL)
            return answered;
        if ((rk = body_string(c, body, "routing_key", "", &rk_len, &answered)) == NULL ||
            body_arguments(c, body, &args, &args_len, &answered) != 0)
            goto post_out;
        if (rk_len > 255) {
            answered = bad_request(c, "routing_key is longer than 255 bytes");
            goto post_out;
        }
        if (!permitted(c, vh, to_exchange ? AUTH_OP_EXCHANGE_BIND : AUTH_OP_QUEUE_BIND,
                       exchange_name(c->seg[5]), exchange_name(c->seg[3]), false, &answered))
            goto post_out;
        if (ops_bind(vh, &actor, exchange_name(c->seg[3]), exchange_name(c->seg[5]), to_exchange,
                     (struct wire_bytes){(const uint8_t *)rk, rk_len},
                     (struct wire_bytes){args, args_len}, &err) != 0) {
            answered = respond_ops_error(c, &err);
            goto post_out;
        }
        {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            /* RabbitMQ answers with the new binding's URL relative to the request's, the
             * destination and the properties key percent-encoded (so "%" becomes "%25"). */
            size_t n;
            mgmt_binding_props_key((struct wire_bytes){(const uint8_t *)rk, rk_len},
                                   (struct wire_bytes){args, args_len}, key, sizeof key);
            n = url_encode(c->seg[5], location, sizeof location / 2);
            location[n++] = '/';
            url_encode(wire_cstr(key), location + n, sizeof location - n);
            MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
            answered = MHD_queue_response(c->conn, MHD_HTTP_CREATED, r);
            MHD_destroy_response(r);
        }
    post_out:
        free(args);
        json_decref(body);
        return answered;
    }
    if (src == NULL || dest == NULL)
        return not_found(c);
    arr = bindings_between(vh, src, dest);
    if (c->nseg == 6)
        return respond_json(c, MHD_HTTP_OK, arr);
    /* One binding, by its properties key. */
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *b = json_array_get(arr, i);
        const char *key = json_string_value(json_object_get(b, "properties_key"));
        uint8_t decoded[1024];
        /* The key is percent-encoded; a client may send it encoded once more (as in the
         * Location of a new binding) or not, so the segment, decoded once, may be either. */
        if (!wire_bytes_eq_cstr(c->seg[6], key) &&
            !wire_bytes_eq(c->seg[6], url_decode(key, decoded, sizeof decoded)))
            continue;
        if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
            struct ops_error err;
            struct ops_actor actor = {.user = c->user};
            uint8_t *args = NULL;
            size_t args_len = 0;
            char why[256];
            int rc;

            if (src == vh->default_exchange) {
                json_decref(arr);
                return access_refused(c);
            }
            if (!permitted(c, vh, to_exchange ? AUTH_OP_EXCHANGE_UNBIND : AUTH_OP_QUEUE_UNBIND,
                           exchange_name(c->seg[5]), src->name, false, &denied)) {
                json_decref(arr);
                return denied;
            }
            /* The binding's arguments are encoded again exactly as it was found. */
            mgmt_json_to_table(json_object_get(b, "arguments"), &args, &args_len, why, sizeof why);
            rc = ops_unbind(vh, &actor, src->name, c->seg[5], to_exchange,
                            mgmt_json_bytes_of(json_object_get(b, "routing_key")),
                            (struct wire_bytes){args, args_len}, true, &err);
            free(args);
            json_decref(arr);
            return rc == 0 ? respond_empty(c, MHD_HTTP_NO_CONTENT) : respond_ops_error(c, &err);
        }
        json_incref(b);
        json_decref(arr);
        return respond_json(c, MHD_HTTP_OK, b);
    }
    json_decref(arr);
    return not_found(c);
}

/* ---- Connections, channels, consumers -------------------------------------------------- */

static struct conn *find_conn(struct call *c, struct wire_bytes name)
{
    char buf[200];

    for (struct conn *k = c->m->srv->conns; k != NULL; k = k->next) {
        mgmt_conn_name(k, buf, sizeof buf);
        if (wire_bytes_eq_cstr(name, buf))
            return k;
    }
    return NULL;
}

/* Open client connections the user may see (all for monitoring and administrators, their
 * own for the others). */
static bool conn_listed(const struct call *c, const struct conn *k)
{
    return k->state != CONN_CLOSED && k->fd >= 0 && sees_conn(c, k);
}

static enum MHD_Result h_connections(struct call *c)
{
    json_t *arr;
    struct conn *k;

    if (c->nseg == 1) {
        arr = json_array();
        for (k = c->m->srv->conns; k != NULL; k = k->next) {
            if (conn_listed(c, k))
                json_array_append_new(arr, mgmt_json_connection(&c->m->ctx, k));
        }
        return respond_json(c, MHD_HTTP_OK, arr);
    }
    if ((k = find_conn(c, c->seg[1])) == NULL || !conn_listed(c, k))
        return not_found(c);
    if (c->nseg == 3) { /* .../channels */
        arr = json_array();
        for (uint32_t i = 0; i < k->channels_cap; i++) {
            if (k->channels[i] != NULL)
                json_array_append_new(arr, mgmt_json_channel(&c->m->ctx, k->channels[i]));
        }
        return respond_json(c, MHD_HTTP_OK, arr);
    }
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        const char *reason = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Reason");
        if (!c->admin && strcmp(k->log.user, c->user) != 0)
            return access_refused(c);
        char text[300];
        snprintf(text, sizeof text, "CONNECTION_FORCED - %s",
                 reason != NULL ? reason : "Closed via management plugin");
        log_info(&k->log, "closing connection at the request of '%s' (management API): %s", c->user,
                 text);
        if (k->state == CONN_OPEN || k->state == CONN_AWAIT_OPEN)
            conn_close_with(k, WIRE_CONNECTION_FORCED, text, 0);
        else if (k->state != CONN_CLOSING)
            conn_abort(k);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return respond_json(c, MHD_HTTP_OK, mgmt_json_connection(&c->m->ctx, k));
}

static enum MHD_Result h_channels(struct call *c)
{
    json_t *arr = json_array();
    char name[220];

    for (struct conn *k = c->m->srv->conns; k != NULL; k = k->next) {
        if (!conn_listed(c, k))
            continue;
        for (uint32_t i = 0; i < k->channels_cap; i++) {
            struct channel *ch = k->channels[i];
            if (ch == NULL)
                continue;
            if (c->nseg == 2) {
                mgmt_conn_name(k, name, sizeof name);
                snprintf(name + strlen(name), sizeof name - strlen(name), " (%u)", ch->id);
                if (!wire_bytes_eq_cstr(c->seg[1], name))
                    continue;
                json_decref(arr);
                return respond_json(c, MHD_HTTP_OK, mgmt_json_channel(&c->m->ctx, ch));
            }
            json_array_append_new(arr, mgmt_json_channel(&c->m->ctx, ch));
        }
    }
    if (c->nseg == 2) {
        json_decref(arr);
        return not_found(c);
    }
    return respond_json(c, MHD_HTTP_OK, arr);
}

static enum MHD_Result h_consumers(struct call *c)
{
    struct vhost *only = NULL;
    size_t nv, nq;
    struct vhost **vhs;
    json_t *arr;
    enum MHD_Result answered;

    if (c->nseg == 2 && (only = find_vhost(c, c->seg[1])) == NULL)
        return not_found(c);
    if (only != NULL && !may_see(c, only, &answered))
        return answered;
    arr = json_array();
    vhs = vhosts_sorted(c->m->srv, only, &nv);
    for (size_t i = 0; i < nv; i++) {
        void **qs;
        if (!sees_objects_of(c, vhs[i]))
            continue;
        qs = map_sorted(&vhs[i]->queues, cmp_queue, &nq);
        for (size_t k = 0; k < nq; k++) {
            const struct queue *q = qs[k];
            for (size_t n = 0; n < q->consumer_count; n++)
                json_array_append_new(arr, mgmt_json_consumer(&c->m->ctx, q->consumers[n]));
        }
        free(qs);
    }
    free(vhs);
    return respond_json(c, MHD_HTTP_OK, arr);
}

/* ---- Policies -------------------------------------------------------------------------- */

static const char *apply_to_name(enum policy_apply_to a)
{
    return a == POLICY_QUEUES ? "queues" : a == POLICY_EXCHANGES ? "exchanges" : "all";
}

static json_t *policy_json(const struct vhost *vh, const struct policy *p)
{
    json_t *o = json_object();

    json_object_set_new(o, "vhost", mgmt_json_bytes(vh->name));
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "pattern", json_string(p->pattern_source));
    json_object_set_new(o, "apply-to", json_string(apply_to_name(p->apply_to)));
    json_object_set_new(o, "definition",
                        mgmt_json_from_table((struct wire_table){.raw = p->definition}));
    json_object_set_new(o, "priority", json_integer(p->priority));
    return o;
}

static enum MHD_Result put_policy(struct call *c, struct vhost *vh, bool operator_policy)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(c, &answered);
    const json_t *pattern, *definition, *priority, *apply_to;
    uint8_t *def = NULL;
    size_t def_len = 0;
    char err[600], *pname = NULL;
    bool existed;

    if (body == NULL)
        return answered;
    pattern = json_object_get(body, "pattern");
    definition = json_object_get(body, "definition");
    priority = json_object_get(body, "priority");
    apply_to = json_object_get(body, "apply-to");
    if (!json_is_string(pattern) || !json_is_object(definition)) {
        answered = bad_request(c, "a policy needs a pattern (string) and a definition (object)");
        goto out;
    }
    if ((priority != NULL && !json_is_integer(priority)) ||
        (apply_to != NULL && !json_is_string(apply_to))) {
        answered = bad_request(c, "priority is an integer and apply-to a string");
        goto out;
    }
    if (mgmt_json_to_table(definition, &def, &def_len, err, sizeof err) != 0) {
        answered = bad_request(c, "definition: %s", err);
        goto out;
    }
    if (c->seg[2].len == 0 || c->seg[2].len > 255 || memchr(c->seg[2].ptr, '\0', c->seg[2].len)) {
        answered = bad_request(c, "a policy name is 1 to 255 bytes, without NUL");
        goto out;
    }
    pname = xstrndup_bytes(c->seg[2]);
    existed = policy_find(vh, pname, operator_policy) != NULL;
    if (policy_set(
            vh, pname, json_string_value(pattern), apply_to ? json_string_value(apply_to) : "all",
            priority ? json_integer_value(priority) : 0, (struct wire_table){.raw = {def, def_len}},
            operator_policy, err, sizeof err) != 0) {
        answered = bad_request(c, "%s", err);
        goto out;
    }
    log_info(NULL, "management API: user '%s' set %s '%s' in vhost '%.*s'", c->user,
             operator_policy ? "operator policy" : "policy", pname, (int)vh->name.len,
             (const char *)vh->name.ptr);
    answered = respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    free(pname);
    free(def);
    json_decref(body);
    return answered;
}

/* /api/policies[/v[/name]] and /api/operator-policies[/v[/name]]. Operator policies are
 * the operator's: administrators only, as in RabbitMQ; policies need the policymaker tag to
 * change and access to the vhost to see. */
static enum MHD_Result h_policies(struct call *c)
{
    bool op = wire_bytes_eq_cstr(c->seg[0], "operator-policies");
    struct vhost *vh = NULL;
    enum MHD_Result answered;
    const struct policy *p;
    char *pname;

    if (op && !c->admin)
        return not_admin(c);
    if (c->nseg >= 2 && (vh = find_vhost(c, c->seg[1])) == NULL)
        return not_found(c);
    if (vh != NULL && !may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2) {
        json_t *arr = json_array();
        size_t nv;
        struct vhost **vhs = vhosts_sorted(c->m->srv, vh, &nv);
        for (size_t i = 0; i < nv; i++) {
            size_t n;
            struct policy *const *list;
            if (!sees_objects_of(c, vhs[i]))
                continue;
            list = policy_list(vhs[i], &n, op);
            for (size_t k = 0; k < n; k++)
                json_array_append_new(arr, policy_json(vhs[i], list[k]));
        }
        free(vhs);
        return respond_json(c, MHD_HTTP_OK, arr);
    }
    if (!method_is(c, MHD_HTTP_METHOD_GET) && !c->policymaker)
        return respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                             "User not authorised to access object");
    if (method_is(c, MHD_HTTP_METHOD_PUT))
        return put_policy(c, vh, op);
    pname = xstrndup_bytes(c->seg[2]);
    p = policy_find(vh, pname, op);
    if (p == NULL) {
        free(pname);
        return not_found(c);
    }
    if (method_is(c, MHD_HTTP_METHOD_DELETE)) {
        policy_clear(vh, pname, op);
        log_info(NULL, "management API: user '%s' cleared %s '%s'", c->user,
                 op ? "operator policy" : "policy", pname);
        free(pname);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    free(pname);
    return respond_json(c, MHD_HTTP_OK, policy_json(vh, p));
}

/* ---- Definitions ----------------------------------------------------------------------- */

static enum MHD_Result h_definitions(struct call *c)
{
    struct vhost *only = NULL;

    if (!c->admin)
        return not_admin(c);
    if (c->nseg == 2 && (only = find_vhost(c, c->seg[1])) == NULL)
        return not_found(c);
    if (method_is(c, MHD_HTTP_METHOD_POST)) {
        char err[1024];
        json_t *doc = json_loadb(c->body, c->body_len, 0, NULL);
        int rc;

        if (doc == NULL || !json_is_object(doc)) {
            json_decref(doc);
            return bad_request(c, "not_json");
        }
        rc = mgmt_defs_import(c->m->srv, doc, only, err, sizeof err);
        json_decref(doc);
        if (rc != 0)
            return bad_request(c, "%s", err);
        return respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return respond_json(c, MHD_HTTP_OK, mgmt_defs_export(c->m->srv, only));
}

/* ---- Routing --------------------------------------------------------------------------- */

enum {
    M_GET = 1,
    M_PUT = 2,
    M_POST = 4,
    M_DELETE = 8,
};

typedef enum MHD_Result (*handler_fn)(struct call *c);

/* Paths below /api/: "*" is any one segment. Searched in order; the first pattern that
 * matches the path and the method answers. */
static const struct route {
    const char *pattern;
    unsigned methods;
    handler_fn handle;
} routes[] = {
    {"overview", M_GET, h_overview},
    {"whoami", M_GET, h_whoami},
    {"vhosts", M_GET, h_vhosts},
    {"vhosts/*", M_GET | M_PUT | M_DELETE, h_vhosts},
    {"vhosts/*/permissions", M_GET, h_vhost_permissions},
    {"exchanges", M_GET, h_exchanges},
    {"exchanges/*", M_GET, h_exchanges},
    {"exchanges/*/*", M_GET | M_PUT | M_DELETE, h_exchanges},
    {"exchanges/*/*/publish", M_POST, h_publish},
    {"exchanges/*/*/bindings/source", M_GET, h_exchange_bindings},
    {"exchanges/*/*/bindings/destination", M_GET, h_exchange_bindings},
    {"queues", M_GET, h_queues},
    {"queues/*", M_GET, h_queues},
    {"queues/*/*", M_GET | M_PUT | M_DELETE, h_queues},
    {"queues/*/*/contents", M_DELETE, h_queues},
    {"queues/*/*/get", M_POST, h_get},
    {"queues/*/*/bindings", M_GET, h_queue_bindings},
    {"bindings", M_GET, h_bindings},
    {"bindings/*", M_GET, h_bindings},
    {"bindings/*/*/*/*/*", M_GET | M_POST, h_bindings},
    {"bindings/*/*/*/*/*/*", M_GET | M_DELETE, h_bindings},
    {"connections", M_GET, h_connections},
    {"connections/*", M_GET | M_DELETE, h_connections},
    {"connections/*/channels", M_GET, h_connections},
    {"channels", M_GET, h_channels},
    {"channels/*", M_GET, h_channels},
    {"consumers", M_GET, h_consumers},
    {"consumers/*", M_GET, h_consumers},
    {"definitions", M_GET | M_POST, h_definitions},
    {"definitions/*", M_GET | M_POST, h_definitions},
    {"policies", M_GET, h_policies},
    {"policies/*", M_GET, h_policies},
    {"policies/*/*", M_GET | M_PUT | M_DELETE, h_policies},
    {"operator-policies", M_GET, h_policies},
    {"operator-policies/*", M_GET, h_policies},
    {"operator-policies/*/*", M_GET | M_PUT | M_DELETE, h_policies},
    {"aliveness-test/*", M_GET, h_aliveness},
    {"health/checks/alarms", M_GET, h_alarms},
    {"users", M_GET, h_users},
    {"users/*", M_GET | M_PUT | M_DELETE, h_users},
    {"users/*/permissions", M_GET, h_users},
    {"permissions", M_GET, h_permissions},
    {"permissions/*/*", M_GET | M_PUT | M_DELETE, h_permissions},
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

static bool route_matches(const char *pattern, const struct call *c)
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

static enum MHD_Result dispatch(struct call *c)
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
    return not_found(c);
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
static bool split_path(struct call *c, const char *path, uint8_t *storage)
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

/* Checks the request's credentials against the user database, as RabbitMQ's management
 * plugin does: a known user, the right password, allowed from where the request comes
 * (loopback_users) and tagged for management. False after answering 401. */
static bool authenticate(struct call *c, enum MHD_Result *answered)
{
    const struct config *cfg = c->m->srv->cfg;
    const struct auth_db *db = c->m->srv->auth;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c->conn, &pass);
    const struct auth_user *u;
    const char *error = "not_authorised", *reason = NULL;
    struct MHD_Response *r;
    char body[200];

    if (user == NULL) {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        *answered = MHD_queue_basic_auth_fail_response(c->conn, MGMT_REALM, r);
        MHD_destroy_response(r);
        return false;
    }
    u = auth_user_find(db, wire_cstr(user));
    if (!auth_check_password(db, wire_cstr(user), wire_cstr(pass != NULL ? pass : ""))) {
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
    MHD_free(user);
    if (pass != NULL) {
        memset(pass, 0, strlen(pass));
        MHD_free(pass);
    }
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
    struct call c = {.m = m, .conn = conn, .method = method};
    bool per_object;

    if (strcmp(url, "/metrics") == 0)
        per_object = m->srv->cfg->prometheus_per_object;
    else if (strcmp(url, "/metrics/per-object") == 0)
        per_object = true;
    else
        return respond(&c, MHD_HTTP_NOT_FOUND, xstrdup("Not Found\n"), 10, "text/plain");
    if (method_bit(method) != M_GET)
        return respond(&c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0, NULL);
    if (m->metrics_size_hint > 0) {
        b.cap = m->metrics_size_hint + m->metrics_size_hint / 8;
        b.data = xmalloc(b.cap);
    }
    metrics_render(&b, m->srv, &m->stats, per_object, m->ctx.node);
    m->metrics_size_hint = b.len;
    /* The buffer goes to MHD, which frees it once sent. */
    return respond(&c, MHD_HTTP_OK, b.data, b.len, "text/plain; version=0.0.4");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct mgmt_http *h = cls;
    struct mgmt *m = h->m;
    struct request *req = *con_cls;
    struct call c = {.m = m, .conn = conn, .method = method};
    enum MHD_Result answered = MHD_NO;
    uint8_t *storage;

    (void)version;
    if (req == NULL) {
        *con_cls = xcalloc(1, sizeof *req);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (req->len + n > MGMT_BODY_MAX) {
            req->too_large = true;
        } else if (!req->too_large) {
            if (req->len + n > req->cap) {
                req->cap = (req->len + n) * 2;
                req->body = xrealloc(req->body, req->cap);
            }
            memcpy(req->body + req->len, upload_data, n);
            req->len += n;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (h->metrics)
        return serve_metrics(m, conn, url, method);
    if (req->too_large)
        return respond_error(&c, MHD_HTTP_CONTENT_TOO_LARGE, "bad_request",
                             "request body larger than %u bytes", MGMT_BODY_MAX);
    if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/api") != 0)
        return not_found(&c);
    if (!authenticate(&c, &answered))
        return answered;
    c.body = req->body;
    c.body_len = req->len;
    storage = xmalloc(strlen(url) + 1);
    if (!split_path(&c, url[4] == '/' ? url + 5 : url + 4, storage))
        answered = not_found(&c);
    else
        answered = dispatch(&c);
    free(storage);
    return answered;
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req != NULL) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* The path as it came: segments are decoded one by one, so "%2F" (the vhost "/") cannot be
 * mistaken for a separator. */
static size_t keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

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
                      uint16_t port, bool metrics)
{
    char bound[96];
    const union MHD_DaemonInfo *info;
    int fd;

    h->m = m;
    h->metrics = metrics;
    snprintf(h->ip, sizeof h->ip, "%s", ip);
    h->port = port;
    if ((fd = listen_on(what, ip, port, bound, sizeof bound)) < 0)
        return -1;
    /* No thread of MHD's own: the loop runs it (see mgmt.h). */
    h->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                 MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_request_done, h, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes,
                                 NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
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
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    host[strcspn(host, ".")] = '\0';
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
    ev_timer_init(&m->reap_timer, on_reap_vhosts, 0.1, 0.1);
    if (cfg->management_port != 0) {
        snprintf(m->ctx.http_ip, sizeof m->ctx.http_ip, "%s", cfg->management_ip);
        m->ctx.http_port = (uint16_t)cfg->management_port;
        if (http_start(m, &m->api, "management API", cfg->management_ip,
                       (uint16_t)cfg->management_port, false) != 0)
            return -1;
    }
    if (cfg->prometheus_port != 0) {
        snprintf(m->ctx.prometheus_ip, sizeof m->ctx.prometheus_ip, "%s", cfg->prometheus_ip);
        m->ctx.prometheus_port = (uint16_t)cfg->prometheus_port;
        if (http_start(m, &m->prometheus, "Prometheus metrics", cfg->prometheus_ip,
                       (uint16_t)cfg->prometheus_port, true) != 0)
            return -1;
    }
    return 0;
}

void mgmt_stop(struct mgmt *m)
{
    if (m == NULL)
        return;
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
