/* nftw() needs the X/Open interfaces. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
/* The integration harness: see harness.h. */
#include "harness.h"

#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define READY_MARK         "ready: listening on "
#define READY_TIMEOUT_MS   10000
#define STOP_TIMEOUT_MS    5000
#define RPC_TIMEOUT_S      5
#define TEST_TIMEOUT_S     30
#define COUNT_WAIT_MS      2000
#define LOG_TAIL_LINES     40
#define DEFAULT_FRAME_MAX  131072
#define DEFAULT_AMQP_PORT  5672
#define NAME_TOPIC_MAX_LEN 40

static char broker_host[256] = "127.0.0.1";
static int broker_port;
static bool broker_external;

/* The warrend this program started, if any. A restart (it_broker_restart) starts a new
 * instance on the same config and data directory; every instance appends to the same log,
 * and the checks of an instance read its lines only, from log_start on. */
static struct {
    pid_t pid;
    pid_t owner;             /* the process that started it: only that one can wait for it */
    char dir[PATH_MAX - 32]; /* leaves room for the file names below */
    char conf_path[PATH_MAX];
    char data_path[PATH_MAX]; /* the broker's --data-dir, inside dir */
    char log_path[PATH_MAX];
    long log_start;                    /* offset of the running instance's first line */
    const char *const *allowed_errors; /* [error] lines this instance may write */
} warrend = {.pid = -1};

/* Set by it_set_nofork(): run the tests in this process rather than in Check's children. */
static bool run_nofork;

/* Fails the running test at the caller's file and line with a formatted message. */
static void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    _ck_assert_failed(file, line, "Failed", "%s", msg);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the broker process --------------------------------------------------------------- */

/* The whole file at path, NUL-terminated (NULL if it cannot be read). Caller frees. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            char *grown = realloc(text, cap + 65536);
            if (grown == NULL) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
            cap += 65536;
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static void print_log_tail(void)
{
    char *text = read_file(warrend.log_path);
    const char *start;
    int lines = 0;

    fprintf(stderr, "---- last lines of %s ----\n", warrend.log_path);
    if (text == NULL) {
        fprintf(stderr, "(cannot read the log: %s)\n", strerror(errno));
        return;
    }
    start = text + strlen(text);
    while (start > text && lines <= LOG_TAIL_LINES) {
        start--;
        if (*start == '\n' && start[1] != '\0')
            lines++;
    }
    if (*start == '\n')
        start++;
    fprintf(stderr, "%s%s---- end of log ----\n", start,
            text[0] != '\0' && text[strlen(text) - 1] != '\n' ? "\n" : "");
    free(text);
}

/* The port of the first address after the ready mark, once its line is complete; 0 while
 * the line has not been written yet, -1 if the line cannot be parsed. */
static int ready_port(const char *log)
{
    const char *mark = strstr(log, READY_MARK), *addr, *end, *colon;
    long port;

    if (mark == NULL || strchr(mark, '\n') == NULL)
        return 0;
    addr = mark + strlen(READY_MARK);
    end = addr + strcspn(addr, " \r\n");
    /* "0.0.0.0:41234" or "[::]:41234": the port follows the last colon. */
    colon = NULL;
    for (const char *p = addr; p < end; p++) {
        if (*p == ':')
            colon = p;
    }
    if (colon == NULL || colon + 1 == end)
        return -1;
    port = strtol(colon + 1, NULL, 10);
    return port > 0 && port <= 65535 ? (int)port : -1;
}

static int write_config(const char *extra_config)
{
    FILE *f = fopen(warrend.conf_path, "w");

    if (f == NULL) {
        fprintf(stderr, "harness: cannot create %s: %s\n", warrend.conf_path, strerror(errno));
        return -1;
    }
    /* The HTTP listeners stay off: test programs run in parallel and would collide on the
     * default ports. A test that wants them passes its own lines. */
    fputs("log.level = info\nmanagement.tcp.port = 0\nprometheus.tcp.port = 0\n", f);
    if (extra_config != NULL)
        fputs(extra_config, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "harness: cannot write %s: %s\n", warrend.conf_path, strerror(errno));
        return -1;
    }
    return 0;
}

