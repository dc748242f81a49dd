/* Definitions in RabbitMQ's JSON format (what `rabbitmqctl export_definitions` writes and
 * GET /api/definitions returns), the broker's side: src/definitions/ reads and writes the
 * document and keeps users, vhosts and permissions in the user database; this file adds the
 * broker's exchanges, policies, queues and bindings to an export and declares a document's
 * (through src/mgmt/ops.c and src/broker/policy.c), so an import runs the checks a client's declare
 * runs. Operator policies are not part of a definitions file here.
 *
 * Exported: every exchange but the default one and the amq.* ones the broker declares
 * itself; every queue but exclusive ones (they die with their connection, so RabbitMQ does
 * not export them either); every binding whose source is not the default exchange and
 * whose destination is exported. */
#ifndef WARREN_SRC_MGMT_MGMT_DEFS_H
#define WARREN_SRC_MGMT_MGMT_DEFS_H

#include <jansson.h>
#include <stddef.h>

struct definitions;
struct mgmt_stream_ops;
struct server;
struct vhost;

/* The definitions of the whole broker, or (only != NULL) of one vhost in RabbitMQ's
 * per-vhost shape: no users, vhosts or permissions, and no "vhost" field in the objects, as
 * a state for mgmt_respond_stream() with mgmt_defs_export_ops (src/mgmt/mgmt_slice.h),
 * which writes the document a slice at a time. What the document lists is copied now: it
 * shows the broker as it was when the export began. */
void *mgmt_defs_export_begin(struct server *s, struct vhost *only);
extern const struct mgmt_stream_ops mgmt_defs_export_ops;

/* Imports doc: definitions_import_json() checks all of it and applies its users, vhosts
 * and permissions (written to the data directory), then its exchanges, policies, queues and
 * bindings are declared in that order. With only != NULL the document is a per-vhost one: its
 * objects carry no vhost and go to that one. Objects that exist already must be equivalent
 * (as a declare requires). Stops at the first error: 0, or -1 with a reason in err naming
 * the object; what was declared before it stays, as in RabbitMQ. */
int mgmt_defs_import(struct server *s, const json_t *doc, struct vhost *only, char *err,
                     size_t err_size);

/* load_definitions: imports the file at path as mgmt_defs_import() imports a document.
 * 0, or -1 with the reason (naming the file) in err. */
int mgmt_defs_load_file(struct server *s, const char *path, char *err, size_t err_size);

/* Declares d's exchanges, policies, queues and bindings, in that order (their vhosts must
 * exist): the second half of an import, also for load_definitions at start. 0, or -1 with
 * the reason in err. */
int mgmt_defs_apply(struct server *s, const struct definitions *d, char *err, size_t err_size);

#endif
