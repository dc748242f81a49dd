# tests/cluster: a real cluster on loopback (3 etcd members, 3 warrend) under faults, driven
# by pika (rig.py starts everything on free ports; cluster_faults.py injects the faults and
# checks that no confirmed message is lost). The long run: scripts/cluster-faults.
TESTS += tests/cluster/cluster_faults.sh
EXTRA_DIST += tests/cluster/cluster_faults.sh tests/cluster/cluster_faults.py tests/cluster/rig.py
