#!/bin/sh
# Example 3, peak shaving: a burst of PEAK_MESSAGES (100,000 here; the example's own default
# is a million) far faster than the consumers drain (20,000/s); every message arrives once,
# and the broker's resident memory stays flat while the backlog is tens of megabytes.
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
[ -z "${AMQP_HOST:-}" ] || interop_skip "this test reads the memory of the broker it starts; AMQP_HOST names another"
program=${top_builddir:-.}/examples/03_peak_shaving
[ -x "$program" ] || interop_fail "$program is not built (make examples/03_peak_shaving)"
ex_start_broker
: "${PEAK_MESSAGES:=100000}" "${PEAK_DRAIN_RATE:=20000}" "${PEAK_BODY_BYTES:=512}"
export PEAK_MESSAGES PEAK_DRAIN_RATE PEAK_BODY_BYTES
ex_run "$program"
ex_expect "published == $PEAK_MESSAGES && consumed == published && lost == 0 && duplicates == 0"
# The burst really outran the consumers: most of it waited in the broker.
ex_expect 'max_backlog > published / 2'
# Flat memory: what the broker grew by is a fraction of the backlog it held.
ex_expect 'rss_start_mb > 0 && rss_growth_mb < backlog_mb / 2'
