#!/usr/bin/python3
"""Management API requests as RabbitMQ's own clients send them, through plain HTTP: what
RabbitMQ 3.10's handlers accept (numbers given as strings, as rabbitmqadmin sends them) and
what they refuse, with their 400 reasons. rabbitmqadmin itself is driven by rabbitmqadmin.sh.

Environment: MGMT_URL (http://127.0.0.1:15672), optionally MGMT_USER/MGMT_PASS (guest/guest).
WARREN=1 adds the checks of what Warren does on purpose differently; without it the same
checks run against a RabbitMQ with its management plugin, to check the checks. Prints one
line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import sys
import traceback
import urllib.parse

MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")
WARREN = os.environ.get("WARREN") == "1"
PREFIX = "compat.%d" % os.getpid()
CREATED = []  # (kind, name) in the vhost /, deleted at the end


class CheckFailed(Exception):
    pass


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def q(s):
    return urllib.parse.quote(s, safe="")


def call(method, path, body=None):
    """(status, decoded JSON or None) of one request."""
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % (USER, PASS)).encode()).decode()
    headers = {"Authorization": "Basic " + token}
    data = None
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    return r.status, (json.loads(raw) if raw else None)


def expect_ok(method, path, body=None, status=(200, 201, 204)):
    got, reply = call(method, path, body)
    if got not in status:
        raise CheckFailed("%s %s: %d %r" % (method, path, got, reply))
    return reply


def expect_bad_request(method, path, body, reason, what):
    got, reply = call(method, path, body)
    expect_eq((got, reply), (400, {"error": "bad_request", "reason": reason}), what)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def publish(queue, payload):
    reply = expect_ok("POST", "/api/exchanges/%2F/amq.default/publish",
                      {"properties": {}, "routing_key": queue, "payload": payload,
                       "payload_encoding": "string"})
    expect_eq(reply, {"routed": True}, "publish to %s" % queue)


@check
def get_takes_numbers_as_strings():
    """rabbit_mgmt_wm_queue_get reads count and truncate with rabbit_misc:parse_int/1."""
    qn = PREFIX + ".get"
    expect_ok("PUT", "/api/queues/%2F/" + q(qn), {"durable": False})
    CREATED.append(("queues", qn))
    for i in range(4):
        publish(qn, "message %d" % i)
    path = "/api/queues/%%2F/%s/get" % q(qn)
    got = expect_ok("POST", path, {"count": "2", "ackmode": "ack_requeue_false",
                                   "encoding": "auto"})
    expect_eq([m["payload"] for m in got], ["message 0", "message 1"], "count \"2\"")
    got = expect_ok("POST", path, {"count": "+1", "ackmode": "ack_requeue_true",
                                   "encoding": "auto", "truncate": "3"})
    expect_eq([(m["payload"], m["payload_bytes"]) for m in got], [("mes", 9)],
              "count \"+1\", truncate \"3\"")
    got = expect_ok("POST", path, {"count": 1.9, "ackmode": "ack_requeue_true",
                                   "encoding": "auto"})
    expect_eq(len(got), 1, "count 1.9 is 1 (its integer part)")
    got = expect_ok("POST", path, {"count": "0", "ackmode": "ack_requeue_false",
                                   "encoding": "auto"})
    expect_eq(got, [], "count \"0\" takes nothing")
    # What rabbitmqadmin sends for `get queue=... count=10`.
    got = expect_ok("POST", path, json.dumps({"count": "10", "ackmode": "ack_requeue_false",
                                              "encoding": "auto", "vhost": "/",
                                              "queue": qn}))
    expect_eq([m["payload"] for m in got], ["message 2", "message 3"], "rabbitmqadmin's body")
    for bad in ("ten", "", "1.5", " 1", [], None, True):
        expect_bad_request("POST", path, {"count": bad, "ackmode": "ack_requeue_true",
                                          "encoding": "auto"}, ["not_integer", bad],
                           "count %r" % (bad,))
    expect_bad_request("POST", path, {"count": 1, "ackmode": "ack_requeue_true",
                                      "encoding": "auto", "truncate": "x"},
                       ["not_integer", "x"], "truncate \"x\"")
    expect_bad_request("POST", path, {"count": "1"},
                       "[{key_missing,ackmode},{key_missing,encoding}]", "missing keys")
    expect_bad_request("POST", path, {"count": "1", "ackmode": "ack_requeue_true",
                                      "encoding": "utf8"},
                       "Unsupported encoding. Please use auto or base64.", "bad encoding")


@check
def warren_bounds_a_get():
    """RabbitMQ takes any count, a negative one meaning every message; Warren keeps a bound."""
    if not WARREN:
        return
    qn = PREFIX + ".get"
    path = "/api/queues/%%2F/%s/get" % q(qn)
    for bad in ("-1", 10001):
        expect_bad_request("POST", path, {"count": bad, "ackmode": "ack_requeue_true",
                                          "encoding": "auto"},
                           "count must be an integer from 0 to 10000", "count %r" % bad)


def cleanup():
    for kind, n in reversed(CREATED):
        try:
            call("DELETE", "/api/%s/%%2F/%s" % (kind, q(n)))
        except OSError:
            pass


def main():
    failed = False
    try:
        for fn in CHECKS:
            fn()
            print("ok: %s" % fn.__name__)
    except CheckFailed as e:
        print("FAIL: %s: %s" % (fn.__name__, e))
        failed = True
    except Exception:  # a broken reply (no JSON, a missing field) fails the check too
        print("FAIL: %s:" % fn.__name__)
        traceback.print_exc(file=sys.stdout)
        failed = True
    finally:
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
