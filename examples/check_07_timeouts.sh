#!/bin/sh
# Example 7, timeouts: requests past their per-message expiration are dead-lettered (reason
# expired), never served late. Without expiration the last of the burst would wait
# requests * work_ms (2 s); the margin over the deadline allows for a busy machine.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/07_timeouts.py"
ex_expect 'served + timed_out == requests && left_in_queue == 0 && reasons == "expired"'
ex_expect 'served >= 3 && timed_out >= requests / 2'
ex_expect 'max_wait_ms <= deadline_ms + 150 && served_late == 0'
