#!/usr/bin/python3
"""Stream queues (x-queue-type=stream) as pika (Debian's python3-pika) sees them: the
declare checks and the refused features with RabbitMQ's codes and texts, publishing with
confirms, consumers from first, last, next, a numeric offset and a timestamp, the
x-stream-offset header of each delivery, acks as credit (the messages stay), a consumer at
the tail receiving new messages, several consumers at their own offsets, and filtering
(x-stream-filter-value, x-stream-filter, x-stream-match-unfiltered).

Passes against RabbitMQ 3.10.8 too except the filtering checks (3.13; skipped with
STREAM_NO_FILTER=1). Environment: AMQP_HOST and AMQP_PORT. Exits 1 at the first failure.
"""

import datetime
import os
import sys
import time

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
PREFIX = "interop.stream.%d" % os.getpid()
STREAM = {"x-queue-type": "stream"}


class CheckFailed(Exception):
    pass


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def connect():
    return pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))


def refused(fn, code, text, what):
    """fn(channel) must fail with this reply code and text."""
    conn = connect()
    ch = conn.channel()
    try:
        fn(ch)
    except (pika.exceptions.ChannelClosedByBroker,
            pika.exceptions.ConnectionClosedByBroker) as e:
        expect_eq((e.reply_code, e.reply_text), (code, text), what)
    else:
        raise CheckFailed("%s: not refused" % what)
    finally:
        if conn.is_open:
            conn.close()


def declare(ch, name, **args):
    a = dict(STREAM)
    a.update(args)
    return ch.queue_declare(name, durable=True, arguments=a)


def publish(ch, name, bodies, filter_value=None):
    ch.confirm_delivery()
    for b in bodies:
        props = pika.BasicProperties(
            headers={"x-stream-filter-value": filter_value} if filter_value else {"k": "v"})
        ch.basic_publish("", name, b, props, mandatory=True)


def consume(name, count, offset=None, prefetch=10, **args):
    """The first count deliveries of a new consumer: (offset header, body, headers)."""
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    got = []
    a = dict(args)
    if offset is not None:
        a["x-stream-offset"] = offset

    def on_msg(c, m, p, body):
        got.append((p.headers.get("x-stream-offset"), body, p.headers, m.redelivered))
        c.basic_ack(m.delivery_tag)

    tag = ch.basic_consume(name, on_msg, arguments=a)
    deadline = time.time() + 5
    while len(got) < count and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    # No basic.cancel: pika rejects the deliveries it holds at a cancel, which a stream
    # refuses (540). Closing the connection settles them.
    del tag
    conn.close()
    return got[:count]


def check_declare():
    q = PREFIX + ".decl"
    vh = "in vhost '/'"
    refused(lambda ch: ch.queue_declare(q, durable=False, arguments=STREAM), 406,
            "PRECONDITION_FAILED - invalid property 'non-durable' for queue '%s' %s" % (q, vh),
            "non-durable")
    refused(lambda ch: ch.queue_declare(q, durable=True, exclusive=True, arguments=STREAM), 406,
            "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue '%s' %s" % (q, vh),
            "exclusive")
    refused(lambda ch: ch.queue_declare(q, durable=True, auto_delete=True, arguments=STREAM), 406,
            "PRECONDITION_FAILED - invalid property 'auto-delete' for queue '%s' %s" % (q, vh),
            "auto-delete")
    for arg, val in [("x-message-ttl", 1000), ("x-dead-letter-exchange", "dlx"),
                     ("x-max-priority", 5), ("x-expires", 1000), ("x-max-length", 10),
                     ("x-overflow", "reject-publish"), ("x-single-active-consumer", True),
                     ("x-delivery-limit", 3), ("x-queue-mode", "lazy")]:
        refused(lambda ch: declare(ch, q, **{arg: val}), 406,
                "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' %s of queue type "
                "rabbit_stream_queue" % (arg, q, vh), arg)
    refused(lambda ch: declare(ch, q, **{"x-max-age": "10x"}), 406,
            "PRECONDITION_FAILED - invalid arg 'x-max-age' for queue '%s' %s: invalid_max_age"
            % (q, vh), "x-max-age 10x")
    refused(lambda ch: declare(ch, q, **{"x-max-age": 5}), 406,
            "PRECONDITION_FAILED - invalid arg 'x-max-age' for queue '%s' %s: "
            "{unacceptable_type,signedint}" % (q, vh), "x-max-age 5")
    refused(lambda ch: declare(ch, q, **{"x-stream-max-segment-size-bytes": -5}), 406,
            "PRECONDITION_FAILED - invalid arg 'x-stream-max-segment-size-bytes' for queue '%s' "
            "%s: {value_negative,-5}" % (q, vh), "segment size -5")
    conn = connect()
    ch = conn.channel()
    ok = declare(ch, q, **{"x-max-age": "7D", "x-max-length-bytes": 10000000})
    expect_eq(ok.method.message_count, 0, "declare-ok message count")
    conn.close()
    refused(lambda ch: declare(ch, q, **{"x-max-age": "1h", "x-max-length-bytes": 10000000}),
            406, "PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue '%s' %s: "
            "received '1h' but current is '7D'" % (q, vh), "redeclare x-max-age")
    refused(lambda ch: ch.queue_declare(q, durable=True), 406,
            "PRECONDITION_FAILED - inequivalent arg 'x-max-length-bytes' for queue '%s' %s: "
            "received none but current is the value '10000000' of type 'signedint'" % (q, vh),
            "redeclare as classic")
    conn = connect()
    conn.channel().queue_delete(q)
    conn.close()
    print("ok declare checks")


