#!/bin/sh
# The cluster's short fault run for make check: 3 etcd members and 3 warrend nodes on
# loopback (127.0.0.11-13), a follower relaying a client, 3 kill -9 cycles of the leader and 1
# SIGSTOP cycle past its lease, each under confirmed publishing and acking consumption; fails
# if a confirmed message is lost (tests/cluster/cluster_faults.py). The long run with figures:
# scripts/cluster-faults.
dir=${top_srcdir:+$top_srcdir/tests/cluster}
dir=${dir:-$(cd "$(dirname "$0")" && pwd)}
command -v etcd >/dev/null 2>&1 || { echo "FAIL: etcd is not installed (scripts/deps installs etcd-server)"; exit 1; }
/usr/bin/python3 -c "import pika" 2>/dev/null || { echo "FAIL: /usr/bin/python3 cannot import pika"; exit 1; }
[ -x "${WARREND:-}" ] || { echo "ERROR: WARREND is not set to warrend"; exit 99; }
SLOW_FSYNC_SO="$PWD/tests/cluster/slow_fsync.so"
[ -f "$SLOW_FSYNC_SO" ] || { echo "ERROR: $SLOW_FSYNC_SO is not built (make check builds it)"; exit 99; }
export SLOW_FSYNC_SO
exec timeout 420 /usr/bin/python3 "$dir/cluster_faults.py" --kill-cycles 3 --stop-cycles 1
