# tests/unit: replication fragment (src/cluster/repl_*, the store's tap). Real files, and
# real TCP on loopback for check_repl.
REPL_UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(OPENSSL_CFLAGS) -pthread
REPL_UNIT_LDADD = src/libwarren.a amqp/libwire.a $(CHECK_LIBS) $(EV_LIBS) $(OPENSSL_LIBS) $(LZ4_LIBS) -lpthread

check_PROGRAMS += tests/unit/check_repl_tap
TESTS += tests/unit/check_repl_tap
tests_unit_check_repl_tap_SOURCES = tests/unit/check_repl_tap.c tests/unit/check_repl_util.h
tests_unit_check_repl_tap_CFLAGS = $(REPL_UNIT_CFLAGS)
tests_unit_check_repl_tap_LDADD = $(REPL_UNIT_LDADD)

check_PROGRAMS += tests/unit/check_repl_proto
TESTS += tests/unit/check_repl_proto
tests_unit_check_repl_proto_SOURCES = tests/unit/check_repl_proto.c tests/unit/check_repl_util.h
tests_unit_check_repl_proto_CFLAGS = $(REPL_UNIT_CFLAGS)
tests_unit_check_repl_proto_LDADD = $(REPL_UNIT_LDADD)

check_PROGRAMS += tests/unit/check_repl
TESTS += tests/unit/check_repl
tests_unit_check_repl_SOURCES = tests/unit/check_repl.c tests/unit/check_repl_util.h
tests_unit_check_repl_CFLAGS = $(REPL_UNIT_CFLAGS)
tests_unit_check_repl_LDADD = $(REPL_UNIT_LDADD)
