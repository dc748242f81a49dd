/* The disk alarm: disk_free_limit.absolute is set above the free space of the filesystem
 * that holds the broker's data directory, so the alarm is on from the start. A connection
 * that publishes is blocked: connection.blocked("low on disk") if it announced the
 * capability, silently otherwise; from then on the broker does not read its socket, so what
 * it publishes next never arrives. Connections that do not publish are served as usual, and
 * the broker still stops cleanly with blocked connections it can no longer read.
 *
 * warrend only: the limit is warrend's configuration. */
#define _DEFAULT_SOURCE
#include "harness.h"
#include "sec_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define BLOCK_WAIT_MS 3000
#define QUIET_MS      1500

static amqp_connection_state_t consumer_of(char *q, size_t size, const char *topic)
{
    amqp_connection_state_t c = it_connect();

    it_queue(c, it_name(q, size, topic));
    it_consume(c, 1, q, NULL, true, false, NULL, 0);
    return c;
}

/* The message that made a connection a publisher was taken: consumers still get theirs. */
static void expect_first_then_nothing(amqp_connection_state_t consumer)
{
    struct it_msg m;

    it_expect_delivery(consumer, 2000, "first", &m);
    it_msg_free(&m);
    it_expect_no_delivery(consumer, QUIET_MS);
}

START_TEST(disk_alarm_blocks_publisher_with_connection_blocked)
{
    amqp_connection_state_t publisher = sec_connect_blockable(), consumer;
    amqp_channel_t ch = 1;
    amqp_rpc_reply_t r;
    char q[64], buf[512];

    consumer = consumer_of(q, sizeof q, "disk.blocked");
    it_publish(publisher, "", q, "first");
    r = it_wait_method_on(publisher, BLOCK_WAIT_MS, &ch);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_NORMAL &&
                      r.reply.id == AMQP_CONNECTION_BLOCKED_METHOD,
                  "expected connection.blocked, got %s", it_reply_str(r, buf, sizeof buf));
    ck_assert_uint_eq(ch, 0);
    it_assert_bytes(((amqp_connection_blocked_t *)r.reply.decoded)->reason, "low on disk");
    it_publish(publisher, "", q, "second");
    expect_first_then_nothing(consumer);
    ck_assert(it_broker_log_has("warning", "disk alarm set, publishers are blocked"));
    ck_assert(it_broker_log_has("info", "publisher blocked: disk alarm"));
    /* The broker reads nothing more from this connection, not even connection.close. */
    it_destroy(publisher);
    it_queue_delete(consumer, q);
    it_disconnect(consumer);
}
END_TEST

START_TEST(disk_alarm_blocks_publisher_without_capability_silently)
{
    amqp_connection_state_t publisher = it_connect(), consumer;
    amqp_rpc_reply_t r;
    char q[64], buf[512];

    consumer = consumer_of(q, sizeof q, "disk.silent");
    it_publish(publisher, "", q, "first");
    r = it_wait_method(publisher, QUIET_MS);
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                      r.library_error == AMQP_STATUS_TIMEOUT,
                  "expected nothing, got %s", it_reply_str(r, buf, sizeof buf));
    it_publish(publisher, "", q, "second");
    expect_first_then_nothing(consumer);
    it_destroy(publisher);
    it_queue_delete(consumer, q);
    it_disconnect(consumer);
}
END_TEST

/* Declaring, binding, getting: everything but publishing goes on during the alarm. */
START_TEST(disk_alarm_leaves_non_publishers_alone)
{
    amqp_connection_state_t c = it_connect();
    char q[64];

    it_temp_queue(c, it_name(q, sizeof q, "disk.other"));
    it_bind(c, q, "amq.direct", q, amqp_empty_table);
    it_expect_empty(c, 1, q);
    it_expect_counts(c, q, 0, 0);
    it_disconnect(c);
}
END_TEST

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    struct statvfs fs;
    unsigned long long free_bytes, limit;
    char config[128];
    Suite *s;
    TCase *tc;

    if (getenv("AMQP_HOST") != NULL && getenv("AMQP_HOST")[0] != '\0') {
        printf("it_alarm_disk: skipped: it configures its own warrend's disk limit, and "
               "AMQP_HOST names an external broker\n");
        return 77;
    }
    /* The harness makes the broker's data directory under TMPDIR (or /tmp). */
    if (statvfs(tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", &fs) != 0) {
        perror("it_alarm_disk: statvfs");
        return 99;
    }
    free_bytes = (unsigned long long)fs.f_bavail * fs.f_frsize;
    limit = free_bytes + free_bytes / 2 + (1ULL << 30);
    snprintf(config, sizeof config, "disk_free_limit.absolute = %llu\n", limit);
    printf("it_alarm_disk: %llu MiB free, disk_free_limit %llu MiB\n", free_bytes >> 20,
           limit >> 20);

    s = suite_create("alarm_disk");
    tc = it_tcase(s, "disk");
    tcase_add_test(tc, disk_alarm_blocks_publisher_with_connection_blocked);
    tcase_add_test(tc, disk_alarm_blocks_publisher_without_capability_silently);
    tcase_add_test(tc, disk_alarm_leaves_non_publishers_alone);
    return it_run(s, config);
}
