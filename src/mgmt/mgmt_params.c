/* The management API: runtime parameters, global parameters and vhost limits.
 *
 * Warren has one runtime parameter component, vhost-limits, whose one parameter, "limits",
 * holds a vhost's max-connections and max-queues (struct auth_vhost keeps them; definitions
 * import and export carry them as this parameter). The components of RabbitMQ's plugins
 * (federation-upstream, shovel, ...) are refused as RabbitMQ refuses them when the plugin is
 * not enabled: "component ... not found".
 *
 *   GET    /api/parameters[/component[/vhost]]     the parameters, [] for other components
 *   GET    /api/parameters/component/vhost/name    one, or 404
 *   PUT    /api/parameters/vhost-limits/v/limits   {"value": {"max-connections": 10}}: all of
 *                                                  the vhost's limits at once
 *   DELETE /api/parameters/vhost-limits/v/limits   every limit of the vhost
 *   GET    /api/vhost-limits[/vhost]               [{"vhost": v, "value": {...}}]
 *   PUT    /api/vhost-limits/v/name                {"value": 10}: one limit
 *   DELETE /api/vhost-limits/v/name                one limit
 *   GET    /api/global-parameters[/name]           [{"name", "value"}], or one
 *   PUT    /api/global-parameters/name             {"value": any JSON}: 201 new, 204 replaced
 *   DELETE /api/global-parameters/name             204, or 404
 *
 * As in RabbitMQ, parameters are for administrators and the policymakers of the vhost,
 * setting a limit for administrators, and anyone sees the limits of the vhosts they see. A
 * refused value gets RabbitMQ's 400 reason, "Validation failed\n\n" and one line a fault.
 * A negative limit means none, as in RabbitMQ; Warren does not keep it. */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"

/* Global parameters are kept in the auth database (src/security/auth.h), which is stored and
 * exported as the definitions document: cluster_name is one (mgmt_node.c). */
#define LIMITS_COMPONENT "vhost-limits"
#define LIMITS_NAME      "limits" /* the one parameter of the component */

/* ---- Values ---------------------------------------------------------------------------- */

static bool has_limits(const struct auth_vhost *av)
{
    return av->max_connections >= 0 || av->max_queues >= 0;
}

/* The vhost's limits as RabbitMQ shows them; NULL when it has none. */
static json_t *limits_json(const struct auth_vhost *av)
{
    json_t *o;

    if (!has_limits(av))
        return NULL;
    o = json_object();
    if (av->max_connections >= 0)
        json_object_set_new(o, "max-connections", json_integer(av->max_connections));
    if (av->max_queues >= 0)
        json_object_set_new(o, "max-queues", json_integer(av->max_queues));
    return o;
}

/* v as Erlang's ~p shows the term RabbitMQ decoded it to: <<"text">> for a string, atoms
 * for true, false and null; numbers, lists and objects close to their JSON. */
static void erlang_term(const json_t *v, char *out, size_t size)
{
    char *text;

    if (json_is_string(v)) {
        snprintf(out, size, "<<\"%s\">>", json_string_value(v));
        return;
    }
    text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, size, "%s", text != NULL ? text : "?");
    free(text);
}

