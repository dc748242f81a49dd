/* The exchange registry, route_out, the byte map, and the direct and fanout types. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/bytes_map.h"
#include "exchanges/registry.h"
#include "tests/unit/check_exchanges.h"

/* ---- route_out ------------------------------------------------------------------------ */

START_TEST(route_out_keeps_every_destination_in_order_while_growing)
{
    static char dests[1000];
    struct route_out out = {0};

    for (size_t i = 0; i < 1000; i++)
        route_out_add(&out, &dests[i]);
    ck_assert_uint_eq(out.len, 1000);
    ck_assert_uint_ge(out.cap, 1000);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_ptr_eq(out.dest[i], &dests[i]);
    route_out_free(&out);
    ck_assert_ptr_null(out.dest);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(out.cap, 0);
}
END_TEST

START_TEST(route_out_clear_keeps_the_storage_for_the_next_message)
{
    struct route_out out = {0};
    void **storage;
    int a, b;

    route_out_add(&out, &a);
    storage = out.dest;
    route_out_clear(&out);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_ptr_eq(out.dest, storage);
    route_out_add(&out, &b);
    ck_assert_ptr_eq(out.dest, storage);
    ck_assert_ptr_eq(out.dest[0], &b);
    route_out_free(&out);
    route_out_free(NULL);
}
END_TEST

/* ---- registry ------------------------------------------------------------------------- */

START_TEST(registry_finds_the_four_types_by_exact_name)
{
    static const char *const names[] = {"direct", "fanout", "topic", "headers"};

    for (size_t i = 0; i < 4; i++) {
        const struct exchange_type *t = exchange_type_find(wire_cstr(names[i]));

        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_ptr_nonnull(t->create);
        ck_assert_ptr_nonnull(t->destroy);
        ck_assert_ptr_nonnull(t->bind);
        ck_assert_ptr_nonnull(t->unbind);
        ck_assert_ptr_nonnull(t->route);
    }
    ck_assert_ptr_eq(exchange_type_find(wire_cstr("direct")), &exchange_type_direct);
    ck_assert_ptr_eq(exchange_type_find(wire_cstr("headers")), &exchange_type_headers);
}
END_TEST

START_TEST(registry_refuses_names_rabbitmq_refuses)
{
    /* RabbitMQ 3.10 answers each of these with 503 COMMAND_INVALID. */
    static const char *const names[] = {"",        "foo",      "DIRECT",           "Direct",
                                        "direct ", "x-foo",    "amq.direct",       "topic1",
                                        "fanou",   "headersx", "x-consistent-hash"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_msg(exchange_type_find(wire_cstr(names[i])) == NULL, "%s", names[i]);
    /* A name is bytes, not a C string: "direct\0" is not "direct". */
    ck_assert_ptr_null(exchange_type_find((struct wire_bytes){(const uint8_t *)"direct", 7}));
    ck_assert_ptr_null(exchange_type_find((struct wire_bytes){(const uint8_t *)"direct", 5}));
}
END_TEST

/* ---- bytes_map ------------------------------------------------------------------------ */

START_TEST(bytes_map_stores_removes_and_shrinks_many_keys)
{
    static int values[5000];
    struct bytes_map m = {0};
    char key[32];

    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key.%d", i);
        bytes_map_put(&m, wire_cstr(key), &values[i]);
    }
    ck_assert_uint_eq(m.len, 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key.%d", i);
        ck_assert_ptr_eq(bytes_map_get(&m, wire_cstr(key)), &values[i]);
    }
    ck_assert_ptr_null(bytes_map_get(&m, wire_cstr("key.5000")));
    ck_assert_ptr_null(bytes_map_get(&m, wire_cstr("key.")));
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "key.%d", i);
        ck_assert_ptr_eq(bytes_map_remove(&m, wire_cstr(key)), &values[i]);
        ck_assert_ptr_null(bytes_map_remove(&m, wire_cstr(key)));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key.%d", i);
        ck_assert_ptr_eq(bytes_map_get(&m, wire_cstr(key)), i % 2 ? &values[i] : NULL);
    }
    for (int i = 1; i < 5000; i += 2) {
        snprintf(key, sizeof key, "key.%d", i);
        bytes_map_remove(&m, wire_cstr(key));
    }
    ck_assert(bytes_map_is_empty(&m));
    ck_assert_ptr_null(m.buckets); /* an empty map holds no memory */
    bytes_map_free(&m, NULL);
}
END_TEST

