#!/bin/sh
# Debian's prometheus scrapes a warrend's /metrics; its query API must return a queue's depth
# (prometheus_scrape.py). Skipped where the prometheus package is not installed.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
interop_need_python
: "${PROMETHEUS:=prometheus}"
command -v "$PROMETHEUS" >/dev/null 2>&1 ||
    interop_skip "no $PROMETHEUS (Debian package prometheus)"
export PROMETHEUS
mgmt_start_broker
interop_run /usr/bin/python3 "$interop_dir/prometheus_scrape.py"
