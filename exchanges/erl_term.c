#include "exchanges/erl_term.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *erl_term_type_name(uint8_t type)
{
    switch (type) {
    case 't':
        return "bool";
    case 'b':
        return "byte";
    case 'B':
        return "unsignedbyte";
    case 's':
        return "short";
    case 'u':
        return "unsignedshort";
    case 'I':
        return "signedint";
    case 'i':
        return "unsignedint";
    case 'l':
    case 'L': /* RabbitMQ reads 'L' as a signed 64-bit integer too */
        return "long";
    case 'T':
        return "timestamp";
    case 'f':
        return "float";
    case 'd':
        return "double";
    case 'D':
        return "decimal";
    case 'S':
        return "longstr";
    case 'x':
        return "binary";
    case 'V':
        return "void";
    case 'A':
        return "array";
    case 'F':
        return "table";
    default:
        return "unknown";
    }
}

/* ---- Equality ------------------------------------------------------------------------- */

/* What a value decodes to in Erlang, which decides what it can be == to. */
enum term_kind {
    KIND_NUMBER,
    KIND_BOOL,
    KIND_BINARY,
    KIND_DECIMAL, /* the tuple {Scale, Value} */
    KIND_VOID,    /* the atom undefined */
    KIND_LIST,    /* arrays and tables */
    KIND_UNKNOWN,
};

static enum term_kind kind_of(uint8_t type)
{
    switch (type) {
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
    case 'l':
    case 'L':
    case 'T':
    case 'f':
    case 'd':
        return KIND_NUMBER;
    case 't':
        return KIND_BOOL;
    case 'S':
    case 'x':
        return KIND_BINARY;
    case 'D':
        return KIND_DECIMAL;
    case 'V':
        return KIND_VOID;
    case 'A':
    case 'F':
        return KIND_LIST;
    default:
        return KIND_UNKNOWN;
    }
}

/* An integer as sign and magnitude, so that every value of every width ('T' up to 2^64 - 1,
 * 'l' down to -2^63) fits; or a float. */
struct number {
    bool is_float;
    bool negative;
    uint64_t magnitude;
    double f;
};

static struct number signed_number(int64_t i)
{
    return (struct number){.negative = i < 0, .magnitude = i < 0 ? 0 - (uint64_t)i : (uint64_t)i};
}

static struct number number_of(const struct wire_field *v)
{
    switch (v->type) {
    case 'f':
        return (struct number){.is_float = true, .f = (double)v->v.f32};
    case 'd':
        return (struct number){.is_float = true, .f = v->v.f64};
    case 'L':
        /* Two's complement by hand: the conversion to int64_t is not portable above
         * INT64_MAX. */
        if (v->v.u > INT64_MAX)
            return (struct number){.negative = true, .magnitude = 0 - v->v.u};
        return (struct number){.magnitude = v->v.u};
    case 'B':
    case 'u':
    case 'i':
    case 'T':
        return (struct number){.magnitude = v->v.u};
    default:
        return signed_number(v->v.i);
    }
}

/* Erlang compares an integer and a float exactly (it converts whichever side is less precise),
 * so 9007199254740993 == 9007199254740992.0 is false. */
static bool integer_equals_float(const struct number *n, double f)
{
    double a = f < 0 ? -f : f;
    uint64_t m;

    if (f == 0)
        return n->magnitude == 0;
    if (f != f || a >= 18446744073709551616.0) /* NaN, or beyond every integer we hold */
        return false;
    if ((f < 0) != n->negative)
        return false;
    /* Truncation is exact for an integral a; below 2^52 a non-integral a is not a whole
     * number after truncating, above it every double is integral. */
    m = (uint64_t)a;
    return (double)m == a && m == n->magnitude;
}

static bool numbers_equal(const struct wire_field *a, const struct wire_field *b)
{
    struct number x = number_of(a), y = number_of(b);

    if (x.is_float && y.is_float)
        return x.f == y.f;
    if (x.is_float)
        return integer_equals_float(&y, x.f);
    if (y.is_float)
        return integer_equals_float(&x, y.f);
    return x.negative == y.negative && x.magnitude == y.magnitude;
}

/* An element of an array decodes to {Type, Value}: both must be equal. */
static bool typed_equal(const struct wire_field *a, const struct wire_field *b)
{
    return strcmp(erl_term_type_name(a->type), erl_term_type_name(b->type)) == 0 &&
           erl_term_equal(a, b);
}

static bool arrays_equal(struct wire_array x, struct wire_array y)
{
    struct wire_array_iter ix, iy;
    struct wire_field ex, ey;

    wire_array_iter_init(&ix, x);
    wire_array_iter_init(&iy, y);
    for (;;) {
        bool more_x = wire_array_next(&ix, &ex);
        bool more_y = wire_array_next(&iy, &ey);

        if (!more_x || !more_y)
            return more_x == more_y;
        if (!typed_equal(&ex, &ey))
            return false;
    }
}

