/* Definitions export and import in RabbitMQ's format. */
#include "build_config.h"

#include "src/mgmt_defs.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/exchange_type.h"
#include "src/config.h"
#include "src/exchange.h"
#include "src/log.h"
#include "src/mgmt_json.h"
#include "src/ops.h"
#include "src/persist.h"
#include "src/queue.h"
#include "src/server.h"
#include "src/util.h"
#include "src/vhost.h"

/* The RabbitMQ release whose format this is; RabbitMQ reads rabbit_version to decide how to
 * import a file. */
#define DEFS_RABBITMQ_VERSION "3.10.8"

/* ---- Export ---------------------------------------------------------------------------- */

static int cmp_bytes(struct wire_bytes a, struct wire_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.ptr, b.ptr, n) : 0;

    return r != 0 ? r : (a.len > b.len) - (a.len < b.len);
}

static int cmp_vhost(const void *a, const void *b)
{
    return cmp_bytes((*(struct vhost *const *)a)->name, (*(struct vhost *const *)b)->name);
}

static int cmp_queue(const void *a, const void *b)
{
    return cmp_bytes((*(struct queue *const *)a)->name, (*(struct queue *const *)b)->name);
}

static int cmp_exchange(const void *a, const void *b)
{
    return cmp_bytes((*(struct exchange *const *)a)->name, (*(struct exchange *const *)b)->name);
}

static void **sorted(const struct hmap *map, int (*cmp)(const void *, const void *), size_t *n)
{
    void **out = xmalloc((map->len + 1) * sizeof *out);
    void *v;

    *n = 0;
    for (size_t i = 0; hmap_next(map, &i, &v);)
        out[(*n)++] = v;
    qsort(out, *n, sizeof *out, cmp);
    return out;
}

static bool exchange_exported(const struct vhost *vh, const struct exchange *x)
{
    return x != vh->default_exchange && !exchange_name_is_reserved(x->name);
}

static bool queue_exported(const struct queue *q)
{
    return !q->exclusive;
}

static json_t *table_json(struct wire_bytes raw)
{
    return mgmt_json_from_table((struct wire_table){.raw = raw});
}

static void export_vhost(json_t *doc, struct vhost *vh, bool with_vhost)
{
    json_t *queues = json_object_get(doc, "queues");
    json_t *exchanges = json_object_get(doc, "exchanges");
    json_t *bindings = json_object_get(doc, "bindings");
    size_t nx, nq;
    void **xs = sorted(&vh->exchanges, cmp_exchange, &nx);
    void **qs = sorted(&vh->queues, cmp_queue, &nq);

    for (size_t i = 0; i < nq; i++) {
        struct queue *q = qs[i];
        json_t *o = json_object();
        if (!queue_exported(q)) {
            json_decref(o);
            continue;
        }
        json_object_set_new(o, "name", mgmt_json_bytes(q->name));
        if (with_vhost)
            json_object_set_new(o, "vhost", mgmt_json_bytes(vh->name));
        json_object_set_new(o, "durable", json_boolean(q->durable));
        json_object_set_new(o, "auto_delete", json_boolean(q->auto_delete));
        json_object_set_new(o, "arguments", table_json(q->arguments));
        json_array_append_new(queues, o);
    }
    for (size_t i = 0; i < nx; i++) {
        struct exchange *x = xs[i];
        json_t *o;
        if (!exchange_exported(vh, x))
            continue;
        o = json_object();
        json_object_set_new(o, "name", mgmt_json_bytes(x->name));
        if (with_vhost)
            json_object_set_new(o, "vhost", mgmt_json_bytes(vh->name));
        json_object_set_new(o, "type", json_string(x->type->name));
        json_object_set_new(o, "durable", json_boolean(x->durable));
        json_object_set_new(o, "auto_delete", json_boolean(x->auto_delete));
        json_object_set_new(o, "internal", json_boolean(x->internal));
        json_object_set_new(o, "arguments", table_json(x->arguments));
        json_array_append_new(exchanges, o);
    }
    for (size_t i = 0; i < nx; i++) {
        struct exchange *x = xs[i];
        if (x == vh->default_exchange)
            continue;
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source) {
            const void *dest = xb->b.destination;
            bool to_queue = destination_kind(dest) == DEST_QUEUE;
            json_t *o;
            if (to_queue && !queue_exported(dest))
                continue;
            o = json_object();
            json_object_set_new(o, "source", mgmt_json_bytes(x->name));
            if (with_vhost)
                json_object_set_new(o, "vhost", mgmt_json_bytes(vh->name));
            json_object_set_new(o, "destination",
                                mgmt_json_bytes(to_queue ? ((const struct queue *)dest)->name
                                                         : ((const struct exchange *)dest)->name));
            json_object_set_new(o, "destination_type",
                                json_string(to_queue ? "queue" : "exchange"));
            json_object_set_new(o, "routing_key", mgmt_json_bytes(xb->b.routing_key));
            json_object_set_new(o, "arguments", table_json(xb->b.arguments.raw));
            json_array_append_new(bindings, o);
        }
    }
    free(xs);
    free(qs);
}

