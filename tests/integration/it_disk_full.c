/* A full disk: the broker's data directory on a tmpfs of a few MiB (mounted by this test,
 * so it needs root; skipped otherwise).
 *
 * With disk_free_limit.absolute = 0 the disk alarm never fires and the disk really fills:
 * every message the broker confirmed is still delivered, publishes in flight are nacked,
 * a durable queue.declare that cannot be written down is refused (connection.close 506) and
 * the queue is not there, consumers' acks are kept, and once space is freed the store writes
 * again by itself.
 *
 * With a disk_free_limit, a publisher as fast as it can be is blocked (connection.blocked)
 * before the disk is full, though the broker otherwise looks at the disk once a second.
 *
 * warrend only: it mounts over the data directory of its own broker. */
#define _DEFAULT_SOURCE
#include "harness.h"
#include "sec_util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define BODY_BYTES  4096
#define MAX_PUBLISH 40000 /* far more than a tmpfs of DISK_MIB can hold */
#define BATCH       256
#define WAIT_MS     10000

static char mounted[PATH_MAX];

/* A failed assertion leaves the test function at once: the tmpfs goes at exit then. */
static void unmount_at_exit(void)
{
    if (mounted[0] != '\0')
        umount2(mounted, MNT_DETACH);
}

/* Stops the broker, mounts a tmpfs of mib MiB over its data directory, and starts it again
 * with that directory empty. */
static void broker_on_tmpfs(unsigned mib, const char *const *allowed_errors)
{
    char opts[32];

    it_broker_stop(false);
    snprintf(opts, sizeof opts, "size=%um", mib);
    snprintf(mounted, sizeof mounted, "%s", it_data_dir());
    ck_assert_msg(mount("warren-it", mounted, "tmpfs", 0, opts) == 0, "mount tmpfs on %s: %s",
                  mounted, strerror(errno));
    atexit(unmount_at_exit);
    it_broker_start(allowed_errors);
}

static void broker_off_tmpfs(void)
{
    it_broker_stop(false);
    ck_assert_msg(umount(mounted) == 0, "umount %s: %s", mounted, strerror(errno));
    mounted[0] = '\0';
    it_broker_start(NULL);
}

static uint64_t free_bytes(void)
{
    struct statvfs fs;

    ck_assert_int_eq(statvfs(mounted, &fs), 0);
    return (uint64_t)fs.f_bavail * fs.f_frsize;
}

/* A file of about n bytes in the data directory (n 0: as much as fits). */
static void fill_file(const char *name, uint64_t n)
{
    static char block[64 * 1024];
    char path[PATH_MAX + 32];
    uint64_t done = 0;
    int fd;

    snprintf(path, sizeof path, "%s/%s", mounted, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    while (n == 0 || done < n) {
        ssize_t w = write(fd, block, sizeof block);
        if (w <= 0)
            break;
        done += (uint64_t)w;
    }
    close(fd);
}

static void remove_file(const char *name)
{
    char path[PATH_MAX + 32];

    snprintf(path, sizeof path, "%s/%s", mounted, name);
    ck_assert_int_eq(unlink(path), 0);
}

static void publish_persistent(amqp_connection_state_t c, const char *q, uint32_t index)
{
    static char body[BODY_BYTES];
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};

    memset(body, 'x', sizeof body);
    memcpy(body, &index, sizeof index);
    it_publish_bytes(c, 1, "", q, &props, (amqp_bytes_t){sizeof body, body});
}

static uint32_t index_of(const struct it_msg *m)
{
    uint32_t index;

    ck_assert_uint_eq(m->message.body.len, BODY_BYTES);
    memcpy(&index, m->message.body.bytes, sizeof index);
    return index;
}

/* Publishes in batches until the broker nacks one; state[i] is the fate of message i (index
 * i - 1). Returns the number published. */
static uint32_t publish_until_nacked(amqp_connection_state_t c, const char *q,
                                     enum it_confirm *state)
{
    uint32_t sent = 0;

