#include "src/cluster/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "amqp/wire.h"

static const char magic[] = "PROXY "; /* "PROXY" and exactly one space */
#define MAGIC_LEN     (sizeof magic - 1)
#define IPV6_TEXT_MAX 39 /* eight groups of four hex digits and seven colons */

static bool is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

/* The next byte, if there is one and it is a digit. */
static bool read_digit(struct wire_reader *r, unsigned *digit)
{
    uint8_t ch;

    if (wire_left(r) == 0 || !is_digit(r->pos[0]))
        return false;
    wire_u8(r, &ch);
    *digit = (unsigned)(ch - '0');
    return true;
}

/* A decimal number up to max. The spec forbids leading zeros ("to avoid any possible
 * confusion with octal numbers"): "0" is a number, "07" is not. */
static bool read_decimal(struct wire_reader *r, unsigned max, unsigned *out)
{
    unsigned v, digit;

    if (!read_digit(r, &v))
        return false;
    if (v == 0) {
        *out = 0;
        return wire_left(r) == 0 || !is_digit(r->pos[0]);
    }
    while (read_digit(r, &digit)) {
        v = v * 10 + digit;
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static bool read_byte(struct wire_reader *r, uint8_t want)
{
    uint8_t ch;

    return wire_u8(r, &ch) && ch == want;
}

/* The next field of the line: its bytes up to a space or the end of the line, and the space
 * after it (*spaced tells whether there was one). Empty fields (two spaces in a row) are
 * refused: the spec wants exactly one space between fields. */
static bool next_field(struct wire_reader *line, struct wire_reader *field, bool *spaced)
{
    const uint8_t *space = memchr(line->pos, ' ', wire_left(line));
    size_t n = space != NULL ? (size_t)(space - line->pos) : wire_left(line);

    if (n == 0 || !wire_sub(line, n, field))
        return false;
    *spaced = space != NULL && read_byte(line, ' ');
    return true;
}

static bool field_is(struct wire_reader f, const char *word)
{
    return wire_bytes_eq_cstr((struct wire_bytes){.ptr = f.pos, .len = wire_left(&f)}, word);
}

/* Four decimal octets separated by dots, and nothing else. */
static bool parse_ipv4(struct wire_reader f, struct sockaddr_in *out)
{
    uint8_t octets[4];

    for (size_t i = 0; i < sizeof octets; i++) {
        unsigned v;
        if ((i > 0 && !read_byte(&f, '.')) || !read_decimal(&f, 255, &v))
            return false;
        octets[i] = (uint8_t)v;
    }
    if (wire_left(&f) != 0)
        return false;
    out->sin_family = AF_INET;
    memcpy(&out->sin_addr, octets, sizeof octets);
    return true;
}

/* Hexadecimal groups separated by colons, with at most one "::" (inet_pton checks the
 * groups); the dotted IPv4 tail inet_pton would also take is not part of the spec's form. */
static bool parse_ipv6(struct wire_reader f, struct sockaddr_in6 *out)
{
    char text[IPV6_TEXT_MAX + 1];
    size_t n = wire_left(&f);

    if (n < 2 || n > IPV6_TEXT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = f.pos[i];
        bool hex = is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (!hex && ch != ':')
            return false;
    }
    memcpy(text, f.pos, n);
    text[n] = '\0';
    out->sin6_family = AF_INET6;
    return inet_pton(AF_INET6, text, &out->sin6_addr) == 1;
}

static bool parse_port(struct wire_reader f, uint16_t *port)
{
    unsigned v;

    if (!read_decimal(&f, 65535, &v) || wire_left(&f) != 0)
        return false;
    *port = htons((uint16_t)v);
    return true;
}

/* The line between "PROXY " and the CRLF. */
static int parse_line(struct wire_reader line, struct proxy_header *out, const char **why)
{
    struct wire_reader proto, src, dst, sport, dport;
    bool v6, spaced = false;

    memset(out, 0, sizeof *out);
    if (!next_field(&line, &proto, &spaced)) {
        *why = "no protocol after PROXY";
        return -1;
    }
    if (field_is(proto, "UNKNOWN"))
        return 0; /* whatever follows is ignored, as the spec says */
    if (field_is(proto, "TCP4"))
        v6 = false;
    else if (field_is(proto, "TCP6"))
        v6 = true;
    else {
        *why = "protocol is not TCP4, TCP6 or UNKNOWN";
        return -1;
    }
    if (!spaced || !next_field(&line, &src, &spaced) || !spaced ||
        !next_field(&line, &dst, &spaced) || !spaced || !next_field(&line, &sport, &spaced) ||
        !spaced || !next_field(&line, &dport, &spaced) || spaced) {
        *why = "expected two addresses and two ports separated by single spaces";
        return -1;
    }
    if (v6 ? !parse_ipv6(src, (struct sockaddr_in6 *)&out->src) ||
                 !parse_ipv6(dst, (struct sockaddr_in6 *)&out->dst)
           : !parse_ipv4(src, (struct sockaddr_in *)&out->src) ||
                 !parse_ipv4(dst, (struct sockaddr_in *)&out->dst)) {
        *why = v6 ? "bad IPv6 address" : "bad IPv4 address";
        return -1;
    }
    if (!parse_port(sport, v6 ? &((struct sockaddr_in6 *)&out->src)->sin6_port
                              : &((struct sockaddr_in *)&out->src)->sin_port) ||
        !parse_port(dport, v6 ? &((struct sockaddr_in6 *)&out->dst)->sin6_port
                              : &((struct sockaddr_in *)&out->dst)->sin_port)) {
        *why = "bad port";
        return -1;
    }
    out->known = true;
    return 0;
}

int proxy_header_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why)
{
    size_t n = len < PROXY_HEADER_MAX ? len : PROXY_HEADER_MAX;
    size_t prefix = n < MAGIC_LEN ? n : MAGIC_LEN;
    struct wire_reader r = wire_reader_init(buf, n), line;
    struct wire_bytes skip;

    *why = "";
    if (len == 0)
        return 0;
    if (memcmp(buf, magic, prefix) != 0) {
        *why = "does not start with \"PROXY \"";
        return -1;
    }
    /* The spec: wait for the CRLF before decoding anything, within 107 bytes; a CR or LF
     * alone is not an end of line. */
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\r' && i + 1 < n && buf[i + 1] != '\n') {
            *why = "carriage return without a line feed";
            return -1;
        }
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r') {
            *why = "line feed without a carriage return";
            return -1;
        }
        /* The magic has no CR or LF: the line (without its CRLF) is longer than it. */
        if (!wire_sub(&r, i - 1, &line) || !wire_bytes(&line, MAGIC_LEN, &skip) ||
            parse_line(line, out, why) != 0)
            return -1;
        return (int)(i + 1);
    }
    if (len >= PROXY_HEADER_MAX) {
        *why = "no CRLF within 107 bytes";
        return -1;
    }
    return 0;
}

