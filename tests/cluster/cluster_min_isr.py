"""cluster.min_insync_replicas (Kafka's min.insync.replicas): with 2, a leader left alone
makes confirms wait, and nacks them after cluster.confirm_timeout; once a follower is back
in sync, confirms flow again. Three nodes on loopback (tests/cluster/rig.py)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as R  # noqa: E402
from cluster_faults import api, check, failures, wait_isr  # noqa: E402

import pika  # noqa: E402


def publish_one(node, body, timeout=30):
    """'ack' or 'nack' for one persistent message with confirms, and the seconds it took."""
    c = pika.BlockingConnection(pika.ConnectionParameters(node.host, node.amqp, heartbeat=0,
                                                          blocked_connection_timeout=timeout))
    ch = c.channel()
    ch.queue_declare("rig.minisr", durable=True)
    ch.confirm_delivery()
    t0 = time.monotonic()
    try:
        ch.basic_publish("", "rig.minisr", body, pika.BasicProperties(delivery_mode=2))
        outcome = "ack"
    except pika.exceptions.NackError:
        outcome = "nack"
    took = time.monotonic() - t0
    c.close()
    return outcome, took


def main():
    rig = R.Rig(R.warrend_path(), extra_config="cluster.min_insync_replicas = 2\n"
                                               "cluster.confirm_timeout = 2000\n")
    try:
        rig.start()
        check(wait_isr(rig, 3) is not None, "three nodes in sync")
        leader = rig.leader()
        outcome, took = publish_one(leader, b"with-three")
        check(outcome == "ack", "with 3 in sync a confirm comes (%s in %.2f s)" % (outcome, took))
        followers = [n for n in rig.nodes if n is not leader]
        for f in followers:
            f.stop()
        # ack_timeout (3 s) drops both from the ISR, then confirm_timeout (2 s) nacks.
        outcome, took = publish_one(leader, b"alone")
        check(outcome == "nack" and took >= 1.5,
              "the leader alone nacks after waiting (%s after %.2f s)" % (outcome, took))
        st = api(leader, "/api/cluster/status")
        check(st["isr"] == [leader.name], "the in-sync set is the leader alone (%s)" % st["isr"])
        followers[0].start()
        check(wait_isr(rig, 2) is not None, "a follower is back in sync")
        outcome, took = publish_one(leader, b"with-two")
        check(outcome == "ack", "with 2 in sync confirms come again (%s in %.2f s)"
              % (outcome, took))
        # What was nacked may still be there (a nack promises nothing); what was acked is.
        c = pika.BlockingConnection(pika.ConnectionParameters(leader.host, leader.amqp))
        ch = c.channel()
        bodies = []
        while True:
            m, _p, body = ch.basic_get("rig.minisr", auto_ack=True)
            if m is None:
                break
            bodies.append(body)
        c.close()
        check(b"with-three" in bodies and b"with-two" in bodies,
              "the confirmed messages are there (%s)" % bodies)
    finally:
        rig.stop(keep=bool(failures))
        if failures:
            print("rig kept in %s" % rig.root)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
