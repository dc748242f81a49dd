/* Limits from warrend's configuration. This program starts its own warrend with
 * max_message_size = 1024, so it cannot run against an external broker (AMQP_HOST):
 * RabbitMQ's default limit (128 MiB) is too big to probe in a test. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE_SIZE 1024

static void publish_size(amqp_connection_state_t c, const char *q, size_t size)
{
    char *body = malloc(size);

    ck_assert_ptr_nonnull(body);
    memset(body, 'x', size);
    it_publish_bytes(c, 1, "", q, NULL, (amqp_bytes_t){size, body});
    free(body);
}

START_TEST(body_of_max_message_size_is_accepted)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "limit.ok"));
    publish_size(c, q, MAX_MESSAGE_SIZE);
    ck_assert(it_get(c, 1, q, true, &m));
    ck_assert_uint_eq(m.message.body.len, MAX_MESSAGE_SIZE);
    it_msg_free(&m);
    it_disconnect(c);
}
END_TEST

START_TEST(body_over_max_message_size_closes_channel_with_406)
{
    amqp_connection_state_t c = it_connect();
    char q[64];
    struct it_msg m;

    it_temp_queue(c, it_name(q, sizeof q, "limit.over"));
    publish_size(c, q, MAX_MESSAGE_SIZE + 1);
    it_expect_channel_close(c, 1, it_wait_method(c, 2000), 406,
                            "PRECONDITION_FAILED - message size 1025 is larger than configured "
                            "max size 1024");
    /* The message was not queued, and the connection still works. */
    it_channel_open(c, 1);
    ck_assert(!it_get(c, 1, q, true, &m));
    it_disconnect(c);
}
END_TEST

int main(void)
{
    const char *host = getenv("AMQP_HOST");
    Suite *s;
    TCase *tc;

    if (host != NULL && host[0] != '\0') {
        printf("it_limits: skipped: it configures its own warrend, and AMQP_HOST names an "
               "external broker\n");
        return 77;
    }
    s = suite_create("limits");
    tc = it_tcase(s, "max_message_size");
    tcase_add_test(tc, body_of_max_message_size_is_accepted);
    tcase_add_test(tc, body_over_max_message_size_closes_channel_with_406);
    return it_run(s, "max_message_size = 1024\n");
}
