/* Users, password hashes, vhosts and permissions.
 *
 * The expected answers come from RabbitMQ 3.10.8: the password hash below was exported by
 * it, and the permission matrix, the order of checks and the refusal texts were observed by
 * driving it with a throwaway user (see auth.h for the table). Hashes of other algorithms
 * and salts were computed independently (Python's hashlib). Patterns are RabbitMQ's PCRE:
 * each expectation in the pattern table was checked with a PCRE-compatible engine. */
#include "src/base/log.h"
#include "src/security/auth.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B(s) wire_cstr(s)

static char err[AUTH_ERR_MAX];

/* "secret" for the user warren_probe_auth1, exported by RabbitMQ 3.10.8 after
 * `rabbitmqctl add_user warren_probe_auth1 secret`. */
#define RABBITMQ_SECRET_HASH "txaBvZEtuDQLcE8bPpQgU80kYCmBCGEyvD7dqY9ijCw94lrP"

static struct auth_db *db_with_hash(const char *user, const char *b64,
                                    enum auth_hash_algorithm algorithm)
{
    struct auth_db *db = auth_db_new();

    ck_assert_msg(auth_user_put_hash(db, user, b64, algorithm, err, sizeof err) == 0, "%s", err);
    return db;
}

/* ---- Passwords ------------------------------------------------------------------------- */

START_TEST(hash_exported_by_rabbitmq_accepts_its_password)
{
    struct auth_db *db = db_with_hash("warren_probe_auth1", RABBITMQ_SECRET_HASH, AUTH_HASH_SHA256);

    ck_assert(auth_check_password(db, B("warren_probe_auth1"), B("secret")));
    ck_assert(!auth_check_password(db, B("warren_probe_auth1"), B("Secret")));
    ck_assert(!auth_check_password(db, B("warren_probe_auth1"), B("secret ")));
    ck_assert(!auth_check_password(db, B("warren_probe_auth1"), B("secre")));
    ck_assert(!auth_check_password(db, B("warren_probe_auth2"), B("secret")));
    auth_db_free(db);
}
END_TEST

static const struct {
    enum auth_hash_algorithm algorithm;
    const char *password;
    const char *b64; /* salt 90 8d c6 0a */
} vectors[] = {
    {AUTH_HASH_SHA256, "guest", "kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe"},
    {AUTH_HASH_SHA256, "p\xc3\xa4ssw\xc3\xb6rd",
     "kI3GClsOFtopbKwdov4/ENvEWw/B0G8pjpMDaFMO74PDffqF"},
    {AUTH_HASH_SHA512, "guest",
     "kI3GCrf65LdSkFyP8BVa8fB/"
     "67dDZ7ljrRF4WEjLDwWuHFxFQjgE88vc4EqLc8+dW4j5onKsGl4Ty32Icokl1iJrRxk="},
    {AUTH_HASH_SHA512, "p\xc3\xa4ssw\xc3\xb6rd",
     "kI3GCkjMdPQ+"
     "TeYtojnOU8fRlZ8IuVoFh3IkznWilYZiau3DFPHZxlMktj3KgO4DHKMLC64bOSD4MXCJRH2BYJ4y77Y="},
    {AUTH_HASH_MD5, "guest", "kI3GCsLphS59YDqYemSoxQGij64="},
    {AUTH_HASH_MD5, "p\xc3\xa4ssw\xc3\xb6rd", "kI3GClwwUwdpbaAUQtw8NE0rVIg="},
};

START_TEST(hash_vectors_of_each_algorithm)
{
    static const uint8_t salt[AUTH_SALT_BYTES] = {0x90, 0x8d, 0xc6, 0x0a};
    uint8_t hash[AUTH_HASH_MAX_BYTES];
    char b64[128];
    size_t len = auth_hash_password(vectors[_i].algorithm, salt, B(vectors[_i].password), hash);
    struct auth_db *db;

    ck_assert_uint_eq(len, auth_hash_length(vectors[_i].algorithm));
    auth_base64_encode(hash, len, b64);
    ck_assert_str_eq(b64, vectors[_i].b64);

    db = db_with_hash("u", vectors[_i].b64, vectors[_i].algorithm);
    ck_assert(auth_check_password(db, B("u"), B(vectors[_i].password)));
    ck_assert(!auth_check_password(db, B("u"), B("guest2")));
    auth_db_free(db);
}
END_TEST

START_TEST(hash_of_another_algorithm_is_refused_on_import)
{
    struct auth_db *db = auth_db_new();

    /* A SHA-256 hash (36 bytes) declared as SHA-512 cannot be one. */
    ck_assert_int_eq(
        auth_user_put_hash(db, "u", RABBITMQ_SECRET_HASH, AUTH_HASH_SHA512, err, sizeof err), -1);
    ck_assert_str_eq(err, "password_hash holds 36 bytes, rabbit_password_hashing_sha512 needs 68 "
                          "(4 of salt and the digest)");
    ck_assert_ptr_null(auth_user_find(db, B("u")));
    auth_db_free(db);
}
END_TEST

