#include "build_config.h" /* _GNU_SOURCE for accept4 */

#include "src/broker/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/deadletter.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/publish.h"
#include "src/broker/recovery.h"
#include "src/broker/spill.h"
#include "src/broker/vhost.h"
#include "src/cluster/proxy.h"
#include "src/cluster/cluster.h"
#include "src/security/auth.h"
#include "src/security/tls.h"
#include "src/store/store.h"

#define SHUTDOWN_GRACE_S 2.0 /* how long clients get to answer connection.close at shutdown */
#define TRIM_FREE_MIN    ((size_t)8 << 20) /* bytes free in the heap worth giving back ... */
#define TRIM_EVERY_S     5.0               /* ... at most this often (see worth_trimming) */

#define LISTEN_BACKLOG     1024
#define ACCEPT_PAUSE_MIN_S 0.1  /* the listeners' first pause when accept fails ... */
#define ACCEPT_PAUSE_MAX_S 1.0  /* ... doubling up to this while it keeps failing */
#define ACCEPT_LOG_EVERY_S 10.0 /* while it lasts, a log line this often at most */

static void set_listening(struct server *s, bool on)
{
    for (size_t i = 0; i < s->listener_count; i++) {
        if (on)
            ev_io_start(s->loop, &s->listeners[i].watcher);
        else
            ev_io_stop(s->loop, &s->listeners[i].watcher);
    }
}

static void on_accept_pause_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, accept_timer);

    (void)loop;
    (void)revents;
    if (!s->stopping)
        set_listening(s, true); /* a connection still waiting makes its listener fire again */
}

/* Out of file descriptors, a connection waiting in the backlog can never be served: each is
 * taken with the spare descriptor and closed at once, so that its client hears it was
 * refused instead of waiting for a connection.start that cannot come. Returns how many. */
static uint64_t refuse_waiting(struct server *s, struct listener *l)
{
    uint64_t n = 0;

    for (int i = 0; i < LISTEN_BACKLOG && s->spare_fd >= 0; i++) {
        int fd, err;

        close(s->spare_fd);
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        err = errno;
        if (fd >= 0) {
            close(fd);
            n++;
        }
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 && err != EINTR && err != ECONNABORTED)
            break; /* EAGAIN: none left; anything else: the next pause retries */
    }
    return n;
}

/* accept failed for a reason that is not the connection's (out of file descriptors, out of
 * kernel memory): the listening socket stays readable, so going on would spin. The
 * listeners pause instead, and accept_timer restarts them. A connection that arrives while
 * it lasts waits in the backlog for the first pause only; after that it is refused. */
static void accept_failed(struct server *s, struct listener *l, int err)
{
    double now = ev_now(s->loop);
    uint64_t refused = 0;

    if (s->accept_pause_s == 0) {
        s->accept_pause_s = ACCEPT_PAUSE_MIN_S;
        s->accept_logged_at = now;
        s->refused_unlogged = 0;
        log_warn(NULL,
                 "accept on %s failed: %s; new connections are refused until it works again "
                 "(retrying every %.1f to %.1f s)",
                 l->address, strerror(err), ACCEPT_PAUSE_MIN_S, ACCEPT_PAUSE_MAX_S);
    } else {
        if (err == EMFILE || err == ENFILE)
            refused = refuse_waiting(s, l);
        s->accept_pause_s *= 2;
        if (s->accept_pause_s > ACCEPT_PAUSE_MAX_S)
            s->accept_pause_s = ACCEPT_PAUSE_MAX_S;
    }
    s->refused[REFUSED_FD_LIMIT] += refused;
    s->refused_unlogged += refused;
    if (now - s->accept_logged_at >= ACCEPT_LOG_EVERY_S) {
        log_warn(NULL, "accept still failing: %s; %llu connections refused in the last %.0f s",
                 strerror(err), (unsigned long long)s->refused_unlogged, now - s->accept_logged_at);
        s->accept_logged_at = now;
        s->refused_unlogged = 0;
    }
    set_listening(s, false);
    ev_timer_set(&s->accept_timer, s->accept_pause_s, 0.);
    ev_timer_start(s->loop, &s->accept_timer);
}

