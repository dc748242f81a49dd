# The files on disk, as bytes and records: it knows no queue, channel or message object.
src_libwarren_a_SOURCES += \
	src/store/crc32c.c src/store/crc32c.h \
	src/store/recfile.c src/store/recfile.h \
	src/store/store.c src/store/store.h src/store/store_internal.h \
	src/store/segment.c src/store/sync.c src/store/recover.c \
	src/store/defs_log.c src/store/defs_log.h \
	src/store/stream_log.c src/store/stream_log.h
