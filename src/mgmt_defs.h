/* Definitions in RabbitMQ's JSON format (what `rabbitmqctl export_definitions` writes and
 * GET /api/definitions returns): export of the broker's exchanges, queues and bindings, and
 * import of a file's, through src/ops.c, so an import runs the checks a client's declare
 * runs. Users, vhosts and permissions come from the configuration for now (one user, the
 * default vhost); src/auth.c will hold them.
 *
 * Exported: every vhost; every exchange but the default one and the amq.* ones the broker
 * declares itself; every queue but exclusive ones (they die with their connection, so
 * RabbitMQ does not export them either); every binding whose source is not the default
 * exchange and whose destination is exported. */
#ifndef WARREN_SRC_MGMT_DEFS_H
#define WARREN_SRC_MGMT_DEFS_H

#include <jansson.h>
#include <stddef.h>

struct server;
struct vhost;

/* The definitions of the whole broker, or (only != NULL) of one vhost in RabbitMQ's
 * per-vhost shape: no users, vhosts or permissions, and no "vhost" field in the objects. */
json_t *mgmt_defs_export(struct server *s, struct vhost *only);

/* Applies doc: vhosts it lists are created, then exchanges, queues and bindings are
 * declared in that order. With only != NULL the objects carry no vhost and go to it.
 * Objects that exist already must be equivalent (as a declare requires). Keys Warren does
 * not know are ignored with a warning, as are users and permissions until the broker keeps
 * users, and policies and parameters. Stops at the first error: 0, or -1 with a reason in
 * err naming the object ("queue 'q' in vhost '/': inequivalent arg 'durable' ..."); what
 * was applied before it stays, as in RabbitMQ. */
int mgmt_defs_import(struct server *s, const json_t *doc, struct vhost *only, char *err,
                     size_t err_size);

#endif
