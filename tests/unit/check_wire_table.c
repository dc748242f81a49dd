/* Field tables: hand-built wire bytes for every type, nesting, limits, iterators,
 * comparisons and the writer. */
#include <check.h>
#include <stdlib.h>

#include "amqp/table.h"

#define RAW(...)                                                                                   \
    ((struct wire_bytes){(const uint8_t[]){__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})})

/* Entries of a table with one entry of every type, as RabbitMQ writes them. */
static const uint8_t every_type[] = {
    1, 't', 't', 1,                                                       /* bool true */
    1, 'b', 'b', 0x80,                                                    /* i8 -128 */
    1, 'B', 'B', 0xff,                                                    /* u8 255 */
    1, 's', 's', 0xff, 0xfe,                                              /* i16 -2 */
    1, 'u', 'u', 0xff, 0xfe,                                              /* u16 65534 */
    1, 'I', 'I', 0x80, 0,    0,    0,                                     /* i32 min */
    1, 'i', 'i', 0xff, 0xff, 0xff, 0xff,                                  /* u32 max */
    1, 'l', 'l', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb,          /* i64 -5 */
    1, 'L', 'L', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,          /* u64 max */
    1, 'f', 'f', 0x3f, 0xc0, 0,    0,                                     /* 1.5f */
    1, 'd', 'd', 0xc0, 0x02, 0,    0,    0,    0,    0,    0,             /* -2.25 */
    1, 'D', 'D', 2,    0,    0,    0x01, 0x00,                            /* 2.56 */
    1, 'S', 'S', 0,    0,    0,    2,    'h',  'i',                       /* "hi" */
    1, 'x', 'x', 0,    0,    0,    3,    0,    1,    0xff,                /* bytes */
    1, 'T', 'T', 0,    0,    0,    0,    0x65, 0x53, 0xf1, 0x00,          /* 1700000000 */
    1, 'V', 'V',                                                          /* void */
    1, 'A', 'A', 0,    0,    0,    7,    'b',  1,    'S',  0,    0, 0, 0, /* [1, ""] */
    1, 'F', 'F', 0,    0,    0,    7,    1,    'k',  'I',  0,    0, 0, 7, /* {k: 7} */
};

static struct wire_table every_type_table(void)
{
    return (struct wire_table){{every_type, sizeof every_type}};
}

START_TEST(table_of_every_type_is_well_formed)
{
    ck_assert(wire_table_check(every_type_table().raw));
}
END_TEST

START_TEST(table_of_every_type_iterates_to_its_values)
{
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f, inner;
    int64_t i;
    int n = 0;

    wire_table_iter_init(&it, every_type_table());
    while (wire_table_next(&it, &name, &f)) {
        ck_assert_uint_eq(name.len, 1);
        ck_assert_uint_eq(name.ptr[0], f.type); /* each entry is named after its type */
        n++;
        switch (f.type) {
        case 't':
            ck_assert(f.v.boolean);
            break;
        case 'b':
            ck_assert_int_eq(f.v.i, -128);
            break;
        case 'B':
            ck_assert_uint_eq(f.v.u, 255);
            break;
        case 's':
            ck_assert_int_eq(f.v.i, -2);
            break;
        case 'u':
            ck_assert_uint_eq(f.v.u, 65534);
            break;
        case 'I':
            ck_assert_int_eq(f.v.i, INT32_MIN);
            break;
        case 'i':
            ck_assert_uint_eq(f.v.u, UINT32_MAX);
            break;
        case 'l':
            ck_assert_int_eq(f.v.i, -5);
            break;
        case 'L':
            ck_assert_uint_eq(f.v.u, UINT64_MAX);
            ck_assert(!wire_field_int(&f, &i)); /* above INT64_MAX */
            break;
        case 'f':
            ck_assert(f.v.f32 == 1.5f);
            break;
        case 'd':
            ck_assert(f.v.f64 == -2.25);
            break;
        case 'D':
            ck_assert_uint_eq(f.v.decimal.scale, 2);
            ck_assert_uint_eq(f.v.decimal.value, 256);
            break;
        case 'S':
            ck_assert(wire_bytes_eq_cstr(f.v.bytes, "hi"));
            break;
        case 'x':
            ck_assert(wire_bytes_eq(f.v.bytes, RAW(0, 1, 0xff)));
            break;
        case 'T':
            ck_assert_uint_eq(f.v.u, 1700000000u);
            break;
        case 'V':
            break;
        case 'A': {
            struct wire_array_iter ai;

            wire_array_iter_init(&ai, f.v.array);
            ck_assert(wire_array_next(&ai, &inner));
            ck_assert_uint_eq(inner.type, 'b');
            ck_assert_int_eq(inner.v.i, 1);
            ck_assert(wire_array_next(&ai, &inner));
            ck_assert_uint_eq(inner.type, 'S');
            ck_assert_uint_eq(inner.v.bytes.len, 0);
            ck_assert(!wire_array_next(&ai, &inner));
            break;
        }
        case 'F':
            ck_assert(wire_table_find(f.v.table, "k", &inner));
            ck_assert_uint_eq(inner.type, 'I');
            ck_assert_int_eq(inner.v.i, 7);
            break;
        default:
            ck_abort_msg("unexpected type %c", f.type);
        }
    }
    ck_assert_int_eq(n, 18);
}
END_TEST

