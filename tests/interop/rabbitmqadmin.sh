#!/bin/sh
# rabbitmqadmin, RabbitMQ 3.10's command-line client of the management API (a Python 3
# script), against a warrend with its management API: rabbitmqadmin.py runs every command
# that has a Warren counterpart and checks what it prints and what it did.
# The script: $RABBITMQADMIN if set, else /usr/bin/rabbitmqadmin (Debian's rabbitmq-server),
# else the copy tests/interop/setup.sh takes from that package; without one the test skips.
# Against another broker: AMQP_HOST, AMQP_PORT and MGMT_URL (a RabbitMQ with its management
# plugin: the checks Warren shares with it run).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
if [ -n "${RABBITMQADMIN:-}" ]; then
    :
elif [ -f /usr/bin/rabbitmqadmin ]; then
    RABBITMQADMIN=/usr/bin/rabbitmqadmin
elif [ -f "$interop_dir/.cache/rabbitmqadmin" ]; then
    RABBITMQADMIN=$interop_dir/.cache/rabbitmqadmin
else
    interop_skip "no rabbitmqadmin: neither /usr/bin/rabbitmqadmin (Debian's rabbitmq-server)" \
        "nor tests/interop/.cache/rabbitmqadmin (tests/interop/setup.sh takes it from the" \
        "package when online: run scripts/deps)"
fi
export RABBITMQADMIN
# rabbitmqadmin reads ~/.rabbitmqadmin.conf: none here.
HOME=$interop_tmp
export HOME
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/rabbitmqadmin.py"
