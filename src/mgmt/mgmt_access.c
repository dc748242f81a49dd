/* The management API: topic permissions and user limits, with RabbitMQ 3.10's paths, shapes,
 * status codes and reasons. The broker enforces both (src/security/auth.h, src/broker/conn.c):
 * a topic permission on publish and bind, max-connections at connection.open and max-channels
 * at channel.open.
 *
 *   GET    /api/topic-permissions                  every one            administrators
 *   GET    /api/topic-permissions/v/u              the user's in v, 404 when none
 *   PUT    /api/topic-permissions/v/u              {"exchange", "write", "read"}: 201 when the
 *                                                  user had none in v, else 204
 *   DELETE /api/topic-permissions/v/u              all of the user's in v
 *   GET    /api/users/u/topic-permissions          the user's, 404 for no user
 *   GET    /api/vhosts/v/topic-permissions         the vhost's, 404 for no vhost
 *   GET    /api/user-limits[/u]                    [{"user", "value": {...}}]: administrators
 *                                                  see every user's, others their own
 *   PUT    /api/user-limits/u/NAME                 {"value": N}: max-connections or
 *                                                  max-channels (a negative N: no limit)
 *   DELETE /api/user-limits/u/NAME                 204, also when there was none */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"

/* ---- Topic permissions ----------------------------------------------------------------- */

static int cmp_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a map of named things (each value starts with its name's char *), sorted. */
static const char **names_sorted(const struct hmap *m, size_t *n)
{
    const char **out = xcalloc(m->len + 1, sizeof *out);
    void *v;

    *n = 0;
    for (size_t i = 0; hmap_next(m, &i, &v);)
        out[(*n)++] = *(const char *const *)v;
    qsort(out, *n, sizeof *out, cmp_string);
    return out;
}

/* The topic permissions of one user (or every one: only_user NULL) in one vhost (or every
 * one), by user, vhost and exchange. */
static json_t *topic_permissions_json(const struct auth_db *db, const char *only_user,
                                      const char *only_vhost)
{
    json_t *arr = json_array();
    size_t nu;
    const struct auth_user **users = auth_users_sorted(db, &nu);

    for (size_t i = 0; i < nu; i++) {
        size_t nv;
        const char **vhosts;
        if (only_user != NULL && strcmp(users[i]->name, only_user) != 0)
            continue;
        vhosts = names_sorted(&users[i]->topic_permissions, &nv);
        for (size_t k = 0; k < nv; k++) {
            const struct auth_topic_vhost *tv =
                hmap_get(&users[i]->topic_permissions, wire_cstr(vhosts[k]));
            size_t nx;
            const char **exchanges;
            if (only_vhost != NULL && strcmp(tv->vhost, only_vhost) != 0)
                continue;
            exchanges = names_sorted(&tv->exchanges, &nx);
            for (size_t e = 0; e < nx; e++) {
                const struct auth_topic_permission *tp =
                    hmap_get(&tv->exchanges, wire_cstr(exchanges[e]));
                json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s}", "user",
                                                     users[i]->name, "vhost", tv->vhost, "exchange",
                                                     tp->exchange, "write", tp->write.source,
                                                     "read", tp->read.source));
            }
            free(exchanges);
        }
        free(vhosts);
    }
    free(users);
    return arr;
}

static bool has_topic_permissions(const struct auth_user *u, const char *vhost)
{
    return hmap_get(&u->topic_permissions, wire_cstr(vhost)) != NULL;
}

