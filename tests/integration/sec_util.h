/* Helpers of the security tests (it_permissions, it_limits_sec, it_alarms, it_alarm_disk,
 * it_abuse): users, vhosts and permissions put into the broker under test, and a look at
 * the broker process (its pid and resident memory).
 *
 * Users come from a RabbitMQ definitions document built from the tables below. warrend has
 * no load_definitions setting and does not start its management API yet, so for the
 * harness's warrend sec_install() stops it, writes the document into its data directory the
 * way warrend keeps its user database (the "auth" entry of the definitions log, the form
 * persist_auth_save() writes), and starts it again; only the process that started the broker
 * can do that, so call it from an unchecked fixture (which Check runs in that process), not
 * from a test. Against an external broker (AMQP_HOST) the users must be
 * there already: tests/interop/security_rabbitmq.sh imports the document that
 * `<program> --definitions` prints into a RabbitMQ node with rabbitmqctl, runs the program
 * against it and deletes the users and vhosts again. Every name starts with warren_probe_,
 * so that nothing of a shared RabbitMQ is touched. */
#ifndef WARREN_TESTS_INTEGRATION_SEC_UTIL_H
#define WARREN_TESTS_INTEGRATION_SEC_UTIL_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Limits are 0 when not set (a limit of 0 is not used by the tests). */
struct sec_user {
    const char *name;
    const char *password;
    int max_connections;
    int max_channels;
};

struct sec_vhost {
    const char *name;
    int max_connections;
    int max_queues;
};

struct sec_permission {
    const char *user, *vhost;
    const char *configure, *write, *read;
};

struct sec_topic_permission {
    const char *user, *vhost, *exchange;
    const char *write, *read;
};

struct sec_definitions {
    const struct sec_user *users;
    size_t users_len;
    const struct sec_vhost *vhosts;
    size_t vhosts_len;
    const struct sec_permission *permissions;
    size_t permissions_len;
    const struct sec_topic_permission *topic_permissions;
    size_t topic_permissions_len;
};

#define SEC_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The definitions document of d (what rabbitmqctl import_definitions reads); with_guest adds
 * RabbitMQ's default user guest/guest with every permission on "/", which a warrend whose
 * user database is replaced needs and a shared RabbitMQ must not be given. The caller frees
 * the string. */
char *sec_definitions_json(const struct sec_definitions *d, bool with_guest);

/* For main(): with the argument --definitions, prints the document (without guest) and
 * returns true: the program then exits 0 without running its tests. */
bool sec_print_definitions(int argc, char **argv, const struct sec_definitions *d);

/* Makes the broker under test know d (see above). Fails the test if it cannot. Only the
 * first call in a program does anything, so each test case can have it as its unchecked
 * fixture. With an external broker it checks that the first user of d can log in and fails
 * with a hint about security_rabbitmq.sh otherwise. */
void sec_install(const struct sec_definitions *d);

/* Logs in as user (password from d's table) on vhost, channel 1 open; fails the test on
 * any error. */
amqp_connection_state_t sec_connect(const struct sec_definitions *d, const char *user,
                                    const char *vhost);

/* A connection logged in as guest on "/" whose client properties announce the
 * connection.blocked capability (rabbitmq-c announces it only when told), channel 1 open. */
amqp_connection_state_t sec_connect_blockable(void);

/* The pid of the warrend the harness started for this program (a child of the process that
 * called it_run()), or -1 if there is none. */
pid_t sec_broker_pid(void);

/* VmRSS of process pid in KiB from /proc, or -1. */
long sec_rss_kib(pid_t pid);

#endif
