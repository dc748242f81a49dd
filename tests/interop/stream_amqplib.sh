#!/bin/sh
# Stream queues through amqplib, the Node.js client (stream_amqplib.js): confirms, offsets,
# the x-stream-offset header, acks as credit, tail consumers, refusals. Against RabbitMQ
# 3.10.8: AMQP_HOST=... AMQP_PORT=... tests/interop/stream_amqplib.sh
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_commands node
[ -f "$interop_dir/node_modules/amqplib/package.json" ] ||
    interop_skip "amqplib is not installed: run tests/interop/setup.sh (npm ci)"
interop_start_broker
# Checks of what only Warren promises (the prefetch bound within a chunk).
[ -z "$warrend_pid" ] || export WARREN=1
interop_run node "$interop_dir/stream_amqplib.js"
