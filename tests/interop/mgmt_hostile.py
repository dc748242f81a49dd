#!/usr/bin/python3
"""Hostile and slow HTTP clients against the management API and the metrics endpoint: what
they get, and that the broker stays usable for everyone else.

  - a request refused at its head (no or wrong credentials, a body announced too large)
    is answered at once, before its body is read, and its connection closed;
  - anonymous uploads of 64 MiB do not move the broker's memory;
  - request bodies together have a budget: past it, 503 with a reason, and requests pass
    again once it is free;
  - clients that trickle their request heads are closed after request_timeout, and a normal
    client is answered meanwhile.

Environment: MGMT_URL, METRICS_URL (a warrend started by mgmt_hostile.sh with
request_timeout = REQUEST_TIMEOUT_MS on both listeners), WARREND_PID (its memory is
watched), optionally MGMT_USER/MGMT_PASS (guest/guest). Prints one line per check; exits 1
at the first failure.
"""

import base64
import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time
import traceback
import urllib.parse

MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
METRICS = urllib.parse.urlsplit(os.environ.get("METRICS_URL", "http://127.0.0.1:15692"))
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")
PID = int(os.environ.get("WARREND_PID", "0"))
REQUEST_TIMEOUT_S = int(os.environ.get("REQUEST_TIMEOUT_MS", "2000")) / 1000.0
BODY_MAX = 64 * 1024 * 1024  # MGMT_BODY_MAX; the budget of all bodies is twice that
# A loaded machine (make -j2 check beside other builds) answers slowly; these bounds are far
# above what an idle one needs and far below what the failures they catch take.
ANSWER_S = 3.0
QUEUE = "hostile.%d" % os.getpid()


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def auth_header(user=USER, password=PASS):
    return "Authorization: Basic %s\r\n" % base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


