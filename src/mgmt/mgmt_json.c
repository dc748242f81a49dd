/* JSON renderings of broker objects, in RabbitMQ's management API shapes. */
#include "build_config.h"

#include "src/mgmt/mgmt_json.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "exchanges/exchange_type.h"
#include "exchanges/registry.h"
#include "src/base/util.h"
#include "src/base/version.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/stream.h"
#include "src/broker/vhost.h"
#include "src/definitions/definitions.h"
#include "src/mgmt/mgmt_stats.h"

/* The RabbitMQ release whose management API Warren answers like; tools read it to decide
 * which fields and endpoints to expect. */
#define MGMT_RABBITMQ_VERSION WARREN_RABBITMQ_VERSION

/* ---- Bytes and strings ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 if there is none. */
static size_t utf8_sequence(const uint8_t *p, size_t left)
{
    uint32_t cp;
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

json_t *mgmt_json_bytes(struct wire_bytes b)
{
    json_t *j = json_stringn((const char *)b.ptr, b.len);
    uint8_t *fixed;
    size_t len = 0;

    if (j != NULL || b.len == 0)
        return j != NULL ? j : json_string("");
    /* Not UTF-8: each byte that does not start a valid sequence becomes U+FFFD. */
    fixed = xmalloc(b.len * 3);
    for (size_t i = 0; i < b.len;) {
        size_t n = utf8_sequence(b.ptr + i, b.len - i);
        if (n == 0) {
            memcpy(fixed + len, "\xEF\xBF\xBD", 3);
            len += 3;
            i++;
        } else {
            memcpy(fixed + len, b.ptr + i, n);
            len += n;
            i += n;
        }
    }
    j = json_stringn((const char *)fixed, len);
    free(fixed);
    return j;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mgmt_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[n++] = b64_alphabet[(v >> 18) & 63];
        out[n++] = b64_alphabet[(v >> 12) & 63];
        out[n++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[n++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[n] = '\0';
}

static int b64_value(char ch)
{
    const char *p = ch != '\0' ? strchr(b64_alphabet, ch) : NULL;
    return p != NULL ? (int)(p - b64_alphabet) : -1;
}

int mgmt_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0;

    /* Padding only at the end, and only to a multiple of four characters. */
    while (pad < 2 && len > 0 && text[len - 1] == '=') {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0)
        return -1;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(text[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = n;
    return 0;
}

/* ---- Tables -> JSON -------------------------------------------------------------------- */

static json_t *json_from_array(struct wire_array a);

static json_t *json_from_field(const struct wire_field *f)
{
    switch (f->type) {
    case 't':
        return json_boolean(f->v.boolean);
    case 'b':
    case 's':
    case 'I':
    case 'l':
        return json_integer(f->v.i);
    case 'B':
    case 'u':
    case 'i':
    case 'L':
    case 'T':
        /* JSON numbers of jansson are signed 64-bit: the top half of 'L' becomes a real. */
        return f->v.u <= INT64_MAX ? json_integer((json_int_t)f->v.u) : json_real((double)f->v.u);
    case 'f':
        return json_real(f->v.f32);
    case 'd':
        return json_real(f->v.f64);
    case 'D':
        return json_real(f->v.decimal.value / pow(10.0, f->v.decimal.scale));
    case 'S':
    case 'x':
        return mgmt_json_bytes(f->v.bytes);
    case 'F':
        return mgmt_json_from_table(f->v.table);
    case 'A':
        return json_from_array(f->v.array);
    default:
        return json_null();
    }
}

static json_t *json_from_array(struct wire_array a)
{
    json_t *arr = json_array();
    struct wire_array_iter it;
    struct wire_field f;

    wire_array_iter_init(&it, a);
    while (wire_array_next(&it, &f))
        json_array_append_new(arr, json_from_field(&f));
    return arr;
}

json_t *mgmt_json_from_table(struct wire_table t)
{
    json_t *obj = json_object();
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;

    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &name, &f)) {
        json_t *key = mgmt_json_bytes(name);
        json_object_setn_new(obj, json_string_value(key), json_string_length(key),
                             json_from_field(&f));
        json_decref(key);
    }
    return obj;
}

/* ---- JSON -> tables -------------------------------------------------------------------- */

struct encode {
    char *err;
    size_t err_size;
};

static int put_value(struct wire_writer *w, const json_t *v, int depth, struct encode *e);

static int put_entries(struct wire_writer *w, const json_t *obj, int depth, struct encode *e)
{
    const char *name;
    json_t *v;

    if (depth > WIRE_TABLE_MAX_DEPTH) {
        snprintf(e->err, e->err_size, "tables nested deeper than %d levels", WIRE_TABLE_MAX_DEPTH);
        return -1;
    }
    json_object_foreach((json_t *)obj, name, v)
    {
        size_t len = strlen(name);
        if (len > 255) {
            snprintf(e->err, e->err_size, "table key longer than 255 bytes: '%.40s...'", name);
            return -1;
        }
        wire_put_shortstr(w, (struct wire_bytes){.ptr = (const uint8_t *)name, .len = len});
        if (put_value(w, v, depth, e) != 0)
            return -1;
    }
    return 0;
}

static int put_value(struct wire_writer *w, const json_t *v, int depth, struct encode *e)
{
    struct wire_field f = {0};
    size_t begin;

    switch (json_typeof(v)) {
    case JSON_STRING:
        f.type = 'S';
        f.v.bytes = (struct wire_bytes){.ptr = (const uint8_t *)json_string_value(v),
                                        .len = json_string_length(v)};
        break;
    case JSON_INTEGER:
        f.type = 'l';
        f.v.i = json_integer_value(v);
        break;
    case JSON_REAL:
        f.type = 'd';
        f.v.f64 = json_real_value(v);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        f.type = 't';
        f.v.boolean = json_is_true(v);
        break;
    case JSON_NULL:
        f.type = 'V';
        break;
    case JSON_OBJECT:
        wire_put_u8(w, 'F');
        begin = wire_table_begin(w);
        if (put_entries(w, v, depth + 1, e) != 0)
            return -1;
        wire_table_end(w, begin);
        return 0;
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        if (depth + 1 > WIRE_TABLE_MAX_DEPTH) {
            snprintf(e->err, e->err_size, "tables nested deeper than %d levels",
                     WIRE_TABLE_MAX_DEPTH);
            return -1;
        }
        wire_put_u8(w, 'A');
        begin = wire_table_begin(w);
        json_array_foreach(v, i, item)
        {
            if (put_value(w, item, depth + 1, e) != 0)
                return -1;
        }
        wire_table_end(w, begin);
        return 0;
    }
    }
    wire_put_field(w, &f);
    return 0;
}

int mgmt_json_to_table(const json_t *obj, uint8_t **out, size_t *len, char *err, size_t err_size)
{
    struct encode e = {.err = err, .err_size = err_size};
    size_t cap = 256;

    *out = NULL;
    *len = 0;
    if (obj == NULL) {
        *out = xmalloc(1);
        return 0;
    }
    if (!json_is_object(obj)) {
        snprintf(err, err_size, "expected a JSON object");
        return -1;
    }
    for (;;) {
        struct wire_writer w;
        *out = xmalloc(cap);
        w = wire_writer_init(*out, cap);
        if (put_entries(&w, obj, 0, &e) != 0) {
            free(*out);
            *out = NULL;
            return -1;
        }
        if (!wire_writer_overflowed(&w)) {
            *len = wire_writer_used(&w);
            return 0;
        }
        cap = wire_writer_used(&w);
        free(*out);
    }
}

/* ---- Properties ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint16_t flag;
    size_t offset; /* of the struct wire_bytes in struct wire_props */
} string_props[] = {
    {"content_type", WIRE_PROP_CONTENT_TYPE, offsetof(struct wire_props, content_type)},
    {"content_encoding", WIRE_PROP_CONTENT_ENCODING, offsetof(struct wire_props, content_encoding)},
    {"correlation_id", WIRE_PROP_CORRELATION_ID, offsetof(struct wire_props, correlation_id)},
    {"reply_to", WIRE_PROP_REPLY_TO, offsetof(struct wire_props, reply_to)},
    {"expiration", WIRE_PROP_EXPIRATION, offsetof(struct wire_props, expiration)},
    {"message_id", WIRE_PROP_MESSAGE_ID, offsetof(struct wire_props, message_id)},
    {"type", WIRE_PROP_TYPE, offsetof(struct wire_props, type)},
    {"user_id", WIRE_PROP_USER_ID, offsetof(struct wire_props, user_id)},
    {"app_id", WIRE_PROP_APP_ID, offsetof(struct wire_props, app_id)},
    {"cluster_id", WIRE_PROP_CLUSTER_ID, offsetof(struct wire_props, cluster_id)},
};