/* A table decodes to [{Name, Type, Value}] in wire order: no sorting, so {a,b} != {b,a}. */
static bool tables_equal(struct wire_table x, struct wire_table y)
{
    struct wire_table_iter ix, iy;
    struct wire_bytes nx, ny;
    struct wire_field ex, ey;

    wire_table_iter_init(&ix, x);
    wire_table_iter_init(&iy, y);
    for (;;) {
        bool more_x = wire_table_next(&ix, &nx, &ex);
        bool more_y = wire_table_next(&iy, &ny, &ey);

        if (!more_x || !more_y)
            return more_x == more_y;
        if (!wire_bytes_eq(nx, ny) || !typed_equal(&ex, &ey))
            return false;
    }
}

static bool list_is_empty(const struct wire_field *v)
{
    return v->type == 'A' ? v->v.array.raw.len == 0 : v->v.table.raw.len == 0;
}

bool erl_term_equal(const struct wire_field *a, const struct wire_field *b)
{
    enum term_kind kind = kind_of(a->type);

    if (kind != kind_of(b->type))
        return false;
    switch (kind) {
    case KIND_NUMBER:
        return numbers_equal(a, b);
    case KIND_BOOL:
        return a->v.boolean == b->v.boolean;
    case KIND_BINARY:
        return wire_bytes_eq(a->v.bytes, b->v.bytes);
    case KIND_DECIMAL:
        return a->v.decimal.scale == b->v.decimal.scale && a->v.decimal.value == b->v.decimal.value;
    case KIND_VOID:
        return true;
    case KIND_LIST:
        if (a->type == 'A' && b->type == 'A')
            return arrays_equal(a->v.array, b->v.array);
        if (a->type == 'F' && b->type == 'F')
            return tables_equal(a->v.table, b->v.table);
        /* An array is a list of 2-tuples, a table one of 3-tuples: never equal, except
         * that both may be []. */
        return list_is_empty(a) && list_is_empty(b);
    case KIND_UNKNOWN:
    default:
        return false;
    }
}

/* ---- Printing ------------------------------------------------------------------------- */

static void erl_out_bytes(struct erl_out *o, const void *p, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - 1 - o->len;
        size_t k = n < room ? n : room;

        memcpy(o->buf + o->len, p, k);
        o->buf[o->len + k] = '\0';
    }
    o->len += n;
}

void erl_out_str(struct erl_out *o, const char *s)
{
    erl_out_bytes(o, s, strlen(s));
}

static void erl_out_char(struct erl_out *o, char c)
{
    erl_out_bytes(o, &c, 1);
}

/* Erlang's latin-1 printable characters (io_lib:printable_latin1_list), the default for ~p. */
static bool latin1_printable(uint8_t c)
{
    return (c >= 32 && c <= 126) || c >= 160 || (c >= '\b' && c <= '\r') || c == 27;
}

void erl_out_binary(struct erl_out *o, struct wire_bytes bin)
{
    erl_out_binary_at(o, bin, 0);
}

void erl_out_binary_at(struct erl_out *o, struct wire_bytes bin, size_t col)
{
    static const char escape_letter[] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\v'] = 'v', ['\f'] = 'f',
        ['\r'] = 'r', [27] = 'e',   ['"'] = '"',  ['\\'] = '\\'};
    bool printable = true;
    char num[8];

    for (size_t i = 0; i < bin.len && printable; i++)
        printable = latin1_printable(bin.ptr[i]);

    erl_out_str(o, "<<");
    if (bin.len > 0 && printable) {
        erl_out_char(o, '"');
        for (size_t i = 0; i < bin.len; i++) {
            uint8_t c = bin.ptr[i];

            if (c < sizeof escape_letter && escape_letter[c] != 0) {
                erl_out_char(o, '\\');
                erl_out_char(o, escape_letter[c]);
            } else {
                erl_out_char(o, (char)c);
            }
        }
        erl_out_char(o, '"');
    } else {
        /* Read off RabbitMQ 3.10: a number and its comma (the last one has none, and the
         * closing >> does not count) must end before column 80, or the line breaks before
         * the number, which goes under the first one. Breaking is only for a binary that
         * starts past column 0: at 0 the caller wants one line. */
        size_t at = col + 2, indent = col + 2;
        for (size_t i = 0; i < bin.len; i++) {
            int n = snprintf(num, sizeof num, "%u", bin.ptr[i]);
            size_t comma = i + 1 < bin.len ? 1 : 0;
            if (i > 0) {
                erl_out_char(o, ',');
                at++;
                if (col > 0 && at + (size_t)n + comma >= 80) {
                    erl_out_char(o, '\n');
                    for (size_t k = 0; k < indent; k++)
                        erl_out_char(o, ' ');
                    at = indent;
                }
            }
            erl_out_str(o, num);
            at += (size_t)n;
        }
    }
    erl_out_str(o, ">>");
}

/* Erlang prints a float with the fewest significant digits that read back as the same
 * double, then picks plain notation (123456789.0, 0.0001) or scientific (1.0e10, 1.5e-4),
 * whichever is shorter, plain on a tie; from 2^53 on, where consecutive integers stop being
 * representable, always scientific. Checked against RabbitMQ 3.10's replies.
 *
 * The digits come from the shortest %.*e that reads back exactly. That is the correctly
 * rounded candidate of each length; at a power of two, where the gap below is half the gap
 * above, a longer answer than Erlang's is possible in principle. */
