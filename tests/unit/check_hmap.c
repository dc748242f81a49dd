/* The hash map (src/base/hmap.h): hmap_remove_if removes exactly the entries it is asked to,
 * hands each to release once, and leaves every other entry where lookups find it, through
 * the backward shifts its removals make in full probe chains. */
#include "src/base/hmap.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 2000 };

struct item {
    char name[16];
    int n;
};

static int released[N];

static bool is_even(const void *v, void *ctx)
{
    (void)ctx;
    return ((const struct item *)v)->n % 2 == 0;
}

static void release(void *v)
{
    struct item *it = v;

    released[it->n]++;
    free(it);
}

static struct wire_bytes key_of(const struct item *it)
{
    return (struct wire_bytes){.ptr = (const uint8_t *)it->name, .len = strlen(it->name)};
}

START_TEST(remove_if_removes_what_it_is_asked_and_keeps_the_rest_findable)
{
    struct hmap m;
    char name[16];

    hmap_init(&m);
    for (int i = 0; i < N; i++) {
        struct item *it = calloc(1, sizeof *it);
        snprintf(it->name, sizeof it->name, "item-%d", i);
        it->n = i;
        hmap_put(&m, key_of(it), it);
    }
    hmap_remove_if(&m, is_even, NULL, release);
    ck_assert_uint_eq(m.len, N / 2);
    for (int i = 0; i < N; i++) {
        struct wire_bytes k;
        snprintf(name, sizeof name, "item-%d", i);
        k = (struct wire_bytes){.ptr = (const uint8_t *)name, .len = strlen(name)};
        struct item *it = hmap_get(&m, k);
        if (i % 2 == 0) {
            ck_assert_ptr_null(it);
            ck_assert_int_eq(released[i], 1);
        } else {
            ck_assert_ptr_nonnull(it);
            ck_assert_int_eq(it->n, i);
            ck_assert_int_eq(released[i], 0);
        }
    }
    /* Nothing stale: nothing removed. */
    hmap_remove_if(&m, is_even, NULL, release);
    ck_assert_uint_eq(m.len, N / 2);
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].value != NULL)
            free(m.slots[i].value);
    hmap_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hmap");
    TCase *tc = tcase_create("remove_if");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, remove_if_removes_what_it_is_asked_and_keeps_the_rest_findable);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
