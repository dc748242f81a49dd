/* The management API: connections, channels and consumers; policies; definitions. */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

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
#include "src/broker/vhost.h"
#include "src/mgmt/metrics.h"
#include "src/mgmt/mgmt_defs.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/mgmt_stats.h"
#include "src/mgmt/ops.h"
#include "src/security/auth.h"

/* ---- Connections, channels, consumers -------------------------------------------------- */

static struct conn *find_conn(struct mgmt_call *c, struct wire_bytes name)
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
static bool conn_listed(const struct mgmt_call *c, const struct conn *k)
{
    return k->state != CONN_CLOSED && k->fd >= 0 && mgmt_sees_conn(c, k);
}

/* Connections or channels being listed (mgmt_slice.h). No pointer is kept between slices:
 * the server's list runs from the newest connection to the oldest (a new one is put first,
 * with the next id), so a list resumes after the last id it listed, and a connection closed
 * meanwhile is simply no longer there. */
struct conn_list {
    struct mgmt_ctx *ctx;
    bool channels; /* their channels rather than the connections */
    bool begun;
    bool monitor;     /* the user sees every connection, not only their own */
    char user[512];   /* the user asking */
    uint64_t upto;    /* connections with a greater id are done (or newer than the list) */
    uint64_t in_conn; /* channels: the connection listed in part (0: none) ... */
    uint32_t slot;    /* ... and its next channel slot */
    /* Only the connections of this vhost (/api/vhosts/v/connections), of this user
     * (/api/connections/username/u); NULL: any. */
    char *vhost;
    size_t vhost_len;
    char *only_user;
};

static bool conn_list_shows(const struct conn_list *l, const struct conn *k)
{
    return k->state != CONN_CLOSED && k->fd >= 0 &&
           (l->monitor || strcmp(k->log.user, l->user) == 0) &&
           (l->vhost == NULL || (k->vhost != NULL && k->vhost->name.len == l->vhost_len &&
                                 memcmp(k->vhost->name.ptr, l->vhost, l->vhost_len) == 0)) &&
           (l->only_user == NULL || strcmp(k->log.user, l->only_user) == 0);
}

static bool fill_conns(struct mgmt_stream *st, void *state, size_t max)
{
    struct conn_list *l = state;
    struct conn *k = l->ctx->srv->conns;
    size_t written = 0;

    if (!l->begun) {
        l->begun = true;
        mgmt_stream_text(st, "[");
    }
    while (k != NULL && k->log.conn_id > l->upto)
        k = k->next;
    for (; k != NULL && written < max; k = k->next) {
        uint32_t slot = k->log.conn_id == l->in_conn ? l->slot : 0;
        if (conn_list_shows(l, k) && !l->channels) {
            mgmt_stream_item(st, mgmt_json_connection(l->ctx, k));
            written++;
        } else if (conn_list_shows(l, k)) {
            for (; slot < k->channels_cap && written < max; slot++) {
                if (k->channels[slot] == NULL)
                    continue;
                mgmt_stream_item(st, mgmt_json_channel(l->ctx, k->channels[slot]));
                written++;
            }
            if (slot < k->channels_cap) {
                l->in_conn = k->log.conn_id;
                l->slot = slot;
                return false;
            }
        }
        l->upto = k->log.conn_id - 1;
        l->in_conn = 0;
    }
    if (k != NULL)
        return false;
    mgmt_stream_text(st, "]");
    return true;
}

static void free_conns(void *state)
{
    struct conn_list *l = state;

    free(l->vhost);
    free(l->only_user);
    free(l);
}

static const struct mgmt_stream_ops conn_list_ops = {fill_conns, free_conns, .sort_items = true};

/* The connections (or their channels) the user sees, of vh only when it is not NULL, of the
 * user only_user only when that is not NULL. */
