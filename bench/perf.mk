# bench: warren-perf, the load generator (producers and consumers speaking AMQP through
# amqp/libwire.a), and its smoke tests. bench/compare runs it against Warren and RabbitMQ.
noinst_PROGRAMS += bench/warren-perf
bench_warren_perf_SOURCES = \
	bench/warren_perf.c \
	bench/perf_conn.h bench/perf_conn.c \
	bench/perf_hist.h bench/perf_hist.c \
	bench/perf_sink.h bench/perf_sink.c
# Optimised even in a debug build (CFLAGS given to configure still come last and win): the
# tool must not be what limits a figure.
bench_warren_perf_CFLAGS = $(AM_CFLAGS) -O2 -pthread
bench_warren_perf_LDADD = amqp/libwire.a -lm -lpthread

# stall-probe: how long the machine stops running a program that never waits (compare runs
# it before each latency run: the floor under a p99 on this machine).
noinst_PROGRAMS += bench/stall-probe
bench_stall_probe_SOURCES = bench/stall_probe.c
bench_stall_probe_CFLAGS = $(AM_CFLAGS) -O2 -pthread
bench_stall_probe_LDADD = -lpthread


# The histogram behind the latency figures; the tool end to end against its sink and against
# a live warrend (so a change to amqp/ or to the broker that breaks the tool shows at once).
check_PROGRAMS += bench/check_perf_hist
bench_check_perf_hist_SOURCES = bench/check_perf_hist.c bench/perf_hist.h bench/perf_hist.c
bench_check_perf_hist_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
bench_check_perf_hist_LDADD = $(CHECK_LIBS) -lm
TESTS += bench/check_perf_hist bench/check_perf_sink.sh bench/check_perf_broker.sh
EXTRA_DIST += bench/check_perf_sink.sh bench/check_perf_broker.sh

# bench/compare and the helper it shares with check_perf_broker.sh; the README and the
# recorded results.
EXTRA_DIST += bench/compare bench/perf_warrend.sh bench/durability.sh bench/instructions.sh \
	bench/mgmt_stall.py bench/README.md bench/RESULTS.md

# Hostile HTTP clients against the management API and the metrics endpoint, in figures.
EXTRA_DIST += bench/mgmt_abuse.py

# warren-fill: many durable queues filled with confirmed persistent messages, through
# rabbitmq-c (bench/durability.sh measures the restart time with it).
noinst_PROGRAMS += bench/warren-fill
bench_warren_fill_SOURCES = bench/warren_fill.c
bench_warren_fill_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS)
bench_warren_fill_LDADD = $(RABBITMQ_LIBS)