    it_confirm_select(c, 1);
    while (sent < MAX_PUBLISH) {
        uint32_t first = sent;
        bool nacked = false;

        for (uint32_t i = 0; i < BATCH; i++)
            publish_persistent(c, q, sent++);
        it_collect_confirms(c, 1, state, sent, WAIT_MS, NULL);
        for (uint32_t i = first + 1; i <= sent; i++)
            nacked |= state[i] == IT_NACKED;
        if (nacked)
            return sent;
    }
    ck_abort_msg("%u persistent messages published and confirmed: the disk never filled", sent);
    return 0;
}

static const char store_failed[] = "No space left on device";

/* The disk fills for real: nothing the broker confirmed is lost, what it could not store is
 * nacked, declares are refused, acks are kept, and it writes again once space is back. */
START_TEST(full_disk_loses_no_confirmed_message_and_recovers_by_itself)
{
    static const char *const allowed[] = {store_failed, NULL};
    static enum it_confirm state[MAX_PUBLISH + BATCH + 1];
    static bool seen[MAX_PUBLISH + BATCH];
    amqp_connection_state_t c, d;
    amqp_rpc_reply_t r;
    uint32_t sent, acked = 0, received = 0, extra = 0;
    amqp_table_entry_t arg;
    static char note[8192];
    struct it_msg m;
    char q[64];

    broker_on_tmpfs(24, allowed);
    fill_file("reserve", 4u << 20); /* freed at the end to make room again */
    c = it_connect();
    it_name(q, sizeof q, "diskfull");
    it_queue_declare(c, 1, q, true, false, false, amqp_empty_table, NULL, NULL);
    sent = publish_until_nacked(c, q, state);
    for (uint32_t i = 1; i <= sent; i++)
        acked += state[i] == IT_ACKED;
    ck_assert_msg(acked > 1000, "only %u of %u messages confirmed before the disk was full",
                  acked, sent);
    ck_assert(it_broker_log_has("error", store_failed));

    /* Whatever room a write left, take it: the definitions log cannot grow either (an
     * argument of 8 KiB makes its record need more than the slack of the log's last page). */
    fill_file("squeeze", 0);
    memset(note, 'n', sizeof note);
    arg.key = amqp_cstring_bytes("x-note");
    arg.value.kind = AMQP_FIELD_KIND_UTF8;
    arg.value.value.bytes = (amqp_bytes_t){sizeof note, note};
    d = it_connect();
    amqp_queue_declare(d, 1, amqp_cstring_bytes("it.diskfull.durable"), 0, 1, 0, 0,
                       (amqp_table_t){1, &arg});
    r = amqp_get_rpc_reply(d);
    /* 506 is a connection error in the spec's table of reply codes. */
    it_expect_connection_close(d, r, 506,
                               "RESOURCE_ERROR - cannot store queue 'it.diskfull.durable' in "
                               "vhost '/': No space left on device");
    it_destroy(d);
    d = it_connect();
    it_expect_queue_gone(d, "it.diskfull.durable");
    it_disconnect(d);

    /* Every confirmed message is delivered, whatever the store could or could not write:
     * those beyond the memory window come back from the spill file or the store. */
    while (it_get(c, 1, q, false, &m)) {
        uint32_t index = index_of(&m);
        ck_assert_uint_lt(index, sent);
        ck_assert_msg(!seen[index], "message %u delivered twice", index);
        seen[index] = true;
        received++;
        it_ack(c, 1, m.delivery_tag, false);
        it_msg_free(&m);
    }
    for (uint32_t i = 0; i < sent; i++)
        ck_assert_msg(!(state[i + 1] == IT_ACKED && !seen[i]),
                      "confirmed message %u was not delivered (%u of %u confirmed received)", i,
                      received, acked);

    /* Room again: within the alarm check's second or two, persistent messages are taken. */
    remove_file("squeeze");
    remove_file("reserve");
    for (int tries = 0; tries < 50 && !it_broker_log_has("info", "message store writes again");
         tries++)
        usleep(100 * 1000);
    ck_assert(it_broker_log_has("info", "message store: writing again"));
    publish_persistent(c, q, 999999);
    it_collect_confirms(c, 1, state, sent + 1, WAIT_MS, NULL);
    ck_assert_int_eq(state[sent + 1], IT_ACKED);
    it_disconnect(c);

    /* The acks given while the disk was full were written when it came back: after a
     * restart only the last message is there. */
    it_broker_restart(false);
    c = it_connect();
    while (it_get(c, 1, q, true, &m)) {
        ck_assert_uint_eq(index_of(&m), 999999);
        extra++;
        it_msg_free(&m);
    }
    ck_assert_uint_eq(extra, 1);
    it_disconnect(c);
    printf("it_disk_full: %u published, %u confirmed, %u received after the disk filled\n", sent,
           acked, received);
    broker_off_tmpfs();
}
END_TEST

