"""TLS on the replication port and the catch-up rate, on a 3-node loopback cluster
(tests/cluster/rig.py): every node has cluster.tls.* (certificates from
tests/unit/tls_certs.sh, made here) and cluster.sync_rate_limit = 1 (MB/s).

- The three nodes form the in-sync set over TLS (the leader's log says its port is TLS, the
  followers' that they follow over TLS), and confirmed messages are read back.
- A follower restarted without TLS is refused: both logs say why, it stays out of the
  in-sync set; restarted with TLS again it rejoins.
- A follower whose data is wiped catches up X bytes of segments at 1 MiB/s: it takes at
  least X / 1 MiB/s before it is in sync again (a lower bound, not a speed), and then holds
  the leader's files byte for byte."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as R  # noqa: E402
from cluster_faults import api, check, converged, failures, wait_isr  # noqa: E402

import pika  # noqa: E402

BODY = 100 * 1000
COUNT = 40  # 4 MB of message bodies


def make_certs():
    top = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
    d = tempfile.mkdtemp(prefix="warren-cluster-certs.", dir=os.environ.get("TMPDIR"))
    subprocess.run(["sh", os.path.join(top, "tests/unit/tls_certs.sh"), d], check=True,
                   stdout=subprocess.DEVNULL)
    return d


def tls_config(certs):
    return ("cluster.tls.cert = %s/node.pem\ncluster.tls.key = %s/node.key\n"
            "cluster.tls.ca = %s/ca.pem\n" % (certs, certs, certs))


def wait_out_of_isr(rig, name, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = rig.leader(timeout=2)
        try:
            if leader is not None and name not in api(leader, "/api/cluster/status")["isr"]:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def publish(node, queue, count, body_bytes):
    c = pika.BlockingConnection(pika.ConnectionParameters(node.host, node.amqp))
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue, durable=True)
    for i in range(count):
        body = (b"%06d" % i) * (body_bytes // 6)
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    c.close()


def read_all(node, queue):
    c = pika.BlockingConnection(pika.ConnectionParameters(node.host, node.amqp))
    ch = c.channel()
    got = []
    while True:
        m, _p, body = ch.basic_get(queue, auto_ack=False)
        if m is None:
            break
        got.append(body)
    c.close()
    return got


def main():
    certs = make_certs()
    tls = tls_config(certs)
    rig = R.Rig(R.warrend_path(), extra_config="cluster.sync_rate_limit = 1\n")
    for n in rig.nodes:
        n.extra = tls
        n.write_config()
    try:
        rig.start()
        check(wait_isr(rig, 3) is not None, "three nodes in sync over TLS")
        leader = rig.leader()
        check("speaks TLS only" in leader.log_text(), "%s: its replication port is TLS" % leader.name)
        followers = [n for n in rig.nodes if n is not leader]
        check(all("over TLS" in f.log_text() for f in followers),
              "the followers follow over TLS")
        publish(leader, "rig.tls", 20, 1000)
        check(len(read_all(leader, "rig.tls")) == 20, "20 confirmed messages read back")

        # A follower without TLS is refused by the TLS leader, and says so too.
        f = followers[0]
        f.stop()
        f.extra = ""
        f.write_config()
        f.start()
        check(wait_out_of_isr(rig, f.name), "%s without TLS leaves the in-sync set" % f.name)
        time.sleep(1.0)
        st = api(leader, "/api/cluster/status")
        check(f.name not in st["isr"], "%s stays out (isr %s)" % (f.name, st["isr"]))
        check("requires TLS" in leader.log_text(), "%s logs the plain follower refused"
              % leader.name)
        check("does it require TLS" in f.log_text() or "answers in TLS" in f.log_text(),
              "%s logs that the leader wants TLS" % f.name)
        f.stop()
        f.extra = tls
        f.write_config()
        f.start()
        check(wait_isr(rig, 3) is not None, "%s with TLS again is back in sync" % f.name)

        # A wiped follower catches up through TLS at no more than 1 MiB/s.
        publish(leader, "rig.big", COUNT, BODY)
        g = followers[1]
        g.stop()
        g.wipe()
        check(wait_out_of_isr(rig, g.name), "%s (wiped) leaves the in-sync set" % g.name)
        segments = sum(os.path.getsize(os.path.join(dp, x))
                       for dp, _d, files in os.walk(os.path.join(leader.dir, "data", "msgs"))
                       for x in files if x.endswith(".seg"))
        started = time.monotonic()
        g.start()
        st = wait_isr(rig, 3, timeout=60)
        took = time.monotonic() - started
        check(st is not None and took >= segments / float(1 << 20),
              "%s caught up %d bytes of segments in %.1f s (at least %.1f s at 1 MiB/s)"
              % (g.name, segments, took, segments / float(1 << 20)))
        # Its copy (and the other follower's) is the leader's, byte for byte.
        converged(rig)
        check(len(read_all(leader, "rig.big")) == COUNT, "%d messages read back" % COUNT)
    finally:
        rig.stop(keep=bool(failures))
        check(all(v in (0, None) for v in rig.exit_status.values()),
              "every node stops cleanly (%s)" % rig.exit_status)
        if failures:
            print("rig kept in %s" % rig.root)
        shutil.rmtree(certs, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
