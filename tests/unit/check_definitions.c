/* RabbitMQ definitions files: import of every kind of entity, the documents RabbitMQ refuses
 * (each with its reason), export in RabbitMQ's format and the round trip.
 *
 * The fixtures in tests/unit/fixtures/definitions/ were written for Warren. full.json, with
 * its names prefixed warren_probe_ (and without the federation parameter and cluster_name,
 * which belong to plugins and to the node), imported into RabbitMQ 3.10.8, whose users then
 * logged in with the passwords used below: the MD5 and SHA-512 hashes are RabbitMQ's too. */
#include "src/base/log.h"
#include "src/definitions/definitions.h"
#include "src/security/auth.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define B(s) wire_cstr(s)

static char err[AUTH_ERR_MAX];

static char *fixture_path(const char *name)
{
    static char path[4096];
    const char *srcdir = getenv("top_srcdir");

    ck_assert_msg(srcdir != NULL, "top_srcdir is not set (run through make check)");
    snprintf(path, sizeof path, "%s/tests/unit/fixtures/definitions/%s", srcdir, name);
    return path;
}

static struct auth_db *import_fixture(const char *name, struct definitions **defs)
{
    struct auth_db *db = auth_db_new();

    ck_assert_msg(definitions_import_file(db, fixture_path(name), defs, err, sizeof err) == 0, "%s",
                  err);
    return db;
}

static int import_text(struct auth_db *db, const char *text, struct definitions **defs)
{
    return definitions_import(db, text, strlen(text), defs, err, sizeof err);
}

/* The field name of t, which must exist. */
static struct wire_field field(struct wire_table t, const char *name)
{
    struct wire_field f;

    ck_assert_msg(wire_table_find(t, name, &f), "no field '%s'", name);
    return f;
}

static bool bytes_are(struct wire_bytes b, const char *s)
{
    return wire_bytes_eq(b, B(s));
}

/* ---- Import ---------------------------------------------------------------------------- */

START_TEST(full_fixture_users)
{
    struct auth_db *db = import_fixture("full.json", NULL);
    const struct auth_user *u;

    ck_assert(auth_check_password(db, B("admin"), B("secret")));
    ck_assert(auth_user_has_tag(auth_user_find(db, B("admin")), "administrator"));
    ck_assert(auth_check_password(db, B("legacy"), B("guest")));
    ck_assert_int_eq(auth_user_find(db, B("legacy"))->algorithm, AUTH_HASH_MD5);
    ck_assert(auth_check_password(db, B("strong"), B("guest")));
    ck_assert(!auth_check_password(db, B("strong"), B("secret")));
    ck_assert(auth_check_password(db, B("plain"), B("from-the-file")));

    /* "monitoring, policymaker": split on commas, blanks stripped. */
    u = auth_user_find(db, B("legacy"));
    ck_assert_uint_eq(u->tags_len, 2);
    ck_assert_str_eq(u->tags[0], "monitoring");
    ck_assert_str_eq(u->tags[1], "policymaker");
    u = auth_user_find(db, B("strong"));
    ck_assert_uint_eq(u->tags_len, 3);
    ck_assert_str_eq(u->tags[2], "team-a");
    ck_assert_int_eq(u->max_connections, 2);
    ck_assert_int_eq(u->max_channels, 10);
    u = auth_user_find(db, B("plain"));
    ck_assert_uint_eq(u->tags_len, 0);
    ck_assert_int_eq(u->max_connections, -1);
    /* Neither password nor hash: a user that cannot log in with a password. */
    u = auth_user_find(db, B("certonly"));
    ck_assert_uint_eq(u->hash_len, 0);
    auth_db_free(db);
}
END_TEST

START_TEST(full_fixture_vhosts_and_permissions)
{
    struct auth_db *db = import_fixture("full.json", NULL);
    const struct auth_vhost *vh = auth_vhost_find(db, B("shop"));
    struct wire_bytes legacy = B("legacy"), shop = B("shop");

    ck_assert_str_eq(vh->description, "orders and payments");
    ck_assert_uint_eq(vh->tags_len, 2);
    ck_assert_str_eq(vh->tags[1], "eu");
    ck_assert_str_eq(vh->default_queue_type, "classic");
    ck_assert_int_eq(vh->max_connections, 100);
    ck_assert_int_eq(vh->max_queues, 50);
    vh = auth_vhost_find(db, B("old-style"));
    ck_assert_str_eq(vh->description, "top-level description");
    ck_assert_str_eq(vh->tags[0], "t");
    ck_assert_str_eq(auth_vhost_find(db, B("/"))->description, "Default virtual host");

    ck_assert(auth_vhost_access(db, B("admin"), B("/")));
    ck_assert(auth_vhost_access(db, legacy, shop));
    ck_assert(!auth_vhost_access(db, legacy, B("/")));
    /* configure "" grants nothing. */
    ck_assert(
        !auth_permitted(db, legacy, shop, AUTH_CONFIGURE, AUTH_RESOURCE_QUEUE, B("orders.new")));
    ck_assert(auth_permitted(db, legacy, shop, AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, B("orders.in")));
    ck_assert(
        !auth_permitted(db, legacy, shop, AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, B("payments.in")));
    ck_assert(auth_permitted(db, legacy, shop, AUTH_READ, AUTH_RESOURCE_QUEUE, B("payments.x")));
    ck_assert(!auth_permitted(db, legacy, shop, AUTH_READ, AUTH_RESOURCE_QUEUE, B("other")));

    ck_assert(auth_topic_permitted(db, legacy, shop, B("events"), AUTH_WRITE, B("legacy.a"), NULL));
    ck_assert(!auth_topic_permitted(db, legacy, shop, B("events"), AUTH_WRITE, B("admin.a"), NULL));
    ck_assert(auth_topic_permitted(db, legacy, shop, B("events"), AUTH_READ, B("shop.x"), NULL));
    auth_db_free(db);
}
END_TEST

