#!/bin/sh
# Hostile HTTP clients (mgmt_hostile.py): anonymous uploads and bodies beyond the budget.
# warrend only: the limits are warrend's.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python
[ -z "${AMQP_HOST:-}" ] ||
    interop_skip "it watches its own warrend, and AMQP_HOST names another broker"
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_hostile.py"