static void accept_works_again(struct server *s)
{
    log_info(NULL, "accepting connections again; %llu refused in the last %.0f s",
             (unsigned long long)s->refused_unlogged, ev_now(s->loop) - s->accept_logged_at);
    s->accept_pause_s = 0;
    s->refused_unlogged = 0;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *l = container_of(w, struct listener, watcher);
    struct server *s = l->srv;

    (void)loop;
    (void)revents;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int one = 1;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_failed(s, l, errno);
            return;
        }
        if (s->accept_pause_s != 0)
            accept_works_again(s);
        if (s->clients == SERVER_CLIENTS_PROXY) {
            /* A follower: the proxy relays the client, TLS and all, to the leader. */
            proxy_accept(s->proxy, fd, (struct sockaddr *)&peer, peer_len,
                         l->tls ? PROXY_AMQPS : PROXY_AMQP);
            continue;
        }
        if (s->cfg->connection_max != 0 && s->conn_count >= s->cfg->connection_max) {
            log_warn(NULL, "connection refused: connection_max (%u) is reached",
                     s->cfg->connection_max);
            s->refused[REFUSED_CONNECTION_MAX]++;
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = conn_new(s, fd, (struct sockaddr *)&peer, peer_len);
        if (l->tls)
            conn_start_tls(c, tls_conn_new(s->tls, fd));
        server_adopt(s, c);
    }
}

void server_adopt(struct server *s, struct conn *c)
{
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
}

/* Binds host:port; host "" binds both 0.0.0.0 and [::]. *port is updated with the port the
 * kernel chose when it was 0. */
static int bind_one(struct server *s, const char *host, uint16_t *port, bool tls)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    char service[8];
    struct listener *l;
    int fd = -1, one = 1, rc;

    if (s->listener_count >= ARRAY_LEN(s->listeners)) {
        log_error(NULL, "too many listeners");
        return -1;
    }
    snprintf(service, sizeof service, "%u", *port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        log_error(NULL, "cannot listen on '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = errno;
        freeaddrinfo(res);
        if (rc == EAFNOSUPPORT)
            return 1; /* no IPv6 here: skip it */
        log_error(NULL, "socket for %s: %s", host, strerror(rc));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        rc = errno;
        log_error(NULL, "cannot listen on %s port %u: %s", host, *port, strerror(rc));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    {
        struct sockaddr_storage got;
        socklen_t len = sizeof got;
        char addr[INET6_ADDRSTRLEN];
        getsockname(fd, (struct sockaddr *)&got, &len);
        if (got.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&got;
            inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
            *port = ntohs(in6->sin6_port);
            l = &s->listeners[s->listener_count];
            snprintf(l->address, sizeof l->address, "%s[%s]:%u", tls ? "tls:" : "", addr, *port);
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&got;
            inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
            *port = ntohs(in->sin_port);
            l = &s->listeners[s->listener_count];
            snprintf(l->address, sizeof l->address, "%s%s:%u", tls ? "tls:" : "", addr, *port);
        }
    }
    freeaddrinfo(res);
    l->fd = fd;
    l->tls = tls;
    l->srv = s;
    ev_io_init(&l->watcher, on_accept, fd, EV_READ);
    ev_io_start(s->loop, &l->watcher);
    s->listener_count++;
    return 0;
}

static int bind_listeners(struct server *s, int port_override)
{
    uint16_t shared_port = port_override > 0 ? (uint16_t)port_override : 0;

    for (size_t i = 0; i < s->cfg->tcp_count; i++) {
        const struct config_listener *cl = &s->cfg->tcp[i];
        uint16_t port = port_override >= 0 ? shared_port : cl->port;
        bool any = cl->host[0] == '\0';

        if (bind_one(s, any ? "0.0.0.0" : cl->host, &port, false) < 0)
            return -1;
        /* With --port 0 the first listener picks the port and the others follow it. */
        if (port_override == 0 && shared_port == 0)
            shared_port = port;
        if (any && bind_one(s, "::", &port, false) < 0)
            return -1;
    }
    for (size_t i = 0; i < s->cfg->ssl_count; i++) {
        const struct config_listener *cl = &s->cfg->ssl[i];
        uint16_t port = cl->port;
        bool any = cl->host[0] == '\0';

        if (bind_one(s, any ? "0.0.0.0" : cl->host, &port, true) < 0)
            return -1;
        if (any && bind_one(s, "::", &port, true) < 0)
            return -1;
    }
    return 0;
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct server *s = container_of(w, struct server, flush_watcher);

    (void)loop;
    (void)revents;
    server_flush_pending(s);
    if (s->stopping && s->conns == NULL)
        ev_break(s->loop, EVBREAK_ALL);
}

static uint64_t bytes_written(const struct server *s);
static unsigned check_disk(struct server *s);
static void set_alarms(struct server *s, unsigned alarms);

void server_flush_pending(struct server *s)
{
    struct conn *c;
    void *v;

    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);)
        vhost_flush_deadletters(v);
    if (s->disk_check_at != 0 && bytes_written(s) >= s->disk_check_at)
        set_alarms(s, (s->alarms & ~(unsigned)ALARM_DISK) | check_disk(s));
    /* One write per connection per loop turn, for everything the turn produced. */
    while ((c = s->flush_list) != NULL) {
        s->flush_list = c->next_flush;
        c->flush_queued = false;
        if (c->hold_position != 0 && c->hold_position > cluster_committed(s->cluster))
            continue; /* server_replicated() queues it again */
        c->hold_position = 0;
        conn_flush(c);
    }
    while ((c = s->dead) != NULL) {
        s->dead = c->next;
        conn_free(c);
        s->freed_since_trim++;
    }
}

