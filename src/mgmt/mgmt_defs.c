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
#include "src/mgmt/mgmt_slice.h"
#include "src/mgmt/ops.h"
#include "src/security/auth.h"

/* ---- Export ---------------------------------------------------------------------------- */

/* An export being written (src/mgmt/mgmt_slice.h): the exchanges, queues and bindings are
 * copied as records when it begins, sorted in slices, and written as the document lists
 * them; the rest of the document (users, vhosts, permissions, policies) is small and
 * written as text at once. */
struct export
{
    bool per_vhost; /* RabbitMQ's per-vhost shape: no users, no "vhost" fields */
    bool begun;
    unsigned section;       /* of the document, being written */
    char *head;             /* up to the first section's opening bracket */
    const char *open[3];    /* what opens each next section */
    char *tail;             /* after the last section */
    struct mgmt_names defs; /* see export_tag() */
};

enum { KIND_EXCHANGE, KIND_QUEUE, KIND_BINDING };
enum {
    FLAG_DURABLE = 1,
    FLAG_AUTO_DELETE = 2,
    FLAG_INTERNAL = 4,
    FLAG_TO_EXCHANGE = 8,
};

/* A record's tag: its section of the document (the order sections are written in), its
 * kind and its flags. Fields: exchange vhost, name, type, arguments; queue vhost, name,
 * arguments; binding vhost, source, destination, routing key, arguments. */
static unsigned export_tag(const struct export *e, unsigned kind, unsigned flags)
{
    unsigned section = kind == KIND_BINDING ? 2 : (kind == KIND_QUEUE) != e->per_vhost ? 1 : 0;

    return section | kind << 4 | flags << 8;
}

static bool exchange_exported(const struct vhost *vh, const struct exchange *x)
{
    return x != vh->default_exchange && !exchange_name_is_reserved(x->name);
}

static bool queue_exported(const struct queue *q)
{
    return !q->exclusive;
}

static void collect_vhost(struct export *e, struct vhost *vh)
{
    void *v;

    for (size_t i = 0; hmap_next(&vh->exchanges, &i, &v);) {
        const struct exchange *x = v;
        struct wire_bytes f[4] = {vh->name, x->name, wire_cstr(x->type->name), x->arguments};
        if (exchange_exported(vh, x))
            mgmt_names_add(&e->defs,
                           export_tag(e, KIND_EXCHANGE,
                                      (x->durable ? FLAG_DURABLE : 0) |
                                          (x->auto_delete ? FLAG_AUTO_DELETE : 0) |
                                          (x->internal ? FLAG_INTERNAL : 0)),
                           4, f);
        /* The amq.* exchanges are not exported, but their bindings are. */
        if (x == vh->default_exchange)
            continue;
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source) {
            const void *dest = xb->b.destination;
            bool to_queue = destination_kind(dest) == DEST_QUEUE;
            struct wire_bytes b[5] = {vh->name, x->name,
                                      to_queue ? ((const struct queue *)dest)->name
                                               : ((const struct exchange *)dest)->name,
                                      xb->b.routing_key, xb->b.arguments.raw};
            if (to_queue && !queue_exported(dest))
                continue;
            mgmt_names_add(&e->defs, export_tag(e, KIND_BINDING, to_queue ? 0 : FLAG_TO_EXCHANGE),
                           5, b);
        }
    }
    for (size_t i = 0; hmap_next(&vh->queues, &i, &v);) {
        const struct queue *q = v;
        struct wire_bytes f[3] = {vh->name, q->name, q->arguments};
        if (queue_exported(q))
            mgmt_names_add(&e->defs,
                           export_tag(e, KIND_QUEUE,
                                      (q->durable ? FLAG_DURABLE : 0) |
                                          (q->auto_delete ? FLAG_AUTO_DELETE : 0)),
                           3, f);
    }
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
                                        "definition",
                                        mgmt_json_from_table((struct wire_table){.raw = p->definition}),
                                        "priority",
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

/* By section, then as each export sorts: the whole broker's by vhost and name, bindings by
 * vhost, source, destination and routing key; one vhost's by name, bindings by source
 * exchange and then in the exchange's order (the sort is stable). */
