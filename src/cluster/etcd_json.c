/* The JSON of etcd's gateway, read defensively: every field is checked for its type, int64s
 * arrive as strings (strtoll, whole string, in range), bytes as base64, and a field etcd left
 * out means its default (proto3 omits zero values: a failed txn has no "succeeded", a PUT
 * event no "type"). */
#include "src/cluster/etcd_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"

static const char *const call_paths[ETCD_CALL_COUNT] = {
    [ETCD_CALL_RANGE] = "/v3/kv/range",
    [ETCD_CALL_PUT] = "/v3/kv/put",
    [ETCD_CALL_DELETE] = "/v3/kv/deleterange",
    [ETCD_CALL_TXN] = "/v3/kv/txn",
    [ETCD_CALL_LEASE_GRANT] = "/v3/lease/grant",
    [ETCD_CALL_LEASE_KEEPALIVE] = "/v3/lease/keepalive",
    [ETCD_CALL_LEASE_REVOKE] = "/v3/lease/revoke",
    [ETCD_CALL_LEASE_TTL] = "/v3/lease/timetolive",
    [ETCD_CALL_WATCH] = "/v3/watch",
    [ETCD_CALL_CAMPAIGN] = "/v3/election/campaign",
    [ETCD_CALL_LEADER] = "/v3/election/leader",
    [ETCD_CALL_OBSERVE] = "/v3/election/observe",
    [ETCD_CALL_RESIGN] = "/v3/election/resign",
    [ETCD_CALL_PROCLAIM] = "/v3/election/proclaim",
    [ETCD_CALL_AUTH] = "/v3/auth/authenticate",
};

const char *etcd_call_path(enum etcd_call call)
{
    return call >= 0 && call < ETCD_CALL_COUNT ? call_paths[call] : NULL;
}

const char *etcd_strerror(int err)
{
    switch (err) {
    case ETCD_OK:
        return "ok";
    case ETCD_E_TRANSPORT:
        return "no answer";
    case ETCD_E_TIMEOUT:
        return "timeout";
    case ETCD_E_SERVER:
        return "etcd error";
    case ETCD_E_NO_LEADER:
        return "no leader";
    case ETCD_E_LEASE_NOT_FOUND:
        return "lease not found";
    case ETCD_E_PARSE:
        return "unexpected answer";
    case ETCD_E_COMPACTED:
        return "revision compacted";
    case ETCD_E_AUTH:
        return "authentication failed";
    case ETCD_E_NO_ELECTION_LEADER:
        return "no election leader";
    default:
        return "unknown error";
    }
}

/* ---- base64 ------------------------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t etcd_b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void etcd_b64_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = '=';
    }
    *out = '\0';
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

bool etcd_b64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    uint8_t *buf;
    uint32_t acc = 0;
    size_t len = 0, i, bits = 0;

    while (n > 0 && in[n - 1] == '=' && n % 4 != 1)
        n--; /* at most two '=' can be dropped this way before n % 4 == 2 or 3 stops it */
    if (n % 4 == 1)
        return false;
    buf = xmalloc(n / 4 * 3 + 3);
    for (i = 0; i < n; i++) {
        int v = b64_value(in[i]);

        if (v < 0) {
            free(buf);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return true;
}

/* ---- Fields ------------------------------------------------------------------------------ */

/* An int64 field: a JSON string of decimal digits (how the gateway sends them) or a JSON
 * integer. Absent (or null) = 0. false if present with another type or out of range. */
static bool get_i64(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);
    const char *s;
    char *end;
    long long n;

    *out = 0;
    if (v == NULL || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    if (json_string_length(v) != strlen(s) || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)n;
    return true;
}

static bool get_bool(const json_t *obj, const char *name, bool *out)
{
    const json_t *v = json_object_get(obj, name);

    *out = false;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

/* A bytes field: base64 in a string. Absent = empty (still allocated, NUL-terminated). */
static bool get_bytes(const json_t *obj, const char *name, uint8_t **out, size_t *len)
{
    const json_t *v = json_object_get(obj, name);

    *out = NULL;
    *len = 0;
    if (v == NULL || json_is_null(v)) {
        *out = xcalloc(1, 1);
        return true;
    }
    if (!json_is_string(v))
        return false;
    return etcd_b64_decode(json_string_value(v), json_string_length(v), out, len);
}

/* An object field; absent is fine (NULL), another type is not. */
static bool get_object(const json_t *obj, const char *name, json_t **out)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_object(v))
        return false;
    *out = v;
    return true;
}

static bool get_array(const json_t *obj, const char *name, json_t **out)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_array(v))
        return false;
    *out = v;
    return true;
}

