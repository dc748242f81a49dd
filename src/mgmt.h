/* The management HTTP API (RabbitMQ's paths and JSON shapes, default port 15672) and the
 * Prometheus endpoint (/metrics, default port 15692).
 *
 * Both are libmicrohttpd daemons without threads of their own: the broker's libev loop
 * watches each daemon's epoll descriptor and calls MHD_run() when it is readable or when
 * MHD's timeout expires, so request handlers run on the loop thread, between two AMQP
 * events, and read or change broker state without locks. A handler finishes its work
 * before it returns (nothing here blocks), and a large answer is built in memory and
 * written by MHD as the socket takes it.
 *
 * Authentication: HTTP basic, as RabbitMQ's management plugin: no credentials or a wrong
 * password answer 401. Users are those the broker knows (for now the configuration's
 * default_user, tagged administrator); loopback_users apply as they do to AMQP. /metrics
 * needs no credentials, as in RabbitMQ.
 *
 * Configuration (src/config.h): management.tcp.port and management.tcp.ip,
 * prometheus.tcp.port and prometheus.tcp.ip. Port 0 disables that listener (RabbitMQ has
 * no such setting; it disables a plugin instead). */
#ifndef WARREN_SRC_MGMT_H
#define WARREN_SRC_MGMT_H

struct mgmt;
struct server;

/* Opens the listeners s's configuration asks for and starts serving on s's loop; logs
 * "management API: listening on http://IP:PORT/" (and the same for metrics). *out gets the
 * management state (also when both listeners are disabled: it then only samples rates).
 * Returns 0, or -1 after logging why (the port is taken, the address is not local, ...):
 * the broker should not start then, as RabbitMQ does not when a listener fails. */
int mgmt_start(struct server *s, struct mgmt **out);

/* Closes the listeners and every HTTP connection and frees m (NULL is fine). Call it
 * before server_free(). */
void mgmt_stop(struct mgmt *m);

#endif
