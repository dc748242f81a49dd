#!/bin/sh
# warrenctl, the admin CLI (warrenctl_cli.py runs every command), against a warrend started
# with its management API on a free port. WARRENCTL names the program (default: the one in
# the build tree). Against another broker: AMQP_HOST, AMQP_PORT and MGMT_URL.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
: "${WARRENCTL:=${top_builddir:-.}/src/warrenctl}"
[ -x "$WARRENCTL" ] || interop_skip "no warrenctl at $WARRENCTL (build it, or set WARRENCTL)"
export WARRENCTL
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/warrenctl_cli.py"
