# tests/fuzz: the web UI's path rules. fuzz_ui_path feeds arbitrary request paths to
# mgmt_ui_file_path() (src/mgmt/ui.c) and checks every path it lets through; it follows the
# pattern documented at the top of tests/fuzz/wire.mk.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_ui_path
tests_fuzz_fuzz_ui_path_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_ui_path
TESTS += tests/fuzz/fuzz_ui_path
endif
tests_fuzz_fuzz_ui_path_SOURCES = tests/fuzz/fuzz_ui_path.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_ui_path_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_ui_path_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
tests_fuzz_fuzz_ui_path_LDADD = $(WARREN_LIBS)

EXTRA_DIST += tests/fuzz/corpus/ui_path
