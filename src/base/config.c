/* The configuration file: rabbitmq.conf's `key = value` lines, read the way RabbitMQ's parser
 * (cuttlefish) reads them. One table, options[], declares every key once and drives parsing,
 * defaults, range checks and the example file etc/warren.conf. */
#include "src/base/config.h"

#include "src/base/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A configuration file is a few kilobytes; the bound keeps a wrong path (a log, a device)
 * from being read into memory whole. */
#define CONFIG_FILE_MAX_BYTES (1024 * 1024)

enum option_type {
    OPT_UINT,          /* a decimal integer within [min, max] */
    OPT_BYTES,         /* the same, optionally followed by KB, MB or GB (powers of 1024) */
    OPT_BOOL,          /* true | false */
    OPT_STRING,        /* non-empty text shorter than its field */
    OPT_PATH,          /* a path, or false for none (stored as "") */
    OPT_LOG_LEVEL,     /* debug | info | warning | error | none */
    OPT_LISTENER,      /* listeners.tcp|ssl.<name> = [host:]port; listeners.tcp|ssl = none */
    OPT_LOOPBACK_USER, /* loopback_users.<user> = true|false; loopback_users = none */
    OPT_TLS_VERIFY,    /* verify_none | verify_peer */
    OPT_TLS_VERSION,   /* ssl_options.versions.<n> = tlsv1.3 | tlsv1.2 | tlsv1.1 | tlsv1 */
    OPT_TLS_CIPHER,    /* ssl_options.ciphers.<n> = one OpenSSL cipher or TLS 1.3 suite name */
    OPT_AUTH_MECH,     /* auth_mechanisms.<n> = PLAIN | AMQPLAIN | EXTERNAL | RABBIT-CR-DEMO */
    OPT_CERT_LOGIN,    /* distinguished_name | common_name */
    OPT_IP,            /* an IPv4 or IPv6 address */
    OPT_FRACTION,      /* a decimal fraction such as 0.4, kept in thousandths within [min, max] */
    OPT_IP_LIST,       /* IPv4 or IPv6 addresses separated by commas */
};

struct option {
    const char *key;
    enum option_type type;
    size_t offset; /* of the field in struct config */
    size_t size;   /* of that field: integer width or string buffer */
    uint64_t min, max;
    /* For keys that take a name (key.<name>), the name of the default entry. */
    const char *default_name;
    /* As written in the file; config_defaults() parses it. NULL: unset by default, and the
     * example file shows the key commented out. */
    const char *default_value;
    /* One line for etc/warren.conf; NULL on a second row of the same key (a list with two
     * default entries), whose line follows the first. */
    const char *comment;
};

#define FIELD(member) offsetof(struct config, member), sizeof(((struct config *)0)->member)

