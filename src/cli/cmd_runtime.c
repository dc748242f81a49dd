/* warrenctl's commands on the running broker as a whole: status (the overview), connections
 * (close_connection), definitions (export_definitions, import_definitions) and policies
 * (set_policy, clear_policy, list_policies, and their operator_policy twins). The other
 * list_* commands are in cmd_list.c. */
#include "src/cli/warrenctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- status ---------------------------------------------------------------------------- */

static double rate_of(const json_t *o, const char *path)
{
    const json_t *v = ctl_lookup(o, path);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

static long long int_of(const json_t *o, const char *path)
{
    const json_t *v = ctl_lookup(o, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

int cmd_cluster_status(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("cluster_status");
    char *pos[1];
    int npos, rc;
    json_t *o, *f;
    size_t i;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 0, 0, pos, &npos)) != CTL_OK)
        return rc;
    if ((o = ctl_get_json(c, "/api/cluster/status", NULL, &rc)) == NULL)
        return rc;
    if (c->format == CTL_FORMAT_JSON) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
        return CTL_OK;
    }
    if (!json_is_true(json_object_get(o, "enabled"))) {
        printf("Single node: cluster.enabled is false\n");
        json_decref(o);
        return CTL_OK;
    }
    printf("Cluster %s\n", json_string_value(json_object_get(o, "name")));
    printf("Node %s: %s, epoch %lld\n", json_string_value(json_object_get(o, "node")),
           json_string_value(json_object_get(o, "role")),
           (long long)json_integer_value(json_object_get(o, "epoch")));
    printf("Leader: %s\n", json_is_string(json_object_get(o, "leader"))
                               ? json_string_value(json_object_get(o, "leader"))
                               : "(none known)");
    printf("In-sync set:");
    json_array_foreach(json_object_get(o, "isr"), i, f)
    {
        printf(" %s", json_string_value(f));
    }
    putchar('\n');
    if (json_array_size(json_object_get(o, "followers")) > 0) {
        printf("%-20s %-10s %-8s %-8s %s\n", "follower", "connected", "live", "in_sync",
               "lag_bytes");
        json_array_foreach(json_object_get(o, "followers"), i, f)
        {
            printf("%-20s %-10s %-8s %-8s %lld\n", json_string_value(json_object_get(f, "name")),
                   json_is_true(json_object_get(f, "connected")) ? "yes" : "no",
                   json_is_true(json_object_get(f, "live")) ? "yes" : "no",
                   json_is_true(json_object_get(f, "in_sync")) ? "yes" : "no",
                   (long long)json_integer_value(json_object_get(f, "lag_bytes")));
        }
    }
    json_decref(o);
    return CTL_OK;
}

int cmd_transfer_leadership(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("transfer_leadership");
    char *pos[1];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 0, 0, pos, &npos)) != CTL_OK)
        return rc;
    rc = ctl_send_request(c, "POST", "/api/cluster/transfer-leadership", NULL, NULL, "this node",
                          NULL);
    if (rc == CTL_OK)
        ctl_say(c, "Leadership is given up once the followers have everything; the next "
                   "in-sync node takes over");
    return rc;
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("status");
    char *pos[1];
    int npos, rc;
    json_t *o;
    const json_t *listeners, *l;
    size_t i;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 0, 0, pos, &npos)) != CTL_OK)
        return rc;
    if ((o = ctl_get_json(c, "/api/overview", NULL, &rc)) == NULL)
        return rc;
    if (c->format == CTL_FORMAT_JSON) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
        return CTL_OK;
    }
    printf("Status of node %s\n", json_string_value(json_object_get(o, "node")));
    printf("Product: %s %s (management API of RabbitMQ %s)\n",
           json_string_value(json_object_get(o, "product_name")),
           json_string_value(json_object_get(o, "product_version")),
           json_string_value(json_object_get(o, "rabbitmq_version")));
    printf("Listeners:\n");
    listeners = json_object_get(o, "listeners");
    json_array_foreach(listeners, i, l)
    {
        const char *ip = json_string_value(json_object_get(l, "ip_address"));
        printf("  %-16s %s%s%s:%lld\n", json_string_value(json_object_get(l, "protocol")),
               strchr(ip ? ip : "", ':') ? "[" : "", ip ? ip : "?",
               strchr(ip ? ip : "", ':') ? "]" : "", int_of(l, "port"));
    }
    printf("Connections: %lld, channels: %lld, consumers: %lld\n",
           int_of(o, "object_totals.connections"), int_of(o, "object_totals.channels"),
           int_of(o, "object_totals.consumers"));
    printf("Exchanges: %lld, queues: %lld\n", int_of(o, "object_totals.exchanges"),
           int_of(o, "object_totals.queues"));
    printf("Messages: %lld (ready %lld, unacknowledged %lld)\n", int_of(o, "queue_totals.messages"),
           int_of(o, "queue_totals.messages_ready"),
           int_of(o, "queue_totals.messages_unacknowledged"));
    printf("Rates: publish %.1f/s, deliver/get %.1f/s, redeliver %.1f/s\n",
           rate_of(o, "message_stats.publish_details.rate"),
           rate_of(o, "message_stats.deliver_get_details.rate"),
           rate_of(o, "message_stats.redeliver_details.rate"));
    json_decref(o);
    return CTL_OK;
}

