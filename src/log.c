/* Logging: minimal first version, completed below in later commits. */
#include "src/log.h"

#include <stdarg.h>
#include <stdio.h>

enum log_level log_threshold = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

int log_level_parse(const char *name)
{
    (void)name;
    return -1;
}

int log_open_file(const char *path)
{
    (void)path;
    return -1;
}

void log_close_file(void)
{
}

void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    (void)level;
    (void)ctx;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
