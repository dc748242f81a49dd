/* Field tables and arrays: checking, iterating, comparing and writing them. */
#include "amqp/table.h"

#include <assert.h>

/* Size of each fixed-width field type; 0 for the types that carry a length or none.
 *
 * These are RabbitMQ's letters, which its own parser and rabbit_common's writer use, not the
 * 0-9-1 spec's: 's' is a signed 16-bit integer (the spec's 'U'; the spec's 's' short string
 * does not exist), 'l' is a signed 64-bit integer (the spec's 'L'), 'x' is a byte array.
 * RabbitMQ 3.10 also accepts 'L' as an unsigned 64-bit integer (rabbitmq-c writes its U64
 * that way), so we do; it refuses 'U', and so do we. */
static const uint8_t field_width[256] = {
    ['t'] = 1, ['b'] = 1, ['B'] = 1, ['s'] = 2, ['u'] = 2, ['I'] = 4, ['i'] = 4,
    ['f'] = 4, ['D'] = 5, ['l'] = 8, ['L'] = 8, ['d'] = 8, ['T'] = 8,
};

static bool check_value(struct wire_reader *r, int depth);

/* The entries of a table (named) or an array (unnamed), inside their own bounds. */
static bool check_entries(struct wire_reader *r, bool named, int depth)
{
    struct wire_bytes name;

    while (wire_left(r) > 0) {
        if ((named && !wire_shortstr(r, &name)) || !check_value(r, depth))
            return false;
    }
    return true;
}

/* A nested table or array: its length, then its entries one level deeper. */
static bool check_nested(struct wire_reader *r, bool named, int depth)
{
    struct wire_reader sub;
    uint32_t size;

    if (depth > WIRE_TABLE_MAX_DEPTH || !wire_u32(r, &size) || !wire_sub(r, size, &sub))
        return false;
    return check_entries(&sub, named, depth);
}

static bool check_value(struct wire_reader *r, int depth)
{
    struct wire_bytes skip;
    uint8_t type;

    if (!wire_u8(r, &type))
        return false;
    if (field_width[type] != 0)
        return wire_bytes(r, field_width[type], &skip);

    switch (type) {
    case 'S':
    case 'x':
        return wire_longstr(r, &skip);
    case 'F':
    case 'A':
        return check_nested(r, type == 'F', depth + 1);
    case 'V':
        return true;
    default:
        return false; /* an unknown type is an error, never a guess */
    }
}

bool wire_table_check(struct wire_bytes raw)
{
    struct wire_reader r = wire_reader_init(raw.ptr, raw.len);

    return check_entries(&r, true, 0);
}

bool wire_read_table(struct wire_reader *r, struct wire_table *out)
{
    struct wire_bytes raw;

    if (!wire_longstr(r, &raw) || !wire_table_check(raw))
        return false;
    out->raw = raw;
    return true;
}

/* ---- Reading values ------------------------------------------------------------------- */

static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Two's complement of the low bits, without relying on implementation-defined conversion. */
static int64_t sign_extend(uint64_t v, unsigned bits)
{
    uint64_t sign = UINT64_C(1) << (bits - 1);

    if ((v & sign) == 0)
        return (int64_t)v;
    v |= ~((sign << 1) - 1);   /* the bits above the value become ones */
    return -(int64_t)(~v) - 1; /* -(~v + 1), which cannot overflow */
}

