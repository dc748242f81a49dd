# warren-requeue: how long the loop is held when many unacked deliveries are requeued at once
# (channel close, basic.nack multiple, connection close), through rabbitmq-c;
# bench/requeue.sh runs it on a warrend of its own and prints medians.
noinst_PROGRAMS += bench/warren-requeue
bench_warren_requeue_SOURCES = bench/warren_requeue.c
bench_warren_requeue_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS) -O2 -pthread
bench_warren_requeue_LDADD = $(RABBITMQ_LIBS) -lpthread
EXTRA_DIST += bench/requeue.sh
