#!/bin/sh
# Every endpoint of RabbitMQ 3.10's HTTP API reference that Warren serves, as a table
# (mgmt_endpoints.py): the status each kind of user gets and the JSON keys of the answer.
# Runs against a warrend started with its management API and a TLS listener whose
# certificates (tests/unit/tls_certs.sh) expire within weeks, for the certificate health
# check; then, when RABBITMQ_MGMT_URL and RABBITMQ_AMQP_PORT name a RabbitMQ 3.10 with its
# management plugin (and RABBITMQ_USER/RABBITMQ_PASS an administrator, guest/guest unless
# set), the same table against it, to check the table. Without them the RabbitMQ side is
# skipped, the Warren side always runs.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python pika
interop_need_commands openssl
if [ -z "${MGMT_URL:-}" ]; then
    certs=$interop_tmp/certs
    sh "$interop_dir/../unit/tls_certs.sh" "$certs" || exit 99
    WARREN_EXTRA_CONFIG="listeners.ssl.default = 127.0.0.1:0
ssl_options.certfile = $certs/server.pem
ssl_options.keyfile = $certs/server.key
ssl_options.cacertfile = $certs/ca.pem"
    export WARREN_EXTRA_CONFIG
    EXPECT_EXPIRING_CERT=1
    export EXPECT_EXPIRING_CERT
fi
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/mgmt_endpoints.py"
if [ -n "${RABBITMQ_MGMT_URL:-}" ] && [ -n "${RABBITMQ_AMQP_PORT:-}" ]; then
    echo "== the same table against RabbitMQ at $RABBITMQ_MGMT_URL"
    interop_run env -u WARREN -u EXPECT_EXPIRING_CERT AMQP_HOST="${RABBITMQ_AMQP_HOST:-127.0.0.1}" \
        AMQP_PORT="$RABBITMQ_AMQP_PORT" MGMT_URL="$RABBITMQ_MGMT_URL" \
        MGMT_USER="${RABBITMQ_USER:-guest}" MGMT_PASS="${RABBITMQ_PASS:-guest}" \
        /usr/bin/python3 "$interop_dir/mgmt_endpoints.py"
else
    echo "SKIP (RabbitMQ side): set RABBITMQ_MGMT_URL and RABBITMQ_AMQP_PORT to run the table against RabbitMQ 3.10"
fi