/* ---- connections ----------------------------------------------------------------------- */

int cmd_close_connection(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("close_connection");
    char *pos[2], path[CTL_PATH_MAX], what[600], header[700];
    const char *headers[2] = {NULL, NULL};
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 2, pos, &npos)) != CTL_OK)
        return rc;
    snprintf(path, sizeof path, "/api/connections");
    ctl_path_add(path, sizeof path, pos[0]);
    if (npos == 2) {
        if (strpbrk(pos[1], "\r\n") != NULL)
            return ctl_usage_error(cmd, "the reason must be one line");
        snprintf(header, sizeof header, "X-Reason: %s", pos[1]);
        headers[0] = header;
    }
    snprintf(what, sizeof what, "connection '%s'", pos[0]);
    rc = ctl_send_request(c, "DELETE", path, NULL, headers, what, NULL);
    if (rc == CTL_OK)
        ctl_say(c, "%s closed", what);
    return rc;
}

/* ---- definitions ----------------------------------------------------------------------- */

int cmd_export_definitions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("export_definitions");
    char *pos[1];
    int npos, rc;
    json_t *d;
    FILE *out;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    if ((d = ctl_get_json(c, "/api/definitions", NULL, &rc)) == NULL)
        return rc;
    out = strcmp(pos[0], "-") == 0 ? stdout : fopen(pos[0], "w");
    if (out == NULL) {
        fprintf(stderr, "warrenctl: cannot write %s: %s\n", pos[0], strerror(errno));
        json_decref(d);
        return CTL_ERROR;
    }
    rc = json_dumpf(d, out, JSON_INDENT(2)) == 0 && fputc('\n', out) != EOF ? CTL_OK : CTL_ERROR;
    if (out != stdout && fclose(out) != 0)
        rc = CTL_ERROR;
    if (rc != CTL_OK)
        fprintf(stderr, "warrenctl: cannot write %s: %s\n", pos[0], strerror(errno));
    else if (out != stdout)
        ctl_say(c, "definitions exported to %s", pos[0]);
    json_decref(d);
    return rc;
}

int cmd_import_definitions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("import_definitions");
    char *pos[1];
    int npos, rc;
    json_t *d;
    json_error_t err;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    if (strcmp(pos[0], "-") == 0) {
        d = json_loadf(stdin, 0, &err);
    } else {
        FILE *f = fopen(pos[0], "r");
        if (f == NULL) {
            fprintf(stderr, "warrenctl: cannot read %s: %s\n", pos[0], strerror(errno));
            return CTL_ERROR;
        }
        d = json_loadf(f, 0, &err);
        fclose(f);
    }
    if (d == NULL || !json_is_object(d)) {
        if (d == NULL)
            fprintf(stderr, "warrenctl: %s: not a definitions file: %s (line %d)\n", pos[0],
                    err.text, err.line);
        else
            fprintf(stderr, "warrenctl: %s: not a definitions file: not a JSON object\n", pos[0]);
        json_decref(d);
        return CTL_ERROR;
    }
    rc = ctl_send_request(c, "POST", "/api/definitions", d, NULL, "the definitions", NULL);
    json_decref(d);
    if (rc == CTL_OK)
        ctl_say(c, "definitions imported from %s", pos[0]);
    return rc;
}

/* ---- policies -------------------------------------------------------------------------- */

static bool is_operator_command(const char *name)
{
    return strstr(name, "operator_polic") != NULL;
}

static void policy_path(char *path, size_t size, bool op, const char *vhost, const char *name)
{
    snprintf(path, size, "/api/%s", op ? "operator-policies" : "policies");
    ctl_path_add(path, size, vhost);
    if (name != NULL)
        ctl_path_add(path, size, name);
}

