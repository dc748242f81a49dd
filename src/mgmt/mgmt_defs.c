/* Definitions export and import in RabbitMQ's format. */
#include "build_config.h"

#include "src/mgmt/mgmt_defs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/exchange_type.h"
#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/definitions/definitions.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/ops.h"
#include "src/security/auth.h"

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

/* A vhost's policies and its vhost-limits parameter, without "vhost" fields, as RabbitMQ's
 * per-vhost export has them. */
static void export_vhost_settings(json_t *doc, struct server *s, struct vhost *vh)
{
    const struct auth_vhost *av = auth_vhost_find(s->auth, vh->name);
    size_t np;
    struct policy *const *policies = policy_list(vh, &np, false);

    for (size_t i = 0; i < np; i++) {
        const struct policy *p = policies[i];
        json_array_append_new(json_object_get(doc, "policies"),
                              json_pack("{s:s, s:s, s:s, s:o, s:I}", "name", p->name, "pattern",
                                        p->pattern_source, "apply-to",
                                        p->apply_to == POLICY_QUEUES      ? "queues"
                                        : p->apply_to == POLICY_EXCHANGES ? "exchanges"
                                                                          : "all",
                                        "definition", table_json(p->definition), "priority",
                                        (json_int_t)p->priority));
    }
    if (av != NULL && (av->max_connections >= 0 || av->max_queues >= 0)) {
        json_t *limits = json_object();
        if (av->max_connections >= 0)
            json_object_set_new(limits, "max-connections", json_integer(av->max_connections));
        if (av->max_queues >= 0)
            json_object_set_new(limits, "max-queues", json_integer(av->max_queues));
        json_array_append_new(json_object_get(doc, "parameters"),
                              json_pack("{s:o, s:s, s:s}", "value", limits, "component",
                                        "vhost-limits", "name", "limits"));
    }
}

/* The broker's exchanges, queues and bindings, for definitions_export_json(). */
static struct definitions *collect(struct server *s)
{
    struct definitions *d = definitions_new();
    size_t n;
    void **vhs = sorted(&s->vhosts, cmp_vhost, &n);

    for (size_t i = 0; i < n; i++) {
        struct vhost *vh = vhs[i];
        char *vname = xstrndup_bytes(vh->name);
        size_t nx, nq;
        void **xs = sorted(&vh->exchanges, cmp_exchange, &nx);
        void **qs = sorted(&vh->queues, cmp_queue, &nq);

        for (size_t k = 0; k < nx; k++) {
            struct exchange *x = xs[k];
            char *xname;
            if (!exchange_exported(vh, x))
                continue;
            xname = xstrndup_bytes(x->name);
            definitions_add_exchange(d, vname, xname, x->type->name, x->durable, x->auto_delete,
                                     x->internal, (struct wire_table){.raw = x->arguments});
            free(xname);
        }
        for (size_t k = 0; k < nq; k++) {
            struct queue *q = qs[k];
            char *qname;
            if (!queue_exported(q))
                continue;
            qname = xstrndup_bytes(q->name);
            definitions_add_queue(d, vname, qname, q->durable, q->auto_delete,
                                  (struct wire_table){.raw = q->arguments});
            free(qname);
        }
        for (size_t k = 0; k < nx; k++) {
            struct exchange *x = xs[k];
            char *src;
            if (x == vh->default_exchange)
                continue;
            src = xstrndup_bytes(x->name);
            for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source) {
                const void *dest = xb->b.destination;
                bool to_queue = destination_kind(dest) == DEST_QUEUE;
                char *dname, *rk;
                if (to_queue && !queue_exported(dest))
                    continue;
                dname = xstrndup_bytes(to_queue ? ((const struct queue *)dest)->name
                                                : ((const struct exchange *)dest)->name);
                rk = xstrndup_bytes(xb->b.routing_key);
                definitions_add_binding(d, vname, src, dname, !to_queue, rk, xb->b.arguments);
                free(dname);
                free(rk);
            }
            free(src);
        }
        {
            size_t np;
            struct policy *const *policies = policy_list(vh, &np, false);
            for (size_t k = 0; k < np; k++) {
                const struct policy *p = policies[k];
                definitions_add_policy(d, vname, p->name, p->pattern_source,
                                       p->apply_to == POLICY_QUEUES      ? "queues"
                                       : p->apply_to == POLICY_EXCHANGES ? "exchanges"
                                                                         : "all",
                                       p->priority, (struct wire_table){.raw = p->definition});
            }
        }
        free(xs);
        free(qs);
        free(vname);
    }
    free(vhs);
    return d;
}

json_t *mgmt_defs_export(struct server *s, struct vhost *only)
{
    json_t *doc;

    if (only == NULL) {
        struct definitions *d = collect(s);
        doc = definitions_export_json(s->auth, d);
        definitions_free(d);
        json_object_set_new(doc, "product_name", json_string("Warren"));
        json_object_set_new(doc, "product_version", json_string(PACKAGE_VERSION));
        return doc;
    }
    /* One vhost: RabbitMQ's per-vhost shape, without users and without "vhost" fields. */
    doc = json_object();
    json_object_set_new(doc, "rabbit_version", json_string(DEFINITIONS_RABBIT_VERSION));
    json_object_set_new(doc, "parameters", json_array());
    json_object_set_new(doc, "policies", json_array());
    json_object_set_new(doc, "queues", json_array());
    json_object_set_new(doc, "exchanges", json_array());
    json_object_set_new(doc, "bindings", json_array());
    export_vhost(doc, only, false);
    export_vhost_settings(doc, s, only);
    return doc;
}

