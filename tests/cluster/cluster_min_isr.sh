#!/bin/sh
# cluster.min_insync_replicas = 2 on a 3-node loopback cluster: confirms wait, then are
# nacked after cluster.confirm_timeout while the leader is alone (tests/cluster/cluster_min_isr.py).
dir=${top_srcdir:+$top_srcdir/tests/cluster}
dir=${dir:-$(cd "$(dirname "$0")" && pwd)}
command -v etcd >/dev/null 2>&1 || { echo "FAIL: etcd is not installed (scripts/deps installs etcd-server)"; exit 1; }
[ -x "${WARREND:-}" ] || { echo "ERROR: WARREND is not set to warrend"; exit 99; }
exec timeout 180 /usr/bin/python3 "$dir/cluster_min_isr.py"
