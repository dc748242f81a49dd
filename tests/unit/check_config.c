/* The configuration parser: defaults, every value type, every error with its file:line:
 * reason, the listener and loopback_users lists, and etc/warren.conf matching the table.
 *
 * `check_config --write-example` prints config_write_example()'s text: the way to regenerate
 * etc/warren.conf after a change to the options table. */
#include "src/base/config.h"
#include "src/base/log.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[512];

/* Defaults, then text parsed as a file named "t.conf"; the test fails on an error. */
static struct config parsed(const char *text)
{
    struct config c;

    config_defaults(&c);
    if (config_parse(&c, "t.conf", text, err, sizeof(err)) != 0)
        ck_abort_msg("config_parse failed: %s", err);
    return c;
}

/* The error text parses on top of the defaults, which must stay -1. */
static const char *parse_error(const char *text)
{
    struct config c;

    config_defaults(&c);
    ck_assert_int_eq(config_parse(&c, "t.conf", text, err, sizeof(err)), -1);
    return err;
}

/* Writes text to a new temporary file and returns its path (static storage). */
static const char *temp_file(const void *text, size_t len)
{
    static char path[64];
    int fd;

    strcpy(path, "/tmp/check_config.XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *example_text(size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    ck_assert_ptr_nonnull(f);
    config_write_example(f);
    fclose(f);
    return text;
}

START_TEST(defaults_are_rabbitmq_defaults)
{
    struct config c;

    config_defaults(&c);
    ck_assert_uint_eq(c.tcp_count, 1);
    ck_assert_str_eq(c.tcp[0].host, "");
    ck_assert_uint_eq(c.tcp[0].port, 5672);
    ck_assert_str_eq(c.default_user, "guest");
    ck_assert_str_eq(c.default_pass, "guest");
    ck_assert_str_eq(c.default_vhost, "/");
    ck_assert_uint_eq(c.loopback_user_count, 1);
    ck_assert_str_eq(c.loopback_users[0], "guest");
    ck_assert_uint_eq(c.heartbeat_s, 60);
    ck_assert_uint_eq(c.frame_max, 131072);
    ck_assert_uint_eq(c.channel_max, 2047);
    ck_assert_uint_eq(c.max_message_size, 134217728);
    ck_assert_uint_eq(c.handshake_timeout_ms, 10000);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_INFO);
    ck_assert_str_eq(c.log_file, "");
    ck_assert(c.log_console);
}
END_TEST

START_TEST(tls_defaults_are_rabbitmq_defaults)
{
    struct config c;

    config_defaults(&c);
    ck_assert_uint_eq(c.ssl_count, 0); /* no TLS listener unless configured */
    ck_assert_str_eq(c.ssl_certfile, "");
    ck_assert_str_eq(c.ssl_keyfile, "");
    ck_assert_str_eq(c.ssl_cacertfile, "");
    ck_assert_str_eq(c.ssl_password, "");
    ck_assert(!c.ssl_verify_peer);
    ck_assert(!c.ssl_fail_if_no_peer_cert);
    /* Unlike Erlang's default, TLS 1.0 and 1.1 are off unless asked for. */
    ck_assert_uint_eq(c.ssl_version_count, 2);
    ck_assert_uint_eq(c.ssl_versions[0], CONFIG_TLS_V1_3);
    ck_assert_uint_eq(c.ssl_versions[1], CONFIG_TLS_V1_2);
    ck_assert_uint_eq(c.ssl_cipher_count, 0);
    ck_assert(!c.ssl_honor_cipher_order);
    ck_assert_int_eq(c.ssl_cert_login_from, CONFIG_CERT_LOGIN_DN);
    ck_assert_uint_eq(c.ssl_handshake_timeout_ms, 5000);
}
END_TEST

START_TEST(every_tls_key_is_parsed)
{
    struct config c = parsed("listeners.ssl.default = 5671\n"
                             "listeners.ssl.v6 = [::1]:5681\n"
                             "ssl_options.certfile = /etc/warren/server.pem\n"
                             "ssl_options.keyfile = /etc/warren/server.key\n"
                             "ssl_options.password = key pass\n"
                             "ssl_options.cacertfile = /etc/warren/ca.pem\n"
                             "ssl_options.verify = verify_peer\n"
                             "ssl_options.fail_if_no_peer_cert = true\n"
                             "ssl_options.versions.1 = tlsv1.2\n"
                             "ssl_options.ciphers.1 = ECDHE-RSA-AES256-GCM-SHA384\n"
                             "ssl_options.ciphers.2 = TLS_AES_256_GCM_SHA384\n"
                             "ssl_options.honor_cipher_order = true\n"
                             "ssl_cert_login_from = common_name\n"
                             "ssl_handshake_timeout = 1500\n");

    ck_assert_uint_eq(c.ssl_count, 2);
    ck_assert_str_eq(c.ssl[0].host, "");
    ck_assert_uint_eq(c.ssl[0].port, 5671);
    ck_assert_str_eq(c.ssl[1].host, "::1");
    ck_assert_uint_eq(c.ssl[1].port, 5681);
    ck_assert_uint_eq(c.tcp_count, 1); /* TLS listeners leave the TCP ones alone */
    ck_assert_uint_eq(c.tcp[0].port, 5672);
    ck_assert_str_eq(c.ssl_certfile, "/etc/warren/server.pem");
    ck_assert_str_eq(c.ssl_keyfile, "/etc/warren/server.key");
    ck_assert_str_eq(c.ssl_password, "key pass");
    ck_assert_str_eq(c.ssl_cacertfile, "/etc/warren/ca.pem");
    ck_assert(c.ssl_verify_peer);
    ck_assert(c.ssl_fail_if_no_peer_cert);
    /* The first versions line replaces the default list. */
    ck_assert_uint_eq(c.ssl_version_count, 1);
    ck_assert_uint_eq(c.ssl_versions[0], CONFIG_TLS_V1_2);
    ck_assert_uint_eq(c.ssl_cipher_count, 2);
    ck_assert_str_eq(c.ssl_ciphers[0], "ECDHE-RSA-AES256-GCM-SHA384");
    ck_assert_str_eq(c.ssl_ciphers[1], "TLS_AES_256_GCM_SHA384");
    ck_assert(c.ssl_honor_cipher_order);
    ck_assert_int_eq(c.ssl_cert_login_from, CONFIG_CERT_LOGIN_CN);
    ck_assert_uint_eq(c.ssl_handshake_timeout_ms, 1500);
}
END_TEST

