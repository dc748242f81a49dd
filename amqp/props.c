/* Content headers: the basic class's 14 properties behind their flags. */
#include "amqp/props.h"

#include "amqp/method.h"

/* The flags of every property the spec defines, most significant first. */
#define PROP_DEFINED 0xFFFCu
/* The last bit of a flags word says that another word follows. */
#define PROP_CONTINUED 0x0001u

static bool read_props(struct wire_reader *r, struct wire_props *p)
{
    uint16_t flags = p->flags;

    if ((flags & WIRE_PROP_CONTENT_TYPE) && !wire_shortstr(r, &p->content_type))
        return false;
    if ((flags & WIRE_PROP_CONTENT_ENCODING) && !wire_shortstr(r, &p->content_encoding))
        return false;
    if ((flags & WIRE_PROP_HEADERS) && !wire_read_table(r, &p->headers))
        return false;
    if ((flags & WIRE_PROP_DELIVERY_MODE) && !wire_u8(r, &p->delivery_mode))
        return false;
    if ((flags & WIRE_PROP_PRIORITY) && !wire_u8(r, &p->priority))
        return false;
    if ((flags & WIRE_PROP_CORRELATION_ID) && !wire_shortstr(r, &p->correlation_id))
        return false;
    if ((flags & WIRE_PROP_REPLY_TO) && !wire_shortstr(r, &p->reply_to))
        return false;
    if ((flags & WIRE_PROP_EXPIRATION) && !wire_shortstr(r, &p->expiration))
        return false;
    if ((flags & WIRE_PROP_MESSAGE_ID) && !wire_shortstr(r, &p->message_id))
        return false;
    if ((flags & WIRE_PROP_TIMESTAMP) && !wire_u64(r, &p->timestamp))
        return false;
    if ((flags & WIRE_PROP_TYPE) && !wire_shortstr(r, &p->type))
        return false;
    if ((flags & WIRE_PROP_USER_ID) && !wire_shortstr(r, &p->user_id))
        return false;
    if ((flags & WIRE_PROP_APP_ID) && !wire_shortstr(r, &p->app_id))
        return false;
    if ((flags & WIRE_PROP_CLUSTER_ID) && !wire_shortstr(r, &p->cluster_id))
        return false;
    return true;
}

int wire_content_header_decode(struct wire_bytes payload, struct wire_content_header *h)
{
    struct wire_reader r = wire_reader_init(payload.ptr, payload.len);
    uint16_t word;

    *h = (struct wire_content_header){0};
    /* RabbitMQ does not recognise a header payload shorter than class, weight and body size
     * as a frame at all: 501 "unknown_frame". */
    if (!wire_u16(&r, &h->class_id) || !wire_u16(&r, &h->weight) || !wire_u64(&r, &h->body_size))
        return WIRE_ERR_FRAME;
    /* With a weight other than zero RabbitMQ does not take the frame for a content header:
     * 505 "expected content header for class 60, got non content header frame instead". */
    if (h->weight != 0)
        return WIRE_ERR_UNEXPECTED_FRAME;
    /* Only basic has properties; another class is the caller's to refuse (505, as RabbitMQ
     * names the class it expected), so its property bytes are not looked at. */
    if (h->class_id != WIRE_CLASS_BASIC)
        return WIRE_OK;

    if (!wire_u16(&r, &word))
        return WIRE_ERR_SYNTAX;
    /* Bit 1 names no property. RabbitMQ ignores it (and forwards the header as received), so
     * we accept it too rather than refuse messages RabbitMQ takes; it is not kept in flags. */
    h->props.flags = (uint16_t)(word & PROP_DEFINED);
    /* A word ending in 1 is followed by another (spec 4.2.6.1). Basic defines only 14
     * properties, so any further word may carry nothing but its own continuation bit. */
    while (word & PROP_CONTINUED) {
        if (!wire_u16(&r, &word) || (word & ~PROP_CONTINUED) != 0)
            return WIRE_ERR_SYNTAX;
    }
    if (!read_props(&r, &h->props) || wire_left(&r) != 0)
        return WIRE_ERR_SYNTAX;
    return WIRE_OK;
}

void wire_content_header_encode(struct wire_writer *w, const struct wire_content_header *h)
{
    const struct wire_props *p = &h->props;
    uint16_t flags = (uint16_t)(p->flags & PROP_DEFINED);

    wire_put_u16(w, h->class_id);
    wire_put_u16(w, 0); /* weight: "unused and must be zero" */
    wire_put_u64(w, h->body_size);
    wire_put_u16(w, flags);
    if (flags & WIRE_PROP_CONTENT_TYPE)
        wire_put_shortstr(w, p->content_type);
    if (flags & WIRE_PROP_CONTENT_ENCODING)
        wire_put_shortstr(w, p->content_encoding);
    if (flags & WIRE_PROP_HEADERS)
        wire_put_table(w, p->headers);
    if (flags & WIRE_PROP_DELIVERY_MODE)
        wire_put_u8(w, p->delivery_mode);
    if (flags & WIRE_PROP_PRIORITY)
        wire_put_u8(w, p->priority);
    if (flags & WIRE_PROP_CORRELATION_ID)
        wire_put_shortstr(w, p->correlation_id);
    if (flags & WIRE_PROP_REPLY_TO)
        wire_put_shortstr(w, p->reply_to);
    if (flags & WIRE_PROP_EXPIRATION)
        wire_put_shortstr(w, p->expiration);
    if (flags & WIRE_PROP_MESSAGE_ID)
        wire_put_shortstr(w, p->message_id);
    if (flags & WIRE_PROP_TIMESTAMP)
        wire_put_u64(w, p->timestamp);
    if (flags & WIRE_PROP_TYPE)
        wire_put_shortstr(w, p->type);
    if (flags & WIRE_PROP_USER_ID)
        wire_put_shortstr(w, p->user_id);
    if (flags & WIRE_PROP_APP_ID)
        wire_put_shortstr(w, p->app_id);
    if (flags & WIRE_PROP_CLUSTER_ID)
        wire_put_shortstr(w, p->cluster_id);
}
