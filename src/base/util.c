#include "src/base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "src/base/log.h"

static void out_of_memory(size_t n)
{
    log_error(NULL, "out of memory allocating %zu bytes", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        out_of_memory(n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        out_of_memory(count * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        out_of_memory(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xstrndup_bytes(struct wire_bytes b)
{
    char *s = xmalloc(b.len + 1);
    if (b.len)
        memcpy(s, b.ptr, b.len);
    s[b.len] = '\0';
    return s;
}

struct wire_bytes bytes_dup(struct wire_bytes b)
{
    return (struct wire_bytes){.ptr = (const uint8_t *)xstrndup_bytes(b), .len = b.len};
}

void bytes_free(struct wire_bytes *b)
{
    free((void *)b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_epoch_s(void)
{
    return (uint64_t)time(NULL);
}

void random_bytes(void *out, size_t len)
{
    uint8_t *p = out;
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    for (; got < len; got++)
        p[got] = (uint8_t)rand();
}

void random_name(char *out, size_t out_size, const char *prefix)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[16];
    char enc[23];
    size_t i, bit = 0;

    random_bytes(raw, sizeof raw);
    for (i = 0; i < 22; i++, bit += 6) {
        size_t byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)raw[byte] << 8 | (byte + 1 < sizeof raw ? raw[byte + 1] : 0);
        enc[i] = alphabet[(v >> (10 - shift)) & 63];
    }
    enc[22] = '\0';
    snprintf(out, out_size, "%s%s", prefix, enc);
}