START_TEST(writer_builds_the_same_bytes_as_rabbitmq)
{
    uint8_t buf[512];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);
    struct wire_table want = every_type_table();
    size_t t = wire_table_begin(&w), nested;

    wire_table_put_bool(&w, "t", true);
    wire_table_put(&w, "b", &(struct wire_field){.type = 'b', .v.i = -128});
    wire_table_put(&w, "B", &(struct wire_field){.type = 'B', .v.u = 255});
    wire_table_put(&w, "s", &(struct wire_field){.type = 's', .v.i = -2});
    wire_table_put(&w, "u", &(struct wire_field){.type = 'u', .v.u = 65534});
    wire_table_put(&w, "I", &(struct wire_field){.type = 'I', .v.i = INT32_MIN});
    wire_table_put(&w, "i", &(struct wire_field){.type = 'i', .v.u = UINT32_MAX});
    wire_table_put_i64(&w, "l", -5);
    wire_table_put(&w, "L", &(struct wire_field){.type = 'L', .v.u = UINT64_MAX});
    wire_table_put(&w, "f", &(struct wire_field){.type = 'f', .v.f32 = 1.5f});
    wire_table_put(&w, "d", &(struct wire_field){.type = 'd', .v.f64 = -2.25});
    wire_table_put(&w, "D", &(struct wire_field){.type = 'D', .v.decimal = {2, 256}});
    wire_table_put_longstr(&w, "S", WIRE_BYTES_C("hi"));
    wire_table_put(&w, "x", &(struct wire_field){.type = 'x', .v.bytes = RAW(0, 1, 0xff)});
    wire_table_put_timestamp(&w, "T", 1700000000u);
    wire_table_put(&w, "V", &(struct wire_field){.type = 'V'});
    nested = wire_table_put_array_begin(&w, "A");
    wire_put_field(&w, &(struct wire_field){.type = 'b', .v.i = 1});
    wire_put_field(&w, &(struct wire_field){.type = 'S'});
    wire_table_end(&w, nested);
    nested = wire_table_put_table_begin(&w, "F");
    wire_table_put(&w, "k", &(struct wire_field){.type = 'I', .v.i = 7});
    wire_table_end(&w, nested);
    wire_table_end(&w, t);

    ck_assert(!wire_writer_overflowed(&w));
    ck_assert_uint_eq(wire_writer_used(&w), want.raw.len + 4);
    ck_assert_uint_eq(buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], want.raw.len);
    ck_assert_mem_eq(buf + 4, want.raw.ptr, want.raw.len);
}
END_TEST

START_TEST(put_table_writes_length_and_entries)
{
    uint8_t buf[16];
    struct wire_writer w = wire_writer_init(buf, sizeof buf);

    wire_put_table(&w, (struct wire_table){RAW(1, 'a', 'V')});
    ck_assert_uint_eq(wire_writer_used(&w), 7);
    ck_assert_mem_eq(buf, ((uint8_t[]){0, 0, 0, 3, 1, 'a', 'V'}), 7);
}
END_TEST

START_TEST(empty_table_is_well_formed)
{
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;

    ck_assert(wire_table_check((struct wire_bytes){NULL, 0}));
    wire_table_iter_init(&it, (struct wire_table){{NULL, 0}});
    ck_assert(!wire_table_next(&it, &name, &f));
}
END_TEST

START_TEST(read_table_takes_length_then_entries)
{
    const uint8_t bytes[] = {0, 0, 0, 3, 1, 'a', 'V', 0xAA};
    struct wire_reader r = wire_reader_init(bytes, sizeof bytes);
    struct wire_table t;

    ck_assert(wire_read_table(&r, &t));
    ck_assert_uint_eq(t.raw.len, 3);
    ck_assert_uint_eq(wire_left(&r), 1);
}
END_TEST

