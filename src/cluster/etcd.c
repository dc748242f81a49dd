/* The etcd client: libcurl's multi-socket API on a libev loop (curl tells which sockets to
 * watch and when to wake it; the loop tells curl what became ready), requests as JSON
 * POSTs, answers parsed by etcd_json.c.
 *
 * Re-entrancy: libcurl forbids touching the multi handle from its own callbacks, and the
 * users of this client start and cancel requests from theirs. So libcurl's write callback
 * only buffers bytes; answers and stream lines are parsed and delivered after
 * curl_multi_socket_action() returns, from the loop's callback. Requests canceled while a
 * loop callback of the client runs are freed when it ends (depth), so no pointer held by a
 * delivery loop dangles. */
#include "src/cluster/etcd.h"

#include <curl/curl.h>
#include <ev.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/etcd_internal.h"

#define DEFAULT_TIMEOUT_MS    1000
#define WATCH_RETRY_FIRST_MS  50
#define WATCH_RETRY_MAX_MS    1000
#define TCP_KEEPALIVE_IDLE_S  5
#define TCP_KEEPALIVE_INTVL_S 2

struct etcd_req {
    struct etcd_client *c;
    struct etcd_req *prev, *next; /* c->reqs, or c->dead once canceled */
    enum etcd_call call;
    char *body; /* the JSON posted */
    etcd_cb *cb;
    void *arg;
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    bool in_multi;
    bool canceled;
    bool internal;        /* the client's own authentication request */
    bool waiting_auth;    /* held until a token arrives */
    bool reauthed;        /* sent again once already after "invalid auth token" */
    bool over;            /* a stream that reported its end; waits for etcd_cancel */
    bool no_timeout;      /* campaign */
    uint64_t deadline_ms; /* unary: absolute, monotonic */
    size_t endpoint;      /* of the current attempt */
    size_t attempts;      /* endpoints tried for this request (unary) or in a row (stream) */
    struct etcd_lines in; /* answer bytes, or stream lines */
    bool has_lines;       /* queued in c->pending */
    ev_timer timer;       /* deferred failure, or a watch's pause before it is reopened */
    int deferred_err;
    const char *deferred_msg;
    /* watch */
    uint8_t *wkey, *wend;
    size_t wkey_len, wend_len;
    int wflags;
    int64_t next_rev; /* first revision not yet delivered (0 = from now) */
    unsigned retry_ms;
    bool reopened; /* the user saw "created" already */
};

struct etcd_client {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer curl_timer;
    char **endpoints;
    size_t n_endpoints;
    size_t current;
    unsigned timeout_ms;
    char *username, *password;
    char *tls_ca, *tls_cert, *tls_key;
    char *source_address;
    char *token;
    struct etcd_req *auth_req;
    struct etcd_req *reqs;     /* live */
    struct etcd_req *dead;     /* canceled while a callback ran; freed when it ends */
    struct etcd_req **pending; /* streams with unread lines */
    size_t n_pending, cap_pending;
    int depth; /* loop callbacks of this client on the stack */
    bool free_pending;
};

struct sock {
    ev_io io;
    struct etcd_client *c;
    curl_socket_t fd;
};

static void submit(struct etcd_req *r);
static void dispatch(struct etcd_client *c);
static void start_auth(struct etcd_client *c);

/* ---- Requests' lifetime -------------------------------------------------------------------- */

static void list_remove(struct etcd_req **head, struct etcd_req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void list_push(struct etcd_req **head, struct etcd_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head != NULL)
        (*head)->prev = r;
    *head = r;
}

static void detach(struct etcd_req *r)
{
    if (r->in_multi) {
        curl_multi_remove_handle(r->c->multi, r->easy);
        r->in_multi = false;
    }
    ev_timer_stop(r->c->loop, &r->timer);
}

static void req_free(struct etcd_req *r)
{
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    etcd_lines_free(&r->in);
    free(r->body);
    free(r->wkey);
    free(r->wend);
    free(r);
}

/* Ends r: no callback after this. Freed now, or when the loop callback on the stack ends. */
static void req_end(struct etcd_req *r)
{
    struct etcd_client *c = r->c;

    if (r->canceled)
        return;
    r->canceled = true;
    detach(r);
    if (c->auth_req == r)
        c->auth_req = NULL;
    list_remove(&c->reqs, r);
    if (c->depth > 0)
        list_push(&c->dead, r);
    else
        req_free(r);
}

