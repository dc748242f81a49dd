/* Policies, as RabbitMQ has them: a named rule in a vhost whose pattern (a regular
 * expression, searched unanchored in the name) picks queues and/or exchanges, and whose
 * definition sets their optional arguments without a redeclare. Of the policies that match
 * an entity the one with the highest priority applies (one policy, not a merge); an
 * operator policy (set by the operator to cap what users configure) applies as well, and for
 * the numeric limits the lower value wins.
 *
 * Definition keys Warren applies:
 *   queues     message-ttl, expires, max-length, max-length-bytes, overflow,
 *              dead-letter-exchange, dead-letter-routing-key, delivery-limit
 *   exchanges  alternate-exchange
 * Precedence with the entity's own x- arguments, as RabbitMQ documents it: for message-ttl,
 * expires, max-length, max-length-bytes and delivery-limit the lower value applies; for the
 * others the argument wins over the policy.
 *
 * Changing a policy re-applies every policy of its vhost to every queue and exchange there
 * at once (a TTL or a length limit that tightens takes effect immediately). */
#ifndef WARREN_SRC_BROKER_POLICY_H
#define WARREN_SRC_BROKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/table.h"

struct vhost;
struct queue;
struct exchange;

enum policy_apply_to {
    POLICY_ALL,
    POLICY_QUEUES,
    POLICY_EXCHANGES,
};

struct policy {
    char *name;
    char *pattern_source;
    void *pattern; /* compiled (struct auth_pattern) */
    enum policy_apply_to apply_to;
    int64_t priority;
    struct wire_bytes definition; /* owned encoded table entries, RabbitMQ's keys */
    bool operator_policy;
};

/* Sets (creates or replaces) a policy of vh. definition holds RabbitMQ's keys with their
 * values ("max-length": 100, "dead-letter-exchange": "dlx", ...). Re-applies the vhost's
 * policies. 0, or -1 with the reason in err (a bad pattern, apply-to, or definition value). */
int policy_set(struct vhost *vh, const char *name, const char *pattern, const char *apply_to,
               int64_t priority, struct wire_table definition, bool operator_policy, char *err,
               size_t err_size);
/* Removes a policy; -1 if there is none of that name. Re-applies the vhost's policies. */
int policy_clear(struct vhost *vh, const char *name, bool operator_policy);
const struct policy *policy_find(const struct vhost *vh, const char *name, bool operator_policy);
/* All policies of vh: *n of them, in the order they were set (the array is the vhost's). */
struct policy *const *policy_list(const struct vhost *vh, size_t *n, bool operator_policy);
void policy_free_all(struct vhost *vh);

/* The arguments a queue acts on: its declared ones with the policies that match it folded
 * in, as a new encoded table (malloc'd; the caller frees it). Called when a queue is created
 * and when policies change. */
struct wire_bytes policy_queue_arguments(const struct vhost *vh, struct wire_bytes name,
                                         struct wire_bytes declared);
/* The alternate exchange of an exchange: its argument, or the policy's. Empty if none. */
struct wire_bytes policy_alternate_exchange(const struct vhost *vh, const struct exchange *x);
/* The names of the policies that apply (for listings): "" if none. */
const char *policy_applied(const struct vhost *vh, struct wire_bytes name, bool queue,
                           bool operator_policy);

#endif