START_TEST(full_fixture_exchanges_and_queues)
{
    struct definitions *d;
    struct auth_db *db = import_fixture("full.json", &d);
    struct wire_table args, nested;
    struct wire_array_iter it;
    struct wire_field f;

    /* amq.custom and the default exchange "" are skipped, as RabbitMQ skips them. */
    ck_assert_uint_eq(d->exchanges_len, 2);
    ck_assert_str_eq(d->exchanges[0].name, "events");
    ck_assert_str_eq(d->exchanges[0].type, "topic");
    ck_assert(d->exchanges[0].durable && !d->exchanges[0].internal);
    ck_assert_str_eq(d->exchanges[1].name, "dlx");
    ck_assert_str_eq(d->exchanges[1].vhost, "shop");
    ck_assert(d->exchanges[1].internal);
    f = field(d->exchanges[1].arguments, "alternate-exchange");
    ck_assert_int_eq(f.type, 'S');
    ck_assert(bytes_are(f.v.bytes, "events"));

    /* amq.reserved is skipped. */
    ck_assert_uint_eq(d->queues_len, 2);
    ck_assert_str_eq(d->queues[0].name, "orders.new");
    ck_assert(d->queues[0].durable && !d->queues[0].auto_delete);
    ck_assert_str_eq(d->queues[1].name, "scratch");
    ck_assert(!d->queues[1].durable && d->queues[1].auto_delete);
    ck_assert_uint_eq(d->queues[1].arguments.raw.len, 0);

    /* JSON types become RabbitMQ's AMQP types. */
    args = d->queues[0].arguments;
    f = field(args, "x-message-ttl");
    ck_assert_int_eq(f.type, 'l');
    ck_assert_int_eq(f.v.i, 60000);
    f = field(args, "x-queue-type");
    ck_assert_int_eq(f.type, 'S');
    ck_assert(bytes_are(f.v.bytes, "classic"));
    f = field(args, "x-single-active-consumer");
    ck_assert_int_eq(f.type, 't');
    ck_assert(f.v.boolean);
    f = field(args, "x-ratio");
    ck_assert_int_eq(f.type, 'd');
    ck_assert(f.v.f64 == 0.5);
    f = field(args, "x-nested");
    ck_assert_int_eq(f.type, 'F');
    nested = f.v.table;
    f = field(nested, "list");
    ck_assert_int_eq(f.type, 'A');
    wire_array_iter_init(&it, f.v.array);
    ck_assert(wire_array_next(&it, &f));
    ck_assert_int_eq(f.type, 'l');
    ck_assert_int_eq(f.v.i, 1);
    ck_assert(wire_array_next(&it, &f));
    ck_assert_int_eq(f.type, 'S');
    ck_assert(bytes_are(f.v.bytes, "two"));
    ck_assert(wire_array_next(&it, &f));
    ck_assert_int_eq(f.type, 'F');
    f = field(f.v.table, "three");
    ck_assert_int_eq(f.type, 't');
    ck_assert(!f.v.boolean);
    ck_assert(!wire_array_next(&it, &f));

    definitions_free(d);
    auth_db_free(db);
}
END_TEST

START_TEST(full_fixture_bindings_and_policies)
{
    struct definitions *d;
    struct auth_db *db = import_fixture("full.json", &d);
    struct wire_field f;

    ck_assert_uint_eq(d->bindings_len, 2);
    ck_assert_str_eq(d->bindings[0].source, "events");
    ck_assert_str_eq(d->bindings[0].destination, "orders.new");
    ck_assert(!d->bindings[0].destination_is_exchange);
    ck_assert_str_eq(d->bindings[0].routing_key, "orders.#");
    ck_assert(d->bindings[1].destination_is_exchange);
    f = field(d->bindings[1].arguments, "x-match");
    ck_assert(bytes_are(f.v.bytes, "any"));

    ck_assert_uint_eq(d->policies_len, 2);
    ck_assert_str_eq(d->policies[0].name, "orders-limit");
    ck_assert_str_eq(d->policies[0].vhost, "shop");
    ck_assert_str_eq(d->policies[0].pattern, "^orders\\.");
    ck_assert_str_eq(d->policies[0].apply_to, "queues");
    ck_assert_int_eq(d->policies[0].priority, 5);
    f = field(d->policies[0].definition, "max-length");
    ck_assert_int_eq(f.type, 'l');
    ck_assert_int_eq(f.v.i, 10000);
    f = field(d->policies[0].definition, "overflow");
    ck_assert(bytes_are(f.v.bytes, "reject-publish"));
    /* apply-to and priority default to "all" and 0. */
    ck_assert_str_eq(d->policies[1].apply_to, "all");
    ck_assert_int_eq(d->policies[1].priority, 0);

    definitions_free(d);
    auth_db_free(db);
}
END_TEST

/* Warnings go to a temporary file (path, "/tmp/check_definitions.XXXXXX") until
 * stop_logging() reads them back into text. */
static void start_logging(char *path)
{
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    log_set_level(LOG_LEVEL_WARNING);
    log_set_console(false);
    ck_assert_int_eq(log_open_file(path), 0);
}

static void stop_logging(const char *path, char *text, size_t size)
{
    FILE *f;
    size_t n;

    log_close_file();
    log_set_level(LOG_LEVEL_NONE);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, size - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
}

/* The unknown key, the plugin's runtime parameter and the skipped amq.* entities are logged
 * as warnings. */
START_TEST(ignored_parts_are_logged)
{
    char path[] = "/tmp/check_definitions.XXXXXX";
    char text[8192];
    struct auth_db *db;

    start_logging(path);
    db = import_fixture("full.json", NULL);
    stop_logging(path, text, sizeof text);
    /* RabbitMQ's exports carry product_name: it is not an unknown key. */
    ck_assert_ptr_null(strstr(text, "product_name"));
    ck_assert_ptr_nonnull(strstr(text, "parameters[1] federation-upstream 'up': runtime "
                                       "parameter component 'federation-upstream' is not "
                                       "supported, ignored"));
    ck_assert_ptr_nonnull(strstr(text, "queues[2] 'amq.reserved' in vhost '/': not importing a "
                                       "queue named amq.*"));
    ck_assert_ptr_nonnull(strstr(text, "exchanges[3] '' in vhost 'shop': not importing the "
                                       "default exchange"));
    auth_db_free(db);
}
END_TEST

/* ---- Refusals -------------------------------------------------------------------------- */

