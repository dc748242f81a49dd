/* warrenctl: operate Warren from a shell, as rabbitmqctl and rabbitmqadmin operate RabbitMQ,
 * through the management HTTP API. Exit status 0 on success, 1 when the broker cannot be
 * reached or refuses, 2 for a wrong command line. This file holds main with the options and
 * the settings file, the command table with its help, and the argument checks the commands
 * share; the commands themselves are in the cmd_*.c files (src/cli/warrenctl.h lists them). */
#include "build_config.h"

#include "src/cli/warrenctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void command_help(FILE *out, const struct command *cmd);

int ctl_usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "warrenctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "\nusage: warrenctl %s %s\n(warrenctl %s --help for more)\n", cmd->name,
                cmd->args, cmd->name);
    else
        fprintf(stderr, "\n(warrenctl --help lists the commands)\n");
    return CTL_USAGE;
}

/* ---- key=value arguments --------------------------------------------------------------- */

/* The value of "key=..." among args, or NULL. */
const char *ctl_arg_value(int argc, char **argv, const char *key)
{
    size_t n = strlen(key);

    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    }
    return NULL;
}

/* Checks that every key=value argument is one of keys (NULL-terminated), and that there are
 * between min and max plain arguments; the plain ones go to pos. */
int ctl_split_args(const struct command *cmd, int argc, char **argv, const char *const *keys,
                   int min, int max, char **pos, int *npos)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        bool known = false;
        if (eq != NULL && keys != NULL) {
            for (size_t k = 0; keys[k] != NULL; k++) {
                if (strlen(keys[k]) == (size_t)(eq - argv[i]) &&
                    strncmp(argv[i], keys[k], (size_t)(eq - argv[i])) == 0)
                    known = true;
            }
            if (!known)
                return ctl_usage_error(cmd, "unknown option '%.*s'", (int)(eq - argv[i]), argv[i]);
            continue;
        }
        if (*npos == max)
            return ctl_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        pos[(*npos)++] = argv[i];
    }
    if (*npos < min)
        return ctl_usage_error(cmd, "missing argument");
    return CTL_OK;
}

int ctl_parse_bool(const struct command *cmd, const char *key, const char *v, bool def, bool *out)
{
    *out = def;
    if (v == NULL)
        return CTL_OK;
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return ctl_usage_error(cmd, "%s must be true or false, not '%s'", key, v);
    return CTL_OK;
}

/* A JSON object given on the command line (arguments=..., properties=...). */
int ctl_parse_object(const struct command *cmd, const char *key, const char *v, json_t **out)
{
    json_error_t err;

    *out = NULL;
    if (v == NULL)
        return CTL_OK;
    *out = json_loads(v, 0, &err);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ctl_usage_error(cmd,
                               "%s must be a JSON object, e.g. %s='{\"x-max-length\": 10}'%s%s",
                               key, key, err.text[0] ? ": " : "", err.text);
    }
    return CTL_OK;
}

/* ---- help ------------------------------------------------------------------------------ */

static int cmd_help(struct ctl *c, int argc, char **argv);

/* The columns of each list_* command, and those it shows when none are named. */
static const struct ctl_column queue_columns[] = {
    {"name", "name"},
    {"vhost", "vhost"},
    {"durable", "durable"},
    {"auto_delete", "auto_delete"},
    {"exclusive", "exclusive"},
    {"arguments", "arguments"},
    {"messages", "messages"},
    {"messages_ready", "messages_ready"},
    {"messages_unacknowledged", "messages_unacknowledged"},
    {"message_bytes_ready", "message_bytes_ready"},
    {"consumers", "consumers"},
    {"exclusive_consumer_tag", "exclusive_consumer_tag"},
    {"state", "state"},
    {"type", "type"},
    {"policy", "policy"},
    {"publish", "message_stats.publish"},
    {"publish_rate", "message_stats.publish_details.rate"},
    {"deliver_get", "message_stats.deliver_get"},
    {"deliver_get_rate", "message_stats.deliver_get_details.rate"},
    {"redeliver", "message_stats.redeliver"},
    {"redeliver_rate", "message_stats.redeliver_details.rate"},
    /* A stream's replicas, as rabbitmqctl shows them (empty for a classic queue); leader is
     * filled in by cmd_list from the node the API names. */
    {"leader", "leader"},
    {"members", "members"},
    {"online", "online"},
    /* A stream's log, by the management API's names for it (empty for a classic queue). */
    {"stream_first_offset", "stream_first_offset"},
    {"stream_last_offset", "stream_last_offset"},
    {"stream_messages", "stream_messages"},
    {"stream_disk_bytes", "stream_disk_bytes"},
    {"stream_segments", "stream_segments"},
};
static const char *const queue_defaults[] = {"name", "messages", NULL};

