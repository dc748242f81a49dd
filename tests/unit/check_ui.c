/* src/mgmt/ui.c's path rules: which request paths name a file of the web UI, and that none
 * of the ways to write ".." or a hidden name gets past them, escaped or not. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "src/mgmt/ui.h"

static int path_of(const char *url, char *out)
{
    return mgmt_ui_file_path(url, out, 256);
}

START_TEST(root_is_the_index_page)
{
    char out[256];

    ck_assert_int_eq(path_of("/", out), 0);
    ck_assert_str_eq(out, "index.html");
}
END_TEST

START_TEST(files_and_folders_are_kept_as_named)
{
    char out[256];

    ck_assert_int_eq(path_of("/js/pages/queues.js", out), 0);
    ck_assert_str_eq(out, "js/pages/queues.js");
    ck_assert_int_eq(path_of("/img/favicon.svg", out), 0);
    ck_assert_str_eq(out, "img/favicon.svg");
    /* Escapes of allowed bytes are decoded. */
    ck_assert_int_eq(path_of("/js/%61pp.js", out), 0);
    ck_assert_str_eq(out, "js/app.js");
}
END_TEST

START_TEST(dot_segments_are_refused_escaped_or_not)
{
    static const char *const paths[] = {
        "/..",
        "/../etc/passwd",
        "/js/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2e%2fetc%2fpasswd",
        "/js/..%2f..%2fetc/passwd",
        "/js/%2e%2e",
        "/./index.html",
        "/js/.",
        "/.git/config",
        "/js/.hidden.js",
    };
    char out[256];

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        ck_assert_msg(path_of(paths[i], out) == -1, "%s was not refused", paths[i]);
}
END_TEST

START_TEST(bytes_outside_file_names_are_refused)
{
    static const char *const paths[] = {
        "/js/app.js%00.png", /* a NUL would cut the name short */
        "/js\\..\\index.html",
        "/js/%5c..%5cindex.html",
        "/a b",
        "/a%20b",
        "/%0a",
        "/~root",
        "/js:app.js",
        "/%",
        "/%2",
        "/%zz",
        "",
        "index.html",
    };
    char out[256];

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        ck_assert_msg(path_of(paths[i], out) == -1, "%s was not refused", paths[i]);
}
END_TEST

START_TEST(empty_segments_are_refused)
{
    char out[256];

    ck_assert_int_eq(path_of("//etc/passwd", out), -1);
    ck_assert_int_eq(path_of("/js//app.js", out), -1);
    ck_assert_int_eq(path_of("/js/", out), -1);
}
END_TEST

START_TEST(a_path_longer_than_any_file_is_refused)
{
    char url[600], out[600];

    url[0] = '/';
    memset(url + 1, 'a', 400);
    url[401] = '\0';
    ck_assert_int_eq(mgmt_ui_file_path(url, out, sizeof out), -1);
    /* And one that fits the limit but not the caller's buffer. */
    ck_assert_int_eq(mgmt_ui_file_path("/js/app.js", out, 5), -1);
}
END_TEST

static Suite *ui_suite(void)
{
    Suite *s = suite_create("ui");
    TCase *tc = tcase_create("paths");

    tcase_add_test(tc, root_is_the_index_page);
    tcase_add_test(tc, files_and_folders_are_kept_as_named);
    tcase_add_test(tc, dot_segments_are_refused_escaped_or_not);
    tcase_add_test(tc, bytes_outside_file_names_are_refused);
    tcase_add_test(tc, empty_segments_are_refused);
    tcase_add_test(tc, a_path_longer_than_any_file_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ui_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
