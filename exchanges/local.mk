# exchanges: the exchange types behind exchange_type.h, exchanges/libexchanges.a.
# Depends on amqp/ (link libexchanges.a before libwire.a), on nothing in src/.
noinst_LIBRARIES += exchanges/libexchanges.a
exchanges_libexchanges_a_SOURCES = \
	exchanges/exchange_type.h \
	exchanges/registry.h exchanges/registry.c \
	exchanges/route_out.c \
	exchanges/xalloc.h exchanges/xalloc.c \
	exchanges/binding_set.h exchanges/binding_set.c \
	exchanges/bytes_map.h exchanges/bytes_map.c \
	exchanges/erl_term.h exchanges/erl_term.c \
	exchanges/direct.c \
	exchanges/fanout.c \
	exchanges/topic.h exchanges/topic.c \
	exchanges/headers.c