static struct wire_bytes *prop_bytes(struct wire_props *p, size_t i)
{
    return (struct wire_bytes *)(void *)((char *)p + string_props[i].offset);
}

json_t *mgmt_json_from_props(const struct wire_props *p)
{
    json_t *obj;

    if (p->flags == 0)
        return json_array();
    obj = json_object();
    for (size_t i = 0; i < ARRAY_LEN(string_props); i++) {
        if (p->flags & string_props[i].flag)
            json_object_set_new(obj, string_props[i].name,
                                mgmt_json_bytes(*prop_bytes((struct wire_props *)p, i)));
    }
    if (p->flags & WIRE_PROP_HEADERS)
        json_object_set_new(obj, "headers", mgmt_json_from_table(p->headers));
    if (p->flags & WIRE_PROP_DELIVERY_MODE)
        json_object_set_new(obj, "delivery_mode", json_integer(p->delivery_mode));
    if (p->flags & WIRE_PROP_PRIORITY)
        json_object_set_new(obj, "priority", json_integer(p->priority));
    if (p->flags & WIRE_PROP_TIMESTAMP)
        json_object_set_new(obj, "timestamp", json_integer((json_int_t)p->timestamp));
    return obj;
}

static int prop_int(const json_t *obj, const char *name, json_int_t min, json_int_t max,
                    json_int_t *out, bool *present, char *err, size_t err_size)
{
    const json_t *v = json_object_get(obj, name);

    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, err_size, "property %s must be an integer from %lld to %lld", name,
                 (long long)min, (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int mgmt_json_to_props(const json_t *obj, struct wire_props *out, uint8_t **headers, char *err,
                       size_t err_size)
{
    json_int_t n;
    bool present;
    const json_t *h;

    memset(out, 0, sizeof *out);
    *headers = NULL;
    if (obj == NULL || (json_is_array(obj) && json_array_size(obj) == 0))
        return 0;
    if (!json_is_object(obj)) {
        snprintf(err, err_size, "properties must be a JSON object");
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(string_props); i++) {
        const json_t *v = json_object_get(obj, string_props[i].name);
        if (v == NULL)
            continue;
        if (!json_is_string(v) || json_string_length(v) > 255) {
            snprintf(err, err_size, "property %s must be a string of at most 255 bytes",
                     string_props[i].name);
            return -1;
        }
        *prop_bytes(out, i) = (struct wire_bytes){.ptr = (const uint8_t *)json_string_value(v),
                                                  .len = json_string_length(v)};
        out->flags |= string_props[i].flag;
    }
    if (prop_int(obj, "delivery_mode", 0, 255, &n, &present, err, err_size) != 0)
        return -1;
    if (present) {
        out->delivery_mode = (uint8_t)n;
        out->flags |= WIRE_PROP_DELIVERY_MODE;
    }
    if (prop_int(obj, "priority", 0, 255, &n, &present, err, err_size) != 0)
        return -1;
    if (present) {
        out->priority = (uint8_t)n;
        out->flags |= WIRE_PROP_PRIORITY;
    }
    if (prop_int(obj, "timestamp", 0, INT64_MAX, &n, &present, err, err_size) != 0)
        return -1;
    if (present) {
        out->timestamp = (uint64_t)n;
        out->flags |= WIRE_PROP_TIMESTAMP;
    }
    if ((h = json_object_get(obj, "headers")) != NULL) {
        size_t len;
        char why[200];
        if (mgmt_json_to_table(h, headers, &len, why, sizeof why) != 0) {
            snprintf(err, err_size, "property headers: %s", why);
            return -1;
        }
        out->headers.raw = (struct wire_bytes){.ptr = *headers, .len = len};
        out->flags |= WIRE_PROP_HEADERS;
    }
    return 0;
}

/* ---- Names ----------------------------------------------------------------------------- */

/* host:port from "192.0.2.10:53122" or "[::1]:53122" (the logger's form), without brackets. */
static void split_address(const char *addr, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(addr, ':');
    const char *start = addr;
    size_t len;

    *port = 0;
    if (colon == NULL) {
        snprintf(host, host_size, "%s", addr);
        return;
    }
    *port = atoi(colon + 1);
    len = (size_t)(colon - addr);
    if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
        start++;
        len -= 2;
    }
    snprintf(host, host_size, "%.*s", (int)len, start);
}

void mgmt_conn_peer(const struct conn *c, char *host, size_t host_size, int *port)
{
    split_address(c->log.peer, host, host_size, port);
}

/* The broker's end of the connection. */
static void conn_local(const struct conn *c, char *host, size_t host_size, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    *port = 0;
    snprintf(host, host_size, "?");
    if (c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)host_size);
        *port = ntohs(in6->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)host_size);
        *port = ntohs(in->sin_port);
    }
}

