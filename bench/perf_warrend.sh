# Sourced by bench/compare and bench/check_perf_broker.sh: start and stop a warrend of their
# own. Everything it writes (configuration, data, log) stays in the directory it is given,
# and the management and metrics listeners are off, so it collides with no other warrend or
# RabbitMQ on the machine. Keys the binary does not know yet (an older build) are dropped
# one by one, as its refusal names them.

# perf_warrend_start DIR PORT: starts $WARREND on PORT (0: any free port) and waits for its
# ready line. Sets warrend_pid and warrend_port; the log is DIR/warrend.log (an earlier one
# is kept as warrend.log.N). Returns 1, after showing the log, if it does not get ready.
perf_warrend_start() {
    _dir=$1
    _port=$2
    mkdir -p "$_dir/data"
    _keys="data_dir = $_dir/data
management.tcp.port = 0
prometheus.tcp.port = 0"
    if [ -f "$_dir/warrend.log" ]; then
        _n=1
        while [ -f "$_dir/warrend.log.$_n" ]; do _n=$((_n + 1)); done
        mv "$_dir/warrend.log" "$_dir/warrend.log.$_n"
    fi
    for _attempt in 1 2 3 4 5; do
        printf '%s\n' "$_keys" >"$_dir/warren.conf"
        "$WARREND" -c "$_dir/warren.conf" --port "$_port" >"$_dir/warrend.log" 2>&1 &
        warrend_pid=$!
        warrend_port=
        _i=0
        while [ $_i -lt 200 ]; do
            warrend_port=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' \
                "$_dir/warrend.log" 2>/dev/null | head -n 1)
            [ -n "$warrend_port" ] && return 0
            kill -0 "$warrend_pid" 2>/dev/null || break
            sleep 0.05
            _i=$((_i + 1))
        done
        if kill -0 "$warrend_pid" 2>/dev/null; then
            kill "$warrend_pid" 2>/dev/null
            wait "$warrend_pid" 2>/dev/null
            echo "warrend did not say it was ready within 10 s:" >&2
            cat "$_dir/warrend.log" >&2
            return 1
        fi
        wait "$warrend_pid" 2>/dev/null
        _unknown=$(sed -n "s/.*unknown key '\\([^']*\\)'.*/\\1/p" "$_dir/warrend.log" | head -n 1)
        if [ -n "$_unknown" ] && printf '%s\n' "$_keys" | grep -q "^$_unknown = "; then
            _keys=$(printf '%s\n' "$_keys" | grep -v "^$_unknown = ")
            continue
        fi
        echo "warrend exited before it was ready:" >&2
        cat "$_dir/warrend.log" >&2
        return 1
    done
    return 1
}

# perf_warrend_stop: SIGTERM, then waits; returns warrend's exit status.
perf_warrend_stop() {
    [ -n "${warrend_pid:-}" ] || return 0
    kill "$warrend_pid" 2>/dev/null
    _rc=0
    wait "$warrend_pid" 2>/dev/null || _rc=$?
    warrend_pid=
    return $_rc
}
