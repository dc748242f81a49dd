#!/bin/sh
# Example 5, failure isolation: a worker killed with unacked orders; they come back to the
# survivors marked redelivered, nothing is lost or handled twice, the producer sees no error.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/05_failure_isolation.py"
ex_expect 'handled_once == orders && handled_twice == 0 && lost == 0 && left_in_queue == 0'
ex_expect 'crashed_held == 5 && held_came_back_redelivered == 5 && redelivered == 5'
ex_expect 'confirmed == orders && publish_errors == 0'