START_TEST(base64_decoding_is_strict)
{
    uint8_t out[8];

    ck_assert_int_eq(auth_base64_decode("", out, sizeof out), 0);
    ck_assert_int_eq(auth_base64_decode("YWJj", out, sizeof out), 3);
    ck_assert_int_eq(memcmp(out, "abc", 3), 0);
    ck_assert_int_eq(auth_base64_decode("YWI=", out, sizeof out), 2);
    ck_assert_int_eq(auth_base64_decode("YQ==", out, sizeof out), 1);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_int_eq(auth_base64_decode("YQ=", out, sizeof out), -1);   /* not 4k long */
    ck_assert_int_eq(auth_base64_decode(" YWJj", out, sizeof out), -1); /* blank */
    ck_assert_int_eq(auth_base64_decode("YW=j", out, sizeof out), -1);  /* '=' inside */
    ck_assert_int_eq(auth_base64_decode("!!!notbase64", out, sizeof out), -1);
    ck_assert_int_eq(auth_base64_decode("YWJjZGVmZ2hp", out, sizeof out), -1); /* 9 > 8 */
}
END_TEST

START_TEST(new_passwords_get_a_random_salt_and_sha256)
{
    struct auth_db *db = auth_db_new();
    const struct auth_user *a, *b;

    ck_assert_int_eq(auth_user_put(db, "a", "same", NULL, 0, err, sizeof err), 0);
    ck_assert_int_eq(auth_user_put(db, "b", "same", NULL, 0, err, sizeof err), 0);
    a = auth_user_find(db, B("a"));
    b = auth_user_find(db, B("b"));
    ck_assert_int_eq(a->algorithm, AUTH_HASH_SHA256);
    ck_assert_uint_eq(a->hash_len, 36);
    ck_assert_uint_eq(b->hash_len, 36);
    /* Same password, different salts, different hashes (2^-32 to collide). */
    ck_assert(memcmp(a->hash, b->hash, AUTH_SALT_BYTES) != 0);
    ck_assert(memcmp(a->hash + 4, b->hash + 4, 32) != 0);
    ck_assert(auth_check_password(db, B("a"), B("same")));
    ck_assert(auth_check_password(db, B("b"), B("same")));
    ck_assert(!auth_check_password(db, B("a"), B("other")));
    auth_db_free(db);
}
END_TEST

START_TEST(changed_password_replaces_the_old_one)
{
    struct auth_db *db = auth_db_new();

    auth_user_put(db, "u", "old", NULL, 0, err, sizeof err);
    ck_assert_int_eq(auth_user_set_password(db, "u", B("new"), err, sizeof err), 0);
    ck_assert(!auth_check_password(db, B("u"), B("old")));
    ck_assert(auth_check_password(db, B("u"), B("new")));
    ck_assert_int_eq(auth_user_set_password(db, "nobody", B("x"), err, sizeof err), -1);
    ck_assert_str_eq(err, "user 'nobody' does not exist");
    auth_db_free(db);
}
END_TEST

START_TEST(empty_password_and_user_without_password_never_log_in)
{
    struct auth_db *db = auth_db_new();

    auth_user_put(db, "blank", "", NULL, 0, err, sizeof err);
    auth_user_put(db, "nopass", NULL, NULL, 0, err, sizeof err);
    ck_assert_uint_eq(auth_user_find(db, B("nopass"))->hash_len, 0);
    /* RabbitMQ refuses a blank password before looking at the hash. */
    ck_assert(!auth_check_password(db, B("blank"), B("")));
    ck_assert(!auth_check_password(db, B("nopass"), B("")));
    ck_assert(!auth_check_password(db, B("nopass"), B("anything")));
    auth_db_free(db);
}
END_TEST

/* The check compares the whole digest: a stored hash that differs from the right one in its
 * first or its last byte is refused (a prefix comparison would let one of them through). */
START_TEST(password_check_compares_every_byte_of_the_digest)
{
    struct auth_db *db = db_with_hash("u", RABBITMQ_SECRET_HASH, AUTH_HASH_SHA256);
    struct auth_user *u = auth_user_find(db, B("u"));

    u->hash[4] ^= 1;
    ck_assert(!auth_check_password(db, B("u"), B("secret")));
    u->hash[4] ^= 1;
    u->hash[35] ^= 0x80;
    ck_assert(!auth_check_password(db, B("u"), B("secret")));
    u->hash[35] ^= 0x80;
    ck_assert(auth_check_password(db, B("u"), B("secret")));
    /* A password with a NUL byte is not the same password cut at the NUL. */
    ck_assert(!auth_check_password(
        db, B("u"), (struct wire_bytes){.ptr = (const uint8_t *)"secret\0x", .len = 8}));
    auth_db_free(db);
}
END_TEST

START_TEST(algorithm_names_are_rabbitmqs)
{
    enum auth_hash_algorithm a;

    ck_assert_str_eq(auth_hash_algorithm_name(AUTH_HASH_SHA256), "rabbit_password_hashing_sha256");
    ck_assert_int_eq(auth_hash_algorithm_parse("rabbit_password_hashing_md5", &a), 0);
    ck_assert_int_eq(a, AUTH_HASH_MD5);
    ck_assert_int_eq(auth_hash_algorithm_parse("rabbit_password_hashing_sha512", &a), 0);
    ck_assert_int_eq(a, AUTH_HASH_SHA512);
    ck_assert_int_eq(auth_hash_algorithm_parse("rabbit_password_hashing_nope", &a), -1);
}
END_TEST

/* ---- Patterns -------------------------------------------------------------------------- */

