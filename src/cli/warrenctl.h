/* warrenctl: the admin CLI, a client of the management HTTP API (src/mgmt/mgmt.h). Shared parts:
 * the connection settings, the HTTP client and its two kinds of request (warrenctl_http.c),
 * the output formats (warrenctl_format.c), and the command table's entries with the argument
 * checks every command uses (warrenctl.c, which also holds main, the options and the help).
 * The commands are in cmd_list.c (the generic list_*), cmd_users.c (users, vhosts,
 * permissions), cmd_access.c (topic permissions, user limits, cluster name, global
 * parameters), cmd_objects.c (queues, exchanges, bindings, publish, get) and cmd_runtime.c
 * (status, connections, definitions, policies). */
#ifndef WARREN_SRC_CLI_WARRENCTL_H
#define WARREN_SRC_CLI_WARRENCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit statuses. */
enum {
    CTL_OK = 0,
    CTL_ERROR = 1, /* the broker is down, refused the request, or the object is missing */
    CTL_USAGE = 2, /* the command line is wrong */
};

enum ctl_format {
    CTL_FORMAT_TABLE, /* aligned columns with a header line */
    CTL_FORMAT_JSON,  /* the API's JSON, for scripts */
    CTL_FORMAT_TSV,   /* tab-separated, no header: what `rabbitmqctl -q` prints */
};

struct ctl {
    char host[256];
    int port;
    char user[256];
    char password[256];
    char vhost[256];
    enum ctl_format format;
    bool quiet; /* no "Listing queues ..." line */
    double timeout_s;
};

/* A reply: the HTTP status (0 when no reply came) and the body. */
struct ctl_reply {
    long status;
    char *body; /* NUL-terminated; free it */
    size_t len;
};

/* Sends method path (percent-encoding is the caller's: see ctl_path_add) with body (NULL: none)
 * and fills *out. Returns 0 when a reply came, whatever its status; -1 after printing why
 * none came ("cannot connect to the management API at http://host:port: Connection
 * refused"). */
int ctl_http(const struct ctl *c, const char *method, const char *path, const char *body,
             const char *const *headers, struct ctl_reply *out);
void ctl_reply_free(struct ctl_reply *r);

/* Appends one percent-encoded path segment ("/" becomes %2F, as vhost names need) to path
 * (size bytes). False if it does not fit. */
bool ctl_path_add(char *path, size_t size, const char *segment);

/* The reply's JSON body, or NULL (with a message printed) when it is not JSON. */
json_t *ctl_reply_json(const struct ctl_reply *r);

/* Prints why a request failed, from its status and the API's {"error", "reason"}:
 * what names the object ("queue 'q' in vhost '/'"). Returns CTL_ERROR. */
int ctl_report_error(const struct ctl *c, const struct ctl_reply *r, const char *what);

/* A request (body: JSON or NULL) whose answer is JSON: that JSON (to json_decref), or NULL
 * after printing why, with *rc the exit status. what names the object for a 404. */
json_t *ctl_request_json(const struct ctl *c, const char *method, const char *path,
                         const json_t *body, const char *what, int *rc);
/* ctl_request_json with GET and no body. */
json_t *ctl_get_json(const struct ctl *c, const char *path, const char *what, int *rc);
/* A request whose answer is a status (2xx success, anything else printed as an error, what
 * naming the object). headers: NULL-terminated, or NULL. status (may be NULL) gets the HTTP
 * status when a reply came. Returns the exit status. */
int ctl_send_request(const struct ctl *c, const char *method, const char *path, const json_t *body,
                     const char *const *headers, const char *what, long *status);

/* ---- Output ---------------------------------------------------------------------------- */

/* A column: the name shown and where its value is in an object (a dotted path, e.g.
 * "message_stats.publish_details.rate"). */
struct ctl_column {
    const char *name;
    const char *path;
};

/* Prints rows (a JSON array of objects) with the given columns in c's format. */
void ctl_print_rows(const struct ctl *c, const json_t *rows, const struct ctl_column *cols,
                    size_t ncols);
/* The value at a dotted path of obj, or NULL. */
const json_t *ctl_lookup(const json_t *obj, const char *path);
/* A value as text: strings as they are, numbers, true/false, other values as compact JSON,
 * null and missing values as "". Returns a string to free. */
