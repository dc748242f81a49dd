/* An asynchronous client of etcd 3.4's v3 JSON gateway (HTTP/1.1 POST of JSON to /v3/...),
 * driven by one libev loop through libcurl's multi-socket API. It owns every gateway gotcha
 * (docs: CLUSTERING.md §1.4), so that its callers see plain values:
 *
 *   - keys and values are bytes: the client base64-encodes and decodes them;
 *   - int64 fields travel as JSON strings: sent as strings, parsed with strtoll;
 *   - omitted defaults are filled in: a txn without "succeeded" failed, a watch event without
 *     "type" is a PUT, a keepalive answered without "TTL" means the lease is gone
 *     (ETCD_E_LEASE_NOT_FOUND), never success;
 *   - every request carries `Grpc-Metadata-Hasleader: true`, so a member cut off from its
 *     quorum answers "etcdserver: no leader" at once instead of hanging (and closes watch
 *     streams a few seconds after losing its leader);
 *   - every unary call has a timeout (etcd_options.request_timeout_ms, default 1000 ms);
 *     campaign is the exception (it waits for the election) and only has a connect timeout;
 *   - errors come in-band ({"error": ...} or {"code": .., "message": ..}, HTTP 200 or not) and
 *     as HTTP statuses: all are reported as errors carrying etcd's message;
 *   - endpoints: a comma list. A request that could not reach a member, or that a member
 *     refused because it has no leader, is sent again to the next endpoint (each endpoint at
 *     most once, within the request's timeout), and later requests start from that endpoint.
 *     A request that timed out is not repeated (a write's outcome is then unknown) but moves
 *     the client to the next endpoint as well;
 *   - a watch stream that closes or errors is opened again on the next endpoint from the last
 *     revision seen + 1, so no event is lost or repeated; only a compacted start revision
 *     ends a watch (ETCD_E_COMPACTED: range again, then watch again);
 *   - with a user name, the client authenticates (/v3/auth/authenticate) before its first
 *     request and again when etcd says the token is invalid; https:// endpoints use TLS with
 *     the CA, certificate and key of the options.
 *
 * Threading: a client belongs to the thread running its loop; nothing here locks. Callbacks
 * run on that loop, never from inside a call that starts a request, and never inside libcurl
 * (so they may start or cancel requests, and free the client, see etcd_free).
 *
 * Ownership: every pointer given to a request is copied before the call returns. The response
 * passed to a callback, and everything it points to, lives until the callback returns. */
#ifndef WARREN_SRC_CLUSTER_ETCD_H
#define WARREN_SRC_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct etcd_client;
struct etcd_req;

enum etcd_error {
    ETCD_OK = 0,
    ETCD_E_TRANSPORT = -1,         /* no answer: connect failure, reset, closed stream */
    ETCD_E_TIMEOUT = -2,           /* no answer within the timeout: a write may have happened */
    ETCD_E_SERVER = -3,            /* etcd answered with an error (message, codes below) */
    ETCD_E_NO_LEADER = -4,         /* "etcdserver: no leader" on every endpoint tried */
    ETCD_E_LEASE_NOT_FOUND = -5,   /* the lease does not exist (expired or revoked) */
    ETCD_E_PARSE = -6,             /* an answer that is not what etcd sends */
    ETCD_E_COMPACTED = -7,         /* watch: start revision compacted (see compact_revision) */
    ETCD_E_AUTH = -8,              /* authentication failed */
    ETCD_E_NO_ELECTION_LEADER = -9 /* election leader: nobody holds the election */
};

/* A short name for an error ("no leader", "timeout", ...). */
const char *etcd_strerror(int err);

struct etcd_options {
    const char *endpoints;       /* "http://127.0.0.1:2379,http://10.0.0.2:2379" */
    unsigned request_timeout_ms; /* per unary call; 0 = 1000 */
    const char *username;        /* NULL = no etcd authentication */
    const char *password;
    const char *tls_ca; /* PEM files for https:// endpoints; NULL = system defaults / none */
    const char *tls_cert;
    const char *tls_key;
    const char *source_address; /* local IP the connections to etcd leave from; NULL = any */
};

/* Key-value pair as etcd stores it. key and value are NUL-terminated copies (the NUL is not
 * counted), so text keys print with %s; binary keys are fine too. */
struct etcd_kv {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease; /* 0 = none */
};

enum etcd_event_type { ETCD_EVENT_PUT = 0, ETCD_EVENT_DELETE = 1 };

struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv; /* for a DELETE: key and mod_revision (the deletion's revision) */
    bool has_prev_kv;
    struct etcd_kv prev_kv; /* when the watch asked for it */
};

/* The leader key an election campaign returns (needed to resign or proclaim). */
struct etcd_leader_key {
    uint8_t *name;
    size_t name_len;
    uint8_t *key;
    size_t key_len;
    int64_t rev; /* create_revision of key: the epoch / fencing token */
    int64_t lease;
};

/* Everything a callback may be told; which fields are set depends on the call (see each). */
struct etcd_response {
    int err;             /* ETCD_OK or an enum etcd_error */
    int http_status;     /* 0 when no HTTP answer came */
    int grpc_code;       /* gRPC status code from etcd's error, 0 if none */
    char *message;       /* etcd's (or libcurl's) error text; NULL on success */
    int64_t revision;    /* header.revision: the store revision the answer reflects */
    int64_t raft_term;   /* header.raft_term */
    struct etcd_kv *kvs; /* range; txn (every range of the branch taken, in order);
                          * deleterange with prev_kv; election leader and observe (one) */
    size_t n_kvs;
    int64_t count;                 /* range: keys in the range */
    bool more;                     /* range: the limit cut it */
    int64_t deleted;               /* deleterange */
    bool succeeded;                /* txn: the compare held (absent in etcd's answer = false) */
    int64_t lease_id;              /* lease grant, keepalive, timetolive */
    int64_t ttl;                   /* seconds left (grant: as granted, possibly raised by etcd) */
    int64_t granted_ttl;           /* timetolive */
    struct etcd_leader_key leader; /* campaign */
    struct etcd_event *events;     /* watch */
    size_t n_events;
    bool created;             /* watch: the stream is established */
    bool canceled;            /* watch: etcd ended it */
    int64_t watch_id;         /* watch */
    int64_t compact_revision; /* watch: set with ETCD_E_COMPACTED */
    char *token;              /* auth */
};

typedef void etcd_cb(const struct etcd_response *r, void *arg);

/* A client on loop. NULL (and a reason in err) if the options are unusable (no endpoint, an
 * endpoint that is not http:// or https://). */
struct etcd_client *etcd_new(struct ev_loop *loop, const struct etcd_options *opts, char *err,
                             size_t err_size);
/* Ends every request and watch without calling their callbacks. May be called from a
 * callback. NULL is fine. */
void etcd_free(struct etcd_client *c);
/* The endpoint requests currently start from. */
const char *etcd_current_endpoint(const struct etcd_client *c);

/* Cancels a request or watch: its callback is not called again. The handle is invalid
 * afterwards, and so it is once a unary request's callback has returned: keep a handle only
 * until its callback runs. NULL is fine. */
void etcd_cancel(struct etcd_req *r);

/* Every call returns the request's handle (never NULL: failures are reported through the
 * callback, which runs later on the loop). cb may be NULL for fire-and-forget calls. */

/* ---- KV -------------------------------------------------------------------------------- */

/* Range flags. */
#define ETCD_RANGE_SERIALIZABLE 0x1 /* answer from the member's local copy (may be stale) */
#define ETCD_RANGE_KEYS_ONLY    0x2
#define ETCD_RANGE_COUNT_ONLY   0x4

/* Keys in [key, range_end); range_end NULL = the key alone. Reads are linearizable unless
 * ETCD_RANGE_SERIALIZABLE. Result: kvs, count, more, revision. */
struct etcd_req *etcd_range(struct etcd_client *c, const void *key, size_t key_len,
                            const void *range_end, size_t range_end_len, int64_t limit, int flags,
                            etcd_cb *cb, void *arg);
/* range_end for every key starting with prefix (etcd's prefix rule: last byte + 1, trailing
 * 0xff dropped; "\0" for the whole keyspace). Writes at most prefix_len bytes to out and
 * returns their number. */
size_t etcd_prefix_end(const void *prefix, size_t prefix_len, uint8_t *out);

/* lease 0 = none. Result: revision. */
struct etcd_req *etcd_put(struct etcd_client *c, const void *key, size_t key_len, const void *value,
                          size_t value_len, int64_t lease, etcd_cb *cb, void *arg);
/* Result: deleted, and with prev_kv the deleted pairs in kvs. */
struct etcd_req *etcd_delete(struct etcd_client *c, const void *key, size_t key_len,
                             const void *range_end, size_t range_end_len, bool prev_kv, etcd_cb *cb,
                             void *arg);

/* A transaction: if every compare holds, the success operations run, else the failure ones.
 * At most 128 operations in all (etcd's limit). */
