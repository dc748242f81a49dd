/* The configuration: RabbitMQ's `key = value` lines (rabbitmq.conf style). One table in
 * config.c declares every key once (name, type, bounds, default, field) and drives parsing,
 * defaults, range checks and etc/warren.conf. */
#ifndef WARREN_SRC_BASE_CONFIG_H
#define WARREN_SRC_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTENERS      8
#define CONFIG_MAX_LOOPBACK_USERS 16
#define CONFIG_MAX_TLS_VERSIONS   8
#define CONFIG_MAX_TLS_CIPHERS    64
#define CONFIG_MAX_AUTH_MECHANISMS 8

/* host "" means every interface, IPv4 (0.0.0.0) and IPv6 (::) alike. */
struct config_listener {
    char host[64];
    uint16_t port;
};

/* ssl_options.versions.<n> values. */
enum config_tls_version {
    CONFIG_TLS_V1 = 1, /* tlsv1: accepted, but insecure */
    CONFIG_TLS_V1_1,   /* tlsv1.1: accepted, but insecure */
    CONFIG_TLS_V1_2,   /* tlsv1.2 */
    CONFIG_TLS_V1_3,   /* tlsv1.3 */
};

/* ssl_cert_login_from: what SASL EXTERNAL takes as the user name. */
/* SASL mechanisms (auth_mechanisms.<n>), in the order they are offered. */
enum config_auth_mechanism {
    CONFIG_AUTH_PLAIN = 1,
    CONFIG_AUTH_AMQPLAIN,
    CONFIG_AUTH_EXTERNAL,       /* offered only on TLS with a verified client certificate */
    CONFIG_AUTH_RABBIT_CR_DEMO, /* RabbitMQ's challenge-response demonstration mechanism */
};

enum config_cert_login {
    CONFIG_CERT_LOGIN_DN, /* distinguished_name: the subject, RFC 4514 style */
    CONFIG_CERT_LOGIN_CN, /* common_name: the subject's CN */
};

struct config {
    struct config_listener tcp[CONFIG_MAX_LISTENERS]; /* listeners.tcp.<name> */
    size_t tcp_count;                                 /* default: one, "" port 5672 */
    char default_user[128];                           /* "guest" */
    char default_pass[128];                           /* "guest" */
    char default_vhost[128];                          /* "/" */
    /* Users that may connect only from loopback (loopback_users.<name> = true|false, or
     * loopback_users = none). Default: guest. */
    char loopback_users[CONFIG_MAX_LOOPBACK_USERS][128];
    size_t loopback_user_count;
    uint32_t heartbeat_s;          /* heartbeat: 60 (0 disables) */
    uint32_t frame_max;            /* frame_max: 131072 (4096 .. 2^31-1; 0 = no limit is refused) */
    uint32_t channel_max;          /* channel_max: 2047 (0, kept as 0, means 65535) */
    uint64_t max_message_size;     /* max_message_size: 134217728 (up to 536870912) */
    uint32_t handshake_timeout_ms; /* handshake_timeout: 10000 */
    uint32_t consumer_timeout_ms;  /* consumer_timeout: 1800000 (30 minutes, as RabbitMQ); 0 off */
    uint32_t delivery_limit;   /* delivery_limit: 0 = queues without x-delivery-limit have none */
    char data_dir[512];        /* data_dir: /var/lib/warren (--data-dir overrides) */
    uint32_t sync_interval_ms; /* persistence.sync_interval: 0 */
    uint32_t queue_memory_window;       /* queue_memory_window: 2048 messages */
    uint64_t queue_memory_limit;        /* queue_memory_limit: 0, half the high watermark */
    uint32_t connection_max;            /* connection_max: 0 = no limit */
    uint32_t consumer_max_per_channel;  /* consumer_max_per_channel: 0 = no limit */
    uint32_t memory_watermark_relative; /* vm_memory_high_watermark.relative, in thousandths */
    uint64_t memory_watermark_absolute; /* vm_memory_high_watermark.absolute: 0 = unset */
    uint64_t disk_free_limit;           /* disk_free_limit.absolute: 50 MB */
    int log_level;                      /* log.level: info (enum log_level) */
    char log_file[512];                 /* log.file: "" = none */
    bool log_console;                   /* log.console: true (lines also go to stderr) */

    /* TLS (AMQPS), with RabbitMQ's key names. A TLS listener needs certfile and keyfile
     * (config_parse checks), and verify_peer needs cacertfile. */
    struct config_listener ssl[CONFIG_MAX_LISTENERS]; /* listeners.ssl.<name>: none */
    size_t ssl_count;
    char ssl_certfile[512];        /* ssl_options.certfile: PEM, server certificate then chain */
    char ssl_keyfile[512];         /* ssl_options.keyfile: PEM private key */
    char ssl_cacertfile[512];      /* ssl_options.cacertfile: PEM CAs that client certificates
                                      must chain to; "" none */
    char ssl_password[256];        /* ssl_options.password: of an encrypted keyfile; "" none */
    bool ssl_verify_peer;          /* ssl_options.verify: verify_none (false) */
    bool ssl_fail_if_no_peer_cert; /* ssl_options.fail_if_no_peer_cert: false */
    /* ssl_options.versions.<n> (enum config_tls_version): tlsv1.3 and tlsv1.2 */
    uint8_t ssl_versions[CONFIG_MAX_TLS_VERSIONS];
    size_t ssl_version_count;
    /* ssl_options.ciphers.<n>: OpenSSL names, TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers
     * alike; none = OpenSSL's defaults. */
    char ssl_ciphers[CONFIG_MAX_TLS_CIPHERS][64];
    size_t ssl_cipher_count;
    bool ssl_honor_cipher_order;       /* ssl_options.honor_cipher_order: false */
    int ssl_cert_login_from;           /* enum config_cert_login: distinguished_name */
    uint32_t ssl_handshake_timeout_ms; /* ssl_handshake_timeout: 5000 */
    /* auth_mechanisms.<n> (enum config_auth_mechanism): PLAIN and AMQPLAIN, as RabbitMQ */
    uint8_t auth_mechanisms[CONFIG_MAX_AUTH_MECHANISMS];
    size_t auth_mechanism_count;

