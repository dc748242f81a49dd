# src/cluster: the replication layer (its own fragment, so that the coordinator's
# src/cluster/local.mk merges without touching it). repl_proto: the stream's wire format and
# epoch files; repl_leader: the leader's side on the main loop (catch-up, live stream,
# acks, commit); repl_follower: the follower's side (applies frames to its data directory,
# fsyncs, acks); repl_link: plain TCP or TLS under a connection. They use base, security
# (TLS) and store.
src_libwarren_a_SOURCES += \
	src/cluster/repl_proto.c src/cluster/repl_proto.h \
	src/cluster/repl_link.c src/cluster/repl_link.h \
	src/cluster/repl_leader.c src/cluster/repl_leader.h \
	src/cluster/repl_follower.c src/cluster/repl_follower.h
