# Shared set-up of the interop tests, sourced by every tests/interop/*.sh wrapper.
#
# With AMQP_HOST and AMQP_PORT set, the tests talk to that broker (a RabbitMQ to check the
# tests themselves, or a warrend run by hand under a debugger). Otherwise
# interop_start_broker starts $WARREND on a free port, and when the test ends the broker must
# stop within 5 s of SIGTERM with status 0 and nothing alarming in its log: a test fails
# if the broker misbehaved even when the client saw nothing wrong.
#
# A wrapper: interop_need_* (exit 77 when the client is not installed), interop_start_broker,
# interop_run <client command>. Exit status: 0 pass, 1 fail, 77 skip, 99 set-up error.

interop_dir=${top_srcdir:+$top_srcdir/tests/interop}
interop_dir=${interop_dir:-$(cd "$(dirname "$0")" && pwd)}
interop_tmp=$(mktemp -d "${TMPDIR:-/tmp}/warren-interop.XXXXXX") || exit 99
warrend_pid=
warrend_log=

# Seconds a client may run before it counts as hung.
: "${INTEROP_TIMEOUT:=180}"

interop_skip()
{
    echo "SKIP: $*"
    exit 77
}

interop_fail()
{
    echo "FAIL: $*"
    exit 1
}

interop_need_python()
{
    [ -x /usr/bin/python3 ] || interop_skip "/usr/bin/python3 is not installed"
    for m in "$@"; do
        /usr/bin/python3 -c "import $m" 2>/dev/null ||
            interop_skip "/usr/bin/python3 cannot import $m (Debian package python3-$m)"
    done
}

interop_need_commands()
{
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || interop_skip "$c is not installed"
    done
}

interop_start_broker()
{
    if [ -n "${AMQP_HOST:-}" ] && [ -n "${AMQP_PORT:-}" ]; then
        echo "using the broker at $AMQP_HOST:$AMQP_PORT"
        export AMQP_HOST AMQP_PORT
        return 0
    fi
    if [ -z "${WARREND:-}" ] || [ ! -x "$WARREND" ]; then
        echo "ERROR: no broker: WARREND='${WARREND:-}' is not an executable;" \
            "run through make check or set AMQP_HOST and AMQP_PORT"
        exit 99
    fi
    # The HTTP listeners stay off: tests run in parallel and would collide on their ports.
    printf 'log.level = info\nmanagement.tcp.port = 0\nprometheus.tcp.port = 0\n%s' \
        "${WARREN_EXTRA_CONFIG:-}" >"$interop_tmp/warren.conf"
    warrend_log=$interop_tmp/warrend.log
    : >"$warrend_log" # exists before the first look for the ready line
    # WARREND_NOFILE: the broker's limit of open files (ulimit -n), for the tests of running
    # out of them. The subshell execs warrend, so $! is warrend's pid.
    (
        [ -z "${WARREND_NOFILE:-}" ] || ulimit -n "$WARREND_NOFILE" || exit 99
        exec "$WARREND" -c "$interop_tmp/warren.conf" --port 0 --data-dir "$interop_tmp/data"
    ) >"$warrend_log" 2>&1 &
    warrend_pid=$!

    # warrend logs "ready: listening on 0.0.0.0:41234 [::]:41234" once every listener is up;
    # the port of the first address is the one it picked for --port 0.
    tries=0
    while :; do
        addr=$(sed -n 's/.*ready: listening on \([^ ]*\).*/\1/p' "$warrend_log" | head -n 1)
        [ -n "$addr" ] && break
        if ! kill -0 "$warrend_pid" 2>/dev/null; then
            wait "$warrend_pid"
            status=$?
            warrend_pid=
            interop_fail "warrend exited with status $status before it was ready"
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || interop_fail "warrend did not log 'ready: listening on' within 10 s"
        sleep 0.1
    done
    AMQP_PORT=${addr##*:}
    case "$AMQP_PORT" in
    '' | *[!0-9]*) interop_fail "cannot read a port in the ready line's address '$addr'" ;;
    esac
    AMQP_HOST=127.0.0.1
    export AMQP_HOST AMQP_PORT
    echo "started warrend (pid $warrend_pid) on port $AMQP_PORT"
}

# Runs one client; its own output says which check failed.
interop_run()
{
    timeout -k 5 "$INTEROP_TIMEOUT" "$@"
    status=$?
    [ "$status" -eq 0 ] && return 0
    [ "$status" -eq 124 ] && interop_fail "$1 did not finish within $INTEROP_TIMEOUT s"
    interop_fail "$* exited with status $status"
}

# SIGTERM, then wait at most 5 s: a watchdog kills warrend if it hangs, so `wait` (the only
# portable way to get its exit status) always returns. Returns 1 if the stop or the log is bad.
interop_stop_broker()
{
    ok=0
    kill -TERM "$warrend_pid" 2>/dev/null
    (
        tries=0
        while kill -0 "$warrend_pid" 2>/dev/null; do
            tries=$((tries + 1))
            if [ "$tries" -gt 50 ]; then
                kill -KILL "$warrend_pid" 2>/dev/null
                exit 0
            fi
            sleep 0.1
        done
    ) >/dev/null 2>&1 </dev/null &
    watchdog=$!
    wait "$warrend_pid"
    status=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    if [ "$status" -eq 137 ]; then
        echo "FAIL: warrend did not exit within 5 s of SIGTERM (killed)"
        ok=1
    elif [ "$status" -ne 0 ]; then
        echo "FAIL: warrend exited with status $status after SIGTERM"
        ok=1
    fi
    if grep -n '\[error\]' "$warrend_log"; then
        echo "FAIL: warrend logged an [error] line"
        ok=1
    fi
    if grep -n -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$warrend_log"; then
        echo "FAIL: sanitizer report in the warrend log"
        ok=1
    fi
    return $ok
}

# A wrapper may set this to a command that removes what it created on a shared broker.
interop_cleanup=

interop_finish()
{
    rc=$?
    trap - EXIT
    [ -z "$interop_cleanup" ] || eval "$interop_cleanup" >/dev/null 2>&1
    if [ -n "$warrend_pid" ]; then
        interop_stop_broker || rc=1
    fi
    if [ -n "$warrend_log" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        echo "--- last lines of the warrend log"
        tail -n 60 "$warrend_log"
    fi
    rm -rf "$interop_tmp"
    exit "$rc"
}

trap interop_finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
