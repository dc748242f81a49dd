/* list_queues, list_exchanges, list_bindings, list_connections, list_channels, list_consumers,
 * list_stream_consumers, list_vhosts, list_users, list_permissions, list_topic_permissions and
 * list_global_parameters: one lister, which takes the columns from the
 * command's entry in the command table and the API path from the table below. (The policy
 * listers and list_user_permissions are beside the other commands of their objects.) */
#include "src/cli/warrenctl.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* What each list_* command lists and how. */
struct listing {
    const char *command;
    const char *what;      /* "queues", for "Listing queues ..." */
    const char *path;      /* API path of everything */
    bool per_vhost;        /* path/<vhost> lists one vhost's */
    bool filter_vhost;     /* the API lists all: keep the rows of -p's vhost */
    const char *only_with; /* keep the rows that have this key (NULL: all) */
};

static const struct listing listings[] = {
    {"list_queues", "queues", "/api/queues", true, false, NULL},
    {"list_exchanges", "exchanges", "/api/exchanges", true, false, NULL},
    {"list_bindings", "bindings", "/api/bindings", true, false, NULL},
    {"list_connections", "connections", "/api/connections", false, false, NULL},
    {"list_channels", "channels", "/api/channels", false, false, NULL},
    {"list_consumers", "consumers", "/api/consumers", true, false, NULL},
    {"list_stream_consumers", "stream consumers", "/api/consumers", true, false, "stream_offset"},
    {"list_vhosts", "vhosts", "/api/vhosts", false, false, NULL},
    {"list_users", "users", "/api/users", false, false, NULL},
    {"list_permissions", "permissions", "/api/permissions", false, true, NULL},
    {"list_topic_permissions", "topic permissions", "/api/topic-permissions", false, true, NULL},
    {"list_global_parameters", "global parameters", "/api/global-parameters", false, false, NULL},
};

int cmd_list(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command(argv[0]);
    const struct listing *l = NULL;
    struct ctl_column cols[32];
    size_t ncols = 0;
    char path[CTL_PATH_MAX];
    json_t *rows;
    int rc;

    for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++) {
        if (strcmp(listings[i].command, argv[0]) == 0)
            l = &listings[i];
    }
    for (int i = 1; i < argc; i++) {
        size_t k;
        for (k = 0; k < cmd->ncolumns && strcmp(cmd->columns[k].name, argv[i]) != 0; k++)
            ;
        if (k == cmd->ncolumns)
            return ctl_usage_error(cmd, "unknown column '%s' (warrenctl %s --help lists them)",
                                   argv[i], cmd->name);
        if (ncols == sizeof cols / sizeof cols[0])
            return ctl_usage_error(cmd, "too many columns");
        cols[ncols++] = cmd->columns[k];
    }
    for (size_t i = 0; ncols == 0 && cmd->default_columns[i] != NULL; i++) {
        for (size_t k = 0; k < cmd->ncolumns; k++) {
            if (strcmp(cmd->columns[k].name, cmd->default_columns[i]) == 0)
                cols[i] = cmd->columns[k];
        }
        if (cmd->default_columns[i + 1] == NULL)
            ncols = i + 1;
    }
    snprintf(path, sizeof path, "%s", l->path);
    if (l->per_vhost && !ctl_path_add(path, sizeof path, c->vhost))
        return ctl_usage_error(cmd, "vhost name too long");
    {
        char what[600];
        snprintf(what, sizeof what, "vhost '%s'", c->vhost);
        if ((rows = ctl_get_json(c, path, l->per_vhost ? what : NULL, &rc)) == NULL)
            return rc;
    }
    if (!json_is_array(rows)) {
        json_decref(rows);
        fprintf(stderr, "warrenctl: the management API did not answer with a list\n");
        return CTL_ERROR;
    }
    /* Bindings have an exchange as their source, always; the API does not say so. */
    if (strcmp(l->command, "list_bindings") == 0) {
        size_t i;
        json_t *b;
        json_array_foreach(rows, i, b)
        {
            json_object_set_new(b, "source_kind", json_string("exchange"));
        }
    }
    /* A stream's leader is the node that has it, which the API calls its node (RabbitMQ's
     * API does the same); a classic queue has none, as in rabbitmqctl. */
    if (strcmp(l->command, "list_queues") == 0) {
        size_t i;
        json_t *q;
        json_array_foreach(rows, i, q)
        {
            if (json_object_get(q, "members") != NULL && json_object_get(q, "node") != NULL)
                json_object_set(q, "leader", json_object_get(q, "node"));
        }
    }
    if (l->filter_vhost || l->only_with != NULL) {
        json_t *kept = json_array();
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *v = json_string_value(json_object_get(row, "vhost"));
            if (l->filter_vhost && (v == NULL || strcmp(v, c->vhost) != 0))
                continue;
            if (l->only_with != NULL && json_object_get(row, l->only_with) == NULL)
                continue;
            json_array_append(kept, row);
        }
        json_decref(rows);
        rows = kept;
    }
    if (c->format == CTL_FORMAT_TABLE && !c->quiet) {
        if (l->per_vhost || l->filter_vhost)
            printf("Listing %s for vhost %s ...\n", l->what, c->vhost);
        else
            printf("Listing %s ...\n", l->what);
    }
    ctl_print_rows(c, rows, cols, ncols);
    json_decref(rows);
    return CTL_OK;
}
