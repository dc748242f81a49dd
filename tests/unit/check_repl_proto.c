/* The replication wire format (src/cluster/repl_proto.h): every frame type encodes and
 * decodes back to the same fields; the frame splitter waits for whole frames and refuses
 * oversized lengths, unknown types and checksum mismatches; payloads that are short, long
 * or out of range are refused; the handshake macs depend on every input; the divergence
 * point of two epoch histories; the epoch files. */
#define _GNU_SOURCE
#include "src/cluster/repl_proto.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/store/crc32c.h"
#include "tests/unit/check_repl_util.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

/* Splits and decodes the single frame in b; asserts it is whole and valid. */
static struct repl_msg decode_one(const struct buf *b)
{
    struct repl_frame f;
    struct repl_msg m;

    ck_assert_int_eq(repl_frame_next(b->data, b->len, REPL_FRAME_MAX, &f), REPL_OK);
    ck_assert_uint_eq(f.size, b->len);
    ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
    ck_assert_uint_eq(m.type, f.type);
    return m;
}

/* A frame of type with this payload and a correct crc, as a peer could send it. */
static void raw_frame(struct buf *b, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t *p;
    uint32_t crc;

    buf_reserve(b, REPL_FRAME_HEADER + len);
    p = b->data + b->len;
    p[0] = type;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    if (len > 0)
        memcpy(p + REPL_FRAME_HEADER, payload, len);
    crc = crc32c_update(crc32c(p, 5), p + REPL_FRAME_HEADER, len);
    p[5] = (uint8_t)(crc >> 24);
    p[6] = (uint8_t)(crc >> 16);
    p[7] = (uint8_t)(crc >> 8);
    p[8] = (uint8_t)crc;
    b->len += REPL_FRAME_HEADER + len;
}

/* Decodes type with payload (crc made right): the decoder's verdict. */
static int decode_payload(uint8_t type, const uint8_t *payload, size_t len)
{
    struct buf b = {0};
    struct repl_frame f;
    struct repl_msg m;
    int rc;

    raw_frame(&b, type, payload, len);
    ck_assert_int_eq(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f), REPL_OK);
    rc = repl_decode(&f, &m);
    buf_free(&b);
    return rc;
}