START_TEST(read_table_refuses_length_past_the_end)
{
    const uint8_t bytes[] = {0, 0, 0, 4, 1, 'a', 'V'};
    struct wire_reader r = wire_reader_init(bytes, sizeof bytes);
    struct wire_table t;

    ck_assert(!wire_read_table(&r, &t));
}
END_TEST

/* ---- Malformed tables ------------------------------------------------------------------- */

START_TEST(table_entry_cannot_overrun_its_table)
{
    /* The STYLE.md example: an 'S' of 2 octets inside a table the caller cut at 5. */
    const uint8_t bytes[] = {0, 0, 0, 5, 1, 'a', 'S', 0, 0, 0, 2, 'h', 'i'};
    struct wire_reader r = wire_reader_init(bytes, sizeof bytes);
    struct wire_table t;

    ck_assert(!wire_read_table(&r, &t));
    ck_assert(!wire_table_check(RAW(1, 'a', 'S', 0, 0)));
}
END_TEST

START_TEST(unknown_field_types_are_refused)
{
    /* 'U' is the spec's i16, which RabbitMQ does not accept; the others exist nowhere. */
    const uint8_t types[] = {'U', 'Z', 'c', 'e', 0, 0xff, 's' + 128};

    for (size_t i = 0; i < sizeof types; i++)
        ck_assert_msg(!wire_table_check(RAW(1, 'k', types[i], 0, 0, 0, 0, 0, 0, 0, 0)), "%c",
                      types[i]);
}
END_TEST

START_TEST(every_type_truncated_is_refused)
{
    struct wire_table t = every_type_table();

    /* Any cut between entries is a shorter valid table; any other cut is refused. */
    size_t boundary[20], nb = 0;
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;

    boundary[nb++] = 0;
    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &name, &f))
        boundary[nb++] = (size_t)(it.r.pos - t.raw.ptr);
    for (size_t len = 0; len < t.raw.len; len++) {
        bool at_boundary = false;

        for (size_t k = 0; k < nb; k++)
            at_boundary |= boundary[k] == len;
        ck_assert_msg(wire_table_check((struct wire_bytes){t.raw.ptr, len}) == at_boundary,
                      "cut at %zu", len);
    }
}
END_TEST

START_TEST(name_length_past_the_end_is_refused)
{
    ck_assert(!wire_table_check(RAW(5, 'a', 'b')));
}
END_TEST

START_TEST(string_length_past_the_end_is_refused)
{
    ck_assert(!wire_table_check(RAW(1, 'a', 'S', 0xff, 0xff, 0xff, 0xff, 'x')));
    ck_assert(!wire_table_check(RAW(1, 'a', 'x', 0, 0, 0, 2, 'x')));
}
END_TEST

START_TEST(array_element_cannot_overrun_its_array)
{
    /* Array says 2 octets, its 'I' needs 5: the outer table has the bytes, the array not. */
    ck_assert(!wire_table_check(RAW(1, 'a', 'A', 0, 0, 0, 2, 'I', 0, 0, 0, 1)));
}
END_TEST

/* A table nested depth levels deep: {"n": {"n": ... {}}} (depth 0 is an empty table). */
static size_t nested_tables(uint8_t *buf, size_t cap, int depth, uint8_t type)
{
    struct wire_writer w = wire_writer_init(buf, cap);
    size_t begins[64];

    for (int d = 0; d < depth; d++) {
        if (type == 'F') {
            begins[d] = wire_table_put_table_begin(&w, "n");
        } else {
            if (d == 0)
                wire_put_shortstr(&w, WIRE_BYTES_C("n"));
            wire_put_u8(&w, 'A');
            begins[d] = wire_table_begin(&w);
        }
    }
    for (int d = depth - 1; d >= 0; d--)
        wire_table_end(&w, begins[d]);
    ck_assert(!wire_writer_overflowed(&w));
    return wire_writer_used(&w);
}

START_TEST(nesting_up_to_the_limit_is_accepted)
{
    uint8_t buf[1024];

    ck_assert(wire_table_check(
        (struct wire_bytes){buf, nested_tables(buf, sizeof buf, WIRE_TABLE_MAX_DEPTH, 'F')}));
    ck_assert(wire_table_check(
        (struct wire_bytes){buf, nested_tables(buf, sizeof buf, WIRE_TABLE_MAX_DEPTH, 'A')}));
}
END_TEST

