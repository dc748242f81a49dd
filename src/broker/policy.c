#include "src/broker/policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/exchange.h"
#include "src/broker/persist.h"
#include "src/broker/queue.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"

/* A definition key, the queue argument it stands for, and how the two combine. */
struct key_map {
    const char *key;
    const char *argument;
    bool integer;
    bool lower_wins; /* numeric limits: the lower of argument and policy applies */
};

static const struct key_map queue_keys[] = {
    {"message-ttl", "x-message-ttl", true, true},
    {"expires", "x-expires", true, true},
    {"max-length", "x-max-length", true, true},
    {"max-length-bytes", "x-max-length-bytes", true, true},
    {"delivery-limit", "x-delivery-limit", true, true},
    {"overflow", "x-overflow", false, false},
    {"dead-letter-exchange", "x-dead-letter-exchange", false, false},
    {"dead-letter-routing-key", "x-dead-letter-routing-key", false, false},
    {"max-age", "x-max-age", false, false},
    {"stream-max-segment-size-bytes", "x-stream-max-segment-size-bytes", true, false},
};

static const struct key_map *queue_key(struct wire_bytes key)
{
    for (size_t i = 0; i < ARRAY_LEN(queue_keys); i++)
        if (wire_bytes_eq_cstr(key, queue_keys[i].key))
            return &queue_keys[i];
    return NULL;
}

static void policy_destroy(struct policy *p)
{
    if (p == NULL)
        return;
    auth_pattern_free(p->pattern);
    free(p->pattern);
    free(p->name);
    free(p->pattern_source);
    bytes_free(&p->definition);
    free(p);
}

static struct policy ***list_of(const struct vhost *vh, bool op, size_t **n)
{
    struct vhost *v = (struct vhost *)vh;
    *n = op ? &v->operator_policy_count : &v->policy_count;
    return op ? &v->operator_policies : &v->policies;
}

struct policy *const *policy_list(const struct vhost *vh, size_t *n, bool operator_policy)
{
    size_t *count;
    struct policy ***list = list_of(vh, operator_policy, &count);
    *n = *count;
    return *list;
}

const struct policy *policy_find(const struct vhost *vh, const char *name, bool operator_policy)
{
    size_t n;
    struct policy *const *list = policy_list(vh, &n, operator_policy);

    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i]->name, name) == 0)
            return list[i];
    return NULL;
}

