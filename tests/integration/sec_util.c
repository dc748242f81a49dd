/* Helpers of the security tests: see sec_util.h. */
#define _DEFAULT_SOURCE
#include "sec_util.h"

#include "harness.h"
#include "src/definitions/definitions.h"
#include "src/security/auth.h"
#include "src/store/defs_log.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where warrend keeps its user database: one entry of its definitions log, holding the
 * definitions document of the users, vhosts and permissions (src/broker/persist.c). */
#define DEFS_LOG_FILE "defs.log"
#define AUTH_ENTRY    "auth"

static json_t *user_json(const char *name, const char *password, const char *tag, int max_conns,
                         int max_channels)
{
    json_t *limits = json_object();

    if (max_conns > 0)
        json_object_set_new(limits, "max-connections", json_integer(max_conns));
    if (max_channels > 0)
        json_object_set_new(limits, "max-channels", json_integer(max_channels));
    return json_pack("{s:s, s:s, s:[s*], s:o}", "name", name, "password", password, "tags", tag,
                     "limits", limits);
}

static json_t *permission_json(const char *user, const char *vhost, const char *configure,
                               const char *write, const char *read)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", user, "vhost", vhost, "configure",
                     configure, "write", write, "read", read);
}

char *sec_definitions_json(const struct sec_definitions *d, bool with_guest)
{
    json_t *users = json_array(), *vhosts = json_array(), *perms = json_array();
    json_t *topics = json_array(), *params = json_array(), *doc;
    char *text;

    if (with_guest) {
        json_array_append_new(users, user_json("guest", "guest", "administrator", 0, 0));
        json_array_append_new(vhosts, json_pack("{s:s}", "name", "/"));
        json_array_append_new(perms, permission_json("guest", "/", ".*", ".*", ".*"));
    }
    for (size_t i = 0; i < d->users_len; i++) {
        const struct sec_user *u = &d->users[i];
        json_array_append_new(
            users, user_json(u->name, u->password, NULL, u->max_connections, u->max_channels));
    }
    for (size_t i = 0; i < d->vhosts_len; i++) {
        const struct sec_vhost *v = &d->vhosts[i];
        json_t *limits = json_object();

        json_array_append_new(vhosts, json_pack("{s:s}", "name", v->name));
        if (v->max_connections > 0)
            json_object_set_new(limits, "max-connections", json_integer(v->max_connections));
        if (v->max_queues > 0)
            json_object_set_new(limits, "max-queues", json_integer(v->max_queues));
        if (json_object_size(limits) > 0)
            json_array_append_new(params,
                                  json_pack("{s:s, s:s, s:s, s:o}", "vhost", v->name, "component",
                                            "vhost-limits", "name", "limits", "value", limits));
        else
            json_decref(limits);
    }
    for (size_t i = 0; i < d->permissions_len; i++) {
        const struct sec_permission *p = &d->permissions[i];
        json_array_append_new(perms,
                              permission_json(p->user, p->vhost, p->configure, p->write, p->read));
    }
    for (size_t i = 0; i < d->topic_permissions_len; i++) {
        const struct sec_topic_permission *t = &d->topic_permissions[i];
        json_array_append_new(topics, json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", t->user,
                                                "vhost", t->vhost, "exchange", t->exchange, "write",
                                                t->write, "read", t->read));
    }
    doc = json_pack("{s:o, s:o, s:o, s:o, s:o}", "users", users, "vhosts", vhosts, "permissions",
                    perms, "topic_permissions", topics, "parameters", params);
    /* Called outside tests too (--definitions), where Check's assertions cannot report. */
    text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL) {
        fprintf(stderr, "sec_util: cannot build the definitions document\n");
        abort();
    }
    return text;
}

bool sec_print_definitions(int argc, char **argv, const struct sec_definitions *d)
{
    char *text;

    if (argc < 2 || strcmp(argv[1], "--definitions") != 0)
        return false;
    text = sec_definitions_json(d, false);
    printf("%s\n", text);
    free(text);
    return true;
}

static const char *password_of(const struct sec_definitions *d, const char *user)
{
    for (size_t i = 0; i < d->users_len; i++) {
        if (strcmp(d->users[i].name, user) == 0)
            return d->users[i].password;
    }
    ck_abort_msg("user '%s' is not in the test's definitions", user);
    return NULL;
}

