#!/usr/bin/python3
"""RabbitMQ's protocol extensions and dead-lettering as pika (Debian's python3-pika,
BlockingConnection) sees them: publisher confirms (acks, and a nack from a full queue with
x-overflow reject-publish), mandatory returns with and without confirms, direct reply-to
RPC across two connections, and dead-lettered messages with their x-death history
(rejected, expired, maxlen).

Run with /usr/bin/python3 (the pika of the distribution). Environment: AMQP_HOST and
AMQP_PORT. Prints one line per check; exits 1 at the first failure.
"""

import datetime
import os
import sys
import time

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
# Names of this run, so parallel runs against one broker do not meet.
PREFIX = "interop.pika_ext.%d" % os.getpid()
TIMEOUT_S = 5
EXCHANGES = []
REPLY_TO = "amq.rabbitmq.reply-to"


class CheckFailed(Exception):
    pass


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def name(suffix):
    return "%s.%s" % (PREFIX, suffix)


def new_exchange(ch, suffix, kind="direct"):
    """An exchange of this run; a failed run deletes those it left (see main)."""
    ex = name(suffix)
    ch.exchange_declare(ex, exchange_type=kind)
    EXCHANGES.append(ex)
    return ex


def new_queue(ch, suffix, arguments=None):
    """An exclusive queue: the broker removes it when the connection closes."""
    q = name(suffix)
    ok = ch.queue_declare(q, exclusive=True, arguments=arguments)
    expect_eq(ok.method.queue, q, "declare-ok queue name")
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


def wait_for(conn, done, what):
    """Runs conn's I/O and callbacks until done() holds; fails after TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise CheckFailed("%s: nothing within %d s" % (what, TIMEOUT_S))
        conn.process_data_events(time_limit=min(left, 0.2))


def get_one(ch, queue, what, ack=True):
    """The next message of queue (auto-acked), waiting for it up to TIMEOUT_S: a
    dead-lettered message is republished a moment after the event that caused it. With
    ack=False the caller settles it."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=ack)
        if method is not None:
            return method, props, body
        if time.monotonic() > deadline:
            raise CheckFailed("%s: queue %s stayed empty for %d s" % (what, queue, TIMEOUT_S))
        time.sleep(0.05)


def check_confirms(conn, ch):
    q = new_queue(ch, "confirm")
    cc = conn.channel()
    cc.confirm_delivery()
    # In confirm mode basic_publish returns only once the broker acked the message and
    # raises on a nack or a return, so three plain returns are three acks.
    for body in (b"c1", b"c2", b"c3"):
        cc.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2))
    expect_eq(drain(ch, q), [b"c1", b"c2", b"c3"], "acked messages in the queue")

    # A full queue that rejects publishes: the publisher gets basic.nack, not an ack.
    full = new_queue(ch, "full", {"x-max-length": 1, "x-overflow": "reject-publish"})
    cc.basic_publish("", full, b"fits")
    try:
        cc.basic_publish("", full, b"does not fit")
        raise CheckFailed("publish into a full reject-publish queue was acked")
    except pika.exceptions.NackError as e:
        expect_eq(e.messages, [], "messages carried by the NackError (no return)")
    expect_eq(cc.is_open, True, "confirm channel open after a nack")
    # The channel keeps confirming: once there is room, the next publish is acked.
    expect_eq(drain(ch, full), [b"fits"], "full queue holds only the first message")
    cc.basic_publish("", full, b"room again")
    expect_eq(drain(ch, full), [b"room again"], "queue after a publish acked with room")
    cc.close()


