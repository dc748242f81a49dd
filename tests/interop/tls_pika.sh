#!/bin/sh
# AMQPS through pika, Debian's python3-pika, and Python's ssl module (tls_pika.py).
#
# Starts a warrend with a TLS listener (port 0: the ready line's "tls:" address says which),
# certificates made by tests/unit/tls_certs.sh, verify_peer, fail_if_no_peer_cert and
# ssl_cert_login_from = common_name. Against another broker set AMQP_HOST, AMQPS_PORT and
# TLS_CERT_DIR (the tls_certs.sh certificates it uses, configured the same way, with the user
# warren-client / warren-pass and, for RabbitMQ, rabbitmq_auth_mechanism_ssl and
# auth_mechanisms.3 = EXTERNAL).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python pika ssl
interop_need_commands openssl

if [ -n "${AMQP_HOST:-}" ] && [ -n "${AMQPS_PORT:-}" ] && [ -n "${TLS_CERT_DIR:-}" ]; then
    echo "using the broker at $AMQP_HOST, TLS port $AMQPS_PORT, certificates in $TLS_CERT_DIR"
else
    if [ -z "${WARREND:-}" ] || [ ! -x "$WARREND" ]; then
        echo "ERROR: no broker: WARREND='${WARREND:-}' is not an executable;" \
            "run through make check or set AMQP_HOST, AMQPS_PORT and TLS_CERT_DIR"
        exit 99
    fi
    TLS_CERT_DIR=$interop_tmp/certs
    sh "$interop_dir/../unit/tls_certs.sh" "$TLS_CERT_DIR" || exit 99
    cat >"$interop_tmp/warren.conf" <<CONF
log.level = info
listeners.tcp.default = 127.0.0.1:0
listeners.ssl.default = 127.0.0.1:0
ssl_options.certfile = $TLS_CERT_DIR/server.pem
ssl_options.keyfile = $TLS_CERT_DIR/server.key
ssl_options.cacertfile = $TLS_CERT_DIR/ca.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_cert_login_from = common_name
default_user = warren-client
default_pass = warren-pass
management.tcp.port = 0
prometheus.tcp.port = 0
CONF
    warrend_log=$interop_tmp/warrend.log
    : >"$warrend_log"
    "$WARREND" -c "$interop_tmp/warren.conf" --data-dir "$interop_tmp/data" >"$warrend_log" 2>&1 &
    warrend_pid=$!
    tries=0
    while :; do
        addr=$(sed -n 's/.*ready: listening on .*tls:\([^ ]*\).*/\1/p' "$warrend_log" | head -n 1)
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
    AMQPS_PORT=${addr##*:}
    case "$AMQPS_PORT" in
    '' | *[!0-9]*) interop_fail "cannot read a port in the ready line's TLS address '$addr'" ;;
    esac
    AMQP_HOST=127.0.0.1
    echo "started warrend (pid $warrend_pid), TLS on port $AMQPS_PORT"
fi
export AMQP_HOST AMQPS_PORT TLS_CERT_DIR
interop_run /usr/bin/python3 "$interop_dir/tls_pika.py"
