#!/usr/bin/env bash
# bench/durability.sh: the durability measurements of bench/RESULTS.md, on a warrend of its
# own (data directory, configuration and log in a temporary directory, management and
# metrics listeners off, any free port).
#
#   backlog   N x 16 B published with no consumer (one producer), then drained by one
#             consumer: publish and drain rates, warrend's peak RSS (VmHWM) in each phase,
#             and the size of each folder of the data directory when the backlog is full,
#             right after the drain and 5 s later (segments whose messages are all
#             acknowledged are deleted, the active one stays). Transient messages into a
#             durable queue drained with no-ack, or with --persistent persistent messages
#             drained with manual acks (multiple, every 100, prefetch 1000); --confirm W
#             publishes with confirms, W in flight.
#   restart   Q durable queues holding M persistent messages each (bench/warren-fill, with
#             confirms), then warrend stopped with SIGTERM and started again on the same
#             data directory, RUNS times, then the same with SIGKILL: the time from exec to
#             the "ready:" log line (the log's millisecond timestamp minus the clock read
#             just before exec), the recovery line, and the peak RSS after the start.
#
# Usage: bench/durability.sh [-b BUILDDIR] [-o DIR] [-n RUNS] [--backlog N] [--persistent]
#                            [--confirm W] [--queues Q] [--per-queue M] [--only backlog|restart]
#   -b BUILDDIR  where src/warrend, bench/warren-perf and bench/warren-fill were built (build)
#   -o DIR       keep the logs and the key=value result lines in DIR
#   -n RUNS      restarts of each kind (3); medians are printed
#   --backlog N  messages in the backlog (10000000)
#   --queues Q, --per-queue M   the restart's queues (10000) and messages per queue (100)
# Output: "key=value" lines on stdout, one per measurement; progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

builddir="$top/build"
outdir=
runs=3
backlog=10000000
persistent=0
confirm=0
queues=10000
per_queue=100
only=

while [ $# -gt 0 ]; do
    case "$1" in
    -b) builddir=$(cd "$2" && pwd); shift 2 ;;
    -o) outdir=$2; shift 2 ;;
    -n) runs=$2; shift 2 ;;
    --backlog) backlog=$2; shift 2 ;;
    --persistent) persistent=1; shift ;;
    --confirm) confirm=$2; shift 2 ;;
    --queues) queues=$2; shift 2 ;;
    --per-queue) per_queue=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "durability: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

