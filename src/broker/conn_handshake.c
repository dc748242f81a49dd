/* The connection's handshake (src/broker/conn_internal.h): connection.start with the SASL
 * mechanisms offered, start-ok / secure-ok and the login, tune / tune-ok, open and its vhost
 * checks, and update-secret. conn.c's channel 0 dispatch calls it; it answers through
 * conn.c's output and errors. */
#include "src/broker/conn.h"
#include "src/broker/conn_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "src/base/config.h"
#include "src/base/util.h"
#include "src/base/version.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"
#include "src/security/tls.h"

/* The extensions Warren implements, as RabbitMQ advertises them in connection.start. */
static const char *const server_capabilities[] = {
    "publisher_confirms",     "exchange_exchange_bindings", "basic.nack",
    "consumer_cancel_notify", "connection.blocked",         "consumer_priorities",
    "authentication_failure_close", "per_consumer_qos",   "direct_reply_to",
};


static const char *const mechanism_names[] = {
    [CONFIG_AUTH_PLAIN] = "PLAIN",
    [CONFIG_AUTH_AMQPLAIN] = "AMQPLAIN",
    [CONFIG_AUTH_EXTERNAL] = "EXTERNAL",
    [CONFIG_AUTH_RABBIT_CR_DEMO] = "RABBIT-CR-DEMO",
};

/* EXTERNAL needs a verified client certificate to name the user. */
static bool external_possible(const struct conn *c)
{
    return c->tls != NULL && c->srv->cfg->ssl_verify_peer;
}

/* The mechanisms offered to c, in order: auth_mechanisms as configured, and EXTERNAL first on
 * TLS with verify_peer even when it is not listed (a certificate login needs no setting). */
static size_t offered_mechanisms(const struct conn *c, uint8_t *out)
{
    const struct config *cfg = c->srv->cfg;
    bool external_listed = false;
    size_t n = 0;

    for (size_t i = 0; i < cfg->auth_mechanism_count; i++)
        external_listed |= cfg->auth_mechanisms[i] == CONFIG_AUTH_EXTERNAL;
    if (external_possible(c) && !external_listed)
        out[n++] = CONFIG_AUTH_EXTERNAL;
    for (size_t i = 0; i < cfg->auth_mechanism_count; i++) {
        if (cfg->auth_mechanisms[i] != CONFIG_AUTH_EXTERNAL || external_possible(c))
            out[n++] = cfg->auth_mechanisms[i];
    }
    return n;
}

/* The offered mechanism called name, or 0. */
static uint8_t offered_mechanism(const struct conn *c, struct wire_bytes name)
{
    uint8_t offered[CONFIG_MAX_AUTH_MECHANISMS + 1];
    size_t n = offered_mechanisms(c, offered);

    for (size_t i = 0; i < n; i++) {
        if (wire_bytes_eq_cstr(name, mechanism_names[offered[i]]))
            return offered[i];
    }
    return 0;
}

void conn_send_start(struct conn *c)
{
    uint8_t props[1024], offered[CONFIG_MAX_AUTH_MECHANISMS + 1];
    char mechanisms[128] = "";
    size_t len = 0, n = offered_mechanisms(c, offered);
    struct wire_writer w = wire_writer_init(props, sizeof props);
    struct wire_connection_start m = {
        .version_major = 0,
        .version_minor = 9,
        .locales = WIRE_BYTES_C("en_US"),
    };

    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(mechanisms + len, sizeof mechanisms - len, "%s%s", i ? " " : "",
                                mechanism_names[offered[i]]);
    m.mechanisms = wire_cstr(mechanisms);
    size_t caps;

    wire_table_put_longstr(&w, "product", WIRE_BYTES_C("Warren"));
    /* The RabbitMQ version whose behaviour clients see; Warren's own under its own name. */
    wire_table_put_longstr(&w, "version", WIRE_BYTES_C(WARREN_RABBITMQ_VERSION));
    wire_table_put_longstr(&w, "warren_version", WIRE_BYTES_C(PACKAGE_VERSION));
    wire_table_put_longstr(&w, "platform", WIRE_BYTES_C("C/libev"));
    wire_table_put_longstr(&w, "copyright", WIRE_BYTES_C("Copyright (c) the Warren authors"));
    wire_table_put_longstr(&w, "information",
                           WIRE_BYTES_C("An AMQP 0-9-1 broker compatible with RabbitMQ clients"));
    wire_table_put_longstr(&w, "cluster_name", WIRE_BYTES_C("warren"));
    caps = wire_table_put_table_begin(&w, "capabilities");
    for (size_t i = 0; i < ARRAY_LEN(server_capabilities); i++)
        wire_table_put_bool(&w, server_capabilities[i], true);
    wire_table_end(&w, caps);
    assert(!wire_writer_overflowed(&w));
    m.server_properties.raw = (struct wire_bytes){.ptr = props, .len = wire_writer_used(&w)};
    conn_send_method(c, 0, WIRE_CONNECTION_START, &m);
    c->state = CONN_AWAIT_START_OK;
}

