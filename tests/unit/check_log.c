/* The logger: the exact line layout with and without a connection context, level filtering,
 * the log file, escaping of client-chosen bytes, and whole lines under concurrent writers.
 * Lines sent to stderr are captured by pointing descriptor 2 at a temporary file. */
#include "src/base/log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* "2025-03-01 10:15:02.118 [warning] " */
#define STAMP "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "

static int saved_stderr = -1;
static char capture_path[64];

static void capture_start(void)
{
    int fd;

    strcpy(capture_path, "/tmp/check_log.XXXXXX");
    fd = mkstemp(capture_path);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

static char *read_file(const char *path)
{
    static char buf[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    close(fd);
    return buf;
}

/* Restores stderr and returns what was written to it (static storage). */
static char *capture_end(void)
{
    char *text;

    ck_assert_int_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    text = read_file(capture_path);
    unlink(capture_path);
    return text;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;

    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0, "'%s' does not match /%s/", text, pattern);
    regfree(&re);
}

static void setup(void)
{
    log_set_level(LOG_LEVEL_DEBUG);
    log_set_console(true);
    log_close_file();
}

START_TEST(line_without_context_is_time_level_text)
{
    capture_start();
    log_info(NULL, "ready: listening on %s", "[::]:5672");
    assert_matches(capture_end(), "^" STAMP "\\[info\\] ready: listening on \\[::\\]:5672\n$");
}
END_TEST

START_TEST(time_is_local_time_now)
{
    struct tm tm;
    char want[32], *line;
    time_t before = time(NULL), after;

    capture_start();
    log_info(NULL, "x");
    line = capture_end();
    after = time(NULL);
    /* Compare to the second, accepting either side of a second boundary. */
    localtime_r(&before, &tm);
    strftime(want, sizeof(want), "%Y-%m-%d %H:%M:%S.", &tm);
    if (strncmp(line, want, strlen(want)) != 0) {
        localtime_r(&after, &tm);
        strftime(want, sizeof(want), "%Y-%m-%d %H:%M:%S.", &tm);
    }
    ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "'%s' is not at %s", line, want);
}
END_TEST

START_TEST(line_with_full_context)
{
    struct log_ctx ctx = {.conn_id = 17, .channel = 1};

    strcpy(ctx.peer, "192.0.2.10:53122");
    strcpy(ctx.user, "guest");
    strcpy(ctx.vhost, "/");
    capture_start();
    log_warn(&ctx, "frame of %u bytes exceeds frame_max %u", 200000u, 131072u);
    assert_matches(capture_end(), "^" STAMP "\\[warning\\] conn 17 192\\.0\\.2\\.10:53122 "
                                  "guest@/ ch 1: frame of 200000 bytes exceeds frame_max "
                                  "131072\n$");
}
END_TEST

START_TEST(context_shows_only_what_is_known)
{
    struct log_ctx ctx = {.conn_id = 18446744073709551615u};

    capture_start();
    log_info(&ctx, "a");
    strcpy(ctx.peer, "[::1]:5000");
    log_info(&ctx, "b");
    strcpy(ctx.user, "alice");
    log_info(&ctx, "c"); /* after SASL, before connection.open: no vhost yet */
    strcpy(ctx.vhost, "prod");
    ctx.channel = 65535;
    log_info(&ctx, "d");
    assert_matches(capture_end(),
                   "^" STAMP "\\[info\\] conn 18446744073709551615: a\n" STAMP
                   "\\[info\\] conn 18446744073709551615 \\[::1\\]:5000: b\n" STAMP
                   "\\[info\\] conn 18446744073709551615 \\[::1\\]:5000 alice: c\n" STAMP
                   "\\[info\\] conn 18446744073709551615 \\[::1\\]:5000 "
                   "alice@prod ch 65535: d\n$");
}
END_TEST

