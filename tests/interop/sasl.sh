#!/bin/sh
# SASL mechanisms as configured with auth_mechanisms.N, and RABBIT-CR-DEMO (sasl.py, raw
# frames). Against RabbitMQ: AMQP_HOST, AMQP_PORT and SASL_MECHANISMS (the node's list).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python
WARREN_EXTRA_CONFIG='auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = RABBIT-CR-DEMO
'
interop_start_broker
interop_run /usr/bin/python3 "$interop_dir/sasl.py"