static const struct {
    const char *pattern;
    const char *name;
    bool matches;
} pattern_cases[] = {
    {".*", "", true},
    {".*", "anything", true},
    {"^$", "", true},
    {"^$", "q", false},
    {"", "", true}, /* "" means "^$" */
    {"", "q", false},
    {"a", "xay", true}, /* not anchored: re:run searches */
    {"a", "xyz", false},
    {"^a", "xa", false},
    {"^(amq\\.gen.*|amq\\.default)$", "amq.gen-abc", true},
    {"^(amq\\.gen.*|amq\\.default)$", "amq.default", true},
    {"^(amq\\.gen.*|amq\\.default)$", "amq.defaultx", false},
    {"^(amq\\.gen.*|amq\\.default)$", "amqXgen", false},
    {"\\d+$", "q42", true},
    {"^\\d+$", "q42", false},
    {"^[\\w.-]+$", "a.b-c_d", true},
    {"^[\\w.-]+$", "a b", false},
    {"^{username}-", "{username}-x", true}, /* a '{' that starts no quantifier is literal */
    {"^{username}-", "bob-x", false},
    {"^x{2}$", "xx", true},
    {"^x{2}$", "x{2}", false},
    {"^a.*?b$", "axxb", true},
    {"^(?:a|b)c$", "bc", true},
    {"^[\\]]$", "]", true},
    {"^[\\^]$", "^", true},
    {"^[^\\^]$", "^", false},
    {"^[^\\^]$", "a", true},
    {"^[a\\-z]$", "-", true},
    {"^[a\\-z]$", "m", false},
    {"^\\s*$", " \t", true},
    {"^\\S+$", "ab", true},
    {"^\\W$", "!", true},
    {"^a}$", "a}", true},
    {"^[\\\\]$", "\\", true},
    {"^[.]$", "x", false},
    {"^x{1,}$", "xxx", true},
    {"^[[:digit:]]+$", "123", true},
    {"^a\\.b$", "a.b", true},
    {"^a\\.b$", "axb", false},
    {"^[\\d-]+$", "1-2", true},
    {"^q-\\d{3}$", "q-123", true},
    {"^q-\\d{3}$", "q-12", false},
    {"^a\\/b$", "a/b", true},
    {"^[-^]$", "^", true},
    {"^a??$", "", true},
};

START_TEST(patterns_match_as_rabbitmq_pcre)
{
    struct auth_pattern p;

    ck_assert_msg(auth_pattern_compile(&p, pattern_cases[_i].pattern, err, sizeof err) == 0,
                  "'%s': %s", pattern_cases[_i].pattern, err);
    ck_assert_msg(auth_pattern_matches(&p, B(pattern_cases[_i].name)) == pattern_cases[_i].matches,
                  "'%s' on '%s' should %s", pattern_cases[_i].pattern, pattern_cases[_i].name,
                  pattern_cases[_i].matches ? "match" : "not match");
    ck_assert_str_eq(p.source, pattern_cases[_i].pattern);
    auth_pattern_free(&p);
}
END_TEST

static const struct {
    const char *pattern;
    const char *error;
} bad_patterns[] = {
    {"(unclosed", "regular expression '(unclosed' is invalid: Unmatched ( or \\("},
    {"[a", "regular expression '[a' is invalid: missing terminating ] for character class"},
    {"a\\", "regular expression 'a\\' is invalid: \\ at end of pattern"},
    {"(?=a)", "regular expression '(?=a)' is invalid: unsupported group syntax (?="},
    {"(?i)a", "regular expression '(?i)a' is invalid: unsupported group syntax (?i"},
    {"(a)\\1", "regular expression '(a)\\1' is invalid: unsupported escape \\1"},
    {"a++", "regular expression 'a++' is invalid: possessive quantifiers are not supported"},
    {"[z-a]", "regular expression '[z-a]' is invalid: range out of order in character class"},
    /* Bounded before regcomp (src/base/regex.h): unbounded, the first takes 31 MB for as long
     * as the permission exists, and (.*){1,32000} took 24 GB. */
    {"(.*){1,1000}", "regular expression '(.*){1,1000}' is invalid: pattern too complex: its "
                     "repetitions and alternatives would take more than 1000000 steps to "
                     "compile"},
    {"(\\d{100}){1001}", "regular expression '(\\d{100}){1001}' is invalid: pattern too "
                         "complex: repetition bounds expand it to more than 100000 nodes"},
    {"(\\b|\\B|^|$)*", "regular expression '(\\b|\\B|^|$)*' is invalid: pattern too complex: "
                       "* + or {n,} repeats a part that can match the empty string"},
};

START_TEST(patterns_posix_cannot_express_are_refused)
{
    struct auth_pattern p;

    ck_assert_int_eq(auth_pattern_compile(&p, bad_patterns[_i].pattern, err, sizeof err), -1);
    ck_assert_str_eq(err, bad_patterns[_i].error);
}
END_TEST

START_TEST(pattern_search_is_bounded_by_the_name_length)
{
    struct auth_pattern p;
    /* Names from the wire are not NUL-terminated; "q1x" cut to 2 bytes is "q1". */
    struct wire_bytes cut = {.ptr = (const uint8_t *)"q1x", .len = 2};

    ck_assert_int_eq(auth_pattern_compile(&p, "^q1$", err, sizeof err), 0);
    ck_assert(auth_pattern_matches(&p, cut));
    ck_assert(!auth_pattern_matches(&p, B("q1x")));
    auth_pattern_free(&p);
}
END_TEST

/* ---- Permissions ----------------------------------------------------------------------- */

/* A vhost "v" and users: "all" (.* .* .*), "noconf" (^$ .* .*), "nowrite" (.* ^$ .*),
 * "noread" (.* .* ^$), "none" (no entry in "v", one in "/"). */
