/* The crash test: publishers with confirms run while warrend is killed with SIGKILL at random
 * moments; after each restart the queue is drained and every confirmed message must have
 * been received.
 *
 * One durable queue. Each cycle starts CRASH_PUBLISHERS (default 3) publisher connections,
 * each keeping a window of persistent messages in flight in confirm mode, every message with
 * a unique id in its headers (crash-id, a long) and a body of random size; and, in most
 * cycles, a consumer that acks in batches of random size, so that at the kill some
 * deliveries are unacked and the queue has a backlog. After a random time the broker gets
 * SIGKILL, is started again on the same data directory, and the queue is drained. Then:
 *
 *   - every confirmed message has been received at least once (by the consumers of any
 *     cycle or by a drain): a confirmed message lost is a failure;
 *   - a message received twice must carry redelivered the second time (its ack may have
 *     been lost in the crash); a duplicate without it is a failure;
 *   - an id never published is a failure;
 *   - unconfirmed messages (in flight at the kill) may be there or not: counted, reported;
 *   - a cycle that published nothing is a failure (it would have tested nothing), and so is
 *     a run whose ids ran out (IDS_PER_CYCLE of them for each cycle asked).
 *
 * The broker's log must hold no [error] line and no sanitizer report, and the last instance
 * must stop on SIGTERM with status 0.
 *
 * Environment: WARREND (the broker to test), CRASH_CYCLES (default 5, at most 4000), CRASH_SEED
 * (default from the clock; printed, so a failing run can be repeated), CRASH_PUBLISHERS, TMPDIR.
 * Run through crash_test.sh, which `make check` runs with 5 cycles; the full run is
 * `CRASH_CYCLES=25 tests/crash/crash_test.sh` from the build directory. */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define QUEUE              "crash.q"
#define IDS_PER_CYCLE      (1u << 20) /* on average; a cycle takes some 100,000 on a quick machine */
#define MAX_CYCLES         4000       /* so that every id fits in 32 bits */
#define MAX_PUBLISHERS     16
#define READY_TIMEOUT_MS   20000
#define STOP_TIMEOUT_MS    10000
#define IO_TIMEOUT_MS      100 /* how long a worker waits for a frame before checking stop */
#define CONNECT_TIMEOUT_S  5
#define DRAIN_QUIET_MS     300
#define DRAIN_TIMEOUT_MS   60000
#define MIN_RUN_MS         150  /* a cycle runs this long at least before the kill ... */
#define MAX_RUN_MS         1500 /* ... and at most this */
#define MAX_BODY_BYTES     1024
#define PUBLISH_WINDOW_MAX 256
#define READY_MARK         "ready: listening on "

/* What is known about each id (index), written by the thread that owns the event and read
 * by the main thread once the workers are joined. */
enum { ID_UNUSED = 0, ID_PUBLISHED, ID_CONFIRMED, ID_NACKED };
static uint32_t id_space;         /* ids 1 to id_space - 1: IDS_PER_CYCLE for each cycle asked */
static _Atomic uint8_t *id_state; /* [id_space]; a publisher writes it while a consumer reads */
static uint8_t *id_received;      /* [id_space]: times received, saturating at 255 */
static atomic_uint next_id = 1;
static atomic_bool ids_ran_out;

static atomic_bool stop_workers;
static atomic_ulong published, confirmed, nacked, received, duplicates;
static atomic_ulong unflagged_duplicates, unknown_ids, publisher_errors;

/* The broker. */
static struct {
    const char *path;
    pid_t pid;
    int port;
    char dir[PATH_MAX - 64];
    char conf_path[PATH_MAX];
    char data_path[PATH_MAX];
    char log_path[PATH_MAX];
    long log_start; /* offset of the running instance's first line */
} broker = {.pid = -1};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A small generator per thread (rand() shares state), seeded from the run's seed. */
static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static uint32_t rnd_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + rnd(s) % (hi - lo + 1);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- the broker process ---------------------------------------------------------------- */