static void exec_warrend(const char *path)
{
    /* Appending: a restarted broker's lines follow those of the instance before it. */
    int log_fd = open(warrend.log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null_fd = open("/dev/null", O_RDONLY);

    if (log_fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
        _exit(126);
#ifdef __linux__
    /* A test program killed by a signal must not leave its broker running. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    execl(path, path, "-c", warrend.conf_path, "--port", "0", "--data-dir", warrend.data_path,
          (char *)NULL);
    fprintf(stderr, "harness: cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the broker's data directory and everything in it. */
static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts one instance of $WARREND on the prepared config and data directory and waits for
 * its ready line; 0, or -1 after saying why on stderr (the instance is gone then). */
static int launch_warrend(const char *const *allowed_errors)
{
    const char *path = getenv("WARREND");
    struct stat st;
    long long deadline;
    int status;

    warrend.log_start = stat(warrend.log_path, &st) == 0 ? (long)st.st_size : 0;
    warrend.allowed_errors = allowed_errors;
    fflush(NULL);
    warrend.pid = fork();
    if (warrend.pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (warrend.pid == 0)
        exec_warrend(path);
    warrend.owner = getpid();

    deadline = now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        char *log = read_file(warrend.log_path);
        int port = 0;

        if (log != NULL && (long)strlen(log) >= warrend.log_start)
            port = ready_port(log + warrend.log_start);
        free(log);
        if (port < 0) {
            fprintf(stderr, "harness: cannot parse the port of warrend's ready line\n");
            break;
        }
        if (port > 0) {
            broker_port = port;
            return 0;
        }
        if (waitpid(warrend.pid, &status, WNOHANG) == warrend.pid) {
            fprintf(stderr, "harness: warrend exited before it was ready (status 0x%x)\n",
                    (unsigned)status);
            warrend.pid = -1;
            print_log_tail();
            fprintf(stderr, "harness: config and log kept in %s\n", warrend.dir);
            return -1;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "harness: no '%s' line from warrend within %d ms\n", READY_MARK,
                    READY_TIMEOUT_MS);
            break;
        }
        sleep_ms(20);
    }
    kill(warrend.pid, SIGKILL);
    waitpid(warrend.pid, &status, 0);
    warrend.pid = -1;
    print_log_tail();
    fprintf(stderr, "harness: config and log kept in %s\n", warrend.dir);
    return -1;
}

/* Makes the temporary directory with the config, then starts the first instance. */
static int start_warrend(const char *extra_config)
{
    const char *path = getenv("WARREND");
    const char *tmp = getenv("TMPDIR");

    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "harness: WARREND is not set (make check sets it) and AMQP_HOST names "
                        "no broker to use instead\n");
        return -1;
    }
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "harness: WARREND=%s: %s\n", path, strerror(errno));
        return -1;
    }
    snprintf(warrend.dir, sizeof warrend.dir, "%s/warren-it.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(warrend.dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", warrend.dir, strerror(errno));
        return -1;
    }
    snprintf(warrend.conf_path, sizeof warrend.conf_path, "%s/warren.conf", warrend.dir);
    snprintf(warrend.data_path, sizeof warrend.data_path, "%s/data", warrend.dir);
    snprintf(warrend.log_path, sizeof warrend.log_path, "%s/warrend.log", warrend.dir);
    if (write_config(extra_config) < 0)
        return -1;
    return launch_warrend(NULL);
}

static bool error_is_allowed(const char *line)
{
    for (const char *const *p = warrend.allowed_errors; p != NULL && *p != NULL; p++) {
        if (strstr(line, *p) != NULL)
            return true;
    }
    return false;
}

/* Lines of the running instance's log that say something went wrong: an error not in its
 * allowed list, or a sanitizer report. */
