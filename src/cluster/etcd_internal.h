/* Inside the etcd client: the JSON of the gateway's answers into struct etcd_response, the
 * request bodies' base64, and the NDJSON line splitter of streams. Pure functions of their
 * input, apart from allocation: tests/fuzz/fuzz_etcd_json.c feeds them arbitrary bytes. */
#ifndef WARREN_SRC_CLUSTER_ETCD_INTERNAL_H
#define WARREN_SRC_CLUSTER_ETCD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/cluster/etcd.h"

/* The gateway calls; each has its path and the shape of its answer. */
enum etcd_call {
    ETCD_CALL_RANGE,
    ETCD_CALL_PUT,
    ETCD_CALL_DELETE,
    ETCD_CALL_TXN,
    ETCD_CALL_LEASE_GRANT,
    ETCD_CALL_LEASE_KEEPALIVE,
    ETCD_CALL_LEASE_REVOKE,
    ETCD_CALL_LEASE_TTL,
    ETCD_CALL_WATCH, /* stream */
    ETCD_CALL_CAMPAIGN,
    ETCD_CALL_LEADER,
    ETCD_CALL_OBSERVE, /* stream */
    ETCD_CALL_RESIGN,
    ETCD_CALL_PROCLAIM,
    ETCD_CALL_AUTH,
    ETCD_CALL_COUNT
};

/* The largest answer or stream line accepted (etcd's own request limit is 1.5 MiB; a watch
 * catching up may batch many events). */
#define ETCD_ANSWER_MAX (16u * 1024 * 1024)

const char *etcd_call_path(enum etcd_call call);

/* The answer of a unary call (HTTP status and body) into r, which must be zeroed or cleared.
 * Returns r->err. Errors: the in-band error of etcd (message, grpc_code), an HTTP status
 * other than 200, or ETCD_E_PARSE for anything not shaped like etcd's answers. */
int etcd_parse_answer(enum etcd_call call, long http_status, const char *text, size_t len,
                      struct etcd_response *r);
/* One line of a stream ({"result": ...} or {"error": ...}) of a watch or an observe. A watch
 * canceled by etcd because of compaction is ETCD_E_COMPACTED with compact_revision set. */
int etcd_parse_stream_line(enum etcd_call call, const char *line, size_t len,
                           struct etcd_response *r);
/* Frees what r holds and zeroes it. */
void etcd_response_clear(struct etcd_response *r);
void etcd_kv_clear(struct etcd_kv *kv);

/* The error an etcd message means ("etcdserver: no leader" -> ETCD_E_NO_LEADER ...). */
int etcd_classify_error(const char *message);

/* Standard base64 with padding. encode writes etcd_b64_encoded_len(n) + 1 bytes (NUL). */
size_t etcd_b64_encoded_len(size_t n);
void etcd_b64_encode(const void *in, size_t n, char *out);
/* Decodes into a new buffer with a NUL after the bytes; padding may be omitted. false on a
 * character outside the alphabet or a bad length. */
bool etcd_b64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len);

/* Bytes of a stream, cut into lines. */
struct etcd_lines {
    char *buf;
    size_t len;   /* bytes held */
    size_t start; /* first byte not yet returned as part of a line */
    size_t cap;
};

/* false if the unreturned bytes would exceed ETCD_ANSWER_MAX. */
bool etcd_lines_append(struct etcd_lines *l, const void *data, size_t n);
/* The next complete line (without its "\n" or "\r\n"); empty lines are skipped. Valid until
 * the next append. */
bool etcd_lines_next(struct etcd_lines *l, const char **line, size_t *len);
void etcd_lines_free(struct etcd_lines *l);

#endif