/* One line of a "Validation failed" reason. */
static void add_fault(char *reason, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_fault(char *reason, size_t size, const char *fmt, ...)
{
    size_t used = strlen(reason);
    va_list ap;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(reason + used, size - used, fmt, ap);
    va_end(ap);
    used = strlen(reason);
    if (used + 1 < size)
        strcat(reason, "\n");
}

/* Reads a vhost-limits value as rabbit_vhost_limit:validate/5 checks it (name is the
 * parameter's, for the texts): an object of integers under max-connections and max-queues.
 * 0 with *max_connections and *max_queues set (-1 for none), or -1 with reason set to
 * RabbitMQ's, its faults in its order. */
static int limits_from_json(const json_t *value, const char *name, int64_t *max_connections,
                            int64_t *max_queues, char *reason, size_t size)
{
    static const char *const keys[] = {"max-queues", "max-connections"}; /* fault order */
    char shown[300], unknown[600] = "";
    const char *key;
    const json_t *v;
    int faults = 0;

    snprintf(reason, size, "Validation failed\n\n");
    *max_connections = *max_queues = -1;
    if (!json_is_object(value)) {
        erlang_term(value, shown, sizeof shown);
        add_fault(reason, size, "%s not a list %s", name, shown);
        return -1;
    }
    json_object_foreach((json_t *)value, key, v)
    {
        size_t used = strlen(unknown);
        if (strcmp(key, "max-connections") == 0 || strcmp(key, "max-queues") == 0)
            continue;
        erlang_term(v, shown, sizeof shown);
        snprintf(unknown + used, sizeof unknown - used, "%s{<<\"%s\">>,%s}", used ? "," : "", key,
                 shown);
    }
    if (unknown[0] != '\0') {
        add_fault(reason, size, "Unrecognised terms [%s] in %s", unknown, name);
        faults++;
    }
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        int64_t *slot = i == 0 ? max_queues : max_connections;
        v = json_object_get(value, keys[i]);
        if (v == NULL)
            continue;
        if (!json_is_integer(v)) {
            erlang_term(v, shown, sizeof shown);
            add_fault(reason, size, "%s should be a number, actually was %s", keys[i], shown);
            faults++;
            continue;
        }
        *slot = json_integer_value(v) < 0 ? -1 : (int64_t)json_integer_value(v);
    }
    return faults > 0 ? -1 : 0;
}

/* ---- Access ---------------------------------------------------------------------------- */

/* Whether the user sees the vhost at all: monitoring sees every one. */
static bool sees_vhost(const struct mgmt_call *c, const struct vhost *vh)
{
    return c->monitor || mgmt_sees_objects_of(c, vh);
}

/* The vhost of a path segment; NULL after answering 404 (with RabbitMQ's vhost_not_found
 * for a change). */
static struct vhost *path_vhost(struct mgmt_call *c, struct wire_bytes name,
                                enum MHD_Result *answered)
{
    struct vhost *vh = mgmt_find_vhost(c, name);

    if (vh != NULL && auth_vhost_find(c->m->srv->auth, name) != NULL)
        return vh;
    *answered = mgmt_method_is(c, MHD_HTTP_METHOD_GET)
                    ? mgmt_not_found(c)
                    : mgmt_respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "vhost_not_found");
    return NULL;
}

/* Sets the vhost's limits, durably; a change of the auth database like any other. */
static void set_limits(struct mgmt_call *c, const struct auth_vhost *av, int64_t max_connections,
                       int64_t max_queues)
{
    auth_vhost_set_limits(c->m->srv->auth, av->name, max_connections, max_queues);
    server_auth_changed(c->m->srv);
    log_info(NULL,
             "management API: user '%s' set the limits of vhost '%s': max-connections %" PRId64
             ", max-queues %" PRId64 " (-1: none)",
             c->user, av->name, max_connections, max_queues);
}

/* ---- /api/parameters ------------------------------------------------------------------- */

static json_t *parameter_json(const struct auth_vhost *av, json_t *value)
{
    json_t *o = json_object();

    json_object_set_new(o, "vhost", json_string(av->name));
    json_object_set_new(o, "component", json_string(LIMITS_COMPONENT));
    json_object_set_new(o, "name", json_string(LIMITS_NAME));
    json_object_set_new(o, "value", value);
    return o;
}

/* PUT /api/parameters/component/vhost/name: checked in RabbitMQ's order (the body's value,
 * the component, the value itself). */
