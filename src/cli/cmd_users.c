/* warrenctl's commands for who may do what: users (add_user, delete_user, change_password,
 * set_user_tags, list_user_permissions), vhosts (add_vhost, delete_vhost) and permissions
 * (set_permissions, clear_permissions). list_users, list_vhosts and list_permissions are in
 * cmd_list.c. */
#include "src/cli/warrenctl.h"

#include <stdio.h>

/* ---- users, vhosts, permissions -------------------------------------------------------- */

static void user_path(char *path, size_t size, const char *user)
{
    snprintf(path, size, "/api/users");
    ctl_path_add(path, size, user);
}

/* The user's record, or NULL after saying why ("user 'x' not found"). */
static json_t *get_user(const struct ctl *c, const char *user, int *rc)
{
    char path[CTL_PATH_MAX], what[400];

    user_path(path, sizeof path, user);
    snprintf(what, sizeof what, "user '%s'", user);
    return ctl_get_json(c, path, what, rc);
}

static int put_user(const struct ctl *c, const char *user, json_t *body, long *status)
{
    char path[CTL_PATH_MAX], what[400];
    int rc;

    user_path(path, sizeof path, user);
    snprintf(what, sizeof what, "user '%s'", user);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, status);
    json_decref(body);
    return rc;
}

static json_t *tags_array(int n, char **tags)
{
    json_t *arr = json_array();

    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_string(tags[i]));
    return arr;
}

int cmd_add_user(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("add_user");
    char *pos[2], path[CTL_PATH_MAX];
    struct ctl_reply r;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 2, 2, pos, &npos)) != CTL_OK)
        return rc;
    /* As rabbitmqctl add_user: an existing user is an error, not a password change. */
    user_path(path, sizeof path, pos[0]);
    if (ctl_http(c, "GET", path, NULL, NULL, &r) != 0)
        return CTL_ERROR;
    rc = (int)r.status;
    ctl_reply_free(&r);
    if (rc == 200) {
        fprintf(stderr, "warrenctl: user '%s' already exists\n", pos[0]);
        return CTL_ERROR;
    }
    if ((rc = put_user(c, pos[0], json_pack("{s:s, s:s}", "password", pos[1], "tags", ""), NULL)) ==
        CTL_OK)
        ctl_say(c, "user '%s' added", pos[0]);
    return rc;
}

int cmd_delete_user(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("delete_user");
    char *pos[1], path[CTL_PATH_MAX], what[400];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    user_path(path, sizeof path, pos[0]);
    snprintf(what, sizeof what, "user '%s'", pos[0]);
    if ((rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL)) == CTL_OK)
        ctl_say(c, "%s deleted", what);
    return rc;
}

int cmd_change_password(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("change_password");
    char *pos[2];
    int npos, rc;
    json_t *u;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 2, 2, pos, &npos)) != CTL_OK)
        return rc;
    if ((u = get_user(c, pos[0], &rc)) == NULL)
        return rc;
    /* The API sets password and tags together: the tags are sent back unchanged. */
    rc = put_user(c, pos[0],
                  json_pack("{s:s, s:O}", "password", pos[1], "tags",
                            json_object_get(u, "tags") ? json_object_get(u, "tags") : json_array()),
                  NULL);
    json_decref(u);
    if (rc == CTL_OK)
        ctl_say(c, "password of user '%s' changed", pos[0]);
    return rc;
}

int cmd_set_user_tags(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_user_tags");
    int rc;
    json_t *u, *body;
    const char *hash, *alg;

    if (argc < 2)
        return ctl_usage_error(cmd, "missing argument");
    if ((u = get_user(c, argv[1], &rc)) == NULL)
        return rc;
    /* The password stays: its hash is sent back as it is. */
    hash = json_string_value(json_object_get(u, "password_hash"));
    alg = json_string_value(json_object_get(u, "hashing_algorithm"));
    body = json_pack("{s:s, s:s, s:o}", "password_hash", hash ? hash : "", "hashing_algorithm",
                     alg ? alg : "rabbit_password_hashing_sha256", "tags",
                     tags_array(argc - 2, argv + 2));
    json_decref(u);
    if ((rc = put_user(c, argv[1], body, NULL)) == CTL_OK)
        ctl_say(c, "tags of user '%s' set", argv[1]);
    return rc;
}