START_TEST(tls_versions_all_values_and_names_keep_their_last_value)
{
    struct config c = parsed("ssl_options.versions.a = tlsv1\n"
                             "ssl_options.versions.b = tlsv1.1\n"
                             "ssl_options.versions.c = tlsv1.2\n"
                             "ssl_options.versions.a = tlsv1.3\n");

    ck_assert_uint_eq(c.ssl_version_count, 3);
    ck_assert_uint_eq(c.ssl_versions[0], CONFIG_TLS_V1_3);
    ck_assert_uint_eq(c.ssl_versions[1], CONFIG_TLS_V1_1);
    ck_assert_uint_eq(c.ssl_versions[2], CONFIG_TLS_V1_2);
    ck_assert_uint_eq(parsed("ssl_options.ciphers.1 = AES128-SHA\nssl_options.ciphers.1 = "
                             "AES256-SHA")
                          .ssl_cipher_count,
                      1);
}
END_TEST

START_TEST(at_most_sixty_four_ciphers)
{
    char text[4096] = "";
    size_t len = 0;

    for (int i = 0; i < CONFIG_MAX_TLS_CIPHERS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "ssl_options.ciphers.%d = C%d\n", i,
                                i);
    ck_assert_uint_eq(parsed(text).ssl_cipher_count, CONFIG_MAX_TLS_CIPHERS);
    ck_assert_str_eq(parsed(text).ssl_ciphers[63], "C63");
    snprintf(text + len, sizeof(text) - len, "ssl_options.ciphers.x = AES128-SHA\n");
    ck_assert_str_eq(parse_error(text), "t.conf:65: too many ciphers: at most 64");
}
END_TEST

START_TEST(management_and_prometheus_listeners)
{
    struct config c;

    config_defaults(&c);
    ck_assert_uint_eq(c.management_port, 15672);
    ck_assert_str_eq(c.management_ip, "::");
    ck_assert_uint_eq(c.prometheus_port, 15692);
    ck_assert_str_eq(c.prometheus_ip, "::");
    ck_assert(c.prometheus_per_object);
    c = parsed("management.tcp.port = 0\nmanagement.tcp.ip = 127.0.0.1\n"
               "prometheus.tcp.port = 9419\nprometheus.tcp.ip = ::1\n"
               "prometheus.return_per_object_metrics = false\n");
    ck_assert_uint_eq(c.management_port, 0); /* disabled */
    ck_assert_str_eq(c.management_ip, "127.0.0.1");
    ck_assert_uint_eq(c.prometheus_port, 9419);
    ck_assert_str_eq(c.prometheus_ip, "::1");
    ck_assert(!c.prometheus_per_object);
    ck_assert_str_eq(c.load_definitions, "");
    ck_assert_str_eq(parsed("load_definitions = /etc/warren/defs.json").load_definitions,
                     "/etc/warren/defs.json");
    ck_assert_str_eq(parse_error("management.tcp.port = 65536"),
                     "t.conf:1: out of range value '65536' for key 'management.tcp.port': "
                     "expected 0..65535");
    ck_assert_str_eq(parse_error("heartbeat = 1\nmanagement.tcp.ip = localhost"),
                     "t.conf:2: bad value 'localhost' for key 'management.tcp.ip': expected an "
                     "IPv4 or IPv6 address");
    ck_assert_str_eq(parse_error("prometheus.tcp.ip = 1.2.3"),
                     "t.conf:1: bad value '1.2.3' for key 'prometheus.tcp.ip': expected an IPv4 "
                     "or IPv6 address");
}
END_TEST

START_TEST(proxy_peers_are_a_list_of_ip_addresses)
{
    struct config c;
    char ip[64];
    size_t at = 0;

    config_defaults(&c);
    ck_assert_str_eq(c.proxy_peers, ""); /* a single node takes no PROXY header */
    ck_assert_int_eq(config_ip_list_next(c.proxy_peers, &at, ip, sizeof(ip)), 0);
    c = parsed("cluster.proxy_peers = 10.0.0.5,  2001:db8::7 ,127.0.0.1\n");
    ck_assert_int_eq(config_ip_list_next(c.proxy_peers, &at, ip, sizeof(ip)), 1);
    ck_assert_str_eq(ip, "10.0.0.5");
    ck_assert_int_eq(config_ip_list_next(c.proxy_peers, &at, ip, sizeof(ip)), 1);
    ck_assert_str_eq(ip, "2001:db8::7");
    ck_assert_int_eq(config_ip_list_next(c.proxy_peers, &at, ip, sizeof(ip)), 1);
    ck_assert_str_eq(ip, "127.0.0.1");
    ck_assert_int_eq(config_ip_list_next(c.proxy_peers, &at, ip, sizeof(ip)), 0);
    ck_assert_str_eq(parse_error("cluster.proxy_peers = 10.0.0.5, node-2"),
                     "t.conf:1: bad value '10.0.0.5, node-2' for key 'cluster.proxy_peers': "
                     "expected IPv4 or IPv6 addresses separated by commas");
    ck_assert_str_eq(parse_error("cluster.proxy_peers = 10.0.0.5,,10.0.0.6"),
                     "t.conf:1: bad value '10.0.0.5,,10.0.0.6' for key 'cluster.proxy_peers': "
                     "expected IPv4 or IPv6 addresses separated by commas");
    ck_assert_str_eq(parse_error("cluster.proxy_peers = 10.0.0.5,"),
                     "t.conf:1: bad value '10.0.0.5,' for key 'cluster.proxy_peers': "
                     "expected IPv4 or IPv6 addresses separated by commas");
}
END_TEST

