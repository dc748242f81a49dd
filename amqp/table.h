/* Field tables and arrays, with RabbitMQ's type letters, which differ from the 0-9-1 spec's
 * (the "field table" errata): t b B s u I i l L f d D S x A T F V, where 's' is a signed
 * 16-bit integer (the spec's 'U', which RabbitMQ refuses), 'l' a signed 64-bit integer and
 * 'L' an unsigned one (the spec has them the other way round), 'x' a byte array (not in the
 * spec) and the spec's short string 's' does not exist. rabbitmq-c uses the same letters.
 * Checked against RabbitMQ 3.10: it accepts every letter above and drops the connection on
 * 'U' or an unknown letter.
 *
 * A table travels as its encoded bytes. Decoding a method checks each of its tables once
 * (wire_table_check); after that the iterators below walk it without failing on bounds,
 * though they still stop at the end and never read past it. */
#ifndef WARREN_AMQP_TABLE_H
#define WARREN_AMQP_TABLE_H

#include "amqp/wire.h"

#define WIRE_TABLE_MAX_DEPTH 16 /* nesting accepted in tables and arrays */

/* The entries of a table, without the 4-byte length that precedes them on the wire. */
struct wire_table {
    struct wire_bytes raw;
};

/* The entries of an array ('A'), without their 4-byte length. */
struct wire_array {
    struct wire_bytes raw;
};

struct wire_decimal {
    uint8_t scale;
    uint32_t value;
};

/* One decoded value. type is the wire letter; the union member used follows it:
 * 't' boolean; 'b' 's' 'I' 'l' signed integers (i); 'B' 'u' 'i' 'L' unsigned (u);
 * 'T' timestamp (u); 'f' f32; 'd' f64; 'D' decimal; 'S' 'x' bytes; 'F' table; 'A' array;
 * 'V' void (no value). */
struct wire_field {
    uint8_t type;
    union {
        bool boolean;
        int64_t i;
        uint64_t u;
        float f32;
        double f64;
        struct wire_decimal decimal;
        struct wire_bytes bytes;
        struct wire_table table;
        struct wire_array array;
    } v;
};

/* True if raw holds well-formed table entries: every name a shortstr, every value of a
 * known type inside the table's bounds, at most WIRE_TABLE_MAX_DEPTH tables or arrays nested
 * inside the outer table. */
bool wire_table_check(struct wire_bytes raw);

/* Reads a table (u32 length + entries) from r and checks it. */
bool wire_read_table(struct wire_reader *r, struct wire_table *out);

struct wire_table_iter {
    struct wire_reader r;
};

void wire_table_iter_init(struct wire_table_iter *it, struct wire_table t);
/* Next entry; false at the end (or on malformed bytes in an unchecked table). */
bool wire_table_next(struct wire_table_iter *it, struct wire_bytes *name, struct wire_field *value);
/* First entry named name; false if none. */
bool wire_table_find(struct wire_table t, const char *name, struct wire_field *value);

struct wire_array_iter {
    struct wire_reader r;
};

void wire_array_iter_init(struct wire_array_iter *it, struct wire_array a);
bool wire_array_next(struct wire_array_iter *it, struct wire_field *value);

/* Any integer type ('b' 'B' 's' 'u' 'I' 'i' 'l' 'L' 'T'), as a signed 64-bit value; false
 * for other types or an unsigned value above INT64_MAX. */
bool wire_field_int(const struct wire_field *f, int64_t *out);
/* True if both values have the same type and the same value (tables and arrays by bytes). */
bool wire_field_eq(const struct wire_field *a, const struct wire_field *b);

/* ---- Writing ---------------------------------------------------------------------------- */

/* Writes t as u32 length + entries. */
void wire_put_table(struct wire_writer *w, struct wire_table t);

/* Builds a table in place: begin writes a length placeholder and returns its offset; the
 * entries follow; end patches the length. Nested tables and arrays use the same pair. */
size_t wire_table_begin(struct wire_writer *w);
void wire_table_end(struct wire_writer *w, size_t begin);

void wire_put_field(struct wire_writer *w, const struct wire_field *value); /* type + value */
void wire_table_put(struct wire_writer *w, const char *name, const struct wire_field *value);
void wire_table_put_bytes_name(struct wire_writer *w, struct wire_bytes name,
                               const struct wire_field *value);
void wire_table_put_longstr(struct wire_writer *w, const char *name, struct wire_bytes value);
void wire_table_put_bool(struct wire_writer *w, const char *name, bool value);
void wire_table_put_i64(struct wire_writer *w, const char *name, int64_t value);        /* 'l' */
void wire_table_put_timestamp(struct wire_writer *w, const char *name, uint64_t value); /* 'T' */
/* Starts a nested table or array entry; close it with wire_table_end(w, returned offset). */
size_t wire_table_put_table_begin(struct wire_writer *w, const char *name);
size_t wire_table_put_array_begin(struct wire_writer *w, const char *name);

#endif
