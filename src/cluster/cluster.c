/* Cluster mode: the roles of one node (src/cluster/cluster.h has the model). */
#include "build_config.h" /* _GNU_SOURCE for accept4 */

#include "src/cluster/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/coord.h"
#include "src/cluster/proxy.h"
#include "src/cluster/repl_follower.h"
#include "src/cluster/repl_leader.h"
#include "src/cluster/repl_proto.h"
#include "src/security/tls.h"
#include "src/store/store.h"

#define CHECK_EVERY_S        0.1 /* lease deadline, ISR changes, reconnects */
#define FASTPATH_REFUSALS    2   /* refused connects to the leader's port ... */
/* ... over at least this long: its process is gone. A refusal is definite on a live host
 * (nothing listens there; the leader binds the port at its election and holds it until it
 * exits), and revoking a live leader's lease would be safe anyway (it fences itself): the
 * span only spares a leader a needless election, so it is one retry (100 ms) long. */
#define FASTPATH_MIN_SPAN_MS 100
/* ... unless it leads for less than this: a node elected a moment ago may not have bound its
 * port yet (its campaign's answer can lag the others' view of the election), and revoking
 * it would only start another election. It is waited for by its lease instead. */
#define FASTPATH_MIN_LEADER_AGE_MS 2000
#define MAX_MEMBERS          16
#define TURN_WINDOW_MS       10000 /* loop_turn_max_ms covers 10 to 20 s */
#define PEERS_EVERY_MS       5000 /* the leader re-reads the nodes for the PROXY allow-list */

struct member {
    char id[64];
    uint64_t down_since_ms; /* not live since (0: live) */
    uint64_t acked;         /* last acked position */
    uint64_t acked_at_ms;   /* when it last rose */
    /* Dropped from the ISR while still connected (too slow): it is let back in only once it
     * has acked past where the stream was when it was dropped, and acks again promptly. */
    bool evicted;
    uint64_t evicted_at_pos;
};

/* A fenced write of the ISR: which member joins or leaves (for the log). */
struct isr_change {
    struct cluster *c;
    char id[64];
    bool add;
};

struct cluster {
    struct ev_loop *loop;
    const struct config *cfg;
    struct cluster_hooks hooks;
    void *ctx;
    char node_id[64];
    char info[1024]; /* this node's JSON, as registered */
    char repl_addr[160], amqp_addr[160], amqps_addr[160], http_addr[160];
    char source_host[128]; /* cluster.listen's IP, for connections to etcd */
    struct tls_server *repl_tls; /* cluster.tls.*: the replication port's TLS; NULL: plain */
    enum cluster_role role;
    struct coord *coord;
    ev_prepare heartbeat;
    ev_check woke;           /* with heartbeat: how long each loop turn takes */
    uint64_t woke_us;
    uint64_t turn_max_us[2]; /* the longest turn in this window and the previous one */
    uint64_t turn_window_ms;
    ev_timer tick;
    struct wire_bytes secret; /* raw bytes; len 0 until known */
    bool campaigning;
    /* Unclean failover (cluster.unclean_failover, warrend --force-leader): standing for
     * election outside the ISR because no ISR member is alive to lead. */
    bool unclean;
    bool unclean_checking;     /* the live nodes are being read for it */
    uint64_t leaderless_since; /* no leader observed since (0: one is) */

    /* The leader as observed. */
    bool leader_known;
    int64_t leader_epoch;
    int64_t leader_lease;
    uint64_t leader_seen_ms; /* when this leader was first observed */
    char leader_id[64];
    char leader_repl[160], leader_amqp[160], leader_amqps[160], leader_http[160];

    /* The ISR as last read or written. */
    bool isr_known;
    int64_t isr_epoch;
    char isr[MAX_MEMBERS][64];
    size_t isr_n;

    /* Follower. */
    struct repl_follower *follower;
    char following[160]; /* the address it connects to */
    int64_t following_lease; /* the lease of the leader followed there */
    unsigned refusals;
    uint64_t first_refusal_ms;
    bool revoking;
    char revoking_addr[160]; /* the port that refused, for the log */
    struct proxy *proxy;
    int http_fd; /* follower in proxy mode: the management port, relayed */
    ev_io http_watcher;

    /* Leader. */
    struct store *store; /* the broker's, once promoted: its fsyncs gate the lease too */
    bool disk_stalled;
    int64_t epoch;
    int repl_fd; /* bound at election, before recovery, so followers' connects queue */
    struct repl_leader *rl;
    uint64_t replicated_seq;
    uint64_t acked_seq;          /* what the ISR acked; replicated_seq lags it while the ISR
                                  * is below cluster.min_insync_replicas */
    uint64_t short_since_ms;     /* the ISR is below min_insync_replicas since (0: it is not) */
    struct member members[MAX_MEMBERS];
    size_t member_n;
    bool isr_writing;
    struct isr_change isr_change; /* the one fenced write of the ISR in flight */
    uint64_t peers_read_ms;
    bool peers_reading;
    bool transferring;       /* a planned switchover waits for the followers */
    uint64_t transfer_until; /* then gives up waiting */
};

const char *cluster_role_name(enum cluster_role r)
{
    switch (r) {
    case CLUSTER_STARTING:
        return "starting";
    case CLUSTER_FOLLOWER:
        return "follower";
    case CLUSTER_PROMOTING:
        return "promoting";
    case CLUSTER_LEADER:
        return "leader";
    case CLUSTER_FENCED:
        return "fenced";
    }
    return "?";
}

/* cluster.on_leader_elected / on_leader_lost: the operator's command, run by /bin/sh in a
 * process of its own (detached: a double fork, so that nobody has to reap it and a node about
 * to exit does not wait for it), with the node, the epoch and the event in its environment. */
