#!/bin/sh
# warren-perf must keep working: one second of publishing to its own discarding server (--sink)
# must end with a result line whose rates are not zero, with and without publisher confirms.
set -u
perf=${top_builddir:-.}/bench/warren-perf
[ -x "$perf" ] || { echo "no $perf"; exit 99; }
status=0

run() {
    label=$1
    shift
    if ! out=$("$perf" --sink --quiet --scenario "$label" "$@"); then
        echo "FAIL: warren-perf --sink $* exited with $?"
        status=1
        return
    fi
    echo "$out"
    echo "$out" | grep -Eq "^result scenario=$label .* sent_msgs_per_s=[1-9][0-9]* received_msgs_per_s=[1-9][0-9]* " || {
        echo "FAIL: $label: no result line with non-zero rates"
        status=1
    }
}

run plain -z 1
run confirms -z 1 -c 100
# The sink acks every publish: with confirms, nothing may stay unconfirmed at the end but
# what was in flight, and every confirmed message must have been received by the sink.
echo "$out" | grep -Eq ' confirmed_msgs=[1-9][0-9]* nacked_msgs=0 ' || {
    echo "FAIL: confirms: no message confirmed"
    status=1
}
run big -z 1 -s 300000
exit $status
