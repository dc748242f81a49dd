# The follower's relay of clients to the leader (src/cluster/proxy.h) and the PROXY protocol
# v1 header it sends and the leader reads (src/cluster/proxy_header.h, read in
# src/broker/conn.c from the peers of server_set_proxy_peers and cluster.proxy_peers).
src_libwarren_a_SOURCES += \
	src/cluster/proxy_header.c src/cluster/proxy_header.h \
	src/cluster/proxy.c src/cluster/proxy.h

# The relay on real loopback sockets and one libev loop; the leader's side (the PROXY header,
# refuse mode) against a server running in the test's process.
check_PROGRAMS += tests/unit/check_proxy
TESTS += tests/unit/check_proxy
tests_unit_check_proxy_SOURCES = tests/unit/check_proxy.c
tests_unit_check_proxy_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_proxy_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)

# A real warrend reading PROXY headers from cluster.proxy_peers (tests/interop/proxy_protocol.py).
TESTS += tests/interop/proxy_protocol.sh
EXTRA_DIST += tests/interop/proxy_protocol.sh tests/interop/proxy_protocol.py
