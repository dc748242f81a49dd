#!/usr/bin/python3
"""Scenario 2: publish/subscribe.

When a user registers, several systems must react: send a welcome email, send an SMS, write
an audit record, sync the partner system. The publisher should not know who they are. It
publishes one "user.registered" event to a topic exchange; each subscriber has its own queue,
bound with the routing-key pattern it cares about, and gets its own copy. A subscriber added
later is a new queue and a new binding: the publisher's code does not change (and the new
queue receives the events published after it was bound, not the ones before).

Run: /usr/bin/python3 examples/02_pubsub.py
"""

import json
import os
import time
import uuid

import pika

from common import check, connect, log, result

EXCHANGE = "ex02.events"
EVENTS = int(os.environ.get("EVENTS", "10"))

# subscriber -> the pattern it binds: '*' is one word, '#' zero or more words.
FIRST_SUBSCRIBERS = {
    "email": "user.registered",
    "sms": "user.registered",
    "database": "#",  # the audit log wants every event, orders too
}
LATE_SUBSCRIBER = ("partner-sync", "user.*")


def queue_of(subscriber):
    return "ex02.%s" % subscriber


def publish(channel, routing_key, payload):
    """The whole publisher: one message to the exchange, whoever listens."""
    channel.basic_publish(
        EXCHANGE,
        routing_key,
        json.dumps(payload).encode(),
        pika.BasicProperties(message_id=str(uuid.uuid4()), content_type="application/json"),
    )


def subscribe(channel, subscriber, pattern):
    """A subscriber's own queue and binding: the only thing adding a subscriber takes."""
    channel.queue_declare(queue_of(subscriber))
    channel.queue_bind(queue_of(subscriber), EXCHANGE, routing_key=pattern)


def receive_all(conn, channel, subscribers, expected_total):
    """Each subscriber consumes its queue; returns subscriber -> [(message id, body)]."""
    got = {s: [] for s in subscribers}
    tags = []
    for s in subscribers:

        def on_event(ch, method, props, body, s=s):
            got[s].append((props.message_id, body))
            ch.basic_ack(method.delivery_tag)

        tags.append(channel.basic_consume(queue_of(s), on_event))
    deadline = time.monotonic() + 10
    while sum(len(v) for v in got.values()) < expected_total and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=0.2)  # anything beyond the expected would show too
    for t in tags:
        channel.basic_cancel(t)
    return got


def main():
    pub_conn = connect()
    pub = pub_conn.channel()
    pub.confirm_delivery()  # each publish returns once the broker has routed the event
    pub.exchange_delete(EXCHANGE)
    pub.exchange_declare(EXCHANGE, exchange_type="topic")

    sub_conn = connect()
    sub = sub_conn.channel()
    for s in list(FIRST_SUBSCRIBERS) + [LATE_SUBSCRIBER[0]]:
        sub.queue_delete(queue_of(s))
    for s, pattern in FIRST_SUBSCRIBERS.items():
        subscribe(sub, s, pattern)

    # Round 1: three subscribers. Orders are another kind of event on the same exchange.
    for i in range(EVENTS):
        publish(pub, "user.registered", {"user": "user%d" % i})
    publish(pub, "order.placed", {"order": 1})
    got1 = receive_all(sub_conn, sub, FIRST_SUBSCRIBERS, 3 * EVENTS + 1)
    for s, msgs in got1.items():
        log("round 1: %-12s got %d events" % (s, len(msgs)))

    # Round 2: partner sync joins, by binding a queue of its own. The publisher is unchanged.
    subscribe(sub, *LATE_SUBSCRIBER)
    for i in range(EVENTS, 2 * EVENTS):
        publish(pub, "user.registered", {"user": "user%d" % i})
    subscribers = list(FIRST_SUBSCRIBERS) + [LATE_SUBSCRIBER[0]]
    got2 = receive_all(sub_conn, sub, subscribers, 4 * EVENTS)
    for s, msgs in got2.items():
        log("round 2: %-12s got %d events" % (s, len(msgs)))

    # Every subscriber saw the same user events: same ids, same bodies, same order.
    user_events = {
        s: [m for m in got1.get(s, []) + got2[s] if b'"user"' in m[1]] for s in subscribers
    }
    reference = user_events["email"]
    same_copies = all(
        user_events[s] == reference for s in FIRST_SUBSCRIBERS
    ) and user_events["partner-sync"] == reference[EVENTS:]

    for s in subscribers:
        sub.queue_delete(queue_of(s))
    pub.exchange_delete(EXCHANGE)
    sub_conn.close()
    pub_conn.close()

    totals = {s.replace("-", "_"): len(got1.get(s, [])) + len(got2[s]) for s in subscribers}
    result(events=2 * EVENTS, orders=1, same_copies=int(same_copies), **totals)
    check(totals["email"] == totals["sms"] == 2 * EVENTS, "email and sms get every event")
    check(totals["database"] == 2 * EVENTS + 1, "the audit log gets every event, the order too")
    check(totals["partner_sync"] == EVENTS, "partner sync gets the events after it joined")
    check(same_copies, "every subscriber gets the same copy")


if __name__ == "__main__":
    main()