START_TEST(bytes_map_keys_are_bytes_with_their_length)
{
    struct bytes_map m = {0};
    int empty, nul, a;

    bytes_map_put(&m, (struct wire_bytes){(const uint8_t *)"", 0}, &empty);
    bytes_map_put(&m, (struct wire_bytes){(const uint8_t *)"a\0b", 3}, &nul);
    bytes_map_put(&m, wire_cstr("a"), &a);
    ck_assert_ptr_eq(bytes_map_get(&m, (struct wire_bytes){NULL, 0}), &empty);
    ck_assert_ptr_eq(bytes_map_get(&m, (struct wire_bytes){(const uint8_t *)"a\0b", 3}), &nul);
    ck_assert_ptr_eq(bytes_map_get(&m, wire_cstr("a")), &a);
    ck_assert_ptr_null(bytes_map_get(&m, (struct wire_bytes){(const uint8_t *)"a\0c", 3}));
    ck_assert_ptr_null(bytes_map_get(&m, (struct wire_bytes){(const uint8_t *)"a\0", 2}));
    ck_assert_uint_ne(bytes_map_hash(wire_cstr("a")), bytes_map_hash(wire_cstr("b")));
    ck_assert_uint_eq(bytes_map_hash(wire_cstr("same")), bytes_map_hash(wire_cstr("same")));
    bytes_map_free(&m, NULL);
}
END_TEST

static void count_value(void *value, void *ctx)
{
    (void)value;
    ++*(int *)ctx;
}

START_TEST(bytes_map_each_visits_every_value_once_and_free_frees_them)
{
    struct bytes_map m = {0};
    char key[16];
    int seen = 0;

    for (int i = 0; i < 100; i++) {
        int *v = malloc(sizeof *v);

        ck_assert_ptr_nonnull(v);
        snprintf(key, sizeof key, "%d", i);
        bytes_map_put(&m, wire_cstr(key), v);
    }
    bytes_map_each(&m, count_value, &seen);
    ck_assert_int_eq(seen, 100);
    bytes_map_free(&m, free); /* ASan reports a leak if a value is missed */
    ck_assert_uint_eq(m.len, 0);
}
END_TEST

/* ---- direct --------------------------------------------------------------------------- */

START_TEST(direct_routes_to_bindings_with_the_exact_key)
{
    struct test_exchange x;

    tx_open(&x, "direct");
    ck_assert_str_eq(tx_route(&x, "a"), "");
    tx_bind(&x, "q1", "a");
    tx_bind(&x, "q2", "b");
    tx_bind(&x, "q3", "a");
    tx_bind(&x, "q4", "");
    tx_bind(&x, "q5", "a.b");
    ck_assert_str_eq(tx_route(&x, "a"), "q1,q3");
    ck_assert_str_eq(tx_route(&x, "b"), "q2");
    ck_assert_str_eq(tx_route(&x, ""), "q4");
    ck_assert_str_eq(tx_route(&x, "a.b"), "q5");
    /* No patterns, no case folding, no prefixes. */
    ck_assert_str_eq(tx_route(&x, "A"), "");
    ck_assert_str_eq(tx_route(&x, "a "), "");
    ck_assert_str_eq(tx_route(&x, "*"), "");
    ck_assert_str_eq(tx_route(&x, "#"), "");
    ck_assert_str_eq(tx_route(&x, "a.*"), "");
    tx_close(&x);
}
END_TEST

