/* Frames and content headers: the protocol header, the frame splitter (whole, cut, split at
 * any point, malformed), the frame writers and the content-header codec. */
#include <check.h>
#include <stdlib.h>

#include "amqp/frame.h"

#define RAW(...)                                                                                   \
    ((struct wire_bytes){(const uint8_t[]){__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})})

/* ---- Protocol header -------------------------------------------------------------------- */

START_TEST(protocol_header_0_9_1_is_accepted)
{
    ck_assert_int_eq(wire_protocol_header_check(wire_protocol_header, 8), WIRE_OK);
    ck_assert_mem_eq(wire_protocol_header, "AMQP\0\0\x09\x01", 8);
    /* More bytes behind the header (a client that does not wait) do not matter. */
    ck_assert_int_eq(wire_protocol_header_check((const uint8_t *)"AMQP\0\0\x09\x01\x01\0", 10),
                     WIRE_OK);
}
END_TEST

START_TEST(protocol_header_0_9_is_served_as_0_9_1)
{
    /* RabbitMQ answers "AMQP" 1 1 0 9 with connection.start, version 0-9. */
    ck_assert_int_eq(wire_protocol_header_check((const uint8_t *)"AMQP\x01\x01\0\x09", 8), WIRE_OK);
}
END_TEST

START_TEST(protocol_header_prefix_needs_more)
{
    for (size_t len = 0; len < 8; len++)
        ck_assert_int_eq(wire_protocol_header_check(wire_protocol_header, len), WIRE_NEED_MORE);
    ck_assert_int_eq(wire_protocol_header_check((const uint8_t *)"AMQP\x01\x01", 6),
                     WIRE_NEED_MORE);
}
END_TEST

START_TEST(wrong_protocol_headers_are_refused)
{
    static const char *const wrong[] = {
        "GET / HT",           /* HTTP */
        "AMQP\0\0\x09\0",     /* 0-9-0 */
        "AMQP\0\0\x0a\0",     /* 0-10 */
        "AMQP\x01\x01\x08\0", /* 0-8, which RabbitMQ speaks and we do not */
        "AMQP\0\x01\0\0",     /* AMQP 1.0 */
        "AMQP\x03\x01\0\0",   /* AMQP 1.0 SASL */
        "XXXXXXXX",
    };

    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        ck_assert_msg(wire_protocol_header_check((const uint8_t *)wrong[i], 8) == WIRE_ERR_FRAME,
                      "header %zu", i);
    /* Refused as soon as a byte differs, without waiting for all 8. */
    ck_assert_int_eq(wire_protocol_header_check((const uint8_t *)"G", 1), WIRE_ERR_FRAME);
    ck_assert_int_eq(wire_protocol_header_check((const uint8_t *)"AMQP\0\x01", 6), WIRE_ERR_FRAME);
}
END_TEST

/* ---- Splitter --------------------------------------------------------------------------- */

/* basic.ack on channel 5 */
static const uint8_t ack_frame[] = {1, 0, 5, 0, 0, 0, 13, 0, 60, 0,   80,
                                    0, 0, 0, 0, 0, 0, 0,  7, 1,  0xce};

START_TEST(whole_frame_is_split)
{
    struct wire_frame f;
    size_t consumed;

    ck_assert_int_eq(wire_frame_parse(ack_frame, sizeof ack_frame, 131072, &f, &consumed), WIRE_OK);
    ck_assert_uint_eq(consumed, sizeof ack_frame);
    ck_assert_uint_eq(f.type, WIRE_FRAME_METHOD);
    ck_assert_uint_eq(f.channel, 5);
    ck_assert_uint_eq(f.payload.len, 13);
    ck_assert_ptr_eq(f.payload.ptr, ack_frame + 7);
}
END_TEST