static const uint8_t nonce_a[REPL_NONCE_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t nonce_b[REPL_NONCE_BYTES] = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

static void sample_history(struct repl_history *h)
{
    *h = (struct repl_history){0};
    ck_assert(repl_history_push(h, 5, 1));
    ck_assert(repl_history_push(h, 9, 7));
    ck_assert(repl_history_push(h, 12, 7));
}

/* Every frame type once, in one buffer. */
static void encode_all(struct buf *b)
{
    static const struct repl_manifest_seg segs[] = {{1, 16}, {3, 4096}, {99999999, 1ull << 33}};
    static const uint8_t mac[REPL_MAC_BYTES] = {0xAA, 0xBB};
    struct repl_history h;

    sample_history(&h);
    repl_put_hello(b, wire_cstr("node-b"), 12, nonce_a, &h, segs, 3, 1234, 0xDEADBEEF);
    repl_put_challenge(b, 13, nonce_b, mac, wire_cstr("node-a"));
    repl_put_auth(b, mac);
    repl_put_create(b, 100, 7,
                    (struct wire_bytes){(const uint8_t *)"WRNSEG\r\n\0\0\0\1\0\0\0\7", 16});
    repl_put_append(b, 200, REPL_FILE_SEGMENT, 7, 16, wire_cstr("record bytes"));
    repl_put_append(b, 201, REPL_FILE_DEFS, 0, 4096, wire_cstr("d"));
    repl_put_truncate(b, 300, REPL_FILE_SEGMENT, 6, 12345);
    repl_put_unlink(b, 400, 5);
    repl_put_replace(b, 500, 10, 4, wire_cstr("abcdef"));
    repl_put_epoch(b, 13, &h);
    repl_put_heartbeat(b, 600, 550, REPL_HB_SYNC | REPL_HB_LIVE);
    repl_put_ack(b, 590);
    repl_put_error(b, REPL_ERROR_STALE_EPOCH, "leader epoch is stale");
    repl_history_free(&h);
}

/* ---- Frames ------------------------------------------------------------------------------- */

START_TEST(every_frame_type_round_trips)
{
    struct buf b = {0};
    struct repl_frame f;
    struct repl_msg m;
    size_t at = 0;
    uint8_t type = 0;

    encode_all(&b);
    while (at < b.len) {
        ck_assert_int_eq(repl_frame_next(b.data + at, b.len - at, REPL_FRAME_MAX, &f), REPL_OK);
        ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
        ck_assert_uint_eq(m.type, ++type);
        switch (m.type) {
        case REPL_HELLO: {
            struct repl_history h;
            uint32_t seg;
            uint64_t size;
            ck_assert_uint_eq(m.u.hello.version, REPL_VERSION);
            ck_assert(wire_bytes_eq_cstr(m.u.hello.node_id, "node-b"));
            ck_assert_uint_eq(m.u.hello.epoch_seen, 12);
            ck_assert_mem_eq(m.u.hello.nonce, nonce_a, REPL_NONCE_BYTES);
            ck_assert_uint_eq(m.u.hello.history_count, 3);
            repl_history_from_list(m.u.hello.history, 3, &h);
            ck_assert_uint_eq(h.v[1].epoch, 9);
            ck_assert_uint_eq(h.v[1].segment, 7);
            repl_history_free(&h);
            ck_assert_uint_eq(m.u.hello.segment_count, 3);
            repl_manifest_entry(m.u.hello.segments, 2, &seg, &size);
            ck_assert_uint_eq(seg, 99999999);
            ck_assert_uint_eq(size, 1ull << 33);
            ck_assert_uint_eq(m.u.hello.defs_size, 1234);
            ck_assert_uint_eq(m.u.hello.defs_crc, 0xDEADBEEF);
            break;
        }
        case REPL_CHALLENGE:
            ck_assert_uint_eq(m.u.challenge.epoch, 13);
            ck_assert_mem_eq(m.u.challenge.nonce, nonce_b, REPL_NONCE_BYTES);
            ck_assert_uint_eq(m.u.challenge.mac[0], 0xAA);
            ck_assert(wire_bytes_eq_cstr(m.u.challenge.node_id, "node-a"));
            break;
        case REPL_AUTH:
            ck_assert_uint_eq(m.u.mac[1], 0xBB);
            break;
        case REPL_CREATE:
            ck_assert_uint_eq(m.pos, 100);
            ck_assert_uint_eq(m.u.create.segment, 7);
            ck_assert_uint_eq(m.u.create.header.len, 16);
            break;
        case REPL_APPEND:
            ck_assert_uint_eq(m.pos, 200);
            ck_assert_uint_eq(m.u.append.file, REPL_FILE_SEGMENT);
            ck_assert_uint_eq(m.u.append.segment, 7);
            ck_assert_uint_eq(m.u.append.offset, 16);
            ck_assert(wire_bytes_eq_cstr(m.u.append.data, "record bytes"));
            /* The second APPEND: the definitions log. */
            at += f.size;
            ck_assert_int_eq(repl_frame_next(b.data + at, b.len - at, REPL_FRAME_MAX, &f), REPL_OK);
            ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
            ck_assert_uint_eq(m.u.append.file, REPL_FILE_DEFS);
            ck_assert_uint_eq(m.u.append.offset, 4096);
            break;
        case REPL_TRUNCATE:
            ck_assert_uint_eq(m.pos, 300);
            ck_assert_uint_eq(m.u.truncate.segment, 6);
            ck_assert_uint_eq(m.u.truncate.size, 12345);
            break;
        case REPL_UNLINK:
            ck_assert_uint_eq(m.pos, 400);
            ck_assert_uint_eq(m.u.unlink_segment, 5);
            break;
        case REPL_REPLACE:
            ck_assert_uint_eq(m.pos, 500);
            ck_assert_uint_eq(m.u.replace.total, 10);
            ck_assert_uint_eq(m.u.replace.offset, 4);
            ck_assert(wire_bytes_eq_cstr(m.u.replace.data, "abcdef"));
            break;
        case REPL_EPOCH:
            ck_assert_uint_eq(m.u.epoch.epoch, 13);
            ck_assert_uint_eq(m.u.epoch.count, 3);
            ck_assert_uint_eq(repl_history_entry(m.u.epoch.entries, 2).epoch, 12);
            break;
        case REPL_HEARTBEAT:
            ck_assert_uint_eq(m.u.heartbeat.head, 600);
            ck_assert_uint_eq(m.u.heartbeat.commit, 550);
            ck_assert_uint_eq(m.u.heartbeat.flags, REPL_HB_SYNC | REPL_HB_LIVE);
            break;
        case REPL_ACK:
            ck_assert_uint_eq(m.pos, 590);
            break;
        case REPL_ERROR:
            ck_assert_uint_eq(m.u.error.code, REPL_ERROR_STALE_EPOCH);
            ck_assert(wire_bytes_eq_cstr(m.u.error.reason, "leader epoch is stale"));
            break;
        }
        at += f.size;
    }
    ck_assert_uint_eq(type, REPL_ERROR);
    buf_free(&b);
}
END_TEST

START_TEST(append_head_sent_apart_from_its_data_is_the_same_frame)
{
    struct buf b = {0};
    uint8_t head[REPL_APPEND_HEAD];
    struct wire_bytes data = wire_cstr("some bytes of a segment");

    repl_put_append(&b, 77, REPL_FILE_SEGMENT, 3, 1000, data);
    repl_append_head(head, 77, REPL_FILE_SEGMENT, 3, 1000, data);
    ck_assert_uint_eq(b.len, sizeof(head) + data.len);
    ck_assert_mem_eq(b.data, head, sizeof(head));
    ck_assert_mem_eq(b.data + sizeof(head), data.ptr, data.len);
    buf_free(&b);
}
END_TEST

/* APPEND_LZ4: compressible data goes compressed and comes back the same; data LZ4 cannot
 * shrink is left to a plain APPEND; a block that does not give its stated length, or is
 * corrupt, is refused by the unpacking. */
START_TEST(append_lz4_round_trips_and_refuses_bad_blocks)
{
    static uint8_t data[REPL_CHUNK_MAX], out[REPL_CHUNK_MAX];
    struct buf b = {0};
    struct repl_frame f;
    struct repl_msg m;
    uint32_t x = 12345;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)("{\"task\": \"send_email\", \"id\": 0}"[i % 32]);
    ck_assert(repl_put_append_lz4(&b, 9, REPL_FILE_SEGMENT, 4, 4096,
                                  (struct wire_bytes){data, sizeof(data)}));
    ck_assert_uint_lt(b.len, sizeof(data) / 20);
    ck_assert_int_eq(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f), REPL_OK);
    ck_assert_int_eq(repl_decode(&f, &m), REPL_OK);
    ck_assert_int_eq(m.type, REPL_APPEND_LZ4);
    ck_assert_uint_eq(m.pos, 9);
    ck_assert_uint_eq(m.u.append.segment, 4);
    ck_assert_uint_eq(m.u.append.offset, 4096);
    ck_assert_uint_eq(m.u.append.raw_len, sizeof(data));
    ck_assert_int_eq(repl_lz4_unpack(&m, out), 0);
    ck_assert_mem_eq(out, data, sizeof(data));

    /* A length that is not what the block gives, and a block cut short. */
    m.u.append.raw_len = sizeof(data) - 1;
    ck_assert_int_eq(repl_lz4_unpack(&m, out), -1);
    m.u.append.raw_len = sizeof(data);
    m.u.append.data.len /= 2;
    ck_assert_int_eq(repl_lz4_unpack(&m, out), -1);
    buf_free(&b);

    /* Random bytes do not shrink: nothing is written, a plain APPEND is for the caller. */
    for (size_t i = 0; i < 4096; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    ck_assert(!repl_put_append_lz4(&b, 1, REPL_FILE_SEGMENT, 1, 0, (struct wire_bytes){data, 4096}));
    ck_assert_uint_eq(b.len, 0);
    /* Nor does one byte. */
    ck_assert(!repl_put_append_lz4(&b, 1, REPL_FILE_DEFS, 0, 0, (struct wire_bytes){data, 1}));
    buf_free(&b);
}
END_TEST

