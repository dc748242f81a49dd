/* The PROXY protocol, version 1 (HAProxy's proxy-protocol.txt, section 2.1): the one line of
 * text a relay sends before the client's bytes so that the server learns who the client is,
 *
 *   "PROXY TCP4 192.0.2.10 198.51.100.7 53122 5672\r\n"
 *   "PROXY TCP6 2001:db8::10 2001:db8::7 53122 5672\r\n"
 *   "PROXY UNKNOWN\r\n"                 (anything may follow UNKNOWN up to the CRLF)
 *
 * at most PROXY_HEADER_MAX bytes with its CRLF. A follower prepends it to the connections it
 * relays to the leader (src/cluster/proxy.h); the leader reads it, from its allow-list of
 * peers only (src/broker/server.h, server_set_proxy_peers). Pure code: no sockets. */
#ifndef WARREN_SRC_CLUSTER_PROXY_HEADER_H
#define WARREN_SRC_CLUSTER_PROXY_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest line the spec allows, CRLF included ("PROXY UNKNOWN" with two full IPv6
 * addresses and ports). A receiver that has this many bytes without a CRLF stops. */
#define PROXY_HEADER_MAX 107

struct proxy_header {
    /* TCP4 or TCP6: src and dst hold the client's address and the one it connected to
     * (sockaddr_in or sockaddr_in6, ports set). UNKNOWN: false, and the receiver uses the
     * connection's own addresses, as the spec says. */
    bool known;
    struct sockaddr_storage src;
    struct sockaddr_storage dst;
};

/* Reads a header at the start of buf (len bytes from the peer, any length). Returns the
 * header's length (> 0, CRLF included) with *out filled; 0 while the bytes so far can still
 * begin a header and no CRLF has come (at most PROXY_HEADER_MAX bytes are ever looked at);
 * -1 when they cannot, with *why saying why in a few words (a static string). Strict as the
 * spec: exactly one space between fields, "TCP4" with dotted quads without leading zeros,
 * "TCP6" with hexadecimal groups, ports 0..65535 without leading zeros, CRLF and nothing
 * else ends the line. */
int proxy_header_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why);

/* Writes the header for a client at src that connected to dst into out (room for
 * PROXY_HEADER_MAX bytes; no NUL is added) and returns its length. TCP4 when both addresses
 * are IPv4 (an IPv4-mapped IPv6 address counts as IPv4), TCP6 when both are IPv6 (then a
 * mapped one beside a true IPv6 one is written as IPv6, in hexadecimal groups), UNKNOWN
 * otherwise (src or dst NULL, another family, or IPv4 beside true IPv6). */
size_t proxy_header_format(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out);

#endif
