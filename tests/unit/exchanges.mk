# tests/unit: the exchange types (Check). One program per area of exchanges/, so that
# `make check TESTS=tests/unit/check_exchanges_topic` runs one.
EXCHANGES_TEST_LDADD = exchanges/libexchanges.a amqp/libwire.a $(CHECK_LIBS)

check_PROGRAMS += tests/unit/check_exchanges tests/unit/check_exchanges_topic \
	tests/unit/check_exchanges_headers
TESTS += tests/unit/check_exchanges tests/unit/check_exchanges_topic \
	tests/unit/check_exchanges_headers

tests_unit_check_exchanges_SOURCES = tests/unit/check_exchanges.c tests/unit/check_exchanges.h
tests_unit_check_exchanges_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_exchanges_LDADD = $(EXCHANGES_TEST_LDADD)

tests_unit_check_exchanges_topic_SOURCES = tests/unit/check_exchanges_topic.c \
	tests/unit/check_exchanges.h
tests_unit_check_exchanges_topic_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_exchanges_topic_LDADD = $(EXCHANGES_TEST_LDADD)

tests_unit_check_exchanges_headers_SOURCES = tests/unit/check_exchanges_headers.c \
	tests/unit/check_exchanges.h
tests_unit_check_exchanges_headers_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_exchanges_headers_LDADD = $(EXCHANGES_TEST_LDADD)
