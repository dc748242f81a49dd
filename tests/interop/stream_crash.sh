#!/bin/sh
# Streams survive SIGKILL (stream_crash.py): a publisher with confirms and two consumers run
# while warrend is killed; after a restart on the same data directory every confirmed
# message is at its offset and what the consumers saw before is unchanged.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python pika
[ -z "${AMQP_HOST:-}" ] || interop_skip "needs a warrend it can kill"
interop_start_broker
work=$interop_tmp/crash
mkdir -p "$work"
/usr/bin/python3 "$interop_dir/stream_crash.py" publish "$work" >"$work/publish.log" 2>&1 &
client=$!
sleep 3
kill -KILL "$warrend_pid"
wait "$warrend_pid" 2>/dev/null
wait "$client" 2>/dev/null
mv "$warrend_log" "$warrend_log.killed"
unset AMQP_HOST AMQP_PORT
interop_start_broker
interop_run /usr/bin/python3 "$interop_dir/stream_crash.py" verify "$work"
