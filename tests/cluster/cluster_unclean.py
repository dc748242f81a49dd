"""Unclean failover: when every in-sync member is gone for good, a node outside the in-sync
set leads only if allowed (cluster.unclean_failover, or warrend --force-leader), and then
the messages confirmed while it was out are lost, loudly; the old members that come back
drop that tail and converge on the new leader's data. Three nodes on loopback
(tests/cluster/rig.py), with cluster.compression = lz4: the catch-ups and the live stream go
compressed, and the convergence check compares the files byte for byte."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as R  # noqa: E402
from cluster_faults import api, check, converged, failures, wait_isr  # noqa: E402
from cluster_min_isr import publish_one  # noqa: E402

import pika  # noqa: E402

QUEUE = "rig.minisr"  # publish_one's queue


def bodies_on(node):
    c = pika.BlockingConnection(pika.ConnectionParameters(node.host, node.amqp, heartbeat=0))
    ch = c.channel()
    ch.queue_declare(QUEUE, durable=True)
    out = []
    for _ in range(100):
        m, _p, body = ch.basic_get(QUEUE, auto_ack=False)
        if m is None:
            break
        out.append(body)
    c.close()  # unacked: they stay
    return out


def leaves_isr(leader, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name not in api(leader, "/api/cluster/status")["isr"]:
            return True
        time.sleep(0.2)
    return False


def lone_out_of_sync(rig, out, leader, others, tag):
    """out stops and leaves the ISR; a message is confirmed without it; then every other
    node stops: out alone holds the data, without the last confirmed message."""
    out.stop()
    check(leaves_isr(leader, out.name), "%s: %s leaves the in-sync set" % (tag, out.name))
    outcome, _ = publish_one(leader, ("late-" + tag).encode())
    check(outcome == "ack", "%s: a message confirmed without %s" % (tag, out.name))
    for n in others:
        n.stop()


def main():
    rig = R.Rig(R.warrend_path(), extra_config="cluster.compression = lz4\n")
    try:
        rig.start()
        check(wait_isr(rig, 3) is not None, "three nodes in sync")
        leader = rig.leader()
        a, b = [n for n in rig.nodes if n is not leader]
        check(publish_one(leader, b"early")[0] == "ack", "an early message confirmed")

        # Round 1: cluster.unclean_failover, off and then on.
        lone_out_of_sync(rig, a, leader, [leader, b], "1")
        a.start()
        check(rig.leader(timeout=8) is None,
              "with unclean_failover off the out-of-sync node does not lead (8 s)")
        st = api(a, "/api/cluster/status")
        check(st["role"] == "follower" and "UNCLEAN" not in a.log_text(),
              "it stays a follower (%s), nothing unclean logged" % st["role"])
        a.stop()
        a.extra = "cluster.unclean_failover = true\n"
        a.write_config()
        t0 = time.monotonic()
        a.start()
        new = rig.leader(timeout=30)
        took = time.monotonic() - t0
        check(new is a, "with unclean_failover on it leads (after %.1f s)" % took)
        check(took >= 5.0, "only after 2 lease TTLs without a leader (%.1f s)" % took)
        check("UNCLEAN FAILOVER" in a.log_text(), "the unclean failover is logged")
        got = bodies_on(a)
        check(b"early" in got and b"late-1" not in got,
              "it has what it had (early) and not what was confirmed without it: %s" % got)
        check(api(a, "/api/cluster/status")["isr"] == [a.name], "it leads alone")
        check(publish_one(a, b"after-1")[0] == "ack", "it confirms new messages")

        # The old members come back: they drop late-1 and converge on the new leader.
        leader.start()
        b.start()
        converged(rig)
        got = bodies_on(a)
        check(b"early" in got and b"after-1" in got and b"late-1" not in got,
              "after the old members rejoined: %s" % got)
        rep = api(a, "/api/cluster/status")["replication"]
        check(rep["compression"] == "lz4" and
              0 < rep["compressed_bytes_out"] < rep["compressed_bytes_in"],
              "the followers were sent compressed data (%s)" % rep)

        # Round 2: warrend --force-leader, at once.
        a.extra = ""
        a.write_config()
        lone_out_of_sync(rig, b, a, [a, leader], "2")
        b.args = ["--force-leader"]
        t0 = time.monotonic()
        b.start()
        new = rig.leader(timeout=20)
        check(new is b, "--force-leader: it leads (after %.1f s)" % (time.monotonic() - t0))
        check("--force-leader" in b.log_text() and "UNCLEAN FAILOVER" in b.log_text(),
              "the forced failover is logged")
        got = bodies_on(b)
        check(b"after-1" in got and b"late-2" not in got, "forced: %s" % got)
        b.args = []
    finally:
        rig.stop(keep=bool(failures))
        if failures:
            print("rig kept in %s" % rig.root)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