/* The alarm blocks a fast publisher before the disk is full: the broker checks the disk as
 * it writes, not only once a second. */
START_TEST(fast_publisher_is_blocked_before_the_disk_fills)
{
    amqp_connection_state_t c;
    amqp_channel_t ch = 1;
    uint64_t sent = 0;
    bool blocked = false;
    char q[64];

    broker_on_tmpfs(64, NULL);
    c = sec_connect_blockable();
    it_name(q, sizeof q, "diskalarm");
    it_queue_declare(c, 1, q, true, false, false, amqp_empty_table, NULL, NULL);
    /* One message at a time, and only into a socket with room: once blocked, the broker
     * reads no more, and a publish into full socket buffers would wait for ever. */
    while (!blocked && sent < MAX_PUBLISH) {
        struct pollfd pfd = {.fd = amqp_get_sockfd(c), .events = POLLIN | POLLOUT};

        ck_assert_int_ge(poll(&pfd, 1, 1000), 0);
        if (pfd.revents & POLLIN) {
            amqp_rpc_reply_t r = it_wait_method_on(c, 0, &ch);
            blocked = r.reply_type == AMQP_RESPONSE_NORMAL &&
                      r.reply.id == AMQP_CONNECTION_BLOCKED_METHOD;
        } else if (pfd.revents & POLLOUT) {
            publish_persistent(c, q, (uint32_t)sent++);
        }
    }
    if (!blocked) {
        amqp_rpc_reply_t r = it_wait_method_on(c, WAIT_MS, &ch);
        blocked = r.reply_type == AMQP_RESPONSE_NORMAL &&
                  r.reply.id == AMQP_CONNECTION_BLOCKED_METHOD;
    }
    ck_assert_msg(blocked, "no connection.blocked after %llu messages of %u bytes",
                  (unsigned long long)sent, BODY_BYTES);
    ck_assert_msg(!it_broker_log_has("error", store_failed),
                  "the disk filled before the publisher was blocked");
    printf("it_disk_full: blocked after %llu messages, %llu bytes left free (limit 16 MiB)\n",
           (unsigned long long)sent, (unsigned long long)free_bytes());
    it_destroy(c);
    broker_off_tmpfs();
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;
    int rc;

    if (it_external_broker()) {
        printf("it_disk_full: skipped: it mounts over its own warrend's data directory\n");
        return 77;
    }
    if (geteuid() != 0) {
        printf("it_disk_full: skipped: mounting a tmpfs needs root\n");
        return 77;
    }
    it_set_nofork();
    s = suite_create("disk_full");
    tc = it_tcase(s, "enospc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, full_disk_loses_no_confirmed_message_and_recovers_by_itself);
    rc = it_run(s, "disk_free_limit.absolute = 0\nqueue_memory_window = 256\n");
    if (rc != 0)
        return rc;
    s = suite_create("disk_alarm");
    tc = it_tcase(s, "alarm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fast_publisher_is_blocked_before_the_disk_fills);
    return it_run(s, "disk_free_limit.absolute = 16MB\n");
}