    /* The management API and the Prometheus endpoint (src/mgmt/mgmt.h), with RabbitMQ's key
     * names. Port 0 disables a listener; "::" listens on every IPv6 and IPv4 interface. */
    uint32_t management_port;   /* management.tcp.port: 15672 */
    char management_ip[64];     /* management.tcp.ip: "::" */
    uint32_t prometheus_port;   /* prometheus.tcp.port: 15692 */
    char prometheus_ip[64];     /* prometheus.tcp.ip: "::" */
    bool prometheus_per_object; /* prometheus.return_per_object_metrics: true */
    char load_definitions[512]; /* load_definitions: "" = none; imported at every start */
    /* management.tcp.request_timeout and prometheus.tcp.request_timeout: 5000, the
     * milliseconds a client has to send a request head (src/mgmt/http_limits.h). */
    uint32_t management_request_timeout_ms;
    uint32_t prometheus_request_timeout_ms;

    /* A cluster of warrend nodes coordinated by etcd (src/cluster/cluster.h); off by default:
     * one node needs no etcd. */
    struct config_cluster {
        bool enabled;                    /* cluster.enabled: false */
        char name[64];                   /* cluster.name: warren (etcd prefix /warren/NAME/) */
        char node_id[64];                /* cluster.node_id: "" = the host name */
        char etcd_endpoints[1024];       /* cluster.etcd.endpoints: http://127.0.0.1:2379 */
        char etcd_username[128];         /* cluster.etcd.username: "" = no etcd auth */
        char etcd_password[256];         /* cluster.etcd.password */
        char etcd_tls_ca[512];           /* cluster.etcd.tls.ca: "" = system CAs */
        char etcd_tls_cert[512];         /* cluster.etcd.tls.cert: "" = none */
        char etcd_tls_key[512];          /* cluster.etcd.tls.key */
        uint32_t etcd_request_timeout_ms; /* cluster.etcd.request_timeout: 500 */
        uint32_t lease_ttl_s;            /* cluster.lease_ttl: 3 */
        char listen[128];                /* cluster.listen: 0.0.0.0:5679 (replication) */
        char advertise[128];             /* cluster.advertise: "" = listen, or host name:port */
        char tls_cert[512];              /* cluster.tls.cert: "" = plain TCP between nodes */
        char tls_key[512];               /* cluster.tls.key */
        char tls_ca[512];                /* cluster.tls.ca */
        uint32_t sync_rate_limit_mb;     /* cluster.sync_rate_limit: MB (2^20 bytes)/s, 0 = none */
        uint32_t ack_timeout_ms;         /* cluster.ack_timeout: 3000 */
        uint64_t follower_backlog_max;   /* cluster.follower_backlog_max: 64 MiB */
        uint32_t min_insync_replicas;    /* cluster.min_insync_replicas: 1 */
        uint32_t confirm_timeout_ms;     /* cluster.confirm_timeout: 30000 */
        uint32_t stall_timeout_ms;       /* cluster.stall_timeout: 5000 */
        bool crash_fastpath;             /* cluster.crash_fastpath: true */
        bool unclean_failover;           /* cluster.unclean_failover: false */
        char compression[8];             /* cluster.compression: none | lz4 */
        bool force_leader;               /* warrend --force-leader (not a key): stand once
                                          * for election outside the in-sync set */
        char follower_listeners[16];     /* cluster.follower_listeners: proxy | refuse */
        char on_leader_elected[512];     /* cluster.on_leader_elected: "" = none */
        char on_leader_lost[512];        /* cluster.on_leader_lost: "" = none */
    } cluster;
    /* management.ui_dir: the web UI's files; "" = where they were installed (src/mgmt/ui.h) */
    char management_ui_dir[512];
    /* cluster.proxy_peers: IP addresses, comma-separated, whose connections may start with a
     * PROXY protocol v1 header (src/broker/server.h); "" none. Read with
     * config_ip_list_next(). */
    char proxy_peers[1024];
};

/* Fills c with every default. */
void config_defaults(struct config *c);

/* Parses text (the contents of a file called name, for messages) into c, on top of what c
 * holds. Returns 0, or -1 with "name:line: reason" in err: an unknown key, a value of the
 * wrong type or out of its bounds, a line that is not `key = value`, a TLS listener without
 * the files it needs. */
int config_parse(struct config *c, const char *name, const char *text, char *err, size_t err_size);

/* Reads and parses the file at path (same errors, plus one for a file that cannot be read). */
int config_load(struct config *c, const char *path, char *err, size_t err_size);

/* The next address of a comma-separated list (cluster.proxy_peers) from *at (0 to start),
 * spaces around it trimmed, into out. Returns 1, 0 at the end of the list, -1 for an empty
 * entry or one longer than out. */
int config_ip_list_next(const char *list, size_t *at, char *out, size_t out_size);

/* True if user may connect only from loopback addresses. */
bool config_is_loopback_user(const struct config *c, const char *user);

/* Writes every key with its default value and a comment, in rabbitmq.conf style: the text of
 * etc/warren.conf. */
void config_write_example(FILE *out);

#endif
