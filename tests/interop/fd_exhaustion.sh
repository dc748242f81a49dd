#!/bin/sh
# A broker out of file descriptors (fd_exhaustion.py): it must not spin or flood its log,
# must refuse the connections it cannot take, count them in its metrics, and accept again
# once descriptors are free. warrend runs under `ulimit -n 64` with its metrics and management
# listeners on.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python socket
[ -z "${AMQP_HOST:-}" ] || interop_skip "needs a warrend of its own (its pid, log and fd limit)"
free_port()
{
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
metrics_port=$(free_port)
mgmt_port=$(free_port)
WARREND_NOFILE=64
WARREN_EXTRA_CONFIG="prometheus.tcp.port = $metrics_port
prometheus.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt_port
management.tcp.ip = 127.0.0.1
"
export WARREND_NOFILE WARREN_EXTRA_CONFIG
interop_start_broker
WARREND_PID=$warrend_pid WARREND_LOG=$warrend_log METRICS_URL=http://127.0.0.1:$metrics_port \
    MGMT_URL=http://127.0.0.1:$mgmt_port \
    interop_run /usr/bin/python3 "$interop_dir/fd_exhaustion.py"
