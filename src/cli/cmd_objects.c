/* warrenctl's commands on what a vhost holds: queues and exchanges (declare, delete,
 * purge_queue), bindings (declare binding, delete binding), and messages for testing (publish,
 * get). Their list_* commands are in cmd_list.c. */
#include "src/cli/warrenctl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "amq.default" stands for the default exchange, whose name is empty, in URLs. */
static const char *exchange_segment(const char *name)
{
    return name[0] == '\0' ? "amq.default" : name;
}

/* ---- declare / delete ------------------------------------------------------------------ */

static void object_path(char *path, size_t size, const char *kind, const char *vhost,
                        const char *name)
{
    snprintf(path, size, "/api/%s", kind);
    ctl_path_add(path, size, vhost);
    ctl_path_add(path, size, name);
}

static int declare_queue(struct ctl *c, const struct command *cmd, int argc, char **argv)
{
    static const char *const keys[] = {"durable", "auto_delete", "arguments", NULL};
    char *pos[1], path[CTL_PATH_MAX], what[600];
    bool durable, auto_delete;
    json_t *args = NULL, *body;
    int npos, rc;
    long status = 0;

    if ((rc = ctl_split_args(cmd, argc - 1, argv + 1, keys, 1, 1, pos, &npos)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "durable", ctl_arg_value(argc, argv, "durable"), true,
                             &durable)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "auto_delete", ctl_arg_value(argc, argv, "auto_delete"), false,
                             &auto_delete)) != CTL_OK ||
        (rc = ctl_parse_object(cmd, "arguments", ctl_arg_value(argc, argv, "arguments"), &args)) !=
            CTL_OK)
        return rc;
    body = json_pack("{s:b, s:b, s:o}", "durable", durable, "auto_delete", auto_delete, "arguments",
                     args != NULL ? args : json_object());
    object_path(path, sizeof path, "queues", c->vhost, pos[0]);
    snprintf(what, sizeof what, "queue '%s' in vhost '%s'", pos[0], c->vhost);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, &status);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s %s", what, status == 201 ? "declared" : "already exists (unchanged)");
    return rc;
}

static int declare_exchange(struct ctl *c, const struct command *cmd, int argc, char **argv)
{
    static const char *const keys[] = {"type",     "durable",   "auto_delete",
                                       "internal", "arguments", NULL};
    char *pos[1], path[CTL_PATH_MAX], what[600];
    bool durable, auto_delete, internal;
    const char *type = ctl_arg_value(argc, argv, "type");
    json_t *args = NULL, *body;
    int npos, rc;
    long status = 0;

    if ((rc = ctl_split_args(cmd, argc - 1, argv + 1, keys, 1, 1, pos, &npos)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "durable", ctl_arg_value(argc, argv, "durable"), true,
                             &durable)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "auto_delete", ctl_arg_value(argc, argv, "auto_delete"), false,
                             &auto_delete)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "internal", ctl_arg_value(argc, argv, "internal"), false,
                             &internal)) != CTL_OK ||
        (rc = ctl_parse_object(cmd, "arguments", ctl_arg_value(argc, argv, "arguments"), &args)) !=
            CTL_OK)
        return rc;
    body = json_pack("{s:s, s:b, s:b, s:b, s:o}", "type", type ? type : "direct", "durable",
                     durable, "auto_delete", auto_delete, "internal", internal, "arguments",
                     args != NULL ? args : json_object());
    object_path(path, sizeof path, "exchanges", c->vhost, pos[0]);
    snprintf(what, sizeof what, "exchange '%s' in vhost '%s'", pos[0], c->vhost);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, &status);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s %s", what, status == 201 ? "declared" : "already exists (unchanged)");
    return rc;
}

static const char *destination_kind(int argc, char **argv, const struct command *cmd, int *rc)
{
    const char *t = ctl_arg_value(argc, argv, "destination_type");

    *rc = CTL_OK;
    if (t == NULL || strcmp(t, "queue") == 0)
        return "q";
    if (strcmp(t, "exchange") == 0)
        return "e";
    *rc = ctl_usage_error(cmd, "destination_type must be queue or exchange, not '%s'", t);
    return NULL;
}

