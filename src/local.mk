# The broker. libwarren.a holds every module but main, so unit tests and the connection
# fuzz target link the real code.
noinst_LIBRARIES += src/libwarren.a
src_libwarren_a_SOURCES = \
	src/log.c src/log.h \
	src/config.c src/config.h \
	src/util.c src/util.h \
	src/hmap.c src/hmap.h \
	src/buf.c src/buf.h \
	src/message.c src/message.h \
	src/queue.c src/queue.h \
	src/deadletter.c src/deadletter.h \
	src/exchange.c src/exchange.h \
	src/vhost.c src/vhost.h \
	src/channel.c src/channel.h \
	src/conn.c src/conn.h \
	src/server.c src/server.h \
	src/crc32c.c src/crc32c.h \
	src/recfile.c src/recfile.h \
	src/store.c src/store.h \
	src/defs_log.c src/defs_log.h \
	src/tls.c src/tls.h

WARREN_LIBS = src/libwarren.a exchanges/libexchanges.a amqp/libwire.a $(EV_LIBS)

sbin_PROGRAMS += src/warrend
src_warrend_SOURCES = src/main.c
src_warrend_LDADD = $(WARREN_LIBS)
