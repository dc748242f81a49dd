"""The cluster test rig: three etcd members and three warrend nodes, started by the tests
themselves on loopback (etcd on 127.0.0.1, the nodes on 127.0.0.11-13), each in its own
temporary directory, and a supervisor that restarts a warrend that exits (a leader that loses
its lease exits for its supervisor to start it again as a follower, as systemd would).

The checker is Jepsen's total-queue idea: publishers log every message id as confirmed,
nacked or unknown; consumers ack manually and log every id they read; after the faults a
final drain reads what is left. lost = confirmed ids never read (must be 0); duplicates are
counted (allowed only with redelivered set).

Used by tests/cluster/*.py; nothing here asserts: the tests do.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pika


def free_port(host="127.0.0.1"):
    """A port free on host now, below the kernel's ephemeral range (32768-60999 by default):
    the nodes and etcd members bind their ports again at every restart, and a port from that
    range could meanwhile be taken as the source port of some outgoing connection on the
    machine ("Address already in use" was seen once on a busy machine)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(host, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Etcd:
    """Three etcd members on 127.0.0.1, free ports, their own data dirs."""

    def __init__(self, root, members=3):
        self.root = root
        self.names = ["e%d" % (i + 1) for i in range(members)]
        self.client = {n: free_port() for n in self.names}
        self.peer = {n: free_port() for n in self.names}
        self.procs = {}

    def endpoints(self):
        return ",".join("http://127.0.0.1:%d" % self.client[n] for n in self.names)

    def start(self, name=None):
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, self.peer[n]) for n in self.names)
        for n in [name] if name else self.names:
            d = os.path.join(self.root, "etcd-" + n)
            os.makedirs(d, exist_ok=True)
            log = open(os.path.join(self.root, "etcd-%s.log" % n), "ab")
            self.procs[n] = subprocess.Popen(
                ["etcd", "--name", n, "--data-dir", d,
                 "--listen-client-urls", "http://127.0.0.1:%d" % self.client[n],
                 "--advertise-client-urls", "http://127.0.0.1:%d" % self.client[n],
                 "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer[n],
                 "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer[n],
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "warren-rig",
                 "--heartbeat-interval", "100", "--election-timeout", "1000",
                 "--auto-compaction-retention", "1"],
                stdout=log, stderr=subprocess.STDOUT)
        for n in [name] if name else self.names:
            if not wait_port("127.0.0.1", self.client[n]):
                raise RuntimeError("etcd %s did not start" % n)

    def leader_name(self):
        """The member etcd itself calls leader (None if unknown)."""
        import json as _json
        try:
            out = subprocess.run(["etcdctl", "--endpoints", self.endpoints(), "endpoint",
                                  "status", "-w", "json"], capture_output=True, timeout=5,
                                 env=dict(os.environ, ETCDCTL_API="3")).stdout
            st = _json.loads(out)
        except Exception:
            return None
        by_id = {}
        leader = None
        for e in st:
            port = int(e["Endpoint"].rsplit(":", 1)[1])
            name = [n for n in self.names if self.client[n] == port][0]
            by_id[e["Status"]["header"]["member_id"]] = name
            leader = e["Status"]["leader"]
        return by_id.get(leader)

    def wait_healthy(self, timeout=20.0):
        """True once every member answers healthy (a restarted member has rejoined)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(["etcdctl", "--endpoints", self.endpoints(), "endpoint",
                                "health"], capture_output=True, timeout=10,
                               env=dict(os.environ, ETCDCTL_API="3"))
            if r.returncode == 0:
                return True
            time.sleep(0.3)
        return False

    def kill(self, name):
        p = self.procs.pop(name, None)
        if p:
            p.kill()
            p.wait()

    def stop(self):
        for n in list(self.procs):
            self.kill(n)


class Firewall:
    """nft rules on the loopback output path, in a table of the rig's own (root only):
    cuts between chosen addresses and ports, as the partition tests need."""

    def __init__(self):
        self.table = "warren_rig_%d" % os.getpid()
        self.ok = os.geteuid() == 0 and shutil.which("nft") is not None
        if self.ok:
            r = subprocess.run(["nft", "add table inet %s; add chain inet %s out "
                                "{ type filter hook output priority 0; }"
                                % (self.table, self.table)], capture_output=True)
            self.ok = r.returncode == 0

    def drop(self, rule):
        """rule: an nft match, e.g. 'ip saddr 127.0.0.11 tcp dport 2379'."""
        subprocess.run(["nft", "add rule inet %s out %s drop" % (self.table, rule)], check=True)

    def heal(self):
        subprocess.run(["nft", "flush chain inet %s out" % self.table], check=True)

    def close(self):
        if self.ok:
            subprocess.run(["nft", "delete table inet %s" % self.table], capture_output=True)


class Node:
    """One warrend of the cluster, restarted by the rig's supervisor when it exits (unless
    the test stopped it on purpose)."""

    def __init__(self, rig, index, extra=""):
        self.rig = rig
        self.name = "n%d" % index
        self.host = "127.0.0.%d" % (10 + index)
        self.amqp = free_port(self.host)
        self.http = free_port(self.host)
        self.repl = free_port(self.host)
        self.dir = os.path.join(rig.root, self.name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.conf = os.path.join(self.dir, "warren.conf")
        self.log = os.path.join(self.dir, "warrend.log")
        self.slow_file = os.path.join(self.dir, "slow_fsync")
        self.extra = extra
        self.args = []  # more warrend arguments (--force-leader)
        self.proc = None
        self.wanted = False
        self.starts = 0
        self.write_config()

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("listeners.tcp.default = %s:%d\n" % (self.host, self.amqp))
            f.write("management.tcp.ip = %s\nmanagement.tcp.port = %d\n" % (self.host, self.http))
            f.write("prometheus.tcp.port = 0\n")
            f.write("data_dir = %s\n" % os.path.join(self.dir, "data"))
            f.write("loopback_users = none\n")
            f.write("cluster.enabled = true\n")
            f.write("cluster.name = rig\n")
            f.write("cluster.node_id = %s\n" % self.name)
            f.write("cluster.etcd.endpoints = %s\n" % self.rig.etcd.endpoints())
            f.write("cluster.listen = %s:%d\n" % (self.host, self.repl))
            f.write("cluster.stall_timeout = 2000\n")
            f.write(self.rig.extra_config)
            f.write(self.extra)

    def start(self):
        self.wanted = True
        self.starts += 1
        log = open(self.log, "ab")
        env = dict(os.environ)
        shim = os.environ.get("SLOW_FSYNC_SO")
        if shim:
            # tests/cluster/slow_fsync.c: this node's fsyncs sleep while slow_fsync holds ms.
            env["LD_PRELOAD"] = shim
            env["WARREN_SLOW_FSYNC_FILE"] = self.slow_file
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":verify_asan_link_order=0").lstrip(":")
        self.proc = subprocess.Popen([self.rig.warrend, "-c", self.conf] + self.args, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)

    def slow_disk(self, ms):
        """Every fsync of this node sleeps ms first (0: heals the disk)."""
        if ms:
            with open(self.slow_file + ".tmp", "w") as f:
                f.write(str(ms))
            os.replace(self.slow_file + ".tmp", self.slow_file)
        elif os.path.exists(self.slow_file):
            os.unlink(self.slow_file)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL; the supervisor starts it again after restart_delay."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM; the exit status (0 for a clean stop), None if it was not running."""
        self.wanted = False
        if not self.alive():
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def wipe(self):
        shutil.rmtree(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "data"))

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Rig:
    def __init__(self, warrend, nodes=3, extra_config="", restart_delay=0.5):
        self.root = tempfile.mkdtemp(prefix="warren-cluster.", dir=os.environ.get("TMPDIR"))
        self.warrend = warrend
        self.extra_config = extra_config
        self.restart_delay = restart_delay
        self.etcd = Etcd(self.root)
        self.firewall = Firewall()
        self.nodes = []
        self.stopping = False
        self.etcd.start()
        self.nodes = [Node(self, i + 1) for i in range(nodes)]
        self.supervisor = threading.Thread(target=self._supervise, daemon=True)

    def start(self):
        for n in self.nodes:
            n.start()
        self.supervisor.start()

    def _supervise(self):
        while not self.stopping:
            for n in self.nodes:
                if n.wanted and n.proc is not None and n.proc.poll() is not None:
                    time.sleep(self.restart_delay)
                    if not self.stopping and n.wanted and n.proc.poll() is not None:
                        n.start()
            time.sleep(0.05)

    def leader(self, timeout=15.0):
        """The node whose /api/health/checks/leader answers 200 (None after timeout)."""
        import urllib.request
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.nodes:
                if not n.alive():
                    continue
                req = urllib.request.Request(
                    "http://%s:%d/api/health/checks/leader" % (n.host, n.http))
                req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
                try:
                    with urllib.request.urlopen(req, timeout=1) as r:
                        if r.status == 200:
                            return n
                except Exception:
                    pass
            time.sleep(0.1)
        return None

    def stop(self, keep=False):
        """Stops everything; the nodes' exit statuses on SIGTERM, by name."""
        self.stopping = True
        self.exit_status = {n.name: n.stop() for n in self.nodes}
        self.etcd.stop()
        self.firewall.close()
        # A node that did not stop cleanly is a failure the caller checks afterwards: keep
        # its logs for that.
        if not keep and all(v in (0, None) for v in self.exit_status.values()):
            shutil.rmtree(self.root, ignore_errors=True)


