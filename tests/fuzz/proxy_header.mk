# tests/fuzz: PROXY header fragment. fuzz_proxy_header feeds arbitrary bytes to the PROXY
# protocol v1 reader (src/cluster/proxy_header.c), which a leader runs on the first bytes of
# its cluster peers' connections; it follows the pattern documented at the top of
# tests/fuzz/wire.mk.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_proxy_header
tests_fuzz_fuzz_proxy_header_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_proxy_header
TESTS += tests/fuzz/fuzz_proxy_header
endif
tests_fuzz_fuzz_proxy_header_SOURCES = tests/fuzz/fuzz_proxy_header.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_proxy_header_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_proxy_header_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_proxy_header_LDADD = src/libwarren.a

EXTRA_DIST += tests/fuzz/corpus/proxy_header