void server_want_flush(struct server *s, struct conn *c)
{
    if (c->flush_queued || c->state == CONN_CLOSED)
        return;
    c->flush_queued = true;
    c->next_flush = s->flush_list;
    s->flush_list = c;
}

void server_conn_closed(struct server *s, struct conn *c)
{
    if (c->flush_queued) {
        struct conn **p = &s->flush_list;
        while (*p != c)
            p = &(*p)->next_flush;
        *p = c->next_flush;
        c->flush_queued = false;
    }
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conn_count--;
    log_debug(&c->log, "connection closed");
    c->prev = NULL;
    c->next = s->dead;
    s->dead = c;
}

/* SIGHUP: the certificates are read again for new TLS connections (after a renewal). */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *s = w->data;
    char err[600];

    (void)loop;
    (void)revents;
    if (s->tls == NULL)
        return;
    if (tls_server_reload(s->tls, s->cfg, err, sizeof err) != 0)
        log_error(NULL, "TLS certificates not reloaded: %s", err);
    else
        log_info(NULL, "TLS certificates reloaded");
}

static void on_shutdown_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *s = w->data;

    (void)loop;
    (void)revents;
    if (s->stopping)
        return;
    log_info(NULL, "received signal %d: shutting down", w->signum);
    server_shutdown(s);
}

void server_shutdown(struct server *s)
{
    struct ev_loop *loop = s->loop;
    struct conn *c, *next;

    if (s->stopping)
        return;
    s->stopping = true;
    set_listening(s, false);
    ev_timer_stop(loop, &s->accept_timer);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_OPEN || c->state == CONN_AWAIT_OPEN)
            conn_close_with(c, WIRE_CONNECTION_FORCED,
                            "CONNECTION_FORCED - broker forced connection closure with reason "
                            "'shutdown'",
                            0);
        else if (c->state != CONN_CLOSING)
            conn_abort(c);
    }
    ev_timer_init(&s->shutdown_timer, on_shutdown_timeout, SHUTDOWN_GRACE_S, 0.);
    ev_timer_start(loop, &s->shutdown_timer);
}

static void on_ack_timeout_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, ack_timeout_timer);
    uint64_t now = (uint64_t)(ev_now(loop) * 1000.0);
    struct conn *c, *next;

    (void)revents;
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        conn_check_ack_timeouts(c, now, s->cfg->consumer_timeout_ms);
    }
}