START_TEST(tls_listener_without_files_is_an_error_at_its_line)
{
    struct config c;

    ck_assert_str_eq(parse_error("heartbeat = 5\nlisteners.ssl.default = 5671\n"
                                 "ssl_options.keyfile = k.pem\n"),
                     "t.conf:2: a TLS listener (listeners.ssl) needs ssl_options.certfile and "
                     "ssl_options.keyfile");
    ck_assert_str_eq(parse_error("listeners.ssl.default = 5671\nssl_options.certfile = c.pem\n"),
                     "t.conf:1: a TLS listener (listeners.ssl) needs ssl_options.certfile and "
                     "ssl_options.keyfile");
    ck_assert_str_eq(parse_error("ssl_options.certfile = c.pem\nssl_options.keyfile = k.pem\n"
                                 "listeners.ssl.a = 5671\nssl_options.verify = verify_peer\n"),
                     "t.conf:3: ssl_options.verify = verify_peer needs ssl_options.cacertfile");
    /* Files without a listener are no error: TLS is simply off. */
    ck_assert_uint_eq(parsed("ssl_options.certfile = c.pem").ssl_count, 0);
    ck_assert_uint_eq(parsed("ssl_options.verify = verify_peer").ssl_count, 0);
    /* A listener named `none` away is no listener either. */
    ck_assert_uint_eq(parsed("listeners.ssl.a = 5671\nlisteners.ssl = none").ssl_count, 0);

    /* A second file that takes the certificate away is wrong at its own line. */
    c = parsed("listeners.ssl.a = 5671\nssl_options.certfile = c.pem\n"
               "ssl_options.keyfile = k.pem\n");
    ck_assert_int_eq(config_parse(&c, "u.conf", "heartbeat = 1\nssl_options.certfile = false\n",
                                  err, sizeof(err)),
                     -1);
    ck_assert_str_eq(err, "u.conf:2: a TLS listener (listeners.ssl) needs ssl_options.certfile "
                          "and ssl_options.keyfile");
}
END_TEST

START_TEST(tls_password_is_never_echoed)
{
    char text[400];

    snprintf(text, sizeof(text), "ssl_options.password = %0300d", 7);
    ck_assert_str_eq(parse_error(text),
                     "t.conf:1: value for key 'ssl_options.password' is longer than 255 bytes");
    ck_assert_ptr_null(strstr(err, "0000"));
}
END_TEST

START_TEST(every_key_and_type_is_parsed)
{
    struct config c = parsed("listeners.tcp.a = 127.0.0.1:5673\n"
                             "default_user = alice\n"
                             "default_pass = s3cret pass\n"
                             "default_vhost = prod\n"
                             "loopback_users.bob = true\n"
                             "heartbeat = 0\n"
                             "frame_max = 4096\n"
                             "channel_max = 0\n"
                             "max_message_size = 536870912\n"
                             "handshake_timeout = 2500\n"
                             "log.level = debug\n"
                             "log.file = /var/log/warren/warren.log\n"
                             "log.console = false\n");

    ck_assert_uint_eq(c.tcp_count, 1);
    ck_assert_str_eq(c.tcp[0].host, "127.0.0.1");
    ck_assert_uint_eq(c.tcp[0].port, 5673);
    ck_assert_str_eq(c.default_user, "alice");
    ck_assert_str_eq(c.default_pass, "s3cret pass"); /* inner spaces are part of the value */
    ck_assert_str_eq(c.default_vhost, "prod");
    ck_assert_uint_eq(c.loopback_user_count, 1);
    ck_assert_str_eq(c.loopback_users[0], "bob");
    ck_assert_uint_eq(c.heartbeat_s, 0);
    ck_assert_uint_eq(c.frame_max, 4096);
    ck_assert_uint_eq(c.channel_max, 0); /* kept as written; the connection reads it as 65535 */
    ck_assert_uint_eq(c.max_message_size, 536870912);
    ck_assert_uint_eq(c.handshake_timeout_ms, 2500);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
    ck_assert_str_eq(c.log_file, "/var/log/warren/warren.log");
    ck_assert(!c.log_console);
}
END_TEST

START_TEST(log_levels_and_log_file_false)
{
    ck_assert_int_eq(parsed("log.level = info").log_level, LOG_LEVEL_INFO);
    ck_assert_int_eq(parsed("log.level = warning").log_level, LOG_LEVEL_WARNING);
    ck_assert_int_eq(parsed("log.level = warn").log_level, LOG_LEVEL_WARNING);
    ck_assert_int_eq(parsed("log.level = error").log_level, LOG_LEVEL_ERROR);
    ck_assert_int_eq(parsed("log.level = none").log_level, LOG_LEVEL_NONE);
    ck_assert_str_eq(parsed("log.file = a.log\nlog.file = false").log_file, "");
    ck_assert(parsed("log.console = false\nlog.console = true").log_console);
}
END_TEST

