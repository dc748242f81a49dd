/* Import: a definitions document is checked whole (check_document), collecting its
 * exchanges, queues, bindings and policies into a struct definitions, and only then are its
 * users, vhosts, permissions, topic permissions and vhost limits applied to the auth database
 * (apply_document); from text, from a parsed document or from a file. */
#include "src/definitions/definitions.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/registry.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/definitions/definitions_internal.h"

#define DEFINITIONS_FILE_MAX_BYTES (64u << 20)

/* What is being imported, with the names the document itself defines (keys borrowed from
 * the document's strings): a permission may name a user defined earlier in the same file. */
struct definitions_import {
    struct auth_db *db;
    const json_t *doc;   /* borrowed until definitions_import_free() */
    const char *version; /* rabbitmq_version, else rabbit_version; may be NULL */
    struct hmap doc_users, doc_vhosts;
    struct definitions *defs;
    char *err;
    size_t err_size;
    unsigned section; /* the entity section being checked (entity_sections) ... */
    size_t index;     /* ... and its next item */
    bool rechecking;  /* the auth sections again, before they are applied: warned already */
    /* Recovering what this broker stored (definitions_recover): an entry the rules refuse
     * now is dropped, and remembered here so that it is neither checked again nor applied. */
    bool recovering;
    const json_t **dropped;
    size_t dropped_len;
};

static const char *const known_keys[] = {
    "rabbit_version", "rabbitmq_version",  "users",    "vhosts", "permissions", "topic_permissions",
    "parameters",     "global_parameters", "policies", "queues", "exchanges",   "bindings",
};

static bool user_known(const struct definitions_import *im, const char *name)
{
    struct wire_bytes key = wire_cstr(name);
    return hmap_get(&im->doc_users, key) != NULL || auth_user_find(im->db, key) != NULL;
}

static bool vhost_known(const struct definitions_import *im, const char *name)
{
    struct wire_bytes key = wire_cstr(name);
    return hmap_get(&im->doc_vhosts, key) != NULL || auth_vhost_find(im->db, key) != NULL;
}