/* The machine's memory, or the cgroup's limit when that is lower (in a container). */
static uint64_t total_memory(void)
{
    uint64_t total = 0, limit = 0;
    char line[256];
    FILE *f = fopen("/proc/meminfo", "r");

    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            unsigned long long kb;
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
                total = (uint64_t)kb * 1024;
                break;
            }
        }
        fclose(f);
    }
    f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f != NULL) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1)
            limit = v;
        fclose(f);
    }
    return limit != 0 && (total == 0 || limit < total) ? limit : total;
}

static uint64_t resident_memory(void)
{
    unsigned long long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &pages_total, &pages_resident) != 2)
            pages_resident = 0;
        fclose(f);
    }
    return (uint64_t)pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void set_alarms(struct server *s, unsigned alarms)
{
    struct conn *c, *next;

    if (alarms == s->alarms)
        return;
    if ((alarms & ALARM_MEMORY) != (s->alarms & ALARM_MEMORY))
        log_warn(NULL, "memory alarm %s: %llu bytes used, the high watermark is %llu",
                 (alarms & ALARM_MEMORY) ? "set, publishers are blocked" : "cleared",
                 (unsigned long long)s->memory_used, (unsigned long long)s->memory_limit);
    if ((alarms & ALARM_DISK) != (s->alarms & ALARM_DISK))
        log_warn(NULL, "disk alarm %s: %llu bytes free, the limit is %llu",
                 (alarms & ALARM_DISK) ? "set, publishers are blocked" : "cleared",
                 (unsigned long long)s->disk_free, (unsigned long long)s->cfg->disk_free_limit);
    s->alarms = alarms;
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        conn_alarm_changed(c, alarms);
    }
}

/* Bytes the broker has written to its data directory so far: the store's and the spills'. */
static uint64_t bytes_written(const struct server *s)
{
    return spill_bytes_written() + (s->persist ? store_bytes_written(s->persist->store) : 0);
}

/* Free space in the data directory against disk_free_limit. Checked every second, and sooner
 * once the broker has written a quarter of the room left above the limit since the last
 * check (server_flush_pending), so that a fast publisher is blocked before the disk fills,
 * not a second later. */
static unsigned check_disk(struct server *s)
{
    struct statvfs fs;
    uint64_t room = 0;
    unsigned alarm = 0;

    s->disk_free = UINT64_MAX;
    if (s->cfg->data_dir[0] == '\0' || statvfs(s->cfg->data_dir, &fs) != 0) {
        s->disk_check_at = 0;
        return 0;
    }
    s->disk_free = (uint64_t)fs.f_bavail * fs.f_frsize;
    if (s->disk_free < s->cfg->disk_free_limit)
        alarm = ALARM_DISK;
    else
        room = s->disk_free - s->cfg->disk_free_limit;
    s->disk_check_at = bytes_written(s) + (room / 4 > DISK_CHECK_MIN_BYTES ? room / 4
                                                                           : DISK_CHECK_MIN_BYTES);
    return alarm;
}

/* The watermark in bytes, and the queues' budget: half the watermark leaves room for
 * everything else, so queue contents alone never block publishers. */
static void set_memory_limit(struct server *s, uint32_t relative_thousandths, uint64_t absolute)
{
    s->memory_watermark_relative = relative_thousandths;
    s->memory_watermark_absolute = absolute;
    s->memory_limit = absolute != 0 ? absolute : total_memory() / 1000 * relative_thousandths;
    /* 0 would mean no limit below: RabbitMQ's watermark 0 blocks publishers for good. */
    if (s->memory_limit == 0)
        s->memory_limit = 1;
    s->queue_budget.limit =
        s->cfg->queue_memory_limit != 0 ? s->cfg->queue_memory_limit : s->memory_limit / 2;
}

/* What closed connections freed (their buffers, the messages of their exclusive queues)
 * stays in malloc's heap, and in the resident memory the alarm watches: glibc gives back
 * only the top of the heap by itself. malloc_trim() gives back every free page, but that
 * takes milliseconds per ten megabytes, in the loop: so only after connections closed, when
 * a lot is free, at most every TRIM_EVERY_S; and every second while the memory alarm is on,
 * or it might never clear. (Fixing M_MMAP_THRESHOLD instead would make every large body an
 * mmap of its own, faulted in page by page.) */