static const struct ctl_column exchange_columns[] = {
    {"name", "name"},
    {"vhost", "vhost"},
    {"type", "type"},
    {"durable", "durable"},
    {"auto_delete", "auto_delete"},
    {"internal", "internal"},
    {"arguments", "arguments"},
};
static const char *const exchange_defaults[] = {"name", "type", NULL};

static const struct ctl_column binding_columns[] = {
    {"source_name", "source"},
    {"source_kind", "source_kind"},
    {"destination_name", "destination"},
    {"destination_kind", "destination_type"},
    {"routing_key", "routing_key"},
    {"arguments", "arguments"},
    {"vhost", "vhost"},
    {"properties_key", "properties_key"},
};
static const char *const binding_defaults[] = {
    "source_name", "source_kind", "destination_name", "destination_kind", "routing_key",
    "arguments",   NULL};

static const struct ctl_column connection_columns[] = {
    {"name", "name"},           {"user", "user"},
    {"vhost", "vhost"},         {"peer_host", "peer_host"},
    {"peer_port", "peer_port"}, {"host", "host"},
    {"port", "port"},           {"state", "state"},
    {"channels", "channels"},   {"protocol", "protocol"},
    {"frame_max", "frame_max"}, {"channel_max", "channel_max"},
    {"timeout", "timeout"},     {"ssl", "ssl"},
    {"send_pend", "send_pend"}, {"client_properties", "client_properties"},
    {"user_provided_name", "user_provided_name"},
};
static const char *const connection_defaults[] = {"user", "peer_host", "peer_port", "state", NULL};

static const struct ctl_column channel_columns[] = {
    {"name", "name"},
    {"connection", "connection_details.name"},
    {"number", "number"},
    {"user", "user"},
    {"vhost", "vhost"},
    {"state", "state"},
    {"consumer_count", "consumer_count"},
    {"messages_unacknowledged", "messages_unacknowledged"},
    {"messages_uncommitted", "messages_uncommitted"},
    {"acks_uncommitted", "acks_uncommitted"},
    {"prefetch_count", "prefetch_count"},
    {"global_prefetch_count", "global_prefetch_count"},
    {"confirm", "confirm"},
    {"transactional", "transactional"},
};
static const char *const channel_defaults[] = {"name", "user", "consumer_count",
                                               "messages_unacknowledged", NULL};

static const struct ctl_column consumer_columns[] = {
    {"queue_name", "queue.name"},
    {"channel", "channel_details.name"},
    {"consumer_tag", "consumer_tag"},
    {"ack_required", "ack_required"},
    {"prefetch_count", "prefetch_count"},
    {"active", "active"},
    {"activity_status", "activity_status"},
    {"exclusive", "exclusive"},
    {"arguments", "arguments"},
    {"vhost", "queue.vhost"},
    /* A stream's consumer: the offset it reads next, and the offsets of the log past it
     * (empty for a consumer of a classic queue). */
    {"stream_offset", "stream_offset"},
    {"stream_offset_lag", "stream_offset_lag"},
};
static const char *const consumer_defaults[] = {
    "queue_name",     "channel", "consumer_tag", "ack_required",
    "prefetch_count", "active",  "arguments",    NULL};

/* The consumers of streams, by the names of rabbitmqctl list_stream_consumers where it has
 * the same figure (its subscription is an AMQP consumer here: a channel and a tag). */
static const struct ctl_column stream_consumer_columns[] = {
    {"stream", "queue.name"},
    {"connection", "channel_details.connection_name"},
    {"channel", "channel_details.name"},
    {"consumer_tag", "consumer_tag"},
    {"offset", "stream_offset"},
    {"offset_lag", "stream_offset_lag"},
    {"prefetch_count", "prefetch_count"},
    {"active", "active"},
    {"vhost", "queue.vhost"},
};
static const char *const stream_consumer_defaults[] = {"stream", "channel",    "consumer_tag",
                                                       "offset", "offset_lag", NULL};

