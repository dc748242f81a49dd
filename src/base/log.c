/* Logging: each event becomes one line, built whole in a buffer and handed to write() once
 * per destination, so lines from several threads or processes never interleave. */
#include "src/base/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longer lines are cut and end in "..."; a line is a log event, not a data dump. */
#define LOG_LINE_MAX 4096

enum log_level log_threshold = LOG_LEVEL_INFO;

static bool console_enabled = true;
static int file_fd = -1;

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_WARNING] = "warning",
    [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_NONE] = "none",
};

void log_set_level(enum log_level level)
{
    assert(level >= LOG_LEVEL_DEBUG && level <= LOG_LEVEL_NONE);
    log_threshold = level;
}

void log_set_console(bool enabled)
{
    console_enabled = enabled;
}

int log_level_parse(const char *name)
{
    for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_NONE; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    if (strcmp(name, "warn") == 0)
        return LOG_LEVEL_WARNING;
    return -1;
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    log_close_file();
    file_fd = fd;
    return 0;
}

void log_close_file(void)
{
    if (file_fd >= 0)
        close(file_fd);
    file_fd = -1;
}

/* Appends to buf[*len], never past size - 1; what does not fit is dropped. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*len >= size - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

/* Names, vhosts and message texts can carry bytes a client chose; a newline or an escape
 * sequence from them must not forge a line or rewrite the operator's terminal. */
static size_t escape_controls(char *dst, size_t size, const char *src, size_t len, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];

        if (ch >= 0x20 && ch != 0x7f) {
            if (n + 1 > size)
                break;
            dst[n++] = (char)ch;
        } else {
            if (n + 4 > size)
                break;
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[ch >> 4];
            dst[n++] = hex[ch & 0xf];
        }
    }
    *used = i;
    return n;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report a failing log */
        buf += n;
        len -= (size_t)n;
    }
}

void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    char raw[LOG_LINE_MAX], line[LOG_LINE_MAX + 8];
    size_t raw_len = 0, len, used;
    bool cut = false;
    struct timespec now;
    struct tm tm;
    va_list ap;
    int saved_errno = errno;
    int n;

    assert(level >= LOG_LEVEL_DEBUG && level < LOG_LEVEL_NONE);
    if (!log_enabled(level))
        return;

    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    append(raw, sizeof(raw), &raw_len, "%04d-%02d-%02d %02d:%02d:%02d.%03ld [%s] ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           now.tv_nsec / 1000000, level_names[level]);
    if (ctx != NULL) {
        append(raw, sizeof(raw), &raw_len, "conn %" PRIu64, ctx->conn_id);
        if (ctx->peer[0] != '\0')
            append(raw, sizeof(raw), &raw_len, " %.*s", (int)sizeof(ctx->peer), ctx->peer);
        if (ctx->user[0] != '\0' && ctx->vhost[0] != '\0')
            append(raw, sizeof(raw), &raw_len, " %.*s@%.*s", (int)sizeof(ctx->user), ctx->user,
                   (int)sizeof(ctx->vhost), ctx->vhost);
        else if (ctx->user[0] != '\0')
            append(raw, sizeof(raw), &raw_len, " %.*s", (int)sizeof(ctx->user), ctx->user);
        if (ctx->channel != 0)
            append(raw, sizeof(raw), &raw_len, " ch %u", (unsigned)ctx->channel);
        append(raw, sizeof(raw), &raw_len, ": ");
    }
    va_start(ap, fmt);
    n = vsnprintf(raw + raw_len, sizeof(raw) - raw_len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n >= sizeof(raw) - raw_len) {
        cut = true;
        raw_len = sizeof(raw) - 1;
    } else if (n > 0) {
        raw_len += (size_t)n;
    }

    /* Room is kept for "...\n" after the longest escaped text. */
    len = escape_controls(line, sizeof(line) - 4, raw, raw_len, &used);
    if (cut || used < raw_len) {
        memcpy(line + len, "...", 3);
        len += 3;
    }
    line[len++] = '\n';

    if (console_enabled)
        write_all(STDERR_FILENO, line, len);
    if (file_fd >= 0)
        write_all(file_fd, line, len);
    errno = saved_errno;
}