static void run_hook(const struct cluster *c, const char *command, const char *event)
{
    /* Built before the fork: the process has threads, so the child only execs. */
    char node[96], epoch[48], ev[64];
    char *const envp[] = {node, epoch, ev,
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          NULL};
    pid_t pid;

    if (command[0] == '\0')
        return;
    snprintf(node, sizeof node, "WARREN_NODE_ID=%s", c->node_id);
    snprintf(epoch, sizeof epoch, "WARREN_EPOCH=%lld", (long long)c->epoch);
    snprintf(ev, sizeof ev, "WARREN_EVENT=%s", event);
    pid = fork();
    if (pid < 0) {
        log_warn(NULL, "cluster: cannot run the %s hook: %s", event, strerror(errno));
        return;
    }
    if (pid == 0) {
        if (fork() == 0)
            execle("/bin/sh", "sh", "-c", command, (char *)NULL, envp);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    log_info(NULL, "cluster: %s hook started: %s", event, command);
}

static void stop_acting(struct cluster *c, const char *why, bool planned)
{
    if (c->role == CLUSTER_FENCED)
        return;
    if (planned)
        log_info(NULL, "cluster: %s: this node steps down (as %s, epoch %lld)", why,
                 cluster_role_name(c->role), (long long)c->epoch);
    else
        log_error(NULL, "cluster: %s: this node stops (as %s, epoch %lld)", why,
                  cluster_role_name(c->role), (long long)c->epoch);
    if (c->role == CLUSTER_LEADER || c->role == CLUSTER_PROMOTING)
        run_hook(c, c->cfg->cluster.on_leader_lost, "leader_lost");
    c->role = CLUSTER_FENCED;
    /* Revoked at once, so that the others need not wait for the lease to expire. */
    coord_stop(c->coord, true);
    c->coord = NULL;
    c->hooks.fence(c->ctx, why);
}

static void fence(struct cluster *c, const char *why)
{
    stop_acting(c, why, false);
}

static bool isr_has(const struct cluster *c, const char *id)
{
    for (size_t i = 0; i < c->isr_n; i++)
        if (strcmp(c->isr[i], id) == 0)
            return true;
    return false;
}

static void isr_set(struct cluster *c, const struct coord_isr *isr)
{
    c->isr_known = true;
    c->isr_epoch = isr->epoch;
    c->isr_n = 0;
    for (size_t i = 0; i < isr->n_members && c->isr_n < MAX_MEMBERS; i++)
        snprintf(c->isr[c->isr_n++], sizeof c->isr[0], "%s", isr->members[i]);
}

/* ---- Addresses --------------------------------------------------------------------------- */

/* "host:port" from a listener; a wildcard host becomes this machine's name. */
static void advertised(const char *host, unsigned port, char *out, size_t out_size)
{
    char name[256];

    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        if (gethostname(name, sizeof name) != 0)
            snprintf(name, sizeof name, "localhost");
        name[sizeof name - 1] = '\0';
        host = name;
    }
    snprintf(out, out_size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* Splits "host:port" / "[v6]:port". */
static int split_address(const char *addr, char *host, size_t host_size, unsigned *port)
{
    const char *colon;
    char *end;
    unsigned long p;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - addr - 1) >= host_size)
            return -1;
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= host_size)
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

/* "host:port" with host a name becomes "IP:port" (the first address the resolver gives);
 * an IP literal, an empty or unresolvable address is left as it is. */