static char *read_log(void)
{
    FILE *f = fopen(broker.log_path, "rb");
    struct stat st;
    char *text;
    size_t n;

    if (f == NULL || fstat(fileno(f), &st) != 0) {
        if (f != NULL)
            fclose(f);
        return NULL;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(text, 1, (size_t)st.st_size, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void print_log_tail(void)
{
    char *text = read_log();
    const char *start;
    int lines = 0;

    if (text == NULL)
        return;
    start = text + strlen(text);
    while (start > text && lines <= 30) {
        start--;
        if (*start == '\n' && start[1] != '\0')
            lines++;
    }
    fprintf(stderr, "---- last lines of %s ----\n%s---- end of log ----\n", broker.log_path, start);
    free(text);
}

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "crash_test: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (broker.pid > 0) {
        kill(broker.pid, SIGKILL);
        waitpid(broker.pid, NULL, 0);
    }
    if (broker.log_path[0] != '\0') {
        print_log_tail();
        fprintf(stderr, "crash_test: data, config and log kept in %s\n", broker.dir);
    }
    exit(1);
}

/* The port after the ready mark of the running instance's lines; 0 while not there yet. */
static int ready_port(const char *log)
{
    const char *mark = strstr(log, READY_MARK), *addr, *end, *colon = NULL;

    if (mark == NULL || strchr(mark, '\n') == NULL)
        return 0;
    addr = mark + strlen(READY_MARK);
    end = addr + strcspn(addr, " \r\n");
    for (const char *p = addr; p < end; p++) {
        if (*p == ':')
            colon = p;
    }
    return colon != NULL ? atoi(colon + 1) : -1;
}

static void start_broker(void)
{
    long long deadline = now_ms() + READY_TIMEOUT_MS;
    struct stat st;
    int status;

    broker.log_start = stat(broker.log_path, &st) == 0 ? (long)st.st_size : 0;
    fflush(NULL);
    broker.pid = fork();
    if (broker.pid < 0)
        die("fork: %s", strerror(errno));
    if (broker.pid == 0) {
        int log_fd = open(broker.log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null_fd = open("/dev/null", O_RDONLY);

        if (log_fd < 0 || null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 ||
            dup2(log_fd, 2) < 0)
            _exit(126);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        execl(broker.path, broker.path, "-c", broker.conf_path, "--port", "0", "--data-dir",
              broker.data_path, (char *)NULL);
        _exit(127);
    }
    for (;;) {
        char *log = read_log();
        int port = 0;

        if (log != NULL && (long)strlen(log) >= broker.log_start)
            port = ready_port(log + broker.log_start);
        free(log);
        if (port < 0)
            die("cannot parse the port of warrend's ready line");
        if (port > 0) {
            broker.port = port;
            return;
        }
        if (waitpid(broker.pid, &status, WNOHANG) == broker.pid) {
            broker.pid = -1;
            die("warrend exited before it was ready (status 0x%x)", (unsigned)status);
        }
        if (now_ms() > deadline)
            die("warrend was not ready within %d ms", READY_TIMEOUT_MS);
        sleep_ms(10);
    }
}

static void kill_broker(void)
{
    int status;

    if (kill(broker.pid, SIGKILL) != 0 || waitpid(broker.pid, &status, 0) != broker.pid)
        die("SIGKILL warrend: %s", strerror(errno));
    broker.pid = -1;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        die("warrend ended on its own before the kill (status 0x%x)", (unsigned)status);
}

static int stop_broker(void)
{
    long long deadline = now_ms() + STOP_TIMEOUT_MS;
    int status = 0;
    pid_t got;

    kill(broker.pid, SIGTERM);
    while ((got = waitpid(broker.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(10);
    if (got != broker.pid)
        die("warrend did not exit within %d ms of SIGTERM", STOP_TIMEOUT_MS);
    broker.pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "crash_test: warrend stopped with status 0x%x after SIGTERM\n",
                (unsigned)status);
        return -1;
    }
    return 0;
}

/* Lines of the whole log (every instance) that say something went wrong. */
static int scan_log(void)
{
    static const char *const bad[] = {"[error]", "ERROR: AddressSanitizer",
                                      "runtime error:", "LeakSanitizer"};
    char *text = read_log();
    int problems = 0;

    if (text == NULL)
        die("cannot read %s", broker.log_path);
    for (char *line = text; *line != '\0';) {
        char *nl = strchr(line, '\n');

        if (nl != NULL)
            *nl = '\0';
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (strstr(line, bad[i]) != NULL) {
                fprintf(stderr, "crash_test: warrend log: %s\n", line);
                problems++;
                break;
            }
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
    return problems;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    FILE *f;

    snprintf(broker.dir, sizeof broker.dir, "%s/warren-crash.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(broker.dir) == NULL)
        die("mkdtemp %s: %s", broker.dir, strerror(errno));
    snprintf(broker.conf_path, sizeof broker.conf_path, "%s/warren.conf", broker.dir);
    snprintf(broker.data_path, sizeof broker.data_path, "%s/data", broker.dir);
    snprintf(broker.log_path, sizeof broker.log_path, "%s/warrend.log", broker.dir);
    f = fopen(broker.conf_path, "w");
    /* The HTTP listeners stay off: other test programs run at the same time and would
     * collide on their default ports. */
    if (f == NULL ||
        fputs("log.level = info\nmanagement.tcp.port = 0\nprometheus.tcp.port = 0\n", f) < 0 ||
        fclose(f) != 0)
        die("cannot write %s", broker.conf_path);
}

/* ---- clients --------------------------------------------------------------------------- */

/* A connection to the running broker with channel 1 open, or NULL. */
static amqp_connection_state_t client_connect(void)
{
    struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    amqp_rpc_reply_t r;

    if (sock == NULL || amqp_socket_open_noblock(sock, "127.0.0.1", broker.port, &tv) != 0)
        goto fail;
    amqp_set_handshake_timeout(c, &tv);
    amqp_set_rpc_timeout(c, &tv);
    r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    amqp_channel_open(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    return c;
fail:
    amqp_destroy_connection(c);
    return NULL;
}

/* Records one received message: its id from the crash-id header. */
static void record_receipt(const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    int64_t id = -1;

    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            if (e->key.len == 8 && memcmp(e->key.bytes, "crash-id", 8) == 0 &&
                e->value.kind == AMQP_FIELD_KIND_I64)
                id = e->value.value.i64;
        }
    }
    atomic_fetch_add(&received, 1);
    if (id <= 0 || id >= (int64_t)id_space || id_state[id] == ID_UNUSED) {
        atomic_fetch_add(&unknown_ids, 1);
        fprintf(stderr, "crash_test: received a message with unknown id %lld\n", (long long)id);
        return;
    }
    if (id_received[id] > 0) {
        atomic_fetch_add(&duplicates, 1);
        if (!env->redelivered) {
            atomic_fetch_add(&unflagged_duplicates, 1);
            fprintf(stderr,
                    "crash_test: message %lld received %u times, the last without redelivered\n",
                    (long long)id, id_received[id] + 1u);
        }
    }
    if (id_received[id] < 255)
        id_received[id]++;
}

struct publisher {
    pthread_t thread;
    uint64_t seed;
    uint32_t window;
    uint32_t *ids; /* ids[tag]: the id published with that delivery tag */
    uint8_t *settled;
    size_t cap;
};

static void settle(struct publisher *pub, uint64_t tag, bool multiple, bool ack, uint64_t *low,
                   uint64_t last)
{
    uint64_t from = multiple ? *low : tag;

    if (tag == 0 || tag > last) {
        fprintf(stderr, "crash_test: confirm of tag %llu, but only %llu were published\n",
                (unsigned long long)tag, (unsigned long long)last);
        atomic_fetch_add(&unknown_ids, 1);
        return;
    }
    for (uint64_t t = from; t <= tag; t++) {
        if (pub->settled[t])
            continue;
        pub->settled[t] = 1;
        id_state[pub->ids[t]] = ack ? ID_CONFIRMED : ID_NACKED;
        atomic_fetch_add(ack ? &confirmed : &nacked, 1);
    }
    while (*low <= last && pub->settled[*low])
        (*low)++;
}

/* Publishes until the broker goes away (or stop_workers): persistent messages with unique
 * ids, keeping up to window of them unconfirmed. */
static void *publisher_main(void *arg)
{
    struct publisher *pub = arg;
    amqp_connection_state_t c = client_connect();
    uint64_t tag = 0, low = 1;
    char body[MAX_BODY_BYTES];
    amqp_table_entry_t header;
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .delivery_mode = 2,
        .headers = {.num_entries = 1, .entries = &header},
    };

    if (c == NULL)
        return NULL; /* killed before this publisher got going */
    amqp_confirm_select(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        goto out;
    memset(body, 'c', sizeof body);
    while (!atomic_load(&stop_workers)) {
        struct timeval tv = {.tv_usec = IO_TIMEOUT_MS * 1000};
        amqp_frame_t frame;
        int rc;

        while (tag + 1 - low < pub->window) {
            uint32_t id = atomic_fetch_add(&next_id, 1);
            size_t len = rnd_range(&pub->seed, 16, MAX_BODY_BYTES);

            if (id >= id_space) {
                atomic_store(&ids_ran_out, true);
                goto out;
            }
            if (tag + 1 >= pub->cap) {
                pub->cap = pub->cap ? pub->cap * 2 : 4096;
                pub->ids = realloc(pub->ids, pub->cap * sizeof *pub->ids);
                pub->settled = realloc(pub->settled, pub->cap);
                if (pub->ids == NULL || pub->settled == NULL)
                    die("out of memory");
            }
            header = (amqp_table_entry_t){.key = amqp_cstring_bytes("crash-id"),
                                          .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = id}};
            snprintf(body, 32, "crash %u ", id);
            body[strlen(body)] = 'c';
            /* Marked before the publish: a message may reach the queue (and a consumer)
             * even if the write fails half-way. */
            id_state[id] = ID_PUBLISHED;
            rc = amqp_basic_publish(c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(QUEUE), 0, 0,
                                    &props, (amqp_bytes_t){.len = len, .bytes = body});
            if (rc != AMQP_STATUS_OK)
                goto out;
            tag++;
            pub->ids[tag] = id;
            pub->settled[tag] = 0;
            atomic_fetch_add(&published, 1);
        }
        rc = amqp_simple_wait_frame_noblock(c, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK)
            break;
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = frame.payload.method.decoded;
            settle(pub, a->delivery_tag, a->multiple, true, &low, tag);
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            const amqp_basic_nack_t *n = frame.payload.method.decoded;
            settle(pub, n->delivery_tag, n->multiple, false, &low, tag);
        } else {
            fprintf(stderr, "crash_test: publisher got %s\n",
                    amqp_method_name(frame.payload.method.id));
            atomic_fetch_add(&publisher_errors, 1);
            break;
        }
        amqp_maybe_release_buffers(c);
    }
out:
    amqp_destroy_connection(c);
    return NULL;
}

struct consumer {
    pthread_t thread;
    uint64_t seed;
    /* The drain: acks at once and returns once nothing came for DRAIN_QUIET_MS. It acks
     * (rather than consuming with no-ack) so that a delivery that reaches it as it closes is
     * requeued and taken by the next round, not dropped unseen. */
    bool drain;
    int error;            /* the drain: it could not finish */
    long long max_gap_ms; /* the drain: the longest wait for a delivery before the last */
};

/* Consumes QUEUE, recording every message; in a cycle acks in batches of random size, so
 * that some deliveries are unacked when the broker is killed. */
static void *consumer_main(void *arg)
{
    struct consumer *con = arg;
    amqp_connection_state_t c = client_connect();
    long long last_delivery = now_ms();
    uint32_t batch = 0, unacked = 0;
    uint64_t last_tag = 0;

    if (c == NULL) {
        con->error = 1;
        return NULL;
    }
    amqp_basic_qos(c, 1, 0, con->drain ? 1000 : 200, 0);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    amqp_basic_consume(c, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    batch = con->drain ? 100 : rnd_range(&con->seed, 1, 50);
    while (!atomic_load(&stop_workers)) {
        struct timeval tv = {.tv_usec = IO_TIMEOUT_MS * 1000};
        amqp_envelope_t env;
        amqp_rpc_reply_t r;

        amqp_maybe_release_buffers(c);
        r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (con->drain && now_ms() - last_delivery >= DRAIN_QUIET_MS)
                break;
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            goto fail; /* the broker went away, or closed the channel */
        if (now_ms() - last_delivery > con->max_gap_ms)
            con->max_gap_ms = now_ms() - last_delivery;
        last_delivery = now_ms();
        record_receipt(&env);
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        if (++unacked >= batch) {
            if (amqp_basic_ack(c, 1, last_tag, 1) != AMQP_STATUS_OK)
                goto fail;
            unacked = 0;
            if (con->drain)
                continue;
            batch = rnd_range(&con->seed, 1, 50);
            /* Slower than the publishers, so the queue has a backlog when the broker is
             * killed: that backlog is what recovery must bring back. */
            sleep_ms(rnd_range(&con->seed, 1, 4));
        }
    }
    if (unacked > 0 && amqp_basic_ack(c, 1, last_tag, 1) != AMQP_STATUS_OK)
        goto fail;
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return NULL;
fail:
    con->error = 1;
    amqp_destroy_connection(c);
    return NULL;
}

/* Messages still in QUEUE (passive declare), or -1 if the broker cannot say. */
static long queue_depth(void)
{
    amqp_connection_state_t c = client_connect();
    amqp_queue_declare_ok_t *ok;
    long n = -1;

    if (c == NULL)
        return -1;
    ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(QUEUE), 1, 0, 0, 0, amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL)
        n = ok->message_count;
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return n;
}

/* Takes everything in QUEUE until it is empty; returns how many rounds that took (a round
 * ends after DRAIN_QUIET_MS without a delivery, so more than one means the broker paused
 * that long while it still had messages) and the longest pause between two deliveries. */
static int drain(uint64_t seed, long long *max_gap_ms)
{
    long long deadline = now_ms() + DRAIN_TIMEOUT_MS;
    int rounds = 0;

    *max_gap_ms = 0;
    for (;;) {
        struct consumer con = {.seed = seed, .drain = true};
        long depth;

        rounds++;
        atomic_store(&stop_workers, false);
        consumer_main(&con);
        if (con.error)
            die("the drain's consumer failed");
        if (con.max_gap_ms > *max_gap_ms)
            *max_gap_ms = con.max_gap_ms;
        depth = queue_depth();
        if (depth == 0)
            return rounds;
        if (depth < 0)
            die("queue %s is gone after the restart", QUEUE);
        if (now_ms() > deadline)
            die("queue %s still holds %ld messages after %d ms of draining", QUEUE, depth,
                DRAIN_TIMEOUT_MS);
    }
}

/* ---- the check ------------------------------------------------------------------------- */

struct tally {
    unsigned long confirmed_lost;
    uint32_t first_lost, last_lost; /* ids, when some were lost */
    unsigned long unconfirmed_present;
    unsigned long unconfirmed_missing;
};

static struct tally check_all(void)
{
    struct tally t = {0};
    unsigned shown = 0;
    uint32_t end = atomic_load(&next_id);

    if (end > id_space)
        end = id_space;
    for (uint32_t id = 1; id < end; id++) {
        switch (atomic_load(&id_state[id])) {
        case ID_CONFIRMED:
            if (id_received[id] == 0) {
                if (t.confirmed_lost++ == 0)
                    t.first_lost = id;
                t.last_lost = id;
                if (shown++ < 10)
                    fprintf(stderr, "crash_test: confirmed message %u was lost\n", id);
            }
            break;
        case ID_PUBLISHED:
        case ID_NACKED:
            if (id_received[id] > 0)
                t.unconfirmed_present++;
            else
                t.unconfirmed_missing++;
            break;
        default:
            break;
        }
    }
    return t;
}

/* next_id when each cycle started, to tell in which cycle lost messages were published. */
static uint32_t cycle_first_id[MAX_CYCLES + 2];

static unsigned long cycle_of(uint32_t id, unsigned long cycles)
{
    unsigned long c = 1;

    while (c < cycles && cycle_first_id[c + 1] <= id)
        c++;
    return c;
}

static void report_lost(const struct tally *t, unsigned long cycles)
{
    fprintf(stderr,
            "crash_test: %lu confirmed messages lost, ids %u to %u, published in cycles %lu to "
            "%lu\n",
            t->confirmed_lost, t->first_lost, t->last_lost, cycle_of(t->first_lost, cycles),
            cycle_of(t->last_lost, cycles));
}

static unsigned long env_ulong(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    n = strtoul(v, &end, 10);
    if (*end != '\0')
        die("%s=%s is not a number", name, v);
    return n;
}

static void declare_queue(void)
{
    amqp_connection_state_t c = client_connect();

    if (c == NULL)
        die("cannot connect to warrend on port %d", broker.port);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(QUEUE), 0, 1, 0, 0, amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        die("cannot declare %s", QUEUE);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

int main(void)
{
    unsigned long cycles = env_ulong("CRASH_CYCLES", 5);
    unsigned long npub = env_ulong("CRASH_PUBLISHERS", 3);
    uint64_t seed = env_ulong("CRASH_SEED", (unsigned long)time(NULL) ^ (unsigned long)getpid());
    uint64_t main_rng = seed;
    struct publisher pubs[MAX_PUBLISHERS] = {0};
    long long started = now_ms();
    struct tally t = {0};
    int rc = 0;

    signal(SIGPIPE, SIG_IGN);
    broker.path = getenv("WARREND");
    if (broker.path == NULL || access(broker.path, X_OK) != 0)
        die("WARREND must name the warrend to test");
    if (cycles < 1 || cycles > MAX_CYCLES)
        die("CRASH_CYCLES must be 1 to %d", MAX_CYCLES);
    if (npub < 1 || npub > MAX_PUBLISHERS)
        die("CRASH_PUBLISHERS must be 1 to %d", MAX_PUBLISHERS);
    printf("crash_test: %lu cycles, %lu publishers, seed %llu\n", cycles, npub,
           (unsigned long long)seed);
    /* Zeroed pages are only mapped when written: the ids never handed out cost nothing. */
    id_space = (uint32_t)(cycles * IDS_PER_CYCLE + 1);
    id_state = calloc(id_space, sizeof *id_state);
    id_received = calloc(id_space, sizeof *id_received);
    if (id_state == NULL || id_received == NULL)
        die("cannot allocate the states of %u ids", id_space);
    setup_dir();
    start_broker();
    declare_queue();

    for (unsigned long cycle = 1; cycle <= cycles; cycle++) {
        struct consumer con = {.seed = rnd(&main_rng)};
        bool with_consumer = rnd(&main_rng) % 4 != 0;
        uint32_t run_ms = rnd_range(&main_rng, MIN_RUN_MS, MAX_RUN_MS);
        unsigned long published_before = atomic_load(&published);
        unsigned long confirmed_before = atomic_load(&confirmed);
        unsigned long received_before = atomic_load(&received);
        long long t0;
        long depth;
        long long max_gap_ms;
        int rounds;

        cycle_first_id[cycle] = atomic_load(&next_id);
        atomic_store(&stop_workers, false);
        for (unsigned long i = 0; i < npub; i++) {
            pubs[i].seed = rnd(&main_rng);
            pubs[i].window = rnd_range(&main_rng, 1, PUBLISH_WINDOW_MAX);
            if (pthread_create(&pubs[i].thread, NULL, publisher_main, &pubs[i]) != 0)
                die("pthread_create failed");
        }
        if (with_consumer && pthread_create(&con.thread, NULL, consumer_main, &con) != 0)
            die("pthread_create failed");
        sleep_ms(run_ms);
        kill_broker();
        t0 = now_ms();
        /* The workers see their connections fail; stop_workers covers any still
         * connecting. */
        atomic_store(&stop_workers, true);
        for (unsigned long i = 0; i < npub; i++)
            pthread_join(pubs[i].thread, NULL);
        if (with_consumer)
            pthread_join(con.thread, NULL);

        start_broker();
        depth = queue_depth();
        printf("crash_test: cycle %lu: killed after %u ms (%s consumer), restarted in %lld ms "
               "with %ld messages; ",
               cycle, run_ms, with_consumer ? "with" : "no", now_ms() - t0, depth);
        rounds = drain(rnd(&main_rng), &max_gap_ms);
        t = check_all();
        printf("drained in %d round%s (longest pause %lld ms); %lu published, %lu confirmed this "
               "cycle, %lu received; in all: %lu lost, %lu duplicates "
               "(%lu without redelivered), unconfirmed %lu present / %lu missing\n",
               rounds, rounds > 1 ? "s" : "", max_gap_ms,
               atomic_load(&published) - published_before,
               atomic_load(&confirmed) - confirmed_before, atomic_load(&received) - received_before,
               t.confirmed_lost, atomic_load(&duplicates), atomic_load(&unflagged_duplicates),
               t.unconfirmed_present, t.unconfirmed_missing);
        fflush(stdout);
        if (t.confirmed_lost > 0)
            report_lost(&t, cycle);
        /* A cycle whose publishers got nothing out tests nothing: it must not pass. */
        if (atomic_load(&published) == published_before)
            fprintf(stderr, "crash_test: cycle %lu published nothing\n", cycle);
        if (atomic_load(&ids_ran_out))
            fprintf(stderr,
                    "crash_test: the %u ids ran out in cycle %lu: the cycles took more than "
                    "IDS_PER_CYCLE (%u) on average\n",
                    id_space - 1, cycle, IDS_PER_CYCLE);
        if (t.confirmed_lost > 0 || atomic_load(&published) == published_before ||
            atomic_load(&ids_ran_out) || atomic_load(&unflagged_duplicates) > 0 ||
            atomic_load(&unknown_ids) > 0 || atomic_load(&publisher_errors) > 0) {
            rc = 1;
            break;
        }
    }

    if (stop_broker() != 0)
        rc = 1;
    if (scan_log() != 0)
        rc = 1;
    printf("crash_test: %s after %lld ms: %lu published, %lu confirmed, %lu nacked, %lu "
           "received, %lu confirmed lost, %lu duplicates (%lu without redelivered), %lu "
           "unknown ids; unconfirmed: %lu present, %lu missing\n",
           rc == 0 ? "PASS" : "FAIL", now_ms() - started, atomic_load(&published),
           atomic_load(&confirmed), atomic_load(&nacked), atomic_load(&received), t.confirmed_lost,
           atomic_load(&duplicates), atomic_load(&unflagged_duplicates), atomic_load(&unknown_ids),
           t.unconfirmed_present, t.unconfirmed_missing);
    if (rc != 0) {
        print_log_tail();
        fprintf(stderr, "crash_test: data, config and log kept in %s (seed %llu)\n", broker.dir,
                (unsigned long long)seed);
    } else {
        nftw(broker.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    for (unsigned long i = 0; i < npub; i++) {
        free(pubs[i].ids);
        free(pubs[i].settled);
    }
    free(id_state);
    free(id_received);
    return rc;
}
