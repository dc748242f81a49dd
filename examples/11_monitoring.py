#!/usr/bin/python3
"""Scenario 11: monitoring the promise.

A queue promises two things, and each has an indicator an operator should watch:
  - delay: how long a message waits before it is handled. The management API gives the
    queue's depth and the rate at which consumers take messages; depth / rate is how long
    the newest message will wait (Little's law). Consumers that see a send time in the
    message (here the `timestamp` property, in a header with milliseconds) can measure it.
  - loss: messages that left the queue without being handled. A queue sheds messages when
    they expire (TTL) or when it is full (x-max-length): with a dead-letter exchange they are
    dead-lettered (not lost, parked), without one they are dropped. Both are counted per queue
    in the Prometheus metrics (warren_queue_messages_dead_lettered_total,
    warren_queue_messages_dropped_total, warren_queue_messages_expired_total).

The example makes both happen with known numbers, then reads them back: an "orders" queue
(x-max-length 200, with a dead-letter exchange) gets EXPIRING orders that time out, then 250
more, of which the 50 oldest are pushed out; a "clicks" queue (x-max-length 100, no
dead-letter exchange) gets 150 clicks and drops 50. A consumer then drains orders at
DRAIN_RATE (100/s) for DRAIN_SECONDS (1.5 s) while the example polls the management API.

Environment: MGMT_URL (http://127.0.0.1:15672, the management API), METRICS_URL
(http://127.0.0.1:15692, the Prometheus endpoint); AMQP_USER/AMQP_PASS log in to both.
Run: /usr/bin/python3 examples/11_monitoring.py
"""

import base64
import json
import os
import time
import urllib.parse
import urllib.request

import pika

from common import PASS, USER, check, connect, log, result

MGMT_URL = os.environ.get("MGMT_URL", "http://127.0.0.1:15672")
METRICS_URL = os.environ.get("METRICS_URL", "http://127.0.0.1:15692")
ORDERS = "ex11.orders"
CLICKS = "ex11.clicks"
DLX = "ex11.dead-letters"
PARKED = "ex11.parked"
EXPIRING = 30
DRAIN_RATE = float(os.environ.get("DRAIN_RATE", "100"))
DRAIN_SECONDS = float(os.environ.get("DRAIN_SECONDS", "1.5"))


