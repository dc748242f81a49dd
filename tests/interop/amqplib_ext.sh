#!/bin/sh
# RabbitMQ's extensions (confirms, returns, direct reply-to) and dead-lettering through
# amqplib, the Node.js client (amqplib_ext.js).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_commands node
[ -f "$interop_dir/node_modules/amqplib/package.json" ] ||
    interop_skip "amqplib is not installed: run tests/interop/setup.sh (npm ci)"
interop_start_broker
interop_run node "$interop_dir/amqplib_ext.js"
