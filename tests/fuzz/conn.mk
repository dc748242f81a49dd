# tests/fuzz: conn fragment. fuzz_conn drives one in-memory connection of warrend (no
# socket) with arbitrary bytes: handshake, channels, exchanges, queues, publish, consume.
# It follows the pattern documented at the top of tests/fuzz/wire.mk. The seeds in
# corpus/conn/ are client sessions written by tests/fuzz/make_conn_seeds.py.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_conn
tests_fuzz_fuzz_conn_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_conn
TESTS += tests/fuzz/fuzz_conn
endif
tests_fuzz_fuzz_conn_SOURCES = tests/fuzz/fuzz_conn.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_conn_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_conn_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_conn_LDADD = $(WARREN_LIBS)

EXTRA_DIST += tests/fuzz/corpus/conn tests/fuzz/make_conn_seeds.py
