#!/bin/sh
# RabbitMQ's extensions (confirms, returns, direct reply-to) and dead-lettering through pika,
# Debian's python3-pika (pika_ext.py).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python pika
interop_start_broker
interop_run /usr/bin/python3 "$interop_dir/pika_ext.py"