def check_mandatory_return_with_confirms(conn, ch):
    ex = new_exchange(ch, "ret.confirm")
    q = new_queue(ch, "ret.confirm")
    ch.queue_bind(q, ex, routing_key="bound")
    cc = conn.channel()
    cc.confirm_delivery()
    props = pika.BasicProperties(content_type="text/plain", correlation_id="ret-1",
                                 headers={"k": "v"})
    try:
        cc.basic_publish(ex, "unbound", b"nowhere to go", props, mandatory=True)
        raise CheckFailed("unroutable mandatory publish in confirm mode raised nothing")
    except pika.exceptions.UnroutableError as e:
        expect_eq(len(e.messages), 1, "returned messages in the UnroutableError")
        r = e.messages[0]
        expect_eq((r.method.reply_code, r.method.reply_text), (312, "NO_ROUTE"),
                  "basic.return reply")
        expect_eq((r.method.exchange, r.method.routing_key), (ex, "unbound"),
                  "basic.return exchange and routing key")
        expect_eq(r.body, b"nowhere to go", "returned body")
        expect_eq((r.properties.content_type, r.properties.correlation_id,
                   r.properties.headers), ("text/plain", "ret-1", {"k": "v"}),
                  "returned properties")
    # Unroutable without mandatory is dropped and acked; routable with mandatory is acked.
    cc.basic_publish(ex, "unbound", b"dropped quietly")
    cc.basic_publish(ex, "bound", b"routed", mandatory=True)
    expect_eq(drain(ch, q), [b"routed"], "queue after the routable mandatory publish")
    cc.close()
    ch.exchange_delete(ex)


def check_mandatory_return_callback(conn, ch):
    ex = new_exchange(ch, "ret.plain")
    rc = conn.channel()
    returned = []
    rc.add_on_return_callback(lambda _ch, method, props, body: returned.append(
        (method, props, body)))
    props = pika.BasicProperties(content_type="application/octet-stream", delivery_mode=2,
                                 message_id="m-42", headers={"n": 7, "s": "x"})
    body = bytes(range(256)) * 600  # several body frames
    # Without mandatory an unroutable message is dropped: no return for the first publish.
    rc.basic_publish(ex, "nobody", b"not mandatory")
    rc.basic_publish(ex, "nobody", body, props, mandatory=True)
    # To the default exchange, a queue that does not exist is just as unroutable.
    missing = name("no.such.queue")
    rc.basic_publish("", missing, b"to a missing queue", mandatory=True)
    wait_for(conn, lambda: len(returned) >= 2, "basic.return for two mandatory publishes")
    # A round trip on the channel: a third return would have arrived before its reply.
    rc.queue_declare(name("after.returns"), exclusive=True)
    conn.process_data_events(time_limit=0)
    expect_eq(len(returned), 2, "returns (the non-mandatory publish is not returned)")

    method, got, got_body = returned[0]
    expect_eq((method.reply_code, method.reply_text, method.exchange, method.routing_key),
              (312, "NO_ROUTE", ex, "nobody"), "first basic.return")
    expect_eq(len(got_body), len(body), "returned body length")
    expect_eq(got_body, body, "returned body")
    for field in ("content_type", "delivery_mode", "message_id", "headers"):
        expect_eq(getattr(got, field), getattr(props, field), "returned property " + field)
    method, _, got_body = returned[1]
    expect_eq((method.reply_code, method.reply_text, method.exchange, method.routing_key),
              (312, "NO_ROUTE", "", missing), "basic.return from the default exchange")
    expect_eq(got_body, b"to a missing queue", "second returned body")
    rc.close()
    ch.exchange_delete(ex)


