/* Frames: the protocol header, the frame splitter and the frame writer.
 *
 * A frame is type(1) channel(2) size(4) payload(size) frame-end(1). frame_max, as the spec
 * negotiates it, bounds the whole frame, envelope included. */
#ifndef WARREN_AMQP_FRAME_H
#define WARREN_AMQP_FRAME_H

#include "amqp/method.h" /* WIRE_FRAME_* constants, generated from the spec */
#include "amqp/props.h"

#define WIRE_FRAME_HEADER_SIZE 7 /* type, channel, size */
#define WIRE_FRAME_OVERHEAD    8 /* header plus the frame-end octet */

extern const uint8_t wire_protocol_header[8]; /* "AMQP" 0 0 9 1 */

/* Checks the 8-byte protocol header at the front of buf. WIRE_OK if it is AMQP 0-9-1;
 * WIRE_NEED_MORE if the len bytes seen so far are a prefix of it; WIRE_ERR_FRAME otherwise
 * (RabbitMQ then writes its own protocol header and closes the socket). */
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
 *   WIRE_ERR_FRAME: the declared size exceeds frame_max (checked before any payload is
 *     needed), the frame-end octet is wrong, or the type is not 1, 2, 3 or 8. */
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
/* The body, split into frames of at most frame_max octets (0: no limit). */
void wire_frame_put_body(struct wire_writer *w, uint16_t channel, struct wire_bytes body,
                         uint32_t frame_max);
void wire_frame_put_heartbeat(struct wire_writer *w);

/* For writev without copying a body: the 7 octets before a body frame of len octets. The
 * frame-end octet (WIRE_FRAME_END) follows the body. */
void wire_frame_body_prefix(uint8_t out[WIRE_FRAME_HEADER_SIZE], uint16_t channel, uint32_t len);

#endif
