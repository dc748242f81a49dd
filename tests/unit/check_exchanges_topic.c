/* The topic exchange: patterns against keys as RabbitMQ 3.10 answers them, the trie's
 * bookkeeping (pruning), and routing time on patterns that would explode a backtracking
 * matcher. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/registry.h"
#include "exchanges/topic.h"
#include "tests/unit/check_exchanges.h"

/* ---- What RabbitMQ answered --------------------------------------------------------------
 * Each pattern was bound alone on a topic exchange of RabbitMQ 3.10.8, and a message
 * published with each of these keys; matches lists the keys that reached the queue. */
static const char *const probe_keys[] = {"",     "a",     ".",       "..", "a.", "a.b", ".a",
                                         "a..b", "a.x.b", "a.x.y.b", "b",  "a*", "x.a", "a.b.c"};
#define PROBE_KEYS (sizeof probe_keys / sizeof probe_keys[0])
#define ALL_KEYS                                                                                   \
    "", "a", ".", "..", "a.", ".a", "a.b", "a..b", "a.x.b", "a.x.y.b", "b", "a*", "x.a", "a.b.c"
#define ALL_BUT_EMPTY                                                                              \
    "a", ".", "..", "a.", ".a", "a.b", "a..b", "a.x.b", "a.x.y.b", "b", "a*", "x.a", "a.b.c"

static const struct {
    const char *pattern;
    const char *matches[PROBE_KEYS + 1]; /* NULL-terminated */
} rabbitmq_answers[] = {
    {"", {"", NULL}},
    {"*", {"a", "b", "a*", NULL}},
    {"#", {ALL_KEYS, NULL}},
    {"#.#", {ALL_KEYS, NULL}},
    {"#.#.#", {ALL_KEYS, NULL}},
    {"*.#", {ALL_BUT_EMPTY, NULL}},
    {"#.*", {ALL_BUT_EMPTY, NULL}},
    {".", {".", NULL}},
    {"*.*", {".", "a.", ".a", "a.b", "x.a", NULL}},
    {".#", {".", "..", ".a", NULL}},
    {"#.", {".", "..", "a.", NULL}},
    {"a", {"a", NULL}},
    {"a.", {"a.", NULL}},
    {".a", {".a", NULL}},
    {"a.*", {"a.", "a.b", NULL}},
    {"a.#", {"a", "a.", "a.b", "a..b", "a.x.b", "a.x.y.b", "a.b.c", NULL}},
    {"#.a", {"a", ".a", "x.a", NULL}},
    {"*.a", {".a", "x.a", NULL}},
    {"a..b", {"a..b", NULL}},
    {"a.*.b", {"a..b", "a.x.b", NULL}},
    {"a.#.b", {"a.b", "a..b", "a.x.b", "a.x.y.b", NULL}},
    {"a.#.#.b", {"a.b", "a..b", "a.x.b", "a.x.y.b", NULL}},
    {"#.#.a", {"a", ".a", "x.a", NULL}},
    {"a*", {"a*", NULL}},
    {"*.", {".", "a.", NULL}},
    {".*", {".", ".a", NULL}},
    {"..", {"..", NULL}},
    {"#..#", {".", "..", "a.", ".a", "a..b", NULL}},
    {"a.#.", {"a.", NULL}},
    {"#.b.#", {"a.b", "a..b", "a.x.b", "a.x.y.b", "b", "a.b.c", NULL}},
};
#define ANSWERS (sizeof rabbitmq_answers / sizeof rabbitmq_answers[0])

static bool answer_matches(size_t pattern, const char *key)
{
    for (const char *const *m = rabbitmq_answers[pattern].matches; *m != NULL; m++) {
        if (strcmp(*m, key) == 0)
            return true;
    }
    return false;
}

START_TEST(each_pattern_alone_matches_the_keys_rabbitmq_matched)
{
    struct test_exchange x;

    tx_open(&x, "topic");
    for (size_t p = 0; p < ANSWERS; p++) {
        struct binding *b = tx_bind(&x, "q", rabbitmq_answers[p].pattern);

        for (size_t k = 0; k < PROBE_KEYS; k++) {
            const char *want = answer_matches(p, probe_keys[k]) ? "q" : "";

            ck_assert_msg(strcmp(tx_route(&x, probe_keys[k]), want) == 0,
                          "pattern \"%s\" key \"%s\": routed to \"%s\", RabbitMQ to \"%s\"",
                          rabbitmq_answers[p].pattern, probe_keys[k], x.routed, want);
        }
        tx_unbind(&x, b);
        ck_assert_uint_eq(topic_node_count(x.state), 0);
    }
    tx_close(&x);
}
END_TEST