static void read_client_capabilities(struct conn *c, struct wire_table props)
{
    struct wire_field caps, v;

    if (!wire_table_find(props, "capabilities", &caps) || caps.type != 'F')
        return;
    if (wire_table_find(caps.v.table, "consumer_cancel_notify", &v) && v.type == 't')
        c->cap_consumer_cancel_notify = v.v.boolean;
    if (wire_table_find(caps.v.table, "authentication_failure_close", &v) && v.type == 't')
        c->cap_auth_failure_close = v.v.boolean;
    if (wire_table_find(caps.v.table, "connection.blocked", &v) && v.type == 't')
        c->cap_connection_blocked = v.v.boolean;
}

/* Splits a SASL response into user and password. PLAIN is "authzid\0user\0pass";
 * AMQPLAIN is table entries LOGIN and PASSWORD without the table's length. */
static bool sasl_credentials(struct wire_bytes mech, struct wire_bytes resp, struct wire_bytes *user,
                             struct wire_bytes *pass)
{
    if (wire_bytes_eq_cstr(mech, "PLAIN")) {
        const uint8_t *p = resp.ptr, *end = resp.ptr + resp.len;
        const uint8_t *nul1 = memchr(p, 0, resp.len), *nul2;
        if (nul1 == NULL)
            return false;
        nul2 = memchr(nul1 + 1, 0, (size_t)(end - nul1 - 1));
        if (nul2 == NULL)
            return false;
        *user = (struct wire_bytes){.ptr = nul1 + 1, .len = (size_t)(nul2 - nul1 - 1)};
        *pass = (struct wire_bytes){.ptr = nul2 + 1, .len = (size_t)(end - nul2 - 1)};
        return true;
    }
    if (wire_bytes_eq_cstr(mech, "AMQPLAIN")) {
        struct wire_table t = {.raw = resp};
        struct wire_field login, password;
        if (!wire_table_check(resp) || !wire_table_find(t, "LOGIN", &login) ||
            !wire_table_find(t, "PASSWORD", &password) || login.type != 'S' ||
            password.type != 'S')
            return false;
        *user = login.v.bytes;
        *pass = password.v.bytes;
        return true;
    }
    return false;
}

static int refuse_login(struct conn *c, struct wire_bytes mech, const char *why)
{
    char text[256];

    log_warn(&c->log, "login refused: %s", why);
    snprintf(text, sizeof text,
             "ACCESS_REFUSED - Login was refused using authentication mechanism %.*s. For "
             "details see the broker logfile.",
             (int)mech.len, (const char *)mech.ptr);
    /* Clients that do not announce authentication_failure_close just see the socket close,
     * as RabbitMQ does. */
    if (c->cap_auth_failure_close)
        conn_close_with(c, WIRE_ACCESS_REFUSED, text, 0);
    else
        conn_close_after_flush(c);
    return 0;
}

static void send_tune(struct conn *c)
{
    const struct config *cfg = c->srv->cfg;
    struct wire_connection_tune tune = {
        .channel_max = (uint16_t)(cfg->channel_max ? cfg->channel_max : 65535),
        .frame_max = cfg->frame_max,
        .heartbeat = (uint16_t)cfg->heartbeat_s,
    };

    conn_send_method(c, 0, WIRE_CONNECTION_TUNE, &tune);
    c->state = CONN_AWAIT_TUNE_OK;
}

/* The user (in c->log.user) said pass: tune, or refuse the login. */
static int login_with_password(struct conn *c, struct wire_bytes mech, struct wire_bytes pass)
{
    /* A follower that refuses clients takes any login, so that every client hears where the
     * leader is at connection.open: its user database may lag the leader's. */
    if (server_refuses_clients(c->srv, false, NULL, 0)) {
        send_tune(c);
        return 0;
    }
    if (!auth_check_password(c->srv->auth, wire_cstr(c->log.user), pass))
        return refuse_login(c, mech, "invalid credentials");
    if (!c->is_loopback && config_is_loopback_user(c->srv->cfg, c->log.user))
        return refuse_login(c, mech, "user can only connect via localhost");
    send_tune(c);
    return 0;
}