START_TEST(cut_frame_needs_more_at_every_length)
{
    struct wire_frame f;
    size_t consumed;

    /* Before the 7-octet header is complete the size is unknown: consumed 0. After, it is
     * the frame's whole length, so the caller can size its buffer. The copy has exactly len
     * octets so that ASan sees any read past the cut. */
    for (size_t len = 0; len < sizeof ack_frame; len++) {
        uint8_t *copy = malloc(len ? len : 1);

        memcpy(copy, ack_frame, len);
        ck_assert_int_eq(wire_frame_parse(copy, len, 131072, &f, &consumed), WIRE_NEED_MORE);
        ck_assert_uint_eq(consumed, len < 7 ? 0 : sizeof ack_frame);
        free(copy);
    }
}
END_TEST

START_TEST(bad_frame_end_is_a_frame_error)
{
    uint8_t bad[sizeof ack_frame];
    struct wire_frame f;
    size_t consumed;

    memcpy(bad, ack_frame, sizeof bad);
    /* RabbitMQ: 501 "{invalid_frame_end_marker,0}" */
    bad[sizeof bad - 1] = 0;
    ck_assert_int_eq(wire_frame_parse(bad, sizeof bad, 131072, &f, &consumed), WIRE_ERR_FRAME);
    bad[sizeof bad - 1] = 0xcf;
    ck_assert_int_eq(wire_frame_parse(bad, sizeof bad, 131072, &f, &consumed), WIRE_ERR_FRAME);
}
END_TEST

START_TEST(unknown_frame_type_is_refused_once_the_frame_is_read)
{
    const uint8_t types[] = {0, 4, 5, 7, 9, 'A', 0xce, 0xff};
    struct wire_frame f;
    size_t consumed;

    for (size_t i = 0; i < sizeof types; i++) {
        /* As RabbitMQ, which reads the whole frame and checks its end octet first (that
         * error wins when both are wrong), then its type. */
        const uint8_t frame[12] = {types[i], 0, 1, 0, 0, 0, 4, 1, 2, 3, 4, WIRE_FRAME_END};

        ck_assert_int_eq(wire_frame_parse(frame, 7, 131072, &f, &consumed), WIRE_NEED_MORE);
        ck_assert_int_eq(wire_frame_parse(frame, 11, 131072, &f, &consumed), WIRE_NEED_MORE);
        ck_assert_int_eq(wire_frame_parse(frame, 12, 131072, &f, &consumed), WIRE_ERR_FRAME);
    }
}
END_TEST

START_TEST(every_frame_type_is_known)
{
    const uint8_t types[] = {WIRE_FRAME_METHOD, WIRE_FRAME_HEADER, WIRE_FRAME_BODY,
                             WIRE_FRAME_HEARTBEAT};
    struct wire_frame f;
    size_t consumed;

    for (size_t i = 0; i < sizeof types; i++) {
        const uint8_t frame[] = {types[i], 0, 0, 0, 0, 0, 0, 0xce};

        ck_assert_int_eq(wire_frame_parse(frame, sizeof frame, 4096, &f, &consumed), WIRE_OK);
        ck_assert_uint_eq(f.type, types[i]);
        ck_assert_uint_eq(f.payload.len, 0);
    }
}
END_TEST

START_TEST(payload_over_frame_max_is_refused_before_it_arrives)
{
    struct wire_frame f;
    size_t consumed;
    /* Headers alone, declaring payloads around frame_max 131072. RabbitMQ 3.10 refuses
     * 131073 (501 "{frame_too_large,131073,131064}") and waits for 131072, allowing the
     * 8-octet envelope on top of frame_max. */
    const uint8_t over[7] = {3, 0, 1, 0, 2, 0, 1}; /* 131073 */
    const uint8_t at[7] = {3, 0, 1, 0, 2, 0, 0};   /* 131072 */
    const uint8_t huge[7] = {3, 0, 1, 0xff, 0xff, 0xff, 0xff};

    ck_assert_int_eq(wire_frame_parse(over, 7, 131072, &f, &consumed), WIRE_ERR_FRAME);
    ck_assert_int_eq(wire_frame_parse(huge, 7, 131072, &f, &consumed), WIRE_ERR_FRAME);
    ck_assert_int_eq(wire_frame_parse(at, 7, 131072, &f, &consumed), WIRE_NEED_MORE);
    ck_assert_uint_eq(consumed, 131072 + 8);
}
END_TEST

