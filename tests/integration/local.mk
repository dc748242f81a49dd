# tests/integration: a live broker driven by rabbitmq-c. harness.c (one small library) starts
# warrend, or uses the broker named by AMQP_HOST/AMQP_PORT; each it_<topic>.c is one Check
# program. Against RabbitMQ:
#   AMQP_HOST=127.0.0.1 AMQP_PORT=5672 make check TESTS='tests/integration/it_basic ...'
IT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(RABBITMQ_CFLAGS)
IT_LDADD = tests/integration/libitharness.a $(CHECK_LIBS) $(RABBITMQ_LIBS)

noinst_LIBRARIES += tests/integration/libitharness.a
tests_integration_libitharness_a_SOURCES = tests/integration/harness.c tests/integration/harness.h
tests_integration_libitharness_a_CFLAGS = $(IT_CFLAGS)

IT_CHECKS = \
	tests/integration/it_connection \
	tests/integration/it_exchange \
	tests/integration/it_queue \
	tests/integration/it_basic \
	tests/integration/it_limits \
	tests/integration/it_confirm \
	tests/integration/it_tx \
	tests/integration/it_e2e \
	tests/integration/it_consumers \
	tests/integration/it_publish \
	tests/integration/it_deadletter \
	tests/integration/it_ttl \
	tests/integration/it_qlimits \
	tests/integration/it_priority \
	tests/integration/it_qargs \
	tests/integration/it_delivery_limit \
	tests/integration/it_requeue

check_PROGRAMS += $(IT_CHECKS)
TESTS += $(IT_CHECKS)

tests_integration_it_connection_SOURCES = tests/integration/it_connection.c
tests_integration_it_connection_CFLAGS = $(IT_CFLAGS)
tests_integration_it_connection_LDADD = $(IT_LDADD)

tests_integration_it_exchange_SOURCES = tests/integration/it_exchange.c
tests_integration_it_exchange_CFLAGS = $(IT_CFLAGS)
tests_integration_it_exchange_LDADD = $(IT_LDADD)

tests_integration_it_queue_SOURCES = tests/integration/it_queue.c
tests_integration_it_queue_CFLAGS = $(IT_CFLAGS)
tests_integration_it_queue_LDADD = $(IT_LDADD)

tests_integration_it_basic_SOURCES = tests/integration/it_basic.c
tests_integration_it_basic_CFLAGS = $(IT_CFLAGS)
tests_integration_it_basic_LDADD = $(IT_LDADD)

tests_integration_it_limits_SOURCES = tests/integration/it_limits.c
tests_integration_it_limits_CFLAGS = $(IT_CFLAGS)
tests_integration_it_limits_LDADD = $(IT_LDADD)

tests_integration_it_confirm_SOURCES = tests/integration/it_confirm.c
tests_integration_it_confirm_CFLAGS = $(IT_CFLAGS)
tests_integration_it_confirm_LDADD = $(IT_LDADD)

tests_integration_it_tx_SOURCES = tests/integration/it_tx.c
tests_integration_it_tx_CFLAGS = $(IT_CFLAGS)
tests_integration_it_tx_LDADD = $(IT_LDADD)

tests_integration_it_e2e_SOURCES = tests/integration/it_e2e.c
tests_integration_it_e2e_CFLAGS = $(IT_CFLAGS)
tests_integration_it_e2e_LDADD = $(IT_LDADD)

tests_integration_it_consumers_SOURCES = tests/integration/it_consumers.c
tests_integration_it_consumers_CFLAGS = $(IT_CFLAGS)
tests_integration_it_consumers_LDADD = $(IT_LDADD)

tests_integration_it_publish_SOURCES = tests/integration/it_publish.c
tests_integration_it_publish_CFLAGS = $(IT_CFLAGS)
tests_integration_it_publish_LDADD = $(IT_LDADD)

tests_integration_it_deadletter_SOURCES = tests/integration/it_deadletter.c
tests_integration_it_deadletter_CFLAGS = $(IT_CFLAGS)
tests_integration_it_deadletter_LDADD = $(IT_LDADD)

tests_integration_it_ttl_SOURCES = tests/integration/it_ttl.c
tests_integration_it_ttl_CFLAGS = $(IT_CFLAGS)
tests_integration_it_ttl_LDADD = $(IT_LDADD)

tests_integration_it_qlimits_SOURCES = tests/integration/it_qlimits.c
tests_integration_it_qlimits_CFLAGS = $(IT_CFLAGS)
tests_integration_it_qlimits_LDADD = $(IT_LDADD)

tests_integration_it_priority_SOURCES = tests/integration/it_priority.c
tests_integration_it_priority_CFLAGS = $(IT_CFLAGS)
tests_integration_it_priority_LDADD = $(IT_LDADD)

