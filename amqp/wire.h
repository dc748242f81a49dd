/* The wire primitives of AMQP 0-9-1: a bounded reader over peer bytes and a writer into a
 * caller's buffer. Everything in amqp/ is built on these two; nothing here allocates.
 *
 * Integers on the wire are big-endian. A length read from the peer is compared with the
 * bytes left and never added to a pointer first. */
#ifndef WARREN_AMQP_WIRE_H
#define WARREN_AMQP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Result codes of amqp/ functions. A negative value is an error whose magnitude is the AMQP
 * reply code the broker answers with (connection.close with that code): a decoder never has
 * to be translated. */
enum wire_status {
    WIRE_OK = 0,
    WIRE_NEED_MORE = 1,               /* incomplete input: call again with more bytes */
    WIRE_ERR_FRAME = -501,            /* FRAME_ERROR: bad frame end, size, type */
    WIRE_ERR_SYNTAX = -502,           /* SYNTAX_ERROR: a field does not parse */
    WIRE_ERR_COMMAND_INVALID = -503,  /* COMMAND_INVALID: unknown class or method */
    WIRE_ERR_CHANNEL = -504,          /* CHANNEL_ERROR */
    WIRE_ERR_UNEXPECTED_FRAME = -505, /* UNEXPECTED_FRAME */
    WIRE_ERR_NOT_IMPLEMENTED = -540,  /* NOT_IMPLEMENTED */
};

/* A borrowed byte region (a shortstr, a longstr, a table's encoded bytes, a body). */
struct wire_bytes {
    const uint8_t *ptr;
    size_t len;
};

#define WIRE_BYTES_C(s) ((struct wire_bytes){.ptr = (const uint8_t *)(s), .len = sizeof(s) - 1})

static inline struct wire_bytes wire_cstr(const char *s)
{
    return (struct wire_bytes){.ptr = (const uint8_t *)s, .len = s ? strlen(s) : 0};
}

static inline bool wire_bytes_eq(struct wire_bytes a, struct wire_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool wire_bytes_eq_cstr(struct wire_bytes a, const char *s)
{
    return wire_bytes_eq(a, wire_cstr(s));
}

/* ---- Reading ---------------------------------------------------------------------------- */

struct wire_reader {
    const uint8_t *pos; /* next byte to read */
    const uint8_t *end; /* one past the last byte this reader may touch */
};

/* buf may be NULL when len is 0 (an empty table or string). */
static inline struct wire_reader wire_reader_init(const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *)buf;
    return (struct wire_reader){.pos = p, .end = len > 0 ? p + len : p};
}

static inline size_t wire_left(const struct wire_reader *r)
{
    return (size_t)(r->end - r->pos);
}

/* n comes from the peer: compare it with what is left, never add it to pos first. */
static inline bool wire_bytes(struct wire_reader *r, size_t n, struct wire_bytes *out)
{
    if (wire_left(r) < n)
        return false;
    *out = (struct wire_bytes){.ptr = r->pos, .len = n};
    r->pos += n;
    return true;
}

/* A length-prefixed region gets a reader of its own, so nothing inside reaches past it. */
static inline bool wire_sub(struct wire_reader *r, size_t n, struct wire_reader *sub)
{
    struct wire_bytes b;

    if (!wire_bytes(r, n, &b))
        return false;
    *sub = (struct wire_reader){.pos = b.ptr, .end = b.ptr + b.len};
    return true;
}

static inline bool wire_u8(struct wire_reader *r, uint8_t *v)
{
    if (wire_left(r) < 1)
        return false;
    *v = r->pos[0];
    r->pos += 1;
    return true;
}

static inline bool wire_u16(struct wire_reader *r, uint16_t *v)
{
    if (wire_left(r) < 2)
        return false;
    *v = (uint16_t)((uint16_t)r->pos[0] << 8 | r->pos[1]);
    r->pos += 2;
    return true;
}

static inline bool wire_u32(struct wire_reader *r, uint32_t *v)
{
    if (wire_left(r) < 4)
        return false;
    *v = (uint32_t)r->pos[0] << 24 | (uint32_t)r->pos[1] << 16 | (uint32_t)r->pos[2] << 8 |
         (uint32_t)r->pos[3];
    r->pos += 4;
    return true;
}

static inline bool wire_u64(struct wire_reader *r, uint64_t *v)
{
    uint64_t x = 0;

    if (wire_left(r) < 8)
        return false;
    for (int i = 0; i < 8; i++)
        x = x << 8 | r->pos[i];
    *v = x;
    r->pos += 8;
    return true;
}