static bool worth_trimming(struct server *s, double now)
{
    struct mallinfo2 mi;

    if (s->alarms & ALARM_MEMORY)
        return true;
    if (s->freed_since_trim == 0 || now - s->trimmed_at < TRIM_EVERY_S)
        return false;
    s->freed_since_trim = 0;
    mi = mallinfo2();
    return mi.fordblks >= TRIM_FREE_MIN;
}

/* Memory and disk, checked every second: over the watermark or under the free-space limit,
 * publishers are blocked until it passes (consumers keep draining). A message store that
 * failed (a full disk) is resumed once the disk alarm is clear. */
static void on_alarm_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, alarm_timer);
    unsigned alarms = 0;

    (void)revents;
    if (worth_trimming(s, ev_now(loop))) {
        malloc_trim(0);
        s->trimmed_at = ev_now(loop);
    }
    s->memory_used = resident_memory();
    if (s->memory_limit != 0 && s->memory_used > s->memory_limit)
        alarms |= ALARM_MEMORY;
    alarms |= check_disk(s);
    set_alarms(s, alarms);
    if (s->persist != NULL && s->persist->failed && !(alarms & ALARM_DISK))
        persist_resume(s->persist);
}

void server_set_memory_watermark(struct server *s, uint32_t relative_thousandths,
                                 uint64_t absolute)
{
    set_memory_limit(s, relative_thousandths, absolute);
    log_info(NULL, "memory high watermark set to %llu bytes (%s)",
             (unsigned long long)s->memory_limit, absolute != 0 ? "absolute" : "relative");
    on_alarm_check(s->loop, &s->alarm_timer, 0);
}

uint64_t server_user_connections(const struct server *s, const char *user)
{
    uint64_t n = 0;

    for (const struct conn *c = s->conns; c != NULL; c = c->next)
        if (c->counted_in_vhost && strcmp(c->log.user, user) == 0)
            n++;
    return n;
}

uint64_t server_user_channels(const struct server *s, const char *user)
{
    uint64_t n = 0;

    for (const struct conn *c = s->conns; c != NULL; c = c->next)
        if (strcmp(c->log.user, user) == 0)
            n += c->channel_count;
    return n;
}

/* The store made publishes durable: their channels send the confirms that waited. */
static void on_store_durable(void *ctx, uint64_t durable_seq)
{
    struct server *s = ctx;

    s->durable_seq = durable_seq;
    channel_confirms_durable(s, cluster_confirmable(s->cluster, durable_seq));
}

/* The stream logs made publishes durable. */
static void on_streams_durable(void *ctx, uint64_t seq)
{
    channel_streams_durable(ctx, seq);
}

void server_set_cluster(struct server *s, struct cluster *c)
{
    void *v;

    s->cluster = c;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);)
        ((struct vhost *)v)->refuse_streams = c != NULL;
}

void server_replicated(struct server *s, uint64_t seq)
{
    uint64_t committed = cluster_committed(s->cluster);

    (void)seq; /* the cluster keeps it: cluster_confirmable() */
    channel_confirms_durable(s, cluster_confirmable(s->cluster, s->durable_seq));
    /* The connections are walked only while one may hold output (a definitions change is
     * rare; commits come at every fsync). */
    if (!s->conns_held)
        return;
    s->conns_held = false;
    for (struct conn *c = s->conns; c != NULL; c = c->next) {
        if (c->hold_position != 0 && c->hold_position <= committed) {
            c->hold_position = 0;
            server_want_flush(s, c);
        } else if (c->hold_position != 0) {
            s->conns_held = true;
        }
    }
}

/* The store failed: what waited for it is nacked. */
static void on_store_failed(void *ctx)
{
    channel_confirms_failed(ctx);
}

/* ---- Cluster roles --------------------------------------------------------------------- */

void server_serve_clients(struct server *s)
{
    if (s->clients != SERVER_CLIENTS_SERVE)
        log_info(NULL, "serving clients");
    s->clients = SERVER_CLIENTS_SERVE;
    s->proxy = NULL;
    s->leader_amqp_url[0] = s->leader_http_url[0] = '\0';
}

