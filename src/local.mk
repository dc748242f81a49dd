# The broker. libwarren.a holds every module but main, so unit tests and the connection
# fuzz target link the real code.
noinst_LIBRARIES += src/libwarren.a
src_libwarren_a_SOURCES = \
	src/log.c src/log.h \
	src/config.c src/config.h \
	src/util.c src/util.h \
	src/hmap.c src/hmap.h \
	src/buf.c src/buf.h \
	src/outbuf.c src/outbuf.h \
	src/message.c src/message.h \
	src/queue.c src/queue.h \
	src/deadletter.c src/deadletter.h \
	src/persist.c src/persist.h \
	src/spill.c src/spill.h \
	src/publish.c src/publish.h \
	src/policy.c src/policy.h \
	src/exchange.c src/exchange.h \
	src/vhost.c src/vhost.h \
	src/channel.c src/channel.h \
	src/conn.c src/conn.h \
	src/server.c src/server.h \
	src/crc32c.c src/crc32c.h \
	src/recfile.c src/recfile.h \
	src/store.c src/store.h \
	src/defs_log.c src/defs_log.h \
	src/auth.c src/auth.h \
	src/definitions.c src/definitions.h \
	src/tls.c src/tls.h

# The management API (HTTP, JSON), the Prometheus metrics and the broker operations they
# share with definitions import (src/mgmt.h).
src_libwarren_a_SOURCES += \
	src/ops.c src/ops.h \
	src/mgmt.c src/mgmt.h src/mgmt_api.h \
	src/mgmt_users.c src/mgmt_objects.c src/mgmt_runtime.c \
	src/mgmt_json.c src/mgmt_json.h \
	src/mgmt_stats.c src/mgmt_stats.h \
	src/mgmt_defs.c src/mgmt_defs.h \
	src/metrics.c src/metrics.h
src_libwarren_a_CPPFLAGS = $(AM_CPPFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)

WARREN_LIBS = src/libwarren.a exchanges/libexchanges.a amqp/libwire.a $(EV_LIBS)
WARREN_LIBS += $(MHD_LIBS) $(JANSSON_LIBS) $(OPENSSL_LIBS)

sbin_PROGRAMS += src/warrend
src_warrend_SOURCES = src/main.c
src_warrend_LDADD = $(WARREN_LIBS)

# warrenctl: the admin CLI, a client of the management API (libcurl, jansson).
bin_PROGRAMS += src/warrenctl
src_warrenctl_SOURCES = src/warrenctl.c src/warrenctl.h src/warrenctl_http.c \
	src/warrenctl_format.c
src_warrenctl_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
src_warrenctl_LDADD = $(CURL_LIBS) $(JANSSON_LIBS)