START_TEST(direct_key_bytes_include_nul_and_high_bytes)
{
    struct test_exchange x;
    struct binding *b = calloc(1, sizeof *b);

    tx_open(&x, "direct");
    ck_assert_ptr_nonnull(b);
    b->destination = "nul";
    b->routing_key = (struct wire_bytes){(const uint8_t *)"k\0\xff", 3};
    x.type->bind(x.state, b);
    tx_bind(&x, "k", "k");
    ck_assert_str_eq(tx_route_full(&x, "k\0\xff", 3, (struct wire_table){{NULL, 0}}), "nul");
    ck_assert_str_eq(tx_route_full(&x, "k\0", 2, (struct wire_table){{NULL, 0}}), "");
    ck_assert_str_eq(tx_route(&x, "k"), "k");
    x.type->unbind(x.state, b);
    ck_assert_str_eq(tx_route_full(&x, "k\0\xff", 3, (struct wire_table){{NULL, 0}}), "");
    free(b);
    tx_close(&x);
}
END_TEST

START_TEST(direct_two_bindings_to_one_queue_are_both_emitted)
{
    struct test_exchange x;

    /* Two bindings with one key and one queue differ by arguments in the broker; each is
     * emitted and the broker removes the duplicate. */
    tx_open(&x, "direct");
    tx_bind(&x, "q", "k");
    tx_bind(&x, "q", "k");
    ck_assert_str_eq(tx_route(&x, "k"), "q,q");
    tx_close(&x);
}
END_TEST

START_TEST(direct_unbind_removes_only_that_binding_and_rebind_restores_it)
{
    struct test_exchange x;
    struct binding *a1, *a2, *b1;

    tx_open(&x, "direct");
    a1 = tx_bind(&x, "q1", "a");
    a2 = tx_bind(&x, "q2", "a");
    b1 = tx_bind(&x, "q3", "b");
    /* a1 owned the key bytes the map first saw: freeing them must not break "a". */
    tx_unbind(&x, a1);
    ck_assert_str_eq(tx_route(&x, "a"), "q2");
    ck_assert_str_eq(tx_route(&x, "b"), "q3");
    tx_unbind(&x, a2);
    ck_assert_str_eq(tx_route(&x, "a"), "");
    a1 = tx_bind(&x, "q1", "a");
    ck_assert_str_eq(tx_route(&x, "a"), "q1");
    tx_unbind(&x, b1);
    tx_unbind(&x, a1);
    ck_assert_str_eq(tx_route(&x, "a"), "");
    ck_assert_str_eq(tx_route(&x, "b"), "");
    tx_close(&x);
}
END_TEST

START_TEST(direct_many_keys_and_bindings_route_independently)
{
    static char names[2000][16];
    static struct binding *bs[2000];
    struct test_exchange x;
    char key[32];

    tx_open(&x, "direct");
    for (int i = 0; i < 2000; i++) {
        snprintf(names[i], sizeof names[i], "q%d", i);
        snprintf(key, sizeof key, "key.%d", i % 1000);
        bs[i] = tx_bind(&x, names[i], key);
    }
    for (int i = 0; i < 1000; i++) {
        const char *lo = names[i], *hi = names[i + 1000], *swap;
        char want[2 * sizeof names[0] + 2];

        if (strcmp(lo, hi) > 0) {
            swap = lo;
            lo = hi;
            hi = swap;
        }
        snprintf(key, sizeof key, "key.%d", i);
        snprintf(want, sizeof want, "%.15s,%.15s", lo, hi);
        ck_assert_str_eq(tx_route(&x, key), want);
    }
    /* Unbind in an order that moves members around inside each key's set. */
    for (int i = 0; i < 2000; i += 3)
        tx_unbind(&x, bs[i]);
    for (int i = 0; i < 1000; i++) {
        size_t want = (i % 3 != 0) + ((i + 1000) % 3 != 0);

        snprintf(key, sizeof key, "key.%d", i);
        tx_route(&x, key);
        ck_assert_uint_eq(x.out.len, want);
    }
    for (int i = 0; i < 2000; i++) {
        if (i % 3 != 0)
            tx_unbind(&x, bs[i]);
    }
    ck_assert_str_eq(tx_route(&x, "key.1"), "");
    tx_close(&x);
}
END_TEST