START_TEST(all_patterns_bound_together_route_like_each_alone)
{
    static char labels[ANSWERS][8];
    struct test_exchange x;

    /* One trie holding every pattern: shared prefixes, "*" and "#" children side by side. */
    tx_open(&x, "topic");
    for (size_t p = 0; p < ANSWERS; p++) {
        snprintf(labels[p], sizeof labels[p], "p%02zu", p);
        tx_bind(&x, labels[p], rabbitmq_answers[p].pattern);
    }
    for (size_t k = 0; k < PROBE_KEYS; k++) {
        char want[ANSWERS * 4 + 1] = "";

        for (size_t p = 0; p < ANSWERS; p++) {
            if (answer_matches(p, probe_keys[k])) {
                strcat(want, want[0] ? "," : "");
                strcat(want, labels[p]);
            }
        }
        ck_assert_msg(strcmp(tx_route(&x, probe_keys[k]), want) == 0,
                      "key \"%s\": routed to %s, want %s", probe_keys[k], x.routed, want);
    }
    tx_close(&x);
}
END_TEST

START_TEST(brief_examples_route_as_specified)
{
    struct test_exchange x;

    tx_open(&x, "topic");
    tx_bind(&x, "abc", "a.*.c");
    tx_bind(&x, "hash", "#");
    tx_bind(&x, "a_hash", "a.#");
    tx_bind(&x, "hash_c", "#.c");
    tx_bind(&x, "a_hash_c", "a.#.c");
    tx_bind(&x, "star", "*");
    ck_assert_str_eq(tx_route(&x, "a.c"), "a_hash,a_hash_c,hash,hash_c");
    ck_assert_str_eq(tx_route(&x, "a.b.c"), "a_hash,a_hash_c,abc,hash,hash_c");
    ck_assert_str_eq(tx_route(&x, "a.b.b.c"), "a_hash,a_hash_c,hash,hash_c");
    ck_assert_str_eq(tx_route(&x, ""), "hash");           /* "#" matches no words, "*" does not */
    ck_assert_str_eq(tx_route(&x, "a.b"), "a_hash,hash"); /* "*" is exactly one word */
    ck_assert_str_eq(tx_route(&x, "z"), "hash,star");
    tx_close(&x);
}
END_TEST

START_TEST(two_bindings_to_one_destination_are_both_emitted)
{
    struct test_exchange x;

    tx_open(&x, "topic");
    tx_bind(&x, "q", "a.*");
    tx_bind(&x, "q", "#");
    tx_bind(&x, "q", "a.b");
    tx_bind(&x, "q", "a.b"); /* same pattern twice: two bindings in one trie node */
    ck_assert_str_eq(tx_route(&x, "a.b"), "q,q,q,q");
    ck_assert_str_eq(tx_route(&x, "a.c"), "q,q");
    tx_close(&x);
}
END_TEST

START_TEST(unbind_prunes_nodes_no_pattern_needs)
{
    struct test_exchange x;
    struct binding *abc, *abd, *ahash, *starx, *abc2;

    tx_open(&x, "topic");
    ck_assert_uint_eq(topic_node_count(x.state), 0);
    abc = tx_bind(&x, "q1", "a.b.c");
    abd = tx_bind(&x, "q2", "a.b.d");
    ahash = tx_bind(&x, "q3", "a.#");
    starx = tx_bind(&x, "q4", "*.x");
    /* a, a.b, a.b.c, a.b.d, a.#, *, *.x */
    ck_assert_uint_eq(topic_node_count(x.state), 7);
    abc2 = tx_bind(&x, "q5", "a.b.c");
    ck_assert_uint_eq(topic_node_count(x.state), 7);

    tx_unbind(&x, abc);
    ck_assert_uint_eq(topic_node_count(x.state), 7); /* q5 still needs a.b.c */
    ck_assert_str_eq(tx_route(&x, "a.b.c"), "q3,q5");
    tx_unbind(&x, abc2);
    ck_assert_uint_eq(topic_node_count(x.state), 6);
    tx_unbind(&x, abd);
    ck_assert_uint_eq(topic_node_count(x.state), 4); /* a.b went with its last child */
    ck_assert_str_eq(tx_route(&x, "a.b.d"), "q3");
    tx_unbind(&x, ahash);
    ck_assert_uint_eq(topic_node_count(x.state), 2);
    ck_assert_str_eq(tx_route(&x, "a.x"), "q4");
    tx_unbind(&x, starx);
    ck_assert_uint_eq(topic_node_count(x.state), 0);
    ck_assert_str_eq(tx_route(&x, "a.x"), "");

    /* A node that still has bindings stays when its children go, and rebinding works. */
    ahash = tx_bind(&x, "q1", "a");
    abc = tx_bind(&x, "q2", "a.b.c");
    tx_unbind(&x, abc);
    ck_assert_uint_eq(topic_node_count(x.state), 1);
    ck_assert_str_eq(tx_route(&x, "a"), "q1");
    abc = tx_bind(&x, "q2", "a.b.c");
    ck_assert_str_eq(tx_route(&x, "a.b.c"), "q2");
    tx_close(&x);
}
END_TEST