void server_proxy_clients(struct server *s, struct proxy *p)
{
    assert(p != NULL);
    if (s->clients != SERVER_CLIENTS_PROXY)
        log_info(NULL, "follower: client connections are relayed to the leader");
    s->clients = SERVER_CLIENTS_PROXY;
    s->proxy = p;
    s->leader_amqp_url[0] = s->leader_http_url[0] = '\0';
}

void server_refuse_clients(struct server *s, const char *leader_amqp_url,
                           const char *leader_http_url)
{
    s->clients = SERVER_CLIENTS_REFUSE;
    s->proxy = NULL;
    snprintf(s->leader_amqp_url, sizeof s->leader_amqp_url, "%s",
             leader_amqp_url != NULL ? leader_amqp_url : "");
    snprintf(s->leader_http_url, sizeof s->leader_http_url, "%s",
             leader_http_url != NULL ? leader_http_url : "");
    log_info(NULL, "follower: clients are refused and sent to the leader, %s",
             leader_amqp_url != NULL ? leader_amqp_url : "not known yet");
}

bool server_refuses_clients(const struct server *s, bool http, char *reason, size_t reason_size)
{
    const char *url = http ? s->leader_http_url : s->leader_amqp_url;

    if (s->clients != SERVER_CLIENTS_REFUSE)
        return false;
    if (url[0] == '\0')
        snprintf(reason, reason_size, "node is a follower; no leader is known");
    else
        snprintf(reason, reason_size, "node is a follower; leader is %s", url);
    return true;
}

/* An IP literal as an IPv6 address, IPv4 ones mapped (::ffff:a.b.c.d); an IPv6 zone
 * ("%eth0") is dropped, as peers are compared by address. */
static bool parse_peer(const char *ip, struct in6_addr *out)
{
    char bare[64];
    struct in_addr v4;

    snprintf(bare, sizeof bare, "%.*s", (int)strcspn(ip, "%"), ip);
    if (inet_pton(AF_INET, bare, &v4) == 1) {
        memset(out, 0, sizeof *out);
        out->s6_addr[10] = out->s6_addr[11] = 0xff;
        memcpy(&out->s6_addr[12], &v4, sizeof v4);
        return true;
    }
    return inet_pton(AF_INET6, bare, out) == 1;
}

/* cluster.proxy_peers (checked by the configuration parser already). */
static int load_proxy_peers(struct server *s)
{
    char ip[64];
    size_t at = 0;
    int rc;

    while ((rc = config_ip_list_next(s->cfg->proxy_peers, &at, ip, sizeof ip)) > 0) {
        struct in6_addr a;
        if (!parse_peer(ip, &a))
            break;
        s->proxy_peers = xrealloc(s->proxy_peers, (s->proxy_peer_count + 1) * sizeof a);
        s->proxy_peers[s->proxy_peer_count++] = a;
    }
    if (rc != 0) {
        log_error(NULL, "cluster.proxy_peers: '%s' is not a list of IP addresses",
                  s->cfg->proxy_peers);
        return -1;
    }
    s->proxy_peers_configured = s->proxy_peer_count;
    return 0;
}

int server_set_proxy_peers(struct server *s, const char *const *ips, size_t count)
{
    size_t kept = s->proxy_peers_configured;
    struct in6_addr *list = xmalloc((kept + count + 1) * sizeof *list);

    if (kept > 0)
        memcpy(list, s->proxy_peers, kept * sizeof *list);
    for (size_t i = 0; i < count; i++) {
        if (!parse_peer(ips[i], &list[kept + i])) {
            log_error(NULL, "proxy peer '%s' is not an IP address; the list is unchanged", ips[i]);
            free(list);
            return -1;
        }
    }
    free(s->proxy_peers);
    s->proxy_peers = list;
    s->proxy_peer_count = kept + count;
    return 0;
}