class Checker:
    """Confirmed publishing and acking consumption through given nodes, with reconnects."""

    def __init__(self, nodes, queue="rig.q", rate_per_s=200):
        self.nodes = nodes
        self.queue = queue
        self.rate = rate_per_s
        self.confirmed = set()
        self.nacked = set()
        self.unknown = set()
        self.received = {}
        self.redelivered_dups = 0
        self.plain_dups = 0
        self.next_id = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.outage_start = None
        self.outages = []  # seconds without a confirm, for each failure seen by the publisher
        self.threads = []

    def _connect(self, i):
        n = self.nodes[i % len(self.nodes)]
        params = pika.ConnectionParameters(n.host, n.amqp, connection_attempts=1,
                                           socket_timeout=2, blocked_connection_timeout=5,
                                           heartbeat=0)
        c = pika.BlockingConnection(params)
        ch = c.channel()
        ch.queue_declare(self.queue, durable=True)
        return c, ch

    def _publisher(self, start_index):
        i = start_index
        while not self.stop_flag.is_set():
            try:
                c, ch = self._connect(i)
                ch.confirm_delivery()
                while not self.stop_flag.is_set():
                    with self.lock:
                        mid = self.next_id
                        self.next_id += 1
                    try:
                        ch.basic_publish("", self.queue, str(mid).encode(),
                                         pika.BasicProperties(delivery_mode=2), mandatory=False)
                    except pika.exceptions.NackError:
                        with self.lock:
                            self.nacked.add(mid)
                        continue
                    except Exception:
                        with self.lock:
                            self.unknown.add(mid)
                        raise
                    with self.lock:
                        self.confirmed.add(mid)
                        if self.outage_start is not None:
                            self.outages.append(time.monotonic() - self.outage_start)
                            self.outage_start = None
                    time.sleep(1.0 / self.rate)
            except Exception:
                with self.lock:
                    if self.outage_start is None:
                        self.outage_start = time.monotonic()
                i += 1
                time.sleep(0.1)

    def _consumer(self, start_index, drain=False):
        i = start_index
        idle_since = time.monotonic()
        while not self.stop_flag.is_set() or drain:
            try:
                c, ch = self._connect(i)
                ch.basic_qos(prefetch_count=50)
                for method, props, body in ch.consume(self.queue, inactivity_timeout=0.5):
                    if method is None:
                        if drain and time.monotonic() - idle_since > 3:
                            c.close()
                            return
                        if self.stop_flag.is_set() and not drain:
                            break
                        continue
                    idle_since = time.monotonic()
                    mid = int(body)
                    with self.lock:
                        if mid in self.received:
                            if method.redelivered:
                                self.redelivered_dups += 1
                            else:
                                self.plain_dups += 1
                        self.received[mid] = self.received.get(mid, 0) + 1
                    ch.basic_ack(method.delivery_tag)
                c.close()
            except Exception:
                i += 1
                time.sleep(0.1)

    def start(self, publishers=1, consumers=1):
        for k in range(publishers):
            t = threading.Thread(target=self._publisher, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)
        for k in range(consumers):
            t = threading.Thread(target=self._consumer, args=(k + 1,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout=60):
        """Stops the load, drains the queue through any node, returns the figures."""
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)
        drainer = threading.Thread(target=self._consumer, args=(0, True), daemon=True)
        drainer.start()
        drainer.join(timeout)
        lost = sorted(self.confirmed - set(self.received))
        return {
            "confirmed": len(self.confirmed),
            "nacked": len(self.nacked),
            "unknown": len(self.unknown),
            "received": len(self.received),
            "lost": len(lost),
            "lost_ids": lost[:20],
            "duplicates_redelivered": self.redelivered_dups,
            "duplicates_plain": self.plain_dups,
            "outages_s": [round(x, 3) for x in self.outages],
        }


def warrend_path():
    path = os.environ.get("WARREND")
    if not path or not os.access(path, os.X_OK):
        sys.stderr.write("WARREND is not set to an executable warrend\n")
        sys.exit(99)
    return path