static const struct ctl_column vhost_columns[] = {
    {"name", "name"},
    {"messages", "messages"},
    {"messages_ready", "messages_ready"},
    {"messages_unacknowledged", "messages_unacknowledged"},
    {"tracing", "tracing"},
    {"description", "description"},
};
static const char *const vhost_defaults[] = {"name", NULL};

static const struct ctl_column user_columns[] = {
    {"name", "name"},
    {"tags", "tags"},
};
static const char *const user_defaults[] = {"name", "tags", NULL};

static const struct ctl_column permission_columns[] = {
    {"user", "user"},   {"vhost", "vhost"}, {"configure", "configure"},
    {"write", "write"}, {"read", "read"},
};
static const char *const permission_defaults[] = {"user", "configure", "write", "read", NULL};

static const struct ctl_column policy_columns[] = {
    {"vhost", "vhost"},           {"name", "name"},
    {"pattern", "pattern"},       {"apply_to", "apply-to"},
    {"definition", "definition"}, {"priority", "priority"},
};
static const char *const policy_defaults[] = {"vhost",      "name",     "pattern", "apply_to",
                                              "definition", "priority", NULL};

static const struct ctl_column topic_permission_columns[] = {
    {"user", "user"},   {"vhost", "vhost"}, {"exchange", "exchange"},
    {"write", "write"}, {"read", "read"},
};
static const char *const topic_permission_defaults[] = {"user", "exchange", "write", "read", NULL};

static const struct ctl_column global_parameter_columns[] = {
    {"name", "name"},
    {"value", "value"},
};
static const char *const global_parameter_defaults[] = {"name", "value", NULL};

#define COLUMNS(cols, defaults) cols, sizeof cols / sizeof cols[0], defaults

