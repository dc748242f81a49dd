/* Scenario 3: peak shaving.
 *
 * A producer bursts far faster than its consumers can go: a million messages in a few
 * seconds (an import, a flash sale, a batch job), while the consumers handle a fixed number
 * per second. The broker takes the whole burst, keeps it in order, and the consumers drain it
 * at their own pace; nothing is lost. The backlog must not live in the broker's memory: Warren
 * keeps queue_memory_window messages per queue in memory and the rest in a spill file, so its
 * memory stays flat whatever the backlog.
 *
 * The program runs three kinds of threads, each with its own connection: one producer (no
 * pacing, no confirms: it goes as fast as the socket lets it), PEAK_CONSUMERS consumers paced
 * to PEAK_DRAIN_RATE messages per second in all, and this main thread, which prints the
 * backlog (a passive queue.declare) and the broker's resident memory (VmRSS of
 * /proc/WARREND_PID/status) twice a second. Every body carries its sequence number; at the end
 * each number must have arrived exactly once.
 *
 * Environment: AMQP_HOST, AMQP_PORT (127.0.0.1:5672); PEAK_MESSAGES (1000000),
 * PEAK_BODY_BYTES (512), PEAK_DRAIN_RATE (50000 per second), PEAK_CONSUMERS (2); WARREND_PID,
 * the broker's process (without it, the one process named warrend, if there is exactly one);
 * PEAK_RSS_GROWTH_MB (64), the most the broker's memory may grow over the run.
 *
 * Output: progress lines, then
 *   RESULT published=.. consumed=.. lost=.. duplicates=.. max_backlog=.. backlog_mb=..
 *          burst_s=.. publish_rate=.. drain_s=.. rss_start_mb=.. rss_max_mb=.. rss_growth_mb=..
 * and status 1 if a message was lost or duplicated, or memory grew past the bound. */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE          "ex03.backlog"
#define PREFETCH       1000 /* deliveries a consumer may hold unacked */
#define ACK_EVERY      100  /* a consumer acks with `multiple` once per this many */
#define STALL_SECONDS  30   /* no progress for this long ends the run as a failure */
#define REPORT_EVERY_S 0.5

static const char *host = "127.0.0.1";
static int port = 5672;
static uint64_t total_msgs = 1000000;
static size_t body_bytes = 512;
static double drain_rate = 50000;
static int consumers = 2;
static double rss_growth_limit_mb = 64;

static atomic_ulong published;
static atomic_ulong consumed;
static atomic_ulong duplicates;
static atomic_bool burst_done;
static double burst_start_s, burst_s; /* burst_s is written before burst_done is set */
static atomic_bool stop;
static _Atomic unsigned char *seen; /* one per sequence number: how often it arrived */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, amqp_rpc_reply_t r)
{
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        fprintf(stderr, "FAILED: %s: channel closed: %d %.*s\n", what, m->reply_code,
                (int)m->reply_text.len, (char *)m->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        fprintf(stderr, "FAILED: %s: %s\n", what, amqp_error_string2(r.library_error));
    } else {
        fprintf(stderr, "FAILED: %s (reply type %d)\n", what, r.reply_type);
    }
    exit(1);
}

/* A logged-in connection with channel 1 open. */
static amqp_connection_state_t open_connection(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);

    if (s == NULL || amqp_socket_open(s, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "FAILED: cannot connect to %s:%d\n", host, port);
        exit(1);
    }
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        die("login", r);
    amqp_channel_open(c, 1);
    if ((r = amqp_get_rpc_reply(c)).reply_type != AMQP_RESPONSE_NORMAL)
        die("channel.open", r);
    return c;
}

static void close_connection(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* The burst: every message as fast as the socket takes it. The body starts with its
 * sequence number; the rest is padding standing in for a real payload. */
static void *producer(void *arg)
{
    amqp_connection_state_t c = open_connection();
    uint8_t *body = calloc(1, body_bytes);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};

    (void)arg;
    memset(body + 8, 'x', body_bytes - 8);
    for (uint64_t seq = 0; seq < total_msgs; seq++) {
        memcpy(body, &seq, sizeof seq);
        int rc = amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(QUEUE), 0, 0, &props,
                                    (amqp_bytes_t){.len = body_bytes, .bytes = body});
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "FAILED: publish: %s\n", amqp_error_string2(rc));
            exit(1);
        }
        atomic_fetch_add(&published, 1);
    }
    /* A synchronous round trip on the same channel: when basic.qos-ok comes back, the broker
     * has taken every publish before it. */
    amqp_basic_qos(c, 1, 0, 0, 0);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        die("basic.qos after the burst", amqp_get_rpc_reply(c));
    burst_s = now_s() - burst_start_s;
    atomic_store(&burst_done, true);
    close_connection(c);
    free(body);
    return NULL;
}

