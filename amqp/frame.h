/* Frames: the protocol header, the frame splitter and the frame writer.
 *
 * A frame is type(1) channel(2) size(4) payload(size) frame-end(1). frame_max, as the spec
 * negotiates it, bounds the whole frame, envelope included; that is what we send. What we
 * accept is RabbitMQ's rule, which allows the 8 octets of envelope on top: a frame is refused
 * only when its payload exceeds frame_max (RabbitMQ 3.10: 501 "frame_too_large"), so a frame
 * read can be up to frame_max + 8 octets long. Until tune-ok, frame_max is
 * WIRE_FRAME_MIN_SIZE (4096). */
#ifndef WARREN_AMQP_FRAME_H
#define WARREN_AMQP_FRAME_H

#include "amqp/method.h" /* WIRE_FRAME_* constants, generated from the spec */
#include "amqp/props.h"

#define WIRE_FRAME_HEADER_SIZE 7 /* type, channel, size */
#define WIRE_FRAME_OVERHEAD    8 /* header plus the frame-end octet */

extern const uint8_t wire_protocol_header[8]; /* "AMQP" 0 0 9 1 */

/* Checks the 8-byte protocol header at the front of buf. WIRE_OK if it is AMQP 0-9-1, or
 * "AMQP" 1 1 0 9 (AMQP 0-9, which RabbitMQ serves as 0-9-1: same framing, same methods);
 * WIRE_NEED_MORE if the len bytes seen so far are a prefix of one of them; WIRE_ERR_FRAME
 * otherwise. On a wrong header RabbitMQ 3.10 writes wire_protocol_header ("AMQP" 0 0 9 1,
 * the version it speaks) and closes the socket, without any frame (checked with a raw socket
 * for "GET / HTTP/1.1", "AMQP" 0 0 9 0, 0 0 10 0, AMQP 1.0's 0 1 0 0 and 3 1 0 0 without the
 * 1.0 plugin, "XXXXXXXX"). It also speaks 0-8 ("AMQP" 1 1 8 0 and 1 1 9 1), which Warren
 * does not: those get the same answer as any wrong header. */
int wire_protocol_header_check(const uint8_t *buf, size_t len);

struct wire_frame {
    uint8_t type;
    uint16_t channel;
    struct wire_bytes payload; /* borrows the caller's buffer */
};

/* Splits the frame at the front of buf[0, len). Returns
 *   WIRE_OK: *frame is set and *consumed is the frame's whole length;
 *   WIRE_NEED_MORE: the frame is incomplete; *consumed is the total length the frame will
 *     have once its header is known (so the caller can size its buffer), else 0;
 *   WIRE_ERR_FRAME: the declared payload size exceeds frame_max (0: no limit) or the type is
 *     not 1, 2, 3 or 8, both found from the 7-octet header before any payload is needed; or
 *     the frame-end octet is wrong. RabbitMQ answers all three with 501 FRAME_ERROR (it
 *     looks at the type only once the payload is in, which no client can tell apart). */
int wire_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max, struct wire_frame *frame,
                     size_t *consumed);

/* Writing. Each function appends whole frames to w (see wire.h for overflow). */

/* A frame whose payload is filled by the caller: begin writes the 7-byte header with a size
 * placeholder and returns its offset; end patches the size and writes the frame-end. */
size_t wire_frame_begin(struct wire_writer *w, uint8_t type, uint16_t channel);
void wire_frame_end(struct wire_writer *w, size_t begin);

/* A method frame: args points at the method's struct (struct wire_basic_deliver for
 * WIRE_BASIC_DELIVER, ...). */
void wire_frame_put_method(struct wire_writer *w, uint16_t channel, uint32_t method_id,
                           const void *args);
void wire_frame_put_header(struct wire_writer *w, uint16_t channel,
                           const struct wire_content_header *h);
/* A frame with a ready payload (e.g. a content header kept as received). */
void wire_frame_put_raw(struct wire_writer *w, uint8_t type, uint16_t channel,
                        struct wire_bytes payload);
/* The body, split into frames of at most frame_max octets, envelope included (0: no
 * limit; else frame_max > 8). An empty body writes no frame, as RabbitMQ sends none. */
void wire_frame_put_body(struct wire_writer *w, uint16_t channel, struct wire_bytes body,
                         uint32_t frame_max);
void wire_frame_put_heartbeat(struct wire_writer *w);

/* For writev without copying a body: the 7 octets before a body frame of len octets. The
 * frame-end octet (WIRE_FRAME_END) follows the body. */
void wire_frame_body_prefix(uint8_t out[WIRE_FRAME_HEADER_SIZE], uint16_t channel, uint32_t len);

#endif
