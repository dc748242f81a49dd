#!/usr/bin/python3
"""Scenario 7: timeouts.

A flash sale: REQUESTS buyers click at the same moment; the order service handles one request
every WORK_MS (20 ms). A buyer waits at most DEADLINE_MS (300 ms) for an answer; serving a
request after that is worse than useless (the buyer has given up, or clicked again). So each
request carries its deadline as the message's `expiration` (per-message TTL, in
milliseconds, as a string). A request still waiting when its deadline passes is never
delivered: the broker dead-letters it (reason `expired`) to the queue's dead-letter exchange,
where the gateway answers "sold out, try again" at once. Without a dead-letter exchange it
would simply be dropped.

Run: /usr/bin/python3 examples/07_timeouts.py
"""

import json
import os
import time

import pika

from common import check, connect, log, result

QUEUE = "ex07.requests"
DLX = "ex07.timeouts"
TIMED_OUT = "ex07.timed-out"
REQUESTS = int(os.environ.get("REQUESTS", "100"))
DEADLINE_MS = int(os.environ.get("DEADLINE_MS", "300"))
WORK_MS = int(os.environ.get("WORK_MS", "20"))
# The wait is measured here, from before the publish to the delivery: it includes two trips
# through the network stack and the scheduler, which the broker's clock does not see.
SLACK_MS = 150


def main():
    conn = connect()
    ch = conn.channel()
    ch.queue_delete(QUEUE)
    ch.queue_delete(TIMED_OUT)
    ch.exchange_delete(DLX)
    ch.exchange_declare(DLX, exchange_type="fanout")
    ch.queue_declare(TIMED_OUT)
    ch.queue_bind(TIMED_OUT, DLX)
    ch.queue_declare(QUEUE, arguments={"x-dead-letter-exchange": DLX})

    # The gateway: every request at once, each with its deadline.
    t0 = time.monotonic()
    for i in range(REQUESTS):
        body = json.dumps({"buyer": i, "sent_at": time.monotonic() - t0}).encode()
        ch.basic_publish("", QUEUE, body, pika.BasicProperties(expiration=str(DEADLINE_MS)))
    log(
        "%d requests queued, deadline %d ms, service time %d ms each"
        % (REQUESTS, DEADLINE_MS, WORK_MS)
    )

    served_waits = []  # ms each served request had waited when the service got it
    timed_out = []  # (buyer, x-death reason)

    def on_request(ch, method, props, body):
        req = json.loads(body)
        served_waits.append(1000 * (time.monotonic() - t0 - req["sent_at"]))
        time.sleep(WORK_MS / 1000.0)  # reserve the item, take the payment...
        ch.basic_ack(method.delivery_tag)

    def on_timeout(ch, method, props, body):
        deaths = (props.headers or {}).get("x-death", [{}])
        timed_out.append((json.loads(body)["buyer"], deaths[0].get("reason")))
        ch.basic_ack(method.delivery_tag)  # answer "sold out, try again"

    # prefetch 1: a request waits in the broker, where its deadline is enforced, not in a
    # consumer's buffer, where it is not.
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(QUEUE, on_request)
    ch.basic_consume(TIMED_OUT, on_timeout)
    deadline = time.monotonic() + 15
    while len(served_waits) + len(timed_out) < REQUESTS and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)

    left = ch.queue_declare(QUEUE, passive=True).method.message_count
    ch.queue_delete(QUEUE)
    ch.queue_delete(TIMED_OUT)
    ch.exchange_delete(DLX)
    conn.close()

    late = [w for w in served_waits if w > DEADLINE_MS + SLACK_MS]
    reasons = sorted(set(r for _, r in timed_out))
    log(
        "served %d requests, the longest after waiting %.0f ms; %d timed out (x-death reason %s)"
        % (
            len(served_waits),
            max(served_waits, default=0),
            len(timed_out),
            ",".join(map(str, reasons)),
        )
    )
    log("without deadlines the last buyer would have waited about %d ms" % (REQUESTS * WORK_MS))
    result(
        requests=REQUESTS,
        deadline_ms=DEADLINE_MS,
        work_ms=WORK_MS,
        served=len(served_waits),
        timed_out=len(timed_out),
        max_wait_ms=round(max(served_waits, default=0)),
        served_late=len(late),
        reasons=",".join(map(str, reasons)) or "none",
        left_in_queue=left,
    )
    check(len(served_waits) + len(timed_out) == REQUESTS, "every request is served or timed out")
    check(timed_out and reasons == ["expired"], "timed-out requests are dead-lettered as expired")
    check(not late, "no request is served after its deadline")


if __name__ == "__main__":
    main()