void mgmt_conn_name(const struct conn *c, char *out, size_t out_size)
{
    char peer[64], local[64];
    int peer_port, local_port;

    mgmt_conn_peer(c, peer, sizeof peer, &peer_port);
    conn_local(c, local, sizeof local, &local_port);
    snprintf(out, out_size, "%s:%d -> %s:%d", peer, peer_port, local, local_port);
}

void mgmt_binding_props_key(struct wire_bytes routing_key, struct wire_bytes arguments, char *out,
                            size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;

    if (out_size == 0)
        return;
    for (size_t i = 0; i < routing_key.len && n + 4 < out_size; i++) {
        uint8_t ch = routing_key.ptr[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    /* RabbitMQ writes "~" for the empty key, and "key~hash" when there are arguments. */
    if ((routing_key.len == 0 || arguments.len > 0) && n + 1 < out_size)
        out[n++] = '~';
    if (arguments.len > 0) {
        /* FNV-1a over the encoded arguments, as 11 characters of URL-safe base64. */
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < arguments.len; i++) {
            h ^= arguments.ptr[i];
            h *= 1099511628211ull;
        }
        for (int i = 0; i < 11 && n + 1 < out_size; i++) {
            out[n++] = b64[h & 63];
            h >>= 6;
        }
    }
    out[n] = '\0';
}

/* ---- Objects --------------------------------------------------------------------------- */

static json_t *json_name(struct wire_bytes b)
{
    return mgmt_json_bytes(b);
}

static void add_rate(json_t *obj, const char *name, double rate)
{
    char key[96];
    json_t *details = json_object();

    /* Rates as RabbitMQ rounds them: one decimal. */
    json_object_set_new(details, "rate", json_real(round(rate * 10.0) / 10.0));
    snprintf(key, sizeof key, "%s_details", name);
    json_object_set_new(obj, key, details);
}

static void add_stat(json_t *obj, const char *name, uint64_t count, double rate)
{
    json_object_set_new(obj, name, json_integer((json_int_t)count));
    add_rate(obj, name, rate);
}

json_t *mgmt_json_exchange(const struct mgmt_ctx *ctx, const struct exchange *x)
{
    json_t *o = json_object();

    (void)ctx;
    json_object_set_new(o, "name", json_name(x->name));
    json_object_set_new(o, "vhost", json_name(x->vhost->name));
    json_object_set_new(o, "type", json_string(x->type->name));
    json_object_set_new(o, "durable", json_boolean(x->durable));
    json_object_set_new(o, "auto_delete", json_boolean(x->auto_delete));
    json_object_set_new(o, "internal", json_boolean(x->internal));
    json_object_set_new(o, "arguments",
                        mgmt_json_from_table((struct wire_table){.raw = x->arguments}));
    return o;
}

static json_t *conn_details(const struct conn *c)
{
    json_t *o = json_object();
    char name[200], host[64];
    int port;

    mgmt_conn_name(c, name, sizeof name);
    mgmt_conn_peer(c, host, sizeof host, &port);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "peer_host", json_string(host));
    json_object_set_new(o, "peer_port", json_integer(port));
    return o;
}

