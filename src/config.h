/* The configuration: RabbitMQ's `key = value` lines (rabbitmq.conf style). One table in
 * config.c declares every key once (name, type, bounds, default, field) and drives parsing,
 * defaults, range checks and etc/warren.conf. */
#ifndef WARREN_SRC_CONFIG_H
#define WARREN_SRC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTENERS      8
#define CONFIG_MAX_LOOPBACK_USERS 16

/* host "" means every interface, IPv4 (0.0.0.0) and IPv6 (::) alike. */
struct config_listener {
    char host[64];
    uint16_t port;
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
    uint32_t delivery_limit;       /* delivery_limit: 0 = queues without x-delivery-limit have none */
    int log_level;                 /* log.level: info (enum log_level) */
    char log_file[512];            /* log.file: "" = none */
    bool log_console;              /* log.console: true (lines also go to stderr) */
};

/* Fills c with every default. */
void config_defaults(struct config *c);

/* Parses text (the contents of a file called name, for messages) into c, on top of what c
 * holds. Returns 0, or -1 with "name:line: reason" in err: an unknown key, a value of the
 * wrong type or out of its bounds, a line that is not `key = value`. */
int config_parse(struct config *c, const char *name, const char *text, char *err, size_t err_size);

/* Reads and parses the file at path (same errors, plus one for a file that cannot be read). */
int config_load(struct config *c, const char *path, char *err, size_t err_size);

/* True if user may connect only from loopback addresses. */
bool config_is_loopback_user(const struct config *c, const char *user);

/* Writes every key with its default value and a comment, in rabbitmq.conf style: the text of
 * etc/warren.conf. */
void config_write_example(FILE *out);

#endif
