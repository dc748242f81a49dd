/* The management API: RabbitMQ's health checks beyond alarms (those are in mgmt_users.c).
 * Each answers 200 {"status": "ok", ...} or 503 {"status": "failed", "reason": ...}, with
 * RabbitMQ 3.10's fields, so that Kubernetes probes and monitoring written for RabbitMQ read
 * them. Any management user may ask, as in RabbitMQ.
 *
 *   certificate-expiration/WITHIN/UNIT  503 listing the TLS listeners whose certificate or
 *                                       CA file holds a certificate that expires within
 *                                       WITHIN days, weeks, months (365/12 days) or years
 *   port-listener/PORT                  503 when no listener has the port
 *   protocol-listener/PROTOCOL          amqp (amqp091, amqp0-9-1, ...), amqp/ssl (amqps),
 *                                       http (management), http/prometheus; 503 otherwise
 *   virtual-hosts                       every vhost is up: always, Warren's cannot fail alone
 *   node-is-quorum-critical             one node: always ok, "single node cluster"
 *   node-is-mirror-sync-critical        the same */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <ctype.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/server.h"

#define DAY_S 86400.0

/* {"status": ..., "reason": ..., then the fields of o}, RabbitMQ's order. Takes o. */
static json_t *with_status(const char *status, const char *reason, json_t *o)
{
    json_t *out = json_pack("{s:s}", "status", status);

    if (reason != NULL)
        json_object_set_new(out, "reason", json_string(reason));
    json_object_update(out, o);
    json_decref(o);
    return out;
}

static enum MHD_Result respond_ok(struct mgmt_call *c, json_t *o)
{
    return mgmt_respond_json(c, MHD_HTTP_OK, with_status("ok", NULL, o));
}

static enum MHD_Result respond_failed(struct mgmt_call *c, const char *reason, json_t *o)
{
    return mgmt_respond_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, with_status("failed", reason, o));
}

/* A decimal integer filling the segment, as Erlang's binary_to_integer reads one. */
static bool segment_integer(struct wire_bytes seg, long long *out)
{
    char text[64], *end;

    if (seg.len == 0 || seg.len >= sizeof text)
        return false;
    memcpy(text, seg.ptr, seg.len);
    text[seg.len] = '\0';
    if (!isdigit((unsigned char)text[0]) && !(text[0] == '-' || text[0] == '+'))
        return false;
    /* Erlang's integers have no bound: one past long long's is taken as its largest (or
     * smallest), which strtoll returns then; no certificate or port tells them apart. */
    *out = strtoll(text, &end, 10);
    return *end == '\0';
}

/* ---- Listeners ------------------------------------------------------------------------- */

/* The listeners as mgmt_json_listeners lists them: protocol and port of each. */
static void add_unique(json_t *arr, json_t *v)
{
    size_t i;
    json_t *e;

    json_array_foreach(arr, i, e)
    {
        if (json_equal(e, v)) {
            json_decref(v);
            return;
        }
    }
    json_array_append_new(arr, v);
}

static json_t *listener_field(const struct mgmt_call *c, const char *field)
{
    json_t *listeners = mgmt_json_listeners(&c->m->ctx), *out = json_array(), *l;
    size_t i;

    json_array_foreach(listeners, i, l)
    {
        add_unique(out, json_incref(json_object_get(l, field)));
    }
    json_decref(listeners);
    return out;
}

static bool array_has(const json_t *arr, const json_t *v)
{
    size_t i;
    json_t *e;

    json_array_foreach(arr, i, e)
    {
        if (json_equal(e, v))
            return true;
    }
    return false;
}

enum MHD_Result mgmt_api_health_port(struct mgmt_call *c)
{
    json_t *ports, *want;
    long long port;

    if (!segment_integer(c->seg[3], &port))
        return mgmt_bad_request(c, "Invalid port");
    ports = listener_field(c, "port");
    want = json_integer(port);
    if (array_has(ports, want)) {
        json_decref(ports);
        return respond_ok(c, json_pack("{s:o}", "port", want));
    }
    return respond_failed(c, "No active listener",
                          json_pack("{s:o,s:o}", "missing", want, "ports", ports));
}

/* RabbitMQ's other names of the protocols Warren serves; any other name is itself,
 * lowercased. */
static void normalize_protocol(struct wire_bytes seg, char *out, size_t size)
{
    static const struct {
        const char *alias, *protocol;
    } aliases[] = {
        {"amqp091", "amqp"},
        {"amqp0.9.1", "amqp"},
        {"amqp0-9-1", "amqp"},
        {"amqp0_9_1", "amqp"},
        {"amqps", "amqp/ssl"},
        {"http1", "http"},
        {"http1.1", "http"},
        {"http_api", "http"},
        {"management", "http"},
        {"management_ui", "http"},
        {"ui", "http"},
        {"cli", "clustering"},
        {"distribution", "clustering"},
    };
    size_t n = seg.len < size - 1 ? seg.len : size - 1;

    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower(seg.ptr[i]);
    out[n] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(aliases); i++) {
        if (strcmp(out, aliases[i].alias) == 0) {
            snprintf(out, size, "%s", aliases[i].protocol);
            return;
        }
    }
}

enum MHD_Result mgmt_api_health_protocol(struct mgmt_call *c)
{
    char protocol[256];
    json_t *protocols, *want;

    normalize_protocol(c->seg[3], protocol, sizeof protocol);
    protocols = listener_field(c, "protocol");
    want = mgmt_json_bytes(wire_cstr(protocol));
    if (array_has(protocols, want)) {
        json_decref(protocols);
        return respond_ok(c, json_pack("{s:o}", "protocol", want));
    }
    return respond_failed(c, "No active listener",
                          json_pack("{s:o,s:o}", "missing", want, "protocols", protocols));
}