static void channel_name(const struct channel *ch, char *out, size_t out_size)
{
    char conn_name[200];

    mgmt_conn_name(ch->conn, conn_name, sizeof conn_name);
    snprintf(out, out_size, "%s (%u)", conn_name, ch->id);
}

json_t *mgmt_json_consumer(const struct mgmt_ctx *ctx, const struct consumer *c)
{
    const struct queue *q = c->q;
    json_t *o = json_object(), *chd = json_object(), *qd = json_object(), *args = json_object();
    char name[220], conn_name[200], host[64];
    int port;
    bool active = !q->args.single_active || (q->consumer_count > 0 && q->consumers[0] == c);

    mgmt_conn_name(c->ch->conn, conn_name, sizeof conn_name);
    channel_name(c->ch, name, sizeof name);
    mgmt_conn_peer(c->ch->conn, host, sizeof host, &port);
    json_object_set_new(chd, "connection_name", json_string(conn_name));
    json_object_set_new(chd, "name", json_string(name));
    json_object_set_new(chd, "node", json_string(ctx->node));
    json_object_set_new(chd, "number", json_integer(c->ch->id));
    json_object_set_new(chd, "peer_host", json_string(host));
    json_object_set_new(chd, "peer_port", json_integer(port));
    json_object_set_new(chd, "user", json_string(c->ch->conn->log.user));
    json_object_set_new(qd, "name", json_name(q->name));
    json_object_set_new(qd, "vhost", json_name(q->vhost->name));
    /* Only x-priority is kept of a consumer's arguments. */
    if (c->priority != 0)
        json_object_set_new(args, "x-priority", json_integer(c->priority));
    json_object_set_new(o, "arguments", args);
    json_object_set_new(o, "ack_required", json_boolean(!c->no_ack));
    json_object_set_new(o, "active", json_boolean(active));
    json_object_set_new(o, "activity_status",
                        json_string(active                  ? "up"
                                    : q->args.single_active ? "waiting"
                                                            : "up"));
    json_object_set_new(o, "channel_details", chd);
    json_object_set_new(o, "consumer_tag", json_name(c->tag));
    json_object_set_new(o, "exclusive", json_boolean(c->exclusive));
    json_object_set_new(o, "prefetch_count", json_integer(c->prefetch));
    json_object_set_new(o, "queue", qd);
    if (c->stream != NULL) {
        /* Warren's own: the offset the consumer reads next, and how many offsets the log
         * has beyond it (what it has yet to be delivered, before any filter). */
        struct stream_info si;
        uint64_t offset = stream_consumer_offset(c);
        stream_info(q, &si);
        json_object_set_new(o, "stream_offset", json_integer((json_int_t)offset));
        json_object_set_new(
            o, "stream_offset_lag",
            json_integer((json_int_t)(si.next_offset > offset ? si.next_offset - offset : 0)));
    }
    return o;
}

