# tests/interop: the broker through other clients (pika, amqplib, amqp-tools) and AMQP spoken
# by hand over a socket. Each test is a shell wrapper that sources lib.sh (start warrend, or
# use the broker named by AMQP_HOST/AMQP_PORT), runs one client and passes on its verdict.
# Against RabbitMQ: AMQP_HOST=127.0.0.1 AMQP_PORT=5672 tests/interop/raw_protocol.sh
# amqplib is installed into tests/interop/node_modules by tests/interop/setup.sh (npm ci).
INTEROP_TESTS = \
	tests/interop/raw_protocol.sh \
	tests/interop/pika_core.sh \
	tests/interop/amqplib_core.sh \
	tests/interop/amqp_tools.sh

TESTS += $(INTEROP_TESTS)
# checks.py: CheckFailed, expect and expect_eq, imported by the Python scripts.
EXTRA_DIST += tests/interop/checks.py
EXTRA_DIST += $(INTEROP_TESTS) \
	tests/interop/lib.sh \
	tests/interop/setup.sh \
	tests/interop/raw_protocol.py \
	tests/interop/pika_core.py \
	tests/interop/amqplib_core.js \
	tests/interop/package.json \
	tests/interop/package-lock.json

# The management HTTP API and the Prometheus endpoint (src/mgmt/mgmt.h): mgmt_lib.sh starts a
# warrend with both listeners on free ports. Against RabbitMQ (management and prometheus
# plugins): AMQP_HOST=... AMQP_PORT=... MGMT_URL=http://host:15672
# METRICS_URL=http://host:15692 tests/interop/mgmt_api.sh
# prometheus_scrape.sh runs Debian's prometheus against it (skipped without the package).
# mgmt_alarm.sh: the health checks during a disk alarm; mgmt_hostile.sh: anonymous uploads,
# the body budget and trickled request heads (both warrend only).
TESTS += tests/interop/mgmt_api.sh tests/interop/warrenctl.sh tests/interop/prometheus_scrape.sh \
	tests/interop/mgmt_alarm.sh tests/interop/mgmt_hostile.sh
EXTRA_DIST += tests/interop/mgmt_api.sh tests/interop/mgmt_lib.sh tests/interop/mgmt_api.py \
	tests/interop/mgmt_alarm.sh tests/interop/mgmt_alarm.py \
	tests/interop/mgmt_hostile.sh tests/interop/mgmt_hostile.py \
	tests/interop/warrenctl.sh tests/interop/warrenctl_cli.py \
	tests/interop/prometheus_scrape.sh tests/interop/prometheus_scrape.py

# Management API requests as RabbitMQ's clients send them: mgmt_compat.sh through plain HTTP
# (numbers given as strings, vhost limits and parameters, nodes), rabbitmqadmin.sh through
# rabbitmqadmin itself (/usr/bin/rabbitmqadmin, or the copy setup.sh takes from Debian's
# rabbitmq-server package; skipped without either). Against RabbitMQ: AMQP_HOST, AMQP_PORT and
# MGMT_URL as above.
TESTS += tests/interop/mgmt_compat.sh tests/interop/rabbitmqadmin.sh
EXTRA_DIST += tests/interop/mgmt_compat.sh tests/interop/mgmt_compat.py \
	tests/interop/rabbitmqadmin.sh tests/interop/rabbitmqadmin.py

# Every endpoint of RabbitMQ 3.10's reference that Warren serves, a table of statuses by kind
# of user and JSON keys (mgmt_endpoints.sh); it runs against RabbitMQ too when
# RABBITMQ_MGMT_URL and RABBITMQ_AMQP_PORT name one.
TESTS += tests/interop/mgmt_endpoints.sh
EXTRA_DIST += tests/interop/mgmt_endpoints.sh tests/interop/mgmt_endpoints.py

# Large management work done in slices while AMQP clients are timed (rtt_probe.py pings from
# a process of its own): mgmt_slices.sh starts a warrend as mgmt_api.sh does, and brokers of
# its own (WARREND) to stop and restart.
TESTS += tests/interop/mgmt_slices.sh
EXTRA_DIST += tests/interop/mgmt_slices.sh tests/interop/mgmt_slices.py tests/interop/rtt_probe.py