static void vhost_path(char *path, size_t size, const char *vhost)
{
    snprintf(path, size, "/api/vhosts");
    ctl_path_add(path, size, vhost);
}

int cmd_add_vhost(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("add_vhost");
    static const char *const keys[] = {"description", NULL};
    const char *description = ctl_arg_value(argc, argv, "description");
    char *pos[1], path[CTL_PATH_MAX], what[400];
    json_t *body;
    long status = 0;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, keys, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    vhost_path(path, sizeof path, pos[0]);
    snprintf(what, sizeof what, "vhost '%s'", pos[0]);
    body = json_pack("{s:s}", "description", description ? description : "");
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, &status);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "%s %s", what, status == 201 ? "added" : "already exists (description updated)");
    return rc;
}

int cmd_delete_vhost(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("delete_vhost");
    char *pos[1], path[CTL_PATH_MAX], what[400];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    vhost_path(path, sizeof path, pos[0]);
    snprintf(what, sizeof what, "vhost '%s'", pos[0]);
    if ((rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL)) == CTL_OK)
        ctl_say(c, "%s deleted", what);
    return rc;
}

static void permission_path(char *path, size_t size, const char *vhost, const char *user)
{
    snprintf(path, size, "/api/permissions");
    ctl_path_add(path, size, vhost);
    ctl_path_add(path, size, user);
}

int cmd_set_permissions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("set_permissions");
    char *pos[4], path[CTL_PATH_MAX], what[600];
    json_t *body;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 4, 4, pos, &npos)) != CTL_OK)
        return rc;
    permission_path(path, sizeof path, c->vhost, pos[0]);
    snprintf(what, sizeof what, "user '%s' or vhost '%s'", pos[0], c->vhost);
    body = json_pack("{s:s, s:s, s:s}", "configure", pos[1], "write", pos[2], "read", pos[3]);
    rc = ctl_send_request(c, "PUT", path, body, NULL, what, NULL);
    json_decref(body);
    if (rc == CTL_OK)
        ctl_say(c, "permissions of user '%s' in vhost '%s' set", pos[0], c->vhost);
    return rc;
}

int cmd_clear_permissions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("clear_permissions");
    char *pos[1], path[CTL_PATH_MAX], what[600];
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    permission_path(path, sizeof path, c->vhost, pos[0]);
    snprintf(what, sizeof what, "permissions of user '%s' in vhost '%s'", pos[0], c->vhost);
    if ((rc = ctl_send_request(c, "DELETE", path, NULL, NULL, what, NULL)) == CTL_OK)
        ctl_say(c, "%s cleared", what);
    return rc;
}

int cmd_list_user_permissions(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd = ctl_find_command("list_user_permissions");
    static const struct ctl_column cols[] = {
        {"vhost", "vhost"}, {"configure", "configure"}, {"write", "write"}, {"read", "read"}};
    char *pos[1], path[CTL_PATH_MAX], what[400];
    json_t *rows;
    int npos, rc;

    if ((rc = ctl_split_args(cmd, argc, argv, NULL, 1, 1, pos, &npos)) != CTL_OK)
        return rc;
    user_path(path, sizeof path, pos[0]);
    ctl_path_add(path, sizeof path, "permissions");
    snprintf(what, sizeof what, "user '%s'", pos[0]);
    if ((rows = ctl_get_json(c, path, what, &rc)) == NULL)
        return rc;
    if (c->format == CTL_FORMAT_TABLE && !c->quiet)
        printf("Listing permissions for user '%s' ...\n", pos[0]);
    ctl_print_rows(c, rows, cols, sizeof cols / sizeof cols[0]);
    json_decref(rows);
    return CTL_OK;
}