START_TEST(frames_before_tune_are_limited_to_the_minimum_size)
{
    struct wire_frame f;
    size_t consumed;
    const uint8_t over[7] = {1, 0, 0, 0, 0, 0x10, 0x01}; /* 4097 */
    const uint8_t at[7] = {1, 0, 0, 0, 0, 0x10, 0x00};   /* 4096 */

    /* RabbitMQ drops a connection that sends 4097 octets of payload before tune-ok. */
    ck_assert_int_eq(wire_frame_parse(over, 7, WIRE_FRAME_MIN_SIZE, &f, &consumed), WIRE_ERR_FRAME);
    ck_assert_int_eq(wire_frame_parse(at, 7, WIRE_FRAME_MIN_SIZE, &f, &consumed), WIRE_NEED_MORE);
}
END_TEST

START_TEST(frame_max_zero_is_no_limit)
{
    struct wire_frame f;
    size_t consumed;
    const uint8_t huge[7] = {3, 0, 1, 0xff, 0xff, 0xff, 0xff};

    ck_assert_int_eq(wire_frame_parse(huge, 7, 0, &f, &consumed), WIRE_NEED_MORE);
    ck_assert_uint_eq(consumed, (size_t)UINT32_MAX + 8);
}
END_TEST

/* A stream of several frames of each type, as a client might send them. */
static size_t build_stream(uint8_t *buf, size_t cap)
{
    struct wire_writer w = wire_writer_init(buf, cap);
    struct wire_basic_publish p = {.exchange = WIRE_BYTES_C("amq.topic"),
                                   .routing_key = WIRE_BYTES_C("a.b.c")};
    struct wire_content_header h = {
        .class_id = WIRE_CLASS_BASIC,
        .body_size = 300,
        .props = {.flags = WIRE_PROP_CONTENT_TYPE, .content_type = WIRE_BYTES_C("text/plain")}};
    uint8_t body[300];

    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    wire_frame_put_heartbeat(&w);
    for (uint16_t ch = 1; ch <= 3; ch++) {
        wire_frame_put_method(&w, ch, WIRE_BASIC_PUBLISH, &p);
        wire_frame_put_header(&w, ch, &h);
        wire_frame_put_body(&w, ch, (struct wire_bytes){body, sizeof body}, 128);
    }
    wire_frame_put_heartbeat(&w);
    ck_assert(!wire_writer_overflowed(&w));
    return wire_writer_used(&w);
}

struct seen {
    uint8_t type;
    uint16_t channel;
    size_t offset, len; /* of the payload in the stream */
};

static void assert_same_frames(const struct seen *got, const struct seen *want, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(got[i].type, want[i].type);
        ck_assert_uint_eq(got[i].channel, want[i].channel);
        ck_assert_uint_eq(got[i].offset, want[i].offset);
        ck_assert_uint_eq(got[i].len, want[i].len);
    }
}

/* Feeds stream to the splitter in pieces of the sizes next_piece() returns, the way a
 * connection would: append what arrived, split all complete frames, keep the rest. */
static int feed(const uint8_t *stream, size_t len, size_t (*next_piece)(void), struct seen *out)
{
    uint8_t buf[4096];
    size_t have = 0, fed = 0, base = 0; /* base: stream offset of buf[0] */
    int n = 0;

    while (fed < len) {
        size_t piece = next_piece();

        if (piece > len - fed)
            piece = len - fed;
        memcpy(buf + have, stream + fed, piece);
        have += piece;
        fed += piece;
        for (;;) {
            struct wire_frame f;
            size_t consumed;
            int rc = wire_frame_parse(buf, have, 128, &f, &consumed);

            if (rc == WIRE_NEED_MORE)
                break;
            ck_assert_int_eq(rc, WIRE_OK);
            out[n++] = (struct seen){f.type, f.channel, base + (size_t)(f.payload.ptr - buf),
                                     f.payload.len};
            memmove(buf, buf + consumed, have - consumed);
            have -= consumed;
            base += consumed;
        }
    }
    ck_assert_uint_eq(have, 0);
    return n;
}