static int scan_log_for_problems(void)
{
    static const char *const bad[] = {"[error]", "ERROR: AddressSanitizer",
                                      "runtime error:", "LeakSanitizer"};
    char *text = read_file(warrend.log_path);
    int problems = 0;

    if (text == NULL) {
        fprintf(stderr, "harness: cannot read %s: %s\n", warrend.log_path, strerror(errno));
        return 1;
    }
    if ((long)strlen(text) < warrend.log_start) {
        fprintf(stderr, "harness: %s is shorter than when the broker started\n", warrend.log_path);
        free(text);
        return 1;
    }
    for (char *line = text + warrend.log_start; *line != '\0';) {
        char *nl = strchr(line, '\n');

        if (nl != NULL)
            *nl = '\0';
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (strstr(line, bad[i]) != NULL && !(i == 0 && error_is_allowed(line))) {
                fprintf(stderr, "harness: warrend log: %s\n", line);
                problems++;
                break;
            }
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
    return problems;
}

/* Stops the running instance: SIGTERM, then exit status 0 within STOP_TIMEOUT_MS; or, with
 * kill9, SIGKILL (any status). Either way its log must be clean. 0 or -1 after saying why;
 * the directory is kept. */
static int stop_instance(bool kill9)
{
    long long deadline = now_ms() + STOP_TIMEOUT_MS;
    int status = 0, rc = 0;
    pid_t got;

    if (kill(warrend.pid, kill9 ? SIGKILL : SIGTERM) != 0) {
        fprintf(stderr, "harness: kill warrend: %s\n", strerror(errno));
        rc = -1;
    }
    while ((got = waitpid(warrend.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(10);
    if (got == 0) {
        fprintf(stderr, "harness: warrend did not exit within %d ms of SIG%s\n", STOP_TIMEOUT_MS,
                kill9 ? "KILL" : "TERM");
        kill(warrend.pid, SIGKILL);
        waitpid(warrend.pid, &status, 0);
        rc = -1;
    } else if (got < 0) {
        fprintf(stderr, "harness: waitpid warrend: %s\n", strerror(errno));
        rc = -1;
    } else if (kill9) {
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            fprintf(stderr, "harness: warrend ended with status 0x%x before SIGKILL\n",
                    (unsigned)status);
            rc = -1;
        }
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "harness: warrend died of signal %d\n", WTERMSIG(status));
        else
            fprintf(stderr, "harness: warrend exited with status %d\n", WEXITSTATUS(status));
        rc = -1;
    }
    warrend.pid = -1;
    if (scan_log_for_problems() != 0)
        rc = -1;
    if (rc != 0) {
        print_log_tail();
        fprintf(stderr, "harness: config and log kept in %s\n", warrend.dir);
    }
    return rc;
}

/* At the end of the program: stops the last instance and removes the directory if all
 * went well. 0 or -1. */
static int stop_warrend(void)
{
    if (warrend.pid < 0) {
        fprintf(stderr,
                "harness: warrend was not running at the end (a restart failed or a "
                "test stopped it); config and log kept in %s\n",
                warrend.dir);
        return -1;
    }
    if (stop_instance(false) != 0)
        return -1;
    unlink(warrend.conf_path);
    unlink(warrend.log_path);
    remove_tree(warrend.data_path);
    rmdir(warrend.dir);
    return 0;
}

static int use_external_broker(const char *host)
{
    const char *port = getenv("AMQP_PORT");
    char *end;
    long n = DEFAULT_AMQP_PORT;

    if (strlen(host) >= sizeof broker_host) {
        fprintf(stderr, "harness: AMQP_HOST is too long\n");
        return -1;
    }
    if (port != NULL && port[0] != '\0') {
        n = strtol(port, &end, 10);
        if (*end != '\0' || n <= 0 || n > 65535) {
            fprintf(stderr, "harness: AMQP_PORT=%s is not a port\n", port);
            return -1;
        }
    }
    strcpy(broker_host, host);
    broker_port = (int)n;
    broker_external = true;
    return 0;
}

int it_run(Suite *s, const char *extra_config)
{
    const char *host = getenv("AMQP_HOST");
    SRunner *sr;
    int failed, rc;

    /* A write to a socket the broker closed must fail the test, not kill the program. */
    signal(SIGPIPE, SIG_IGN);
    if (host != NULL && host[0] != '\0' ? use_external_broker(host) < 0
                                        : start_warrend(extra_config) < 0) {
        srunner_free(srunner_create(s));
        return 1;
    }
    sr = srunner_create(s);
    if (run_nofork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rc = failed == 0 ? 0 : 1;
    if (!broker_external && stop_warrend() < 0)
        rc = 1;
    return rc;
}

TCase *it_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, TEST_TIMEOUT_S);
    suite_add_tcase(s, tc);
    return tc;
}

void it_add_warrend_test(TCase *tc, const TTest *t)
{
    const char *host = getenv("AMQP_HOST");

    if (host != NULL && host[0] != '\0') {
        printf("%s: skipped: warrend only, and AMQP_HOST names an external broker\n", t->name);
        return;
    }
    tcase_add_test(tc, t);
}

bool it_external_broker(void)
{
    return broker_external;
}

/* ---- restarts ------------------------------------------------------------------------- */

void it_set_nofork(void)
{
    run_nofork = true;
}

/* Fails unless the running process started the broker and may therefore stop it, wait for
 * it and start it again. */
static void need_own_broker(const char *file, int line)
{
    if (broker_external)
        fail_at(file, line, "needs the broker the harness starts, not the one AMQP_HOST names");
    if (warrend.owner != getpid())
        fail_at(file, line,
                "the broker belongs to the harness's process: call it_set_nofork() "
                "before it_run() to restart it from a test");
}

void it_broker_stop_at(bool kill9, const char *file, int line)
{
    need_own_broker(file, line);
    if (warrend.pid < 0)
        fail_at(file, line, "no broker is running");
    if (stop_instance(kill9) != 0)
        fail_at(file, line, "warrend did not stop cleanly (%s): see its log above",
                kill9 ? "SIGKILL" : "SIGTERM");
}

void it_broker_start_at(const char *const *allowed_errors, const char *file, int line)
{
    need_own_broker(file, line);
    if (warrend.pid >= 0)
        fail_at(file, line, "a broker is running already");
    if (launch_warrend(allowed_errors) != 0)
        fail_at(file, line, "warrend did not start again on %s: see its log above",
                warrend.data_path);
}

void it_broker_restart_at(bool kill9, const char *file, int line)
{
    need_own_broker(file, line);
    /* A test that failed half-way may have left no broker running: just start one. */
    if (warrend.pid >= 0)
        it_broker_stop_at(kill9, file, line);
    it_broker_start_at(NULL, file, line);
}

const char *it_data_dir(void)
{
    return broker_external ? NULL : warrend.data_path;
}

const char *it_config_path(void)
{
    return broker_external ? NULL : warrend.conf_path;
}

bool it_broker_log_has(const char *level, const char *text)
{
    char *log = read_file(warrend.log_path);
    char mark[64];
    bool found = false;

    if (log == NULL || (long)strlen(log) < warrend.log_start) {
        free(log);
        return false;
    }
    snprintf(mark, sizeof mark, "[%s]", level);
    for (char *line = log + warrend.log_start; *line != '\0' && !found;) {
        char *nl = strchr(line, '\n');

        if (nl != NULL)
            *nl = '\0';
        found = strstr(line, mark) != NULL && strstr(line, text) != NULL;
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(log);
    return found;
}

const char *it_host(void)
{
    return broker_host;
}

int it_port(void)
{
    return broker_port;
}

char *it_name(char *buf, size_t size, const char *topic)
{
    static unsigned counter;

    snprintf(buf, size, "it.%.*s.%ld.%u", NAME_TOPIC_MAX_LEN, topic, (long)getpid(), ++counter);
    return buf;
}

/* ---- connections ---------------------------------------------------------------------- */

amqp_connection_state_t it_connect_raw(const struct it_conn_opts *o, amqp_rpc_reply_t *login)
{
    static const struct it_conn_opts defaults = {0};
    struct timeval timeout = {.tv_sec = RPC_TIMEOUT_S};
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock;
    const char *user, *pass, *vhost;
    int rc, frame_max;

    if (o == NULL)
        o = &defaults;
    user = o->user != NULL ? o->user : "guest";
    pass = o->pass != NULL ? o->pass : "guest";
    vhost = o->vhost != NULL ? o->vhost : "/";
    frame_max = o->frame_max != 0 ? o->frame_max : DEFAULT_FRAME_MAX;

    ck_assert_ptr_nonnull(c);
    sock = amqp_tcp_socket_new(c);
    ck_assert_ptr_nonnull(sock);
    rc = amqp_socket_open_noblock(sock, broker_host, broker_port, &timeout);
    if (rc != AMQP_STATUS_OK) {
        amqp_destroy_connection(c);
        FAIL("cannot connect to %s:%d: %s", broker_host, broker_port, amqp_error_string2(rc));
    }
    /* A broker that never answers must fail the test, not hang it. */
    amqp_set_handshake_timeout(c, &timeout);
    amqp_set_rpc_timeout(c, &timeout);
    if (o->client_properties != NULL)
        *login =
            amqp_login_with_properties(c, vhost, o->channel_max, frame_max, o->heartbeat,
                                       o->client_properties, AMQP_SASL_METHOD_PLAIN, user, pass);
    else
        *login = amqp_login(c, vhost, o->channel_max, frame_max, o->heartbeat,
                            AMQP_SASL_METHOD_PLAIN, user, pass);
    return c;
}

amqp_connection_state_t it_connect_opts(const struct it_conn_opts *o)
{
    amqp_rpc_reply_t r;
    amqp_connection_state_t c = it_connect_raw(o, &r);

    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[512];

        it_reply_str(r, buf, sizeof buf);
        amqp_destroy_connection(c);
        FAIL("login failed: %s", buf);
    }
    it_channel_open(c, 1);
    return c;
}

amqp_connection_state_t it_connect(void)
{
    return it_connect_opts(NULL);
}

void it_disconnect(amqp_connection_state_t c)
{
    if (c == NULL)
        return;
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

void it_destroy(amqp_connection_state_t c)
{
    if (c != NULL)
        amqp_destroy_connection(c);
}

void it_channel_open(amqp_connection_state_t c, amqp_channel_t ch)
{
    char what[32];

    amqp_channel_open(c, ch);
    snprintf(what, sizeof what, "channel.open %u", ch);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

int it_raw_socket(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[16];
    int fd = -1, rc;

    snprintf(port, sizeof port, "%d", broker_port);
    rc = getaddrinfo(broker_host, port, &hints, &res);
    if (rc != 0)
        FAIL("getaddrinfo %s: %s", broker_host, gai_strerror(rc));
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        FAIL("cannot connect to %s:%d", broker_host, broker_port);
    return fd;
}

/* ---- replies -------------------------------------------------------------------------- */

const char *it_reply_str(amqp_rpc_reply_t r, char *buf, size_t size)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, size, "normal reply (method 0x%08x %s)", (unsigned)r.reply.id,
                 amqp_method_name(r.reply.id));
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, size, "no reply (missing RPC reply type)");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, size, "library error: %s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, size, "channel.close %u '%.*s' (class %u method %u)", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes, m->class_id,
                     m->method_id);
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, size, "connection.close %u '%.*s' (class %u method %u)", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes, m->class_id,
                     m->method_id);
        } else {
            snprintf(buf, size, "server exception, method 0x%08x", (unsigned)r.reply.id);
        }
        break;
    default:
        snprintf(buf, size, "reply type %d", (int)r.reply_type);
        break;
    }
    return buf;
}

