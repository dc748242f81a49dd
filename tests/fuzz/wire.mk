# tests/fuzz: the codec's fuzz target, fuzz_wire, and the pattern every fuzz entry follows.
#
# An entry <e> is tests/fuzz/fuzz_<e>.c, defining LLVMFuzzerTestOneInput(), and a seed corpus
# tests/fuzz/corpus/<e>/ of small inputs (add every input that ever crashed it). Its fragment
# (tests/fuzz/<area>.mk) declares it like fuzz_wire below:
#   - with --enable-fuzzing (CC=clang) fuzz_<e> is a libFuzzer binary that plain `make`
#     builds (noinst), linked with -fsanitize=fuzzer; scripts/fuzz runs every such binary;
#   - otherwise fuzz_<e> also links tests/fuzz/replay.c, whose main() runs each file of
#     corpus/<e>/ once (it finds it through top_srcdir, which make check exports, and the
#     program's name), and is a TESTS entry: make check keeps old crashes fixed.
# tests/fuzz/run-corpus.sh <e> replays a corpus by hand with either kind of binary.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_wire
tests_fuzz_fuzz_wire_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz_wire
TESTS += tests/fuzz/fuzz_wire
endif
tests_fuzz_fuzz_wire_SOURCES = tests/fuzz/fuzz_wire.c
if !ENABLE_FUZZING
tests_fuzz_fuzz_wire_SOURCES += tests/fuzz/replay.c
endif
tests_fuzz_fuzz_wire_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_wire_LDADD = amqp/libwire.a

EXTRA_DIST += tests/fuzz/corpus/wire tests/fuzz/run-corpus.sh tests/fuzz/replay.c
