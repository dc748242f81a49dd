#!/bin/sh
# Memory after connection churn (churn_memory.py): what closed connections used goes back
# to the system. Skipped for a sanitizer build, whose allocator keeps freed memory on
# purpose (ASan's quarantine).
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_python socket threading
[ -z "${AMQP_HOST:-}" ] || interop_skip "needs a warrend of its own (its resident memory)"
if ldd "$WARREND" 2>/dev/null | grep -q -E 'lib[at]san'; then
    interop_skip "warrend is built with a sanitizer, whose allocator keeps freed memory"
fi
interop_start_broker
WARREND_PID=$warrend_pid interop_run /usr/bin/python3 "$interop_dir/churn_memory.py"