void it_assert_ok_at(amqp_rpc_reply_t r, const char *what, const char *file, int line)
{
    char buf[512];

    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        fail_at(file, line, "%s: expected success, got %s", what, it_reply_str(r, buf, sizeof buf));
}

static void expect_close(amqp_rpc_reply_t r, amqp_method_number_t id, int code, const char *text,
                         const char *file, int line)
{
    const char *kind = id == AMQP_CHANNEL_CLOSE_METHOD ? "channel.close" : "connection.close";
    amqp_bytes_t got_text;
    int got_code;
    char buf[512];

    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != id)
        fail_at(file, line, "expected %s %d '%s', got %s", kind, code, text ? text : "*",
                it_reply_str(r, buf, sizeof buf));
    if (id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        got_code = m->reply_code;
        got_text = m->reply_text;
    } else {
        const amqp_connection_close_t *m = r.reply.decoded;
        got_code = m->reply_code;
        got_text = m->reply_text;
    }
    if (got_code != code || (text != NULL && !it_bytes_eq(got_text, text)))
        fail_at(file, line, "expected %s %d '%s', got %s", kind, code, text ? text : "*",
                it_reply_str(r, buf, sizeof buf));
}

void it_expect_channel_close_at(amqp_connection_state_t c, amqp_channel_t ch, amqp_rpc_reply_t r,
                                int code, const char *text, const char *file, int line)
{
    amqp_channel_close_ok_t ok = {0};
    int rc;

    expect_close(r, AMQP_CHANNEL_CLOSE_METHOD, code, text, file, line);
    rc = amqp_send_method(c, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (rc != AMQP_STATUS_OK)
        fail_at(file, line, "sending channel.close-ok: %s", amqp_error_string2(rc));
}

void it_expect_connection_close_at(amqp_connection_state_t c, amqp_rpc_reply_t r, int code,
                                   const char *text, const char *file, int line)
{
    amqp_connection_close_ok_t ok = {0};

    expect_close(r, AMQP_CONNECTION_CLOSE_METHOD, code, text, file, line);
    /* The broker may close the socket right after connection.close; a failed write of the
     * close-ok is then expected and harmless. */
    amqp_send_method(c, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
}

amqp_rpc_reply_t it_wait_method(amqp_connection_state_t c, int timeout_ms)
{
    return it_wait_method_on(c, timeout_ms, NULL);
}

amqp_rpc_reply_t it_wait_method_on(amqp_connection_state_t c, int timeout_ms,
                                   amqp_channel_t *channel)
{
    long long deadline = now_ms() + timeout_ms;
    amqp_rpc_reply_t r = {0};
    amqp_frame_t frame;

    for (;;) {
        long long left = deadline - now_ms();
        struct timeval tv;
        int rc;

        if (left < 0)
            left = 0;
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        rc = amqp_simple_wait_frame_noblock(c, &frame, &tv);
        if (rc != AMQP_STATUS_OK) {
            r.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION;
            r.library_error = rc;
            return r;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (channel != NULL)
            *channel = frame.channel;
        r.reply = frame.payload.method;
        r.reply_type =
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD
                ? AMQP_RESPONSE_SERVER_EXCEPTION
                : AMQP_RESPONSE_NORMAL;
        return r;
    }
}

void it_assert_channel_alive_at(amqp_connection_state_t c, amqp_channel_t ch, const char *file,
                                int line)
{
    amqp_exchange_declare(c, ch, amqp_cstring_bytes("amq.direct"), amqp_cstring_bytes("direct"), 1,
                          0, 0, 0, amqp_empty_table);
    it_assert_ok_at(amqp_get_rpc_reply(c), "passive exchange.declare amq.direct", file, line);
}

/* ---- declarations --------------------------------------------------------------------- */

void it_queue_declare(amqp_connection_state_t c, amqp_channel_t ch, const char *name, bool durable,
                      bool exclusive, bool auto_delete, amqp_table_t args, uint32_t *message_count,
                      uint32_t *consumer_count)
{
    amqp_queue_declare_ok_t *ok;
    char what[300];

    ok = amqp_queue_declare(c, ch, amqp_cstring_bytes(name), 0, durable, exclusive, auto_delete,
                            args);
    snprintf(what, sizeof what, "queue.declare '%s'", name);
    it_assert_ok(amqp_get_rpc_reply(c), what);
    ck_assert_ptr_nonnull(ok);
    if (message_count != NULL)
        *message_count = ok->message_count;
    if (consumer_count != NULL)
        *consumer_count = ok->consumer_count;
}

void it_queue(amqp_connection_state_t c, const char *name)
{
    it_queue_declare(c, 1, name, false, false, false, amqp_empty_table, NULL, NULL);
}

void it_expect_counts_at(amqp_connection_state_t c, const char *queue, long messages,
                         long consumers, const char *file, int line)
{
    long long deadline = now_ms() + COUNT_WAIT_MS;
    amqp_queue_declare_ok_t *ok;

    for (;;) {
        ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        it_assert_ok_at(amqp_get_rpc_reply(c), "passive queue.declare", file, line);
        if ((messages < 0 || ok->message_count == messages) &&
            (consumers < 0 || ok->consumer_count == consumers))
            return;
        if (now_ms() > deadline)
            break;
        sleep_ms(10);
    }
    fail_at(file, line, "queue '%s': expected %ld messages and %ld consumers, got %u and %u", queue,
            messages, consumers, ok->message_count, ok->consumer_count);
}

void it_expect_queue_gone_at(amqp_connection_state_t c, const char *queue, const char *file,
                             int line)
{
    long long deadline = now_ms() + COUNT_WAIT_MS;
    amqp_rpc_reply_t r;
    char text[400];

    snprintf(text, sizeof text, "NOT_FOUND - no queue '%s' in vhost '/'", queue);
    for (;;) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        r = amqp_get_rpc_reply(c);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            break;
        if (now_ms() > deadline)
            fail_at(file, line, "queue '%s' still exists", queue);
        sleep_ms(10);
    }
    it_expect_channel_close_at(c, 1, r, 404, text, file, line);
    it_channel_open(c, 1);
}

void it_temp_queue(amqp_connection_state_t c, const char *name)
{
    it_queue_declare(c, 1, name, false, true, false, amqp_empty_table, NULL, NULL);
}

uint32_t it_queue_delete(amqp_connection_state_t c, const char *name)
{
    amqp_queue_delete_ok_t *ok = amqp_queue_delete(c, 1, amqp_cstring_bytes(name), 0, 0);
    char what[300];

    snprintf(what, sizeof what, "queue.delete '%s'", name);
    it_assert_ok(amqp_get_rpc_reply(c), what);
    ck_assert_ptr_nonnull(ok);
    return ok->message_count;
}

void it_exchange(amqp_connection_state_t c, const char *name, const char *type)
{
    char what[300];

    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 0, 0, 0,
                          amqp_empty_table);
    snprintf(what, sizeof what, "exchange.declare '%s' %s", name, type);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

void it_exchange_delete(amqp_connection_state_t c, const char *name)
{
    char what[300];

    amqp_exchange_delete(c, 1, amqp_cstring_bytes(name), 0);
    snprintf(what, sizeof what, "exchange.delete '%s'", name);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

void it_bind(amqp_connection_state_t c, const char *queue, const char *exchange, const char *key,
             amqp_table_t args)
{
    char what[600];

    amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), args);
    snprintf(what, sizeof what, "queue.bind '%s' to '%s' with '%s'", queue, exchange, key);
    it_assert_ok(amqp_get_rpc_reply(c), what);
}

void it_consume(amqp_connection_state_t c, amqp_channel_t ch, const char *queue, const char *tag,
                bool no_ack, bool exclusive, char *tag_out, size_t tag_size)
{
    amqp_basic_consume_ok_t *ok;
    char what[300];

    ok = amqp_basic_consume(c, ch, amqp_cstring_bytes(queue),
                            tag != NULL ? amqp_cstring_bytes(tag) : amqp_empty_bytes, 0, no_ack,
                            exclusive, amqp_empty_table);
    snprintf(what, sizeof what, "basic.consume '%s'", queue);
    it_assert_ok(amqp_get_rpc_reply(c), what);
    ck_assert_ptr_nonnull(ok);
    if (tag_out != NULL)
        snprintf(tag_out, tag_size, "%.*s", (int)ok->consumer_tag.len,
                 (const char *)ok->consumer_tag.bytes);
}

void it_qos(amqp_connection_state_t c, amqp_channel_t ch, uint16_t prefetch_count, bool global)
{
    amqp_basic_qos(c, ch, 0, prefetch_count, global);
    it_assert_ok(amqp_get_rpc_reply(c), "basic.qos");
}

/* ---- messages ------------------------------------------------------------------------- */

void it_publish_bytes(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                      const char *key, const amqp_basic_properties_t *props, amqp_bytes_t body)
{
    int rc = amqp_basic_publish(c, ch, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), 0, 0,
                                props, body);

    if (rc != AMQP_STATUS_OK)
        FAIL("basic.publish to '%s' with '%s': %s", exchange, key, amqp_error_string2(rc));
}