START_TEST(incomplete_frames_need_more_at_every_length)
{
    struct buf b = {0};
    struct repl_frame f;

    encode_all(&b);
    ck_assert_int_eq(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f), REPL_OK);
    for (size_t n = 0; n < f.size; n++)
        ck_assert_int_eq(repl_frame_next(b.data, n, REPL_FRAME_MAX, &f), REPL_NEED_MORE);
    buf_free(&b);
}
END_TEST

START_TEST(every_flipped_bit_of_a_frame_is_refused)
{
    struct buf b = {0};
    struct repl_frame f;

    repl_put_append(&b, 9, REPL_FILE_SEGMENT, 2, 16, wire_cstr("payload"));
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (uint8_t)(1u << bit);
            int rc = repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f);
            ck_assert_msg(rc != REPL_OK, "bit %d of byte %zu flipped, frame accepted", bit, i);
            b.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f), REPL_OK);
    buf_free(&b);
}
END_TEST

START_TEST(crc_mismatch_is_reported_as_such)
{
    struct buf b = {0};
    struct repl_frame f;

    repl_put_ack(&b, 1);
    b.data[b.len - 1] ^= 1;
    ck_assert_int_eq(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f), REPL_ERR_CRC);
    buf_free(&b);
}
END_TEST

START_TEST(oversized_length_is_refused_before_the_payload_arrives)
{
    uint8_t hdr[REPL_FRAME_HEADER] = {REPL_APPEND, 0, 0x20, 0, 1}; /* 2 MiB + 1 */
    struct repl_frame f;

    ck_assert_int_eq(repl_frame_next(hdr, sizeof(hdr), REPL_FRAME_MAX, &f), REPL_ERR_TOO_BIG);
    hdr[0] = REPL_ACK;
    hdr[2] = 0;
    hdr[3] = 2; /* 513 */
    ck_assert_int_eq(repl_frame_next(hdr, sizeof(hdr), REPL_SMALL_FRAME_MAX, &f), REPL_ERR_TOO_BIG);
    hdr[0] = 0xFF;
    ck_assert_int_eq(repl_frame_next(hdr, sizeof(hdr), REPL_FRAME_MAX, &f), REPL_ERR_TYPE);
    hdr[0] = 0;
    ck_assert_int_eq(repl_frame_next(hdr, sizeof(hdr), REPL_FRAME_MAX, &f), REPL_ERR_TYPE);
    hdr[0] = REPL_APPEND_LZ4 + 1;
    ck_assert_int_eq(repl_frame_next(hdr, sizeof(hdr), REPL_FRAME_MAX, &f), REPL_ERR_TYPE);
}
END_TEST

