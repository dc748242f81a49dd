#!/bin/sh
# PROXY protocol v1 headers on the leader's side (proxy_protocol.py): a warrend that accepts
# them from cluster.proxy_peers = 127.0.0.2 only, with its management API on a free port, so
# that the peer a header names can be read back where operators see it. warrend only: the
# key is Warren's (RabbitMQ's proxy_protocol = true takes headers from anyone).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
[ -z "${AMQP_HOST:-}" ] || interop_skip "tests warrend's cluster.proxy_peers: run without AMQP_HOST"
interop_need_python
: "${WARRENCTL:=${top_builddir:-.}/src/warrenctl}"
export WARRENCTL
# The headers name 10.1.2.3, not a loopback address: guest must be let in from there.
WARREN_EXTRA_CONFIG='cluster.proxy_peers = 127.0.0.2
loopback_users = none'
mgmt_start_broker
WARREND_LOG=$warrend_log
export WARREND_LOG
interop_run /usr/bin/python3 "$interop_dir/proxy_protocol.py"
