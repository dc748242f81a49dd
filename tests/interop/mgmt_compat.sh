#!/bin/sh
# Management API requests as RabbitMQ's clients send them (mgmt_compat.py), through plain
# HTTP (and pika, to see their effect), against a warrend started with its management API on a free port.
# Against another broker: AMQP_HOST, AMQP_PORT and MGMT_URL (a RabbitMQ with its management
# plugin: the checks Warren shares with it run).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_compat.py"
