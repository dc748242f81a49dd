/* The sink: a discarding AMQP server built into warren-perf. It does the server side of the
 * handshake, answers the synchronous methods a benchmark sends (declare, bind, qos, consume,
 * confirm.select, delete) with their -ok, parses every frame it receives, counts publishes,
 * acks them when the channel is in confirm mode, and never delivers anything. Publishing to
 * it shows the ceiling of warren-perf's own publish path on this machine.
 *
 * One thread accepts, one thread serves each connection. */
#ifndef WARREN_BENCH_PERF_SINK_H
#define WARREN_BENCH_PERF_SINK_H

#include <stdint.h>

struct perf_sink;

/* Listens on 127.0.0.1:port (0: any free port) and starts accepting. Returns NULL with a
 * message on stderr if it cannot listen. *bound_port is the port it listens on. */
struct perf_sink *perf_sink_start(int port, int *bound_port);
/* Publishes received in full (method, header and every body frame) so far. */
uint64_t perf_sink_messages(struct perf_sink *s);
/* Stops accepting, closes every connection, joins the threads and frees s. */
void perf_sink_stop(struct perf_sink *s);

#endif