json_t *mgmt_json_queue(const struct mgmt_ctx *ctx, const struct queue *q, bool detail)
{
    json_t *o = json_object(), *ms = json_object();
    uint64_t values[MGMT_VALUES];
    const struct consumer *exclusive = NULL;

    mgmt_queue_values(q, values);
    json_object_set_new(o, "name", json_name(q->name));
    json_object_set_new(o, "vhost", json_name(q->vhost->name));
    json_object_set_new(o, "durable", json_boolean(q->durable));
    json_object_set_new(o, "auto_delete", json_boolean(q->auto_delete));
    json_object_set_new(o, "exclusive", json_boolean(q->exclusive));
    json_object_set_new(o, "arguments",
                        mgmt_json_from_table((struct wire_table){.raw = q->arguments}));
    json_object_set_new(o, "node", json_string(ctx->node));
    json_object_set_new(o, "state", json_string("running"));
    json_object_set_new(o, "type", json_string(q->stream != NULL ? "stream" : "classic"));
    json_object_set_new(o, "consumers", json_integer((json_int_t)q->consumer_count));
    if (q->stream != NULL) {
        /* Warren's own fields: where the log starts and ends, what it takes on disk. */
        struct stream_info si;
        stream_info(q, &si);
        json_object_set_new(o, "stream_first_offset", json_integer((json_int_t)si.first_offset));
        json_object_set_new(o, "stream_last_offset",
                            si.next_offset > si.first_offset
                                ? json_integer((json_int_t)(si.next_offset - 1))
                                : json_null());
        json_object_set_new(o, "stream_messages", json_integer((json_int_t)si.messages));
        json_object_set_new(o, "stream_disk_bytes", json_integer((json_int_t)si.disk_bytes));
        json_object_set_new(o, "stream_segments", json_integer((json_int_t)si.segments));
        /* As RabbitMQ shows a stream: its replicas (here, this node alone), those online,
         * and the readers on each. */
        json_object_set_new(o, "members", json_pack("[s]", ctx->node));
        json_object_set_new(o, "online", json_pack("[s]", ctx->node));
        json_object_set_new(o, "readers",
                            json_pack("{s:I}", ctx->node, (json_int_t)q->consumer_count));
    }
    add_stat(o, "messages", values[MGMT_READY] + values[MGMT_UNACKED],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_READY) +
                 mgmt_stats_queue_rate(ctx->stats, q, MGMT_UNACKED));
    add_stat(o, "messages_ready", values[MGMT_READY],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_READY));
    add_stat(o, "messages_unacknowledged", values[MGMT_UNACKED],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_UNACKED));
    /* Bodies' bytes, as RabbitMQ counts them (src/broker/message.h: message_bytes()). How
     * many of them are persistent is not counted: message_bytes_persistent is left out. */
    json_object_set_new(o, "message_bytes",
                        json_integer((json_int_t)(q->ready_bytes + q->spill.bytes +
                                                  (q->deleted ? 0 : q->unacked_bytes))));
    json_object_set_new(o, "message_bytes_ready",
                        json_integer((json_int_t)(q->ready_bytes + q->spill.bytes)));
    json_object_set_new(o, "message_bytes_unacknowledged",
                        json_integer((json_int_t)(q->deleted ? 0 : q->unacked_bytes)));
    /* As RabbitMQ's classic queues: where the ready messages are, memory or disk. */
    json_object_set_new(o, "messages_ram", json_integer((json_int_t)q->len));
    json_object_set_new(o, "messages_paged_out", json_integer((json_int_t)q->spill.count));
    json_object_set_new(o, "message_bytes_ram", json_integer((json_int_t)q->ready_bytes));
    json_object_set_new(o, "message_bytes_paged_out", json_integer((json_int_t)q->spill.bytes));
    add_stat(ms, "publish", values[MGMT_PUBLISHED],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_PUBLISHED));
    add_stat(ms, "deliver_get", values[MGMT_DELIVERED],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_DELIVERED));
    add_stat(ms, "redeliver", values[MGMT_REDELIVERED],
             mgmt_stats_queue_rate(ctx->stats, q, MGMT_REDELIVERED));
    add_stat(ms, "ack", values[MGMT_ACKED], mgmt_stats_queue_rate(ctx->stats, q, MGMT_ACKED));
    json_object_set_new(o, "message_stats", ms);
    for (size_t i = 0; i < q->consumer_count; i++) {
        if (q->consumers[i]->exclusive)
            exclusive = q->consumers[i];
    }
    json_object_set_new(o, "exclusive_consumer_tag",
                        exclusive != NULL ? json_name(exclusive->tag) : json_null());
    json_object_set_new(o, "single_active_consumer_tag",
                        q->args.single_active && q->consumer_count > 0
                            ? json_name(q->consumers[0]->tag)
                            : json_null());
    {
        const char *policy = policy_applied(q->vhost, q->name, true, false);
        const char *op = policy_applied(q->vhost, q->name, true, true);
        const struct policy *p = policy[0] ? policy_find(q->vhost, policy, false) : NULL;
        json_object_set_new(o, "policy", policy[0] ? json_string(policy) : json_null());
        json_object_set_new(o, "operator_policy", op[0] ? json_string(op) : json_null());
        json_object_set_new(o, "effective_policy_definition",
                            p != NULL
                                ? mgmt_json_from_table((struct wire_table){.raw = p->definition})
                                : json_object());
    }
    if (q->exclusive && q->owner != NULL)
        json_object_set_new(o, "owner_pid_details", conn_details(q->owner));
    if (detail) {
        json_t *consumers = json_array();
        for (size_t i = 0; i < q->consumer_count; i++)
            json_array_append_new(consumers, mgmt_json_consumer(ctx, q->consumers[i]));
        json_object_set_new(o, "consumer_details", consumers);
        json_object_set_new(o, "incoming", json_array());
        json_object_set_new(o, "deliveries", json_array());
    }
    return o;
}