/* ---- Certificates ---------------------------------------------------------------------- */

/* "2027-01-05 9:03:07": RabbitMQ's format (~w-~2.2.0w-~2.2.0w ~w:~2.2.0w:~2.2.0w, UTC). */
static json_t *expiry_json(const struct tm *t)
{
    char text[64];

    snprintf(text, sizeof text, "%d-%02d-%02d %d:%02d:%02d", t->tm_year + 1900, t->tm_mon + 1,
             t->tm_mday, t->tm_hour, t->tm_min, t->tm_sec);
    return json_string(text);
}

/* The certificates of a PEM file that expire before deadline (or are not valid yet), as
 * RabbitMQ lists them; [] for no file. A file that cannot be read or holds no certificate is
 * reported in the list ("error: ..."), so that the check fails rather than pass unseen. */
static json_t *expiring_in_file(const char *path, time_t now, time_t deadline)
{
    json_t *out = json_array();
    BIO *bio;
    X509 *cert;
    size_t certs = 0;

    if (path[0] == '\0')
        return out;
    if ((bio = BIO_new_file(path, "r")) == NULL) {
        char text[600];
        snprintf(text, sizeof text, "error: cannot read %s", path);
        json_array_append_new(out, json_string(text));
        ERR_clear_error();
        return out;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        struct tm not_after, not_before;
        certs++;
        if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &not_before) == 1 &&
            timegm(&not_before) > now)
            json_array_append_new(out, json_string("error: Certificate is not yet valid"));
        else if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &not_after) == 1 &&
                 timegm(&not_after) < deadline)
            json_array_append_new(out, expiry_json(&not_after));
        X509_free(cert);
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    if (certs == 0)
        json_array_append_new(
            out,
            json_string("error: The certificate file provided does not contain any PEM entry."));
    return out;
}

enum MHD_Result mgmt_api_health_certificates(struct mgmt_call *c)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = {
        {"days", DAY_S},
        {"weeks", 7 * DAY_S},
        {"months", DAY_S * 365 / 12},
        {"years", DAY_S * 365},
    };
    const struct server *s = c->m->srv;
    const struct config *cfg = s->cfg;
    char unit[16] = "";
    double seconds = 0;
    bool known_unit = false;
    long long within;
    time_t now = time(NULL), deadline;
    json_t *expired;

    if (!segment_integer(c->seg[3], &within))
        return mgmt_bad_request(c, "Invalid expiration value.");
    for (size_t i = 0; i < c->seg[4].len && i + 1 < sizeof unit; i++)
        unit[i] = (char)tolower(c->seg[4].ptr[i]);
    for (size_t i = 0; i < ARRAY_LEN(units); i++) {
        if (c->seg[4].len < sizeof unit && strcmp(unit, units[i].unit) == 0) {
            seconds = (double)within * units[i].seconds;
            known_unit = true;
        }
    }
    if (!known_unit)
        return mgmt_bad_request(
            c, "Time unit not recognised. Supported units: days, weeks, months, years.");
    /* Centuries either way cover every certificate, and keep the sum in time_t's range. */
    if (seconds > 1e12)
        seconds = 1e12;
    else if (seconds < -1e12)
        seconds = -1e12;
    deadline = now + (time_t)seconds;
    expired = json_array();
    for (size_t i = 0; i < s->listener_count; i++) {
        json_t *cert, *ca;
        const char *colon;
        char host[96];
        if (!s->listeners[i].tls)
            continue;
        cert = expiring_in_file(cfg->ssl_certfile, now, deadline);
        ca = expiring_in_file(cfg->ssl_cacertfile, now, deadline);
        if (json_array_size(cert) == 0 && json_array_size(ca) == 0) {
            json_decref(cert);
            json_decref(ca);
            continue;
        }
        /* "[::]:5671" or "0.0.0.0:5671": the interface without brackets, and the port. */
        colon = strrchr(s->listeners[i].address, ':');
        snprintf(host, sizeof host, "%.*s",
                 colon != NULL ? (int)(colon - s->listeners[i].address) : 0,
                 s->listeners[i].address);
        if (host[0] == '[') {
            memmove(host, host + 1, strlen(host));
            host[strcspn(host, "]")] = '\0';
        }
        json_array_append_new(expired,
                              json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o,s:o}", "node", c->m->ctx.node,
                                        "protocol", "amqp/ssl", "interface", host, "port",
                                        colon != NULL ? atoi(colon + 1) : 0, "certfile",
                                        cfg->ssl_certfile, "cacertfile", cfg->ssl_cacertfile,
                                        "certfile_expires_on", cert, "cacertfile_expires_on", ca));
    }
    if (json_array_size(expired) == 0) {
        json_decref(expired);
        return respond_ok(c, json_object());
    }
    return respond_failed(c, "Certificates expiring", json_pack("{s:o}", "expired", expired));
}

/* ---- The rest -------------------------------------------------------------------------- */

enum MHD_Result mgmt_api_health_virtual_hosts(struct mgmt_call *c)
{
    return respond_ok(c, json_object());
}

/* Quorum queues and mirrored classic queues need other nodes; a single node never makes one
 * critical by going down. */
enum MHD_Result mgmt_api_health_single_node(struct mgmt_call *c)
{
    return mgmt_respond_json(c, MHD_HTTP_OK,
                             with_status("ok", "single node cluster", json_object()));
}
