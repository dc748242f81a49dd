#!/bin/sh
# Example 2, publish/subscribe: each subscriber its own copy of every event it bound to; a
# subscriber added later gets the events published after it joined.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/02_pubsub.py"
ex_expect 'email == events && sms == events && same_copies == 1'
ex_expect 'database == events + orders'
ex_expect 'partner_sync == events / 2'