# Sorted lists of the management API (sort, sort_reverse, with pages and without, use_regex)
# and the confirm count and rate: mgmt_sort.sh, through pika; passes against RabbitMQ 3.10.8.
TESTS += tests/interop/mgmt_sort.sh
EXTRA_DIST += tests/interop/mgmt_sort.sh tests/interop/mgmt_sort.py

# AMQPS through pika: tls_pika.sh starts a warrend with a TLS listener and certificates made
# by tests/unit/tls_certs.sh. Against another broker: AMQP_HOST, AMQPS_PORT, TLS_CERT_DIR.
TESTS += tests/interop/tls_pika.sh
EXTRA_DIST += tests/interop/tls_pika.sh tests/interop/tls_pika.py

# The security tests' own users against a RabbitMQ node (not in TESTS: it changes the node's
# users; run by hand from a build directory).
EXTRA_DIST += tests/interop/security_rabbitmq.sh

# RabbitMQ's extensions (publisher confirms, mandatory returns, direct reply-to) and
# dead-lettering with x-death, through pika and amqplib. Against RabbitMQ:
# AMQP_HOST=127.0.0.1 AMQP_PORT=5672 tests/interop/pika_ext.sh (and amqplib_ext.sh)
TESTS += tests/interop/pika_ext.sh tests/interop/amqplib_ext.sh
EXTRA_DIST += tests/interop/pika_ext.sh tests/interop/pika_ext.py \
	tests/interop/amqplib_ext.sh tests/interop/amqplib_ext.js

# Faults: a broker out of file descriptors, stalled, or churning connections; raw-socket
# clients from rawclient.py, with a look at the broker process (CPU time, log, memory).
TESTS += tests/interop/fd_exhaustion.sh tests/interop/broker_stall.sh \
	tests/interop/churn_memory.sh
EXTRA_DIST += tests/interop/rawclient.py tests/interop/fd_exhaustion.sh \
	tests/interop/fd_exhaustion.py tests/interop/broker_stall.sh \
	tests/interop/broker_stall.py tests/interop/churn_memory.sh \
	tests/interop/churn_memory.py

# RabbitMQ parity checks through pika and the management API (issue 16).
TESTS += tests/interop/parity.sh tests/interop/sasl.sh
EXTRA_DIST += tests/interop/parity.sh tests/interop/parity.py tests/interop/sasl.sh \
	tests/interop/sasl.py

# Stream queues (x-queue-type=stream): pika, and a SIGKILL while publishing with confirms.
TESTS += tests/interop/stream_pika.sh tests/interop/stream_crash.sh
EXTRA_DIST += tests/interop/stream_pika.sh tests/interop/stream_pika.py \
	tests/interop/stream_crash.sh tests/interop/stream_crash.py

# Stream queues through amqplib and the RabbitMQ Java client (Debian's
# librabbitmq-client-java, compiled against by the wrapper; skipped without it); both pass
# against RabbitMQ 3.10.8 too.
TESTS += tests/interop/stream_amqplib.sh tests/interop/stream_java.sh
EXTRA_DIST += tests/interop/stream_amqplib.sh tests/interop/stream_amqplib.js \
	tests/interop/stream_java.sh tests/interop/stream_java.java

# Retention of streams (by size, by age with no more publishes, by policy) and their offsets
# across a restart: stream_retention.sh starts warrend with the management API (mgmt_lib.sh)
# and restarts it on the same data. Against RabbitMQ 3.10.8 (no restart):
# STREAM_NO_AGE_TIMER=1 AMQP_HOST=... AMQP_PORT=... MGMT_URL=... tests/interop/stream_retention.sh
TESTS += tests/interop/stream_retention.sh
EXTRA_DIST += tests/interop/stream_retention.sh tests/interop/stream_retention.py

# A stream as the operator sees it: the management API, warrenctl (list_queues' stream
# columns, list_stream_consumers) and the Prometheus series, with known offsets.
TESTS += tests/interop/stream_observe.sh
EXTRA_DIST += tests/interop/stream_observe.sh tests/interop/stream_observe.py