void erl_out_float(struct erl_out *o, double x)
{
    char sci[40], digits[24], exp_text[8];
    double a = x < 0 ? -x : x;
    size_t nd = 0, fixed_len, sci_len;
    int exp10, place, precision;
    const char *e;

    if (x != x) {
        erl_out_str(o, "nan"); /* not an Erlang term: RabbitMQ cannot decode it at all */
        return;
    }
    if (a == 0) {
        erl_out_str(o, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    if (a > 1.7976931348623157e308) {
        erl_out_str(o, x < 0 ? "-inf" : "inf");
        return;
    }
    for (precision = 1; precision < 17; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision - 1, a);
        if (strtod(sci, NULL) == a)
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", precision - 1, a);

    /* sci is "d.ddde+XX" (or "de+XX" for one digit): collect the digits and the exponent. */
    e = strchr(sci, 'e');
    for (const char *p = sci; p < e; p++) {
        if (*p != '.')
            digits[nd++] = *p;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    exp10 = atoi(e + 1);
    place = exp10 + 1; /* digits before the decimal point in plain notation */

    snprintf(exp_text, sizeof exp_text, "%d", exp10);
    sci_len = 2 + (nd > 1 ? nd - 1 : 1) + 1 + strlen(exp_text);
    if (place <= 0)
        fixed_len = 2 + (size_t)-place + nd;
    else if ((size_t)place >= nd)
        fixed_len = (size_t)place + 2;
    else
        fixed_len = nd + 1;

    if (x < 0)
        erl_out_char(o, '-');
    if (a < 9007199254740992.0 && fixed_len <= sci_len) {
        if (place <= 0) {
            erl_out_str(o, "0.");
            for (int i = 0; i < -place; i++)
                erl_out_char(o, '0');
            erl_out_str(o, digits);
        } else if ((size_t)place >= nd) {
            erl_out_str(o, digits);
            for (size_t i = nd; i < (size_t)place; i++)
                erl_out_char(o, '0');
            erl_out_str(o, ".0");
        } else {
            erl_out_bytes(o, digits, (size_t)place);
            erl_out_char(o, '.');
            erl_out_str(o, digits + place);
        }
    } else {
        erl_out_char(o, digits[0]);
        erl_out_char(o, '.');
        erl_out_str(o, nd > 1 ? digits + 1 : "0");
        erl_out_char(o, 'e');
        erl_out_str(o, exp_text);
    }
}

static void erl_out_typed(struct erl_out *o, const struct wire_field *v)
{
    erl_out_str(o, erl_term_type_name(v->type));
    erl_out_char(o, ',');
    erl_out_term(o, v);
}

void erl_out_term(struct erl_out *o, const struct wire_field *v)
{
    char num[32];

    switch (v->type) {
    case 't':
        erl_out_str(o, v->v.boolean ? "true" : "false");
        return;
    case 'b':
    case 's':
    case 'I':
    case 'l':
        snprintf(num, sizeof num, "%" PRId64, v->v.i);
        break;
    case 'L':
        if (v->v.u > INT64_MAX)
            snprintf(num, sizeof num, "-%" PRIu64, 0 - v->v.u);
        else
            snprintf(num, sizeof num, "%" PRIu64, v->v.u);
        break;
    case 'B':
    case 'u':
    case 'i':
    case 'T':
        snprintf(num, sizeof num, "%" PRIu64, v->v.u);
        break;
    case 'f':
        erl_out_float(o, (double)v->v.f32);
        return;
    case 'd':
        erl_out_float(o, v->v.f64);
        return;
    case 'D':
        snprintf(num, sizeof num, "{%u,%" PRIu32 "}", v->v.decimal.scale, v->v.decimal.value);
        break;
    case 'S':
    case 'x':
        erl_out_binary(o, v->v.bytes);
        return;
    case 'V':
        erl_out_str(o, "undefined");
        return;
    case 'A': {
        struct wire_array_iter it;
        struct wire_field e;
        bool first = true;

        erl_out_char(o, '[');
        wire_array_iter_init(&it, v->v.array);
        while (wire_array_next(&it, &e)) {
            erl_out_str(o, first ? "{" : ",{");
            erl_out_typed(o, &e);
            erl_out_char(o, '}');
            first = false;
        }
        erl_out_char(o, ']');
        return;
    }
    case 'F': {
        struct wire_table_iter it;
        struct wire_bytes name;
        struct wire_field e;
        bool first = true;

        erl_out_char(o, '[');
        wire_table_iter_init(&it, v->v.table);
        while (wire_table_next(&it, &name, &e)) {
            erl_out_str(o, first ? "{" : ",{");
            erl_out_binary(o, name);
            erl_out_char(o, ',');
            erl_out_typed(o, &e);
            erl_out_char(o, '}');
            first = false;
        }
        erl_out_char(o, ']');
        return;
    }
    default:
        snprintf(num, sizeof num, "unknown");
        break;
    }
    erl_out_str(o, num);
}
