#!/bin/sh
# Example 8, ordering and idempotency: no welcome email before its user exists; workers that
# die before their ack cause redeliveries, and de-duplication by message-id keeps every user
# at one creation and one email.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/08_ordering_idempotency.py"
ex_expect 'order_violations == 0 && left_in_queues == 0'
ex_expect 'created_once == users && emails_once == users && emails_twice == 0'
# 7 create and 10 email crashes are built in (one user has both: 18); each is redelivered.
ex_expect 'crashes == 18 && redelivered == crashes && duplicates_skipped == crashes'
