#!/bin/sh
# RabbitMQ parity checks that make users through the management API (parity.py), with pika and
# Python's HTTP client, against a warrend started with its management listener on a free port.
# Against RabbitMQ: AMQP_HOST, AMQP_PORT and MGMT_URL.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
: "${WARRENCTL:=${top_builddir:-.}/src/warrenctl}"
export WARRENCTL
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/parity.py"