/* The configured user with its password hashed as RabbitMQ hashes it (salted SHA-256), so
 * the file imports into RabbitMQ. A fresh salt each time, as RabbitMQ's add_user draws. */
static json_t *export_config_user(const struct config *cfg)
{
    uint8_t hashed[4 + 32];
    unsigned int dlen = 32;
    char b64[sizeof hashed * 2];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    json_t *u = json_object(), *tags = json_array();

    if (RAND_bytes(hashed, 4) != 1)
        random_bytes(hashed, 4);
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, hashed, 4) != 1 ||
        EVP_DigestUpdate(md, cfg->default_pass, strlen(cfg->default_pass)) != 1 ||
        EVP_DigestFinal_ex(md, hashed + 4, &dlen) != 1) {
        log_error(NULL, "definitions export: SHA-256 failed; user '%s' exported without password",
                  cfg->default_user);
        b64[0] = '\0';
    } else {
        mgmt_base64_encode(hashed, sizeof hashed, b64);
    }
    EVP_MD_CTX_free(md);
    json_array_append_new(tags, json_string("administrator"));
    json_object_set_new(u, "name", json_string(cfg->default_user));
    json_object_set_new(u, "password_hash", json_string(b64));
    json_object_set_new(u, "hashing_algorithm", json_string("rabbit_password_hashing_sha256"));
    json_object_set_new(u, "tags", tags);
    json_object_set_new(u, "limits", json_object());
    return u;
}

json_t *mgmt_defs_export(struct server *s, struct vhost *only)
{
    const struct config *cfg = s->cfg;
    json_t *doc = json_object();

    json_object_set_new(doc, "rabbit_version", json_string(DEFS_RABBITMQ_VERSION));
    if (only == NULL) {
        json_t *users = json_array(), *vhosts = json_array(), *perms = json_array();
        json_t *p = json_object();
        size_t n;
        void **vhs = sorted(&s->vhosts, cmp_vhost, &n);

        json_object_set_new(doc, "rabbitmq_version", json_string(DEFS_RABBITMQ_VERSION));
        json_object_set_new(doc, "product_name", json_string("Warren"));
        json_object_set_new(doc, "product_version", json_string(PACKAGE_VERSION));
        json_array_append_new(users, export_config_user(cfg));
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_object();
            json_object_set_new(v, "name", mgmt_json_bytes(((struct vhost *)vhs[i])->name));
            json_array_append_new(vhosts, v);
        }
        json_object_set_new(p, "user", json_string(cfg->default_user));
        json_object_set_new(p, "vhost", json_string(cfg->default_vhost));
        json_object_set_new(p, "configure", json_string(".*"));
        json_object_set_new(p, "write", json_string(".*"));
        json_object_set_new(p, "read", json_string(".*"));
        json_array_append_new(perms, p);
        json_object_set_new(doc, "users", users);
        json_object_set_new(doc, "vhosts", vhosts);
        json_object_set_new(doc, "permissions", perms);
        json_object_set_new(doc, "topic_permissions", json_array());
        json_object_set_new(doc, "parameters", json_array());
        json_object_set_new(doc, "global_parameters", json_array());
        json_object_set_new(doc, "policies", json_array());
        json_object_set_new(doc, "queues", json_array());
        json_object_set_new(doc, "exchanges", json_array());
        json_object_set_new(doc, "bindings", json_array());
        for (size_t i = 0; i < n; i++)
            export_vhost(doc, vhs[i], true);
        free(vhs);
        return doc;
    }
    json_object_set_new(doc, "parameters", json_array());
    json_object_set_new(doc, "policies", json_array());
    json_object_set_new(doc, "queues", json_array());
    json_object_set_new(doc, "exchanges", json_array());
    json_object_set_new(doc, "bindings", json_array());
    export_vhost(doc, only, false);
    return doc;
}