void it_publish(amqp_connection_state_t c, const char *exchange, const char *key, const char *body)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};

    it_publish_bytes(c, 1, exchange, key, &props, amqp_cstring_bytes(body));
}

static void copy_bytes(char *dst, size_t size, amqp_bytes_t b)
{
    snprintf(dst, size, "%.*s", (int)b.len, (const char *)b.bytes);
}

bool it_get(amqp_connection_state_t c, amqp_channel_t ch, const char *queue, bool no_ack,
            struct it_msg *m)
{
    amqp_rpc_reply_t r;
    const amqp_basic_get_ok_t *ok;
    char what[300];

    memset(m, 0, sizeof *m);
    amqp_maybe_release_buffers(c);
    r = amqp_basic_get(c, ch, amqp_cstring_bytes(queue), no_ack);
    snprintf(what, sizeof what, "basic.get '%s'", queue);
    it_assert_ok(r, what);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return false;
    ck_assert_uint_eq(r.reply.id, AMQP_BASIC_GET_OK_METHOD);
    ok = r.reply.decoded;
    m->channel = ch;
    m->delivery_tag = ok->delivery_tag;
    m->redelivered = ok->redelivered != 0;
    m->message_count = ok->message_count;
    copy_bytes(m->exchange, sizeof m->exchange, ok->exchange);
    copy_bytes(m->routing_key, sizeof m->routing_key, ok->routing_key);
    r = amqp_read_message(c, ch, &m->message, 0);
    it_assert_ok(r, "reading the message of basic.get-ok");
    return true;
}

