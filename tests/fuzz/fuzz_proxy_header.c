/* Fuzz target for the PROXY protocol v1 reader (src/cluster/proxy_header.h): arbitrary bytes
 * as the start of a connection from a cluster peer. Besides crashes and sanitizer reports it
 * checks what the reader promises: it never looks past PROXY_HEADER_MAX bytes, a header ends
 * with CRLF, every shorter prefix of an accepted header asks for more (so a header that
 * arrives a byte at a time is read the same), a refusal says why, and an accepted TCP4/TCP6
 * header written again by proxy_header_format() reads back as the same addresses (an
 * IPv4-mapped IPv6 address and its IPv4 address being the same). */
#include "src/cluster/proxy_header.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* The client a header names, IPv4-mapped IPv6 addresses as IPv4: the writer may put
 * "::ffff:a.b.c.d" as TCP4, which names the same client. */
static void canonical(const struct sockaddr_storage *a, struct sockaddr_storage *out)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    struct sockaddr_in *in = (struct sockaddr_in *)out;

    memset(out, 0, sizeof *out);
    if (a->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        memcpy(out, a, sizeof *in6);
        return;
    }
    if (a->ss_family == AF_INET) {
        memcpy(out, a, sizeof *in);
        return;
    }
    in->sin_family = AF_INET;
    in->sin_port = in6->sin6_port;
    memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
}

static bool same_client(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    struct sockaddr_storage ca, cb;

    canonical(a, &ca);
    canonical(b, &cb);
    return memcmp(&ca, &cb, sizeof ca) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_header h, again;
    uint8_t line[PROXY_HEADER_MAX];
    const char *why = NULL;
    size_t n;
    int rc = proxy_header_parse(data, size, &h, &why);

    check(why != NULL);
    if (rc < 0) {
        check(why[0] != '\0');
        return 0;
    }
    if (rc == 0) {
        check(size < PROXY_HEADER_MAX);
        return 0;
    }
    check((size_t)rc <= size && rc <= PROXY_HEADER_MAX && rc >= 2);
    check(data[rc - 2] == '\r' && data[rc - 1] == '\n');
    for (size_t len = 0; len < (size_t)rc; len++)
        check(proxy_header_parse(data, len, &again, &why) == 0);
    if (!h.known)
        return 0;
    check(h.src.ss_family == h.dst.ss_family);
    n = proxy_header_format((struct sockaddr *)&h.src, (struct sockaddr *)&h.dst, line);
    check(n <= PROXY_HEADER_MAX);
    check(proxy_header_parse(line, n, &again, &why) == (int)n);
    check(again.known);
    check(same_client(&again.src, &h.src) && same_client(&again.dst, &h.dst));
    return 0;
}
