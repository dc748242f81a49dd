#!/bin/sh
# Runs the security tests that need users of their own (tests/integration/it_permissions,
# it_limits_sec) against a RabbitMQ node, to check that what they expect is what RabbitMQ
# does. Not part of make check: it changes the node's users. For each program it imports the
# users, vhosts, permissions and limits that `PROGRAM --definitions` prints (every name starts
# with warren_probe_) with `rabbitmqctl import_definitions`, runs PROGRAM with AMQP_HOST and
# AMQP_PORT set, then deletes those users and vhosts again, also when the program fails.
#
# Usage (from a build directory, with rabbitmqctl allowed to manage the node):
#   ../tests/interop/security_rabbitmq.sh [PROGRAM ...]
# Defaults: AMQP_HOST=127.0.0.1, AMQP_PORT=5672, the programs tests/integration/it_permissions
# and tests/integration/it_limits_sec of the current directory. Exit status: 0 when every
# program passed, 1 otherwise, 77 when rabbitmqctl or python3 is missing.
set -u

: "${AMQP_HOST:=127.0.0.1}"
: "${AMQP_PORT:=5672}"
export AMQP_HOST AMQP_PORT

command -v rabbitmqctl >/dev/null 2>&1 || { echo "SKIP: rabbitmqctl is not installed"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 is not installed"; exit 77; }
[ $# -gt 0 ] || set -- tests/integration/it_permissions tests/integration/it_limits_sec

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warren-sec-rabbit.XXXXXX") || exit 99
# Debian's rabbitmqctl runs as the rabbitmq user, which must be able to read the documents.
chmod 755 "$tmp"
defs=
status=0

# Names of the document's users or vhosts, one per line.
names()
{
    /usr/bin/python3 -c 'import json, sys
for e in json.load(open(sys.argv[1]))[sys.argv[2]]:
    print(e["name"])' "$1" "$2"
}

remove_definitions()
{
    [ -n "$defs" ] || return 0
    for u in $(names "$defs" users); do
        rabbitmqctl -q delete_user "$u" >/dev/null 2>&1
    done
    for v in $(names "$defs" vhosts); do
        rabbitmqctl -q delete_vhost "$v" >/dev/null 2>&1
    done
    defs=
}

trap 'remove_definitions; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

for prog in "$@"; do
    name=$(basename "$prog")
    [ -x "$prog" ] || { echo "ERROR: $prog is not built"; status=1; continue; }
    (umask 022 && "$prog" --definitions >"$tmp/$name.json") || { echo "ERROR: $prog --definitions failed"; status=1; continue; }
    if names "$tmp/$name.json" users | grep -qv '^warren_probe_' ||
        names "$tmp/$name.json" vhosts | grep -qv '^warren_probe_'; then
        echo "ERROR: $prog defines a user or vhost not named warren_probe_*: refusing to import it"
        status=1
        continue
    fi
    defs=$tmp/$name.json
    rabbitmqctl -q import_definitions "$defs" >/dev/null || { echo "ERROR: import failed"; status=1; remove_definitions; continue; }
    # The import is asynchronous: wait until the last user exists.
    last=$(names "$defs" users | tail -n 1)
    tries=0
    until rabbitmqctl -q list_users | grep -q "^$last[[:space:]]"; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || break
        sleep 0.2
    done
    echo "== $name against RabbitMQ at $AMQP_HOST:$AMQP_PORT"
    "$prog" || status=1
    remove_definitions
done
exit $status