static int cmp_export(const struct mgmt_names *names, size_t a, size_t b, bool per_vhost)
{
    unsigned ta = mgmt_names_tag(names, a), tb = mgmt_names_tag(names, b);

    if ((ta & 15) != (tb & 15))
        return (ta & 15) < (tb & 15) ? -1 : 1;
    if ((ta >> 4 & 15) == KIND_BINDING)
        return mgmt_names_cmp_fields(names, a, b, per_vhost ? 2 : 4);
    return mgmt_names_cmp_fields(names, a, b, 2);
}

static int cmp_export_broker(const struct mgmt_names *names, size_t a, size_t b)
{
    return cmp_export(names, a, b, false);
}

static int cmp_export_vhost(const struct mgmt_names *names, size_t a, size_t b)
{
    return cmp_export(names, a, b, true);
}

static const char *field(const struct export *e, size_t r, size_t i)
{
    /* Each field is followed by a NUL in the records (mgmt_names_add). */
    return (const char *)mgmt_names_field(&e->defs, r, i).ptr;
}

static struct wire_table table_field(const struct export *e, size_t r, size_t i)
{
    return (struct wire_table){.raw = mgmt_names_field(&e->defs, r, i)};
}

static json_t *table_json(struct wire_bytes raw)
{
    return mgmt_json_from_table((struct wire_table){.raw = raw});
}

/* One record as the per-vhost document shows it. */
static json_t *vhost_item(const struct export *e, size_t r, unsigned kind, unsigned flags)
{
    json_t *o = json_object();

    if (kind == KIND_BINDING) {
        json_object_set_new(o, "source", mgmt_json_bytes(mgmt_names_field(&e->defs, r, 1)));
        json_object_set_new(o, "destination", mgmt_json_bytes(mgmt_names_field(&e->defs, r, 2)));
        json_object_set_new(o, "destination_type",
                            json_string(flags & FLAG_TO_EXCHANGE ? "exchange" : "queue"));
        json_object_set_new(o, "routing_key", mgmt_json_bytes(mgmt_names_field(&e->defs, r, 3)));
        json_object_set_new(o, "arguments", table_json(mgmt_names_field(&e->defs, r, 4)));
        return o;
    }
    json_object_set_new(o, "name", mgmt_json_bytes(mgmt_names_field(&e->defs, r, 1)));
    if (kind == KIND_EXCHANGE)
        json_object_set_new(o, "type", json_string(field(e, r, 2)));
    json_object_set_new(o, "durable", json_boolean(flags & FLAG_DURABLE));
    json_object_set_new(o, "auto_delete", json_boolean(flags & FLAG_AUTO_DELETE));
    if (kind == KIND_EXCHANGE)
        json_object_set_new(o, "internal", json_boolean(flags & FLAG_INTERNAL));
    json_object_set_new(o, "arguments",
                        table_json(mgmt_names_field(&e->defs, r, kind == KIND_QUEUE ? 2 : 3)));
    return o;
}

/* One record as the whole broker's document shows it. */
static json_t *broker_item(const struct export *e, size_t r, unsigned kind, unsigned flags)
{
    switch (kind) {
    case KIND_EXCHANGE:
        return definitions_exchange_json(field(e, r, 0), field(e, r, 1), field(e, r, 2),
                                         flags & FLAG_DURABLE, flags & FLAG_AUTO_DELETE,
                                         flags & FLAG_INTERNAL, table_field(e, r, 3));
    case KIND_QUEUE:
        return definitions_queue_json(field(e, r, 0), field(e, r, 1), flags & FLAG_DURABLE,
                                      flags & FLAG_AUTO_DELETE, table_field(e, r, 2));
    default:
        return definitions_binding_json(field(e, r, 0), field(e, r, 1), field(e, r, 2),
                                        flags & FLAG_TO_EXCHANGE, field(e, r, 3),
                                        table_field(e, r, 4));
    }
}

static bool fill_export(struct mgmt_stream *st, void *state, size_t max)
{
    struct export *e = state;
    size_t r;

    if (!mgmt_names_sort(&e->defs, e->per_vhost ? cmp_export_vhost : cmp_export_broker,
                         MGMT_SORT_STEPS))
        return false;
    if (!e->begun) {
        e->begun = true;
        mgmt_stream_text(st, e->head);
    }
    for (size_t k = 0; k < max && mgmt_names_next(&e->defs, &r); k++) {
        unsigned tag = mgmt_names_tag(&e->defs, r), kind = tag >> 4 & 15, flags = tag >> 8;
        while (e->section < (tag & 15))
            mgmt_stream_text(st, e->open[++e->section]);
        mgmt_stream_item(st, e->per_vhost ? vhost_item(e, r, kind, flags)
                                          : broker_item(e, r, kind, flags));
    }
    if (!mgmt_names_done(&e->defs))
        return false;
    while (e->section < 2)
        mgmt_stream_text(st, e->open[++e->section]);
    mgmt_stream_text(st, e->tail);
    return true;
}