/* Writes the document as warrend's user database into the stopped broker's data dir. */
static void write_user_database(const char *data_dir, const char *text)
{
    struct auth_db *db = auth_db_new();
    struct defs_log *log;
    char path[4096], err[1024];
    int rc;

    /* The broker would refuse a document it cannot import and not start: say why here. */
    rc = definitions_import(db, text, strlen(text), NULL, err, sizeof err);
    auth_db_free(db);
    ck_assert_msg(rc == 0, "the test's definitions do not import: %s", err);

    snprintf(path, sizeof path, "%s/%s", data_dir, DEFS_LOG_FILE);
    log = defs_log_open(path, NULL, err, sizeof err);
    ck_assert_msg(log != NULL, "cannot open %s: %s", path, err);
    rc = defs_log_put(log, DEFS_KIND_USER, wire_cstr(AUTH_ENTRY),
                      (struct wire_bytes){.ptr = (const uint8_t *)text, .len = strlen(text)});
    defs_log_close(log);
    ck_assert_msg(rc == 0, "cannot write the user database into %s: error %d", path, rc);
}

void sec_install(const struct sec_definitions *d)
{
    static bool installed;
    struct it_conn_opts o = {.user = d->users[0].name,
                             .pass = d->users[0].password,
                             .vhost = d->vhosts_len > 0 ? d->vhosts[0].name : "/"};
    amqp_connection_state_t c;
    amqp_rpc_reply_t r;
    char *text, buf[512];

    if (installed)
        return;
    installed = true;
    if (!it_external_broker()) {
        text = sec_definitions_json(d, true);
        it_broker_stop(false);
        write_user_database(it_data_dir(), text);
        free(text);
        it_broker_start(NULL);
    }
    /* The users are there: on warrend this catches a change in how it keeps them. */
    c = it_connect_raw(&o, &r);
    it_reply_str(r, buf, sizeof buf); /* before the reply's memory goes with c */
    it_destroy(c);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_NORMAL, "user '%s' cannot log in to %s: %s%s",
                  o.user, it_external_broker() ? "the external broker" : "warrend", buf,
                  it_external_broker()
                      ? "; import the test's users first (tests/interop/security_rabbitmq.sh does)"
                      : "");
}

amqp_connection_state_t sec_connect(const struct sec_definitions *d, const char *user,
                                    const char *vhost)
{
    struct it_conn_opts o = {.user = user, .pass = password_of(d, user), .vhost = vhost};

    return it_connect_opts(&o);
}

amqp_connection_state_t sec_connect_blockable(void)
{
    amqp_table_entry_t caps[] = {
        {.key = amqp_cstring_bytes("connection.blocked"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t props_entries[] = {
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {1, caps}}},
    };
    amqp_table_t props = {1, props_entries};
    struct it_conn_opts o = {.client_properties = &props};

    return it_connect_opts(&o);
}

/* The parent pid and command name from /proc/PID/stat ("pid (comm) state ppid ..."). */
static bool read_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_size)
{
    char path[64], line[512], *open, *close;
    FILE *f;
    long pp;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    if (fgets(line, sizeof line, f) == NULL) {
        fclose(f);
        return false;
    }
    fclose(f);
    /* The name may hold spaces and parentheses: it ends at the last ')'. */
    if ((open = strchr(line, '(')) == NULL || (close = strrchr(line, ')')) == NULL ||
        close < open || sscanf(close + 1, " %*c %ld", &pp) != 1)
        return false;
    snprintf(comm, comm_size, "%.*s", (int)(close - open - 1), open + 1);
    *ppid = (pid_t)pp;
    return true;
}

pid_t sec_broker_pid(void)
{
    DIR *dir;
    struct dirent *e;
    pid_t found = -1;

    if (it_external_broker() || (dir = opendir("/proc")) == NULL)
        return -1;
    /* Check forks each test from the process that started the broker; with CK_FORK=no or
     * it_set_nofork() the test runs in that process itself. */
    while ((e = readdir(dir)) != NULL && found < 0) {
        char comm[64];
        pid_t pid, ppid;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (read_stat(pid, &ppid, comm, sizeof comm) && strcmp(comm, "warrend") == 0 &&
            (ppid == getpid() || ppid == getppid()))
            found = pid;
    }
    closedir(dir);
    return found;
}

long sec_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}
