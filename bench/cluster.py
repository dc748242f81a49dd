#!/usr/bin/python3
"""Cluster mode against one node: the figures of CLUSTERING.md §5 that a benchmark can give,
measured on this machine in one run, as ratios against a single warrend.

Each run starts a single warrend (cluster.enabled = false) and a 3-node cluster (three etcd
members, three warrend, tests/cluster/rig.py), one after the other (the order alternates run
by run), each on fresh data directories in the same temporary directory (same filesystem,
same fsync settings: the defaults), and measures on each, with warren-perf connected to the
single node or to the cluster's leader:

  persistent  persistent messages into a durable queue, publisher confirms (1000 in flight),
              one consumer acking every 100 (prefetch 1000): S3 of bench/compare. Figure:
              confirmed messages per second.
  publish     persistent messages published with confirms (10,000 in flight), no consumer:
              the confirmed-publish ceiling, where the window hides the replication round
              trip. Figure: confirmed messages per second.
  transient   transient messages, no confirms, no-ack consumer: S1. Figure: received per
              second.
  latency     confirm latency: one publisher (this script, confirm_probe()) sends persistent
              messages at a fixed rate and times each from its send to the basic.ack that
              covers it. Figures: p50, p99, max. bench/stall-probe runs for 2 s before.

and on the cluster only:

  catchup     a follower stopped with SIGTERM (it exits) for 60 s while the leader takes
              persistent load: first a backlog the follower will have to copy (published with
              confirms at --away-rate and kept), then a steady 2,000 msg/s with a consumer
              alone for the last 21 s, so that the leader's loop_turn_max_ms (its longest loop
              turn of the last 10 to 20 s) forgets the backlog's publishing; then the follower
              is started again under the steady load. Figures: seconds from its start to its
              name in the leader's "isr" with the leader seeing it live, the data it had to
              copy, and the leader's loop_turn_max_ms read every 0.1 s during the catch-up
              (and 3 s after), against the same figure just before the restart.

Every scenario also records the CPU time the brokers, etcd, warren-perf and everything else
on the machine used meanwhile (from /proc), to say what limited it.

Prints one `key=value` line per measurement as it goes, then a Markdown table of medians.
All processes it started are stopped on exit, Ctrl-C and SIGTERM included.

Usage: cluster.py --warrend PATH --perf PATH [--stall-probe PATH] [-n RUNS] [-t SECONDS]
                  [--away SECONDS] [--away-rate MSGS_PER_S] [--rate MSGS_PER_S]
                  [--only persistent,publish,transient,latency,catchup] [--keep DIR]
                  [--persistent-args ARGS] [--publish-args ARGS] [--transient-args ARGS]
"""

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import rig as R  # noqa: E402
import rtt_probe  # noqa: E402

AUTH = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest
TICKS = os.sysconf("SC_CLK_TCK")
STEADY_RATE = 2000  # msg/s of the steady load around a catch-up
WINDOW_FORGET_S = 21  # loop_turn_max_ms covers the last 10 to 20 s


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- CPU accounting ------------------------------------------------------------------------


