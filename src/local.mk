# warrend and warrenctl. Each folder of src/ is one layer and owns a fragment that adds its
# sources to libwarren.a (every module but main, so that unit tests and the connection fuzz
# target link the real code). A folder includes only the folders listed before it here
# (tests/unit/check_layers.sh holds them to it):
#   base         logging, configuration, buffers, a hash map, small utilities
#   security     users, password hashes, permissions; TLS through OpenSSL
#   store        the files on disk: message segments, the definitions log, record files
#   definitions  RabbitMQ definitions JSON: import, export, JSON <-> AMQP tables
#   broker       the AMQP server: listeners, connections, channels, vhosts, exchanges,
#                queues, messages, policies, dead-lettering, publish (routing), persist
#                (what is stored) and recovery (bringing it back at start)
#   mgmt         the management HTTP API, Prometheus metrics, the operations they share
#   cli          warrenctl, a client of the management API (links nothing above)
#   cluster      cluster mode: the etcd client and the coordinator (uses base, security and
#                store only; the broker and main call it through its headers)
noinst_LIBRARIES += src/libwarren.a
src_libwarren_a_SOURCES =
src_libwarren_a_CPPFLAGS = $(AM_CPPFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)

include $(srcdir)/src/base/local.mk
include $(srcdir)/src/security/local.mk
include $(srcdir)/src/store/local.mk
include $(srcdir)/src/definitions/local.mk
include $(srcdir)/src/broker/local.mk
include $(srcdir)/src/mgmt/local.mk
include $(srcdir)/src/cli/local.mk
include $(srcdir)/src/cluster/local.mk

WARREN_LIBS = src/libwarren.a exchanges/libexchanges.a amqp/libwire.a $(EV_LIBS)
WARREN_LIBS += $(MHD_LIBS) $(JANSSON_LIBS) $(OPENSSL_LIBS) $(CURL_LIBS) $(LZ4_LIBS) -lpthread

sbin_PROGRAMS += src/warrend
src_warrend_SOURCES = src/main.c
src_warrend_LDADD = $(WARREN_LIBS)