static const struct command commands[] = {
    {"status", "", "the broker's version, listeners, totals and message rates",
     "Reads /api/overview. With --format json, prints it whole.", cmd_status, NULL, 0, NULL},
    {"cluster_status", "", "the cluster: this node's role, the leader, the in-sync set, lag",
     "Reads /api/cluster/status (Warren's own). On the leader it lists every follower with\n"
     "its in-sync state and lag in bytes; on a follower, whom it follows. A single node\n"
     "says so. With --format json, prints it whole.",
     cmd_cluster_status, NULL, 0, NULL},
    {"transfer_leadership", "", "a planned switchover: the leader steps down for an in-sync node",
     "Run against the leader (--host/--port of its management API). It waits until every\n"
     "in-sync follower has everything, gives its leadership up and restarts as a follower\n"
     "(under its supervisor); clients reconnect to the new leader. Fails on a follower or\n"
     "when no in-sync follower is live.",
     cmd_transfer_leadership, NULL, 0, NULL},
    {"list_queues", "[-p VHOST] [COLUMN ...]", "queues of a vhost, with the columns asked for",
     "Default columns: name messages (as rabbitmqctl list_queues).\n"
     "For a stream (type stream): leader, members and online name this node; "
     "stream_first_offset\nand stream_last_offset are the first and last offsets in its log, "
     "stream_messages\nhow many it holds, stream_disk_bytes and stream_segments its files. "
     "All are empty for\na classic queue.\n"
     "Example: warrenctl list_queues -p / name messages consumers",
     cmd_list, COLUMNS(queue_columns, queue_defaults)},
    {"list_exchanges", "[-p VHOST] [COLUMN ...]", "exchanges of a vhost",
     "Default columns: name type.", cmd_list, COLUMNS(exchange_columns, exchange_defaults)},
    {"list_bindings", "[-p VHOST] [COLUMN ...]", "bindings of a vhost",
     "Default columns: source_name source_kind destination_name destination_kind routing_key "
     "arguments.",
     cmd_list, COLUMNS(binding_columns, binding_defaults)},
    {"list_connections", "[COLUMN ...]", "client connections",
     "Default columns: user peer_host peer_port state. The name column is what "
     "close_connection takes.",
     cmd_list, COLUMNS(connection_columns, connection_defaults)},
    {"list_channels", "[COLUMN ...]", "channels of every connection",
     "Default columns: name user consumer_count messages_unacknowledged.", cmd_list,
     COLUMNS(channel_columns, channel_defaults)},
    {"list_consumers", "[-p VHOST] [COLUMN ...]", "consumers of a vhost's queues",
     "Default columns: queue_name channel consumer_tag ack_required prefetch_count active "
     "arguments.\n"
     "For a consumer of a stream, stream_offset is the offset it reads next and "
     "stream_offset_lag\nhow many offsets the log has past it; both are empty for a classic "
     "queue's consumer.",
     cmd_list, COLUMNS(consumer_columns, consumer_defaults)},
    {"list_stream_consumers", "[-p VHOST] [COLUMN ...]", "consumers of a vhost's streams",
     "Default columns: stream channel consumer_tag offset offset_lag (as rabbitmqctl\n"
     "list_stream_consumers names them). offset is the offset the consumer reads next,\n"
     "offset_lag how many offsets the log has past it (messages it has yet to get, before\n"
     "any x-stream-filter).",
     cmd_list, COLUMNS(stream_consumer_columns, stream_consumer_defaults)},
    {"list_vhosts", "[COLUMN ...]", "virtual hosts", "Default columns: name.", cmd_list,
     COLUMNS(vhost_columns, vhost_defaults)},
    {"list_users", "[COLUMN ...]", "users", "Default columns: name tags.", cmd_list,
     COLUMNS(user_columns, user_defaults)},
    {"list_permissions", "[-p VHOST] [COLUMN ...]", "permissions of the users in a vhost",
     "Default columns: user configure write read.", cmd_list,
     COLUMNS(permission_columns, permission_defaults)},
    {"declare",
     "queue NAME [durable=true] [auto_delete=false] [arguments=JSON]\n"
     "       warrenctl declare exchange NAME [type=direct] [durable=true] [auto_delete=false] "
     "[internal=false] [arguments=JSON]\n"
     "       warrenctl declare binding SOURCE DESTINATION [destination_type=queue] "
     "[routing_key=KEY] [arguments=JSON]",
     "declare a queue, an exchange or a binding in the vhost of -p",
     "Declaring what exists with the same properties changes nothing; with other properties "
     "the broker refuses (inequivalent arg).\n"
     "Example: warrenctl declare queue orders arguments='{\"x-max-length\": 1000}'",
     cmd_declare, NULL, 0, NULL},
    {"delete",
     "queue NAME [if_empty=true] [if_unused=true]\n"
     "       warrenctl delete exchange NAME [if_unused=true]\n"
     "       warrenctl delete binding SOURCE DESTINATION [destination_type=queue] "
     "[routing_key=KEY] [arguments=JSON]",
     "delete a queue, an exchange or a binding", "", cmd_delete, NULL, 0, NULL},
    {"purge_queue", "[-p VHOST] QUEUE", "drop the ready messages of a queue", "", cmd_purge_queue,
     NULL, 0, NULL},
    {"set_vm_memory_high_watermark",
     "FRACTION\n       warrenctl set_vm_memory_high_watermark absolute MEMORY",
     "set the memory high watermark without a restart",
     "FRACTION is of the machine's memory (0 to 1, e.g. 0.6); MEMORY is bytes, or a number "
     "with one of the units kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), as "
     "rabbitmqctl takes them. Publishers are blocked, or unblocked, at once if the broker is "
     "now over, or under, it. A restart goes back to warren.conf's "
     "vm_memory_high_watermark.\n"
     "Example: warrenctl set_vm_memory_high_watermark 0.6",
     cmd_set_vm_memory_high_watermark, NULL, 0, NULL},
    {"close_connection", "NAME [REASON]", "close a client connection with 320 CONNECTION_FORCED",
     "NAME is the connection's name from list_connections name, e.g. "
     "'127.0.0.1:50412 -> 127.0.0.1:5672'. The client is told REASON (default: \"Closed via "
     "management plugin\").",
     cmd_close_connection, NULL, 0, NULL},
    {"export_definitions", "FILE|-", "write the broker's definitions (RabbitMQ's JSON format)",
     "Exchanges, queues, bindings, vhosts, users and permissions, as rabbitmqctl "
     "export_definitions writes them; '-' is standard output.",
     cmd_export_definitions, NULL, 0, NULL},
    {"import_definitions", "FILE|-", "apply a definitions file (RabbitMQ's JSON format)",
     "Objects that exist must be equivalent; '-' reads standard input.", cmd_import_definitions,
     NULL, 0, NULL},
    {"publish", "EXCHANGE ROUTING_KEY [PAYLOAD] [properties=JSON] [payload_encoding=string]",
     "publish one message, for testing",
     "Without PAYLOAD the body is read from standard "
     "input. EXCHANGE \"\" is the default exchange.\n"
     "Example: warrenctl publish \"\" orders 'hello' "
     "properties='{\"delivery_mode\": 2}'",
     cmd_publish, NULL, 0, NULL},
    {"get", "QUEUE [count=1] [ackmode=ack_requeue_true] [encoding=auto] [truncate=BYTES]",
     "take messages from a queue, for testing",
     "ackmode: ack_requeue_true (the default: messages stay, marked redelivered), "
     "ack_requeue_false (removed), reject_requeue_true, reject_requeue_false (dead-lettered).",
     cmd_get, NULL, 0, NULL},
    {"add_user", "USER PASSWORD", "create a user (without tags: set_user_tags gives them)",
     "A user that exists already is an error, as with rabbitmqctl add_user.", cmd_add_user, NULL, 0,
     NULL},
    {"delete_user", "USER", "delete a user and its permissions", "", cmd_delete_user, NULL, 0,
     NULL},
    {"change_password", "USER PASSWORD", "set a user's password", "", cmd_change_password, NULL, 0,
     NULL},
    {"set_user_tags", "USER [TAG ...]", "replace a user's tags (none: clear them)",
     "Tags: administrator, monitoring, policymaker, management (they open the management API), "
     "impersonator, or anything else.",
     cmd_set_user_tags, NULL, 0, NULL},
    {"list_user_permissions", "USER", "permissions of a user in every vhost", "",
     cmd_list_user_permissions, NULL, 0, NULL},
    {"add_vhost", "VHOST [description=TEXT]", "create a virtual host", "", cmd_add_vhost, NULL, 0,
     NULL},
    {"delete_vhost", "VHOST", "delete a virtual host with its queues, exchanges and permissions",
     "Its clients are disconnected first.", cmd_delete_vhost, NULL, 0, NULL},
    {"set_permissions", "[-p VHOST] USER CONFIGURE WRITE READ",
     "set a user's permissions in a vhost (regular expressions)",
     "Example: warrenctl set_permissions -p / app '^app\\.' '.*' '.*'", cmd_set_permissions, NULL,
     0, NULL},
    {"clear_permissions", "[-p VHOST] USER", "remove a user's permissions in a vhost", "",
     cmd_clear_permissions, NULL, 0, NULL},
    {"set_topic_permissions", "[-p VHOST] USER EXCHANGE WRITE READ",
     "set a user's topic permissions on a topic exchange (regular expressions on routing keys)",
     "WRITE is matched against the routing keys of publishes, READ against the binding keys of "
     "bindings from the exchange; {username} and {vhost} are replaced.\n"
     "Example: warrenctl set_topic_permissions -p / app amq.topic '^app\\.' '.*'",
     cmd_set_topic_permissions, NULL, 0, NULL},
    {"clear_topic_permissions", "[-p VHOST] USER [EXCHANGE]",
     "remove a user's topic permissions in a vhost (or on one exchange)", "",
     cmd_clear_topic_permissions, NULL, 0, NULL},
    {"list_topic_permissions", "[-p VHOST] [COLUMN ...]", "topic permissions in a vhost",
     "Default columns: user exchange write read.", cmd_list,
     COLUMNS(topic_permission_columns, topic_permission_defaults)},
    {"set_user_limits", "USER LIMITS", "set a user's limits: max-connections and max-channels",
     "LIMITS is a JSON object; a negative value means no limit. The broker refuses the "
     "connections and channels past them (530 NOT_ALLOWED).\n"
     "Example: warrenctl set_user_limits app '{\"max-connections\": 10, \"max-channels\": 50}'",
     cmd_set_user_limits, NULL, 0, NULL},
    {"clear_user_limits", "USER max-connections|max-channels|all", "remove a user's limit", "",
     cmd_clear_user_limits, NULL, 0, NULL},
    {"list_user_limits", "[USER]", "the limits of every user (or one)", "", cmd_list_user_limits,
     NULL, 0, NULL},
    {"set_cluster_name", "NAME", "name the cluster (the overview's cluster_name)",
     "The name is the global parameter cluster_name.", cmd_set_cluster_name, NULL, 0, NULL},
    {"set_global_parameter", "NAME VALUE", "set a global runtime parameter (VALUE is JSON)", "",
     cmd_set_global_parameter, NULL, 0, NULL},
    {"clear_global_parameter", "NAME", "remove a global runtime parameter", "",
     cmd_clear_global_parameter, NULL, 0, NULL},
    {"list_global_parameters", "[COLUMN ...]", "global runtime parameters",
     "Default columns: name value.", cmd_list,
     COLUMNS(global_parameter_columns, global_parameter_defaults)},
    {"set_policy",
     "[-p VHOST] NAME PATTERN DEFINITION [priority=0] [apply_to=all|queues|exchanges]",
     "set a policy: queues and exchanges whose name PATTERN matches get DEFINITION",
     "DEFINITION is a JSON object of RabbitMQ's policy keys: message-ttl, expires, max-length, "
     "max-length-bytes, overflow, dead-letter-exchange, dead-letter-routing-key, "
     "delivery-limit, alternate-exchange. Of the policies that match, the highest priority "
     "applies.\n"
     "Example: warrenctl set_policy cap '^orders\\.' '{\"max-length\": 1000}' apply_to=queues",
     cmd_set_policy, NULL, 0, NULL},
    {"clear_policy", "[-p VHOST] NAME", "remove a policy", "", cmd_clear_policy, NULL, 0, NULL},
    {"list_policies", "[-p VHOST] [COLUMN ...]", "policies of a vhost", "", cmd_list_policies,
     COLUMNS(policy_columns, policy_defaults)},
    {"set_operator_policy",
     "[-p VHOST] NAME PATTERN DEFINITION [priority=0] [apply_to=all|queues|exchanges]",
     "set an operator policy: limits users cannot lift (the lower numeric value wins)",
     "Administrators only.", cmd_set_policy, NULL, 0, NULL},
    {"clear_operator_policy", "[-p VHOST] NAME", "remove an operator policy", "", cmd_clear_policy,
     NULL, 0, NULL},
    {"list_operator_policies", "[-p VHOST] [COLUMN ...]", "operator policies of a vhost", "",
     cmd_list_policies, COLUMNS(policy_columns, policy_defaults)},
    {"help", "[COMMAND]", "this list, or one command's help", "", cmd_help, NULL, 0, NULL},
};