tests_integration_it_qargs_SOURCES = tests/integration/it_qargs.c
tests_integration_it_qargs_CFLAGS = $(IT_CFLAGS)
tests_integration_it_qargs_LDADD = $(IT_LDADD)

tests_integration_it_delivery_limit_SOURCES = tests/integration/it_delivery_limit.c
tests_integration_it_delivery_limit_CFLAGS = $(IT_CFLAGS)
tests_integration_it_delivery_limit_LDADD = $(IT_LDADD)

tests_integration_it_requeue_SOURCES = tests/integration/it_requeue.c
tests_integration_it_requeue_CFLAGS = $(IT_CFLAGS)
tests_integration_it_requeue_LDADD = $(IT_LDADD)

# it_durable restarts warrend (clean and SIGKILL) and damages its segment files: see the
# comment at its top.
check_PROGRAMS += tests/integration/it_durable
TESTS += tests/integration/it_durable
tests_integration_it_durable_SOURCES = tests/integration/it_durable.c
tests_integration_it_durable_CFLAGS = $(IT_CFLAGS)
tests_integration_it_durable_LDADD = $(IT_LDADD)

# it_tls: AMQPS through rabbitmq-c's TLS socket and a bare OpenSSL client; certificates are
# made at run time by tests/unit/tls_certs.sh.
check_PROGRAMS += tests/integration/it_tls
TESTS += tests/integration/it_tls
tests_integration_it_tls_SOURCES = tests/integration/it_tls.c
tests_integration_it_tls_CFLAGS = $(IT_CFLAGS) $(OPENSSL_CFLAGS)
tests_integration_it_tls_LDADD = $(IT_LDADD) $(OPENSSL_LIBS)

# Security: permissions, limits, resource alarms, abusive clients. sec_util.c installs the
# tests' users into the harness's warrend through its data directory (see sec_util.h), so
# these programs link the broker's definitions code. Against RabbitMQ:
# tests/interop/security_rabbitmq.sh (it_permissions, it_limits_sec; it_abuse runs what it
# can with AMQP_HOST alone).
SEC_CFLAGS = $(IT_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)
SEC_LDADD = $(IT_LDADD) src/libwarren.a exchanges/libexchanges.a amqp/libwire.a \
	$(JANSSON_LIBS) $(OPENSSL_LIBS)
SEC_SOURCES = tests/integration/sec_util.c tests/integration/sec_util.h
SEC_CHECKS = \
	tests/integration/it_permissions \
	tests/integration/it_limits_sec \
	tests/integration/it_alarms \
	tests/integration/it_alarm_disk \
	tests/integration/it_abuse
check_PROGRAMS += $(SEC_CHECKS)
TESTS += $(SEC_CHECKS)

tests_integration_it_permissions_SOURCES = tests/integration/it_permissions.c $(SEC_SOURCES)
tests_integration_it_permissions_CFLAGS = $(SEC_CFLAGS)
tests_integration_it_permissions_LDADD = $(SEC_LDADD)

tests_integration_it_limits_sec_SOURCES = tests/integration/it_limits_sec.c $(SEC_SOURCES)
tests_integration_it_limits_sec_CFLAGS = $(SEC_CFLAGS)
tests_integration_it_limits_sec_LDADD = $(SEC_LDADD)

# A blocked publisher's writes block: it_alarms publishes from a thread.
tests_integration_it_alarms_SOURCES = tests/integration/it_alarms.c $(SEC_SOURCES)
tests_integration_it_alarms_CFLAGS = $(SEC_CFLAGS) -pthread
tests_integration_it_alarms_LDADD = $(SEC_LDADD) -lpthread

tests_integration_it_alarm_disk_SOURCES = tests/integration/it_alarm_disk.c $(SEC_SOURCES)
tests_integration_it_alarm_disk_CFLAGS = $(SEC_CFLAGS)
tests_integration_it_alarm_disk_LDADD = $(SEC_LDADD)

tests_integration_it_abuse_SOURCES = tests/integration/it_abuse.c $(SEC_SOURCES)
tests_integration_it_abuse_CFLAGS = $(SEC_CFLAGS)
tests_integration_it_abuse_LDADD = $(SEC_LDADD)

# it_disk_full mounts a tmpfs over its own broker's data directory (root only; skipped
# otherwise) and fills it.
SEC_DISK_CHECKS = tests/integration/it_disk_full
check_PROGRAMS += $(SEC_DISK_CHECKS)
TESTS += $(SEC_DISK_CHECKS)
tests_integration_it_disk_full_SOURCES = tests/integration/it_disk_full.c $(SEC_SOURCES)
tests_integration_it_disk_full_CFLAGS = $(SEC_CFLAGS)
tests_integration_it_disk_full_LDADD = $(SEC_LDADD)