static struct auth_db *matrix_db(void)
{
    static const struct {
        const char *user, *configure, *write, *read;
    } users[] = {
        {"all", ".*", ".*", ".*"},
        {"noconf", "^$", ".*", ".*"},
        {"nowrite", ".*", "^$", ".*"},
        {"noread", ".*", ".*", "^$"},
    };
    struct auth_db *db = auth_db_new();

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_vhost_put(db, "/", NULL, NULL, 0, NULL);
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        ck_assert_int_eq(auth_user_put(db, users[i].user, "pw", NULL, 0, err, sizeof err), 0);
        ck_assert_msg(auth_permission_set(db, users[i].user, "v", users[i].configure,
                                          users[i].write, users[i].read, err, sizeof err) == 0,
                      "%s", err);
    }
    auth_user_put(db, "none", "pw", NULL, 0, err, sizeof err);
    auth_permission_set(db, "none", "/", ".*", ".*", ".*", err, sizeof err);
    return db;
}

/* What RabbitMQ 3.10.8 answered for each operation on queue q1, exchanges x1 (and x2 as
 * the destination of exchange.bind) to a user refused one permission: NULL is success,
 * otherwise the resource named in the refusal. */
static const struct {
    enum auth_op op;
    const char *primary, *secondary;
    const char *noconf, *nowrite, *noread;
} matrix[] = {
    {AUTH_OP_QUEUE_DECLARE, "q1", "", "queue 'q1'", NULL, NULL},
    {AUTH_OP_QUEUE_DECLARE, "amq.gen-X", "", "queue 'amq.gen-X'", NULL, NULL},
    {AUTH_OP_EXCHANGE_DECLARE, "x1", "", "exchange 'x1'", NULL, NULL},
    {AUTH_OP_QUEUE_BIND, "q1", "x1", NULL, "queue 'q1'", "exchange 'x1'"},
    {AUTH_OP_QUEUE_UNBIND, "q1", "x1", NULL, "queue 'q1'", "exchange 'x1'"},
    {AUTH_OP_EXCHANGE_BIND, "x2", "x1", NULL, "exchange 'x2'", "exchange 'x1'"},
    {AUTH_OP_EXCHANGE_UNBIND, "x2", "x1", NULL, "exchange 'x2'", "exchange 'x1'"},
    {AUTH_OP_BASIC_PUBLISH, "", "", NULL, "exchange 'amq.default'", NULL},
    {AUTH_OP_BASIC_PUBLISH, "x1", "", NULL, "exchange 'x1'", NULL},
    {AUTH_OP_BASIC_GET, "q1", "", NULL, NULL, "queue 'q1'"},
    {AUTH_OP_BASIC_CONSUME, "q1", "", NULL, NULL, "queue 'q1'"},
    {AUTH_OP_QUEUE_PURGE, "q1", "", NULL, NULL, "queue 'q1'"},
    {AUTH_OP_QUEUE_DELETE, "q1", "", "queue 'q1'", NULL, NULL},
    {AUTH_OP_EXCHANGE_DELETE, "x1", "", "exchange 'x1'", NULL, NULL},
};

static void expect_op(struct auth_db *db, const char *user, size_t i, const char *refused)
{
    char text[512], want[512];
    bool ok = auth_check_op(db, B(user), B("v"), matrix[i].op, B(matrix[i].primary),
                            B(matrix[i].secondary), text, sizeof text);

    if (refused == NULL) {
        ck_assert_msg(ok, "op %d on '%s' refused for %s: %s", matrix[i].op, matrix[i].primary, user,
                      text);
        return;
    }
    ck_assert_msg(!ok, "op %d on '%s' allowed for %s", matrix[i].op, matrix[i].primary, user);
    snprintf(want, sizeof want, "access to %s in vhost 'v' refused for user '%s'", refused, user);
    ck_assert_str_eq(text, want);
}

START_TEST(permission_matrix_matches_rabbitmq)
{
    struct auth_db *db = matrix_db();

    expect_op(db, "all", _i, NULL);
    expect_op(db, "noconf", _i, matrix[_i].noconf);
    expect_op(db, "nowrite", _i, matrix[_i].nowrite);
    expect_op(db, "noread", _i, matrix[_i].noread);
    /* A user without an entry in the vhost is refused everything. */
    ck_assert(!auth_check_op(db, B("none"), B("v"), matrix[_i].op, B(matrix[_i].primary),
                             B(matrix[_i].secondary), NULL, 0));
    ck_assert(!auth_check_op(db, B("nobody"), B("v"), matrix[_i].op, B(matrix[_i].primary),
                             B(matrix[_i].secondary), NULL, 0));
    auth_db_free(db);
}
END_TEST

/* Observed with permissions that refuse both the primary and the secondary check: RabbitMQ
 * reports the read on the new queue or exchange before the write on its DLX or AE, the
 * queue before the exchange of queue.bind, the destination before the source. */