START_TEST(each_level_has_its_name)
{
    capture_start();
    log_debug(NULL, "1");
    log_info(NULL, "2");
    log_warn(NULL, "3");
    log_error(NULL, "4");
    assert_matches(capture_end(), "^" STAMP "\\[debug\\] 1\n" STAMP "\\[info\\] 2\n" STAMP
                                  "\\[warning\\] 3\n" STAMP "\\[error\\] 4\n$");
}
END_TEST

static int evaluated;

static int count_evaluation(void)
{
    return ++evaluated;
}

START_TEST(threshold_filters_and_skips_argument_evaluation)
{
    evaluated = 0;
    log_set_level(LOG_LEVEL_WARNING);
    capture_start();
    log_debug(NULL, "debug %d", count_evaluation());
    log_info(NULL, "info %d", count_evaluation());
    log_warn(NULL, "warning %d", count_evaluation());
    log_error(NULL, "error %d", count_evaluation());
    /* A direct call is filtered too. */
    log_write(LOG_LEVEL_INFO, NULL, "direct");
    assert_matches(capture_end(),
                   "^" STAMP "\\[warning\\] warning 1\n" STAMP "\\[error\\] error 2\n$");
    ck_assert_int_eq(evaluated, 2);

    log_set_level(LOG_LEVEL_NONE);
    capture_start();
    log_error(NULL, "%d", count_evaluation());
    ck_assert_str_eq(capture_end(), "");
    ck_assert_int_eq(evaluated, 2);
}
END_TEST

START_TEST(level_names_parse)
{
    ck_assert_int_eq(log_level_parse("debug"), LOG_LEVEL_DEBUG);
    ck_assert_int_eq(log_level_parse("info"), LOG_LEVEL_INFO);
    ck_assert_int_eq(log_level_parse("warning"), LOG_LEVEL_WARNING);
    ck_assert_int_eq(log_level_parse("warn"), LOG_LEVEL_WARNING);
    ck_assert_int_eq(log_level_parse("error"), LOG_LEVEL_ERROR);
    ck_assert_int_eq(log_level_parse("none"), LOG_LEVEL_NONE);
    ck_assert_int_eq(log_level_parse("INFO"), -1);
    ck_assert_int_eq(log_level_parse("critical"), -1);
    ck_assert_int_eq(log_level_parse(""), -1);
}
END_TEST

START_TEST(file_gets_the_same_lines_and_console_can_be_off)
{
    char path[] = "/tmp/check_log_file.XXXXXX";
    struct stat st;
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path); /* log_open_file creates it */
    umask(022);
    ck_assert_int_eq(log_open_file(path), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);

    capture_start();
    log_info(NULL, "both");
    log_set_console(false);
    log_info(NULL, "file only");
    log_close_file();
    log_info(NULL, "nowhere");
    assert_matches(capture_end(), "^" STAMP "\\[info\\] both\n$");
    assert_matches(read_file(path), "^" STAMP "\\[info\\] both\n" STAMP "\\[info\\] file only\n$");

    /* Reopening appends. */
    ck_assert_int_eq(log_open_file(path), 0);
    log_error(NULL, "again");
    log_close_file();
    assert_matches(read_file(path), "^" STAMP "\\[info\\] both\n" STAMP
                                    "\\[info\\] file only\n" STAMP "\\[error\\] again\n$");
    unlink(path);
}
END_TEST