/* ---- Import ---------------------------------------------------------------------------- */

struct import {
    struct server *s;
    struct vhost *only;
    char *err;
    size_t err_size;
};

static int fail(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct import *im, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(im->err, im->err_size, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const known_keys[] = {
    "rabbit_version", "rabbitmq_version",
    "product_name",   "product_version",
    "users",          "vhosts",
    "permissions",    "topic_permissions",
    "parameters",     "global_parameters",
    "policies",       "queues",
    "exchanges",      "bindings",
    "explanation",
};

/* The array under key; NULL when absent. -1 after failing when it is not an array. */
static int section(struct import *im, const json_t *doc, const char *key, const json_t **out)
{
    *out = json_object_get(doc, key);
    if (*out != NULL && !json_is_array(*out))
        return fail(im, "'%s' must be an array", key);
    return 0;
}

/* A string field of an entry; NULL after failing. */
static const char *field_string(struct import *im, const json_t *o, const char *what, size_t index,
                                const char *key, const char *def)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && def != NULL)
        return def;
    if (!json_is_string(v)) {
        fail(im, "%s #%zu: '%s' must be a string", what, index + 1, key);
        return NULL;
    }
    return json_string_value(v);
}

static int field_bool(struct import *im, const json_t *o, const char *what, size_t index,
                      const char *key, bool def, bool *out)
{
    const json_t *v = json_object_get(o, key);

    *out = def;
    if (v == NULL)
        return 0;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
        *out = true;
    else if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
        *out = false;
    else
        return fail(im, "%s #%zu: '%s' must be true or false", what, index + 1, key);
    return 0;
}

/* The vhost an entry goes to. NULL after failing. */
static struct vhost *entry_vhost(struct import *im, const json_t *o, const char *what, size_t index)
{
    const char *name;
    struct vhost *vh;

    if (im->only != NULL)
        return im->only;
    if ((name = field_string(im, o, what, index, "vhost", NULL)) == NULL)
        return NULL;
    vh = server_vhost_find(im->s, wire_cstr(name));
    if (vh == NULL)
        fail(im, "%s #%zu: vhost '%s' does not exist", what, index + 1, name);
    return vh;
}

static int entry_arguments(struct import *im, const json_t *o, const char *what, size_t index,
                           uint8_t **args, size_t *len)
{
    const json_t *v = json_object_get(o, "arguments");
    char why[256];

    if (v != NULL && json_is_array(v) && json_array_size(v) == 0)
        v = NULL;
    if (mgmt_json_to_table(v, args, len, why, sizeof why) != 0)
        return fail(im, "%s #%zu: arguments: %s", what, index + 1, why);
    return 0;
}