void etcd_cancel(struct etcd_req *r)
{
    if (r != NULL)
        req_end(r);
}

static void destroy(struct etcd_client *c)
{
    size_t i;

    while (c->reqs != NULL)
        req_end(c->reqs);
    while (c->dead != NULL) {
        struct etcd_req *r = c->dead;

        list_remove(&c->dead, r);
        req_free(r);
    }
    ev_timer_stop(c->loop, &c->curl_timer);
    curl_multi_cleanup(c->multi); /* after the easy handles left it: closes the sockets */
    for (i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c->username);
    free(c->password);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->source_address);
    free(c->token);
    free(c->pending);
    free(c);
}

/* Every loop callback of the client is bracketed by enter/leave. */
static void enter(struct etcd_client *c)
{
    c->depth++;
}

static void leave(struct etcd_client *c)
{
    if (--c->depth > 0)
        return;
    while (c->dead != NULL) {
        struct etcd_req *r = c->dead;

        list_remove(&c->dead, r);
        req_free(r);
    }
    if (c->free_pending)
        destroy(c);
}

void etcd_free(struct etcd_client *c)
{
    if (c == NULL)
        return;
    if (c->depth > 0) {
        c->free_pending = true;
        while (c->reqs != NULL)
            req_end(c->reqs);
        return;
    }
    destroy(c);
}

const char *etcd_current_endpoint(const struct etcd_client *c)
{
    return c->endpoints[c->current];
}

/* ---- libcurl <-> libev ------------------------------------------------------------------- */

static void on_socket_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sock *s = container_of(w, struct sock, io);
    struct etcd_client *c = s->c;
    int action =
        (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;

    (void)loop;
    enter(c);
    curl_multi_socket_action(c->multi, s->fd, action, &running); /* may free s */
    dispatch(c);
    leave(c);
}

static void on_curl_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_client *c = container_of(w, struct etcd_client, curl_timer);
    int running;

    (void)loop;
    (void)revents;
    enter(c);
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    dispatch(c);
    leave(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl waits for, or stop watching it. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct etcd_client *c = userp;
    struct sock *s = socketp;
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            ev_io_stop(c->loop, &s->io);
            free(s);
        }
        curl_multi_assign(c->multi, fd, NULL);
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->c = c;
        s->fd = fd;
        ev_io_init(&s->io, on_socket_ready, fd, events);
        curl_multi_assign(c->multi, fd, s);
    } else {
        ev_io_stop(c->loop, &s->io);
        ev_io_set(&s->io, fd, events);
    }
    ev_io_start(c->loop, &s->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle; -1 = none. */
static int on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    struct etcd_client *c = userp;

    (void)multi;
    ev_timer_stop(c->loop, &c->curl_timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&c->curl_timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(c->loop, &c->curl_timer);
    }
    return 0;
}

/* CURLOPT_WRITEFUNCTION: bytes of the answer, kept for dispatch(). */
static size_t on_curl_write(char *data, size_t size, size_t n, void *userp)
{
    struct etcd_req *r = userp;
    struct etcd_client *c = r->c;
    size_t len = size * n;

    if (r->canceled || !etcd_lines_append(&r->in, data, len))
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    if ((r->call == ETCD_CALL_WATCH || r->call == ETCD_CALL_OBSERVE) && !r->has_lines) {
        if (c->n_pending == c->cap_pending) {
            c->cap_pending = c->cap_pending ? 2 * c->cap_pending : 8;
            c->pending = xrealloc(c->pending, c->cap_pending * sizeof(*c->pending));
        }
        c->pending[c->n_pending++] = r;
        r->has_lines = true;
    }
    return len;
}

/* ---- Sending --------------------------------------------------------------------------------- */

static bool is_stream(const struct etcd_req *r)
{
    return r->call == ETCD_CALL_WATCH || r->call == ETCD_CALL_OBSERVE;
}

static void rotate_from(struct etcd_client *c, size_t failed)
{
    if (c->current == failed && c->n_endpoints > 1) {
        c->current = (c->current + 1) % c->n_endpoints;
        log_info(NULL, "etcd: %s failed, using %s", c->endpoints[failed], c->endpoints[c->current]);
    }
}

