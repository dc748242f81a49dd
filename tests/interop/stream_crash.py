#!/usr/bin/python3
"""The crash test of stream queues, in two phases around a SIGKILL of the broker
(stream_crash.sh).

  publish DIR   declares a stream, starts two consumers (from first and from offset 100),
                then publishes "c<i>" with confirms until killed, writing every confirmed
                index to DIR/confirmed and what the consumers saw (offset body) to
                DIR/seen.
  verify DIR    after the restart: every confirmed message is in the stream, message i at
                offset i (offsets are stable), and every (offset, body) a consumer saw
                before the crash is the same now.
"""

import os
import sys
import time

import pika

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
Q = "stream.crash"


def connect():
    return pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))


def publish(d):
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(Q, durable=True, arguments={"x-queue-type": "stream",
                                                  "x-stream-max-segment-size-bytes": 20000})
    ch.confirm_delivery()
    readers = []
    for off in ["first", 100]:
        c = connect()
        rch = c.channel()
        rch.basic_qos(prefetch_count=50)
        rch.basic_consume(Q, lambda cc, m, p, b: (
            seen.write("%d %s\n" % (p.headers["x-stream-offset"], b.decode())),
            cc.basic_ack(m.delivery_tag)), arguments={"x-stream-offset": off})
        readers.append(c)
    with open(os.path.join(d, "confirmed"), "a", buffering=1) as out:
        i = 0
        while True:
            ch.basic_publish("", Q, b"c%d" % i)  # returns once confirmed
            out.write("%d\n" % i)
            i += 1
            if i % 20 == 0:
                for c in readers:
                    c.process_data_events(time_limit=0)
                seen.flush()


def verify(d):
    with open(os.path.join(d, "confirmed")) as f:
        confirmed = [int(x) for x in f.read().split()]
    if len(confirmed) < 50:
        print("FAIL: only %d publishes were confirmed before the kill" % len(confirmed))
        sys.exit(1)
    top = confirmed[-1]
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=500)
    got = {}

    def on_msg(c, m, p, b):
        got[p.headers["x-stream-offset"]] = b.decode()
        c.basic_ack(m.delivery_tag)
    ch.basic_consume(Q, on_msg, arguments={"x-stream-offset": "first"})
    deadline = time.time() + 30
    while len(got) <= top and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    for i in range(top + 1):
        if got.get(i) != "c%d" % i:
            print("FAIL: offset %d holds %r, expected 'c%d' (confirmed)" % (i, got.get(i), i))
            sys.exit(1)
    n_seen = 0
    with open(os.path.join(d, "seen")) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue  # the last line may be cut by the kill
            off, body = int(parts[0]), parts[1]
            if off in got and got[off] != body:
                print("FAIL: offset %d was %r before the crash, %r after" % (off, body, got[off]))
                sys.exit(1)
            n_seen += 1
    ch.queue_delete(Q)
    conn.close()
    print("ok %d confirmed messages at their offsets after SIGKILL; %d deliveries seen "
          "before it match" % (top + 1, n_seen))
    print("PASS")


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        seen = open(os.path.join(sys.argv[2], "seen"), "a")
        publish(sys.argv[2])
    else:
        verify(sys.argv[2])
