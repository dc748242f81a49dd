/* One AMQP connection of warren-perf: a non-blocking socket with a large read buffer that is
 * split into frames in place and a write buffer that is flushed in large writes, both coded
 * with Warren's own amqp/ codec. The client side does the handshake (PLAIN, tune-ok echoing
 * the server's channel_max and frame_max, heartbeats off); the sink uses the same buffers
 * for the server side.
 *
 * A connection belongs to one thread. Functions that can fail return -1 and leave a
 * readable reason in c->error: the broker's connection.close or channel.close (reply code
 * and text), a socket error, or a protocol surprise. */
#ifndef WARREN_BENCH_PERF_CONN_H
#define WARREN_BENCH_PERF_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/frame.h"
#include "amqp/method.h"

#define PERF_CONN_TIMEOUT_MS 10000 /* for every synchronous step (handshake, declare, ...) */

struct perf_conn {
    int fd;
    uint32_t frame_max;   /* negotiated; bounds the frames we write and accept */
    uint16_t channel_max; /* negotiated */
    bool blocked;         /* the broker sent connection.blocked (resource alarm) */

    uint8_t *in; /* read buffer: [in_pos, in_len) not yet parsed */
    size_t in_pos;
    size_t in_len;
    size_t in_cap;

    uint8_t *out; /* write buffer: [out_pos, out_len) not yet written */
    size_t out_pos;
    size_t out_len;
    size_t out_cap;

    char error[512];
};

/* Connects to host:port and logs in to vhost "/" as user/password. On success the socket is
 * non-blocking and channel 1 is not yet open. On failure c owns nothing. */
int perf_conn_open(struct perf_conn *c, const char *host, const char *port, const char *user,
                   const char *password);
/* For the sink: adopts an accepted socket (made non-blocking). */
void perf_conn_adopt(struct perf_conn *c, int fd);
/* Polite close (connection.close, wait briefly for close-ok) then frees everything.
 * Accepts a connection that failed or was never opened (fd < 0). */
void perf_conn_close(struct perf_conn *c);
/* Frees buffers and closes the socket without a word to the peer. */
void perf_conn_free(struct perf_conn *c);

/* Appends one method frame to the write buffer (grown as needed). */
void perf_conn_put_method(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args);
/* Appends raw bytes (pre-encoded frames) to the write buffer. */
void perf_conn_put_raw(struct perf_conn *c, const void *bytes, size_t len);
static inline bool perf_conn_out_pending(const struct perf_conn *c)
{
    return c->out_pos < c->out_len;
}
/* Writes as much of the write buffer as the socket takes now: 0 (possibly with data left),
 * -1 on a socket error. */
int perf_conn_flush(struct perf_conn *c);

/* Reads what the socket has into the read buffer: > 0 bytes read, 0 nothing available,
 * -1 end of stream or error. */
int perf_conn_fill(struct perf_conn *c);
/* The next complete frame in the read buffer (borrowing it until the next fill): 1 frame,
 * 0 none complete yet, -1 malformed stream. */
int perf_conn_next_frame(struct perf_conn *c, struct wire_frame *f);

/* Waits (poll) until the socket is readable, or writable when output is pending, or
 * timeout_ms passes; then flushes and fills. 0 ok (maybe nothing happened), -1 error. */
int perf_conn_wait(struct perf_conn *c, int timeout_ms);

/* Handles the frames every client must answer whatever it is doing: connection.close and
 * channel.close (answered with close-ok; returns -1 with the reply in c->error), blocked
 * and unblocked, heartbeats. Returns 1 if it consumed the frame, 0 if the caller should
 * look at it. m is the frame's decoded method (NULL if not a method frame). */
int perf_conn_common(struct perf_conn *c, const struct wire_frame *f, const struct wire_method *m);

/* Sends a synchronous method on channel and waits for the reply whose id is expect,
 * skipping nothing else but the frames perf_conn_common handles. The reply borrows the read
 * buffer until the next call. */
int perf_conn_rpc(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args,
                  uint32_t expect, struct wire_method *reply);
/* The same with another time limit, for a reply that may come after a long backlog. */
int perf_conn_rpc_within(struct perf_conn *c, uint16_t channel, uint32_t id, const void *args,
                         uint32_t expect, struct wire_method *reply, int timeout_ms);

/* Formats "<code> <NAME> - <text>" style reasons for errors found by the caller. */
void perf_conn_fail(struct perf_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