static enum MHD_Result list_conns_of(struct mgmt_call *c, bool channels, const struct vhost *vh,
                                     const char *only_user)
{
    struct conn_list *l = xcalloc(1, sizeof *l);

    *l = (struct conn_list){
        .ctx = &c->m->ctx, .channels = channels, .monitor = c->monitor, .upto = UINT64_MAX};
    snprintf(l->user, sizeof l->user, "%s", c->user);
    if (vh != NULL) {
        l->vhost = xmalloc(vh->name.len + 1);
        memcpy(l->vhost, vh->name.ptr, vh->name.len);
        l->vhost_len = vh->name.len;
    }
    if (only_user != NULL)
        l->only_user = xstrdup(only_user);
    return mgmt_respond_stream(c, &conn_list_ops, l);
}

static enum MHD_Result list_conns(struct mgmt_call *c, bool channels)
{
    return list_conns_of(c, channels, NULL, NULL);
}

/* GET /api/vhosts/v/connections and /api/vhosts/v/channels: for administrators and the users
 * with access to v, as in RabbitMQ; each sees there what /api/connections shows them. */
enum MHD_Result mgmt_api_vhost_connections(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    enum MHD_Result answered;

    if (vh == NULL)
        return mgmt_not_found(c);
    if (!mgmt_may_see(c, vh, &answered))
        return answered;
    return list_conns_of(c, wire_bytes_eq_cstr(c->seg[2], "channels"), vh, NULL);
}

/* Closes k at the request of the API's user, with RabbitMQ's CONNECTION_FORCED text. */
static void force_close(struct mgmt_call *c, struct conn *k)
{
    const char *reason = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Reason");
    char text[300];

    snprintf(text, sizeof text, "CONNECTION_FORCED - %s",
             reason != NULL ? reason : "Closed via management plugin");
    log_info(&k->log, "closing connection at the request of '%s' (management API): %s", c->user,
             text);
    if (k->state == CONN_OPEN || k->state == CONN_AWAIT_OPEN)
        conn_close_with(k, WIRE_CONNECTION_FORCED, text, 0);
    else if (k->state != CONN_CLOSING)
        conn_abort(k);
}

/* GET and DELETE /api/connections/username/u: the user's connections, listed or closed.
 * Monitoring users see anyone's, administrators close anyone's; the others see and close
 * their own (RabbitMQ 3.10 fails with 500 for them). */
enum MHD_Result mgmt_api_user_connections(struct mgmt_call *c)
{
    char *user = xstrndup_bytes(c->seg[2]);
    bool own = strlen(user) == c->seg[2].len && strcmp(user, c->user) == 0;
    enum MHD_Result answered;

    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (!c->admin && !own) {
            answered = mgmt_not_admin(c);
        } else {
            struct conn *k, *next;
            /* Closing may move k to the list of dead connections: its next is read first. */
            for (k = c->m->srv->conns; k != NULL; k = next) {
                next = k->next;
                if (conn_listed(c, k) && strcmp(k->log.user, user) == 0)
                    force_close(c, k);
            }
            answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
        }
    } else if (!c->monitor && !own) {
        answered =
            mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Not monitor user");
    } else {
        answered = list_conns_of(c, false, NULL, user);
    }
    free(user);
    return answered;
}

enum MHD_Result mgmt_api_connections(struct mgmt_call *c)
{
    json_t *arr;
    struct conn *k;

    if (c->nseg == 1)
        return list_conns(c, false);
    if ((k = find_conn(c, c->seg[1])) == NULL || k->state == CONN_CLOSED || k->fd < 0)
        return mgmt_not_found(c);
    /* Another user's connection, to a user who sees only their own: refused, as in RabbitMQ. */
    if (!conn_listed(c, k))
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access object");
    if (c->nseg == 3) { /* .../channels */
        arr = json_array();
        for (uint32_t i = 0; i < k->channels_cap; i++) {
            if (k->channels[i] != NULL)
                json_array_append_new(arr, mgmt_json_channel(&c->m->ctx, k->channels[i]));
        }
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (!c->admin && strcmp(k->log.user, c->user) != 0)
            return mgmt_access_refused(c);
        force_close(c, k);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, mgmt_json_connection(&c->m->ctx, k));
}

enum MHD_Result mgmt_api_channels(struct mgmt_call *c)
{
    char name[220];

