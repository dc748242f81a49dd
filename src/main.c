/* warrend: the Warren broker. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "src/base/config.h"
#include "src/base/log.h"
#include "src/broker/channel.h"
#include "src/broker/persist.h"
#include "src/broker/server.h"
#include "src/cluster/cluster.h"
#include "src/mgmt/mgmt.h"
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: warrend [-c FILE] [--port N] [--data-dir DIR] [--force-leader]\n"
                 "  -c, --config FILE  configuration file (rabbitmq.conf style key = value)\n"
                 "  -p, --port N       listen on port N instead of the configured ports\n"
                 "                     (0: any free port; the ready line says which)\n"
                 "  -d, --data-dir DIR durable definitions and messages (default: data_dir of\n"
                 "                     the configuration, /var/lib/warren)\n"
                 "      --force-leader cluster mode: when no leader exists, stand for election\n"
                 "                     even outside the in-sync set, at once (an unclean\n"
                 "                     failover: confirmed messages this node lacks are lost)\n"
                 "  -h, --help         this text\n"
                 "  -V, --version      print the version\n");
}

/* ---- Cluster mode ------------------------------------------------------------------------
 *
 * A cluster node runs, while it follows, a broker that keeps nothing (no data directory: the
 * replication writes there) and relays or refuses its clients; elected, it replaces that
 * broker by the real one, opened on the data directory by the ordinary crash recovery. The
 * cluster code (src/cluster/cluster.h) decides when; these hooks do it. */

static struct {
    struct ev_loop *loop;
    const struct config *cfg;
    struct config follower_cfg;
    struct server *srv;
    struct mgmt **mgmt;
    struct cluster *cluster;
    int port;
} node;

static void node_clients(const char *amqp, const char *http)
{
    char amqp_url[300], http_url[300];

    if (strcmp(node.cfg->cluster.follower_listeners, "refuse") != 0) {
        server_proxy_clients(node.srv, cluster_proxy(node.cluster));
        return;
    }
    snprintf(amqp_url, sizeof amqp_url, "amqp://%s", amqp != NULL ? amqp : "");
    snprintf(http_url, sizeof http_url, "http://%s", http != NULL ? http : "");
    server_refuse_clients(node.srv, amqp != NULL ? amqp_url : NULL,
                          http != NULL ? http_url : NULL);
}

static void node_leader_changed(void *ctx, const char *amqp, const char *http)
{
    (void)ctx;
    if (cluster_role(node.cluster) != CLUSTER_LEADER)
        node_clients(amqp, http);
}

static int node_promote(void *ctx, struct store **store, struct defs_log **defs)
{
    /* A SIGTERM the follower's broker took (its election may win a moment later) must not
     * be forgotten with it: the leader's broker then shuts down at once, and the node stops
     * as a leader stops, giving its lease back. Without this, it led on and never exited. */
    bool stopping = node.srv->stopping;

    (void)ctx;
    mgmt_stop(*node.mgmt);
    *node.mgmt = NULL;
    server_free(node.srv);
    if (server_init(node.srv, node.loop, node.cfg, node.port) != 0)
        return -1;
    server_set_cluster(node.srv, node.cluster);
    if (mgmt_start(node.srv, node.mgmt) != 0)
        return -1;
    if (stopping) {
        log_info(NULL, "cluster: elected while shutting down: the shutdown goes on");
        server_shutdown(node.srv);
    }
    *store = node.srv->persist != NULL ? node.srv->persist->store : NULL;
    *defs = node.srv->persist != NULL ? node.srv->persist->defs : NULL;
    return 0;
}

static void node_proxy_peers(void *ctx, const char *const *ips, size_t n)
{
    (void)ctx;
    server_set_proxy_peers(node.srv, ips, n);
}

static void node_nack_waiting(void *ctx)
{
    (void)ctx;
    channel_confirms_failed(node.srv);
}

static void node_replicated(void *ctx, uint64_t seq)
{
    (void)ctx;
    server_replicated(node.srv, seq);
}

static void node_fence(void *ctx, const char *why)
{
    (void)ctx;
    /* Nothing more may be confirmed or delivered: no orderly shutdown, which would flush
     * replies. What is on disk is the store's, recovered at the next start. */
    log_error(NULL, "exiting (status 3) for the supervisor to start this node again: %s", why);
    log_close_file();
    _exit(3);
}

