#!/bin/sh
# Unclean failover (cluster.unclean_failover, warrend --force-leader) on a 3-node loopback
# cluster: off by default, loud and lossy when allowed (tests/cluster/cluster_unclean.py).
dir=${top_srcdir:+$top_srcdir/tests/cluster}
dir=${dir:-$(cd "$(dirname "$0")" && pwd)}
command -v etcd >/dev/null 2>&1 || { echo "FAIL: etcd is not installed (scripts/deps installs etcd-server)"; exit 1; }
[ -x "${WARREND:-}" ] || { echo "ERROR: WARREND is not set to warrend"; exit 99; }
exec timeout 180 /usr/bin/python3 "$dir/cluster_unclean.py"