static void build_headers(struct etcd_req *r)
{
    struct etcd_client *c = r->c;

    curl_slist_free_all(r->headers);
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* Without it a member cut off from its quorum holds the request (and a watch stays
     * silently open forever); with it, it answers "etcdserver: no leader" at once. */
    r->headers = curl_slist_append(r->headers, "Grpc-Metadata-Hasleader: true");
    r->headers = curl_slist_append(r->headers, "Expect:");
    if (c->token != NULL && !r->internal) {
        size_t n = strlen(c->token) + 32;
        char *h = xmalloc(n);

        snprintf(h, n, "Authorization: %s", c->token);
        r->headers = curl_slist_append(r->headers, h);
        free(h);
    }
    if (r->headers == NULL) {
        log_error(NULL, "etcd: out of memory building headers");
        abort();
    }
}

static void fail_later(struct etcd_req *r, int err, const char *message);

/* Sends r (again) to the current endpoint. */
static void submit(struct etcd_req *r)
{
    struct etcd_client *c = r->c;
    const char *path = etcd_call_path(r->call);
    char url[1024];
    CURLMcode mc;

    if (c->username != NULL && c->token == NULL && !r->internal) {
        r->waiting_auth = true;
        start_auth(c);
        return;
    }
    r->waiting_auth = false;
    if (r->easy == NULL) {
        r->easy = curl_easy_init();
        if (r->easy == NULL) {
            fail_later(r, ETCD_E_TRANSPORT, "curl_easy_init failed");
            return;
        }
    }
    build_headers(r);
    etcd_lines_free(&r->in);
    r->endpoint = c->current;
    snprintf(url, sizeof(url), "%s%s", c->endpoints[r->endpoint], path);
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPIDLE, (long)TCP_KEEPALIVE_IDLE_S);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPINTVL, (long)TCP_KEEPALIVE_INTVL_S);
    curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
    if (c->tls_ca != NULL)
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->tls_ca);
    if (c->tls_cert != NULL)
        curl_easy_setopt(r->easy, CURLOPT_SSLCERT, c->tls_cert);
    if (c->tls_key != NULL)
        curl_easy_setopt(r->easy, CURLOPT_SSLKEY, c->tls_key);
    if (c->source_address != NULL)
        curl_easy_setopt(r->easy, CURLOPT_INTERFACE, c->source_address);
    if (!is_stream(r) && !r->no_timeout) {
        uint64_t now = now_ms();
        long left = r->deadline_ms > now ? (long)(r->deadline_ms - now) : 1;

        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, left);
    } else {
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 0L);
    }
    r->errbuf[0] = '\0';
    mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
        fail_later(r, ETCD_E_TRANSPORT, curl_multi_strerror(mc));
        return;
    }
    r->in_multi = true;
}

static void deliver(struct etcd_req *r, struct etcd_response *resp)
{
    if (!r->canceled && r->cb != NULL)
        r->cb(resp, r->arg);
}

static void on_deferred(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_req *r = container_of(w, struct etcd_req, timer);
    struct etcd_client *c = r->c;

    (void)loop;
    (void)revents;
    enter(c);
    if (r->deferred_err != ETCD_OK) {
        struct etcd_response resp = {.err = r->deferred_err};

        resp.message = xstrdup(r->deferred_msg);
        if (is_stream(r)) {
            r->over = true;
            deliver(r, &resp);
        } else {
            deliver(r, &resp);
            req_end(r);
        }
        etcd_response_clear(&resp);
    } else {
        submit(r); /* a watch reopened after its pause */
    }
    dispatch(c);
    leave(c);
}

/* Reports err from the loop, never from inside the call that made r. */
static void fail_later(struct etcd_req *r, int err, const char *message)
{
    r->deferred_err = err;
    r->deferred_msg = message;
    ev_timer_stop(r->c->loop, &r->timer);
    ev_timer_set(&r->timer, 0.0, 0.0);
    ev_timer_start(r->c->loop, &r->timer);
}

static struct etcd_req *req_new(struct etcd_client *c, enum etcd_call call, json_t *body,
                                etcd_cb *cb, void *arg)
{
    struct etcd_req *r = xcalloc(1, sizeof(*r));

    r->c = c;
    r->call = call;
    r->cb = cb;
    r->arg = arg;
    r->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    ev_init(&r->timer, on_deferred);
    list_push(&c->reqs, r);
    if (r->body == NULL) {
        r->body = xstrdup("{}");
        fail_later(r, ETCD_E_PARSE, "cannot encode the request as JSON");
    }
    return r;
}