static int set_login_user(struct conn *c, struct wire_bytes mech, struct wire_bytes user)
{
    if (user.len >= sizeof c->log.user)
        return refuse_login(c, mech, "user name too long");
    snprintf(c->log.user, sizeof c->log.user, "%.*s", (int)user.len, (const char *)user.ptr);
    return 0;
}

/* RabbitMQ's RABBIT-CR-DEMO: the start-ok response is the user name, the server challenges
 * "Please tell me your password", and secure-ok answers "My password is <password>". */
static const char cr_demo_challenge[] = "Please tell me your password";
static const char cr_demo_prefix[] = "My password is ";

int conn_handle_start_ok(struct conn *c, const struct wire_connection_start_ok *m)
{
    const struct config *cfg = c->srv->cfg;
    struct wire_bytes user, pass;

    read_client_capabilities(c, m->client_properties);
    bytes_free(&c->client_properties);
    c->client_properties = bytes_dup(m->client_properties.raw);
    c->sasl_mechanism = offered_mechanism(c, m->mechanism);
    if (c->sasl_mechanism == 0) {
        bool known = false;
        for (size_t i = 1; i < ARRAY_LEN(mechanism_names); i++)
            known |= wire_bytes_eq_cstr(m->mechanism, mechanism_names[i]);
        /* RabbitMQ's two texts: a mechanism it has but does not offer here, or none. */
        return conn_failf(c, WIRE_COMMAND_INVALID, "%s authentication mechanism '%.*s'",
                    known ? "invalid" : "unknown", (int)m->mechanism.len,
                    (const char *)m->mechanism.ptr);
    }
    switch (c->sasl_mechanism) {
    case CONFIG_AUTH_EXTERNAL:
        /* The user is the client certificate's subject (ssl_cert_login_from), with no
         * password: the TLS handshake proved it. */
        if (!tls_conn_peer_identity(c->tls, (enum config_cert_login)cfg->ssl_cert_login_from,
                                    c->log.user, sizeof c->log.user))
            return refuse_login(c, m->mechanism, "no verified client certificate");
        if (auth_user_find(c->srv->auth, wire_cstr(c->log.user)) == NULL)
            return refuse_login(c, m->mechanism, "no user named by the client certificate");
        send_tune(c);
        return 0;
    case CONFIG_AUTH_RABBIT_CR_DEMO: {
        struct wire_connection_secure secure = {.challenge = WIRE_BYTES_C(cr_demo_challenge)};
        if (set_login_user(c, m->mechanism, m->response) != 0)
            return 0;
        conn_send_method(c, 0, WIRE_CONNECTION_SECURE, &secure);
        c->state = CONN_AWAIT_SECURE_OK;
        return 0;
    }
    default:
        break;
    }
    if (!sasl_credentials(m->mechanism, m->response, &user, &pass))
        return conn_failf(c, WIRE_ACCESS_REFUSED, "malformed %.*s response", (int)m->mechanism.len,
                    (const char *)m->mechanism.ptr);
    if (set_login_user(c, m->mechanism, user) != 0)
        return 0;
    return login_with_password(c, m->mechanism, pass);
}

int conn_handle_secure_ok(struct conn *c, const struct wire_connection_secure_ok *m)
{
    const struct wire_bytes mech = WIRE_BYTES_C("RABBIT-CR-DEMO");
    const size_t prefix = sizeof cr_demo_prefix - 1;

    if (m->response.len < prefix || memcmp(m->response.ptr, cr_demo_prefix, prefix) != 0)
        return refuse_login(c, mech, "invalid RABBIT-CR-DEMO response");
    return login_with_password(
        c, mech, (struct wire_bytes){.ptr = m->response.ptr + prefix, .len = m->response.len - prefix});
}