bool server_is_proxy_peer(const struct server *s, const struct sockaddr *peer)
{
    struct in6_addr a;

    if (peer == NULL || s->proxy_peer_count == 0)
        return false;
    if (peer->sa_family == AF_INET) {
        memset(&a, 0, sizeof a);
        a.s6_addr[10] = a.s6_addr[11] = 0xff;
        memcpy(&a.s6_addr[12], &((const struct sockaddr_in *)peer)->sin_addr, 4);
    } else if (peer->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)peer)->sin6_addr;
    } else {
        return false;
    }
    for (size_t i = 0; i < s->proxy_peer_count; i++) {
        if (memcmp(&s->proxy_peers[i], &a, sizeof a) == 0)
            return true;
    }
    return false;
}

int server_init(struct server *s, struct ev_loop *loop, const struct config *cfg,
                int port_override)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ev_init(&s->accept_timer, on_accept_pause_end);
    hmap_init(&s->vhosts);
    hmap_init(&s->reply_channels);
    s->auth = auth_db_new();
    ev_prepare_init(&s->flush_watcher, on_flush);
    ev_prepare_start(loop, &s->flush_watcher);
    ev_signal_init(&s->sigterm_watcher, on_signal, SIGTERM);
    s->sigterm_watcher.data = s;
    ev_signal_start(loop, &s->sigterm_watcher);
    ev_signal_init(&s->sigint_watcher, on_signal, SIGINT);
    s->sigint_watcher.data = s;
    ev_signal_start(loop, &s->sigint_watcher);
    ev_signal_init(&s->sighup_watcher, on_sighup, SIGHUP);
    s->sighup_watcher.data = s;
    ev_signal_start(loop, &s->sighup_watcher);
    if (load_proxy_peers(s) != 0)
        return -1;
    /* Set before recovery, which fills the queues. */
    set_memory_limit(s, cfg->memory_watermark_absolute != 0 ? 0 : cfg->memory_watermark_relative,
                     cfg->memory_watermark_absolute);
    if (cfg->ssl_count > 0) {
        char err[600];
        if ((s->tls = tls_server_new(cfg, err, sizeof err)) == NULL) {
            log_error(NULL, "TLS: %s", err);
            return -1;
        }
    }
    {
        char err[700];
        const struct auth_vhost **vhosts;
        size_t n;
        int created;

        if (cfg->data_dir[0] != '\0') {
            s->persist = persist_open(loop, cfg->data_dir, cfg->sync_interval_ms, err, sizeof err);
            if (s->persist == NULL || persist_auth_load(s->persist, s->auth, err, sizeof err) != 0) {
                log_error(NULL, "%s", err);
                return -1;
            }
        }
        if (s->persist != NULL) {
            s->persist->durable_cb = on_store_durable;
            s->persist->failure_cb = on_store_failed;
            s->persist->stream_durable_cb = on_streams_durable;
            s->persist->durable_ctx = s;
        }
        /* A blank broker gets RabbitMQ's defaults: the default user, tagged administrator,
         * with every permission on the default vhost. */
        created = auth_ensure_default(s->auth, cfg->default_user, cfg->default_pass,
                                      cfg->default_vhost, err, sizeof err);
        if (created < 0) {
            log_error(NULL, "cannot create the default user: %s", err);
            return -1;
        }
        if (created > 0)
            persist_auth_save(s->persist, s->auth);
        vhosts = auth_vhosts_sorted(s->auth, &n);
        for (size_t i = 0; i < n; i++)
            server_vhost_add(s, wire_cstr(vhosts[i]->name));
        free(vhosts);
        if (recovery_run(s->persist, &s->vhosts, err, sizeof err) != 0) {
            log_error(NULL, "%s", err);
            return -1;
        }
    }
    ev_timer_init(&s->alarm_timer, on_alarm_check, 0., 1.);
    ev_timer_start(loop, &s->alarm_timer);
    ev_init(&s->ack_timeout_timer, on_ack_timeout_check);
    if (cfg->consumer_timeout_ms > 0) {
        /* Checked a few times per timeout, at most every 5 s and at least every 100 ms. */
        double every = cfg->consumer_timeout_ms / 4000.0;
        every = every > 5.0 ? 5.0 : every < 0.1 ? 0.1 : every;
        ev_timer_set(&s->ack_timeout_timer, every, every);
        ev_timer_start(loop, &s->ack_timeout_timer);
    }
    return bind_listeners(s, port_override);
}

