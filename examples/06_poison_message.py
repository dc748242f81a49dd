#!/usr/bin/python3
"""Scenario 6: poison messages.

One malformed message among good ones makes its consumer fail every time it tries. Requeued
after each failure, it would come back forever, burning a worker. The queue's delivery limit
stops the loop: with x-delivery-limit N a message may come back N times; the next failure
dead-letters it to the queue's dead-letter exchange with reason `delivery_limit`, and it waits
in a "parking lot" queue, with its `x-death` history, for a person to look at it. The good
messages keep flowing meanwhile.

The work queue is declared with x-queue-type quorum, because RabbitMQ honours
x-delivery-limit on quorum queues only; Warren honours it on any queue and takes the type as
a classic queue with the same behaviour, so the example runs unchanged on both.

Run: /usr/bin/python3 examples/06_poison_message.py
"""

import json
import os
import time

import pika

from common import check, connect, log, result

QUEUE = "ex06.tasks"
DLX = "ex06.dead-letters"
PARKING = "ex06.parking-lot"
GOOD = int(os.environ.get("GOOD", "20"))
LIMIT = int(os.environ.get("DELIVERY_LIMIT", "3"))


def main():
    conn = connect()
    ch = conn.channel()
    for q in (QUEUE, PARKING):
        ch.queue_delete(q)
    ch.exchange_delete(DLX)

    # The parking lot: a fanout exchange, named as the work queue's dead-letter exchange.
    ch.exchange_declare(DLX, exchange_type="fanout", durable=True)
    ch.queue_declare(PARKING, durable=True)
    ch.queue_bind(PARKING, DLX)
    ch.queue_declare(
        QUEUE,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": LIMIT,
            "x-dead-letter-exchange": DLX,
        },
    )

    # Good orders, with one poison message in the middle: not JSON at all.
    for i in range(GOOD):
        if i == GOOD // 2:
            poison = pika.BasicProperties(message_id="poison")
            ch.basic_publish("", QUEUE, b"\x00\xffnot json", poison)
        body = json.dumps({"order": i, "amount": 10 * i}).encode()
        ch.basic_publish("", QUEUE, body, pika.BasicProperties(message_id="order-%d" % i))

    handled = []
    poison_attempts = 0
    delivery_counts = []  # x-delivery-count the broker put on each redelivery of the poison

    def on_message(ch, method, props, body):
        nonlocal poison_attempts
        try:
            order = json.loads(body)
        except ValueError:
            # The consumer cannot handle it; like a crashing handler, it gives it back
            # (requeue=True) hoping the next attempt goes better. It never does.
            poison_attempts += 1
            headers = props.headers or {}
            delivery_counts.append(headers.get("x-delivery-count"))
            log(
                "attempt %d on %s failed (redelivered=%s)"
                % (poison_attempts, props.message_id, method.redelivered)
            )
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        handled.append(order["order"])
        ch.basic_ack(method.delivery_tag)

    ch.basic_qos(prefetch_count=1)
    tag = ch.basic_consume(QUEUE, on_message)
    deadline = time.monotonic() + 15
    parked = 0
    while time.monotonic() < deadline and (len(handled) < GOOD or parked == 0):
        conn.process_data_events(time_limit=0.05)
        parked = ch.queue_declare(PARKING, passive=True).method.message_count
    ch.basic_cancel(tag)

    # What an operator finds in the parking lot.
    method, props, body = ch.basic_get(PARKING, auto_ack=True)
    deaths = (props.headers or {}).get("x-death", []) if method else []
    for d in deaths:
        log(
            "parked %r: x-death reason=%s queue=%s count=%s exchange=%r routing-keys=%s"
            % (
                body,
                d.get("reason"),
                d.get("queue"),
                d.get("count"),
                d.get("exchange"),
                d.get("routing-keys"),
            )
        )
    left = ch.queue_declare(QUEUE, passive=True).method.message_count
    for q in (QUEUE, PARKING):
        ch.queue_delete(q)
    ch.exchange_delete(DLX)
    conn.close()

    log(
        "good orders handled: %d of %d; the poison was tried %d times"
        % (len(handled), GOOD, poison_attempts)
    )
    death = deaths[0] if deaths else {}
    parked_id = props.message_id if method else "none"
    result(
        good=GOOD,
        good_handled=len(set(handled)),
        delivery_limit=LIMIT,
        poison_attempts=poison_attempts,
        parked=parked,
        parked_id=parked_id,
        death_reason=death.get("reason", "none"),
        death_queue=death.get("queue", "none"),
        death_count=death.get("count", 0),
        last_delivery_count=delivery_counts[-1] if delivery_counts else "none",
        left_in_queue=left,
    )
    check(len(set(handled)) == GOOD, "every good order is handled")
    check(parked == 1 and parked_id == "poison", "the poison is parked")
    check(poison_attempts == LIMIT + 1, "the poison comes back DELIVERY_LIMIT times, then no more")
    check(death.get("reason") == "delivery_limit", "x-death says why it was parked")


if __name__ == "__main__":
    main()