static const struct option options[] = {
    {"listeners.tcp", OPT_LISTENER, FIELD(tcp), 0, 65535, "default", "5672",
     "AMQP listeners (at most 8): port (all IPv4 and IPv6 interfaces), IP:port, [IPv6]:port, "
     "or listeners.tcp = none"},
    {"default_user", OPT_STRING, FIELD(default_user), 0, 0, NULL, "guest",
     "user created on first start"},
    {"default_pass", OPT_STRING, FIELD(default_pass), 0, 0, NULL, "guest",
     "password of default_user"},
    {"default_vhost", OPT_STRING, FIELD(default_vhost), 0, 0, NULL, "/",
     "virtual host created on first start"},
    {"loopback_users", OPT_LOOPBACK_USER, FIELD(loopback_users), 0, 0, "guest", "true",
     "users allowed to connect only from localhost; 'loopback_users = none' lifts the rule"},
    {"heartbeat", OPT_UINT, FIELD(heartbeat_s), 0, 65535, NULL, "60",
     "heartbeat interval in seconds proposed in connection.tune; 0 disables heartbeats"},
    /* RabbitMQ takes frame_max = 0 as "no limit"; Warren refuses it so that every read
     * buffer has a bound. The top is the largest frame size the spec's long can announce
     * without reaching the sign bit that some clients treat as negative. */
    {"frame_max", OPT_BYTES, FIELD(frame_max), 4096, 2147483647, NULL, "131072",
     "largest frame in bytes proposed in connection.tune (4096 .. 2147483647)"},
    {"channel_max", OPT_UINT, FIELD(channel_max), 0, 65535, NULL, "2047",
     "most channels per connection proposed in connection.tune; 0 means 65535"},
    {"max_message_size", OPT_BYTES, FIELD(max_message_size), 1, 536870912, NULL, "134217728",
     "largest message body in bytes accepted from a publisher (at most 536870912, 512 MB)"},
    /* An hour is far beyond any real handshake; the bound catches a value meant in seconds
     * or with extra zeros. */
    {"handshake_timeout", OPT_UINT, FIELD(handshake_timeout_ms), 1, 3600000, NULL, "10000",
     "milliseconds a client has from connecting to connection.open"},
    {"consumer_timeout", OPT_UINT, FIELD(consumer_timeout_ms), 0, 4294967295u, NULL, "1800000",
     "milliseconds a delivery may stay unacked before its channel is closed with 406; 0 off"},
    {"delivery_limit", OPT_UINT, FIELD(delivery_limit), 0, 4294967295u, NULL, "0",
     "default x-delivery-limit of queues that set none; 0 leaves them without a limit"},
    {"data_dir", OPT_PATH, FIELD(data_dir), 0, 0, NULL, "/var/lib/warren",
     "directory of durable definitions, persistent messages and paged-out backlogs"},
    {"persistence.sync_interval", OPT_UINT, FIELD(sync_interval_ms), 0, 10000, NULL, "0",
     "least milliseconds between two fsyncs of persistent messages; 0 syncs at once"},
    {"queue_memory_window", OPT_UINT, FIELD(queue_memory_window), 16, 100000000, NULL, "2048",
     "messages a queue keeps in memory near its head; the rest of a backlog waits on disk"},
    {"queue_memory_limit", OPT_BYTES, FIELD(queue_memory_limit), 0, UINT64_MAX / 2, NULL, "0",
     "bytes all queues together keep in memory (bodies plus about 384 B a message) before each "
     "keeps only 64 near its head and pages the rest to disk; 0 for half the memory high "
     "watermark"},
    {"connection_max", OPT_UINT, FIELD(connection_max), 0, 4294967295u, NULL, "0",
     "most client connections the broker accepts at once; 0 for no limit (RabbitMQ: infinity)"},
    {"consumer_max_per_channel", OPT_UINT, FIELD(consumer_max_per_channel), 0, 4294967295u, NULL,
     "0", "most consumers on one channel; 0 for no limit"},
    {"vm_memory_high_watermark.relative", OPT_FRACTION, FIELD(memory_watermark_relative), 1, 10000,
     NULL, "0.4",
     "publishers are blocked while the broker uses more than this share of the machine's memory"},
    {"vm_memory_high_watermark.absolute", OPT_BYTES, FIELD(memory_watermark_absolute), 0,
     UINT64_MAX / 2, NULL, "0",
     "the same as a number of bytes (KB, MB, GB allowed); 0 leaves the relative one in force"},
    {"disk_free_limit.absolute", OPT_BYTES, FIELD(disk_free_limit), 0, UINT64_MAX / 2, NULL, "50MB",
     "publishers are blocked while the data directory's disk has less free space"},
    {"log.level", OPT_LOG_LEVEL, FIELD(log_level), 0, 0, NULL, "info",
     "least severe level logged: debug, info, warning, error or none"},
    {"log.file", OPT_PATH, FIELD(log_file), 0, 0, NULL, "false",
     "file the log is appended to, or false for none"},
    {"log.console", OPT_BOOL, FIELD(log_console), 0, 0, NULL, "true",
     "whether log lines also go to standard error"},
    /* Unset rather than `= none`, which would win over a listener added below it. */
    {"listeners.ssl", OPT_LISTENER, FIELD(ssl), 0, 65535, "default", NULL,
     "AMQPS (TLS) listeners, none by default, written as listeners.tcp (5671 is the usual "
     "port); they need ssl_options.certfile and ssl_options.keyfile"},
    {"ssl_options.certfile", OPT_PATH, FIELD(ssl_certfile), 0, 0, NULL, "false",
     "PEM file with the server certificate, then any intermediate certificates"},
    {"ssl_options.keyfile", OPT_PATH, FIELD(ssl_keyfile), 0, 0, NULL, "false",
     "PEM file with the private key of ssl_options.certfile"},
    {"ssl_options.password", OPT_STRING, FIELD(ssl_password), 0, 0, NULL, NULL,
     "password of an encrypted ssl_options.keyfile; unset for a key that is not encrypted"},
    {"ssl_options.cacertfile", OPT_PATH, FIELD(ssl_cacertfile), 0, 0, NULL, "false",
     "PEM file with the certificate authorities that client certificates must chain to"},
    {"ssl_options.verify", OPT_TLS_VERIFY, FIELD(ssl_verify_peer), 0, 0, NULL, "verify_none",
     "verify_peer asks clients for a certificate and checks it against ssl_options.cacertfile"},
    {"ssl_options.fail_if_no_peer_cert", OPT_BOOL, FIELD(ssl_fail_if_no_peer_cert), 0, 0, NULL,
     "false", "with verify_peer: true refuses clients that send no certificate"},
    /* Two rows give the two entries of the default list. */
    {"ssl_options.versions", OPT_TLS_VERSION, FIELD(ssl_versions), 0, 0, "1", "tlsv1.3",
     "TLS versions accepted, one per line: tlsv1.3, tlsv1.2 (tlsv1.1 and tlsv1 are insecure)"},
    {"ssl_options.versions", OPT_TLS_VERSION, FIELD(ssl_versions), 0, 0, "2", "tlsv1.2", NULL},
    {"ssl_options.ciphers", OPT_TLS_CIPHER, FIELD(ssl_ciphers), 0, 0, "1", NULL,
     "cipher suites, one per line, OpenSSL names (ECDHE-RSA-AES256-GCM-SHA384, "
     "TLS_AES_256_GCM_SHA384); unset: OpenSSL's defaults"},
    {"ssl_options.honor_cipher_order", OPT_BOOL, FIELD(ssl_honor_cipher_order), 0, 0, NULL, "false",
     "true picks the server's most preferred cipher, false the client's"},
    {"ssl_cert_login_from", OPT_CERT_LOGIN, FIELD(ssl_cert_login_from), 0, 0, NULL,
     "distinguished_name",
     "user name SASL EXTERNAL takes from the client certificate: distinguished_name or "
     "common_name"},
    /* Two rows give the two entries of the default list, RabbitMQ's. */
    {"auth_mechanisms", OPT_AUTH_MECH, FIELD(auth_mechanisms), 0, 0, "1", "PLAIN",
     "SASL mechanisms offered, in order, one per line: PLAIN, AMQPLAIN, EXTERNAL (TLS with a "
     "verified client certificate), RABBIT-CR-DEMO"},
    {"auth_mechanisms", OPT_AUTH_MECH, FIELD(auth_mechanisms), 0, 0, "2", "AMQPLAIN", NULL},
    /* As handshake_timeout: an hour catches a value meant in seconds. */
    {"ssl_handshake_timeout", OPT_UINT, FIELD(ssl_handshake_timeout_ms), 1, 3600000, NULL, "5000",
     "milliseconds a client has to complete the TLS handshake"},
    /* RabbitMQ turns these listeners off by disabling their plugins; Warren has no plugins,
     * so port 0 does it. */
    {"management.tcp.port", OPT_UINT, FIELD(management_port), 0, 65535, NULL, "15672",
     "port of the management HTTP API; 0 disables it"},
    {"management.tcp.ip", OPT_IP, FIELD(management_ip), 0, 0, NULL,
     "::", "address the management API listens on; :: means every IPv6 and IPv4 interface"},
    /* As RabbitMQ's key (cowboy's request_timeout, 5 s by default); the bound is that of
     * handshake_timeout. */
    {"management.tcp.request_timeout", OPT_UINT, FIELD(management_request_timeout_ms), 1, 3600000,
     NULL, "5000",
     "milliseconds an HTTP client has to send a whole request head (from connecting, or from "
     "its previous answer) before its connection is closed"},
    /* Unset: where `make install` put the files (src/mgmt/ui.h), so the example file is the
     * same whatever the install prefix. */
    {"management.ui_dir", OPT_PATH, FIELD(management_ui_dir), 0, 0, NULL, NULL,
     "directory of the management web UI's files, served at / on the management port; unset: "
     "PREFIX/share/warren/www as installed (a build tree falls back to its source's www/)"},
    {"prometheus.tcp.port", OPT_UINT, FIELD(prometheus_port), 0, 65535, NULL, "15692",
     "port of the Prometheus metrics endpoint (/metrics); 0 disables it"},
    {"prometheus.tcp.ip", OPT_IP, FIELD(prometheus_ip), 0, 0, NULL,
     "::", "address the metrics endpoint listens on; :: means every IPv6 and IPv4 interface"},
    {"prometheus.tcp.request_timeout", OPT_UINT, FIELD(prometheus_request_timeout_ms), 1, 3600000,
     NULL, "5000", "the same as management.tcp.request_timeout, for the metrics endpoint"},
    /* RabbitMQ's default is false (totals only, per-queue series at /metrics/per-object);
     * Warren's series are cheap, so it shows per-queue depth at /metrics too. */
    {"prometheus.return_per_object_metrics", OPT_BOOL, FIELD(prometheus_per_object), 0, 0, NULL,
     "true", "true: /metrics has one series per queue; false: broker totals only"},
    {"load_definitions", OPT_PATH, FIELD(load_definitions), 0, 0, NULL, "false",
     "definitions file (RabbitMQ's JSON format) imported at every start, or false for none"},
    /* The cluster (../README.md, "Running a cluster"; the design: src/cluster/cluster.h). */
    {"cluster.enabled", OPT_BOOL, FIELD(cluster.enabled), 0, 0, NULL, "false",
     "true: this node is one of a cluster coordinated by etcd (one leader serves, followers "
     "replicate and take over)"},
    {"cluster.name", OPT_STRING, FIELD(cluster.name), 0, 0, NULL, "warren",
     "name of the cluster: its keys in etcd are under /warren/<name>/"},
    {"cluster.node_id", OPT_STRING, FIELD(cluster.node_id), 0, 0, NULL, NULL,
     "this node's name in the cluster, unique and stable; unset: the host name"},
    {"cluster.etcd.endpoints", OPT_STRING, FIELD(cluster.etcd_endpoints), 0, 0, NULL,
     "http://127.0.0.1:2379", "etcd client URLs, comma-separated"},
    /* 500 ms rather than CLUSTERING.md's 1000: a member cut off from a dying etcd leader
     * holds requests until it notices, and two or three renewals must fit in a 3 s lease. */
    {"cluster.etcd.username", OPT_STRING, FIELD(cluster.etcd_username), 0, 0, NULL, NULL,
     "etcd user (etcd's authentication, a token refreshed as it expires); unset: none"},
    {"cluster.etcd.password", OPT_STRING, FIELD(cluster.etcd_password), 0, 0, NULL, NULL,
     "password of cluster.etcd.username"},
    {"cluster.etcd.tls.ca", OPT_PATH, FIELD(cluster.etcd_tls_ca), 0, 0, NULL, "false",
     "PEM CAs that https:// etcd endpoints must chain to; false: the system's"},
    {"cluster.etcd.tls.cert", OPT_PATH, FIELD(cluster.etcd_tls_cert), 0, 0, NULL, "false",
     "PEM client certificate for https:// etcd endpoints; false: none"},
    {"cluster.etcd.tls.key", OPT_PATH, FIELD(cluster.etcd_tls_key), 0, 0, NULL, "false",
     "PEM key of cluster.etcd.tls.cert"},
    {"cluster.etcd.request_timeout", OPT_UINT, FIELD(cluster.etcd_request_timeout_ms), 100,
     60000, NULL, "500", "milliseconds an etcd request may take before the next endpoint is tried"},
    {"cluster.lease_ttl", OPT_UINT, FIELD(cluster.lease_ttl_s), 2, 60, NULL, "3",
     "seconds a node's etcd lease lives without renewal: how long a silent leader keeps its role"},
    {"cluster.listen", OPT_STRING, FIELD(cluster.listen), 0, 0, NULL, "0.0.0.0:5679",
     "IP:port of the replication port followers connect to"},
    {"cluster.advertise", OPT_STRING, FIELD(cluster.advertise), 0, 0, NULL, NULL,
     "host:port the other nodes use for this node's replication port; unset: cluster.listen "
     "(or the host name with its port when it listens on 0.0.0.0)"},
    {"cluster.tls.cert", OPT_PATH, FIELD(cluster.tls_cert), 0, 0, NULL, "false",
     "PEM certificate (chain) this node presents on the replication port, as leader and as "
     "follower; set with .key and .ca for TLS between the nodes; false: plain TCP"},
    {"cluster.tls.key", OPT_PATH, FIELD(cluster.tls_key), 0, 0, NULL, "false",
     "PEM key (not encrypted) of cluster.tls.cert"},
    {"cluster.tls.ca", OPT_PATH, FIELD(cluster.tls_ca), 0, 0, NULL, "false",
     "PEM CA the other nodes' certificates must chain to (both ways: mutual TLS)"},
    {"cluster.sync_rate_limit", OPT_UINT, FIELD(cluster.sync_rate_limit_mb), 0, 1000000, NULL,
     "0", "MB (2^20 bytes) per second of files a leader sends each follower catching up; "
     "0: unlimited (the live stream is never limited)"},
    {"cluster.ack_timeout", OPT_UINT, FIELD(cluster.ack_timeout_ms), 100, 600000, NULL, "3000",
     "milliseconds a follower may hold back confirms before the leader drops it from the "
     "in-sync set"},
    {"cluster.follower_backlog_max", OPT_BYTES, FIELD(cluster.follower_backlog_max), 1 << 20,
     UINT64_MAX / 2, NULL, "64MB",
     "bytes of stream kept in memory for a follower; past it, it catches up from the files"},
    {"cluster.min_insync_replicas", OPT_UINT, FIELD(cluster.min_insync_replicas), 1, 16, NULL, "1",
     "confirms wait while fewer members (leader included) are in sync"},
    {"cluster.confirm_timeout", OPT_UINT, FIELD(cluster.confirm_timeout_ms), 100, 3600000, NULL,
     "30000", "milliseconds a confirm waits for min_insync_replicas before it is a nack"},
    {"cluster.stall_timeout", OPT_UINT, FIELD(cluster.stall_timeout_ms), 100, 600000, NULL, "5000",
     "milliseconds of a stalled event loop or disk after which the leader stops renewing its lease"},
    {"cluster.crash_fastpath", OPT_BOOL, FIELD(cluster.crash_fastpath), 0, 0, NULL, "true",
     "true: followers that find the leader's replication port refused revoke its lease at once"},
    {"cluster.compression", OPT_STRING, FIELD(cluster.compression), 0, 0, NULL, "none",
     "none, or lz4: the leader compresses the segment data it sends followers (worth it on "
     "links slower than about 1 GB/s with compressible messages; bench/RESULTS.md)"},
    {"cluster.unclean_failover", OPT_BOOL, FIELD(cluster.unclean_failover), 0, 0, NULL, "false",
     "true: when no in-sync member is alive to lead for 2 lease TTLs, a node outside the "
     "in-sync set may lead; what it lacks of the confirmed messages is LOST (off by default, "
     "as Kafka's unclean.leader.election)"},
    {"cluster.on_leader_elected", OPT_STRING, FIELD(cluster.on_leader_elected), 0, 0, NULL, NULL,
     "shell command run (not waited for) when this node starts to lead, e.g. to move a DNS "
     "name or a virtual IP; it gets WARREN_NODE_ID, WARREN_EPOCH and WARREN_EVENT"},
    {"cluster.on_leader_lost", OPT_STRING, FIELD(cluster.on_leader_lost), 0, 0, NULL, NULL,
     "shell command run when this node stops leading (lease lost, deposed, switchover), "
     "just before it exits; the same variables"},
    {"cluster.follower_listeners", OPT_STRING, FIELD(cluster.follower_listeners), 0, 0, NULL,
     "proxy", "what a follower does with clients: proxy (relay them to the leader) or refuse "
     "(connection.open answered 530 naming the leader)"},
    /* The cluster's nodes are allowed without being listed (src/broker/server.h); this key is
     * for the proxies in front of a broker, and for tests. */
    {"cluster.proxy_peers", OPT_IP_LIST, FIELD(proxy_peers), 0, 0, NULL, NULL,
     "addresses (comma-separated) whose connections may start with a PROXY protocol v1 header "
     "naming the real client, e.g. HAProxy with send-proxy; a cluster's nodes need not be "
     "listed"},
};

