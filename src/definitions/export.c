/* Export: the document RabbitMQ would write, from the auth database (users, vhosts,
 * permissions, topic permissions, vhost limits as parameters) and a struct definitions
 * (exchanges, queues, bindings, policies), every section sorted so that two exports can be
 * compared. */
#include "src/definitions/definitions.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "src/base/log.h"
#include "src/base/util.h"

static json_t *string_array(char *const *v, size_t len)
{
    json_t *a = json_array();

    for (size_t i = 0; i < len; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *table_json(struct wire_table t, const char *what, const char *name)
{
    json_t *j = definitions_table_to_json(t);

    if (j == NULL) {
        log_warn(NULL,
                 "definitions: export: the arguments of %s '%s' cannot be written as "
                 "JSON (not UTF-8?), exported as {}",
                 what, name);
        j = json_object();
    }
    return j;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The vhost names of a user's permission map, sorted. */
static const char **map_keys_sorted(const struct hmap *m, size_t *len)
{
    const char **keys = xcalloc(m->len + 1, sizeof *keys);
    size_t n = 0;
    void *v;

    for (size_t i = 0; hmap_next(m, &i, &v);) {
        (void)v;
        keys[n++] = (const char *)m->slots[i - 1].key.ptr;
    }
    qsort(keys, n, sizeof *keys, compare_strings);
    *len = n;
    return keys;
}

static void export_users(const struct auth_db *db, json_t *doc)
{
    json_t *users = json_array(), *perms = json_array(), *topic = json_array();
    char b64[4 * ((AUTH_HASH_MAX_BYTES + 2) / 3) + 1];
    size_t n, nv, nx;
    const struct auth_user **sorted = auth_users_sorted(db, &n);

    for (size_t i = 0; i < n; i++) {
        const struct auth_user *u = sorted[i];
        json_t *limits = json_object();
        const char **vhosts;

        auth_base64_encode(u->hash, u->hash_len, b64);
        if (u->max_connections >= 0)
            json_object_set_new(limits, "max-connections", json_integer(u->max_connections));
        if (u->max_channels >= 0)
            json_object_set_new(limits, "max-channels", json_integer(u->max_channels));
        json_array_append_new(
            users, json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", u->name, "password_hash", b64,
                             "hashing_algorithm", auth_hash_algorithm_name(u->algorithm), "tags",
                             string_array(u->tags, u->tags_len), "limits", limits));

        vhosts = map_keys_sorted(&u->permissions, &nv);
        for (size_t k = 0; k < nv; k++) {
            const struct auth_permission *p = hmap_get(&u->permissions, wire_cstr(vhosts[k]));
            json_array_append_new(perms,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", u->name, "vhost",
                                            p->vhost, "configure", p->configure.source, "write",
                                            p->write.source, "read", p->read.source));
        }
        free(vhosts);

        vhosts = map_keys_sorted(&u->topic_permissions, &nv);
        for (size_t k = 0; k < nv; k++) {
            const struct auth_topic_vhost *tv =
                hmap_get(&u->topic_permissions, wire_cstr(vhosts[k]));
            const char **exchanges = map_keys_sorted(&tv->exchanges, &nx);
            for (size_t e = 0; e < nx; e++) {
                const struct auth_topic_permission *tp =
                    hmap_get(&tv->exchanges, wire_cstr(exchanges[e]));
                json_array_append_new(topic, json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", u->name,
                                                       "vhost", tv->vhost, "exchange", tp->exchange,
                                                       "write", tp->write.source, "read",
                                                       tp->read.source));
            }
            free(exchanges);
        }
        free(vhosts);
    }
    OPENSSL_cleanse(b64, sizeof b64);
    free(sorted);
    json_object_set_new(doc, "users", users);
    json_object_set_new(doc, "permissions", perms);
    json_object_set_new(doc, "topic_permissions", topic);
}