static void free_export(void *state)
{
    struct export *e = state;

    free(e->head);
    free(e->tail);
    mgmt_names_free(&e->defs);
    free(e);
}

const struct mgmt_stream_ops mgmt_defs_export_ops = {fill_export, free_export};

/* JSON text of j without its last character (the closing brace of an object). */
static char *dump_open(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);

    text[strlen(text) - 1] = '\0';
    return text;
}

/* The whole broker's document around its exchanges, queues and bindings: the users,
 * vhosts, permissions and parameters before, the policies and the product after. */
static void broker_frame(struct server *s, struct export *e)
{
    struct definitions *d = definitions_new();
    json_t *doc, *policies, *product = json_object();
    char *policies_text, *product_text;
    size_t len;
    void *v;

    /* The export sorts the policies. */
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        size_t np;
        struct policy *const *list = policy_list(vh, &np, false);
        char *vname = xstrndup_bytes(vh->name);
        for (size_t k = 0; k < np; k++) {
            const struct policy *p = list[k];
            definitions_add_policy(d, vname, p->name, p->pattern_source,
                                   p->apply_to == POLICY_QUEUES      ? "queues"
                                   : p->apply_to == POLICY_EXCHANGES ? "exchanges"
                                                                     : "all",
                                   p->priority, (struct wire_table){.raw = p->definition});
        }
        free(vname);
    }
    doc = definitions_export_json(s->auth, d);
    definitions_free(d);
    policies = json_incref(json_object_get(doc, "policies"));
    json_object_del(doc, "exchanges");
    json_object_del(doc, "queues");
    json_object_del(doc, "bindings");
    json_object_del(doc, "policies");
    json_object_set_new(product, "product_name", json_string("Warren"));
    json_object_set_new(product, "product_version", json_string(PACKAGE_VERSION));
    e->head = dump_open(doc);
    len = strlen(e->head);
    e->head = xrealloc(e->head, len + sizeof ",\"exchanges\":[");
    memcpy(e->head + len, ",\"exchanges\":[", sizeof ",\"exchanges\":[");
    e->open[1] = "],\"queues\":[";
    e->open[2] = "],\"bindings\":[";
    policies_text = json_dumps(policies, JSON_COMPACT);
    product_text = json_dumps(product, JSON_COMPACT);
    /* "],"policies":[...],"product_name":...}" */
    len = strlen("],\"policies\":") + strlen(policies_text) + 1 + strlen(product_text);
    e->tail = xmalloc(len + 1);
    snprintf(e->tail, len + 1, "],\"policies\":%s,%s", policies_text, product_text + 1);
    free(policies_text);
    free(product_text);
    json_decref(policies);
    json_decref(product);
    json_decref(doc);
}

void *mgmt_defs_export_begin(struct server *s, struct vhost *only)
{
    struct export *e = xcalloc(1, sizeof *e);
    void *v;

    e->per_vhost = only != NULL;
    if (only != NULL) {
        /* RabbitMQ's per-vhost shape, without users and without "vhost" fields; its few
         * policies and its limits are written with the head. */
        json_t *settings = json_pack("{s:[], s:[]}", "parameters", "policies");
        char *params, *policies;
        size_t len;

        export_vhost_settings(settings, s, only);
        params = json_dumps(json_object_get(settings, "parameters"), JSON_COMPACT);
        policies = json_dumps(json_object_get(settings, "policies"), JSON_COMPACT);
        len = strlen(params) + strlen(policies) + 100;
        e->head = xmalloc(len);
        snprintf(e->head, len,
                 "{\"rabbit_version\":\"%s\",\"parameters\":%s,\"policies\":%s,\"queues\":[",
                 DEFINITIONS_RABBIT_VERSION, params, policies);
        free(params);
        free(policies);
        json_decref(settings);
        e->open[1] = "],\"exchanges\":[";
        e->open[2] = "],\"bindings\":[";
        e->tail = xstrdup("]}");
        collect_vhost(e, only);
        return e;
    }
    broker_frame(s, e);
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);)
        collect_vhost(e, v);
    return e;
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
