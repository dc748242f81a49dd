# Below everything else: nothing here knows about AMQP objects.
src_libwarren_a_SOURCES += \
	src/base/log.c src/base/log.h \
	src/base/config.c src/base/config.h \
	src/base/util.c src/base/util.h \
	src/base/hmap.c src/base/hmap.h \
	src/base/buf.c src/base/buf.h \
	src/base/regex.c src/base/regex.h \
	src/base/version.h