static size_t one_byte(void)
{
    return 1;
}

static size_t whole(void)
{
    return 1 << 20;
}

static unsigned long rng_state;

static size_t random_piece(void)
{
    rng_state = rng_state * 6364136223846793005ul + 1442695040888963407ul;
    return 1 + (size_t)((rng_state >> 33) % 97);
}

START_TEST(frames_split_alike_whatever_the_pieces)
{
    uint8_t stream[4096];
    size_t len = build_stream(stream, sizeof stream);
    struct seen ref[64], got[64];
    int nref = feed(stream, len, whole, ref), n;

    /* heartbeat, 3 x (method, header, 3 body frames of 120+120+60), heartbeat */
    ck_assert_int_eq(nref, 2 + 3 * 5);
    ck_assert_uint_eq(ref[3].type, WIRE_FRAME_BODY);
    ck_assert_uint_eq(ref[3].len, 120);
    ck_assert_uint_eq(ref[5].len, 60);

    n = feed(stream, len, one_byte, got);
    ck_assert_int_eq(n, nref);
    assert_same_frames(got, ref, n);

    for (unsigned long seed = 1; seed <= 50; seed++) {
        rng_state = seed;
        n = feed(stream, len, random_piece, got);
        ck_assert_int_eq(n, nref);
        assert_same_frames(got, ref, n);
    }
}
END_TEST

/* ---- Writers ---------------------------------------------------------------------------- */

START_TEST(method_frame_is_written_with_envelope)
{
    uint8_t buf[64];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_basic_ack a = {.delivery_tag = 7, .multiple = true};

    wire_frame_put_method(&w, 5, WIRE_BASIC_ACK, &a);
    ck_assert_uint_eq(wire_writer_used(&w), sizeof ack_frame);
    ck_assert_mem_eq(buf, ack_frame, sizeof ack_frame);
}
END_TEST

START_TEST(heartbeat_frame_bytes)
{
    uint8_t buf[16];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_frame_put_heartbeat(&w);
    ck_assert_uint_eq(wire_writer_used(&w), 8);
    ck_assert_mem_eq(buf, ((uint8_t[]){8, 0, 0, 0, 0, 0, 0, 0xce}), 8);
}
END_TEST

START_TEST(body_is_cut_so_each_frame_fits_frame_max)
{
    static uint8_t body[10000], buf[11000];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    size_t off = 0, body_off = 0;
    int frames = 0;

    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)i;
    wire_frame_put_body(&w, 9, (struct wire_bytes){body, sizeof body}, 4096);
    ck_assert(!wire_writer_overflowed(&w));
    /* 4088 + 4088 + 1824 octets: each frame, envelope included, is at most 4096. */
    while (off < wire_writer_used(&w)) {
        struct wire_frame f;
        size_t consumed;

        ck_assert_int_eq(
            wire_frame_parse(buf + off, wire_writer_used(&w) - off, 4096 - 8, &f, &consumed),
            WIRE_OK);
        ck_assert_uint_le(consumed, 4096);
        ck_assert_uint_eq(f.type, WIRE_FRAME_BODY);
        ck_assert_uint_eq(f.channel, 9);
        ck_assert_mem_eq(f.payload.ptr, body + body_off, f.payload.len);
        body_off += f.payload.len;
        off += consumed;
        frames++;
    }
    ck_assert_int_eq(frames, 3);
    ck_assert_uint_eq(body_off, sizeof body);
}
END_TEST