START_TEST(empty_pattern_binds_at_the_root)
{
    struct test_exchange x;
    struct binding *e;

    tx_open(&x, "topic");
    e = tx_bind(&x, "empty", "");
    ck_assert_uint_eq(topic_node_count(x.state), 0);
    ck_assert_str_eq(tx_route(&x, ""), "empty");
    ck_assert_str_eq(tx_route(&x, "."), "");
    tx_unbind(&x, e);
    ck_assert_str_eq(tx_route(&x, ""), "");
    tx_close(&x);
}
END_TEST

/* ---- Routing time ------------------------------------------------------------------------ */

/* "b.b.b...b" with n words, optionally followed by ".a". */
static char *repeat_key(size_t n, bool end_with_a)
{
    char *key = malloc(2 * n + 3);
    size_t len = 0;

    ck_assert_ptr_nonnull(key);
    for (size_t i = 0; i < n; i++) {
        key[len++] = 'b';
        key[len++] = '.';
    }
    if (end_with_a) {
        key[len++] = 'a';
    } else if (len > 0) {
        len--;
    }
    key[len] = '\0';
    return key;
}

START_TEST(many_hashes_against_a_long_key_stay_polynomial)
{
    /* A backtracking matcher tries every way to split 200 words among ten "#": about 10^16
     * paths. The memo makes it ten "#" nodes times 201 positions; Check's timeout fails the
     * test if routing ever goes exponential again. */
    struct test_exchange x;
    char *miss = repeat_key(200, false), *hit = repeat_key(200, true);

    tx_open(&x, "topic");
    tx_bind(&x, "h10a", "#.#.#.#.#.#.#.#.#.#.a");
    tx_bind(&x, "h4a", "#.#.#.#.a");
    tx_bind(&x, "hbhbh", "#.b.#.b.#.b.#.b.#.a.#");
    tx_bind(&x, "starhash", "*.#.*.#.*.#.*.#.*");
    for (int i = 0; i < 20; i++) {
        ck_assert_str_eq(tx_route(&x, miss), "starhash");
        ck_assert_str_eq(tx_route(&x, hit), "h10a,h4a,hbhbh,starhash");
    }
    tx_close(&x);
    free(miss);
    free(hit);
}
END_TEST

START_TEST(keys_of_many_and_empty_words)
{
    /* Routing keys come from the wire as shortstr (255 octets at most), but CC/BCC headers
     * are longstr: the walk must not depend on a bound. */
    struct test_exchange x;
    size_t n = 100000;
    char *dots = malloc(n + 1);

    ck_assert_ptr_nonnull(dots);
    memset(dots, '.', n);
    dots[n] = '\0'; /* n + 1 empty words */
    tx_open(&x, "topic");
    tx_bind(&x, "hash", "#");
    tx_bind(&x, "edges", ".#.");
    tx_bind(&x, "star_hash", "*.#");
    tx_bind(&x, "two", "*.*");
    ck_assert_str_eq(tx_route(&x, dots), "edges,hash,star_hash");
    ck_assert_str_eq(tx_route(&x, "."), "edges,hash,star_hash,two");
    tx_close(&x);
    free(dots);
}
END_TEST

/* ---- Against a reference matcher ------------------------------------------------------ */

