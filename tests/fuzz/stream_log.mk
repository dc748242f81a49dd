# tests/fuzz: stream log fragment. fuzz_stream_log writes arbitrary bytes as the segment
# (and index) files of a stream log (src/store/stream_log.c), opens it, reads and seeks it
# every way and checks each seek against a full scan; it follows the pattern documented at
# the top of tests/fuzz/wire.mk. The seeds in corpus/stream_log/ are written by
# tests/fuzz/make_stream_log_seeds.py.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_stream_log
tests_fuzz_fuzz_stream_log_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_stream_log
TESTS += tests/fuzz/fuzz_stream_log
endif
tests_fuzz_fuzz_stream_log_SOURCES = tests/fuzz/fuzz_stream_log.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_stream_log_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_stream_log_CFLAGS = $(AM_CFLAGS) -pthread
tests_fuzz_fuzz_stream_log_LDADD = src/libwarren.a $(EV_LIBS) -lpthread

EXTRA_DIST += tests/fuzz/corpus/stream_log tests/fuzz/make_stream_log_seeds.py