/* Fixed-size frames: any shorter or longer payload is refused. */
START_TEST(truncated_or_padded_payloads_are_refused)
{
    struct buf b = {0};
    size_t at = 0;

    encode_all(&b);
    while (at < b.len) {
        struct repl_frame f;
        ck_assert_int_eq(repl_frame_next(b.data + at, b.len - at, REPL_FRAME_MAX, &f), REPL_OK);
        uint8_t *p = malloc(f.payload.len + 1);
        memcpy(p, f.payload.ptr, f.payload.len);
        /* Frames ending in data take a shorter payload as shorter data, down to their fixed
         * part; every frame is refused below that. */
        size_t fixed = f.payload.len;
        if (f.type == REPL_CREATE || f.type == REPL_APPEND || f.type == REPL_REPLACE)
            fixed = f.type == REPL_CREATE ? 13 : (f.type == REPL_APPEND ? 22 : 24);
        for (size_t n = 0; n < fixed; n++) {
            ck_assert_msg(decode_payload(f.type, p, n) == REPL_ERR_SYNTAX,
                          "%s cut to %zu bytes accepted", repl_type_name(f.type), n);
        }
        if (f.type != REPL_CREATE && f.type != REPL_APPEND && f.type != REPL_REPLACE &&
            f.type != REPL_HELLO) {
            p[f.payload.len] = 0;
            ck_assert_msg(decode_payload(f.type, p, f.payload.len + 1) == REPL_ERR_SYNTAX,
                          "%s with a byte more accepted", repl_type_name(f.type));
        }
        free(p);
        at += f.size;
    }
    buf_free(&b);
}
END_TEST

