/* Real etcd members for the cluster tests (see etcd_fixture.h). */
#define _GNU_SOURCE
#include "tests/unit/etcd_fixture.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Clusters started by this process, for the exit handler. */
static struct etcd_cluster *started[8];
static pid_t started_by[8]; /* a forked test cleans up only what it started itself */
static size_t n_started;
static bool handler_set;

double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static const char *etcd_binary(void)
{
    const char *e = getenv("ETCD");

    return e != NULL && *e != '\0' ? e : "etcd";
}

static bool etcd_present(void)
{
    const char *bin = etcd_binary();
    const char *path = getenv("PATH");
    char buf[1024];

    if (strchr(bin, '/') != NULL)
        return access(bin, X_OK) == 0;
    while (path != NULL && *path != '\0') {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);

        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, bin);
        if (access(buf, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return false;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* A linearizable read, answered 200 only by a member that has a leader. */
static bool member_ready(const struct etcd_member *m)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");
    char url[128];
    long status = 0;
    CURLcode cc;

    snprintf(url, sizeof(url), "%s/v3/kv/range", m->url);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\"}");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return cc == CURLE_OK && status == 200;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup_at_exit(void)
{
    size_t i = n_started;

    while (i-- > 0)
        if (started_by[i] == getpid())
            etcd_cluster_stop(started[i]);
}

static void dump_log(const struct etcd_member *m)
{
    char path[700], line[512];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s.log", m->dir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f) != NULL && ++n < 200)
        fputs(line, stderr);
    fclose(f);
}

void etcd_cluster_start(struct etcd_cluster *cl, int n)
{
    etcd_cluster_start_args(cl, n, NULL);
}

/* A process that waits for the end of its parent (EOF on a pipe only the parent holds) and
 * then removes the cluster's directory; the members die with the parent on their own. */
static void start_reaper(struct etcd_cluster *cl)
{
    int fds[2];
    char byte;
    pid_t pid;

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Out of the test's process group, which Check kills when a forked test ends. */
        setpgid(0, 0);
        close(fds[1]);
        while (read(fds[0], &byte, 1) < 0 && errno == EINTR)
            ;
        usleep(300 * 1000); /* the members are dying: let them stop writing */
        nftw(cl->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        nftw(cl->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        _exit(0);
    }
    close(fds[0]);
    cl->reaper_fd = fds[1];
    cl->reaper = pid;
}

void etcd_cluster_start_args(struct etcd_cluster *cl, int n, const char *const *extra)
{
    const char *tmp = getenv("TMPDIR");
    char initial[1024] = "";
    double deadline;
    int i;

    ck_assert_msg(etcd_present(), "etcd not found (set ETCD or install etcd-server: scripts/deps)");
    ck_assert(n >= 1 && n <= ETCD_FIXTURE_MAX);
    memset(cl, 0, sizeof(*cl));
    cl->n = n;
    snprintf(cl->base, sizeof(cl->base), "%s/etcd-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(cl->base));
    start_reaper(cl);
    for (i = 0; i < n; i++) {
        struct etcd_member *m = &cl->m[i];
        size_t len = strlen(initial);

        m->client_port = free_port();
        m->peer_port = free_port();
        snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->client_port);
        snprintf(m->dir, sizeof(m->dir), "%s/n%d", cl->base, i + 1);
        snprintf(initial + len, sizeof(initial) - len, "%sn%d=http://127.0.0.1:%d", i ? "," : "",
                 i + 1, m->peer_port);
        len = strlen(cl->endpoints);
        snprintf(cl->endpoints + len, sizeof(cl->endpoints) - len, "%s%s", i ? "," : "", m->url);
    }
    if (!handler_set)
        atexit(cleanup_at_exit);
    handler_set = true;
    ck_assert_uint_lt(n_started, sizeof(started) / sizeof(started[0]));
    started_by[n_started] = getpid();
    started[n_started++] = cl;

    for (i = 0; i < n; i++) {
        struct etcd_member *m = &cl->m[i];
        char name[16], peer[64], logpath[700];
        pid_t pid;

        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", m->peer_port);
        snprintf(logpath, sizeof(logpath), "%s.log", m->dir);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            /* --unsafe-no-fsync: tests need no durability, and it keeps the disk quiet. */
            const char *argv[40] = {etcd_binary(),
                                    "--name",
                                    name,
                                    "--data-dir",
                                    m->dir,
                                    "--listen-client-urls",
                                    m->url,
                                    "--advertise-client-urls",
                                    m->url,
                                    "--listen-peer-urls",
                                    peer,
                                    "--initial-advertise-peer-urls",
                                    peer,
                                    "--initial-cluster",
                                    initial,
                                    "--initial-cluster-state",
                                    "new",
                                    "--initial-cluster-token",
                                    cl->base,
                                    "--unsafe-no-fsync",
                                    "--logger",
                                    "zap",
                                    "--log-outputs",
                                    "stderr"};
            size_t k = 0, at = 0;

            while (argv[at] != NULL)
                at++;
            while (extra != NULL && extra[k] != NULL && k < 4)
                argv[at++] = extra[k++];
            execvp(argv[0], (char *const *)argv);
            _exit(127);
        }
        m->pid = pid;
    }
    deadline = mono_s() + 20.0;
    for (i = 0; i < n; i++) {
        while (!member_ready(&cl->m[i])) {
            int status;

            if (waitpid(cl->m[i].pid, &status, WNOHANG) == cl->m[i].pid) {
                cl->m[i].pid = 0;
                dump_log(&cl->m[i]);
                ck_abort_msg("etcd member %d exited during start-up", i + 1);
            }
            if (mono_s() > deadline) {
                dump_log(&cl->m[i]);
                ck_abort_msg("etcd member %d not ready after 20 s", i + 1);
            }
            usleep(50 * 1000);
        }
    }
}

void etcd_member_kill(struct etcd_cluster *cl, int i)
{
    struct etcd_member *m = &cl->m[i];

    if (m->pid <= 0)
        return;
    kill(m->pid, SIGCONT);
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0); /* ECHILD when a forked test killed it: the starter reaps */
    m->pid = 0;
}

