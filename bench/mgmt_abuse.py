#!/usr/bin/python3
"""Hostile HTTP clients against the management API and the Prometheus endpoint, in figures.

Starts its own warrend (loopback only, a temporary data directory) and prints:

  - anonymous uploads: N clients each announce and send a 64 MiB body without credentials;
    when their 401 came, and warrend's resident memory (RSS, and its peak) before and after,
    and whether the memory alarm went off (vm_memory_high_watermark.absolute = 256MB here);
  - trickling heads: T clients open connections and send their request head one byte a
    second; meanwhile a normal client asks for /api/overview (and scrapes /metrics) every
    half second; the latency of its answers, and how long the tricklers stayed connected.
    Then the same with tricklers that reconnect as soon as they are closed.

usage: bench/mgmt_abuse.py WARREND [--uploads N] [--tricklers T] [--seconds S]
                           [--config 'key = value' ...]

Run it from a build directory (bench/mgmt_abuse.py src/warrend). It takes about 3 S + 30
seconds; nothing in it is a pass or a fail.
"""

import argparse
import base64
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BODY = 64 * 1024 * 1024


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Broker:
    def __init__(self, warrend, extra):
        self.tmp = tempfile.mkdtemp(prefix="warren-abuse.")
        self.mgmt = free_port()
        self.metrics = free_port()
        conf = os.path.join(self.tmp, "warren.conf")
        with open(conf, "w") as f:
            f.write("log.level = info\nmanagement.tcp.ip = 127.0.0.1\n"
                    "management.tcp.port = %d\nprometheus.tcp.ip = 127.0.0.1\n"
                    "prometheus.tcp.port = %d\nvm_memory_high_watermark.absolute = 256MB\n"
                    % (self.mgmt, self.metrics))
            for line in extra:
                f.write(line + "\n")
        self.log_path = os.path.join(self.tmp, "warrend.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([warrend, "-c", conf, "--port", "0", "--data-dir",
                                      os.path.join(self.tmp, "data")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while "ready: listening" not in open(self.log_path).read():
            if time.time() > deadline or self.proc.poll() is not None:
                sys.exit("warrend did not start:\n" + open(self.log_path).read())
            time.sleep(0.1)

    def log_text(self):
        return open(self.log_path).read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def request(port, path, timeout=10.0, auth=("guest", "guest")):
    """Seconds until a complete answer to GET path (None: none within timeout), status."""
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None, None
    head = "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % path
    if auth:
        head += "Authorization: Basic %s\r\n" % base64.b64encode(
            ("%s:%s" % auth).encode()).decode()
    data = b""
    try:
        s.sendall((head + "\r\n").encode())
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                return None, None
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None, None
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d+)", data)
    return time.monotonic() - start, int(m.group(1)) if m else None


def anonymous_uploads(b, n):
    before = rss_kib(b.proc.pid)
    results = [None] * n

    def upload(i):
        start = time.monotonic()
        s = socket.create_connection(("127.0.0.1", b.mgmt), timeout=30)
        s.sendall(b"POST /api/definitions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n" % BODY)
        status, answered_s, sent = None, None, 0
        chunk = b" " * (1024 * 1024)
        s.setblocking(False)
        reply = b""
        while True:
            r, w, _ = select.select([s], [s] if sent < BODY else [], [], 30)
            if not r and not w:
                break
            if r:
                try:
                    got = s.recv(65536)
                except OSError:
                    break
                if not got:
                    break
                reply += got
                m = re.match(rb"HTTP/1\.[01] (\d+)", reply)
                if m and status is None:
                    status, answered_s = int(m.group(1)), time.monotonic() - start
            if w:
                try:
                    sent += s.send(chunk[:BODY - sent])
                except OSError:
                    break
        s.close()
        results[i] = (status, answered_s, sent)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.5)  # one alarm check
    after = rss_kib(b.proc.pid)
    print("anonymous uploads: %d x %d MiB without credentials" % (n, BODY >> 20))
    for i, (status, answered_s, sent) in enumerate(results):
        print("  client %d: answer %s after %s, sent %.1f MiB of the body" %
              (i, status, "%.3f s" % answered_s if answered_s is not None else "-",
               sent / 1048576))
    print("  warrend RSS %.1f MiB before, %.1f MiB after, peak %.1f MiB" %
          (before[0] / 1024, after[0] / 1024, after[1] / 1024))
    print("  memory alarm: %s" % ("went off" if "memory alarm set" in b.log_text()
                                  else "did not go off"))
    t, status = request(b.mgmt, "/api/overview")
    print("  then GET /api/overview: %s %s" % (status, "%.3f s" % t if t else "no answer"))


