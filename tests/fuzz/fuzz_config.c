/* Fuzz target for the configuration parser: arbitrary bytes as the text of a file. Besides
 * crashes and sanitizer reports, it checks what config_parse() promises: the result stays
 * within every bound, and an error message names the file and line. */
#include "src/base/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_string(const char *s, size_t size)
{
    check(memchr(s, '\0', size) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    char err[256];
    char *text;
    int rc;

    /* config_parse() takes a C string, as config_load() hands it one. */
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    config_defaults(&c);
    rc = config_parse(&c, "fuzz.conf", text, err, sizeof(err));
    if (rc != 0) {
        check(rc == -1);
        check_string(err, sizeof(err));
        check(strncmp(err, "fuzz.conf:", 10) == 0);
    }
    /* Lines before an error stay applied, so the bounds hold either way. */
    check(c.tcp_count <= CONFIG_MAX_LISTENERS);
    for (size_t i = 0; i < c.tcp_count; i++)
        check_string(c.tcp[i].host, sizeof(c.tcp[i].host));
    check(c.loopback_user_count <= CONFIG_MAX_LOOPBACK_USERS);
    for (size_t i = 0; i < c.loopback_user_count; i++) {
        check_string(c.loopback_users[i], sizeof(c.loopback_users[i]));
        check(config_is_loopback_user(&c, c.loopback_users[i]));
    }
    check_string(c.default_user, sizeof(c.default_user));
    check_string(c.default_pass, sizeof(c.default_pass));
    check_string(c.default_vhost, sizeof(c.default_vhost));
    check_string(c.log_file, sizeof(c.log_file));
    check(c.heartbeat_s <= 65535 && c.channel_max <= 65535);
    check(c.frame_max >= 4096 && c.frame_max <= 2147483647);
    check(c.max_message_size >= 1 && c.max_message_size <= 536870912);
    check(c.handshake_timeout_ms >= 1 && c.handshake_timeout_ms <= 3600000);
    check(c.log_level >= 0 && c.log_level <= 4);
    free(text);
    return 0;
}
