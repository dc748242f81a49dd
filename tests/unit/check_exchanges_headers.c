/* The headers exchange and the Erlang-term rules it follows. Every expected result below is
 * what RabbitMQ 3.10.8 answered: a headers exchange, one binding, one message published with
 * the headers shown, and whether the queue got it; for validate(), the channel.close text. */
#include <check.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/erl_term.h"
#include "exchanges/registry.h"
#include "tests/unit/check_exchanges.h"

/* Field values as constant initialisers. */
#define STR(s)                                                                                     \
    {                                                                                              \
        .type = 'S', .v.bytes = {(const uint8_t *)(s), sizeof(s) - 1 }                             \
    }
#define BIN(s)                                                                                     \
    {                                                                                              \
        .type = 'x', .v.bytes = {(const uint8_t *)(s), sizeof(s) - 1 }                             \
    }
#define INT(t, n)                                                                                  \
    {                                                                                              \
        .type = (t), .v.i = (n)                                                                    \
    }
#define UINT(t, n)                                                                                 \
    {                                                                                              \
        .type = (t), .v.u = (n)                                                                    \
    }
#define F32(x)                                                                                     \
    {                                                                                              \
        .type = 'f', .v.f32 = (x)                                                                  \
    }
#define F64(x)                                                                                     \
    {                                                                                              \
        .type = 'd', .v.f64 = (x)                                                                  \
    }
#define DEC(s, n)                                                                                  \
    {                                                                                              \
        .type = 'D', .v.decimal = {(s), (n) }                                                      \
    }
#define BOOL(b)                                                                                    \
    {                                                                                              \
        .type = 't', .v.boolean = (b)                                                              \
    }
#define VOID                                                                                       \
    {                                                                                              \
        .type = 'V'                                                                                \
    }
#define ARRAY(b)                                                                                   \
    {                                                                                              \
        .type = 'A', .v.array.raw = {(const uint8_t *)(b), sizeof(b) - 1 }                         \
    }
#define TABLE(b)                                                                                   \
    {                                                                                              \
        .type = 'F', .v.table.raw = {(const uint8_t *)(b), sizeof(b) - 1 }                         \
    }
#define XM(mode)                                                                                   \
    {                                                                                              \
        "x-match", STR(mode)                                                                       \
    }
#define MAX_ENTRIES 5

struct entry {
    const char *name; /* NULL ends the list */
    struct wire_field value;
};

struct match_case {
    struct entry binding[MAX_ENTRIES];
    struct entry headers[MAX_ENTRIES];
    bool matches;
};