#define OPTION_COUNT (sizeof(options) / sizeof(options[0]))

/* A piece of the text being parsed: not NUL-terminated. */
struct span {
    const char *ptr;
    size_t len;
};

/* The lines of a list whose entries are named in their keys (listeners.tcp.<name>,
 * ssl_options.ciphers.<n>): the first such line of a file replaces the list it starts from
 * (the default); later lines add to it, and a name given twice keeps its last value. */
struct named_list {
    bool seen;
    bool none; /* `key = none`: the list ends empty, whatever the place of the line */
    char names[CONFIG_MAX_TLS_CIPHERS][64];
};

/* Where parsing stands, for messages and for the keys whose lines add up to one list. */
struct parse {
    struct config *c;
    const char *name; /* the file, for messages */
    unsigned line;
    char *err;
    size_t err_size;
    struct named_list tcp, ssl, tls_versions, tls_ciphers, auth_mechanisms;
    /* loopback_users.* lines work the same way; `= none` wins whatever its place. */
    bool loopback_seen;
    bool loopback_none;
    /* Where a TLS setting that needs others was made, for the check at the end. */
    unsigned ssl_listener_line; /* the first listeners.ssl.<name> line */
    unsigned ssl_options_line;  /* the last ssl_options.* line */
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err_size == 0)
        return -1;
    n = snprintf(p->err, p->err_size, "%s:%u: ", p->name, p->line);
    if (n >= 0 && (size_t)n < p->err_size) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool span_is(struct span s, const char *word)
{
    return strlen(word) == s.len && memcmp(s.ptr, word, s.len) == 0;
}

