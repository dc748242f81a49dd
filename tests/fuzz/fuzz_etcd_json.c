/* Fuzz target for the parsers of etcd's gateway answers (src/cluster/etcd_internal.h), which
 * read whatever an etcd endpoint (or anything listening at its address) sends. Input:
 *
 *   byte 0   the call whose answer this is (modulo the number of calls)
 *   byte 1   bit 0: a stream (NDJSON lines of a watch or an observe) rather than a unary
 *            answer; bits 1-7: the HTTP status of a unary answer (200, 400, 404, 412, 500,
 *            503) or the size of the chunks a stream arrives in
 *   rest     the body
 *
 * Besides crashes and sanitizer reports it checks what callers rely on: an error always has
 * a message, a success none; decoded keys and values are NUL-terminated; a keepalive never
 * succeeds without a TTL; base64 decoding of the body matches its re-encoding. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/cluster/etcd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_kv(const struct etcd_kv *kv)
{
    check(kv->key != NULL && kv->key[kv->key_len] == '\0');
    check(kv->value != NULL && kv->value[kv->value_len] == '\0');
}

static void check_response(enum etcd_call call, const struct etcd_response *r)
{
    size_t i;

    check((r->err == ETCD_OK) == (r->message == NULL));
    for (i = 0; i < r->n_kvs; i++)
        check_kv(&r->kvs[i]);
    for (i = 0; i < r->n_events; i++) {
        check_kv(&r->events[i].kv);
        if (r->events[i].has_prev_kv)
            check_kv(&r->events[i].prev_kv);
    }
    if (call == ETCD_CALL_LEASE_KEEPALIVE && r->err == ETCD_OK)
        check(r->ttl > 0);
    if (call == ETCD_CALL_AUTH && r->err == ETCD_OK)
        check(r->token != NULL && *r->token != '\0');
    if (r->err == ETCD_E_COMPACTED)
        check(r->message != NULL);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
    uint8_t *out;
    size_t len;

    if (etcd_b64_decode((const char *)data, size, &out, &len)) {
        char *again = malloc(etcd_b64_encoded_len(len) + 1);
        uint8_t *back;
        size_t back_len;

        check(out[len] == '\0');
        etcd_b64_encode(out, len, again);
        check(etcd_b64_decode(again, strlen(again), &back, &back_len));
        check(back_len == len && memcmp(back, out, len) == 0);
        free(back);
        free(again);
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 400, 404, 412, 500, 503};
    struct etcd_response r = {0};
    enum etcd_call call;
    const char *body;
    size_t len;

    if (size < 2)
        return 0;
    call = (enum etcd_call)(data[0] % ETCD_CALL_COUNT);
    body = (const char *)data + 2;
    len = size - 2;
    if (data[1] & 1) {
        struct etcd_lines lines = {0};
        size_t chunk = (size_t)(data[1] >> 1) + 1, at = 0;
        const char *line;
        size_t line_len;

        if (call != ETCD_CALL_OBSERVE)
            call = ETCD_CALL_WATCH;
        while (at < len) {
            size_t n = len - at < chunk ? len - at : chunk;

            if (!etcd_lines_append(&lines, body + at, n))
                break;
            at += n;
            while (etcd_lines_next(&lines, &line, &line_len)) {
                check(line_len > 0 && memchr(line, '\n', line_len) == NULL);
                etcd_parse_stream_line(call, line, line_len, &r);
                check_response(call, &r);
                etcd_response_clear(&r);
            }
        }
        etcd_lines_free(&lines);
    } else {
        etcd_parse_answer(call, statuses[(data[1] >> 1) % 6], body, len, &r);
        check_response(call, &r);
        etcd_response_clear(&r);
    }
    fuzz_base64((const uint8_t *)body, len);
    return 0;
}
