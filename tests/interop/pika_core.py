#!/usr/bin/python3
"""The broker core as pika (Debian's python3-pika, BlockingConnection) sees it: declare,
bind, publish, consume with acks, basic.get, topic and fanout routing, a channel error and
the recovery from it, and message properties with every header type pika can encode.

Run with /usr/bin/python3 (the pika of the distribution). Environment: AMQP_HOST and
AMQP_PORT. Prints one line per check; exits 1 at the first failure.
"""

import datetime
import decimal
import os
import sys

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
# Names of this run, so parallel runs against one broker do not meet.
PREFIX = "interop.pika.%d" % os.getpid()
TIMEOUT_S = 5
EXCHANGES = []


class CheckFailed(Exception):
    pass


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def name(suffix):
    return "%s.%s" % (PREFIX, suffix)


def new_exchange(ch, suffix, kind):
    """An exchange of this run; a failed run deletes those it left (see main)."""
    ex = name(suffix)
    ch.exchange_declare(ex, exchange_type=kind)
    EXCHANGES.append(ex)
    return ex


def new_queue(ch, suffix):
    """An exclusive queue: the broker removes it when the connection closes."""
    q = name(suffix)
    ok = ch.queue_declare(q, exclusive=True)
    expect_eq(ok.method.queue, q, "declare-ok queue name")
    expect_eq((ok.method.message_count, ok.method.consumer_count), (0, 0), "new queue counts")
    return q


def drain(ch, queue):
    """Bodies of every message ready in queue, acknowledged, in queue order."""
    bodies = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=False)
        if method is None:
            return bodies
        bodies.append(body)
        ch.basic_ack(method.delivery_tag)


def check_publish_consume_ack(conn, ch):
    ex = new_exchange(ch, "direct", "direct")
    q = new_queue(ch, "work")
    ch.queue_bind(q, ex, routing_key="work")
    sent = [b"one", b"two", b"three"]
    for body in sent:
        ch.basic_publish(ex, "work", body)
    ch.basic_publish(ex, "not.bound", b"dropped")

    got = []
    for method, _, body in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT_S):
        if method is None:
            raise CheckFailed("consumer received %r, then nothing for %d s" % (got, TIMEOUT_S))
        expect_eq(method.exchange, ex, "deliver exchange")
        expect_eq(method.routing_key, "work", "deliver routing key")
        expect_eq(method.redelivered, False, "deliver redelivered flag")
        got.append(body)
        ch.basic_ack(method.delivery_tag)
        if len(got) == len(sent):
            break
    expect_eq(ch.cancel(), 0, "messages left pending after cancel")
    expect_eq(got, sent, "consumed bodies in order")
    expect_eq(ch.queue_declare(q, passive=True).method.message_count, 0, "queue after acks")

    # A message nacked with requeue comes back, flagged redelivered.
    ch.basic_publish(ex, "work", b"again")
    for method, _, body in ch.consume(q, auto_ack=False, inactivity_timeout=TIMEOUT_S):
        if method is None:
            raise CheckFailed("no delivery of the message to nack")
        ch.basic_nack(method.delivery_tag, requeue=True)
        break
    ch.cancel()
    method, _, body = ch.basic_get(q, auto_ack=True)
    if method is None:
        raise CheckFailed("nacked message was not requeued")
    expect_eq((body, method.redelivered), (b"again", True), "requeued message")
    ch.queue_unbind(q, ex, routing_key="work")
    ch.basic_publish(ex, "work", b"after unbind")
    expect_eq(drain(ch, q), [], "queue after unbind")
    ch.exchange_delete(ex)


def check_basic_get(conn, ch):
    q = new_queue(ch, "get")
    method, props, body = ch.basic_get(q)
    expect_eq((method, props, body), (None, None, None), "basic.get on an empty queue")
    ch.basic_publish("", q, b"first")
    ch.basic_publish("", q, b"second")
    method, _, body = ch.basic_get(q, auto_ack=False)
    if method is None:
        raise CheckFailed("basic.get-empty with two messages in the queue")
    expect_eq(body, b"first", "first basic.get body")
    expect_eq(method.message_count, 1, "get-ok message_count (messages left)")
    expect_eq(method.routing_key, q, "get-ok routing key")
    ch.basic_ack(method.delivery_tag)
    expect_eq(drain(ch, q), [b"second"], "rest of the queue")


def check_topic_routing(conn, ch):
    ex = new_exchange(ch, "topic", "topic")
    star = new_queue(ch, "star")
    hash_ = new_queue(ch, "hash")
    ch.queue_bind(star, ex, routing_key="stock.*.nyse")
    ch.queue_bind(hash_, ex, routing_key="stock.#")
    for key in ("stock.ibm.nyse", "stock.ibm.nasdaq", "stock.nyse", "stock",
                "stock.a.b.nyse", "other.ibm.nyse"):
        ch.basic_publish(ex, key, key.encode())
    expect_eq(drain(ch, star), [b"stock.ibm.nyse"], "queue bound with stock.*.nyse")
    expect_eq(drain(ch, hash_),
              [b"stock.ibm.nyse", b"stock.ibm.nasdaq", b"stock.nyse", b"stock",
               b"stock.a.b.nyse"], "queue bound with stock.#")
    ch.exchange_delete(ex)