/* Copies s into buf (size bytes, zero-filled past the text); false if it does not fit. */
static bool span_copy(struct span s, char *buf, size_t size)
{
    if (s.len >= size)
        return false;
    memset(buf, 0, size);
    memcpy(buf, s.ptr, s.len);
    return true;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static struct span trim(struct span s)
{
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static bool is_word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* cuttlefish's key grammar: words of [A-Za-z0-9_-] joined by dots, where "\." is a dot
 * inside a word (so that a user name may contain one). */
static bool key_is_valid(struct span key)
{
    bool word_empty = true;

    for (size_t i = 0; i < key.len; i++) {
        if (key.ptr[i] == '\\' && i + 1 < key.len && key.ptr[i + 1] == '.') {
            i++;
            word_empty = false;
        } else if (key.ptr[i] == '.') {
            if (word_empty)
                return false;
            word_empty = true;
        } else if (is_word_char(key.ptr[i])) {
            word_empty = false;
        } else {
            return false;
        }
    }
    return !word_empty;
}

/* If key is prefix "." word, the word with "\." unescaped into buf (size bytes, zero-filled
 * past the word). Returns 1 on a match, 0 if key is something else, -1 if the word does not
 * fit. */
static int key_name(struct span key, const char *prefix, char *buf, size_t size)
{
    size_t plen = strlen(prefix), n = 0;

    if (key.len <= plen + 1 || memcmp(key.ptr, prefix, plen) != 0 || key.ptr[plen] != '.')
        return 0;
    memset(buf, 0, size);
    for (size_t i = plen + 1; i < key.len; i++) {
        if (key.ptr[i] == '\\' && i + 1 < key.len && key.ptr[i + 1] == '.')
            i++;
        else if (key.ptr[i] == '.')
            return 0; /* one more level: no such key */
        if (n + 1 >= size)
            return -1;
        buf[n++] = key.ptr[i];
    }
    buf[n] = '\0';
    return 1;
}

enum number_result { NUMBER_OK, NUMBER_BAD, NUMBER_TOO_BIG };

/* Decimal digits only: no sign, no spaces, no hex. */
static enum number_result parse_decimal(struct span s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0)
        return NUMBER_BAD;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return NUMBER_BAD;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.ptr[i] - '0');

        if (v > (UINT64_MAX - d) / 10)
            return NUMBER_TOO_BIG;
        v = v * 10 + d;
    }
    *out = v;
    return NUMBER_OK;
}

/* cuttlefish's bytesize: a number, or a number followed by KB, MB or GB in either case. */
static enum number_result parse_bytes(struct span s, uint64_t *out)
{
    static const struct {
        char letter;
        unsigned shift;
    } units[] = {{'K', 10}, {'M', 20}, {'G', 30}};
    unsigned shift = 0;
    enum number_result r;

    if (s.len >= 3 && (s.ptr[s.len - 1] == 'B' || s.ptr[s.len - 1] == 'b')) {
        char letter = s.ptr[s.len - 2] & (char)~0x20; /* upper case */

        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (letter == units[i].letter)
                shift = units[i].shift;
        }
        if (shift == 0)
            return NUMBER_BAD;
        s.len -= 2;
    }
    r = parse_decimal(s, out);
    if (r != NUMBER_OK)
        return r;
    if (*out > (UINT64_MAX >> shift))
        return NUMBER_TOO_BIG;
    *out <<= shift;
    return NUMBER_OK;
}