/* A consumer that handles rate_per_s messages a second: it sleeps whenever it is ahead of
 * that schedule, as a consumer bound by a database or an API would be. */
static void *consumer(void *arg)
{
    double rate_per_s = *(double *)arg;
    amqp_connection_state_t c = open_connection();
    uint64_t mine = 0, unacked = 0, last_tag = 0;
    double start;

    amqp_basic_qos(c, 1, 0, PREFETCH, 0);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        die("basic.qos", amqp_get_rpc_reply(c));
    amqp_basic_consume(c, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        die("basic.consume", amqp_get_rpc_reply(c));
    start = now_s();
    while (!atomic_load(&stop)) {
        struct timeval timeout = {.tv_sec = 0, .tv_usec = 100000};
        amqp_envelope_t env;
        amqp_rpc_reply_t r;
        uint64_t seq;

        amqp_maybe_release_buffers(c);
        r = amqp_consume_message(c, &env, &timeout, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (unacked > 0) { /* idle: ack what is held so the count is exact */
                amqp_basic_ack(c, 1, last_tag, 1);
                unacked = 0;
            }
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            die("consume", r);
        if (env.message.body.len >= sizeof seq) {
            memcpy(&seq, env.message.body.bytes, sizeof seq);
            if (seq < total_msgs && atomic_fetch_add(&seen[seq], 1) != 0)
                atomic_fetch_add(&duplicates, 1);
        }
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        mine++;
        atomic_fetch_add(&consumed, 1);
        if (++unacked >= ACK_EVERY) {
            amqp_basic_ack(c, 1, last_tag, 1);
            unacked = 0;
        }
        double ahead_s = (double)mine / rate_per_s - (now_s() - start);
        if (ahead_s > 0.001)
            usleep((useconds_t)(ahead_s * 1e6));
    }
    if (unacked > 0)
        amqp_basic_ack(c, 1, last_tag, 1);
    close_connection(c);
    return NULL;
}

/* The broker process whose memory is shown: WARREND_PID, or the only process named
 * warrend. 0 if unknown. */
static long broker_pid(void)
{
    const char *env = getenv("WARREND_PID");
    DIR *d;
    struct dirent *e;
    long found = 0;
    int matches = 0;

    if (env != NULL && *env != '\0')
        return atol(env);
    if ((d = opendir("/proc")) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        FILE *f;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(comm, sizeof comm, f) != NULL && strcmp(comm, "warrend\n") == 0) {
            found = atol(e->d_name);
            matches++;
        }
        fclose(f);
    }
    closedir(d);
    return matches == 1 ? found : 0;
}

/* Resident memory of pid in MiB, or -1. */
static double rss_mb(long pid)
{
    char path[64], line[256];
    FILE *f;
    double mb = -1;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long kb;
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
            mb = (double)kb / 1024.0;
    }
    fclose(f);
    return mb;
}

/* Ready messages in the queue, from a passive declare. */
static uint64_t backlog(amqp_connection_state_t c)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(QUEUE), 1, 0, 0, 0, amqp_empty_table);
    if (ok == NULL)
        die("passive queue.declare", amqp_get_rpc_reply(c));
    return ok->message_count;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : dflt;
}