def connect(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None
    s.setblocking(False)
    return s


def trickle(b, port, path, n, seconds, probe_path, reconnect=False):
    head = ("GET %s HTTP/1.1\r\nHost: x\r\nX-Slow: %s\r\n\r\n" % (path, "a" * 4000)).encode()
    socks, opened, closed = [], [], []
    reconnects = 0
    for _ in range(n):
        s = connect(port)
        if s is None:
            break
        socks.append(s)
        opened.append(time.monotonic())
        closed.append(None)
    pos = [0] * len(socks)
    latencies, stop = [], threading.Event()

    def prober():
        while not stop.is_set():
            t, status = request(port, probe_path, timeout=10.0)
            latencies.append(t)
            time.sleep(0.5)

    p = threading.Thread(target=prober)
    p.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, s in enumerate(socks):
            if closed[i] is not None and reconnect:
                s.close()
                s = connect(port)
                if s is None:
                    continue
                socks[i], opened[i], closed[i], pos[i] = s, time.monotonic(), None, 0
                reconnects += 1
            if closed[i] is not None:
                continue
            try:
                if s.recv(1) == b"":
                    closed[i] = time.monotonic()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic()
                continue
            try:
                s.send(head[pos[i]:pos[i] + 1])
                pos[i] += 1
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic()
        time.sleep(1.0)
    stop.set()
    p.join()
    for s in socks:
        s.close()
    held = [(c if c is not None else time.monotonic()) - o for o, c in zip(opened, closed)]
    answered = [t for t in latencies if t is not None]
    print("trickling heads: %d connections to %s, one byte a second, for %d s%s" %
          (len(socks), path, seconds,
           ", reconnecting when closed (%d reconnections)" % reconnects if reconnect else ""))
    print("  a normal client (%s, every 0.5 s): %d of %d answered; latency max %s, median %s"
          % (probe_path, len(answered), len(latencies),
             "%.3f s" % max(answered) if answered else "-",
             "%.3f s" % sorted(answered)[len(answered) // 2] if answered else "-"))
    done = [h for h, c in zip(held, closed) if c is not None]
    print("  tricklers closed by the broker: %d of %d; held for at most %.1f s (still open: "
          "%d, for %.1f s)" % (len(done), len(socks), max(done) if done else 0,
                               len(socks) - len(done), max(held) if held else 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("warrend")
    ap.add_argument("--uploads", type=int, default=8)
    ap.add_argument("--tricklers", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--config", action="append", default=[])
    a = ap.parse_args()
    b = Broker(a.warrend, a.config)
    try:
        anonymous_uploads(b, a.uploads)
        b.stop()
        b = Broker(a.warrend, a.config)
        trickle(b, b.mgmt, "/api/overview", a.tricklers, a.seconds, "/api/overview")
        b.stop()
        b = Broker(a.warrend, a.config)
        trickle(b, b.metrics, "/metrics", a.tricklers, a.seconds, "/metrics")
        b.stop()
        b = Broker(a.warrend, a.config)
        trickle(b, b.mgmt, "/api/overview", a.tricklers, a.seconds, "/api/overview",
                reconnect=True)
    finally:
        b.stop()


if __name__ == "__main__":
    main()
