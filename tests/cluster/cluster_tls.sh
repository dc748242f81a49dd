#!/bin/sh
# The replication port with TLS (cluster.tls.*) and a catch-up rate (cluster.sync_rate_limit)
# on a 3-node loopback cluster (tests/cluster/cluster_tls.py).
dir=${top_srcdir:+$top_srcdir/tests/cluster}
dir=${dir:-$(cd "$(dirname "$0")" && pwd)}
command -v etcd >/dev/null 2>&1 || { echo "FAIL: etcd is not installed (scripts/deps installs etcd-server)"; exit 1; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: no openssl command"; exit 77; }
/usr/bin/python3 -c "import pika" 2>/dev/null || { echo "FAIL: /usr/bin/python3 cannot import pika"; exit 1; }
[ -x "${WARREND:-}" ] || { echo "ERROR: WARREND is not set to warrend"; exit 99; }
exec timeout 240 /usr/bin/python3 "$dir/cluster_tls.py"
