/* RabbitMQ definitions files: import and export of the JSON document that
 * `rabbitmqctl export_definitions` writes and `rabbitmqctl import_definitions` and the
 * load_definitions setting read.
 *
 * The document is an object with the keys rabbit_version, rabbitmq_version, users, vhosts,
 * permissions, topic_permissions, parameters, global_parameters, policies, queues, exchanges
 * and bindings, each (but the versions) an array of objects. Unknown keys are logged and
 * ignored, as RabbitMQ ignores them.
 *
 * Import checks the whole document first and changes nothing when any part is wrong (RabbitMQ
 * applies it piece by piece and stops at the first error, leaving the first pieces applied).
 * Then it applies users, vhosts, permissions, topic permissions and global parameters
 * (cluster_name, ...; any name, any JSON value) to the auth database, and the vhost-limits
 * runtime parameters to the vhosts; it returns exchanges, queues, bindings
 * and policies as struct definitions, which the broker applies in RabbitMQ's order:
 * exchanges, policies, queues, bindings. Like RabbitMQ it skips (with a warning) queues and
 * exchanges whose names begin with "amq." and the default exchange "", and entries of a
 * section that are not objects (RabbitMQ 3.10 says nothing of those; Warren logs each).
 *
 * The refusals, with the documents RabbitMQ refuses in its own import tests:
 *   not JSON                          "not valid JSON (line 6, column 32): ..."
 *   exchange of an unknown type       "exchanges[0] 'x' in vhost '/': unknown exchange type 'y'"
 *   policy without a name             "policies[0]: policy in virtual host '/' has undefined
 *                                      name"
 *   a user limit that is not a number "users[0] 'u': limits: max-connections should be a
 *                                      number, actually was \"twomincepies\""
 *   a queue without a vhost           "queues[0] 'q': virtual host 'undefined' does not
 *                                      exist"
 * and: a user without tags (tags_not_present), both password and password_hash, a hash that
 * is not base64 or not of its algorithm's length, an unknown hashing_algorithm, unknown user
 * limits, permissions for a user or vhost that neither exists nor is in the document, an
 * invalid regular expression, a binding's destination_type other than queue or exchange.
 *
 * Deliberate differences: runtime parameters of other components (federation, shovel,
 * operator_policy) are logged and ignored, where
 * RabbitMQ refuses a component whose plugin is not enabled: a file exported from a broker
 * with plugins still loads. An unknown hashing_algorithm is refused, where RabbitMQ stores
 * it and then fails every login of that user. A vhost named "" or longer than 255 bytes is
 * refused ("vhosts[0]: name must not be empty"), where RabbitMQ creates one that its
 * management API cannot name: Warren's PUT /api/vhosts/NAME takes 1 to 255 bytes. The keys of
 * a policy's definition are not checked here: that is the broker's, when it applies the
 * policy.
 *
 * Arguments (queue, exchange and binding arguments, policy definitions) are converted from
 * JSON to AMQP field tables as RabbitMQ converts them: string 'S', integer 'l', real 'd',
 * true/false 't', object 'F', array 'A'; null is refused, as RabbitMQ refuses it. */
#ifndef WARREN_SRC_DEFINITIONS_DEFINITIONS_H
#define WARREN_SRC_DEFINITIONS_DEFINITIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/table.h"
#include "src/base/version.h"
#include "src/security/auth.h"

/* The version written as rabbit_version and rabbitmq_version on export: the RabbitMQ
 * release whose format Warren writes. RabbitMQ reads it only to guess the hashing algorithm
 * of users exported without one, which Warren never does. */
#define DEFINITIONS_RABBIT_VERSION WARREN_RABBITMQ_VERSION

/* Every string below is owned by the struct definitions it belongs to (NUL-terminated), and
 * every table's raw bytes too. */
struct def_exchange {
    char *vhost, *name, *type;
    bool durable, auto_delete, internal;
    struct wire_table arguments;
};

struct def_queue {
    char *vhost, *name;
    bool durable, auto_delete;
    struct wire_table arguments; /* x-queue-type and the rest, as a client would declare */
};

struct def_binding {
    char *vhost, *source, *destination;
    bool destination_is_exchange; /* destination_type "exchange"; otherwise "queue" */
    char *routing_key;
    struct wire_table arguments;
};

struct def_policy {
    char *vhost, *name, *pattern;
    char *apply_to; /* "all", "queues" or "exchanges" */
    int64_t priority;
    struct wire_table definition; /* "max-length", "dead-letter-exchange", ... */
};

/* Extension point: a new kind of entity the broker applies is one more array here, one
 * parse function in import.c and one export function in export.c. */
struct definitions {
    struct def_exchange *exchanges;
    size_t exchanges_len;
    struct def_queue *queues;
    size_t queues_len;
    struct def_binding *bindings;
    size_t bindings_len;
    struct def_policy *policies;
    size_t policies_len;
};