static struct etcd_req *start(struct etcd_client *c, enum etcd_call call, json_t *body, etcd_cb *cb,
                              void *arg)
{
    struct etcd_req *r = req_new(c, call, body, cb, arg);

    if (r->deferred_err != ETCD_OK)
        return r;
    r->deadline_ms = now_ms() + c->timeout_ms;
    submit(r);
    return r;
}

/* ---- Receiving ------------------------------------------------------------------------------- */

/* An error that means the request was not executed, so that another member may take it:
 * no connection, or a member without a leader. */
static bool worth_another_endpoint(CURLcode cc, const struct etcd_response *resp)
{
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return true;
    return cc == CURLE_OK && resp->err == ETCD_E_NO_LEADER;
}

static void transport_error(struct etcd_response *resp, CURLcode cc, const struct etcd_req *r)
{
    char text[CURL_ERROR_SIZE + 200];

    resp->err = cc == CURLE_OPERATION_TIMEDOUT ? ETCD_E_TIMEOUT : ETCD_E_TRANSPORT;
    snprintf(text, sizeof(text), "%s%s: %s", r->c->endpoints[r->endpoint], etcd_call_path(r->call),
             r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
    free(resp->message);
    resp->message = xstrdup(text);
}

static void on_auth_answer(struct etcd_req *r, const struct etcd_response *resp);
static void watch_broken(struct etcd_req *r, const char *why);

static void finish_unary(struct etcd_req *r, CURLcode cc)
{
    struct etcd_client *c = r->c;
    struct etcd_response resp = {0};
    long status = 0;

    if (cc == CURLE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        etcd_parse_answer(r->call, status, r->in.buf ? r->in.buf : "", r->in.len, &resp);
    } else {
        transport_error(&resp, cc, r);
    }

    if (resp.err == ETCD_E_AUTH && c->username != NULL && !r->internal && !r->reauthed) {
        /* The token expired (or etcd restarted): authenticate again, then resend. */
        r->reauthed = true;
        free(c->token);
        c->token = NULL;
        etcd_response_clear(&resp);
        submit(r);
        return;
    }
    if (resp.err != ETCD_OK && (worth_another_endpoint(cc, &resp) || resp.err == ETCD_E_TIMEOUT))
        rotate_from(c, r->endpoint);
    if (resp.err != ETCD_OK && worth_another_endpoint(cc, &resp) &&
        ++r->attempts < c->n_endpoints && (r->no_timeout || now_ms() < r->deadline_ms)) {
        log_debug(NULL, "etcd: %s: %s, trying %s", etcd_call_path(r->call), resp.message,
                  c->endpoints[c->current]);
        etcd_response_clear(&resp);
        submit(r);
        return;
    }
    if (r->internal)
        on_auth_answer(r, &resp);
    else
        deliver(r, &resp);
    etcd_response_clear(&resp);
    req_end(r);
}

/* A stream's lines, delivered one answer at a time. */
static void read_lines(struct etcd_req *r)
{
    const char *line;
    size_t len;

    while (!r->canceled && !r->over && etcd_lines_next(&r->in, &line, &len)) {
        struct etcd_response resp = {0};
        size_t i;

        etcd_parse_stream_line(r->call, line, len, &resp);
        if (r->call == ETCD_CALL_OBSERVE) {
            if (resp.err != ETCD_OK) {
                r->over = true;
                detach(r);
            }
            deliver(r, &resp);
            etcd_response_clear(&resp);
            continue;
        }
        /* watch: a member without a leader, going away, or refusing a stale token ends the
         * stream but not the watch; anything else etcd says (compaction, a refused request)
         * ends the watch. */
        if (resp.err != ETCD_OK && resp.err != ETCD_E_NO_LEADER && resp.err != ETCD_E_AUTH &&
            resp.grpc_code != 1 && resp.grpc_code != 4 && resp.grpc_code != 14) {
            r->over = true;
            detach(r);
            deliver(r, &resp);
        } else if (resp.err != ETCD_OK) {
            if (resp.err == ETCD_E_AUTH && r->c->username != NULL) {
                free(r->c->token);
                r->c->token = NULL;
            }
            char why[300];

            snprintf(why, sizeof(why), "%s", resp.message ? resp.message : "error");
            etcd_response_clear(&resp);
            watch_broken(r, why);
            return;
        } else {
            bool announce = resp.created && !r->reopened;

            if (resp.created) {
                r->retry_ms = 0;
                r->reopened = true;
                /* From now: later events have revisions above the header's. */
                if (r->next_rev == 0)
                    r->next_rev = resp.revision + 1;
            }
            for (i = 0; i < resp.n_events; i++)
                if (resp.events[i].kv.mod_revision >= r->next_rev)
                    r->next_rev = resp.events[i].kv.mod_revision + 1;
            /* A reopened watch does not announce itself again to its user. */
            if (resp.n_events > 0 || announce)
                deliver(r, &resp);
        }
        etcd_response_clear(&resp);
    }
}

/* The watch's stream broke: open it again from next_rev, on the next endpoint. */
static void watch_broken(struct etcd_req *r, const char *why)
{
    struct etcd_client *c = r->c;
    json_t *body = json_loads(r->body, 0, NULL);
    json_t *create = json_object_get(body, "create_request");

    detach(r);
    rotate_from(c, r->endpoint);
    log_warn(NULL,
             "etcd: watch stream on %s ended (%s); watching again from revision %" PRId64 " on %s",
             c->endpoints[r->endpoint], why, r->next_rev, c->endpoints[c->current]);
    if (json_is_object(create) && r->next_rev > 0) {
        char rev[32];

        snprintf(rev, sizeof(rev), "%" PRId64, r->next_rev);
        json_object_set_new(create, "start_revision", json_string(rev));
        free(r->body);
        r->body = json_dumps(body, JSON_COMPACT);
    }
    json_decref(body);
    r->retry_ms = r->retry_ms == 0 ? WATCH_RETRY_FIRST_MS
                                   : (r->retry_ms * 2 > WATCH_RETRY_MAX_MS ? WATCH_RETRY_MAX_MS
                                                                           : r->retry_ms * 2);
    r->deferred_err = ETCD_OK;
    ev_timer_stop(c->loop, &r->timer);
    ev_timer_set(&r->timer, r->retry_ms / 1000.0, 0.0);
    ev_timer_start(c->loop, &r->timer);
}

static void finish_stream(struct etcd_req *r, CURLcode cc)
{
    struct etcd_response resp = {0};
    long status = 0;
    char why[CURL_ERROR_SIZE + 64];

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    read_lines(r); /* what came before the end */
    if (r->canceled || r->over)
        return;
    /* A final line without its newline, or the error body of a refused request. */
    if (r->in.len > r->in.start && cc == CURLE_OK) {
        etcd_parse_answer(r->call, status, r->in.buf + r->in.start, r->in.len - r->in.start, &resp);
        r->in.start = r->in.len;
    } else if (cc != CURLE_OK) {
        transport_error(&resp, cc, r);
    } else {
        resp.err = ETCD_E_TRANSPORT;
        resp.message = xstrdup("stream closed by etcd");
    }
    /* A request etcd refuses (bad key, no permission) will not get better elsewhere. */
    if (r->call == ETCD_CALL_OBSERVE ||
        (status >= 400 && status < 500 && resp.err != ETCD_E_AUTH && status != 429) ||
        resp.err == ETCD_E_COMPACTED) {
        if (resp.err == ETCD_OK) {
            resp.err = ETCD_E_TRANSPORT;
            resp.message = xstrdup("stream closed by etcd");
        }
        r->over = true;
        detach(r);
        deliver(r, &resp);
    } else {
        if (resp.err == ETCD_E_AUTH && r->c->username != NULL) {
            free(r->c->token);
            r->c->token = NULL;
        }
        snprintf(why, sizeof(why), "%s", resp.message ? resp.message : "closed");
        watch_broken(r, why);
    }
    etcd_response_clear(&resp);
}

/* After libcurl ran: stream lines first (they came before any end), then finished requests. */
static void dispatch(struct etcd_client *c)
{
    CURLMsg *msg;
    int left;
    size_t i;

    for (i = 0; i < c->n_pending && !c->free_pending; i++) {
        struct etcd_req *r = c->pending[i];

        r->has_lines = false;
        if (!r->canceled)
            read_lines(r);
    }
    c->n_pending = 0;
    while (!c->free_pending && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct etcd_req *r = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r == NULL || !r->in_multi)
            continue;
        CURLcode cc = msg->data.result; /* msg dies with the removal below */
        curl_multi_remove_handle(c->multi, r->easy);
        r->in_multi = false;
        if (is_stream(r))
            finish_stream(r, cc);
        else
            finish_unary(r, cc);
    }
}