static void *field(struct config *c, const struct option *o)
{
    return (char *)c + o->offset;
}

static void set_uint(struct config *c, const struct option *o, uint64_t v)
{
    if (o->size == sizeof(uint64_t)) {
        *(uint64_t *)field(c, o) = v;
    } else {
        assert(o->size == sizeof(uint32_t) && v <= UINT32_MAX);
        *(uint32_t *)field(c, o) = (uint32_t)v;
    }
}

static int set_number(struct parse *p, const struct option *o, struct span key, struct span v)
{
    enum number_result r;
    uint64_t n = 0;

    r = o->type == OPT_BYTES ? parse_bytes(v, &n) : parse_decimal(v, &n);
    if (r == NUMBER_BAD)
        return fail(p, "bad value '%.*s' for key '%.*s': expected %s", (int)v.len, v.ptr,
                    (int)key.len, key.ptr,
                    o->type == OPT_BYTES ? "a number of bytes, optionally with KB, MB or GB"
                                         : "a non-negative integer");
    if (r == NUMBER_TOO_BIG || n < o->min || n > o->max)
        return fail(p, "out of range value '%.*s' for key '%.*s': expected %llu..%llu", (int)v.len,
                    v.ptr, (int)key.len, key.ptr, (unsigned long long)o->min,
                    (unsigned long long)o->max);
    set_uint(p->c, o, n);
    return 0;
}

/* "0.4", "1", "0.125": thousandths, at most three decimals. */
static int set_fraction(struct parse *p, const struct option *o, struct span key, struct span v)
{
    uint64_t whole = 0, thousandths = 0, scale = 100;
    size_t i = 0;
    bool digits = false;

    for (; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && whole < 1000000; i++, digits = true)
        whole = whole * 10 + (uint64_t)(v.ptr[i] - '0');
    if (i < v.len && v.ptr[i] == '.') {
        for (i++; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && scale > 0;
             i++, digits = true) {
            thousandths += (uint64_t)(v.ptr[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (!digits || i != v.len)
        return fail(p, "bad value '%.*s' for key '%.*s': expected a decimal fraction such as 0.4",
                    (int)v.len, v.ptr, (int)key.len, key.ptr);
    thousandths += whole * 1000;
    if (thousandths < o->min || thousandths > o->max)
        return fail(p,
                    "out of range value '%.*s' for key '%.*s': expected %llu.%03llu..%llu.%03llu",
                    (int)v.len, v.ptr, (int)key.len, key.ptr, (unsigned long long)o->min / 1000,
                    (unsigned long long)o->min % 1000, (unsigned long long)o->max / 1000,
                    (unsigned long long)o->max % 1000);
    set_uint(p->c, o, thousandths);
    return 0;
}

static int parse_bool(struct parse *p, struct span key, struct span v, bool *out)
{
    if (span_is(v, "true"))
        *out = true;
    else if (span_is(v, "false"))
        *out = false;
    else
        return fail(p, "bad value '%.*s' for key '%.*s': expected true or false", (int)v.len, v.ptr,
                    (int)key.len, key.ptr);
    return 0;
}

/* An IP literal, as cuttlefish's ip type takes: IPv4, or IPv6 with an optional %scope. */
static bool host_is_ip(const char *host)
{
    unsigned char addr[16];
    char bare[64];
    const char *scope;

    if (inet_pton(AF_INET, host, addr) == 1)
        return true;
    scope = strchr(host, '%');
    if (scope == NULL)
        return inet_pton(AF_INET6, host, addr) == 1;
    if ((size_t)(scope - host) >= sizeof(bare) || scope[1] == '\0')
        return false;
    for (const char *s = scope + 1; *s != '\0'; s++) {
        if (!is_word_char(*s) && *s != '.')
            return false;
    }
    memcpy(bare, host, (size_t)(scope - host));
    bare[scope - host] = '\0';
    return inet_pton(AF_INET6, bare, addr) == 1;
}

/* The lines that set the named list of o, and its entry count. */
static struct named_list *list_lines(struct parse *p, const struct option *o)
{
    switch (o->offset) {
    case offsetof(struct config, tcp):
        return &p->tcp;
    case offsetof(struct config, ssl):
        return &p->ssl;
    case offsetof(struct config, ssl_versions):
        return &p->tls_versions;
    case offsetof(struct config, ssl_ciphers):
        return &p->tls_ciphers;
    case offsetof(struct config, auth_mechanisms):
        return &p->auth_mechanisms;
    }
    assert(!"not a named list");
    return NULL;
}

static size_t *list_count(struct config *c, const struct option *o)
{
    switch (o->offset) {
    case offsetof(struct config, tcp):
        return &c->tcp_count;
    case offsetof(struct config, ssl):
        return &c->ssl_count;
    case offsetof(struct config, ssl_versions):
        return &c->ssl_version_count;
    case offsetof(struct config, ssl_ciphers):
        return &c->ssl_cipher_count;
    case offsetof(struct config, auth_mechanisms):
        return &c->auth_mechanism_count;
    }
    assert(!"not a named list");
    return NULL;
}

/* Lists are cleared whole, so that two configurations with the same settings compare equal
 * byte for byte. */
static void clear_list(struct config *c, const struct option *o)
{
    memset(field(c, o), 0, o->size);
    *list_count(c, o) = 0;
}

/* The index at which the entry named in key goes in o's list of at most max entries (of
 * `entry` type, for messages): the index of that name, or a new one at the end. The first
 * line of a file empties the list first. -1 after reporting a name too long or a full
 * list. */
static int list_slot(struct parse *p, const struct option *o, struct span key, size_t max,
                     const char *entry, const char *entries)
{
    struct named_list *l = list_lines(p, o);
    size_t *count = list_count(p->c, o);
    char name[sizeof(l->names[0])];
    size_t i;
    int r;

    assert(max <= sizeof(l->names) / sizeof(l->names[0]));
    r = key_name(key, o->key, name, sizeof(name));
    assert(r != 0);
    if (r < 0)
        return fail(p, "%s name in key '%.*s' is longer than %zu bytes", entry, (int)key.len,
                    key.ptr, sizeof(name) - 1);
    if (!l->seen) {
        l->seen = true;
        clear_list(p->c, o);
    }
    for (i = 0; i < *count; i++) {
        if (strcmp(l->names[i], name) == 0)
            break;
    }
    if (i == max)
        return fail(p, "too many %s: at most %zu", entries, max);
    memcpy(l->names[i], name, sizeof(name));
    if (i == *count)
        (*count)++;
    return (int)i;
}

static void clear_loopback_users(struct config *c)
{
    memset(c->loopback_users, 0, sizeof(c->loopback_users));
    c->loopback_user_count = 0;
}

/* "5672" (every interface), "127.0.0.1:5672", "::1:5672" (the port follows the last colon,
 * as in rabbitmq.conf) or "[::1]:5672". */
static bool parse_listener(const struct option *o, struct span v, struct config_listener *out)
{
    struct span host = {v.ptr, 0}, port;
    const char *colon = NULL;
    uint64_t n;

    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] == ':')
            colon = v.ptr + i;
    }
    if (colon == NULL) {
        port = v;
    } else {
        host.len = (size_t)(colon - v.ptr);
        port = (struct span){colon + 1, v.len - host.len - 1};
        if (host.len >= 2 && host.ptr[0] == '[' && host.ptr[host.len - 1] == ']') {
            host.ptr++;
            host.len -= 2;
            if (memchr(host.ptr, ':', host.len) == NULL)
                return false; /* brackets are for IPv6 only */
        }
        if (host.len == 0)
            return false;
    }
    if (parse_decimal(port, &n) != NUMBER_OK || n < o->min || n > o->max)
        return false;
    if (!span_copy(host, out->host, sizeof(out->host)) || (host.len > 0 && !host_is_ip(out->host)))
        return false;
    out->port = (uint16_t)n;
    return true;
}

static int set_listener(struct parse *p, const struct option *o, struct span key, struct span v)
{
    struct config_listener l;
    int i;

    if (span_is(key, o->key)) {
        if (!span_is(v, "none"))
            return fail(p, "bad value '%.*s' for key '%s': expected none", (int)v.len, v.ptr,
                        o->key);
        list_lines(p, o)->none = true;
        return 0;
    }
    if (!parse_listener(o, v, &l))
        return fail(p, "bad value '%.*s' for key '%.*s': expected a port, IP:port or [IPv6]:port",
                    (int)v.len, v.ptr, (int)key.len, key.ptr);
    i = list_slot(p, o, key, CONFIG_MAX_LISTENERS, "listener", "listeners");
    if (i < 0)
        return -1;
    ((struct config_listener *)field(p->c, o))[i] = l;
    return 0;
}

/* Values of the keys that take one of a few words. */
struct word {
    const char *word;
    int value;
};

static const struct word tls_verify_words[] = {
    {"verify_none", false},
    {"verify_peer", true},
};

static const struct word tls_version_words[] = {
    {"tlsv1.3", CONFIG_TLS_V1_3},
    {"tlsv1.2", CONFIG_TLS_V1_2},
    {"tlsv1.1", CONFIG_TLS_V1_1},
    {"tlsv1", CONFIG_TLS_V1},
};

static const struct word auth_mechanism_words[] = {
    {"PLAIN", CONFIG_AUTH_PLAIN},
    {"AMQPLAIN", CONFIG_AUTH_AMQPLAIN},
    {"EXTERNAL", CONFIG_AUTH_EXTERNAL},
    {"RABBIT-CR-DEMO", CONFIG_AUTH_RABBIT_CR_DEMO},
};

static const struct word cert_login_words[] = {
    {"distinguished_name", CONFIG_CERT_LOGIN_DN},
    {"common_name", CONFIG_CERT_LOGIN_CN},
};

/* The value of word v in words[n], or -1 after reporting the words expected. */
static int parse_word(struct parse *p, struct span key, struct span v, const struct word *words,
                      size_t n)
{
    char expected[128] = "";
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        if (span_is(v, words[i].word))
            return words[i].value;
    }
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(expected + len, sizeof(expected) - len, "%s%s",
                                i == 0       ? ""
                                : i + 1 == n ? " or "
                                             : ", ",
                                words[i].word);
    return fail(p, "bad value '%.*s' for key '%.*s': expected %s", (int)v.len, v.ptr, (int)key.len,
                key.ptr, expected);
}