const struct command *ctl_find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static void general_help(FILE *out)
{
    fprintf(out, "usage: warrenctl [OPTIONS] COMMAND [ARGUMENTS]\n"
                 "Operates a Warren broker through its management HTTP API.\n\n"
                 "Options (also after the command):\n"
                 "  --host HOST        broker host (default localhost)\n"
                 "  --port PORT        management API port (default 15672)\n"
                 "  -u, --user USER    user name (default guest)\n"
                 "  --password PASS    password (default guest)\n"
                 "  -p, --vhost VHOST  virtual host of the command (default /)\n"
                 "  --format FORMAT    table (default), json or tsv\n"
                 "  -q, --quiet        no \"Listing ...\" lines or confirmations\n"
                 "  --timeout SECONDS  how long to wait for the broker (default 60)\n"
                 "  --config FILE      settings file (default: $WARRENCTL_CONFIG, else "
                 "~/.warrenctl.conf)\n"
                 "  -h, --help         this text; COMMAND --help for one command\n"
                 "  -V, --version      the version\n\n"
                 "The settings file has lines 'host = ...', 'port', 'user', 'password', 'vhost', "
                 "'format';\n"
                 "WARRENCTL_HOST, WARRENCTL_PORT, WARRENCTL_USER, WARRENCTL_PASSWORD and "
                 "WARRENCTL_VHOST\noverride it, and options override both.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-20s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nExit status: 0 done, 1 the broker is unreachable or refused, 2 wrong "
                 "command line.\n");
}

