/* Real etcd members for the cluster tests: each on free loopback ports with its own data
 * directory under $TMPDIR, started from $ETCD or `etcd` on PATH (scripts/deps installs
 * etcd-server). A missing etcd fails the test, it does not skip it. Members die with the
 * process that started them (PR_SET_PDEATHSIG), and a reaper process removes their
 * directory when that process ends, however it ends (Check's fork mode ends a failed test
 * with _exit, so no exit handler would run). */
#ifndef WARREN_TESTS_UNIT_ETCD_FIXTURE_H
#define WARREN_TESTS_UNIT_ETCD_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

struct ev_loop;

#define ETCD_FIXTURE_MAX 3

struct etcd_member {
    pid_t pid; /* 0 once killed */
    int client_port, peer_port;
    char url[64]; /* http://127.0.0.1:<client_port> */
    char dir[600];
};

struct etcd_cluster {
    int n;
    struct etcd_member m[ETCD_FIXTURE_MAX];
    char endpoints[256]; /* every member's url, comma-separated */
    char base[512];      /* the temporary directory holding the data directories */
    int reaper_fd;       /* closed when the starter ends: its reaper removes base */
    pid_t reaper;
};

/* Starts n members (1 to 3) forming one cluster and waits until each answers a
 * linearizable read (so a leader exists). Aborts the test with etcd's log on failure. */
void etcd_cluster_start(struct etcd_cluster *cl, int n);
/* The same, with up to 4 more arguments for every member (NULL-terminated). */
void etcd_cluster_start_args(struct etcd_cluster *cl, int n, const char *const *extra);
/* Kills every member still running and removes the data directories. */
void etcd_cluster_stop(struct etcd_cluster *cl);
/* SIGKILL (and reaps, when this process started it) member i. */
void etcd_member_kill(struct etcd_cluster *cl, int i);
/* SIGSTOP / SIGCONT member i. */
void etcd_member_pause(struct etcd_cluster *cl, int i, bool paused);

/* Runs loop until *flag becomes true or timeout_s passes; returns *flag. */
bool run_until(struct ev_loop *loop, const bool *flag, double timeout_s);
/* Runs loop for seconds. */
void run_for(struct ev_loop *loop, double seconds);
/* Monotonic seconds. */
double mono_s(void);

#endif