static void binding_path(char *path, size_t size, const char *vhost, const char *source,
                         const char *kind, const char *destination)
{
    snprintf(path, size, "/api/bindings");
    ctl_path_add(path, size, vhost);
    ctl_path_add(path, size, "e");
    ctl_path_add(path, size, exchange_segment(source));
    ctl_path_add(path, size, kind);
    ctl_path_add(path, size, kind[0] == 'e' ? exchange_segment(destination) : destination);
}

static int declare_binding(struct ctl *c, const struct command *cmd, int argc, char **argv)
{
    static const char *const keys[] = {"destination_type", "routing_key", "arguments", NULL};
    char *pos[2], path[CTL_PATH_MAX], what[1200];
    const char *kind, *rk = ctl_arg_value(argc, argv, "routing_key");
    json_t *args = NULL, *body;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc - 1, argv + 1, keys, 2, 2, pos, &npos)) != CTL_OK ||
        (kind = destination_kind(argc, argv, cmd, &rc)) == NULL ||
        (rc = ctl_parse_object(cmd, "arguments", ctl_arg_value(argc, argv, "arguments"), &args)) !=
            CTL_OK)
        return rc;
    body = json_pack("{s:s, s:o}", "routing_key", rk ? rk : "", "arguments",
                     args != NULL ? args : json_object());
    binding_path(path, sizeof path, c->vhost, pos[0], kind, pos[1]);
    snprintf(what, sizeof what, "binding from exchange '%s' to %s '%s' in vhost '%s'", pos[0],
             kind[0] == 'q' ? "queue" : "exchange", pos[1], c->vhost);
    rc = ctl_send_request(c, "POST", path, body, NULL, what, NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s with routing key '%s' declared", what, rk ? rk : "");
    return rc;
}

int cmd_declare(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("declare");

    if (argc < 2)
        return ctl_usage_error(cmd, "declare what? queue, exchange or binding");
    if (strcmp(argv[1], "queue") == 0)
        return declare_queue(c, cmd, argc, argv);
    if (strcmp(argv[1], "exchange") == 0)
        return declare_exchange(c, cmd, argc, argv);
    if (strcmp(argv[1], "binding") == 0)
        return declare_binding(c, cmd, argc, argv);
    return ctl_usage_error(cmd, "cannot declare '%s': queue, exchange or binding", argv[1]);
}

/* The properties key of the binding from source to destination with this routing key and
 * these arguments; NULL after saying why. */
static char *find_binding(const struct ctl *c, const char *path, const char *rk, const json_t *args,
                          const char *what, int *rc)
{
    json_t *list = ctl_get_json(c, path, what, rc), *b;
    char *key = NULL;
    size_t i;

    if (list == NULL)
        return NULL;
    json_array_foreach(list, i, b)
    {
        const char *brk = json_string_value(json_object_get(b, "routing_key"));
        if (brk != NULL && strcmp(brk, rk) == 0 &&
            json_equal(json_object_get(b, "arguments"), (json_t *)args)) {
            key = strdup(json_string_value(json_object_get(b, "properties_key")));
            break;
        }
    }
    json_decref(list);
    if (key == NULL) {
        fprintf(stderr, "warrenctl: %s with routing key '%s' not found\n", what, rk);
        *rc = CTL_ERROR;
    }
    return key;
}

static int delete_binding(struct ctl *c, const struct command *cmd, int argc, char **argv)
{
    static const char *const keys[] = {"destination_type", "routing_key", "arguments", NULL};
    char *pos[2], path[CTL_PATH_MAX], what[1200], *key;
    const char *kind, *rk = ctl_arg_value(argc, argv, "routing_key");
    json_t *args = NULL;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc - 1, argv + 1, keys, 2, 2, pos, &npos)) != CTL_OK ||
        (kind = destination_kind(argc, argv, cmd, &rc)) == NULL ||
        (rc = ctl_parse_object(cmd, "arguments", ctl_arg_value(argc, argv, "arguments"), &args)) !=
            CTL_OK)
        return rc;
    if (args == NULL)
        args = json_object();
    binding_path(path, sizeof path, c->vhost, pos[0], kind, pos[1]);
    snprintf(what, sizeof what, "binding from exchange '%s' to %s '%s' in vhost '%s'", pos[0],
             kind[0] == 'q' ? "queue" : "exchange", pos[1], c->vhost);
    key = find_binding(c, path, rk ? rk : "", args, what, &rc);
    json_decref(args);
    if (key == NULL)
        return rc;
    /* The key is already percent-encoded: appended as it is. */
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", key);
    free(key);
    rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL);
    if (rc == CTL_OK)
        ctl_say(c, "%s with routing key '%s' deleted", what, rk ? rk : "");
    return rc;
}