enum etcd_compare_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE, /* create_revision (0 = the key does not exist) */
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_compare_result { ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS };

struct etcd_compare {
    const void *key;
    size_t key_len;
    enum etcd_compare_target target;
    enum etcd_compare_result result;
    int64_t number;    /* version, revision or lease */
    const void *value; /* ETCD_CMP_VALUE */
    size_t value_len;
};

enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };

struct etcd_op {
    enum etcd_op_type type;
    const void *key;
    size_t key_len;
    const void *value; /* put */
    size_t value_len;
    const void *range_end; /* range, delete; NULL = the key alone */
    size_t range_end_len;
    int64_t lease; /* put */
};

struct etcd_txn {
    const struct etcd_compare *compare;
    size_t n_compare;
    const struct etcd_op *success;
    size_t n_success;
    const struct etcd_op *failure;
    size_t n_failure;
};

/* Result: succeeded, revision, and in kvs what the branch's ranges read. */
struct etcd_req *etcd_txn(struct etcd_client *c, const struct etcd_txn *t, etcd_cb *cb, void *arg);

/* ---- Leases ---------------------------------------------------------------------------- */

/* id 0 = etcd picks one; ttl_s below etcd's minimum is raised (result ttl says by how much).
 * Result: lease_id, ttl. A chosen id that exists already fails with ETCD_E_SERVER
 * ("etcdserver: lease already exists"). */
struct etcd_req *etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t id, etcd_cb *cb,
                                  void *arg);
/* One renewal (one POST, not a stream). Result: ttl; ETCD_E_LEASE_NOT_FOUND if it is gone. */
struct etcd_req *etcd_lease_keepalive(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg);
/* ETCD_E_LEASE_NOT_FOUND if it was gone already. Its keys are deleted with it. */
struct etcd_req *etcd_lease_revoke(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg);
/* Result: ttl (-1 = gone, reported as ETCD_OK), granted_ttl. */
struct etcd_req *etcd_lease_timetolive(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg);

/* ---- Watch ------------------------------------------------------------------------------ */

#define ETCD_WATCH_PREV_KV 0x1

/* Streams every change of [key, range_end) from start_revision (0 = from now). The callback
 * runs once with created = true, then once per batch of events (events, n_events, revision).
 * When the stream breaks (member killed, "no leader", HTTP error) the client opens it again
 * on the next endpoint from the last revision seen + 1, without calling back. It calls back
 * with an error only when the watch is over: ETCD_E_COMPACTED (compact_revision = the oldest
 * revision still available) or a request etcd refuses (ETCD_E_SERVER). Cancel it with
 * etcd_cancel (also after an error, to free it). */
struct etcd_req *etcd_watch(struct etcd_client *c, const void *key, size_t key_len,
                            const void *range_end, size_t range_end_len, int64_t start_revision,
                            int flags, etcd_cb *cb, void *arg);

/* ---- Election (etcd's server-side recipe, /v3/election) ------------------------------------ */

/* Creates name/<lease hex> bound to lease (or finds it: campaigning again with the same
 * lease is idempotent) and answers once it is the oldest key under name/: result leader
 * (leader.rev = the epoch). No timeout: it waits as long as the election does. If the call
 * is cut off (cancel, member gone) etcd withdraws the candidate key itself. */
struct etcd_req *etcd_campaign(struct etcd_client *c, const void *name, size_t name_len,
                               int64_t lease, const void *value, size_t value_len, etcd_cb *cb,
                               void *arg);
/* The current leader's key: one kv; ETCD_E_NO_ELECTION_LEADER if there is none. */
struct etcd_req *etcd_election_leader(struct etcd_client *c, const void *name, size_t name_len,
                                      etcd_cb *cb, void *arg);
/* Streams the leader's kv each time it changes (never the absence of a leader). Unlike a
 * watch, a broken stream is not reopened: the callback gets the error and the stream is over
 * (cancel it to free it). */
struct etcd_req *etcd_election_observe(struct etcd_client *c, const void *name, size_t name_len,
                                       etcd_cb *cb, void *arg);
/* Gives up leadership (deletes the leader key if it is still the one of key->rev). */
struct etcd_req *etcd_election_resign(struct etcd_client *c, const struct etcd_leader_key *key,
                                      etcd_cb *cb, void *arg);
/* A new value for the leader key, by its leader only. */
struct etcd_req *etcd_election_proclaim(struct etcd_client *c, const struct etcd_leader_key *key,
                                        const void *value, size_t value_len, etcd_cb *cb,
                                        void *arg);

#endif