static void command_help(FILE *out, const struct command *cmd)
{
    fprintf(out, "usage: warrenctl %s %s\n%s.\n", cmd->name, cmd->args, cmd->summary);
    if (cmd->help[0] != '\0')
        fprintf(out, "%s\n", cmd->help);
    if (cmd->ncolumns > 0) {
        fprintf(out, "Columns:");
        for (size_t i = 0; i < cmd->ncolumns; i++)
            fprintf(out, "%s%s", i % 6 == 0 ? "\n  " : " ", cmd->columns[i].name);
        fprintf(out, "\n");
    }
}

static int cmd_help(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd;

    (void)c;
    if (argc < 2) {
        general_help(stdout);
        return CTL_OK;
    }
    if ((cmd = ctl_find_command(argv[1])) == NULL)
        return ctl_usage_error(NULL, "unknown command '%s'", argv[1]);
    command_help(stdout, cmd);
    return CTL_OK;
}

/* ---- Settings -------------------------------------------------------------------------- */

static int set_setting(struct ctl *c, const char *key, const char *value, const char *where)
{
    char *end;
    long port;
    double t;

    if (strcmp(key, "host") == 0)
        snprintf(c->host, sizeof c->host, "%s", value);
    else if (strcmp(key, "user") == 0)
        snprintf(c->user, sizeof c->user, "%s", value);
    else if (strcmp(key, "password") == 0)
        snprintf(c->password, sizeof c->password, "%s", value);
    else if (strcmp(key, "vhost") == 0)
        snprintf(c->vhost, sizeof c->vhost, "%s", value);
    else if (strcmp(key, "port") == 0) {
        port = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || port < 1 || port > 65535)
            return ctl_usage_error(NULL, "%s: port must be a number from 1 to 65535, not '%s'",
                                   where, value);
        c->port = (int)port;
    } else if (strcmp(key, "timeout") == 0) {
        t = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || t <= 0 || t > 86400)
            return ctl_usage_error(NULL, "%s: timeout must be a number of seconds, not '%s'", where,
                                   value);
        c->timeout_s = t;
    } else if (strcmp(key, "format") == 0) {
        if (strcmp(value, "table") == 0)
            c->format = CTL_FORMAT_TABLE;
        else if (strcmp(value, "json") == 0)
            c->format = CTL_FORMAT_JSON;
        else if (strcmp(value, "tsv") == 0)
            c->format = CTL_FORMAT_TSV;
        else
            return ctl_usage_error(NULL, "%s: format must be table, json or tsv, not '%s'", where,
                                   value);
    } else {
        return ctl_usage_error(NULL, "%s: unknown setting '%s'", where, key);
    }
    return CTL_OK;
}

