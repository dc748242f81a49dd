#!/usr/bin/python3
"""The health checks of the management API while the disk alarm is on: RabbitMQ's 503 with
{"status": "failed", "reason": ..., "alarms": [{"resource": "disk space", "node": ...}]},
and the rest of the API still answering.

Environment: MGMT_URL (a broker whose disk alarm is on, started by mgmt_alarm.sh),
optionally MGMT_USER/MGMT_PASS (guest/guest). Prints one line per check; exits 1 at the
first failure.
"""

import base64
import http.client
import json
import os
import sys
import time
import urllib.parse

MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")


def call(path):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % (USER, PASS)).encode()).decode()
    conn.request("GET", path, headers={"Authorization": "Basic " + token})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def fail(what):
    print("FAIL: " + what)
    sys.exit(1)


def main():
    status, body = call("/api/overview")
    if status != 200:
        fail("GET /api/overview: %d %r" % (status, body[:200]))
    node = json.loads(body)["node"]
    checks = (("/api/health/checks/alarms", "There are alarms in effect in the cluster"),
              ("/api/health/checks/local-alarms", "There are alarms in effect on the node"))
    for path, reason in checks:
        # The broker checks its disk once a second from its start.
        deadline = time.time() + 5
        while True:
            status, body = call(path)
            if status != 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        if status != 503:
            fail("GET %s during a disk alarm: %d %r, expected 503" % (path, status, body[:300]))
        want = {"status": "failed", "reason": reason,
                "alarms": [{"resource": "disk space", "node": node}]}
        if json.loads(body) != want:
            fail("GET %s: %r, expected %r" % (path, json.loads(body), want))
        print("ok: %s answers 503 listing the disk alarm" % path)
    status, body = call("/api/whoami")
    if status != 200:
        fail("GET /api/whoami during the alarm: %d" % status)
    print("ok: the rest of the API still answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
