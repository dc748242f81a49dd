#!/usr/bin/python3
"""What management work costs AMQP clients: the round trips of a pinging AMQP client
(tests/interop/rtt_probe.py: queue.declare passive, over and over) while the broker

  idle     does nothing else (the floor),
  poll     answers GET /api/queues, one request after another, with --queues queues,
  export   answers GET /api/definitions, one request after another, with --queues durable
           queues,
  import   imports --import-queues durable queues (POST /api/definitions) into a fresh
           broker.

Each scenario runs on a warrend of its own (temporary data directory, free ports). Prints
one "key=value" line per scenario and run, and the medians over the runs:

  scenario=poll run=1 queues=20000 requests=5 request_ms=... response_bytes=... pings=...
      p50_ms=... p99_ms=... max_ms=...

Usage: mgmt_stall.py WARREND [--runs N] [--queues N] [--import-queues N] [--requests N]
                     [--only idle|poll|export|import]
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "interop"))
import rtt_probe  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """A warrend with its management API, in a temporary directory."""

    def __init__(self, warrend):
        self.dir = tempfile.mkdtemp(prefix="warren-mgmt-stall.")
        self.mgmt_port = free_port()
        with open(os.path.join(self.dir, "warren.conf"), "w") as f:
            f.write("log.level = info\nmanagement.tcp.port = %d\n"
                    "management.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 0\n" % self.mgmt_port)
        self.log = open(os.path.join(self.dir, "warrend.log"), "w+")
        self.proc = subprocess.Popen([warrend, "-c", os.path.join(self.dir, "warren.conf"),
                                      "--port", "0", "--data-dir", os.path.join(self.dir, "data")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        self.port = None
        while self.port is None:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("warrend did not start; see %s" % self.log.name)
            time.sleep(0.05)
            with open(self.log.name) as f:
                for line in f:
                    if "ready: listening on " in line:
                        self.port = int(line.split("ready: listening on ")[1].split()[0]
                                        .rsplit(":", 1)[1])

    def call(self, method, path, body=None, timeout=600):
        conn = http.client.HTTPConnection("127.0.0.1", self.mgmt_port, timeout=timeout)
        headers = {"Authorization": AUTH}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.status >= 300:
            raise RuntimeError("%s %s: %d %r" % (method, path, r.status, data[:300]))
        return data

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def definitions(n, durable):
    return json.dumps({"queues": [{"name": "stall.%06d" % i, "vhost": "/", "durable": durable,
                                   "auto_delete": False, "arguments": {}}
                                  for i in range(n)]})


def scenario_idle(warrend, args):
    b = Broker(warrend)
    try:
        probe = rtt_probe.start("127.0.0.1", b.port, "stall.probe")
        time.sleep(2)
        return {"seconds": 2}, probe.stop()
    finally:
        b.stop()


def scenario_poll(warrend, args):
    b = Broker(warrend)
    try:
        b.call("POST", "/api/definitions", definitions(args.queues, False))
        probe = rtt_probe.start("127.0.0.1", b.port, "stall.probe")
        times, size = [], 0
        for _ in range(args.requests):
            t0 = time.perf_counter()
            size = len(b.call("GET", "/api/queues"))
            times.append((time.perf_counter() - t0) * 1000)
        figures = probe.stop()
        return {"queues": args.queues, "requests": args.requests,
                "request_ms": round(statistics.median(times), 1), "response_bytes": size}, figures
    finally:
        b.stop()


def scenario_export(warrend, args):
    b = Broker(warrend)
    try:
        b.call("POST", "/api/definitions", definitions(args.queues, True))
        probe = rtt_probe.start("127.0.0.1", b.port, "stall.probe")
        times, size = [], 0
        for _ in range(args.requests):
            t0 = time.perf_counter()
            size = len(b.call("GET", "/api/definitions"))
            times.append((time.perf_counter() - t0) * 1000)
        figures = probe.stop()
        return {"queues": args.queues, "requests": args.requests,
                "request_ms": round(statistics.median(times), 1), "response_bytes": size}, figures
    finally:
        b.stop()


def scenario_import(warrend, args):
    b = Broker(warrend)
    try:
        doc = definitions(args.import_queues, True)
        probe = rtt_probe.start("127.0.0.1", b.port, "stall.probe")
        t0 = time.perf_counter()
        b.call("POST", "/api/definitions", doc)
        took = time.perf_counter() - t0
        figures = probe.stop()
        return {"queues": args.import_queues, "import_s": round(took, 2)}, figures
    finally:
        b.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("warrend")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--queues", type=int, default=20000)
    p.add_argument("--import-queues", type=int, default=30000)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--only", choices=["idle", "poll", "export", "import"])
    args = p.parse_args()
    scenarios = [("idle", scenario_idle), ("poll", scenario_poll), ("export", scenario_export),
                 ("import", scenario_import)]
    for name, fn in scenarios:
        if args.only not in (None, name):
            continue
        rows = []
        for run in range(1, args.runs + 1):
            extra, figures = fn(args.warrend, args)
            row = dict(extra)
            row.update({"pings": figures["count"], "p50_ms": figures["p50_ms"],
                        "p99_ms": figures["p99_ms"], "max_ms": figures["max_ms"]})
            rows.append(row)
            print("scenario=%s run=%d %s" % (name, run,
                                             " ".join("%s=%s" % kv for kv in row.items())),
                  flush=True)
        medians = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print("scenario=%s median %s" % (name, " ".join("%s=%s" % kv for kv in medians.items())),
              flush=True)


if __name__ == "__main__":
    main()