/* One value, bounded by r; false on an unknown type or missing bytes. */
static bool read_value(struct wire_reader *r, struct wire_field *f)
{
    struct wire_bytes b = {0};
    uint64_t u = 0;
    uint32_t bits32;

    if (!wire_u8(r, &f->type))
        return false;
    if (field_width[f->type] != 0) {
        if (!wire_bytes(r, field_width[f->type], &b))
            return false;
        u = read_be(b.ptr, b.len);
    }

    switch (f->type) {
    case 't':
        f->v.boolean = u != 0; /* RabbitMQ reads any non-zero octet as true */
        return true;
    case 'b':
    case 's':
    case 'I':
    case 'l':
        f->v.i = sign_extend(u, 8 * (unsigned)b.len);
        return true;
    case 'B':
    case 'u':
    case 'i':
    case 'L':
    case 'T':
        f->v.u = u;
        return true;
    case 'f':
        bits32 = (uint32_t)u;
        memcpy(&f->v.f32, &bits32, sizeof f->v.f32);
        return true;
    case 'd':
        memcpy(&f->v.f64, &u, sizeof f->v.f64);
        return true;
    case 'D':
        f->v.decimal.scale = b.ptr[0];
        f->v.decimal.value = (uint32_t)read_be(b.ptr + 1, 4);
        return true;
    case 'S':
    case 'x':
        return wire_longstr(r, &f->v.bytes);
    case 'F':
        return wire_longstr(r, &f->v.table.raw);
    case 'A':
        return wire_longstr(r, &f->v.array.raw);
    case 'V':
        return true;
    default:
        return false;
    }
}

void wire_table_iter_init(struct wire_table_iter *it, struct wire_table t)
{
    it->r = wire_reader_init(t.raw.ptr, t.raw.len);
}

bool wire_table_next(struct wire_table_iter *it, struct wire_bytes *name, struct wire_field *value)
{
    if (wire_left(&it->r) == 0)
        return false;
    if (!wire_shortstr(&it->r, name) || !read_value(&it->r, value)) {
        it->r.pos = it->r.end; /* malformed: stop here and on every later call */
        return false;
    }
    return true;
}

bool wire_table_find(struct wire_table t, const char *name, struct wire_field *value)
{
    struct wire_table_iter it;
    struct wire_bytes key;
    struct wire_bytes want = wire_cstr(name);

    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &key, value)) {
        if (wire_bytes_eq(key, want))
            return true;
    }
    return false;
}

void wire_array_iter_init(struct wire_array_iter *it, struct wire_array a)
{
    it->r = wire_reader_init(a.raw.ptr, a.raw.len);
}

bool wire_array_next(struct wire_array_iter *it, struct wire_field *value)
{
    if (wire_left(&it->r) == 0)
        return false;
    if (!read_value(&it->r, value)) {
        it->r.pos = it->r.end;
        return false;
    }
    return true;
}

bool wire_field_int(const struct wire_field *f, int64_t *out)
{
    switch (f->type) {
    case 'b':
    case 's':
    case 'I':
    case 'l':
        *out = f->v.i;
        return true;
    case 'B':
    case 'u':
    case 'i':
    case 'L':
    case 'T':
        if (f->v.u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)f->v.u;
        return true;
    default:
        return false;
    }
}

bool wire_field_eq(const struct wire_field *a, const struct wire_field *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case 't':
        return a->v.boolean == b->v.boolean;
    case 'b':
    case 's':
    case 'I':
    case 'l':
        return a->v.i == b->v.i;
    case 'B':
    case 'u':
    case 'i':
    case 'L':
    case 'T':
        return a->v.u == b->v.u;
    case 'f':
        /* Floats compare by their encoding: the same octets are the same value, so a NaN
         * equals itself and 0.0 differs from -0.0, as a byte-wise header match would see. */
        return memcmp(&a->v.f32, &b->v.f32, sizeof a->v.f32) == 0;
    case 'd':
        return memcmp(&a->v.f64, &b->v.f64, sizeof a->v.f64) == 0;
    case 'D':
        return a->v.decimal.scale == b->v.decimal.scale && a->v.decimal.value == b->v.decimal.value;
    case 'S':
    case 'x':
        return wire_bytes_eq(a->v.bytes, b->v.bytes);
    case 'F':
        return wire_bytes_eq(a->v.table.raw, b->v.table.raw);
    case 'A':
        return wire_bytes_eq(a->v.array.raw, b->v.array.raw);
    case 'V':
        return true;
    default:
        return false;
    }
}

/* ---- Writing -------------------------------------------------------------------------- */