static int set_tls_version(struct parse *p, const struct option *o, struct span key, struct span v)
{
    int version = parse_word(p, key, v, tls_version_words,
                             sizeof(tls_version_words) / sizeof(tls_version_words[0]));
    int i;

    if (version < 0)
        return -1;
    i = list_slot(p, o, key, CONFIG_MAX_TLS_VERSIONS, "entry", "TLS versions");
    if (i < 0)
        return -1;
    p->c->ssl_versions[i] = (uint8_t)version;
    return 0;
}

static int set_auth_mechanism(struct parse *p, const struct option *o, struct span key,
                              struct span v)
{
    int mech = parse_word(p, key, v, auth_mechanism_words,
                          sizeof(auth_mechanism_words) / sizeof(auth_mechanism_words[0]));
    int i;

    if (mech < 0)
        return -1;
    i = list_slot(p, o, key, CONFIG_MAX_AUTH_MECHANISMS, "entry", "authentication mechanisms");
    if (i < 0)
        return -1;
    p->c->auth_mechanisms[i] = (uint8_t)mech;
    return 0;
}

/* One name per entry, as RabbitMQ lists them: OpenSSL's cipher-string operators (':', '!',
 * '+', '@') are refused, so that an entry cannot pull in a family of ciphers. Whether
 * OpenSSL knows the name is checked when the TLS context is built. */
static int set_tls_cipher(struct parse *p, const struct option *o, struct span key, struct span v)
{
    bool ok = v.len < sizeof(p->c->ssl_ciphers[0]);
    int i;

    for (size_t j = 0; ok && j < v.len; j++)
        ok = is_word_char(v.ptr[j]) || v.ptr[j] == '.';
    if (!ok)
        return fail(p,
                    "bad value '%.*s' for key '%.*s': expected one cipher name, as OpenSSL "
                    "writes it (ECDHE-RSA-AES256-GCM-SHA384, TLS_AES_256_GCM_SHA384)",
                    (int)v.len, v.ptr, (int)key.len, key.ptr);
    i = list_slot(p, o, key, CONFIG_MAX_TLS_CIPHERS, "entry", "ciphers");
    if (i < 0)
        return -1;
    span_copy(v, p->c->ssl_ciphers[i], sizeof(p->c->ssl_ciphers[0]));
    return 0;
}