START_TEST(byte_sizes_take_rabbitmq_suffixes)
{
    /* cuttlefish's bytesize: KB, MB, GB in either case, powers of 1024, no space. */
    ck_assert_uint_eq(parsed("frame_max = 128KB").frame_max, 131072);
    ck_assert_uint_eq(parsed("frame_max = 1mb").frame_max, 1048576);
    ck_assert_uint_eq(parsed("frame_max = 1Gb").frame_max, 1073741824);
    ck_assert_uint_eq(parsed("max_message_size = 512MB").max_message_size, 536870912);
    ck_assert_str_eq(parse_error("max_message_size = 513MB"),
                     "t.conf:1: out of range value '513MB' for key 'max_message_size': expected "
                     "1..536870912");
    ck_assert_str_eq(parse_error("frame_max = 1 KB"),
                     "t.conf:1: bad value '1 KB' for key 'frame_max': expected a number of "
                     "bytes, optionally with KB, MB or GB");
    ck_assert_str_eq(parse_error("frame_max = 1K"),
                     "t.conf:1: bad value '1K' for key 'frame_max': expected a number of "
                     "bytes, optionally with KB, MB or GB");
    ck_assert_str_eq(parse_error("frame_max = KB"),
                     "t.conf:1: bad value 'KB' for key 'frame_max': expected a number of "
                     "bytes, optionally with KB, MB or GB");
    /* A suffix that would overflow 64 bits is out of range, not wrapped. */
    ck_assert_str_eq(parse_error("frame_max = 17179869184GB"),
                     "t.conf:1: out of range value '17179869184GB' for key 'frame_max': expected "
                     "4096..2147483647");
}
END_TEST

START_TEST(bounds_are_inclusive)
{
    ck_assert_uint_eq(parsed("heartbeat = 65535").heartbeat_s, 65535);
    ck_assert_uint_eq(parsed("channel_max = 65535").channel_max, 65535);
    ck_assert_uint_eq(parsed("frame_max = 2147483647").frame_max, 2147483647);
    ck_assert_uint_eq(parsed("max_message_size = 1").max_message_size, 1);
    ck_assert_uint_eq(parsed("handshake_timeout = 1").handshake_timeout_ms, 1);
    ck_assert_uint_eq(parsed("handshake_timeout = 3600000").handshake_timeout_ms, 3600000);
    ck_assert_uint_eq(parsed("heartbeat = 007").heartbeat_s, 7);
}
END_TEST

START_TEST(layout_comments_blank_lines_and_spaces)
{
    struct config c = parsed("# a comment\n"
                             "\n"
                             "   \t\n"
                             "  heartbeat   =   30   # trailing comment\n"
                             "\t## indented comment\n"
                             "channel_max=10\r\n"
                             "default_user = us er  \n"
                             "frame_max = 8192"); /* no final newline */

    ck_assert_uint_eq(c.heartbeat_s, 30);
    ck_assert_uint_eq(c.channel_max, 10);
    ck_assert_str_eq(c.default_user, "us er");
    ck_assert_uint_eq(c.frame_max, 8192);
}
END_TEST

START_TEST(hash_starts_a_comment_even_inside_a_value)
{
    /* rabbitmq.conf has no escape for '#' (rabbitmq-server#2345): same meaning here. */
    ck_assert_str_eq(parsed("default_pass = 1234#678").default_pass, "1234");
}
END_TEST

START_TEST(last_value_of_a_repeated_key_wins)
{
    ck_assert_uint_eq(parsed("heartbeat = 5\nheartbeat = 9").heartbeat_s, 9);
}
END_TEST

START_TEST(empty_text_keeps_what_the_config_holds)
{
    struct config d, c;

    config_defaults(&d);
    c = parsed("");
    ck_assert_mem_eq(&c, &d, sizeof(c));
    c = parsed("\n\n# nothing\n");
    ck_assert_mem_eq(&c, &d, sizeof(c));
}
END_TEST

