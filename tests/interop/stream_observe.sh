#!/bin/sh
# A stream as the operator sees it (stream_observe.py): the management API, warrenctl and
# the Prometheus endpoints show its offsets, size on disk and each consumer's offset, with
# the numbers a known publish and known consumers give. warrend only (Warren's own fields).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
[ -z "${AMQP_HOST:-}" ] || interop_skip "needs a warrend of its own (Warren's stream fields)"
: "${WARRENCTL:=${top_builddir:-.}/src/warrenctl}"
[ -x "$WARRENCTL" ] || interop_skip "no warrenctl at $WARRENCTL (build it, or set WARRENCTL)"
export WARRENCTL
mgmt_start_broker
STREAM_DATA_DIR=$interop_tmp/data
export STREAM_DATA_DIR
interop_run /usr/bin/python3 "$interop_dir/stream_observe.py"
