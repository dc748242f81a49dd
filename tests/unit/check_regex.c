/* The bound on a user's regular expression (src/base/regex.h): the patterns people write
 * pass and still match what they should; the ones whose repetitions glibc would expand to
 * gigabytes, or whose anchors it would clone without end, are refused with the bound they
 * pass, before regcomp() sees them; malformed ones reach regcomp() and get its reason. */
#include "src/base/regex.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char why[256];

/* Compiles through the bound, or fails the test with the reason. */
static void compile(regex_t *re, const char *ere)
{
    if (regex_compile_bounded(re, ere, why, sizeof why) != 0)
        ck_abort_msg("'%.80s' refused: %s", ere, why);
}

static bool matches(const regex_t *re, const char *name)
{
    return regexec(re, name, 0, NULL, 0) == 0;
}

/* The reason regex_check_cost() gives, or "" when it accepts the pattern. */
static const char *refusal(const char *ere)
{
    why[0] = '\0';
    if (regex_check_cost(ere, why, sizeof why) == 0)
        ck_assert_str_eq(why, "");
    else
        ck_assert_str_ne(why, "");
    return why;
}

/* "^(q0|q1|...)$" with count names: what a permission listing queues looks like. */
static char *names_alternation(int count)
{
    char *p = malloc((size_t)count * 12 + 8);
    size_t len = 0;

    ck_assert_ptr_nonnull(p);
    p[len++] = '^';
    p[len++] = '(';
    for (int i = 0; i < count; i++)
        len += (size_t)sprintf(p + len, "%squeue%d", i > 0 ? "|" : "", i);
    strcpy(p + len, ")$");
    return p;
}

static const struct {
    const char *ere;
    const char *match, *no_match;
} ordinary[] = {
    {"^amq\\.", "amq.direct", "x.amq.direct"},
    {"^orders\\.(eu|us)\\..*$", "orders.eu.paid", "orders.asia.paid"},
    {".*", "", NULL},
    {"^$", "", "a"},
    {"^amq\\.gen-.{22}$", "amq.gen-0123456789abcdefghijkl", "amq.gen-short"},
    {"^[a-z0-9.]{1,255}$", "app.orders.1", "App"},
    {"^[a-z]{2}\\.[0-9]{1,5}$", "eu.12345", "eu.123456"},
    {"^[[:alnum:]_]+-[^[:space:]]*$", "user_1-x.y", "user 1-x"},
    {"\\bfoo\\b", "a.foo.b", "afoob"},
    {"^(.*\\.)?audit(\\..*)?$", "x.audit.y", "auditor"},
    {"(a|b){1,255}c", "ababc", "c"},
    {".{0,255}z", "z", "y"},
    {"^a{32767}$", NULL, "a"},
};

START_TEST(ordinary_patterns_compile_and_match)
{
    regex_t re;

    compile(&re, ordinary[_i].ere);
    if (ordinary[_i].match != NULL)
        ck_assert_msg(matches(&re, ordinary[_i].match), "%s", ordinary[_i].ere);
    if (ordinary[_i].no_match != NULL)
        ck_assert_msg(!matches(&re, ordinary[_i].no_match), "%s", ordinary[_i].ere);
    regfree(&re);
}
END_TEST

START_TEST(an_alternation_of_three_hundred_names_passes_even_anchored)
{
    char *p = names_alternation(300);
    regex_t re;

    compile(&re, p);
    ck_assert(matches(&re, "queue299"));
    ck_assert(!matches(&re, "queue300"));
    regfree(&re);
    free(p);
}
END_TEST

#define NODES "pattern too complex: repetition bounds expand it to more than 100000 nodes"
#define STEPS                                                                                      \
    "pattern too complex: its repetitions and alternatives would take more than 1000000 steps "    \
    "to compile"
#define EMPTY_LOOP "pattern too complex: * + or {n,} repeats a part that can match the empty string"