int main(void)
{
    pthread_t prod, *cons;
    double per_consumer, start, last_progress, rss_start, rss_max;
    bool burst_reported = false;
    uint64_t max_backlog = 0, last_consumed = 0, lost = 0;
    amqp_connection_state_t mon;
    long pid;

    host = env_or("AMQP_HOST", host);
    port = atoi(env_or("AMQP_PORT", "5672"));
    total_msgs = strtoull(env_or("PEAK_MESSAGES", "1000000"), NULL, 10);
    body_bytes = strtoul(env_or("PEAK_BODY_BYTES", "512"), NULL, 10);
    drain_rate = atof(env_or("PEAK_DRAIN_RATE", "50000"));
    consumers = atoi(env_or("PEAK_CONSUMERS", "2"));
    rss_growth_limit_mb = atof(env_or("PEAK_RSS_GROWTH_MB", "64"));
    if (body_bytes < 8 || consumers < 1 || drain_rate <= 0 || total_msgs == 0) {
        fprintf(stderr, "PEAK_BODY_BYTES >= 8, PEAK_CONSUMERS >= 1, PEAK_DRAIN_RATE > 0 and "
                        "PEAK_MESSAGES > 0, please\n");
        return 2;
    }
    seen = calloc(total_msgs, sizeof *seen);
    cons = calloc((size_t)consumers, sizeof *cons);
    pid = broker_pid();

    /* A fresh queue. Not durable and transient messages: the point is memory, not disk
     * safety (scenario 9 is about that); Warren spills transient backlogs too. */
    mon = open_connection();
    amqp_queue_delete(mon, 1, amqp_cstring_bytes(QUEUE), 0, 0);
    amqp_get_rpc_reply(mon);
    amqp_queue_declare(mon, 1, amqp_cstring_bytes(QUEUE), 0, 0, 0, 0, amqp_empty_table);
    if (amqp_get_rpc_reply(mon).reply_type != AMQP_RESPONSE_NORMAL)
        die("queue.declare", amqp_get_rpc_reply(mon));

    rss_start = rss_max = rss_mb(pid);
    printf("%llu messages of %zu bytes (%.0f MB), consumers drain %.0f/s; broker pid %ld, "
           "%.1f MB resident\n",
           (unsigned long long)total_msgs, body_bytes,
           (double)total_msgs * (double)body_bytes / 1e6, drain_rate, pid, rss_start);
    if (pid == 0)
        printf("(set WARREND_PID to see the broker's memory)\n");

    per_consumer = drain_rate / consumers;
    for (int i = 0; i < consumers; i++)
        pthread_create(&cons[i], NULL, consumer, &per_consumer);
    start = last_progress = burst_start_s = now_s();
    pthread_create(&prod, NULL, producer, NULL);

    for (;;) {
        usleep((useconds_t)(REPORT_EVERY_S * 1e6));
        double t = now_s() - start, rss = rss_mb(pid);
        uint64_t b = backlog(mon), done = atomic_load(&consumed);

        if (b > max_backlog)
            max_backlog = b;
        if (rss > rss_max)
            rss_max = rss;
        printf("t=%5.1fs published=%-8lu consumed=%-8lu backlog=%-8llu broker_rss=%.1fMB\n", t,
               atomic_load(&published), done, (unsigned long long)b, rss);
        if (!burst_reported && atomic_load(&burst_done)) {
            printf("burst over: %llu messages in %.2f s\n", (unsigned long long)total_msgs,
                   burst_s);
            burst_reported = true;
        }
        fflush(stdout);
        if (done != last_consumed) {
            last_consumed = done;
            last_progress = now_s();
        }
        if (done >= total_msgs && atomic_load(&burst_done))
            break;
        if (now_s() - last_progress > STALL_SECONDS) {
            /* The producer may be stuck in a send: leave without waiting for it. */
            printf("FAILED: no message consumed for %d s (published %lu, consumed %lu)\n",
                   STALL_SECONDS, atomic_load(&published), done);
            exit(1);
        }
    }
    double drain_s = now_s() - start;

    atomic_store(&stop, true);
    for (int i = 0; i < consumers; i++)
        pthread_join(cons[i], NULL);
    pthread_join(prod, NULL);
    for (uint64_t i = 0; i < total_msgs; i++)
        lost += atomic_load(&seen[i]) == 0;
    amqp_queue_delete(mon, 1, amqp_cstring_bytes(QUEUE), 0, 0);
    amqp_get_rpc_reply(mon);
    close_connection(mon);

    printf("RESULT published=%lu consumed=%lu lost=%llu duplicates=%lu max_backlog=%llu "
           "backlog_mb=%.0f burst_s=%.1f publish_rate=%.0f drain_s=%.1f rss_start_mb=%.1f "
           "rss_max_mb=%.1f rss_growth_mb=%.1f\n",
           atomic_load(&published), atomic_load(&consumed), (unsigned long long)lost,
           atomic_load(&duplicates), (unsigned long long)max_backlog,
           (double)max_backlog * (double)body_bytes / 1e6, burst_s, (double)total_msgs / burst_s,
           drain_s, rss_start, rss_max, rss_max - rss_start);
    fflush(stdout);
    free(seen);
    free(cons);
    if (lost != 0 || atomic_load(&duplicates) != 0) {
        printf("FAILED: every message must arrive exactly once\n");
        return 1;
    }
    if (pid != 0 && rss_max - rss_start > rss_growth_limit_mb) {
        printf("FAILED: the broker's memory grew by %.1f MB, more than %.0f MB\n",
               rss_max - rss_start, rss_growth_limit_mb);
        return 1;
    }
    return 0;
}