/* A string member, or NULL when absent. A member of another type is an error. */
static int get_string(struct definitions_import *im, const char *where, const json_t *obj,
                      const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || (json_is_null(v) && !required)) {
        if (required) {
            definitions_set_err(im->err, im->err_size, "%s: missing \"%s\"", where, key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        definitions_set_err(im->err, im->err_size, "%s: \"%s\" is not a string", where, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int get_bool(struct definitions_import *im, const char *where, const json_t *obj,
                    const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);

    *out = false;
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        definitions_set_err(im->err, im->err_size, "%s: \"%s\" is not true or false", where, key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int get_table(struct definitions_import *im, const char *where, const json_t *obj,
                     const char *key, struct wire_table *out)
{
    char why[AUTH_ERR_MAX];

    if (definitions_json_to_table(json_object_get(obj, key), out, why, sizeof why) < 0) {
        definitions_set_err(im->err, im->err_size, "%s: \"%s\": %s", where, key, why);
        return -1;
    }
    return 0;
}

/* RabbitMQ's vhost check, with its wording; a missing vhost is its 'undefined'. */
static int check_vhost(struct definitions_import *im, const char *where, const char *vhost)
{
    if (vhost == NULL || !vhost_known(im, vhost)) {
        definitions_set_err(im->err, im->err_size, "%s: virtual host '%s' does not exist", where,
                            vhost != NULL ? vhost : "undefined");
        return -1;
    }
    return 0;
}

/* A JSON value as RabbitMQ's messages print it. */
static void describe(const json_t *v, char *out, size_t size)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

    snprintf(out, size, "%s", text != NULL ? text : "?");
    free(text);
}

/* ---- users ---- */

struct user_def {
    const char *name, *password, *password_hash;
    enum auth_hash_algorithm algorithm;
    const char **tags;
    size_t tags_len;
    char *tags_buf; /* the split copy of a comma-separated tags string */
    int64_t max_connections, max_channels;
};

static void user_def_free(struct user_def *u)
{
    free(u->tags);
    free(u->tags_buf);
}

static char *strip(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* tags: "a,b" (as exported before 3.9) or ["a","b"]; an empty piece is dropped, like
 * string:tokens. */
static int parse_tags(struct definitions_import *im, const char *where, const json_t *v,
                      struct user_def *u)
{
    size_t i;
    json_t *item;

    if (json_is_string(v)) {
        char *save = NULL, *piece;
        u->tags_buf = xstrdup(json_string_value(v));
        u->tags = xcalloc(strlen(u->tags_buf) / 2 + 1, sizeof *u->tags);
        for (piece = strtok_r(u->tags_buf, ",", &save); piece != NULL;
             piece = strtok_r(NULL, ",", &save)) {
            piece = strip(piece);
            if (*piece != '\0')
                u->tags[u->tags_len++] = piece;
        }
        return 0;
    }
    if (!json_is_array(v)) {
        definitions_set_err(im->err, im->err_size,
                            "%s: \"tags\" is not a string or an array of strings", where);
        return -1;
    }
    u->tags = xcalloc(json_array_size(v) + 1, sizeof *u->tags);
    json_array_foreach((json_t *)v, i, item)
    {
        if (!json_is_string(item)) {
            definitions_set_err(im->err, im->err_size, "%s: a tag is not a string", where);
            return -1;
        }
        u->tags[u->tags_len++] = json_string_value(item);
    }
    return 0;
}

/* User limits, validated as rabbit_auth_backend_internal:validate_user_limits does. */
static int parse_user_limits(struct definitions_import *im, const char *where, const json_t *v,
                             struct user_def *u)
{
    const char *key;
    json_t *value;
    char shown[128];

    u->max_connections = u->max_channels = -1;
    if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
        return 0;
    if (!json_is_object(v)) {
        definitions_set_err(im->err, im->err_size, "%s: \"limits\" is not an object", where);
        return -1;
    }
    json_object_foreach((json_t *)v, key, value)
    {
        int64_t *slot = strcmp(key, "max-connections") == 0 ? &u->max_connections
                        : strcmp(key, "max-channels") == 0  ? &u->max_channels
                                                            : NULL;
        if (slot == NULL) {
            definitions_set_err(
                im->err, im->err_size,
                "%s: limits: unrecognised limit '%s' (a user has max-connections and "
                "max-channels)",
                where, key);
            return -1;
        }
        if (!json_is_integer(value)) {
            describe(value, shown, sizeof shown);
            definitions_set_err(im->err, im->err_size,
                                "%s: limits: %s should be a number, actually was %s", where, key,
                                shown);
            return -1;
        }
        *slot = (int64_t)json_integer_value(value);
    }
    return 0;
}

/* Without hashing_algorithm, RabbitMQ guesses from the exporting version: MD5 before 3.6. */
static enum auth_hash_algorithm algorithm_for_version(const char *version)
{
    if (version != NULL && strncmp(version, "3.", 2) == 0 && version[2] >= '0' &&
        version[2] <= '5' && version[3] == '.')
        return AUTH_HASH_MD5;
    return AUTH_HASH_SHA256;
}

static int parse_user(struct definitions_import *im, size_t index, const json_t *obj,
                      struct user_def *u)
{
    char where[AUTH_ERR_MAX];
    const char *algorithm = NULL;
    json_t *tags, *admin;
    uint8_t hash[AUTH_HASH_MAX_BYTES];

    memset(u, 0, sizeof *u);
    snprintf(where, sizeof where, "users[%zu]", index);
    if (get_string(im, where, obj, "name", true, &u->name) < 0)
        return -1;
    snprintf(where, sizeof where, "users[%zu] '%s'", index, u->name);
    if (get_string(im, where, obj, "password", false, &u->password) < 0 ||
        get_string(im, where, obj, "password_hash", false, &u->password_hash) < 0 ||
        get_string(im, where, obj, "hashing_algorithm", false, &algorithm) < 0)
        return -1;
    if (u->password != NULL && u->password_hash != NULL) {
        definitions_set_err(im->err, im->err_size,
                            "%s: both password and password_hash are provided "
                            "(both_password_and_password_hash_are_provided)",
                            where);
        return -1;
    }
    u->algorithm = algorithm_for_version(im->version);
    if (algorithm != NULL && auth_hash_algorithm_parse(algorithm, &u->algorithm) < 0) {
        definitions_set_err(im->err, im->err_size, "%s: unknown hashing_algorithm '%s'", where,
                            algorithm);
        return -1;
    }
    if (u->password_hash != NULL) {
        int len = auth_base64_decode(u->password_hash, hash, sizeof hash);
        size_t want = auth_hash_length(u->algorithm);
        if (len < 0) {
            definitions_set_err(im->err, im->err_size,
                                "%s: password_hash is not base64 (not_base64)", where);
            return -1;
        }
        if (len != 0 && (size_t)len != want) {
            definitions_set_err(
                im->err, im->err_size,
                "%s: password_hash holds %d bytes, %s hashes are %zu (4 of salt and the "
                "digest)",
                where, len, auth_hash_algorithm_name(u->algorithm), want);
            return -1;
        }
    }
    tags = json_object_get(obj, "tags");
    admin = json_object_get(obj, "administrator");
    if (tags != NULL) {
        if (parse_tags(im, where, tags, u) < 0)
            return -1;
    } else if (admin != NULL) {
        /* Before tags existed (2.x) a user was an administrator or not. */
        bool is_admin = json_is_true(admin) ||
                        (json_is_string(admin) && strcmp(json_string_value(admin), "true") == 0);
        u->tags = xcalloc(1, sizeof *u->tags);
        if (is_admin)
            u->tags[u->tags_len++] = "administrator";
    } else {
        definitions_set_err(im->err, im->err_size, "%s: missing \"tags\" (tags_not_present)",
                            where);
        return -1;
    }
    return parse_user_limits(im, where, json_object_get(obj, "limits"), u);
}

static int apply_user(struct definitions_import *im, const struct user_def *u)
{
    struct auth_db *db = im->db;

    if (u->password != NULL) {
        if (auth_user_put(db, u->name, u->password, u->tags, u->tags_len, im->err, im->err_size) <
            0)
            return -1;
    } else {
        /* No password either way leaves the user without one: it can still be used with
         * mechanisms that need none (RabbitMQ: x509, other backends). */
        if (auth_user_put_hash(db, u->name, u->password_hash != NULL ? u->password_hash : "",
                               u->algorithm, im->err, im->err_size) < 0)
            return -1;
        auth_user_set_tags(db, u->name, u->tags, u->tags_len);
    }
    auth_user_set_limits(db, u->name, u->max_connections, u->max_channels);
    return 0;
}

/* ---- vhosts ---- */

struct vhost_def {
    const char *name, *description, *default_queue_type;
    const char **tags;
    size_t tags_len;
};

static int parse_vhost(struct definitions_import *im, size_t index, const json_t *obj,
                       struct vhost_def *v)
{
    char where[AUTH_ERR_MAX];
    json_t *metadata, *tags, *item;
    size_t i;

    memset(v, 0, sizeof *v);
    snprintf(where, sizeof where, "vhosts[%zu]", index);
    if (get_string(im, where, obj, "name", true, &v->name) < 0)
        return -1;
    /* RabbitMQ 3.10 creates a vhost named "" from a file, one that no URL of its management
     * API can name afterwards; Warren keeps to the rule of PUT /api/vhosts/NAME (and of
     * AMQP's shortstr), 1 to 255 bytes. */
    if (v->name[0] == '\0') {
        definitions_set_err(im->err, im->err_size, "%s: name must not be empty", where);
        return -1;
    }
    if (strlen(v->name) > 255) {
        definitions_set_err(im->err, im->err_size, "%s: name is longer than 255 bytes", where);
        return -1;
    }
    snprintf(where, sizeof where, "vhosts[%zu] '%s'", index, v->name);
    metadata = json_object_get(obj, "metadata");
    if (metadata != NULL && !json_is_object(metadata)) {
        definitions_set_err(im->err, im->err_size, "%s: \"metadata\" is not an object", where);
        return -1;
    }
    /* Top-level description and tags (3.8 style) win over metadata's, as in add_vhost. */
    if (get_string(im, where, obj, "description", false, &v->description) < 0 ||
        (v->description == NULL && metadata != NULL &&
         get_string(im, where, metadata, "description", false, &v->description) < 0) ||
        get_string(im, where, obj, "default_queue_type", false, &v->default_queue_type) < 0 ||
        (v->default_queue_type == NULL && metadata != NULL &&
         get_string(im, where, metadata, "default_queue_type", false, &v->default_queue_type) < 0))
        return -1;
    tags = json_object_get(obj, "tags");
    if (tags == NULL && metadata != NULL)
        tags = json_object_get(metadata, "tags");
    if (tags == NULL || json_is_null(tags))
        return 0;
    if (json_is_string(tags)) {
        /* RabbitMQ 3.10's export writes "tags": "" (and "a,b" for several): the names, split
         * at commas, go in one block after the pointers, so that free(v->tags) frees all. */
        const char *text = json_string_value(tags);
        size_t max = strlen(text) / 2 + 2;
        char *copy, *save = NULL, *piece;
        v->tags = xcalloc(1, max * sizeof *v->tags + strlen(text) + 1);
        copy = strcpy((char *)(v->tags + max), text);
        for (piece = strtok_r(copy, ",", &save); piece != NULL; piece = strtok_r(NULL, ",", &save)) {
            piece = strip(piece);
            if (*piece != '\0')
                v->tags[v->tags_len++] = piece;
        }
        return 0;
    }
    if (!json_is_array(tags)) {
        definitions_set_err(im->err, im->err_size,
                            "%s: \"tags\" is not a string or an array of strings", where);
        return -1;
    }
    v->tags = xcalloc(json_array_size(tags) + 1, sizeof *v->tags);
    json_array_foreach(tags, i, item)
    {
        if (!json_is_string(item)) {
            definitions_set_err(im->err, im->err_size, "%s: a tag is not a string", where);
            return -1;
        }
        v->tags[v->tags_len++] = json_string_value(item);
    }
    return 0;
}

/* ---- permissions ---- */

struct perm_def {
    const char *user, *vhost, *exchange; /* exchange: topic permissions only */
    const char *configure, *write, *read;
};

static int compile_check(struct definitions_import *im, const char *where, const char *what,
                         const char *pattern, const char *user, const char *vhost, bool topic)
{
    struct auth_pattern p;
    char why[AUTH_ERR_MAX];
    char *expanded;
    int rc;

    if (auth_pattern_compile(&p, pattern, why, sizeof why) < 0) {
        definitions_set_err(im->err, im->err_size, "%s: %s: %s", where, what, why);
        return -1;
    }
    auth_pattern_free(&p);
    if (!topic)
        return 0;
    /* A user or vhost name can turn a valid pattern into an invalid one ("^{username}" for
     * a user named "a(b"): refused here rather than at every publish. */
    expanded = auth_expand_topic_pattern(pattern, user, vhost, NULL);
    rc = auth_pattern_compile(&p, expanded, why, sizeof why);
    free(expanded);
    if (rc < 0) {
        definitions_set_err(im->err, im->err_size,
                            "%s: %s after expanding {username} and {vhost}: %s", where, what, why);
        return -1;
    }
    auth_pattern_free(&p);
    return 0;
}

static int parse_permission(struct definitions_import *im, const char *kind, size_t index,
                            const json_t *obj, bool topic, struct perm_def *p)
{
    char where[AUTH_ERR_MAX];

    memset(p, 0, sizeof *p);
    snprintf(where, sizeof where, "%s[%zu]", kind, index);
    if (get_string(im, where, obj, "user", true, &p->user) < 0 ||
        get_string(im, where, obj, "vhost", true, &p->vhost) < 0 ||
        (topic && get_string(im, where, obj, "exchange", true, &p->exchange) < 0) ||
        (!topic && get_string(im, where, obj, "configure", true, &p->configure) < 0) ||
        get_string(im, where, obj, "write", true, &p->write) < 0 ||
        get_string(im, where, obj, "read", true, &p->read) < 0)
        return -1;
    if (!user_known(im, p->user)) {
        definitions_set_err(im->err, im->err_size, "%s: user '%s' does not exist (no_such_user)",
                            where, p->user);
        return -1;
    }
    if (check_vhost(im, where, p->vhost) < 0)
        return -1;
    snprintf(where, sizeof where, "%s[%zu] (user '%s' in vhost '%s')", kind, index, p->user,
             p->vhost);
    if ((!topic &&
         compile_check(im, where, "configure", p->configure, p->user, p->vhost, false) < 0) ||
        compile_check(im, where, "write", p->write, p->user, p->vhost, topic) < 0 ||
        compile_check(im, where, "read", p->read, p->user, p->vhost, topic) < 0)
        return -1;
    return 0;
}

/* ---- parameters ---- */

/* vhost-limits is the one runtime parameter component that belongs to the auth database
 * (the vhost's limits); other components belong to plugins Warren does not have. */
static int parse_parameter(struct definitions_import *im, size_t index, const json_t *obj,
                           bool apply)
{
    char where[AUTH_ERR_MAX], shown[128];
    const char *component, *name, *vhost, *key;
    int64_t max_connections = -1, max_queues = -1;
    json_t *value, *v;

    snprintf(where, sizeof where, "parameters[%zu]", index);
    if (get_string(im, where, obj, "component", true, &component) < 0 ||
        get_string(im, where, obj, "name", true, &name) < 0 ||
        get_string(im, where, obj, "vhost", false, &vhost) < 0)
        return -1;
    snprintf(where, sizeof where, "parameters[%zu] %s '%s'", index, component, name);
    if (strcmp(component, "vhost-limits") != 0) {
        if (!apply && !im->rechecking)
            log_warn(NULL,
                     "definitions: %s: runtime parameter component '%s' is not supported, "
                     "ignored",
                     where, component);
        return 0;
    }
    if (check_vhost(im, where, vhost) < 0)
        return -1;
    value = json_object_get(obj, "value");
    if (!json_is_object(value)) {
        definitions_set_err(im->err, im->err_size, "%s: \"value\" is not an object", where);
        return -1;
    }
    json_object_foreach(value, key, v)
    {
        int64_t *slot = strcmp(key, "max-connections") == 0 ? &max_connections
                        : strcmp(key, "max-queues") == 0    ? &max_queues
                                                            : NULL;
        if (slot == NULL) {
            definitions_set_err(
                im->err, im->err_size,
                "%s: unrecognised limit '%s' (a vhost has max-connections and max-queues)", where,
                key);
            return -1;
        }
        if (!json_is_integer(v)) {
            describe(v, shown, sizeof shown);
            definitions_set_err(im->err, im->err_size, "%s: %s should be a number, actually was %s",
                                where, key, shown);
            return -1;
        }
        *slot = (int64_t)json_integer_value(v);
    }
    if (apply)
        auth_vhost_set_limits(im->db, vhost, max_connections, max_queues);
    return 0;
}

/* ---- exchanges, queues, bindings, policies ---- */

static bool amq_prefixed(const char *name)
{
    return strncmp(name, "amq.", 4) == 0;
}

static int parse_exchange(struct definitions_import *im, size_t index, const json_t *obj)
{
    char where[AUTH_ERR_MAX];
    const char *name, *vhost, *type;
    bool durable, auto_delete, internal;
    struct wire_table args;

    snprintf(where, sizeof where, "exchanges[%zu]", index);
    if (get_string(im, where, obj, "name", true, &name) < 0)
        return -1;
    snprintf(where, sizeof where, "exchanges[%zu] '%s'", index, name);
    if (get_string(im, where, obj, "vhost", false, &vhost) < 0 || check_vhost(im, where, vhost) < 0)
        return -1;
    snprintf(where, sizeof where, "exchanges[%zu] '%s' in vhost '%s'", index, name, vhost);
    if (get_string(im, where, obj, "type", true, &type) < 0)
        return -1;
    if (exchange_type_find(wire_cstr(type)) == NULL) {
        /* RabbitMQ: {amqp_error, command_invalid, "unknown exchange type '...'"} */
        definitions_set_err(im->err, im->err_size, "%s: %s exchange type '%s'", where,
                            type[0] == '\0' ? "invalid" : "unknown", type);
        return -1;
    }
    if (get_bool(im, where, obj, "durable", &durable) < 0 ||
        get_bool(im, where, obj, "auto_delete", &auto_delete) < 0 ||
        get_bool(im, where, obj, "internal", &internal) < 0 ||
        get_table(im, where, obj, "arguments", &args) < 0)
        return -1;
    if (name[0] == '\0' || amq_prefixed(name)) {
        log_warn(NULL, "definitions: %s: not importing %s", where,
                 name[0] == '\0' ? "the default exchange" : "an exchange named amq.*");
        definitions_table_free(&args);
        return 0;
    }
    definitions_add_exchange(im->defs, vhost, name, type, durable, auto_delete, internal, args);
    definitions_table_free(&args);
    return 0;
}

static int parse_queue(struct definitions_import *im, size_t index, const json_t *obj)
{
    char where[AUTH_ERR_MAX];
    const char *name, *vhost;
    bool durable, auto_delete;
    struct wire_table args;

    snprintf(where, sizeof where, "queues[%zu]", index);
    if (get_string(im, where, obj, "name", true, &name) < 0)
        return -1;
    snprintf(where, sizeof where, "queues[%zu] '%s'", index, name);
    if (get_string(im, where, obj, "vhost", false, &vhost) < 0 || check_vhost(im, where, vhost) < 0)
        return -1;
    snprintf(where, sizeof where, "queues[%zu] '%s' in vhost '%s'", index, name, vhost);
    if (get_bool(im, where, obj, "durable", &durable) < 0 ||
        get_bool(im, where, obj, "auto_delete", &auto_delete) < 0 ||
        get_table(im, where, obj, "arguments", &args) < 0)
        return -1;
    if (amq_prefixed(name)) {
        log_warn(NULL, "definitions: %s: not importing a queue named amq.*", where);
        definitions_table_free(&args);
        return 0;
    }
    definitions_add_queue(im->defs, vhost, name, durable, auto_delete, args);
    definitions_table_free(&args);
    return 0;
}

static int parse_binding(struct definitions_import *im, size_t index, const json_t *obj)
{
    char where[AUTH_ERR_MAX];
    const char *vhost, *source, *destination, *dest_type, *routing_key;
    struct wire_table args;

    snprintf(where, sizeof where, "bindings[%zu]", index);
    if (get_string(im, where, obj, "vhost", false, &vhost) < 0 ||
        check_vhost(im, where, vhost) < 0 ||
        get_string(im, where, obj, "source", true, &source) < 0 ||
        get_string(im, where, obj, "destination", true, &destination) < 0 ||
        get_string(im, where, obj, "destination_type", true, &dest_type) < 0 ||
        get_string(im, where, obj, "routing_key", false, &routing_key) < 0)
        return -1;
    if (strcmp(dest_type, "queue") != 0 && strcmp(dest_type, "exchange") != 0) {
        definitions_set_err(im->err, im->err_size,
                            "%s: destination_type '%s' is neither \"queue\" nor \"exchange\"",
                            where, dest_type);
        return -1;
    }
    if (get_table(im, where, obj, "arguments", &args) < 0)
        return -1;
    definitions_add_binding(im->defs, vhost, source, destination,
                            strcmp(dest_type, "exchange") == 0,
                            routing_key != NULL ? routing_key : "", args);
    definitions_table_free(&args);
    return 0;
}

static int parse_policy(struct definitions_import *im, size_t index, const json_t *obj)
{
    static const char *const apply_to_values[] = {
        "all", "queues", "exchanges", "classic_queues", "quorum_queues", "streams"};
    char where[AUTH_ERR_MAX];
    const char *name, *vhost, *pattern, *apply_to;
    json_t *definition, *priority;
    struct wire_table table;
    bool apply_to_known = false;

    snprintf(where, sizeof where, "policies[%zu]", index);
    if (get_string(im, where, obj, "vhost", false, &vhost) < 0 ||
        get_string(im, where, obj, "name", false, &name) < 0)
        return -1;
    if (name == NULL) {
        definitions_set_err(im->err, im->err_size,
                            "%s: policy in virtual host '%s' has undefined name", where,
                            vhost != NULL ? vhost : "undefined");
        return -1;
    }
    snprintf(where, sizeof where, "policies[%zu] '%s'", index, name);
    if (check_vhost(im, where, vhost) < 0)
        return -1;
    snprintf(where, sizeof where, "policies[%zu] '%s' in vhost '%s'", index, name, vhost);
    if (get_string(im, where, obj, "pattern", true, &pattern) < 0 ||
        compile_check(im, where, "pattern", pattern, NULL, NULL, false) < 0 ||
        get_string(im, where, obj, "apply-to", false, &apply_to) < 0)
        return -1;
    if (apply_to == NULL)
        apply_to = "all";
    for (size_t i = 0; i < ARRAY_LEN(apply_to_values); i++)
        apply_to_known = apply_to_known || strcmp(apply_to, apply_to_values[i]) == 0;
    if (!apply_to_known) {
        definitions_set_err(im->err, im->err_size, "%s: '%s' is not a valid apply-to value", where,
                            apply_to);
        return -1;
    }
    priority = json_object_get(obj, "priority");
    if (priority != NULL && !json_is_integer(priority)) {
        definitions_set_err(im->err, im->err_size, "%s: \"priority\" is not an integer", where);
        return -1;
    }
    definition = json_object_get(obj, "definition");
    if (!json_is_object(definition) || json_object_size(definition) == 0) {
        definitions_set_err(im->err, im->err_size, "%s: \"definition\" is not a non-empty object",
                            where);
        return -1;
    }
    if (get_table(im, where, obj, "definition", &table) < 0)
        return -1;
    definitions_add_policy(im->defs, vhost, name, pattern, apply_to,
                           priority != NULL ? (int64_t)json_integer_value(priority) : 0, table);
    definitions_table_free(&table);
    return 0;
}

/* ---- the document ---- */

static const json_t *section(const json_t *doc, const char *key)
{
    return json_object_get(doc, key);
}

/* Whether the index'th entry of a section is an object. RabbitMQ 3.10 skips any other entry
 * without a word (rabbit_definitions' for_all functions take only "M <- List, is_map(M)") and
 * so does Warren, but it says so in the log. */
static bool is_entry(const char *key, size_t index, const json_t *item)
{
    char what[64];

    if (json_is_object(item))
        return true;
    describe(item, what, sizeof what);
    log_warn(NULL, "definitions: %s[%zu] is not an object but %s: skipped, as RabbitMQ skips it",
             key, index, what);
    return false;
}

/* The top level: unknown keys are warned about and skipped, every known section but the
 * versions must be an array (or null). */
static int check_keys(struct definitions_import *im, const json_t *doc)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)doc, key, value)
    {
        bool known = false;
        /* RabbitMQ's own exports name the product; nothing to import there. */
        if (strcmp(key, "product_name") == 0 || strcmp(key, "product_version") == 0)
            continue;
        for (size_t k = 0; k < ARRAY_LEN(known_keys); k++)
            known = known || strcmp(key, known_keys[k]) == 0;
        if (!known) {
            log_warn(NULL, "definitions: unknown key '%s' ignored", key);
            continue;
        }
        if (strstr(key, "version") == NULL && !json_is_array(value) && !json_is_null(value)) {
            definitions_set_err(im->err, im->err_size, "\"%s\" is not an array", key);
            return -1;
        }
    }
    return 0;
}

/* A global parameter: a name (a non-empty string) and a value (any JSON), as
 * rabbit_runtime_parameters:set_global takes them. Its value as JSON text in *value_json
 * (free it) when value_json is not NULL. */
static int parse_global_parameter(struct definitions_import *im, size_t index, const json_t *item,
                                  const char **name, char **value_json)
{
    char where[64];
    const json_t *value = json_object_get(item, "value");

    snprintf(where, sizeof where, "global_parameters[%zu]", index);
    if (get_string(im, where, item, "name", true, name) < 0)
        return -1;
    if ((*name)[0] == '\0') {
        definitions_set_err(im->err, im->err_size, "%s: name must not be empty", where);
        return -1;
    }
    if (value == NULL) {
        definitions_set_err(im->err, im->err_size, "%s '%s': missing \"value\"", where, *name);
        return -1;
    }
    if (value_json != NULL)
        *value_json = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    return 0;
}

/* After an entry of the auth sections failed its check (reason in im->err): -1 to refuse the
 * document, or 0 when recovering, the entry dropped. */
static int refuse_entry(struct definitions_import *im, const json_t *item)
{
    if (!im->recovering)
        return -1;
    log_error(NULL, "definitions: %s: dropped from the stored users and permissions", im->err);
    im->dropped = xrealloc(im->dropped, (im->dropped_len + 1) * sizeof *im->dropped);
    im->dropped[im->dropped_len++] = item;
    return 0;
}

static bool was_dropped(const struct definitions_import *im, const json_t *item)
{
    for (size_t i = 0; i < im->dropped_len; i++) {
        if (im->dropped[i] == item)
            return true;
    }
    return false;
}

/* The sections that go to the auth database: users, vhosts, permissions, topic permissions
 * and parameters. */
static int check_auth_sections(struct definitions_import *im, const json_t *doc)
{
    json_t *item;
    size_t i;

    /* Non-objects in a section are skipped, as rabbit_definitions skips them (is_map). */
    json_array_foreach(section(doc, "users"), i, item)
    {
        struct user_def u;
        int rc;
        if (!is_entry("users", i, item) || was_dropped(im, item))
            continue;
        rc = parse_user(im, i, item, &u);
        if (rc == 0)
            hmap_put(&im->doc_users, wire_cstr(u.name), (void *)u.name);
        user_def_free(&u);
        if (rc < 0 && refuse_entry(im, item) < 0)
            return -1;
    }
    json_array_foreach(section(doc, "vhosts"), i, item)
    {
        struct vhost_def v;
        int rc;
        if (!is_entry("vhosts", i, item) || was_dropped(im, item))
            continue;
        rc = parse_vhost(im, i, item, &v);
        if (rc == 0)
            hmap_put(&im->doc_vhosts, wire_cstr(v.name), (void *)v.name);
        free(v.tags);
        if (rc < 0 && refuse_entry(im, item) < 0)
            return -1;
    }
    json_array_foreach(section(doc, "permissions"), i, item)
    {
        struct perm_def p;
        if (is_entry("permissions", i, item) && !was_dropped(im, item) &&
            parse_permission(im, "permissions", i, item, false, &p) < 0 &&
            refuse_entry(im, item) < 0)
            return -1;
    }
    json_array_foreach(section(doc, "topic_permissions"), i, item)
    {
        struct perm_def p;
        if (is_entry("topic_permissions", i, item) && !was_dropped(im, item) &&
            parse_permission(im, "topic_permissions", i, item, true, &p) < 0 &&
            refuse_entry(im, item) < 0)
            return -1;
    }
    json_array_foreach(section(doc, "parameters"), i, item)
    {
        if (is_entry("parameters", i, item) && !was_dropped(im, item) &&
            parse_parameter(im, i, item, false) < 0 && refuse_entry(im, item) < 0)
            return -1;
    }
    json_array_foreach(section(doc, "global_parameters"), i, item)
    {
        const char *name;
        if (is_entry("global_parameters", i, item) && !was_dropped(im, item) &&
            parse_global_parameter(im, i, item, &name, NULL) < 0 && refuse_entry(im, item) < 0)
            return -1;
    }
    return 0;
}

/* The sections collected into struct definitions, checked in this order. */
static const char *const entity_sections[] = {"exchanges", "policies", "queues", "bindings"};
static int (*const entity_parsers[])(struct definitions_import *, size_t, const json_t *) = {
    parse_exchange, parse_policy, parse_queue, parse_binding};

/* Up to max more items of the entity sections: 1 while some are left, 0 when all are
 * checked, -1 at the first error. */
static int check_entities(struct definitions_import *im, size_t max)
{
    while (im->section < ARRAY_LEN(entity_sections) && max > 0) {
        const json_t *list = section(im->doc, entity_sections[im->section]);
        const json_t *item;
        if (im->index >= json_array_size(list)) {
            im->section++;
            im->index = 0;
            continue;
        }
        item = json_array_get(list, im->index);
        if (is_entry(entity_sections[im->section], im->index, item) &&
            entity_parsers[im->section](im, im->index, item) < 0)
            return -1;
        im->index++;
        max--;
    }
    return im->section < ARRAY_LEN(entity_sections) ? 1 : 0;
}

/* The checked document's users, vhosts, permissions and limits into the database, in
 * RabbitMQ's order. Nothing here fails but the random generator for a plaintext password. */
static int apply_document(struct definitions_import *im, const json_t *doc)
{
    json_t *item;
    size_t i;

    json_array_foreach(section(doc, "users"), i, item)
    {
        struct user_def u;
        int rc;
        if (!json_is_object(item) || was_dropped(im, item))
            continue;
        rc = parse_user(im, i, item, &u);
        assert(rc == 0);
        rc = apply_user(im, &u);
        user_def_free(&u);
        if (rc < 0)
            return -1;
    }
    json_array_foreach(section(doc, "vhosts"), i, item)
    {
        struct vhost_def v;
        int rc;
        if (!json_is_object(item) || was_dropped(im, item))
            continue;
        rc = parse_vhost(im, i, item, &v);
        assert(rc == 0);
        (void)rc;
        auth_vhost_put(im->db, v.name, v.description, v.tags, v.tags_len, v.default_queue_type);
        free(v.tags);
    }
    json_array_foreach(section(doc, "permissions"), i, item)
    {
        struct perm_def p;
        if (!json_is_object(item) || was_dropped(im, item))
            continue;
        if (parse_permission(im, "permissions", i, item, false, &p) < 0 ||
            auth_permission_set(im->db, p.user, p.vhost, p.configure, p.write, p.read, im->err,
                                im->err_size) < 0)
            assert(false); /* checked above */
    }
    json_array_foreach(section(doc, "topic_permissions"), i, item)
    {
        struct perm_def p;
        if (!json_is_object(item) || was_dropped(im, item))
            continue;
        if (parse_permission(im, "topic_permissions", i, item, true, &p) < 0 ||
            auth_topic_permission_set(im->db, p.user, p.vhost, p.exchange, p.write, p.read, im->err,
                                      im->err_size) < 0)
            assert(false);
    }
    json_array_foreach(section(doc, "parameters"), i, item)
    {
        if (json_is_object(item) && !was_dropped(im, item))
            parse_parameter(im, i, item, true);
    }
    json_array_foreach(section(doc, "global_parameters"), i, item)
    {
        const char *name;
        char *value_json = NULL;
        if (!json_is_object(item) || was_dropped(im, item))
            continue;
        if (parse_global_parameter(im, i, item, &name, &value_json) == 0 && value_json != NULL)
            auth_global_parameter_set(im->db, name, value_json);
        else
            assert(false); /* checked above */
        free(value_json);
    }
    return 0;
}

void definitions_import_free(struct definitions_import *im)
{
    if (im == NULL)
        return;
    definitions_free(im->defs);
    hmap_free(&im->doc_users);
    hmap_free(&im->doc_vhosts);
    free(im->dropped);
    free(im);
}

static struct definitions_import *import_begin(struct auth_db *db, const json_t *doc,
                                               bool recovering, char *err, size_t err_size)
{
    struct definitions_import *im = xcalloc(1, sizeof *im);
    json_t *version;

    *im = (struct definitions_import){.db = db,
                                      .doc = doc,
                                      .defs = definitions_new(),
                                      .err = err,
                                      .err_size = err_size,
                                      .recovering = recovering};
    hmap_init(&im->doc_users);
    hmap_init(&im->doc_vhosts);
    if (!json_is_object(doc)) {
        definitions_set_err(err, err_size,
                            "not a definitions document: the top level is not an object");
        goto fail;
    }
    version = json_object_get(doc, "rabbitmq_version");
    if (!json_is_string(version))
        version = json_object_get(doc, "rabbit_version");
    im->version = json_is_string(version) ? json_string_value(version) : NULL;
    if (check_keys(im, doc) < 0 || check_auth_sections(im, doc) < 0)
        goto fail;
    return im;
fail:
    definitions_import_free(im);
    return NULL;
}

struct definitions_import *definitions_import_begin(struct auth_db *db, const json_t *doc,
                                                    char *err, size_t err_size)
{
    return import_begin(db, doc, false, err, err_size);
}

int definitions_import_step(struct definitions_import *im, size_t max_items, char *err,
                            size_t err_size)
{
    im->err = err;
    im->err_size = err_size;
    return check_entities(im, max_items);
}

int definitions_import_finish(struct definitions_import *im, struct definitions **out, char *err,
                              size_t err_size)
{
    im->err = err;
    im->err_size = err_size;
    assert(im->section == ARRAY_LEN(entity_sections));
    /* Checked again: between steps the database may have lost a user or vhost that a
     * permission names. In the same loop turn as the changes, so nothing comes between. */
    im->rechecking = true;
    if (check_auth_sections(im, im->doc) < 0 || apply_document(im, im->doc) < 0)
        return -1;
    if (out != NULL) {
        *out = im->defs;
        im->defs = NULL;
    }
    return 0;
}

static int import_json(struct auth_db *db, const json_t *doc, bool recovering,
                       struct definitions **out, char *err, size_t err_size)
{
    struct definitions_import *im = import_begin(db, doc, recovering, err, err_size);
    int rc = -1;

    if (out != NULL)
        *out = NULL;
    if (im != NULL && definitions_import_step(im, SIZE_MAX, err, err_size) == 0 &&
        definitions_import_finish(im, out, err, err_size) == 0)
        rc = 0;
    definitions_import_free(im);
    return rc;
}

int definitions_import_json(struct auth_db *db, const json_t *doc, struct definitions **out,
                            char *err, size_t err_size)
{
    return import_json(db, doc, false, out, err, err_size);
}

static int import_text(struct auth_db *db, const char *text, size_t len, bool recovering,
                       struct definitions **out, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *doc;
    int rc;

    if (out != NULL)
        *out = NULL;
    /* jansson refuses \u0000 in strings by default: every name stays a C string. */
    if ((doc = json_loadb(text, len, 0, &jerr)) == NULL) {
        definitions_set_err(err, err_size, "not valid JSON (line %d, column %d): %s", jerr.line,
                            jerr.column, jerr.text);
        return -1;
    }
    rc = import_json(db, doc, recovering, out, err, err_size);
    json_decref(doc);
    return rc;
}

int definitions_import(struct auth_db *db, const char *text, size_t len, struct definitions **out,
                       char *err, size_t err_size)
{
    return import_text(db, text, len, false, out, err, err_size);
}

int definitions_recover(struct auth_db *db, const char *text, size_t len, char *err,
                        size_t err_size)
{
    return import_text(db, text, len, true, NULL, err, err_size);
}

int definitions_import_file(struct auth_db *db, const char *path, struct definitions **out,
                            char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL, why[AUTH_ERR_MAX];
    size_t len = 0, cap = 0, n;
    int rc = -1;

    if (out != NULL)
        *out = NULL;
    if (f == NULL) {
        definitions_set_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    do {
        if (len == cap) {
            if (cap >= DEFINITIONS_FILE_MAX_BYTES) {
                definitions_set_err(err, err_size, "%s: larger than %u bytes", path,
                                    DEFINITIONS_FILE_MAX_BYTES);
                goto out;
            }
            cap = cap == 0 ? 65536 : cap * 2;
            text = xrealloc(text, cap);
        }
        len += n = fread(text + len, 1, cap - len, f);
    } while (n > 0);
    if (ferror(f)) {
        definitions_set_err(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = definitions_import(db, text, len, out, why, sizeof why)) < 0)
        definitions_set_err(err, err_size, "%s: %s", path, why);
out:
    free(text);
    fclose(f);
    return rc;
}