/* ---- Authentication ------------------------------------------------------------------------ */

static void start_auth(struct etcd_client *c)
{
    json_t *body;

    if (c->auth_req != NULL)
        return;
    body = json_pack("{s:s, s:s}", "name", c->username, "password", c->password ? c->password : "");
    c->auth_req = req_new(c, ETCD_CALL_AUTH, body, NULL, NULL);
    c->auth_req->internal = true;
    if (c->auth_req->deferred_err != ETCD_OK)
        return;
    c->auth_req->deadline_ms = now_ms() + c->timeout_ms;
    submit(c->auth_req);
}

/* The token arrived (or not): release the requests that waited for it. */
static void on_auth_answer(struct etcd_req *auth, const struct etcd_response *resp)
{
    struct etcd_client *c = auth->c;
    struct etcd_req *r, *next;

    c->auth_req = NULL;
    if (resp->err == ETCD_OK) {
        free(c->token);
        c->token = xstrdup(resp->token);
    } else {
        log_warn(NULL, "etcd: authentication as %s failed: %s", c->username, resp->message);
    }
    for (r = c->reqs; r != NULL; r = next) {
        next = r->next;
        if (!r->waiting_auth || r == auth)
            continue;
        if (resp->err == ETCD_OK) {
            submit(r);
        } else {
            r->waiting_auth = false;
            fail_later(r, resp->err == ETCD_E_AUTH ? ETCD_E_AUTH : resp->err,
                       "etcd authentication failed");
        }
    }
}