bool it_next_delivery(amqp_connection_state_t c, int timeout_ms, struct it_msg *m)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    amqp_envelope_t env;
    amqp_rpc_reply_t r;
    char buf[512];

    memset(m, 0, sizeof *m);
    amqp_maybe_release_buffers(c);
    r = amqp_consume_message(c, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return false;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        /* Something else than a delivery came first: say what it was. */
        r = it_wait_method(c, 0);
        FAIL("waiting for a delivery, got %s", it_reply_str(r, buf, sizeof buf));
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        FAIL("waiting for a delivery: %s", it_reply_str(r, buf, sizeof buf));
    m->channel = env.channel;
    m->delivery_tag = env.delivery_tag;
    m->redelivered = env.redelivered != 0;
    copy_bytes(m->exchange, sizeof m->exchange, env.exchange);
    copy_bytes(m->routing_key, sizeof m->routing_key, env.routing_key);
    copy_bytes(m->consumer_tag, sizeof m->consumer_tag, env.consumer_tag);
    /* The message moves to m; the envelope's own strings are freed here. */
    m->message = env.message;
    amqp_bytes_free(env.exchange);
    amqp_bytes_free(env.routing_key);
    amqp_bytes_free(env.consumer_tag);
    return true;
}

void it_msg_free(struct it_msg *m)
{
    amqp_destroy_message(&m->message);
    memset(m, 0, sizeof *m);
}

const char *it_body(const struct it_msg *m, char *buf, size_t size)
{
    copy_bytes(buf, size, m->message.body);
    return buf;
}

void it_assert_body_at(const struct it_msg *m, const char *text, const char *file, int line)
{
    char buf[256];

    if (!it_bytes_eq(m->message.body, text))
        fail_at(file, line, "expected body '%s', got '%s' (%zu bytes)", text,
                it_body(m, buf, sizeof buf), m->message.body.len);
}

