/* Users, password hashes, virtual hosts and permissions: RabbitMQ's internal authentication
 * and authorisation backend (rabbit_auth_backend_internal), behaviour for behaviour.
 *
 * Passwords are kept as RabbitMQ keeps them, so that definitions move between the two
 * brokers: base64(salt[4] + H(salt[4] + password)), H being SHA-256
 * (rabbit_password_hashing_sha256, what new users get), SHA-512 or MD5 (accepted on import).
 *
 * Permissions are three regular expressions per (user, vhost), matched against resource
 * names without implicit anchors, as RabbitMQ's re:run(Name, Regex, [{capture, none}]):
 * ".*" grants everything, "^$" (or "") nothing but the empty name. A user may open a
 * connection to a vhost when it has any permission entry there, whatever its patterns.
 * Topic permissions add a write and a read expression per (user, vhost, topic exchange),
 * matched against routing keys after expanding {username}, {vhost} and {client_id}.
 *
 * RabbitMQ's patterns are PCRE; Warren compiles them as POSIX extended expressions after
 * translating the PCRE forms that people write in permissions (\d \w \s, \. inside [...],
 * (?:...), lazy quantifiers, a literal '{' as in "^{username}-"). A construct that cannot be
 * translated (look-around, back-references, possessive quantifiers, inline flags) is refused
 * when the permission is set, never silently given another meaning; so is a pattern whose
 * compiled form would cost more memory or time than src/base/regex.h allows.
 *
 * Which AMQP 0-9-1 operation needs which permission on which resource, from RabbitMQ's
 * access-control guide ("Authorisation: How Permissions Work", rabbitmq.com/docs/access-control)
 * and checked one by one against RabbitMQ 3.10.8, including the order of the checks (the first
 * refused one is reported). "Primary" is the resource the method names first.
 *
 *   operation                      checks, in order
 *   exchange.declare (passive=0)   configure exchange
 *   exchange.declare (passive=1)   none
 *   exchange.declare with an AE    configure exchange, read exchange, write AE
 *   exchange.delete                configure exchange
 *   queue.declare (passive=0)      configure queue (also a server-named amq.gen-... queue)
 *   queue.declare (passive=1)      none
 *   queue.declare with a DLX       configure queue, read queue, write DLX exchange
 *   queue.delete                   configure queue
 *   queue.bind, queue.unbind       write queue, read exchange
 *   exchange.bind, exchange.unbind write destination exchange, read source exchange
 *   basic.publish                  write exchange ("" is checked as 'amq.default')
 *   basic.get, basic.consume       read queue
 *   queue.purge                    read queue
 *
 * Topic permissions, on exchanges of type topic only, after the checks above passed:
 * basic.publish checks the routing key against "write"; queue.bind/unbind and
 * exchange.bind/unbind check the binding key against "read" (of the source exchange).
 * With no topic permission for (user, vhost, exchange) everything is allowed.
 *
 * Refusals, as RabbitMQ words them (the dispatcher prefixes the code's name):
 *   403 ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'
 *   403 ACCESS_REFUSED - access to topic 'a.b' in exchange 'amq.topic' in vhost '/' refused
 *                        for user 'u'
 *   530 NOT_ALLOWED - access to vhost 'v' refused for user 'u'       (connection.open)
 *   530 NOT_ALLOWED - vhost v not found                              (connection.open)
 *   403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details
 *                        see the broker logfile.                    (wrong password, no user,
 *                                                                      empty password)
 *
 * The database is owned by the event loop like the rest of the broker state; nothing here
 * locks. Names given as C strings (configuration, definitions) are copied; names from the
 * wire are struct wire_bytes and only borrowed for the call. */
#ifndef WARREN_SRC_SECURITY_AUTH_H
#define WARREN_SRC_SECURITY_AUTH_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"
#include "src/base/hmap.h"

#define AUTH_SALT_BYTES     4
#define AUTH_HASH_MAX_BYTES (AUTH_SALT_BYTES + 64) /* salt + a SHA-512 digest */
#define AUTH_ERR_MAX        512                    /* enough for every error text here */

enum auth_hash_algorithm {
    AUTH_HASH_SHA256, /* rabbit_password_hashing_sha256: RabbitMQ's default since 3.6 */
    AUTH_HASH_SHA512, /* rabbit_password_hashing_sha512 */
    AUTH_HASH_MD5,    /* rabbit_password_hashing_md5: before 3.6 */
};

/* Permissions, to be combined: a check with several bits needs all of them. */
enum auth_access {
    AUTH_CONFIGURE = 1u << 0,
    AUTH_WRITE = 1u << 1,
    AUTH_READ = 1u << 2,
};

enum auth_resource {
    AUTH_RESOURCE_QUEUE,
    AUTH_RESOURCE_EXCHANGE,
};

