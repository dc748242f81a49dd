# tests/unit: the stream log (src/store/stream_log.c): readers and the sparse index against a
# full scan, with index files missing, truncated, random or stale. It uses the sync thread of
# the log's group commit and libev.
check_PROGRAMS += tests/unit/check_stream_log
TESTS += tests/unit/check_stream_log
tests_unit_check_stream_log_SOURCES = tests/unit/check_stream_log.c
tests_unit_check_stream_log_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -pthread
tests_unit_check_stream_log_LDADD = src/libwarren.a $(CHECK_LIBS) $(EV_LIBS) -lpthread