/* PUT: the body's keys checked in RabbitMQ's order, then the patterns. */
static enum MHD_Result put_topic_permission(struct mgmt_call *c, const struct auth_user *u,
                                            const char *vhost)
{
    static const char *const keys[] = {"exchange", "write", "read"};
    struct auth_db *db = c->m->srv->auth;
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    const char *value[3];
    char err[AUTH_ERR_MAX];
    bool existed;

    if (body == NULL)
        return answered;
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const json_t *v = json_object_get(body, keys[i]);
        if (v == NULL) {
            answered = mgmt_bad_request(c, "[{key_missing,%s}]", keys[i]);
            goto out;
        }
        if (!json_is_string(v)) {
            answered = mgmt_bad_request(c, "%s must be a string", keys[i]);
            goto out;
        }
        value[i] = json_string_value(v);
    }
    existed = has_topic_permissions(u, vhost);
    if (auth_topic_permission_set(db, u->name, vhost, value[0], value[1], value[2], err,
                                  sizeof err) != 0) {
        answered = mgmt_bad_request(c, "%s", err);
        goto out;
    }
    server_auth_changed(c->m->srv);
    log_info(NULL,
             "management API: user '%s' set the topic permissions of user '%s' in vhost '%s' "
             "on exchange '%s'",
             c->user, u->name, vhost, value[0]);
    answered = mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    json_decref(body);
    return answered;
}

/* Every topic permission of the user in the vhost: RabbitMQ 3.10's API has no way to clear
 * one exchange's (a body naming one is ignored, as RabbitMQ ignores it). */
static enum MHD_Result delete_topic_permissions(struct mgmt_call *c, const struct auth_user *u,
                                                const char *vhost)
{
    if (auth_topic_permission_clear(c->m->srv->auth, u->name, vhost, NULL) != 0)
        return mgmt_not_found(c);
    server_auth_changed(c->m->srv);
    log_info(NULL, "management API: user '%s' cleared topic permissions of user '%s' in vhost '%s'",
             c->user, u->name, vhost);
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

/* /api/topic-permissions[/v/u] */
enum MHD_Result mgmt_api_topic_permissions(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_user *u;
    struct vhost *vh;
    enum MHD_Result answered;
    char *vhost;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (c->nseg == 1)
        return mgmt_respond_json(c, MHD_HTTP_OK, topic_permissions_json(db, NULL, NULL));
    vh = mgmt_find_vhost(c, c->seg[1]);
    u = auth_user_find(db, c->seg[2]);
    if (vh == NULL || u == NULL)
        return mgmt_method_is(c, MHD_HTTP_METHOD_PUT)
                   ? mgmt_bad_request(c, "vhost_or_user_not_found")
                   : mgmt_not_found(c);
    vhost = xstrndup_bytes(vh->name);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        answered = put_topic_permission(c, u, vhost);
    else if (!has_topic_permissions(u, vhost))
        answered = mgmt_not_found(c);
    else if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE))
        answered = delete_topic_permissions(c, u, vhost);
    else
        answered = mgmt_respond_json(c, MHD_HTTP_OK, topic_permissions_json(db, u->name, vhost));
    free(vhost);
    return answered;
}

/* /api/users/u/topic-permissions */
enum MHD_Result mgmt_api_user_topic_permissions(struct mgmt_call *c)
{
    const struct auth_user *u;