json_t *mgmt_json_binding_of(struct wire_bytes vhost, struct wire_bytes source,
                             struct wire_bytes destination, const char *destination_type,
                             struct wire_bytes routing_key, struct wire_bytes arguments)
{
    json_t *o = json_object();
    char key[1024];

    mgmt_binding_props_key(routing_key, arguments, key, sizeof key);
    json_object_set_new(o, "source", json_name(source));
    json_object_set_new(o, "vhost", json_name(vhost));
    json_object_set_new(o, "destination", json_name(destination));
    json_object_set_new(o, "destination_type", json_string(destination_type));
    json_object_set_new(o, "routing_key", json_name(routing_key));
    json_object_set_new(o, "arguments",
                        mgmt_json_from_table((struct wire_table){.raw = arguments}));
    json_object_set_new(o, "properties_key", json_string(key));
    return o;
}

json_t *mgmt_json_binding(const struct xbinding *xb)
{
    const void *dest = xb->b.destination;
    bool to_queue = destination_kind(dest) == DEST_QUEUE;
    struct wire_bytes dest_name =
        to_queue ? ((const struct queue *)dest)->name : ((const struct exchange *)dest)->name;

    return mgmt_json_binding_of(xb->source->vhost->name, xb->source->name, dest_name,
                                to_queue ? "queue" : "exchange", xb->b.routing_key,
                                xb->b.arguments.raw);
}

json_t *mgmt_json_default_binding(const struct queue *q)
{
    return mgmt_json_binding_of(q->vhost->name, WIRE_BYTES_C(""), q->name, "queue", q->name,
                                WIRE_BYTES_C(""));
}

static const char *conn_state_name(enum conn_state s)
{
    switch (s) {
    case CONN_AWAIT_HEADER:
    case CONN_AWAIT_START_OK:
    case CONN_AWAIT_SECURE_OK:
        return "starting";
    case CONN_AWAIT_TUNE_OK:
        return "tuning";
    case CONN_AWAIT_OPEN:
        return "opening";
    case CONN_OPEN:
        return "running";
    case CONN_CLOSING:
    case CONN_CLOSED:
        return "closing";
    }
    return "unknown";
}

json_t *mgmt_json_connection(const struct mgmt_ctx *ctx, const struct conn *c)
{
    json_t *o = json_object(), *props, *name_v;
    char name[200], host[64], local[64];
    int port, local_port;

    mgmt_conn_name(c, name, sizeof name);
    mgmt_conn_peer(c, host, sizeof host, &port);
    conn_local(c, local, sizeof local, &local_port);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "node", json_string(ctx->node));
    json_object_set_new(o, "type", json_string("network"));
    json_object_set_new(o, "protocol", json_string("AMQP 0-9-1"));
    json_object_set_new(o, "state", json_string(conn_state_name(c->state)));
    json_object_set_new(o, "user", json_string(c->log.user));
    json_object_set_new(o, "vhost", c->vhost != NULL ? json_name(c->vhost->name) : json_null());
    json_object_set_new(o, "channels", json_integer(c->channel_count));
    json_object_set_new(o, "peer_host", json_string(host));
    json_object_set_new(o, "peer_port", json_integer(port));
    json_object_set_new(o, "host", json_string(local));
    json_object_set_new(o, "port", json_integer(local_port));
    json_object_set_new(o, "ssl", json_boolean(c->tls != NULL));
    json_object_set_new(o, "frame_max", json_integer(c->frame_max));
    json_object_set_new(o, "channel_max", json_integer(c->channel_max));
    json_object_set_new(o, "timeout", json_integer(c->heartbeat_s));
    json_object_set_new(o, "send_pend", json_integer((json_int_t)outbuf_pending(&c->out)));
    /* Every property the client sent, as RabbitMQ shows them, and the name it gave the
     * connection (connection_name) as user_provided_name, for tools that look for it. */
    props = definitions_table_to_json((struct wire_table){.raw = c->client_properties});
    if (props == NULL)
        props = json_object(); /* a string that is not UTF-8: JSON cannot carry it */
    name_v = json_object_get(props, "connection_name");
    if (json_is_string(name_v))
        json_object_set_new(o, "user_provided_name", json_string(json_string_value(name_v)));
    json_object_set_new(o, "client_properties", props);
    return o;
}

