# bench: stream_seek, how long a seek into a stream log's segment holds the loop (offset,
# timestamp, last; cache warm and cold) and how long the log's reopen takes. Not run by
# make check: `bench/stream_seek [DIR] [SEGMENT_BYTES]` writes one segment (500 MB by default).
noinst_PROGRAMS += bench/stream_seek
bench_stream_seek_SOURCES = bench/stream_seek.c
bench_stream_seek_CFLAGS = $(AM_CFLAGS) -O2 -pthread
bench_stream_seek_LDADD = src/libwarren.a amqp/libwire.a $(EV_LIBS) -lpthread