/* The policy of the highest priority whose pattern matches name (first set wins a tie). */
static const struct policy *best(const struct vhost *vh, struct wire_bytes name, bool queue,
                                 bool op)
{
    size_t n;
    struct policy *const *list = policy_list(vh, &n, op);
    const struct policy *found = NULL;

    /* amq.* and the default exchange are the broker's own: policies leave them alone. */
    if (!queue && (name.len == 0 || exchange_name_is_reserved(name)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct policy *p = list[i];
        if (p->apply_to == (queue ? POLICY_EXCHANGES : POLICY_QUEUES))
            continue;
        if (!auth_pattern_matches(p->pattern, name))
            continue;
        if (found == NULL || p->priority > found->priority)
            found = p;
    }
    return found;
}

const char *policy_applied(const struct vhost *vh, struct wire_bytes name, bool queue,
                           bool operator_policy)
{
    const struct policy *p = best(vh, name, queue, operator_policy);
    return p ? p->name : "";
}

/* ---- Folding a policy into arguments ---------------------------------------------------- */

static void fold(struct wire_table *args, uint8_t **storage, const struct policy *p)
{
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;
    size_t cap = args->raw.len + p->definition.len + 256;
    uint8_t *out = xmalloc(cap);
    struct wire_writer w = wire_writer_init(out, cap);
    bool stream;

    /* The declared arguments first, a numeric limit lowered by the policy's. */
    wire_table_iter_init(&it, *args);
    while (wire_table_next(&it, &key, &v)) {
        struct wire_field pv;
        int64_t a, b;
        for (size_t i = 0; i < ARRAY_LEN(queue_keys); i++) {
            const struct key_map *k = &queue_keys[i];
            if (k->lower_wins && wire_bytes_eq_cstr(key, k->argument) &&
                wire_table_find((struct wire_table){.raw = p->definition}, k->key, &pv) &&
                wire_field_int(&v, &a) && wire_field_int(&pv, &b) && b < a)
                v = pv;
        }
        wire_table_put_bytes_name(&w, key, &v);
    }
    /* Then what the policy sets and the arguments do not (a stream ignores the keys of
     * features it does not have, as RabbitMQ does). */
    stream = wire_table_find(*args, "x-queue-type", &v) && v.type == 'S' &&
             wire_bytes_eq_cstr(v.v.bytes, "stream");
    wire_table_iter_init(&it, (struct wire_table){.raw = p->definition});
    while (wire_table_next(&it, &key, &v)) {
        const struct key_map *k = queue_key(key);
        struct wire_field existing;
        if (k == NULL || wire_table_find(*args, k->argument, &existing) ||
            (stream && stream_refuses_arg(k->argument)))
            continue;
        wire_table_put(&w, k->argument, &v);
    }
    free(*storage);
    *storage = out;
    args->raw = (struct wire_bytes){.ptr = out, .len = wire_writer_used(&w)};
}

struct wire_bytes policy_queue_arguments(const struct vhost *vh, struct wire_bytes name,
                                         struct wire_bytes declared)
{
    struct wire_table args = {.raw = declared};
    uint8_t *storage = NULL;
    const struct policy *p;

    if ((p = best(vh, name, true, false)) != NULL)
        fold(&args, &storage, p);
    /* An operator policy caps what the user's policy and arguments set. */
    if ((p = best(vh, name, true, true)) != NULL)
        fold(&args, &storage, p);
    if (storage == NULL)
        return bytes_dup(declared);
    return (struct wire_bytes){.ptr = storage, .len = args.raw.len};
}

struct wire_bytes policy_alternate_exchange(const struct vhost *vh, const struct exchange *x)
{
    struct wire_field v;
    const struct policy *p;

    if (wire_table_find((struct wire_table){.raw = x->arguments}, "alternate-exchange", &v) &&
        v.type == 'S')
        return v.v.bytes;
    p = best(vh, x->name, false, false);
    if (p != NULL &&
        wire_table_find((struct wire_table){.raw = p->definition}, "alternate-exchange", &v) &&
        v.type == 'S')
        return v.v.bytes;
    return (struct wire_bytes){0};
}

/* ---- Setting and clearing --------------------------------------------------------------- */

/* Every queue and exchange of the vhost gets what its policies now say. */
static void reapply(struct vhost *vh)
{
    void *v;

    for (size_t i = 0; hmap_next(&vh->queues, &i, &v);)
        queue_policies_changed(v);
    for (size_t i = 0; hmap_next(&vh->exchanges, &i, &v);) {
        struct exchange *x = v;
        bytes_free(&x->alternate);
        x->alternate = bytes_dup(policy_alternate_exchange(vh, x));
    }
}

static int check_definition(struct wire_table def, char *err, size_t err_size)
{
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_field v;

    wire_table_iter_init(&it, def);
    while (wire_table_next(&it, &key, &v)) {
        const struct key_map *k = queue_key(key);
        int64_t n;
        if (k != NULL && k->integer && (!wire_field_int(&v, &n) || n < 0)) {
            snprintf(err, err_size, "Validation failed\n\n%.*s must be a non-negative integer",
                     (int)key.len, (const char *)key.ptr);
            return -1;
        }
        if ((k != NULL && !k->integer) || wire_bytes_eq_cstr(key, "alternate-exchange")) {
            if (v.type != 'S') {
                snprintf(err, err_size, "Validation failed\n\n%.*s must be a string", (int)key.len,
                         (const char *)key.ptr);
                return -1;
            }
        }
        if (wire_bytes_eq_cstr(key, "overflow") && v.type == 'S' &&
            !wire_bytes_eq_cstr(v.v.bytes, "drop-head") &&
            !wire_bytes_eq_cstr(v.v.bytes, "reject-publish") &&
            !wire_bytes_eq_cstr(v.v.bytes, "reject-publish-dlx")) {
            snprintf(err, err_size, "Validation failed\n\n%.*s is not a valid overflow value",
                     (int)v.v.bytes.len, (const char *)v.v.bytes.ptr);
            return -1;
        }
    }
    return 0;
}

int policy_set(struct vhost *vh, const char *name, const char *pattern, const char *apply_to,
               int64_t priority, struct wire_table definition, bool operator_policy, char *err,
               size_t err_size)
{
    struct policy *p;
    size_t *count;
    struct policy ***list = list_of(vh, operator_policy, &count);
    enum policy_apply_to to;

    if (apply_to == NULL || strcmp(apply_to, "all") == 0)
        to = POLICY_ALL;
    else if (strcmp(apply_to, "queues") == 0)
        to = POLICY_QUEUES;
    else if (strcmp(apply_to, "exchanges") == 0)
        to = POLICY_EXCHANGES;
    else {
        snprintf(err, err_size, "Validation failed\n\n'%s' is not a valid apply-to value",
                 apply_to);
        return -1;
    }
    if (!wire_table_check(definition.raw) || check_definition(definition, err, err_size) != 0) {
        if (!wire_table_check(definition.raw))
            snprintf(err, err_size, "Validation failed\n\nthe definition is not a table");
        return -1;
    }
    p = xcalloc(1, sizeof *p);
    p->pattern = xcalloc(1, sizeof(struct auth_pattern));
    if (auth_pattern_compile(p->pattern, pattern, err, err_size) != 0) {
        free(p->pattern);
        free(p);
        return -1;
    }
    p->name = xstrdup(name);
    p->pattern_source = xstrdup(pattern);
    p->apply_to = to;
    p->priority = priority;
    p->definition = bytes_dup(definition.raw);
    p->operator_policy = operator_policy;
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*list)[i]->name, name) == 0) {
            policy_destroy((*list)[i]);
            (*list)[i] = p;
            goto set;
        }
    }
    *list = xrealloc(*list, (*count + 1) * sizeof **list);
    (*list)[(*count)++] = p;
set:
    persist_policy_put(vh, p);
    reapply(vh);
    return 0;
}

int policy_clear(struct vhost *vh, const char *name, bool operator_policy)
{
    size_t *count;
    struct policy ***list = list_of(vh, operator_policy, &count);

    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*list)[i]->name, name) == 0) {
            persist_policy_delete(vh, (*list)[i]);
            policy_destroy((*list)[i]);
            memmove(&(*list)[i], &(*list)[i + 1], (*count - i - 1) * sizeof **list);
            (*count)--;
            reapply(vh);
            return 0;
        }
    }
    return -1;
}

void policy_free_all(struct vhost *vh)
{
    for (size_t i = 0; i < vh->policy_count; i++)
        policy_destroy(vh->policies[i]);
    for (size_t i = 0; i < vh->operator_policy_count; i++)
        policy_destroy(vh->operator_policies[i]);
    free(vh->policies);
    free(vh->operator_policies);
    vh->policies = vh->operator_policies = NULL;
    vh->policy_count = vh->operator_policy_count = 0;
}