static int set_loopback_user(struct parse *p, struct span key, struct span v)
{
    struct config *c = p->c;
    char user[sizeof(c->loopback_users[0])];
    bool on;
    size_t i;
    int r;

    if (span_is(key, "loopback_users")) {
        if (!span_is(v, "none"))
            return fail(p, "bad value '%.*s' for key 'loopback_users': expected none", (int)v.len,
                        v.ptr);
        p->loopback_none = true;
        return 0;
    }
    r = key_name(key, "loopback_users", user, sizeof(user));
    assert(r != 0);
    if (r < 0)
        return fail(p, "user name in key '%.*s' is longer than %zu bytes", (int)key.len, key.ptr,
                    sizeof(user) - 1);
    if (parse_bool(p, key, v, &on) < 0)
        return -1;
    if (!p->loopback_seen) {
        p->loopback_seen = true;
        clear_loopback_users(c);
    }
    for (i = 0; i < c->loopback_user_count; i++) {
        if (strcmp(c->loopback_users[i], user) == 0)
            break;
    }
    if (on && i == c->loopback_user_count) {
        if (i == CONFIG_MAX_LOOPBACK_USERS)
            return fail(p, "too many loopback users: at most %d", CONFIG_MAX_LOOPBACK_USERS);
        memcpy(c->loopback_users[i], user, sizeof(user));
        c->loopback_user_count++;
    } else if (!on && i < c->loopback_user_count) {
        memmove(c->loopback_users[i], c->loopback_users[i + 1],
                (c->loopback_user_count - i - 1) * sizeof(c->loopback_users[0]));
        c->loopback_user_count--;
        memset(c->loopback_users[c->loopback_user_count], 0, sizeof(c->loopback_users[0]));
    }
    return 0;
}

/* "a, b, c": each an IP literal; kept as written, spaces and all (config_ip_list_next()
 * reads it back). */
static int set_ip_list(struct parse *p, const struct option *o, struct span key, struct span v)
{
    const char *list = field(p->c, o);
    char ip[64];
    size_t at = 0;

    if (!span_copy(v, field(p->c, o), o->size))
        return fail(p, "value for key '%.*s' is longer than %zu bytes", (int)key.len, key.ptr,
                    o->size - 1);
    for (int rc; (rc = config_ip_list_next(list, &at, ip, sizeof(ip))) != 0;) {
        if (rc < 0 || !host_is_ip(ip))
            return fail(p,
                        "bad value '%.*s' for key '%.*s': expected IPv4 or IPv6 addresses "
                        "separated by commas",
                        (int)v.len, v.ptr, (int)key.len, key.ptr);
    }
    return 0;
}

static int set_option(struct parse *p, const struct option *o, struct span key, struct span v)
{
    bool on;
    int level, value;
    char word[16];

    switch (o->type) {
    case OPT_FRACTION:
        return set_fraction(p, o, key, v);
    case OPT_UINT:
    case OPT_BYTES:
        return set_number(p, o, key, v);
    case OPT_BOOL:
        if (parse_bool(p, key, v, &on) < 0)
            return -1;
        *(bool *)field(p->c, o) = on;
        return 0;
    case OPT_STRING:
    case OPT_PATH:
        if (o->type == OPT_PATH && span_is(v, "false"))
            v.len = 0;
        /* The value is not repeated: it may be a password. */
        if (!span_copy(v, field(p->c, o), o->size))
            return fail(p, "value for key '%.*s' is longer than %zu bytes", (int)key.len, key.ptr,
                        o->size - 1);
        return 0;
    case OPT_LOG_LEVEL:
        level = span_copy(v, word, sizeof(word)) ? log_level_parse(word) : -1;
        if (level < 0)
            return fail(p,
                        "bad value '%.*s' for key '%.*s': expected debug, info, warning, error "
                        "or none",
                        (int)v.len, v.ptr, (int)key.len, key.ptr);
        *(int *)field(p->c, o) = level;
        return 0;
    case OPT_LISTENER:
        return set_listener(p, o, key, v);
    case OPT_LOOPBACK_USER:
        return set_loopback_user(p, key, v);
    case OPT_TLS_VERIFY:
        value = parse_word(p, key, v, tls_verify_words,
                           sizeof(tls_verify_words) / sizeof(tls_verify_words[0]));
        if (value < 0)
            return -1;
        *(bool *)field(p->c, o) = value;
        return 0;
    case OPT_TLS_VERSION:
        return set_tls_version(p, o, key, v);
    case OPT_TLS_CIPHER:
        return set_tls_cipher(p, o, key, v);
    case OPT_AUTH_MECH:
        return set_auth_mechanism(p, o, key, v);
    case OPT_IP:
        /* The value is an address: it fits in the field and parses, or it is refused. */
        if (!span_copy(v, field(p->c, o), o->size) || !host_is_ip(field(p->c, o)))
            return fail(p, "bad value '%.*s' for key '%.*s': expected an IPv4 or IPv6 address",
                        (int)v.len, v.ptr, (int)key.len, key.ptr);
        return 0;
    case OPT_IP_LIST:
        return set_ip_list(p, o, key, v);
    case OPT_CERT_LOGIN:
        value = parse_word(p, key, v, cert_login_words,
                           sizeof(cert_login_words) / sizeof(cert_login_words[0]));
        if (value < 0)
            return -1;
        *(int *)field(p->c, o) = value;
        return 0;
    }
    assert(!"unknown option type");
    return -1;
}

static bool option_takes_name(const struct option *o)
{
    return o->type == OPT_LISTENER || o->type == OPT_LOOPBACK_USER || o->type == OPT_TLS_VERSION ||
           o->type == OPT_TLS_CIPHER || o->type == OPT_AUTH_MECH;
}

static const struct option *option_find(struct span key)
{
    char name[128];

    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option *o = &options[i];
        /* A list of versions or ciphers has no `key = none` form. */
        bool bare_key_ok =
            o->type != OPT_TLS_VERSION && o->type != OPT_TLS_CIPHER && o->type != OPT_AUTH_MECH;

        if (bare_key_ok && span_is(key, o->key))
            return o;
        if (option_takes_name(o) && key_name(key, o->key, name, sizeof(name)) != 0)
            return o;
    }
    return NULL;
}