/* The operations of the table above. */
enum auth_op {
    AUTH_OP_EXCHANGE_DECLARE,    /* primary: exchange */
    AUTH_OP_EXCHANGE_DECLARE_AE, /* primary: exchange, secondary: its alternate exchange */
    AUTH_OP_EXCHANGE_DELETE,     /* primary: exchange */
    AUTH_OP_QUEUE_DECLARE,       /* primary: queue */
    AUTH_OP_QUEUE_DECLARE_DLX,   /* primary: queue, secondary: its dead-letter exchange */
    AUTH_OP_QUEUE_DELETE,        /* primary: queue */
    AUTH_OP_QUEUE_BIND,          /* primary: queue, secondary: exchange */
    AUTH_OP_QUEUE_UNBIND,        /* primary: queue, secondary: exchange */
    AUTH_OP_EXCHANGE_BIND,       /* primary: destination, secondary: source */
    AUTH_OP_EXCHANGE_UNBIND,     /* primary: destination, secondary: source */
    AUTH_OP_BASIC_PUBLISH,       /* primary: exchange */
    AUTH_OP_BASIC_GET,           /* primary: queue */
    AUTH_OP_BASIC_CONSUME,       /* primary: queue */
    AUTH_OP_QUEUE_PURGE,         /* primary: queue */
    AUTH_OP_COUNT
};

/* A compiled permission pattern. */
struct auth_pattern {
    char *source; /* as given; "" is kept and means "^$" */
    uint8_t kind; /* private: match-all, empty-only or a compiled expression */
    regex_t re;
};

struct auth_user {
    char *name;
    enum auth_hash_algorithm algorithm;
    uint8_t hash[AUTH_HASH_MAX_BYTES]; /* salt + digest, as decoded from password_hash */
    size_t hash_len;                   /* 0: no password, the user cannot log in with one */
    char **tags;                       /* "administrator", "monitoring", ... or free-form */
    size_t tags_len;
    int64_t max_connections; /* user limits; -1 when not set */
    int64_t max_channels;
    struct hmap permissions;       /* vhost name -> struct auth_permission */
    struct hmap topic_permissions; /* vhost name -> struct auth_topic_vhost */
};

struct auth_vhost {
    char *name;
    char *description;
    char **tags;
    size_t tags_len;
    char *default_queue_type; /* kept for export; Warren has classic queues only; may be NULL */
    /* The vhost-limits runtime parameter: connection.open refuses a connection past
     * max_connections, a client's queue.declare a new queue past max_queues. -1 when not
     * set. */
    int64_t max_connections;
    int64_t max_queues;
};

struct auth_permission {
    char *vhost; /* the key in the user's map */
    struct auth_pattern configure, write, read;
};

struct auth_topic_permission {
    char *exchange; /* the key in struct auth_topic_vhost's map */
    /* {username} and {vhost} are expanded when the permission is set: they are fixed for
     * (user, vhost). A pattern that still names {client_id} is expanded per check. */
    struct auth_pattern write, read;
    bool write_has_client_id, read_has_client_id;
};

struct auth_topic_vhost {
    char *vhost;
    struct hmap exchanges; /* exchange name -> struct auth_topic_permission */
};

/* A global runtime parameter (RabbitMQ's cluster_name, ...): a name and a JSON value. It
 * rides in this database because the database is what is stored and exported as the
 * definitions document, where global parameters have their section. */
struct auth_global_parameter {
    char *name;
    char *value_json; /* the value as JSON text, kept as it was given */
};

struct auth_db {
    struct hmap users;             /* name -> struct auth_user */
    struct hmap vhosts;            /* name -> struct auth_vhost */
    struct hmap global_parameters; /* name -> struct auth_global_parameter */
    /* Bumped by every change. A connection may keep what auth_permission_find returned
     * while this is unchanged, the way RabbitMQ caches checks per channel. */
    uint64_t generation;
};

struct auth_db *auth_db_new(void);
void auth_db_free(struct auth_db *db);

/* ---- Passwords ------------------------------------------------------------------------- */

/* "rabbit_password_hashing_sha256" and so on; NULL for an unknown name (RabbitMQ stores an
 * unknown name and then fails every login: Warren refuses it up front). */
const char *auth_hash_algorithm_name(enum auth_hash_algorithm algorithm);
int auth_hash_algorithm_parse(const char *name, enum auth_hash_algorithm *out);

/* The length of a stored hash: the salt and the algorithm's digest (36 for SHA-256). */
size_t auth_hash_length(enum auth_hash_algorithm algorithm);

/* salt + H(salt + password) into out (AUTH_HASH_MAX_BYTES); returns its length. */
size_t auth_hash_password(enum auth_hash_algorithm algorithm, const uint8_t salt[AUTH_SALT_BYTES],
                          struct wire_bytes password, uint8_t *out);