/* Our own versions of the documents RabbitMQ's import tests expect it to refuse. */
static const struct {
    const char *file;
    const char *error; /* after "<path>: " */
} refused_files[] = {
    {"exchange_of_unknown_type.json",
     "exchanges[0] 'oddity' in vhost '/': unknown exchange type 'no such type'"},
    {"policy_without_name.json", "policies[0]: policy in virtual host '/' has undefined name"},
    {"user_limit_not_a_number.json",
     "users[0] 'limited': limits: max-connections should be a number, actually was \"a few\""},
    {"queue_without_vhost.json", "queues[0] 'q.1': virtual host 'undefined' does not exist"},
    {"not_json.json", "not valid JSON (line 3, column 49): '}' expected near '\"password_hash\"'"},
};

START_TEST(refused_fixture_files)
{
    struct auth_db *db = auth_db_new();
    struct definitions *d = (struct definitions *)1;
    char want[8192];

    auth_vhost_put(db, "existing", NULL, NULL, 0, NULL);
    ck_assert_int_eq(
        definitions_import_file(db, fixture_path(refused_files[_i].file), &d, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: %s", fixture_path(refused_files[_i].file),
             refused_files[_i].error);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(d);
    /* Nothing of the document was applied. */
    ck_assert_uint_eq(db->users.len, 0);
    ck_assert_uint_eq(db->vhosts.len, 1);
    auth_db_free(db);
}
END_TEST

#define HASH   "\"txaBvZEtuDQLcE8bPpQgU80kYCmBCGEyvD7dqY9ijCw94lrP\""
#define ROOT   "\"vhosts\": [{\"name\": \"/\"}], "
#define USER_U "\"users\": [{\"name\": \"u\", \"password_hash\": " HASH ", \"tags\": \"\"}], "

static const struct {
    const char *doc;
    const char *error;
} refused_docs[] = {
    {"[]", "not a definitions document: the top level is not an object"},
    {"{\"users\": {}}", "\"users\" is not an array"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"\"}]}",
     "users[0] 'u': missing \"tags\" (tags_not_present)"},
    {"{\"users\": [{\"password_hash\": \"\", \"tags\": \"\"}]}", "users[0]: missing \"name\""},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"x\", \"password_hash\": " HASH
     ", \"tags\": \"\"}]}",
     "users[0] 'u': both password and password_hash are provided "
     "(both_password_and_password_hash_are_provided)"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"!!!notbase64\", \"tags\": \"\"}]}",
     "users[0] 'u': password_hash is not base64 (not_base64)"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": " HASH
     ", \"hashing_algorithm\": \"rabbit_password_hashing_nope\", \"tags\": \"\"}]}",
     "users[0] 'u': unknown hashing_algorithm 'rabbit_password_hashing_nope'"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": " HASH
     ", \"hashing_algorithm\": \"rabbit_password_hashing_md5\", \"tags\": \"\"}]}",
     "users[0] 'u': password_hash holds 36 bytes, rabbit_password_hashing_md5 hashes are 20 (4 "
     "of salt and the digest)"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"\", \"tags\": \"\", \"limits\": "
     "{\"max-queues\": 3}}]}",
     "users[0] 'u': limits: unrecognised limit 'max-queues' (a user has max-connections and "
     "max-channels)"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"\", \"tags\": [\"a\", 1]}]}",
     "users[0] 'u': a tag is not a string"},
    {"{" ROOT "\"permissions\": [{\"user\": \"nobody\", \"vhost\": \"/\", \"configure\": \".*\", "
     "\"write\": \".*\", \"read\": \".*\"}]}",
     "permissions[0]: user 'nobody' does not exist (no_such_user)"},
    {"{" USER_U "\"permissions\": [{\"user\": \"u\", \"vhost\": \"nowhere\", \"configure\": "
     "\".*\", \"write\": \".*\", \"read\": \".*\"}]}",
     "permissions[0]: virtual host 'nowhere' does not exist"},
    {"{" USER_U ROOT "\"permissions\": [{\"user\": \"u\", \"vhost\": \"/\", \"configure\": "
     "\"(unclosed\", \"write\": \".*\", \"read\": \".*\"}]}",
     "permissions[0] (user 'u' in vhost '/'): configure: regular expression '(unclosed' is "
     "invalid: Unmatched ( or \\("},
    {"{" USER_U ROOT "\"permissions\": [{\"user\": \"u\", \"vhost\": \"/\", \"configure\": "
     "\".*\", \"read\": \".*\"}]}",
     "permissions[0]: missing \"write\""},
    {"{" USER_U ROOT "\"topic_permissions\": [{\"user\": \"u\", \"vhost\": \"/\", \"exchange\": "
     "\"amq.topic\", \"write\": \"[\", \"read\": \".*\"}]}",
     "topic_permissions[0] (user 'u' in vhost '/'): write: regular expression '[' is invalid: "
     "missing terminating ] for character class"},
    {"{" ROOT "\"parameters\": [{\"vhost\": \"/\", \"component\": \"vhost-limits\", \"name\": "
     "\"limits\", \"value\": {\"max-channels\": 1}}]}",
     "parameters[0] vhost-limits 'limits': unrecognised limit 'max-channels' (a vhost has "
     "max-connections and max-queues)"},
    {"{" ROOT "\"parameters\": [{\"vhost\": \"/\", \"component\": \"vhost-limits\", \"name\": "
     "\"limits\", \"value\": {\"max-queues\": \"many\"}}]}",
     "parameters[0] vhost-limits 'limits': max-queues should be a number, actually was "
     "\"many\""},
    {"{" ROOT "\"queues\": [{\"name\": \"q\", \"vhost\": \"/\", \"arguments\": {\"x\": null}}]}",
     "queues[0] 'q' in vhost '/': \"arguments\": null is not a value RabbitMQ accepts in "
     "arguments"},
    {"{" ROOT "\"queues\": [{\"name\": \"q\", \"vhost\": \"/\", \"durable\": \"yes\"}]}",
     "queues[0] 'q' in vhost '/': \"durable\" is not true or false"},
    {"{" ROOT "\"queues\": [{\"name\": \"q\", \"vhost\": \"elsewhere\"}]}",
     "queues[0] 'q': virtual host 'elsewhere' does not exist"},
    {"{" ROOT "\"exchanges\": [{\"name\": \"x\", \"vhost\": \"/\", \"type\": \"\"}]}",
     "exchanges[0] 'x' in vhost '/': invalid exchange type ''"},
    {"{" ROOT "\"bindings\": [{\"vhost\": \"/\", \"source\": \"x\", \"destination\": \"q\", "
     "\"destination_type\": \"topic\", \"routing_key\": \"\"}]}",
     "bindings[0]: destination_type 'topic' is neither \"queue\" nor \"exchange\""},
    {"{" ROOT "\"policies\": [{\"vhost\": \"/\", \"name\": \"p\", \"pattern\": \".*\", "
     "\"apply-to\": \"everything\", \"definition\": {\"max-length\": 1}}]}",
     "policies[0] 'p' in vhost '/': 'everything' is not a valid apply-to value"},
    {"{" ROOT "\"policies\": [{\"vhost\": \"/\", \"name\": \"p\", \"pattern\": \".*\", "
     "\"definition\": {}}]}",
     "policies[0] 'p' in vhost '/': \"definition\" is not a non-empty object"},
    {"{" ROOT "\"policies\": [{\"vhost\": \"/\", \"name\": \"p\", \"pattern\": \"(?<=a)\", "
     "\"definition\": {\"max-length\": 1}}]}",
     "policies[0] 'p' in vhost '/': pattern: regular expression '(?<=a)' is invalid: "
     "unsupported group syntax (?<"},
    /* Patterns whose compiled form would exhaust memory (src/base/regex.h). */
    {"{" ROOT "\"policies\": [{\"vhost\": \"/\", \"name\": \"p\", \"pattern\": "
     "\"(.*){1,1000}\", \"definition\": {\"max-length\": 1}}]}",
     "policies[0] 'p' in vhost '/': pattern: regular expression '(.*){1,1000}' is invalid: "
     "pattern too complex: its repetitions and alternatives would take more than 1000000 steps "
     "to compile"},
    {"{" USER_U ROOT "\"permissions\": [{\"user\": \"u\", \"vhost\": \"/\", \"configure\": "
     "\".*\", \"write\": \"(a{1000}){101}\", \"read\": \".*\"}]}",
     "permissions[0] (user 'u' in vhost '/'): write: regular expression '(a{1000}){101}' is "
     "invalid: pattern too complex: repetition bounds expand it to more than 100000 nodes"},
    {"{" USER_U ROOT "\"topic_permissions\": [{\"user\": \"u\", \"vhost\": \"/\", "
     "\"exchange\": \"amq.topic\", \"write\": \".*\", \"read\": \"^(a?){1,100}\"}]}",
     "topic_permissions[0] (user 'u' in vhost '/'): read: regular expression '^(a?){1,100}' is "
     "invalid: pattern too complex: its repetitions and alternatives would take more than "
     "1000000 steps to compile"},
};

