#!/bin/sh
# Example 4, the token bucket: the admitted rate follows the token rate, not the request rate,
# with either overflow mode of the capped token queue. Timing margins are generous: the
# machine running make check may be busy.
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
for overflow in drop-head reject-publish; do
    TOKEN_OVERFLOW=$overflow
    export TOKEN_OVERFLOW
    ex_run /usr/bin/python3 "$examples_dir/04_token_bucket.py"
    ex_expect "overflow == \"$overflow\" && initial_bucket == capacity"
    ex_expect 'admitted + rejected == requests && rejected > 5 * admitted'
    ex_expect 'admitted_rate <= token_rate * 1.1 + 1 && admitted_rate >= token_rate * 0.5'
    # A full bucket discards tokens: drop-head drops the oldest, reject-publish nacks the new.
    if [ "$overflow" = drop-head ]; then
        ex_expect 'tokens_dropped >= capacity && tokens_refused == 0'
    else
        ex_expect 'tokens_refused >= capacity && tokens_dropped == 0'
    fi
done