    if (!c->admin)
        return mgmt_not_admin(c);
    if ((u = auth_user_find(c->m->srv->auth, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    return mgmt_respond_json(c, MHD_HTTP_OK,
                             topic_permissions_json(c->m->srv->auth, u->name, NULL));
}

/* /api/vhosts/v/topic-permissions */
enum MHD_Result mgmt_api_vhost_topic_permissions(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    char *vhost;
    json_t *arr;

    if (!c->admin)
        return mgmt_not_admin(c);
    if (vh == NULL)
        return mgmt_not_found(c);
    vhost = xstrndup_bytes(vh->name);
    arr = topic_permissions_json(c->m->srv->auth, NULL, vhost);
    free(vhost);
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

/* ---- User limits ----------------------------------------------------------------------- */

static json_t *user_limits_value(const struct auth_user *u)
{
    json_t *o;

    if (u->max_connections < 0 && u->max_channels < 0)
        return NULL;
    o = json_object();
    if (u->max_connections >= 0)
        json_object_set_new(o, "max-connections", json_integer(u->max_connections));
    if (u->max_channels >= 0)
        json_object_set_new(o, "max-channels", json_integer(u->max_channels));
    return o;
}

static void add_user_limits(json_t *arr, const struct auth_user *u)
{
    json_t *value = user_limits_value(u);

    if (value != NULL)
        json_array_append_new(arr, json_pack("{s:s,s:o}", "user", u->name, "value", value));
}

/* PUT {"value": N} or DELETE of one limit. RabbitMQ's reasons: an unknown limit is an
 * "Unrecognised terms" validation failure, a value that is not an integer "should be a
 * number" (a string of digits too: user limits take no numeric strings). */
static enum MHD_Result change_user_limit(struct mgmt_call *c, const struct auth_user *u)
{
    enum MHD_Result answered = MHD_NO;
    int64_t max_connections = u->max_connections, max_channels = u->max_channels;
    int64_t *slot = NULL, limit = -1;
    char *name = xstrndup_bytes(c->seg[2]), *uname = xstrdup(u->name);
    json_t *body = NULL;
    const json_t *value;

    if (strcmp(name, "max-connections") == 0 && c->seg[2].len == strlen(name))
        slot = &max_connections;
    else if (strcmp(name, "max-channels") == 0 && c->seg[2].len == strlen(name))
        slot = &max_channels;
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT)) {
        if ((body = mgmt_body_object(c, &answered)) == NULL)
            goto out;
        if ((value = json_object_get(body, "value")) == NULL) {
            answered = mgmt_bad_request(c, "[{key_missing,value}]");
            goto out;
        }
        if (slot == NULL) {
            char *shown = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
            answered = mgmt_bad_request(c, "Unrecognised terms [{<<\"%s\">>,%s}] in user-limits",
                                        name, shown != NULL ? shown : "?");
            free(shown);
            goto out;
        }
        if (!json_is_integer(value)) {
            char *shown = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
            answered = json_is_string(value)
                           ? mgmt_bad_request(c, "%s should be a number, actually was <<%s>>", name,
                                              shown != NULL ? shown : "?")
                           : mgmt_bad_request(c, "%s should be a number, actually was %s", name,
                                              shown != NULL ? shown : "?");
            free(shown);
            goto out;
        }
        limit = json_integer_value(value) < 0 ? -1 : (int64_t)json_integer_value(value);
    }
    if (slot != NULL) {
        *slot = limit;
        auth_user_set_limits(c->m->srv->auth, uname, max_connections, max_channels);
        server_auth_changed(c->m->srv);
        log_info(NULL,
                 "management API: user '%s' set the limits of user '%s': max-connections %lld, "
                 "max-channels %lld (-1: none)",
                 c->user, uname, (long long)max_connections, (long long)max_channels);
    }
    answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
out:
    json_decref(body);
    free(name);
    free(uname);
    return answered;
}

/* /api/user-limits[/u[/name]] */
enum MHD_Result mgmt_api_user_limits(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_user *u = NULL;
    json_t *arr;

    if (c->nseg == 3) {
        if (!c->admin)
            return mgmt_not_admin(c);
        if ((u = auth_user_find(db, c->seg[1])) == NULL)
            return mgmt_bad_request_term(c, "no_such_user", mgmt_json_bytes(c->seg[1]));
        return change_user_limit(c, u);
    }
    arr = json_array();
    if (c->nseg == 2) {
        if ((u = auth_user_find(db, c->seg[1])) == NULL) {
            json_decref(arr);
            return mgmt_not_found(c);
        }
        if (c->admin || strcmp(u->name, c->user) == 0)
            add_user_limits(arr, u);
    } else {
        size_t n;
        const struct auth_user **users = auth_users_sorted(db, &n);
        for (size_t i = 0; i < n; i++) {
            if (c->admin || strcmp(users[i]->name, c->user) == 0)
                add_user_limits(arr, users[i]);
        }
        free(users);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}
