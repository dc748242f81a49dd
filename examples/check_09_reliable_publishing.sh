#!/bin/sh
# Example 9, reliable publishing: the example asks for a broker restart halfway (ACTION line);
# this test does it, once with SIGTERM and once with SIGKILL, while the example keeps
# publishing. Every confirmed persistent message must be read back after the restart.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
[ -z "${AMQP_HOST:-}" ] ||
    interop_skip "this test restarts the broker it starts; AMQP_HOST names another"
ex_start_broker
RESTART_WAIT=30
export RESTART_WAIT
for sig in TERM KILL; do
    echo "--- 09_reliable_publishing.py, restart by SIG$sig"
    # Emptied here, not by the redirection below: that happens in the child, maybe after the
    # loop's first grep has seen the previous round's ACTION line (the loop then ends at once
    # and the second grep, on the emptied file, restarts nothing: a flaky failure).
    : >"$example_out"
    timeout -k 5 "$INTEROP_TIMEOUT" /usr/bin/python3 "$examples_dir/09_reliable_publishing.py" \
        >"$example_out" 2>&1 &
    example_pid=$!
    tries=0
    until grep -q '^ACTION restart' "$example_out"; do
        kill -0 "$example_pid" 2>/dev/null || break
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || break
        sleep 0.1
    done
    grep -q '^ACTION restart' "$example_out" && ex_restart_broker "$sig"
    wait "$example_pid"
    status=$?
    cat "$example_out"
    [ "$status" -eq 0 ] || interop_fail "09_reliable_publishing.py exited with status $status"
    ex_expect 'connections_lost == 1 && confirmed == messages'
    ex_expect 'missing == 0 && received_unique == messages'
    ex_expect 'in_queue == received_unique + duplicates'
    ex_expect 'duplicates <= republished'
done