/* Base64 as RabbitMQ writes password_hash (padded, no line breaks). encode writes a
 * NUL-terminated string into out, which holds at least 4 * ((len + 2) / 3) + 1 bytes.
 * decode accepts only canonical padded base64 ("" decodes to nothing); returns the length,
 * or -1 if text is not base64 or the result would exceed out_size. */
void auth_base64_encode(const uint8_t *in, size_t len, char *out);
int auth_base64_decode(const char *text, uint8_t *out, size_t out_size);

/* True when password is the user's. The work does not depend on whether the user exists,
 * and the digests are compared with CRYPTO_memcmp, so the answer's timing tells nothing.
 * An empty password is always refused (RabbitMQ: "attempted to log in with a blank
 * password"), and so is a user without a password hash. */
bool auth_check_password(const struct auth_db *db, struct wire_bytes user,
                         struct wire_bytes password);

/* ---- Users ----------------------------------------------------------------------------- */

struct auth_user *auth_user_find(const struct auth_db *db, struct wire_bytes name);

/* Creates the user, or updates it when it exists (its permissions stay). password NULL
 * leaves the user without one; otherwise a fresh random salt is drawn (RAND_bytes) and the
 * password hashed with SHA-256. tags may be NULL when tags_len is 0. 0, or -1 with err
 * (when the random generator fails). */
int auth_user_put(struct auth_db *db, const char *name, const char *password,
                  const char *const *tags, size_t tags_len, char *err, size_t err_size);
/* Sets a user's password hash from its definitions form (base64, "" for none), creating the
 * user without tags if it does not exist. 0, or -1 with err (not base64, or a length that is
 * not salt + digest of the algorithm). */
int auth_user_put_hash(struct auth_db *db, const char *name, const char *password_hash_b64,
                       enum auth_hash_algorithm algorithm, char *err, size_t err_size);
int auth_user_set_password(struct auth_db *db, const char *name, struct wire_bytes password,
                           char *err, size_t err_size);
int auth_user_set_tags(struct auth_db *db, const char *name, const char *const *tags,
                       size_t tags_len);
bool auth_user_has_tag(const struct auth_user *u, const char *tag);
/* RabbitMQ's validated user-id: a message published by user may carry the user-id claimed if
 * that is user itself, or if user is tagged impersonator (RabbitMQ's tag for trusted relays
 * such as a shovel or federation link). */
bool auth_may_claim_user_id(const struct auth_db *db, const char *user, struct wire_bytes claimed);
/* max-connections and max-channels (-1: no limit); -1 if there is no such user. */
int auth_user_set_limits(struct auth_db *db, const char *name, int64_t max_connections,
                         int64_t max_channels);
/* Deletes the user with its permissions and topic permissions; -1 if there is none. */
int auth_user_delete(struct auth_db *db, const char *name);

/* ---- Virtual hosts --------------------------------------------------------------------- */

struct auth_vhost *auth_vhost_find(const struct auth_db *db, struct wire_bytes name);
/* Creates the vhost or updates its metadata. description and default_queue_type may be
 * NULL. Returns the vhost. */
struct auth_vhost *auth_vhost_put(struct auth_db *db, const char *name, const char *description,
                                  const char *const *tags, size_t tags_len,
                                  const char *default_queue_type);
/* The vhost's limits, max-connections and max-queues (-1: no limit); -1 if there is no such
 * vhost. */
int auth_vhost_set_limits(struct auth_db *db, const char *name, int64_t max_connections,
                          int64_t max_queues);
/* Deletes the vhost and every permission and topic permission in it; -1 if there is none.
 * (Its exchanges and queues are the broker's to delete.) */
int auth_vhost_delete(struct auth_db *db, const char *name);

/* Users and vhosts in name order (byte order), for listings and export. The array is the
 * caller's to free(); the entries belong to the database. */
const struct auth_user **auth_users_sorted(const struct auth_db *db, size_t *len);
const struct auth_vhost **auth_vhosts_sorted(const struct auth_db *db, size_t *len);

/* ---- Permissions ----------------------------------------------------------------------- */

/* Compiles a pattern as the permission checks use it. 0, or -1 with err naming the pattern
 * and what is wrong with it. Free with auth_pattern_free. */
int auth_pattern_compile(struct auth_pattern *p, const char *source, char *err, size_t err_size);
void auth_pattern_free(struct auth_pattern *p);
/* Unanchored search for the pattern in name (which may hold any bytes). */
bool auth_pattern_matches(const struct auth_pattern *p, struct wire_bytes name);

/* Sets (replaces) the permissions of user in vhost. Both must exist. 0, or -1 with err:
 * "user 'u' does not exist", "virtual host 'v' does not exist", or an invalid pattern. */
int auth_permission_set(struct auth_db *db, const char *user, const char *vhost,
                        const char *configure, const char *write, const char *read, char *err,
                        size_t err_size);