START_TEST(nesting_beyond_the_limit_is_refused)
{
    uint8_t buf[1024];

    ck_assert(!wire_table_check(
        (struct wire_bytes){buf, nested_tables(buf, sizeof buf, WIRE_TABLE_MAX_DEPTH + 1, 'F')}));
    ck_assert(!wire_table_check(
        (struct wire_bytes){buf, nested_tables(buf, sizeof buf, WIRE_TABLE_MAX_DEPTH + 1, 'A')}));
}
END_TEST

START_TEST(iterator_stops_inside_an_unchecked_table)
{
    /* A good entry, then a name that claims more than is there: one entry, then false for
     * good, never a read past the end (ASan watches the exact-size copy). */
    const uint8_t src[] = {1, 'a', 'V', 9, 'b'};
    uint8_t *copy = malloc(sizeof src);
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field f;

    memcpy(copy, src, sizeof src);
    wire_table_iter_init(&it, (struct wire_table){{copy, sizeof src}});
    ck_assert(wire_table_next(&it, &name, &f));
    ck_assert(!wire_table_next(&it, &name, &f));
    ck_assert(!wire_table_next(&it, &name, &f));
    free(copy);
}
END_TEST

START_TEST(find_returns_the_first_entry_of_that_name)
{
    struct wire_table t = {RAW(1, 'a', 'b', 1, 1, 'a', 'b', 2, 2, 'a', 'b', 'b', 3)};
    struct wire_field f;

    ck_assert(wire_table_find(t, "a", &f));
    ck_assert_int_eq(f.v.i, 1);
    ck_assert(wire_table_find(t, "ab", &f));
    ck_assert_int_eq(f.v.i, 3);
    ck_assert(!wire_table_find(t, "b", &f));
    ck_assert(!wire_table_find(t, "", &f));
}
END_TEST

/* ---- Values ----------------------------------------------------------------------------- */

START_TEST(boolean_is_true_for_any_non_zero_octet)
{
    struct wire_field f;

    /* RabbitMQ 3.10 accepts 't' 2 as true. */
    ck_assert(wire_table_find((struct wire_table){RAW(1, 'k', 't', 2)}, "k", &f));
    ck_assert(f.v.boolean);
    ck_assert(wire_table_find((struct wire_table){RAW(1, 'k', 't', 0)}, "k", &f));
    ck_assert(!f.v.boolean);
}
END_TEST

START_TEST(field_int_reads_every_integer_type)
{
    struct wire_field f;
    int64_t v;

    f = (struct wire_field){.type = 'b', .v.i = -3};
    ck_assert(wire_field_int(&f, &v) && v == -3);
    f = (struct wire_field){.type = 'u', .v.u = 65535};
    ck_assert(wire_field_int(&f, &v) && v == 65535);
    f = (struct wire_field){.type = 'L', .v.u = INT64_MAX};
    ck_assert(wire_field_int(&f, &v) && v == INT64_MAX);
    f = (struct wire_field){.type = 'L', .v.u = (uint64_t)INT64_MAX + 1};
    ck_assert(!wire_field_int(&f, &v));
    f = (struct wire_field){.type = 'T', .v.u = 5};
    ck_assert(wire_field_int(&f, &v) && v == 5);
    f = (struct wire_field){.type = 'S', .v.bytes = WIRE_BYTES_C("5")};
    ck_assert(!wire_field_int(&f, &v));
    f = (struct wire_field){.type = 'd', .v.f64 = 5.0};
    ck_assert(!wire_field_int(&f, &v));
    f = (struct wire_field){.type = 't', .v.boolean = true};
    ck_assert(!wire_field_int(&f, &v));
}
END_TEST

START_TEST(field_eq_compares_type_and_value)
{
    struct wire_field i1 = {.type = 'I', .v.i = 1}, l1 = {.type = 'l', .v.i = 1};
    struct wire_field i2 = {.type = 'I', .v.i = 2}, i1b = {.type = 'I', .v.i = 1};
    struct wire_field s1 = {.type = 'S', .v.bytes = WIRE_BYTES_C("ab")};
    struct wire_field s2 = {.type = 'S', .v.bytes = WIRE_BYTES_C("ab")};
    struct wire_field x1 = {.type = 'x', .v.bytes = WIRE_BYTES_C("ab")};
    struct wire_field s3 = {.type = 'S', .v.bytes = WIRE_BYTES_C("abc")};
    struct wire_field v1 = {.type = 'V'}, v2 = {.type = 'V'};
    struct wire_field d1 = {.type = 'D', .v.decimal = {2, 100}};
    struct wire_field d2 = {.type = 'D', .v.decimal = {1, 100}};
    struct wire_field z = {.type = 'd', .v.f64 = 0.0}, nz = {.type = 'd', .v.f64 = -0.0};
    struct wire_field t1 = {.type = 'F', .v.table = {RAW(1, 'a', 'V')}};
    struct wire_field t2 = {.type = 'F', .v.table = {RAW(1, 'a', 'V')}};
    struct wire_field t3 = {.type = 'F', .v.table = {RAW(1, 'b', 'V')}};

    ck_assert(wire_field_eq(&i1, &i1b));
    ck_assert(!wire_field_eq(&i1, &l1)); /* same number, other type */
    ck_assert(!wire_field_eq(&i1, &i2));
    ck_assert(wire_field_eq(&s1, &s2));
    ck_assert(!wire_field_eq(&s1, &x1));
    ck_assert(!wire_field_eq(&s1, &s3));
    ck_assert(wire_field_eq(&v1, &v2));
    ck_assert(!wire_field_eq(&d1, &d2));
    ck_assert(!wire_field_eq(&z, &nz));
    ck_assert(wire_field_eq(&t1, &t2));
    ck_assert(!wire_field_eq(&t1, &t3));
}
END_TEST

