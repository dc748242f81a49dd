# bench: codec_bench, the codec's micro-benchmark (frames and messages per second for
# decoding publishes and encoding deliveries). Not run by make check: `bench/codec_bench [s]`.
noinst_PROGRAMS += bench/codec_bench
bench_codec_bench_SOURCES = bench/codec_bench.c
# Always optimised, whatever CFLAGS the build uses (the library follows the build's CFLAGS:
# measure in a build configured without sanitizers).
bench_codec_bench_CFLAGS = $(AM_CFLAGS) -O2
bench_codec_bench_LDADD = amqp/libwire.a