START_TEST(checks_run_in_rabbitmqs_order)
{
    struct auth_db *db = auth_db_new();
    char text[512];

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);

    auth_permission_set(db, "u", "v", ".*", "^q", "^x", err, sizeof err);
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_QUEUE_DECLARE_DLX, B("q2"), B("dlx"), text,
                             sizeof text));
    ck_assert_str_eq(text, "access to queue 'q2' in vhost 'v' refused for user 'u'");
    auth_permission_set(db, "u", "v", ".*", "^x", "^a", err, sizeof err);
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_EXCHANGE_DECLARE_AE, B("x3"), B("ae"),
                             text, sizeof text));
    ck_assert_str_eq(text, "access to exchange 'x3' in vhost 'v' refused for user 'u'");
    /* One check refused at a time. */
    auth_permission_set(db, "u", "v", ".*", "^q", ".*", err, sizeof err);
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_QUEUE_DECLARE_DLX, B("q2"), B("dlx"), text,
                             sizeof text));
    ck_assert_str_eq(text, "access to exchange 'dlx' in vhost 'v' refused for user 'u'");
    auth_permission_set(db, "u", "v", ".*", "^x", ".*", err, sizeof err);
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_EXCHANGE_DECLARE_AE, B("x3"), B("ae"),
                             text, sizeof text));
    ck_assert_str_eq(text, "access to exchange 'ae' in vhost 'v' refused for user 'u'");
    auth_permission_set(db, "u", "v", "^q2$", ".*", ".*", err, sizeof err);
    ck_assert(auth_check_op(db, B("u"), B("v"), AUTH_OP_QUEUE_DECLARE_DLX, B("q2"), B("dlx"), text,
                            sizeof text));
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_EXCHANGE_DECLARE_AE, B("x3"), B("ae"),
                             text, sizeof text));
    ck_assert_str_eq(text, "access to exchange 'x3' in vhost 'v' refused for user 'u'");

    auth_permission_set(db, "u", "v", ".*", "^$", "^$", err, sizeof err);
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_QUEUE_BIND, B("q1"), B("x1"), text,
                             sizeof text));
    ck_assert_str_eq(text, "access to queue 'q1' in vhost 'v' refused for user 'u'");
    ck_assert(!auth_check_op(db, B("u"), B("v"), AUTH_OP_EXCHANGE_BIND, B("x2"), B("x1"), text,
                             sizeof text));
    ck_assert_str_eq(text, "access to exchange 'x2' in vhost 'v' refused for user 'u'");
    auth_db_free(db);
}
END_TEST

