#!/bin/sh
# warren-perf against a real warrend: the consumer side (deliveries parsed from large reads,
# acks, latency stamps) and the count mode, which the sink cannot exercise. Starts $WARREND on
# a free port and stops it at the end; skipped when there is no broker binary.
set -u
perf=${top_builddir:-.}/bench/warren-perf
[ -x "$perf" ] || { echo "no $perf"; exit 99; }
if [ -z "${WARREND:-}" ] || [ ! -x "$WARREND" ]; then
    echo "no warrend: skipped"
    exit 77
fi

# shellcheck source=bench/perf_warrend.sh
. "${top_srcdir:-$(dirname "$0")/..}/bench/perf_warrend.sh"
dir=$(mktemp -d) || exit 99
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    perf_warrend_stop
    rm -rf "$dir"
}
trap cleanup EXIT
perf_warrend_start "$dir" 0 || { echo "FAIL: warrend did not start"; exit 1; }
port=$warrend_port
status=0

check() {
    label=$1 pattern=$2
    shift 2
    if ! out=$("$perf" -p "$port" --quiet --scenario "$label" "$@"); then
        echo "FAIL: warren-perf $* exited with $?"
        status=1
        return
    fi
    echo "$out"
    echo "$out" | grep -Eq "$pattern" || {
        echo "FAIL: $label: result does not match $pattern"
        status=1
    }
}

# Time mode, no-ack: messages flow and every received body carried a stamp.
check timed ' received_msgs_per_s=[1-9][0-9]* p50_us=[0-9.]+ p99_us=[0-9.]+ ' -z 1 -a
# Count mode with manual acks in groups and a prefetch: exactly what was sent arrives.
check counted ' sent_msgs=5000 received_msgs=5000 ' -C 5000 -q 100 --ack-every 10 -s 100
# Bodies of several frames (frame_max is at most 128 KiB on Warren and RabbitMQ).
check large ' sent_msgs=20 received_msgs=20 ' -C 20 -s 300000 -a
# Fan-out: each of the 3 queues gets every message.
check fanout ' sent_msgs=1000 received_msgs=3000 ' -C 1000 --fanout 3 -a

# The tool closes what it opens politely: the broker must have nothing to complain about,
# and must stop cleanly.
rc=0
perf_warrend_stop || rc=$?
if [ $rc -ne 0 ] || grep -q '\[error\]' "$dir/warrend.log"; then
    echo "FAIL: warrend exited with $rc or logged an error:"
    cat "$dir/warrend.log"
    status=1
fi
exit $status
