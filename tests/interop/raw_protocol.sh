#!/bin/sh
# Malformed and edge-case AMQP spoken by hand (raw_protocol.py): exact replies and closes.
# WARREN_SLOW_TESTS=1 adds the two checks that wait for the 10 s handshake timeout.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python socket struct
interop_start_broker
interop_run /usr/bin/python3 "$interop_dir/raw_protocol.py"