/* Each error: the text, and the whole message it must produce. */
static const struct {
    const char *text;
    const char *error;
} errors[] = {
    {"heartbeat = 60\nnope = 1\n", "t.conf:2: unknown key 'nope'"},
    {"log.levels = info", "t.conf:1: unknown key 'log.levels'"},
    {"listeners.tcp.a.b = 5672", "t.conf:1: unknown key 'listeners.tcp.a.b'"},
    {"listeners = 5672", "t.conf:1: unknown key 'listeners'"},
    {"\n\n  heartbeat\n", "t.conf:3: expected 'key = value'"},
    {"= 5", "t.conf:1: expected 'key = value'"},
    {"guest", "t.conf:1: expected 'key = value'"},
    {"heart beat = 5", "t.conf:1: invalid key 'heart beat'"},
    {"heartbeat. = 5", "t.conf:1: invalid key 'heartbeat.'"},
    {"a..b = 5", "t.conf:1: invalid key 'a..b'"},
    {"heartbeat =", "t.conf:1: missing value for key 'heartbeat'"},
    {"heartbeat = # none", "t.conf:1: missing value for key 'heartbeat'"},
    {"heartbeat = 1x", "t.conf:1: bad value '1x' for key 'heartbeat': expected a non-negative "
                       "integer"},
    {"heartbeat = -1", "t.conf:1: bad value '-1' for key 'heartbeat': expected a non-negative "
                       "integer"},
    {"heartbeat = 0x10", "t.conf:1: bad value '0x10' for key 'heartbeat': expected a "
                         "non-negative integer"},
    {"heartbeat = 65536", "t.conf:1: out of range value '65536' for key 'heartbeat': expected "
                          "0..65535"},
    {"heartbeat = 99999999999999999999999",
     "t.conf:1: out of range value '99999999999999999999999' for key 'heartbeat': expected "
     "0..65535"},
    {"frame_max = 0", "t.conf:1: out of range value '0' for key 'frame_max': expected "
                      "4096..2147483647"},
    {"frame_max = 4095", "t.conf:1: out of range value '4095' for key 'frame_max': expected "
                         "4096..2147483647"},
    {"frame_max = 2GB", "t.conf:1: out of range value '2GB' for key 'frame_max': expected "
                        "4096..2147483647"},
    {"channel_max = 65536", "t.conf:1: out of range value '65536' for key 'channel_max': "
                            "expected 0..65535"},
    {"max_message_size = 0", "t.conf:1: out of range value '0' for key 'max_message_size': "
                             "expected 1..536870912"},
    {"max_message_size = 536870913", "t.conf:1: out of range value '536870913' for key "
                                     "'max_message_size': expected 1..536870912"},
    {"handshake_timeout = 0", "t.conf:1: out of range value '0' for key 'handshake_timeout': "
                              "expected 1..3600000"},
    {"log.console = yes", "t.conf:1: bad value 'yes' for key 'log.console': expected true or "
                          "false"},
    {"log.console = True", "t.conf:1: bad value 'True' for key 'log.console': expected true or "
                           "false"},
    {"log.level = loud", "t.conf:1: bad value 'loud' for key 'log.level': expected debug, info, "
                         "warning, error or none"},
    {"log.level = critical_and_more_words", "t.conf:1: bad value 'critical_and_more_words' for "
                                            "key 'log.level': expected debug, info, warning, "
                                            "error or none"},
    {"listeners.tcp = all", "t.conf:1: bad value 'all' for key 'listeners.tcp': expected none"},
    {"loopback_users = all", "t.conf:1: bad value 'all' for key 'loopback_users': expected "
                             "none"},
    {"loopback_users.bob = yes", "t.conf:1: bad value 'yes' for key 'loopback_users.bob': "
                                 "expected true or false"},
    {"listeners.ssl = all", "t.conf:1: bad value 'all' for key 'listeners.ssl': expected none"},
    {"listeners.ssl.a = 99999", "t.conf:1: bad value '99999' for key 'listeners.ssl.a': "
                                "expected a port, IP:port or [IPv6]:port"},
    {"ssl_options.verify = true", "t.conf:1: bad value 'true' for key 'ssl_options.verify': "
                                  "expected verify_none or verify_peer"},
    {"ssl_options.fail_if_no_peer_cert = yes", "t.conf:1: bad value 'yes' for key "
                                               "'ssl_options.fail_if_no_peer_cert': expected "
                                               "true or false"},
    {"ssl_options.versions.1 = sslv3", "t.conf:1: bad value 'sslv3' for key "
                                       "'ssl_options.versions.1': expected tlsv1.3, tlsv1.2, "
                                       "tlsv1.1 or tlsv1"},
    {"ssl_options.versions.1 = TLSv1.2", "t.conf:1: bad value 'TLSv1.2' for key "
                                         "'ssl_options.versions.1': expected tlsv1.3, tlsv1.2, "
                                         "tlsv1.1 or tlsv1"},
    {"ssl_options.versions = tlsv1.2", "t.conf:1: unknown key 'ssl_options.versions'"},
    {"ssl_options.ciphers = AES128-SHA", "t.conf:1: unknown key 'ssl_options.ciphers'"},
    {"ssl_options.ciphers.1 = HIGH:!aNULL", "t.conf:1: bad value 'HIGH:!aNULL' for key "
                                            "'ssl_options.ciphers.1': expected one cipher name, "
                                            "as OpenSSL writes it (ECDHE-RSA-AES256-GCM-SHA384, "
                                            "TLS_AES_256_GCM_SHA384)"},
    {"ssl_cert_login_from = subject_alternative_name",
     "t.conf:1: bad value 'subject_alternative_name' for key 'ssl_cert_login_from': expected "
     "distinguished_name or common_name"},
    {"ssl_handshake_timeout = 0", "t.conf:1: out of range value '0' for key "
                                  "'ssl_handshake_timeout': expected 1..3600000"},
    {"ssl_options.certfile.x = a", "t.conf:1: unknown key 'ssl_options.certfile.x'"},
};

START_TEST(each_error_names_file_line_and_reason)
{
    ck_assert_str_eq(parse_error(errors[_i].text), errors[_i].error);
}
END_TEST

START_TEST(a_too_long_value_is_refused_without_echoing_it)
{
    char text[300];

    snprintf(text, sizeof(text), "default_pass = %0200d", 7);
    ck_assert_str_eq(parse_error(text),
                     "t.conf:1: value for key 'default_pass' is longer than 127 bytes");
    ck_assert_ptr_null(strstr(err, "0000"));
    /* 127 bytes fit. */
    snprintf(text, sizeof(text), "default_user = %0127d", 7);
    ck_assert_uint_eq(strlen(parsed(text).default_user), 127);
}
END_TEST

START_TEST(an_error_leaves_earlier_lines_applied_and_stops)
{
    struct config c;

    config_defaults(&c);
    ck_assert_int_eq(
        config_parse(&c, "t.conf", "heartbeat = 5\nx = 1\nchannel_max = 9\n", err, sizeof(err)),
        -1);
    ck_assert_uint_eq(c.heartbeat_s, 5);
    ck_assert_uint_eq(c.channel_max, 2047);
}
END_TEST

