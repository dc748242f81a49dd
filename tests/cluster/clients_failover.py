"""Real clients through a failover: the RabbitMQ Java client (Debian's librabbitmq-client-java,
automatic and topology recovery, JavaFailover.java) and pika (a reconnect loop,
pika_failover.py) publish persistent messages with confirms and consume with manual acks,
each on its own durable queue, each connected first through a follower's address, while the
leader is killed with kill -9 (twice). Then each stops, what is left in the queues is drained,
and the logs are checked:
  - every id a client saw confirmed was read (by the client or the drain): lost = 0;
  - after each kill, each client got confirms again and its consumer read again (it really
    recovered, through its own means);
  - a message read twice was redelivered the second time (counted; one read again without the
    flag fails the test).

  clients_failover.py --classes DIR [--kills N] [--keep]

DIR holds JavaFailover.class (clients_failover.sh compiles it); CLASSPATH must reach the
client's jar and slf4j. Exit status 0 when every check held.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as R  # noqa: E402
from cluster_faults import wait_isr  # noqa: E402

import pika  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def read_ids(path, fields=2):
    """{id: [rest of the line as ints]} and the lines in order (id first on each line)."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == fields:
                    rows.append([int(x) for x in parts])
    except OSError:
        pass
    return rows


def drain(rig, queue):
    """Reads what is left in queue through the leader, acking: the ids read."""
    got = []
    leader = rig.leader()
    if leader is None:
        raise RuntimeError("no leader to drain %s through" % queue)
    c = pika.BlockingConnection(pika.ConnectionParameters(leader.host, leader.amqp,
                                                          heartbeat=0, socket_timeout=5))
    ch = c.channel()
    while True:
        m, _p, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            break
        got.append(int(body))
    c.close()
    return got


