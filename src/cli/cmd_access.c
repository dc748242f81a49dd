/* Topic permissions, user limits, the cluster's name and global parameters: rabbitmqctl's
 * set_topic_permissions, clear_topic_permissions, set_user_limits, clear_user_limits,
 * list_user_limits, set_cluster_name, set_global_parameter, clear_global_parameter and
 * list_global_parameters, through /api/topic-permissions, /api/user-limits,
 * /api/cluster-name and /api/global-parameters. list_topic_permissions is a generic lister
 * (cmd_list.c). */
#include "src/cli/warrenctl.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void path_of(char *path, size_t size, const char *base, const char *a, const char *b)
{
    snprintf(path, size, "%s", base);
    if (a != NULL)
        ctl_path_add(path, size, a);
    if (b != NULL)
        ctl_path_add(path, size, b);
}

int cmd_set_topic_permissions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_topic_permissions");
    char *pos[4], path[CTL_PATH_MAX], what[600];
    json_t *body;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 4, 4, pos, &npos)) != CTL_OK)
        return rc;
    path_of(path, sizeof path, "/api/topic-permissions", c->vhost, pos[0]);
    snprintf(what, sizeof what, "user '%s' or vhost '%s'", pos[0], c->vhost);
    body = json_pack("{s:s, s:s, s:s}", "exchange", pos[1], "write", pos[2], "read", pos[3]);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "topic permissions of user '%s' on exchange '%s' in vhost '%s' set", pos[0],
                pos[1], c->vhost);
    return rc;
}

/* The API clears all of a user's topic permissions in a vhost at once; one exchange's are
 * cleared by setting the others again. */
int cmd_clear_topic_permissions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("clear_topic_permissions");
    char *pos[2], path[CTL_PATH_MAX], what[600];
    json_t *kept = NULL, *perm;
    size_t i;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 2, pos, &npos)) != CTL_OK)
        return rc;
    path_of(path, sizeof path, "/api/topic-permissions", c->vhost, pos[0]);
    snprintf(what, sizeof what, "topic permissions of user '%s' in vhost '%s'", pos[0], c->vhost);
    if (npos == 2) {
        json_t *all = ctl_get_json(c, path, what, &rc);
        bool found = false;
        if (all == NULL)
            return rc;
        kept = json_array();
        json_array_foreach(all, i, perm)
        {
            const char *x = json_string_value(json_object_get(perm, "exchange"));
            if (x != NULL && strcmp(x, pos[1]) == 0)
                found = true;
            else
                json_array_append(kept, perm);
        }
        json_decref(all);
        if (!found) {
            json_decref(kept);
            fprintf(stderr, "warrenctl: %s on exchange '%s' not found\n", what, pos[1]);
            return CTL_ERROR;
        }
    }
    rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL);
    json_array_foreach(kept, i, perm)
    {
        json_t *body;
        if (rc != CTL_OK)
            break;
        body = json_pack("{s:O, s:O, s:O}", "exchange", json_object_get(perm, "exchange"), "write",
                         json_object_get(perm, "write"), "read", json_object_get(perm, "read"));
        rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
        json_decref(body);
    }
    json_decref(kept);
    if (rc == CTL_OK)
        ctl_say(c, "%s%s%s%s cleared", what, npos == 2 ? " on exchange '" : "",
                npos == 2 ? pos[1] : "", npos == 2 ? "'" : "");
    return rc;
}

/* set_user_limits USER '{"max-connections": 10, "max-channels": 20}': one request a limit, as
 * the API sets them. */
