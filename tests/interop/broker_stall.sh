#!/bin/sh
# A broker stalled (broker_stall.py: SIGSTOP, then SIGCONT) for longer than two heartbeat
# intervals and than handshake_timeout (1 s here): clients whose bytes wait unread in their
# sockets must not be dropped for it.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python socket threading
[ -z "${AMQP_HOST:-}" ] || interop_skip "needs a warrend of its own (it is stopped and continued)"
WARREN_EXTRA_CONFIG="handshake_timeout = 1000
"
export WARREN_EXTRA_CONFIG
interop_start_broker
WARREND_PID=$warrend_pid WARREND_LOG=$warrend_log \
    interop_run /usr/bin/python3 "$interop_dir/broker_stall.py"