static void numeric_address(char *addr, size_t size)
{
    char host[128], ip[INET6_ADDRSTRLEN];
    unsigned port;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    struct in6_addr probe;

    if (addr[0] == '\0' || split_address(addr, host, sizeof host, &port) != 0 ||
        inet_pton(AF_INET, host, &probe) == 1 || inet_pton(AF_INET6, host, &probe) == 1 ||
        getaddrinfo(host, NULL, &hints, &res) != 0)
        return;
    if (inet_ntop(res->ai_family,
                  res->ai_family == AF_INET
                      ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                      : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr,
                  ip, sizeof ip) != NULL)
        snprintf(addr, size, res->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
    freeaddrinfo(res);
}

/* socket + bind + listen on "host:port", non-blocking. -1 with the reason in err. */
static int bind_address(const char *addr, char *err, size_t err_size)
{
    char host[128], port_text[8];
    unsigned port;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res;
    int fd, one = 1;

    if (split_address(addr, host, sizeof host, &port) != 0) {
        snprintf(err, err_size, "'%s' is not host:port", addr);
        return -1;
    }
    snprintf(port_text, sizeof port_text, "%u", port);
    if (getaddrinfo(host, port_text, &hints, &res) != 0) {
        snprintf(err, err_size, "'%s': the host is not an IP address", addr);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        snprintf(err, err_size, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void info_address(json_t *info, const char *key, char *out, size_t out_size);

/* ---- Follower ---------------------------------------------------------------------------- */

static const struct repl_follower_events follower_events;

static void stop_following(struct cluster *c)
{
    repl_follower_free(c->follower);
    c->follower = NULL;
    c->following[0] = '\0';
}

static void follow(struct cluster *c)
{
    struct repl_follower_options o = {
        .node_id = c->node_id,
        .data_dir = c->cfg->data_dir,
        .secret = c->secret,
        .timeout_ms = c->cfg->cluster.ack_timeout_ms,
        .tls = c->repl_tls,
    };
    char err[256];

    if (c->role != CLUSTER_FOLLOWER || !c->leader_known || c->secret.len == 0 ||
        strcmp(c->leader_id, c->node_id) == 0 || c->leader_repl[0] == '\0')
        return;
    if (c->follower != NULL && strcmp(c->following, c->leader_repl) == 0)
        return;
    stop_following(c);
    o.leader_address = c->leader_repl;
    c->follower = repl_follower_new(c->loop, &o, &follower_events, c, err, sizeof err);
    if (c->follower == NULL) {
        fence(c, err);
        return;
    }
    repl_follower_note_epoch(c->follower, (uint64_t)c->leader_epoch);
    snprintf(c->following, sizeof c->following, "%s", c->leader_repl);
    c->following_lease = c->leader_lease;
    c->refusals = 0;
    log_info(NULL, "cluster: following %s (epoch %lld) at %s", c->leader_id,
             (long long)c->leader_epoch, c->leader_repl);
}

static void on_revoked(void *arg, int status)
{
    struct cluster *c = arg;

    c->revoking = false;
    if (status == COORD_OK)
        log_info(NULL, "cluster: revoked the lease of the leader at %s, whose process is gone",
                 c->revoking_addr);
}

static void follower_connected(void *ctx, uint64_t leader_epoch)
{
    struct cluster *c = ctx;

    c->refusals = 0;
    log_info(NULL, "cluster: connected to leader %s (epoch %llu)", c->leader_id,
             (unsigned long long)leader_epoch);
}

static void follower_caught_up(void *ctx, uint64_t position)
{
    struct cluster *c = ctx;

    log_info(NULL, "cluster: caught up with leader %s at position %llu", c->leader_id,
             (unsigned long long)position);
}

static void follower_lost(void *ctx, int err, bool refused)
{
    struct cluster *c = ctx;
    uint64_t now = now_ms();

    if (!refused) {
        c->refusals = 0;
        log_debug(NULL, "cluster: replication from %s lost: %s", c->leader_id, strerror(err));
        return;
    }
    /* The crash fast-path: the leader's host answers but nothing listens on its port, so
     * its process is gone: its lease need not be waited for. */
    if (c->refusals++ == 0)
        c->first_refusal_ms = now;
    /* Only the lease of the leader whose port refused, and never while another leader (this
     * node, say) has been observed since: the refusals are about that one process. */
    if (c->cfg->cluster.crash_fastpath && c->refusals >= FASTPATH_REFUSALS &&
        now - c->first_refusal_ms >= FASTPATH_MIN_SPAN_MS && c->leader_known && !c->revoking &&
        c->coord != NULL && c->following_lease != 0 && c->following_lease == c->leader_lease &&
        strcmp(c->leader_id, c->node_id) != 0 &&
        now - c->leader_seen_ms >= FASTPATH_MIN_LEADER_AGE_MS) {
        c->revoking = true;
        snprintf(c->revoking_addr, sizeof c->revoking_addr, "%s", c->following);
        coord_revoke_lease(c->coord, c->following_lease, on_revoked, c);
    }
}

static void follower_rejected(void *ctx, enum repl_reject why, uint64_t epoch)
{
    struct cluster *c = ctx;

    log_warn(NULL, "cluster: leader %s refused or was refused: %s (epoch %llu)", c->leader_id,
             repl_reject_name(why), (unsigned long long)epoch);
}

static const struct repl_follower_events follower_events = {
    .connected = follower_connected,
    .caught_up = follower_caught_up,
    .lost = follower_lost,
    .rejected = follower_rejected,
};

/* ---- Election ---------------------------------------------------------------------------- */

static void maybe_campaign(struct cluster *c)
{
    /* Only an ISR member may lead (no isr key yet: a new cluster, anyone may), unless an
     * unclean failover was allowed and found no ISR member alive. */
    bool eligible = c->isr_known && (c->isr_epoch == 0 || isr_has(c, c->node_id) || c->unclean);

    if (c->role != CLUSTER_FOLLOWER || c->secret.len == 0 || c->coord == NULL)
        return;
    if (eligible && !c->campaigning) {
        c->campaigning = true;
        coord_campaign(c->coord);
        log_info(NULL, "cluster: standing for election");
    } else if (!eligible && c->campaigning) {
        c->campaigning = false;
        coord_resign(c->coord, NULL, NULL);
        log_info(NULL, "cluster: not in the in-sync set: withdrawn from the election");
    }
}

/* ---- Leader ------------------------------------------------------------------------------ */

static struct member *member_find(struct cluster *c, const char *id, bool add)
{
    for (size_t i = 0; i < c->member_n; i++)
        if (strcmp(c->members[i].id, id) == 0)
            return &c->members[i];
    if (!add || c->member_n == MAX_MEMBERS)
        return NULL;
    struct member *m = &c->members[c->member_n++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->down_since_ms = now_ms();
    m->acked_at_ms = m->down_since_ms;
    return m;
}

static void push_isr_to_replication(struct cluster *c)
{
    const char *ids[MAX_MEMBERS];
    size_t n = 0;

    for (size_t i = 0; i < c->isr_n; i++)
        if (strcmp(c->isr[i], c->node_id) != 0)
            ids[n++] = c->isr[i];
    repl_leader_set_isr(c->rl, ids, n);
}

static void on_isr_written(void *arg, int status, const struct coord_isr *isr)
{
    struct isr_change *ch = arg;
    struct cluster *c = ch->c;

    c->isr_writing = false;
    if (status == COORD_OK) {
        isr_set(c, isr);
        push_isr_to_replication(c);
        log_info(NULL, "cluster: %s %s the in-sync set (%zu members)", ch->id,
                 ch->add ? "joined" : "left", c->isr_n);
    } else if (status == COORD_FENCED) {
        fence(c, "the in-sync set could not be written: this node no longer leads");
    } else {
        log_warn(NULL, "cluster: changing the in-sync set for %s failed; trying again", ch->id);
    }
}

/* One fenced write of the ISR at a time: the set with id added or removed. */
static void change_isr(struct cluster *c, const char *id, bool add)
{
    const char *members[MAX_MEMBERS + 1];
    size_t n = 0;
    struct isr_change *ch;

    if (c->isr_writing || c->coord == NULL || isr_has(c, id) == add)
        return;
    for (size_t i = 0; i < c->isr_n; i++)
        if (add || strcmp(c->isr[i], id) != 0)
            members[n++] = c->isr[i];
    if (add)
        members[n++] = id;
    /* Not allocated: a write whose answer never comes (coord_stop first) leaks nothing. */
    ch = &c->isr_change;
    ch->c = c;
    ch->add = add;
    snprintf(ch->id, sizeof ch->id, "%s", id);
    c->isr_writing = true;
    coord_isr_write(c->coord, c->epoch, members, n, on_isr_written, ch);
}

static void on_nodes(void *arg, int status, const struct coord_node *nodes, size_t n);

static void leader_follower(void *ctx, const char *node_id, enum repl_follower_state state)
{
    struct cluster *c = ctx;
    struct member *m = member_find(c, node_id, true);

    if (m == NULL)
        return;
    if (state == REPL_FOLLOWER_CONNECTED && !c->peers_reading && c->coord != NULL) {
        /* A node we may not know yet: its relays must be let in before it goes live. */
        c->peers_reading = true;
        c->peers_read_ms = now_ms();
        coord_list_nodes(c->coord, on_nodes, c);
    }
    if (state == REPL_FOLLOWER_LIVE) {
        m->evicted = false; /* a new catch-up: it starts afresh */
        m->down_since_ms = 0;
        m->acked_at_ms = now_ms();
        change_isr(c, node_id, true);
    } else if (state != REPL_FOLLOWER_CONNECTED && m->down_since_ms == 0) {
        /* Its clock of ack progress keeps running: a follower that went silent and was then
         * dropped by the stream's own timeout is not given a second ack_timeout. */
        m->down_since_ms = now_ms();
    }
    log_info(NULL, "cluster: follower %s: %s", node_id, repl_follower_state_name(state));
}

static void leader_acked(void *ctx, const char *node_id, uint64_t position)
{
    struct cluster *c = ctx;
    struct member *m = member_find(c, node_id, true);

    if (m != NULL && position > m->acked) {
        m->acked = position;
        m->acked_at_ms = now_ms();
    }
}

static void leader_commit(void *ctx, uint64_t position, uint64_t store_seq)
{
    struct cluster *c = ctx;

    (void)position;
    if (store_seq > c->acked_seq)
        c->acked_seq = store_seq;
    /* Kafka's min.insync.replicas: with too few in sync, acked is not yet confirmable. */
    if (c->isr_n >= c->cfg->cluster.min_insync_replicas && c->acked_seq > c->replicated_seq)
        c->replicated_seq = c->acked_seq;
    /* Also for a position alone (a definitions change): held replies go out. */
    if (c->role == CLUSTER_LEADER)
        c->hooks.replicated(c->ctx, c->replicated_seq);
}

static void leader_deposed(void *ctx, const char *node_id, uint64_t epoch)
{
    struct cluster *c = ctx;
    char why[160];

    snprintf(why, sizeof why, "follower %s has seen epoch %llu, above this leader's", node_id,
             (unsigned long long)epoch);
    fence(c, why);
}

/* The leader lets the nodes' followers relay clients with a PROXY header: their addresses,
 * from the hosts they advertise (names resolved here). */
static void on_nodes(void *arg, int status, const struct coord_node *nodes, size_t n)
{
    struct cluster *c = arg;
    char ips[MAX_MEMBERS * 2][INET6_ADDRSTRLEN];
    const char *list[MAX_MEMBERS * 2];
    size_t count = 0;

    c->peers_reading = false;
    if (status != COORD_OK || c->role != CLUSTER_LEADER || c->hooks.proxy_peers == NULL)
        return;
    for (size_t i = 0; i < n && count < MAX_MEMBERS * 2; i++) {
        json_t *info = json_loads(nodes[i].info != NULL ? nodes[i].info : "{}", 0, NULL);
        char addr[160], host[128];
        unsigned port;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *r;
        info_address(info, "repl", addr, sizeof addr);
        json_decref(info);
        if (split_address(addr, host, sizeof host, &port) != 0 ||
            getaddrinfo(host, NULL, &hints, &res) != 0)
            continue;
        for (r = res; r != NULL && count < MAX_MEMBERS * 2; r = r->ai_next) {
            const void *a = r->ai_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)r->ai_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)r->ai_addr)->sin6_addr;
            if (inet_ntop(r->ai_family, a, ips[count], sizeof ips[0]) != NULL) {
                list[count] = ips[count];
                count++;
            }
        }
        freeaddrinfo(res);
    }
    c->hooks.proxy_peers(c->ctx, list, count);
}

/* Followers of the ISR that are gone, or hold the commit back, for ack_timeout are dropped
 * from it (by a fenced write first: until it succeeds they still count). */
static void check_members(struct cluster *c, uint64_t now)
{
    uint64_t head = repl_leader_position(c->rl), timeout = c->cfg->cluster.ack_timeout_ms;

    for (size_t i = 0; i < c->isr_n; i++) {
        const char *id = c->isr[i];
        struct member *m;
        if (strcmp(id, c->node_id) == 0)
            continue;
        m = member_find(c, id, true);
        if (m == NULL)
            continue;
        /* Behind: away, or holding back what was written. Without progress for ack_timeout
         * it is dropped (the leader's confirms wait at most that long for one follower). */
        bool behind = m->down_since_ms != 0 || m->acked < head;
        if (!behind) {
            m->acked_at_ms = now;
        } else if (now - m->acked_at_ms >= timeout) {
            log_warn(NULL,
                     "cluster: follower %s %s for %llu ms: dropping it from the in-sync set", id,
                     m->down_since_ms != 0 ? "is away" : "has not acked",
                     (unsigned long long)(now - m->acked_at_ms));
            m->evicted = true;
            m->evicted_at_pos = head;
            change_isr(c, id, false);
            return;
        }
    }
}

static void on_elected_isr(void *arg, int status, const struct coord_isr *isr);

static void on_elected(void *ctx, int64_t epoch)
{
    struct cluster *c = ctx;
    char err[256];

    if (c->role != CLUSTER_FOLLOWER)
        return;
    c->role = CLUSTER_PROMOTING;
    c->epoch = epoch;
    log_info(NULL, "cluster: elected leader, epoch %lld", (long long)epoch);
    stop_following(c);
    c->repl_fd = bind_address(c->cfg->cluster.listen, err, sizeof err);
    if (c->repl_fd < 0) {
        fence(c, err);
        return;
    }
    coord_isr_read(c->coord, on_elected_isr, c);
}

static void on_elected_isr(void *arg, int status, const struct coord_isr *isr)
{
    struct cluster *c = arg;
    const char *members[MAX_MEMBERS + 1];
    size_t n = 0;

    if (c->role != CLUSTER_PROMOTING)
        return;
    if (status != COORD_OK) {
        fence(c, "elected, but the in-sync set cannot be read");
        return;
    }
    if (isr->epoch != 0) {
        bool in = false;
        for (size_t i = 0; i < isr->n_members; i++)
            in |= strcmp(isr->members[i], c->node_id) == 0;
        if (!in && !c->unclean) {
            fence(c, "elected, but not in the in-sync set");
            return;
        }
        if (!in) {
            char list[MAX_MEMBERS * 66] = "";
            for (size_t i = 0; i < isr->n_members; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", isr->members[i]);
            log_error(NULL,
                      "cluster: UNCLEAN FAILOVER: %s leads epoch %lld without being in the "
                      "in-sync set {%s} of epoch %lld: messages confirmed there that this node "
                      "did not have are LOST, and those nodes will drop them when they rejoin",
                      c->node_id, (long long)c->epoch, list, (long long)isr->epoch);
        }
    }
    /* The old ISR less the old leader stays eligible: its members catch up or are dropped
     * after ack_timeout (a second failure is then survived better than from {self}). After
     * an unclean failover the new leader starts alone: the old members hold a tail it does
     * not, and must not lead before they have dropped it and caught up. */
    members[n++] = c->node_id;
    for (size_t i = 0; i < isr->n_members && n < MAX_MEMBERS && !c->unclean; i++) {
        const char *m = isr->members[i];
        if (strcmp(m, c->node_id) != 0 && strcmp(m, c->leader_id) != 0)
            members[n++] = m;
    }
    c->isr_writing = true;
    struct isr_change *ch = &c->isr_change;
    ch->c = c;
    ch->add = true;
    snprintf(ch->id, sizeof ch->id, "%s", c->node_id);
    coord_isr_write(c->coord, c->epoch, members, n, on_isr_written, ch);

    /* Serve: the broker opens the store by crash recovery. */
    struct store *store = NULL;
    struct defs_log *defs = NULL;
    struct repl_leader_options o = {
        .node_id = c->node_id,
        .data_dir = c->cfg->data_dir,
        .secret = c->secret,
        .epoch = (uint64_t)c->epoch,
        .backlog_max = c->cfg->cluster.follower_backlog_max,
        .timeout_ms = c->cfg->cluster.ack_timeout_ms,
        .compress = strcmp(c->cfg->cluster.compression, "lz4") == 0,
        .sync_rate = (uint64_t)c->cfg->cluster.sync_rate_limit_mb << 20,
        .tls = c->repl_tls,
    };
    struct repl_leader_events ev = {.follower = leader_follower,
                                    .acked = leader_acked,
                                    .commit = leader_commit,
                                    .deposed = leader_deposed};
    char err[256];
    uint32_t seg;

    proxy_drop_all(c->proxy);
    cluster_close_http(c); /* the broker's HTTP server takes the port */
    if (c->hooks.promote(c->ctx, &store, &defs) != 0) {
        fence(c, "the broker could not start on the data directory");
        return;
    }
    c->store = store;
    if (store != NULL && store_roll_segment(store, 0, &seg) != 0) {
        fence(c, "cannot start this epoch's segment");
        return;
    }
    /* Every epoch starts a segment of its own: the followers' catch-up rests on it. */
    if (store != NULL && repl_begin_epoch(c->cfg->data_dir, (uint64_t)c->epoch, seg) != 0) {
        fence(c, "cannot record this epoch in cluster.epochs");
        return;
    }
    c->rl = repl_leader_new(c->loop, &o, &ev, c, err, sizeof err);
    if (c->rl == NULL) {
        fence(c, err);
        return;
    }
    repl_leader_listen_fd(c->rl, c->repl_fd);
    c->repl_fd = -1;
    repl_leader_attach(c->rl, store, defs);
    for (size_t i = 1; i < n; i++)
        member_find(c, members[i], true);
    c->isr_n = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(c->isr[c->isr_n++], sizeof c->isr[0], "%s", members[i]);
    push_isr_to_replication(c);
    c->role = CLUSTER_LEADER;
    log_info(NULL, "cluster: leading epoch %lld, replication on %s", (long long)c->epoch,
             c->cfg->cluster.listen);
    run_hook(c, c->cfg->cluster.on_leader_elected, "leader_elected");
}

/* ---- Coordinator events ------------------------------------------------------------------ */

static void on_secret(void *arg, int status, const char *hex)
{
    struct cluster *c = arg;
    size_t len = hex != NULL ? strlen(hex) : 0;
    uint8_t *raw;

    if (status != COORD_OK || len == 0 || len % 2 != 0) {
        fence(c, "cannot read the cluster secret from etcd");
        return;
    }
    raw = xmalloc(len / 2);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(raw);
            fence(c, "the cluster secret in etcd is not hex");
            return;
        }
        raw[i] = (uint8_t)v;
    }
    c->secret = (struct wire_bytes){.ptr = raw, .len = len / 2};
    c->role = CLUSTER_FOLLOWER;
    coord_observe(c->coord);
    coord_watch_isr(c->coord);
}

static void on_ready(void *ctx, int64_t lease_id)
{
    struct cluster *c = ctx;

    log_info(NULL, "cluster: registered as %s (lease %llx)", c->node_id,
             (unsigned long long)lease_id);
    coord_get_secret(c->coord, on_secret, c);
}

static void on_lease_lost(void *ctx, const char *reason)
{
    struct cluster *c = ctx;
    char why[256];

    snprintf(why, sizeof why, "etcd lease lost (%s)", reason);
    fence(c, why);
}

static void on_deposed(void *ctx, int64_t epoch)
{
    struct cluster *c = ctx;

    (void)epoch;
    fence(c, "deposed: the leader key was deleted");
}

/* "host:port" of key in a node's info JSON, or "". */
static void info_address(json_t *info, const char *key, char *out, size_t out_size)
{
    const char *v = json_string_value(json_object_get(info, key));

    snprintf(out, out_size, "%s", v != NULL ? v : "");
}

static void on_leader(void *ctx, const struct coord_leader *l)
{
    struct cluster *c = ctx;
    json_t *info;

    if (l == NULL) {
        if (c->leader_known || c->leaderless_since == 0)
            c->leaderless_since = now_ms();
        c->leader_known = false;
        c->leader_id[0] = '\0';
        proxy_set_leader(c->proxy, NULL);
        if (c->hooks.leader_changed != NULL)
            c->hooks.leader_changed(c->ctx, NULL, NULL);
        return;
    }
    info = json_loads(l->info != NULL ? l->info : "{}", 0, NULL);
    if (!c->leader_known || c->leader_epoch != l->epoch)
        c->leader_seen_ms = now_ms();
    c->leader_known = true;
    c->leaderless_since = 0;
    c->leader_epoch = l->epoch;
    c->leader_lease = l->lease_id;
    snprintf(c->leader_id, sizeof c->leader_id, "%s", l->node_id != NULL ? l->node_id : "");
    info_address(info, "repl", c->leader_repl, sizeof c->leader_repl);
    info_address(info, "amqp", c->leader_amqp, sizeof c->leader_amqp);
    info_address(info, "amqps", c->leader_amqps, sizeof c->leader_amqps);
    info_address(info, "http", c->leader_http, sizeof c->leader_http);
    json_decref(info);
    log_info(NULL, "cluster: leader is %s (epoch %lld)", c->leader_id, (long long)c->leader_epoch);
    if (strcmp(c->leader_id, c->node_id) == 0)
        return;
    if (c->role == CLUSTER_LEADER || c->role == CLUSTER_PROMOTING) {
        fence(c, "another node leads");
        return;
    }
    if (c->unclean) {
        /* Someone leads again: an unclean candidacy must not wait in line behind it. */
        c->unclean = false;
        log_info(NULL, "cluster: %s leads: the unclean candidacy is withdrawn", c->leader_id);
        maybe_campaign(c);
    }
    /* The proxy takes IP literals: a host name the leader advertises (its listeners on a
     * wildcard address) is resolved here, once per leader change. */
    numeric_address(c->leader_amqp, sizeof c->leader_amqp);
    numeric_address(c->leader_amqps, sizeof c->leader_amqps);
    numeric_address(c->leader_http, sizeof c->leader_http);
    numeric_address(c->leader_repl, sizeof c->leader_repl);
    {
        struct proxy_leader pl = {.amqp = c->leader_amqp[0] ? c->leader_amqp : NULL,
                                  .amqps = c->leader_amqps[0] ? c->leader_amqps : NULL,
                                  .http = c->leader_http[0] ? c->leader_http : NULL};
        if (strcmp(c->cfg->cluster.follower_listeners, "proxy") == 0)
            proxy_set_leader(c->proxy, &pl);
    }
    if (c->hooks.leader_changed != NULL)
        c->hooks.leader_changed(c->ctx, c->leader_amqp, c->leader_http);
    follow(c);
}

static void on_isr(void *ctx, const struct coord_isr *isr)
{
    struct cluster *c = ctx;

    if (c->role == CLUSTER_LEADER || c->role == CLUSTER_PROMOTING)
        return; /* the leader writes it */
    isr_set(c, isr);
    maybe_campaign(c);
}

/* ---- Loop ---------------------------------------------------------------------------------- */

static void on_heartbeat(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct cluster *c = w->data;
    uint64_t now = now_us();

    (void)loop;
    (void)revents;
    /* Alive means the loop turns AND the disk makes progress: a leader whose fsyncs hang
     * confirms nothing, and must lose its lease rather than keep it (LavinMQ #2151). */
    if (c->store != NULL && store_sync_stalled_ms(c->store) > c->cfg->cluster.stall_timeout_ms) {
        if (!c->disk_stalled)
            log_error(NULL, "cluster: an fsync has made no progress for %llu ms: the lease is "
                            "no longer renewed",
                      (unsigned long long)store_sync_stalled_ms(c->store));
        c->disk_stalled = true;
    } else if (c->coord != NULL) {
        c->disk_stalled = false;
        coord_heartbeat(c->coord);
    }
    /* The turn that ends here: from waking up to going back to sleep. */
    if (c->woke_us != 0 && now - c->woke_us > c->turn_max_us[0])
        c->turn_max_us[0] = now - c->woke_us;
    if (now / 1000 - c->turn_window_ms >= TURN_WINDOW_MS) {
        c->turn_max_us[1] = c->turn_max_us[0];
        c->turn_max_us[0] = 0;
        c->turn_window_ms = now / 1000;
    }
}

static void on_woke(struct ev_loop *loop, ev_check *w, int revents)
{
    struct cluster *c = w->data;

    (void)loop;
    (void)revents;
    c->woke_us = now_us();
}

/* Unclean failover. With cluster.unclean_failover, a follower outside the ISR stands for
 * election once nobody has led for two lease TTLs and no ISR member is registered (alive)
 * in etcd; with --force-leader, as soon as nobody leads. Either way it then leads alone and
 * says loudly what was lost (on_elected_isr). */
static void on_unclean_nodes(void *arg, int status, const struct coord_node *nodes, size_t n)
{
    struct cluster *c = arg;
    const char *alive = NULL;

    c->unclean_checking = false;
    if (status != COORD_OK || c->role != CLUSTER_FOLLOWER || c->leader_known || c->unclean)
        return;
    for (size_t i = 0; i < n && alive == NULL; i++)
        if (strcmp(nodes[i].id, c->node_id) != 0 && isr_has(c, nodes[i].id))
            alive = nodes[i].id;
    if (alive != NULL && !c->cfg->cluster.force_leader)
        return; /* an in-sync member is alive: it is the one to lead */
    c->unclean = true;
    log_error(NULL,
              "cluster: UNCLEAN FAILOVER: no leader for %llu ms and %s: %s stands for election "
              "outside the in-sync set (%s)",
              (unsigned long long)(now_ms() - c->leaderless_since),
              alive != NULL ? "an in-sync member is registered but does not lead"
                            : "no in-sync member is alive",
              c->node_id,
              c->cfg->cluster.force_leader ? "--force-leader" : "cluster.unclean_failover");
    maybe_campaign(c);
}

static void consider_unclean(struct cluster *c, uint64_t now)
{
    const struct config_cluster *k = &c->cfg->cluster;
    uint64_t wait = k->force_leader ? 0 : 2000ull * (k->lease_ttl_s ? k->lease_ttl_s : 3);

    if ((!k->unclean_failover && !k->force_leader) || c->unclean || c->unclean_checking ||
        c->leader_known || c->leaderless_since == 0 || now - c->leaderless_since < wait ||
        !c->isr_known || c->isr_epoch == 0 || isr_has(c, c->node_id) || c->secret.len == 0)
        return;
    c->unclean_checking = true;
    coord_list_nodes(c->coord, on_unclean_nodes, c);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct cluster *c = w->data;
    uint64_t now = now_ms(), deadline;

    (void)loop;
    (void)revents;
    if (c->coord == NULL)
        return;
    deadline = coord_lease_deadline(c->coord);
    if ((c->role == CLUSTER_LEADER || c->role == CLUSTER_PROMOTING) && deadline != 0 &&
        now >= deadline) {
        fence(c, "the lease deadline passed without a renewal");
        return;
    }
    if (c->role == CLUSTER_LEADER && c->transferring) {
        uint64_t head = repl_leader_position(c->rl);
        if (repl_leader_commit(c->rl) >= head || now >= c->transfer_until) {
            stop_acting(c, "leadership given up on request (planned switchover)", true);
            return;
        }
    }
    if (c->role == CLUSTER_LEADER && c->isr_n < c->cfg->cluster.min_insync_replicas) {
        if (c->short_since_ms == 0) {
            c->short_since_ms = now;
            log_warn(NULL, "cluster: %zu in sync, fewer than cluster.min_insync_replicas = %u: "
                           "confirms wait",
                     c->isr_n, c->cfg->cluster.min_insync_replicas);
        } else if (now - c->short_since_ms >= c->cfg->cluster.confirm_timeout_ms) {
            c->short_since_ms = now;
            log_warn(NULL, "cluster: the in-sync set stayed too small for %u ms: waiting "
                           "confirms are nacked",
                     c->cfg->cluster.confirm_timeout_ms);
            if (c->hooks.nack_waiting != NULL)
                c->hooks.nack_waiting(c->ctx);
        }
    } else if (c->role == CLUSTER_LEADER && c->short_since_ms != 0) {
        c->short_since_ms = 0;
        if (c->acked_seq > c->replicated_seq) {
            c->replicated_seq = c->acked_seq;
            c->hooks.replicated(c->ctx, c->replicated_seq);
        }
    }
    if (c->role == CLUSTER_LEADER) {
        /* A follower that went live while another change of the ISR was being written. */
        for (size_t i = 0; i < c->member_n && !c->isr_writing; i++) {
            const struct member *m = &c->members[i];
            if (m->down_since_ms != 0 || isr_has(c, m->id))
                continue;
            if (m->evicted && (m->acked < m->evicted_at_pos || now - m->acked_at_ms > 1000))
                continue;
            change_isr(c, m->id, true);
        }
        check_members(c, now);
        if (!c->peers_reading && (c->peers_read_ms == 0 || now - c->peers_read_ms >= PEERS_EVERY_MS)) {
            c->peers_reading = true;
            c->peers_read_ms = now;
            coord_list_nodes(c->coord, on_nodes, c);
        }
    }
    else if (c->role == CLUSTER_FOLLOWER) {
        follow(c);
        consider_unclean(c, now);
    }
}

struct cluster *cluster_start(struct ev_loop *loop, const struct config *cfg,
                              const struct cluster_hooks *hooks, void *ctx, char *err,
                              size_t err_size)
{
    const struct config_cluster *k = &cfg->cluster;
    struct cluster *c;
    struct coord_options o = {0};
    struct coord_callbacks cb = {.on_ready = on_ready,
                                 .on_lease_lost = on_lease_lost,
                                 .on_elected = on_elected,
                                 .on_deposed = on_deposed,
                                 .on_leader = on_leader,
                                 .on_isr = on_isr};
    json_t *info;
    char *text;

    if (strcmp(k->follower_listeners, "proxy") != 0 && strcmp(k->follower_listeners, "refuse")) {
        snprintf(err, err_size, "cluster.follower_listeners is '%s': proxy or refuse expected",
                 k->follower_listeners);
        return NULL;
    }
    if (strcmp(k->compression, "none") != 0 && strcmp(k->compression, "lz4") != 0) {
        snprintf(err, err_size, "cluster.compression is '%s': none or lz4 expected",
                 k->compression);
        return NULL;
    }
    if (cfg->data_dir[0] == '\0') {
        snprintf(err, err_size, "a cluster node needs a data_dir");
        return NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    c->hooks = *hooks;
    c->ctx = ctx;
    c->repl_fd = -1;
    c->http_fd = -1;
    if (k->node_id[0] != '\0') {
        snprintf(c->node_id, sizeof c->node_id, "%s", k->node_id);
    } else if (gethostname(c->node_id, sizeof c->node_id) != 0) {
        snprintf(err, err_size, "cluster.node_id is unset and the host name unknown");
        free(c);
        return NULL;
    }
    c->node_id[sizeof c->node_id - 1] = '\0';
    {
        char host[128];
        unsigned port;
        if (split_address(k->listen, host, sizeof host, &port) != 0) {
            snprintf(err, err_size, "cluster.listen is '%s': IP:port expected", k->listen);
            free(c);
            return NULL;
        }
        if (k->advertise[0] != '\0')
            snprintf(c->repl_addr, sizeof c->repl_addr, "%s", k->advertise);
        else
            advertised(host, port, c->repl_addr, sizeof c->repl_addr);
    }
    if (cfg->tcp_count > 0)
        advertised(cfg->tcp[0].host, cfg->tcp[0].port, c->amqp_addr, sizeof c->amqp_addr);
    if (cfg->ssl_count > 0)
        advertised(cfg->ssl[0].host, cfg->ssl[0].port, c->amqps_addr, sizeof c->amqps_addr);
    if (cfg->management_port != 0)
        advertised(cfg->management_ip, cfg->management_port, c->http_addr, sizeof c->http_addr);
    info = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", c->node_id, "repl", c->repl_addr, "amqp",
                     c->amqp_addr, "amqps", c->amqps_addr, "http", c->http_addr);
    text = json_dumps(info, JSON_COMPACT);
    snprintf(c->info, sizeof c->info, "%s", text);
    free(text);
    json_decref(info);

    if (k->tls_cert[0] != '\0' || k->tls_key[0] != '\0' || k->tls_ca[0] != '\0') {
        c->repl_tls = tls_mutual_new("cluster.tls", k->tls_cert, k->tls_key, k->tls_ca, err,
                                     err_size);
        if (c->repl_tls == NULL) {
            free(c);
            return NULL;
        }
    }
    c->proxy = proxy_new(loop, NULL);
    o.endpoints = k->etcd_endpoints;
    o.cluster_name = k->name;
    o.node_id = c->node_id;
    o.node_info = c->info;
    o.lease_ttl_s = k->lease_ttl_s;
    o.request_timeout_ms = k->etcd_request_timeout_ms;
    o.stall_timeout_ms = k->stall_timeout_ms;
    o.username = k->etcd_username[0] != '\0' ? k->etcd_username : NULL;
    o.password = k->etcd_username[0] != '\0' ? k->etcd_password : NULL;
    o.tls_ca = k->etcd_tls_ca[0] != '\0' ? k->etcd_tls_ca : NULL;
    o.tls_cert = k->etcd_tls_cert[0] != '\0' ? k->etcd_tls_cert : NULL;
    o.tls_key = k->etcd_tls_key[0] != '\0' ? k->etcd_tls_key : NULL;
    /* From the node's own address when cluster.listen names one: the node's traffic to
     * etcd is then told apart from the others' (firewalls, the partition tests). */
    {
        char host[128];
        unsigned port;
        if (split_address(k->listen, host, sizeof host, &port) == 0 && strcmp(host, "0.0.0.0") &&
            strcmp(host, "::") && host[0] != '\0') {
            snprintf(c->source_host, sizeof c->source_host, "%s", host);
            o.source_address = c->source_host;
        }
    }
    c->coord = coord_start(loop, &o, &cb, c, err, err_size);
    if (c->coord == NULL) {
        proxy_free(c->proxy);
        tls_server_free(c->repl_tls);
        free(c);
        return NULL;
    }
    ev_prepare_init(&c->heartbeat, on_heartbeat);
    c->heartbeat.data = c;
    ev_prepare_start(loop, &c->heartbeat);
    ev_check_init(&c->woke, on_woke);
    c->woke.data = c;
    ev_check_start(loop, &c->woke);
    ev_timer_init(&c->tick, on_tick, CHECK_EVERY_S, CHECK_EVERY_S);
    c->tick.data = c;
    ev_timer_start(loop, &c->tick);
    log_info(NULL, "cluster: node %s of cluster '%s', etcd at %s", c->node_id, k->name,
             k->etcd_endpoints);
    return c;
}

void cluster_stop(struct cluster *c)
{
    if (c == NULL)
        return;
    ev_prepare_stop(c->loop, &c->heartbeat);
    ev_check_stop(c->loop, &c->woke);
    ev_timer_stop(c->loop, &c->tick);
    /* A leader that stops on purpose gives its lease back: the next one is elected now. */
    coord_stop(c->coord, true);
    stop_following(c);
    repl_leader_detach(c->rl);
    repl_leader_free(c->rl);
    cluster_close_http(c);
    proxy_free(c->proxy);
    if (c->repl_fd >= 0)
        close(c->repl_fd);
    tls_server_free(c->repl_tls);
    free((void *)c->secret.ptr);
    free(c);
}

enum cluster_role cluster_role(const struct cluster *c)
{
    return c->role;
}

const char *cluster_node_id(const struct cluster *c)
{
    return c->node_id;
}

int64_t cluster_epoch(const struct cluster *c)
{
    return c->role == CLUSTER_LEADER ? c->epoch : c->leader_epoch;
}

/* ---- The management API on a follower ------------------------------------------------------ */

static char *http_answer(int status, const char *reason, json_t *body, size_t *len)
{
    char *text = json_dumps(body, JSON_COMPACT), *out;
    size_t n = strlen(text);

    out = xmalloc(n + 256);
    *len = (size_t)snprintf(out, n + 256,
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nCache-Control: no-cache\r\n"
                            "Connection: close\r\n\r\n%s",
                            status, reason, n, text);
    free(text);
    json_decref(body);
    return out;
}

/* What a follower answers itself: what describes this node, not the leader. */
static char *local_http(void *ctx, const char *method, const char *path, size_t *len)
{
    struct cluster *c = ctx;
    json_t *j;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return NULL;
    if (strcmp(path, "/api/health/checks/leader") == 0) {
        bool ok;
        j = cluster_leader_health_json(c, &ok);
        return ok ? http_answer(200, "OK", j, len)
                  : http_answer(503, "Service Unavailable", j, len);
    }
    if (strcmp(path, "/api/cluster/status") == 0)
        return http_answer(200, "OK", cluster_status_json(c), len);
    return NULL;
}

static void on_http_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct cluster *c = w->data;
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd;

    (void)loop;
    (void)revents;
    while ((fd = accept4(c->http_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        proxy_accept(c->proxy, fd, (struct sockaddr *)&peer, len, PROXY_HTTP);
        len = sizeof peer;
    }
}

int cluster_listen_http(struct cluster *c, const char *address, char *err, size_t err_size)
{
    if ((c->http_fd = bind_address(address, err, err_size)) < 0)
        return -1;
    proxy_set_local_http(c->proxy, local_http, c);
    ev_io_init(&c->http_watcher, on_http_accept, c->http_fd, EV_READ);
    c->http_watcher.data = c;
    ev_io_start(c->loop, &c->http_watcher);
    log_info(NULL, "cluster: management API on %s relayed to the leader", address);
    return 0;
}

void cluster_close_http(struct cluster *c)
{
    if (c == NULL || c->http_fd < 0)
        return;
    ev_io_stop(c->loop, &c->http_watcher);
    close(c->http_fd);
    c->http_fd = -1;
}

struct proxy *cluster_proxy(const struct cluster *c)
{
    return c->proxy;
}

uint64_t cluster_position(const struct cluster *c)
{
    return c != NULL && c->role == CLUSTER_LEADER ? repl_leader_position(c->rl) : 0;
}

uint64_t cluster_committed(const struct cluster *c)
{
    return c != NULL && c->role == CLUSTER_LEADER ? repl_leader_commit(c->rl) : UINT64_MAX;
}

uint64_t cluster_confirmable(const struct cluster *c, uint64_t durable_seq)
{
    if (c == NULL)
        return durable_seq;
    return durable_seq < c->replicated_seq ? durable_seq : c->replicated_seq;
}

int cluster_transfer_leadership(struct cluster *c, char *err, size_t err_size)
{
    struct repl_follower_info fi[MAX_MEMBERS];
    size_t n;
    bool successor = false;

    if (c == NULL || c->role != CLUSTER_LEADER) {
        snprintf(err, err_size, "this node is not the leader");
        return -1;
    }
    n = repl_leader_followers(c->rl, fi, MAX_MEMBERS);
    for (size_t i = 0; i < n && i < MAX_MEMBERS; i++)
        successor |= fi[i].live && fi[i].in_isr;
    if (!successor) {
        snprintf(err, err_size, "no in-sync follower is live to take over");
        return -1;
    }
    c->transferring = true;
    c->transfer_until = now_ms() + c->cfg->cluster.ack_timeout_ms;
    repl_leader_request_sync(c->rl);
    log_info(NULL, "cluster: planned switchover: leadership is given up once the followers "
                   "have everything");
    return 0;
}

json_t *cluster_leader_health_json(const struct cluster *c, bool *ok)
{
    char reason[200];

    *ok = c == NULL || c->role == CLUSTER_LEADER;
    if (*ok)
        return json_pack("{s:s}", "status", "ok");
    snprintf(reason, sizeof reason, "node %s is not the leader (it is %s)", c->node_id,
             cluster_role_name(c->role));
    return json_pack("{s:s, s:s}", "status", "failed", "reason", reason);
}

json_t *cluster_status_json(const struct cluster *c)
{
    json_t *o = json_object(), *isr = json_array(), *nodes = json_array();

    json_object_set_new(o, "enabled", json_true());
    json_object_set_new(o, "name", json_string(c->cfg->cluster.name));
    json_object_set_new(o, "node", json_string(c->node_id));
    json_object_set_new(o, "role", json_string(cluster_role_name(c->role)));
    json_object_set_new(o, "epoch", json_integer(cluster_epoch(c)));
    json_object_set_new(o, "leader", c->role == CLUSTER_LEADER ? json_string(c->node_id)
                                     : c->leader_known       ? json_string(c->leader_id)
                                                             : json_null());
    for (size_t i = 0; i < c->isr_n; i++)
        json_array_append_new(isr, json_string(c->isr[i]));
    json_object_set_new(o, "isr", isr);
    /* The longest loop turn of the last 10 to 20 s: what a catch-up or a stall costs the
     * leader's clients. */
    json_object_set_new(
        o, "loop_turn_max_ms",
        json_real((double)(c->turn_max_us[0] > c->turn_max_us[1] ? c->turn_max_us[0]
                                                                 : c->turn_max_us[1]) /
                  1000.0));
    if (c->role == CLUSTER_LEADER && c->rl != NULL) {
        struct repl_follower_info fi[MAX_MEMBERS];
        size_t n = repl_leader_followers(c->rl, fi, MAX_MEMBERS);
        uint64_t head = repl_leader_position(c->rl);
        if (n > MAX_MEMBERS)
            n = MAX_MEMBERS;
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(
                nodes, json_pack("{s:s, s:s, s:b, s:b, s:b, s:I, s:I}", "name", fi[i].node_id,
                                 "role", "follower", "connected", fi[i].connected, "live",
                                 fi[i].live, "in_sync", fi[i].in_isr, "acked",
                                 (json_int_t)fi[i].acked, "lag_bytes",
                                 (json_int_t)(head > fi[i].acked ? head - fi[i].acked : 0)));
        }
        struct repl_leader_stats rs;
        repl_leader_stats(c->rl, &rs);
        json_object_set_new(
            o, "replication",
            json_pack("{s:I, s:I, s:I, s:s, s:I, s:I}", "live_bytes", (json_int_t)rs.live_bytes,
                      "catchups", (json_int_t)rs.catchups, "catchup_bytes",
                      (json_int_t)rs.catchup_bytes, "compression", c->cfg->cluster.compression,
                      "compressed_bytes_in", (json_int_t)rs.packed_in, "compressed_bytes_out",
                      (json_int_t)rs.packed_out));
        json_object_set_new(o, "position", json_integer((json_int_t)head));
        json_object_set_new(o, "commit", json_integer((json_int_t)repl_leader_commit(c->rl)));
    }
    json_object_set_new(o, "followers", nodes);
    return o;
}
