# The follower's relay of clients to the leader (src/cluster/proxy.h) and the PROXY protocol
# v1 header it sends and the leader reads (src/cluster/proxy_header.h).
src_libwarren_a_SOURCES += \
	src/cluster/proxy_header.c src/cluster/proxy_header.h \
	src/cluster/proxy.c src/cluster/proxy.h

# The header, and the relay on real loopback sockets and one libev loop.
check_PROGRAMS += tests/unit/check_proxy
TESTS += tests/unit/check_proxy
tests_unit_check_proxy_SOURCES = tests/unit/check_proxy.c
tests_unit_check_proxy_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_proxy_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)
