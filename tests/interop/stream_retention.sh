#!/bin/sh
# Retention of stream queues (stream_retention.py): by size, by age with no more publishes
# (the broker's timer), by policy on existing streams, the segment being written kept, and
# the offsets of what is kept unchanged across a restart of warrend on the same data.
# Against RabbitMQ 3.10.8 (only the checks before the restart; it has no age timer):
# STREAM_NO_AGE_TIMER=1 AMQP_HOST=... AMQP_PORT=... MGMT_URL=http://host:15672 \
#     tests/interop/stream_retention.sh
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
# shellcheck source=tests/interop/mgmt_lib.sh
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
mgmt_start_broker
work=$interop_tmp/retention
mkdir -p "$work"
[ -z "$warrend_pid" ] || export DATA_DIR="$interop_tmp/data"
interop_run /usr/bin/python3 "$interop_dir/stream_retention.py" run "$work"
if [ -z "$warrend_pid" ]; then
    echo "not restarting a broker this test did not start: the checks after a restart are skipped"
    /usr/bin/python3 "$interop_dir/stream_retention.py" cleanup "$work"
    exit 0
fi

# The same broker again: same configuration (its ports), same data directory.
interop_stop_broker || interop_fail "warrend did not stop cleanly before the restart"
mv "$warrend_log" "$warrend_log.1"
: >"$warrend_log"
"$WARREND" -c "$interop_tmp/warren.conf" --port "$AMQP_PORT" --data-dir "$interop_tmp/data" \
    >"$warrend_log" 2>&1 &
warrend_pid=$!
tries=0
until grep -q 'ready: listening on' "$warrend_log"; do
    kill -0 "$warrend_pid" 2>/dev/null || { warrend_pid=; interop_fail "warrend did not restart"; }
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || interop_fail "warrend did not log 'ready: listening on' within 10 s"
    sleep 0.1
done
interop_run /usr/bin/python3 "$interop_dir/stream_retention.py" verify "$work"