int cmd_set_user_limits(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_user_limits");
    char *pos[2], path[CTL_PATH_MAX], what[600];
    json_t *limits, *value;
    json_error_t error;
    const char *name;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 2, 2, pos, &npos)) != CTL_OK)
        return rc;
    limits = json_loads(pos[1], 0, &error);
    if (!json_is_object(limits) || json_object_size(limits) == 0) {
        json_decref(limits);
        return ctl_usage_error(cmd, "the limits are a JSON object, e.g. '{\"max-connections\": "
                                    "10}'");
    }
    snprintf(what, sizeof what, "user '%s'", pos[0]);
    json_object_foreach(limits, name, value)
    {
        json_t *body = json_pack("{s:O}", "value", value);
        path_of(path, sizeof path, "/api/user-limits", pos[0], name);
        rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
        json_decref(body);
        if (rc != CTL_OK)
            break;
    }
    json_decref(limits);
    if (rc == CTL_OK)
        ctl_say(c, "limits of user '%s' set", pos[0]);
    return rc;
}

/* clear_user_limits USER NAME|all */
int cmd_clear_user_limits(struct ctl *c, int argc, char **argv)
{
    static const char *const all[] = {"max-connections", "max-channels"};
    const struct command *cmd = ctl_find_command("clear_user_limits");
    char *pos[2], path[CTL_PATH_MAX], what[600];
    int npos, rc;
    bool every;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 2, 2, pos, &npos)) != CTL_OK)
        return rc;
    every = strcmp(pos[1], "all") == 0;
    snprintf(what, sizeof what, "user '%s'", pos[0]);
    for (size_t i = 0; i < (every ? 2u : 1u) && rc == CTL_OK; i++) {
        path_of(path, sizeof path, "/api/user-limits", pos[0], every ? all[i] : pos[1]);
        rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL);
    }
    if (rc == CTL_OK)
        ctl_say(c, "limit%s of user '%s' cleared", every ? "s" : "", pos[0]);
    return rc;
}

int cmd_list_user_limits(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("list_user_limits");
    static const struct ctl_column cols[] = {{"user", "user"}, {"limits", "value"}};
    char *pos[1], path[CTL_PATH_MAX], what[400];
    json_t *rows;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 0, 1, pos, &npos)) != CTL_OK)
        return rc;
    path_of(path, sizeof path, "/api/user-limits", npos == 1 ? pos[0] : NULL, NULL);
    snprintf(what, sizeof what, "user '%s'", npos == 1 ? pos[0] : "");
    if ((rows = ctl_get_json(c, path, what, &rc)) == NULL)
        return rc;
    if (c->format == CTL_FORMAT_TABLE && !c->quiet)
        printf("Listing user limits ...\n");
    ctl_print_rows(c, rows, cols, sizeof cols / sizeof cols[0]);
    json_decref(rows);
    return CTL_OK;
}

int cmd_set_cluster_name(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_cluster_name");
    char *pos[1];
    json_t *body;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    body = json_pack("{s:s}", "name", pos[0]);
    rc = ctl_send_request(c, "PUT", "/api/cluster-name", body, NULL, "the cluster", NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "cluster name set to '%s'", pos[0]);
    return rc;
}

int cmd_set_global_parameter(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_global_parameter");
    char *pos[2], path[CTL_PATH_MAX], what[400];
    json_t *value, *body;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 2, 2, pos, &npos)) != CTL_OK)
        return rc;
    if ((value = json_loads(pos[1], JSON_DECODE_ANY, NULL)) == NULL)
        return ctl_usage_error(cmd, "the value is JSON, e.g. '\"text\"' or '{\"a\": 1}'");
    path_of(path, sizeof path, "/api/global-parameters", pos[0], NULL);
    snprintf(what, sizeof what, "global parameter '%s'", pos[0]);
    body = json_pack("{s:o}", "value", value);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s set", what);
    return rc;
}

int cmd_clear_global_parameter(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("clear_global_parameter");
    char *pos[1], path[CTL_PATH_MAX], what[400];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    path_of(path, sizeof path, "/api/global-parameters", pos[0], NULL);
    snprintf(what, sizeof what, "global parameter '%s'", pos[0]);
    if ((rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL)) == CTL_OK)
        ctl_say(c, "%s cleared", what);
    return rc;
}