START_TEST(open_file_failure_sets_errno)
{
    errno = 0;
    ck_assert_int_eq(log_open_file("/nonexistent/dir/warren.log"), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(client_bytes_cannot_forge_lines)
{
    struct log_ctx ctx = {.conn_id = 1};

    strcpy(ctx.user, "eve\n2025-01-01 00:00:00.000 [error] fake");
    strcpy(ctx.vhost, "v\033[2J");
    capture_start();
    log_warn(&ctx, "queue '%s'", "q\r\nx\x7f");
    assert_matches(capture_end(), "^" STAMP "\\[warning\\] conn 1 eve\\\\x0a2025-01-01 "
                                  "00:00:00\\.000 \\[error\\] fake@v\\\\x1b\\[2J: queue "
                                  "'q\\\\x0d\\\\x0ax\\\\x7f'\n$");
}
END_TEST

START_TEST(long_lines_are_cut_and_still_end_the_line)
{
    char *big = malloc(10000), *line;

    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 9999);
    big[9999] = '\0';
    capture_start();
    log_info(NULL, "%s", big);
    log_info(NULL, "next");
    line = capture_end();
    assert_matches(line, "^" STAMP "\\[info\\] a+\\.\\.\\.\n" STAMP "\\[info\\] next\n$");
    ck_assert_uint_le(strchr(line, '\n') - line, 4096 + 8);

    /* Escaping can grow a line fourfold; the cut still holds. */
    memset(big, '\n', 9999);
    capture_start();
    log_info(NULL, "%s", big);
    line = capture_end();
    assert_matches(line, "^" STAMP "\\[info\\] (\\\\x0a)+\\.\\.\\.\n$");
    ck_assert_uint_le(strlen(line), 4096 + 8);
    free(big);
}
END_TEST

START_TEST(errno_survives_logging)
{
    capture_start();
    errno = EPIPE;
    log_error(NULL, "x");
    ck_assert_int_eq(errno, EPIPE);
    capture_end();
}
END_TEST

/* Several processes appending to one file: each line must arrive whole, which holds only if
 * a line is one write() to an O_APPEND descriptor. */
START_TEST(concurrent_writers_never_interleave_lines)
{
    enum { WRITERS = 4, LINES = 300 };
    char path[] = "/tmp/check_log_mp.XXXXXX";
    int fd = mkstemp(path), status, count = 0;
    char *text, *line, *save = NULL;
    regex_t re;
    pid_t pids[WRITERS];
    static char whole[1 << 20];
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    close(fd);
    log_set_console(false);
    ck_assert_int_eq(log_open_file(path), 0);
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        ck_assert_int_ge(pids[w], 0);
        if (pids[w] == 0) {
            struct log_ctx ctx = {.conn_id = (uint64_t)w, .channel = 7};

            strcpy(ctx.peer, "192.0.2.1:1");
            for (int i = 0; i < LINES; i++)
                log_info(&ctx, "writer %d line %d %s", w, i,
                         "padding padding padding padding padding padding padding");
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    log_close_file();

    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    n = read(fd, whole, sizeof(whole) - 1);
    ck_assert_int_gt(n, 0);
    whole[n] = '\0';
    close(fd);
    unlink(path);
    ck_assert_int_eq(regcomp(&re,
                             "^" STAMP "\\[info\\] conn [0-9] 192\\.0\\.2\\.1:1 ch 7: writer [0-9] "
                             "line [0-9]+ (padding ?)+$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    text = whole;
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "torn line: '%s'", line);
        count++;
    }
    regfree(&re);
    ck_assert_int_eq(count, WRITERS * LINES);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *t = tcase_create("log");

    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, line_without_context_is_time_level_text);
    tcase_add_test(t, time_is_local_time_now);
    tcase_add_test(t, line_with_full_context);
    tcase_add_test(t, context_shows_only_what_is_known);
    tcase_add_test(t, each_level_has_its_name);
    tcase_add_test(t, threshold_filters_and_skips_argument_evaluation);
    tcase_add_test(t, level_names_parse);
    tcase_add_test(t, file_gets_the_same_lines_and_console_can_be_off);
    tcase_add_test(t, open_file_failure_sets_errno);
    tcase_add_test(t, client_bytes_cannot_forge_lines);
    tcase_add_test(t, long_lines_are_cut_and_still_end_the_line);
    tcase_add_test(t, errno_survives_logging);
    tcase_add_test(t, concurrent_writers_never_interleave_lines);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
