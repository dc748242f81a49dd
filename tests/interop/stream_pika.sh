#!/bin/sh
# Stream queues through pika (stream_pika.py): declare checks, refusals, offsets, tail
# consumers, filtering. Against RabbitMQ 3.10.8: STREAM_NO_FILTER=1 AMQP_HOST=... AMQP_PORT=...
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python pika
interop_start_broker
interop_run /usr/bin/python3 "$interop_dir/stream_pika.py"
