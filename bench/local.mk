# Benchmarks. Each tool owns one fragment.
include $(srcdir)/bench/codec.mk
include $(srcdir)/bench/perf.mk

# churn_rss.py: resident memory after connection churn (a script; see bench/README.md).
EXTRA_DIST += bench/churn_rss.py

include $(srcdir)/bench/requeue.mk

# cluster.sh / cluster.py: a 3-node cluster against one node (see bench/README.md).
EXTRA_DIST += bench/cluster.sh bench/cluster.py bench/cluster_lz4.py

# stream_seek: the time of a seek into a stream log (see bench/stream_seek.mk).
include $(srcdir)/bench/stream_seek.mk
