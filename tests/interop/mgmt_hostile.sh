#!/bin/sh
# Hostile and slow HTTP clients (mgmt_hostile.py): anonymous uploads, bodies beyond the
# budget, trickled request heads, against a warrend whose request_timeout is 2 s on both
# HTTP listeners. warrend only: the limits and the timeouts are warrend's.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python
[ -z "${AMQP_HOST:-}" ] ||
    interop_skip "it configures its own warrend's timeouts, and AMQP_HOST names another broker"
REQUEST_TIMEOUT_MS=2000
export REQUEST_TIMEOUT_MS
WARREN_EXTRA_CONFIG="management.tcp.request_timeout = $REQUEST_TIMEOUT_MS
prometheus.tcp.request_timeout = $REQUEST_TIMEOUT_MS"
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_hostile.py"