/* Runs until SIGTERM/SIGINT; the exit status of warrend. */
static int run_cluster_node(struct ev_loop *loop, const struct config *cfg, struct server *srv,
                            struct mgmt **mgmt, int port)
{
    static const struct cluster_hooks hooks = {.promote = node_promote,
                                               .replicated = node_replicated,
                                               .fence = node_fence,
                                               .leader_changed = node_leader_changed,
                                               .proxy_peers = node_proxy_peers,
                                               .nack_waiting = node_nack_waiting};
    char err[512];

    node.loop = loop;
    node.cfg = cfg;
    node.srv = srv;
    node.mgmt = mgmt;
    node.port = port;
    node.follower_cfg = *cfg;
    node.follower_cfg.data_dir[0] = '\0';
    node.follower_cfg.load_definitions[0] = '\0';
    if (server_init(srv, loop, &node.follower_cfg, port) != 0)
        return 1;
    node.cluster = cluster_start(loop, cfg, &hooks, NULL, err, sizeof err);
    if (node.cluster == NULL) {
        log_error(NULL, "cluster: %s", err);
        return 1;
    }
    server_set_cluster(srv, node.cluster);
    node_clients(NULL, NULL);
    /* A relaying follower relays its management API as well; a refusing one answers it
     * with 503 not_leader (src/mgmt/mgmt.c). */
    if (strcmp(cfg->cluster.follower_listeners, "refuse") != 0 && cfg->management_port != 0) {
        char address[128];
        snprintf(address, sizeof address, strchr(cfg->management_ip, ':') ? "[%s]:%u" : "%s:%u",
                 cfg->management_ip, (unsigned)cfg->management_port);
        if (cluster_listen_http(node.cluster, address, err, sizeof err) != 0) {
            log_error(NULL, "management API: %s", err);
            return 1;
        }
    } else if (mgmt_start(srv, mgmt) != 0) {
        return 1;
    }
    server_run(srv);
    cluster_stop(node.cluster);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"force-leader", no_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    static struct config cfg;
    static struct server srv;
    struct mgmt *mgmt = NULL;
    const char *config_path = NULL, *data_dir = NULL;
    int port = -1, opt;
    bool force_leader = false;
    char err[512];

    while ((opt = getopt_long(argc, argv, "c:p:d:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'p': {
            char *end;
            long v;
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 0 || v > 65535) {
                fprintf(stderr, "warrend: --port wants a number from 0 to 65535, not '%s'\n",
                        optarg);
                return 2;
            }
            port = (int)v;
            break;
        }
        case 'd':
            data_dir = optarg;
            break;
        case 'F':
            force_leader = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("warrend %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warrend: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    config_defaults(&cfg);
    if (config_path != NULL && config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "warrend: %s\n", err);
        return 1;
    }
    if (data_dir != NULL) {
        if (strlen(data_dir) >= sizeof cfg.data_dir) {
            fprintf(stderr, "warrend: --data-dir is too long\n");
            return 2;
        }
        snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data_dir);
    }
    if (force_leader && !cfg.cluster.enabled) {
        fprintf(stderr, "warrend: --force-leader is for cluster mode (cluster.enabled = true)\n");
        return 2;
    }
    cfg.cluster.force_leader = force_leader;
    log_set_level((enum log_level)cfg.log_level);
    log_set_console(cfg.log_console);
    if (cfg.log_file[0] != '\0' && log_open_file(cfg.log_file) != 0) {
        fprintf(stderr, "warrend: cannot open log file %s: %s\n", cfg.log_file, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (loop == NULL) {
        fprintf(stderr, "warrend: cannot initialise libev\n");
        return 1;
    }
    if (cfg.cluster.enabled) {
        int status = run_cluster_node(loop, &cfg, &srv, &mgmt, port);
        mgmt_stop(mgmt);
        server_free(&srv);
        log_info(NULL, status == 0 ? "stopped" : "could not start");
        ev_loop_destroy(loop);
        log_close_file();
        return status;
    }
    if (server_init(&srv, loop, &cfg, port) != 0) {
        server_free(&srv);
        return 1;
    }
    if (mgmt_start(&srv, &mgmt) != 0) {
        mgmt_stop(mgmt);
        server_free(&srv);
        return 1;
    }
    server_run(&srv);
    mgmt_stop(mgmt);
    server_free(&srv);
    log_info(NULL, "stopped");
    ev_loop_destroy(loop);
    log_close_file();
    return 0;
}
