/* The management API: overview, vhosts, users and permissions, health checks. */
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

/* ---- Overview, vhosts ------------------------------------------------------------------ */

enum MHD_Result mgmt_api_overview(struct mgmt_call *c)
{
    return mgmt_respond_json(c, MHD_HTTP_OK, mgmt_json_overview(&c->m->ctx));
}

static json_t *tags_json(char *const *tags, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(tags[i]));
    return arr;
}

enum MHD_Result mgmt_api_whoami(struct mgmt_call *c)
{
    const struct auth_user *u = auth_user_find(c->m->srv->auth, wire_cstr(c->user));
    json_t *j = json_object();

    json_object_set_new(j, "name", json_string(c->user));
    json_object_set_new(j, "tags", u != NULL ? tags_json(u->tags, u->tags_len) : json_array());
    return mgmt_respond_json(c, MHD_HTTP_OK, j);
}

/* Tags as the API takes them: "a,b" or ["a", "b"]. The strings are copied into *out (free
 * with free_tags). -1 after answering 400. */
static int body_tags(struct mgmt_call *c, const json_t *v, char ***out, size_t *n,
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
                *answered = mgmt_bad_request(c, "tags must be strings");
                return -1;
            }
            if (json_string_length(t) > 0)
                (*out)[(*n)++] = xstrdup(json_string_value(t));
        }
        return 0;
    }
    if (!json_is_string(v)) {
        *answered = mgmt_bad_request(c, "tags must be a string (\"a,b\") or an array of strings");
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

static json_t *vhost_json(struct mgmt_call *c, struct vhost *vh)
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

static enum MHD_Result put_vhost(struct mgmt_call *c, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    char **tags = NULL, *vname = NULL;
    size_t ntags = 0, dlen = 0, qlen = 0;
    const char *description, *queue_type;
    bool existed, tracing;

    if (body == NULL)
        return answered;
    if (mgmt_body_bool(c, body, "tracing", false, &tracing, &answered) != 0)
        goto out;
    /* RabbitMQ would start its firehose; Warren has none, and says so rather than ignore it. */
    if (tracing) {
        answered = mgmt_bad_request(c, "tracing is not supported: Warren has no firehose "
                                       "(amq.rabbitmq.trace)");
        goto out;
    }
    if ((description = mgmt_body_string(c, body, "description", "", &dlen, &answered)) == NULL ||
        (queue_type = mgmt_body_string(c, body, "default_queue_type", "", &qlen, &answered)) ==
            NULL ||
        body_tags(c, json_object_get(body, "tags"), &tags, &ntags, &answered) != 0)
        goto out;
    if (name.len == 0 || name.len > 255 || memchr(name.ptr, '\0', name.len) != NULL) {
        answered = mgmt_bad_request(c, "a vhost name is 1 to 255 bytes, without NUL");
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
    answered = mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
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

void mgmt_on_reap_vhosts(struct ev_loop *loop, ev_timer *w, int revents)
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
static enum MHD_Result delete_vhost(struct mgmt_call *c, struct vhost *vh)
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
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

enum MHD_Result mgmt_api_vhosts(struct mgmt_call *c)
{
    size_t n;
    struct vhost **vhs;
    json_t *arr;

    if (c->nseg == 2) {
        struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
        if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
            return c->admin ? put_vhost(c, c->seg[1]) : mgmt_not_admin(c);
        if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
            if (!c->admin)
                return mgmt_not_admin(c);
            return vh != NULL ? delete_vhost(c, vh) : mgmt_not_found(c);
        }
        /* One vhost is for administrators, as in RabbitMQ 3.10 (the list is for anyone). */
        if (!c->admin)
            return mgmt_not_admin(c);
        if (vh == NULL)
            return mgmt_not_found(c);
        return mgmt_respond_json(c, MHD_HTTP_OK, vhost_json(c, vh));
    }
    arr = json_array();
    vhs = mgmt_vhosts_sorted(c->m->srv, NULL, &n);
    for (size_t i = 0; i < n; i++) {
        if (c->monitor || mgmt_sees_objects_of(c, vhs[i]))
            json_array_append_new(arr, vhost_json(c, vhs[i]));
    }
    free(vhs);
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

enum MHD_Result mgmt_api_aliveness(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    enum MHD_Result answered;
    json_t *j;

    if (vh == NULL)
        return mgmt_not_found(c);
    if (!mgmt_may_see(c, vh, &answered))
        return answered;
    j = json_object();
    json_object_set_new(j, "status", json_string("ok"));
    return mgmt_respond_json(c, MHD_HTTP_OK, j);
}

/* An alarm as RabbitMQ's rabbit_alarm:format_as_map/1 shows it. */
static json_t *alarm_json(const struct mgmt_call *c, const char *resource)
{
    json_t *o = json_object();

    json_object_set_new(o, "resource", json_string(resource));
    json_object_set_new(o, "node", json_string(c->m->ctx.node));
    return o;
}

/* health/checks/alarms and health/checks/local-alarms: 200 {"status":"ok"} without a
 * resource alarm, 503 listing the alarms with one (RabbitMQ's health check failure). The
 * broker is one node, so its alarms are the cluster's; only the reason differs. */
enum MHD_Result mgmt_api_alarms(struct mgmt_call *c)
{
    unsigned alarms = c->m->srv->alarms;
    bool local = wire_bytes_eq_cstr(c->seg[2], "local-alarms");
    json_t *j = json_object(), *list;

    if (alarms == 0) {
        json_object_set_new(j, "status", json_string("ok"));
        return mgmt_respond_json(c, MHD_HTTP_OK, j);
    }
    list = json_array();
    if (alarms & ALARM_MEMORY)
        json_array_append_new(list, alarm_json(c, "memory"));
    if (alarms & ALARM_DISK)
        json_array_append_new(list, alarm_json(c, "disk space"));
    json_object_set_new(j, "status", json_string("failed"));
    json_object_set_new(j, "reason",
                        json_string(local ? "There are alarms in effect on the node"
                                          : "There are alarms in effect in the cluster"));
    json_object_set_new(j, "alarms", list);
    return mgmt_respond_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, j);
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

static enum MHD_Result put_user(struct mgmt_call *c, struct wire_bytes name)
{
    struct auth_db *db = c->m->srv->auth;
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
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
        answered = mgmt_bad_request(c, "password, password_hash and hashing_algorithm are strings");
        goto out;
    }
    if (password != NULL && hash != NULL) {
        answered = mgmt_bad_request(c, "password and password_hash cannot both be set");
        goto out;
    }
    if (name.len == 0 || name.len > 255 || memchr(name.ptr, '\0', name.len) != NULL) {
        answered = mgmt_bad_request(c, "a user name is 1 to 255 bytes, without NUL");
        goto out;
    }
    uname = xstrndup_bytes(name);
    existed = auth_user_find(db, name) != NULL;
    if (hash != NULL) {
        enum auth_hash_algorithm alg = AUTH_HASH_SHA256;
        if (algorithm != NULL &&
            auth_hash_algorithm_parse(json_string_value(algorithm), &alg) != 0) {
            answered =
                mgmt_bad_request(c, "unknown hashing_algorithm '%s'", json_string_value(algorithm));
            goto out;
        }
        if (auth_user_put_hash(db, uname, json_string_value(hash), alg, err, sizeof err) != 0) {
            answered = mgmt_bad_request(c, "%s", err);
            goto out;
        }
        auth_user_set_tags(db, uname, (const char *const *)tags, ntags);
    } else if (password != NULL || !existed) {
        /* A new user without a password cannot log in with one, as in RabbitMQ. */
        if (auth_user_put(db, uname, password ? json_string_value(password) : NULL,
                          (const char *const *)tags, ntags, err, sizeof err) != 0) {
            answered = mgmt_bad_request(c, "%s", err);
            goto out;
        }
    } else {
        auth_user_set_tags(db, uname, (const char *const *)tags, ntags);
    }
    server_auth_changed(c->m->srv);
    log_info(NULL, "management API: user '%s' %s user '%s'", c->user,
             existed ? "updated" : "created", uname);
    answered = mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
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
        perms = mgmt_map_sorted(&users[i]->permissions, cmp_permission, &np);
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
enum MHD_Result mgmt_api_users(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_user *u;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (c->nseg == 1) {
        json_t *arr = json_array();
        size_t n;
        const struct auth_user **users = auth_users_sorted(db, &n);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, user_json(users[i]));
        free(users);
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_user(c, c->seg[1]);
    if ((u = auth_user_find(db, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    if (c->nseg == 3)
        return mgmt_respond_json(c, MHD_HTTP_OK, permissions_json(db, u->name, NULL));
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        char *uname = xstrdup(u->name);
        auth_user_delete(db, uname);
        server_auth_changed(c->m->srv);
        log_info(NULL, "management API: user '%s' deleted user '%s'", c->user, uname);
        free(uname);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, user_json(u));
}

/* /api/vhosts/v/permissions */
enum MHD_Result mgmt_api_vhost_permissions(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    char *vname;
    json_t *arr;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (vh == NULL)
        return mgmt_not_found(c);
    vname = xstrndup_bytes(vh->name);
    arr = permissions_json(c->m->srv->auth, NULL, vname);
    free(vname);
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

/* /api/permissions[/v/u] */
enum MHD_Result mgmt_api_permissions(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_permission *p;
    const struct auth_user *u;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (c->nseg == 1)
        return mgmt_respond_json(c, MHD_HTTP_OK, permissions_json(db, NULL, NULL));
    if (mgmt_find_vhost(c, c->seg[1]) == NULL || (u = auth_user_find(db, c->seg[2])) == NULL)
        return mgmt_method_is(c, MHD_HTTP_METHOD_PUT)
                   ? mgmt_bad_request(c, "vhost_or_user_not_found")
                   : mgmt_not_found(c);
    p = auth_permission_find(db, c->seg[2], c->seg[1]);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT)) {
        enum MHD_Result answered = MHD_NO;
        json_t *body = mgmt_body_object(c, &answered);
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
            return mgmt_bad_request(c, "configure, write and read are required strings");
        }
        vname = xstrndup_bytes(c->seg[1]);
        rc = auth_permission_set(db, u->name, vname, conf, write, read, err, sizeof err);
        free(vname);
        json_decref(body);
        if (rc != 0)
            return mgmt_bad_request(c, "%s", err);
        server_auth_changed(c->m->srv);
        return mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
    }
    if (p == NULL)
        return mgmt_not_found(c);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        char *vname = xstrndup_bytes(c->seg[1]);
        auth_permission_clear(db, u->name, vname);
        free(vname);
        server_auth_changed(c->m->srv);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    {
        json_t *arr = json_array(), *one;
        add_permission_json(arr, u, p);
        one = json_incref(json_array_get(arr, 0));
        json_decref(arr);
        return mgmt_respond_json(c, MHD_HTTP_OK, one);
    }
}

/* /api/users/without-permissions: the users with no permissions in any vhost (topic
 * permissions do not count), as RabbitMQ lists them. */
enum MHD_Result mgmt_api_users_without_permissions(struct mgmt_call *c)
{
    json_t *arr;
    size_t n;
    const struct auth_user **users;

    if (!c->admin)
        return mgmt_not_admin(c);
    arr = json_array();
    users = auth_users_sorted(c->m->srv->auth, &n);
    for (size_t i = 0; i < n; i++) {
        if (users[i]->permissions.len == 0)
            json_array_append_new(arr, user_json(users[i]));
    }
    free(users);
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

/* POST /api/users/bulk-delete {"users": ["a", "b"]}: deleted in order, as RabbitMQ deletes
 * them; the first name that is no user stops it with 400 ["no_such_user", name], those
 * before it deleted. */
enum MHD_Result mgmt_api_users_bulk_delete(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    enum MHD_Result answered = MHD_NO;
    json_t *body, *users, *name;
    size_t i, deleted = 0;

    if (!c->admin)
        return mgmt_not_admin(c);
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    users = json_object_get(body, "users");
    if (users == NULL) {
        answered = mgmt_bad_request(c, "[{key_missing,users}]");
        goto out;
    }
    if (!json_is_array(users)) {
        answered = mgmt_bad_request(c, "users must be a list of user names");
        goto out;
    }
    json_array_foreach(users, i, name)
    {
        const struct auth_user *u =
            json_is_string(name) ? auth_user_find(db, mgmt_json_bytes_of(name)) : NULL;
        char *uname;
        if (u == NULL) {
            answered = mgmt_bad_request_term(c, "no_such_user", json_deep_copy(name));
            goto out;
        }
        uname = xstrdup(u->name);
        auth_user_delete(db, uname);
        log_info(NULL, "management API: user '%s' deleted user '%s'", c->user, uname);
        free(uname);
        deleted++;
    }
    answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
out:
    if (deleted > 0)
        server_auth_changed(c->m->srv);
    json_decref(body);
    return answered;
}