void etcd_kv_clear(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static bool parse_kv(const json_t *o, struct etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o))
        return false;
    if (!get_bytes(o, "key", &kv->key, &kv->key_len) ||
        !get_bytes(o, "value", &kv->value, &kv->value_len) ||
        !get_i64(o, "create_revision", &kv->create_revision) ||
        !get_i64(o, "mod_revision", &kv->mod_revision) || !get_i64(o, "version", &kv->version) ||
        !get_i64(o, "lease", &kv->lease)) {
        etcd_kv_clear(kv);
        return false;
    }
    return true;
}

/* Appends the kvs of an array to r->kvs. */
static bool parse_kvs(const json_t *arr, struct etcd_response *r)
{
    size_t n = json_array_size(arr), i;

    if (n == 0)
        return true;
    r->kvs = xrealloc(r->kvs, (r->n_kvs + n) * sizeof(*r->kvs));
    for (i = 0; i < n; i++) {
        if (!parse_kv(json_array_get(arr, i), &r->kvs[r->n_kvs]))
            return false;
        r->n_kvs++;
    }
    return true;
}

static bool parse_header(const json_t *o, struct etcd_response *r)
{
    json_t *h;

    if (!get_object(o, "header", &h))
        return false;
    if (h == NULL)
        return true;
    return get_i64(h, "revision", &r->revision) && get_i64(h, "raft_term", &r->raft_term);
}

/* ---- Errors ------------------------------------------------------------------------------ */

int etcd_classify_error(const char *message)
{
    if (message == NULL)
        return ETCD_E_SERVER;
    /* Before "no leader": the election's own "election: no leader" is not about raft. */
    if (strstr(message, "election: no leader") != NULL)
        return ETCD_E_NO_ELECTION_LEADER;
    if (strstr(message, "no leader") != NULL)
        return ETCD_E_NO_LEADER;
    if (strstr(message, "requested lease not found") != NULL)
        return ETCD_E_LEASE_NOT_FOUND;
    if (strstr(message, "compacted") != NULL)
        return ETCD_E_COMPACTED;
    if (strstr(message, "invalid auth token") != NULL ||
        strstr(message, "authentication failed") != NULL ||
        strstr(message, "user name is empty") != NULL)
        return ETCD_E_AUTH;
    return ETCD_E_SERVER;
}

static void set_error(struct etcd_response *r, int err, int grpc_code, const char *message)
{
    free(r->message);
    r->err = err;
    r->grpc_code = grpc_code;
    r->message = xstrdup(message);
}

/* The error shapes of the gateway: unary {"error": "text", "message": "text", "code": n},
 * streams {"error": {"grpc_code": n, "http_code": n, "message": "text", ...}}, and the
 * newer {"code": n, "message": "text"}. Returns true if root is one of them (r then holds
 * the error). */
static bool parse_error(const json_t *root, struct etcd_response *r)
{
    const json_t *e = json_object_get(root, "error");
    const json_t *m = json_object_get(root, "message");
    const json_t *code = json_object_get(root, "code");
    const char *text = NULL;
    int grpc = 0;

    if (e != NULL && json_is_object(e)) {
        const json_t *em = json_object_get(e, "message");
        const json_t *ec = json_object_get(e, "grpc_code");

        text = json_is_string(em) ? json_string_value(em) : NULL;
        grpc = json_is_integer(ec) ? (int)json_integer_value(ec) : 0;
    } else if (e != NULL && json_is_string(e)) {
        text = json_string_value(e);
        grpc = json_is_integer(code) ? (int)json_integer_value(code) : 0;
    } else if (e == NULL && json_is_integer(code) && json_integer_value(code) != 0) {
        text = json_is_string(m) ? json_string_value(m) : NULL;
        grpc = (int)json_integer_value(code);
    } else if (e == NULL) {
        return false;
    }
    if (text == NULL || *text == '\0')
        text = json_is_string(m) && *json_string_value(m) ? json_string_value(m)
                                                          : "etcd error without a message";
    set_error(r, etcd_classify_error(text), grpc, text);
    return true;
}

/* ---- Answers ------------------------------------------------------------------------------ */

static bool parse_txn(const json_t *o, struct etcd_response *r)
{
    json_t *responses;
    size_t i;

    if (!get_bool(o, "succeeded", &r->succeeded) || !get_array(o, "responses", &responses))
        return false;
    for (i = 0; responses != NULL && i < json_array_size(responses); i++) {
        const json_t *one = json_array_get(responses, i);
        json_t *range, *kvs;

        if (!json_is_object(one) || !get_object(one, "response_range", &range))
            return false;
        if (range != NULL && (!get_array(range, "kvs", &kvs) || (kvs && !parse_kvs(kvs, r))))
            return false;
    }
    return true;
}

