#!/bin/sh
# The management HTTP API and the Prometheus endpoint (mgmt_api.py), through Python's HTTP
# client and pika, against a warrend started with both listeners on free ports.
# Against another broker: AMQP_HOST, AMQP_PORT, MGMT_URL and METRICS_URL (a RabbitMQ with
# rabbitmq_management and rabbitmq_prometheus: the checks Warren shares with it run).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_api.py"