/* set_policy [-p VHOST] NAME PATTERN DEFINITION [priority=N] [apply_to=all|queues|exchanges] */
int cmd_set_policy(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command(argv[0]);
    static const char *const keys[] = {"priority", "apply_to", NULL};
    bool op = is_operator_command(argv[0]);
    const char *priority = ctl_arg_value(argc, argv, "priority"),
               *apply_to = ctl_arg_value(argc, argv, "apply_to");
    char *pos[3], path[CTL_PATH_MAX], what[600], *end;
    json_t *definition, *body;
    long long prio = 0;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, keys, 3, 3, pos, &npos)) != CTL_OK)
        return rc;
    if (priority != NULL &&
        ((prio = strtoll(priority, &end, 10)), *priority == '\0' || *end != '\0'))
        return ctl_usage_error(cmd, "priority must be an integer, not '%s'", priority);
    if (apply_to != NULL && strcmp(apply_to, "all") != 0 && strcmp(apply_to, "queues") != 0 &&
        strcmp(apply_to, "exchanges") != 0)
        return ctl_usage_error(cmd, "apply_to must be all, queues or exchanges, not '%s'",
                               apply_to);
    if ((rc = ctl_parse_object(cmd, "DEFINITION", pos[2], &definition)) != CTL_OK)
        return rc;
    body = json_pack("{s:s, s:o, s:I, s:s}", "pattern", pos[1], "definition", definition,
                     "priority", (json_int_t)prio, "apply-to", apply_to ? apply_to : "all");
    policy_path(path, sizeof path, op, c->vhost, pos[0]);
    snprintf(what, sizeof what, "%s '%s' in vhost '%s'", op ? "operator policy" : "policy", pos[0],
             c->vhost);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s set", what);
    return rc;
}

int cmd_clear_policy(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command(argv[0]);
    bool op = is_operator_command(argv[0]);
    char *pos[1], path[CTL_PATH_MAX], what[600];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    policy_path(path, sizeof path, op, c->vhost, pos[0]);
    snprintf(what, sizeof what, "%s '%s' in vhost '%s'", op ? "operator policy" : "policy", pos[0],
             c->vhost);
    if ((rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL)) == CTL_OK)
        ctl_say(c, "%s cleared", what);
    return rc;
}

int cmd_list_policies(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command(argv[0]);
    bool op = is_operator_command(argv[0]);
    struct ctl_column cols[16];
    size_t ncols = 0;
    char path[CTL_PATH_MAX], what[400];
    json_t *rows;
    int rc;

    for (int i = 1; i < argc; i++) {
        size_t k;
        for (k = 0; k < cmd->ncolumns && strcmp(cmd->columns[k].name, argv[i]) != 0; k++)
            ;
        if (k == cmd->ncolumns)
            return ctl_usage_error(cmd, "unknown column '%s'", argv[i]);
        if (ncols < sizeof cols / sizeof cols[0])
            cols[ncols++] = cmd->columns[k];
    }
    if (ncols == 0) {
        for (size_t k = 0; k < cmd->ncolumns; k++)
            cols[ncols++] = cmd->columns[k];
    }
    policy_path(path, sizeof path, op, c->vhost, NULL);
    snprintf(what, sizeof what, "vhost '%s'", c->vhost);
    if ((rows = ctl_get_json(c, path, what, &rc)) == NULL)
        return rc;
    if (c->format == CTL_FORMAT_TABLE && !c->quiet)
        printf("Listing %s for vhost %s ...\n", op ? "operator policies" : "policies", c->vhost);
    ctl_print_rows(c, rows, cols, ncols);
    json_decref(rows);
    return CTL_OK;
}

/* ---- the memory high watermark --------------------------------------------------------- */

/* "1073741824", "2GB", "512MiB": bytes; 0 and false for anything else. */
static bool parse_memory(const char *text, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t factor;
    } units[] = {{"", 1},          {"kB", 1000},        {"MB", 1000000},   {"GB", 1000000000},
                 {"KiB", 1 << 10}, {"MiB", 1 << 20},    {"GiB", 1u << 30}, {"k", 1 << 10},
                 {"M", 1 << 20},   {"G", 1u << 30}};
    char *end;
    unsigned long long n;

    if (!isdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0 && n <= UINT64_MAX / units[i].factor) {
            *out = n * units[i].factor;
            return true;
        }
    }
    return false;
}

int cmd_set_vm_memory_high_watermark(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_vm_memory_high_watermark");
    char *pos[2], *end;
    int npos, rc;
    json_t *body = json_object();

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 2, pos, &npos)) != CTL_OK)
        goto out;
    if (npos == 2) {
        uint64_t bytes;
        if (strcmp(pos[0], "absolute") != 0 || !parse_memory(pos[1], &bytes)) {
            rc = ctl_usage_error(cmd, "expected 'absolute MEMORY' (e.g. absolute 2GB), got '%s %s'",
                                 pos[0], pos[1]);
            goto out;
        }
        json_object_set_new(body, "absolute", json_integer((json_int_t)bytes));
    } else {
        double fraction = strtod(pos[0], &end);
        if (end == pos[0] || *end != '\0' || !(fraction >= 0 && fraction <= 1)) {
            rc = ctl_usage_error(cmd, "the fraction must be a number from 0 to 1, got '%s'",
                                 pos[0]);
            goto out;
        }
        json_object_set_new(body, "relative", json_real(fraction));
    }
    rc = ctl_send_request(c, "PUT", "/api/vm-memory-high-watermark", body, NULL,
                          "the memory high watermark", NULL);
    if (rc == CTL_OK)
        ctl_say(c, "memory high watermark set to %s%s", npos == 2 ? pos[1] : pos[0],
                npos == 2 ? "" : " of the machine's memory");
out:
    json_decref(body);
    return rc;
}