class Raw:
    """A socket speaking HTTP/1.1 by hand: what is sent, and when, is the test's."""

    def __init__(self, url):
        self.sock = socket.create_connection((url.hostname, url.port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def head(self, method, path, extra=""):
        self.send(("%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n" % (method, path, extra)).encode())

    def answer(self, within):
        """(status, headers, body) of one answer, or CheckFailed if none within `within` s."""
        deadline = time.monotonic() + within
        while b"\r\n\r\n" not in self.buf:
            self._read(deadline, "the head of an answer")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d+)", lines[0])
        expect(m is not None, "not an HTTP status line: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._read(deadline, "the body of an answer")
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(m.group(1)), headers, body

    def closed_within(self, seconds):
        """True if the peer closes the connection (EOF or reset) within seconds."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                if self.sock.recv(65536) == b"":
                    return True
            except OSError:
                return True

    def _read(self, deadline, what):
        left = deadline - time.monotonic()
        r, _, _ = select.select([self.sock], [], [], max(left, 0))
        if not r:
            raise CheckFailed("%s did not come in time" % what)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise CheckFailed("the connection closed before %s" % what)
        self.buf += chunk

    def close(self):
        self.sock.close()


def call(method, path, body=None, url=MGMT, headers=None, chunked=False):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    hdrs = {"Authorization": auth_header().split(": ", 1)[1].strip()}
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def peak_rss_mib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise CheckFailed("no VmHWM in /proc/%d/status" % PID)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


# ---- Refused at the head ---------------------------------------------------------------


@check
def anonymous_upload_is_refused_before_its_body():
    for expect_continue in (False, True):
        r = Raw(MGMT)
        r.head("POST", "/api/definitions",
               "Content-Type: application/json\r\nContent-Length: %d\r\n%s" %
               (BODY_MAX, "Expect: 100-continue\r\n" if expect_continue else ""))
        status, headers, _ = r.answer(ANSWER_S)
        expect(status == 401, "anonymous upload: %d, expected 401 before any body" % status)
        expect(headers.get("www-authenticate", "").startswith("Basic realm="),
               "WWW-Authenticate on the 401")
        expect(r.closed_within(ANSWER_S), "the connection stays open after the 401")
        r.close()
    r = Raw(MGMT)
    r.head("PUT", "/api/queues/%2F/" + QUEUE,
           auth_header(USER, PASS + "x") + "Content-Length: %d\r\n" % BODY_MAX)
    status, _, body = r.answer(ANSWER_S)
    expect(status == 401 and json.loads(body) == {"error": "not_authorized",
                                                   "reason": "Login failed"},
           "wrong password with a body: %d %r" % (status, body))
    expect(r.closed_within(ANSWER_S), "the connection stays open after the 401")
    r.close()


@check
def body_announced_too_large_is_refused_before_it_is_read():
    r = Raw(MGMT)
    r.head("POST", "/api/definitions", auth_header() + "Content-Length: %d\r\n" % (BODY_MAX + 1))
    status, _, body = r.answer(ANSWER_S)
    expect(status == 413, "a body of 64 MiB + 1: %d %r, expected 413" % (status, body))
    expect(json.loads(body)["reason"] == "request body larger than %d bytes" % BODY_MAX,
           "413 reason: %r" % body)
    r.close()
    # The metrics endpoint takes no body at all.
    r = Raw(METRICS)
    r.head("POST", "/metrics", "Content-Length: 1000000\r\n")
    status, _, _ = r.answer(ANSWER_S)
    expect(status == 413, "a body to /metrics: %d, expected 413" % status)
    r.close()


@check
def anonymous_uploads_do_not_move_the_brokers_memory():
    """Eight clients push 64 MiB each without credentials, as fast as the broker takes it."""
    if PID == 0:
        print("skip: the broker's memory (needs WARREND_PID)")
        return
    before = peak_rss_mib()
    sent = [0] * 8

    def upload(i):
        s = socket.create_connection((MGMT.hostname, MGMT.port), timeout=10)
        s.sendall(b"POST /api/definitions HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n"
                  b"\r\n" % BODY_MAX)
        chunk = b" " * (1 << 20)
        try:
            while sent[i] < BODY_MAX:
                sent[i] += s.send(chunk)
        except OSError:  # the broker answered and closed: the rest is never read
            pass
        s.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    after = peak_rss_mib()
    print("  uploads sent %.1f MiB in all; broker peak RSS %.1f MiB before, %.1f MiB after" %
          (sum(sent) / 1048576.0, before, after))
    expect(after - before < 32, "the broker's peak memory grew by %.1f MiB" % (after - before))
    status, body = call("GET", "/api/health/checks/alarms")
    expect(status == 200, "alarms after the uploads: %d %r" % (status, body))


# ---- The budget of all bodies together -------------------------------------------------


@check
def bodies_beyond_the_budget_get_503_until_it_frees():
    holders = []
    for _ in range(2):  # two of the largest bodies fill the budget
        r = Raw(MGMT)
        r.head("POST", "/api/definitions", auth_header() + "Content-Length: %d\r\n" % BODY_MAX)
        r.send(b" " * 1024)
        holders.append(r)
    # Answered after the two heads above were read: they hold their reservations now.
    expect(call("GET", "/api/whoami")[0] == 200, "GET /api/whoami while bodies are read")
    r = Raw(MGMT)
    r.head("PUT", "/api/queues/%2F/" + QUEUE, auth_header() + "Content-Length: 1048576\r\n")
    status, _, body = r.answer(ANSWER_S)
    expect(status == 503, "a 1 MiB body beyond the budget: %d %r, expected 503" % (status, body))
    reply = json.loads(body)
    expect(reply["error"] == "service_unavailable" and "try again later" in reply["reason"],
           "503 body: %r" % reply)
    r.close()
    for h in holders:
        h.close()
    # Once their connections are gone, the budget is free again (a chunked body this time).
    deadline = time.monotonic() + ANSWER_S
    while True:
        status, body = call("PUT", "/api/queues/%2F/" + QUEUE,
                            body=iter([b'{"durable":', b" false}"]), chunked=True,
                            headers={"Content-Type": "application/json",
                                     "Transfer-Encoding": "chunked"})
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expect(status in (201, 204), "PUT a queue after the budget freed: %d %r" % (status, body))
    status, body = call("POST", "/api/definitions", body=b"{}" + b" " * (1 << 20),
                        headers={"Content-Type": "application/json"})
    expect(status in (200, 201, 204), "POST 1 MiB of definitions: %d %r" % (status, body[:200]))
    call("DELETE", "/api/queues/%2F/" + QUEUE)


# ---- Slow request heads ----------------------------------------------------------------


@check
def trickling_heads_are_closed_and_others_answered():
    head = b"GET /api/overview HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    socks = []  # [socket, opened at, closed at, bytes sent]
    for url, n in ((MGMT, 300), (METRICS, 60)):
        for _ in range(n):
            s = socket.create_connection((url.hostname, url.port), timeout=5)
            s.setblocking(False)
            socks.append([s, time.monotonic(), None, 0])
    latencies, failures = [], []
    stop = threading.Event()

    def normal_client():
        while not stop.is_set():
            for url, path in ((MGMT, "/api/overview"), (METRICS, "/metrics")):
                start = time.monotonic()
                try:
                    status, _ = call("GET", path, url=url)
                    if status != 200:
                        failures.append("%s: %d" % (path, status))
                except OSError as e:
                    failures.append("%s: %s" % (path, e))
                latencies.append(time.monotonic() - start)
            time.sleep(0.25)

    prober = threading.Thread(target=normal_client)
    prober.start()
    end = time.monotonic() + REQUEST_TIMEOUT_S + ANSWER_S
    try:
        while time.monotonic() < end:
            for entry in socks:
                s, _, closed, pos = entry
                if closed is not None:
                    continue
                try:
                    if s.recv(1) == b"":
                        entry[2] = time.monotonic()
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    entry[2] = time.monotonic()
                    continue
                try:
                    s.send(head[pos:pos + 1])  # one byte a second, never the end of the head
                    entry[3] += 1
                except OSError:
                    entry[2] = time.monotonic()
            time.sleep(1.0)
    finally:
        stop.set()
        prober.join()
        for entry in socks:
            entry[0].close()
    open_still = [e for e in socks if e[2] is None]
    held = max([e[2] - e[1] for e in socks if e[2] is not None] or [0])
    print("  normal requests: %d, slowest %.3f s; tricklers held their connection %.1f s at most"
          % (len(latencies), max(latencies) if latencies else -1, held))
    expect(not failures, "normal requests failed: %s" % failures[:5])
    expect(len(latencies) >= 4, "only %d normal requests" % len(latencies))
    expect(max(latencies) < ANSWER_S, "a normal request took %.3f s" % max(latencies))
    expect(not open_still, "%d of %d trickling connections still open after %.1f s" %
           (len(open_still), len(socks), REQUEST_TIMEOUT_S + ANSWER_S))


@check
def keepalive_connection_serves_requests_then_closes_when_idle():
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/api/whoami", headers={"Authorization":
                                                   auth_header().split(": ", 1)[1].strip()})
        r = conn.getresponse()
        r.read()
        expect(r.status == 200, "GET /api/whoami on a kept-alive connection: %d" % r.status)
    sock = conn.sock
    start = time.monotonic()
    r, _, _ = select.select([sock], [], [], REQUEST_TIMEOUT_S + ANSWER_S)
    expect(r and sock.recv(1) == b"", "an idle kept-alive connection stays open past "
           "request_timeout")
    print("  idle kept-alive connection closed after %.1f s" % (time.monotonic() - start))
    conn.close()


def main():
    failed = False
    try:
        for fn in CHECKS:
            fn()
            print("ok: %s" % fn.__name__)
    except CheckFailed as e:
        print("FAIL: %s: %s" % (fn.__name__, e))
        failed = True
    except Exception:
        print("FAIL: %s:" % fn.__name__)
        traceback.print_exc(file=sys.stdout)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