static void export_vhosts(const struct auth_db *db, json_t *doc)
{
    json_t *vhosts = json_array(), *params = json_array();
    size_t n;
    const struct auth_vhost **sorted = auth_vhosts_sorted(db, &n);

    for (size_t i = 0; i < n; i++) {
        const struct auth_vhost *vh = sorted[i];
        json_t *metadata = json_pack("{s:s, s:o}", "description", vh->description, "tags",
                                     string_array(vh->tags, vh->tags_len));
        json_t *limits, *pairs;

        if (vh->default_queue_type != NULL)
            json_object_set_new(metadata, "default_queue_type",
                                json_string(vh->default_queue_type));
        /* RabbitMQ 3.10 repeats the limits in the vhost as [name, value] pairs; it reads
         * them back only from the vhost-limits parameter. */
        pairs = json_array();
        limits = json_object();
        if (vh->max_connections >= 0) {
            json_object_set_new(limits, "max-connections", json_integer(vh->max_connections));
            json_array_append_new(
                pairs, json_pack("[s, I]", "max-connections", (json_int_t)vh->max_connections));
        }
        if (vh->max_queues >= 0) {
            json_object_set_new(limits, "max-queues", json_integer(vh->max_queues));
            json_array_append_new(pairs,
                                  json_pack("[s, I]", "max-queues", (json_int_t)vh->max_queues));
        }
        json_array_append_new(vhosts, json_pack("{s:s, s:o, s:o}", "name", vh->name, "limits",
                                                pairs, "metadata", metadata));
        if (json_object_size(limits) == 0) {
            json_decref(limits);
            continue;
        }
        json_array_append_new(params,
                              json_pack("{s:s, s:s, s:s, s:o}", "vhost", vh->name, "component",
                                        "vhost-limits", "name", "limits", "value", limits));
    }
    free(sorted);
    json_object_set_new(doc, "vhosts", vhosts);
    json_object_set_new(doc, "parameters", params);
}

/* Sort orders for the broker's entities: by vhost, then name (bindings: source,
 * destination, key). */
static int compare_pair(const char *a1, const char *a2, const char *b1, const char *b2)
{
    int c = strcmp(a1, b1);
    return c != 0 ? c : strcmp(a2, b2);
}

static int compare_exchanges(const void *a, const void *b)
{
    const struct def_exchange *x = *(const struct def_exchange *const *)a;
    const struct def_exchange *y = *(const struct def_exchange *const *)b;
    return compare_pair(x->vhost, x->name, y->vhost, y->name);
}

static int compare_queues(const void *a, const void *b)
{
    const struct def_queue *x = *(const struct def_queue *const *)a;
    const struct def_queue *y = *(const struct def_queue *const *)b;
    return compare_pair(x->vhost, x->name, y->vhost, y->name);
}

static int compare_policies(const void *a, const void *b)
{
    const struct def_policy *x = *(const struct def_policy *const *)a;
    const struct def_policy *y = *(const struct def_policy *const *)b;
    return compare_pair(x->vhost, x->name, y->vhost, y->name);
}

static int compare_bindings(const void *a, const void *b)
{
    const struct def_binding *x = *(const struct def_binding *const *)a;
    const struct def_binding *y = *(const struct def_binding *const *)b;
    int c = compare_pair(x->vhost, x->source, y->vhost, y->source);
    return c != 0 ? c
                  : compare_pair(x->destination, x->routing_key, y->destination, y->routing_key);
}

/* Pointers to the n elements of size size at base, sorted with compare. */
static const void **sorted_refs(const void *base, size_t n, size_t size,
                                int (*compare)(const void *, const void *))
{
    const void **refs = xcalloc(n + 1, sizeof *refs);

    for (size_t i = 0; i < n; i++)
        refs[i] = (const char *)base + i * size;
    qsort(refs, n, sizeof *refs, compare);
    return refs;
}

/* The queue type RabbitMQ 3.10 exports beside the arguments. */
static const char *queue_type(struct wire_table args)
{
    static char type[64];
    struct wire_field f;

    if (wire_table_find(args, "x-queue-type", &f) && f.type == 'S' && f.v.bytes.len < sizeof type) {
        memcpy(type, f.v.bytes.ptr, f.v.bytes.len);
        type[f.v.bytes.len] = '\0';
        return type;
    }
    return "classic";
}

json_t *definitions_exchange_json(const char *vhost, const char *name, const char *type,
                                  bool durable, bool auto_delete, bool internal,
                                  struct wire_table arguments)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "name", name, "vhost", vhost, "type",
                     type, "durable", durable, "auto_delete", auto_delete, "internal", internal,
                     "arguments", table_json(arguments, "exchange", name));
}

