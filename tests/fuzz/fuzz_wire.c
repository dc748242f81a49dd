/* Fuzz target for every amqp/ entry point that takes peer bytes.
 *
 * The input is read as a connection's byte stream: an optional protocol header, then frames
 * split with the negotiated frame_max. Method and content-header frames are decoded, every
 * field table in them walked to the bottom, and what decodes is encoded and decoded again,
 * which must give the same bytes. The whole input is also checked and walked as a raw field
 * table, since the iterators must stay inside even a table that failed its check. A broken
 * property aborts, so libFuzzer reports it like a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FRAME_MAX 131072u /* RabbitMQ's default frame_max */
#define WALK_MAX_DEPTH 40      /* deeper than any checked table, bounds unchecked ones */

static uint8_t out1[2 * FUZZ_FRAME_MAX];
static uint8_t out2[2 * FUZZ_FRAME_MAX];

static void require(bool ok)
{
    if (!ok)
        abort();
}

static void walk_value(const struct wire_field *f, int depth);

static void walk_table(struct wire_table t, int depth)
{
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;

    if (depth > WALK_MAX_DEPTH)
        return;
    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &name, &f)) {
        require(name.len <= 255);
        walk_value(&f, depth);
    }
}

static void walk_array(struct wire_array a, int depth)
{
    struct wire_array_iter it;
    struct wire_field f;

    if (depth > WALK_MAX_DEPTH)
        return;
    wire_array_iter_init(&it, a);
    while (wire_array_next(&it, &f))
        walk_value(&f, depth);
}

static void walk_value(const struct wire_field *f, int depth)
{
    int64_t i;

    require(wire_field_eq(f, f));
    (void)wire_field_int(f, &i);
    if (f->type == 'F')
        walk_table(f->v.table, depth + 1);
    else if (f->type == 'A')
        walk_array(f->v.array, depth + 1);
}

/* A checked table, re-encoded entry by entry, must still pass the check. */
static void table_round_trip(struct wire_table t)
{
    struct wire_writer w = wire_writer_init(out2, sizeof out2);
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;
    size_t begin = wire_table_begin(&w);

    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &name, &f))
        wire_table_put_bytes_name(&w, name, &f);
    wire_table_end(&w, begin);
    if (!wire_writer_overflowed(&w))
        require(wire_table_check((struct wire_bytes){out2 + 4, wire_writer_used(&w) - 4}));
}

/* The tables of a decoded method. */
static void walk_method_tables(const struct wire_method *m)
{
    const struct wire_table *t = NULL;

    switch (m->id) {
    case WIRE_CONNECTION_START:
        t = &m->u.connection_start.server_properties;
        break;
    case WIRE_CONNECTION_START_OK:
        t = &m->u.connection_start_ok.client_properties;
        break;
    case WIRE_EXCHANGE_DECLARE:
        t = &m->u.exchange_declare.arguments;
        break;
    case WIRE_EXCHANGE_BIND:
        t = &m->u.exchange_bind.arguments;
        break;
    case WIRE_EXCHANGE_UNBIND:
        t = &m->u.exchange_unbind.arguments;
        break;
    case WIRE_QUEUE_DECLARE:
        t = &m->u.queue_declare.arguments;
        break;
    case WIRE_QUEUE_BIND:
        t = &m->u.queue_bind.arguments;
        break;
    case WIRE_QUEUE_UNBIND:
        t = &m->u.queue_unbind.arguments;
        break;
    case WIRE_BASIC_CONSUME:
        t = &m->u.basic_consume.arguments;
        break;
    default:
        return;
    }
    require(wire_table_check(t->raw));
    walk_table(*t, 0);
    table_round_trip(*t);
}

/* decode(encode(m)) must succeed and encode to the same bytes again. (encode(decode(x)) can
 * differ from x: unused bits in a bit octet are dropped.) */
static void method_round_trip(const struct wire_method *m)
{
    struct wire_writer w1 = wire_writer_init(out1, sizeof out1);
    struct wire_writer w2 = wire_writer_init(out2, sizeof out2);
    struct wire_method again;

    require(wire_method_info(m->id) != NULL);
    wire_method_encode(&w1, m->id, &m->u);
    require(!wire_writer_overflowed(&w1));
    require(wire_method_decode((struct wire_bytes){out1, wire_writer_used(&w1)}, &again) ==
            WIRE_OK);
    require(again.id == m->id);
    wire_method_encode(&w2, again.id, &again.u);
    require(wire_writer_used(&w2) == wire_writer_used(&w1));
    require(memcmp(out1, out2, wire_writer_used(&w1)) == 0);
}

static void header_round_trip(const struct wire_content_header *h)
{
    struct wire_writer w1 = wire_writer_init(out1, sizeof out1);
    struct wire_writer w2 = wire_writer_init(out2, sizeof out2);
    struct wire_content_header again;

    wire_content_header_encode(&w1, h);
    require(!wire_writer_overflowed(&w1));
    require(wire_content_header_decode((struct wire_bytes){out1, wire_writer_used(&w1)}, &again) ==
            WIRE_OK);
    wire_content_header_encode(&w2, &again);
    require(wire_writer_used(&w2) == wire_writer_used(&w1));
    require(memcmp(out1, out2, wire_writer_used(&w1)) == 0);
}

static void decode_frame(const struct wire_frame *f)
{
    struct wire_method m;
    struct wire_content_header h;
    int rc;

    if (f->type == WIRE_FRAME_METHOD) {
        rc = wire_method_decode(f->payload, &m);
        require(rc == WIRE_OK || rc == WIRE_ERR_FRAME || rc == WIRE_ERR_SYNTAX ||
                rc == WIRE_ERR_COMMAND_INVALID);
        if (rc == WIRE_OK) {
            walk_method_tables(&m);
            method_round_trip(&m);
        }
    } else if (f->type == WIRE_FRAME_HEADER) {
        rc = wire_content_header_decode(f->payload, &h);
        require(rc == WIRE_OK || rc == WIRE_ERR_FRAME || rc == WIRE_ERR_SYNTAX ||
                rc == WIRE_ERR_UNEXPECTED_FRAME);
        if (rc == WIRE_OK && h.class_id == WIRE_CLASS_BASIC) {
            if (h.props.flags & WIRE_PROP_HEADERS) {
                walk_table(h.props.headers, 0);
                table_round_trip(h.props.headers);
            }
            header_round_trip(&h);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_frame f;
    size_t off = 0, consumed;
    int rc = wire_protocol_header_check(data, size);

    if (rc == WIRE_OK)
        off = 8;
    while (off < size) {
        rc = wire_frame_parse(data + off, size - off, FUZZ_FRAME_MAX, &f, &consumed);
        if (rc != WIRE_OK) {
            require(rc == WIRE_NEED_MORE || rc == WIRE_ERR_FRAME);
            require(rc != WIRE_NEED_MORE || consumed == 0 || consumed > size - off);
            break;
        }
        require(consumed >= WIRE_FRAME_OVERHEAD && consumed <= size - off);
        decode_frame(&f);
        off += consumed;
    }

    /* The same bytes as a table: checked, then walked whether or not the check passed. */
    struct wire_table t = {.raw = {data, size}};
    bool ok = wire_table_check(t.raw);

    walk_table(t, 0);
    if (ok)
        table_round_trip(t);
    return 0;
}
