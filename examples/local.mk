# examples/: the classic messaging scenarios as small programs (examples/README.md), Python
# with pika (run with /usr/bin/python3) and one in C with rabbitmq-c. In make check each
# check_NN_*.sh starts a warrend of its own, runs one example against it and asserts on the
# RESULT line the example prints. Against a broker of your own:
#   AMQP_HOST=127.0.0.1 AMQP_PORT=5672 /usr/bin/python3 examples/01_work_queue.py
EXAMPLE_TESTS = \
	examples/check_01_work_queue.sh \
	examples/check_02_pubsub.sh \
	examples/check_03_peak_shaving.sh \
	examples/check_04_token_bucket.sh \
	examples/check_05_failure_isolation.sh \
	examples/check_06_poison_message.sh \
	examples/check_07_timeouts.sh \
	examples/check_08_ordering_idempotency.sh \
	examples/check_09_reliable_publishing.sh \
	examples/check_10_rpc.sh \
	examples/check_11_monitoring.sh

TESTS += $(EXAMPLE_TESTS)
EXTRA_DIST += $(EXAMPLE_TESTS) \
	examples/README.md \
	examples/check_lib.sh \
	examples/common.py \
	examples/01_work_queue.py \
	examples/02_pubsub.py \
	examples/04_token_bucket.py \
	examples/05_failure_isolation.py \
	examples/06_poison_message.py \
	examples/07_timeouts.py \
	examples/08_ordering_idempotency.py \
	examples/09_reliable_publishing.py \
	examples/10_rpc.py \
	examples/11_monitoring.py \
	examples/12_stream_replay.py

# Scenario 3 publishes a million messages in seconds: C, so the client is not the limit.
# Built by make check, or alone: make examples/03_peak_shaving
check_PROGRAMS += examples/03_peak_shaving
examples_03_peak_shaving_SOURCES = examples/03_peak_shaving.c
examples_03_peak_shaving_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS) -pthread
examples_03_peak_shaving_LDADD = $(RABBITMQ_LIBS) -lpthread
