# tests/fuzz: replication fragment. fuzz_repl feeds arbitrary bytes to the replication
# stream's frame splitter and payload decoders (src/cluster/repl_proto.c), handshake frames
# included, and checks every accepted frame encodes back to the same bytes; it follows the
# pattern documented at the top of tests/fuzz/wire.mk. The seeds in corpus/repl/ are written
# by tests/fuzz/make_repl_seeds.py.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_repl
tests_fuzz_fuzz_repl_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_repl
TESTS += tests/fuzz/fuzz_repl
endif
tests_fuzz_fuzz_repl_SOURCES = tests/fuzz/fuzz_repl.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_repl_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_repl_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
tests_fuzz_fuzz_repl_LDADD = src/libwarren.a $(OPENSSL_LIBS) $(LZ4_LIBS)

EXTRA_DIST += tests/fuzz/corpus/repl tests/fuzz/make_repl_seeds.py
