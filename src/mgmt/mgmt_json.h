/* Broker objects as JSON in the shapes of RabbitMQ's management API (field names and types
 * as RabbitMQ 3.10 returns them), and the conversions between JSON and AMQP field tables and
 * message properties. Every function returns a new jansson reference (or fills the caller's
 * buffers); nothing here changes broker state. */
#ifndef WARREN_SRC_MGMT_MGMT_JSON_H
#define WARREN_SRC_MGMT_MGMT_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/props.h"

struct channel;
struct conn;
struct consumer;
struct exchange;
struct mgmt_stats;
struct queue;
struct server;
struct vhost;
struct xbinding;

/* What the renderers need besides the object itself. */
struct mgmt_ctx {
    struct server *srv;
    struct mgmt_stats *stats;
    char node[128]; /* "warren@<host>", where RabbitMQ says "rabbit@<host>" */
    /* The HTTP listeners, for the overview; port 0 when one is disabled. */
    char http_ip[64], prometheus_ip[64];
    uint16_t http_port, prometheus_port;
};

/* ---- Field tables and properties ------------------------------------------------------ */

/* A table as a JSON object: integers as numbers, strings as strings (bytes that are not
 * UTF-8 become U+FFFD), booleans, floats, nested tables and arrays, void as null. */
json_t *mgmt_json_from_table(struct wire_table t);

/* A JSON object as encoded table entries, the way RabbitMQ's management API converts
 * arguments and headers: string -> longstr 'S', integer -> long 'l', real -> double 'd',
 * true/false -> 't', null -> void 'V', array -> 'A', object -> 'F'. *out is malloc'd (free
 * it; it is non-NULL even for an empty table). Returns 0, or -1 with a reason in err for a
 * value that is not an object, a name over 255 bytes or nesting deeper than a table allows. */
int mgmt_json_to_table(const json_t *obj, uint8_t **out, size_t *len, char *err, size_t err_size);

/* Message properties as RabbitMQ shows them: an object with the properties that are set,
 * or an empty array when none is (RabbitMQ's quirk, kept for clients that test for it). */
json_t *mgmt_json_from_props(const struct wire_props *p);

/* Properties from a JSON object (unknown names are ignored, as RabbitMQ does). Strings in
 * *out borrow obj; the headers table is malloc'd into *headers (free it, even on error).
 * Returns 0, or -1 with a reason in err. */
int mgmt_json_to_props(const json_t *obj, struct wire_props *out, uint8_t **headers, char *err,
                       size_t err_size);

/* A JSON string of arbitrary bytes: UTF-8 is kept, other bytes become U+FFFD. */
json_t *mgmt_json_bytes(struct wire_bytes b);

/* The bytes of a JSON string (borrowed from it); empty for anything else. */
static inline struct wire_bytes mgmt_json_bytes_of(const json_t *s)
{
    return json_is_string(s) ? (struct wire_bytes){.ptr = (const uint8_t *)json_string_value(s),
                                                   .len = json_string_length(s)}
                             : (struct wire_bytes){0};
}

/* Base64 with the standard alphabet, as the API carries binary payloads. encode writes
 * 4 * ((len + 2) / 3) characters and a NUL into out. decode takes padded or unpadded text
 * (no whitespace) into out (at least len / 4 * 3 + 3 bytes); -1 if text is not base64. */
void mgmt_base64_encode(const uint8_t *in, size_t len, char *out);
int mgmt_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len);

/* ---- Names ----------------------------------------------------------------------------- */

/* A connection's name as RabbitMQ forms it: "127.0.0.1:50412 -> 127.0.0.1:5672". */
void mgmt_conn_name(const struct conn *c, char *out, size_t out_size);
/* The peer's address without brackets, and its port (0 if unknown). */
void mgmt_conn_peer(const struct conn *c, char *host, size_t host_size, int *port);

/* A binding's "properties_key", the last part of its URL: the routing key percent-encoded,
 * followed by "~" and a hash of the arguments when there are any. Two bindings of the same
 * source and destination differ in it. RabbitMQ hashes the arguments with Erlang's phash2;
 * Warren with its own function, so keys are for round trips, not to be computed by clients. */
void mgmt_binding_props_key(struct wire_bytes routing_key, struct wire_bytes arguments, char *out,
                            size_t out_size);

/* ---- Objects --------------------------------------------------------------------------- */

json_t *mgmt_json_exchange(const struct mgmt_ctx *ctx, const struct exchange *x);
/* detail adds consumer_details and the other fields of GET /api/queues/vhost/name. */
json_t *mgmt_json_queue(const struct mgmt_ctx *ctx, const struct queue *q, bool detail);
/* A binding, and the implicit binding of the default exchange to every queue (routing key
 * the queue's name), which RabbitMQ lists too. */
json_t *mgmt_json_binding(const struct xbinding *xb);
json_t *mgmt_json_default_binding(const struct queue *q);
/* A binding from its parts (destination_type "queue" or "exchange"), for a list that copied
 * them rather than keep pointers to the objects. */
json_t *mgmt_json_binding_of(struct wire_bytes vhost, struct wire_bytes source,
                             struct wire_bytes destination, const char *destination_type,
                             struct wire_bytes routing_key, struct wire_bytes arguments);
json_t *mgmt_json_connection(const struct mgmt_ctx *ctx, const struct conn *c);
json_t *mgmt_json_channel(const struct mgmt_ctx *ctx, const struct channel *ch);
json_t *mgmt_json_consumer(const struct mgmt_ctx *ctx, const struct consumer *c);
json_t *mgmt_json_vhost(const struct mgmt_ctx *ctx, const struct vhost *vh);
json_t *mgmt_json_overview(const struct mgmt_ctx *ctx);

/* The global parameter that names the cluster, as in RabbitMQ. */
#define MGMT_CLUSTER_NAME_PARAMETER "cluster_name"

/* The listeners as the overview and a node list them: {node, protocol, ip_address, port}, the
 * protocol "amqp", "amqp/ssl", "http" or "http/prometheus". */
json_t *mgmt_json_listeners(const struct mgmt_ctx *ctx);
/* The exchange types, {name, description, enabled}. */
json_t *mgmt_json_exchange_types(void);
/* The cluster_name global parameter when it is a string, else the node's name. */
json_t *mgmt_json_cluster_name(const struct mgmt_ctx *ctx);

#endif