def check_refusals(q):
    vh = "in vhost '/'"
    refused(lambda ch: ch.basic_get(q), 540,
            "NOT_IMPLEMENTED - basic.get not supported by stream queues queue '%s' %s" % (q, vh),
            "basic.get")
    refused(lambda ch: ch.queue_purge(q), 540,
            "NOT_IMPLEMENTED - queue.purge not supported by stream queues queue '%s' %s"
            % (q, vh), "queue.purge")
    refused(lambda ch: ch.basic_consume(q, lambda *a: None), 406,
            "PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '%s' %s'"
            % (q, vh), "consume without prefetch")

    def no_ack(ch):
        ch.basic_qos(prefetch_count=10)
        ch.basic_consume(q, lambda *a: None, auto_ack=True)
    refused(no_ack, 540, "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream "
            "queues queue '%s' %s" % (q, vh), "auto-ack consumer")

    def nack(ch):
        ch.basic_qos(prefetch_count=1)
        seen = []
        ch.basic_consume(q, lambda c, m, p, b: seen.append(m.delivery_tag),
                         arguments={"x-stream-offset": "first"})
        while not seen:
            ch.connection.process_data_events(time_limit=0.2)
        ch.basic_nack(seen[0], requeue=True)
        ch.connection.process_data_events(time_limit=1)
    refused(nack, 540, "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream "
            "queues queue '%s' %s" % (q, vh), "basic.nack")
    print("ok refusals: get, purge, no prefetch, auto-ack, nack")


def check_offsets(q):
    conn = connect()
    ch = conn.channel()
    declare(ch, q)
    t_before = int(time.time())
    publish(ch, q, [b"m%d" % i for i in range(10)])
    conn.close()

    got = consume(q, 10, "first")
    expect_eq([g[0] for g in got], list(range(10)), "offsets from first")
    expect_eq([g[1] for g in got], [b"m%d" % i for i in range(10)], "bodies from first")
    expect_eq(got[0][2].get("k"), "v", "publisher's headers kept")
    expect_eq(got[0][3], False, "redelivered")
    # Acks did not remove anything: a second consumer reads the same messages.
    got = consume(q, 10, "first")
    expect_eq([g[0] for g in got], list(range(10)), "offsets from first, again")
    got = consume(q, 3, 4)
    expect_eq([g[1] for g in got], [b"m4", b"m5", b"m6"], "from offset 4")
    got = consume(q, 1, "last")
    expect_eq([g[0] for g in got], [9], "from last")
    got = consume(q, 10, datetime.datetime.utcfromtimestamp(t_before - 1))
    expect_eq(len(got), 10, "from a timestamp before the publishes")
    got = consume(q, 1, 1000)
    expect_eq(got, [], "an offset past the end waits for new messages")
    print("ok offsets: first, numeric, last, timestamp; acks keep the messages")


