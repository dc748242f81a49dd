# Shared by the examples' tests (examples/check_*.sh): each starts a warrend of its own (with
# the management API and metrics on free ports, through tests/interop/lib.sh and mgmt_lib.sh,
# whose exit trap stops it and fails the test on a bad stop or an [error] line), runs one
# example, and asserts on the `RESULT key=value ...` line the example printed.
#
# With AMQP_HOST and AMQP_PORT set (and MGMT_URL for example 11) the examples run against that
# broker instead; the tests that must control the broker (3 and 9) then skip.

# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/tests/interop/lib.sh"
# shellcheck source=tests/interop/mgmt_lib.sh
. "$interop_dir/mgmt_lib.sh"

examples_dir=${top_srcdir:+$top_srcdir/examples}
examples_dir=${examples_dir:-$(cd "$(dirname "$0")" && pwd)}
example_out=$interop_tmp/example.out
# The examples import examples/common.py: no __pycache__ in the source tree.
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE

# Starts the broker the example talks to and exports AMQP_HOST, AMQP_PORT, MGMT_URL,
# METRICS_URL and WARREND_PID. With AMQP_HOST and AMQP_PORT set it uses that broker instead
# (and, for example 11, the management API named by MGMT_URL).
ex_start_broker()
{
    interop_need_python pika
    if [ -n "${AMQP_HOST:-}" ] && [ -n "${AMQP_PORT:-}" ] && [ -z "${MGMT_URL:-}" ]; then
        interop_start_broker
    else
        mgmt_start_broker
    fi
    WARREND_PID=$warrend_pid
    export WARREND_PID
}

# Runs an example; its output goes to the test log and to $example_out for ex_expect.
ex_run()
{
    echo "--- $*"
    timeout -k 5 "$INTEROP_TIMEOUT" "$@" >"$example_out" 2>&1
    status=$?
    cat "$example_out"
    [ "$status" -eq 124 ] && interop_fail "$1 did not finish within $INTEROP_TIMEOUT s"
    [ "$status" -eq 0 ] || interop_fail "$* exited with status $status"
    grep -q '^RESULT ' "$example_out" || interop_fail "$1 printed no RESULT line"
}

# ex_expect 'AWK-EXPRESSION': true of the fields of the example's RESULT line, each an awk
# variable (numbers as numbers), e.g. ex_expect 'handled_once == jobs && duplicates == 0'.
ex_expect()
{
    assignments=$(sed -n 's/^RESULT //p' "$example_out" | tail -n 1 | tr ' ' '\n' |
        sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\([-+]\{0,1\}[0-9][0-9.]*\)$/\1 = \2;/p
                s/^\([A-Za-z_][A-Za-z0-9_]*\)=\([A-Za-z0-9_.:\/-]*\)$/\1 = "\2";/p')
    if awk "BEGIN { $assignments exit !($1) }" </dev/null; then
        echo "ok: $1"
    else
        interop_fail "expected $1 of: $(grep '^RESULT ' "$example_out" | tail -n 1)"
    fi
}

# ex_restart_broker SIGNAL: stops the warrend started by ex_start_broker with SIGNAL (TERM or
# KILL) and starts it again on the same port, configuration and data directory. The first
# instance's log must hold no sanitizer report, and after SIGTERM it must have exited 0 with
# no [error] line; the new instance's log is the one the exit trap checks.
ex_restart_broker()
{
    [ -n "$warrend_pid" ] || interop_fail "ex_restart_broker: no broker of ours to restart"
    kill -"$1" "$warrend_pid"
    wait "$warrend_pid" 2>/dev/null # dash reports "Killed" for SIGKILL
    status=$?
    echo "warrend (pid $warrend_pid) stopped by SIG$1: exit status $status"
    if grep -n -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$warrend_log"; then
        interop_fail "sanitizer report in the log of the stopped warrend"
    fi
    if [ "$1" = TERM ]; then
        [ "$status" -eq 0 ] || interop_fail "warrend exited with status $status after SIGTERM"
        ! grep -n '\[error\]' "$warrend_log" || interop_fail "warrend logged an [error] line"
    fi
    restarts=$((${restarts:-0} + 1))
    warrend_log=$interop_tmp/warrend.$restarts.log
    : >"$warrend_log"
    "$WARREND" -c "$interop_tmp/warren.conf" --port "$AMQP_PORT" --data-dir "$interop_tmp/data" \
        >"$warrend_log" 2>&1 &
    warrend_pid=$!
    WARREND_PID=$warrend_pid
    tries=0
    until grep -q 'ready: listening on' "$warrend_log"; do
        kill -0 "$warrend_pid" 2>/dev/null || {
            cat "$warrend_log"
            warrend_pid=
            interop_fail "warrend did not start again"
        }
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || interop_fail "warrend did not log 'ready: listening on' within 10 s"
        sleep 0.1
    done
    echo "started warrend again (pid $warrend_pid) on port $AMQP_PORT"
}