void server_run(struct server *s)
{
    char line[1024];
    size_t len = 0;

    line[0] = '\0';
    for (size_t i = 0; i < s->listener_count && len < sizeof line; i++)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", i ? " " : "",
                                s->listeners[i].address);
    log_info(NULL, "ready: listening on %s", line);
    ev_run(s->loop, 0);
}

void server_free(struct server *s)
{
    struct conn *c;
    void *v;

    while ((c = s->conns) != NULL) {
        c->state = CONN_CLOSED;
        s->conns = c->next;
        conn_free(c);
    }
    while ((c = s->dead) != NULL) {
        s->dead = c->next;
        conn_free(c);
    }
    /* Connections went first (their unacked messages were returned to the queues, and the
     * store heard of it); the store closes before the vhosts are freed, so freeing them
     * removes nothing from disk. */
    persist_close(s->persist, &s->vhosts);
    s->persist = NULL;
    for (size_t i = 0; hmap_next(&s->vhosts, &i, &v);)
        vhost_free(v);
    hmap_free(&s->vhosts);
    hmap_free(&s->reply_channels);
    auth_db_free(s->auth);
    s->auth = NULL;
    for (size_t i = 0; i < s->listener_count; i++) {
        ev_io_stop(s->loop, &s->listeners[i].watcher);
        close(s->listeners[i].fd);
    }
    ev_prepare_stop(s->loop, &s->flush_watcher);
    ev_signal_stop(s->loop, &s->sigterm_watcher);
    ev_signal_stop(s->loop, &s->sigint_watcher);
    ev_signal_stop(s->loop, &s->sighup_watcher);
    tls_server_free(s->tls);
    s->tls = NULL;
    ev_timer_stop(s->loop, &s->shutdown_timer);
    ev_timer_stop(s->loop, &s->ack_timeout_timer);
    ev_timer_stop(s->loop, &s->alarm_timer);
    ev_timer_stop(s->loop, &s->accept_timer);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    s->spare_fd = -1;
    free(s->proxy_peers);
    s->proxy_peers = NULL;
    s->proxy_peer_count = s->proxy_peers_configured = 0;
}

void server_publish(struct server *s, struct vhost *vh, struct exchange *x, struct message **msg,
                    struct publish_result *out)
{
    struct message *m = *msg;

    if (x == vh->default_exchange && publish_is_reply_address(m->routing_key)) {
        struct channel *dest = s != NULL ? server_reply_channel(s, m->routing_key) : NULL;
        *out = (struct publish_result){.routed = dest != NULL};
        if (dest != NULL)
            channel_deliver_reply(dest, m);
        return;
    }
    publish_deliver(vh, x, msg, out);
}

struct vhost *server_vhost_find(struct server *s, struct wire_bytes name)
{
    return hmap_get(&s->vhosts, name);
}

struct vhost *server_vhost_add(struct server *s, struct wire_bytes name)
{
    struct vhost *vh = server_vhost_find(s, name);

    if (vh != NULL)
        return vh;
    vh = vhost_new(name, s->loop);
    vh->default_delivery_limit = s->cfg->delivery_limit;
    vh->refuse_streams = s->cluster != NULL;
    persist_attach(s->persist, vh, s->cfg->queue_memory_window, &s->queue_budget);
    hmap_put(&s->vhosts, vh->name, vh);
    return vh;
}

void server_auth_changed(struct server *s)
{
    persist_auth_save(s->persist, s->auth);
}

struct channel *server_reply_channel(struct server *s, struct wire_bytes address)
{
    return hmap_get(&s->reply_channels, address);
}

void server_reply_register(struct server *s, struct channel *ch)
{
    hmap_put(&s->reply_channels, wire_cstr(ch->reply_address), ch);
}

void server_reply_forget(struct server *s, struct channel *ch)
{
    hmap_remove(&s->reply_channels, wire_cstr(ch->reply_address));
}