static inline bool wire_shortstr(struct wire_reader *r, struct wire_bytes *out)
{
    uint8_t len;
    return wire_u8(r, &len) && wire_bytes(r, len, out);
}

static inline bool wire_longstr(struct wire_reader *r, struct wire_bytes *out)
{
    uint32_t len;
    return wire_u32(r, &len) && wire_bytes(r, len, out);
}

/* ---- Writing ---------------------------------------------------------------------------- */

/* Writes into [start, end). Like snprintf, a writer that runs out of room keeps counting:
 * pos advances past end without storing, so wire_writer_overflowed() tells the caller to
 * grow its buffer to wire_writer_used() bytes and encode again. */
struct wire_writer {
    uint8_t *start;
    uint8_t *pos;
    uint8_t *end;
};

/* buf must point at a real buffer, even with cap 0: the writer moves pos past end. */
static inline struct wire_writer wire_writer_init(void *buf, size_t cap)
{
    uint8_t *p = (uint8_t *)buf;
    return (struct wire_writer){.start = p, .pos = p, .end = p + cap};
}

static inline size_t wire_writer_used(const struct wire_writer *w)
{
    return (size_t)(w->pos - w->start);
}

static inline bool wire_writer_overflowed(const struct wire_writer *w)
{
    return w->pos > w->end;
}

static inline bool wire_writer_fits(const struct wire_writer *w, size_t n)
{
    return w->pos <= w->end && (size_t)(w->end - w->pos) >= n;
}

static inline void wire_put_bytes(struct wire_writer *w, const void *p, size_t n)
{
    if (n > 0 && wire_writer_fits(w, n)) {
        /* Short strings (names, tags) are the common case: copy them in 8-octet steps.
         * Left to memcpy with the 255-octet bound of a shortstr in sight, gcc inlines a
         * "rep movsq" whose start-up cost dominated encoding a delivery. */
        if (n <= 32 && (size_t)(w->end - w->pos) >= 32) {
            const uint8_t *src = (const uint8_t *)p;
            uint8_t *dst = w->pos;
            size_t i = 0;

            for (; i + 8 <= n; i += 8)
                memcpy(dst + i, src + i, 8);
            for (; i < n; i++)
                dst[i] = src[i];
        } else {
            memcpy(w->pos, p, n);
        }
    }
    w->pos += n;
}

static inline void wire_put_u8(struct wire_writer *w, uint8_t v)
{
    if (wire_writer_fits(w, 1))
        w->pos[0] = v;
    w->pos += 1;
}

static inline void wire_put_u16(struct wire_writer *w, uint16_t v)
{
    if (wire_writer_fits(w, 2)) {
        w->pos[0] = (uint8_t)(v >> 8);
        w->pos[1] = (uint8_t)v;
    }
    w->pos += 2;
}

static inline void wire_put_u32(struct wire_writer *w, uint32_t v)
{
    if (wire_writer_fits(w, 4)) {
        w->pos[0] = (uint8_t)(v >> 24);
        w->pos[1] = (uint8_t)(v >> 16);
        w->pos[2] = (uint8_t)(v >> 8);
        w->pos[3] = (uint8_t)v;
    }
    w->pos += 4;
}

static inline void wire_put_u64(struct wire_writer *w, uint64_t v)
{
    wire_put_u32(w, (uint32_t)(v >> 32));
    wire_put_u32(w, (uint32_t)v);
}

/* Stores a big-endian u32 at an earlier position (a length patched once known). */
static inline void wire_patch_u32(struct wire_writer *w, size_t offset, uint32_t v)
{
    if (offset + 4 <= (size_t)(w->end - w->start)) {
        uint8_t *p = w->start + offset;
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    }
}

/* A shortstr longer than 255 octets cannot be encoded: it is cut to 255, and callers that
 * take names from the peer have already refused such names (they arrive as shortstr). */
static inline void wire_put_shortstr(struct wire_writer *w, struct wire_bytes s)
{
    size_t n = s.len > 255 ? 255 : s.len;
    wire_put_u8(w, (uint8_t)n);
    wire_put_bytes(w, s.ptr, n);
}

static inline void wire_put_longstr(struct wire_writer *w, struct wire_bytes s)
{
    wire_put_u32(w, (uint32_t)s.len);
    wire_put_bytes(w, s.ptr, s.len);
}

#endif