START_TEST(fields_out_of_range_are_refused)
{
    struct buf b = {0};
    struct repl_history bad = {0};
    static const struct repl_manifest_seg twice[] = {{3, 16}, {3, 20}};
    static const struct repl_manifest_seg zero[] = {{0, 16}};
    uint8_t p[64];
    struct wire_writer w;

    /* APPEND: segment 0, a segment number of 9 digits, a defs append naming a segment, an
     * unknown file, no data. */
    w = wire_writer_init(p, sizeof(p));
    wire_put_u64(&w, 1), wire_put_u8(&w, REPL_FILE_SEGMENT), wire_put_u32(&w, 0),
        wire_put_u64(&w, 16), wire_put_u8(&w, 'x');
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w)), REPL_ERR_SYNTAX);
    p[9] = 0x05, p[10] = 0xF5, p[11] = 0xE1, p[12] = 0x00; /* 100000000 */
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w)), REPL_ERR_SYNTAX);
    p[9] = 0, p[10] = 0, p[11] = 0, p[12] = 1;
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w)), REPL_OK);
    p[8] = REPL_FILE_DEFS;
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w)), REPL_ERR_SYNTAX);
    p[8] = 7;
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w)), REPL_ERR_SYNTAX);
    p[8] = REPL_FILE_SEGMENT;
    ck_assert_int_eq(decode_payload(REPL_APPEND, p, wire_writer_used(&w) - 1), REPL_ERR_SYNTAX);

    /* CREATE with a header over 64 bytes. */
    w = wire_writer_init(p, sizeof(p));
    wire_put_u64(&w, 1), wire_put_u32(&w, 1);
    ck_assert_int_eq(decode_payload(REPL_CREATE, p, 12 + 52), REPL_OK);
    {
        uint8_t big[12 + 65] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
        ck_assert_int_eq(decode_payload(REPL_CREATE, big, sizeof(big)), REPL_ERR_SYNTAX);
    }

    /* REPLACE: a piece past the end of the file, an offset past it, an empty piece of a
     * non-empty file. */
    repl_put_replace(&b, 1, 10, 4, wire_cstr("abcdef"));
    memcpy(p, b.data + REPL_FRAME_HEADER, 30);
    b.len = 0;
    p[15] = 9; /* total 9 < 4 + 6 */
    ck_assert_int_eq(decode_payload(REPL_REPLACE, p, 30), REPL_ERR_SYNTAX);
    p[15] = 3, p[23] = 4; /* offset 4 > total 3 */
    ck_assert_int_eq(decode_payload(REPL_REPLACE, p, 24), REPL_ERR_SYNTAX);
    p[15] = 10, p[23] = 0;
    ck_assert_int_eq(decode_payload(REPL_REPLACE, p, 24), REPL_ERR_SYNTAX);
    p[15] = 0;
    ck_assert_int_eq(decode_payload(REPL_REPLACE, p, 24), REPL_OK); /* an empty file */

    /* HEARTBEAT: commit past head, unknown flags. */
    repl_put_heartbeat(&b, 10, 10, 0);
    memcpy(p, b.data + REPL_FRAME_HEADER, 17);
    b.len = 0;
    ck_assert_int_eq(decode_payload(REPL_HEARTBEAT, p, 17), REPL_OK);
    p[15] = 11;
    ck_assert_int_eq(decode_payload(REPL_HEARTBEAT, p, 17), REPL_ERR_SYNTAX);
    p[15] = 10, p[16] = 4;
    ck_assert_int_eq(decode_payload(REPL_HEARTBEAT, p, 17), REPL_ERR_SYNTAX);

    /* HELLO: a manifest listing a segment twice or segment 0; a history going back; the
     * wrong magic; an empty node id. */
    repl_put_hello(&b, wire_cstr("n"), 0, nonce_a, &bad, twice, 2, 0, 0);
    ck_assert_int_eq(repl_decode(&(struct repl_frame){.type = REPL_HELLO,
                                                      .payload = {b.data + REPL_FRAME_HEADER,
                                                                  b.len - REPL_FRAME_HEADER}},
                                 &(struct repl_msg){0}),
                     REPL_ERR_SYNTAX);
    b.len = 0;
    repl_put_hello(&b, wire_cstr("n"), 0, nonce_a, &bad, zero, 1, 0, 0);
    ck_assert_int_eq(
        decode_payload(REPL_HELLO, b.data + REPL_FRAME_HEADER, b.len - REPL_FRAME_HEADER),
        REPL_ERR_SYNTAX);
    b.len = 0;
    bad.v = (struct repl_epoch_start[]){{5, 3}, {4, 4}};
    bad.count = 2;
    repl_put_hello(&b, wire_cstr("n"), 0, nonce_a, &bad, NULL, 0, 0, 0);
    ck_assert_int_eq(
        decode_payload(REPL_HELLO, b.data + REPL_FRAME_HEADER, b.len - REPL_FRAME_HEADER),
        REPL_ERR_SYNTAX);
    b.len = 0;
    bad.v = (struct repl_epoch_start[]){{5, 3}, {6, 2}}; /* segments going back */
    repl_put_epoch(&b, 6, &bad);
    ck_assert_int_eq(
        decode_payload(REPL_EPOCH, b.data + REPL_FRAME_HEADER, b.len - REPL_FRAME_HEADER),
        REPL_ERR_SYNTAX);
    b.len = 0;
    bad.count = 0;
    repl_put_hello(&b, wire_cstr("n"), 0, nonce_a, &bad, NULL, 0, 0, 0);
    b.data[REPL_FRAME_HEADER] = 'X';
    ck_assert_int_eq(
        decode_payload(REPL_HELLO, b.data + REPL_FRAME_HEADER, b.len - REPL_FRAME_HEADER),
        REPL_ERR_SYNTAX);
    b.data[REPL_FRAME_HEADER] = 'W';
    b.data[REPL_FRAME_HEADER + 10] = 0; /* node id length */
    ck_assert_int_eq(
        decode_payload(REPL_HELLO, b.data + REPL_FRAME_HEADER, b.len - REPL_FRAME_HEADER),
        REPL_ERR_SYNTAX);
    buf_free(&b);
}
END_TEST