struct definitions *definitions_new(void);
void definitions_free(struct definitions *d);

/* Builders for the broker's side of an export; every argument is copied (arguments may be
 * an empty table: {.raw = {NULL, 0}}). */
void definitions_add_exchange(struct definitions *d, const char *vhost, const char *name,
                              const char *type, bool durable, bool auto_delete, bool internal,
                              struct wire_table arguments);
void definitions_add_queue(struct definitions *d, const char *vhost, const char *name, bool durable,
                           bool auto_delete, struct wire_table arguments);
void definitions_add_binding(struct definitions *d, const char *vhost, const char *source,
                             const char *destination, bool destination_is_exchange,
                             const char *routing_key, struct wire_table arguments);
void definitions_add_policy(struct definitions *d, const char *vhost, const char *name,
                            const char *pattern, const char *apply_to, int64_t priority,
                            struct wire_table definition);

/* Imports the document text[0..len). On success applies its users, vhosts, permissions,
 * topic permissions and vhost limits to db, sets *out (when out is not NULL) to the rest,
 * and returns 0. On failure returns -1 with a reason in err, and db is unchanged. */
int definitions_import(struct auth_db *db, const char *text, size_t len, struct definitions **out,
                       char *err, size_t err_size);
/* The users, vhosts, permissions, topic permissions and vhost limits this broker stored
 * itself (persist_auth_load): as definitions_import, but an entry of those sections that this
 * version refuses, stored by an earlier one (a pattern past src/base/regex.h's bounds, a vhost
 * named ""), is dropped with an [error] line naming it instead of refusing the document, so
 * that the broker still starts with everything else. -1 only for a document that is not
 * one. */
int definitions_recover(struct auth_db *db, const char *text, size_t len, char *err,
                        size_t err_size);
/* The same from a parsed document. */
int definitions_import_json(struct auth_db *db, const json_t *doc, struct definitions **out,
                            char *err, size_t err_size);

/* The same in steps, for a caller that must not stop for long (the management API checks
 * 30,000 queues in slices): begin checks the top level and the sections of the auth database
 * (users, vhosts, permissions, parameters); each step checks and collects up to max_items
 * more exchanges, policies, queues and bindings (1 while some are left, 0 when all are, -1
 * at an error); finish checks the auth sections again (the database may have changed
 * between steps), applies them and sets *out as definitions_import_json() does. Nothing
 * changes in db before finish, and nothing if it fails. doc is borrowed until
 * definitions_import_free(); begin returns NULL, and the others -1, with a reason in err. */
struct definitions_import;
struct definitions_import *definitions_import_begin(struct auth_db *db, const json_t *doc,
                                                    char *err, size_t err_size);
int definitions_import_step(struct definitions_import *im, size_t max_items, char *err,
                            size_t err_size);
int definitions_import_finish(struct definitions_import *im, struct definitions **out, char *err,
                              size_t err_size);
void definitions_import_free(struct definitions_import *im);
/* The same from a file (at most 64 MiB); the reason names the file. */
int definitions_import_file(struct auth_db *db, const char *path, struct definitions **out,
                            char *err, size_t err_size);

/* The document RabbitMQ would export for db and extra (NULL: none), as NUL-terminated JSON
 * the caller frees: users, vhosts, permissions, topic permissions, vhost limits as
 * parameters, and extra's exchanges, queues, bindings and policies. Entries are sorted by
 * name so that an export can be compared with another. */
char *definitions_export(const struct auth_db *db, const struct definitions *extra);
/* The same document as a new jansson object, for a caller that adds to it. */
json_t *definitions_export_json(const struct auth_db *db, const struct definitions *extra);

/* One exchange, queue or binding as an export lists it (every string copied), for a writer
 * that sends the document a part at a time. */
json_t *definitions_exchange_json(const char *vhost, const char *name, const char *type,
                                  bool durable, bool auto_delete, bool internal,
                                  struct wire_table arguments);
json_t *definitions_queue_json(const char *vhost, const char *name, bool durable, bool auto_delete,
                               struct wire_table arguments);
json_t *definitions_binding_json(const char *vhost, const char *source, const char *destination,
                                 bool destination_is_exchange, const char *routing_key,
                                 struct wire_table arguments);

/* JSON <-> AMQP tables as RabbitMQ converts them; exposed for the management API. json is
 * an object (NULL, null and [] give the empty table). The encoded table (its entries,
 * without the length prefix) is malloc'd into out->raw; -1 with err for null inside (which
 * RabbitMQ refuses), a name longer than 255 bytes or nesting deeper than
 * WIRE_TABLE_MAX_DEPTH. */
int definitions_json_to_table(const json_t *json, struct wire_table *out, char *err,
                              size_t err_size);
/* A new object for the table, or NULL if the table is malformed or holds a string that is
 * not UTF-8 (JSON cannot carry it). */
json_t *definitions_table_to_json(struct wire_table t);

#endif
