# RabbitMQ definitions files (JSON): parsed into the auth database and plain structs, and
# written from them; the broker applies what they hold (src/mgmt/mgmt_defs.c).
src_libwarren_a_SOURCES += \
	src/definitions/definitions.c src/definitions/definitions.h \
	src/definitions/definitions_internal.h src/definitions/json_table.c \
	src/definitions/import.c src/definitions/export.c
