# tests/unit: broker fragment. One Check program per module of src/.
BROKER_UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
BROKER_UNIT_LDADD = src/libwarren.a $(CHECK_LIBS)

check_PROGRAMS += tests/unit/check_config tests/unit/check_log tests/unit/check_hmap
TESTS += tests/unit/check_config tests/unit/check_log tests/unit/check_hmap

tests_unit_check_config_SOURCES = tests/unit/check_config.c
tests_unit_check_config_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_config_LDADD = $(BROKER_UNIT_LDADD)

tests_unit_check_log_SOURCES = tests/unit/check_log.c
tests_unit_check_log_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_log_LDADD = $(BROKER_UNIT_LDADD)
tests_unit_check_hmap_SOURCES = tests/unit/check_hmap.c
tests_unit_check_hmap_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_hmap_LDADD = $(BROKER_UNIT_LDADD)

# The bound on users' regular expressions (src/base/regex.c).
check_PROGRAMS += tests/unit/check_regex
TESTS += tests/unit/check_regex
tests_unit_check_regex_SOURCES = tests/unit/check_regex.c
tests_unit_check_regex_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_regex_LDADD = $(BROKER_UNIT_LDADD)

# The message store and the definitions log (they use a thread: the sync thread of the
# group commit; and libev for its completions).
check_PROGRAMS += tests/unit/check_store tests/unit/check_defs_log
TESTS += tests/unit/check_store tests/unit/check_defs_log

tests_unit_check_store_SOURCES = tests/unit/check_store.c
tests_unit_check_store_CFLAGS = $(BROKER_UNIT_CFLAGS) -pthread
tests_unit_check_store_LDADD = $(BROKER_UNIT_LDADD) $(EV_LIBS) -lpthread

tests_unit_check_defs_log_SOURCES = tests/unit/check_defs_log.c
tests_unit_check_defs_log_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_defs_log_LDADD = $(BROKER_UNIT_LDADD)

# TLS: certificates are made at test time by tls_certs.sh (never committed keys).
check_PROGRAMS += tests/unit/check_tls
TESTS += tests/unit/check_tls
EXTRA_DIST += tests/unit/tls_certs.sh

tests_unit_check_tls_SOURCES = tests/unit/check_tls.c
tests_unit_check_tls_CFLAGS = $(BROKER_UNIT_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_check_tls_LDADD = $(BROKER_UNIT_LDADD) $(OPENSSL_LIBS)

# Users, password hashes, vhosts, permissions; RabbitMQ definitions files (fixtures in
# tests/unit/fixtures/, found through top_srcdir).
check_PROGRAMS += tests/unit/check_auth tests/unit/check_definitions
TESTS += tests/unit/check_auth tests/unit/check_definitions
EXTRA_DIST += tests/unit/fixtures

AUTH_UNIT_LDADD = src/libwarren.a exchanges/libexchanges.a amqp/libwire.a $(CHECK_LIBS) \
	$(JANSSON_LIBS) $(OPENSSL_LIBS)

tests_unit_check_auth_SOURCES = tests/unit/check_auth.c
tests_unit_check_auth_CFLAGS = $(BROKER_UNIT_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_check_auth_LDADD = $(AUTH_UNIT_LDADD)

tests_unit_check_definitions_SOURCES = tests/unit/check_definitions.c
tests_unit_check_definitions_CFLAGS = $(BROKER_UNIT_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_check_definitions_LDADD = $(AUTH_UNIT_LDADD)

# Policies (src/broker/policy.c) against a vhost in memory.
check_PROGRAMS += tests/unit/check_policy
TESTS += tests/unit/check_policy
tests_unit_check_policy_SOURCES = tests/unit/check_policy.c
tests_unit_check_policy_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_policy_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)

# A connection's output buffer: encoded bytes and message bodies written in place.
check_PROGRAMS += tests/unit/check_outbuf
TESTS += tests/unit/check_outbuf
tests_unit_check_outbuf_SOURCES = tests/unit/check_outbuf.c
tests_unit_check_outbuf_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_outbuf_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)

# The memory budget all queues of a broker share (queue_memory_limit).
check_PROGRAMS += tests/unit/check_queue_budget
TESTS += tests/unit/check_queue_budget
tests_unit_check_queue_budget_SOURCES = tests/unit/check_queue_budget.c
tests_unit_check_queue_budget_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_queue_budget_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)

# Requeue in place: messages given back in batches return to their places (queue_requeue_many).
check_PROGRAMS += tests/unit/check_queue_requeue
TESTS += tests/unit/check_queue_requeue
tests_unit_check_queue_requeue_SOURCES = tests/unit/check_queue_requeue.c
tests_unit_check_queue_requeue_CFLAGS = $(BROKER_UNIT_CFLAGS)
tests_unit_check_queue_requeue_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)
