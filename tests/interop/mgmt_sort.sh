#!/bin/sh
# Sorted lists of the management API and the confirm rate (mgmt_sort.py), against a warrend
# started as mgmt_api.sh does. Against another broker (RabbitMQ 3.10.8 passes too):
# AMQP_HOST, AMQP_PORT, MGMT_URL.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_sort.py"