/* key = value lines; '#' starts a comment. A missing default file is fine, a missing named
 * one is not. */
static int load_settings(struct ctl *c, const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    char line[1024], where[1100];
    unsigned n = 0;
    int rc = CTL_OK;

    if (f == NULL) {
        if (!must_exist && errno == ENOENT)
            return CTL_OK;
        fprintf(stderr, "warrenctl: cannot read %s: %s\n", path, strerror(errno));
        return CTL_USAGE;
    }
    while (rc == CTL_OK && fgets(line, sizeof line, f) != NULL) {
        char *key = line, *eq, *value, *hash = strchr(line, '#');
        n++;
        if (hash != NULL)
            *hash = '\0';
        while (*key == ' ' || *key == '\t')
            key++;
        value = key + strlen(key);
        while (value > key &&
               (value[-1] == '\n' || value[-1] == ' ' || value[-1] == '\t' || value[-1] == '\r'))
            *--value = '\0';
        if (*key == '\0')
            continue;
        snprintf(where, sizeof where, "%s:%u", path, n);
        if ((eq = strchr(key, '=')) == NULL) {
            rc = ctl_usage_error(NULL, "%s: expected 'key = value'", where);
            break;
        }
        value = eq + 1;
        while (eq > key && (eq[-1] == ' ' || eq[-1] == '\t'))
            eq--;
        *eq = '\0';
        while (*value == ' ' || *value == '\t')
            value++;
        rc = set_setting(c, key, value, where);
    }
    fclose(f);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------ */

/* Options that take a value, and the setting they set. */
static const struct {
    const char *long_name;
    char short_name;
    const char *setting;
} value_options[] = {
    {"host", 0, "host"},         {"port", 0, "port"},     {"user", 'u', "user"},
    {"password", 0, "password"}, {"vhost", 'p', "vhost"}, {"format", 0, "format"},
    {"timeout", 0, "timeout"},   {"config", 0, NULL},
};

int main(int argc, char **argv)
{
    struct ctl c = {.port = 15672, .timeout_s = 60, .format = CTL_FORMAT_TABLE};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    const char *config = getenv("WARRENCTL_CONFIG");
    const char *settings[sizeof value_options / sizeof value_options[0]] = {0};
    bool help = false, only_positional = false, config_named = config != NULL;
    int npos = 0, rc;
    const struct command *cmd;
    static const char *const env[][2] = {
        {"WARRENCTL_HOST", "host"},   {"WARRENCTL_PORT", "port"},
        {"WARRENCTL_USER", "user"},   {"WARRENCTL_PASSWORD", "password"},
        {"WARRENCTL_VHOST", "vhost"},
    };
    char home_config[1024];

    if (pos == NULL)
        return CTL_ERROR;
    snprintf(c.host, sizeof c.host, "localhost");
    snprintf(c.user, sizeof c.user, "guest");
    snprintf(c.password, sizeof c.password, "guest");
    snprintf(c.vhost, sizeof c.vhost, "/");

    /* Options first (anywhere on the line), so the files they name are read before the
     * values they set are applied. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        size_t k;
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            pos[npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
            continue;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            c.quiet = true;
            continue;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("warrenctl %s\n", PACKAGE_VERSION);
            free(pos);
            return CTL_OK;
        }
        for (k = 0; k < sizeof value_options / sizeof value_options[0]; k++) {
            size_t n = strlen(value_options[k].long_name);
            if (a[1] == '-' && strncmp(a + 2, value_options[k].long_name, n) == 0 &&
                (a[2 + n] == '\0' || a[2 + n] == '=')) {
                value = a[2 + n] == '=' ? a + 3 + n : NULL;
                break;
            }
            if (a[1] != '-' && a[1] == value_options[k].short_name && value_options[k].short_name &&
                a[2] == '\0')
                break;
        }
        if (k == sizeof value_options / sizeof value_options[0]) {
            free(pos);
            return ctl_usage_error(NULL, "unknown option '%s'", a);
        }
        if (value == NULL) {
            if (i + 1 == argc) {
                free(pos);
                return ctl_usage_error(NULL, "option '%s' needs a value", a);
            }
            value = argv[++i];
        }
        if (value_options[k].setting == NULL) {
            config = value;
            config_named = true;
        } else {
            settings[k] = value;
        }
    }
    if (config == NULL && getenv("HOME") != NULL) {
        snprintf(home_config, sizeof home_config, "%s/.warrenctl.conf", getenv("HOME"));
        config = home_config;
    }
    if (config != NULL && (rc = load_settings(&c, config, config_named)) != CTL_OK) {
        free(pos);
        return rc;
    }
    for (size_t k = 0; k < sizeof env / sizeof env[0]; k++) {
        const char *v = getenv(env[k][0]);
        if (v != NULL && (rc = set_setting(&c, env[k][1], v, env[k][0])) != CTL_OK) {
            free(pos);
            return rc;
        }
    }
    for (size_t k = 0; k < sizeof value_options / sizeof value_options[0]; k++) {
        char where[64];
        snprintf(where, sizeof where, "--%s", value_options[k].long_name);
        if (settings[k] != NULL &&
            (rc = set_setting(&c, value_options[k].setting, settings[k], where)) != CTL_OK) {
            free(pos);
            return rc;
        }
    }

    if (npos == 0) {
        general_help(help ? stdout : stderr);
        free(pos);
        return help ? CTL_OK : CTL_USAGE;
    }
    if ((cmd = ctl_find_command(pos[0])) == NULL) {
        rc = ctl_usage_error(NULL, "unknown command '%s'", pos[0]);
        free(pos);
        return rc;
    }
    if (help) {
        command_help(stdout, cmd);
        free(pos);
        return CTL_OK;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmd->run(&c, npos, pos);
    curl_global_cleanup();
    free(pos);
    return rc;
}
