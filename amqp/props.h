/* Content headers: class id, body size and the 14 basic properties behind their flags word. */
#ifndef WARREN_AMQP_PROPS_H
#define WARREN_AMQP_PROPS_H

#include "amqp/table.h"

/* Property flags, most significant bit first, in the spec's order. Bit 0 of a flags word
 * means another flags word follows. */
enum wire_prop_flag {
    WIRE_PROP_CONTENT_TYPE = 1u << 15,
    WIRE_PROP_CONTENT_ENCODING = 1u << 14,
    WIRE_PROP_HEADERS = 1u << 13,
    WIRE_PROP_DELIVERY_MODE = 1u << 12,
    WIRE_PROP_PRIORITY = 1u << 11,
    WIRE_PROP_CORRELATION_ID = 1u << 10,
    WIRE_PROP_REPLY_TO = 1u << 9,
    WIRE_PROP_EXPIRATION = 1u << 8,
    WIRE_PROP_MESSAGE_ID = 1u << 7,
    WIRE_PROP_TIMESTAMP = 1u << 6,
    WIRE_PROP_TYPE = 1u << 5,
    WIRE_PROP_USER_ID = 1u << 4,
    WIRE_PROP_APP_ID = 1u << 3,
    WIRE_PROP_CLUSTER_ID = 1u << 2,
};

/* A field is present only if its flag is set in flags; absent fields are zero. */
struct wire_props {
    uint16_t flags;
    struct wire_bytes content_type;
    struct wire_bytes content_encoding;
    struct wire_table headers;
    uint8_t delivery_mode;
    uint8_t priority;
    struct wire_bytes correlation_id;
    struct wire_bytes reply_to;
    struct wire_bytes expiration;
    struct wire_bytes message_id;
    uint64_t timestamp;
    struct wire_bytes type;
    struct wire_bytes user_id;
    struct wire_bytes app_id;
    struct wire_bytes cluster_id;
};

struct wire_content_header {
    uint16_t class_id;
    uint16_t weight; /* always 0 */
    uint64_t body_size;
    struct wire_props props;
};

/* Decodes a content-header frame's payload; the result borrows payload. Errors, chosen by
 * what RabbitMQ 3.10 answers:
 *   WIRE_ERR_FRAME: shorter than class id, weight and body size (501 "unknown_frame");
 *   WIRE_ERR_UNEXPECTED_FRAME: weight is not 0 (RabbitMQ does not take it for a content
 *     header: 505 "expected content header for class 60, got non content header frame");
 *   WIRE_ERR_SYNTAX: the properties are malformed: truncated, a bad headers table, flags
 *     for properties that do not exist in a continuation word, trailing bytes. RabbitMQ's
 *     channel crashes on these (541 INTERNAL_ERROR); 502 is the spec's code.
 * For a class other than basic only class_id, weight and body_size are decoded (props stay
 * zero) and WIRE_OK is returned: the caller refuses the class as RabbitMQ does (505
 * "expected content header for class 60, got one for class 50 instead").
 * Flag bit 1, which names no property, is ignored as RabbitMQ ignores it (not kept in
 * props.flags); a continuation word (bit 0 set) must carry no other flag. */
int wire_content_header_decode(struct wire_bytes payload, struct wire_content_header *h);

/* Encodes a content-header frame's payload (no frame envelope): weight 0, the properties
 * whose flags are set, in the spec's order. */
void wire_content_header_encode(struct wire_writer *w, const struct wire_content_header *h);

#endif