class Client:
    def __init__(self, name, argv, outdir):
        self.name = name
        self.outdir = outdir
        self.out = open(os.path.join(outdir, name + ".out"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=subprocess.STDOUT)

    def path(self, what):
        return os.path.join(self.outdir, "%s.%s" % (self.name, what))

    def confirmed(self):
        return read_ids(self.path("confirmed"))

    def received(self):
        return read_ids(self.path("received"), 3)

    def lost_after(self, t_ms):
        """When the client had seen each of its connections drop after t_ms (None if not
        yet). Event lines: "MS connected ROLE HOST:PORT", "MS lost ROLE WHY", ..."""
        roles = set()
        first = {}
        try:
            with open(self.path("events")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 3:
                        continue
                    if parts[1] == "connected":
                        roles.add(parts[2])
                    elif parts[1] == "lost" and int(parts[0]) > t_ms:
                        first.setdefault(parts[2], int(parts[0]))
        except (OSError, ValueError):
            return None
        return max(first.values()) if roles and set(first) >= roles else None

    def stop(self, timeout=40):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def tail(self, what, n=15):
        try:
            with open(self.path(what), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def secs(t_ms, since_ms):
    return "%.2f s" % ((t_ms - since_ms) / 1000) if t_ms is not None else "never"


def first_after(rows, t_ms, col=-1):
    """The time of the first row logged after t_ms (None if none)."""
    times = [r[col] for r in rows if r[col] > t_ms]
    return min(times) if times else None


def run(rig, classes, kills, outdir):
    leader = rig.leader()
    if not check(leader is not None, "a leader is elected"):
        return
    check(wait_isr(rig, 3) is not None, "all three nodes join the in-sync set")
    followers = [n for n in rig.nodes if n is not leader]
    addrs = ",".join("%s:%d" % (n.host, n.amqp) for n in rig.nodes)
    java_first = "%s:%d" % (followers[0].host, followers[0].amqp)
    pika_first = "%s:%d" % (followers[1].host, followers[1].amqp)
    print("leader %s; java starts through follower %s, pika through follower %s"
          % (leader.name, followers[0].name, followers[1].name), flush=True)
    clients = [
        Client("java", ["java", "-cp", classes + os.pathsep + os.environ.get("CLASSPATH", ""),
                        "-Dorg.slf4j.simpleLogger.showDateTime=true",
                        "JavaFailover", "failover.java", outdir, java_first, addrs], outdir),
        Client("pika", [sys.executable, os.path.join(HERE, "pika_failover.py"),
                        "failover.pika", outdir, pika_first, addrs], outdir),
    ]
    try:
        ok = wait_for(lambda: all(len(c.confirmed()) > 0 and len(c.received()) > 0
                                  for c in clients), 30)
        if not check(ok, "both clients publish, get confirms and consume through followers"):
            return clients
        time.sleep(2)
        kill_times = []
        for k in range(kills):
            leader = rig.leader()
            wait_isr(rig, 3, timeout=20)
            t_kill = int(time.time() * 1000)
            leader.kill9()
            kill_times.append(t_kill)
            new = None
            t0 = time.monotonic()
            while time.monotonic() - t0 < 15:
                n = rig.leader(timeout=0.3)
                if n is not None and n is not leader:
                    new = n
                    break
            check(new is not None, "kill %d: %s killed, %s leads after %.2f s"
                  % (k + 1, leader.name, new.name if new else "nobody", time.monotonic() - t0))
            for c in clients:
                # Every client loses its connection when the leader dies (a follower drops
                # the connections it relays); recovered = confirms and deliveries again
                # after that loss, not merely after the kill (a confirm already on its way
                # can arrive just after it).
                def progress():
                    lost = c.lost_after(t_kill)
                    if lost is None:
                        return None, None, None
                    return (lost, first_after(c.confirmed(), lost),
                            first_after(c.received(), lost))
                wait_for(lambda: None not in progress(), 30)
                lost, conf, recv = progress()
                check(None not in (lost, conf, recv),
                      "kill %d: %s loses its connection after %s, confirms again after %s "
                      "and reads again after %s" % (k + 1, c.name, secs(lost, t_kill),
                                                      secs(conf, t_kill), secs(recv, t_kill)))
            time.sleep(3)
    finally:
        for c in clients:
            rc = c.stop()
            check(rc == 0, "%s client stops cleanly (exit status %s)" % (c.name, rc))
    for c in clients:
        confirmed = {r[0] for r in c.confirmed()}
        unknown = {r[0] for r in read_ids(c.path("unknown"))}
        nacked = {r[0] for r in read_ids(c.path("nacked"))}
        seen = {}
        redelivered_dups = plain_dups = 0
        for mid, redelivered, _t in c.received():
            if mid in seen:
                if redelivered:
                    redelivered_dups += 1
                else:
                    plain_dups += 1
            seen[mid] = seen.get(mid, 0) + 1
        drained = drain(rig, "failover." + c.name)
        lost = sorted(confirmed - set(seen) - set(drained))
        check(len(confirmed) > 0 and not lost,
              "%s: %d confirmed, %d unknown, %d nacked, %d read by the client, %d drained "
              "after, lost %d %s" % (c.name, len(confirmed), len(unknown), len(nacked),
                                     len(seen), len(drained), len(lost), lost[:20]))
        check(plain_dups == 0, "%s: %d read again with redelivered set, %d without"
              % (c.name, redelivered_dups, plain_dups))
        events = c.tail("events", 40)
        print("--- %s events\n%s" % (c.name, events), end="", flush=True)
    return clients


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", required=True, help="the directory of JavaFailover.class")
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the rig's directory")
    a = ap.parse_args()
    rig = R.Rig(R.warrend_path())
    outdir = os.path.join(rig.root, "clients")
    os.makedirs(outdir)
    clients = None
    try:
        rig.start()
        clients = run(rig, a.classes, a.kills, outdir)
    finally:
        running = [n for n in rig.nodes if n.alive()]
        rig.stop(keep=True)
        # The nodes left are followers that never led or leaders after a failover: each
        # shuts down cleanly on SIGTERM.
        for n in running:
            check(n.proc.returncode == 0, "%s exits 0 on SIGTERM (status %s)"
                  % (n.name, n.proc.returncode))
        # Under ASan/UBSan (scripts/sanitize) a node's report goes to its log.
        for n in rig.nodes:
            text = n.log_text()
            check("Sanitizer" not in text and "runtime error:" not in text,
                  "no sanitizer report in %s's log" % n.name)
        if not a.keep and not failures:
            shutil.rmtree(rig.root, ignore_errors=True)
        if failures:
            print("rig and client logs kept in %s" % rig.root)
            for c in clients or []:
                print("--- last lines of %s's output\n%s" % (c.name, c.tail("out", 30)))
            for n in rig.nodes:
                print("--- last lines of %s's log" % n.name)
                print("\n".join(n.log_text().splitlines()[-25:]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
