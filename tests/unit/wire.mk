# tests/unit: the codec's Check suites, and the test that the generated method codec is
# what tools/gen_methods.py writes today.
WIRE_CHECKS = \
	tests/unit/check_wire_table \
	tests/unit/check_wire_method \
	tests/unit/check_wire_frame \
	tests/unit/check_wire_rabbitmq

check_PROGRAMS += $(WIRE_CHECKS)
TESTS += $(WIRE_CHECKS) tests/unit/check_wire_generated.sh
EXTRA_DIST += tests/unit/check_wire_generated.sh

tests_unit_check_wire_table_SOURCES = tests/unit/check_wire_table.c
tests_unit_check_wire_table_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_wire_table_LDADD = amqp/libwire.a $(CHECK_LIBS)

tests_unit_check_wire_method_SOURCES = tests/unit/check_wire_method.c
tests_unit_check_wire_method_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_wire_method_LDADD = amqp/libwire.a $(CHECK_LIBS)

tests_unit_check_wire_frame_SOURCES = tests/unit/check_wire_frame.c
tests_unit_check_wire_frame_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_wire_frame_LDADD = amqp/libwire.a $(CHECK_LIBS)

# rabbitmq-c (the test client) as an independent encoder and decoder of the same spec.
tests_unit_check_wire_rabbitmq_SOURCES = tests/unit/check_wire_rabbitmq.c
tests_unit_check_wire_rabbitmq_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(RABBITMQ_CFLAGS)
tests_unit_check_wire_rabbitmq_LDADD = amqp/libwire.a $(RABBITMQ_LIBS) $(CHECK_LIBS)
