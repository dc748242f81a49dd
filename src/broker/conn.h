/* A client connection: the socket, read and write buffers, the handshake (protocol header,
 * start/start-ok with SASL, tune/tune-ok, open), heartbeats, channel 0 and the channels.
 *
 * A connection without a socket (fd -1) is driven by conn_feed(): the connection fuzz target
 * uses that to run the real protocol code on arbitrary bytes. */
#ifndef WARREN_SRC_BROKER_CONN_H
#define WARREN_SRC_BROKER_CONN_H

#include <ev.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "amqp/frame.h"
#include "src/base/log.h"
#include "src/broker/outbuf.h"
#include "src/cluster/proxy_header.h"

struct server;
struct channel;
struct tls_conn;
struct message;
struct vhost;

enum conn_state {
    CONN_AWAIT_HEADER,   /* nothing yet: the 8-byte protocol header comes first */
    CONN_AWAIT_START_OK, /* sent connection.start */
    CONN_AWAIT_SECURE_OK, /* sent connection.secure (RABBIT-CR-DEMO's challenge) */
    CONN_AWAIT_TUNE_OK,  /* authenticated, sent connection.tune */
    CONN_AWAIT_OPEN,     /* tuned, waiting for connection.open */
    CONN_OPEN,
    CONN_CLOSING, /* sent connection.close: only close-ok (or close) is read */
    CONN_CLOSED,  /* socket done with; freed after this loop turn */
};

struct conn {
    struct server *srv;
    int fd;
    ev_io read_watcher;
    ev_io write_watcher;
    ev_timer timer; /* handshake timeout, heartbeats, close-ok timeout */
    struct log_ctx log;
    enum conn_state state;
    /* Cluster leader: output waits until the replication commit reaches this position (a
     * change to the definitions log this connection made); 0 for none. */
    uint64_t hold_position;
    bool is_loopback;
    /* The peer is one whose connections may start with a PROXY v1 header naming the client
     * it relays (server_is_proxy_peer): until its first byte shows whether it does, and while
     * the header is incomplete, the socket is read here only. */
    bool proxy_header_pending;
    uint8_t proxy_header_len;
    uint8_t proxy_header[PROXY_HEADER_MAX];
    struct tls_conn *tls; /* AMQPS: the TLS session the socket carries; NULL for plain TCP */
    bool tls_established; /* its handshake is over: the timer switched to handshake_timeout */

    uint8_t *in; /* bytes read and not yet parsed */
    size_t in_len, in_cap;
    /* A large body frame being read straight into its message, not into in: the frame's
     * header was parsed, its payload goes to dst (inside msg, which this holds a reference
     * to), and its frame-end octet will be the first byte of in. */
    struct {
        struct message *msg;
        uint8_t *dst;
        uint32_t len, got;
        uint16_t channel;
    } body_in;
    struct outbuf out;

    uint32_t frame_max;
    uint16_t channel_max;
    uint16_t heartbeat_s;
    uint64_t last_read_ms;
    uint64_t last_write_ms;
    uint64_t deadline_ms; /* handshake or close-ok deadline; 0 none */

    struct channel **channels; /* indexed by channel id, grown on demand */
    uint32_t channels_cap;
    uint32_t channel_count;
    struct vhost *vhost;

    /* What the client said it understands (client-properties capabilities). */
    bool cap_consumer_cancel_notify;
    bool cap_auth_failure_close;
    bool cap_connection_blocked;
    uint8_t sasl_mechanism; /* enum config_auth_mechanism of the login under way */
    /* Closing after a frame that could not be parsed (the rest of an oversized frame, say):
     * what the peer still sends is dropped unread until it closes or close-ok's time is up,
     * so that the socket is not reset while the peer reads our connection.close. */
    bool discarding;
    /* The client properties table of connection.start-ok (its entries, owned), shown by the
     * management API as RabbitMQ shows them (connection_name among them). */
    struct wire_bytes client_properties;

    /* Resource alarms: a connection that publishes is blocked (its socket is not read) while
     * an alarm is on; block_pending blocks it once the bytes already read are handled. */
    bool counted_in_vhost;
    bool is_publisher;
    bool blocked;
    bool block_pending;

    /* The error of the frame being handled (see channel_fail). */
    uint16_t err_code;
    char err_text[512]; /* cut to 255 octets, as a shortstr, when reported */

    bool confirms_pending; /* some channel has publisher confirms to send */
    bool flush_queued;
    bool congested; /* the socket is backed up: consumers pause until it drains */
    struct conn *next, *prev;  /* the server's list */
    struct conn *next_flush;   /* the server's list of connections with output */
};

/* A connection on an accepted socket (or fd -1 for an in-memory one); sends nothing until
 * the client's protocol header arrives. After conn_new, a TLS listener calls conn_start_tls
 * before the first read. */
struct conn *conn_new(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peer_len);
void conn_free(struct conn *c);
/* The socket carries TLS: the handshake runs inside the first reads, within
 * ssl_handshake_timeout; the AMQP handshake then has handshake_timeout from its end. */
void conn_start_tls(struct conn *c, struct tls_conn *t);

/* Processes bytes as if read from the socket. */
void conn_feed(struct conn *c, const uint8_t *data, size_t len);

/* Output. Each appends whole frames to the write buffer; the server writes them out once
 * per loop turn. */
void conn_send_method(struct conn *c, uint16_t channel, uint32_t method_id, const void *args);
/* A content-bearing method (deliver, get-ok, return) with m's header and body. */
void conn_send_content(struct conn *c, uint16_t channel, uint32_t method_id, const void *args,
                       const struct message *m);

/* Records an error for the frame being handled; returns -1. */
int conn_fail(struct conn *c, uint16_t code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Sends connection.close with code and text (already prefixed) and waits for close-ok. */
void conn_close_with(struct conn *c, uint16_t code, const char *text, uint32_t method_id);
/* Records the error for a method frame that did not decode (rc from wire_method_decode):
 * 540 for an unknown class or method, 501 "cannot decode <<args>>" otherwise. Returns -1. */
int conn_method_error(struct conn *c, struct wire_bytes payload, int rc);

/* Turns the error recorded with channel_fail()/conn_fail() into channel.close (soft error on
 * an open channel) or connection.close (hard error), as its reply code's class says. */
void conn_report_error(struct conn *c, uint16_t channel, uint32_t method_id);
/* Closes, with 406, every channel whose oldest unacked delivery is older than timeout_ms. */
void conn_check_ack_timeouts(struct conn *c, uint64_t now, uint32_t timeout_ms);

/* Drops the connection now: channels closed, unacked requeued; freed after the loop turn. */
void conn_abort(struct conn *c);

/* A resource alarm started or ended (alarms: server's ALARM_* bits now on): a publishing
 * connection stops or starts being read, and is told if it asked. */
void conn_alarm_changed(struct conn *c, unsigned alarms);

/* Writes out as much as the socket takes. */
void conn_flush(struct conn *c);

#endif