/* ---- fanout --------------------------------------------------------------------------- */

START_TEST(fanout_routes_to_every_binding_whatever_the_key)
{
    struct test_exchange x;
    struct binding *b2;

    tx_open(&x, "fanout");
    ck_assert_str_eq(tx_route(&x, "anything"), "");
    tx_bind(&x, "q1", "");
    b2 = tx_bind(&x, "q2", "some.key");
    tx_bind(&x, "q3", "#");
    tx_bind(&x, "q3", "other");
    ck_assert_str_eq(tx_route(&x, ""), "q1,q2,q3,q3");
    ck_assert_str_eq(tx_route(&x, "x.y.z"), "q1,q2,q3,q3");
    tx_unbind(&x, b2);
    ck_assert_str_eq(tx_route(&x, "some.key"), "q1,q3,q3");
    tx_bind(&x, "q2", "");
    ck_assert_str_eq(tx_route(&x, "k"), "q1,q2,q3,q3");
    tx_close(&x);
}
END_TEST

START_TEST(fanout_unbind_in_any_order_keeps_exactly_the_rest)
{
    static char names[1000][8];
    static struct binding *bs[1000];
    struct test_exchange x;
    size_t left = 1000;

    tx_open(&x, "fanout");
    for (int i = 0; i < 1000; i++) {
        snprintf(names[i], sizeof names[i], "%03d", i);
        bs[i] = tx_bind(&x, names[i], "");
    }
    /* Remove a scattered half (each removal moves the last member into the hole). */
    for (int i = 0; i < 1000; i++) {
        if ((i * 7919) % 1000 < 500) {
            tx_unbind(&x, bs[i]);
            bs[i] = NULL;
            left--;
        }
    }
    tx_route(&x, "k");
    ck_assert_uint_eq(x.out.len, left);
    for (size_t i = 0, j = 0; i < 1000; i++) {
        if (bs[i] == NULL)
            continue;
        ck_assert_str_eq((const char *)x.out.dest[j], names[i]); /* sorted by tx_route */
        j++;
    }
    for (int i = 0; i < 1000; i++) {
        if (bs[i] != NULL)
            tx_unbind(&x, bs[i]);
    }
    ck_assert_str_eq(tx_route(&x, "k"), "");
    tx_bind(&x, "again", "");
    ck_assert_str_eq(tx_route(&x, "k"), "again");
    tx_close(&x);
}
END_TEST

static Suite *exchanges_suite(void)
{
    Suite *s = suite_create("exchanges");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, route_out_keeps_every_destination_in_order_while_growing);
    tcase_add_test(tc, route_out_clear_keeps_the_storage_for_the_next_message);
    tcase_add_test(tc, registry_finds_the_four_types_by_exact_name);
    tcase_add_test(tc, registry_refuses_names_rabbitmq_refuses);
    tcase_add_test(tc, bytes_map_stores_removes_and_shrinks_many_keys);
    tcase_add_test(tc, bytes_map_keys_are_bytes_with_their_length);
    tcase_add_test(tc, bytes_map_each_visits_every_value_once_and_free_frees_them);
    tcase_add_test(tc, direct_routes_to_bindings_with_the_exact_key);
    tcase_add_test(tc, direct_key_bytes_include_nul_and_high_bytes);
    tcase_add_test(tc, direct_two_bindings_to_one_queue_are_both_emitted);
    tcase_add_test(tc, direct_unbind_removes_only_that_binding_and_rebind_restores_it);
    tcase_add_test(tc, direct_many_keys_and_bindings_route_independently);
    tcase_add_test(tc, fanout_routes_to_every_binding_whatever_the_key);
    tcase_add_test(tc, fanout_unbind_in_any_order_keeps_exactly_the_rest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(exchanges_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