START_TEST(empty_body_writes_no_frame)
{
    uint8_t buf[16];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_frame_put_body(&w, 1, (struct wire_bytes){NULL, 0}, 4096);
    ck_assert_uint_eq(wire_writer_used(&w), 0);
}
END_TEST

START_TEST(body_with_no_frame_max_is_one_frame)
{
    static uint8_t body[70000], buf[70100];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_frame_put_body(&w, 1, (struct wire_bytes){body, sizeof body}, 0);
    ck_assert_uint_eq(wire_writer_used(&w), sizeof body + 8);
}
END_TEST

START_TEST(body_prefix_matches_the_body_frame)
{
    uint8_t prefix[WIRE_FRAME_HEADER_SIZE], buf[32];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_frame_body_prefix(prefix, 0x1234, 3);
    wire_frame_put_raw(&w, WIRE_FRAME_BODY, 0x1234, WIRE_BYTES_C("abc"));
    ck_assert_mem_eq(prefix, buf, WIRE_FRAME_HEADER_SIZE);
    ck_assert_mem_eq(prefix, ((uint8_t[]){3, 0x12, 0x34, 0, 0, 0, 3}), 7);
    ck_assert_uint_eq(buf[7 + 3], WIRE_FRAME_END);
}
END_TEST

START_TEST(frame_begin_end_patch_the_size)
{
    uint8_t buf[32];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    size_t begin;

    wire_put_u8(&w, 0xAA); /* a frame need not start at offset 0 */
    begin = wire_frame_begin(&w, WIRE_FRAME_METHOD, 2);
    wire_put_bytes(&w, "12345", 5);
    wire_frame_end(&w, begin);
    ck_assert_uint_eq(wire_writer_used(&w), 1 + 7 + 5 + 1);
    ck_assert_mem_eq(buf, ((uint8_t[]){0xAA, 1, 0, 2, 0, 0, 0, 5, '1', '2', '3', '4', '5', 0xce}),
                     14);
}
END_TEST

START_TEST(frame_writer_overflow_is_reported)
{
    uint8_t buf[10];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_basic_ack a = {.delivery_tag = 7};

    wire_frame_put_method(&w, 5, WIRE_BASIC_ACK, &a);
    ck_assert(wire_writer_overflowed(&w));
    ck_assert_uint_eq(wire_writer_used(&w), sizeof ack_frame);
}
END_TEST

/* ---- Content headers -------------------------------------------------------------------- */

/* class 60, weight 0, body size 16, all 14 properties. */
static const uint8_t full_header[] = {
    0,    60,  0,   0,   0,    0,    0,    0,    0,   0,   0,   16,  0xff,
    0xfc, 10,  't', 'e', 'x',  't',  '/',  'p',  'l', 'a', 'i', 'n', /* content-type */
    4,    'g', 'z', 'i', 'p',                                        /* content-encoding */
    0,    0,   0,   7,   1,    'h',  'S',  0,    0,   0,   0,        /* headers {h: ""} */
    2,                                                               /* delivery-mode */
    9,                                                               /* priority */
    1,    'c',                                                       /* correlation-id */
    2,    'r', 't',                                                  /* reply-to */
    4,    '6', '0', '0', '0',                                        /* expiration */
    1,    'm',                                                       /* message-id */
    0,    0,   0,   0,   0x65, 0x53, 0xf1, 0x00,                     /* timestamp */
    1,    't',                                                       /* type */
    5,    'g', 'u', 'e', 's',  't',                                  /* user-id */
    1,    'a',                                                       /* app-id */
    1,    'x',                                                       /* cluster-id */
};

