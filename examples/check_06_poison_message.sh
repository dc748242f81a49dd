#!/bin/sh
# Example 6, poison messages: the malformed message is tried x-delivery-limit + 1 times, then
# parked with x-death reason delivery_limit; every good message is handled.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/06_poison_message.py"
ex_expect 'good_handled == good && left_in_queue == 0'
ex_expect 'poison_attempts == delivery_limit + 1 && last_delivery_count == delivery_limit'
ex_expect 'parked == 1 && parked_id == "poison"'
ex_expect 'death_reason == "delivery_limit" && death_queue == "ex06.tasks" && death_count == 1'