void etcd_member_pause(struct etcd_cluster *cl, int i, bool paused)
{
    if (cl->m[i].pid > 0)
        kill(cl->m[i].pid, paused ? SIGSTOP : SIGCONT);
}

void etcd_cluster_stop(struct etcd_cluster *cl)
{
    size_t j;
    int i;

    for (i = 0; i < cl->n; i++) {
        if (cl->m[i].pid > 0) {
            kill(cl->m[i].pid, SIGCONT);
            kill(cl->m[i].pid, SIGKILL);
            /* Reaps it, also when a forked test killed it (ECHILD if not ours). */
            while (waitpid(cl->m[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        cl->m[i].pid = 0;
    }
    for (j = 0; j < n_started; j++) {
        if (started[j] == cl) {
            started[j] = started[n_started - 1];
            started_by[j] = started_by[n_started - 1];
            n_started--;
            break;
        }
    }
    if (cl->base[0] != '\0')
        nftw(cl->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    cl->base[0] = '\0';
    if (cl->reaper > 0) {
        close(cl->reaper_fd);
        while (waitpid(cl->reaper, NULL, 0) < 0 && errno == EINTR)
            ;
        cl->reaper = 0;
    }
}

/* ---- Loop helpers ---------------------------------------------------------------------------- */

struct waiter {
    ev_timer tick;
    const bool *flag;
    double deadline;
};

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct waiter *wt = (struct waiter *)w;

    (void)revents;
    if ((wt->flag != NULL && *wt->flag) || mono_s() >= wt->deadline)
        ev_break(loop, EVBREAK_ONE);
}

bool run_until(struct ev_loop *loop, const bool *flag, double timeout_s)
{
    struct waiter wt = {.flag = flag, .deadline = mono_s() + timeout_s};

    if (flag != NULL && *flag)
        return true;
    ev_timer_init(&wt.tick, on_tick, 0.005, 0.005);
    ev_timer_start(loop, &wt.tick);
    ev_run(loop, 0);
    ev_timer_stop(loop, &wt.tick);
    return flag != NULL && *flag;
}

void run_for(struct ev_loop *loop, double seconds)
{
    run_until(loop, NULL, seconds);
}