def check_fanout(conn, ch):
    ex = new_exchange(ch, "fanout", "fanout")
    a = new_queue(ch, "fan.a")
    b = new_queue(ch, "fan.b")
    ch.queue_bind(a, ex, routing_key="ignored")
    ch.queue_bind(b, ex)
    ch.basic_publish(ex, "any.key", b"to all")
    expect_eq(drain(ch, a), [b"to all"], "first fanout queue")
    expect_eq(drain(ch, b), [b"to all"], "second fanout queue")
    ch.exchange_delete(ex)


def check_channel_error_and_recovery(conn, ch):
    missing = name("missing")
    bad = conn.channel()
    try:
        bad.queue_declare(missing, passive=True)
        raise CheckFailed("passive declare of a missing queue succeeded")
    except pika.exceptions.ChannelClosedByBroker as e:
        expect_eq(e.reply_code, 404, "channel.close reply code")
        expect_eq(e.reply_text, "NOT_FOUND - no queue '%s' in vhost '/'" % missing,
                  "channel.close reply text")
    expect_eq((bad.is_closed, conn.is_open), (True, True), "(channel closed, connection open)")

    # The connection and its other channels carry on; a new channel works.
    fresh = conn.channel()
    q = new_queue(fresh, "recovered")
    fresh.basic_publish("", q, b"still here")
    expect_eq(drain(fresh, q), [b"still here"], "publish and get on a new channel")
    expect_eq(ch.is_open, True, "first channel after another channel's error")
    fresh.close()


def check_properties_and_headers(conn, ch):
    q = new_queue(ch, "props")
    headers = {
        "string": "text é",
        "bytes": b"\x00\x01\xff",
        "int": 42,
        "negative": -7,
        "long": 2**40,
        "true": True,
        "false": False,
        "decimal": decimal.Decimal("3.14"),
        "timestamp": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "table": {"nested": "yes", "n": 1},
        "array": [1, "two", True, {"x": "y"}],
        "void": None,
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="reply.queue",
        expiration="60000",
        message_id="msg-1",
        timestamp=1700000000,
        type="test.type",
        user_id="guest",
        app_id="interop",
    )
    body = bytes(range(256)) * 1200  # bigger than frame_max: several body frames
    ch.basic_publish("", q, body, props)
    ch.basic_publish("", q, b"", pika.BasicProperties())
    method, got, got_body = ch.basic_get(q, auto_ack=True)
    if method is None:
        raise CheckFailed("message with properties was not delivered")
    expect_eq(len(got_body), len(body), "body length")
    expect_eq(got_body, body, "body")
    for field in ("content_type", "content_encoding", "delivery_mode", "priority",
                  "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                  "type", "user_id", "app_id"):
        expect_eq(getattr(got, field), getattr(props, field), "property " + field)
    expect_eq(got.headers, headers, "headers")

    method, got, got_body = ch.basic_get(q, auto_ack=True)
    if method is None:
        raise CheckFailed("empty message was not delivered")
    expect_eq(got_body, b"", "empty body")
    expect_eq((got.headers, got.content_type, got.delivery_mode), (None, None, None),
              "properties of a message sent without any")


CHECKS = [
    ("declare, bind, publish, consume with manual ack", check_publish_consume_ack),
    ("basic.get", check_basic_get),
    ("topic routing with * and #", check_topic_routing),
    ("fanout to two queues", check_fanout),
    ("channel error 404 and a new channel on the same connection",
     check_channel_error_and_recovery),
    ("properties and headers round trip", check_properties_and_headers),
]


def delete_exchanges(conn):
    """Best effort, so that a failed run against a shared broker leaves nothing behind."""
    try:
        ch = conn.channel()
        for ex in EXCHANGES:
            ch.exchange_delete(ex)
    except pika.exceptions.AMQPError:
        pass


def main():
    params = pika.ConnectionParameters(
        host=HOST,
        port=PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=TIMEOUT_S,
        blocked_connection_timeout=TIMEOUT_S,
    )
    print("pika %s against %s:%d" % (pika.__version__, HOST, PORT))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    for title, fn in CHECKS:
        try:
            fn(conn, ch)
        except (CheckFailed, pika.exceptions.AMQPError) as e:
            if isinstance(e, CheckFailed):
                print("FAIL %s: %s" % (title, e))
            else:
                print("FAIL %s: %s: %r" % (title, type(e).__name__, e))
            delete_exchanges(conn)
            return 1
        print("ok   %s" % title)
    conn.close()
    print("ok   connection.close")
    return 0


if __name__ == "__main__":
    sys.exit(main())