def proc_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_s():
    """CPU seconds every process of the machine used so far (all cores, idle and iowait
    left out)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TICKS


class CpuMeter:
    """CPU used by named groups of processes between start() and stop(), in % of one core."""

    def __init__(self, groups):
        self.groups = groups  # name -> list of pids

    def start(self):
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.cpu0 = {g: sum(proc_cpu_s(p) for p in pids) for g, pids in self.groups.items()}

    def stop(self, tool_cpu_s=0.0):
        wall = time.monotonic() - self.t0
        out = {}
        ours = tool_cpu_s
        for g, pids in self.groups.items():
            used = sum(proc_cpu_s(p) for p in pids) - self.cpu0[g]
            ours += used
            out[g + "_cpu_pct"] = round(100.0 * used / wall)
        out["tool_cpu_pct"] = round(100.0 * tool_cpu_s / wall)
        out["others_cpu_pct"] = round(100.0 * max(0.0, machine_busy_s() - self.busy0 - ours)
                                      / wall)
        return out


# ---- The brokers ---------------------------------------------------------------------------


class Single:
    """One warrend with cluster.enabled = false, configured as the rig's nodes are otherwise
    (same address block, management listener on, data directory beside theirs)."""

    def __init__(self, warrend, root):
        self.warrend = warrend
        self.name = "single"
        self.host = "127.0.0.11"
        self.amqp = R.free_port(self.host)
        self.http = R.free_port(self.host)
        self.dir = os.path.join(root, "single")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.conf = os.path.join(self.dir, "warren.conf")
        with open(self.conf, "w") as f:
            f.write("listeners.tcp.default = %s:%d\n" % (self.host, self.amqp))
            f.write("management.tcp.ip = %s\nmanagement.tcp.port = %d\n"
                    % (self.host, self.http))
            f.write("prometheus.tcp.port = 0\n")
            f.write("data_dir = %s\n" % os.path.join(self.dir, "data"))
            f.write("loopback_users = none\n")
            f.write("cluster.enabled = false\n")
        self.proc = subprocess.Popen([warrend, "-c", self.conf],
                                     stdout=open(os.path.join(self.dir, "warrend.log"), "ab"),
                                     stderr=subprocess.STDOUT)
        try:
            if not R.wait_port(self.host, self.amqp, 10):
                raise RuntimeError("the single warrend did not start (see %s/warrend.log)"
                                   % self.dir)
        except BaseException:
            self.stop()
            raise

    def pids(self):
        return {"broker": [self.proc.pid]}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def api(node, path, timeout=2):
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.http, path))
    req.add_header("Authorization", AUTH)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def cluster_ready(rig, timeout=60.0):
    """The leader once all three nodes are in its ISR and live (raises after timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = rig.leader(timeout=2)
        if leader is not None:
            try:
                st = api(leader, "/api/cluster/status")
                live = {f["name"] for f in st.get("followers", []) if f.get("live")}
                if len(st.get("isr", [])) == 3 and set(st["isr"]) - {leader.name} <= live:
                    return leader
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
    raise RuntimeError("the cluster did not get a leader with 3 in-sync nodes in %.0f s"
                       % timeout)


class Cluster:
    name = "cluster"

    def __init__(self, warrend, root):
        os.environ["TMPDIR"] = root  # the rig makes its directory there
        self.rig = R.Rig(warrend)
        try:
            self.rig.start()
            self.leader = cluster_ready(self.rig)
        except BaseException:
            self.stop()
            raise
        self.host, self.amqp, self.http = self.leader.host, self.leader.amqp, self.leader.http

    def followers(self):
        return [n for n in self.rig.nodes if n is not self.leader]

    def pids(self):
        return {"broker": [self.leader.proc.pid],
                "followers": [n.proc.pid for n in self.followers() if n.alive()],
                "etcd": [p.pid for p in self.rig.etcd.procs.values()]}

    def stop(self):
        rig = self.rig
        rig.stopping = True
        time.sleep(rig.restart_delay + 0.2)  # the supervisor restarts nothing from here on
        for n in rig.nodes:
            n.stop()
        rig.etcd.stop()


# ---- Load ----------------------------------------------------------------------------------


# warren-perf's options for each throughput scenario
PERF_ARGS = {
    # S3 of bench/compare: 1 producer, 1000 confirms in flight, a consumer acking every 100
    "persistent": "--persistent -c 1000 -q 1000 --ack-every 100",
    # publish-only with confirms, 10,000 in flight: the confirmed-publish ceiling, where the
    # window hides the replication round trip (the queue grows, paged to disk)
    "publish": "--persistent -y 0 -c 10000",
    # S1: transient messages, no confirms, a no-ack consumer
    "transient": "-a",
}
PERF_KINDS = ("persistent", "publish", "transient")


def perf_args(kind):
    return PERF_ARGS[kind].split()


def parse_result(out):
    for line in out.splitlines():
        if line.startswith("result ") or line.startswith("error "):
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            kv["_ok"] = line.startswith("result ")
            if not kv["_ok"]:
                kv["reason"] = line.split("reason=", 1)[-1]
            return kv
    return {"_ok": False, "reason": "no result line: " + out[-300:]}


LOADS = set()  # warren-perf processes running, stopped on the way out


def start_perf(perf, broker, args, queue):
    p = subprocess.Popen([perf, "-h", broker.host, "-p", str(broker.amqp), "-u", queue,
                             "--quiet", "--broker-pid", str(broker.pids()["broker"][0])]
                         + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LOADS.add(p)
    return p


def run_perf(perf, broker, args, queue, seconds):
    p = start_perf(perf, broker, args + ["-z", str(seconds)], queue)
    try:
        out, err = p.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    LOADS.discard(p)
    res = parse_result(out)
    if not res["_ok"]:
        res["reason"] = res.get("reason", "") + " " + err.strip()[-300:]
    return res


def num(res, key):
    try:
        return float(res[key])
    except (KeyError, ValueError):
        return None


# ---- Confirm latency -----------------------------------------------------------------------


def confirm_probe(host, port, queue, rate, seconds, warmup_s=1.0, body=64):
    """Publishes persistent messages to a durable queue at a fixed rate with confirms and
    times each from its send to the basic.ack (or nack) covering it. Returns the latencies
    in ms after warmup_s, and the count of nacks."""
    c = rtt_probe.Client(host, port)
    sock = c.sock
    sock.sendall(rtt_probe._method(1, 85, 10, b"\0"))  # confirm.select
    c.expect(85, 11)
    sock.sendall(rtt_probe._method(1, 50, 10, b"\0\0" + rtt_probe._shortstr(queue) + b"\x02"
                                   + struct.pack(">I", 0)))  # queue.declare durable
    c.expect(50, 11)
    payload = b"x" * body
    publish = rtt_probe._method(1, 60, 40, b"\0\0" + rtt_probe._shortstr("") +
                                rtt_probe._shortstr(queue) + b"\0")
    header_payload = struct.pack(">HHQH", 60, 0, len(payload), 0x1000) + b"\x02"
    header = struct.pack(">BHI", 2, 1, len(header_payload)) + header_payload + b"\xce"
    bodyf = struct.pack(">BHI", 3, 1, len(payload)) + payload + b"\xce"
    message = publish + header + bodyf

    sent_at = {}  # delivery tag -> send time
    lat_ms = []
    nacks = 0
    next_tag = 1
    oldest = 1
    t0 = time.monotonic()
    end = t0 + seconds
    sock.setblocking(False)
    buf = b""
    while True:
        now = time.monotonic()
        if now >= end and oldest == next_tag:
            break
        if now >= end + 30:
            raise RuntimeError("confirms missing 30 s after the last publish")
        due = t0 + (next_tag - 1) / rate
        if now < end and now >= due:
            sock.setblocking(True)
            sock.sendall(message)
            sock.setblocking(False)
            sent_at[next_tag] = time.monotonic()
            next_tag += 1
            continue
        wait = max(0.0, min(due - now, 0.05)) if now < end else 0.05
        r, _, _ = select.select([sock], [], [], wait)
        if not r:
            continue
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the broker closed the connection")
        buf += data
        got_at = time.monotonic()
        while len(buf) >= 7:
            ftype, _, size = struct.unpack(">BHI", buf[:7])
            if len(buf) < 8 + size:
                break
            p = buf[7:7 + size]
            buf = buf[8 + size:]
            cls, meth = struct.unpack(">HH", p[:4])
            if (cls, meth) in ((60, 80), (60, 120)):  # basic.ack, basic.nack
                tag = struct.unpack(">Q", p[4:12])[0]
                multiple = p[12] & 1
                first = oldest if multiple else tag
                for t in range(first, tag + 1):
                    s = sent_at.pop(t, None)
                    if s is None:
                        continue
                    if meth == 120:
                        nacks += 1
                    elif s - t0 >= warmup_s:
                        lat_ms.append((got_at - s) * 1000.0)
                while oldest < next_tag and oldest not in sent_at:
                    oldest += 1
            elif (cls, meth) in ((10, 50), (20, 40)):
                raise ConnectionError("the broker closed: %r" % p[:120])
    sock.setblocking(True)
    sock.sendall(rtt_probe._method(1, 50, 40, b"\0\0" + rtt_probe._shortstr(queue) + b"\0"))
    sock.close()
    return lat_ms, nacks


def pct(sorted_values, p):
    return rtt_probe.percentile(sorted_values, p)


# ---- Scenarios -----------------------------------------------------------------------------


def measure_perf(args, broker, kind, run):
    meter = CpuMeter(broker.pids())
    meter.start()
    res = run_perf(args.perf, broker, perf_args(kind), "bench-%s-%d" % (kind, run), args.t)
    row = {"scenario": kind, "broker": broker.name, "run": run, "ok": int(res["_ok"])}
    row.update(meter.stop(num(res, "tool_cpu_s") or 0.0))
    if not res["_ok"]:
        row["reason"] = res.get("reason", "?").replace(" ", "_")
        return row
    dur = num(res, "duration_s") or args.t
    for key in ("sent", "received", "confirmed"):
        n = num(res, key + "_msgs")
        row[key + "_per_s"] = round(n / dur) if n is not None else None
    if "-c" in perf_args(kind):
        row["nacked"] = res.get("nacked_msgs")
    for p in ("p50", "p99"):
        us = num(res, p + "_us")
        row["e2e_%s_ms" % p] = round(us / 1000, 2) if us is not None else None
    return row


def stall_probe(path, seconds=2):
    """bench/stall-probe's line as a dict: what the machine itself does to latency now."""
    try:
        out = subprocess.run([path, str(seconds)], capture_output=True, text=True,
                             timeout=seconds + 10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    for line in out.splitlines():
        if line.startswith("stalls "):
            return dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
    return {}


def measure_latency(args, broker, run):
    stalls = stall_probe(args.stall_probe) if args.stall_probe else {}
    meter = CpuMeter(broker.pids())
    meter.start()
    row = {"scenario": "latency", "broker": broker.name, "run": run, "rate": args.rate}
    cpu0 = time.process_time()
    try:
        lat, nacks = confirm_probe(broker.host, broker.amqp, "bench-latency-%d" % run,
                                   args.rate, args.t)
        lat.sort()
        row.update(ok=1, confirms=len(lat), nacks=nacks, p50_ms=round(pct(lat, 50), 3),
                   p99_ms=round(pct(lat, 99), 3), p999_ms=round(pct(lat, 99.9), 3),
                   max_ms=round(lat[-1], 3) if lat else None)
    except (OSError, ConnectionError, RuntimeError) as e:
        row.update(ok=0, reason=str(e).replace(" ", "_"))
    row.update(meter.stop(time.process_time() - cpu0))
    row["stalls_over_1ms"] = stalls.get("over_1ms")
    row["stall_max_us"] = stalls.get("max_us")
    return row


def du_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def follower_view(st, name):
    for f in st.get("followers", []):
        if f.get("name") == name:
            return f
    return {}


def measure_catchup(args, cl, run):
    """One follower away for args.away seconds under persistent load, then back: how long
    until it is in the ISR again, and the leader's longest loop turn meanwhile."""
    leader = cl.leader
    f = cl.followers()[0]
    row = {"scenario": "catchup", "broker": "cluster", "run": run, "follower": f.name,
           "away_s": args.away}
    heavy_s = max(0, args.away - WINDOW_FORGET_S)
    f.stop()  # SIGTERM: it exits, and the supervisor leaves it down (not wanted)
    t_down = time.monotonic()
    # A steady load the whole time, so that the leader has clients during the catch-up...
    steady = start_perf(args.perf, cl, ["--persistent", "-c", "1000", "-q", "1000",
                                        "--ack-every", "100", "-r", str(STEADY_RATE),
                                        "-z", str(args.away + 600)],
                        "bench-steady-%d" % run)
    try:
        # ... and first a backlog the follower will have to copy: persistent messages
        # published with confirms and kept (no consumer, the queue stays).
        heavy = {"_ok": True}
        if heavy_s > 0:
            heavy = run_perf(args.perf, cl, ["--persistent", "-y", "0", "-c", "10000", "-r",
                                             str(args.away_rate), "--keep"],
                             "bench-away-%d" % run, heavy_s)
        row["away_load_ok"] = int(heavy["_ok"])
        row["away_confirmed"] = int(num(heavy, "confirmed_msgs") or 0)
        # The rest of the time away under the steady load alone: the loop_turn_max_ms window
        # (10 to 20 s) forgets the backlog's publishing.
        while time.monotonic() - t_down < args.away:
            time.sleep(0.1)
        st = api(leader, "/api/cluster/status")
        row["follower_in_isr_before"] = int(f.name in st.get("isr", []))
        row["loop_turn_max_ms_before"] = st.get("loop_turn_max_ms")
        row["leader_data_mb"] = round(du_bytes(os.path.join(leader.dir, "data")) / 1e6, 1)
        row["follower_data_mb"] = round(du_bytes(os.path.join(f.dir, "data")) / 1e6, 1)
        meter = CpuMeter({"broker": [leader.proc.pid], "follower": [],
                          "etcd": [p.pid for p in cl.rig.etcd.procs.values()]})
        meter.start()
        t0 = time.monotonic()
        f.start()
        meter.groups["follower"] = [f.proc.pid]
        meter.cpu0["follower"] = 0.0
        connected = joined = None
        samples = []
        while True:
            now = time.monotonic()
            if joined is None and now - t0 > 180:
                break
            if joined is not None and now - joined > 3:
                break
            try:
                st = api(leader, "/api/cluster/status", timeout=5)
            except (OSError, ValueError):
                time.sleep(0.1)
                continue
            samples.append(st.get("loop_turn_max_ms") or 0)
            fv = follower_view(st, f.name)
            if connected is None and fv.get("connected"):
                connected = time.monotonic()
            if joined is None and f.name in st.get("isr", []) and fv.get("live"):
                joined = time.monotonic()
            time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
        row.update(meter.stop())
        row["ok"] = int(joined is not None and heavy["_ok"])
        row["connected_s"] = round(connected - t0, 2) if connected else None
        row["catchup_s"] = round(joined - t0, 2) if joined else None
        row["loop_turn_max_ms"] = max(samples) if samples else None
        row["samples"] = len(samples)
        # What the follower holds now, against what it had: what it copied (the leader's
        # data directory also holds its paging area, which is not replicated).
        row["follower_data_mb_after"] = round(du_bytes(os.path.join(f.dir, "data")) / 1e6, 1)
        row["copied_mb"] = round(row["follower_data_mb_after"] - row["follower_data_mb"], 1)
        if joined:
            row["copy_mb_per_s"] = round(row["copied_mb"] / max(0.01, joined - (connected or t0)))
    finally:
        steady.terminate()
        steady.wait()
        LOADS.discard(steady)
    return row


# ---- Report --------------------------------------------------------------------------------


def median(rows, key):
    v = [r[key] for r in rows if r.get("ok") and r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    if digits == 0:
        return "{:,}".format(int(round(x)))
    return ("{:,.%df}" % digits).format(x)


def table(rows, runs):
    def pick(kind, broker):
        return [r for r in rows if r["scenario"] == kind and r["broker"] == broker]

    def vals(kind, broker, key, digits=0):
        return " / ".join(fmt(r.get(key), digits) if r.get("ok") else "fail"
                          for r in pick(kind, broker))

    out = ["| figure | one node | cluster (leader) | cluster/one | goal | runs: one node; cluster |",
           "|---|---:|---:|---:|---|---|"]

    def ratio_row(label, kind, key, goal, goal_ok):
        a, b = median(pick(kind, "single"), key), median(pick(kind, "cluster"), key)
        r = b / a if a and b is not None else None
        mark = "" if r is None else (" ✓" if goal_ok(r) else " ✗")
        out.append("| %s | %s | %s | %s | %s%s | %s; %s |" % (
            label, fmt(a), fmt(b), fmt(r, 2), goal, mark, vals(kind, "single", key),
            vals(kind, "cluster", key)))

    ratio_row("1. persistent + confirms: confirmed msg/s", "persistent", "confirmed_per_s",
              "≥ 0.7", lambda r: r >= 0.7)
    a, b = median(pick("persistent", "single"), "e2e_p99_ms"), median(pick("persistent", "cluster"), "e2e_p99_ms")
    out.append("| 1. (same runs) end-to-end latency p99 ms, warren-perf | %s | %s | | | %s; %s |" % (
        fmt(a, 2), fmt(b, 2), vals("persistent", "single", "e2e_p99_ms", 2),
        vals("persistent", "cluster", "e2e_p99_ms", 2)))
    ratio_row("1b. persistent publish-only, 10,000 confirms in flight: confirmed msg/s",
              "publish", "confirmed_per_s", "≥ 0.7", lambda r: r >= 0.7)
    ratio_row("2. transient, no confirms: received msg/s", "transient", "received_per_s",
              "≥ 0.9", lambda r: r >= 0.9)
    a = median(pick("latency", "single"), "p99_ms")
    b = median(pick("latency", "cluster"), "p99_ms")
    d = b - a if a is not None and b is not None else None
    out.append("| 3. confirm latency p99 ms (%s msg/s) | %s | %s | %s (+ms) | ≤ +2 ms%s | %s; %s |" % (
        rows and next((r["rate"] for r in rows if r["scenario"] == "latency"), "?"),
        fmt(a, 2), fmt(b, 2), fmt(d, 2) if d is not None else "n/a",
        "" if d is None else (" ✓" if d <= 2.0 else " ✗"),
        vals("latency", "single", "p99_ms", 2), vals("latency", "cluster", "p99_ms", 2)))
    for key, label in (("p50_ms", "3. confirm latency p50 ms"), ("max_ms", "3. confirm latency max ms")):
        a = median(pick("latency", "single"), key)
        b = median(pick("latency", "cluster"), key)
        out.append("| %s | %s | %s | | | %s; %s |" % (label, fmt(a, 2), fmt(b, 2),
                   vals("latency", "single", key, 2), vals("latency", "cluster", key, 2)))

    def stall(broker):
        rs = [r for r in pick("latency", broker) if r.get("stalls_over_1ms") is not None]
        return " / ".join("%s, %s µs" % (r["stalls_over_1ms"], r["stall_max_us"]) for r in rs)
    if any(r.get("stalls_over_1ms") is not None for r in rows):
        out.append("| 3. machine: stalls > 1 ms in 2 s before each latency run, longest "
                   "(stall-probe) | | | | | %s; %s |" % (stall("single"), stall("cluster")))
    cu = pick("catchup", "cluster")
    if cu:
        def c(key, digits=0):
            return fmt(median(cu, key), digits)

        def cv(key, digits=0):
            return " / ".join(fmt(r.get(key), digits) if r.get("ok") else "fail" for r in cu)
        out.append("| 4. catch-up after %ss away: s from the start to the ISR | | %s | | copy + 5 s | %s |" % (
            cu[0]["away_s"], c("catchup_s", 2), cv("catchup_s", 2)))
        out.append("| 4. leader loop_turn_max_ms during catch-up | | %s | | < 50%s | %s |" % (
            c("loop_turn_max_ms", 1),
            "" if median(cu, "loop_turn_max_ms") is None
            else (" ✓" if all(r.get("loop_turn_max_ms", 1e9) < 50 for r in cu if r.get("ok"))
                  else " ✗"), cv("loop_turn_max_ms", 1)))
        out.append("| 4. (before the restart, steady load) loop_turn_max_ms | | %s | | | %s |" % (
            c("loop_turn_max_ms_before", 1), cv("loop_turn_max_ms_before", 1)))
        out.append("| 4. MB the follower copied (leader's data directory, paging included) | | %s (%s) | | | %s |"
                   % (c("copied_mb", 1), c("leader_data_mb", 1), cv("copied_mb", 1)))
        out.append("| 4. s from the start to connected; copy MB/s after | | %s; %s | | | %s; %s |"
                   % (c("connected_s", 2), c("copy_mb_per_s"), cv("connected_s", 2),
                      cv("copy_mb_per_s")))
    cpu = ["", "CPU, % of one core, medians (broker = the single node or the leader):", "",
           "| scenario | on | broker | followers | etcd | warren-perf / probe | other processes |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for kind in PERF_KINDS + ("latency", "catchup"):
        for broker in ("single", "cluster"):
            rs = pick(kind, broker)
            if not rs:
                continue
            cpu.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                kind, broker, fmt(median(rs, "broker_cpu_pct")),
                fmt(median(rs, "follower_cpu_pct" if kind == "catchup" else "followers_cpu_pct"))
                if broker == "cluster" else "",
                fmt(median(rs, "etcd_cpu_pct")) if broker == "cluster" else "",
                fmt(median(rs, "tool_cpu_pct")), fmt(median(rs, "others_cpu_pct"))))
    return "\n".join(out + cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warrend", required=True)
    ap.add_argument("--perf", required=True)
    ap.add_argument("--stall-probe", help="bench/stall-probe, run for 2 s before each "
                    "latency measurement")
    ap.add_argument("-n", type=int, default=3, help="runs (3)")
    ap.add_argument("-t", type=int, default=10, help="seconds per measurement (10)")
    ap.add_argument("--away", type=int, default=60,
                    help="seconds the follower is down in the catch-up (60)")
    ap.add_argument("--rate", type=int, default=2000,
                    help="confirm-latency probe: messages per second (2000)")
    ap.add_argument("--away-rate", type=int, default=200000,
                    help="catch-up: msg/s published (with confirms, no consumer, the queue "
                    "kept) while the follower is away (200000)")
    for kind in PERF_KINDS:
        ap.add_argument("--%s-args" % kind, default=PERF_ARGS[kind],
                        help="warren-perf options of the %s scenario (%s)"
                        % (kind, PERF_ARGS[kind]))
    ap.add_argument("--only", default=",".join(PERF_KINDS + ("latency", "catchup")))
    ap.add_argument("--keep", help="keep logs and data in this directory")
    args = ap.parse_args()
    only = set(args.only.split(","))
    for kind in PERF_KINDS:
        PERF_ARGS[kind] = getattr(args, kind + "_args")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    root = tempfile.mkdtemp(prefix="warren-bench-cluster.", dir=args.keep or None)
    rows = []
    running = []
    t_start = time.monotonic()
    with open("/proc/loadavg") as fl:
        load_before = " ".join(fl.read().split()[:3])
    try:
        for run in range(1, args.n + 1):
            order = ("single", "cluster") if run % 2 else ("cluster", "single")
            for which in order:
                d = os.path.join(root, "run%d-%s" % (run, which))
                os.makedirs(d)
                b = Single(args.warrend, d) if which == "single" else Cluster(args.warrend, d)
                running.append(b)
                time.sleep(1)
                for kind in PERF_KINDS:
                    if kind in only:
                        rows.append(measure_perf(args, b, kind, run))
                        print(" ".join("%s=%s" % kv for kv in rows[-1].items()), flush=True)
                if "latency" in only:
                    rows.append(measure_latency(args, b, run))
                    print(" ".join("%s=%s" % kv for kv in rows[-1].items()), flush=True)
                if which == "cluster" and "catchup" in only:
                    rows.append(measure_catchup(args, b, run))
                    print(" ".join("%s=%s" % kv for kv in rows[-1].items()), flush=True)
                b.stop()
                running.remove(b)
                if not args.keep:
                    shutil.rmtree(d, ignore_errors=True)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
    finally:
        for p in list(LOADS):
            p.kill()
            p.wait()
        for b in running:
            try:
                b.stop()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (type(b).__name__, e))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    with open("/proc/loadavg") as fl:
        load_after = " ".join(fl.read().split()[:3])
    print()
    print(table(rows, args.n))
    print()
    print("runs=%d seconds=%d load_before=%s load_after=%s elapsed_s=%.0f%s" % (
        args.n, args.t, load_before, load_after, time.monotonic() - t_start,
        " kept=" + root if args.keep else ""))
    return 0 if rows and all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