int cmd_delete(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("delete");
    static const char *const queue_keys[] = {"if_empty", "if_unused", NULL};
    static const char *const exchange_keys[] = {"if_unused", NULL};
    char *pos[1], path[CTL_PATH_MAX], what[600];
    bool if_empty, if_unused, queue;
    int npos, rc;

    if (argc < 2)
        return ctl_usage_error(cmd, "delete what? queue, exchange or binding");
    if (strcmp(argv[1], "binding") == 0)
        return delete_binding(c, cmd, argc, argv);
    queue = strcmp(argv[1], "queue") == 0;
    if (!queue && strcmp(argv[1], "exchange") != 0)
        return ctl_usage_error(cmd, "cannot delete '%s': queue, exchange or binding", argv[1]);
    if ((rc = ctl_split_args(cmd, argc - 1, argv + 1, queue ? queue_keys : exchange_keys, 1, 1, pos,
                             &npos)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "if_empty", ctl_arg_value(argc, argv, "if_empty"), false,
                             &if_empty)) != CTL_OK ||
        (rc = ctl_parse_bool(cmd, "if_unused", ctl_arg_value(argc, argv, "if_unused"), false,
                             &if_unused)) != CTL_OK)
        return rc;
    object_path(path, sizeof path, queue ? "queues" : "exchanges", c->vhost, pos[0]);
    if (if_empty || if_unused)
        snprintf(path + strlen(path), sizeof path - strlen(path), "?%s%s%s",
                 if_empty ? "if-empty=true" : "", if_empty && if_unused ? "&" : "",
                 if_unused ? "if-unused=true" : "");
    snprintf(what, sizeof what, "%s '%s' in vhost '%s'", argv[1], pos[0], c->vhost);
    rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL);
    if (rc == CTL_OK)
        ctl_say(c, "%s deleted", what);
    return rc;
}

int cmd_purge_queue(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("purge_queue");
    char *pos[1], path[CTL_PATH_MAX], what[600];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    object_path(path, sizeof path, "queues", c->vhost, pos[0]);
    ctl_path_add(path, sizeof path, "contents");
    snprintf(what, sizeof what, "queue '%s' in vhost '%s'", pos[0], c->vhost);
    rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL);
    if (rc == CTL_OK)
        ctl_say(c, "%s purged", what);
    return rc;
}

/* ---- publish / get --------------------------------------------------------------------- */

/* All of stdin, for a message body. */
static char *read_stdin(size_t *len)
{
    size_t cap = 65536;
    char *buf = malloc(cap);

    *len = 0;
    while (buf != NULL) {
        size_t n = fread(buf + *len, 1, cap - *len, stdin);
        *len += n;
        if (n == 0)
            break;
        if (*len == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
        }
    }
    return buf;
}

