#!/bin/sh
# Example 1, the work queue: every job handled exactly once, by one of three workers, and
# three workers faster than one.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/01_work_queue.py"
ex_expect 'handled_once == jobs && duplicates == 0 && left_in_queue == 0'
ex_expect 'workers == 3 && workers_used == 3'
# Each job sleeps 20 ms: three workers are about 3 times faster; 1.5 leaves room for a loaded
# machine.
ex_expect 'speedup > 1.5'