json_t *mgmt_json_channel(const struct mgmt_ctx *ctx, const struct channel *ch)
{
    json_t *o = json_object(), *ms = json_object();
    char name[220];
    uint32_t uncommitted_msgs = 0, uncommitted_acks = 0;

    for (size_t i = 0; i < ch->tx_len; i++) {
        if (ch->tx_ops[i].method_id == WIRE_BASIC_PUBLISH)
            uncommitted_msgs++;
        else
            uncommitted_acks++;
    }
    channel_name(ch, name, sizeof name);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "node", json_string(ctx->node));
    json_object_set_new(o, "number", json_integer(ch->id));
    json_object_set_new(o, "connection_details", conn_details(ch->conn));
    json_object_set_new(o, "user", json_string(ch->conn->log.user));
    json_object_set_new(o, "vhost",
                        ch->conn->vhost != NULL ? json_name(ch->conn->vhost->name) : json_null());
    json_object_set_new(o, "state",
                        json_string(ch->state == CHANNEL_OPEN
                                        ? (ch->flow_active ? "running" : "flow")
                                        : "closing"));
    json_object_set_new(o, "consumer_count", json_integer((json_int_t)ch->consumers.len));
    json_object_set_new(o, "messages_unacknowledged", json_integer(ch->unacked_live));
    json_object_set_new(o, "messages_uncommitted", json_integer(uncommitted_msgs));
    json_object_set_new(o, "acks_uncommitted", json_integer(uncommitted_acks));
    json_object_set_new(o, "prefetch_count", json_integer(ch->prefetch_consumer));
    json_object_set_new(o, "global_prefetch_count", json_integer(ch->prefetch_channel));
    json_object_set_new(o, "confirm", json_boolean(ch->confirm_mode));
    json_object_set_new(o, "transactional", json_boolean(ch->tx_mode));
    /* The publishes it confirmed; RabbitMQ shows a channel's other rates too, which Warren
     * counts per queue only. */
    add_stat(ms, "confirm", ch->confirmed, mgmt_stats_channel_confirm_rate(ctx->stats, ch));
    json_object_set_new(o, "message_stats", ms);
    return o;
}

/* Ready and unacked messages of a vhost, summed over its queues. */
static void vhost_totals(const struct vhost *vh, uint64_t *ready, uint64_t *unacked)
{
    void *v;

    *ready = *unacked = 0;
    for (size_t i = 0; hmap_next(&vh->queues, &i, &v);) {
        *ready += mgmt_queue_ready(v);
        *unacked += mgmt_queue_unacked(v);
    }
}

json_t *mgmt_json_vhost(const struct mgmt_ctx *ctx, const struct vhost *vh)
{
    json_t *o = json_object(), *meta = json_object(), *cluster = json_object();
    uint64_t ready, unacked;

    vhost_totals(vh, &ready, &unacked);
    json_object_set_new(o, "name", json_name(vh->name));
    json_object_set_new(o, "description", json_string(""));
    json_object_set_new(o, "tags", json_array());
    json_object_set_new(meta, "description", json_string(""));
    json_object_set_new(meta, "tags", json_array());
    json_object_set_new(o, "metadata", meta);
    json_object_set_new(o, "default_queue_type", json_string("undefined"));
    json_object_set_new(o, "tracing", json_false());
    json_object_set_new(cluster, ctx->node, json_string("running"));
    json_object_set_new(o, "cluster_state", cluster);
    json_object_set_new(o, "messages", json_integer((json_int_t)(ready + unacked)));
    json_object_set_new(o, "messages_ready", json_integer((json_int_t)ready));
    json_object_set_new(o, "messages_unacknowledged", json_integer((json_int_t)unacked));
    return o;
}

static json_t *listener_json(const struct mgmt_ctx *ctx, const char *protocol, const char *ip,
                             int port)
{
    json_t *o = json_object();

    json_object_set_new(o, "node", json_string(ctx->node));
    json_object_set_new(o, "protocol", json_string(protocol));
    json_object_set_new(o, "ip_address", json_string(ip));
    json_object_set_new(o, "port", json_integer(port));
    return o;
}

json_t *mgmt_json_listeners(const struct mgmt_ctx *ctx)
{
    const struct server *s = ctx->srv;
    json_t *listeners = json_array();

    for (size_t i = 0; i < s->listener_count; i++) {
        char host[64];
        int port;
        split_address(s->listeners[i].address, host, sizeof host, &port);
        json_array_append_new(
            listeners, listener_json(ctx, s->listeners[i].tls ? "amqp/ssl" : "amqp", host, port));
    }
    if (ctx->http_port != 0)
        json_array_append_new(listeners, listener_json(ctx, "http", ctx->http_ip, ctx->http_port));
    if (ctx->prometheus_port != 0)
        json_array_append_new(listeners, listener_json(ctx, "http/prometheus", ctx->prometheus_ip,
                                                       ctx->prometheus_port));
    return listeners;
}

