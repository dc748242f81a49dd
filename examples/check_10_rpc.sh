#!/bin/sh
# Example 10, RPC: every call answered with its own correlation id, blocking and pipelined; a
# request nobody can take comes back (mandatory, NO_ROUTE); direct reply-to leaves no queue
# behind (the management API lists none once the example removed its request queue).
# shellcheck source=examples/check_lib.sh
. "${top_srcdir:-$(dirname "$0")/..}/examples/check_lib.sh"
ex_start_broker
ex_run /usr/bin/python3 "$examples_dir/10_rpc.py"
ex_expect 'answered == calls && wrong == 0'
ex_expect 'returned == 1 && return_reason == "NO_ROUTE"'
if [ "${WARREN:-}" = 1 ]; then
    queues=$(/usr/bin/python3 -c '
import base64, json, os, urllib.request
r = urllib.request.Request(os.environ["MGMT_URL"] + "/api/queues")
r.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
print(len(json.load(urllib.request.urlopen(r, timeout=10))))') ||
        interop_fail "cannot list the queues through the management API"
    [ "$queues" = 0 ] || interop_fail "$queues queue(s) left behind; direct reply-to needs none"
    echo "ok: no queue left behind"
fi