static const struct match_case rabbitmq_matches[] = {
    /* x-match all (the default) and any */
    {{{0}}, {{0}}, true},
    {{{0}}, {{"a", STR("1")}}, true},
    {{XM("all")}, {{0}}, true},
    {{XM("any")}, {{"a", STR("1")}}, false},
    {{XM("any")}, {{0}}, false},
    {{{"a", STR("1")}}, {{"a", STR("1")}}, true},
    {{{"a", STR("1")}}, {{"a", STR("2")}}, false},
    {{{"a", STR("1")}}, {{0}}, false},
    {{{"a", STR("1")}, {"b", STR("2")}}, {{"a", STR("1")}}, false},
    {{XM("any"), {"a", STR("1")}, {"b", STR("2")}}, {{"a", STR("1")}}, true},
    {{XM("any"), {"a", STR("1")}, {"b", STR("2")}}, {{"a", STR("3")}, {"b", STR("3")}}, false},
    {{XM("all"), {"a", STR("1")}, {"c", STR("3")}},
     {{"a", STR("1")}, {"b", STR("2")}, {"c", STR("3")}},
     true},
    {{XM("any"), {"c", STR("3")}}, {{"a", STR("1")}, {"b", STR("2")}, {"c", STR("3")}}, true},
    {{{"b", STR("1")}, {"a", STR("2")}}, {{"a", STR("2")}, {"b", STR("1")}}, true},
    {{{"", STR("1")}}, {{"", STR("1")}}, true},
    {{{"ab", STR("1")}}, {{"a", STR("1")}, {"abc", STR("1")}}, false},
    {{XM("any"), {"ab", STR("1")}, {"a", STR("1")}}, {{"a", STR("1")}, {"abc", STR("1")}}, true},

    /* Integers of every width are one integer; floats compare by value with them. */
    {{{"a", INT('I', 1)}}, {{"a", INT('l', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", INT('b', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", UINT('B', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", INT('s', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", UINT('u', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", UINT('i', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", UINT('L', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", UINT('T', 1)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", F64(1.0)}}, true},
    {{{"a", INT('I', 1)}}, {{"a", F32(1.0f)}}, true},
    {{{"a", F64(1.5)}}, {{"a", F32(1.5f)}}, true},
    {{{"a", F64(1.0)}}, {{"a", F32(1.0f)}}, true},
    {{{"a", INT('I', -1)}}, {{"a", INT('l', -1)}}, true},
    {{{"a", UINT('i', 4294967295u)}}, {{"a", INT('I', -1)}}, false},
    {{{"a", UINT('L', UINT64_MAX)}}, {{"a", INT('l', -1)}}, true}, /* 'L' is signed */
    {{{"a", UINT('i', 1)}}, {{"a", F64(1.0)}}, true},
    {{{"a", UINT('T', 1ull << 63)}}, {{"a", F64(9223372036854775808.0)}}, true},
    {{{"a", INT('l', (1ll << 53) + 1)}}, {{"a", F64(9007199254740992.0)}}, false},
    {{{"a", INT('l', 1ll << 53)}}, {{"a", F64(9007199254740992.0)}}, true},
    {{{"a", INT('l', -5)}}, {{"a", F64(-5.0)}}, true},
    {{{"a", INT('l', 0)}}, {{"a", F64(-0.0)}}, true},
    {{{"a", F64(0.5)}}, {{"a", INT('l', 0)}}, false},

    /* Other kinds: booleans, binaries ('S' and 'x' alike), decimals as {Scale, Value}. */
    {{{"a", INT('I', 1)}}, {{"a", BOOL(true)}}, false},
    {{{"a", BOOL(false)}}, {{"a", INT('I', 0)}}, false},
    {{{"a", BOOL(true)}}, {{"a", BOOL(true)}}, true},
    {{{"a", BOOL(true)}}, {{"a", BOOL(false)}}, false},
    {{{"a", STR("1")}}, {{"a", BIN("1")}}, true},
    {{{"a", STR("")}}, {{"a", BIN("")}}, true},
    {{{"a", STR("1")}}, {{"a", INT('I', 1)}}, false},
    {{{"a", DEC(1, 10)}}, {{"a", DEC(0, 1)}}, false},
    {{{"a", DEC(1, 10)}}, {{"a", DEC(1, 10)}}, true},
    {{{"a", DEC(0, 1)}}, {{"a", INT('I', 1)}}, false},

    /* Arrays and tables: elements carry their type names; tables stay in wire order. */
    {{{"a", ARRAY("I\0\0\0\1"
                  "S\0\0\0\1a")}},
     {{"a", ARRAY("I\0\0\0\1"
                  "S\0\0\0\1a")}},
     true},
    {{{"a", ARRAY("I\0\0\0\1")}}, {{"a", ARRAY("l\0\0\0\0\0\0\0\1")}}, false},
    {{{"a", ARRAY("L\0\0\0\0\0\0\0\1")}}, {{"a", ARRAY("l\0\0\0\0\0\0\0\1")}}, true},
    {{{"a", ARRAY("T\0\0\0\0\0\0\0\1")}}, {{"a", ARRAY("l\0\0\0\0\0\0\0\1")}}, false},
    {{{"a", ARRAY("S\0\0\0\1a")}}, {{"a", ARRAY("x\0\0\0\1a")}}, false},
    {{{"a", ARRAY("d\x3f\xf0\0\0\0\0\0\0")}}, {{"a", ARRAY("d\x3f\xf0\0\0\0\0\0\0")}}, true},
    {{{"a", ARRAY("f\x3f\x80\0\0")}}, {{"a", ARRAY("d\x3f\xf0\0\0\0\0\0\0")}}, false},
    {{{"a", ARRAY("d\0\0\0\0\0\0\0\0")}}, {{"a", ARRAY("d\x80\0\0\0\0\0\0\0")}}, true},
    {{{"a", TABLE("\1kI\0\0\0\1")}}, {{"a", TABLE("\1kl\0\0\0\0\0\0\0\1")}}, false},
    {{{"a", TABLE("\1kI\0\0\0\1")}}, {{"a", TABLE("\1kI\0\0\0\1")}}, true},
    {{{"a", TABLE("\1kI\0\0\0\1")}}, {{"a", TABLE("\1jI\0\0\0\1")}}, false},
    {{{"a", TABLE("\1kV")}}, {{"a", TABLE("\1kV")}}, true},
    {{{"a", TABLE("\1kI\0\0\0\1"
                  "\1jI\0\0\0\2")}},
     {{"a", TABLE("\1jI\0\0\0\2"
                  "\1kI\0\0\0\1")}},
     false},
    {{{"a", ARRAY("")}}, {{"a", TABLE("")}}, true}, /* both [] */
    {{{"a", TABLE("")}}, {{"a", ARRAY("")}}, true},
    {{{"a", ARRAY("S\0\0\0\1k")}}, {{"a", TABLE("\1kV")}}, false},
    {{{"a", STR("")}}, {{"a", ARRAY("")}}, false},

    /* x- names: left out unless -with-x; x-match itself always. */
    {{{"x-foo", STR("1")}}, {{0}}, true},
    {{{"x-foo", STR("1")}}, {{"x-foo", STR("2")}}, true},
    {{XM("all-with-x"), {"x-foo", STR("1")}}, {{0}}, false},
    {{XM("all-with-x"), {"x-foo", STR("1")}}, {{"x-foo", STR("1")}}, true},
    {{XM("all-with-x"), {"x-foo", STR("1")}}, {{"x-foo", STR("2")}}, false},
    {{XM("all-with-x")}, {{0}}, true},
    {{XM("any-with-x")}, {{0}}, false},
    {{XM("any-with-x")}, {{"x-match", STR("any-with-x")}}, false},
    {{XM("all-with-x"), {"a", STR("1")}}, {{"a", STR("1")}}, true},
    {{XM("any"), {"x-foo", STR("1")}}, {{"x-foo", STR("1")}}, false},
    {{XM("any"), {"x-foo", STR("1")}}, {{"a", STR("1")}}, false},
    {{XM("any-with-x"), {"x-foo", STR("1")}}, {{"x-foo", STR("1")}}, true},
    {{XM("any-with-x"), {"x-foo", STR("1")}, {"a", STR("1")}}, {{"a", STR("1")}}, true},
    {{XM("any-with-x"), {"x-foo", STR("1")}, {"a", STR("1")}},
     {{"a", STR("2")}, {"x-foo", STR("1")}},
     true},
    {{XM("all"), {"X-foo", STR("1")}}, {{0}}, false}, /* the prefix is case-sensitive */
    {{XM("all"), {"x", STR("1")}}, {{0}}, false},
    {{XM("all"), {"x-", STR("1")}}, {{0}}, true},
    {{XM("all"), {"a", STR("1")}}, {{"a", STR("1")}, {"x-foo", STR("1")}}, true},

    /* A void pattern value asks for presence only. */
    {{{"a", VOID}}, {{"a", STR("zz")}}, true},
    {{{"a", VOID}}, {{0}}, false},
    {{{"a", VOID}}, {{"a", VOID}}, true},
    {{{"a", STR("1")}}, {{"a", VOID}}, false},
    {{XM("any"), {"a", VOID}, {"b", STR("1")}}, {{"a", INT('I', 5)}}, true},
    {{XM("any"), {"a", VOID}}, {{"b", INT('I', 5)}}, false},

    /* Repeated names pair up in order; the first x-match rules. */
    {{{"a", STR("1")}}, {{"a", STR("2")}, {"a", STR("1")}}, false},
    {{{"a", STR("1")}}, {{"a", STR("1")}, {"a", STR("2")}}, true},
    {{{"a", STR("1")}, {"a", STR("2")}}, {{"a", STR("1")}}, false},
    {{{"a", STR("1")}, {"a", STR("2")}}, {{"a", STR("2")}}, false},
    {{{"a", STR("1")}, {"a", STR("2")}}, {{"a", STR("1")}, {"a", STR("2")}}, true},
    {{{"a", STR("1")}, {"a", STR("2")}}, {{"a", STR("2")}, {"a", STR("1")}}, false},
    {{XM("any"), {"a", STR("1")}, {"a", STR("2")}}, {{"a", STR("2")}}, false},
    {{XM("any"), XM("all"), {"a", STR("1")}, {"b", STR("2")}}, {{"a", STR("1")}}, true},
    {{XM("all"), XM("any"), {"a", STR("1")}, {"b", STR("2")}}, {{"a", STR("1")}}, false},
    {{XM("all"), XM("foo")}, {{"a", STR("1")}}, true},
    {{XM("all-with-x"), XM("zz")}, {{0}}, true},
    {{XM("any-with-x"), XM("zz")}, {{"x-match", STR("zz")}}, false},
};
#define MATCH_CASES (sizeof rabbitmq_matches / sizeof rabbitmq_matches[0])

static struct wire_table build(struct tx_table *t, const struct entry *entries)
{
    struct wire_writer *w = tx_table_begin(t);

    for (size_t i = 0; i < MAX_ENTRIES && entries[i].name != NULL; i++)
        wire_table_put(w, entries[i].name, &entries[i].value);
    return tx_table_end(t);
}

START_TEST(each_binding_matches_as_rabbitmq_matched)
{
    const struct match_case *c = &rabbitmq_matches[_i];
    struct tx_table args, headers;
    struct test_exchange x;
    struct binding *b;

    tx_open(&x, "headers");
    b = tx_bind_table(&x, "q", "ignored.key", build(&args, c->binding));
    ck_assert_msg(
        strcmp(tx_route_full(&x, "rk", 2, build(&headers, c->headers)), c->matches ? "q" : "") == 0,
        "case %d: routed to \"%s\", RabbitMQ %s", _i, x.routed,
        c->matches ? "matched" : "did not match");
    tx_unbind(&x, b);
    ck_assert_str_eq(tx_route_full(&x, "rk", 2, build(&headers, c->headers)), "");
    tx_close(&x);
}
END_TEST

START_TEST(all_cases_bound_together_match_each_message_like_alone)
{
    /* One exchange with every case's binding: the message's sorted headers are shared by
     * all bindings, and a binding's verdict must not depend on its neighbours. */
    static char labels[MATCH_CASES][8];
    struct tx_table args, headers;
    struct test_exchange x;

    tx_open(&x, "headers");
    for (size_t i = 0; i < MATCH_CASES; i++) {
        snprintf(labels[i], sizeof labels[i], "c%03zu", i);
        tx_bind_table(&x, labels[i], "", build(&args, rabbitmq_matches[i].binding));
    }
    for (size_t i = 0; i < MATCH_CASES; i++) {
        bool routed = false;

        tx_route_full(&x, "", 0, build(&headers, rabbitmq_matches[i].headers));
        for (size_t k = 0; k < x.out.len; k++)
            routed |= x.out.dest[k] == labels[i];
        ck_assert_msg(routed == rabbitmq_matches[i].matches, "case %zu", i);
    }
    tx_close(&x);
}
END_TEST

START_TEST(the_routing_key_plays_no_part)
{
    struct tx_table args, headers;
    struct test_exchange x;
    const struct entry pattern[] = {{"a", STR("1")}, {0}};

    tx_open(&x, "headers");
    tx_bind_table(&x, "q", "some.key", build(&args, pattern));
    ck_assert_str_eq(tx_route_full(&x, "other", 5, build(&headers, pattern)), "q");
    ck_assert_str_eq(tx_route_full(&x, "some.key", 8, (struct wire_table){{NULL, 0}}), "");
    tx_close(&x);
}
END_TEST

START_TEST(unbind_in_any_order_keeps_the_other_bindings)
{
    static char labels[300][8];
    static struct binding *bs[300];
    struct tx_table args, headers;
    struct test_exchange x;

    tx_open(&x, "headers");
    for (int i = 0; i < 300; i++) {
        struct wire_writer *w = tx_table_begin(&args);
        struct wire_field k = tx_int('I', i % 100);

        wire_table_put(w, "k", &k);
        snprintf(labels[i], sizeof labels[i], "b%03d", i);
        bs[i] = tx_bind_table(&x, labels[i], "", tx_table_end(&args));
    }
    for (int i = 0; i < 300; i += 4) {
        tx_unbind(&x, bs[i]);
        bs[i] = NULL;
    }
    for (int v = 0; v < 100; v++) {
        struct wire_writer *w = tx_table_begin(&headers);
        struct wire_field k = tx_int('l', v), other = tx_S("x");
        char want[64] = "";

        wire_table_put(w, "z", &other);
        wire_table_put(w, "k", &k);
        wire_table_put(w, "a", &other);
        for (int i = v; i < 300; i += 100) {
            if (bs[i] != NULL) {
                strcat(want, want[0] ? "," : "");
                strcat(want, labels[i]);
            }
        }
        ck_assert_str_eq(tx_route_full(&x, "", 0, tx_table_end(&headers)), want);
    }
    tx_close(&x);
}
END_TEST

START_TEST(many_headers_in_a_message_are_sorted_once_and_found)
{
    struct tx_table args;
    static struct tx_table headers;
    struct test_exchange x;
    struct wire_writer *w;
    char name[16];

    tx_open(&x, "headers");
    w = tx_table_begin(&args);
    wire_table_put_longstr(w, "h150", wire_cstr("v150"));
    wire_table_put_longstr(w, "h007", wire_cstr("v7"));
    tx_bind_table(&x, "both", "", tx_table_end(&args));
    w = tx_table_begin(&args);
    wire_table_put_longstr(w, "x-match", wire_cstr("any"));
    wire_table_put_longstr(w, "h199", wire_cstr("nope"));
    wire_table_put_longstr(w, "h000", wire_cstr("v0"));
    tx_bind_table(&x, "any", "", tx_table_end(&args));

    /* 200 headers, written in descending order. */
    w = tx_table_begin(&headers);
    for (int i = 199; i >= 0; i--) {
        char value[16];

        snprintf(name, sizeof name, "h%03d", i);
        snprintf(value, sizeof value, "v%d", i);
        wire_table_put_longstr(w, name, wire_cstr(value));
    }
    ck_assert_str_eq(tx_route_full(&x, "", 0, tx_table_end(&headers)), "any,both");
    tx_close(&x);
}
END_TEST

/* ---- validate() ------------------------------------------------------------------------ */

static const struct {
    struct wire_field x_match;
    const char *text; /* RabbitMQ's, after "PRECONDITION_FAILED - " */
} rabbitmq_refusals[] = {
#define BAD_VALUE(v)                                                                               \
    "Invalid x-match field value " v "; expected all, any, all-with-x, or any-with-x"
#define BAD_TYPE(t, v) "Invalid x-match field type " t " (value " v "); expected longstr"
    {STR("foo"), BAD_VALUE("<<\"foo\">>")},
    {STR("ALL"), BAD_VALUE("<<\"ALL\">>")},
    {STR(""), BAD_VALUE("<<>>")},
    {STR("all "), BAD_VALUE("<<\"all \">>")},
    {STR("\x01\x02"), BAD_VALUE("<<1,2>>")},
    {STR("a\"b\\c"), BAD_VALUE("<<\"a\\\"b\\\\c\">>")},
    {STR("a\nb"), BAD_VALUE("<<\"a\\nb\">>")},
    {STR("a\tb"), BAD_VALUE("<<\"a\\tb\">>")},
    {STR("a\x1b"
         "b"),
     BAD_VALUE("<<\"a\\eb\">>")},
    {STR("\v\b\f\r"), BAD_VALUE("<<\"\\v\\b\\f\\r\">>")},
    {STR("\\"), BAD_VALUE("<<\"\\\\\">>")},
    {STR("'"), BAD_VALUE("<<\"'\">>")},
    {STR("\t\x1b\0\r\v\b\f"), BAD_VALUE("<<9,27,0,13,11,8,12>>")},
    {STR("\x7f"), BAD_VALUE("<<127>>")},
    {STR("\x80"), BAD_VALUE("<<128>>")},
    {STR("\x9f"), BAD_VALUE("<<159>>")},
    {STR("\xa0"), BAD_VALUE("<<\"\xa0\">>")},
    {STR("a\xff"), BAD_VALUE("<<\"a\xff\">>")},
    {STR("\xc3\xa9"), BAD_VALUE("<<\"\xc3\xa9\">>")}, /* UTF-8 bytes are latin-1 printable */
    {INT('b', 1), BAD_TYPE("byte", "1")},
    {UINT('B', 1), BAD_TYPE("unsignedbyte", "1")},
    {INT('s', 1), BAD_TYPE("short", "1")},
    {UINT('u', 1), BAD_TYPE("unsignedshort", "1")},
    {INT('I', 1), BAD_TYPE("signedint", "1")},
    {UINT('i', 1), BAD_TYPE("unsignedint", "1")},
    {INT('l', 1), BAD_TYPE("long", "1")},
    {UINT('L', 1), BAD_TYPE("long", "1")},
    {UINT('L', 1ull << 63), BAD_TYPE("long", "-9223372036854775808")},
    {UINT('L', UINT64_MAX), BAD_TYPE("long", "-1")},
    {UINT('T', 1), BAD_TYPE("timestamp", "1")},
    {UINT('T', (1ull << 63) + 5), BAD_TYPE("timestamp", "9223372036854775813")},
    {F32(1.5f), BAD_TYPE("float", "1.5")},
    {F32(0.1f), BAD_TYPE("float", "0.10000000149011612")},
    {F32(FLT_MAX), BAD_TYPE("float", "3.4028234663852886e38")},
    {F64(1.5), BAD_TYPE("double", "1.5")},
    {DEC(2, 150), BAD_TYPE("decimal", "{2,150}")},
    {DEC(0, 4294967295u), BAD_TYPE("decimal", "{0,4294967295}")},
    {BOOL(true), BAD_TYPE("bool", "true")},
    {BOOL(false), BAD_TYPE("bool", "false")},
    {BIN("all"), BAD_TYPE("binary", "<<\"all\">>")},
    {BIN("\x01\x02"), BAD_TYPE("binary", "<<1,2>>")},
    {BIN(""), BAD_TYPE("binary", "<<>>")},
    {BIN("ab\ncd"), BAD_TYPE("binary", "<<\"ab\\ncd\">>")},
    {VOID, BAD_TYPE("void", "undefined")},
    {ARRAY("I\0\0\0\1"
           "S\0\0\0\1a"),
     BAD_TYPE("array", "[{signedint,1},{longstr,<<\"a\">>}]")},
    {TABLE("\1aI\0\0\0\1"), BAD_TYPE("table", "[{<<\"a\">>,signedint,1}]")},
    {ARRAY(""), BAD_TYPE("array", "[]")},
    {TABLE(""), BAD_TYPE("table", "[]")},
    {ARRAY("A\0\0\0\5I\0\0\0\1"), BAD_TYPE("array", "[{array,[{signedint,1}]}]")},
    {ARRAY("V"), BAD_TYPE("array", "[{void,undefined}]")},
    {ARRAY("S\0\0\0\0"), BAD_TYPE("array", "[{longstr,<<>>}]")},
#undef BAD_VALUE
#undef BAD_TYPE
};
#define REFUSALS (sizeof rabbitmq_refusals / sizeof rabbitmq_refusals[0])

static int validate_x_match(const struct wire_field *v, char *err, size_t err_size)
{
    struct tx_table t;
    struct wire_writer *w = tx_table_begin(&t);
    struct binding b = {0};

    wire_table_put(w, "x-match", v);
    b.arguments = tx_table_end(&t);
    return exchange_type_headers.validate(&b, err, err_size);
}

START_TEST(validate_refuses_with_rabbitmq_text)
{
    char err[512];

    memset(err, 'Z', sizeof err);
    ck_assert_int_eq(validate_x_match(&rabbitmq_refusals[_i].x_match, err, sizeof err), -1);
    ck_assert_str_eq(err, rabbitmq_refusals[_i].text);
}
END_TEST

START_TEST(validate_accepts_the_four_modes_and_no_mode)
{
    static const char *const modes[] = {"all", "any", "all-with-x", "any-with-x"};
    struct tx_table t;
    struct binding b = {0};
    char err[64];

    for (size_t i = 0; i < 4; i++) {
        struct wire_field v = tx_S(modes[i]);

        ck_assert_int_eq(validate_x_match(&v, err, sizeof err), 0);
    }
    ck_assert_int_eq(exchange_type_headers.validate(&b, err, sizeof err), 0); /* no args */
    wire_table_put_longstr(tx_table_begin(&t), "a", wire_cstr("b"));
    b.arguments = tx_table_end(&t);
    ck_assert_int_eq(exchange_type_headers.validate(&b, err, sizeof err), 0);
}
END_TEST

START_TEST(validate_looks_at_the_first_x_match_only)
{
    struct tx_table t;
    struct wire_writer *w;
    struct binding b = {0};
    char err[256];

    w = tx_table_begin(&t);
    wire_table_put_longstr(w, "x-match", wire_cstr("all"));
    wire_table_put_longstr(w, "x-match", wire_cstr("foo"));
    b.arguments = tx_table_end(&t);
    ck_assert_int_eq(exchange_type_headers.validate(&b, err, sizeof err), 0);

    w = tx_table_begin(&t);
    wire_table_put_longstr(w, "x-match", wire_cstr("foo"));
    wire_table_put_longstr(w, "x-match", wire_cstr("all"));
    b.arguments = tx_table_end(&t);
    ck_assert_int_eq(exchange_type_headers.validate(&b, err, sizeof err), -1);
    ck_assert_str_eq(err, "Invalid x-match field value <<\"foo\">>; expected all, any, "
                          "all-with-x, or any-with-x");
}
END_TEST

START_TEST(validate_text_is_cut_to_the_buffer_and_terminated)
{
    struct wire_field v = tx_S("foo");
    char err[16];

    memset(err, 'Z', sizeof err);
    ck_assert_int_eq(validate_x_match(&v, err, sizeof err), -1);
    ck_assert_str_eq(err, "Invalid x-match");
    ck_assert_int_eq(validate_x_match(&v, err, 1), -1);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(validate_x_match(&v, NULL, 0), -1);
}
END_TEST

START_TEST(other_types_accept_any_arguments)
{
    ck_assert_ptr_null(exchange_type_direct.validate);
    ck_assert_ptr_null(exchange_type_fanout.validate);
    ck_assert_ptr_null(exchange_type_topic.validate);
}
END_TEST

/* ---- Floats as Erlang prints them ------------------------------------------------------ */

static const struct {
    double value;
    const char *text;
} erlang_floats[] = {
    {0.1, "0.1"},
    {(double)0.1f, "0.10000000149011612"},
    {1e10, "1.0e10"},
    {1e21, "1.0e21"},
    {1e22, "1.0e22"},
    {1e23, "1.0e23"},
    {1e-5, "1.0e-5"},
    {1e-4, "0.0001"},
    {0.001, "0.001"},
    {1.5e-4, "1.5e-4"},
    {1.23e-5, "1.23e-5"},
    {2.5e-3, "0.0025"},
    {123456789.0, "123456789.0"},
    {1e15, "1.0e15"},
    {1e16, "1.0e16"},
    {1e17, "1.0e17"},
    {-0.0, "-0.0"},
    {0.0, "0.0"},
    {1.0, "1.0"},
    {10.0, "10.0"},
    {100.0, "100.0"},
    {120.0, "120.0"},
    {1000.0, "1.0e3"},
    {12000.0, "1.2e4"},
    {100000.0, "1.0e5"},
    {123456.0, "123456.0"},
    {1234567.0, "1234567.0"},
    {12345678.0, "12345678.0"},
    {1e7, "1.0e7"},
    {0.5, "0.5"},
    {0.3, "0.3"},
    {2.0 / 3.0, "0.6666666666666666"},
    {1234.5678, "1234.5678"},
    {-3.0, "-3.0"},
    {5e-324, "5.0e-324"},
    {1.5e-323, "1.5e-323"},
    {2.2250738585072014e-308, "2.2250738585072014e-308"},
    {1.7976931348623157e308, "1.7976931348623157e308"},
    {1.5e300, "1.5e300"},
    {9007199254740991.0, "9007199254740991.0"},
    {9007199254740992.0, "9.007199254740992e15"},
    {-9007199254740992.0, "-9.007199254740992e15"},
    {4503599627370496.0, "4503599627370496.0"},
    {1.2345678901234568e20, "1.2345678901234568e20"},
};
#define FLOATS (sizeof erlang_floats / sizeof erlang_floats[0])

START_TEST(floats_print_as_erlang_prints_them)
{
    char buf[64];
    struct erl_out o = {.buf = buf, .size = sizeof buf};

    erl_out_float(&o, erlang_floats[_i].value);
    ck_assert_str_eq(buf, erlang_floats[_i].text);
    ck_assert_uint_eq(o.len, strlen(erlang_floats[_i].text));
}
END_TEST

START_TEST(erl_out_counts_what_did_not_fit)
{
    char buf[4];
    struct erl_out o = {.buf = buf, .size = sizeof buf};

    erl_out_str(&o, "abcdef");
    ck_assert_str_eq(buf, "abc");
    ck_assert_uint_eq(o.len, 6);
    erl_out_str(&o, "gh");
    ck_assert_str_eq(buf, "abc");
    ck_assert_uint_eq(o.len, 8);
}
END_TEST

static Suite *headers_suite(void)
{
    Suite *s = suite_create("exchanges_headers");
    TCase *match = tcase_create("match");
    TCase *validate = tcase_create("validate");
    TCase *terms = tcase_create("terms");

    tcase_add_loop_test(match, each_binding_matches_as_rabbitmq_matched, 0, (int)MATCH_CASES);
    tcase_add_test(match, all_cases_bound_together_match_each_message_like_alone);
    tcase_add_test(match, the_routing_key_plays_no_part);
    tcase_add_test(match, unbind_in_any_order_keeps_the_other_bindings);
    tcase_add_test(match, many_headers_in_a_message_are_sorted_once_and_found);
    tcase_add_loop_test(validate, validate_refuses_with_rabbitmq_text, 0, (int)REFUSALS);
    tcase_add_test(validate, validate_accepts_the_four_modes_and_no_mode);
    tcase_add_test(validate, validate_looks_at_the_first_x_match_only);
    tcase_add_test(validate, validate_text_is_cut_to_the_buffer_and_terminated);
    tcase_add_test(validate, other_types_accept_any_arguments);
    tcase_add_loop_test(terms, floats_print_as_erlang_prints_them, 0, (int)FLOATS);
    tcase_add_test(terms, erl_out_counts_what_did_not_fit);
    suite_add_tcase(s, match);
    suite_add_tcase(s, validate);
    suite_add_tcase(s, terms);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(headers_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