START_TEST(full_content_header_golden)
{
    struct wire_content_header h;
    uint8_t buf[256];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_field f;

    ck_assert_int_eq(
        wire_content_header_decode((struct wire_bytes){full_header, sizeof full_header}, &h),
        WIRE_OK);
    ck_assert_uint_eq(h.class_id, 60);
    ck_assert_uint_eq(h.body_size, 16);
    ck_assert_uint_eq(h.props.flags, 0xfffc);
    ck_assert(wire_bytes_eq_cstr(h.props.content_type, "text/plain"));
    ck_assert(wire_bytes_eq_cstr(h.props.content_encoding, "gzip"));
    ck_assert(wire_table_find(h.props.headers, "h", &f));
    ck_assert_uint_eq(h.props.delivery_mode, 2);
    ck_assert_uint_eq(h.props.priority, 9);
    ck_assert(wire_bytes_eq_cstr(h.props.correlation_id, "c"));
    ck_assert(wire_bytes_eq_cstr(h.props.reply_to, "rt"));
    ck_assert(wire_bytes_eq_cstr(h.props.expiration, "6000"));
    ck_assert(wire_bytes_eq_cstr(h.props.message_id, "m"));
    ck_assert_uint_eq(h.props.timestamp, 1700000000u);
    ck_assert(wire_bytes_eq_cstr(h.props.type, "t"));
    ck_assert(wire_bytes_eq_cstr(h.props.user_id, "guest"));
    ck_assert(wire_bytes_eq_cstr(h.props.app_id, "a"));
    ck_assert(wire_bytes_eq_cstr(h.props.cluster_id, "x"));

    wire_content_header_encode(&w, &h);
    ck_assert_uint_eq(wire_writer_used(&w), sizeof full_header);
    ck_assert_mem_eq(buf, full_header, sizeof full_header);
}
END_TEST

START_TEST(each_property_alone_round_trips)
{
    uint16_t flag = (uint16_t)(1u << (15 - _i)); /* content-type .. cluster-id */
    struct wire_content_header h, back;
    uint8_t buf[256], again[256];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_writer w2 = wire_writer_init(again, sizeof again);

    ck_assert_int_eq(
        wire_content_header_decode((struct wire_bytes){full_header, sizeof full_header}, &h),
        WIRE_OK);
    h.props.flags = flag;
    wire_content_header_encode(&w, &h);
    ck_assert_uint_eq(buf[12] << 8 | buf[13], flag);
    ck_assert_int_eq(
        wire_content_header_decode((struct wire_bytes){buf, wire_writer_used(&w)}, &back), WIRE_OK);
    ck_assert_uint_eq(back.props.flags, flag);
    wire_content_header_encode(&w2, &back);
    ck_assert_uint_eq(wire_writer_used(&w2), wire_writer_used(&w));
    ck_assert_mem_eq(again, buf, wire_writer_used(&w));
}
END_TEST

START_TEST(header_without_properties)
{
    struct wire_content_header h;

    ck_assert_int_eq(wire_content_header_decode(RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0), &h),
                     WIRE_OK);
    ck_assert_uint_eq(h.body_size, 256);
    ck_assert_uint_eq(h.props.flags, 0);
}
END_TEST

START_TEST(header_shorter_than_its_fixed_part_is_a_frame_error)
{
    struct wire_content_header h;

    /* RabbitMQ: 501 "type 2, all octets = <<...>>: unknown_frame" for 10 octets. */
    for (size_t len = 0; len < 12; len++)
        ck_assert_int_eq(wire_content_header_decode((struct wire_bytes){full_header, len}, &h),
                         WIRE_ERR_FRAME);
    /* The fixed part but no flags word. */
    ck_assert_int_eq(wire_content_header_decode((struct wire_bytes){full_header, 12}, &h),
                     WIRE_ERR_SYNTAX);
    ck_assert_int_eq(wire_content_header_decode((struct wire_bytes){full_header, 13}, &h),
                     WIRE_ERR_SYNTAX);
}
END_TEST

START_TEST(truncated_properties_are_a_syntax_error_at_every_length)
{
    struct wire_content_header h;

    for (size_t len = 14; len < sizeof full_header; len++) {
        uint8_t *copy = malloc(len);

        memcpy(copy, full_header, len);
        ck_assert_msg(wire_content_header_decode((struct wire_bytes){copy, len}, &h) ==
                          WIRE_ERR_SYNTAX,
                      "cut at %zu", len);
        free(copy);
    }
}
END_TEST