static int import_vhosts(struct import *im, const json_t *list)
{
    size_t i;
    const json_t *o;

    json_array_foreach(list, i, o)
    {
        const char *name = field_string(im, o, "vhost", i, "name", NULL);
        struct vhost *vh;
        if (name == NULL)
            return -1;
        if (name[0] == '\0' || strlen(name) > 255)
            return fail(im, "vhost #%zu: a name of 1 to 255 bytes is needed", i + 1);
        if (server_vhost_find(im->s, wire_cstr(name)) != NULL)
            continue;
        /* Set up as server_init and persist_open set up the default vhost. */
        vh = vhost_new(wire_cstr(name), im->s->loop);
        vh->default_delivery_limit = im->s->cfg->delivery_limit;
        if (im->s->persist != NULL) {
            vh->persist = im->s->persist;
            vh->spill_dir = im->s->persist->spill_dir;
            vh->memory_window = im->s->cfg->queue_memory_window;
        }
        hmap_put(&im->s->vhosts, vh->name, vh);
        log_info(NULL, "definitions: created vhost '%s'", name);
    }
    return 0;
}

static int import_exchanges(struct import *im, const json_t *list)
{
    size_t i;
    const json_t *o;

    json_array_foreach(list, i, o)
    {
        struct vhost *vh = entry_vhost(im, o, "exchange", i);
        const char *name, *type;
        bool durable, auto_delete, internal;
        uint8_t *args = NULL;
        size_t args_len = 0;
        struct ops_error err;
        int rc;

        if (vh == NULL || (name = field_string(im, o, "exchange", i, "name", NULL)) == NULL ||
            (type = field_string(im, o, "exchange", i, "type", NULL)) == NULL ||
            field_bool(im, o, "exchange", i, "durable", true, &durable) != 0 ||
            field_bool(im, o, "exchange", i, "auto_delete", false, &auto_delete) != 0 ||
            field_bool(im, o, "exchange", i, "internal", false, &internal) != 0 ||
            entry_arguments(im, o, "exchange", i, &args, &args_len) != 0)
            return -1;
        if (strlen(name) > 255)
            return fail(im, "exchange #%zu: name longer than 255 bytes", i + 1);
        /* amq.* exchanges exist in every vhost; a file may list them (RabbitMQ's own exports
         * do not), and declaring them again changes nothing. */
        if (exchange_name_is_reserved(wire_cstr(name)) &&
            vhost_exchange_find(vh, wire_cstr(name)) != NULL) {
            free(args);
            continue;
        }
        rc = ops_exchange_declare(vh, wire_cstr(name), wire_cstr(type), false, durable, auto_delete,
                                  internal, (struct wire_bytes){args, args_len}, NULL, &err);
        free(args);
        if (rc != 0)
            return fail(im, "exchange '%s' in vhost '%.*s': %s", name, (int)vh->name.len,
                        (const char *)vh->name.ptr, err.text);
    }
    return 0;
}

static int import_queues(struct import *im, const json_t *list)
{
    size_t i;
    const json_t *o;
    struct ops_actor actor = {0};

    json_array_foreach(list, i, o)
    {
        struct vhost *vh = entry_vhost(im, o, "queue", i);
        const char *name;
        bool durable, auto_delete;
        uint8_t *args = NULL;
        size_t args_len = 0;
        struct ops_error err;
        struct queue *q;
        int rc;

        if (vh == NULL || (name = field_string(im, o, "queue", i, "name", NULL)) == NULL ||
            field_bool(im, o, "queue", i, "durable", true, &durable) != 0 ||
            field_bool(im, o, "queue", i, "auto_delete", false, &auto_delete) != 0 ||
            entry_arguments(im, o, "queue", i, &args, &args_len) != 0)
            return -1;
        if (name[0] == '\0' || strlen(name) > 255)
            return fail(im, "queue #%zu: a name of 1 to 255 bytes is needed", i + 1);
        rc = ops_queue_declare(vh, &actor, wire_cstr(name), false, durable, false, auto_delete,
                               (struct wire_bytes){args, args_len}, &q, NULL, &err);
        free(args);
        if (rc != 0)
            return fail(im, "queue '%s' in vhost '%.*s': %s", name, (int)vh->name.len,
                        (const char *)vh->name.ptr, err.text);
    }
    return 0;
}

