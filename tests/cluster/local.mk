# tests/cluster: a real cluster on loopback (3 etcd members, 3 warrend) under faults, driven
# by pika (rig.py starts everything on free ports; cluster_faults.py injects the faults and
# checks that no confirmed message is lost). The long run: scripts/cluster-faults.
TESTS += tests/cluster/cluster_faults.sh tests/cluster/cluster_min_isr.sh tests/cluster/cluster_refuse.sh \
	tests/cluster/cluster_unclean.sh
EXTRA_DIST += tests/cluster/cluster_faults.sh tests/cluster/cluster_faults.py tests/cluster/rig.py \
	tests/cluster/cluster_min_isr.sh tests/cluster/cluster_min_isr.py \
	tests/cluster/cluster_refuse.sh tests/cluster/cluster_refuse.py \
	tests/cluster/cluster_unclean.sh tests/cluster/cluster_unclean.py
# cluster_tls: TLS on the replication port (cluster.tls.*) and cluster.sync_rate_limit.
TESTS += tests/cluster/cluster_tls.sh
EXTRA_DIST += tests/cluster/cluster_tls.sh tests/cluster/cluster_tls.py

# clients_failover: the RabbitMQ Java client (automatic recovery) and pika through kill -9s of
# the leader, connected through a follower (JavaFailover.java is compiled by the test).
TESTS += tests/cluster/clients_failover.sh
EXTRA_DIST += tests/cluster/clients_failover.sh tests/cluster/clients_failover.py \
	tests/cluster/pika_failover.py tests/cluster/JavaFailover.java

# slow_fsync.so: an LD_PRELOAD shim the rig puts under every node, so that a test can stall
# one node's fsyncs (tests/cluster/slow_fsync.c). Built for make check only.
check_DATA = tests/cluster/slow_fsync.so
tests/cluster/slow_fsync.so: $(srcdir)/tests/cluster/slow_fsync.c
	$(MKDIR_P) tests/cluster
	$(CC) -shared -fPIC -O1 -o $@ $(srcdir)/tests/cluster/slow_fsync.c -ldl
CLEANFILES += tests/cluster/slow_fsync.so
EXTRA_DIST += tests/cluster/slow_fsync.c