/* ---- Client ---------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

static bool parse_endpoints(struct etcd_client *c, const char *list, char *err, size_t err_size)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char *ep;

        while (n > 0 && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '/'))
            n--;
        if (n > 0) {
            if (n > 512 || (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)) {
                snprintf(err, err_size, "etcd endpoint '%.*s' is not http:// or https://",
                         (int)(n > 200 ? 200 : n), p);
                return false;
            }
            ep = xmalloc(n + 1);
            memcpy(ep, p, n);
            ep[n] = '\0';
            c->endpoints = xrealloc(c->endpoints, (c->n_endpoints + 1) * sizeof(char *));
            c->endpoints[c->n_endpoints++] = ep;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (c->n_endpoints == 0) {
        snprintf(err, err_size, "no etcd endpoint given");
        return false;
    }
    return true;
}

struct etcd_client *etcd_new(struct ev_loop *loop, const struct etcd_options *opts, char *err,
                             size_t err_size)
{
    struct etcd_client *c = xcalloc(1, sizeof(*c));
    size_t i;

    pthread_once(&curl_once, curl_init_once);
    c->loop = loop;
    if (!parse_endpoints(c, opts->endpoints, err, err_size)) {
        for (i = 0; i < c->n_endpoints; i++)
            free(c->endpoints[i]);
        free(c->endpoints);
        free(c);
        return NULL;
    }
    c->timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->username = dup_or_null(opts->username);
    c->password = dup_or_null(opts->password);
    c->tls_ca = dup_or_null(opts->tls_ca);
    c->tls_cert = dup_or_null(opts->tls_cert);
    c->tls_key = dup_or_null(opts->tls_key);
    c->source_address = dup_or_null(opts->source_address);
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        log_error(NULL, "etcd: curl_multi_init failed");
        abort();
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    ev_init(&c->curl_timer, on_curl_timer);
    return c;
}

/* ---- Calls ----------------------------------------------------------------------------------- */

static json_t *b64(const void *p, size_t n)
{
    char *s = xmalloc(etcd_b64_encoded_len(n) + 1);
    json_t *v;

    etcd_b64_encode(p != NULL ? p : "", p != NULL ? n : 0, s);
    v = json_string(s);
    free(s);
    return v;
}