void wire_put_table(struct wire_writer *w, struct wire_table t)
{
    wire_put_longstr(w, t.raw);
}

size_t wire_table_begin(struct wire_writer *w)
{
    size_t begin = wire_writer_used(w);

    wire_put_u32(w, 0);
    return begin;
}

void wire_table_end(struct wire_writer *w, size_t begin)
{
    size_t len = wire_writer_used(w) - begin - 4;

    assert(len <= UINT32_MAX);
    wire_patch_u32(w, begin, (uint32_t)len);
}

void wire_put_field(struct wire_writer *w, const struct wire_field *value)
{
    uint32_t bits32;
    uint64_t bits64;

    wire_put_u8(w, value->type);
    switch (value->type) {
    case 't':
        wire_put_u8(w, value->v.boolean ? 1 : 0);
        break;
    case 'b':
        wire_put_u8(w, (uint8_t)value->v.i);
        break;
    case 'B':
        wire_put_u8(w, (uint8_t)value->v.u);
        break;
    case 's':
        wire_put_u16(w, (uint16_t)value->v.i);
        break;
    case 'u':
        wire_put_u16(w, (uint16_t)value->v.u);
        break;
    case 'I':
        wire_put_u32(w, (uint32_t)value->v.i);
        break;
    case 'i':
        wire_put_u32(w, (uint32_t)value->v.u);
        break;
    case 'l':
        wire_put_u64(w, (uint64_t)value->v.i);
        break;
    case 'L':
    case 'T':
        wire_put_u64(w, value->v.u);
        break;
    case 'f':
        memcpy(&bits32, &value->v.f32, sizeof bits32);
        wire_put_u32(w, bits32);
        break;
    case 'd':
        memcpy(&bits64, &value->v.f64, sizeof bits64);
        wire_put_u64(w, bits64);
        break;
    case 'D':
        wire_put_u8(w, value->v.decimal.scale);
        wire_put_u32(w, value->v.decimal.value);
        break;
    case 'S':
    case 'x':
        wire_put_longstr(w, value->v.bytes);
        break;
    case 'F':
        wire_put_longstr(w, value->v.table.raw);
        break;
    case 'A':
        wire_put_longstr(w, value->v.array.raw);
        break;
    case 'V':
        break;
    default:
        assert(false); /* not a field type: a bug in the caller */
    }
}

void wire_table_put_bytes_name(struct wire_writer *w, struct wire_bytes name,
                               const struct wire_field *value)
{
    wire_put_shortstr(w, name);
    wire_put_field(w, value);
}

void wire_table_put(struct wire_writer *w, const char *name, const struct wire_field *value)
{
    wire_table_put_bytes_name(w, wire_cstr(name), value);
}

void wire_table_put_longstr(struct wire_writer *w, const char *name, struct wire_bytes value)
{
    struct wire_field f = {.type = 'S', .v.bytes = value};

    wire_table_put(w, name, &f);
}

void wire_table_put_bool(struct wire_writer *w, const char *name, bool value)
{
    struct wire_field f = {.type = 't', .v.boolean = value};

    wire_table_put(w, name, &f);
}

void wire_table_put_i64(struct wire_writer *w, const char *name, int64_t value)
{
    struct wire_field f = {.type = 'l', .v.i = value};

    wire_table_put(w, name, &f);
}

void wire_table_put_timestamp(struct wire_writer *w, const char *name, uint64_t value)
{
    struct wire_field f = {.type = 'T', .v.u = value};

    wire_table_put(w, name, &f);
}

size_t wire_table_put_table_begin(struct wire_writer *w, const char *name)
{
    wire_put_shortstr(w, wire_cstr(name));
    wire_put_u8(w, 'F');
    return wire_table_begin(w);
}

size_t wire_table_put_array_begin(struct wire_writer *w, const char *name)
{
    wire_put_shortstr(w, wire_cstr(name));
    wire_put_u8(w, 'A');
    return wire_table_begin(w);
}