static bool span_starts_with(struct span s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static int parse_line(struct parse *p, struct span line)
{
    const char *hash = memchr(line.ptr, '#', line.len);
    const char *eq;
    struct span key, value;
    const struct option *o;

    /* As in rabbitmq.conf, '#' starts a comment wherever it appears, even inside a value. */
    if (hash != NULL)
        line.len = (size_t)(hash - line.ptr);
    line = trim(line);
    if (line.len == 0)
        return 0;
    eq = memchr(line.ptr, '=', line.len);
    /* The line is not repeated: it may be a password missing its key. */
    if (eq == NULL)
        return fail(p, "expected 'key = value'");
    key = trim((struct span){line.ptr, (size_t)(eq - line.ptr)});
    value = trim((struct span){eq + 1, (size_t)(line.ptr + line.len - eq - 1)});
    if (key.len == 0)
        return fail(p, "expected 'key = value'");
    if (!key_is_valid(key))
        return fail(p, "invalid key '%.*s'", (int)key.len, key.ptr);
    if ((o = option_find(key)) == NULL)
        return fail(p, "unknown key '%.*s'", (int)key.len, key.ptr);
    if (value.len == 0)
        return fail(p, "missing value for key '%.*s'", (int)key.len, key.ptr);
    if (set_option(p, o, key, value) < 0)
        return -1;
    if (span_starts_with(key, "listeners.ssl.") && p->ssl_listener_line == 0)
        p->ssl_listener_line = p->line;
    if (span_starts_with(key, "ssl_options."))
        p->ssl_options_line = p->line;
    return 0;
}

/* RabbitMQ refuses to start a TLS listener without a certificate and key, and cannot verify
 * clients without the authorities to verify them against: both are configuration errors,
 * reported at the TLS listener line of this text (or its last ssl_options line). */
static int check_tls(struct parse *p)
{
    const struct config *c = p->c;

    if (c->ssl_count == 0)
        return 0;
    if (p->ssl_listener_line != 0)
        p->line = p->ssl_listener_line;
    else if (p->ssl_options_line != 0)
        p->line = p->ssl_options_line;
    if (c->ssl_certfile[0] == '\0' || c->ssl_keyfile[0] == '\0')
        return fail(p, "a TLS listener (listeners.ssl) needs ssl_options.certfile and "
                       "ssl_options.keyfile");
    if (c->ssl_verify_peer && c->ssl_cacertfile[0] == '\0')
        return fail(p, "ssl_options.verify = verify_peer needs ssl_options.cacertfile");
    return 0;
}

int config_parse(struct config *c, const char *name, const char *text, char *err, size_t err_size)
{
    struct parse p = {.c = c, .name = name, .err = err, .err_size = err_size};
    const char *s = text;

    if (err_size > 0)
        err[0] = '\0';
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');
        size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);

        p.line++;
        if (parse_line(&p, (struct span){s, len}) < 0)
            return -1;
        s += len + (nl != NULL);
    }
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (options[i].type == OPT_LISTENER && list_lines(&p, &options[i])->none)
            clear_list(c, &options[i]);
    }
    if (p.loopback_none)
        clear_loopback_users(c);
    return check_tls(&p);
}

int config_load(struct config *c, const char *path, char *err, size_t err_size)
{
    char *text = NULL;
    size_t len = 0;
    int fd, rc = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* One byte more than allowed tells a file at the limit from one past it. */
    text = malloc(CONFIG_FILE_MAX_BYTES + 2);
    if (text == NULL) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto out;
    }
    while (len < CONFIG_FILE_MAX_BYTES + 1) {
        ssize_t n = read(fd, text + len, CONFIG_FILE_MAX_BYTES + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_FILE_MAX_BYTES) {
        snprintf(err, err_size, "%s: larger than %d bytes", path, CONFIG_FILE_MAX_BYTES);
        goto out;
    }
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, err_size, "%s: contains a NUL byte, not a text file", path);
        goto out;
    }
    text[len] = '\0';
    rc = config_parse(c, path, text, err, err_size);
out:
    free(text);
    close(fd);
    return rc;
}

/* The line of etc/warren.conf that sets o to its default; for a key unset by default, the
 * key commented out, ready to be given a value. */
static void format_default(const struct option *o, char *buf, size_t size)
{
    char key[128];

    if (o->default_name != NULL)
        snprintf(key, sizeof(key), "%s.%s", o->key, o->default_name);
    else
        snprintf(key, sizeof(key), "%s", o->key);
    if (o->default_value == NULL)
        snprintf(buf, size, "# %s =\n", key);
    else
        snprintf(buf, size, "%s = %s\n", key, o->default_value);
}

/* Defaults go through the parser, so the table's default strings cannot disagree with
 * what the same line in a file would mean. */
void config_defaults(struct config *c)
{
    struct parse p = {.c = c, .name = "(defaults)"};
    char line[256];
    int rc;

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (options[i].default_value == NULL)
            continue;
        format_default(&options[i], line, sizeof(line));
        p.line = (unsigned)i + 1;
        rc = parse_line(&p, (struct span){line, strlen(line) - 1});
        assert(rc == 0);
        (void)rc;
    }
}

int config_ip_list_next(const char *list, size_t *at, char *out, size_t out_size)
{
    struct span item;
    const char *comma;

    if (list[*at] == '\0')
        return 0;
    comma = strchr(list + *at, ',');
    item.ptr = list + *at;
    item.len = comma != NULL ? (size_t)(comma - item.ptr) : strlen(item.ptr);
    *at += item.len + (comma != NULL);
    item = trim(item);
    /* "a,,b" and a trailing comma are mistakes, not empty entries. */
    if (item.len == 0 || (comma != NULL && list[*at] == '\0'))
        return -1;
    return span_copy(item, out, out_size) ? 1 : -1;
}

bool config_is_loopback_user(const struct config *c, const char *user)
{
    for (size_t i = 0; i < c->loopback_user_count; i++) {
        if (strcmp(c->loopback_users[i], user) == 0)
            return true;
    }
    return false;
}

void config_write_example(FILE *out)
{
    char line[256];

    fputs("# Warren configuration, in the key = value style of rabbitmq.conf.\n"
          "# Every key is listed with its default value: `warrend -c etc/warren.conf` runs\n"
          "# exactly as warrend does with no configuration file. '#' starts a comment.\n"
          "# Generated from the options table in src/base/config.c; edit there, then regenerate with\n"
          "#   tests/unit/check_config --write-example > etc/warren.conf\n",
          out);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        format_default(&options[i], line, sizeof(line));
        if (options[i].comment != NULL)
            fprintf(out, "\n## %s\n", options[i].comment);
        fputs(line, out);
    }
}