START_TEST(refused_documents)
{
    struct auth_db *db = auth_db_new();
    uint64_t generation;

    auth_vhost_put(db, "existing", NULL, NULL, 0, NULL);
    generation = db->generation;
    ck_assert_msg(import_text(db, refused_docs[_i].doc, NULL) == -1, "accepted: %s",
                  refused_docs[_i].doc);
    ck_assert_str_eq(err, refused_docs[_i].error);
    ck_assert_uint_eq(db->generation, generation);
    ck_assert_uint_eq(db->users.len, 0);
    ck_assert_uint_eq(db->vhosts.len, 1);
    auth_db_free(db);
}
END_TEST

START_TEST(missing_file_is_named)
{
    struct auth_db *db = auth_db_new();

    ck_assert_int_eq(definitions_import_file(db, "/nonexistent/defs.json", NULL, err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "/nonexistent/defs.json: cannot open: No such file or directory");
    auth_db_free(db);
}
END_TEST

/* ---- Import rules ---------------------------------------------------------------------- */

START_TEST(import_updates_what_exists)
{
    struct auth_db *db = auth_db_new();
    static const char *const tags[] = {"old-tag"};

    auth_vhost_put(db, "/", "kept?", NULL, 0, NULL);
    auth_user_put(db, "u", "before", tags, 1, err, sizeof err);
    auth_user_put(db, "w", "pw", NULL, 0, err, sizeof err);
    auth_permission_set(db, "w", "/", "^w$", "^w$", "^w$", err, sizeof err);
    ck_assert_msg(import_text(db,
                              "{\"users\": [{\"name\": \"u\", \"password_hash\": " HASH
                              ", \"tags\": [\"new-tag\"]}],"
                              " \"vhosts\": [{\"name\": \"/\"}],"
                              " \"permissions\": [{\"user\": \"u\", \"vhost\": \"/\", "
                              "\"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}]}",
                              NULL) == 0,
                  "%s", err);
    ck_assert(!auth_check_password(db, B("u"), B("before")));
    ck_assert(auth_check_password(db, B("u"), B("secret")));
    ck_assert(auth_user_has_tag(auth_user_find(db, B("u")), "new-tag"));
    ck_assert(!auth_user_has_tag(auth_user_find(db, B("u")), "old-tag"));
    /* The vhost entry without metadata resets the description, as put_vhost does. */
    ck_assert_str_eq(auth_vhost_find(db, B("/"))->description, "");
    /* Users the document does not mention keep their permissions. */
    ck_assert(auth_permitted(db, B("w"), B("/"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("w")));
    ck_assert(auth_permitted(db, B("u"), B("/"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("any")));
    auth_db_free(db);
}
END_TEST

/* Vhost tags in every shape RabbitMQ 3.8 to 4.x writes: 3.10's export has
 * "metadata": {"description": "", "tags": ""}; a comma-separated string; an array; at the top
 * level (3.8) or in metadata. */
START_TEST(vhost_tags_in_every_shape_rabbitmq_writes)
{
    struct auth_db *db = auth_db_new();
    const struct auth_vhost *v;

    ck_assert_msg(import_text(db,
                              "{\"vhosts\": ["
                              "{\"name\": \"v1\", \"metadata\": {\"description\": \"\", \"tags\": \"\"}},"
                              "{\"name\": \"v2\", \"metadata\": {\"description\": \"d\", \"tags\": \"a, b\"}},"
                              "{\"name\": \"v3\", \"tags\": [\"x\"]},"
                              "{\"name\": \"v4\", \"tags\": \"y\"},"
                              "{\"name\": \"v5\", \"metadata\": {\"tags\": [\"m\", \"n\"]}},"
                              "{\"name\": \"v6\", \"description\": \"\", \"tags\": []}]}",
                              NULL) == 0,
                  "%s", err);
    ck_assert_uint_eq(auth_vhost_find(db, B("v1"))->tags_len, 0);
    v = auth_vhost_find(db, B("v2"));
    ck_assert_uint_eq(v->tags_len, 2);
    ck_assert_str_eq(v->tags[0], "a");
    ck_assert_str_eq(v->tags[1], "b");
    ck_assert_str_eq(v->description, "d");
    v = auth_vhost_find(db, B("v3"));
    ck_assert(v->tags_len == 1 && strcmp(v->tags[0], "x") == 0);
    v = auth_vhost_find(db, B("v4"));
    ck_assert(v->tags_len == 1 && strcmp(v->tags[0], "y") == 0);
    v = auth_vhost_find(db, B("v5"));
    ck_assert(v->tags_len == 2 && strcmp(v->tags[1], "n") == 0);
    ck_assert_uint_eq(auth_vhost_find(db, B("v6"))->tags_len, 0);
    /* Anything else is still refused, with the shapes accepted named. */
    ck_assert_int_ne(import_text(db, "{\"vhosts\": [{\"name\": \"v7\", \"tags\": 7}]}", NULL), 0);
    ck_assert_str_eq(err, "vhosts[0] 'v7': \"tags\" is not a string or an array of strings");
    auth_db_free(db);
}
END_TEST

START_TEST(a_refused_document_changes_nothing)
{
    struct auth_db *db = auth_db_new();

    /* Valid users and vhosts come first; the queue after them is refused. RabbitMQ would
     * have created the users and vhosts by then. */
    ck_assert_int_eq(import_text(db,
                                 "{" USER_U ROOT
                                 "\"permissions\": [{\"user\": \"u\", \"vhost\": \"/\", "
                                 "\"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}], "
                                 "\"queues\": [{\"name\": \"q\", \"vhost\": \"/nope\"}]}",
                                 NULL),
                     -1);
    ck_assert_str_eq(err, "queues[0] 'q': virtual host '/nope' does not exist");
    ck_assert_ptr_null(auth_user_find(db, B("u")));
    ck_assert_ptr_null(auth_vhost_find(db, B("/")));
    auth_db_free(db);
}
END_TEST

START_TEST(hashing_algorithm_is_guessed_from_the_version)
{
    struct auth_db *db = auth_db_new();

    /* Before 3.6 RabbitMQ hashed with MD5 and exported no hashing_algorithm. */
    ck_assert_msg(import_text(db,
                              "{\"rabbit_version\": \"3.5.7\", \"users\": [{\"name\": \"old\", "
                              "\"password_hash\": \"kI3GCsLphS59YDqYemSoxQGij64=\", \"tags\": "
                              "\"administrator\"}]}",
                              NULL) == 0,
                  "%s", err);
    ck_assert_int_eq(auth_user_find(db, B("old"))->algorithm, AUTH_HASH_MD5);
    ck_assert(auth_check_password(db, B("old"), B("guest")));
    ck_assert_int_eq(import_text(db,
                                 "{\"rabbit_version\": \"3.6.0\", \"users\": [{\"name\": \"new\", "
                                 "\"password_hash\": " HASH ", \"tags\": \"\"}]}",
                                 NULL),
                     0);
    ck_assert_int_eq(auth_user_find(db, B("new"))->algorithm, AUTH_HASH_SHA256);
    ck_assert(auth_check_password(db, B("new"), B("secret")));
    auth_db_free(db);
}
END_TEST

START_TEST(administrator_flag_of_old_files)
{
    struct auth_db *db = auth_db_new();

    ck_assert_int_eq(import_text(db,
                                 "{\"users\": [{\"name\": \"a\", \"password_hash\": \"\", "
                                 "\"administrator\": true}, {\"name\": \"b\", "
                                 "\"password_hash\": \"\", \"administrator\": \"false\"}]}",
                                 NULL),
                     0);
    ck_assert(auth_user_has_tag(auth_user_find(db, B("a")), "administrator"));
    ck_assert_uint_eq(auth_user_find(db, B("b"))->tags_len, 0);
    auth_db_free(db);
}
END_TEST

/* As RabbitMQ 3.10 (rabbit_definitions takes "M <- List, is_map(M)"), but each is logged. */
START_TEST(entries_that_are_not_objects_are_skipped_with_a_warning)
{
    char path[] = "/tmp/check_definitions.XXXXXX";
    char text[8192];
    struct auth_db *db = auth_db_new();
    struct definitions *d = NULL;

    start_logging(path);
    ck_assert_int_eq(import_text(db,
                                 "{\"vhosts\": [1, \"x\", {\"name\": \"v\"}], \"users\": null, "
                                 "\"queues\": [{\"name\": \"q\", \"vhost\": \"v\"}, [], null, "
                                 "{\"name\": \"q2\", \"vhost\": \"v\"}]}",
                                 &d),
                     0);
    stop_logging(path, text, sizeof text);
    ck_assert_uint_eq(db->vhosts.len, 1);
    ck_assert_uint_eq(d->queues_len, 2);
    ck_assert_ptr_nonnull(strstr(
        text, "definitions: vhosts[0] is not an object but 1: skipped, as RabbitMQ skips it"));
    ck_assert_ptr_nonnull(strstr(text, "definitions: vhosts[1] is not an object but \"x\": "
                                       "skipped, as RabbitMQ skips it"));
    ck_assert_ptr_nonnull(strstr(text, "definitions: queues[1] is not an object but []: skipped"));
    ck_assert_ptr_nonnull(
        strstr(text, "definitions: queues[2] is not an object but null: skipped"));
    /* Once each: the document is checked, then applied. */
    ck_assert_ptr_null(strstr(strstr(text, "queues[2]") + 1, "queues[2]"));
    definitions_free(d);
    auth_db_free(db);
}
END_TEST

/* What an earlier version stored and this one refuses (a pattern past the bound of
 * src/base/regex.h, a vhost named ""): dropped with an error at start-up, the rest kept. */
START_TEST(recovery_drops_what_this_version_refuses_and_keeps_the_rest)
{
    static const char stored[] =
        "{\"users\": [{\"name\": \"a\", \"password_hash\": \"\", \"tags\": \"\"}, {\"name\": "
        "\"b\", \"password_hash\": \"\", \"tags\": \"\"}], \"vhosts\": [{\"name\": \"/\"}, "
        "{\"name\": \"\"}], \"permissions\": [{\"user\": \"a\", \"vhost\": \"/\", \"configure\": "
        "\".*\", \"write\": \".*\", \"read\": \".*\"}, {\"user\": \"b\", \"vhost\": \"/\", "
        "\"configure\": \"(.*){1,1000}\", \"write\": \".*\", \"read\": \".*\"}, {\"user\": \"a\", "
        "\"vhost\": \"\", \"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}], "
        "\"topic_permissions\": [{\"user\": \"a\", \"vhost\": \"/\", \"exchange\": \"t\", "
        "\"write\": \"(a*)*\", \"read\": \".*\"}]}";
    char path[] = "/tmp/check_definitions.XXXXXX";
    char text[8192];
    struct auth_db *db = auth_db_new();

    /* Imported as a document, it is refused whole. */
    ck_assert_int_eq(import_text(db, stored, NULL), -1);
    ck_assert_uint_eq(db->users.len, 0);
    start_logging(path);
    ck_assert_int_eq(definitions_recover(db, stored, strlen(stored), err, sizeof err), 0);
    stop_logging(path, text, sizeof text);
    ck_assert_uint_eq(db->users.len, 2);
    ck_assert_uint_eq(db->vhosts.len, 1);
    ck_assert_ptr_nonnull(auth_permission_find(db, B("a"), B("/")));
    ck_assert_ptr_null(auth_permission_find(db, B("b"), B("/")));
    ck_assert_ptr_null(auth_topic_permission_find(db, B("a"), B("/"), B("t")));
    ck_assert_ptr_nonnull(strstr(text, "[error] definitions: vhosts[1]: name must not be empty: "
                                       "dropped from the stored users and permissions"));
    ck_assert_ptr_nonnull(strstr(text, "[error] definitions: permissions[1] (user 'b' in vhost "
                                       "'/'): configure: regular expression '(.*){1,1000}' is "
                                       "invalid: pattern too complex"));
    ck_assert_ptr_nonnull(
        strstr(text, "permissions[2]: virtual host '' does not exist: dropped from the stored"));
    ck_assert_ptr_nonnull(strstr(text, "topic_permissions[0] (user 'a' in vhost '/'): write: "
                                       "regular expression '(a*)*' is invalid"));
    auth_db_free(db);
}
END_TEST

/* Warren's rule for vhost names everywhere (PUT /api/vhosts/NAME, AMQP's shortstr). */
START_TEST(a_vhost_name_is_one_to_255_bytes)
{
    struct auth_db *db = auth_db_new();
    char doc[512], name[257];

    ck_assert_int_eq(import_text(db, "{\"vhosts\": [{\"name\": \"/\"}, {\"name\": \"\"}]}", NULL),
                     -1);
    ck_assert_str_eq(err, "vhosts[1]: name must not be empty");
    memset(name, 'v', sizeof name - 1);
    name[256] = '\0';
    snprintf(doc, sizeof doc, "{\"vhosts\": [{\"name\": \"%s\"}]}", name);
    ck_assert_int_eq(import_text(db, doc, NULL), -1);
    ck_assert_str_eq(err, "vhosts[0]: name is longer than 255 bytes");
    ck_assert_uint_eq(db->vhosts.len, 0);
    name[255] = '\0';
    snprintf(doc, sizeof doc, "{\"vhosts\": [{\"name\": \"%s\"}]}", name);
    ck_assert_int_eq(import_text(db, doc, NULL), 0);
    ck_assert_ptr_nonnull(auth_vhost_find(db, B(name)));
    auth_db_free(db);
}
END_TEST

/* ---- Export ---------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);

    ck_assert_msg(doc != NULL, "export is not JSON: %s", jerr.text);
    return doc;
}

static json_t *find_by(json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *item;

    json_array_foreach(array, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, key)), value) == 0)
            return item;
    }
    ck_abort_msg("no entry with %s '%s'", key, value);
    return NULL;
}

static void expect_json(json_t *value, const char *want)
{
    char *got = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(export_of_an_empty_database_has_every_key)
{
    struct auth_db *db = auth_db_new();
    char *text = definitions_export(db, NULL);
    json_t *doc = parse(text);

    expect_json(doc, "{\"bindings\":[],\"exchanges\":[],\"global_parameters\":[],"
                     "\"parameters\":[],\"permissions\":[],\"policies\":[],\"queues\":[],"
                     "\"rabbit_version\":\"3.10.8\",\"rabbitmq_version\":\"3.10.8\","
                     "\"topic_permissions\":[],\"users\":[],\"vhosts\":[]}");
    json_decref(doc);
    free(text);
    auth_db_free(db);
}
END_TEST

/* Each entry as RabbitMQ 3.10.8's export writes it (compared with its export of the same
 * users, vhosts and permissions). */
START_TEST(export_writes_rabbitmqs_format)
{
    struct definitions *d;
    struct auth_db *db = import_fixture("full.json", &d);
    char *text = definitions_export(db, d);
    json_t *doc = parse(text);

    expect_json(
        find_by(json_object_get(doc, "users"), "name", "strong"),
        "{\"hashing_algorithm\":\"rabbit_password_hashing_sha512\",\"limits\":{\"max-"
        "channels\":10,\"max-connections\":2},\"name\":\"strong\",\"password_hash\":"
        "\"kI3GCrf65LdSkFyP8BVa8fB/67dDZ7ljrRF4WEjLDwWuHFxFQjgE88vc4EqLc8+dW4j5onKsGl4Ty32Ic"
        "okl1iJrRxk=\",\"tags\":[\"management\",\"impersonator\",\"team-a\"]}");
    expect_json(find_by(json_object_get(doc, "users"), "name", "certonly"),
                "{\"hashing_algorithm\":\"rabbit_password_hashing_sha256\",\"limits\":{},"
                "\"name\":\"certonly\",\"password_hash\":\"\",\"tags\":[]}");
    expect_json(find_by(json_object_get(doc, "vhosts"), "name", "shop"),
                "{\"limits\":[[\"max-connections\",100],[\"max-queues\",50]],\"metadata\":{"
                "\"default_queue_type\":\"classic\",\"description\":\"orders and payments\","
                "\"tags\":[\"prod\",\"eu\"]},\"name\":\"shop\"}");
    expect_json(find_by(json_object_get(doc, "permissions"), "user", "legacy"),
                "{\"configure\":\"\",\"read\":\"^(orders|payments)\\\\..*$\",\"user\":"
                "\"legacy\",\"vhost\":\"shop\",\"write\":\"^orders\\\\.\"}");
    expect_json(json_object_get(doc, "topic_permissions"),
                "[{\"exchange\":\"events\",\"read\":\"^{vhost}\\\\..*\",\"user\":\"legacy\","
                "\"vhost\":\"shop\",\"write\":\"^{username}\\\\.\"}]");
    expect_json(json_object_get(doc, "parameters"),
                "[{\"component\":\"vhost-limits\",\"name\":\"limits\",\"value\":{\"max-"
                "connections\":100,\"max-queues\":50},\"vhost\":\"shop\"}]");
    expect_json(find_by(json_object_get(doc, "queues"), "name", "orders.new"),
                "{\"arguments\":{\"x-dead-letter-exchange\":\"dlx\",\"x-message-ttl\":60000,"
                "\"x-nested\":{\"list\":[1,\"two\",{\"three\":false}]},\"x-queue-type\":"
                "\"classic\",\"x-ratio\":0.5,\"x-single-active-consumer\":true},\"auto_delete\":"
                "false,\"durable\":true,\"name\":\"orders.new\",\"type\":\"classic\",\"vhost\":"
                "\"shop\"}");
    expect_json(find_by(json_object_get(doc, "exchanges"), "name", "dlx"),
                "{\"arguments\":{\"alternate-exchange\":\"events\"},\"auto_delete\":false,"
                "\"durable\":true,\"internal\":true,\"name\":\"dlx\",\"type\":\"fanout\","
                "\"vhost\":\"shop\"}");
    expect_json(find_by(json_object_get(doc, "bindings"), "destination", "dlx"),
                "{\"arguments\":{\"x-match\":\"any\"},\"destination\":\"dlx\","
                "\"destination_type\":\"exchange\",\"routing_key\":\"dead.*\",\"source\":"
                "\"events\",\"vhost\":\"shop\"}");
    expect_json(find_by(json_object_get(doc, "policies"), "name", "orders-limit"),
                "{\"apply-to\":\"queues\",\"definition\":{\"dead-letter-exchange\":\"dlx\","
                "\"max-length\":10000,\"overflow\":\"reject-publish\"},\"name\":\"orders-limit\","
                "\"pattern\":\"^orders\\\\.\",\"priority\":5,\"vhost\":\"shop\"}");
    json_decref(doc);
    free(text);
    definitions_free(d);
    auth_db_free(db);
}
END_TEST

START_TEST(export_import_round_trip)
{
    struct definitions *d1, *d2;
    struct auth_db *db1 = import_fixture("full.json", &d1);
    struct auth_db *db2 = auth_db_new();
    char *first = definitions_export(db1, d1), *second;

    ck_assert_msg(import_text(db2, first, &d2) == 0, "%s", err);
    second = definitions_export(db2, d2);
    ck_assert_str_eq(second, first);
    /* The plaintext password of the fixture became a hash that still works. */
    ck_assert(auth_check_password(db2, B("plain"), B("from-the-file")));
    ck_assert(auth_check_password(db2, B("legacy"), B("guest")));
    free(first);
    free(second);
    definitions_free(d1);
    definitions_free(d2);
    auth_db_free(db1);
    auth_db_free(db2);
}
END_TEST

/* Sorted by name, whatever the order of creation. */
START_TEST(export_is_sorted)
{
    struct auth_db *db = auth_db_new();
    struct definitions *d = definitions_new();
    char *text;
    json_t *doc;

    auth_vhost_put(db, "b", NULL, NULL, 0, NULL);
    auth_vhost_put(db, "a", NULL, NULL, 0, NULL);
    auth_user_put(db, "z", NULL, NULL, 0, err, sizeof err);
    auth_user_put(db, "y", NULL, NULL, 0, err, sizeof err);
    auth_permission_set(db, "z", "b", ".*", ".*", ".*", err, sizeof err);
    auth_permission_set(db, "z", "a", ".*", ".*", ".*", err, sizeof err);
    definitions_add_queue(d, "b", "q2", true, false, (struct wire_table){{0}});
    definitions_add_queue(d, "b", "q1", true, false, (struct wire_table){{0}});
    definitions_add_queue(d, "a", "q9", true, false, (struct wire_table){{0}});
    text = definitions_export(db, d);
    doc = parse(text);
    expect_json(json_object_get(json_array_get(json_object_get(doc, "vhosts"), 0), "name"),
                "\"a\"");
    expect_json(json_object_get(json_array_get(json_object_get(doc, "users"), 0), "name"), "\"y\"");
    expect_json(json_object_get(json_array_get(json_object_get(doc, "permissions"), 0), "vhost"),
                "\"a\"");
    expect_json(json_object_get(json_array_get(json_object_get(doc, "queues"), 0), "name"),
                "\"q9\"");
    expect_json(json_object_get(json_array_get(json_object_get(doc, "queues"), 1), "name"),
                "\"q1\"");
    json_decref(doc);
    free(text);
    definitions_free(d);
    auth_db_free(db);
}
END_TEST

/* Types that JSON cannot produce (a broker's queue declared by a client) still export. */
/* Global parameters (cluster_name and any other name, any JSON value) are kept and exported
 * as they came; one without a name or a value is refused. */
START_TEST(global_parameters_are_kept_and_exported)
{
    struct auth_db *db = import_fixture("full.json", NULL);
    const struct auth_global_parameter *g = auth_global_parameter_find(db, B("cluster_name"));
    char *text;
    json_t *doc;

    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->value_json, "\"rabbit@fixture\"");
    auth_global_parameter_set(db, "feature", "{\"a\":[1,true]}");
    text = definitions_export(db, NULL);
    doc = parse(text);
    expect_json(json_object_get(doc, "global_parameters"),
                "[{\"name\":\"cluster_name\",\"value\":\"rabbit@fixture\"},"
                "{\"name\":\"feature\",\"value\":{\"a\":[1,true]}}]");
    json_decref(doc);
    free(text);
    ck_assert_int_eq(auth_global_parameter_clear(db, "feature"), 0);
    ck_assert_int_eq(auth_global_parameter_clear(db, "feature"), -1);
    auth_db_free(db);

    db = auth_db_new();
    ck_assert_int_eq(import_text(db, "{\"global_parameters\": [{\"name\": \"n\"}]}", NULL), -1);
    ck_assert_str_eq(err, "global_parameters[0] 'n': missing \"value\"");
    ck_assert_int_eq(import_text(db, "{\"global_parameters\": [{\"value\": 1}]}", NULL), -1);
    ck_assert_str_eq(err, "global_parameters[0]: missing \"name\"");
    ck_assert_uint_eq(db->global_parameters.len, 0);
    auth_db_free(db);
}
END_TEST

START_TEST(tables_of_every_type_export_to_json)
{
    uint8_t buf[512];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_field f;
    struct wire_table t;
    json_t *j;
    size_t begin;
    char *text;

    wire_table_put_i64(&w, "l", -5);
    f = (struct wire_field){.type = 'I', .v.i = -7};
    wire_table_put(&w, "I", &f);
    f = (struct wire_field){.type = 'B', .v.u = 200};
    wire_table_put(&w, "B", &f);
    wire_table_put_timestamp(&w, "T", 1700000000);
    f = (struct wire_field){.type = 'D', .v.decimal = {.scale = 2, .value = 314}};
    wire_table_put(&w, "D", &f);
    f = (struct wire_field){.type = 'f', .v.f32 = 1.5f};
    wire_table_put(&w, "f", &f);
    f = (struct wire_field){.type = 'x', .v.bytes = B("raw")};
    wire_table_put(&w, "x", &f);
    f = (struct wire_field){.type = 'V'};
    wire_table_put(&w, "V", &f);
    wire_table_put_bool(&w, "t", false);
    begin = wire_table_put_array_begin(&w, "A");
    f = (struct wire_field){.type = 'S', .v.bytes = B("s")};
    wire_put_field(&w, &f);
    wire_table_end(&w, begin);
    ck_assert(!wire_writer_overflowed(&w));
    t.raw = (struct wire_bytes){.ptr = buf, .len = wire_writer_used(&w)};

    j = definitions_table_to_json(t);
    ck_assert_ptr_nonnull(j);
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(text, "{\"A\":[\"s\"],\"B\":200,\"D\":3.1400000000000001,\"I\":-7,\"T\":"
                           "1700000000,\"V\":null,\"f\":1.5,\"l\":-5,\"t\":false,\"x\":\"raw\"}");
    free(text);
    json_decref(j);

    /* Bytes that are not UTF-8 cannot become a JSON string. */
    w = wire_writer_init(buf, sizeof buf);
    wire_table_put_longstr(&w, "bad", B("\xff\xfe"));
    t.raw = (struct wire_bytes){.ptr = buf, .len = wire_writer_used(&w)};
    ck_assert_ptr_null(definitions_table_to_json(t));
}
END_TEST

START_TEST(json_nesting_is_bounded)
{
    char doc[512] = "{\"a\": ";
    struct wire_table t;
    json_t *j;

    for (int i = 0; i < 20; i++)
        strcat(doc, "[");
    for (int i = 0; i < 20; i++)
        strcat(doc, "]");
    strcat(doc, "}");
    j = json_loads(doc, 0, NULL);
    ck_assert_int_eq(definitions_json_to_table(j, &t, err, sizeof err), -1);
    ck_assert_str_eq(err, "arguments nest deeper than 16 levels");
    json_decref(j);
}
END_TEST

static Suite *definitions_suite(void)
{
    Suite *s = suite_create("definitions");
    TCase *imp = tcase_create("import");
    TCase *ref = tcase_create("refusals");
    TCase *exp = tcase_create("export");

    tcase_add_test(imp, full_fixture_users);
    tcase_add_test(imp, full_fixture_vhosts_and_permissions);
    tcase_add_test(imp, full_fixture_exchanges_and_queues);
    tcase_add_test(imp, full_fixture_bindings_and_policies);
    tcase_add_test(imp, ignored_parts_are_logged);
    tcase_add_test(imp, vhost_tags_in_every_shape_rabbitmq_writes);
    tcase_add_test(imp, import_updates_what_exists);
    tcase_add_test(imp, a_refused_document_changes_nothing);
    tcase_add_test(imp, hashing_algorithm_is_guessed_from_the_version);
    tcase_add_test(imp, administrator_flag_of_old_files);
    tcase_add_test(imp, entries_that_are_not_objects_are_skipped_with_a_warning);
    tcase_add_test(imp, a_vhost_name_is_one_to_255_bytes);
    tcase_add_test(imp, recovery_drops_what_this_version_refuses_and_keeps_the_rest);
    suite_add_tcase(s, imp);

    tcase_add_loop_test(ref, refused_fixture_files, 0,
                        sizeof refused_files / sizeof refused_files[0]);
    tcase_add_loop_test(ref, refused_documents, 0, sizeof refused_docs / sizeof refused_docs[0]);
    tcase_add_test(ref, missing_file_is_named);
    suite_add_tcase(s, ref);

    tcase_add_test(exp, export_of_an_empty_database_has_every_key);
    tcase_add_test(exp, export_writes_rabbitmqs_format);
    tcase_add_test(exp, export_import_round_trip);
    tcase_add_test(exp, export_is_sorted);
    tcase_add_test(exp, global_parameters_are_kept_and_exported);
    tcase_add_test(exp, tables_of_every_type_export_to_json);
    tcase_add_test(exp, json_nesting_is_bounded);
    suite_add_tcase(s, exp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(definitions_suite());
    int failed;

    log_set_level(LOG_LEVEL_NONE);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
