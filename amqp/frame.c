/* Frames: the protocol header, the frame splitter and the frame writer. */
#include "amqp/frame.h"

#include <assert.h>

const uint8_t wire_protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

/* The header of AMQP 0-9, which RabbitMQ answers exactly as 0-9-1 (the framing is the same). */
static const uint8_t protocol_header_0_9[8] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};

static bool is_prefix(const uint8_t *buf, size_t len, const uint8_t header[8])
{
    return len == 0 || memcmp(buf, header, len < 8 ? len : 8) == 0;
}

int wire_protocol_header_check(const uint8_t *buf, size_t len)
{
    bool prefix =
        is_prefix(buf, len, wire_protocol_header) || is_prefix(buf, len, protocol_header_0_9);

    if (!prefix)
        return WIRE_ERR_FRAME;
    return len < 8 ? WIRE_NEED_MORE : WIRE_OK;
}

static bool frame_type_known(uint8_t type)
{
    return type == WIRE_FRAME_METHOD || type == WIRE_FRAME_HEADER || type == WIRE_FRAME_BODY ||
           type == WIRE_FRAME_HEARTBEAT;
}

int wire_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max, struct wire_frame *frame,
                     size_t *consumed)
{
    struct wire_reader r = wire_reader_init(buf, len);
    struct wire_bytes payload;
    uint32_t size;
    size_t total;
    uint8_t type, end;
    uint16_t channel;

    *consumed = 0;
    if (!wire_u8(&r, &type) || !wire_u16(&r, &channel) || !wire_u32(&r, &size))
        return WIRE_NEED_MORE;
    /* Checked before any payload is buffered, so a peer cannot make us wait for (or allocate)
     * more than frame_max. The spec counts the 8 octets of envelope in frame_max; RabbitMQ
     * allows them on top ("frame_too_large" only once the payload itself exceeds frame_max,
     * its FRAME_SIZE_FUDGE for clients that forget the envelope), and so do we. */
    if (frame_max != 0 && size > frame_max)
        return WIRE_ERR_FRAME;
#if SIZE_MAX <= UINT32_MAX
    if (size > SIZE_MAX - WIRE_FRAME_OVERHEAD) /* the total would not fit a 32-bit size_t */
        return WIRE_ERR_FRAME;
#endif
    total = (size_t)size + WIRE_FRAME_OVERHEAD;
    if (!wire_bytes(&r, size, &payload) || !wire_u8(&r, &end)) {
        *consumed = total;
        return WIRE_NEED_MORE;
    }
    /* As RabbitMQ: the whole frame is read, then its end octet checked, then its type. */
    if (end != WIRE_FRAME_END || !frame_type_known(type))
        return WIRE_ERR_FRAME;
    *frame = (struct wire_frame){.type = type, .channel = channel, .payload = payload};
    *consumed = total;
    return WIRE_OK;
}

/* ---- Writing -------------------------------------------------------------------------- */

size_t wire_frame_begin(struct wire_writer *w, uint8_t type, uint16_t channel)
{
    size_t begin = wire_writer_used(w);

    wire_put_u8(w, type);
    wire_put_u16(w, channel);
    wire_put_u32(w, 0); /* size, patched by wire_frame_end */
    return begin;
}

void wire_frame_end(struct wire_writer *w, size_t begin)
{
    size_t size = wire_writer_used(w) - begin - WIRE_FRAME_HEADER_SIZE;

    assert(size <= UINT32_MAX);
    wire_patch_u32(w, begin + 3, (uint32_t)size);
    wire_put_u8(w, WIRE_FRAME_END);
}

void wire_frame_put_method(struct wire_writer *w, uint16_t channel, uint32_t method_id,
                           const void *args)
{
    size_t begin = wire_frame_begin(w, WIRE_FRAME_METHOD, channel);

    wire_method_encode(w, method_id, args);
    wire_frame_end(w, begin);
}

void wire_frame_put_header(struct wire_writer *w, uint16_t channel,
                           const struct wire_content_header *h)
{
    size_t begin = wire_frame_begin(w, WIRE_FRAME_HEADER, channel);

    wire_content_header_encode(w, h);
    wire_frame_end(w, begin);
}

void wire_frame_put_raw(struct wire_writer *w, uint8_t type, uint16_t channel,
                        struct wire_bytes payload)
{
    assert(payload.len <= UINT32_MAX);
    wire_put_u8(w, type);
    wire_put_u16(w, channel);
    wire_put_u32(w, (uint32_t)payload.len);
    wire_put_bytes(w, payload.ptr, payload.len);
    wire_put_u8(w, WIRE_FRAME_END);
}

void wire_frame_put_body(struct wire_writer *w, uint16_t channel, struct wire_bytes body,
                         uint32_t frame_max)
{
    size_t room = SIZE_MAX;

    /* The frames we send count their envelope in frame_max, as the spec says, since not
     * every client allows RabbitMQ's slack. An empty body is sent as no frame at all. */
    assert(frame_max == 0 || frame_max > WIRE_FRAME_OVERHEAD);
    if (frame_max != 0)
        room = frame_max - WIRE_FRAME_OVERHEAD;
    if (room > UINT32_MAX)
        room = UINT32_MAX;
    for (size_t off = 0; off < body.len;) {
        size_t n = body.len - off < room ? body.len - off : room;

        wire_frame_put_raw(w, WIRE_FRAME_BODY, channel,
                           (struct wire_bytes){.ptr = body.ptr + off, .len = n});
        off += n;
    }
}

void wire_frame_put_heartbeat(struct wire_writer *w)
{
    wire_frame_put_raw(w, WIRE_FRAME_HEARTBEAT, 0, (struct wire_bytes){0});
}

void wire_frame_body_prefix(uint8_t out[WIRE_FRAME_HEADER_SIZE], uint16_t channel, uint32_t len)
{
    struct wire_writer w = wire_writer_init(out, WIRE_FRAME_HEADER_SIZE);

    wire_put_u8(&w, WIRE_FRAME_BODY);
    wire_put_u16(&w, channel);
    wire_put_u32(&w, len);
}