def check_direct_reply_to(conn, ch):
    # Publishing with reply-to amq.rabbitmq.reply-to needs a reply consumer on the channel.
    bad = conn.channel()
    try:
        bad.basic_publish("", name("anything"), b"x", pika.BasicProperties(reply_to=REPLY_TO))
        bad.queue_declare(name("sync"), exclusive=True)  # the close arrives before its reply
        raise CheckFailed("publish with reply-to and no reply consumer was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        expect_eq((e.reply_code, e.reply_text),
                  (406, "PRECONDITION_FAILED - fast reply consumer does not exist"),
                  "channel.close without a reply consumer")
    # The pseudo-queue only takes no-ack consumers.
    bad = conn.channel()
    try:
        bad.basic_consume(REPLY_TO, lambda *_: None, auto_ack=False)
        raise CheckFailed("a reply-to consumer with acknowledgements was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        expect_eq((e.reply_code, e.reply_text),
                  (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"),
                  "channel.close for a reply consumer with acks")

    # The RPC server runs on a connection of its own, as it would in another process.
    server_conn = pika.BlockingConnection(conn_params())
    try:
        rpc_round_trips(conn, server_conn)
    finally:
        server_conn.close()


def rpc_round_trips(client_conn, server_conn):
    server = server_conn.channel()
    requests = new_queue(server, "rpc.requests")

    client = client_conn.channel()
    replies = []
    tag = client.basic_consume(
        REPLY_TO, lambda _ch, method, props, body: replies.append((method, props, body)),
        auto_ack=True)
    for i in (1, 2):
        client.basic_publish("", requests, b"request %d" % i,
                             pika.BasicProperties(reply_to=REPLY_TO,
                                                  correlation_id="corr-%d" % i))

    got = []
    for _ in (1, 2):
        got.append(get_one(server, requests, "request on the server's queue"))
    reply_to = got[0][1].reply_to
    # The broker replaces the pseudo-queue's name by one that leads back to this channel.
    expect(reply_to.startswith(REPLY_TO + ".") and len(reply_to) > len(REPLY_TO) + 1,
           "reply_to seen by the server %r does not extend %r" % (reply_to, REPLY_TO))
    expect_eq(got[1][1].reply_to, reply_to, "reply_to of the second request (same channel)")
    expect_eq([(g[2], g[1].correlation_id) for g in got],
              [(b"request 1", "corr-1"), (b"request 2", "corr-2")], "requests as served")

    # Replies in the other order: the correlation id, not the order, pairs them.
    for _, props, body in reversed(got):
        server.basic_publish("", props.reply_to, b"reply to " + body,
                             pika.BasicProperties(correlation_id=props.correlation_id))
    wait_for(client_conn, lambda: len(replies) >= 2, "two replies on amq.rabbitmq.reply-to")
    expect_eq([(body, props.correlation_id) for _, props, body in replies],
              [(b"reply to request 2", "corr-2"), (b"reply to request 1", "corr-1")],
              "replies received")
    for method, _, _ in replies:
        expect_eq((method.consumer_tag, method.exchange, method.routing_key),
                  (tag, "", reply_to), "reply deliver consumer tag, exchange, routing key")

    # Once the client's channel is gone its reply-to name routes nowhere: a mandatory reply
    # comes back.
    client.close()
    sc = server_conn.channel()
    sc.confirm_delivery()
    try:
        sc.basic_publish("", reply_to, b"too late", mandatory=True)
        raise CheckFailed("reply to a closed reply consumer's name was routed")
    except pika.exceptions.UnroutableError as e:
        expect_eq(e.messages[0].method.reply_code, 312, "return of a late reply")


def check_reply_to_passive_declare(conn, ch):
    # Before an expensive computation an RPC server may check that the client is still
    # there, as RabbitMQ's guide suggests: a passive declare of the reply-to name answers
    # declare-ok (no messages, one consumer) while the client's channel is open, 404 after.
    client = conn.channel()
    client.basic_consume(REPLY_TO, lambda *_: None, auto_ack=True)
    q = new_queue(ch, "rpc.probe")
    client.basic_publish("", q, b"request", pika.BasicProperties(reply_to=REPLY_TO))
    _, props, _ = get_one(ch, q, "request with a reply-to")
    reply_to = props.reply_to
    probe = conn.channel()
    ok = probe.queue_declare(reply_to, passive=True)
    expect_eq((ok.method.queue, ok.method.message_count, ok.method.consumer_count),
              (reply_to, 0, 1), "passive declare-ok of a live reply-to name")
    client.close()
    try:
        probe.queue_declare(reply_to, passive=True)
        raise CheckFailed("passive declare of a closed channel's reply-to name succeeded")
    except pika.exceptions.ChannelClosedByBroker as e:
        expect_eq((e.reply_code, e.reply_text),
                  (404, "NOT_FOUND - no queue '%s' in vhost '/'" % reply_to),
                  "passive declare of a closed channel's reply-to name")


def dead_letter_setup(ch, suffix, arguments):
    """A work exchange and queue of this run whose dead letters go through a dead-letter
    exchange to a queue bound with the routing key 'dead'. Returns (work exchange, work
    queue, dead-letter exchange, dead-letter queue)."""
    dlx = new_exchange(ch, suffix + ".dlx")
    dlq = new_queue(ch, suffix + ".dlq")
    ch.queue_bind(dlq, dlx, routing_key="dead")
    args = {"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"}
    args.update(arguments)
    ex = new_exchange(ch, suffix + ".work")
    q = new_queue(ch, suffix + ".work", args)
    ch.queue_bind(q, ex, routing_key="work")
    return ex, q, dlx, dlq


def expect_death(props, what, sent_headers, deaths, first):
    """props.headers holds the sent headers, an x-death list equal to deaths (the entries'
    time checked for type and closeness, then left out) and the x-first-death-* headers of
    first = (reason, queue, exchange). RabbitMQ 3.13 added x-last-death-*: allowed, and
    then they must describe the newest death."""
    headers = dict(props.headers or {})
    x_death = headers.pop("x-death", None)
    expect(isinstance(x_death, list), "%s: x-death is %r, not a list" % (what, x_death))
    # pika decodes a timestamp as a naive datetime in UTC.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for entry in x_death:
        t = entry.pop("time", None)
        expect(isinstance(t, datetime.datetime),
               "%s: x-death time %r is not a timestamp" % (what, t))
        expect(abs((now - t).total_seconds()) < 120,
               "%s: x-death time %s is far from now (%s UTC)" % (what, t, now))
    expect_eq(x_death, deaths, what + ": x-death")
    for key, want in zip(("reason", "queue", "exchange"), first):
        expect_eq(headers.pop("x-first-death-" + key, None), want,
                  what + ": x-first-death-" + key)
    if "x-last-death-reason" in headers:
        last = deaths[0]
        for key in ("reason", "queue", "exchange"):
            expect_eq(headers.pop("x-last-death-" + key, None), last[key],
                      what + ": x-last-death-" + key)
    expect_eq(headers, sent_headers, what + ": other headers")


def check_dead_letter_rejected(conn, ch):
    ex, q, dlx, dlq = dead_letter_setup(ch, "dl.rej", {})
    # A CC routing key takes a copy to a second queue and is one of the message's keys.
    other = new_queue(ch, "dl.rej.cc")
    ch.queue_bind(other, ex, routing_key="audit")
    props = pika.BasicProperties(content_type="text/plain", correlation_id="dl-1",
                                 headers={"keep": "me", "CC": ["audit"]})
    ch.basic_publish(ex, "work", b"poison", props)
    get_one(ch, other, "copy through CC")
    method, _, body = ch.basic_get(q, auto_ack=False)
    expect(method is not None, "message did not reach the work queue")
    ch.basic_reject(method.delivery_tag, requeue=False)

    method, got, body = get_one(ch, dlq, "rejected message on the dead-letter queue")
    expect_eq(body, b"poison", "dead-lettered body")
    # x-dead-letter-routing-key replaces the routing key, and with it the CC header goes.
    expect_eq((method.exchange, method.routing_key, method.redelivered), (dlx, "dead", False),
              "dead-letter delivery exchange, routing key, redelivered")
    expect_eq((got.content_type, got.correlation_id), ("text/plain", "dl-1"),
              "dead-lettered properties")
    expect_death(got, "rejected", {"keep": "me"},
                 [{"count": 1, "reason": "rejected", "queue": q, "exchange": ex,
                   "routing-keys": ["work", "audit"]}], ("rejected", q, ex))
    expect_eq(ch.queue_declare(q, passive=True).method.message_count, 0,
              "work queue after the reject")

    # Through the same queue twice: one x-death entry whose count goes to 2. The default
    # exchange routes the dead letter straight back to its own queue.
    loop = new_queue(ch, "dl.loop", {"x-dead-letter-exchange": ""})
    ch.basic_publish("", loop, b"twice", pika.BasicProperties(headers={}))
    for round_ in (1, 2):
        method, _, _ = get_one(ch, loop, "round %d on the looping queue" % round_, ack=False)
        ch.basic_reject(method.delivery_tag, requeue=False)
    method, got, body = get_one(ch, loop, "message after two rejects")
    expect_death(got, "rejected twice", {},
                 [{"count": 2, "reason": "rejected", "queue": loop, "exchange": "",
                   "routing-keys": [loop]}], ("rejected", loop, ""))
    ch.exchange_delete(ex)
    ch.exchange_delete(dlx)


def check_dead_letter_expired(conn, ch):
    ex, q, dlx, dlq = dead_letter_setup(ch, "dl.ttl", {})
    ch.basic_publish(ex, "work", b"short lived",
                     pika.BasicProperties(expiration="50", headers={"h": 1}))
    method, got, body = get_one(ch, dlq, "expired message on the dead-letter queue")
    expect_eq((body, method.routing_key), (b"short lived", "dead"), "expired message")
    # The expiration is moved into x-death, so the dead letter does not expire again.
    expect_eq(got.expiration, None, "expiration property of the dead letter")
    expect_death(got, "expired", {"h": 1},
                 [{"count": 1, "reason": "expired", "queue": q, "exchange": ex,
                   "routing-keys": ["work"], "original-expiration": "50"}],
                 ("expired", q, ex))

    # A queue's own TTL: expired too, without an original-expiration.
    ex2, q2, _, dlq2 = dead_letter_setup(ch, "dl.qttl", {"x-message-ttl": 50})
    ch.basic_publish(ex2, "work", b"queue ttl", pika.BasicProperties(headers={}))
    method, got, body = get_one(ch, dlq2, "message expired by the queue's TTL")
    expect_eq(body, b"queue ttl", "body expired by the queue's TTL")
    expect_death(got, "queue ttl", {},
                 [{"count": 1, "reason": "expired", "queue": q2, "exchange": ex2,
                   "routing-keys": ["work"]}], ("expired", q2, ex2))
    for e in (ex, dlx, ex2, name("dl.qttl.dlx")):
        ch.exchange_delete(e)


def check_dead_letter_maxlen(conn, ch):
    ex, q, dlx, dlq = dead_letter_setup(ch, "dl.len", {"x-max-length": 1})
    ch.basic_publish(ex, "work", b"oldest", pika.BasicProperties(headers={}))
    ch.basic_publish(ex, "work", b"newest", pika.BasicProperties(headers={}))
    method, got, body = get_one(ch, dlq, "message dropped from the head")
    expect_eq(body, b"oldest", "dead letter of drop-head is the oldest message")
    expect_death(got, "maxlen", {},
                 [{"count": 1, "reason": "maxlen", "queue": q, "exchange": ex,
                   "routing-keys": ["work"]}], ("maxlen", q, ex))
    expect_eq(drain(ch, q), [b"newest"], "work queue keeps the newest message")
    expect_eq(drain(ch, dlq), [], "dead-letter queue after the one dead letter")
    ch.exchange_delete(ex)
    ch.exchange_delete(dlx)


CHECKS = [
    ("publisher confirms: acks, and a nack from a reject-publish queue", check_confirms),
    ("mandatory publish in confirm mode raises UnroutableError (312 NO_ROUTE)",
     check_mandatory_return_with_confirms),
    ("mandatory publish returns to the on_return callback, properties and body intact",
     check_mandatory_return_callback),
    ("direct reply-to RPC across two connections", check_direct_reply_to),
    ("dead-lettered on reject: x-death rejected, routing keys with CC, count 2",
     check_dead_letter_rejected),
    ("dead-lettered on expiry: x-death expired, original-expiration",
     check_dead_letter_expired),
    ("dead-lettered by x-max-length drop-head: x-death maxlen", check_dead_letter_maxlen),
    ("direct reply-to: a passive declare of the reply-to name finds the client",
     check_reply_to_passive_declare),
]


def delete_exchanges(conn):
    """Best effort, so that a failed run against a shared broker leaves nothing behind."""
    try:
        if conn.is_closed:
            conn = pika.BlockingConnection(conn_params())
        ch = conn.channel()
        for ex in EXCHANGES:
            ch.exchange_delete(ex)
    except pika.exceptions.AMQPError:
        pass


def conn_params():
    return pika.ConnectionParameters(
        host=HOST,
        port=PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=TIMEOUT_S,
        blocked_connection_timeout=TIMEOUT_S,
    )


def main():
    print("pika %s against %s:%d" % (pika.__version__, HOST, PORT))
    conn = pika.BlockingConnection(conn_params())
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