START_TEST(trailing_octets_after_properties_are_a_syntax_error)
{
    struct wire_content_header h;

    /* RabbitMQ's channel crashes on these (541); 502 is the spec's code. */
    ck_assert_int_eq(
        wire_content_header_decode(RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 1, 2), &h),
        WIRE_ERR_SYNTAX);
}
END_TEST

START_TEST(bad_headers_table_is_a_syntax_error)
{
    struct wire_content_header h;

    ck_assert_int_eq(
        wire_content_header_decode(
            RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 4, 1, 'a', 'Z', 0), &h),
        WIRE_ERR_SYNTAX);
}
END_TEST

START_TEST(weight_other_than_zero_is_an_unexpected_frame)
{
    struct wire_content_header h;

    /* RabbitMQ: 505 "expected content header for class 60, got non content header frame" */
    ck_assert_int_eq(wire_content_header_decode(RAW(0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), &h),
                     WIRE_ERR_UNEXPECTED_FRAME);
}
END_TEST

START_TEST(other_class_is_left_to_the_caller)
{
    struct wire_content_header h;

    /* RabbitMQ: 505 "expected content header for class 60, got one for class 50 instead",
     * which the caller says, knowing the class it expected. */
    ck_assert_int_eq(
        wire_content_header_decode(
            RAW(0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 'j', 'u', 'n', 'k'), &h),
        WIRE_OK);
    ck_assert_uint_eq(h.class_id, 50);
    ck_assert_uint_eq(h.body_size, 3);
    ck_assert_uint_eq(h.props.flags, 0);
}
END_TEST

START_TEST(flag_bit_1_is_ignored_as_rabbitmq_does)
{
    /* Decoded values borrow the payload, so it must outlive them (not a RAW() literal
     * scoped to one assertion). */
    static const uint8_t payload[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x80, 0x02, 1, 'x'};
    struct wire_content_header h;
    uint8_t buf[64];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    /* RabbitMQ 3.10 accepts flags 0x8002 with a content-type and delivers the message. */
    ck_assert_int_eq(wire_content_header_decode((struct wire_bytes){payload, sizeof payload}, &h),
                     WIRE_OK);
    ck_assert_uint_eq(h.props.flags, WIRE_PROP_CONTENT_TYPE);
    ck_assert(wire_bytes_eq_cstr(h.props.content_type, "x"));
    /* and we never write it */
    h.props.flags |= 0x0002;
    wire_content_header_encode(&w, &h);
    ck_assert_uint_eq(buf[13], 0);
}
END_TEST

START_TEST(empty_continuation_word_is_accepted)
{
    static const uint8_t payload[] = {0, 60, 0,    0,    0, 0, 0, 0, 0, 0,
                                      0, 3,  0x80, 0x01, 0, 1, 0, 0, 1, 'x'};
    struct wire_content_header h;

    /* Spec 4.2.6.1: bit 0 set means another flags word follows; one with no property flags
     * (and possibly its own continuation bit) is well-formed. */
    ck_assert_int_eq(wire_content_header_decode((struct wire_bytes){payload, sizeof payload}, &h),
                     WIRE_OK);
    ck_assert_uint_eq(h.props.flags, WIRE_PROP_CONTENT_TYPE);
    ck_assert(wire_bytes_eq_cstr(h.props.content_type, "x"));
}
END_TEST

START_TEST(continuation_with_flags_that_do_not_exist_is_a_syntax_error)
{
    struct wire_content_header h;

    /* Basic has 14 properties: a second word naming a 15th is refused. */
    ck_assert_int_eq(
        wire_content_header_decode(
            RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x80, 0x00, 1, 'x'), &h),
        WIRE_ERR_SYNTAX);
    /* A continuation bit with no word behind it. */
    ck_assert_int_eq(
        wire_content_header_decode(RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x00, 0x01), &h),
        WIRE_ERR_SYNTAX);
    ck_assert_int_eq(
        wire_content_header_decode(RAW(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x00), &h),
        WIRE_ERR_SYNTAX);
}
END_TEST