START_TEST(hello_of_another_version_decodes_to_its_version_only)
{
    uint8_t p[10];

    memcpy(p, REPL_MAGIC, 8);
    p[8] = 0, p[9] = 2;
    struct buf b = {0};
    raw_frame(&b, REPL_HELLO, p, sizeof(p));
    struct repl_msg m = decode_one(&b);
    ck_assert_uint_eq(m.u.hello.version, 2);
    buf_free(&b);
}
END_TEST

/* ---- Authentication ----------------------------------------------------------------------- */

START_TEST(mac_depends_on_every_input)
{
    struct wire_bytes s = wire_cstr("secret"), s2 = wire_cstr("secreT");
    struct wire_bytes a = wire_cstr("node-a"), bb = wire_cstr("node-b");
    uint8_t base[REPL_MAC_BYTES], other[REPL_MAC_BYTES];
    uint8_t n2[REPL_NONCE_BYTES];

    memcpy(n2, nonce_a, sizeof(n2));
    n2[31] ^= 1;
    repl_mac(base, s, REPL_ROLE_LEADER, nonce_a, nonce_b, bb, a, 7);
    repl_mac(other, s, REPL_ROLE_LEADER, nonce_a, nonce_b, bb, a, 7);
    ck_assert(repl_mac_equal(base, other));
    repl_mac(other, s2, REPL_ROLE_LEADER, nonce_a, nonce_b, bb, a, 7);
    ck_assert(!repl_mac_equal(base, other));
    repl_mac(other, s, REPL_ROLE_FOLLOWER, nonce_a, nonce_b, bb, a, 7);
    ck_assert(!repl_mac_equal(base, other));
    repl_mac(other, s, REPL_ROLE_LEADER, n2, nonce_b, bb, a, 7);
    ck_assert(!repl_mac_equal(base, other));
    repl_mac(other, s, REPL_ROLE_LEADER, nonce_b, nonce_a, bb, a, 7);
    ck_assert(!repl_mac_equal(base, other));
    repl_mac(other, s, REPL_ROLE_LEADER, nonce_a, nonce_b, a, bb, 7);
    ck_assert(!repl_mac_equal(base, other));
    repl_mac(other, s, REPL_ROLE_LEADER, nonce_a, nonce_b, bb, a, 8);
    ck_assert(!repl_mac_equal(base, other));
}
END_TEST

