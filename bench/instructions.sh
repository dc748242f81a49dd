#!/usr/bin/env bash
# bench/instructions.sh: instructions warrend executes per message, counted by callgrind.
# Unlike a rate, the count does not depend on what else the machine is doing, so it shows
# what a change to the broker buys even on a busy, shared machine.
#
# Usage: bench/instructions.sh [-b BUILDDIR] [-n MESSAGES] [-s BYTES] [-- warren-perf args]
#   Runs $BUILDDIR/src/warrend (build) under valgrind --tool=callgrind with a data directory
#   of its own, moves MESSAGES (100000) bodies of BYTES (16) through one queue to one no-ack
#   consumer with warren-perf, and stops the broker; then the same with twice the messages.
#   The difference, divided by MESSAGES, is what a message costs, start-up and shutdown
#   left out: 'instructions per_message=M messages=N bytes=B (...)'.
#   Extra warren-perf arguments (after --) change the scenario, e.g. -- --fanout 8 -x 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
builddir=$here/../build
count=100000
size=16
while [ $# -gt 0 ]; do
    case "$1" in
    -b) builddir=$2; shift 2 ;;
    -n) count=$2; shift 2 ;;
    -s) size=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-b BUILDDIR] [-n MESSAGES] [-s BYTES] [-- warren-perf args]" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d /tmp/warren-instr.XXXXXX)
pid=
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# count_run N: the instructions of a whole broker run that moved N messages.
count_run() {
    local n=$1 port=
    rm -rf "$work/data" "$work/cg.out"
    printf 'data_dir = %s/data\nmanagement.tcp.port = 0\nprometheus.tcp.port = 0\n' "$work" \
        >"$work/warren.conf"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
        "$builddir/src/warrend" -c "$work/warren.conf" --port 0 >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        port=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/log" | head -n 1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/log" >&2; exit 1; }
    "$builddir/bench/warren-perf" -p "$port" --quiet -x 1 -y 1 -a -s "$size" -C "$n" -D "$n" \
        -u instr "${perf_args[@]}" >"$work/perf.out" 2>"$work/perf.err"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    grep -q "received_msgs=$n " "$work/perf.out" ||
        { echo "instructions.sh: not every message arrived:" >&2; cat "$work/perf.out" >&2; exit 1; }
    sed -n 's/^summary: *//p' "$work/cg.out"
}

perf_args=("$@")
# Start-up and shutdown cost the same in both runs: the difference is the messages' cost.
one=$(count_run "$count")
two=$(count_run $((2 * count)))
awk -v a="$one" -v b="$two" -v n="$count" -v s="$size" 'BEGIN {
    printf "instructions per_message=%.0f messages=%d bytes=%d (runs of %d and %d: %d and %d)\n",
        (b - a) / n, n, s, n, 2 * n, a, b }'