static const struct {
    const char *ere, *why;
} hostile[] = {
    /* Issue 15: 24 GB, then 1.5 GB held for as long as the policy exists. */
    {"(.*){1,32000}[bc]", STEPS},
    {"(.*){1,6000}", STEPS},
    {"(.*){1,1000}", STEPS},
    {"(.*){,6000}", STEPS}, /* glibc reads {,n} as {0,n} */
    {"a{1,10000}", STEPS},
    {"(a|b){1,1000}", STEPS},
    {"(a{1000}){1000}", NODES},
    {"a{32767}{32767}", NODES}, /* repetitions stack without a group */
    {"((a{1,100}){1,100}){1,100}", STEPS},
    {"(.*){32767,}", STEPS},
    {"^(a?){1,200}", STEPS}, /* the anchor clones every optional copy */
    {"(^a?){1,100}", STEPS}, /* and each copy clones the rest */
    /* Loops without input: glibc's time grows exponentially with the pattern. */
    {"((a?){0,10}()*){1,7}", EMPTY_LOOP}, /* a minute */
    {"(\\b|\\B|^|$)*", EMPTY_LOOP},       /* glibc had not finished after 20 s */
    {"()*{12,300}[bc]", EMPTY_LOOP},      /* found by fuzz_regex: 3 seconds */
    {"(a*)*", EMPTY_LOOP},
    {"(x|$)+", EMPTY_LOOP},
    {"(a?b?){2,}", EMPTY_LOOP},
    {"(a)\\1", "back-references are not supported"},
};

START_TEST(hostile_patterns_are_refused_with_the_bound_they_pass)
{
    regex_t re;

    ck_assert_str_eq(refusal(hostile[_i].ere), hostile[_i].why);
    /* Refused before regcomp: nothing was compiled, nothing is to be freed. */
    ck_assert_int_eq(regex_compile_bounded(&re, hostile[_i].ere, why, sizeof why), -1);
    ck_assert_str_eq(why, hostile[_i].why);
}
END_TEST

START_TEST(stars_of_parts_that_cannot_be_empty_pass)
{
    regex_t re;

    compile(&re, "^(\\b[a-z]+\\b\\.?)*$");
    ck_assert(matches(&re, "orders.eu."));
    ck_assert(!matches(&re, "Orders"));
    regfree(&re);
    compile(&re, "(a$|b^)*x{0,100}");
    regfree(&re);
}
END_TEST

START_TEST(bounds_hold_at_their_limits)
{
    char *p = malloc(REGEX_MAX_BYTES + 2);

    /* Nodes: three copies of 32767 nodes, the end node, then a few more. */
    ck_assert_str_eq(refusal("a{32767}b{32767}c{32767}d{1698}"), "");
    ck_assert_str_eq(refusal("a{32767}b{32767}c{32767}d{1699}"), NODES);
    /* Closure: a{1,n} costs n(n+1) steps and a few. */
    ck_assert_str_eq(refusal("a{1,999}"), "");
    ck_assert_str_eq(refusal("a{1,1000}"), STEPS);
    /* Length. */
    ck_assert_ptr_nonnull(p);
    memset(p, 'a', REGEX_MAX_BYTES);
    p[REGEX_MAX_BYTES] = '\0';
    ck_assert_str_eq(refusal(p), "");
    p[REGEX_MAX_BYTES] = 'a';
    p[REGEX_MAX_BYTES + 1] = '\0';
    ck_assert_str_eq(refusal(p), "pattern too long: more than 16384 bytes");
    free(p);
}
END_TEST

START_TEST(groups_nest_at_most_thirty_two_deep)
{
    char p[2 * (REGEX_MAX_DEPTH + 1) + 2];
    int depth;

    for (depth = REGEX_MAX_DEPTH; depth <= REGEX_MAX_DEPTH + 1; depth++) {
        memset(p, '(', (size_t)depth);
        p[depth] = 'a';
        memset(p + depth + 1, ')', (size_t)depth);
        p[2 * depth + 1] = '\0';
        ck_assert_str_eq(refusal(p), depth <= REGEX_MAX_DEPTH
                                         ? ""
                                         : "pattern too complex: groups nested more than 32 deep");
    }
}
END_TEST

