#!/bin/sh
# Cluster mode against one node (CLUSTERING.md §5): persistent + confirmed and transient
# throughput on a 3-node cluster's leader as ratios to a single warrend, confirm latency p99
# on both, and a follower's catch-up after 60 s away (time back into the ISR, the leader's
# longest loop turn meanwhile). Starts its own etcd members and warrend nodes on loopback
# (127.0.0.1, 127.0.0.11-13, free ports, data in a temporary directory under $TMPDIR) and
# stops them all on exit, Ctrl-C included. The work is bench/cluster.py's; see bench/README.md.
#
#   bench/cluster.sh [-n RUNS] [-t SECONDS] [-b BUILDDIR] [-- cluster.py options]
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
runs=3
seconds=10
while [ $# -gt 0 ]; do
    case $1 in
    -n) runs=$2; shift 2 ;;
    -t) seconds=$2; shift 2 ;;
    -b) build=$(cd "$2" && pwd); shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [-n RUNS] [-t SECONDS] [-b BUILDDIR] [-- cluster.py options]" >&2; exit 2 ;;
    esac
done
command -v etcd >/dev/null 2>&1 || { echo "etcd is not installed (scripts/deps installs etcd-server)" >&2; exit 1; }
/usr/bin/python3 -c "import pika" 2>/dev/null || { echo "/usr/bin/python3 cannot import pika" >&2; exit 1; }
if [ ! -x "$build/src/warrend" ] || [ ! -x "$build/bench/warren-perf" ] \
    || [ ! -x "$build/bench/stall-probe" ]; then
    (cd "$build" && make src/warrend bench/warren-perf bench/stall-probe) >&2
fi
echo "filesystem of the data directories: $(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 " on " $1 }')" >&2
exec /usr/bin/python3 "$top/bench/cluster.py" --warrend "$build/src/warrend" \
    --perf "$build/bench/warren-perf" --stall-probe "$build/bench/stall-probe" \
    -n "$runs" -t "$seconds" "$@"
