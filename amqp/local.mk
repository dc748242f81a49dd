# amqp: the wire codec, amqp/libwire.a. Pure: no sockets, no broker state, no allocation.
noinst_LIBRARIES += amqp/libwire.a
amqp_libwire_a_SOURCES = \
	amqp/wire.h \
	amqp/table.h amqp/table.c \
	amqp/props.h amqp/props.c \
	amqp/frame.h amqp/frame.c \
	amqp/method.h amqp/method.c
amqp_libwire_a_CFLAGS = $(AM_CFLAGS) $(WIRE_WARN_CFLAGS)

# method.h and method.c are generated from the spec and committed. After changing the
# generator (or the spec copy beside it), `make regen-methods` rewrites them in the source
# tree; tests/unit/check_wire_generated.sh fails `make check` while they differ.
WIRE_SPEC = $(top_srcdir)/tools/amqp-rabbitmq-0.9.1.json
EXTRA_DIST += tools/gen_methods.py tools/amqp-rabbitmq-0.9.1.json

regen-methods:
	$${PYTHON:-python3} $(top_srcdir)/tools/gen_methods.py $(WIRE_SPEC) $(top_srcdir)/amqp

.PHONY: regen-methods