int auth_permission_clear(struct auth_db *db, const char *user, const char *vhost);
/* The permissions of user in vhost; NULL if the user has none there (so may not connect). */
const struct auth_permission *auth_permission_find(const struct auth_db *db, struct wire_bytes user,
                                                   struct wire_bytes vhost);

/* connection.open: the user has an entry in the vhost (RabbitMQ's check_vhost_access). */
bool auth_vhost_access(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost);

/* True when the user holds every permission in access on the named resource of vhost. An
 * exchange named "" is checked as "amq.default". */
bool auth_permitted(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                    unsigned access, enum auth_resource kind, struct wire_bytes name);
/* The same against permissions already looked up (NULL refuses everything). */
bool auth_permission_allows(const struct auth_permission *perm, unsigned access,
                            enum auth_resource kind, struct wire_bytes name);

/* Runs the checks of op in RabbitMQ's order (table above). On refusal returns false and
 * writes the text for 403 ACCESS_REFUSED (without the "ACCESS_REFUSED - " prefix) into
 * refusal. secondary is ignored by operations that have none. */
bool auth_check_op(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                   enum auth_op op, struct wire_bytes primary, struct wire_bytes secondary,
                   char *refusal, size_t refusal_size);

/* ---- Topic permissions ----------------------------------------------------------------- */

/* Sets (replaces) the topic permissions of user on exchange in vhost; both must exist.
 * 0, or -1 with err as auth_permission_set. */
int auth_topic_permission_set(struct auth_db *db, const char *user, const char *vhost,
                              const char *exchange, const char *write, const char *read, char *err,
                              size_t err_size);
/* Clears one exchange's topic permissions, or all of the user's in vhost when exchange is
 * NULL. */
int auth_topic_permission_clear(struct auth_db *db, const char *user, const char *vhost,
                                const char *exchange);
const struct auth_topic_permission *auth_topic_permission_find(const struct auth_db *db,
                                                               struct wire_bytes user,
                                                               struct wire_bytes vhost,
                                                               struct wire_bytes exchange);
/* access is AUTH_WRITE (publish: routing key) or AUTH_READ (bind/unbind: binding key).
 * client_id expands {client_id} (an MQTT notion; AMQP 0-9-1 passes NULL and the placeholder
 * stays as written). True when there is no topic permission for the exchange. */
bool auth_topic_permitted(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                          struct wire_bytes exchange, unsigned access,
                          struct wire_bytes routing_key, const char *client_id);

/* Replaces each {username}, {vhost} and {client_id} in pattern (a placeholder whose value is
 * NULL stays). One pass, left to right: a value is never expanded again. Returns a string
 * the caller frees. */
char *auth_expand_topic_pattern(const char *pattern, const char *username, const char *vhost,
                                const char *client_id);

/* ---- Global parameters ---------------------------------------------------------------- */

/* Sets (replaces) the global parameter name to value_json (JSON text; not checked here).
 * Returns 1 when it was created, 0 when replaced. */
int auth_global_parameter_set(struct auth_db *db, const char *name, const char *value_json);
/* -1 if there is none. */
int auth_global_parameter_clear(struct auth_db *db, const char *name);
const struct auth_global_parameter *auth_global_parameter_find(const struct auth_db *db,
                                                               struct wire_bytes name);
/* In name order; the array is the caller's to free(), the entries the database's. */
const struct auth_global_parameter **auth_global_parameters_sorted(const struct auth_db *db,
                                                                   size_t *len);

/* ---- Refusal texts --------------------------------------------------------------------- */

/* "access to queue 'q' in vhost '/' refused for user 'u'" (403). */
void auth_refusal_text(char *out, size_t size, enum auth_resource kind, struct wire_bytes name,
                       struct wire_bytes vhost, struct wire_bytes user);
/* "access to topic 'k' in exchange 'x' in vhost '/' refused for user 'u'" (403). */
void auth_topic_refusal_text(char *out, size_t size, struct wire_bytes routing_key,
                             struct wire_bytes exchange, struct wire_bytes vhost,
                             struct wire_bytes user);
/* "access to vhost 'v' refused for user 'u'" (530 NOT_ALLOWED, connection.open). */
void auth_vhost_refusal_text(char *out, size_t size, struct wire_bytes vhost,
                             struct wire_bytes user);

/* ---- Defaults -------------------------------------------------------------------------- */

/* On an empty database (no user, no vhost) creates what RabbitMQ creates on a blank node:
 * the vhost ("Default virtual host"), the user with the password, tagged administrator, and
 * ".*" ".*" ".*" for it on the vhost. Returns 1 when it created them, 0 when the database
 * was not empty, -1 with err on failure. */
int auth_ensure_default(struct auth_db *db, const char *user, const char *password,
                        const char *vhost, char *err, size_t err_size);

#endif