START_TEST(error_buffer_is_bounded)
{
    struct config c;
    char small[12];

    memset(small, 'x', sizeof(small));
    config_defaults(&c);
    ck_assert_int_eq(config_parse(&c, "t.conf", "nope = 1", small, sizeof(small)), -1);
    ck_assert_str_eq(small, "t.conf:1: u");
    ck_assert_int_eq(config_parse(&c, "t.conf", "nope = 1", NULL, 0), -1);
}
END_TEST

/* Listener values and the host and port they must give ("" = every interface). */
static const struct {
    const char *value;
    const char *host;
    unsigned port;
} listener_forms[] = {
    {"5672", "", 5672},
    {"0", "", 0},
    {"65535", "", 65535},
    {"127.0.0.1:5672", "127.0.0.1", 5672},
    {"0.0.0.0:5673", "0.0.0.0", 5673},
    {"::1:5672", "::1", 5672},
    {"[::1]:5672", "::1", 5672},
    {"::0:5674", "::0", 5674},
    {"[::]:5675", "::", 5675},
    {"2001:db8::10:5672", "2001:db8::10", 5672},
    {"[2001:db8::10]:5672", "2001:db8::10", 5672},
    {"fe80::1%eth0:5672", "fe80::1%eth0", 5672},
    {"[fe80::1%eth0]:5672", "fe80::1%eth0", 5672},
};

START_TEST(listener_forms_including_ipv6)
{
    char text[128];
    struct config c;

    snprintf(text, sizeof(text), "listeners.tcp.x = %s", listener_forms[_i].value);
    c = parsed(text);
    ck_assert_uint_eq(c.tcp_count, 1);
    ck_assert_str_eq(c.tcp[0].host, listener_forms[_i].host);
    ck_assert_uint_eq(c.tcp[0].port, listener_forms[_i].port);
}
END_TEST

static const char *const bad_listeners[] = {
    "65536",
    "5672x",
    "localhost:5672",
    "::1",
    ":5672",
    "[::1]5672",
    "[::1]:",
    "127.0.0.1:",
    "[127.0.0.1]:5672",
    "1.2.3:5672",
    "256.0.0.1:5672",
    "[]:5672",
    "fe80::1%:5672",
    "fe80::1%e/0:5672",
    "127.0.0.1:-1",
    "::1:99999",
};

START_TEST(bad_listener_values_are_refused)
{
    char text[128], want[256];

    snprintf(text, sizeof(text), "listeners.tcp.x = %s", bad_listeners[_i]);
    snprintf(want, sizeof(want),
             "t.conf:1: bad value '%s' for key 'listeners.tcp.x': expected a port, IP:port or "
             "[IPv6]:port",
             bad_listeners[_i]);
    ck_assert_str_eq(parse_error(text), want);
}
END_TEST

START_TEST(first_listener_line_replaces_the_defaults_and_names_are_unique)
{
    struct config c = parsed("listeners.tcp.v4 = 127.0.0.1:5672\n"
                             "listeners.tcp.v6 = ::1:5672\n"
                             "listeners.tcp.v4 = 127.0.0.1:5680\n");

    ck_assert_uint_eq(c.tcp_count, 2);
    ck_assert_str_eq(c.tcp[0].host, "127.0.0.1");
    ck_assert_uint_eq(c.tcp[0].port, 5680);
    ck_assert_str_eq(c.tcp[1].host, "::1");
    ck_assert_uint_eq(c.tcp[1].port, 5672);
}
END_TEST