    if (c->nseg == 1)
        return list_conns(c, true);
    for (struct conn *k = c->m->srv->conns; k != NULL; k = k->next) {
        if (!conn_listed(c, k))
            continue;
        for (uint32_t i = 0; i < k->channels_cap; i++) {
            struct channel *ch = k->channels[i];
            if (ch == NULL)
                continue;
            mgmt_conn_name(k, name, sizeof name);
            snprintf(name + strlen(name), sizeof name - strlen(name), " (%u)", ch->id);
            if (wire_bytes_eq_cstr(c->seg[1], name))
                return mgmt_respond_json(c, MHD_HTTP_OK, mgmt_json_channel(&c->m->ctx, ch));
        }
    }
    return mgmt_not_found(c);
}

/* Consumers being listed (mgmt_slice.h): the queues that had consumers when the list
 * began, by name, each found again when its turn comes. */
struct consumer_list {
    struct mgmt_ctx *ctx;
    bool begun;
    struct mgmt_names queues; /* vhost, queue */
};

static int cmp_vhost_queue(const struct mgmt_names *names, size_t a, size_t b)
{
    return mgmt_names_cmp_fields(names, a, b, 2);
}

static bool fill_consumers(struct mgmt_stream *st, void *state, size_t max)
{
    struct consumer_list *l = state;
    size_t r;

    if (!mgmt_names_sort(&l->queues, cmp_vhost_queue, MGMT_SORT_STEPS))
        return false;
    if (!l->begun) {
        l->begun = true;
        mgmt_stream_text(st, "[");
    }
    /* A queue's consumers go together, however many it has. */
    for (size_t k = 0; k < max && mgmt_names_next(&l->queues, &r); k++) {
        struct vhost *vh = server_vhost_find(l->ctx->srv, mgmt_names_field(&l->queues, r, 0));
        const struct queue *q =
            vh != NULL ? vhost_queue_find(vh, mgmt_names_field(&l->queues, r, 1)) : NULL;
        for (size_t n = 0; q != NULL && n < q->consumer_count; n++)
            mgmt_stream_item(st, mgmt_json_consumer(l->ctx, q->consumers[n]));
    }
    if (!mgmt_names_done(&l->queues))
        return false;
    mgmt_stream_text(st, "]");
    return true;
}

static void free_consumers(void *state)
{
    struct consumer_list *l = state;

    mgmt_names_free(&l->queues);
    free(l);
}

static const struct mgmt_stream_ops consumer_list_ops = {fill_consumers, free_consumers, .sort_items = true};

enum MHD_Result mgmt_api_consumers(struct mgmt_call *c)
{
    struct vhost *only = NULL;
    size_t nv;
    struct vhost **vhs;
    struct consumer_list *l;