START_TEST(default_exchange_is_checked_as_amq_default)
{
    struct auth_db *db = auth_db_new();

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    auth_permission_set(db, "u", "v", "^$", "^amq\\.default$", "^$", err, sizeof err);
    ck_assert(auth_permitted(db, B("u"), B("v"), AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, B("")));
    /* A queue named "" is not the default exchange. */
    ck_assert(!auth_permitted(db, B("u"), B("v"), AUTH_WRITE, AUTH_RESOURCE_QUEUE, B("")));
    ck_assert(auth_permitted(db, B("u"), B("v"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("")));
    auth_db_free(db);
}
END_TEST

START_TEST(several_access_bits_need_all_of_them)
{
    struct auth_db *db = auth_db_new();

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    auth_permission_set(db, "u", "v", "^c", "^w", ".*", err, sizeof err);
    ck_assert(auth_permitted(db, B("u"), B("v"), AUTH_CONFIGURE | AUTH_READ, AUTH_RESOURCE_QUEUE,
                             B("cq")));
    ck_assert(!auth_permitted(db, B("u"), B("v"), AUTH_CONFIGURE | AUTH_WRITE, AUTH_RESOURCE_QUEUE,
                              B("cq")));
    ck_assert(!auth_permitted(db, B("u"), B("v"), AUTH_CONFIGURE, AUTH_RESOURCE_QUEUE, B("wq")));
    auth_db_free(db);
}
END_TEST

START_TEST(vhost_access_needs_an_entry_whatever_its_patterns)
{
    struct auth_db *db = auth_db_new();
    char text[256];

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_vhost_put(db, "w", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    auth_permission_set(db, "u", "v", "^$", "^$", "^$", err, sizeof err);
    ck_assert(auth_vhost_access(db, B("u"), B("v")));
    ck_assert(!auth_vhost_access(db, B("u"), B("w")));
    ck_assert(!auth_vhost_access(db, B("x"), B("v")));
    auth_vhost_refusal_text(text, sizeof text, B("w"), B("u"));
    ck_assert_str_eq(text, "access to vhost 'w' refused for user 'u'");
    ck_assert_int_eq(auth_permission_clear(db, "u", "v"), 0);
    ck_assert(!auth_vhost_access(db, B("u"), B("v")));
    ck_assert_int_eq(auth_permission_clear(db, "u", "v"), -1);
    auth_db_free(db);
}
END_TEST

START_TEST(permission_for_missing_user_or_vhost_or_bad_pattern_is_refused)
{
    struct auth_db *db = auth_db_new();
    uint64_t generation;

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    generation = db->generation;
    ck_assert_int_eq(auth_permission_set(db, "x", "v", ".*", ".*", ".*", err, sizeof err), -1);
    ck_assert_str_eq(err, "user 'x' does not exist");
    ck_assert_int_eq(auth_permission_set(db, "u", "w", ".*", ".*", ".*", err, sizeof err), -1);
    ck_assert_str_eq(err, "virtual host 'w' does not exist");
    ck_assert_int_eq(auth_permission_set(db, "u", "v", ".*", "(", ".*", err, sizeof err), -1);
    ck_assert_str_eq(err, "regular expression '(' is invalid: Unmatched ( or \\(");
    ck_assert_ptr_null(auth_permission_find(db, B("u"), B("v")));
    ck_assert_uint_eq(db->generation, generation);
    auth_db_free(db);
}
END_TEST

START_TEST(refusal_texts_are_rabbitmqs)
{
    char text[512];

    auth_refusal_text(text, sizeof text, AUTH_RESOURCE_QUEUE, B("q"), B("/"), B("u"));
    ck_assert_str_eq(text, "access to queue 'q' in vhost '/' refused for user 'u'");
    auth_refusal_text(text, sizeof text, AUTH_RESOURCE_EXCHANGE, B(""), B("/"), B("u"));
    ck_assert_str_eq(text, "access to exchange 'amq.default' in vhost '/' refused for user 'u'");
    auth_topic_refusal_text(text, sizeof text, B("other.key"), B("amq.topic"),
                            B("warren_probe_vh1"), B("warren_probe_auth1"));
    ck_assert_str_eq(text, "access to topic 'other.key' in exchange 'amq.topic' in vhost "
                           "'warren_probe_vh1' refused for user 'warren_probe_auth1'");
}
END_TEST

START_TEST(permissions_are_replaced_not_merged)
{
    struct auth_db *db = matrix_db();

    ck_assert(auth_permitted(db, B("all"), B("v"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("q")));
    ck_assert_int_eq(auth_permission_set(db, "all", "v", ".*", ".*", "^x", err, sizeof err), 0);
    ck_assert(!auth_permitted(db, B("all"), B("v"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("q")));
    ck_assert(auth_permitted(db, B("all"), B("v"), AUTH_READ, AUTH_RESOURCE_QUEUE, B("xq")));
    ck_assert_str_eq(auth_permission_find(db, B("all"), B("v"))->read.source, "^x");
    auth_db_free(db);
}
END_TEST

/* ---- Topic permissions ----------------------------------------------------------------- */

START_TEST(topic_pattern_expansion)
{
    char *s;

    s = auth_expand_topic_pattern("^{username}-{vhost}\\.{client_id}$", "bob", "/prod", "c1");
    ck_assert_str_eq(s, "^bob-/prod\\.c1$");
    free(s);
    /* A NULL value leaves its placeholder; a value is not expanded again. */
    s = auth_expand_topic_pattern("{username}.{client_id}.{other}", "{vhost}", "v", NULL);
    ck_assert_str_eq(s, "{vhost}.{client_id}.{other}");
    free(s);
    s = auth_expand_topic_pattern("{username}{username}", "a", "v", NULL);
    ck_assert_str_eq(s, "aa");
    free(s);
}
END_TEST

/* The topic permissions that were set on RabbitMQ for warren_probe_auth1 in warren_probe_vh1
 * on amq.topic, with what it allowed and refused. */
START_TEST(topic_permissions_match_rabbitmq)
{
    struct auth_db *db = auth_db_new();
    struct wire_bytes u = B("warren_probe_auth1"), v = B("warren_probe_vh1");

    auth_vhost_put(db, "warren_probe_vh1", NULL, NULL, 0, NULL);
    auth_user_put(db, "warren_probe_auth1", "secret", NULL, 0, err, sizeof err);
    ck_assert_msg(auth_topic_permission_set(db, "warren_probe_auth1", "warren_probe_vh1",
                                            "amq.topic", "^{username}-.*", "^{vhost}\\..*", err,
                                            sizeof err) == 0,
                  "%s", err);
    ck_assert(auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_WRITE, B("warren_probe_auth1-a"),
                                   NULL));
    ck_assert(!auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_WRITE, B("other.key"), NULL));
    ck_assert(
        auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_READ, B("warren_probe_vh1.x"), NULL));
    ck_assert(!auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_READ, B("zzz"), NULL));
    ck_assert(!auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_READ, B("warren_probe_auth1-a"),
                                    NULL));
    /* No topic permission on another exchange: allowed. */
    ck_assert(auth_topic_permitted(db, u, v, B("other.topic"), AUTH_WRITE, B("zzz"), NULL));
    /* The raw patterns are kept for export. */
    ck_assert_str_eq(auth_topic_permission_find(db, u, v, B("amq.topic"))->write.source,
                     "^{username}-.*");

    /* "" is "^$": only the empty routing key passes. */
    auth_topic_permission_set(db, "warren_probe_auth1", "warren_probe_vh1", "amq.topic", "", "",
                              err, sizeof err);
    ck_assert(!auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_WRITE, B("a"), NULL));
    ck_assert(auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_WRITE, B(""), NULL));

    ck_assert_int_eq(
        auth_topic_permission_clear(db, "warren_probe_auth1", "warren_probe_vh1", "amq.topic"), 0);
    ck_assert(auth_topic_permitted(db, u, v, B("amq.topic"), AUTH_WRITE, B("a"), NULL));
    auth_db_free(db);
}
END_TEST

START_TEST(topic_client_id_is_expanded_per_check)
{
    struct auth_db *db = auth_db_new();

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    ck_assert_int_eq(
        auth_topic_permission_set(db, "u", "v", "t", "^{client_id}\\.", ".*", err, sizeof err), 0);
    ck_assert(auth_topic_permitted(db, B("u"), B("v"), B("t"), AUTH_WRITE, B("dev1.x"), "dev1"));
    ck_assert(!auth_topic_permitted(db, B("u"), B("v"), B("t"), AUTH_WRITE, B("dev2.x"), "dev1"));
    /* Without a client id (AMQP 0-9-1) the placeholder is matched literally. */
    ck_assert(!auth_topic_permitted(db, B("u"), B("v"), B("t"), AUTH_WRITE, B("dev1.x"), NULL));
    ck_assert(
        auth_topic_permitted(db, B("u"), B("v"), B("t"), AUTH_WRITE, B("{client_id}.x"), NULL));
    auth_db_free(db);
}
END_TEST