static bool parse_events(const json_t *arr, struct etcd_response *r)
{
    size_t n = json_array_size(arr), i;

    if (n == 0)
        return true;
    r->events = xcalloc(n, sizeof(*r->events));
    for (i = 0; i < n; i++) {
        const json_t *ev = json_array_get(arr, i);
        struct etcd_event *out = &r->events[i];
        const json_t *type, *kv, *prev;

        r->n_events = i + 1; /* so that clear frees what this one got */
        if (!json_is_object(ev))
            return false;
        type = json_object_get(ev, "type");
        if (type == NULL || json_is_null(type) ||
            (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0))
            out->type = ETCD_EVENT_PUT;
        else if (json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0)
            out->type = ETCD_EVENT_DELETE;
        else
            return false;
        kv = json_object_get(ev, "kv");
        if (kv == NULL || !parse_kv(kv, &out->kv))
            return false;
        prev = json_object_get(ev, "prev_kv");
        if (prev != NULL && !json_is_null(prev)) {
            if (!parse_kv(prev, &out->prev_kv))
                return false;
            out->has_prev_kv = true;
        }
    }
    return true;
}

static bool parse_watch_result(const json_t *o, struct etcd_response *r)
{
    json_t *events;
    const json_t *reason;

    if (!parse_header(o, r) || !get_bool(o, "created", &r->created) ||
        !get_bool(o, "canceled", &r->canceled) || !get_i64(o, "watch_id", &r->watch_id) ||
        !get_i64(o, "compact_revision", &r->compact_revision) || !get_array(o, "events", &events) ||
        (events != NULL && !parse_events(events, r)))
        return false;
    if (r->canceled) {
        reason = json_object_get(o, "cancel_reason");
        if (r->compact_revision > 0)
            set_error(r, ETCD_E_COMPACTED, 0,
                      "etcdserver: mvcc: required revision has been "
                      "compacted");
        else
            set_error(r, ETCD_E_SERVER, 0,
                      json_is_string(reason) && *json_string_value(reason)
                          ? json_string_value(reason)
                          : "watch canceled by etcd");
    }
    return true;
}

static bool parse_leader_key(const json_t *o, struct etcd_leader_key *k)
{
    if (!json_is_object(o))
        return false;
    return get_bytes(o, "name", &k->name, &k->name_len) &&
           get_bytes(o, "key", &k->key, &k->key_len) && get_i64(o, "rev", &k->rev) &&
           get_i64(o, "lease", &k->lease);
}

/* The body of a successful answer of call. */
static bool parse_result(enum etcd_call call, const json_t *o, struct etcd_response *r)
{
    json_t *arr, *kv;
    const json_t *token;

    if (!parse_header(o, r))
        return false;
    switch (call) {
    case ETCD_CALL_RANGE:
        return get_array(o, "kvs", &arr) && (arr == NULL || parse_kvs(arr, r)) &&
               get_i64(o, "count", &r->count) && get_bool(o, "more", &r->more);
    case ETCD_CALL_DELETE:
        return get_array(o, "prev_kvs", &arr) && (arr == NULL || parse_kvs(arr, r)) &&
               get_i64(o, "deleted", &r->deleted);
    case ETCD_CALL_TXN:
        return parse_txn(o, r);
    case ETCD_CALL_LEASE_GRANT:
        if (!get_i64(o, "ID", &r->lease_id) || !get_i64(o, "TTL", &r->ttl))
            return false;
        if (json_object_get(o, "error") != NULL) /* grant's own error field */
            return false;
        return true;
    case ETCD_CALL_LEASE_KEEPALIVE:
        if (!get_i64(o, "ID", &r->lease_id) || !get_i64(o, "TTL", &r->ttl))
            return false;
        /* A dead lease is renewed "successfully" with TTL omitted (0). */
        if (r->ttl <= 0)
            set_error(r, ETCD_E_LEASE_NOT_FOUND, 5, "etcdserver: requested lease not found");
        return true;
    case ETCD_CALL_LEASE_TTL:
        return get_i64(o, "ID", &r->lease_id) && get_i64(o, "TTL", &r->ttl) &&
               get_i64(o, "grantedTTL", &r->granted_ttl);
    case ETCD_CALL_WATCH:
        return parse_watch_result(o, r);
    case ETCD_CALL_CAMPAIGN:
        if (!get_object(o, "leader", &kv) || kv == NULL)
            return false;
        return parse_leader_key(kv, &r->leader);
    case ETCD_CALL_LEADER:
    case ETCD_CALL_OBSERVE:
        if (!get_object(o, "kv", &kv))
            return false;
        if (kv == NULL) /* 3.4 answers an error instead, but an empty kv means the same */
            return set_error(r, ETCD_E_NO_ELECTION_LEADER, 2, "election: no leader"), true;
        r->kvs = xcalloc(1, sizeof(*r->kvs));
        if (!parse_kv(kv, &r->kvs[0]))
            return false;
        r->n_kvs = 1;
        return true;
    case ETCD_CALL_AUTH:
        token = json_object_get(o, "token");
        if (!json_is_string(token) || json_string_length(token) == 0 ||
            strlen(json_string_value(token)) != json_string_length(token))
            return false;
        r->token = xstrdup(json_string_value(token));
        return true;
    case ETCD_CALL_PUT:
    case ETCD_CALL_LEASE_REVOKE:
    case ETCD_CALL_RESIGN:
    case ETCD_CALL_PROCLAIM:
        return true;
    case ETCD_CALL_COUNT:
        break;
    }
    return false;
}