static enum MHD_Result put_parameter(struct mgmt_call *c, const struct auth_vhost *av)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    int64_t max_connections, max_queues;
    char reason[1024], *component = xstrndup_bytes(c->seg[1]), *name = xstrndup_bytes(c->seg[3]);
    bool existed = has_limits(av);

    if (body == NULL)
        goto out;
    if (json_object_get(body, "value") == NULL)
        answered = mgmt_bad_request(c, "[{key_missing,value}]");
    else if (strcmp(component, "policy") == 0)
        answered = mgmt_bad_request(c, "policies may not be set using this method");
    else if (strcmp(component, LIMITS_COMPONENT) != 0)
        answered = mgmt_bad_request(c, "Validation failed\n\ncomponent %s not found\n", component);
    else if (limits_from_json(json_object_get(body, "value"), name, &max_connections, &max_queues,
                              reason, sizeof reason) != 0)
        answered = mgmt_bad_request(c, "%s", reason);
    else if (strcmp(name, LIMITS_NAME) != 0)
        /* RabbitMQ stores it, then fails: the component has this one parameter. */
        answered = mgmt_bad_request(c, "the %s component has one parameter, '%s'", LIMITS_COMPONENT,
                                    LIMITS_NAME);
    else {
        set_limits(c, av, max_connections, max_queues);
        answered = mgmt_respond_empty(c, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
    }
out:
    free(component);
    free(name);
    json_decref(body);
    return answered;
}

enum MHD_Result mgmt_api_parameters(struct mgmt_call *c)
{
    bool limits = c->nseg >= 2 && wire_bytes_eq_cstr(c->seg[1], LIMITS_COMPONENT);
    const struct auth_vhost *av = NULL;
    struct vhost *vh = NULL;
    enum MHD_Result answered;

    if (!c->policymaker)
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access object");
    if (c->nseg >= 3) {
        if ((vh = path_vhost(c, c->seg[2], &answered)) == NULL)
            return answered;
        if (!mgmt_sees_objects_of(c, vh))
            return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                      "User not authorised to access object");
        av = auth_vhost_find(c->m->srv->auth, vh->name);
    }
    if (c->nseg <= 3) {
        /* Every component's (Warren's one is all there is), or one component's. */
        json_t *arr = json_array(), *value;
        size_t n;
        const struct auth_vhost **avs = auth_vhosts_sorted(c->m->srv->auth, &n);
        for (size_t i = 0; (c->nseg == 1 || limits) && i < n; i++) {
            struct vhost *v = mgmt_find_vhost(c, wire_cstr(avs[i]->name));
            if ((av != NULL && avs[i] != av) || v == NULL || !sees_vhost(c, v))
                continue;
            if ((value = limits_json(avs[i])) != NULL)
                json_array_append_new(arr, parameter_json(avs[i], value));
        }
        free(avs);
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_parameter(c, av);
    if (!limits || !wire_bytes_eq_cstr(c->seg[3], LIMITS_NAME) || !has_limits(av))
        return mgmt_not_found(c);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        set_limits(c, av, -1, -1);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, parameter_json(av, limits_json(av)));
}

/* ---- /api/vhost-limits ----------------------------------------------------------------- */

static json_t *vhost_limits_json(const struct auth_vhost *av, json_t *value)
{
    json_t *o = json_object();

    json_object_set_new(o, "vhost", json_string(av->name));
    json_object_set_new(o, "value", value);
    return o;
}

/* PUT {"value": V} or DELETE of one limit: the others stay, as rabbit_vhost_limit's
 * update_limit and clear_limit keep them. */
static enum MHD_Result change_limit(struct mgmt_call *c, const struct auth_vhost *av)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = NULL, *value = limits_json(av);
    int64_t max_connections, max_queues;
    char reason[1024], *name = xstrndup_bytes(c->seg[2]);

    if (value == NULL)
        value = json_object();
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        json_object_del(value, name);
    } else {
        if ((body = mgmt_body_object(c, &answered)) == NULL)
            goto out;
        if (json_object_get(body, "value") == NULL) {
            answered = mgmt_bad_request(c, "[{key_missing,value}]");
            goto out;
        }
        if (json_object_set(value, name, json_object_get(body, "value")) != 0) {
            /* A name jansson cannot hold (not UTF-8): no limit has it. */
            answered =
                mgmt_bad_request(c, "Validation failed\n\nUnrecognised terms in %s\n", LIMITS_NAME);
            goto out;
        }
    }
    if (limits_from_json(value, LIMITS_NAME, &max_connections, &max_queues, reason,
                         sizeof reason) != 0) {
        answered = mgmt_bad_request(c, "%s", reason);
        goto out;
    }
    set_limits(c, av, max_connections, max_queues);
    answered = mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
out:
    free(name);
    json_decref(value);
    json_decref(body);
    return answered;
}