/* int64 fields travel as strings (the gateway's JSON mapping of proto3). */
static json_t *i64(int64_t v)
{
    char s[32];

    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

size_t etcd_prefix_end(const void *prefix, size_t prefix_len, uint8_t *out)
{
    const uint8_t *p = prefix;
    size_t n = prefix_len;

    while (n > 0 && p[n - 1] == 0xff)
        n--;
    if (n == 0) {
        out[0] = 0; /* every key */
        return 1;
    }
    memcpy(out, p, n);
    out[n - 1]++;
    return n;
}

struct etcd_req *etcd_range(struct etcd_client *c, const void *key, size_t key_len,
                            const void *range_end, size_t range_end_len, int64_t limit, int flags,
                            etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "key", b64(key, key_len));
    if (range_end != NULL)
        json_object_set_new(body, "range_end", b64(range_end, range_end_len));
    if (limit > 0)
        json_object_set_new(body, "limit", i64(limit));
    if (flags & ETCD_RANGE_SERIALIZABLE)
        json_object_set_new(body, "serializable", json_true());
    if (flags & ETCD_RANGE_KEYS_ONLY)
        json_object_set_new(body, "keys_only", json_true());
    if (flags & ETCD_RANGE_COUNT_ONLY)
        json_object_set_new(body, "count_only", json_true());
    return start(c, ETCD_CALL_RANGE, body, cb, arg);
}

struct etcd_req *etcd_put(struct etcd_client *c, const void *key, size_t key_len, const void *value,
                          size_t value_len, int64_t lease, etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "key", b64(key, key_len));
    json_object_set_new(body, "value", b64(value, value_len));
    if (lease != 0)
        json_object_set_new(body, "lease", i64(lease));
    return start(c, ETCD_CALL_PUT, body, cb, arg);
}

struct etcd_req *etcd_delete(struct etcd_client *c, const void *key, size_t key_len,
                             const void *range_end, size_t range_end_len, bool prev_kv, etcd_cb *cb,
                             void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "key", b64(key, key_len));
    if (range_end != NULL)
        json_object_set_new(body, "range_end", b64(range_end, range_end_len));
    if (prev_kv)
        json_object_set_new(body, "prev_kv", json_true());
    return start(c, ETCD_CALL_DELETE, body, cb, arg);
}

static json_t *txn_ops(const struct etcd_op *ops, size_t n)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        const struct etcd_op *op = &ops[i];
        json_t *req = json_object(), *one = json_object();

        json_object_set_new(req, "key", b64(op->key, op->key_len));
        if (op->range_end != NULL && op->type != ETCD_OP_PUT)
            json_object_set_new(req, "range_end", b64(op->range_end, op->range_end_len));
        switch (op->type) {
        case ETCD_OP_RANGE:
            json_object_set_new(one, "request_range", req);
            break;
        case ETCD_OP_PUT:
            json_object_set_new(req, "value", b64(op->value, op->value_len));
            if (op->lease != 0)
                json_object_set_new(req, "lease", i64(op->lease));
            json_object_set_new(one, "request_put", req);
            break;
        case ETCD_OP_DELETE:
            json_object_set_new(one, "request_delete_range", req);
            break;
        }
        json_array_append_new(arr, one);
    }
    return arr;
}

struct etcd_req *etcd_txn(struct etcd_client *c, const struct etcd_txn *t, etcd_cb *cb, void *arg)
{
    static const char *const targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
    static const char *const results[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
    static const char *const fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};
    json_t *body = json_object(), *cmps = json_array();
    struct etcd_req *r;
    size_t i;

    for (i = 0; i < t->n_compare; i++) {
        const struct etcd_compare *cmp = &t->compare[i];
        json_t *one = json_object();

        json_object_set_new(one, "key", b64(cmp->key, cmp->key_len));
        json_object_set_new(one, "target", json_string(targets[cmp->target]));
        json_object_set_new(one, "result", json_string(results[cmp->result]));
        if (cmp->target == ETCD_CMP_VALUE)
            json_object_set_new(one, "value", b64(cmp->value, cmp->value_len));
        else
            json_object_set_new(one, fields[cmp->target], i64(cmp->number));
        json_array_append_new(cmps, one);
    }
    json_object_set_new(body, "compare", cmps);
    json_object_set_new(body, "success", txn_ops(t->success, t->n_success));
    json_object_set_new(body, "failure", txn_ops(t->failure, t->n_failure));
    if (t->n_compare + t->n_success + t->n_failure > 128) {
        r = req_new(c, ETCD_CALL_TXN, body, cb, arg);
        fail_later(r, ETCD_E_SERVER, "more than 128 operations in one txn");
        return r;
    }
    return start(c, ETCD_CALL_TXN, body, cb, arg);
}

