#!/bin/sh
# Example 11, monitoring: the management API and the metrics report the delay and loss the
# example caused on purpose: 30 expired and 50 pushed-out orders dead-lettered and parked, 50
# clicks dropped, a depth that adds up, and a drain rate near the consumer's pace.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
if [ -n "${AMQP_HOST:-}" ] && [ -z "${MGMT_URL:-}" ]; then
    interop_skip "example 11 reads the management API: set MGMT_URL (and METRICS_URL) too"
fi
ex_start_broker
# The loss counters it reads are Warren's series (RabbitMQ 3.10 has no per-queue ones).
[ "${WARREN:-}" = 1 ] || interop_skip "the broker is not Warren (set WARREN=1 if it is)"
ex_run /usr/bin/python3 "$examples_dir/11_monitoring.py"
ex_expect 'orders_published == 280 && orders_expired == 30 && orders_dead_lettered == 80'
ex_expect 'orders_dropped == 0 && parked == orders_dead_lettered'
ex_expect 'clicks_published == 150 && clicks_dropped == 50 && clicks_depth == 100'
ex_expect 'orders_depth == orders_published - orders_dead_lettered - consumed'
ex_expect 'orders_taken >= consumed && orders_taken <= consumed + 1'
# The consumer is paced at 100/s; a busy machine can only slow it down.
ex_expect 'drain_rate > 20 && drain_rate <= 110 && est_delay_s > 0'