json_t *mgmt_json_exchange_types(void)
{
    static const struct {
        const struct exchange_type *type;
        const char *description;
    } types[] = {
        {&exchange_type_direct, "AMQP direct exchange, as per the AMQP specification"},
        {&exchange_type_fanout, "AMQP fanout exchange, as per the AMQP specification"},
        {&exchange_type_headers, "AMQP headers exchange, as per the AMQP specification"},
        {&exchange_type_topic, "AMQP topic exchange, as per the AMQP specification"},
    };
    json_t *xt = json_array();

    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(types[i].type->name));
        json_object_set_new(t, "description", json_string(types[i].description));
        json_object_set_new(t, "enabled", json_true());
        json_array_append_new(xt, t);
    }
    return xt;
}

json_t *mgmt_json_cluster_name(const struct mgmt_ctx *ctx)
{
    const struct auth_global_parameter *g =
        auth_global_parameter_find(ctx->srv->auth, wire_cstr(MGMT_CLUSTER_NAME_PARAMETER));
    json_t *name = g != NULL ? json_loads(g->value_json, JSON_DECODE_ANY, NULL) : NULL;

    if (json_is_string(name))
        return name;
    json_decref(name);
    return json_string(ctx->node);
}

json_t *mgmt_json_overview(const struct mgmt_ctx *ctx)
{
    const struct server *s = ctx->srv;
    json_t *o = json_object(), *ms = json_object(), *qt = json_object(), *ot = json_object();
    uint64_t totals[MGMT_COUNTERS], ready = 0, unacked = 0, consumers = 0, channels = 0;
    size_t exchanges = 0, queues = 0;
    void *v, *qv;

    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);) {
        struct vhost *vh = v;
        exchanges += vh->exchanges.len;
        queues += vh->queues.len;
        for (size_t k = 0; hmap_next(&vh->queues, &k, &qv);) {
            struct queue *q = qv;
            ready += mgmt_queue_ready(q);
            unacked += mgmt_queue_unacked(q);
            consumers += q->consumer_count;
        }
    }
    for (const struct conn *c = s->conns; c != NULL; c = c->next)
        channels += c->channel_count;
    mgmt_stats_totals(ctx->stats, totals);

    json_object_set_new(o, "management_version", json_string(MGMT_RABBITMQ_VERSION));
    json_object_set_new(o, "rabbitmq_version", json_string(MGMT_RABBITMQ_VERSION));
    json_object_set_new(o, "product_name", json_string("Warren"));
    json_object_set_new(o, "product_version", json_string(PACKAGE_VERSION));
    json_object_set_new(o, "rates_mode", json_string("basic"));
    json_object_set_new(o, "cluster_name", mgmt_json_cluster_name(ctx));
    json_object_set_new(o, "node", json_string(ctx->node));
    json_object_set_new(o, "disable_stats", json_false());
    json_object_set_new(o, "exchange_types", mgmt_json_exchange_types());

    add_stat(ms, "publish", totals[MGMT_PUBLISHED],
             mgmt_stats_global_rate(ctx->stats, MGMT_PUBLISHED));
    add_stat(ms, "deliver_get", totals[MGMT_DELIVERED],
             mgmt_stats_global_rate(ctx->stats, MGMT_DELIVERED));
    add_stat(ms, "redeliver", totals[MGMT_REDELIVERED],
             mgmt_stats_global_rate(ctx->stats, MGMT_REDELIVERED));
    add_stat(ms, "ack", totals[MGMT_ACKED], mgmt_stats_global_rate(ctx->stats, MGMT_ACKED));
    add_stat(ms, "confirm", totals[MGMT_CONFIRMED],
             mgmt_stats_global_rate(ctx->stats, MGMT_CONFIRMED));
    json_object_set_new(o, "message_stats", ms);

    add_stat(qt, "messages", ready + unacked,
             mgmt_stats_global_rate(ctx->stats, MGMT_READY) +
                 mgmt_stats_global_rate(ctx->stats, MGMT_UNACKED));
    add_stat(qt, "messages_ready", ready, mgmt_stats_global_rate(ctx->stats, MGMT_READY));
    add_stat(qt, "messages_unacknowledged", unacked,
             mgmt_stats_global_rate(ctx->stats, MGMT_UNACKED));
    json_object_set_new(o, "queue_totals", qt);

    json_object_set_new(ot, "channels", json_integer((json_int_t)channels));
    json_object_set_new(ot, "connections", json_integer(s->conn_count));
    json_object_set_new(ot, "consumers", json_integer((json_int_t)consumers));
    json_object_set_new(ot, "exchanges", json_integer((json_int_t)exchanges));
    json_object_set_new(ot, "queues", json_integer((json_int_t)queues));
    json_object_set_new(o, "object_totals", ot);
    /* Warren's own: connections its listeners refused since start, by reason. */
    json_object_set_new(o, "connections_refused",
                        json_pack("{s:I,s:I}", "fd_limit", (json_int_t)s->refused[REFUSED_FD_LIMIT],
                                  "connection_max",
                                  (json_int_t)s->refused[REFUSED_CONNECTION_MAX]));

    json_object_set_new(o, "listeners", mgmt_json_listeners(ctx));
    return o;
}