enum MHD_Result mgmt_api_vhost_limits(struct mgmt_call *c)
{
    const struct auth_vhost *av = NULL;
    struct vhost *vh = NULL;
    enum MHD_Result answered;
    json_t *arr, *value;

    if (c->nseg >= 2) {
        if ((vh = path_vhost(c, c->seg[1], &answered)) == NULL)
            return answered;
        av = auth_vhost_find(c->m->srv->auth, vh->name);
    }
    if (c->nseg == 3) {
        if (!c->admin)
            return mgmt_not_admin(c);
        return change_limit(c, av);
    }
    if (vh != NULL && !sees_vhost(c, vh))
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access virtual host");
    arr = json_array();
    if (av != NULL) {
        if ((value = limits_json(av)) != NULL)
            json_array_append_new(arr, vhost_limits_json(av, value));
    } else {
        size_t n;
        const struct auth_vhost **avs = auth_vhosts_sorted(c->m->srv->auth, &n);
        for (size_t i = 0; i < n; i++) {
            struct vhost *v = mgmt_find_vhost(c, wire_cstr(avs[i]->name));
            if (v != NULL && sees_vhost(c, v) && (value = limits_json(avs[i])) != NULL)
                json_array_append_new(arr, vhost_limits_json(avs[i], value));
        }
        free(avs);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

/* ---- /api/global-parameters ------------------------------------------------------------ */

/* {"name": ..., "value": ...}; NULL for a value whose text does not parse (never stored). */
static json_t *global_parameter_json(const struct auth_global_parameter *g)
{
    json_t *value = json_loads(g->value_json, JSON_DECODE_ANY, NULL);

    return value != NULL ? json_pack("{s:s,s:o}", "name", g->name, "value", value) : NULL;
}

static enum MHD_Result put_global_parameter(struct mgmt_call *c)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    char *name = NULL, *text = NULL;

    if (body == NULL)
        return answered;
    if (json_object_get(body, "value") == NULL) {
        answered = mgmt_bad_request(c, "[{key_missing,value}]");
        goto out;
    }
    if (c->seg[1].len == 0 || memchr(c->seg[1].ptr, '\0', c->seg[1].len) != NULL ||
        c->seg[1].len > 255) {
        answered = mgmt_bad_request(c, "a global parameter's name is 1 to 255 bytes, without NUL");
        goto out;
    }
    name = xstrndup_bytes(c->seg[1]);
    text = json_dumps(json_object_get(body, "value"), JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL) {
        answered = mgmt_bad_request(c, "value: not JSON");
        goto out;
    }
    answered = mgmt_respond_empty(c, auth_global_parameter_set(c->m->srv->auth, name, text) == 1
                                         ? MHD_HTTP_CREATED
                                         : MHD_HTTP_NO_CONTENT);
    server_auth_changed(c->m->srv);
    log_info(NULL, "management API: user '%s' set the global parameter '%s'", c->user, name);
out:
    free(text);
    free(name);
    json_decref(body);
    return answered;
}

/* As in RabbitMQ, administrators and policymakers. */
enum MHD_Result mgmt_api_global_parameters(struct mgmt_call *c)
{
    struct auth_db *db = c->m->srv->auth;
    const struct auth_global_parameter *g;
    json_t *arr, *one;

    if (!c->policymaker)
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                                  "User not authorised to access object");
    if (c->nseg == 1) {
        size_t n;
        const struct auth_global_parameter **params = auth_global_parameters_sorted(db, &n);
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
            if ((one = global_parameter_json(params[i])) != NULL)
                json_array_append_new(arr, one);
        }
        free(params);
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_global_parameter(c);
    if ((g = auth_global_parameter_find(db, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        char *name = xstrdup(g->name);
        auth_global_parameter_clear(db, name);
        server_auth_changed(c->m->srv);
        log_info(NULL, "management API: user '%s' cleared the global parameter '%s'", c->user,
                 name);
        free(name);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if ((one = global_parameter_json(g)) == NULL)
        return mgmt_not_found(c);
    return mgmt_respond_json(c, MHD_HTTP_OK, one);
}