START_TEST(header_frame_is_written_with_envelope)
{
    uint8_t buf[256];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_content_header h;
    struct wire_frame f;
    size_t consumed;

    ck_assert_int_eq(
        wire_content_header_decode((struct wire_bytes){full_header, sizeof full_header}, &h),
        WIRE_OK);
    wire_frame_put_header(&w, 7, &h);
    ck_assert_int_eq(wire_frame_parse(buf, wire_writer_used(&w), 0, &f, &consumed), WIRE_OK);
    ck_assert_uint_eq(consumed, wire_writer_used(&w));
    ck_assert_uint_eq(f.type, WIRE_FRAME_HEADER);
    ck_assert_uint_eq(f.channel, 7);
    ck_assert_uint_eq(f.payload.len, sizeof full_header);
    ck_assert_mem_eq(f.payload.ptr, full_header, sizeof full_header);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("wire frames");
    TCase *tc = tcase_create("protocol header");

    tcase_add_test(tc, protocol_header_0_9_1_is_accepted);
    tcase_add_test(tc, protocol_header_0_9_is_served_as_0_9_1);
    tcase_add_test(tc, protocol_header_prefix_needs_more);
    tcase_add_test(tc, wrong_protocol_headers_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("splitter");
    tcase_add_test(tc, whole_frame_is_split);
    tcase_add_test(tc, cut_frame_needs_more_at_every_length);
    tcase_add_test(tc, bad_frame_end_is_a_frame_error);
    tcase_add_test(tc, unknown_frame_type_is_refused_once_the_frame_is_read);
    tcase_add_test(tc, every_frame_type_is_known);
    tcase_add_test(tc, payload_over_frame_max_is_refused_before_it_arrives);
    tcase_add_test(tc, frames_before_tune_are_limited_to_the_minimum_size);
    tcase_add_test(tc, frame_max_zero_is_no_limit);
    tcase_add_test(tc, frames_split_alike_whatever_the_pieces);
    suite_add_tcase(s, tc);

    tc = tcase_create("writers");
    tcase_add_test(tc, method_frame_is_written_with_envelope);
    tcase_add_test(tc, heartbeat_frame_bytes);
    tcase_add_test(tc, body_is_cut_so_each_frame_fits_frame_max);
    tcase_add_test(tc, empty_body_writes_no_frame);
    tcase_add_test(tc, body_with_no_frame_max_is_one_frame);
    tcase_add_test(tc, body_prefix_matches_the_body_frame);
    tcase_add_test(tc, frame_begin_end_patch_the_size);
    tcase_add_test(tc, frame_writer_overflow_is_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("content header");
    tcase_add_test(tc, full_content_header_golden);
    tcase_add_loop_test(tc, each_property_alone_round_trips, 0, 14);
    tcase_add_test(tc, header_without_properties);
    tcase_add_test(tc, header_shorter_than_its_fixed_part_is_a_frame_error);
    tcase_add_test(tc, truncated_properties_are_a_syntax_error_at_every_length);
    tcase_add_test(tc, trailing_octets_after_properties_are_a_syntax_error);
    tcase_add_test(tc, bad_headers_table_is_a_syntax_error);
    tcase_add_test(tc, weight_other_than_zero_is_an_unexpected_frame);
    tcase_add_test(tc, other_class_is_left_to_the_caller);
    tcase_add_test(tc, flag_bit_1_is_ignored_as_rabbitmq_does);
    tcase_add_test(tc, empty_continuation_word_is_accepted);
    tcase_add_test(tc, continuation_with_flags_that_do_not_exist_is_a_syntax_error);
    tcase_add_test(tc, header_frame_is_written_with_envelope);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
