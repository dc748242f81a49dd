# tests/fuzz: config fragment. fuzz_config feeds arbitrary text to config_parse(); it follows
# the pattern documented at the top of tests/fuzz/wire.mk.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_config
tests_fuzz_fuzz_config_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_config
TESTS += tests/fuzz/fuzz_config
endif
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_config_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_config_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_config_LDADD = src/libwarren.a

EXTRA_DIST += tests/fuzz/corpus/config
