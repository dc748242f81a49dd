#!/bin/sh
# The management API's health checks during a resource alarm (mgmt_alarm.py): a warrend whose
# disk_free_limit is above the free space of its data directory's filesystem, so the disk
# alarm is on from the start. warrend only: the limit is warrend's configuration.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python
[ -z "${AMQP_HOST:-}" ] ||
    interop_skip "it configures its own warrend's disk limit, and AMQP_HOST names another broker"
# mgmt_lib.sh puts the data directory in $interop_tmp; half as much again as is free there,
# and a gigabyte more, keeps the alarm on whatever else writes meanwhile.
free_kb=$(df -Pk "$interop_tmp" | awk 'NR == 2 { print $4 }')
case "$free_kb" in
'' | *[!0-9]*) interop_fail "cannot read the free space of $interop_tmp from df" ;;
esac
WARREN_EXTRA_CONFIG="disk_free_limit.absolute = $((free_kb + free_kb / 2 + 1048576))KB"
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_alarm.py"