int cmd_publish(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("publish");
    static const char *const keys[] = {"properties", "payload_encoding", NULL};
    char *pos[3], path[CTL_PATH_MAX], what[600];
    const char *enc = ctl_arg_value(argc, argv, "payload_encoding");
    json_t *props = NULL, *body, *reply;
    char *payload = NULL;
    size_t payload_len = 0;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, keys, 2, 3, pos, &npos)) != CTL_OK ||
        (rc = ctl_parse_object(cmd, "properties", ctl_arg_value(argc, argv, "properties"),
                               &props)) != CTL_OK)
        return rc;
    if (enc != NULL && strcmp(enc, "string") != 0 && strcmp(enc, "base64") != 0) {
        json_decref(props);
        return ctl_usage_error(cmd, "payload_encoding must be string or base64, not '%s'", enc);
    }
    if (npos == 3) {
        payload = strdup(pos[2]);
        payload_len = strlen(pos[2]);
    } else if ((payload = read_stdin(&payload_len)) == NULL) {
        json_decref(props);
        fprintf(stderr, "warrenctl: cannot read the message body from standard input\n");
        return CTL_ERROR;
    }
    body = json_pack("{s:o, s:s, s:s%, s:s}", "properties", props ? props : json_object(),
                     "routing_key", pos[1], "payload", payload, payload_len, "payload_encoding",
                     enc ? enc : "string");
    free(payload);
    if (body == NULL) {
        fprintf(stderr, "warrenctl: the message body is not UTF-8 text: use "
                        "payload_encoding=base64 with a base64 body\n");
        return CTL_ERROR;
    }
    snprintf(path, sizeof path, "/api/exchanges");
    ctl_path_add(path, sizeof path, c->vhost);
    ctl_path_add(path, sizeof path, exchange_segment(pos[0]));
    ctl_path_add(path, sizeof path, "publish");
    snprintf(what, sizeof what, "exchange '%s' in vhost '%s'", pos[0], c->vhost);
    reply = ctl_request_json(c, "POST", path, body, what, &rc);
    json_decref(body);
    if (reply == NULL)
        return rc;
    if (c->format == CTL_FORMAT_JSON) {
        json_dumpf(reply, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (!c->quiet) {
        /* rabbitmqadmin's words. */
        printf("%s\n", json_is_true(json_object_get(reply, "routed"))
                           ? "Message published"
                           : "Message published but NOT routed");
    }
    json_decref(reply);
    return CTL_OK;
}

static const struct ctl_column got_columns[] = {
    {"routing_key", "routing_key"},     {"exchange", "exchange"},
    {"message_count", "message_count"}, {"payload", "payload"},
    {"payload_bytes", "payload_bytes"}, {"payload_encoding", "payload_encoding"},
    {"properties", "properties"},       {"redelivered", "redelivered"},
};

int cmd_get(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("get");
    static const char *const keys[] = {"count", "ackmode", "encoding", "truncate", NULL};
    char *pos[1], path[CTL_PATH_MAX], what[600], *end;
    const char *count = ctl_arg_value(argc, argv, "count"),
               *truncate = ctl_arg_value(argc, argv, "truncate");
    const char *ackmode = ctl_arg_value(argc, argv, "ackmode"),
               *encoding = ctl_arg_value(argc, argv, "encoding");
    long n = 1, t = -1;
    json_t *body, *msgs;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, keys, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    if (count != NULL && ((n = strtol(count, &end, 10)) < 1 || *end != '\0'))
        return ctl_usage_error(cmd, "count must be a positive number, not '%s'", count);
    if (truncate != NULL && ((t = strtol(truncate, &end, 10)) < 0 || *end != '\0'))
        return ctl_usage_error(cmd, "truncate must be a number of bytes, not '%s'", truncate);
    body =
        json_pack("{s:I, s:s, s:s}", "count", (json_int_t)n, "ackmode",
                  ackmode ? ackmode : "ack_requeue_true", "encoding", encoding ? encoding : "auto");
    if (t >= 0)
        json_object_set_new(body, "truncate", json_integer(t));
    object_path(path, sizeof path, "queues", c->vhost, pos[0]);
    ctl_path_add(path, sizeof path, "get");
    snprintf(what, sizeof what, "queue '%s' in vhost '%s'", pos[0], c->vhost);
    msgs = ctl_request_json(c, "POST", path, body, what, &rc);
    json_decref(body);
    if (msgs == NULL)
        return rc;
    if (c->format == CTL_FORMAT_JSON) {
        json_dumpf(msgs, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        putchar('\n');
    } else if (json_array_size(msgs) == 0) {
        ctl_say(c, "%s is empty", what);
    } else {
        ctl_print_rows(c, msgs, got_columns, sizeof got_columns / sizeof got_columns[0]);
    }
    json_decref(msgs);
    return CTL_OK;
}
