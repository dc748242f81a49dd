#!/usr/bin/python3
"""Scenario 12: a stream, read again.

An "events" stream (x-queue-type=stream) receives 100 events with publisher confirms. Three
readers then consume it, each at its own position, none taking anything away from the
others: one from the first offset (a new service catching up on history), one from offset 90
(resuming after the last offset it processed, which it stored itself), and one from a point
in time (everything published in the last hour). Each delivery carries its offset in the
x-stream-offset header.

Environment: AMQP_HOST, AMQP_PORT. Run: /usr/bin/python3 examples/12_stream_replay.py
"""

import datetime
import os

import pika

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
STREAM = "events.%d" % os.getpid()


def read(start, limit):
    """Up to limit (offset, body) pairs from start."""
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=50)  # a stream consumer needs a prefetch
    got = []

    def on_event(c, m, props, body):
        got.append((props.headers["x-stream-offset"], body.decode()))
        c.basic_ack(m.delivery_tag)  # credit for the next ones; the event stays
    ch.basic_consume(STREAM, on_event, arguments={"x-stream-offset": start})
    while len(got) < limit:
        conn.process_data_events(time_limit=1)
    conn.close()
    return got[:limit]


def main():
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    ch = conn.channel()
    ch.queue_declare(STREAM, durable=True,
                     arguments={"x-queue-type": "stream", "x-max-age": "7D"})
    ch.confirm_delivery()
    for i in range(100):
        ch.basic_publish("", STREAM, ("event %d" % i).encode())
    history = read("first", 100)
    resumed = read(90, 10)
    recent = read(datetime.datetime.utcnow() - datetime.timedelta(hours=1), 100)
    print("history: %d events, offsets %d..%d" % (len(history), history[0][0], history[-1][0]))
    print("resumed: %s" % ", ".join("%d=%s" % e for e in resumed[:3]))
    print("last hour: %d events" % len(recent))
    ch.queue_delete(STREAM)
    conn.close()


if __name__ == "__main__":
    main()