char *ctl_value_text(const json_t *v);
/* Prints a line for people (fmt, then a newline): nothing with -q or --format json. */
void ctl_say(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Commands -------------------------------------------------------------------------- */

/* Longest API path a command builds. */
#define CTL_PATH_MAX 4096

/* An entry of the command table (warrenctl.c). */
struct command {
    const char *name;
    const char *args; /* what follows the name in the usage line */
    const char *summary;
    const char *help; /* more lines: columns, options, examples */
    int (*run)(struct ctl *c, int argc, char **argv);
    const struct ctl_column *columns; /* list_* commands: the columns that exist */
    size_t ncolumns;
    const char *const *default_columns; /* NULL-terminated */
};

/* The command called name, or NULL. */
const struct command *ctl_find_command(const char *name);

/* Prints "warrenctl: " and the message, then how to call cmd (NULL: where the commands are
 * listed), on stderr. Returns CTL_USAGE. */
int ctl_usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A command's arguments: argv[0] is its name (or the word after it, as in "declare queue").
 * The checks return CTL_OK, or CTL_USAGE after a usage error naming cmd. */

/* The value of "key=..." among args, or NULL. */
const char *ctl_arg_value(int argc, char **argv, const char *key);
/* Checks that every key=value argument is one of keys (NULL-terminated), and that there are
 * between min and max plain arguments; the plain ones go to pos. */
int ctl_split_args(const struct command *cmd, int argc, char **argv, const char *const *keys,
                   int min, int max, char **pos, int *npos);
/* v ("true" or "false") in *out; def when v is NULL. */
int ctl_parse_bool(const struct command *cmd, const char *key, const char *v, bool def, bool *out);
/* A JSON object given on the command line (arguments=..., properties=...) in *out (to
 * json_decref); NULL when v is NULL. */
int ctl_parse_object(const struct command *cmd, const char *key, const char *v, json_t **out);

/* The commands of the table, each run with argv[0] its name and returning the exit status. */

/* cmd_list.c: the generic list_* */
int cmd_list(struct ctl *c, int argc, char **argv);

/* cmd_users.c: users, vhosts, permissions */
int cmd_add_user(struct ctl *c, int argc, char **argv);
int cmd_delete_user(struct ctl *c, int argc, char **argv);
int cmd_change_password(struct ctl *c, int argc, char **argv);
int cmd_set_user_tags(struct ctl *c, int argc, char **argv);
int cmd_add_vhost(struct ctl *c, int argc, char **argv);
int cmd_delete_vhost(struct ctl *c, int argc, char **argv);
int cmd_set_permissions(struct ctl *c, int argc, char **argv);
int cmd_clear_permissions(struct ctl *c, int argc, char **argv);
int cmd_list_user_permissions(struct ctl *c, int argc, char **argv);

/* cmd_access.c: topic permissions, user limits, the cluster's name, global parameters */
int cmd_set_topic_permissions(struct ctl *c, int argc, char **argv);
int cmd_clear_topic_permissions(struct ctl *c, int argc, char **argv);
int cmd_set_user_limits(struct ctl *c, int argc, char **argv);
int cmd_clear_user_limits(struct ctl *c, int argc, char **argv);
int cmd_list_user_limits(struct ctl *c, int argc, char **argv);
int cmd_set_cluster_name(struct ctl *c, int argc, char **argv);
int cmd_set_global_parameter(struct ctl *c, int argc, char **argv);
int cmd_clear_global_parameter(struct ctl *c, int argc, char **argv);

/* cmd_objects.c: queues, exchanges, bindings, publish and get */
int cmd_declare(struct ctl *c, int argc, char **argv);
int cmd_delete(struct ctl *c, int argc, char **argv);
int cmd_purge_queue(struct ctl *c, int argc, char **argv);
int cmd_publish(struct ctl *c, int argc, char **argv);
int cmd_get(struct ctl *c, int argc, char **argv);

/* cmd_runtime.c: status, connections, definitions, policies, the memory watermark */
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_cluster_status(struct ctl *c, int argc, char **argv);
int cmd_transfer_leadership(struct ctl *c, int argc, char **argv);
int cmd_close_connection(struct ctl *c, int argc, char **argv);
int cmd_export_definitions(struct ctl *c, int argc, char **argv);
int cmd_import_definitions(struct ctl *c, int argc, char **argv);
int cmd_set_policy(struct ctl *c, int argc, char **argv);
int cmd_clear_policy(struct ctl *c, int argc, char **argv);
int cmd_list_policies(struct ctl *c, int argc, char **argv);
int cmd_set_vm_memory_high_watermark(struct ctl *c, int argc, char **argv);

#endif