WARREND=${WARREND:-$builddir/src/warrend}
WARREN_PERF=${WARREN_PERF:-$builddir/bench/warren-perf}
WARREN_FILL=${WARREN_FILL:-$builddir/bench/warren-fill}
for t in "$WARREND" "$WARREN_PERF" "$WARREN_FILL"; do
    [ -x "$t" ] || { echo "durability: no $t (make it first)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/warren-durability.XXXXXX)
[ -n "$outdir" ] || outdir=$work/out
mkdir -p "$outdir"

log() { printf '%s\n' "$*" >&2; }
result() { printf '%s\n' "$*" | tee -a "$outdir/results.txt"; }

pid=
port=
logfile=

cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    [ "$outdir" = "$work/out" ] || cp "$work"/*/warrend.log* "$outdir/" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
field() { # field LINE KEY
    awk -v k="$2" '{ for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<<"$1"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
# Size in KiB of each folder of the data directory, as "name=KiB ...", and the total.
du_data() {
    local d=$1 out="" total
    for f in "$d"/*/; do
        [ -d "$f" ] && out="$out $(basename "$f")_kib=$(du -sk "$f" | cut -f1)"
    done
    total=$(du -sk "$d" | cut -f1)
    echo "total_kib=$total$out"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# start DIR: starts warrend on DIR/data (kept if it exists) and waits, up to 10 minutes, for
# its ready line. Sets pid, port, logfile and start_ms (exec to ready, from the log's own
# timestamp).
start() {
    local dir=$1 n=1 t0 ready stamp
    mkdir -p "$dir/data"
    printf 'data_dir = %s\nmanagement.tcp.port = 0\nprometheus.tcp.port = 0\n' "$dir/data" >"$dir/warren.conf"
    logfile=$dir/warrend.log
    if [ -f "$logfile" ]; then
        while [ -f "$logfile.$n" ]; do n=$((n + 1)); done
        mv "$logfile" "$logfile.$n"
    fi
    t0=$(date +%s.%N)
    "$WARREND" -c "$dir/warren.conf" --port 0 >"$logfile" 2>&1 &
    pid=$!
    for _ in $(seq 1 30000); do
        ready=$(grep -m 1 'ready: listening on' "$logfile" || true)
        [ -n "$ready" ] && break
        kill -0 "$pid" 2>/dev/null || { log "warrend exited before it was ready:"; cat "$logfile" >&2; exit 1; }
        sleep 0.02
    done
    [ -n "$ready" ] || { log "warrend not ready after 10 minutes"; exit 1; }
    port=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' <<<"$ready")
    stamp=$(cut -d' ' -f1-2 <<<"$ready")
    start_ms=$(awk -v a="$(date -d "$stamp" +%s.%N)" -v b="$t0" 'BEGIN {printf "%.0f", (a - b) * 1000}')
}

# stop SIGNAL: sends it and waits for the exit; sets stop_ms.
stop() {
    local t0
    t0=$(date +%s%N)
    kill -"$1" "$pid"
    wait "$pid" 2>/dev/null || true
    stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    pid=
}

perf() { # perf ARGS...: runs warren-perf against the broker, stdout is its result line
    "$WARREN_PERF" -p "$port" --quiet --broker-pid "$pid" "$@" 2>>"$outdir/warren-perf.stderr"
}

run_backlog() {
    local dir=$work/backlog mode=transient pub_args=() drain_args=(-a) out rss_pub rss_drain
    if [ $persistent -eq 1 ]; then
        mode=persistent
        pub_args=(--persistent)
        drain_args=(--persistent -q 1000 --ack-every 100)
    fi
    if [ "$confirm" -gt 0 ]; then
        mode=$mode+confirms
        pub_args+=(-c "$confirm")
    fi
    start "$dir"
    log "backlog: $backlog x 16 B, $mode, load $(load1)"
    echo 5 >"/proc/$pid/clear_refs"
    out=$(perf -x 1 -y 0 -s 16 -C "$backlog" --keep -u backlog "${pub_args[@]}" --scenario backlog-publish)
    rss_pub=$(( $(status_kb "$pid" VmHWM) / 1024 ))
    result "backlog mode=$mode phase=publish msgs=$(field "$out" sent_msgs) msgs_per_s=$(field "$out" sent_msgs_per_s) duration_s=$(field "$out" duration_s) broker_cpu_s=$(field "$out" broker_cpu_s) tool_cpu_s=$(field "$out" tool_cpu_s) machine_cpu_s=$(field "$out" machine_cpu_s) peak_rss_mib=$rss_pub rss_mib=$(( $(status_kb "$pid" VmRSS) / 1024 )) load1=$(load1)"
    result "backlog mode=$mode phase=full $(du_data "$dir/data")"
    echo 5 >"/proc/$pid/clear_refs"
    out=$(perf -x 0 -y 1 -D "$backlog" -u backlog "${drain_args[@]}" --scenario backlog-drain)
    rss_drain=$(( $(status_kb "$pid" VmHWM) / 1024 ))
    result "backlog mode=$mode phase=drain msgs=$(field "$out" received_msgs) msgs_per_s=$(field "$out" received_msgs_per_s) duration_s=$(field "$out" duration_s) broker_cpu_s=$(field "$out" broker_cpu_s) tool_cpu_s=$(field "$out" tool_cpu_s) machine_cpu_s=$(field "$out" machine_cpu_s) peak_rss_mib=$rss_drain load1=$(load1)"
    result "backlog mode=$mode phase=drained $(du_data "$dir/data")"
    sleep 5
    result "backlog mode=$mode phase=drained+5s $(du_data "$dir/data") rss_mib=$(( $(status_kb "$pid" VmRSS) / 1024 ))"
    stop TERM
    rm -rf "$dir/data"
}

run_restart() {
    local dir=$work/restart out sig i term=() kill=()
    start "$dir"
    log "restart: $queues durable queues x $per_queue persistent messages, load $(load1)"
    out=$("$WARREN_FILL" -p "$port" -n "$queues" -m "$per_queue" -u fill)
    result "restart phase=fill $out peak_rss_mib=$(( $(status_kb "$pid" VmHWM) / 1024 )) load1=$(load1)"
    result "restart phase=filled $(du_data "$dir/data")"
    for sig in TERM KILL; do
        for i in $(seq 1 "$runs"); do
            stop $sig
            start "$dir"
            sleep 0.5 # the peak RSS of the recovery, not of a sample taken mid-way
            result "restart signal=SIG$sig run=$i stop_ms=$stop_ms start_ms=$start_ms peak_rss_mib=$(( $(status_kb "$pid" VmHWM) / 1024 )) load1=$(load1) recovered=\"$(grep -m 1 -o 'data directory .*recovered' "$logfile" | sed 's/^data directory [^:]*: //')\""
            if [ $sig = TERM ]; then term+=("$start_ms"); else kill+=("$start_ms"); fi
        done
    done
    result "restart summary median_start_ms_after_sigterm=$(echo "${term[*]}" | median) median_start_ms_after_sigkill=$(echo "${kill[*]}" | median)"
    stop TERM
}

log "durability: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ "$only" = restart ] || run_backlog
[ "$only" = backlog ] || run_restart
log "durability: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
