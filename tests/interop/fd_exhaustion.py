#!/usr/bin/python3
"""A broker that runs out of file descriptors, as a client and an operator see it.

fd_exhaustion.sh starts warrend under `ulimit -n 64`. Connections are opened until the
broker cannot accept another; then:
  - a client that connects now is refused (its socket is closed) within a few seconds, not
    left waiting for a connection.start that cannot come;
  - the broker does not spin on its listening socket: over 2 s it uses under 10 % of a CPU
    and writes at most a few log lines (it used to log 'accept failed' a million times in
    3 s at full CPU);
  - once connections close, a new one is accepted again;
  - the refusals are counted in warren_connections_refused_total{reason="fd_limit"} and in
    /api/overview's connections_refused.

Environment: AMQP_HOST, AMQP_PORT, WARREND_PID, WARREND_LOG, METRICS_URL, MGMT_URL (the
wrapper sets them). Prints one line per check; exits 1 if any failed.
"""

import base64
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

HOST, PORT = rawclient.broker_address()
PID = int(os.environ["WARREND_PID"])
LOG = os.environ["WARREND_LOG"]
METRICS = os.environ["METRICS_URL"]
MGMT = os.environ["MGMT_URL"]

failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def log_lines():
    with open(LOG, errors="replace") as f:
        return f.read().splitlines()


def closed_within(sock, timeout):
    """Whether the broker closes sock (end of file or reset) within timeout, sending
    nothing first."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    conns = []
    while len(conns) < 200:
        try:
            conns.append(rawclient.Client(HOST, PORT, timeout=3.0))
        except (rawclient.Closed, OSError):
            break
    check(10 <= len(conns) < 64,
          "the broker ran out of file descriptors after %d connections" % len(conns))

    waiting = []
    for _ in range(3):
        s = socket.create_connection((HOST, PORT), timeout=5.0)
        s.sendall(rawclient.PROTOCOL_HEADER)
        waiting.append(s)
    for i, s in enumerate(waiting):
        check(closed_within(s, 5.0), "connection %d made while out of descriptors is refused" % i)
        s.close()

    lines_before = len(log_lines())
    cpu_before, t_before = rawclient.process_cpu_seconds(PID), time.monotonic()
    time.sleep(2.0)
    cpu = rawclient.process_cpu_seconds(PID) - cpu_before
    elapsed = time.monotonic() - t_before
    lines = len(log_lines()) - lines_before
    check(cpu < 0.1 * elapsed,
          "out of descriptors, the broker used %.2f s of CPU in %.1f s" % (cpu, elapsed))
    check(lines <= 3, "... and wrote %d log lines" % lines)
    failed = [l for l in log_lines() if "accept on" in l and "Too many open files" in l]
    check(len(failed) == 1, "'accept ... failed: Too many open files' logged %d time(s), once "
          "for the whole episode" % len(failed))

    for c in conns[:10]:
        c.close()
    del conns[:10]
    try:
        c = rawclient.Client(HOST, PORT, timeout=5.0)
        conns.append(c)
        check(True, "with descriptors free again, a new connection is accepted")
    except (rawclient.Closed, OSError) as e:
        check(False, "with descriptors free again, a new connection is accepted (%s)" % e)
    check(any("accepting connections again" in l for l in log_lines()),
          "the broker logs that it accepts connections again")

    with urllib.request.urlopen(METRICS + "/metrics", timeout=10) as r:
        text = r.read().decode()
    n = metric(text, 'warren_connections_refused_total{reason="fd_limit"}')
    check(n is not None and n >= 4,
          "warren_connections_refused_total{reason=\"fd_limit\"} counts the refusals (%s)" % n)
    check(metric(text, 'warren_connections_refused_total{reason="connection_max"}') == 0,
          "... and none for connection_max")
    req = urllib.request.Request(MGMT + "/api/overview", headers={
        "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        refused = json.load(r).get("connections_refused", {})
    check(refused.get("fd_limit") == n and refused.get("connection_max") == 0,
          "/api/overview shows them too (%s)" % refused)

    for c in conns:
        c.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