/* ---- Histories and divergence ------------------------------------------------------------- */

static struct repl_history hist(const uint64_t *pairs, size_t n)
{
    struct repl_history h = {0};

    for (size_t i = 0; i < n; i++)
        ck_assert(repl_history_push(&h, pairs[2 * i], (uint32_t)pairs[2 * i + 1]));
    return h;
}

START_TEST(divergence_follows_the_last_common_epoch)
{
    static const uint64_t l1[] = {5, 1, 9, 7, 12, 10};
    struct repl_history leader = hist(l1, 3), f;

    /* Same history: nothing diverged. */
    f = hist(l1, 3);
    ck_assert_uint_eq(repl_divergence(&leader, &f), UINT32_MAX);
    repl_history_free(&f);
    /* The follower stopped in epoch 9 (it may have written past the leader's end of 9):
     * epoch 12 starts at 10 on the leader. */
    f = hist(l1, 2);
    ck_assert_uint_eq(repl_divergence(&leader, &f), 10);
    repl_history_free(&f);
    /* The follower followed an epoch 10 the leader never saw, from segment 8. */
    static const uint64_t f2[] = {5, 1, 9, 7, 10, 8};
    f = hist(f2, 3);
    ck_assert_uint_eq(repl_divergence(&leader, &f), 8);
    repl_history_free(&f);
    /* ... from segment 11: the leader's epoch 12 at 10 comes first. */
    static const uint64_t f3[] = {5, 1, 9, 7, 10, 11};
    f = hist(f3, 3);
    ck_assert_uint_eq(repl_divergence(&leader, &f), 10);
    repl_history_free(&f);
    /* Nothing in common, or nothing at all: everything is copied again. */
    static const uint64_t f4[] = {4, 1};
    f = hist(f4, 1);
    ck_assert_uint_eq(repl_divergence(&leader, &f), 0);
    repl_history_free(&f);
    f = (struct repl_history){0};
    ck_assert_uint_eq(repl_divergence(&leader, &f), 0);
    /* An epoch known to both but started at different segments is not common: the logs
     * share epoch 5 only, and the follower's next epoch starts first. */
    static const uint64_t f5[] = {5, 1, 9, 6};
    f = hist(f5, 2);
    ck_assert_uint_eq(repl_divergence(&leader, &f), 6);
    repl_history_free(&f);
    repl_history_free(&leader);
}
END_TEST

START_TEST(history_refuses_epochs_going_back)
{
    struct repl_history h = {0};

    ck_assert(repl_history_push(&h, 3, 5));
    ck_assert(!repl_history_push(&h, 3, 6));
    ck_assert(!repl_history_push(&h, 2, 6));
    ck_assert(!repl_history_push(&h, 4, 4));
    ck_assert(repl_history_push(&h, 4, 5));
    ck_assert_uint_eq(h.count, 2);
    repl_history_free(&h);
}
END_TEST

