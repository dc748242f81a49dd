/* Definitions export and import in RabbitMQ's format. */
#include "build_config.h"

#include "src/mgmt/mgmt_defs.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/exchange_type.h"
#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/persist.h"
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

/* A vhost's policies and its vhost-limits parameter, with their "vhost" fields (unlike its
 * queues, exchanges and bindings), as RabbitMQ 3.10.8's per-vhost export has them. */
static void export_vhost_settings(json_t *doc, struct server *s, struct vhost *vh)
{
    const struct auth_vhost *av = auth_vhost_find(s->auth, vh->name);
    size_t np;
    struct policy *const *policies = policy_list(vh, &np, false);

    for (size_t i = 0; i < np; i++) {
        const struct policy *p = policies[i];
        json_array_append_new(
            json_object_get(doc, "policies"),
            json_pack("{s:o, s:s, s:s, s:s, s:o, s:I}", "vhost", mgmt_json_bytes(vh->name), "name",
                      p->name, "pattern", p->pattern_source, "apply-to",
                      p->apply_to == POLICY_QUEUES      ? "queues"
                      : p->apply_to == POLICY_EXCHANGES ? "exchanges"
                                                        : "all",
                      "definition", mgmt_json_from_table((struct wire_table){.raw = p->definition}),
                      "priority", (json_int_t)p->priority));
    }
    if (av != NULL && (av->max_connections >= 0 || av->max_queues >= 0)) {
        json_t *limits = json_object();
        if (av->max_connections >= 0)
            json_object_set_new(limits, "max-connections", json_integer(av->max_connections));
        if (av->max_queues >= 0)
            json_object_set_new(limits, "max-queues", json_integer(av->max_queues));
        json_array_append_new(json_object_get(doc, "parameters"),
                              json_pack("{s:o, s:o, s:s, s:s}", "value", limits, "vhost",
                                        mgmt_json_bytes(vh->name), "component", "vhost-limits",
                                        "name", "limits"));
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

const struct mgmt_stream_ops mgmt_defs_export_ops = {fill_export, free_export, .sort_items = false};

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

/* Declares object i of part (0 exchanges, 1 policies, 2 queues, 3 bindings) of d. */
static int apply_one(struct server *s, const struct definitions *d, unsigned part, size_t i,
                     char *err, size_t err_size)
{
    struct ops_actor actor = {0};
    struct ops_error e;

    if (part == 0) {
        const struct def_exchange *x = &d->exchanges[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(x->vhost));
        if (vh == NULL)
            return fail(err, err_size, "exchange '%s': vhost '%s' does not exist", x->name,
                        x->vhost);
        if (ops_exchange_declare(vh, wire_cstr(x->name), wire_cstr(x->type), false, x->durable,
                                 x->auto_delete, x->internal, x->arguments.raw, NULL, &e) != 0)
            return fail(err, err_size, "exchange '%s' in vhost '%s': %s", x->name, x->vhost,
                        e.text);
    } else if (part == 1) {
        const struct def_policy *p = &d->policies[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(p->vhost));
        char why[600];
        if (vh == NULL)
            return fail(err, err_size, "policy '%s': vhost '%s' does not exist", p->name, p->vhost);
        if (policy_set(vh, p->name, p->pattern, p->apply_to, p->priority, p->definition, false, why,
                       sizeof why) != 0)
            return fail(err, err_size, "policy '%s' in vhost '%s': %s", p->name, p->vhost, why);
    } else if (part == 2) {
        const struct def_queue *q = &d->queues[i];
        struct vhost *vh = server_vhost_find(s, wire_cstr(q->vhost));
        struct queue *out;
        if (vh == NULL)
            return fail(err, err_size, "queue '%s': vhost '%s' does not exist", q->name, q->vhost);
        if (ops_queue_declare(vh, &actor, wire_cstr(q->name), false, q->durable, false,
                              q->auto_delete, q->arguments.raw, &out, NULL, &e) != 0)
            return fail(err, err_size, "queue '%s' in vhost '%s': %s", q->name, q->vhost, e.text);
    } else {
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
    return 0;
}

/* A per-vhost document with "vhost" added to its objects, and without the parts that are
 * not per vhost (RabbitMQ ignores them there). */
static json_t *scoped_document(const json_t *doc, struct wire_bytes vhost)
{
    static const char *const keys[] = {"exchanges", "queues", "bindings", "policies", "parameters"};
    json_t *copy = json_object(), *vname = mgmt_json_bytes(vhost);

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

enum import_phase {
    IMPORT_PARSING,   /* on the parser thread */
    IMPORT_PARSED,    /* the thread is done; doc, or the reason in parse_err */
    IMPORT_CHECKING,  /* definitions_import_step() */
    IMPORT_DECLARING, /* apply_one() */
};

struct mgmt_defs_import {
    struct server *srv;
    enum import_phase phase;
    /* Parsing, off the loop: a few megabytes of JSON take a tenth of a second. */
    const char *text; /* borrowed */
    size_t len;
    struct wire_bytes only; /* the vhost of a per-vhost document (a copy), or empty */
    bool per_vhost;
    pthread_t parser;
    bool parser_started;
    ev_async parsed;
    void (*wake)(void *ctx);
    void *wake_ctx;
    json_t *doc; /* the document (per vhost: with the vhost in each object) */
    /* Checking, then declaring. */
    struct definitions_import *check;
    struct definitions *d;
    unsigned part; /* the part being declared: exchanges, policies, queues, bindings */
    size_t next;   /* its next object */
};

/* Touches nothing but imp->text and the document it makes, so it may run on a thread. */
static void parse(struct mgmt_defs_import *imp)
{
    json_t *doc = json_loadb(imp->text, imp->len, 0, NULL);

    if (doc != NULL && json_is_object(doc) && imp->per_vhost) {
        json_t *scoped = scoped_document(doc, imp->only);
        json_decref(doc);
        doc = scoped;
    }
    imp->doc = doc;
}

static void *parse_main(void *arg)
{
    struct mgmt_defs_import *imp = arg;

    parse(imp);
    ev_async_send(imp->srv->loop, &imp->parsed);
    return NULL;
}

static void on_parsed(struct ev_loop *loop, ev_async *w, int revents)
{
    struct mgmt_defs_import *imp = container_of(w, struct mgmt_defs_import, parsed);

    (void)revents;
    if (imp->phase != IMPORT_PARSING)
        return;
    pthread_join(imp->parser, NULL);
    imp->parser_started = false;
    ev_async_stop(loop, &imp->parsed);
    imp->phase = IMPORT_PARSED;
    imp->wake(imp->wake_ctx);
}

struct mgmt_defs_import *mgmt_defs_import_start(struct server *s, const char *text, size_t len,
                                                const struct vhost *only, void (*wake)(void *ctx),
                                                void *ctx)
{
    struct mgmt_defs_import *imp = xcalloc(1, sizeof *imp);

    *imp = (struct mgmt_defs_import){.srv = s,
                                     .text = text,
                                     .len = len,
                                     .per_vhost = only != NULL,
                                     .wake = wake,
                                     .wake_ctx = ctx};
    if (only != NULL)
        imp->only = bytes_dup(only->name);
    ev_async_init(&imp->parsed, on_parsed);
    ev_async_start(s->loop, &imp->parsed);
    if (pthread_create(&imp->parser, NULL, parse_main, imp) == 0) {
        imp->parser_started = true;
    } else {
        log_warn(NULL, "definitions: no thread to parse an import (%s): parsed on the loop",
                 strerror(errno));
        ev_async_stop(s->loop, &imp->parsed);
        parse(imp);
        imp->phase = IMPORT_PARSED;
    }
    return imp;
}

/* Declares objects for the rest of the budget; their changes are written and synced to the
 * definitions log together, once. */
static int declare(struct mgmt_defs_import *imp, uint64_t start, uint64_t budget_us, char *err,
                   size_t err_size)
{
    const struct definitions *d = imp->d;
    const size_t lens[4] = {d->exchanges_len, d->policies_len, d->queues_len, d->bindings_len};
    int rc = MGMT_DEFS_MORE;

    /* Policies before queues, as RabbitMQ imports them, so a queue starts under its policy. */
    persist_batch_begin(imp->srv->persist);
    do {
        while (imp->part < 4 && imp->next == lens[imp->part]) {
            imp->part++;
            imp->next = 0;
        }
        if (imp->part == 4) {
            rc = MGMT_DEFS_DONE;
            break;
        }
        if (apply_one(imp->srv, d, imp->part, imp->next++, err, err_size) != 0) {
            rc = MGMT_DEFS_FAILED;
            break;
        }
    } while (now_us() - start < budget_us);
    persist_batch_end(imp->srv->persist);
    if (rc == MGMT_DEFS_DONE)
        log_info(NULL, "definitions: applied %zu exchanges, %zu policies, %zu queues, %zu bindings",
                 d->exchanges_len, d->policies_len, d->queues_len, d->bindings_len);
    return rc;
}

int mgmt_defs_import_step(struct mgmt_defs_import *imp, uint64_t budget_us, char *err,
                          size_t err_size)
{
    uint64_t start = now_us();
    int rc;

    switch (imp->phase) {
    case IMPORT_PARSING:
        return MGMT_DEFS_WAITING;
    case IMPORT_PARSED:
        if (imp->doc == NULL || !json_is_object(imp->doc)) {
            snprintf(err, err_size, "not_json");
            return MGMT_DEFS_FAILED;
        }
        if ((imp->check = definitions_import_begin(imp->srv->auth, imp->doc, err, err_size)) ==
            NULL)
            return MGMT_DEFS_FAILED;
        imp->phase = IMPORT_CHECKING;
        /* fall through */
    case IMPORT_CHECKING:
        do {
            rc = definitions_import_step(imp->check, 16, err, err_size);
        } while (rc == 1 && now_us() - start < budget_us);
        if (rc < 0)
            return MGMT_DEFS_FAILED;
        if (rc == 1)
            return MGMT_DEFS_MORE;
        /* Users, vhosts and permissions change here, in one turn with their final check. */
        if (definitions_import_finish(imp->check, &imp->d, err, err_size) != 0)
            return MGMT_DEFS_FAILED;
        auth_applied(imp->srv);
        imp->phase = IMPORT_DECLARING;
        if (now_us() - start >= budget_us)
            return MGMT_DEFS_MORE;
        /* fall through */
    case IMPORT_DECLARING:
        return declare(imp, start, budget_us, err, err_size);
    }
    return MGMT_DEFS_FAILED;
}

void mgmt_defs_import_free(struct mgmt_defs_import *imp)
{
    if (imp == NULL)
        return;
    if (imp->parser_started) {
        /* Shutting down while it parses: it will not be long. */
        pthread_join(imp->parser, NULL);
    }
    ev_async_stop(imp->srv->loop, &imp->parsed);
    definitions_import_free(imp->check);
    json_decref(imp->doc);
    definitions_free(imp->d);
    bytes_free(&imp->only);
    free(imp);
}

int mgmt_defs_load_file(struct server *s, const char *path, char *err, size_t err_size)
{
    struct mgmt_defs_import imp = {.srv = s, .phase = IMPORT_DECLARING};
    int rc;

    if (definitions_import_file(s->auth, path, &imp.d, err, err_size) != 0)
        return -1;
    auth_applied(s);
    /* Before any client, so at once; in batches of a few milliseconds all the same, so that
     * no record of the definitions log grows with the file. */
    while ((rc = declare(&imp, now_us(), 10000, err, err_size)) == MGMT_DEFS_MORE)
        ;
    definitions_free(imp.d);
    if (rc != MGMT_DEFS_DONE)
        return -1;
    log_info(NULL, "definitions: loaded %s", path);
    return 0;
}
