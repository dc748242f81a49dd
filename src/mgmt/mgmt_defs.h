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
#include <stdint.h>

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

/* An import of a document from the management API, a slice at a time: the JSON is parsed on
 * a thread of its own, then the document is checked (definitions_import_begin() and its
 * steps), its users, vhosts and permissions applied (and written to the data directory),
 * and its exchanges, policies, queues and bindings declared, in that order, each slice's
 * changes written to the definitions log together. With only != NULL the document is a
 * per-vhost one: its objects carry no vhost and go to that one. Objects that exist already
 * must be equivalent (as a declare requires). What was declared before an error stays, as
 * in RabbitMQ. */
struct mgmt_defs_import;

enum {
    MGMT_DEFS_FAILED = -1, /* the reason, naming the object, is in err ("not_json") */
    MGMT_DEFS_DONE = 0,
    MGMT_DEFS_MORE = 1,    /* step again */
    MGMT_DEFS_WAITING = 2, /* wake(ctx) will be called, on the loop, when it can go on */
};

/* Starts parsing text[0..len), which must stay until mgmt_defs_import_free(). */
struct mgmt_defs_import *mgmt_defs_import_start(struct server *s, const char *text, size_t len,
                                                const struct vhost *only, void (*wake)(void *ctx),
                                                void *ctx);
/* Does the next part of the import, for about budget_us (at least one object). */
int mgmt_defs_import_step(struct mgmt_defs_import *imp, uint64_t budget_us, char *err,
                          size_t err_size);
/* Frees imp, waiting for its parser thread if it still runs. NULL is fine. */
void mgmt_defs_import_free(struct mgmt_defs_import *imp);

/* load_definitions: imports the file at path as an import does, all at once (before any
 * client connects). 0, or -1 with the reason (naming the file) in err. */
int mgmt_defs_load_file(struct server *s, const char *path, char *err, size_t err_size);

#endif
