# Benchmarks. Each tool owns one fragment.
include $(srcdir)/bench/codec.mk
include $(srcdir)/bench/perf.mk
