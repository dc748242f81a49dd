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
#include "src/broker/server.h"
#include "src/mgmt/mgmt.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: warrend [-c FILE] [--port N] [--data-dir DIR]\n"
                 "  -c, --config FILE  configuration file (rabbitmq.conf style key = value)\n"
                 "  -p, --port N       listen on port N instead of the configured ports\n"
                 "                     (0: any free port; the ready line says which)\n"
                 "  -d, --data-dir DIR durable definitions and messages (default: data_dir of\n"
                 "                     the configuration, /var/lib/warren)\n"
                 "  -h, --help         this text\n"
                 "  -V, --version      print the version\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static struct config cfg;
    static struct server srv;
    struct mgmt *mgmt = NULL;
    const char *config_path = NULL, *data_dir = NULL;
    int port = -1, opt;
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