def check_properties():
    """Every property comes back as published, around the x-stream-offset header added to
    the headers (present or not, with an x-stream-offset of the publisher's own, which is
    replaced), and without headers at all."""
    q = PREFIX + ".props"
    conn = connect()
    ch = conn.channel()
    declare(ch, q)
    ch.confirm_delivery()
    full = pika.BasicProperties(
        content_type="application/json", content_encoding="gzip",
        headers={"a": 1, "x-stream-offset": "forged", "s": "text"}, delivery_mode=2,
        priority=3, correlation_id="corr", reply_to="rep", expiration="60000",
        message_id="mid", timestamp=1700000000, type="t", user_id="guest", app_id="app")
    bare = pika.BasicProperties(content_type="text/plain", correlation_id="c2")
    ch.basic_publish("", q, b"full", full)
    ch.basic_publish("", q, b"bare", bare)
    ch.basic_publish("", q, b"none", pika.BasicProperties())
    conn.close()
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), arguments={"x-stream-offset": "first"})
    deadline = time.time() + 5
    while len(got) < 3 and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    conn.close()
    expect_eq([b for _, b in got], [b"full", b"bare", b"none"], "bodies")
    p = got[0][0]
    for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id"):
        expect_eq(getattr(p, name), getattr(full, name), "property %s" % name)
    expect_eq(p.headers, {"a": 1, "s": b"text" if isinstance(p.headers.get("s"), bytes)
                          else "text", "x-stream-offset": 0}, "headers with the offset")
    p = got[1][0]
    expect_eq((p.content_type, p.correlation_id, p.headers),
              ("text/plain", "c2", {"x-stream-offset": 1}), "headers added among properties")
    expect_eq(got[2][0].headers, {"x-stream-offset": 2}, "headers added to none")
    conn = connect()
    conn.channel().queue_delete(q)
    conn.close()
    print("ok properties: all kept, x-stream-offset added or replaced")


def check_tail_and_many(q):
    """Consumers at next and at several offsets, all fed by new publishes."""
    conn = connect()
    pub = conn.channel()
    subs = []
    for off in ["next", 0, 5, 9]:
        c2 = connect()
        ch = c2.channel()
        ch.basic_qos(prefetch_count=3)
        got = []

        def on_msg(c, m, p, body, got=got):
            got.append(p.headers["x-stream-offset"])
            c.basic_ack(m.delivery_tag)
        ch.basic_consume(q, on_msg, arguments={"x-stream-offset": off})
        subs.append((off, c2, got))
    publish(pub, q, [b"n%d" % i for i in range(5)])
    deadline = time.time() + 5
    while time.time() < deadline and not all(
            len(got) >= (15 - (off if isinstance(off, int) else 10)) for off, _, got in subs):
        for _, c2, _ in subs:
            c2.process_data_events(time_limit=0.05)
    for off, c2, got in subs:
        start = 10 if off == "next" else off
        expect_eq(got, list(range(start, 15)), "consumer at %r" % (off,))
        c2.close()
    conn.close()
    print("ok a tail consumer and consumers at several offsets each get their messages")


def check_filter():
    q = PREFIX + ".filter"
    conn = connect()
    ch = conn.channel()
    declare(ch, q)
    publish(ch, q, [b"a1", b"a2"], "apple")
    publish(ch, q, [b"b1"], "banana")
    publish(ch, q, [b"u1"])
    publish(ch, q, [b"a3"], "apple")
    conn.close()
    got = consume(q, 3, "first", **{"x-stream-filter": "apple"})
    expect_eq([g[1] for g in got], [b"a1", b"a2", b"a3"], "filter apple")
    got = consume(q, 4, "first", **{"x-stream-filter": ["banana", "apple"]})
    expect_eq([g[1] for g in got], [b"a1", b"a2", b"b1", b"a3"], "filter [banana, apple]")
    got = consume(q, 4, "first",
                  **{"x-stream-filter": "banana", "x-stream-match-unfiltered": True})
    expect_eq([g[1] for g in got], [b"b1", b"u1"], "filter banana + unfiltered")
    conn = connect()
    conn.channel().queue_delete(q)
    conn.close()
    print("ok filtering")


def main():
    q = PREFIX + ".s"
    try:
        check_declare()
        check_offsets(q)
        check_properties()
        check_refusals(q)
        check_tail_and_many(q)
        if os.environ.get("STREAM_NO_FILTER") != "1":
            check_filter()
        conn = connect()
        conn.channel().queue_delete(q)
        conn.close()
    except CheckFailed as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
