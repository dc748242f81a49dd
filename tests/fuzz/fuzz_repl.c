/* Fuzz target for the replication stream's decoders (src/cluster/repl_proto.h): the frame
 * splitter and the payload decoder of every frame type, the handshake's HELLO and
 * CHALLENGE included. The first input byte picks the mode:
 *
 *   even  the rest is a byte stream as a peer sends it: split into frames (the crc gates
 *         each one) and each frame decoded
 *   odd   the second byte is a frame type and the rest its payload, decoded without the crc
 *         gate (so the fuzzer reaches the field checks)
 *
 * Besides crashes and sanitizer reports it checks what the decoder promises: lengths and
 * ranges hold (segment numbers, data sizes, ascending lists), and a decoded frame encodes
 * back to exactly the same payload, so nothing accepted was read loosely. */
#include "src/cluster/repl_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Encodes m again; its payload must be the one decoded. */
static void reencode(const struct repl_frame *f, const struct repl_msg *m)
{
    struct buf b = {0};
    struct repl_history h = {0};

    switch (m->type) {
    case REPL_HELLO: {
        const struct repl_hello *x = &m->u.hello;
        struct repl_manifest_seg *segs;
        if (x->version != REPL_VERSION)
            return;
        segs = calloc(x->segment_count + 1, sizeof(*segs));
        check(segs != NULL);
        for (uint32_t i = 0; i < x->segment_count; i++) {
            repl_manifest_entry(x->segments, i, &segs[i].segment, &segs[i].size);
            check(segs[i].segment >= 1 && segs[i].segment <= REPL_SEGMENT_MAX);
            check(i == 0 || segs[i].segment > segs[i - 1].segment);
        }
        repl_history_from_list(x->history, x->history_count, &h);
        repl_put_hello(&b, x->node_id, x->epoch_seen, x->nonce, &h, segs, x->segment_count,
                       x->defs_size, x->defs_crc);
        free(segs);
        break;
    }
    case REPL_CHALLENGE:
        repl_put_challenge(&b, m->u.challenge.epoch, m->u.challenge.nonce, m->u.challenge.mac,
                           m->u.challenge.node_id);
        break;
    case REPL_AUTH:
        repl_put_auth(&b, m->u.mac);
        break;
    case REPL_CREATE:
        check(m->u.create.header.len >= 1 && m->u.create.header.len <= REPL_HEADER_MAX);
        repl_put_create(&b, m->pos, m->u.create.segment, m->u.create.header);
        break;
    case REPL_APPEND:
        check(m->u.append.data.len >= 1 && m->u.append.data.len <= REPL_CHUNK_MAX);
        check(m->u.append.file == REPL_FILE_DEFS ? m->u.append.segment == 0
                                                 : m->u.append.segment >= 1);
        repl_put_append(&b, m->pos, (enum repl_file)m->u.append.file, m->u.append.segment,
                        m->u.append.offset, m->u.append.data);
        break;
    case REPL_APPEND_LZ4: {
        /* Compressed data does not encode back to the same bytes (the compressor may choose
         * differently): what it decompresses to must, through a compression and back. */
        static uint8_t raw[REPL_CHUNK_MAX], again[REPL_CHUNK_MAX];
        struct repl_frame f2;
        struct repl_msg m2;
        check(m->u.append.raw_len >= 1 && m->u.append.raw_len <= REPL_CHUNK_MAX);
        if (repl_lz4_unpack(m, raw) != 0)
            return;
        struct wire_bytes data = {raw, m->u.append.raw_len};
        if (!repl_put_append_lz4(&b, m->pos, (enum repl_file)m->u.append.file,
                                 m->u.append.segment, m->u.append.offset, data)) {
            buf_free(&b);
            return;
        }
        check(repl_frame_next(b.data, b.len, REPL_FRAME_MAX, &f2) == REPL_OK);
        check(repl_decode(&f2, &m2) == REPL_OK && m2.type == REPL_APPEND_LZ4);
        check(m2.pos == m->pos && m2.u.append.offset == m->u.append.offset &&
              m2.u.append.raw_len == m->u.append.raw_len);
        check(repl_lz4_unpack(&m2, again) == 0 && memcmp(again, raw, data.len) == 0);
        buf_free(&b);
        return;
    }
    case REPL_TRUNCATE:
        repl_put_truncate(&b, m->pos, (enum repl_file)m->u.truncate.file, m->u.truncate.segment,
                          m->u.truncate.size);
        break;
    case REPL_UNLINK:
        repl_put_unlink(&b, m->pos, m->u.unlink_segment);
        break;
    case REPL_REPLACE:
        check(m->u.replace.offset + m->u.replace.data.len <= m->u.replace.total);
        repl_put_replace(&b, m->pos, m->u.replace.total, m->u.replace.offset, m->u.replace.data);
        break;
    case REPL_EPOCH:
        repl_history_from_list(m->u.epoch.entries, m->u.epoch.count, &h);
        repl_put_epoch(&b, m->u.epoch.epoch, &h);
        break;
    case REPL_HEARTBEAT:
        check(m->u.heartbeat.commit <= m->u.heartbeat.head);
        repl_put_heartbeat(&b, m->u.heartbeat.head, m->u.heartbeat.commit, m->u.heartbeat.flags);
        break;
    case REPL_ACK:
        repl_put_ack(&b, m->pos);
        break;
    case REPL_ERROR: {
        /* The reason is a C string when encoded: compare up to a NUL in it. */
        char reason[256];
        size_t n = m->u.error.reason.len;
        memcpy(reason, m->u.error.reason.ptr, n);
        reason[n] = '\0';
        if (memchr(reason, '\0', n) != NULL)
            return;
        repl_put_error(&b, (enum repl_error)m->u.error.code, reason);
        break;
    }
    default:
        check(0);
    }
    check(b.len == REPL_FRAME_HEADER + f->payload.len);
    check(b.data[0] == f->type);
    check(f->payload.len == 0 ||
          memcmp(b.data + REPL_FRAME_HEADER, f->payload.ptr, f->payload.len) == 0);
    buf_free(&b);
    repl_history_free(&h);
}

static void decode(const struct repl_frame *f)
{
    struct repl_msg m;
    int rc = repl_decode(f, &m);

    check(rc == REPL_OK || rc == REPL_ERR_SYNTAX || rc == REPL_ERR_TYPE);
    if (rc == REPL_OK)
        reencode(f, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if ((data[0] & 1) == 0) {
        const uint8_t *p = data + 1;
        size_t left = size - 1;
        for (;;) {
            struct repl_frame f;
            int rc = repl_frame_next(p, left, REPL_FRAME_MAX, &f);
            if (rc != REPL_OK)
                break;
            check(f.size <= left && f.size == REPL_FRAME_HEADER + f.payload.len);
            decode(&f);
            p += f.size;
            left -= f.size;
        }
    } else {
        struct repl_frame f = {
            .type = data[1],
            .payload = {data + 2, size - 2},
            .size = size,
        };
        if (f.payload.len <= REPL_FRAME_MAX)
            decode(&f);
    }
    return 0;
}
