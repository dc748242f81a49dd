# tests/fuzz: regex fragment. fuzz_regex feeds arbitrary patterns to the bound on users'
# regular expressions (src/base/regex.c) and compiles what it lets through; it follows the
# pattern documented at the top of tests/fuzz/wire.mk.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_regex
tests_fuzz_fuzz_regex_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_regex
TESTS += tests/fuzz/fuzz_regex
endif
tests_fuzz_fuzz_regex_SOURCES = tests/fuzz/fuzz_regex.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_regex_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_regex_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_regex_LDADD = src/libwarren.a

EXTRA_DIST += tests/fuzz/corpus/regex