struct etcd_req *etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t id, etcd_cb *cb,
                                  void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "TTL", i64(ttl_s));
    if (id != 0)
        json_object_set_new(body, "ID", i64(id));
    return start(c, ETCD_CALL_LEASE_GRANT, body, cb, arg);
}

struct etcd_req *etcd_lease_keepalive(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "ID", i64(id));
    return start(c, ETCD_CALL_LEASE_KEEPALIVE, body, cb, arg);
}

struct etcd_req *etcd_lease_revoke(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "ID", i64(id));
    return start(c, ETCD_CALL_LEASE_REVOKE, body, cb, arg);
}

struct etcd_req *etcd_lease_timetolive(struct etcd_client *c, int64_t id, etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "ID", i64(id));
    return start(c, ETCD_CALL_LEASE_TTL, body, cb, arg);
}

struct etcd_req *etcd_watch(struct etcd_client *c, const void *key, size_t key_len,
                            const void *range_end, size_t range_end_len, int64_t start_revision,
                            int flags, etcd_cb *cb, void *arg)
{
    json_t *create = json_object(), *body = json_object();
    struct etcd_req *r;

    json_object_set_new(create, "key", b64(key, key_len));
    if (range_end != NULL)
        json_object_set_new(create, "range_end", b64(range_end, range_end_len));
    if (start_revision > 0)
        json_object_set_new(create, "start_revision", i64(start_revision));
    if (flags & ETCD_WATCH_PREV_KV)
        json_object_set_new(create, "prev_kv", json_true());
    json_object_set_new(body, "create_request", create);
    r = req_new(c, ETCD_CALL_WATCH, body, cb, arg);
    r->next_rev = start_revision > 0 ? start_revision : 0;
    if (r->deferred_err == ETCD_OK)
        submit(r);
    return r;
}

struct etcd_req *etcd_campaign(struct etcd_client *c, const void *name, size_t name_len,
                               int64_t lease, const void *value, size_t value_len, etcd_cb *cb,
                               void *arg)
{
    json_t *body = json_object();
    struct etcd_req *r;

    json_object_set_new(body, "name", b64(name, name_len));
    json_object_set_new(body, "lease", i64(lease));
    json_object_set_new(body, "value", b64(value, value_len));
    r = req_new(c, ETCD_CALL_CAMPAIGN, body, cb, arg);
    r->no_timeout = true;
    if (r->deferred_err == ETCD_OK)
        submit(r);
    return r;
}

struct etcd_req *etcd_election_leader(struct etcd_client *c, const void *name, size_t name_len,
                                      etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "name", b64(name, name_len));
    return start(c, ETCD_CALL_LEADER, body, cb, arg);
}

struct etcd_req *etcd_election_observe(struct etcd_client *c, const void *name, size_t name_len,
                                       etcd_cb *cb, void *arg)
{
    json_t *body = json_object();
    struct etcd_req *r;

    json_object_set_new(body, "name", b64(name, name_len));
    r = req_new(c, ETCD_CALL_OBSERVE, body, cb, arg);
    if (r->deferred_err == ETCD_OK)
        submit(r);
    return r;
}

static json_t *leader_key_json(const struct etcd_leader_key *k)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", b64(k->name, k->name_len));
    json_object_set_new(o, "key", b64(k->key, k->key_len));
    json_object_set_new(o, "rev", i64(k->rev));
    json_object_set_new(o, "lease", i64(k->lease));
    return o;
}

struct etcd_req *etcd_election_resign(struct etcd_client *c, const struct etcd_leader_key *key,
                                      etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "leader", leader_key_json(key));
    return start(c, ETCD_CALL_RESIGN, body, cb, arg);
}

struct etcd_req *etcd_election_proclaim(struct etcd_client *c, const struct etcd_leader_key *key,
                                        const void *value, size_t value_len, etcd_cb *cb, void *arg)
{
    json_t *body = json_object();

    json_object_set_new(body, "leader", leader_key_json(key));
    json_object_set_new(body, "value", b64(value, value_len));
    return start(c, ETCD_CALL_PROCLAIM, body, cb, arg);
}