/* addr as AF_INET or AF_INET6, an IPv4-mapped IPv6 address as AF_INET. False for any other
 * family. */
static bool normalize(const struct sockaddr *addr, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (addr == NULL)
        return false;
    if (addr->sa_family == AF_INET) {
        memcpy(out, addr, sizeof(struct sockaddr_in));
        return true;
    }
    if (addr->sa_family != AF_INET6)
        return false;
    {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(out, addr, sizeof(struct sockaddr_in6));
            return true;
        }
        in->sin_family = AF_INET;
        in->sin_port = in6->sin6_port;
        memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
        return true;
    }
}

/* An IPv6 address as RFC 5952 writes it (lowercase hex groups, the longest run of two or more
 * zero groups as "::"), never with the dotted IPv4 tail inet_ntop() uses for some addresses
 * (::ffff:0:0/96, ::/96), which the spec's form does not have. out: 40 bytes. */
static void format_ipv6(const struct in6_addr *a, char *out)
{
    unsigned groups[8];
    int best = -1, best_len = 1, len = 0;
    size_t n = 0;

    for (int i = 0; i < 8; i++)
        groups[i] = (unsigned)a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
    for (int i = 0; i < 8; i++) {
        len = groups[i] == 0 ? len + 1 : 0;
        if (len > best_len) {
            best_len = len;
            best = i - len + 1;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            n += (size_t)snprintf(out + n, 40 - n, "::");
            i += best_len - 1;
            continue;
        }
        n += (size_t)snprintf(out + n, 40 - n, "%s%x", n > 0 && out[n - 1] != ':' ? ":" : "",
                              groups[i]);
    }
    out[n] = '\0';
}

static unsigned port_of(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)a)->sin_port)
                                   : ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

static const void *addr_of(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
                                   : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
}

size_t proxy_header_format(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out)
{
    static const char unknown[] = "PROXY UNKNOWN\r\n";
    struct sockaddr_storage s, d;
    char src_text[INET6_ADDRSTRLEN], dst_text[INET6_ADDRSTRLEN], line[PROXY_HEADER_MAX + 1];
    int n;

    if (!normalize(src, &s) || !normalize(dst, &d)) {
        memcpy(out, unknown, sizeof unknown - 1);
        return sizeof unknown - 1;
    }
    /* A mapped address beside a true IPv6 one stays IPv6: TCP6 can say both. */
    if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6 && s.ss_family != d.ss_family) {
        memcpy(&s, src, sizeof(struct sockaddr_in6));
        memcpy(&d, dst, sizeof(struct sockaddr_in6));
    }
    if (s.ss_family != d.ss_family) {
        memcpy(out, unknown, sizeof unknown - 1);
        return sizeof unknown - 1;
    }
    if (s.ss_family == AF_INET) {
        inet_ntop(AF_INET, addr_of(&s), src_text, sizeof src_text);
        inet_ntop(AF_INET, addr_of(&d), dst_text, sizeof dst_text);
    } else {
        format_ipv6(addr_of(&s), src_text);
        format_ipv6(addr_of(&d), dst_text);
    }
    /* At most 104 bytes: two 39-character IPv6 addresses and two 5-digit ports. */
    n = snprintf(line, sizeof line, "PROXY %s %s %s %u %u\r\n",
                 s.ss_family == AF_INET ? "TCP4" : "TCP6", src_text, dst_text, port_of(&s),
                 port_of(&d));
    if (n < 0 || (size_t)n >= sizeof line) {
        memcpy(out, unknown, sizeof unknown - 1);
        return sizeof unknown - 1;
    }
    memcpy(out, line, (size_t)n);
    return (size_t)n;
}