START_TEST(a_second_file_replaces_listeners_again_or_keeps_them)
{
    struct config c = parsed("listeners.tcp.a = 1111\nlisteners.tcp.b = 2222\n");

    ck_assert_int_eq(config_parse(&c, "u.conf", "heartbeat = 1", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.tcp_count, 2);
    ck_assert_int_eq(config_parse(&c, "u.conf", "listeners.tcp.a = 3333", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.tcp_count, 1);
    ck_assert_uint_eq(c.tcp[0].port, 3333);
}
END_TEST

START_TEST(at_most_eight_listeners)
{
    char text[512] = "";
    size_t len = 0;

    for (int i = 0; i < CONFIG_MAX_LISTENERS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "listeners.tcp.l%d = %d\n", i,
                                6000 + i);
    ck_assert_uint_eq(parsed(text).tcp_count, CONFIG_MAX_LISTENERS);
    /* Setting an existing name again is not a ninth. */
    snprintf(text + len, sizeof(text) - len, "listeners.tcp.l0 = 7000\n");
    ck_assert_uint_eq(parsed(text).tcp[0].port, 7000);
    snprintf(text + len, sizeof(text) - len, "listeners.tcp.l8 = 7000\n");
    ck_assert_str_eq(parse_error(text), "t.conf:9: too many listeners: at most 8");
}
END_TEST

START_TEST(listeners_none_clears_them_wherever_it_stands)
{
    ck_assert_uint_eq(parsed("listeners.tcp = none").tcp_count, 0);
    ck_assert_uint_eq(parsed("listeners.tcp = none\nlisteners.tcp.a = 5672").tcp_count, 0);
    ck_assert_uint_eq(parsed("listeners.tcp.a = 5672\nlisteners.tcp = none").tcp_count, 0);
}
END_TEST

START_TEST(listener_name_may_hold_escaped_dots_and_is_bounded)
{
    char text[200];

    ck_assert_uint_eq(parsed("listeners.tcp.a\\.b = 5000").tcp[0].port, 5000);
    snprintf(text, sizeof(text), "listeners.tcp.%070d = 5672", 1);
    ck_assert_ptr_nonnull(strstr(parse_error(text), "is longer than 63 bytes"));
}
END_TEST

START_TEST(loopback_users_default_add_remove_and_none)
{
    struct config c;

    config_defaults(&c);
    ck_assert(config_is_loopback_user(&c, "guest"));
    ck_assert(!config_is_loopback_user(&c, "alice"));
    ck_assert(!config_is_loopback_user(&c, "gues"));
    ck_assert(!config_is_loopback_user(&c, "guest2"));

    /* As in RabbitMQ, any loopback_users.* line replaces the default list. */
    c = parsed("loopback_users.alice = true");
    ck_assert(config_is_loopback_user(&c, "alice"));
    ck_assert(!config_is_loopback_user(&c, "guest"));

    c = parsed("loopback_users.guest = false");
    ck_assert_uint_eq(c.loopback_user_count, 0);
    ck_assert(!config_is_loopback_user(&c, "guest"));

    c = parsed("loopback_users.a = true\nloopback_users.b = true\nloopback_users.c = true\n"
               "loopback_users.a = true\nloopback_users.b = false\n");
    ck_assert_uint_eq(c.loopback_user_count, 2);
    ck_assert(config_is_loopback_user(&c, "a"));
    ck_assert(!config_is_loopback_user(&c, "b"));
    ck_assert(config_is_loopback_user(&c, "c"));

    c = parsed("loopback_users = none\nloopback_users.alice = true");
    ck_assert_uint_eq(c.loopback_user_count, 0);
    ck_assert(!config_is_loopback_user(&c, "guest"));

    c = parsed("loopback_users.user\\.with\\.dots = true");
    ck_assert(config_is_loopback_user(&c, "user.with.dots"));
}
END_TEST

START_TEST(at_most_sixteen_loopback_users)
{
    char text[1024] = "";
    size_t len = 0;

    for (int i = 0; i < CONFIG_MAX_LOOPBACK_USERS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "loopback_users.u%d = true\n", i);
    ck_assert_uint_eq(parsed(text).loopback_user_count, CONFIG_MAX_LOOPBACK_USERS);
    snprintf(text + len, sizeof(text) - len, "loopback_users.u99 = true\n");
    ck_assert_str_eq(parse_error(text), "t.conf:17: too many loopback users: at most 16");
}
END_TEST

START_TEST(load_reads_a_file)
{
    static const char text[] = "heartbeat = 12\nnope = 1\n";
    struct config c;
    char want[128];
    const char *path = temp_file(text, 15); /* the first line only */

    config_defaults(&c);
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.heartbeat_s, 12);
    unlink(path);

    path = temp_file(text, strlen(text));
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: unknown key 'nope'", path);
    ck_assert_str_eq(err, want);
    unlink(path);
}
END_TEST

START_TEST(load_of_a_missing_file_says_why)
{
    struct config c;

    config_defaults(&c);
    ck_assert_int_eq(config_load(&c, "/nonexistent/warren.conf", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/warren.conf: cannot open: No such file or directory");
    ck_assert_int_eq(config_load(&c, "/", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");
}
END_TEST

START_TEST(load_refuses_files_over_one_mebibyte_and_nul_bytes)
{
    size_t size = 1024 * 1024;
    char *text = malloc(size + 1), want[128];
    struct config c;
    const char *path;

    ck_assert_ptr_nonnull(text);
    memset(text, '#', size + 1);
    text[size - 1] = '\n';
    config_defaults(&c);
    path = temp_file(text, size); /* exactly the limit: one long comment */
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
    unlink(path);

    path = temp_file(text, size + 1);
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
    ck_assert_str_eq(err, want);
    unlink(path);

    path = temp_file("heartbeat = 1\0\nx", 16);
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: contains a NUL byte, not a text file", path);
    ck_assert_str_eq(err, want);
    unlink(path);
    free(text);
}
END_TEST

START_TEST(example_text_parses_back_to_the_defaults)
{
    struct config d, c;
    size_t len;
    char *text = example_text(&len);

    config_defaults(&d);
    /* Start far from the defaults, so every line of the example has to do its part. Keys
     * unset by default (TLS listeners, key password, ciphers) are comments in the example,
     * so they are left out here. */
    c = parsed("listeners.tcp.a = 1\nlisteners.tcp.b = ::1:2\ndefault_user = u\n"
               "default_pass = p\ndefault_vhost = v\nloopback_users.x = true\n"
               "loopback_users.y = true\nheartbeat = 1\nframe_max = 5000\nchannel_max = 3\n"
               "max_message_size = 4\nhandshake_timeout = 5\nlog.level = error\n"
               "log.file = x.log\nlog.console = false\n"
               "ssl_options.certfile = c\nssl_options.keyfile = k\nssl_options.cacertfile = a\n"
               "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n"
               "ssl_options.versions.x = tlsv1\nssl_options.honor_cipher_order = true\n"
               "ssl_cert_login_from = common_name\nssl_handshake_timeout = 9\n");
    ck_assert_int_eq(config_parse(&c, "example", text, err, sizeof(err)), 0);
    ck_assert_mem_eq(&c, &d, sizeof(c));
    free(text);
}
END_TEST

START_TEST(etc_warren_conf_is_the_generated_example)
{
    const char *srcdir = getenv("top_srcdir");
    char path[4096], *want, *have;
    size_t want_len, have_len;
    struct config d, c;
    FILE *f;

    ck_assert_msg(srcdir != NULL, "top_srcdir is not set (run through make check)");
    snprintf(path, sizeof(path), "%s/etc/warren.conf", srcdir);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    have = malloc(1 << 20);
    ck_assert_ptr_nonnull(have);
    have_len = fread(have, 1, (1 << 20) - 1, f);
    have[have_len] = '\0';
    fclose(f);
    want = example_text(&want_len);
    ck_assert_msg(have_len == want_len && memcmp(have, want, want_len) == 0,
                  "etc/warren.conf differs from config_write_example(); regenerate it with "
                  "`tests/unit/check_config --write-example > $top_srcdir/etc/warren.conf` "
                  "(from the build directory)");
    /* And it means the defaults. */
    config_defaults(&d);
    config_defaults(&c);
    ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_mem_eq(&c, &d, sizeof(c));
    free(want);
    free(have);
}
END_TEST

START_TEST(example_lists_every_key_as_a_live_line)
{
    size_t len;
    char *text = example_text(&len);
    static const char *const lines[] = {
        "\nlisteners.tcp.default = 5672\n",
        "\ndefault_user = guest\n",
        "\ndefault_pass = guest\n",
        "\ndefault_vhost = /\n",
        "\nloopback_users.guest = true\n",
        "\nheartbeat = 60\n",
        "\nframe_max = 131072\n",
        "\nchannel_max = 2047\n",
        "\nmax_message_size = 134217728\n",
        "\nhandshake_timeout = 10000\n",
        "\nlog.level = info\n",
        "\nlog.file = false\n",
        "\nlog.console = true\n",
        "\n# listeners.ssl.default =\n",
        "\nssl_options.certfile = false\n",
        "\nssl_options.keyfile = false\n",
        "\n# ssl_options.password =\n",
        "\nssl_options.cacertfile = false\n",
        "\nssl_options.verify = verify_none\n",
        "\nssl_options.fail_if_no_peer_cert = false\n",
        "\nssl_options.versions.1 = tlsv1.3\nssl_options.versions.2 = tlsv1.2\n",
        "\n# ssl_options.ciphers.1 =\n",
        "\nssl_options.honor_cipher_order = false\n",
        "\nssl_cert_login_from = distinguished_name\n",
        "\nssl_handshake_timeout = 5000\n",
        "\n# cluster.proxy_peers =\n",
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        ck_assert_msg(strstr(text, lines[i]) != NULL, "missing line %s", lines[i] + 1);
    free(text);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("parse");

    tcase_add_test(t, defaults_are_rabbitmq_defaults);
    tcase_add_test(t, tls_defaults_are_rabbitmq_defaults);
    tcase_add_test(t, every_key_and_type_is_parsed);
    tcase_add_test(t, every_tls_key_is_parsed);
    tcase_add_test(t, tls_password_is_never_echoed);
    tcase_add_test(t, log_levels_and_log_file_false);
    tcase_add_test(t, byte_sizes_take_rabbitmq_suffixes);
    tcase_add_test(t, bounds_are_inclusive);
    tcase_add_test(t, layout_comments_blank_lines_and_spaces);
    tcase_add_test(t, hash_starts_a_comment_even_inside_a_value);
    tcase_add_test(t, last_value_of_a_repeated_key_wins);
    tcase_add_test(t, empty_text_keeps_what_the_config_holds);
    tcase_add_loop_test(t, each_error_names_file_line_and_reason, 0,
                        sizeof(errors) / sizeof(errors[0]));
    tcase_add_test(t, a_too_long_value_is_refused_without_echoing_it);
    tcase_add_test(t, an_error_leaves_earlier_lines_applied_and_stops);
    tcase_add_test(t, error_buffer_is_bounded);
    suite_add_tcase(s, t);

    t = tcase_create("lists");
    tcase_add_loop_test(t, listener_forms_including_ipv6, 0,
                        sizeof(listener_forms) / sizeof(listener_forms[0]));
    tcase_add_loop_test(t, bad_listener_values_are_refused, 0,
                        sizeof(bad_listeners) / sizeof(bad_listeners[0]));
    tcase_add_test(t, first_listener_line_replaces_the_defaults_and_names_are_unique);
    tcase_add_test(t, a_second_file_replaces_listeners_again_or_keeps_them);
    tcase_add_test(t, at_most_eight_listeners);
    tcase_add_test(t, listeners_none_clears_them_wherever_it_stands);
    tcase_add_test(t, listener_name_may_hold_escaped_dots_and_is_bounded);
    tcase_add_test(t, loopback_users_default_add_remove_and_none);
    tcase_add_test(t, at_most_sixteen_loopback_users);
    tcase_add_test(t, tls_versions_all_values_and_names_keep_their_last_value);
    tcase_add_test(t, at_most_sixty_four_ciphers);
    tcase_add_test(t, tls_listener_without_files_is_an_error_at_its_line);
    tcase_add_test(t, management_and_prometheus_listeners);
    tcase_add_test(t, proxy_peers_are_a_list_of_ip_addresses);
    suite_add_tcase(s, t);

    t = tcase_create("files");
    tcase_add_test(t, load_reads_a_file);
    tcase_add_test(t, load_of_a_missing_file_says_why);
    tcase_add_test(t, load_refuses_files_over_one_mebibyte_and_nul_bytes);
    tcase_add_test(t, example_text_parses_back_to_the_defaults);
    tcase_add_test(t, etc_warren_conf_is_the_generated_example);
    tcase_add_test(t, example_lists_every_key_as_a_live_line);
    suite_add_tcase(s, t);
    return s;
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;

    if (argc == 2 && strcmp(argv[1], "--write-example") == 0) {
        config_write_example(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
