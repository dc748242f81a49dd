# tests/unit: the codec's Check suites, and the test that the generated method codec is
# what tools/gen_methods.py writes today.
WIRE_CHECKS = \
	tests/unit/check_wire_rabbitmq

check_PROGRAMS += $(WIRE_CHECKS)
TESTS += $(WIRE_CHECKS)

tests_unit_check_wire_rabbitmq_SOURCES = tests/unit/check_wire_rabbitmq.c
tests_unit_check_wire_rabbitmq_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(RABBITMQ_CFLAGS)
tests_unit_check_wire_rabbitmq_LDADD = amqp/libwire.a $(RABBITMQ_LIBS) $(CHECK_LIBS)
