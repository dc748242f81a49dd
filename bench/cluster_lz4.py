#!/usr/bin/python3
"""cluster.compression, none against lz4: a 3-node loopback cluster (tests/cluster/rig.py),
one follower stopped, N persistent Celery-like JSON messages published, the follower started
again; prints the catch-up time (start to back in the in-sync set) and the leader's
replication byte counts (/api/cluster/status). Three rounds, the modes alternating.

  WARREND=build/src/warrend TMPDIR=/tmp bench/cluster_lz4.py [N]   (N: 150000)
"""
import os, sys, time, json, uuid, random
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
import rig as R
from cluster_faults import wait_isr, api
import pika

def payload(i):
    return json.dumps([[i, "user-%d@example.com" % (i % 5000)], {"priority": "normal", "retries": 0},
                       {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()

def run(mode, n):
    rig = R.Rig(os.environ["WARREND"], extra_config="cluster.compression = %s\n" % mode)
    try:
        rig.start(); wait_isr(rig, 3)
        L = rig.leader(); f = [x for x in rig.nodes if x is not L][0]
        f.stop()
        c = pika.BlockingConnection(pika.ConnectionParameters(L.host, L.amqp, heartbeat=0))
        ch = c.channel(); ch.queue_declare("q", durable=True)
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                     headers={"task": "proj.tasks.send_email", "id": str(uuid.uuid4())})
        for i in range(n):
            ch.basic_publish("", "q", payload(i), props)
        c.close()
        st0 = api(L, "/api/cluster/status")["replication"]
        time.sleep(4)  # it leaves the ISR
        t0 = time.monotonic(); f.start()
        while True:
            st = api(L, "/api/cluster/status")
            if f.name in st["isr"]: break
            time.sleep(0.05)
        took = time.monotonic() - t0
        r = st["replication"]
        return took, r["catchup_bytes"] - st0["catchup_bytes"], r["compressed_bytes_in"], r["compressed_bytes_out"]
    finally:
        rig.stop()

n = int(sys.argv[1]) if len(sys.argv) > 1 else 150000
for rnd in range(3):
    for mode in ["none", "lz4"]:
        print(mode, "catch-up s %.2f, bytes %d, packed in %d out %d" % run(mode, n), flush=True)