int conn_handle_tune_ok(struct conn *c, const struct wire_connection_tune_ok *m)
{
    const struct config *cfg = c->srv->cfg;
    uint32_t server_channel_max = cfg->channel_max ? cfg->channel_max : 65535;

    /* As RabbitMQ: 0 takes the server's value; more than the server offered, or a frame_max
     * below the spec's minimum, is refused. */
    if (m->frame_max != 0 && m->frame_max < WIRE_FRAME_MIN_SIZE)
        return conn_failf(c, WIRE_NOT_ALLOWED, "frame_max=%u < %u min size", m->frame_max,
                    WIRE_FRAME_MIN_SIZE);
    if (m->frame_max > cfg->frame_max)
        return conn_failf(c, WIRE_NOT_ALLOWED, "frame_max=%u > %u max size", m->frame_max,
                    cfg->frame_max);
    if (m->channel_max > server_channel_max)
        return conn_failf(c, WIRE_NOT_ALLOWED, "channel_max=%u > %u max size", m->channel_max,
                    server_channel_max);
    c->frame_max = m->frame_max ? m->frame_max : cfg->frame_max;
    c->channel_max = (uint16_t)(m->channel_max ? m->channel_max : server_channel_max);
    c->heartbeat_s = m->heartbeat;
    c->state = CONN_AWAIT_OPEN;
    return 0;
}

int conn_handle_open(struct conn *c, const struct wire_connection_open *m)
{
    struct vhost *vh;
    char refusal[SERVER_URL_MAX + 64];

    /* A follower in refuse mode serves nothing: no vhost is looked at, no channel can open
     * (src/broker/server.h). */
    if (server_refuses_clients(c->srv, false, refusal, sizeof refusal))
        return conn_failf(c, WIRE_NOT_ALLOWED, "%s", refusal);
    vh = server_vhost_find(c->srv, m->virtual_host);
    if (vh == NULL)
        return conn_failf(c, WIRE_NOT_ALLOWED, "vhost %.*s not found", (int)m->virtual_host.len,
                    (const char *)m->virtual_host.ptr);
    if (!auth_vhost_access(c->srv->auth, wire_cstr(c->log.user), vh->name)) {
        char text[600];
        auth_vhost_refusal_text(text, sizeof text, vh->name, wire_cstr(c->log.user));
        return conn_failf(c, WIRE_NOT_ALLOWED, "%s", text);
    }
    {
        const struct auth_vhost *av = auth_vhost_find(c->srv->auth, vh->name);
        const struct auth_user *au = auth_user_find(c->srv->auth, wire_cstr(c->log.user));
        if (av != NULL && av->max_connections >= 0 &&
            vh->connection_count >= (uint64_t)av->max_connections)
            return conn_failf(c, WIRE_NOT_ALLOWED,
                        "access to vhost '%.*s' refused for user '%s': connection limit (%lld) "
                        "is reached",
                        (int)vh->name.len, (const char *)vh->name.ptr, c->log.user,
                        (long long)av->max_connections);
        if (au != NULL && au->max_connections >= 0 &&
            server_user_connections(c->srv, c->log.user) >= (uint64_t)au->max_connections)
            return conn_failf(c, WIRE_NOT_ALLOWED,
                        "connection refused for user '%s': user connection limit (%lld) is "
                        "reached",
                        c->log.user, (long long)au->max_connections);
    }
    c->vhost = vh;
    vh->connection_count++;
    c->counted_in_vhost = true;
    snprintf(c->log.vhost, sizeof c->log.vhost, "%.*s", (int)vh->name.len,
             (const char *)vh->name.ptr);
    conn_send_method(c, 0, WIRE_CONNECTION_OPEN_OK, &(struct wire_connection_open_ok){0});
    c->state = CONN_OPEN;
    c->deadline_ms = 0;
    log_info(&c->log, "connection opened (frame_max %u, channel_max %u, heartbeat %us)",
             c->frame_max, c->channel_max, c->heartbeat_s);
    if (c->fd >= 0) {
        ev_timer_stop(c->srv->loop, &c->timer);
        if (c->heartbeat_s > 0) {
            ev_timer_set(&c->timer, c->heartbeat_s / 2.0, c->heartbeat_s / 2.0);
            ev_timer_start(c->srv->loop, &c->timer);
        }
    }
    return 0;
}

/* connection.update-secret: the client replaces its credential (an expiring token, in
 * RabbitMQ's OAuth setups). Like RabbitMQ's internal user database, which has no tokens,
 * Warren re-checks that the user still exists and accepts the secret. */
int conn_handle_update_secret(struct conn *c, const struct wire_connection_update_secret *m)
{
    if (auth_user_find(c->srv->auth, wire_cstr(c->log.user)) == NULL)
        return conn_failf(c, WIRE_ACCESS_REFUSED, "user '%s' no longer exists", c->log.user);
    log_info(&c->log, "secret updated: %.*s", (int)m->reason.len, (const char *)m->reason.ptr);
    conn_send_method(c, 0, WIRE_CONNECTION_UPDATE_SECRET_OK,
                     &(struct wire_connection_update_secret_ok){0});
    return 0;
}