/* ---- Writer ----------------------------------------------------------------------------- */

START_TEST(writer_that_runs_out_of_room_counts_what_it_needs)
{
    uint8_t big[128], small[8] = {0};
    struct wire_writer wb = wire_writer_init(big, sizeof big);
    struct wire_writer ws = wire_writer_init(small, sizeof small);

    for (int k = 0; k < 2; k++) {
        struct wire_writer *w = k ? &ws : &wb;
        size_t t = wire_table_begin(w);

        wire_table_put_longstr(w, "key", WIRE_BYTES_C("a long enough value"));
        wire_table_end(w, t);
    }
    ck_assert(!wire_writer_overflowed(&wb));
    ck_assert(wire_writer_overflowed(&ws));
    ck_assert_uint_eq(wire_writer_used(&ws), wire_writer_used(&wb));
    /* Nothing was stored past the end: the first 8 octets are what fit. */
    ck_assert_mem_eq(small, big, 4 + 4);
}
END_TEST

START_TEST(put_bytes_copies_every_length_whatever_the_room)
{
    uint8_t src[48];

    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(0xA0 + i);
    /* Short copies take their own path when 32 octets of room remain: try each length
     * with room just below, at and above it, in exact-size buffers ASan can watch. */
    for (size_t n = 0; n <= 40; n++) {
        for (size_t cap = n > 2 ? n - 2 : 0; cap <= n + 40; cap++) {
            uint8_t *buf = malloc(cap ? cap : 1);
            struct wire_writer w = wire_writer_init(buf, cap);

            wire_put_bytes(&w, src, n);
            ck_assert_uint_eq(wire_writer_used(&w), n);
            ck_assert(wire_writer_overflowed(&w) == (n > cap));
            if (n <= cap)
                ck_assert_mem_eq(buf, src, n);
            free(buf);
        }
    }
}
END_TEST

static Suite *table_suite(void)
{
    Suite *s = suite_create("wire tables");
    TCase *tc = tcase_create("well-formed");

    tcase_add_test(tc, table_of_every_type_is_well_formed);
    tcase_add_test(tc, table_of_every_type_iterates_to_its_values);
    tcase_add_test(tc, writer_builds_the_same_bytes_as_rabbitmq);
    tcase_add_test(tc, put_table_writes_length_and_entries);
    tcase_add_test(tc, empty_table_is_well_formed);
    tcase_add_test(tc, read_table_takes_length_then_entries);
    tcase_add_test(tc, find_returns_the_first_entry_of_that_name);
    tcase_add_test(tc, nesting_up_to_the_limit_is_accepted);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, read_table_refuses_length_past_the_end);
    tcase_add_test(tc, table_entry_cannot_overrun_its_table);
    tcase_add_test(tc, unknown_field_types_are_refused);
    tcase_add_test(tc, every_type_truncated_is_refused);
    tcase_add_test(tc, name_length_past_the_end_is_refused);
    tcase_add_test(tc, string_length_past_the_end_is_refused);
    tcase_add_test(tc, array_element_cannot_overrun_its_array);
    tcase_add_test(tc, nesting_beyond_the_limit_is_refused);
    tcase_add_test(tc, iterator_stops_inside_an_unchecked_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, boolean_is_true_for_any_non_zero_octet);
    tcase_add_test(tc, field_int_reads_every_integer_type);
    tcase_add_test(tc, field_eq_compares_type_and_value);
    tcase_add_test(tc, writer_that_runs_out_of_room_counts_what_it_needs);
    tcase_add_test(tc, put_bytes_copies_every_length_whatever_the_room);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(table_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
