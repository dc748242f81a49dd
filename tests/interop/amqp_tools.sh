#!/bin/sh
# The broker core through Debian's amqp-tools (command-line clients built on rabbitmq-c):
# declare, publish, get, consume with a command per message, delete. Each tool is a
# connection of its own, so this also covers connection set-up and tear-down many times.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
interop_need_commands amqp-declare-queue amqp-publish amqp-get amqp-consume amqp-delete-queue
interop_start_broker

server="--server=$AMQP_HOST --port=$AMQP_PORT --username=guest --password=guest"
q=interop.tools.$$
work=$interop_tmp
interop_cleanup="timeout 10 amqp-delete-queue $server -q $q"

# A tool that hangs (a consumer waiting for messages that never come) fails the test.
tool()
{
    timeout 20 "$@"
}

# expect_eq <what> <got> <expected>
expect_eq()
{
    [ "$2" = "$3" ] || interop_fail "$1: got '$2', expected '$3'"
    echo "ok   $1"
}

# $server is a list of options: split on purpose.
# shellcheck disable=SC2086
{
    got=$(tool amqp-declare-queue $server -q "$q") || interop_fail "amqp-declare-queue failed"
    expect_eq "declare prints the queue name" "$got" "$q"

    gen=$(tool amqp-declare-queue $server -q '') || interop_fail "amqp-declare-queue -q '' failed"
    case "$gen" in
    amq.gen-?*) echo "ok   declare with an empty name gets a server name ($gen)" ;;
    *) interop_fail "server-named queue is '$gen', expected amq.gen-..." ;;
    esac
    got=$(tool amqp-delete-queue $server -q "$gen") || interop_fail "delete of $gen failed"
    expect_eq "delete of the empty server-named queue prints 0 messages" "$got" 0

    tool amqp-get $server -q "$q" >"$work/empty.out"
    expect_eq "get on an empty queue exits 2" "$?" 2
    expect_eq "get on an empty queue prints nothing" "$(cat "$work/empty.out")" ""

    tool amqp-publish $server -r "$q" -b "hello world" || interop_fail "amqp-publish failed"
    got=$(tool amqp-get $server -q "$q") || interop_fail "amqp-get failed"
    expect_eq "publish -b then get returns the body" "$got" "hello world"

    printf 'x y\n\000z\377' >"$work/binary.in"
    tool amqp-publish $server -r "$q" <"$work/binary.in" || interop_fail "amqp-publish failed"
    tool amqp-get $server -q "$q" >"$work/binary.out" || interop_fail "amqp-get failed"
    cmp "$work/binary.in" "$work/binary.out" || interop_fail "binary body changed on the way"
    echo "ok   binary body from stdin comes back byte for byte"

    # -l: one message per line (the newline is kept in the body).
    printf 'one\ntwo\nthree\n' | tool amqp-publish $server -l -r "$q" ||
        interop_fail "amqp-publish -l failed"
    # shellcheck disable=SC2016 # $1 is for the inner sh
    tool amqp-consume $server -q "$q" -c 3 -- \
        sh -c 'cat >>"$1" && echo "|" >>"$1"' sh "$work/consumed" ||
        interop_fail "amqp-consume -c 3 failed"
    printf 'one\n|\ntwo\n|\nthree\n|\n' >"$work/consumed.expected"
    cmp "$work/consumed.expected" "$work/consumed" ||
        interop_fail "consumed: $(cat "$work/consumed")"
    echo "ok   consume -c 3 runs the command once per message, in order"
    tool amqp-get $server -q "$q" >/dev/null
    expect_eq "consumed messages were acknowledged (get exits 2)" "$?" 2

    for body in "left 1" "left 2"; do
        tool amqp-publish $server -r "$q" -b "$body" || interop_fail "amqp-publish failed"
    done
    got=$(tool amqp-delete-queue $server -q "$q") || interop_fail "amqp-delete-queue failed"
    expect_eq "delete prints the number of messages it dropped" "$got" 2

    tool amqp-get $server -q "$q" >/dev/null 2>"$work/missing.err"
    expect_eq "get on the deleted queue exits 1" "$?" 1
    expect_eq "get on the deleted queue reports the channel error" "$(cat "$work/missing.err")" \
        "basic.get: server channel error 404, message: NOT_FOUND - no queue '$q' in vhost '/'"
}
# Nothing left to remove.
# shellcheck disable=SC2034 # read by lib.sh
interop_cleanup=
