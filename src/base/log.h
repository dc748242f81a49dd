/* Logging: one line per event to stderr (and a file when configured):
 *   2025-03-01 10:15:02.118 [warning] conn 17 192.0.2.10:53122 guest@/ ch 1: text
 * The logger adds time, level and the context; the level is tested before the arguments are
 * evaluated. error needs an operator, warning is something refused, info a lifecycle event,
 * debug is per frame. Passwords and bodies are never logged. */
#ifndef WARREN_SRC_BASE_LOG_H
#define WARREN_SRC_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARNING = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_NONE = 4,
};

/* What a line is about. A connection keeps one and fills it in as it learns (peer at
 * accept, user after SASL, vhost after connection.open); channel 0 means none. */
struct log_ctx {
    uint64_t conn_id;
    char peer[64]; /* "192.0.2.10:53122" or "[::1]:53122" */
    char user[512]; /* AMQP user names can be long: a certificate DN, say */
    char vhost[64];
    uint16_t channel;
};

extern enum log_level log_threshold;

static inline bool log_enabled(enum log_level level)
{
    return level >= log_threshold;
}

void log_set_level(enum log_level level);
/* Whether lines go to stderr (default true); the file, when open, gets them either way. */
void log_set_console(bool enabled);
/* "debug", "info", "warning" (or "warn"), "error", "none"; -1 if unknown. */
int log_level_parse(const char *name);
/* Also append to path (created 0640). 0, or -1 with errno set. */
int log_open_file(const char *path);
void log_close_file(void);

void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_write(level, ctx, __VA_ARGS__);                                                    \
    } while (0)

/* ctx may be NULL for lines about the broker as a whole. */
#define log_debug(ctx, ...) LOG_AT(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)
#define log_info(ctx, ...)  LOG_AT(LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define log_warn(ctx, ...)  LOG_AT(LOG_LEVEL_WARNING, ctx, __VA_ARGS__)
#define log_error(ctx, ...) LOG_AT(LOG_LEVEL_ERROR, ctx, __VA_ARGS__)

#endif
