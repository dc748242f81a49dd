"""cluster.follower_listeners = refuse on a 3-node loopback cluster (tests/cluster/rig.py): a
follower completes the AMQP handshake and answers connection.open with 530 NOT_ALLOWED naming
the leader's address, its management API answers 503 not_leader naming the leader's but for
its health checks and /api/cluster/status, and the leader serves as usual. The same cluster
runs cluster.on_leader_elected / on_leader_lost hooks, checked across a switchover. Last, a
follower told to stop while a client holds its shutdown open, and elected meanwhile (the
leader stopped), must still stop (it led on for ever before)."""

import json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import rawclient  # noqa: E402
import rig as R  # noqa: E402
from cluster_faults import api, check, failures, other_leader, post, wait_isr  # noqa: E402

import pika  # noqa: E402


def http_status(node, path):
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.http, path))
    req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def stop_while_elected(rig, leader):
    """SIGTERM reaches a follower's broker; before it is done (a client that got as far as
    tune-ok and never answers connection.close keeps it waiting up to its grace period) the
    leader stops too and this follower, the only one left, is elected. It must stop all the
    same, with status 0."""
    check(wait_isr(rig, 3) is not None, "three in sync again")
    f, other = [n for n in rig.nodes if n is not leader]
    check(other.stop() == 0, "%s stopped" % other.name)
    c = rawclient.Client(f.host, f.amqp, login=False)
    c.send(rawclient.PROTOCOL_HEADER)
    c.expect_method(rawclient.CONNECTION_START, 10)
    c.send(rawclient.start_ok())
    c.expect_method(rawclient.CONNECTION_TUNE, 10)
    c.send(rawclient.tune_ok())
    time.sleep(0.2)
    f.wanted = False
    f.proc.terminate()
    check(leader.stop() == 0, "the leader %s stopped" % leader.name)
    try:
        status = f.proc.wait(15)
    except Exception:
        status = "hung"
    raced = "elected while shutting down" in f.log_text()
    check(status == 0, "%s, told to stop%s, stopped (status %s)"
          % (f.name, " and elected meanwhile" if raced else "", status))
    try:
        c.sock.close()
    except socket.error:
        pass


def main():
    fd, hooks = tempfile.mkstemp(prefix="warren-hooks.", dir=os.environ.get("TMPDIR"))
    os.close(fd)
    line = 'echo "$WARREN_EVENT $WARREN_NODE_ID $WARREN_EPOCH" >> ' + hooks
    rig = R.Rig(R.warrend_path(), extra_config="cluster.follower_listeners = refuse\n"
                "cluster.on_leader_elected = %s\ncluster.on_leader_lost = %s\n" % (line, line))
    try:
        rig.start()
        check(wait_isr(rig, 3) is not None, "three nodes in sync")
        leader = rig.leader()
        follower = [n for n in rig.nodes if n is not leader][0]
        want = "amqp://%s:%d" % (leader.host, leader.amqp)
        try:
            pika.BlockingConnection(pika.ConnectionParameters(follower.host, follower.amqp))
            check(False, "a follower refuses AMQP clients")
        except (pika.exceptions.ConnectionClosedByBroker,
                pika.exceptions.ProbableAccessDeniedError) as e:
            # pika reports a close during the handshake as "probable access denied".
            text = str(e)
            check("530" in text and "NOT_ALLOWED - node is a follower; leader is " + want in text,
                  "follower %s answers connection.open with %s" % (follower.name, text))
        c = pika.BlockingConnection(pika.ConnectionParameters(leader.host, leader.amqp))
        ch = c.channel()
        ch.confirm_delivery()
        ch.queue_declare("rig.refuse", durable=True)
        ch.basic_publish("", "rig.refuse", b"x", pika.BasicProperties(delivery_mode=2))
        m, _p, body = ch.basic_get("rig.refuse", auto_ack=True)
        c.close()
        check(m is not None and body == b"x",
              "the leader serves: a confirmed message is read back (%s)" % body)
        status, body = http_status(follower, "/api/queues")
        check(status == 503 and body.get("error") == "not_leader"
              and "http://%s:%d" % (leader.host, leader.http) in body.get("reason", ""),
              "follower's API: %d %s" % (status, body))
        status, body = http_status(follower, "/api/cluster/status")
        check(status == 200 and body.get("role") == "follower",
              "follower's /api/cluster/status: %d %s" % (status, body and body.get("role")))
        status, _ = http_status(follower, "/api/health/checks/leader")
        check(status == 503, "follower's leader health check: %d" % status)

        # The hooks: elected on the leader; lost, then elected elsewhere, at a switchover.
        epoch = api(leader, "/api/cluster/status")["epoch"]
        with open(hooks) as f:
            seen = f.read().split("\n")
        check("leader_elected %s %d" % (leader.name, epoch) in seen,
              "on_leader_elected ran on %s with its epoch (%s)" % (leader.name, seen))
        check(post(leader, "/api/cluster/transfer-leadership") == 204, "switchover asked")
        new, _ = other_leader(rig, leader)
        time.sleep(0.5)
        with open(hooks) as f:
            seen = f.read().split("\n")
        check(new is not None and "leader_lost %s %d" % (leader.name, epoch) in seen and
              any(x.startswith("leader_elected %s " % new.name) for x in seen),
              "on_leader_lost ran on %s, on_leader_elected on %s (%s)"
              % (leader.name, new.name if new else "nobody", seen))

        stop_while_elected(rig, new)
    finally:
        rig.stop(keep=bool(failures))
        check(all(v in (0, None) for v in rig.exit_status.values()),
              "every node stops cleanly (%s)" % rig.exit_status)
        if failures:
            print("rig kept in %s" % rig.root)
        os.unlink(hooks)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