static size_t split(const char *s, struct wire_bytes *words)
{
    size_t n = 0, len = strlen(s), start = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            words[n++] = (struct wire_bytes){(const uint8_t *)s + start, i - start};
            start = i + 1;
        }
    }
    return n;
}

/* The definition, by backtracking: fine for the short keys below. */
static bool reference_match(const struct wire_bytes *p, size_t np, const struct wire_bytes *k,
                            size_t nk)
{
    if (np == 0)
        return nk == 0;
    if (wire_bytes_eq_cstr(p[0], "#"))
        return reference_match(p + 1, np - 1, k, nk) ||
               (nk > 0 && reference_match(p, np, k + 1, nk - 1));
    if (nk == 0)
        return false;
    if (wire_bytes_eq_cstr(p[0], "*") || wire_bytes_eq(p[0], k[0]))
        return reference_match(p + 1, np - 1, k + 1, nk - 1);
    return false;
}

static void random_words(unsigned *seed, char *out, const char *const *alphabet, int n_alpha,
                         int max_words)
{
    int n = rand_r(seed) % (max_words + 1);

    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            strcat(out, ".");
        strcat(out, alphabet[rand_r(seed) % n_alpha]);
    }
}

#define RANDOM_PATTERNS 400
#define RANDOM_KEYS     400

START_TEST(random_patterns_route_like_the_reference_matcher)
{
    static const char *const pattern_words[] = {"a", "b", "", "*", "#", "ab"};
    static const char *const key_words[] = {"a", "b", "", "ab", "*"};
    static char patterns[RANDOM_PATTERNS][64], keys[RANDOM_KEYS][64];
    static char labels[RANDOM_PATTERNS][8];
    static struct binding *bs[RANDOM_PATTERNS];
    static char want[RANDOM_PATTERNS * 5 + 1];
    struct wire_bytes pw[32], kw[32];
    struct test_exchange x;
    unsigned seed = 20240611;

    tx_open(&x, "topic");
    for (int i = 0; i < RANDOM_PATTERNS; i++) {
        random_words(&seed, patterns[i], pattern_words, 6, 6);
        snprintf(labels[i], sizeof labels[i], "p%03d", i);
        bs[i] = tx_bind(&x, labels[i], patterns[i]);
    }
    for (int k = 0; k < RANDOM_KEYS; k++)
        random_words(&seed, keys[k], key_words, 5, 7);

    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < RANDOM_KEYS; k++) {
            size_t nk = split(keys[k], kw);

            want[0] = '\0';
            for (int i = 0; i < RANDOM_PATTERNS; i++) {
                if (bs[i] != NULL && reference_match(pw, split(patterns[i], pw), kw, nk)) {
                    strcat(want, want[0] ? "," : "");
                    strcat(want, labels[i]);
                }
            }
            ck_assert_msg(strcmp(tx_route(&x, keys[k]), want) == 0, "key \"%s\": %s, want %s",
                          keys[k], x.routed, want);
        }
        /* Second round: half of the patterns unbound, pruning along the way. */
        for (int i = 0; i < RANDOM_PATTERNS && round == 0; i += 2) {
            tx_unbind(&x, bs[i]);
            bs[i] = NULL;
        }
    }
    for (int i = 1; i < RANDOM_PATTERNS; i += 2)
        tx_unbind(&x, bs[i]);
    ck_assert_uint_eq(topic_node_count(x.state), 0);
    tx_close(&x);
}
END_TEST

static Suite *topic_suite(void)
{
    Suite *s = suite_create("exchanges_topic");
    TCase *tc = tcase_create("topic");

    tcase_add_test(tc, each_pattern_alone_matches_the_keys_rabbitmq_matched);
    tcase_add_test(tc, all_patterns_bound_together_route_like_each_alone);
    tcase_add_test(tc, brief_examples_route_as_specified);
    tcase_add_test(tc, two_bindings_to_one_destination_are_both_emitted);
    tcase_add_test(tc, unbind_prunes_nodes_no_pattern_needs);
    tcase_add_test(tc, empty_pattern_binds_at_the_root);
    tcase_add_test(tc, many_hashes_against_a_long_key_stay_polynomial);
    tcase_add_test(tc, keys_of_many_and_empty_words);
    tcase_add_test(tc, random_patterns_route_like_the_reference_matcher);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(topic_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
