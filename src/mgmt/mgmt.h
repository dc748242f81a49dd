/* The management HTTP API (RabbitMQ's paths and JSON shapes, default port 15672) and the
 * Prometheus endpoint (/metrics, default port 15692).
 *
 * Both are libmicrohttpd daemons without threads of their own: the broker's libev loop
 * watches each daemon's epoll descriptor and calls MHD_run() when it is readable or when
 * MHD's timeout expires, so request handlers run on the loop thread, between two AMQP
 * events, and read or change broker state without locks. Nothing here blocks, and work
 * that grows with the broker is done in slices of at most a millisecond a loop turn
 * (src/mgmt/mgmt_slice.h): the lists (queues, exchanges, bindings, connections, channels,
 * consumers, definitions) are written as MHD sends them, and a definitions import is
 * parsed on a thread of its own and declared a slice at a time before it is answered.
 *
 * Authentication: HTTP basic against the user database (src/security/auth.h), as RabbitMQ's
 * management plugin: no credentials or a wrong password answer 401, and so does a user
 * without one of the tags administrator, monitoring, policymaker or management;
 * loopback_users apply as they do to AMQP. What a user may see and do follows RabbitMQ's
 * rules by tag, and exchanges, queues and bindings need the AMQP permissions a client would
 * need. /metrics needs no credentials, as in RabbitMQ.
 *
 * Hostile clients (src/mgmt/http_limits.h): a request is checked when its head arrives,
 * before any of its body is read; a refusal (an unknown path, credentials, a body larger
 * than MGMT_BODY_MAX or than what the budget of all bodies has left, 413 and 503) is
 * answered then and its connection closed, so that a refused body is never read. A client
 * has request_timeout to send a request head; one that waits longest for its head makes
 * room when the connections are many.
 *
 * Configuration (src/base/config.h): management.tcp.port, management.tcp.ip and
 * management.tcp.request_timeout, prometheus.tcp.port, prometheus.tcp.ip,
 * prometheus.tcp.request_timeout and prometheus.return_per_object_metrics, and
 * load_definitions (a definitions file imported by mgmt_start). Port 0 disables a listener
 * (RabbitMQ has no such setting; it disables a plugin instead). */
#ifndef WARREN_SRC_MGMT_MGMT_H
#define WARREN_SRC_MGMT_MGMT_H

struct mgmt;
struct server;

/* Imports load_definitions when it is set, opens the listeners s's configuration asks for
 * and starts serving on s's loop; logs "management API: listening on http://IP:PORT/" (and
 * the same for metrics). *out gets the management state, also on failure (pass it to
 * mgmt_stop) and when both listeners are disabled (it then only samples rates). Returns 0,
 * or -1 after logging why (the definitions file cannot be loaded, the port is taken, the
 * address is not local, ...): the broker should not start then, as RabbitMQ does not. */
int mgmt_start(struct server *s, struct mgmt **out);

/* Closes the listeners and every HTTP connection and frees m (NULL is fine). Call it
 * before server_free(). */
void mgmt_stop(struct mgmt *m);

#endif
