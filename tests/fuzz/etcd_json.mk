# tests/fuzz: etcd fragment. fuzz_etcd_json feeds arbitrary bytes to the parsers of etcd's
# gateway answers and stream lines (src/cluster/etcd_json.c); it follows the pattern
# documented at the top of tests/fuzz/wire.mk. Seeds: answers captured from etcd 3.4.23.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_etcd_json
tests_fuzz_fuzz_etcd_json_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_etcd_json
TESTS += tests/fuzz/fuzz_etcd_json
endif
tests_fuzz_fuzz_etcd_json_SOURCES = tests/fuzz/fuzz_etcd_json.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_etcd_json_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_etcd_json_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_etcd_json_LDADD = src/libwarren.a amqp/libwire.a $(JANSSON_LIBS)

EXTRA_DIST += tests/fuzz/corpus/etcd_json