START_TEST(topic_permission_names_are_inserted_unescaped)
{
    struct auth_db *db = auth_db_new();

    /* As RabbitMQ's binary:replace: the '.' of the user name is a regex dot. */
    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    auth_user_put(db, "a.b", "pw", NULL, 0, err, sizeof err);
    auth_topic_permission_set(db, "a.b", "v", "t", "^{username}$", ".*", err, sizeof err);
    ck_assert(auth_topic_permitted(db, B("a.b"), B("v"), B("t"), AUTH_WRITE, B("a.b"), NULL));
    ck_assert(auth_topic_permitted(db, B("a.b"), B("v"), B("t"), AUTH_WRITE, B("axb"), NULL));
    /* A name that makes the expanded pattern invalid is refused when it is set. */
    auth_user_put(db, "a(b", "pw", NULL, 0, err, sizeof err);
    ck_assert_int_eq(
        auth_topic_permission_set(db, "a(b", "v", "t", "^{username}$", ".*", err, sizeof err), -1);
    ck_assert_str_eq(err, "regular expression '^{username}$' is invalid: Unmatched ( or \\(");
    auth_db_free(db);
}
END_TEST

/* ---- Users and vhosts ------------------------------------------------------------------ */

START_TEST(vhost_create_update_list_delete)
{
    struct auth_db *db = auth_db_new();
    static const char *const tags[] = {"a", "b"};
    const struct auth_vhost **list;
    struct auth_vhost *vh;
    size_t n;

    auth_vhost_put(db, "b", NULL, NULL, 0, NULL);
    vh = auth_vhost_put(db, "a", "first", tags, 2, "quorum");
    ck_assert_str_eq(vh->description, "first");
    ck_assert_uint_eq(vh->tags_len, 2);
    ck_assert_str_eq(vh->tags[1], "b");
    ck_assert_str_eq(vh->default_queue_type, "quorum");
    ck_assert_int_eq(vh->max_connections, -1);
    /* Putting again updates the same vhost. */
    ck_assert_ptr_eq(auth_vhost_put(db, "a", "second", NULL, 0, NULL), vh);
    ck_assert_str_eq(vh->description, "second");
    ck_assert_uint_eq(vh->tags_len, 0);
    ck_assert_ptr_null(vh->default_queue_type);
    ck_assert_int_eq(auth_vhost_set_limits(db, "a", 10, 20), 0);
    ck_assert_int_eq(vh->max_queues, 20);
    ck_assert_int_eq(auth_vhost_set_limits(db, "zz", 10, 20), -1);

    list = auth_vhosts_sorted(db, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(list[0]->name, "a");
    ck_assert_str_eq(list[1]->name, "b");
    free(list);

    ck_assert_int_eq(auth_vhost_delete(db, "a"), 0);
    ck_assert_ptr_null(auth_vhost_find(db, B("a")));
    ck_assert_int_eq(auth_vhost_delete(db, "a"), -1);
    auth_db_free(db);
}
END_TEST

START_TEST(deleting_a_vhost_deletes_its_permissions)
{
    struct auth_db *db = matrix_db();

    auth_topic_permission_set(db, "all", "v", "amq.topic", "^a", "^a", err, sizeof err);
    ck_assert_int_eq(auth_vhost_delete(db, "v"), 0);
    ck_assert(!auth_vhost_access(db, B("all"), B("v")));
    ck_assert_ptr_null(auth_topic_permission_find(db, B("all"), B("v"), B("amq.topic")));
    /* Recreated, the vhost starts without permissions. */
    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    ck_assert(!auth_vhost_access(db, B("all"), B("v")));
    /* Other vhosts keep theirs. */
    ck_assert(auth_vhost_access(db, B("none"), B("/")));
    auth_db_free(db);
}
END_TEST

START_TEST(deleting_a_user_deletes_its_permissions)
{
    struct auth_db *db = matrix_db();

    ck_assert_int_eq(auth_user_delete(db, "all"), 0);
    ck_assert_ptr_null(auth_user_find(db, B("all")));
    ck_assert(!auth_vhost_access(db, B("all"), B("v")));
    ck_assert_int_eq(auth_user_delete(db, "all"), -1);
    /* A new user of that name starts from nothing. */
    auth_user_put(db, "all", "pw", NULL, 0, err, sizeof err);
    ck_assert(!auth_vhost_access(db, B("all"), B("v")));
    auth_db_free(db);
}
END_TEST

START_TEST(user_tags_and_limits)
{
    struct auth_db *db = auth_db_new();
    static const char *const tags[] = {"monitoring", "custom-tag"};
    const struct auth_user *u;

    auth_user_put(db, "u", "pw", tags, 2, err, sizeof err);
    u = auth_user_find(db, B("u"));
    ck_assert(auth_user_has_tag(u, "monitoring"));
    ck_assert(auth_user_has_tag(u, "custom-tag"));
    ck_assert(!auth_user_has_tag(u, "administrator"));
    ck_assert_int_eq(auth_user_set_tags(db, "u", NULL, 0), 0);
    ck_assert(!auth_user_has_tag(u, "monitoring"));
    ck_assert_int_eq(auth_user_set_tags(db, "x", NULL, 0), -1);
    ck_assert_int_eq(u->max_connections, -1);
    ck_assert_int_eq(auth_user_set_limits(db, "u", 2, 5), 0);
    ck_assert_int_eq(u->max_connections, 2);
    ck_assert_int_eq(u->max_channels, 5);
    auth_db_free(db);
}
END_TEST

START_TEST(generation_moves_on_every_change)
{
    struct auth_db *db = auth_db_new();
    uint64_t g = db->generation;

    auth_vhost_put(db, "v", NULL, NULL, 0, NULL);
    ck_assert_uint_gt(db->generation, g);
    g = db->generation;
    auth_user_put(db, "u", "pw", NULL, 0, err, sizeof err);
    ck_assert_uint_gt(db->generation, g);
    g = db->generation;
    auth_permission_set(db, "u", "v", ".*", ".*", ".*", err, sizeof err);
    ck_assert_uint_gt(db->generation, g);
    g = db->generation;
    auth_permission_clear(db, "u", "v");
    ck_assert_uint_gt(db->generation, g);
    g = db->generation;
    auth_user_delete(db, "u");
    ck_assert_uint_gt(db->generation, g);
    auth_db_free(db);
}
END_TEST

/* ---- Defaults -------------------------------------------------------------------------- */

START_TEST(default_user_is_created_on_an_empty_database_only)
{
    struct auth_db *db = auth_db_new();
    const struct auth_user *u;

    ck_assert_int_eq(auth_ensure_default(db, "guest", "guest", "/", err, sizeof err), 1);
    u = auth_user_find(db, B("guest"));
    ck_assert_ptr_nonnull(u);
    ck_assert(auth_user_has_tag(u, "administrator"));
    ck_assert(auth_check_password(db, B("guest"), B("guest")));
    ck_assert_str_eq(auth_vhost_find(db, B("/"))->description, "Default virtual host");
    ck_assert(auth_permitted(db, B("guest"), B("/"), AUTH_CONFIGURE | AUTH_WRITE | AUTH_READ,
                             AUTH_RESOURCE_QUEUE, B("any")));
    /* Deleting the user leaves a vhost: the database is not blank, nothing is recreated. */
    auth_user_delete(db, "guest");
    ck_assert_int_eq(auth_ensure_default(db, "guest", "guest", "/", err, sizeof err), 0);
    ck_assert_ptr_null(auth_user_find(db, B("guest")));
    auth_db_free(db);

    db = auth_db_new();
    ck_assert_int_eq(auth_ensure_default(db, "admin", "s3cret", "prod", err, sizeof err), 1);
    ck_assert(auth_vhost_access(db, B("admin"), B("prod")));
    ck_assert(!auth_check_password(db, B("admin"), B("guest")));
    ck_assert(auth_check_password(db, B("admin"), B("s3cret")));
    auth_db_free(db);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *pw = tcase_create("passwords");
    TCase *pat = tcase_create("patterns");
    TCase *perm = tcase_create("permissions");
    TCase *topic = tcase_create("topic");
    TCase *db = tcase_create("database");

    tcase_add_test(pw, hash_exported_by_rabbitmq_accepts_its_password);
    tcase_add_loop_test(pw, hash_vectors_of_each_algorithm, 0, sizeof vectors / sizeof vectors[0]);
    tcase_add_test(pw, hash_of_another_algorithm_is_refused_on_import);
    tcase_add_test(pw, base64_decoding_is_strict);
    tcase_add_test(pw, new_passwords_get_a_random_salt_and_sha256);
    tcase_add_test(pw, changed_password_replaces_the_old_one);
    tcase_add_test(pw, empty_password_and_user_without_password_never_log_in);
    tcase_add_test(pw, password_check_compares_every_byte_of_the_digest);
    tcase_add_test(pw, algorithm_names_are_rabbitmqs);
    suite_add_tcase(s, pw);

    tcase_add_loop_test(pat, patterns_match_as_rabbitmq_pcre, 0,
                        sizeof pattern_cases / sizeof pattern_cases[0]);
    tcase_add_loop_test(pat, patterns_posix_cannot_express_are_refused, 0,
                        sizeof bad_patterns / sizeof bad_patterns[0]);
    tcase_add_test(pat, pattern_search_is_bounded_by_the_name_length);
    suite_add_tcase(s, pat);

    tcase_add_loop_test(perm, permission_matrix_matches_rabbitmq, 0,
                        sizeof matrix / sizeof matrix[0]);
    tcase_add_test(perm, checks_run_in_rabbitmqs_order);
    tcase_add_test(perm, default_exchange_is_checked_as_amq_default);
    tcase_add_test(perm, several_access_bits_need_all_of_them);
    tcase_add_test(perm, vhost_access_needs_an_entry_whatever_its_patterns);
    tcase_add_test(perm, permission_for_missing_user_or_vhost_or_bad_pattern_is_refused);
    tcase_add_test(perm, refusal_texts_are_rabbitmqs);
    tcase_add_test(perm, permissions_are_replaced_not_merged);
    suite_add_tcase(s, perm);

    tcase_add_test(topic, topic_pattern_expansion);
    tcase_add_test(topic, topic_permissions_match_rabbitmq);
    tcase_add_test(topic, topic_client_id_is_expanded_per_check);
    tcase_add_test(topic, topic_permission_names_are_inserted_unescaped);
    suite_add_tcase(s, topic);

    tcase_add_test(db, vhost_create_update_list_delete);
    tcase_add_test(db, deleting_a_vhost_deletes_its_permissions);
    tcase_add_test(db, deleting_a_user_deletes_its_permissions);
    tcase_add_test(db, user_tags_and_limits);
    tcase_add_test(db, generation_moves_on_every_change);
    tcase_add_test(db, default_user_is_created_on_an_empty_database_only);
    suite_add_tcase(s, db);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    int failed;

    log_set_level(LOG_LEVEL_NONE);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