/* ---- Import ---------------------------------------------------------------------------- */

static int fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

int mgmt_defs_apply(struct server *s, const struct definitions *d, char *err, size_t err_size)
{
    struct ops_actor actor = {0};
    struct ops_error e;

    for (size_t i = 0; i < d->exchanges_len; i++) {
        const struct def_exchange *x = &d->exchanges[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(x->vhost));
        if (vh == NULL)
            return fail(err, err_size, "exchange '%s': vhost '%s' does not exist", x->name,
                        x->vhost);
        if (ops_exchange_declare(vh, wire_cstr(x->name), wire_cstr(x->type), false, x->durable,
                                 x->auto_delete, x->internal, x->arguments.raw, NULL, &e) != 0)
            return fail(err, err_size, "exchange '%s' in vhost '%s': %s", x->name, x->vhost,
                        e.text);
    }
    /* Policies before queues, as RabbitMQ imports them, so a queue starts under its policy. */
    for (size_t i = 0; i < d->policies_len; i++) {
        const struct def_policy *p = &d->policies[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(p->vhost));
        char why[600];
        if (vh == NULL)
            return fail(err, err_size, "policy '%s': vhost '%s' does not exist", p->name, p->vhost);
        if (policy_set(vh, p->name, p->pattern, p->apply_to, p->priority, p->definition, false, why,
                       sizeof why) != 0)
            return fail(err, err_size, "policy '%s' in vhost '%s': %s", p->name, p->vhost, why);
    }
    for (size_t i = 0; i < d->queues_len; i++) {
        const struct def_queue *q = &d->queues[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(q->vhost));
        struct queue *out;
        if (vh == NULL)
            return fail(err, err_size, "queue '%s': vhost '%s' does not exist", q->name, q->vhost);
        if (ops_queue_declare(vh, &actor, wire_cstr(q->name), false, q->durable, false,
                              q->auto_delete, q->arguments.raw, &out, NULL, &e) != 0)
            return fail(err, err_size, "queue '%s' in vhost '%s': %s", q->name, q->vhost, e.text);
    }
    for (size_t i = 0; i < d->bindings_len; i++) {
        const struct def_binding *b = &d->bindings[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(b->vhost));
        if (vh == NULL)
            return fail(err, err_size, "binding: vhost '%s' does not exist", b->vhost);
        if (ops_bind(vh, &actor, wire_cstr(b->source), wire_cstr(b->destination),
                     b->destination_is_exchange, wire_cstr(b->routing_key), b->arguments.raw,
                     &e) != 0)
            return fail(err, err_size, "binding of %s '%s' to exchange '%s' in vhost '%s': %s",
                        b->destination_is_exchange ? "exchange" : "queue", b->destination,
                        b->source, b->vhost, e.text);
    }
    log_info(NULL, "definitions: applied %zu exchanges, %zu policies, %zu queues, %zu bindings",
             d->exchanges_len, d->policies_len, d->queues_len, d->bindings_len);
    return 0;
}

/* A per-vhost document with "vhost" added to its objects, and without the parts that are
 * not per vhost (RabbitMQ ignores them there). */
static json_t *scoped_document(const json_t *doc, const struct vhost *only)
{
    static const char *const keys[] = {"exchanges", "queues", "bindings", "policies", "parameters"};
    json_t *copy = json_object(), *vname = mgmt_json_bytes(only->name);

    for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
        const json_t *list = json_object_get(doc, keys[k]), *item;
        json_t *out;
        size_t i;
        if (!json_is_array(list)) {
            if (list != NULL) /* let the importer say what is wrong with it */
                json_object_set_new(copy, keys[k], json_deep_copy(list));
            continue;
        }
        out = json_array();
        json_array_foreach(list, i, item)
        {
            json_t *o = json_deep_copy(item);
            if (json_is_object(o))
                json_object_set(o, "vhost", vname);
            json_array_append_new(out, o);
        }
        json_object_set_new(copy, keys[k], out);
    }
    json_decref(vname);
    return copy;
}

/* The vhosts of the user database get their broker side; the database is written out. */
static void auth_applied(struct server *s)
{
    size_t n;
    const struct auth_vhost **vhosts = auth_vhosts_sorted(s->auth, &n);

    for (size_t i = 0; i < n; i++)
        server_vhost_add(s, wire_cstr(vhosts[i]->name));
    free(vhosts);
    server_auth_changed(s);
}

int mgmt_defs_load_file(struct server *s, const char *path, char *err, size_t err_size)
{
    struct definitions *d = NULL;
    int rc;

    if (definitions_import_file(s->auth, path, &d, err, err_size) != 0)
        return -1;
    auth_applied(s);
    rc = mgmt_defs_apply(s, d, err, err_size);
    definitions_free(d);
    if (rc == 0)
        log_info(NULL, "definitions: loaded %s", path);
    return rc;
}

int mgmt_defs_import(struct server *s, const json_t *doc, struct vhost *only, char *err,
                     size_t err_size)
{
    struct definitions *d = NULL;
    json_t *scoped = only != NULL ? scoped_document(doc, only) : NULL;
    int rc;

    /* Users, vhosts and permissions go to the user database, the whole document checked
     * first; the rest comes back to be declared here. */
    rc = definitions_import_json(s->auth, scoped != NULL ? scoped : doc, &d, err, err_size);
    json_decref(scoped);
    if (rc != 0)
        return -1;
    auth_applied(s);
    rc = mgmt_defs_apply(s, d, err, err_size);
    definitions_free(d);
    return rc;
}
