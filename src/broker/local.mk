# The AMQP broker: messages and queues up to listeners, connections and channels.
src_libwarren_a_SOURCES += \
	src/broker/message.c src/broker/message.h \
	src/broker/outbuf.c src/broker/outbuf.h \
	src/broker/spill.c src/broker/spill.h \
	src/broker/queue.c src/broker/queue.h \
	src/broker/stream.c src/broker/stream.h \
	src/broker/deadletter.c src/broker/deadletter.h \
	src/broker/persist.c src/broker/persist.h \
	src/broker/recovery.c src/broker/recovery.h \
	src/broker/publish.c src/broker/publish.h \
	src/broker/policy.c src/broker/policy.h \
	src/broker/exchange.c src/broker/exchange.h \
	src/broker/vhost.c src/broker/vhost.h \
	src/broker/channel.c src/broker/channel.h \
	src/broker/channel_decl.c src/broker/channel_internal.h \
	src/broker/conn.c src/broker/conn.h src/broker/conn_internal.h src/broker/conn_handshake.c \
	src/broker/server.c src/broker/server.h