static int import_bindings(struct import *im, const json_t *list)
{
    size_t i;
    const json_t *o;
    struct ops_actor actor = {0};

    json_array_foreach(list, i, o)
    {
        struct vhost *vh = entry_vhost(im, o, "binding", i);
        const char *source, *dest, *type, *rk;
        uint8_t *args = NULL;
        size_t args_len = 0;
        struct ops_error err;
        bool to_exchange;
        int rc;

        if (vh == NULL || (source = field_string(im, o, "binding", i, "source", NULL)) == NULL ||
            (dest = field_string(im, o, "binding", i, "destination", NULL)) == NULL ||
            (type = field_string(im, o, "binding", i, "destination_type", NULL)) == NULL ||
            (rk = field_string(im, o, "binding", i, "routing_key", "")) == NULL ||
            entry_arguments(im, o, "binding", i, &args, &args_len) != 0)
            return -1;
        if (strcmp(type, "queue") != 0 && strcmp(type, "exchange") != 0) {
            free(args);
            return fail(im, "binding #%zu: destination_type must be queue or exchange", i + 1);
        }
        if (strlen(rk) > 255) {
            free(args);
            return fail(im, "binding #%zu: routing_key longer than 255 bytes", i + 1);
        }
        to_exchange = strcmp(type, "exchange") == 0;
        rc = ops_bind(vh, &actor, wire_cstr(source), wire_cstr(dest), to_exchange, wire_cstr(rk),
                      (struct wire_bytes){args, args_len}, &err);
        free(args);
        if (rc != 0)
            return fail(im, "binding of %s '%s' to exchange '%s' in vhost '%.*s': %s", type, dest,
                        source, (int)vh->name.len, (const char *)vh->name.ptr, err.text);
    }
    return 0;
}

int mgmt_defs_import(struct server *s, const json_t *doc, struct vhost *only, char *err,
                     size_t err_size)
{
    struct import im = {.s = s, .only = only, .err = err, .err_size = err_size};
    const json_t *vhosts, *exchanges, *queues, *bindings, *v;
    const char *key;

    json_object_foreach((json_t *)doc, key, v)
    {
        size_t k;
        for (k = 0; k < ARRAY_LEN(known_keys) && strcmp(key, known_keys[k]) != 0; k++)
            ;
        if (k == ARRAY_LEN(known_keys))
            log_warn(NULL, "definitions: unknown key '%s' ignored", key);
    }
    {
        static const char *const later[] = {"users",    "permissions", "topic_permissions",
                                            "policies", "parameters",  "global_parameters"};
        for (size_t k = 0; k < ARRAY_LEN(later); k++) {
            const json_t *l = json_object_get(doc, later[k]);
            if (json_is_array(l) && json_array_size(l) > 0)
                log_warn(NULL, "definitions: %zu %s not imported: Warren does not keep them yet",
                         json_array_size(l), later[k]);
        }
    }
    if (section(&im, doc, "vhosts", &vhosts) != 0 ||
        section(&im, doc, "exchanges", &exchanges) != 0 ||
        section(&im, doc, "queues", &queues) != 0 || section(&im, doc, "bindings", &bindings) != 0)
        return -1;
    if (vhosts != NULL && only == NULL && import_vhosts(&im, vhosts) != 0)
        return -1;
    if (exchanges != NULL && import_exchanges(&im, exchanges) != 0)
        return -1;
    if (queues != NULL && import_queues(&im, queues) != 0)
        return -1;
    if (bindings != NULL && import_bindings(&im, bindings) != 0)
        return -1;
    log_info(NULL, "definitions: imported %zu exchanges, %zu queues, %zu bindings",
             exchanges ? json_array_size(exchanges) : 0, queues ? json_array_size(queues) : 0,
             bindings ? json_array_size(bindings) : 0);
    return 0;
}
