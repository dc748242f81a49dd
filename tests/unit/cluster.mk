# tests/unit: cluster fragment. The etcd client and the coordinator against real etcd
# members started by tests/unit/etcd_fixture.c (etcd from PATH or $ETCD; missing = failure).
CLUSTER_UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) -pthread
CLUSTER_UNIT_LDADD = src/libwarren.a amqp/libwire.a $(CHECK_LIBS) $(CURL_LIBS) $(LZ4_LIBS) \
	$(JANSSON_LIBS) $(EV_LIBS) -lpthread

check_PROGRAMS += tests/unit/check_etcd tests/unit/check_coord
TESTS += tests/unit/check_etcd tests/unit/check_coord

tests_unit_check_etcd_SOURCES = tests/unit/check_etcd.c tests/unit/etcd_fixture.c \
	tests/unit/etcd_fixture.h
tests_unit_check_etcd_CFLAGS = $(CLUSTER_UNIT_CFLAGS)
tests_unit_check_etcd_LDADD = $(CLUSTER_UNIT_LDADD)

tests_unit_check_coord_SOURCES = tests/unit/check_coord.c tests/unit/etcd_fixture.c \
	tests/unit/etcd_fixture.h
tests_unit_check_coord_CFLAGS = $(CLUSTER_UNIT_CFLAGS)
tests_unit_check_coord_LDADD = $(CLUSTER_UNIT_LDADD)