static void set_parse_error(struct etcd_response *r, const char *what)
{
    char text[256];

    snprintf(text, sizeof(text), "etcd answer not understood: %.200s", what);
    set_error(r, ETCD_E_PARSE, 0, text);
}

int etcd_parse_answer(enum etcd_call call, long http_status, const char *text, size_t len,
                      struct etcd_response *r)
{
    json_error_t jerr;
    json_t *root, *body;
    char status[64];

    r->http_status = (int)http_status;
    if (call < 0 || call >= ETCD_CALL_COUNT) {
        set_parse_error(r, "unknown call");
        return r->err;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        if (http_status != 200) {
            snprintf(status, sizeof(status), "HTTP status %ld from etcd", http_status);
            set_error(r, http_status == 503 ? ETCD_E_NO_LEADER : ETCD_E_SERVER, 0, status);
        } else {
            set_parse_error(r, root == NULL ? jerr.text : "not a JSON object");
        }
        json_decref(root);
        return r->err;
    }
    if (parse_error(root, r))
        goto out;
    if (http_status != 200) {
        snprintf(status, sizeof(status), "HTTP status %ld from etcd", http_status);
        set_error(r, ETCD_E_SERVER, 0, status);
        goto out;
    }
    body = root;
    /* keepalive is a streaming call in gRPC: the gateway wraps its answer in "result". */
    if (call == ETCD_CALL_LEASE_KEEPALIVE || call == ETCD_CALL_WATCH || call == ETCD_CALL_OBSERVE) {
        body = json_object_get(root, "result");
        if (!json_is_object(body)) {
            set_parse_error(r, "no result object");
            goto out;
        }
        if (parse_error(body, r))
            goto out;
    }
    if (!parse_result(call, body, r)) {
        /* Nothing half-parsed survives: an error carries no data. */
        int http = r->http_status;

        etcd_response_clear(r);
        r->http_status = http;
        set_parse_error(r, etcd_call_path(call));
    }
out:
    json_decref(root);
    return r->err;
}

int etcd_parse_stream_line(enum etcd_call call, const char *line, size_t len,
                           struct etcd_response *r)
{
    return etcd_parse_answer(call, 200, line, len, r);
}

void etcd_response_clear(struct etcd_response *r)
{
    size_t i;

    free(r->message);
    for (i = 0; i < r->n_kvs; i++)
        etcd_kv_clear(&r->kvs[i]);
    free(r->kvs);
    for (i = 0; i < r->n_events; i++) {
        etcd_kv_clear(&r->events[i].kv);
        etcd_kv_clear(&r->events[i].prev_kv);
    }
    free(r->events);
    free(r->leader.name);
    free(r->leader.key);
    free(r->token);
    memset(r, 0, sizeof(*r));
}

/* ---- Lines --------------------------------------------------------------------------------- */

bool etcd_lines_append(struct etcd_lines *l, const void *data, size_t n)
{
    if (l->start > 0 && l->start == l->len) {
        l->start = l->len = 0;
    } else if (l->start > 0 && l->start >= l->cap / 2) {
        memmove(l->buf, l->buf + l->start, l->len - l->start);
        l->len -= l->start;
        l->start = 0;
    }
    if (n > ETCD_ANSWER_MAX || l->len - l->start > ETCD_ANSWER_MAX - n)
        return false;
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;

        while (cap < l->len + n)
            cap *= 2;
        l->buf = xrealloc(l->buf, cap);
        l->cap = cap;
    }
    memcpy(l->buf + l->len, data, n);
    l->len += n;
    return true;
}

bool etcd_lines_next(struct etcd_lines *l, const char **line, size_t *len)
{
    while (l->start < l->len) {
        const char *p = l->buf + l->start;
        const char *nl = memchr(p, '\n', l->len - l->start);
        size_t n;

        if (nl == NULL)
            return false;
        n = (size_t)(nl - p);
        l->start += n + 1;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        *line = p;
        *len = n;
        return true;
    }
    return false;
}

void etcd_lines_free(struct etcd_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}