void it_ack(amqp_connection_state_t c, amqp_channel_t ch, uint64_t tag, bool multiple)
{
    int rc = amqp_basic_ack(c, ch, tag, multiple);

    if (rc != AMQP_STATUS_OK)
        FAIL("basic.ack %llu: %s", (unsigned long long)tag, amqp_error_string2(rc));
}

/* ---- small comparisons ---------------------------------------------------------------- */

bool it_bytes_eq(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);

    return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

void it_assert_bytes_at(amqp_bytes_t b, const char *s, const char *expr, const char *file, int line)
{
    if (!it_bytes_eq(b, s))
        fail_at(file, line, "%s: expected '%s', got '%.*s'", expr, s, (int)b.len,
                (const char *)b.bytes);
}

/* ---- time ----------------------------------------------------------------------------- */

long long it_now_ms(void)
{
    return now_ms();
}

void it_sleep_ms(long ms)
{
    sleep_ms(ms);
}

/* ---- field tables --------------------------------------------------------------------- */

void it_table_init(struct it_table *t)
{
    memset(t, 0, sizeof *t);
    t->table.entries = t->entries;
}

void it_table_add(struct it_table *t, const char *key, amqp_field_value_t value)
{
    ck_assert_int_lt(t->table.num_entries, IT_TABLE_MAX);
    t->entries[t->table.num_entries].key = amqp_cstring_bytes(key);
    t->entries[t->table.num_entries].value = value;
    t->table.num_entries++;
}

void it_table_add_long(struct it_table *t, const char *key, int64_t value)
{
    it_table_add(t, key, (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I64, .value.i64 = value});
}

void it_table_add_int(struct it_table *t, const char *key, int32_t value)
{
    it_table_add(t, key, (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I32, .value.i32 = value});
}

void it_table_add_str(struct it_table *t, const char *key, const char *value)
{
    it_table_add(t, key,
                 (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                      .value.bytes = amqp_cstring_bytes(value)});
}

void it_table_add_bool(struct it_table *t, const char *key, bool value)
{
    it_table_add(t, key,
                 (amqp_field_value_t){.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = value});
}

const amqp_field_value_t *it_table_get(const amqp_table_t *t, const char *key)
{
    for (int i = 0; i < t->num_entries; i++) {
        if (it_bytes_eq(t->entries[i].key, key))
            return &t->entries[i].value;
    }
    return NULL;
}

void it_assert_table_str_at(const amqp_table_t *t, const char *key, const char *value,
                            const char *file, int line)
{
    const amqp_field_value_t *v = it_table_get(t, key);

    if (v == NULL)
        fail_at(file, line, "table has no '%s' (expected '%s')", key, value);
    if (v->kind != AMQP_FIELD_KIND_UTF8)
        fail_at(file, line, "'%s' has kind '%c', expected 'S'", key, v->kind);
    if (!it_bytes_eq(v->value.bytes, value))
        fail_at(file, line, "'%s': expected '%s', got '%.*s'", key, value, (int)v->value.bytes.len,
                (const char *)v->value.bytes.bytes);
}

void it_assert_table_long_at(const amqp_table_t *t, const char *key, int64_t value,
                             const char *file, int line)
{
    const amqp_field_value_t *v = it_table_get(t, key);

    if (v == NULL)
        fail_at(file, line, "table has no '%s' (expected %lld)", key, (long long)value);
    if (v->kind != AMQP_FIELD_KIND_I64)
        fail_at(file, line, "'%s' has kind '%c', expected 'l'", key, v->kind);
    if (v->value.i64 != value)
        fail_at(file, line, "'%s': expected %lld, got %lld", key, (long long)value,
                (long long)v->value.i64);
}

amqp_table_t it_headers(const struct it_msg *m)
{
    if ((m->message.properties._flags & AMQP_BASIC_HEADERS_FLAG) == 0)
        return amqp_empty_table;
    return m->message.properties.headers;
}

/* ---- consumers and deliveries --------------------------------------------------------- */

void it_consume_args(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                     const char *tag, bool no_ack, bool exclusive, amqp_table_t args, char *tag_out,
                     size_t tag_size)
{
    amqp_basic_consume_ok_t *ok;
    char what[300];

    ok = amqp_basic_consume(c, ch, amqp_cstring_bytes(queue),
                            tag != NULL ? amqp_cstring_bytes(tag) : amqp_empty_bytes, 0, no_ack,
                            exclusive, args);
    snprintf(what, sizeof what, "basic.consume '%s' with arguments", queue);
    it_assert_ok(amqp_get_rpc_reply(c), what);
    ck_assert_ptr_nonnull(ok);
    if (tag_out != NULL)
        snprintf(tag_out, tag_size, "%.*s", (int)ok->consumer_tag.len,
                 (const char *)ok->consumer_tag.bytes);
}

void it_expect_delivery_at(amqp_connection_state_t c, int timeout_ms, const char *body,
                           struct it_msg *m, const char *file, int line)
{
    char got[256];

    if (!it_next_delivery(c, timeout_ms, m))
        fail_at(file, line, "no delivery of '%s' within %d ms", body, timeout_ms);
    if (!it_bytes_eq(m->message.body, body)) {
        it_body(m, got, sizeof got);
        it_msg_free(m);
        fail_at(file, line, "expected a delivery of '%s', got '%s'", body, got);
    }
}

