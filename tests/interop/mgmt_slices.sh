#!/bin/sh
# Large management work done in slices (mgmt_slices.py): AMQP round trips stay short while
# the API lists or imports thousands of queues, lists stay whole, and objects deleted while
# a list is written are left out. Against another broker: AMQP_HOST, AMQP_PORT, MGMT_URL.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_slices.py"
