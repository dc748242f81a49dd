# Starting a warrend with its management API and metrics listeners, for the tests of
# tests/interop/mgmt_*.sh, warrenctl.sh and prometheus_scrape.sh; sourced after lib.sh, whose
# clean-up stops it.
#
# mgmt_start_broker exports AMQP_HOST, AMQP_PORT, MGMT_URL, METRICS_URL, WARREN=1 and
# WARREND_PID (for tests that watch its memory); WARREN_EXTRA_CONFIG, when set, ends its
# configuration file. With AMQP_HOST, AMQP_PORT and MGMT_URL already set it uses that broker
# instead (WARREN stays unset unless given). The listeners' ports are picked free just before
# warrend binds them; if another process takes one in between, warrend refuses to start and
# the next try picks other ports.

mgmt_free_port()
{
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mgmt_start_broker()
{
    if [ -n "${AMQP_HOST:-}" ] && [ -n "${AMQP_PORT:-}" ] && [ -n "${MGMT_URL:-}" ]; then
        echo "using the broker at $AMQP_HOST:$AMQP_PORT, management API at $MGMT_URL"
        export AMQP_HOST AMQP_PORT MGMT_URL METRICS_URL
        return 0
    fi
    if [ -z "${WARREND:-}" ] || [ ! -x "$WARREND" ]; then
        echo "ERROR: no broker: WARREND='${WARREND:-}' is not an executable;" \
            "run through make check or set AMQP_HOST, AMQP_PORT and MGMT_URL"
        exit 99
    fi
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        mgmt_port=$(mgmt_free_port)
        metrics_port=$(mgmt_free_port)
        cat >"$interop_tmp/warren.conf" <<EOF
log.level = info
management.tcp.port = $mgmt_port
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $metrics_port
prometheus.tcp.ip = 127.0.0.1
queue_memory_limit = 512KB
${WARREN_EXTRA_CONFIG:-}
EOF
        warrend_log=$interop_tmp/warrend.log
        : >"$warrend_log"
        rm -rf "$interop_tmp/data"
        "$WARREND" -c "$interop_tmp/warren.conf" --port 0 --data-dir "$interop_tmp/data" \
            >"$warrend_log" 2>&1 &
        warrend_pid=$!
        tries=0
        while :; do
            addr=$(sed -n 's/.*ready: listening on \([^ ]*\).*/\1/p' "$warrend_log" | head -n 1)
            [ -n "$addr" ] && break 2
            if ! kill -0 "$warrend_pid" 2>/dev/null; then
                wait "$warrend_pid"
                status=$?
                warrend_pid=
                if grep -q 'Address already in use' "$warrend_log" && [ "$attempt" -lt 3 ]; then
                    break
                fi
                cat "$warrend_log"
                interop_fail "warrend exited with status $status before it was ready"
            fi
            tries=$((tries + 1))
            [ "$tries" -lt 100 ] || interop_fail "warrend did not log 'ready: listening on' within 10 s"
            sleep 0.1
        done
    done
    # Until src/main.c starts the management API, this broker has none to test.
    grep -q 'management API: listening on' "$warrend_log" ||
        interop_skip "warrend did not start the management API (src/main.c does not call mgmt_start)"
    AMQP_PORT=${addr##*:}
    AMQP_HOST=127.0.0.1
    MGMT_URL=http://127.0.0.1:$mgmt_port
    METRICS_URL=http://127.0.0.1:$metrics_port
    WARREN=1
    WARREND_PID=$warrend_pid
    export AMQP_HOST AMQP_PORT MGMT_URL METRICS_URL WARREN WARREND WARREND_PID
    echo "started warrend (pid $warrend_pid): AMQP port $AMQP_PORT, $MGMT_URL, $METRICS_URL"
}
