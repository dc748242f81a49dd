#!/usr/bin/env bash
# bench/requeue.sh: how long warrend's loop is held when many unacked deliveries go back to
# their queue at once, on a warrend of its own (bench/perf_warrend.sh: data, configuration and
# log in a temporary directory, management and metrics off, any free port). For each count
# and each way of giving the deliveries back (channel.close, basic.nack multiple requeue,
# connection.close) bench/warren-requeue runs RUNS times; the medians of its figures are
# printed:
#
#   op_ms         the holder's wait from its operation to the reply (channel close-ok, the
#                 round trip after the nack, connection close-ok)
#   probe_max_ms  the longest round trip another connection made meanwhile: how long every
#                 other client of the broker waited at worst
#
# Usage: bench/requeue.sh [-b BUILDDIR] [-n RUNS] [-c "COUNT ..."] [-m "MODE ..."] [-P] [-t]
#   -b BUILDDIR  where src/warrend and bench/warren-requeue were built (build)
#   -n RUNS      runs of each measurement (5)
#   -c COUNTS    unacked deliveries to requeue ("80000 160000")
#   -m MODES     close, nack, connection ("close nack connection")
#   -P           a durable queue and persistent messages (each return is recorded in the store)
#   -t           another consumer without a prefetch limit takes the messages as they come back
#                (the figures then include that dispatch)
# Output: "requeue mode=M count=N persistent=0|1 taker=0|1 runs=R op_ms=... probe_max_ms=..." lines on
# stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
builddir="$top/build"
runs=5
counts="80000 160000"
modes="close nack connection"
persistent=
taker=

while [ $# -gt 0 ]; do
    case "$1" in
    -b) builddir=$(cd "$2" && pwd); shift 2 ;;
    -n) runs=$2; shift 2 ;;
    -c) counts=$2; shift 2 ;;
    -m) modes=$2; shift 2 ;;
    -P) persistent=-P; shift ;;
    -t) taker=-t; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "requeue: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

WARREND=${WARREND:-$builddir/src/warrend}
WARREN_REQUEUE=${WARREN_REQUEUE:-$builddir/bench/warren-requeue}
for t in "$WARREND" "$WARREN_REQUEUE"; do
    [ -x "$t" ] || { echo "requeue: no $t (make it first)" >&2; exit 1; }
done

# shellcheck source=bench/perf_warrend.sh
. "$here/perf_warrend.sh"
work=$(mktemp -d /tmp/warren-requeue.XXXXXX)
cleanup() {
    perf_warrend_stop || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() { # field LINE KEY
    awk -v k="$2" '{ for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<<"$1"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

perf_warrend_start "$work" 0 || exit 1
echo "warrend on port $warrend_port, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for count in $counts; do
    for mode in $modes; do
        ops="" probes=""
        for run in $(seq 1 "$runs"); do
            line=$("$WARREN_REQUEUE" -p "$warrend_port" -n "$count" -m "$mode" $persistent $taker)
            echo "  run $run: $line" >&2
            ops="$ops $(field "$line" op_ms)"
            probes="$probes $(field "$line" probe_max_ms)"
        done
        echo "requeue mode=$mode count=$count persistent=$([ -n "$persistent" ] && echo 1 || echo 0) taker=$([ -n "$taker" ] && echo 1 || echo 0) runs=$runs op_ms=$(median <<<"$ops") probe_max_ms=$(median <<<"$probes")"
    done
done