    /* A vhost the user has no access to lists no consumers, as in RabbitMQ (no 401). */
    if (c->nseg == 2 && (only = mgmt_find_vhost(c, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    l = xcalloc(1, sizeof *l);
    l->ctx = &c->m->ctx;
    vhs = mgmt_vhosts_sorted(c->m->srv, only, &nv);
    for (size_t i = 0; i < nv; i++) {
        void *v;
        if (!mgmt_sees_objects_of(c, vhs[i]))
            continue;
        for (size_t k = 0; hmap_next(&vhs[i]->queues, &k, &v);) {
            const struct queue *q = v;
            if (q->consumer_count > 0) {
                struct wire_bytes fields[2] = {vhs[i]->name, q->name};
                mgmt_names_add(&l->queues, 0, 2, fields);
            }
        }
    }
    free(vhs);
    return mgmt_respond_stream(c, &consumer_list_ops, l);
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

static enum MHD_Result put_policy(struct mgmt_call *c, struct vhost *vh, bool operator_policy)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
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
        answered =
            mgmt_bad_request(c, "a policy needs a pattern (string) and a definition (object)");
        goto out;
    }
    if ((priority != NULL && !json_is_integer(priority)) ||
        (apply_to != NULL && !json_is_string(apply_to))) {
        answered = mgmt_bad_request(c, "priority is an integer and apply-to a string");
        goto out;
    }
    if (mgmt_json_to_table(definition, &def, &def_len, err, sizeof err) != 0) {
        answered = mgmt_bad_request(c, "definition: %s", err);
        goto out;
    }
    if (c->seg[2].len == 0 || c->seg[2].len > 255 || memchr(c->seg[2].ptr, '\0', c->seg[2].len)) {
        answered = mgmt_bad_request(c, "a policy name is 1 to 255 bytes, without NUL");
        goto out;
    }
    pname = xstrndup_bytes(c->seg[2]);
    existed = policy_find(vh, pname, operator_policy) != NULL;
    if (policy_set(
            vh, pname, json_string_value(pattern), apply_to ? json_string_value(apply_to) : "all",
            priority ? json_integer_value(priority) : 0, (struct wire_table){.raw = {def, def_len}},
            operator_policy, err, sizeof err) != 0) {
        answered = mgmt_bad_request(c, "%s", err);
        goto out;
    }
    log_info(NULL, "management API: user '%s' set %s '%s' in vhost '%.*s'", c->user,
             operator_policy ? "operator policy" : "policy", pname, (int)vh->name.len,
             (const char *)vh->name.ptr);
    answered = mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    free(pname);
    free(def);
    json_decref(body);
    return answered;
}

/* /api/policies[/v[/name]] and /api/operator-policies[/v[/name]]. Operator policies are
 * the operator's: administrators change and read them one by one, administrators and
 * monitoring users see them in the lists (which are empty for the others), as in RabbitMQ
 * 3.10; policies need the policymaker tag to change and access to the vhost to see. */
enum MHD_Result mgmt_api_policies(struct mgmt_call *c)
{
    bool op = wire_bytes_eq_cstr(c->seg[0], "operator-policies");
    struct vhost *vh = NULL;
    enum MHD_Result answered;
    const struct policy *p;
    char *pname;

    if (op && !c->admin && c->nseg == 3)
        return mgmt_not_admin(c);
    if (c->nseg >= 2 && (vh = mgmt_find_vhost(c, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    if (vh != NULL && !mgmt_may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2) {
        json_t *arr = json_array();
        size_t nv;
        struct vhost **vhs = mgmt_vhosts_sorted(c->m->srv, vh, &nv);
        for (size_t i = 0; i < nv; i++) {
            size_t n;
            struct policy *const *list;
            if (op ? !c->monitor : !mgmt_sees_objects_of(c, vhs[i]))
                continue;
            list = policy_list(vhs[i], &n, op);
            for (size_t k = 0; k < n; k++)
                json_array_append_new(arr, policy_json(vhs[i], list[k]));
        }
        free(vhs);
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    }
    if (!mgmt_method_is(c, MHD_HTTP_METHOD_GET) && !c->policymaker)
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access object");
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_policy(c, vh, op);
    pname = xstrndup_bytes(c->seg[2]);
    p = policy_find(vh, pname, op);
    if (p == NULL) {
        free(pname);
        return mgmt_not_found(c);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        policy_clear(vh, pname, op);
        log_info(NULL, "management API: user '%s' cleared %s '%s'", c->user,
                 op ? "operator policy" : "policy", pname);
        free(pname);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    free(pname);
    return mgmt_respond_json(c, MHD_HTTP_OK, policy_json(vh, p));
}

/* ---- Definitions ----------------------------------------------------------------------- */

/* An import in progress (mgmt_defer): answered once done. */
struct import_work {
    struct mgmt_defs_import *imp;
    struct mgmt_work *work;
    int rc; /* of the last step: MGMT_DEFS_* */
    char err[1024];
};

static void import_wake(void *ctx)
{
    struct import_work *w = ctx;

    mgmt_work_wake(w->work);
}

static enum mgmt_work_state import_step(void *state, uint64_t budget_us)
{
    struct import_work *w = state;

    w->rc = mgmt_defs_import_step(w->imp, budget_us, w->err, sizeof w->err);
    return w->rc == MGMT_DEFS_MORE      ? MGMT_WORK_MORE
           : w->rc == MGMT_DEFS_WAITING ? MGMT_WORK_WAIT
                                        : MGMT_WORK_DONE;
}

static enum MHD_Result import_answer(struct mgmt_call *c, void *state)
{
    struct import_work *w = state;

    if (w->rc != MGMT_DEFS_DONE)
        return mgmt_bad_request(c, "%s", w->err);
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

static void import_free(void *state)
{
    struct import_work *w = state;

    mgmt_defs_import_free(w->imp);
    free(w);
}

static const struct mgmt_work_ops import_ops = {import_step, import_answer, import_free};

enum MHD_Result mgmt_api_definitions(struct mgmt_call *c)
{
    struct vhost *only = NULL;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (c->nseg == 2 && (only = mgmt_find_vhost(c, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_POST)) {
        struct import_work *w = xcalloc(1, sizeof *w);
        /* Parsing a large document, and the thousands of declares (and writes to the
         * definitions log) it asks for, would stop every AMQP client: the request is
         * answered once the import is done, which happens a slice per loop turn. The body
         * stays with the request until then. */
        w->imp = mgmt_defs_import_start(c->m->srv, c->body, c->body_len, only, import_wake, w);
        return mgmt_defer(c, &import_ops, w, &w->work);
    }
    return mgmt_respond_stream(c, &mgmt_defs_export_ops, mgmt_defs_export_begin(c->m->srv, only));
}

/* ---- The memory high watermark ----------------------------------------------------------
 * What rabbitmqctl set_vm_memory_high_watermark does, over HTTP (RabbitMQ's management API
 * has no such resource; warrenctl set_vm_memory_high_watermark calls this one):
 *   GET  -> {"relative": 0.4, "absolute": null, "limit": bytes, "used": bytes, "alarm": false}
 *   PUT  {"relative": F} (0 <= F <= 1, a fraction of the machine's memory) or
 *        {"absolute": BYTES} -> 204, the alarm checked again at once. Administrators only. */

static json_t *watermark_json(const struct server *s)
{
    json_t *o = json_object();

    json_object_set_new(o, "relative",
                        s->memory_watermark_absolute != 0
                            ? json_null()
                            : json_real((double)s->memory_watermark_relative / 1000.0));
    json_object_set_new(o, "absolute",
                        s->memory_watermark_absolute != 0
                            ? json_integer((json_int_t)s->memory_watermark_absolute)
                            : json_null());
    json_object_set_new(o, "limit", json_integer((json_int_t)s->memory_limit));
    json_object_set_new(o, "used", json_integer((json_int_t)s->memory_used));
    json_object_set_new(o, "alarm", json_boolean(s->alarms & ALARM_MEMORY));
    return o;
}

enum MHD_Result mgmt_api_memory_watermark(struct mgmt_call *c)
{
    struct server *s = c->m->srv;
    enum MHD_Result answered = MHD_NO;
    json_t *body, *relative, *absolute;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (!mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return mgmt_respond_json(c, MHD_HTTP_OK, watermark_json(s));
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    relative = json_object_get(body, "relative");
    absolute = json_object_get(body, "absolute");
    if ((relative == NULL) == (absolute == NULL)) {
        answered = mgmt_bad_request(c, "give one of relative (a fraction) or absolute (bytes)");
    } else if (relative != NULL &&
               (!json_is_number(relative) || json_number_value(relative) < 0 ||
                json_number_value(relative) > 1)) {
        answered = mgmt_bad_request_term(c, "relative must be a number from 0 to 1",
                                          json_deep_copy(relative));
    } else if (absolute != NULL &&
               (!json_is_integer(absolute) || json_integer_value(absolute) < 0)) {
        answered = mgmt_bad_request_term(c, "absolute must be a whole number of bytes",
                                          json_deep_copy(absolute));
    } else {
        if (relative != NULL)
            server_set_memory_watermark(
                s, (uint32_t)(json_number_value(relative) * 1000.0 + 0.5), 0);
        else
            server_set_memory_watermark(s, 0, (uint64_t)json_integer_value(absolute));
        answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    json_decref(body);
    return answered;
}