def api(path):
    """GET one management API resource, as JSON."""
    req = urllib.request.Request(MGMT_URL + path)
    token = base64.b64encode(("%s:%s" % (USER, PASS)).encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def segment(name):
    """A name as a path segment: '/' (the default vhost) is sent as %2F."""
    return urllib.parse.quote(name, safe="")


def queue_info(name):
    return api("/api/queues/%s/%s" % (segment("/"), segment(name)))


def metrics():
    """The Prometheus text format, as {(name, queue): value} for per-queue series."""
    with urllib.request.urlopen(METRICS_URL + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, _, rest = line.partition("{")
        labels, _, value = rest.rpartition("} ")
        queue = dict(
            kv.split("=", 1) for kv in labels.replace('"', "").split(",") if "=" in kv
        ).get("queue")
        out[(name, queue)] = float(value)
    return out


def publish(ch, queue, n, expiration=None):
    for _ in range(n):
        now = time.time()
        ch.basic_publish(
            "",
            queue,
            b"{}",
            pika.BasicProperties(
                timestamp=int(now), headers={"sent-ms": int(now * 1000)}, expiration=expiration
            ),
        )


def main():
    conn = connect()
    ch = conn.channel()
    for q in (ORDERS, CLICKS, PARKED):
        ch.queue_delete(q)
    ch.exchange_delete(DLX)
    ch.exchange_declare(DLX, exchange_type="fanout")
    ch.queue_declare(PARKED)
    ch.queue_bind(PARKED, DLX)
    ch.queue_declare(ORDERS, arguments={"x-max-length": 200, "x-dead-letter-exchange": DLX})
    ch.queue_declare(CLICKS, arguments={"x-max-length": 100})

    publish(ch, ORDERS, EXPIRING, expiration="50")  # these time out before anyone comes
    time.sleep(0.5)
    publish(ch, ORDERS, 250)  # the 50 oldest are pushed out by x-max-length
    publish(ch, CLICKS, 150)  # 50 dropped: nowhere to dead-letter them

    # The consumer, at its own pace; the operator samples the API before and after.
    before = queue_info(ORDERS)
    t_before = time.monotonic()
    waits_ms = []
    ch.basic_qos(prefetch_count=1)
    start = time.monotonic()
    for method, props, _body in ch.consume(ORDERS, inactivity_timeout=0.1):
        if time.monotonic() - start >= DRAIN_SECONDS:
            break
        if method is None:
            continue
        waits_ms.append(time.time() * 1000 - props.headers["sent-ms"])
        ch.basic_ack(method.delivery_tag)
        ahead = len(waits_ms) / DRAIN_RATE - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    ch.cancel()  # an unacked delivery in flight goes back to the queue
    after = queue_info(ORDERS)
    t_after = time.monotonic()
    clicks = queue_info(CLICKS)
    m = metrics()

    # Delay: depth and drain rate from the API, and the wait the consumer measured.
    depth = after["messages"]
    taken = after["message_stats"]["deliver_get"] - before["message_stats"]["deliver_get"]
    drain_rate = taken / (t_after - t_before)
    est_delay_s = depth / drain_rate if drain_rate > 0 else float("inf")
    log(
        "%s: depth %d, consumers took %d in %.1f s (%.0f/s): a new order waits about %.1f s"
        % (ORDERS, depth, taken, t_after - t_before, drain_rate, est_delay_s)
    )
    log(
        "the consumer measured waits of %.0f to %.0f ms"
        % (min(waits_ms, default=0), max(waits_ms, default=0))
    )

    # Loss: what each queue shed, and where it went.
    def series(name, queue):
        return int(m.get((name, queue), -1))

    dead_lettered = series("warren_queue_messages_dead_lettered_total", ORDERS)
    expired = series("warren_queue_messages_expired_total", ORDERS)
    dropped_orders = series("warren_queue_messages_dropped_total", ORDERS)
    dropped_clicks = series("warren_queue_messages_dropped_total", CLICKS)
    published = after["message_stats"]["publish"]
    log(
        "%s: %d published, %d expired, %d dead-lettered in all (to %s), %d dropped"
        % (ORDERS, published, expired, dead_lettered, PARKED, dropped_orders)
    )
    log(
        "%s: %d published, %d dropped (no dead-letter exchange), depth %d"
        % (CLICKS, clicks["message_stats"]["publish"], dropped_clicks, clicks["messages"])
    )
    parked = queue_info(PARKED)["messages"]

    for q in (ORDERS, CLICKS, PARKED):
        ch.queue_delete(q)
    ch.exchange_delete(DLX)
    conn.close()

    result(
        orders_published=published,
        orders_depth=depth,
        orders_taken=taken,
        consumed=len(waits_ms),
        drain_rate=round(drain_rate, 1),
        est_delay_s=round(est_delay_s, 2),
        max_wait_ms=round(max(waits_ms, default=0)),
        orders_expired=expired,
        orders_dead_lettered=dead_lettered,
        orders_dropped=dropped_orders,
        parked=parked,
        clicks_published=clicks["message_stats"]["publish"],
        clicks_dropped=dropped_clicks,
        clicks_depth=clicks["messages"],
    )
    check(dead_lettered == EXPIRING + 50 and parked == dead_lettered, "orders shed are parked")
    check(dropped_clicks == 50 and clicks["messages"] == 100, "clicks beyond 100 are dropped")
    check(depth == EXPIRING + 250 - dead_lettered - len(waits_ms), "depth adds up")


if __name__ == "__main__":
    main()