void it_expect_no_delivery_at(amqp_connection_state_t c, int quiet_ms, const char *file, int line)
{
    struct it_msg m;
    char got[256];

    if (it_next_delivery(c, quiet_ms, &m)) {
        it_body(&m, got, sizeof got);
        it_msg_free(&m);
        fail_at(file, line, "unexpected delivery of '%s'", got);
    }
}

void it_expect_get_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                      const char *body, struct it_msg *m, const char *file, int line)
{
    struct it_msg local;
    char got[256];

    long long deadline = now_ms() + 2000;

    if (m == NULL)
        m = &local;
    /* A message published on another connection may reach the queue after this get: the
     * broker orders frames per connection, not across them. Expecting a message therefore
     * waits a little for it. */
    while (!it_get(c, ch, queue, true, m)) {
        if (now_ms() > deadline)
            fail_at(file, line, "queue '%s' is empty, expected '%s'", queue, body);
        usleep(10 * 1000);
    }
    if (!it_bytes_eq(m->message.body, body)) {
        it_body(m, got, sizeof got);
        it_msg_free(m);
        fail_at(file, line, "queue '%s': expected '%s', got '%s'", queue, body, got);
    }
    if (m == &local)
        it_msg_free(m);
}

void it_await_get_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                     const char *body, struct it_msg *m, int timeout_ms, const char *file, int line)
{
    long long deadline = now_ms() + timeout_ms;
    struct it_msg local;
    char got[256];

    if (m == NULL)
        m = &local;
    while (!it_get(c, ch, queue, true, m)) {
        if (now_ms() > deadline)
            fail_at(file, line, "queue '%s' still empty after %d ms, expected '%s'", queue,
                    timeout_ms, body);
        sleep_ms(10);
    }
    if (!it_bytes_eq(m->message.body, body)) {
        it_body(m, got, sizeof got);
        it_msg_free(m);
        fail_at(file, line, "queue '%s': expected '%s', got '%s'", queue, body, got);
    }
    if (m == &local)
        it_msg_free(m);
}

void it_expect_empty_at(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                        const char *file, int line)
{
    struct it_msg m;
    char got[256];

    if (it_get(c, ch, queue, true, &m)) {
        it_body(&m, got, sizeof got);
        it_msg_free(&m);
        fail_at(file, line, "queue '%s' is not empty: got '%s'", queue, got);
    }
}

/* ---- publisher confirms --------------------------------------------------------------- */

void it_confirm_select(amqp_connection_state_t c, amqp_channel_t ch)
{
    amqp_confirm_select(c, ch);
    it_assert_ok(amqp_get_rpc_reply(c), "confirm.select");
}

/* Settles tag, and with multiple every pending tag from first_pending (the lowest pending one,
 * so a burst of multiple confirms costs no more than the tags it settles) up to it. */
static void settle(enum it_confirm *state, uint64_t first_pending, uint64_t last, uint64_t tag,
                   bool multiple, enum it_confirm fate, const char *file, int line)
{
    if (tag == 0 || tag > last)
        fail_at(file, line, "%s of tag %llu, but only %llu messages were published",
                fate == IT_ACKED ? "basic.ack" : "basic.nack", (unsigned long long)tag,
                (unsigned long long)last);
    if (state[tag] != IT_PENDING)
        fail_at(file, line, "tag %llu confirmed twice", (unsigned long long)tag);
    state[tag] = fate;
    for (uint64_t i = first_pending; multiple && i < tag; i++) {
        if (state[i] == IT_PENDING)
            state[i] = fate;
    }
}

void it_collect_confirms_at(amqp_connection_state_t c, amqp_channel_t ch, enum it_confirm *state,
                            uint64_t last, int timeout_ms, int *returns, const char *file, int line)
{
    long long deadline = now_ms() + timeout_ms;
    uint64_t first_pending = 1;
    char buf[512];

    for (;;) {
        amqp_channel_t got_ch = 0;
        amqp_rpc_reply_t r;
        long long left;

        while (first_pending <= last && state[first_pending] != IT_PENDING)
            first_pending++;
        if (first_pending > last)
            return;
        left = deadline - now_ms();
        r = it_wait_method_on(c, left > 0 ? (int)left : 0, &got_ch);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            fail_at(file, line, "no confirm of tag %llu within %d ms",
                    (unsigned long long)first_pending, timeout_ms);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            fail_at(file, line, "waiting for confirms: %s", it_reply_str(r, buf, sizeof buf));
        if (got_ch != ch || r.reply.id == AMQP_BASIC_DELIVER_METHOD)
            continue;
        if (r.reply.id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *ack = r.reply.decoded;
            settle(state, first_pending, last, ack->delivery_tag, ack->multiple, IT_ACKED, file,
                   line);
        } else if (r.reply.id == AMQP_BASIC_NACK_METHOD) {
            const amqp_basic_nack_t *nack = r.reply.decoded;
            settle(state, first_pending, last, nack->delivery_tag, nack->multiple, IT_NACKED, file,
                   line);
        } else if (r.reply.id == AMQP_BASIC_RETURN_METHOD) {
            if (returns != NULL)
                (*returns)++;
        } else {
            fail_at(file, line, "waiting for confirms, got %s", amqp_method_name(r.reply.id));
        }
    }
}