START_TEST(anchored_alternations_are_refused_only_when_very_large)
{
    char *p = names_alternation(700);

    /* Unanchored the same names pass: the anchor's clones are what costs. */
    ck_assert_str_eq(refusal(p), STEPS);
    ck_assert_str_eq(refusal(p + 1), "");
    free(p);
}
END_TEST

/* Malformed patterns: estimated as far as they go, then regcomp() says what is wrong. */
static const struct {
    const char *ere, *why;
} malformed[] = {
    {"(", "Unmatched ( or \\("},
    {"(a|b", "Unmatched ( or \\("},
    {"[", "Invalid regular expression"},
    {"[[:alpha:", "Unmatched [, [^, [:, [., or [="},
    {"[[:nope:]]", "Invalid character class name"},
    {"a{", "Unmatched \\{"},
    {"a{1", "Unmatched \\{"},
    {"a{1,", "Unmatched \\{"},
    {"a{x}", "Invalid content of \\{\\}"},
    {"a{2,1}", "Invalid content of \\{\\}"},
    {"a{99999}", "Regular expression too big"},
    {"\\", "Trailing backslash"},
    {"*a", "Invalid preceding regular expression"},
    {"a|*b", "Invalid preceding regular expression"},
    {"^*", "Invalid preceding regular expression"},
    {"{1,2}", "Invalid preceding regular expression"},
};

START_TEST(malformed_patterns_get_regcomp_s_reason)
{
    regex_t re;

    ck_assert_str_eq(refusal(malformed[_i].ere), "");
    ck_assert_int_eq(regex_compile_bounded(&re, malformed[_i].ere, why, sizeof why), -1);
    ck_assert_str_eq(why, malformed[_i].why);
}
END_TEST

START_TEST(brackets_end_where_glibc_ends_them)
{
    /* ']' first is a member, [:class:] holds a ']' only as its end: the repetition after the
     * bracket is seen, not taken for part of it. */
    ck_assert_str_eq(refusal("[]a](.*){1,6000}"), STEPS);
    ck_assert_str_eq(refusal("[^]a](.*){1,6000}"), STEPS);
    ck_assert_str_eq(refusal("[[:alpha:]](.*){1,6000}"), STEPS);
    ck_assert_str_eq(refusal("[\\](.*){1,6000}"), STEPS); /* no escapes inside brackets */
    /* Inside a bracket nothing repeats. */
    ck_assert_str_eq(refusal("[(.*){1,6000}]"), "");
}
END_TEST

START_TEST(the_reason_is_cut_to_the_buffer_given)
{
    char small[8];

    ck_assert_int_eq(regex_check_cost("(.*){1,32000}[bc]", small, sizeof small), -1);
    ck_assert_str_eq(small, "pattern");
    ck_assert_int_eq(regex_check_cost("(.*){1,32000}[bc]", NULL, 0), -1);
}
END_TEST

static Suite *regex_suite(void)
{
    Suite *s = suite_create("regex");
    TCase *t = tcase_create("bound");

    tcase_add_loop_test(t, ordinary_patterns_compile_and_match, 0,
                        (int)(sizeof ordinary / sizeof ordinary[0]));
    tcase_add_test(t, an_alternation_of_three_hundred_names_passes_even_anchored);
    tcase_add_loop_test(t, hostile_patterns_are_refused_with_the_bound_they_pass, 0,
                        (int)(sizeof hostile / sizeof hostile[0]));
    tcase_add_test(t, stars_of_parts_that_cannot_be_empty_pass);
    tcase_add_test(t, bounds_hold_at_their_limits);
    tcase_add_test(t, groups_nest_at_most_thirty_two_deep);
    tcase_add_test(t, anchored_alternations_are_refused_only_when_very_large);
    tcase_add_loop_test(t, malformed_patterns_get_regcomp_s_reason, 0,
                        (int)(sizeof malformed / sizeof malformed[0]));
    tcase_add_test(t, brackets_end_where_glibc_ends_them);
    tcase_add_test(t, the_reason_is_cut_to_the_buffer_given);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(regex_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