json_t *definitions_queue_json(const char *vhost, const char *name, bool durable, bool auto_delete,
                               struct wire_table arguments)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:o}", "name", name, "vhost", vhost, "type",
                     queue_type(arguments), "durable", durable, "auto_delete", auto_delete,
                     "arguments", table_json(arguments, "queue", name));
}

json_t *definitions_binding_json(const char *vhost, const char *source, const char *destination,
                                 bool destination_is_exchange, const char *routing_key,
                                 struct wire_table arguments)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "source", source, "vhost", vhost,
                     "destination", destination, "destination_type",
                     destination_is_exchange ? "exchange" : "queue", "routing_key", routing_key,
                     "arguments", table_json(arguments, "binding from", source));
}

static void export_entities(const struct definitions *d, json_t *doc)
{
    json_t *exchanges = json_array(), *queues = json_array(), *bindings = json_array(),
           *policies = json_array();
    const void **refs;

    if (d == NULL)
        goto out;
    refs = sorted_refs(d->exchanges, d->exchanges_len, sizeof *d->exchanges, compare_exchanges);
    for (size_t i = 0; i < d->exchanges_len; i++) {
        const struct def_exchange *x = refs[i];
        json_array_append_new(exchanges,
                              definitions_exchange_json(x->vhost, x->name, x->type, x->durable,
                                                        x->auto_delete, x->internal, x->arguments));
    }
    free(refs);
    refs = sorted_refs(d->queues, d->queues_len, sizeof *d->queues, compare_queues);
    for (size_t i = 0; i < d->queues_len; i++) {
        const struct def_queue *q = refs[i];
        json_array_append_new(queues, definitions_queue_json(q->vhost, q->name, q->durable,
                                                             q->auto_delete, q->arguments));
    }
    free(refs);
    refs = sorted_refs(d->bindings, d->bindings_len, sizeof *d->bindings, compare_bindings);
    for (size_t i = 0; i < d->bindings_len; i++) {
        const struct def_binding *b = refs[i];
        json_array_append_new(bindings,
                              definitions_binding_json(b->vhost, b->source, b->destination,
                                                       b->destination_is_exchange, b->routing_key,
                                                       b->arguments));
    }
    free(refs);
    refs = sorted_refs(d->policies, d->policies_len, sizeof *d->policies, compare_policies);
    for (size_t i = 0; i < d->policies_len; i++) {
        const struct def_policy *p = refs[i];
        json_array_append_new(policies,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "vhost", p->vhost, "name",
                                        p->name, "pattern", p->pattern, "apply-to", p->apply_to,
                                        "priority", (json_int_t)p->priority, "definition",
                                        table_json(p->definition, "policy", p->name)));
    }
    free(refs);
out:
    json_object_set_new(doc, "exchanges", exchanges);
    json_object_set_new(doc, "queues", queues);
    json_object_set_new(doc, "bindings", bindings);
    json_object_set_new(doc, "policies", policies);
}

/* Each value as it was given; one whose text no longer parses (it cannot happen: every
 * setter checks it) is left out rather than exported wrong. */
static void export_global_parameters(const struct auth_db *db, json_t *doc)
{
    json_t *arr = json_array();
    size_t n;
    const struct auth_global_parameter **params = auth_global_parameters_sorted(db, &n);

    for (size_t i = 0; i < n; i++) {
        json_t *value = json_loads(params[i]->value_json, JSON_DECODE_ANY, NULL);
        if (value == NULL)
            continue;
        json_array_append_new(arr, json_pack("{s:s,s:o}", "name", params[i]->name, "value", value));
    }
    free(params);
    json_object_set_new(doc, "global_parameters", arr);
}

json_t *definitions_export_json(const struct auth_db *db, const struct definitions *extra)
{
    json_t *doc = json_object();

    json_object_set_new(doc, "rabbit_version", json_string(DEFINITIONS_RABBIT_VERSION));
    json_object_set_new(doc, "rabbitmq_version", json_string(DEFINITIONS_RABBIT_VERSION));
    export_users(db, doc);
    export_vhosts(db, doc);
    export_global_parameters(db, doc);
    export_entities(extra, doc);
    return doc;
}

char *definitions_export(const struct auth_db *db, const struct definitions *extra)
{
    json_t *doc = definitions_export_json(db, extra);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

    json_decref(doc);
    if (text == NULL) {
        log_error(NULL, "definitions: export: out of memory");
        abort();
    }
    return text;
}