/* ---- Epoch files -------------------------------------------------------------------------- */

START_TEST(epoch_files_round_trip_and_refuse_garbage)
{
    char dir[512], path[600];
    struct repl_history h;
    uint64_t epoch;

    repl_test_mkdtemp(dir, sizeof(dir), "check_repl_proto");
    ck_assert_int_eq(repl_epoch_read(dir, &epoch), 0);
    ck_assert_uint_eq(epoch, 0);
    ck_assert_int_eq(repl_history_read(dir, &h), 0);
    ck_assert_uint_eq(h.count, 0);

    ck_assert_int_eq(repl_begin_epoch(dir, 17, 4), 0);
    ck_assert_int_eq(repl_begin_epoch(dir, 23, 9), 0);
    ck_assert_int_eq(repl_begin_epoch(dir, 20, 12), -EINVAL);
    ck_assert_int_eq(repl_epoch_read(dir, &epoch), 0);
    ck_assert_uint_eq(epoch, 23);
    ck_assert_int_eq(repl_history_read(dir, &h), 0);
    ck_assert_uint_eq(h.count, 2);
    ck_assert_uint_eq(h.v[1].epoch, 23);
    ck_assert_uint_eq(h.v[1].segment, 9);
    repl_history_free(&h);
    snprintf(path, sizeof(path), "%s/cluster.epochs", dir);
    {
        size_t len;
        uint8_t *text = repl_test_read_file(path, &len);
        ck_assert_uint_eq(len, strlen("17 4\n23 9\n"));
        ck_assert_mem_eq(text, "17 4\n23 9\n", len);
        free(text);
    }
    ck_assert_int_eq(repl_epoch_write(dir, 40), 0);
    ck_assert_int_eq(repl_epoch_read(dir, &epoch), 0);
    ck_assert_uint_eq(epoch, 40);

    repl_test_write_file(path, "17 4\n23\n", 8);
    ck_assert_int_eq(repl_history_read(dir, &h), -EINVAL);
    repl_test_write_file(path, "17 4\n16 5\n", 10);
    ck_assert_int_eq(repl_history_read(dir, &h), -EINVAL);
    snprintf(path, sizeof(path), "%s/cluster.epoch", dir);
    repl_test_write_file(path, "99999999999999999999\n", 21);
    ck_assert_int_eq(repl_epoch_read(dir, &epoch), -EINVAL);
    repl_test_write_file(path, "x\n", 2);
    ck_assert_int_eq(repl_epoch_read(dir, &epoch), -EINVAL);
    repl_test_rm_rf(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("repl_proto");
    TCase *tc = tcase_create("frames");
    SRunner *sr;
    int failed;

    log_set_level(LOG_LEVEL_NONE);
    tcase_add_test(tc, every_frame_type_round_trips);
    tcase_add_test(tc, append_head_sent_apart_from_its_data_is_the_same_frame);
    tcase_add_test(tc, append_lz4_round_trips_and_refuses_bad_blocks);
    tcase_add_test(tc, incomplete_frames_need_more_at_every_length);
    tcase_add_test(tc, every_flipped_bit_of_a_frame_is_refused);
    tcase_add_test(tc, crc_mismatch_is_reported_as_such);
    tcase_add_test(tc, oversized_length_is_refused_before_the_payload_arrives);
    tcase_add_test(tc, truncated_or_padded_payloads_are_refused);
    tcase_add_test(tc, fields_out_of_range_are_refused);
    tcase_add_test(tc, hello_of_another_version_decodes_to_its_version_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("handshake");
    tcase_add_test(tc, mac_depends_on_every_input);
    tcase_add_test(tc, divergence_follows_the_last_common_epoch);
    tcase_add_test(tc, history_refuses_epochs_going_back);
    tcase_add_test(tc, epoch_files_round_trip_and_refuse_garbage);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
